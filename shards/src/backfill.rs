//! Backfill: level-1 blocks built from a stream of samples read from a file, with the rules of
//! `promtool tsdb create-blocks-from openmetrics` (Prometheus 2.42), each series written into
//! the shard its hash picks.
//!
//! promtool cuts the input's time span into block-duration windows aligned on
//! `duration * (mint / duration)` (Go's truncating division), re-reads the whole input once
//! per window, and feeds that window's samples to a fresh head whose chunk range is twice
//! the block duration, committing every 5000 samples. The head decides which samples
//! survive: at append time a sample is checked against what the series held at the last
//! commit (older: "out of order sample", same time and other value: "duplicate sample for
//! timestamp", both fatal), and inside one commit later samples that are not newer than the
//! series' newest are dropped silently. Each window becomes one block covering exactly
//! `[first sample, last sample + 1)`. This file reproduces all of that in a single pass over
//! the input (every window at once, each with its own commit counter), so that the same
//! input gives the same blocks' samples, chunks and errors, without re-reading the input.
//! Unlike promtool it writes nothing when any window fails: the caller learns the error
//! before any block exists.
//!
//! It owns the window and commit bookkeeping, chunk cutting (the head's rules, through
//! `head::series`), and writing the windows as blocks. It never parses input text (the
//! caller decodes labels and hands over series ids) and never decides the shard count.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::block::{BlockChunk, BlockError, BlockMeta, BlockWriter, NewBlock};
use crate::chunkenc::{Encoding, XorChunk};
use crate::head::series::{
    appendable_after, compute_chunk_end_time, range_for_timestamp, AppendRefusal, Appendable,
    SAMPLES_PER_CHUNK,
};
use crate::labels::{shard_for, Labels};

/// promtool's (and the head's) default block duration, 2 h in ms.
pub const DEFAULT_BLOCK_DURATION: i64 = 2 * 3600 * 1000;
/// promtool commits its appender after this many samples of a window.
pub const SAMPLES_PER_COMMIT: u32 = 5000;

#[derive(Debug, Error)]
pub enum BackfillError {
    /// Older than the series' newest committed sample (promtool: `add sample: ...`).
    #[error("out of order sample")]
    OutOfOrder,
    #[error("duplicate sample for timestamp")]
    DuplicateTimestamp,
    #[error(transparent)]
    Block(#[from] BlockError),
}

/// The block duration promtool uses for a `--max-block-duration` (ms): the largest of the
/// ranges 2 h × 3^k (k < 10) not above it, and never less than 2 h.
pub fn compatible_block_duration(max_block_duration: i64) -> i64 {
    let mut d = DEFAULT_BLOCK_DURATION;
    for _ in 1..10 {
        if d * 3 > max_block_duration {
            break;
        }
        d *= 3;
    }
    d
}

/// A chunk cut and closed: its closed time range and bytes.
struct CutChunk {
    min_time: i64,
    max_time: i64,
    bytes: Box<[u8]>,
}

/// One series inside one window: the head's `memSeries` reduced to what backfill needs.
struct WindowSeries {
    id: u32,
    cut: Vec<CutChunk>,
    /// Never empty: a window series exists from its first sample on.
    open: XorChunk,
    open_min: i64,
    next_at: i64,
    /// The commit the snapshot below belongs to.
    snap_batch: u32,
    /// The newest sample at the last commit, if the series had been committed.
    snap: Option<(i64, f64)>,
}

impl WindowSeries {
    fn new(id: u32, batch: u32) -> Self {
        WindowSeries {
            id,
            cut: Vec::new(),
            open: XorChunk::new(),
            open_min: i64::MIN,
            next_at: i64::MIN,
            snap_batch: batch,
            snap: None,
        }
    }

    fn newest(&self) -> Option<(i64, f64)> {
        Some((self.open.last_time()?, self.open.last_value()?))
    }

