//! The RDB writer: a file (or a DUMP payload) built in memory with its running checksum, each
//! type in the encoding redis-server 7.0 would choose (see the format notes in `rdb.rs`).

use super::listpack::{self};
use super::lzf;
use crate::types::stream::{Stream, StreamId};
use crate::types::{HashValue, ListValue, Value, ZSetValue};

use super::rdb::*;

/// Accumulates the file in memory with its running checksum.
pub struct Writer {
    out: Vec<u8>,
    opts: SaveOptions,
}

impl Writer {
    pub fn new(opts: SaveOptions) -> Writer {
        let mut w = Writer { out: Vec::new(), opts };
        w.out.extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
        w
    }

    /// A writer of key records only (no header), for snapshots assembled in pieces.
    pub fn records(opts: SaveOptions) -> Writer {
        Writer { out: Vec::new(), opts }
    }

    /// Takes the bytes written so far.
    pub fn take_bytes(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// SELECTDB alone (a snapshot switches databases as records arrive).
    pub fn select(&mut self, db: usize) {
        self.u8(OP_SELECTDB);
        self.len(db as u64);
    }

    pub(super) fn u8(&mut self, b: u8) {
        self.out.push(b);
    }

    pub fn len(&mut self, n: u64) {
        if n < 1 << 6 {
            self.out.push(n as u8);
        } else if n < 1 << 14 {
            self.out.push(0x40 | (n >> 8) as u8);
            self.out.push((n & 0xff) as u8);
        } else if n <= u32::MAX as u64 {
            self.out.push(0x80);
            self.out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            self.out.push(0x81);
            self.out.extend_from_slice(&n.to_be_bytes());
        }
    }

    /// A string: as an integer encoding when it is a canonical integer that fits 32 bits,
    /// LZF-compressed when that saves space, else raw.
    pub fn string(&mut self, s: &[u8]) {
        if s.len() <= 11
            && let Some(n) = canonical_int(s)
        {
            if let Ok(v) = i8::try_from(n) {
                self.out.push(0xC0 | ENC_INT8);
                self.out.push(v as u8);
                return;
            }
            if let Ok(v) = i16::try_from(n) {
                self.out.push(0xC0 | ENC_INT16);
                self.out.extend_from_slice(&v.to_le_bytes());
                return;
            }
            if let Ok(v) = i32::try_from(n) {
                self.out.push(0xC0 | ENC_INT32);
                self.out.extend_from_slice(&v.to_le_bytes());
                return;
            }
        }
        if self.opts.compression
            && s.len() > 20
            && let Some(c) = lzf::compress(s, s.len() - 4)
        {
            self.out.push(0xC0 | ENC_LZF);
            self.len(c.len() as u64);
            self.len(s.len() as u64);
            self.out.extend_from_slice(&c);
            return;
        }
        self.len(s.len() as u64);
        self.out.extend_from_slice(s);
    }

    /// A FUNCTION library: its code, as Redis 7 stores it.
    pub fn function(&mut self, code: &[u8]) {
        self.u8(OP_FUNCTION2);
        self.string(code);
    }

    pub fn aux(&mut self, key: &str, value: &str) {
        self.u8(OP_AUX);
        self.string(key.as_bytes());
        self.string(value.as_bytes());
    }

    pub fn select_db(&mut self, db: usize, size: usize, expires: usize) {
        self.u8(OP_SELECTDB);
        self.len(db as u64);
        self.u8(OP_RESIZEDB);
        self.len(size as u64);
        self.len(expires as u64);
    }

    /// One key with its deadline.
    pub fn key(&mut self, key: &[u8], value: &Value, expire_at: Option<u64>) {
        self.key_with_access(key, value, expire_at, None, None);
    }

    /// One key with its deadline and, under LRU / LFU policies, its idle seconds or access
    /// frequency (the IDLE and FREQ opcodes Redis writes then).
    pub fn key_with_access(
        &mut self,
        key: &[u8],
        value: &Value,
        expire_at: Option<u64>,
        idle_secs: Option<u64>,
        freq: Option<u8>,
    ) {
        if let Some(at) = expire_at {
            self.u8(OP_EXPIRETIME_MS);
            self.out.extend_from_slice(&at.to_le_bytes());
        }
        if let Some(idle) = idle_secs {
            self.u8(OP_IDLE);
            self.len(idle);
        }
        if let Some(f) = freq {
            self.u8(OP_FREQ);
            self.u8(f);
        }
        self.typed(Some(key), value);
    }

    /// The type byte, the key (absent in DUMP payloads) and the value.
    pub(super) fn typed(&mut self, key: Option<&[u8]>, value: &Value) {
        match value {
            Value::Str(s) => {
                self.head(T_STRING, key);
                s.with_bytes(|b| self.string(b));
            }
            Value::List(l) => {
                self.head(T_LIST_QUICKLIST_2, key);
                self.list(l);
            }
            Value::Set(s) if s.is_ints() => {
                self.head(T_SET_INTSET, key);
                let members: Vec<i64> = match value {
                    Value::Set(s) => s.iter().filter_map(|m| crate::util::numfmt::parse_i64(&m)).collect(),
                    _ => Vec::new(),
                };
                self.string(&intset_blob(members));
            }
            Value::Set(s) => {
                self.head(T_SET, key);
                self.len(s.len() as u64);
                for m in s.iter() {
                    self.string(&m);
                }
            }
            Value::Hash(h) => self.hash(key, h),
            Value::ZSet(z) => self.zset(key, z),
            Value::Stream(s) => {
                self.head(T_STREAM_LISTPACKS_2, key);
                self.stream(s);
            }
        }
    }

    fn head(&mut self, t: u8, key: Option<&[u8]>) {
        self.u8(t);
        if let Some(k) = key {
            self.string(k);
        }
    }

    fn list(&mut self, l: &ListValue) {
        // Quicklist nodes of at most 128 elements / 8 KB, like Redis's default fill (-2).
        let mut nodes: Vec<Vec<u8>> = Vec::new();
        let mut cur = listpack::Writer::new();
        for item in l.iter() {
            if !cur.is_empty() && (cur.len() >= 128 || cur.bytes() + item.len() > 8192) {
                nodes.push(std::mem::take(&mut cur).finish());
            }
            cur.push(item);
        }
        if !cur.is_empty() {
            nodes.push(cur.finish());
        }
        self.len(nodes.len() as u64);
        for n in nodes {
            self.len(2); // QUICKLIST_NODE_CONTAINER_PACKED
            self.string(&n);
        }
    }

    fn hash(&mut self, key: Option<&[u8]>, h: &HashValue) {
        // With field deadlines: Redis 7.4's table form, which any 7.4+ loads whatever its
        // size (it picks its own encoding); without, 7.0's forms, which 7.0 still reads.
        if h.has_ttls() {
            let min = h.iter_ttl().filter(|e| e.2 != 0).map(|e| e.2).min().unwrap_or(0);
            self.head(T_HASH_METADATA, key);
            self.out.extend_from_slice(&min.to_le_bytes());
            self.len(h.len() as u64);
            for (f, v, at) in h.iter_ttl() {
                self.len(if at == 0 { 0 } else { at - min + 1 });
                self.string(f);
                self.string(v);
            }
            return;
        }
        let lim = self.opts.hash;
        let small =
            h.len() <= lim.max_entries && h.iter().all(|(f, v)| f.len() <= lim.max_value && v.len() <= lim.max_value);
        if small {
            self.head(T_HASH_LISTPACK, key);
            let mut w = listpack::Writer::new();
            for (f, v) in h.iter() {
                w.push(f);
                w.push(v);
            }
            self.string(&w.finish());
        } else {
            self.head(T_HASH, key);
            self.len(h.len() as u64);
            for (f, v) in h.iter() {
                self.string(f);
                self.string(v);
            }
        }
    }

    fn zset(&mut self, key: Option<&[u8]>, z: &ZSetValue) {
        let lim = self.opts.zset;
        let n = z.len();
        let small = n <= lim.max_entries && z.range(0, n, false).all(|(m, _)| m.len() <= lim.max_value);
        if small {
            self.head(T_ZSET_LISTPACK, key);
            let mut w = listpack::Writer::new();
            for (m, s) in z.range(0, n, false) {
                w.push(m);
                w.push(crate::util::numfmt::fmt_double(s).as_bytes());
            }
            self.string(&w.finish());
        } else {
            // Redis writes the skiplist from the highest score down.
            self.head(T_ZSET_2, key);
            self.len(n as u64);
            for (m, s) in z.range(0, n, true) {
                self.string(m);
                self.out.extend_from_slice(&s.to_le_bytes());
            }
        }
    }

    fn stream(&mut self, s: &Stream) {
        // Nodes of up to 100 entries, each starting with its master entry (Redis's layout).
        let mut nodes: Vec<(StreamId, Vec<u8>)> = Vec::new();
        let mut batch: Vec<(StreamId, Vec<Vec<u8>>)> = Vec::new();
        let flush = |batch: &mut Vec<(StreamId, Vec<Vec<u8>>)>, nodes: &mut Vec<(StreamId, Vec<u8>)>| {
            if batch.is_empty() {
                return;
            }
            let master = batch[0].0;
            let fields: Vec<Vec<u8>> = batch[0].1.chunks(2).map(|p| p[0].clone()).collect();
            let mut w = listpack::Writer::new();
            w.push_int(batch.len() as i64);
            w.push_int(0);
            w.push_int(fields.len() as i64);
            for f in &fields {
                w.push(f);
            }
            w.push_int(0);
            for (id, flat) in batch.iter() {
                let same = flat.len() == fields.len() * 2 && flat.chunks(2).zip(&fields).all(|(p, f)| &p[0] == f);
                w.push_int(if same { 2 } else { 0 });
                w.push_int((id.ms - master.ms) as i64);
                w.push_int(id.seq.wrapping_sub(master.seq) as i64);
                if same {
                    for p in flat.chunks(2) {
                        w.push(&p[1]);
                    }
                    w.push_int(fields.len() as i64 + 3);
                } else {
                    w.push_int((flat.len() / 2) as i64);
                    for x in flat {
                        w.push(x);
                    }
                    w.push_int(flat.len() as i64 + 4);
                }
            }
            nodes.push((master, w.finish()));
            batch.clear();
        };
        s.visit_range(StreamId::ZERO, StreamId::MAX, 0, false, |id, flat| {
            batch.push((id, flat.iter().map(|x| x.to_vec()).collect()));
            if batch.len() >= 100 {
                flush(&mut batch, &mut nodes);
            }
        });
        flush(&mut batch, &mut nodes);
        self.len(nodes.len() as u64);
        for (master, lp) in &nodes {
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&master.ms.to_be_bytes());
            k[8..].copy_from_slice(&master.seq.to_be_bytes());
            self.string(&k);
            self.string(lp);
        }
        self.len(s.len());
        self.id(s.last_id);
        self.id(s.first_id);
        self.id(s.max_deleted);
        self.len(s.entries_added);
        self.len(s.groups.len() as u64);
        for (name, g) in &s.groups {
            self.string(name);
            self.id(g.last_id);
            // SCG_INVALID_ENTRIES_READ (-1) as an unsigned length, as Redis writes it.
            self.len(g.entries_read.unwrap_or(u64::MAX));
            self.len(g.pel.len() as u64);
            for (id, n) in &g.pel {
                self.raw_id(*id);
                self.out.extend_from_slice(&n.delivery_time.to_le_bytes());
                self.len(n.delivery_count);
            }
            self.len(g.consumers.len() as u64);
            for (cname, c) in &g.consumers {
                self.string(cname);
                self.out.extend_from_slice(&c.seen_time.to_le_bytes());
                self.len(c.pel.len() as u64);
                for id in &c.pel {
                    self.raw_id(*id);
                }
            }
        }
    }

