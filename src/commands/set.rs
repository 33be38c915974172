//! Set family: the 17 set commands of Redis 7.0.

use std::borrow::Cow;

use crate::keyspace::notify as ev;
use bytes::Bytes;
use rand::RngExt;

use super::access::{modify, read};
use super::args::is;
use super::args::{parse_cursor, parse_scan_opts};
use super::flags::*;
use super::{ALL_KEYS, CmdError, CmdResult, CommandSpec, Ctx, KEY1, Keys};
use crate::keyspace::Db;
use crate::protocol::Reply;
use crate::protocol::reply::{BulksBuilder, BulksKind};
use crate::types::{SetValue, Value};
use crate::util::glob::glob_match;
use crate::util::numfmt::parse_i64;

const KEYS_1_2: Keys = Keys { first: 1, last: 2, step: 1 };
const SINTERCARD_KEYS: Keys = Keys { first: 2, last: -1, step: 1 };

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sadd", -3, sadd).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("set", "Add one or more members to a set", "1.0.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    CommandSpec::new("srem", -3, srem).flags(WRITE | FAST).keys(KEY1).doc("set", "Remove one or more members from a set", "1.0.0", "O(N) where N is the number of members to be removed."),
    CommandSpec::new("scard", 2, scard).flags(READONLY | FAST).keys(KEY1).doc("set", "Get the number of members in a set", "1.0.0", "O(1)"),
    CommandSpec::new("sismember", 3, sismember).flags(READONLY | FAST).keys(KEY1).doc("set", "Determine if a given value is a member of a set", "1.0.0", "O(1)"),
    CommandSpec::new("smismember", -3, smismember).flags(READONLY | FAST).keys(KEY1).doc("set", "Returns the membership associated with the given elements for a set", "6.2.0", "O(N) where N is the number of elements being checked for membership"),
    CommandSpec::new("smembers", 2, smembers).flags(READONLY).keys(KEY1).doc("set", "Get all the members in a set", "1.0.0", "O(N) where N is the set cardinality."),
    CommandSpec::new("spop", -2, spop).flags(WRITE | FAST).keys(KEY1).doc("set", "Remove and return one or multiple random members from a set", "1.0.0", "Without the count argument O(1), otherwise O(N) where N is the value of the passed count."),
    CommandSpec::new("srandmember", -2, srandmember).flags(READONLY).keys(KEY1).doc("set", "Get one or multiple random members from a set", "1.0.0", "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count."),
    CommandSpec::new("smove", 4, smove).flags(WRITE | FAST).keys(KEYS_1_2).doc("set", "Move a member from one set to another", "1.0.0", "O(1)"),
    CommandSpec::new("sinter", -2, sinter).flags(READONLY).keys(ALL_KEYS).doc("set", "Intersect multiple sets", "1.0.0", "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."),
    CommandSpec::new("sintercard", -3, sintercard).flags(READONLY | MOVABLEKEYS).keys(SINTERCARD_KEYS).doc("set", "Intersect multiple sets and return the cardinality of the result", "7.0.0", "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."),
    CommandSpec::new("sinterstore", -3, sinterstore).flags(WRITE | DENYOOM).keys(ALL_KEYS).doc("set", "Intersect multiple sets and store the resulting set in a key", "1.0.0", "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."),
    CommandSpec::new("sunion", -2, sunion).flags(READONLY).keys(ALL_KEYS).doc("set", "Add multiple sets", "1.0.0", "O(N) where N is the total number of elements in all given sets."),
    CommandSpec::new("sunionstore", -3, sunionstore).flags(WRITE | DENYOOM).keys(ALL_KEYS).doc("set", "Add multiple sets and store the resulting set in a key", "1.0.0", "O(N) where N is the total number of elements in all given sets."),
    CommandSpec::new("sdiff", -2, sdiff).flags(READONLY).keys(ALL_KEYS).doc("set", "Subtract multiple sets", "1.0.0", "O(N) where N is the total number of elements in all given sets."),
    CommandSpec::new("sdiffstore", -3, sdiffstore).flags(WRITE | DENYOOM).keys(ALL_KEYS).doc("set", "Subtract multiple sets and store the resulting set in a key", "1.0.0", "O(N) where N is the total number of elements in all given sets."),
    CommandSpec::new("sscan", -3, sscan).flags(READONLY).keys(KEY1).doc("set", "Incrementally iterate Set elements", "2.0.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the size of the collection."),
];

