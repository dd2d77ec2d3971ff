//! `InternedLabels`: a series' label set as the head keeps it, as the (name, value) symbol id
//! pairs of the head's `SymbolTable`, packed as uvarints in one exactly sized allocation.
//! It owns only those bytes; it never resolves ids to strings (the table does) and never
//! sorts or validates: pairs come from a `Labels` or a record that was checked already.
//!
//! Memory is why it exists. A `Box<[(u32, u32)]>` takes 8 bytes a label; here a name id
//! (the few names are interned first, so their ids are small) takes one byte and a value id
//! one to three (below 2^21 distinct strings), so a 7-label series takes ~20 bytes instead
//! of 56. The bytes are a `ThinBytes` (one pointer, the length a prefix in the allocation),
//! so the struct itself is 8 bytes of every `MemSeries`.
//!
//! Layout, written by `from_pairs` and nothing else:
//!
//! ```text
//! (name_id uvarint | value_id uvarint)*   in the label set's order (by name)
//! ```

use smallvec::SmallVec;

use super::symbols::SymbolId;
use crate::thin_bytes::ThinBytes;

/// A label set as packed symbol id pairs. The empty set allocates nothing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InternedLabels {
    bytes: ThinBytes,
}

impl InternedLabels {
    /// Packs the pairs, in the order given (a label set's, sorted by name). Encoded on the
    /// stack first and then copied into an allocation of exactly that length: shrinking a
    /// larger one in place would keep its size class.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (SymbolId, SymbolId)>) -> Self {
        let mut bytes: SmallVec<[u8; 64]> = SmallVec::new();
        for (n, v) in pairs {
            put(&mut bytes, n);
            put(&mut bytes, v);
        }
        InternedLabels {
            bytes: ThinBytes::new(&bytes),
        }
    }

    /// The pairs, in order.
    #[inline]
    pub fn iter(&self) -> Pairs<'_> {
        Pairs {
            rest: self.bytes.as_slice(),
        }
    }

    /// Number of labels: one uvarint ends at every byte below 0x80, two per label.
    pub fn len(&self) -> usize {
        self.bytes.as_slice().iter().filter(|&&b| b < 0x80).count() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Bytes allocated on the heap (the packed length and its one-byte prefix).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.heap_bytes()
    }
}

impl std::fmt::Debug for InternedLabels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a InternedLabels {
    type Item = (SymbolId, SymbolId);
    type IntoIter = Pairs<'a>;
    fn into_iter(self) -> Pairs<'a> {
        self.iter()
    }
}

#[inline]
fn put(out: &mut SmallVec<[u8; 64]>, mut x: u32) {
    while x >= 0x80 {
        out.push(x as u8 | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Iterator over the (name, value) pairs of an `InternedLabels`; the default one is empty.
#[derive(Clone, Default)]
pub struct Pairs<'a> {
    rest: &'a [u8],
}

impl Pairs<'_> {
    /// The next uvarint. The bytes were written by `put` in this process, so they are well
    /// formed; a truncated one would end the iteration rather than read past the slice.
    #[inline]
    fn next_id(&mut self) -> Option<SymbolId> {
        let mut x: u32 = 0;
        let mut shift = 0;
        loop {
            let (&b, rest) = self.rest.split_first()?;
            self.rest = rest;
            x |= u32::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b < 0x80 {
                return Some(x);
            }
            shift += 7;
        }
    }
}

impl Iterator for Pairs<'_> {
    type Item = (SymbolId, SymbolId);

    #[inline]
    fn next(&mut self) -> Option<(SymbolId, SymbolId)> {
        let n = self.next_id()?;
        let v = self.next_id()?;
        Some((n, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_ids_take_a_byte() {
        let l = InternedLabels::from_pairs([(0, 5), (1, 127), (2, 128), (3, 70_000)]);
        // 1+1, 1+1, 1+2, 1+3, and the one-byte length prefix
        assert_eq!(l.heap_bytes(), 12);
        assert_eq!(l.len(), 4);
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            [(0, 5), (1, 127), (2, 128), (3, 70_000)]
        );
        let empty = InternedLabels::from_pairs([]);
        assert!(empty.is_empty());
        assert_eq!((empty.len(), empty.heap_bytes()), (0, 0));
        assert_eq!(empty.iter().next(), None);
    }

    proptest! {
        #[test]
        fn round_trips(pairs in proptest::collection::vec((any::<u32>(), any::<u32>()), 0..40)) {
            let l = InternedLabels::from_pairs(pairs.iter().copied());
            prop_assert_eq!(l.len(), pairs.len());
            prop_assert_eq!(l.iter().collect::<Vec<_>>(), pairs.clone());
            prop_assert!(l.heap_bytes() <= pairs.len() * 10 + 2);
            prop_assert_eq!(l.clone(), l);
        }
    }
}
