//! The sorted-set type: `listpack` (a [`Packed`] of member, score pairs kept in (score, member)
//! order, scores as 8 raw bytes) while it has at most `zset-max-listpack-entries` members of at
//! most `zset-max-listpack-value` bytes; then `skiplist`: a member → score [`Dict`] beside an
//! order-statistic tree.
//!
//! # Why a treap rather than a skiplist
//! Redis's skiplist needs back pointers and spans, which in safe Rust means an arena anyway.
//! In an arena, a treap keyed by (score, member) with subtree sizes gives the same O(log n)
//! insert, delete, rank and select with less code and no unsafe: insert descends once and
//! rotates the new node up past lower priorities, delete descends once and merges the node's
//! children, sizes are fixed on the way back up. Random priorities keep the expected depth ~2·log2(n), which also
//! bounds the recursion. Nodes live in a `Vec` with a free list; indices are `u32`.

use std::cmp::Ordering;

use rand::{Rng, RngExt};

use super::packed::MapPack as Packed;
use crate::util::dict::Dict;
use crate::util::smallbytes::SmallBytes;

const NIL: u32 = u32::MAX;

#[derive(Clone)]
struct Node {
    score: f64,
    member: SmallBytes,
    left: u32,
    right: u32,
    prio: u32,
    size: u32,
    /// The next node in (score, member) order: range scans follow these links, one node per
    /// step, instead of an in-order walk that touches each node twice (rotations never
    /// change the order, so only insert and remove maintain them).
    next: u32,
}

/// The (score, member) order of sorted sets: scores numerically, ties by member bytes.
pub fn cmp_key(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    s1.partial_cmp(&s2).unwrap_or(Ordering::Equal).then_with(|| m1.cmp(m2))
}

#[derive(Clone, Default)]
pub struct Treap {
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
    seed: u32,
    /// The first node in order.
    head: u32,
}

impl Treap {
    pub fn new() -> Self {
        // A random seed per tree: with a known priority sequence a client could order its
        // inserts so the tree degenerates into a chain, and the recursive descents would then
        // be as deep as the set is large.
        Treap { nodes: Vec::new(), free: Vec::new(), root: NIL, seed: rand::random::<u32>() | 1, head: NIL }
    }

    fn size(&self, n: u32) -> u32 {
        if n == NIL { 0 } else { self.nodes[n as usize].size }
    }

    fn fix(&mut self, n: u32) {
        let (l, r) = (self.nodes[n as usize].left, self.nodes[n as usize].right);
        self.nodes[n as usize].size = 1 + self.size(l) + self.size(r);
    }

    pub fn len(&self) -> usize {
        self.size(self.root) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.root == NIL
    }

