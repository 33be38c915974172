//! Leases (beyond Redis): stampede protection for caches. GETLEASE reads a key; on a miss the
//! first caller gets a lease token and fills the key with SETLEASE, while the other callers
//! wait for the fill (WAIT) or are told at once that someone is filling it. The lease table
//! is in server::lease; the README's "Leases" section is the user's guide.
//!
//! Replies: GETLEASE answers a two-element array, `[value, nil]` on a hit, `[nil, token]`
//! when the caller must fill the key, `[nil, nil]` when another client holds the lease and
//! did not fill the key in time. SETLEASE answers OK, or nil when the token is stale (lapsed,
//! already used, or the key was written meanwhile by someone else: the fill would be older
//! than what is there).

use bytes::Bytes;
use rand::RngExt;

use super::args::{int, is};
use super::flags::*;
use super::string::{SetOpts, Ttl, TtlKind, deadline, get_str, set_generic};
use super::{CmdError, CmdResult, CommandSpec, Ctx, KEY1};
use crate::protocol::{OK, Reply};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("getlease", -3, getlease).flags(READONLY | BLOCKING).keys(KEY1).doc(
        "string",
        "Get the value of a key; on a miss, take a lease to fill it or wait for the client that holds it (Ember)",
        "0.1.0",
        "O(1)",
    ),
    CommandSpec::new("setlease", -4, setlease).flags(WRITE | DENYOOM).keys(KEY1).doc(
        "string",
        "Fill a key with the token of its lease, waking the clients waiting for it (Ember)",
        "0.1.0",
        "O(1)",
    ),
];

/// A positive millisecond count (a lease's length, a wait).
fn millis(arg: &[u8], what: &str) -> Result<u64, CmdError> {
    match int(arg)? {
        n if n > 0 => Ok(n as u64),
        _ => Err(CmdError::msg(format!("{what} must be a positive number of milliseconds"))),
    }
}

/// GETLEASE key lease-ms [WAIT ms]
fn getlease(ctx: &mut Ctx, argv: &[Bytes]) -> CmdResult {
    let lease_ms = millis(&argv[2], "lease")?;
    let wait_ms = match argv.len() {
        3 => None,
        5 if is(&argv[3], "wait") => Some(millis(&argv[4], "WAIT")?),
        _ => return Err(CmdError::Syntax),
    };
    if let Some(v) = get_str(ctx.db(), &argv[1])?.map(|s| s.to_bytes()) {
        return Ok(Reply::Array(vec![Reply::Bulk(v), Reply::Null]));
    }
    let (db, now) = (ctx.sess.db, ctx.now_ms());
    if let Some(lease) = ctx.srv.leases.live(db, &argv[1], now) {
        // Another client fills the key: wait until it does (the key changes) or its lease
        // lapses, whichever comes first; inside MULTI or a script, answer at once.
        let nobody = Reply::Array(vec![Reply::Null, Reply::Null]);
        return match wait_ms {
            Some(ms) => {
                let until = now.saturating_add(ms).min(lease.until_ms);
                super::block(ctx, argv, &argv[1..2], Some(until), nobody.clone(), nobody)
            }
            None => Ok(nobody),
        };
    }
    // Positive and below 2^52, so it survives as a number in every client: Lua's and
    // JavaScript's doubles included.
    let token = (ctx.srv.rng.random::<u64>() >> 12).max(1);
    ctx.srv.leases.grant(db, &argv[1], token, now.saturating_add(lease_ms), now);
    Ok(Reply::Array(vec![Reply::Null, Reply::Int(token as i64)]))
}

/// SETLEASE key token value [EX seconds | PX milliseconds]
fn setlease(ctx: &mut Ctx, argv: &[Bytes]) -> CmdResult {
    let token = match int(&argv[2]) {
        Ok(t) if t > 0 => t as u64,
        _ => return Err(CmdError::msg("invalid lease token")),
    };
    let ttl = match argv.len() {
        4 => Ttl::None,
        6 if is(&argv[4], "ex") => Ttl::At(deadline(ctx, &argv[5], TtlKind::Ex, "setlease")?),
        6 if is(&argv[4], "px") => Ttl::At(deadline(ctx, &argv[5], TtlKind::Px, "setlease")?),
        _ => return Err(CmdError::Syntax),
    };
    let (db, now) = (ctx.sess.db, ctx.now_ms());
    if !ctx.srv.leases.redeem(db, &argv[1], token, now) {
        return Ok(Reply::Null);
    }
    // Written meanwhile by someone else: that value is newer than the fill.
    if ctx.db().contains(&argv[1]) {
        return Ok(Reply::Null);
    }
    set_generic(ctx, &argv[1], &argv[3], &SetOpts { nx: false, xx: false, get: false, ttl })?;
    if ttl == Ttl::None {
        // Replicas and the AOF know no leases: the fill is the SET it amounts to.
        ctx.log_as(vec![Bytes::from_static(b"SET"), argv[1].clone(), argv[3].clone()]);
    }
    Ok(OK)
}
