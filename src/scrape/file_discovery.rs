//! File-based service discovery at run time: expands a job's `file_sd_configs` patterns,
//! reads the target files and notices when they change.
//!
//! Files are checked for changes (size and modification time) every few seconds, standing in
//! for Prometheus's inotify watch, and re-read in full every `refresh_interval` regardless. A
//! file that stops parsing keeps its previous targets (and the error is logged), as Prometheus
//! does; a file that disappears loses its targets. Patterns may use `*` and `?` in the file
//! name (not in directory names). This module only reads files; it starts no scrape.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::config::file_sd::{parse_targets, FileSdConfig};
use crate::config::target_group::TargetGroup;

/// What a file looked like when last read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

#[derive(Debug)]
struct WatchedFile {
    stamp: FileStamp,
    groups: Vec<TargetGroup>,
}

/// The files of one job.
#[derive(Debug)]
pub struct FileDiscovery {
    configs: Vec<FileSdConfig>,
    /// Relative patterns are relative to the configuration file's directory.
    base: PathBuf,
    files: BTreeMap<PathBuf, WatchedFile>,
    last_full_read: Option<Instant>,
}

/// A problem with one file, for the log; its previous targets are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryProblem {
    pub file: PathBuf,
    pub error: String,
}

impl FileDiscovery {
    pub fn new(configs: Vec<FileSdConfig>, base: PathBuf) -> Self {
        FileDiscovery {
            configs,
            base,
            files: BTreeMap::new(),
            last_full_read: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }

    /// Re-reads what changed (everything when the refresh interval passed). `Some(groups)`
    /// when the job's target groups may have changed, with every group of every file.
    pub fn poll(&mut self, problems: &mut Vec<DiscoveryProblem>) -> Option<Vec<TargetGroup>> {
        if self.configs.is_empty() {
            return None;
        }
        let refresh = self
            .configs
            .iter()
            .map(|c| c.refresh_interval.as_std())
            .min()
            .unwrap_or(Duration::from_secs(300));
        let full = self.last_full_read.is_none_or(|at| at.elapsed() >= refresh);
        if full {
            self.last_full_read = Some(Instant::now());
        }
        let mut present = Vec::new();
        for c in &self.configs {
            for pattern in &c.files {
                expand(&self.base, pattern, &mut present);
            }
        }
        present.sort();
        present.dedup();
        let mut changed = false;
        let before = self.files.len();
        self.files
            .retain(|path, _| present.binary_search(path).is_ok());
        changed |= self.files.len() != before;
        for path in present {
            let stamp = match std::fs::metadata(&path) {
                Ok(m) => FileStamp {
                    len: m.len(),
                    modified: m.modified().ok(),
                },
                Err(_) => continue,
            };
            let known = self.files.get(&path);
            if !full && known.is_some_and(|f| f.stamp == stamp) {
                continue;
            }
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(DiscoveryProblem {
                        file: path.clone(),
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            match parse_targets(&path.to_string_lossy(), &text) {
                Ok(groups) => {
                    let same = known.is_some_and(|f| f.groups == groups);
                    changed |= !same;
                    self.files.insert(path, WatchedFile { stamp, groups });
                }
                Err(e) => {
                    problems.push(DiscoveryProblem {
                        file: path.clone(),
                        error: e.to_string(),
                    });
                    // Keep the previous targets, but do not re-read until the file changes.
                    if let Some(f) = self.files.get_mut(&path) {
                        f.stamp = stamp;
                    }
                }
            }
        }
        changed.then(|| {
            self.files
                .values()
                .flat_map(|f| f.groups.iter().cloned())
                .collect()
        })
    }
}

/// Adds the existing files matching `pattern` (relative to `base`) to `out`.
pub fn expand(base: &Path, pattern: &str, out: &mut Vec<PathBuf>) {
    let path = base.join(pattern);
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    if !name.contains(['*', '?']) {
        if path.is_file() {
            out.push(path);
        }
        return;
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        if let Some(f) = file.to_str() {
            if wildcard_match(name.as_bytes(), f.as_bytes()) && e.path().is_file() {
                out.push(e.path());
            }
        }
    }
}

/// `*` (any run) and `?` (one byte) matching, as Go's `filepath.Match` for file names.
fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_filepath_match() {
        assert!(wildcard_match(b"*.json", b"a.json"));
        assert!(wildcard_match(b"*.json", b".json"));
        assert!(!wildcard_match(b"*.json", b"a.yml"));
        assert!(wildcard_match(b"t?.yml", b"t1.yml"));
        assert!(!wildcard_match(b"t?.yml", b"t12.yml"));
        assert!(wildcard_match(b"*a*b*", b"xxaxxbxx"));
        assert!(!wildcard_match(b"*a*b", b"xxaxxbxx"));
    }

    fn config(files: &[&str]) -> FileSdConfig {
        FileSdConfig {
            files: files.iter().map(|s| s.to_string()).collect(),
            refresh_interval: crate::config::duration::Duration::from_secs(300),
        }
    }

    #[test]
    fn changes_are_noticed_and_a_broken_file_keeps_its_targets() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.json");
        std::fs::write(&f, r#"[{"targets":["h:1"],"labels":{"x":"1"}}]"#).unwrap();
        let mut d = FileDiscovery::new(vec![config(&["*.json"])], dir.path().to_path_buf());
        let mut problems = Vec::new();
        let groups = d.poll(&mut problems).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].targets, vec!["h:1".to_string()]);
        assert!(d.poll(&mut problems).is_none(), "nothing changed");

        std::fs::write(&f, r#"[{"targets":["h:1","h:2"]}]"#).unwrap();
        let groups = d.poll(&mut problems).unwrap();
        assert_eq!(groups[0].targets.len(), 2);

        std::fs::write(&f, "[not json").unwrap();
        assert!(d.poll(&mut problems).is_none());
        assert_eq!(problems.len(), 1);

        std::fs::remove_file(&f).unwrap();
        let groups = d.poll(&mut problems).unwrap();
        assert!(groups.is_empty());
    }
}
