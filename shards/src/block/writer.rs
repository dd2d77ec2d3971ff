//! Writing one block directory, as Prometheus's `LeveledCompactor.write` does: everything
//! goes into `<ulid>.tmp-for-creation/` (chunk files, index, meta.json, an empty
//! tombstones file), that directory is fsynced, then renamed to `<ulid>/` and the parent
//! fsynced. A crash at any point leaves either no block or a whole one; a leftover
//! `.tmp-for-creation` directory is garbage that start-up removes.
//!
//! This file owns the write procedure and the statistics; the formats belong to
//! `chunk_writer`, `index::writer`, `meta` and `tombstones`. It never decides which samples
//! go into a block (compaction does).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::chunkenc::{Encoding, XorChunk};
use crate::index::writer::{ChunkMeta, IndexWriter};
use crate::labels::Labels;
use crate::tombstones::Tombstones;

use super::chunk_writer::{ChunkToWrite, ChunkWriter, DEFAULT_SEGMENT_SIZE};
use super::meta::{BlockMeta, BlockStats, Compaction, META_VERSION};
use super::ulid::Ulid;
use super::{sync_dir, BlockError, TMP_FOR_CREATION_SUFFIX};

/// One chunk of a series going into a block.
#[derive(Debug, Clone, Copy)]
pub struct BlockChunk<'a> {
    /// First and last sample timestamps (closed).
    pub min_time: i64,
    pub max_time: i64,
    pub encoding: Encoding,
    /// The chunk's bytes, which for every encoding start with the u16 BE sample count.
    pub data: &'a [u8],
}

impl<'a> BlockChunk<'a> {
    /// An XOR chunk as it stands, to be written into a block; `None` when it holds no
    /// sample.
    pub fn of_xor(c: &'a XorChunk) -> Option<BlockChunk<'a>> {
        Some(BlockChunk {
            min_time: c.first_time()?,
            max_time: c.last_time()?,
            encoding: Encoding::Xor,
            data: c.bytes(),
        })
    }

    pub fn num_samples(&self) -> u64 {
        match self.data {
            [a, b, ..] => u64::from(u16::from_be_bytes([*a, *b])),
            _ => 0,
        }
    }
}

/// What the new block is: its time range and lineage.
#[derive(Debug, Clone)]
pub struct NewBlock {
    pub ulid: Ulid,
    /// Inclusive.
    pub min_time: i64,
    /// Exclusive.
    pub max_time: i64,
    pub compaction: Compaction,
}

impl NewBlock {
    /// A level-1 block cut from the head: its own only source.
    pub fn level1(min_time: i64, max_time: i64) -> NewBlock {
        let ulid = Ulid::new();
        NewBlock {
            ulid,
            min_time,
            max_time,
            compaction: Compaction {
                level: 1,
                sources: vec![ulid.to_string()],
                ..Default::default()
            },
        }
    }
}

pub struct BlockWriter {
    parent: PathBuf,
    tmp: PathBuf,
    meta: BlockMeta,
    chunks: Option<ChunkWriter>,
    index: Option<IndexWriter>,
    refs: Vec<u64>,
    metas: Vec<ChunkMeta>,
    finished: bool,
}

impl BlockWriter {
    /// Starts a block in `parent` (a shard directory). `symbols` are every label name and
    /// value of the series to come, sorted and unique.
    pub fn create<'s>(
        parent: &Path,
        block: NewBlock,
        symbols: impl IntoIterator<Item = &'s str>,
    ) -> Result<Self, BlockError> {
        Self::create_with_segment_size(parent, block, symbols, DEFAULT_SEGMENT_SIZE)
    }

