//! Reads over a shard's head and blocks together, for callers that ask about series and
//! samples without caring where they live (Prometheus's merged `Querier`).
//!
//! `select` runs the matchers against every block overlapping the time range and against
//! the head, and merges what they return by label set: one `QuerySeries` per distinct
//! labels, sorted. Its samples are the union of its sources' samples in the range, oldest
//! first, with tombstones applied; where sources overlap (overlapping blocks, or a head
//! replayed over a block after a crash) a timestamp present in several is returned once,
//! the value of the source that starts earliest winning, as Prometheus's chained merge
//! keeps one. This file owns merging; it never decides which blocks exist or compacts.

use std::cell::Cell;

use thiserror::Error;

use crate::block::{Block, BlockError};
use crate::head::{Head, HeadError};
use crate::index::matcher::Matcher;
use crate::index::writer::ChunkMeta;
use crate::label_generation::head_overlaps;
use crate::labels::Labels;
use crate::string_list::StringList;

#[derive(Debug, Error)]
pub enum QueryError {
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error(transparent)]
    Head(#[from] HeadError),
}

/// Where one series' samples live.
#[derive(Debug, Clone)]
enum Source {
    /// Index into the querier's blocks, the series ref there and its chunk metas.
    Block(usize, u32, Vec<ChunkMeta>),
    Head(u64),
}

/// One series of a selection: its labels and where its samples are.
#[derive(Debug, Clone)]
pub struct QuerySeries {
    pub labels: Labels,
    sources: Vec<Source>,
}

pub struct Querier<'a> {
    head: &'a Head,
    /// The blocks overlapping the range, by min time.
    blocks: Vec<&'a Block>,
    mint: i64,
    maxt: i64,
}

impl<'a> Querier<'a> {
    /// A querier over samples with `mint <= t <= maxt`.
    pub fn new(head: &'a Head, blocks: &'a [Block], mint: i64, maxt: i64) -> Self {
        let mut blocks: Vec<&Block> = blocks
            .iter()
            .filter(|b| b.meta().overlaps_closed(mint, maxt))
            .collect();
        blocks.sort_by_key(|b| b.meta().min_time);
        Querier {
            head,
            blocks,
            mint,
            maxt,
        }
    }

