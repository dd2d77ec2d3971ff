//! `MemSeries`: one series in the head. It keeps only its open XOR chunk in memory; every
//! full chunk has been written to chunks_head and is remembered by its disk ref and time
//! range. Chunk cutting follows Prometheus's rules exactly (section 2.5 of the TSDB notes), so
//! that promcore's chunks_head files look like the ones Prometheus would have written.
//!
//! This file never does I/O itself: cutting a chunk hands the full chunk back to the caller,
//! which writes it to chunks_head and records the ref with `push_mmapped`.

use super::mmapped_list::{MmappedIter, MmappedList};
use crate::chunkenc::FloatChunk;
use crate::chunks_head::ChunkDiskRef;
use crate::labels::interned::InternedLabels;

/// Prometheus's target number of samples per chunk.
pub const SAMPLES_PER_CHUNK: usize = 120;

/// A full chunk that lives in chunks_head, read back through the mmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmappedChunk {
    pub chunk_ref: ChunkDiskRef,
    pub min_time: i64,
    pub max_time: i64,
}

/// Why a sample was not appended, as Prometheus names and counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendRefusal {
    /// Older than the newest sample of the series.
    OutOfOrder,
    /// Same timestamp as the newest sample, different value bits.
    DuplicateTimestamp,
    /// Older than the head accepts at all (`head max time - chunk range / 2`).
    OutOfBounds,
}

/// What `MemSeries::appendable` decided for one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appendable {
    Yes,
    /// An identical duplicate of the newest sample: dropped silently, as Prometheus does.
    Duplicate,
    No(AppendRefusal),
}

/// 56 bytes (the open chunk is 40, with its cut time inside, labels and written-out chunks
/// one pointer each). Fields that most series never need live beside the series instead: whether its
/// record reached the WAL (`Head`'s unlogged set), the XOR2 state (boxed in `FloatChunk`).
/// The open chunk's first timestamp is read from the chunk rather than kept.
pub struct MemSeries {
    /// Sorted (name, value) symbol pairs of the head's symbol table, packed.
    pub(crate) labels: InternedLabels,
    /// Delta-encoded behind one pointer: it grows by one chunk every ~120 samples, so
    /// re-encoding then is cheap, and ~9 chunks of a 3 h head take ~60 bytes, not 216.
    pub(crate) mmapped: MmappedList,
    /// The open chunk; `None` until the first sample (and never kept empty). Its owner
    /// word holds when it must be cut (Prometheus's `nextAt`), as `next_at_word`.
    pub(crate) head_chunk: Option<FloatChunk>,
}

impl MemSeries {
    pub fn new(labels: InternedLabels) -> Self {
        MemSeries {
            labels,
            mmapped: MmappedList::default(),
            head_chunk: None,
        }
    }

    /// The first timestamp of the open chunk (`i64::MIN` without one): Prometheus's
    /// `headChunk.minTime`, which is always the chunk's first sample.
    #[inline]
    pub fn head_chunk_min_time(&self) -> i64 {
        self.head_chunk
            .as_ref()
            .and_then(|c| c.first_time())
            .unwrap_or(i64::MIN)
    }

    pub fn labels(&self) -> &InternedLabels {
        &self.labels
    }

