//! The stream type: entries ordered by ID in packed nodes, plus consumer groups.
//!
//! # Layout
//! Like Redis's radix tree of listpacks, entries live in packed nodes of up to
//! `stream-node-max-entries` entries / `stream-node-max-bytes` bytes, kept in a `BTreeMap` by the
//! ID of their first entry, so a seek is O(log nodes) and a range scan reads node after node.
//! Inside a node each entry is
//!
//! ```text
//! flags(1) | ms - node.ms (varint) | seq (varint) | field count (varint) | fields bytes (varint) | fields/values
//! ```
//!
//! where values are length-prefixed byte strings; the byte count of the fields lets a seek step
//! over entries without decoding them. When an entry has exactly the field names of
//! the node's first entry ("master" fields, flag `SAME_FIELDS`) only its values are stored: a
//! stream of uniform events costs little more than its values. XDEL sets a tombstone flag in
//! place (as Redis does) and a node with no live entry left is dropped; trimming drops whole
//! nodes (`~`) or tombstones entries of the first node (exact).
//!
//! # Groups
//! A consumer group has its last delivered ID, its logical read counter (`entries_read`, None
//! when unknown) and a pending entries list (PEL) shared with its consumers, as in Redis 7.0.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const ZERO: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID in order, None after the last possible one.
    pub fn next(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// The previous ID in order, None before 0-0.
    pub fn prev(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::ZERO
    }

    pub fn to_bytes(self) -> Bytes {
        Bytes::from(format!("{}-{}", self.ms, self.seq))
    }
}

/// One entry as read: its ID and its field/value pairs.
pub type Entry = (StreamId, Vec<(Bytes, Bytes)>);

const DELETED: u8 = 1;
const SAME_FIELDS: u8 = 2;

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Decodes a varint at `*pos`. Node bytes are only ever written by this module, so a short
/// buffer cannot happen; it reads as 0 rather than panicking.
fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut n = 0u64;
    let mut shift = 0;
    while let Some(&b) = buf.get(*pos) {
        *pos += 1;
        if shift < 64 {
            n |= ((b & 0x7f) as u64) << shift;
        }
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    n
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Bytes `put_str` writes for `s`.
fn str_len(s: &[u8]) -> usize {
    let bits = usize::BITS - s.len().leading_zeros();
    s.len() + (bits as usize).div_ceil(7).max(1)
}

fn get_str<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let len = get_varint(buf, pos) as usize;
    let start = (*pos).min(buf.len());
    let end = start.saturating_add(len).min(buf.len());
    *pos = end;
    &buf[start..end]
}

/// A packed run of consecutive entries.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    /// Field names of the node's first entry, length-prefixed.
    master: Box<[u8]>,
    master_count: usize,
    data: Vec<u8>,
    live: usize,
    /// Entries including tombstones (the node-size limit counts both, as Redis does).
    total: usize,
    /// Offset of the newest entry in `data` (0 when empty).
    last: usize,
}

/// A decoded position inside a node.
struct Raw {
    offset: usize,
    id: StreamId,
    deleted: bool,
    /// Offset just after the entry.
    end: usize,
}

impl Node {
    fn new(fields: &[&[u8]]) -> Node {
        let mut master = Vec::new();
        for f in fields {
            put_str(&mut master, f);
        }
        Node {
            master: master.into_boxed_slice(),
            master_count: fields.len(),
            data: Vec::new(),
            live: 0,
            total: 0,
            last: 0,
        }
    }

    fn append(&mut self, base: StreamId, id: StreamId, pairs: &[&[u8]]) {
        let n = pairs.len() / 2;
        let same = n == self.master_count && {
            let mut pos = 0;
            pairs.chunks(2).all(|p| get_str(&self.master, &mut pos) == p[0])
        };
        let body: usize = pairs.chunks(2).map(|p| if same { 0 } else { str_len(p[0]) } + str_len(p[1])).sum();
        self.last = self.data.len();
        self.data.push(if same { SAME_FIELDS } else { 0 });
        put_varint(&mut self.data, id.ms - base.ms);
        put_varint(&mut self.data, id.seq);
        put_varint(&mut self.data, n as u64);
        put_varint(&mut self.data, body as u64);
        for p in pairs.chunks(2) {
            if !same {
                put_str(&mut self.data, p[0]);
            }
            put_str(&mut self.data, p[1]);
        }
        self.live += 1;
        self.total += 1;
    }

