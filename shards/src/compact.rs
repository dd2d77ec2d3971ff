//! Head compaction (spec §10.1): when the head spans more than 1.5 block ranges, its oldest
//! range `[head min time, next multiple of the range)` becomes a level-1 block; then the
//! head is truncated at the block's max time, head snapshots and chunks_head files that
//! only cover the past are deleted, a new WAL segment is started and the lower two thirds
//! of the older segments are folded into a checkpoint (`wal::checkpoint`) and deleted.
//!
//! # Cooperative steps
//!
//! A shard's executor also serves its appends and queries, so compaction never runs as one
//! long call. `HeadCompactor::step` does about `step_budget` (0.5 ms) of work and returns; the
//! server drives the steps from a low-share task queue of their own (`compaction_queue`),
//! a library user after each append batch (`CompactionOptions::after_appends`) or in a loop
//! (`Shard::compact`). The work comes in slices between which the clock is read: collecting
//! candidate series with their labels and symbols into sorted sets (`series_per_step`
//! refs), writing series into the block (`series_per_step` series), then closing the chunk
//! files, closing the index (all postings), and meta.json + tombstones + rename, each of
//! which runs on the executor's blocking thread (`offload`) because it is mostly fsync and
//! bulk writes: meanwhile steps return `Progress::Waiting` at once and the executor keeps
//! serving. Then the head truncation (`series_per_step` refs a slice), the chunks_head
//! truncation (old files removed and the cut file fsynced on the blocking thread), the WAL
//! cut, and the checkpoint: its directory created in a task of its own (`offload_local`),
//! each WAL segment it reads mapped on the blocking thread (`WalReader` maps segments and
//! asks for read-ahead, so a slice's records are in the page cache), its records rewritten
//! `records_per_step` at a time, and its close, rename and the deletion of what it folds
//! again in a task of its own. The WAL cut writes the old segment's last page and creates
//! the new segment's file, and leaves the fsyncs to a task of its own
//! (`Wal::next_segment_detached`). So a step never waits for the disk while it holds the
//! shard.
//!
//! Between steps appends continue, which is safe: they only carry samples at or after
//! `head max time - range/2`, which lies after the block's max time, and series are only
//! ever removed by the truncation slices themselves. Reads between truncation slices find
//! the truncated range both in the new block and in some head series, and merge the
//! identical samples as they merge any overlap. Chunks are copied as they are when they lie
//! inside the block's range and no tombstone touches them (with the head's chunk range
//! equal to the block range they always lie inside); otherwise their remaining samples are
//! re-encoded, as Prometheus does.

