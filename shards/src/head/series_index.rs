//! `SeriesIndex`: from a label set's `series_hash` to the series ids that may carry it. It
//! owns only the ids; whether a candidate really has the label set is the caller's check, as
//! two label sets can share a hash (and, here, a table group). It never resolves labels
//! itself: when the table grows, the caller's `hash_of` gives each filed series' hash again.
//!
//! Memory is why it exists: a map from u64 hash to u32 id pads each entry to 16 bytes, and
//! colliding hashes needed a second map. Here one table entry is the 4-byte id (plus
//! hashbrown's control byte), colliding series are simply several entries, and the hash is
//! not kept: the control byte's 7 hash bits already rule out all but ~1 candidate in 128, and
//! growing, the rare moment that needs every hash, recomputes it from the series' labels.
//! A million series cost ~5 bytes each plus the table's free slack.

use hashbrown::HashTable;

use super::SeriesId;

#[derive(Default)]
pub struct SeriesIndex {
    table: HashTable<SeriesId>,
}

/// The 64-bit hash the table places an entry by, from the low half of its `series_hash`
/// (all a snapshot keeps of it). That half is already well mixed; the multiplication
/// spreads it into the high bits, which hashbrown uses for its control bytes.
#[inline]
fn place(hash: u64) -> u64 {
    u64::from(hash as u32).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl SeriesIndex {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.len()
    }

    /// The first series with this hash for which `is_it` holds.
    pub fn find(&self, hash: u64, mut is_it: impl FnMut(SeriesId) -> bool) -> Option<SeriesId> {
        self.table.find(place(hash), |&id| is_it(id)).copied()
    }

    /// The first series with this hash for which `is_it` holds; when there is none, files
    /// `id` under `hash` and returns `None`. One probe for both: a restart declares every
    /// series, each a lookup that misses and then an insert. `hash_of` gives the
    /// `series_hash` of a filed series, should the table grow.
    pub fn find_or_insert(
        &mut self,
        hash: u64,
        id: SeriesId,
        mut is_it: impl FnMut(SeriesId) -> bool,
        hash_of: impl Fn(SeriesId) -> u64,
    ) -> Option<SeriesId> {
        match self
            .table
            .entry(place(hash), |&i| is_it(i), |&i| place(hash_of(i)))
        {
            hashbrown::hash_table::Entry::Occupied(e) => Some(*e.get()),
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(id);
                None
            }
        }
    }

    /// Makes room for `additional` more entries at once (`hash_of` as in `find_or_insert`).
    pub fn reserve(&mut self, additional: usize, hash_of: impl Fn(SeriesId) -> u64) {
        self.table.reserve(additional, |&i| place(hash_of(i)));
    }

    /// Adds series `id` under `hash`; the caller has checked it is not there yet
    /// (`hash_of` as in `find_or_insert`).
    pub fn insert(&mut self, hash: u64, id: SeriesId, hash_of: impl Fn(SeriesId) -> u64) {
        self.table
            .insert_unique(place(hash), id, |&i| place(hash_of(i)));
    }

    /// Removes series `id` filed under `hash`; false if it was not there.
    pub fn remove(&mut self, hash: u64, id: SeriesId) -> bool {
        match self.table.find_entry(place(hash), |&i| i == id) {
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
    use std::collections::{BTreeMap, BTreeSet};

    /// Test hashes: ids filed with their hash, as the head's series carry their labels.
    #[derive(Default)]
    struct Hashes(BTreeMap<SeriesId, u64>);

    impl Hashes {
        fn of(&self) -> impl Fn(SeriesId) -> u64 + '_ {
            |id| self.0[&id]
        }
    }

    #[test]
    fn colliding_hashes_keep_every_series() {
        let mut ix = SeriesIndex::default();
        let h = Hashes([(1, 7), (2, 7), (3, 7 | (1 << 40))].into_iter().collect());
        ix.insert(7, 1, h.of());
        ix.insert(7, 2, h.of());
        // Same low 32 bits, different high bits: still candidates, told apart by the caller.
        ix.insert(7 | (1 << 40), 3, h.of());
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
    fn about_five_bytes_a_series_when_full() {
        let mut ix = SeriesIndex::default();
        let hash = |id: SeriesId| u64::from(id).wrapping_mul(0x2545_f491_4f6c_dd1d);
        for id in 1..=917_504u32 {
            ix.insert(hash(id), id, hash);
        }
        // 2^20 buckets of 4 bytes plus a control byte each, at the 7/8 load where it grows.
        assert!(ix.heap_bytes() <= (1 << 20) * 5 + 64, "{}", ix.heap_bytes());
        for id in (1..=917_504u32).step_by(997) {
            assert_eq!(ix.find(hash(id), |i| i == id), Some(id));
        }
    }

    proptest! {
        #[test]
        fn model(ops in proptest::collection::vec((0u64..16, 1u32..40, any::<bool>()), 0..200)) {
            let mut ix = SeriesIndex::default();
            let mut model: BTreeSet<(u64, u32)> = BTreeSet::new();
            let mut hashes = Hashes::default();
            for (hash, id, add) in ops {
                // Hashes 0..16 all collide in pairs on their low bits through `| 1<<33`.
                let hash = hash | ((hash & 1) << 33);
                if add {
                    // An id is one series: one label set, one hash.
                    if hashes.0.get(&id).is_none_or(|&h| h == hash) && model.insert((hash as u32 as u64, id)) {
                        hashes.0.insert(id, hash);
                        ix.insert(hash, id, hashes.of());
                    }
                } else {
                    let removed = model.remove(&(hash as u32 as u64, id));
                    prop_assert_eq!(ix.remove(hash, id), removed);
                    if removed {
                        hashes.0.remove(&id);
                    }
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
            let mut hashes = Hashes::default();
            for (hash, id) in ops {
                let hash = hash | ((hash & 1) << 33);
                if hashes.0.get(&id).is_some_and(|&h| h != hash) {
                    continue;
                }
                // "The same series" is the same id modulo 5: several ids can match.
                let same = |i: SeriesId| i % 5 == id % 5;
                let want = one.find(hash, same);
                if want.is_none() {
                    hashes.0.insert(id, hash);
                    one.insert(hash, id, hashes.of());
                }
                prop_assert_eq!(two.find_or_insert(hash, id, same, hashes.of()), want);
                prop_assert_eq!(two.len(), one.len());
            }
        }

        /// Growth, by inserts or by `reserve`, re-files every series by the hash `hash_of`
        /// gives: each is found again under its own hash afterwards, and removes still find
        /// what they remove.
        #[test]
        fn growth_refiles_every_series(
            n in 1u32..3_000,
            reserve_at in 0u32..3_000,
            extra in 0usize..5_000,
            seed in any::<u64>(),
            removed in proptest::collection::vec(1u32..3_000, 0..50),
        ) {
            let hash = |id: SeriesId| (u64::from(id) ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
            let mut ix = SeriesIndex::default();
            for id in 1..=n {
                if id == reserve_at {
                    ix.reserve(extra, hash);
                }
                ix.insert(hash(id), id, hash);
            }
            let mut live: BTreeSet<u32> = (1..=n).collect();
            for id in removed {
                prop_assert_eq!(ix.remove(hash(id), id), live.remove(&id));
            }
            prop_assert_eq!(ix.len(), live.len());
            for id in 1..=n {
                let want = live.contains(&id).then_some(id);
                prop_assert_eq!(ix.find(hash(id), |i| i == id), want);
            }
        }
    }
}
