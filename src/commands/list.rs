//! List family: the 22 list commands of Redis 7.0, blocking variants included.

use crate::keyspace::notify as ev;
use bytes::Bytes;

use super::access::{modify, read};
use super::args::is;
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, KEY1, Keys};
use crate::protocol::{OK, Reply};
use crate::types::{End, Fill, ListValue, Value};
use crate::util::numfmt::parse_i64;

const KEYS_1_2: Keys = Keys { first: 1, last: 2, step: 1 };
const BLPOP_KEYS: Keys = Keys { first: 1, last: -2, step: 1 };
const LMPOP_KEYS: Keys = Keys { first: 2, last: -1, step: 1 };
const BLMPOP_KEYS: Keys = Keys { first: 3, last: -1, step: 1 };

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("lpush", -3, lpush).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("list", "Prepend one or multiple elements to a list", "1.0.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    CommandSpec::new("rpush", -3, rpush).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("list", "Append one or multiple elements to a list", "1.0.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    CommandSpec::new("lpushx", -3, lpushx).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("list", "Prepend an element to a list, only if the list exists", "2.2.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    CommandSpec::new("rpushx", -3, rpushx).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("list", "Append an element to a list, only if the list exists", "2.2.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    CommandSpec::new("lpop", -2, lpop).flags(WRITE | FAST).keys(KEY1).doc("list", "Remove and get the first elements in a list", "1.0.0", "O(N) where N is the number of elements returned"),
    CommandSpec::new("rpop", -2, rpop).flags(WRITE | FAST).keys(KEY1).doc("list", "Remove and get the last elements in a list", "1.0.0", "O(N) where N is the number of elements returned"),
    CommandSpec::new("llen", 2, llen).flags(READONLY | FAST).keys(KEY1).doc("list", "Get the length of a list", "1.0.0", "O(1)"),
    CommandSpec::new("lindex", 3, lindex).flags(READONLY).keys(KEY1).doc("list", "Get an element from a list by its index", "1.0.0", "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1)."),
    CommandSpec::new("lset", 4, lset).flags(WRITE | DENYOOM).keys(KEY1).doc("list", "Set the value of an element in a list by its index", "1.0.0", "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1)."),
    CommandSpec::new("lrange", 4, lrange).flags(READONLY).keys(KEY1).doc("list", "Get a range of elements from a list", "1.0.0", "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range."),
    CommandSpec::new("ltrim", 4, ltrim).flags(WRITE).keys(KEY1).doc("list", "Trim a list to the specified range", "1.0.0", "O(N) where N is the number of elements to be removed by the operation."),
    CommandSpec::new("lrem", 4, lrem).flags(WRITE).keys(KEY1).doc("list", "Remove elements from a list", "1.0.0", "O(N+M) where N is the length of the list and M is the number of elements removed."),
    CommandSpec::new("linsert", 5, linsert).flags(WRITE | DENYOOM).keys(KEY1).doc("list", "Insert an element before or after another element in a list", "2.2.0", "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N)."),
    CommandSpec::new("lpos", -3, lpos).flags(READONLY).keys(KEY1).doc("list", "Return the index of matching elements on a list", "6.0.6", "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time."),
    CommandSpec::new("lmove", 5, lmove).flags(WRITE | DENYOOM).keys(KEYS_1_2).doc("list", "Pop an element from a list, push it to another list and return it", "6.2.0", "O(1)"),
    CommandSpec::new("rpoplpush", 3, rpoplpush).flags(WRITE | DENYOOM).keys(KEYS_1_2).doc("list", "Remove the last element in a list, prepend it to another list and return it", "1.2.0", "O(1)"),
    CommandSpec::new("lmpop", -4, lmpop).flags(WRITE | MOVABLEKEYS).keys(LMPOP_KEYS).doc("list", "Pop elements from a list", "7.0.0", "O(N+M) where N is the number of provided keys and M is the number of elements returned."),
    CommandSpec::new("blpop", -3, blpop).flags(WRITE | NOSCRIPT | BLOCKING).keys(BLPOP_KEYS).doc("list", "Remove and get the first element in a list, or block until one is available", "2.0.0", "O(N) where N is the number of provided keys."),
    CommandSpec::new("brpop", -3, brpop).flags(WRITE | NOSCRIPT | BLOCKING).keys(BLPOP_KEYS).doc("list", "Remove and get the last element in a list, or block until one is available", "2.0.0", "O(N) where N is the number of provided keys."),
    CommandSpec::new("blmove", 6, blmove).flags(WRITE | DENYOOM | NOSCRIPT | BLOCKING).keys(KEYS_1_2).doc("list", "Pop an element from a list, push it to another list and return it; or block until one is available", "6.2.0", "O(1)"),
    CommandSpec::new("brpoplpush", 4, brpoplpush).flags(WRITE | DENYOOM | NOSCRIPT | BLOCKING).keys(KEYS_1_2).doc("list", "Pop an element from a list, push it to another list and return it; or block until one is available", "2.2.0", "O(1)"),
    CommandSpec::new("blmpop", -5, blmpop).flags(WRITE | BLOCKING | MOVABLEKEYS).keys(BLMPOP_KEYS).doc("list", "Pop elements from a list, or block until one is available", "7.0.0", "O(N+M) where N is the number of provided keys and M is the number of elements returned."),
];

fn b(v: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(v))
}

