//! A rule group at run time: its definition, when it evaluates (Prometheus's alignment: an
//! offset within the interval from a hash of the group, so groups spread over the interval and
//! keep their phase across restarts), and one evaluation of its rules, in order, each seeing
//! what the previous ones wrote. Each rule keeps its health, last error, timings, the series it
//! wrote last time (for staleness markers) and, for alerts, its alerting state.
//!
//! It reaches data only through `RuleStorage`, and hands sendable alerts back to its caller; it
//! never sends anything itself.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::time::Instant;

use shards::labels::Labels;
use shards::value::stale_nan;

use super::alerting::{Alert, AlertingState, Candidate, LabelMap};
use super::file::{GroupDef, RuleDef, RuleKind};
use super::storage::RuleStorage;
use super::template::{Expansion, QuerySample, Template, TemplateData};

/// Most `query` calls one template expansion may make.
const MAX_TEMPLATE_QUERIES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn name(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RuleState {
    pub def: RuleDef,
    pub health: Health,
    pub last_error: String,
    /// Wall-clock ms of the last evaluation's start.
    pub last_eval: Option<i64>,
    pub eval_seconds: f64,
    pub alerts: AlertingState,
    /// Series written by the last evaluation; those missing next time get a staleness marker.
    pub prev_series: HashSet<Labels>,
}

impl RuleState {
    pub fn new(def: RuleDef) -> Self {
        RuleState {
            def,
            health: Health::Unknown,
            last_error: String::new(),
            last_eval: None,
            eval_seconds: 0.0,
            alerts: AlertingState::default(),
            prev_series: HashSet::new(),
        }
    }
}

/// What every template and evaluation of the server shares.
#[derive(Debug, Clone, Default)]
pub struct EvalContext {
    pub external_labels: LabelMap,
    pub external_url: String,
    pub resend_delay_ms: i64,
}

/// An alert to send: the alert, when it ends, and the expression (for `generatorURL`).
#[derive(Debug, Clone)]
pub struct SendableAlert {
    pub alert: Alert,
    pub ends_at: i64,
    pub expr: String,
}

pub struct Group {
    pub def: GroupDef,
    pub interval_ms: i64,
    pub query_offset_ms: i64,
    pub rules: Vec<RefCell<RuleState>>,
    pub last_eval: Cell<Option<i64>>,
    pub eval_seconds: Cell<f64>,
    /// Set when a reload replaced the group: its loop ends.
    pub stopped: Cell<bool>,
    /// Series of rules a reload removed from this group: the next evaluation writes their
    /// staleness markers (Prometheus's `staleSeries`).
    pub stale_series: RefCell<Vec<Labels>>,
}

impl Group {
    pub fn new(def: GroupDef, default_interval_ms: i64, default_offset_ms: i64) -> Group {
        let interval_ms = def
            .interval
            .map_or(default_interval_ms, |d| d.as_millis() as i64)
            .max(1);
        let query_offset_ms = def
            .query_offset
            .map_or(default_offset_ms, |d| d.as_millis() as i64);
        let rules = def
            .rules
            .iter()
            .map(|r| RefCell::new(RuleState::new(r.clone())))
            .collect();
        Group {
            def,
            interval_ms,
            query_offset_ms,
            rules,
            last_eval: Cell::new(None),
            eval_seconds: Cell::new(0.0),
            stopped: Cell::new(false),
            stale_series: RefCell::new(Vec::new()),
        }
    }

    /// The group's identity across reloads: file and name.
    pub fn key(&self) -> (String, String) {
        (self.def.file.clone(), self.def.name.clone())
    }

    /// Where in each interval the group evaluates: a fixed offset from the group's hash.
    /// Prometheus takes the hash modulo the interval in nanoseconds; its sample timestamps
    /// are that offset truncated to milliseconds, and so is this.
    pub fn offset_ms(&self) -> i64 {
        let h = shards::labels::series_hash([
            ("file", self.def.file.as_str()),
            ("name", self.def.name.as_str()),
        ]);
        let interval_ns = self.interval_ms as u64 * 1_000_000;
        (h % interval_ns / 1_000_000) as i64
    }

    /// The first evaluation time strictly after `now_ms`, on the group's grid.
    pub fn next_eval_after(&self, now_ms: i64) -> i64 {
        let offset = self.offset_ms();
        let adjusted = now_ms - offset;
        let base = adjusted - adjusted.rem_euclid(self.interval_ms);
        base + offset + self.interval_ms
    }

    /// Evaluates every rule at `ts` (ms, the grid time; queries run at `ts - query_offset`),
    /// appends what they produce, and returns the alerts due to be sent.
    pub async fn eval<S: RuleStorage>(
        &self,
        ts: i64,
        storage: &S,
        ctx: &EvalContext,
    ) -> Vec<SendableAlert> {
        let started = Instant::now();
        self.last_eval.set(Some(wall_ms()));
        let mut sendable = Vec::new();
        let query_ts = ts - self.query_offset_ms;
        for cell in &self.rules {
            let mut st = cell.borrow().clone();
            let rule_started = Instant::now();
            st.last_eval = Some(wall_ms());
            match eval_rule(&mut st, query_ts, self.def.limit, storage, ctx).await {
                Ok(samples) => {
                    let mut current = HashSet::with_capacity(samples.len());
                    let mut out = Vec::with_capacity(samples.len());
                    let mut bad = None;
                    for (labels, v) in samples {
                        match Labels::from_pairs(labels) {
                            Ok(l) => {
                                current.insert(l.clone());
                                out.push((l, ts, v));
                            }
                            Err(e) => bad = Some(e.to_string()),
                        }
                    }
                    for gone in st.prev_series.difference(&current) {
                        out.push((gone.clone(), ts, stale_nan()));
                    }
                    st.prev_series = current;
                    let appended = storage.append(out).await;
                    match bad.map_or(appended, Err) {
                        Ok(()) => {
                            st.health = Health::Ok;
                            st.last_error.clear();
                        }
                        Err(e) => {
                            st.health = Health::Err;
                            st.last_error = e;
                        }
                    }
                }
                Err(e) => {
                    st.health = Health::Err;
                    st.last_error = e;
                }
            }
            if let RuleKind::Alerting { .. } = st.def.kind {
                for (alert, ends_at) in
                    st.alerts
                        .take_sendable(ts, ctx.resend_delay_ms, self.interval_ms)
                {
                    sendable.push(SendableAlert {
                        alert,
                        ends_at,
                        expr: st.def.expr.clone(),
                    });
                }
            }
            st.eval_seconds = rule_started.elapsed().as_secs_f64();
            *cell.borrow_mut() = st;
        }
        let stale = std::mem::take(&mut *self.stale_series.borrow_mut());
        if !stale.is_empty() {
            // A rule that took over a series has written it at `ts` already: its marker is
            // refused as a duplicate, as in Prometheus.
            let markers = stale.into_iter().map(|l| (l, ts, stale_nan())).collect();
            let _ = storage.append(markers).await;
        }
        self.eval_seconds.set(started.elapsed().as_secs_f64());
        sendable
    }

    /// Every series the group's rules wrote last time, and those it still had to mark.
    pub fn all_series(&self) -> Vec<Labels> {
        let mut all = self.stale_series.borrow().clone();
        for cell in &self.rules {
            all.extend(cell.borrow().prev_series.iter().cloned());
        }
        all
    }

    /// Prometheus's `RestoreForState`: pending alerts found by the first evaluation take the
    /// `activeAt` their `ALERTS_FOR_STATE` series had before the restart (shifted by the time
    /// the server was down), so a restart does not reset `for`.
    pub async fn restore_for_state<S: RuleStorage>(
        &self,
        now_ms: i64,
        outage_tolerance_ms: i64,
        grace_period_ms: i64,
        storage: &S,
    ) {
        for cell in &self.rules {
            let mut st = cell.borrow().clone();
            let RuleKind::Alerting { for_, .. } = &st.def.kind else {
                continue;
            };
            let hold = for_.as_millis() as i64;
            if hold < grace_period_ms {
                st.alerts.restored = true;
                *cell.borrow_mut() = st;
                continue;
            }
            let keys: Vec<LabelMap> = st.alerts.active.keys().cloned().collect();
            for key in keys {
                let mut series = key.clone();
                series.insert("__name__".into(), "ALERTS_FOR_STATE".into());
                let found = storage
                    .last_sample(&series, now_ms - outage_tolerance_ms, now_ms)
                    .await;
                let Ok(Some((t, v))) = found else { continue };
                if shards::value::is_stale_nan(v) {
                    continue;
                }
                let down_at = t / 1000 * 1000;
                let mut active_at = (v as i64) * 1000;
                let remaining = hold - (down_at - active_at);
                if remaining <= 0 {
                } else if remaining < grace_period_ms {
                    active_at = now_ms + grace_period_ms - hold;
                } else {
                    active_at += now_ms - down_at;
                }
                if let Some(a) = st.alerts.active.get_mut(&key) {
                    a.active_at = active_at;
                }
            }
            st.alerts.restored = true;
            *cell.borrow_mut() = st;
        }
    }
}

pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One rule's evaluation: the samples it writes (labels with `__name__`, value).
async fn eval_rule<S: RuleStorage>(
    st: &mut RuleState,
    ts: i64,
    limit: u64,
    storage: &S,
    ctx: &EvalContext,
) -> Result<Vec<(LabelMap, f64)>, String> {
    let vector = storage.query(&st.def.expr, ts).await?;
    match &st.def.kind {
        RuleKind::Recording => {
            let mut out = Vec::with_capacity(vector.len());
            let mut seen = HashSet::with_capacity(vector.len());
            for s in vector {
                let mut labels: LabelMap = s
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                labels.insert("__name__".into(), st.def.name.clone());
                for (k, v) in &st.def.labels {
                    if v.is_empty() {
                        labels.remove(k);
                    } else {
                        labels.insert(k.clone(), v.clone());
                    }
                }
                if !seen.insert(labels.clone()) {
                    return Err(
                        "vector contains metrics with the same labelset after applying rule labels"
                            .into(),
                    );
                }
                out.push((labels, s.f));
            }
            if limit > 0 && out.len() as u64 > limit {
                return Err(format!(
                    "exceeded limit of {limit} with {} series",
                    out.len()
                ));
            }
            Ok(out)
        }
        RuleKind::Alerting {
            for_,
            keep_firing_for,
            label_templates,
            annotation_templates,
        } => {
            let mut found = Vec::with_capacity(vector.len());
            let mut seen = HashSet::with_capacity(vector.len());
            for s in vector {
                // Templates see the sample's labels with `__name__` (when the expression kept
                // it), as Prometheus's do; the alert itself never carries it.
                let template_labels: LabelMap = s
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                let mut sample_labels = template_labels.clone();
                sample_labels.remove("__name__");
                let mut data = TemplateData {
                    labels: template_labels,
                    value: s.f,
                    external_labels: ctx.external_labels.clone(),
                    external_url: ctx.external_url.clone(),
                    queries: Default::default(),
                };
                let mut labels = sample_labels;
                for (k, t) in label_templates {
                    let v = expand(t, &mut data, ts, storage).await;
                    if v.is_empty() {
                        labels.remove(k);
                    } else {
                        labels.insert(k.clone(), v);
                    }
                }
                labels.insert("alertname".into(), st.def.name.clone());
                let mut annotations = LabelMap::new();
                for (k, t) in annotation_templates {
                    annotations.insert(k.clone(), expand(t, &mut data, ts, storage).await);
                }
                if !seen.insert(labels.clone()) {
                    return Err("vector contains metrics with the same labelset after applying alert labels".into());
                }
                found.push(Candidate {
                    labels,
                    annotations,
                    value: s.f,
                });
            }
            let out = st.alerts.step(
                found,
                ts,
                for_.as_millis() as i64,
                keep_firing_for.as_millis() as i64,
            );
            let active = st
                .alerts
                .active
                .values()
                .filter(|a| a.state != super::alerting::AlertState::Inactive)
                .count();
            if limit > 0 && active as u64 > limit {
                st.alerts.active.clear();
                return Err(format!("exceeded limit of {limit} with {active} alerts"));
            }
            Ok(out)
        }
    }
}

/// Expands a template, running the queries it asks for; an error becomes the text, as in
/// Prometheus (`<error expanding template: ...>`).
async fn expand<S: RuleStorage>(
    t: &Template,
    data: &mut TemplateData,
    ts: i64,
    storage: &S,
) -> String {
    for _ in 0..=MAX_TEMPLATE_QUERIES {
        match t.expand(data) {
            Ok(Expansion::Done(s)) => return s,
            Ok(Expansion::NeedQuery(q)) => match storage.query(&q, ts).await {
                Ok(v) => {
                    let samples = v
                        .into_iter()
                        .map(|s| QuerySample {
                            labels: s
                                .labels
                                .iter()
                                .map(|l| (l.name.clone(), l.value.clone()))
                                .collect(),
                            value: s.f,
                        })
                        .collect();
                    data.queries.insert(q, samples);
                }
                Err(e) => {
                    return format!("<error expanding template: error executing query {q:?}: {e}>")
                }
            },
            Err(e) => return format!("<error expanding template: {e}>"),
        }
    }
    "<error expanding template: too many queries>".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::duration::Duration;

    fn group(file: &str, name: &str, interval_s: u64) -> Group {
        let def = GroupDef {
            file: file.into(),
            name: name.into(),
            interval: Some(Duration::from_secs(interval_s)),
            query_offset: None,
            limit: 0,
            labels: Default::default(),
            rules: Vec::new(),
        };
        Group::new(def, 60_000, 0)
    }

    /// Offsets seen in Prometheus 2.42: the timestamps of the recording rules' samples, for
    /// these groups in a file at this path, modulo the interval.
    #[test]
    fn evaluation_offsets_are_prometheus_s() {
        let file = "/tmp/h1/align/rules.yml";
        assert_eq!(group(file, "aligned", 10).offset_ms(), 395);
        assert_eq!(group(file, "other-group", 7).offset_ms(), 3243);
        let g = group(file, "aligned", 10);
        assert_eq!(g.next_eval_after(1_796_528_840_395), 1_796_528_850_395);
        assert_eq!(g.next_eval_after(1_796_528_840_394), 1_796_528_840_395);
    }
}
