//! Migration from Prometheus: a Prometheus data directory's blocks and WAL rewritten into a
//! promcore data directory's shards.
//!
//! Every block is rewritten once per shard that owns some of its series, with the same time
//! range and compaction level: series keep their label order, chunks are copied as they are
//! unless a tombstone (or the block's own range) cuts into them, in which case the surviving
//! samples are re-encoded, so the new blocks carry no tombstones. A block that cannot be
//! opened or read (corrupt files, chunk encodings promcore does not read) is reported and
//! skipped; its partial output is removed. The head's WAL (newest checkpoint, then the
//! segments after it) is replayed as a head would replay it and written as 2 h blocks; its
//! tombstone records are applied; a corrupt WAL tail ends the replay there, as Prometheus's
//! repair would, and is reported.
//!
//! It never modifies the source directory (no leftover clean-up, no repair, no lock), and
//! never decides the shard count.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::backfill::{Backfill, BackfillError, WrittenBlock, DEFAULT_BLOCK_DURATION};
use crate::block::{Block, BlockChunk, BlockError, BlockWriter, Compaction, NewBlock, Ulid};
use crate::chunkenc::{Encoding, XorChunk, XorIterator};
use crate::index::writer::ChunkMeta;
use crate::labels::{shard_for, Labels};
use crate::tombstones::{is_deleted, Interval};
use crate::wal::reader::WalReader;
use crate::wal::record::{
    decode_samples, decode_series, decode_tombstones, record_type, RefSample, RefSeries, Stone,
};
use crate::wal::{last_checkpoint, list_segments, SegmentRef, WalError};

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Source block directory → the blocks written from it.
    pub blocks: Vec<(PathBuf, Vec<WrittenBlock>)>,
    /// Source blocks not imported, and why.
    pub skipped: Vec<(PathBuf, BlockError)>,
    /// Blocks written from the WAL.
    pub wal_blocks: Vec<WrittenBlock>,
    pub wal_samples: u64,
    /// Where a corrupt WAL stopped the replay, if it did.
    pub wal_error: Option<WalError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error(transparent)]
    Backfill(#[from] BackfillError),
    #[error("reading {0}: {1}")]
    List(PathBuf, std::io::Error),
    #[error(transparent)]
    Wal(#[from] WalError),
}

/// Imports everything of the Prometheus data directory `src` into `shard_dirs` (one per
/// shard, in shard order).
pub fn import(src: &Path, shard_dirs: &[PathBuf]) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let mut dirs = Vec::new();
    for e in std::fs::read_dir(src).map_err(|e| ImportError::List(src.to_path_buf(), e))? {
        let e = e.map_err(|e| ImportError::List(src.to_path_buf(), e))?;
        let is_block = e
            .file_name()
            .to_str()
            .is_some_and(|n| Ulid::parse(n).is_some());
        if is_block && e.file_type().is_ok_and(|t| t.is_dir()) {
            dirs.push(e.path());
        }
    }
    dirs.sort();
    for dir in dirs {
        let block = match Block::open(&dir) {
            Ok(b) => b,
            Err(e) => {
                report.skipped.push((dir, e));
                continue;
            }
        };
        let mut written = Vec::new();
        match rewrite_block(&block, shard_dirs, &mut written) {
            Ok(()) => report.blocks.push((dir, written)),
            Err(e) => {
                for b in &written {
                    let _ = std::fs::remove_dir_all(&b.dir);
                }
                if matches!(e, BlockError::Corrupt { .. } | BlockError::Unsupported(_)) {
                    report.skipped.push((dir, e));
                } else {
                    return Err(e.into());
                }
            }
        }
    }
    let wal = src.join("wal");
    if wal.is_dir() {
        import_wal(&wal, shard_dirs, &mut report)?;
    }
    Ok(report)
}

/// A chunk going into the new block: the source's bytes, or samples re-encoded after a cut.
struct KeptChunk<'a> {
    min_time: i64,
    max_time: i64,
    encoding: Encoding,
    bytes: Kept<'a>,
}

enum Kept<'a> {
    AsIs(&'a [u8]),
    /// Index into the series' re-encoded chunks.
    Reencoded(usize),
}