fn m(b: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(b))
}

fn sadd(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let max = ctx.srv.hot.set_max_intset;
    let db = ctx.db();
    match db.peek(argv[1]) {
        Some(e) if e.value.as_set().is_none() => return Err(CmdError::WrongType),
        Some(_) => {}
        None => db.set(argv[1], Value::Set(SetValue::for_member(argv[2])), false),
    }
    let Some(s) = db.get_mut_quiet(argv[1]).and_then(|v| v.as_set_mut()) else { return Err(CmdError::WrongType) };
    let n = argv[2..].iter().filter(|x| s.add(x, max)).count();
    db.signal_changes(argv[1], n);
    if n > 0 {
        ctx.notify(ev::SET, "sadd", argv[1]);
    }
    Ok(Reply::Int(n as i64))
}

fn srem(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let n =
        modify::<SetValue, _>(ctx.db(), argv[1], |s| argv[2..].iter().filter(|x| s.remove(x)).count())?.unwrap_or(0);
    if n > 0 {
        ctx.notify_emptying(ev::SET, "srem", argv[1]);
    }
    Ok(Reply::Int(n as i64))
}

fn scard(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(read::<SetValue>(ctx.db(), argv[1])?.map_or(0, |s| s.len()) as i64))
}

fn sismember(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(read::<SetValue>(ctx.db(), argv[1])?.is_some_and(|s| s.contains(argv[2])) as i64))
}

fn smismember(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let s = read::<SetValue>(ctx.db(), argv[1])?;
    Ok(Reply::Array(argv[2..].iter().map(|x| Reply::Int(s.is_some_and(|s| s.contains(x)) as i64)).collect()))
}

fn smembers(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let Some(s) = read::<SetValue>(ctx.db(), argv[1])? else { return Ok(Reply::Set(vec![])) };
    let mut out = BulksBuilder::new(BulksKind::Set, s.len());
    s.iter().for_each(|x| out.push(&x));
    Ok(out.finish())
}

fn spop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let srv = &mut *ctx.srv;
    let dbi = ctx.sess.db;
    if argv.len() == 2 {
        let db = &mut srv.dbs[dbi];
        let rng = &mut srv.rng;
        let popped = modify::<SetValue, _>(db, argv[1], |s| s.pop(rng))?.flatten();
        let Some(p) = popped else { return Ok(Reply::Null) };
        let p = Bytes::copy_from_slice(&p);
        log_srem(ctx, argv[1], std::slice::from_ref(&p));
        ctx.notify_emptying(ev::SET, "spop", argv[1]);
        return Ok(Reply::Bulk(p));
    }
    if argv.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match parse_i64(argv[2]) {
        Some(n) if n >= 0 => n as u64,
        _ => return Err(CmdError::msg("value is out of range, must be positive")),
    };
    let db = &mut srv.dbs[dbi];
    if read::<SetValue>(db, argv[1])?.is_none() || count == 0 {
        return Ok(Reply::Set(vec![]));
    }
    let rng = &mut srv.rng;
    let out: Vec<Bytes> = modify::<SetValue, _>(db, argv[1], |s| {
        if count as usize >= s.len() {
            let all = s.iter().map(|x| Bytes::copy_from_slice(&x)).collect();
            *s = SetValue::ints(Default::default());
            all
        } else {
            (0..count).filter_map(|_| s.pop(rng)).map(|x| Bytes::copy_from_slice(&x)).collect()
        }
    })?
    .unwrap_or_default();
    log_srem(ctx, argv[1], &out);
    ctx.notify_emptying(ev::SET, "spop", argv[1]);
    Ok(Reply::Set(out.into_iter().map(Reply::Bulk).collect()))
}

/// SPOP's random choice replays as the SREM of what it popped.
fn log_srem(ctx: &mut Ctx, key: &[u8], popped: &[Bytes]) {
    if ctx.logging() && !popped.is_empty() {
        let mut cmd = Vec::with_capacity(popped.len() + 2);
        cmd.push(Bytes::from_static(b"SREM"));
        cmd.push(Bytes::copy_from_slice(key));
        cmd.extend(popped.iter().cloned());
        ctx.log_as(cmd);
    }
}

