//! Deleting series on request (Prometheus's admin `delete_series` and `clean_tombstones`):
//! which intervals of which series a deletion marks in the head and in a block, and
//! rewriting a block without its deleted samples.
//!
//! As in Prometheus, a deletion only adds tombstones: in the head an interval per matching
//! series, clamped to that series' samples (the shard logs them as a WAL tombstones record
//! before applying them, so they survive a restart); in a block an interval per matching
//! series that has a chunk in the range, clamped to its chunks, merged into the block's
//! `tombstones` file. Samples go for good when a block is rewritten: `rewrite_block` writes
//! a new level-1 block whose parent is the old one (Prometheus's `CleanTombstones`), and
//! the caller deletes the old block once the new one is in place; a crash in between
//! leaves both, and start-up removes the parent (`block_compaction::superseded`).
//!
//! This module never writes the WAL, never deletes a block, and never decides when to run.

use std::collections::BTreeSet;
use std::path::Path;

use crate::block::meta::BlockDesc;
use crate::block::{Block, BlockError, BlockMeta, BlockWriter, Compaction, NewBlock, Ulid};
use crate::block_compaction::write_series;
use crate::head::Head;
use crate::index::matcher::Matcher;
use crate::tombstones::{Interval, Tombstones};
use crate::wal::record::Stone;

/// `[mint, maxt]` cut to `[lo, hi]`; `None` when nothing of it is left (Prometheus's
/// `clampInterval`, which keeps even empty intervals; an empty one deletes nothing).
pub fn clamp(mint: i64, maxt: i64, lo: i64, hi: i64) -> Option<Interval> {
    let (a, b) = (mint.max(lo), maxt.min(hi));
    (a <= b).then_some((a, b))
}

