//! Rebuilding the head at start-up from chunks_head, a snapshot and WAL records, in
//! Prometheus's order and by its rules (section 9.7 of the TSDB notes): mmapped chunks are
//! attached to the series the WAL (or snapshot) declares; a series record for a label set
//! already known under another ref is mapped onto the first; samples of unknown refs are
//! dropped and counted; samples at or before a series' newest time (in chunks_head or
//! already replayed) are skipped.
//!
//! Replay never refuses a sample for being out of bounds: what the WAL holds was accepted.
//! What is older than the head's `min_valid_time` (set to the newest block's max time
//! before replay) is skipped, samples and mmapped chunks alike: it is in a block already.

use std::collections::HashMap;

use crate::chunks_head::ChunksHeadError;
use crate::labels::series_hash;
use crate::labels::symbols::SymbolId;
use crate::wal::record::{self, RefSample, RefSeries, Stone};
use crate::wal::WalError;

use super::snapshot::LabelPairs;
use super::{Head, HeadError, MmappedChunk, SeriesId};

/// What a replay read and what it had to leave out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayStats {
    pub records: u64,
    pub series: u64,
    pub samples: u64,
    /// Samples already covered by chunks_head or the snapshot.
    pub samples_skipped: u64,
    pub unknown_refs: u64,
    /// Series records that reuse a ref already declared for another label set (a WAL
    /// promcore did not write); the first declaration is kept.
    pub conflicting_refs: u64,
    pub tombstones: u64,
    pub mmapped_chunks: u64,
    /// Chunks in chunks_head for series no record declared.
    pub orphan_chunks: u64,
    pub unknown_record_types: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error(transparent)]
    Wal(#[from] WalError),
}

/// What carries over from one replay pass to the next (snapshot, then WAL): the
/// chunks_head chunks not yet attached to a series, read once per start-up, and the refs
/// mapped onto an earlier series with the same labels.
pub struct ReplayCarry {
    mmapped: PendingChunks,
    remap: HashMap<u64, u64, ahash::RandomState>,
}

impl ReplayCarry {
    /// Reads every chunk record of the head's chunks_head, to be attached to series as
    /// their records arrive. `records` is how many chunks_head's open found (a capacity
    /// hint: the list is made once, not grown by doubling).
    pub fn read(head: &Head, records: usize) -> Result<Self, ChunksHeadError> {
        let mut chunks = Vec::with_capacity(records);
        head.chunks.iterate(|c| {
            chunks.push((
                c.series_ref,
                MmappedChunk {
                    chunk_ref: c.chunk_ref,
                    min_time: c.mint,
                    max_time: c.maxt,
                },
            ));
        })?;
        Ok(ReplayCarry {
            mmapped: PendingChunks::new(chunks),
            remap: HashMap::default(),
        })
    }
}

/// The chunks_head chunks of a start-up by series ref, each series' taken at most once.
///
/// A sorted list rather than a map from ref to a list of chunks: at a million series and
/// ~300 k chunks, the map's per-series lists and its hashing were ~10 % of a restart
/// (inserting at read, `remove` at every declared series). Snapshot series come in
/// ascending ref order, so a cursor finds most refs without searching; WAL series records
/// (any order) fall back to a binary search.
struct PendingChunks {
    /// (series ref, chunk), sorted by ref; a series' chunks in chunks_head's order until
    /// taken, then by (min time, chunk ref).
    chunks: Vec<(u64, MmappedChunk)>,
    /// Per entry of `chunks`: already handed to its series.
    taken: Vec<bool>,
    /// Where the last `take` ended.
    cursor: usize,
    total: u64,
    taken_count: u64,
}

impl PendingChunks {
    fn new(mut chunks: Vec<(u64, MmappedChunk)>) -> Self {
        // Stable, so that runs of ascending refs (the chunks one scrape round cut) are
        // merged rather than sorted again, and each series' chunks stay in file order.
        chunks.sort_by_key(|&(r, _)| r);
        let total = chunks.len() as u64;
        PendingChunks {
            taken: vec![false; chunks.len()],
            chunks,
            cursor: 0,
            total,
            taken_count: 0,
        }
    }

