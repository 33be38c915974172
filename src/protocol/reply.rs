//! Replies as values, and the one place that turns them into RESP2 or RESP3 bytes.
//!
//! Handlers return a semantic [`Reply`]; they never ask which protocol the client speaks. The
//! encoder owns every RESP3→RESP2 rule: maps and sets flatten to arrays, doubles become bulk
//! strings, booleans become integers, the two kinds of null become `$-1` and `*-1`, verbatim text
//! becomes a plain bulk string and pushes become arrays.

use bytes::{BufMut, Bytes, BytesMut};

use crate::util::numfmt::{fmt_double, integral_double};

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+text`
    Status(&'static str),
    /// `+text` with owned text (rare: CLIENT INFO style lines are bulk, not status).
    StatusOwned(String),
    /// `-text`: the full error line, code included (`ERR ...`, `WRONGTYPE ...`).
    Error(String),
    Int(i64),
    Bulk(Bytes),
    /// Null bulk string: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// Null array: `*-1` in RESP2, `_` in RESP3.
    NullArray,
    Array(Vec<Reply>),
    /// A map in RESP3, a flat array of key, value, ... in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// A set in RESP3, an array in RESP2.
    Set(Vec<Reply>),
    /// `,1.5` in RESP3, a bulk string in RESP2.
    Double(f64),
    /// A double already formatted (GEOPOS's long-double text): `,text` in RESP3, bulk in RESP2.
    DoubleText(String),
    /// `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    Bool(bool),
    /// `=len\r\ntxt:...` in RESP3 (INFO, CLIENT LIST and friends), a bulk string in RESP2.
    Verbatim(Bytes),
    /// `>` push in RESP3 (pub/sub, invalidations), an array in RESP2.
    Push(Vec<Reply>),
    /// A map in RESP3, an array of [key, value] pairs in RESP2 (XREAD, XREADGROUP).
    PairsMap(Vec<(Reply, Reply)>),
    /// An array of [a, b] pairs in RESP3, flat a, b, ... in RESP2 (HRANDFIELD WITHVALUES,
    /// ZRANDMEMBER WITHSCORES).
    Pairs(Vec<(Reply, Reply)>),
    /// Members with their scores, laid out as [`Reply::Pairs`] of a bulk and a double, or as
    /// a plain array of members; built straight from a sorted set into one buffer (ZRANGE
    /// of a big set is then no tree of small allocations).
    Scored(Box<Scored>),
    /// Already encoded RESP that reads the same in RESP2 and RESP3 (arrays of bulk strings,
    /// built with [`put_array_len`] and [`put_bulk`]), written as it is: big replies (stream
    /// ranges) are then one buffer instead of a tree of small allocations.
    Encoded(Bytes),
    /// An array, set or map of bulk strings whose elements are already encoded in one buffer
    /// (they read the same in RESP2 and RESP3); only the header depends on the protocol.
    /// SMEMBERS, HGETALL and the like of big keys are then one buffer, not a tree of replies.
    Bulks(Box<Bulks>),
    /// Several replies written back to back (EXEC's queued results are an Array instead).
    Multi(Vec<Reply>),
    /// No reply at all (e.g. after CLIENT REPLY OFF, or a command that blocks).
    NoReply,
    /// `(digits` in RESP3, a bulk string in RESP2.
    BigNum(String),
    /// `|n` attribute pairs in RESP3 (metadata before the real reply); nothing in RESP2.
    Attribute(Vec<(Reply, Reply)>),
    /// The first reply for RESP3 clients, the second for RESP2 ones.
    Resp3Or(Box<Reply>, Box<Reply>),
}

pub const OK: Reply = Reply::Status("OK");

impl Reply {
    /// A push (or several), which CLIENT REPLY OFF / SKIP do not silence.
    pub fn is_push(&self) -> bool {
        match self {
            Reply::Push(_) => true,
            Reply::Multi(items) => !items.is_empty() && items.iter().all(|r| matches!(r, Reply::Push(_))),
            _ => false,
        }
    }
    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }
    pub fn bulk_str(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }
    pub fn from_opt(b: Option<Bytes>) -> Reply {
        b.map_or(Reply::Null, Reply::Bulk)
    }
    pub fn err(text: impl Into<String>) -> Reply {
        Reply::Error(text.into())
    }
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

fn put_len(out: &mut BytesMut, prefix: u8, n: usize) {
    out.put_u8(prefix);
    put_int(out, n as i64);
    out.put_slice(b"\r\n");
}

/// Writes a decimal integer without allocating (this runs for every reply).
fn put_int(out: &mut BytesMut, n: i64) {
    let mut buf = [0u8; 20];
    out.put_slice(int_text(n, &mut buf));
}

