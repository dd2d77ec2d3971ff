//! Appending a batch to the head in two steps around the WAL write.
//!
//! `prepare` resolves series (creating new ones), refuses samples the head cannot take
//! (out of bounds, out of order, a different value at the newest timestamp) and encodes one
//! series record and one samples record. The shard writes those to the WAL, and only once
//! they are there does `commit` apply the samples. A batch is therefore atomic on disk: a
//! crash leaves its samples record whole or not at all.
//!
//! Samples of the same series later in a batch are checked again at commit, against what
//! the batch itself appended, exactly as WAL replay will check them: the head after replay
//! is the head that acknowledged.

use crate::labels::Labels;
use crate::wal::record::{self, RefSample};

use super::series::Appendable;
use super::{AppendRefusal, Head, HeadError};

/// Which series a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesKey {
    /// A ref the sender learned from an earlier batch.
    Ref(u64),
    /// An index into `AppendBatch::new_series`.
    New(u32),
}

#[derive(Debug, Clone, Copy)]
pub struct BatchSample {
    pub series: SeriesKey,
    pub t: i64,
    pub v: f64,
}

/// A batch of samples for one shard: one target's scrape, one remote-write request, ...
#[derive(Debug, Default, Clone)]
pub struct AppendBatch {
    /// Label sets the sender has no ref for; the outcome returns their refs in this order.
    pub new_series: Vec<Labels>,
    pub samples: Vec<BatchSample>,
    /// Each sample's start timestamp (ms, 0 = none), aligned with `samples`, or empty when
    /// the sender has none. Kept only by a head that stores start timestamps.
    pub start_timestamps: Vec<i64>,
}

/// What happened to a batch, for the sender's cache and its per-scrape counters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The ref of each `new_series` entry, in order.
    pub series_refs: Vec<u64>,
    pub series_created: u32,
    pub appended: u32,
    pub out_of_order: u32,
    pub out_of_bounds: u32,
    pub duplicate_timestamp: u32,
    /// Identical duplicates of the newest sample, ignored as Prometheus ignores them.
    pub duplicates_ignored: u32,
    /// Refs the head does not know (the sender's cache is stale): resend with labels.
    pub unknown_refs: u32,
}

/// A validated batch: the WAL records to write and the samples to apply afterwards.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Series record (empty when no series needs logging) and samples record (empty when
    /// no sample was accepted).
    pub series_record: Vec<u8>,
    pub samples_record: Vec<u8>,
    samples: Vec<RefSample>,
    unlogged_series: Vec<u64>,
    outcome: AppendOutcome,
}

impl Prepared {
    /// The WAL records of this batch, in the order they must be logged.
    pub fn records(&self) -> impl Iterator<Item = &[u8]> {
        [
            self.series_record.as_slice(),
            self.samples_record.as_slice(),
        ]
        .into_iter()
        .filter(|r| !r.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.series_record.is_empty() && self.samples_record.is_empty()
    }

    /// Empties it for the next batch, keeping the buffers: at millions of samples per
    /// second, fresh buffers per batch cost more in page faults than the work itself.
    fn reset(&mut self) {
        self.series_record.clear();
        self.samples_record.clear();
        self.samples.clear();
        self.unlogged_series.clear();
        self.outcome = AppendOutcome::default();
    }
}

/// How many samples ahead `prepare` asks for a series' open chunk. With millions of series
/// the chunks' bytes are rarely in cache, and `appendable` (reading the chunk's sample count)
/// then waited for memory on every sample: 28 % of the server's CPU at 2.7 M samples/s with
/// 1 s scrapes. Fetches issued ahead overlap instead of queuing one by one: −4 to −7 % CPU
/// per sample at 1 M series (BENCHMARKS.md, `sat5`); most of the wait remains, likely
/// page walks (4 KiB pages over the whole heap), which prefetching the series as well
/// did not shorten.
const PREFETCH_AHEAD: usize = 8;

/// Series the unlogged set keeps room for once empty: a steady round of new series per batch.
const UNLOGGED_CAPACITY_KEPT: usize = 1024;

impl Head {
    /// Asks the CPU to bring the open chunk of `key`'s series into cache: its first line,
    /// which `appendable` reads, and its last, where `commit` appends. Only a hint: it never
    /// faults and never changes what the batch does.
    #[inline]
    fn prefetch_chunk(&self, key: SeriesKey, new_refs: &[u64]) {
        let r = match key {
            SeriesKey::Ref(r) => r,
            SeriesKey::New(i) => match new_refs.get(i as usize) {
                Some(&r) => r,
                None => return,
            },
        };
        if let Some(bytes) = self
            .series(r)
            .and_then(|s| s.head_chunk())
            .map(|c| c.bytes())
        {
            prefetch(bytes.as_ptr());
            if let Some(last) = bytes.last() {
                prefetch(last);
            }
        }
    }

