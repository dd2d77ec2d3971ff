//! The per-target scrape cache: the identity of a series as an exposition line writes it → the
//! shard and series ref its samples go to, plus what staleness needs to know about the series.
//!
//! A series is known by the 128-bit hash of its raw bytes (`series_hash`, where the argument
//! that a collision can be ignored is), not by the bytes: at a thousand series a target the
//! text cost ~100 bytes a series, more than all the rest of an entry. A hit costs one hash
//! comparison when the line's series follows the previous line's in the slab, as it does when
//! a target answers in the same order as last time (`get_hinted`), or else one probe; only a
//! miss decodes labels, applies target labels and metric relabeling, and computes the owning
//! shard. Entries live in a slab (`Vec`) indexed by the map, so a scrape can refer to "the
//! entries it created" by index until the shards answer with refs. Series a successful scrape
//! no longer contains get a staleness marker once; entries not seen in two successful scrapes
//! are forgotten. The cache never talks to a shard itself, and never needs a series' text
//! again once it has its hash.
//!
//! Memory per series (a target of 1,000 series): the entry 24 bytes (the key with the
//! series' length in it, the shard's 32-bit ref, a 16-bit scrape number, the shard and the
//! flags in 16 bits), the table ~5–10 (a 4-byte id and a control byte per bucket, buckets a
//! power of two at most 7/8 full); the free list 4 bytes per slot evicted and not yet
//! reused; the side map of unacknowledged series only between a series' first scrape and the
//! shard's answer. A shard's refs fit 32 bits: the head refuses to make a series whose ref
//! would not (`shards::head`'s `series_id`).

use hashbrown::{HashMap, HashTable};

use shards::labels::Labels;

use crate::scrape::series_hash::{series_hash, KnownSeries, SeriesHash};

/// Index of an entry in the slab.
pub type EntryId = u32;

/// The number of a scrape of the target, as entries keep it (see `ScrapeAppender`'s
/// renumbering before it wraps).
pub type ScrapeNumber = u16;

/// Shards an entry can name: the low 12 bits of `shard_flags`.
pub const MAX_SHARDS: usize = 1 << 12;
const SHARD: u16 = 0x0fff;
/// Relabeling dropped the series: its samples are skipped.
const DROPPED: u16 = 1 << 12;
/// The series came with its own timestamps: it gets no staleness markers, as in Prometheus
/// (its time is the exporter's, not the scrape's).
const EXPLICIT_TIMESTAMPS: u16 = 1 << 13;
/// One of the synthetic series (`up`, ...): written after every scrape, stale only when the
/// target goes away.
const SYNTHETIC: u16 = 1 << 14;
/// A free slot of the slab.
const FREE: u16 = 1 << 15;

/// Where a series' samples go: 24 bytes, 8-aligned.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    key: SeriesHash,
    /// The shard's ref; 0 until the shard answered (refs start at 1). Until then the cache
    /// also keeps the series' labels (`Unacknowledged`).
    series_ref: u32,
    /// The last successful scrape (its number) that contained the series.
    pub seen: ScrapeNumber,
    /// The shard (`SHARD`) and the flags above.
    shard_flags: u16,
}

const _: () = assert!(std::mem::size_of::<CacheEntry>() == 24);

impl CacheEntry {
    /// A series whose samples go to `shard` (below `MAX_SHARDS`: `ShardBatches` has no more).
    pub fn series(shard: usize, explicit_timestamps: bool) -> Self {
        debug_assert!(shard < MAX_SHARDS);
        let flags = if explicit_timestamps {
            EXPLICIT_TIMESTAMPS
        } else {
            0
        };
        CacheEntry {
            key: SeriesHash::default(),
            series_ref: 0,
            seen: 0,
            shard_flags: (shard as u16 & SHARD) | flags,
        }
    }

    /// A series relabeling dropped.
    pub fn dropped() -> Self {
        CacheEntry {
            shard_flags: DROPPED,
            ..CacheEntry::series(0, false)
        }
    }

    #[inline(always)]
    pub fn shard(&self) -> usize {
        usize::from(self.shard_flags & SHARD)
    }

    /// The shard's ref, 0 until the shard answered.
    #[inline(always)]
    pub fn series_ref(&self) -> u64 {
        u64::from(self.series_ref)
    }

    #[inline(always)]
    pub fn is_dropped(&self) -> bool {
        self.shard_flags & DROPPED != 0
    }