fn srandmember(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let srv = &mut *ctx.srv;
    let db = &mut srv.dbs[ctx.sess.db];
    if argv.len() == 2 {
        return Ok(read::<SetValue>(db, argv[1])?.and_then(|s| s.random(&mut srv.rng)).map_or(Reply::Null, |x| m(&x)));
    }
    if argv.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = super::args::random_count(argv[2])?;
    let draws = super::args::check_random_count(count, false, ctx.sess.output_room(&srv.hot.obuf))?;
    let Some(s) = read::<SetValue>(db, argv[1])? else { return Ok(Reply::Array(vec![])) };
    if count == 0 {
        return Ok(Reply::Array(vec![]));
    }
    if count < 0 {
        let out = (0..draws).filter_map(|_| s.random(&mut srv.rng)).map(|x| m(&x)).collect();
        return Ok(Reply::Array(out));
    }
    let all: Vec<Cow<[u8]>> = s.iter().collect();
    let count = count as usize;
    if count >= all.len() {
        return Ok(Reply::Array(all.iter().map(|x| m(x)).collect()));
    }
    // Distinct members: a partial Fisher-Yates shuffle picks `count` uniformly.
    let mut idx: Vec<usize> = (0..all.len()).collect();
    for i in 0..count {
        let j = srv.rng.random_range(i..idx.len());
        idx.swap(i, j);
    }
    Ok(Reply::Array(idx[..count].iter().map(|&i| m(&all[i])).collect()))
}

fn smove(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let max = ctx.srv.hot.set_max_intset;
    let db = ctx.db();
    let (src, dst, member) = (&argv[1], &argv[2], &argv[3]);
    let src_exists = db.peek(src).map(|e| e.value.as_set().is_some());
    let dst_ok = db.peek(dst).is_none_or(|e| e.value.as_set().is_some());
    match src_exists {
        None => return Ok(Reply::Int(0)),
        Some(false) => return Err(CmdError::WrongType),
        Some(true) if !dst_ok => return Err(CmdError::WrongType),
        _ => {}
    }
    if src == dst {
        return Ok(Reply::Int(read::<SetValue>(db, src)?.is_some_and(|s| s.contains(member)) as i64));
    }
    if modify::<SetValue, _>(db, src, |s| s.remove(member))? != Some(true) {
        return Ok(Reply::Int(0));
    }
    ctx.notify_emptying(ev::SET, "srem", src);
    let db = ctx.db();
    if db.peek(dst).is_none() {
        db.set(dst, Value::Set(SetValue::for_member(member)), false);
    }
    let added = db.get_mut_quiet(dst).and_then(|v| v.as_set_mut()).is_some_and(|s| s.add(member, max));
    if added {
        db.signal_modified(dst);
    }
    if added {
        ctx.notify(ev::SET, "sadd", dst);
    }
    Ok(Reply::Int(1))
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// Computes a set operation over `keys`. Like Redis, every key is type-checked first (WRONGTYPE
/// for any non-set); a missing key is an empty set.
fn compute(db: &mut Db, keys: &[&[u8]], op: Op, limit: usize) -> Result<Vec<Vec<u8>>, CmdError> {
    let mut missing = false;
    for k in keys {
        match db.get(k) {
            None => missing = true,
            Some(v) if v.as_set().is_none() => return Err(CmdError::WrongType),
            Some(_) => {}
        }
    }
    if missing && op == Op::Inter {
        return Ok(vec![]);
    }
    let sets: Vec<Option<&SetValue>> = keys.iter().map(|k| db.view(k).and_then(|v| v.as_set())).collect();
    let mut out: Vec<Vec<u8>> = Vec::new();
    match op {
        Op::Inter => {
            let mut present: Vec<&SetValue> = sets.into_iter().flatten().collect();
            present.sort_by_key(|s| s.len());
            let Some((first, rest)) = present.split_first() else { return Ok(out) };
            for x in first.iter() {
                if rest.iter().all(|s| s.contains(&x)) {
                    out.push(x.into_owned());
                    if limit > 0 && out.len() >= limit {
                        break;
                    }
                }
            }
        }
        Op::Union => {
            let mut seen = std::collections::HashSet::new();
            for s in sets.into_iter().flatten() {
                for x in s.iter() {
                    if seen.insert(x.clone().into_owned()) {
                        out.push(x.into_owned());
                    }
                }
            }
        }
        Op::Diff => {
            let Some(Some(first)) = sets.first() else { return Ok(out) };
            for x in first.iter() {
                if !sets[1..].iter().flatten().any(|s| s.contains(&x)) {
                    out.push(x.into_owned());
                }
            }
        }
    }
    Ok(out)
}

/// Builds the stored result the way Redis does: an intset that converts as members require.
fn build(members: &[Vec<u8>], max_intset: usize) -> SetValue {
    let mut s = SetValue::for_member(b"0");
    for x in members {
        s.add(x, max_intset);
    }
    s
}

/// The reply of SINTER/SUNION/SDIFF: the members in the order of the set Redis would build.
fn reply_set(members: Vec<Vec<u8>>, max_intset: usize) -> Reply {
    let s = build(&members, max_intset);
    Reply::Set(s.iter().map(|x| m(&x)).collect())
}

fn read_op(ctx: &mut Ctx, argv: &[&[u8]], op: Op) -> CmdResult {
    let max = ctx.srv.hot.set_max_intset;
    let members = compute(ctx.db(), &argv[1..], op, 0)?;
    Ok(reply_set(members, max))
}

fn store_op(ctx: &mut Ctx, argv: &[&[u8]], op: Op) -> CmdResult {
    let max = ctx.srv.hot.set_max_intset;
    let db = ctx.db();
    let members = compute(db, &argv[2..], op, 0)?;
    let dst = &argv[1];
    let n = members.len();
    if n == 0 {
        if db.remove(dst).is_some() {
            ctx.notify(ev::GENERIC, "del", dst);
        }
    } else {
        db.set(dst, Value::Set(build(&members, max)), false);
        let event = match op {
            Op::Inter => "sinterstore",
            Op::Union => "sunionstore",
            Op::Diff => "sdiffstore",
        };
        ctx.notify(ev::SET, event, dst);
    }
    Ok(Reply::Int(n as i64))
}

fn sinter(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    read_op(ctx, argv, Op::Inter)
}
fn sunion(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    read_op(ctx, argv, Op::Union)
}
fn sdiff(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    read_op(ctx, argv, Op::Diff)
}
fn sinterstore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    store_op(ctx, argv, Op::Inter)
}
fn sunionstore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    store_op(ctx, argv, Op::Union)
}
fn sdiffstore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    store_op(ctx, argv, Op::Diff)
}

