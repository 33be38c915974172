//! The set type: an `intset` (sorted integers packed at the narrowest width that holds them:
//! 2, 4 or 8 bytes) while every member is an integer and there are at most
//! `set-max-intset-entries` of them; otherwise a `hashtable`. Redis 7.0 has no listpack
//! encoding for sets, and like Redis a set never converts back.

use std::borrow::Cow;

use rand::{Rng, RngExt};

use crate::util::dict::Dict;
use crate::util::numfmt::parse_i64;
use crate::util::smallbytes::SmallBytes;

#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct IntSet {
    /// Bytes per element: 2, 4 or 8.
    width: u8,
    data: Vec<u8>,
}

fn width_for(v: i64) -> u8 {
    if i16::try_from(v).is_ok() {
        2
    } else if i32::try_from(v).is_ok() {
        4
    } else {
        8
    }
}

impl IntSet {
    pub fn new() -> Self {
        IntSet { width: 2, data: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.width.max(2) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<i64> {
        let w = self.width as usize;
        let b = self.data.get(i * w..i * w + w)?;
        Some(match w {
            2 => i16::from_le_bytes([b[0], b[1]]) as i64,
            4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            _ => i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        })
    }

    fn put(&mut self, i: usize, v: i64) {
        let w = self.width as usize;
        let bytes = v.to_le_bytes();
        self.data[i * w..i * w + w].copy_from_slice(&bytes[..w]);
    }

    /// Binary search: Ok(index) if present, Err(insertion point) otherwise.
    fn search(&self, v: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid) {
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
        let w = width_for(v);
        if w > self.width {
            let old: Vec<i64> = self.iter().collect();
            self.width = w;
            self.data = vec![0; old.len() * w as usize];
            for (i, x) in old.into_iter().enumerate() {
                self.put(i, x);
            }
        }
        match self.search(v) {
            Ok(_) => false,
            Err(pos) => {
                let w = self.width as usize;
                self.data.splice(pos * w..pos * w, std::iter::repeat_n(0u8, w));
                self.put(pos, v);
                // Sets are mostly built once: keep capacity near the size (like Redis's realloc).
                if self.data.capacity() > self.data.len() + self.data.len() / 4 + 8 {
                    self.data.shrink_to_fit();
                }
                true
            }
        }
    }

    pub fn remove(&mut self, v: i64) -> bool {
        match self.search(v) {
            Ok(pos) => {
                let w = self.width as usize;
                self.data.drain(pos * w..pos * w + w);
                true
            }
            Err(_) => false,
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = i64> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    pub fn bytes(&self) -> usize {
        self.data.capacity()
    }
}

pub enum SetValue {
    Ints(IntSet),
    /// Boxed so an intset does not pay for the table header.
    Table(Box<Dict<SmallBytes, ()>>),
}

impl Clone for SetValue {
    fn clone(&self) -> Self {
        match self {
            SetValue::Ints(i) => SetValue::Ints(i.clone()),
            SetValue::Table(d) => {
                let mut n = Dict::new();
                for (k, _) in d.iter() {
                    n.insert_new(k.clone(), ());
                }
                SetValue::Table(Box::new(n))
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
        if parse_i64(m).is_some() { SetValue::Ints(IntSet::new()) } else { SetValue::Table(Box::default()) }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            SetValue::Ints(_) => "intset",
            SetValue::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SetValue::Ints(i) => i.len(),
            SetValue::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            SetValue::Ints(i) => parse_i64(m).is_some_and(|v| i.contains(v)),
            SetValue::Table(d) => d.contains_key(m),
        }
    }

    fn convert(&mut self) {
        if let SetValue::Ints(i) = self {
            let mut d = Dict::new();
            for v in i.iter() {
                d.insert_new(SmallBytes::new(v.to_string().as_bytes()), ());
            }
            *self = SetValue::Table(Box::new(d));
        }
    }

    /// Adds a member; returns true if it is new.
    pub fn add(&mut self, m: &[u8], max_intset: usize) -> bool {
        if let SetValue::Ints(i) = self {
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
        match self {
            SetValue::Table(d) => {
                if d.contains_key(m) {
                    false
                } else {
                    d.insert_new(SmallBytes::new(m), ());
                    true
                }
            }
            SetValue::Ints(_) => false,
        }
    }

    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            SetValue::Ints(i) => parse_i64(m).is_some_and(|v| i.remove(v)),
            SetValue::Table(d) => {
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
        match self {
            SetValue::Ints(i) => Box::new(i.iter().map(|v| Cow::Owned(v.to_string().into_bytes()))),
            SetValue::Table(d) => Box::new(d.iter().map(|(k, _)| Cow::Borrowed(k.as_slice()))),
        }
    }

    pub fn random<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<Cow<'_, [u8]>> {
        match self {
            SetValue::Ints(i) => {
                if i.is_empty() {
                    return None;
                }
                let v = i.get(rng.random_range(0..i.len()))?;
                Some(Cow::Owned(v.to_string().into_bytes()))
            }
            SetValue::Table(d) => d.random(rng).map(|(k, _)| Cow::Borrowed(k.as_slice())),
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
        match self {
            SetValue::Ints(_) => {
                for m in self.iter() {
                    f(&m);
                }
                0
            }
            SetValue::Table(d) => d.scan(cursor, |k, _| f(k)),
        }
    }

    pub fn mem_usage(&self) -> usize {
        match self {
            SetValue::Ints(i) => i.bytes(),
            SetValue::Table(d) => d.slots() * 8 + d.iter().map(|(k, _)| 40 + k.heap_size()).sum::<usize>(),
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
        assert_eq!(s.width, 8);
        assert!(s.remove(100));
        assert!(!s.contains(100));
        assert_eq!(s.len(), 4);
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
