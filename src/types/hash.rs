//! The hash type: `listpack` (a [`Packed`] of field, value, field, value…) while small, a
//! `hashtable` ([`Dict`]) once it has more than `hash-max-listpack-entries` fields or a field or
//! value longer than `hash-max-listpack-value` bytes. Like Redis, a hash never converts back.
//!
//! # Field TTLs (Redis 7.4's hash-field expiration)
//! A small hash that gets its first field deadline becomes `listpackex`: triplets of field,
//! value and deadline (6 bytes little-endian, or an empty entry for none), 7 bytes more per
//! expiring field, with a lower bound of its earliest deadline (`min`) so "is anything
//! due?" is one comparison on every access (made exact whenever [`HashValue::purge`] runs).
//! A table keeps a deadline in every node (a node is 56 bytes without it and 64 with it, and
//! jemalloc hands out 64 either way) and its expiring fields in an [`ExpiryIndex`] (6 bytes
//! each), so due fields are found in order without a scan. Deadlines are Unix ms; a field is
//! gone once its deadline is strictly in the past (Redis's hashTypeIsExpired).

use rand::Rng;

use super::hash_pack::HashPack;
use super::packed::MapPack as Packed;
use crate::util::dict::Dict;
use crate::util::expiry_index::{ExpiryIndex, HASH_BITS, Slot};
use crate::util::smallbytes::SmallBytes;
use crate::util::thin::{Either, EitherMut, EitherRef};

/// Conversion thresholds, read from the configuration at each write.
#[derive(Debug, Clone, Copy)]
pub struct HashLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

/// Deadline bookkeeping of a `listpackex` hash.
#[derive(Debug, Default, Clone, Copy)]
pub struct TtlMeta {
    /// A lower bound of the earliest field deadline; 0 = none.
    min: u64,
    /// The deadline under which the keyspace indexed this hash for active expiry (0 = not
    /// indexed). Only the keyspace sets it.
    indexed: u64,
}

/// A table field's value and deadline (0 = none).
#[derive(Clone)]
pub struct TableVal {
    v: SmallBytes,
    at: u64,
}

pub struct PackedEx {
    p: Packed,
    ttl: TtlMeta,
}

pub struct Table {
    d: Dict<SmallBytes, TableVal>,
    /// The expiring fields' deadlines (see [`slot_of`]).
    idx: ExpiryIndex,
    /// As [`TtlMeta::indexed`].
    indexed: u64,
}

/// One pointer inside a [`super::Value`]: the packed encoding as is, or a box holding the
/// larger encodings (so a small hash does not pay for their headers).
pub struct HashValue(Either<HashPack, Boxed>);

pub enum Boxed {
    /// Field, value, deadline triplets (see the module doc).
    Ex(PackedEx),
    /// Boxed again so a `listpackex` hash's box stays small.
    Table(Box<Table>),
}

