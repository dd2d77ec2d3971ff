//! Head-chunk files (`<shard>/chunks_head/000001` …): where the head puts each full chunk so
//! that memory keeps only the open chunk per series, and reads it back through an mmap.
//! Prometheus's `ChunkDiskMapper`, byte-compatible with its files (layout in `record`).
//!
//! This module owns the files of one shard's `chunks_head` directory: numbering, the write
//! buffer, preallocation, mmaps, start-up repair and deletion of old files. It never
//! interprets chunk data (beyond the sample count every encoding keeps first) and never
//! decides which chunks are still needed: the head tells it. Everything it reads from disk
//! may be torn or corrupt; that is reported as `ChunksHeadError::Corrupt` or repaired at
//! open, never a panic, and no read goes past the bytes known to be written (an mmap read
//! past the end of a file would be a SIGBUS).
//!
//! Plain `std::fs` I/O on purpose: one record is written per ~120 samples of a series,
//! through a multi-MiB buffer, so writes are rare and large.

mod record;

pub use record::{FILE_HEADER_SIZE, FORMAT_VERSION, MAGIC};

use crate::chunkenc::Encoding;
use memmap2::Mmap;
use record::{HeaderCheck, Parsed, RawRecord};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// `(file_number << 32) | offset of the record start`. Unlike block chunk refs, the upper
/// half is the file's actual number, not an index.
pub type ChunkDiskRef = u64;

/// Prometheus's `MaxHeadChunkFileSize`.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 128 << 20;
/// Prometheus's default `DefaultWriteBufferSize`.
pub const DEFAULT_WRITE_BUFFER_SIZE: usize = 4 << 20;

#[inline]
pub fn chunk_disk_ref(file: u32, offset: u32) -> ChunkDiskRef {
    (u64::from(file) << 32) | u64::from(offset)
}

/// Splits a ref into (file number, offset).
#[inline]
pub fn unpack_chunk_disk_ref(r: ChunkDiskRef) -> (u32, u32) {
    ((r >> 32) as u32, r as u32)
}

/// One record as met during `iterate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappedChunk {
    pub series_ref: u64,
    pub chunk_ref: ChunkDiskRef,
    pub mint: i64,
    pub maxt: i64,
    pub num_samples: u16,
    pub encoding: Encoding,
    /// Bit 7 of the stored encoding byte: an out-of-order (wbl) chunk, which replay must not
    /// attach to the in-order chunks of its series.
    pub out_of_order: bool,
}

/// A record read through `chunk_record`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRecord<'a> {
    pub series_ref: u64,
    pub mint: i64,
    pub maxt: i64,
    pub encoding: Encoding,
    pub out_of_order: bool,
    pub data: &'a [u8],
}

#[derive(Debug, Error)]
pub enum ChunksHeadError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt head chunk file {path}: at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        file: u32,
        offset: u64,
        reason: String,
    },
    #[error(
        "head chunk files {before:06} and {after:06} in {dir} are not consecutive: a file is \
         missing; move the chunks_head directory aside to rebuild the head from the WAL"
    )]
    Gap {
        dir: PathBuf,
        before: u32,
        after: u32,
    },
    #[error(
        "{path} is not a head chunk file (magic {magic:#010x}, want 0x0130bc91); remove it \
         from the chunks_head directory"
    )]
    BadMagic { path: PathBuf, magic: u32 },
    #[error(
        "{path}: head chunk format version {version} is not supported (only 1); it was \
         written by a newer server"
    )]
    UnsupportedVersion { path: PathBuf, version: u8 },
    #[error("head chunk ref {chunk_ref:#x}: {reason}")]
    InvalidRef {
        chunk_ref: ChunkDiskRef,
        reason: &'static str,
    },
    #[error("a chunk of {len} bytes does not fit a head chunk file of {max_file_size} bytes")]
    ChunkTooLarge { len: usize, max_file_size: u64 },
    #[error("head chunk file numbers are exhausted in {0}")]
    FileNumbersExhausted(PathBuf),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ChunksHeadError + 'a {
    move |source| ChunksHeadError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What `open` found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Files kept, and the records in them.
    pub files: usize,
    pub records: usize,
    /// Files deleted at open, in order, with the reason.
    pub removed: Vec<RemovedFile>,
    /// The first corruption found, which caused that file and all later ones to be removed.
    /// Their chunks must be rebuilt from the WAL.
    pub corruption: Option<String>,
    /// Files whose preallocated or torn tail past the last record was cut off.
    pub truncated_tails: usize,
}

