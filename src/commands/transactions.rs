//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queueing happens in dispatch (every command but these is queued while in MULTI). WATCH
//! registers the client in the key's database; the keyspace flags it when the key changes, and
//! EXEC then fails with a null reply.

use bytes::Bytes;

use super::dispatch::{call, resolve};
use super::flags::*;
use super::{ALL_KEYS, CmdError, CmdResult, CommandSpec, Ctx};
use crate::protocol::{OK, Reply};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("multi", 1, multi).flags(NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | TX_CONTROL).doc(
        "transactions",
        "Mark the start of a transaction block",
        "1.2.0",
        "O(1)",
    ),
    CommandSpec::new("exec", 1, exec).flags(NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG | TX_CONTROL).doc(
        "transactions",
        "Execute all commands issued after MULTI",
        "1.2.0",
        "Depends on commands in the transaction",
    ),
    CommandSpec::new("discard", 1, discard).flags(NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | TX_CONTROL).doc(
        "transactions",
        "Discard all commands issued after MULTI",
        "2.0.0",
        "O(N), when N is the number of queued commands",
    ),
    CommandSpec::new("watch", -2, watch)
        .flags(NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | TX_CONTROL)
        .keys(ALL_KEYS)
        .doc(
            "transactions",
            "Watch the given keys to determine execution of the MULTI/EXEC block",
            "2.2.0",
            "O(1) for every key.",
        ),
    CommandSpec::new("unwatch", 1, unwatch).flags(NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY).doc(
        "transactions",
        "Forget about all watched keys",
        "2.2.0",
        "O(1)",
    ),
];

fn multi(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    if ctx.sess.multi.is_some() {
        return Err(CmdError::msg("MULTI calls can not be nested"));
    }
    ctx.sess.multi = Some(Vec::new());
    ctx.sess.multi_mem = 0;
    ctx.sess.multi_error = false;
    Ok(OK)
}

fn discard(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    if ctx.sess.multi.take().is_none() {
        return Err(CmdError::msg("DISCARD without MULTI"));
    }
    ctx.sess.multi_error = false;
    ctx.srv.unwatch_all(ctx.sess);
    Ok(OK)
}

fn exec(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let Some(queue) = ctx.sess.multi.take() else {
        return Err(CmdError::msg("EXEC without MULTI"));
    };
    let aborted = std::mem::take(&mut ctx.sess.multi_error);
    if aborted {
        ctx.srv.unwatch_all(ctx.sess);
        return Err(CmdError::Raw("EXECABORT Transaction discarded because of previous errors.".into()));
    }
    // A watched key that expired since WATCH breaks the transaction even if nobody touched it.
    for (d, k) in ctx.sess.watched.clone() {
        if let Some(db) = ctx.srv.dbs.get_mut(d) {
            db.expire_if_needed(&k);
        }
    }
    ctx.srv.flag_dirty_watchers(ctx.sess);
    if ctx.sess.dirty_cas {
        ctx.srv.unwatch_all(ctx.sess);
        return Ok(Reply::NullArray);
    }
    ctx.srv.unwatch_all(ctx.sess);
    ctx.sess.in_exec = true;
    // The transaction's writes are propagated together when EXEC returns, in MULTI/EXEC when
    // there are several (ServerState::propagate_pending).
    let mut replies = Vec::with_capacity(queue.len());
    for argv in queue {
        let r = match resolve(&crate::protocol::views(&argv)) {
            // ACLs may have changed since the command was queued: checked again, as in Redis.
            Ok(entry) => match super::acl::denied(ctx.srv, ctx.sess, entry, &crate::protocol::views(&argv), "multi") {
                Some(v) => Reply::Error(format!(
                    "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {}",
                    super::acl::exec_reason(v)
                )),
                None => call(ctx.srv, ctx.sess, entry, &crate::protocol::views(&argv)),
            },
            Err((e, _)) => Reply::Error(e.to_string()),
        };
        replies.push(r);
    }
    ctx.sess.in_exec = false;
    Ok(Reply::Array(replies))
}

fn watch(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if ctx.sess.multi.is_some() {
        return Err(CmdError::msg("WATCH inside MULTI is not allowed"));
    }
    let dbi = ctx.sess.db;
    for key in &argv[1..] {
        if ctx.sess.watched.iter().any(|(d, k)| *d == dbi && k == key) {
            continue;
        }
        // A key already logically expired is deleted now, so its removal cannot break EXEC later.
        ctx.srv.dbs[dbi].expire_if_needed(key);
        ctx.srv.dbs[dbi].watch(key, ctx.sess.id);
        ctx.sess.watched.push((dbi, Bytes::copy_from_slice(key)));
        ctx.srv.watched_keys += 1;
    }
    // Expiring a key above may have flagged this client through an earlier WATCH; that is right.
    Ok(OK)
}

fn unwatch(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    ctx.srv.unwatch_all(ctx.sess);
    Ok(OK)
}