    pub fn is_synthetic(&self) -> bool {
        self.shard_flags & SYNTHETIC != 0
    }

    pub fn set_synthetic(&mut self) {
        self.shard_flags |= SYNTHETIC;
    }

    fn has_explicit_timestamps(&self) -> bool {
        self.shard_flags & EXPLICIT_TIMESTAMPS != 0
    }

    #[inline(always)]
    fn is_free(&self) -> bool {
        self.shard_flags & FREE != 0
    }
}

/// A series the shard has not given a ref yet: its labels, so that a series whose first
/// append failed is sent again, and where in the scrape's batch it is.
#[derive(Debug, Clone)]
pub struct Unacknowledged {
    pub labels: Labels,
    /// In scrape `pending_scrape`, the series is `new_series[pending]` of its shard's batch.
    pub pending: u32,
    pub pending_scrape: ScrapeNumber,
}

#[derive(Default)]
pub struct ScrapeCache {
    /// Slab ids filed under their key's hash, compared against the entries' keys.
    index: HashTable<EntryId>,
    entries: Vec<CacheEntry>,
    free: Vec<EntryId>,
    /// Beside the slab rather than in each entry: after the first scrape almost no entry
    /// needs them, and labels and batch position in every entry cost 28 bytes a series.
    unacknowledged: HashMap<EntryId, Unacknowledged, ahash::RandomState>,
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

    /// The entry of the series whose bytes `series` hashes to.
    #[inline]
    pub fn get(&self, series: SeriesHash) -> Option<EntryId> {
        let entries = &self.entries;
        self.index
            .find(series.short(), |&id| entries[id as usize].key == series)
            .copied()
    }

    /// `get`, trying `hint` first. Targets list their series in the same order every time and
    /// a first scrape fills the slab in that order, so the entry after the previous line's is
    /// usually this line's: comparing its key is cheaper than probing the table (whose
    /// buckets, with thousands of targets, are rarely in the CPU cache).
    #[inline]
    pub fn get_hinted(&self, series: SeriesHash, hint: EntryId) -> Option<EntryId> {
        // A live entry's key is unique, so equal keys mean the entry the map would return.
        match self.entries.get(hint as usize) {
            Some(e) if e.key == series && !e.is_free() => Some(hint),
            _ => self.get(series),
        }
    }

    /// What the parser may expect of a line whose series is entry `id`'s; nothing for a free
    /// slot, past the end, or a series too long to keep the length of.
    #[inline]
    pub fn known(&self, id: EntryId) -> KnownSeries {
        match self.entries.get(id as usize) {
            Some(e) if !e.is_free() => KnownSeries {
                len: e.key.series_len(),
                hash: e.key,
            },
            _ => KnownSeries::NONE,
        }
    }

    #[inline]
    pub fn entry(&self, id: EntryId) -> &CacheEntry {
        &self.entries[id as usize]
    }

    #[inline]
    pub fn entry_mut(&mut self, id: EntryId) -> &mut CacheEntry {
        &mut self.entries[id as usize]
    }

    /// Caches `entry` for the series whose bytes are `series`.
    pub fn insert(&mut self, series: &[u8], entry: CacheEntry) -> EntryId {
        self.insert_hashed(series_hash(series), entry)
    }

    /// `insert` for a series whose bytes hash to `hash`, when the caller has hashed them
    /// already (a lookup that missed).
    pub fn insert_hashed(&mut self, hash: SeriesHash, mut entry: CacheEntry) -> EntryId {
        entry.key = hash;
        entry.shard_flags &= !FREE;
        let key = entry.key;
        let id = match self.free.pop() {
            Some(id) => {
                self.entries[id as usize] = entry;
                id
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as EntryId
            }
        };
        let entries = &self.entries;
        match self
            .index
            .find_mut(key.short(), |&old| entries[old as usize].key == key)
        {
            // As a map insert would: the key now names the new slot. (The appender looks a
            // series up before inserting it, so the old slot is one the index forgot.)
            Some(old) => *old = id,
            None => {
                self.index
                    .insert_unique(key.short(), id, |&i| entries[i as usize].key.short());
            }
        }
        id
    }

    /// Keeps what entry `id` needs until its ref is known.
    pub fn keep_unacknowledged(&mut self, id: EntryId, u: Unacknowledged) {
        self.unacknowledged.insert(id, u);
    }

