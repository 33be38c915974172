//! A chained hash table keyed by byte strings, built for a server that must never pause:
//!
//! * **Incremental rehashing.** Growing or shrinking allocates the new bucket array and then moves
//!   a few buckets per operation (and a time-boxed batch per cron tick), so a table of millions
//!   of keys never stops the event loop for a full copy the way a `HashMap` resize would.
//! * **Stateless, resize-proof SCAN.** The cursor walks bucket indexes in reverse-binary order
//!   (Redis's `dictScan`): an element present for the whole iteration is returned at least once
//!   even if the table grows or shrinks between calls.
//! * **Random access.** Fair-enough random element selection (RANDOMKEY, SPOP, eviction
//!   sampling), which std's map cannot offer.
//!
//! Keys are hashed with keyed SipHash-1-2 (`util::siphash`, as Redis), so clients cannot flood a
//! bucket.

use std::borrow::Borrow;
use std::cell::Cell;

use rand::{Rng, RngExt};

struct Node<K, V> {
    key: K,
    val: V,
    next: Option<Box<Node<K, V>>>,
}

struct Table<K, V> {
    buckets: Vec<Option<Box<Node<K, V>>>>,
    used: usize,
    /// The longest chain this table has had (a high-water mark: removals leave it), which
    /// [`Dict::random`] needs to stay exactly uniform.
    longest: usize,
}

impl<K, V> Table<K, V> {
    fn empty() -> Self {
        Table { buckets: Vec::new(), used: 0, longest: 0 }
    }
    fn with_size(n: usize) -> Self {
        let mut buckets = Vec::with_capacity(n);
        buckets.resize_with(n, || None);
        Table { buckets, used: 0, longest: 0 }
    }
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// Links `node` at the head of bucket `b`, keeping `longest` up to date.
    fn push_front(&mut self, b: usize, mut node: Box<Node<K, V>>) {
        node.next = self.buckets[b].take();
        let mut len = 1;
        let mut cur = node.next.as_deref();
        while let Some(n) = cur {
            len += 1;
            cur = n.next.as_deref();
        }
        self.longest = self.longest.max(len);
        self.buckets[b] = Some(node);
        self.used += 1;
    }
}

impl<K, V> Table<K, V> {
    /// One table's part of [`Dict::stats`]: chains of 49 or more share the last counter.
    fn stats(&self, idx: usize) -> String {
        use std::fmt::Write;
        const VECTLEN: usize = 50;
        let role = if idx == 0 { "main hash table" } else { "rehashing target" };
        if self.used == 0 {
            return format!("Hash table {idx} stats ({role}):\nNo stats available for empty dictionaries\n");
        }
        let (mut lens, mut slots, mut longest, mut total) = ([0usize; VECTLEN], 0usize, 0usize, 0usize);
        for b in &self.buckets {
            let mut len = 0;
            let mut cur = b.as_deref();
            while let Some(n) = cur {
                len += 1;
                cur = n.next.as_deref();
            }
            lens[len.min(VECTLEN - 1)] += 1;
            if len > 0 {
                slots += 1;
                longest = longest.max(len);
                total += len;
            }
        }
        let size = self.buckets.len();
        // Redis divides in single precision; so does this, for the same digits.
        let mut out = format!(
            "Hash table {idx} stats ({role}):\n table size: {size}\n number of elements: {}\n different slots: \
             {slots}\n max chain length: {longest}\n avg chain length (counted): {:.2}\n avg chain length \
             (computed): {:.2}\n Chain length distribution:\n",
            self.used,
            total as f32 / slots as f32,
            self.used as f32 / slots as f32,
        );
        for (i, &n) in lens[..VECTLEN - 1].iter().enumerate().filter(|(_, n)| **n > 0) {
            let _ = writeln!(out, "   {i}: {n} ({:.2}%)", n as f32 / size as f32 * 100.0);
        }
        out
    }
}

impl<K, V> Drop for Table<K, V> {
    fn drop(&mut self) {
        // Unlink chains iteratively so no chain length can exhaust the stack.
        for b in self.buckets.iter_mut() {
            let mut cur = b.take();
            while let Some(mut n) = cur {
                cur = n.next.take();
            }
        }
    }
}

