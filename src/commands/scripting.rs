//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FCALL, FCALL_RO and FUNCTION: Lua scripts
//! and function libraries (server::lua) run as one atomic step. Commands a script calls go through dispatch as a client of the script's own
//! (its SELECT stays inside the script, as in Redis 7.0); their effects, not the script, are
//! what the AOF logs, wrapped in MULTI/EXEC.

use bytes::{Bytes, BytesMut};

use super::args::is;
use super::dispatch::{call, count_error, resolve};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, container, help_reply};
use crate::protocol::Reply;
use crate::protocol::reply::encode;
use crate::scripting::ldb::Ldb;
use crate::scripting::{Engine, Host, Outcome, Target};
use crate::server::state::RunningScript;
use crate::server::{ServerState, Session};
use crate::util::numfmt::parse_i64;

const EVAL_FLAGS: u32 = NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS | MOVABLEKEYS;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("eval", -3, eval).flags(EVAL_FLAGS | MAY_REPLICATE).doc(
        "scripting",
        "Execute a Lua script server side",
        "2.6.0",
        "Depends on the script that is executed.",
    ),
    CommandSpec::new("evalsha", -3, evalsha).flags(EVAL_FLAGS | MAY_REPLICATE).doc(
        "scripting",
        "Execute a Lua script server side",
        "2.6.0",
        "Depends on the script that is executed.",
    ),
    CommandSpec::new("eval_ro", -3, eval_ro).flags(READONLY | EVAL_FLAGS).doc(
        "scripting",
        "Execute a read-only Lua script server side",
        "7.0.0",
        "Depends on the script that is executed.",
    ),
    CommandSpec::new("evalsha_ro", -3, evalsha_ro).flags(READONLY | EVAL_FLAGS).doc(
        "scripting",
        "Execute a read-only Lua script server side",
        "7.0.0",
        "Depends on the script that is executed.",
    ),
    CommandSpec::new("fcall", -3, fcall).flags(EVAL_FLAGS | MAY_REPLICATE).doc(
        "scripting",
        "Invoke a function",
        "7.0.0",
        "Depends on the function that is executed.",
    ),
    CommandSpec::new("fcall_ro", -3, fcall_ro).flags(READONLY | EVAL_FLAGS).doc(
        "scripting",
        "Invoke a read-only function",
        "7.0.0",
        "Depends on the function that is executed.",
    ),
    CommandSpec::new("function", -2, container)
        .doc("scripting", "A container for function commands", "7.0.0", "Depends on subcommand.")
        .subcommands(FUNCTION_SUBCOMMANDS),
    CommandSpec::new("script", -2, container)
        .doc("scripting", "A container for Lua scripts management commands", "2.6.0", "Depends on subcommand.")
        .subcommands(SCRIPT_SUBCOMMANDS),
];

static SCRIPT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("load", 3, script_load).flags(NOSCRIPT | STALE).doc(
        "scripting",
        "Load a script into the scripts cache, without executing it",
        "2.6.0",
        "O(N) with N being the length in bytes of the script body.",
    ),
    CommandSpec::new("exists", -3, script_exists).flags(NOSCRIPT).doc(
        "scripting",
        "Check existence of scripts in the script cache.",
        "2.6.0",
        "O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation).",
    ),
    CommandSpec::new("flush", -2, script_flush).flags(NOSCRIPT).doc(
        "scripting",
        "Remove all the scripts from the script cache.",
        "2.6.0",
        "O(N) with N being the number of scripts in cache",
    ),
    CommandSpec::new("debug", 3, script_debug).flags(NOSCRIPT).doc(
        "scripting",
        "Set the debug mode for executed scripts.",
        "3.2.0",
        "O(1)",
    ),
    CommandSpec::new("kill", 2, script_kill).flags(NOSCRIPT | ALLOW_BUSY).doc(
        "scripting",
        "Kill the script currently in execution.",
        "2.6.0",
        "O(1)",
    ),
    CommandSpec::new("help", 2, script_help).flags(LOADING | STALE).doc(
        "scripting",
        "Show helpful text about the different subcommands",
        "5.0.0",
        "O(1)",
    ),
];