    pub fn create_with_segment_size<'s>(
        parent: &Path,
        block: NewBlock,
        symbols: impl IntoIterator<Item = &'s str>,
        segment_size: u64,
    ) -> Result<Self, BlockError> {
        if block.max_time <= block.min_time {
            return Err(BlockError::InvalidInput(format!(
                "block range [{}, {}) is empty",
                block.min_time, block.max_time
            )));
        }
        let name = block.ulid.to_string();
        let tmp = parent.join(format!("{name}{TMP_FOR_CREATION_SUFFIX}"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(BlockError::io("remove", &tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(BlockError::io("mkdir", &tmp))?;
        let mut w = BlockWriter {
            parent: parent.to_path_buf(),
            tmp: tmp.clone(),
            meta: BlockMeta {
                ulid: name,
                min_time: block.min_time,
                max_time: block.max_time,
                stats: BlockStats::default(),
                compaction: block.compaction,
                version: META_VERSION,
            },
            chunks: None,
            index: None,
            refs: Vec::new(),
            metas: Vec::new(),
            finished: false,
        };
        w.chunks = Some(ChunkWriter::create(&tmp.join("chunks"), segment_size)?);
        w.index = Some(IndexWriter::create(&tmp.join("index"), symbols)?);
        Ok(w)
    }

    pub fn ulid(&self) -> &str {
        &self.meta.ulid
    }

    /// What was added so far.
    pub fn stats(&self) -> &BlockStats {
        &self.meta.stats
    }

    /// Adds the next series (ascending label order) with its chunks (in time order, inside
    /// the block's range). A series without chunks is left out, as Prometheus does.
    pub fn add_series(
        &mut self,
        labels: &Labels,
        chunks: &[BlockChunk<'_>],
    ) -> Result<(), BlockError> {
        if chunks.is_empty() {
            return Ok(());
        }
        let (Some(cw), Some(iw)) = (self.chunks.as_mut(), self.index.as_mut()) else {
            return Err(BlockError::InvalidInput("block already finished".into()));
        };
        for c in chunks {
            if c.min_time < self.meta.min_time || c.max_time >= self.meta.max_time {
                return Err(BlockError::InvalidInput(format!(
                    "series {labels}: chunk [{}, {}] outside the block's [{}, {})",
                    c.min_time, c.max_time, self.meta.min_time, self.meta.max_time
                )));
            }
        }
        let to_write: Vec<ChunkToWrite<'_>> = chunks
            .iter()
            .map(|c| ChunkToWrite {
                encoding: c.encoding,
                data: c.data,
            })
            .collect();
        cw.write_series(&to_write, &mut self.refs)?;
        self.metas.clear();
        self.metas
            .extend(chunks.iter().zip(&self.refs).map(|(c, &r)| ChunkMeta {
                min_time: c.min_time,
                max_time: c.max_time,
                chunk_ref: r,
            }));
        iw.add_series(labels, &self.metas)?;
        let stats = &mut self.meta.stats;
        stats.num_series += 1;
        stats.num_chunks += chunks.len() as u64;
        stats.num_samples += chunks.iter().map(|c| c.num_samples()).sum::<u64>();
        Ok(())
    }

    /// Flushes and fsyncs the chunk files (the first part of `finish`, which a caller
    /// working in steps may do on its own). No series can be added afterwards.
    pub fn close_chunks(&mut self) -> Result<(), BlockError> {
        if let Some(cw) = self.chunks.take() {
            cw.close()?;
        }
        Ok(())
    }

    /// Writes the index's postings and tables and fsyncs it (the second part of `finish`).
    pub fn close_index(&mut self) -> Result<(), BlockError> {
        self.close_chunks()?;
        if let Some(iw) = self.index.take() {
            iw.close()?;
        }
        Ok(())
    }

    /// Finishes the block: closes the chunk files and the index, writes meta.json and an
    /// empty tombstones file, and renames the directory into place. Returns its meta.
    pub fn finish(mut self) -> Result<BlockMeta, BlockError> {
        self.close_index()?;
        self.meta.write(&self.tmp)?;
        Tombstones::new().write(&self.tmp)?;
        sync_dir(&self.tmp)?;
        let dst = self.parent.join(&self.meta.ulid);
        if dst.exists() {
            std::fs::remove_dir_all(&dst).map_err(BlockError::io("remove", &dst))?;
        }
        std::fs::rename(&self.tmp, &dst).map_err(BlockError::io("rename", &dst))?;
        sync_dir(&self.parent)?;
        self.finished = true;
        Ok(self.meta.clone())
    }
}

impl Drop for BlockWriter {
    /// An unfinished block leaves nothing behind (best effort: start-up removes leftovers).
    fn drop(&mut self) {
        if !self.finished {
            self.chunks = None;
            self.index = None;
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Writes a whole block from series already sorted by labels; the symbols are gathered
/// from them, plus the empty string, which Prometheus 2.42 always puts in the table (it is
/// the all-postings key's name and value). For tests, backfill and small blocks.
pub fn write_block(
    parent: &Path,
    block: NewBlock,
    series: &[(Labels, Vec<BlockChunk<'_>>)],
) -> Result<BlockMeta, BlockError> {
    let mut symbols = BTreeSet::from([""]);
    for (labels, _) in series {
        for l in labels {
            symbols.insert(l.name.as_str());
            symbols.insert(l.value.as_str());
        }
    }
    let mut w = BlockWriter::create(parent, block, symbols.iter().copied())?;
    for (labels, chunks) in series {
        w.add_series(labels, chunks)?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunkenc::XorChunk;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The block `promtool tsdb create-blocks-from openmetrics` (2.42) wrote for
    /// `a_total{job="j"} 1 1000`, `a_total{job="j"} 2 1015`, `b{x="y z"} NaN 1000`.
    const PROMTOOL_INDEX: &str = "baaad70002000000240000000800085f5f6e616d655f5f07615f746f74616c0162016a036a6f6201780379207a56995a550000000000000000000000000000000c02010205040180897a987508d6392cf70000000000000000000000000000000b02010306070180897a00200494cad80000001000000001000000020000000200000003fc4154420000000c00000001000000010000000420d59ba60000000c000000010000000100000007338568520000000c0000000200000004000000060015366400000008000000010000000473a34a3900000008000000010000000692983ace00000008000000010000000473a34a3900000008000000010000000692983ace0000001b0000000301085f5f6e616d655f5f7001036a6f6288010101789c018ceaf3470000003d00000005020000b00102085f5f6e616d655f5f07615f746f74616cc40102085f5f6e616d655f5f0162d40102036a6f62016ae4010201780379207af4013c548312000000000000000500000000000000310000000000000070000000000000010400000000000000b00000000000000127cb1c5fe8";
    const PROMTOOL_CHUNKS: &str = "85bd40dd010000001201000280897a3ff00000000000009875c25fffc931693d0e01000180897a7ff800000000000100ad8a8a0e";
    /// Go's `math.NaN()`.
    const GO_NAN: u64 = 0x7ff8_0000_0000_0001;

    #[test]
    fn golden_block_matches_promtool_byte_for_byte() {
        let mut a = XorChunk::new();
        a.append(1_000_000, 1.0);
        a.append(1_015_000, 2.0);
        let mut b = XorChunk::new();
        b.append(1_000_000, f64::from_bits(GO_NAN));
        let chunk = |c| BlockChunk::of_xor(c).unwrap();
        let series = vec![
            (
                Labels::from_pairs([("__name__", "a_total"), ("job", "j")]).unwrap(),
                vec![chunk(&a)],
            ),
            (
                Labels::from_pairs([("__name__", "b"), ("x", "y z")]).unwrap(),
                vec![chunk(&b)],
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let meta =
            write_block(dir.path(), NewBlock::level1(1_000_000, 1_015_001), &series).unwrap();
        let block = dir.path().join(&meta.ulid);
        assert_eq!(
            std::fs::read(block.join("index")).unwrap(),
            unhex(PROMTOOL_INDEX)
        );
        // The chunk files are identical but for one byte: Go's bstream leaves a spare zero
        // byte after a stream that ends byte-aligned on a whole-byte write (always so for a
        // one-sample chunk), which promcore's XorChunk does not keep. Both read the same.
        let got = std::fs::read(block.join("chunks/000001")).unwrap();
        let want = unhex(PROMTOOL_CHUNKS);
        assert_eq!(got[..0x20], want[..0x20], "header and the a_total chunk");
        let (ours, theirs) = (&got[0x20..], &want[0x20..]);
        assert_eq!((ours[0], theirs[0]), (13, 14), "data lengths");
        assert_eq!(ours[1..14], theirs[1..14]);
        assert_eq!(theirs[15], 0, "Go's spare byte");
        let crc = crate::encoding::crc32c(&ours[1..15]);
        assert_eq!(ours[15..], crc.to_be_bytes());
        assert_eq!(
            std::fs::read(block.join("tombstones")).unwrap(),
            [0x01, 0x30, 0xba, 0x30, 0x01, 0, 0, 0, 0]
        );
        assert_eq!(
            (
                meta.stats.num_samples,
                meta.stats.num_series,
                meta.stats.num_chunks
            ),
            (3, 2, 2)
        );
        assert_eq!(BlockMeta::read(&block).unwrap(), meta);
        assert_eq!(meta.compaction.sources, std::slice::from_ref(&meta.ulid));
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            std::slice::from_ref(&meta.ulid),
            "no temporary directory left"
        );
    }

    #[test]
    fn refuses_bad_input_and_leaves_nothing() {
        let mut a = XorChunk::new();
        a.append(10, 1.0);
        let c = BlockChunk {
            min_time: 10,
            max_time: 10,
            encoding: Encoding::Xor,
            data: a.bytes(),
        };
        let l1 = Labels::from_pairs([("a", "1")]).unwrap();
        let l2 = Labels::from_pairs([("a", "2")]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let unsorted = vec![(l2.clone(), vec![c]), (l1.clone(), vec![c])];
        assert!(matches!(
            write_block(dir.path(), NewBlock::level1(0, 100), &unsorted),
            Err(BlockError::InvalidInput(_))
        ));
        let outside = vec![(l1.clone(), vec![c])];
        assert!(write_block(dir.path(), NewBlock::level1(11, 100), &outside).is_err());
        assert!(write_block(dir.path(), NewBlock::level1(0, 10), &outside).is_err());
        let overlapping = vec![(l1, vec![c, c])];
        assert!(write_block(dir.path(), NewBlock::level1(0, 100), &overlapping).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