    /// An entry's flags, id, field count and where its fields start and end. The stored
    /// length of the fields lets a scan step over an entry without decoding it.
    fn header(&self, base: StreamId, pos: usize) -> (u8, StreamId, usize, usize, usize) {
        let d = &self.data;
        let flags = d.get(pos).copied().unwrap_or(0);
        let mut p = pos + 1;
        let ms = base.ms.saturating_add(get_varint(d, &mut p));
        let seq = get_varint(d, &mut p);
        let n = get_varint(d, &mut p) as usize;
        let body = get_varint(d, &mut p) as usize;
        let end = p.saturating_add(body).min(d.len());
        (flags, StreamId::new(ms, seq), n, p, end)
    }

    fn raw_at(&self, base: StreamId, pos: usize) -> Raw {
        let (flags, id, _, _, end) = self.header(base, pos);
        Raw { offset: pos, id, deleted: flags & DELETED != 0, end }
    }

    /// Calls `f` with the entry at `pos` as a flat field, value, ... list of borrowed slices
    /// (`scratch` is reused between calls, so a range scan allocates nothing per entry).
    fn visit<'a>(
        &'a self,
        base: StreamId,
        pos: usize,
        scratch: &mut Vec<&'a [u8]>,
        f: &mut impl FnMut(StreamId, &[&[u8]]),
    ) {
        let d = &self.data;
        let (flags, id, n, mut p, _) = self.header(base, pos);
        scratch.clear();
        if flags & SAME_FIELDS != 0 {
            let mut mp = 0;
            for _ in 0..n {
                scratch.push(get_str(&self.master, &mut mp));
                scratch.push(get_str(d, &mut p));
            }
        } else {
            for _ in 0..n * 2 {
                scratch.push(get_str(d, &mut p));
            }
        }
        f(id, scratch);
    }

    /// Every entry position, tombstones included, in order.
    fn raws(&self, base: StreamId) -> Vec<Raw> {
        let mut out = Vec::with_capacity(self.total);
        let mut pos = 0;
        while pos < self.data.len() {
            let r = self.raw_at(base, pos);
            pos = r.end;
            out.push(r);
        }
        out
    }

    fn mark_deleted(&mut self, offset: usize) {
        if let Some(f) = self.data.get_mut(offset) {
            *f |= DELETED;
        }
        self.live -= 1;
    }

    fn bytes(&self) -> usize {
        self.data.len() + self.master.len()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Nack {
    pub consumer: Bytes,
    pub delivery_time: u64,
    pub delivery_count: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Consumer {
    pub seen_time: u64,
    pub pel: BTreeSet<StreamId>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub last_id: StreamId,
    /// Logical read counter; None when it cannot be known (Redis's SCG_INVALID_ENTRIES_READ).
    pub entries_read: Option<u64>,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    /// The consumer `name`, created if missing; its seen time is refreshed. Returns whether it
    /// was created.
    pub fn touch_consumer(&mut self, name: &[u8], now: u64) -> bool {
        if let Some(c) = self.consumers.get_mut(name) {
            c.seen_time = now;
            return false;
        }
        let c = Consumer { seen_time: now, ..Consumer::default() };
        self.consumers.insert(Bytes::copy_from_slice(name), c);
        true
    }

    /// Removes `id` from the PEL (and its consumer's). True if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(n) = self.pel.remove(&id) else { return false };
        if let Some(c) = self.consumers.get_mut(&n.consumer) {
            c.pel.remove(&id);
        }
        true
    }

    /// Records `id` as delivered to `consumer` now (moving it from another consumer's PEL if
    /// it was pending there).
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now: u64, count: u64) {
        if let Some(old) = self.pel.get(&id).map(|n| n.consumer.clone())
            && let Some(c) = self.consumers.get_mut(&old)
        {
            c.pel.remove(&id);
        }
        let consumer = Bytes::copy_from_slice(consumer);
        self.pel.insert(id, Nack { consumer: consumer.clone(), delivery_time: now, delivery_count: count });
        self.consumers.entry(consumer).or_default().pel.insert(id);
    }
}

