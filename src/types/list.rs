//! The list type: a quicklist — a deque of [`Packed`] nodes, each holding up to
//! `list-max-listpack-size` entries (negative: -1..-5 = 4..64 KiB per node; positive: a count,
//! still capped at 8 KiB like Redis's safety limit). Pushes and pops at both ends are O(1);
//! indexed access walks node lengths (O(nodes)) then one node. Redis 7.0 reports every list as
//! `quicklist`.

use std::collections::VecDeque;

use super::packed::ListPack as Packed;

const SIZE_SAFETY_LIMIT: usize = 8192;

/// The node fill rule from `list-max-listpack-size`.
#[derive(Debug, Clone, Copy)]
pub struct Fill(pub i64);

impl Fill {
    fn allows(self, node: &Packed, add: usize) -> bool {
        let bytes = node.bytes() + add + 4;
        if self.0 >= 0 {
            node.len() < self.0.max(1) as usize && bytes <= SIZE_SAFETY_LIMIT
        } else {
            let idx = (-self.0).clamp(1, 5) as u32;
            bytes <= 4096usize << (idx - 1)
        }
    }
}

#[derive(Clone, Default, PartialEq)]
pub struct ListValue {
    nodes: VecDeque<Packed>,
    len: usize,
}

impl std::fmt::Debug for ListValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "List({} items in {} nodes)", self.len, self.nodes.len())
    }
}

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