/// One source block into one new block per shard with series in it.
fn rewrite_block(
    block: &Block,
    shard_dirs: &[PathBuf],
    written: &mut Vec<WrittenBlock>,
) -> Result<(), BlockError> {
    let n = shard_dirs.len();
    let meta = block.meta();
    let mut metas: Vec<ChunkMeta> = Vec::new();
    let mut per_shard: Vec<Vec<(u32, Labels)>> = (0..n).map(|_| Vec::new()).collect();
    for r in block.index().all_postings()? {
        let labels = block.series(r, &mut metas)?;
        per_shard[shard_for(labels.hash(), n)].push((r, labels));
    }
    for (shard, series) in per_shard.into_iter().enumerate() {
        if series.is_empty() {
            continue;
        }
        let mut symbols = BTreeSet::from([""]);
        for (_, labels) in &series {
            for l in labels {
                symbols.insert(l.name.as_str());
                symbols.insert(l.value.as_str());
            }
        }
        let ulid = Ulid::new();
        let new = NewBlock {
            ulid,
            min_time: meta.min_time,
            max_time: meta.max_time,
            compaction: Compaction {
                level: meta.compaction.level.max(1),
                sources: vec![ulid.to_string()],
                ..Default::default()
            },
        };
        let mut w = BlockWriter::create(&shard_dirs[shard], new, symbols)?;
        let mut reencoded: Vec<XorChunk> = Vec::new();
        let mut chunks: Vec<KeptChunk<'_>> = Vec::new();
        for (r, labels) in &series {
            block.series(*r, &mut metas)?;
            let deleted = block.tombstones().get(u64::from(*r));
            reencoded.clear();
            chunks.clear();
            for c in &metas {
                let (enc, bytes) = block.chunk(c.chunk_ref)?;
                let inside = c.min_time >= meta.min_time && c.max_time < meta.max_time;
                let cut = deleted
                    .iter()
                    .any(|&(a, b)| a <= c.max_time && c.min_time <= b);
                if inside && !cut {
                    chunks.push(KeptChunk {
                        min_time: c.min_time,
                        max_time: c.max_time,
                        encoding: enc,
                        bytes: Kept::AsIs(bytes),
                    });
                    continue;
                }
                if enc != Encoding::Xor {
                    return Err(BlockError::Unsupported(format!(
                        "{}: a tombstone cuts into a chunk of encoding {enc:?}",
                        block.dir().display()
                    )));
                }
                if let Some(x) =
                    surviving(bytes, meta.min_time, meta.max_time, deleted).map_err(|reason| {
                        BlockError::Corrupt {
                            path: block.dir().join("chunks"),
                            reason,
                        }
                    })?
                {
                    if let (Some(a), Some(b)) = (x.first_time(), x.last_time()) {
                        chunks.push(KeptChunk {
                            min_time: a,
                            max_time: b,
                            encoding: Encoding::Xor,
                            bytes: Kept::Reencoded(reencoded.len()),
                        });
                        reencoded.push(x);
                    }
                }
            }
            let list: Vec<BlockChunk<'_>> = chunks
                .iter()
                .map(|c| BlockChunk {
                    min_time: c.min_time,
                    max_time: c.max_time,
                    encoding: c.encoding,
                    data: match c.bytes {
                        Kept::AsIs(b) => b,
                        Kept::Reencoded(i) => reencoded[i].bytes(),
                    },
                })
                .collect();
            w.add_series(labels, &list)?;
        }
        if w.stats().num_series == 0 {
            continue; // everything deleted: no block, as compaction would write none
        }
        let meta = w.finish()?;
        written.push(WrittenBlock {
            shard,
            dir: shard_dirs[shard].join(&meta.ulid),
            meta,
        });
    }
    Ok(())
}

/// The samples of an XOR chunk inside `[mint, maxt)` and outside `deleted`, re-encoded;
/// `None` when none survive.
fn surviving(
    bytes: &[u8],
    mint: i64,
    maxt: i64,
    deleted: &[Interval],
) -> Result<Option<XorChunk>, String> {
    let mut out = XorChunk::new();
    let mut it = XorIterator::new(bytes);
    for (t, v) in it.by_ref() {
        if t >= mint && t < maxt && !is_deleted(t, deleted) {
            out.append(t, v);
        }
    }
    if let Some(e) = it.err() {
        return Err(format!("undecodable chunk: {e}"));
    }
    Ok((out.num_samples() > 0).then_some(out))
}

/// The WAL as a head replays it: the newest checkpoint, then the segments after it.
fn wal_readers(wal: &Path) -> Result<Vec<WalReader>, WalError> {
    let mut readers = Vec::new();
    let mut after = None;
    if let Some((index, dir)) = last_checkpoint(wal)? {
        readers.push(WalReader::open(&dir)?);
        after = Some(index);
    }
    let segments: Vec<SegmentRef> = list_segments(wal)?
        .into_iter()
        .filter(|s| after.is_none_or(|a| s.index > a))
        .collect();
    readers.push(WalReader::from_segments(segments));
    Ok(readers)
}