#[derive(Debug, Clone, Copy)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: usize,
}

/// How XADD/XTRIM trim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Node>,
    length: u64,
    pub last_id: StreamId,
    /// The first entry's ID as Redis records it (0-0 when empty).
    pub first_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
    pub groups: BTreeMap<Bytes, Group>,
}

impl Stream {
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Appends an entry; `id` must be greater than `last_id` (the caller checked).
    pub fn append(&mut self, id: StreamId, pairs: &[&[u8]], limits: NodeLimits) {
        let entry_bytes: usize = pairs.iter().map(|p| p.len() + 2).sum::<usize>() + 12;
        let need_new = match self.nodes.last_key_value() {
            None => true,
            Some((_, n)) => {
                (limits.max_bytes > 0 && n.bytes() + entry_bytes >= limits.max_bytes)
                    || (limits.max_entries > 0 && n.total >= limits.max_entries)
            }
        };
        if need_new {
            // The previous node is complete: give back its growth slack (a Vec doubles).
            if let Some((_, last)) = self.nodes.iter_mut().next_back() {
                last.data.shrink_to_fit();
            }
            let fields: Vec<&[u8]> = pairs.chunks(2).map(|p| p[0]).collect();
            self.nodes.insert(id, Node::new(&fields));
        }
        if let Some((base, node)) = self.nodes.iter_mut().next_back() {
            node.append(*base, id, pairs);
        }
        if self.length == 0 {
            self.first_id = id;
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
    }

    /// Live entries with `start <= id <= end`, at most `count` (0 = no limit), in order or
    /// reversed.
    pub fn range(&self, start: StreamId, end: StreamId, count: usize, rev: bool) -> Vec<Entry> {
        let mut out = Vec::new();
        self.visit_range(start, end, count, rev, |id, flat| {
            let pairs = flat.chunks(2).map(|p| (Bytes::copy_from_slice(p[0]), Bytes::copy_from_slice(p[1]))).collect();
            out.push((id, pairs));
        });
        out
    }

    /// Calls `f` for each live entry with `start <= id <= end` (at most `count`, 0 = no
    /// limit, in order or reversed) with its fields and values as borrowed slices. Returns
    /// how many entries were visited.
    pub fn visit_range(
        &self,
        start: StreamId,
        end: StreamId,
        count: usize,
        rev: bool,
        mut f: impl FnMut(StreamId, &[&[u8]]),
    ) -> usize {
        let mut seen = 0;
        if start > end {
            return 0;
        }
        let mut scratch = Vec::new();
        if !rev {
            let first_node = self.nodes.range(..=start).next_back().map(|(k, _)| *k).unwrap_or(StreamId::ZERO);
            for (base, node) in self.nodes.range(first_node..) {
                if *base > end {
                    break;
                }
                let mut pos = 0;
                while pos < node.data.len() {
                    let r = node.raw_at(*base, pos);
                    pos = r.end;
                    if r.id > end {
                        return seen;
                    }
                    if r.deleted || r.id < start {
                        continue;
                    }
                    node.visit(*base, r.offset, &mut scratch, &mut f);
                    seen += 1;
                    if count > 0 && seen >= count {
                        return seen;
                    }
                }
            }
        } else {
            for (base, node) in self.nodes.range(..=end).rev() {
                for r in node.raws(*base).iter().rev() {
                    if r.id < start {
                        return seen;
                    }
                    if r.deleted || r.id > end {
                        continue;
                    }
                    node.visit(*base, r.offset, &mut scratch, &mut f);
                    seen += 1;
                    if count > 0 && seen >= count {
                        return seen;
                    }
                }
            }
        }
        seen
    }

    /// The live entry with this exact ID.
    pub fn get(&self, id: StreamId) -> Option<Entry> {
        self.range(id, id, 1, false).into_iter().next()
    }

    pub fn first_entry(&self) -> Option<Entry> {
        self.range(StreamId::ZERO, StreamId::MAX, 1, false).into_iter().next()
    }

    pub fn last_entry(&self) -> Option<Entry> {
        self.range(StreamId::ZERO, StreamId::MAX, 1, true).into_iter().next()
    }

    /// The newest live entry's id. Reads one header when that entry is the newest appended
    /// (XREADGROUP asks on every call), scans the last node otherwise.
    pub fn last_live_id(&self) -> Option<StreamId> {
        let (&base, node) = self.nodes.iter().next_back()?;
        let (flags, id, _, _, _) = node.header(base, node.last);
        if flags & DELETED == 0 && node.total > 0 {
            return Some(id);
        }
        self.last_entry().map(|(id, _)| id)
    }

    /// Tombstones one entry. True if it was live.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&base, _)) = self.nodes.range(..=id).next_back() else { return false };
        let Some(node) = self.nodes.get_mut(&base) else { return false };
        let hit = node.raws(base).into_iter().find(|r| r.id == id && !r.deleted);
        let Some(r) = hit else { return false };
        node.mark_deleted(r.offset);
        if node.live == 0 {
            self.nodes.remove(&base);
        }
        self.length -= 1;
        if id > self.max_deleted {
            self.max_deleted = id;
        }
        true
    }

