//! Server family: CONFIG, TIME, SHUTDOWN, SLOWLOG, MEMORY, DEBUG, MONITOR, LASTSAVE.

use std::collections::HashSet;

use bytes::Bytes;

use super::args::{is, lossy};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, Keys, container, help_reply};
use crate::config::{Config, SetError};
use crate::protocol::{OK, Reply};
use crate::server::load::Reload;
use crate::server::mem_report::{MemoryReport, ratio};
use crate::server::shutdown::{Outcome, ShutdownFlags};
use crate::server::socket::Serves;
use crate::server::state::unix_us;
use crate::server::tls;
use crate::types::Value;
use crate::util::numfmt::parse_i64;

const KEY2: Keys = Keys { first: 2, last: 2, step: 1 };

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("config", -2, container)
        .doc("server", "A container for server configuration commands", "2.0.0", "Depends on subcommand.")
        .subcommands(CONFIG_SUBCOMMANDS),
    CommandSpec::new("lolwut", -1, lolwut).flags(READONLY | FAST).doc(
        "server",
        "Display some computer art and the Redis version",
        "5.0.0",
        "",
    ),
    CommandSpec::new("time", 1, time).flags(LOADING | STALE | FAST).doc(
        "server",
        "Return the current server time",
        "2.6.0",
        "O(1)",
    ),
    CommandSpec::new("save", 1, save).flags(ADMIN | NOSCRIPT | NO_MULTI | NO_ASYNC_LOADING).doc(
        "server",
        "Synchronously save the dataset to disk",
        "1.0.0",
        "O(N) where N is the total number of keys in all databases",
    ),
    CommandSpec::new("bgrewriteaof", 1, bgrewriteaof).flags(ADMIN | NOSCRIPT | NO_ASYNC_LOADING).doc(
        "server",
        "Asynchronously rewrite the append-only file",
        "1.0.0",
        "O(1)",
    ),
    CommandSpec::new("bgsave", -1, bgsave).flags(ADMIN | NOSCRIPT | NO_ASYNC_LOADING).doc(
        "server",
        "Asynchronously save the dataset to disk",
        "1.0.0",
        "O(N) where N is the total number of keys in all databases",
    ),
    CommandSpec::new("lastsave", 1, lastsave).flags(LOADING | STALE | FAST).doc(
        "server",
        "Get the UNIX time stamp of the last successful save to disk",
        "1.0.0",
        "O(1)",
    ),
    CommandSpec::new("shutdown", -1, shutdown).flags(ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY).doc(
        "server",
        "Synchronously save the dataset to disk and then shut down the server",
        "1.0.0",
        "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)",
    ),
    CommandSpec::new("monitor", 1, monitor).flags(ADMIN | NOSCRIPT | LOADING | STALE).doc(
        "server",
        "Listen for all requests received by the server in real time",
        "1.0.0",
        "",
    ),
    CommandSpec::new("slowlog", -2, container)
        .doc("server", "A container for slow log commands", "2.2.12", "Depends on subcommand.")
        .subcommands(SLOWLOG_SUBCOMMANDS),
    CommandSpec::new("memory", -2, container)
        .doc("server", "A container for memory diagnostics commands", "4.0.0", "Depends on subcommand.")
        .subcommands(MEMORY_SUBCOMMANDS),
    CommandSpec::new("debug", -2, debug).flags(ADMIN | NOSCRIPT | LOADING | STALE).doc(
        "server",
        "A container for debugging commands",
        "1.0.0",
        "Depends on subcommand.",
    ),
];

static CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", -3, config_get).flags(ADMIN | NOSCRIPT | LOADING | STALE).doc(
        "server",
        "Get the values of configuration parameters",
        "2.0.0",
        "O(N) when N is the number of configuration parameters provided",
    ),
    CommandSpec::new("set", -4, config_set).flags(ADMIN | NOSCRIPT | LOADING | STALE).doc(
        "server",
        "Set configuration parameters to the given values",
        "2.0.0",
        "O(N) when N is the number of configuration parameters provided",
    ),
    CommandSpec::new("resetstat", 2, config_resetstat).flags(ADMIN | NOSCRIPT | LOADING | STALE).doc(
        "server",
        "Reset the stats returned by INFO",
        "2.0.0",
        "O(1)",
    ),
    CommandSpec::new("rewrite", 2, config_rewrite).flags(ADMIN | NOSCRIPT | LOADING | STALE).doc(
        "server",
        "Rewrite the configuration file with the in memory configuration",
        "2.8.0",
        "O(1)",
    ),
    CommandSpec::new("help", 2, config_help).flags(LOADING | STALE).doc(
        "server",
        "Show helpful text about the different subcommands",
        "5.0.0",
        "O(1)",
    ),
];

static SLOWLOG_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", -2, slowlog_get).flags(ADMIN | LOADING | STALE).doc(
        "server",
        "Get the slow log's entries",
        "2.2.12",
        "O(N) where N is the number of entries returned",
    ),
    CommandSpec::new("len", 2, slowlog_len).flags(ADMIN | LOADING | STALE).doc(
        "server",
        "Get the slow log's length",
        "2.2.12",
        "O(1)",
    ),
    CommandSpec::new("reset", 2, slowlog_reset).flags(ADMIN | LOADING | STALE).doc(
        "server",
        "Clear all entries from the slow log",
        "2.2.12",
        "O(N) where N is the number of entries in the slowlog",
    ),
    CommandSpec::new("help", 2, slowlog_help).flags(LOADING | STALE).doc(
        "server",
        "Show helpful text about the different subcommands",
        "6.2.0",
        "O(1)",
    ),
];