    fn next_prio(&mut self) -> u32 {
        // xorshift32: priorities only need to be independent of the keys.
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed = x;
        x
    }

    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].prio > self.nodes[b as usize].prio {
            let r = self.nodes[a as usize].right;
            let m = self.merge(r, b);
            self.nodes[a as usize].right = m;
            self.fix(a);
            a
        } else {
            let l = self.nodes[b as usize].left;
            let m = self.merge(a, l);
            self.nodes[b as usize].left = m;
            self.fix(b);
            b
        }
    }

    pub fn insert(&mut self, score: f64, member: &[u8]) {
        let prio = self.next_prio();
        let node = Node { score, member: SmallBytes::new(member), left: NIL, right: NIL, prio, size: 1, next: NIL };
        let idx = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        // The descent also finds the predecessor (the last node it passed on the right);
        // rotations keep the order, so linking after it is safe.
        let mut pred = NIL;
        self.root = self.insert_at(self.root, idx, score, member, &mut pred);
        let next = if pred == NIL { self.head } else { self.nodes[pred as usize].next };
        self.nodes[idx as usize].next = next;
        if pred == NIL {
            self.head = idx;
        } else {
            self.nodes[pred as usize].next = idx;
        }
    }

    /// One descent: the new node goes down by key and rotates up past lower priorities.
    fn insert_at(&mut self, n: u32, new: u32, score: f64, member: &[u8], pred: &mut u32) -> u32 {
        if n == NIL {
            return new;
        }
        let node = &self.nodes[n as usize];
        if cmp_key(score, member, node.score, &node.member) == Ordering::Less {
            let l = self.insert_at(node.left, new, score, member, pred);
            self.nodes[n as usize].left = l;
            if self.nodes[l as usize].prio > self.nodes[n as usize].prio {
                // Rotate right: l becomes the subtree root.
                self.nodes[n as usize].left = self.nodes[l as usize].right;
                self.nodes[l as usize].right = n;
                self.fix(n);
                self.fix(l);
                return l;
            }
        } else {
            *pred = n;
            let r = self.insert_at(node.right, new, score, member, pred);
            self.nodes[n as usize].right = r;
            if self.nodes[r as usize].prio > self.nodes[n as usize].prio {
                self.nodes[n as usize].right = self.nodes[r as usize].left;
                self.nodes[r as usize].left = n;
                self.fix(n);
                self.fix(r);
                return r;
            }
        }
        self.fix(n);
        n
    }

    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let mut found = false;
        let mut pred = NIL;
        self.root = self.remove_at(self.root, score, member, &mut found, &mut pred);
        found
    }

    /// Takes node `n` out of the order links; `pred` is its predecessor (NIL: it was first).
    fn unlink(&mut self, n: u32, pred: u32) {
        let after = self.nodes[n as usize].next;
        if pred == NIL {
            self.head = after;
        } else {
            self.nodes[pred as usize].next = after;
        }
    }

    /// One descent to the node, which is replaced by the merge of its children.
    /// One descent to the node, which is replaced by the merge of its children; `pred` tracks
    /// the last node passed on the right (the predecessor unless the node has a left subtree,
    /// whose rightmost node is then the predecessor).
    fn remove_at(&mut self, n: u32, score: f64, member: &[u8], found: &mut bool, pred: &mut u32) -> u32 {
        if n == NIL {
            return NIL;
        }
        let node = &self.nodes[n as usize];
        match cmp_key(score, member, node.score, &node.member) {
            Ordering::Less => {
                let l = self.remove_at(node.left, score, member, found, pred);
                self.nodes[n as usize].left = l;
            }
            Ordering::Greater => {
                *pred = n;
                let r = self.remove_at(node.right, score, member, found, pred);
                self.nodes[n as usize].right = r;
            }
            Ordering::Equal => {
                *found = true;
                let (l, r) = (node.left, node.right);
                let mut p = *pred;
                let mut c = l;
                while c != NIL {
                    p = c;
                    c = self.nodes[c as usize].right;
                }
                self.unlink(n, p);
                self.nodes[n as usize].member = SmallBytes::new(b"");
                self.free.push(n);
                return self.merge(l, r);
            }
        }
        self.fix(n);
        n
    }

    /// Number of elements for which `before` holds; `before` must hold for a prefix of the order.
    pub fn count_before(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut n = self.root;
        let mut count = 0;
        while n != NIL {
            let node = &self.nodes[n as usize];
            if before(node.score, &node.member) {
                count += self.size(node.left) as usize + 1;
                n = node.right;
            } else {
                n = node.left;
            }
        }
        count
    }

    /// The element at 0-based `rank`.
    pub fn select(&self, mut rank: usize) -> Option<(f64, &[u8])> {
        let mut n = self.root;
        while n != NIL {
            let node = &self.nodes[n as usize];
            let ls = self.size(node.left) as usize;
            match rank.cmp(&ls) {
                Ordering::Less => n = node.left,
                Ordering::Equal => return Some((node.score, &node.member)),
                Ordering::Greater => {
                    rank -= ls + 1;
                    n = node.right;
                }
            }
        }
        None
    }

    /// The node at 0-based `rank`, or NIL.
    fn select_node(&self, mut rank: usize) -> u32 {
        let mut n = self.root;
        while n != NIL {
            let node = &self.nodes[n as usize];
            let ls = self.size(node.left) as usize;
            match rank.cmp(&ls) {
                Ordering::Less => n = node.left,
                Ordering::Equal => return n,
                Ordering::Greater => {
                    rank -= ls + 1;
                    n = node.right;
                }
            }
        }
        NIL
    }

    /// Iteration in order from `rank` (ascending), along the order links.
    pub fn iter_from(&self, rank: usize) -> TreapIter<'_> {
        let cur = if rank == 0 { self.head } else { self.select_node(rank) };
        TreapIter { t: self, cur }
    }
}

