//! Generic (keyspace) family: commands that work on keys of any type.

use crate::keyspace::notify as ev;
use bytes::Bytes;

use super::args::{Conditions, int, is, lossy, parse_cursor, parse_scan_opts};
use super::flags::*;
use super::{ALL_KEYS, CmdError, CmdResult, CommandSpec, Ctx, KEY1, Keys, container, help_reply};
use crate::keyspace::Db;
use crate::protocol::{OK, Reply};
use crate::types::Value;
use crate::util::glob::glob_match;
use crate::util::numfmt::parse_i64;

const KEYS_1_2: Keys = Keys { first: 1, last: 2, step: 1 };
const OBJ_KEY: Keys = Keys { first: 2, last: 2, step: 1 };

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, del).flags(WRITE).keys(ALL_KEYS).doc("generic", "Delete a key", "1.0.0", "O(N) where N is the number of keys that will be removed."),
    CommandSpec::new("unlink", -2, unlink).flags(WRITE | FAST).keys(ALL_KEYS).doc("generic", "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.", "4.0.0", "O(1) for each key removed regardless of its size."),
    CommandSpec::new("exists", -2, exists).flags(READONLY | FAST).keys(ALL_KEYS).doc("generic", "Determine if a key exists", "1.0.0", "O(N) where N is the number of keys to check."),
    CommandSpec::new("type", 2, type_cmd).flags(READONLY | FAST).keys(KEY1).doc("generic", "Determine the type stored at key", "1.0.0", "O(1)"),
    CommandSpec::new("keys", 2, keys).flags(READONLY).doc("generic", "Find all keys matching the given pattern", "1.0.0", "O(N) with N being the number of keys in the database"),
    CommandSpec::new("scan", -2, scan).flags(READONLY).doc("generic", "Incrementally iterate the keys space", "2.8.0", "O(1) for every call. O(N) for a complete iteration."),
    CommandSpec::new("randomkey", 1, randomkey).flags(READONLY).doc("generic", "Return a random key from the keyspace", "1.0.0", "O(1)"),
    CommandSpec::new("rename", 3, rename).flags(WRITE).keys(KEYS_1_2).doc("generic", "Rename a key", "1.0.0", "O(1)"),
    CommandSpec::new("renamenx", 3, renamenx).flags(WRITE | FAST).keys(KEYS_1_2).doc("generic", "Rename a key, only if the new key does not exist", "1.0.0", "O(1)"),
    CommandSpec::new("move", 3, move_cmd).flags(WRITE | FAST).keys(KEY1).doc("generic", "Move a key to another database", "1.0.0", "O(1)"),
    CommandSpec::new("dump", 2, dump).flags(READONLY).keys(KEY1).doc("generic", "Return a serialized version of the value stored at the specified key.", "2.6.0", "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1)."),
    CommandSpec::new("restore", -4, restore).flags(WRITE | DENYOOM).keys(KEY1).doc("generic", "Create a key using the provided serialized value, previously obtained using DUMP.", "2.6.0", "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N))."),
    CommandSpec::new("restore-asking", -4, restore).flags(WRITE | DENYOOM | ASKING).keys(KEY1).doc("server", "An internal command for migrating keys in a cluster", "3.0.0", "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N))."),
    CommandSpec::new("copy", -3, copy).flags(WRITE | DENYOOM).keys(KEYS_1_2).doc("generic", "Copy a key", "6.2.0", "O(N) worst case for collections, where N is the number of nested items. O(1) for string values."),
    CommandSpec::new("touch", -2, touch).flags(READONLY | FAST).keys(ALL_KEYS).doc("generic", "Alters the last access time of a key(s). Returns the number of existing keys specified.", "3.2.1", "O(N) where N is the number of keys that will be touched."),
    CommandSpec::new("expire", -3, expire).flags(WRITE | FAST).keys(KEY1).doc("generic", "Set a key's time to live in seconds", "1.0.0", "O(1)"),
    CommandSpec::new("pexpire", -3, pexpire).flags(WRITE | FAST).keys(KEY1).doc("generic", "Set a key's time to live in milliseconds", "2.6.0", "O(1)"),
    CommandSpec::new("expireat", -3, expireat).flags(WRITE | FAST).keys(KEY1).doc("generic", "Set the expiration for a key as a UNIX timestamp", "1.2.0", "O(1)"),
    CommandSpec::new("pexpireat", -3, pexpireat).flags(WRITE | FAST).keys(KEY1).doc("generic", "Set the expiration for a key as a UNIX timestamp specified in milliseconds", "2.6.0", "O(1)"),
    CommandSpec::new("ttl", 2, ttl).flags(READONLY | FAST).keys(KEY1).doc("generic", "Get the time to live for a key in seconds", "1.0.0", "O(1)"),
    CommandSpec::new("pttl", 2, pttl).flags(READONLY | FAST).keys(KEY1).doc("generic", "Get the time to live for a key in milliseconds", "2.6.0", "O(1)"),
    CommandSpec::new("expiretime", 2, expiretime).flags(READONLY | FAST).keys(KEY1).doc("generic", "Get the expiration Unix timestamp for a key", "7.0.0", "O(1)"),
    CommandSpec::new("pexpiretime", 2, pexpiretime).flags(READONLY | FAST).keys(KEY1).doc("generic", "Get the expiration Unix timestamp for a key in milliseconds", "7.0.0", "O(1)"),
    CommandSpec::new("persist", 2, persist).flags(WRITE | FAST).keys(KEY1).doc("generic", "Remove the expiration from a key", "2.2.0", "O(1)"),
    CommandSpec::new("dbsize", 1, dbsize).flags(READONLY | FAST).doc("server", "Return the number of keys in the selected database", "1.0.0", "O(1)"),
    CommandSpec::new("flushdb", -1, flushdb).flags(WRITE).doc("server", "Remove all keys from the current database", "1.0.0", "O(N) where N is the number of keys in the selected database"),
    CommandSpec::new("flushall", -1, flushall).flags(WRITE).doc("server", "Remove all keys from all databases", "1.0.0", "O(N) where N is the total number of keys in all databases"),
    CommandSpec::new("swapdb", 3, swapdb).flags(WRITE | FAST).doc("server", "Swaps two Redis databases", "4.0.0", "O(N) where N is the count of clients watching or blocking on keys from both databases."),
    CommandSpec::new("object", -2, container).doc("generic", "A container for object introspection commands", "2.2.3", "Depends on subcommand.").subcommands(OBJECT_SUBCOMMANDS),
];

static OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("encoding", 3, object_encoding).flags(READONLY).keys(OBJ_KEY).doc(
        "generic",
        "Inspect the internal encoding of a Redis object",
        "2.2.3",
        "O(1)",
    ),
    CommandSpec::new("refcount", 3, object_refcount).flags(READONLY).keys(OBJ_KEY).doc(
        "generic",
        "Get the number of references to the value of the key",
        "2.2.3",
        "O(1)",
    ),
    CommandSpec::new("idletime", 3, object_idletime).flags(READONLY).keys(OBJ_KEY).doc(
        "generic",
        "Get the time since a Redis object was last accessed",
        "2.2.3",
        "O(1)",
    ),
    CommandSpec::new("freq", 3, object_freq).flags(READONLY).keys(OBJ_KEY).doc(
        "generic",
        "Get the logarithmic access frequency counter of a Redis object",
        "4.0.0",
        "O(1)",
    ),
    CommandSpec::new("help", 2, object_help).flags(LOADING | STALE).doc(
        "generic",
        "Show helpful text about the different subcommands",
        "6.2.0",
        "O(1)",
    ),
];

fn del(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let lazy = ctx.srv.config.bool("lazyfree-lazy-user-del");
    delete(ctx, argv, lazy)
}

/// UNLINK: DEL whose big values are freed on the lazy free thread.
fn unlink(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    delete(ctx, argv, true)
}

