//! `MmappedList`: a series' chunks written out to chunks_head, oldest first, as the head
//! keeps them in memory. It owns only that list; what a chunk holds is read through
//! chunks_head, and it never decides which chunks are kept (`MemSeries` does).
//!
//! Memory is why it exists: a 3 h head at a 10 s interval holds ~9 written-out chunks per
//! series, 24 bytes each as `MmappedChunk`s. Consecutive chunks of a series have close disk
//! refs and adjoining times, so deltas make them a few bytes each, and the list lives in a
//! `ThinBytes` (8 bytes in the series, nothing allocated while it is empty).
//!
//! Layout, written by `from_chunks` and nothing else (all arithmetic wrapping, so any
//! values round-trip):
//!
//! ```text
//! count uvarint
//! ( zigzag(ref - prev_ref) uvarint        prev_ref = 0 for the first chunk
//! | zigzag(min_time - prev_max) uvarint   prev_max = 0 for the first chunk
//! | zigzag(max_time - min_time) uvarint )*
//! ```

use super::series::MmappedChunk;
use crate::encoding::{put_uvarint, unzigzag, zigzag};
use crate::thin_bytes::ThinBytes;

#[derive(Default, Clone, PartialEq, Eq)]
pub struct MmappedList {
    bytes: ThinBytes,
}

impl MmappedList {
    pub fn from_chunks(chunks: &[MmappedChunk]) -> Self {
        if chunks.is_empty() {
            return MmappedList::default();
        }
        let mut b = Vec::with_capacity(1 + chunks.len() * 8);
        put_uvarint(&mut b, chunks.len() as u64);
        let (mut prev_ref, mut prev_max) = (0u64, 0i64);
        for m in chunks {
            put_uvarint(&mut b, zigzag(m.chunk_ref.wrapping_sub(prev_ref) as i64));
            put_uvarint(&mut b, zigzag(m.min_time.wrapping_sub(prev_max)));
            put_uvarint(&mut b, zigzag(m.max_time.wrapping_sub(m.min_time)));
            (prev_ref, prev_max) = (m.chunk_ref, m.max_time);
        }
        MmappedList {
            bytes: ThinBytes::new(&b),
        }
    }

    /// The chunks, oldest first.
    pub fn iter(&self) -> MmappedIter<'_> {
        let mut it = MmappedIter {
            rest: self.bytes.as_slice(),
            left: 0,
            prev_ref: 0,
            prev_max: 0,
        };
        it.left = it.uvarint().unwrap_or(0) as usize;
        it
    }

    pub fn to_vec(&self) -> Vec<MmappedChunk> {
        self.iter().collect()
    }

    pub fn len(&self) -> usize {
        self.iter().len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn first(&self) -> Option<MmappedChunk> {
        self.iter().next()
    }

    /// The newest chunk (decodes the list: it holds a handful).
    pub fn last(&self) -> Option<MmappedChunk> {
        self.iter().last()
    }

    /// Bytes allocated on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.heap_bytes()
    }
}

impl std::fmt::Debug for MmappedList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Decodes an `MmappedList`. The bytes were written by `from_chunks` in this process; a
/// truncated list would end the iteration rather than read past the slice.
#[derive(Clone)]
pub struct MmappedIter<'a> {
    rest: &'a [u8],
    left: usize,
    prev_ref: u64,
    prev_max: i64,
}

impl MmappedIter<'_> {
    #[inline]
    fn uvarint(&mut self) -> Option<u64> {
        let mut x = 0u64;
        let mut shift = 0u32;
        loop {
            let (&b, rest) = self.rest.split_first()?;
            self.rest = rest;
            x |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b < 0x80 {
                return Some(x);
            }
            shift += 7;
        }
    }
}

impl Iterator for MmappedIter<'_> {
    type Item = MmappedChunk;

    #[inline]
    fn next(&mut self) -> Option<MmappedChunk> {
        if self.left == 0 {
            return None;
        }
        let chunk_ref = self.prev_ref.wrapping_add(unzigzag(self.uvarint()?) as u64);
        let min_time = self.prev_max.wrapping_add(unzigzag(self.uvarint()?));
        let max_time = min_time.wrapping_add(unzigzag(self.uvarint()?));
        self.left -= 1;
        (self.prev_ref, self.prev_max) = (chunk_ref, max_time);
        Some(MmappedChunk {
            chunk_ref,
            min_time,
            max_time,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for MmappedIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chunk() -> impl Strategy<Value = MmappedChunk> {
        (any::<u64>(), any::<i64>(), any::<i64>()).prop_map(|(chunk_ref, min_time, max_time)| {
            MmappedChunk {
                chunk_ref,
                min_time,
                max_time,
            }
        })
    }

    #[test]
    fn a_3h_head_of_chunks_takes_a_few_bytes_each() {
        // Chunks of 120 samples at 10 s, one after another in chunks_head file 5.
        let chunks: Vec<MmappedChunk> = (0..9)
            .map(|i| MmappedChunk {
                chunk_ref: crate::chunks_head::chunk_disk_ref(5, 8 + i * 2_000_000),
                min_time: 1_700_000_000_000 + i64::from(i) * 1_200_000,
                max_time: 1_700_000_000_000 + i64::from(i) * 1_200_000 + 1_190_000,
            })
            .collect();
        let l = MmappedList::from_chunks(&chunks);
        assert_eq!(l.to_vec(), chunks);
        assert_eq!(l.last(), chunks.last().copied());
        // 11 bytes a chunk (the first 16) against 24 as structs.
        assert!(l.heap_bytes() <= 9 * 12 + 8, "{}", l.heap_bytes());
        assert_eq!(std::mem::size_of::<MmappedList>(), 8);
    }

    #[test]
    fn empty_allocates_nothing() {
        let l = MmappedList::from_chunks(&[]);
        assert!(l.is_empty());
        assert_eq!(l.len(), 0);
        assert_eq!(l.heap_bytes(), 0);
        assert_eq!(l.first(), None);
        assert_eq!(l.last(), None);
    }

    proptest! {
        #[test]
        fn round_trips_any_chunks(chunks in proptest::collection::vec(chunk(), 0..40)) {
            let l = MmappedList::from_chunks(&chunks);
            prop_assert_eq!(l.len(), chunks.len());
            prop_assert_eq!(l.is_empty(), chunks.is_empty());
            prop_assert_eq!(l.to_vec(), chunks.clone());
            prop_assert_eq!(l.first(), chunks.first().copied());
            prop_assert_eq!(l.last(), chunks.last().copied());
            prop_assert_eq!(l.clone(), l);
        }
    }
}
