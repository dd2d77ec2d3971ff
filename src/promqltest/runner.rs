//! Runs a parsed test file against an engine and a storage, and judges each eval the way
//! Prometheus's `promqltest` does: results compared with a relative tolerance of 1e-6, label
//! sets exactly, order only where the file says so, errors and annotations by text.
//!
//! Evals whose expected results hold native histograms are counted as skipped: promcore
//! does not store native histograms yet.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_lite::FutureExt;

use regex::Regex;
use shards::labels::Labels;
use shards::value::is_stale_nan;

use super::script::{parse_script, Command, EvalCmd, EvalKind, Expected, Matching};
use crate::promql::engine::{Engine, QueryParams, QueryResult};
use crate::promql::source::SeriesSource;
use crate::promql::value::{FPoint, Value};

/// Storage the runner loads test data into.
pub trait TestStorage {
    type Source: SeriesSource;
    /// Appends series (each with points oldest first, and their start timestamps aligned
    /// with them, or none).
    fn load(&mut self, series: Vec<LoadedSeries>) -> impl Future<Output = Result<(), String>>;
    /// Removes all data.
    fn clear(&mut self) -> impl Future<Output = Result<(), String>>;
    fn source(&self) -> &Self::Source;
}

/// A series to load: labels, points, and each point's start timestamp (ms, 0 = unknown),
/// empty when the file gives none.
pub type LoadedSeries = (Labels, Vec<FPoint>, Vec<i64>);

/// What happened to one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileReport {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
    /// One text per failed eval: line, expression, expected vs got.
    pub failures: Vec<String>,
}

/// Each file's outcome by name: its report, or why it could not run.
pub type FileResults = Vec<(String, Result<FileReport, String>)>;

/// Runs every command of `text`.
/// With a `reference` engine every eval is also run on it, and an eval whose two answers are
/// not identical (values bit for bit, labels, order, errors, annotations) fails.
pub async fn run_script<S: TestStorage>(
    text: &str,
    storage: &mut S,
    engine: &Engine,
    reference: Option<&Engine>,
) -> Result<FileReport, String> {
    let cmds = parse_script(text).map_err(|e| e.to_string())?;
    let mut report = FileReport::default();
    // Series of native histograms the file loaded (and this runner did not): evals that
    // select them are native-histogram evals, counted as skipped.
    let mut histograms: Vec<Labels> = Vec::new();
    storage.clear().await?;
    let trace = std::env::var_os("PROMQLTEST_TRACE").is_some();
    for cmd in cmds {
        if trace {
            eprintln!("promqltest: {cmd:?}");
        }
        match cmd {
            Command::Load {
                line,
                interval,
                series,
                nhcb,
            } => {
                for s in &series {
                    if s.histograms {
                        histograms.push(s.labels.clone());
                    }
                    if nhcb {
                        if let Some(h) = nhcb_labels(&s.labels) {
                            histograms.push(h);
                        }
                    }
                }
                // A series given twice in one block: the last line wins, as upstream.
                // Start timestamps by series, relative to each sample's time.
                let starts: HashMap<Labels, Vec<Option<f64>>> = series
                    .iter()
                    .filter(|s| s.start_timestamps)
                    .map(|s| (s.labels.clone(), s.values.clone()))
                    .collect();
                let mut last: HashMap<Labels, usize> = HashMap::new();
                for (i, s) in series.iter().enumerate() {
                    if !s.start_timestamps {
                        last.insert(s.labels.clone(), i);
                    }
                }
                let data = series
                    .into_iter()
                    .enumerate()
                    .filter(|(i, s)| last.get(&s.labels) == Some(i))
                    .map(|(_, s)| s)
                    .filter(|s| !s.histograms)
                    .map(|s| {
                        let p = s.points(0, interval);
                        let sts = match starts.get(&s.labels) {
                            Some(rel) => s
                                .values
                                .iter()
                                .enumerate()
                                .filter(|(_, v)| v.is_some())
                                .map(|(k, _)| match rel.get(k).copied().flatten() {
                                    Some(d) => k as i64 * interval + d as i64,
                                    None => 0,
                                })
                                .collect(),
                            None => Vec::new(),
                        };
                        (s.labels, p, sts)
                    })
                    .collect();
                storage
                    .load(data)
                    .await
                    .map_err(|e| format!("load at line {line}: {e}"))?;
            }
            Command::Clear => {
                histograms.clear();
                storage.clear().await?
            }
            Command::Eval(e) => {
                if e.uses_histograms() || selects_any(&e.expr, &histograms) {
                    report.skip += 1;
                    continue;
                }
                // A panic in the engine fails this eval, not the whole run.
                let outcome = AssertUnwindSafe(run_eval(&e, storage.source(), engine, reference))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|p| Err(format!("panic: {}", panic_text(&p))));
                match outcome {
                    Ok(()) => report.pass += 1,
                    Err(why) => {
                        report.fail += 1;
                        report
                            .failures
                            .push(format!("line {}: {}\n    {}", e.line, e.expr, why));
                    }
                }
            }
        }
    }
    Ok(report)
}

