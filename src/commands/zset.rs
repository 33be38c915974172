//! Sorted-set family: the 35 sorted-set commands of Redis 7.0.

use std::collections::HashMap;

use crate::keyspace::notify as ev;
use bytes::Bytes;
use rand::RngExt;

use super::access::{modify, read};
use super::args::{Conditions, is};
use super::args::{parse_cursor, parse_scan_opts};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, KEY1, Keys};
use crate::keyspace::Db;
use crate::protocol::Reply;
use crate::protocol::reply::Scored as ScoredReply;
use crate::types::{Value, ZSetValue, ZsetLimits};
use crate::util::glob::glob_match;
use crate::util::numfmt::{parse_f64, parse_i64};

use super::zset_range::{
    Bounds, RangeBy, RangeSpec, parse_bounds, parse_lex_bound, parse_score_bound, score_ranks, select_range,
    select_ranks,
};

const NUMKEYS_AT_1: Keys = Keys { first: 2, last: -1, step: 1 };
const STORE_KEYS: Keys = Keys { first: 1, last: -1, step: 1 };
const BZPOP_KEYS: Keys = Keys { first: 1, last: -2, step: 1 };
const BZMPOP_KEYS: Keys = Keys { first: 3, last: -1, step: 1 };
const KEYS_1_2: Keys = Keys { first: 1, last: 2, step: 1 };

macro_rules! z {
    ($name:expr, $arity:expr, $flags:expr, $keys:expr, $summary:expr, $since:expr, $handler:expr) => {
        CommandSpec::new($name, $arity, $handler).flags($flags).keys($keys).doc(
            "sorted_set",
            $summary,
            $since,
            "O(log(N))",
        )
    };
}

