//! A small hash's pack (`listpack` to OBJECT ENCODING): field, value, field, value… — or,
//! when other hashes have the very same fields in the same order, its values alone and a
//! shared reference to one copy of the field names.
//!
//! # Why
//! Caches store objects as hashes, and objects of a kind have the same fields: `name`,
//! `email`, `plan` in every `user:N`. In a listpack the names are often half the bytes.
//! Here a pack whose field list is already known to the process keeps only its values
//! (8 bytes more for the reference): 10 fields of ~6 bytes move a hash from jemalloc's 160
//! class to its 96 (benches/README.md).
//!
//! # Layout
//! A plain pack is a [`MapPack`] of fields and values interleaved. A shared one is a
//! *marked* `MapPack` whose first entry is the address (8 bytes, little-endian) of an
//! `Arc<Fields>` it holds a strong count of, followed by the values in field order.
//!
//! # When
//! Every write that changes a small hash's field list (not its values) looks its names up
//! in a process-wide registry ([`intern`]). A list seen for the first time is only noted in a
//! fixed table of fingerprints; a second sighting *with other values* creates the shared copy
//! (the same names and values again are most likely the same hash again: a reload, a key
//! written anew). So hashes with names of their own do not pay for a copy of their names
//! that nobody shares, and the registry holds at most one entry per live field list (a
//! list's last holder removes it, from whichever thread drops it: lazy free runs elsewhere,
//! hence `Arc` and a mutex).

use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, Weak};

use super::packed::MapPack;
use crate::util::id_hasher::IdMap;
use crate::util::thin::ThinPtr;

/// Field lists shorter than this (in encoded bytes) stay inline: the reference costs 9.
const MIN_SHARED: usize = 24;
/// Fingerprints of field lists seen once, with their values' (direct-mapped: a collision only
/// delays sharing). 32 KiB.
const SEEN: usize = 2048;

/// One copy of a field list, shared by the hashes that have it.
pub struct Fields {
    names: MapPack,
    hash: u64,
}

impl Drop for Fields {
    fn drop(&mut self) {
        let mut reg = registry();
        // Only if the entry is still ours: a new copy may have replaced it since the last
        // strong count went (see intern).
        if reg.map.get(&self.hash).is_some_and(|w| std::ptr::eq(w.as_ptr(), self)) {
            reg.map.remove(&self.hash);
        }
    }
}

struct Registry {
    map: IdMap<u64, Weak<Fields>>,
    seen: Vec<(u64, u64)>,
}

static REGISTRY: LazyLock<Mutex<Registry>> =
    LazyLock::new(|| Mutex::new(Registry { map: IdMap::default(), seen: vec![(0, 0); SEEN] }));

fn registry() -> MutexGuard<'static, Registry> {
    // The registry holds no invariant a panic elsewhere could break half-way.
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fingerprint of byte strings: each folded by rotate and xor, one multiply per string
/// (SipHash of the names, or a multiply per word, cost more than the edit they rode on:
/// the multiplies form one dependency chain). Seeded per process; a collision only keeps
/// a list unshared (equal fingerprints are compared in full).
fn fingerprint<'a>(parts: impl Iterator<Item = &'a [u8]>) -> u64 {
    static SEED: LazyLock<u64> = LazyLock::new(rand::random);
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = *SEED;
    for p in parts {
        let mut acc = p.len() as u64;
        let mut words = p.chunks_exact(8);
        for w in &mut words {
            acc = acc.rotate_left(29) ^ u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut w = [0u8; 8];
            w[..tail.len()].copy_from_slice(tail);
            acc = acc.rotate_left(29) ^ u64::from_le_bytes(w);
        }
        h = (h ^ acc).wrapping_mul(K).rotate_left(31);
    }
    h ^ (h >> 29)
}

/// The shared copy of the list `names`, if it has been seen before with values other than
/// those `values` fingerprints (asked only for a list not yet shared). No `Arc<Fields>` is
/// ever dropped while the registry is locked (its drop locks it).
fn intern<'a>(names: impl Iterator<Item = &'a [u8]> + Clone, values: impl FnOnce() -> u64) -> Option<Arc<Fields>> {
    let hash = fingerprint(names.clone());
    let found = {
        let mut reg = registry();
        match reg.map.get(&hash).and_then(Weak::upgrade) {
            Some(a) => a,
            None => {
                let slot = hash as usize % SEEN;
                let values = values();
                let (seen, seen_values) = std::mem::replace(&mut reg.seen[slot], (hash, values));
                if seen != hash || seen_values == values {
                    return None;
                }
                let a = Arc::new(Fields { names: MapPack::from_entries(names), hash });
                // Replaces a dead entry, if any: its drop, waiting for the lock, will see
                // the entry is no longer its own.
                reg.map.insert(hash, Arc::downgrade(&a));
                return Some(a);
            }
        }
    };
    // Equal fingerprints of different lists: this one stays inline.
    found.names.iter().eq(names).then_some(found)
}