/// The native histogram (custom buckets) series that `load_with_nhcb` makes of a classic
/// `_bucket` series: the base name, without `le`.
fn nhcb_labels(l: &Labels) -> Option<Labels> {
    let name = l.get("__name__")?.strip_suffix("_bucket")?;
    l.get("le")?;
    let mut b = crate::promql::labelset::LabelsBuilder::new(l);
    b.del("le");
    b.set("__name__", name);
    Some(b.build())
}

/// Whether any selector of `expr` selects one of `series`.
fn selects_any(expr: &str, series: &[Labels]) -> bool {
    if series.is_empty() {
        return false;
    }
    let Ok(parsed) = crate::promql::engine::parse(expr) else {
        // Syntax the parser lacks (the native-histogram trim operators `</`, `>/`): judge by
        // the metric names the text mentions.
        return series.iter().any(|s| {
            s.get("__name__").is_some_and(|n| {
                expr.match_indices(n).any(|(i, _)| {
                    let before = expr[..i].chars().next_back();
                    let after = expr[i + n.len()..].chars().next();
                    let word = |c: Option<char>| {
                        c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                    };
                    !word(before) && !word(after)
                })
            })
        });
    };
    let plan = crate::promql::eval::prefetch::Plan {
        start: 0,
        end: 0,
        lookback: 1,
    };
    let Ok(requests) = crate::promql::eval::prefetch::collect(&parsed, &plan) else {
        return false;
    };
    requests.iter().any(|r| {
        series.iter().any(|s| {
            r.matchers
                .iter()
                .all(|m| m.matches(s.get(&m.name).unwrap_or("")))
        })
    })
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

async fn query<S: SeriesSource>(
    e: &EvalCmd,
    source: &S,
    engine: &Engine,
) -> Result<QueryResult, crate::promql::QueryError> {
    let params = QueryParams::default();
    match e.kind {
        EvalKind::Instant { at } => engine.instant_query(source, &e.expr, at, &params).await,
        EvalKind::Range { start, end, step } => {
            engine
                .range_query(source, &e.expr, start, end, step, &params)
                .await
        }
    }
}

async fn run_eval<S: SeriesSource>(
    e: &EvalCmd,
    source: &S,
    engine: &Engine,
    reference: Option<&Engine>,
) -> Result<(), String> {
    let res = query(e, source, engine).await;
    if let Some(reference) = reference {
        let want = query(e, source, reference).await;
        if !super::identical::identical(&res, &want) {
            return Err(format!(
                "differs from the reference evaluation: got {res:?}, reference {want:?}"
            ));
        }
    }
    let res = match (res, &e.fail) {
        (Err(err), Some(m)) => {
            let text = err.to_string();
            return if matches_text(m, &text)? {
                Ok(())
            } else {
                Err(format!("expected error {m:?}, got {text:?}"))
            };
        }
        (Err(err), None) => return Err(format!("unexpected error: {err}")),
        (Ok(r), Some(m)) => {
            return Err(format!(
                "expected error {m:?}, got result {}",
                show_value(&r.value)
            ))
        }
        (Ok(r), None) => r,
    };
    check_annotations(e, &res)?;
    check_result(e, &res.value)
}

fn matches_text(m: &Matching, text: &str) -> Result<bool, String> {
    Ok(match m {
        Matching::Any => true,
        Matching::Msg(s) => s == text,
        Matching::Regex(r) => Regex::new(r)
            .map_err(|e| format!("bad regex {r:?}: {e}"))?
            .is_match(text),
    })
}

fn check_kind(
    kind: &str,
    expect: &[Matching],
    none: bool,
    got: &[String],
    strict_when_unexpected: bool,
) -> Result<(), String> {
    if none && !got.is_empty() {
        return Err(format!("expected no {kind} annotations, got {got:?}"));
    }
    if expect.is_empty() {
        if strict_when_unexpected && !got.is_empty() {
            return Err(format!("unexpected {kind} annotations {got:?}"));
        }
        return Ok(());
    }
    if got.is_empty() {
        return Err(format!("expected {kind} annotations, got none"));
    }
    for m in expect {
        let mut found = false;
        for g in got {
            if matches_text(m, g)? {
                found = true;
            }
        }
        if !found {
            return Err(format!("expected {kind} {m:?}, got {got:?}"));
        }
    }
    if expect.iter().any(|m| !matches!(m, Matching::Any)) {
        for g in got {
            let mut found = false;
            for m in expect {
                if !matches!(m, Matching::Any) && matches_text(m, g)? {
                    found = true;
                }
            }
            if !found {
                return Err(format!("unexpected {kind} annotation {g:?}"));
            }
        }
    }
    Ok(())
}

fn check_annotations(e: &EvalCmd, r: &QueryResult) -> Result<(), String> {
    check_kind("warn", &e.warn, e.no_warn, &r.annotations.warnings, true)?;
    check_kind("info", &e.info, e.no_info, &r.annotations.infos, false)
}

/// Prometheus's `almost.Equal` with epsilon 1e-6; any NaN equals any NaN, but a staleness
/// marker only another one.
pub fn almost_equal(a: f64, b: f64) -> bool {
    if is_stale_nan(a) || is_stale_nan(b) {
        return is_stale_nan(a) && is_stale_nan(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    const EPS: f64 = 1e-6;
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < EPS * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < EPS
}

fn check_result(e: &EvalCmd, v: &Value) -> Result<(), String> {
    match (&e.kind, &e.expected, v) {
        (_, Expected::Scalar(want), Value::Scalar { f, .. }) => {
            if almost_equal(*want, *f) {
                Ok(())
            } else {
                Err(format!("expected scalar {want}, got {f}"))
            }
        }
        (_, Expected::String(want), Value::String { s, .. }) => {
            if want == s {
                Ok(())
            } else {
                Err(format!("expected string {want:?}, got {s:?}"))
            }
        }
        (EvalKind::Instant { .. }, Expected::Series(want), Value::Vector(got)) => {
            let got: Vec<(Labels, Vec<FPoint>)> = got
                .iter()
                .map(|s| (s.labels.clone(), vec![FPoint { t: 0, f: s.f }]))
                .collect();
            let want: Vec<(Labels, Vec<FPoint>)> = want
                .iter()
                .map(|s| (s.labels.clone(), s.points(0, 0)))
                .collect();
            compare_series(&want, &got, e.ordered)
        }
        (EvalKind::Instant { .. }, Expected::Series(want), Value::Scalar { f, .. })
            if want.is_empty() =>
        {
            Err(format!("expected empty vector, got scalar {f}"))
        }
        (
            EvalKind::Instant { .. },
            Expected::RangeVector {
                start,
                step,
                series,
                ..
            },
            Value::Matrix(got),
        ) => {
            let want: Vec<(Labels, Vec<FPoint>)> = series
                .iter()
                .map(|s| (s.labels.clone(), s.points(*start, *step)))
                .collect();
            let got: Vec<(Labels, Vec<FPoint>)> = got
                .iter()
                .map(|s| (s.labels.clone(), s.points.clone()))
                .collect();
            compare_series(&want, &got, false)
        }
        (EvalKind::Range { start, step, .. }, Expected::Series(want), Value::Matrix(got)) => {
            let want: Vec<(Labels, Vec<FPoint>)> = want
                .iter()
                .map(|s| (s.labels.clone(), s.points(*start, *step)))
                .collect();
            let got: Vec<(Labels, Vec<FPoint>)> = got
                .iter()
                .map(|s| (s.labels.clone(), s.points.clone()))
                .collect();
            compare_series(&want, &got, false)
        }
        (_, want, got) => Err(format!(
            "expected {}, got {}",
            show_expected(want),
            show_value(got)
        )),
    }
}

fn compare_series(
    want: &[(Labels, Vec<FPoint>)],
    got: &[(Labels, Vec<FPoint>)],
    ordered: bool,
) -> Result<(), String> {
    let mismatch = || {
        format!(
            "expected {} series:\n{}\n  got {} series:\n{}",
            want.len(),
            show_series(want),
            got.len(),
            show_series(got)
        )
    };
    if want.len() != got.len() {
        return Err(mismatch());
    }
    let index: HashMap<&Labels, usize> = got.iter().enumerate().map(|(i, s)| (&s.0, i)).collect();
    for (wi, (labels, points)) in want.iter().enumerate() {
        let Some(&gi) = index.get(labels) else {
            return Err(mismatch());
        };
        if ordered && gi != wi {
            return Err(format!("order differs: {}", mismatch()));
        }
        let gp = &got[gi].1;
        if gp.len() != points.len()
            || gp
                .iter()
                .zip(points)
                .any(|(g, w)| g.t != w.t || !almost_equal(w.f, g.f))
        {
            return Err(mismatch());
        }
    }
    Ok(())
}

fn show_series(s: &[(Labels, Vec<FPoint>)]) -> String {
    s.iter()
        .take(10)
        .map(|(l, p)| {
            let pts: Vec<String> = p
                .iter()
                .take(12)
                .map(|p| format!("{}@{}", p.f, p.t))
                .collect();
            format!(
                "    {} {}",
                crate::promql::labelset::labels_string(l),
                pts.join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn show_expected(e: &Expected) -> String {
    match e {
        Expected::Scalar(f) => format!("scalar {f}"),
        Expected::String(s) => format!("string {s:?}"),
        Expected::Series(s) => format!("{} series", s.len()),
        Expected::RangeVector { series, .. } => format!("range vector of {} series", series.len()),
    }
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Scalar { f, .. } => format!("scalar {f}"),
        Value::String { s, .. } => format!("string {s:?}"),
        Value::Vector(v) => format!(
            "vector of {}: {}",
            v.len(),
            v.iter()
                .take(5)
                .map(|s| format!(
                    "{} {}",
                    crate::promql::labelset::labels_string(&s.labels),
                    s.f
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Matrix(m) => format!("matrix of {} series", m.len()),
    }
}

/// An in-memory storage, for unit tests and runs without shards.
#[derive(Default)]
pub struct MemoryStorage {
    source: crate::promql::source::MemorySource,
}

impl TestStorage for MemoryStorage {
    type Source = crate::promql::source::MemorySource;

    async fn load(&mut self, series: Vec<LoadedSeries>) -> Result<(), String> {
        // Points paired with their start timestamps (0 = unknown) while series are merged.
        let mut all: HashMap<Labels, Vec<(FPoint, i64)>> = self
            .source
            .series
            .drain(..)
            .map(|s| {
                let sts = s.start_timestamps;
                let pairs = s
                    .points
                    .into_iter()
                    .enumerate()
                    .map(|(k, p)| (p, sts.get(k).copied().unwrap_or(0)))
                    .collect();
                (s.labels, pairs)
            })
            .collect();
        for (l, p, sts) in series {
            let e = all.entry(l).or_default();
            e.extend(
                p.into_iter()
                    .enumerate()
                    .map(|(k, p)| (p, sts.get(k).copied().unwrap_or(0))),
            );
            e.sort_by_key(|(p, _)| p.t);
            e.dedup_by_key(|(p, _)| p.t);
        }
        self.source = crate::promql::source::MemorySource::new(
            all.into_iter()
                .map(|(labels, pairs)| {
                    let has_starts = pairs.iter().any(|(_, st)| *st != 0);
                    let (points, sts): (Vec<FPoint>, Vec<i64>) = pairs.into_iter().unzip();
                    crate::promql::source::RawSeries {
                        labels,
                        points,
                        start_timestamps: if has_starts { sts } else { Vec::new() },
                    }
                })
                .collect(),
        );
        Ok(())
    }

    async fn clear(&mut self) -> Result<(), String> {
        self.source.series.clear();
        Ok(())
    }

    fn source(&self) -> &Self::Source {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn almost_equal_is_relative() {
        assert!(almost_equal(1.0, 1.0 + 1e-9));
        assert!(!almost_equal(1.0, 1.001));
        assert!(almost_equal(f64::NAN, f64::NAN));
        assert!(!almost_equal(shards::value::stale_nan(), f64::NAN));
    }
}