pub static COMMANDS: &[CommandSpec] = &[
    z!(
        "zadd",
        -4,
        WRITE | DENYOOM | FAST,
        KEY1,
        "Add one or more members to a sorted set, or update its score if it already exists",
        "1.2.0",
        zadd
    ),
    z!("zincrby", 4, WRITE | DENYOOM | FAST, KEY1, "Increment the score of a member in a sorted set", "1.2.0", zincrby),
    z!("zcard", 2, READONLY | FAST, KEY1, "Get the number of members in a sorted set", "1.2.0", zcard),
    z!(
        "zscore",
        3,
        READONLY | FAST,
        KEY1,
        "Get the score associated with the given member in a sorted set",
        "1.2.0",
        zscore
    ),
    z!(
        "zmscore",
        -3,
        READONLY | FAST,
        KEY1,
        "Get the score associated with the given members in a sorted set",
        "6.2.0",
        zmscore
    ),
    z!("zrem", -3, WRITE | FAST, KEY1, "Remove one or more members from a sorted set", "1.2.0", zrem),
    z!("zrank", 3, READONLY | FAST, KEY1, "Determine the index of a member in a sorted set", "2.0.0", zrank),
    z!(
        "zrevrank",
        3,
        READONLY | FAST,
        KEY1,
        "Determine the index of a member in a sorted set, with scores ordered from high to low",
        "2.0.0",
        zrevrank
    ),
    z!(
        "zcount",
        4,
        READONLY | FAST,
        KEY1,
        "Count the members in a sorted set with scores within the given values",
        "2.0.0",
        zcount
    ),
    z!(
        "zlexcount",
        4,
        READONLY | FAST,
        KEY1,
        "Count the number of members in a sorted set between a given lexicographical range",
        "2.8.9",
        zlexcount
    ),
    z!("zrange", -4, READONLY, KEY1, "Return a range of members in a sorted set", "1.2.0", zrange),
    z!(
        "zrangestore",
        -5,
        WRITE | DENYOOM,
        KEYS_1_2,
        "Store a range of members from sorted set into another key",
        "6.2.0",
        zrangestore
    ),
    z!(
        "zrevrange",
        -4,
        READONLY,
        KEY1,
        "Return a range of members in a sorted set, by index, with scores ordered from high to low",
        "1.2.0",
        zrevrange
    ),
    z!(
        "zrangebyscore",
        -4,
        READONLY,
        KEY1,
        "Return a range of members in a sorted set, by score",
        "1.0.5",
        zrangebyscore
    ),
    z!(
        "zrevrangebyscore",
        -4,
        READONLY,
        KEY1,
        "Return a range of members in a sorted set, by score, with scores ordered from high to low",
        "2.2.0",
        zrevrangebyscore
    ),
    z!(
        "zrangebylex",
        -4,
        READONLY,
        KEY1,
        "Return a range of members in a sorted set, by lexicographical range",
        "2.8.9",
        zrangebylex
    ),
    z!(
        "zrevrangebylex",
        -4,
        READONLY,
        KEY1,
        "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.",
        "2.8.9",
        zrevrangebylex
    ),
    z!(
        "zremrangebyrank",
        4,
        WRITE,
        KEY1,
        "Remove all members in a sorted set within the given indexes",
        "2.0.0",
        zremrangebyrank
    ),
    z!(
        "zremrangebyscore",
        4,
        WRITE,
        KEY1,
        "Remove all members in a sorted set within the given scores",
        "1.2.0",
        zremrangebyscore
    ),
    z!(
        "zremrangebylex",
        4,
        WRITE,
        KEY1,
        "Remove all members in a sorted set between the given lexicographical range",
        "2.8.9",
        zremrangebylex
    ),
    z!(
        "zpopmin",
        -2,
        WRITE | FAST,
        KEY1,
        "Remove and return members with the lowest scores in a sorted set",
        "5.0.0",
        zpopmin
    ),
    z!(
        "zpopmax",
        -2,
        WRITE | FAST,
        KEY1,
        "Remove and return members with the highest scores in a sorted set",
        "5.0.0",
        zpopmax
    ),
    z!(
        "zmpop",
        -4,
        WRITE | MOVABLEKEYS,
        NUMKEYS_AT_1,
        "Remove and return members with scores in a sorted set",
        "7.0.0",
        zmpop
    ),
    z!(
        "bzpopmin",
        -3,
        WRITE | NOSCRIPT | FAST | BLOCKING,
        BZPOP_KEYS,
        "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available",
        "5.0.0",
        bzpopmin
    ),
    z!(
        "bzpopmax",
        -3,
        WRITE | NOSCRIPT | FAST | BLOCKING,
        BZPOP_KEYS,
        "Remove and return the member with the highest score from one or more sorted sets, or block until one is available",
        "5.0.0",
        bzpopmax
    ),
    z!(
        "bzmpop",
        -5,
        WRITE | BLOCKING | MOVABLEKEYS,
        BZMPOP_KEYS,
        "Remove and return members with scores in a sorted set or block until one is available",
        "7.0.0",
        bzmpop
    ),
    z!(
        "zrandmember",
        -2,
        READONLY,
        KEY1,
        "Get one or multiple random elements from a sorted set",
        "6.2.0",
        zrandmember
    ),
    z!("zscan", -3, READONLY, KEY1, "Incrementally iterate sorted sets elements and associated scores", "2.8.0", zscan),
    z!("zunion", -3, READONLY | MOVABLEKEYS, NUMKEYS_AT_1, "Add multiple sorted sets", "6.2.0", zunion),
    z!("zinter", -3, READONLY | MOVABLEKEYS, NUMKEYS_AT_1, "Intersect multiple sorted sets", "6.2.0", zinter),
    z!("zdiff", -3, READONLY | MOVABLEKEYS, NUMKEYS_AT_1, "Subtract multiple sorted sets", "6.2.0", zdiff),
    z!(
        "zintercard",
        -3,
        READONLY | MOVABLEKEYS,
        NUMKEYS_AT_1,
        "Intersect multiple sorted sets and return the cardinality of the result",
        "7.0.0",
        zintercard
    ),
    z!(
        "zunionstore",
        -4,
        WRITE | DENYOOM | MOVABLEKEYS,
        STORE_KEYS,
        "Add multiple sorted sets and store the resulting sorted set in a new key",
        "2.0.0",
        zunionstore
    ),
    z!(
        "zinterstore",
        -4,
        WRITE | DENYOOM | MOVABLEKEYS,
        STORE_KEYS,
        "Intersect multiple sorted sets and store the resulting sorted set in a new key",
        "2.0.0",
        zinterstore
    ),
    z!(
        "zdiffstore",
        -4,
        WRITE | DENYOOM | MOVABLEKEYS,
        STORE_KEYS,
        "Subtract multiple sorted sets and store the resulting sorted set in a new key",
        "6.2.0",
        zdiffstore
    ),
];

fn b(v: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(v))
}

fn limits(ctx: &Ctx) -> ZsetLimits {
    ctx.srv.hot.zset
}

/// A score argument: strtod rules, NaN refused.
fn score_arg(a: &[u8]) -> Result<f64, CmdError> {
    parse_f64(a).ok_or(CmdError::NotFloat)
}

/// Member/score pairs as a reply (the encoder lays them out per protocol).
fn with_scores(items: Vec<(Vec<u8>, f64)>) -> Reply {
    let mut out = ScoredReply::with_capacity(items.len());
    for (m, s) in items {
        out.push(&m, Some(s));
    }
    Reply::Scored(Box::new(out))
}

