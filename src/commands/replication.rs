//! Replication family: SYNC, PSYNC, REPLCONF (master side), REPLICAOF / SLAVEOF and ROLE.

use super::args::{is, lossy};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::protocol::{OK, Reply};
use crate::server::failover::{Failover, Phase};
use crate::util::numfmt::parse_i64;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sync", 1, sync).flags(ADMIN | NOSCRIPT | NO_MULTI | NO_ASYNC_LOADING).doc(
        "server",
        "Internal command used for replication",
        "1.0.0",
        "",
    ),
    CommandSpec::new("psync", -3, psync).flags(ADMIN | NOSCRIPT | NO_MULTI | NO_ASYNC_LOADING).doc(
        "server",
        "Internal command used for replication",
        "2.8.0",
        "",
    ),
    CommandSpec::new("replconf", -1, replconf).flags(ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY).doc(
        "server",
        "An internal command for configuring the replication stream",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("replicaof", 3, replicaof).flags(ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING).doc(
        "server",
        "Make the server a replica of another instance, or promote it as master.",
        "5.0.0",
        "O(1)",
    ),
    CommandSpec::new("slaveof", 3, replicaof).flags(ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING).doc(
        "server",
        "Make the server a replica of another instance, or promote it as master.",
        "1.0.0",
        "O(1)",
    ),
    CommandSpec::new("failover", -1, failover).flags(ADMIN | NOSCRIPT | STALE).doc(
        "server",
        "Start a coordinated failover between this server and one of its replicas.",
        "6.2.0",
        "O(1)",
    ),
    CommandSpec::new("role", 1, role).flags(NOSCRIPT | LOADING | STALE | FAST).doc(
        "server",
        "Return the role of the instance in the context of replication",
        "2.8.12",
        "O(1)",
    ),
];

fn replicaof(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if ctx.srv.cluster.is_some() {
        return Err(CmdError::msg("REPLICAOF not allowed in cluster mode."));
    }
    if ctx.srv.failover.is_some() {
        return Err(CmdError::msg("REPLICAOF not allowed while failing over."));
    }
    if is(argv[1], "no") && is(argv[2], "one") {
        if ctx.srv.master.is_some() {
            ctx.srv.stop_replicating();
            tracing::info!("MASTER MODE enabled (user request from '{}')", ctx.sess.addr);
        }
        return Ok(OK);
    }
    if ctx.sess.replica {
        return Err(CmdError::msg("Command is not valid when client is a replica."));
    }
    let port = parse_i64(argv[2]).filter(|p| (0..=65535).contains(p)).ok_or(CmdError::msg("Invalid master port"))?;
    let host = lossy(argv[1]);
    if let Some(m) = ctx.srv.master.as_deref()
        && m.host.eq_ignore_ascii_case(&host)
        && i64::from(m.port) == port
    {
        tracing::info!(
            "REPLICAOF would result into synchronization with the master we are already connected with. No operation performed."
        );
        return Ok(Reply::Status("OK Already connected to specified master"));
    }
    ctx.srv.replicate_from(host.clone(), port as u16);
    tracing::info!("REPLICAOF {host}:{port} enabled (user request from '{}')", ctx.sess.addr);
    Ok(OK)
}

/// ROLE: `master offset replicas` or `slave host port state offset`.
fn role(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    use crate::server::replica::LinkState;
    if let Some(m) = ctx.srv.master.as_deref() {
        let state = match m.state {
            LinkState::Connect => "connect",
            LinkState::Handshake { .. } | LinkState::AwaitPsync => "handshake",
            LinkState::AwaitImage | LinkState::Transfer => "sync",
            LinkState::Connected => "connected",
        };
        let offset = if m.link_up() { ctx.srv.repl.offset as i64 } else { -1 };
        return Ok(Reply::Array(vec![
            Reply::bulk_str("slave"),
            Reply::bulk_str(&m.host),
            Reply::Int(i64::from(m.port)),
            Reply::bulk_str(state),
            Reply::Int(offset),
        ]));
    }
    let replicas = ctx
        .srv
        .repl
        .replicas
        .iter()
        .filter_map(|id| ctx.srv.clients.get(id))
        .map(|r| {
            let ip = r.addr.rsplit_once(':').map_or(r.addr.as_str(), |(ip, _)| ip);
            Reply::Array(vec![
                Reply::bulk_str(ip),
                Reply::bulk_str(&r.replica_port.to_string()),
                Reply::bulk_str(&ctx.srv.repl.offset.to_string()),
            ])
        })
        .collect();
    Ok(Reply::Array(vec![Reply::bulk_str("master"), Reply::Int(ctx.srv.repl.offset as i64), Reply::Array(replicas)]))
}

