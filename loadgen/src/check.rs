//! A strict reader of exposition bodies, written independently of any server's parser: the
//! judge loadgen's own tests hold every body to.
//!
//! Stricter than Prometheus where loadgen can afford it (no comments other than HELP/TYPE,
//! no timestamps, no blank lines, every sample under a TYPE of its family, no duplicate
//! series, cumulative buckets ending at `+Inf == _count`, integer counts in OpenMetrics). It
//! allocates freely and must never be used on the serving path.

use std::collections::{HashMap, HashSet};

use thiserror::Error;

use crate::body::Format;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("line {line}: {reason}: {text:?}")]
pub struct CheckError {
    pub line: usize,
    pub reason: &'static str,
    pub text: String,
}

/// What a valid body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub families: usize,
    pub samples: usize,
}

/// One parsed sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: Vec<(&'a str, &'a str)>,
    pub value: f64,
    /// The value as written.
    pub raw: &'a str,
}

impl Sample<'_> {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

pub fn check(body: &[u8], format: Format) -> Result<Checked, CheckError> {
    let err = |line: usize, reason: &'static str, text: &str| CheckError {
        line,
        reason,
        text: text.chars().take(200).collect(),
    };
    let text = std::str::from_utf8(body).map_err(|_| err(0, "not UTF-8", ""))?;
    let om = format == Format::OpenMetrics;
    let text = if om {
        text.strip_suffix("# EOF\n")
            .ok_or_else(|| err(0, "OpenMetrics body does not end with # EOF", ""))?
    } else {
        text
    };
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(err(0, "body does not end with a newline", ""));
    }

    let mut families: HashSet<String> = HashSet::new();
    let mut helped: HashSet<String> = HashSet::new();
    let mut current: Option<(String, String)> = None; // (family, type)
    let mut series: HashSet<String> = HashSet::new();
    // Per histogram label set (without `le`): last bucket value and whether +Inf was seen.
    let mut buckets: HashMap<String, (f64, Option<f64>)> = HashMap::new();
    let mut counts: HashMap<String, f64> = HashMap::new();
    let mut samples = 0;

    for (i, line) in text.split_terminator('\n').enumerate() {
        let n = i + 1;
        if line.is_empty() {
            return Err(err(n, "blank line", line));
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let (what, rest) = rest
                .split_once(' ')
                .ok_or_else(|| err(n, "bad comment", line))?;
            let (name, arg) = rest
                .split_once(' ')
                .ok_or_else(|| err(n, "no argument", line))?;
            if !is_metric_name(name) {
                return Err(err(n, "bad metric name", line));
            }
            match what {
                "TYPE" => {
                    let known: &[&str] = if om {
                        &[
                            "counter",
                            "gauge",
                            "histogram",
                            "summary",
                            "info",
                            "unknown",
                        ]
                    } else {
                        &["counter", "gauge", "histogram", "summary", "untyped"]
                    };
                    if !known.contains(&arg) {
                        return Err(err(n, "unknown type", line));
                    }
                    if om && arg == "counter" && name.ends_with("_total") {
                        return Err(err(n, "OpenMetrics counter family named _total", line));
                    }
                    if !families.insert(name.to_string()) {
                        return Err(err(n, "family typed twice or interleaved", line));
                    }
                    current = Some((name.to_string(), arg.to_string()));
                }
                "HELP" => {
                    if !helped.insert(name.to_string()) {
                        return Err(err(n, "second HELP for a family", line));
                    }
                }
                _ => return Err(err(n, "comment other than HELP/TYPE", line)),
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(err(n, "comment other than HELP/TYPE", line));
        }
        let s = parse_sample(line).ok_or_else(|| err(n, "malformed sample", line))?;
        let (family, typ) = current
            .as_ref()
            .ok_or_else(|| err(n, "sample before any TYPE", line))?;
        let suffix = s
            .name
            .strip_prefix(family.as_str())
            .ok_or_else(|| err(n, "sample outside its family", line))?;
        let allowed: &[&str] = match (typ.as_str(), om) {
            ("counter", true) => &["_total"],
            ("info", _) => &["_info"],
            ("histogram", _) => &["_bucket", "_sum", "_count"],
            ("summary", _) => &["", "_sum", "_count"],
            _ => &[""],
        };
        if !allowed.contains(&suffix) {
            return Err(err(n, "sample name does not match its family's type", line));
        }
        let is_count = suffix == "_count" || suffix == "_bucket";
        if om && is_count && s.raw.contains(['.', 'e', 'E']) {
            return Err(err(n, "OpenMetrics count is not an integer", line));
        }
        if typ == "info" && s.value != 1.0 {
            return Err(err(n, "info value is not 1", line));
        }
        let mut key = String::from(s.name);
        for (name, value) in &s.labels {
            key.push_str(&format!("\u{0}{name}={value}"));
        }
        if !series.insert(key) {
            return Err(err(n, "duplicate series", line));
        }
        if typ == "summary" && suffix.is_empty() && s.label("quantile").is_none() {
            return Err(err(n, "summary quantile line without quantile", line));
        }
        if typ == "histogram" {
            let mut set = family.clone();
            for (name, value) in s.labels.iter().filter(|(n, _)| *n != "le") {
                set.push_str(&format!("\u{0}{name}={value}"));
            }
            match suffix {
                "_bucket" => {
                    let le = s
                        .label("le")
                        .ok_or_else(|| err(n, "bucket without le", line))?;
                    let entry = buckets.entry(set).or_insert((0.0, None));
                    if entry.1.is_some() {
                        return Err(err(n, "bucket after +Inf", line));
                    }
                    if s.value < entry.0 {
                        return Err(err(n, "buckets not cumulative", line));
                    }
                    entry.0 = s.value;
                    if le == "+Inf" {
                        entry.1 = Some(s.value);
                    }
                }
                "_count" => {
                    counts.insert(set, s.value);
                }
                _ => {}
            }
        }
        samples += 1;
    }
    for (set, (_, inf)) in &buckets {
        let inf = inf.ok_or_else(|| err(0, "histogram without +Inf bucket", set))?;
        if counts.get(set) != Some(&inf) {
            return Err(err(0, "+Inf bucket differs from _count", set));
        }
    }
    Ok(Checked {
        families: families.len(),
        samples,
    })
}