impl OpenReport {
    /// No chunk was lost: nothing was found corrupt (a removed empty or torn last file held
    /// no complete chunk). A head snapshot is only valid together with intact chunks.
    pub fn is_intact(&self) -> bool {
        self.corruption.is_none()
            && self
                .removed
                .iter()
                .all(|r| r.reason == RemovalReason::TornLastFile)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedFile {
    pub path: PathBuf,
    pub reason: RemovalReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalReason {
    /// The last file, shorter than its header or with a zero magic: created but never
    /// written before a crash.
    TornLastFile,
    /// The file where corruption was found.
    Corrupt,
    /// A file after a corrupt one: its chunks may depend on series state that the WAL
    /// replay will rebuild anyway, and keeping it would leave a gap in the numbering.
    AfterCorrupt,
}

/// Tunables; the defaults are Prometheus's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// At most 4 GiB - 1, since offsets are 32 bits of a ref.
    pub max_file_size: u64,
    pub write_buffer_size: usize,
    /// Reserve the whole file's blocks when cutting it (`posix_fallocate`), so a full disk
    /// fails the cut rather than a write in the middle of the file. When off (or when the
    /// filesystem cannot), the file is extended sparsely instead.
    pub preallocate: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            write_buffer_size: DEFAULT_WRITE_BUFFER_SIZE,
            preallocate: true,
        }
    }
}

/// One mapped file. Only `map[..readable]` is ever read.
struct MappedFile {
    map: Mmap,
    /// Bytes known to hold the header and whole records (for the file being written: what
    /// has been flushed).
    readable: usize,
    /// Largest maxt of its records, for truncation.
    max_t: i64,
}

/// The file being written.
struct CurrentFile {
    seq: u32,
    file: File,
    /// Bytes written to the file; the buffer continues from here.
    flushed: u64,
}

/// Writes full chunks to head-chunk files and reads them back by ref.
pub struct ChunkDiskMapper {
    dir: PathBuf,
    opts: Options,
    files: BTreeMap<u32, MappedFile>,
    /// `None` after open and after a cut: the next write starts a new file, so files from a
    /// previous run are never appended to.
    cur: Option<CurrentFile>,
    /// Bytes of the current file from `cur.flushed` on, not yet written.
    buf: Vec<u8>,
    next_seq: u32,
}

impl ChunkDiskMapper {
    /// Opens/creates `dir` with Prometheus's defaults; see `open_with`.
    pub fn open(dir: &Path) -> Result<(Self, OpenReport), ChunksHeadError> {
        Self::open_with(dir, Options::default())
    }

