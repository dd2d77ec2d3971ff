//! Retention: which whole blocks of a shard are past `--storage.tsdb.retention.time` or
//! `--storage.tsdb.retention.size`, and deleting them.
//!
//! The choice is Prometheus's (`BeyondTimeRetention`, `BeyondSizeRetention` in tsdb/db.go),
//! made over the blocks sorted newest first by max time: by time, the first block whose max
//! time lies more than the retention before the newest block's max time and every older
//! block go; by size, the head's bytes on disk (WAL with its checkpoints, chunks_head) and
//! then each block's bytes are added up, and the block that crosses the limit and every older
//! block go. Each rule that deletes anything counts once, as Prometheus's
//! `prometheus_tsdb_{time,size}_retentions_total` do.
//!
//! `choose` is pure; `Deletions` and `delete_block` are the I/O: a block is renamed to
//! `<ulid>.tmp-for-deletion` (which start-up removes if a crash interrupts the removal) and
//! then removed. `Deletions` renames on the caller's thread (the executor), so that nothing
//! finds the block under its name any more, and leaves the rest to the executor's blocking
//! thread: the directory fsync, the unmapping of the block's files and their removal took
//! up to 94 ms for one block, which the shard's appends must not wait for. This module
//! never decides anything about the head, and never removes the files of a block that is
//! still mapped: the `Block` is dropped first, so the disk space is released at once.

use std::path::{Path, PathBuf};

use crate::block::{sync_dir, Block, BlockError, TMP_FOR_DELETION_SUFFIX};
use crate::compact::{offload, Offloaded};

/// Limits; zero turns a rule off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOptions {
    /// Milliseconds (the unit of block times).
    pub time_ms: i64,
    pub max_bytes: u64,
}

/// What retention needs to know of one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockExtent {
    pub max_time: i64,
    pub bytes: u64,
}

/// The blocks to delete (indices into the slice given to `choose`) and which rules applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deletable {
    pub blocks: Vec<usize>,
    pub by_time: bool,
    pub by_size: bool,
}

/// Counters for self-monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionStats {
    /// `prometheus_tsdb_time_retentions_total`
    pub time_retentions: u64,
    /// `prometheus_tsdb_size_retentions_total`
    pub size_retentions: u64,
    pub blocks_deleted: u64,
    /// Retention runs that failed (a block could not be removed); retried on the next run.
    pub failures: u64,
    pub last_error: Option<String>,
}

impl RetentionStats {
    pub fn count(&mut self, d: &Deletable) {
        self.time_retentions += u64::from(d.by_time);
        self.size_retentions += u64::from(d.by_size);
        self.blocks_deleted += d.blocks.len() as u64;
    }
}

/// The blocks beyond retention, ascending indices into `blocks` (in any order).
/// `head_bytes` is what the head holds on disk (see `head_disk_bytes`).
pub fn choose(blocks: &[BlockExtent], head_bytes: u64, opts: RetentionOptions) -> Deletable {
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    // Newest first; a stable sort keeps equal max times in the caller's order.
    order.sort_by(|&a, &b| blocks[b].max_time.cmp(&blocks[a].max_time));
    let mut out = Deletable::default();
    let mut doomed = vec![false; blocks.len()];
    if opts.time_ms > 0 {
        if let Some(&newest) = order.first() {
            let newest = blocks[newest].max_time;
            let first_old = order
                .iter()
                .skip(1)
                .position(|&i| newest.saturating_sub(blocks[i].max_time) > opts.time_ms);
            if let Some(p) = first_old {
                for &i in &order[p + 1..] {
                    doomed[i] = true;
                }
                out.by_time = true;
            }
        }
    }
    if opts.max_bytes > 0 {
        let mut total = head_bytes;
        for (p, &i) in order.iter().enumerate() {
            total = total.saturating_add(blocks[i].bytes);
            if total > opts.max_bytes {
                for &j in &order[p..] {
                    doomed[j] = true;
                }
                out.by_size = true;
                break;
            }
        }
    }
    out.blocks = (0..blocks.len()).filter(|&i| doomed[i]).collect();
    out
}

