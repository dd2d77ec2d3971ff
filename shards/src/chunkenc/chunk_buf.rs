//! `ChunkBuf`: the bytes of an open XOR chunk, in 13 bytes instead of a `Vec`'s 24.
//!
//! The head keeps one open chunk inline in every series, so the buffer's own size is paid a
//! million times: a pointer, a u32 length and a one-byte size class (the capacity is
//! `class_size(class)`) let `XorChunk` pack into 40 bytes and `MemSeries` into 80. The
//! struct is `repr(packed)` so the chunk's one-byte fields fill what would be its padding.
//!
//! The buffer grows only when a write does not fit, one size class at a time (the classes
//! are mimalloc's small size classes up to 64 bytes, then four per doubling), so an open
//! chunk never holds a fixed reserve of unused bytes. Its allocation is a block of exactly
//! `class_size(class)` bytes in the thread's chunk heap (`chunk_heap`), which the head
//! renews with `relocate`; `into_vec` hands it to a `Vec<u8>` (without a copy under the
//! server's mimalloc). It owns no state of the encoding: what the bytes mean is
//! `XorChunk`'s business.

use std::ptr::NonNull;

use super::bstream::ByteSink;
use super::chunk_heap;

/// Number of size classes: the last one is over 2^32 bytes, so every u32 length has one.
const CLASSES: usize = 116;

/// Class sizes: 8, 16, ..., 64, then four steps per doubling (80, 96, 112, 128, 160, ...).
const CLASS_SIZES: [usize; CLASSES] = {
    let mut sizes = [0usize; CLASSES];
    let mut c = 0;
    while c < CLASSES {
        sizes[c] = if c < 8 {
            8 * (c + 1)
        } else {
            let (e, m) = ((c - 8) / 4, (c - 8) % 4);
            (64 << e) + (m + 1) * (16 << e)
        };
        c += 1;
    }
    sizes
};

/// Bytes allocated for `class`.
#[inline]
pub fn class_size(class: u8) -> usize {
    CLASS_SIZES[usize::from(class)]
}

/// The smallest class holding `n` bytes; `None` past the largest class.
pub fn class_for(n: usize) -> Option<u8> {
    let c = CLASS_SIZES.partition_point(|&s| s < n);
    (c < CLASSES).then_some(c as u8)
}

/// An owned, growable byte buffer of at most `u32::MAX` bytes whose capacity is a size class.
#[repr(C, packed)]
pub struct ChunkBuf {
    ptr: NonNull<u8>,
    len: u32,
    class: u8,
}

// SAFETY: a `ChunkBuf` is the only owner of its allocation, like a `Vec<u8>`.
unsafe impl Send for ChunkBuf {}
// SAFETY: shared references only read the bytes.
unsafe impl Sync for ChunkBuf {}

impl ChunkBuf {
    /// An empty buffer with room for `capacity` bytes (rounded up to a class).
    ///
    /// # Panics
    /// When `capacity` exceeds every class (over 4 GiB).
    pub fn with_capacity(capacity: usize) -> Self {
        let class = class_for(capacity).expect("chunk capacity beyond the largest class");
        ChunkBuf {
            ptr: chunk_heap::alloc(class_size(class)),
            len: 0,
            class,
        }
    }

    /// Moves the bytes to a new block of the thread's chunk heap (during a
    /// `chunk_heap::Renewal`, the fresh heap).
    pub fn relocate(&mut self) {
        let (old, len, class) = (self.ptr, self.len, self.class);
        let p = chunk_heap::alloc(class_size(class));
        // SAFETY: both blocks hold at least `len` bytes and are distinct.
        unsafe { std::ptr::copy_nonoverlapping(old.as_ptr(), p.as_ptr(), len as usize) };
        chunk_heap::free(old);
        self.ptr = p;
    }

    /// Takes over `v`'s bytes, moving its allocation to a size class (in place when the
    /// allocator's block already fits, as mimalloc's do). `None` if `v` holds more than
    /// `u32::MAX` bytes.
    pub fn from_vec(v: Vec<u8>) -> Option<Self> {
        let len = u32::try_from(v.len()).ok()?;
        let class = class_for(v.len().max(1))?;
        let ptr = chunk_heap::from_global(v, class_size(class));
        Some(ChunkBuf { ptr, len, class })
    }

