//! String family: the 22 string commands of Redis 7.0.

use bytes::Bytes;

use crate::keyspace::notify as ev;

use super::args::{int, is};
use super::flags::*;
use super::{ALL_KEYS, CmdError, CmdResult, CommandSpec, Ctx, KEY1, Keys};
use crate::keyspace::Db;
use crate::protocol::{OK, Reply};
use crate::types::{StrValue, Value};
use crate::util::longdouble::LongDouble;

const MSET_KEYS: Keys = Keys { first: 1, last: -1, step: 2 };
const KEYS_1_2: Keys = Keys { first: 1, last: 2, step: 1 };

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, get).flags(READONLY | FAST).keys(KEY1).doc("string", "Get the value of a key", "1.0.0", "O(1)"),
    CommandSpec::new("set", -3, set).flags(WRITE | DENYOOM).keys(KEY1).doc("string", "Set the string value of a key", "1.0.0", "O(1)"),
    CommandSpec::new("setnx", 3, setnx).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("string", "Set the value of a key, only if the key does not exist", "1.0.0", "O(1)"),
    CommandSpec::new("setex", 4, setex).flags(WRITE | DENYOOM).keys(KEY1).doc("string", "Set the value and expiration of a key", "2.0.0", "O(1)"),
    CommandSpec::new("psetex", 4, psetex).flags(WRITE | DENYOOM).keys(KEY1).doc("string", "Set the value and expiration in milliseconds of a key", "2.6.0", "O(1)"),
    CommandSpec::new("getset", 3, getset).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("string", "Set the string value of a key and return its old value", "1.0.0", "O(1)"),
    CommandSpec::new("getdel", 2, getdel).flags(WRITE | FAST).keys(KEY1).doc("string", "Get the value of a key and delete the key", "6.2.0", "O(1)"),
    CommandSpec::new("getex", -2, getex).flags(WRITE | FAST).keys(KEY1).doc("string", "Get the value of a key and optionally set its expiration", "6.2.0", "O(1)"),
    CommandSpec::new("mget", -2, mget).flags(READONLY | FAST).keys(ALL_KEYS).doc("string", "Get the values of all the given keys", "1.0.0", "O(N) where N is the number of keys to retrieve."),
    CommandSpec::new("mset", -3, mset).flags(WRITE | DENYOOM).keys(MSET_KEYS).doc("string", "Set multiple keys to multiple values", "1.0.1", "O(N) where N is the number of keys to set."),
    CommandSpec::new("msetnx", -3, msetnx).flags(WRITE | DENYOOM).keys(MSET_KEYS).doc("string", "Set multiple keys to multiple values, only if none of the keys exist", "1.0.1", "O(N) where N is the number of keys to set."),
    CommandSpec::new("append", 3, append).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("string", "Append a value to a key", "2.0.0", "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation."),
    CommandSpec::new("strlen", 2, strlen).flags(READONLY | FAST).keys(KEY1).doc("string", "Get the length of the value stored in a key", "2.2.0", "O(1)"),
    CommandSpec::new("getrange", 4, getrange).flags(READONLY).keys(KEY1).doc("string", "Get a substring of the string stored at a key", "2.4.0", "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings."),
    CommandSpec::new("substr", 4, getrange).flags(READONLY).keys(KEY1).doc("string", "Get a substring of the string stored at a key", "1.0.0", "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings."),
    CommandSpec::new("setrange", 4, setrange).flags(WRITE | DENYOOM).keys(KEY1).doc("string", "Overwrite part of a string at key starting at the specified offset", "2.2.0", "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument."),
    CommandSpec::new("incr", 2, incr).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("string", "Increment the integer value of a key by one", "1.0.0", "O(1)"),
    CommandSpec::new("decr", 2, decr).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("string", "Decrement the integer value of a key by one", "1.0.0", "O(1)"),
    CommandSpec::new("incrby", 3, incrby).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("string", "Increment the integer value of a key by the given amount", "1.0.0", "O(1)"),
    CommandSpec::new("decrby", 3, decrby).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("string", "Decrement the integer value of a key by the given number", "1.0.0", "O(1)"),
    CommandSpec::new("incrbyfloat", 3, incrbyfloat).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("string", "Increment the float value of a key by the given amount", "2.6.0", "O(1)"),
    CommandSpec::new("lcs", -3, lcs).flags(READONLY).keys(KEYS_1_2).doc("string", "Find longest common substring", "7.0.0", "O(N*M) where N and M are the lengths of s1 and s2, respectively"),
];

