//! What head compaction needs from the head: the chunks of a time range, to be copied into
//! a block, and truncation once the block is on disk (Prometheus's `truncateMemory`).
//!
//! Truncation drops every chunk that ends before the new minimum time, removes series left
//! without chunks from memory, the postings and the hash index, and raises the head's
//! `min_valid_time` so that nothing older is appended or replayed again. It can run a slice
//! of series at a time (`start_truncation`, `truncate_slice`): one pass took up to 2–6 ms
//! at 100,000 series, so tens of milliseconds at a million, which appends must not wait
//! for. It never touches files: deleting chunks_head files and WAL segments is the shard's
//! job. Refs of removed
//! series are never handed out again, so a sender's stale ref is reported unknown, not
//! misattributed. (Symbols of removed series stay interned until restart.)

use super::{Head, HeadError, Interval, SeriesId};
use crate::labels::interned::Pairs;

/// One chunk of a head series: in chunks_head (mmapped) or the open chunk.
#[derive(Debug, Clone, Copy)]
pub struct HeadChunkView<'a> {
    /// First and last sample timestamps (closed).
    pub min_time: i64,
    pub max_time: i64,
    /// How `data` is encoded: XOR, or XOR2 for a series with start timestamps.
    pub encoding: crate::chunkenc::Encoding,
    pub data: &'a [u8],
}

/// What `truncate` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TruncateStats {
    pub chunks_removed: u64,
    pub series_removed: u64,
}

impl Head {
    /// Raises the oldest time the head accepts and replays (never lowers it).
    pub fn set_min_valid_time(&mut self, t: i64) {
        self.min_valid_time = self.min_valid_time.max(t);
    }

    /// The chunks of series `r` overlapping `[mint, maxt]`, oldest first.
    pub fn chunks_overlapping<'h>(
        &'h self,
        r: u64,
        mint: i64,
        maxt: i64,
        out: &mut Vec<HeadChunkView<'h>>,
    ) -> Result<(), HeadError> {
        out.clear();
        let Some(s) = self.series(r) else {
            return Ok(());
        };
        let views = out;
        for m in s.mmapped_chunks() {
            if m.max_time >= mint && m.min_time <= maxt {
                let rec = self.chunks.chunk_record(m.chunk_ref)?;
                views.push(HeadChunkView {
                    min_time: m.min_time,
                    max_time: m.max_time,
                    encoding: rec.encoding,
                    data: rec.data,
                });
            }
        }
        if let (Some(c), Some(last)) = (s.head_chunk(), s.max_time()) {
            let first = s.head_chunk_min_time();
            if last >= mint && first <= maxt {
                views.push(HeadChunkView {
                    min_time: first,
                    max_time: last,
                    encoding: c.encoding(),
                    data: c.bytes(),
                });
            }
        }
        Ok(())
    }

    /// Refs of the series with a chunk overlapping `[mint, maxt]`, among refs
    /// `from..from + n` (so a caller can collect them a slice at a time).
    pub fn series_overlapping(&self, from: u64, n: u64, mint: i64, maxt: i64, out: &mut Vec<u64>) {
        let end = from.saturating_add(n).min(self.last_series_ref() + 1);
        for r in from..end {
            let Some(s) = self.series(r) else { continue };
            if let (Some(lo), Some(hi)) = (s.min_time(), s.max_time()) {
                if lo <= maxt && hi >= mint {
                    out.push(r);
                }
            }
        }
    }

    /// The deleted intervals of series `r` (closed, unsorted).
    pub fn series_tombstones(&self, r: u64) -> &[Interval] {
        self.tombstones.get(&r).map_or(&[], |v| v.as_slice())
    }

    /// Drops everything before `mint` (a block now holds it) in one call; see the module
    /// doc and `start_truncation` for the same in slices.
    pub fn truncate(&mut self, mint: i64) -> TruncateStats {
        let mut t = self.start_truncation(mint);
        while !self.truncate_slice(&mut t, u64::MAX) {}
        t.stats
    }

    /// Starts a truncation at `mint` that `truncate_slice` does a slice of series at a
    /// time, so that appends and reads can run between slices. From now on nothing older
    /// than `mint` is appended; series created meanwhile have nothing older, so only the
    /// refs handed out so far are visited. Between slices some series still hold chunks
    /// before `mint`: a read merges them with the block's identical ones (as it merges any
    /// overlap), and `time_range` keeps the old minimum until the last slice.
    pub fn start_truncation(&mut self, mint: i64) -> Truncation {
        self.set_min_valid_time(mint);
        Truncation {
            mint,
            next: 1,
            last: self.last_series_ref(),
            stats: TruncateStats::default(),
        }
    }

    /// Truncates the series of the next `n` refs: old chunks dropped, series left empty
    /// removed from memory, the postings and the hash index at once (in the same slice,
    /// so that no append can reach a series found empty before it is gone). Returns true
    /// once every ref is done, when the head's minimum time is raised.
    pub fn truncate_slice(&mut self, t: &mut Truncation, n: u64) -> bool {
        let mint = t.mint;
        let end = t.next.saturating_add(n).min(t.last.saturating_add(1));
        let mut emptied: Vec<u64> = Vec::new();
        for r in t.next..end {
            let Some(s) = self.series.get_mut(r) else {
                continue;
            };
            t.stats.chunks_removed += s.retain_mmapped(|m| m.max_time >= mint) as u64;
            if s.head_chunk
                .as_ref()
                .and_then(|c| c.last_time())
                .is_some_and(|last| last < mint)
            {
                s.head_chunk = None;
                t.stats.chunks_removed += 1;
            }
            if s.mmapped.is_empty() && s.head_chunk.is_none() {
                emptied.push(r);
            }
        }
        t.next = end;
        if !emptied.is_empty() {
            let ids: Vec<SeriesId> = emptied.iter().map(|&r| r as SeriesId).collect();
            let series = &self.series;
            self.postings.delete(&ids, |id| {
                series
                    .get(u64::from(id))
                    .map_or_else(Pairs::default, |s| s.labels().iter())
            });
        }
        for &r in &emptied {
            if self.series(r).is_some() {
                let hash = super::filed_hash(&self.series, &self.symbols, r as SeriesId);
                self.by_hash.remove(hash, r as SeriesId);
            }
            self.series.remove(r);
            self.unlogged.remove(&r);
            self.tombstones.remove(&r);
            t.stats.series_removed += 1;
        }
        if t.next <= t.last {
            return false;
        }
        if self.series.live() == 0 {
            self.min_time = i64::MAX;
        } else if self.min_time < mint {
            self.min_time = mint;
        }
        true
    }
}

