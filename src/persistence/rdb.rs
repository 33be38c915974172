//! Redis 7.0's RDB format (version 10): the writer Ember saves with and the loader that reads
//! Ember's and Redis's files.
//!
//! The writer emits what redis-server 7.0 emits for each type, choosing the compact encodings
//! where Redis would: strings as integers or LZF when that is shorter, lists as quicklists of
//! listpacks, sets as plain member lists (Redis re-encodes them as intsets on load), hashes and
//! sorted sets as listpacks when within the `*-max-listpack-*` limits else as field/score
//! lists with binary doubles, streams as listpack nodes with their groups and PELs. The file
//! ends with EOF and a CRC-64/REDIS of everything before it.
//!
//! The loader reads a whole file from memory: every length is checked against what is left,
//! every nested blob (listpack, intset, ziplist) is validated before use, and any problem is a
//! [`RdbError::Corrupted`] naming the offset; nothing is applied to the keyspace until the
//! whole file has parsed and its checksum matched.

use bytes::Bytes;
use thiserror::Error;

use std::collections::HashSet;

use super::legacy;
use super::listpack::{self, Elem};
use super::rdb_reader::Reader;
use crate::types::stream::{Group, NodeLimits, Stream, StreamId};
use crate::types::{End, Fill, HashLimits, HashValue, ListValue, SetValue, StrValue, Value, ZSetValue, ZsetLimits};

pub use super::rdb_writer::Writer;

pub const RDB_VERSION: u32 = 10;

pub(super) const OP_FUNCTION2: u8 = 245;
pub(super) const OP_MODULE_AUX: u8 = 247;
pub(super) const OP_IDLE: u8 = 248;
pub(super) const OP_FREQ: u8 = 249;
pub(super) const OP_AUX: u8 = 250;
pub(super) const OP_RESIZEDB: u8 = 251;
pub(super) const OP_EXPIRETIME_MS: u8 = 252;
pub(super) const OP_EXPIRETIME: u8 = 253;
pub(super) const OP_SELECTDB: u8 = 254;
pub(super) const OP_EOF: u8 = 255;

pub(super) const T_STRING: u8 = 0;
pub(super) const T_LIST: u8 = 1;
pub(super) const T_SET: u8 = 2;
pub(super) const T_ZSET: u8 = 3;
pub(super) const T_HASH: u8 = 4;
pub(super) const T_ZSET_2: u8 = 5;
pub(super) const T_HASH_ZIPMAP: u8 = 9;
pub(super) const T_LIST_ZIPLIST: u8 = 10;
pub(super) const T_SET_INTSET: u8 = 11;
pub(super) const T_ZSET_ZIPLIST: u8 = 12;
pub(super) const T_HASH_ZIPLIST: u8 = 13;
pub(super) const T_LIST_QUICKLIST: u8 = 14;
pub(super) const T_STREAM_LISTPACKS: u8 = 15;
pub(super) const T_HASH_LISTPACK: u8 = 16;
pub(super) const T_ZSET_LISTPACK: u8 = 17;
pub(super) const T_LIST_QUICKLIST_2: u8 = 18;
pub(super) const T_STREAM_LISTPACKS_2: u8 = 19;
pub(super) const T_SET_LISTPACK: u8 = 20;
pub(super) const T_STREAM_LISTPACKS_3: u8 = 21;
/// Redis 7.4 hashes with field deadlines: the RC forms with absolute deadlines, then the GA
/// forms that start with the earliest deadline (8 bytes) and, in the table form, store each
/// deadline relative to it (0 = none, else deadline - min + 1).
pub(super) const T_HASH_METADATA_PRE_GA: u8 = 22;
pub(super) const T_HASH_LISTPACK_EX_PRE_GA: u8 = 23;
pub(super) const T_HASH_METADATA: u8 = 24;
pub(super) const T_HASH_LISTPACK_EX: u8 = 25;
/// The latest field deadline Redis accepts in a file (EB_EXPIRE_TIME_MAX).
const MAX_FIELD_DEADLINE: u64 = (1 << 48) - 1;

pub(super) const ENC_INT8: u8 = 0;
pub(super) const ENC_INT16: u8 = 1;
pub(super) const ENC_INT32: u8 = 2;
pub(super) const ENC_LZF: u8 = 3;

#[derive(Debug, Error)]
pub enum RdbError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("Internal error in RDB reading offset {offset} -> {what}")]
    Corrupted { offset: usize, what: String },
    /// The image's source failed mid-way (a replica's link to its master dropped).
    #[error("Internal error in RDB reading offset {offset} -> {source}")]
    Read { offset: usize, source: std::io::Error },
    /// An error in the value of a key: which key, of which RDB type (Redis's checker report).
    #[error("{source}")]
    InKey { key: String, rdb_type: u8, source: Box<RdbError> },
}

impl RdbError {
    /// The report Redis's RDB checker prints after a load from a file fails (Redis runs it
    /// before exiting): the error, then the key and type being read.
    pub fn report(&self) -> Vec<String> {
        let mut lines = vec!["--- RDB ERROR DETECTED ---".to_string(), self.to_string()];
        if let RdbError::InKey { key, rdb_type, .. } = self {
            lines.push(format!("[additional info] Reading key '{key}'"));
            lines.push(format!("[additional info] Reading type {rdb_type}"));
        }
        lines
    }
}

/// What [`load_source_with`] parsed besides the keys it handed on.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The FUNCTION libraries' code, in file order.
    pub functions: Vec<Vec<u8>>,
    /// The image's length.
    pub used: usize,
    /// Empty collections skipped (Redis skips them too, and logs each).
    pub empty_keys: u64,
    /// A streamed image: the bytes read past its end (what followed it in the stream).
    pub rest: Vec<u8>,
}

