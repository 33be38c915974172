//! The string type and its three encodings, chosen exactly when Redis chooses them so that
//! OBJECT ENCODING agrees: `int` for canonical 64-bit integers, `embstr` for short strings
//! written whole (≤ 44 bytes), `raw` for longer ones and for any string edited in place
//! (APPEND, SETRANGE, SETBIT).

use bytes::{Bytes, BytesMut};

use crate::protocol::resp::parse_i64;
use crate::util::thin::ThinBytes;

/// Longest string Redis stores as embstr (OBJ_ENCODING_EMBSTR_SIZE_LIMIT).
const EMBSTR_MAX: usize = 44;

/// Longest string kept inside the value itself: what 16 bytes hold beside the tag and length.
const TINY_MAX: usize = 14;

/// 16 bytes with the tag first, so [`super::Value`] fits its other variants beside the tag.
#[derive(Debug, Clone, PartialEq)]
pub enum StrValue {
    Int(i64),
    /// An embstr of up to 14 bytes, inside the keyspace node.
    Tiny(Tiny),
    /// An embstr of 15 to 44 bytes.
    Emb(ThinBytes),
    /// A long string written whole (SET and friends): an exact-size buffer behind one
    /// pointer, no other allocation — the common shape of cached values.
    Flat(ThinBytes),
    /// A string edited in place (APPEND, SETRANGE, SETBIT, HLLs): keeps growth capacity so
    /// repeated edits stay amortised, and is shared so GET replies without copying. Boxed so
    /// the other encodings keep the entry small.
    Raw(Box<Bytes>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tiny {
    len: u8,
    data: [u8; TINY_MAX],
}

impl Tiny {
    fn as_slice(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
}

/// An embstr: inline when it fits, else behind a thin pointer.
fn emb(b: &[u8]) -> StrValue {
    if b.len() <= TINY_MAX {
        let mut data = [0u8; TINY_MAX];
        data[..b.len()].copy_from_slice(b);
        StrValue::Tiny(Tiny { len: b.len() as u8, data })
    } else {
        StrValue::Emb(ThinBytes::new(b))
    }
}

impl StrValue {
    /// The encoding `SET` would pick (Redis's tryObjectEncoding).
    pub fn from_bytes(b: &[u8]) -> Self {
        if b.len() <= 20
            && let Some(n) = parse_i64(b)
        {
            return StrValue::Int(n);
        }
        if b.len() <= EMBSTR_MAX { emb(b) } else { StrValue::Flat(b.into()) }
    }

    /// Like `from_bytes` but takes ownership of an argument buffer. The argument is copied when
    /// stored so a small key or value never pins a large client read buffer.
    pub fn from_arg(b: &Bytes) -> Self {
        Self::from_bytes(b)
    }

    /// A string produced by a command's computation (INCRBYFLOAT, GETRANGE results…): embstr or raw.
    pub fn from_computed(b: Vec<u8>) -> Self {
        if b.len() <= EMBSTR_MAX { emb(&b) } else { StrValue::Flat(ThinBytes::new(&b)) }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            StrValue::Int(_) => "int",
            StrValue::Tiny(_) | StrValue::Emb(_) => "embstr",
            StrValue::Flat(_) | StrValue::Raw(_) => "raw",
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        match self {
            StrValue::Int(n) => Bytes::from(n.to_string()),
            StrValue::Raw(b) => Bytes::clone(b),
            other => Bytes::copy_from_slice(other.as_bytes().unwrap_or_default()),
        }
    }

    /// The bytes of a string not stored as an integer.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            StrValue::Int(_) => None,
            StrValue::Tiny(t) => Some(t.as_slice()),
            StrValue::Emb(b) | StrValue::Flat(b) => Some(b),
            StrValue::Raw(b) => Some(b),
        }
    }

    /// Calls `f` with the string's bytes without allocating for the non-int encodings.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            StrValue::Int(n) => f(n.to_string().as_bytes()),
            StrValue::Tiny(t) => f(t.as_slice()),
            StrValue::Emb(b) | StrValue::Flat(b) => f(b),
            StrValue::Raw(b) => f(b),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(n) => int_len(*n),
            StrValue::Tiny(t) => t.len as usize,
            StrValue::Emb(b) | StrValue::Flat(b) => b.len(),
            StrValue::Raw(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value as an integer, if it is one by Redis's strict rules.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            StrValue::Int(n) => Some(*n),
            other => other.as_bytes().and_then(parse_i64),
        }
    }

    /// Converts to the raw encoding and returns a mutable buffer for in-place edits. The
    /// buffer is handed back with [`StrValue::finish_edit`].
    pub fn begin_edit(&mut self) -> BytesMut {
        // A raw string keeps its box: the bytes are taken out and put back by finish_edit,
        // so repeated edits (SETBIT, APPEND) allocate nothing when the buffer is not shared.
        if let StrValue::Raw(b) = self {
            let bytes = std::mem::take(&mut **b);
            return bytes.try_into_mut().unwrap_or_else(|b| BytesMut::from(&b[..]));
        }
        match std::mem::replace(self, StrValue::Raw(Box::default())) {
            StrValue::Tiny(t) => BytesMut::from(t.as_slice()),
            StrValue::Emb(b) | StrValue::Flat(b) => BytesMut::from(&b[..]),
            StrValue::Int(n) => BytesMut::from(n.to_string().as_bytes()),
            StrValue::Raw(b) => BytesMut::from(&b[..]),
        }
    }

    pub fn finish_edit(&mut self, buf: BytesMut) {
        self.set_raw(buf.freeze());
    }

    /// Replaces the contents with raw bytes, reusing the box of a raw string.
    pub fn set_raw(&mut self, bytes: Bytes) {
        match self {
            StrValue::Raw(b) => **b = bytes,
            other => *other = StrValue::Raw(Box::new(bytes)),
        }
    }
}

fn int_len(n: i64) -> usize {
    let mut len = if n < 0 { 1 } else { 0 };
    let mut v = n.unsigned_abs();
    loop {
        len += 1;
        v /= 10;
        if v == 0 {
            return len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_like_redis() {
        assert_eq!(StrValue::from_bytes(b"123").encoding_name(), "int");
        assert_eq!(StrValue::from_bytes(b"0123").encoding_name(), "embstr");
        assert_eq!(StrValue::from_bytes(&[b'a'; 14]).encoding_name(), "embstr");
        assert!(matches!(StrValue::from_bytes(&[b'a'; 14]), StrValue::Tiny(_)));
        assert!(matches!(StrValue::from_bytes(&[b'a'; 15]), StrValue::Emb(_)));
        assert_eq!(StrValue::from_bytes(&[b'a'; 15]).len(), 15);
        assert_eq!(StrValue::from_bytes(&[b'a'; 44]).encoding_name(), "embstr");
        assert_eq!(StrValue::from_bytes(&[b'a'; 45]).encoding_name(), "raw");
        assert_eq!(StrValue::Int(-120).len(), 4);
        let mut v = StrValue::from_bytes(b"12");
        let mut b = v.begin_edit();
        b.extend_from_slice(b"3");
        v.finish_edit(b);
        assert_eq!(v.encoding_name(), "raw");
        assert_eq!(v.as_int(), Some(123));
    }
}