use std::cell::RefCell;
use std::collections::{btree_map, BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::block::{Block, BlockChunk, BlockError, BlockMeta, BlockWriter, NewBlock};
use crate::chunkenc::{Encoding, FloatIterator, XorChunk};
use crate::chunks_head::ChunksHeadError;
use crate::compaction_timings::{DurationHistogram, DurationSum};
use crate::head::series::range_for_timestamp;
use crate::head::{snapshot, Head, HeadChunkView, HeadError, TruncateStats, Truncation};
use crate::labels::symbols::SymbolId;
use crate::labels::Labels;
use crate::tombstones::is_deleted;
use crate::wal::checkpoint::{segments_to_checkpoint, CheckpointStats, Checkpointer};
use crate::wal::{SegmentFs, Wal, WalError, WalReader};

#[derive(Debug, Clone)]
pub struct CompactionOptions {
    /// Head compaction on (the default). The block range is the head's chunk range.
    pub enabled: bool,
    /// `Shard::append_many` runs one step after each write (the default, for library users
    /// with no task of their own); the server turns this off and drives the steps from its
    /// low-share compaction queue instead.
    pub after_appends: bool,
    /// Series collected or written between two looks at the clock.
    pub series_per_step: usize,
    /// WAL records rewritten into a checkpoint between two looks at the clock.
    pub records_per_step: usize,
    /// A step goes on with further slices of work until it has run this long (at least
    /// one slice; zero makes every step exactly one slice). An append arriving mid-step
    /// waits for the rest of it: at 2 ms the p99 of append batches during head compaction
    /// was 2.6× the p99 outside it, at 0.5 ms 1.7–1.9× (`benches/compaction_latency.rs`).
    pub step_budget: Duration,
    /// After a failed step, compaction waits this long before trying again.
    pub retry_after: Duration,
    /// Blocks are merged up to this length (ms): Prometheus's
    /// `--storage.tsdb.max-block-duration`, by default 31 days or a tenth of the retention.
    /// At or below the block range, blocks are never merged.
    pub max_block_duration: i64,
    /// Until a head compaction has written a block, block merges wait this long after the
    /// shard opens: Prometheus's compaction loop first runs a minute after the database
    /// opens, so blocks found at open (a restart, a backfill, an import) are kept as they
    /// are until then, and retention chooses among them first.
    pub first_merge_after_open: Duration,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions {
            enabled: true,
            after_appends: true,
            series_per_step: 64,
            records_per_step: 4,
            step_budget: Duration::from_micros(500),
            retry_after: Duration::from_secs(10),
            max_block_duration: 31 * 24 * 3_600_000,
            first_merge_after_open: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Error)]
pub enum CompactionError {
    #[error("head compaction: {0}")]
    Block(#[from] BlockError),
    #[error("head compaction: {0}")]
    Head(#[from] HeadError),
    #[error("head compaction: WAL truncation: {0}")]
    Wal(#[from] WalError),
    #[error("head compaction: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// The range the head should compact next, if any: `[head min time, next multiple of
/// range)` once the head spans more than 1.5 ranges (Prometheus's `compactable`).
pub fn compactable_range(head: Option<(i64, i64)>, range: i64) -> Option<(i64, i64)> {
    let (mint, maxt) = head?;
    if range <= 0 || maxt.saturating_sub(mint) <= range / 2 * 3 {
        return None;
    }
    Some((mint, range_for_timestamp(mint, range)))
}

/// What a step did.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Nothing to do.
    Idle,
    /// A slice of work was done; more follows.
    Working,
    /// Block files are being closed off the executor; the next step is worth trying after
    /// a short wait.
    Waiting,
    /// A block was written (or, when `None`, the range held no samples) and the head
    /// truncated.
    HeadTruncated {
        block: Option<Box<BlockMeta>>,
        truncated: TruncateStats,
    },
    /// A WAL checkpoint was written and the segments it folds deleted.
    Checkpointed(CheckpointStats),
}

/// Counters for self-monitoring (`prometheus_tsdb_compactions_total` ...).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CompactionStats {
    /// Head compactions from the first collecting step to the head truncation, waits for
    /// the executor included (`prometheus_tsdb_compaction_duration_seconds`).
    pub durations: DurationHistogram,
    /// Head truncations (`prometheus_tsdb_head_gc_duration_seconds`).
    pub head_gc: DurationSum,
    pub blocks_written: u64,
    pub head_truncations: u64,
    pub series_removed: u64,
    pub checkpoints: u64,
    pub failures: u64,
    pub last_error: Option<String>,
}

/// What collecting found so far: series in label order and the block's symbols, built a
/// slice at a time so that no step sorts or interns everything at once.
#[derive(Default)]
struct Collected {
    series: BTreeMap<Labels, u64>,
    /// Head symbol ids already in `symbols`.
    seen: HashSet<SymbolId, ahash::RandomState>,
    symbols: BTreeSet<Box<str>>,
}

enum Job<F: SegmentFs> {
    Collect {
        mint: i64,
        maxt: i64,
        next_ref: u64,
        found: Box<Collected>,
    },
    Write {
        mint: i64,
        maxt: i64,
        writer: Box<BlockWriter>,
        /// The series still to write, in label order; each one's labels are freed as it
        /// is written, so that no step drops them all at once.
        series: btree_map::IntoIter<Labels, u64>,
    },
    /// Closing the block's files, one stage at a time: 0 chunk files, 1 index, 2 the rest,
    /// then the head truncation.
    Finish {
        maxt: i64,
        stage: u8,
        writer: Box<BlockWriter>,
    },
    /// A stage of `Finish` running on the blocking thread; it hands the writer back.
    Closing {
        maxt: i64,
        stage: u8,
        pending: Offloaded<Box<BlockWriter>>,
    },
    /// The block's last files and its rename, on the blocking thread.
    Renaming {
        maxt: i64,
        pending: Offloaded<BlockMeta>,
    },
    /// The block is in place (`None`: the range held no sample): the head is truncated a
    /// slice of series at a time.
    TruncateHead {
        maxt: i64,
        block: Option<Box<BlockMeta>>,
        truncation: Box<Truncation>,
        /// When the truncation started (`prometheus_tsdb_head_gc_duration_seconds`).
        started: Instant,
    },
    /// After the head truncation: 0 chunks_head files, 1 the WAL cut and checkpoint start.
    TruncateFiles {
        maxt: i64,
        stage: u8,
    },
    /// The WAL's new segment is started; the old one's fsync runs in a task of its own.
    WalCut {
        maxt: i64,
        /// The WAL's first and last segment before the cut.
        segments: (u64, u64),
        pending: Offloaded<(), WalError>,
    },
    /// Old chunks_head files being removed and the cut one fsynced, on the blocking thread.
    ReleasingFiles {
        maxt: i64,
        pending: Offloaded<Vec<u32>, ChunksHeadError>,
    },
    /// The checkpoint directory and its first segment being created, in a task of its own
    /// (it waits for a directory fsync).
    CheckpointStarting(Offloaded<Checkpointer<F>, WalError>),
    Checkpoint(Box<Checkpointer<F>>),
    /// The next WAL segment being read whole for the checkpoint, on the blocking thread.
    CheckpointLoading {
        cp: Box<Checkpointer<F>>,
        pending: Offloaded<WalReader, WalError>,
    },
    /// The checkpoint being closed (fsynced), renamed into place and the segments it folds
    /// deleted, in a task of its own and then on the blocking thread.
    CheckpointClosing(Offloaded<CheckpointStats, WalError>),
}

/// Work handed to the executor's blocking thread; its result lands here for a later step.
pub(crate) type Offloaded<T, E = BlockError> = Rc<RefCell<Option<Result<T, E>>>>;

/// Runs `slice` until it reports that the work is done or the step's `budget`, counted
/// from `started`, is spent; whether the work is done.
pub(crate) fn slices_within<E>(
    started: Instant,
    budget: Duration,
    mut slice: impl FnMut() -> Result<bool, E>,
) -> Result<bool, E> {
    loop {
        let done = slice()?;
        if done || started.elapsed() >= budget {
            return Ok(done);
        }
    }
}

/// Runs `f` on the executor's blocking thread pool, so that its fsyncs and bulk writes
/// never stall the executor's appends and queries. One local task awaits it: steps only
/// look at the slot, because every poll of glommio's blocking future keeps a waker (whose
/// count is 16 bits), so a future polled at each step would overflow it.
pub(crate) fn offload<T: Send + 'static, E: Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Offloaded<T, E> {
    let slot: Offloaded<T, E> = Rc::new(RefCell::new(None));
    let done = slot.clone();
    let work = glommio::executor().spawn_blocking(f);
    glommio::spawn_local(async move {
        let r = work.await;
        *done.borrow_mut() = Some(r);
    })
    .detach();
    slot
}

/// Runs `fut` in a task of its own on this executor: for work that waits (for the disk,
/// on the blocking thread) but needs nothing of the shard, so that no step holds the shard
/// while it waits. Its result lands in the slot for a later step.
pub(crate) fn offload_local<T: 'static, E: 'static>(
    fut: impl Future<Output = Result<T, E>> + 'static,
) -> Offloaded<T, E> {
    let slot: Offloaded<T, E> = Rc::new(RefCell::new(None));
    let done = slot.clone();
    glommio::spawn_local(async move {
        let r = fut.await;
        *done.borrow_mut() = Some(r);
    })
    .detach();
    slot
}

/// What a step may touch: everything the shard owns.
pub struct Ctx<'a, F: SegmentFs> {
    pub dir: &'a Path,
    pub head: &'a mut Head,
    pub wal: &'a mut Wal<F>,
    pub fs: &'a F,
    pub blocks: &'a mut Vec<Block>,
}

pub struct HeadCompactor<F: SegmentFs> {
    opts: CompactionOptions,
    job: Option<Job<F>>,
    /// When the compaction under way started.
    started: Option<Instant>,
    not_before: Option<Instant>,
    pub stats: CompactionStats,
}

impl<F: SegmentFs + Clone + 'static> HeadCompactor<F> {
    pub fn new(opts: CompactionOptions) -> Self {
        HeadCompactor {
            opts,
            job: None,
            started: None,
            not_before: None,
            stats: CompactionStats::default(),
        }
    }

    pub fn options(&self) -> &CompactionOptions {
        &self.opts
    }

    pub fn set_after_appends(&mut self, on: bool) {
        self.opts.after_appends = on;
    }

    /// Whether a compaction is under way.
    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    /// Does one slice of work, starting a compaction when the head is compactable. A
    /// failure abandons the compaction (an unfinished block is removed; the head is only
    /// truncated after its block is in place) and is counted; the next attempt waits
    /// `retry_after`.
    pub async fn step(&mut self, ctx: Ctx<'_, F>) -> Result<Progress, CompactionError> {
        if self.job.is_none() && self.not_before.is_some_and(|t| Instant::now() < t) {
            return Ok(Progress::Idle);
        }
        let r = self.step_inner(ctx).await;
        if let Err(e) = &r {
            self.job = None;
            self.stats.failures += 1;
            self.stats.last_error = Some(e.to_string());
            self.not_before = Some(Instant::now() + self.opts.retry_after);
        }
        r
    }

    async fn step_inner(&mut self, ctx: Ctx<'_, F>) -> Result<Progress, CompactionError> {
        let per_step = self.opts.series_per_step.max(1);
        let (started, budget) = (Instant::now(), self.opts.step_budget);
        let Some(job) = self.job.take() else {
            let range = ctx.head.options().chunk_range;
            let Some((mint, maxt)) = compactable_range(ctx.head.time_range(), range) else {
                return Ok(Progress::Idle);
            };
            let mut found = Box::<Collected>::default();
            found.symbols.insert("".into());
            self.started = Some(Instant::now());
            self.job = Some(Job::Collect {
                mint,
                maxt,
                next_ref: 1,
                found,
            });
            return Ok(Progress::Working);
        };
        match job {
            Job::Collect {
                mint,
                maxt,
                mut next_ref,
                mut found,
            } => {
                let head = &*ctx.head;
                let mut refs = Vec::new();
                loop {
                    refs.clear();
                    head.series_overlapping(next_ref, per_step as u64, mint, maxt - 1, &mut refs);
                    next_ref += per_step as u64;
                    for &r in &refs {
                        collect_series(head, r, &mut found);
                    }
                    if next_ref > head.last_series_ref() || started.elapsed() >= budget {
                        break;
                    }
                }
                if next_ref <= head.last_series_ref() {
                    self.job = Some(Job::Collect {
                        mint,
                        maxt,
                        next_ref,
                        found,
                    });
                    return Ok(Progress::Working);
                }
                let Collected {
                    series, symbols, ..
                } = *found;
                let block = NewBlock::level1(mint, maxt);
                let writer = Box::new(BlockWriter::create(
                    ctx.dir,
                    block,
                    symbols.iter().map(|s| &**s),
                )?);
                self.job = Some(Job::Write {
                    mint,
                    maxt,
                    writer,
                    series: series.into_iter(),
                });
                Ok(Progress::Working)
            }
            Job::Write {
                mint,
                maxt,
                mut writer,
                mut series,
            } => {
                let done = slices_within(started, budget, || {
                    let mut n = 0;
                    for (labels, r) in series.by_ref().take(per_step) {
                        write_series(ctx.head, &mut writer, &labels, r, mint, maxt - 1)?;
                        n += 1;
                    }
                    Ok::<_, CompactionError>(n < per_step)
                })?;
                if !done {
                    self.job = Some(Job::Write {
                        mint,
                        maxt,
                        writer,
                        series,
                    });
                    return Ok(Progress::Working);
                }
                self.job = Some(Job::Finish {
                    maxt,
                    stage: 0,
                    writer,
                });
                Ok(Progress::Working)
            }
            Job::Finish {
                maxt,
                stage,
                mut writer,
            } => {
                if writer.stats().num_samples == 0 {
                    // Prometheus writes no empty block; dropping the writer removes it.
                    drop(writer);
                    self.job = Some(start_truncation(ctx.head, maxt, None));
                    return Ok(Progress::Working);
                }
                self.job = Some(match stage {
                    0 | 1 => Job::Closing {
                        maxt,
                        stage: stage + 1,
                        pending: offload(move || {
                            match stage {
                                0 => {
                                    writer.close_chunks()?;
                                    crate::crash_point::reached(
                                        crate::crash_point::BLOCK_WRITE_AFTER_CHUNKS,
                                    );
                                }
                                _ => writer.close_index()?,
                            }
                            Ok(writer)
                        }),
                    },
                    _ => Job::Renaming {
                        maxt,
                        pending: offload(move || writer.finish()),
                    },
                });
                Ok(Progress::Working)
            }
            Job::Closing {
                maxt,
                stage,
                pending,
            } => match pending.take() {
                None => {
                    self.job = Some(Job::Closing {
                        maxt,
                        stage,
                        pending,
                    });
                    Ok(Progress::Waiting)
                }
                Some(writer) => {
                    self.job = Some(Job::Finish {
                        maxt,
                        stage,
                        writer: writer?,
                    });
                    Ok(Progress::Working)
                }
            },
            Job::Renaming { maxt, pending } => {
                let Some(meta) = pending.take() else {
                    self.job = Some(Job::Renaming { maxt, pending });
                    return Ok(Progress::Waiting);
                };
                let meta = meta?;
                let b = Block::open(&ctx.dir.join(&meta.ulid))?;
                ctx.blocks.push(b);
                ctx.blocks.sort_by(|a, b| {
                    (a.meta().min_time, &a.meta().ulid).cmp(&(b.meta().min_time, &b.meta().ulid))
                });
                self.stats.blocks_written += 1;
                // The head is truncated only now that its block is in place.
                self.job = Some(start_truncation(ctx.head, maxt, Some(Box::new(meta))));
                Ok(Progress::Working)
            }
            Job::TruncateHead {
                maxt,
                block,
                mut truncation,
                started: gc,
            } => {
                let done = slices_within(started, budget, || {
                    Ok::<_, CompactionError>(
                        ctx.head.truncate_slice(&mut truncation, per_step as u64),
                    )
                })?;
                if !done {
                    self.job = Some(Job::TruncateHead {
                        maxt,
                        block,
                        truncation,
                        started: gc,
                    });
                    return Ok(Progress::Working);
                }
                let truncated = truncation.stats;
                self.truncation_done(ctx.dir, gc, &truncated)?;
                self.job = Some(Job::TruncateFiles { maxt, stage: 0 });
                Ok(Progress::HeadTruncated { block, truncated })
            }
            Job::TruncateFiles { maxt, stage: 0 } => {
                let release = ctx
                    .head
                    .chunk_disk_mapper()
                    .truncate_detached(maxt)
                    .map_err(HeadError::from)?;
                self.job = Some(Job::ReleasingFiles {
                    maxt,
                    pending: offload(move || release.complete()),
                });
                Ok(Progress::Working)
            }
            Job::ReleasingFiles { maxt, pending } => {
                let Some(released) = pending.take() else {
                    self.job = Some(Job::ReleasingFiles { maxt, pending });
                    return Ok(Progress::Waiting);
                };
                released.map_err(HeadError::from)?;
                self.job = Some(Job::TruncateFiles { maxt, stage: 1 });
                Ok(Progress::Working)
            }
            Job::TruncateFiles { maxt, .. } => {
                let segments = ctx.wal.segment_range()?;
                let (_, pending) = ctx.wal.next_segment_detached().await?;
                self.job = Some(Job::WalCut {
                    maxt,
                    segments,
                    pending,
                });
                Ok(Progress::Working)
            }
            Job::WalCut {
                maxt,
                segments: (first, last),
                pending,
            } => {
                let Some(cut) = pending.take() else {
                    self.job = Some(Job::WalCut {
                        maxt,
                        segments: (first, last),
                        pending,
                    });
                    return Ok(Progress::Waiting);
                };
                cut?;
                if let Some((first, last)) = segments_to_checkpoint(first, last) {
                    let dir = ctx.wal.dir().to_path_buf();
                    let fs = ctx.fs.clone();
                    self.job = Some(Job::CheckpointStarting(offload_local(async move {
                        Checkpointer::start(fs, &dir, first, last, maxt).await
                    })));
                }
                Ok(Progress::Working)
            }
            Job::CheckpointStarting(pending) => match pending.take() {
                None => {
                    self.job = Some(Job::CheckpointStarting(pending));
                    Ok(Progress::Waiting)
                }
                Some(cp) => {
                    self.job = Some(Job::Checkpoint(Box::new(cp?)));
                    Ok(Progress::Working)
                }
            },
            Job::Checkpoint(mut cp) => {
                let head = &*ctx.head;
                let per_step = self.opts.records_per_step.max(1);
                let done = loop {
                    let done = cp.step(|r| head.series(r).is_some(), per_step).await?;
                    if done || cp.wants_load() || started.elapsed() >= budget {
                        break done;
                    }
                };
                if let Some(mut reader) = cp.take_reader_to_load() {
                    let pending = offload(move || reader.load_next_segment().map(|_| reader));
                    self.job = Some(Job::CheckpointLoading { cp, pending });
                    return Ok(Progress::Working);
                }
                if !done {
                    self.job = Some(Job::Checkpoint(cp));
                    return Ok(Progress::Working);
                }
                self.job = Some(Job::CheckpointClosing(offload_local(async move {
                    let files = (*cp).close().await?;
                    glommio::executor()
                        .spawn_blocking(move || files.complete())
                        .await
                })));
                Ok(Progress::Working)
            }
            Job::CheckpointLoading { mut cp, pending } => match pending.take() {
                None => {
                    self.job = Some(Job::CheckpointLoading { cp, pending });
                    Ok(Progress::Waiting)
                }
                Some(reader) => {
                    cp.put_reader(reader?);
                    self.job = Some(Job::Checkpoint(cp));
                    Ok(Progress::Working)
                }
            },
            Job::CheckpointClosing(pending) => {
                let Some(stats) = pending.take() else {
                    self.job = Some(Job::CheckpointClosing(pending));
                    return Ok(Progress::Waiting);
                };
                self.stats.checkpoints += 1;
                Ok(Progress::Checkpointed(stats?))
            }
        }
    }

    /// After the head's last truncation slice: the counters, and the snapshots that
    /// describe the head as it was.
    fn truncation_done(
        &mut self,
        dir: &Path,
        gc: Instant,
        t: &TruncateStats,
    ) -> Result<(), CompactionError> {
        self.stats.head_gc.observe(gc.elapsed());
        if let Some(started) = self.started.take() {
            self.stats.durations.observe(started.elapsed());
        }
        self.stats.head_truncations += 1;
        self.stats.series_removed += t.series_removed;
        // A snapshot describes a head before this truncation; replaying from it after a crash
        // would bring back what the block holds. The next clean shutdown writes a new one.
        let io = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| CompactionError::Io { op, path, source }
        };
        for old in snapshot::stale_snapshots(dir, None).map_err(io("list", dir))? {
            std::fs::remove_dir_all(&old).map_err(io("remove", &old))?;
        }
        Ok(())
    }
}

