//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT: Lua scripts (server::lua) run as one
//! atomic step. Commands a script calls go through dispatch as a client of the script's own
//! (its SELECT stays inside the script, as in Redis 7.0); their effects, not the script, are
//! what the AOF logs, wrapped in MULTI/EXEC.

use bytes::{Bytes, BytesMut};

use super::args::is;
use super::dispatch::{call, resolve};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, NO_KEYS, cmd, container, help_reply};
use crate::protocol::Reply;
use crate::protocol::reply::encode;
use crate::server::lua::{Engine, Host, Outcome};
use crate::server::{ServerState, Session};
use crate::util::numfmt::parse_i64;

const EVAL_FLAGS: u32 = NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS | MOVABLEKEYS;

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "eval",
        -3,
        EVAL_FLAGS,
        NO_KEYS,
        "scripting",
        "Execute a Lua script server side",
        "2.6.0",
        "Depends on the script that is executed.",
        eval,
    ),
    cmd(
        "evalsha",
        -3,
        EVAL_FLAGS,
        NO_KEYS,
        "scripting",
        "Execute a Lua script server side",
        "2.6.0",
        "Depends on the script that is executed.",
        evalsha,
    ),
    cmd(
        "eval_ro",
        -3,
        READONLY | EVAL_FLAGS,
        NO_KEYS,
        "scripting",
        "Execute a read-only Lua script server side",
        "7.0.0",
        "Depends on the script that is executed.",
        eval_ro,
    ),
    cmd(
        "evalsha_ro",
        -3,
        READONLY | EVAL_FLAGS,
        NO_KEYS,
        "scripting",
        "Execute a read-only Lua script server side",
        "7.0.0",
        "Depends on the script that is executed.",
        evalsha_ro,
    ),
    CommandSpec {
        subcommands: SCRIPT_SUBCOMMANDS,
        ..cmd(
            "script",
            -2,
            0,
            NO_KEYS,
            "scripting",
            "A container for Lua scripts management commands",
            "2.6.0",
            "Depends on subcommand.",
            container,
        )
    },
];

static SCRIPT_SUBCOMMANDS: &[CommandSpec] = &[
    cmd(
        "load",
        3,
        NOSCRIPT | STALE,
        NO_KEYS,
        "scripting",
        "Load a script into the scripts cache, without executing it",
        "2.6.0",
        "O(N) with N being the length in bytes of the script body.",
        script_load,
    ),
    cmd(
        "exists",
        -3,
        NOSCRIPT,
        NO_KEYS,
        "scripting",
        "Check existence of scripts in the script cache.",
        "2.6.0",
        "O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation).",
        script_exists,
    ),
    cmd(
        "flush",
        -2,
        NOSCRIPT,
        NO_KEYS,
        "scripting",
        "Remove all the scripts from the script cache.",
        "2.6.0",
        "O(N) with N being the number of scripts in cache",
        script_flush,
    ),
    cmd(
        "kill",
        2,
        NOSCRIPT | ALLOW_BUSY,
        NO_KEYS,
        "scripting",
        "Kill the script currently in execution.",
        "2.6.0",
        "O(1)",
        script_kill,
    ),
    cmd(
        "help",
        2,
        LOADING | STALE,
        NO_KEYS,
        "scripting",
        "Show helpful text about the different subcommands",
        "5.0.0",
        "O(1)",
        script_help,
    ),
];

fn eval(ctx: &mut Ctx, argv: &[Bytes]) -> CmdResult {
    eval_generic(ctx, argv, false, false)
}
fn evalsha(ctx: &mut Ctx, argv: &[Bytes]) -> CmdResult {
    eval_generic(ctx, argv, true, false)
}
fn eval_ro(ctx: &mut Ctx, argv: &[Bytes]) -> CmdResult {
    eval_generic(ctx, argv, false, true)
}
fn evalsha_ro(ctx: &mut Ctx, argv: &[Bytes]) -> CmdResult {
    eval_generic(ctx, argv, true, true)
}

fn engine(srv: &mut ServerState) -> Result<&mut Engine, CmdError> {
    if srv.lua.is_none() {
        srv.lua = Some(Box::new(Engine::new().map_err(|e| CmdError::msg(format!("cannot start Lua: {e}")))?));
    }
    srv.lua.as_deref_mut().ok_or_else(|| CmdError::msg("cannot start Lua"))
}

fn noscript() -> CmdError {
    CmdError::Raw("NOSCRIPT No matching script. Please use EVAL.".into())
}

