//! The head: a shard's in-memory series, their open chunks, the symbol table and the
//! postings index, plus the chunks_head files full chunks are written to.
//!
//! The head is plain single-owner data: no locks, no async. It does no WAL I/O: appending is
//! split into `prepare` (validate, encode the WAL records) and `commit` (apply), so that the
//! shard writes the WAL in between and only applies what the WAL holds. The only I/O here
//! is the buffered chunks_head writes of full chunks, which the WAL can always rebuild.
//!
//! Series refs are Prometheus's `HeadSeriesRef`: they start at 1, only grow, and are what the
//! WAL and chunks_head records carry. In memory a ref is a `u32` index (`SeriesId`) so that
//! the postings stay half the size; a shard refuses to create its 2^32-th series.

mod append;
mod compaction;
mod mmapped_list;
mod read;
pub(crate) mod replay;
pub mod series;
mod series_index;
mod series_set;
pub mod snapshot;

pub use append::{AppendBatch, AppendOutcome, BatchSample, Prepared, SeriesKey};
pub use compaction::{HeadChunkView, TruncateStats, Truncation};
pub use read::SeriesSamples;
pub use replay::ReplayStats;
pub use series::{AppendRefusal, MemSeries, MmappedChunk};

use std::collections::{HashMap, HashSet};
use std::path::Path;

use thiserror::Error;

use series_index::SeriesIndex;
use series_set::SeriesSet;

use crate::chunkenc::chunk_heap;
use crate::chunks_head::{ChunkDiskMapper, ChunksHeadError, OpenReport};
use crate::index::mem_postings::MemPostings;
use crate::labels::interned::InternedLabels;
use crate::labels::symbols::{SymbolId, SymbolTable};
use crate::labels::{Label, Labels, LabelsError};
use smallvec::SmallVec;

/// A deleted time range of a series, closed: `[mint, maxt]`.
pub type Interval = (i64, i64);

/// In-memory series id: the series ref as u32.
pub type SeriesId = u32;

/// Prometheus's default block range, which is also the head chunk range: 2 h.
pub const DEFAULT_CHUNK_RANGE: i64 = 2 * 60 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct HeadOptions {
    /// Chunks never cross a multiple of this range (ms).
    pub chunk_range: i64,
    /// Refuse in-order samples older than half a chunk range before the head's newest
    /// sample (Prometheus's out-of-bounds check). Off only where data is loaded out of time
    /// order on purpose, as by the PromQL test runner, whose files load blocks of series
    /// one after another, each starting at time 0.
    pub reject_out_of_bounds: bool,
    /// Keep the start timestamps samples are given (Prometheus 3.x's start-timestamp
    /// storage, `--enable-feature=st-storage` there): a series given one gets XOR2 chunks
    /// and its batches samples V2 WAL records, neither readable by Prometheus 2.x. Unlike
    /// Prometheus, which then writes every float chunk as XOR2, series without start
    /// timestamps keep XOR chunks and V1 records, and blocks always get XOR (start
    /// timestamps are dropped at head compaction), so only what needs them is unreadable
    /// by 2.x. Off by default: the head's files stay 2.x-readable and start timestamps are
    /// dropped at append.
    pub store_start_timestamps: bool,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            chunk_range: DEFAULT_CHUNK_RANGE,
            reject_out_of_bounds: true,
            store_start_timestamps: false,
        }
    }
}

