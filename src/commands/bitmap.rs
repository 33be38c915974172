//! Bitmap and bitfield families: commands over the string type, as in Redis. A bitmap is the
//! string's raw bytes, bit 0 being the most significant bit of byte 0, so GET returns exactly
//! what Redis would and values move freely between the two servers.

use crate::keyspace::notify as ev;
use bytes::{Bytes, BytesMut};

use super::args::is;
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, KEY1, Keys};
use crate::keyspace::Db;
use crate::protocol::Reply;
use crate::types::{StrValue, Value};
use crate::util::numfmt::parse_i64;

const BITOP_KEYS: Keys = Keys { first: 2, last: -1, step: 1 };

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("setbit", 4, setbit).flags(WRITE | DENYOOM).keys(KEY1).doc(
        "bitmap",
        "Sets or clears the bit at offset in the string value stored at key",
        "2.2.0",
        "O(1)",
    ),
    CommandSpec::new("getbit", 3, getbit).flags(READONLY | FAST).keys(KEY1).doc(
        "bitmap",
        "Returns the bit value at offset in the string value stored at key",
        "2.2.0",
        "O(1)",
    ),
    CommandSpec::new("bitcount", -2, bitcount).flags(READONLY).keys(KEY1).doc(
        "bitmap",
        "Count set bits in a string",
        "2.6.0",
        "O(N)",
    ),
    CommandSpec::new("bitpos", -3, bitpos).flags(READONLY).keys(KEY1).doc(
        "bitmap",
        "Find first bit set or clear in a string",
        "2.8.7",
        "O(N)",
    ),
    CommandSpec::new("bitop", -4, bitop).flags(WRITE | DENYOOM).keys(BITOP_KEYS).doc(
        "bitmap",
        "Perform bitwise operations between strings",
        "2.6.0",
        "O(N)",
    ),
    CommandSpec::new("bitfield", -2, bitfield).flags(WRITE | DENYOOM).keys(KEY1).doc(
        "bitmap",
        "Perform arbitrary bitfield integer operations on strings",
        "3.2.0",
        "O(1) for each subcommand specified",
    ),
    CommandSpec::new("bitfield_ro", -2, bitfield_ro).flags(READONLY | FAST).keys(KEY1).doc(
        "bitmap",
        "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD",
        "6.0.0",
        "O(1) for each subcommand specified",
    ),
];

const OFFSET_ERR: &str = "bit offset is not an integer or out of range";

/// A bit offset as Redis bounds it: non-negative, inside proto-max-bulk-len bytes. With
/// `#N` (BITFIELD) the offset is N times the field width.
fn bit_offset(ctx: &Ctx, a: &[u8], hash_bits: Option<u32>) -> Result<u64, CmdError> {
    let (body, mul) = match (a.first(), hash_bits) {
        (Some(b'#'), Some(bits)) => (&a[1..], bits as i64),
        _ => (a, 1),
    };
    let v = parse_i64(body).and_then(|v| v.checked_mul(mul)).ok_or_else(|| CmdError::msg(OFFSET_ERR))?;
    if v < 0 || (v >> 3) as u64 >= super::string::max_string_len(ctx) {
        return Err(CmdError::msg(OFFSET_ERR));
    }
    Ok(v as u64)
}

/// The string at `key` as bytes (None if missing), WRONGTYPE for other types.
fn read_bytes(db: &mut Db, key: &[u8]) -> Result<Option<Bytes>, CmdError> {
    match db.get(key) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s.to_bytes())),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Opens the string at `key` for bit writes, created or zero-extended to hold `max_bit`.
