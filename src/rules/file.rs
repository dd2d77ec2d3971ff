//! Rule files in Prometheus's format (`groups:` of recording and alerting rules), parsed and
//! validated as Prometheus's `rulefmt` does, every error naming the file and the field's path
//! (`groups[0].rules[2].expr: ...`). Expressions are parsed and templates compiled here, so a
//! file that loads is one the manager can evaluate.
//!
//! This module reads files and checks them; it never evaluates a rule or touches the server.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use shards::labels::{is_valid_label_name, is_valid_metric_name};
use thiserror::Error;

use crate::config::duration::Duration;
use crate::config::field_path::{self, FieldError};

use super::template::Template;

#[derive(Debug, Error)]
pub enum RuleFileError {
    #[error("{}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", file.display())]
    Syntax {
        file: PathBuf,
        #[source]
        source: FieldError,
    },
    #[error("{}: {path}: {reason}", file.display())]
    Invalid {
        file: PathBuf,
        path: String,
        reason: String,
    },
}

/// A rule file as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RuleFileSpec {
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub query_offset: Option<Duration>,
    #[serde(default)]
    pub limit: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(default)]
    pub record: Option<String>,
    #[serde(default)]
    pub alert: Option<String>,
    #[serde(default)]
    pub expr: Option<ExprText>,
    #[serde(default, rename = "for")]
    pub for_: Option<Duration>,
    #[serde(default)]
    pub keep_firing_for: Option<Duration>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// An expression as YAML may write it: Prometheus accepts `expr: 1` as the text `1`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ExprText {
    Text(String),
    Int(i64),
    Float(f64),
}

impl ExprText {
    pub fn text(&self) -> String {
        match self {
            ExprText::Text(s) => s.clone(),
            ExprText::Int(i) => i.to_string(),
            ExprText::Float(f) => f.to_string(),
        }
    }
}

/// What a rule is, once validated.
#[derive(Debug, Clone)]
pub enum RuleKind {
    Recording,
    Alerting {
        for_: Duration,
        keep_firing_for: Duration,
        /// Label and annotation templates, in name order.
        label_templates: Vec<(String, Template)>,
        annotation_templates: Vec<(String, Template)>,
    },
}

/// One validated rule: the name (`record` or `alert`), the expression and the labels.
#[derive(Debug, Clone)]
pub struct RuleDef {
    pub name: String,
    pub expr: String,
    /// Labels as written; for alerts they are templates (in `kind`).
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub kind: RuleKind,
}

impl RuleDef {
    pub fn is_alert(&self) -> bool {
        matches!(self.kind, RuleKind::Alerting { .. })
    }

    /// Whether a reloaded rule takes over this one's state: the same kind, name and labels,
    /// as Prometheus's `CopyState` matches rules (a changed expression keeps its alerts).
    pub fn same_identity(&self, other: &RuleDef) -> bool {
        self.name == other.name
            && self.labels == other.labels
            && self.is_alert() == other.is_alert()
    }
}

/// One validated group.
#[derive(Debug, Clone)]
pub struct GroupDef {
    pub file: String,
    pub name: String,
    /// `None`: the global evaluation interval.
    pub interval: Option<Duration>,
    pub query_offset: Option<Duration>,
    pub limit: u64,
    pub labels: BTreeMap<String, String>,
    pub rules: Vec<RuleDef>,
}

