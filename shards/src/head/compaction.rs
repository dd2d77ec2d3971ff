//! What head compaction needs from the head: the chunks of a time range, to be copied into
//! a block, and truncation once the block is on disk (Prometheus's `truncateMemory`).
//!
//! Truncation drops every chunk that ends before the new minimum time, removes series left
//! without chunks from memory, the postings and the hash index, and raises the head's
//! `min_valid_time` so that nothing older is appended or replayed again. It never touches
//! files: deleting chunks_head files and WAL segments is the shard's job. Refs of removed
//! series are never handed out again, so a sender's stale ref is reported unknown, not
//! misattributed. (Symbols of removed series stay interned until restart.)

use super::{Head, HeadError, Interval, SeriesId};

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
            if last >= mint && s.head_chunk_min_time <= maxt {
                views.push(HeadChunkView {
                    min_time: s.head_chunk_min_time,
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

    /// Drops everything before `mint` (a block now holds it); see the module doc.
    pub fn truncate(&mut self, mint: i64) -> TruncateStats {
        self.set_min_valid_time(mint);
        let mut stats = TruncateStats::default();
        let mut emptied: Vec<u64> = Vec::new();
        for (r, s) in self.series.iter_mut() {
            stats.chunks_removed += s.retain_mmapped(|m| m.max_time >= mint) as u64;
            if s.head_chunk
                .as_ref()
                .and_then(|c| c.last_time())
                .is_some_and(|t| t < mint)
            {
                s.head_chunk = None;
                stats.chunks_removed += 1;
            }
            if s.mmapped.is_empty() && s.head_chunk.is_none() {
                emptied.push(r);
            }
        }
        let ids: Vec<SeriesId> = emptied.iter().map(|&r| r as SeriesId).collect();
        {
            let series = &self.series;
            self.postings.delete(&ids, |id| {
                series.get(u64::from(id)).map_or(&[], |s| s.labels())
            });
        }
        for &r in &emptied {
            if let Some(labels) = self.series_labels(r) {
                let hash = labels.hash();
                self.by_hash.remove(hash, r as SeriesId);
            }
            self.series.remove(r);
            self.tombstones.remove(&r);
            stats.series_removed += 1;
        }
        if self.series.live() == 0 {
            self.min_time = i64::MAX;
        } else if self.min_time < mint {
            self.min_time = mint;
        }
        stats
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
}
