//! Segment files written through the page cache, as Prometheus writes its WAL: one
//! `pwrite(2)` of the new bytes per flush, on the shard's own thread, and `fdatasync` only
//! when a segment is finished, at shutdown and on `Wal::sync`.
//!
//! Why not O_DIRECT through io_uring (`DmaFs`): a scrape's batch is a few KiB, and ext4 runs
//! each direct write in an io_uring worker thread that then wakes the executor, and sends it
//! to the disk at once. That cost more CPU than the samples themselves. A buffered write of
//! a few KiB is a memory copy in the kernel, and the kernel writes pages back in bulk. The
//! durability rule of `wal` is unchanged: an acknowledged record was written to the file,
//! so it survives a crash of the process; a power loss keeps what was fsynced.
//!
//! The write blocks the executor for that copy (or, under dirty-page throttling, until the
//! kernel has caught up, which is back-pressure too). fsyncs, which wait for the disk, run
//! on glommio's blocking thread pool instead, so the executor keeps serving meanwhile. It
//! never buffers in user space: a write that returned `Ok` reached the kernel.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::segment_file::{SegmentFile, SegmentFs};

/// Creates page-cache segment files. Must be used on a glommio executor (fsyncs go to its
/// blocking thread pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct PageCacheFs;

/// One segment file; `Arc` so that an fsync can run on another thread while it stays open.
#[derive(Debug)]
pub struct PageCacheFile {
    file: Arc<File>,
}

impl SegmentFs for PageCacheFs {
    type File = PageCacheFile;

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        // Blocking, but only when the WAL is opened.
        std::fs::create_dir_all(dir)
    }

    async fn create(&self, path: &Path) -> io::Result<Self::File> {
        // Blocking, once per segment: creating an empty file does not wait for the disk.
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(PageCacheFile {
            file: Arc::new(file),
        })
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let dir: PathBuf = dir.to_path_buf();
        off_executor(move || File::open(&dir)?.sync_all()).await
    }
}

impl SegmentFile for PageCacheFile {
    fn alignment(&self) -> u64 {
        1
    }

    async fn write_at(&self, data: &[u8], pos: u64) -> io::Result<usize> {
        loop {
            match self.file.write_at(data, pos) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    async fn sync(&self) -> io::Result<()> {
        let file = self.file.clone();
        off_executor(move || file.sync_data()).await
    }

    async fn close(self) -> io::Result<()> {
        // Nothing is buffered here and `close(2)` does not report write-back errors that the
        // fsync before it (segment switch, shutdown) would not have reported.
        drop(self.file);
        Ok(())
    }
}

/// Runs a call that waits for the disk on glommio's blocking thread pool.
async fn off_executor(f: impl FnOnce() -> io::Result<()> + Send + 'static) -> io::Result<()> {
    glommio::executor().spawn_blocking(f).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::{LocalExecutorBuilder, Placement};

    #[test]
    fn writes_land_at_their_offsets_and_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000");
        let p = path.clone();
        let d = dir.path().to_path_buf();
        LocalExecutorBuilder::new(Placement::Unbound)
            .spawn(move || async move {
                let fs = PageCacheFs;
                let f = fs.create(&p).await.unwrap();
                assert_eq!(f.alignment(), 1);
                assert_eq!(f.write_at(b"hello", 0).await.unwrap(), 5);
                assert_eq!(f.write_at(b" world", 5).await.unwrap(), 6);
                // Rewriting a range (a retried flush) replaces it.
                assert_eq!(f.write_at(b"W", 6).await.unwrap(), 1);
                f.sync().await.unwrap();
                fs.sync_dir(&d).await.unwrap();
                f.close().await.unwrap();
                // Creating again truncates a leftover.
                let f = fs.create(&p).await.unwrap();
                f.write_at(b"x", 0).await.unwrap();
                f.close().await.unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
    }
}
