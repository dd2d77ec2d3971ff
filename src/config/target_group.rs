//! Target groups (Prometheus's `targetgroup.Group`): addresses sharing a set of labels, as
//! written in `static_configs` and in file_sd files. This module owns their shape and the
//! validity of their label names; it never resolves or contacts an address.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shards::labels::is_valid_label_name;

/// A group of targets with common labels. Each target becomes `__address__`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where the group came from (`0` for the first static group, `file.yml:0` for the
    /// first group of a file), to tell groups apart when they are refreshed.
    #[serde(skip)]
    pub source: String,
}

impl TargetGroup {
    /// The first label whose name is invalid, as `(field, reason)` relative to the group.
    pub fn invalid_label(&self) -> Option<(String, String)> {
        self.labels
            .keys()
            .find(|name| !is_valid_label_name(name))
            .map(|name| {
                (
                    "labels".to_string(),
                    format!("{name:?} is not a valid label name"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_label_names() {
        let g: TargetGroup =
            serde_yaml::from_str("{targets: ['a:1', 'b:2'], labels: {env: prod, port: 9100}}")
                .unwrap();
        assert_eq!(g.targets, ["a:1", "b:2"]);
        assert_eq!(g.labels["port"], "9100");
        assert_eq!(g.invalid_label(), None);
        let g: TargetGroup = serde_yaml::from_str("{labels: {'bad-name': x}}").unwrap();
        assert_eq!(
            g.invalid_label(),
            Some((
                "labels".into(),
                "\"bad-name\" is not a valid label name".into()
            ))
        );
        assert!(serde_yaml::from_str::<TargetGroup>("{target: []}").is_err());
    }
}
