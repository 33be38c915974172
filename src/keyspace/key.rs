//! [`Key`]: a key of the keyspace — its bytes plus the 24-bit access stamp (LRU clock or LFU
//! counter) that Redis keeps in the object header.
//!
//! The stamp rides in the bytes the enum tag leaves free, so a keyspace node is 56 bytes (key
//! 24 + entry 24 + chain link 8), one jemalloc size class below a separate stamp field's 64.
//! Keys up to 19 bytes live inline; longer ones in an exact-size box.

use std::borrow::Borrow;
use std::fmt;

const INLINE: usize = 19;

#[derive(Clone)]
pub enum Key {
    Inline { stamp: [u8; 3], len: u8, data: [u8; INLINE] },
    Heap { stamp: [u8; 3], data: Box<[u8]> },
}

impl Key {
    pub fn new(b: &[u8], stamp: u32) -> Self {
        let stamp = encode(stamp);
        if b.len() <= INLINE {
            let mut data = [0u8; INLINE];
            data[..b.len()].copy_from_slice(b);
            Key::Inline { stamp, len: b.len() as u8, data }
        } else {
            Key::Heap { stamp, data: b.into() }
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            Key::Inline { len, data, .. } => &data[..*len as usize],
            Key::Heap { data, .. } => data,
        }
    }

    /// The 24-bit access stamp.
    pub fn stamp(&self) -> u32 {
        let s = match self {
            Key::Inline { stamp, .. } | Key::Heap { stamp, .. } => stamp,
        };
        u32::from_le_bytes([s[0], s[1], s[2], 0])
    }

    pub fn set_stamp(&mut self, v: u32) {
        match self {
            Key::Inline { stamp, .. } | Key::Heap { stamp, .. } => *stamp = encode(v),
        }
    }

    /// Heap bytes owned beyond the key itself.
    pub fn heap_size(&self) -> usize {
        match self {
            Key::Inline { .. } => 0,
            Key::Heap { data, .. } => data.len(),
        }
    }
}

fn encode(v: u32) -> [u8; 3] {
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    /// A keyspace node (key, entry, chain link) fills jemalloc's 56-byte class exactly; a
    /// change should be deliberate.
    #[test]
    fn node_fills_56_bytes() {
        use std::mem::size_of;
        assert_eq!(size_of::<crate::keyspace::Entry>(), 24);
        assert_eq!(size_of::<crate::keyspace::Key>() + size_of::<crate::keyspace::Entry>() + 8, 56);
    }

    use super::*;

    #[test]
    fn bytes_and_stamp_are_independent() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        for len in [0, 5, INLINE, INLINE + 1, 100] {
            let bytes: Vec<u8> = (0..len as u8).collect();
            let mut k = Key::new(&bytes, 0xabcdef);
            assert_eq!(k.as_slice(), &bytes[..]);
            assert_eq!(k.stamp(), 0xabcdef);
            k.set_stamp(0x123456);
            assert_eq!(k.stamp(), 0x123456);
            assert_eq!(&*k, &bytes[..]);
            assert_eq!(k.heap_size(), if len > INLINE { len } else { 0 });
        }
    }
}
