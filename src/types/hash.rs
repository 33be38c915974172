//! The hash type: `listpack` (a [`Packed`] of field, value, field, value…) while small, a
//! `hashtable` ([`Dict`]) once it has more than `hash-max-listpack-entries` fields or a field or
//! value longer than `hash-max-listpack-value` bytes. Like Redis, a hash never converts back.

use rand::Rng;

use super::packed::MapPack as Packed;
use crate::util::dict::Dict;
use crate::util::smallbytes::SmallBytes;

/// Conversion thresholds, read from the configuration at each write.
#[derive(Debug, Clone, Copy)]
pub struct HashLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

pub enum HashValue {
    Packed(Packed),
    /// Boxed so a small (packed) hash does not pay for the table header.
    Table(Box<Dict<SmallBytes, SmallBytes>>),
}

impl Clone for HashValue {
    fn clone(&self) -> Self {
        match self {
            HashValue::Packed(p) => HashValue::Packed(p.clone()),
            HashValue::Table(d) => {
                let mut n = Dict::new();
                for (k, v) in d.iter() {
                    n.insert_new(k.clone(), v.clone());
                }
                HashValue::Table(Box::new(n))
            }
        }
    }
}

impl std::fmt::Debug for HashValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({} fields, {})", self.len(), self.encoding_name())
    }
}

impl PartialEq for HashValue {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(f, v)| other.get(f) == Some(v))
    }
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::Packed(Packed::new())
    }
}

impl HashValue {
    pub fn encoding_name(&self) -> &'static str {
        match self {
            HashValue::Packed(_) => "listpack",
            HashValue::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            HashValue::Packed(p) => p.len() / 2,
            HashValue::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            HashValue::Packed(p) => {
                let mut it = p.iter();
                while let Some(f) = it.next() {
                    let v = it.next()?;
                    if f == field {
                        return Some(v);
                    }
                }
                None
            }
            HashValue::Table(d) => d.get(field).map(|v| v.as_slice()),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    fn convert(&mut self) {
        if let HashValue::Packed(p) = self {
            let mut d = Dict::new();
            let mut it = p.iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                d.insert(SmallBytes::new(f), SmallBytes::new(v));
            }
            *self = HashValue::Table(Box::new(d));
        }
    }

    /// Converts now if the thresholds say a packed hash is too big (CONFIG SET lowered them, or
    /// a value is about to be written).
    fn fit(&mut self, limits: HashLimits, field: &[u8], value: &[u8], adding: bool) {
        if let HashValue::Packed(p) = self {
            let n = p.len() / 2 + adding as usize;
            if n > limits.max_entries || field.len() > limits.max_value || value.len() > limits.max_value {
                self.convert();
            }
        }
    }

    /// Sets a batch of field/value pairs (HSET/HMSET) and returns how many fields are new. The
    /// result, encoding included, is that of setting them one by one, but a packed hash is
    /// resized once for all the new fields.
    pub fn set_pairs(&mut self, pairs: &[bytes::Bytes], limits: HashLimits) -> usize {
        if let HashValue::Packed(_) = self
            && pairs.iter().any(|b| b.len() > limits.max_value)
        {
            self.convert();
        }
        // While packed: replace in place, collect new fields, and stop at the first new field
        // that would pass the entry limit — the rest go to the table, so a huge HSET never
        // scans its own pending fields more than the limit allows.
        let mut applied = 0;
        let mut added = 0;
        if let HashValue::Packed(p) = self {
            let mut fresh: Vec<(&[u8], &[u8])> = Vec::new();
            for pair in pairs.chunks_exact(2) {
                let (f, v) = (&pair[0][..], &pair[1][..]);
                if let Some(i) = p.position(f, 2) {
                    p.replace(i + 1, v);
                } else if let Some(e) = fresh.iter_mut().find(|e| e.0 == f) {
                    e.1 = v;
                } else if p.len() / 2 + fresh.len() < limits.max_entries {
                    fresh.push((f, v));
                } else {
                    break;
                }
                applied += 2;
            }
            p.extend(fresh.iter().flat_map(|&(f, v)| [f, v]));
            added = fresh.len();
            if applied == pairs.len() - pairs.len() % 2 {
                return added;
            }
            self.convert();
        }
        let HashValue::Table(d) = self else { return added };
        added
            + pairs[applied..]
                .chunks_exact(2)
                .filter(|pair| d.insert(SmallBytes::new(&pair[0]), SmallBytes::new(&pair[1])).is_none())
                .count()
    }

