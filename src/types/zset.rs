//! The sorted-set type: `listpack` (a [`Packed`] of member, score pairs kept in (score, member)
//! order, scores in the short form of `write_score`) while it has at most `zset-max-listpack-entries` members of at
//! most `zset-max-listpack-value` bytes; then `skiplist`: a member → score [`Dict`] beside an
//! order-statistic tree.
//!
//! The ordered structure and why it is a B+tree: [`super::scoretree`].

use std::cmp::Ordering;

use rand::{Rng, RngExt};

use super::packed::MapPack as Packed;
use super::scoretree::ScoreTree;
pub use super::scoretree::cmp_key;
use crate::util::dict::Dict;
use crate::util::smallbytes::SmallBytes;
use crate::util::thin::{Either, EitherMut, EitherRef};

#[derive(Clone, Copy, Debug)]
pub struct ZsetLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

pub struct SortedSet {
    dict: Dict<SmallBytes, f64>,
    tree: ScoreTree,
}

/// One pointer inside a [`super::Value`]: the packed encoding as is, or the boxed
/// dict-and-tree.
pub struct ZSetValue(Either<Packed, SortedSet>);

enum Enc<'a> {
    Packed(&'a Packed),
    Sorted(&'a SortedSet),
}

enum EncMut<'a> {
    Packed(&'a mut Packed),
    Sorted(&'a mut SortedSet),
}

impl Clone for ZSetValue {
    fn clone(&self) -> Self {
        match self.enc() {
            Enc::Packed(p) => ZSetValue::packed(p.clone()),
            Enc::Sorted(s) => {
                let mut d = Dict::new();
                for (k, v) in s.dict.iter() {
                    d.insert_new(k.clone(), *v);
                }
                ZSetValue::sorted(SortedSet { dict: d, tree: s.tree.clone() })
            }
        }
    }
}

impl std::fmt::Debug for ZSetValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZSet({} members, {})", self.len(), self.encoding_name())
    }
}

impl PartialEq for ZSetValue {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.range(0, self.len(), false).eq(other.range(0, other.len(), false))
    }
}

impl Default for ZSetValue {
    fn default() -> Self {
        ZSetValue::packed(Packed::new())
    }
}

/// Scores in the packed encoding: an integral score below 2^53 in magnitude is stored as the
/// fewest little-endian two's-complement bytes that hold it (0 takes none), anything else as
/// the 8 raw bytes of the double. Integer scores (ranks, timestamps, counters) are the common
/// case and cost 1–7 bytes instead of 8; the entry length tells the two forms apart.
/// A -0 score is stored as 0, which is what Redis's listpack gives back for it.
fn write_score(score: f64) -> ([u8; 8], usize) {
    const EXACT: f64 = (1u64 << 53) as f64;
    if score.fract() == 0.0 && score.abs() < EXACT {
        let n = score as i64;
        let bytes = n.to_le_bytes();
        // Drop high bytes that only repeat the sign.
        let mut len = 8;
        while len > 0 {
            let top = bytes[len - 1];
            // The byte below must carry the same sign; an empty encoding means 0.
            let redundant = if len >= 2 {
                let below_neg = bytes[len - 2] & 0x80 != 0;
                (top == 0 && !below_neg) || (top == 0xff && below_neg)
            } else {
                n == 0
            };
            if redundant {
                len -= 1;
            } else {
                break;
            }
        }
        if len < 8 {
            return (bytes, len);
        }
    }
    (score.to_le_bytes(), 8)
}

fn read_score(b: &[u8]) -> f64 {
    if b.len() == 8 {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        return f64::from_le_bytes(a);
    }
    let fill = if b.last().is_some_and(|&t| t & 0x80 != 0) { 0xff } else { 0 };
    let mut a = [fill; 8];
    a[..b.len()].copy_from_slice(b);
    i64::from_le_bytes(a) as f64
}

impl ZSetValue {
    fn packed(p: Packed) -> Self {
        ZSetValue(Either::left(p))
    }

    fn sorted(s: SortedSet) -> Self {
        ZSetValue(Either::right(Box::new(s)))
    }

    /// See [`super::Value::prefetch_member`].
    pub fn prefetch_member(&self, h: usize, node: bool) {
        if let Enc::Sorted(s) = self.enc() {
            s.dict.prefetch(h, node);
        }
    }

    /// Whether this is the `listpack` encoding (one allocation).
    /// DEBUG HTSTATS-KEY: the member dict's statistics, when the set is not packed.
    pub fn table_stats(&self) -> Option<String> {
        match self.enc() {
            Enc::Sorted(s) => Some(s.dict.stats()),
            Enc::Packed(_) => None,
        }
    }

