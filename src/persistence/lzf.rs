//! LZF, the compression RDB files use for long strings (liblzf's format: literal runs of up to
//! 32 bytes and back-references of 3 to 264 bytes up to 8 KB back). Ember's compressor is its
//! own greedy one, so its output may differ from Redis's byte for byte but decodes the same.

const HASH_LOG: usize = 14;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);
const MAX_LIT: usize = 1 << 5;

thread_local! {
    /// The match table, reused across calls: stale entries from earlier inputs are harmless
    /// (every candidate is checked against the input), so it is never cleared.
    static TABLE: std::cell::RefCell<Vec<u32>> = std::cell::RefCell::new(vec![0; 1 << HASH_LOG]);
}

/// Compresses `input`; None when the result would not be shorter than `max_out` bytes.
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    TABLE.with(|t| compress_with(input, max_out, &mut t.borrow_mut()))
}

fn compress_with(input: &[u8], max_out: usize, table: &mut [u32]) -> Option<Vec<u8>> {
    let n = input.len();
    if n >= u32::MAX as usize {
        return None;
    }
    let mut out = Vec::with_capacity(max_out.min(n + n / 16 + 64));
    let mut lit_start = 0usize;
    let flush = |from: usize, to: usize, out: &mut Vec<u8>| {
        let mut i = from;
        while i < to {
            let run = (to - i).min(MAX_LIT);
            out.push((run - 1) as u8);
            out.extend_from_slice(&input[i..i + run]);
            i += run;
        }
    };
    let hash = |p: usize| {
        let v = ((input[p] as u32) << 16) | ((input[p + 1] as u32) << 8) | input[p + 2] as u32;
        ((v.wrapping_mul(2654435761)) >> (32 - HASH_LOG)) as usize
    };
    let mut ip = 0;
    while ip + 2 < n {
        let h = hash(ip);
        // Stored positions are +1 so 0 means empty.
        let cand = table[h] as usize;
        table[h] = (ip + 1) as u32;
        if cand > 0 && cand - 1 < ip {
            let r = cand - 1;
            let off = ip - r - 1;
            if off < MAX_OFF && input[r..r + 3] == input[ip..ip + 3] {
                let mut len = 3;
                while ip + len < n && len < MAX_REF && input[r + len] == input[ip + len] {
                    len += 1;
                }
                flush(lit_start, ip, &mut out);
                let l = len - 2;
                if l < 7 {
                    out.push(((off >> 8) as u8) | ((l as u8) << 5));
                } else {
                    out.push(((off >> 8) as u8) | (7 << 5));
                    out.push((l - 7) as u8);
                }
                out.push((off & 0xff) as u8);
                ip += len;
                lit_start = ip;
                if out.len() >= max_out {
                    return None;
                }
                continue;
            }
        }
        ip += 1;
        if out.len() + (ip - lit_start) >= max_out + MAX_LIT {
            return None;
        }
    }
    flush(lit_start, n, &mut out);
    (out.len() < max_out).then_some(out)
}

/// Decompresses into exactly `out_len` bytes; None on malformed input.
pub fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(out_len);
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let lit = input.get(ip..ip + run)?;
            if out.len() + run > out_len {
                return None;
            }
            out.extend_from_slice(lit);
            ip += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(ip)? as usize;
                ip += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(ip)? as usize + 1;
            ip += 1;
            let len = len + 2;
            if back > out.len() || out.len() + len > out_len {
                return None;
            }
            let start = out.len() - back;
            for i in 0..len {
                let b = out[start + i];
                out.push(b);
            }
        }
    }
    (out.len() == out_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn round_trips_and_refuses_garbage() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for len in [0usize, 1, 5, 31, 32, 33, 100, 1000, 20_000] {
            for kind in 0..3 {
                let data: Vec<u8> = (0..len)
                    .map(|i| match kind {
                        0 => b'a' + (i % 7) as u8,
                        1 => rng.random_range(0..4u8),
                        _ => rng.random::<u8>(),
                    })
                    .collect();
                if let Some(c) = compress(&data, data.len() + 100) {
                    assert_eq!(decompress(&c, data.len()).as_deref(), Some(&data[..]), "len {len} kind {kind}");
                }
            }
        }
        let c = compress(&b"abcabcabcabcabcabcabcabc".repeat(20), 1000).unwrap();
        assert!(c.len() < 100);
        for _ in 0..2000 {
            let junk: Vec<u8> = (0..rng.random_range(0..40)).map(|_| rng.random()).collect();
            let _ = decompress(&junk, rng.random_range(0..100));
        }
    }
}