/// Reads and validates one rule file.
pub fn load_file(path: &Path) -> Result<Vec<GroupDef>, RuleFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| RuleFileError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses and validates the text of the rule file at `path` (named in errors).
pub fn parse(path: &Path, text: &str) -> Result<Vec<GroupDef>, RuleFileError> {
    let spec: RuleFileSpec = if text.trim().is_empty() {
        RuleFileSpec::default()
    } else {
        field_path::from_yaml(text).map_err(|source| RuleFileError::Syntax {
            file: path.to_path_buf(),
            source,
        })?
    };
    let invalid = |p: String, reason: String| RuleFileError::Invalid {
        file: path.to_path_buf(),
        path: p,
        reason,
    };
    let file = path.display().to_string();
    let mut names = HashSet::new();
    let mut groups = Vec::with_capacity(spec.groups.len());
    for (gi, g) in spec.groups.into_iter().enumerate() {
        let gp = format!("groups[{gi}]");
        if g.name.is_empty() {
            return Err(invalid(
                format!("{gp}.name"),
                "Groupname must not be empty".into(),
            ));
        }
        if !names.insert(g.name.clone()) {
            return Err(invalid(
                format!("{gp}.name"),
                format!("groupname: {:?} is repeated in the same file", g.name),
            ));
        }
        // Prometheus 2.42 accepts `interval: 0s` and evaluates such a group at the global
        // evaluation interval, as if the field were absent.
        let interval = g.interval.filter(|d| !d.is_zero());
        check_labels(&g.labels).map_err(|r| invalid(format!("{gp}.labels"), r))?;
        let mut rules = Vec::with_capacity(g.rules.len());
        for (ri, mut r) in g.rules.into_iter().enumerate() {
            let rp = format!("{gp}.rules[{ri}]");
            // Group labels apply to every rule of the group; a rule's own label wins.
            for (k, v) in &g.labels {
                r.labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
            rules.push(validate_rule(r).map_err(|(field, reason)| {
                invalid(
                    if field.is_empty() {
                        rp.clone()
                    } else {
                        format!("{rp}.{field}")
                    },
                    reason,
                )
            })?);
        }
        groups.push(GroupDef {
            file: file.clone(),
            name: g.name,
            interval,
            query_offset: g.query_offset,
            limit: g.limit,
            labels: g.labels,
            rules,
        });
    }
    Ok(groups)
}

fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), String> {
    for name in labels.keys() {
        if !is_valid_label_name(name) {
            return Err(format!("invalid label name: {name}"));
        }
    }
    Ok(())
}

