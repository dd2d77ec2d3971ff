//! Relabeling (`relabel_configs`, `metric_relabel_configs`): the configuration, its
//! validation, and its application to a label set, with Prometheus's semantics
//! (`model/relabel/relabel.go`): regexes fully anchored as `^(?s:<regex>)$`, Go's `$1` /
//! `${name}` template expansion, and `hashmod` on the last 8 bytes of MD5.
//!
//! Applying a configuration never fails and never panics, whatever the labels: a target label
//! that expands to an invalid name is skipped, as Prometheus skips it. Label sets with invalid
//! names are refused later, when the builder becomes a `Labels`.

use std::fmt;
use std::sync::OnceLock;

use md5::{Digest, Md5};
use regex::{CaptureLocations, Regex};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use shards::labels::is_valid_label_name;

use super::label_builder::LabelBuilder;

pub const DEFAULT_REGEX: &str = "(.*)";
pub const DEFAULT_SEPARATOR: &str = ";";
pub const DEFAULT_REPLACEMENT: &str = "$1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Case-insensitive, as Prometheus lower-cases the action before matching it.
    pub fn parse(s: &str) -> Option<Action> {
        let lower = s.to_ascii_lowercase();
        Action::ALL.into_iter().find(|a| a.as_str() == lower)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Action::parse(&s).ok_or_else(|| {
            de::Error::custom(format_args!(
                "unknown relabel action {:?}; expected one of {}",
                s.to_ascii_lowercase(),
                Action::ALL.map(Action::as_str).join(", ")
            ))
        })
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A relabel regex: the text as written, and its compiled, fully anchored form.
#[derive(Debug, Clone)]
pub struct RelabelRegex {
    source: String,
    compiled: Regex,
}

impl RelabelRegex {
    pub fn new(source: &str) -> Result<RelabelRegex, regex::Error> {
        Ok(RelabelRegex {
            source: source.to_string(),
            compiled: Regex::new(&format!("^(?s:{source})$"))?,
        })
    }

    /// The regex as written in the configuration, without the anchoring.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.compiled.is_match(text)
    }

    pub fn is_default(&self) -> bool {
        self.source == DEFAULT_REGEX
    }
}

impl Default for RelabelRegex {
    fn default() -> Self {
        static DEFAULT: OnceLock<RelabelRegex> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                RelabelRegex::new(DEFAULT_REGEX).unwrap_or_else(|_| unreachable!("(.*) compiles"))
            })
            .clone()
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for RelabelRegex {}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        RelabelRegex::new(&s).map_err(|e| {
            // Explain the fault in the text as written, not in its anchored form, when the
            // text alone is faulty too.
            let e = Regex::new(&s).err().unwrap_or(e);
            // The regex crate explains syntax errors over several lines; a configuration
            // error reads best on one.
            let reason = e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            de::Error::custom(format_args!("invalid regex {s:?}: {reason}"))
        })
    }
}

impl Serialize for RelabelRegex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

/// One relabeling step, with Prometheus's defaults for every absent field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub target_label: String,
    pub regex: RelabelRegex,
    pub modulus: u64,
    pub replacement: String,
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_string(),
            target_label: String::new(),
            regex: RelabelRegex::default(),
            modulus: 0,
            replacement: DEFAULT_REPLACEMENT.to_string(),
            action: Action::Replace,
        }
    }
}

/// A validation failure: the offending field (relative to the relabel config) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelabelConfigError {
    pub field: String,
    pub reason: String,
}

