//! HyperLogLog family: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST over the string type, in
//! Redis's exact HYLL format (see `types::hll`).

use crate::keyspace::notify as ev;
use bytes::Bytes;

use super::args::{is, lossy};
use super::flags::*;
use super::{ALL_KEYS, CmdError, CmdResult, CommandSpec, Ctx, KEY1, Keys};
use crate::keyspace::Db;
use crate::protocol::{OK, Reply};
use crate::types::hll::{self, HllError};
use crate::types::{StrValue, Value};

const PFDEBUG_KEY: Keys = Keys { first: 2, last: 2, step: 1 };

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("pfadd", -2, pfadd).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("hyperloglog", "Adds the specified elements to the specified HyperLogLog.", "2.8.9", "O(1) to add every element."),
    CommandSpec::new("pfcount", -2, pfcount).flags(READONLY | MAY_REPLICATE).keys(ALL_KEYS).doc("hyperloglog", "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).", "2.8.9", "O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys."),
    CommandSpec::new("pfmerge", -2, pfmerge).flags(WRITE | DENYOOM).keys(ALL_KEYS).doc("hyperloglog", "Merge N different HyperLogLogs into a single one.", "2.8.9", "O(N) to merge N HyperLogLogs, but with high constant times."),
    CommandSpec::new("pfdebug", 3, pfdebug).flags(WRITE | DENYOOM | ADMIN).keys(PFDEBUG_KEY).doc("hyperloglog", "Internal commands for debugging HyperLogLog values", "2.8.9", "N/A"),
    CommandSpec::new("pfselftest", 1, pfselftest).flags(ADMIN).keys(super::NO_KEYS).doc("hyperloglog", "An internal command for testing HyperLogLog values", "2.8.9", "N/A"),
];

fn hll_err(e: HllError) -> CmdError {
    match e {
        HllError::NotHll => CmdError::Raw("WRONGTYPE Key is not a valid HyperLogLog string value.".into()),
        HllError::Corrupt => CmdError::Raw("INVALIDOBJ Corrupted HLL object detected".into()),
    }
}

/// The HLL bytes at `key` (None if missing), checked like Redis's isHLLObjectOrReply.
fn load(db: &mut Db, key: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    match db.get(key) {
        None => Ok(None),
        Some(Value::Str(StrValue::Int(_))) => Err(hll_err(HllError::NotHll)),
        Some(Value::Str(s)) => {
            let b = s.to_bytes().to_vec();
            hll::validate(&b).map_err(hll_err)?;
            Ok(Some(b))
        }
        Some(_) => Err(CmdError::WrongType),
    }
}

fn store(db: &mut Db, key: &[u8], bytes: Vec<u8>) {
    let keep_ttl = true;
    db.set(key, Value::Str(StrValue::Raw(Box::new(Bytes::from(bytes)))), keep_ttl);
}

fn sparse_max(ctx: &Ctx) -> usize {
    ctx.srv.config.int("hll-sparse-max-bytes").max(0) as usize
}

fn pfadd(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let max = sparse_max(ctx);
    let db = ctx.db();
    // Validate without copying, then edit the value's own buffer in place.
    let created = match db.get(argv[1]) {
        None => true,
        Some(Value::Str(StrValue::Int(_))) => return Err(hll_err(HllError::NotHll)),
        Some(Value::Str(s)) => {
            s.with_bytes(hll::validate).map_err(hll_err)?;
            false
        }
        Some(_) => return Err(CmdError::WrongType),
    };
    if created {
        store(db, argv[1], hll::new_hll());
    }
    // Signalled below only if a register changed (Redis's PFADD of known elements is no write).
    let Some(Value::Str(s)) = db.get_mut_quiet(argv[1]) else { return Err(CmdError::WrongType) };
    let mut h: Vec<u8> = s.begin_edit().into();
    let mut updated = created as u64;
    let mut result = Ok(());
    for e in &argv[2..] {
        match hll::add(&mut h, e, max) {
            Ok(true) => updated += 1,
            Ok(false) => {}
            Err(err) => {
                result = Err(hll_err(err));
                break;
            }
        }
    }
    if updated > 0 {
        hll::invalidate_cache(&mut h);
    }
    s.set_raw(Bytes::from(h));
    result?;
    if updated > 0 {
        ctx.db().signal_changes(argv[1], updated as usize);
        ctx.notify(ev::STRING, "pfadd", argv[1]);
    }
    Ok(Reply::Int((updated > 0) as i64))
}