    /// The chunks of series `r` not yet taken (empty if none, or taken before), sorted by
    /// (min time, chunk ref).
    fn take(&mut self, r: u64) -> &[(u64, MmappedChunk)] {
        let at = self.cursor;
        let cursor_is_start = (at == 0 || self.chunks[at - 1].0 < r)
            && self.chunks.get(at).is_none_or(|&(c, _)| c >= r);
        let start = if cursor_is_start {
            at
        } else {
            self.chunks.partition_point(|&(c, _)| c < r)
        };
        let end = start
            + self.chunks[start..]
                .iter()
                .take_while(|&&(c, _)| c == r)
                .count();
        self.cursor = end;
        if start == end || self.taken[start] {
            return &[];
        }
        self.taken[start..end].fill(true);
        self.taken_count += (end - start) as u64;
        let chunks = &mut self.chunks[start..end];
        // File order is time order but after a crash that rewrote chunks.
        if !chunks.is_sorted_by_key(|&(_, c)| (c.min_time, c.chunk_ref)) {
            chunks.sort_unstable_by_key(|&(_, c)| (c.min_time, c.chunk_ref));
        }
        chunks
    }

    fn not_taken(&self) -> u64 {
        self.total - self.taken_count
    }
}

/// Applies records to a head being rebuilt.
pub struct Replayer<'h> {
    head: &'h mut Head,
    mmapped: PendingChunks,
    remap: HashMap<u64, u64, ahash::RandomState>,
    series_buf: Vec<RefSeries>,
    samples_buf: Vec<RefSample>,
    stones_buf: Vec<Stone>,
    /// The symbol pairs of the series created last (see `Head::find_or_create_with_ref`).
    like: Vec<(SymbolId, SymbolId)>,
    /// While restoring a snapshot the fast way (`defer_index`): the series created, by
    /// (low 32 bits of the hash, id), still to be filed in the hash index.
    deferred: Option<Vec<(u32, SeriesId)>>,
    /// A series the fast way cannot declare was met: the pass's result is not usable.
    must_redo: bool,
    pub stats: ReplayStats,
}

impl<'h> Replayer<'h> {
    /// Starts a replay pass with what earlier passes left (`ReplayCarry::read` for the
    /// first).
    pub fn new(head: &'h mut Head, carry: ReplayCarry) -> Self {
        let stats = ReplayStats {
            mmapped_chunks: carry.mmapped.total,
            ..Default::default()
        };
        Replayer {
            head,
            mmapped: carry.mmapped,
            remap: carry.remap,
            series_buf: Vec::new(),
            samples_buf: Vec::new(),
            stones_buf: Vec::new(),
            like: Vec::new(),
            deferred: None,
            must_redo: false,
            stats,
        }
    }

    /// Restores the series of this pass (a snapshot's) without looking each label set up in
    /// the hash index; `finish_deferred` files them all at once. For a snapshot promcore
    /// wrote, whose refs and label sets are all distinct, this declares exactly what the
    /// per-series way declares; anything else makes `finish_deferred` say the pass must be
    /// done again the per-series way.
    pub fn defer_index(&mut self) {
        self.deferred = Some(Vec::new());
    }

    pub fn head(&mut self) -> &mut Head {
        self.head
    }

    /// Declares a series of a WAL series record and attaches its chunks.
    pub fn add_series(&mut self, s: &RefSeries) -> Result<(), HeadError> {
        let pairs: LabelPairs<'_> = s
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        let hash = series_hash(pairs.iter().copied());
        self.declare(s.series_ref, &pairs, hash)
    }

    /// Declares series `r` with sorted label pairs borrowed from a record (no owned label
    /// set is built: a restart declares every series once) and their `series_hash`, and
    /// attaches its chunks.
    fn declare(&mut self, r: u64, pairs: &[(&str, &str)], hash: u64) -> Result<(), HeadError> {
        self.stats.series += 1;
        if let Some(created) = self.deferred.as_mut() {
            if self.must_redo {
                return Ok(());
            }
            match self.head.create_deferred(r, pairs, &self.like) {
                Some(id) => created.push((hash as u32, id)),
                None => {
                    self.must_redo = true;
                    return Ok(());
                }
            }
        } else if self.head.series(r).is_some() {
            // Declared before: the same series again, or a ref reused for another label
            // set (a WAL promcore did not write), where the first declaration is kept.
            match self.head.lookup_pairs(pairs, hash) {
                Some(existing) if existing != r => {
                    self.remap.insert(r, existing);
                }
                Some(_) => {}
                None => self.stats.conflicting_refs += 1,
            }
            return Ok(());
        } else if let Some(existing) = self
            .head
            .find_or_create_with_ref(r, pairs, hash, &self.like)?
        {
            self.remap.insert(r, existing);
            return Ok(());
        }
        let chunks = in_order_since(self.mmapped.take(r), self.head.min_valid_time);
        // The series is new, so its time span is its chunks' (taken here rather than from
        // the packed list, which is walked to find its last chunk).
        let span = chunks
            .first()
            .zip(chunks.last())
            .map(|(f, l)| (f.min_time, l.max_time));
        if let Some(ms) = self.head.series_mut(r) {
            self.like.clear();
            self.like.extend(ms.labels());
            ms.set_mmapped(chunks);
            if let Some((lo, hi)) = span {
                self.head.min_time = self.head.min_time.min(lo);
                self.head.max_time = self.head.max_time.max(hi);
            }
        }
        Ok(())
    }

