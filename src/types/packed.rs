//! `Packed`: a compact sequence of byte strings in one contiguous buffer — Ember's listpack.
//!
//! Layout: a 4-byte little-endian element count, then entries. Each entry is
//! `header | data | trailer`: the header is the data length as LEB128 (one byte below 128),
//! the trailer is `header+data` length as a reversed LEB128 so the sequence can be walked
//! backwards from its end. A short element costs its bytes plus 2. The trailer is only kept
//! when `BACK` is true (lists, which pop and index from the tail); hashes and small sorted
//! sets only ever walk forwards and save a byte per element.
//!
//! Storage is a type parameter: hashes and small sorted sets use an exact-size thin buffer
//! ([`MapPack`]: one pointer inside the value, no spare capacity, rewritten on every edit like
//! Redis's listpack — small values are written a few times and read many); list nodes use a `Vec` ([`ListPack`]) whose
//! amortised growth keeps LPUSH/RPUSH cheap, trimmed once a node is full. Operations are
//! linear in the buffer, which is bounded by the conversion thresholds.

use crate::util::thin::{ThinBytes, ThinPtr};

/// Offset of the first entry (after the count).
const HDR: usize = 4;
/// The count's top bit is the owner's flag ([`Packed::marked`]); counts stay far below it
/// (packs are bounded by the conversion thresholds).
const MARK: u32 = 1 << 31;

/// The buffer behind a [`Packed`].
pub trait Storage: Default + Clone + Eq + std::ops::DerefMut<Target = [u8]> {
    fn from_vec(v: Vec<u8>) -> Self;
    /// Runs an edit on the bytes as a Vec, with room reserved for `extra` more bytes.
    fn edit<R>(&mut self, extra: usize, f: impl FnOnce(&mut Vec<u8>) -> R) -> R;
    /// Gives back spare capacity.
    fn shrink(&mut self) {}
    fn capacity(&self) -> usize {
        self.len()
    }
    /// Puts the encoded entries `e` right after the count header without moving the entries
    /// that follow, if this storage can (see [`FrontSlack`]); false leaves it to `edit`.
    fn insert_front(&mut self, _e: &[u8]) -> bool {
        false
    }
    /// Drops the bytes between the count header and `end` without moving what follows, if
    /// this storage can; false leaves it to `edit`.
    fn remove_front(&mut self, _end: usize) -> bool {
        false
    }
}

/// List nodes: a `Vec` that keeps spare room in front as well as behind, so LPUSH and LPOP on
/// a long node move the 4-byte count header instead of the whole node (a head node of 8 KiB
/// took ~10% of LPUSH's CPU in memmove). The room is given back with [`Storage::shrink`] once
/// the node is complete.
#[derive(Clone, Default)]
pub struct FrontSlack {
    buf: Vec<u8>,
    /// Where the content starts in `buf` (the room in front).
    start: usize,
}

