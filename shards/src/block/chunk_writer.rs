//! A block's chunk segment files, `<block>/chunks/000001` …, written series by series.
//!
//! Layout of a file (spec §4):
//!
//! ```text
//! 0   magic u32 BE 0x85BD40DD
//! 4   version u8 = 1
//! 5   3 zero bytes
//! 8   records, back to back:
//!       len uvarint (of data only) | encoding u8 | data | CRC32C(encoding ‖ data) u32 BE
//! ```
//!
//! A chunk's ref is `(file index, 0-based) << 32 | offset of its len field`. Files hold at
//! most 512 MiB; like Prometheus, when one series' chunks do not fit in what is left of the
//! current file a new file is started, so a series is split across files only when its
//! chunks alone exceed the maximum. Every file and the directory are fsynced by `close`,
//! not as each file is finished: series are written on a shard's executor, which must not
//! wait for the disk, and the block is only renamed into place after `close`. This file
//! never decides which chunks a block holds.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::chunkenc::Encoding;
use crate::encoding::{crc32c, put_uvarint};

use super::{sync_dir, BlockError};

pub const MAGIC_CHUNKS: u32 = 0x85BD_40DD;
pub const CHUNKS_FORMAT_V1: u8 = 1;
pub const SEGMENT_HEADER_SIZE: u64 = 8;
/// Prometheus's `DefaultChunkSegmentSize`.
pub const DEFAULT_SEGMENT_SIZE: u64 = 512 << 20;
/// Largest bytes a record adds around its data: a 5-byte length, the encoding, the CRC.
const MAX_RECORD_OVERHEAD: u64 = 5 + 1 + 4;

/// `chunks/000001` for index 0.
pub fn segment_file_name(index: u32) -> String {
    format!("{:06}", u64::from(index) + 1)
}

/// A block chunk ref from a 0-based file index and an offset.
#[inline]
pub fn block_chunk_ref(index: u32, offset: u32) -> u64 {
    (u64::from(index) << 32) | u64::from(offset)
}

/// One chunk to write; its ref is returned by `write_series`.
#[derive(Debug, Clone, Copy)]
pub struct ChunkToWrite<'a> {
    pub encoding: Encoding,
    pub data: &'a [u8],
}

pub struct ChunkWriter {
    dir: PathBuf,
    segment_size: u64,
    /// Index (0-based) of the file being written and the file itself.
    cur: Option<(u32, BufWriter<File>)>,
    /// Files finished, written but not yet fsynced.
    unsynced: Vec<(u32, File)>,
    next_index: u32,
    /// Bytes in the current file.
    n: u64,
    record: Vec<u8>,
    /// Files written, for size accounting.
    pub bytes_written: u64,
}

impl ChunkWriter {
    /// Creates `dir` (the block's `chunks` directory).
    pub fn create(dir: &Path, segment_size: u64) -> Result<Self, BlockError> {
        std::fs::create_dir_all(dir).map_err(BlockError::io("mkdir", dir))?;
        Ok(ChunkWriter {
            dir: dir.to_path_buf(),
            segment_size: segment_size.clamp(SEGMENT_HEADER_SIZE + 1, u64::from(u32::MAX)),
            cur: None,
            unsynced: Vec::new(),
            next_index: 0,
            n: 0,
            record: Vec::new(),
            bytes_written: 0,
        })
    }

