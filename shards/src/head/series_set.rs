//! `SeriesSet`: the head's series, indexed by ref, in fixed-size pages.
//!
//! A single `Vec<Option<MemSeries>>` would double by reallocating and copying every series
//! each time the count crosses a power of two: at a million series that is a 120 MiB copy
//! (and as many freshly faulted pages) in the middle of an append. Pages of `PAGE` slots
//! never move; growing adds one page.

use super::MemSeries;

const PAGE: usize = 4096;

#[derive(Default)]
pub struct SeriesSet {
    pages: Vec<Box<[Option<MemSeries>]>>,
    /// One past the highest slot ever filled: refs are `1..=len`.
    len: usize,
    live: usize,
}

impl SeriesSet {
    /// The highest ref in use (refs start at 1; 0 when empty).
    pub fn last_ref(&self) -> u64 {
        self.len as u64
    }

    pub fn live(&self) -> usize {
        self.live
    }

    fn slot(r: u64) -> Option<(usize, usize)> {
        let i = usize::try_from(r).ok()?.checked_sub(1)?;
        Some((i / PAGE, i % PAGE))
    }

    pub fn get(&self, r: u64) -> Option<&MemSeries> {
        let (p, i) = Self::slot(r)?;
        self.pages.get(p)?[i].as_ref()
    }

    pub fn get_mut(&mut self, r: u64) -> Option<&mut MemSeries> {
        let (p, i) = Self::slot(r)?;
        self.pages.get_mut(p)?[i].as_mut()
    }

    /// Puts a series at ref `r`, which must be free and not 0.
    pub fn insert(&mut self, r: u64, s: MemSeries) {
        let Some((p, i)) = Self::slot(r) else { return };
        while self.pages.len() <= p {
            self.pages.push((0..PAGE).map(|_| None).collect());
        }
        if self.pages[p][i].replace(s).is_none() {
            self.live += 1;
        }
        self.len = self.len.max(p * PAGE + i + 1);
    }

    /// Takes the series at ref `r` out; its slot stays unused (refs are never reused).
    pub fn remove(&mut self, r: u64) -> Option<MemSeries> {
        let (p, i) = Self::slot(r)?;
        let s = self.pages.get_mut(p)?[i].take();
        if s.is_some() {
            self.live -= 1;
        }
        s
    }

    /// Live series with their refs, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &MemSeries)> {
        self.pages
            .iter()
            .flat_map(|page| page.iter())
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i as u64 + 1, s)))
    }

    /// Live series, mutably, in ref order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut MemSeries> {
        self.pages
            .iter_mut()
            .flat_map(|page| page.iter_mut())
            .filter_map(Option::as_mut)
    }

    /// Bytes of the pages' slots, without what each series holds on the heap.
    pub fn slot_bytes(&self) -> usize {
        self.pages.len() * PAGE * std::mem::size_of::<Option<MemSeries>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_across_pages() {
        let mut set = SeriesSet::default();
        for r in [1u64, 2, 4096, 4097, 10_000] {
            set.insert(
                r,
                MemSeries::new(crate::labels::interned::InternedLabels::default()),
            );
        }
        assert_eq!(set.live(), 5);
        assert_eq!(set.last_ref(), 10_000);
        assert!(set.get(4097).is_some() && set.get(3).is_none() && set.get(0).is_none());
        let refs: Vec<u64> = set.iter().map(|(r, _)| r).collect();
        assert_eq!(refs, [1, 2, 4096, 4097, 10_000]);
        assert!(set.get(u64::MAX).is_none());
    }
}