/// Sends the data set, then the write stream, to this connection from now on: from a
/// background snapshot (see ServerState::attach_replica), or, for a replica that wants the
/// function libraries alone (redis-cli --functions-rdb), a small image made at once.
fn attach(ctx: &mut Ctx, psync: bool) -> CmdResult {
    if ctx.sess.replica {
        return Ok(Reply::NoReply);
    }
    if ctx.srv.master.as_deref().is_some_and(|m| !m.link_up()) {
        return Err(CmdError::Raw("NOMASTERLINK Can't SYNC while not connected with my master".into()));
    }
    tracing::info!("Replica {} asks for synchronization", ctx.sess.replica_name());
    if !ctx.sess.replica_functions_only {
        ctx.srv.attach_replica(ctx.sess, psync);
        return Ok(Reply::NoReply);
    }
    let image = ctx.srv.attach_functions_replica(ctx.sess).map_err(|e| CmdError::Raw(format!("ERR {e}")))?;
    let mut out = Vec::new();
    if psync {
        out = format!("+FULLRESYNC {} {}\r\n", ctx.srv.repl.replid, ctx.srv.repl.offset).into_bytes();
    }
    out.extend_from_slice(&image);
    send_raw(ctx, &out);
    Ok(Reply::NoReply)
}

/// Written as it is: a replica gets no other replies (see server::execute::process).
fn send_raw(ctx: &mut Ctx, out: &[u8]) {
    ctx.sess.out.extend_from_slice(out);
    ctx.srv.stats.net_output_bytes += out.len() as u64;
}