fn zadd(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (c, taken) = Conditions::leading(&argv[2..], &["nx", "xx", "gt", "lt", "ch", "incr"]);
    let Conditions { nx, xx, gt, lt, ch, incr } = c;
    let rest = &argv[2 + taken..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if nx && xx {
        return Err(CmdError::msg("XX and NX options at the same time are not compatible"));
    }
    if ((gt || lt) && nx) || (gt && lt) {
        return Err(CmdError::msg("GT, LT, and/or NX options at the same time are not compatible"));
    }
    if incr && rest.len() > 2 {
        return Err(CmdError::msg("INCR option supports a single increment-element pair"));
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks(2) {
        pairs.push((score_arg(p[0])?, p[1]));
    }
    let lim = limits(ctx);
    let db = ctx.db();
    if read::<ZSetValue>(db, argv[1])?.is_none() {
        if xx {
            return Ok(if incr { Reply::Null } else { Reply::Int(0) });
        }
        db.set(argv[1], Value::ZSet(ZSetValue::for_first(pairs[0].1.len(), lim)), false);
    }
    let Some(z) = db.get_mut_quiet(argv[1]).and_then(|v| v.as_zset_mut()) else { return Err(CmdError::WrongType) };
    let (mut added, mut updated) = (0, 0);
    let mut incr_result = None;
    for (score, member) in pairs {
        match z.score(member) {
            Some(cur) => {
                if nx {
                    continue;
                }
                let new = if incr { cur + score } else { score };
                if new.is_nan() {
                    return Err(CmdError::msg("resulting score is not a number (NaN)"));
                }
                if (gt && new <= cur) || (lt && new >= cur) {
                    continue;
                }
                incr_result = Some(new);
                if new != cur {
                    z.set_known(member, new, Some(cur), lim);
                    updated += 1;
                }
            }
            None => {
                if xx {
                    continue;
                }
                z.set_known(member, score, None, lim);
                incr_result = Some(score);
                added += 1;
            }
        }
    }
    let empty = z.is_empty();
    db.signal_changes(argv[1], (added + updated) as usize);
    if empty {
        db.remove(argv[1]);
    }
    if added + updated > 0 {
        ctx.notify(ev::ZSET, if incr { "zincr" } else { "zadd" }, argv[1]);
    }
    if incr {
        return Ok(incr_result.map_or(Reply::Null, Reply::Double));
    }
    Ok(Reply::Int(added + if ch { updated } else { 0 }))
}

fn zincrby(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // ZADD key INCR increment member: the same reply, events and no-op rules (an increment
    // that leaves the score as it was changes nothing, -0 on a new member stays -0).
    let as_zadd = [argv[0], argv[1], &b"INCR"[..], argv[2], argv[3]];
    zadd(ctx, &as_zadd)
}

fn zcard(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(read::<ZSetValue>(ctx.db(), argv[1])?.map_or(0, |z| z.len()) as i64))
}

fn zscore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(read::<ZSetValue>(ctx.db(), argv[1])?.and_then(|z| z.score(argv[2])).map_or(Reply::Null, Reply::Double))
}

fn zmscore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let z = read::<ZSetValue>(ctx.db(), argv[1])?;
    Ok(Reply::Array(argv[2..].iter().map(|m| z.and_then(|z| z.score(m)).map_or(Reply::Null, Reply::Double)).collect()))
}

fn zrem(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let n =
        modify::<ZSetValue, _>(ctx.db(), argv[1], |z| argv[2..].iter().filter(|m| z.remove(m)).count())?.unwrap_or(0);
    if n > 0 {
        ctx.notify_emptying(ev::ZSET, "zrem", argv[1]);
    }
    Ok(Reply::Int(n as i64))
}

fn rank_generic(ctx: &mut Ctx, argv: &[&[u8]], rev: bool) -> CmdResult {
    let Some(z) = read::<ZSetValue>(ctx.db(), argv[1])? else { return Ok(Reply::Null) };
    Ok(z.rank(argv[2]).map_or(Reply::Null, |r| Reply::Int(if rev { z.len() - 1 - r } else { r } as i64)))
}

fn zrank(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    rank_generic(ctx, argv, false)
}
fn zrevrank(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    rank_generic(ctx, argv, true)
}

fn zcount(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let min = parse_score_bound(argv[2])?;
    let max = parse_score_bound(argv[3])?;
    let Some(z) = read::<ZSetValue>(ctx.db(), argv[1])? else { return Ok(Reply::Int(0)) };
    let (lo, hi) = score_ranks(z, min, max);
    Ok(Reply::Int((hi - lo) as i64))
}

fn zlexcount(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let min = parse_lex_bound(argv[2])?;
    let max = parse_lex_bound(argv[3])?;
    let Some(z) = read::<ZSetValue>(ctx.db(), argv[1])? else { return Ok(Reply::Int(0)) };
    let (lo, hi) = z.lex_ranks(&min, &max);
    Ok(Reply::Int((hi - lo) as i64))
}