pub struct TreapIter<'a> {
    t: &'a Treap,
    cur: u32,
}

impl<'a> Iterator for TreapIter<'a> {
    type Item = (f64, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.cur == NIL {
            return None;
        }
        let node = &self.t.nodes[self.cur as usize];
        self.cur = node.next;
        Some((node.score, &node.member))
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ZsetLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

pub struct SortedSet {
    dict: Dict<SmallBytes, f64>,
    tree: Treap,
}

pub enum ZSetValue {
    Packed(Packed),
    Sorted(Box<SortedSet>),
}

impl Clone for ZSetValue {
    fn clone(&self) -> Self {
        match self {
            ZSetValue::Packed(p) => ZSetValue::Packed(p.clone()),
            ZSetValue::Sorted(s) => {
                let mut d = Dict::new();
                for (k, v) in s.dict.iter() {
                    d.insert_new(k.clone(), *v);
                }
                ZSetValue::Sorted(Box::new(SortedSet { dict: d, tree: s.tree.clone() }))
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
        ZSetValue::Packed(Packed::new())
    }
}

/// Scores in the packed encoding: an integral score below 2^53 in magnitude is stored as the
/// fewest little-endian two's-complement bytes that hold it (0 takes none), anything else as
/// the 8 raw bytes of the double. Integer scores (ranks, timestamps, counters) are the common
/// case and cost 1–7 bytes instead of 8; the entry length tells the two forms apart.
fn write_score(score: f64) -> ([u8; 8], usize) {
    const EXACT: f64 = (1u64 << 53) as f64;
    if score.fract() == 0.0 && score.abs() < EXACT && !(score == 0.0 && score.is_sign_negative()) {
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
    /// An empty sorted set in the encoding Redis 7.0 picks for a first member of `first_len`.
    pub fn for_first(first_len: usize, limits: ZsetLimits) -> Self {
        if limits.max_entries == 0 || limits.max_value < first_len {
            ZSetValue::Sorted(Box::new(SortedSet { dict: Dict::new(), tree: Treap::new() }))
        } else {
            ZSetValue::Packed(Packed::new())
        }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            ZSetValue::Packed(_) => "listpack",
            ZSetValue::Sorted(_) => "skiplist",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ZSetValue::Packed(p) => p.len() / 2,
            ZSetValue::Sorted(s) => s.dict.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSetValue::Packed(p) => {
                let mut it = p.iter();
                while let (Some(m), Some(s)) = (it.next(), it.next()) {
                    if m == member {
                        return Some(read_score(s));
                    }
                }
                None
            }
            ZSetValue::Sorted(s) => s.dict.get(member).copied(),
        }
    }

    fn convert(&mut self) {
        if let ZSetValue::Packed(p) = self {
            let mut s = SortedSet { dict: Dict::new(), tree: Treap::new() };
            let mut it = p.iter();
            while let (Some(m), Some(sc)) = (it.next(), it.next()) {
                let score = read_score(sc);
                s.dict.insert_new(SmallBytes::new(m), score);
                s.tree.insert(score, m);
            }
            *self = ZSetValue::Sorted(Box::new(s));
        }
    }

    /// Sets `member`'s score (inserting it if new). Returns true if it was added.
    pub fn set(&mut self, member: &[u8], score: f64, limits: ZsetLimits) -> bool {
        let old = self.score(member);
        if let ZSetValue::Packed(p) = self {
            let grows = old.is_none() && p.len() / 2 + 1 > limits.max_entries;
            if grows || member.len() > limits.max_value {
                self.convert();
            }
        }
        match self {
            ZSetValue::Packed(p) => {
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
            ZSetValue::Sorted(s) => {
                if let Some(o) = old {
                    s.tree.remove(o, member);
                }
                s.tree.insert(score, member);
                s.dict.insert(SmallBytes::new(member), score);
            }
        }
        old.is_none()
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            ZSetValue::Packed(p) => match p.position(member, 2) {
                Some(i) => {
                    p.remove_range(i, 2);
                    true
                }
                None => false,
            },
            ZSetValue::Sorted(s) => match s.dict.remove(member) {
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
        Some(self.count_before(|s, m| cmp_key(s, m, score, member) == Ordering::Less))
    }

    /// Number of members for which `before` holds (a prefix of the order).
    pub fn count_before(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        match self {
            ZSetValue::Packed(p) => {
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
            ZSetValue::Sorted(s) => s.tree.count_before(before),
        }
    }

    /// Members with ranks in `start..end` (ascending ranks), yielded ascending, or descending
    /// when `rev`.
    pub fn range(&self, start: usize, end: usize, rev: bool) -> Box<dyn Iterator<Item = (&[u8], f64)> + '_> {
        let end = end.min(self.len());
        if start >= end {
            return Box::new(std::iter::empty());
        }
        let items: Box<dyn Iterator<Item = (&[u8], f64)> + '_> = match self {
            ZSetValue::Packed(p) => {
                let mut it = p.iter().skip(2 * start);
                Box::new(std::iter::from_fn(move || Some((it.next()?, read_score(it.next()?)))).take(end - start))
            }
            ZSetValue::Sorted(s) => Box::new(s.tree.iter_from(start).map(|(sc, m)| (m, sc)).take(end - start)),
        };
        if rev {
            let v: Vec<_> = items.collect();
            Box::new(v.into_iter().rev())
        } else {
            items
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
        match self {
            ZSetValue::Packed(_) => {
                for (m, s) in self.range(0, self.len(), false) {
                    f(m, s);
                }
                0
            }
            ZSetValue::Sorted(s) => s.dict.scan(cursor, |k, v| f(k, *v)),
        }
    }

    pub fn mem_usage(&self) -> usize {
        match self {
            ZSetValue::Packed(p) => p.bytes(),
            ZSetValue::Sorted(s) => s.dict.slots() * 8 + s.dict.len() * 120,
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
            assert_eq!(back.to_bits(), s.to_bits(), "{s}");
        }
        assert_eq!(write_score(0.0).1, 0);
        assert_eq!(write_score(100.0).1, 1);
        assert_eq!(write_score(-100.0).1, 1);
        assert_eq!(write_score(200.0).1, 2);
        assert_eq!(write_score(1_700_000_000_000.0).1, 6);
        assert_eq!(write_score(0.5).1, 8);
    }

    #[test]
    fn treap_matches_a_sorted_vec() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut t = Treap::new();
        let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
        for i in 0..3000 {
            let score = rng.random_range(0..100) as f64;
            let m = format!("m{}", rng.random_range(0..500)).into_bytes();
            if let Some(p) = model.iter().position(|(_, x)| *x == m) {
                let (s, _) = model.remove(p);
                assert!(t.remove(s, &m), "remove {i}");
            } else {
                t.insert(score, &m);
                model.push((score, m));
            }
            model.sort_by(|a, b| cmp_key(a.0, &a.1, b.0, &b.1));
            assert_eq!(t.len(), model.len());
            if i % 97 == 0 {
                // The order links stay right through inserts, removals and rotations.
                let all: Vec<(f64, Vec<u8>)> = t.iter_from(0).map(|(s, m)| (s, m.to_vec())).collect();
                assert_eq!(all, model, "step {i}");
                assert!(!t.remove(1000.0, b"absent"));
                if let Some((s, m)) = model.first() {
                    assert!(!t.remove(*s + 0.5, m), "a wrong score must not remove");
                }
            }
        }
        for (r, (s, m)) in model.iter().enumerate() {
            assert_eq!(t.select(r), Some((*s, &m[..])));
            assert_eq!(t.count_before(|ts, tm| cmp_key(ts, tm, *s, m) == Ordering::Less), r);
        }
        let all: Vec<(f64, Vec<u8>)> = t.iter_from(0).map(|(s, m)| (s, m.to_vec())).collect();
        assert_eq!(all, model);
        let tail: Vec<(f64, Vec<u8>)> = t.iter_from(10).map(|(s, m)| (s, m.to_vec())).collect();
        assert_eq!(tail, model[10..].to_vec());
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