#[derive(Debug, Error)]
pub enum HeadError {
    #[error("chunks_head: {0}")]
    ChunksHead(#[from] ChunksHeadError),
    #[error("invalid labels: {0}")]
    Labels(#[from] LabelsError),
    #[error("series limit of this shard reached ({0} series refs used)")]
    TooManySeries(u64),
    #[error("corrupt chunk of series {series_ref}: {reason}")]
    CorruptChunk { series_ref: u64, reason: String },
}

/// Bytes of the head's in-memory structures, by part.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HeadMemory {
    /// `MemSeries` structs in their pages, free slots included.
    pub series_slots: usize,
    /// Each series' interned (name, value) id pairs.
    pub label_sets: usize,
    /// Bytes of the open chunks.
    pub open_chunks: usize,
    /// Each series' list of its chunks in chunks_head.
    pub mmapped_lists: usize,
    /// Label-set hash to series.
    pub series_index: usize,
    pub symbols: usize,
    pub postings: usize,
}

impl HeadMemory {
    pub fn total(&self) -> usize {
        self.series_slots
            + self.label_sets
            + self.open_chunks
            + self.mmapped_lists
            + self.series_index
            + self.symbols
            + self.postings
    }
}

/// Counters in the sense of Prometheus's `prometheus_tsdb_head_*` metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeadStats {
    pub samples_appended: u64,
    pub out_of_order_samples: u64,
    pub out_of_bound_samples: u64,
    pub duplicate_timestamp_samples: u64,
    /// Identical duplicates of the newest sample, dropped silently.
    pub duplicate_samples_ignored: u64,
    pub series_created: u64,
    pub chunks_created: u64,
    pub unknown_series_refs: u64,
    /// Renewals of the thread's chunk heap (`renew_chunk_heap_when_sparse`).
    pub chunk_heap_renewals: u64,
}

pub struct Head {
    opts: HeadOptions,
    symbols: SymbolTable,
    postings: MemPostings,
    series: SeriesSet,
    /// Label-set hash to the series with that hash.
    by_hash: SeriesIndex,
    chunks: ChunkDiskMapper,
    /// Deleted intervals per series ref, closed `[mint, maxt]`, applied when reading.
    tombstones: HashMap<u64, Vec<Interval>, ahash::RandomState>,
    /// Series created by appends whose record has not reached the WAL yet (a failed WAL
    /// write leaves them here, so the record goes with the next successful batch). Beside
    /// the series rather than a flag in each: it holds at most a batch's new series, and the
    /// flag's byte made every `MemSeries` 8 bytes larger.
    unlogged: HashSet<u64, ahash::RandomState>,
    min_time: i64,
    max_time: i64,
    /// Nothing older is accepted or replayed: it belongs to a block already (Prometheus's
    /// `minValidTime`, the newest block's max time).
    min_valid_time: i64,
    pub stats: HeadStats,
}

impl Head {
    /// Opens the head over `shard_dir`, mapping its chunks_head files. Series are added by
    /// replay (`replay` module) or by appends.
    pub fn open(shard_dir: &Path, opts: HeadOptions) -> Result<(Head, OpenReport), HeadError> {
        let (chunks, report) = ChunkDiskMapper::open(&shard_dir.join("chunks_head"))?;
        let head = Head {
            opts,
            symbols: SymbolTable::new(),
            postings: MemPostings::new(),
            series: SeriesSet::default(),
            by_hash: SeriesIndex::default(),
            chunks,
            tombstones: HashMap::default(),
            unlogged: HashSet::default(),
            min_time: i64::MAX,
            max_time: i64::MIN,
            min_valid_time: i64::MIN,
            stats: HeadStats::default(),
        };
        Ok((head, report))
    }

    pub fn options(&self) -> &HeadOptions {
        &self.opts
    }

    pub fn num_series(&self) -> usize {
        self.series.live()
    }

    /// The highest series ref ever handed out.
    pub fn last_series_ref(&self) -> u64 {
        self.series.last_ref()
    }