fn sintercard(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let numkeys = match parse_i64(argv[1]) {
        Some(n) if n > 0 => n as usize,
        _ => return Err(CmdError::msg("numkeys should be greater than 0")),
    };
    if numkeys > argv.len() - 2 {
        return Err(CmdError::msg("Number of keys can't be greater than number of args"));
    }
    let mut limit = 0usize;
    let mut i = 2 + numkeys;
    while i < argv.len() {
        if is(argv[i], "limit") && i + 1 < argv.len() {
            limit = match parse_i64(argv[i + 1]) {
                Some(n) if n >= 0 => n as usize,
                _ => return Err(CmdError::msg("LIMIT can't be negative")),
            };
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let members = compute(ctx.db(), &argv[2..2 + numkeys], Op::Inter, limit)?;
    Ok(Reply::Int(members.len() as i64))
}

fn sscan(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut cursor = parse_cursor(argv[2])?;
    let o = parse_scan_opts(argv, 3, false)?;
    let Some(s) = read::<SetValue>(ctx.db(), argv[1])? else {
        return Ok(Reply::Array(vec![Reply::bulk_str("0"), Reply::Array(vec![])]));
    };
    let mut out = Vec::new();
    let mut budget = o.count.saturating_mul(10);
    loop {
        cursor = s.scan(cursor, |x| {
            if o.pattern.as_ref().is_none_or(|p| glob_match(p, x, false)) {
                out.push(m(x));
            }
        });
        budget = budget.saturating_sub(1);
        if cursor == 0 || budget == 0 || out.len() >= o.count {
            break;
        }
    }
    Ok(Reply::Array(vec![Reply::Bulk(Bytes::from(cursor.to_string())), Reply::Array(out)]))
}
