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
//! An answer to a request without `match[]` reads less than the whole source: `labels` reads
//! its name set, `label/<n>/values` the value set of `n`. So beside the generation the shard
//! publishes at which generation its name set last changed and at which each name's value
//! set last changed (a (name, value) posting list created or emptied in the head), from a
//! floor: the generation at which the block list last changed, when every table may have.
//! `LabelScope` says which of these a request depends on; new series made only of existing
//! (name, value) pairs, the common churn, leave `labels` and `job` values answers valid.
//!
//! Besides this signal the shard publishes one piece of its data: copies of its sources'
//! label-name tables (each block's and the head's, `NameTables`), replaced in the same
//! critical section as the generation whenever the name set or the block list changes. With
//! them the router answers `labels` without `match[]` without waking the shard, even for the
//! first request after a change (a shard's wake-up and the router's wait for it cost more
//! than the answer). This keeps to the design's rule that a shard's head and blocks are read
//! by no other executor: a table is a value the shard made and handed over, like a reply
//! sent ahead of the request, immutable once published (`Arc<StringList>`), never the
//! head's structures; a reader keeps the copies it took, and the shard replaces the `Arc`s,
//! never writes through them. Names are few (tens), so the copies cost little to make.
//!
//! Small value sets go the same way (`ValueSets`): for every name with at most
//! `PUBLISHED_VALUES_MAX` values in a source (`job`, `le`, `__name__` in most setups: what
//! dashboard variables list), a copy of those values, published in the same critical
//! section as the generation that changed them, so that `label/<name>/values` without
//! `match[]` is answered right after a new `job` value without waking the shard. The same
//! argument holds: copies handed over, never the head's postings. It holds only because
//! the sets are small: a set changes only when one of its values is created or removed (the
//! shard already records that for the generation), and then the shard copies at most
//! `PUBLISHED_VALUES_MAX` strings; a name with more values (`instance`: one per target)
//! is not copied, and a request for it goes to the shard as before. A source holding the
//! name but no published set for it makes the router ask.
//!
//! Otherwise the router never reads the head or the blocks through this module. It is the
//! only thing a shard shares with another thread, behind one short mutex taken once per
//! append (when the head's span moved), once per label request on the router and once per
//! label answer on the shard (which tags its answer with what it published).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::string_list::StringList;

/// A source's value set of a name is published when it holds at most this many values: the
/// most strings a shard copies for one changed name (see the module doc).
pub const PUBLISHED_VALUES_MAX: usize = 256;

/// One source's published value sets, by name: each of its names with at most
/// `PUBLISHED_VALUES_MAX` values.
pub type ValueSets = HashMap<String, Arc<StringList>>;

/// A name's value set as the shard hands it over: `None` when it is not published (no
/// value, or more than `PUBLISHED_VALUES_MAX`).
pub type NamedValueSet<'a> = (&'a str, Option<Arc<StringList>>);

/// What a label answer depends on in a source: everything (a request with `match[]`, which
/// reads series), its label names, or the values of one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelScope<'a> {
    All,
    Names,
    Values(&'a str),
}

impl<'a> LabelScope<'a> {
    /// What an answer reads for label names (`values_of: None`) or the values of
    /// `values_of`: their tables alone when it is over every series (no matchers), else
    /// the series too.
    pub fn of(values_of: Option<&'a str>, every_series: bool) -> LabelScope<'a> {
        match (values_of, every_series) {
            (_, false) => LabelScope::All,
            (None, true) => LabelScope::Names,
            (Some(name), true) => LabelScope::Values(name),
        }
    }
}

/// What changed in a shard's label sources, for `LabelGeneration::advance`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LabelChange<'a> {
    /// The block list changed, or the shard cannot tell what did: every table may have.
    pub everything: bool,
    /// The head's name set changed.
    pub names: bool,
    /// Names whose value set in the head changed.
    pub values: &'a [&'a str],
    /// The blocks' name tables, in the shard's block order, when the block list changed.
    pub block_names: Option<&'a [Arc<StringList>]>,
    /// The head's name table, when it changed.
    pub head_names: Option<&'a Arc<StringList>>,
    /// Each block's value sets (as `block_names`), when the block list changed.
    pub block_values: Option<&'a [Arc<ValueSets>]>,
    /// The head's value sets of the names in `values` (of every head name when
    /// `everything`): `None` for a name with no value or more than `PUBLISHED_VALUES_MAX`.
    /// `None` as a whole: not made, which withdraws the head's published sets.
    pub head_values: Option<&'a [NamedValueSet<'a>]>,
}

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
    /// The generation at which every table last changed (the block list changed).
    floor: u64,
    /// The generation at which the name set last changed.
    names: u64,
    /// The generation at which each name's value set last changed, for the names changed
    /// since `floor` (a name not here is at `floor`). Emptied when `floor` moves, so it
    /// holds at most the names created or changed between two block-list changes.
    values: HashMap<String, u64>,
    /// `[min, max)` of each block, in the shard's order.
    blocks: Vec<(i64, i64)>,
    head: Option<(i64, i64)>,
    /// Each block's label names (as `blocks`) and the head's, as of `names`; `None` until
    /// the shard published them.
    block_names: Option<Vec<Arc<StringList>>>,
    head_names: Option<Arc<StringList>>,
    /// Each block's small value sets (as `blocks`) and the head's, as of the generation of
    /// each name's value set; `None` until published or once withdrawn.
    block_values: Option<Vec<Arc<ValueSets>>>,
    head_values: Option<ValueSets>,
}