static MEMORY_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("usage", -3, memory_usage).flags(READONLY).keys(KEY2).doc(
        "server",
        "Estimate the memory usage of a key",
        "4.0.0",
        "O(N) where N is the number of samples.",
    ),
    CommandSpec::new("help", 2, memory_help).flags(LOADING | STALE).doc(
        "server",
        "Show helpful text about the different subcommands",
        "4.0.0",
        "O(1)",
    ),
    CommandSpec::new("purge", 2, memory_purge).doc(
        "server",
        "Ask the allocator to release memory",
        "4.0.0",
        "Depends on how much memory is allocated, could be slow",
    ),
    CommandSpec::new("stats", 2, memory_stats).doc("server", "Show memory usage details", "4.0.0", "O(1)"),
    CommandSpec::new("doctor", 2, memory_doctor).doc("server", "Outputs memory problems report", "4.0.0", "O(1)"),
    CommandSpec::new("malloc-stats", 2, memory_malloc_stats).doc(
        "server",
        "Show allocator internal stats",
        "4.0.0",
        "Depends on how much memory is allocated, could be slow",
    ),
];

fn config_get(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for pat in &argv[2..] {
        for (shown, name) in Config::matching(pat) {
            if seen.insert(shown.clone()) {
                let v = ctx.srv.config.get(name).unwrap_or_default();
                out.push((Reply::Bulk(Bytes::from(shown)), Reply::Bulk(Bytes::from(v))));
            }
        }
    }
    Ok(Reply::Map(out))
}

/// LOLWUT [VERSION v]: Redis 7.0's own (unstable) version prints the version line, which is
/// what Ember prints for every version (the computer art of versions 5 and 6 is not drawn).
fn lolwut(_: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() >= 3 && is(argv[1], "version") {
        super::args::int(argv[2])?;
    }
    Ok(Reply::Verbatim(Bytes::from_static(b"Redis ver. 7.0.15\n")))
}

