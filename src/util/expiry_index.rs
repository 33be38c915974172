//! [`ExpiryIndex`]: the deadlines of a database's volatile keys in order, at 6 bytes a key.
//!
//! Also used per hash for its expiring fields (see types::hash).
//!
//! Each volatile key has exactly one entry: its deadline (Unix ms, 42 bits: up to the year
//! 2109, later deadlines are clamped) packed with the low [`HASH_BITS`] bits of its table hash,
//! which is enough to find the key's bucket again (a table of more than 2^22 buckets has a few
//! candidates). Entries are a multiset: two keys with the same deadline and hash bits have two
//! entries, so removing one key's entry never orphans another's.
//!
//! The entries sit in sorted chunks of at most [`CHUNK`], with a directory of chunks. A full
//! chunk passes an element on through its neighbours to the nearest chunk with room (up to
//! [`REACH`] away) and splits only when there is none, so chunks stay nearly full whatever the
//! order of deadlines. All entries of a chunk fall in one window of 2^26 ms (~18.6 hours) of
//! deadlines, which the chunk records once, so an entry stores only its low 48 bits: 6 bytes
//! a key (a `BTreeSet<(u64, u64)>` costs 24-27). Deadlines spread over years cost more (one
//! chunk per window at least), but the 16 window bits bound the number of sparse chunks.

use std::collections::VecDeque;

/// Bits of the key's table hash kept in an entry.
pub const HASH_BITS: u32 = 22;
const HASH_MASK: u64 = (1 << HASH_BITS) - 1;
/// The latest deadline an entry can hold (about the year 2109).
pub const MAX_DEADLINE: u64 = (1 << (64 - HASH_BITS)) - 1;
const CHUNK: usize = 512;
/// How many chunks away a full chunk looks for room before it splits.
const REACH: usize = 8;
/// Bits of a packed entry stored per element; the rest is the chunk's window.
const LOW_BITS: u32 = 48;

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

/// A packed entry's low 48 bits.
type Low = [u8; 6];

fn low(v: u64) -> Low {
    let b = v.to_le_bytes();
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

/// A sorted run of entries that share their top bits (`window`).
struct Chunk {
    window: u64,
    v: VecDeque<Low>,
}

impl Chunk {
    fn new(window: u64, capacity: usize) -> Self {
        Chunk { window, v: VecDeque::with_capacity(capacity) }
    }

    fn full(&self, l: Low) -> u64 {
        let mut b = [0u8; 8];
        b[..6].copy_from_slice(&l);
        (self.window << LOW_BITS) | u64::from_le_bytes(b)
    }

    fn takes(&self, v: u64) -> bool {
        v >> LOW_BITS == self.window
    }

    fn len(&self) -> usize {
        self.v.len()
    }

    fn front(&self) -> Option<u64> {
        self.v.front().map(|&l| self.full(l))
    }

    fn back(&self) -> Option<u64> {
        self.v.back().map(|&l| self.full(l))
    }

    fn pop_front(&mut self) -> Option<u64> {
        self.v.pop_front().map(|l| self.full(l))
    }

    fn pop_back(&mut self) -> Option<u64> {
        self.v.pop_back().map(|l| self.full(l))
    }

    fn push_front(&mut self, v: u64) {
        debug_assert!(self.takes(v));
        self.v.push_front(low(v));
    }

    fn push_back(&mut self, v: u64) {
        debug_assert!(self.takes(v));
        self.v.push_back(low(v));
    }

    /// Entries below `v` (all, at or below, with `or_equal`).
    fn rank(&self, v: u64, or_equal: bool) -> usize {
        self.v.partition_point(|&l| {
            let x = self.full(l);
            x < v || (or_equal && x == v)
        })
    }

    fn sorted_insert(&mut self, v: u64) {
        debug_assert!(self.takes(v));
        let pos = self.rank(v, true);
        self.v.insert(pos, low(v));
    }

    fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.v.iter().map(|&l| self.full(l))
    }
}