    /// Time range of the samples in the head; `None` when empty.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        (self.min_time <= self.max_time).then_some((self.min_time, self.max_time))
    }

    pub fn symbols(&self) -> &SymbolTable {
        &self.symbols
    }

    pub fn postings(&self) -> &MemPostings {
        &self.postings
    }

    /// Which label tables changed since the last call (see `MemPostings::take_changes`).
    pub fn take_label_changes(&mut self) -> crate::index::mem_postings::LabelChanges {
        self.postings.take_changes()
    }

    pub fn chunk_disk_mapper(&mut self) -> &mut ChunkDiskMapper {
        &mut self.chunks
    }

    pub fn series(&self, r: u64) -> Option<&MemSeries> {
        self.series.get(r)
    }

    fn series_mut(&mut self, r: u64) -> Option<&mut MemSeries> {
        self.series.get_mut(r)
    }

    /// Every live series ref, ascending.
    pub fn series_refs(&self) -> impl Iterator<Item = u64> + '_ {
        self.series.iter().map(|(r, _)| r)
    }

    /// The owned label set of a series.
    pub fn series_labels(&self, r: u64) -> Option<Labels> {
        let s = self.series(r)?;
        let labels = s
            .labels()
            .iter()
            .map(|(n, v)| Label::new(self.symbols.resolve(n), self.symbols.resolve(v)))
            .collect();
        Labels::from_sorted_unchecked(labels).ok()
    }

    /// The ref of the series with exactly these labels, if it exists.
    pub fn lookup(&self, labels: &Labels) -> Option<u64> {
        self.lookup_hashed(labels, labels.hash())
    }

    fn lookup_hashed(&self, labels: &Labels, hash: u64) -> Option<u64> {
        self.lookup_pairs_hashed(label_pairs(labels), hash)
    }

    /// `lookup` for label pairs borrowed from a record being replayed, whose hash
    /// (`series_hash` of the pairs) the caller has already computed.
    pub(crate) fn lookup_pairs<'a>(&self, pairs: &[(&'a str, &'a str)], hash: u64) -> Option<u64> {
        self.lookup_pairs_hashed(pairs.iter().copied(), hash)
    }

    fn lookup_pairs_hashed<'a>(
        &self,
        pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)> + Clone,
        hash: u64,
    ) -> Option<u64> {
        self.by_hash
            .find(hash, |id| {
                self.series(u64::from(id))
                    .is_some_and(|s| self.same_labels(s, pairs.clone()))
            })
            .map(u64::from)
    }

    fn same_labels<'a>(
        &self,
        s: &MemSeries,
        pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) -> bool {
        same_labels(&self.symbols, s, pairs)
    }

    /// Returns the ref of the series with these labels, creating it (with the next ref) if
    /// needed. The bool says whether it was created.
    pub fn get_or_create(&mut self, labels: &Labels) -> Result<(u64, bool), HeadError> {
        let hash = labels.hash();
        if let Some(r) = self.lookup_hashed(labels, hash) {
            return Ok((r, false));
        }
        let r = self.series.last_ref() + 1;
        self.create_hashed(r, labels, hash)?;
        self.unlogged.insert(r);
        Ok((r, true))
    }

    fn create_hashed(&mut self, r: u64, labels: &Labels, hash: u64) -> Result<(), HeadError> {
        let id = series_id(r)?;
        self.create_unindexed(r, id, label_pairs(labels), &[]);
        let (series, symbols) = (&self.series, &self.symbols);
        self.by_hash
            .insert(hash, id, |i| filed_hash(series, symbols, i));
        Ok(())
    }

    /// Replay's declaration of series `r` (which must be free) from label pairs borrowed
    /// from the record and their `series_hash`: the ref of the series that already has
    /// these labels, or else `None` with `r` created. Looking up and filing the label set
    /// is one probe of the hash index. Refs between the last one and `r` are left empty.
    ///
    /// `like` is the symbol pairs of the series declared just before: replayed series come
    /// in creation order, so neighbours share most names and many values (job, instance,
    /// metric name), which are then taken from it by comparing strings instead of
    /// interning (a hash and a probe of a table much larger than the cache).
    pub(crate) fn find_or_create_with_ref(
        &mut self,
        r: u64,
        pairs: &[(&str, &str)],
        hash: u64,
        like: &[(SymbolId, SymbolId)],
    ) -> Result<Option<u64>, HeadError> {
        let id = match series_id(r) {
            Ok(id) => id,
            Err(e) => return self.lookup_pairs(pairs, hash).map(Some).ok_or(e),
        };
        let (series, symbols) = (&self.series, &self.symbols);
        let found = self.by_hash.find_or_insert(
            hash,
            id,
            |cand| {
                series
                    .get(u64::from(cand))
                    .is_some_and(|s| same_labels(symbols, s, pairs.iter().copied()))
            },
            |i| filed_hash(series, symbols, i),
        );
        if let Some(existing) = found {
            return Ok(Some(u64::from(existing)));
        }
        self.create_unindexed(r, id, pairs.iter().copied(), like);
        Ok(None)
    }

    /// A snapshot restore's declaration of series `r`, whose label set is filed in the hash
    /// index later, with every other one of the snapshot, by `index_deferred`. `None` when
    /// `r` is taken or is not a valid id: the restore then starts again the per-series way
    /// (`find_or_create_with_ref`), which handles both.
    pub(crate) fn create_deferred(
        &mut self,
        r: u64,
        pairs: &[(&str, &str)],
        like: &[(SymbolId, SymbolId)],
    ) -> Option<SeriesId> {
        if self.series(r).is_some() {
            return None;
        }
        let id = series_id(r).ok()?;
        self.create_unindexed(r, id, pairs.iter().copied(), like);
        Some(id)
    }

    /// Files the series `create_deferred` made, given as (low 32 bits of the series hash,
    /// id), in the hash index, in that order. One pass over a table sized once: the random
    /// probes of a table much larger than the cache overlap each other here, instead of
    /// each stalling the restore of one series (a sixth of a restart's CPU). False when one
    /// of them has the labels of a series filed before it (a snapshot promcore did not
    /// write): the index is then incomplete and the head must be opened again.
    pub(crate) fn index_deferred(&mut self, created: &[(u32, SeriesId)]) -> bool {
        let (series, symbols) = (&self.series, &self.symbols);
        self.by_hash
            .reserve(created.len(), |i| filed_hash(series, symbols, i));
        for &(h32, id) in created {
            let Some(s) = series.get(u64::from(id)) else {
                return false;
            };
            // By the strings, not the symbol ids: a candidate is rare enough for it.
            let is_same = |cand: SeriesId| {
                series.get(u64::from(cand)).is_some_and(|c| {
                    let strings = |l: &InternedLabels| {
                        l.iter()
                            .map(|(n, v)| (symbols.resolve(n), symbols.resolve(v)))
                            .collect::<SmallVec<[_; 16]>>()
                    };
                    strings(c.labels()) == strings(s.labels())
                })
            };
            if self
                .by_hash
                .find_or_insert(u64::from(h32), id, is_same, |i| {
                    filed_hash(series, symbols, i)
                })
                .is_some()
            {
                return false;
            }
        }
        true
    }

    /// Creates series `r` (id `id`) with its symbols and postings, but does not file it
    /// in the hash index.
    fn create_unindexed<'a>(
        &mut self,
        r: u64,
        id: SeriesId,
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
        like: &[(SymbolId, SymbolId)],
    ) {
        let symbols = &mut self.symbols;
        let mut symbol = |s: &str, hint: Option<SymbolId>| match hint {
            Some(id) if symbols.get(id) == Some(s) => id,
            _ => symbols.intern(s),
        };
        let pairs: SmallVec<[(SymbolId, SymbolId); 16]> = pairs
            .enumerate()
            .map(|(j, (n, v))| {
                let hint = like.get(j);
                (symbol(n, hint.map(|h| h.0)), symbol(v, hint.map(|h| h.1)))
            })
            .collect();
        self.postings.add(id, &pairs);
        self.series.insert(
            r,
            MemSeries::new(InternedLabels::from_pairs(pairs.iter().copied())),
        );
        self.stats.series_created += 1;
    }

    /// Marks `[mint, maxt]` of series `r` deleted (a WAL tombstones record).
    pub fn add_tombstone(&mut self, r: u64, interval: Interval) {
        self.tombstones.entry(r).or_default().push(interval);
    }

    /// Deleted intervals of every series, for the snapshot and the WAL.
    pub fn tombstones(&self) -> impl Iterator<Item = (u64, &[Interval])> {
        self.tombstones.iter().map(|(r, v)| (*r, v.as_slice()))
    }

    /// The oldest timestamp an in-order append may have: Prometheus's
    /// `max(minValidTime, head max time - chunk range / 2)`.
    pub fn min_valid_time(&self) -> i64 {
        if !self.opts.reject_out_of_bounds {
            return i64::MIN;
        }
        if self.max_time == i64::MIN {
            return self.min_valid_time;
        }
        self.max_time
            .saturating_sub(self.opts.chunk_range / 2)
            .max(self.min_valid_time)
    }

    /// Appends one in-order sample to a series and its chunks (already validated and
    /// logged). Writes a cut chunk to chunks_head. Returns false if it was refused.
    /// Appends one sample with start timestamp `st` (0 = none; callers pass 0 unless the
    /// head stores start timestamps).
    fn append_sample(&mut self, r: u64, st: i64, t: i64, v: f64) -> Result<bool, HeadError> {
        let chunk_range = self.opts.chunk_range;
        let Some(s) = self.series_mut(r) else {
            self.stats.unknown_series_refs += 1;
            return Ok(false);
        };
        match s.appendable(t, v, i64::MIN) {
            series::Appendable::Yes => {}
            series::Appendable::Duplicate => {
                self.stats.duplicate_samples_ignored += 1;
                return Ok(false);
            }
            series::Appendable::No(why) => {
                self.count_refusal(why);
                return Ok(false);
            }
        }
        let cut = s.append(st, t, v, chunk_range);
        if let Some((min_time, chunk)) = cut {
            self.write_cut_chunk(r, min_time, &chunk)?;
        }
        if t < self.min_time {
            self.min_time = t;
        }
        if t > self.max_time {
            self.max_time = t;
        }
        self.stats.samples_appended += 1;
        Ok(true)
    }

    fn write_cut_chunk(
        &mut self,
        r: u64,
        min_time: i64,
        chunk: &crate::chunkenc::FloatChunk,
    ) -> Result<(), HeadError> {
        let max_time = chunk.last_time().unwrap_or(min_time);
        let chunk_ref =
            self.chunks
                .write_chunk(r, min_time, max_time, chunk.encoding(), chunk.bytes())?;
        self.stats.chunks_created += 1;
        if let Some(s) = self.series_mut(r) {
            s.push_mmapped(MmappedChunk {
                chunk_ref,
                min_time,
                max_time,
            });
        }
        Ok(())
    }

    fn count_refusal(&mut self, why: AppendRefusal) {
        match why {
            AppendRefusal::OutOfOrder => self.stats.out_of_order_samples += 1,
            AppendRefusal::DuplicateTimestamp => self.stats.duplicate_timestamp_samples += 1,
            AppendRefusal::OutOfBounds => self.stats.out_of_bound_samples += 1,
        }
    }

    /// Renews the thread's chunk heap (`chunkenc::chunk_heap`) when its pages hold many
    /// bytes no open chunk uses: every open chunk of this head is copied into a fresh heap,
    /// whose pages it fills, and the old heap's pages go back whole. Looks at the pages only
    /// after `CHUNK_HEAP_LOOK_EVERY` bytes of chunk allocations, so appends pay nothing
    /// between looks. Returns whether it renewed.
    pub fn renew_chunk_heap_when_sparse(&mut self) -> bool {
        if chunk_heap::allocated_since_usage() < CHUNK_HEAP_LOOK_EVERY {
            return false;
        }
        if !chunk_heap_sparse(chunk_heap::usage()) {
            return false;
        }
        self.renew_chunk_heap();
        true
    }

    /// Copies every open chunk of this head into a fresh chunk heap and deletes the old one.
    pub(crate) fn renew_chunk_heap(&mut self) {
        let renewal = chunk_heap::Renewal::begin();
        for s in self.series.values_mut() {
            s.relocate_head_chunk();
        }
        drop(renewal);
        self.stats.chunk_heap_renewals += 1;
    }

    /// Writes buffered chunks_head records and closes the files.
    pub fn close(self) -> Result<(), HeadError> {
        self.chunks.close()?;
        Ok(())
    }

    /// Memory held by the head's in-memory structures (not the mmapped chunks), for the
    /// bytes-per-series figure.
    pub fn heap_bytes(&self) -> usize {
        self.memory().total()
    }

    /// `heap_bytes` by part (capacities as requested from the allocator, before its
    /// rounding).
    pub fn memory(&self) -> HeadMemory {
        let mut m = HeadMemory {
            series_slots: self.series.slot_bytes(),
            series_index: self.by_hash.heap_bytes(),
            symbols: self.symbols.heap_bytes(),
            postings: self.postings.heap_bytes(),
            ..HeadMemory::default()
        };
        for (_, s) in self.series.iter() {
            m.label_sets += s.labels().heap_bytes();
            m.mmapped_lists += s.mmapped_heap_bytes();
            m.open_chunks += s.head_chunk().map_or(0, |c| c.heap_bytes());
        }
        m
    }
}