const INITIAL_SIZE: usize = 4;
/// Chain positions considered per bucket by [`Dict::random`].
const CHAIN_SLOTS: usize = 4;
/// Tables up to this many buckets are rehashed in one go.
const SMALL_TABLE: usize = 1024;
/// Empty buckets visited per rehash step before giving up (bounds the work of one step).
const EMPTY_VISITS_PER_STEP: usize = 10;

pub struct Dict<K, V> {
    ht: [Table<K, V>; 2],
    /// Next bucket of `ht[0]` to migrate; `None` when not rehashing.
    rehash_idx: Option<usize>,
}

thread_local! {
    /// A hash already known for the bytes at one address and length: see [`set_hash_hint`].
    static HASH_HINT: Cell<(usize, usize, usize)> = const { Cell::new((0, 0, 0)) };
}

/// Tells [`Dict::hash`] the hash of `key`, computed earlier (the prefetch window hashes the
/// keys of a pipeline before the commands run, which would hash them again). Every dict
/// hashes with the same keyed function, so it holds for any of them; it is matched by the
/// slice's address and length, so the caller must not let those bytes change, or the
/// memory be reused, before [`clear_hash_hint`].
pub fn set_hash_hint(key: &[u8], hash: usize) {
    HASH_HINT.with(|c| c.set((key.as_ptr() as usize, key.len(), hash)));
}

pub fn clear_hash_hint() {
    HASH_HINT.with(|c| c.set((0, 0, 0)));
}

impl<K: Borrow<[u8]>, V> Default for Dict<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Borrow<[u8]>, V> Dict<K, V> {
    pub fn new() -> Self {
        Dict { ht: [Table::empty(), Table::empty()], rehash_idx: None }
    }