/// See the module doc.
#[derive(Default)]
#[repr(transparent)]
pub struct HashPack(MapPack);

// SAFETY: repr(transparent) over a MapPack, itself a ThinPtr; the Arc a shared pack holds is
// released by HashPack's own Drop, which Either runs when it drops its left value.
unsafe impl ThinPtr for HashPack {}

impl Clone for HashPack {
    fn clone(&self) -> Self {
        if let Some(p) = self.fields_ptr() {
            // SAFETY: `p` is live (this pack holds a count of it); the copy holds one more.
            unsafe { Arc::increment_strong_count(p) };
        }
        HashPack(self.0.clone())
    }
}

impl Drop for HashPack {
    fn drop(&mut self) {
        if let Some(p) = self.fields_ptr() {
            // SAFETY: this pack's own count, taken in share or clone, released once here.
            unsafe { Arc::decrement_strong_count(p) };
        }
    }
}

/// Field/value pairs of a [`HashPack`], in order.
#[derive(Clone)]
pub struct Pairs<'a> {
    names: Option<super::packed::Iter<'a, crate::util::thin::ThinBytes, false>>,
    vals: super::packed::Iter<'a, crate::util::thin::ThinBytes, false>,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.names {
            Some(n) => Some((n.next()?, self.vals.next()?)),
            None => Some((self.vals.next()?, self.vals.next()?)),
        }
    }
}

impl HashPack {
    fn fields_ptr(&self) -> Option<*const Fields> {
        if !self.0.marked() {
            return None;
        }
        let b: [u8; 8] = self.0.get(0)?.try_into().ok()?;
        Some(usize::from_le_bytes(b) as *const Fields)
    }

    fn fields(&self) -> Option<&Fields> {
        // SAFETY: a marked pack's first entry is the address of an Arc<Fields> it holds a
        // strong count of until it is dropped or unshared (both need &mut self).
        self.fields_ptr().map(|p| unsafe { &*p })
    }

    pub fn is_shared(&self) -> bool {
        self.0.marked()
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        if self.is_shared() { self.0.len().saturating_sub(1) } else { self.0.len() / 2 }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> Pairs<'_> {
        match self.fields() {
            Some(f) => {
                let mut vals = self.0.iter();
                vals.next();
                Pairs { names: Some(f.names.iter()), vals }
            }
            None => Pairs { names: None, vals: self.0.iter() },
        }
    }

    /// Index of `field`.
    pub fn position(&self, field: &[u8]) -> Option<usize> {
        match self.fields() {
            Some(f) => f.names.position(field, 1),
            None => self.0.position(field, 2).map(|i| i / 2),
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self.fields() {
            Some(f) => self.0.get(1 + f.names.position(field, 1)?),
            None => self.iter().find(|(f, _)| *f == field).map(|(_, v)| v),
        }
    }

    /// The `i`th field and its value.
    pub fn pair(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match self.fields() {
            Some(f) => Some((f.names.get(i)?, self.0.get(1 + i)?)),
            None => Some((self.0.get(2 * i)?, self.0.get(2 * i + 1)?)),
        }
    }

    /// Replaces the `i`th field's value (the field list stays as it is).
    pub fn set_value(&mut self, i: usize, v: &[u8]) {
        let at = if self.is_shared() { 1 + i } else { 2 * i + 1 };
        self.0.replace(at, v);
    }

    /// Appends new fields (the caller knows they are new).
    pub fn extend<'a>(&mut self, pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) {
        if !self.is_shared() {
            // In place while the names are too short to share (most small hashes).
            let entries: Vec<&[u8]> = pairs.into_iter().flat_map(|(f, v)| [f, v]).collect();
            self.0.extend(entries.iter().copied());
            if self.iter().map(|(f, _)| f.len() + 1).sum::<usize>() >= MIN_SHARED {
                let p = {
                    let (names, values) = self.columns();
                    build(&names, &values)
                };
                self.replace(p);
            }
            return;
        }
        let p = {
            let (mut names, mut values) = self.columns();
            let before = names.len();
            for (f, v) in pairs {
                names.push(f);
                values.push(v);
            }
            if names.len() == before {
                return;
            }
            build(&names, &values)
        };
        self.replace(p);
    }

    /// Removes the `i`th field.
    pub fn remove(&mut self, i: usize) {
        let p = {
            let (mut names, mut values) = self.columns();
            if i >= names.len() {
                return;
            }
            names.remove(i);
            values.remove(i);
            build(&names, &values)
        };
        self.replace(p);
    }