impl Published {
    fn scope_generation(&self, scope: LabelScope<'_>) -> u64 {
        match scope {
            LabelScope::All => self.generation,
            LabelScope::Names => self.floor.max(self.names),
            LabelScope::Values(name) => self.floor.max(self.values.get(name).copied().unwrap_or(0)),
        }
    }
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

    /// The shard's sources for `[mint, maxt]` as last published, at the generation of what
    /// `scope` reads.
    pub fn sources(&self, scope: LabelScope<'_>, mint: i64, maxt: i64) -> LabelSources {
        let p = self.lock();
        LabelSources::pick(
            p.scope_generation(scope),
            p.blocks.iter().copied(),
            p.head,
            mint,
            maxt,
        )
    }

    /// The label names over every series in the shard's sources for `[mint, maxt]`, without
    /// asking the shard: the name table of each source `sources` picks (their union is the
    /// shard's answer), and those sources, at the generation of the name set. `None` while
    /// the shard has not published its tables.
    pub fn names_over(&self, mint: i64, maxt: i64) -> Option<(LabelSources, Vec<Arc<StringList>>)> {
        let p = self.lock();
        let (blocks, head) = (p.block_names.as_ref()?, p.head_names.as_ref()?);
        if blocks.len() != p.blocks.len() {
            return None;
        }
        let sources = LabelSources::pick(
            p.scope_generation(LabelScope::Names),
            p.blocks.iter().copied(),
            p.head,
            mint,
            maxt,
        );
        let mut tables: Vec<_> = sources
            .blocks
            .iter()
            .map(|&i| blocks[i as usize].clone())
            .collect();
        if sources.head {
            tables.push(head.clone());
        }
        Some((sources, tables))
    }

    /// The values of `name` over every series in the shard's sources for `[mint, maxt]`,
    /// without asking the shard: the published value set of each source `sources` picks
    /// that holds the name (their union is the shard's answer), and those sources, at the
    /// generation of `name`'s value set. `None` when a picked source holds the name without
    /// a published set (too many values), or while the shard has published none.
    pub fn values_over(
        &self,
        name: &str,
        mint: i64,
        maxt: i64,
    ) -> Option<(LabelSources, Vec<Arc<StringList>>)> {
        let p = self.lock();
        let (block_names, head_names) = (p.block_names.as_ref()?, p.head_names.as_ref()?);
        let (block_values, head_values) = (p.block_values.as_ref()?, p.head_values.as_ref()?);
        if block_names.len() != p.blocks.len() || block_values.len() != p.blocks.len() {
            return None;
        }
        let sources = LabelSources::pick(
            p.scope_generation(LabelScope::Values(name)),
            p.blocks.iter().copied(),
            p.head,
            mint,
            maxt,
        );
        // A source without the name adds nothing; one with it must have its set published.
        let set_of = |names: &StringList, sets: &ValueSets| match sets.get(name) {
            Some(set) => Some(Some(set.clone())),
            None if names.contains(name) => None,
            None => Some(None),
        };
        let mut tables = Vec::new();
        for &i in &sources.blocks {
            let i = i as usize;
            tables.extend(set_of(&block_names[i], &block_values[i])?);
        }
        if sources.head {
            tables.extend(set_of(head_names, head_values)?);
        }
        Some((sources, tables))
    }

    /// The generation last published.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The generation at which what `scope` reads last changed.
    pub fn scope_generation(&self, scope: LabelScope<'_>) -> u64 {
        self.lock().scope_generation(scope)
    }

