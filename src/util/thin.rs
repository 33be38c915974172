//! Thin owning pointers: one machine word where a `Box<[u8]>` takes two.
//!
//! A keyspace node holds the key, the value, the deadline and the chain link. With a 24-byte
//! `Value` the node is 64 bytes; at 16 bytes it is 56, one jemalloc class
//! down, which is what a small string key needs to cost 0.6 of Redis. rustc packs `Value`
//! into 16 bytes only if every non-string variant is one pointer, so:
//! - [`ThinBytes`] is a byte buffer whose length lives in its allocation (a `usize` header);
//! - [`Either`] is one pointer owning either a thin value or a box, told apart by the
//!   pointer's low bit (both kinds of allocation are at least 2-aligned).
//!
//! `unsafe` here is measured (1M small string keys, RSS per key; benches/README.md) and kept
//! to this module; every block says why it holds.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::fmt;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, align_of, size_of};
use std::ptr::NonNull;

/// The empty buffer: shared, never written, never freed.
static EMPTY: usize = 0;

/// An owned byte string behind one pointer to `[len: usize][bytes]`.
#[repr(transparent)]
pub struct ThinBytes(NonNull<usize>);

// SAFETY: ThinBytes owns its allocation exclusively (like Box<[u8]>); the shared empty
// header is immutable.
unsafe impl Send for ThinBytes {}
// SAFETY: as above; &ThinBytes only reads.
unsafe impl Sync for ThinBytes {}

impl ThinBytes {
    pub fn new(b: &[u8]) -> Self {
        if b.is_empty() {
            return Self::default();
        }
        let layout = layout(b.len());
        // SAFETY: the layout's size is at least the header's, so non-zero.
        let p = unsafe { alloc(layout) }.cast::<usize>();
        let Some(p) = NonNull::new(p) else { handle_alloc_error(layout) };
        // SAFETY: the allocation is `size_of::<usize>() + b.len()` bytes, aligned for usize:
        // the header and the bytes fit, and the fresh allocation cannot overlap `b`.
        unsafe {
            p.as_ptr().write(b.len());
            std::ptr::copy_nonoverlapping(b.as_ptr(), p.as_ptr().add(1).cast::<u8>(), b.len());
        }
        ThinBytes(p)
    }