static FUNCTION_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("load", -3, function_load).flags(WRITE | DENYOOM | NOSCRIPT).doc(
        "scripting",
        "Create a function with the given arguments (name, code, description)",
        "7.0.0",
        "O(1) (considering compilation time is redundant)",
    ),
    CommandSpec::new("delete", 3, function_delete).flags(WRITE | NOSCRIPT).doc(
        "scripting",
        "Delete a function by name",
        "7.0.0",
        "O(1)",
    ),
    CommandSpec::new("flush", -2, function_flush).flags(WRITE | NOSCRIPT).doc(
        "scripting",
        "Deleting all functions",
        "7.0.0",
        "O(N) where N is the number of functions deleted",
    ),
    CommandSpec::new("kill", 2, function_kill).flags(NOSCRIPT | ALLOW_BUSY).doc(
        "scripting",
        "Kill the function currently in execution.",
        "7.0.0",
        "O(1)",
    ),
    CommandSpec::new("list", -2, function_list).flags(NOSCRIPT).doc(
        "scripting",
        "List information about all the functions",
        "7.0.0",
        "O(N) where N is the number of functions",
    ),
    CommandSpec::new("stats", 2, function_stats).flags(NOSCRIPT | ALLOW_BUSY).doc(
        "scripting",
        "Return information about the function currently running (name, description, duration)",
        "7.0.0",
        "O(1)",
    ),
    CommandSpec::new("dump", 2, function_dump).flags(NOSCRIPT).doc(
        "scripting",
        "Dump all functions into a serialized binary payload",
        "7.0.0",
        "O(N) where N is the number of functions",
    ),
    CommandSpec::new("restore", -3, function_restore).flags(WRITE | DENYOOM | NOSCRIPT).doc(
        "scripting",
        "Restore all the functions on the given payload",
        "7.0.0",
        "O(N) where N is the number of functions on the payload",
    ),
    CommandSpec::new("help", 2, function_help).flags(LOADING | STALE).doc(
        "scripting",
        "Show helpful text about the different subcommands",
        "7.0.0",
        "O(1)",
    ),
];

fn eval(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    eval_generic(ctx, argv, false, false)
}
fn evalsha(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    eval_generic(ctx, argv, true, false)
}
fn eval_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    eval_generic(ctx, argv, false, true)
}
fn evalsha_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    eval_generic(ctx, argv, true, true)
}

/// The engine in `slot` (EVAL's or FUNCTION's), started on first use.
fn started(slot: &mut Option<Box<Engine>>) -> Result<&mut Engine, CmdError> {
    started_as(slot, false)
}

/// The engine in `slot`, started if needed: EVAL's, or (`functions`) FUNCTION's.
fn started_as(slot: &mut Option<Box<Engine>>, functions: bool) -> Result<&mut Engine, CmdError> {
    if slot.is_none() {
        let e = Engine::new(functions).map_err(|e| CmdError::msg(format!("cannot start Lua: {e}")))?;
        *slot = Some(Box::new(e));
    }
    slot.as_deref_mut().ok_or_else(|| CmdError::msg("cannot start Lua"))
}

fn engine(srv: &mut ServerState) -> Result<&mut Engine, CmdError> {
    started(&mut srv.lua)
}

/// The flags dispatch judges a script-running command by (Redis's scriptFlagsToCmdFlags): a
/// script that declares flags (shebang, or any function) is a write unless `no-writes` and
/// may be refused for memory unless `no-writes` or `allow-oom`. Other commands keep theirs.
pub fn effective_flags(srv: &ServerState, name: &str, argv: &[&[u8]], flags: u32) -> u32 {
    let declared = match name {
        "eval" | "eval_ro" => crate::scripting::shebang_flags(argv[1]),
        "evalsha" | "evalsha_ro" => {
            let sha = String::from_utf8_lossy(argv[1]).to_ascii_lowercase();
            srv.lua.as_deref().and_then(|e| e.script(&sha)).map(|s| s.flags).unwrap_or_default()
        }
        "fcall" | "fcall_ro" => {
            // Function names are ASCII: other bytes name none (and need no lossy copy).
            let Ok(f) = std::str::from_utf8(argv[1]) else { return flags };
            match srv.functions.as_deref().and_then(|e| e.function(f)) {
                Some(def) => def.script_flags(),
                None => return flags,
            }
        }
        _ => return flags,
    };
    if !declared.shebang {
        return flags;
    }
    let mut out = flags & !(DENYOOM | WRITE | MAY_REPLICATE | STALE);
    if declared.allow_stale {
        out |= STALE;
    }
    if !declared.no_writes {
        out |= WRITE;
        if !declared.allow_oom {
            out |= DENYOOM;
        }
    }
    out
}

/// How long a script may run: busy-reply-threshold (alias lua-time-limit).
pub fn limit(srv: &ServerState) -> std::time::Duration {
    std::time::Duration::from_millis(srv.hot.busy_reply_ms)
}

/// numkeys at argv[2], checked as Redis does; returns it.
fn numkeys(argv: &[&[u8]]) -> Result<usize, CmdError> {
    let n = parse_i64(argv[2]).ok_or(CmdError::NotInteger)?;
    if n < 0 {
        return Err(CmdError::msg("Number of keys can't be negative"));
    }
    if n as usize > argv.len() - 3 {
        return Err(CmdError::msg("Number of keys can't be greater than number of args"));
    }
    Ok(n as usize)
}

