//! `Packed`: a compact sequence of byte strings in one contiguous buffer — Ember's listpack.
//!
//! Layout: a 4-byte little-endian element count, then entries. Each entry is
//! `header | data | trailer`: the header is the data length as LEB128 (one byte below 128),
//! the trailer is `header+data` length as a reversed LEB128 so the sequence can be walked
//! backwards from its end. A short element costs its bytes plus 2. Small hashes, small lists
//! and the nodes of long lists use it; operations are linear in the buffer, which is bounded
//! by the conversion thresholds (e.g. 512 entries, 8 KiB per list node).

/// Offset of the first entry (after the count).
const HDR: usize = 4;

#[derive(Clone, PartialEq, Eq)]
pub struct Packed {
    buf: Vec<u8>,
}

impl Default for Packed {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Packed {
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

fn encode_entry(v: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(v.len() + 4);
    put_varint(&mut e, v.len());
    e.extend_from_slice(v);
    let body = e.len();
    put_trailer(&mut e, body);
    e
}

impl Packed {
    pub fn new() -> Self {
        Packed { buf: vec![0; HDR] }
    }

    pub fn len(&self) -> usize {
        u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn set_len(&mut self, n: usize) {
        self.buf[..HDR].copy_from_slice(&(n as u32).to_le_bytes());
    }

    /// Bytes used by the encoding (for size limits and MEMORY USAGE).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    pub fn capacity_bytes(&self) -> usize {
        self.buf.capacity()
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
        let body = p + len - off;
        let next = p + len + varint_len(body);
        (next <= self.buf.len()).then_some((data, next))
    }

    /// Start offset of the entry that ends at `end` (exclusive).
    fn entry_before(&self, end: usize) -> Option<usize> {
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

    pub fn iter(&self) -> Iter<'_> {
        Iter { p: self, front: HDR, back: self.buf.len(), left: self.len() }
    }

    /// Offset of the entry at `idx` (walking from the nearer end).
    fn offset_of(&self, idx: usize) -> Option<usize> {
        let n = self.len();
        if idx >= n {
            return None;
        }
        if idx <= n / 2 {
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
        let e = encode_entry(v);
        self.buf.extend_from_slice(&e);
        self.set_len(self.len() + 1);
    }

    pub fn push_front(&mut self, v: &[u8]) {
        self.insert_at_offset(HDR, v);
    }

    fn insert_at_offset(&mut self, off: usize, v: &[u8]) {
        let e = encode_entry(v);
        self.buf.splice(off..off, e);
        self.set_len(self.len() + 1);
    }

    /// Inserts before index `idx` (`idx == len` appends).
    pub fn insert(&mut self, idx: usize, v: &[u8]) {
        if idx >= self.len() {
            self.push_back(v);
        } else if let Some(off) = self.offset_of(idx) {
            self.insert_at_offset(off, v);
        }
    }

    pub fn remove(&mut self, idx: usize) -> Option<Vec<u8>> {
        let off = self.offset_of(idx)?;
        let (r, next) = self.entry_at(off)?;
        let v = self.buf[r].to_vec();
        self.buf.drain(off..next);
        self.set_len(self.len() - 1);
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
        self.buf.drain(start..end);
        self.set_len(n - count);
    }

    pub fn replace(&mut self, idx: usize, v: &[u8]) {
        if let Some(off) = self.offset_of(idx)
            && let Some((_, next)) = self.entry_at(off)
        {
            self.buf.splice(off..next, encode_entry(v));
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
        let off = self.entry_before(self.buf.len())?;
        let (r, _) = self.entry_at(off)?;
        let v = self.buf[r].to_vec();
        self.buf.truncate(off);
        self.set_len(n - 1);
        Some(v)
    }

    /// Index of the first entry equal to `v`, stepping `stride` entries (2 for field/value pairs).
    pub fn position(&self, v: &[u8], stride: usize) -> Option<usize> {
        self.iter().step_by(stride.max(1)).position(|e| e == v).map(|i| i * stride.max(1))
    }

    /// Gives back spare capacity (after a node stops growing).
    pub fn shrink(&mut self) {
        self.buf.shrink_to_fit();
    }

    /// Reserves room for entries totalling `data_bytes` of payload, `count` of them.
    pub fn reserve(&mut self, data_bytes: usize, count: usize) {
        self.buf.reserve_exact(data_bytes + count * 4);
    }

    /// Keeps capacity within 25% of the size: small hashes are built by a few writes and then
    /// mostly read, so doubling growth would waste up to half their memory.
    pub fn trim_capacity(&mut self) {
        let len = self.buf.len();
        if self.buf.capacity() > len + len / 4 + 16 {
            self.buf.shrink_to(len + len / 8);
        }
    }

    /// Splits off the entries from `idx` on into a new Packed.
    pub fn split_off(&mut self, idx: usize) -> Packed {
        let n = self.len();
        let mut tail = Packed::new();
        if idx >= n {
            return tail;
        }
        let Some(off) = self.offset_of(idx) else { return tail };
        tail.buf.extend_from_slice(&self.buf[off..]);
        tail.set_len(n - idx);
        self.buf.truncate(off);
        self.set_len(idx);
        tail
    }

    /// Appends all entries of `other`.
    pub fn append(&mut self, other: &Packed) {
        self.buf.extend_from_slice(&other.buf[HDR..]);
        self.set_len(self.len() + other.len());
    }
}

pub struct Iter<'a> {
    p: &'a Packed,
    front: usize,
    back: usize,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
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

impl DoubleEndedIterator for Iter<'_> {
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

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(p: &Packed) -> Vec<Vec<u8>> {
        p.iter().map(|e| e.to_vec()).collect()
    }

    #[test]
    fn operations_match_a_vec() {
        let mut p = Packed::new();
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

    /// Data bytes with the high bit set (binary values, UTF-8, raw f64 scores) must not be
    /// mistaken for trailer bytes when walking backwards.
    #[test]
    fn binary_entries_walk_backwards() {
        let mut p = Packed::new();
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
    fn short_entries_cost_two_bytes() {
        let mut p = Packed::new();
        p.push_back(b"abc");
        assert_eq!(p.bytes(), HDR + 5);
    }
}
