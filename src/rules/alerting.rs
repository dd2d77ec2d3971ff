//! An alerting rule's state: its active alerts (pending, firing, or resolved and kept for a
//! while so Alertmanager hears about the resolution), moved one evaluation at a time exactly
//! as Prometheus's `AlertingRule.Eval` moves them, with `for` and `keep_firing_for`, and the
//! `ALERTS` / `ALERTS_FOR_STATE` samples each evaluation writes.
//!
//! Pure: it is given the evaluation's expanded alerts and a timestamp; it never queries,
//! appends, expands templates or sends anything.

use std::collections::BTreeMap;

/// How long a resolved alert is still reported (to Alertmanager) before it is forgotten.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

pub type LabelMap = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn name(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Sample labels without `__name__`, the rule's labels, and `alertname`.
    pub labels: LabelMap,
    pub annotations: LabelMap,
    pub state: AlertState,
    pub value: f64,
    /// Milliseconds since the epoch.
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    pub valid_until: i64,
    pub keep_firing_since: Option<i64>,
}

impl Alert {
    /// Prometheus's `needsSending`: firing or newly resolved, and not sent within the delay.
    pub fn needs_sending(&self, ts: i64, resend_delay: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        if self.resolved_at > self.last_sent_at {
            return true;
        }
        match self.last_sent_at {
            None => true,
            Some(sent) => sent + resend_delay < ts,
        }
    }
}

/// An alert found by one evaluation: labels and annotations already expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub labels: LabelMap,
    pub annotations: LabelMap,
    pub value: f64,
}

/// One sample the evaluation writes (`ALERTS` or `ALERTS_FOR_STATE`), labels including
/// `__name__`.
pub type OutputSample = (LabelMap, f64);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertingState {
    /// Keyed by the alert's labels.
    pub active: BTreeMap<LabelMap, Alert>,
    /// `for` state was restored (or needed no restoring): only then are `ALERTS` written, as
    /// Prometheus writes them only once restoring is over.
    pub restored: bool,
}

impl AlertingState {
    /// Moves every alert one evaluation on at `ts` (ms) and returns the samples to write.
    pub fn step(
        &mut self,
        found: Vec<Candidate>,
        ts: i64,
        hold_ms: i64,
        keep_firing_for_ms: i64,
    ) -> Vec<OutputSample> {
        let mut seen = std::collections::HashSet::with_capacity(found.len());
        for c in found {
            seen.insert(c.labels.clone());
            if let Some(a) = self.active.get_mut(&c.labels) {
                if a.state != AlertState::Inactive {
                    a.value = c.value;
                    a.annotations = c.annotations;
                    continue;
                }
            }
            self.active.insert(
                c.labels.clone(),
                Alert {
                    labels: c.labels,
                    annotations: c.annotations,
                    state: AlertState::Pending,
                    value: c.value,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: 0,
                    keep_firing_since: None,
                },
            );
        }
        let mut out = Vec::new();
        let mut forget = Vec::new();
        for (key, a) in self.active.iter_mut() {
            if !seen.contains(key) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_firing_for_ms > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < keep_firing_for_ms;
                }
                if a.state == AlertState::Pending
                    || a.resolved_at
                        .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
                {
                    forget.push(key.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            if a.state == AlertState::Pending && ts - a.active_at >= hold_ms {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            if self.restored {
                let mut alerts = a.labels.clone();
                alerts.insert("__name__".into(), "ALERTS".into());
                alerts.insert("alertstate".into(), a.state.name().into());
                out.push((alerts, 1.0));
                let mut for_state = a.labels.clone();
                for_state.insert("__name__".into(), "ALERTS_FOR_STATE".into());
                out.push((for_state, (a.active_at / 1000) as f64));
            }
        }
        for k in forget {
            self.active.remove(&k);
        }
        out
    }

    /// The state the rule shows: firing if any alert fires, else pending if any is pending.
    pub fn state(&self) -> AlertState {
        let mut s = AlertState::Inactive;
        for a in self.active.values() {
            match a.state {
                AlertState::Firing => return AlertState::Firing,
                AlertState::Pending => s = AlertState::Pending,
                AlertState::Inactive => {}
            }
        }
        s
    }

    /// Alerts to send to Alertmanager at `ts`, marking them sent: Prometheus's `sendAlerts`.
    /// Each is (alert, ends_at): a resolved alert ends when it resolved, a firing one is
    /// valid for four resend periods.
    pub fn take_sendable(
        &mut self,
        ts: i64,
        resend_delay: i64,
        interval: i64,
    ) -> Vec<(Alert, i64)> {
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if !a.needs_sending(ts, resend_delay) {
                continue;
            }
            a.last_sent_at = Some(ts);
            let delta = resend_delay.max(interval);
            a.valid_until = ts + 4 * delta;
            let ends = a.resolved_at.unwrap_or(a.valid_until);
            out.push((a.clone(), ends));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(instance: &str) -> Candidate {
        Candidate {
            labels: [("alertname", "A"), ("instance", instance)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: LabelMap::new(),
            value: 1.0,
        }
    }

    #[test]
    fn pending_then_firing_then_resolved_then_forgotten() {
        let mut s = AlertingState {
            restored: true,
            ..Default::default()
        };
        let out = s.step(vec![cand("a")], 0, 60_000, 0);
        assert_eq!(s.state(), AlertState::Pending);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0["alertstate"], "pending");
        assert_eq!(out[1].0["__name__"], "ALERTS_FOR_STATE");
        s.step(vec![cand("a")], 30_000, 60_000, 0);
        assert_eq!(s.state(), AlertState::Pending);
        let out = s.step(vec![cand("a")], 60_000, 60_000, 0);
        assert_eq!(s.state(), AlertState::Firing);
        assert_eq!(out[0].0["alertstate"], "firing");
        assert_eq!(s.take_sendable(60_000, 60_000, 15_000).len(), 1);
        assert!(s.take_sendable(61_000, 60_000, 15_000).is_empty());
        let out = s.step(vec![], 75_000, 60_000, 0);
        assert!(out.is_empty());
        assert_eq!(s.state(), AlertState::Inactive);
        let sent = s.take_sendable(75_000, 60_000, 15_000);
        assert_eq!(sent[0].1, 75_000, "a resolved alert ends when it resolved");
        s.step(vec![], 75_000 + RESOLVED_RETENTION_MS + 1, 60_000, 0);
        assert!(s.active.is_empty());
    }

    #[test]
    fn a_pending_alert_that_vanishes_is_forgotten_and_keep_firing_for_holds() {
        let mut s = AlertingState::default();
        assert!(
            s.step(vec![cand("a")], 0, 60_000, 0).is_empty(),
            "not restored yet"
        );
        s.step(vec![], 10_000, 60_000, 0);
        assert!(s.active.is_empty());
        s.step(vec![cand("b")], 0, 0, 30_000);
        assert_eq!(s.state(), AlertState::Firing);
        s.step(vec![], 10_000, 0, 30_000);
        assert_eq!(s.state(), AlertState::Firing, "kept firing");
        s.step(vec![], 45_000, 0, 30_000);
        assert_eq!(s.state(), AlertState::Inactive);
    }
}
