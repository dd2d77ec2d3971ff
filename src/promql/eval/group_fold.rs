//! The fold of an aggregation with mergeable state (`sum avg min max count group stddev
//! stdvar`, see `agg_state`) over its input series, taken a part at a time: a shard folds
//! each batch of its series as soon as the batch is evaluated, while the series' labels are
//! still in cache, and never holds the whole per-series answer; the router folds its whole
//! input in one part. Both run this code, which is what keeps pushdown exact.
//!
//! Each group keeps, per shard partition (the series' label hash, as the router partitions
//! its input to match the shards), a list of (step, state) sorted by step. A series' points
//! are added to its group's list in input order, so every state sees its samples in input
//! order whatever the order of steps or the cut into parts. It is pure: no evaluator, no
//! limits, no deadline (the caller checks those between parts).

use std::collections::HashMap;

use shards::labels::{shard_for, Labels, METRIC_NAME};

use super::agg_state::{AggOp, AggState};
use super::aggregate::{group_of, GroupStates};
use crate::promql::labelset::signature_into;
use crate::promql::value::{FPoint, Series};

/// One group while folding: its output labels, first input series and one state list per
/// shard partition.
#[derive(Debug)]
struct Group {
    labels: Labels,
    first_input: Labels,
    drop_name: bool,
    partitions: Vec<Vec<(i64, AggState)>>,
}

/// Numbers the groups of `by`/`without` the sorted `grouping` in the order their first
/// series come. Each series' key goes into one reused buffer; group labels are left to the
/// caller, to build once per group.
#[derive(Debug)]
pub struct GroupKeys {
    without: bool,
    grouping: Vec<String>,
    /// `grouping` and `__name__`: the names a `without` key leaves out.
    without_names: Vec<String>,
    keys: HashMap<String, usize, ahash::RandomState>,
    key: String,
}

impl GroupKeys {
    pub fn new(without: bool, grouping: &[String]) -> GroupKeys {
        let mut without_names = grouping.to_vec();
        without_names.push(METRIC_NAME.to_string());
        GroupKeys {
            without,
            grouping: grouping.to_vec(),
            without_names,
            keys: HashMap::default(),
            key: String::new(),
        }
    }

    /// The group of a series with `labels`, and whether it is a new one.
    pub fn group(&mut self, labels: &Labels) -> (usize, bool) {
        if !self.without && self.grouping.is_empty() {
            // One group of everything: nothing to key.
            let new = self.keys.is_empty();
            if new {
                self.keys.insert(String::new(), 0);
            }
            return (0, new);
        }
        self.key.clear();
        if self.without {
            signature_into(labels, false, &self.without_names, &mut self.key);
        } else if !self.grouping.is_empty() {
            signature_into(labels, true, &self.grouping, &mut self.key);
        }
        match self.keys.get(self.key.as_str()) {
            Some(&gi) => (gi, false),
            None => {
                let gi = self.keys.len();
                self.keys.insert(self.key.clone(), gi);
                (gi, true)
            }
        }
    }

    /// The labels of the group of a series with `labels`.
    pub fn labels(&self, labels: &Labels) -> Labels {
        group_of(labels, self.without, &self.grouping).1
    }
}

/// See the module doc.
#[derive(Debug)]
pub struct GroupFold {
    op: AggOp,
    keys: GroupKeys,
    shards: usize,
    groups: Vec<Group>,
    /// Spare list for adding a series whose steps interleave with its group's.
    merged: Vec<(i64, AggState)>,
}

impl GroupFold {
    /// A fold of `op` grouped `by`/`without` the sorted `grouping`, over input partitioned
    /// into `shards` (1 on a shard).
    pub fn new(op: AggOp, without: bool, grouping: &[String], shards: usize) -> GroupFold {
        GroupFold {
            op,
            keys: GroupKeys::new(without, grouping),
            shards: shards.max(1),
            groups: Vec::new(),
            merged: Vec::new(),
        }
    }

    /// Adds the next input series, in input order.
    pub fn add(&mut self, series: &[Series]) {
        for s in series {
            self.add_one(s);
        }
    }

    fn add_one(&mut self, s: &Series) {
        let (gi, new) = self.keys.group(&s.labels);
        if new {
            self.groups.push(Group {
                labels: self.keys.labels(&s.labels),
                first_input: s.labels.clone(),
                drop_name: false,
                partitions: vec![Vec::new(); self.shards],
            });
        }
        if s.points.is_empty() {
            return;
        }
        let partition = if self.shards == 1 {
            0
        } else {
            shard_for(s.labels.hash(), self.shards)
        };
        let g = &mut self.groups[gi];
        g.drop_name |= s.drop_name;
        fold_points(
            self.op,
            &mut g.partitions[partition],
            &s.points,
            &mut self.merged,
        );
    }

    /// Every group with samples, in the order of its first input series, each step's state
    /// merged over the partitions in partition (shard) order.
    pub fn finish(self) -> Vec<GroupStates> {
        let op = self.op;
        self.groups
            .into_iter()
            .filter_map(|g| {
                let mut parts = g.partitions.into_iter().filter(|p| !p.is_empty());
                let mut points = parts.next()?;
                let mut spare = Vec::new();
                for p in parts {
                    merge_partition(op, &mut points, &p, &mut spare);
                }
                Some(GroupStates {
                    labels: g.labels,
                    first_input: g.first_input,
                    drop_name: g.drop_name,
                    points,
                })
            })
            .collect()
    }
}