/// Bytes the head holds on disk, as Prometheus's `Head.Size` counts them: every file under
/// `wal/` (segments and checkpoints) and `chunks_head/`.
pub fn head_disk_bytes(shard_dir: &Path) -> Result<u64, BlockError> {
    let mut total = 0;
    for sub in ["wal", "chunks_head"] {
        total += dir_bytes(&shard_dir.join(sub))?;
    }
    Ok(total)
}

fn dir_bytes(dir: &Path) -> Result<u64, BlockError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(BlockError::io("list", dir)(e)),
    };
    let mut total = 0;
    for e in entries {
        let e = e.map_err(BlockError::io("list", dir))?;
        // A file removed between listing and stat (a WAL truncation) simply no longer counts.
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() {
            total += dir_bytes(&e.path())?;
        } else {
            total += meta.len();
        }
    }
    Ok(total)
}

/// Removes a block directory that nothing has open any more, in one call (start-up, and
/// the rare paths that undo a block just written): renamed first, so that a crash leaves
/// either the whole block or a leftover start-up removes, never a partial block.
pub fn delete_block(block_dir: &Path) -> Result<(), BlockError> {
    let doomed = doomed_name(block_dir);
    std::fs::rename(block_dir, &doomed).map_err(BlockError::io("rename", block_dir))?;
    remove_renamed(block_dir, &doomed)
}

/// `<block_dir>.tmp-for-deletion`.
fn doomed_name(block_dir: &Path) -> PathBuf {
    let mut doomed = block_dir.as_os_str().to_owned();
    doomed.push(TMP_FOR_DELETION_SUFFIX);
    PathBuf::from(doomed)
}

/// After the rename: made durable before any file goes (as Prometheus's `fileutil.Replace`
/// does), then removed.
fn remove_renamed(block_dir: &Path, doomed: &Path) -> Result<(), BlockError> {
    if let Some(parent) = block_dir.parent() {
        sync_dir(parent)?;
    }
    crate::crash_point::reached(crate::crash_point::BLOCK_DELETE_AFTER_RENAME);
    std::fs::remove_dir_all(doomed).map_err(BlockError::io("remove", doomed))
}

/// Blocks being removed on the executor's blocking thread (see the module doc).
#[derive(Default)]
pub struct Deletions {
    pending: Vec<Offloaded<()>>,
}

impl Deletions {
    /// Renames `block`'s directory for deletion, here, then unmaps and removes it on the
    /// blocking thread. A failed rename hands the block back, open and untouched.
    pub fn start(&mut self, block: Block) -> Result<(), (Box<Block>, BlockError)> {
        let dir = block.dir().to_path_buf();
        let doomed = doomed_name(&dir);
        if let Err(e) = std::fs::rename(&dir, &doomed) {
            return Err((Box::new(block), BlockError::io("rename", &dir)(e)));
        }
        self.pending.push(offload(move || {
            // Unmapped before the files go, so that their space is freed with them; a big
            // block's munmap is not free either.
            drop(block);
            remove_renamed(&dir, &doomed)
        }));
        Ok(())
    }

    /// Forgets the deletions that have finished; the first error among them, if any (the
    /// renamed directory is left for start-up to remove).
    pub fn reap(&mut self) -> Result<(), BlockError> {
        let mut first_err = None;
        self.pending.retain(|p| match p.take() {
            None => true,
            Some(r) => {
                if let Err(e) = r {
                    first_err.get_or_insert(e);
                }
                false
            }
        });
        first_err.map_or(Ok(()), Err)
    }

