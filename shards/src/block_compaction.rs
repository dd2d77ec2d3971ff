//! Block compaction (spec §10.2): merging a shard's blocks into longer ones, 2 h → 6 h →
//! 18 h → ... up to the maximum block duration, as Prometheus's `LeveledCompactor` plans it:
//! overlapping blocks first, then the first aligned range of the next size up that is full
//! or lies before the newest block (the newest block is never merged, leaving a window to
//! back it up), then a block with more than 5 % of its series tombstoned is rewritten alone.
//!
//! The new block carries level `max(parents) + 1`, the union of their sources and the
//! parents themselves in meta.json. Once it is in place the parents are unmapped and
//! deleted; a crash in between leaves both, and `superseded` names the parents for start-up
//! to delete, as Prometheus does, so no sample is ever read twice.
//!
//! The merge runs in steps like head compaction (`compact`), each holding the shard for about
//! the step budget: the parents' series are listed a slice of `series_per_step` series at
//! a time (`Listing`), the new block's directory and symbol table are created on the
//! executor's blocking thread (`compact::offload`), series are written a slice at a time,
//! then the files are closed and the new block opened on the blocking thread (chunk and
//! index fsyncs, meta.json, the rename), during which steps only report
//! `MergeStep::Waiting`, and the blocks are swapped: the parents leave the shard's list,
//! are renamed for deletion and are unmapped and removed on the blocking thread
//! (`retention::Deletions`). A merge in slices writes the very block a merge in one go
//! writes. Chunks are copied as they are when the parents do not overlap and no tombstone
//! touches them; otherwise the series' samples are merged (a timestamp present in several
//! blocks is kept once) and re-encoded, 120 per chunk. This module never touches the head
//! or the WAL, and never chooses what retention deletes.

use std::collections::{btree_map, BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::block::meta::BlockDesc;
use crate::block::{
    Block, BlockChunk, BlockError, BlockMeta, BlockWriter, Compaction, NewBlock, Ulid,
};
use crate::chunkenc::{Encoding, XorChunk};
use crate::compact::{offload, slices_within, Offloaded};
use crate::labels::Labels;
use crate::retention::{delete_block, Deletions};

/// Samples per re-encoded chunk (Prometheus's target for a chunk).
const SAMPLES_PER_CHUNK: usize = 120;

/// Prometheus's `ExponentialBlockRanges(min, 10, 3)` without the ranges longer than
/// `max_duration` (the first one, `min`, is always kept).
pub fn block_ranges(min: i64, max_duration: i64) -> Vec<i64> {
    let mut out = vec![min];
    let mut r = min;
    for _ in 1..10 {
        r = r.saturating_mul(3);
        if r > max_duration {
            break;
        }
        out.push(r);
    }
    out
}

/// What planning needs of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanMeta {
    pub min_time: i64,
    pub max_time: i64,
    pub failed: bool,
    pub num_series: u64,
    pub num_tombstones: u64,
}

impl PlanMeta {
    pub fn of(m: &BlockMeta) -> PlanMeta {
        PlanMeta {
            min_time: m.min_time,
            max_time: m.max_time,
            failed: m.compaction.failed,
            num_series: m.stats.num_series,
            num_tombstones: m.stats.num_tombstones,
        }
    }
}

/// The blocks to merge next (indices into `blocks`, which must be sorted by min time), or
/// none. Prometheus's `LeveledCompactor.plan`.
pub fn plan(blocks: &[PlanMeta], ranges: &[i64]) -> Vec<usize> {
    let overlapping = overlapping(blocks);
    if !overlapping.is_empty() {
        return overlapping;
    }
    let Some((_, older)) = blocks.split_last() else {
        return Vec::new();
    };
    let chosen = select_range(older, ranges);
    if !chosen.is_empty() {
        return chosen;
    }
    let Some(&mid) = ranges.get(ranges.len() / 2) else {
        return Vec::new();
    };
    for (i, m) in older.iter().enumerate().rev() {
        if m.max_time - m.min_time < mid {
            if m.num_tombstones > 0 && m.num_tombstones >= m.num_series {
                return vec![i];
            }
            break;
        }
        if m.num_tombstones as f64 / (m.num_series + 1) as f64 > 0.05 {
            return vec![i];
        }
    }
    Vec::new()
}