impl FrontSlack {
    /// Moves the content to the start of the buffer (before edits that work on a plain Vec).
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

impl PartialEq for FrontSlack {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl Eq for FrontSlack {}

impl std::ops::Deref for FrontSlack {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl std::ops::DerefMut for FrontSlack {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }
}

impl Storage for FrontSlack {
    fn from_vec(v: Vec<u8>) -> Self {
        FrontSlack { buf: v, start: 0 }
    }
    fn edit<R>(&mut self, extra: usize, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        self.compact();
        self.buf.reserve(extra);
        f(&mut self.buf)
    }
    fn shrink(&mut self) {
        self.compact();
        self.buf.shrink_to_fit();
    }
    fn capacity(&self) -> usize {
        self.buf.capacity()
    }
    fn insert_front(&mut self, e: &[u8]) -> bool {
        if self.start < e.len() {
            // Room for this entry and as much again as the content (amortised like a Vec's
            // growth; nodes are bounded by list-max-listpack-size).
            let content = self.buf.len() - self.start;
            let room = e.len() + content;
            let mut grown = Vec::with_capacity(room + content);
            grown.resize(room, 0);
            grown.extend_from_slice(&self.buf[self.start..]);
            self.buf = grown;
            self.start = room;
        }
        let at = self.start - e.len();
        self.buf.copy_within(self.start..self.start + HDR, at);
        self.buf[at + HDR..at + HDR + e.len()].copy_from_slice(e);
        self.start = at;
        true
    }
    fn remove_front(&mut self, end: usize) -> bool {
        let at = self.start + end - HDR;
        self.buf.copy_within(self.start..self.start + HDR, at);
        self.start = at;
        true
    }
}

impl Storage for Vec<u8> {
    fn from_vec(v: Vec<u8>) -> Self {
        v
    }
    fn edit<R>(&mut self, extra: usize, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        self.reserve(extra);
        f(self)
    }
    fn shrink(&mut self) {
        self.shrink_to_fit();
    }
    fn capacity(&self) -> usize {
        Vec::capacity(self)
    }
}

/// An exact-size buffer behind one pointer: an edit copies it out and back (packs are small,
/// bounded by the conversion thresholds; the pointer saved keeps a keyspace node 56 bytes).
impl Storage for ThinBytes {
    fn from_vec(v: Vec<u8>) -> Self {
        ThinBytes::new(&v)
    }
    fn edit<R>(&mut self, extra: usize, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let mut v = Vec::with_capacity(self.len() + extra);
        v.extend_from_slice(self);
        let r = f(&mut v);
        if v.len() == self.len() {
            self.copy_from_slice(&v);
        } else {
            *self = ThinBytes::new(&v);
        }
        r
    }
}

/// Transparent so a thin-buffer pack is itself one pointer ([`ThinPtr`]).
#[derive(Clone, PartialEq, Eq)]
#[repr(transparent)]
pub struct Packed<S: Storage, const BACK: bool> {
    buf: S,
}

/// List nodes: walkable from both ends, amortised growth.
pub type ListPack = Packed<FrontSlack, true>;
/// Small hashes and sorted sets: forward-only, exact size, one pointer.
pub type MapPack = Packed<ThinBytes, false>;

// SAFETY: Packed is repr(transparent) over its storage, here a ThinBytes (itself a ThinPtr).
unsafe impl<const BACK: bool> ThinPtr for Packed<ThinBytes, BACK> {}

impl<S: Storage, const BACK: bool> Default for Packed<S, BACK> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Storage, const BACK: bool> std::fmt::Debug for Packed<S, BACK> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(String::from_utf8_lossy)).finish()
    }
}

