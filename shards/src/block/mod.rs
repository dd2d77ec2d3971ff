//! Persistent blocks: a shard's immutable, time-bounded slices of series in Prometheus's
//! block format (`<ulid>/{meta.json,index,chunks/000001…,tombstones}`, spec §4–§7).
//!
//! This module owns block directories: writing one whole (`writer`, through a temporary
//! name), opening and reading one (`reader`, `chunk_reader`), and the file formats that are
//! a block's own (`chunk_writer`, `meta`, `ulid`).
//! It never decides what goes into a block or when (that is `compact`), and never deletes
//! a block it cannot read: a corrupt block is reported as `BlockError::Corrupt`, naming the
//! file, and left for an operator to look at.

pub mod chunk_reader;
pub mod chunk_writer;
pub mod meta;
pub mod reader;
pub mod ulid;
pub mod writer;

pub use meta::{BlockMeta, BlockStats, Compaction};
pub use reader::{open_all, Block, BlockSamples, OpenedBlocks};
pub use ulid::Ulid;
pub use writer::{write_block, BlockChunk, BlockWriter, NewBlock};

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Suffix of a block directory being written; removed at start-up.
pub const TMP_FOR_CREATION_SUFFIX: &str = ".tmp-for-creation";
/// Suffix of a block directory being deleted; removed at start-up.
pub const TMP_FOR_DELETION_SUFFIX: &str = ".tmp-for-deletion";

#[derive(Debug, Error)]
pub enum BlockError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// What was read from disk is not a valid block file. The block is skipped, never
    /// deleted.
    #[error("corrupt block file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// Valid, but something this reader does not handle (histogram chunks, index v1).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A caller broke the writer's contract (unsorted series, overlapping chunks, ...).
    #[error("invalid block input: {0}")]
    InvalidInput(String),
}

impl BlockError {
    pub(crate) fn io<'a>(
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> BlockError + 'a {
        move |source| BlockError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn is_corrupt(&self) -> bool {
        matches!(self, BlockError::Corrupt { .. })
    }
}

/// fsyncs a directory, so that the entries created or renamed in it survive a power loss.
pub fn sync_dir(dir: &Path) -> Result<(), BlockError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(BlockError::io("fsync", dir))
}