fn delete(ctx: &mut Ctx, argv: &[&[u8]], lazy: bool) -> CmdResult {
    let mut n = 0;
    for k in &argv[1..] {
        // A DEL invalidates a lease on the key (missing or not): the holder may be filling it
        // from data older than whatever the DEL followed. Its waiters wake up, and the first
        // takes a new lease.
        let db = ctx.sess.db;
        if !ctx.srv.leases.is_empty() && ctx.srv.leases.forget(db, k) {
            ctx.db().signal_ready(k);
        }
        if let Some(v) = ctx.db().remove(k) {
            n += 1;
            ctx.notify(ev::GENERIC, "del", k);
            if lazy {
                ctx.srv.lazyfree.free_value(v);
            }
        }
    }
    Ok(Reply::Int(n as i64))
}

fn exists(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    Ok(Reply::Int(argv[1..].iter().filter(|k| db.get_notouch(k).is_some()).count() as i64))
}

fn touch(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    Ok(Reply::Int(argv[1..].iter().filter(|k| db.get(k).is_some()).count() as i64))
}

fn type_cmd(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(Reply::Status(ctx.db().get_notouch(argv[1]).map_or("none", |v| v.type_name())))
}

fn keys(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let pat = argv[1];
    let all = pat == b"*";
    let db = ctx.db();
    let out: Vec<Reply> = db
        .iter()
        .filter(|(k, e)| db.is_live(e) && (all || glob_match(pat, k, false)))
        .map(|(k, _)| Reply::Bulk(Bytes::copy_from_slice(k)))
        .collect();
    Ok(Reply::Array(out))
}

fn scan(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut cursor = parse_cursor(argv[1])?;
    let o = parse_scan_opts(argv, 2, true)?;
    let db = ctx.db();
    let mut found: Vec<Bytes> = Vec::new();
    let mut expired: Vec<Bytes> = Vec::new();
    // Like Redis: visit buckets until COUNT elements are gathered, at most COUNT*10 buckets.
    let mut budget = o.count.saturating_mul(10);
    loop {
        cursor = db.scan(cursor, |k, e| {
            if !db.is_live(e) {
                expired.push(Bytes::copy_from_slice(k));
                return;
            }
            if let Some(p) = &o.pattern
                && !glob_match(p, k, false)
            {
                return;
            }
            if let Some(t) = &o.type_name
                && e.value.type_name() != t
            {
                return;
            }
            found.push(Bytes::copy_from_slice(k));
        });
        budget = budget.saturating_sub(1);
        if cursor == 0 || budget == 0 || found.len() >= o.count {
            break;
        }
    }
    // Expired keys met on the way are deleted (and propagated as DEL), as Redis's SCAN does.
    for k in &expired {
        db.expire_if_needed(k);
    }
    Ok(Reply::Array(vec![
        Reply::Bulk(Bytes::from(cursor.to_string())),
        Reply::Array(found.into_iter().map(Reply::Bulk).collect()),
    ]))
}

fn randomkey(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let srv = &mut *ctx.srv;
    let db = &mut srv.dbs[ctx.sess.db];
    Ok(Reply::from_opt(db.random_key(&mut srv.rng)))
}

fn rename_generic(ctx: &mut Ctx, argv: &[&[u8]], nx: bool) -> CmdResult {
    let (src, dst) = (&argv[1], &argv[2]);
    let db = ctx.db();
    if !db.contains(src) {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        return Ok(if nx { Reply::Int(0) } else { OK });
    }
    if nx && db.contains(dst) {
        return Ok(Reply::Int(0));
    }
    let Some((val, exp)) = db.take(src) else {
        return Err(CmdError::NoSuchKey);
    };
    // Like Redis: the old destination is deleted and the key added anew (a `new` event).
    db.remove(dst);
    db.set(dst, val, false);
    if exp.is_some() {
        db.set_expire(dst, exp);
    }
    ctx.notify(ev::GENERIC, "rename_from", src);
    ctx.notify(ev::GENERIC, "rename_to", dst);
    Ok(if nx { Reply::Int(1) } else { OK })
}

