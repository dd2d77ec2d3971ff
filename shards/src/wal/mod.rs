//! The write-ahead log of one shard, in Prometheus's `wal/` format (spec section 9): numbered
//! segment files made of 32 KiB pages, records cut into CRC32C-checked fragments.
//!
//! This module owns the bytes of the log and nothing else: it encodes and decodes records
//! (`record`), cuts them into pages (`page`), writes segments through a file seam
//! (`segment_file`, `writer`), reads them back (`reader`) and cuts a log at its first
//! corruption (`repair`). It never interprets what the records mean for the head (series
//! creation, sample validity, checkpoint selection), and it never skips a bad record to
//! read what follows: everything after the first corruption is discarded, as Prometheus does.
//!
//! # The durability rule
//!
//! A record is **acknowledged** when the `Wal::flush` that followed its `Wal::log` returned
//! `Ok`: its bytes were then written to the segment file and survive a crash of the process
//! (not necessarily a power loss). Segment files are fsynced when a segment is closed (at a
//! segment switch and at `Wal::close`, i.e. shutdown) and on `Wal::sync`; only then do they
//! survive a power loss. A flush that failed acknowledges nothing: its records stay in memory
//! and are written entirely by a later successful flush, or never. A crash can leave the
//! newest segment with a torn tail (a page cut short, zeros up to the I/O alignment); the
//! reader reports it as corruption located at the end of the last good record and `repair`
//! truncates there, so nothing acknowledged is lost.
//!
//! Start-up order therefore is: read the newest checkpoint and the segments after it with
//! `WalReader`, `repair` on corruption, and only then `Wal::open`, which starts a new segment
//! after the last one (as Prometheus does on every start).

pub mod checkpoint;
pub mod fault;
pub mod page;
pub mod page_cache_fs;
pub mod reader;
pub mod record;
pub mod repair;
pub mod segment_file;
pub mod writer;

pub use page::{DEFAULT_SEGMENT_SIZE, FRAGMENT_HEADER_SIZE, PAGE_SIZE};
pub use page_cache_fs::PageCacheFs;
pub use reader::WalReader;
pub use record::{RefSample, RefSeries, Stone};
pub use repair::{repair, RepairReport};
pub use segment_file::{DmaFs, SegmentFile, SegmentFs};
pub use writer::{Wal, WalOptions, WalPosition};

use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Everything that can go wrong in the WAL. Corruption of what was read is its own variant,
/// never an I/O error, because the answer to it is `repair`, not a retry.
#[derive(Debug, Error)]
pub enum WalError {
    #[error("WAL I/O error while {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The log is unreadable from `offset` of segment `segment` on; `offset` is where the last
    /// good record ended, the point `repair` truncates at.
    #[error("WAL corruption in segment {segment:08} at offset {offset}: {reason}")]
    Corruption {
        segment: u64,
        offset: u64,
        reason: String,
    },
    #[error(
        "WAL record in segment {segment:08} at offset {offset} is zstd-compressed \
         (fragment flags {flags:#04x}); only snappy is supported: restart Prometheus with \
         --storage.tsdb.wal-compression-type=snappy and let it write a new segment"
    )]
    UnsupportedCompression {
        segment: u64,
        offset: u64,
        flags: u8,
    },
    /// A record whose bytes passed the fragment checksums but do not decode. A reader turns
    /// it into `Corruption` with `WalReader::record_corruption`.
    #[error("malformed WAL record: {0}")]
    BadRecord(String),
    #[error(
        "WAL refuses writes after an earlier failure ({cause}); the unflushed records are \
         kept in memory and the next flush retries them"
    )]
    Failed { cause: String },
    #[error("invalid WAL options: {0}")]
    InvalidOptions(String),
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        WalError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Where the log must be cut when this is a corruption; `None` for every other error.
    pub fn corruption_point(&self) -> Option<CorruptionPoint> {
        match *self {
            WalError::Corruption {
                segment, offset, ..
            } => Some(CorruptionPoint { segment, offset }),
            _ => None,
        }
    }
}

/// The first byte of a log that cannot be trusted: segment index and offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CorruptionPoint {
    pub segment: u64,
    pub offset: u64,
}

/// A segment file of a WAL (or checkpoint) directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRef {
    pub index: u64,
    pub path: PathBuf,
}