    /// Validates `batch` and encodes its WAL records into `p` (whose buffers are reused).
    /// New series are created now (their records are logged with this batch or, if its WAL
    /// write fails, with a later one); samples are applied only by `commit`.
    pub fn prepare(&mut self, batch: &AppendBatch, p: &mut Prepared) -> Result<(), HeadError> {
        p.reset();
        for labels in &batch.new_series {
            let (r, created) = self.get_or_create(labels)?;
            p.outcome.series_created += u32::from(created);
            p.outcome.series_refs.push(r);
            if self.unlogged.contains(&r) {
                if p.series_record.is_empty() {
                    record::begin_series_record(&mut p.series_record);
                }
                record::encode_series_entry(r, labels, &mut p.series_record);
                p.unlogged_series.push(r);
            }
        }
        let min_valid = self.min_valid_time();
        p.samples.reserve(batch.samples.len());
        let keep_starts = self.opts.store_start_timestamps;
        for ahead in batch.samples.iter().take(PREFETCH_AHEAD) {
            self.prefetch_chunk(ahead.series, &p.outcome.series_refs);
        }
        for (i, s) in batch.samples.iter().enumerate() {
            if let Some(ahead) = batch.samples.get(i + PREFETCH_AHEAD) {
                self.prefetch_chunk(ahead.series, &p.outcome.series_refs);
            }
            let st = if keep_starts {
                batch.start_timestamps.get(i).copied().unwrap_or(0)
            } else {
                0
            };
            let r = match s.series {
                SeriesKey::Ref(r) => r,
                SeriesKey::New(i) => match p.outcome.series_refs.get(i as usize) {
                    Some(&r) => r,
                    None => {
                        p.outcome.unknown_refs += 1;
                        continue;
                    }
                },
            };
            let Some(series) = self.series(r) else {
                p.outcome.unknown_refs += 1;
                continue;
            };
            // A `New` key's series record is already in this batch. A known ref whose record
            // never reached the WAL (its batch's write failed) gets its record now; that is
            // rare, so the linear search stays off the hot path.
            let by_ref = matches!(s.series, SeriesKey::Ref(_));
            if by_ref
                && !self.unlogged.is_empty()
                && self.unlogged.contains(&r)
                && !p.unlogged_series.contains(&r)
            {
                if let Some(labels) = self.series_labels(r) {
                    if p.series_record.is_empty() {
                        record::begin_series_record(&mut p.series_record);
                    }
                    record::encode_series_entry(r, &labels, &mut p.series_record);
                    p.unlogged_series.push(r);
                }
            }
            match series.appendable(s.t, s.v, min_valid) {
                Appendable::Yes => p.samples.push(RefSample {
                    series_ref: r,
                    t: s.t,
                    v: s.v,
                    st,
                }),
                Appendable::Duplicate => p.outcome.duplicates_ignored += 1,
                Appendable::No(why) => {
                    self.count_refusal(why);
                    match why {
                        AppendRefusal::OutOfOrder => p.outcome.out_of_order += 1,
                        AppendRefusal::DuplicateTimestamp => p.outcome.duplicate_timestamp += 1,
                        AppendRefusal::OutOfBounds => p.outcome.out_of_bounds += 1,
                    }
                }
            }
        }
        self.stats.unknown_series_refs += u64::from(p.outcome.unknown_refs);
        if !p.samples.is_empty() {
            record::encode_samples_for(&p.samples, keep_starts, &mut p.samples_record);
        }
        Ok(())
    }

