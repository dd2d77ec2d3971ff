//! The head's inverted index: for every label name and value, the sorted ids of the series
//! carrying that pair, plus the list of all series. It owns answering "which series match
//! these matchers" (Prometheus's `PostingsForMatchers`) and listing label names and values.
//! It never owns series or strings: ids are the head's series ids, names and values the
//! head's `SymbolTable` ids, and label sets of individual series come from the head.
//!
//! Memory shapes it: at 1M series x ~10 labels it holds ~10M ids in ~1M lists, most of
//! them (unique values such as `instance`) holding one id. A list is a `SmallVec` of 24
//! bytes that keeps up to four ids inline, so those lists cost no allocation of their own.
//! The few lists holding a large share of the ids (`job`, `handler`) are bitmaps instead
//! (see `posting_list`), kept in a side table of their name so that the common list stays
//! 24 bytes: their entry in the value table holds an empty list, which a sorted list
//! never is.

use crate::index::id_set::IdSet;
use crate::index::matcher::{MatchType, Matcher};
use crate::index::posting_list::{bits_want_sorted, sorted_wants_bits, Ids};
use crate::index::postings::{difference_in_place, intersect, union};
use crate::labels::symbols::{SymbolId, SymbolTable};
use hashbrown::{HashMap, HashSet};
use smallvec::SmallVec;
use std::borrow::Cow;

type List = SmallVec<[u32; 4]>;

/// The lists of one label name's values.
struct Values {
    /// value -> its sorted ids; empty when the ids are in `dense`.
    lists: HashMap<SymbolId, List, ahash::RandomState>,
    /// value -> its ids as a bitmap, for the values whose list is dense.
    dense: HashMap<SymbolId, IdSet, ahash::RandomState>,
}

impl Values {
    fn new() -> Self {
        Values {
            lists: HashMap::with_hasher(hasher()),
            dense: HashMap::with_hasher(hasher()),
        }
    }

    fn get(&self, value: &SymbolId) -> Option<Ids<'_>> {
        let list = self.lists.get(value)?;
        if list.is_empty() {
            self.dense.get(value).map(Ids::Bits)
        } else {
            Some(Ids::Sorted(list.as_slice()))
        }
    }

    fn iter(&self) -> impl Iterator<Item = (SymbolId, Ids<'_>)> {
        self.lists.iter().filter_map(|(&v, list)| {
            if list.is_empty() {
                self.dense.get(&v).map(|b| (v, Ids::Bits(b)))
            } else {
                Some((v, Ids::Sorted(list.as_slice())))
            }
        })
    }

    fn len(&self) -> usize {
        self.lists.len()
    }

    fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// Adds `id` to `value`'s list, creating it; true if the list is new.
    fn add(&mut self, value: SymbolId, id: u32) -> bool {
        let list = self.lists.entry(value).or_default();
        if list.is_empty() {
            let Some(bits) = self.dense.get_mut(&value) else {
                list.push(id);
                return true;
            };
            // Only an id far outside the window can spread a bitmap thin.
            if bits.insert(id) && bits_want_sorted(bits) {
                *list = bits.iter().collect();
                self.dense.remove(&value);
            }
            return false;
        }
        let Some(pos) = insert_position(list, id) else {
            return false;
        };
        if list.len() == list.capacity() {
            // Growing: the moment to switch to a bitmap if the ids are dense, which costs no
            // more than the reallocation it replaces.
            let (first, last) = (list[0].min(id), list[list.len() - 1].max(id));
            if sorted_wants_bits(list.len() + 1, first, last) {
                let mut bits = IdSet::from_sorted(list);
                bits.insert(id);
                *list = List::new();
                self.dense.insert(value, bits);
                return false;
            }
        }
        list.insert(pos, id);
        false
    }

    /// Removes `ids` (sorted) from `value`'s list, dropping the list if left empty and
    /// switching its form if its density crossed a threshold; true if the list is gone.
    fn remove(&mut self, value: SymbolId, ids: &[u32]) -> bool {
        let Some(list) = self.lists.get_mut(&value) else {
            return false;
        };
        if list.is_empty() {
            let Some(bits) = self.dense.get_mut(&value) else {
                // Unreachable: an empty list always has its bitmap. Drop the entry rather
                // than keep a value with no series.
                self.lists.remove(&value);
                return true;
            };
            bits.remove_all(ids);
            if bits.is_empty() {
                self.dense.remove(&value);
                self.lists.remove(&value);
                return true;
            }
            if bits_want_sorted(bits) {
                let mut sorted = List::with_capacity(bits.len());
                sorted.extend(bits.iter());
                *list = sorted;
                self.dense.remove(&value);
            }
            return false;
        }
        let kept = difference_in_place(list, ids);
        list.truncate(kept);
        if list.is_empty() {
            self.lists.remove(&value);
            return true;
        }
        if sorted_wants_bits(list.len(), list[0], list[list.len() - 1]) {
            // Garbage collection shrank the window under the ids left.
            let bits = IdSet::from_sorted(list);
            *list = List::new();
            self.dense.insert(value, bits);
        } else if list.spilled() && list.len() * 4 < list.capacity() {
            list.shrink_to_fit();
        }
        false
    }

    fn heap_bytes(&self) -> usize {
        let sorted: usize = self
            .lists
            .values()
            .filter(|l| l.spilled())
            .map(|l| l.capacity() * std::mem::size_of::<u32>())
            .sum();
        let bits: usize = self.dense.values().map(IdSet::heap_bytes).sum();
        self.lists.allocation_size() + self.dense.allocation_size() + sorted + bits
    }
}

