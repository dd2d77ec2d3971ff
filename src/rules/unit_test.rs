//! `promcore test rules FILE...`: promtool's rule unit tests. Each test loads its input
//! series (promtool's expanding notation, `1+1x10`, `_`, `stale`) into memory, evaluates the
//! rule files' groups every `evaluation_interval` from 0 to the last time a test case looks at,
//! writing recording-rule and ALERTS output back as the server would, and compares the firing
//! alerts (`alert_rule_test`) and expression results (`promql_expr_test`) with what the file
//! expects. Output and exit status follow promtool's (`  SUCCESS`, `  FAILED:` with exp/got).
//!
//! Everything runs in memory with the same group evaluation as the server (`group`); no
//! server, no shards, no network.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use serde::Deserialize;
use shards::labels::Labels;

use crate::config::duration::Duration;
use crate::config::field_path;
use crate::promql::engine::{Engine, EngineOptions};
use crate::promql::source::{MemorySource, RawSeries};
use crate::promql::value::FPoint;
use crate::promqltest::runner::almost_equal;
use crate::promqltest::script::parse_series_line;

use super::alerting::{AlertState, LabelMap};
use super::file::{expand_globs, load_files};
use super::group::{EvalContext, Group};
use super::storage::{engine_query, newest_sample, RuleStorage};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<Duration>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    interval: Option<Duration>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    #[serde(default)]
    values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    eval_time: Duration,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    eval_time: Duration,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    value: f64,
}

/// Series in memory, written by the test's input and by the rules.
struct MemoryRuleStorage {
    series: RefCell<HashMap<Labels, Vec<FPoint>>>,
    engine: Engine,
}

impl MemoryRuleStorage {
    fn source(&self) -> MemorySource {
        MemorySource::new(
            self.series
                .borrow()
                .iter()
                .map(|(labels, points)| RawSeries {
                    labels: labels.clone(),
                    points: points.clone(),
                    start_timestamps: Vec::new(),
                })
                .collect(),
        )
    }
}

impl RuleStorage for MemoryRuleStorage {
    async fn query(&self, expr: &str, t: i64) -> Result<Vec<crate::promql::value::Sample>, String> {
        engine_query(&self.engine, &self.source(), expr, t).await
    }

    async fn last_sample(
        &self,
        labels: &LabelMap,
        mint: i64,
        maxt: i64,
    ) -> Result<Option<(i64, f64)>, String> {
        newest_sample(&self.source(), labels, mint, maxt).await
    }

    async fn append(&self, samples: Vec<(Labels, i64, f64)>) -> Result<(), String> {
        let mut s = self.series.borrow_mut();
        for (l, t, v) in samples {
            let points = s.entry(l).or_default();
            if points.last().is_none_or(|p| p.t < t) {
                points.push(FPoint { t, f: v });
            }
        }
        Ok(())
    }
}

/// Runs the unit test files; returns the exit status (1 when any test failed).
pub fn test_rules(files: &[String], out: &mut impl Write) -> u8 {
    if files.is_empty() {
        let _ = writeln!(out, "usage: promcore test rules FILE...");
        return 2;
    }
    let mut failed = false;
    for f in files {
        let _ = writeln!(out, "Unit Testing:  {f}");
        match futures_lite::future::block_on(run_file(Path::new(f))) {
            Ok(errors) if errors.is_empty() => {
                let _ = writeln!(out, "  SUCCESS");
            }
            Ok(errors) => {
                failed = true;
                let _ = writeln!(out, "  FAILED:");
                for e in errors {
                    let _ = writeln!(out, "{e}");
                }
            }
            Err(e) => {
                failed = true;
                let _ = writeln!(out, "  FAILED:\n    {e}");
            }
        }
        let _ = writeln!(out);
    }
    u8::from(failed)
}

/// The failures of every test of the file; `Err` when the file itself is unusable.
async fn run_file(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: TestFile = field_path::from_yaml(&text).map_err(|e| e.to_string())?;
    let base = path.parent().unwrap_or(Path::new(""));
    let rule_files = expand_globs(base, &file.rule_files).map_err(|e| e.to_string())?;
    let mut defs = load_files(&rule_files).map_err(|e| e.to_string())?;
    if !file.group_eval_order.is_empty() {
        defs.sort_by_key(|g| {
            file.group_eval_order
                .iter()
                .position(|n| *n == g.name)
                .unwrap_or(usize::MAX)
        });
    }
    let eval_interval = file
        .evaluation_interval
        .unwrap_or(Duration::from_secs(60))
        .as_millis() as i64;
    let mut errors = Vec::new();
    for t in &file.tests {
        let groups: Vec<Group> = defs
            .iter()
            .map(|d| Group::new(d.clone(), eval_interval, 0))
            .collect();
        errors.extend(run_test(t, &groups, eval_interval).await?);
    }
    Ok(errors)
}

fn fmt_duration(ms: i64) -> String {
    Duration::from_millis(ms.max(0) as u64).to_string()
}