fn config_set(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if !argv.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    // Redis answers -LOADING before any other error when one of them is denied while loading.
    if ctx.srv.load_state().is_some() && argv[2..].chunks(2).any(|p| Config::denied_while_loading(&lossy(p[0]))) {
        return Err(CmdError::loading());
    }
    let failed = |name: &str, why: &str| {
        CmdError::msg(format!("CONFIG SET failed (possibly related to argument '{name}') - {why}"))
    };
    // The names first, in order (Redis checks them all before any value): unknown,
    // immutable or protected, repeated (an alias counts apart from its directive).
    let mut seen = HashSet::new();
    for pair in argv[2..].chunks(2) {
        let name = lossy(pair[0]);
        if Config::canonical(&name).is_none() {
            return Err(CmdError::msg(format!("Unknown option or number of arguments for CONFIG SET - '{name}'")));
        }
        if !Config::is_mutable(&name) {
            return Err(failed(&name, "can't set immutable config"));
        }
        if Config::is_protected(&name) && !ctx.srv.config.allows("enable-protected-configs", ctx.sess.is_local()) {
            return Err(failed(&name, "can't set protected config"));
        }
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(failed(&name, "duplicate parameter"));
        }
    }
    // Then the values, on a copy, so a failing one leaves the configuration untouched.
    let mut staged = ctx.srv.config.clone();
    for pair in argv[2..].chunks(2) {
        let name = lossy(pair[0]);
        if let Err(SetError::Invalid(reason)) = staged.set(&name, &lossy(pair[1]), false) {
            return Err(failed(&name, &reason));
        }
    }
    // TLS directives rebuild the contexts (certificates reload); one that fails changes
    // nothing, and the log says why.
    let tls_arg = argv[2..].chunks(2).map(|p| lossy(p[0])).find(|n| n.to_ascii_lowercase().starts_with("tls-"));
    let fresh_tls = match &tls_arg {
        Some(name) if tls::wanted(&staged) => match tls::configure(&staged) {
            Ok(c) => Some(Some(c)),
            Err(e) => {
                tracing::warn!("{e}");
                return Err(CmdError::msg(format!(
                    "CONFIG SET failed (possibly related to argument '{name}') - {}",
                    tls::UPDATE_FAILED
                )));
            }
        },
        Some(_) => Some(None),
        None => None,
    };
    let new_tls_port = staged.int("tls-port") as u16;
    if (new_tls_port != ctx.srv.config.int("tls-port") as u16 || staged.str("bind") != ctx.srv.config.str("bind"))
        && let Some(net) = ctx.srv.net.as_deref_mut()
        && let Err(e) = net.rebind(staged.str("bind"), new_tls_port, Serves::Tls)
    {
        tracing::warn!("Failed to bind {} tls port {new_tls_port}: {e}", staged.str("bind"));
        return Err(CmdError::msg(
            "CONFIG SET failed (possibly related to argument 'tls-port') - Unable to listen on this port. Check server logs.",
        ));
    }
    let new_metrics_port = staged.int("metrics-port") as u16;
    if (new_metrics_port != ctx.srv.config.int("metrics-port") as u16
        || staged.str("bind") != ctx.srv.config.str("bind"))
        && let Some(net) = ctx.srv.net.as_deref_mut()
        && let Err(e) = net.rebind(staged.str("bind"), new_metrics_port, Serves::Metrics)
    {
        tracing::warn!("Failed to bind {} metrics port {new_metrics_port}: {e}", staged.str("bind"));
        return Err(CmdError::msg(
            "CONFIG SET failed (possibly related to argument 'metrics-port') - Unable to listen on this port. Check server logs.",
        ));
    }
    if let Some(t) = fresh_tls {
        ctx.srv.tls = t;
    }
    // Listening addresses change before anything is applied: a port or address that cannot
    // be bound leaves the whole CONFIG SET undone (Redis's changeListener).
    let (new_port, new_bind) = (staged.port(), staged.str("bind").to_string());
    if (new_port != ctx.srv.config.port() || new_bind != ctx.srv.config.str("bind"))
        && let Some(net) = ctx.srv.net.as_deref_mut()
    {
        let which = if new_port != ctx.srv.config.port() { "port" } else { "bind" };
        match net.rebind(&new_bind, new_port, Serves::Resp) {
            Ok(p) => {
                ctx.srv.bound_port = p;
                let _ = staged.set("port", &p.to_string(), true);
            }
            Err(e) => {
                tracing::warn!("Failed to bind {new_bind} port {new_port}: {e}");
                let why = if which == "port" {
                    "Unable to listen on this port"
                } else {
                    "Failed to bind to specified addresses."
                };
                return Err(CmdError::msg(format!(
                    "CONFIG SET failed (possibly related to argument '{which}') - {why}"
                )));
            }
        }
    }
    // The OOM score is set before the change commits: one that can't be written changes
    // nothing (Redis's updateOOMScoreAdj fails the CONFIG SET).
    if let Some(name) =
        argv[2..].chunks(2).map(|p| lossy(p[0]).to_ascii_lowercase()).find(|n| n.starts_with("oom-score-adj"))
        && ctx.srv.apply_oom_score(staged.str("oom-score-adj"), staged.str("oom-score-adj-values")).is_err()
    {
        return Err(CmdError::msg(format!(
            "CONFIG SET failed (possibly related to argument '{name}') - Failed to set current oom_score_adj. Check server logs."
        )));
    }
    let aof_was = ctx.srv.config.bool("appendonly");
    let auto_gc_was_off = ctx.srv.config.bool("aof-disable-auto-gc");
    let maxmemory_was = ctx.srv.hot.eviction.maxmemory;
    ctx.srv.config = staged;
    ctx.srv.refresh_hot();
    // A lower maxmemory starts evicting now, between polls (Redis's eviction time proc), not
    // at the next command.
    if ctx.srv.hot.eviction.maxmemory != 0 && (maxmemory_was == 0 || ctx.srv.hot.eviction.maxmemory < maxmemory_was) {
        ctx.srv.evicting = true;
    }
    // appendonly switched at run time: start the AOF with a rewrite of the current data, or
    // stop logging (Redis's startAppendOnly / stopAppendOnly).
    match (aof_was, ctx.srv.config.bool("appendonly")) {
        (false, true) => ctx.srv.start_aof(ctx.sess.in_exec).map_err(|e| CmdError::msg(e.to_string()))?,
        (true, false) => ctx.srv.stop_aof(),
        _ => {}
    }
    if let Some(aof) = ctx.srv.aof.as_mut() {
        aof.fsync = crate::server::aof::Fsync::parse(ctx.srv.config.str("appendfsync"));
        aof.timestamps = ctx.srv.config.bool("aof-timestamp-enabled");
    }
    // Auto-gc switched back on deletes the history files kept meanwhile.
    if auto_gc_was_off && !ctx.srv.config.bool("aof-disable-auto-gc") {
        ctx.srv.aof_del_history_files();
    }
    Ok(OK)
}

fn config_resetstat(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let stats = &mut ctx.srv.stats;
    *stats = Default::default();
    for db in ctx.srv.dbs.iter_mut() {
        db.reset_stats();
    }
    ctx.srv.slowlog.clear();
    ctx.srv.evictor.evicted_keys = 0;
    ctx.srv.expire_lag.reset();
    ctx.srv.loop_stall_max_us = 0;
    ctx.srv.repl.reset_stats();
    ctx.srv.lazyfree.reset_stats();
    Ok(OK)
}

fn config_rewrite(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    rewrite_config(ctx, false)
}

/// CONFIG REWRITE, or with `force_all` every directive, defaults too (DEBUG
/// CONFIG-REWRITE-FORCE-ALL, which the test suite uses to check that all of them load back).
fn rewrite_config(ctx: &mut Ctx, force_all: bool) -> CmdResult {
    let Some(file) = ctx.srv.config.file.clone() else {
        return Err(CmdError::msg("The server is running without a config file"));
    };
    // The users are written as `user` lines, as Redis does when there is no aclfile.
    ctx.srv.config.users = if ctx.srv.config.str("aclfile").is_empty() {
        let lines = ctx.srv.acl.list_lines(super::acl::catalog());
        lines.iter().map(|l| l.split(' ').skip(1).map(str::to_string).collect()).collect()
    } else {
        Vec::new()
    };
    std::fs::write(&file, ctx.srv.config.rewrite_text(force_all))
        .map_err(|e| CmdError::msg(format!("Rewriting config file: {e}")))?;
    Ok(OK)
}