    /// Whether no deletion is under way.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(max_time: i64, bytes: u64) -> BlockExtent {
        BlockExtent { max_time, bytes }
    }

    #[test]
    fn time_counts_from_the_newest_block_max_time() {
        let opts = RetentionOptions {
            time_ms: 100,
            max_bytes: 0,
        };
        // Given oldest first, as a shard keeps them.
        let blocks = [ext(100, 1), ext(200, 1), ext(300, 1), ext(400, 1)];
        let d = choose(&blocks, 0, opts);
        assert_eq!(d.blocks, [0, 1]);
        assert!(d.by_time && !d.by_size);
        // Exactly the retention before the newest: kept (Prometheus compares with `>`).
        let d = choose(&[ext(300, 1), ext(400, 1)], 0, opts);
        assert_eq!(d, Deletable::default());
        // The newest block is never deleted by time, however old.
        let d = choose(&[ext(5, 1)], 0, opts);
        assert!(d.blocks.is_empty());
    }

    #[test]
    fn once_one_block_is_too_old_every_older_one_goes() {
        let opts = RetentionOptions {
            time_ms: 100,
            max_bytes: 0,
        };
        // Unsorted input: 250 is within 100 of 340; 200 is not, so it and the older 100 go.
        let blocks = [ext(340, 1), ext(200, 1), ext(250, 1), ext(100, 1)];
        assert_eq!(choose(&blocks, 0, opts).blocks, [1, 3]);
    }

    #[test]
    fn size_counts_the_head_then_blocks_newest_first() {
        let opts = RetentionOptions {
            time_ms: 0,
            max_bytes: 100,
        };
        let blocks = [ext(100, 30), ext(200, 30), ext(300, 30)];
        assert_eq!(choose(&blocks, 0, opts), Deletable::default());
        // 10 + 30 + 30 = 70, + 30 = 100: not over; one more byte of head makes it over.
        assert!(choose(&blocks, 10, opts).blocks.is_empty());
        let d = choose(&blocks, 11, opts);
        assert_eq!(d.blocks, [0]);
        assert!(d.by_size && !d.by_time);
        // A head alone over the limit deletes every block.
        assert_eq!(choose(&blocks, 101, opts).blocks, [0, 1, 2]);
    }

    #[test]
    fn both_rules_count_once_each() {
        let opts = RetentionOptions {
            time_ms: 100,
            max_bytes: 50,
        };
        let blocks = [ext(100, 30), ext(200, 30), ext(300, 30)];
        let d = choose(&blocks, 0, opts);
        assert_eq!(d.blocks, [0, 1]);
        assert!(d.by_time && d.by_size);
        let mut s = RetentionStats::default();
        s.count(&d);
        assert_eq!(
            (s.time_retentions, s.size_retentions, s.blocks_deleted),
            (1, 1, 2)
        );
    }

    #[test]
    fn deleting_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("01ARZ3NDEKTSV4RRFFQ69G5FAV");
        std::fs::create_dir_all(b.join("chunks")).unwrap();
        std::fs::write(b.join("chunks/000001"), b"x").unwrap();
        std::fs::write(dir.path().join("keep"), b"y").unwrap();
        delete_block(&b).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["keep"]);
    }

    #[test]
    fn a_block_that_cannot_be_renamed_is_handed_back_open() {
        use crate::block::{write_block, NewBlock};
        let dir = tempfile::tempdir().unwrap();
        let meta = write_block(dir.path(), NewBlock::level1(0, 1000), &[]).unwrap();
        let path = dir.path().join(&meta.ulid);
        let block = Block::open(&path).unwrap();
        // Gone from under it: the rename fails before anything is handed to the blocking
        // thread (none runs here).
        std::fs::remove_dir_all(&path).unwrap();
        let mut d = Deletions::default();
        let Err((back, e)) = d.start(block) else {
            panic!("the rename of a missing directory succeeded")
        };
        assert_eq!(back.meta().ulid, meta.ulid);
        assert!(e.to_string().starts_with("rename"), "{e}");
        assert!(d.is_empty());
        assert!(d.reap().is_ok());
    }

    #[test]
    fn head_bytes_include_checkpoints_and_chunks_head() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("wal");
        std::fs::create_dir_all(wal.join("checkpoint.00000003")).unwrap();
        std::fs::create_dir_all(dir.path().join("chunks_head")).unwrap();
        std::fs::write(wal.join("00000004"), [0u8; 10]).unwrap();
        std::fs::write(wal.join("checkpoint.00000003/00000000"), [0u8; 5]).unwrap();
        std::fs::write(dir.path().join("chunks_head/000001"), [0u8; 7]).unwrap();
        std::fs::write(dir.path().join("other"), [0u8; 100]).unwrap();
        assert_eq!(head_disk_bytes(dir.path()).unwrap(), 22);
    }
}