/// Keys are the head's own sequential ids, never chosen by a client, so a fixed seed is
/// safe and saves each map a trip to the random source.
fn hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(0x9e37_79b9, 0x7f4a_7c15, 0xf39c_c060, 0x5ced_c834)
}

pub struct MemPostings {
    /// Every live series, the base from which negative matchers subtract: a bitmap, as it
    /// holds every id (4 bytes a series as a list, ~1 bit as a bitmap).
    all: IdSet,
    /// name -> value -> ids. A name or value with no series has no entry.
    by_name: HashMap<SymbolId, Values, ahash::RandomState>,
    /// What changed in the label tables since `take_changes` (see `LabelChanges`).
    changes: LabelChanges,
}

/// Which label tables changed: names whose value set changed (a (name, value) list was
/// created or emptied), and whether the name set changed (a name's first list appeared or
/// its last went). Recorded only where a list is created or removed, the slow path of an
/// append or a truncation; the shard publishes it for the router's kept label answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelChanges {
    pub names: bool,
    pub values: HashSet<SymbolId, ahash::RandomState>,
}

impl Default for LabelChanges {
    fn default() -> Self {
        LabelChanges {
            names: false,
            values: HashSet::with_hasher(hasher()),
        }
    }
}

impl LabelChanges {
    pub fn is_empty(&self) -> bool {
        !self.names && self.values.is_empty()
    }
}

impl Default for MemPostings {
    fn default() -> Self {
        Self::new()
    }
}

impl MemPostings {
    pub fn new() -> Self {
        MemPostings {
            all: IdSet::new(),
            by_name: HashMap::with_hasher(hasher()),
            changes: LabelChanges::default(),
        }
    }

    /// What changed in the label tables since the last call, and starts recording afresh.
    pub fn take_changes(&mut self) -> LabelChanges {
        if self.changes.is_empty() {
            return LabelChanges::default();
        }
        std::mem::take(&mut self.changes)
    }

    /// Indexes series `id` under each of its (name, value) pairs. The head assigns ids
    /// increasingly, so this appends; an older id (WAL replay out of order) is inserted in
    /// place and a repeated one ignored. Values must be non-empty, as in a `Labels`.
    pub fn add(&mut self, id: u32, labels: &[(SymbolId, SymbolId)]) {
        self.all.insert(id);
        for &(name, value) in labels {
            let values = self.by_name.entry(name).or_insert_with(Values::new);
            self.changes.names |= values.is_empty();
            if values.add(value, id) {
                self.changes.values.insert(name);
            }
        }
    }

    /// Removes the series `ids` (sorted, as garbage collection produces them) from every
    /// list. `series_labels` gives each one's label pairs, so only the lists they are in are
    /// touched; lists, values and names left empty are dropped.
    pub fn delete<I: IntoIterator<Item = (SymbolId, SymbolId)>>(
        &mut self,
        ids: &[u32],
        series_labels: impl Fn(u32) -> I,
    ) {
        if ids.is_empty() {
            return;
        }
        let mut affected: Vec<(SymbolId, SymbolId)> =
            ids.iter().flat_map(|&id| series_labels(id)).collect();
        affected.sort_unstable();
        affected.dedup();

        self.all.remove_all(ids);
        for (name, value) in affected {
            let Some(values) = self.by_name.get_mut(&name) else {
                continue;
            };
            if values.remove(value, ids) {
                self.changes.values.insert(name);
            }
            if values.is_empty() {
                self.by_name.remove(&name);
                self.changes.names = true;
            }
        }
    }

