//! The ordered half of a large sorted set: an order-statistic B+tree of (score, member)
//! entries.
//!
//! # Why a B+tree rather than Redis's skiplist (or the treap Ember had before)
//! Every level of a skiplist or of a binary tree is a dependent load from an unrelated address:
//! on a 1,000,000-member set a treap descent visits ~25 nodes and half of them miss the cache
//! (profiles of ZRANK showed the descent as half of the server's time). With 64 entries a node
//! the same set is four levels deep, the top two stay cached, and the search inside a node is a
//! binary search over one contiguous array. Entries sit in the leaves in order, so a range scan
//! reads consecutive memory, and a leaf costs 32 bytes an entry instead of a 56-byte tree node.
//! Inner nodes keep each child's entry count, which gives rank and select in O(log n).
//! Nodes own their children (no arena, no unsafe); iterators keep the path they came down.

use std::cmp::Ordering;

use crate::util::smallbytes::SmallBytes;

const LEAF_CAP: usize = 64;
const INNER_CAP: usize = 64;
/// Below these a node is merged with or refilled from a neighbour, so every node but the root
/// is at least a quarter full and memory stays within 4x of the entries whatever the deletes.
const LEAF_MIN: usize = LEAF_CAP / 4;
const INNER_MIN: usize = INNER_CAP / 4;

/// The (score, member) order of sorted sets: scores numerically, ties by member bytes.
pub fn cmp_key(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    s1.partial_cmp(&s2).unwrap_or(Ordering::Equal).then_with(|| m1.cmp(m2))
}

#[derive(Clone)]
pub struct Entry {
    pub score: f64,
    pub member: SmallBytes,
}

impl Entry {
    fn new(score: f64, member: &[u8]) -> Self {
        Entry { score, member: SmallBytes::new(member) }
    }

    /// Whether this entry orders before (score, member). The member bytes are read only on a
    /// score tie.
    fn before(&self, score: f64, member: &[u8]) -> bool {
        match self.score.partial_cmp(&score) {
            Some(Ordering::Less) => true,
            Some(Ordering::Greater) => false,
            _ => self.member.as_slice() < member,
        }
    }
}

#[derive(Clone)]
enum Node {
    /// Entries in order; allocated at full capacity so inserts never reallocate.
    Leaf(Vec<Entry>),
    Inner(Box<Inner>),
}

#[derive(Clone)]
struct Inner {
    /// `seps[i]` separates `children[i]` from `children[i + 1]`: every entry of the first orders
    /// before it, no entry of the second does. (A separator may outlive the entry it copied.)
    seps: Vec<Entry>,
    /// Entries under each child.
    counts: Vec<u32>,
    children: Vec<Node>,
}

impl Node {
    fn new_leaf() -> Node {
        Node::Leaf(Vec::with_capacity(LEAF_CAP))
    }

    fn count(&self) -> usize {
        match self {
            Node::Leaf(v) => v.len(),
            Node::Inner(n) => n.counts.iter().map(|&c| c as usize).sum(),
        }
    }

    /// Whether the node has fallen below its minimum fill.
    fn underfull(&self) -> bool {
        match self {
            Node::Leaf(v) => v.len() < LEAF_MIN,
            Node::Inner(n) => n.children.len() < INNER_MIN,
        }
    }
}

impl Inner {
    /// The child whose range holds (score, member).
    fn child_for(&self, score: f64, member: &[u8]) -> usize {
        self.seps.partition_point(|s| !matches!(cmp_key(s.score, &s.member, score, member), Ordering::Greater))
    }

    fn count_before_child(&self, i: usize) -> usize {
        self.counts[..i].iter().map(|&c| c as usize).sum()
    }

