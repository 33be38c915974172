//! The string type and its three encodings, chosen exactly when Redis chooses them so that
//! OBJECT ENCODING agrees: `int` for canonical 64-bit integers, `embstr` for short strings
//! written whole (≤ 44 bytes), `raw` for longer ones and for any string edited in place
//! (APPEND, SETRANGE, SETBIT).

use bytes::{Bytes, BytesMut};

use crate::protocol::resp::parse_i64;
use crate::util::smallbytes::SmallBytes;

/// Longest string Redis stores as embstr (OBJ_ENCODING_EMBSTR_SIZE_LIMIT).
const EMBSTR_MAX: usize = 44;

#[derive(Debug, Clone, PartialEq)]
pub enum StrValue {
    Int(i64),
    /// Short strings, stored inline in the entry up to 22 bytes.
    Emb(SmallBytes),
    /// A long string written whole (SET and friends): an exact-size buffer, 16 bytes inline,
    /// no other allocation — the common shape of cached values.
    Flat(Box<[u8]>),
    /// A string edited in place (APPEND, SETRANGE, SETBIT, HLLs): keeps growth capacity so
    /// repeated edits stay amortised, and is shared so GET replies without copying. Boxed so
    /// the other encodings keep the entry small.
    Raw(Box<Bytes>),
}

impl StrValue {
    /// The encoding `SET` would pick (Redis's tryObjectEncoding).
    pub fn from_bytes(b: &[u8]) -> Self {
        if b.len() <= 20
            && let Some(n) = parse_i64(b)
        {
            return StrValue::Int(n);
        }
        if b.len() <= EMBSTR_MAX { StrValue::Emb(SmallBytes::new(b)) } else { StrValue::Flat(b.into()) }
    }

    /// Like `from_bytes` but takes ownership of an argument buffer. The argument is copied when
    /// stored so a small key or value never pins a large client read buffer.
    pub fn from_arg(b: &Bytes) -> Self {
        Self::from_bytes(b)
    }

    /// A string produced by a command's computation (INCRBYFLOAT, GETRANGE results…): embstr or raw.
    pub fn from_computed(b: Vec<u8>) -> Self {
        if b.len() <= EMBSTR_MAX { StrValue::Emb(SmallBytes::new(&b)) } else { StrValue::Flat(b.into_boxed_slice()) }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            StrValue::Int(_) => "int",
            StrValue::Emb(_) => "embstr",
            StrValue::Flat(_) | StrValue::Raw(_) => "raw",
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        match self {
            StrValue::Int(n) => Bytes::from(n.to_string()),
            StrValue::Emb(b) => Bytes::copy_from_slice(b),
            StrValue::Flat(b) => Bytes::copy_from_slice(b),
            StrValue::Raw(b) => Bytes::clone(b),
        }
    }

    /// Calls `f` with the string's bytes without allocating for the non-int encodings.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            StrValue::Int(n) => f(n.to_string().as_bytes()),
            StrValue::Emb(b) => f(b),
            StrValue::Flat(b) => f(b),
            StrValue::Raw(b) => f(b),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(n) => int_len(*n),
            StrValue::Emb(b) => b.len(),
            StrValue::Flat(b) => b.len(),
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
            StrValue::Emb(b) => parse_i64(b),
            StrValue::Flat(b) => parse_i64(b),
            StrValue::Raw(b) => parse_i64(b),
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
            StrValue::Emb(b) => BytesMut::from(&b[..]),
            // The exact buffer becomes the edit buffer without a copy.
            StrValue::Flat(b) => Bytes::from(b.into_vec()).try_into_mut().unwrap_or_else(|b| BytesMut::from(&b[..])),
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
