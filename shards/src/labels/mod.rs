//! Label sets: the identity of a series. A `Labels` is immutable and sorted by name, holds
//! no duplicate names and no empty values (an empty value means "label absent", as in
//! Prometheus). It is the owned form used at the edges (WAL records, queries, the API);
//! the head stores label sets as interned symbol ids instead (`symbols`).
//!
//! Validation follows Prometheus's legacy name rules; label values are any UTF-8.

mod hash;
pub mod interned;
pub mod symbols;

pub use hash::{series_hash, shard_for};

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

/// The label name that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// Why a label set was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LabelsError {
    #[error("label name is empty")]
    EmptyName,
    #[error("invalid label name {0:?}: must match [a-zA-Z_][a-zA-Z0-9_]*")]
    InvalidName(String),
    #[error("invalid metric name {0:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]*")]
    InvalidMetricName(String),
    #[error("duplicate label name {0:?}")]
    DuplicateName(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// An immutable, sorted, validated label set. Shared, not copied, on clone: the query path
/// hands one series' labels through several stages (selection, range windows, function
/// results, aggregation groups), and a deep copy is an allocation per label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Labels {
    labels: Arc<[Label]>,
}

impl Labels {
    pub fn empty() -> Self {
        Labels::default()
    }

    /// Builds a label set from pairs in any order, refusing invalid names and duplicates.
    /// Pairs with an empty value are dropped.
    pub fn from_pairs<N, V, I>(pairs: I) -> Result<Self, LabelsError>
    where
        N: Into<String>,
        V: Into<String>,
        I: IntoIterator<Item = (N, V)>,
    {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label::new(n, v))
            .filter(|l| !l.value.is_empty())
            .collect();
        v.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        for l in &v {
            validate_name(&l.name)?;
            if l.name == METRIC_NAME && !is_valid_metric_name(&l.value) {
                return Err(LabelsError::InvalidMetricName(l.value.clone()));
            }
        }
        if let Some(w) = v.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(LabelsError::DuplicateName(w[0].name.clone()));
        }
        Ok(Labels { labels: v.into() })
    }

    /// Builds a label set from pairs already sorted by name, unique and non-empty, as
    /// decoded from a file this process or Prometheus wrote. Only the order invariant is
    /// checked, so that a corrupt file cannot produce a set that breaks lookups.
    pub fn from_sorted_unchecked(labels: Vec<Label>) -> Result<Self, LabelsError> {
        if let Some(w) = labels.windows(2).find(|w| w[0].name >= w[1].name) {
            return Err(if w[0].name == w[1].name {
                LabelsError::DuplicateName(w[0].name.clone())
            } else {
                LabelsError::InvalidName(w[1].name.clone())
            });
        }
        Ok(Labels {
            labels: labels.into(),
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.labels[i].value.as_str())
    }

    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.labels.iter()
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.labels
    }

    /// The series hash of DESIGN.md; decides the owning shard.
    pub fn hash(&self) -> u64 {
        series_hash(self.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }
}

/// Prometheus's order of label sets: label by label, name then value, a prefix first.
impl Ord for Labels {
    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.labels.iter().zip(other.labels.iter()) {
            match a.name.cmp(&b.name).then_with(|| a.value.cmp(&b.value)) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        self.labels.len().cmp(&other.labels.len())
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.labels.iter()
    }
}

/// Prometheus's text form: `name{a="b", c="d"}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.metric_name() {
            f.write_str(n)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for l in self.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
pub fn is_valid_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
        _ => return false,
    }
    b[1..]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_valid_metric_name(name: &str) -> bool {
    let b = name.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b':' => {}
        _ => return false,
    }
    b[1..]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

/// Names starting with `__` are reserved for internal use: targets' meta labels and
/// `__name__`. Scraped or relabelled sets must not keep them, except `__name__`.
pub fn is_reserved_name(name: &str) -> bool {
    name.starts_with("__")
}

fn validate_name(name: &str) -> Result<(), LabelsError> {
    if name.is_empty() {
        return Err(LabelsError::EmptyName);
    }
    if !is_valid_label_name(name) {
        return Err(LabelsError::InvalidName(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_validated() {
        let l = Labels::from_pairs([("job", "a"), ("__name__", "up"), ("instance", "x")]).unwrap();
        let names: Vec<_> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "instance", "job"]);
        assert_eq!(l.get("job"), Some("a"));
        assert_eq!(l.to_string(), r#"up{instance="x", job="a"}"#);
    }

    #[test]
    fn refusals() {
        assert_eq!(
            Labels::from_pairs([("a", "1"), ("a", "2")]),
            Err(LabelsError::DuplicateName("a".into()))
        );
        assert!(matches!(
            Labels::from_pairs([("1a", "x")]),
            Err(LabelsError::InvalidName(_))
        ));
        assert!(matches!(
            Labels::from_pairs([("a-b", "x")]),
            Err(LabelsError::InvalidName(_))
        ));
        assert!(matches!(
            Labels::from_pairs([("__name__", "a-b")]),
            Err(LabelsError::InvalidMetricName(_))
        ));
        assert!(Labels::from_pairs([("__name__", "ns:metric_total"), ("v", "ünïcödé \n")]).is_ok());
        assert_eq!(Labels::from_pairs([("", "x")]), Err(LabelsError::EmptyName));
    }

    #[test]
    fn empty_values_are_absent() {
        let l = Labels::from_pairs([("a", ""), ("b", "1")]).unwrap();
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn prometheus_order() {
        let a = Labels::from_pairs([("a", "1")]).unwrap();
        let ab = Labels::from_pairs([("a", "1"), ("b", "1")]).unwrap();
        let a2 = Labels::from_pairs([("a", "2")]).unwrap();
        assert!(a < ab && ab < a2);
    }
}