/// The job that truncates the head at `maxt` once its block (if any) is in place.
fn start_truncation<F: SegmentFs>(
    head: &mut Head,
    maxt: i64,
    block: Option<Box<BlockMeta>>,
) -> Job<F> {
    Job::TruncateHead {
        maxt,
        block,
        truncation: Box::new(head.start_truncation(maxt)),
        started: Instant::now(),
    }
}

/// Writes the head's samples of `[mint, maxt)` as one level-1 block in `parent`, in one
/// call (for a snapshot, where Prometheus writes the head the same way); tombstones
/// applied. `None` when there is no sample to write (no block is left behind).
pub fn write_head_block(
    head: &Head,
    parent: &Path,
    mint: i64,
    maxt: i64,
) -> Result<Option<BlockMeta>, CompactionError> {
    let Some(mut job) = HeadBlockWrite::start(head, parent, mint, maxt)? else {
        return Ok(None);
    };
    job.write(head, usize::MAX)?;
    match job.into_writer() {
        Some(w) => Ok(Some(w.finish()?)),
        None => Ok(None),
    }
}

/// `write_head_block` in slices, for a caller that lets appends in between (a snapshot
/// while the shard serves): `start` lists the series and their symbols, each `write` adds
/// the next series, and the writer it hands back is finished by the caller, off the
/// executor if it likes. A series appended to between slices is written with what it holds
/// when its turn comes; a series created meanwhile is not in the block.
pub struct HeadBlockWrite {
    writer: BlockWriter,
    series: Vec<(Labels, u64)>,
    next: usize,
    mint: i64,
    /// Inclusive.
    maxt: i64,
}