/// The first run of blocks that overlap one another.
fn overlapping(blocks: &[PlanMeta]) -> Vec<usize> {
    let mut out = Vec::new();
    let Some(first) = blocks.first() else {
        return out;
    };
    let mut max = first.max_time;
    for (i, b) in blocks.iter().enumerate().skip(1) {
        if b.min_time < max {
            if out.is_empty() {
                out.push(i - 1);
            }
            out.push(i);
        } else if !out.is_empty() {
            break;
        }
        max = max.max(b.max_time);
    }
    out
}

/// Prometheus's `selectDirs`: for each range above the smallest, the first aligned group of
/// two or more blocks that fills the range or ends before the newest block starts.
fn select_range(blocks: &[PlanMeta], ranges: &[i64]) -> Vec<usize> {
    let Some(last) = blocks.last() else {
        return Vec::new();
    };
    let high = last.min_time;
    for &r in ranges.iter().skip(1) {
        for group in split_by_range(blocks, r) {
            if group.iter().any(|&i| blocks[i].failed) {
                continue;
            }
            let (mint, maxt) = (
                blocks[group[0]].min_time,
                blocks[group[group.len() - 1]].max_time,
            );
            if (maxt - mint == r || maxt <= high) && group.len() > 1 {
                return group;
            }
        }
    }
    Vec::new()
}

/// Groups of consecutive blocks that lie within one aligned range of length `r`; blocks
/// that straddle a range boundary belong to none.
fn split_by_range(blocks: &[PlanMeta], r: i64) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < blocks.len() {
        let t0 = blocks[i].min_time.div_euclid(r) * r;
        if blocks[i].max_time > t0 + r {
            i += 1;
            continue;
        }
        let mut group = Vec::new();
        while i < blocks.len() && blocks[i].max_time <= t0 + r {
            group.push(i);
            i += 1;
        }
        out.push(group);
    }
    out
}

/// Blocks that are parents of another block present (a compaction whose parents were not
/// yet deleted when the process stopped): to delete, never to read.
pub fn superseded(metas: &[&BlockMeta]) -> Vec<usize> {
    let parents: BTreeSet<&str> = metas
        .iter()
        .flat_map(|m| m.compaction.parents.iter().map(|p| p.ulid.as_str()))
        .collect();
    (0..metas.len())
        .filter(|&i| parents.contains(metas[i].ulid.as_str()))
        .collect()
}

/// Counters for self-monitoring.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockCompactionStats {
    /// Merges from planning to the parents' deletion
    /// (`prometheus_tsdb_compaction_duration_seconds`, with the head's).
    pub durations: crate::compaction_timings::DurationHistogram,
    pub compactions: u64,
    pub parents_deleted: u64,
    pub failures: u64,
    pub last_error: Option<String>,
}

/// Where each series' data lies in the parents (index into `parents`, series ref).
pub(crate) type Sources = Vec<(usize, u32)>;

/// The parents' series with their sources, and the new block's symbols, listed a slice at a
/// time: a cursor over each parent's series refs in turn, so that no step reads every
/// parent's series at once (one call took 260–625 ms for three 100,000-series blocks).
pub(crate) struct Listing {
    /// The parent being listed, its series refs (read when its turn comes) and the next.
    parent: usize,
    refs: Option<Vec<u32>>,
    next: usize,
    series: BTreeMap<Labels, Sources>,
    symbols: BTreeSet<String>,
}

impl Listing {
    pub(crate) fn new() -> Self {
        Listing {
            parent: 0,
            refs: None,
            next: 0,
            series: BTreeMap::new(),
            // Prometheus 2.42 always has the empty string (the all-postings key).
            symbols: BTreeSet::from([String::new()]),
        }
    }