    /// Splits an overfull node; returns the separator moving up and the new right sibling.
    /// When the overflow came from appending at the end (ascending inserts), the left node
    /// stays full and the right one starts nearly empty, so sequential loads pack the nodes.
    fn split(&mut self, appended: bool) -> (Entry, Node) {
        let mid = if appended { self.children.len() - 1 } else { self.children.len() / 2 };
        let children = split_off_with_cap(&mut self.children, mid, INNER_CAP + 1);
        let counts = split_off_with_cap(&mut self.counts, mid, INNER_CAP + 1);
        let seps = split_off_with_cap(&mut self.seps, mid, INNER_CAP);
        let up = self.seps.pop();
        let right = Node::Inner(Box::new(Inner { seps, counts, children }));
        // `mid` >= 1 and seps.len() == children.len() - 1 >= mid, so there is one to pop.
        (up.unwrap_or_else(|| Entry::new(0.0, b"")), right)
    }

    /// Restores the minimum fill of child `i` by merging it with a neighbour or, when the two
    /// hold too much for one node, sharing their contents evenly.
    fn rebalance(&mut self, i: usize) {
        if self.children.len() < 2 {
            return;
        }
        let a = if i > 0 { i - 1 } else { 0 };
        let (left, right) = self.children.split_at_mut(a + 1);
        let (l, r) = (&mut left[a], &mut right[0]);
        match (l, r) {
            (Node::Leaf(l), Node::Leaf(r)) => {
                let total = l.len() + r.len();
                if total <= LEAF_CAP {
                    l.append(r);
                    self.remove_child(a + 1);
                    self.counts[a] = total as u32;
                    return;
                }
                let want = total / 2;
                if l.len() > want {
                    let moved: Vec<Entry> = l.drain(want..).collect();
                    r.splice(0..0, moved);
                } else {
                    let k = want - l.len();
                    l.extend(r.drain(..k));
                }
                self.seps[a] = r[0].clone();
                self.counts[a] = l.len() as u32;
                self.counts[a + 1] = r.len() as u32;
            }
            (Node::Inner(l), Node::Inner(r)) => {
                // Merge through the separator, then split again if that overfilled the node.
                let sep = self.seps[a].clone();
                l.seps.push(sep);
                l.seps.append(&mut r.seps);
                l.counts.append(&mut r.counts);
                l.children.append(&mut r.children);
                let overfull = l.children.len() > INNER_CAP;
                let split = overfull.then(|| l.split(false));
                self.remove_child(a + 1);
                if let Some((up, node)) = split {
                    self.seps.insert(a, up);
                    self.counts.insert(a + 1, node.count() as u32);
                    self.children.insert(a + 1, node);
                }
                self.counts[a] = self.children[a].count() as u32;
            }
            // Siblings are always at the same depth.
            _ => {}
        }
    }

    /// Before an insert into child `i`: when it is a full leaf and a neighbouring leaf has
    /// room, one entry moves over instead of the leaf splitting (as in a B*-tree), which keeps
    /// leaves ~85% full under random inserts instead of ~70%. True if an entry moved.
    fn make_room(&mut self, i: usize) -> bool {
        let full = |c: &Node| matches!(c, Node::Leaf(v) if v.len() >= LEAF_CAP);
        let roomy = |c: &Node| matches!(c, Node::Leaf(v) if v.len() + 2 <= LEAF_CAP);
        if !full(&self.children[i]) {
            return false;
        }
        if i > 0 && roomy(&self.children[i - 1]) {
            let (left, right) = self.children.split_at_mut(i);
            if let (Node::Leaf(l), Node::Leaf(r)) = (&mut left[i - 1], &mut right[0]) {
                l.push(r.remove(0));
                self.seps[i - 1] = r[0].clone();
                self.counts[i - 1] += 1;
                self.counts[i] -= 1;
                return true;
            }
        }
        if i + 1 < self.children.len() && roomy(&self.children[i + 1]) {
            let (left, right) = self.children.split_at_mut(i + 1);
            if let (Node::Leaf(l), Node::Leaf(r)) = (&mut left[i], &mut right[0])
                && let Some(last) = l.pop()
            {
                self.seps[i] = last.clone();
                r.insert(0, last);
                self.counts[i] -= 1;
                self.counts[i + 1] += 1;
                return true;
            }
        }
        false
    }

    /// Drops child `i` (i >= 1) and the separator before it.
    fn remove_child(&mut self, i: usize) {
        self.children.remove(i);
        self.counts.remove(i);
        self.seps.remove(i - 1);
    }
}