/// Also says whether the string was created or grown (a change even if no bit flips).
fn edit_bits<R>(
    db: &mut Db,
    key: &[u8],
    max_bit: u64,
    f: impl FnOnce(&mut BytesMut) -> R,
) -> Result<(R, bool), CmdError> {
    let need = (max_bit >> 3) as usize + 1;
    // Checked without a write access first, so a WRONGTYPE reply does not break a WATCH.
    let mut grown = false;
    match db.peek(key) {
        Some(e) if !matches!(e.value, Value::Str(_)) => return Err(CmdError::WrongType),
        Some(_) => {}
        None => {
            db.set(key, Value::Str(StrValue::Raw(Box::default())), false);
            grown = true;
        }
    }
    // Callers signal the change themselves: a SETBIT that leaves the bit as it was changes
    // nothing (WATCH and client caches keep the key, as in Redis).
    let Some(Value::Str(s)) = db.get_mut_quiet(key) else { return Err(CmdError::WrongType) };
    let mut buf = s.begin_edit();
    if buf.len() < need {
        buf.resize(need, 0);
        grown = true;
    }
    let r = f(&mut buf);
    s.finish_edit(buf);
    Ok((r, grown))
}

fn get_bit(b: &[u8], off: u64) -> u8 {
    b.get((off >> 3) as usize).map_or(0, |byte| (byte >> (7 - (off & 7))) & 1)
}

fn setbit(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let off = bit_offset(ctx, argv[2], None)?;
    let on = match parse_i64(argv[3]) {
        Some(v @ (0 | 1)) => v as u8,
        _ => return Err(CmdError::msg("bit is not an integer or out of range")),
    };
    let (old, grown) = edit_bits(ctx.db(), argv[1], off, |buf| {
        let i = (off >> 3) as usize;
        let shift = 7 - (off & 7);
        let old = (buf[i] >> shift) & 1;
        buf[i] = (buf[i] & !(1 << shift)) | (on << shift);
        old
    })?;
    if grown || old != on {
        ctx.db().signal_modified(argv[1]);
        ctx.notify(ev::STRING, "setbit", argv[1]);
    }
    Ok(Reply::Int(old as i64))
}

fn getbit(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let off = bit_offset(ctx, argv[2], None)?;
    let b = read_bytes(ctx.db(), argv[1])?.unwrap_or_default();
    Ok(Reply::Int(get_bit(&b, off) as i64))
}

fn popcount(b: &[u8]) -> u64 {
    // Eight bytes at a time; the compiler turns count_ones into POPCNT where available.
    let mut chunks = b.chunks_exact(8);
    let mut n: u64 = chunks
        .by_ref()
        .map(|c| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]).count_ones() as u64)
        .sum();
    n += chunks.remainder().iter().map(|x| x.count_ones() as u64).sum::<u64>();
    n
}

/// Range arguments of BITCOUNT/BITPOS normalised like Redis: (start, end, first-byte mask,
/// last-byte mask) in bytes, masks marking bits outside a BIT range.
fn normalise(start: i64, end: i64, strlen: i64, isbit: bool) -> (i64, i64, u8, u8) {
    let totlen = if isbit { strlen << 3 } else { strlen };
    let (mut s, mut e) = (start, end);
    if s < 0 {
        s += totlen;
    }
    if e < 0 {
        e += totlen;
    }
    s = s.max(0);
    e = e.max(0);
    if e >= totlen {
        e = totlen - 1;
    }
    let (mut first, mut last) = (0u8, 0u8);
    if isbit && s <= e {
        first = (!((1u32 << (8 - (s & 7))) - 1) & 0xff) as u8;
        last = ((1u32 << (7 - (e & 7))) - 1) as u8;
        s >>= 3;
        e >>= 3;
    }
    (s, e, first, last)
}

