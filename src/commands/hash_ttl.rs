//! Hash-field expiration (Redis 7.4 and 8.0): HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT,
//! HTTL, HPTTL, HEXPIRETIME, HPEXPIRETIME, HPERSIST, HGETEX, HSETEX and HGETDEL.
//!
//! Deadlines are kept by the hash type (see `types::hash`); the keyspace removes due fields on
//! access and in the active cycle (`keyspace::db`). These handlers set and read deadlines with
//! Redis's per-field reply codes, and propagate the replay-safe forms Redis does: absolute
//! deadlines (HPEXPIREAT, HSETEX PXAT) and HDEL for fields a past deadline removed.

use bytes::Bytes;

use super::args::is;
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, KEY1};
use crate::keyspace::notify as ev;
use crate::protocol::Reply;
use crate::types::{HashValue, Value};
use crate::util::numfmt::parse_i64;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("hexpire", -6, hexpire).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc(
        "hash",
        "Set expiry for hash field using relative time to expire (seconds)",
        "7.4.0",
        "O(N) where N is the number of specified fields",
    ),
    CommandSpec::new("hpexpire", -6, hpexpire).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc(
        "hash",
        "Set expiry for hash field using relative time to expire (milliseconds)",
        "7.4.0",
        "O(N) where N is the number of specified fields",
    ),
    CommandSpec::new("hexpireat", -6, hexpireat).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc(
        "hash",
        "Set expiry for hash field using an absolute Unix timestamp (seconds)",
        "7.4.0",
        "O(N) where N is the number of specified fields",
    ),
    CommandSpec::new("hpexpireat", -6, hpexpireat).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc(
        "hash",
        "Set expiry for hash field using an absolute Unix timestamp (milliseconds)",
        "7.4.0",
        "O(N) where N is the number of specified fields",
    ),
    CommandSpec::new("httl", -5, httl).flags(READONLY | FAST).keys(KEY1).doc(
        "hash",
        "Returns the TTL in seconds of a hash field.",
        "7.4.0",
        "O(N) where N is the number of specified fields",
    ),
    CommandSpec::new("hpttl", -5, hpttl).flags(READONLY | FAST).keys(KEY1).doc(
        "hash",
        "Returns the TTL in milliseconds of a hash field.",
        "7.4.0",
        "O(N) where N is the number of specified fields",
    ),
    CommandSpec::new("hexpiretime", -5, hexpiretime).flags(READONLY | FAST).keys(KEY1).doc(
        "hash",
        "Returns the expiration time of a hash field as a Unix timestamp, in seconds.",
        "7.4.0",
        "O(N) where N is the number of specified fields",
    ),
    CommandSpec::new("hpexpiretime", -5, hpexpiretime).flags(READONLY | FAST).keys(KEY1).doc(
        "hash",
        "Returns the expiration time of a hash field as a Unix timestamp, in msec.",
        "7.4.0",
        "O(N) where N is the number of specified fields",
    ),
    CommandSpec::new("hpersist", -5, hpersist).flags(WRITE | FAST).keys(KEY1).doc(
        "hash",
        "Removes the expiration time for each specified field",
        "7.4.0",
        "O(N) where N is the number of specified fields",
    ),
    CommandSpec::new("hgetex", -5, hgetex).flags(WRITE | FAST).keys(KEY1).doc(
        "hash",
        "Get the value of one or more fields of a given hash key, and optionally set their expiration.",
        "8.0.0",
        "O(N) where N is the number of specified fields",
    ),
    CommandSpec::new("hsetex", -6, hsetex).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc(
        "hash",
        "Set the value of one or more fields of a given hash key, and optionally set their expiration.",
        "8.0.0",
        "O(N) where N is the number of fields being set.",
    ),
    CommandSpec::new("hgetdel", -5, hgetdel).flags(WRITE | FAST).keys(KEY1).doc(
        "hash",
        "Returns the value of a field and deletes it from the hash.",
        "8.0.0",
        "O(N) where N is the number of specified fields",
    ),
];

/// The latest deadline a field can have (Redis's HFE_MAX_ABS_TIME_MSEC: 2^46 - 1 ms).
const MAX_AT: i64 = (1 << 46) - 1;

const FIELDS_MISSING: &str = "Mandatory argument FIELDS is missing or not at the right position";
const FIELDS_MISMATCH: &str = "The `numfields` parameter must match the number of arguments";
const FIELDS_POSITIVE: &str = "Number of fields must be a positive integer";

