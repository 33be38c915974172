//! HyperLogLog in Redis's exact byte format, so a PFADD in Ember and in Redis produce the same
//! string and PFCOUNT the same number. Layout: `HYLL`, encoding byte (0 dense, 1 sparse),
//! 3 unused bytes, 8-byte little-endian cached cardinality (top bit = stale), then either
//! 16384 6-bit registers (dense) or run-length opcodes (sparse: ZERO `00xxxxxx`, XZERO
//! `01xxxxxx yyyyyyyy`, VAL `1vvvvvxx`). Hashing is MurmurHash64A with Redis's seed and the
//! estimator is Ertl's (tau/sigma) as in Redis 5+. The sparse update (split the covering
//! opcode, then merge neighbouring equal VALs) follows hllSparseSet step by step, since the
//! resulting bytes are observable with GET.

pub const P: u32 = 14;
pub const Q: u32 = 64 - P;
pub const REGISTERS: usize = 1 << P;
const BITS: usize = 6;
const REG_MAX: u8 = 63;
pub const HDR: usize = 16;
pub const DENSE_SIZE: usize = HDR + (REGISTERS * BITS).div_ceil(8);
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
/// 0.5 / ln 2, as Redis writes it (0.721347520444481703680) rounded to a double.
const ALPHA_INF: f64 = 0.7213475204444817;

#[derive(Debug, PartialEq, Eq)]
pub enum HllError {
    /// Not a HyperLogLog string: WRONGTYPE.
    NotHll,
    /// A HyperLogLog whose registers do not decode: INVALIDOBJ.
    Corrupt,
}

pub fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4a7935bd1e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in chunks.by_ref() {
        let mut k = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// (register index, run length of the 0…01 pattern) for an element.
pub fn pattern(ele: &[u8]) -> (usize, u8) {
    let mut hash = murmur64a(ele, 0xadc83b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    hash >>= P;
    hash |= 1u64 << Q;
    ((index), (hash.trailing_zeros() + 1) as u8)
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = regs.get(byte).copied().unwrap_or(0) as u32;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u32;
    (((b0 >> fb) | (b1 << (8 - fb))) & REG_MAX as u32) as u8
}

fn dense_set(regs: &mut [u8], i: usize, v: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let v = v as u32;
    if let Some(b) = regs.get_mut(byte) {
        *b &= !((REG_MAX as u32) << fb) as u8;
        *b |= (v << fb) as u8;
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((REG_MAX as u32) >> (8 - fb)) as u8;
        *b |= (v >> (8 - fb)) as u8;
    }
}

fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}
fn zero_len(b: u8) -> usize {
    (b & 0x3f) as usize + 1
}
fn xzero_len(b0: u8, b1: u8) -> usize {
    ((((b0 & 0x3f) as usize) << 8) | b1 as usize) + 1
}
fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}
fn val_len(b: u8) -> usize {
    (b & 0x3) as usize + 1
}
fn zero_op(len: usize) -> u8 {
    (len - 1) as u8
}
fn xzero_op(len: usize) -> [u8; 2] {
    let l = len - 1;
    [((l >> 8) as u8) | 0x40, (l & 0xff) as u8]
}
fn val_op(v: u8, len: usize) -> u8 {
    (((v - 1) << 2) | (len - 1) as u8) | 0x80
}

/// A new, empty HyperLogLog (sparse, cached cardinality 0).
pub fn new_hll() -> Vec<u8> {
    let mut s = vec![0u8; HDR];
    s[..4].copy_from_slice(b"HYLL");
    s[4] = SPARSE;
    let mut left = REGISTERS;
    while left > 0 {
        let n = left.min(XZERO_MAX_LEN);
        s.extend_from_slice(&xzero_op(n));
        left -= n;
    }
    s
}

/// Checks the header like Redis's isHLLObjectOrReply.
pub fn validate(s: &[u8]) -> Result<(), HllError> {
    if s.len() < HDR || &s[..4] != b"HYLL" || s[4] > 1 || (s[4] == DENSE && s.len() != DENSE_SIZE) {
        return Err(HllError::NotHll);
    }
    Ok(())
}

