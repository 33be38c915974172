//! [`ExpiryIndex`]: the deadlines of a database's volatile keys in order, at 8 bytes a key.
//!
//! Also used per hash for its expiring fields (see types::hash).
//!
//! Each volatile key has exactly one entry: its deadline (Unix ms, 42 bits: up to the year
//! 2109, later deadlines are clamped) packed with the low [`HASH_BITS`] bits of its table hash,
//! which is enough to find the key's bucket again (a table of more than 2^22 buckets has a few
//! candidates). Entries are a multiset: two keys with the same deadline and hash bits have two
//! entries, so removing one key's entry never orphans another's.
//!
//! The entries sit in sorted chunks of at most [`CHUNK`] (4 KiB each), with a directory of
//! chunks. A full chunk passes an element on through its neighbours to the nearest chunk with
//! room (up to [`REACH`] away) and splits only when there is none, so chunks stay nearly full
//! whatever the order of deadlines. Against a `BTreeSet<(u64, u64)>` that is 8-9 bytes a key
//! instead of 24-27.

use std::collections::VecDeque;

/// Bits of the key's table hash kept in an entry.
pub const HASH_BITS: u32 = 22;
const HASH_MASK: u64 = (1 << HASH_BITS) - 1;
/// The latest deadline an entry can hold (about the year 2109).
pub const MAX_DEADLINE: u64 = (1 << (64 - HASH_BITS)) - 1;
const CHUNK: usize = 512;
/// How many chunks away a full chunk looks for room before it splits.
const REACH: usize = 8;

/// One entry: a deadline (clamped to [`MAX_DEADLINE`]) and the low bits of a key's hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub at: u64,
    pub hash_bits: usize,
}

impl Slot {
    pub fn new(at: u64, hash: usize) -> Self {
        Slot { at: at.min(MAX_DEADLINE), hash_bits: (hash as u64 & HASH_MASK) as usize }
    }

    fn pack(self) -> u64 {
        (self.at << HASH_BITS) | self.hash_bits as u64
    }

    fn unpack(v: u64) -> Self {
        Slot { at: v >> HASH_BITS, hash_bits: (v & HASH_MASK) as usize }
    }
}

#[derive(Default)]
pub struct ExpiryIndex {
    /// Sorted, non-empty chunks, each sorted and every element of one at most every element
    /// of the next.
    chunks: Vec<VecDeque<u64>>,
    len: usize,
}