/// Reply codes of the expiry setters (Redis's SetExRes).
const NO_FIELD: i64 = -2;
const NO_CONDITION: i64 = 0;
const SET: i64 = 1;
const DELETED: i64 = 2;

/// `FIELDS numfields field...` starting with the FIELDS keyword at `at`: the fields.
fn fields_at<'a>(argv: &'a [&'a [u8]], at: usize, count_err: &str) -> Result<&'a [&'a [u8]], CmdError> {
    if !argv.get(at).is_some_and(|a| is(a, "fields")) {
        return Err(CmdError::msg(FIELDS_MISSING));
    }
    let n = argv.get(at + 1).and_then(|a| parse_i64(a)).filter(|&n| n >= 1).ok_or_else(|| CmdError::msg(count_err))?;
    let fields = argv.get(at + 2..).unwrap_or(&[]);
    if n as u64 != fields.len() as u64 {
        return Err(CmdError::msg(FIELDS_MISMATCH));
    }
    Ok(fields)
}

/// An expiry argument as a Unix ms deadline (Redis's parseExpireTime): `base` is now for
/// relative forms and 0 for absolute ones.
fn deadline(arg: &[u8], seconds: bool, base: u64, name: &'static str) -> Result<u64, CmdError> {
    let mut v = parse_i64(arg).ok_or(CmdError::NotInteger)?;
    if v < 0 {
        return Err(CmdError::msg("invalid expire time, must be >= 0"));
    }
    if seconds {
        if v > MAX_AT / 1000 {
            return Err(CmdError::InvalidExpire(name));
        }
        v *= 1000;
    }
    if v > MAX_AT - base as i64 {
        return Err(CmdError::InvalidExpire(name));
    }
    Ok(v as u64 + base)
}

/// The hash at `key`, with fields whose deadline passed already gone; None if missing.
fn hash_of<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut HashValue>, CmdError> {
    let db = ctx.db();
    match db.peek(key) {
        None => return Ok(None),
        Some(e) if e.value.as_hash().is_none() => return Err(CmdError::WrongType),
        Some(_) => {}
    }
    Ok(db.get_mut_quiet(key).and_then(|v| v.as_hash_mut()))
}

/// What a write of field deadlines did, for events and propagation.
#[derive(Default)]
struct Outcome {
    /// Fields whose deadline was set (or cleared), to propagate.
    updated: Vec<Bytes>,
    /// Fields a past deadline removed (propagated as HDEL).
    deleted: Vec<Bytes>,
}

/// Events, change count, the key's removal if it emptied, and the HDEL part of the
/// propagation, after deadlines were written.
fn finish(ctx: &mut Ctx, key: &[u8], out: &Outcome, event: &'static str) {
    let n = out.updated.len() + out.deleted.len();
    if n == 0 {
        return;
    }
    let db = ctx.db();
    db.signal_changes(key, n);
    let empty = db.view(key).and_then(|v| v.as_hash()).is_none_or(|h| h.is_empty());
    if empty {
        db.remove(key);
    } else {
        db.hash_ttls_changed(key);
    }
    // One HDEL per field, as Redis propagates them.
    for f in &out.deleted {
        ctx.log_as(vec![Bytes::from_static(b"HDEL"), Bytes::copy_from_slice(key), f.clone()]);
    }
    ctx.notify(ev::HASH, if out.deleted.is_empty() { event } else { "hdel" }, key);
    if empty {
        ctx.notify(ev::GENERIC, "del", key);
    }
}

/// HPEXPIREAT key ms [NX|XX|GT|LT] FIELDS n field...: the propagated form of every deadline
/// write.
fn log_deadlines(ctx: &mut Ctx, key: &[u8], at: u64, cond: Option<&[u8]>, fields: &[impl AsRef<[u8]>]) {
    if fields.is_empty() {
        return;
    }
    let mut cmd = vec![Bytes::from_static(b"HPEXPIREAT"), Bytes::copy_from_slice(key), Bytes::from(at.to_string())];
    cmd.extend(cond.map(Bytes::copy_from_slice));
    cmd.extend([Bytes::from_static(b"FIELDS"), Bytes::from(fields.len().to_string())]);
    cmd.extend(fields.iter().map(|f| Bytes::copy_from_slice(f.as_ref())));
    ctx.log_as(cmd);
}

fn hexpire_generic(ctx: &mut Ctx, argv: &[&[u8]], seconds: bool, relative: bool, name: &'static str) -> CmdResult {
    let key = &argv[1];
    let exists = hash_of(ctx, key)?.is_some();
    let base = if relative { ctx.now_ms() } else { 0 };
    let at = deadline(argv[2], seconds, base, name)?;
    let cond = ["nx", "xx", "gt", "lt"].into_iter().find(|c| is(argv[3], c));
    let fields = fields_at(argv, if cond.is_some() { 4 } else { 3 }, "Parameter `numFields` should be greater than 0")?;
    if !exists {
        return Ok(Reply::Array(fields.iter().map(|_| Reply::Int(NO_FIELD)).collect()));
    }
    let past = ctx.already_expired(at as i64);
    let mut out = Outcome::default();
    let mut codes = Vec::with_capacity(fields.len());
    if let Some(h) = hash_of(ctx, key)? {
        codes.extend(fields.iter().map(|f| Reply::Int(set_deadline_at(h, f, at, cond, past, &mut out))));
    }
    ctx.log_only_explicit();
    finish(ctx, key, &out, "hexpire");
    log_deadlines(ctx, key, at, cond.map(|_| argv[3]), &out.updated);
    Ok(Reply::Array(codes))
}

/// Sets deadline `at` on `field` unless the NX/XX/GT/LT condition says otherwise; a deadline
/// already `past` removes the field (Redis's hashTypeSetEx). Returns the reply code.
fn set_deadline_at(h: &mut HashValue, field: &[u8], at: u64, cond: Option<&str>, past: bool, out: &mut Outcome) -> i64 {
    let Some((_, prev)) = h.get_with_ttl(field) else { return NO_FIELD };
    let blocked = match (prev, cond) {
        // A field without a deadline counts as "infinite" for GT and LT.
        (0, Some("xx" | "gt")) => true,
        (0, _) => false,
        (_, Some("nx")) => true,
        (p, Some("gt")) => p >= at,
        (p, Some("lt")) => p <= at,
        _ => false,
    };
    if blocked {
        return NO_CONDITION;
    }
    if past {
        h.remove(field);
        out.deleted.push(Bytes::copy_from_slice(field));
        return DELETED;
    }
    h.set_ttl(field, at);
    out.updated.push(Bytes::copy_from_slice(field));
    SET
}

fn hexpire(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    hexpire_generic(ctx, argv, true, true, "hexpire")
}

fn hpexpire(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    hexpire_generic(ctx, argv, false, true, "hpexpire")
}

fn hexpireat(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    hexpire_generic(ctx, argv, true, false, "hexpireat")
}

fn hpexpireat(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    hexpire_generic(ctx, argv, false, false, "hpexpireat")
}

/// HTTL and friends: -2 for a missing field, -1 for one without a deadline, else the
/// deadline, relative to now or absolute, in seconds (rounded up, as Redis does) or ms.
fn httl_generic(ctx: &mut Ctx, argv: &[&[u8]], seconds: bool, relative: bool) -> CmdResult {
    let now = ctx.now_ms();
    let h = match ctx.db().get(argv[1]) {
        None => None,
        Some(v) => Some(v.as_hash().ok_or(CmdError::WrongType)?),
    };
    let fields = fields_at(argv, 2, FIELDS_POSITIVE)?;
    let base = if relative { now } else { 0 };
    let ttl = |f: &[u8]| -> i64 {
        match h.and_then(|h| h.get_with_ttl(f)) {
            None => NO_FIELD,
            Some((_, 0)) => -1,
            Some((_, at)) if seconds => (at as i64 + 999 - base as i64) / 1000,
            Some((_, at)) => at as i64 - base as i64,
        }
    };
    Ok(Reply::Array(fields.iter().map(|f| Reply::Int(ttl(f))).collect()))
}

fn httl(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    httl_generic(ctx, argv, true, true)
}

fn hpttl(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    httl_generic(ctx, argv, false, true)
}

fn hexpiretime(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    httl_generic(ctx, argv, true, false)
}

fn hpexpiretime(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    httl_generic(ctx, argv, false, false)
}

/// HPERSIST: -2 missing field, -1 no deadline, 1 deadline removed.
fn hpersist(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let key = &argv[1];
    let h = hash_of(ctx, key)?;
    let fields = fields_at(argv, 2, FIELDS_POSITIVE)?;
    let Some(h) = h else {
        return Ok(Reply::Array(fields.iter().map(|_| Reply::Int(NO_FIELD)).collect()));
    };
    let mut changed = 0;
    let codes = fields
        .iter()
        .map(|f| {
            Reply::Int(match h.get_with_ttl(f) {
                None => NO_FIELD,
                Some((_, 0)) => -1,
                Some(_) => {
                    h.set_ttl(f, 0);
                    changed += 1;
                    1
                }
            })
        })
        .collect();
    if changed > 0 {
        ctx.db().signal_changes(key, changed);
        ctx.db().hash_ttls_changed(key);
        ctx.notify(ev::HASH, "hpersist", key);
    }
    Ok(Reply::Array(codes))
}

/// HGETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST] FIELDS n field...
fn hgetex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let key = &argv[1];
    let exists = hash_of(ctx, key)?.is_some();
    let opt = ["ex", "px", "exat", "pxat", "persist"].into_iter().find(|o| is(argv[2], o));
    let (at, fields_pos) = match opt {
        Some("persist") => (0, 3),
        Some(o) => {
            let base = if o.len() == 2 { ctx.now_ms() } else { 0 };
            let arg = argv.get(3).ok_or_else(|| CmdError::WrongArity("hgetex".into()))?;
            (deadline(arg, o.starts_with('e'), base, "hgetex")?, 4)
        }
        None => (0, 2),
    };
    let fields = fields_at(argv, fields_pos, FIELDS_POSITIVE)?;
    if !exists {
        return Ok(Reply::Array(fields.iter().map(|_| Reply::Null).collect()));
    }
    let past = opt.is_some_and(|o| o != "persist") && ctx.already_expired(at as i64);
    let mut out = Outcome::default();
    let mut values = Vec::with_capacity(fields.len());
    if let Some(h) = hash_of(ctx, key)? {
        for f in fields {
            let Some(v) = h.get(f) else {
                values.push(Reply::Null);
                continue;
            };
            values.push(Reply::Bulk(Bytes::copy_from_slice(v)));
            match opt {
                None => {}
                // Counted whether or not it had a deadline, as Redis does.
                Some("persist") => {
                    h.set_ttl(f, 0);
                    out.updated.push(Bytes::copy_from_slice(f));
                }
                Some(_) => {
                    set_deadline_at(h, f, at, None, past, &mut out);
                }
            }
        }
    }
    if out.updated.is_empty() && out.deleted.is_empty() {
        return Ok(Reply::Array(values));
    }
    ctx.log_only_explicit();
    let persist = opt == Some("persist");
    finish(ctx, key, &out, if persist { "hpersist" } else { "hexpire" });
    if persist {
        if !out.updated.is_empty() {
            let mut cmd = vec![
                Bytes::from_static(b"HPERSIST"),
                Bytes::copy_from_slice(key),
                Bytes::from_static(b"FIELDS"),
                Bytes::from(out.updated.len().to_string()),
            ];
            cmd.extend(out.updated.iter().cloned());
            ctx.log_as(cmd);
        }
    } else {
        log_deadlines(ctx, key, at, None, &out.updated);
    }
    Ok(Reply::Array(values))
}

