//! Label-set surgery for the evaluator: dropping the metric name, keeping or deleting labels,
//! setting one, and the match signatures of vector matching and grouping. Label sets stay
//! `shards::labels::Labels` (sorted, no empty values) so results compare and sort exactly like
//! the storage's series.

use shards::index::matcher::write_go_quoted;
use shards::labels::{Label, Labels, METRIC_NAME};

/// A mutable copy of a label set; `build` sorts and drops empty values.
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    pub fn new(base: &Labels) -> Self {
        LabelsBuilder {
            labels: base.as_slice().to_vec(),
        }
    }

    pub fn empty() -> Self {
        LabelsBuilder::default()
    }

    pub fn get(&self, name: &str) -> &str {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map_or("", |l| l.value.as_str())
    }

    /// Sets `name` to `value`; an empty value removes it.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        if let Some(l) = self.labels.iter_mut().find(|l| l.name == name) {
            l.value = value.to_string();
        } else if !value.is_empty() {
            self.labels.push(Label::new(name, value));
        }
        self
    }

    pub fn del(&mut self, name: &str) -> &mut Self {
        self.labels.retain(|l| l.name != name);
        self
    }

    pub fn keep(&mut self, names: &[String]) -> &mut Self {
        self.labels.retain(|l| names.contains(&l.name));
        self
    }

    pub fn build(mut self) -> Labels {
        self.labels.retain(|l| !l.value.is_empty());
        self.labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        self.labels.dedup_by(|a, b| a.name == b.name);
        // Sorted, unique, non-empty by construction: the check cannot fail.
        Labels::from_sorted_unchecked(self.labels).unwrap_or_default()
    }
}

/// The labels that go with the metric name: `__type__` and `__unit__` (Prometheus 3's
/// type-and-unit labels) describe the metric, so a value computed from it loses them too.
pub const RESERVED_WITH_NAME: [&str; 3] = [METRIC_NAME, "__type__", "__unit__"];

/// Drops `__name__` (and the type and unit labels that describe it).
pub fn drop_metric_name(l: &Labels) -> Labels {
    if RESERVED_WITH_NAME.iter().all(|n| l.get(n).is_none()) {
        return l.clone();
    }
    let mut b = LabelsBuilder::new(l);
    for n in RESERVED_WITH_NAME {
        b.del(n);
    }
    b.build()
}

/// A key identifying the values of the labels `names` (`on`) or of all labels but `names`
/// (`!on`); absent labels count as empty.
pub fn signature(l: &Labels, on: bool, names: &[String]) -> String {
    let mut key = String::new();
    signature_into(l, on, names, &mut key);
    key
}

/// `signature` appended to `key`: loops over many series reuse one buffer.
pub fn signature_into(l: &Labels, on: bool, names: &[String], key: &mut String) {
    if on {
        for n in names {
            key.push_str(l.get(n).unwrap_or(""));
            key.push('\u{ff}');
        }
    } else {
        for lab in l.iter() {
            if names.contains(&lab.name) {
                continue;
            }
            key.push_str(&lab.name);
            key.push('\u{fe}');
            key.push_str(&lab.value);
            key.push('\u{ff}');
        }
    }
}

/// Labels `names` only (`on`), or all but them (`!on`).
pub fn match_labels(l: &Labels, on: bool, names: &[String]) -> Labels {
    let mut b = LabelsBuilder::new(l);
    if on {
        b.keep(names);
    } else {
        for n in names {
            b.del(n);
        }
    }
    b.build()
}

/// Prometheus's `labels.String()`: `{__name__="m", a="1"}`, every label in braces, values
/// Go-quoted.
pub fn labels_string(l: &Labels) -> String {
    let mut out = String::from("{");
    for (i, lab) in l.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&lab.name);
        out.push('=');
        // Writing to a String cannot fail.
        let _ = write_go_quoted(&mut out, &lab.value);
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn builder_sets_deletes_and_sorts() {
        let mut b = LabelsBuilder::new(&ls(&[("b", "2"), ("__name__", "m")]));
        b.set("a", "1").set("b", "").del("__name__");
        assert_eq!(b.build(), ls(&[("a", "1")]));
    }

    #[test]
    fn signatures_ignore_or_select_labels() {
        let x = ls(&[("__name__", "m"), ("a", "1"), ("b", "2")]);
        let y = ls(&[("__name__", "n"), ("a", "1"), ("b", "3")]);
        let on = vec!["a".to_string()];
        assert_eq!(signature(&x, true, &on), signature(&y, true, &on));
        let ign = vec!["__name__".to_string(), "b".to_string()];
        assert_eq!(signature(&x, false, &ign), signature(&y, false, &ign));
        let name_only = vec!["__name__".to_string()];
        assert_ne!(
            signature(&x, false, &name_only),
            signature(&y, false, &name_only)
        );
    }
}
