//! The data directory: its lock, `promcore.json`, and where each shard's directory is.
//!
//! ```text
//! data/
//!   lock            flock'd while a promcore process has the directory open
//!   promcore.json   {"format_version": 1, "shards": N}
//!   shard-000/      a Prometheus TSDB directory (wal/, chunks_head/, snapshots, blocks)
//!   shard-001/ ...
//! ```
//!
//! The shard count is fixed when the directory is created: a series lives on shard
//! `series_hash % N`, so opening with another count would silently hide data. It is a
//! start-up error instead, naming the count to use.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const FORMAT_VERSION: u32 = 1;
const META_FILE: &str = "promcore.json";
const LOCK_FILE: &str = "lock";

#[derive(Debug, Error)]
pub enum DataDirError {
    #[error("data directory {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "data directory {0} is locked by another process: stop the other promcore, or give this one its own --storage.tsdb.path"
    )]
    Locked(PathBuf),
    #[error(
        "data directory {path} was created with {on_disk} shards but --shards is {requested}: start with --shards {on_disk} (series are placed by hash, so the count cannot change in place)"
    )]
    ShardCountMismatch {
        path: PathBuf,
        on_disk: usize,
        requested: usize,
    },
    #[error("{path} is not a promcore.json this version understands: {reason}")]
    BadMeta { path: PathBuf, reason: String },
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Meta {
    format_version: u32,
    shards: usize,
}

/// An open, locked data directory.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    shards: usize,
    lock: Option<File>,
}

impl DataDir {
    /// Opens (creating if needed) and locks `path` for `shards` shards.
    pub fn open(path: &Path, shards: usize) -> Result<DataDir, DataDirError> {
        let io_err = |source| DataDirError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(path).map_err(io_err)?;
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(io_err)?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(DataDirError::Locked(path.to_path_buf()));
        }
        let meta_path = path.join(META_FILE);
        match std::fs::read(&meta_path) {
            Ok(bytes) => {
                let meta: Meta =
                    serde_json::from_slice(&bytes).map_err(|e| DataDirError::BadMeta {
                        path: meta_path.clone(),
                        reason: e.to_string(),
                    })?;
                if meta.format_version != FORMAT_VERSION {
                    return Err(DataDirError::BadMeta {
                        path: meta_path,
                        reason: format!(
                            "format_version {} (this build reads {FORMAT_VERSION})",
                            meta.format_version
                        ),
                    });
                }
                if meta.shards != shards {
                    return Err(DataDirError::ShardCountMismatch {
                        path: path.to_path_buf(),
                        on_disk: meta.shards,
                        requested: shards,
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let meta = Meta {
                    format_version: FORMAT_VERSION,
                    shards,
                };
                let tmp = path.join("promcore.json.tmp");
                let mut text =
                    serde_json::to_vec_pretty(&meta).map_err(|e| DataDirError::BadMeta {
                        path: meta_path.clone(),
                        reason: e.to_string(),
                    })?;
                text.push(b'\n');
                std::fs::write(&tmp, text).map_err(io_err)?;
                File::open(&tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err)?;
                std::fs::rename(&tmp, &meta_path).map_err(io_err)?;
            }
            Err(e) => return Err(io_err(e)),
        }
        for i in 0..shards {
            std::fs::create_dir_all(shard_dir(path, i)).map_err(io_err)?;
        }
        File::open(path)
            .and_then(|d| d.sync_all())
            .map_err(io_err)?;
        Ok(DataDir {
            path: path.to_path_buf(),
            shards,
            lock: Some(lock),
        })
    }

    /// The shard count recorded in an existing data directory, if any.
    pub fn recorded_shards(path: &Path) -> Option<usize> {
        let bytes = std::fs::read(path.join(META_FILE)).ok()?;
        serde_json::from_slice::<Meta>(&bytes)
            .ok()
            .map(|m| m.shards)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    pub fn shard_dir(&self, shard: usize) -> PathBuf {
        shard_dir(&self.path, shard)
    }

    /// Releases the lock and removes the lock file, as Prometheus does on a clean shutdown.
    pub fn close(mut self) -> io::Result<()> {
        self.lock.take();
        std::fs::remove_file(self.path.join(LOCK_FILE))
    }
}

pub fn shard_dir(data: &Path, shard: usize) -> PathBuf {
    data.join(format!("shard-{shard:03}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_meta_and_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::open(dir.path(), 3).unwrap();
        assert!(dir.path().join("shard-002").is_dir());
        assert!(matches!(
            DataDir::open(dir.path(), 3),
            Err(DataDirError::Locked(_))
        ));
        d.close().unwrap();
        let err = DataDir::open(dir.path(), 2).unwrap_err();
        assert!(err.to_string().contains("start with --shards 3"), "{err}");
        assert_eq!(DataDir::recorded_shards(dir.path()), Some(3));
        DataDir::open(dir.path(), 3).unwrap().close().unwrap();
    }
}