/// Encoding choices the writer makes like Redis does.
#[derive(Debug, Clone, Copy)]
pub struct SaveOptions {
    pub compression: bool,
    pub checksum: bool,
    pub hash: HashLimits,
    pub zset: ZsetLimits,
    pub list_fill: i64,
}

/// Limits the loader builds values with (the server's encoding thresholds).
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub hash: HashLimits,
    pub zset: ZsetLimits,
    pub set_max_intset: usize,
    pub list_fill: i64,
    pub stream: NodeLimits,
}

/// One loaded key.
pub struct LoadedKey {
    pub db: usize,
    pub key: Bytes,
    pub value: Value,
    pub expire_at: Option<u64>,
    pub idle_secs: Option<u64>,
    pub freq: Option<u8>,
}

/// DUMP's payload: the value as RDB encodes it, the RDB version (2 bytes) and a CRC-64 of
/// everything before it.
pub fn dump(value: &Value, opts: SaveOptions) -> Vec<u8> {
    let mut w = Writer::records(opts);
    w.typed(None, value);
    let mut out = w.take_bytes();
    out.extend_from_slice(&(RDB_VERSION as u16).to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// FUNCTION DUMP's payload: each library as a FUNCTION2 record, then the DUMP footer.
pub fn dump_functions<'a>(codes: impl Iterator<Item = &'a [u8]>, opts: SaveOptions) -> Vec<u8> {
    let mut w = Writer::records(opts);
    for code in codes {
        w.function(code);
    }
    let mut out = w.take_bytes();
    out.extend_from_slice(&(RDB_VERSION as u16).to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The library codes of a FUNCTION RESTORE payload; Err(None) for a bad footer,
/// Err(Some(text)) for records that are not libraries. `check_crc` false is DEBUG
/// SET-SKIP-CHECKSUM-VALIDATION (Redis's tests feed damaged payloads to the parser with it).
pub fn restore_functions(payload: &[u8], check_crc: bool) -> Result<Vec<Vec<u8>>, Option<&'static str>> {
    if payload.len() < 10 {
        return Err(None);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]) as u32;
    let crc = u64::from_le_bytes(footer[2..10].try_into().map_err(|_| None)?);
    if version > RDB_VERSION || (check_crc && crc != crc64(&payload[..payload.len() - 8])) {
        return Err(None);
    }
    let mut r = Reader::slice(body);
    let mut out = Vec::new();
    while r.pos < body.len() {
        match r.u8() {
            Ok(OP_FUNCTION2) => out.push(r.string().map_err(|_| Some("payload is not valid"))?),
            _ => return Err(Some("given type is not a function")),
        }
    }
    Ok(out)
}

/// Why a RESTORE payload was refused (Redis's two errors).
#[derive(Debug, PartialEq)]
pub enum DumpError {
    /// Bad version or checksum.
    Footer,
    /// The value inside does not parse: why (Redis logs it at verbose level), if not just
    /// an empty collection.
    BadData(Option<String>),
}

/// Parses a DUMP payload (Redis's or Ember's); `check_crc` as [`restore_functions`].
pub fn restore(payload: &[u8], opts: LoadOptions, check_crc: bool) -> Result<Value, DumpError> {
    if payload.len() < 10 {
        return Err(DumpError::Footer);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]) as u32;
    let crc = u64::from_le_bytes(footer[2..10].try_into().map_err(|_| DumpError::Footer)?);
    if version > RDB_VERSION || (check_crc && crc != crc64(&payload[..payload.len() - 8])) {
        return Err(DumpError::Footer);
    }
    let mut r = Reader::slice(body);
    let bad = |e: RdbError| DumpError::BadData(Some(e.to_string()));
    let t = r.u8().map_err(bad)?;
    let v = load_value(&mut r, t, opts).map_err(bad)?.ok_or(DumpError::BadData(None))?;
    if r.pos != body.len() {
        return Err(bad(r.err("trailing bytes after the value")));
    }
    Ok(v)
}

pub fn crc64(data: &[u8]) -> u64 {
    crc::Crc::<u64>::new(&crc::CRC_64_REDIS).checksum(data)
}

