//! Hash family: the 16 hash commands of Redis 7.0.

use crate::keyspace::notify as ev;
use bytes::Bytes;
use rand::RngExt;

use super::access::read;
use super::args::{int, is};
use super::args::{parse_cursor, parse_scan_opts};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, KEY1};
use crate::keyspace::Db;
use crate::protocol::reply::{BulksBuilder, BulksKind};
use crate::protocol::{OK, Reply};
use crate::types::{HashValue, Value};
use crate::util::glob::glob_match;
use crate::util::longdouble::LongDouble;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("hset", -4, hset).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("hash", "Set the string value of a hash field", "2.0.0", "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs."),
    CommandSpec::new("hmset", -4, hmset).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("hash", "Set multiple hash fields to multiple values", "2.0.0", "O(N) where N is the number of fields being set."),
    CommandSpec::new("hsetnx", 4, hsetnx).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("hash", "Set the value of a hash field, only if the field does not exist", "2.0.0", "O(1)"),
    CommandSpec::new("hget", 3, hget).flags(READONLY | FAST).keys(KEY1).doc("hash", "Get the value of a hash field", "2.0.0", "O(1)"),
    CommandSpec::new("hmget", -3, hmget).flags(READONLY | FAST).keys(KEY1).doc("hash", "Get the values of all the given hash fields", "2.0.0", "O(N) where N is the number of fields being requested."),
    CommandSpec::new("hdel", -3, hdel).flags(WRITE | FAST).keys(KEY1).doc("hash", "Delete one or more hash fields", "2.0.0", "O(N) where N is the number of fields to be removed."),
    CommandSpec::new("hlen", 2, hlen).flags(READONLY | FAST).keys(KEY1).doc("hash", "Get the number of fields in a hash", "2.0.0", "O(1)"),
    CommandSpec::new("hstrlen", 3, hstrlen).flags(READONLY | FAST).keys(KEY1).doc("hash", "Get the length of the value of a hash field", "3.2.0", "O(1)"),
    CommandSpec::new("hexists", 3, hexists).flags(READONLY | FAST).keys(KEY1).doc("hash", "Determine if a hash field exists", "2.0.0", "O(1)"),
    CommandSpec::new("hkeys", 2, hkeys).flags(READONLY).keys(KEY1).doc("hash", "Get all the fields in a hash", "2.0.0", "O(N) where N is the size of the hash."),
    CommandSpec::new("hvals", 2, hvals).flags(READONLY).keys(KEY1).doc("hash", "Get all the values in a hash", "2.0.0", "O(N) where N is the size of the hash."),
    CommandSpec::new("hgetall", 2, hgetall).flags(READONLY).keys(KEY1).doc("hash", "Get all the fields and values in a hash", "2.0.0", "O(N) where N is the size of the hash."),
    CommandSpec::new("hincrby", 4, hincrby).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("hash", "Increment the integer value of a hash field by the given number", "2.0.0", "O(1)"),
    CommandSpec::new("hincrbyfloat", 4, hincrbyfloat).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("hash", "Increment the float value of a hash field by the given amount", "2.6.0", "O(1)"),
    CommandSpec::new("hrandfield", -2, hrandfield).flags(READONLY).keys(KEY1).doc("hash", "Get one or multiple random fields from a hash", "6.2.0", "O(N) where N is the number of fields returned"),
    CommandSpec::new("hscan", -3, hscan).flags(READONLY).keys(KEY1).doc("hash", "Incrementally iterate hash fields and associated values", "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the size of the collection."),
];

/// The hash at `key` for writing, created empty if missing.
fn hash_for_write<'a>(db: &'a mut Db, key: &[u8]) -> Result<&'a mut HashValue, CmdError> {
    match db.peek(key) {
        Some(e) if e.value.as_hash().is_none() => return Err(CmdError::WrongType),
        Some(_) => {}
        None => db.set(key, Value::Hash(HashValue::default()), false),
    }
    db.get_mut(key).and_then(|v| v.as_hash_mut()).ok_or(CmdError::WrongType)
}

fn fv(b: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(b))
}

fn hset_generic(ctx: &mut Ctx, argv: &[&[u8]], name: &str) -> Result<i64, CmdError> {
    if argv.len() % 2 == 1 {
        return Err(CmdError::WrongArity(name.into()));
    }
    let limits = ctx.srv.hot.hash;
    let h = hash_for_write(ctx.db(), argv[1])?;
    let added = h.set_pairs(&argv[2..], limits) as i64;
    // Each field written is a change, as Redis counts HSET.
    ctx.db().signal_changes(argv[1], (argv.len() - 2) / 2);
    ctx.notify(ev::HASH, "hset", argv[1]);
    Ok(added)
}