fn noscript() -> CmdError {
    CmdError::Raw("NOSCRIPT No matching script. Please use EVAL.".into())
}

fn eval_generic(ctx: &mut Ctx, argv: &[&[u8]], by_sha: bool, ro_cmd: bool) -> CmdResult {
    // A SHA that is not 40 characters long names no script: Redis says so before anything
    // else (the key count, the debugger's refusal).
    if by_sha && argv[1].len() != 40 {
        return Err(noscript());
    }
    let mut debug = debug_session(ctx, argv, by_sha)?;
    let out = eval_checked(ctx, argv, by_sha, ro_cmd, &mut debug);
    end_session(debug);
    out
}

fn eval_checked(ctx: &mut Ctx, argv: &[&[u8]], by_sha: bool, ro_cmd: bool, debug: &mut Option<Ldb>) -> CmdResult {
    let numkeys = numkeys(argv)?;
    let eng = engine(ctx.srv)?;
    let script = if by_sha {
        let sha = String::from_utf8_lossy(argv[1]).to_ascii_lowercase();
        eng.script(&sha).cloned().ok_or_else(noscript)?
    } else {
        eng.load(argv[1]).map_err(CmdError::msg)?
    };
    let flags = script.flags;
    may_run(ctx, &flags, ro_cmd)?;
    let read_only = ro_cmd || flags.no_writes;
    let outcome = run_in(ctx, script.target(), argv, numkeys, read_only, &flags, debug);
    finish(ctx.srv, outcome, &script.sha, "@user_script")
}

fn fcall(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    fcall_generic(ctx, argv, false)
}
fn fcall_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    fcall_generic(ctx, argv, true)
}

fn fcall_generic(ctx: &mut Ctx, argv: &[&[u8]], ro_cmd: bool) -> CmdResult {
    let Ok(name) = std::str::from_utf8(argv[1]) else { return Err(CmdError::msg("Function not found")) };
    let (flags, target) = match ctx.srv.functions.as_deref().and_then(|e| e.function(name)) {
        Some(f) => (f.script_flags(), f.target()),
        None => return Err(CmdError::msg("Function not found")),
    };
    let no_writes = flags.no_writes;
    // Redis looks the function up before it reads the key count, and words it differently.
    if parse_i64(argv[2]).is_none() {
        return Err(CmdError::msg("Bad number of keys provided"));
    }
    let numkeys = numkeys(argv)?;
    may_run(ctx, &flags, ro_cmd)?;
    let outcome = run_in(ctx, target, argv, numkeys, ro_cmd || no_writes, &flags, &mut None);
    finish(ctx.srv, outcome, name, "@user_function")
}

/// Redis's scriptPrepareForRun: a `no-cluster` script does not run in cluster mode, and on a
/// replica serving no stale data only an `allow-stale` script runs (dispatch refuses the
/// others first, by the flags the script declared: this catches what it let through).
/// Redis's scriptPrepareForRun refusals, in its order, for what a script's flags declare
/// (EVAL without a shebang declares nothing).
fn may_run(ctx: &Ctx, flags: &crate::scripting::ScriptFlags, ro_cmd: bool) -> Result<(), CmdError> {
    if flags.no_cluster && ctx.srv.cluster.is_some() {
        return Err(CmdError::msg("Can not run script on cluster, 'no-cluster' flag is set."));
    }
    if ctx.srv.serving_stale() && !flags.allow_stale {
        return Err(CmdError::Raw(if flags.shebang {
            "MASTERDOWN Link with MASTER is down, replica-serve-stale-data is set to 'no' and 'allow-stale' flag is not set on the script.".into()
        } else {
            MASTERDOWN.into()
        }));
    }
    if flags.shebang && !flags.no_writes && ro_cmd {
        return Err(CmdError::msg("Can not execute a script with write flag using *_ro command."));
    }
    Ok(())
}

/// A replica's refusal while its link is down and replica-serve-stale-data is no.
pub const MASTERDOWN: &str = "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";