impl RelabelConfig {
    /// Prometheus's checks (`relabel.Config.Validate`, legacy label names), naming the field.
    pub fn validate(&self) -> Result<(), RelabelConfigError> {
        let err = |field: &str, reason: String| {
            Err(RelabelConfigError {
                field: field.to_string(),
                reason,
            })
        };
        let action = self.action;
        for (i, name) in self.source_labels.iter().enumerate() {
            if !is_valid_label_name(name) {
                return err(
                    &format!("source_labels[{i}]"),
                    format!("{name:?} is not a valid label name"),
                );
            }
        }
        if action == Action::HashMod && self.modulus == 0 {
            return err(
                "modulus",
                "relabel configuration for hashmod requires non-zero modulus".into(),
            );
        }
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && self.target_label.is_empty() {
            return err(
                "target_label",
                format!("relabel configuration for {action} action requires 'target_label' value"),
            );
        }
        let target_ok = match action {
            Action::Replace => is_label_name_template(&self.target_label),
            _ if needs_target => is_valid_label_name(&self.target_label),
            _ => true,
        };
        if !target_ok {
            return err(
                "target_label",
                format!(
                    "{:?} is invalid 'target_label' for {action} action",
                    self.target_label
                ),
            );
        }
        let equal = matches!(action, Action::KeepEqual | Action::DropEqual);
        if (equal || matches!(action, Action::Lowercase | Action::Uppercase))
            && self.replacement != DEFAULT_REPLACEMENT
        {
            return err(
                "replacement",
                format!("'replacement' can not be set for {action} action"),
            );
        }
        if action == Action::LabelMap && !is_label_name_template(&self.replacement) {
            return err(
                "replacement",
                format!(
                    "{:?} is invalid 'replacement' for {action} action",
                    self.replacement
                ),
            );
        }
        if equal
            && (!self.regex.is_default()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return err(
                "",
                format!(
                    "{action} action requires only 'source_labels' and `target_label`, and no other fields"
                ),
            );
        }
        if matches!(action, Action::LabelDrop | Action::LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return err(
                "",
                format!("{action} action requires only 'regex', and no other fields"),
            );
        }
        Ok(())
    }

    /// Applies this step; `false` means the target or series is dropped.
    fn apply(&self, lb: &mut LabelBuilder, scratch: &mut RelabelScratch) -> bool {
        let value = &mut scratch.value;
        value.clear();
        for (i, name) in self.source_labels.iter().enumerate() {
            if i > 0 {
                value.push_str(&self.separator);
            }
            value.push_str(lb.get(name));
        }
        let value = value.as_str();
        match self.action {
            Action::Drop => return !self.regex.is_match(value),
            Action::Keep => return self.regex.is_match(value),
            Action::DropEqual => return lb.get(&self.target_label) != value,
            Action::KeepEqual => return lb.get(&self.target_label) == value,
            Action::Replace => {
                if !self.target_label.contains('$') && !self.replacement.contains('$') {
                    // No template to expand: a match is all that is needed, and it spares
                    // the capture positions.
                    if self.regex.is_match(value) {
                        lb.set(&self.target_label, &self.replacement);
                    }
                    return true;
                }
                let regex = &self.regex.compiled;
                let mut locs = regex.capture_locations();
                if regex.captures_read(&mut locs, value).is_none() {
                    return true;
                }
                expand(&self.target_label, regex, value, &locs, &mut scratch.target);
                if !is_valid_label_name(&scratch.target) {
                    return true;
                }
                expand(&self.replacement, regex, value, &locs, &mut scratch.result);
                lb.set(&scratch.target, &scratch.result);
            }
            Action::Lowercase => lb.set(&self.target_label, &value.to_lowercase()),
            Action::Uppercase => lb.set(&self.target_label, &value.to_uppercase()),
            Action::HashMod => {
                let digest = Md5::digest(value.as_bytes());
                let mut tail = [0u8; 8];
                tail.copy_from_slice(&digest[8..16]);
                // Validation refuses modulus 0; a hand-built config must not divide by it.
                let bucket = u64::from_be_bytes(tail)
                    .checked_rem(self.modulus)
                    .unwrap_or(0);
                lb.set(&self.target_label, &bucket.to_string());
            }
            Action::LabelMap => {
                // Prometheus ranges over a snapshot: labels added here are not mapped again.
                let regex = &self.regex.compiled;
                let mut locs = regex.capture_locations();
                let mut mapped = Vec::new();
                for l in lb.iter() {
                    if regex.captures_read(&mut locs, &l.name).is_some() {
                        expand(
                            &self.replacement,
                            regex,
                            &l.name,
                            &locs,
                            &mut scratch.target,
                        );
                        mapped.push((scratch.target.clone(), l.value.clone()));
                    }
                }
                for (name, value) in mapped {
                    lb.set(&name, &value);
                }
            }
            Action::LabelDrop => lb.retain(|l| !self.regex.is_match(&l.name)),
            Action::LabelKeep => lb.retain(|l| self.regex.is_match(&l.name)),
        }
        true
    }
}