/// `00000012`: the 8-digit file name of segment 12.
pub fn segment_name(index: u64) -> String {
    format!("{index:08}")
}

pub fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(segment_name(index))
}

/// `checkpoint.00000012`: the directory of the checkpoint folding segments up to 12.
pub fn checkpoint_name(index: u64) -> String {
    format!("checkpoint.{index:08}")
}

/// The segment files of `dir` in index order. Like Prometheus, any all-digit file name is a
/// segment. A missing directory holds no segments.
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentRef>, WalError> {
    let mut segments = Vec::new();
    for entry in read_dir(dir)? {
        let entry = entry.map_err(|e| WalError::io("listing", dir, e))?;
        let name = entry.file_name();
        let Some(index) = name.to_str().and_then(parse_index) else {
            continue;
        };
        let is_file = entry
            .file_type()
            .map_err(|e| WalError::io("listing", dir, e))?
            .is_file();
        if is_file {
            segments.push(SegmentRef {
                index,
                path: entry.path(),
            });
        }
    }
    segments.sort_unstable_by_key(|s| s.index);
    Ok(segments)
}

/// The newest finished checkpoint directory of the WAL `dir` (`checkpoint.N`, never the
/// `checkpoint.N.tmp` being written), with its index N.
/// Removes `checkpoint.N.tmp` directories: checkpoints a crash interrupted, which nothing
/// reads (`last_checkpoint` skips them) and the next checkpoint would replace anyway.
pub fn remove_unfinished_checkpoints(dir: &Path) -> Result<usize, WalError> {
    if !dir.exists() {
        return Ok(0);
    }
    let mut removed = 0;
    for entry in read_dir(dir)? {
        let entry = entry.map_err(|e| WalError::io("listing", dir, e))?;
        let name = entry.file_name();
        let unfinished = name
            .to_str()
            .is_some_and(|n| n.starts_with("checkpoint.") && n.ends_with(".tmp"));
        if unfinished {
            let path = entry.path();
            std::fs::remove_dir_all(&path).map_err(|e| WalError::io("removing", &path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

pub fn last_checkpoint(dir: &Path) -> Result<Option<(u64, PathBuf)>, WalError> {
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in read_dir(dir)? {
        let entry = entry.map_err(|e| WalError::io("listing", dir, e))?;
        let name = entry.file_name();
        let Some(index) = name
            .to_str()
            .and_then(|n| n.strip_prefix("checkpoint."))
            .and_then(parse_index)
        else {
            continue;
        };
        let is_dir = entry
            .file_type()
            .map_err(|e| WalError::io("listing", dir, e))?
            .is_dir();
        let newer = match &best {
            Some((b, _)) => index > *b,
            None => true,
        };
        if is_dir && newer {
            best = Some((index, entry.path()));
        }
    }
    Ok(best)
}

fn read_dir(dir: &Path) -> Result<impl Iterator<Item = io::Result<std::fs::DirEntry>>, WalError> {
    match std::fs::read_dir(dir) {
        Ok(rd) => Ok(Some(rd).into_iter().flatten()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None.into_iter().flatten()),
        Err(e) => Err(WalError::io("listing", dir, e)),
    }
}

fn parse_index(name: &str) -> Option<u64> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(segment_name(12), "00000012");
        assert_eq!(checkpoint_name(3), "checkpoint.00000003");
    }

    #[test]
    fn listing() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["00000002", "00000000", "00000001", "abc", "0000000x"] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        std::fs::create_dir(dir.path().join("checkpoint.00000001")).unwrap();
        std::fs::create_dir(dir.path().join("checkpoint.00000004")).unwrap();
        std::fs::create_dir(dir.path().join("checkpoint.00000009.tmp")).unwrap();
        let idx: Vec<u64> = list_segments(dir.path())
            .unwrap()
            .iter()
            .map(|s| s.index)
            .collect();
        assert_eq!(idx, [0, 1, 2]);
        let (n, p) = last_checkpoint(dir.path()).unwrap().unwrap();
        assert_eq!(n, 4);
        assert!(p.ends_with("checkpoint.00000004"));
        let missing = dir.path().join("nope");
        assert!(list_segments(&missing).unwrap().is_empty());
        assert!(last_checkpoint(&missing).unwrap().is_none());
    }
}