    /// Opens/creates `dir` and mmaps its files (read-only), repairing as Prometheus does: a
    /// last file shorter than its header or with a zero magic is deleted; a record with a
    /// bad length or CRC deletes its file and every later one. Repairs are reported, not
    /// failed on. A gap in the numbering, a foreign file or an unknown version is an error.
    pub fn open_with(dir: &Path, mut opts: Options) -> Result<(Self, OpenReport), ChunksHeadError> {
        // Offsets are the low 32 bits of a ref.
        opts.max_file_size = opts.max_file_size.min(u64::from(u32::MAX));
        fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        let mut report = OpenReport::default();
        let mut seqs = list_files(dir)?;

        if let Some(&last) = seqs.last() {
            let path = file_path(dir, last);
            let mut head = [0u8; FILE_HEADER_SIZE];
            let f = File::open(&path).map_err(io_err("open", &path))?;
            let n = read_prefix(&f, &mut head).map_err(io_err("read", &path))?;
            if matches!(
                record::check_file_header(&head[..n]),
                HeaderCheck::TooShort | HeaderCheck::ZeroMagic
            ) {
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
                report.removed.push(RemovedFile {
                    path,
                    reason: RemovalReason::TornLastFile,
                });
                seqs.pop();
            }
        }
        for w in seqs.windows(2) {
            if w[1] != w[0] + 1 {
                return Err(ChunksHeadError::Gap {
                    dir: dir.to_path_buf(),
                    before: w[0],
                    after: w[1],
                });
            }
        }

        let mut files = BTreeMap::new();
        let mut corrupt_from = None;
        for &seq in &seqs {
            let path = file_path(dir, seq);
            match open_and_scan(&path, seq)? {
                Ok((file, records, tail_cut)) => {
                    report.records += records;
                    report.truncated_tails += usize::from(tail_cut);
                    files.insert(seq, file);
                }
                Err(e) => {
                    report.corruption = Some(e.to_string());
                    corrupt_from = Some(seq);
                    break;
                }
            }
        }
        if let Some(first) = corrupt_from {
            for &seq in seqs.iter().filter(|&&s| s >= first) {
                let path = file_path(dir, seq);
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
                report.removed.push(RemovedFile {
                    path,
                    reason: if seq == first {
                        RemovalReason::Corrupt
                    } else {
                        RemovalReason::AfterCorrupt
                    },
                });
            }
        }
        if !report.removed.is_empty() || report.truncated_tails > 0 {
            sync_dir(dir)?;
        }
        report.files = files.len();
        let next_seq = match files.keys().next_back() {
            Some(&last) => last
                .checked_add(1)
                .ok_or_else(|| ChunksHeadError::FileNumbersExhausted(dir.to_path_buf()))?,
            None => 1,
        };
        Ok((
            ChunkDiskMapper {
                dir: dir.to_path_buf(),
                opts,
                files,
                cur: None,
                buf: Vec::new(),
                next_seq,
            },
            report,
        ))
    }

    /// Every record of every file in order (for replay at start-up), including records
    /// still in the write buffer.
    pub fn iterate(&self, mut f: impl FnMut(MappedChunk)) -> Result<(), ChunksHeadError> {
        for (&seq, file) in &self.files {
            // Verified at open or written by us: skip the CRC, keep the bounds checks.
            self.walk(seq, &file.map[..file.readable], 0, false, &mut f)?;
            if let Some(cur) = self.cur.as_ref().filter(|c| c.seq == seq) {
                self.walk(seq, &self.buf, cur.flushed, false, &mut f)?;
            }
        }
        Ok(())
    }

    /// Visits the records of `bytes`, which sit at file offset `base`.
    fn walk(
        &self,
        seq: u32,
        bytes: &[u8],
        base: u64,
        verify_crc: bool,
        f: &mut impl FnMut(MappedChunk),
    ) -> Result<(), ChunksHeadError> {
        let mut pos = (FILE_HEADER_SIZE as u64).saturating_sub(base) as usize;
        while pos < bytes.len() {
            let offset = base + pos as u64;
            let rec = match record::parse_record(&bytes[pos..], verify_crc) {
                Ok(Parsed::Record(r)) => r,
                Ok(Parsed::End) => break,
                Err(e) => return Err(self.corrupt(seq, offset, e.to_string())),
            };
            let (encoding, out_of_order) = Encoding::from_head_byte(rec.encoding_byte)
                .map_err(|e| self.corrupt(seq, offset, e.to_string()))?;
            f(MappedChunk {
                series_ref: rec.series_ref,
                chunk_ref: chunk_disk_ref(seq, offset as u32),
                mint: rec.mint,
                maxt: rec.maxt,
                num_samples: rec.num_samples(),
                encoding,
                out_of_order,
            });
            pos += rec.len;
        }
        Ok(())
    }

    fn corrupt(&self, seq: u32, offset: u64, reason: String) -> ChunksHeadError {
        ChunksHeadError::Corrupt {
            path: file_path(&self.dir, seq),
            file: seq,
            offset,
            reason,
        }
    }