/// The tombstones deleting `[mint, maxt]` of the head's series matching `matchers`.
pub fn head_stones(head: &Head, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Stone> {
    let mut out = Vec::new();
    for r in head.select(matchers) {
        let Some(s) = head.series(r) else { continue };
        let (Some(lo), Some(hi)) = (s.min_time(), s.max_time()) else {
            continue;
        };
        if let Some(iv) = clamp(mint, maxt, lo, hi) {
            out.push(Stone {
                series_ref: r,
                intervals: vec![iv],
            });
        }
    }
    out
}

/// The tombstones deleting `[mint, maxt]` of the block's series matching `matchers` (by
/// index ref), for the series with a chunk in that range.
pub fn block_stones(
    block: &Block,
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
) -> Result<Tombstones, BlockError> {
    let mut stones = Tombstones::new();
    if !block.meta().overlaps_closed(mint, maxt) {
        return Ok(stones);
    }
    let mut chunks = Vec::new();
    for r in block.select(matchers)? {
        block.series(r, &mut chunks)?;
        let hit = chunks
            .iter()
            .any(|c| c.min_time <= maxt && mint <= c.max_time);
        let (Some(first), Some(last)) = (chunks.first(), chunks.last()) else {
            continue;
        };
        if hit {
            if let Some(iv) = clamp(mint, maxt, first.min_time, last.max_time) {
                stones.add(u64::from(r), iv);
            }
        }
    }
    Ok(stones)
}

/// `rewrite_block` for the block in `block_dir`, opened here: a caller off the shard's
/// executor (the blocking thread) reads it through its own mapping.
pub fn rewrite_block_dir(dir: &Path, block_dir: &Path) -> Result<Option<BlockMeta>, BlockError> {
    rewrite_block(dir, &Block::open(block_dir)?)
}

/// Writes `block` again into `dir` without its deleted samples: a level-1 block over the
/// same range with the old block as its parent. `None` when nothing is left (no block is
/// written). The old block is untouched.
pub fn rewrite_block(dir: &Path, block: &Block) -> Result<Option<BlockMeta>, BlockError> {
    let mut series = Vec::new();
    let mut symbols: BTreeSet<String> = BTreeSet::from([String::new()]);
    let mut chunks = Vec::new();
    for r in block.index().all_postings()? {
        let labels = block.series(r, &mut chunks)?;
        for l in labels.iter() {
            symbols.insert(l.name.clone());
            symbols.insert(l.value.clone());
        }
        series.push((labels, r));
    }
    let meta = block.meta();
    let ulid = Ulid::new();
    let new = NewBlock {
        ulid,
        min_time: meta.min_time,
        max_time: meta.max_time,
        compaction: Compaction {
            level: 1,
            sources: vec![ulid.to_string()],
            parents: vec![BlockDesc {
                ulid: meta.ulid.clone(),
                min_time: meta.min_time,
                max_time: meta.max_time,
            }],
            ..Default::default()
        },
    };
    let mut writer = BlockWriter::create(dir, new, symbols.iter().map(|s| s.as_str()))?;
    let parents = [block];
    for (labels, r) in &series {
        write_series(&mut writer, &parents, false, labels, &vec![(0, *r)])?;
    }
    if writer.stats().num_samples == 0 {
        return Ok(None);
    }
    writer.finish().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{write_block, BlockChunk};
    use crate::chunkenc::XorChunk;
    use crate::index::matcher::MatchType;
    use crate::labels::Labels;

    #[test]
    fn clamp_as_prometheus_but_empty_is_none() {
        assert_eq!(clamp(i64::MIN, i64::MAX, 10, 20), Some((10, 20)));
        assert_eq!(clamp(12, 15, 10, 20), Some((12, 15)));
        assert_eq!(clamp(21, 30, 10, 20), None);
    }

    fn block_with(dir: &Path, series: &[(&str, &[i64])]) -> Block {
        let encoded: Vec<(Labels, XorChunk)> = series
            .iter()
            .map(|(name, ts)| {
                let mut c = XorChunk::new();
                for &t in *ts {
                    c.append(t, t as f64);
                }
                (Labels::from_pairs([("__name__", *name)]).unwrap(), c)
            })
            .collect();
        let input: Vec<(Labels, Vec<BlockChunk<'_>>)> = encoded
            .iter()
            .map(|(l, c)| (l.clone(), vec![BlockChunk::of_xor(c).unwrap()]))
            .collect();
        let meta = write_block(dir, NewBlock::level1(0, 1000), &input).unwrap();
        Block::open(&dir.join(meta.ulid)).unwrap()
    }

    #[test]
    fn deletion_marks_then_rewrite_drops_the_samples() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = block_with(dir.path(), &[("a", &[10, 20, 30]), ("b", &[10, 20])]);
        let m = [Matcher::new(MatchType::Equal, "__name__", "a").unwrap()];
        let stones = block_stones(&b, &m, 15, 25).unwrap();
        assert_eq!(stones.num_intervals(), 1);
        b.add_tombstones(&stones).unwrap();
        assert_eq!(b.meta().stats.num_tombstones, 1);
        // What the file and meta.json now say is what a fresh open reads.
        let reopened = Block::open(b.dir()).unwrap();
        assert_eq!(reopened.tombstones(), b.tombstones());
        assert_eq!(reopened.meta().stats.num_tombstones, 1);
        let got = reopened.dump(i64::MIN, i64::MAX).unwrap();
        assert_eq!(got[0].1, [(10, 10.0), (30, 30.0)]);

        let new = rewrite_block(dir.path(), &b).unwrap().unwrap();
        assert_eq!(new.compaction.level, 1);
        assert_eq!(new.compaction.parents[0].ulid, b.meta().ulid);
        assert_eq!((new.min_time, new.max_time), (0, 1000));
        let nb = Block::open(&dir.path().join(&new.ulid)).unwrap();
        assert!(nb.tombstones().is_empty());
        assert_eq!(nb.dump(i64::MIN, i64::MAX).unwrap(), got);
        assert_eq!(new.stats.num_samples, 4);
    }

    #[test]
    fn a_block_deleted_whole_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = block_with(dir.path(), &[("a", &[10, 20])]);
        let all = [Matcher::new(MatchType::Equal, "__name__", "a").unwrap()];
        b.add_tombstones(&block_stones(&b, &all, i64::MIN, i64::MAX).unwrap())
            .unwrap();
        assert!(rewrite_block(dir.path(), &b).unwrap().is_none());
        // Only the original block is on disk: nothing half-written left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