    pub fn len(&self) -> usize {
        self.ht[0].used + self.ht[1].used
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total bucket slots (for memory accounting and the shrink policy).
    pub fn slots(&self) -> usize {
        self.ht[0].buckets.len() + self.ht[1].buckets.len()
    }

    /// DEBUG HTSTATS's text (Redis's `dictGetStats`): the main table, then the rehashing
    /// target while there is one.
    pub fn stats(&self) -> String {
        let mut out = self.ht[0].stats(0);
        if self.is_rehashing() {
            out.push_str(&self.ht[1].stats(1));
        }
        out
    }

    pub fn is_rehashing(&self) -> bool {
        self.rehash_idx.is_some()
    }

    /// The key's hash, for the `*_hashed` variants that avoid hashing twice.
    #[inline]
    pub fn hash(&self, key: &[u8]) -> usize {
        let (at, len, h) = HASH_HINT.with(Cell::get);
        if at == key.as_ptr() as usize && len == key.len() && at != 0 {
            return h;
        }
        Self::hash_bytes(key)
    }

    fn hash_bytes(key: &[u8]) -> usize {
        crate::util::siphash::hash(key) as usize
    }

    /// Asks the CPU to start loading the bucket slot of hash `h` (see [`Dict::prefetch_node`]).
    pub fn prefetch_bucket(&self, h: usize) {
        for t in &self.ht[..self.tables()] {
            if let Some(slot) = t.buckets.get(h & t.mask()) {
                prefetch(slot as *const _ as *const u8);
            }
        }
    }

    /// Asks the CPU to start loading the first node chained at hash `h`'s bucket. Called after
    /// [`Dict::prefetch_bucket`] for a batch of hashes, the misses of a whole pipeline overlap
    /// instead of being paid one after the other as each command runs.
    pub fn prefetch_node(&self, h: usize) {
        for t in &self.ht[..self.tables()] {
            if let Some(Some(node)) = t.buckets.get(h & t.mask()) {
                // A node whose size is not a multiple of 64 (the keyspace's 56 bytes) may
                // straddle two cache lines: load the line of its last byte too.
                let p = &**node as *const Node<K, V> as *const u8;
                prefetch(p);
                prefetch(p.wrapping_add(std::mem::size_of::<Node<K, V>>() - 1));
            }
        }
    }

    /// [`Dict::prefetch_bucket`] (`node` false) or [`Dict::prefetch_node`] (`node` true).
    pub fn prefetch(&self, h: usize, node: bool) {
        if node { self.prefetch_node(h) } else { self.prefetch_bucket(h) }
    }

    pub fn clear(&mut self) {
        self.ht = [Table::empty(), Table::empty()];
        self.rehash_idx = None;
    }

    /// Moves up to `n` buckets from the old table to the new one. Returns true while more remain.
    pub fn rehash(&mut self, n: usize) -> bool {
        let Some(mut idx) = self.rehash_idx else {
            return false;
        };
        let mut empty_visits = n * EMPTY_VISITS_PER_STEP;
        let mut moved = 0;
        while moved < n && self.ht[0].used > 0 {
            while idx < self.ht[0].buckets.len() && self.ht[0].buckets[idx].is_none() {
                idx += 1;
                empty_visits -= 1;
                if empty_visits == 0 {
                    self.rehash_idx = Some(idx);
                    return true;
                }
            }
            if idx >= self.ht[0].buckets.len() {
                break;
            }
            let mut chain = self.ht[0].buckets[idx].take();
            while let Some(mut node) = chain {
                chain = node.next.take();
                let b = self.hash(node.key.borrow()) & self.ht[1].mask();
                self.ht[1].push_front(b, node);
                self.ht[0].used -= 1;
            }
            idx += 1;
            moved += 1;
        }
        if self.ht[0].used == 0 {
            self.ht[0] = std::mem::replace(&mut self.ht[1], Table::empty());
            self.rehash_idx = None;
            return false;
        }
        self.rehash_idx = Some(idx);
        true
    }

    fn step(&mut self) {
        if self.rehash_idx.is_some() {
            self.rehash(1);
        }
    }

    /// Starts a resize to the smallest power of two holding `size` elements.
    fn resize_to(&mut self, size: usize) {
        if self.is_rehashing() {
            return;
        }
        let n = size.max(INITIAL_SIZE).next_power_of_two();
        if n == self.ht[0].buckets.len() {
            return;
        }
        if self.ht[0].buckets.is_empty() {
            self.ht[0] = Table::with_size(n);
            return;
        }
        self.ht[1] = Table::with_size(n);
        self.rehash_idx = Some(0);
        // Small tables move at once: incremental rehashing only pays off where a full move
        // would be noticeable, and a table left mid-rehash by a burst of writes would keep
        // its old, crowded buckets for read-only commands.
        if self.ht[0].buckets.len() <= SMALL_TABLE {
            while self.rehash(SMALL_TABLE) {}
        }
    }

    fn expand_if_needed(&mut self) {
        if self.is_rehashing() {
            return;
        }
        if self.ht[0].buckets.is_empty() {
            self.resize_to(INITIAL_SIZE);
        } else if self.ht[0].used >= self.ht[0].buckets.len() {
            self.resize_to(self.ht[0].used + 1);
        }
    }

    /// Shrinks when less than 10% full (called from cron and after deletions, like Redis's
    /// `htNeedsResize`).
    pub fn shrink_if_needed(&mut self) {
        let size = self.ht[0].buckets.len();
        if !self.is_rehashing() && size > INITIAL_SIZE && self.ht[0].used * 10 < size {
            self.resize_to(self.ht[0].used);
        }
    }

    fn tables(&self) -> usize {
        if self.is_rehashing() { 2 } else { 1 }
    }

    pub fn get<Q: Borrow<[u8]> + ?Sized>(&self, key: &Q) -> Option<&V> {
        self.get_entry(key.borrow()).map(|(_, v)| v)
    }

    pub fn get_entry(&self, key: &[u8]) -> Option<(&K, &V)> {
        self.get_entry_hashed(key, self.hash(key))
    }

    /// [`Dict::get_entry`] with the key's hash already known (`h` must be `self.hash(key)`).
    pub fn get_entry_hashed(&self, key: &[u8], h: usize) -> Option<(&K, &V)> {
        if self.is_empty() {
            return None;
        }
        for t in 0..self.tables() {
            let table = &self.ht[t];
            if table.buckets.is_empty() {
                continue;
            }
            let mut cur = table.buckets[h & table.mask()].as_deref();
            while let Some(node) = cur {
                if node.key.borrow() == key {
                    return Some((&node.key, &node.val));
                }
                cur = node.next.as_deref();
            }
        }
        None
    }

    /// An entry whose key's hash has `h` as its low `bits` bits and that satisfies `pred`:
    /// lets an index that keeps a few hash bits instead of keys find its key again. A table
    /// of at most 2^bits buckets has one candidate bucket, a larger one 2^(size - bits).
    /// Candidates are confirmed by rehashing their key, so keys of other hashes sharing a
    /// bucket never match.
    pub fn find_by_hash_bits(&self, h: usize, bits: u32, pred: impl Fn(&K, &V) -> bool) -> Option<(&K, &V)> {
        let low = (1usize << bits) - 1;
        for t in 0..self.tables() {
            let table = &self.ht[t];
            if table.buckets.is_empty() {
                continue;
            }
            let mask = table.mask();
            let first = h & mask & low;
            let candidates = (mask >> bits) + 1;
            for i in 0..candidates {
                let mut cur = table.buckets[first | (i << bits)].as_deref();
                while let Some(node) = cur {
                    if pred(&node.key, &node.val) && self.hash(node.key.borrow()) & low == h & low {
                        return Some((&node.key, &node.val));
                    }
                    cur = node.next.as_deref();
                }
            }
        }
        None
    }

    /// Calls `f` for every entry whose key hashes to `h` (an index that keeps whole hashes
    /// instead of keys finds its keys again; distinct keys sharing a hash are all visited).
    pub fn with_hash<'a>(&'a self, h: usize, mut f: impl FnMut(&'a K, &'a V)) {
        for t in 0..self.tables() {
            let table = &self.ht[t];
            if table.buckets.is_empty() {
                continue;
            }
            let mut cur = table.buckets[h & table.mask()].as_deref();
            while let Some(node) = cur {
                if self.hash(node.key.borrow()) == h {
                    f(&node.key, &node.val);
                }
                cur = node.next.as_deref();
            }
        }
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get_entry(key).is_some()
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        if self.is_empty() {
            return None;
        }
        self.step();
        let h = self.hash(key);
        let tables = self.tables();
        let mut found: Option<&mut V> = None;
        for table in self.ht[..tables].iter_mut() {
            if table.buckets.is_empty() {
                continue;
            }
            let mask = table.mask();
            let mut cur = table.buckets[h & mask].as_deref_mut();
            while let Some(node) = cur {
                if node.key.borrow() == key {
                    found = Some(&mut node.val);
                    break;
                }
                cur = node.next.as_deref_mut();
            }
            if found.is_some() {
                break;
            }
        }
        found
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: K, val: V) -> Option<V> {
        if let Some(slot) = self.get_mut(key.borrow()) {
            return Some(std::mem::replace(slot, val));
        }
        self.insert_new(key, val);
        None
    }

