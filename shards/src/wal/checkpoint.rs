//! WAL checkpoints, `wal/checkpoint.NNNNNNNN/` (spec §9.6): the records of the previous
//! checkpoint and of segments `first..=last` that still matter after a head truncation,
//! rewritten as ordinary WAL segments, so those segments can be deleted.
//!
//! Kept, as Prometheus keeps them: series records of series still in the head, samples at
//! or after the truncation time `mint` of such series, tombstones of such series whose
//! interval ends at or after `mint`. Dropped: everything else (promcore writes no exemplar,
//! metadata or histogram records; unknown types are dropped like Prometheus drops them).
//! The checkpoint is written to `checkpoint.N.tmp`, closed (fsynced), renamed to
//! `checkpoint.N` and the WAL directory fsynced; only then are segments `<= N` and older
//! checkpoints deleted. A crash at any point leaves either the old state or the new one.
//!
//! Work is done in steps of a bounded number of records (`step`), so that the shard can
//! interleave appends; a step stops where the next WAL segment must be read whole, which a
//! caller on an executor does on another thread (`take_reader_to_load`), and the close is
//! split likewise (`close`, then `CheckpointFiles::complete`). This file never decides
//! which series are alive (the caller's `keep` does) or when to checkpoint.

use std::path::{Path, PathBuf};

use super::reader::Next;
use super::record::{self, RefSample, RefSeries, Stone};
use super::{
    checkpoint_name, last_checkpoint, list_segments, SegmentFs, Wal, WalError, WalOptions,
    WalReader,
};

/// What a checkpoint kept and dropped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckpointStats {
    pub index: u64,
    pub records_read: u64,
    pub series_kept: u64,
    pub series_dropped: u64,
    pub samples_kept: u64,
    pub samples_dropped: u64,
    pub tombstones_kept: u64,
    pub tombstones_dropped: u64,
    pub other_records_dropped: u64,
    pub segments_deleted: u64,
    pub checkpoints_deleted: u64,
}

/// Which segments a WAL truncation folds into a checkpoint, as Prometheus decides it:
/// given the WAL's first and last segment *before* a new segment was started for the
/// truncation, the lower two thirds of `first..last` (the last one excluded). `None` when
/// that is less than two segments, not worth a checkpoint yet.
pub fn segments_to_checkpoint(first: u64, last_before_cut: u64) -> Option<(u64, u64)> {
    let last = last_before_cut.checked_sub(1)?;
    let last = first + (last.saturating_sub(first)) * 2 / 3;
    (last > first).then_some((first, last))
}

pub struct Checkpointer<F: SegmentFs> {
    wal_dir: PathBuf,
    tmp: PathBuf,
    last: u64,
    mint: i64,
    /// Still to read, the next one last.
    readers: Vec<WalReader>,
    writer: Option<Wal<F>>,
    buf: Vec<u8>,
    ends: Vec<usize>,
    series: Vec<RefSeries>,
    samples: Vec<RefSample>,
    stones: Vec<Stone>,
    done: bool,
    /// The next record lies in a segment not read yet (see `take_reader_to_load`).
    load_wanted: bool,
    pub stats: CheckpointStats,
}

/// The file work that completes a checkpoint once its writer is closed: the rename into
/// place and the deletion of what it replaces. Plain blocking calls, `Send`, so that it
/// can run off the executor.
pub struct CheckpointFiles {
    wal_dir: PathBuf,
    tmp: PathBuf,
    last: u64,
    stats: CheckpointStats,
}