    /// Recomputes `first_id` after deletions (0-0 when empty).
    pub fn refresh_first_id(&mut self) {
        self.first_id = self.first_entry().map_or(StreamId::ZERO, |(id, _)| id);
    }

    /// Redis's streamTrim: whole nodes first, then (exact trimming only) tombstones inside the
    /// first remaining node. `limit` bounds the entries removed (0 = none). Returns how many
    /// entries were removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        loop {
            if let Trim::MaxLen(max) = how
                && self.length <= max
            {
                break;
            }
            let Some((&base, node)) = self.nodes.first_key_value() else { break };
            let entries = node.live as u64;
            if limit > 0 && deleted + entries > limit {
                break;
            }
            let remove_node = match how {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => node.raws(base).last().is_some_and(|r| r.id < min),
            };
            if remove_node {
                self.nodes.remove(&base);
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            let Some(node) = self.nodes.get_mut(&base) else { break };
            for r in node.raws(base) {
                if r.deleted {
                    continue;
                }
                let stop = match how {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => r.id >= min,
                };
                if stop {
                    break;
                }
                node.mark_deleted(r.offset);
                self.length -= 1;
                deleted += 1;
            }
            if node.live == 0 {
                self.nodes.remove(&base);
            }
            break;
        }
        self.refresh_first_id();
        deleted
    }

    /// True if a tombstone may lie within `[start, end]` (Redis's streamRangeHasTombstones).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.length == 0 || self.max_deleted.is_zero() || self.first_id > self.max_deleted {
            return false;
        }
        start <= self.max_deleted && self.max_deleted <= end
    }

    /// The logical position of `id` counted from the first entry ever added, when it can be
    /// known (Redis's streamEstimateDistanceFromFirstEverEntry).
    pub fn estimate_distance(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted.is_zero() || self.max_deleted < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added - self.length);
            }
            if id == self.first_id {
                return Some(self.entries_added - self.length + 1);
            }
        }
        None
    }

    /// A group's lag, when it can be known (Redis's streamReplyWithCGLag).
    /// Entries not yet delivered to the group; negative when ENTRIESREAD claimed more reads
    /// than the stream ever had (Redis replies the difference as it is).
    pub fn lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        let behind = |read: u64| (self.entries_added as i64).wrapping_sub(read as i64);
        if let Some(read) = g.entries_read
            && !self.range_has_tombstones(g.last_id, StreamId::MAX)
        {
            return Some(behind(read));
        }
        self.estimate_distance(g.last_id).map(behind)
    }

    /// Advances a group's last ID after delivering `id` as a new entry (XREADGROUP `>`).
    pub fn advance_group(&mut self, group: &[u8], id: StreamId) {
        let has_tomb = self.range_has_tombstones(id, StreamId::MAX);
        let estimate = self.estimate_distance(id);
        let added = self.entries_added;
        let Some(g) = self.groups.get_mut(group) else { return };
        if id <= g.last_id {
            return;
        }
        match g.entries_read {
            Some(r) if !has_tomb => g.entries_read = Some(r + 1),
            _ if added > 0 => g.entries_read = estimate,
            _ => {}
        }
        g.last_id = id;
    }

    /// Approximate heap bytes (MEMORY USAGE).
    pub fn mem_usage(&self) -> usize {
        let nodes: usize = self.nodes.values().map(|n| n.data.capacity() + n.master.len() + 96).sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|(k, g)| {
                k.len()
                    + 64
                    + g.pel.len() * 80
                    + g.consumers.iter().map(|(n, c)| n.len() + 48 + c.pel.len() * 32).sum::<usize>()
            })
            .sum();
        nodes + groups + 96
    }

    /// Live entries in order (DEBUG DIGEST-style walks, SORT-like readers).
    pub fn all(&self) -> Vec<Entry> {
        self.range(StreamId::ZERO, StreamId::MAX, 0, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn pairs(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn str_len_matches_put_str() {
        for n in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let mut out = Vec::new();
            put_str(&mut out, &vec![b'x'; n]);
            assert_eq!(str_len(&vec![b'x'; n]), out.len(), "{n}");
        }
    }

    const LIM: NodeLimits = NodeLimits { max_bytes: 4096, max_entries: 100 };

    /// XADD/XDEL/XTRIM/XRANGE/XREVRANGE against a sorted Vec as the reference model.
    #[test]
    fn random_operations_match_a_reference_model() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut s = Stream::default();
        let mut model: Vec<(StreamId, Vec<Bytes>)> = Vec::new();
        let mut next = StreamId::new(1, 0);
        for step in 0..20_000 {
            match rng.random_range(0..10) {
                0..=5 => {
                    let id = next;
                    next = if rng.random_bool(0.5) {
                        StreamId::new(id.ms, id.seq + 1)
                    } else {
                        StreamId::new(id.ms + rng.random_range(1..1000), 0)
                    };
                    let p = if rng.random_bool(0.7) {
                        pairs(&["name", "alice", "age", &step.to_string()])
                    } else {
                        pairs(&["other", &"x".repeat(rng.random_range(0..60))])
                    };
                    s.append(id, &crate::protocol::views(&p), LIM);
                    model.push((id, p));
                }
                6 if !model.is_empty() => {
                    let i = rng.random_range(0..model.len());
                    let (id, _) = model.remove(i);
                    assert!(s.delete(id));
                    assert!(!s.delete(id));
                }
                7 => {
                    let max = rng.random_range(0..(model.len() as u64 + 5));
                    let approx = rng.random_bool(0.5);
                    let removed = s.trim(Trim::MaxLen(max), approx, 0);
                    model.drain(..removed as usize);
                    if !approx {
                        assert!(s.len() <= max);
                    }
                }
                8 if !model.is_empty() => {
                    let min = model[rng.random_range(0..model.len())].0;
                    let removed = s.trim(Trim::MinId(min), false, 0);
                    model.drain(..removed as usize);
                    assert!(model.first().is_none_or(|(id, _)| *id >= min));
                }
                _ => {}
            }
            assert_eq!(s.len(), model.len() as u64);
            assert_eq!(s.last_live_id(), model.last().map(|(id, _)| *id));
            if step % 97 == 0 && !model.is_empty() {
                let a = model[rng.random_range(0..model.len())].0;
                let b = model[rng.random_range(0..model.len())].0;
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                let want: Vec<StreamId> =
                    model.iter().filter(|(id, _)| *id >= lo && *id <= hi).map(|(id, _)| *id).collect();
                let got: Vec<StreamId> = s.range(lo, hi, 0, false).into_iter().map(|(id, _)| id).collect();
                assert_eq!(got, want);
                let mut rev: Vec<StreamId> = s.range(lo, hi, 0, true).into_iter().map(|(id, _)| id).collect();
                rev.reverse();
                assert_eq!(rev, want);
                let (id, fields) = &model[rng.random_range(0..model.len())];
                let e = s.get(*id).unwrap();
                let flat: Vec<Bytes> = e.1.into_iter().flat_map(|(f, v)| [f, v]).collect();
                assert_eq!(&flat, fields);
            }
        }
        s.refresh_first_id();
        assert_eq!(s.first_id, model.first().map_or(StreamId::ZERO, |(id, _)| *id));
    }
}
