//! Answers to label-name and label-value requests kept by the router while the shards they
//! came from are unchanged, so that a repeated request (Grafana's label browser, a
//! dashboard's variables, a script polling `labels`) is answered without a round trip.
//!
//! An answer is kept with the `LabelSources` each shard read it from, and given again only
//! when, for the new request's range, every shard's published sources are equal to those: the
//! same generation (nothing a source answers changed) and the same blocks and head overlapping
//! the range. It is then exactly what the shards would answer (see
//! `shards::label_generation`). This module never reads shard state and never decides what an
//! answer holds: answers are values made by the caller (a whole answer's bytes, or one
//! shard's list), keyed by the caller's description of the request. It is bounded in entries
//! and bytes; the least recently used entry goes first.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use shards::label_generation::LabelSources;

use shards::string_list::StringList;

use crate::http::SharedBody;

/// Bytes of answers kept at most: the largest answers (a value per series, as `instance`
/// at a million series) are several MB.
pub const MAX_BYTES: usize = 64 << 20;
/// Answers kept at most.
pub const MAX_ENTRIES: usize = 512;
/// Answers of one request kept at most, each for other sources (other time ranges).
const PER_KEY: usize = 4;
/// Answers dropped at once when the cache holds too many: finding the least recently used is
/// a pass over every entry, and a stream of distinct requests (a new `limit` each) would
/// otherwise pay that pass on every insert (~6–10 µs at 512 entries, a third of a request).
const EVICT_BATCH: usize = MAX_ENTRIES / 8;

/// What `/metrics` and tests see of the kept answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelAnswerStats {
    /// Answers given from the cache, and computed by the shards.
    pub hits: u64,
    pub misses: u64,
    /// Answers kept now, and the bytes they hold.
    pub kept: usize,
    pub bytes: usize,
}

/// A kept value: the heap bytes it holds, which the cache's budget counts.
pub trait Kept: Clone {
    fn room(&self) -> usize;
}

/// A whole answer, as sent.
impl Kept for Arc<SharedBody> {
    fn room(&self) -> usize {
        self.capacity()
    }
}

/// One shard's list, for answers merged from kept lists (see `label_partials`).
impl Kept for Rc<StringList> {
    fn room(&self) -> usize {
        self.heap_bytes()
    }
}

struct Entry<V> {
    sources: Vec<LabelSources>,
    answer: V,
    /// When it was last given or kept (`LabelAnswerCache::clock`).
    used: u64,
}

/// Kept answers by request, and their hits and misses for self-monitoring and tests.
pub struct KeptAnswers<V> {
    entries: HashMap<String, Vec<Entry<V>>>,
    count: usize,
    bytes: usize,
    clock: u64,
    pub hits: u64,
    pub misses: u64,
}

/// Whole answers, as sent.
pub type LabelAnswerCache = KeptAnswers<Arc<SharedBody>>;

impl<V> Default for KeptAnswers<V> {
    fn default() -> Self {
        KeptAnswers {
            entries: HashMap::new(),
            count: 0,
            bytes: 0,
            clock: 0,
            hits: 0,
            misses: 0,
        }
    }
}

impl<V: Kept> KeptAnswers<V> {
    /// The answer kept for `key` read from `current` (each shard's published sources for
    /// the request's range, in shard order), if any. Answers of `key` from older generations
    /// go: a shard's generation never goes back, so they can never be given again.
    pub fn get(&mut self, key: &str, current: &[LabelSources]) -> Option<V> {
        self.clock += 1;
        let clock = self.clock;
        let Some(kept) = self.entries.get_mut(key) else {
            self.misses += 1;
            return None;
        };
        let before = kept.len();
        let mut dropped = 0;
        kept.retain(|e| {
            let live = e.sources.len() == current.len()
                && e.sources
                    .iter()
                    .zip(current)
                    .all(|(a, b)| a.generation == b.generation);
            if !live {
                dropped += e.answer.room();
            }
            live
        });
        self.count -= before - kept.len();
        self.bytes -= dropped;
        let found = kept.iter_mut().find(|e| e.sources == current).map(|e| {
            e.used = clock;
            e.answer.clone()
        });
        if kept.is_empty() {
            self.entries.remove(key);
        }
        match found {
            Some(_) => self.hits += 1,
            None => self.misses += 1,
        }
        found
    }

    /// Keeps `answer` for `key`, read from `sources` (one per shard, in shard order; the
    /// one shard's for a shard's list). An answer larger than a quarter of the budget is
    /// not kept. Answers count by the room they hold (`Kept::room`), not only their length;
    /// the gzip encoding an answer keeps once a client asked for it (smaller than the
    /// answer) is not counted.
    pub fn insert(&mut self, key: &str, sources: Vec<LabelSources>, answer: V) {
        let size = answer.room();
        if size > MAX_BYTES / 4 {
            return;
        }
        self.clock += 1;
        let kept = self.entries.entry(key.to_string()).or_default();
        if let Some(i) = kept.iter().position(|e| e.sources == sources) {
            let old = kept.remove(i);
            self.bytes -= old.answer.room();
            self.count -= 1;
        }
        if kept.len() >= PER_KEY {
            // The least recently used of this request's answers makes room.
            if let Some(i) = (0..kept.len()).min_by_key(|&i| kept[i].used) {
                let old = kept.remove(i);
                self.bytes -= old.answer.room();
                self.count -= 1;
            }
        }
        kept.push(Entry {
            sources,
            answer,
            used: self.clock,
        });
        self.bytes += size;
        self.count += 1;
        while self.count > MAX_ENTRIES || self.bytes > MAX_BYTES {
            let batch = if self.count > MAX_ENTRIES {
                EVICT_BATCH
            } else {
                1
            };
            if !self.evict_oldest(batch) {
                break;
            }
        }
    }