    /// The ids of series carrying `name=value`.
    pub fn postings(&self, name: SymbolId, value: SymbolId) -> Ids<'_> {
        self.by_name
            .get(&name)
            .and_then(|values| values.get(&value))
            .unwrap_or(Ids::EMPTY)
    }

    /// The ids of all series, ascending.
    pub fn all(&self) -> Vec<u32> {
        self.all.to_vec()
    }

    /// Number of series indexed.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The sorted ids of the series matching every matcher: Prometheus's
    /// `PostingsForMatchers`, with its semantics exactly:
    /// - a series lacking a label is matched as if its value were "", so a matcher that
    ///   matches "" also selects series without the label (`{a=""}` is "no `a`",
    ///   `{a!="x"}` includes series without `a`, `{a=~".*"}` is everything);
    /// - such matchers, and all `!=`/`!~`, are applied by subtracting the series whose value
    ///   fails them, so a selector made only of them starts from all series;
    /// - no matchers select nothing.
    pub fn select(&self, symbols: &SymbolTable, matchers: &[Matcher]) -> Vec<u32> {
        if matchers.is_empty() {
            return Vec::new();
        }
        // A name some matcher requires non-empty: every selected series has the label, so
        // the other matchers on that name need only consider present values.
        let must_be_set = |name: &str| {
            matchers
                .iter()
                .any(|m| m.name == name && !m.matches_empty())
        };

        let mut intersecting: Vec<Vec<Ids<'_>>> = Vec::new();
        let mut subtracting: Vec<Vec<Ids<'_>>> = Vec::new();
        for m in matchers {
            if m.positive_matches_all() {
                match m.kind {
                    MatchType::NotRegex => return Vec::new(),
                    _ => continue,
                }
            }
            let values = symbols
                .lookup(&m.name)
                .and_then(|name| self.by_name.get(&name));
            if !m.matches_empty() || (must_be_set(&m.name) && !m.kind.is_negative()) {
                // `a="x"`, `a=~"x|y"`, `a!=""`, or `a=~"|x"` next to `a!=""`: the series
                // with a value the matcher accepts.
                let lists = lists_where(symbols, values, m, true);
                if lists.is_empty() {
                    return Vec::new();
                }
                intersecting.push(lists);
            } else {
                // `a!="x"`, `a=""`, `a!~"x.*"`: all but the series whose value fails it.
                let lists = lists_where(symbols, values, m, false);
                if !lists.is_empty() {
                    subtracting.push(lists);
                }
            }
        }

        // Start from the smallest group; a group much larger than what is left, or holding
        // bitmaps, is applied by looking each remaining id up in its lists instead of
        // merging them (a `mode=~"user|system"` next to a metric name must not merge 500k
        // ids for 5k).
        intersecting.sort_by_key(|g| total_len(g));
        let mut groups = intersecting.into_iter();
        let mut out = match groups.next() {
            None => self.all.to_vec(),
            Some(first) => union_of(&first).into_owned(),
        };
        for g in groups {
            if out.is_empty() {
                return out;
            }
            if lookups_pay(&g, out.len()) {
                out.retain(|id| in_any(&g, *id));
            } else {
                let u = union_of(&g);
                out = intersect(&[&out, &u]);
            }
        }
        for g in &subtracting {
            if out.is_empty() {
                break;
            }
            if lookups_pay(g, out.len()) {
                out.retain(|id| !in_any(g, *id));
            } else {
                let u = union_of(g);
                let kept = difference_in_place(&mut out, &u);
                out.truncate(kept);
            }
        }
        out
    }

    /// All label names with at least one series, sorted.
    pub fn label_names<'s>(&self, symbols: &'s SymbolTable) -> Vec<&'s str> {
        sorted_strings(symbols, self.by_name.keys().copied())
    }

    /// All values of label `name` with at least one series, sorted.
    pub fn label_values<'s>(&self, symbols: &'s SymbolTable, name: &str) -> Vec<&'s str> {
        match symbols.lookup(name).and_then(|n| self.by_name.get(&n)) {
            Some(values) => sorted_strings(symbols, values.lists.keys().copied()),
            None => Vec::new(),
        }
    }

    /// How many values label `name` has (0: no series carries it), without listing them:
    /// whether its value set is small enough to be published (`label_generation`).
    pub fn value_count(&self, symbols: &SymbolTable, name: &str) -> usize {
        symbols
            .lookup(name)
            .and_then(|n| self.by_name.get(&n))
            .map_or(0, |values| values.len())
    }

    /// The label names carried by at least one of the series `ids` (sorted, e.g. from
    /// `select`), sorted. `series_labels` gives a series' label pairs.
    pub fn label_names_for<'s, I: IntoIterator<Item = (SymbolId, SymbolId)>>(
        &self,
        symbols: &'s SymbolTable,
        ids: &[u32],
        series_labels: impl Fn(u32) -> I,
    ) -> Vec<&'s str> {
        let mut seen: HashSet<SymbolId, ahash::RandomState> = HashSet::with_hasher(hasher());
        for &id in ids {
            seen.extend(series_labels(id).into_iter().map(|(n, _)| n));
            // Names are few; once every one is seen, no further series can add any.
            if seen.len() >= self.by_name.len() {
                break;
            }
        }
        sorted_strings(symbols, seen.into_iter())
    }

    /// The values of label `name` carried by at least one of the series `ids` (sorted),
    /// sorted. `series_labels` gives a series' label pairs.
    pub fn label_values_for<'s, I: IntoIterator<Item = (SymbolId, SymbolId)>>(
        &self,
        symbols: &'s SymbolTable,
        name: &str,
        ids: &[u32],
        series_labels: impl Fn(u32) -> I,
    ) -> Vec<&'s str> {
        let Some(name) = symbols.lookup(name) else {
            return Vec::new();
        };
        let Some(values) = self.by_name.get(&name) else {
            return Vec::new();
        };
        if values.len() <= ids.len() {
            // Few values (`job`) for many series: probe each value's list, which stops at
            // the first shared id.
            let found = values
                .iter()
                .filter(|(_, list)| list.intersects(ids))
                .map(|(v, _)| v);
            sorted_strings(symbols, found)
        } else {
            // Many values (`instance`) for few series: read the series' own labels.
            let found = ids.iter().filter_map(|&id| {
                series_labels(id)
                    .into_iter()
                    .find(|&(n, _)| n == name)
                    .map(|(_, v)| v)
            });
            let set: HashSet<SymbolId, ahash::RandomState> = {
                let mut s = HashSet::with_hasher(hasher());
                s.extend(found);
                s
            };
            sorted_strings(symbols, set.into_iter())
        }
    }

    /// Bytes allocated on the heap by the index (capacities, not lengths).
    pub fn heap_bytes(&self) -> usize {
        let lists: usize = self.by_name.values().map(Values::heap_bytes).sum();
        self.all.heap_bytes() + self.by_name.allocation_size() + lists
    }
}

impl std::fmt::Debug for MemPostings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemPostings")
            .field("series", &self.all.len())
            .field("names", &self.by_name.len())
            .finish()
    }
}

/// The lists of the values of `m`'s label for which `m.matches(value) == want`.
fn lists_where<'a>(
    symbols: &SymbolTable,
    values: Option<&'a Values>,
    m: &Matcher,
    want: bool,
) -> Vec<Ids<'a>> {
    let Some(values) = values else {
        return Vec::new();
    };
    // A literal or literal set names the values its positive form accepts: look them up
    // rather than test every value of the label (`instance` may have a million).
    if let Some(set) = m.set_matches() {
        if want != m.kind.is_negative() && set.len() <= values.len() {
            return set
                .iter()
                .filter_map(|s| symbols.lookup(s))
                .filter_map(|v| values.get(&v))
                .collect();
        }
    }
    values
        .iter()
        .filter(|(v, _)| m.matches(symbols.resolve(*v)) == want)
        .map(|(_, l)| l)
        .collect()
}