/// Adds a series' points (ascending steps) to a group's states (ascending steps): a state at
/// the same step takes the sample, a step the group lacks starts a state.
fn fold_points(
    op: AggOp,
    states: &mut Vec<(i64, AggState)>,
    points: &[FPoint],
    spare: &mut Vec<(i64, AggState)>,
) {
    // The usual cases: the series has the group's steps (or later ones), walked in step.
    let mut i = 0;
    let mut k = 0;
    while k < points.len() {
        let p = points[k];
        while i < states.len() && states[i].0 < p.t {
            i += 1;
        }
        if i == states.len() {
            states.extend(points[k..].iter().map(|p| (p.t, AggState::first(op, p.f))));
            return;
        }
        if states[i].0 != p.t {
            break;
        }
        states[i].1.add(op, p.f);
        i += 1;
        k += 1;
    }
    if k == points.len() {
        return;
    }
    // Steps interleave: merge the rest into the spare list, in one linear pass.
    spare.clear();
    spare.extend_from_slice(&states[..i]);
    let (mut i, rest) = (i, &points[k..]);
    for p in rest {
        while i < states.len() && states[i].0 < p.t {
            spare.push(states[i]);
            i += 1;
        }
        if i < states.len() && states[i].0 == p.t {
            let mut st = states[i].1;
            st.add(op, p.f);
            spare.push((p.t, st));
            i += 1;
        } else {
            spare.push((p.t, AggState::first(op, p.f)));
        }
    }
    spare.extend_from_slice(&states[i..]);
    std::mem::swap(states, spare);
}

/// Merges the next partition's states into `into` step by step (the earlier partition's
/// state first), as the router merges the shards' states.
fn merge_partition(
    op: AggOp,
    into: &mut Vec<(i64, AggState)>,
    next: &[(i64, AggState)],
    spare: &mut Vec<(i64, AggState)>,
) {
    spare.clear();
    let (mut i, mut j) = (0, 0);
    while i < into.len() || j < next.len() {
        match (into.get(i), next.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                let mut st = a.1;
                st.merge(op, &b.1);
                spare.push((a.0, st));
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                spare.push(*a);
                i += 1;
            }
            (Some(a), None) => {
                spare.push(*a);
                i += 1;
            }
            (_, Some(b)) => {
                spare.push(*b);
                j += 1;
            }
            (None, None) => break,
        }
    }
    std::mem::swap(into, spare);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The step-by-step fold the module replaces: every step, every series in input order.
    fn by_steps(op: AggOp, series: &[Vec<(i64, f64)>]) -> Vec<(i64, AggState)> {
        let mut steps: Vec<i64> = series.iter().flatten().map(|p| p.0).collect();
        steps.sort_unstable();
        steps.dedup();
        steps
            .into_iter()
            .map(|t| {
                let mut st: Option<AggState> = None;
                for s in series {
                    if let Some(&(_, f)) = s.iter().find(|p| p.0 == t) {
                        match &mut st {
                            Some(st) => st.add(op, f),
                            None => st = Some(AggState::first(op, f)),
                        }
                    }
                }
                (t, st.unwrap())
            })
            .collect()
    }

    fn series_of(points: &[(i64, f64)]) -> Series {
        Series {
            labels: Labels::from_pairs([("__name__", "x")]).unwrap(),
            points: points.iter().map(|&(t, f)| FPoint { t, f }).collect(),
            drop_name: false,
        }
    }

    proptest! {
        /// Folding series by series, in any cut into parts, gives the step-by-step fold's
        /// states bit for bit, whatever steps each series has.
        #[test]
        fn folding_series_by_series_is_folding_step_by_step(
            raw in proptest::collection::vec(
                proptest::collection::btree_map(0i64..12, -1e3..1e3f64, 0..8),
                1..8,
            ),
            cut in 0usize..8,
            op in prop_oneof![
                Just(AggOp::Sum), Just(AggOp::Avg), Just(AggOp::Stddev), Just(AggOp::Min)
            ],
        ) {
            let series: Vec<Vec<(i64, f64)>> = raw
                .iter()
                .map(|m| m.iter().map(|(&t, &f)| (t * 60, f)).collect())
                .collect();
            let input: Vec<Series> = series.iter().map(|s| series_of(s)).collect();
            let mut fold = GroupFold::new(op, false, &[], 1);
            let cut = cut.min(input.len());
            fold.add(&input[..cut]);
            fold.add(&input[cut..]);
            let got = fold.finish();
            let want = by_steps(op, &series);
            if want.is_empty() {
                prop_assert!(got.is_empty());
            } else {
                prop_assert_eq!(got.len(), 1);
                let bits = |v: &[(i64, AggState)]| -> Vec<(i64, u64, u64, u64)> {
                    v.iter()
                        .map(|(t, s)| (*t, s.value.to_bits(), s.kahan_c.to_bits(), s.mean.to_bits()))
                        .collect()
                };
                prop_assert_eq!(bits(&got[0].points), bits(&want));
            }
        }
    }

    #[test]
    fn partitions_merge_in_order_and_groups_keep_first_input_order() {
        let l = |g: &str, i: &str| Labels::from_pairs([("g", g), ("i", i)]).unwrap();
        let s = |labels: Labels, t: i64, f: f64| Series {
            labels,
            points: vec![FPoint { t, f }],
            drop_name: false,
        };
        let input = vec![
            s(l("b", "1"), 0, 1.0),
            s(l("a", "2"), 60, 2.0),
            s(l("b", "3"), 0, 3.0),
        ];
        let mut fold = GroupFold::new(AggOp::Sum, false, &["g".to_string()], 2);
        fold.add(&input);
        let got = fold.finish();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].labels, Labels::from_pairs([("g", "b")]).unwrap());
        assert_eq!(got[0].first_input, l("b", "1"));
        assert_eq!(got[0].points.len(), 1);
        assert_eq!(got[0].points[0].1.value, 4.0);
        assert_eq!(got[1].points[0].0, 60);
    }
}