    /// Inserts a key known to be absent.
    pub fn insert_new(&mut self, key: K, val: V) {
        let h = self.hash(key.borrow());
        self.insert_new_hashed(key, val, h);
    }

    /// Inserts a key known to be absent whose hash is `h`.
    pub fn insert_new_hashed(&mut self, key: K, val: V, h: usize) {
        self.insert_new_guarded(key, val, h, |_| true);
    }

    /// [`Dict::insert_new_hashed`], growing the table only if `room(bytes)` allows the new
    /// table's allocation while the load is below Redis's HASHTABLE_MAX_LOAD_FACTOR (1.618):
    /// the keyspace does not grow past maxmemory just to hold a few more keys (Redis's
    /// dictExpandAllowed), which would evict thousands of keys to pay for it.
    pub fn insert_new_guarded(&mut self, key: K, val: V, h: usize, room: impl Fn(usize) -> bool) {
        self.step();
        let size = self.ht[0].buckets.len();
        let crowded = size == 0 || self.ht[0].used * 1000 > size * 1618;
        let needs = !self.is_rehashing() && size > 0 && self.ht[0].used >= size;
        if !needs || crowded || room((self.ht[0].used + 1).next_power_of_two() * std::mem::size_of::<usize>()) {
            self.expand_if_needed();
        }
        let t = if self.is_rehashing() { 1 } else { 0 };
        let table = &mut self.ht[t];
        let b = h & table.mask();
        table.push_front(b, Box::new(Node { key, val, next: None }));
    }