fn fill(ctx: &Ctx) -> Fill {
    Fill(ctx.srv.hot.list_max_listpack)
}

fn push_generic(ctx: &mut Ctx, argv: &[&[u8]], end: End, only_existing: bool) -> CmdResult {
    let fill = fill(ctx);
    let db = ctx.db();
    let exists = read::<ListValue>(db, argv[1])?.is_some();
    if !exists {
        if only_existing {
            return Ok(Reply::Int(0));
        }
        db.set(argv[1], Value::List(Box::default()), false);
    }
    let Some(l) = db.get_mut_quiet(argv[1]).and_then(|v| v.as_list_mut()) else { return Err(CmdError::WrongType) };
    for v in &argv[2..] {
        l.push(end, v, fill);
    }
    let n = l.len();
    db.signal_changes(argv[1], argv.len() - 2);
    ctx.notify(ev::LIST, push_event(end), argv[1]);
    Ok(Reply::Int(n as i64))
}

fn push_event(end: End) -> &'static str {
    if end == End::Left { "lpush" } else { "rpush" }
}

fn pop_event(end: End) -> &'static str {
    if end == End::Left { "lpop" } else { "rpop" }
}

fn lpush(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    push_generic(ctx, argv, End::Left, false)
}
fn rpush(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    push_generic(ctx, argv, End::Right, false)
}
fn lpushx(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    push_generic(ctx, argv, End::Left, true)
}
fn rpushx(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    push_generic(ctx, argv, End::Right, true)
}

fn pop_generic(ctx: &mut Ctx, argv: &[&[u8]], end: End) -> CmdResult {
    if argv.len() > 3 {
        let name = if end == End::Left { "lpop" } else { "rpop" };
        return Err(CmdError::WrongArity(name.into()));
    }
    let count = match argv.get(2) {
        None => None,
        Some(a) => match parse_i64(a) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Err(CmdError::msg("value is out of range, must be positive")),
        },
    };
    let db = ctx.db();
    let Some(len) = read::<ListValue>(db, argv[1])?.map(|l| l.len()) else {
        return Ok(if count.is_some() { Reply::NullArray } else { Reply::Null });
    };
    let Some(count) = count else {
        let v = modify::<ListValue, _>(db, argv[1], |l| l.pop(end))?.flatten();
        ctx.notify_emptying(ev::LIST, pop_event(end), argv[1]);
        return Ok(v.map_or(Reply::Null, |v| b(&v)));
    };
    if count == 0 {
        return Ok(Reply::Array(vec![]));
    }
    let n = count.min(len);
    let out = modify::<ListValue, _>(db, argv[1], |l| (0..n).filter_map(|_| l.pop(end)).map(|v| b(&v)).collect())?;
    ctx.notify_emptying(ev::LIST, pop_event(end), argv[1]);
    Ok(Reply::Array(out.unwrap_or_default()))
}

fn lpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    pop_generic(ctx, argv, End::Left)
}
fn rpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    pop_generic(ctx, argv, End::Right)
}

fn llen(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(read::<ListValue>(ctx.db(), argv[1])?.map_or(0, |l| l.len()) as i64))
}

fn lindex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let Some(l) = read::<ListValue>(ctx.db(), argv[1])? else { return Ok(Reply::Null) };
    let idx = parse_i64(argv[2]).ok_or(CmdError::NotInteger)?;
    Ok(l.resolve(idx).and_then(|p| l.get(p)).map_or(Reply::Null, b))
}