/// The string at `key`: None if missing, WRONGTYPE if another type.
pub(super) fn get_str<'a>(db: &'a mut Db, key: &[u8]) -> Result<Option<&'a StrValue>, CmdError> {
    match db.get(key) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        #[allow(unreachable_patterns)]
        Some(_) => Err(CmdError::WrongType),
    }
}

fn check_len(ctx: &Ctx, total: u64) -> Result<(), CmdError> {
    if total > max_string_len(ctx) {
        return Err(CmdError::StringTooLong);
    }
    Ok(())
}

/// The longest string a command may make: proto-max-bulk-len, except for what the master's
/// stream or the AOF replays (Redis skips the check for them: a replica configured lower
/// than its master must not drop a write), which keeps a hard bound of 4 GiB.
pub(super) fn max_string_len(ctx: &Ctx) -> u64 {
    if ctx.sess.must_obey() { u64::from(u32::MAX) } else { ctx.srv.hot.max_bulk_len as u64 }
}

fn get(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(Reply::from_opt(get_str(ctx.db(), argv[1])?.map(|s| s.to_bytes())))
}

/// Expiry options shared by SET and GETEX.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Ttl {
    None,
    Keep,
    Persist,
    /// Absolute deadline in ms.
    At(i64),
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum TtlKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// Resolves an EX/PX/EXAT/PXAT argument to an absolute deadline with Redis's checks.
pub(super) fn deadline(ctx: &Ctx, arg: &[u8], kind: TtlKind, name: &'static str) -> Result<i64, CmdError> {
    let v = int(arg)?;
    let secs = matches!(kind, TtlKind::Ex | TtlKind::ExAt);
    if v <= 0 || (secs && v > i64::MAX / 1000) {
        return Err(CmdError::InvalidExpire(name));
    }
    let mut ms = if secs { v * 1000 } else { v };
    if matches!(kind, TtlKind::Ex | TtlKind::Px) {
        ms = ms.checked_add(ctx.now_ms() as i64).ok_or(CmdError::InvalidExpire(name))?;
    }
    Ok(ms)
}

pub(super) struct SetOpts {
    pub nx: bool,
    pub xx: bool,
    pub get: bool,
    pub ttl: Ttl,
}