/// Buffers reused across relabeling steps and calls, so that joining source values and
/// expanding templates do not allocate once warm.
#[derive(Debug, Default)]
pub struct RelabelScratch {
    value: String,
    target: String,
    result: String,
}

/// Applies `configs` in order; `false` as soon as one drops the label set (the builder is
/// then left half-relabeled and must not be used).
pub fn process(lb: &mut LabelBuilder, configs: &[RelabelConfig]) -> bool {
    process_with(lb, configs, &mut RelabelScratch::default())
}

/// As `process`, with caller-owned buffers for hot paths.
pub fn process_with(
    lb: &mut LabelBuilder,
    configs: &[RelabelConfig],
    scratch: &mut RelabelScratch,
) -> bool {
    configs.iter().all(|c| c.apply(lb, scratch))
}

/// A label name, possibly with `$1` / `${name}` references to expand (Prometheus's
/// `relabelTargetLegacy`).
fn is_label_name_template(s: &str) -> bool {
    static TEMPLATE: OnceLock<Regex> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$")
                .unwrap_or_else(|_| unreachable!("the template pattern compiles"))
        })
        .is_match(s)
}

/// Go's `Regexp.ExpandString`: `$name` / `${name}` is replaced by the group of that number
/// or name (the longest name wins, so `$1x` is group `1x`), unknown or unmatched groups by
/// nothing, `$$` by `$`; a `$` not followed by a name stays as it is.
fn expand(
    template: &str,
    regex: &Regex,
    haystack: &str,
    locs: &CaptureLocations,
    out: &mut String,
) {
    out.clear();
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some((name, number, after)) = extract_reference(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        let group = number.or_else(|| regex.capture_names().position(|n| n == Some(name)));
        if let Some((start, end)) = group.and_then(|g| locs.get(g)) {
            out.push_str(&haystack[start..end]);
        }
    }
    out.push_str(rest);
}