    /// Lists up to `n` (at least one) more series; `true` once every parent's are listed.
    pub(crate) fn list(&mut self, parents: &[&Block], n: usize) -> Result<bool, BlockError> {
        let mut metas = Vec::new();
        let mut left = n.max(1);
        while let Some(b) = parents.get(self.parent) {
            if self.refs.is_none() {
                self.refs = Some(b.index().all_postings()?);
            }
            let refs = self.refs.as_deref().unwrap_or_default();
            let end = self.next.saturating_add(left).min(refs.len());
            for &r in &refs[self.next..end] {
                let labels = b.series(r, &mut metas)?;
                match self.series.entry(labels) {
                    btree_map::Entry::Occupied(mut e) => e.get_mut().push((self.parent, r)),
                    btree_map::Entry::Vacant(e) => {
                        for l in e.key().iter() {
                            for s in [&l.name, &l.value] {
                                if !self.symbols.contains(s) {
                                    self.symbols.insert(s.clone());
                                }
                            }
                        }
                        e.insert(vec![(self.parent, r)]);
                    }
                }
            }
            left -= end - self.next;
            self.next = end;
            if end < refs.len() {
                return Ok(false);
            }
            self.parent += 1;
            self.refs = None;
            self.next = 0;
            if left == 0 {
                break;
            }
        }
        Ok(self.parent >= parents.len())
    }
}

/// The merged block's range and lineage, and whether its parents overlap.
pub(crate) fn merged_block(parents: &[&BlockMeta]) -> (NewBlock, bool) {
    let mut sources: Vec<String> = parents
        .iter()
        .flat_map(|m| m.compaction.sources.iter().cloned())
        .collect();
    sources.sort();
    sources.dedup();
    let block = NewBlock {
        ulid: Ulid::new(),
        min_time: parents.iter().map(|m| m.min_time).min().unwrap_or(0),
        max_time: parents.iter().map(|m| m.max_time).max().unwrap_or(0),
        compaction: Compaction {
            level: parents
                .iter()
                .map(|m| m.compaction.level)
                .max()
                .unwrap_or(0)
                + 1,
            sources,
            parents: parents
                .iter()
                .map(|m| BlockDesc {
                    ulid: m.ulid.clone(),
                    min_time: m.min_time,
                    max_time: m.max_time,
                })
                .collect(),
            ..Default::default()
        },
    };
    let plan_metas: Vec<PlanMeta> = parents.iter().map(|m| PlanMeta::of(m)).collect();
    (block, !overlapping(&plan_metas).is_empty())
}

/// Writes up to `n` (at least one) more series of the merge; `true` once all are written.
/// Each series' labels are freed as it is written, so that no step drops them all at once.
pub(crate) fn write_some(
    writer: &mut BlockWriter,
    parents: &[&Block],
    overlapping: bool,
    series: &mut btree_map::IntoIter<Labels, Sources>,
    n: usize,
) -> Result<bool, BlockError> {
    for _ in 0..n.max(1) {
        let Some((labels, sources)) = series.next() else {
            return Ok(true);
        };
        write_series(writer, parents, overlapping, &labels, &sources)?;
    }
    Ok(series.len() == 0)
}

/// A merge under way, phase by phase. Each phase names its parents by ULID and finds them
/// again at each step: retention may delete one between steps, which ends the merge.
enum Merge {
    /// The parents' series being listed (`Listing`).
    Listing {
        parents: Vec<String>,
        listing: Box<Listing>,
    },
    /// The new block's directory and symbol table being written on the blocking thread
    /// (a symbol table can hold millions of strings).
    Creating {
        parents: Vec<String>,
        overlapping: bool,
        series: BTreeMap<Labels, Sources>,
        pending: Offloaded<Box<BlockWriter>>,
    },
    /// Series being written, a slice at a time.
    Writing {
        parents: Vec<String>,
        overlapping: bool,
        writer: Box<BlockWriter>,
        series: btree_map::IntoIter<Labels, Sources>,
    },
    /// The new block's files being closed (chunk and index fsyncs, meta.json, the rename)
    /// and the block opened, on the blocking thread; `None` when nothing was left to write
    /// (every sample deleted): no block, the parents simply go.
    Closing {
        parents: Vec<String>,
        pending: Offloaded<Option<Block>>,
    },
    /// The merged block is in place; its parents are being unmapped and removed on the
    /// blocking thread (`retention::Deletions`).
    Deleting(Deletions),
}