async fn run_test(
    t: &TestGroup,
    groups: &[Group],
    eval_interval: i64,
) -> Result<Vec<String>, String> {
    let interval = t.interval.unwrap_or(Duration::from_secs(60)).as_millis() as i64;
    let mut series: HashMap<Labels, Vec<FPoint>> = HashMap::new();
    for s in &t.input_series {
        let parsed = parse_series_line(&format!("{} {}", s.series, s.values))
            .map_err(|e| format!("input series {:?}: {e}", s.series))?;
        series
            .entry(parsed.labels.clone())
            .or_default()
            .extend(parsed.points(0, interval));
    }
    let storage = MemoryRuleStorage {
        series: RefCell::new(series),
        engine: Engine::new(EngineOptions {
            default_subquery_step: eval_interval,
            ..EngineOptions::default()
        }),
    };
    let ctx = EvalContext {
        external_labels: t.external_labels.clone(),
        external_url: t.external_url.clone(),
        resend_delay_ms: 60_000,
    };
    for g in groups {
        for cell in &g.rules {
            cell.borrow_mut().alerts.restored = true;
        }
    }
    let last = t
        .alert_rule_test
        .iter()
        .map(|a| a.eval_time.as_millis() as i64)
        .chain(
            t.promql_expr_test
                .iter()
                .map(|e| e.eval_time.as_millis() as i64),
        )
        .max()
        .unwrap_or(0);
    // Firing alerts by (eval time, alertname), taken when evaluation reaches that time.
    let mut wanted: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for a in &t.alert_rule_test {
        wanted
            .entry(a.eval_time.as_millis() as i64)
            .or_default()
            .push(&a.alertname);
    }
    let mut got: HashMap<(i64, String), Vec<(LabelMap, LabelMap)>> = HashMap::new();
    let mut ts = 0;
    while ts <= last {
        for g in groups {
            if ts % g.interval_ms == 0 {
                g.eval(ts, &storage, &ctx).await;
            }
        }
        // Alerts asked about at a time between two evaluations are those of the one before.
        let until = ts + eval_interval;
        for (&at, names) in wanted.range(ts..until) {
            for name in names {
                let mut firing = Vec::new();
                for g in groups {
                    for cell in &g.rules {
                        let st = cell.borrow();
                        if st.def.name != *name || !st.def.is_alert() {
                            continue;
                        }
                        for a in st.alerts.active.values() {
                            if a.state == AlertState::Firing {
                                firing.push((a.labels.clone(), a.annotations.clone()));
                            }
                        }
                    }
                }
                firing.sort();
                got.insert((at, name.to_string()), firing);
            }
        }
        ts += eval_interval;
    }
    let mut errors = Vec::new();
    let prefix = if t.name.is_empty() {
        String::new()
    } else {
        format!("    name: {},\n", t.name)
    };
    for a in &t.alert_rule_test {
        let at = a.eval_time.as_millis() as i64;
        let mut exp: Vec<(LabelMap, LabelMap)> = a
            .exp_alerts
            .iter()
            .map(|e| {
                let mut l = e.exp_labels.clone();
                l.insert("alertname".into(), a.alertname.clone());
                (l, e.exp_annotations.clone())
            })
            .collect();
        exp.sort();
        let g = got
            .get(&(at, a.alertname.clone()))
            .cloned()
            .unwrap_or_default();
        if g != exp {
            errors.push(format!(
                "{prefix}    alertname: {}, time: {}, \n        exp:{},\n        got:{}",
                a.alertname,
                fmt_duration(at),
                show_alerts(&exp),
                show_alerts(&g)
            ));
        }
    }
    for e in &t.promql_expr_test {
        let at = e.eval_time.as_millis() as i64;
        let result = match storage.query(&e.expr, at).await {
            Ok(r) => r,
            Err(err) => {
                errors.push(format!(
                    "{prefix}    expr: {:?}, time: {}, err: {err}",
                    e.expr,
                    fmt_duration(at)
                ));
                continue;
            }
        };
        let mut got: Vec<(Labels, f64)> = result.into_iter().map(|s| (s.labels, s.f)).collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let mut exp = Vec::new();
        for s in &e.exp_samples {
            let labels = if s.labels.trim().is_empty() {
                Labels::empty()
            } else {
                parse_series_line(&s.labels)
                    .map_err(|err| format!("expected labels {:?}: {err}", s.labels))?
                    .labels
            };
            exp.push((labels, s.value));
        }
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        let same = got.len() == exp.len()
            && got
                .iter()
                .zip(&exp)
                .all(|(g, x)| g.0 == x.0 && almost_equal(g.1, x.1));
        if !same {
            errors.push(format!(
                "{prefix}    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
                e.expr,
                fmt_duration(at),
                show_samples(&exp),
                show_samples(&got)
            ));
        }
    }
    Ok(errors)
}

fn show_map(m: &LabelMap) -> String {
    let inner: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn show_alerts(a: &[(LabelMap, LabelMap)]) -> String {
    if a.is_empty() {
        return "[]".into();
    }
    let items: Vec<String> = a
        .iter()
        .enumerate()
        .map(|(i, (l, an))| {
            format!(
                "\n           {i}:\n              Labels:{}\n              Annotations:{}",
                show_map(l),
                show_map(an)
            )
        })
        .collect();
    items.join("")
}

fn show_samples(s: &[(Labels, f64)]) -> String {
    let items: Vec<String> = s
        .iter()
        .map(|(l, v)| {
            let m: LabelMap = l
                .iter()
                .map(|x| (x.name.clone(), x.value.clone()))
                .collect();
            format!(
                "{{Labels:{} Value:{}}}",
                show_map(&m),
                super::go_format::format_value(*v)
            )
        })
        .collect();
    format!("[{}]", items.join(" "))
}