/// The decimal text of `n`, formatted into `buf`.
fn int_text(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// A double as Redis replies it: a RESP3 double, or in RESP2 a bulk string. Integral values
/// (most scores) are formatted without allocating.
pub fn put_double(out: &mut BytesMut, d: f64, v3: bool) {
    let mut buf = [0u8; 20];
    let owned;
    let text: &[u8] = match integral_double(d) {
        Some(n) => int_text(n, &mut buf),
        None => {
            owned = fmt_double(d);
            owned.as_bytes()
        }
    };
    if v3 {
        out.put_u8(b',');
        out.put_slice(text);
        out.put_slice(b"\r\n");
    } else {
        put_bulk(out, text);
    }
}

pub fn put_bulk(out: &mut BytesMut, b: &[u8]) {
    put_len(out, b'$', b.len());
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

/// An array header (`*n`), for [`Reply::Encoded`] payloads.
pub fn put_array_len(out: &mut BytesMut, n: usize) {
    put_len(out, b'*', n);
}

/// An array of `n` bulk strings encoded into one buffer ([`Reply::Encoded`]): the same bytes in
/// RESP2 and RESP3, and one allocation instead of one per element (LRANGE of 100 items).
pub fn bulk_array<'a>(n: usize, items: impl Iterator<Item = &'a [u8]>) -> Reply {
    let mut out = BytesMut::with_capacity(16 + n.min(1024) * 16);
    put_array_len(&mut out, n);
    let header = out.len();
    let mut written = 0;
    for item in items.take(n) {
        put_bulk(&mut out, item);
        written += 1;
    }
    if written != n {
        // Fewer items than announced: the header is redone rather than lying.
        let mut fixed = BytesMut::with_capacity(out.len());
        put_array_len(&mut fixed, written);
        fixed.extend_from_slice(&out[header..]);
        out = fixed;
    }
    Reply::Encoded(out.freeze())
}

/// The kinds of aggregate [`Reply::Bulks`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulksKind {
    Array,
    /// `~` in RESP3, an array in RESP2.
    Set,
    /// `%` in RESP3 (`count` pairs), a flat array of twice as many in RESP2.
    Map,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bulks {
    pub kind: BulksKind,
    /// Elements (pairs for a map).
    pub count: usize,
    /// The elements, each encoded as a bulk string.
    pub body: Bytes,
}

/// Collects bulk strings into a [`Reply::Bulks`].
pub struct BulksBuilder {
    kind: BulksKind,
    count: usize,
    body: BytesMut,
}

impl BulksBuilder {
    /// `hint`: the expected number of elements, to size the buffer.
    pub fn new(kind: BulksKind, hint: usize) -> Self {
        BulksBuilder { kind, count: 0, body: BytesMut::with_capacity(hint.min(4096) * 16) }
    }

    pub fn push(&mut self, b: &[u8]) {
        put_bulk(&mut self.body, b);
        self.count += 1;
    }

    /// A map's pair.
    pub fn push_pair(&mut self, k: &[u8], v: &[u8]) {
        put_bulk(&mut self.body, k);
        put_bulk(&mut self.body, v);
        self.count += 1;
    }

    pub fn finish(self) -> Reply {
        Reply::Bulks(Box::new(Bulks { kind: self.kind, count: self.count, body: self.body.freeze() }))
    }
}

/// Writes the reply in the given protocol version (2 or 3) to `out`.
/// One reply sent to many clients (a Pub/Sub message, an invalidation): encoded at most
/// once per protocol, on first need.
pub struct Fanout {
    reply: Reply,
    v2: Option<BytesMut>,
    v3: Option<BytesMut>,
}

impl Fanout {
    pub fn new(reply: Reply) -> Self {
        Fanout { reply, v2: None, v3: None }
    }

    /// The reply's bytes for a client speaking `resp`.
    pub fn bytes(&mut self, resp: u8) -> &[u8] {
        let (slot, v) = if resp >= 3 { (&mut self.v3, 3) } else { (&mut self.v2, 2) };
        slot.get_or_insert_with(|| {
            let mut b = BytesMut::new();
            encode(&self.reply, v, &mut b);
            b
        })
    }
}

/// See [`Reply::Scored`]: members already encoded as bulk strings, back to back, each with
/// where it ends and its score (None: a range without scores).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scored {
    members: BytesMut,
    items: Vec<(usize, Option<f64>)>,
}

impl Scored {
    pub fn with_capacity(n: usize) -> Self {
        Scored { members: BytesMut::with_capacity(16 + n * 24), items: Vec::with_capacity(n) }
    }