/// Parses the options after `key min max` for ZRANGE/ZRANGESTORE (`store` refuses WITHSCORES).
fn parse_zrange_opts(argv: &[&[u8]], from: usize, store: bool) -> Result<RangeSpec, CmdError> {
    parse_range_opts(argv, from, store, None)
}

/// The option loop shared by every ZRANGE form, as in Redis's zrangeGenericCommand: the legacy
/// commands fix the mode and direction (`fixed`), so BYSCORE/BYLEX/REV are syntax errors there.
fn parse_range_opts(
    argv: &[&[u8]],
    from: usize,
    store: bool,
    fixed: Option<(RangeBy, bool)>,
) -> Result<RangeSpec, CmdError> {
    let (by, rev) = fixed.unwrap_or((RangeBy::Rank, false));
    let mut spec = RangeSpec { by, rev, limit: None, withscores: false };
    let auto = fixed.is_none();
    let mut i = from;
    while i < argv.len() {
        let a = &argv[i];
        if !store && is(a, "withscores") {
            spec.withscores = true;
        } else if is(a, "limit") && i + 2 < argv.len() {
            let o = parse_i64(argv[i + 1]).ok_or(CmdError::NotInteger)?;
            let c = parse_i64(argv[i + 2]).ok_or(CmdError::NotInteger)?;
            spec.limit = Some((o, c));
            i += 2;
        } else if auto && is(a, "byscore") && spec.by == RangeBy::Rank {
            spec.by = RangeBy::Score;
        } else if auto && is(a, "bylex") && spec.by == RangeBy::Rank {
            spec.by = RangeBy::Lex;
        } else if auto && is(a, "rev") {
            spec.rev = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if spec.by == RangeBy::Rank {
        // A count of -1 is no limit at all (Redis's opt_limit default), so no conflict.
        if spec.limit.is_some_and(|(_, count)| count != -1) {
            return Err(CmdError::msg(
                "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        spec.limit = None;
    }
    if spec.withscores && spec.by == RangeBy::Lex {
        return Err(CmdError::msg("syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    Ok(spec)
}

fn range_reply(ctx: &mut Ctx, argv: &[&[u8]], spec: RangeSpec) -> CmdResult {
    let bounds = parse_bounds(argv[2], argv[3], &spec)?;
    let Some(z) = read::<ZSetValue>(ctx.db(), argv[1])? else {
        return Ok(Reply::Array(vec![]));
    };
    let (lo, hi) = select_ranks(z, &bounds, &spec);
    // Encoded straight from the set into one buffer: no per-member copies or reply nodes.
    let mut out = ScoredReply::with_capacity(hi - lo);
    for (m, s) in z.range(lo, hi, spec.rev) {
        out.push(m, spec.withscores.then_some(s));
    }
    Ok(Reply::Scored(Box::new(out)))
}

fn zrange(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let spec = parse_zrange_opts(argv, 4, false)?;
    range_reply(ctx, argv, spec)
}

/// The legacy forms: fixed mode, optional WITHSCORES and (for score/lex) LIMIT.
fn legacy_range(ctx: &mut Ctx, argv: &[&[u8]], by: RangeBy, rev: bool) -> CmdResult {
    let spec = parse_range_opts(argv, 4, false, Some((by, rev)))?;
    range_reply(ctx, argv, spec)
}

fn zrevrange(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    legacy_range(ctx, argv, RangeBy::Rank, true)
}
fn zrangebyscore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    legacy_range(ctx, argv, RangeBy::Score, false)
}
fn zrevrangebyscore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    legacy_range(ctx, argv, RangeBy::Score, true)
}
fn zrangebylex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    legacy_range(ctx, argv, RangeBy::Lex, false)
}
fn zrevrangebylex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    legacy_range(ctx, argv, RangeBy::Lex, true)
}

/// Stores a computed sorted set at `dst` (deleting it when empty) and raises `event`, or
/// `del` when an existing destination was deleted.
fn store_zset(ctx: &mut Ctx, dst: &[u8], items: &[(Vec<u8>, f64)], event: &'static str) -> usize {
    let lim = limits(ctx);
    let db = ctx.db();
    if items.is_empty() {
        if db.remove(dst).is_some() {
            ctx.notify(ev::GENERIC, "del", dst);
        }
        return 0;
    }
    let mut z = ZSetValue::for_first(items[0].0.len(), lim);
    for (m, s) in items {
        z.set(m, *s, lim);
    }
    let n = z.len();
    db.set(dst, Value::ZSet(z), false);
    ctx.notify(ev::ZSET, event, dst);
    n
}

fn zrangestore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let spec = parse_zrange_opts(argv, 5, true)?;
    let bounds = parse_bounds(argv[3], argv[4], &spec)?;
    let items = match read::<ZSetValue>(ctx.db(), argv[2])? {
        Some(z) => select_range(z, &bounds, &spec),
        None => vec![],
    };
    let n = store_zset(ctx, argv[1], &items, "zrangestore");
    Ok(Reply::Int(n as i64))
}

fn remrange(ctx: &mut Ctx, argv: &[&[u8]], by: RangeBy) -> CmdResult {
    let spec = RangeSpec { by, rev: false, limit: None, withscores: false };
    let bounds = parse_bounds(argv[2], argv[3], &spec)?;
    let db = ctx.db();
    let Some(z) = read::<ZSetValue>(db, argv[1])? else {
        return Ok(Reply::Int(0));
    };
    let items = match &bounds {
        Bounds::Lex(min, max) => {
            let (lo, hi) = z.lex_delete_window(min, max);
            z.range(lo, hi, false).map(|(m, s)| (m.to_vec(), s)).collect()
        }
        _ => select_range(z, &bounds, &spec),
    };
    if items.is_empty() {
        return Ok(Reply::Int(0));
    }
    let n = modify::<ZSetValue, _>(db, argv[1], |z| items.iter().filter(|(m, _)| z.remove(m)).count())?.unwrap_or(0);
    if n > 0 {
        let event = match by {
            RangeBy::Rank => "zremrangebyrank",
            RangeBy::Score => "zremrangebyscore",
            RangeBy::Lex => "zremrangebylex",
        };
        ctx.notify_emptying(ev::ZSET, event, argv[1]);
    }
    Ok(Reply::Int(n as i64))
}

fn zremrangebyrank(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    remrange(ctx, argv, RangeBy::Rank)
}
fn zremrangebyscore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    remrange(ctx, argv, RangeBy::Score)
}
fn zremrangebylex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    remrange(ctx, argv, RangeBy::Lex)
}

/// Pops up to `count` members from the low (`max == false`) or high end.
fn pop_n(db: &mut Db, key: &[u8], max: bool, count: usize) -> Result<Vec<(Vec<u8>, f64)>, CmdError> {
    let Some(z) = read::<ZSetValue>(db, key)? else { return Ok(vec![]) };
    let len = z.len();
    let n = count.min(len);
    let items: Vec<(Vec<u8>, f64)> =
        if max { z.range(len - n, len, true) } else { z.range(0, n, false) }.map(|(m, s)| (m.to_vec(), s)).collect();
    modify::<ZSetValue, _>(db, key, |z| {
        for (m, _) in &items {
            z.remove(m);
        }
    })?;
    Ok(items)
}

fn zpop_generic(ctx: &mut Ctx, argv: &[&[u8]], max: bool) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match argv.get(2) {
        None => None,
        Some(a) => match parse_i64(a) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Err(CmdError::msg("value is out of range, must be positive")),
        },
    };
    let items = pop_n(ctx.db(), argv[1], max, count.unwrap_or(1))?;
    if !items.is_empty() {
        ctx.notify_emptying(ev::ZSET, pop_event(max), argv[1]);
    }
    match count {
        // Without COUNT the reply is a flat [member, score] in both protocols.
        None => Ok(Reply::Array(items.into_iter().flat_map(|(m, s)| [b(&m), Reply::Double(s)]).collect())),
        Some(_) => Ok(with_scores(items)),
    }
}

