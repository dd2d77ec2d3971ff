//! File-based service discovery: the `file_sd_configs` entry of a scrape config, and the
//! parsing of one target file (JSON or YAML, chosen by extension as Prometheus does) into
//! target groups labelled with `__meta_filepath`. This module reads no file and watches
//! nothing; the refresh loop that does (and keeps a file's previous targets when it stops
//! parsing) is built on top of it.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::duration::Duration;
use super::field_path::{self, FieldError};
use super::target_group::TargetGroup;

/// The label each file_sd group gets, naming the file it came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default = "default_refresh_interval")]
    pub refresh_interval: Duration,
}

fn default_refresh_interval() -> Duration {
    DEFAULT_REFRESH_INTERVAL
}

impl FileSdConfig {
    /// Prometheus's checks, as `(field, reason)` relative to this config.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.files.is_empty() {
            return Err((
                "files".into(),
                "file service discovery config must contain at least one path name".into(),
            ));
        }
        for (i, name) in self.files.iter().enumerate() {
            if !is_valid_pattern(name) {
                return Err((
                    format!("files[{i}]"),
                    format!(
                        "path name {name:?} is not valid for file discovery: it must end in .json, .yml or .yaml, with a glob only in the last path element"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Prometheus's `^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$`.
fn is_valid_pattern(name: &str) -> bool {
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    if !matches!(ext, "json" | "yml" | "yaml" | "JSON" | "YML" | "YAML") {
        return false;
    }
    match stem.find('*') {
        None => true,
        Some(star) => !stem[star..].contains('/'),
    }
}

#[derive(Debug, Error)]
pub enum FileSdError {
    #[error("{file}: unsupported file extension: expected .json, .yml or .yaml")]
    Extension { file: String },
    #[error("{file}: {source}")]
    Parse {
        file: String,
        #[source]
        source: FieldError,
    },
    #[error("{file}: [{index}].{field}: {reason}")]
    Invalid {
        file: String,
        index: usize,
        field: String,
        reason: String,
    },
}

/// Parses the content of the target file `file` into its groups, each labelled with
/// `__meta_filepath` and sourced `file:index`.
pub fn parse_targets(file: &str, content: &str) -> Result<Vec<TargetGroup>, FileSdError> {
    let ext = file
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    let mut groups: Vec<TargetGroup> = match ext.as_str() {
        "json" => parse_json(content),
        "yml" | "yaml" => field_path::from_yaml(content),
        _ => {
            return Err(FileSdError::Extension {
                file: file.to_string(),
            })
        }
    }
    .map_err(|source| FileSdError::Parse {
        file: file.to_string(),
        source,
    })?;
    for (index, group) in groups.iter_mut().enumerate() {
        if let Some((field, reason)) = group.invalid_label() {
            return Err(FileSdError::Invalid {
                file: file.to_string(),
                index,
                field,
                reason,
            });
        }
        group.source = format!("{file}:{index}");
        group
            .labels
            .insert(FILEPATH_LABEL.to_string(), file.to_string());
    }
    Ok(groups)
}

/// JSON target files are read leniently, as Go's `json.Unmarshal` does: unknown fields are
/// ignored (YAML ones are refused, as `yaml.UnmarshalStrict` does).
fn parse_json(content: &str) -> Result<Vec<TargetGroup>, FieldError> {
    #[derive(Deserialize)]
    struct JsonGroup {
        #[serde(default)]
        targets: Vec<String>,
        #[serde(default)]
        labels: std::collections::BTreeMap<String, String>,
    }
    let groups: Vec<JsonGroup> = field_path::from_json(content)?;
    Ok(groups
        .into_iter()
        .map(|g| TargetGroup {
            targets: g.targets,
            labels: g.labels,
            source: String::new(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_yaml_give_the_same_groups() {
        let json = r#"[ { "targets": ["10.0.0.1:9100", "10.0.0.2:9100"], "labels": { "env": "prod" }, "extra": 1 },
                        { "targets": ["10.0.0.3:9100"] } ]"#;
        let yaml = "- targets: ['10.0.0.1:9100', '10.0.0.2:9100']\n  labels: {env: prod}\n- targets: ['10.0.0.3:9100']\n";
        let j = parse_targets("t/a.json", json).unwrap();
        let y = parse_targets("t/a.JSON.yml", yaml).unwrap();
        assert_eq!(j.len(), 2);
        assert_eq!(j[0].targets, ["10.0.0.1:9100", "10.0.0.2:9100"]);
        assert_eq!(j[0].labels["env"], "prod");
        assert_eq!(j[0].labels[FILEPATH_LABEL], "t/a.json");
        assert_eq!(j[1].labels[FILEPATH_LABEL], "t/a.json");
        assert_eq!(j[1].source, "t/a.json:1");
        assert_eq!(y[0].targets, j[0].targets);
        assert_eq!(y[0].labels["env"], "prod");
        assert_eq!(y[1].source, "t/a.JSON.yml:1");
    }

    #[test]
    fn errors_name_the_file() {
        let e = parse_targets("a.yaml", "- targets: [x]\n  label: {}\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("a.yaml: [0].label: unknown field `label`"),
            "{e}"
        );
        let e = parse_targets("a.json", "[{\"targets\": 1}]").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("a.json: [0].targets: invalid type"),
            "{e}"
        );
        let e = parse_targets("a.json", r#"[{}, {"labels": {"a-b": "x"}}]"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.json: [1].labels: \"a-b\" is not a valid label name"
        );
        assert!(matches!(
            parse_targets("a.txt", "[]"),
            Err(FileSdError::Extension { .. })
        ));
        assert!(parse_targets("a.json", "[]").unwrap().is_empty());
    }

    #[test]
    fn config_validation() {
        let c: FileSdConfig =
            serde_yaml::from_str("files: ['targets/*.json', 'more/*.yml']").unwrap();
        assert_eq!(c.refresh_interval, Duration::from_secs(300));
        c.validate().unwrap();
        for (bad, field) in [
            ("files: []", "files"),
            ("files: [a.txt]", "files[0]"),
            ("files: [ok.yml, '*/a.json']", "files[1]"),
        ] {
            let c: FileSdConfig = serde_yaml::from_str(bad).unwrap();
            assert_eq!(c.validate().unwrap_err().0, field, "{bad}");
        }
        for good in ["a.yaml", "dir/x*.YAML", "/abs/*.json", "a*b.json"] {
            assert!(is_valid_pattern(good), "{good}");
        }
        assert!(!is_valid_pattern("a*/b*.json"));
    }
}
