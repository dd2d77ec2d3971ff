//! Admin requests on one shard (`DeleteSeries`, `CleanTombstones`, `Snapshot`), run beside
//! the shard's request loop in a task queue of their own, so that appends and queries go on
//! while a delete or a rewrite is under way (Prometheus serves them concurrently as well).
//!
//! An operation pauses new compactions, waits for one under way to finish (the compaction
//! queue drives it), then works in slices, each under the shard's lock taken anew: the
//! head's tombstones, then one block at a time. Rewriting a block without its deleted
//! samples runs on the executor's blocking thread with no lock held; the rewrite replaces
//! the old block only if that block is still there. A snapshot links the blocks, writes
//! the head's series into its block `SNAPSHOT_SERIES_PER_SLICE` at a time, and closes that
//! block on the blocking thread. Operations of one shard run one at a time. This module decides nothing about what to delete: that is `shards::deletion`.

use std::rc::Rc;
use std::time::Duration;

use glommio::sync::RwLock;
use shards::block::sync_dir;
use shards::compact::HeadBlockWrite;
use shards::deletion;
use shards::shard::{Shard, ShardError};

use super::protocol::{ShardRequest, ShardResponse};
use super::shard_service::LOCK_OPEN;

/// The pause between two slices of an operation.
const SLICE_PAUSE: Duration = Duration::from_micros(100);

/// How often a waiting operation looks whether the compaction under way has finished.
const COMPACTION_POLL: Duration = Duration::from_millis(5);

/// Head series written into a snapshot's block per slice, the shard locked.
const SNAPSHOT_SERIES_PER_SLICE: usize = 1024;

/// Whether `request` is one of the admin requests this module runs.
pub fn is_admin(request: &ShardRequest) -> bool {
    matches!(
        request,
        ShardRequest::DeleteSeries { .. }
            | ShardRequest::CleanTombstones
            | ShardRequest::Snapshot { .. }
    )
}

/// Runs one admin request; `driven` says whether a compaction queue drives compactions
/// (otherwise a compaction under way is driven from here, as appends would).
pub async fn run(shard: &Rc<RwLock<Shard>>, request: ShardRequest, driven: bool) -> ShardResponse {
    if let Err(e) = pause_compactions(shard, driven).await {
        resume_compactions(shard).await;
        return ShardResponse::Admin(Err(e.to_string()));
    }
    let r = match request {
        ShardRequest::DeleteSeries {
            selectors,
            mint,
            maxt,
        } => delete_series(shard, &selectors, mint, maxt).await,
        ShardRequest::CleanTombstones => clean_tombstones(shard).await,
        ShardRequest::Snapshot { dir, with_head, at } => snapshot(shard, dir, with_head, at).await,
        _ => Ok(()),
    };
    resume_compactions(shard).await;
    ShardResponse::Admin(r.map_err(|e| e.to_string()))
}

/// Keeps new compactions from starting and waits, lock released, for the one under way.
async fn pause_compactions(shard: &Rc<RwLock<Shard>>, driven: bool) -> Result<(), ShardError> {
    shard
        .write()
        .await
        .expect(LOCK_OPEN)
        .pause_compactions(true);
    loop {
        {
            let mut s = shard.write().await.expect(LOCK_OPEN);
            if !s.is_compacting_or_merging() {
                return Ok(());
            }
            if !driven {
                s.compact_step().await?;
            }
        }
        glommio::timer::sleep(COMPACTION_POLL).await;
    }
}

/// Between two slices: a short sleep, not a yield, so that the executor polls its reactor
/// and the requests waiting for the shard get it (as the compaction queue does).
async fn pause() {
    glommio::timer::sleep(SLICE_PAUSE).await;
}

async fn resume_compactions(shard: &Rc<RwLock<Shard>>) {
    shard
        .write()
        .await
        .expect(LOCK_OPEN)
        .pause_compactions(false);
}

async fn delete_series(
    shard: &Rc<RwLock<Shard>>,
    selectors: &[Vec<shards::index::matcher::Matcher>],
    mint: i64,
    maxt: i64,
) -> Result<(), ShardError> {
    let ulids: Vec<String> = {
        let mut s = shard.write().await.expect(LOCK_OPEN);
        s.delete_in_head(selectors, mint, maxt).await?;
        s.blocks().iter().map(|b| b.meta().ulid.clone()).collect()
    };
    for ulid in &ulids {
        pause().await;
        let mut s = shard.write().await.expect(LOCK_OPEN);
        s.delete_in_block(ulid, selectors, mint, maxt)?;
    }
    Ok(())
}

async fn clean_tombstones(shard: &Rc<RwLock<Shard>>) -> Result<(), ShardError> {
    let (dir, blocks) = {
        let s = shard.read().await.expect(LOCK_OPEN);
        (s.dir().to_path_buf(), s.tombstoned_blocks())
    };
    for (ulid, path) in blocks {
        let parent = dir.clone();
        // The whole block is read and written again: off the executor, no lock held.
        let new = glommio::executor()
            .spawn_blocking(move || deletion::rewrite_block_dir(&parent, &path))
            .await?;
        shard
            .write()
            .await
            .expect(LOCK_OPEN)
            .replace_rewritten(&ulid, new.as_ref())?;
    }
    Ok(())
}

async fn snapshot(
    shard: &Rc<RwLock<Shard>>,
    dir: std::path::PathBuf,
    with_head: bool,
    at: i64,
) -> Result<(), ShardError> {
    let mut job = {
        let s = shard.read().await.expect(LOCK_OPEN);
        s.snapshot_blocks(&dir)?;
        match s.snapshot_head_range(at).filter(|_| with_head) {
            Some((lo, hi)) => HeadBlockWrite::start(s.head(), &dir, lo, hi)?,
            None => None,
        }
    };
    if let Some(j) = &mut job {
        loop {
            pause().await;
            let s = shard.read().await.expect(LOCK_OPEN);
            if j.write(s.head(), SNAPSHOT_SERIES_PER_SLICE)? {
                break;
            }
        }
    }
    let writer = job.and_then(HeadBlockWrite::into_writer);
    // The head's block closed (fsyncs, rename) and the directory synced off the executor.
    glommio::executor()
        .spawn_blocking(move || {
            if let Some(w) = writer {
                w.finish()?;
            }
            sync_dir(&dir)
        })
        .await?;
    Ok(())
}
