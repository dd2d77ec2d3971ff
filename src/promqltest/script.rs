//! Prometheus's PromQL test-file format (`promql/promqltest/testdata/*.test`) parsed into
//! commands: `load` blocks, `clear`, and `eval` commands with their expectations. Pure text
//! processing; running the commands is `runner`'s job.

use shards::labels::{Label, Labels};
use shards::value::stale_nan;
use thiserror::Error;

use crate::promql::eval::call::parse_go_float;
use crate::promql::value::FPoint;

#[derive(Debug, Error, PartialEq)]
#[error("line {line}: {reason}")]
pub struct ScriptError {
    pub line: usize,
    pub reason: String,
}

fn err(line: usize, reason: impl Into<String>) -> ScriptError {
    ScriptError {
        line,
        reason: reason.into(),
    }
}

/// One series of a `load` block (or of an expected range result).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSeries {
    pub labels: Labels,
    /// Values by step index; `None` for `_`. Stale markers are `stale_nan()`.
    pub values: Vec<Option<f64>>,
    /// The line holds native histograms (`{{...}}`), which this runner does not load.
    pub histograms: bool,
    /// The line gives start timestamps (`name{...}@st ...`): `values` then hold each sample's
    /// start timestamp as ms relative to the sample's own time.
    pub start_timestamps: bool,
}

