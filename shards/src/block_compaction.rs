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
//! The merge runs in steps like head compaction (`compact`): one step lists the series
//! of the parents, each further step writes `series_per_step` series, then the files are
//! closed on the executor's blocking thread (`compact::offload`: chunk and index fsyncs,
//! meta.json, the rename), during which steps only report `MergeStep::Waiting`, and the
//! blocks are swapped. Chunks are copied as they are when the parents do not
//! overlap and no tombstone touches them; otherwise the series' samples are merged
//! (a timestamp present in several blocks is kept once) and re-encoded, 120 per chunk.
//! This module never touches the head, the WAL or retention.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::block::meta::BlockDesc;
use crate::block::{
    Block, BlockChunk, BlockError, BlockMeta, BlockWriter, Compaction, NewBlock, Ulid,
};
use crate::chunkenc::{Encoding, XorChunk};
use crate::compact::{offload, Offloaded};
use crate::labels::Labels;
use crate::retention::delete_block;

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

struct Merge {
    parents: Vec<String>,
    overlapping: bool,
    writer: Box<BlockWriter>,
    series: Vec<(Labels, Sources)>,
    next: usize,
}

/// What one step of `BlockCompactor::step` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeStep {
    /// Nothing to merge.
    Idle,
    /// A slice of the merge ran; more remain.
    Working,
    /// The new block's files are being closed on the blocking thread.
    Waiting,
    /// The merged block is in place and its parents are gone.
    Done,
}

/// A merged block whose files are being closed off the executor.
struct Closing {
    parents: Vec<String>,
    pending: Offloaded<BlockMeta>,
}

pub struct BlockCompactor {
    ranges: Vec<i64>,
    series_per_step: usize,
    retry_after: Duration,
    not_before: Option<Instant>,
    job: Option<Merge>,
    closing: Option<Closing>,
    /// When the merge under way started.
    started: Option<Instant>,
    pub stats: BlockCompactionStats,
}

impl BlockCompactor {
    /// `ranges` from `block_ranges`; after a failure no merge starts for `retry_after`.
    pub fn new(ranges: Vec<i64>, series_per_step: usize, retry_after: Duration) -> Self {
        BlockCompactor {
            ranges,
            series_per_step: series_per_step.max(1),
            retry_after,
            not_before: None,
            job: None,
            closing: None,
            started: None,
            stats: BlockCompactionStats::default(),
        }
    }

    pub fn is_busy(&self) -> bool {
        self.job.is_some() || self.closing.is_some()
    }

    /// One slice of work. A failure abandons the merge (the unfinished block is removed,
    /// the parents stay) and is counted.
    pub fn step(&mut self, dir: &Path, blocks: &mut Vec<Block>) -> Result<MergeStep, BlockError> {
        if !self.is_busy() && self.not_before.is_some_and(|t| Instant::now() < t) {
            return Ok(MergeStep::Idle);
        }
        let r = match self.closing.take() {
            Some(c) => self.finish_step(dir, blocks, c),
            None => self.step_inner(dir, blocks),
        };
        if let Err(e) = &r {
            self.not_before = Some(Instant::now() + self.retry_after);
            self.job = None;
            self.stats.failures += 1;
            self.stats.last_error = Some(e.to_string());
        }
        r
    }

    fn step_inner(&mut self, dir: &Path, blocks: &mut Vec<Block>) -> Result<MergeStep, BlockError> {
        let Some(mut job) = self.job.take() else {
            let metas: Vec<PlanMeta> = blocks.iter().map(|b| PlanMeta::of(b.meta())).collect();
            let chosen = plan(&metas, &self.ranges);
            if chosen.is_empty() {
                return Ok(MergeStep::Idle);
            }
            let parents: Vec<&Block> = chosen.iter().map(|&i| &blocks[i]).collect();
            self.job = Some(start(dir, &parents)?);
            self.started = Some(Instant::now());
            return Ok(MergeStep::Working);
        };
        let parents = find(blocks, &job.parents)?;
        if job.next < job.series.len() {
            let end = (job.next + self.series_per_step).min(job.series.len());
            for (labels, sources) in &job.series[job.next..end] {
                write_series(&mut job.writer, &parents, job.overlapping, labels, sources)?;
            }
            job.next = end;
            self.job = Some(job);
            return Ok(MergeStep::Working);
        }
        let Merge {
            parents, writer, ..
        } = job;
        if writer.stats().num_samples > 0 {
            // Mostly fsyncs and the index's postings: off the executor, which keeps serving.
            let pending = offload(move || writer.finish());
            self.closing = Some(Closing { parents, pending });
            return Ok(MergeStep::Working);
        }
        // Nothing left (all deleted): no block, the parents simply go.
        drop(writer);
        self.swap(blocks, None, &parents)
    }

