//! The active-query tracker: at most `--query.max-concurrency` queries run at once (the rest
//! wait for a slot), and each running query is written into `<data>/queries.active`, so that
//! after a crash the next start can log the queries that were running — Prometheus's
//! `ActiveQueryTracker`, file layout included.
//!
//! File layout (Prometheus's): `1 + slots × 1000` bytes, zero-filled at start, byte 0 `[`.
//! Slot `i` covers bytes `1 + i·1000 .. 1 + (i+1)·1000`; a running query writes
//! `{"query":"<expr>","timestamp_sec":<unix seconds>}` at the slot's start and `,` in its last
//! byte, and finishing zero-fills the slot. Read back with the NULs removed and the last `,`
//! replaced by `]`, the file is a JSON array of the queries that never finished.
//!
//! The file is written with `pwrite` into the page cache, which outlives a crash of the
//! process; it is never fsynced, as Prometheus's mmap is not. A tracker without its file (it
//! could not be created) still limits concurrency: tracking is best effort, never a reason to
//! refuse a query.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use glommio::sync::Semaphore;

use crate::api::json;

/// The file's name inside the data directory.
pub const FILE_NAME: &str = "queries.active";

/// Bytes per slot, as Prometheus sizes them.
const ENTRY_SIZE: usize = 1000;

/// Limits and records the queries in flight on the router executor.
pub struct ActiveQueryTracker {
    slots: Semaphore,
    capacity: usize,
    free: RefCell<Vec<usize>>,
    file: Option<File>,
}

/// A running query's slot; dropping it clears the slot and lets a waiting query in.
pub struct ActiveQuery<'a> {
    tracker: &'a ActiveQueryTracker,
    index: usize,
}