impl<F: SegmentFs> Checkpointer<F> {
    /// Starts the checkpoint of segments `first..=last` of `wal_dir` (plus the newest
    /// earlier checkpoint) for a head truncated at `mint`.
    pub async fn start(
        fs: F,
        wal_dir: &Path,
        first: u64,
        last: u64,
        mint: i64,
    ) -> Result<Self, WalError> {
        // A checkpoint numbers its segments from 0: it is read by a reader of its own.
        let mut readers = Vec::new();
        let mut from = first;
        if let Some((idx, dir)) = last_checkpoint(wal_dir)? {
            if idx <= last {
                readers.push(WalReader::open(&dir)?);
                from = from.max(idx + 1);
            }
        }
        readers.push(WalReader::open_range(wal_dir, from, last)?);
        readers.reverse();
        let tmp = wal_dir.join(format!("{}.tmp", checkpoint_name(last)));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| WalError::io("removing", &tmp, e))?;
        }
        let writer = Wal::open(fs, &tmp, WalOptions::default()).await?;
        Ok(Checkpointer {
            wal_dir: wal_dir.to_path_buf(),
            tmp,
            last,
            mint,
            readers,
            writer: Some(writer),
            buf: Vec::new(),
            ends: Vec::new(),
            series: Vec::new(),
            samples: Vec::new(),
            stones: Vec::new(),
            done: false,
            load_wanted: false,
            stats: CheckpointStats {
                index: last,
                ..Default::default()
            },
        })
    }

    /// Whether the last `step` stopped at a segment not read yet. Reading it is a blocking
    /// read of a whole file; a caller on an executor takes the reader out
    /// (`take_reader_to_load`), reads it elsewhere and puts it back (`put_reader`). If
    /// nobody does, the next `step` reads it itself.
    pub fn wants_load(&self) -> bool {
        self.load_wanted
    }

    /// The reader whose next segment must be read (`WalReader::load_next_segment`), taken
    /// out until `put_reader`; `None` unless `wants_load`.
    pub fn take_reader_to_load(&mut self) -> Option<WalReader> {
        if !self.load_wanted {
            return None;
        }
        self.load_wanted = false;
        self.readers.pop()
    }

    /// Puts back the reader `take_reader_to_load` gave out.
    pub fn put_reader(&mut self, reader: WalReader) {
        self.readers.push(reader);
    }

    /// Reads and rewrites up to `max_records` records; `keep(ref)` says whether a series is
    /// still in the head. Returns true once every record has been read. Stops early at a
    /// segment not read yet (`wants_load`).
    pub async fn step(
        &mut self,
        keep: impl Fn(u64) -> bool,
        max_records: usize,
    ) -> Result<bool, WalError> {
        if self.done {
            return Ok(true);
        }
        self.buf.clear();
        self.ends.clear();
        for _ in 0..max_records {
            let Some(reader) = self.readers.last_mut() else {
                self.done = true;
                break;
            };
            if std::mem::take(&mut self.load_wanted) {
                reader.load_next_segment()?;
            }
            let rec = match reader.next_loaded_record()? {
                Next::Record(rec) => rec,
                Next::Load => {
                    self.load_wanted = true;
                    break;
                }
                Next::End => {
                    self.readers.pop();
                    continue;
                }
            };
            self.stats.records_read += 1;
            let start = self.buf.len();
            match record::record_type(rec) {
                Some(record::SERIES) => {
                    self.series.clear();
                    record::decode_series(rec, &mut self.series)?;
                    let before = self.series.len();
                    self.series.retain(|s| keep(s.series_ref));
                    self.stats.series_dropped += (before - self.series.len()) as u64;
                    self.stats.series_kept += self.series.len() as u64;
                    if !self.series.is_empty() {
                        record::encode_series(&self.series, &mut self.buf);
                    }
                }
                Some(t @ (record::SAMPLES | record::SAMPLES_V2)) => {
                    self.samples.clear();
                    record::decode_any_samples(rec, &mut self.samples)?;
                    let before = self.samples.len();
                    let mint = self.mint;
                    self.samples.retain(|s| s.t >= mint && keep(s.series_ref));
                    self.stats.samples_dropped += (before - self.samples.len()) as u64;
                    self.stats.samples_kept += self.samples.len() as u64;
                    if !self.samples.is_empty() {
                        // A V2 record stays V2 (start timestamps were being stored).
                        record::encode_samples_for(
                            &self.samples,
                            t == record::SAMPLES_V2,
                            &mut self.buf,
                        );
                    }
                }
                Some(record::TOMBSTONES) => {
                    self.stones.clear();
                    record::decode_tombstones(rec, &mut self.stones)?;
                    let mint = self.mint;
                    for s in &mut self.stones {
                        let before = s.intervals.len();
                        if keep(s.series_ref) {
                            s.intervals.retain(|&(_, maxt)| maxt >= mint);
                        } else {
                            s.intervals.clear();
                        }
                        self.stats.tombstones_dropped += (before - s.intervals.len()) as u64;
                        self.stats.tombstones_kept += s.intervals.len() as u64;
                    }
                    self.stones.retain(|s| !s.intervals.is_empty());
                    if !self.stones.is_empty() {
                        record::encode_tombstones(&self.stones, &mut self.buf);
                    }
                }
                _ => self.stats.other_records_dropped += 1,
            }
            if self.buf.len() > start {
                self.ends.push(self.buf.len());
            }
        }
        if !self.ends.is_empty() {
            let mut start = 0;
            let recs: Vec<&[u8]> = self
                .ends
                .iter()
                .map(|&end| {
                    let r = &self.buf[start..end];
                    start = end;
                    r
                })
                .collect();
            if let Some(w) = self.writer.as_mut() {
                w.log(&recs)?;
                w.flush().await?;
                crate::crash_point::reached(crate::crash_point::WAL_CHECKPOINT_STEP);
            }
        }
        Ok(self.done)
    }

    /// Closes and renames the checkpoint into place, then deletes the segments it folds
    /// and older checkpoints. Call once `step` returned true.
    pub async fn finish(self) -> Result<CheckpointStats, WalError> {
        self.close().await?.complete()
    }

    /// The first part of `finish`: the checkpoint's writer closed (fsynced). The rest is
    /// `CheckpointFiles::complete`.
    pub async fn close(mut self) -> Result<CheckpointFiles, WalError> {
        if let Some(w) = self.writer.take() {
            w.close().await?;
        }
        Ok(CheckpointFiles {
            wal_dir: self.wal_dir,
            tmp: self.tmp,
            last: self.last,
            stats: self.stats,
        })
    }
}