/// Parses SET (is_set) or GETEX options with the exclusivity rules of Redis 7.0.
fn parse_set_opts(
    ctx: &Ctx,
    argv: &[&[u8]],
    start: usize,
    is_set: bool,
    name: &'static str,
) -> Result<SetOpts, CmdError> {
    let mut o = SetOpts { nx: false, xx: false, get: false, ttl: Ttl::None };
    let mut kind: Option<TtlKind> = None;
    let mut ttl_arg: Option<&[u8]> = None;
    let mut keep = false;
    let mut persist = false;
    let mut j = start;
    while j < argv.len() {
        let a = &argv[j];
        let next = argv.get(j + 1);
        let other_ttl = |k: TtlKind| kind.is_some_and(|x| x != k);
        if is_set && is(a, "nx") && !o.xx {
            o.nx = true;
        } else if is_set && is(a, "xx") && !o.nx {
            o.xx = true;
        } else if is_set && is(a, "get") {
            o.get = true;
        } else if is_set && is(a, "keepttl") && !persist && kind.is_none() {
            keep = true;
        } else if !is_set && is(a, "persist") && kind.is_none() && !keep {
            persist = true;
        } else if let (Some(k), Some(n)) = (ttl_keyword(a), next) {
            if keep || persist || other_ttl(k) {
                return Err(CmdError::Syntax);
            }
            kind = Some(k);
            ttl_arg = Some(n);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if let (Some(k), Some(arg)) = (kind, ttl_arg) {
        o.ttl = Ttl::At(deadline(ctx, arg, k, name)?);
    } else if keep {
        o.ttl = Ttl::Keep;
    } else if persist {
        o.ttl = Ttl::Persist;
    }
    Ok(o)
}

pub(super) fn ttl_keyword(a: &[u8]) -> Option<TtlKind> {
    if is(a, "ex") {
        Some(TtlKind::Ex)
    } else if is(a, "px") {
        Some(TtlKind::Px)
    } else if is(a, "exat") {
        Some(TtlKind::ExAt)
    } else if is(a, "pxat") {
        Some(TtlKind::PxAt)
    } else {
        None
    }
}

/// The common core of SET, SETNX, SETEX, PSETEX: returns whether the key was written.
pub(super) fn set_generic(
    ctx: &mut Ctx,
    key: &[u8],
    val: &[u8],
    o: &SetOpts,
) -> Result<(bool, Option<Reply>), CmdError> {
    let db = ctx.db();
    let old = if o.get { Some(Reply::from_opt(get_str(db, key)?.map(|s| s.to_bytes()))) } else { None };
    if o.nx || o.xx {
        let found = db.contains(key);
        if (o.nx && found) || (o.xx && !found) {
            return Ok((false, old));
        }
    }
    db.set(key, Value::Str(StrValue::from_bytes(val)), o.ttl == Ttl::Keep);
    if let Ttl::At(at) = o.ttl {
        db.set_expire(key, Some(at.max(0) as u64));
    }
    ctx.notify(ev::STRING, "set", key);
    if let Ttl::At(at) = o.ttl {
        ctx.notify(ev::GENERIC, "expire", key);
        // Propagated with its deadline as an absolute time (Redis 7.0: SET key value PXAT ms),
        // so a replica or a replay expires the key at the same instant.
        ctx.log_as(vec![
            Bytes::from_static(b"SET"),
            Bytes::copy_from_slice(key),
            Bytes::copy_from_slice(val),
            Bytes::from_static(b"PXAT"),
            Bytes::from(at.to_string()),
        ]);
    }
    Ok((true, old))
}

fn set(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let o = parse_set_opts(ctx, argv, 3, true, "set")?;
    let (written, old) = set_generic(ctx, argv[1], argv[2], &o)?;
    // Propagated without GET (Redis 7.0), unless a deadline already rewrote it.
    if written && o.get && !matches!(o.ttl, Ttl::At(_)) {
        let kept = argv.iter().enumerate().filter(|(i, a)| *i < 3 || !a.eq_ignore_ascii_case(b"get"));
        ctx.log_as(kept.map(|(_, a)| Bytes::copy_from_slice(a)).collect());
    }
    Ok(match old {
        Some(r) => r,
        None if written => OK,
        None => Reply::Null,
    })
}

fn setnx(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let o = SetOpts { nx: true, xx: false, get: false, ttl: Ttl::None };
    let (written, _) = set_generic(ctx, argv[1], argv[2], &o)?;
    Ok(Reply::Int(written as i64))
}

fn setex_generic(ctx: &mut Ctx, argv: &[&[u8]], kind: TtlKind, name: &'static str) -> CmdResult {
    let at = deadline(ctx, argv[2], kind, name)?;
    let o = SetOpts { nx: false, xx: false, get: false, ttl: Ttl::At(at) };
    set_generic(ctx, argv[1], argv[3], &o)?;
    Ok(OK)
}

fn setex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    setex_generic(ctx, argv, TtlKind::Ex, "setex")
}

fn psetex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    setex_generic(ctx, argv, TtlKind::Px, "psetex")
}

fn getset(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let o = SetOpts { nx: false, xx: false, get: true, ttl: Ttl::None };
    let (_, old) = set_generic(ctx, argv[1], argv[2], &o)?;
    // Propagated as SET (Redis 7.0).
    ctx.log_as(vec![Bytes::from_static(b"SET"), Bytes::copy_from_slice(argv[1]), Bytes::copy_from_slice(argv[2])]);
    Ok(old.unwrap_or(Reply::Null))
}