/// A hash's encoding, borrowed.
enum Enc<'a> {
    Packed(&'a HashPack),
    Ex(&'a PackedEx),
    Table(&'a Table),
}

enum EncMut<'a> {
    Packed(&'a mut HashPack),
    Ex(&'a mut PackedEx),
    Table(&'a mut Table),
}

/// A deadline as a listpackex entry: 6 bytes little-endian (deadlines stay below 2^48 ms,
/// as in Redis), or empty for none.
fn at_entry(at: u64) -> [u8; 6] {
    let b = at.min((1 << 48) - 1).to_le_bytes();
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

fn at_of(e: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = e.len().min(8);
    b[..n].copy_from_slice(&e[..n]);
    u64::from_le_bytes(b)
}

/// Whether a field with deadline `at` is gone at `now`.
fn due(at: u64, now: u64) -> bool {
    at != 0 && at < now
}

impl Clone for HashValue {
    fn clone(&self) -> Self {
        match self.enc() {
            Enc::Packed(p) => HashValue::packed(p.clone()),
            Enc::Ex(x) => HashValue::ex(PackedEx { p: x.p.clone(), ttl: x.ttl }),
            Enc::Table(t) => {
                // The copy hashes with its own seed: its deadline index is rebuilt.
                let mut n = Table::new();
                for (k, e) in t.d.iter() {
                    n.d.insert_new(k.clone(), TableVal { v: e.v.clone(), at: 0 });
                    if e.at != 0 {
                        n.set_ttl(k, e.at);
                    }
                }
                n.indexed = t.indexed;
                HashValue::table(n)
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
        self.len() == other.len() && self.iter_ttl().all(|(f, v, at)| other.get_with_ttl(f) == Some((v, at)))
    }
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::packed(HashPack::default())
    }
}

/// Field deadlines of a table, in order: an [`ExpiryIndex`] entry per expiring field (6
/// bytes: deadline and the low bits of the field's hash), so expired fields are found
/// without a scan, as the keyspace finds expired keys.
fn slot_of(d: &Dict<SmallBytes, TableVal>, field: &[u8], at: u64) -> Slot {
    Slot::new(at, d.hash(field))
}

impl Table {
    fn new() -> Self {
        Table { d: Dict::new(), idx: ExpiryIndex::new(), indexed: 0 }
    }

    /// Sets a field; true if it is new. The field's deadline goes unless `keep_ttl`.
    fn set(&mut self, field: &[u8], value: &[u8], keep_ttl: bool) -> bool {
        let Some(old) = self.d.insert(SmallBytes::new(field), TableVal { v: SmallBytes::new(value), at: 0 }) else {
            return true;
        };
        if old.at != 0 {
            if keep_ttl {
                if let Some(e) = self.d.get_mut(field) {
                    e.at = old.at;
                }
            } else {
                let s = slot_of(&self.d, field, old.at);
                self.idx.remove(s);
            }
        }
        false
    }

    fn set_ttl(&mut self, field: &[u8], at: u64) -> bool {
        let h = self.d.hash(field);
        let Some(e) = self.d.get_mut(field) else { return false };
        let old = std::mem::replace(&mut e.at, at);
        if old != 0 {
            self.idx.remove(Slot::new(old, h));
        }
        if at != 0 {
            self.idx.insert(Slot::new(at, h));
        }
        true
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let Some((_, e)) = self.d.remove(field) else { return false };
        if e.at != 0 {
            let s = slot_of(&self.d, field, e.at);
            self.idx.remove(s);
        }
        self.d.shrink_if_needed();
        true
    }

    fn purge(&mut self, now: u64, limit: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut n = 0;
        while let Some(slot) = self.idx.first() {
            if !due(slot.at, now) || n >= limit {
                break;
            }
            self.idx.pop_first();
            let found = self
                .d
                .find_by_hash_bits(slot.hash_bits, HASH_BITS, |_, e| Slot::new(e.at, 0).at == slot.at)
                .map(|(k, _)| k.clone());
            if let Some(k) = found {
                self.d.remove(&k);
                f(&k);
                n += 1;
            }
        }
        if n > 0 {
            self.d.shrink_if_needed();
        }
        n
    }
}

impl PackedEx {
    /// Index of `field`'s triplet.
    fn find(&self, field: &[u8]) -> Option<usize> {
        self.p.position(field, 3)
    }

    fn at(&self, i: usize) -> u64 {
        self.p.get(i + 2).map_or(0, at_of)
    }

    fn set_ttl(&mut self, field: &[u8], at: u64) -> bool {
        let Some(i) = self.find(field) else { return false };
        let old = self.at(i);
        if old == at {
            return true;
        }
        if at == 0 {
            self.p.replace(i + 2, b"");
        } else {
            self.p.replace(i + 2, &at_entry(at));
            if self.ttl.min == 0 || at < self.ttl.min {
                self.ttl.min = at;
            }
        }
        true
    }

    fn purge(&mut self, now: u64, f: &mut dyn FnMut(&[u8])) -> usize {
        if !due(self.ttl.min, now) {
            return 0;
        }
        let (mut min, mut n) = (0u64, 0usize);
        let mut keep: Vec<&[u8]> = Vec::with_capacity(self.p.len());
        let mut it = self.p.iter();
        while let (Some(fl), Some(v), Some(t)) = (it.next(), it.next(), it.next()) {
            let at = at_of(t);
            if due(at, now) {
                f(fl);
                n += 1;
                continue;
            }
            if at != 0 && (min == 0 || at < min) {
                min = at;
            }
            keep.extend([fl, v, t]);
        }
        let p = Packed::from_entries(keep.iter().copied());
        self.p = p;
        self.ttl.min = min;
        n
    }
}

impl HashValue {
    fn packed(p: HashPack) -> Self {
        HashValue(Either::left(p))
    }

    fn ex(x: PackedEx) -> Self {
        HashValue(Either::right(Box::new(Boxed::Ex(x))))
    }

    fn table(t: Table) -> Self {
        HashValue(Either::right(Box::new(Boxed::Table(Box::new(t)))))
    }

    /// See [`super::Value::prefetch_member`].
    pub fn prefetch_member(&self, h: usize, node: bool) {
        if let Enc::Table(t) = self.enc() {
            t.d.prefetch(h, node);
        }
    }

    /// Whether this is the plain `listpack` encoding (one allocation, no deadlines).
    /// DEBUG HTSTATS-KEY: the hash table's statistics, when the hash is one.
    pub fn table_stats(&self) -> Option<String> {
        match self.enc() {
            Enc::Table(t) => Some(t.d.stats()),
            _ => None,
        }
    }

    pub fn is_packed(&self) -> bool {
        matches!(self.0.get(), EitherRef::Left(_))
    }

    fn enc(&self) -> Enc<'_> {
        match self.0.get() {
            EitherRef::Left(p) => Enc::Packed(p),
            EitherRef::Right(Boxed::Ex(x)) => Enc::Ex(x),
            EitherRef::Right(Boxed::Table(t)) => Enc::Table(t),
        }
    }

    fn enc_mut(&mut self) -> EncMut<'_> {
        match self.0.get_mut() {
            EitherMut::Left(p) => EncMut::Packed(p),
            EitherMut::Right(Boxed::Ex(x)) => EncMut::Ex(x),
            EitherMut::Right(Boxed::Table(t)) => EncMut::Table(t),
        }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self.enc() {
            Enc::Packed(_) => "listpack",
            Enc::Ex(_) => "listpackex",
            Enc::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match self.enc() {
            Enc::Packed(p) => p.len(),
            Enc::Ex(x) => x.p.len() / 3,
            Enc::Table(t) => t.d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.get_with_ttl(field).map(|(v, _)| v)
    }

    /// A field's value and deadline (0 = none).
    pub fn get_with_ttl(&self, field: &[u8]) -> Option<(&[u8], u64)> {
        match self.enc() {
            Enc::Packed(p) => p.get(field).map(|v| (v, 0)),
            Enc::Ex(x) => {
                let mut it = x.p.iter();
                while let Some(f) = it.next() {
                    let (v, t) = (it.next()?, it.next()?);
                    if f == field {
                        return Some((v, at_of(t)));
                    }
                }
                None
            }
            Enc::Table(t) => t.d.get(field).map(|e| (e.v.as_slice(), e.at)),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// How many fields have a deadline.
    pub fn ttl_count(&self) -> usize {
        match self.enc() {
            Enc::Packed(_) => 0,
            // A scan: a listpackex is small, and this is asked on writes of deadlines only.
            Enc::Ex(x) => x.p.iter().skip(2).step_by(3).filter(|t| !t.is_empty()).count(),
            Enc::Table(t) => t.idx.len(),
        }
    }

    pub fn has_ttls(&self) -> bool {
        self.ttl_count() > 0
    }

    /// At most the earliest field deadline (exact right after [`HashValue::purge`]); 0 = none.
    pub fn min_ttl(&self) -> u64 {
        match self.enc() {
            Enc::Packed(_) => 0,
            Enc::Ex(x) => x.ttl.min,
            Enc::Table(t) => t.idx.first().map_or(0, |s| s.at),
        }
    }

    /// Whether some field may be due at `now` (one comparison: see [`HashValue::min_ttl`]).
    #[inline]
    pub fn may_have_due(&self, now: u64) -> bool {
        !self.is_packed() && due(self.min_ttl(), now)
    }

    /// Whether every field is due at `now` (so the hash goes as a whole).
    pub fn all_due(&self, now: u64) -> bool {
        match self.enc() {
            Enc::Packed(_) => false,
            Enc::Ex(x) => x.p.iter().skip(2).step_by(3).all(|t| due(at_of(t), now)),
            Enc::Table(t) => t.idx.len() == t.d.len() && t.idx.last().is_some_and(|s| due(s.at, now)),
        }
    }

    /// The deadline the keyspace indexed this hash under (0 = none); see [`TtlMeta`].
    pub fn indexed(&self) -> u64 {
        match self.enc() {
            Enc::Packed(_) => 0,
            Enc::Ex(x) => x.ttl.indexed,
            Enc::Table(t) => t.indexed,
        }
    }

    pub fn set_indexed(&mut self, at: u64) {
        match self.enc_mut() {
            EncMut::Packed(_) => {}
            EncMut::Ex(x) => x.ttl.indexed = at,
            EncMut::Table(t) => t.indexed = at,
        }
    }

    fn convert(&mut self) {
        let mut t = Table::new();
        match self.enc() {
            Enc::Packed(p) => {
                for (f, v) in p.iter() {
                    t.set(f, v, false);
                }
            }
            Enc::Ex(x) => {
                let mut it = x.p.iter();
                while let (Some(f), Some(v), Some(at)) = (it.next(), it.next(), it.next()) {
                    t.set(f, v, false);
                    let at = at_of(at);
                    if at != 0 {
                        t.set_ttl(f, at);
                    }
                }
                t.indexed = x.ttl.indexed;
            }
            Enc::Table(_) => return,
        }
        *self = HashValue::table(t);
    }

    /// A packed hash becomes `listpackex` (before its first field deadline).
    fn make_ex(&mut self) {
        if let Enc::Packed(p) = self.enc() {
            let mut entries: Vec<&[u8]> = Vec::with_capacity(p.len() * 3);
            for (f, v) in p.iter() {
                entries.extend([f, v, b""]);
            }
            let p = Packed::from_entries(entries.iter().copied());
            *self = HashValue::ex(PackedEx { p, ttl: TtlMeta::default() });
        }
    }

    /// Converts now if the thresholds say a packed hash is too big (CONFIG SET lowered them, or
    /// a value is about to be written).
    fn fit(&mut self, limits: HashLimits, field: &[u8], value: &[u8], adding: bool) {
        if matches!(self.enc(), Enc::Table(_)) {
            return;
        }
        let n = self.len() + adding as usize;
        if n > limits.max_entries || field.len() > limits.max_value || value.len() > limits.max_value {
            self.convert();
        }
    }

    /// Sets a batch of field/value pairs (HSET/HMSET) and returns how many fields are new. The
    /// result, encoding included, is that of setting them one by one, but a packed hash is
    /// resized once for all the new fields. Deadlines of the fields written go.
    pub fn set_pairs(&mut self, pairs: &[&[u8]], limits: HashLimits) -> usize {
        if let Enc::Ex(_) = self.enc() {
            return pairs.chunks_exact(2).filter(|p| self.set(p[0], p[1], limits)).count();
        }
        if self.is_packed() && pairs.iter().any(|b| b.len() > limits.max_value) {
            self.convert();
        }
        // While packed: replace in place, collect new fields, and stop at the first new field
        // that would pass the entry limit — the rest go to the table, so a huge HSET never
        // scans its own pending fields more than the limit allows.
        let mut applied = 0;
        let mut added = 0;
        if let EncMut::Packed(p) = self.enc_mut() {
            let mut fresh: Vec<(&[u8], &[u8])> = Vec::new();
            for pair in pairs.chunks_exact(2) {
                let (f, v) = (pair[0], pair[1]);
                if let Some(i) = p.position(f) {
                    p.set_value(i, v);
                } else if let Some(e) = fresh.iter_mut().find(|e| e.0 == f) {
                    e.1 = v;
                } else if p.len() + fresh.len() < limits.max_entries {
                    fresh.push((f, v));
                } else {
                    break;
                }
                applied += 2;
            }
            p.extend(fresh.iter().copied());
            added = fresh.len();
            if applied == pairs.len() - pairs.len() % 2 {
                return added;
            }
            self.convert();
        }
        let EncMut::Table(t) = self.enc_mut() else { return added };
        added + pairs[applied..].chunks_exact(2).filter(|pair| t.set(pair[0], pair[1], false)).count()
    }

    /// Sets a field (HSET: its deadline goes); returns true if the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: HashLimits) -> bool {
        self.set_field(field, value, limits, false)
    }

    /// Sets a field and keeps its deadline (HINCRBY, HSETEX KEEPTTL); true if the field is new.
    pub fn set_keep_ttl(&mut self, field: &[u8], value: &[u8], limits: HashLimits) -> bool {
        self.set_field(field, value, limits, true)
    }

    fn set_field(&mut self, field: &[u8], value: &[u8], limits: HashLimits, keep_ttl: bool) -> bool {
        let exists = self.contains(field);
        self.fit(limits, field, value, !exists);
        match self.enc_mut() {
            EncMut::Packed(p) => {
                if let Some(i) = p.position(field) {
                    p.set_value(i, value);
                    false
                } else {
                    p.extend([(field, value)]);
                    true
                }
            }
            EncMut::Ex(x) => {
                if let Some(i) = x.find(field) {
                    x.p.replace(i + 1, value);
                    if !keep_ttl && x.at(i) != 0 {
                        x.set_ttl(field, 0);
                    }
                    false
                } else {
                    x.p.extend([field, value, b""]);
                    true
                }
            }
            EncMut::Table(t) => t.set(field, value, keep_ttl),
        }
    }

    /// Sets (`at` > 0, Unix ms) or clears (0) a field's deadline; false if there is no such
    /// field.
    pub fn set_ttl(&mut self, field: &[u8], at: u64) -> bool {
        if at != 0 && self.is_packed() {
            if !self.contains(field) {
                return false;
            }
            self.make_ex();
        }
        match self.enc_mut() {
            EncMut::Packed(p) => p.position(field).is_some(),
            EncMut::Ex(x) => x.set_ttl(field, at),
            EncMut::Table(t) => t.set_ttl(field, at),
        }
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.enc_mut() {
            EncMut::Packed(p) => match p.position(field) {
                Some(i) => {
                    p.remove(i);
                    true
                }
                None => false,
            },
            EncMut::Ex(x) => match x.find(field) {
                Some(i) => {
                    x.p.remove_range(i, 3);
                    true
                }
                None => false,
            },
            EncMut::Table(t) => t.remove(field),
        }
    }

    /// Removes the fields whose deadline is past at `now`, calling `f` with each; returns how
    /// many went. A table stops after `limit` (a listpackex, small, goes whole). Afterwards
    /// [`HashValue::min_ttl`] is exact.
    pub fn purge(&mut self, now: u64, limit: usize, mut f: impl FnMut(&[u8])) -> usize {
        match self.enc_mut() {
            EncMut::Packed(_) => 0,
            EncMut::Ex(x) => x.purge(now, &mut f),
            EncMut::Table(t) => t.purge(now, limit, &mut f),
        }
    }

    /// Field/value pairs in the hash's own order (insertion order while packed).
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self.enc() {
            Enc::Table(t) => Box::new(t.d.iter().map(|(k, e)| (k.as_slice(), e.v.as_slice()))),
            _ => Box::new(self.iter_ttl().map(|(f, v, _)| (f, v))),
        }
    }

    /// Field, value and deadline (0 = none) of every field.
    pub fn iter_ttl(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8], u64)> + '_> {
        match self.enc() {
            Enc::Packed(p) => Box::new(p.iter().map(|(f, v)| (f, v, 0))),
            Enc::Ex(x) => {
                let mut it = x.p.iter();
                Box::new(std::iter::from_fn(move || Some((it.next()?, it.next()?, at_of(it.next()?)))))
            }
            Enc::Table(t) => Box::new(t.d.iter().map(|(k, e)| (k.as_slice(), e.v.as_slice(), e.at))),
        }
    }

    /// A random field/value pair.
    pub fn random<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<(&[u8], &[u8])> {
        use rand::RngExt;
        let n = self.len();
        if n == 0 {
            return None;
        }
        match self.enc() {
            Enc::Packed(p) => p.pair(rng.random_range(0..n)),
            Enc::Ex(x) => {
                let i = rng.random_range(0..n);
                Some((x.p.get(3 * i)?, x.p.get(3 * i + 1)?))
            }
            Enc::Table(t) => t.d.random(rng).map(|(k, e)| (k.as_slice(), e.v.as_slice())),
        }
    }

    /// One HSCAN step. A packed hash is returned whole with cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match self.enc() {
            Enc::Table(t) => t.d.scan(cursor, |k, e| f(k, &e.v)),
            _ => {
                for (k, v) in self.iter() {
                    f(k, v);
                }
                0
            }
        }
    }

    /// Approximate heap bytes (MEMORY USAGE).
    pub fn mem_usage(&self) -> usize {
        match self.enc() {
            Enc::Packed(p) => p.bytes(),
            Enc::Ex(x) => x.p.bytes() + std::mem::size_of::<PackedEx>(),
            Enc::Table(t) => {
                t.d.slots() * 8
                    + t.idx.heap_bytes()
                    + t.d.iter().map(|(k, e)| 64 + k.heap_size() + e.v.heap_size()).sum::<usize>()
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

    /// Deadlines through every encoding: set, cleared by a plain set, kept by
    /// `set_keep_ttl`, carried across the listpackex → table conversion and a clone (which
    /// rehashes its index), and purged in order with exact bookkeeping afterwards.
    #[test]
    fn field_deadlines_in_every_encoding() {
        let limits = HashLimits { max_entries: 4, max_value: 64 };
        let mut h = HashValue::default();
        for f in ["a", "b", "c"] {
            h.set(f.as_bytes(), b"v", limits);
        }
        assert!(!h.set_ttl(b"zz", 10));
        assert!(h.set_ttl(b"a", 100) && h.set_ttl(b"b", 50));
        assert_eq!((h.encoding_name(), h.ttl_count(), h.min_ttl()), ("listpackex", 2, 50));
        h.set_keep_ttl(b"a", b"w", limits);
        h.set(b"b", b"w", limits);
        assert_eq!(h.get_with_ttl(b"a"), Some((&b"w"[..], 100)));
        assert_eq!(h.get_with_ttl(b"b"), Some((&b"w"[..], 0)));
        h.set_ttl(b"c", 30);
        // Two more fields pass max_entries: a table, deadlines kept.
        h.set(b"d", b"v", limits);
        h.set(b"e", b"v", limits);
        assert_eq!((h.encoding_name(), h.ttl_count(), h.min_ttl()), ("hashtable", 2, 30));
        let copy = h.clone();
        assert!(copy == h);
        let mut gone = Vec::new();
        assert_eq!(h.purge(31, 0, |f| gone.push(f.to_vec())), 0, "a table stops at the limit");
        assert_eq!(h.purge(31, usize::MAX, |f| gone.push(f.to_vec())), 1);
        assert_eq!(gone, [b"c".to_vec()]);
        assert_eq!((h.len(), h.ttl_count(), h.min_ttl()), (4, 1, 100));
        assert!(!h.all_due(1000));
        assert!(h.remove(b"a"));
        assert_eq!((h.ttl_count(), h.min_ttl()), (0, 0));
        // The copy still finds its fields by its own hashes.
        let mut c = copy;
        assert_eq!(c.purge(1000, usize::MAX, |_| {}), 2);
        assert_eq!((c.len(), c.ttl_count()), (3, 0));
        // A listpackex whose fields are all due.
        let mut p = HashValue::default();
        p.set(b"x", b"1", limits);
        p.set_ttl(b"x", 5);
        assert!(p.all_due(6) && !p.all_due(5));
        assert_eq!(p.purge(6, usize::MAX, |_| {}), 1);
        assert!(p.is_empty());
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
            let added = batch.set_pairs(&crate::protocol::views(&args), limits);
            let mut single = HashValue::default();
            single.set(b"f1", b"old", limits);
            let expect: usize = args.chunks(2).map(|p| single.set(&p[0], &p[1], limits) as usize).sum();
            assert_eq!(added, expect, "{n}");
            assert_eq!(batch.encoding_name(), single.encoding_name(), "{n}");
            assert!(batch == single, "{n}");
        }
    }
}