    /// Finds `key` (whose hash is `h`): the table it is in, its bucket, its depth in the chain
    /// and whether `pred` holds for its value.
    fn locate(&self, key: &[u8], h: usize, pred: impl Fn(&V) -> bool) -> Option<(usize, usize, usize, bool)> {
        for t in 0..self.tables() {
            let table = &self.ht[t];
            if table.buckets.is_empty() {
                continue;
            }
            let b = h & table.mask();
            let mut cur = table.buckets[b].as_deref();
            let mut depth = 0;
            while let Some(node) = cur {
                if node.key.borrow() == key {
                    return Some((t, b, depth, pred(&node.val)));
                }
                cur = node.next.as_deref();
                depth += 1;
            }
        }
        None
    }

    /// One lookup that also lets the caller drop a stale entry: when `remove_if` holds for the
    /// value (lazy expiry) the entry is removed and handed to `on_removed` together with the
    /// table as it is afterwards, and None is returned; otherwise the key (for metadata it
    /// carries, like the keyspace's access stamp — callers must not change its bytes) and the
    /// value, mutably.
    pub fn lookup_mut(
        &mut self,
        key: &[u8],
        h: usize,
        remove_if: impl Fn(&V) -> bool,
        on_removed: impl FnOnce(K, V),
    ) -> Option<(&mut K, &mut V)> {
        if self.is_empty() {
            return None;
        }
        self.step();
        let (t, b, depth, stale) = self.locate(key, h, remove_if)?;
        if stale {
            if let Some((k, v)) = self.remove(key) {
                on_removed(k, v);
            }
            return None;
        }
        // The second walk follows `depth` links through nodes the first walk just cached.
        let mut cur = self.ht[t].buckets[b].as_deref_mut();
        for _ in 0..depth {
            cur = cur.and_then(|n| n.next.as_deref_mut());
        }
        cur.map(|node| (&mut node.key, &mut node.val))
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<(K, V)> {
        if self.is_empty() {
            return None;
        }
        self.step();
        let h = self.hash(key);
        for t in 0..self.tables() {
            let table = &mut self.ht[t];
            if table.buckets.is_empty() {
                continue;
            }
            let b = h & table.mask();
            let mut cur = &mut table.buckets[b];
            loop {
                let is_match = match cur {
                    None => break,
                    Some(n) => n.key.borrow() == key,
                };
                if is_match {
                    let Some(mut node) = cur.take() else { break };
                    *cur = node.next.take();
                    table.used -= 1;
                    let Node { key, val, .. } = *node;
                    return Some((key, val));
                }
                let Some(n) = cur else { break };
                cur = &mut n.next;
            }
        }
        None
    }

    /// One step of a SCAN: calls `f` for every element of the bucket(s) at `cursor` and returns
    /// the next cursor (0 when the iteration is complete).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&K, &V)) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let mut v = cursor as usize;
        let visit = |table: &Table<K, V>, idx: usize, f: &mut dyn FnMut(&K, &V)| {
            let mut cur = table.buckets[idx].as_deref();
            while let Some(n) = cur {
                f(&n.key, &n.val);
                cur = n.next.as_deref();
            }
        };
        if !self.is_rehashing() {
            let t0 = &self.ht[0];
            let m0 = t0.mask();
            visit(t0, v & m0, &mut f);
            v |= !m0;
            v = v.reverse_bits().wrapping_add(1).reverse_bits();
        } else {
            let (small, large) = if self.ht[0].buckets.len() <= self.ht[1].buckets.len() {
                (&self.ht[0], &self.ht[1])
            } else {
                (&self.ht[1], &self.ht[0])
            };
            let m0 = small.mask();
            let m1 = large.mask();
            visit(small, v & m0, &mut f);
            loop {
                visit(large, v & m1, &mut f);
                v |= !m1;
                v = v.reverse_bits().wrapping_add(1).reverse_bits();
                if v & (m0 ^ m1) == 0 {
                    break;
                }
            }
        }
        v as u64
    }

