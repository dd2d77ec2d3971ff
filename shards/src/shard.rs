//! A shard: the head, its WAL and its chunks_head files in one directory, owned by one
//! glommio executor. This is where the WAL write sits between validating a batch and
//! applying it, where start-up rebuilds the head, and where a clean shutdown leaves a
//! snapshot behind.
//!
//! Start-up order (Prometheus's, section 9.7 of the TSDB notes):
//! 0. open the blocks (removing interrupted block writes and WAL checkpoints; unreadable blocks are reported and
//!    skipped); nothing older than the newest block's max time is loaded into the head;
//! 1. map chunks_head (corrupt files are removed and reported);
//! 2. load the newest `chunk_snapshot.S.O` when chunks_head was intact and no WAL checkpoint
//!    is newer, or else ignore it;
//! 3. replay the newest `wal/checkpoint.N` unless a snapshot was loaded, then the WAL from
//!    the snapshot's position (or from segment N+1, or the start), truncating a torn or
//!    corrupt tail at the last good record;
//! 4. open a new WAL segment for appends.
//!
//! Head compaction (`compact`) runs in bounded steps, driven by the server's low-share
//! compaction queue (`compaction_queue`) or, for a library user, after append batches, so
//! that a block write, a head truncation and a WAL checkpoint never hold up appends for long.
//!
//! A batch is acknowledged when `append` returns `Ok`: its records were written to the WAL
//! file (see `wal`'s durability rule), so a crash of the process cannot lose it.
//!
//! When a WAL write fails (disk full, EIO), the batches of that write are refused but their
//! records stay in the WAL's buffer: the WAL writes them first once it works again. So that
//! the head never differs from what replaying the WAL gives, those batches are kept aside
//! and applied at that moment, before anything newer. Until the WAL has recovered, every
//! append is refused with the WAL's error, naming the original cause.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::backup;
use crate::block::{self, Block, BlockError};
use crate::block_compaction::{self, BlockCompactionStats, BlockCompactor, MergeStep};
use crate::chunks_head::{ChunksHeadError, OpenReport as ChunksHeadReport};
use crate::compact::{
    self, CompactionError, CompactionOptions, CompactionStats, Ctx, HeadCompactor, Progress,
};
use crate::deletion;
use crate::head::replay::{ReplayCarry, ReplayError, Replayer};
use crate::head::snapshot::{self, SnapshotError};
use crate::head::{
    AppendBatch, AppendOutcome, Head, HeadError, HeadOptions, Prepared, ReplayStats,
};
use crate::index::matcher::Matcher;
use crate::label_generation::{
    LabelChange, LabelGeneration, LabelScope, LabelSources, NamedValueSet, ValueSets,
    PUBLISHED_VALUES_MAX,
};
use crate::retention::{self, BlockExtent, Deletions, RetentionOptions, RetentionStats};
use crate::string_list::StringList;
use crate::wal::{
    self, PageCacheFs, RepairReport, SegmentFs, Wal, WalError, WalOptions, WalReader,
};