fn varint_len(mut n: usize) -> usize {
    let mut l = 1;
    while n >= 0x80 {
        n >>= 7;
        l += 1;
    }
    l
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// The trailer: `n` as 7-bit groups, most significant first. Read backwards from the entry's
/// end, the last byte holds the lowest bits, and a set high bit on the byte just read means
/// "another group precedes" — so the reader never has to look at a data byte to decide.
fn put_trailer(out: &mut Vec<u8>, n: usize) {
    let groups = varint_len(n);
    for i in (0..groups).rev() {
        let g = ((n >> (7 * i)) & 0x7f) as u8;
        out.push(if i + 1 < groups { g | 0x80 } else { g });
    }
}

/// Encoded size of an entry holding `len` data bytes.
fn entry_size<const BACK: bool>(len: usize) -> usize {
    let body = varint_len(len) + len;
    if BACK { body + varint_len(body) } else { body }
}

fn encode_entry<const BACK: bool>(out: &mut Vec<u8>, v: &[u8]) {
    let start = out.len();
    put_varint(out, v.len());
    out.extend_from_slice(v);
    if BACK {
        let body = out.len() - start;
        put_trailer(out, body);
    }
}

impl<S: Storage, const BACK: bool> Packed<S, BACK> {
    pub fn new() -> Self {
        Packed { buf: S::from_vec(vec![0; HDR]) }
    }

    /// Builds a Packed from a sequence of entries with one allocation.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = &'a [u8]> + Clone) -> Self {
        let size = HDR + entries.clone().into_iter().map(|e| entry_size::<BACK>(e.len())).sum::<usize>();
        let mut v = Vec::with_capacity(size);
        v.extend_from_slice(&[0; HDR]);
        let mut n = 0usize;
        for e in entries {
            encode_entry::<BACK>(&mut v, e);
            n += 1;
        }
        let mut p = Packed { buf: S::from_vec(v) };
        p.set_len(n);
        p
    }

    fn header(&self) -> u32 {
        u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
    }

    pub fn len(&self) -> usize {
        (self.header() & !MARK) as usize
    }

    /// The owner's flag bit (a small hash's shared field names): kept across edits.
    pub fn marked(&self) -> bool {
        self.header() & MARK != 0
    }

    pub fn set_marked(&mut self, on: bool) {
        let h = if on { self.header() | MARK } else { self.header() & !MARK };
        self.buf[..HDR].copy_from_slice(&h.to_le_bytes());
    }

    /// The encoded bytes, header included (equal packs have equal bytes).
    pub fn raw(&self) -> &[u8] {
        &self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn set_len(&mut self, n: usize) {
        let h = (n as u32 & !MARK) | (self.header() & MARK);
        self.buf[..HDR].copy_from_slice(&h.to_le_bytes());
    }

    /// Bytes held, spare capacity included (MEMORY USAGE).
    pub fn capacity_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Gives back spare capacity (a list node that stopped growing).
    pub fn shrink(&mut self) {
        self.buf.shrink();
    }

    /// Bytes used by the encoding (for size limits and MEMORY USAGE).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Reads the entry starting at `off`: (data range, offset of the next entry).
    fn entry_at(&self, off: usize) -> Option<(std::ops::Range<usize>, usize)> {
        let mut len = 0usize;
        let mut shift = 0;
        let mut p = off;
        loop {
            let b = *self.buf.get(p)?;
            len |= ((b & 0x7f) as usize) << shift;
            p += 1;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 35 {
                return None;
            }
        }
        let data = p..p + len;
        let next = if BACK { p + len + varint_len(p + len - off) } else { p + len };
        (next <= self.buf.len()).then_some((data, next))
    }

    /// Start offset of the entry that ends at `end` (exclusive). Only for `BACK` encodings.
    fn entry_before(&self, end: usize) -> Option<usize> {
        if !BACK {
            return None;
        }
        let mut p = end.checked_sub(1)?;
        let mut n = (*self.buf.get(p)? & 0x7f) as usize;
        let mut shift = 7;
        while self.buf[p] & 0x80 != 0 {
            p = p.checked_sub(1).filter(|p| *p >= HDR)?;
            n |= ((self.buf[p] & 0x7f) as usize) << shift;
            shift += 7;
            if shift > 35 {
                return None;
            }
        }
        p.checked_sub(n)
    }

    pub fn iter(&self) -> Iter<'_, S, BACK> {
        Iter { p: self, front: HDR, back: self.buf.len(), left: self.len() }
    }

    /// Offset of the entry at `idx` (walking from the nearer end when the trailer allows).
    fn offset_of(&self, idx: usize) -> Option<usize> {
        let n = self.len();
        if idx >= n {
            return None;
        }
        if !BACK || idx <= n / 2 {
            let mut off = HDR;
            for _ in 0..idx {
                off = self.entry_at(off)?.1;
            }
            Some(off)
        } else {
            let mut end = self.buf.len();
            let mut off = end;
            for _ in idx..n {
                off = self.entry_before(end)?;
                end = off;
            }
            Some(off)
        }
    }

    pub fn get(&self, idx: usize) -> Option<&[u8]> {
        let off = self.offset_of(idx)?;
        let (r, _) = self.entry_at(off)?;
        Some(&self.buf[r])
    }

    pub fn push_back(&mut self, v: &[u8]) {
        let n = self.len();
        self.buf.edit(entry_size::<BACK>(v.len()), |b| encode_entry::<BACK>(b, v));
        self.set_len(n + 1);
    }

    /// Appends several entries with one resize.
    pub fn extend<'a>(&mut self, entries: impl IntoIterator<Item = &'a [u8]> + Clone) {
        let n = self.len();
        let extra: usize = entries.clone().into_iter().map(|e| entry_size::<BACK>(e.len())).sum();
        let added = self.buf.edit(extra, |b| entries.into_iter().map(|e| encode_entry::<BACK>(b, e)).count());
        self.set_len(n + added);
    }

    pub fn push_front(&mut self, v: &[u8]) {
        self.insert_at_offset(HDR, &[v]);
    }

    fn insert_at_offset(&mut self, off: usize, vals: &[&[u8]]) {
        let n = self.len();
        let mut e = Vec::with_capacity(vals.iter().map(|v| entry_size::<BACK>(v.len())).sum());
        for v in vals {
            encode_entry::<BACK>(&mut e, v);
        }
        if off != HDR || !self.buf.insert_front(&e) {
            self.buf.edit(e.len(), |b| drop(b.splice(off..off, e)));
        }
        self.set_len(n + vals.len());
    }

    /// Inserts before index `idx` (`idx == len` appends).
    pub fn insert(&mut self, idx: usize, v: &[u8]) {
        self.insert_all(idx, &[v]);
    }

    /// Inserts consecutive entries before index `idx` with one resize.
    pub fn insert_all(&mut self, idx: usize, vals: &[&[u8]]) {
        if idx >= self.len() {
            self.extend(vals.iter().copied());
        } else if let Some(off) = self.offset_of(idx) {
            self.insert_at_offset(off, vals);
        }
    }

    pub fn remove(&mut self, idx: usize) -> Option<Vec<u8>> {
        let off = self.offset_of(idx)?;
        let (r, next) = self.entry_at(off)?;
        let v = self.buf[r].to_vec();
        let n = self.len();
        if off != HDR || !self.buf.remove_front(next) {
            self.buf.edit(0, |b| drop(b.drain(off..next)));
        }
        self.set_len(n - 1);
        Some(v)
    }

    /// Removes `count` entries starting at `idx`.
    pub fn remove_range(&mut self, idx: usize, count: usize) {
        let n = self.len();
        if idx >= n || count == 0 {
            return;
        }
        let count = count.min(n - idx);
        let Some(start) = self.offset_of(idx) else { return };
        let mut end = start;
        for _ in 0..count {
            match self.entry_at(end) {
                Some((_, next)) => end = next,
                None => return,
            }
        }
        if start != HDR || !self.buf.remove_front(end) {
            self.buf.edit(0, |b| drop(b.drain(start..end)));
        }
        self.set_len(n - count);
    }

    pub fn replace(&mut self, idx: usize, v: &[u8]) {
        if let Some(off) = self.offset_of(idx)
            && let Some((r, next)) = self.entry_at(off)
        {
            if r.len() == v.len() {
                // Same length: same header and trailer, overwrite the data in place.
                self.buf[r].copy_from_slice(v);
                return;
            }
            let mut e = Vec::with_capacity(entry_size::<BACK>(v.len()));
            encode_entry::<BACK>(&mut e, v);
            self.buf.edit(e.len(), |b| drop(b.splice(off..next, e)));
        }
    }

    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        self.remove(0)
    }

    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let off = self.offset_of(n - 1)?;
        let (r, _) = self.entry_at(off)?;
        let v = self.buf[r].to_vec();
        self.buf.edit(0, |b| b.truncate(off));
        self.set_len(n - 1);
        Some(v)
    }

    /// Index of the first entry equal to `v`, stepping `stride` entries (2 for field/value pairs).
    pub fn position(&self, v: &[u8], stride: usize) -> Option<usize> {
        self.iter().step_by(stride.max(1)).position(|e| e == v).map(|i| i * stride.max(1))
    }

    /// Splits off the entries from `idx` on into a new Packed.
    pub fn split_off(&mut self, idx: usize) -> Self {
        let n = self.len();
        if idx >= n {
            return Self::new();
        }
        let Some(off) = self.offset_of(idx) else { return Self::new() };
        let mut tail = Vec::with_capacity(HDR + self.buf.len() - off);
        tail.extend_from_slice(&[0; HDR]);
        tail.extend_from_slice(&self.buf[off..]);
        let mut tail = Packed { buf: S::from_vec(tail) };
        tail.set_len(n - idx);
        self.buf.edit(0, |b| b.truncate(off));
        self.set_len(idx);
        tail
    }

    /// Appends all entries of `other`.
    pub fn append(&mut self, other: &Self) {
        let n = self.len();
        self.buf.edit(other.buf.len() - HDR, |b| b.extend_from_slice(&other.buf[HDR..]));
        self.set_len(n + other.len());
    }
}