pub fn is_dense(s: &[u8]) -> bool {
    s.get(4) == Some(&DENSE)
}

pub fn invalidate_cache(s: &mut [u8]) {
    if let Some(b) = s.get_mut(15) {
        *b |= 0x80;
    }
}

pub fn cached(s: &[u8]) -> Option<u64> {
    if s.len() < HDR || s[15] & 0x80 != 0 {
        return None;
    }
    Some(u64::from_le_bytes([s[8], s[9], s[10], s[11], s[12], s[13], s[14], s[15]]))
}

pub fn set_cache(s: &mut [u8], card: u64) {
    if s.len() >= HDR {
        s[8..16].copy_from_slice(&card.to_le_bytes());
    }
}

/// Converts a sparse HLL to dense in place. Err if the sparse data is corrupt.
pub fn to_dense(s: &mut Vec<u8>) -> Result<(), HllError> {
    if is_dense(s) {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR].copy_from_slice(&s[..HDR]);
    dense[4] = DENSE;
    let mut idx = 0usize;
    let mut p = HDR;
    while p < s.len() {
        let b = s[p];
        if is_zero(b) {
            idx += zero_len(b);
            p += 1;
        } else if is_xzero(b) {
            let Some(&b1) = s.get(p + 1) else { return Err(HllError::Corrupt) };
            idx += xzero_len(b, b1);
            p += 2;
        } else {
            let (len, v) = (val_len(b), val_value(b));
            if idx + len > REGISTERS {
                return Err(HllError::Corrupt);
            }
            for _ in 0..len {
                dense_set(&mut dense[HDR..], idx, v);
                idx += 1;
            }
            p += 1;
        }
        if idx > REGISTERS {
            return Err(HllError::Corrupt);
        }
    }
    if idx != REGISTERS {
        return Err(HllError::Corrupt);
    }
    *s = dense;
    Ok(())
}

