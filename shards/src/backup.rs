//! Snapshots of a shard for backup (the admin API's `snapshot`, Prometheus's
//! `DB.Snapshot`): every block hard-linked into a destination directory, plus, if asked,
//! the head written there as one more block, so that the destination is a shard directory
//! holding only blocks, which promcore, Prometheus and promtool open as they are.
//!
//! Hard links cost no space and are safe because block files are never modified in place:
//! a tombstones or meta.json update is a new file renamed over the old name, which leaves
//! the snapshot's link pointing at the old contents. This module never deletes anything
//! and never touches the source shard's files beyond reading directory listings.

use std::path::Path;

use crate::block::{sync_dir, BlockError};

/// Files of a block besides its `chunks/` segments.
const BLOCK_FILES: [&str; 3] = ["meta.json", "tombstones", "index"];

/// Hard-links the block in `block_dir` as `dest_parent/<block name>`.
pub fn link_block(block_dir: &Path, dest_parent: &Path) -> Result<(), BlockError> {
    let name = block_dir.file_name().ok_or_else(|| {
        BlockError::InvalidInput(format!("{} has no block name", block_dir.display()))
    })?;
    let dest = dest_parent.join(name);
    let dest_chunks = dest.join("chunks");
    std::fs::create_dir_all(&dest_chunks).map_err(BlockError::io("mkdir", &dest_chunks))?;
    for f in BLOCK_FILES {
        let (from, to) = (block_dir.join(f), dest.join(f));
        std::fs::hard_link(&from, &to).map_err(BlockError::io("link", &to))?;
    }
    let chunks = block_dir.join("chunks");
    let entries = std::fs::read_dir(&chunks).map_err(BlockError::io("list", &chunks))?;
    for e in entries {
        let e = e.map_err(BlockError::io("list", &chunks))?;
        let to = dest_chunks.join(e.file_name());
        std::fs::hard_link(e.path(), &to).map_err(BlockError::io("link", &to))?;
    }
    sync_dir(&dest_chunks)?;
    sync_dir(&dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn every_file_is_linked_not_copied() {
        let src = tempfile::tempdir().unwrap();
        let block = src.path().join("01HZZZZZZZZZZZZZZZZZZZZZZX");
        std::fs::create_dir_all(block.join("chunks")).unwrap();
        for f in BLOCK_FILES {
            std::fs::write(block.join(f), f).unwrap();
        }
        std::fs::write(block.join("chunks/000001"), "c1").unwrap();
        std::fs::write(block.join("chunks/000002"), "c2").unwrap();
        let dst = tempfile::tempdir().unwrap();
        link_block(&block, dst.path()).unwrap();
        let linked = dst.path().join("01HZZZZZZZZZZZZZZZZZZZZZZX");
        for f in [
            "meta.json",
            "tombstones",
            "index",
            "chunks/000001",
            "chunks/000002",
        ] {
            let (a, b) = (
                std::fs::metadata(block.join(f)).unwrap(),
                std::fs::metadata(linked.join(f)).unwrap(),
            );
            assert_eq!(a.ino(), b.ino(), "{f} is the same inode");
            assert_eq!(a.nlink(), 2);
        }
        // A second snapshot into the same place is refused rather than half-merged.
        assert!(link_block(&block, dst.path()).is_err());
    }
}