impl LoadSeries {
    /// The points at `start + k * interval`.
    pub fn points(&self, start: i64, interval: i64) -> Vec<FPoint> {
        self.values
            .iter()
            .enumerate()
            .filter_map(|(k, v)| {
                v.map(|f| FPoint {
                    t: start + k as i64 * interval,
                    f,
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Matching {
    Any,
    Msg(String),
    Regex(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum EvalKind {
    Instant { at: i64 },
    Range { start: i64, end: i64, step: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// Series lines of an instant vector (`values` has one element) or of a range result.
    Series(Vec<LoadSeries>),
    Scalar(f64),
    String(String),
    /// `expect range vector from .. to .. step ..` for an instant query.
    RangeVector {
        start: i64,
        end: i64,
        step: i64,
        series: Vec<LoadSeries>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvalCmd {
    pub line: usize,
    pub expr: String,
    pub kind: EvalKind,
    pub fail: Option<Matching>,
    pub warn: Vec<Matching>,
    pub info: Vec<Matching>,
    pub no_warn: bool,
    pub no_info: bool,
    pub ordered: bool,
    pub expected: Expected,
}

impl EvalCmd {
    /// Whether the expected result involves native histograms.
    pub fn uses_histograms(&self) -> bool {
        match &self.expected {
            Expected::Series(s) | Expected::RangeVector { series: s, .. } => {
                s.iter().any(|s| s.histograms)
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Load {
        line: usize,
        interval: i64,
        /// `load_with_nhcb`: classic histograms are also converted to native ones.
        nhcb: bool,
        series: Vec<LoadSeries>,
    },
    Clear,
    Eval(EvalCmd),
}

/// Parses a whole test file.
pub fn parse_script(text: &str) -> Result<Vec<Command>, ScriptError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i + 1;
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The body: following lines up to a blank line or the next command.
        let mut body: Vec<(usize, &str)> = Vec::new();
        while i < lines.len() {
            let l = lines[i].trim();
            if l.is_empty() {
                break;
            }
            if !lines[i].starts_with([' ', '\t']) && is_command(l) {
                break;
            }
            if !l.starts_with('#') {
                body.push((i + 1, l));
            }
            i += 1;
        }
        let (word, rest) = split_word(line);
        match word {
            "load" | "load_with_nhcb" => {
                let interval = parse_duration(rest.trim())
                    .ok_or_else(|| err(lineno, format!("invalid load interval {rest:?}")))?;
                let mut series = Vec::new();
                for (n, l) in body {
                    series.push(parse_series_line(l).map_err(|e| err(n, e))?);
                }
                cmds.push(Command::Load {
                    line: lineno,
                    interval,
                    nhcb: word == "load_with_nhcb",
                    series,
                });
            }
            "clear" => cmds.push(Command::Clear),
            w if w.starts_with("eval") => {
                cmds.push(Command::Eval(parse_eval(lineno, word, rest, &body)?));
            }
            _ => return Err(err(lineno, format!("unknown command {line:?}"))),
        }
    }
    Ok(cmds)
}

fn is_command(l: &str) -> bool {
    let (w, _) = split_word(l);
    matches!(w, "load" | "load_with_nhcb" | "clear") || w.starts_with("eval")
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

fn parse_eval(
    line: usize,
    word: &str,
    rest: &str,
    body: &[(usize, &str)],
) -> Result<EvalCmd, ScriptError> {
    let mut cmd = EvalCmd {
        line,
        expr: String::new(),
        kind: EvalKind::Instant { at: 0 },
        fail: None,
        warn: Vec::new(),
        info: Vec::new(),
        no_warn: false,
        no_info: false,
        ordered: false,
        expected: Expected::Series(Vec::new()),
    };
    match word {
        "eval" => {}
        "eval_fail" => cmd.fail = Some(Matching::Any),
        "eval_warn" => cmd.warn.push(Matching::Any),
        "eval_info" => cmd.info.push(Matching::Any),
        "eval_ordered" => cmd.ordered = true,
        _ => return Err(err(line, format!("unknown eval command {word:?}"))),
    }
    let (kind, rest) = split_word(rest);
    match kind {
        "instant" => {
            let (at_kw, rest) = split_word(rest);
            if at_kw != "at" {
                return Err(err(line, "expected `at`"));
            }
            let (t, expr) = split_word(rest);
            let at = parse_duration(t).ok_or_else(|| err(line, format!("invalid time {t:?}")))?;
            cmd.kind = EvalKind::Instant { at };
            cmd.expr = expr.to_string();
        }
        "range" => {
            let mut words = Vec::new();
            let mut r = rest;
            for _ in 0..6 {
                let (w, next) = split_word(r);
                words.push(w);
                r = next;
            }
            if words[0] != "from" || words[2] != "to" || words[4] != "step" {
                return Err(err(line, "expected `from <t> to <t> step <d>`"));
            }
            let d =
                |s: &str| parse_duration(s).ok_or_else(|| err(line, format!("invalid time {s:?}")));
            cmd.kind = EvalKind::Range {
                start: d(words[1])?,
                end: d(words[3])?,
                step: d(words[5])?,
            };
            cmd.expr = r.to_string();
        }
        _ => return Err(err(line, format!("unknown eval kind {kind:?}"))),
    }
    let mut series = Vec::new();
    for &(n, l) in body {
        if let Some(e) = l
            .strip_prefix("expect ")
            .or_else(|| (l == "expect").then_some(""))
        {
            parse_expect(n, e.trim(), &mut cmd)?;
            continue;
        }
        if let Some(m) = l.strip_prefix("expected_fail_message ") {
            cmd.fail = Some(Matching::Msg(m.trim().to_string()));
            continue;
        }
        if let Some(m) = l.strip_prefix("expected_fail_regexp ") {
            cmd.fail = Some(Matching::Regex(m.trim().to_string()));
            continue;
        }
        if let (EvalKind::Instant { .. }, Some(f)) = (&cmd.kind, parse_number(l)) {
            if !matches!(cmd.expected, Expected::RangeVector { .. }) {
                cmd.expected = Expected::Scalar(f);
                continue;
            }
        }
        let s = parse_series_line(l).map_err(|e| err(n, e))?;
        if s.start_timestamps {
            // Expected start timestamps: promcore does not store them, nothing to compare.
            continue;
        }
        series.push(s);
    }
    match &mut cmd.expected {
        Expected::RangeVector { series: s, .. } => *s = series,
        Expected::Series(s) => *s = series,
        _ => {}
    }
    Ok(cmd)
}

fn parse_matching(line: usize, s: &str) -> Result<Matching, ScriptError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Matching::Any);
    }
    if let Some(m) = s.strip_prefix("msg:") {
        return Ok(Matching::Msg(m.trim().to_string()));
    }
    if let Some(m) = s.strip_prefix("regex:") {
        return Ok(Matching::Regex(m.trim().to_string()));
    }
    Err(err(line, format!("invalid expectation {s:?}")))
}

fn parse_expect(line: usize, e: &str, cmd: &mut EvalCmd) -> Result<(), ScriptError> {
    let (w, rest) = split_word(e);
    match w {
        "fail" => cmd.fail = Some(parse_matching(line, rest)?),
        "warn" => cmd.warn.push(parse_matching(line, rest)?),
        "info" => cmd.info.push(parse_matching(line, rest)?),
        "no_warn" => cmd.no_warn = true,
        "no_info" => cmd.no_info = true,
        "ordered" => cmd.ordered = true,
        "string" => {
            cmd.expected = Expected::String(
                parse_string_literal(rest.trim())
                    .ok_or_else(|| err(line, format!("invalid string {rest:?}")))?,
            )
        }
        "range" => {
            let words: Vec<&str> = rest.split_whitespace().collect();
            if words.len() != 7 || words[0] != "vector" || words[1] != "from" {
                return Err(err(line, format!("invalid range expectation {e:?}")));
            }
            let d =
                |s: &str| parse_duration(s).ok_or_else(|| err(line, format!("invalid time {s:?}")));
            cmd.expected = Expected::RangeVector {
                start: d(words[2])?,
                end: d(words[4])?,
                step: d(words[6])?,
                series: Vec::new(),
            };
        }
        _ => return Err(err(line, format!("unknown expectation {e:?}"))),
    }
    Ok(())
}

fn parse_string_literal(s: &str) -> Option<String> {
    match promql_parser::parser::parse(s).ok()? {
        promql_parser::parser::Expr::StringLiteral(l) => Some(l.val),
        _ => None,
    }
}

pub use crate::promql::duration_expr::parse_duration;

/// A single number (`1`, `-Inf`, `NaN`, `0x1f`, `1e3`).
fn parse_number(s: &str) -> Option<f64> {
    if s.contains(char::is_whitespace) || s.starts_with('{') {
        return None;
    }
    parse_go_float(s)
}

/// `name{l="v", ...} values...` (or `{__name__="name", ...}`, or `{}`).
pub fn parse_series_line(l: &str) -> Result<LoadSeries, String> {
    let end = descriptor_end(l)?;
    let (mut desc, mut values) = (&l[..end], &l[end..]);
    let mut start_timestamps = values.starts_with("@st");
    if start_timestamps {
        values = &values[3..];
    }
    if let Some(d) = desc.strip_suffix("@st") {
        desc = d;
        start_timestamps = true;
    }
    let labels = parse_labels(desc)?;
    if start_timestamps {
        let mut out = Vec::new();
        for item in values.split_whitespace() {
            expand_duration_item(item, &mut out)?;
        }
        return Ok(LoadSeries {
            labels,
            values: out,
            histograms: false,
            start_timestamps,
        });
    }
    let (values, histograms) = parse_values(values.trim())?;
    Ok(LoadSeries {
        labels,
        values,
        histograms,
        start_timestamps,
    })
}

/// Where the series descriptor ends: after the closing brace (quotes respected), or at the
/// first whitespace when there is no brace.
fn descriptor_end(l: &str) -> Result<usize, String> {
    let b = l.as_bytes();
    let mut i = 0;
    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'{' {
        i += 1;
    }
    if i == b.len() || b[i] != b'{' {
        return Ok(i);
    }
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) => {
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if c == b'"' || c == b'\'' || c == b'`' {
                    quote = Some(c);
                } else if c == b'}' {
                    return Ok(i + 1);
                }
            }
        }
        i += 1;
    }
    Err(format!("unclosed label set in {l:?}"))
}

fn parse_labels(desc: &str) -> Result<Labels, String> {
    let d = desc.trim();
    if d == "{}" {
        return Ok(Labels::empty());
    }
    let expr = promql_parser::parser::parse(d).map_err(|e| format!("{d:?}: {e}"))?;
    let promql_parser::parser::Expr::VectorSelector(vs) = expr else {
        return Err(format!("{d:?} is not a series"));
    };
    let mut labels: Vec<Label> = Vec::new();
    if let Some(n) = vs.name {
        labels.push(Label::new("__name__", n));
    }
    for m in vs.matchers.matchers {
        if !matches!(m.op, promql_parser::label::MatchOp::Equal) {
            return Err(format!("{d:?}: only = matchers describe a series"));
        }
        labels.push(Label::new(m.name, m.value));
    }
    labels.retain(|l| !l.value.is_empty());
    labels.sort();
    labels.dedup_by(|a, b| a.name == b.name);
    Labels::from_sorted_unchecked(labels).map_err(|e| e.to_string())
}

/// The value items of a series line, expanded; and whether it held native histograms.
fn parse_values(s: &str) -> Result<(Vec<Option<f64>>, bool), String> {
    let mut out = Vec::new();
    if s.contains("{{") {
        return Ok((out, true));
    }
    for item in s.split_whitespace() {
        expand_item(item, &mut out)?;
    }
    Ok((out, false))
}

/// One item of a start-timestamp line: `_`, a signed duration (`-30s`, `+1m`, `0`), or the
/// expanding notation over durations (`-30s-1mx2`, `-1mx15`), as ms.
fn expand_duration_item(item: &str, out: &mut Vec<Option<f64>>) -> Result<(), String> {
    let bad = || format!("invalid start timestamp item {item:?}");
    if item == "_" {
        out.push(None);
        return Ok(());
    }
    let signed = |s: &str| -> Option<i64> {
        match s.strip_prefix('+') {
            Some(r) => parse_duration(r),
            None => parse_duration(s),
        }
    };
    let (lhs, times) = match item.rsplit_once('x') {
        Some((l, n)) => (l, n.parse::<usize>().map_err(|_| bad())?),
        None => (item, 0),
    };
    let b = lhs.as_bytes();
    let op = (1..b.len()).find(|&i| b[i] == b'+' || b[i] == b'-');
    let (start, inc) = match op {
        Some(i) => (
            signed(&lhs[..i]).ok_or_else(bad)?,
            signed(&lhs[i..]).ok_or_else(bad)?,
        ),
        None => (signed(lhs).ok_or_else(bad)?, 0),
    };
    for k in 0..=times {
        out.push(Some((start + inc * k as i64) as f64));
    }
    Ok(())
}

fn expand_item(item: &str, out: &mut Vec<Option<f64>>) -> Result<(), String> {
    if item == "_" {
        out.push(None);
        return Ok(());
    }
    if item == "stale" {
        out.push(Some(stale_nan()));
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n: usize = n.parse().map_err(|_| format!("invalid item {item:?}"))?;
        out.extend(std::iter::repeat_n(None, n));
        return Ok(());
    }
    // `axN` before plain numbers: `0x59` is 60 zeros here, not hex.
    let expansion = item.rfind('x').filter(|&xi| {
        xi > 0 && item[xi + 1..].bytes().all(|c| c.is_ascii_digit()) && xi + 1 < item.len()
    });
    let Some(xi) = expansion else {
        return match parse_go_float(item) {
            Some(f) => {
                out.push(Some(f));
                Ok(())
            }
            None => Err(format!("invalid item {item:?}")),
        };
    };
    let times: usize = item[xi + 1..]
        .parse()
        .map_err(|_| format!("invalid item {item:?}"))?;
    let lhs = &item[..xi];
    // The operator between start and increment: not a leading sign, not an exponent's sign.
    let b = lhs.as_bytes();
    let op =
        (1..b.len()).find(|&i| (b[i] == b'+' || b[i] == b'-') && !matches!(b[i - 1], b'e' | b'E'));
    let (start, inc) = match op {
        Some(i) => {
            let a = parse_go_float(&lhs[..i]).ok_or_else(|| format!("invalid item {item:?}"))?;
            let d =
                parse_go_float(&lhs[i + 1..]).ok_or_else(|| format!("invalid item {item:?}"))?;
            (a, if b[i] == b'-' { -d } else { d })
        }
        None => {
            if lhs == "stale" {
                out.extend(std::iter::repeat_n(Some(stale_nan()), times + 1));
                return Ok(());
            }
            (
                parse_go_float(lhs).ok_or_else(|| format!("invalid item {item:?}"))?,
                0.0,
            )
        }
    };
    let mut v = start;
    for _ in 0..=times {
        out.push(Some(v));
        v += inc;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_value_items() {
        let s = parse_series_line(r#"m{a="b"} 0+10x2 _ 5 -1-1x1 stale 1e3x1 _x2"#).unwrap();
        assert_eq!(s.labels.get("a"), Some("b"));
        assert_eq!(s.values.len(), 3 + 1 + 1 + 2 + 1 + 2 + 2);
        assert_eq!(
            &s.values[..5],
            &[Some(0.0), Some(10.0), Some(20.0), None, Some(5.0)]
        );
        assert_eq!(&s.values[5..7], &[Some(-1.0), Some(-2.0)]);
        assert!(shards::value::is_stale_nan(s.values[7].unwrap()));
        assert_eq!(&s.values[8..], &[Some(1000.0), Some(1000.0), None, None]);
    }

    #[test]
    fn parses_eval_commands_and_expectations() {
        let text = "load 5m\n  m 1 2\n\neval instant at 5m m\n  expect warn msg: x (1:1)\n  m 2\n\neval range from 0 to 5m step 5m m\n  m 1 2\n\neval instant at 1m 1\n  1\n";
        let cmds = parse_script(text).unwrap();
        assert_eq!(cmds.len(), 4);
        let Command::Eval(e) = &cmds[1] else { panic!() };
        assert_eq!(e.kind, EvalKind::Instant { at: 300_000 });
        assert_eq!(e.warn, vec![Matching::Msg("x (1:1)".into())]);
        let Command::Eval(e) = &cmds[3] else { panic!() };
        assert_eq!(e.expected, Expected::Scalar(1.0));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("-10s"), Some(-10_000));
    }
}