    /// A new generation: the shard's label sources may answer differently from now on, in
    /// what `change` names. `blocks` is the new block list's spans, in the shard's order;
    /// `change` carries new name tables for every one of them when the list changed, and
    /// the head's when its name set did. Returns the generation.
    pub fn advance(
        &self,
        blocks: Vec<(i64, i64)>,
        head: Option<(i64, i64)>,
        change: LabelChange<'_>,
    ) -> u64 {
        let mut p = self.lock();
        p.generation += 1;
        let g = p.generation;
        if change.everything {
            p.floor = g;
            p.values.clear();
        }
        if change.names {
            p.names = g;
        }
        for &name in change.values {
            match p.values.get_mut(name) {
                Some(at) => *at = g,
                None => {
                    p.values.insert(name.to_string(), g);
                }
            }
        }
        // A change without its new tables withdraws the old ones: the router then asks.
        if change.everything || change.block_names.is_some() {
            p.block_names = change.block_names.map(<[_]>::to_vec);
        }
        if change.everything || change.names || change.head_names.is_some() {
            p.head_names = change.head_names.cloned();
        }
        if change.everything || change.block_values.is_some() {
            p.block_values = change.block_values.map(<[_]>::to_vec);
        }
        if change.everything {
            p.head_values = change.head_values.map(|sets| {
                sets.iter()
                    .filter_map(|(name, set)| Some((name.to_string(), set.clone()?)))
                    .collect()
            });
        } else if !change.values.is_empty() || change.head_values.is_some() {
            match (change.head_values, p.head_values.as_mut()) {
                (Some(sets), Some(published)) => {
                    for (name, set) in sets {
                        match set {
                            Some(set) => {
                                published.insert(name.to_string(), set.clone());
                            }
                            None => {
                                published.remove(*name);
                            }
                        }
                    }
                }
                _ => p.head_values = None,
            }
        }
        p.blocks = blocks;
        p.head = head;
        g
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
        assert_eq!(g.sources(LabelScope::All, 0, 10).generation, 0);
        let everything = LabelChange {
            everything: true,
            ..LabelChange::default()
        };
        assert_eq!(g.advance(vec![(0, 5)], None, everything), 1);
        let s = g.sources(LabelScope::All, 0, 10);
        assert_eq!((s.generation, s.head, s.blocks), (1, false, vec![0]));
        g.set_head_span(Some((5, 8)));
        let s = g.sources(LabelScope::All, 0, 10);
        assert_eq!((s.generation, s.head), (1, true));
        assert!(!g.sources(LabelScope::All, 9, 10).head);
    }

    #[test]
    fn names_come_from_the_tables_published_with_the_generation() {
        let g = LabelGeneration::new();
        let list = |names: &[&str]| Arc::new(StringList::from_sorted(names.iter().copied()));
        assert!(g.names_over(0, 10).is_none());
        let blocks = [list(&["a", "b"]), list(&["c"])];
        let head = list(&["d"]);
        let everything = LabelChange {
            everything: true,
            block_names: Some(&blocks),
            head_names: Some(&head),
            ..LabelChange::default()
        };
        g.advance(vec![(0, 5), (5, 10)], Some((10, 20)), everything);
        let names = |mint, maxt| {
            let (sources, tables) = g.names_over(mint, maxt).unwrap();
            let union = StringList::merge(tables.iter().map(|t| t.iter()));
            (
                sources.generation,
                union.iter().map(str::to_owned).collect::<Vec<_>>(),
            )
        };
        assert_eq!(names(0, 4), (1, vec!["a".into(), "b".into()]));
        assert_eq!(names(5, 10), (1, vec!["c".into(), "d".into()]));
        // Series of known pairs: the same tables, the name set's generation unmoved.
        g.advance(
            vec![(0, 5), (5, 10)],
            Some((10, 20)),
            LabelChange::default(),
        );
        assert_eq!(names(10, 10), (1, vec!["d".into()]));
        // A new head name comes with its table.
        let head = list(&["d", "e"]);
        let change = LabelChange {
            names: true,
            head_names: Some(&head),
            ..LabelChange::default()
        };
        g.advance(vec![(0, 5), (5, 10)], Some((10, 20)), change);
        assert_eq!(names(10, 10), (3, vec!["d".into(), "e".into()]));
        // A change published without its tables withdraws them.
        let change = LabelChange {
            names: true,
            ..LabelChange::default()
        };
        g.advance(vec![(0, 5), (5, 10)], Some((10, 20)), change);
        assert!(g.names_over(10, 10).is_none());
        let blocks_only = LabelChange {
            everything: true,
            block_names: Some(&blocks),
            ..LabelChange::default()
        };
        g.advance(vec![(0, 5), (5, 10)], Some((10, 20)), blocks_only);
        assert!(g.names_over(0, 4).is_none());
    }