    /// Answers kept, and their bytes.
    pub fn size(&self) -> (usize, usize) {
        (self.count, self.bytes)
    }

    pub fn stats(&self) -> LabelAnswerStats {
        LabelAnswerStats {
            hits: self.hits,
            misses: self.misses,
            kept: self.count,
            bytes: self.bytes,
        }
    }

    /// Drops the `n` least recently used answers (fewer if there are not as many); false
    /// when there is none.
    fn evict_oldest(&mut self, n: usize) -> bool {
        let mut used: Vec<u64> = self
            .entries
            .values()
            .flat_map(|v| v.iter().map(|e| e.used))
            .collect();
        if used.is_empty() || n == 0 {
            return false;
        }
        let n = n.min(used.len());
        // Every get and insert advances the clock, so no two entries share a `used`: exactly
        // `n` are at or below the n-th smallest.
        let (_, &mut newest_dropped, _) = used.select_nth_unstable(n - 1);
        let (mut count, mut bytes) = (0, 0);
        self.entries.retain(|_, kept| {
            kept.retain(|e| {
                let keep = e.used > newest_dropped;
                if !keep {
                    count += 1;
                    bytes += e.answer.room();
                }
                keep
            });
            !kept.is_empty()
        });
        self.count -= count;
        self.bytes -= bytes;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(generation: u64, head: bool, blocks: &[u32]) -> LabelSources {
        LabelSources {
            generation,
            head,
            blocks: blocks.to_vec(),
        }
    }

    fn answer(s: &str) -> Arc<SharedBody> {
        Arc::new(SharedBody::new(s.as_bytes().to_vec()))
    }

    #[test]
    fn gives_an_answer_only_for_the_same_sources_and_generations() {
        let mut c = LabelAnswerCache::default();
        let read = vec![at(1, true, &[0]), at(4, true, &[])];
        c.insert("names", read.clone(), answer("a"));
        assert_eq!(c.get("names", &read).unwrap().bytes(), b"a");
        assert!(c.get("values\0job", &read).is_none());
        // Another range reading other sources of the same generations: not this answer.
        assert!(c
            .get("names", &[at(1, false, &[0]), at(4, true, &[])])
            .is_none());
        assert!(c
            .get("names", &[at(1, true, &[]), at(4, true, &[])])
            .is_none());
        assert_eq!(c.size().0, 1);
        // A shard moved on: the answer is gone for good.
        assert!(c
            .get("names", &[at(1, true, &[0]), at(5, true, &[])])
            .is_none());
        assert_eq!(c.size(), (0, 0));
        assert!(c.get("names", &read).is_none());
        assert_eq!((c.hits, c.misses), (1, 5));
    }

    #[test]
    fn keeps_answers_for_several_ranges_and_evicts_the_least_recently_used() {
        let mut c = LabelAnswerCache::default();
        for i in 0..PER_KEY as u32 + 1 {
            c.insert("k", vec![at(1, true, &[i])], answer("x"));
        }
        // The first range's answer made room for the last.
        assert!(c.get("k", &[at(1, true, &[0])]).is_none());
        assert!(c.get("k", &[at(1, true, &[PER_KEY as u32])]).is_some());
        assert_eq!(c.size(), (PER_KEY, PER_KEY));

        let mut c = LabelAnswerCache::default();
        let big = Arc::new(SharedBody::new(vec![b'x'; MAX_BYTES / 4]));
        for k in ["a", "b", "c", "d"] {
            c.insert(k, vec![at(1, true, &[])], big.clone());
        }
        assert!(c.get("a", &[at(1, true, &[])]).is_some());
        c.insert("e", vec![at(1, true, &[])], answer("e"));
        // Over budget: "b", the least recently used, went.
        assert!(c.get("b", &[at(1, true, &[])]).is_none());
        assert!(c.get("a", &[at(1, true, &[])]).is_some());
        assert!(c.get("e", &[at(1, true, &[])]).is_some());
        assert_eq!(c.size(), (4, 3 * (MAX_BYTES / 4) + 1));
        // Too large to keep at all.
        c.insert(
            "f",
            vec![at(1, true, &[])],
            Arc::new(SharedBody::new(vec![0; MAX_BYTES / 4 + 1])),
        );
        assert!(c.get("f", &[at(1, true, &[])]).is_none());
    }

    #[test]
    fn too_many_answers_drop_the_least_recently_used_in_one_batch() {
        let mut c = LabelAnswerCache::default();
        for i in 0..MAX_ENTRIES {
            c.insert(&i.to_string(), vec![at(1, true, &[])], answer("x"));
        }
        // Used again: now more recent than every other.
        assert!(c.get("0", &[at(1, true, &[])]).is_some());
        c.insert("new", vec![at(1, true, &[])], answer("x"));
        assert_eq!(c.size().0, MAX_ENTRIES + 1 - EVICT_BATCH);
        assert!(c.get("0", &[at(1, true, &[])]).is_some());
        assert!(c.get("new", &[at(1, true, &[])]).is_some());
        // The oldest batch went, the next one stayed.
        assert!(c.get("1", &[at(1, true, &[])]).is_none());
        assert!(c
            .get(&EVICT_BATCH.to_string(), &[at(1, true, &[])])
            .is_none());
        assert!(c
            .get(&(EVICT_BATCH + 1).to_string(), &[at(1, true, &[])])
            .is_some());
    }
}