impl HeadBlockWrite {
    /// `None` when `[mint, maxt)` is empty.
    pub fn start(
        head: &Head,
        parent: &Path,
        mint: i64,
        maxt: i64,
    ) -> Result<Option<Self>, CompactionError> {
        if maxt <= mint {
            return Ok(None);
        }
        let mut found = Collected::default();
        found.symbols.insert("".into());
        let mut refs = Vec::new();
        head.series_overlapping(1, head.last_series_ref(), mint, maxt - 1, &mut refs);
        for &r in &refs {
            collect_series(head, r, &mut found);
        }
        let writer = BlockWriter::create(
            parent,
            NewBlock::level1(mint, maxt),
            found.symbols.iter().map(|s| &**s),
        )?;
        Ok(Some(HeadBlockWrite {
            writer,
            series: found.series.into_iter().collect(),
            next: 0,
            mint,
            maxt: maxt - 1,
        }))
    }

    /// Writes the next `n` series; `true` once every series is written.
    pub fn write(&mut self, head: &Head, n: usize) -> Result<bool, CompactionError> {
        let end = self.next.saturating_add(n).min(self.series.len());
        for (labels, r) in &self.series[self.next..end] {
            // Only a head truncation removes series; a caller that paused compactions has
            // none, but a series gone has nothing left to write.
            if head.series(*r).is_some() {
                write_series(head, &mut self.writer, labels, *r, self.mint, self.maxt)?;
            }
        }
        self.next = end;
        Ok(self.next == self.series.len())
    }