/// Runs a script (EVAL's engine) or a function (FUNCTION's engine), under the debugger when
/// `debug` holds a session (handed back for its end). The engine leaves the server while it
/// runs, so the commands it calls can borrow the server.
fn run_in(
    ctx: &mut Ctx,
    target: Target,
    argv: &[&[u8]],
    numkeys: usize,
    read_only: bool,
    flags: &crate::scripting::ScriptFlags,
    debug: &mut Option<Ldb>,
) -> Result<Outcome, String> {
    let functions = matches!(target, Target::Function(_));
    let allow_oom = flags.allow_oom;
    // Cluster mode: the script's commands must use keys of the slot its declared keys hash
    // to (or of the first slot one uses), unless it allows cross-slot keys.
    let cluster = ClusterCheck {
        slot: argv.get(3).filter(|_| numkeys > 0 && ctx.srv.cluster.is_some()).map(|k| crate::cluster::key_slot(k)),
        // EVAL without a shebang keeps Redis 6's leave to use keys of any slot.
        cross_slot: flags.cross_slot || !flags.shebang,
        obey: ctx.sess.must_obey(),
    };
    let limit = limit(ctx.srv);
    let slot = if functions { &mut ctx.srv.functions } else { &mut ctx.srv.lua };
    let Some(mut eng) = slot.take() else { return Err("cannot start Lua".into()) };
    let started = std::time::Instant::now();
    ctx.srv.running_script = Some(RunningScript {
        eval: !functions,
        // The name and the command are filled in if the script gets busy (only then shown).
        name: String::new(),
        argv: Vec::new(),
        started,
        timed_out: false,
        wrote: false,
        kill: false,
        libraries: eng.libraries.len(),
        functions: eng.functions.len(),
    });
    // The scripts' client, kept between runs as Redis keeps its Lua client. MONITOR shows
    // the script's commands as from "lua", as Redis does.
    let mut sess = ctx
        .srv
        .script_session
        .take()
        .unwrap_or_else(|| Box::new(Session::new(0, "lua".into(), String::new(), -1, ctx.srv.now_ms)));
    sess.authenticated = true;
    sess.user.clone_from(&ctx.sess.user);
    sess.db = ctx.sess.db;
    sess.block = None;
    // Effects are propagated together when the script's command returns.
    sess.in_exec = true;
    sess.in_script = true;
    let mut host =
        ScriptHost { srv: ctx.srv, sess, caller: argv, functions, read_only, allow_oom, read_called: false, cluster };
    let (keys, args) = (&argv[3..3 + numkeys], &argv[3 + numkeys..]);
    let outcome = match debug.take() {
        Some(ldb) => {
            // A debugged script that runs this long without a stop stops (an infinite loop?).
            let busy_ms = if limit.is_zero() { 5000 } else { limit.as_millis() as u64 };
            let (outcome, ldb) = eng.run_debugged(ldb, target, keys, args, &mut host, busy_ms);
            *debug = ldb;
            outcome
        }
        None => eng.run(target, keys, args, &mut host, started + limit),
    };
    let read_called = host.read_called;
    // Even after a command that panicked, later commands propagate everywhere.
    host.srv.script_repl = crate::scripting::engine::REPL_ALL;
    host.srv.script_session = Some(host.sess);
    // Redis 7.0: a script that ran a read-only command makes its caller track the keys it
    // declared (not the keys its commands named).
    if read_called && ctx.sess.tracking.is_some() {
        ctx.srv.track_read(ctx.sess, argv[3..3 + numkeys].iter().map(|k| Bytes::copy_from_slice(k)));
    }
    if ctx.srv.running_script.take().is_some_and(|r| r.timed_out) {
        tracing::warn!("Slow script detected: still in execution after {} milliseconds.", limit.as_millis());
    }
    if functions {
        ctx.srv.functions = Some(eng);
    } else {
        ctx.srv.lua = Some(eng);
    }
    ctx.log_only_explicit();
    outcome
}

/// The reply of a run: its value, or its error with Redis's trailer naming the script (its
/// SHA1, or the function's name) and the line.
fn finish(srv: &mut ServerState, outcome: Result<Outcome, String>, name: &str, source: &str) -> CmdResult {
    match outcome {
        // An error reply the script returned is the command's error (counted in errorstats
        // by its code, and as a failed call).
        Ok(Outcome::Reply(Reply::Error(t), _)) => Err(CmdError::Raw(t)),
        Ok(Outcome::Reply(r, nested)) => {
            // Redis counts each error it converts, nested ones too, and the call as failed.
            let mut counted = false;
            for line in nested {
                match line {
                    Some(line) => {
                        count_error(srv, &CmdError::Raw(line));
                        counted = true;
                    }
                    None => srv.extra_failures += 1,
                }
            }
            srv.extra_failures += counted as u64;
            Ok(r)
        }
        Ok(Outcome::CountedError(t)) => Err(CmdError::Counted(t)),
        Ok(Outcome::Error { text, line, counted }) => {
            let line = line.map_or_else(|| "?".to_string(), |l| l.to_string());
            let text = format!("{text} script: {name}, on {source}:{line}.");
            Err(if counted { CmdError::Counted(text) } else { CmdError::Raw(text) })
        }
        Err(e) if e == "NOSCRIPT" => Err(noscript()),
        Err(e) => Err(CmdError::msg(e)),
    }
}