    /// Appends a full chunk; returns its ref. Buffered: chunks still in the buffer are
    /// readable through `chunk()`, and reach the file on `flush`, `sync`, a full buffer, a
    /// cut or `close`.
    pub fn write_chunk(
        &mut self,
        series_ref: u64,
        mint: i64,
        maxt: i64,
        enc: Encoding,
        data: &[u8],
    ) -> Result<ChunkDiskRef, ChunksHeadError> {
        self.write_record(series_ref, mint, maxt, enc.head_byte(false), data)
    }

    /// `write_chunk` for an out-of-order chunk (encoding bit 7 set).
    pub fn write_ooo_chunk(
        &mut self,
        series_ref: u64,
        mint: i64,
        maxt: i64,
        enc: Encoding,
        data: &[u8],
    ) -> Result<ChunkDiskRef, ChunksHeadError> {
        self.write_record(series_ref, mint, maxt, enc.head_byte(true), data)
    }

    fn write_record(
        &mut self,
        series_ref: u64,
        mint: i64,
        maxt: i64,
        encoding_byte: u8,
        data: &[u8],
    ) -> Result<ChunkDiskRef, ChunksHeadError> {
        let len = record::record_len(data.len());
        let max = self.opts.max_file_size;
        if len as u64 > max.saturating_sub(FILE_HEADER_SIZE as u64) {
            return Err(ChunksHeadError::ChunkTooLarge {
                len: data.len(),
                max_file_size: max,
            });
        }
        let needs_new_file = match &self.cur {
            None => true,
            Some(c) => c.flushed + self.buf.len() as u64 + len as u64 > max,
        };
        if needs_new_file {
            self.finish_current_file()?;
            self.start_file()?;
        }
        if !self.buf.is_empty() && self.buf.len() + len > self.opts.write_buffer_size {
            self.flush()?;
        }
        let Some(cur) = &self.cur else {
            unreachable!("start_file sets the current file");
        };
        let offset = cur.flushed + self.buf.len() as u64;
        let seq = cur.seq;
        record::encode_record(&mut self.buf, series_ref, mint, maxt, encoding_byte, data);
        if let Some(f) = self.files.get_mut(&seq) {
            f.max_t = f.max_t.max(maxt);
        }
        // The size check above keeps offsets below max_file_size, far below 4 GiB.
        Ok(chunk_disk_ref(seq, offset as u32))
    }

    /// The chunk bytes of a ref (from the mmap, or from the write buffer).
    pub fn chunk(&self, r: ChunkDiskRef) -> Result<&[u8], ChunksHeadError> {
        self.chunk_record(r).map(|c| c.data)
    }