fn rename(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    rename_generic(ctx, argv, false)
}

fn renamenx(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    rename_generic(ctx, argv, true)
}

fn db_index(ctx: &Ctx, arg: &[u8]) -> Result<usize, CmdError> {
    let n = super::args::int32(arg)?;
    if n < 0 || n as usize >= ctx.srv.dbs.len() {
        return Err(CmdError::DbIndexOutOfRange);
    }
    Ok(n as usize)
}

/// Two distinct databases borrowed mutably at once.
fn two_dbs(dbs: &mut [Db], a: usize, b: usize) -> (&mut Db, &mut Db) {
    if a < b {
        let (l, r) = dbs.split_at_mut(b);
        (&mut l[a], &mut r[0])
    } else {
        let (l, r) = dbs.split_at_mut(a);
        (&mut r[0], &mut l[b])
    }
}

/// DUMP: the value in RDB encoding with version and checksum (the payload Redis produces, so
/// it RESTOREs in Redis too).
fn dump(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let opts = ctx.srv.save_options();
    Ok(match ctx.db().get(argv[1]) {
        Some(v) => Reply::Bulk(Bytes::from(crate::persistence::rdb::dump(v, opts))),
        None => Reply::Null,
    })
}

fn restore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    use crate::persistence::rdb::DumpError;
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut j = 4;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let a = &argv[j];
        if is(a, "replace") {
            replace = true;
        } else if is(a, "absttl") {
            absttl = true;
        } else if is(a, "idletime") && more >= 1 && freq.is_none() {
            let n = int(argv[j + 1])?;
            if n < 0 {
                return Err(CmdError::msg("Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(n);
            j += 1;
        } else if is(a, "freq") && more >= 1 && idle.is_none() {
            let n = int(argv[j + 1])?;
            if !(0..=255).contains(&n) {
                return Err(CmdError::msg("Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = Some(n);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let key = &argv[1];
    if !replace && ctx.db().contains(key) {
        return Err(CmdError::Raw("BUSYKEY Target key name already exists.".into()));
    }
    let ttl = int(argv[2])?;
    if ttl < 0 {
        return Err(CmdError::msg("Invalid TTL value, must be >= 0"));
    }
    let opts = ctx.srv.load_options();
    let value =
        crate::persistence::rdb::restore(argv[3], opts, !ctx.srv.skip_checksum_validation).map_err(|e| match e {
            DumpError::Footer => CmdError::msg("DUMP payload version or checksum are wrong"),
            DumpError::BadData(why) => {
                if let Some(why) = why {
                    tracing::debug!("{why}");
                }
                CmdError::msg("Bad data format")
            }
        })?;
    let now = ctx.now_ms() as i64;
    let deadline = if ttl == 0 {
        None
    } else if absttl {
        Some(ttl)
    } else {
        Some(ttl.saturating_add(now))
    };
    let deleted = replace && ctx.db().remove(key).is_some();
    if deadline.is_some_and(|d| ctx.already_expired(d)) {
        // Already expired: nothing is created (the old key, if replaced, is gone).
        if deleted {
            ctx.notify(ev::GENERIC, "del", key);
            ctx.log_as(vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(key)]);
        }
        return Ok(OK);
    }
    ctx.db().set(key, value, false);
    if let Some(d) = deadline {
        ctx.db().set_expire(key, Some(d as u64));
    }
    ctx.db().restore_stamp(key, idle.map(|i| i as u64), freq.map(|f| f as u8));
    ctx.notify(ev::GENERIC, "restore", key);
    // A relative TTL is propagated as an absolute one (RESTORE ... ABSTTL), as Redis does.
    if let (Some(d), false) = (deadline, absttl) {
        let mut cmd = crate::protocol::owned(argv);
        cmd[2] = Bytes::from(d.to_string());
        cmd.push(Bytes::from_static(b"ABSTTL"));
        ctx.log_as(cmd);
    }
    Ok(OK)
}

fn move_cmd(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if ctx.srv.cluster.is_some() {
        return Err(CmdError::msg("MOVE is not allowed in cluster mode"));
    }
    let dst = db_index(ctx, argv[2])?;
    let src = ctx.sess.db;
    if src == dst {
        return Err(CmdError::msg("source and destination objects are the same"));
    }
    let (s, d) = two_dbs(&mut ctx.srv.dbs, src, dst);
    let key = &argv[1];
    if !s.contains(key) || d.contains(key) {
        return Ok(Reply::Int(0));
    }
    let Some((val, exp)) = s.take(key) else {
        return Ok(Reply::Int(0));
    };
    d.set(key, val, false);
    if exp.is_some() {
        d.set_expire(key, exp);
    }
    ctx.notify_in(src, ev::GENERIC, "move_from", key);
    ctx.notify_in(dst, ev::GENERIC, "move_to", key);
    Ok(Reply::Int(1))
}

fn copy(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let src_db = ctx.sess.db;
    let mut dst_db = src_db;
    let mut replace = false;
    let mut i = 3;
    while i < argv.len() {
        if is(argv[i], "replace") {
            replace = true;
        } else if is(argv[i], "db") && i + 1 < argv.len() {
            dst_db = db_index(ctx, argv[i + 1])?;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if ctx.srv.cluster.is_some() && (src_db != 0 || dst_db != 0) {
        return Err(CmdError::msg("Copying to another database is not allowed in cluster mode"));
    }
    let (src, dst) = (&argv[1], &argv[2]);
    if src_db == dst_db && src == dst {
        return Err(CmdError::msg("source and destination objects are the same"));
    }
    let Some((val, exp)) = ctx.srv.dbs[src_db].peek(src).map(|e| (e.value.clone(), e.expire_at())) else {
        return Ok(Reply::Int(0));
    };
    let d = &mut ctx.srv.dbs[dst_db];
    if d.contains(dst) && !replace {
        return Ok(Reply::Int(0));
    }
    d.remove(dst);
    d.set(dst, val, false);
    if exp.is_some() {
        d.set_expire(dst, exp);
    }
    ctx.notify_in(dst_db, ev::GENERIC, "copy_to", dst);
    Ok(Reply::Int(1))
}

#[derive(Clone, Copy)]
enum Unit {
    Seconds,
    Millis,
}

fn expire_generic(ctx: &mut Ctx, argv: &[&[u8]], absolute: bool, unit: Unit, name: &'static str) -> CmdResult {
    let (c, taken) = Conditions::leading(&argv[3..], &["nx", "xx", "gt", "lt"]);
    if let Some(a) = argv.get(3 + taken) {
        return Err(CmdError::msg(format!("Unsupported option {}", lossy(a))));
    }
    let Conditions { nx, xx, gt, lt, .. } = c;
    if nx && (xx || gt || lt) {
        return Err(CmdError::msg("NX and XX, GT or LT options at the same time are not compatible"));
    }
    if gt && lt {
        return Err(CmdError::msg("GT and LT options at the same time are not compatible"));
    }
    let mut when = int(argv[2])?;
    if let Unit::Seconds = unit {
        when = when.checked_mul(1000).ok_or(CmdError::InvalidExpire(name))?;
    }
    let base = if absolute { 0 } else { ctx.now_ms() as i64 };
    let when = when.checked_add(base).ok_or(CmdError::InvalidExpire(name))?;
    let db = ctx.db();
    let Some(entry) = db.peek(argv[1]) else {
        return Ok(Reply::Int(0));
    };
    let current = entry.expire_at().map(|v| v as i64);
    if (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c))
    {
        return Ok(Reply::Int(0));
    }
    let past = ctx.already_expired(when);
    let db = ctx.db();
    let event = if past {
        db.remove(argv[1]);
        "del"
    } else {
        db.set_expire(argv[1], Some(when as u64));
        "expire"
    };
    ctx.notify(ev::GENERIC, event, argv[1]);
    // Propagated as its effect: DEL, or PEXPIREAT with the absolute deadline.
    if event == "del" {
        ctx.log_as(vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(argv[1])]);
    } else {
        ctx.log_as(vec![
            Bytes::from_static(b"PEXPIREAT"),
            Bytes::copy_from_slice(argv[1]),
            Bytes::from(when.to_string()),
        ]);
    }
    Ok(Reply::Int(1))
}

fn expire(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, argv, false, Unit::Seconds, "expire")
}
fn pexpire(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, argv, false, Unit::Millis, "pexpire")
}
fn expireat(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, argv, true, Unit::Seconds, "expireat")
}
fn pexpireat(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, argv, true, Unit::Millis, "pexpireat")
}

/// TTL family: -2 missing key, -1 no deadline, else remaining (or absolute) time.
fn ttl_generic(ctx: &mut Ctx, key: &[u8], absolute: bool, unit: Unit) -> CmdResult {
    let now = ctx.now_ms();
    // Counted as a read (keyspace hits/misses), without touching the LRU clock.
    if ctx.db().get_notouch(key).is_none() {
        return Ok(Reply::Int(-2));
    }
    let Some(exp) = ctx.db().expire_of(key) else {
        return Ok(Reply::Int(-2));
    };
    let Some(at) = exp else {
        return Ok(Reply::Int(-1));
    };
    let v = if absolute {
        match unit {
            Unit::Millis => at,
            Unit::Seconds => at / 1000,
        }
    } else {
        let ttl = at.saturating_sub(now);
        match unit {
            Unit::Millis => ttl,
            Unit::Seconds => (ttl + 500) / 1000,
        }
    };
    Ok(Reply::Int(v as i64))
}

fn ttl(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv[1], false, Unit::Seconds)
}
fn pttl(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv[1], false, Unit::Millis)
}
fn expiretime(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv[1], true, Unit::Seconds)
}
fn pexpiretime(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv[1], true, Unit::Millis)
}

