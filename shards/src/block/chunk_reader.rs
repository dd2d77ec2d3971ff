//! Reads chunks out of a block's segment files (layout in `chunk_writer`) through mmaps.
//!
//! Every file is checked at open (magic, version, at least a header); every chunk read
//! checks its ref against the files and their sizes, its length against what is left of
//! the file, and its CRC32C. A bad ref or damaged bytes are `Corrupt`, naming the file;
//! nothing is ever read past a mapping.

use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::chunkenc::Encoding;
use crate::encoding::{crc32c, Decbuf};

use super::chunk_writer::{CHUNKS_FORMAT_V1, MAGIC_CHUNKS, SEGMENT_HEADER_SIZE};
use super::BlockError;

struct Segment {
    path: PathBuf,
    map: Mmap,
}

pub struct ChunkReader {
    segments: Vec<Segment>,
    size: u64,
}

impl ChunkReader {
    /// Maps every segment file of `dir` (the block's `chunks` directory).
    pub fn open(dir: &Path) -> Result<ChunkReader, BlockError> {
        let mut files: Vec<(u64, PathBuf)> = Vec::new();
        for e in std::fs::read_dir(dir).map_err(BlockError::io("list", dir))? {
            let e = e.map_err(BlockError::io("list", dir))?;
            let name = e.file_name();
            let Some(n) = name
                .to_str()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            files.push((n, e.path()));
        }
        files.sort();
        let mut segments = Vec::with_capacity(files.len());
        let mut size = 0;
        for (_, path) in files {
            let corrupt = |reason: String| BlockError::Corrupt {
                path: path.clone(),
                reason,
            };
            let f = std::fs::File::open(&path).map_err(BlockError::io("open", &path))?;
            let len = f.metadata().map_err(BlockError::io("stat", &path))?.len();
            if len < SEGMENT_HEADER_SIZE {
                return Err(corrupt(format!("{len} bytes, shorter than a header")));
            }
            // SAFETY: block files are never modified once the block is in place; reads are
            // bounds-checked against this mapping's length.
            let map = unsafe { Mmap::map(&f) }.map_err(BlockError::io("mmap", &path))?;
            let magic = u32::from_be_bytes([map[0], map[1], map[2], map[3]]);
            if magic != MAGIC_CHUNKS {
                return Err(corrupt(format!("bad magic {magic:#010x}")));
            }
            if map[4] != CHUNKS_FORMAT_V1 {
                return Err(corrupt(format!(
                    "unsupported chunk format version {}",
                    map[4]
                )));
            }
            size += len;
            segments.push(Segment { path, map });
        }
        Ok(ChunkReader { segments, size })
    }

    /// Bytes of all segment files.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The encoding and bytes of the chunk at `chunk_ref`, CRC checked.
    pub fn chunk(&self, chunk_ref: u64) -> Result<(Encoding, &[u8]), BlockError> {
        let (seq, off) = (
            (chunk_ref >> 32) as usize,
            (chunk_ref & 0xffff_ffff) as usize,
        );
        let Some(seg) = self.segments.get(seq) else {
            return Err(BlockError::Corrupt {
                path: self
                    .segments
                    .first()
                    .map_or_else(PathBuf::new, |s| s.path.clone()),
                reason: format!(
                    "chunk ref {chunk_ref:#x}: segment {seq} of {} files",
                    self.segments.len()
                ),
            });
        };
        let corrupt = |reason: String| BlockError::Corrupt {
            path: seg.path.clone(),
            reason: format!("chunk at offset {off}: {reason}"),
        };
        if off < SEGMENT_HEADER_SIZE as usize || off >= seg.map.len() {
            return Err(corrupt(format!(
                "outside the file of {} bytes",
                seg.map.len()
            )));
        }
        let mut d = Decbuf::new(&seg.map[off..]);
        let len = d.uvarint().map_err(|e| corrupt(e.to_string()))?;
        let len = usize::try_from(len).map_err(|_| corrupt("length overflows".into()))?;
        let with_enc = d
            .bytes(
                len.checked_add(1)
                    .ok_or_else(|| corrupt("length overflows".into()))?,
            )
            .map_err(|_| corrupt(format!("{len} bytes past the end of the file")))?;
        let crc = d
            .bytes(4)
            .map_err(|_| corrupt("checksum past the end of the file".into()))?;
        if crc32c(with_enc).to_be_bytes() != crc {
            return Err(corrupt("checksum mismatch".into()));
        }
        let enc = Encoding::from_u8(with_enc[0]).map_err(|e| corrupt(e.to_string()))?;
        Ok((enc, &with_enc[1..]))
    }
}