    /// The head's in-order append with its chunk cutting (`memSeries.append`); samples not
    /// newer than the newest are dropped, as a commit drops them.
    fn apply(&mut self, t: i64, v: f64, chunk_range: i64) -> bool {
        match self.open.last_time() {
            None => {
                self.open_min = t;
                self.next_at = range_for_timestamp(t, chunk_range);
            }
            Some(last) if t <= last => return false,
            Some(last) => {
                let n = self.open.num_samples();
                if n == SAMPLES_PER_CHUNK / 4 {
                    self.next_at = compute_chunk_end_time(self.open_min, last, self.next_at);
                }
                if t >= self.next_at || n >= SAMPLES_PER_CHUNK * 2 {
                    let full = std::mem::take(&mut self.open);
                    self.cut.push(CutChunk {
                        min_time: self.open_min,
                        max_time: last,
                        bytes: full.into_bytes().into_boxed_slice(),
                    });
                    self.open_min = t;
                    self.next_at = range_for_timestamp(t, chunk_range);
                }
            }
        }
        self.open.append(t, v);
        true
    }
}

/// One block-duration window: promtool's per-window head and appender.
#[derive(Default)]
struct Window {
    batch: u32,
    in_batch: u32,
    /// Series id → index in `series`, `u32::MAX` when absent.
    slots: Vec<u32>,
    series: Vec<WindowSeries>,
    min_t: i64,
    max_t: i64,
    samples: u64,
}

/// Samples accumulated so far, by window; see the module doc.
pub struct Backfill {
    block_duration: i64,
    /// promtool's head uses twice the block duration; a head replaying its WAL, one.
    chunk_range: i64,
    /// Refused samples fail their window (promtool); otherwise they are dropped (WAL replay).
    strict: bool,
    shards: usize,
    labels: Vec<Labels>,
    shard_of: Vec<u32>,
    by_labels: HashMap<Labels, u32>,
    /// Keyed by `t.div_euclid(block_duration)`.
    windows: BTreeMap<i64, Window>,
    /// The earliest window whose appends failed: it and later windows are never written.
    failed: Option<(i64, BackfillError)>,
    /// Over every sample seen, as promtool's first pass computes them.
    min_t: i64,
    max_t: i64,
}

/// A level-1 block written by `Backfill::write`.
#[derive(Debug)]
pub struct WrittenBlock {
    pub shard: usize,
    pub dir: PathBuf,
    pub meta: BlockMeta,
}

impl Backfill {
    /// promtool's rules.
    pub fn new(block_duration: i64, shards: usize) -> Self {
        Backfill {
            block_duration,
            chunk_range: 2 * block_duration,
            strict: true,
            shards: shards.max(1),
            labels: Vec::new(),
            shard_of: Vec::new(),
            by_labels: HashMap::new(),
            windows: BTreeMap::new(),
            failed: None,
            min_t: i64::MAX,
            max_t: i64::MIN,
        }
    }

    /// A head's rules when it replays a WAL: a sample not newer than its series' newest is
    /// dropped, never an error, and chunks are cut on the block duration.
    pub fn replaying(block_duration: i64, shards: usize) -> Self {
        Backfill {
            chunk_range: block_duration,
            strict: false,
            ..Backfill::new(block_duration, shards)
        }
    }

    /// The id of a series (created on first use); labels with empty values must already be
    /// dropped, as `Labels` does.
    pub fn series_id(&mut self, labels: Labels) -> u32 {
        if let Some(&id) = self.by_labels.get(&labels) {
            return id;
        }
        let id = self.labels.len() as u32;
        self.shard_of
            .push(shard_for(labels.hash(), self.shards) as u32);
        self.labels.push(labels.clone());
        self.by_labels.insert(labels, id);
        id
    }

    pub fn num_series(&self) -> usize {
        self.labels.len()
    }

    /// Adds one sample of series `id` (from `series_id`), in input order. A refused sample
    /// is remembered as its window's failure and reported by `finish`.
    pub fn append(&mut self, id: u32, t: i64, v: f64) {
        self.min_t = self.min_t.min(t);
        self.max_t = self.max_t.max(t);
        let key = t.div_euclid(self.block_duration);
        if self.failed.as_ref().is_some_and(|(k, _)| key >= *k) {
            return;
        }
        let chunk_range = self.chunk_range;
        let w = self.windows.entry(key).or_default();
        let slot = id as usize;
        if w.slots.len() <= slot {
            w.slots.resize(slot + 1, u32::MAX);
        }
        let idx = match w.slots[slot] {
            u32::MAX => {
                w.slots[slot] = w.series.len() as u32;
                w.series.push(WindowSeries::new(id, w.batch));
                w.series.len() - 1
            }
            i => i as usize,
        };
        let s = &mut w.series[idx];
        if s.snap_batch != w.batch {
            s.snap_batch = w.batch;
            s.snap = s.newest();
        }
        if let (true, Some((lt, lv))) = (self.strict, s.snap) {
            let refusal = match appendable_after(lt, lv, t, v) {
                Appendable::No(AppendRefusal::OutOfOrder) => Some(BackfillError::OutOfOrder),
                Appendable::No(_) => Some(BackfillError::DuplicateTimestamp),
                Appendable::Yes | Appendable::Duplicate => None,
            };
            if let Some(e) = refusal {
                self.fail(key, e);
                return;
            }
        }
        if s.apply(t, v, chunk_range) {
            if w.samples == 0 {
                (w.min_t, w.max_t) = (t, t);
            } else {
                w.min_t = w.min_t.min(t);
                w.max_t = w.max_t.max(t);
            }
            w.samples += 1;
        }
        w.in_batch += 1;
        if w.in_batch == SAMPLES_PER_COMMIT {
            w.batch += 1;
            w.in_batch = 0;
        }
    }