    pub fn len(&self) -> usize {
        // SAFETY: the pointer is to a live header (an allocation of ours or EMPTY).
        unsafe { *self.0.as_ptr() }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn is_shared_empty(&self) -> bool {
        std::ptr::eq(self.0.as_ptr(), &EMPTY)
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` initialised bytes follow the header (zero for EMPTY, where the
        // pointer is one past the static: valid for an empty slice).
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(1).cast::<u8>(), self.len()) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.is_shared_empty() {
            return &mut [];
        }
        // SAFETY: as in as_slice, and the allocation is ours alone (not the shared EMPTY).
        unsafe { std::slice::from_raw_parts_mut(self.0.as_ptr().add(1).cast::<u8>(), self.len()) }
    }

    /// Bytes allocated for this buffer (0 for the empty one).
    pub fn alloc_size(&self) -> usize {
        if self.is_shared_empty() { 0 } else { size_of::<usize>() + self.len() }
    }
}

fn layout(len: usize) -> Layout {
    // A slice longer than isize::MAX - 8 bytes cannot exist, so this only fails as Vec's
    // capacity overflow would.
    match Layout::from_size_align(size_of::<usize>() + len, align_of::<usize>()) {
        Ok(l) => l,
        Err(_) => panic!("capacity overflow"),
    }
}

impl Default for ThinBytes {
    fn default() -> Self {
        ThinBytes(NonNull::from(&EMPTY))
    }
}

impl Drop for ThinBytes {
    fn drop(&mut self) {
        if !self.is_shared_empty() {
            // SAFETY: allocated in `new` with this very layout (the length never changes).
            unsafe { dealloc(self.0.as_ptr().cast::<u8>(), layout(self.len())) }
        }
    }
}

impl Clone for ThinBytes {
    fn clone(&self) -> Self {
        ThinBytes::new(self)
    }
}

impl std::ops::Deref for ThinBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::ops::DerefMut for ThinBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl PartialEq for ThinBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for ThinBytes {}

impl fmt::Debug for ThinBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

impl From<&[u8]> for ThinBytes {
    fn from(b: &[u8]) -> Self {
        ThinBytes::new(b)
    }
}

/// A type that is exactly one owning, non-null, even pointer, so [`Either`] can keep it as is.
///
/// # Safety
/// The implementor is `repr(transparent)` over a `NonNull` whose address is always even,
/// and owns what it points to (dropping it frees that).
pub unsafe trait ThinPtr: Sized {}

// SAFETY: repr(transparent) over NonNull<usize>; both its allocations and EMPTY are aligned
// for usize.
unsafe impl ThinPtr for ThinBytes {}

/// One pointer owning either an `A` (kept as is: its address is even) or a `Box<B>` (its
/// address with the low bit set).
#[repr(transparent)]
pub struct Either<A: ThinPtr, B> {
    ptr: NonNull<u8>,
    _own: PhantomData<(A, Box<B>)>,
}

pub enum EitherRef<'a, A, B> {
    Left(&'a A),
    Right(&'a B),
}

pub enum EitherMut<'a, A, B> {
    Left(&'a mut A),
    Right(&'a mut B),
}

pub enum EitherOwned<A, B> {
    Left(A),
    Right(Box<B>),
}

// SAFETY: Either owns an A or a Box<B> and hands out references as they would.
unsafe impl<A: ThinPtr + Send, B: Send> Send for Either<A, B> {}
// SAFETY: as above.
unsafe impl<A: ThinPtr + Sync, B: Sync> Sync for Either<A, B> {}

impl<A: ThinPtr, B> Either<A, B> {
    /// A box's address must leave the low bit free, and A must be one pointer.
    const FITS: () = assert!(align_of::<B>() >= 2 && size_of::<A>() == size_of::<NonNull<u8>>());

    pub fn left(a: A) -> Self {
        let () = Self::FITS;
        let a = ManuallyDrop::new(a);
        // SAFETY: A is repr(transparent) over a NonNull (ThinPtr's contract); ownership moves
        // into `ptr` (the ManuallyDrop keeps `a` from freeing it).
        let ptr: NonNull<u8> = unsafe { std::mem::transmute_copy(&*a) };
        debug_assert!(ptr.as_ptr().addr() & 1 == 0);
        Either { ptr, _own: PhantomData }
    }

    pub fn right(b: Box<B>) -> Self {
        let () = Self::FITS;
        let p = NonNull::from(Box::leak(b)).cast::<u8>();
        Either { ptr: p.map_addr(|a| a | 1), _own: PhantomData }
    }

    fn is_right(&self) -> bool {
        self.ptr.as_ptr().addr() & 1 == 1
    }

    fn boxed(&self) -> *mut B {
        self.ptr.as_ptr().map_addr(|a| a & !1).cast::<B>()
    }

    pub fn get(&self) -> EitherRef<'_, A, B> {
        if self.is_right() {
            // SAFETY: a right value's untagged address is a live Box<B> we own.
            EitherRef::Right(unsafe { &*self.boxed() })
        } else {
            // SAFETY: a left value's bits are exactly an A (ThinPtr: repr(transparent) over
            // a pointer), and Either is repr(transparent) over that pointer.
            EitherRef::Left(unsafe { &*(self as *const Self).cast::<A>() })
        }
    }

    pub fn get_mut(&mut self) -> EitherMut<'_, A, B> {
        if self.is_right() {
            // SAFETY: as in get; &mut self makes the access exclusive.
            EitherMut::Right(unsafe { &mut *self.boxed() })
        } else {
            // SAFETY: as in get. Whatever A the caller writes back is an A, whose address is
            // even (ThinPtr), so it still reads as a left value.
            EitherMut::Left(unsafe { &mut *(self as *mut Self).cast::<A>() })
        }
    }

    pub fn into_inner(self) -> EitherOwned<A, B> {
        let me = ManuallyDrop::new(self);
        if me.is_right() {
            // SAFETY: the untagged address came from Box::leak; `me` will not free it again.
            EitherOwned::Right(unsafe { Box::from_raw(me.boxed()) })
        } else {
            // SAFETY: the bits are an A (see get); ownership moves out of `me`, never dropped.
            EitherOwned::Left(unsafe { std::ptr::read((&*me as *const Self).cast::<A>()) })
        }
    }
}

impl<A: ThinPtr, B> Drop for Either<A, B> {
    fn drop(&mut self) {
        // SAFETY: a bitwise move out of self, which is never used again (only dropped once).
        let me: Self = unsafe { std::ptr::read(self) };
        match me.into_inner() {
            EitherOwned::Left(a) => drop(a),
            EitherOwned::Right(b) => drop(b),
        }
    }
}

impl<A: ThinPtr + Clone, B: Clone> Clone for Either<A, B> {
    fn clone(&self) -> Self {
        match self.get() {
            EitherRef::Left(a) => Either::left(a.clone()),
            EitherRef::Right(b) => Either::right(Box::new(b.clone())),
        }
    }
}

impl<A: ThinPtr + fmt::Debug, B: fmt::Debug> fmt::Debug for Either<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            EitherRef::Left(a) => a.fmt(f),
            EitherRef::Right(b) => b.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn thin_bytes() {
        assert_eq!(size_of::<ThinBytes>(), 8);
        assert_eq!(size_of::<Option<ThinBytes>>(), 8);
        let e = ThinBytes::default();
        assert!(e.is_empty());
        assert_eq!(e.alloc_size(), 0);
        let mut c = e.clone();
        assert!(c.as_mut_slice().is_empty());
        let mut a = ThinBytes::new(b"hello world");
        assert_eq!(&*a, b"hello world");
        assert_eq!(a.alloc_size(), 8 + 11);
        a.as_mut_slice()[0] = b'j';
        let b = a.clone();
        drop(a);
        assert_eq!(&*b, b"jello world");
        assert_eq!(b, ThinBytes::from(&b"jello world"[..]));
        c = b;
        assert_eq!(c.len(), 11);
    }

    #[derive(Clone, Debug)]
    struct Big(#[allow(dead_code)] Rc<()>, u64);

    #[test]
    fn either_owns_and_frees() {
        assert_eq!(size_of::<Either<ThinBytes, Big>>(), 8);
        let count = Rc::new(());
        let mut l: Either<ThinBytes, Big> = Either::left(ThinBytes::new(b"abc"));
        assert!(matches!(l.get(), EitherRef::Left(a) if &**a == b"abc"));
        if let EitherMut::Left(a) = l.get_mut() {
            *a = ThinBytes::new(b"longer bytes");
        }
        assert!(matches!(l.get(), EitherRef::Left(a) if &**a == b"longer bytes"));
        let r: Either<ThinBytes, Big> = Either::right(Box::new(Big(count.clone(), 7)));
        assert_eq!(Rc::strong_count(&count), 2);
        let r2 = r.clone();
        assert_eq!(Rc::strong_count(&count), 3);
        assert!(matches!(r2.get(), EitherRef::Right(Big(_, 7))));
        drop(r);
        assert_eq!(Rc::strong_count(&count), 2);
        match r2.into_inner() {
            EitherOwned::Right(b) => assert_eq!(b.1, 7),
            EitherOwned::Left(_) => panic!("right expected"),
        }
        assert_eq!(Rc::strong_count(&count), 1);
        l = Either::left(ThinBytes::default());
        assert!(matches!(l.into_inner(), EitherOwned::Left(a) if a.is_empty()));
    }
}