fn pop_event(max: bool) -> &'static str {
    if max { "zpopmax" } else { "zpopmin" }
}

fn zpopmin(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    zpop_generic(ctx, argv, false)
}
fn zpopmax(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    zpop_generic(ctx, argv, true)
}

/// `numkeys key... MIN|MAX [COUNT n]` from position `at`; true means MAX.
fn parse_zmpop(argv: &[&[u8]], at: usize) -> Result<(Vec<Bytes>, bool, usize), CmdError> {
    super::args::parse_mpop(argv, at, |w| {
        if is(w, "max") {
            Some(true)
        } else if is(w, "min") {
            Some(false)
        } else {
            None
        }
    })
}

/// Pops up to `count` members from the first non-empty sorted set among `keys` (ZMPOP,
/// BZMPOP, BZPOPMIN/MAX). A key of another type is WRONGTYPE, except while retrying a blocked
/// client, which keeps waiting past it as Redis does.
#[allow(clippy::type_complexity)]
fn pop_first(
    ctx: &mut Ctx,
    keys: &[&[u8]],
    max: bool,
    count: usize,
) -> Result<Option<(Bytes, Vec<(Vec<u8>, f64)>)>, CmdError> {
    let retrying = ctx.sess.serving.is_some();
    for k in keys {
        if !ctx.sess.serves(k) {
            continue;
        }
        match ctx.db().get(k) {
            None => continue,
            Some(v) if v.as_zset().is_none() => {
                if retrying {
                    continue;
                }
                return Err(CmdError::WrongType);
            }
            Some(_) => {}
        }
        let items = pop_n(ctx.db(), k, max, count)?;
        if !items.is_empty() {
            ctx.notify_emptying(ev::ZSET, pop_event(max), k);
            return Ok(Some((Bytes::copy_from_slice(k), items)));
        }
    }
    Ok(None)
}