/// `v.split_off(at)` into a vector with room for `cap` elements.
fn split_off_with_cap<T>(v: &mut Vec<T>, at: usize, cap: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(cap.max(v.len() - at));
    out.extend(v.drain(at..));
    out
}

#[derive(Clone)]
pub struct ScoreTree {
    root: Node,
    len: usize,
}

impl Default for ScoreTree {
    fn default() -> Self {
        Self::new()
    }
}

impl ScoreTree {
    pub fn new() -> Self {
        ScoreTree { root: Node::new_leaf(), len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds (score, member), which must not be present (the sorted set's dict says so).
    pub fn insert(&mut self, score: f64, member: &[u8]) {
        let e = Entry::new(score, member);
        if let Some((up, right)) = Self::insert_into(&mut self.root, e) {
            let left = std::mem::replace(&mut self.root, Node::new_leaf());
            let counts = vec![left.count() as u32, right.count() as u32];
            let mut seps = Vec::with_capacity(INNER_CAP);
            seps.push(up);
            let mut children = Vec::with_capacity(INNER_CAP + 1);
            children.push(left);
            children.push(right);
            self.root = Node::Inner(Box::new(Inner { seps, counts, children }));
        }
        self.len += 1;
    }

    /// Inserts below `node`; on overflow returns the separator and the new right sibling.
    fn insert_into(node: &mut Node, e: Entry) -> Option<(Entry, Node)> {
        match node {
            Node::Leaf(v) => {
                let pos = v.partition_point(|x| x.before(e.score, &e.member));
                if v.len() < LEAF_CAP {
                    v.insert(pos, e);
                    return None;
                }
                let right = if pos == v.len() {
                    // Appending (ascending loads): keep this leaf full, start a new one.
                    let mut r = Vec::with_capacity(LEAF_CAP);
                    r.push(e);
                    r
                } else if pos == 0 {
                    // Prepending (descending loads): the full contents move right.
                    let mut l = Vec::with_capacity(LEAF_CAP);
                    l.push(e);
                    std::mem::replace(v, l)
                } else {
                    let mid = LEAF_CAP / 2;
                    let mut r = split_off_with_cap(v, mid, LEAF_CAP);
                    if pos <= mid {
                        v.insert(pos, e);
                    } else {
                        r.insert(pos - mid, e);
                    }
                    r
                };
                Some((right[0].clone(), Node::Leaf(right)))
            }
            Node::Inner(n) => {
                let mut i = n.child_for(e.score, &e.member);
                if n.make_room(i) {
                    i = n.child_for(e.score, &e.member);
                }
                n.counts[i] += 1;
                let (up, right) = Self::insert_into(&mut n.children[i], e)?;
                let moved = right.count() as u32;
                n.counts[i] -= moved;
                n.seps.insert(i, up);
                n.counts.insert(i + 1, moved);
                n.children.insert(i + 1, right);
                if n.children.len() <= INNER_CAP {
                    return None;
                }
                let appended = i + 2 == n.children.len();
                Some(n.split(appended))
            }
        }
    }

    /// Removes (score, member); false if it is not there.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        if !Self::remove_from(&mut self.root, score, member) {
            return false;
        }
        self.len -= 1;
        // A root left with one child hands the root over to it.
        if let Node::Inner(n) = &mut self.root
            && n.children.len() == 1
            && let Some(only) = n.children.pop()
        {
            self.root = only;
        }
        true
    }

    fn remove_from(node: &mut Node, score: f64, member: &[u8]) -> bool {
        match node {
            Node::Leaf(v) => {
                let pos = v.partition_point(|x| x.before(score, member));
                match v.get(pos) {
                    Some(x) if cmp_key(x.score, &x.member, score, member) == Ordering::Equal => {
                        v.remove(pos);
                        true
                    }
                    _ => false,
                }
            }
            Node::Inner(n) => {
                let i = n.child_for(score, member);
                if !Self::remove_from(&mut n.children[i], score, member) {
                    return false;
                }
                n.counts[i] -= 1;
                if n.children[i].underfull() {
                    n.rebalance(i);
                }
                true
            }
        }
    }

    /// Number of entries for which `before` holds; it must hold for a prefix of the order.
    /// It gets the member as stored so that score-only tests never read member bytes.
    pub fn count_before(&self, before: impl Fn(f64, &SmallBytes) -> bool) -> usize {
        let mut node = &self.root;
        let mut count = 0;
        loop {
            match node {
                Node::Leaf(v) => return count + v.partition_point(|e| before(e.score, &e.member)),
                Node::Inner(n) => {
                    let i = n.seps.partition_point(|e| before(e.score, &e.member));
                    count += n.count_before_child(i);
                    node = &n.children[i];
                }
            }
        }
    }

    /// The 0-based rank of (score, member) if it is present.
    pub fn rank(&self, score: f64, member: &[u8]) -> usize {
        self.count_before(|s, m| match s.partial_cmp(&score) {
            Some(Ordering::Less) => true,
            Some(Ordering::Greater) => false,
            _ => m.as_slice() < member,
        })
    }

    /// Iteration from 0-based `rank`: ascending, or descending (`rank`, `rank - 1`, ...) when
    /// `rev`.
    pub fn iter_at(&self, rank: usize, rev: bool) -> Iter<'_> {
        let mut it = Iter { path: Vec::new(), leaf: &[], pos: 0, rev };
        if rank >= self.len {
            return it;
        }
        let mut node = &self.root;
        let mut rank = rank;
        loop {
            match node {
                Node::Leaf(v) => {
                    it.leaf = v;
                    it.pos = if rev { rank + 1 } else { rank };
                    return it;
                }
                Node::Inner(n) => {
                    let mut i = 0;
                    while i + 1 < n.counts.len() && rank >= n.counts[i] as usize {
                        rank -= n.counts[i] as usize;
                        i += 1;
                    }
                    it.path.push((n, i));
                    node = &n.children[i];
                }
            }
        }
    }
}