    /// What entry `id` needs while its ref is not known.
    pub fn unacknowledged_mut(&mut self, id: EntryId) -> Option<&mut Unacknowledged> {
        self.unacknowledged.get_mut(&id)
    }

    /// Records the ref a shard gave to a series this cache created. A ref beyond 32 bits,
    /// which no head gives, leaves the series unacknowledged: its labels are sent again and
    /// its samples are never stored under a wrong ref.
    pub fn set_ref(&mut self, id: EntryId, series_ref: u64) {
        if let Ok(r) = u32::try_from(series_ref) {
            self.entries[id as usize].series_ref = r;
            self.forget_unacknowledged(id);
        }
    }

    fn forget_unacknowledged(&mut self, id: EntryId) {
        if self.unacknowledged.remove(&id).is_some() && self.unacknowledged.is_empty() {
            // A first scrape filled the map with every series: free its table rather than
            // keep it for the few new series of later scrapes.
            self.unacknowledged.shrink_to(0);
        }
    }

    /// Entries whose series were in successful scrape `scrape` (none when `None`) and are
    /// neither dropped nor timestamped by the exporter: the ones that need a staleness marker
    /// when they vanish. The synthetic series only when `synthetic` (the target is gone).
    pub fn stale_candidates(
        &self,
        scrape: Option<ScrapeNumber>,
        synthetic: bool,
    ) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.live().filter_map(move |e| {
            let wanted = if e.is_synthetic() {
                synthetic
            } else {
                Some(e.seen) == scrape && !e.has_explicit_timestamps()
            };
            (wanted && !e.is_dropped() && e.series_ref != 0).then_some((e.shard(), e.series_ref()))
        })
    }

    /// Forgets entries not seen since before successful scrape `keep_since`.
    pub fn evict_older_than(&mut self, keep_since: ScrapeNumber) {
        for id in 0..self.entries.len() {
            let e = &mut self.entries[id];
            if e.is_free() || e.seen >= keep_since {
                continue;
            }
            e.shard_flags = FREE;
            if let Ok(found) = self.index.find_entry(e.key.short(), |&i| i as usize == id) {
                found.remove();
            }
            self.forget_unacknowledged(id as EntryId);
            self.free.push(id as EntryId);
        }
    }

    /// Rewrites every entry's `seen` with `renumber`, and forgets in which scrape an
    /// unacknowledged series was last sent (see `ScrapeAppender`'s scrape numbers).
    pub fn renumber_scrapes(&mut self, renumber: impl Fn(ScrapeNumber) -> ScrapeNumber) {
        for e in &mut self.entries {
            e.seen = renumber(e.seen);
        }
        for u in self.unacknowledged.values_mut() {
            u.pending_scrape = 0;
        }
    }

    /// Forgets everything (a shard no longer knows our refs).
    pub fn clear(&mut self) {
        self.index.clear();
        self.entries.clear();
        self.free.clear();
        self.unacknowledged = HashMap::default();
    }

    fn live(&self) -> impl Iterator<Item = &CacheEntry> {
        self.entries.iter().filter(|e| !e.is_free())
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
    use crate::scrape::series_hash::LEN_MAX;

    fn h(series: &[u8]) -> SeriesHash {
        series_hash(series)
    }

    fn unacknowledged(labels: &Labels) -> Unacknowledged {
        Unacknowledged {
            labels: labels.clone(),
            pending: 0,
            pending_scrape: 1,
        }
    }

    #[test]
    fn labels_are_kept_until_the_ref_is_known_or_the_entry_evicted() {
        let mut c = ScrapeCache::new();
        let x = Labels::from_pairs([("__name__", "x")]).unwrap();
        let a = c.insert(b"a", CacheEntry::series(0, false));
        let b = c.insert(b"b", CacheEntry::series(0, false));
        c.keep_unacknowledged(a, unacknowledged(&x));
        c.keep_unacknowledged(b, unacknowledged(&x));
        assert_eq!(
            c.unacknowledged_mut(a).map(|u| u.labels.clone()),
            Some(x.clone())
        );
        c.set_ref(a, 7);
        assert_eq!(c.entry(a).series_ref(), 7);
        assert!(c.unacknowledged_mut(a).is_none());
        assert!(c.unacknowledged_mut(b).is_some());
        // Evicted before its ref came: its labels go with it, and a reused slot has none.
        c.entry_mut(a).seen = 5;
        c.evict_older_than(1);
        assert!(c.unacknowledged_mut(b).is_none());
        let d = c.insert(b"d", CacheEntry::series(1, true));
        assert_eq!(d, b);
        assert!(c.unacknowledged_mut(d).is_none());
        assert_eq!(c.get(h(b"a")), Some(a));
        assert_eq!(c.get(h(b"b")), None);
        assert_eq!(c.entry(d).shard(), 1);
    }

    #[test]
    fn hinted_lookups_agree_with_the_map() {
        let mut c = ScrapeCache::new();
        let a = c.insert(b"a{x=\"1\"}", CacheEntry::series(0, false));
        let b = c.insert(b"b", CacheEntry::series(0, false));
        // Right hint, wrong hint, hint past the end: always the map's answer.
        assert_eq!(c.get_hinted(h(b"b"), a + 1), Some(b));
        assert_eq!(c.get_hinted(h(b"b"), a), Some(b));
        assert_eq!(c.get_hinted(h(b"a{x=\"1\"}"), 99), Some(a));
        assert_eq!(c.get_hinted(h(b"c"), b), None);
        // An evicted entry's slot is not a hit, and a reused slot answers for its new key.
        c.entry_mut(a).seen = 0;
        c.entry_mut(b).seen = 5;
        c.evict_older_than(1);
        assert_eq!(c.get_hinted(h(b"a{x=\"1\"}"), a), None);
        assert_eq!(c.known(a), KnownSeries::NONE);
        let d = c.insert(b"d", CacheEntry::series(0, false));
        assert_eq!(d, a);
        assert_eq!(c.get_hinted(h(b"d"), a), Some(d));
        assert_eq!(c.get_hinted(h(b"a{x=\"1\"}"), a), None);
    }

    #[test]
    fn entries_know_their_series_length_and_flags_apart() {
        let mut c = ScrapeCache::new();
        let long = vec![b'a'; LEN_MAX + 1];
        let at_max = vec![b'b'; LEN_MAX];
        let l = c.insert(&long, CacheEntry::dropped());
        let m = c.insert(&at_max, CacheEntry::series(MAX_SHARDS - 1, true));
        c.entry_mut(m).set_synthetic();
        // Too long for the parser's hint, still cached; the flags untouched by the length.
        assert_eq!(c.known(l).len, 0);
        assert_eq!(c.get(h(&long)), Some(l));
        assert!(c.entry(l).is_dropped() && !c.entry(l).is_synthetic());
        assert_eq!(c.known(m), KnownSeries::of(&at_max));
        let e = c.entry(m);
        assert!(!e.is_dropped() && e.is_synthetic() && e.has_explicit_timestamps());
        assert_eq!(e.shard(), MAX_SHARDS - 1);
    }

    #[test]
    fn refs_up_to_32_bits_are_kept_and_others_never_stored() {
        let mut c = ScrapeCache::new();
        let x = Labels::from_pairs([("__name__", "x")]).unwrap();
        let a = c.insert(b"a", CacheEntry::series(3, false));
        let b = c.insert(b"b", CacheEntry::series(3, false));
        c.keep_unacknowledged(a, unacknowledged(&x));
        c.keep_unacknowledged(b, unacknowledged(&x));
        c.set_ref(a, u64::from(u32::MAX));
        c.set_ref(b, 1 << 32);
        assert_eq!(c.entry(a).series_ref(), u64::from(u32::MAX));
        assert!(c.unacknowledged_mut(a).is_none());
        // Not truncated to 0 (or anything else): still waiting, its labels kept.
        assert_eq!(c.entry(b).series_ref(), 0);
        assert!(c.unacknowledged_mut(b).is_some());
        c.entry_mut(a).seen = 2;
        let stale: Vec<_> = c.stale_candidates(Some(2), false).collect();
        assert_eq!(stale, vec![(3, u64::from(u32::MAX))]);
    }

    #[test]
    fn renumbering_keeps_the_order_of_scrapes() {
        let mut c = ScrapeCache::new();
        let x = Labels::from_pairs([("__name__", "x")]).unwrap();
        let a = c.insert(b"a", CacheEntry::series(0, false));
        c.keep_unacknowledged(a, unacknowledged(&x));
        c.entry_mut(a).seen = 7;
        c.renumber_scrapes(|n| n - 5);
        assert_eq!(c.entry(a).seen, 2);
        assert_eq!(c.unacknowledged_mut(a).map(|u| u.pending_scrape), Some(0));
    }
}