    /// The series matching every matcher with a chunk in the range, merged by labels,
    /// sorted by labels.
    ///
    /// Each source gives a sorted run: a block's series refs ascend in label order (the
    /// index format requires it), the head's are sorted here. One run (one block, or the
    /// head alone: the usual case) is the answer as it is; several are concatenated in
    /// source order and stable-sorted, which merges the runs and keeps, for a label set in
    /// several sources, its sources in block order, head last.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<QuerySeries>, QueryError> {
        let mut runs: Vec<Vec<QuerySeries>> = Vec::with_capacity(self.blocks.len() + 1);
        let mut metas = Vec::new();
        for (i, b) in self.blocks.iter().enumerate() {
            let refs = b.select(matchers)?;
            let mut run = Vec::with_capacity(refs.len());
            for r in refs {
                let labels = b.series(r, &mut metas)?;
                metas.retain(|c| c.max_time >= self.mint && c.min_time <= self.maxt);
                if metas.is_empty() {
                    continue;
                }
                run.push(QuerySeries {
                    labels,
                    sources: vec![Source::Block(i, r, std::mem::take(&mut metas))],
                });
            }
            // Guards the merge against a block written out of order by another tool.
            if !run.is_sorted_by(|a, b| a.labels <= b.labels) {
                run.sort_by(|a, b| a.labels.cmp(&b.labels));
            }
            runs.push(run);
        }
        let mut run = Vec::new();
        for r in self.head.select(matchers) {
            let Some(s) = self.head.series(r) else {
                continue;
            };
            let in_range = match (s.min_time(), s.max_time()) {
                (Some(lo), Some(hi)) => lo <= self.maxt && hi >= self.mint,
                _ => false,
            };
            if !in_range {
                continue;
            }
            if let Some(labels) = self.head.series_labels(r) {
                run.push(QuerySeries {
                    labels,
                    sources: vec![Source::Head(r)],
                });
            }
        }
        run.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        runs.push(run);
        runs.retain(|r| !r.is_empty());
        if runs.len() <= 1 {
            return Ok(runs.pop().unwrap_or_default());
        }
        let mut all: Vec<QuerySeries> = runs.into_iter().flatten().collect();
        all.sort_by(|a, b| a.labels.cmp(&b.labels));
        let mut out: Vec<QuerySeries> = Vec::with_capacity(all.len());
        for s in all {
            match out.last_mut() {
                Some(prev) if prev.labels == s.labels => prev.sources.extend(s.sources),
                _ => out.push(s),
            }
        }
        Ok(out)
    }

    /// The samples of a selected series in the range, oldest first, each timestamp once.
    pub fn samples(&self, s: &QuerySeries) -> Result<Vec<(i64, f64)>, QueryError> {
        let mut parts: Vec<Vec<(i64, f64)>> = Vec::with_capacity(s.sources.len());
        for src in &s.sources {
            let part = match src {
                Source::Block(i, r, metas) => self.blocks[*i]
                    .samples(*r, metas, self.mint, self.maxt)?
                    .collect_checked()?,
                Source::Head(r) => self
                    .head
                    .samples(*r, self.mint, self.maxt)?
                    .collect_checked()?,
            };
            if !part.is_empty() {
                parts.push(part);
            }
        }
        Ok(merge(parts, |p| p.0))
    }

    /// As `samples`, each with its start timestamp (0 = none) as `(t, v, st)`. Blocks keep
    /// none (they are written 2.x-readable), so only head samples can have one.
    pub fn samples_with_starts(&self, s: &QuerySeries) -> Result<Vec<(i64, f64, i64)>, QueryError> {
        let mut parts: Vec<Vec<(i64, f64, i64)>> = Vec::with_capacity(s.sources.len());
        for src in &s.sources {
            let part = match src {
                Source::Block(i, r, metas) => {
                    let mut it = self.blocks[*i].samples(*r, metas, self.mint, self.maxt)?;
                    let mut part = Vec::new();
                    while let Some((t, v)) = it.next_checked()? {
                        part.push((t, v, 0));
                    }
                    part
                }
                Source::Head(r) => self
                    .head
                    .samples(*r, self.mint, self.maxt)?
                    .collect_checked_with_starts()?,
            };
            if !part.is_empty() {
                parts.push(part);
            }
        }
        Ok(merge(parts, |p| p.0))
    }

    /// As `samples_with_starts`, each sample handed to `push` instead: a series with one
    /// source, the usual case, is decoded straight into the caller's buffers with no list
    /// of its own.
    pub fn for_each_sample(
        &self,
        s: &QuerySeries,
        mut push: impl FnMut(i64, f64, i64),
    ) -> Result<(), QueryError> {
        match s.sources.as_slice() {
            [Source::Block(i, r, metas)] => {
                let mut it = self.blocks[*i].samples(*r, metas, self.mint, self.maxt)?;
                while let Some((t, v)) = it.next_checked()? {
                    push(t, v, 0);
                }
            }
            [Source::Head(r)] => {
                let mut it = self.head.samples(*r, self.mint, self.maxt)?;
                while let Some((t, v)) = it.next_checked()? {
                    push(t, v, it.start_timestamp());
                }
            }
            _ => {
                for (t, v, st) in self.samples_with_starts(s)? {
                    push(t, v, st);
                }
            }
        }
        Ok(())
    }

    /// The head, when label requests over the range read it (`label_generation::head_overlaps`:
    /// its samples' span overlaps the range).
    fn label_head(&self) -> Option<&'a Head> {
        head_overlaps(self.head.time_range(), self.mint, self.maxt).then_some(self.head)
    }

    /// Sorted label names of the series matching `matchers` in the blocks overlapping the
    /// range and in the head if it does (Prometheus does not look at chunk times here); with
    /// no matcher, read from the indexes' label tables, no series visited.
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<StringList, QueryError> {
        let mut lists: Vec<Vec<&str>> = Vec::with_capacity(self.blocks.len() + 1);
        // As Prometheus's block and head index readers answer it: the series the matchers
        // select in each overlapping block and in the head, whatever their chunks' times.
        for b in &self.blocks {
            lists.push(if matchers.is_empty() {
                b.index().label_names()
            } else {
                b.index().label_names_for(&b.select(matchers)?)?
            });
        }
        if let Some(head) = self.label_head() {
            lists.push(head.label_names(matchers));
        }
        Ok(StringList::merge(lists.iter().map(|l| l.iter().copied())))
    }

    /// Sorted values of label `name` among the series matching `matchers` in the blocks
    /// overlapping the range and in the head if it does; with no matcher, from the label
    /// tables. Every source is
    /// sorted and borrowed: the answer is their merge, one copy of each value.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<StringList, QueryError> {
        if matchers.is_empty() {
            return self.all_label_values(name);
        }
        let mut lists: Vec<Vec<&str>> = Vec::with_capacity(self.blocks.len() + 1);
        for b in &self.blocks {
            lists.push(b.index().label_values_matching(name, matchers)?);
        }
        if let Some(head) = self.label_head() {
            lists.push(head.label_values(name, matchers));
        }
        let strings = lists.iter().map(Vec::len).max().unwrap_or(0);
        Ok(StringList::merge_with_capacity(
            lists.iter().map(|l| l.iter().copied()),
            strings,
            0,
        ))
    }

    /// Every value of label `name`. The blocks' value tables (a million values for a label
    /// like `instance`) are read as they are merged, never collected into lists first, and
    /// room for the union is reserved once from the largest source.
    fn all_label_values(&self, name: &str) -> Result<StringList, QueryError> {
        let failed: Cell<Option<BlockError>> = Cell::new(None);
        let head = match self.label_head() {
            Some(head) => head.label_values(name, &[]),
            None => Vec::new(),
        };
        let (mut strings, mut bytes) = (head.len(), 0);
        let mut sources: Vec<Box<dyn Iterator<Item = &str> + '_>> =
            Vec::with_capacity(self.blocks.len() + 1);
        for b in &self.blocks {
            let values = b.index().label_values_iter(name);
            strings = strings.max(values.len());
            bytes = bytes.max(b.index().label_values_bytes_hint(name));
            // The first unreadable value ends its source; the error is the answer.
            let failed = &failed;
            sources.push(Box::new(
                values.map_while(move |v| v.map_err(|e| failed.set(Some(e))).ok()),
            ));
        }
        sources.push(Box::new(head.iter().copied()));
        let out = StringList::merge_with_capacity(sources, strings, bytes);
        match failed.into_inner() {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }
}