/// FAILOVER [TO host port [FORCE]] [TIMEOUT ms] | ABORT, with Redis 7.0's checks and errors.
fn failover(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() == 2 && is(argv[1], "abort") {
        if ctx.srv.failover.is_none() {
            return Err(CmdError::msg("No failover in progress."));
        }
        ctx.srv.abort_failover("Failover manually aborted");
        return Ok(OK);
    }
    let (mut timeout, mut force, mut target) = (0i64, false, None);
    let mut i = 1;
    while i < argv.len() {
        let a = &argv[i];
        if is(a, "timeout") && i + 1 < argv.len() && timeout == 0 {
            timeout = parse_i64(argv[i + 1]).ok_or(CmdError::NotInteger)?;
            if timeout <= 0 {
                return Err(CmdError::msg("FAILOVER timeout must be greater than 0"));
            }
            i += 2;
        } else if is(a, "to") && i + 2 < argv.len() && target.is_none() {
            let port = parse_i64(argv[i + 2]).ok_or(CmdError::NotInteger)?;
            target = Some((lossy(argv[i + 1]).to_string(), port));
            i += 3;
        } else if is(a, "force") && !force {
            force = true;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if ctx.srv.failover.is_some() {
        return Err(CmdError::msg("FAILOVER already in progress."));
    }
    if ctx.srv.master.is_some() {
        return Err(CmdError::msg("FAILOVER is not valid when server is a replica."));
    }
    if ctx.srv.repl.replicas.is_empty() {
        return Err(CmdError::msg("FAILOVER requires connected replicas."));
    }
    if force && (timeout == 0 || target.is_none()) {
        return Err(CmdError::msg("FAILOVER with force option requires both a timeout and target HOST and IP."));
    }
    let target = match target {
        Some((host, port)) => {
            let t = u16::try_from(port).ok().map(|p| (host, p));
            if t.as_ref().and_then(|t| ctx.srv.failover_candidate(Some(t), false)).is_none() {
                return Err(CmdError::msg("FAILOVER target HOST and PORT is not a replica."));
            }
            t
        }
        None => None,
    };
    let deadline_ms = (timeout > 0).then(|| ctx.srv.now_ms.saturating_add(timeout as u64));
    ctx.srv.start_failover(Failover { phase: Phase::WaitForSync, target, deadline_ms, force });
    Ok(OK)
}

fn sync(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    if ctx.srv.failover.is_some() {
        return Err(CmdError::Raw("NOMASTERLINK Can't SYNC while failing over".into()));
    }
    attach(ctx, false)
}

/// PSYNC replid offset: `+CONTINUE` and the stream from `offset` when the backlog holds it
/// and the history is this server's (or the one it continues), else a full resync.
fn psync(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if ctx.sess.replica {
        return Ok(Reply::NoReply);
    }
    let replid = lossy(argv[1]);
    // PSYNC ... FAILOVER: our master hands its role to us (see server::failover).
    if argv.get(3).is_some_and(|a| is(a, "failover")) {
        tracing::warn!("Failover request received for replid {replid}.");
        if ctx.srv.master.is_none() {
            return Err(CmdError::msg("PSYNC FAILOVER can't be sent to a master."));
        }
        if !replid.eq_ignore_ascii_case(&ctx.srv.repl.replid) {
            return Err(CmdError::msg("PSYNC FAILOVER replid must match my replid."));
        }
        ctx.srv.stop_replicating();
        tracing::info!("MASTER MODE enabled (failover request from '{}')", ctx.sess.addr);
    }
    if ctx.srv.failover.is_some() {
        return Err(CmdError::Raw("NOMASTERLINK Can't SYNC while failing over".into()));
    }
    // A replica whose own master link is down refuses before reading the offset.
    if ctx.srv.master.as_deref().is_some_and(|m| !m.link_up()) {
        return Err(CmdError::Raw("NOMASTERLINK Can't SYNC while not connected with my master".into()));
    }
    let Some(from) = parse_i64(argv[2]) else {
        tracing::info!("Replica {} asks for synchronization", ctx.sess.replica_name());
        tracing::warn!("Replica {} asks for synchronization but with a wrong offset", ctx.sess.replica_name());
        return Err(CmdError::NotInteger);
    };
    let from = u64::try_from(from).ok();
    let linked = ctx.srv.master.as_deref().is_none_or(|m| m.link_up());
    if let Some(from) = from
        && linked
        && let Some(missed) = ctx.srv.continue_replica(ctx.sess, &replid, from)
    {
        tracing::info!(
            "Partial resynchronization request from {} accepted. Sending {missed} bytes of backlog starting from offset {from}.",
            ctx.sess.addr,
        );
        let id = &ctx.srv.repl.replid;
        let out = if ctx.sess.replica_psync2 { format!("+CONTINUE {id}\r\n") } else { "+CONTINUE\r\n".into() };
        send_raw(ctx, out.as_bytes());
        return Ok(Reply::NoReply);
    }
    if replid != "?" && linked {
        ctx.srv.repl.sync_partial_err += 1;
    }
    attach(ctx, true)
}

/// REPLCONF listening-port / ip-address / capa / ... are accepted; ACK and GETACK get no
/// reply, as in Redis.
fn replconf(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let mut pairs = argv[1..].chunks_exact(2);
    for p in pairs.by_ref() {
        let (opt, val) = (&p[0], &p[1]);
        if is(opt, "ack") {
            // A replica's acknowledged offset: WAITs may now be answered.
            if ctx.sess.replica
                && let Some(off) = parse_i64(val).and_then(|n| u64::try_from(n).ok())
            {
                ctx.sess.repl_ack = ctx.sess.repl_ack.max(off);
                ctx.sess.repl_ack_ms = ctx.srv.now_ms;
                ctx.srv.replica_acked(ctx.sess);
                ctx.srv.serve_waits(ctx.sess);
            }
            return Ok(Reply::NoReply);
        } else if is(opt, "getack") {
            return Ok(Reply::NoReply);
        } else if is(opt, "listening-port") {
            ctx.sess.replica_port = parse_i64(val)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| CmdError::msg("value is not an integer or out of range"))?;
        } else if is(opt, "rdb-filter-only") {
            // Only "functions" (or nothing) is a filter Redis 7.0 knows.
            ctx.sess.replica_functions_only = is(val, "functions");
            if !val.is_empty() && !ctx.sess.replica_functions_only {
                return Err(CmdError::msg(format!("Unsupported rdb-filter-only option: {}", lossy(val))));
            }
        } else if is(opt, "capa") {
            ctx.sess.replica_psync2 |= is(val, "psync2");
            ctx.sess.replica_capa_eof |= is(val, "eof");
        } else if !["ip-address", "rdb-only"].iter().any(|o| is(opt, o)) {
            return Err(CmdError::msg(format!("Unrecognized REPLCONF option: {}", lossy(opt))));
        }
    }
    Ok(OK)
}