fn pfcount(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    if argv.len() > 2 {
        // Merged without copying: each value is read in place.
        let mut max = vec![0u8; hll::REGISTERS];
        for k in &argv[1..] {
            if db.get(k).is_none() {
                continue;
            }
            let bytes: &[u8] = match db.view(k) {
                Some(Value::Str(s)) => s.as_bytes().ok_or_else(|| hll_err(HllError::NotHll))?,
                Some(_) => return Err(CmdError::WrongType),
                None => continue,
            };
            hll::validate(bytes).map_err(hll_err)?;
            hll::merge_into(&mut max, bytes).map_err(hll_err)?;
        }
        return Ok(Reply::Int(hll::estimate(&max) as i64));
    }
    let Some(mut h) = load(db, argv[1])? else { return Ok(Reply::Int(0)) };
    if let Some(c) = hll::cached(&h) {
        return Ok(Reply::Int(c as i64));
    }
    let c = hll::count(&mut h).map_err(hll_err)?;
    // The cached cardinality is part of the value (GET shows it), as in Redis.
    store(db, argv[1], h);
    Ok(Reply::Int(c as i64))
}

fn pfmerge(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let max_bytes = sparse_max(ctx);
    let db = ctx.db();
    let mut max = vec![0u8; hll::REGISTERS];
    let mut use_dense = false;
    for k in &argv[1..] {
        if let Some(h) = load(db, k)? {
            use_dense |= hll::is_dense(&h);
            hll::merge_into(&mut max, &h).map_err(hll_err)?;
        }
    }
    let mut dst = load(db, argv[1])?.unwrap_or_else(hll::new_hll);
    if use_dense {
        hll::to_dense(&mut dst).map_err(hll_err)?;
    }
    for (i, &v) in max.iter().enumerate() {
        if v != 0 {
            hll::set(&mut dst, i, v, max_bytes).map_err(hll_err)?;
        }
    }
    hll::invalidate_cache(&mut dst);
    store(db, argv[1], dst);
    ctx.notify(ev::STRING, "pfadd", argv[1]);
    Ok(OK)
}

fn pfdebug(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let sub = lossy(argv[1]);
    let db = ctx.db();
    let Some(mut h) = load(db, argv[2])? else { return Err(CmdError::msg("The specified key does not exist")) };
    if is(argv[1], "getreg") {
        if !hll::is_dense(&h) {
            hll::to_dense(&mut h).map_err(hll_err)?;
            store(db, argv[2], h.clone());
        }
        let regs = hll::registers(&h).map_err(hll_err)?;
        Ok(Reply::Array(regs.into_iter().map(|r| Reply::Int(r as i64)).collect()))
    } else if is(argv[1], "decode") {
        if hll::is_dense(&h) {
            return Err(CmdError::msg("HLL encoding is not sparse"));
        }
        Ok(Reply::Bulk(Bytes::from(hll::decode_sparse(&h).map_err(hll_err)?)))
    } else if is(argv[1], "encoding") {
        Ok(Reply::Status(if hll::is_dense(&h) { "dense" } else { "sparse" }))
    } else if is(argv[1], "todense") {
        if hll::is_dense(&h) {
            return Ok(Reply::Int(0));
        }
        hll::to_dense(&mut h).map_err(hll_err)?;
        store(db, argv[2], h);
        Ok(Reply::Int(1))
    } else {
        Err(CmdError::msg(format!("Unknown PFDEBUG subcommand '{sub}'")))
    }
}

/// Checks that dense registers round-trip and that sparse and dense agree.
fn pfselftest(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let mut sparse = hll::new_hll();
    let mut dense = hll::new_hll();
    hll::to_dense(&mut dense).map_err(hll_err)?;
    for i in 0..5000u64 {
        let e = i.to_le_bytes();
        hll::add(&mut sparse, &e, 3000).map_err(hll_err)?;
        hll::add(&mut dense, &e, 3000).map_err(hll_err)?;
    }
    if hll::registers(&sparse).map_err(hll_err)? != hll::registers(&dense).map_err(hll_err)? {
        return Err(CmdError::Raw("TESTFAILED dense/sparse disagree".into()));
    }
    Ok(OK)
}