    /// The block to `finish`; `None` when it holds no sample (dropping it removes it).
    pub fn into_writer(self) -> Option<BlockWriter> {
        (self.writer.stats().num_samples > 0).then_some(self.writer)
    }
}

/// Adds series `r` (with a chunk in the block's range) and its symbols to `found`.
fn collect_series(head: &Head, r: u64, found: &mut Collected) {
    let Some(s) = head.series(r) else { return };
    for (n, v) in s.labels() {
        for id in [n, v] {
            if found.seen.insert(id) {
                found.symbols.insert(head.symbols().resolve(id).into());
            }
        }
    }
    if let Some(labels) = head.series_labels(r) {
        found.series.insert(labels, r);
    }
}

/// Copies the chunks of series `r` in `[mint, maxt]` (closed) into the block.
fn write_series(
    head: &Head,
    writer: &mut BlockWriter,
    labels: &Labels,
    r: u64,
    mint: i64,
    maxt: i64,
) -> Result<(), CompactionError> {
    let mut views = Vec::new();
    head.chunks_overlapping(r, mint, maxt, &mut views)?;
    let owned = block_chunks(&views, head.series_tombstones(r), mint, maxt);
    let chunks: Vec<BlockChunk<'_>> = owned
        .iter()
        .map(|c| match c {
            ChunkSource::Whole(i) => BlockChunk {
                min_time: views[*i].min_time,
                max_time: views[*i].max_time,
                encoding: Encoding::Xor,
                data: views[*i].data,
            },
            ChunkSource::Reencoded(min, max, c) => BlockChunk {
                min_time: *min,
                max_time: *max,
                encoding: Encoding::Xor,
                data: c.bytes(),
            },
        })
        .collect();
    writer.add_series(labels, &chunks)?;
    Ok(())
}