    /// Applies one WAL record.
    pub fn record(&mut self, rec: &[u8]) -> Result<(), ReplayError> {
        self.stats.records += 1;
        match record::record_type(rec) {
            Some(record::SERIES) => {
                let mut buf = std::mem::take(&mut self.series_buf);
                buf.clear();
                record::decode_series(rec, &mut buf)?;
                for s in &buf {
                    self.add_series(s)?;
                }
                self.series_buf = buf;
            }
            Some(record::SAMPLES | record::SAMPLES_V2) => {
                let mut buf = std::mem::take(&mut self.samples_buf);
                buf.clear();
                record::decode_any_samples(rec, &mut buf)?;
                // Start timestamps in the WAL from a run that stored them are dropped when
                // this head does not store them.
                let keep_starts = self.head.opts.store_start_timestamps;
                for s in &buf {
                    let st = if keep_starts { s.st } else { 0 };
                    self.sample(s.series_ref, st, s.t, s.v)?;
                }
                self.samples_buf = buf;
            }
            Some(record::TOMBSTONES) => {
                let mut buf = std::mem::take(&mut self.stones_buf);
                buf.clear();
                record::decode_tombstones(rec, &mut buf)?;
                for s in &buf {
                    let r = self
                        .remap
                        .get(&s.series_ref)
                        .copied()
                        .unwrap_or(s.series_ref);
                    for &iv in &s.intervals {
                        self.head.add_tombstone(r, iv);
                        self.stats.tombstones += 1;
                    }
                }
                self.stones_buf = buf;
            }
            _ => self.stats.unknown_record_types += 1,
        }
        Ok(())
    }

    fn sample(&mut self, r: u64, st: i64, t: i64, v: f64) -> Result<(), HeadError> {
        let r = self.remap.get(&r).copied().unwrap_or(r);
        let Some(s) = self.head.series(r) else {
            self.stats.unknown_refs += 1;
            return Ok(());
        };
        if t < self.head.min_valid_time || s.max_time().is_some_and(|m| t <= m) {
            self.stats.samples_skipped += 1;
            return Ok(());
        }
        if self.head.append_sample(r, st, t, v)? {
            self.stats.samples += 1;
        }
        Ok(())
    }

    /// Ends the last replay pass: counts chunks of series nobody declared (Prometheus drops
    /// them too).
    pub fn finish(self) -> ReplayStats {
        self.finish_pass().0
    }

    /// Ends a pass begun with `defer_index`: files its series in the hash index and hands
    /// on what the next pass needs; `None` when the pass must be done again the per-series
    /// way, on a freshly opened head (this one is then half-built).
    pub fn finish_deferred(mut self) -> Option<(ReplayStats, ReplayCarry)> {
        let created = self.deferred.take().unwrap_or_default();
        if self.must_redo || !self.head.index_deferred(&created) {
            return None;
        }
        drop(created);
        Some(self.finish_pass())
    }

    /// Ends a replay pass, handing on what the next one needs.
    pub fn finish_pass(self) -> (ReplayStats, ReplayCarry) {
        let mut stats = self.stats;
        stats.orphan_chunks = self.mmapped.not_taken();
        // Replayed samples were accepted once; they are not "appended" again.
        self.head.stats.samples_appended -= stats.samples;
        let carry = ReplayCarry {
            mmapped: self.mmapped,
            remap: self.remap,
        };
        (stats, carry)
    }
}