/// Checks a rule as `rulefmt.RuleNode.Validate` does; the error is (field, reason).
fn validate_rule(r: RuleSpec) -> Result<RuleDef, (String, String)> {
    let err = |f: &str, reason: String| (f.to_string(), reason);
    let name = match (&r.record, &r.alert) {
        (Some(_), Some(_)) => {
            return Err(err(
                "",
                "only one of 'record' and 'alert' must be set".into(),
            ))
        }
        (None, None) => return Err(err("", "one of 'record' or 'alert' must be set".into())),
        (Some(n), None) | (None, Some(n)) if n.is_empty() => {
            let f = if r.record.is_some() {
                "record"
            } else {
                "alert"
            };
            // Prometheus reads an empty name as no name at all.
            return Err(err(f, "one of 'record' or 'alert' must be set".into()));
        }
        (Some(n), None) | (None, Some(n)) => n.clone(),
    };
    let expr = match &r.expr {
        None => return Err(err("expr", "field 'expr' must be set in rule".into())),
        Some(e) => e.text(),
    };
    if expr.trim().is_empty() {
        return Err(err("expr", "field 'expr' must be set in rule".into()));
    }
    crate::promql::engine::parse(&expr)
        .map_err(|e| err("expr", format!("could not parse expression: {e}")))?;
    check_labels(&r.labels).map_err(|reason| err("labels", reason))?;
    for name in r.annotations.keys() {
        if !is_valid_label_name(name) {
            return Err(err(
                "annotations",
                format!("invalid annotation name: {name}"),
            ));
        }
    }
    let kind = if r.record.is_some() {
        if !r.annotations.is_empty() {
            return Err(err(
                "annotations",
                "invalid field 'annotations' in recording rule".into(),
            ));
        }
        if r.for_.is_some() {
            return Err(err("for", "invalid field 'for' in recording rule".into()));
        }
        if r.keep_firing_for.is_some() {
            return Err(err(
                "keep_firing_for",
                "invalid field 'keep_firing_for' in recording rule".into(),
            ));
        }
        if !is_valid_metric_name(&name) {
            return Err(err(
                "record",
                format!("invalid recording rule name: {name}"),
            ));
        }
        if r.labels.contains_key("__name__") {
            return Err(err("labels", "invalid label name: __name__".into()));
        }
        RuleKind::Recording
    } else {
        let compile = |field: &str, map: &BTreeMap<String, String>| {
            map.iter()
                .map(|(k, v)| {
                    Template::parse(v)
                        .map(|t| (k.clone(), t))
                        .map_err(|e| err(&format!("{field}.{k}"), e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        RuleKind::Alerting {
            for_: r.for_.unwrap_or(Duration::ZERO),
            keep_firing_for: r.keep_firing_for.unwrap_or(Duration::ZERO),
            label_templates: compile("labels", &r.labels)?,
            annotation_templates: compile("annotations", &r.annotations)?,
        }
    };
    Ok(RuleDef {
        name,
        expr,
        labels: r.labels,
        annotations: r.annotations,
        kind,
    })
}

/// Expands `rule_files` globs (relative to `base`) into the sorted, deduplicated files.
pub fn expand_globs(base: &Path, patterns: &[String]) -> Result<Vec<PathBuf>, RuleFileError> {
    let mut out = Vec::new();
    for pattern in patterns {
        // `join` keeps an absolute pattern as it is.
        let mut found = Vec::new();
        crate::scrape::file_discovery::expand(base, pattern, &mut found);
        found.sort();
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// Loads every group of every file; the first error stops the load.
pub fn load_files(files: &[PathBuf]) -> Result<Vec<GroupDef>, RuleFileError> {
    let mut groups = Vec::new();
    for f in files {
        groups.extend(load_file(f)?);
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        parse(Path::new("r.yml"), text).unwrap_err().to_string()
    }

    #[test]
    fn a_full_file() {
        let g = parse(
            Path::new("r.yml"),
            r#"
groups:
  - name: g
    interval: 30s
    limit: 10
    labels: {team: a}
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels: {x: y}
      - alert: Down
        expr: up == 0
        for: 1m
        keep_firing_for: 2m
        labels: {severity: page}
        annotations: {summary: "{{ $labels.instance }} down, value {{ $value }}"}
"#,
        )
        .unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].interval, Some(Duration::from_secs(30)));
        assert_eq!(g[0].rules.len(), 2);
        assert!(!g[0].rules[0].is_alert() && g[0].rules[1].is_alert());
    }

    #[test]
    fn a_zero_interval_is_the_default_interval() {
        let g = parse(
            Path::new("r.yml"),
            "groups:\n  - name: a\n    interval: 0s\n    rules: [{record: x, expr: up}]\n",
        )
        .unwrap();
        assert_eq!(g[0].interval, None);
    }

    #[test]
    fn every_error_names_its_path() {
        let cases = [
            ("groups:\n  - name: a\n  - name: a\n", "r.yml: groups[1].name: groupname: \"a\" is repeated in the same file"),
            ("groups:\n  - name: a\n    rules:\n      - expr: up\n", "r.yml: groups[0].rules[0]: one of 'record' or 'alert' must be set"),
            ("groups:\n  - name: a\n    rules:\n      - {record: a, alert: b, expr: up}\n", "r.yml: groups[0].rules[0]: only one of 'record' and 'alert' must be set"),
            ("groups:\n  - name: a\n    rules:\n      - {record: a}\n", "r.yml: groups[0].rules[0].expr: field 'expr' must be set in rule"),
            ("groups:\n  - name: a\n    rules:\n      - {record: a, expr: 'sum(('}\n", "r.yml: groups[0].rules[0].expr: could not parse expression"),
            ("groups:\n  - name: a\n    rules:\n      - {record: 'a-b', expr: up}\n", "r.yml: groups[0].rules[0].record: invalid recording rule name: a-b"),
            ("groups:\n  - name: a\n    rules:\n      - {record: a, expr: up, for: 1m}\n", "r.yml: groups[0].rules[0].for: invalid field 'for' in recording rule"),
            ("groups:\n  - name: a\n    rules:\n      - {alert: A, expr: up, labels: {'1x': y}}\n", "r.yml: groups[0].rules[0].labels: invalid label name: 1x"),
            ("groups:\n  - name: a\n    rules:\n      - {alert: A, expr: up, annotations: {s: '{{ nosuch }}'}}\n", "r.yml: groups[0].rules[0].annotations.s: "),
            ("groups:\n  - name: a\n    rules:\n      - {alert: A, expr: up, fore: 1m}\n", "r.yml: groups[0].rules[0].fore: unknown field `fore`"),
            ("groups:\n  - name: a\n    interval: 1x\n", "r.yml: groups[0].interval: unknown unit"),
        ];
        for (text, want) in cases {
            let got = error(text);
            assert!(got.starts_with(want), "\n got: {got}\nwant: {want}...");
        }
    }
}
