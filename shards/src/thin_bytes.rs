//! `ThinBytes`: an immutable owned byte string behind a single pointer (8 bytes, where a
//! `Box<[u8]>` takes 16), for the per-series byte strings the head keeps a million of (a
//! series' packed label pairs, its list of written-out chunks). It owns only the bytes and
//! never interprets them.
//!
//! Layout of the allocation, written by `ThinBytes::new` and nothing else (alignment 1):
//!
//! ```text
//! len uvarint | len bytes
//! ```
//!
//! The empty string allocates nothing (a null pointer), so `Default` is free.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

#[derive(Default)]
pub struct ThinBytes {
    ptr: Option<NonNull<u8>>,
}

// SAFETY: a `ThinBytes` is the only owner of its allocation and never mutates it after
// `new`, like a `Box<[u8]>`.
unsafe impl Send for ThinBytes {}
// SAFETY: as above.
unsafe impl Sync for ThinBytes {}

/// Bytes of the uvarint encoding of `n`.
#[inline]
fn prefix_len(n: usize) -> usize {
    let bits = usize::BITS - (n | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

impl ThinBytes {
    /// A copy of `b` in an allocation of exactly its length plus the length prefix.
    pub fn new(b: &[u8]) -> Self {
        if b.is_empty() {
            return ThinBytes { ptr: None };
        }
        let p = prefix_len(b.len());
        let layout = Layout::from_size_align(p + b.len(), 1).expect("byte string too long");
        // SAFETY: the layout's size is non-zero.
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        let mut n = b.len();
        // SAFETY: the allocation holds `p + b.len()` bytes: `p` prefix bytes are written
        // one by one, then `b` (which cannot overlap a fresh allocation) after them.
        unsafe {
            let mut i = 0;
            while n >= 0x80 {
                raw.add(i).write(n as u8 | 0x80);
                n >>= 7;
                i += 1;
            }
            raw.add(i).write(n as u8);
            std::ptr::copy_nonoverlapping(b.as_ptr(), raw.add(p), b.len());
        }
        ThinBytes { ptr: Some(ptr) }
    }

    /// The length and the prefix's size, read from the allocation.
    #[inline]
    fn header(ptr: NonNull<u8>) -> (usize, usize) {
        let mut n = 0usize;
        let mut i = 0;
        loop {
            // SAFETY: `new` wrote a complete uvarint at the start of the allocation.
            let b = unsafe { ptr.as_ptr().add(i).read() };
            n |= usize::from(b & 0x7f) << (7 * i);
            i += 1;
            if b < 0x80 {
                return (n, i);
            }
        }
    }

    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match self.ptr {
            None => &[],
            Some(ptr) => {
                let (len, p) = Self::header(ptr);
                // SAFETY: `len` initialised bytes follow the prefix, owned by `self`.
                unsafe { std::slice::from_raw_parts(ptr.as_ptr().add(p), len) }
            }
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ptr.is_none()
    }

    /// Bytes allocated (the prefix included).
    pub fn heap_bytes(&self) -> usize {
        self.ptr.map_or(0, |ptr| {
            let (len, p) = Self::header(ptr);
            len + p
        })
    }
}

impl Drop for ThinBytes {
    fn drop(&mut self) {
        if let Some(ptr) = self.ptr {
            let (len, p) = Self::header(ptr);
            // SAFETY: allocated by `new` with exactly this layout, freed once.
            unsafe { alloc::dealloc(ptr.as_ptr(), Layout::from_size_align_unchecked(len + p, 1)) }
        }
    }
}

impl Clone for ThinBytes {
    fn clone(&self) -> Self {
        ThinBytes::new(self.as_slice())
    }
}

impl PartialEq for ThinBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for ThinBytes {}

impl std::fmt::Debug for ThinBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ThinBytes").field(&self.as_slice()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_pointer_and_empty_allocates_nothing() {
        assert_eq!(std::mem::size_of::<ThinBytes>(), 8);
        let e = ThinBytes::new(&[]);
        assert!(e.is_empty());
        assert_eq!(e.heap_bytes(), 0);
        assert_eq!(e, ThinBytes::default());
    }

    #[test]
    fn prefix_grows_at_uvarint_boundaries() {
        for (n, p) in [(1, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3)] {
            let b = ThinBytes::new(&vec![7u8; n]);
            assert_eq!(b.heap_bytes(), n + p, "{n}");
            assert_eq!(b.as_slice().len(), n);
        }
    }

    proptest! {
        #[test]
        fn holds_exactly_what_it_was_given(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let t = ThinBytes::new(&b);
            prop_assert_eq!(t.as_slice(), &b[..]);
            let c = t.clone();
            drop(t);
            prop_assert_eq!(c.as_slice(), &b[..]);
            prop_assert_eq!(c.heap_bytes(), if b.is_empty() { 0 } else { b.len() + prefix_len(b.len()) });
        }
    }
}
