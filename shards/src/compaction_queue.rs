//! A shard's compaction queue: the task that drives head compaction, block compaction and
//! retention (`Shard::compact_step`) in a glommio task queue of its own, with low shares
//! and no latency requirement, so that the shard's appends and queries (in the executor's
//! default queue) keep their share of the core while a block is being written.
//!
//! The shard is shared with its request loop through a glommio `RwLock`: a step takes the
//! write lock for one bounded slice of work (`CompactionOptions::step_budget`) and the
//! task pauses briefly after each one, so an append waits for at most one slice; block
//! merges (`block_compaction`) are sliced the same way. What waits for the disk (creating
//! and closing block files, removing old chunks_head files, reading WAL segments for a
//! checkpoint and closing it, unmapping and removing merged or expired blocks) runs on the
//! executor's blocking thread or in a task of its own (`compact`'s `offload` and
//! `offload_local`) without the lock held. It never decides what to compact: that is
//! `compact` and `block_compaction`.
//!
//! Stopping waits for the step under way and leaves the rest to `Shard::close`, which
//! finishes a compaction before the shard closes, so no partial block is left behind.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use glommio::sync::RwLock;
use glommio::{Latency, Shares, Task};

use crate::compact::Progress;
use crate::shard::{Shard, OFFLOAD_POLL};
use crate::wal::SegmentFs;

/// The compaction queue's shares against the default queue's 1000: when both have work,
/// compaction gets about 1% of the core.
pub const COMPACTION_SHARES: usize = 10;

/// How often an idle queue looks whether the head became compactable (a cheap check;
/// Prometheus looks once a minute, but tests and small block ranges want it sooner).
const IDLE_POLL: Duration = Duration::from_millis(250);

/// The pause between two slices of work, during which the executor polls for I/O and
/// serves what arrived.
const STEP_PAUSE: Duration = Duration::from_micros(100);

/// The running compaction task of one shard.
pub struct CompactionQueue {
    stop: Rc<Cell<bool>>,
    task: Task<()>,
}

impl CompactionQueue {
    /// Creates the low-share task queue on the current executor and starts the task in it.
    pub fn spawn<F: SegmentFs + Clone + 'static>(
        shard: Rc<RwLock<Shard<F>>>,
    ) -> Result<Self, glommio::GlommioError<()>> {
        let tq = glommio::executor().create_task_queue(
            Shares::Static(COMPACTION_SHARES),
            Latency::NotImportant,
            "compaction",
        );
        let stop = Rc::new(Cell::new(false));
        let task = glommio::spawn_local_into(run(shard, stop.clone()), tq)?;
        Ok(CompactionQueue { stop, task })
    }

    /// Stops after the step under way (at most `IDLE_POLL` later when idle).
    pub async fn stop(self) {
        self.stop.set(true);
        self.task.await;
    }
}

async fn run<F: SegmentFs + Clone + 'static>(shard: Rc<RwLock<Shard<F>>>, stop: Rc<Cell<bool>>) {
    while !stop.get() {
        let step = {
            let Ok(mut s) = shard.write().await else {
                return;
            };
            if !s.compaction_enabled() {
                return;
            }
            s.compact_step().await
        };
        match step {
            // A failure is counted in the shard's stats and retried after `retry_after`.
            Ok(Progress::Idle) | Err(_) => glommio::timer::sleep(IDLE_POLL).await,
            Ok(Progress::Waiting) => glommio::timer::sleep(OFFLOAD_POLL).await,
            // A short sleep, not a yield: while this queue stays runnable glommio does not poll
            // its reactor (timers, channel wake-ups) before the preempt timer, 100 ms by
            // default, so the shard's requests would not even be noticed.
            Ok(_) => glommio::timer::sleep(STEP_PAUSE).await,
        }
    }
}