    /// Bytes held: the pack, and this hash's part of a shared field list (MEMORY USAGE).
    pub fn bytes(&self) -> usize {
        let shared = self.fields_ptr().map_or(0, |p| {
            // SAFETY: live, as in fields(); the count is only read.
            let a = std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(p) });
            a.names.bytes() / Arc::strong_count(&a).max(1)
        });
        self.0.bytes() + shared
    }

    /// The names and the values, in one pass (a field-list edit walks the pack once).
    fn columns(&self) -> (Vec<&[u8]>, Vec<&[u8]>) {
        let n = self.len() + 1;
        let (mut names, mut values) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (f, v) in self.iter() {
            names.push(f);
            values.push(v);
        }
        (names, values)
    }

    /// Puts `p` in place, releasing the shared list the old pack referred to.
    fn replace(&mut self, p: MapPack) {
        let old = self.fields_ptr();
        self.0 = p;
        if let Some(old) = old {
            // SAFETY: the count the replaced pack held; nothing refers to it any more.
            unsafe { Arc::decrement_strong_count(old) };
        }
    }
}

/// A pack of these fields and values: values and a reference to a shared copy of the names
/// if other hashes have them (see [`intern`]), else the two interleaved.
fn build(names: &[&[u8]], values: &[&[u8]]) -> MapPack {
    // Most hashes written are not worth a look-up.
    if names.len() >= 2
        && names.iter().map(|f| f.len() + 1).sum::<usize>() >= MIN_SHARED
        && let Some(fields) = intern(names.iter().copied(), || fingerprint(values.iter().copied()))
    {
        let addr = (Arc::into_raw(fields) as usize).to_le_bytes();
        let mut p = MapPack::from_entries(std::iter::once(&addr[..]).chain(values.iter().copied()));
        p.set_marked(true);
        return p;
    }
    MapPack::from_entries(names.iter().zip(values).flat_map(|(f, v)| [*f, *v]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pack of `n` fields named after `tag`; `vtag` tells its values apart.
    fn pack_with(n: usize, tag: &str, vtag: &str) -> HashPack {
        let f: Vec<String> = (0..n).map(|i| format!("{tag}-field-{i}")).collect();
        let v: Vec<String> = (0..n).map(|i| format!("value{i}{vtag}")).collect();
        let mut p = HashPack::default();
        p.extend(f.iter().zip(&v).map(|(f, v)| (f.as_bytes(), v.as_bytes())));
        p
    }

    /// Whether `p`'s field list has a live shared copy.
    fn registered(p: &HashPack) -> bool {
        let hash = fingerprint(p.iter().map(|(f, _)| f));
        registry().map.get(&hash).is_some_and(|w| w.strong_count() > 0)
    }

    fn pairs(p: &HashPack) -> Vec<(Vec<u8>, Vec<u8>)> {
        p.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect()
    }

    /// The first hash with a field list stays inline, the second (other values) shares it
    /// with a third; edits keep the contents; the registry entry goes with the last holder.
    #[test]
    fn shares_from_the_second_sighting_and_releases() {
        let a = pack_with(5, "t1", "a");
        assert!(!a.is_shared());
        let mut b = pack_with(5, "t1", "b");
        let c = pack_with(5, "t1", "c");
        assert!(b.is_shared() && c.is_shared());
        assert_eq!(
            pairs(&a).iter().map(|p| &p.0).collect::<Vec<_>>(),
            pairs(&b).iter().map(|p| &p.0).collect::<Vec<_>>()
        );
        assert!(b.bytes() < a.bytes());
        assert_eq!(b.get(b"t1-field-3"), Some(&b"value3b"[..]));
        assert_eq!(b.position(b"t1-field-4"), Some(4));
        assert_eq!(b.pair(2), Some((&b"t1-field-2"[..], &b"value2b"[..])));
        b.set_value(2, b"changed");
        assert!(b.is_shared());
        assert_eq!(b.get(b"t1-field-2"), Some(&b"changed"[..]));
        assert_eq!(c.get(b"t1-field-2"), Some(&b"value2c"[..]));
        let d = b.clone();
        b.remove(0);
        assert_eq!(b.len(), 4);
        assert_eq!(b.get(b"t1-field-0"), None);
        assert_eq!(pairs(&d)[2].1, b"changed");
        assert!(d.is_shared());
        assert!(registered(&a));
        drop((c, d));
        // b's new list was seen once only; the five-field list has no holder left.
        assert!(!b.is_shared());
        assert!(!registered(&a));
    }

    /// The same names and values again (a reload, a key written anew) is not a second hash.
    #[test]
    fn the_same_hash_again_does_not_share() {
        let _a = pack_with(4, "t3", "same");
        let b = pack_with(4, "t3", "same");
        assert!(!b.is_shared());
        let c = pack_with(4, "t3", "other");
        assert!(c.is_shared());
    }

    /// Dropped on another thread (lazy free): the count and the registry stay right.
    #[test]
    fn dropped_elsewhere() {
        let _a = pack_with(6, "t2", "a");
        let b = pack_with(6, "t2", "b");
        let c = b.clone();
        assert!(b.is_shared());
        std::thread::spawn(move || drop(b)).join().ok();
        assert_eq!(c.get(b"t2-field-5"), Some(&b"value5b"[..]));
        let e = pack_with(6, "t2", "e");
        assert!(e.is_shared());
    }
}
