//! Test hook for crash tests: named points in block writes, WAL checkpoints and block
//! deletion where the process kills itself with SIGKILL when the environment variable
//! `PROMCORE_CRASH_AT` names that point (read once). Unset, as in every real deployment, a
//! point costs one load of a cached `Option` and does nothing.
//!
//! It exists so that tests/compaction_crash.rs can crash the real binary exactly in the
//! middle of an operation rather than hoping a random kill lands there. It must never do
//! anything but kill the process, and only when armed.

use std::sync::OnceLock;

/// The block's chunk files are written and fsynced; index and meta.json are not.
pub const BLOCK_WRITE_AFTER_CHUNKS: &str = "block_write_after_chunks";
/// The first records of a WAL checkpoint are written to `checkpoint.N.tmp`.
pub const WAL_CHECKPOINT_STEP: &str = "wal_checkpoint_step";
/// A block being deleted (retention, or a merge's parents) is renamed to
/// `.tmp-for-deletion` and not yet removed.
pub const BLOCK_DELETE_AFTER_RENAME: &str = "block_delete_after_rename";

const VAR: &str = "PROMCORE_CRASH_AT";

/// Kills the process here if `PROMCORE_CRASH_AT` is `point`.
pub fn reached(point: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var(VAR).ok().filter(|v| !v.is_empty()));
    if armed.as_deref() == Some(point) {
        // SAFETY: kill(2) on our own pid; no memory is involved.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