    fn id(&mut self, id: StreamId) {
        self.len(id.ms);
        self.len(id.seq);
    }

    fn raw_id(&mut self, id: StreamId) {
        self.out.extend_from_slice(&id.ms.to_be_bytes());
        self.out.extend_from_slice(&id.seq.to_be_bytes());
    }

    /// Appends EOF and the checksum (zero when `rdbchecksum no`, as Redis does).
    pub fn finish(mut self) -> Vec<u8> {
        self.u8(OP_EOF);
        let crc = if self.opts.checksum { crc64(&self.out) } else { 0 };
        self.out.extend_from_slice(&crc.to_le_bytes());
        self.out
    }
}

/// Redis's intset blob: element width (2, 4 or 8), count, then the sorted values.
pub(super) fn intset_blob(mut v: Vec<i64>) -> Vec<u8> {
    v.sort_unstable();
    let width: usize = if v.iter().all(|n| i16::try_from(*n).is_ok()) {
        2
    } else if v.iter().all(|n| i32::try_from(*n).is_ok()) {
        4
    } else {
        8
    };
    let mut b = Vec::with_capacity(8 + width * v.len());
    b.extend_from_slice(&(width as u32).to_le_bytes());
    b.extend_from_slice(&(v.len() as u32).to_le_bytes());
    for n in v {
        b.extend_from_slice(&n.to_le_bytes()[..width]);
    }
    b
}