fn getdel(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let Some(v) = get_str(db, argv[1])?.map(|s| s.to_bytes()) else {
        return Ok(Reply::Null);
    };
    db.remove(argv[1]);
    ctx.notify(ev::GENERIC, "del", argv[1]);
    // Propagated as what it did (Redis 7.0): a replica need not read the value.
    ctx.log_as(vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(argv[1])]);
    Ok(Reply::Bulk(v))
}

fn getex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let o = match parse_set_opts(ctx, argv, 2, false, "getex") {
        Ok(o) => o,
        // Redis checks the expire time only once it has found the string.
        Err(e @ CmdError::Syntax) => return Err(e),
        Err(e) => return if get_str(ctx.db(), argv[1])?.is_none() { Ok(Reply::Null) } else { Err(e) },
    };
    let past = matches!(o.ttl, Ttl::At(at) if ctx.already_expired(at));
    let db = ctx.db();
    let Some(v) = get_str(db, argv[1])?.map(|s| s.to_bytes()) else {
        return Ok(Reply::Null);
    };
    let event = match o.ttl {
        Ttl::At(_) if past => {
            db.remove(argv[1]);
            "del"
        }
        Ttl::At(at) => {
            db.set_expire(argv[1], Some(at as u64));
            "expire"
        }
        Ttl::Persist => {
            if !matches!(db.expire_of(argv[1]), Some(Some(_))) {
                return Ok(Reply::Bulk(v));
            }
            db.set_expire(argv[1], None);
            "persist"
        }
        Ttl::None | Ttl::Keep => return Ok(Reply::Bulk(v)),
    };
    ctx.notify(ev::GENERIC, event, argv[1]);
    // Propagated as its effect: DEL, PERSIST, or PEXPIREAT with the absolute deadline.
    match event {
        "del" => ctx.log_as(vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(argv[1])]),
        "persist" => ctx.log_as(vec![Bytes::from_static(b"PERSIST"), Bytes::copy_from_slice(argv[1])]),
        _ => {
            if let Ttl::At(at) = o.ttl {
                ctx.log_as(vec![
                    Bytes::from_static(b"PEXPIREAT"),
                    Bytes::copy_from_slice(argv[1]),
                    Bytes::from(at.to_string()),
                ]);
            }
        }
    }
    Ok(Reply::Bulk(v))
}

fn mget(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let out = argv[1..]
        .iter()
        .map(|k| match db.get(k) {
            Some(Value::Str(s)) => Reply::Bulk(s.to_bytes()),
            #[allow(unreachable_patterns)]
            _ => Reply::Null,
        })
        .collect();
    Ok(Reply::Array(out))
}

fn mset_check(argv: &[&[u8]], name: &str) -> Result<(), CmdError> {
    if argv.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity(name.into()));
    }
    Ok(())
}

fn mset(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    mset_check(argv, "mset")?;
    for kv in argv[1..].chunks(2) {
        ctx.db().set(kv[0], Value::Str(StrValue::from_bytes(kv[1])), false);
        ctx.notify(ev::STRING, "set", kv[0]);
    }
    Ok(OK)
}

fn msetnx(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    mset_check(argv, "msetnx")?;
    let db = ctx.db();
    if argv[1..].chunks(2).any(|kv| db.contains(kv[0])) {
        return Ok(Reply::Int(0));
    }
    for kv in argv[1..].chunks(2) {
        ctx.db().set(kv[0], Value::Str(StrValue::from_bytes(kv[1])), false);
        ctx.notify(ev::STRING, "set", kv[0]);
    }
    Ok(Reply::Int(1))
}

fn append(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let cur_len = get_str(ctx.db(), argv[1])?.map(|s| s.len());
    let Some(cur_len) = cur_len else {
        ctx.db().set(argv[1], Value::Str(StrValue::from_bytes(argv[2])), false);
        ctx.notify(ev::STRING, "append", argv[1]);
        return Ok(Reply::Int(argv[2].len() as i64));
    };
    check_len(ctx, (cur_len + argv[2].len()) as u64)?;
    let Some(Value::Str(s)) = ctx.db().get_mut(argv[1]) else {
        return Err(CmdError::WrongType);
    };
    let mut buf = s.begin_edit();
    buf.extend_from_slice(argv[2]);
    let n = buf.len();
    s.finish_edit(buf);
    ctx.notify(ev::STRING, "append", argv[1]);
    Ok(Reply::Int(n as i64))
}