    pub fn is_packed(&self) -> bool {
        matches!(self.enc(), Enc::Packed(_))
    }

    fn enc(&self) -> Enc<'_> {
        match self.0.get() {
            EitherRef::Left(p) => Enc::Packed(p),
            EitherRef::Right(s) => Enc::Sorted(s),
        }
    }

    fn enc_mut(&mut self) -> EncMut<'_> {
        match self.0.get_mut() {
            EitherMut::Left(p) => EncMut::Packed(p),
            EitherMut::Right(s) => EncMut::Sorted(s),
        }
    }
    /// An empty sorted set in the encoding Redis 7.0 picks for a first member of `first_len`.
    pub fn for_first(first_len: usize, limits: ZsetLimits) -> Self {
        if limits.max_entries == 0 || limits.max_value < first_len {
            ZSetValue::sorted(SortedSet { dict: Dict::new(), tree: ScoreTree::new() })
        } else {
            ZSetValue::packed(Packed::new())
        }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self.enc() {
            Enc::Packed(_) => "listpack",
            Enc::Sorted(_) => "skiplist",
        }
    }

    pub fn len(&self) -> usize {
        match self.enc() {
            Enc::Packed(p) => p.len() / 2,
            Enc::Sorted(s) => s.dict.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self.enc() {
            Enc::Packed(p) => {
                let mut it = p.iter();
                while let (Some(m), Some(s)) = (it.next(), it.next()) {
                    if m == member {
                        return Some(read_score(s));
                    }
                }
                None
            }
            Enc::Sorted(s) => s.dict.get(member).copied(),
        }
    }

    /// The skiplist form for good: Redis's SORT leaves a sorted set it read so (zsetConvert).
    pub fn to_skiplist(&mut self) {
        self.convert();
    }

    fn convert(&mut self) {
        if let Enc::Packed(p) = self.enc() {
            let mut s = SortedSet { dict: Dict::new(), tree: ScoreTree::new() };
            let mut it = p.iter();
            while let (Some(m), Some(sc)) = (it.next(), it.next()) {
                let score = read_score(sc);
                s.dict.insert_new(SmallBytes::new(m), score);
                s.tree.insert(score, m);
            }
            *self = ZSetValue::sorted(s);
        }
    }

    /// Sets `member`'s score (inserting it if new). Returns true if it was added.
    pub fn set(&mut self, member: &[u8], score: f64, limits: ZsetLimits) -> bool {
        let old = self.score(member);
        self.set_known(member, score, old, limits)
    }

    /// [`Self::set`] for a caller that has just looked up the member's current score (`old`).
    pub fn set_known(&mut self, member: &[u8], score: f64, old: Option<f64>, limits: ZsetLimits) -> bool {
        if old == Some(score) {
            // An unchanged score leaves the member where it is (Redis compares with !=, so
            // -0 for 0 keeps the stored 0).
            return false;
        }
        if let Enc::Packed(p) = self.enc() {
            let grows = old.is_none() && p.len() / 2 + 1 > limits.max_entries;
            if grows || member.len() > limits.max_value {
                self.convert();
            }
        }
        match self.enc_mut() {
            EncMut::Packed(p) => {
                if let Some(i) = p.position(member, 2) {
                    p.remove_range(i, 2);
                }
                // Find the insertion point: the first pair ordered after (score, member).
                let mut idx = 0;
                let mut it = p.iter();
                while let (Some(m), Some(s)) = (it.next(), it.next()) {
                    if cmp_key(read_score(s), m, score, member) == Ordering::Greater {
                        break;
                    }
                    idx += 2;
                }
                let (sb, sl) = write_score(score);
                p.insert_all(idx, &[member, &sb[..sl]]);
            }
            EncMut::Sorted(s) => match old {
                Some(o) => {
                    s.tree.remove(o, member);
                    s.tree.insert(score, member);
                    if let Some(v) = s.dict.get_mut(member) {
                        *v = score;
                    }
                }
                None => {
                    s.tree.insert(score, member);
                    s.dict.insert_new(SmallBytes::new(member), score);
                }
            },
        }
        old.is_none()
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.enc_mut() {
            EncMut::Packed(p) => match p.position(member, 2) {
                Some(i) => {
                    p.remove_range(i, 2);
                    true
                }
                None => false,
            },
            EncMut::Sorted(s) => match s.dict.remove(member) {
                Some((_, score)) => {
                    s.tree.remove(score, member);
                    s.dict.shrink_if_needed();
                    true
                }
                None => false,
            },
        }
    }

    /// 0-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        match self.enc() {
            Enc::Sorted(s) => Some(s.tree.rank(score, member)),
            Enc::Packed(_) => Some(self.count_before(|s, m| cmp_key(s, m, score, member) == Ordering::Less)),
        }
    }

    /// Number of members for which `before` holds (a prefix of the order).
    pub fn count_before(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        match self.enc() {
            Enc::Packed(p) => {
                let mut it = p.iter();
                let mut n = 0;
                while let (Some(m), Some(s)) = (it.next(), it.next()) {
                    if !before(read_score(s), m) {
                        break;
                    }
                    n += 1;
                }
                n
            }
            Enc::Sorted(s) => s.tree.count_before(|sc, m| before(sc, m)),
        }
    }

    /// Members with ranks in `start..end` (ascending ranks), yielded ascending, or descending
    /// when `rev`.
    pub fn range(&self, start: usize, end: usize, rev: bool) -> Box<dyn Iterator<Item = (&[u8], f64)> + '_> {
        let end = end.min(self.len());
        if start >= end {
            return Box::new(std::iter::empty());
        }
        match self.enc() {
            Enc::Packed(p) => {
                let mut it = p.iter().skip(2 * start);
                let items = std::iter::from_fn(move || Some((it.next()?, read_score(it.next()?)))).take(end - start);
                if rev {
                    let v: Vec<_> = items.collect();
                    Box::new(v.into_iter().rev())
                } else {
                    Box::new(items)
                }
            }
            Enc::Sorted(s) => {
                let from = if rev { end - 1 } else { start };
                Box::new(s.tree.iter_at(from, rev).map(|(sc, m)| (m, sc)).take(end - start))
            }
        }
    }

    /// A uniformly random member with its score.
    pub fn random<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<(&[u8], f64)> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let i = rng.random_range(0..n);
        self.range(i, i + 1, false).next()
    }

    /// One ZSCAN step; a listpack is returned whole with cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], f64)) -> u64 {
        match self.enc() {
            Enc::Packed(_) => {
                for (m, s) in self.range(0, self.len(), false) {
                    f(m, s);
                }
                0
            }
            Enc::Sorted(s) => s.dict.scan(cursor, |k, v| f(k, *v)),
        }
    }

    pub fn mem_usage(&self) -> usize {
        match self.enc() {
            Enc::Packed(p) => p.bytes(),
            // A 48-byte dict node and a leaf entry of 32 bytes at ~70% fill per member.
            Enc::Sorted(s) => s.dict.slots() * 8 + s.dict.len() * 94,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_scores_round_trip_and_integers_are_short() {
        for s in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            127.0,
            128.0,
            -128.0,
            -129.0,
            255.0,
            65535.0,
            1e15,
            -1e15,
            9007199254740991.0,
            9007199254740992.0,
            0.5,
            -2.25,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            1e300,
        ] {
            let (b, l) = write_score(s);
            let back = read_score(&b[..l]);
            // -0 comes back as 0, as from Redis's listpack.
            assert_eq!(back.to_bits(), (s + 0.0).to_bits(), "{s}");
        }
        assert_eq!(write_score(0.0).1, 0);
        assert_eq!(write_score(100.0).1, 1);
        assert_eq!(write_score(-100.0).1, 1);
        assert_eq!(write_score(200.0).1, 2);
        assert_eq!(write_score(1_700_000_000_000.0).1, 6);
        assert_eq!(write_score(0.5).1, 8);
    }

    #[test]
    fn both_encodings_agree() {
        let small = ZsetLimits { max_entries: 128, max_value: 64 };
        let big = ZsetLimits { max_entries: 0, max_value: 64 };
        let mut a = ZSetValue::for_first(1, small);
        let mut b = ZSetValue::for_first(1, big);
        assert_eq!(a.encoding_name(), "listpack");
        assert_eq!(b.encoding_name(), "skiplist");
        for (i, m) in ["x", "a", "c", "b", "a"].iter().enumerate() {
            let s = (i % 3) as f64;
            assert_eq!(a.set(m.as_bytes(), s, small), b.set(m.as_bytes(), s, big));
        }
        let ra: Vec<_> = a.range(0, 10, false).map(|(m, s)| (m.to_vec(), s)).collect();
        let rb: Vec<_> = b.range(0, 10, false).map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(ra, rb);
        assert_eq!(a.rank(b"c"), b.rank(b"c"));
        assert!(a.remove(b"x") && b.remove(b"x"));
        assert_eq!(a.len(), 3);
        assert_eq!(
            b.range(0, 3, true).map(|(m, _)| m.to_vec()).collect::<Vec<_>>(),
            vec![b"c".to_vec(), b"a".to_vec(), b"b".to_vec()]
        );
    }
}