    /// The whole record of a ref, CRC-checked as Prometheus does on every read.
    pub fn chunk_record(&self, r: ChunkDiskRef) -> Result<ChunkRecord<'_>, ChunksHeadError> {
        let (seq, offset) = unpack_chunk_disk_ref(r);
        let offset = u64::from(offset);
        let invalid = |reason| ChunksHeadError::InvalidRef {
            chunk_ref: r,
            reason,
        };
        let file = self
            .files
            .get(&seq)
            .ok_or_else(|| invalid("no such head chunk file"))?;
        if offset < FILE_HEADER_SIZE as u64 {
            return Err(invalid("offset inside the file header"));
        }
        let bytes = match self.cur.as_ref().filter(|c| c.seq == seq) {
            Some(cur) if offset >= cur.flushed => self
                .buf
                .get((offset - cur.flushed) as usize..)
                .filter(|b| !b.is_empty()),
            _ => file
                .map
                .get(offset as usize..file.readable)
                .filter(|b| !b.is_empty()),
        }
        .ok_or_else(|| invalid("offset beyond the written data"))?;
        let rec: RawRecord<'_> = match record::parse_record(bytes, true) {
            Ok(Parsed::Record(rec)) => rec,
            Ok(Parsed::End) => return Err(invalid("offset is in the unwritten zero tail")),
            Err(e) => return Err(self.corrupt(seq, offset, e.to_string())),
        };
        let (encoding, out_of_order) = Encoding::from_head_byte(rec.encoding_byte)
            .map_err(|e| self.corrupt(seq, offset, e.to_string()))?;
        Ok(ChunkRecord {
            series_ref: rec.series_ref,
            mint: rec.mint,
            maxt: rec.maxt,
            encoding,
            out_of_order,
            data: rec.data,
        })
    }

    /// Write buffer -> file. The data is then visible through the file's mapping (same page
    /// cache), but not yet durable.
    pub fn flush(&mut self) -> Result<(), ChunksHeadError> {
        let Some(cur) = &mut self.cur else {
            return Ok(());
        };
        if self.buf.is_empty() {
            return Ok(());
        }
        // Positional and idempotent: after a failure the buffer is kept and can be retried.
        cur.file
            .write_all_at(&self.buf, cur.flushed)
            .map_err(io_err("write", &file_path(&self.dir, cur.seq)))?;
        cur.flushed += self.buf.len() as u64;
        if let Some(f) = self.files.get_mut(&cur.seq) {
            f.readable = cur.flushed as usize;
        }
        self.buf.clear();
        Ok(())
    }

    /// Flush, then fsync the current file.
    pub fn sync(&mut self) -> Result<(), ChunksHeadError> {
        self.flush()?;
        if let Some(cur) = &self.cur {
            cur.file
                .sync_data()
                .map_err(io_err("fsync", &file_path(&self.dir, cur.seq)))?;
        }
        Ok(())
    }

    /// Finishes the current file; the next chunk starts a new one. (Lazy like Prometheus's
    /// `CutNewFile`, so a cut with nothing written after it leaves no empty file behind.)
    pub fn cut_file(&mut self) -> Result<(), ChunksHeadError> {
        self.finish_current_file()
    }

    /// Flush, fsync, and truncate the current file to its written size.
    pub fn close(mut self) -> Result<(), ChunksHeadError> {
        self.finish_current_file()
    }

    /// Deletes the oldest files whose chunks all end before `mint` (never the file being
    /// written, and only a prefix, so the numbering stays contiguous), then cuts the current
    /// file if it holds records, as Prometheus does on head truncation. Returns the deleted
    /// file numbers.
    pub fn truncate(&mut self, mint: i64) -> Result<Vec<u32>, ChunksHeadError> {
        self.truncate_detached(mint)?.complete()
    }

    /// `truncate` without its waits for the disk: the old files leave the mapper and the
    /// current file is flushed and cut, but unmapping and removing the old files and
    /// trimming and fsyncing the cut one are left to `FileRelease::complete`, which may run
    /// on another thread. Nothing reads the released files any more, and new chunks go to
    /// a new file meanwhile.
    pub fn truncate_detached(&mut self, mint: i64) -> Result<FileRelease, ChunksHeadError> {
        let cur_seq = self.cur.as_ref().map(|c| c.seq);
        let doomed: Vec<u32> = self
            .files
            .iter()
            .take_while(|&(&seq, f)| Some(seq) != cur_seq && f.max_t < mint)
            .map(|(&seq, _)| seq)
            .collect();
        let mut release = FileRelease {
            dir: self.dir.clone(),
            deleted: Vec::with_capacity(doomed.len()),
            finished: None,
        };
        for seq in doomed {
            if let Some(f) = self.files.remove(&seq) {
                release.deleted.push((seq, f.map));
            }
        }
        if self
            .cur
            .as_ref()
            .is_some_and(|c| c.flushed + self.buf.len() as u64 > FILE_HEADER_SIZE as u64)
        {
            self.flush()?;
            release.finished = self.cur.take();
        }
        Ok(release)
    }

    /// File numbers present, oldest first.
    pub fn file_numbers(&self) -> impl Iterator<Item = u32> + '_ {
        self.files.keys().copied()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn finish_current_file(&mut self) -> Result<(), ChunksHeadError> {
        if self.cur.is_none() {
            return Ok(());
        }
        self.flush()?;
        match self.cur.take() {
            Some(cur) => finish_file(&self.dir, cur),
            None => Ok(()),
        }
    }

    fn start_file(&mut self) -> Result<(), ChunksHeadError> {
        let seq = self.next_seq;
        let path = file_path(&self.dir, seq);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        let sized = size_file(&file, self.opts.max_file_size, self.opts.preallocate)
            .map_err(io_err("preallocate", &path))
            .and_then(|()| sync_dir(&self.dir))
            .and_then(|()| {
                // SAFETY: the file belongs to this shard's chunks_head directory, which only
                // this mapper writes; it was just sized to the mapping length, and only bytes
                // below `readable` (already written) are ever read.
                unsafe { Mmap::map(&file) }.map_err(io_err("mmap", &path))
            });
        let map = match sized {
            Ok(m) => m,
            Err(e) => {
                // No half-made file may stay behind to be taken for a torn one... or a gap.
                let _ = fs::remove_file(&path);
                return Err(e);
            }
        };
        self.next_seq = seq
            .checked_add(1)
            .ok_or_else(|| ChunksHeadError::FileNumbersExhausted(self.dir.clone()))?;
        self.files.insert(
            seq,
            MappedFile {
                map,
                readable: 0,
                max_t: i64::MIN,
            },
        );
        // The header goes out with the first flush; until then the file reads as all zeros,
        // which open() treats as a torn last file.
        self.buf.clear();
        self.buf.reserve(self.opts.write_buffer_size.min(1 << 20));
        self.buf.extend_from_slice(&record::file_header());
        self.cur = Some(CurrentFile {
            seq,
            file,
            flushed: 0,
        });
        Ok(())
    }
}