/// The script's side of `redis.call`: Redis's checks for scripts, then the command as a
/// client of the script's own; the reply is handed back encoded, as Redis parses it.
struct ScriptHost<'a> {
    srv: &'a mut ServerState,
    sess: Box<Session>,
    /// The command that runs the script (shown by FUNCTION STATS once it is busy), and
    /// whether it runs a function.
    caller: &'a [&'a [u8]],
    functions: bool,
    read_only: bool,
    allow_oom: bool,
    /// A read-only command ran (the caller then tracks the script's keys).
    read_called: bool,
    cluster: ClusterCheck,
}

/// What a script's commands are checked against in cluster mode (Redis's
/// scriptVerifyClusterState).
struct ClusterCheck {
    /// The slot of the keys used so far (the declared ones first).
    slot: Option<u16>,
    cross_slot: bool,
    /// The caller is the master or the AOF: nothing is checked.
    obey: bool,
}

impl ScriptHost<'_> {
    /// Redis's scriptVerifyClusterState: the command's keys must be served here, and of the
    /// script's one slot unless it allows cross-slot keys.
    fn check_cluster(&mut self, entry: &'static super::Entry, argv: &[&[u8]]) -> Result<(), String> {
        if self.srv.cluster.is_none() || self.cluster.obey {
            return Ok(());
        }
        let verdict =
            super::dispatch::cluster_verdict(self.srv, entry, &[(entry, argv)], entry.spec.has(WRITE), false, false);
        if let Err(r) = verdict {
            return Err(match r {
                crate::cluster::Redirect::DownReadOnly => {
                    "Script attempted to execute a write command while the cluster is down and readonly"
                }
                crate::cluster::Redirect::Down => "Script attempted to execute a command while the cluster is down",
                _ => "Script attempted to access a non local key in a cluster node",
            }
            .into());
        }
        let first = entry.spec.key_positions(argv).into_iter().find_map(|p| argv.get(p));
        if let Some(slot) = first.map(|k| crate::cluster::key_slot(k))
            && !self.cluster.cross_slot
        {
            match self.cluster.slot {
                None => self.cluster.slot = Some(slot),
                Some(s) if s != slot => {
                    return Err("Script attempted to access keys that do not hash to the same slot".into());
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A command of the script refused before it runs (OOM, NOREPLICAS): counted as a
    /// rejected call and an error reply, and handed to the script as that reply.
    fn refuse(&mut self, entry: &'static super::Entry, e: CmdError, resp: u8) -> Bytes {
        self.srv.stats.command(entry.id).rejected_calls += 1;
        super::dispatch::count_error(self.srv, &e);
        let mut out = BytesMut::new();
        encode(&Reply::Error(e.to_string()), resp, &mut out);
        out.freeze()
    }
}

impl Host for ScriptHost<'_> {
    fn call(&mut self, argv: Vec<Bytes>, resp: u8, repl: u8) -> Result<Bytes, String> {
        let entry = match resolve(&crate::protocol::views(&argv)) {
            Ok(e) => e,
            Err((CmdError::WrongArity(_), entry)) => {
                return Err(self.rejected(entry, "Wrong number of args calling Redis command from script".into()));
            }
            Err(_) => return Err(self.rejected(None, "Unknown Redis command called from script".into())),
        };
        self.admitted(entry, argv, resp, repl).map_err(|text| self.rejected(Some(entry), text))
    }

    fn acl_check(&mut self, argv: Vec<Bytes>) -> Result<bool, String> {
        let entry = match resolve(&crate::protocol::views(&argv)) {
            Ok(e) => e,
            // The command exists: its keys are found in the arguments given, as in Redis.
            Err((CmdError::WrongArity(_), Some(e))) => e,
            Err(_) => return Err("Invalid command passed to redis.acl_check_cmd()".into()),
        };
        Ok(super::acl::permitted(self.srv, &self.sess, entry, &crate::protocol::views(&argv)))
    }

    fn busy_poll(&mut self) -> bool {
        let mut first = false;
        if let Some(r) = self.srv.running_script.as_mut()
            && !r.timed_out
        {
            r.timed_out = true;
            first = true;
            r.argv = crate::protocol::owned(self.caller);
            if self.functions {
                r.name = String::from_utf8_lossy(self.caller[1]).into_owned();
            }
            tracing::warn!(
                "Slow script detected: still in execution after {} milliseconds. You can try killing the script using the {} command.",
                r.started.elapsed().as_millis(),
                if r.eval { "SCRIPT KILL" } else { "FUNCTION KILL" }
            );
        }
        crate::server::event_loop::serve_while_busy(self.srv, first);
        self.srv.exiting || self.srv.running_script.as_ref().is_some_and(|r| r.kill)
    }
}

impl ScriptHost<'_> {
    /// A refused command of the script: counted as a rejected call (when it exists) and an
    /// error reply now, as Redis's scriptCall does, so the script handing the error back
    /// (`ignore_error_stats_update`) does not count it again.
    fn rejected(&mut self, entry: Option<&'static super::Entry>, text: String) -> String {
        if let Some(e) = entry {
            self.srv.stats.command(e.id).rejected_calls += 1;
        }
        super::dispatch::count_error(self.srv, &CmdError::msg(text.clone()));
        text
    }

    /// Runs a command the script may call at all; Err is why it may not (Redis's words).
    fn admitted(
        &mut self,
        entry: &'static super::Entry,
        argv: Vec<Bytes>,
        resp: u8,
        repl: u8,
    ) -> Result<Bytes, String> {
        if entry.spec.has(NOSCRIPT) && !self.srv.scripts_may_run_anything {
            return Err("This Redis command is not allowed from script".into());
        }
        // The script runs as its caller's ACL user.
        if let Some(v) = super::acl::denied(self.srv, &self.sess, entry, &crate::protocol::views(&argv), "lua") {
            return Err(format!("The user executing the script {}", super::acl::script_reason(v)));
        }
        // A stale replica runs only STALE commands for an `allow-stale` script.
        if !entry.spec.has(STALE) && self.srv.serving_stale() {
            return Err("Can not execute the command on a stale replica".into());
        }
        if self.read_only && (entry.spec.has(WRITE) || entry.spec.has(MAY_REPLICATE)) {
            // A rejected call, counted once as an error even when pcall catches it.
            let e = CmdError::msg("Write commands are not allowed from read-only scripts.");
            return Ok(self.refuse(entry, e, resp));
        }
        self.sess.resp = resp;
        // Over maxmemory when the script started, and nothing written yet: refuse commands
        // that may grow memory (a script that wrote must be allowed to finish).
        if entry.spec.has(DENYOOM)
            && !self.allow_oom
            && self.srv.oom_before_command
            && self.srv.running_script.as_ref().is_some_and(|r| !r.wrote)
        {
            return Ok(self.refuse(entry, CmdError::Oom, resp));
        }
        if entry.spec.has(READONLY) {
            self.read_called = true;
        }
        // Redis's scriptVerifyWriteCommandAllow: once the script wrote, it must be able to
        // finish, so the server-state checks apply to its first write only.
        let dirty = self.srv.running_script.as_ref().is_some_and(|r| r.wrote);
        if entry.spec.has(WRITE) && !dirty {
            if self.srv.master.is_some() && self.srv.config.bool("replica-read-only") && !self.cluster.obey {
                let e = CmdError::Raw("READONLY You can't write against a read only replica.".into());
                return Ok(self.refuse(entry, e, resp));
            }
            if let Some(e) = super::dispatch::disk_error(self.srv, true) {
                return Ok(self.refuse(entry, e, resp));
            }
            if self.srv.too_few_good_replicas(None) {
                let e = CmdError::Raw("NOREPLICAS Not enough good replicas to write.".into());
                return Ok(self.refuse(entry, e, resp));
            }
        }
        if entry.spec.has(WRITE)
            && let Some(r) = self.srv.running_script.as_mut()
        {
            // From now on SCRIPT KILL would leave a half-done script: Redis refuses it.
            r.wrote = true;
        }
        self.check_cluster(entry, &crate::protocol::views(&argv))?;
        // redis.set_repl: where this command's effects go (never its keys' expiry DELs).
        self.srv.script_repl = repl;
        let reply = call(self.srv, &mut self.sess, entry, &crate::protocol::views(&argv));
        self.srv.script_repl = crate::scripting::engine::REPL_ALL;
        let mut out = BytesMut::new();
        encode(&reply, resp, &mut out);
        Ok(out.freeze())
    }
}

/// SCRIPT KILL (`eval`) and FUNCTION KILL: Redis's scriptKill. Runs only while a script is
/// busy (the commands are ALLOW_BUSY); a script that wrote cannot be stopped half-way.
fn kill_running(ctx: &mut Ctx, eval: bool) -> CmdResult {
    let Some(r) = ctx.srv.running_script.as_mut() else {
        return Err(CmdError::Raw("NOTBUSY No scripts in execution right now.".into()));
    };
    if r.wrote {
        return Err(CmdError::Raw("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.".into()));
    }
    if r.eval != eval {
        return Err(CmdError::Raw(r.busy_error()));
    }
    r.kill = true;
    Ok(Reply::Status("OK"))
}

fn script_load(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let script = engine(ctx.srv)?.load(argv[2]).map_err(CmdError::msg)?;
    Ok(Reply::Bulk(Bytes::copy_from_slice(script.sha.as_bytes())))
}

fn script_exists(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let eng = ctx.srv.lua.as_deref();
    Ok(Reply::Array(argv[2..].iter().map(|s| Reply::Int(eng.is_some_and(|e| e.exists(s)) as i64)).collect()))
}

/// The optional SYNC|ASYNC of SCRIPT FLUSH / FUNCTION FLUSH (both flush at once here);
/// `refusal` is the command's own wording.
fn flush_mode(argv: &[&[u8]], refusal: &str) -> Result<(), CmdError> {
    match argv.get(2) {
        None => Ok(()),
        Some(a) if argv.len() == 3 && (is(a, "sync") || is(a, "async")) => Ok(()),
        _ => Err(CmdError::msg(refusal)),
    }
}

fn script_flush(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    flush_mode(argv, "SCRIPT FLUSH only support SYNC|ASYNC option")?;
    // A new Lua state, as Redis does: the old one's memory and any state scripts left go.
    ctx.srv.lua = None;
    Ok(Reply::Status("OK"))
}

/// SCRIPT DEBUG: YES and SYNC put the client's next EVAL under the Lua debugger
/// (scripting::ldb). Both run synchronously: Ember has no fork, so YES keeps the script's
/// changes as SYNC does.
fn script_debug(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if !ctx.sess.out.is_empty() {
        return Err(CmdError::msg("SCRIPT DEBUG must be called outside a pipeline"));
    }
    let mode = &argv[2];
    if mode.eq_ignore_ascii_case(b"no") {
        ctx.sess.lua_debug = false;
    } else if mode.eq_ignore_ascii_case(b"yes") || mode.eq_ignore_ascii_case(b"sync") {
        if ctx.sess.tls {
            return Err(CmdError::msg("Ember's Lua debugger does not run over TLS connections"));
        }
        ctx.sess.lua_debug = true;
    } else {
        return Err(CmdError::msg("Use SCRIPT DEBUG YES/SYNC/NO"));
    }
    Ok(Reply::Status("OK"))
}

/// A debugging session for this EVAL, when its client asked for one (Redis's
/// evalGenericCommandWithDebugging); EVALSHA cannot be debugged.
fn debug_session(ctx: &mut Ctx, argv: &[&[u8]], by_sha: bool) -> Result<Option<Ldb>, CmdError> {
    if !ctx.sess.lua_debug || ctx.sess.in_script || ctx.sess.in_exec {
        return Ok(None);
    }
    if by_sha {
        return Err(CmdError::msg("Please use EVAL instead of EVALSHA for debugging"));
    }
    match Ldb::start(ctx.sess.fd, argv[1]) {
        Ok(l) => {
            tracing::warn!("Redis synchronous debugging eval session started");
            // The connection is closed after the reply that ends the session.
            ctx.sess.lua_debug = false;
            ctx.sess.close_after_reply = true;
            Ok(Some(l))
        }
        Err(e) => Err(CmdError::msg(format!("can't run EVAL in debugging mode: {e}"))),
    }
}

/// Ends a debugging session: its last log lines and `<endsession>` before the reply.
fn end_session(ldb: Option<Ldb>) {
    if let Some(l) = ldb {
        l.end();
        tracing::warn!("Redis synchronous debugging eval session ended");
    }
}

fn script_kill(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    kill_running(ctx, true)
}

fn function_kill(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    kill_running(ctx, false)
}

fn script_help(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(help_reply(
        "SCRIPT",
        &[
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    ))
}

fn function_load(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut replace = false;
    for a in &argv[2..argv.len() - 1] {
        if !is(a, "replace") {
            return Err(CmdError::msg(format!("Unknown option given: {}", String::from_utf8_lossy(a))));
        }
        replace = true;
    }
    let code = &argv[argv.len() - 1];
    let name = started_as(&mut ctx.srv.functions, true)?.load_library(code, replace).map_err(CmdError::msg)?;
    Ok(Reply::Bulk(Bytes::from(name)))
}

fn function_delete(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let name = String::from_utf8_lossy(argv[2]);
    if !ctx.srv.functions.as_deref_mut().is_some_and(|e| e.delete_library(&name)) {
        return Err(CmdError::msg("Library not found"));
    }
    Ok(Reply::Status("OK"))
}

fn function_flush(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 3 {
        return Err(super::args::subcommand_syntax(argv, "FUNCTION"));
    }
    flush_mode(argv, "FUNCTION FLUSH only supports SYNC|ASYNC option")?;
    match ctx.srv.functions.as_deref_mut() {
        Some(e) => e.flush_libraries(),
        // Nothing to flush, but propagated all the same, as in Redis.
        None => ctx.srv.force_propagation = true,
    }
    Ok(Reply::Status("OK"))
}

fn function_list(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (mut pattern, mut withcode) = (None, false);
    let mut i = 2;
    while i < argv.len() {
        if !withcode && is(argv[i], "withcode") {
            withcode = true;
        } else if pattern.is_none() && is(argv[i], "libraryname") {
            if i + 1 >= argv.len() {
                return Err(CmdError::msg("library name argument was not given"));
            }
            pattern = Some(argv[i + 1]);
            i += 1;
        } else {
            return Err(CmdError::msg(format!("Unknown argument {}", String::from_utf8_lossy(argv[i]))));
        }
        i += 1;
    }
    let Some(eng) = ctx.srv.functions.as_deref() else { return Ok(Reply::Array(vec![])) };
    let text = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    let mut out = Vec::new();
    for (name, lib) in &eng.libraries {
        if pattern.as_ref().is_some_and(|p| !crate::util::glob::glob_match(p, name.as_bytes(), false)) {
            continue;
        }
        let mut funcs = Vec::new();
        for f in &lib.functions {
            let Some(def) = eng.function(f) else { continue };
            funcs.push(Reply::Map(vec![
                (text("name"), text(f)),
                (text("description"), def.description.as_deref().map_or(Reply::Null, text)),
                (text("flags"), Reply::Set(def.flags.iter().map(|x| Reply::StatusOwned(x.clone())).collect())),
            ]));
        }
        let mut m = vec![
            (text("library_name"), text(name)),
            (text("engine"), text("LUA")),
            (text("functions"), Reply::Array(funcs)),
        ];
        if withcode {
            m.push((text("library_code"), Reply::Bulk(lib.code.clone())));
        }
        out.push(Reply::Map(m));
    }
    Ok(Reply::Array(out))
}

fn function_stats(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let text = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    let running = match ctx.srv.running_script.as_ref() {
        Some(r) if r.eval => return Err(CmdError::Raw(r.busy_error())),
        Some(r) => Reply::Map(vec![
            (text("name"), text(&r.name)),
            (text("command"), Reply::Array(r.argv.iter().cloned().map(Reply::Bulk).collect())),
            (text("duration_ms"), Reply::Int(r.started.elapsed().as_millis() as i64)),
        ]),
        None => Reply::Null,
    };
    let (libs, funcs) = match (ctx.srv.running_script.as_ref(), ctx.srv.functions.as_deref()) {
        (Some(r), _) => (r.libraries, r.functions),
        (None, e) => e.map_or((0, 0), |e| (e.libraries.len(), e.functions.len())),
    };
    Ok(Reply::Map(vec![
        (text("running_script"), running),
        (
            text("engines"),
            Reply::Map(vec![(
                text("LUA"),
                Reply::Map(vec![
                    (text("libraries_count"), Reply::Int(libs as i64)),
                    (text("functions_count"), Reply::Int(funcs as i64)),
                ]),
            )]),
        ),
    ]))
}

fn function_help(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(help_reply(
        "FUNCTION",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    ))
}

fn function_dump(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let opts = ctx.srv.save_options();
    let libs = ctx.srv.functions.as_deref().map(|e| e.libraries.values().map(|l| &l.code[..]).collect::<Vec<_>>());
    let payload = crate::persistence::rdb::dump_functions(libs.unwrap_or_default().into_iter(), opts);
    Ok(Reply::Bulk(Bytes::from(payload)))
}

/// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]: all of the payload's libraries or none.
fn function_restore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    #[derive(PartialEq)]
    enum Policy {
        Flush,
        Append,
        Replace,
    }
    if argv.len() > 4 {
        return Err(super::args::subcommand_syntax(argv, "FUNCTION"));
    }
    let policy = match argv.get(3) {
        None => Policy::Append,
        Some(p) if argv.len() == 4 && is(p, "flush") => Policy::Flush,
        Some(p) if argv.len() == 4 && is(p, "append") => Policy::Append,
        Some(p) if argv.len() == 4 && is(p, "replace") => Policy::Replace,
        _ => return Err(CmdError::msg("Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")),
    };
    let codes = crate::persistence::rdb::restore_functions(argv[2], !ctx.srv.skip_checksum_validation).map_err(
        |e| match e {
            None => CmdError::msg("DUMP payload version or checksum are wrong"),
            Some(text) => CmdError::msg(text),
        },
    )?;
    let eng = started_as(&mut ctx.srv.functions, true)?;
    if policy == Policy::Append {
        for code in &codes {
            if let Ok(name) = crate::scripting::library_name(code)
                && eng.libraries.contains_key(&name)
            {
                return Err(CmdError::msg(format!("Library {name} already exists")));
            }
        }
    }
    let before: Vec<Bytes> = eng.libraries.values().map(|l| l.code.clone()).collect();
    if policy == Policy::Flush {
        eng.flush_libraries();
    }
    let mut result = Ok(());
    for code in &codes {
        if let Err(e) = eng.load_library(code, policy == Policy::Replace) {
            result = Err(e);
            break;
        }
    }
    if let Err(e) = result {
        // Put back what was there: a failed restore changes nothing.
        eng.flush_libraries();
        for code in &before {
            let _ = eng.load_library(code, true);
        }
        return Err(CmdError::msg(e));
    }
    Ok(Reply::Status("OK"))
}