/// Go's `extract`: the reference right after a `$` as (name, group number if numeric, rest).
fn extract_reference(s: &str) -> Option<(&str, Option<usize>, &str)> {
    let (braced, s) = match s.strip_prefix('{') {
        Some(inner) => (true, inner),
        None => (false, s),
    };
    let len = s
        .char_indices()
        .find(|&(_, c)| !(c.is_alphabetic() || c.is_numeric() || c == '_'))
        .map_or(s.len(), |(i, _)| i);
    if len == 0 {
        return None;
    }
    let name = &s[..len];
    let rest = if braced {
        s[len..].strip_prefix('}')?
    } else {
        &s[len..]
    };
    let mut number = Some(0usize);
    for b in name.bytes() {
        number = match number {
            Some(n) if b.is_ascii_digit() && n < 100_000_000 => {
                Some(n * 10 + usize::from(b - b'0'))
            }
            _ => None,
        };
    }
    if name.len() > 1 && name.starts_with('0') {
        number = None;
    }
    Some((name, number, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::field_path;
    use shards::labels::Labels;

    fn builder(pairs: &[(&str, &str)]) -> LabelBuilder {
        LabelBuilder::from_labels(&Labels::from_pairs(pairs.iter().copied()).unwrap())
    }

    fn run(pairs: &[(&str, &str)], yaml: &str) -> Option<Vec<(String, String)>> {
        let configs: Vec<RelabelConfig> = serde_yaml::from_str(yaml).unwrap();
        for c in &configs {
            c.validate().unwrap();
        }
        let mut lb = builder(pairs);
        process(&mut lb, &configs).then(|| {
            lb.iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect()
        })
    }

    fn labels(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        let mut v: Vec<_> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        v.sort();
        Some(v)
    }

    const ABC: &[(&str, &str)] = &[("a", "foo"), ("b", "bar"), ("c", "baz")];

    #[test]
    fn replace_with_groups() {
        let out = run(
            ABC,
            r#"[{source_labels: [a], regex: "f(.*)", target_label: d, replacement: "ch${1}-ch${1}"}]"#,
        );
        assert_eq!(
            out,
            labels(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")])
        );
        let out = run(
            ABC,
            r#"[{source_labels: [a, b], regex: "f(.*);(.*)r", target_label: a, replacement: "b${1}${2}m"}]"#,
        );
        assert_eq!(out, labels(&[("a", "boobam"), ("b", "bar"), ("c", "baz")]));
    }

    #[test]
    fn replace_is_anchored_and_no_match_changes_nothing() {
        let out = run(
            ABC,
            r#"[{source_labels: [a], regex: "o+", target_label: d}]"#,
        );
        assert_eq!(out, labels(ABC));
        // `.` matches newlines too: `(?s)`.
        let out = run(
            &[("a", "x\ny")],
            r#"[{source_labels: [a], regex: "x.y", target_label: d, replacement: ok}]"#,
        );
        assert_eq!(out, labels(&[("a", "x\ny"), ("d", "ok")]));
    }

    #[test]
    fn replace_expansion_follows_go() {
        // `$1x` names group `1x`, which does not exist: the result is empty, so the target
        // label is deleted.
        let out = run(
            ABC,
            r#"[{source_labels: [a], regex: "(f)oo", target_label: b, replacement: "$1x"}]"#,
        );
        assert_eq!(out, labels(&[("a", "foo"), ("c", "baz")]));
        let out = run(
            ABC,
            r#"[{source_labels: [a], regex: "(f)oo", target_label: b, replacement: "${1}x $$ $ $- ${name}"}]"#,
        );
        assert_eq!(
            out,
            labels(&[("a", "foo"), ("b", "fx $ $ $- "), ("c", "baz")])
        );
        let out = run(
            ABC,
            r#"[{source_labels: [a], regex: "(?P<first>f)(?P<rest>o+)", target_label: "${first}_x", replacement: "${rest}"}]"#,
        );
        assert_eq!(
            out,
            labels(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("f_x", "oo")])
        );
    }

    #[test]
    fn replace_target_from_groups_skips_invalid_names() {
        let cfg = r#"[{source_labels: [a], regex: "some-([^-]+)-([^,]+)", target_label: "${1}", replacement: "${2}"}]"#;
        assert_eq!(
            run(&[("a", "some-name-value")], cfg),
            labels(&[("a", "some-name-value"), ("name", "value")])
        );
        assert_eq!(
            run(&[("a", "some-2-value")], cfg),
            labels(&[("a", "some-2-value")])
        );
    }

    #[test]
    fn replace_on_empty_value_sets_replacement() {
        let out = run(
            ABC,
            r#"[{source_labels: [missing], target_label: d, replacement: x}]"#,
        );
        assert_eq!(
            out,
            labels(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "x")])
        );
        let out = run(ABC, r#"[{target_label: env, replacement: prod}]"#);
        assert_eq!(
            out,
            labels(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("env", "prod")])
        );
    }

    #[test]
    fn address_port_rewrite_from_prometheus_docs() {
        let out = run(
            &[("__address__", "10.0.0.1:8080"), ("__meta_port", "9100")],
            r#"[{source_labels: [__address__, __meta_port], regex: '([^:]+)(?::\d+)?;(\d+)', replacement: '$1:$2', target_label: __address__}]"#,
        );
        assert_eq!(
            out,
            labels(&[("__address__", "10.0.0.1:9100"), ("__meta_port", "9100")])
        );
    }

    #[test]
    fn keep_and_drop() {
        assert_eq!(
            run(ABC, r#"[{source_labels: [c], regex: baz, action: drop}]"#),
            None
        );
        assert_eq!(
            run(ABC, r#"[{source_labels: [c], regex: ba, action: drop}]"#),
            labels(ABC)
        );
        assert_eq!(
            run(ABC, r#"[{source_labels: [c], regex: ba, action: keep}]"#),
            None
        );
        assert_eq!(
            run(ABC, r#"[{source_labels: [c], regex: "ba.", action: KEEP}]"#),
            labels(ABC)
        );
        assert_eq!(
            run(
                ABC,
                r#"[{source_labels: [a, b], regex: "foo;bar", action: keep}]"#
            ),
            labels(ABC)
        );
        assert_eq!(
            run(
                ABC,
                r#"[{source_labels: [a, b], separator: "", regex: "foobar", action: keep}]"#
            ),
            labels(ABC)
        );
        // The first drop stops processing.
        assert_eq!(
            run(
                ABC,
                r#"[{source_labels: [a], regex: foo, action: drop}, {target_label: x, replacement: y}]"#
            ),
            None
        );
    }

    #[test]
    fn keepequal_and_dropequal() {
        let l = &[
            ("__tmp_port", "1234"),
            ("__port1", "1234"),
            ("__port2", "5678"),
        ];
        let keep1 = r#"[{source_labels: [__port1], target_label: __tmp_port, action: keepequal}]"#;
        let keep2 = r#"[{source_labels: [__port2], target_label: __tmp_port, action: keepequal}]"#;
        let drop1 = r#"[{source_labels: [__port1], target_label: __tmp_port, action: dropequal}]"#;
        let drop2 = r#"[{source_labels: [__port2], target_label: __tmp_port, action: dropequal}]"#;
        assert_eq!(run(l, keep1), labels(l));
        assert_eq!(run(l, keep2), None);
        assert_eq!(run(l, drop1), None);
        assert_eq!(run(l, drop2), labels(l));
    }

    #[test]
    fn hashmod_matches_prometheus() {
        let out = run(
            ABC,
            r#"[{source_labels: [c], target_label: d, modulus: 1000, action: hashmod}]"#,
        );
        assert_eq!(
            out,
            labels(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")])
        );
        let out = run(
            ABC,
            r#"[{source_labels: [a], target_label: d, modulus: 1000, action: hashmod}]"#,
        );
        assert_eq!(
            out,
            labels(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "696")])
        );
    }

    #[test]
    fn labelmap() {
        let l = &[("a", "foo"), ("b1", "bar"), ("b2", "baz")];
        let out = run(
            l,
            r#"[{regex: "(b.*)", replacement: "bar_${1}", action: labelmap}]"#,
        );
        assert_eq!(
            out,
            labels(&[
                ("a", "foo"),
                ("b1", "bar"),
                ("b2", "baz"),
                ("bar_b1", "bar"),
                ("bar_b2", "baz")
            ])
        );
        let l = &[
            ("__meta_my_bar", "aaa"),
            ("__meta_my_baz", "bbb"),
            ("__meta_other", "ccc"),
        ];
        let out = run(
            l,
            r#"[{regex: "__meta_(my.*)", replacement: "${1}", action: labelmap}]"#,
        );
        assert_eq!(
            out,
            labels(&[
                ("__meta_my_bar", "aaa"),
                ("__meta_my_baz", "bbb"),
                ("__meta_other", "ccc"),
                ("my_bar", "aaa"),
                ("my_baz", "bbb"),
            ])
        );
    }

    #[test]
    fn labeldrop_and_labelkeep() {
        let l = &[("a", "foo"), ("b1", "bar"), ("b2", "baz")];
        assert_eq!(
            run(l, r#"[{regex: "(b.*)", action: labeldrop}]"#),
            labels(&[("a", "foo")])
        );
        assert_eq!(
            run(l, r#"[{regex: "(b.*)", action: labelkeep}]"#),
            labels(&[("b1", "bar"), ("b2", "baz")])
        );
        // Anchored: `b` matches no name fully.
        assert_eq!(run(l, r#"[{regex: "b", action: labeldrop}]"#), labels(l));
    }

    #[test]
    fn lowercase_and_uppercase() {
        let l = &[("foo", "bAr123Foo")];
        assert_eq!(
            run(
                l,
                r#"[{source_labels: [foo], target_label: foo_lower, action: lowercase}]"#
            ),
            labels(&[("foo", "bAr123Foo"), ("foo_lower", "bar123foo")])
        );
        assert_eq!(
            run(
                l,
                r#"[{source_labels: [foo], target_label: foo_upper, action: uppercase}]"#
            ),
            labels(&[("foo", "bAr123Foo"), ("foo_upper", "BAR123FOO")])
        );
    }

    fn invalid(yaml: &str) -> RelabelConfigError {
        let c: RelabelConfig = serde_yaml::from_str(yaml).unwrap();
        c.validate().unwrap_err()
    }

    #[test]
    fn validation_names_the_field() {
        let e = invalid("{action: hashmod, target_label: x, source_labels: [a]}");
        assert_eq!(e.field, "modulus");
        let e = invalid("{action: replace, source_labels: [a]}");
        assert_eq!(
            (e.field.as_str(), e.reason.as_str()),
            (
                "target_label",
                "relabel configuration for replace action requires 'target_label' value"
            )
        );
        let e = invalid("{action: replace, target_label: 1a}");
        assert_eq!(e.field, "target_label");
        let e = invalid("{action: lowercase, target_label: '${1}'}");
        assert_eq!(e.field, "target_label");
        let e = invalid("{action: uppercase, target_label: x, replacement: y}");
        assert_eq!(e.field, "replacement");
        let e = invalid("{action: labelmap, replacement: 'a-b'}");
        assert_eq!(e.field, "replacement");
        let e = invalid("{action: keepequal, target_label: x, regex: a}");
        assert_eq!(e.field, "");
        assert!(e.reason.contains("requires only 'source_labels'"));
        let e = invalid("{action: labeldrop, regex: a, source_labels: [x]}");
        assert!(e.reason.contains("labeldrop action requires only 'regex'"));
        let e = invalid("{source_labels: [ok, 'not-ok'], target_label: x}");
        assert_eq!(e.field, "source_labels[1]");
        // Templates are fine for replace's target.
        let c: RelabelConfig = serde_yaml::from_str("{target_label: 'x_${1}'}").unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn deserialization_errors() {
        let e = serde_yaml::from_str::<RelabelConfig>("{action: explode}").unwrap_err();
        assert!(
            e.to_string().contains("unknown relabel action \"explode\""),
            "{e}"
        );
        let e = field_path::from_yaml::<RelabelConfig>("{regex: '(['}").unwrap_err();
        assert_eq!(e.path, "regex");
        assert_eq!(e.message.lines().count(), 1);
        assert!(
            e.message
                .starts_with("invalid regex \"([\": regex parse error: ([ "),
            "{e}"
        );
        let e = serde_yaml::from_str::<RelabelConfig>("{regexp: 'a'}").unwrap_err();
        assert!(e.to_string().contains("unknown field `regexp`"), "{e}");
    }

    #[test]
    fn defaults() {
        let c: RelabelConfig = serde_yaml::from_str("{}").unwrap();
        assert_eq!(c, RelabelConfig::default());
        assert_eq!(c.regex.as_str(), "(.*)");
        assert_eq!(c.separator, ";");
        assert_eq!(c.replacement, "$1");
        assert_eq!(c.action, Action::Replace);
    }

    #[test]
    fn expansion_edge_cases() {
        let re = Regex::new("^(?s:(a)(b)?)$").unwrap();
        let mut locs = re.capture_locations();
        re.captures_read(&mut locs, "a").unwrap();
        let mut out = String::new();
        for (template, want) in [
            ("$1", "a"),
            ("$2", ""),     // unmatched group
            ("$9", ""),     // no such group
            ("$01", ""),    // leading zero: a name, not a number
            ("${1", "${1"), // no closing brace: a literal `$`
            ("$", "$"),
            ("x$", "x$"),
            ("$0-$1", "a-a"),
        ] {
            expand(template, &re, "a", &locs, &mut out);
            assert_eq!(out, want, "{template}");
        }
    }
}
