//! The two forms of one (name, value) list of the head's postings, and when each is used:
//! a sorted id list while the ids are sparse, a bitmap (`IdSet`) over the window of its ids
//! once they are dense enough that the bitmap is clearly smaller. It owns that choice and
//! `Ids`, the borrowed read-only view of either form that readers work on; it never owns
//! the lists themselves (`MemPostings` does).
//!
//! Why: at 1M series, lists such as `job`'s hold a large share of a shard's ids at 4 bytes
//! each plus growth slack, where a bitmap over the live window costs ~1 bit a live series.
//! The two thresholds differ by a factor of two (hysteresis), so a list whose density sits
//! near the boundary does not flip back and forth as ids come and go.

use crate::index::id_set::IdSet;
use crate::index::postings::intersects;

/// What a bitmap costs beyond its words: the `IdSet` itself and its entry in the side
/// table of dense lists (key, padding, control byte), so that short lists never switch.
const BITMAP_OVERHEAD: usize = 64;

/// Bytes of a bitmap of `words` words, all included.
fn bitmap_bytes(words: usize) -> usize {
    words * std::mem::size_of::<u64>() + BITMAP_OVERHEAD
}

/// Bytes of the ids of a sorted list of `len` ids, growth slack left out.
fn list_bytes(len: usize) -> usize {
    len * std::mem::size_of::<u32>()
}

/// Whether a sorted list of `len` ids from `first` to `last` is dense enough to become a
/// bitmap: the bitmap takes at most half of the list's bytes.
pub(crate) fn sorted_wants_bits(len: usize, first: u32, last: u32) -> bool {
    let words = (last / 64 - first / 64) as usize + 1;
    2 * bitmap_bytes(words) <= list_bytes(len)
}

/// Whether a bitmap has thinned out (deletes) or spread (a far id) enough to go back to a
/// sorted list: the bitmap takes more than the list would.
pub(crate) fn bits_want_sorted(bits: &IdSet) -> bool {
    bitmap_bytes(bits.window_words()) > list_bytes(bits.len())
}

/// A (name, value) list as readers see it: its ids, ascending, in either form.
#[derive(Clone, Copy)]
pub enum Ids<'a> {
    Sorted(&'a [u32]),
    Bits(&'a IdSet),
}

impl<'a> Ids<'a> {
    pub const EMPTY: Ids<'static> = Ids::Sorted(&[]);

    pub fn len(&self) -> usize {
        match self {
            Ids::Sorted(s) => s.len(),
            Ids::Bits(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_bits(&self) -> bool {
        matches!(self, Ids::Bits(_))
    }

    pub fn contains(&self, id: u32) -> bool {
        match self {
            Ids::Sorted(s) => s.binary_search(&id).is_ok(),
            Ids::Bits(b) => b.contains(id),
        }
    }

    /// Whether one of `ids` (sorted) is in the list, stopping at the first.
    pub fn intersects(&self, ids: &[u32]) -> bool {
        match self {
            Ids::Sorted(s) => intersects(s, ids),
            Ids::Bits(b) => ids.iter().any(|&id| b.contains(id)),
        }
    }

    /// The ids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        let (sorted, bits) = match *self {
            Ids::Sorted(s) => (Some(s.iter().copied()), None),
            Ids::Bits(b) => (None, Some(b.iter())),
        };
        sorted
            .into_iter()
            .flatten()
            .chain(bits.into_iter().flatten())
    }

    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            Ids::Sorted(s) => s.to_vec(),
            Ids::Bits(b) => b.to_vec(),
        }
    }
}

impl std::fmt::Debug for Ids<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_leave_a_band_between_them() {
        // 4,096 ids over a window of 65,536 (64 bits an id): a list either way.
        assert!(!sorted_wants_bits(4096, 0, 65_535));
        // 1 id in 8: a bitmap of 8 KiB against a list of 16 KiB goes bits...
        assert!(sorted_wants_bits(8192, 0, 65_535));
        // ... and stays bits down to 1 id in 32 ...
        let sparse: Vec<u32> = (0..65_536).step_by(30).collect();
        assert!(!bits_want_sorted(&IdSet::from_sorted(&sparse)));
        assert!(!sorted_wants_bits(sparse.len(), 0, 65_535));
        // ... below which it goes back.
        let sparser: Vec<u32> = (0..65_536).step_by(40).collect();
        assert!(bits_want_sorted(&IdSet::from_sorted(&sparser)));
        // Short lists never switch, however dense.
        assert!(!sorted_wants_bits(16, 0, 15));
    }

    #[test]
    fn views_agree() {
        let ids: Vec<u32> = vec![3, 64, 65, 1000, 4096];
        let bits = IdSet::from_sorted(&ids);
        for view in [Ids::Sorted(&ids), Ids::Bits(&bits)] {
            assert_eq!(view.len(), 5);
            assert_eq!(view.to_vec(), ids);
            assert_eq!(view.iter().collect::<Vec<_>>(), ids);
            assert!(view.contains(65) && !view.contains(66));
            assert!(view.intersects(&[1, 2, 1000]));
            assert!(!view.intersects(&[1, 2, 999]));
        }
    }
}