fn eval_generic(ctx: &mut Ctx, argv: &[Bytes], by_sha: bool, ro_cmd: bool) -> CmdResult {
    let numkeys = parse_i64(&argv[2]).ok_or(CmdError::NotInteger)?;
    if numkeys < 0 {
        return Err(CmdError::msg("Number of keys can't be negative"));
    }
    if numkeys as usize > argv.len() - 3 {
        return Err(CmdError::msg("Number of keys can't be greater than number of args"));
    }
    let numkeys = numkeys as usize;
    let eng = engine(ctx.srv)?;
    let (sha, flags) = if by_sha {
        let sha = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
        let flags = eng.flags_of(&sha).ok_or_else(noscript)?;
        (sha, flags)
    } else {
        eng.load(&argv[1]).map_err(CmdError::msg)?
    };
    let read_only = ro_cmd || flags.no_writes;
    let limit = std::time::Duration::from_millis(ctx.srv.config.int("lua-time-limit").max(1) as u64);
    // The engine leaves the server while it runs, so the script's commands can borrow it.
    let Some(mut eng) = ctx.srv.lua.take() else { return Err(CmdError::msg("cannot start Lua")) };
    let mark = ctx.srv.aof.as_ref().map(|a| a.mark());
    let mut sess = Session::new(0, String::new(), String::new(), -1, ctx.srv.now_ms);
    sess.authenticated = true;
    sess.db = ctx.sess.db;
    // Effects are logged as they happen and wrapped below, never one by one.
    sess.in_exec = true;
    let mut host = ScriptHost { srv: ctx.srv, sess, read_only };
    let outcome = eng.run(&sha, &argv[3..3 + numkeys], &argv[3 + numkeys..], &mut host, limit);
    ctx.srv.lua = Some(eng);
    if let (Some(mark), false) = (mark, ctx.sess.in_exec)
        && let Some(aof) = ctx.srv.aof.as_mut()
    {
        aof.wrap_from(mark);
    }
    ctx.log_only_explicit();
    match outcome {
        Ok(Outcome::Reply(r)) => Ok(r),
        Ok(Outcome::Error { text, line }) => {
            let line = line.map_or_else(|| "?".to_string(), |l| l.to_string());
            Err(CmdError::Raw(format!("{text} script: {sha}, on @user_script:{line}.")))
        }
        Err(e) if e == "NOSCRIPT" => Err(noscript()),
        Err(e) => Err(CmdError::msg(e)),
    }
}

/// The script's side of `redis.call`: Redis's checks for scripts, then the command as a
/// client of the script's own; the reply is handed back encoded, as Redis parses it.
struct ScriptHost<'a> {
    srv: &'a mut ServerState,
    sess: Session,
    read_only: bool,
}

impl Host for ScriptHost<'_> {
    fn call(&mut self, argv: Vec<Bytes>, resp: u8) -> Result<Vec<u8>, String> {
        let entry = match resolve(&argv) {
            Ok(e) => e,
            Err((CmdError::WrongArity(_), _)) => {
                return Err("Wrong number of args calling Redis command from script".into());
            }
            Err(_) => return Err("Unknown Redis command called from script".into()),
        };
        if entry.spec.has(NOSCRIPT) {
            return Err("This Redis command is not allowed from script".into());
        }
        if self.read_only && entry.spec.has(WRITE) {
            return Err("Write commands are not allowed from read-only scripts.".into());
        }
        self.sess.resp = resp;
        let reply = call(self.srv, &mut self.sess, entry, &argv);
        let mut out = BytesMut::new();
        encode(&reply, resp, &mut out);
        Ok(out.to_vec())
    }
}

fn script_load(ctx: &mut Ctx, argv: &[Bytes]) -> CmdResult {
    let (sha, _) = engine(ctx.srv)?.load(&argv[2]).map_err(CmdError::msg)?;
    Ok(Reply::Bulk(Bytes::from(sha)))
}

fn script_exists(ctx: &mut Ctx, argv: &[Bytes]) -> CmdResult {
    let eng = ctx.srv.lua.as_deref();
    Ok(Reply::Array(argv[2..].iter().map(|s| Reply::Int(eng.is_some_and(|e| e.exists(s)) as i64)).collect()))
}

fn script_flush(ctx: &mut Ctx, argv: &[Bytes]) -> CmdResult {
    match argv.get(2) {
        None => {}
        Some(a) if argv.len() == 3 && (is(a, "sync") || is(a, "async")) => {}
        _ => return Err(CmdError::msg("SCRIPT FLUSH only support SYNC|ASYNC option")),
    }
    if let Some(e) = ctx.srv.lua.as_deref_mut() {
        e.flush();
    }
    Ok(Reply::Status("OK"))
}

fn script_kill(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    // Scripts run to completion (or to lua-time-limit) before anything else is served.
    Err(CmdError::Raw("NOTBUSY No scripts in execution right now.".into()))
}

fn script_help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
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