    /// Sets a field; returns true if the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: HashLimits) -> bool {
        let exists = self.contains(field);
        self.fit(limits, field, value, !exists);
        match self {
            HashValue::Packed(p) => {
                if let Some(i) = p.position(field, 2) {
                    p.replace(i + 1, value);
                    false
                } else {
                    p.extend([field, value]);
                    true
                }
            }
            HashValue::Table(d) => d.insert(SmallBytes::new(field), SmallBytes::new(value)).is_none(),
        }
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            HashValue::Packed(p) => match p.position(field, 2) {
                Some(i) => {
                    p.remove_range(i, 2);
                    true
                }
                None => false,
            },
            HashValue::Table(d) => {
                let removed = d.remove(field).is_some();
                if removed {
                    d.shrink_if_needed();
                }
                removed
            }
        }
    }

    /// Field/value pairs in the hash's own order (insertion order while packed).
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            HashValue::Packed(p) => {
                let mut it = p.iter();
                Box::new(std::iter::from_fn(move || Some((it.next()?, it.next()?))))
            }
            HashValue::Table(d) => Box::new(d.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))),
        }
    }

    /// A random field/value pair.
    pub fn random<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<(&[u8], &[u8])> {
        use rand::RngExt;
        match self {
            HashValue::Packed(p) => {
                let n = p.len() / 2;
                if n == 0 {
                    return None;
                }
                let i = rng.random_range(0..n);
                Some((p.get(2 * i)?, p.get(2 * i + 1)?))
            }
            HashValue::Table(d) => d.random(rng).map(|(k, v)| (k.as_slice(), v.as_slice())),
        }
    }

    /// One HSCAN step. A packed hash is returned whole with cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match self {
            HashValue::Packed(_) => {
                for (k, v) in self.iter() {
                    f(k, v);
                }
                0
            }
            HashValue::Table(d) => d.scan(cursor, |k, v| f(k, v)),
        }
    }

    /// Approximate heap bytes (MEMORY USAGE).
    pub fn mem_usage(&self) -> usize {
        match self {
            HashValue::Packed(p) => p.bytes(),
            HashValue::Table(d) => {
                d.slots() * 8 + d.iter().map(|(k, v)| 64 + k.heap_size() + v.heap_size()).sum::<usize>()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn pairs(n: usize, dup_every: usize) -> Vec<Bytes> {
        (0..n)
            .flat_map(|i| {
                let f = if dup_every > 0 && i % dup_every == 0 { 0 } else { i };
                [Bytes::from(format!("f{f}")), Bytes::from(format!("v{i}"))]
            })
            .collect()
    }

    /// The batch path ends where setting the pairs one by one ends: same fields, values,
    /// count of new fields and encoding — and a huge batch stays linear.
    #[test]
    fn set_pairs_matches_one_by_one() {
        let limits = HashLimits { max_entries: 8, max_value: 64 };
        for (n, dup) in [(3, 0), (8, 0), (9, 0), (20, 3), (100_000, 7)] {
            let args = pairs(n, dup);
            let mut batch = HashValue::default();
            batch.set(b"f1", b"old", limits);
            let added = batch.set_pairs(&args, limits);
            let mut single = HashValue::default();
            single.set(b"f1", b"old", limits);
            let expect: usize = args.chunks(2).map(|p| single.set(&p[0], &p[1], limits) as usize).sum();
            assert_eq!(added, expect, "{n}");
            assert_eq!(batch.encoding_name(), single.encoding_name(), "{n}");
            assert!(batch == single, "{n}");
        }
    }
}
