//! The mutable label set that relabeling and target-label computation work on (Prometheus's
//! `labels.Builder`). It stays sorted by name with no empty values, so that lookups are a
//! binary search and the result converts to an immutable `Labels` without re-sorting. An
//! empty value means "absent", as everywhere in Prometheus: setting one deletes the label.
//!
//! It must never hold two labels of one name; it does not validate names (relabeling may
//! create invalid ones, which the conversion to `Labels` refuses).

use shards::labels::{is_valid_label_name, Label, Labels, LabelsError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelBuilder {
    labels: Vec<Label>,
}

impl LabelBuilder {
    pub fn new() -> Self {
        LabelBuilder::default()
    }

    pub fn from_labels(labels: &Labels) -> Self {
        LabelBuilder {
            labels: labels.as_slice().to_vec(),
        }
    }

    /// Empties the builder, keeping its allocation for the next label set.
    pub fn clear(&mut self) {
        self.labels.clear();
    }

    /// The label's value, `""` when absent (as Prometheus's `Get`).
    pub fn get(&self, name: &str) -> &str {
        match self.find(name) {
            Ok(i) => &self.labels[i].value,
            Err(_) => "",
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Sets a label; an empty value deletes it. Reuses the existing value's allocation.
    pub fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            self.del(name);
            return;
        }
        match self.find(name) {
            Ok(i) => {
                let v = &mut self.labels[i].value;
                v.clear();
                v.push_str(value);
            }
            Err(i) => self.labels.insert(i, Label::new(name, value)),
        }
    }

    pub fn del(&mut self, name: &str) {
        if let Ok(i) = self.find(name) {
            self.labels.remove(i);
        }
    }

    /// Keeps the labels for which `keep` says so.
    pub fn retain(&mut self, mut keep: impl FnMut(&Label) -> bool) {
        self.labels.retain(|l| keep(l));
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

    /// The immutable label set, refusing invalid names.
    pub fn to_labels(&self) -> Result<Labels, LabelsError> {
        if let Some(l) = self.labels.iter().find(|l| !is_valid_label_name(&l.name)) {
            return Err(if l.name.is_empty() {
                LabelsError::EmptyName
            } else {
                LabelsError::InvalidName(l.name.clone())
            });
        }
        Labels::from_sorted_unchecked(self.labels.clone())
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.labels.binary_search_by(|l| l.name.as_str().cmp(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn set_get_delete_keep_order() {
        let mut b = LabelBuilder::new();
        b.set("job", "a");
        b.set("__address__", "h:1");
        b.set("instance", "x");
        b.set("job", "b");
        assert_eq!(b.get("job"), "b");
        assert_eq!(b.get("missing"), "");
        b.set("instance", "");
        assert!(!b.contains("instance"));
        b.del("nothing");
        let names: Vec<_> = b.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__address__", "job"]);
        let l = b.to_labels().unwrap();
        assert_eq!(l.get("job"), Some("b"));
    }

    proptest! {
        /// The builder behaves as a map from name to non-empty value, and stays sorted.
        #[test]
        fn behaves_as_a_sorted_map(ops in proptest::collection::vec(("[a-d]{1,2}", "[xy]{0,2}", any::<bool>()), 0..40)) {
            let mut b = LabelBuilder::new();
            let mut model = std::collections::BTreeMap::new();
            for (name, value, delete) in &ops {
                if *delete {
                    b.del(name);
                    model.remove(name);
                } else {
                    b.set(name, value);
                    if value.is_empty() {
                        model.remove(name);
                    } else {
                        model.insert(name.clone(), value.clone());
                    }
                }
            }
            let got: Vec<_> = b.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
            let want: Vec<_> = model.into_iter().collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn conversion_refuses_invalid_names() {
        let mut b = LabelBuilder::new();
        b.set("1abc", "v");
        assert_eq!(b.to_labels(), Err(LabelsError::InvalidName("1abc".into())));
    }
}