fn config_help(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(help_reply(
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    ))
}

fn time(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let us = unix_us();
    Ok(Reply::Array(vec![
        Reply::Bulk(Bytes::from((us / 1_000_000).to_string())),
        Reply::Bulk(Bytes::from((us % 1_000_000).to_string())),
    ]))
}

fn lastsave(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(ctx.srv.save_stats.last_save_secs as i64))
}

fn bgrewriteaof(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    if ctx.srv.aof_rewrite_in_progress() {
        return Err(CmdError::msg("Background append only file rewriting already in progress"));
    }
    // Inside MULTI/EXEC it starts after the transaction, as in Redis.
    if ctx.srv.bgsave_in_progress() || ctx.sess.in_exec {
        ctx.srv.aofctl.rewrite_scheduled = true;
        // A manual rewrite is not held back by earlier failures.
        ctx.srv.aofctl.consecutive_failures = 0;
        return Ok(Reply::Status("Background append only file rewriting scheduled"));
    }
    ctx.srv.start_aof_rewrite().map_err(|_| {
        CmdError::msg("Can't execute an AOF background rewriting. Please check the server logs for more information.")
    })?;
    Ok(Reply::Status("Background append only file rewriting started"))
}

fn save(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    if ctx.srv.bgsave_in_progress() {
        return Err(CmdError::msg("Background save already in progress"));
    }
    ctx.srv.save_rdb().map_err(|_| CmdError::msg("Failed saving the DB. Check the server logs."))?;
    Ok(OK)
}

/// BGSAVE [SCHEDULE]: a forkless snapshot taken in slices while the server keeps serving
/// (server::persist, keyspace::snapshot).
fn bgsave(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 2 || argv.get(1).is_some_and(|a| !is(a, "schedule")) {
        return Err(CmdError::Syntax);
    }
    let schedule = argv.len() == 2;
    if ctx.srv.rdb_bgsave_in_progress() {
        return Err(CmdError::msg("Background save already in progress"));
    }
    // Redis's rules: with an AOF rewrite running, or inside EXEC, the save is scheduled.
    if ctx.srv.aof_rewrite_in_progress() || ctx.sess.in_exec {
        if schedule || ctx.sess.in_exec {
            ctx.srv.bgsave_scheduled = true;
            return Ok(Reply::Status("Background saving scheduled"));
        }
        return Err(CmdError::msg(
            "Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.",
        ));
    }
    ctx.srv.start_bgsave().map_err(|e| CmdError::msg(format!("Background save failed to start: {e}")))?;
    let pid = ctx.srv.bgsave.as_ref().and_then(|b| b.child_pid).unwrap_or_else(std::process::id);
    tracing::info!("Background saving started by pid {pid}");
    Ok(Reply::Status("Background saving started"))
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT] (see [`crate::server::shutdown`]): the
/// client gets no reply when the server exits, and stays blocked while lagging replicas are
/// waited for.
fn shutdown(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut flags = ShutdownFlags::default();
    let mut abort = false;
    for a in &argv[1..] {
        match () {
            _ if is(a, "nosave") => flags.nosave = true,
            _ if is(a, "save") => flags.save = true,
            _ if is(a, "now") => flags.now = true,
            _ if is(a, "force") => flags.force = true,
            _ if is(a, "abort") => abort = true,
            _ => return Err(CmdError::Syntax),
        }
    }
    if (abort && flags != ShutdownFlags::default()) || (flags.save && flags.nosave) {
        return Err(CmdError::Syntax);
    }
    if abort {
        return if ctx.srv.abort_shutdown() { Ok(OK) } else { Err(CmdError::msg("No shutdown in progress.")) };
    }
    if !flags.now && ctx.sess.in_exec {
        return Err(CmdError::msg("SHUTDOWN without NOW or ABORT isn't allowed for DENY BLOCKING client"));
    }
    // A busy script can only be ended without saving: its half-done effects must not reach
    // the disk.
    if let Some(r) = ctx.srv.running_script.as_ref().filter(|r| r.busy())
        && !flags.nosave
    {
        return Err(CmdError::Raw(r.busy_error()));
    }
    match ctx.srv.prepare_shutdown(flags) {
        Outcome::Exit => {
            if let Some(net) = ctx.srv.net.as_deref_mut() {
                net.close_listeners();
            }
            ctx.sess.close_after_reply = true;
            Ok(Reply::NoReply)
        }
        Outcome::Waiting => super::block(ctx, argv, &[], None, Reply::NoReply, Reply::NoReply),
        Outcome::Failed => Err(CmdError::Raw(crate::server::shutdown::FAILED.into())),
    }
}

fn monitor(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    if !ctx.sess.monitor {
        ctx.sess.monitor = true;
        ctx.srv.monitors.push(ctx.sess.id);
    }
    Ok(OK)
}