    /// Applies a prepared batch whose records are in the WAL.
    pub fn commit(&mut self, p: &mut Prepared) -> Result<AppendOutcome, HeadError> {
        for r in &p.unlogged_series {
            self.unlogged.remove(r);
        }
        // A burst of new series (a first scrape round) fills the set and leaves it empty; its
        // table would stay at the burst's size (1.2 MB per shard at 1 M series).
        if self.unlogged.is_empty() && self.unlogged.capacity() > UNLOGGED_CAPACITY_KEPT {
            self.unlogged.shrink_to(UNLOGGED_CAPACITY_KEPT);
        }
        let mut outcome = std::mem::take(&mut p.outcome);
        let before = self.stats.clone();
        for s in &p.samples {
            if self.append_sample(s.series_ref, s.st, s.t, s.v)? {
                outcome.appended += 1;
            }
        }
        // Refusals found only now: later samples of a series in the same batch.
        let delta = |now: u64, then: u64| (now - then) as u32;
        outcome.out_of_order += delta(self.stats.out_of_order_samples, before.out_of_order_samples);
        outcome.duplicate_timestamp += delta(
            self.stats.duplicate_timestamp_samples,
            before.duplicate_timestamp_samples,
        );
        outcome.duplicates_ignored += delta(
            self.stats.duplicate_samples_ignored,
            before.duplicate_samples_ignored,
        );
        p.reset();
        self.renew_chunk_heap_when_sparse();
        Ok(outcome)
    }

    /// Prepares and commits a batch without a WAL, for tests and benchmarks of the head.
    pub fn append_unlogged(&mut self, batch: &AppendBatch) -> Result<AppendOutcome, HeadError> {
        let mut p = Prepared::default();
        self.prepare(batch, &mut p)?;
        self.commit(&mut p)
    }
}

/// A read prefetch of the cache line holding `p` (a no-op off x86-64).
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::HeadOptions;

    fn labels(name: &str, i: u32) -> Labels {
        Labels::from_pairs([("__name__", name.to_string()), ("i", i.to_string())]).unwrap()
    }

    fn batch(new: Vec<Labels>, samples: &[(SeriesKey, i64, f64)]) -> AppendBatch {
        AppendBatch {
            new_series: new,
            samples: samples
                .iter()
                .map(|&(series, t, v)| BatchSample { series, t, v })
                .collect(),
            start_timestamps: Vec::new(),
        }
    }

    #[test]
    fn prepare_commit_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let (mut head, _) = Head::open(dir.path(), HeadOptions::default()).unwrap();
        let b = batch(
            vec![labels("a", 1), labels("a", 2)],
            &[
                (SeriesKey::New(0), 1000, 1.0),
                (SeriesKey::New(1), 1000, 2.0),
            ],
        );
        let mut p = Prepared::default();
        head.prepare(&b, &mut p).unwrap();
        assert_eq!(p.records().count(), 2);
        let out = head.commit(&mut p).unwrap();
        assert_eq!(out.series_refs, [1, 2]);
        assert_eq!(out.appended, 2);

