//! The scrape manager: one pool per job, one loop per target, kept in step with the
//! configuration and with file-based discovery.
//!
//! On a configuration change a job whose config is unchanged keeps its loops (and their caches
//! and connections); a changed job gets new loops; a target that disappears gets staleness
//! markers, one that stays does not. The manager owns the loops' lifetimes and the per-target
//! status the API reads; it never parses bodies or touches storage.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use glommio::channels::local_channel::{self, LocalSender};
use glommio::Task;

use crate::config::scrape::ScrapeConfig;
use crate::config::target::{populate_group, Target};
use crate::config::target_group::TargetGroup;
use crate::config::tls::TlsConfig;
use crate::config::Config;
use crate::flags::LogLevel;
use crate::log::log;
use crate::router::Router;
use crate::scrape::append::{ScrapeAppender, SeriesRules};
use crate::scrape::auth::authorization_header;
use crate::scrape::file_discovery::FileDiscovery;
use crate::scrape::metadata::SharedMetadata;
use crate::scrape::metrics::ScrapeMetrics;
use crate::scrape::scrape_loop::{ScrapeLoop, ScrapeSettings, StopMode};
use crate::scrape::target_status::{DroppedTarget, Health, TargetStatus};
use crate::tls::TlsClient;

/// How often target files are checked for changes.
pub const DISCOVERY_POLL: Duration = Duration::from_secs(2);

struct RunningLoop {
    status: Rc<RefCell<TargetStatus>>,
    metadata: SharedMetadata,
    stop: Rc<Cell<StopMode>>,
    /// Dropped to wake the loop when it must stop.
    wake: Option<LocalSender<()>>,
    task: Task<ScrapeAppender>,
}

impl RunningLoop {
    fn stop(&mut self, mode: StopMode) {
        self.stop.set(mode);
        self.wake = None;
    }
}

struct ScrapePool {
    config: ScrapeConfig,
    static_groups: Vec<TargetGroup>,
    file_groups: Vec<TargetGroup>,
    discovery: FileDiscovery,
    loops: HashMap<u64, RunningLoop>,
    /// Targets that could not be scraped at all (target_limit), shown as down.
    refused: Vec<Rc<RefCell<TargetStatus>>>,
    dropped: Vec<DroppedTarget>,
}

pub struct ScrapeManager {
    router: Rc<Router>,
    metrics: Rc<ScrapeMetrics>,
    /// Relative file_sd paths are relative to the configuration file's directory.
    config_dir: PathBuf,
    /// Mixed into every target's offset, so two servers scraping the same targets do not
    /// scrape them at the same instant (Prometheus uses hostname and external labels).
    server_seed: Cell<u64>,
    pools: RefCell<BTreeMap<String, ScrapePool>>,
    /// Loops told to stop, awaited by `reap`.
    stopping: RefCell<Vec<Task<ScrapeAppender>>>,
}

impl ScrapeManager {
    pub fn new(router: Rc<Router>, metrics: Rc<ScrapeMetrics>, config_dir: PathBuf) -> Self {
        ScrapeManager {
            router,
            metrics,
            config_dir,
            server_seed: Cell::new(0),
            pools: RefCell::new(BTreeMap::new()),
            stopping: RefCell::new(Vec::new()),
        }
    }

    pub fn metrics(&self) -> &Rc<ScrapeMetrics> {
        &self.metrics
    }