    #[test]
    fn small_value_sets_come_from_the_sets_published_with_the_generation() {
        let g = LabelGeneration::new();
        let list = |names: &[&str]| Arc::new(StringList::from_sorted(names.iter().copied()));
        let sets = |pairs: &[(&str, &[&str])]| -> ValueSets {
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), list(v)))
                .collect()
        };
        assert!(g.values_over("job", 0, 10).is_none());
        // Block 0 holds `job` and `instance` (too many values: no set), block 1 neither.
        let block_names = [list(&["instance", "job"]), list(&["x"])];
        let block_values = [
            Arc::new(sets(&[("job", &["a", "b"])])),
            Arc::new(sets(&[("x", &["1"])])),
        ];
        let head_names = list(&["instance", "job"]);
        let head_values = [("job", Some(list(&["c"]))), ("instance", None)];
        let everything = LabelChange {
            everything: true,
            block_names: Some(&block_names),
            head_names: Some(&head_names),
            block_values: Some(&block_values),
            head_values: Some(&head_values),
            ..LabelChange::default()
        };
        let spans = || vec![(0, 5), (5, 10)];
        g.advance(spans(), Some((10, 20)), everything);
        let values = |name, mint, maxt| {
            let (sources, tables) = g.values_over(name, mint, maxt)?;
            let union = StringList::merge(tables.iter().map(|t| t.iter()));
            Some((
                sources.generation,
                union.iter().map(str::to_owned).collect::<Vec<_>>(),
            ))
        };
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(values("job", 0, 20), Some((1, strings(&["a", "b", "c"]))));
        assert_eq!(values("job", 5, 9), Some((1, vec![])));
        assert_eq!(values("x", 0, 20), Some((1, strings(&["1"]))));
        // `instance` is in sources without a set: the router must ask.
        assert_eq!(values("instance", 0, 20), None);
        assert_eq!(values("instance", 5, 9), Some((1, vec![])));
        // A new head value of `job`: its set is replaced with the generation.
        let head_values = [("job", Some(list(&["c", "d"])))];
        let change = LabelChange {
            values: &["job"],
            head_values: Some(&head_values),
            ..LabelChange::default()
        };
        g.advance(spans(), Some((10, 20)), change);
        assert_eq!(values("job", 10, 20), Some((2, strings(&["c", "d"]))));
        // `job` grows past the bound in the head: no set, so no answer without the shard.
        let head_values = [("job", None)];
        let change = LabelChange {
            values: &["job"],
            head_values: Some(&head_values),
            ..LabelChange::default()
        };
        g.advance(spans(), Some((10, 20)), change);
        assert_eq!(values("job", 10, 20), None);
        assert_eq!(values("job", 0, 4), Some((3, strings(&["a", "b"]))));
        // A change of value sets published without them withdraws the head's.
        let change = LabelChange {
            values: &["instance"],
            ..LabelChange::default()
        };
        g.advance(spans(), Some((10, 20)), change);
        assert_eq!(values("x", 10, 20), None);
    }

    #[test]
    fn each_scope_moves_only_with_what_it_reads() {
        let g = LabelGeneration::new();
        let at = |scope| g.scope_generation(scope);
        let (all, names, job, instance) = (
            LabelScope::All,
            LabelScope::Names,
            LabelScope::Values("job"),
            LabelScope::Values("instance"),
        );
        let everything = LabelChange {
            everything: true,
            ..LabelChange::default()
        };
        g.advance(vec![], None, everything);
        assert_eq!([at(all), at(names), at(job), at(instance)], [1; 4]);
        // Series of existing pairs only.
        g.advance(vec![], None, LabelChange::default());
        assert_eq!([at(all), at(names), at(job), at(instance)], [2, 1, 1, 1]);
        let change = LabelChange {
            values: &["instance"],
            ..LabelChange::default()
        };
        g.advance(vec![], None, change);
        assert_eq!([at(all), at(names), at(job), at(instance)], [3, 1, 1, 3]);
        let change = LabelChange {
            names: true,
            values: &["zone"],
            ..LabelChange::default()
        };
        g.advance(vec![], None, change);
        assert_eq!(at(names), 4);
        assert_eq!(at(LabelScope::Values("zone")), 4);
        assert_eq!([at(job), at(instance)], [1, 3]);
        // A block-list change moves every scope and forgets the per-name generations.
        g.advance(vec![(0, 1)], None, everything);
        assert_eq!([at(all), at(names), at(job), at(instance)], [5; 4]);
        assert!(g.lock().values.is_empty());
        // Requests with matchers read series: the whole generation.
        assert_eq!(LabelScope::of(Some("job"), false), all);
        assert_eq!(LabelScope::of(None, true), names);
        assert_eq!(LabelScope::of(Some("job"), true), job);
    }
}