/// HSETEX options, parsed before the key is looked at (as Redis does).
struct SetExArgs<'a> {
    fnx: bool,
    fxx: bool,
    /// EX/PX/EXAT/PXAT given: the deadline.
    at: Option<u64>,
    keep_ttl: bool,
    pairs: &'a [&'a [u8]],
}

fn parse_hsetex<'a>(ctx: &Ctx, argv: &'a [&'a [u8]]) -> Result<SetExArgs<'a>, CmdError> {
    let arity = || CmdError::WrongArity("hsetex".into());
    let mut a = SetExArgs { fnx: false, fxx: false, at: None, keep_ttl: false, pairs: &[] };
    let mut i = 2;
    while i < argv.len() {
        let arg = &argv[i];
        if is(arg, "fields") {
            if i + 3 >= argv.len() {
                return Err(arity());
            }
            let n = parse_i64(argv[i + 1])
                .filter(|n| (1..=i32::MAX as i64).contains(n))
                .ok_or_else(|| CmdError::msg("invalid number of fields"))?;
            let rest = &argv[i + 2..];
            if !rest.len().is_multiple_of(2) || n as usize != rest.len() / 2 {
                return Err(arity());
            }
            a.pairs = rest;
            return Ok(a);
        }
        let expiry = ["ex", "px", "exat", "pxat"].into_iter().find(|o| is(arg, o));
        if let Some(o) = expiry.or(is(arg, "keepttl").then_some("keepttl")) {
            if a.at.is_some() || a.keep_ttl {
                return Err(CmdError::msg("Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"));
            }
            if o == "keepttl" {
                a.keep_ttl = true;
            } else {
                let t = argv.get(i + 1).ok_or_else(|| CmdError::msg("missing expire time"))?;
                let base = if o.len() == 2 { ctx.now_ms() } else { 0 };
                a.at = Some(deadline(t, o.starts_with('e'), base, "hsetex")?);
                i += 1;
            }
        } else if is(arg, "fnx") || is(arg, "fxx") {
            if a.fnx || a.fxx {
                return Err(CmdError::msg("Only one of FXX or FNX arguments can be specified"));
            }
            a.fnx = is(arg, "fnx");
            a.fxx = !a.fnx;
        } else {
            return Err(CmdError::msg(format!("unknown argument: {}", String::from_utf8_lossy(arg))));
        }
        i += 1;
    }
    Err(arity())
}

/// HSETEX key [FNX | FXX] [EX | PX | EXAT | PXAT time | KEEPTTL] FIELDS n field value...:
/// 1 if the fields were set, 0 if FNX/FXX said no.
fn hsetex(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let key = &argv[1];
    let a = parse_hsetex(ctx, argv)?;
    let h = hash_of(ctx, key)?;
    if a.fnx || a.fxx {
        let fields = a.pairs.iter().step_by(2);
        let ok = match &h {
            None => a.fnx,
            Some(h) if a.fnx => fields.clone().all(|f| !h.contains(f)),
            Some(h) => fields.clone().all(|f| h.contains(f)),
        };
        if !ok {
            return Ok(Reply::Int(0));
        }
    }
    if h.is_none() {
        ctx.db().set(key, Value::Hash(HashValue::default()), false);
    }
    let limits = ctx.srv.hot.hash;
    let past = a.at.is_some_and(|at| ctx.already_expired(at as i64));
    let mut out = Outcome::default();
    if let Some(h) = hash_of(ctx, key)? {
        for p in a.pairs.chunks_exact(2) {
            if a.at.is_some() || a.keep_ttl {
                h.set_keep_ttl(p[0], p[1], limits);
            } else {
                h.set(p[0], p[1], limits);
            }
            if let Some(at) = a.at {
                set_deadline_at(h, p[0], at, None, past, &mut out);
            }
        }
    }
    let n = a.pairs.len() / 2;
    ctx.db().signal_changes(key, n);
    ctx.notify(ev::HASH, "hset", key);
    ctx.log_only_explicit();
    if out.deleted.is_empty() {
        // Propagated with an absolute deadline (Redis: EX/PX/EXAT become PXAT).
        let mut cmd = vec![Bytes::from_static(b"HSETEX"), Bytes::copy_from_slice(key)];
        if a.fnx || a.fxx {
            cmd.push(Bytes::from_static(if a.fnx { b"FNX" } else { b"FXX" }));
        }
        match a.at {
            Some(at) => cmd.extend([Bytes::from_static(b"PXAT"), Bytes::from(at.to_string())]),
            None if a.keep_ttl => cmd.push(Bytes::from_static(b"KEEPTTL")),
            None => {}
        }
        cmd.extend([Bytes::from_static(b"FIELDS"), Bytes::from(n.to_string())]);
        cmd.extend(a.pairs.iter().map(|p| Bytes::copy_from_slice(p)));
        ctx.log_as(cmd);
    }
    // The fields' own changes are counted above; `finish` adds the deadlines'.
    finish(ctx, key, &out, "hexpire");
    Ok(Reply::Int(1))
}

/// HGETDEL key FIELDS n field...: the values, and the fields are gone.
fn hgetdel(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let key = &argv[1];
    let h = hash_of(ctx, key)?;
    let fields = fields_at(argv, 2, FIELDS_POSITIVE)?;
    let mut values = Vec::with_capacity(fields.len());
    let mut deleted = Vec::new();
    match h {
        None => values.extend(fields.iter().map(|_| Reply::Null)),
        Some(h) => {
            for f in fields {
                match h.get(f) {
                    None => values.push(Reply::Null),
                    Some(v) => {
                        values.push(Reply::Bulk(Bytes::copy_from_slice(v)));
                        h.remove(f);
                        deleted.push(Bytes::copy_from_slice(f));
                    }
                }
            }
        }
    }
    if deleted.is_empty() {
        return Ok(Reply::Array(values));
    }
    let db = ctx.db();
    db.signal_changes(key, deleted.len());
    if db.view(key).and_then(|v| v.as_hash()).is_none_or(|h| h.is_empty()) {
        db.remove(key);
    }
    let mut hdel = vec![Bytes::from_static(b"HDEL"), Bytes::copy_from_slice(key)];
    hdel.extend(deleted);
    ctx.log_as(hdel);
    ctx.notify_emptying(ev::HASH, "hdel", key);
    Ok(Reply::Array(values))
}
