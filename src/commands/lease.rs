//! Leases (beyond Redis): stampede protection for caches. GETLEASE reads a key; on a miss the
//! first caller gets a lease token and fills the key with SETLEASE, while the other callers
//! wait for the fill (WAIT) or are told at once that someone is filling it. The lease table
//! is in server::lease; the README's "Leases" section is the user's guide.
//!
//! Replies: GETLEASE answers a two-element array, `[value, nil]` on a hit, `[nil, token]`
//! when the caller must fill the key, `[nil, nil]` when another client holds the lease and
//! did not fill the key in time, and `[value, token]` when the value is stale (a fill with
//! STALE, past its TTL) and the caller should refresh it. SETLEASE answers OK, or nil when the token is stale (lapsed,
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
fn getlease(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let lease_ms = millis(argv[2], "lease")?;
    let wait_ms = match argv.len() {
        3 => None,
        5 if is(argv[3], "wait") => Some(millis(argv[4], "WAIT")?),
        _ => return Err(CmdError::Syntax),
    };
    let (db, now) = (ctx.sess.db, ctx.now_ms());
    if let Some(v) = get_str(ctx.db(), argv[1])?.map(|s| s.to_bytes()) {
        let expire_at = ctx.db().expire_at_of(argv[1]);
        if ctx.srv.leases.is_stale(db, argv[1], expire_at, now) && ctx.srv.leases.live(db, argv[1], now).is_none() {
            // Stale: served, and the first reader refreshes it.
            let token = new_token(ctx);
            if ctx.srv.leases.grant(db, argv[1], token, now.saturating_add(lease_ms), now) {
                return Ok(Reply::Array(vec![Reply::Bulk(v), Reply::Int(token as i64)]));
            }
        }
        return Ok(Reply::Array(vec![Reply::Bulk(v), Reply::Null]));
    }
    if let Some(lease) = ctx.srv.leases.live(db, argv[1], now) {
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
    let token = new_token(ctx);
    if !ctx.srv.leases.grant(db, argv[1], token, now.saturating_add(lease_ms), now) {
        // Too many leases out (see MAX_LEASES): no one is asked to fill it.
        return Ok(Reply::Array(vec![Reply::Null, Reply::Null]));
    }
    Ok(Reply::Array(vec![Reply::Null, Reply::Int(token as i64)]))
}

/// A lease token: positive and below 2^52, so it survives as a number in every client
/// (Lua's and JavaScript's doubles included).
fn new_token(ctx: &mut Ctx) -> u64 {
    (ctx.srv.rng.random::<u64>() >> 12).max(1)
}

/// SETLEASE key token value [EX seconds | PX milliseconds [STALE milliseconds]]
fn setlease(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let token = match int(argv[2]) {
        Ok(t) if t > 0 => t as u64,
        _ => return Err(CmdError::msg("invalid lease token")),
    };
    let (mut ttl, mut stale_ms) = (Ttl::None, None);
    let mut j = 4;
    while j < argv.len() {
        let Some(arg) = argv.get(j + 1) else { return Err(CmdError::Syntax) };
        let a = &argv[j];
        if ttl == Ttl::None && is(a, "ex") {
            ttl = Ttl::At(deadline(ctx, arg, TtlKind::Ex, "setlease")?);
        } else if ttl == Ttl::None && is(a, "px") {
            ttl = Ttl::At(deadline(ctx, arg, TtlKind::Px, "setlease")?);
        } else if stale_ms.is_none() && is(a, "stale") {
            stale_ms = Some(millis(arg, "STALE")?);
        } else {
            return Err(CmdError::Syntax);
        }
        j += 2;
    }
    // The stale window follows the fresh time: the key lives for both.
    let (fresh_until, ttl) = match (ttl, stale_ms) {
        (Ttl::At(at), Some(ms)) => (Some(at), Ttl::At(at.saturating_add(ms.min(i64::MAX as u64) as i64))),
        (_, Some(_)) => return Err(CmdError::msg("STALE needs EX or PX")),
        _ => (None, ttl),
    };
    let (db, now) = (ctx.sess.db, ctx.now_ms());
    if !ctx.srv.leases.redeem(db, argv[1], token, now) {
        return Ok(Reply::Null);
    }
    // Written meanwhile by someone else: that value is newer than the fill (a stale fill
    // being refreshed is the one exception).
    let expire_at = ctx.db().expire_at_of(argv[1]);
    if ctx.db().contains(argv[1]) && !ctx.srv.leases.has_stale_mark(db, argv[1], expire_at) {
        return Ok(Reply::Null);
    }
    set_generic(ctx, argv[1], argv[3], &SetOpts { nx: false, xx: false, get: false, ttl })?;
    if let (Some(fresh), Ttl::At(at)) = (fresh_until, ttl) {
        ctx.srv.leases.mark_stale_after(db, argv[1], fresh.max(0) as u64, at.max(0) as u64, now);
    }
    if ttl == Ttl::None {
        // Replicas and the AOF know no leases: the fill is the SET it amounts to.
        ctx.log_as(vec![Bytes::from_static(b"SET"), Bytes::copy_from_slice(argv[1]), Bytes::copy_from_slice(argv[3])]);
    }
    Ok(OK)
}