fn hset(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(hset_generic(ctx, argv, "hset")?))
}

fn hmset(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    hset_generic(ctx, argv, "hmset")?;
    Ok(OK)
}

fn hsetnx(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if read::<HashValue>(ctx.db(), argv[1])?.is_some_and(|h| h.contains(argv[2])) {
        return Ok(Reply::Int(0));
    }
    let limits = ctx.srv.hot.hash;
    hash_for_write(ctx.db(), argv[1])?.set(argv[2], argv[3], limits);
    ctx.notify(ev::HASH, "hset", argv[1]);
    Ok(Reply::Int(1))
}

fn hget(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(read::<HashValue>(ctx.db(), argv[1])?.and_then(|h| h.get(argv[2])).map_or(Reply::Null, fv))
}

fn hmget(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let h = read::<HashValue>(ctx.db(), argv[1])?;
    Ok(Reply::Array(argv[2..].iter().map(|f| h.and_then(|h| h.get(f)).map_or(Reply::Null, fv)).collect()))
}

fn hdel(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    if read::<HashValue>(db, argv[1])?.is_none() {
        return Ok(Reply::Int(0));
    }
    let Some(h) = db.get_mut_quiet(argv[1]).and_then(|v| v.as_hash_mut()) else { return Ok(Reply::Int(0)) };
    let n = argv[2..].iter().filter(|f| h.remove(f)).count();
    let empty = h.is_empty();
    db.signal_changes(argv[1], n);
    if empty {
        db.remove(argv[1]);
    }
    if n > 0 {
        ctx.notify_emptying(ev::HASH, "hdel", argv[1]);
    }
    Ok(Reply::Int(n as i64))
}

fn hlen(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(read::<HashValue>(ctx.db(), argv[1])?.map_or(0, |h| h.len()) as i64))
}

fn hstrlen(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(read::<HashValue>(ctx.db(), argv[1])?.and_then(|h| h.get(argv[2])).map_or(0, |v| v.len()) as i64))
}

fn hexists(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(read::<HashValue>(ctx.db(), argv[1])?.is_some_and(|h| h.contains(argv[2])) as i64))
}

fn hkeys(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let Some(h) = read::<HashValue>(ctx.db(), argv[1])? else { return Ok(Reply::Array(vec![])) };
    let mut out = BulksBuilder::new(BulksKind::Array, h.len());
    h.iter().for_each(|(f, _)| out.push(f));
    Ok(out.finish())
}

fn hvals(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let Some(h) = read::<HashValue>(ctx.db(), argv[1])? else { return Ok(Reply::Array(vec![])) };
    let mut out = BulksBuilder::new(BulksKind::Array, h.len());
    h.iter().for_each(|(_, v)| out.push(v));
    Ok(out.finish())
}

fn hgetall(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let Some(h) = read::<HashValue>(ctx.db(), argv[1])? else { return Ok(Reply::Map(vec![])) };
    let mut out = BulksBuilder::new(BulksKind::Map, h.len());
    h.iter().for_each(|(f, v)| out.push_pair(f, v));
    Ok(out.finish())
}

fn hincrby(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let by = int(argv[3])?;
    let cur = match read::<HashValue>(ctx.db(), argv[1])?.and_then(|h| h.get(argv[2])) {
        None => 0,
        Some(v) => crate::util::numfmt::parse_i64(v).ok_or_else(|| CmdError::msg("hash value is not an integer"))?,
    };
    let n = cur.checked_add(by).ok_or(CmdError::Overflow)?;
    let limits = ctx.srv.hot.hash;
    // An incremented field keeps its deadline (Redis 7.4's HASH_SET_KEEP_TTL).
    hash_for_write(ctx.db(), argv[1])?.set_keep_ttl(argv[2], n.to_string().as_bytes(), limits);
    ctx.notify(ev::HASH, "hincrby", argv[1]);
    Ok(Reply::Int(n))
}