#[derive(Clone)]
pub struct Iter<'a, S: Storage, const BACK: bool> {
    p: &'a Packed<S, BACK>,
    front: usize,
    back: usize,
    left: usize,
}

impl<'a, S: Storage, const BACK: bool> Iterator for Iter<'a, S, BACK> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let (r, next) = self.p.entry_at(self.front)?;
        self.front = next;
        self.left -= 1;
        Some(&self.p.buf[r])
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<S: Storage> DoubleEndedIterator for Iter<'_, S, true> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let off = self.p.entry_before(self.back)?;
        let (r, _) = self.p.entry_at(off)?;
        self.back = off;
        self.left -= 1;
        Some(&self.p.buf[r])
    }
}

impl<S: Storage, const BACK: bool> ExactSizeIterator for Iter<'_, S, BACK> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn items<S: Storage, const B: bool>(p: &Packed<S, B>) -> Vec<Vec<u8>> {
        p.iter().map(|e| e.to_vec()).collect()
    }

    #[test]
    fn operations_match_a_vec() {
        let mut p = ListPack::new();
        let mut model: Vec<Vec<u8>> = Vec::new();
        let long = vec![b'x'; 300];
        let vals: Vec<Vec<u8>> = vec![b"a".to_vec(), b"".to_vec(), long.clone(), b"hello".to_vec(), vec![b'y'; 20000]];
        for (i, v) in vals.iter().enumerate() {
            if i % 2 == 0 {
                p.push_back(v);
                model.push(v.clone());
            } else {
                p.push_front(v);
                model.insert(0, v.clone());
            }
        }
        assert_eq!(items(&p), model);
        let rev: Vec<Vec<u8>> = p.iter().rev().map(|e| e.to_vec()).collect();
        assert_eq!(rev, model.iter().rev().cloned().collect::<Vec<_>>());
        for (i, m) in model.iter().enumerate() {
            assert_eq!(p.get(i), Some(&m[..]));
        }
        p.insert(2, b"mid");
        model.insert(2, b"mid".to_vec());
        p.replace(0, b"first");
        model[0] = b"first".to_vec();
        assert_eq!(p.remove(3), Some(model.remove(3)));
        assert_eq!(p.pop_back(), model.pop());
        assert_eq!(p.pop_front(), Some(model.remove(0)));
        assert_eq!(items(&p), model);
        assert_eq!(p.len(), model.len());
        let tail = p.split_off(1);
        assert_eq!(p.len() + tail.len(), model.len());
        p.append(&tail);
        assert_eq!(items(&p), model);
        p.remove_range(0, 2);
        model.drain(0..2);
        assert_eq!(items(&p), model);
        assert_eq!(p.position(b"nope", 1), None);
    }

    /// Front slack: long runs of pushes and pops at the head, mixed with edits elsewhere
    /// (which compact it), read back exactly, forwards and backwards.
    #[test]
    fn front_slack_matches_a_vecdeque() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut p = ListPack::new();
        let mut model: std::collections::VecDeque<Vec<u8>> = Default::default();
        for step in 0..20_000 {
            let v: Vec<u8> = (0..rng.random_range(0..200usize)).map(|_| rng.random()).collect();
            match rng.random_range(0..10) {
                0..=4 => {
                    p.push_front(&v);
                    model.push_front(v);
                }
                5 | 6 => assert_eq!(p.pop_front(), model.pop_front()),
                7 => {
                    p.push_back(&v);
                    model.push_back(v);
                }
                8 => {
                    let n = rng.random_range(0..3usize);
                    p.remove_range(0, n);
                    model.drain(..n.min(model.len()));
                }
                9 if step % 3 == 0 => {
                    let i = rng.random_range(0..=model.len());
                    p.insert(i, &v);
                    model.insert(i, v);
                    if !model.is_empty() {
                        let at = rng.random_range(0..model.len());
                        let tail = p.split_off(at);
                        assert_eq!(p.len(), at);
                        p.append(&tail);
                        let j = rng.random_range(0..model.len());
                        assert_eq!(p.get(j), Some(&model[j][..]));
                    }
                }
                _ => {
                    if !model.is_empty() {
                        let i = rng.random_range(0..model.len());
                        p.replace(i, &v);
                        model[i] = v;
                    }
                }
            }
            assert_eq!(p.len(), model.len());
            if step % 500 == 0 {
                assert_eq!(items(&p), model.iter().cloned().collect::<Vec<_>>());
                let rev: Vec<Vec<u8>> = p.iter().rev().map(|e| e.to_vec()).collect();
                assert_eq!(rev, model.iter().rev().cloned().collect::<Vec<_>>());
                p.shrink();
                assert!(p.capacity_bytes() >= p.bytes());
            }
        }
        assert_eq!(items(&p), model.iter().cloned().collect::<Vec<_>>());
    }

    /// Data bytes with the high bit set (binary values, UTF-8, raw f64 scores) must not be
    /// mistaken for trailer bytes when walking backwards.
    #[test]
    fn binary_entries_walk_backwards() {
        let mut p = ListPack::new();
        let vals: Vec<Vec<u8>> = vec![
            vec![0xff; 3],
            (-2.5f64).to_le_bytes().to_vec(),
            "é€".as_bytes().to_vec(),
            vec![0x80; 200],
            vec![0xc0],
            vec![],
        ];
        for v in &vals {
            p.push_back(v);
        }
        let rev: Vec<Vec<u8>> = p.iter().rev().map(|e| e.to_vec()).collect();
        assert_eq!(rev, vals.iter().rev().cloned().collect::<Vec<_>>());
        for (i, v) in vals.iter().enumerate() {
            assert_eq!(p.get(i), Some(&v[..]));
        }
        assert_eq!(p.pop_back(), Some(vec![]));
        assert_eq!(p.pop_back(), Some(vec![0xc0]));
        assert_eq!(p.pop_back(), Some(vec![0x80; 200]));
    }

    #[test]
    fn short_entries_cost_two_bytes_or_one_forward_only() {
        let mut p = ListPack::new();
        p.push_back(b"abc");
        assert_eq!(p.bytes(), HDR + 5);
        let mut f = MapPack::new();
        f.push_back(b"abc");
        assert_eq!(f.bytes(), HDR + 4);
    }

    #[test]
    fn forward_only_matches_a_vec() {
        let vals: Vec<Vec<u8>> = vec![b"a".to_vec(), vec![b'z'; 300], b"".to_vec(), b"hello".to_vec()];
        let mut p = MapPack::from_entries(vals.iter().map(|v| &v[..]));
        let mut model = vals.clone();
        assert_eq!(items(&p), model);
        p.insert(1, b"mid");
        model.insert(1, b"mid".to_vec());
        p.replace(0, b"A");
        model[0] = b"A".to_vec();
        p.replace(2, b"longer than before");
        model[2] = b"longer than before".to_vec();
        assert_eq!(p.pop_back(), model.pop());
        p.extend([&b"x"[..], &b"yy"[..]]);
        model.extend([b"x".to_vec(), b"yy".to_vec()]);
        assert_eq!(p.remove(0), Some(model.remove(0)));
        assert_eq!(items(&p), model);
        for (i, m) in model.iter().enumerate() {
            assert_eq!(p.get(i), Some(&m[..]));
        }
        assert_eq!(p.bytes(), p.clone().bytes());
    }
}
