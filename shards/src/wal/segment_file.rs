//! The file seam of the WAL writer: what it needs from a segment file and from the directory
//! holding the segments. Production uses `page_cache_fs::PageCacheFs` (buffered `pwrite(2)`, as
//! Prometheus); `DmaFs` (glommio's `DmaFile`: O_DIRECT writes through io_uring) is the
//! alternative with aligned writes; tests put `fault::FaultFs` in between to fail writes and
//! fsyncs on demand.
//!
//! The seam only moves bytes. It never decides what is written where or when (that is the
//! writer's job), and it never buffers: a write that returned `Ok` reached the kernel.
//!
//! The traits use `async fn` without `Send` bounds on purpose: a WAL lives on one executor
//! and its futures never move between threads, so they are generic, not `dyn`.
#![allow(async_fn_in_trait)]

use std::io;
use std::path::Path;

/// One open segment file, written at explicit offsets.
pub trait SegmentFile {
    /// Alignment of the offsets and lengths `write_at` accepts (512 or 4096 for O_DIRECT).
    fn alignment(&self) -> u64;

    /// Writes `data` at `pos`; both are multiples of `alignment()`. Returns how many bytes
    /// were written, which may be fewer than asked.
    async fn write_at(&self, data: &[u8], pos: u64) -> io::Result<usize>;

    /// Makes everything written so far durable (fdatasync).
    async fn sync(&self) -> io::Result<()>;

    async fn close(self) -> io::Result<()>;
}

/// Creates segment files and makes directory entries durable.
pub trait SegmentFs {
    type File: SegmentFile + 'static;

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// Creates the file at `path` for writing, empty (truncating a leftover of a failed
    /// attempt to create it).
    async fn create(&self, path: &Path) -> io::Result<Self::File>;

    /// fsyncs the directory `dir`, so that files created in it survive a power loss.
    async fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// Segment files as glommio `DmaFile`s. Must be used on a glommio executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct DmaFs;

impl SegmentFs for DmaFs {
    type File = glommio::io::DmaFile;

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        // Blocking, but only when the WAL is opened.
        std::fs::create_dir_all(dir)
    }

    async fn create(&self, path: &Path) -> io::Result<Self::File> {
        glommio::io::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .dma_open(path)
            .await
            .map_err(io::Error::from)
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let d = glommio::io::Directory::open(dir).await?;
        d.sync().await?;
        d.close().await.map_err(io::Error::from)
    }
}

impl SegmentFile for glommio::io::DmaFile {
    fn alignment(&self) -> u64 {
        glommio::io::DmaFile::alignment(self)
    }

    async fn write_at(&self, data: &[u8], pos: u64) -> io::Result<usize> {
        // io_uring owns the buffer until the write completes, and the future may be dropped
        // before that: a borrowed slice cannot be handed over, so it is copied into a DMA
        // buffer (one memcpy of the flushed range, small next to the write itself).
        let mut buf = self.alloc_dma_buffer(data.len());
        buf.as_bytes_mut().copy_from_slice(data);
        glommio::io::DmaFile::write_at(self, buf, pos)
            .await
            .map_err(io::Error::from)
    }

    async fn sync(&self) -> io::Result<()> {
        self.fdatasync().await.map_err(io::Error::from)
    }

    async fn close(self) -> io::Result<()> {
        glommio::io::DmaFile::close(self)
            .await
            .map_err(io::Error::from)
    }
}