impl ExpiryIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.chunks = Vec::new();
        self.len = 0;
    }

    /// Bytes this index holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<VecDeque<u64>>()
            + self.chunks.iter().map(|c| c.capacity() * 8).sum::<usize>()
    }

    /// The chunk where `v` belongs: the first whose last element is at least `v`, else the
    /// last chunk.
    fn chunk_for(&self, v: u64) -> usize {
        let i = self.chunks.partition_point(|c| c.back().is_some_and(|&last| last < v));
        i.min(self.chunks.len().saturating_sub(1))
    }

    pub fn insert(&mut self, slot: Slot) {
        let v = slot.pack();
        self.len += 1;
        if self.chunks.is_empty() {
            // The first chunk grows as needed: an index of a few entries (a hash's expiring
            // fields) costs a few entries, not a whole chunk.
            self.chunks.push(VecDeque::new());
        }
        loop {
            let i = self.chunk_for(v);
            if self.chunks[i].len() < CHUNK {
                sorted_insert(&mut self.chunks[i], v);
                return;
            }
            // Full: the smallest (or largest) element of this chunk with `v` moves on through
            // the chunks up to the nearest one with room, within REACH on either side; only
            // without one does the chunk split.
            let room = |j: &usize| self.chunks[*j].len() < CHUNK;
            let left = (i.saturating_sub(REACH)..i).rev().find(room);
            let right = (i + 1..self.chunks.len().min(i + 1 + REACH)).find(room);
            if let Some(j) = left {
                // `v` is above everything of chunk i - 1 (that is how chunk i was chosen).
                let mut y = v;
                if self.chunks[i].front().is_some_and(|&f| f < v) {
                    y = self.chunks[i].pop_front().unwrap_or(v);
                    sorted_insert(&mut self.chunks[i], v);
                }
                for m in (j + 1..i).rev() {
                    let c = &mut self.chunks[m];
                    let z = c.pop_front().unwrap_or(y);
                    c.push_back(y);
                    y = z;
                }
                self.chunks[j].push_back(y);
                return;
            }
            if let Some(j) = right {
                // `v` is at most the last element of chunk i (or i would not be chosen).
                let c = &mut self.chunks[i];
                let mut y = c.pop_back().unwrap_or(v);
                sorted_insert(c, v);
                for m in i + 1..j {
                    let c = &mut self.chunks[m];
                    let z = c.pop_back().unwrap_or(y);
                    c.push_front(y);
                    y = z;
                }
                self.chunks[j].push_front(y);
                return;
            }
            if i + 1 == self.chunks.len() && self.chunks[i].back().is_some_and(|&last| last <= v) {
                // Appending past the end: a new last chunk keeps this one full.
                let mut c = new_chunk();
                c.push_back(v);
                self.chunks.push(c);
                return;
            }
            let mut right = new_chunk();
            right.extend(self.chunks[i].drain(CHUNK / 2..));
            self.chunks.insert(i + 1, right);
        }
    }

    /// Removes one entry equal to `slot`; false if there is none.
    pub fn remove(&mut self, slot: Slot) -> bool {
        let v = slot.pack();
        if self.chunks.is_empty() {
            return false;
        }
        let i = self.chunk_for(v);
        let c = &mut self.chunks[i];
        let pos = c.partition_point(|&x| x < v);
        if c.get(pos) != Some(&v) {
            return false;
        }
        c.remove(pos);
        self.len -= 1;
        self.settle(i);
        true
    }

    pub fn first(&self) -> Option<Slot> {
        self.chunks.first().and_then(|c| c.front()).map(|&v| Slot::unpack(v))
    }

    pub fn last(&self) -> Option<Slot> {
        self.chunks.last().and_then(|c| c.back()).map(|&v| Slot::unpack(v))
    }

    pub fn pop_first(&mut self) -> Option<Slot> {
        let v = self.chunks.first_mut()?.pop_front()?;
        self.len -= 1;
        self.settle(0);
        Some(Slot::unpack(v))
    }

    /// After a removal from chunk `i`: an empty chunk goes, and a chunk down to a quarter
    /// merges into a neighbour it fits in, so deletions cannot leave the chunks sparse.
    fn settle(&mut self, i: usize) {
        let n = self.chunks[i].len();
        if n == 0 {
            self.chunks.remove(i);
            return;
        }
        if n > CHUNK / 4 {
            return;
        }
        if i > 0 && self.chunks[i - 1].len() + n <= CHUNK {
            let c = self.chunks.remove(i);
            self.chunks[i - 1].extend(c);
        } else if i + 1 < self.chunks.len() && self.chunks[i + 1].len() + n <= CHUNK {
            let c = self.chunks.remove(i + 1);
            self.chunks[i].extend(c);
        }
    }

    /// All entries in order.
    pub fn iter(&self) -> impl Iterator<Item = Slot> + '_ {
        self.chunks.iter().flatten().map(|&v| Slot::unpack(v))
    }

    /// The entries with a deadline of `at` or later, in order.
    pub fn iter_from(&self, at: u64) -> impl Iterator<Item = Slot> + '_ {
        let v = Slot::new(at, 0).pack();
        let i = self.chunk_for(v);
        let pos = self.chunks.get(i).map_or(0, |c| c.partition_point(|&x| x < v));
        self.chunks
            .iter()
            .skip(i)
            .enumerate()
            .flat_map(move |(n, c)| c.iter().skip(if n == 0 { pos } else { 0 }))
            .map(|&v| Slot::unpack(v))
    }
}

fn sorted_insert(c: &mut VecDeque<u64>, v: u64) {
    let pos = c.partition_point(|&x| x <= v);
    c.insert(pos, v);
}