    /// The chunks written out to chunks_head, oldest first.
    pub fn mmapped_chunks(&self) -> MmappedIter<'_> {
        self.mmapped.iter()
    }

    /// Heap bytes of the list of written-out chunks, for the head's memory accounting.
    pub fn mmapped_heap_bytes(&self) -> usize {
        self.mmapped.heap_bytes()
    }

    /// Moves the open chunk's bytes into the thread's current chunk heap.
    pub(crate) fn relocate_head_chunk(&mut self) {
        if let Some(c) = self.head_chunk.as_mut() {
            c.relocate();
        }
    }

    pub fn head_chunk(&self) -> Option<&FloatChunk> {
        self.head_chunk.as_ref()
    }

    /// Timestamp and value of the newest sample, if any.
    pub fn last_sample(&self) -> Option<(i64, f64)> {
        let c = self.head_chunk.as_ref()?;
        Some((c.last_time()?, c.last_value()?))
    }

    /// The newest timestamp of the series, in memory or in chunks_head.
    pub fn max_time(&self) -> Option<i64> {
        match &self.head_chunk {
            Some(c) => c.last_time(),
            None => self.mmapped.last().map(|m| m.max_time),
        }
    }

    pub fn min_time(&self) -> Option<i64> {
        match self.mmapped.first() {
            Some(m) => Some(m.min_time),
            None => self.head_chunk.as_ref().and_then(|c| c.first_time()),
        }
    }

    /// Whether the series holds samples that may fall in `[mint, maxt]`: its time bounds
    /// rule most series in or out of a query without touching a chunk.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        matches!((self.min_time(), self.max_time()), (Some(lo), Some(hi)) if lo <= maxt && hi >= mint)
    }

    /// Prometheus's `memSeries.appendable` for in-order samples.
    pub fn appendable(&self, t: i64, v: f64, min_valid_time: i64) -> Appendable {
        if t < min_valid_time {
            return Appendable::No(AppendRefusal::OutOfBounds);
        }
        match self.head_chunk.as_ref() {
            Some(c) => match (c.last_time(), c.last_value()) {
                (Some(lt), Some(lv)) => appendable_after(lt, lv, t, v),
                _ => Appendable::Yes,
            },
            None => match self.mmapped.last() {
                Some(m) if t <= m.max_time => Appendable::No(AppendRefusal::OutOfOrder),
                _ => Appendable::Yes,
            },
        }
    }

    /// Appends an in-order sample (checked with `appendable` before) with its start
    /// timestamp `st` (0 = none; a chunk given one is XOR2). If the open chunk had to be cut
    /// first, the full chunk is returned for the caller to write to chunks_head; the caller
    /// then records it with `push_mmapped`. `chunk_range` must be the same on every call.
    pub fn append(
        &mut self,
        st: i64,
        t: i64,
        v: f64,
        chunk_range: i64,
    ) -> Option<(i64, FloatChunk)> {
        let mut cut = None;
        let next_at = match self.head_chunk.as_ref() {
            None => range_for_timestamp(t, chunk_range),
            Some(c) => {
                let n = c.num_samples();
                let last = c.last_time().unwrap_or(t);
                let mut next_at = next_at_of(c, n, last, chunk_range);
                if n == SAMPLES_PER_CHUNK / 4 {
                    let min_time = c.first_time().unwrap_or(last);
                    next_at = compute_chunk_end_time(min_time, last, next_at);
                }
                if t >= next_at || n >= SAMPLES_PER_CHUNK * 2 {
                    cut = self.head_chunk.take().map(|c| {
                        let min_time = c.first_time().unwrap_or(t);
                        (min_time, c)
                    });
                    range_for_timestamp(t, chunk_range)
                } else {
                    next_at
                }
            }
        };
        let c = self
            .head_chunk
            .get_or_insert_with(|| FloatChunk::new(st != 0));
        c.append(st, t, v);
        c.set_owner_word(next_at_word(next_at, t));
        cut
    }

    /// Records a chunk that was written to chunks_head (on cut, or found at start-up).
    pub fn push_mmapped(&mut self, m: MmappedChunk) {
        let mut v = self.mmapped.to_vec();
        v.push(m);
        self.mmapped = MmappedList::from_chunks(&v);
    }

    /// Installs the chunks_head chunks found for this series at start-up, oldest first.
    pub fn set_mmapped(&mut self, chunks: Vec<MmappedChunk>) {
        self.mmapped = MmappedList::from_chunks(&chunks);
    }

    /// Keeps the chunks_head chunks for which `keep` holds; returns how many were dropped.
    pub fn retain_mmapped(&mut self, keep: impl FnMut(&MmappedChunk) -> bool) -> usize {
        let before = self.mmapped.len();
        let mut v = self.mmapped.to_vec();
        v.retain(keep);
        let dropped = before - v.len();
        if dropped > 0 {
            self.mmapped = MmappedList::from_chunks(&v);
        }
        dropped
    }

    /// Installs an open chunk restored from a snapshot. Like Prometheus, the next append cuts a new chunk,
    /// since the restored chunk's cut time is not part of the snapshot.
    pub fn restore_head_chunk(&mut self, mut chunk: FloatChunk) {
        // A cut time at the newest sample: the next sample, newer, is at or past it.
        let Some(last) = chunk.last_time() else {
            // An empty chunk has nothing to keep (Prometheus never snapshots one); the next
            // sample starts a new one.
            self.head_chunk = None;
            return;
        };
        chunk.set_owner_word(next_at_word(last, last));
        self.head_chunk = Some(chunk);
    }
}

/// The owner word of an open chunk whose cut time is `next_at` and newest sample `last`:
/// `next_at - last`, which is at most the chunk range (every sample of a chunk is below its
/// cut time, which is at most one range past the first), or `FAR_NEXT_AT` when that does not
/// fit, as with chunk ranges over 49 days.
#[inline]
fn next_at_word(next_at: i64, last: i64) -> u32 {
    match next_at.checked_sub(last).map(u32::try_from) {
        Some(Ok(w)) if w != FAR_NEXT_AT => w,
        _ => FAR_NEXT_AT,
    }
}

/// The owner word of a chunk whose cut time is kept as the rules that set it.
const FAR_NEXT_AT: u32 = u32::MAX;