/// Above this ratio of a group's ids to the ids left, lookups beat a merge.
const LOOKUP_RATIO: usize = 16;

/// Above this many sorted lists next to a bitmap, a group is merged rather than probed.
const LOOKUP_MAX_SORTED: usize = 8;

fn total_len(lists: &[Ids<'_>]) -> usize {
    lists.iter().map(|l| l.len()).sum()
}

/// Whether probing `lists` for each of `left` ids beats merging them: when they are much
/// longer, or hold a bitmap (O(1) a probe, where a merge would first decode it) and few
/// sorted lists to binary-search.
fn lookups_pay(lists: &[Ids<'_>], left: usize) -> bool {
    let sorted = lists.iter().filter(|l| !l.is_bits()).count();
    (sorted < lists.len() && sorted <= LOOKUP_MAX_SORTED) || total_len(lists) > LOOKUP_RATIO * left
}

fn in_any(lists: &[Ids<'_>], id: u32) -> bool {
    lists.iter().any(|l| l.contains(id))
}

/// The union of `lists`, borrowed when it is a single sorted list.
fn union_of<'a>(lists: &[Ids<'a>]) -> Cow<'a, [u32]> {
    match lists {
        [Ids::Sorted(one)] => Cow::Borrowed(*one),
        [Ids::Bits(one)] => Cow::Owned(one.to_vec()),
        _ if lists.iter().all(Ids::is_bits) => {
            let sets: Vec<&IdSet> = lists
                .iter()
                .filter_map(|l| match l {
                    Ids::Bits(b) => Some(*b),
                    Ids::Sorted(_) => None,
                })
                .collect();
            Cow::Owned(IdSet::union_to_vec(&sets))
        }
        _ => {
            let decoded: Vec<Vec<u32>> = lists
                .iter()
                .filter_map(|l| match l {
                    Ids::Bits(b) => Some(b.to_vec()),
                    Ids::Sorted(_) => None,
                })
                .collect();
            let mut slices: Vec<&[u32]> = lists
                .iter()
                .filter_map(|l| match l {
                    Ids::Sorted(s) => Some(*s),
                    Ids::Bits(_) => None,
                })
                .collect();
            slices.extend(decoded.iter().map(|d| d.as_slice()));
            Cow::Owned(union(&slices))
        }
    }
}

/// The strings of `ids`, sorted, borrowed from the table: callers merge them with other
/// sorted sources without an allocation per string.
fn sorted_strings(symbols: &SymbolTable, ids: impl Iterator<Item = SymbolId>) -> Vec<&str> {
    let mut out: Vec<&str> = ids.map(|id| symbols.resolve(id)).collect();
    out.sort_unstable();
    out
}