    /// Gives the bytes to a `Vec<u8>` (without copying when the global allocator is
    /// mimalloc).
    pub fn into_vec(self) -> Vec<u8> {
        let this = std::mem::ManuallyDrop::new(self);
        let (ptr, len, class) = (this.ptr, this.len, this.class);
        chunk_heap::to_global(ptr, len as usize, class_size(class))
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Bytes allocated.
    #[inline]
    pub fn capacity(&self) -> usize {
        class_size(self.class)
    }

    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        let (ptr, len) = (self.ptr, self.len);
        // SAFETY: `ptr` points to at least `len` initialised bytes owned by `self`.
        unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len as usize) }
    }

    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let (ptr, len) = (self.ptr, self.len);
        // SAFETY: as in `as_slice`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len as usize) }
    }

    /// Appends `b`, growing to the smallest class that holds the result.
    ///
    /// # Panics
    /// When the result would exceed `u32::MAX` bytes.
    #[inline]
    pub fn extend_from_slice(&mut self, b: &[u8]) {
        let new_len = self.len() + b.len();
        if new_len > self.capacity() {
            self.grow_to(new_len);
        }
        let (ptr, len) = (self.ptr, self.len);
        // SAFETY: the capacity is at least `new_len` and `b` cannot overlap our allocation,
        // which only `&mut self` reaches.
        unsafe {
            std::ptr::copy_nonoverlapping(b.as_ptr(), ptr.as_ptr().add(len as usize), b.len());
        }
        self.len = new_len as u32;
    }

    #[cold]
    fn grow_to(&mut self, n: usize) {
        let class = match class_for(n) {
            Some(c) if n <= u32::MAX as usize => c,
            _ => panic!("chunk buffer of {n} bytes exceeds u32::MAX"),
        };
        self.ptr = chunk_heap::realloc(self.ptr, class_size(class));
        self.class = class;
    }
}

impl Drop for ChunkBuf {
    fn drop(&mut self) {
        chunk_heap::free(self.ptr);
    }
}

impl Clone for ChunkBuf {
    fn clone(&self) -> Self {
        let class = self.class;
        let mut c = ChunkBuf {
            ptr: chunk_heap::alloc(class_size(class)),
            len: 0,
            class,
        };
        c.extend_from_slice(self.as_slice());
        c
    }
}

impl std::fmt::Debug for ChunkBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkBuf")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl ByteSink for ChunkBuf {
    #[inline]
    fn put_bytes(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }

    #[inline]
    fn last_byte_mut(&mut self) -> Option<&mut u8> {
        self.as_mut_slice().last_mut()
    }

    #[inline]
    fn byte_len(&self) -> usize {
        self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classes_are_mimallocs_then_four_per_doubling() {
        assert_eq!(
            CLASS_SIZES[..16],
            [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256]
        );
        assert!(CLASS_SIZES.windows(2).all(|w| w[0] < w[1]));
        assert!(class_size(CLASSES as u8 - 1) > u32::MAX as usize);
        assert_eq!(class_for(0), Some(0));
        assert_eq!(class_for(33), Some(4));
        assert_eq!(class_for(64), Some(7));
        assert_eq!(class_for(65), Some(8));
        assert_eq!(class_for(usize::MAX), None);
        assert_eq!(std::mem::size_of::<ChunkBuf>(), 13);
        assert_eq!(std::mem::size_of::<Option<ChunkBuf>>(), 13);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Extend(Vec<u8>),
        SetLast(u8),
        Clone,
        ThroughVec,
        Relocate,
        /// A renewal of the thread's heap that moves this buffer; a copy made before
        /// (`Keep`) is not moved and must stay valid when the old heap is deleted.
        Renew,
        Keep,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Extend),
            1 => any::<u8>().prop_map(Op::SetLast),
            1 => Just(Op::Clone),
            1 => Just(Op::ThroughVec),
            1 => Just(Op::Relocate),
            1 => Just(Op::Renew),
            1 => Just(Op::Keep),
        ]
    }

    proptest! {
        /// The buffer holds exactly what a `Vec<u8>` given the same writes holds, and its
        /// capacity is always the smallest class that holds its length (or its start).
        #[test]
        fn behaves_like_a_vec(start in 0usize..300, ops in proptest::collection::vec(op(), 0..60)) {
            let mut b = ChunkBuf::with_capacity(start);
            let mut model: Vec<u8> = Vec::new();
            let mut kept: Vec<(ChunkBuf, Vec<u8>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Extend(bytes) => {
                        b.extend_from_slice(&bytes);
                        model.extend_from_slice(&bytes);
                    }
                    Op::SetLast(x) => {
                        if let Some(l) = b.last_byte_mut() {
                            *l = x;
                        }
                        if let Some(l) = model.last_mut() {
                            *l = x;
                        }
                    }
                    Op::Clone => b = b.clone(),
                    Op::ThroughVec => {
                        let v = b.into_vec();
                        b = ChunkBuf::from_vec(v).unwrap();
                    }
                    Op::Relocate => b.relocate(),
                    Op::Renew => {
                        let renewal = chunk_heap::Renewal::begin();
                        b.relocate();
                        drop(renewal);
                    }
                    Op::Keep => kept.push((b.clone(), model.clone())),
                }
                prop_assert_eq!(b.as_slice(), &model[..]);
                prop_assert_eq!(b.byte_len(), model.len());
                prop_assert!(b.capacity() >= b.len());
                let smallest = class_size(class_for(model.len().max(1)).unwrap());
                prop_assert!(b.capacity() == smallest || b.capacity() <= class_size(class_for(start).unwrap()));
            }
            let v = b.into_vec();
            prop_assert_eq!(v, model);
            for (k, m) in kept {
                prop_assert_eq!(k.as_slice(), &m[..]);
            }
        }
    }
}