/// Where a block chunk comes from: a head chunk copied whole, or samples re-encoded.
enum ChunkSource {
    Whole(usize),
    Reencoded(i64, i64, XorChunk),
}

/// The block chunks of one series for `[mint, maxt]` (closed) from its head chunks.
fn block_chunks(
    views: &[HeadChunkView<'_>],
    stones: &[(i64, i64)],
    mint: i64,
    maxt: i64,
) -> Vec<ChunkSource> {
    let mut out = Vec::with_capacity(views.len());
    for (i, v) in views.iter().enumerate() {
        let inside = v.min_time >= mint && v.max_time <= maxt;
        let touched = stones
            .iter()
            .any(|&(a, b)| a <= v.max_time && b >= v.min_time);
        // Blocks stay readable by Prometheus 2.x: an XOR2 chunk (start timestamps) is
        // re-encoded as XOR, its start timestamps dropped.
        if inside && !touched && v.encoding == Encoding::Xor {
            out.push(ChunkSource::Whole(i));
            continue;
        }
        let mut c = XorChunk::new();
        for (t, val) in FloatIterator::new(v.encoding, v.data) {
            if t >= mint && t <= maxt && !is_deleted(t, stones) {
                c.append(t, val);
            }
        }
        if let (Some(lo), Some(hi)) = (c.first_time(), c.last_time()) {
            out.push(ChunkSource::Reencoded(lo, hi, c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compactable_as_prometheus() {
        let r = 7200;
        assert_eq!(compactable_range(None, r), None);
        assert_eq!(compactable_range(Some((0, 10_800)), r), None);
        assert_eq!(compactable_range(Some((0, 10_801)), r), Some((0, 7200)));
        // The first block after start is shorter: it ends at the next multiple of range.
        assert_eq!(
            compactable_range(Some((5000, 16_000)), r),
            Some((5000, 7200))
        );
        assert_eq!(compactable_range(Some((-100, 10_801)), r), Some((-100, 0)));
    }

    #[test]
    fn chunks_inside_are_copied_the_rest_reencoded() {
        let mut a = XorChunk::new();
        for t in [10, 20, 30] {
            a.append(t, t as f64);
        }
        let v = HeadChunkView {
            min_time: 10,
            max_time: 30,
            data: a.bytes(),
            encoding: crate::chunkenc::Encoding::Xor,
        };
        assert!(matches!(
            block_chunks(&[v], &[], 0, 99)[..],
            [ChunkSource::Whole(0)]
        ));
        let got = block_chunks(&[v], &[(20, 20)], 0, 99);
        let [ChunkSource::Reencoded(10, 30, c)] = &got[..] else {
            panic!("re-encoded expected")
        };
        assert_eq!(c.iter().collect::<Vec<_>>(), [(10, 10.0), (30, 30.0)]);
        let got = block_chunks(&[v], &[], 15, 25);
        assert!(matches!(&got[..], [ChunkSource::Reencoded(20, 20, _)]));
        assert!(block_chunks(&[v], &[(0, 100)], 0, 99).is_empty());
    }

    #[test]
    fn a_head_block_written_in_slices_is_the_one_written_at_once() {
        use crate::head::{AppendBatch, BatchSample, HeadOptions, SeriesKey};
        let dir = tempfile::tempdir().unwrap();
        let (mut head, _) = Head::open(dir.path(), HeadOptions::default()).unwrap();
        let n = 10u32;
        let mut batch = AppendBatch {
            new_series: (0..n)
                .map(|i| Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]).unwrap())
                .collect(),
            ..Default::default()
        };
        for t in 0..50i64 {
            for i in 0..n {
                batch.samples.push(BatchSample {
                    series: SeriesKey::New(i),
                    t: t * 1000 + i64::from(i),
                    v: (t * i64::from(i)) as f64 / 4.0,
                });
            }
        }
        head.append_unlogged(&batch).unwrap();
        let (once, sliced) = (dir.path().join("once"), dir.path().join("sliced"));
        let a = write_head_block(&head, &once, 0, 40_000).unwrap().unwrap();
        let mut job = HeadBlockWrite::start(&head, &sliced, 0, 40_000)
            .unwrap()
            .unwrap();
        let mut slices = 1;
        while !job.write(&head, 3).unwrap() {
            slices += 1;
        }
        assert_eq!(slices, 4);
        let b = job.into_writer().unwrap().finish().unwrap();
        assert_eq!(a.stats, b.stats);
        assert_eq!(a.stats.num_samples, 40 * u64::from(n));
        for f in ["index", "chunks/000001"] {
            let read = |d: &Path, m: &BlockMeta| std::fs::read(d.join(&m.ulid).join(f)).unwrap();
            assert!(read(&once, &a) == read(&sliced, &b), "{f} differs");
        }
        assert!(HeadBlockWrite::start(&head, &sliced, 5, 5)
            .unwrap()
            .is_none());
    }

    #[test]
    fn xor2_chunks_become_xor_in_blocks() {
        let mut a = crate::chunkenc::Xor2Chunk::new();
        for t in [10, 20, 30] {
            a.append(t - 5, t, t as f64);
        }
        let v = HeadChunkView {
            min_time: 10,
            max_time: 30,
            data: a.bytes(),
            encoding: Encoding::Xor2,
        };
        let got = block_chunks(&[v], &[], 0, 99);
        let [ChunkSource::Reencoded(10, 30, c)] = &got[..] else {
            panic!("an XOR2 chunk is never copied whole")
        };
        assert_eq!(
            c.iter().collect::<Vec<_>>(),
            [(10, 10.0), (20, 20.0), (30, 30.0)]
        );
    }
}