/// What one step of `BlockCompactor::step` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeStep {
    /// Nothing to merge.
    Idle,
    /// A slice of the merge ran; more remain.
    Working,
    /// Work runs on the blocking thread (the new block's files, the parents' removal).
    Waiting,
    /// The merged block is in place and its parents are gone.
    Done,
}

pub struct BlockCompactor {
    ranges: Vec<i64>,
    series_per_step: usize,
    step_budget: Duration,
    retry_after: Duration,
    not_before: Option<Instant>,
    job: Option<Merge>,
    /// When the merge under way started.
    started: Option<Instant>,
    pub stats: BlockCompactionStats,
}

impl BlockCompactor {
    /// `ranges` from `block_ranges`; a step goes on with slices of `series_per_step` series
    /// until it has run `step_budget` (see `CompactionOptions`); after a failure no merge
    /// starts for `retry_after`.
    pub fn new(
        ranges: Vec<i64>,
        series_per_step: usize,
        step_budget: Duration,
        retry_after: Duration,
    ) -> Self {
        BlockCompactor {
            ranges,
            series_per_step: series_per_step.max(1),
            step_budget,
            retry_after,
            not_before: None,
            job: None,
            started: None,
            stats: BlockCompactionStats::default(),
        }
    }

    /// Whether a merge is under way, the removal of its parents included.
    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    /// One slice of work. A failure abandons the merge (the unfinished block is removed,
    /// the parents stay) and is counted.
    pub fn step(&mut self, dir: &Path, blocks: &mut Vec<Block>) -> Result<MergeStep, BlockError> {
        if !self.is_busy() && self.not_before.is_some_and(|t| Instant::now() < t) {
            return Ok(MergeStep::Idle);
        }
        let r = self.step_inner(dir, blocks);
        if let Err(e) = &r {
            self.not_before = Some(Instant::now() + self.retry_after);
            self.job = None;
            self.started = None;
            self.stats.failures += 1;
            self.stats.last_error = Some(e.to_string());
        }
        r
    }

    fn step_inner(&mut self, dir: &Path, blocks: &mut Vec<Block>) -> Result<MergeStep, BlockError> {
        let (started, budget, per_step) = (Instant::now(), self.step_budget, self.series_per_step);
        let Some(job) = self.job.take() else {
            let metas: Vec<PlanMeta> = blocks.iter().map(|b| PlanMeta::of(b.meta())).collect();
            let chosen = plan(&metas, &self.ranges);
            if chosen.is_empty() {
                return Ok(MergeStep::Idle);
            }
            self.job = Some(Merge::Listing {
                parents: chosen
                    .iter()
                    .map(|&i| blocks[i].meta().ulid.clone())
                    .collect(),
                listing: Box::new(Listing::new()),
            });
            self.started = Some(Instant::now());
            return Ok(MergeStep::Working);
        };
        match job {
            Merge::Listing {
                parents: names,
                mut listing,
            } => {
                let parents = find(blocks, &names)?;
                let done = slices_within(started, budget, || listing.list(&parents, per_step))?;
                if !done {
                    self.job = Some(Merge::Listing {
                        parents: names,
                        listing,
                    });
                    return Ok(MergeStep::Working);
                }
                let metas: Vec<&BlockMeta> = parents.iter().map(|b| b.meta()).collect();
                let (block, overlapping) = merged_block(&metas);
                let Listing {
                    series, symbols, ..
                } = *listing;
                let dir = dir.to_path_buf();
                let pending = offload(move || {
                    BlockWriter::create(&dir, block, symbols.iter().map(|s| s.as_str()))
                        .map(Box::new)
                });
                self.job = Some(Merge::Creating {
                    parents: names,
                    overlapping,
                    series,
                    pending,
                });
                Ok(MergeStep::Working)
            }
            Merge::Creating {
                parents,
                overlapping,
                series,
                pending,
            } => {
                let Some(writer) = pending.take() else {
                    self.job = Some(Merge::Creating {
                        parents,
                        overlapping,
                        series,
                        pending,
                    });
                    return Ok(MergeStep::Waiting);
                };
                self.job = Some(Merge::Writing {
                    parents,
                    overlapping,
                    writer: writer?,
                    series: series.into_iter(),
                });
                Ok(MergeStep::Working)
            }
            Merge::Writing {
                parents: names,
                overlapping,
                mut writer,
                mut series,
            } => {
                let parents = find(blocks, &names)?;
                let done = slices_within(started, budget, || {
                    write_some(&mut writer, &parents, overlapping, &mut series, per_step)
                })?;
                if !done {
                    self.job = Some(Merge::Writing {
                        parents: names,
                        overlapping,
                        writer,
                        series,
                    });
                    return Ok(MergeStep::Working);
                }
                let dir = dir.to_path_buf();
                let pending = offload(move || {
                    if writer.stats().num_samples == 0 {
                        // Prometheus writes no empty block; dropping the writer removes it.
                        return Ok(None);
                    }
                    let meta = writer.finish()?;
                    Block::open(&dir.join(&meta.ulid)).map(Some)
                });
                self.job = Some(Merge::Closing {
                    parents: names,
                    pending,
                });
                Ok(MergeStep::Working)
            }
            Merge::Closing { parents, pending } => {
                let Some(merged) = pending.take() else {
                    self.job = Some(Merge::Closing { parents, pending });
                    return Ok(MergeStep::Waiting);
                };
                let deletions = self.swap(blocks, merged?, &parents)?;
                self.job = Some(Merge::Deleting(deletions));
                Ok(MergeStep::Working)
            }
            Merge::Deleting(mut deletions) => {
                deletions.reap()?;
                if !deletions.is_empty() {
                    self.job = Some(Merge::Deleting(deletions));
                    return Ok(MergeStep::Waiting);
                }
                if let Some(t) = self.started.take() {
                    self.stats.durations.observe(t.elapsed());
                }
                Ok(MergeStep::Done)
            }
        }
    }