#[derive(Default)]
pub struct ExpiryIndex {
    /// Sorted, non-empty chunks, each sorted and every element of one at most every element
    /// of the next.
    chunks: Vec<Chunk>,
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
        self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.chunks.iter().map(|c| c.v.capacity() * std::mem::size_of::<Low>()).sum::<usize>()
    }

    /// The chunk where `v` belongs: the first whose last element is at least `v`, else the
    /// last chunk.
    fn chunk_for(&self, v: u64) -> usize {
        let i = self.chunks.partition_point(|c| c.back().is_some_and(|last| last < v));
        i.min(self.chunks.len().saturating_sub(1))
    }

    pub fn insert(&mut self, slot: Slot) {
        let v = slot.pack();
        self.len += 1;
        if self.chunks.is_empty() {
            // The first chunk grows as needed: an index of a few entries (a hash's expiring
            // fields) costs a few entries, not a whole chunk.
            self.chunks.push(Chunk::new(v >> LOW_BITS, 0));
        }
        loop {
            let i = self.chunk_for(v);
            if !self.chunks[i].takes(v) {
                self.insert_in_new_window(i, v);
                return;
            }
            if self.chunks[i].len() < CHUNK {
                self.chunks[i].sorted_insert(v);
                return;
            }
            // Full: the smallest (or largest) element of this chunk with `v` moves on through
            // the chunks of its window up to the nearest one with room, within REACH on
            // either side; only without one does the chunk split.
            let window = self.chunks[i].window;
            let room = |j: &usize| self.chunks[*j].len() < CHUNK;
            let same = |j: &usize| self.chunks[*j].window == window;
            let left = (i.saturating_sub(REACH)..i).rev().take_while(same).find(room);
            let right = (i + 1..self.chunks.len().min(i + 1 + REACH)).take_while(same).find(room);
            if let Some(j) = left {
                // `v` is above everything of chunk i - 1 (that is how chunk i was chosen).
                let mut y = v;
                if self.chunks[i].front().is_some_and(|f| f < v) {
                    y = self.chunks[i].pop_front().unwrap_or(v);
                    self.chunks[i].sorted_insert(v);
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
                c.sorted_insert(v);
                for m in i + 1..j {
                    let c = &mut self.chunks[m];
                    let z = c.pop_back().unwrap_or(y);
                    c.push_front(y);
                    y = z;
                }
                self.chunks[j].push_front(y);
                return;
            }
            if i + 1 == self.chunks.len() && self.chunks[i].back().is_some_and(|last| last <= v) {
                // Appending past the end: a new last chunk keeps this one full.
                let mut c = Chunk::new(window, CHUNK);
                c.push_back(v);
                self.chunks.push(c);
                return;
            }
            let mut right = Chunk::new(window, CHUNK);
            right.v.extend(self.chunks[i].v.drain(CHUNK / 2..));
            self.chunks.insert(i + 1, right);
        }
    }

    /// Inserts `v`, whose window is not chunk `i`'s: it goes at the end of chunk `i - 1` if
    /// that chunk is of its window and has room, else into a chunk of its own.
    fn insert_in_new_window(&mut self, i: usize, v: u64) {
        let c = &self.chunks[i];
        if c.back().is_some_and(|last| last < v) {
            // Past the last chunk (chunk_for's fallback): a higher window.
            let mut c = Chunk::new(v >> LOW_BITS, 0);
            c.push_back(v);
            self.chunks.push(c);
            return;
        }
        // Every element of chunk i is above `v`, every element of chunk i - 1 below it.
        if i > 0 && self.chunks[i - 1].takes(v) && self.chunks[i - 1].len() < CHUNK {
            self.chunks[i - 1].push_back(v);
            return;
        }
        let mut c = Chunk::new(v >> LOW_BITS, 0);
        c.push_back(v);
        self.chunks.insert(i, c);
    }

    /// Removes one entry equal to `slot`; false if there is none.
    pub fn remove(&mut self, slot: Slot) -> bool {
        let v = slot.pack();
        if self.chunks.is_empty() {
            return false;
        }
        let i = self.chunk_for(v);
        let c = &mut self.chunks[i];
        if !c.takes(v) {
            return false;
        }
        let pos = c.rank(v, false);
        if c.v.get(pos).map(|&l| c.full(l)) != Some(v) {
            return false;
        }
        c.v.remove(pos);
        self.len -= 1;
        self.settle(i);
        true
    }

    pub fn first(&self) -> Option<Slot> {
        self.chunks.first().and_then(Chunk::front).map(Slot::unpack)
    }

    pub fn last(&self) -> Option<Slot> {
        self.chunks.last().and_then(Chunk::back).map(Slot::unpack)
    }

    pub fn pop_first(&mut self) -> Option<Slot> {
        let v = self.chunks.first_mut()?.pop_front()?;
        self.len -= 1;
        self.settle(0);
        Some(Slot::unpack(v))
    }

    /// After a removal from chunk `i`: an empty chunk goes, and a chunk down to a quarter
    /// merges into a neighbour of its window it fits in, so deletions cannot leave the
    /// chunks sparse.
    fn settle(&mut self, i: usize) {
        let n = self.chunks[i].len();
        if n == 0 {
            self.chunks.remove(i);
            return;
        }
        if n > CHUNK / 4 {
            return;
        }
        let window = self.chunks[i].window;
        let fits = |c: &Chunk| c.window == window && c.len() + n <= CHUNK;
        if i > 0 && fits(&self.chunks[i - 1]) {
            let c = self.chunks.remove(i);
            self.chunks[i - 1].v.extend(c.v);
        } else if i + 1 < self.chunks.len() && fits(&self.chunks[i + 1]) {
            let c = self.chunks.remove(i + 1);
            self.chunks[i].v.extend(c.v);
        }
    }

    /// All entries in order.
    pub fn iter(&self) -> impl Iterator<Item = Slot> + '_ {
        self.chunks.iter().flat_map(Chunk::iter).map(Slot::unpack)
    }

    /// The entries with a deadline of `at` or later, in order.
    pub fn iter_from(&self, at: u64) -> impl Iterator<Item = Slot> + '_ {
        let v = Slot::new(at, 0).pack();
        let i = self.chunk_for(v);
        let pos = self.chunks.get(i).map_or(0, |c| c.rank(v, false));
        self.chunks
            .iter()
            .skip(i)
            .enumerate()
            .flat_map(move |(n, c)| c.iter().skip(if n == 0 { pos } else { 0 }))
            .map(Slot::unpack)
    }
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
        assert!(ix.chunks.iter().all(|c| c.len() > 0 && c.len() <= CHUNK));
        assert!(ix.chunks.iter().all(|c| c.iter().all(|v| c.takes(v))));
    }

    /// Random inserts, removals and pops agree with a counted BTreeMap, duplicates included.
    #[test]
    fn follows_a_multiset_model() {
        follow_model(5_000, 7);
        // Deadlines across a few hundred windows of 2^26 ms, then across windows only.
        follow_model(1 << 34, 8);
        follow_model(1 << 42, 9);
    }

    fn follow_model(span: u64, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut ix = ExpiryIndex::new();
        let mut model: BTreeMap<u64, usize> = BTreeMap::new();
        // Few distinct deadlines repeat (duplicates); a wide span mixes windows.
        let pool: Vec<u64> = (0..5_000).map(|_| rng.random_range(0..span)).collect();
        for round in 0..60_000 {
            let at = pool[rng.random_range(0..pool.len())];
            let slot = Slot::new(at, rng.random_range(0..4));
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
                let from = rng.random_range(0..span);
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
        let per = |ix: &ExpiryIndex| ix.heap_bytes() as f64 / ix.len() as f64;
        let mut rng = StdRng::seed_from_u64(1);
        let mut ix = ExpiryIndex::new();
        for i in 0..200_000u64 {
            ix.insert(Slot::new(1_000_000 + i / 50, rng.random::<u32>() as usize));
        }
        assert!(per(&ix) < 6.2, "{}", per(&ix));

        // Random deadlines within 30 days.
        let mut ix = ExpiryIndex::new();
        for _ in 0..200_000u64 {
            ix.insert(Slot::new(rng.random_range(1..30 * 86_400_000), rng.random::<u32>() as usize));
        }
        assert!(per(&ix) < 7.0, "{}", per(&ix));
        // Deleting most entries merges chunks instead of leaving them sparse.
        let all: Vec<Slot> = ix.iter().collect();
        for (n, s) in all.iter().enumerate() {
            if n % 10 != 0 {
                assert!(ix.remove(*s));
            }
        }
        assert!(per(&ix) < 40.0, "{}", per(&ix));

        // Spread over 35 years, a dozen entries a window: still bounded.
        let mut ix = ExpiryIndex::new();
        for _ in 0..200_000u64 {
            ix.insert(Slot::new(rng.random_range(1..1 << 40), rng.random::<u32>() as usize));
        }
        assert!(per(&ix) < 12.5, "{}", per(&ix));
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