    pub fn push(&mut self, member: &[u8], score: Option<f64>) {
        put_bulk(&mut self.members, member);
        self.items.push((self.members.len(), score));
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn encode(&self, v3: bool, out: &mut BytesMut) {
        let scores = self.items.iter().filter(|(_, s)| s.is_some()).count();
        let n = self.items.len();
        put_len(out, b'*', if v3 { n } else { n + scores });
        let mut start = 0;
        for &(end, score) in &self.items {
            if v3 && score.is_some() {
                put_len(out, b'*', 2);
            }
            out.put_slice(&self.members[start..end]);
            if let Some(s) = score {
                put_double(out, s, v3);
            }
            start = end;
        }
    }
}

pub fn encode(reply: &Reply, resp: u8, out: &mut BytesMut) {
    let v3 = resp >= 3;
    match reply {
        Reply::Status(s) => {
            out.put_u8(b'+');
            out.put_slice(s.as_bytes());
            out.put_slice(b"\r\n");
        }
        Reply::StatusOwned(s) => {
            out.put_u8(b'+');
            out.put_slice(s.as_bytes());
            out.put_slice(b"\r\n");
        }
        Reply::Error(e) => {
            out.put_u8(b'-');
            // An error line must stay one line (Redis replaces newlines too).
            for &c in e.as_bytes() {
                out.put_u8(if c == b'\r' || c == b'\n' { b' ' } else { c });
            }
            out.put_slice(b"\r\n");
        }
        Reply::Int(n) => {
            out.put_u8(b':');
            put_int(out, *n);
            out.put_slice(b"\r\n");
        }
        Reply::Bulk(b) => put_bulk(out, b),
        Reply::Encoded(b) => out.put_slice(b),
        Reply::Bulks(b) => {
            match (b.kind, v3) {
                (BulksKind::Array, _) | (BulksKind::Set, false) => put_len(out, b'*', b.count),
                (BulksKind::Set, true) => put_len(out, b'~', b.count),
                (BulksKind::Map, true) => put_len(out, b'%', b.count),
                (BulksKind::Map, false) => put_len(out, b'*', b.count * 2),
            }
            out.put_slice(&b.body);
        }
        Reply::Null => out.put_slice(if v3 { b"_\r\n" } else { b"$-1\r\n" }),
        Reply::NullArray => out.put_slice(if v3 { b"_\r\n" } else { b"*-1\r\n" }),
        Reply::Array(items) => {
            put_len(out, b'*', items.len());
            for i in items {
                encode(i, resp, out);
            }
        }
        Reply::Set(items) => {
            put_len(out, if v3 { b'~' } else { b'*' }, items.len());
            for i in items {
                encode(i, resp, out);
            }
        }
        Reply::Push(items) => {
            put_len(out, if v3 { b'>' } else { b'*' }, items.len());
            for i in items {
                encode(i, resp, out);
            }
        }
        Reply::Map(pairs) => {
            if v3 {
                put_len(out, b'%', pairs.len());
            } else {
                put_len(out, b'*', pairs.len() * 2);
            }
            for (k, v) in pairs {
                encode(k, resp, out);
                encode(v, resp, out);
            }
        }
        Reply::PairsMap(pairs) => {
            put_len(out, if v3 { b'%' } else { b'*' }, pairs.len());
            for (k, v) in pairs {
                if !v3 {
                    put_len(out, b'*', 2);
                }
                encode(k, resp, out);
                encode(v, resp, out);
            }
        }
        Reply::Pairs(pairs) => {
            put_len(out, b'*', if v3 { pairs.len() } else { pairs.len() * 2 });
            for (a, b) in pairs {
                if v3 {
                    put_len(out, b'*', 2);
                }
                encode(a, resp, out);
                encode(b, resp, out);
            }
        }
        Reply::Scored(s) => s.encode(v3, out),
        Reply::Double(d) => put_double(out, *d, v3),
        Reply::DoubleText(s) => {
            if v3 {
                out.put_u8(b',');
                out.put_slice(s.as_bytes());
                out.put_slice(b"\r\n");
            } else {
                put_bulk(out, s.as_bytes());
            }
        }
        Reply::Bool(b) => {
            if v3 {
                out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
            } else {
                out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" });
            }
        }
        Reply::Verbatim(b) => {
            if v3 {
                put_len(out, b'=', b.len() + 4);
                out.put_slice(b"txt:");
                out.put_slice(b);
                out.put_slice(b"\r\n");
            } else {
                put_bulk(out, b);
            }
        }
        Reply::Multi(items) => {
            for i in items {
                encode(i, resp, out);
            }
        }
        Reply::NoReply => {}
        Reply::BigNum(n) => {
            if v3 {
                out.put_u8(b'(');
                out.put_slice(n.as_bytes());
                out.put_slice(b"\r\n");
            } else {
                put_bulk(out, n.as_bytes());
            }
        }
        Reply::Attribute(pairs) => {
            if v3 {
                put_len(out, b'|', pairs.len());
                for (k, v) in pairs {
                    encode(k, resp, out);
                    encode(v, resp, out);
                }
            }
        }
        Reply::Resp3Or(a, b) => encode(if v3 { a } else { b }, resp, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Reply, v: u8) -> String {
        let mut b = BytesMut::new();
        encode(r, v, &mut b);
        String::from_utf8_lossy(&b).into_owned()
    }

    #[test]
    fn bulks_encode_like_their_trees() {
        let items: [&[u8]; 4] = [b"a", b"", b"xyz", b"k"];
        let bulk = |b: &[u8]| Reply::Bulk(Bytes::copy_from_slice(b));
        for (kind, tree) in [
            (BulksKind::Array, Reply::Array(items.iter().map(|i| bulk(i)).collect())),
            (BulksKind::Set, Reply::Set(items.iter().map(|i| bulk(i)).collect())),
        ] {
            let mut b = BulksBuilder::new(kind, 4);
            items.iter().for_each(|i| b.push(i));
            let built = b.finish();
            for v in [2, 3] {
                assert_eq!(enc(&built, v), enc(&tree, v));
            }
        }
        let mut b = BulksBuilder::new(BulksKind::Map, 2);
        b.push_pair(b"a", b"");
        b.push_pair(b"xyz", b"k");
        let tree = Reply::Map(vec![(bulk(b"a"), bulk(b"")), (bulk(b"xyz"), bulk(b"k"))]);
        let built = b.finish();
        for v in [2, 3] {
            assert_eq!(enc(&built, v), enc(&tree, v));
        }
        assert_eq!(enc(&BulksBuilder::new(BulksKind::Map, 0).finish(), 3), "%0\r\n");
    }

    #[test]
    fn bulk_array_encodes_like_an_array_of_bulks() {
        let items: [&[u8]; 3] = [b"a", b"", b"xyz"];
        let plain = Reply::Array(items.iter().map(|i| Reply::Bulk(Bytes::copy_from_slice(i))).collect());
        for v in [2, 3] {
            assert_eq!(enc(&bulk_array(3, items.iter().copied()), v), enc(&plain, v));
        }
        // Announcing more than the iterator holds still yields a well-formed reply.
        assert_eq!(enc(&bulk_array(5, items.iter().copied()), 2), enc(&plain, 2));
        assert_eq!(enc(&bulk_array(0, std::iter::empty()), 3), "*0\r\n");
    }

    #[test]
    fn pairs_nest_in_resp3_only() {
        let p = Reply::Pairs(vec![(Reply::bulk_str("a"), Reply::Double(1.5))]);
        assert_eq!(enc(&p, 2), "*2\r\n$1\r\na\r\n$3\r\n1.5\r\n");
        assert_eq!(enc(&p, 3), "*1\r\n*2\r\n$1\r\na\r\n,1.5\r\n");
        let mut s = Scored::with_capacity(2);
        s.push(b"a", Some(1.5));
        s.push(b"bc", Some(2.0));
        let s = Reply::Scored(Box::new(s));
        assert_eq!(enc(&s, 2), "*4\r\n$1\r\na\r\n$3\r\n1.5\r\n$2\r\nbc\r\n$1\r\n2\r\n");
        assert_eq!(enc(&s, 3), "*2\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$2\r\nbc\r\n,2\r\n");
        let mut bare = Scored::with_capacity(1);
        bare.push(b"a", None);
        assert_eq!(enc(&Reply::Scored(Box::new(bare)), 3), "*1\r\n$1\r\na\r\n");
    }

    #[test]
    fn resp2_flattens_resp3_shapes() {
        let m = Reply::Map(vec![(Reply::bulk_str("a"), Reply::Int(1))]);
        assert_eq!(enc(&m, 2), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&m, 3), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&Reply::Null, 2), "$-1\r\n");
        assert_eq!(enc(&Reply::NullArray, 2), "*-1\r\n");
        assert_eq!(enc(&Reply::NullArray, 3), "_\r\n");
        assert_eq!(enc(&Reply::Double(1.5), 2), "$3\r\n1.5\r\n");
        assert_eq!(enc(&Reply::Double(f64::INFINITY), 3), ",inf\r\n");
        assert_eq!(enc(&Reply::Bool(true), 2), ":1\r\n");
        assert_eq!(enc(&Reply::Verbatim(Bytes::from("x")), 3), "=5\r\ntxt:x\r\n");
        assert_eq!(enc(&Reply::Error("ERR a\nb".into()), 2), "-ERR a b\r\n");
        assert_eq!(enc(&Reply::Int(i64::MIN), 2), ":-9223372036854775808\r\n");
        assert_eq!(enc(&Reply::Int(0), 2), ":0\r\n");
    }
}