fn persist(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    match db.expire_of(argv[1]) {
        Some(Some(_)) => {
            db.set_expire(argv[1], None);
            ctx.notify(ev::GENERIC, "persist", argv[1]);
            Ok(Reply::Int(1))
        }
        _ => Ok(Reply::Int(0)),
    }
}

fn dbsize(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(ctx.db().len() as i64))
}

/// Whether the flush frees in the background: ASYNC, or neither word and
/// `lazyfree-lazy-user-flush yes`.
fn flush_async(ctx: &Ctx, argv: &[&[u8]]) -> Result<bool, CmdError> {
    match argv.len() {
        1 => Ok(ctx.srv.config.bool("lazyfree-lazy-user-flush")),
        2 if is(argv[1], "sync") => Ok(false),
        2 if is(argv[1], "async") => Ok(true),
        _ => Err(CmdError::Syntax),
    }
}

/// Empties database `i`, its contents freed on the lazy free thread when `lazy`.
fn flush_one(srv: &mut crate::server::ServerState, i: usize, lazy: bool) {
    if lazy {
        let (contents, n) = srv.dbs[i].flush_taking();
        srv.lazyfree.free_all(contents, n as u64);
    } else {
        srv.dbs[i].flush();
    }
}

fn flushdb(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let lazy = flush_async(ctx, argv)?;
    let db = ctx.sess.db;
    flush_one(ctx.srv, db, lazy);
    ctx.srv.invalidate_all(ctx.sess);
    // Propagated even when the database was already empty, as Redis does.
    ctx.srv.force_propagation = true;
    Ok(OK)
}