/// Parses `name{label="value",...} value`, exactly one space before the value, no
/// timestamp, no trailing blanks.
pub fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let end = line.find(['{', ' '])?;
    let name = &line[..end];
    if !is_metric_name(name) {
        return None;
    }
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = inner.find('=')?;
            let lname = &inner[..eq];
            if !is_label_name(lname) || labels.iter().any(|(n, _)| *n == lname) {
                return None;
            }
            inner = inner[eq + 1..].strip_prefix('"')?;
            let close = closing_quote(inner)?;
            labels.push((lname, &inner[..close]));
            inner = &inner[close + 1..];
            if let Some(after) = inner.strip_prefix(',') {
                // No trailing comma: loadgen never writes one.
                if after.starts_with('}') {
                    return None;
                }
                inner = after;
            } else if !inner.starts_with('}') {
                return None;
            }
        }
    }
    let raw = rest.strip_prefix(' ')?;
    if !is_number(raw) {
        return None;
    }
    Some(Sample {
        name,
        labels,
        value: raw.parse().ok()?,
        raw,
    })
}

/// Index of the closing quote of a label value; only `\\`, `\"` and `\n` escapes.
fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => return Some(i),
            b'\\' => {
                if !matches!(b.get(i + 1), Some(b'\\' | b'"' | b'n')) {
                    return None;
                }
                i += 2;
            }
            b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// `-?[0-9]+(\.[0-9]+)?`, or one of `+Inf`, `-Inf`, `NaN`.
fn is_number(s: &str) -> bool {
    if matches!(s, "+Inf" | "-Inf" | "NaN") {
        return true;
    }
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = s.split_once('.').unwrap_or((s, "1"));
    !int.is_empty()
        && !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

fn is_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 0005\n\
                        # TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 1.5\nh_count 3\n";

    #[test]
    fn accepts_a_good_body() {
        assert_eq!(
            check(GOOD.as_bytes(), Format::Text),
            Ok(Checked {
                families: 2,
                samples: 5
            })
        );
    }

    #[test]
    fn refuses_what_loadgen_must_never_write() {
        let bad = [
            GOOD.replace("0005", "5 "),
            GOOD.replace("0005", "5 123"),
            GOOD.replace("{x=\"1\"}", "{x=\"1\",}"),
            GOOD.replace("{x=\"1\"}", "{x=1}"),
            GOOD.replace("h_count 3", "h_count 4"),
            GOOD.replace("le=\"1\"} 2", "le=\"1\"} 4"),
            GOOD.replace("# TYPE h histogram\n", ""),
            GOOD.replace("h_sum", "g_sum"),
            format!("{GOOD}\n"),
            format!("{GOOD}a_total{{x=\"1\"}} 6\n"),
            GOOD.replace("# HELP", "# HALP"),
            GOOD.trim_end().to_string(),
        ];
        for body in bad {
            assert!(check(body.as_bytes(), Format::Text).is_err(), "{body}");
        }
    }

    #[test]
    fn openmetrics_rules() {
        let om = "# TYPE a counter\na_total 1\n# TYPE i info\ni_info{v=\"1\"} 1\n# EOF\n";
        assert!(check(om.as_bytes(), Format::OpenMetrics).is_ok());
        assert!(check(om.replace("# EOF\n", "").as_bytes(), Format::OpenMetrics).is_err());
        assert!(check(om.replace("a_total", "a").as_bytes(), Format::OpenMetrics).is_err());
        assert!(check(om.replace("} 1", "} 2").as_bytes(), Format::OpenMetrics).is_err());
    }
}