fn slowlog_get(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // Redis matches GET with at most one argument as the subcommand.
    if argv.len() > 3 {
        return Err(super::args::subcommand_syntax(argv, "SLOWLOG"));
    }
    let count = match argv.get(2) {
        None => 10,
        Some(a) => match parse_i64(a) {
            Some(-1) => usize::MAX,
            Some(n) if n >= 0 => n as usize,
            _ => return Err(CmdError::msg("count should be greater than or equal to -1")),
        },
    };
    let out = ctx
        .srv
        .slowlog
        .iter()
        .take(count)
        .map(|e| {
            Reply::Array(vec![
                Reply::Int(e.id as i64),
                Reply::Int(e.time_s as i64),
                Reply::Int(e.duration_us as i64),
                Reply::Array(e.args.iter().cloned().map(Reply::Bulk).collect()),
                Reply::bulk_str(&e.addr),
                Reply::bulk_str(&e.name),
            ])
        })
        .collect();
    Ok(Reply::Array(out))
}

fn slowlog_len(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(ctx.srv.slowlog.len() as i64))
}

fn slowlog_reset(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    ctx.srv.slowlog.clear();
    Ok(OK)
}

fn slowlog_help(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(help_reply(
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    ))
}

/// Approximate heap footprint of a value plus its key and entry overhead.
pub fn value_memory(key_len: usize, v: &Value) -> usize {
    let base = 16 + key_len + 64;
    match v {
        Value::Str(s) => match s {
            crate::types::StrValue::Int(_) => base,
            other => base + other.len(),
        },
        Value::Hash(h) => base + h.mem_usage(),
        Value::Set(s) => base + s.mem_usage(),
        Value::List(l) => base + l.mem_usage(),
        Value::ZSet(z) => base + z.mem_usage(),
        Value::Stream(st) => base + st.mem_usage(),
    }
}