impl ActiveQueryTracker {
    /// A tracker for `max_concurrent` queries writing `<dir>/queries.active`. Also returns
    /// the previous run's unfinished queries as a JSON array (`None` when there were none),
    /// or the error that kept the file from being read or created.
    pub fn open(dir: &Path, max_concurrent: usize) -> (Self, Result<Option<String>, io::Error>) {
        let path = dir.join(FILE_NAME);
        let unfinished = match std::fs::read(&path) {
            Ok(bytes) => Ok(unfinished_queries(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        };
        let mut tracker = Self::in_memory(max_concurrent);
        let report = match create_file(&path, tracker.capacity) {
            Ok(file) => {
                tracker.file = Some(file);
                unfinished
            }
            Err(e) => Err(e),
        };
        (tracker, report)
    }

    /// A tracker that limits concurrency and keeps no file (tests, tools).
    pub fn in_memory(max_concurrent: usize) -> Self {
        let capacity = max_concurrent.max(1);
        ActiveQueryTracker {
            slots: Semaphore::new(capacity as u64),
            capacity,
            free: RefCell::new((0..capacity).rev().collect()),
            file: None,
        }
    }

    /// Waits for a free slot, then records `query` in it.
    pub async fn insert(&self, query: &str) -> ActiveQuery<'_> {
        // Only a closed semaphore fails, and this one is never closed.
        let _ = self.slots.acquire(1).await;
        // The semaphore admits no more holders than there are free slots.
        let index = self.free.borrow_mut().pop().unwrap_or(0);
        if let Some(file) = &self.file {
            // Best effort: a failed write only loses this query's crash report.
            let _ = file.write_all_at(&entry_bytes(query, unix_seconds()), slot_offset(index));
        }
        ActiveQuery {
            tracker: self,
            index,
        }
    }

    /// Queries running now.
    pub fn running(&self) -> usize {
        self.capacity - self.free.borrow().len()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Drop for ActiveQuery<'_> {
    fn drop(&mut self) {
        let t = self.tracker;
        if let Some(file) = &t.file {
            let _ = file.write_all_at(&[0u8; ENTRY_SIZE], slot_offset(self.index));
        }
        t.free.borrow_mut().push(self.index);
        t.slots.signal(1);
    }
}

fn slot_offset(index: usize) -> u64 {
    1 + (index * ENTRY_SIZE) as u64
}

/// A fresh file: `[` and zeros, sized for every slot.
fn create_file(path: &Path, slots: usize) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.set_len(1 + (slots * ENTRY_SIZE) as u64)?;
    file.write_all_at(b"[", 0)?;
    Ok(file)
}

/// One slot's bytes: the JSON entry, zeros, and `,` last. A query too long for the slot is
/// cut (at a character boundary) until its entry fits.
fn entry_bytes(query: &str, timestamp_sec: u64) -> Vec<u8> {
    let mut cut = query.len();
    loop {
        let mut entry = Vec::with_capacity(ENTRY_SIZE);
        entry.extend_from_slice(br#"{"query":"#);
        json::write_string(&mut entry, &query[..cut]);
        entry.extend_from_slice(br#","timestamp_sec":"#);
        entry.extend_from_slice(timestamp_sec.to_string().as_bytes());
        entry.push(b'}');
        if entry.len() < ENTRY_SIZE || cut == 0 {
            entry.resize(ENTRY_SIZE - 1, 0);
            entry.push(b',');
            return entry;
        }
        // Escaping can grow the text, so cut by what is over, at least one byte.
        let over = entry.len() + 1 - ENTRY_SIZE;
        cut = cut.saturating_sub(over.max(1));
        while !query.is_char_boundary(cut) {
            cut -= 1;
        }
    }
}

/// The queries a previous run left in the file, as a JSON array; `None` when none.
fn unfinished_queries(bytes: &[u8]) -> Option<String> {
    let mut text: Vec<u8> = bytes.iter().copied().filter(|&b| b != 0).collect();
    if text.len() <= 1 {
        return None;
    }
    if let Some(last) = text.last_mut() {
        *last = b']';
    }
    Some(String::from_utf8_lossy(&text).into_owned())
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_fill_their_slot_and_read_back_as_a_json_array() {
        let e = entry_bytes("up{job=\"a\"}", 1_700_000_000);
        assert_eq!(e.len(), ENTRY_SIZE);
        assert_eq!(e[ENTRY_SIZE - 1], b',');
        let mut file = vec![0u8; 1 + 3 * ENTRY_SIZE];
        file[0] = b'[';
        file[1 + ENTRY_SIZE..1 + 2 * ENTRY_SIZE].copy_from_slice(&e);
        let text = unfinished_queries(&file).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v[0]["query"], "up{job=\"a\"}");
        assert_eq!(v[0]["timestamp_sec"], 1_700_000_000u64);
        assert_eq!(unfinished_queries(&[b'[', 0, 0]), None);
    }

    #[test]
    fn long_queries_are_cut_to_fit() {
        let long = "é".repeat(2000);
        let e = entry_bytes(&long, 1);
        assert_eq!(e.len(), ENTRY_SIZE);
        let text = String::from_utf8(e.into_iter().filter(|&b| b != 0).collect()).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim_end_matches(',')).unwrap();
        assert!(v["query"].as_str().unwrap().starts_with("éé"));
    }

    #[test]
    fn slots_are_reused_and_the_file_is_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let (tracker, report) = ActiveQueryTracker::open(dir.path(), 2);
        assert_eq!(report.unwrap(), None);
        glommio::LocalExecutor::default().run(async {
            let a = tracker.insert("a").await;
            let b = tracker.insert("b").await;
            assert_eq!(tracker.running(), 2);
            drop(a);
            let c = tracker.insert("c").await;
            assert_eq!(tracker.running(), 2);
            // A crash now leaves b and c in the file.
            let (_, report) = ActiveQueryTracker::open(dir.path(), 2);
            let v: serde_json::Value = serde_json::from_str(&report.unwrap().unwrap()).unwrap();
            let mut queries: Vec<&str> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["query"].as_str().unwrap())
                .collect();
            queries.sort();
            assert_eq!(queries, ["b", "c"]);
            drop((b, c));
        });
    }
}