    fn fail(&mut self, key: i64, e: BackfillError) {
        if self.failed.as_ref().is_none_or(|(k, _)| key < *k) {
            self.windows.split_off(&key);
            self.failed = Some((key, e));
        }
    }

    /// The first error promtool would report, if any: nothing may be written then.
    pub fn error(&self) -> Option<&BackfillError> {
        self.failed.as_ref().map(|(_, e)| e)
    }

    /// Writes every window with samples as one block per shard that has series in it, into
    /// `shard_dirs[shard]`, windows in time order. If anything fails, the blocks already
    /// written by this call are removed again and the error returned.
    pub fn write(mut self, shard_dirs: &[PathBuf]) -> Result<Vec<WrittenBlock>, BackfillError> {
        if let Some((_, e)) = self.failed.take() {
            return Err(e);
        }
        assert_eq!(shard_dirs.len(), self.shards, "one directory per shard");
        // promtool's first window starts at `duration * (mint / duration)`, truncating toward
        // zero: for a negative, unaligned mint that skips the window holding it.
        let first = if self.min_t == i64::MAX {
            0
        } else {
            self.block_duration * (self.min_t / self.block_duration)
        };
        let windows = std::mem::take(&mut self.windows);
        let mut written = Vec::new();
        for (key, w) in windows {
            if key * self.block_duration < first || w.samples == 0 {
                continue;
            }
            match self.write_window(w, shard_dirs, &mut written) {
                Ok(()) => {}
                Err(e) => {
                    for b in &written {
                        let _ = std::fs::remove_dir_all(&b.dir);
                    }
                    return Err(e);
                }
            }
        }
        Ok(written)
    }