/// Merges sorted sample lists by timestamp (`t`); on equal timestamps the earlier list's
/// sample is kept.
fn merge<S>(mut parts: Vec<Vec<S>>, t: fn(&S) -> i64) -> Vec<S> {
    match parts.len() {
        0 => return Vec::new(),
        1 => return parts.pop().unwrap_or_default(),
        _ => {}
    }
    // Parts are few (overlapping sources are the exception): a stable sort of their
    // concatenation keeps, for each timestamp, the first part's sample first.
    let mut all: Vec<S> = parts.into_iter().flatten().collect();
    all.sort_by_key(t);
    all.dedup_by_key(|p| t(p));
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{write_block, BlockChunk, NewBlock};
    use crate::chunkenc::XorChunk;
    use crate::head::{AppendBatch, BatchSample, HeadOptions, SeriesKey};
    use crate::index::MatchType;

    fn l(name: &str) -> Labels {
        Labels::from_pairs([("__name__", name), ("job", "q")]).unwrap()
    }

    fn block(dir: &std::path::Path, series: &[(&str, &[(i64, f64)])], mint: i64, maxt: i64) {
        let chunks: Vec<(Labels, XorChunk)> = series
            .iter()
            .map(|(n, pts)| {
                let mut c = XorChunk::new();
                for &(t, v) in *pts {
                    c.append(t, v);
                }
                (l(n), c)
            })
            .collect();
        let input: Vec<(Labels, Vec<BlockChunk<'_>>)> = chunks
            .iter()
            .map(|(l, c)| (l.clone(), vec![BlockChunk::of_xor(c).unwrap()]))
            .collect();
        write_block(dir, NewBlock::level1(mint, maxt), &input).unwrap();
    }

    #[test]
    fn merges_blocks_and_head_by_labels_deduplicating_overlaps() {
        let dir = tempfile::tempdir().unwrap();
        block(
            dir.path(),
            &[("a", &[(0, 1.0), (10, 2.0)]), ("b", &[(5, 5.0)])],
            0,
            20,
        );
        // Overlapping block: a repeats t=10 with another value, adds t=15.
        block(dir.path(), &[("a", &[(10, 99.0), (15, 3.0)])], 10, 20);
        let blocks = crate::block::open_all(dir.path()).unwrap().blocks;
        let hdir = tempfile::tempdir().unwrap();
        let (mut head, _) = Head::open(hdir.path(), HeadOptions::default()).unwrap();
        head.append_unlogged(&AppendBatch {
            new_series: vec![l("a"), l("c")],
            samples: vec![
                BatchSample {
                    series: SeriesKey::New(0),
                    t: 20,
                    v: 4.0,
                },
                BatchSample {
                    series: SeriesKey::New(1),
                    t: 30,
                    v: 6.0,
                },
            ],
            start_timestamps: Vec::new(),
        })
        .unwrap();
        let all = [Matcher::new(MatchType::Equal, "job", "q").unwrap()];
        let q = Querier::new(&head, &blocks, i64::MIN, i64::MAX);
        let got: Vec<(String, Vec<(i64, f64)>)> = q
            .select(&all)
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s.labels.get("__name__").unwrap().to_string(),
                    q.samples(s).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a".into(), vec![(0, 1.0), (10, 2.0), (15, 3.0), (20, 4.0)]),
                ("b".into(), vec![(5, 5.0)]),
                ("c".into(), vec![(30, 6.0)]),
            ]
        );
        // A narrower range leaves out samples outside it; label values, as Prometheus's
        // index readers give them, come from every overlapping block and the head whole.
        let q = Querier::new(&head, &blocks, 12, 25);
        let names = q.label_values("__name__", &all).unwrap();
        assert_eq!(names.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        let q = Querier::new(&head, &blocks, 21, 25);
        let names = q.label_values("__name__", &all).unwrap();
        assert_eq!(names.iter().collect::<Vec<_>>(), ["a", "c"]);
        let q = Querier::new(&head, &blocks, 12, 25);
        let a = q.select(&all).unwrap();
        assert_eq!(q.samples(&a[0]).unwrap(), [(15, 3.0), (20, 4.0)]);
        let names = q.label_names(&all).unwrap();
        assert_eq!(names.iter().collect::<Vec<_>>(), ["__name__", "job"]);
    }

    /// No matcher means every series, in blocks as in the head (the label browser's first
    /// request), where a block's select answers nothing for an empty selector.
    #[test]
    fn no_matcher_lists_every_series_of_blocks_and_head() {
        let dir = tempfile::tempdir().unwrap();
        block(dir.path(), &[("a", &[(0, 1.0)]), ("b", &[(5, 5.0)])], 0, 20);
        let blocks = crate::block::open_all(dir.path()).unwrap().blocks;
        let hdir = tempfile::tempdir().unwrap();
        let (mut head, _) = Head::open(hdir.path(), HeadOptions::default()).unwrap();
        let c = Labels::from_pairs([("__name__", "c"), ("zone", "z1")]).unwrap();
        head.append_unlogged(&AppendBatch {
            new_series: vec![c],
            samples: vec![BatchSample {
                series: SeriesKey::New(0),
                t: 30,
                v: 6.0,
            }],
            start_timestamps: Vec::new(),
        })
        .unwrap();
        let q = Querier::new(&head, &blocks, i64::MIN, i64::MAX);
        let strings = |l: StringList| l.iter().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            strings(q.label_names(&[]).unwrap()),
            ["__name__", "job", "zone"]
        );
        assert_eq!(
            strings(q.label_values("__name__", &[]).unwrap()),
            ["a", "b", "c"]
        );
        assert_eq!(strings(q.label_values("job", &[]).unwrap()), ["q"]);

        // As Prometheus's querier: a block `[0, 20)` is read for ranges from before 20, the
        // head (samples at 30 only) for ranges reaching 30, whatever the matchers.
        let q = Querier::new(&head, &blocks, 20, 29);
        assert!(q.label_values("__name__", &[]).unwrap().is_empty());
        assert!(q.label_names(&[]).unwrap().is_empty());
        let q = Querier::new(&head, &blocks, 19, 30);
        assert_eq!(
            strings(q.label_values("__name__", &[]).unwrap()),
            ["a", "b", "c"]
        );
        let q = Querier::new(&head, &blocks, 20, 30);
        assert_eq!(strings(q.label_values("__name__", &[]).unwrap()), ["c"]);
        assert_eq!(strings(q.label_names(&[]).unwrap()), ["__name__", "zone"]);
        let zone = [Matcher::new(MatchType::Equal, "zone", "z1").unwrap()];
        assert_eq!(strings(q.label_values("__name__", &zone).unwrap()), ["c"]);
        let q = Querier::new(&head, &blocks, 31, 40);
        assert!(q.label_values("__name__", &zone).unwrap().is_empty());
    }
}