impl ListValue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn encoding_name(&self) -> &'static str {
        "quicklist"
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, end: End, v: &[u8], fill: Fill) {
        match end {
            End::Left => match self.nodes.front_mut() {
                Some(n) if fill.allows(n, v.len()) => n.push_front(v),
                full => {
                    // The old head is complete: release its growth slack.
                    if let Some(n) = full {
                        n.shrink();
                    }
                    let mut n = Packed::new();
                    n.push_back(v);
                    self.nodes.push_front(n);
                }
            },
            End::Right => match self.nodes.back_mut() {
                Some(n) if fill.allows(n, v.len()) => n.push_back(v),
                full => {
                    if let Some(n) = full {
                        n.shrink();
                    }
                    let mut n = Packed::new();
                    n.push_back(v);
                    self.nodes.push_back(n);
                }
            },
        }
        self.len += 1;
    }

    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        let v = match end {
            End::Left => {
                let n = self.nodes.front_mut()?;
                let v = n.pop_front();
                if n.is_empty() {
                    self.nodes.pop_front();
                }
                v
            }
            End::Right => {
                let n = self.nodes.back_mut()?;
                let v = n.pop_back();
                if n.is_empty() {
                    self.nodes.pop_back();
                }
                v
            }
        };
        if v.is_some() {
            self.len -= 1;
        }
        v
    }

    /// Resolves a Redis index (negative counts from the end) to a position.
    pub fn resolve(&self, index: i64) -> Option<usize> {
        let i = if index < 0 { self.len as i64 + index } else { index };
        (i >= 0 && (i as usize) < self.len).then_some(i as usize)
    }

    /// (node, offset in node) of position `pos`.
    fn locate(&self, pos: usize) -> Option<(usize, usize)> {
        if pos >= self.len {
            return None;
        }
        if pos < self.len / 2 {
            let mut left = pos;
            for (i, n) in self.nodes.iter().enumerate() {
                if left < n.len() {
                    return Some((i, left));
                }
                left -= n.len();
            }
        } else {
            let mut right = self.len - 1 - pos;
            for (i, n) in self.nodes.iter().enumerate().rev() {
                if right < n.len() {
                    return Some((i, n.len() - 1 - right));
                }
                right -= n.len();
            }
        }
        None
    }

    pub fn get(&self, pos: usize) -> Option<&[u8]> {
        let (n, o) = self.locate(pos)?;
        self.nodes.get(n)?.get(o)
    }

    pub fn set(&mut self, pos: usize, v: &[u8]) -> bool {
        let Some((n, o)) = self.locate(pos) else { return false };
        if let Some(node) = self.nodes.get_mut(n) {
            node.replace(o, v);
        }
        true
    }

    /// Inserts at position `pos` (pos == len appends), splitting an overfull node.
    pub fn insert(&mut self, pos: usize, v: &[u8], fill: Fill) {
        if pos >= self.len {
            self.push(End::Right, v, fill);
            return;
        }
        let Some((n, o)) = self.locate(pos) else { return };
        let Some(node) = self.nodes.get_mut(n) else { return };
        node.insert(o, v);
        self.len += 1;
        if !fill.allows(node, 0) && node.len() > 1 {
            let half = node.len() / 2;
            let tail = node.split_off(half);
            node.shrink();
            self.nodes.insert(n + 1, tail);
        }
    }

    /// Iterates from position `start` towards the right (or left when `rev`, starting at `start`).
    pub fn iter_from(&self, start: usize, rev: bool) -> Box<dyn Iterator<Item = &[u8]> + '_> {
        let Some((n, o)) = self.locate(start) else { return Box::new(std::iter::empty()) };
        if !rev {
            let first = self.nodes[n].iter().skip(o);
            let rest = self.nodes.iter().skip(n + 1).flat_map(|p| p.iter());
            Box::new(first.chain(rest))
        } else {
            let node_len = self.nodes[n].len();
            let first = self.nodes[n].iter().rev().skip(node_len - 1 - o);
            let rest = self.nodes.iter().take(n).rev().flat_map(|p| p.iter().rev());
            Box::new(first.chain(rest))
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.nodes.iter().flat_map(|n| n.iter())
    }

    /// Keeps only positions `start..=end` (already clamped by the caller); empties the list if
    /// the range is empty.
    pub fn trim(&mut self, start: usize, end: usize) {
        if start > end || start >= self.len {
            self.nodes.clear();
            self.len = 0;
            return;
        }
        let end = end.min(self.len - 1);
        self.remove_front(start);
        let keep = end - start + 1;
        let drop_back = self.len - keep;
        self.remove_back(drop_back);
    }

    fn remove_front(&mut self, mut count: usize) {
        while count > 0 {
            let Some(n) = self.nodes.front_mut() else { return };
            if n.len() <= count {
                count -= n.len();
                self.len -= n.len();
                self.nodes.pop_front();
            } else {
                n.remove_range(0, count);
                self.len -= count;
                return;
            }
        }
    }

    fn remove_back(&mut self, mut count: usize) {
        while count > 0 {
            let Some(n) = self.nodes.back_mut() else { return };
            let l = n.len();
            if l <= count {
                count -= l;
                self.len -= l;
                self.nodes.pop_back();
            } else {
                n.remove_range(l - count, count);
                self.len -= count;
                return;
            }
        }
    }

    /// LREM: removes up to `count` occurrences (0 = all) from the head (count > 0) or the tail
    /// (count < 0). Returns how many were removed.
    pub fn remove_matching(&mut self, v: &[u8], count: i64, fill: Fill) -> usize {
        let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
        let items: Vec<Vec<u8>> = self.iter().map(|e| e.to_vec()).collect();
        let mut removed = 0;
        let mut keep = vec![true; items.len()];
        let order: Box<dyn Iterator<Item = usize>> =
            if count < 0 { Box::new((0..items.len()).rev()) } else { Box::new(0..items.len()) };
        for i in order {
            if removed >= limit {
                break;
            }
            if items[i] == v {
                keep[i] = false;
                removed += 1;
            }
        }
        if removed > 0 {
            let mut fresh = ListValue::new();
            for (i, it) in items.iter().enumerate() {
                if keep[i] {
                    fresh.push(End::Right, it, fill);
                }
            }
            *self = fresh;
        }
        removed
    }

    pub fn mem_usage(&self) -> usize {
        self.nodes.iter().map(|n| n.capacity_bytes() + 24).sum::<usize>() + 32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_deque() {
        let fill = Fill(4);
        let mut l = ListValue::new();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        for i in 0..50 {
            let v = format!("v{i}").into_bytes();
            if i % 3 == 0 {
                l.push(End::Left, &v, fill);
                model.push_front(v);
            } else {
                l.push(End::Right, &v, fill);
                model.push_back(v);
            }
        }
        assert!(l.nodes.len() > 10);
        assert_eq!(l.iter().map(|e| e.to_vec()).collect::<Vec<_>>(), model.iter().cloned().collect::<Vec<_>>());
        for (i, m) in model.iter().enumerate() {
            assert_eq!(l.get(i), Some(&m[..]));
        }
        l.insert(7, b"ins", fill);
        model.insert(7, b"ins".to_vec());
        assert_eq!(l.get(7), Some(&b"ins"[..]));
        let from: Vec<Vec<u8>> = l.iter_from(10, true).map(|e| e.to_vec()).collect();
        let expect: Vec<Vec<u8>> = model.iter().take(11).rev().cloned().collect();
        assert_eq!(from, expect);
        l.trim(5, 40);
        let expect: Vec<Vec<u8>> = model.iter().skip(5).take(36).cloned().collect();
        assert_eq!(l.iter().map(|e| e.to_vec()).collect::<Vec<_>>(), expect);
        assert_eq!(l.len(), 36);
        assert_eq!(l.pop(End::Right), expect.last().cloned());
    }
}