    /// A uniformly random element, or None when empty. Picking a bucket then an element of its
    /// chain would favour elements alone in their bucket; instead a slot (bucket, position <
    /// the longest chain the tables have had, at least CHAIN_SLOTS) is drawn and redrawn until
    /// it holds an element, which is exactly uniform.
    pub fn random<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<(&K, &V)> {
        if self.is_empty() {
            return None;
        }
        let start = self.rehash_idx.unwrap_or(0);
        let s0 = self.ht[0].buckets.len();
        let total = s0 + self.ht[1].buckets.len();
        let slots = CHAIN_SLOTS.max(self.ht[0].longest).max(self.ht[1].longest);
        loop {
            let i = rng.random_range(start.min(total - 1)..total);
            let (table, idx) = if i < s0 { (&self.ht[0], i) } else { (&self.ht[1], i - s0) };
            let Some(head) = table.buckets[idx].as_deref() else {
                continue;
            };
            let mut len = 0;
            let mut cur = Some(head);
            while let Some(n) = cur {
                len += 1;
                cur = n.next.as_deref();
            }
            let mut pick = rng.random_range(0..slots);
            if pick >= len {
                continue;
            }
            let mut cur = head;
            while pick > 0 {
                match cur.next.as_deref() {
                    Some(n) => cur = n,
                    None => break,
                }
                pick -= 1;
            }
            return Some((&cur.key, &cur.val));
        }
    }

    /// Up to `count` elements from a random stretch of buckets (Redis's dictGetSomeKeys):
    /// neither uniform nor distinct-per-call guaranteed, but a few cache lines instead of the
    /// rejection sampling of [`Dict::random`], which gets costly in a sparse table. Eviction
    /// sampling wants exactly this. At most `10 * count` bucket steps.
    pub fn some<R: Rng + ?Sized>(&self, count: usize, rng: &mut R, mut f: impl FnMut(&K, &V)) {
        let count = count.min(self.len());
        if count == 0 {
            return;
        }
        let start = self.rehash_idx.unwrap_or(0);
        let widest = self.ht[0].buckets.len().max(self.ht[1].buckets.len());
        let mask = widest.wrapping_sub(1);
        let mut i = rng.random_range(0..widest);
        let (mut got, mut empty_run) = (0, 0);
        for _ in 0..count.saturating_mul(10) {
            for (t, table) in self.ht.iter().enumerate() {
                // Buckets of the old table below the rehash index are already moved.
                if t == 0 && i < start {
                    continue;
                }
                let Some(slot) = table.buckets.get(i) else { continue };
                let Some(head) = slot.as_deref() else {
                    empty_run += 1;
                    // A long empty stretch: jump elsewhere rather than crawl through it.
                    if empty_run >= 5 && empty_run > count {
                        i = rng.random_range(0..widest);
                        empty_run = 0;
                    }
                    continue;
                };
                empty_run = 0;
                let mut cur = Some(head);
                while let Some(n) = cur {
                    f(&n.key, &n.val);
                    got += 1;
                    if got == count {
                        return;
                    }
                    cur = n.next.as_deref();
                }
            }
            i = (i + 1) & mask;
        }
    }

    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter { dict: self, table: 0, bucket: 0, node: None }
    }
}

pub struct Iter<'a, K, V> {
    dict: &'a Dict<K, V>,
    table: usize,
    bucket: usize,
    node: Option<&'a Node<K, V>>,
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(n) = self.node {
                self.node = n.next.as_deref();
                return Some((&n.key, &n.val));
            }
            let t = self.dict.ht.get(self.table)?;
            if self.bucket >= t.buckets.len() {
                self.table += 1;
                self.bucket = 0;
                continue;
            }
            self.node = t.buckets[self.bucket].as_deref();
            self.bucket += 1;
        }
    }
}