/// A head truncation under way (`Head::start_truncation`).
#[derive(Debug)]
pub struct Truncation {
    mint: i64,
    /// The next ref to visit.
    next: u64,
    /// The last ref to visit: the highest handed out when the truncation started.
    last: u64,
    /// What was removed so far.
    pub stats: TruncateStats,
}

impl Truncation {
    pub fn mint(&self) -> i64 {
        self.mint
    }
}

#[cfg(test)]
mod tests {
    use crate::head::{AppendBatch, BatchSample, Head, HeadOptions, SeriesKey};
    use crate::index::{MatchType, Matcher};
    use crate::labels::Labels;

    #[test]
    fn truncate_drops_old_chunks_and_empty_series() {
        let dir = tempfile::tempdir().unwrap();
        let opts = HeadOptions {
            chunk_range: 1000,
            ..Default::default()
        };
        let (mut head, _) = Head::open(dir.path(), opts).unwrap();
        let l = |i: u32| Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]).unwrap();
        // Series 1 and 2 in [0, 1000); series 2 goes on to [1000, 2000).
        let mut b = AppendBatch {
            new_series: vec![l(1), l(2)],
            ..Default::default()
        };
        for t in (0..1000).step_by(100) {
            for i in 0..2 {
                b.samples.push(BatchSample {
                    series: SeriesKey::New(i),
                    t,
                    v: 1.0,
                });
            }
        }
        head.append_unlogged(&b).unwrap();
        let b = AppendBatch {
            new_series: vec![],
            samples: (1000..2000)
                .step_by(100)
                .map(|t| BatchSample {
                    series: SeriesKey::Ref(2),
                    t,
                    v: 2.0,
                })
                .collect(),
            start_timestamps: Vec::new(),
        };
        head.append_unlogged(&b).unwrap();
        let mut refs = Vec::new();
        head.series_overlapping(1, 10, 0, 999, &mut refs);
        assert_eq!(refs, [1, 2]);
        let mut views = Vec::new();
        head.chunks_overlapping(2, 0, 999, &mut views).unwrap();
        assert_eq!(
            (views.len(), views[0].min_time, views[0].max_time),
            (1, 0, 900)
        );

        let stats = head.truncate(1000);
        assert_eq!(stats.series_removed, 1);
        assert_eq!(head.num_series(), 1);
        assert!(head.series(1).is_none() && head.lookup(&l(1)).is_none());
        assert_eq!(head.lookup(&l(2)), Some(2));
        let all = Matcher::new(MatchType::Equal, "__name__", "m").unwrap();
        assert_eq!(head.select(&[all]), [2]);
        assert_eq!(head.time_range(), Some((1000, 1900)));
        let s = head
            .samples(2, i64::MIN, i64::MAX)
            .unwrap()
            .collect_checked()
            .unwrap();
        assert_eq!(s.first(), Some(&(1000, 2.0)));
        // Older samples are refused now; the series can come back with a new ref.
        let b = AppendBatch {
            new_series: vec![l(1)],
            samples: vec![
                BatchSample {
                    series: SeriesKey::New(0),
                    t: 999,
                    v: 1.0,
                },
                BatchSample {
                    series: SeriesKey::New(0),
                    t: 1950,
                    v: 1.0,
                },
            ],
            start_timestamps: Vec::new(),
        };
        let out = head.append_unlogged(&b).unwrap();
        assert_eq!(
            (out.series_refs[0], out.out_of_bounds, out.appended),
            (3, 1, 1)
        );
    }

    #[test]
    fn truncating_in_slices_with_appends_between_matches_one_call() {
        let l = |i: u32| Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]).unwrap();
        let opts = HeadOptions {
            chunk_range: 1000,
            ..Default::default()
        };
        // Series 1..=10 in [0, 1000); the odd ones go on to [1000, 2000).
        let fill = |head: &mut Head| {
            let mut b = AppendBatch {
                new_series: (1..=10).map(l).collect(),
                ..Default::default()
            };
            for t in (0..2000).step_by(100) {
                for i in 0..10u32 {
                    if t < 1000 || i % 2 == 0 {
                        b.samples.push(BatchSample {
                            series: SeriesKey::New(i),
                            t,
                            v: f64::from(i),
                        });
                    }
                }
            }
            head.append_unlogged(&b).unwrap();
        };
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (mut once, _) = Head::open(da.path(), opts.clone()).unwrap();
        let (mut sliced, _) = Head::open(db.path(), opts).unwrap();
        fill(&mut once);
        fill(&mut sliced);
        let want = once.truncate(1000);
        let mut t = sliced.start_truncation(1000);
        let mut slices = 0;
        loop {
            slices += 1;
            if sliced.truncate_slice(&mut t, 3) {
                break;
            }
            // Between slices: a series visited (1) and one not yet (9) get samples, and a
            // new series is created; the same happens to the head truncated at once.
            let at = 2000 + i64::from(slices);
            let b = AppendBatch {
                new_series: vec![l(100 + slices)],
                samples: vec![
                    BatchSample {
                        series: SeriesKey::Ref(1),
                        t: at,
                        v: 1.0,
                    },
                    BatchSample {
                        series: SeriesKey::Ref(9),
                        t: at,
                        v: 1.0,
                    },
                    BatchSample {
                        series: SeriesKey::New(0),
                        t: at,
                        v: 1.0,
                    },
                ],
                start_timestamps: Vec::new(),
            };
            sliced.append_unlogged(&b).unwrap();
            once.append_unlogged(&b).unwrap();
        }
        assert_eq!(slices, 4);
        assert_eq!(t.stats, want);
        assert_eq!(want.series_removed, 5);
        assert_eq!(sliced.time_range(), once.time_range());
        assert_eq!(sliced.num_series(), once.num_series());
        let all = Matcher::new(MatchType::Equal, "__name__", "m").unwrap();
        let all = std::slice::from_ref(&all);
        assert_eq!(sliced.select(all), once.select(all));
        for r in 1..=sliced.last_series_ref() {
            assert_eq!(sliced.series_labels(r), once.series_labels(r), "ref {r}");
            let samples = |h: &Head| {
                h.samples(r, i64::MIN, i64::MAX)
                    .map(|s| s.collect_checked().unwrap())
                    .ok()
            };
            assert_eq!(samples(&sliced), samples(&once), "ref {r}");
        }
    }
}
