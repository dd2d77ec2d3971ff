//! What a shard publishes so that the router can tell, without asking it, whether a label-name
//! or label-value answer it already has is still the shard's answer: a generation counter and
//! the time spans of the shard's label sources (its blocks and its head).
//!
//! Prometheus answers `labels` and `label/<name>/values` from whole sources: every block
//! overlapping `[start, end]` and the head if it does, each one's label tables as they are,
//! whatever the times of the individual series (`LabelSources`). So an answer is a function of
//! which sources overlap the range and of what those sources hold. The shard bumps the
//! generation whenever what a source could answer may have changed (a series created or
//! removed in the head, a block added, removed or replaced) and republishes the spans whenever
//! they move; appending samples to existing series only moves the head's span. An answer
//! tagged with the shard's `LabelSources` at the time it was computed is then exact for any
//! later request whose sources, computed from what is published, are equal.
//!
//! This is a signal, not shard data: the router never reads the head or the blocks through
//! it. It is the only thing a shard shares with another thread, behind one short mutex taken
//! once per append (when the head's span moved) and once per cached request on the router.

use std::sync::{Arc, Mutex};

/// Which of a shard's sources answer label requests over a time range, at which generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSources {
    pub generation: u64,
    /// Whether the head overlaps the range.
    pub head: bool,
    /// Positions, in the shard's block list of this generation, of the blocks overlapping
    /// the range.
    pub blocks: Vec<u32>,
}

impl LabelSources {
    /// The sources among blocks spanning `blocks` (`[min, max)` each, in the shard's order)
    /// and a head spanning `head` (`[min, max]`, `None` when it holds no sample) that
    /// overlap `[mint, maxt]`, as Prometheus's querier picks them.
    pub fn pick(
        generation: u64,
        blocks: impl IntoIterator<Item = (i64, i64)>,
        head: Option<(i64, i64)>,
        mint: i64,
        maxt: i64,
    ) -> LabelSources {
        let blocks = blocks
            .into_iter()
            .enumerate()
            .filter(|&(_, (lo, hi))| block_overlaps(lo, hi, mint, maxt))
            .map(|(i, _)| i as u32)
            .collect();
        LabelSources {
            generation,
            head: head_overlaps(head, mint, maxt),
            blocks,
        }
    }
}

/// Whether a block covering `[lo, hi)` holds samples of `[mint, maxt]` (Prometheus's
/// `OverlapsClosedInterval`).
pub fn block_overlaps(lo: i64, hi: i64, mint: i64, maxt: i64) -> bool {
    lo <= maxt && mint < hi
}

/// Whether a head whose samples span `span` (`None`: no sample) is read for `[mint, maxt]`:
/// Prometheus's head index reader answers label requests only when
/// `maxt >= head min time && mint <= head max time`, and an empty head's min time is
/// `i64::MAX`.
pub fn head_overlaps(span: Option<(i64, i64)>, mint: i64, maxt: i64) -> bool {
    span.is_some_and(|(lo, hi)| lo <= maxt && mint <= hi)
}

#[derive(Debug, Default)]
struct Published {
    generation: u64,
    /// `[min, max)` of each block, in the shard's order.
    blocks: Vec<(i64, i64)>,
    head: Option<(i64, i64)>,
}

/// The published generation and spans of one shard. The shard writes it (`advance`,
/// `set_head_span`); the router reads it (`sources`).
#[derive(Debug, Default)]
pub struct LabelGeneration {
    published: Mutex<Published>,
}

impl LabelGeneration {
    pub fn new() -> Arc<LabelGeneration> {
        Arc::new(LabelGeneration::default())
    }

    /// The shard's sources for `[mint, maxt]` as last published.
    pub fn sources(&self, mint: i64, maxt: i64) -> LabelSources {
        let p = self.lock();
        LabelSources::pick(p.generation, p.blocks.iter().copied(), p.head, mint, maxt)
    }

    /// The generation last published.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// A new generation: the shard's label sources may answer differently from now on.
    /// `blocks` is the new block list's spans, in the shard's order. Returns the generation.
    pub fn advance(&self, blocks: Vec<(i64, i64)>, head: Option<(i64, i64)>) -> u64 {
        let mut p = self.lock();
        p.generation += 1;
        p.blocks = blocks;
        p.head = head;
        p.generation
    }

    /// The head's samples now span `head`; what it answers is unchanged.
    pub fn set_head_span(&self, head: Option<(i64, i64)>) {
        self.lock().head = head;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Published> {
        // Every critical section above only assigns plain values: a panic in one leaves
        // nothing half-written, so a poisoned lock is still usable.
        self.published.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_sources_as_prometheus_querier_does() {
        let blocks = [(0, 100), (100, 200), (50, 150)];
        let s = LabelSources::pick(3, blocks, Some((200, 300)), 100, 100);
        assert_eq!(
            s,
            LabelSources {
                generation: 3,
                head: false,
                blocks: vec![1, 2],
            }
        );
        // A block's max time is exclusive, the head's inclusive.
        let s = LabelSources::pick(3, blocks, Some((200, 300)), 200, 200);
        assert!(s.head && s.blocks.is_empty());
        let s = LabelSources::pick(3, blocks, Some((200, 300)), 300, 400);
        assert!(s.head);
        assert!(!LabelSources::pick(3, blocks, Some((200, 300)), 301, 400).head);
        // An empty head is never read.
        assert!(!LabelSources::pick(3, [], None, i64::MIN, i64::MAX).head);
    }

    #[test]
    fn advancing_republishes_spans_under_a_new_generation() {
        let g = LabelGeneration::new();
        assert_eq!(g.sources(0, 10).generation, 0);
        assert_eq!(g.advance(vec![(0, 5)], None), 1);
        let s = g.sources(0, 10);
        assert_eq!((s.generation, s.head, s.blocks), (1, false, vec![0]));
        g.set_head_span(Some((5, 8)));
        let s = g.sources(0, 10);
        assert_eq!((s.generation, s.head), (1, true));
        assert!(!g.sources(9, 10).head);
    }
}