fn lset(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let Some(l) = read::<ListValue>(db, argv[1])? else { return Err(CmdError::NoSuchKey) };
    let idx = parse_i64(argv[2]).ok_or(CmdError::NotInteger)?;
    let Some(pos) = l.resolve(idx) else { return Err(CmdError::msg("index out of range")) };
    if let Some(l) = db.get_mut(argv[1]).and_then(|v| v.as_list_mut()) {
        l.set(pos, argv[3]);
    }
    ctx.notify(ev::LIST, "lset", argv[1]);
    Ok(OK)
}

/// A start/end pair as LRANGE/LTRIM read it: the inclusive index range, None when empty.
fn range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    super::args::rank_interval(start, end, len).map(|(s, e)| (s, e - 1))
}

fn lrange(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let start = parse_i64(argv[2]).ok_or(CmdError::NotInteger)?;
    let end = parse_i64(argv[3]).ok_or(CmdError::NotInteger)?;
    let Some(l) = read::<ListValue>(ctx.db(), argv[1])? else { return Ok(Reply::Array(vec![])) };
    let Some((s, e)) = range(start, end, l.len()) else { return Ok(Reply::Array(vec![])) };
    Ok(crate::protocol::reply::bulk_array(e - s + 1, l.iter_from(s, false)))
}

fn ltrim(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let start = parse_i64(argv[2]).ok_or(CmdError::NotInteger)?;
    let end = parse_i64(argv[3]).ok_or(CmdError::NotInteger)?;
    let db = ctx.db();
    let trimmed = modify::<ListValue, _>(db, argv[1], |l| match range(start, end, l.len()) {
        Some((s, e)) => l.trim(s, e),
        None => l.trim(1, 0),
    })?;
    if trimmed.is_some() {
        // Signalled even when nothing was trimmed, as in Redis.
        ctx.db().signal_unchanged(argv[1]);
        ctx.notify_emptying(ev::LIST, "ltrim", argv[1]);
    }
    Ok(OK)
}

fn lrem(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let count = parse_i64(argv[2]).ok_or(CmdError::NotInteger)?;
    let fill = fill(ctx);
    let db = ctx.db();
    if !read::<ListValue>(db, argv[1])?.is_some_and(|l| l.iter().any(|e| e == argv[3])) {
        return Ok(Reply::Int(0));
    }
    let n = modify::<ListValue, _>(db, argv[1], |l| l.remove_matching(argv[3], count, fill))?.unwrap_or(0);
    if n > 0 {
        ctx.notify_emptying(ev::LIST, "lrem", argv[1]);
    }
    Ok(Reply::Int(n as i64))
}

fn linsert(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let after = if is(argv[2], "after") {
        true
    } else if is(argv[2], "before") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let fill = fill(ctx);
    let db = ctx.db();
    let Some(l) = read::<ListValue>(db, argv[1])? else { return Ok(Reply::Int(0)) };
    let Some(pos) = l.iter().position(|e| e == argv[3]) else { return Ok(Reply::Int(-1)) };
    let Some(l) = db.get_mut(argv[1]).and_then(|v| v.as_list_mut()) else { return Ok(Reply::Int(0)) };
    l.insert(pos + after as usize, argv[4], fill);
    let n = l.len();
    ctx.notify(ev::LIST, "linsert", argv[1]);
    Ok(Reply::Int(n as i64))
}