    fn write_window(
        &self,
        w: Window,
        shard_dirs: &[PathBuf],
        written: &mut Vec<WrittenBlock>,
    ) -> Result<(), BackfillError> {
        let mut per_shard: Vec<Vec<WindowSeries>> = (0..self.shards).map(|_| Vec::new()).collect();
        for s in w.series {
            per_shard[self.shard_of[s.id as usize] as usize].push(s);
        }
        let labels = &self.labels;
        // The shards' blocks are independent files: write them side by side.
        let results: Vec<Result<Option<WrittenBlock>, BackfillError>> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = per_shard
                    .into_iter()
                    .enumerate()
                    .map(|(shard, series)| {
                        let dir = &shard_dirs[shard];
                        let (min_t, max_t) = (w.min_t, w.max_t);
                        scope.spawn(move || {
                            write_shard_block(dir, shard, labels, series, min_t, max_t)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            });
        let mut first_err = None;
        for r in results {
            match r {
                Ok(Some(b)) => written.push(b),
                Ok(None) => {}
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// One shard's block of one window: series sorted by labels, `[min_t, max_t + 1)`.
fn write_shard_block(
    dir: &Path,
    shard: usize,
    labels: &[Labels],
    mut series: Vec<WindowSeries>,
    min_t: i64,
    max_t: i64,
) -> Result<Option<WrittenBlock>, BackfillError> {
    if series.is_empty() {
        return Ok(None);
    }
    let of = |s: &WindowSeries| &labels[s.id as usize];
    series.sort_unstable_by(|a, b| of(a).as_slice().cmp(of(b).as_slice()));
    let mut symbols = BTreeSet::from([""]);
    for s in &series {
        for l in of(s) {
            symbols.insert(l.name.as_str());
            symbols.insert(l.value.as_str());
        }
    }
    let mut w = BlockWriter::create(dir, NewBlock::level1(min_t, max_t + 1), symbols)?;
    let mut chunks = Vec::new();
    for s in &series {
        chunks.clear();
        chunks.extend(s.cut.iter().map(|c| BlockChunk {
            min_time: c.min_time,
            max_time: c.max_time,
            encoding: Encoding::Xor,
            data: &c.bytes,
        }));
        if let (Some(first), Some(last)) = (s.open.first_time(), s.open.last_time()) {
            chunks.push(BlockChunk {
                min_time: first,
                max_time: last,
                encoding: Encoding::Xor,
                data: s.open.bytes(),
            });
        }
        w.add_series(of(s), &chunks)?;
    }
    let meta = w.finish()?;
    Ok(Some(WrittenBlock {
        shard,
        dir: dir.join(&meta.ulid),
        meta,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::reader::SeriesDump;
    use crate::block::Block;

    const H: i64 = 3600 * 1000;

    fn l(v: &str) -> Labels {
        Labels::from_pairs([("__name__", "m"), ("i", v)]).unwrap()
    }

    fn read_all(blocks: &[WrittenBlock]) -> Vec<(i64, i64, SeriesDump)> {
        blocks
            .iter()
            .map(|b| {
                let blk = Block::open(&b.dir).unwrap();
                (
                    b.meta.min_time,
                    b.meta.max_time,
                    blk.dump(i64::MIN, i64::MAX).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn block_durations_as_promtool() {
        assert_eq!(compatible_block_duration(0), 2 * H);
        assert_eq!(compatible_block_duration(2 * H), 2 * H);
        assert_eq!(compatible_block_duration(5 * H), 2 * H);
        assert_eq!(compatible_block_duration(6 * H), 6 * H);
        assert_eq!(compatible_block_duration(24 * H), 18 * H);
        assert_eq!(compatible_block_duration(i64::MAX / 4), 2 * H * 3i64.pow(9));
    }

    #[test]
    fn windows_blocks_and_in_batch_drops() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Backfill::new(2 * H, 1);
        let a = b.series_id(l("a"));
        let c = b.series_id(l("c"));
        b.append(a, 1000, 1.0);
        b.append(a, 900, 5.0); // inside one commit: dropped silently
        b.append(a, 1000, 7.0); // same time, other value, same commit: dropped
        b.append(c, 2 * H + 5, 2.0); // second window
        b.append(a, 1500, 2.0);
        assert!(b.error().is_none());
        let blocks = b.write(&[dir.path().to_path_buf()]).unwrap();
        let got = read_all(&blocks);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].0, got[0].1), (1000, 1501));
        assert_eq!(got[0].2, vec![(l("a"), vec![(1000, 1.0), (1500, 2.0)])]);
        assert_eq!((got[1].0, got[1].1), (2 * H + 5, 2 * H + 6));
        assert_eq!(got[1].2, vec![(l("c"), vec![(2 * H + 5, 2.0)])]);
    }

    #[test]
    fn out_of_order_across_a_commit_fails_the_window_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Backfill::new(2 * H, 1);
        let a = b.series_id(l("a"));
        for k in 0..SAMPLES_PER_COMMIT as i64 {
            b.append(a, 10_000 + k, k as f64);
        }
        b.append(a, 9_999, 0.0);
        assert!(matches!(b.error(), Some(BackfillError::OutOfOrder)));
        assert!(b.write(&[dir.path().to_path_buf()]).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut b = Backfill::new(2 * H, 1);
        let a = b.series_id(l("a"));
        for k in 0..SAMPLES_PER_COMMIT as i64 {
            b.append(a, 10_000 + k, k as f64);
        }
        b.append(a, 10_000 + 4_999, 4_999.0); // an identical duplicate: accepted, dropped
        assert!(b.error().is_none());
        b.append(a, 10_000 + 4_999, 1.0);
        assert!(matches!(b.error(), Some(BackfillError::DuplicateTimestamp)));
    }

    #[test]
    fn the_earliest_failing_window_is_reported() {
        let mut b = Backfill::new(2 * H, 1);
        let a = b.series_id(l("a"));
        for k in 0..SAMPLES_PER_COMMIT as i64 {
            b.append(a, 3 * H + k, 1.0);
        }
        b.append(a, 3 * H, 2.0); // duplicate timestamp in window 1
        for k in 0..SAMPLES_PER_COMMIT as i64 {
            b.append(a, 10 + k, 1.0);
        }
        b.append(a, 5, 1.0); // out of order in window 0
        assert!(matches!(b.error(), Some(BackfillError::OutOfOrder)));
    }

    #[test]
    fn series_go_to_their_shards_and_chunks_follow_the_head_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(i.to_string())).collect();
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap();
        }
        let mut b = Backfill::new(2 * H, 3);
        let ids: Vec<u32> = (0..20).map(|i| b.series_id(l(&i.to_string()))).collect();
        // 1 h at 15 s: 240 samples a series, cut as the head cuts them with a 4 h range.
        for k in 0..240i64 {
            for &id in &ids {
                b.append(id, k * 15_000, k as f64);
            }
        }
        let blocks = b.write(&dirs).unwrap();
        let mut seen = 0;
        for blk in &blocks {
            let open = Block::open(&blk.dir).unwrap();
            for (labels, samples) in open.dump(i64::MIN, i64::MAX).unwrap() {
                assert_eq!(shard_for(labels.hash(), 3), blk.shard);
                assert_eq!(samples.len(), 240);
                seen += 1;
            }
            // computeChunkEndTime after 30 samples: (4h - 0) / (30 × 15 s × 4) = 8 chunks per
            // 4 h range, so 1800 s chunks: 120 samples each.
            assert_eq!(
                blk.meta.stats.num_chunks,
                2 * blk.meta.stats.num_series,
                "{:?}",
                blk.meta.stats
            );
        }
        assert_eq!(seen, 20);
    }
}
