//! The set type: an `intset` (sorted integers packed as narrow offsets, see [`IntSet`]) while
//! every member is an integer and there are at most
//! `set-max-intset-entries` of them; otherwise a `hashtable`. Redis 7.0 has no listpack
//! encoding for sets, and like Redis a set never converts back.

use std::borrow::Cow;

use rand::{Rng, RngExt};

use crate::util::dict::Dict;
use crate::util::numfmt::parse_i64;
use crate::util::smallbytes::SmallBytes;
use crate::util::thin::{Either, EitherMut, EitherRef, ThinBytes, ThinPtr};

/// Sorted integers stored as offsets from the smallest one ("frame of reference"), each offset
/// in the fewest whole bytes (1, 2, 4 or 8) that hold the set's range. Layout, in one
/// exact-size box: the width byte, the base as a zigzag varint, then the offsets little-endian.
/// Never larger than Redis's intset (whose widths 2/4/8 bound the same ranges) and often half
/// of it: IDs, ports or years cluster, so 1-byte offsets are common. An empty set allocates
/// nothing.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
#[repr(transparent)]
pub struct IntSet {
    data: ThinBytes,
}

// SAFETY: IntSet is repr(transparent) over a ThinBytes, itself a ThinPtr.
unsafe impl ThinPtr for IntSet {}

/// Bytes needed for offsets up to `range`.
fn width_for(range: u64) -> usize {
    if range <= u8::MAX as u64 {
        1
    } else if range <= u16::MAX as u64 {
        2
    } else if range <= u32::MAX as u64 {
        4
    } else {
        8
    }
}

/// The decoded header: offset width, base value, and where the offsets start.
#[derive(Clone, Copy)]
struct Layout {
    width: usize,
    base: i64,
    start: usize,
}

impl Layout {
    fn encode(self, out: &mut Vec<u8>) {
        out.push(self.width as u8);
        let mut z = ((self.base << 1) ^ (self.base >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }
}

impl IntSet {
    pub fn new() -> Self {
        IntSet::default()
    }

    fn layout(&self) -> Layout {
        let Some(&width) = self.data.first() else {
            return Layout { width: 1, base: 0, start: 0 };
        };
        let (mut z, mut shift, mut p) = (0u64, 0, 1);
        while let Some(&b) = self.data.get(p) {
            z |= ((b & 0x7f) as u64) << shift;
            p += 1;
            if b & 0x80 == 0 || shift >= 63 {
                break;
            }
            shift += 7;
        }
        let base = ((z >> 1) as i64) ^ -((z & 1) as i64);
        Layout { width: (width as usize).max(1), base, start: p }
    }

    pub fn len(&self) -> usize {
        let l = self.layout();
        self.data.len().saturating_sub(l.start) / l.width
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn get_in(&self, l: Layout, i: usize) -> Option<i64> {
        let at = l.start + i * l.width;
        let b = self.data.get(at..at + l.width)?;
        let mut a = [0u8; 8];
        a[..l.width].copy_from_slice(b);
        Some(l.base.wrapping_add(u64::from_le_bytes(a) as i64))
    }

    pub fn get(&self, i: usize) -> Option<i64> {
        self.get_in(self.layout(), i)
    }

    /// Binary search: Ok(index) if present, Err(insertion point) otherwise.
    fn search(&self, v: i64) -> Result<usize, usize> {
        let l = self.layout();
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get_in(l, mid) {
                Some(x) if x < v => lo = mid + 1,
                Some(x) if x > v => hi = mid,
                _ => return Ok(mid),
            }
        }
        Err(lo)
    }

    pub fn contains(&self, v: i64) -> bool {
        self.search(v).is_ok()
    }

    pub fn insert(&mut self, v: i64) -> bool {
        let pos = match self.search(v) {
            Ok(_) => return false,
            Err(pos) => pos,
        };
        let n = self.len();
        let l = self.layout();
        if n > 0 && v > l.base {
            let off = v.wrapping_sub(l.base) as u64;
            if width_for(off) <= l.width {
                // Fits the current frame: splice the offset in, like Redis's memmove.
                let mut d = Vec::with_capacity(self.data.len() + l.width);
                d.extend_from_slice(&self.data);
                let at = l.start + pos * l.width;
                d.splice(at..at, off.to_le_bytes()[..l.width].iter().copied());
                self.data = ThinBytes::new(&d);
                return true;
            }
        }
        // A new minimum or a wider range: rebuild the frame with the new element in place.
        let mut vals: Vec<i64> = self.iter().collect();
        vals.insert(pos, v);
        self.data = Self::encode(&vals, l.width);
        true
    }

    /// Encodes sorted values with offsets at least `min_width` wide (widths never shrink, so
    /// a set that once needed a wide frame does not re-encode on every change near its edge).
    fn encode(vals: &[i64], min_width: usize) -> ThinBytes {
        let (Some(&lo), Some(&hi)) = (vals.first(), vals.last()) else { return ThinBytes::default() };
        let width = width_for(hi.wrapping_sub(lo) as u64).max(min_width);
        let l = Layout { width, base: lo, start: 0 };
        let mut out = Vec::with_capacity(11 + vals.len() * width);
        l.encode(&mut out);
        for &x in vals {
            out.extend_from_slice(&(x.wrapping_sub(lo) as u64).to_le_bytes()[..width]);
        }
        ThinBytes::new(&out)
    }

    pub fn remove(&mut self, v: i64) -> bool {
        match self.search(v) {
            Ok(pos) => {
                let l = self.layout();
                let mut d = self.data.to_vec();
                let at = l.start + pos * l.width;
                d.drain(at..at + l.width);
                if d.len() == l.start {
                    d.clear();
                }
                self.data = ThinBytes::new(&d);
                true
            }
            Err(_) => false,
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = i64> + '_ {
        let l = self.layout();
        (0..self.len()).filter_map(move |i| self.get_in(l, i))
    }

    pub fn bytes(&self) -> usize {
        self.data.len()
    }
}

/// One pointer inside a [`super::Value`]: an intset as is, or the boxed table (so an intset
/// does not pay for the table header).
pub struct SetValue(Either<IntSet, Dict<SmallBytes, ()>>);

enum Enc<'a> {
    Ints(&'a IntSet),
    Table(&'a Dict<SmallBytes, ()>),
}

enum EncMut<'a> {
    Ints(&'a mut IntSet),
    Table(&'a mut Dict<SmallBytes, ()>),
}

impl Clone for SetValue {
    fn clone(&self) -> Self {
        match self.enc() {
            Enc::Ints(i) => SetValue::ints(i.clone()),
            Enc::Table(d) => {
                let mut n = Dict::new();
                for (k, _) in d.iter() {
                    n.insert_new(k.clone(), ());
                }
                SetValue::table(n)
            }
        }
    }
}

impl std::fmt::Debug for SetValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Set({} members, {})", self.len(), self.encoding_name())
    }
}

impl PartialEq for SetValue {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains(&m))
    }
}

impl SetValue {
    /// An empty set of the encoding Redis would create for a first member `m`.
    pub fn for_member(m: &[u8]) -> Self {
        if parse_i64(m).is_some() { SetValue::ints(IntSet::new()) } else { SetValue::table(Dict::new()) }
    }

