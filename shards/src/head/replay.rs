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
use super::{Head, HeadError, MmappedChunk};

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
    mmapped: HashMap<u64, Vec<MmappedChunk>, ahash::RandomState>,
    mmapped_total: u64,
    remap: HashMap<u64, u64, ahash::RandomState>,
}

impl ReplayCarry {
    /// Reads every chunk record of the head's chunks_head, to be attached to series as
    /// their records arrive.
    pub fn read(head: &Head) -> Result<Self, ChunksHeadError> {
        let mut mmapped: HashMap<u64, Vec<MmappedChunk>, ahash::RandomState> = HashMap::default();
        let mut n = 0;
        head.chunks.iterate(|c| {
            n += 1;
            mmapped.entry(c.series_ref).or_default().push(MmappedChunk {
                chunk_ref: c.chunk_ref,
                min_time: c.mint,
                max_time: c.maxt,
            });
        })?;
        Ok(ReplayCarry {
            mmapped,
            mmapped_total: n,
            remap: HashMap::default(),
        })
    }
}

/// Applies records to a head being rebuilt.
pub struct Replayer<'h> {
    head: &'h mut Head,
    mmapped: HashMap<u64, Vec<MmappedChunk>, ahash::RandomState>,
    remap: HashMap<u64, u64, ahash::RandomState>,
    series_buf: Vec<RefSeries>,
    samples_buf: Vec<RefSample>,
    stones_buf: Vec<Stone>,
    /// The symbol pairs of the series created last (see `Head::create_with_ref`).
    like: Vec<(SymbolId, SymbolId)>,
    pub stats: ReplayStats,
}

impl<'h> Replayer<'h> {
    /// Starts a replay pass with what earlier passes left (`ReplayCarry::read` for the
    /// first).
    pub fn new(head: &'h mut Head, carry: ReplayCarry) -> Self {
        let stats = ReplayStats {
            mmapped_chunks: carry.mmapped_total,
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
            stats,
        }
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
        self.declare(s.series_ref, &pairs)
    }

    /// Declares series `r` with sorted label pairs borrowed from a record (no owned label
    /// set is built: a restart declares every series once) and attaches its chunks.
    fn declare(&mut self, r: u64, pairs: &[(&str, &str)]) -> Result<(), HeadError> {
        self.stats.series += 1;
        let hash = series_hash(pairs.iter().copied());
        if let Some(existing) = self.head.lookup_pairs(pairs, hash) {
            if existing != r {
                self.remap.insert(r, existing);
            }
            return Ok(());
        }
        if self.head.series(r).is_some() {
            // A ref reused for another label set: the WAL is not one we wrote. Keep the first.
            self.stats.conflicting_refs += 1;
            return Ok(());
        }
        self.head.create_with_ref(r, pairs, hash, &self.like)?;
        let chunks = self.mmapped.remove(&r).unwrap_or_default();
        let floor = self.head.min_valid_time;
        if let Some(ms) = self.head.series_mut(r) {
            self.like.clear();
            self.like.extend(ms.labels());
            let mut chunks = sorted_in_order(chunks);
            chunks.retain(|c| c.max_time >= floor);
            ms.set_mmapped(chunks);
        }
        if let Some(ms) = self.head.series(r) {
            if let (Some(lo), Some(hi)) = (ms.min_time(), ms.max_time()) {
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

    /// Ends a replay pass, handing on what the next one needs.
    pub fn finish_pass(self) -> (ReplayStats, ReplayCarry) {
        let mut stats = self.stats;
        stats.orphan_chunks = self.mmapped.values().map(|v| v.len() as u64).sum();
        // Replayed samples were accepted once; they are not "appended" again.
        self.head.stats.samples_appended -= stats.samples;
        let carry = ReplayCarry {
            mmapped: self.mmapped,
            mmapped_total: stats.mmapped_chunks,
            remap: self.remap,
        };
        (stats, carry)
    }
}

/// Chunks of one series in time order; overlapping ones (a file written twice after a
/// crash) keep the first.
fn sorted_in_order(mut chunks: Vec<MmappedChunk>) -> Vec<MmappedChunk> {
    chunks.sort_by_key(|c| (c.min_time, c.chunk_ref));
    let mut out: Vec<MmappedChunk> = Vec::with_capacity(chunks.len());
    for c in chunks {
        if out.last().is_none_or(|p| c.min_time > p.max_time) {
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
        self.declare(r, &s.labels)?;
        let Some((mint, chunk)) = s.head_chunk else {
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
            ms.retain_mmapped(|m| m.max_time < mint);
            ms.restore_head_chunk(mint, chunk);
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

    proptest! {
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
            let carry = ReplayCarry::read(&head).unwrap();
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