fn new_chunk() -> VecDeque<u64> {
    VecDeque::with_capacity(CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng, rngs::StdRng};
    use std::collections::BTreeMap;

    fn check(ix: &ExpiryIndex, model: &BTreeMap<u64, usize>) {
        let want: Vec<u64> = model.iter().flat_map(|(&v, &n)| std::iter::repeat_n(v, n)).collect();
        let got: Vec<u64> = ix.iter().map(Slot::pack).collect();
        assert_eq!(got, want);
        assert_eq!(ix.len(), want.len());
        assert!(ix.chunks.iter().all(|c| !c.is_empty() && c.len() <= CHUNK));
    }

    /// Random inserts, removals and pops agree with a counted BTreeMap, duplicates included.
    #[test]
    fn follows_a_multiset_model() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut ix = ExpiryIndex::new();
        let mut model: BTreeMap<u64, usize> = BTreeMap::new();
        for round in 0..60_000 {
            let slot = Slot::new(rng.random_range(0..5_000), rng.random_range(0..4));
            match rng.random_range(0..10) {
                0..=5 => {
                    ix.insert(slot);
                    *model.entry(slot.pack()).or_default() += 1;
                }
                6..=8 => {
                    let present = model.get(&slot.pack()).is_some_and(|&n| n > 0);
                    assert_eq!(ix.remove(slot), present);
                    if present {
                        let n = model.get_mut(&slot.pack()).unwrap();
                        *n -= 1;
                        if *n == 0 {
                            model.remove(&slot.pack());
                        }
                    }
                }
                _ => {
                    let want = model.first_key_value().map(|(&v, _)| v);
                    assert_eq!(ix.pop_first().map(Slot::pack), want);
                    if let Some(v) = want {
                        let n = model.get_mut(&v).unwrap();
                        *n -= 1;
                        if *n == 0 {
                            model.remove(&v);
                        }
                    }
                }
            }
            if round % 5_000 == 0 {
                check(&ix, &model);
                let from = rng.random_range(0..5_000);
                let tail: Vec<u64> = ix.iter_from(from).map(|s| s.at).collect();
                assert!(tail.iter().all(|&at| at >= from));
                assert_eq!(tail.len(), ix.iter().filter(|s| s.at >= from).count());
            }
        }
        check(&ix, &model);
    }

    /// Deadlines that grow with time (same TTL for every key) fill the chunks: about 8 bytes
    /// an entry; random ones within 9.
    #[test]
    fn stays_compact() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut ix = ExpiryIndex::new();
        for i in 0..200_000u64 {
            ix.insert(Slot::new(1_000_000 + i / 50, rng.random::<u32>() as usize));
        }

        assert!(ix.heap_bytes() as f64 / 200_000.0 < 8.2, "{}", ix.heap_bytes());
        let mut ix = ExpiryIndex::new();
        for _ in 0..200_000u64 {
            ix.insert(Slot::new(rng.random_range(1..1 << 40), rng.random::<u32>() as usize));
        }

        assert!(ix.heap_bytes() as f64 / 200_000.0 < 9.0, "{}", ix.heap_bytes());
        // Deleting most entries merges chunks instead of leaving them sparse.
        let all: Vec<Slot> = ix.iter().collect();
        for (n, s) in all.iter().enumerate() {
            if n % 10 != 0 {
                assert!(ix.remove(*s));
            }
        }
        assert!(ix.heap_bytes() / ix.len() < 40);
    }

    #[test]
    fn clamps_far_deadlines() {
        let mut ix = ExpiryIndex::new();
        ix.insert(Slot::new(u64::MAX, 5));
        ix.insert(Slot::new(3, 1 << 30 | 9));
        assert_eq!(ix.first(), Some(Slot { at: 3, hash_bits: 9 }));
        assert_eq!(ix.last(), Some(Slot { at: MAX_DEADLINE, hash_bits: 5 }));
        assert!(ix.remove(Slot::new(u64::MAX - 1, 5)));
    }
}
