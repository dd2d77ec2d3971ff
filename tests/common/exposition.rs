//! Reads the text exposition format the way the tests need it: `/federate` answers (latest
//! value and its timestamp per series) and `/metrics` pages. Comment lines are skipped;
//! anything it cannot read is an error naming the line, never a silent skip.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    /// Milliseconds since the epoch, when the line carries one (federation always does).
    pub timestamp: Option<i64>,
}

impl Sample {
    /// The label's value; `""` when absent, as Prometheus treats it.
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map(String::as_str).unwrap_or("")
    }

    /// True when every `(name, value)` pair matches.
    pub fn has(&self, pairs: &[(&str, &str)]) -> bool {
        pairs.iter().all(|(n, v)| self.label(n) == *v)
    }
}

/// The samples named `name` whose labels include all of `pairs`.
pub fn select<'a>(samples: &'a [Sample], name: &str, pairs: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == name && s.has(pairs))
        .collect()
}

/// The single sample named `name` with `pairs`; `None` when there is none or several.
pub fn one<'a>(samples: &'a [Sample], name: &str, pairs: &[(&str, &str)]) -> Option<&'a Sample> {
    match select(samples, name, pairs).as_slice() {
        [s] => Some(s),
        _ => None,
    }
}

pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| parse_line(l).map_err(|e| format!("{e} in line {l:?}")))
        .collect()
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' ', '\t'])
        .ok_or("no value after the name")?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = after_brace;
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (label, after_eq) = rest.split_once('=').ok_or("label without '='")?;
            let quoted = after_eq
                .trim_start()
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let (value, after_value) = unquote(quoted)?;
            labels.insert(label.trim().to_string(), value);
            rest = after_value;
        }
    }
    let mut fields = rest.split_whitespace();
    let value = parse_value(fields.next().ok_or("no value")?)?;
    let timestamp = match fields.next() {
        Some(t) => Some(t.parse().map_err(|_| format!("bad timestamp {t:?}"))?),
        None => None,
    };
    Ok(Sample {
        name,
        labels,
        value,
        timestamp,
    })
}

/// Reads a label value up to its closing quote; returns it unescaped and what follows.
fn unquote(s: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, other)) => value.push(other),
                None => break,
            },
            _ => value.push(c),
        }
    }
    Err("unterminated label value".into())
}

pub fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federation_lines() {
        let s = parse(
            "# TYPE up untyped\nup{instance=\"127.0.0.1:9\",job=\"a\\\"b\"} 1 1700000000123\nx 2.5\ny{a=\"1\",} NaN\n",
        )
        .unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].label("job"), "a\"b");
        assert_eq!(s[0].timestamp, Some(1_700_000_000_123));
        assert_eq!(
            (s[1].name.as_str(), s[1].value, s[1].timestamp),
            ("x", 2.5, None)
        );
        assert!(s[2].value.is_nan() && s[2].label("a") == "1");
        assert!(parse("z{a=\"1} 3\n").is_err());
    }
}