fn bitcount(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let Some(b) = read_bytes(ctx.db(), argv[1])? else { return Ok(Reply::Int(0)) };
    let strlen = b.len() as i64;
    let (s, e, first, last) = match argv.len() {
        2 => (0, strlen - 1, 0, 0),
        4 | 5 => {
            let start = parse_i64(argv[2]).ok_or(CmdError::NotInteger)?;
            let end = parse_i64(argv[3]).ok_or(CmdError::NotInteger)?;
            // Redis answers an empty negative range before it reads the unit.
            if start < 0 && end < 0 && start > end {
                return Ok(Reply::Int(0));
            }
            let isbit = match argv.get(4) {
                None => false,
                Some(a) if is(a, "bit") => true,
                Some(a) if is(a, "byte") => false,
                Some(_) => return Err(CmdError::Syntax),
            };
            normalise(start, end, strlen, isbit)
        }
        _ => return Err(CmdError::Syntax),
    };
    if s > e {
        return Ok(Reply::Int(0));
    }
    let (s, e) = (s as usize, e as usize);
    let mut count = popcount(&b[s..=e]) as i64;
    if first != 0 {
        count -= (b[s] & first).count_ones() as i64;
    }
    if last != 0 {
        count -= (b[e] & last).count_ones() as i64;
    }
    Ok(Reply::Int(count))
}

/// Position of the first bit equal to `bit` in `p`; for 0 with none found, the first bit past
/// the end (strings are zero-padded), for 1 with none found, -1.
fn first_bit(p: &[u8], bit: u8) -> i64 {
    let skip = if bit == 1 { 0u8 } else { 0xff };
    for (i, &byte) in p.iter().enumerate() {
        if byte != skip {
            let lead = if bit == 1 { byte.leading_zeros() } else { (!byte).leading_zeros() };
            return i as i64 * 8 + lead as i64;
        }
    }
    if bit == 1 { -1 } else { p.len() as i64 * 8 }
}

fn bitpos(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let bit = match parse_i64(argv[2]) {
        None => return Err(CmdError::NotInteger),
        Some(b @ (0 | 1)) => b as u8,
        Some(_) => return Err(CmdError::msg("The bit argument must be 1 or 0.")),
    };
    let Some(b) = read_bytes(ctx.db(), argv[1])? else {
        return Ok(Reply::Int(if bit == 1 { -1 } else { 0 }));
    };
    let strlen = b.len() as i64;
    let mut end_given = false;
    let (mut s, e, first, last) = match argv.len() {
        3 => (0, strlen - 1, 0u8, 0u8),
        4..=6 => {
            let start = parse_i64(argv[3]).ok_or(CmdError::NotInteger)?;
            let isbit = match argv.get(5) {
                None => false,
                Some(a) if is(a, "bit") => true,
                Some(a) if is(a, "byte") => false,
                Some(_) => return Err(CmdError::Syntax),
            };
            let end = match argv.get(4) {
                Some(a) => {
                    end_given = true;
                    parse_i64(a).ok_or(CmdError::NotInteger)?
                }
                None if isbit => (strlen << 3) + 7,
                None => strlen - 1,
            };
            normalise(start, end, strlen, isbit)
        }
        _ => return Err(CmdError::Syntax),
    };
    if s > e {
        return Ok(Reply::Int(-1));
    }
    let mut bytes = e - s + 1;
    let pos;
    'found: {
        if first != 0 {
            let mut tmp = if bit == 1 { b[s as usize] & !first } else { b[s as usize] | first };
            if last != 0 && bytes == 1 {
                tmp = if bit == 1 { tmp & !last } else { tmp | last };
            }
            let p = first_bit(&[tmp], bit);
            if bytes == 1 || (p != -1 && p != 8) {
                pos = p;
                break 'found;
            }
            s += 1;
            bytes -= 1;
        }
        let cur = bytes - if last != 0 { 1 } else { 0 };
        if cur > 0 {
            let p = first_bit(&b[s as usize..(s + cur) as usize], bit);
            if bytes == cur || (p != -1 && p != cur << 3) {
                pos = p;
                break 'found;
            }
            s += cur;
            bytes -= cur;
        }
        let tmp = if bit == 1 { b[e as usize] & !last } else { b[e as usize] | last };
        pos = first_bit(&[tmp], bit);
    }
    if end_given && bit == 0 && pos == bytes << 3 {
        return Ok(Reply::Int(-1));
    }
    Ok(Reply::Int(if pos != -1 { pos + (s << 3) } else { pos }))
}