/// The CRC-64 of a file written (or read) in pieces.
#[derive(Clone)]
pub struct Checksum(crc::Digest<'static, u64>);

static CRC: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

impl Default for Checksum {
    fn default() -> Self {
        Checksum(CRC.digest())
    }
}

impl Checksum {
    pub fn update(&mut self, b: &[u8]) {
        self.0.update(b);
    }

    /// The CRC-64 of the bytes so far.
    pub fn value(self) -> u64 {
        self.0.finalize()
    }

    /// The EOF opcode and the checksum, closing a file whose earlier bytes went through
    /// `update`.
    pub fn trailer(mut self, checksum: bool) -> Vec<u8> {
        self.0.update(&[OP_EOF]);
        let crc = if checksum { self.0.finalize() } else { 0 };
        let mut t = vec![OP_EOF];
        t.extend_from_slice(&crc.to_le_bytes());
        t
    }
}

pub(super) fn canonical_int(s: &[u8]) -> Option<i64> {
    let n = crate::util::numfmt::parse_i64(s)?;
    (n.to_string().as_bytes() == s).then_some(n)
}

// ---------------------------------------------------------------------------------------------
// Loading

/// Parses a whole RDB file: its keys. Nothing is returned unless every byte parsed and the
/// checksum (when present) matched.
pub fn load(buf: &[u8], opts: LoadOptions) -> Result<Vec<LoadedKey>, RdbError> {
    load_all(buf, opts).map(|(keys, _)| keys)
}

/// [`load`], with the code of the FUNCTION libraries the file carries (Redis 7's FUNCTION2
/// records), in file order.
pub fn load_all(buf: &[u8], opts: LoadOptions) -> Result<(Vec<LoadedKey>, Vec<Vec<u8>>), RdbError> {
    whole(load_prefix(buf, opts)?, buf.len())
}

/// A parsed [`Prefix`] that must have been the whole file of `len` bytes.
pub fn whole((keys, functions, used): Prefix, len: usize) -> Result<(Vec<LoadedKey>, Vec<Vec<u8>>), RdbError> {
    ends_the_file(used, len)?;
    Ok((keys, functions))
}

/// An image of `used` bytes must be the whole file of `len` bytes.
pub fn ends_the_file(used: usize, len: usize) -> Result<(), RdbError> {
    if used != len {
        return Err(RdbError::Corrupted { offset: used, what: "trailing bytes after the end of the file".into() });
    }
    Ok(())
}

/// Elements reserved ahead of a count read from a file: a count is only bounded by the
/// file's length, and elements are larger than the byte each takes at least, so a hostile
/// count must not size an allocation beyond this (the vector grows as elements arrive).
const PREALLOC_MAX: usize = 4096;

/// The replication state an RDB file was saved in (its `repl-id`, `repl-offset` and
/// `repl-stream-db` aux fields), from which a restarted server continues its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplInfo {
    pub id: String,
    pub offset: u64,
    pub stream_db: usize,
}

/// The replication state in the aux fields at the head of an RDB image, if it has all three.
pub fn repl_info(buf: &[u8]) -> Option<ReplInfo> {
    let mut r = Reader::slice(buf);
    r.take(9).ok()?;
    let (mut id, mut offset, mut db) = (None, None, None);
    while r.u8().ok()? == OP_AUX {
        let key = r.string().ok()?;
        let value = String::from_utf8(r.string().ok()?).ok()?;
        match &key[..] {
            b"repl-id" if value.len() == 40 => id = Some(value),
            b"repl-offset" => offset = value.parse::<u64>().ok(),
            b"repl-stream-db" => db = value.parse::<usize>().ok(),
            _ => {}
        }
    }
    Some(ReplInfo { id: id?, offset: offset?, stream_db: db? })
}

/// Keys, function libraries, and the length of the image they came from.
pub type Prefix = (Vec<LoadedKey>, Vec<Vec<u8>>, usize);

/// [`load_all`] of an RDB image that other bytes may follow (an old AOF's preamble before
/// its commands): also returns the length of the image.
pub fn load_prefix(buf: &[u8], opts: LoadOptions) -> Result<Prefix, RdbError> {
    let mut keys = Vec::new();
    let Parsed { functions, used, .. } = load_prefix_with(buf, opts, &mut |k, _| {
        keys.push(k);
        Ok(())
    })?;
    Ok((keys, functions, used))
}

/// [`load_prefix`] handing each key to `sink` as soon as it is parsed, with the bytes parsed
/// so far, instead of collecting them: a server loading its data set installs the keys as
/// they come (no second copy of the data set's index in memory), serves clients and slows
/// down under `key-load-delay` between them. The checksum is checked at the end, after the
/// keys went to `sink`, as Redis checks it. Returns the function libraries and the image's
/// length.
pub fn load_prefix_with(
    buf: &[u8],
    opts: LoadOptions,
    sink: &mut dyn FnMut(LoadedKey, usize) -> Result<(), RdbError>,
) -> Result<Parsed, RdbError> {
    load_source_with(Source::Bytes(buf), opts, sink)
}