    /// Puts the merged block (if any) in place of its parents and starts their deletion.
    fn swap(
        &mut self,
        blocks: &mut Vec<Block>,
        merged: Option<Block>,
        names: &[String],
    ) -> Result<Deletions, BlockError> {
        if let Err(e) = find(blocks, names) {
            // A parent went (retention) while the files were closed: the merged block
            // would bring its samples back.
            if let Some(b) = merged {
                let path = b.dir().to_path_buf();
                drop(b);
                delete_block(&path)?;
            }
            return Err(e);
        }
        blocks.extend(merged);
        self.stats.compactions += 1;
        let mut deletions = Deletions::default();
        let mut failed = None;
        for name in names {
            if let Some(i) = blocks.iter().position(|b| &b.meta().ulid == name) {
                match deletions.start(blocks.remove(i)) {
                    Ok(()) => self.stats.parents_deleted += 1,
                    // Left on disk with the merged block naming it a parent: start-up
                    // deletes it (`superseded`); nothing reads it meanwhile.
                    Err((_, e)) => {
                        failed.get_or_insert(e);
                    }
                }
            }
        }
        blocks.sort_by(|a, b| {
            (a.meta().min_time, &a.meta().ulid).cmp(&(b.meta().min_time, &b.meta().ulid))
        });
        match failed {
            None => Ok(deletions),
            Some(e) => Err(e),
        }
    }
}

/// The parents by ULID, in the merge's order; a parent gone (retention) ends the merge.
fn find<'a>(blocks: &'a [Block], names: &[String]) -> Result<Vec<&'a Block>, BlockError> {
    names
        .iter()
        .map(|n| {
            blocks.iter().find(|b| &b.meta().ulid == n).ok_or_else(|| {
                BlockError::InvalidInput(format!("block {n} went away during its compaction"))
            })
        })
        .collect()
}