/// Sets register `index` to `count` if larger. Ok(true) if it changed; may promote to dense.
pub fn set(s: &mut Vec<u8>, index: usize, count: u8, sparse_max: usize) -> Result<bool, HllError> {
    if is_dense(s) {
        let regs = &mut s[HDR..];
        if count > dense_get(regs, index) {
            dense_set(regs, index, count);
            return Ok(true);
        }
        return Ok(false);
    }
    if count > VAL_MAX_VALUE {
        return promote(s, index, count);
    }
    // Step 1: find the opcode covering `index`.
    let end = s.len();
    let mut p = HDR;
    let mut first = 0usize;
    let mut prev: Option<usize> = None;
    let mut span = 0usize;
    while p < end {
        let b = s[p];
        let oplen;
        if is_zero(b) {
            span = zero_len(b);
            oplen = 1;
        } else if b & 0x80 != 0 {
            span = val_len(b);
            oplen = 1;
        } else {
            let Some(&b1) = s.get(p + 1) else { return Err(HllError::Corrupt) };
            span = xzero_len(b, b1);
            oplen = 2;
        }
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(HllError::Corrupt);
    }
    let b = s[p];
    let (zero, xzero, val) = (is_zero(b), is_xzero(b), b & 0x80 != 0);
    let runlen = if zero {
        zero_len(b)
    } else if xzero {
        xzero_len(b, s[p + 1])
    } else {
        val_len(b)
    };
    // Step 2: the easy in-place cases.
    let mut done = false;
    if val {
        if val_value(b) >= count {
            return Ok(false);
        }
        if runlen == 1 {
            s[p] = val_op(count, 1);
            done = true;
        }
    }
    if !done && zero && runlen == 1 {
        s[p] = val_op(count, 1);
        done = true;
    }
    if !done {
        // The general case: split the opcode into up to three.
        let last = first + span - 1;
        let mut seq: Vec<u8> = Vec::with_capacity(5);
        if zero || xzero {
            if index != first {
                let len = index - first;
                if len > ZERO_MAX_LEN {
                    seq.extend_from_slice(&xzero_op(len));
                } else {
                    seq.push(zero_op(len));
                }
            }
            seq.push(val_op(count, 1));
            if index != last {
                let len = last - index;
                if len > ZERO_MAX_LEN {
                    seq.extend_from_slice(&xzero_op(len));
                } else {
                    seq.push(zero_op(len));
                }
            }
        } else {
            let cur = val_value(b);
            if index != first {
                seq.push(val_op(cur, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(cur, last - index));
            }
        }
        let oldlen = if xzero { 2 } else { 1 };
        if seq.len() > oldlen && s.len() + seq.len() - oldlen > sparse_max {
            return promote(s, index, count);
        }
        s.splice(p..p + oldlen, seq);
    }
    // Step 4: merge adjacent VAL opcodes with the same value, scanning at most 5 opcodes
    // from the one before the change.
    let mut q = prev.unwrap_or(HDR);
    let mut scan = 5;
    while q < s.len() && scan > 0 {
        scan -= 1;
        let b = s[q];
        if is_xzero(b) {
            q += 2;
            continue;
        } else if is_zero(b) {
            q += 1;
            continue;
        }
        if q + 1 < s.len() && s[q + 1] & 0x80 != 0 {
            let (v1, v2) = (val_value(b), val_value(s[q + 1]));
            if v1 == v2 {
                let len = val_len(b) + val_len(s[q + 1]);
                if len <= VAL_MAX_LEN {
                    s[q + 1] = val_op(v1, len);
                    s.remove(q);
                    continue;
                }
            }
        }
        q += 1;
    }
    invalidate_cache(s);
    Ok(true)
}

fn promote(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    to_dense(s)?;
    let regs = &mut s[HDR..];
    if count > dense_get(regs, index) {
        dense_set(regs, index, count);
    }
    Ok(true)
}

/// Adds an element; Ok(true) if a register changed.
pub fn add(s: &mut Vec<u8>, ele: &[u8], sparse_max: usize) -> Result<bool, HllError> {
    let (index, count) = pattern(ele);
    set(s, index, count, sparse_max)
}

/// All registers as bytes (for merging and counting many keys). Err if corrupt.
pub fn registers(s: &[u8]) -> Result<Vec<u8>, HllError> {
    let mut out = vec![0u8; REGISTERS];
    merge_into(&mut out, s)?;
    Ok(out)
}

/// max[i] = MAX(max[i], hll[i]).
pub fn merge_into(max: &mut [u8], s: &[u8]) -> Result<(), HllError> {
    if is_dense(s) {
        // Four 6-bit registers in every three bytes, little-endian within the bytes.
        let regs = &s[HDR..];
        for (c, m) in regs.chunks_exact(3).zip(max.chunks_exact_mut(4)) {
            let vals = [c[0] & 63, (c[0] >> 6 | c[1] << 2) & 63, (c[1] >> 4 | c[2] << 4) & 63, c[2] >> 2];
            for (m, v) in m.iter_mut().zip(vals) {
                if v > *m {
                    *m = v;
                }
            }
        }
        return Ok(());
    }
    let mut i = 0usize;
    let mut p = HDR;
    while p < s.len() {
        let b = s[p];
        if is_zero(b) {
            i += zero_len(b);
            p += 1;
        } else if is_xzero(b) {
            let Some(&b1) = s.get(p + 1) else { return Err(HllError::Corrupt) };
            i += xzero_len(b, b1);
            p += 2;
        } else {
            let (len, v) = (val_len(b), val_value(b));
            if i + len > REGISTERS {
                return Err(HllError::Corrupt);
            }
            for m in &mut max[i..i + len] {
                if v > *m {
                    *m = v;
                }
            }
            i += len;
            p += 1;
        }
        if i > REGISTERS {
            return Err(HllError::Corrupt);
        }
    }
    if i != REGISTERS {
        return Err(HllError::Corrupt);
    }
    Ok(())
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let zp = z;
        z += x * y;
        y += y;
        if zp == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let zp = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if zp == z {
            return z / 3.0;
        }
    }
}