fn strlen(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(get_str(ctx.db(), argv[1])?.map_or(0, |s| s.len()) as i64))
}

fn getrange(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut start = int(argv[2])?;
    let mut end = int(argv[3])?;
    let Some(s) = get_str(ctx.db(), argv[1])? else {
        return Ok(Reply::Bulk(Bytes::new()));
    };
    let bytes = s.to_bytes();
    let len = bytes.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Ok(Reply::Bulk(Bytes::new()));
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Ok(Reply::Bulk(Bytes::new()));
    }
    Ok(Reply::Bulk(bytes.slice(start as usize..=end as usize)))
}

fn setrange(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let offset = int(argv[2])?;
    if offset < 0 {
        return Err(CmdError::msg("offset is out of range"));
    }
    let offset = offset as u64;
    let val = &argv[3];
    let cur_len = get_str(ctx.db(), argv[1])?.map(|s| s.len());
    match cur_len {
        None if val.is_empty() => return Ok(Reply::Int(0)),
        Some(l) if val.is_empty() => return Ok(Reply::Int(l as i64)),
        _ => {}
    }
    check_len(ctx, offset + val.len() as u64)?;
    let offset = offset as usize;
    if cur_len.is_none() {
        ctx.db().set(argv[1], Value::Str(StrValue::Raw(Box::default())), false);
    }
    let Some(Value::Str(s)) = ctx.db().get_mut(argv[1]) else {
        return Err(CmdError::WrongType);
    };
    let mut buf = s.begin_edit();
    if buf.len() < offset + val.len() {
        buf.resize(offset + val.len(), 0);
    }
    buf[offset..offset + val.len()].copy_from_slice(val);
    let n = buf.len();
    s.finish_edit(buf);
    ctx.notify(ev::STRING, "setrange", argv[1]);
    Ok(Reply::Int(n as i64))
}

fn incr_generic(ctx: &mut Ctx, key: &[u8], by: i64) -> CmdResult {
    let db = ctx.db();
    // One lookup: the value is replaced where it is (its TTL stays), and only a successful
    // increment counts as a change.
    let n = match db.get_mut_quiet(key) {
        Some(Value::Str(s)) => {
            let n = s.as_int().ok_or(CmdError::NotInteger)?.checked_add(by).ok_or(CmdError::Overflow)?;
            *s = StrValue::Int(n);
            db.signal_modified(key);
            n
        }
        Some(_) => return Err(CmdError::WrongType),
        None => {
            db.set(key, Value::Str(StrValue::Int(by)), true);
            by
        }
    };
    ctx.notify(ev::STRING, "incrby", key);
    Ok(Reply::Int(n))
}

fn incr(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    incr_generic(ctx, argv[1], 1)
}

fn decr(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    incr_generic(ctx, argv[1], -1)
}

fn incrby(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let by = int(argv[2])?;
    incr_generic(ctx, argv[1], by)
}

fn decrby(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let by = int(argv[2])?;
    if by == i64::MIN {
        return Err(CmdError::msg("decrement would overflow"));
    }
    incr_generic(ctx, argv[1], -by)
}

fn incrbyfloat(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let cur = match get_str(db, argv[1])? {
        None => LongDouble::Finite { neg: false, m: 0, exp: 0 },
        Some(s) => s.with_bytes(LongDouble::parse).ok_or(CmdError::NotFloat)?,
    };
    let by = LongDouble::parse(argv[2]).ok_or(CmdError::NotFloat)?;
    let v = cur.sum(by);
    if !v.is_finite() {
        return Err(CmdError::msg("increment would produce NaN or Infinity"));
    }
    let s = v.to_human();
    db.set(argv[1], Value::Str(StrValue::from_computed(s.clone().into_bytes())), true);
    ctx.notify(ev::STRING, "incrbyfloat", argv[1]);
    // Propagated as the value it produced, so float formatting never differs on replay.
    ctx.log_as(vec![
        Bytes::from_static(b"SET"),
        Bytes::copy_from_slice(argv[1]),
        Bytes::from(s.clone()),
        Bytes::from_static(b"KEEPTTL"),
    ]);
    Ok(Reply::Bulk(Bytes::from(s)))
}