    /// An empty intset.
    pub fn ints(i: IntSet) -> Self {
        SetValue(Either::left(i))
    }

    fn table(d: Dict<SmallBytes, ()>) -> Self {
        SetValue(Either::right(Box::new(d)))
    }

    /// See [`super::Value::prefetch_member`].
    pub fn prefetch_member(&self, h: usize, node: bool) {
        if let Enc::Table(d) = self.enc() {
            d.prefetch(h, node);
        }
    }

    /// DEBUG HTSTATS-KEY: the hash table's statistics, when the set is one.
    pub fn table_stats(&self) -> Option<String> {
        match self.enc() {
            Enc::Table(d) => Some(d.stats()),
            _ => None,
        }
    }

    pub fn is_ints(&self) -> bool {
        matches!(self.enc(), Enc::Ints(_))
    }

    fn enc(&self) -> Enc<'_> {
        match self.0.get() {
            EitherRef::Left(i) => Enc::Ints(i),
            EitherRef::Right(d) => Enc::Table(d),
        }
    }

    fn enc_mut(&mut self) -> EncMut<'_> {
        match self.0.get_mut() {
            EitherMut::Left(i) => EncMut::Ints(i),
            EitherMut::Right(d) => EncMut::Table(d),
        }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self.enc() {
            Enc::Ints(_) => "intset",
            Enc::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match self.enc() {
            Enc::Ints(i) => i.len(),
            Enc::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match self.enc() {
            Enc::Ints(i) => parse_i64(m).is_some_and(|v| i.contains(v)),
            Enc::Table(d) => d.contains_key(m),
        }
    }

    fn convert(&mut self) {
        if let Enc::Ints(i) = self.enc() {
            let mut d = Dict::new();
            for v in i.iter() {
                d.insert_new(SmallBytes::new(v.to_string().as_bytes()), ());
            }
            *self = SetValue::table(d);
        }
    }

    /// Adds a member; returns true if it is new.
    pub fn add(&mut self, m: &[u8], max_intset: usize) -> bool {
        if let EncMut::Ints(i) = self.enc_mut() {
            match parse_i64(m) {
                Some(v) => {
                    let added = i.insert(v);
                    if added && i.len() > max_intset {
                        self.convert();
                    }
                    return added;
                }
                None => self.convert(),
            }
        }
        match self.enc_mut() {
            EncMut::Table(d) => {
                if d.contains_key(m) {
                    false
                } else {
                    d.insert_new(SmallBytes::new(m), ());
                    true
                }
            }
            EncMut::Ints(_) => false,
        }
    }

    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self.enc_mut() {
            EncMut::Ints(i) => parse_i64(m).is_some_and(|v| i.remove(v)),
            EncMut::Table(d) => {
                let r = d.remove(m).is_some();
                if r {
                    d.shrink_if_needed();
                }
                r
            }
        }
    }