    /// Writes the chunks of one series, in order; `refs` receives their refs.
    pub fn write_series(
        &mut self,
        chunks: &[ChunkToWrite<'_>],
        refs: &mut Vec<u64>,
    ) -> Result<(), BlockError> {
        refs.clear();
        let max_len: u64 = 5 + chunks
            .iter()
            .map(|c| c.data.len() as u64 + MAX_RECORD_OVERHEAD)
            .sum::<u64>();
        let must_cut = match self.cur {
            None => true,
            Some(_) => {
                self.n > self.segment_size
                    || (self.n + max_len > self.segment_size && max_len <= self.segment_size)
            }
        };
        if must_cut {
            self.cut()?;
        }
        for c in chunks {
            // A single series larger than a file: each chunk still goes where it fits.
            let rec_len = c.data.len() as u64 + MAX_RECORD_OVERHEAD;
            if self.n + rec_len > self.segment_size && self.n > SEGMENT_HEADER_SIZE {
                self.cut()?;
            }
            if self.n + rec_len > u64::from(u32::MAX) {
                return Err(BlockError::InvalidInput(format!(
                    "a chunk of {} bytes does not fit a chunk segment file",
                    c.data.len()
                )));
            }
            let Some((index, f)) = self.cur.as_mut() else {
                return Err(BlockError::InvalidInput("no chunk file open".into()));
            };
            refs.push(block_chunk_ref(*index, self.n as u32));
            self.record.clear();
            put_uvarint(&mut self.record, c.data.len() as u64);
            let crc_start = self.record.len();
            self.record.push(c.encoding.as_u8());
            self.record.extend_from_slice(c.data);
            let crc = crc32c(&self.record[crc_start..]);
            self.record.extend_from_slice(&crc.to_be_bytes());
            let path = self.dir.join(segment_file_name(*index));
            f.write_all(&self.record)
                .map_err(BlockError::io("write", &path))?;
            self.n += self.record.len() as u64;
            self.bytes_written += self.record.len() as u64;
        }
        Ok(())
    }

    fn cut(&mut self) -> Result<(), BlockError> {
        self.finish_current()?;
        let index = self.next_index;
        self.next_index += 1;
        let path = self.dir.join(segment_file_name(index));
        let f = File::create(&path).map_err(BlockError::io("create", &path))?;
        let mut f = BufWriter::with_capacity(1 << 20, f);
        let mut header = [0u8; SEGMENT_HEADER_SIZE as usize];
        header[..4].copy_from_slice(&MAGIC_CHUNKS.to_be_bytes());
        header[4] = CHUNKS_FORMAT_V1;
        f.write_all(&header)
            .map_err(BlockError::io("write", &path))?;
        self.n = SEGMENT_HEADER_SIZE;
        self.bytes_written += SEGMENT_HEADER_SIZE;
        self.cur = Some((index, f));
        Ok(())
    }

    /// Writes out the current file's buffer; the file waits for `close`'s fsync.
    fn finish_current(&mut self) -> Result<(), BlockError> {
        if let Some((index, f)) = self.cur.take() {
            let path = self.dir.join(segment_file_name(index));
            let f = f
                .into_inner()
                .map_err(|e| BlockError::io("write", &path)(e.into_error()))?;
            self.unsynced.push((index, f));
        }
        Ok(())
    }

    /// Flushes the last file, then fsyncs every file and the directory.
    pub fn close(mut self) -> Result<(), BlockError> {
        self.finish_current()?;
        for (index, f) in &self.unsynced {
            let path = self.dir.join(segment_file_name(*index));
            f.sync_all().map_err(BlockError::io("fsync", &path))?;
        }
        sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_segment() {
        // The chunk of spec §2.6 / §4.3: (1000, 1) (16000, 1) (31000, 2) (46500, 2).
        let data = [
            0x00, 0x04, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x98, 0x75, 0x30, 0x97, 0xff,
            0xe0, 0x7d, 0x00,
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::create(dir.path(), DEFAULT_SEGMENT_SIZE).unwrap();
        let mut refs = Vec::new();
        let c = ChunkToWrite {
            encoding: Encoding::Xor,
            data: &data,
        };
        w.write_series(&[c], &mut refs).unwrap();
        w.close().unwrap();
        assert_eq!(refs, [8]);
        let got = std::fs::read(dir.path().join("000001")).unwrap();
        let mut want = vec![0x85, 0xbd, 0x40, 0xdd, 0x01, 0, 0, 0, 0x14, 0x01];
        want.extend_from_slice(&data);
        want.extend_from_slice(&[0xa9, 0x53, 0xa7, 0x3c]);
        assert_eq!(got, want);
    }

    #[test]
    fn series_do_not_straddle_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::create(dir.path(), 100).unwrap();
        let data = [7u8; 30];
        let c = ChunkToWrite {
            encoding: Encoding::Xor,
            data: &data,
        };
        let mut refs = Vec::new();
        w.write_series(&[c, c], &mut refs).unwrap();
        assert_eq!(refs, [8, 8 + 36]);
        // 80 bytes used; the next series' 36 do not fit: a new file.
        w.write_series(&[c], &mut refs).unwrap();
        assert_eq!(refs, [block_chunk_ref(1, 8)]);
        // A series larger than a file starts where the last one ended and is split where
        // it must be.
        w.write_series(&[c, c, c], &mut refs).unwrap();
        assert_eq!(
            refs,
            [
                block_chunk_ref(1, 44),
                block_chunk_ref(2, 8),
                block_chunk_ref(2, 44)
            ]
        );
        w.close().unwrap();
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 3);
    }
}