#[derive(Debug, Error)]
pub enum ShardError {
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    ChunksHead(#[from] ChunksHeadError),
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error(transparent)]
    Compaction(#[from] CompactionError),
    #[error("snapshot {path}: {source}")]
    Snapshot {
        path: PathBuf,
        source: SnapshotError,
    },
    #[error("shard directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<ReplayError> for ShardError {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Head(e) => ShardError::Head(e),
            ReplayError::Wal(e) => ShardError::Wal(e),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ShardOptions {
    pub head: HeadOptions,
    pub wal: WalOptions,
    /// Write a snapshot on `close` (on by default in promcore; Prometheus's
    /// `memory-snapshot-on-shutdown`).
    pub snapshot_on_shutdown: bool,
    /// Head compaction into blocks; the block range is `head.chunk_range`.
    pub compaction: CompactionOptions,
    /// Which blocks are deleted as too old or too many bytes (none by default).
    pub retention: RetentionOptions,
}

/// How often retention looks at the blocks besides after each block write: Prometheus
/// reloads its blocks (and applies retention) once a minute.
const RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// How often a compaction waiting for its block files to close (off the executor) looks
/// again.
pub const OFFLOAD_POLL: Duration = Duration::from_millis(1);

/// Start-up progress, for logging.
#[derive(Debug, Clone)]
pub enum OpenProgress {
    SnapshotLoaded {
        path: PathBuf,
        series: u64,
    },
    SnapshotIgnored {
        path: PathBuf,
        reason: String,
    },
    WalSegment {
        segment: u64,
        last: u64,
        records: u64,
        samples: u64,
    },
    WalRepaired(RepairReport),
}

/// What start-up found and did.
#[derive(Debug, Clone)]
pub struct ShardOpenReport {
    pub chunks_head: ChunksHeadReport,
    pub snapshot: Option<PathBuf>,
    pub replay: ReplayStats,
    pub repair: Option<RepairReport>,
    /// Blocks opened, and those that could not be (left on disk, not read).
    pub blocks: usize,
    pub failed_blocks: Vec<(PathBuf, String)>,
    /// The WAL checkpoint replayed, if any.
    pub checkpoint: Option<PathBuf>,
    pub duration: Duration,
}

pub struct Shard<F: SegmentFs = PageCacheFs> {
    dir: PathBuf,
    opts: ShardOptions,
    head: Head,
    wal: Wal<F>,
    fs: F,
    scratch: Vec<Prepared>,
    /// Batches whose WAL write failed; their records are still in the WAL's buffer.
    unflushed: Vec<Prepared>,
    /// Sorted by min time.
    blocks: Vec<Block>,
    compactor: HeadCompactor<F>,
    retention: RetentionStats,
    retention_checked: Instant,
    /// Blocks beyond retention being removed off the executor.
    deletions: Deletions,
    merger: BlockCompactor,
    opened: Instant,
    /// While on, no head compaction or merge starts (one under way finishes): an admin
    /// operation is working on the blocks between slices of its own.
    compactions_paused: bool,
    /// Published for the router's label answers (see `label_generation`), and what was
    /// published last.
    labels: Arc<LabelGeneration>,
    label_state: LabelState,
}

/// What `publish_label_state` published last.
#[derive(Debug, Default)]
struct LabelState {
    generation: u64,
    /// The head's highest series ref handed out and its live series: a series created or
    /// removed changes one of them.
    head: (u64, usize),
    /// The ULIDs of the blocks, in order: a block added, removed or rewritten changes them.
    blocks: Vec<String>,
    head_span: Option<(i64, i64)>,
}

impl<F: SegmentFs + Clone + 'static> Shard<F> {
    /// Opens the shard in `dir` (created if missing) and rebuilds its head.
    pub async fn open(
        dir: &Path,
        opts: ShardOptions,
        fs: F,
        mut progress: impl FnMut(OpenProgress),
    ) -> Result<(Self, ShardOpenReport), ShardError> {
        let started = Instant::now();
        // glommio opens directories (for fsync) by absolute path only.
        let dir = &std::path::absolute(dir).map_err(|source| ShardError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        std::fs::create_dir_all(dir).map_err(|source| ShardError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let wal_dir = dir.join("wal");

        let mut opened = block::open_all(dir)?;
        // A merge that stopped before deleting its parents: the merged block holds their
        // data, so they go before anything reads them twice (as Prometheus does).
        let metas: Vec<&block::BlockMeta> = opened.blocks.iter().map(|b| b.meta()).collect();
        for i in block_compaction::superseded(&metas).into_iter().rev() {
            let b = opened.blocks.remove(i);
            let path = b.dir().to_path_buf();
            drop(b);
            retention::delete_block(&path)?;
        }
        let floor = opened.blocks.iter().map(|b| b.meta().max_time).max();
        let open_head = || -> Result<_, ShardError> {
            let (mut head, report) = Head::open(dir, opts.head.clone())?;
            if let Some(f) = floor {
                head.set_min_valid_time(f);
            }
            Ok((head, report))
        };
        let (mut head, chunks_report) = open_head()?;
        // chunks_head is read once: what the snapshot does not attach, the WAL may.
        let mut carry = ReplayCarry::read(&head, chunks_report.records)?;
        wal::remove_unfinished_checkpoints(&wal_dir)?;
        let checkpoint = wal::last_checkpoint(&wal_dir)?;
        let mut snapshot_used = None;
        let mut start = (0u64, 0u64);
        if let Some((path, seg, off)) = last_snapshot(dir)? {
            if let Some((n, _)) = checkpoint.as_ref().filter(|(n, _)| *n >= seg) {
                let reason = format!("WAL checkpoint {n} is newer; replaying from it");
                progress(OpenProgress::SnapshotIgnored { path, reason });
            } else if chunks_report.is_intact() {
                let mut loaded = load_snapshot(&mut head, carry, &path, true);
                if matches!(loaded, Ok(None)) {
                    // A snapshot promcore did not write (a ref or a label set twice): the
                    // per-series way handles it, on a fresh head.
                    head = open_head()?.0;
                    carry = ReplayCarry::read(&head, chunks_report.records)?;
                    loaded = load_snapshot(&mut head, carry, &path, false);
                }
                match loaded.and_then(|l| {
                    l.ok_or_else(|| ShardError::Snapshot {
                        path: path.clone(),
                        source: SnapshotError::Invalid("restored twice".into()),
                    })
                }) {
                    Ok((series, rest)) => {
                        progress(OpenProgress::SnapshotLoaded {
                            path: path.clone(),
                            series,
                        });
                        snapshot_used = Some(path);
                        start = (seg, off);
                        carry = rest;
                    }
                    Err(e) => {
                        progress(OpenProgress::SnapshotIgnored {
                            path: path.clone(),
                            reason: e.to_string(),
                        });
                        head = open_head()?.0;
                        carry = ReplayCarry::read(&head, chunks_report.records)?;
                    }
                }
            } else {
                let reason = "chunks_head was repaired; replaying the whole WAL".to_string();
                progress(OpenProgress::SnapshotIgnored { path, reason });
            }
        }

        let checkpoint_dir = match (&snapshot_used, checkpoint) {
            (None, Some((n, path))) => {
                start = (n + 1, 0);
                Some(path)
            }
            _ => None,
        };
        let (replay, repair) = replay_wal(
            &mut head,
            carry,
            &wal_dir,
            checkpoint_dir.as_deref(),
            start,
            &mut progress,
        )?;
        if let Some(r) = &repair {
            progress(OpenProgress::WalRepaired(r.clone()));
        }
        let wal = Wal::open(fs.clone(), &wal_dir, opts.wal.clone()).await?;
        let report = ShardOpenReport {
            chunks_head: chunks_report,
            snapshot: snapshot_used,
            replay,
            repair,
            blocks: opened.blocks.len(),
            failed_blocks: opened
                .failed
                .iter()
                .map(|(p, e)| (p.clone(), e.to_string()))
                .collect(),
            checkpoint: checkpoint_dir,
            duration: started.elapsed(),
        };
        let compactor = HeadCompactor::new(opts.compaction.clone());
        let merger = BlockCompactor::new(
            block_compaction::block_ranges(
                opts.head.chunk_range,
                opts.compaction.max_block_duration,
            ),
            opts.compaction.series_per_step,
            opts.compaction.step_budget,
            opts.compaction.retry_after,
        );
        let mut shard = Shard {
            dir: dir.to_path_buf(),
            opts,
            head,
            wal,
            fs,
            scratch: Vec::new(),
            unflushed: Vec::new(),
            blocks: opened.blocks,
            compactor,
            retention: RetentionStats::default(),
            retention_checked: Instant::now(),
            deletions: Deletions::default(),
            merger,
            opened: Instant::now(),
            compactions_paused: false,
            labels: LabelGeneration::new(),
            label_state: LabelState::default(),
        };
        // As Prometheus's open does: blocks already beyond retention go before serving.
        shard.apply_retention()?;
        shard.finish_deletions().await;
        Ok((shard, report))
    }

    /// The signal this shard publishes for label answers kept elsewhere (the router's).
    pub fn label_generation(&self) -> Arc<LabelGeneration> {
        self.labels.clone()
    }

    /// The sources a label-name or label-value request over `[mint, maxt]` reads now, with
    /// the generation of what `scope` reads in them: what an answer computed now is exact
    /// for. (What the shard published is its own state: it publishes before any reader runs.)
    pub fn label_sources(&self, scope: LabelScope<'_>, mint: i64, maxt: i64) -> LabelSources {
        LabelSources::pick(
            self.labels.scope_generation(scope),
            self.blocks
                .iter()
                .map(|b| (b.meta().min_time, b.meta().max_time)),
            self.head.time_range(),
            mint,
            maxt,
        )
    }

    /// Publishes what changed for label answers (see `label_generation`): a new generation
    /// when the head created or removed series or the block list changed, else the head's
    /// span when it moved. Every method that can change either calls it before it returns,
    /// so that no reader of the shard (they wait for those methods) sees a change that is
    /// not published yet. It compares the state itself, not what a method says it did, so
    /// the next append or compaction step would also publish a change made elsewhere.
    ///
    /// With the generation go which of the head's label tables changed (its postings record
    /// them where a list is created or emptied); a block-list change, or the first
    /// publication, changes every table.
    fn publish_label_state(&mut self) {
        let head = (self.head.last_series_ref(), self.head.num_series());
        let span = self.head.time_range();
        let changes = self.head.take_label_changes();
        let state = &mut self.label_state;
        let same_blocks = self.blocks.len() == state.blocks.len()
            && self
                .blocks
                .iter()
                .zip(&state.blocks)
                .all(|(b, ulid)| b.meta().ulid == *ulid);
        // The first call publishes even an empty shard's (empty) tables: without them no
        // answer could be merged from what the shards published.
        let first = state.generation == 0;
        if head != state.head || !same_blocks || !changes.is_empty() || first {
            let everything = !same_blocks || first;
            if !same_blocks {
                state.blocks = self.blocks.iter().map(|b| b.meta().ulid.clone()).collect();
            }
            state.head = head;
            state.head_span = span;
            let spans = self
                .blocks
                .iter()
                .map(|b| (b.meta().min_time, b.meta().max_time))
                .collect();
            let symbols = self.head.symbols();
            let values: Vec<&str> = changes.values.iter().map(|&n| symbols.resolve(n)).collect();
            // Copies of the name tables that changed, published with the generation (see
            // `label_generation`): what `Querier::label_names` reads without matchers.
            let block_names: Option<Vec<Arc<StringList>>> = everything.then(|| {
                self.blocks
                    .iter()
                    .map(|b| Arc::new(StringList::from_sorted(b.index().label_names())))
                    .collect()
            });
            let head_names = (everything || changes.names)
                .then(|| Arc::new(StringList::from_sorted(self.head.label_names(&[]))));
            // And copies of the small value sets that changed (every one with the block list).
            let block_values: Option<Vec<Arc<ValueSets>>> = everything.then(|| {
                self.blocks
                    .iter()
                    .map(|b| Arc::new(block_value_sets(b.index())))
                    .collect()
            });
            let head_values: Vec<NamedValueSet<'_>> = if everything {
                self.head.label_names(&[])
            } else {
                values.clone()
            }
            .into_iter()
            .map(|name| (name, head_value_set(&self.head, name)))
            .collect();
            let change = LabelChange {
                everything,
                names: changes.names,
                values: &values,
                block_names: block_names.as_deref(),
                head_names: head_names.as_ref(),
                block_values: block_values.as_deref(),
                head_values: Some(&head_values),
            };
            state.generation = self.labels.advance(spans, span, change);
        } else if span != state.head_span {
            state.head_span = span;
            self.labels.set_head_span(span);
        }
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The shard's blocks, sorted by min time.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// Reads over head and blocks together, for samples with `mint <= t <= maxt`.
    pub fn querier(&self, mint: i64, maxt: i64) -> crate::querier::Querier<'_> {
        crate::querier::Querier::new(&self.head, &self.blocks, mint, maxt)
    }

    /// Whether a head compaction (block write, truncation or WAL checkpoint) is under way.
    pub fn is_compacting(&self) -> bool {
        self.compactor.is_busy()
    }

    /// Whether a head compaction or a block merge is under way.
    pub fn is_compacting_or_merging(&self) -> bool {
        self.compactor.is_busy() || self.merger.is_busy()
    }

    /// Keeps new head compactions and block merges from starting while `on` (one under way
    /// still finishes): admin operations that release the shard between slices pause them,
    /// so that no block they work on is merged away meanwhile.
    pub fn pause_compactions(&mut self, on: bool) {
        self.compactions_paused = on;
    }

    /// Whether head compaction is on (block compaction and retention run with it).
    pub fn compaction_enabled(&self) -> bool {
        self.compactor.options().enabled
    }

    /// Whether `append_many` runs a compaction step after each write (see
    /// `CompactionOptions::after_appends`); off when a compaction queue drives the steps.
    pub fn set_compaction_after_appends(&mut self, on: bool) {
        self.compactor.set_after_appends(on);
    }

    pub fn compaction_stats(&self) -> &CompactionStats {
        &self.compactor.stats
    }

    pub fn block_compaction_stats(&self) -> &BlockCompactionStats {
        &self.merger.stats
    }

    pub fn retention_stats(&self) -> &RetentionStats {
        &self.retention
    }

    /// Deletes the blocks beyond retention (see `retention`) and returns their ULIDs: they
    /// leave the shard now, and their files are unmapped and removed on the blocking thread
    /// (`retention::Deletions`). A block that cannot be renamed for deletion stays open and
    /// listed; the failure is counted and returned, and the next run tries again.
    pub fn apply_retention(&mut self) -> Result<Vec<String>, ShardError> {
        self.retention_checked = Instant::now();
        self.reap_deletions();
        let r = self.delete_beyond_retention();
        if let Err(e) = &r {
            self.retention.failures += 1;
            self.retention.last_error = Some(e.to_string());
        }
        self.publish_label_state();
        r
    }

    /// Forgets the finished removals of blocks beyond retention, counting a failed one
    /// (its renamed directory is left for start-up to remove).
    fn reap_deletions(&mut self) {
        if let Err(e) = self.deletions.reap() {
            self.retention.failures += 1;
            self.retention.last_error = Some(e.to_string());
        }
    }

    /// Waits for the removals of blocks beyond retention under way.
    async fn finish_deletions(&mut self) {
        self.reap_deletions();
        while !self.deletions.is_empty() {
            glommio::timer::sleep(OFFLOAD_POLL).await;
            self.reap_deletions();
        }
    }

    fn delete_beyond_retention(&mut self) -> Result<Vec<String>, ShardError> {
        let opts = self.opts.retention;
        if self.blocks.is_empty() || (opts.time_ms <= 0 && opts.max_bytes == 0) {
            return Ok(Vec::new());
        }
        let head_bytes = if opts.max_bytes > 0 {
            retention::head_disk_bytes(&self.dir)?
        } else {
            0
        };
        let extents: Vec<BlockExtent> = self
            .blocks
            .iter()
            .map(|b| BlockExtent {
                max_time: b.meta().max_time,
                bytes: b.size(),
            })
            .collect();
        let doomed = retention::choose(&extents, head_bytes, opts);
        self.retention.count(&doomed);
        let mut deleted = Vec::with_capacity(doomed.blocks.len());
        // Highest index first, so that the indices left to remove stay valid.
        for &i in doomed.blocks.iter().rev() {
            let block = self.blocks.remove(i);
            let ulid = block.meta().ulid.clone();
            if let Err((block, e)) = self.deletions.start(block) {
                // Still whole on disk and open: reads keep seeing what is there.
                self.blocks.insert(i, *block);
                return Err(e.into());
            }
            deleted.push(ulid);
        }
        deleted.reverse();
        Ok(deleted)
    }

    /// One bounded step of head compaction (see `compact`); `Idle` when there is nothing
    /// to do. Retention runs after each block written.
    pub async fn compact_step(&mut self) -> Result<Progress, ShardError> {
        let p = self.compact_step_unpublished().await;
        self.publish_label_state();
        p
    }

    async fn compact_step_unpublished(&mut self) -> Result<Progress, ShardError> {
        self.reap_deletions();
        if self.compactions_paused && !self.is_compacting_or_merging() {
            return Ok(Progress::Idle);
        }
        let ctx = Ctx {
            dir: &self.dir,
            head: &mut self.head,
            wal: &mut self.wal,
            fs: &self.fs,
            blocks: &mut self.blocks,
        };
        let p = if self.compactions_paused && !self.compactor.is_busy() {
            // Only the merge under way goes on.
            Progress::Idle
        } else {
            self.compactor.step(ctx).await?
        };
        if p == Progress::Idle && self.merges_due() {
            // Blocks are merged only while the head has nothing to compact, one slice per
            // step as well; a failure is counted in `block_compaction_stats` and the
            // parents stay as they were.
            match self.merger.step(&self.dir, &mut self.blocks) {
                Ok(MergeStep::Working | MergeStep::Done) => return Ok(Progress::Working),
                Ok(MergeStep::Waiting) => return Ok(Progress::Waiting),
                Ok(MergeStep::Idle) | Err(_) => {}
            }
        }
        if matches!(&p, Progress::HeadTruncated { block: Some(_), .. }) {
            // The block is written whatever retention does; a failure is counted in
            // `retention_stats` and retried.
            let _ = self.apply_retention();
        }
        Ok(p)
    }

    /// Whether block merges may run: see `CompactionOptions::first_merge_after_open`.
    fn merges_due(&self) -> bool {
        self.merger.is_busy()
            || self.compactor.stats.blocks_written > 0
            || self.opened.elapsed() >= self.opts.compaction.first_merge_after_open
    }

    /// Runs head compaction until the head is no longer compactable and the WAL checkpoint
    /// is written, and the blocks retention deleted meanwhile are gone; returns what each
    /// finished phase did.
    pub async fn compact(&mut self) -> Result<Vec<Progress>, ShardError> {
        let mut done = Vec::new();
        loop {
            match self.compact_step().await? {
                Progress::Idle => {
                    self.finish_deletions().await;
                    return Ok(done);
                }
                Progress::Working => {}
                Progress::Waiting => glommio::timer::sleep(OFFLOAD_POLL).await,
                p => done.push(p),
            }
        }
    }

    /// Lets a head compaction or block merge under way finish, so that an admin operation
    /// never races one (a block being written from data it is about to mark deleted).
    async fn finish_compactions(&mut self) -> Result<(), ShardError> {
        while self.compactor.is_busy() || self.merger.is_busy() {
            // Offloaded block I/O finishes through a task of this executor: wait, don't spin.
            if let Progress::Waiting = self.compact_step().await? {
                glommio::timer::sleep(OFFLOAD_POLL).await;
            }
        }
        Ok(())
    }

    /// Marks `[mint, maxt]` of the series matching any selector deleted (Prometheus's
    /// `DB.Delete`, see `deletion`), in one call: `delete_in_head`, then `delete_in_block`
    /// for every block. A server that must keep appending between the parts calls them
    /// itself, with compactions paused.
    pub async fn delete_series(
        &mut self,
        selectors: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<(), ShardError> {
        self.finish_compactions().await?;
        self.delete_in_head(selectors, mint, maxt).await?;
        let ulids: Vec<String> = self.blocks.iter().map(|b| b.meta().ulid.clone()).collect();
        for ulid in &ulids {
            self.delete_in_block(ulid, selectors, mint, maxt)?;
        }
        Ok(())
    }

    /// The head's part of a delete: its tombstones go to the WAL first, so they survive a
    /// restart, then apply.
    pub async fn delete_in_head(
        &mut self,
        selectors: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<(), ShardError> {
        // Tombstones change no label answer (Prometheus's index readers ignore them), but
        // the WAL recovery below may commit batches.
        let r = self.delete_in_head_unpublished(selectors, mint, maxt).await;
        self.publish_label_state();
        r
    }

    async fn delete_in_head_unpublished(
        &mut self,
        selectors: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<(), ShardError> {
        self.recover_wal().await?;
        for matchers in selectors {
            let stones = deletion::head_stones(&self.head, matchers, mint, maxt);
            if stones.is_empty() {
                continue;
            }
            let mut rec = Vec::new();
            wal::record::encode_tombstones(&stones, &mut rec);
            self.wal.log(&[&rec])?;
            self.wal.flush().await?;
            for s in stones {
                for iv in s.intervals {
                    self.head.add_tombstone(s.series_ref, iv);
                }
            }
        }
        Ok(())
    }

    /// One block's part of a delete: its tombstones file and meta.json rewritten. A block
    /// no longer there (retention) has nothing to delete.
    pub fn delete_in_block(
        &mut self,
        ulid: &str,
        selectors: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<(), ShardError> {
        let Some(b) = self.blocks.iter_mut().find(|b| b.meta().ulid == ulid) else {
            return Ok(());
        };
        for matchers in selectors {
            let stones = deletion::block_stones(b, matchers, mint, maxt)?;
            b.add_tombstones(&stones)?;
        }
        Ok(())
    }

    /// Rewrites every block that has tombstones without the deleted samples, then deletes
    /// the old one (Prometheus's `DB.CleanTombstones`), in one call; returns the old
    /// blocks' ULIDs. A server rewrites them off its executor instead
    /// (`deletion::rewrite_block_dir`, then `replace_rewritten`).
    pub async fn clean_tombstones(&mut self) -> Result<Vec<String>, ShardError> {
        self.finish_compactions().await?;
        let mut cleaned = Vec::new();
        for (ulid, path) in self.tombstoned_blocks() {
            let new = deletion::rewrite_block_dir(&self.dir, &path)?;
            if self.replace_rewritten(&ulid, new.as_ref())? {
                cleaned.push(ulid);
            }
        }
        Ok(cleaned)
    }

    /// The blocks with tombstones: ULID and directory.
    pub fn tombstoned_blocks(&self) -> Vec<(String, PathBuf)> {
        self.blocks
            .iter()
            .filter(|b| !b.tombstones().is_empty())
            .map(|b| (b.meta().ulid.clone(), b.dir().to_path_buf()))
            .collect()
    }

    /// Puts the rewrite of block `old` (already in the shard directory; `None` when nothing
    /// was left) in its place and deletes `old`. `false` when `old` went meanwhile
    /// (retention): the rewrite is deleted too, or it would bring the samples back.
    pub fn replace_rewritten(
        &mut self,
        old: &str,
        new: Option<&block::BlockMeta>,
    ) -> Result<bool, ShardError> {
        let r = self.replace_rewritten_unpublished(old, new);
        self.publish_label_state();
        r
    }

    fn replace_rewritten_unpublished(
        &mut self,
        old: &str,
        new: Option<&block::BlockMeta>,
    ) -> Result<bool, ShardError> {
        let Some(i) = self.blocks.iter().position(|b| b.meta().ulid == old) else {
            if let Some(meta) = new {
                retention::delete_block(&self.dir.join(&meta.ulid))?;
            }
            return Ok(false);
        };
        if let Some(meta) = new {
            self.blocks.push(Block::open(&self.dir.join(&meta.ulid))?);
        }
        let old = self.blocks.remove(i);
        let path = old.dir().to_path_buf();
        // Unmapped before its files go.
        drop(old);
        retention::delete_block(&path)?;
        self.blocks.sort_by(|a, b| {
            (a.meta().min_time, &a.meta().ulid).cmp(&(b.meta().min_time, &b.meta().ulid))
        });
        Ok(true)
    }

    /// Writes a snapshot of the shard into `dest` (created): every block hard-linked and,
    /// when `with_head`, the head's samples up to `at` (inclusive) as one more block.
    /// Nothing after `at` is included, so that snapshots of all shards taken with one `at`
    /// describe the same moment.
    pub fn snapshot(&self, dest: &Path, with_head: bool, at: i64) -> Result<(), ShardError> {
        self.snapshot_blocks(dest)?;
        if let Some((lo, hi)) = self.snapshot_head_range(at).filter(|_| with_head) {
            compact::write_head_block(&self.head, dest, lo, hi)?;
        }
        block::sync_dir(dest)?;
        Ok(())
    }

    /// The first part of `snapshot`: `dest` created and every block hard-linked into it.
    pub fn snapshot_blocks(&self, dest: &Path) -> Result<(), ShardError> {
        std::fs::create_dir_all(dest).map_err(|source| ShardError::Io {
            path: dest.to_path_buf(),
            source,
        })?;
        for b in &self.blocks {
            backup::link_block(b.dir(), dest)?;
        }
        Ok(())
    }

    /// The head's range a snapshot taken at `at` writes, `[min, max)`; `None` when empty.
    pub fn snapshot_head_range(&self, at: i64) -> Option<(i64, i64)> {
        let (lo, hi) = self.head.time_range()?;
        let hi = hi.min(at);
        (lo <= hi).then_some((lo, hi.saturating_add(1)))
    }

    /// Appends one batch; `Ok` means acknowledged (in the WAL file).
    pub async fn append(&mut self, batch: &AppendBatch) -> Result<AppendOutcome, ShardError> {
        let mut out = self.append_many(std::slice::from_ref(batch)).await?;
        Ok(out.pop().unwrap_or_default())
    }

    /// Appends several batches with one WAL write (group commit): all are acknowledged
    /// together, or none is.
    pub async fn append_many(
        &mut self,
        batches: &[AppendBatch],
    ) -> Result<Vec<AppendOutcome>, ShardError> {
        let r = self.append_many_unpublished(batches).await;
        self.publish_label_state();
        r
    }

    async fn append_many_unpublished(
        &mut self,
        batches: &[AppendBatch],
    ) -> Result<Vec<AppendOutcome>, ShardError> {
        self.recover_wal().await?;
        if self.scratch.len() < batches.len() {
            self.scratch.resize_with(batches.len(), Prepared::default);
        }
        for (b, p) in batches.iter().zip(self.scratch.iter_mut()) {
            self.head.prepare(b, p)?;
        }
        let used = &self.scratch[..batches.len()];
        let records: Vec<&[u8]> = used.iter().flat_map(|p| p.records()).collect();
        if !records.is_empty() {
            self.wal.log(&records)?;
            if let Err(e) = self.wal.flush().await {
                let rest = self.scratch.split_off(batches.len());
                self.unflushed.append(&mut self.scratch);
                self.scratch = rest;
                return Err(e.into());
            }
        }
        let mut out = Vec::with_capacity(batches.len());
        for p in &mut self.scratch[..batches.len()] {
            out.push(self.head.commit(p)?);
        }
        // The batch is acknowledged whatever compaction does: a failed step is counted in
        // `compaction_stats` and retried later, never reported as an append error.
        let c = self.compactor.options();
        if c.enabled && c.after_appends {
            let _ = self.compact_step().await;
        }
        if self.retention_checked.elapsed() >= RETENTION_INTERVAL {
            let _ = self.apply_retention();
        }
        Ok(out)
    }

    /// After a failed WAL write: retries it, and once it succeeds applies the batches it
    /// held. Fails with the WAL's error while the fault lasts.
    async fn recover_wal(&mut self) -> Result<(), ShardError> {
        if !self.wal.is_failed() && self.unflushed.is_empty() {
            return Ok(());
        }
        self.wal.flush().await?;
        for mut p in std::mem::take(&mut self.unflushed) {
            self.head.commit(&mut p)?;
        }
        Ok(())
    }

    /// Where the next WAL record goes (segment and offset), for self-monitoring.
    pub fn wal_position(&self) -> crate::wal::WalPosition {
        self.wal.position()
    }

    /// Whether the WAL is refusing writes after a failure.
    pub fn is_failed(&self) -> bool {
        self.wal.is_failed()
    }

    /// Makes everything acknowledged so far survive a power loss, and writes buffered
    /// chunks_head records.
    pub async fn sync(&mut self) -> Result<(), ShardError> {
        self.head.chunk_disk_mapper().sync()?;
        self.wal.sync().await?;
        Ok(())
    }

    /// Clean shutdown: a compaction under way finished, chunks_head synced, the WAL closed,
    /// and (if enabled) a snapshot of the head written so that the next start need not
    /// replay the WAL.
    pub async fn close(mut self) -> Result<(), ShardError> {
        self.recover_wal().await?;
        // A compaction under way is finished (as Prometheus waits for one), so that no
        // half-written checkpoint or block is left behind by a clean shutdown. A failure is
        // counted in `compaction_stats` and abandons it; the shutdown goes on.
        while self.compactor.is_busy() || self.merger.is_busy() {
            match self.compact_step().await {
                Ok(Progress::Waiting) => glommio::timer::sleep(OFFLOAD_POLL).await,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // No renamed block is left for the next start to remove.
        self.finish_deletions().await;
        self.head.chunk_disk_mapper().sync()?;
        let pos = self.wal.position();
        self.wal.close().await?;
        if self.opts.snapshot_on_shutdown {
            write_snapshot(
                &self.head,
                &self.dir,
                self.fs.clone(),
                pos.segment,
                pos.offset,
            )
            .await?;
        }
        let Shard { head, .. } = self;
        head.close()?;
        Ok(())
    }
}

/// The head's value set of `name` to publish (`label_generation::ValueSets`): `None` when it
/// has no value or more than `PUBLISHED_VALUES_MAX`, counted before any is copied.
fn head_value_set(head: &Head, name: &str) -> Option<Arc<StringList>> {
    let count = head.postings().value_count(head.symbols(), name);
    (1..=PUBLISHED_VALUES_MAX)
        .contains(&count)
        .then(|| Arc::new(StringList::from_sorted(head.label_values(name, &[]))))
}

/// A block's value sets to publish: each name's with at most `PUBLISHED_VALUES_MAX` values
/// (counted from the postings offset table, no value read). A set that cannot be read is
/// left out: the router then asks the shard, whose answer carries the error.
fn block_value_sets(index: &crate::index::reader::IndexReader) -> ValueSets {
    index
        .label_names()
        .into_iter()
        .filter(|name| index.label_values_iter(name).len() <= PUBLISHED_VALUES_MAX)
        .filter_map(|name| {
            let values = index.label_values(name).ok()?;
            Some((name.to_string(), Arc::new(StringList::from_sorted(values))))
        })
        .collect()
}

fn last_snapshot(dir: &Path) -> Result<Option<(PathBuf, u64, u64)>, ShardError> {
    snapshot::last_snapshot(dir).map_err(|source| ShardError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Restores series and open chunks from a snapshot; returns the number of series and what
/// the WAL replay that follows carries on with. `deferred`: label sets are filed in the
/// hash index at the end, all at once (`Replayer::defer_index`); `Ok(None)` when that
/// cannot be done for this snapshot, and `head` must be opened again and restored with
/// `deferred` false (which never returns `None`).
fn load_snapshot(
    head: &mut Head,
    carry: ReplayCarry,
    path: &Path,
    deferred: bool,
) -> Result<Option<(u64, ReplayCarry)>, ShardError> {
    let snap_err = |source| ShardError::Snapshot {
        path: path.to_path_buf(),
        source,
    };
    let mut replayer = Replayer::new(head, carry);
    if deferred {
        replayer.defer_index();
    }
    let mut reader = WalReader::open(path)?;
    let mut n = 0;
    while let Some(rec) = reader.next_record()? {
        match rec.first() {
            Some(&snapshot::SERIES_RECORD) => {
                let s = snapshot::decode_series(rec).map_err(snap_err)?;
                replayer.restore_snapshot_series(s)?;
                n += 1;
            }
            Some(&snapshot::TOMBSTONES_RECORD) => {
                for (r, iv) in snapshot::decode_tombstones(rec).map_err(snap_err)? {
                    replayer.head().add_tombstone(r, iv);
                }
            }
            // Exemplars are not stored yet.
            Some(&snapshot::EXEMPLARS_RECORD) => {}
            other => {
                return Err(snap_err(SnapshotError::Invalid(format!(
                    "unknown snapshot record type {other:?}"
                ))));
            }
        }
    }
    if deferred {
        return Ok(replayer.finish_deferred().map(|(_, carry)| (n, carry)));
    }
    Ok(Some((n, replayer.finish_pass().1)))
}

/// Replays a checkpoint (whose corruption is fatal, as in Prometheus), then WAL records
/// from `start` (segment, offset), repairing a corrupt tail.
fn replay_wal(
    head: &mut Head,
    carry: ReplayCarry,
    wal_dir: &Path,
    checkpoint: Option<&Path>,
    start: (u64, u64),
    progress: &mut impl FnMut(OpenProgress),
) -> Result<(ReplayStats, Option<RepairReport>), ShardError> {
    let mut replayer = Replayer::new(head, carry);
    let mut repair = None;
    if let Some(dir) = checkpoint {
        let mut reader = WalReader::open(dir)?;
        while let Some(rec) = reader.next_record()? {
            replayer.record(rec)?;
        }
    }
    if wal_dir.exists() {
        let last = wal::list_segments(wal_dir)?.last().map_or(0, |s| s.index);
        let mut reader =
            WalReader::open_range(wal_dir, start.0, u64::MAX)?.with_start_offset(start.1);
        let mut current = None;
        loop {
            let step = match reader.next_record() {
                Ok(Some(rec)) => replayer.record(rec).map(|()| true),
                Ok(None) => break,
                Err(e) => Err(ReplayError::Wal(e)),
            };
            match step {
                Ok(_) => {
                    let seg = reader.segment().unwrap_or(last);
                    if current.is_some_and(|c| c != seg) {
                        progress(OpenProgress::WalSegment {
                            segment: current.unwrap_or(seg),
                            last,
                            records: replayer.stats.records,
                            samples: replayer.stats.samples,
                        });
                    }
                    current = Some(seg);
                }
                // A record that passed its checksums but does not decode is corruption too:
                // the log is cut before it, like a torn tail.
                Err(ReplayError::Wal(e)) => {
                    let e = reader.record_corruption(e);
                    match e.corruption_point() {
                        Some(point) => {
                            drop(reader);
                            repair = Some(wal::repair(wal_dir, point)?);
                            break;
                        }
                        None => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(seg) = current {
            progress(OpenProgress::WalSegment {
                segment: seg,
                last,
                records: replayer.stats.records,
                samples: replayer.stats.samples,
            });
        }
    }
    Ok((replayer.finish(), repair))
}

/// Writes `chunk_snapshot.S.O` through the WAL writer, then removes older snapshots.
async fn write_snapshot<F: SegmentFs + Clone>(
    head: &Head,
    dir: &Path,
    fs: F,
    segment: u64,
    offset: u64,
) -> Result<(), ShardError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ShardError::Io { path, source }
    };
    let final_dir = dir.join(snapshot::dir_name(segment, offset));
    let tmp = dir.join(format!("{}.tmp", snapshot::dir_name(segment, offset)));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let mut w = Wal::open(fs, &tmp, WalOptions::default()).await?;
    let mut buf = Vec::with_capacity(1 << 20);
    let mut ends = Vec::new();
    for r in head.series_refs() {
        snapshot::encode_series(head, r, &mut buf);
        ends.push(buf.len());
        if buf.len() > 8 << 20 {
            log_records(&mut w, &buf, &ends).await?;
            buf.clear();
            ends.clear();
        }
    }
    snapshot::encode_tombstones(head, &mut buf);
    ends.push(buf.len());
    log_records(&mut w, &buf, &ends).await?;
    w.close().await?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    for old in snapshot::stale_snapshots(dir, Some(&final_dir)).map_err(io(dir))? {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(())
}

async fn log_records<F: SegmentFs>(
    w: &mut Wal<F>,
    buf: &[u8],
    ends: &[usize],
) -> Result<(), WalError> {
    let mut start = 0;
    let recs: Vec<&[u8]> = ends
        .iter()
        .map(|&end| {
            let r = &buf[start..end];
            start = end;
            r
        })
        .collect();
    w.log(&recs)?;
    w.flush().await
}