impl CheckpointFiles {
    /// Renames the closed checkpoint into place, then deletes the segments it folds and
    /// older checkpoints.
    pub fn complete(mut self) -> Result<CheckpointStats, WalError> {
        let dst = self.wal_dir.join(checkpoint_name(self.last));
        if dst.exists() {
            std::fs::remove_dir_all(&dst).map_err(|e| WalError::io("removing", &dst, e))?;
        }
        std::fs::rename(&self.tmp, &dst).map_err(|e| WalError::io("renaming", &dst, e))?;
        sync_dir(&self.wal_dir)?;
        for s in list_segments(&self.wal_dir)? {
            if s.index <= self.last {
                std::fs::remove_file(&s.path)
                    .map_err(|e| WalError::io("deleting WAL segment", &s.path, e))?;
                self.stats.segments_deleted += 1;
            }
        }
        for e in std::fs::read_dir(&self.wal_dir)
            .map_err(|e| WalError::io("listing", &self.wal_dir, e))?
        {
            let e = e.map_err(|e| WalError::io("listing", &self.wal_dir, e))?;
            let name = e.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("checkpoint.")) else {
                continue;
            };
            let idx = rest.strip_suffix(".tmp").unwrap_or(rest);
            let older = idx
                .parse::<u64>()
                .is_ok_and(|i| i < self.last || (i == self.last && rest.ends_with(".tmp")));
            if older {
                std::fs::remove_dir_all(e.path())
                    .map_err(|err| WalError::io("deleting checkpoint", &e.path(), err))?;
                self.stats.checkpoints_deleted += 1;
            }
        }
        sync_dir(&self.wal_dir)?;
        Ok(self.stats)
    }
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("fsyncing", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_segments() {
        // Prometheus: last-- (never the newest), then the lower two thirds.
        assert_eq!(segments_to_checkpoint(0, 0), None);
        assert_eq!(segments_to_checkpoint(0, 1), None);
        assert_eq!(segments_to_checkpoint(0, 2), None);
        assert_eq!(segments_to_checkpoint(0, 3), Some((0, 1)));
        assert_eq!(segments_to_checkpoint(0, 10), Some((0, 6)));
        assert_eq!(segments_to_checkpoint(5, 7), None);
        assert_eq!(segments_to_checkpoint(5, 8), Some((5, 6)));
        assert_eq!(segments_to_checkpoint(5, 9), Some((5, 7)));
    }
}
