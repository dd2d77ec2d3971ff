//! A fault-injecting `SegmentFs` for tests: it wraps a real one and, on demand, fails
//! writes (optionally after writing part of the data, as a torn write), fsyncs or file
//! creations with a chosen errno, until healed. It is a test double; production never
//! constructs it.

use super::segment_file::{SegmentFile, SegmentFs};
use std::cell::Cell;
use std::io;
use std::path::Path;
use std::rc::Rc;

/// The switchboard shared by a `FaultFs` and every file it created.
#[derive(Debug, Clone, Default)]
pub struct Faults(Rc<FaultState>);

#[derive(Debug, Default)]
struct FaultState {
    write_errno: Cell<Option<i32>>,
    torn_writes: Cell<bool>,
    sync_errno: Cell<Option<i32>>,
    create_errno: Cell<Option<i32>>,
    writes: Cell<u64>,
    syncs: Cell<u64>,
    failures: Cell<u64>,
}

impl Faults {
    /// Every write fails with `errno` (e.g. `libc::ENOSPC`). With `torn`, the first half
    /// of the data (in whole alignment blocks) is written before failing.
    pub fn fail_writes(&self, errno: i32, torn: bool) {
        self.0.write_errno.set(Some(errno));
        self.0.torn_writes.set(torn);
    }

    pub fn fail_syncs(&self, errno: i32) {
        self.0.sync_errno.set(Some(errno));
    }

    pub fn fail_creates(&self, errno: i32) {
        self.0.create_errno.set(Some(errno));
    }

    /// Stops injecting faults.
    pub fn heal(&self) {
        self.0.write_errno.set(None);
        self.0.sync_errno.set(None);
        self.0.create_errno.set(None);
    }

    /// Writes that reached the wrapped file.
    pub fn writes(&self) -> u64 {
        self.0.writes.get()
    }

    pub fn syncs(&self) -> u64 {
        self.0.syncs.get()
    }

    /// Faults injected so far.
    pub fn failures(&self) -> u64 {
        self.0.failures.get()
    }

    fn fail(&self, errno: Option<i32>) -> io::Result<()> {
        match errno {
            Some(e) => {
                self.0.failures.set(self.0.failures.get() + 1);
                Err(io::Error::from_raw_os_error(e))
            }
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FaultFs<F> {
    inner: F,
    faults: Faults,
}

impl<F: SegmentFs> FaultFs<F> {
    pub fn new(inner: F) -> (Self, Faults) {
        let faults = Faults::default();
        (
            FaultFs {
                inner,
                faults: faults.clone(),
            },
            faults,
        )
    }
}

pub struct FaultFile<T> {
    inner: T,
    faults: Faults,
}

impl<F: SegmentFs> SegmentFs for FaultFs<F> {
    type File = FaultFile<F::File>;

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir).await
    }

    async fn create(&self, path: &Path) -> io::Result<Self::File> {
        self.faults.fail(self.faults.0.create_errno.get())?;
        Ok(FaultFile {
            inner: self.inner.create(path).await?,
            faults: self.faults.clone(),
        })
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.faults.fail(self.faults.0.sync_errno.get())?;
        self.inner.sync_dir(dir).await
    }
}

impl<T: SegmentFile> SegmentFile for FaultFile<T> {
    fn alignment(&self) -> u64 {
        self.inner.alignment()
    }

    async fn write_at(&self, data: &[u8], pos: u64) -> io::Result<usize> {
        let state = &self.faults.0;
        if let Some(errno) = state.write_errno.get() {
            let a = self.alignment() as usize;
            let half = data.len() / 2 / a * a;
            if state.torn_writes.get() && half > 0 {
                self.inner.write_at(&data[..half], pos).await?;
                state.writes.set(state.writes.get() + 1);
            }
            return self.faults.fail(Some(errno)).map(|()| 0);
        }
        let n = self.inner.write_at(data, pos).await?;
        state.writes.set(state.writes.get() + 1);
        Ok(n)
    }

    async fn sync(&self) -> io::Result<()> {
        self.faults.fail(self.faults.0.sync_errno.get())?;
        self.inner.sync().await?;
        self.faults.0.syncs.set(self.faults.0.syncs.get() + 1);
        Ok(())
    }

    async fn close(self) -> io::Result<()> {
        self.inner.close().await
    }
}
