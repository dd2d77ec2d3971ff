//! Reading the head: selecting series by matchers, their label names and values, and
//! iterating a series' samples over its mmapped chunks and its open chunk.

use crate::chunkenc::{Encoding, FloatIterator};
use crate::index::matcher::Matcher;
use crate::labels::interned::Pairs;

use super::{Head, HeadError};

impl Head {
    /// Refs of the series matching every matcher, ascending (Prometheus's semantics: a
    /// matcher that matches "" also selects series without the label).
    pub fn select(&self, matchers: &[Matcher]) -> Vec<u64> {
        self.postings
            .select(&self.symbols, matchers)
            .into_iter()
            .map(u64::from)
            .collect()
    }

    /// Sorted label names of the series matching `matchers` (all series when empty),
    /// borrowed from the head's symbol table.
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<&str> {
        if matchers.is_empty() {
            return self.postings.label_names(&self.symbols);
        }
        let ids = self.postings.select(&self.symbols, matchers);
        self.postings
            .label_names_for(&self.symbols, &ids, |id| self.labels_of(id))
    }

    /// Sorted values of label `name` among the series matching `matchers`, borrowed from
    /// the head's symbol table.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<&str> {
        if matchers.is_empty() {
            return self.postings.label_values(&self.symbols, name);
        }
        let ids = self.postings.select(&self.symbols, matchers);
        self.postings
            .label_values_for(&self.symbols, name, &ids, |id| self.labels_of(id))
    }

    fn labels_of(&self, id: u32) -> Pairs<'_> {
        self.series(u64::from(id))
            .map_or_else(Pairs::default, |s| s.labels().iter())
    }

    /// The samples of series `r` with `mint <= t <= maxt`, oldest first.
    pub fn samples(&self, r: u64, mint: i64, maxt: i64) -> Result<SeriesSamples<'_>, HeadError> {
        let mut chunks = Vec::new();
        if let Some(s) = self.series(r) {
            for m in s.mmapped_chunks() {
                if m.max_time >= mint && m.min_time <= maxt {
                    let rec = self.chunks.chunk_record(m.chunk_ref)?;
                    chunks.push((rec.encoding, rec.data));
                }
            }
            if let Some(c) = s.head_chunk() {
                if c.last_time().is_some_and(|t| t >= mint) && s.head_chunk_min_time() <= maxt {
                    chunks.push((c.encoding(), c.bytes()));
                }
            }
        }
        let deleted = self.tombstones.get(&r).map_or(&[][..], |v| v.as_slice());
        Ok(SeriesSamples {
            chunks,
            next_chunk: 0,
            cur: None,
            mint,
            maxt,
            series_ref: r,
            deleted,
        })
    }
}

/// Iterates the samples of one series across its chunks, within `[mint, maxt]`.
pub struct SeriesSamples<'a> {
    chunks: Vec<(Encoding, &'a [u8])>,
    next_chunk: usize,
    cur: Option<FloatIterator<'a>>,
    mint: i64,
    maxt: i64,
    series_ref: u64,
    deleted: &'a [(i64, i64)],
}

impl SeriesSamples<'_> {
    /// All remaining samples with their start timestamps (0 = none) as `(t, v, st)`, or the
    /// corruption that stopped the iteration.
    pub fn collect_checked_with_starts(mut self) -> Result<Vec<(i64, f64, i64)>, HeadError> {
        let mut out = Vec::new();
        while let Some((t, v)) = self.next_checked()? {
            out.push((t, v, self.start_timestamp()));
        }
        Ok(out)
    }

    /// The start timestamp of the sample `next_checked` returned last (0 = none).
    #[inline]
    pub fn start_timestamp(&self) -> i64 {
        self.cur.as_ref().map_or(0, |it| it.st())
    }

    /// All remaining samples, or the corruption that stopped the iteration.
    pub fn collect_checked(mut self) -> Result<Vec<(i64, f64)>, HeadError> {
        let mut out = Vec::new();
        while let Some(s) = self.next_checked()? {
            out.push(s);
        }
        Ok(out)
    }

    /// The next sample; a chunk that cannot be decoded is an error, not an early end.
    pub fn next_checked(&mut self) -> Result<Option<(i64, f64)>, HeadError> {
        loop {
            if let Some(it) = self.cur.as_mut() {
                let next = if self.mint > i64::MIN {
                    let m = self.mint;
                    self.mint = i64::MIN;
                    it.seek(m)
                } else {
                    it.next()
                };
                match next {
                    Some((t, _))
                        if t <= self.maxt
                            && self.deleted.iter().any(|&(a, b)| a <= t && t <= b) => {}
                    Some((t, v)) if t <= self.maxt => return Ok(Some((t, v))),
                    Some(_) => {
                        self.cur = None;
                        self.next_chunk = self.chunks.len();
                    }
                    None => {
                        if let Some(e) = it.err() {
                            return Err(HeadError::CorruptChunk {
                                series_ref: self.series_ref,
                                reason: e.to_string(),
                            });
                        }
                        self.cur = None;
                    }
                }
                continue;
            }
            let Some(&(enc, c)) = self.chunks.get(self.next_chunk) else {
                return Ok(None);
            };
            self.next_chunk += 1;
            self.cur = Some(FloatIterator::new(enc, c));
        }
    }
}