fn flushall(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let lazy = flush_async(ctx, argv)?;
    for i in 0..ctx.srv.dbs.len() {
        flush_one(ctx.srv, i, lazy);
    }
    // Fills of leases granted before would bring back data from before the flush.
    ctx.srv.leases.clear();
    ctx.srv.invalidate_all(ctx.sess);
    // Like Redis: a running background save is abandoned, and with save points configured
    // the (now empty) dataset is saved at once.
    ctx.srv.abort_bgsave();
    if !ctx.srv.config.str("save").trim().is_empty() {
        let _ = ctx.srv.save_rdb();
    }
    ctx.srv.force_propagation = true;
    Ok(OK)
}

fn swapdb(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // Cluster mode has database 0 only.
    if ctx.srv.cluster.is_some() {
        return Err(CmdError::msg("SWAPDB is not allowed in cluster mode"));
    }
    let parse = |a: &[u8], which: &str| {
        parse_i64(a)
            .filter(|n| *n >= i32::MIN as i64 && *n <= i32::MAX as i64)
            .ok_or_else(|| CmdError::msg(format!("invalid {which} DB index")))
    };
    let a = parse(argv[1], "first")?;
    let b = parse(argv[2], "second")?;
    let n = ctx.srv.dbs.len() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return Err(CmdError::DbIndexOutOfRange);
    }
    let (a, b) = (a as usize, b as usize);
    if a != b {
        let (x, y) = two_dbs(&mut ctx.srv.dbs, a, b);
        // A running snapshot writes both databases' keys before they change places.
        x.snapshot_complete();
        y.snapshot_complete();
        x.touch_watched_existing_in(y);
        y.touch_watched_existing_in(x);
        x.swap_contents(y);
        x.expire_watched_quietly();
        y.expire_watched_quietly();
    }
    Ok(OK)
}