impl Drop for ChunkDiskMapper {
    /// Best effort, so a dropped mapper does not silently lose buffered chunks; `close`
    /// is the way to finish cleanly and see errors.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl std::fmt::Debug for ChunkDiskMapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkDiskMapper")
            .field("dir", &self.dir)
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .field("current", &self.cur.as_ref().map(|c| c.seq))
            .field("buffered", &self.buf.len())
            .finish()
    }
}

/// What `ChunkDiskMapper::truncate_detached` leaves to do on disk. `Send`, so that it can
/// run where waiting for the disk stalls nobody. Dropped without `complete`, the old files
/// stay on disk until the next truncation or start-up deletes them, and the cut file keeps
/// its preallocated tail, which start-up trims.
#[must_use]
pub struct FileRelease {
    dir: PathBuf,
    /// Files to delete, with their mappings, unmapped just before.
    deleted: Vec<(u32, Mmap)>,
    /// The file just cut, all its records flushed.
    finished: Option<CurrentFile>,
}

impl FileRelease {
    /// Unmaps and removes the old files (then fsyncs the directory), and trims the cut file
    /// to its records and fsyncs it. Returns the deleted file numbers.
    pub fn complete(self) -> Result<Vec<u32>, ChunksHeadError> {
        let mut deleted = Vec::with_capacity(self.deleted.len());
        for (seq, map) in self.deleted {
            // Unmapped first, so that the space is freed as the file goes.
            drop(map);
            let path = file_path(&self.dir, seq);
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
            deleted.push(seq);
        }
        if !deleted.is_empty() {
            sync_dir(&self.dir)?;
        }
        if let Some(cur) = self.finished {
            finish_file(&self.dir, cur)?;
        }
        Ok(deleted)
    }
}

/// Trims a finished file's preallocated tail and fsyncs it. Its mapping stays valid for
/// the bytes below `flushed`, which are all that is ever read from it.
fn finish_file(dir: &Path, cur: CurrentFile) -> Result<(), ChunksHeadError> {
    let path = file_path(dir, cur.seq);
    cur.file
        .set_len(cur.flushed)
        .map_err(io_err("truncate", &path))?;
    cur.file.sync_all().map_err(io_err("fsync", &path))
}

fn file_path(dir: &Path, seq: u32) -> PathBuf {
    dir.join(format!("{seq:06}"))
}