/// Where id goes in a sorted list: the end on the head's increasing ids, found in O(1);
/// `None` if it is already there.
#[inline]
fn insert_position(list: &[u32], id: u32) -> Option<usize> {
    match list.last() {
        Some(&last) if last >= id => list.binary_search(&id).err(),
        _ => Some(list.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A head in miniature: symbols, postings, and each series' label pairs by id.
    #[derive(Default)]
    struct Head {
        symbols: SymbolTable,
        postings: MemPostings,
        series: Vec<Vec<(SymbolId, SymbolId)>>,
    }

    impl Head {
        fn add(&mut self, labels: &[(&str, &str)]) -> u32 {
            let id = self.series.len() as u32;
            let mut pairs: Vec<_> = labels
                .iter()
                .map(|(n, v)| (self.symbols.intern(n), self.symbols.intern(v)))
                .collect();
            pairs.sort_unstable();
            self.postings.add(id, &pairs);
            self.series.push(pairs);
            id
        }

        fn value(&self, id: u32, name: &str) -> &str {
            self.series[id as usize]
                .iter()
                .find(|(n, _)| self.symbols.resolve(*n) == name)
                .map_or("", |(_, v)| self.symbols.resolve(*v))
        }

        /// The definition `select` must agree with.
        fn brute_force(&self, live: &[u32], ms: &[Matcher]) -> Vec<u32> {
            if ms.is_empty() {
                return vec![];
            }
            live.iter()
                .copied()
                .filter(|&id| ms.iter().all(|m| m.matches(self.value(id, &m.name))))
                .collect()
        }

        fn select(&self, ms: &[Matcher]) -> Vec<u32> {
            self.postings.select(&self.symbols, ms)
        }

        fn labels_of<'s>(
            &'s self,
        ) -> impl Fn(u32) -> std::iter::Copied<std::slice::Iter<'s, (SymbolId, SymbolId)>> + 's
        {
            |id| self.series[id as usize].iter().copied()
        }
    }

    fn m(kind: MatchType, n: &str, v: &str) -> Matcher {
        Matcher::new(kind, n, v).unwrap()
    }
    use MatchType::{Equal as EQ, NotEqual as NEQ, NotRegex as NRE, Regex as RE};

    /// 0: a=1 b=1, 1: a=1 b=2, 2: a=2, 3: b=1, 4: a=1 c=x
    fn model() -> Head {
        let mut h = Head::default();
        h.add(&[("a", "1"), ("b", "1")]);
        h.add(&[("a", "1"), ("b", "2")]);
        h.add(&[("a", "2")]);
        h.add(&[("b", "1")]);
        h.add(&[("a", "1"), ("c", "x")]);
        h
    }

    #[test]
    fn prometheus_rules() {
        let h = model();
        let cases: &[(&[Matcher], &[u32])] = &[
            (&[m(EQ, "a", "1")], &[0, 1, 4]),
            (&[m(EQ, "a", "1"), m(EQ, "b", "1")], &[0]),
            // A matcher matching "" also selects series lacking the label.
            (&[m(EQ, "a", "")], &[3]),
            (&[m(NEQ, "a", "1")], &[2, 3]),
            (&[m(RE, "a", ".*")], &[0, 1, 2, 3, 4]),
            (&[m(NRE, "a", ".*")], &[]),
            (&[m(RE, "a", ".+")], &[0, 1, 2, 4]),
            (&[m(NRE, "a", ".+")], &[3]),
            (&[m(NEQ, "a", "")], &[0, 1, 2, 4]),
            (&[m(RE, "a", "1|2")], &[0, 1, 2, 4]),
            (&[m(RE, "a", "|2")], &[2, 3]),
            (&[m(NRE, "a", "1|3")], &[2, 3]),
            (&[m(RE, "b", "1"), m(NEQ, "a", "1")], &[3]),
            // Must-be-set interplay: `a=~"|2"` next to `a!=""` only keeps a=2.
            (&[m(RE, "a", "|2"), m(NEQ, "a", "")], &[2]),
            (&[m(RE, "a", ".+"), m(EQ, "a", "")], &[]),
            (&[m(RE, "a", ".+"), m(NEQ, "a", "1")], &[2]),
            // Only negative/empty-matching matchers start from all series.
            (&[m(NEQ, "a", "1"), m(NEQ, "b", "1")], &[2]),
            (&[m(EQ, "c", ""), m(NRE, "b", "2")], &[0, 2, 3]),
            // A name no series has.
            (&[m(EQ, "zz", "")], &[0, 1, 2, 3, 4]),
            (&[m(NEQ, "zz", "v")], &[0, 1, 2, 3, 4]),
            (&[m(EQ, "zz", "v")], &[]),
            (&[m(RE, "zz", ".+")], &[]),
            (&[m(RE, "zz", "v|")], &[0, 1, 2, 3, 4]),
            // A value no series has.
            (&[m(EQ, "a", "9")], &[]),
            (&[m(NEQ, "a", "9")], &[0, 1, 2, 3, 4]),
            // Regexes off the fast paths.
            (&[m(RE, "a", "[1-2]"), m(RE, "b", "\\d?")], &[0, 1, 2, 4]),
            (&[m(NRE, "c", "x+")], &[0, 1, 2, 3]),
            (&[], &[]),
        ];
        for (ms, want) in cases {
            assert_eq!(h.select(ms), *want, "{ms:?}");
            assert_eq!(h.brute_force(&h.postings.all(), ms), *want, "model {ms:?}");
        }
    }

    #[test]
    fn names_values_and_lookups() {
        let h = model();
        let s = &h.symbols;
        assert_eq!(h.postings.label_names(s), ["a", "b", "c"]);
        assert_eq!(h.postings.label_values(s, "a"), ["1", "2"]);
        assert_eq!(h.postings.label_values(s, "zz"), Vec::<String>::new());
        let (a, one) = (s.lookup("a").unwrap(), s.lookup("1").unwrap());
        assert_eq!(h.postings.postings(a, one).to_vec(), [0, 1, 4]);
        assert!(h.postings.postings(one, a).is_empty());

        let ids = h.select(&[m(EQ, "b", "1")]);
        assert_eq!(
            h.postings.label_names_for(s, &ids, h.labels_of()),
            ["a", "b"]
        );
        assert_eq!(
            h.postings.label_values_for(s, "a", &ids, h.labels_of()),
            ["1"]
        );
        assert_eq!(
            h.postings
                .label_values_for(s, "b", &[1, 2, 3], h.labels_of()),
            ["1", "2"]
        );
        // Both strategies: many ids for few values, and one id for several values.
        assert_eq!(
            h.postings
                .label_values_for(s, "a", &[0, 1, 2, 3, 4], h.labels_of()),
            ["1", "2"]
        );
        assert_eq!(
            h.postings.label_values_for(s, "a", &[2], h.labels_of()),
            ["2"]
        );
        assert_eq!(
            h.postings.label_values_for(s, "c", &[2], h.labels_of()),
            Vec::<String>::new()
        );
        assert_eq!(
            h.postings.label_names_for(s, &[], h.labels_of()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn delete_drops_empty_lists() {
        let mut h = model();
        let before = h.postings.heap_bytes();
        let labels: Vec<_> = h.series.clone();
        h.postings
            .delete(&[0, 4], |id| labels[id as usize].iter().copied());
        assert_eq!(h.postings.all(), [1, 2, 3]);
        assert_eq!(h.postings.label_names(&h.symbols), ["a", "b"]);
        assert_eq!(h.select(&[m(EQ, "a", "1")]), [1]);
        assert_eq!(h.select(&[m(EQ, "a", "")]), [3]);
        assert!(h.postings.heap_bytes() <= before);
        h.postings
            .delete(&[1, 2, 3], |id| labels[id as usize].iter().copied());
        assert!(h.postings.is_empty());
        assert_eq!(h.postings.label_names(&h.symbols), Vec::<String>::new());
    }

    #[test]
    fn records_which_label_tables_changed() {
        let mut h = Head::default();
        h.add(&[("job", "a"), ("instance", "1")]);
        let changes = h.postings.take_changes();
        let sym = |h: &Head, s: &str| h.symbols.lookup(s).unwrap();
        assert!(changes.names);
        let job = sym(&h, "job");
        let instance = sym(&h, "instance");
        assert_eq!(changes.values, [job, instance].into_iter().collect());
        assert!(h.postings.take_changes().is_empty());
        // Existing pairs only: nothing a label request reads changed.
        h.add(&[("job", "a"), ("instance", "1")]);
        assert!(h.postings.take_changes().is_empty());
        // A new value of an existing name.
        h.add(&[("job", "a"), ("instance", "2")]);
        let changes = h.postings.take_changes();
        assert!(!changes.names);
        assert_eq!(changes.values, [instance].into_iter().collect());
        // Removing a series whose values other series still carry changes nothing;
        // removing the last series with a value, and the last with a name, does.
        h.add(&[("job", "a"), ("zone", "x")]);
        h.postings.take_changes();
        let labels = h.series.clone();
        h.postings
            .delete(&[1], |id| labels[id as usize].iter().copied());
        assert!(h.postings.take_changes().is_empty());
        h.postings
            .delete(&[2], |id| labels[id as usize].iter().copied());
        let changes = h.postings.take_changes();
        assert!(!changes.names);
        assert_eq!(changes.values, [instance].into_iter().collect());
        h.postings
            .delete(&[3], |id| labels[id as usize].iter().copied());
        let changes = h.postings.take_changes();
        assert!(changes.names);
        assert_eq!(changes.values, [sym(&h, "zone")].into_iter().collect());
    }

    #[test]
    fn out_of_order_and_repeated_adds_stay_sorted() {
        let mut p = MemPostings::new();
        p.add(5, &[(0, 1)]);
        p.add(2, &[(0, 1)]);
        p.add(5, &[(0, 1)]);
        p.add(7, &[(0, 1)]);
        assert_eq!(p.all(), [2, 5, 7]);
        assert_eq!(p.postings(0, 1).to_vec(), [2, 5, 7]);
    }

    /// 100k series; correctness of selections with 1 to 3 matchers at a realistic size.
    #[test]
    fn hundred_thousand_series() {
        let mut h = Head::default();
        for i in 0..100_000u32 {
            let metric = format!("metric_{}", i % 10);
            let job = format!("job_{}", i % 7);
            let instance = format!("host-{}:9100", i / 10);
            let mut labels = vec![
                ("__name__", metric.as_str()),
                ("job", job.as_str()),
                ("instance", instance.as_str()),
            ];
            if i % 3 == 0 {
                labels.push(("env", "prod"));
            }
            h.add(&labels);
        }
        let all = h.postings.all().to_vec();
        let selectors: Vec<Vec<Matcher>> = vec![
            vec![m(EQ, "__name__", "metric_3")],
            vec![m(EQ, "__name__", "metric_3"), m(RE, "job", "job_1|job_2")],
            vec![
                m(EQ, "__name__", "metric_3"),
                m(NRE, "instance", "host-1.*"),
                m(NEQ, "job", "job_0"),
            ],
            vec![m(RE, "instance", "host-4242:9100|host-7:9100")],
            vec![m(RE, "instance", ".*:9100"), m(EQ, "env", "")],
            vec![m(RE, "job", "job_[0-3]"), m(NEQ, "env", "prod")],
            vec![
                m(RE, "env", ".+"),
                m(RE, "instance", "host-99.*"),
                m(NEQ, "__name__", "metric_0"),
            ],
        ];
        for ms in &selectors {
            let got = h.select(ms);
            assert_eq!(got, h.brute_force(&all, ms), "{ms:?}");
        }
        assert_eq!(h.select(&selectors[0]).len(), 10_000);
        assert_eq!(
            h.postings.label_values(&h.symbols, "instance").len(),
            10_000
        );
        assert!(h.postings.heap_bytes() > 0);
    }

    impl MemPostings {
        /// How many lists are bitmaps.
        fn bitmaps(&self) -> usize {
            self.by_name.values().map(|v| v.dense.len()).sum()
        }
    }

    /// Ids 0..n each labelled `a=x`, `b=<id % 50>`: `a=x` dense, `b`'s values sparse.
    fn dense_head(ids: impl Iterator<Item = u32>) -> (MemPostings, SymbolTable) {
        let mut symbols = SymbolTable::default();
        let (a, x) = (symbols.intern("a"), symbols.intern("x"));
        let b = symbols.intern("b");
        let bv: Vec<SymbolId> = (0..50).map(|i| symbols.intern(&i.to_string())).collect();
        let mut p = MemPostings::new();
        for id in ids {
            p.add(id, &[(a, x), (b, bv[id as usize % 50])]);
        }
        (p, symbols)
    }

    #[test]
    fn dense_lists_become_bitmaps_and_back() {
        let (mut p, symbols) = dense_head(0..100_000);
        let (a, x) = (symbols.lookup("a").unwrap(), symbols.lookup("x").unwrap());
        assert_eq!(p.bitmaps(), 1);
        assert!(p.postings(a, x).is_bits());
        assert_eq!(p.postings(a, x).to_vec(), (0..100_000).collect::<Vec<_>>());
        // A bitmap of 100k ids: ~12.5 KB where the list took 400 KB (up to 512 KB).
        let mut alone = MemPostings::new();
        for id in 0..100_000u32 {
            alone.add(id, &[(a, x)]);
        }
        assert!(
            alone.heap_bytes() < 2 * 12_500 + 2 * 14_000,
            "{}",
            alone.heap_bytes()
        );
        // Garbage collection thins it to 1 id in 40: back to a list.
        let gone: Vec<u32> = (0..100_000).filter(|i| i % 40 != 0).collect();
        let labels = |id: u32| {
            [
                (a, x),
                (
                    symbols.lookup("b").unwrap(),
                    symbols.lookup(&(id % 50).to_string()).unwrap(),
                ),
            ]
        };
        p.delete(&gone, labels);
        assert_eq!(p.bitmaps(), 0);
        assert!(!p.postings(a, x).is_bits());
        assert_eq!(
            p.postings(a, x).to_vec(),
            (0..100_000).step_by(40).collect::<Vec<_>>()
        );
        // b=0 held every 50th id; deleting all but the last 2,000 shrinks the window
        // under what is left and makes the list dense.
        let b0 = symbols.lookup("0").unwrap();
        let b = symbols.lookup("b").unwrap();
        let before: Vec<u32> = p.postings(b, b0).to_vec();
        let old: Vec<u32> = before.iter().copied().filter(|&i| i < 99_000).collect();
        p.delete(&old, labels);
        assert!(p.postings(b, b0).to_vec().iter().all(|&i| i >= 99_000));
        // The ids of a=x left: 1 in 40 over 99,000..100,000, still a list.
        assert!(!p.postings(a, x).is_bits());
    }

    #[test]
    fn a_far_id_spreads_a_bitmap_back_into_a_list() {
        let (mut p, symbols) = dense_head(0..1_000);
        let (a, x) = (symbols.lookup("a").unwrap(), symbols.lookup("x").unwrap());
        assert!(p.postings(a, x).is_bits());
        p.add(10_000_000, &[(a, x)]);
        assert!(!p.postings(a, x).is_bits());
        let mut want: Vec<u32> = (0..1_000).collect();
        want.push(10_000_000);
        assert_eq!(p.postings(a, x).to_vec(), want);
        // Out of order below the window, repeated, then dense again from the front.
        let (mut p, _) = dense_head((500..1_000).chain(0..500).chain(200..300));
        assert!(p.postings(a, x).is_bits());
        assert_eq!(p.postings(a, x).to_vec(), (0..1_000).collect::<Vec<_>>());
        p.add(2_000, &[(a, x)]);
        assert_eq!(p.postings(a, x).len(), 1_001);
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// The next id above all so far, or `back` below the highest (replay out of
        /// order, possibly an id already there).
        Add { back: Option<u32>, a: u8, b: u8 },
        /// Garbage collection of the ids at these positions among the live ones.
        Delete(Vec<prop::sample::Index>),
        /// Garbage collection of the oldest `n` live ids.
        DeleteOldest(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        // `a` mostly one value (dense), `b` spread over a few values of varying density.
        let a = prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)];
        let b = prop_oneof![4 => Just(0u8), 2 => Just(1u8), 1 => 2u8..6];
        prop_oneof![
            200 => (proptest::option::weighted(0.05, 0u32..3000), a, b)
                .prop_map(|(back, a, b)| Op::Add { back, a, b }),
            1 => proptest::collection::vec(any::<prop::sample::Index>(), 0..600).prop_map(Op::Delete),
            1 => (0u16..300).prop_map(Op::DeleteOldest),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Lists switching between forms under appends, replay out of order and garbage
        /// collection hold the same ids as a model, and every reader agrees with it.
        #[test]
        fn lists_of_both_forms_behave_like_the_model(ops in proptest::collection::vec(op(), 1..3000)) {
            let mut h = Head::default();
            let mut labels_by_id: std::collections::BTreeMap<u32, [(&str, &str); 2]> = Default::default();
            let mut live: std::collections::BTreeSet<u32> = Default::default();
            let mut next = 0u32;
            const A: [&str; 3] = ["x", "y", "z"];
            const B: [&str; 6] = ["0", "1", "2", "3", "4", "5"];
            for op in ops {
                match op {
                    Op::Add { back, a, b } => {
                        let id = match back {
                            Some(k) => next.saturating_sub(1 + k),
                            None => { next += 1; next - 1 }
                        };
                        let labels = *labels_by_id.entry(id).or_insert([("a", A[a as usize]), ("b", B[b as usize])]);
                        let pairs: Vec<_> = labels.iter().map(|(n, v)| (h.symbols.intern(n), h.symbols.intern(v))).collect();
                        h.postings.add(id, &pairs);
                        live.insert(id);
                    }
                    Op::Delete(picks) => {
                        let ids: Vec<u32> = live.iter().copied().collect();
                        if ids.is_empty() { continue; }
                        let mut gone: Vec<u32> = picks.iter().map(|i| ids[i.index(ids.len())]).collect();
                        gone.sort_unstable();
                        gone.dedup();
                        h.postings.delete(&gone, |id| labels_by_id[&id].map(|(n, v)| (h.symbols.lookup(n).unwrap(), h.symbols.lookup(v).unwrap())));
                        for id in gone { live.remove(&id); }
                    }
                    Op::DeleteOldest(n) => {
                        let gone: Vec<u32> = live.iter().copied().take(n as usize).collect();
                        h.postings.delete(&gone, |id| labels_by_id[&id].map(|(n, v)| (h.symbols.lookup(n).unwrap(), h.symbols.lookup(v).unwrap())));
                        for id in gone { live.remove(&id); }
                    }
                }
            }
            // Each list against the model.
            for (name, values) in [("a", &A[..]), ("b", &B[..])] {
                for v in values {
                    let want: Vec<u32> = live.iter().copied().filter(|id| labels_by_id[id].contains(&(name, *v))).collect();
                    let got = match (h.symbols.lookup(name), h.symbols.lookup(v)) {
                        (Some(n), Some(v)) => h.postings.postings(n, v).to_vec(),
                        _ => vec![],
                    };
                    prop_assert_eq!(&got, &want, "{}={}", name, v);
                }
                let mut want: Vec<&str> = values.iter().copied()
                    .filter(|v| live.iter().any(|id| labels_by_id[id].contains(&(name, *v))))
                    .collect();
                want.sort_unstable();
                prop_assert_eq!(h.postings.label_values(&h.symbols, name), want);
            }
            let live_ids: Vec<u32> = live.iter().copied().collect();
            prop_assert_eq!(h.postings.all(), live_ids.clone());
            // Selections over lists of both forms, against a filter of the live series.
            let value = |id: u32, name: &str| labels_by_id[&id].iter().find(|(n, _)| *n == name).map_or("", |(_, v)| *v);
            let selectors = [
                vec![m(EQ, "a", "x")],
                vec![m(EQ, "a", "x"), m(EQ, "b", "0")],
                vec![m(EQ, "b", "3"), m(EQ, "a", "x")],
                vec![m(RE, "a", "x|y"), m(NEQ, "b", "1")],
                vec![m(RE, "b", "[0-4]"), m(NEQ, "a", "x")],
                vec![m(NRE, "b", "0|2"), m(RE, "a", "x|z")],
                vec![m(RE, "b", "0|1|2|3|4"), m(NRE, "a", "y")],
                vec![m(NEQ, "a", "y")],
                vec![m(EQ, "b", "1"), m(RE, "a", ".+"), m(NEQ, "b", "0")],
            ];
            for ms in &selectors {
                let want: Vec<u32> = live_ids.iter().copied().filter(|&id| ms.iter().all(|mt| mt.matches(value(id, &mt.name)))).collect();
                prop_assert_eq!(h.select(ms), want, "{:?}", ms);
            }
            // Values of `a` among a selection, by probing each value's list.
            let some: Vec<u32> = live_ids.iter().copied().step_by(7).collect();
            let mut want: Vec<&str> = some.iter().map(|&id| value(id, "a")).collect();
            want.sort_unstable();
            want.dedup();
            let labels_of = |id: u32| labels_by_id[&id].map(|(n, v)| (h.symbols.lookup(n).unwrap(), h.symbols.lookup(v).unwrap()));
            prop_assert_eq!(h.postings.label_values_for(&h.symbols, "a", &some, labels_of), want);
        }
    }

    fn matcher_strategy() -> impl Strategy<Value = Matcher> {
        let kind = prop_oneof![Just(EQ), Just(NEQ), Just(RE), Just(NRE)];
        let name = prop_oneof![Just("a"), Just("b"), Just("c"), Just("d")];
        let value = prop_oneof![
            Just(""),
            Just("x"),
            Just("y"),
            Just("w"),
            Just("x|y"),
            Just(".*"),
            Just(".+"),
            Just("x.*"),
            Just("|x"),
            Just("[xy]"),
            Just("z?"),
            Just(".*y"),
        ];
        (kind, name, value).prop_map(|(k, n, v)| m(k, n, v))
    }

    fn series_strategy() -> impl Strategy<Value = Vec<Vec<(&'static str, &'static str)>>> {
        let value = prop_oneof![
            Just(None),
            Just(Some("x")),
            Just(Some("y")),
            Just(Some("z"))
        ];
        let one = (value.clone(), value.clone(), value).prop_map(|(a, b, c)| {
            [("a", a), ("b", b), ("c", c)]
                .into_iter()
                .filter_map(|(n, v)| v.map(|v| (n, v)))
                .collect::<Vec<_>>()
        });
        proptest::collection::vec(one, 0..60)
    }

    proptest! {
        #[test]
        fn select_is_the_brute_force_filter(
            series in series_strategy(),
            selectors in proptest::collection::vec(proptest::collection::vec(matcher_strategy(), 0..4), 1..8),
            deleted in proptest::collection::btree_set(0u32..60, 0..20),
        ) {
            let mut h = Head::default();
            for labels in &series {
                h.add(labels);
            }
            let deleted: Vec<u32> = deleted.into_iter().filter(|&d| (d as usize) < series.len()).collect();
            let labels = h.series.clone();
            h.postings.delete(&deleted, |id| labels[id as usize].iter().copied());
            let live: Vec<u32> = (0..series.len() as u32).filter(|id| !deleted.contains(id)).collect();
            prop_assert_eq!(h.postings.all(), live.as_slice());
            for ms in &selectors {
                let got = h.select(ms);
                prop_assert_eq!(&got, &h.brute_force(&live, ms), "{:?}", ms);
                // Names and values restricted to the selection, against the model.
                let mut names: Vec<String> = got.iter()
                    .flat_map(|&id| h.series[id as usize].iter().map(|(n, _)| h.symbols.resolve(*n).to_string()))
                    .collect();
                names.sort();
                names.dedup();
                prop_assert_eq!(h.postings.label_names_for(&h.symbols, &got, h.labels_of()), names);
                let mut values: Vec<String> = got.iter()
                    .map(|&id| h.value(id, "a").to_string())
                    .filter(|v| !v.is_empty())
                    .collect();
                values.sort();
                values.dedup();
                prop_assert_eq!(h.postings.label_values_for(&h.symbols, "a", &got, h.labels_of()), values);
            }
        }
    }
}