fn mpop_first(ctx: &mut Ctx, keys: &[&[u8]], max: bool, count: usize) -> Result<Option<Reply>, CmdError> {
    let popped = pop_first(ctx, keys, max, count)?;
    // Propagated as the pop it was (Redis 7.0): ZPOPMIN/ZPOPMAX key <how many it popped>.
    if let Some((k, items)) = &popped {
        let pop: &'static [u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
        ctx.log_as(vec![Bytes::from_static(pop), k.clone(), Bytes::from(items.len().to_string())]);
    }
    Ok(popped.map(|(k, items)| {
        let pairs = items.into_iter().map(|(m, s)| Reply::Array(vec![b(&m), Reply::Double(s)])).collect();
        Reply::Array(vec![Reply::Bulk(k), Reply::Array(pairs)])
    }))
}

fn zmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (keys, max, count) = parse_zmpop(argv, 1)?;
    Ok(mpop_first(ctx, &crate::protocol::views(&keys), max, count)?.unwrap_or(Reply::NullArray))
}

fn bzpop_generic(ctx: &mut Ctx, argv: &[&[u8]], max: bool) -> CmdResult {
    let deadline = super::block_deadline(ctx.srv, argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    if let Some((k, mut items)) = pop_first(ctx, keys, max, 1)?
        && let Some((m, s)) = items.pop()
    {
        // Propagated as the pop it was (Redis 7.0): ZPOPMIN/ZPOPMAX key.
        let pop: &'static [u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
        ctx.log_as(vec![Bytes::from_static(pop), k.clone()]);
        return Ok(Reply::Array(vec![Reply::Bulk(k), b(&m), Reply::Double(s)]));
    }
    super::block(ctx, argv, keys, deadline, Reply::NullArray, Reply::NullArray)
}

fn bzpopmin(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    bzpop_generic(ctx, argv, false)
}
fn bzpopmax(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    bzpop_generic(ctx, argv, true)
}

fn bzmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // Redis checks the timeout after the other arguments.
    let (keys, max, count) = parse_zmpop(argv, 2)?;
    let deadline = super::block_deadline(ctx.srv, argv[1])?;
    match mpop_first(ctx, &crate::protocol::views(&keys), max, count)? {
        Some(r) => Ok(r),
        None => super::block(ctx, argv, &crate::protocol::views(&keys), deadline, Reply::NullArray, Reply::NullArray),
    }
}

