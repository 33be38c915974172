//! SipHash-1-2 of a byte slice in one pass: the hash of every table of keys, fields and
//! members, keyed once per process so clients cannot aim keys at one bucket.
//!
//! Redis hashes its dict keys with SipHash-1-2 (siphash.c); std's `DefaultHasher` is
//! SipHash-1-3 behind a streaming `Hasher` that buffers the tail byte by byte. One pass over
//! a slice, with the tail read in two overlapping loads, was ~250 instructions of a pipelined
//! SET spent hashing its key (of 2,700).

use std::sync::OnceLock;

/// SipHash's round, as in the paper.
#[inline(always)]
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

#[inline(always)]
fn le64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

#[inline(always)]
fn le32(b: &[u8]) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[..4]);
    u64::from(u32::from_le_bytes(w))
}

/// The last `m.len() % 8` bytes of `m` as a little-endian word.
#[inline(always)]
fn tail(m: &[u8]) -> u64 {
    let r = m.len() % 8;
    let t = &m[m.len() - r..];
    match r {
        0 => 0,
        // Two loads that overlap in the middle: the shared bytes are equal, so OR is exact.
        4..=7 => le32(t) | le32(&t[r - 4..]) << (8 * (r - 4)),
        _ => u64::from(t[0]) | u64::from(t[r / 2]) << (8 * (r / 2)) | u64::from(t[r - 1]) << (8 * (r - 1)),
    }
}

/// SipHash-C-D of `m` under the key (k0, k1).
#[inline]
fn sip<const C: usize, const D: usize>(k0: u64, k1: u64, m: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut compress = |w: u64| {
        v[3] ^= w;
        for _ in 0..C {
            round(&mut v);
        }
        v[0] ^= w;
    };
    let blocks = m.len() / 8;
    for i in 0..blocks {
        compress(le64(&m[i * 8..]));
    }
    compress(((m.len() as u64) << 56) | tail(m));
    v[2] ^= 0xff;
    for _ in 0..D {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The process's key, drawn at first use.
fn key() -> (u64, u64) {
    static K: OnceLock<(u64, u64)> = OnceLock::new();
    *K.get_or_init(|| (rand::random(), rand::random()))
}

/// SipHash-1-2 of `m` under the process's random key.
#[inline]
pub fn hash(m: &[u8]) -> u64 {
    let (k0, k1) = key();
    sip::<1, 2>(k0, k1, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K0: u64 = 0x0706_0504_0302_0100;
    const K1: u64 = 0x0f0e_0d0c_0b0a_0908;

    /// The reference vectors of SipHash-2-4 (key 00..0f, message 00..len-1) check the
    /// rounds, the block loop and the tail; 1-2 is the same code with fewer rounds.
    #[test]
    fn reference_vectors() {
        let msg: Vec<u8> = (0..64).collect();
        assert_eq!(sip::<2, 4>(K0, K1, &msg[..0]), 0x726f_db47_dd0e_0e31);
        assert_eq!(sip::<2, 4>(K0, K1, &msg[..15]), 0xa129_ca61_49be_45e5);
    }

    /// Every tail length reads exactly its bytes (a slow byte-by-byte model agrees).
    #[test]
    fn tails() {
        let msg: Vec<u8> = (1..=40).collect();
        for len in 0..=40 {
            let m = &msg[..len];
            let r = len % 8;
            let mut want = 0u64;
            for (i, &b) in m[len - r..].iter().enumerate() {
                want |= u64::from(b) << (8 * i);
            }
            assert_eq!(tail(m), want, "len {len}");
        }
    }

    #[test]
    fn keyed_and_spread() {
        assert_ne!(sip::<1, 2>(1, 2, b"key"), sip::<1, 2>(1, 3, b"key"));
        assert_ne!(hash(b"key:1"), hash(b"key:2"));
        // Sequential keys fill the low bits (the bucket index) evenly.
        let mut buckets = [0u32; 64];
        for i in 0..64_000 {
            buckets[(hash(format!("key:{i}").as_bytes()) & 63) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| (800..1200).contains(&n)), "{buckets:?}");
    }
}
