//! The notifier: a bounded queue of alerts and the task that sends them, in batches, to
//! every Alertmanager the `alerting` section names (Alertmanager API v2). Alerts get the
//! external labels (where they do not have the label) and the `alert_relabel_configs` when
//! queued, and each Alertmanager entry's own `alert_relabel_configs` when sent. A full queue
//! drops its oldest alerts and counts them, under Prometheus's metric names
//! (`prometheus_notifications_*`), as does a batch no Alertmanager accepted.
//!
//! It runs on the router executor and never blocks it; it knows nothing of rules beyond the
//! alerts it is handed.

pub mod alertmanagers;
pub mod payload;
pub mod post;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

use crate::config::alerting::{AlertingConfig, AlertmanagerConfig};
use crate::config::label_builder::LabelBuilder;
use crate::config::relabel::{process, RelabelConfig};
use crate::config::target_group::TargetGroup;
use crate::flags::LogLevel;
use crate::log::log;
use crate::rules::group::SendableAlert;
use crate::scrape::file_discovery::FileDiscovery;

use crate::tls::TlsClient;
use alertmanagers::AlertmanagerTarget;
pub use payload::NotifierAlert;
use post::{AlertmanagerClient, PostRequest};

/// Prometheus's `--alertmanager.notification-queue-capacity` default.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Prometheus's `maxBatchSize`.
pub const MAX_BATCH: usize = 256;
/// How often file-discovered Alertmanagers are looked at again.
const DISCOVERY_POLL: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct NotifierMetrics {
    pub dropped: Cell<u64>,
    /// Per Alertmanager URL: alerts sent, errors, and the last send's latency (s).
    pub sent: RefCell<BTreeMap<String, u64>>,
    pub errors: RefCell<BTreeMap<String, u64>>,
    pub latency: RefCell<BTreeMap<String, f64>>,
}

/// One `alertmanagers` entry with its discovery and what it resolved to.
struct AlertmanagerSet {
    cfg: AlertmanagerConfig,
    static_groups: Vec<TargetGroup>,
    file_groups: Vec<TargetGroup>,
    discovery: FileDiscovery,
    active: Vec<AlertmanagerTarget>,
    dropped: Vec<AlertmanagerTarget>,
    /// The entry's `tls_config`, loaded when the configuration is applied (`Err`: why not;
    /// every `https` send of the entry then fails with it).
    tls: Result<TlsClient, String>,
}

impl AlertmanagerSet {
    fn resolve(&mut self) {
        let mut groups = self.static_groups.clone();
        groups.extend(self.file_groups.iter().cloned());
        let (a, d) = alertmanagers::resolve(&self.cfg, &groups);
        self.active = a;
        self.dropped = d;
    }
}

pub struct Notifier {
    queue: RefCell<VecDeque<NotifierAlert>>,
    capacity: usize,
    relabel: RefCell<Vec<RelabelConfig>>,
    sets: RefCell<Vec<AlertmanagerSet>>,
    pub metrics: NotifierMetrics,
    wake: LocalSender<()>,
    woken: RefCell<Option<LocalReceiver<()>>>,
    user_agent: String,
    /// Per Alertmanager URL, its kept-alive connection. A send takes its client out and puts
    /// it back when done.
    clients: RefCell<HashMap<String, AlertmanagerClient>>,
}

impl Notifier {
    pub fn new(capacity: usize) -> Rc<Notifier> {
        let (wake, woken) = local_channel::new_bounded(1);
        Rc::new(Notifier {
            queue: RefCell::new(VecDeque::new()),
            capacity: capacity.max(1),
            relabel: RefCell::new(Vec::new()),
            sets: RefCell::new(Vec::new()),
            metrics: NotifierMetrics::default(),
            wake,
            woken: RefCell::new(Some(woken)),
            clients: RefCell::new(HashMap::new()),
            user_agent: format!("Prometheus/promcore-{}", env!("CARGO_PKG_VERSION")),
        })
    }

    /// Takes a new `alerting` section.
    pub fn apply(&self, cfg: &AlertingConfig, config_dir: &std::path::Path) {
        *self.relabel.borrow_mut() = cfg.alert_relabel_configs.clone();
        let sets = cfg
            .alertmanagers
            .iter()
            .map(|am| {
                let mut set = AlertmanagerSet {
                    cfg: am.clone(),
                    static_groups: am.static_configs.clone(),
                    file_groups: Vec::new(),
                    discovery: FileDiscovery::new(
                        am.file_sd_configs.clone(),
                        PathBuf::from(config_dir),
                    ),
                    active: Vec::new(),
                    dropped: Vec::new(),
                    tls: TlsClient::load(&am.tls_config).map_err(|e| e.to_string()),
                };
                let mut problems = Vec::new();
                if let Some(g) = set.discovery.poll(&mut problems) {
                    set.file_groups = g;
                }
                set.resolve();
                set
            })
            .collect();
        *self.sets.borrow_mut() = sets;
        // The TLS settings or credentials may have changed: new connections for all.
        self.clients.borrow_mut().clear();
    }