fn zrandmember(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() == 2 {
        let srv = &mut *ctx.srv;
        let db = &mut srv.dbs[ctx.sess.db];
        let z = match db.get(argv[1]) {
            None => return Ok(Reply::Null),
            Some(v) => v.as_zset().ok_or(CmdError::WrongType)?,
        };
        return Ok(z.random(&mut srv.rng).map_or(Reply::Null, |(m, _)| b(m)));
    }
    let count = super::args::random_count(argv[2])?;
    let withscores = match argv.get(3) {
        None => false,
        Some(a) if is(a, "withscores") && argv.len() == 4 => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    let srv = &mut *ctx.srv;
    let draws = super::args::check_random_count(count, withscores, ctx.sess.output_room(&srv.hot.obuf))?;
    let db = &mut srv.dbs[ctx.sess.db];
    let z = match db.get(argv[1]) {
        None => return Ok(Reply::Array(vec![])),
        Some(v) => v.as_zset().ok_or(CmdError::WrongType)?,
    };
    let picked: Vec<(Vec<u8>, f64)> = if count == 0 {
        vec![]
    } else if count < 0 {
        (0..draws).filter_map(|_| z.random(&mut srv.rng)).map(|(m, s)| (m.to_vec(), s)).collect()
    } else if count as usize >= z.len() {
        // Redis 7.0 returns the whole set walking from the highest member.
        z.range(0, z.len(), true).map(|(m, s)| (m.to_vec(), s)).collect()
    } else {
        let all: Vec<(Vec<u8>, f64)> = z.range(0, z.len(), false).map(|(m, s)| (m.to_vec(), s)).collect();
        let mut idx: Vec<usize> = (0..all.len()).collect();
        for i in 0..count as usize {
            let j = srv.rng.random_range(i..idx.len());
            idx.swap(i, j);
        }
        idx[..count as usize].iter().map(|&i| all[i].clone()).collect()
    };
    Ok(if withscores { with_scores(picked) } else { Reply::Array(picked.into_iter().map(|(m, _)| b(&m)).collect()) })
}

fn zscan(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut cursor = parse_cursor(argv[2])?;
    let o = parse_scan_opts(argv, 3, false)?;
    let Some(z) = read::<ZSetValue>(ctx.db(), argv[1])? else {
        return Ok(Reply::Array(vec![Reply::bulk_str("0"), Reply::Array(vec![])]));
    };
    let mut out = Vec::new();
    let mut budget = o.count.saturating_mul(10);
    loop {
        cursor = z.scan(cursor, |m, s| {
            if o.pattern.as_ref().is_none_or(|p| glob_match(p, m, false)) {
                out.push(b(m));
                out.push(Reply::bulk_str(&crate::util::numfmt::fmt_double(s)));
            }
        });
        budget = budget.saturating_sub(1);
        if cursor == 0 || budget == 0 || out.len() / 2 >= o.count {
            break;
        }
    }
    Ok(Reply::Array(vec![Reply::Bulk(Bytes::from(cursor.to_string())), Reply::Array(out)]))
}

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Agg {
    Sum,
    Min,
    Max,
}

struct OpArgs {
    keys: Vec<Bytes>,
    weights: Vec<f64>,
    agg: Agg,
    withscores: bool,
    limit: usize,
}

/// Parses `numkeys key... [WEIGHTS ...] [AGGREGATE ...] [WITHSCORES] [LIMIT n]` at `at`.
fn parse_op(
    db: &mut Db,
    argv: &[&[u8]],
    at: usize,
    name: &str,
    op: SetOp,
    withscores_ok: bool,
    card: bool,
) -> Result<OpArgs, CmdError> {
    let numkeys = parse_i64(argv[at]).ok_or(CmdError::NotInteger)?;
    if numkeys < 1 {
        return Err(CmdError::msg(format!("at least 1 input key is needed for '{name}' command")));
    }
    let numkeys = numkeys as usize;
    if numkeys > argv.len() - at - 1 {
        return Err(CmdError::Syntax);
    }
    let keys = crate::protocol::owned(&argv[at + 1..at + 1 + numkeys]);
    // The inputs' types are checked before the options, as Redis does. `get` counts the
    // access and drops expired keys.
    for k in &keys {
        match db.get(k) {
            Some(Value::ZSet(_)) | Some(Value::Set(_)) | None => {}
            Some(_) => return Err(CmdError::WrongType),
        }
    }
    let mut o = OpArgs { keys, weights: vec![1.0; numkeys], agg: Agg::Sum, withscores: false, limit: 0 };
    let mut i = at + 1 + numkeys;
    while i < argv.len() {
        let a = &argv[i];
        let left = argv.len() - i - 1;
        if !card && op != SetOp::Diff && is(a, "weights") && left >= numkeys {
            for j in 0..numkeys {
                o.weights[j] =
                    parse_f64(argv[i + 1 + j]).ok_or_else(|| CmdError::msg("weight value is not a float"))?;
            }
            i += numkeys;
        } else if !card && op != SetOp::Diff && is(a, "aggregate") && left >= 1 {
            let v = &argv[i + 1];
            o.agg = if is(v, "sum") {
                Agg::Sum
            } else if is(v, "min") {
                Agg::Min
            } else if is(v, "max") {
                Agg::Max
            } else {
                return Err(CmdError::Syntax);
            };
            i += 1;
        } else if withscores_ok && is(a, "withscores") {
            o.withscores = true;
        } else if card && is(a, "limit") && left >= 1 {
            o.limit = match parse_i64(argv[i + 1]) {
                Some(n) if n >= 0 => n as usize,
                _ => return Err(CmdError::msg("LIMIT can't be negative")),
            };
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

/// Reads an input of ZUNION & co: a sorted set, or a set whose members score 1.
/// Members with scores, in order.
type Scored = Vec<(Vec<u8>, f64)>;

fn input(db: &Db, key: &[u8]) -> Result<Option<Scored>, CmdError> {
    match db.view(key) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z.range(0, z.len(), false).map(|(m, s)| (m.to_vec(), s)).collect())),
        Some(Value::Set(s)) => Ok(Some(s.iter().map(|m| (m.into_owned(), 1.0)).collect())),
        Some(_) => Err(CmdError::WrongType),
    }
}

fn aggregate(agg: Agg, acc: f64, v: f64) -> f64 {
    let r = match agg {
        Agg::Sum => acc + v,
        Agg::Min => acc.min(v),
        Agg::Max => acc.max(v),
    };
    if r.is_nan() { 0.0 } else { r }
}

fn weighted(s: f64, w: f64) -> f64 {
    let r = s * w;
    if r.is_nan() { 0.0 } else { r }
}

/// Computes ZUNION/ZINTER/ZDIFF, result sorted by (score, member).
fn compute_op(ctx: &mut Ctx, op: SetOp, o: &OpArgs) -> Result<Vec<(Vec<u8>, f64)>, CmdError> {
    let db = ctx.db();
    let mut inputs = Vec::new();
    for k in &o.keys {
        inputs.push(input(db, k)?);
    }
    let mut result: Vec<(Vec<u8>, f64)> = Vec::new();
    match op {
        SetOp::Union => {
            let mut acc: HashMap<Vec<u8>, f64> = HashMap::new();
            let mut order = Vec::new();
            for (i, inp) in inputs.iter().enumerate() {
                for (m, s) in inp.iter().flatten() {
                    let v = weighted(*s, o.weights[i]);
                    match acc.get_mut(m) {
                        Some(a) => *a = aggregate(o.agg, *a, v),
                        None => {
                            acc.insert(m.clone(), v);
                            order.push(m.clone());
                        }
                    }
                }
            }
            result = order.into_iter().map(|m| (m.clone(), acc[&m])).collect();
        }
        SetOp::Inter => {
            if inputs.iter().any(|i| i.is_none()) {
                return Ok(vec![]);
            }
            let sets: Vec<HashMap<&[u8], f64>> =
                inputs.iter().flatten().map(|v| v.iter().map(|(m, s)| (&m[..], *s)).collect()).collect();
            let mut idx: Vec<usize> = (0..sets.len()).collect();
            idx.sort_by_key(|&i| sets[i].len());
            if let Some(first) = inputs[idx[0]].as_ref() {
                'outer: for (m, s) in first {
                    let mut v = weighted(*s, o.weights[idx[0]]);
                    for &j in &idx[1..] {
                        match sets[j].get(&m[..]) {
                            Some(sj) => v = aggregate(o.agg, v, weighted(*sj, o.weights[j])),
                            None => continue 'outer,
                        }
                    }
                    result.push((m.clone(), v));
                    if o.limit > 0 && result.len() >= o.limit {
                        break;
                    }
                }
            }
        }
        SetOp::Diff => {
            if let Some(Some(first)) = inputs.first() {
                let others: Vec<HashMap<&[u8], f64>> =
                    inputs[1..].iter().flatten().map(|v| v.iter().map(|(m, s)| (&m[..], *s)).collect()).collect();
                for (m, s) in first {
                    if !others.iter().any(|o| o.contains_key(&m[..])) {
                        result.push((m.clone(), *s));
                    }
                }
            }
        }
    }
    result.sort_by(|a, b| crate::types::zset::cmp_key(a.1, &a.0, b.1, &b.0));
    Ok(result)
}

