//! The per-target scrape cache: raw series bytes of an exposition line → the shard and series
//! ref its samples go to, plus what staleness needs to know about the series.
//!
//! A hit costs one comparison when the line's series follows the previous line's in the slab,
//! as it does when a target answers in the same order as last time (`get_hinted`), or else
//! one hash and one probe; only a miss decodes labels, applies target labels and
//! metric relabeling, and computes the owning shard. Entries live in a slab (`Vec`) indexed by
//! the map, so a scrape can refer to "the entries it created" by index until the shards answer
//! with refs. Series a successful scrape no longer contains get a staleness marker once; entries
//! not seen in two successful scrapes are forgotten. The cache never talks to a shard itself.

use hashbrown::{HashMap, HashTable};

use shards::labels::Labels;

/// Index of an entry in the slab.
pub type EntryId = u32;

/// Where a series' samples go.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    /// Relabeling dropped the series: its samples are skipped.
    pub dropped: bool,
    pub shard: u32,
    /// The shard's ref; 0 until the shard answered (refs start at 1). Until then the cache
    /// also keeps the series' labels (`labels`).
    pub series_ref: u64,
    /// The last successful scrape (its number) that contained the series.
    pub seen: u64,
    /// In scrape `pending_scrape`, the series is `new_series[pending]` of its shard's batch.
    pub pending: u32,
    pub pending_scrape: u64,
    /// The series came with its own timestamps: it gets no staleness markers, as in
    /// Prometheus (its time is the exporter's, not the scrape's).
    pub explicit_timestamps: bool,
    /// One of the synthetic series (`up`, ...): written after every scrape, stale only when
    /// the target goes away.
    pub synthetic: bool,
}

#[derive(Default)]
pub struct ScrapeCache {
    /// Slab ids keyed by the hash of their key, compared against `keys`: each key is held
    /// once (with a thousand series a target, a second copy in the map cost ~100 bytes a
    /// series).
    index: HashTable<EntryId>,
    hasher: ahash::RandomState,
    entries: Vec<CacheEntry>,
    /// The key of each slab slot, for eviction; empty for a free slot.
    keys: Vec<Box<[u8]>>,
    free: Vec<EntryId>,
    /// The labels of entries whose ref is not known yet, so that a series whose first
    /// append failed is sent again. Beside the slab rather than in each entry: after the
    /// first scrape almost no entry needs them, and an `Option<Labels>` per entry cost 16
    /// bytes a series.
    labels: HashMap<EntryId, Labels, ahash::RandomState>,
}

impl ScrapeCache {
    pub fn new() -> Self {
        ScrapeCache::default()
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<EntryId> {
        let keys = &self.keys;
        self.index
            .find(self.hasher.hash_one(key), |&id| *keys[id as usize] == *key)
            .copied()
    }

    /// `get`, trying `hint` first. Targets list their series in the same order every time and
    /// a first scrape fills the slab in that order, so the entry after the previous line's is
    /// usually this line's: comparing its key is cheaper than hashing the line and probing
    /// the table (whose buckets, with thousands of targets, are rarely in the CPU cache).
    #[inline]
    pub fn get_hinted(&self, key: &[u8], hint: EntryId) -> Option<EntryId> {
        // A live entry's key is never empty and is unique, so equal keys mean the entry the
        // map would return.
        match self.keys.get(hint as usize) {
            Some(k) if !k.is_empty() && **k == *key => Some(hint),
            _ => self.get(key),
        }
    }

    /// The series bytes of entry `id`; empty for a free slot or past the end.
    #[inline]
    pub fn key(&self, id: EntryId) -> &[u8] {
        self.keys.get(id as usize).map_or(&[], |k| k)
    }

    #[inline]
    pub fn entry(&self, id: EntryId) -> &CacheEntry {
        &self.entries[id as usize]
    }

    #[inline]
    pub fn entry_mut(&mut self, id: EntryId) -> &mut CacheEntry {
        &mut self.entries[id as usize]
    }

    pub fn insert(&mut self, key: &[u8], entry: CacheEntry) -> EntryId {
        let id = match self.free.pop() {
            Some(id) => {
                self.entries[id as usize] = entry;
                self.keys[id as usize] = key.into();
                id
            }
            None => {
                self.entries.push(entry);
                self.keys.push(key.into());
                (self.entries.len() - 1) as EntryId
            }
        };
        let (keys, hasher) = (&self.keys, &self.hasher);
        let hash = hasher.hash_one(key);
        match self
            .index
            .find_mut(hash, |&old| *keys[old as usize] == *key)
        {
            // As a map insert would: the key now names the new slot.
            Some(old) => *old = id,
            None => {
                self.index
                    .insert_unique(hash, id, |&i| hasher.hash_one(&*keys[i as usize]));
            }
        }
        id
    }

    /// Keeps the labels of entry `id` until its ref is known.
    pub fn keep_labels(&mut self, id: EntryId, labels: Labels) {
        self.labels.insert(id, labels);
    }

    /// The labels of entry `id` while its ref is not known.
    pub fn labels(&self, id: EntryId) -> Option<&Labels> {
        self.labels.get(&id)
    }

    /// Records the ref a shard gave to a series this cache created.
    pub fn set_ref(&mut self, id: EntryId, series_ref: u64) {
        self.entries[id as usize].series_ref = series_ref;
        self.forget_labels(id);
    }

    fn forget_labels(&mut self, id: EntryId) {
        if self.labels.remove(&id).is_some() && self.labels.is_empty() {
            // A first scrape filled the map with every series: free its table rather than
            // keep it for the few new series of later scrapes.
            self.labels.shrink_to(0);
        }
    }

    /// Entries whose series were in successful scrape `scrape` and are neither dropped nor
    /// timestamped by the exporter: the ones that need a staleness marker when they vanish.
    /// The synthetic series only when `synthetic` (the target is gone).
    pub fn stale_candidates(
        &self,
        scrape: u64,
        synthetic: bool,
    ) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.live().filter_map(move |e| {
            let wanted = if e.synthetic {
                synthetic
            } else {
                e.seen == scrape && !e.explicit_timestamps
            };
            (wanted && !e.dropped && e.series_ref != 0).then_some((e.shard, e.series_ref))
        })
    }