fn lpos(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (mut rank, mut count, mut maxlen): (i64, Option<i64>, i64) = (1, None, 0);
    let mut i = 3;
    while i < argv.len() {
        let Some(v) = argv.get(i + 1) else { return Err(CmdError::Syntax) };
        if is(argv[i], "rank") {
            rank = parse_i64(v).ok_or(CmdError::NotInteger)?;
            if rank == 0 {
                return Err(CmdError::msg(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(argv[i], "count") {
            // Redis's getPositiveLongFromObjectOrReply: one message for negative and non-integer.
            let c = parse_i64(v).filter(|c| *c >= 0);
            count = Some(c.ok_or_else(|| CmdError::msg("COUNT can't be negative"))?);
        } else if is(argv[i], "maxlen") {
            let m = parse_i64(v).filter(|m| *m >= 0);
            maxlen = m.ok_or_else(|| CmdError::msg("MAXLEN can't be negative"))?;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let Some(l) = read::<ListValue>(ctx.db(), argv[1])? else {
        return Ok(if count.is_some() { Reply::Array(vec![]) } else { Reply::Null });
    };
    // As in Redis, a negative rank searches from the tail; -LONG_MIN wraps, which makes every
    // match qualify.
    let from_tail = rank < 0;
    if from_tail {
        rank = rank.wrapping_neg();
    }
    let len = l.len();
    let mut matches: i64 = 0;
    let mut out = Vec::new();
    let it: Box<dyn Iterator<Item = &[u8]>> =
        if from_tail { Box::new(l.iter_from(len.saturating_sub(1), true)) } else { Box::new(l.iter_from(0, false)) };
    for (index, e) in it.enumerate() {
        if maxlen != 0 && index as i64 >= maxlen {
            break;
        }
        if e == argv[2] {
            matches += 1;
            let pos = if from_tail { len - index - 1 } else { index };
            if matches >= rank {
                match count {
                    None => return Ok(Reply::Int(pos as i64)),
                    Some(c) => {
                        out.push(Reply::Int(pos as i64));
                        if c != 0 && matches - rank + 1 >= c {
                            break;
                        }
                    }
                }
            }
        }
    }
    Ok(if count.is_some() { Reply::Array(out) } else { Reply::Null })
}

fn parse_end(a: &[u8]) -> Result<End, CmdError> {
    if is(a, "left") {
        Ok(End::Left)
    } else if is(a, "right") {
        Ok(End::Right)
    } else {
        Err(CmdError::Syntax)
    }
}

/// The move at the heart of LMOVE/BLMOVE/RPOPLPUSH. None when the source is empty.
fn do_move(ctx: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End) -> Result<Option<Vec<u8>>, CmdError> {
    let fill = fill(ctx);
    let retrying = ctx.sess.serving.is_some();
    let db = ctx.db();
    let src_ok = match db.get(src) {
        None => return Ok(None),
        Some(v) => v.as_list().is_some(),
    };
    if !src_ok {
        return if retrying { Ok(None) } else { Err(CmdError::WrongType) };
    }
    if db.get(dst).is_some_and(|v| v.as_list().is_none()) {
        // Even a waiter being served gets the error (and is unblocked): Redis does the same,
        // leaving the element in the source.
        return Err(CmdError::WrongType);
    }
    let v = if src == dst {
        // Rotating in place: the list never empties, so the key (and its TTL) stays.
        let Some(l) = db.get_mut(src).and_then(|v| v.as_list_mut()) else { return Ok(None) };
        let Some(v) = l.pop(from) else { return Ok(None) };
        l.push(to, &v, fill);
        v
    } else {
        // Redis pushes before it pops (lmoveHandlePush, then the source's signal), so client
        // caches hear about the destination first: the element is copied, pushed, then popped.
        let Some(l) = db.get(src).and_then(|v| v.as_list()) else { return Ok(None) };
        let end = if matches!(from, End::Left) { l.iter().next() } else { l.iter().next_back() };
        let Some(v) = end.map(<[u8]>::to_vec) else { return Ok(None) };
        if !db.contains(dst) {
            db.set(dst, Value::List(Box::default()), false);
        }
        if let Some(l) = db.get_mut(dst).and_then(|v| v.as_list_mut()) {
            l.push(to, &v, fill);
        }
        modify::<ListValue, _>(db, src, |l| l.pop(from))?;
        v
    };
    ctx.notify(ev::LIST, push_event(to), dst);
    ctx.notify_emptying(ev::LIST, pop_event(from), src);
    Ok(Some(v))
}

fn lmove(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let from = parse_end(argv[3])?;
    let to = parse_end(argv[4])?;
    Ok(do_move(ctx, argv[1], argv[2], from, to)?.map_or(Reply::Null, |v| b(&v)))
}

fn rpoplpush(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(do_move(ctx, argv[1], argv[2], End::Right, End::Left)?.map_or(Reply::Null, |v| b(&v)))
}

fn bpop_generic(ctx: &mut Ctx, argv: &[&[u8]], end: End) -> CmdResult {
    let deadline = super::block_deadline(ctx.srv, argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    let retrying = ctx.sess.serving.is_some();
    for k in keys {
        if !ctx.sess.serves(k) {
            continue;
        }
        let db = ctx.db();
        match db.get(k) {
            None => continue,
            Some(v) if v.as_list().is_none() => {
                if retrying {
                    continue;
                }
                return Err(CmdError::WrongType);
            }
            Some(_) => {}
        }
        if let Some(v) = modify::<ListValue, _>(db, k, |l| l.pop(end))?.flatten() {
            ctx.notify_emptying(ev::LIST, pop_event(end), k);
            // Propagated as the pop it was (Redis 7.0): LPOP/RPOP key.
            let pop: &'static [u8] = if matches!(end, End::Left) { b"LPOP" } else { b"RPOP" };
            ctx.log_as(vec![Bytes::from_static(pop), Bytes::copy_from_slice(k)]);
            return Ok(Reply::Array(vec![Reply::Bulk(Bytes::copy_from_slice(k)), b(&v)]));
        }
    }
    super::block(ctx, argv, keys, deadline, Reply::NullArray, Reply::NullArray)
}

fn blpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    bpop_generic(ctx, argv, End::Left)
}
fn brpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    bpop_generic(ctx, argv, End::Right)
}

fn blmove(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let from = parse_end(argv[3])?;
    let to = parse_end(argv[4])?;
    let deadline = super::block_deadline(ctx.srv, argv[5])?;
    match do_move(ctx, argv[1], argv[2], from, to)? {
        Some(v) => {
            // Propagated without the timeout (Redis 7.0): LMOVE, with the directions as given,
            // or in lower case when a blocked client is served (Redis's shared words).
            let (wf, wt) = if ctx.sess.serving.is_some() {
                let name = |e: End| Bytes::from_static(if matches!(e, End::Left) { b"left" } else { b"right" });
                (name(from), name(to))
            } else {
                (Bytes::copy_from_slice(argv[3]), Bytes::copy_from_slice(argv[4]))
            };
            ctx.log_as(vec![
                Bytes::from_static(b"LMOVE"),
                Bytes::copy_from_slice(argv[1]),
                Bytes::copy_from_slice(argv[2]),
                wf,
                wt,
            ]);
            Ok(b(&v))
        }
        None => super::block(ctx, argv, &argv[1..2], deadline, Reply::Null, Reply::NullArray),
    }
}

fn brpoplpush(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let deadline = super::block_deadline(ctx.srv, argv[3])?;
    match do_move(ctx, argv[1], argv[2], End::Right, End::Left)? {
        Some(v) => {
            // Propagated without the timeout (Redis 7.0): RPOPLPUSH.
            ctx.log_as(vec![
                Bytes::from_static(b"RPOPLPUSH"),
                Bytes::copy_from_slice(argv[1]),
                Bytes::copy_from_slice(argv[2]),
            ]);
            Ok(b(&v))
        }
        None => super::block(ctx, argv, &argv[1..2], deadline, Reply::Null, Reply::NullArray),
    }
}

/// Parses `numkeys key... LEFT|RIGHT [COUNT n]` starting at `at`.
fn parse_mpop(argv: &[&[u8]], at: usize) -> Result<(Vec<Bytes>, End, usize), CmdError> {
    super::args::parse_mpop(argv, at, |a| parse_end(a).ok())
}

/// Pops up to `count` from the first non-empty list among `keys`.
fn mpop(ctx: &mut Ctx, keys: &[&[u8]], end: End, count: usize) -> Result<Option<Reply>, CmdError> {
    let retrying = ctx.sess.serving.is_some();
    for k in keys {
        if !ctx.sess.serves(k) {
            continue;
        }
        let db = ctx.db();
        match db.get(k) {
            None => continue,
            Some(v) if v.as_list().is_none() => {
                if retrying {
                    continue;
                }
                return Err(CmdError::WrongType);
            }
            Some(_) => {}
        }
        let popped =
            modify::<ListValue, _>(db, k, |l| (0..count).map_while(|_| l.pop(end)).map(|v| b(&v)).collect::<Vec<_>>())?;
        if let Some(items) = popped.filter(|v| !v.is_empty()) {
            ctx.notify_emptying(ev::LIST, pop_event(end), k);
            // Propagated as the pop it was (Redis 7.0): LPOP/RPOP key <how many it popped>.
            let pop: &'static [u8] = if matches!(end, End::Left) { b"LPOP" } else { b"RPOP" };
            ctx.log_as(vec![Bytes::from_static(pop), Bytes::copy_from_slice(k), Bytes::from(items.len().to_string())]);
            return Ok(Some(Reply::Array(vec![Reply::Bulk(Bytes::copy_from_slice(k)), Reply::Array(items)])));
        }
    }
    Ok(None)
}

fn lmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (keys, end, count) = parse_mpop(argv, 1)?;
    Ok(mpop(ctx, &crate::protocol::views(&keys), end, count)?.unwrap_or(Reply::NullArray))
}

fn blmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // Redis checks the timeout after the other arguments.
    let (keys, end, count) = parse_mpop(argv, 2)?;
    let deadline = super::block_deadline(ctx.srv, argv[1])?;
    match mpop(ctx, &crate::protocol::views(&keys), end, count)? {
        Some(r) => Ok(r),
        None => super::block(ctx, argv, &crate::protocol::views(&keys), deadline, Reply::NullArray, Reply::NullArray),
    }
}
