//! DEBUG DIGEST / DIGEST-VALUE with Redis's algorithm (debug.c), so equal datasets give equal
//! digests on Ember and on Redis whatever the encodings: per key, the key name, the type and
//! the value are mixed into a 20-byte SHA-1 state; unordered collections XOR per-element
//! digests (order-independent), lists and streams mix in order; a deadline adds a marker;
//! keys are XORed into the database's share, which is mixed with the database index.

use crate::types::Value;
use crate::util::numfmt::fmt_double;
use crate::util::sha1::sha1;

use super::Db;

fn xor(d: &mut [u8; 20], data: &[u8]) {
    let h = sha1(data);
    for (x, y) in d.iter_mut().zip(h) {
        *x ^= y;
    }
}

fn mix(d: &mut [u8; 20], data: &[u8]) {
    xor(d, data);
    *d = sha1(d);
}

/// Redis's object type numbers, mixed into each value's digest.
fn type_code(v: &Value) -> u32 {
    match v {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    }
}

/// xorObjectDigest: the value (and whether it has a deadline) folded into `d`.
pub fn value_into(d: &mut [u8; 20], v: &Value, has_expire: bool) {
    mix(d, &type_code(v).to_be_bytes());
    match v {
        Value::Str(s) => s.with_bytes(|b| mix(d, b)),
        Value::List(l) => l.iter().for_each(|e| mix(d, e)),
        Value::Set(s) => s.iter().for_each(|m| xor(d, &m)),
        Value::ZSet(z) => {
            for (m, score) in z.range(0, z.len(), false) {
                let mut e = [0u8; 20];
                mix(&mut e, m);
                mix(&mut e, fmt_double(score).as_bytes());
                xor(d, &e);
            }
        }
        Value::Hash(h) => {
            for (f, val, at) in h.iter_ttl() {
                let mut e = [0u8; 20];
                mix(&mut e, f);
                mix(&mut e, val);
                // A field deadline counts (a hash without any digests as on Redis 7.0).
                if at != 0 {
                    mix(&mut e, at.to_string().as_bytes());
                }
                xor(d, &e);
            }
        }
        Value::Stream(s) => {
            s.visit_range(
                crate::types::stream::StreamId::ZERO,
                crate::types::stream::StreamId::MAX,
                0,
                false,
                |id, flat| {
                    mix(d, format!("{}.{}", id.ms, id.seq).as_bytes());
                    for x in flat {
                        mix(d, x);
                    }
                },
            );
        }
    }
    if has_expire {
        xor(d, b"!!expire!!");
    }
}

/// DEBUG DIGEST-VALUE of one value.
pub fn value(v: &Value, has_expire: bool) -> [u8; 20] {
    let mut d = [0u8; 20];
    value_into(&mut d, v, has_expire);
    d
}

/// DEBUG DIGEST of the whole dataset (all zeros when empty). Logically expired keys still
/// count, as in Redis, which walks the tables directly.
pub fn dataset(dbs: &[Db]) -> [u8; 20] {
    let mut fin = [0u8; 20];
    for (i, db) in dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        mix(&mut fin, &(i as u32).to_be_bytes());
        for (k, e) in db.iter() {
            let mut d = [0u8; 20];
            mix(&mut d, k);
            value_into(&mut d, &e.value, e.expire_at().is_some());
            xor(&mut fin, &d);
        }
    }
    fin
}

pub fn hex(d: &[u8; 20]) -> String {
    d.iter().map(|x| format!("{x:02x}")).collect()
}
