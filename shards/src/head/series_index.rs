//! `SeriesIndex`: from a label set's `series_hash` to the series ids that may carry it. It
//! owns only (hash, id) pairs; whether a candidate really has the label set is the caller's
//! check, as two label sets can share a hash. It never resolves labels itself.
//!
//! Memory is why it exists: a map from u64 hash to u32 id pads each entry to 16 bytes, and
//! colliding hashes needed a second map. Here one table entry is 8 bytes, the low 32 bits
//! of the hash next to the id, and colliding series are simply several entries (the table
//! allows equal hashes), so a million series cost ~9 bytes each plus the table's free slack.

use hashbrown::HashTable;

use super::SeriesId;

#[derive(Default)]
pub struct SeriesIndex {
    /// (low 32 bits of the series hash, series id).
    table: HashTable<(u32, SeriesId)>,
}

/// The 64-bit hash the table places an entry by. The low half of `series_hash` is already
/// well mixed; the multiplication spreads it into the high bits, which hashbrown uses for
/// its control bytes.
#[inline]
fn place(h32: u32) -> u64 {
    u64::from(h32).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl SeriesIndex {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.len()
    }

    /// The first series with this hash for which `is_it` holds.
    pub fn find(&self, hash: u64, mut is_it: impl FnMut(SeriesId) -> bool) -> Option<SeriesId> {
        let h32 = hash as u32;
        self.table
            .find(place(h32), |&(h, id)| h == h32 && is_it(id))
            .map(|&(_, id)| id)
    }

    /// The first series with this hash for which `is_it` holds; when there is none, files
    /// `id` under `hash` and returns `None`. One probe for both: a restart declares every
    /// series, each a lookup that misses and then an insert.
    pub fn find_or_insert(
        &mut self,
        hash: u64,
        id: SeriesId,
        mut is_it: impl FnMut(SeriesId) -> bool,
    ) -> Option<SeriesId> {
        let h32 = hash as u32;
        match self.table.entry(
            place(h32),
            |&(h, i)| h == h32 && is_it(i),
            |&(h, _)| place(h),
        ) {
            hashbrown::hash_table::Entry::Occupied(e) => Some(e.get().1),
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert((h32, id));
                None
            }
        }
    }

    /// Makes room for `additional` more entries at once.
    pub fn reserve(&mut self, additional: usize) {
        self.table.reserve(additional, |&(h, _)| place(h));
    }

    /// Adds series `id` under `hash`; the caller has checked it is not there yet.
    pub fn insert(&mut self, hash: u64, id: SeriesId) {
        let h32 = hash as u32;
        self.table
            .insert_unique(place(h32), (h32, id), |&(h, _)| place(h));
    }

    /// Removes series `id` filed under `hash`; false if it was not there.
    pub fn remove(&mut self, hash: u64, id: SeriesId) -> bool {
        let h32 = hash as u32;
        match self
            .table
            .find_entry(place(h32), |&(h, i)| h == h32 && i == id)
        {
            Ok(e) => {
                e.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Bytes allocated (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        self.table.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn colliding_hashes_keep_every_series() {
        let mut ix = SeriesIndex::default();
        ix.insert(7, 1);
        ix.insert(7, 2);
        // Same low 32 bits, different high bits: still candidates, told apart by the caller.
        ix.insert(7 | (1 << 40), 3);
        assert_eq!(ix.len(), 3);
        assert_eq!(ix.find(7, |id| id == 2), Some(2));
        assert_eq!(ix.find(7, |id| id == 3), Some(3));
        assert_eq!(ix.find(8, |_| true), None);
        assert!(ix.remove(7, 1));
        assert!(!ix.remove(7, 1));
        assert_eq!(ix.find(7, |id| id == 1), None);
        assert_eq!(ix.find(7, |id| id == 2), Some(2));
    }

    #[test]
    fn about_nine_bytes_a_series_when_full() {
        let mut ix = SeriesIndex::default();
        for id in 1..=917_504u32 {
            ix.insert(u64::from(id).wrapping_mul(0x2545_f491_4f6c_dd1d), id);
        }
        // 2^20 buckets of 8 bytes plus a control byte each, at the 7/8 load where it grows.
        assert!(ix.heap_bytes() <= (1 << 20) * 9 + 64, "{}", ix.heap_bytes());
    }

    proptest! {
        #[test]
        fn model(ops in proptest::collection::vec((0u64..16, 1u32..40, any::<bool>()), 0..200)) {
            let mut ix = SeriesIndex::default();
            let mut model: BTreeSet<(u64, u32)> = BTreeSet::new();
            for (hash, id, add) in ops {
                // Hashes 0..16 all collide in pairs on their low bits through `| 1<<33`.
                let hash = hash | ((hash & 1) << 33);
                if add {
                    if model.insert((hash as u32 as u64, id)) {
                        ix.insert(hash, id);
                    }
                } else {
                    prop_assert_eq!(ix.remove(hash, id), model.remove(&(hash as u32 as u64, id)));
                }
                prop_assert_eq!(ix.len(), model.len());
            }
            for &(h, id) in &model {
                prop_assert_eq!(ix.find(h, |i| i == id), Some(id));
            }
        }

        /// `find_or_insert` finds what `find` finds, and otherwise inserts as `insert` does.
        #[test]
        fn find_or_insert_as_find_then_insert(ops in proptest::collection::vec((0u64..16, 1u32..40), 0..200)) {
            let mut one = SeriesIndex::default();
            let mut two = SeriesIndex::default();
            for (hash, id) in ops {
                let hash = hash | ((hash & 1) << 33);
                // "The same series" is the same id modulo 5: several ids can match.
                let same = |i: SeriesId| i % 5 == id % 5;
                let want = one.find(hash, same);
                if want.is_none() {
                    one.insert(hash, id);
                }
                prop_assert_eq!(two.find_or_insert(hash, id, same), want);
                prop_assert_eq!(two.len(), one.len());
            }
        }
    }
}
