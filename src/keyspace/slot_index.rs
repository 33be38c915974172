//! Keys per cluster hash slot, kept in cluster mode only: the count for CLUSTER
//! COUNTKEYSINSLOT and, for GETKEYSINSLOT (what resharding calls until a slot is empty),
//! a slot's keys newest first without walking the keyspace.
//!
//! # Design
//! A slot keeps the key-table hashes of the keys added to it, in order of addition: 8 bytes
//! per key, where Redis keeps two list pointers per key. A removal only lowers the count, so
//! a slot's list may also hold hashes of keys that have gone, or the older hash of a key
//! added again: a listing skips those (a hash is resolved to its keys through the key
//! table, newest entry first, each hash once). Stale entries are bounded: once a slot's
//! list is more than twice its keys (plus a little), cron compacts it, a bounded number of
//! entries per tick, so a slot of millions of keys never stalls the event loop.

use std::collections::HashSet;

use crate::cluster::{SLOTS, key_slot};

/// Entries a slot's list may hold beyond twice its keys before it is compacted.
const SLACK: usize = 16;
/// Entries visited per compaction step (one step per cron tick and database).
const STEP: usize = 16 * 1024;

pub struct SlotIndex {
    counts: Box<[u32]>,
    added: Box<[Vec<u64>]>,
    /// Slots due for compaction (each once: `flagged`).
    pending: Vec<u16>,
    flagged: Box<[bool]>,
    compacting: Option<Compaction>,
}

/// A compaction in progress: entries `[0, end)` of the slot are visited newest first;
/// entries appended meanwhile (beyond `end`) are kept as they are.
struct Compaction {
    slot: u16,
    end: usize,
    next: usize,
    seen: HashSet<u64>,
    kept: Vec<u64>,
}

impl Default for SlotIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl SlotIndex {
    pub fn new() -> Self {
        SlotIndex {
            counts: vec![0; SLOTS].into_boxed_slice(),
            added: vec![Vec::new(); SLOTS].into_boxed_slice(),
            pending: Vec::new(),
            flagged: vec![false; SLOTS].into_boxed_slice(),
            compacting: None,
        }
    }

    pub fn clear(&mut self) {
        *self = Self::new();
    }

    pub fn count(&self, slot: usize) -> u32 {
        self.counts.get(slot).copied().unwrap_or(0)
    }

    /// A key with table hash `h` was added.
    pub fn added(&mut self, key: &[u8], h: usize) {
        let s = key_slot(key) as usize;
        self.counts[s] = self.counts[s].saturating_add(1);
        let list = &mut self.added[s];
        list.push(h as u64);
        if list.len() > 2 * self.counts[s] as usize + SLACK && !self.flagged[s] {
            self.flagged[s] = true;
            self.pending.push(s as u16);
        }
    }

    pub fn removed(&mut self, key: &[u8]) {
        let s = key_slot(key) as usize;
        self.counts[s] = self.counts[s].saturating_sub(1);
    }

    /// Up to `max` keys of `slot`, newest first. `resolve(h, f)` calls `f` with every key
    /// of the table whose hash is `h`.
    pub fn keys<'k>(
        &self,
        slot: usize,
        max: usize,
        resolve: impl Fn(usize, &mut dyn FnMut(&'k [u8])),
    ) -> Vec<&'k [u8]> {
        let Some(list) = self.added.get(slot) else {
            return Vec::new();
        };
        let want = max.min(self.count(slot) as usize);
        let mut out = Vec::with_capacity(want);
        let mut seen = HashSet::new();
        for &h in list.iter().rev() {
            if out.len() >= want {
                break;
            }
            if seen.insert(h) {
                resolve(h as usize, &mut |k| {
                    if out.len() < want && key_slot(k) as usize == slot {
                        out.push(k);
                    }
                });
            }
        }
        out
    }

    /// One bounded step of compaction; `live(slot, h)` says whether a key of that slot has
    /// table hash `h`. Returns whether work remains.
    pub fn compact_step(&mut self, live: impl Fn(usize, usize) -> bool) -> bool {
        if self.compacting.is_none() {
            let Some(s) = self.pending.pop() else {
                return false;
            };
            self.flagged[s as usize] = false;
            let end = self.added[s as usize].len();
            self.compacting = Some(Compaction { slot: s, end, next: end, seen: HashSet::new(), kept: Vec::new() });
        }
        let Some(c) = self.compacting.as_mut() else {
            return false;
        };
        let s = c.slot as usize;
        let list = &self.added[s];
        let stop = c.next.saturating_sub(STEP);
        for &h in list[stop..c.next].iter().rev() {
            if c.seen.insert(h) && live(s, h as usize) {
                c.kept.push(h);
            }
        }
        c.next = stop;
        if stop == 0 {
            let mut kept = std::mem::take(&mut c.kept);
            kept.reverse();
            let end = c.end;
            self.compacting = None;
            let list = &mut self.added[s];
            kept.extend_from_slice(&list[end..]);
            kept.shrink_to_fit();
            *list = kept;
        }
        true
    }

    /// Entries held, stale ones included (tests).
    #[cfg(test)]
    pub fn entries(&self, slot: usize) -> usize {
        self.added[slot].len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A key table stand-in: key -> its hash.
    struct Table(HashMap<Vec<u8>, usize>);

    impl Table {
        fn hash(&self, k: &[u8]) -> usize {
            crate::util::dict::Dict::<Box<[u8]>, ()>::new().hash(k)
        }
    }

    #[test]
    fn lists_newest_first_and_compacts_stale_entries() {
        let mut idx = SlotIndex::new();
        let mut t = Table(HashMap::new());
        // Keys sharing one slot through a hash tag.
        let key = |i: usize| format!("{{t}}:{i}").into_bytes();
        let slot = key_slot(&key(0)) as usize;
        for _ in 0..50 {
            for i in 0..10 {
                let k = key(i);
                let h = t.hash(&k);
                if t.0.remove(&k).is_some() {
                    idx.removed(&k);
                }
                t.0.insert(k.clone(), h);
                idx.added(&k, h);
            }
        }
        assert_eq!(idx.count(slot), 10);
        let live = |s: usize, h: usize| t.0.iter().any(|(k, &kh)| kh == h && key_slot(k) as usize == s);
        while idx.compact_step(live) {}
        assert_eq!(idx.entries(slot), 10, "stale entries are compacted away");
        let listed = |idx: &SlotIndex, t: &Table, n: usize| -> Vec<Vec<u8>> {
            let keys = idx.keys(slot, n, |h, f| {
                for (k, &kh) in &t.0 {
                    if kh == h {
                        f(k);
                    }
                }
            });
            keys.into_iter().map(<[u8]>::to_vec).collect()
        };
        assert_eq!(listed(&idx, &t, 3), vec![key(9), key(8), key(7)]);
        // A key added again becomes the newest.
        let k = key(2);
        idx.removed(&k);
        idx.added(&k, t.hash(&k));
        assert_eq!(listed(&idx, &t, 2), vec![key(2), key(9)]);
        assert_eq!(listed(&idx, &t, 100).len(), 10, "each key once");
    }
}