/// Ertl's estimator over the register histogram, as Redis's hllCount.
pub fn estimate(regs: &[u8]) -> u64 {
    let m = REGISTERS as f64;
    let mut histo = [0u64; 64];
    for &r in regs.iter().take(REGISTERS) {
        histo[(r & 63) as usize] += 1;
    }
    let mut z = m * tau((m - histo[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// PFCOUNT of one HLL value: the cached cardinality, or computed (and the cache updated).
pub fn count(s: &mut [u8]) -> Result<u64, HllError> {
    if let Some(c) = cached(s) {
        return Ok(c);
    }
    let regs = registers(s)?;
    let c = estimate(&regs);
    set_cache(s, c);
    Ok(c)
}

/// PFDEBUG DECODE's text for a sparse HLL.
pub fn decode_sparse(s: &[u8]) -> Result<String, HllError> {
    let mut out = String::new();
    let mut p = HDR;
    while p < s.len() {
        let b = s[p];
        if is_zero(b) {
            out.push_str(&format!("z:{} ", zero_len(b)));
            p += 1;
        } else if is_xzero(b) {
            let Some(&b1) = s.get(p + 1) else { return Err(HllError::Corrupt) };
            out.push_str(&format!("Z:{} ", xzero_len(b, b1)));
            p += 2;
        } else {
            out.push_str(&format!("v:{},{} ", val_value(b), val_len(b)));
            p += 1;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile bytes after a valid header: every entry point returns an error or a value,
    /// never panics.
    #[test]
    fn hostile_sparse_bytes_never_panic() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for _ in 0..3000 {
            let mut s = new_hll();
            s.truncate(HDR);
            let n = rng.random_range(0..40);
            for _ in 0..n {
                s.push(rng.random_range(0..=255u8));
            }
            let _ = validate(&s);
            let _ = registers(&s);
            let _ = decode_sparse(&s);
            let mut c = s.clone();
            let _ = count(&mut c);
            let mut t = s.clone();
            let _ = add(&mut t, b"x", 3000);
            let mut d = s.clone();
            let _ = to_dense(&mut d);
        }
    }

    #[test]
    fn dense_registers_round_trip() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR];
        for i in 0..REGISTERS {
            dense_set(&mut regs, i, (i * 7 % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), (i * 7 % 64) as u8);
        }
    }

    #[test]
    fn sparse_and_dense_agree_and_estimate_is_close() {
        let mut s = new_hll();
        let mut d = new_hll();
        to_dense(&mut d).unwrap();
        for i in 0..20000u32 {
            let e = format!("element-{i}");
            add(&mut s, e.as_bytes(), 3000).unwrap();
            add(&mut d, e.as_bytes(), 3000).unwrap();
        }
        assert_eq!(registers(&s).unwrap(), registers(&d).unwrap());
        let c = estimate(&registers(&d).unwrap()) as f64;
        assert!((c - 20000.0).abs() / 20000.0 < 0.03, "{c}");
    }
}

#[cfg(test)]
mod accuracy {
    use super::*;

    /// PFCOUNT's error stays within Redis's expected bounds (standard error 0.81%; we allow
    /// 3 standard errors) at several cardinalities.
    #[test]
    fn estimate_error_within_bounds() {
        let mut h = new_hll();
        let mut next = 0u64;
        for target in [1_000u64, 100_000, 1_000_000, 10_000_000] {
            while next < target {
                add(&mut h, &next.to_le_bytes(), 3000).unwrap();
                next += 1;
            }
            let est = estimate(&registers(&h).unwrap()) as f64;
            let err = (est - target as f64).abs() / target as f64;
            assert!(err < 3.0 * 0.0081, "cardinality {target}: estimate {est}, error {err:.4}");
        }
    }
}