/// An in-order walk that keeps the inner nodes it came through.
pub struct Iter<'a> {
    path: Vec<(&'a Inner, usize)>,
    leaf: &'a [Entry],
    /// Ascending: the next index to yield. Descending: one past it.
    pos: usize,
    rev: bool,
}

impl<'a> Iter<'a> {
    /// Moves to the next leaf in the walk's direction; false at the end.
    fn step_leaf(&mut self) -> bool {
        while let Some((n, i)) = self.path.pop() {
            let next = if self.rev { i.checked_sub(1) } else { Some(i + 1).filter(|&j| j < n.children.len()) };
            let Some(j) = next else { continue };
            self.path.push((n, j));
            let mut node = &n.children[j];
            loop {
                match node {
                    Node::Leaf(v) => {
                        self.leaf = v;
                        self.pos = if self.rev { v.len() } else { 0 };
                        return true;
                    }
                    Node::Inner(c) => {
                        let k = if self.rev { c.children.len() - 1 } else { 0 };
                        self.path.push((c, k));
                        node = &c.children[k];
                    }
                }
            }
        }
        false
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (f64, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rev {
                if self.pos > 0 {
                    self.pos -= 1;
                    let e = &self.leaf[self.pos];
                    return Some((e.score, e.member.as_slice()));
                }
            } else if let Some(e) = self.leaf.get(self.pos) {
                self.pos += 1;
                return Some((e.score, e.member.as_slice()));
            }
            if !self.step_leaf() {
                self.leaf = &[];
                self.pos = 0;
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn check(t: &ScoreTree, model: &[(f64, Vec<u8>)]) {
        assert_eq!(t.len(), model.len());
        let all: Vec<(f64, Vec<u8>)> = t.iter_at(0, false).map(|(s, m)| (s, m.to_vec())).collect();
        assert_eq!(all, model);
        if !model.is_empty() {
            let mut rev: Vec<(f64, Vec<u8>)> = t.iter_at(model.len() - 1, true).map(|(s, m)| (s, m.to_vec())).collect();
            rev.reverse();
            assert_eq!(rev, model);
        }
        fn structure(n: &Node, root: bool) -> usize {
            match n {
                Node::Leaf(v) => {
                    assert!(v.len() <= LEAF_CAP);
                    v.len()
                }
                Node::Inner(inner) => {
                    assert!(!root || inner.children.len() >= 2);
                    assert_eq!(inner.seps.len() + 1, inner.children.len());
                    assert!(inner.children.len() <= INNER_CAP);
                    for (c, &k) in inner.children.iter().zip(&inner.counts) {
                        assert_eq!(structure(c, false), k as usize);
                    }
                    inner.counts.iter().map(|&c| c as usize).sum()
                }
            }
        }
        assert_eq!(structure(&t.root, true), model.len());
    }

    #[test]
    fn matches_a_sorted_vec() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut t = ScoreTree::new();
        let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
        // Grow well past a few levels, then shrink to nothing: splits, merges, refills and
        // root changes all happen.
        for phase in 0..2 {
            for i in 0..50_000 {
                let grow = if phase == 0 { rng.random_range(0..10) < 7 } else { rng.random_range(0..10) < 3 };
                if grow || model.is_empty() {
                    let score = rng.random_range(0..300) as f64;
                    let m = format!("m{}", rng.random_range(0..1_000_000)).into_bytes();
                    let at = model.partition_point(|(s, x)| cmp_key(*s, x, score, &m) == Ordering::Less);
                    if model.get(at).is_some_and(|(s, x)| *s == score && *x == m) {
                        continue;
                    }
                    t.insert(score, &m);
                    model.insert(at, (score, m));
                } else {
                    let at = rng.random_range(0..model.len());
                    let (s, m) = model.remove(at);
                    assert!(t.remove(s, &m));
                    assert!(!t.remove(s, &m));
                }
                if i % 997 == 0 {
                    check(&t, &model);
                    for _ in 0..20 {
                        if model.is_empty() {
                            break;
                        }
                        let r = rng.random_range(0..model.len());
                        let (s, m) = &model[r];
                        assert_eq!(t.rank(*s, m), r);
                        assert_eq!(t.iter_at(r, false).next(), Some((*s, &m[..])));
                        assert_eq!(t.iter_at(r, true).next(), Some((*s, &m[..])));
                        assert!(!t.remove(*s + 0.5, m), "a wrong score must not remove");
                    }
                }
            }
        }
        while let Some((s, m)) = model.pop() {
            assert!(t.remove(s, &m));
        }
        check(&t, &model);
        assert!(t.iter_at(0, false).next().is_none());
    }

    #[test]
    fn draining_from_either_end_or_every_other_keeps_the_tree_whole() {
        let n = 20_000;
        for pattern in 0..3 {
            let mut t = ScoreTree::new();
            let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
            for i in 0..n {
                let m = format!("m{i:06}").into_bytes();
                t.insert(1.0, &m);
                model.push((1.0, m));
            }
            check(&t, &model);
            let mut step = 0;
            while !model.is_empty() {
                let at = match pattern {
                    0 => 0,                        // ZPOPMIN
                    1 => model.len() - 1,          // ZPOPMAX
                    _ => (step * 2) % model.len(), // scattered
                };
                let (s, m) = model.remove(at);
                assert!(t.remove(s, &m));
                step += 1;
                if step % 1999 == 0 {
                    check(&t, &model);
                }
            }
            check(&t, &model);
            assert!(matches!(t.root, Node::Leaf(_)), "an emptied tree is one leaf again");
        }
    }

    #[test]
    fn sequential_loads_pack_the_leaves() {
        for rev in [false, true] {
            let mut t = ScoreTree::new();
            let n = 100_000;
            for i in 0..n {
                let s = if rev { (n - i) as f64 } else { i as f64 };
                t.insert(s, b"m");
            }
            fn leaves(n: &Node) -> usize {
                match n {
                    Node::Leaf(_) => 1,
                    Node::Inner(i) => i.children.iter().map(leaves).sum(),
                }
            }
            // Nearly full leaves: at most a few percent more leaves than the minimum.
            assert!(leaves(&t.root) <= n / LEAF_CAP + n / LEAF_CAP / 20 + 2, "rev={rev}: {}", leaves(&t.root));
            assert_eq!(t.count_before(|s, _| s < 500.0), if rev { 499 } else { 500 });
        }
    }
}
