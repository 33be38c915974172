//! Replication family, master side: SYNC, PSYNC, REPLCONF.

use bytes::Bytes;

use super::args::is;
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, NO_KEYS, cmd};
use crate::protocol::{OK, Reply};

pub static COMMANDS: &[CommandSpec] = &[
    cmd(
        "sync",
        1,
        ADMIN | NOSCRIPT | NO_MULTI,
        NO_KEYS,
        "server",
        "Internal command used for replication",
        "1.0.0",
        "",
        sync,
    ),
    cmd(
        "psync",
        -3,
        ADMIN | NOSCRIPT | NO_MULTI,
        NO_KEYS,
        "server",
        "Internal command used for replication",
        "2.8.0",
        "",
        psync,
    ),
    cmd(
        "replconf",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY,
        NO_KEYS,
        "server",
        "An internal command for configuring the replication stream",
        "3.0.0",
        "O(1)",
        replconf,
    ),
];

/// Sends the data set, then the write stream, to this connection from now on.
fn attach(ctx: &mut Ctx, header: Option<String>) -> CmdResult {
    if ctx.sess.replica {
        return Ok(Reply::NoReply);
    }
    let image = ctx.srv.attach_replica(ctx.sess).map_err(|e| CmdError::Raw(format!("ERR {e}")))?;
    tracing::info!("Replica {} asks for synchronization", ctx.sess.addr);
    let mut out = header.map(|h| format!("+{h}\r\n").into_bytes()).unwrap_or_default();
    out.extend_from_slice(&image);
    // Written as it is: a replica gets no other replies (see dispatch::process).
    ctx.sess.out.extend_from_slice(&out);
    ctx.srv.stats.net_output_bytes += out.len() as u64;
    Ok(Reply::NoReply)
}

fn sync(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    attach(ctx, None)
}

/// Without a replication backlog every PSYNC is a full resynchronisation.
fn psync(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let header = format!("FULLRESYNC {} {}", ctx.srv.run_id, ctx.srv.repl.offset);
    attach(ctx, Some(header))
}

/// REPLCONF listening-port / ip-address / capa / ... are accepted; ACK and GETACK get no
/// reply, as in Redis.
fn replconf(ctx: &mut Ctx, argv: &[Bytes]) -> CmdResult {
    if argv.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if argv.get(1).is_some_and(|a| is(a, "ack") || is(a, "getack")) {
        return Ok(Reply::NoReply);
    }
    let _ = ctx;
    Ok(OK)
}