    /// Brings the pools in line with `config`.
    pub fn apply(&self, config: &Config) {
        let mut seed_text = hostname();
        for (k, v) in &config.global.external_labels {
            seed_text.push_str(k);
            seed_text.push('=');
            seed_text.push_str(v);
        }
        let seed = fnv1a(seed_text.as_bytes());
        let seed_changed = seed != self.server_seed.replace(seed);
        let mut pools = self.pools.borrow_mut();
        let wanted: Vec<&str> = config
            .scrape_configs
            .iter()
            .map(|c| c.job_name.as_str())
            .collect();
        let gone: Vec<String> = pools
            .keys()
            .filter(|job| !wanted.contains(&job.as_str()))
            .cloned()
            .collect();
        for job in gone {
            if let Some(mut pool) = pools.remove(&job) {
                for (_, mut l) in pool.loops.drain() {
                    l.stop(StopMode::TargetGone);
                    self.stopping.borrow_mut().push(l.task);
                }
            }
        }
        for cfg in &config.scrape_configs {
            let static_groups: Vec<TargetGroup> = cfg
                .static_configs
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    let mut g = g.clone();
                    g.source = i.to_string();
                    g
                })
                .collect();
            // Prometheus builds a job's HTTP client with its pool; when the TLS files cannot
            // be used, the pool is not created (or not changed) and the error is logged.
            let changed = pools.get(&cfg.job_name).is_none_or(|p| p.config != *cfg);
            if changed && cfg.tls_config != TlsConfig::default() {
                if let Err(e) = TlsClient::load(&cfg.tls_config) {
                    let verb = if pools.contains_key(&cfg.job_name) {
                        "error reloading scrape pool"
                    } else {
                        "error creating new scrape pool"
                    };
                    let err = format!("error creating HTTP client: {}", e.reason);
                    log(
                        LogLevel::Error,
                        "scrape",
                        verb,
                        &[("scrape_pool", &cfg.job_name), ("err", &err)],
                    );
                    continue;
                }
            }
            match pools.get_mut(&cfg.job_name) {
                Some(pool) if pool.config == *cfg && !seed_changed => continue,
                Some(pool) => {
                    // A changed job: every loop is replaced; targets that stay get no markers.
                    let discovery_same = pool.config.file_sd_configs == cfg.file_sd_configs;
                    pool.config = cfg.clone();
                    pool.static_groups = static_groups;
                    if !discovery_same {
                        pool.discovery = FileDiscovery::new(
                            cfg.file_sd_configs.clone(),
                            self.config_dir.clone(),
                        );
                        pool.file_groups.clear();
                    }
                    for (_, mut l) in pool.loops.drain() {
                        l.stop(StopMode::Quiet);
                        self.stopping.borrow_mut().push(l.task);
                    }
                }
                None => {
                    pools.insert(
                        cfg.job_name.clone(),
                        ScrapePool {
                            config: cfg.clone(),
                            static_groups,
                            file_groups: Vec::new(),
                            discovery: FileDiscovery::new(
                                cfg.file_sd_configs.clone(),
                                self.config_dir.clone(),
                            ),
                            loops: HashMap::new(),
                            refused: Vec::new(),
                            dropped: Vec::new(),
                        },
                    );
                }
            }
            if let Some(pool) = pools.get_mut(&cfg.job_name) {
                poll_discovery(pool);
                self.sync(pool);
            }
        }
    }

    /// Checks target files for changes and syncs the pools whose targets changed.
    pub fn poll_discovery(&self) {
        let mut pools = self.pools.borrow_mut();
        for pool in pools.values_mut() {
            if poll_discovery(pool) {
                self.sync(pool);
            }
        }
    }

    /// Starts loops for new targets and stops those of vanished ones.
    fn sync(&self, pool: &mut ScrapePool) {
        let cfg = &pool.config;
        let mut targets: Vec<(u64, Target, shards::labels::Labels)> = Vec::new();
        let mut seen = HashSet::new();
        pool.dropped.clear();
        for group in pool.static_groups.iter().chain(&pool.file_groups) {
            for result in populate_group(cfg, group) {
                match result {
                    Ok(p) => match p.target {
                        Some(t) => {
                            let key = target_key(&t);
                            if seen.insert(key) {
                                targets.push((key, t, p.discovered));
                            }
                        }
                        None => pool.dropped.push(DroppedTarget {
                            job: cfg.job_name.clone(),
                            discovered: p.discovered,
                        }),
                    },
                    Err(e) => log(
                        LogLevel::Error,
                        "scrape",
                        "creating target failed",
                        &[("job", &cfg.job_name), ("err", &e)],
                    ),
                }
            }
        }
        pool.refused.clear();
        if cfg.target_limit > 0 && targets.len() as u64 > cfg.target_limit {
            let error = format!(
                "target_limit exceeded (number of targets: {}, limit: {})",
                targets.len(),
                cfg.target_limit
            );
            for (_, mut l) in pool.loops.drain() {
                l.stop(StopMode::TargetGone);
                self.stopping.borrow_mut().push(l.task);
            }
            for (_, t, discovered) in targets {
                let mut s = new_status(cfg, &t, discovered);
                s.health = Health::Down;
                s.last_error = error.clone();
                pool.refused.push(Rc::new(RefCell::new(s)));
            }
            return;
        }
        let gone: Vec<u64> = pool
            .loops
            .keys()
            .filter(|k| !seen.contains(k))
            .copied()
            .collect();
        for k in gone {
            if let Some(mut l) = pool.loops.remove(&k) {
                l.stop(StopMode::TargetGone);
                self.stopping.borrow_mut().push(l.task);
            }
        }
        for (key, target, discovered) in targets {
            if let Some(l) = pool.loops.get(&key) {
                // Same labels and URL: the loop goes on; the API shows the new discovery.
                l.status.borrow_mut().discovered = discovered;
                continue;
            }
            let running = self.start_loop(cfg, target, discovered);
            pool.loops.insert(key, running);
        }
    }

    fn start_loop(
        &self,
        cfg: &ScrapeConfig,
        target: Target,
        discovered: shards::labels::Labels,
    ) -> RunningLoop {
        let status = Rc::new(RefCell::new(new_status(cfg, &target, discovered)));
        let stop = Rc::new(Cell::new(StopMode::Run));
        let (wake_tx, wake_rx) = local_channel::new_bounded(1);
        let authorization = match authorization_header(cfg) {
            Ok(a) => a,
            Err(e) => {
                log(
                    LogLevel::Error,
                    "scrape",
                    "cannot read credentials",
                    &[("job", &cfg.job_name), ("err", &e)],
                );
                None
            }
        };
        // Loaded per loop, as the credentials are: a renewed certificate is picked up by the
        // loops a reload starts. `apply` has left out a job whose files were unusable then.
        let tls = if target.scheme == "https" {
            TlsClient::load(&cfg.tls_config)
                .map(Some)
                .map_err(|e| e.to_string())
        } else {
            Ok(None)
        };
        let settings = ScrapeSettings {
            offset_seed: target_key(&target) ^ self.server_seed.get(),
            tls,
            target,
            body_size_limit: cfg.body_size_limit.0,
            accept_gzip: cfg.enable_compression,
            authorization,
        };
        let rules = SeriesRules {
            target_labels: settings.target.labels.clone(),
            honor_labels: cfg.honor_labels,
            honor_timestamps: cfg.honor_timestamps,
            metric_relabel: cfg.metric_relabel_configs.clone(),
            sample_limit: cfg.sample_limit,
            label_limit: cfg.label_limit,
            label_name_length_limit: cfg.label_name_length_limit,
            label_value_length_limit: cfg.label_value_length_limit,
        };
        let appender = ScrapeAppender::new(rules);
        let metadata = appender.metadata.clone();
        let scrape_loop = ScrapeLoop::new(
            settings,
            appender,
            self.router.clone(),
            status.clone(),
            self.metrics.clone(),
            stop.clone(),
            wake_rx,
        );
        let task = glommio::spawn_local(scrape_loop.run());
        RunningLoop {
            status,
            metadata,
            stop,
            wake: Some(wake_tx),
            task,
        }
    }

    /// Whether loops told to stop have not been reaped yet.
    pub fn has_stopping(&self) -> bool {
        !self.stopping.borrow().is_empty()
    }

    /// Waits for the loops told to stop (they write their staleness markers first).
    pub async fn reap(&self) {
        let stopping = std::mem::take(&mut *self.stopping.borrow_mut());
        for task in stopping {
            task.await;
        }
    }

    /// Shutdown: every loop ends without markers; returns once all have.
    pub async fn stop_all(&self) {
        {
            let mut pools = self.pools.borrow_mut();
            for pool in pools.values_mut() {
                for (_, mut l) in pool.loops.drain() {
                    l.stop(StopMode::Quiet);
                    self.stopping.borrow_mut().push(l.task);
                }
            }
        }
        self.reap().await;
    }

    /// Every active target's status by job, and the dropped targets.
    pub fn targets(&self) -> (Vec<TargetStatus>, Vec<DroppedTarget>) {
        let pools = self.pools.borrow();
        let mut active = Vec::new();
        let mut dropped = Vec::new();
        for pool in pools.values() {
            let mut statuses: Vec<TargetStatus> = pool
                .loops
                .values()
                .map(|l| l.status.borrow().clone())
                .chain(pool.refused.iter().map(|s| s.borrow().clone()))
                .collect();
            statuses.sort_by(|a, b| a.labels.cmp(&b.labels));
            active.extend(statuses);
            dropped.extend(pool.dropped.iter().cloned());
        }
        (active, dropped)
    }

    /// Every active target's labels and metadata, by job, then by labels.
    pub fn metadata(&self) -> Vec<(String, shards::labels::Labels, SharedMetadata)> {
        let pools = self.pools.borrow();
        let mut out = Vec::new();
        for (job, pool) in pools.iter() {
            let mut targets: Vec<_> = pool
                .loops
                .values()
                .map(|l| {
                    (
                        job.clone(),
                        l.status.borrow().labels.clone(),
                        l.metadata.clone(),
                    )
                })
                .collect();
            targets.sort_by(|a, b| a.1.cmp(&b.1));
            out.extend(targets);
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Number of active targets per job, for `/metrics`.
    pub fn target_counts(&self) -> Vec<(String, usize)> {
        self.pools
            .borrow()
            .iter()
            .map(|(job, p)| (job.clone(), p.loops.len()))
            .collect()
    }
}

/// Polls a pool's files; `true` when its file groups changed.
fn poll_discovery(pool: &mut ScrapePool) -> bool {
    let mut problems = Vec::new();
    let changed = pool.discovery.poll(&mut problems);
    for p in problems {
        log(
            LogLevel::Error,
            "discovery",
            "cannot read target file, keeping its previous targets",
            &[
                ("job", &pool.config.job_name),
                ("file", &p.file.display()),
                ("err", &p.error),
            ],
        );
    }
    match changed {
        Some(groups) => {
            pool.file_groups = groups;
            true
        }
        None => false,
    }
}

fn new_status(
    cfg: &ScrapeConfig,
    target: &Target,
    discovered: shards::labels::Labels,
) -> TargetStatus {
    TargetStatus {
        job: cfg.job_name.clone(),
        discovered,
        labels: target.labels.clone(),
        scrape_url: target.url(),
        interval: target.interval.as_std(),
        timeout: target.timeout.as_std(),
        health: Health::Unknown,
        last_error: String::new(),
        last_scrape: None,
        last_scrape_duration: 0.0,
        cached_series: 0,
    }
}

/// Identifies a target across syncs: its labels and its URL.
fn target_key(t: &Target) -> u64 {
    let mut h = t.labels.hash();
    h ^= fnv1a(t.url().as_bytes()).rotate_left(17);
    h
}

/// FNV-1a 64: a stable hash for phases that must survive restarts.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
