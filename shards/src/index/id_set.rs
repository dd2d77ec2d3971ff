//! `IdSet`: a set of series ids as a bitmap over the window between its lowest and highest
//! id: the set of every live series of the head (the base from which negative matchers
//! subtract) and the dense (name, value) lists of its postings. It owns only the ids; which
//! series they are is the head's business.
//!
//! Memory is why it exists: as a sorted `Vec<u32>` it cost 4 bytes a series (plus up to
//! as much again of growth capacity). The head hands out ids increasingly and garbage
//! collection removes the old ones, so the live ids fill most of the window between the
//! lowest and the highest: a bitmap over that window costs ~1 bit a series.
//!
//! Layout: bit `i % 64` of `words[i / 64]` is set when id `base + i` is in the set. `base` is
//! a multiple of 64, and neither the first nor the last word is ever zero (trimmed on
//! removal), so the window follows the live ids as they move.

#[derive(Default, Clone)]
pub struct IdSet {
    base: u32,
    words: Vec<u64>,
    len: usize,
}

impl IdSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Builds the set of `ids` (sorted, no duplicates) with no spare capacity.
    pub fn from_sorted(ids: &[u32]) -> Self {
        let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
            return Self::new();
        };
        let base = first & !63;
        let mut words = vec![0u64; ((last - base) / 64) as usize + 1];
        for &id in ids {
            let i = id - base;
            words[(i / 64) as usize] |= 1 << (i % 64);
        }
        IdSet {
            base,
            words,
            len: ids.len(),
        }
    }

    /// Words of the window, what the set costs as a bitmap (8 bytes each).
    pub fn window_words(&self) -> usize {
        self.words.len()
    }

    pub fn contains(&self, id: u32) -> bool {
        let Some(i) = id.checked_sub(self.base) else {
            return false;
        };
        let (w, b) = ((i / 64) as usize, i % 64);
        self.words.get(w).is_some_and(|x| x >> b & 1 == 1)
    }

    /// Adds `id`; false if it was there already. Ids below the window (WAL replay out of
    /// order) widen it at the front.
    pub fn insert(&mut self, id: u32) -> bool {
        if self.words.is_empty() {
            self.base = id & !63;
        } else if id < self.base {
            let new_base = id & !63;
            let extra = ((self.base - new_base) / 64) as usize;
            self.words.splice(0..0, std::iter::repeat_n(0, extra));
            self.base = new_base;
        }
        let i = id - self.base;
        let (w, b) = ((i / 64) as usize, i % 64);
        if w >= self.words.len() {
            // An eighth more than needed rather than Vec's doubling: the window grows a word
            // per 64 ids, so this still reallocates rarely, and a large set keeps at most
            // ~12 % of spare capacity instead of up to 100 %.
            if w >= self.words.capacity() {
                let spare = ((w + 1) / 8).max(4);
                self.words.reserve_exact(w + 1 + spare - self.words.len());
            }
            self.words.resize(w + 1, 0);
        }
        let was = self.words[w] >> b & 1 == 1;
        self.words[w] |= 1 << b;
        if !was {
            self.len += 1;
        }
        !was
    }

    /// Removes every id of `ids` that is in the set, then trims the window.
    pub fn remove_all(&mut self, ids: &[u32]) {
        for &id in ids {
            let Some(i) = id.checked_sub(self.base) else {
                continue;
            };
            let (w, b) = ((i / 64) as usize, i % 64);
            if let Some(x) = self.words.get_mut(w) {
                if *x >> b & 1 == 1 {
                    *x &= !(1 << b);
                    self.len -= 1;
                }
            }
        }
        while self.words.last() == Some(&0) {
            self.words.pop();
        }
        let lead = self.words.iter().take_while(|&&x| x == 0).count();
        if lead > 0 {
            self.words.drain(..lead);
            self.base += (lead * 64) as u32;
        }
        if self.words.len() * 4 < self.words.capacity() {
            self.words.shrink_to_fit();
        }
    }

    /// The ids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(move |(w, &x)| {
            let start = self.base + (w as u32) * 64;
            BitsOf(x).map(move |b| start + b)
        })
    }

    pub fn to_vec(&self) -> Vec<u32> {
        let mut v = Vec::with_capacity(self.len);
        v.extend(self.iter());
        v
    }

    /// The ids in any of `sets`, ascending: their words OR-ed over the joint window, no
    /// merge of decoded lists.
    pub fn union_to_vec(sets: &[&IdSet]) -> Vec<u32> {
        let sets: Vec<&IdSet> = sets.iter().copied().filter(|s| !s.is_empty()).collect();
        let Some(base) = sets.iter().map(|s| s.base).min() else {
            return Vec::new();
        };
        let words = sets
            .iter()
            .map(|s| ((s.base - base) / 64) as usize + s.words.len())
            .max()
            .unwrap_or(0);
        let mut union = IdSet {
            base,
            words: vec![0; words],
            len: 0,
        };
        for s in &sets {
            let at = ((s.base - base) / 64) as usize;
            for (u, &x) in union.words[at..].iter_mut().zip(&s.words) {
                *u |= x;
            }
        }
        union.len = union.words.iter().map(|x| x.count_ones() as usize).sum();
        union.to_vec()
    }

    /// Bytes allocated on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.words.capacity() * std::mem::size_of::<u64>()
    }
}