/// A hint to load the cache line at `p`; it never faults and changes nothing observable.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it reads no memory architecturally and cannot fault, even
    // for an invalid address (and `p` comes from a live reference). SSE is baseline on x86_64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn k(i: usize) -> Box<[u8]> {
        format!("key:{i}").into_bytes().into_boxed_slice()
    }

    /// A few low hash bits find every key, in tables smaller and larger than 2^bits buckets
    /// and halfway through a rehash.
    #[test]
    fn find_by_hash_bits_finds_every_key() {
        let mut d: Dict<Box<[u8]>, usize> = Dict::new();
        for i in 0..3_000 {
            d.insert(k(i), i);
            if i % 97 == 0 {
                for j in (0..=i).step_by(31) {
                    let h = d.hash(&k(j));
                    for bits in [3, 12, 40] {
                        let found = d.find_by_hash_bits(h & ((1 << bits) - 1), bits, |_, &v| v == j);
                        assert_eq!(found.map(|(_, &v)| v), Some(j), "key {j}, {bits} bits");
                    }
                }
            }
        }
        // Only a key whose hash has those bits matches (all 40 of them: no other key has).
        assert!(d.find_by_hash_bits(d.hash(&k(5)), 40, |_, &v| v == 6).is_none());
    }

    /// DEBUG HTSTATS's counters add up, and a rehash shows its target table.
    #[test]
    fn stats_count_every_element_and_show_the_rehash_target() {
        let mut d: Dict<Box<[u8]>, usize> = Dict::new();
        assert!(d.stats().contains("No stats available for empty dictionaries"));
        for i in 0..5_000 {
            d.insert(k(i), i);
        }
        while d.rehash(100) {}
        let field = |text: &str, name: &str| -> usize {
            let line = text.lines().find(|l| l.starts_with(&format!(" {name}: "))).expect(name);
            line.rsplit(": ").next().and_then(|n| n.parse().ok()).expect(name)
        };
        let s = d.stats();
        assert_eq!(field(&s, "table size"), 8192);
        assert_eq!(field(&s, "number of elements"), 5_000);
        let chains: usize = s
            .lines()
            .filter_map(|l| l.trim().split_once(": "))
            .filter_map(|(len, rest)| Some(len.parse::<usize>().ok()? * rest.split(' ').next()?.parse::<usize>().ok()?))
            .sum();
        assert_eq!(chains, 5_000, "{s}");
        assert!(!s.contains("rehashing target"));
        for i in 0..4_500 {
            d.remove(&k(i)[..]);
        }
        d.shrink_if_needed();
        assert!(d.is_rehashing(), "shrinking 8192 buckets to 512 goes step by step");
        assert!(d.stats().ends_with("(rehashing target):\nNo stats available for empty dictionaries\n"));
        d.rehash(50);
        assert!(d.stats().contains("Hash table 1 stats (rehashing target):\n table size: 512\n"), "{}", d.stats());
    }

    #[test]
    fn insert_get_remove_through_rehash() {
        let mut d: Dict<Box<[u8]>, usize> = Dict::new();
        for i in 0..10_000 {
            assert!(d.insert(k(i), i).is_none());
        }
        assert_eq!(d.len(), 10_000);
        for i in 0..10_000 {
            assert_eq!(d.get(&*k(i)), Some(&i));
        }
        assert_eq!(d.insert(k(5), 55), Some(5));
        for i in 0..9_990 {
            assert_eq!(d.remove(&k(i)).map(|(_, v)| v), Some(if i == 5 { 55 } else { i }));
        }
        assert_eq!(d.len(), 10);
        d.shrink_if_needed();
        while d.rehash(100) {}
        assert!(d.slots() <= 16);
        assert_eq!(d.iter().count(), 10);
    }

    #[test]
    fn scan_sees_every_stable_key_across_resizes() {
        let mut d: Dict<Box<[u8]>, usize> = Dict::new();
        for i in 0..5000 {
            d.insert(k(i), i);
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        let mut rehashing_seen = false;
        loop {
            cursor = d.scan(cursor, |_, v| {
                seen.insert(*v);
            });
            // Grow and shrink the table while scanning; keys < 1000 stay throughout.
            round += 1;
            if round % 60 == 0 {
                for j in 0..2000 {
                    d.insert(k(100_000 + round * 1000 + j), 0);
                }
            } else if round % 60 == 30 {
                let extra: Vec<_> = d.iter().filter(|(_, v)| **v == 0).map(|(k, _)| k.clone()).take(3000).collect();
                for e in extra {
                    d.remove(&e);
                }
                d.shrink_if_needed();
            }
            if d.is_rehashing() {
                rehashing_seen = true;
            }
            if cursor == 0 {
                break;
            }
        }
        assert!(rehashing_seen, "the scan must have run across an incremental rehash");
        for i in 1..5000 {
            assert!(seen.contains(&i), "missed {i}");
        }
    }

    #[test]
    fn random_returns_members() {
        let mut d: Dict<Box<[u8]>, usize> = Dict::new();
        let mut rng = rand::rng();
        assert!(d.random(&mut rng).is_none());
        for i in 0..50 {
            d.insert(k(i), i);
        }
        let mut seen = HashSet::new();
        for _ in 0..2000 {
            let (_, v) = d.random(&mut rng).unwrap();
            seen.insert(*v);
        }
        assert_eq!(seen.len(), 50);
    }

    /// `some` returns members only, never more than asked or than there are, and over many
    /// calls reaches every element: in a sparse table and mid-rehash.
    #[test]
    fn some_samples_stretches_of_members() {
        let mut d: Dict<Box<[u8]>, usize> = Dict::new();
        let mut rng = rand::rng();
        d.some(5, &mut rng, |_, _| panic!("empty"));
        for i in 0..4000 {
            d.insert(k(i), i);
        }
        // Sparse: 40 left in a table sized for 4000.
        for i in 40..4000 {
            d.remove(&k(i));
        }
        let mut seen = HashSet::new();
        for _ in 0..5000 {
            let mut n = 0;
            d.some(5, &mut rng, |key, v| {
                assert_eq!(key[..], k(*v)[..]);
                seen.insert(*v);
                n += 1;
            });
            assert!(n <= 5);
        }
        assert_eq!(seen.len(), 40);
        let mut n = 0;
        d.some(100, &mut rng, |_, _| n += 1);
        assert!(n <= 40);
        // Mid-rehash: grow and sample before the move completes.
        let mut i = 40;
        while !(i > 2000 && d.is_rehashing()) {
            d.insert(k(i), i);
            i += 1;
        }
        let mut seen = HashSet::new();
        for _ in 0..20_000 {
            d.some(5, &mut rng, |key, v| {
                assert_eq!(key[..], k(*v)[..]);
                seen.insert(*v);
            });
        }
        // Not uniform (an element after a long empty stretch is rarely a stretch's start),
        // but nearly all are reached.
        assert!(seen.len() * 100 >= i * 99, "{} of {i}", seen.len());
    }

    /// Chains longer than CHAIN_SLOTS (rare, but a CI run met one) must not make their
    /// elements less likely: 24 elements crammed into chains of 8 and 16, drawn 24,000 times.
    #[test]
    fn random_is_uniform_with_long_chains() {
        use rand::SeedableRng;
        let mut d: Dict<Box<[u8]>, usize> = Dict::new();
        for i in 0..24 {
            d.insert(k(i), i);
        }
        let mut cramped = Table::with_size(2);
        for t in 0..2 {
            for b in 0..d.ht[t].buckets.len() {
                let mut chain = d.ht[t].buckets[b].take();
                while let Some(mut node) = chain {
                    chain = node.next.take();
                    cramped.push_front(usize::from(node.val % 3 == 0), node);
                }
            }
        }
        d.ht = [cramped, Table::empty()];
        d.rehash_idx = None;
        assert_eq!(d.ht[0].longest, 16);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut counts = [0usize; 24];
        for _ in 0..24_000 {
            counts[*d.random(&mut rng).unwrap().1] += 1;
        }
        // Chi-square with 23 degrees of freedom; 49.7 is its p = 0.001 point.
        let chi: f64 = counts.iter().map(|&c| (c as f64 - 1000.0).powi(2) / 1000.0).sum();
        assert!(chi < 49.7, "chi-square {chi:.1}: {counts:?}");
    }
}

#[cfg(test)]
mod chain_tests {
    use super::*;

    #[test]
    fn chains_stay_short() {
        let mut d: Dict<Box<[u8]>, usize> = Dict::new();
        for i in 0..100_000 {
            d.insert(format!("key:{i:012}").into_bytes().into_boxed_slice(), i);
        }
        while d.rehash(1000) {}
        let t = &d.ht[0];
        let mut max = 0;
        let mut total = 0;
        for b in &t.buckets {
            let mut n = 0;
            let mut cur = b.as_deref();
            while let Some(x) = cur {
                n += 1;
                cur = x.next.as_deref();
            }
            max = max.max(n);
            total += n;
        }
        eprintln!("slots {} used {} max chain {max}", t.buckets.len(), total);
        assert!(max < 12);
        assert!(t.buckets.len() >= 100_000);
    }
}