/// The chunks of one series (sorted by min time, then chunk ref) that replay keeps: an
/// overlapping one (a file written twice after a crash) gives way to the first, and those
/// ending before `floor` are in a block already. Sized exactly in the common case, where
/// every chunk is kept.
fn in_order_since(sorted: &[(u64, MmappedChunk)], floor: i64) -> Vec<MmappedChunk> {
    let mut out: Vec<MmappedChunk> = Vec::with_capacity(sorted.len());
    let mut last_max = None;
    for &(_, c) in sorted {
        if last_max.is_some_and(|m| c.min_time <= m) {
            continue;
        }
        last_max = Some(c.max_time);
        if c.max_time >= floor {
            out.push(c);
        }
    }
    out
}

impl Replayer<'_> {
    /// Restores one series of a snapshot with its open chunk.
    pub fn restore_snapshot_series(
        &mut self,
        s: super::snapshot::SnapshotSeries<'_>,
    ) -> Result<(), HeadError> {
        let r = s.series_ref;
        self.declare(r, &s.labels, s.hash)?;
        let Some((mint, chunk)) = s.head_chunk.filter(|_| !self.must_redo) else {
            return Ok(());
        };
        if chunk
            .last_time()
            .is_some_and(|t| t < self.head.min_valid_time)
        {
            return Ok(());
        }
        let r = self.remap.get(&r).copied().unwrap_or(r);
        let maxt = chunk.last_time().unwrap_or(mint);
        if let Some(ms) = self.head.series_mut(r) {
            // Chunks are in time order, so when the newest ends before the open chunk none
            // overlaps it, and the list is left as it is rather than unpacked and rebuilt.
            let overlap = ms.head_chunk().is_some() || ms.max_time().is_some_and(|t| t >= mint);
            if overlap {
                ms.retain_mmapped(|m| m.max_time < mint);
            }
            ms.restore_head_chunk(chunk);
            self.head.min_time = self.head.min_time.min(mint);
            self.head.max_time = self.head.max_time.max(maxt);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::HeadOptions;
    use crate::labels::Labels;
    use proptest::prelude::*;

    type Restored = (Vec<Option<Labels>>, Vec<Option<u64>>, u64);

    /// Restores snapshot series (ref, labels) into a fresh head, the index filed at the end
    /// (`deferred`) or per series; each ref's labels, each label set's ref and the series
    /// count, or `None` when the deferred way asks to be redone.
    fn restore(
        sets: &[(u64, std::collections::BTreeMap<String, String>)],
        deferred: bool,
    ) -> Option<Restored> {
        let dir = tempfile::tempdir().unwrap();
        let (mut head, _) = Head::open(dir.path(), HeadOptions::default()).unwrap();
        let carry = ReplayCarry::read(&head, 0).unwrap();
        let mut replayer = Replayer::new(&mut head, carry);
        if deferred {
            replayer.defer_index();
        }
        for (r, set) in sets {
            let labels: LabelPairs<'_> =
                set.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let hash = series_hash(labels.iter().copied());
            let s = super::super::snapshot::SnapshotSeries {
                series_ref: *r,
                labels,
                hash,
                head_chunk: None,
            };
            replayer.restore_snapshot_series(s).unwrap();
        }
        if deferred {
            replayer.finish_deferred()?;
        } else {
            replayer.finish_pass();
        }
        let by_ref = (0..26).map(|r| head.series_labels(r)).collect();
        let by_labels = sets
            .iter()
            .map(|(_, set)| {
                let l = Labels::from_pairs(set.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                head.lookup(&l.unwrap())
            })
            .collect();
        Some((by_ref, by_labels, head.num_series() as u64))
    }

    proptest! {
        /// Taking series' chunks in any order, ascending (a snapshot) or not (the WAL), with
        /// refs repeated or without chunks, gives what a map from ref to its chunks gives,
        /// each series' chunks once, and counts the rest as not taken.
        #[test]
        fn pending_chunks_as_a_map(
            chunks in proptest::collection::vec((1u64..30, 0i64..100), 0..60),
            mut takes in proptest::collection::vec(0u64..32, 0..40),
            ascending in any::<bool>(),
        ) {
            if ascending {
                takes.sort_unstable();
            }
            let listed: Vec<(u64, MmappedChunk)> = chunks
                .iter()
                .enumerate()
                .map(|(i, &(r, t))| {
                    let c = MmappedChunk {
                        chunk_ref: i as u64 * 8,
                        min_time: t,
                        max_time: t,
                    };
                    (r, c)
                })
                .collect();
            let mut model: HashMap<u64, Vec<MmappedChunk>> = HashMap::new();
            for &(r, c) in &listed {
                model.entry(r).or_default().push(c);
            }
            let mut pending = PendingChunks::new(listed);
            for r in takes {
                let mut want = model.remove(&r).unwrap_or_default();
                want.sort_by_key(|c| (c.min_time, c.chunk_ref));
                let got: Vec<MmappedChunk> = pending.take(r).iter().map(|&(_, c)| c).collect();
                prop_assert_eq!(got, want);
            }
            let left: u64 = model.values().map(|v| v.len() as u64).sum();
            prop_assert_eq!(pending.not_taken(), left);
            prop_assert_eq!(pending.total, chunks.len() as u64);
        }

        /// One pass over a series' sorted chunks keeps what sorting, dropping overlaps
        /// (keeping the first) and then dropping what ends before the floor keeps.
        #[test]
        fn in_order_since_as_sort_dedup_then_floor(
            mut spans in proptest::collection::vec((0i64..50, 0i64..8), 0..12),
            floor in 0i64..60,
        ) {
            spans.sort_unstable();
            let sorted: Vec<(u64, MmappedChunk)> = spans
                .iter()
                .enumerate()
                .map(|(i, &(min_time, len))| {
                    (1, MmappedChunk { chunk_ref: i as u64, min_time, max_time: min_time + len })
                })
                .collect();
            let mut want: Vec<MmappedChunk> = Vec::new();
            for &(_, c) in &sorted {
                if want.last().is_none_or(|p| c.min_time > p.max_time) {
                    want.push(c);
                }
            }
            want.retain(|c| c.max_time >= floor);
            prop_assert_eq!(in_order_since(&sorted, floor), want);
        }

        /// A snapshot restored with its label sets filed in the hash index at the end gives
        /// the head the per-series way gives, whenever the snapshot's refs and label sets
        /// are all distinct; otherwise (a ref or a label set twice) it asks to be redone.
        #[test]
        fn deferred_index_as_per_series(
            sets in proptest::collection::vec(
                (1u64..24, proptest::collection::btree_map("[a-b]{1,2}", "[x-y]{1,2}", 1..3)),
                1..16,
            )
        ) {
            let distinct = |v: Vec<String>| v.iter().collect::<std::collections::BTreeSet<_>>().len() == v.len();
            let clean = distinct(sets.iter().map(|(r, _)| r.to_string()).collect())
                && distinct(sets.iter().map(|(_, m)| format!("{m:?}")).collect());
            let slow = restore(&sets, false).unwrap();
            match restore(&sets, true) {
                Some(fast) => {
                    prop_assert!(clean);
                    prop_assert_eq!(fast, slow);
                }
                None => prop_assert!(!clean),
            }
        }

        /// Series declared one after another, each taking symbols from the one before when
        /// the strings match, get exactly their own labels, and every string is interned once.
        #[test]
        fn symbols_taken_from_the_previous_series_are_the_right_ones(
            sets in proptest::collection::vec(
                proptest::collection::btree_map("[a-c]{1,2}", "[x-z]{1,2}", 1..5),
                1..20,
            )
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (mut head, _) = Head::open(dir.path(), HeadOptions::default()).unwrap();
            let carry = ReplayCarry::read(&head, 0).unwrap();
            let mut replayer = Replayer::new(&mut head, carry);
            let mut want = Vec::new();
            for (i, set) in sets.iter().enumerate() {
                let labels = Labels::from_pairs(set.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap();
                let s = RefSeries { series_ref: i as u64 + 1, labels };
                replayer.add_series(&s).unwrap();
                want.push(s);
            }
            replayer.finish();
            let mut distinct: Vec<&str> = sets
                .iter()
                .flat_map(|m| m.iter().flat_map(|(n, v)| [n.as_str(), v.as_str()]))
                .collect();
            distinct.sort_unstable();
            distinct.dedup();
            prop_assert_eq!(head.symbols().len(), distinct.len());
            for s in &want {
                let r = head.lookup(&s.labels).unwrap();
                prop_assert_eq!(head.series_labels(r).unwrap(), s.labels.clone());
            }
        }
    }
}