    /// Waits for the offloaded close, then puts the merged block in place of its parents.
    fn finish_step(
        &mut self,
        dir: &Path,
        blocks: &mut Vec<Block>,
        closing: Closing,
    ) -> Result<MergeStep, BlockError> {
        let Some(meta) = closing.pending.take() else {
            self.closing = Some(closing);
            return Ok(MergeStep::Waiting);
        };
        let path = dir.join(&meta?.ulid);
        if let Err(e) = find(blocks, &closing.parents) {
            // A parent went (retention) while the files were closed: the merged block
            // would bring its samples back.
            delete_block(&path)?;
            return Err(e);
        }
        self.swap(blocks, Some(Block::open(&path)?), &closing.parents)
    }

    /// Adds the merged block (if any) and deletes its parents.
    fn swap(
        &mut self,
        blocks: &mut Vec<Block>,
        merged: Option<Block>,
        names: &[String],
    ) -> Result<MergeStep, BlockError> {
        blocks.extend(merged);
        self.stats.compactions += 1;
        if let Some(t) = self.started.take() {
            self.stats.durations.observe(t.elapsed());
        }
        for name in names {
            if let Some(i) = blocks.iter().position(|b| &b.meta().ulid == name) {
                let b = blocks.remove(i);
                let path = b.dir().to_path_buf();
                // Unmapped first, so that the space is released with the files.
                drop(b);
                delete_block(&path)?;
                self.stats.parents_deleted += 1;
            }
        }
        blocks.sort_by(|a, b| {
            (a.meta().min_time, &a.meta().ulid).cmp(&(b.meta().min_time, &b.meta().ulid))
        });
        Ok(MergeStep::Done)
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

/// Lists the parents' series and symbols and starts the new block.
fn start(dir: &Path, parents: &[&Block]) -> Result<Merge, BlockError> {
    let mut series: BTreeMap<Labels, Sources> = BTreeMap::new();
    let mut symbols: BTreeSet<String> = BTreeSet::from([String::new()]);
    let mut metas = Vec::new();
    for (pi, b) in parents.iter().enumerate() {
        for r in b.index().all_postings()? {
            let labels = b.series(r, &mut metas)?;
            if !series.contains_key(&labels) {
                for l in labels.iter() {
                    symbols.insert(l.name.clone());
                    symbols.insert(l.value.clone());
                }
            }
            series.entry(labels).or_default().push((pi, r));
        }
    }
    let pm: Vec<&BlockMeta> = parents.iter().map(|b| b.meta()).collect();
    let ulid = Ulid::new();
    let mut sources: Vec<String> = pm
        .iter()
        .flat_map(|m| m.compaction.sources.iter().cloned())
        .collect();
    sources.sort();
    sources.dedup();
    let block = NewBlock {
        ulid,
        min_time: pm.iter().map(|m| m.min_time).min().unwrap_or(0),
        max_time: pm.iter().map(|m| m.max_time).max().unwrap_or(0),
        compaction: Compaction {
            level: pm.iter().map(|m| m.compaction.level).max().unwrap_or(0) + 1,
            sources,
            parents: pm
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
    let plan_metas: Vec<PlanMeta> = pm.iter().map(|m| PlanMeta::of(m)).collect();
    let overlapping = !overlapping(&plan_metas).is_empty();
    let writer = BlockWriter::create(dir, block, symbols.iter().map(|s| s.as_str()))?;
    Ok(Merge {
        parents: pm.iter().map(|m| m.ulid.clone()).collect(),
        overlapping,
        writer: Box::new(writer),
        series: series.into_iter().collect(),
        next: 0,
    })
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