fn lcs(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let mut fetch = |k: &[u8]| -> Result<Bytes, CmdError> {
        match db.get(k) {
            None => Ok(Bytes::new()),
            Some(Value::Str(s)) => Ok(s.to_bytes()),
            #[allow(unreachable_patterns)]
            Some(_) => Err(CmdError::msg("The specified keys must contain string values")),
        }
    };
    let a = fetch(argv[1])?;
    let b = fetch(argv[2])?;
    let (mut getidx, mut getlen, mut withmatchlen, mut minmatchlen) = (false, false, false, 0i64);
    let mut j = 3;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        if is(argv[j], "idx") {
            getidx = true;
        } else if is(argv[j], "len") {
            getlen = true;
        } else if is(argv[j], "withmatchlen") {
            withmatchlen = true;
        } else if is(argv[j], "minmatchlen") && more {
            minmatchlen = int(argv[j + 1])?.max(0);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if getlen && getidx {
        return Err(CmdError::msg("If you want both the length and indexes, please just use IDX."));
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells.saturating_mul(4) > ctx.srv.hot.max_bulk_len as u64 {
        return Err(CmdError::msg("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"));
    }
    let w = blen + 1;
    let mut t = vec![0u32; cells as usize];
    for i in 1..=alen {
        for jj in 1..=blen {
            t[i * w + jj] = if a[i - 1] == b[jj - 1] {
                t[(i - 1) * w + jj - 1] + 1
            } else {
                t[(i - 1) * w + jj].max(t[i * w + jj - 1])
            };
        }
    }
    let total = t[alen * w + blen];
    if getlen {
        return Ok(Reply::Int(total as i64));
    }
    // Walk back from the end like Redis, collecting the LCS and (for IDX) the matching ranges.
    let mut result = vec![0u8; total as usize];
    let mut idx = total as usize;
    let mut matches = Vec::new();
    let (mut ar_start, mut ar_end, mut br_start, mut br_end) = (alen, 0usize, 0usize, 0usize);
    let (mut i, mut jj) = (alen, blen);
    while i > 0 && jj > 0 {
        let mut emit = false;
        if a[i - 1] == b[jj - 1] {
            result[idx - 1] = a[i - 1];
            if ar_start == alen {
                ar_start = i - 1;
                ar_end = i - 1;
                br_start = jj - 1;
                br_end = jj - 1;
            } else if ar_start == i && br_start == jj {
                ar_start -= 1;
                br_start -= 1;
            } else {
                emit = true;
            }
            if ar_start == 0 || br_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            jj -= 1;
        } else {
            if t[(i - 1) * w + jj] > t[i * w + jj - 1] {
                i -= 1;
            } else {
                jj -= 1;
            }
            if ar_start != alen {
                emit = true;
            }
        }
        let match_len = ar_end as i64 - ar_start as i64 + 1;
        if emit {
            if getidx && (minmatchlen == 0 || match_len >= minmatchlen) {
                let mut m = vec![
                    Reply::Array(vec![Reply::Int(ar_start as i64), Reply::Int(ar_end as i64)]),
                    Reply::Array(vec![Reply::Int(br_start as i64), Reply::Int(br_end as i64)]),
                ];
                if withmatchlen {
                    m.push(Reply::Int(match_len));
                }
                matches.push(Reply::Array(m));
            }
            ar_start = alen;
        }
    }
    if getidx {
        return Ok(Reply::Map(vec![
            (Reply::bulk_str("matches"), Reply::Array(matches)),
            (Reply::bulk_str("len"), Reply::Int(total as i64)),
        ]));
    }
    Ok(Reply::Bulk(Bytes::from(result)))
}