/// File numbers in `dir`, ascending. Like Prometheus, any all-digit name is a head-chunk
/// file; other names are ignored.
fn list_files(dir: &Path) -> Result<Vec<u32>, ChunksHeadError> {
    let mut seqs = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(seq) = name.parse::<u32>() else {
            continue;
        };
        if entry
            .file_type()
            .map_err(io_err("stat", &entry.path()))?
            .is_file()
        {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Maps one existing file and validates every record. The outer error is fatal; the inner
/// one is corruption to repair by deletion. On success also cuts off a tail past the last
/// record (a preallocated file left by a crash) and says whether it did.
#[allow(clippy::type_complexity)]
fn open_and_scan(
    path: &Path,
    seq: u32,
) -> Result<Result<(MappedFile, usize, bool), ChunksHeadError>, ChunksHeadError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("open", path))?;
    let len = file.metadata().map_err(io_err("stat", path))?.len();
    let corrupt = |offset: u64, reason: String| ChunksHeadError::Corrupt {
        path: path.to_path_buf(),
        file: seq,
        offset,
        reason,
    };
    if len < FILE_HEADER_SIZE as u64 {
        return Ok(Err(corrupt(
            0,
            format!("{len} bytes is shorter than the file header"),
        )));
    }
    // SAFETY: as in `start_file`; the file is not written while mapped read-only here, and
    // reads stay below its length at open.
    let map = unsafe { Mmap::map(&file) }.map_err(io_err("mmap", path))?;
    match record::check_file_header(&map) {
        HeaderCheck::Ok => {}
        HeaderCheck::TooShort | HeaderCheck::ZeroMagic => {
            return Ok(Err(corrupt(0, "file header is zeroed".into())))
        }
        HeaderCheck::BadMagic(magic) => {
            return Err(ChunksHeadError::BadMagic {
                path: path.to_path_buf(),
                magic,
            })
        }
        HeaderCheck::BadVersion(version) => {
            return Err(ChunksHeadError::UnsupportedVersion {
                path: path.to_path_buf(),
                version,
            })
        }
    }
    let mut pos = FILE_HEADER_SIZE;
    let mut records = 0;
    let mut max_t = i64::MIN;
    while pos < map.len() {
        match record::parse_record(&map[pos..], true) {
            Ok(Parsed::Record(r)) => {
                if let Err(e) = Encoding::from_head_byte(r.encoding_byte) {
                    return Ok(Err(corrupt(pos as u64, e.to_string())));
                }
                records += 1;
                max_t = max_t.max(r.maxt);
                pos += r.len;
            }
            Ok(Parsed::End) => break,
            Err(e) => return Ok(Err(corrupt(pos as u64, e.to_string()))),
        }
    }
    let tail_cut = (pos as u64) < len;
    if tail_cut {
        // Reads stay below `pos`, so the mapping beyond the new end is never touched.
        file.set_len(pos as u64).map_err(io_err("truncate", path))?;
        file.sync_all().map_err(io_err("fsync", path))?;
    }
    Ok(Ok((
        MappedFile {
            map,
            readable: pos,
            max_t,
        },
        records,
        tail_cut,
    )))
}

/// Reads up to `buf.len()` bytes from the start of `f`; returns how many.
fn read_prefix(f: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Gives a new file its full length: allocated blocks if asked and supported, else sparse.
fn size_file(file: &File, len: u64, preallocate: bool) -> io::Result<()> {
    if preallocate {
        let len_off = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file size too large"))?;
        // SAFETY: plain syscall on an fd we own; it returns an errno instead of setting errno.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len_off) };
        match rc {
            0 => return Ok(()),
            // Filesystems without fallocate: fall back to a sparse file.
            libc::EOPNOTSUPP | libc::EINVAL => {}
            errno => return Err(io::Error::from_raw_os_error(errno)),
        }
    }
    file.set_len(len)
}

fn sync_dir(dir: &Path) -> Result<(), ChunksHeadError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

#[cfg(test)]
mod tests;