/// The cut time of open chunk `c` (with `n` samples, the newest at `last`).
#[inline]
fn next_at_of(c: &FloatChunk, n: usize, last: i64, chunk_range: i64) -> i64 {
    match c.owner_word() {
        FAR_NEXT_AT => next_at_by_rules(c, n, chunk_range),
        w => last + i64::from(w),
    }
}

/// The cut time found again by the rules that set it: the end of the first sample's
/// range, predicted again from the 30th sample once the chunk is past it (`append`). Only
/// a chunk `append` started gets here: a restored one's word is 0, never `FAR_NEXT_AT`.
#[cold]
fn next_at_by_rules(c: &FloatChunk, n: usize, chunk_range: i64) -> i64 {
    let Some(first) = c.first_time() else {
        return i64::MIN;
    };
    let end = range_for_timestamp(first, chunk_range);
    if n <= SAMPLES_PER_CHUNK / 4 {
        return end;
    }
    match c.iter().nth(SAMPLES_PER_CHUNK / 4 - 1) {
        Some((quarter, _)) => compute_chunk_end_time(first, quarter, end),
        None => end,
    }
}

/// The check of `appendable` against a known newest sample `(lt, lv)`; also used for
/// samples earlier in the same batch.
#[inline]
pub fn appendable_after(lt: i64, lv: f64, t: i64, v: f64) -> Appendable {
    if t > lt {
        Appendable::Yes
    } else if t == lt {
        if lv.to_bits() == v.to_bits() {
            Appendable::Duplicate
        } else {
            Appendable::No(AppendRefusal::DuplicateTimestamp)
        }
    } else {
        Appendable::No(AppendRefusal::OutOfOrder)
    }
}

/// The end of the chunk range holding `t`: chunks never cross a multiple of the range.
#[inline]
pub fn range_for_timestamp(t: i64, chunk_range: i64) -> i64 {
    t.div_euclid(chunk_range) * chunk_range + chunk_range
}