/// An image to load: in memory, or read as it is parsed (a file: never held whole).
pub enum Source<'a> {
    Bytes(&'a [u8]),
    /// The reader and the image's length (a count larger than what is left is corruption,
    /// so the length bounds what the file's counts may size).
    Stream(&'a mut dyn std::io::Read, u64),
}

/// [`load_prefix_with`] from either kind of [`Source`].
pub fn load_source_with(
    src: Source<'_>,
    opts: LoadOptions,
    sink: &mut dyn FnMut(LoadedKey, usize) -> Result<(), RdbError>,
) -> Result<Parsed, RdbError> {
    let mut r = match src {
        Source::Bytes(buf) => Reader::slice(buf),
        Source::Stream(read, len) => Reader::stream(read, len),
    };
    let magic = r.take(9)?;
    if &magic[..5] != b"REDIS" {
        return Err(RdbError::Corrupted { offset: 0, what: "not an RDB file (bad magic)".into() });
    }
    let version: u32 = std::str::from_utf8(&magic[5..]).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    if !(1..=12).contains(&version) {
        return Err(RdbError::Corrupted { offset: 5, what: format!("unsupported RDB version {version}") });
    }
    let mut functions = Vec::new();
    let mut empty_keys = 0;
    let mut db = 0usize;
    let mut expire: Option<u64> = None;
    let mut idle: Option<u64> = None;
    let mut freq: Option<u8> = None;
    loop {
        let op = r.u8()?;
        match op {
            OP_EOF => break,
            OP_SELECTDB => {
                db = r.length()? as usize;
                if db >= 1 << 16 {
                    return Err(r.err("database index out of range"));
                }
            }
            OP_RESIZEDB => {
                r.length()?;
                r.length()?;
            }
            OP_AUX => {
                r.string()?;
                r.string()?;
            }
            OP_EXPIRETIME_MS => expire = Some(r.u64_le()?),
            OP_EXPIRETIME => {
                let secs = u32::from_le_bytes(r.take(4)?.try_into().unwrap_or([0; 4]));
                expire = Some(secs as u64 * 1000);
            }
            OP_IDLE => idle = Some(r.length()?),
            OP_FREQ => freq = Some(r.u8()?),
            OP_FUNCTION2 => functions.push(r.string()?),
            OP_MODULE_AUX => {
                return Err(r.err("modules in RDB files are not supported"));
            }
            t => {
                let key = r.string()?;
                let value = load_value(&mut r, t, opts).map_err(|e| RdbError::InKey {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    rdb_type: t,
                    source: Box::new(e),
                })?;
                if value.is_none() {
                    tracing::warn!("rdbLoadObject skipping empty key: {}", String::from_utf8_lossy(&key));
                    empty_keys += 1;
                }
                if let Some(value) = value {
                    let k = LoadedKey {
                        db,
                        key: Bytes::from(key),
                        value,
                        expire_at: expire.take(),
                        idle_secs: idle.take(),
                        freq: freq.take(),
                    };
                    sink(k, r.pos)?;
                }
                (expire, idle, freq) = (None, None, None);
            }
        }
    }
    if version >= 5 {
        let at = r.pos;
        let stored = r.u64_le()?;
        if stored != 0 && stored != r.checksum_to(at) {
            return Err(RdbError::Corrupted { offset: at, what: "RDB CRC error (wrong RDB checksum)".into() });
        }
    }
    Ok(Parsed { functions, used: r.pos, empty_keys, rest: r.unread().to_vec() })
}

/// One value of type `t`; None for an empty collection (Redis skips such a key in a file and
/// refuses it in RESTORE). Errors carry Redis's own texts ("... integrity check failed.").
fn load_value(r: &mut Reader, t: u8, o: LoadOptions) -> Result<Option<Value>, RdbError> {
    let fill = Fill(o.list_fill);
    Ok(Some(match t {
        T_STRING => Value::Str(StrValue::from_bytes(&r.string()?)),
        T_LIST => {
            let n = r.count()?;
            let mut l = ListValue::new();
            for _ in 0..n {
                l.push(End::Right, &r.string()?, fill);
            }
            if l.is_empty() {
                return Ok(None);
            }
            Value::List(Box::new(l))
        }
        T_SET => {
            let n = r.count()?;
            let mut s: Option<SetValue> = None;
            for _ in 0..n {
                let m = r.string()?;
                if !s.get_or_insert_with(|| SetValue::for_member(&m)).add(&m, o.set_max_intset) {
                    return Err(r.err("Duplicate set members detected"));
                }
            }
            match s {
                Some(s) => Value::Set(s),
                None => return Ok(None),
            }
        }
        T_SET_INTSET => {
            let blob = r.string()?;
            let members = legacy::intset_members(&blob).ok_or_else(|| r.err("Intset integrity check failed."))?;
            return Ok(set_from(members.iter().map(|n| n.to_string().into_bytes()), o));
        }
        T_SET_LISTPACK => {
            let blob = r.string()?;
            let bad = || r.err("Set listpack integrity check failed.");
            let elems = listpack::decode(&blob).ok_or_else(bad)?;
            let mut seen = HashSet::with_capacity(elems.len());
            if !elems.iter().all(|e| seen.insert(e.to_vec())) {
                return Err(bad());
            }
            return Ok(set_from(elems.iter().map(|e| e.to_vec()), o));
        }
        T_HASH => {
            let n = r.count()?;
            let mut h = HashValue::default();
            // In batches: a small hash's field list is looked up once (shared field names).
            let mut batch = Vec::new();
            for i in 0..n {
                batch.push(r.string()?);
                batch.push(r.string()?);
                if batch.len() == 256 || i + 1 == n {
                    h.set_pairs(&batch.iter().map(|b| &b[..]).collect::<Vec<_>>(), o.hash);
                    batch.clear();
                }
            }
            if h.len() != n {
                return Err(r.err("Duplicate hash fields detected"));
            }
            if h.is_empty() {
                return Ok(None);
            }
            Value::Hash(h)
        }
        T_HASH_LISTPACK | T_HASH_ZIPLIST => {
            let blob = r.string()?;
            let what = if t == T_HASH_ZIPLIST { "Hash ziplist" } else { "Hash listpack" };
            let elems = decode_pack(&blob, t == T_HASH_ZIPLIST)
                .and_then(distinct_pairs)
                .ok_or_else(|| r.err(format!("{what} integrity check failed.")))?;
            if elems.is_empty() {
                return Ok(None);
            }
            let mut h = HashValue::default();
            h.set_pairs(&elems.iter().map(|e| &e[..]).collect::<Vec<_>>(), o.hash);
            Value::Hash(h)
        }
        T_HASH_METADATA | T_HASH_METADATA_PRE_GA => {
            let min = if t == T_HASH_METADATA { r.u64_le()? } else { 0 };
            let n = r.count()?;
            let mut h = HashValue::default();
            for _ in 0..n {
                let ttl = r.length()?;
                let at = match (t, ttl) {
                    (_, 0) => 0,
                    (T_HASH_METADATA, rel) => rel.checked_add(min).map_or(u64::MAX, |v| v - 1),
                    (_, abs) => abs,
                };
                if at > MAX_FIELD_DEADLINE {
                    return Err(r.err(format!("invalid expireAt time: {at}")));
                }
                let f = r.string()?;
                let v = r.string()?;
                if !h.set(&f, &v, o.hash) {
                    return Err(r.err("Duplicate hash fields detected"));
                }
                if at != 0 {
                    h.set_ttl(&f, at);
                }
            }
            if h.is_empty() {
                return Ok(None);
            }
            Value::Hash(h)
        }
        T_HASH_LISTPACK_EX | T_HASH_LISTPACK_EX_PRE_GA => {
            if t == T_HASH_LISTPACK_EX {
                r.u64_le()?; // the earliest deadline, which the triplets repeat
            }
            let blob = r.string()?;
            let bad = || r.err("Hash listpack integrity check failed.");
            let elems = listpack::decode(&blob).ok_or_else(bad)?;
            if elems.len() % 3 != 0 {
                return Err(bad());
            }
            let mut h = HashValue::default();
            for e in elems.chunks(3) {
                let at = match e[2] {
                    listpack::Elem::Int(n) if (0..=MAX_FIELD_DEADLINE as i64).contains(&n) => n as u64,
                    _ => return Err(bad()),
                };
                let (f, v) = (e[0].to_vec(), e[1].to_vec());
                if !h.set(&f, &v, o.hash) {
                    return Err(bad());
                }
                if at != 0 {
                    h.set_ttl(&f, at);
                }
            }
            if h.is_empty() {
                return Ok(None);
            }
            Value::Hash(h)
        }
        T_HASH_ZIPMAP => {
            let blob = r.string()?;
            let pairs = legacy::zipmap_decode(&blob).ok_or_else(|| r.err("Zipmap integrity check failed."))?;
            let mut seen = HashSet::with_capacity(pairs.len());
            if let Some((f, _)) = pairs.iter().find(|(f, _)| !seen.insert(&f[..])) {
                return Err(r.err(format!("Hash zipmap with dup elements, or big length ({})", f.len())));
            }
            let mut h = HashValue::default();
            h.set_pairs(&pairs.iter().flat_map(|(f, v)| [&f[..], &v[..]]).collect::<Vec<_>>(), o.hash);
            Value::Hash(h)
        }
        T_ZSET | T_ZSET_2 => {
            let n = r.count()?;
            let mut items = Vec::with_capacity(n.min(PREALLOC_MAX));
            for _ in 0..n {
                let m = r.string()?;
                let s = if t == T_ZSET_2 { r.binary_double()? } else { r.text_double()? };
                if s.is_nan() {
                    return Err(r.err("Zset with NAN score detected"));
                }
                items.push((m, s));
            }
            if items.is_empty() {
                return Ok(None);
            }
            let z = zset_from(items, o);
            if z.len() != n {
                return Err(r.err("Duplicate zset fields detected"));
            }
            Value::ZSet(z)
        }
        T_ZSET_LISTPACK | T_ZSET_ZIPLIST => {
            let blob = r.string()?;
            let what = if t == T_ZSET_ZIPLIST { "Zset ziplist" } else { "Zset listpack" };
            let bad = || r.err(format!("{what} integrity check failed."));
            let elems = decode_pack(&blob, t == T_ZSET_ZIPLIST).and_then(distinct_pairs).ok_or_else(bad)?;
            let mut items = Vec::with_capacity(elems.len() / 2);
            for p in elems.chunks(2) {
                let s = std::str::from_utf8(&p[1]).ok().and_then(|t| t.parse::<f64>().ok());
                let s = s.filter(|s| !s.is_nan()).ok_or_else(bad)?;
                items.push((p[0].clone(), s));
            }
            if items.is_empty() {
                return Ok(None);
            }
            Value::ZSet(zset_from(items, o))
        }
        T_LIST_QUICKLIST | T_LIST_QUICKLIST_2 => {
            let nodes = r.count()?;
            let mut l = ListValue::new();
            for _ in 0..nodes {
                let container = if t == T_LIST_QUICKLIST_2 { r.length()? } else { 2 };
                if container != 1 && container != 2 {
                    return Err(r.err("Quicklist integrity check failed."));
                }
                let blob = r.string()?;
                if blob.is_empty() {
                    return Err(r.err("empty quicklist node"));
                }
                if container == 1 {
                    l.push(End::Right, &blob, fill);
                    continue;
                }
                // Empty nodes are skipped, as Redis does; an empty list is an empty key.
                let what = if t == T_LIST_QUICKLIST { "Ziplist" } else { "Listpack" };
                let elems = decode_pack(&blob, t == T_LIST_QUICKLIST)
                    .ok_or_else(|| r.err(format!("{what} integrity check failed.")))?;
                for e in elems {
                    l.push(End::Right, &e, fill);
                }
            }
            if l.is_empty() {
                return Ok(None);
            }
            Value::List(Box::new(l))
        }
        T_LIST_ZIPLIST => {
            let blob = r.string()?;
            let elems = legacy::ziplist_decode(&blob).ok_or_else(|| r.err("List ziplist integrity check failed."))?;
            if elems.is_empty() {
                return Ok(None);
            }
            let mut l = ListValue::new();
            for e in elems {
                l.push(End::Right, &e, fill);
            }
            Value::List(Box::new(l))
        }
        T_STREAM_LISTPACKS | T_STREAM_LISTPACKS_2 | T_STREAM_LISTPACKS_3 => {
            Value::Stream(Box::new(load_stream(r, t, o)?))
        }
        other => return Err(r.err(format!("Unknown RDB encoding type {other}"))),
    }))
}

fn set_from(members: impl Iterator<Item = Vec<u8>>, o: LoadOptions) -> Option<Value> {
    let mut s: Option<SetValue> = None;
    for m in members {
        s.get_or_insert_with(|| SetValue::for_member(&m)).add(&m, o.set_max_intset);
    }
    s.map(Value::Set)
}

fn zset_from(items: Vec<(Vec<u8>, f64)>, o: LoadOptions) -> ZSetValue {
    let maxlen = items.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    let mut z = ZSetValue::for_first(maxlen, o.zset);
    for (m, s) in items {
        z.set(&m, s, o.zset);
    }
    z
}

/// A listpack, or a ziplist for RDB 9 types, as owned element strings.
fn decode_pack(blob: &[u8], ziplist: bool) -> Option<Vec<Vec<u8>>> {
    if ziplist {
        return legacy::ziplist_decode(blob);
    }
    Some(listpack::decode(blob)?.iter().map(Elem::to_vec).collect())
}

/// Field/value (or member/score) pairs: an even count and no field twice, as Redis's
/// deep check of a packed hash or sorted set requires.
fn distinct_pairs(elems: Vec<Vec<u8>>) -> Option<Vec<Vec<u8>>> {
    let mut seen = HashSet::with_capacity(elems.len() / 2);
    (elems.len().is_multiple_of(2) && elems.iter().step_by(2).all(|f| seen.insert(&f[..]))).then_some(())?;
    Some(elems)
}

fn load_stream(r: &mut Reader, t: u8, o: LoadOptions) -> Result<Stream, RdbError> {
    let mut s = Stream::default();
    let nodes = r.count()?;
    let mut entries: Vec<(StreamId, Vec<Bytes>)> = Vec::new();
    for _ in 0..nodes {
        let key = r.string()?;
        if key.len() != 16 {
            return Err(r.err("Stream node key entry is not the size of a stream ID"));
        }
        let master = StreamId::new(
            u64::from_be_bytes(key[..8].try_into().unwrap_or([0; 8])),
            u64::from_be_bytes(key[8..].try_into().unwrap_or([0; 8])),
        );
        let blob = r.string()?;
        let bad = || r.err("Stream listpack integrity check failed.");
        let elems = listpack::decode(&blob).ok_or_else(bad)?;
        if elems.is_empty() {
            return Err(r.err("Empty listpack inside stream"));
        }
        decode_stream_node(master, &elems, &mut entries).ok_or_else(bad)?;
    }
    let length = r.length()?;
    let last_id = r.stream_id()?;
    let (first_id, max_deleted, entries_added) = if t >= T_STREAM_LISTPACKS_2 {
        (r.stream_id()?, r.stream_id()?, r.length()?)
    } else {
        (entries.first().map_or(StreamId::ZERO, |(id, _)| *id), StreamId::ZERO, length)
    };
    let mut prev: Option<StreamId> = None;
    for (id, flat) in &entries {
        // Entries must come in increasing ID order (the node layout relies on it).
        if prev.is_some_and(|p| *id <= p) || flat.len() % 2 != 0 {
            return Err(r.err("Stream entries out of order"));
        }
        prev = Some(*id);
        s.append(*id, &crate::protocol::views(flat), o.stream);
    }
    if s.len() != length {
        return Err(r.err("Stream length inconsistent with rax entries"));
    }
    s.last_id = last_id;
    s.first_id = first_id;
    s.max_deleted = max_deleted;
    s.entries_added = entries_added;
    let groups = r.count()?;
    for _ in 0..groups {
        let name = Bytes::from(r.string()?);
        let last = r.stream_id()?;
        let entries_read = if t >= T_STREAM_LISTPACKS_2 {
            let n = r.length()?;
            (n != u64::MAX).then_some(n)
        } else {
            // Files before 7.0 have no counter: estimated from the group's last ID, as Redis
            // does when it loads them.
            s.estimate_distance(last)
        };
        let mut g = Group { last_id: last, entries_read, ..Default::default() };
        let pel = r.count()?;
        // The group's PEL by ID: each consumer's entries are looked up in it (a map, so a
        // large PEL loads in n log n).
        let mut nacks = std::collections::BTreeMap::new();
        for _ in 0..pel {
            let id = r.raw_id()?;
            let time = r.u64_le()?;
            let count = r.length()?;
            if nacks.insert(id, (time, count)).is_some() {
                return Err(r.err("Duplicated global PEL entry loading stream consumer group"));
            }
        }
        let consumers = r.count()?;
        for _ in 0..consumers {
            let cname = Bytes::from(r.string()?);
            let seen = r.u64_le()?;
            if t >= T_STREAM_LISTPACKS_3 {
                r.u64_le()?; // active-time (7.2)
            }
            if !g.touch_consumer(&cname, seen) {
                return Err(r.err("Duplicate stream consumer detected."));
            }
            let n = r.count()?;
            for _ in 0..n {
                let id = r.raw_id()?;
                let Some(&(time, count)) = nacks.get(&id) else {
                    return Err(r.err("Consumer entry not found in group global PEL"));
                };
                if g.pel.contains_key(&id) {
                    return Err(r.err("Duplicated consumer PEL entry loading a stream consumer group"));
                }
                g.deliver(id, &cname, time, count);
            }
        }
        if g.pel.len() != nacks.len() {
            return Err(r.err("Stream CG PEL entry without consumer"));
        }
        if s.groups.contains_key(&name) {
            return Err(r.err(format!("Duplicated consumer group name {}", String::from_utf8_lossy(&name))));
        }
        s.groups.insert(name, g);
    }
    Ok(s)
}

/// Entries of one stream listpack node (master entry, then entries relative to it), checked
/// as Redis's deep stream check does: integers where integers belong, the master entry's
/// zero terminator, each entry's trailing count of its own elements, nothing after the last.
fn decode_stream_node(master: StreamId, e: &[Elem], out: &mut Vec<(StreamId, Vec<Bytes>)>) -> Option<()> {
    let int = |x: &Elem| match x {
        Elem::Int(n) => Some(*n),
        Elem::Str(s) => canonical_int(s),
    };
    // Counts from the file: never negative, never past the listpack.
    let count_of = |x: &Elem| usize::try_from(int(x)?).ok().filter(|n| *n <= e.len());
    let count = count_of(e.first()?)?;
    let deleted = count_of(e.get(1)?)?;
    let nfields = count_of(e.get(2)?)?;
    let fields: Vec<Vec<u8>> = e.get(3..3 + nfields)?.iter().map(Elem::to_vec).collect();
    if int(e.get(3 + nfields)?)? != 0 {
        return None;
    }
    let mut p = 3 + nfields + 1;
    for _ in 0..count + deleted {
        let flags = int(e.get(p)?)?;
        let ms = master.ms.checked_add(u64::try_from(int(e.get(p + 1)?)?).ok()?)?;
        let seq = master.seq.wrapping_add(int(e.get(p + 2)?)? as u64);
        p += 3;
        let mut flat = Vec::new();
        let own = if flags & 2 != 0 {
            for f in &fields {
                flat.push(Bytes::from(f.clone()));
                flat.push(Bytes::from(e.get(p)?.to_vec()));
                p += 1;
            }
            nfields + 3
        } else {
            let n = count_of(e.get(p)?)?;
            p += 1;
            for _ in 0..n * 2 {
                flat.push(Bytes::from(e.get(p)?.to_vec()));
                p += 1;
            }
            2 * n + 4
        };
        // lp-count: how many elements the entry took, for walking the node backwards.
        if usize::try_from(int(e.get(p)?)?).ok()? != own {
            return None;
        }
        p += 1;
        if flags & 1 == 0 {
            out.push((StreamId::new(ms, seq), flat));
        }
    }
    (p == e.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> (SaveOptions, LoadOptions) {
        let hash = HashLimits { max_entries: 128, max_value: 64 };
        let zset = ZsetLimits { max_entries: 128, max_value: 64 };
        (
            SaveOptions { compression: true, checksum: true, hash, zset, list_fill: -2 },
            LoadOptions {
                hash,
                zset,
                set_max_intset: 512,
                list_fill: -2,
                stream: NodeLimits { max_bytes: 4096, max_entries: 100 },
            },
        )
    }

    /// The loader's contract on hostile input: never panic, never allocate without bound.
    /// Random byte edits of a real Redis 7.0 file (every type and encoding), with the
    /// checksum recomputed so the parser itself, not the CRC, faces the damage.
    #[test]
    fn mutated_redis_files_never_panic_the_loader() {
        use rand::{RngExt, SeedableRng};
        let (_, lo) = opts();
        let file = include_bytes!("../../tests/fixtures/redis7-all-types.rdb");
        assert!(load(file, lo).is_ok());
        let seed: u64 = std::env::var("EMBER_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(11);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let rounds: usize = std::env::var("EMBER_FUZZ_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(500);
        for _ in 0..rounds {
            let mut bad = file.to_vec();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(9..bad.len() - 8);
                bad[i] = rng.random();
            }
            let body = bad.len() - 8;
            let crc = crc64(&bad[..body]);
            bad[body..].copy_from_slice(&crc.to_le_bytes());
            let _ = load(&bad, lo);
            let cut = rng.random_range(0..bad.len());
            let _ = load(&bad[..cut], lo);
        }
    }

    /// A reader that hands out a few bytes at a time, as a pipe or a socket may.
    struct Trickle<'a>(&'a [u8], usize);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn load_streamed(file: &[u8], step: usize, lo: LoadOptions) -> Result<(Vec<LoadedKey>, usize), RdbError> {
        let mut keys = Vec::new();
        let mut src = Trickle(file, step);
        let Parsed { used, .. } = load_source_with(Source::Stream(&mut src, file.len() as u64), lo, &mut |k, _| {
            keys.push(k);
            Ok(())
        })?;
        Ok((keys, used))
    }

    /// A file read as it is parsed (in pieces of any size) loads exactly as from memory; a
    /// wrong checksum, a cut or damage are caught the same way.
    #[test]
    fn a_streamed_file_loads_as_the_same_bytes_in_memory() {
        let (so, lo) = opts();
        let file = include_bytes!("../../tests/fixtures/redis7-all-types.rdb");
        let whole = load(file, lo).unwrap();
        // Each key as its DUMP payload: equal payloads, equal values.
        type Dumped = (usize, Bytes, Vec<u8>, Option<u64>);
        let digest = |keys: &[LoadedKey]| -> Vec<Dumped> {
            keys.iter().map(|k| (k.db, k.key.clone(), dump(&k.value, so), k.expire_at)).collect()
        };
        for step in [1, 7, 4096, usize::MAX] {
            let (keys, used) = load_streamed(file, step, lo).unwrap();
            assert_eq!(used, file.len());
            assert_eq!(digest(&keys), digest(&whole), "read {step} bytes at a time");
        }
        let mut bad = file.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(load_streamed(&bad, 5, lo), Err(RdbError::Corrupted { what, .. }) if what.contains("CRC")));
        assert!(load_streamed(&file[..file.len() / 2], 5, lo).is_err());
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for _ in 0..100 {
            let mut bad = file.to_vec();
            let i = rng.random_range(9..bad.len() - 8);
            bad[i] = rng.random();
            let _ = load_streamed(&bad, rng.random_range(1..64), lo);
        }
    }

    /// Redis 7.4's forms of a hash with field deadlines, built as its rdbSaveObject writes
    /// them: the listpack form (25: the earliest deadline, then field, value, deadline
    /// triplets, 0 for none) and the table form (24: deadlines relative to the earliest, plus
    /// one). Ember writes the table form, and a hash without deadlines in 7.0's listpack.
    #[test]
    fn redis_7_4_hashes_with_field_deadlines_load() {
        let (so, lo) = opts();
        let payload = |t: u8, min: u64, w: &mut Writer| {
            let mut out = vec![t];
            out.extend_from_slice(&min.to_le_bytes());
            out.extend(w.take_bytes());
            out.extend_from_slice(&(RDB_VERSION as u16).to_le_bytes());
            let crc = crc64(&out);
            out.extend_from_slice(&crc.to_le_bytes());
            out
        };
        let check = |v: Value| {
            let Value::Hash(h) = v else { panic!("not a hash") };
            assert_eq!(h.get_with_ttl(b"a"), Some((&b"1"[..], 4_000_000_000_000)));
            assert_eq!(h.get_with_ttl(b"b"), Some((&b"2"[..], 0)));
            assert_eq!(h.len(), 2);
        };
        let mut lp = listpack::Writer::new();
        lp.push(b"a");
        lp.push(b"1");
        lp.push_int(4_000_000_000_000);
        lp.push(b"b");
        lp.push(b"2");
        lp.push_int(0);
        let mut w = Writer::records(so);
        w.string(&lp.finish());
        check(restore(&payload(T_HASH_LISTPACK_EX, 4_000_000_000_000, &mut w), lo, true).unwrap());
        let mut w = Writer::records(so);
        w.len(2);
        w.len(1001);
        w.string(b"a");
        w.string(b"1");
        w.len(0);
        w.string(b"b");
        w.string(b"2");
        let p = payload(T_HASH_METADATA, 3_999_999_999_000, &mut w);
        let v = restore(&p, lo, true).unwrap();
        assert_eq!(dump(&v, so)[0], T_HASH_METADATA);
        check(restore(&dump(&v, so), lo, true).unwrap());
        check(v);
        // A deadline past Redis's limit is refused, not loaded.
        let mut w = Writer::records(so);
        w.len(1);
        w.len(1 << 50);
        w.string(b"a");
        w.string(b"1");
        assert!(restore(&payload(T_HASH_METADATA, 1, &mut w), lo, true).is_err());
        let mut plain = HashValue::default();
        plain.set(b"a", b"1", so.hash);
        assert_eq!(dump(&Value::Hash(plain), so)[0], T_HASH_LISTPACK);
    }

    #[test]
    fn empty_collections_are_skipped_in_files_and_duplicates_refused() {
        let (so, lo) = opts();
        // A file holding an empty set, an empty hash listpack and a string.
        let mut w = Writer::new(so);
        w.select_db(0, 3, 0);
        w.u8(T_SET);
        w.string(b"empty-set");
        w.len(0);
        w.u8(T_HASH_LISTPACK);
        w.string(b"empty-hash");
        w.string(&listpack::Writer::new().finish());
        w.key(b"s", &Value::Str(StrValue::from_bytes(b"v")), None);
        let file = w.finish();
        let mut keys = Vec::new();
        let parsed = load_prefix_with(&file, lo, &mut |k, _| {
            keys.push(k.key);
            Ok(())
        })
        .unwrap();
        assert_eq!(parsed.empty_keys, 2);
        assert_eq!(keys, vec![Bytes::from_static(b"s")]);
        // A set member, hash field or listpack field twice: refused, with Redis's text.
        let mut w = Writer::new(so);
        w.select_db(0, 1, 0);
        w.u8(T_SET);
        w.string(b"dup");
        w.len(2);
        w.string(b"m");
        w.string(b"m");
        let err = load(&w.finish(), lo).err().unwrap();
        assert!(err.to_string().contains("Duplicate set members detected"), "{err}");
        assert!(matches!(err, RdbError::InKey { rdb_type: T_SET, .. }));
        let mut lp = listpack::Writer::new();
        for f in ["a", "1", "a", "2"] {
            lp.push(f.as_bytes());
        }
        let mut w = Writer::records(so);
        w.string(&lp.finish());
        let mut p = vec![T_HASH_LISTPACK];
        p.extend_from_slice(&w.take_bytes());
        p.extend_from_slice(&[RDB_VERSION as u8, 0]);
        let crc = crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        let Err(DumpError::BadData(Some(why))) = restore(&p, lo, true) else { panic!("accepted") };
        assert!(why.contains("Hash listpack integrity check failed."), "{why}");
    }

    #[test]
    fn truncated_or_flipped_files_are_refused_without_panic() {
        let (so, lo) = opts();
        let mut w = Writer::new(so);
        w.aux("redis-ver", "7.0.15");
        w.select_db(0, 2, 0);
        w.key(b"s", &Value::Str(StrValue::from_bytes(&b"hello world ".repeat(10))), Some(123));
        let mut l = ListValue::new();
        for i in 0..300 {
            l.push(End::Right, format!("item{i}").as_bytes(), Fill(-2));
        }
        w.key(b"l", &Value::List(Box::new(l)), None);
        let file = w.finish();
        let keys = load(&file, lo).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].expire_at, Some(123));
        for cut in 0..file.len() {
            assert!(load(&file[..cut], lo).is_err(), "truncated at {cut} accepted");
        }
        for i in 9..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x41;
            assert!(load(&bad, lo).is_err(), "flipped byte {i} accepted");
        }
    }
}