/// The set bit positions of a word, lowest first.
struct BitsOf(u64);

impl Iterator for BitsOf {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        if self.0 == 0 {
            return None;
        }
        let b = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn a_million_increasing_ids_take_a_bit_each() {
        let mut s = IdSet::new();
        for id in 0..1_000_000 {
            assert!(s.insert(id));
        }
        assert!(!s.insert(5));
        assert_eq!(s.len(), 1_000_000);
        assert!(s.heap_bytes() <= 2 * 1_000_000 / 8 + 64);
        // Garbage collection of the oldest half moves the window.
        let old: Vec<u32> = (0..500_000).collect();
        s.remove_all(&old);
        assert_eq!(s.len(), 500_000);
        assert_eq!(s.iter().next(), Some(500_000));
        assert_eq!(s.words.len(), 500_000 / 64 + 1);
        assert_eq!(s.base, 499_968);
    }

    #[test]
    fn union_ors_windows_apart_and_overlapping() {
        let a = IdSet::from_sorted(&[1, 64, 200]);
        let b = IdSet::from_sorted(&[64, 65, 1_000_000]);
        let c = IdSet::new();
        assert_eq!(
            IdSet::union_to_vec(&[&b, &c, &a]),
            [1, 64, 65, 200, 1_000_000]
        );
        assert_eq!(IdSet::union_to_vec(&[&c]), [] as [u32; 0]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32),
        Remove(Vec<u32>),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Ids mostly near each other, sometimes far, as replay and churn produce them.
        let id = prop_oneof![8 => 0u32..2_000, 1 => 0u32..200_000];
        prop_oneof![
            4 => id.clone().prop_map(Op::Insert),
            1 => proptest::collection::vec(id, 0..20).prop_map(Op::Remove),
        ]
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreeset(ops in proptest::collection::vec(op(), 0..200)) {
            let mut s = IdSet::new();
            let mut model = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Insert(id) => prop_assert_eq!(s.insert(id), model.insert(id)),
                    Op::Remove(ids) => {
                        s.remove_all(&ids);
                        for id in ids {
                            model.remove(&id);
                        }
                    }
                }
                prop_assert_eq!(s.len(), model.len());
                prop_assert_eq!(s.is_empty(), model.is_empty());
                prop_assert_eq!(s.to_vec(), model.iter().copied().collect::<Vec<_>>());
                if let Some(&lo) = model.iter().next() {
                    prop_assert!(s.contains(lo));
                    prop_assert!(!s.contains(lo.wrapping_sub(1)) || model.contains(&lo.wrapping_sub(1)));
                }
            }
        }
    }
}