fn bitop(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    #[derive(PartialEq, Clone, Copy)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let op = if is(argv[1], "and") {
        Op::And
    } else if is(argv[1], "or") {
        Op::Or
    } else if is(argv[1], "xor") {
        Op::Xor
    } else if is(argv[1], "not") {
        Op::Not
    } else {
        return Err(CmdError::Syntax);
    };
    if op == Op::Not && argv.len() != 4 {
        return Err(CmdError::msg("BITOP NOT must be called with a single source key."));
    }
    let db = ctx.db();
    let mut srcs = Vec::new();
    for k in &argv[3..] {
        srcs.push(read_bytes(db, k)?.unwrap_or_default());
    }
    let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![0u8; maxlen];
    if op == Op::Not {
        for (o, x) in out.iter_mut().zip(srcs[0].iter()) {
            *o = !x;
        }
    } else {
        for (i, o) in out.iter_mut().enumerate() {
            let mut acc = srcs[0].get(i).copied().unwrap_or(0);
            for s in &srcs[1..] {
                let x = s.get(i).copied().unwrap_or(0);
                acc = match op {
                    Op::And => acc & x,
                    Op::Or => acc | x,
                    _ => acc ^ x,
                };
            }
            *o = acc;
        }
    }
    if maxlen == 0 {
        if db.remove(argv[2]).is_some() {
            ctx.notify(ev::GENERIC, "del", argv[2]);
        }
    } else {
        db.set(argv[2], Value::Str(StrValue::Raw(Box::new(Bytes::from(out)))), false);
        ctx.notify(ev::STRING, "set", argv[2]);
    }
    Ok(Reply::Int(maxlen as i64))
}

#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy)]
enum FieldOp {
    Get,
    Set(i64),
    Incr(i64),
}

struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

fn field_type(a: &[u8]) -> Result<(bool, u32), CmdError> {
    let err = || {
        CmdError::msg("Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")
    };
    let signed = match a.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err()),
    };
    let bits = parse_i64(&a[1..]).ok_or_else(err)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(err());
    }
    Ok((signed, bits as u32))
}

fn get_unsigned(p: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v: u64 = 0;
    for j in 0..bits as u64 {
        v = (v << 1) | get_bit(p, offset + j) as u64;
    }
    v
}

fn get_signed(p: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_unsigned(p, offset, bits);
    if bits < 64 && v & (1 << (bits - 1)) != 0 { (v | (u64::MAX << bits)) as i64 } else { v as i64 }
}

fn set_bits(p: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits as u64 {
        let bitval = (value >> (bits as u64 - 1 - j)) & 1;
        let pos = offset + j;
        let i = (pos >> 3) as usize;
        let shift = 7 - (pos & 7);
        if let Some(b) = p.get_mut(i) {
            *b = (*b & !(1 << shift)) | ((bitval as u8) << shift);
        }
    }
}

/// Redis's checkUnsignedBitfieldOverflow: (overflowed, value to store).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (bool, u64) {
    let max = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX << bits);
    if value > max || (incr > 0 && incr > maxincr) {
        (true, if ow == Overflow::Wrap { wrap() } else { max })
    } else if incr < 0 && incr < minincr {
        (true, if ow == Overflow::Wrap { wrap() } else { 0 })
    } else {
        (false, value.wrapping_add(incr as u64))
    }
}

/// Redis's checkSignedBitfieldOverflow: (overflowed, value to store).
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (bool, i64) {
    let max = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        (true, if ow == Overflow::Wrap { wrap() } else { max })
    } else if value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
        (true, if ow == Overflow::Wrap { wrap() } else { min })
    } else {
        (false, value.wrapping_add(incr))
    }
}