    /// Forgets entries not seen since before successful scrape `keep_since`.
    pub fn evict_older_than(&mut self, keep_since: u64) {
        for id in 0..self.entries.len() {
            if self.keys[id].is_empty() || self.entries[id].seen >= keep_since {
                continue;
            }
            let hash = self.hasher.hash_one(&*self.keys[id]);
            if let Ok(e) = self.index.find_entry(hash, |&i| i as usize == id) {
                e.remove();
            }
            self.keys[id] = Box::default();
            self.forget_labels(id as EntryId);
            self.free.push(id as EntryId);
        }
    }

    /// Forgets everything (a shard no longer knows our refs).
    pub fn clear(&mut self) {
        self.index.clear();
        self.entries.clear();
        self.keys.clear();
        self.free.clear();
        self.labels = HashMap::default();
    }

    fn live(&self) -> impl Iterator<Item = &CacheEntry> {
        self.entries
            .iter()
            .zip(&self.keys)
            .filter(|(_, k)| !k.is_empty())
            .map(|(e, _)| e)
    }
}

impl std::fmt::Debug for ScrapeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeCache")
            .field("len", &self.len())
            .field("free", &self.free.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> CacheEntry {
        CacheEntry {
            dropped: false,
            shard: 0,
            series_ref: 0,
            seen: 0,
            pending: 0,
            pending_scrape: 0,
            explicit_timestamps: false,
            synthetic: false,
        }
    }

    #[test]
    fn labels_are_kept_until_the_ref_is_known_or_the_entry_evicted() {
        let mut c = ScrapeCache::new();
        let x = Labels::from_pairs([("__name__", "x")]).unwrap();
        let a = c.insert(b"a", entry());
        let b = c.insert(b"b", entry());
        c.keep_labels(a, x.clone());
        c.keep_labels(b, x.clone());
        assert_eq!(c.labels(a), Some(&x));
        c.set_ref(a, 7);
        assert_eq!(c.entry(a).series_ref, 7);
        assert!(c.labels(a).is_none());
        assert_eq!(c.labels(b), Some(&x));
        // Evicted before its ref came: its labels go with it, and a reused slot has none.
        c.entry_mut(a).seen = 5;
        c.evict_older_than(1);
        assert!(c.labels(b).is_none());
        let d = c.insert(b"d", entry());
        assert_eq!(d, b);
        assert!(c.labels(d).is_none());
        assert_eq!(c.get(b"a"), Some(a));
    }

    #[test]
    fn hinted_lookups_agree_with_the_map() {
        let mut c = ScrapeCache::new();
        let a = c.insert(b"a{x=\"1\"}", entry());
        let b = c.insert(b"b", entry());
        // Right hint, wrong hint, hint past the end: always the map's answer.
        assert_eq!(c.get_hinted(b"b", a + 1), Some(b));
        assert_eq!(c.get_hinted(b"b", a), Some(b));
        assert_eq!(c.get_hinted(b"a{x=\"1\"}", 99), Some(a));
        assert_eq!(c.get_hinted(b"c", b), None);
        // An evicted entry's slot is not a hit, and a reused slot answers for its new key.
        c.entry_mut(a).seen = 0;
        c.entry_mut(b).seen = 5;
        c.evict_older_than(1);
        assert_eq!(c.get_hinted(b"a{x=\"1\"}", a), None);
        assert_eq!(c.get_hinted(b"", a), None);
        let d = c.insert(b"d", entry());
        assert_eq!(d, a);
        assert_eq!(c.get_hinted(b"d", a), Some(d));
        assert_eq!(c.get_hinted(b"a{x=\"1\"}", a), None);
    }
}