fn hincrbyfloat(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let by = LongDouble::parse(argv[3]).ok_or(CmdError::NotFloat)?;
    if !by.is_finite() {
        return Err(CmdError::msg("value is NaN or Infinity"));
    }
    let cur = match read::<HashValue>(ctx.db(), argv[1])?.and_then(|h| h.get(argv[2])) {
        None => LongDouble::Finite { neg: false, m: 0, exp: 0 },
        Some(v) => LongDouble::parse(v).ok_or_else(|| CmdError::msg("hash value is not a float"))?,
    };
    let v = cur.sum(by);
    if !v.is_finite() {
        return Err(CmdError::msg("increment would produce NaN or Infinity"));
    }
    let s = v.to_human();
    let limits = ctx.srv.hot.hash;
    let h = hash_for_write(ctx.db(), argv[1])?;
    h.set_keep_ttl(argv[2], s.as_bytes(), limits);
    let has_ttl = h.get_with_ttl(argv[2]).is_some_and(|(_, at)| at != 0);
    ctx.notify(ev::HASH, "hincrbyfloat", argv[1]);
    // Propagated as the value it produced: HSET key field value, as Redis 7.0 does, or
    // HSETEX ... KEEPTTL when the field has a deadline to keep (Redis 8).
    let (k, f, v) = (Bytes::copy_from_slice(argv[1]), Bytes::copy_from_slice(argv[2]), Bytes::from(s.clone()));
    ctx.log_as(if has_ttl {
        let kw = |s: &'static [u8]| Bytes::from_static(s);
        vec![kw(b"HSETEX"), k, kw(b"KEEPTTL"), kw(b"FIELDS"), kw(b"1"), f, v]
    } else {
        vec![Bytes::from_static(b"HSET"), k, f, v]
    });
    Ok(Reply::Bulk(Bytes::from(s)))
}

fn hrandfield(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() == 2 {
        let srv = &mut *ctx.srv;
        let db = &mut srv.dbs[ctx.sess.db];
        let h = match db.get(argv[1]) {
            None => return Ok(Reply::Null),
            Some(v) => v.as_hash().ok_or(CmdError::WrongType)?,
        };
        return Ok(h.random(&mut srv.rng).map_or(Reply::Null, |(f, _)| fv(f)));
    }
    let count = super::args::random_count(argv[2])?;
    let withvalues = match argv.get(3) {
        None => false,
        Some(a) if is(a, "withvalues") && argv.len() == 4 => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    let srv = &mut *ctx.srv;
    let draws = super::args::check_random_count(count, withvalues, ctx.sess.output_room(&srv.hot.obuf))?;
    let db = &mut srv.dbs[ctx.sess.db];
    let h = match db.get(argv[1]) {
        None => return Ok(Reply::Array(vec![])),
        Some(v) => v.as_hash().ok_or(CmdError::WrongType)?,
    };
    let pair = |f: &[u8], v: &[u8], out: &mut Vec<(Reply, Reply)>| out.push((fv(f), fv(v)));
    // Fields alone, or field/value pairs the encoder lays out per protocol.
    let reply = |out: Vec<(Reply, Reply)>| {
        if withvalues { Reply::Pairs(out) } else { Reply::Array(out.into_iter().map(|(f, _)| f).collect()) }
    };
    let mut out = Vec::new();
    if count == 0 {
        return Ok(Reply::Array(vec![]));
    }
    if count < 0 {
        // With repetition: |count| independent draws.
        for _ in 0..draws {
            if let Some((f, v)) = h.random(&mut srv.rng) {
                pair(f, v, &mut out);
            }
        }
        return Ok(reply(out));
    }
    let count = count as usize;
    let all: Vec<(&[u8], &[u8])> = h.iter().collect();
    if count >= all.len() {
        for (f, v) in all {
            pair(f, v, &mut out);
        }
        return Ok(reply(out));
    }
    // Distinct fields: a partial Fisher-Yates shuffle picks `count` of them uniformly.
    let mut idx: Vec<usize> = (0..all.len()).collect();
    for i in 0..count {
        let j = srv.rng.random_range(i..idx.len());
        idx.swap(i, j);
    }
    for &i in &idx[..count] {
        pair(all[i].0, all[i].1, &mut out);
    }
    Ok(reply(out))
}

fn hscan(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut cursor = parse_cursor(argv[2])?;
    let o = parse_scan_opts(argv, 3, false)?;
    let Some(h) = read::<HashValue>(ctx.db(), argv[1])? else {
        return Ok(Reply::Array(vec![Reply::bulk_str("0"), Reply::Array(vec![])]));
    };
    let mut out = Vec::new();
    let mut budget = o.count.saturating_mul(10);
    loop {
        cursor = h.scan(cursor, |f, v| {
            if o.pattern.as_ref().is_none_or(|p| glob_match(p, f, false)) {
                out.push(fv(f));
                out.push(fv(v));
            }
        });
        budget = budget.saturating_sub(1);
        if cursor == 0 || budget == 0 || out.len() / 2 >= o.count {
            break;
        }
    }
    Ok(Reply::Array(vec![Reply::Bulk(Bytes::from(cursor.to_string())), Reply::Array(out)]))
}