    /// Every active and dropped Alertmanager URL.
    pub fn alertmanagers(&self) -> (Vec<String>, Vec<String>) {
        let sets = self.sets.borrow();
        let active = sets
            .iter()
            .flat_map(|s| s.active.iter().map(|a| a.url()))
            .collect();
        let dropped = sets
            .iter()
            .flat_map(|s| s.dropped.iter().map(|a| a.url()))
            .collect();
        (active, dropped)
    }

    pub fn queue_length(&self) -> usize {
        self.queue.borrow().len()
    }

    pub fn queue_capacity(&self) -> usize {
        self.capacity
    }

    /// Queues the rule manager's due alerts (Prometheus's `sendAlerts` + `Notifier.Send`).
    pub fn send(
        &self,
        alerts: Vec<SendableAlert>,
        external_labels: &BTreeMap<String, String>,
        external_url: &str,
    ) {
        let relabel = self.relabel.borrow();
        let mut q = self.queue.borrow_mut();
        for s in alerts {
            let mut labels = s.alert.labels;
            for (k, v) in external_labels {
                labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
            let Some(labels) = relabel_alert(labels, &relabel) else {
                continue;
            };
            q.push_back(NotifierAlert {
                labels,
                annotations: s.alert.annotations,
                starts_at: s.alert.fired_at.unwrap_or(s.alert.active_at),
                ends_at: s.ends_at,
                generator_url: generator_url(external_url, &s.expr),
            });
        }
        let over = q.len().saturating_sub(self.capacity);
        if over > 0 {
            q.drain(..over);
            self.metrics
                .dropped
                .set(self.metrics.dropped.get() + over as u64);
            log(
                LogLevel::Warn,
                "notifier",
                "alert notification queue full, dropping alerts",
                &[("num_dropped", &over)],
            );
        }
        drop(q);
        let _ = self.wake.try_send(());
    }

    /// The sending task: runs until the process stops (the task is dropped).
    pub async fn run(self: Rc<Self>) {
        let Some(woken) = self.woken.borrow_mut().take() else {
            return;
        };
        let mut last_discovery = Instant::now();
        loop {
            let wait = async {
                let _ = woken.recv().await;
            };
            let tick = glommio::timer::sleep(DISCOVERY_POLL);
            futures_lite::future::or(wait, async {
                tick.await;
            })
            .await;
            if last_discovery.elapsed() >= DISCOVERY_POLL {
                last_discovery = Instant::now();
                self.poll_discovery();
            }
            loop {
                let batch: Vec<NotifierAlert> = {
                    let mut q = self.queue.borrow_mut();
                    let n = q.len().min(MAX_BATCH);
                    q.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                self.send_batch(&batch).await;
            }
        }
    }

    fn poll_discovery(&self) {
        for set in self.sets.borrow_mut().iter_mut() {
            let mut problems = Vec::new();
            if let Some(g) = set.discovery.poll(&mut problems) {
                set.file_groups = g;
                set.resolve();
            }
            for p in problems {
                log(
                    LogLevel::Error,
                    "notifier",
                    "error reading Alertmanager file_sd file",
                    &[("file", &p.file.display()), ("err", &p.error)],
                );
            }
        }
    }

    /// Sends one batch to every Alertmanager at once; counts it dropped if none took it.
    async fn send_batch(&self, batch: &[NotifierAlert]) {
        /// Where to send, the body, the credentials header (or why it is missing), the TLS
        /// settings (or why they are missing), the timeout.
        type Send = (
            AlertmanagerTarget,
            Vec<u8>,
            Result<Option<String>, String>,
            Result<TlsClient, String>,
            Duration,
        );
        let work: Vec<Send> = self
            .sets
            .borrow()
            .iter()
            .flat_map(|set| {
                let alerts: Vec<NotifierAlert> = if set.cfg.alert_relabel_configs.is_empty() {
                    batch.to_vec()
                } else {
                    batch
                        .iter()
                        .filter_map(|a| {
                            relabel_alert(a.labels.clone(), &set.cfg.alert_relabel_configs).map(
                                |labels| NotifierAlert {
                                    labels,
                                    ..a.clone()
                                },
                            )
                        })
                        .collect()
                };
                let body = payload::encode(&alerts);
                let timeout = set.cfg.timeout.as_std();
                // Read at every send, as the scrape loops read theirs at start: a rotated
                // secret file is picked up without a reload.
                let auth = crate::scrape::auth::credentials_header(
                    set.cfg.basic_auth.as_ref(),
                    set.cfg.authorization.as_ref(),
                );
                let tls = set.tls.clone();
                set.active
                    .iter()
                    .map(move |am| (am.clone(), body.clone(), auth.clone(), tls.clone(), timeout))
                    .collect::<Vec<_>>()
            })
            .collect();
        if work.is_empty() {
            return;
        }
        let sends = work.into_iter().map(|(am, body, auth, tls, timeout)| {
            let ua = self.user_agent.clone();
            let mut client = self
                .clients
                .borrow_mut()
                .remove(&am.url())
                .unwrap_or_default();
            glommio::spawn_local(async move {
                let started = Instant::now();
                let tls = match am.scheme.as_str() {
                    "http" => Ok(None),
                    "https" => tls.map(Some),
                    other => Err(post::PostError::Scheme(other.to_string()).to_string()),
                };
                let r = match (auth, tls) {
                    (Err(e), _) | (_, Err(e)) => Err(post::PostError::Credentials(e)),
                    (Ok(auth), Ok(tls)) => {
                        let req = PostRequest {
                            address: &am.address,
                            path: &am.path,
                            body: &body,
                            user_agent: &ua,
                            authorization: auth.as_deref(),
                            tls: tls.as_ref(),
                            timeout,
                        };
                        client.post_json(&req).await
                    }
                };
                (am, r, started.elapsed().as_secs_f64(), client)
            })
        });
        let tasks: Vec<_> = sends.collect();
        let mut any_ok = false;
        for t in tasks {
            let (am, r, secs, client) = t.await;
            let url = am.url();
            self.clients.borrow_mut().insert(url.clone(), client);
            self.metrics.latency.borrow_mut().insert(url.clone(), secs);
            match r {
                Ok(()) => {
                    any_ok = true;
                    *self.metrics.sent.borrow_mut().entry(url).or_default() += batch.len() as u64;
                }
                Err(e) => {
                    *self
                        .metrics
                        .errors
                        .borrow_mut()
                        .entry(url.clone())
                        .or_default() += batch.len() as u64;
                    log(
                        LogLevel::Error,
                        "notifier",
                        "error sending alerts",
                        &[("alertmanager", &url), ("count", &batch.len()), ("err", &e)],
                    );
                }
            }
        }
        if !any_ok {
            self.metrics
                .dropped
                .set(self.metrics.dropped.get() + batch.len() as u64);
        }
    }
}

/// Applies relabel rules to an alert's labels; `None` when dropped.
fn relabel_alert(
    labels: BTreeMap<String, String>,
    configs: &[RelabelConfig],
) -> Option<BTreeMap<String, String>> {
    if configs.is_empty() {
        return Some(labels);
    }
    let mut lb = LabelBuilder::new();
    for (k, v) in &labels {
        lb.set(k, v);
    }
    if !process(&mut lb, configs) || lb.is_empty() {
        return None;
    }
    Some(
        lb.iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect(),
    )
}

/// Prometheus's link back to the expression: `<external URL>/graph?g0.expr=...&g0.tab=1`.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    let q = crate::http::form::encode_component(expr);
    format!(
        "{}/graph?g0.expr={q}&g0.tab=1",
        external_url.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::rules::alerting::{Alert, AlertState};

    fn alert(name: &str, severity: &str) -> SendableAlert {
        SendableAlert {
            alert: Alert {
                labels: [
                    ("alertname".to_string(), name.to_string()),
                    ("severity".into(), severity.into()),
                    ("cluster".into(), "own".into()),
                ]
                .into_iter()
                .collect(),
                annotations: Default::default(),
                state: AlertState::Firing,
                value: 1.0,
                active_at: 1_000,
                fired_at: Some(2_000),
                resolved_at: None,
                last_sent_at: None,
                valid_until: 0,
                keep_firing_since: None,
            },
            ends_at: 9_000,
            expr: "up == 0".into(),
        }
    }

    /// External labels fill in missing labels only, `alert_relabel_configs` run after them
    /// and may drop an alert, and a full queue drops its oldest alerts and counts them.
    #[test]
    fn queueing_relabels_and_bounds() {
        let config = Config::parse(
            "alerting:\n  alert_relabel_configs:\n    - {source_labels: [severity], regex: info, action: drop}\n    - {source_labels: [region], target_label: zone}\n",
        )
        .unwrap();
        let n = Notifier::new(3);
        n.apply(&config.alerting, std::path::Path::new("."));
        let external: BTreeMap<String, String> = [
            ("cluster".to_string(), "ext".to_string()),
            ("region".into(), "eu".into()),
        ]
        .into_iter()
        .collect();
        let alerts = ["A", "B", "C", "D", "E"]
            .iter()
            .map(|a| alert(a, if *a == "B" { "info" } else { "page" }))
            .collect();
        n.send(alerts, &external, "http://prom:9090");
        assert_eq!(n.queue_length(), 3);
        assert_eq!(n.metrics.dropped.get(), 1, "A, the oldest, made room");
        let q = n.queue.borrow();
        let names: Vec<&str> = q.iter().map(|a| a.labels["alertname"].as_str()).collect();
        assert_eq!(names, ["C", "D", "E"]);
        assert_eq!(q[0].labels["cluster"], "own");
        assert_eq!(q[0].labels["region"], "eu");
        assert_eq!(q[0].labels["zone"], "eu");
        assert_eq!(q[0].starts_at, 2_000);
        assert_eq!(
            q[0].generator_url,
            "http://prom:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
        );
    }
}