/// Prometheus's `computeChunkEndTime`: once a quarter of a chunk is filled, predict an end
/// so that the chunks left in this range come out equally sized.
#[inline]
pub fn compute_chunk_end_time(start: i64, cur: i64, max: i64) -> i64 {
    let n = (max - start) / ((cur - start + 1) * 4);
    if n <= 1 {
        return max;
    }
    start + (max - start) / n
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANGE: i64 = 2 * 3600 * 1000;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_series_takes_56_bytes() {
        // The head's largest per-series part: a field added here costs 1 MB per million.
        assert_eq!(std::mem::size_of::<Option<MemSeries>>(), 56);
    }

    #[test]
    fn the_open_chunks_min_time_is_its_first_sample() {
        let mut s = MemSeries::new(InternedLabels::default());
        assert_eq!(s.head_chunk_min_time(), i64::MIN);
        let mut cut = Vec::new();
        for i in 0..300 {
            if let Some((min, c)) = s.append(0, 1000 + i * 15_000, 1.0, RANGE) {
                assert_eq!(Some(min), c.first_time());
                cut.push(min);
            }
            assert_eq!(
                Some(s.head_chunk_min_time()),
                s.head_chunk().and_then(|c| c.first_time())
            );
        }
        assert_eq!(cut.first(), Some(&1000));
    }

    #[test]
    fn cuts_about_every_120_samples_at_15s() {
        let mut s = MemSeries::new(InternedLabels::default());
        let mut sizes = Vec::new();
        // Start on a range boundary: 480 samples at 15 s fill the 2 h range.
        for i in 0..480 {
            if let Some((_, c)) = s.append(0, i * 15_000, i as f64, RANGE) {
                sizes.push(c.num_samples());
            }
        }
        sizes.push(s.head_chunk().map_or(0, |c| c.num_samples()));
        assert_eq!(sizes, [120, 120, 120, 120]);
    }

    #[test]
    fn never_crosses_a_range_boundary() {
        let mut s = MemSeries::new(InternedLabels::default());
        let mut cut_at = Vec::new();
        for i in 0..100 {
            let t = RANGE - 50 * 1000 + i * 1000;
            if let Some((min, c)) = s.append(0, t, 1.0, RANGE) {
                cut_at.push((min, c.last_time().unwrap()));
            }
        }
        assert_eq!(cut_at, [(RANGE - 50_000, RANGE - 1000)]);
    }

    #[test]
    fn hard_cut_at_240_samples() {
        let mut s = MemSeries::new(InternedLabels::default());
        // 1 ms apart: the time prediction alone would allow far more than 240.
        let mut first_cut = None;
        for i in 0..300 {
            if let Some((_, c)) = s.append(0, i, 0.0, RANGE) {
                first_cut.get_or_insert(c.num_samples());
            }
        }
        assert!(first_cut.unwrap() <= 240);
    }

    #[test]
    fn appendable_rules() {
        let mut s = MemSeries::new(InternedLabels::default());
        assert_eq!(s.appendable(10, 1.0, i64::MIN), Appendable::Yes);
        s.append(0, 10, 1.0, RANGE);
        assert_eq!(s.appendable(10, 1.0, i64::MIN), Appendable::Duplicate);
        assert_eq!(
            s.appendable(10, 2.0, i64::MIN),
            Appendable::No(AppendRefusal::DuplicateTimestamp)
        );
        assert_eq!(
            s.appendable(9, 1.0, i64::MIN),
            Appendable::No(AppendRefusal::OutOfOrder)
        );
        assert_eq!(
            s.appendable(11, 1.0, 12),
            Appendable::No(AppendRefusal::OutOfBounds)
        );
        // NaN payloads are compared by bits: two different NaNs are different values.
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        s.append(0, 20, stale, RANGE);
        assert_eq!(s.appendable(20, stale, i64::MIN), Appendable::Duplicate);
        assert_eq!(
            s.appendable(20, f64::NAN, i64::MIN),
            Appendable::No(AppendRefusal::DuplicateTimestamp)
        );
    }

    /// Prometheus's cut rules with the cut time kept as an i64, as the head kept it.
    struct ReferenceSeries {
        open: Vec<i64>,
        next_at: i64,
    }

    impl ReferenceSeries {
        /// The timestamps of the chunk cut before `t`, if one was.
        fn append(&mut self, t: i64, chunk_range: i64) -> Option<Vec<i64>> {
            let n = self.open.len();
            if n == 0 {
                self.open.push(t);
                self.next_at = range_for_timestamp(t, chunk_range);
                return None;
            }
            if n == SAMPLES_PER_CHUNK / 4 {
                self.next_at = compute_chunk_end_time(self.open[0], self.open[n - 1], self.next_at);
            }
            if t >= self.next_at || n >= SAMPLES_PER_CHUNK * 2 {
                let cut = std::mem::replace(&mut self.open, vec![t]);
                self.next_at = range_for_timestamp(t, chunk_range);
                return Some(cut);
            }
            self.open.push(t);
            None
        }
    }

    fn times(c: &FloatChunk) -> Vec<i64> {
        c.iter().map(|(t, _)| t).collect()
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// A sample this far after the previous one.
        After(i64),
        /// A snapshot restore of the open chunk (its cut time is not kept).
        Restore,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            6 => (1i64..20).prop_map(Step::After),
            6 => (14_000i64..16_000).prop_map(Step::After),
            2 => (1i64..(1 << 24)).prop_map(Step::After),
            1 => (1i64..(1 << 42)).prop_map(Step::After),
            1 => Just(Step::Restore),
        ]
    }

    fn chunk_range() -> impl proptest::strategy::Strategy<Value = i64> {
        use proptest::prelude::*;
        prop_oneof![
            Just(RANGE),
            1i64..2_000,
            1_000i64..100_000_000,
            // Over 49 days: cut times too far for the chunk's 32-bit word.
            (1i64 << 32)..(1i64 << 44),
        ]
    }

    proptest::proptest! {
        /// The cut points, and what every chunk holds, are those of the i64 reference.
        #[test]
        fn cuts_where_the_i64_reference_cuts(
            range in chunk_range(),
            start in -(1i64 << 50)..(1i64 << 50),
            steps in proptest::collection::vec(step(), 1..700),
        ) {
            let mut s = MemSeries::new(InternedLabels::default());
            let mut reference = ReferenceSeries { open: Vec::new(), next_at: i64::MIN };
            let mut t = start;
            for (i, st) in steps.into_iter().enumerate() {
                match st {
                    Step::After(d) => t += d,
                    Step::Restore => {
                        if let Some(c) = s.head_chunk.take() {
                            let restored = FloatChunk::from_bytes(c.encoding(), c.bytes().to_vec()).unwrap();
                            s.restore_head_chunk(restored);
                            reference.next_at = *reference.open.last().unwrap();
                        }
                        continue;
                    }
                }
                let got = s.append(0, t, i as f64, range);
                let want = reference.append(t, range);
                proptest::prop_assert_eq!(got.as_ref().map(|(_, c)| times(c)), want.clone(), "at {}", t);
                if let (Some((min, _)), Some(w)) = (got, want) {
                    proptest::prop_assert_eq!(min, w[0]);
                }
                let open = s.head_chunk().map(times).unwrap_or_default();
                proptest::prop_assert_eq!(&open, &reference.open);
            }
        }
    }
}