/// Reads every record of the WAL, handing each to `f`; a corrupt record ends the read and is
/// returned as the second value.
fn read_wal(
    wal: &Path,
    mut f: impl FnMut(&[u8]) -> Result<(), WalError>,
) -> Result<Option<WalError>, WalError> {
    for mut r in wal_readers(wal)? {
        loop {
            match r.next_record() {
                Ok(Some(rec)) => {
                    if let Err(e) = f(rec) {
                        return Ok(Some(e));
                    }
                }
                Ok(None) => break,
                Err(e) if e.corruption_point().is_some() => return Ok(Some(e)),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(None)
}

fn import_wal(
    wal: &Path,
    shard_dirs: &[PathBuf],
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    // Tombstones come after the samples they delete: gather them first.
    let mut stones: HashMap<u64, Vec<Interval>> = HashMap::new();
    let mut buf: Vec<Stone> = Vec::new();
    read_wal(wal, |rec| {
        if record_type(rec) == Some(3) {
            buf.clear();
            decode_tombstones(rec, &mut buf)?;
            for s in buf.drain(..) {
                stones.entry(s.series_ref).or_default().extend(s.intervals);
            }
        }
        Ok(())
    })?;
    let mut backfill = Backfill::replaying(DEFAULT_BLOCK_DURATION, shard_dirs.len());
    let mut ids: HashMap<u64, u32> = HashMap::new();
    let (mut series, mut samples): (Vec<RefSeries>, Vec<RefSample>) = (Vec::new(), Vec::new());
    let mut count = 0u64;
    let stopped = read_wal(wal, |rec| {
        match record_type(rec) {
            Some(1) => {
                series.clear();
                decode_series(rec, &mut series)?;
                for s in series.drain(..) {
                    let id = backfill.series_id(s.labels);
                    ids.insert(s.series_ref, id);
                }
            }
            Some(2) => {
                samples.clear();
                decode_samples(rec, &mut samples)?;
                for s in &samples {
                    let Some(&id) = ids.get(&s.series_ref) else {
                        continue; // unknown series: a head drops these too
                    };
                    if stones
                        .get(&s.series_ref)
                        .is_some_and(|iv| is_deleted(s.t, iv))
                    {
                        continue;
                    }
                    backfill.append(id, s.t, s.v);
                    count += 1;
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    report.wal_error = stopped;
    report.wal_samples = count;
    report.wal_blocks = backfill.write(shard_dirs)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::write_block;
    use crate::tombstones::Tombstones;

    fn l(v: &str) -> Labels {
        Labels::from_pairs([("__name__", "m"), ("i", v)]).unwrap()
    }

    #[test]
    fn blocks_are_split_by_shard_with_tombstones_applied_and_corrupt_ones_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("prom");
        std::fs::create_dir_all(&src).unwrap();
        let mut chunks = Vec::new();
        for i in 0..10 {
            let mut c = XorChunk::new();
            for t in 0..50 {
                c.append(1000 + t * 10, (i * 100 + t) as f64);
            }
            chunks.push(c);
        }
        let series: Vec<(Labels, Vec<BlockChunk<'_>>)> = {
            let mut v: Vec<_> = chunks
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    (
                        l(&i.to_string()),
                        vec![BlockChunk {
                            min_time: 1000,
                            max_time: 1490,
                            encoding: Encoding::Xor,
                            data: c.bytes(),
                        }],
                    )
                })
                .collect();
            v.sort_by(|a, b| a.0.as_slice().cmp(b.0.as_slice()));
            v
        };
        let meta = write_block(&src, NewBlock::level1(1000, 2000), &series).unwrap();
        let bdir = src.join(&meta.ulid);
        // Delete [1100, 1200] of the first series in index order (ref of its entry).
        let blk = Block::open(&bdir).unwrap();
        let first_ref = blk.index().all_postings().unwrap()[0];
        let mut metas = Vec::new();
        let first_labels = blk.series(first_ref, &mut metas).unwrap();
        drop(blk);
        let mut ts = Tombstones::new();
        ts.add(u64::from(first_ref), (1100, 1200));
        ts.write(&bdir).unwrap();
        // A second, corrupt block.
        let bad = write_block(&src, NewBlock::level1(500, 2500), &series[..1]).unwrap();
        std::fs::write(src.join(&bad.ulid).join("index"), b"garbage").unwrap();

        let shard_dirs: Vec<PathBuf> = (0..2).map(|i| tmp.path().join(format!("s{i}"))).collect();
        for d in &shard_dirs {
            std::fs::create_dir_all(d).unwrap();
        }
        let report = import(&src, &shard_dirs).unwrap();
        assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
        assert!(report.skipped[0].0.ends_with(&bad.ulid));
        assert_eq!(report.blocks.len(), 1);
        let mut total = 0;
        for b in &report.blocks[0].1 {
            assert_eq!((b.meta.min_time, b.meta.max_time), (1000, 2000));
            let blk = Block::open(&b.dir).unwrap();
            assert!(blk.tombstones().is_empty());
            for (labels, samples) in blk.dump(i64::MIN, i64::MAX).unwrap() {
                assert_eq!(shard_for(labels.hash(), 2), b.shard);
                if labels == first_labels {
                    assert_eq!(samples.len(), 50 - 11);
                    assert!(samples.iter().all(|&(t, _)| !(1100..=1200).contains(&t)));
                } else {
                    assert_eq!(samples.len(), 50);
                }
                total += 1;
            }
        }
        assert_eq!(total, 10);
    }
}