fn op_read(ctx: &mut Ctx, argv: &[&[u8]], op: SetOp, name: &str) -> CmdResult {
    let o = parse_op(ctx.db(), argv, 1, name, op, true, false)?;
    let items = compute_op(ctx, op, &o)?;
    Ok(if o.withscores {
        with_scores(items)
    } else {
        Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(Bytes::from(m))).collect())
    })
}

fn op_store(ctx: &mut Ctx, argv: &[&[u8]], op: SetOp, name: &str) -> CmdResult {
    let o = parse_op(ctx.db(), argv, 2, name, op, false, false)?;
    let items = compute_op(ctx, op, &o)?;
    let event = match op {
        SetOp::Union => "zunionstore",
        SetOp::Inter => "zinterstore",
        SetOp::Diff => "zdiffstore",
    };
    let n = store_zset(ctx, argv[1], &items, event);
    Ok(Reply::Int(n as i64))
}

fn zunion(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    op_read(ctx, argv, SetOp::Union, "zunion")
}
fn zinter(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    op_read(ctx, argv, SetOp::Inter, "zinter")
}
fn zdiff(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    op_read(ctx, argv, SetOp::Diff, "zdiff")
}
fn zunionstore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    op_store(ctx, argv, SetOp::Union, "zunionstore")
}
fn zinterstore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    op_store(ctx, argv, SetOp::Inter, "zinterstore")
}
fn zdiffstore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    op_store(ctx, argv, SetOp::Diff, "zdiffstore")
}

fn zintercard(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let o = parse_op(ctx.db(), argv, 1, "zintercard", SetOp::Inter, false, true)?;
    let items = compute_op(ctx, SetOp::Inter, &o)?;
    Ok(Reply::Int(items.len() as i64))
}