    /// Members in the set's own order (ascending for an intset).
    pub fn iter(&self) -> Box<dyn Iterator<Item = Cow<'_, [u8]>> + '_> {
        match self.enc() {
            Enc::Ints(i) => Box::new(i.iter().map(|v| Cow::Owned(v.to_string().into_bytes()))),
            Enc::Table(d) => Box::new(d.iter().map(|(k, _)| Cow::Borrowed(k.as_slice()))),
        }
    }

    pub fn random<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<Cow<'_, [u8]>> {
        match self.enc() {
            Enc::Ints(i) => {
                if i.is_empty() {
                    return None;
                }
                let v = i.get(rng.random_range(0..i.len()))?;
                Some(Cow::Owned(v.to_string().into_bytes()))
            }
            Enc::Table(d) => d.random(rng).map(|(k, _)| Cow::Borrowed(k.as_slice())),
        }
    }

    /// Removes and returns a random member.
    pub fn pop<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<Vec<u8>> {
        let m = self.random(rng)?.into_owned();
        self.remove(&m);
        Some(m)
    }

    /// One SSCAN step; an intset is returned whole with cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8])) -> u64 {
        match self.enc() {
            Enc::Ints(_) => {
                for m in self.iter() {
                    f(&m);
                }
                0
            }
            Enc::Table(d) => d.scan(cursor, |k, _| f(k)),
        }
    }

    pub fn mem_usage(&self) -> usize {
        match self.enc() {
            Enc::Ints(i) => i.bytes(),
            Enc::Table(d) => d.slots() * 8 + d.iter().map(|(k, _)| 40 + k.heap_size()).sum::<usize>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intset_widens_and_stays_sorted() {
        let mut s = IntSet::new();
        for v in [5, -3, 100, 70000, -5_000_000_000, 5] {
            s.insert(v);
        }
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![-5_000_000_000, -3, 5, 100, 70000]);
        assert_eq!(s.layout().width, 8);
        assert!(s.remove(100));
        assert!(!s.contains(100));
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn intset_matches_a_btreeset() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let pools: [&[i64]; 3] = [
            &[0, 1, 255, 256, 65535, 65536, -1, -256],
            &[i64::MIN, i64::MAX, i64::MIN + 1, i64::MAX - 1, 0, 4294967295, -4294967296],
            &[1000, 1001, 1133, 999, 1200, 1255, 1256],
        ];
        for pool in pools {
            let mut s = IntSet::new();
            let mut model = std::collections::BTreeSet::new();
            for _ in 0..400 {
                let v = pool[rng.random_range(0..pool.len())];
                if rng.random_bool(0.7) {
                    assert_eq!(s.insert(v), model.insert(v));
                } else {
                    assert_eq!(s.remove(v), model.remove(&v));
                }
                assert_eq!(s.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
                assert_eq!(s.len(), model.len());
            }
        }
        // Clustered values take one byte each.
        let mut s = IntSet::new();
        for v in 1000..1020 {
            s.insert(v);
        }
        assert_eq!(s.bytes(), 1 + 2 + 20);
    }

    #[test]
    fn converts_on_non_integer_or_size() {
        let mut s = SetValue::for_member(b"1");
        assert!(s.add(b"1", 2));
        assert!(s.add(b"2", 2));
        assert_eq!(s.encoding_name(), "intset");
        assert!(s.add(b"3", 2));
        assert_eq!(s.encoding_name(), "hashtable");
        let mut t = SetValue::for_member(b"1");
        t.add(b"1", 512);
        t.add(b"x", 512);
        assert_eq!(t.encoding_name(), "hashtable");
        assert!(t.contains(b"1") && t.contains(b"x"));
    }
}
