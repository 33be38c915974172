//! A byte string stored inline when short (≤ 22 bytes) and on the heap otherwise.
//!
//! Most keys and many values are short: keeping them inside the hash-table node saves an
//! allocation (16–32 bytes of malloc overhead) and a cache miss per lookup. The type is 24
//! bytes either way.

use std::borrow::Borrow;
use std::fmt;

const INLINE: usize = 22;

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SmallBytes {
    Inline { len: u8, data: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl SmallBytes {
    pub fn new(b: &[u8]) -> Self {
        if b.len() <= INLINE {
            let mut data = [0u8; INLINE];
            data[..b.len()].copy_from_slice(b);
            SmallBytes::Inline { len: b.len() as u8, data }
        } else {
            SmallBytes::Heap(b.into())
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            SmallBytes::Inline { len, data } => &data[..*len as usize],
            SmallBytes::Heap(b) => b,
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes owned beyond the 24 bytes of the value itself.
    pub fn heap_size(&self) -> usize {
        match self {
            SmallBytes::Inline { .. } => 0,
            SmallBytes::Heap(b) => b.len(),
        }
    }
}

impl Borrow<[u8]> for SmallBytes {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::ops::Deref for SmallBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<&[u8]> for SmallBytes {
    fn from(b: &[u8]) -> Self {
        SmallBytes::new(b)
    }
}

impl fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 24);
        let a = SmallBytes::new(b"short");
        assert!(matches!(a, SmallBytes::Inline { .. }));
        assert_eq!(&*a, b"short");
        let long = vec![7u8; 23];
        let b = SmallBytes::new(&long);
        assert!(matches!(b, SmallBytes::Heap(_)));
        assert_eq!(&*b, &long[..]);
        assert_eq!(SmallBytes::new(b"").len(), 0);
    }
}