        let b = batch(
            vec![],
            &[
                (SeriesKey::Ref(1), 1000, 1.0), // identical duplicate: ignored
                (SeriesKey::Ref(2), 1000, 3.0), // different value at the same time
                (SeriesKey::Ref(1), 999, 1.0),  // out of order
                (SeriesKey::Ref(9), 2000, 1.0), // unknown
                (SeriesKey::Ref(1), 2000, 1.5),
                (SeriesKey::Ref(1), 1500, 1.5), // out of order within the batch
            ],
        );
        let mut p = Prepared::default();
        head.prepare(&b, &mut p).unwrap();
        assert!(p.series_record.is_empty());
        let out = head.commit(&mut p).unwrap();
        assert_eq!(
            out,
            AppendOutcome {
                series_refs: vec![],
                series_created: 0,
                appended: 1,
                out_of_order: 2,
                out_of_bounds: 0,
                duplicate_timestamp: 1,
                duplicates_ignored: 1,
                unknown_refs: 1
            }
        );
        // Far behind the head's max time: out of bounds (max time - 1 h).
        let b = batch(
            vec![labels("b", 1)],
            &[(SeriesKey::New(0), 2000 - 3_600_001, 1.0)],
        );
        let out = head.append_unlogged(&b).unwrap();
        assert_eq!(out.out_of_bounds, 1);
        assert_eq!(head.stats.samples_appended, 3);
        assert_eq!(head.stats.out_of_order_samples, 2);
    }

    #[test]
    fn a_burst_of_new_series_leaves_no_unlogged_table_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (mut head, _) = Head::open(dir.path(), HeadOptions::default()).unwrap();
        let n = 20_000u32;
        let new: Vec<Labels> = (0..n).map(|i| labels("u", i)).collect();
        let first: Vec<_> = (0..n).map(|i| (SeriesKey::New(i), 0, 1.0)).collect();
        let mut p = Prepared::default();
        head.prepare(&batch(new, &first), &mut p).unwrap();
        assert!(head.unlogged.capacity() >= n as usize);
        head.commit(&mut p).unwrap();
        assert!(head.unlogged.is_empty());
        assert!(head.unlogged.capacity() <= 2 * UNLOGGED_CAPACITY_KEPT);
    }

    /// A renewal of the chunk heap moves every open chunk: what reads back, and what later
    /// appends add, is unchanged.
    #[test]
    fn open_chunks_survive_a_chunk_heap_renewal() {
        let dir = tempfile::tempdir().unwrap();
        let (mut head, _) = Head::open(dir.path(), HeadOptions::default()).unwrap();
        let n = 500u32;
        let new: Vec<Labels> = (0..n).map(|i| labels("r", i)).collect();
        let value = |i: u32, k: i64| f64::from(i) * 0.37 + (k as f64).sqrt();
        let first: Vec<_> = (0..n)
            .map(|i| (SeriesKey::New(i), 0, value(i, 0)))
            .collect();
        let refs = head
            .append_unlogged(&batch(new, &first))
            .unwrap()
            .series_refs;
        let append_round = |head: &mut Head, k: i64| {
            let s: Vec<_> = refs
                .iter()
                .zip(0..n)
                .map(|(&r, i)| (SeriesKey::Ref(r), k * 10_000, value(i, k)))
                .collect();
            head.append_unlogged(&batch(vec![], &s)).unwrap();
        };
        let read_all = |head: &Head| -> Vec<Vec<(i64, f64, i64)>> {
            refs.iter()
                .map(|&r| {
                    let s = head.samples(r, i64::MIN, i64::MAX).unwrap();
                    s.collect_checked_with_starts().unwrap()
                })
                .collect()
        };
        for k in 1..40 {
            append_round(&mut head, k);
        }
        let before = read_all(&head);
        head.renew_chunk_heap();
        assert_eq!(read_all(&head), before);
        assert_eq!(head.stats.chunk_heap_renewals, 1);
        for k in 40..60 {
            append_round(&mut head, k);
        }
        let after = read_all(&head);
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(a.len(), b.len() + 20);
            assert_eq!(&a[..b.len()], &b[..]);
        }
    }

    #[test]
    fn out_of_bounds_check_can_be_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        let opts = HeadOptions {
            reject_out_of_bounds: false,
            ..HeadOptions::default()
        };
        let (mut head, _) = Head::open(dir.path(), opts).unwrap();
        let b = batch(
            vec![labels("a", 1)],
            &[(SeriesKey::New(0), 100_000_000, 1.0)],
        );
        head.append_unlogged(&b).unwrap();
        // Another series, far behind the head's max time: accepted.
        let b = batch(vec![labels("b", 1)], &[(SeriesKey::New(0), 0, 1.0)]);
        let out = head.append_unlogged(&b).unwrap();
        assert_eq!((out.appended, out.out_of_bounds), (1, 0));
    }

    #[test]
    fn series_of_a_failed_batch_are_logged_later() {
        let dir = tempfile::tempdir().unwrap();
        let (mut head, _) = Head::open(dir.path(), HeadOptions::default()).unwrap();
        let b = batch(vec![labels("a", 1)], &[(SeriesKey::New(0), 1000, 1.0)]);
        let mut failed = Prepared::default();
        head.prepare(&b, &mut failed).unwrap();
        assert!(!failed.series_record.is_empty());
        // The WAL write failed: `failed` is never committed.
        let b = batch(vec![], &[(SeriesKey::Ref(1), 1000, 1.0)]);
        let mut p = Prepared::default();
        head.prepare(&b, &mut p).unwrap();
        assert!(!p.series_record.is_empty(), "series record must be retried");
        let out = head.commit(&mut p).unwrap();
        assert_eq!(out.appended, 1);
        let mut p = Prepared::default();
        head.prepare(&b, &mut p).unwrap();
        assert!(p.series_record.is_empty());
    }
}