fn object_encoding(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(ctx.db().peek(argv[2]).map_or(Reply::Null, |e| Reply::bulk_str(e.value.encoding_name())))
}

fn object_refcount(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // Redis shares the integers 0..9999 unless an LRU or LFU policy needs each key's own
    // access clock (MAXMEMORY_FLAG_NO_SHARED_INTEGERS).
    let policy = ctx.srv.hot.eviction.policy;
    let shared_ints = ctx.srv.config.int("maxmemory") == 0 || !(policy.is_lru() || policy.is_lfu());
    Ok(ctx.db().peek(argv[2]).map_or(Reply::Null, |e| match &e.value {
        Value::Str(crate::types::StrValue::Int(n)) if shared_ints && (0..10000).contains(n) => Reply::Int(2147483647),
        _ => Reply::Int(1),
    }))
}

fn uses_lfu(ctx: &Ctx) -> bool {
    ctx.srv.hot.eviction.policy.is_lfu()
}

fn object_idletime(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let now = ctx.now_ms();
    let lfu = uses_lfu(ctx);
    let Some(lru) = ctx.db().stamp(argv[2]) else {
        return Ok(Reply::Null);
    };
    if lfu {
        return Err(CmdError::msg(
            "An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ));
    }
    Ok(Reply::Int((crate::keyspace::evict::lru_idle_ms(lru, now) / 1000) as i64))
}

fn object_freq(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let lfu = uses_lfu(ctx);
    let Some(stamp) = ctx.db().stamp(argv[2]) else {
        return Ok(Reply::Null);
    };
    if !lfu {
        return Err(CmdError::msg(
            "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ));
    }
    let now = ctx.now_ms();
    Ok(Reply::Int(ctx.srv.hot.eviction.stamping.decayed(stamp, now) as i64))
}

fn object_help(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(help_reply(
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    ))
}
