//! Blocks written by Prometheus 2.42's own `promtool tsdb create-blocks-from openmetrics`,
//! and the small file-tree helpers tests need around them: one directory of blocks per
//! promcore shard (each series into the shard its labels hash to), copies of them into a
//! data directory, and listings of block directories.
//!
//! Needs `promtool` (Debian package `prometheus`); `promtool_ok` lets a test say it is
//! skipping when it is missing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn promtool_ok() -> bool {
    Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs promtool on each OpenMetrics text (one per shard, `# EOF` included) into
/// `tmp/blocks-<i>`; a text without samples gives an empty directory.
pub fn backfill(tmp: &Path, per_shard: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (i, text) in per_shard.iter().enumerate() {
        let dir = tmp.join(format!("blocks-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        if text.lines().count() > 2 {
            let file = tmp.join(format!("input-{i}.om"));
            std::fs::write(&file, text).unwrap();
            let o = Command::new("promtool")
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&file)
                .arg(&dir)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        out.push(dir);
    }
    out
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Block directories (ULID names, with a meta.json) under `dir`.
pub fn ulids(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("meta.json").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every path below `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.path());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&e.path()));
        }
    }
    out
}