/// Writes one series of the merge: `sources` are (parent index, series ref) pairs.
pub(crate) fn write_series(
    writer: &mut BlockWriter,
    parents: &[&Block],
    overlapping: bool,
    labels: &Labels,
    sources: &Sources,
) -> Result<(), BlockError> {
    let mut metas = Vec::new();
    let untouched = sources
        .iter()
        .all(|&(pi, r)| parents[pi].tombstones().get(u64::from(r)).is_empty());
    if !overlapping && untouched {
        // Parents in time order and not overlapping: their chunks, copied as they are.
        let mut chunks = Vec::new();
        for &(pi, r) in sources {
            parents[pi].series(r, &mut metas)?;
            for m in &metas {
                let (encoding, data) = parents[pi].chunk(m.chunk_ref)?;
                chunks.push(BlockChunk {
                    min_time: m.min_time,
                    max_time: m.max_time,
                    encoding,
                    data,
                });
            }
        }
        chunks.sort_by_key(|c| c.min_time);
        return writer.add_series(labels, &chunks);
    }
    let mut samples = Vec::new();
    for &(pi, r) in sources {
        parents[pi].series(r, &mut metas)?;
        samples.extend(
            parents[pi]
                .samples(r, &metas, i64::MIN, i64::MAX)?
                .collect_checked()?,
        );
    }
    // Stable: of samples with one timestamp, the first parent's is kept.
    samples.sort_by_key(|s| s.0);
    samples.dedup_by_key(|s| s.0);
    let encoded: Vec<(i64, i64, XorChunk)> = samples
        .chunks(SAMPLES_PER_CHUNK)
        .map(|part| {
            let mut c = XorChunk::new();
            for &(t, v) in part {
                c.append(t, v);
            }
            (part[0].0, part[part.len() - 1].0, c)
        })
        .collect();
    let chunks: Vec<BlockChunk<'_>> = encoded
        .iter()
        .map(|(lo, hi, c)| BlockChunk {
            min_time: *lo,
            max_time: *hi,
            encoding: Encoding::Xor,
            data: c.bytes(),
        })
        .collect();
    writer.add_series(labels, &chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const H: i64 = 3_600_000;

    fn b(min_time: i64, max_time: i64) -> PlanMeta {
        PlanMeta {
            min_time,
            max_time,
            failed: false,
            num_series: 10,
            num_tombstones: 0,
        }
    }

    #[test]
    fn ranges_as_prometheus() {
        assert_eq!(
            block_ranges(2 * H, 31 * 24 * H),
            [2 * H, 6 * H, 18 * H, 54 * H, 162 * H, 486 * H]
        );
        // 15 d retention: 10 % is 36 h.
        assert_eq!(block_ranges(2 * H, 36 * H), [2 * H, 6 * H, 18 * H]);
    }

    #[test]
    fn three_2h_blocks_become_6h_but_never_the_newest() {
        let r = block_ranges(2 * H, 1000 * H);
        // The newest is held back; the two older neither fill 6 h nor end before the last
        // of the rest starts.
        let blocks = [b(0, 2 * H), b(2 * H, 4 * H), b(4 * H, 6 * H)];
        assert!(plan(&blocks, &r).is_empty());
        let blocks = [
            b(0, 2 * H),
            b(2 * H, 4 * H),
            b(4 * H, 6 * H),
            b(6 * H, 8 * H),
        ];
        assert_eq!(plan(&blocks, &r), [0, 1, 2]);
        assert!(plan(&[b(0, 2 * H)], &r).is_empty());
        assert!(plan(&[b(0, 2 * H), b(2 * H, 4 * H)], &r).is_empty());
    }

    #[test]
    fn overlapping_blocks_go_first() {
        let r = block_ranges(2 * H, 1000 * H);
        let blocks = [
            b(0, 2 * H),
            b(2 * H, 4 * H),
            b(3 * H, 5 * H),
            b(6 * H, 8 * H),
        ];
        assert_eq!(plan(&blocks, &r), [1, 2]);
    }

    #[test]
    fn straddling_blocks_and_failed_ones_are_left() {
        let r = block_ranges(2 * H, 1000 * H);
        let mut failed = b(0, 2 * H);
        failed.failed = true;
        let blocks = [failed, b(2 * H, 4 * H), b(4 * H, 6 * H), b(6 * H, 8 * H)];
        assert!(plan(&blocks, &r[..2]).is_empty());
        // A 6 h block from 4 h to 10 h straddles the 6 h boundary at 6 h.
        assert_eq!(
            split_by_range(&[b(4 * H, 10 * H), b(12 * H, 14 * H)], 6 * H),
            vec![vec![1]]
        );
    }

    /// A level-1 block of `[min, max)` in `dir`: series `k` of `keys` with a sample every
    /// `every` ms, its values depending on `salt` (so that overlapping parents differ).
    fn parent(dir: &Path, min: i64, max: i64, keys: &[u32], every: i64, salt: f64) -> Block {
        let chunks: Vec<(Labels, XorChunk)> = keys
            .iter()
            .map(|&k| {
                let (i, g) = (k.to_string(), (k % 3).to_string());
                let l = Labels::from_pairs([("__name__", "m"), ("g", &g), ("i", &i)]).unwrap();
                let mut c = XorChunk::new();
                for t in (min..max).step_by(every as usize) {
                    c.append(t, t as f64 * f64::from(k) + salt);
                }
                (l, c)
            })
            .collect();
        let mut series: Vec<(Labels, Vec<BlockChunk<'_>>)> = chunks
            .iter()
            .map(|(l, c)| (l.clone(), vec![BlockChunk::of_xor(c).unwrap()]))
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        let meta = crate::block::write_block(dir, NewBlock::level1(min, max), &series).unwrap();
        Block::open(&dir.join(meta.ulid)).unwrap()
    }

    /// Lists and writes the merge of `parents` into `out`, `n` series a slice; the block and
    /// how many listing slices it took.
    fn merge_in_slices(out: &Path, parents: &[&Block], n: usize) -> (BlockMeta, usize) {
        let mut listing = Listing::new();
        let mut slices = 1;
        while !listing.list(parents, n).unwrap() {
            slices += 1;
        }
        let metas: Vec<&BlockMeta> = parents.iter().map(|b| b.meta()).collect();
        let (block, overlapping) = merged_block(&metas);
        let mut w =
            BlockWriter::create(out, block, listing.symbols.iter().map(|s| s.as_str())).unwrap();
        let mut series = listing.series.into_iter();
        while !write_some(&mut w, parents, overlapping, &mut series, n).unwrap() {}
        (w.finish().unwrap(), slices)
    }

    fn same_files(a: &Path, am: &BlockMeta, b: &Path, bm: &BlockMeta) {
        assert_eq!(am.stats, bm.stats);
        for f in ["index", "chunks/000001"] {
            let read = |d: &Path, m: &BlockMeta| std::fs::read(d.join(&m.ulid).join(f)).unwrap();
            assert!(read(a, am) == read(b, bm), "{f} differs");
        }
    }

    /// Series 0..12 in the first block, 6..20 in the second, the even ones in the third.
    fn keys() -> [Vec<u32>; 3] {
        [
            (0..12).collect(),
            (6..20).collect(),
            (0..20).step_by(2).collect(),
        ]
    }

    #[test]
    fn a_merge_in_slices_writes_the_block_a_merge_at_once_writes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let k = keys();
        let aligned = [
            parent(d, 0, 1000, &k[0], 100, 0.0),
            parent(d, 1000, 2000, &k[1], 100, 0.0),
            parent(d, 2000, 3000, &k[2], 100, 0.0),
        ];
        // Overlapping parents: samples merged and re-encoded, the first parent's value kept.
        let overlapping = [
            parent(d, 0, 1000, &k[0], 100, 0.0),
            parent(d, 500, 1500, &k[1], 50, 0.25),
        ];
        for (blocks, refs, series) in [(&aligned[..], 36usize, 20), (&overlapping[..], 26, 20)] {
            let parents: Vec<&Block> = blocks.iter().collect();
            let (once, sliced) = (d.join("once"), d.join("sliced"));
            let (a, one) = merge_in_slices(&once, &parents, usize::MAX);
            let (b, slices) = merge_in_slices(&sliced, &parents, 5);
            assert_eq!(one, 1);
            // Slices run across the parents' boundaries: 5 series each.
            assert_eq!(slices, refs.div_ceil(5));
            assert_eq!(a.stats.num_series, series);
            same_files(&once, &a, &sliced, &b);
            let merged = Block::open(&once.join(&a.ulid)).unwrap();
            // Every (series, timestamp) of the parents, once.
            let want: BTreeSet<(String, i64)> = blocks
                .iter()
                .flat_map(|b| b.dump(i64::MIN, i64::MAX).unwrap())
                .flat_map(|(l, s)| s.into_iter().map(move |p| (l.to_string(), p.0)))
                .collect();
            assert_eq!(a.stats.num_samples, want.len() as u64);
            let got = merged.dump(i64::MIN, i64::MAX).unwrap();
            // Series 7 lies in both parents (overlapping or not): each timestamp once.
            let s7 = &got.iter().find(|(l, _)| l.get("i") == Some("7")).unwrap().1;
            let ts: BTreeSet<i64> = s7.iter().map(|p| p.0).collect();
            assert_eq!(ts.len(), s7.len());
            if blocks.len() == 2 {
                // At 500 the first parent's value (7 × 500), not the second's (+ 0.25).
                assert!(s7.contains(&(500, 3500.0)));
            }
        }
    }

    #[test]
    fn the_compactor_in_zero_budget_steps_merges_and_removes_the_parents() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(move || async move {
                let k = keys();
                let mut blocks = vec![
                    parent(&d, 0, 1000, &k[0], 100, 0.0),
                    parent(&d, 1000, 2000, &k[1], 100, 0.0),
                    parent(&d, 2000, 3000, &k[2], 100, 0.0),
                    parent(&d, 3000, 4000, &k[0], 100, 0.0),
                ];
                let once = d.join("once");
                let parents: Vec<&Block> = blocks[..3].iter().collect();
                let (want, _) = merge_in_slices(&once, &parents, usize::MAX);
                let gone: Vec<PathBuf> = parents.iter().map(|b| b.dir().to_path_buf()).collect();
                let mut c = BlockCompactor::new(
                    block_ranges(1000, 100_000),
                    1,
                    Duration::ZERO,
                    Duration::from_secs(10),
                );
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut working = 0;
                loop {
                    assert!(Instant::now() < deadline, "the merge never finished");
                    match c.step(&d, &mut blocks).unwrap() {
                        MergeStep::Done => break,
                        MergeStep::Working => working += 1,
                        MergeStep::Waiting => glommio::timer::sleep(Duration::from_millis(1)).await,
                        MergeStep::Idle => panic!("the merge stopped"),
                    }
                }
                // One series a step: 36 listed and 20 written, each in a step of its own.
                assert!(working >= 56, "{working} steps");
                assert!(!c.is_busy());
                assert_eq!((c.stats.compactions, c.stats.parents_deleted), (1, 3));
                assert_eq!(blocks.len(), 2);
                let merged = &blocks[0];
                assert_eq!(merged.meta().compaction.level, 2);
                same_files(&once, &want, &d, merged.meta());
                for p in &gone {
                    assert!(!p.exists(), "{} left", p.display());
                }
                let left: Vec<_> = std::fs::read_dir(&d)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(".tmp"))
                    .collect();
                assert!(left.is_empty(), "{left:?}");
                assert_eq!(c.step(&d, &mut blocks).unwrap(), MergeStep::Idle);
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn tombstoned_blocks_are_rewritten_alone() {
        let r = block_ranges(2 * H, 1000 * H);
        // Big enough (half the ranges up: 54 h) and 1 of 10 series tombstoned.
        let mut big = b(0, 54 * H);
        big.num_tombstones = 1;
        assert_eq!(plan(&[big, b(54 * H, 56 * H)], &r), [0]);
        big.max_time = 18 * H;
        assert!(plan(&[big, b(18 * H, 20 * H)], &r).is_empty());
        let mut small = b(0, 2 * H);
        small.num_tombstones = 10;
        assert_eq!(plan(&[small, b(18 * H, 20 * H)], &r), [0]);
        small.num_tombstones = 1;
        assert!(plan(&[small, b(18 * H, 20 * H)], &r).is_empty());
    }
}