/// Bytes of open-chunk allocations between two looks at the chunk heap's pages: a look walks
/// the heap's pages (~1,000 of them per shard at 1 M series), never its blocks.
const CHUNK_HEAP_LOOK_EVERY: usize = 4 << 20;

/// Whether the chunk heap's unused bytes are worth a renewal, which copies every open chunk
/// (25–65 ms per 500 k series measured at 1 M series under load): at least 12 MiB, and a
/// third of the live bytes, so that the copies cost at most ~3 bytes copied per byte given
/// back, and the chunks' pages stay within ~33 % over their live bytes. (At 8 MiB and a
/// fifth the bench's 2 minutes held 6 renewals per shard: +6–9 % CPU per sample.)
fn chunk_heap_sparse(u: chunk_heap::HeapUsage) -> bool {
    let idle = u.committed.saturating_sub(u.used);
    idle >= 12 << 20 && idle >= u.used / 3
}

/// The in-memory id of series ref `r`: refs 0 and from `u32::MAX` on have none.
fn series_id(r: u64) -> Result<SeriesId, HeadError> {
    match SeriesId::try_from(r) {
        Ok(id) if id != 0 && id != SeriesId::MAX => Ok(id),
        _ => Err(HeadError::TooManySeries(r)),
    }
}

/// Whether series `s` has exactly these labels.
/// The `series_hash` of series `id`, from its labels: the hash index keeps only ids, and
/// asks for their hashes when it grows. 0 for an id without a series, which the index never
/// holds (a series leaves the index before the set).
fn filed_hash(series: &SeriesSet, symbols: &SymbolTable, id: SeriesId) -> u64 {
    series.get(u64::from(id)).map_or(0, |s| {
        crate::labels::series_hash(
            s.labels()
                .iter()
                .map(|(n, v)| (symbols.resolve(n), symbols.resolve(v))),
        )
    })
}