fn bitfield_generic(ctx: &mut Ctx, argv: &[&[u8]], readonly_cmd: bool) -> CmdResult {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut readonly = true;
    let mut highest: u64 = 0;
    let mut j = 2;
    while j < argv.len() {
        let rem = argv.len() - j - 1;
        let sub = &argv[j];
        let op_kind = if is(sub, "get") && rem >= 2 {
            0
        } else if is(sub, "set") && rem >= 3 {
            1
        } else if is(sub, "incrby") && rem >= 3 {
            2
        } else if is(sub, "overflow") && rem >= 1 {
            let t = &argv[j + 1];
            overflow = if is(t, "wrap") {
                Overflow::Wrap
            } else if is(t, "sat") {
                Overflow::Sat
            } else if is(t, "fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::msg("Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let (signed, bits) = field_type(argv[j + 1])?;
        let offset = bit_offset(ctx, argv[j + 2], Some(bits))?;
        let op = match op_kind {
            0 => FieldOp::Get,
            k => {
                readonly = false;
                highest = highest.max(offset + bits as u64 - 1);
                let v = parse_i64(argv[j + 3]).ok_or(CmdError::NotInteger)?;
                if k == 1 { FieldOp::Set(v) } else { FieldOp::Incr(v) }
            }
        };
        ops.push(Field { op, signed, bits, offset, overflow });
        j += if op_kind == 0 { 3 } else { 4 };
    }
    if readonly {
        let b = read_bytes(ctx.db(), argv[1])?.unwrap_or_default();
        return Ok(Reply::Array(
            ops.iter()
                .map(|f| {
                    Reply::Int(if f.signed {
                        get_signed(&b, f.offset, f.bits)
                    } else {
                        get_unsigned(&b, f.offset, f.bits) as i64
                    })
                })
                .collect(),
        ));
    }
    if readonly_cmd {
        return Err(CmdError::msg("BITFIELD_RO only supports the GET subcommand"));
    }
    let ((replies, (writes, changed)), grown) = edit_bits(ctx.db(), argv[1], highest, |buf| {
        let mut out = Vec::with_capacity(ops.len());
        let (mut writes, mut changed) = (0, 0);
        for f in &ops {
            match f.op {
                FieldOp::Get => out.push(Reply::Int(if f.signed {
                    get_signed(buf, f.offset, f.bits)
                } else {
                    get_unsigned(buf, f.offset, f.bits) as i64
                })),
                FieldOp::Set(v) | FieldOp::Incr(v) => {
                    let is_set = matches!(f.op, FieldOp::Set(_));
                    let old_bits = get_unsigned(buf, f.offset, f.bits);
                    let (overflowed, new, ret) = if f.signed {
                        let old = get_signed(buf, f.offset, f.bits);
                        let (o, n) = if is_set {
                            signed_overflow(v, 0, f.bits, f.overflow)
                        } else {
                            signed_overflow(old, v, f.bits, f.overflow)
                        };
                        let n = if is_set && !o { v } else { n };
                        (o, n as u64, if is_set { old } else { n })
                    } else {
                        let old = get_unsigned(buf, f.offset, f.bits);
                        let (o, n) = if is_set {
                            unsigned_overflow(v as u64, 0, f.bits, f.overflow)
                        } else {
                            unsigned_overflow(old, v, f.bits, f.overflow)
                        };
                        let n = if is_set && !o { v as u64 } else { n };
                        (o, n, if is_set { old as i64 } else { n as i64 })
                    };
                    if overflowed && f.overflow == Overflow::Fail {
                        out.push(Reply::Null);
                    } else {
                        out.push(Reply::Int(ret));
                        set_bits(buf, f.offset, f.bits, new);
                        writes += 1;
                        if get_unsigned(buf, f.offset, f.bits) != old_bits {
                            changed += 1;
                        }
                    }
                }
            }
        }
        (out, (writes, changed))
    })?;
    // Like Redis, a write counts as a change when it created or grew the string, or when the
    // field's value really changed.
    let changes = if grown { writes } else { changed };
    if changes > 0 {
        ctx.db().signal_changes(argv[1], changes as usize);
        ctx.notify(ev::STRING, "setbit", argv[1]);
    }
    Ok(Reply::Array(replies))
}

fn bitfield(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    bitfield_generic(ctx, argv, false)
}

fn bitfield_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    bitfield_generic(ctx, argv, true)
}