fn memory_usage(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut i = 3;
    while i < argv.len() {
        if is(argv[i], "samples") && i + 1 < argv.len() {
            if parse_i64(argv[i + 1]).is_none_or(|n| n < 0) {
                return Err(CmdError::NotInteger);
            }
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let key = &argv[2];
    Ok(ctx.db().peek(key).map_or(Reply::Null, |e| Reply::Int(value_memory(key.len(), &e.value) as i64)))
}

fn memory_purge(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    crate::alloc::purge();
    Ok(OK)
}

fn memory_malloc_stats(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(Reply::Verbatim(Bytes::from(crate::alloc::malloc_stats_text())))
}

fn memory_stats(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let r = MemoryReport::gather(ctx.srv);
    let (alloc, active, resident) = r.allocator;
    let int = |n: usize| Reply::Int(n as i64);
    let float = |f: f64| Reply::Double(f);
    let mut m: Vec<(Reply, Reply)> = vec![
        ("peak.allocated", int(r.peak)),
        ("total.allocated", int(r.used)),
        ("startup.allocated", int(r.startup)),
        ("replication.backlog", int(r.backlog)),
        ("clients.slaves", int(r.clients_replicas)),
        ("clients.normal", int(r.clients_normal)),
        ("cluster.links", int(0)),
        ("aof.buffer", int(r.aof_buffer)),
        ("lua.caches", int(r.lua_caches)),
        ("functions.caches", int(r.function_caches)),
    ]
    .into_iter()
    .map(|(k, v)| (Reply::bulk_str(k), v))
    .collect();
    for (i, main, exp) in &r.dbs {
        let inner = Reply::Map(vec![
            (Reply::bulk_str("overhead.hashtable.main"), int(*main)),
            (Reply::bulk_str("overhead.hashtable.expires"), int(*exp)),
        ]);
        m.push((Reply::Bulk(Bytes::from(format!("db.{i}"))), inner));
    }
    let rest: Vec<(&str, Reply)> = vec![
        ("overhead.total", int(r.overhead())),
        ("keys.count", int(r.keys)),
        ("keys.bytes-per-key", int(r.net().checked_div(r.keys).unwrap_or(0))),
        ("dataset.bytes", int(r.dataset())),
        ("dataset.percentage", float(r.dataset_percentage())),
        ("peak.percentage", float(r.peak_percentage())),
        ("allocator.allocated", int(alloc)),
        ("allocator.active", int(active)),
        ("allocator.resident", int(resident)),
        ("allocator-fragmentation.ratio", float(ratio(active, alloc))),
        ("allocator-fragmentation.bytes", int(active.saturating_sub(alloc))),
        ("allocator-rss.ratio", float(ratio(resident, active))),
        ("allocator-rss.bytes", int(resident.saturating_sub(active))),
        ("rss-overhead.ratio", float(ratio(r.rss, resident))),
        ("rss-overhead.bytes", Reply::Int(r.rss as i64 - resident as i64)),
        ("fragmentation", float(ratio(r.rss, r.used))),
        ("fragmentation.bytes", Reply::Int(r.rss as i64 - r.used as i64)),
    ];
    m.extend(rest.into_iter().map(|(k, v)| (Reply::bulk_str(k), v)));
    Ok(Reply::Map(m))
}

/// MEMORY DOCTOR: Redis's wording for the states it distinguishes that apply to Ember.
fn memory_doctor(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let r = MemoryReport::gather(ctx.srv);
    const EMPTY: &str = "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n";
    if r.used < 5 * 1024 * 1024 {
        return Ok(Reply::Verbatim(Bytes::from_static(EMPTY.as_bytes())));
    }
    let mut issues = Vec::new();
    if r.peak > r.used.saturating_mul(3) / 2 {
        issues.push(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
    }
    let (alloc, active, _) = r.allocator;
    if alloc > 0 && active as f64 / alloc as f64 > 1.1 && active - alloc > 10 << 20 {
        issues.push(" * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You may try enabling 'activedefrag' config option.\n\n");
    }
    let text = if issues.is_empty() {
        "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"
            .to_string()
    } else {
        let mut t = "Sam, I detected a few issues in this Redis instance memory implants:\n\n".to_string();
        for i in issues {
            t.push_str(i);
        }
        t.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
        t
    };
    Ok(Reply::Verbatim(Bytes::from(text)))
}

fn memory_help(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(help_reply(
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    ))
}

/// DEBUG POPULATE count [prefix] [size]: keys `prefix:N` holding `value:N` (cut or padded
/// with zero bytes to `size`); keys that exist are left alone.
fn debug_populate(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let count = parse_i64(argv[2]).filter(|n| *n >= 0).ok_or(CmdError::msg("count must be a non-negative integer"))?;
    let prefix = argv.get(3).map_or(&b"key"[..], |p| &p[..]);
    let size = match argv.get(4) {
        None => 0,
        Some(a) => {
            parse_i64(a).filter(|n| *n >= 0).ok_or(CmdError::msg("value size must be a non-negative integer"))?
        }
    };
    // Ember's bound: Redis would try to build any count; this one refuses what could not fit
    // in memory anyway.
    let per_key = size.max(16).saturating_add(96);
    if count.saturating_mul(per_key) > 64 << 30 {
        return Err(CmdError::msg("DEBUG POPULATE would need more than 64 GB"));
    }
    let db = ctx.db();
    for j in 0..count {
        let key = format!("{}:{j}", String::from_utf8_lossy(prefix));
        if db.contains(key.as_bytes()) {
            continue;
        }
        let text = format!("value:{j}");
        let value = if size == 0 {
            text.into_bytes()
        } else {
            let mut v = vec![0u8; size as usize];
            let n = text.len().min(v.len());
            v[..n].copy_from_slice(&text.as_bytes()[..n]);
            v
        };
        db.set(key.as_bytes(), Value::Str(crate::types::StrValue::from_bytes(&value)), false);
    }
    Ok(OK)
}

/// strerror's text for an errno, as Redis's DEBUG MALLCTL replies it.
fn errno_text(e: i32) -> String {
    let text = std::io::Error::from_raw_os_error(e).to_string();
    // Rust appends " (os error N)".
    text.split(" (os error").next().unwrap_or_default().to_string()
}

/// DEBUG PROTOCOL <type>: one reply of each RESP3 type, as Redis's test suite reads them.
fn debug_protocol(name: &[u8]) -> CmdResult {
    let text = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    Ok(match name.to_ascii_lowercase().as_slice() {
        b"string" => text("Hello World"),
        b"integer" => Reply::Int(12345),
        // Redis 7.0.15 sends 3.141 (not PI).
        #[allow(clippy::approx_constant)]
        b"double" => Reply::Double(3.141),
        b"bignum" => Reply::BigNum("1234567999999999999999999999999999999".into()),
        b"null" => Reply::Null,
        b"array" => Reply::Array((0..3).map(Reply::Int).collect()),
        b"set" => Reply::Set((0..3).map(Reply::Int).collect()),
        b"map" => Reply::Map((0..3).map(|j| (Reply::Int(j), Reply::Bool(j == 1))).collect()),
        b"attrib" => Reply::Multi(vec![
            Reply::Attribute(vec![(text("key-popularity"), Reply::Array(vec![text("key:123"), Reply::Int(90)]))]),
            text("Some real reply following the attribute"),
        ]),
        b"push" => Reply::Resp3Or(
            Box::new(Reply::Multi(vec![
                Reply::Push(vec![text("server-cpu-usage"), Reply::Int(42)]),
                text("Some real reply following the push reply"),
            ])),
            Box::new(Reply::Error("ERR RESP2 is not supported by this command".into())),
        ),
        b"true" => Reply::Bool(true),
        b"false" => Reply::Bool(false),
        b"verbatim" => Reply::Verbatim(Bytes::from_static(b"This is a verbatim\nstring")),
        _ => {
            return Err(CmdError::msg(
                "Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
            ));
        }
    })
}

fn debug(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let sub = &argv[1];
    if is(sub, "log") && argv.len() == 3 {
        // A marker in the server's log (tests line their steps up with it), cut at Redis's
        // LOG_MAX_LEN (1024) so a client cannot write a 512 MB log line.
        let msg = &argv[2][..argv[2].len().min(1024)];
        tracing::warn!("DEBUG LOG: {}", String::from_utf8_lossy(msg));
        return Ok(OK);
    }
    if is(sub, "sleep") && argv.len() == 3 {
        let secs = crate::util::numfmt::parse_f64(argv[2]).unwrap_or(0.0).clamp(0.0, 3600.0);
        std::thread::sleep(std::time::Duration::from_secs_f64(secs));
        return Ok(OK);
    }
    if is(sub, "segfault") {
        // Redis's tool for testing crash reports: the process dies by SIGSEGV, report first.
        tracing::warn!("DEBUG SEGFAULT called");
        let _ = signal_hook::low_level::raise(signal_hook::consts::SIGSEGV);
        return Ok(OK);
    }
    if is(sub, "panic") {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        panic!("DEBUG PANIC called at Unix time {now}");
    }
    if is(sub, "mallctl") && (argv.len() == 3 || argv.len() == 4) {
        // Reads only: a written integer may be a pointer to jemalloc (Redis writes it anyway).
        if argv.len() == 4 {
            return Err(CmdError::msg("DEBUG MALLCTL only reads in Ember"));
        }
        let n = crate::alloc::mallctl_read_int(&lossy(argv[2])).map_err(|e| CmdError::msg(errno_text(e)))?;
        return Ok(Reply::Int(n));
    }
    if is(sub, "mallctl-str") && argv.len() == 4 && argv[3] == b"VOID" {
        crate::alloc::mallctl_void(&lossy(argv[2])).map_err(|e| CmdError::msg(errno_text(e)))?;
        return Ok(OK);
    }
    if is(sub, "replicate") && argv.len() >= 3 {
        // Into the replication stream only, as it is (tests make replicas diverge with it).
        let args: Vec<&[u8]> = argv[2..].iter().map(|a| &a[..]).collect();
        ctx.srv.replicate_verbatim(&args);
        return Ok(OK);
    }
    if is(sub, "digest") && argv.len() == 2 {
        let d = crate::keyspace::digest::dataset(&ctx.srv.dbs);
        return Ok(Reply::StatusOwned(crate::keyspace::digest::hex(&d)));
    }
    if is(sub, "digest-value") {
        let mut out = Vec::with_capacity(argv.len() - 2);
        for k in &argv[2..] {
            // Like Redis, logically expired keys are digested too (no lazy expiry here).
            let d = match ctx.db().iter_entry(k) {
                Some((v, exp)) => crate::keyspace::digest::value(v, exp),
                None => [0; 20],
            };
            out.push(Reply::StatusOwned(crate::keyspace::digest::hex(&d)));
        }
        return Ok(Reply::Array(out));
    }
    if is(sub, "reload") {
        // Save, then load the file back: a round trip through the RDB format. NOSAVE loads
        // the file as it is; NOFLUSH keeps the dataset (MERGE lets the file's copies win).
        let (mut flush, mut save, mut merge) = (true, true, false);
        for a in &argv[2..] {
            if is(a, "merge") {
                merge = true;
            } else if is(a, "noflush") {
                flush = false;
            } else if is(a, "nosave") {
                save = false;
            } else {
                return Err(CmdError::msg("DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."));
            }
        }
        ctx.srv.abort_bgsave();
        if save {
            ctx.srv.save_rdb().map_err(|_| CmdError::msg("Error trying to save the DB. Check the server logs."))?;
        }
        let how = match (flush, merge) {
            (true, _) => Reload::Replace,
            (false, false) => Reload::Add,
            (false, true) => Reload::Merge,
        };
        ctx.srv
            .load_rdb_file(how)
            .map_err(|e| CmdError::msg(format!("Error trying to load the RDB dump, check server logs. ({e})")))?;
        tracing::warn!("DB reloaded by DEBUG RELOAD");
        return Ok(OK);
    }
    if is(sub, "listpack") && argv.len() == 3 {
        // Redis prints the listpack's entries; Ember logs the value's shape.
        let v = ctx.db().view(argv[2]).ok_or(CmdError::NoSuchKey)?;
        tracing::info!("DEBUG LISTPACK {}: {}", String::from_utf8_lossy(argv[2]), v.encoding_name());
        return Ok(Reply::StatusOwned("Listpack structure printed on stdout".into()));
    }
    if is(sub, "htstats") && argv.len() == 3 {
        let id = parse_i64(argv[2]).ok_or(CmdError::NotInteger)?;
        let db = usize::try_from(id).ok().and_then(|i| ctx.srv.dbs.get(i));
        let db = db.ok_or_else(|| CmdError::msg("Out of range database"))?;
        return Ok(Reply::Verbatim(db.table_stats().into()));
    }
    if is(sub, "htstats-key") && argv.len() == 3 {
        let v = ctx.db().view(argv[2]).ok_or(CmdError::NoSuchKey)?;
        let stats = v.table_stats().ok_or_else(|| {
            CmdError::msg("The value stored at the specified key is not represented using an hash table")
        })?;
        return Ok(Reply::Verbatim(stats.into()));
    }
    if is(sub, "quicklist-packed-threshold") && argv.len() == 3 {
        // Ember's lists have no plain nodes: the threshold is checked and accepted.
        return match crate::config::parse_memory(&String::from_utf8_lossy(argv[2])) {
            Some(n) if n < (1u64 << 32) - (1 << 20) => Ok(OK),
            _ => Err(CmdError::msg("argument must be a memory value bigger than 1 and smaller than 4gb")),
        };
    }
    if is(sub, "change-repl-id") && argv.len() == 2 {
        // A new replication history, as Redis's test suite asks for (changeReplicationId +
        // clearReplicationId2).
        tracing::info!("Changing replication IDs after receiving DEBUG change-repl-id");
        ctx.srv.repl.new_history();
        return Ok(OK);
    }
    if is(sub, "pause-cron") && argv.len() == 3 {
        ctx.srv.cron_paused = parse_i64(argv[2]).unwrap_or(0) != 0;
        return Ok(OK);
    }
    if is(sub, "set-skip-checksum-validation") && argv.len() == 3 {
        ctx.srv.skip_checksum_validation = parse_i64(argv[2]).unwrap_or(0) != 0;
        return Ok(OK);
    }
    if is(sub, "set-disable-deny-scripts") && argv.len() == 3 {
        ctx.srv.scripts_may_run_anything = parse_i64(argv[2]).unwrap_or(0) != 0;
        return Ok(OK);
    }
    if is(sub, "replybuffer") && argv.len() == 4 {
        // The reply-buffer sizes CLIENT LIST reports (see Session::resize_reply_buffer).
        if is(argv[2], "peak-reset-time") {
            ctx.srv.reply_peak_reset_ms = if is(argv[3], "never") {
                -1
            } else if is(argv[3], "reset") {
                5000
            } else {
                parse_i64(argv[3]).ok_or(CmdError::NotInteger)?
            };
            return Ok(OK);
        }
        if is(argv[2], "resizing") {
            ctx.srv.reply_resizing = parse_i64(argv[3]).ok_or(CmdError::NotInteger)? != 0;
            return Ok(OK);
        }
        return Err(CmdError::Syntax);
    }
    if is(sub, "populate") && (3..=5).contains(&argv.len()) {
        return debug_populate(ctx, argv);
    }
    if is(sub, "loadaof") && argv.len() == 2 {
        ctx.srv.debug_load_aof().map_err(|e| CmdError::msg(e.to_string()))?;
        return Ok(OK);
    }
    if is(sub, "aof-flush-sleep") && argv.len() == 3 {
        ctx.srv.aofctl.flush_sleep_us = parse_i64(argv[2]).ok_or(CmdError::NotInteger)?.max(0) as u64;
        return Ok(OK);
    }
    if is(sub, "protocol") && argv.len() == 3 {
        return debug_protocol(argv[2]);
    }
    if is(sub, "config-rewrite-force-all") && argv.len() == 2 {
        return rewrite_config(ctx, true);
    }
    if is(sub, "clusterlink") && argv.len() == 5 && is(argv[2], "kill") {
        let Some(c) = ctx.srv.cluster.as_deref_mut() else {
            return Err(CmdError::msg("Debug option only available for cluster mode enabled setup!"));
        };
        let name = String::from_utf8_lossy(argv[4]).into_owned();
        let id = c.lookup(&name).ok_or_else(|| CmdError::msg(format!("Unknown node {name}")))?;
        let (to, from) = match () {
            _ if is(argv[3], "to") => (true, false),
            _ if is(argv[3], "from") => (false, true),
            _ if is(argv[3], "all") => (true, true),
            _ => return Err(CmdError::msg(format!("Unknown direction {}", String::from_utf8_lossy(argv[3])))),
        };
        c.kill_links(id, to, from);
        return Ok(OK);
    }
    if is(sub, "drop-cluster-packet-filter") && argv.len() == 3 {
        let ty = parse_i64(argv[2]).ok_or(CmdError::NotInteger)?;
        if let Some(c) = ctx.srv.cluster.as_deref_mut() {
            c.drop_filter = ty;
        }
        return Ok(OK);
    }
    if is(sub, "set-active-expire") && argv.len() == 3 {
        ctx.srv.active_expire_enabled = parse_i64(argv[2]).unwrap_or(1) != 0;
        return Ok(OK);
    }
    if is(sub, "object") && argv.len() == 3 {
        let now = ctx.now_ms();
        let key = &argv[2];
        let Some((e, lru)) = ctx.db().raw_entry(key) else {
            return Err(CmdError::NoSuchKey);
        };
        let idle = crate::keyspace::evict::lru_idle_ms(lru, now) / 1000;
        let ser = match &e.value {
            Value::Str(s) => s.len(),
            Value::Hash(h) => h.iter().map(|(f, v)| f.len() + v.len() + 2).sum(),
            Value::Set(s) => s.iter().map(|m| m.len() + 1).sum(),
            Value::List(l) => l.iter().map(|m| m.len() + 2).sum(),
            Value::ZSet(z) => z.range(0, z.len(), false).map(|(m, _)| m.len() + 10).sum(),
            Value::Stream(st) => st.mem_usage(),
        };
        return Ok(Reply::StatusOwned(format!(
            "Value at:0x{:x} refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
            e as *const _ as usize,
            e.value.encoding_name(),
            ser,
            lru,
            idle
        )));
    }
    if is(sub, "help") && argv.len() == 2 {
        return Ok(help_reply(
            "DEBUG",
            &[
                "HTSTATS <dbid>",
                "    Return hash table statistics of the specified Redis database.",
                "HTSTATS-KEY <key>",
                "    Like HTSTATS but for the hash table stored at <key>'s value.",
                "LOG <message>",
                "    Write <message> to the server log.",
                "OBJECT <key>",
                "    Show low level info about the `key` and associated value.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background when they are not accessed (otherwise the Redis behavior). Setting it to 1 reenables back the default.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
            ],
        ));
    }
    Err(super::args::subcommand_syntax(argv, "DEBUG"))
}