fn same_labels<'a>(
    symbols: &SymbolTable,
    s: &MemSeries,
    pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
) -> bool {
    let mut mine = s.labels().iter();
    pairs.into_iter().all(|(ln, lv)| {
        mine.next()
            .is_some_and(|(n, v)| symbols.resolve(n) == ln && symbols.resolve(v) == lv)
    }) && mine.next().is_none()
}

/// The (name, value) pairs of a label set, borrowed.
fn label_pairs(labels: &Labels) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone {
    labels.iter().map(|l| (l.name.as_str(), l.value.as_str()))
}

#[cfg(test)]
mod chunk_heap_tests {
    use super::*;

    #[test]
    fn renewal_only_when_idle_bytes_are_many_and_a_third_of_the_live() {
        let u = |committed: usize, used: usize| chunk_heap::HeapUsage { committed, used };
        assert!(!chunk_heap_sparse(u(0, 0)));
        assert!(!chunk_heap_sparse(u(11 << 20, 0)), "under 12 MiB idle");
        assert!(chunk_heap_sparse(u(12 << 20, 0)));
        assert!(
            !chunk_heap_sparse(u(120 << 20, 100 << 20)),
            "20 MiB idle, a fifth"
        );
        assert!(chunk_heap_sparse(u(140 << 20, 100 << 20)));
        assert!(!chunk_heap_sparse(u(50 << 20, 60 << 20)), "racy counts");
    }
}
