//! The router executor: the HTTP server, the links to the shards, the scrape manager and the
//! configuration reloads, and the state they share (`App`).
//!
//! The HTTP server starts first so `/-/ready` can answer 503 while the shards replay their
//! WALs; scraping starts once every shard is connected. Reloads (SIGHUP or `/-/reload`) run
//! here: a configuration that does not load is refused and the running one keeps going.
//! Nothing here touches storage; everything reaches the shards through the `Router`.

use std::cell::{Cell, OnceCell, RefCell};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use futures_lite::future;
use glommio::channels::local_channel;
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};
use socket2::Socket;

use crate::active_queries::ActiveQueryTracker;
use crate::api::front::FrontShared;
use crate::api::handler::ApiHandler;
use crate::api::http_metrics::HttpMetrics;
use crate::api::query_timings::QueryTimings;
use crate::config::Config;
use crate::flags::{Flags, LogLevel};
use crate::http::forward::{serve_forwarded, ServeEnds};
use crate::http::{ConnectionSlots, Server, ServerConfig};
use crate::log::log;
use crate::notifier::Notifier;
use crate::promql::engine::{Engine, EngineOptions};
use crate::router::protocol::{Envelope, Reply};
use crate::router::shard_link::ShardLink;
use crate::router::Router;
use crate::rules::manager::{RuleManager, RuleManagerOptions};
use crate::rules::router_storage::RouterStorage;
use crate::scrape::manager::{ScrapeManager, DISCOVERY_POLL};
use crate::scrape::metrics::ScrapeMetrics;
use crate::startup::StartupError;
use shards::label_generation::LabelGeneration;

/// How often the router looks at the process-wide flags (signals, quit).
const CONTROL_POLL: Duration = Duration::from_millis(50);

/// Flags shared between the main thread (signals) and the router executor.
#[derive(Debug, Default)]
pub struct Control {
    /// Set by SIGTERM/SIGINT (main thread) or `/-/quit`: shut down.
    pub stop: AtomicBool,
    /// Set by SIGHUP: reload the configuration.
    pub reload: AtomicBool,
}

/// The router's ends of one shard's channels.
pub struct ShardChannels {
    pub requests: SharedSender<Envelope>,
    pub replies: SharedReceiver<Reply>,
    /// Set by the shard once its head is rebuilt, just before it connects its ends: the
    /// WAL segment it writes next.
    pub opened: Arc<OnceLock<u64>>,
    /// Set by the shard before `opened`: what it publishes for the router's label answers.
    pub labels: Arc<OnceLock<Arc<LabelGeneration>>>,
}

/// The configuration in force and how the last reload went.
pub struct LoadedConfig {
    pub config: Config,
    /// The file as read, shown by `/api/v1/status/config`.
    pub text: String,
}

#[derive(Debug, Default)]
pub struct ReloadMetrics {
    pub last_successful: Cell<bool>,
    pub last_success_time: Cell<f64>,
    pub reloads: Cell<u64>,
    pub failures: Cell<u64>,
}

/// What the API and the reload path share on the router executor.
pub struct App {
    pub flags: Flags,
    pub control: Arc<Control>,
    pub started: SystemTime,
    pub config: RefCell<Rc<LoadedConfig>>,
    pub reload_metrics: ReloadMetrics,
    /// Set once every shard is connected: the WAL replays are done.
    pub router: OnceCell<Rc<Router>>,
    pub scrape: OnceCell<Rc<ScrapeManager>>,
    /// Set with the router: rules evaluate over stored data.
    pub rules: OnceCell<Rc<RuleManager>>,
    pub notifier: Rc<Notifier>,
    /// Where the configuration file is: rule files and file_sd paths are relative to it.
    pub config_dir: PathBuf,
    pub scrape_metrics: Rc<ScrapeMetrics>,
    /// Queries in flight: the `--query.max-concurrency` limit and `queries.active`.
    pub queries: ActiveQueryTracker,
    /// The highest WAL segment the shards had when they were all open (replay finished), for
    /// `/api/v1/status/walreplay`; `None` until then.
    pub wal_replayed: Cell<Option<u64>>,
    /// Requests and latencies per HTTP handler, for `/metrics` (the fronts count there too).
    pub http_metrics: Arc<HttpMetrics>,
    /// What the listeners of the other cores share with the router (`api::front`).
    pub fronts: Arc<FrontShared>,
    /// Query queueing and evaluation times, for `/metrics`.
    pub query_timings: QueryTimings,
}

impl App {
    pub fn is_ready(&self) -> bool {
        self.router.get().is_some()
    }

    /// The PromQL engine with the flags' limits and the configuration's evaluation interval
    /// (the step of subqueries written without one), read per query so reloads apply.
    pub fn engine(&self) -> Engine {
        let f = &self.flags;
        Engine::new(EngineOptions {
            lookback_delta: f.query_lookback_delta.as_millis() as i64,
            max_samples: usize::try_from(f.query_max_samples).unwrap_or(usize::MAX),
            timeout: f.query_timeout.as_std(),
            default_subquery_step: self
                .config
                .borrow()
                .config
                .global
                .evaluation_interval
                .as_millis() as i64,
            pushdown: true,
        })
    }

    /// Loads the configuration file again and applies it; on error the running configuration
    /// stays and the error is returned (and logged).
    pub fn reload(&self) -> Result<(), String> {
        let m = &self.reload_metrics;
        m.reloads.set(m.reloads.get() + 1);
        let loaded = match load_config(&self.flags.config_file) {
            Ok(l) => l,
            Err(e) => {
                m.failures.set(m.failures.get() + 1);
                m.last_successful.set(false);
                log(
                    LogLevel::Error,
                    "main",
                    "error reloading config, keeping the running configuration",
                    &[("err", &e)],
                );
                return Err(e);
            }
        };
        if let Some(rules) = self.rules.get() {
            if let Err(e) = rules.apply(&loaded.config, &self.config_dir) {
                m.failures.set(m.failures.get() + 1);
                m.last_successful.set(false);
                log(
                    LogLevel::Error,
                    "main",
                    "error loading rules, keeping the running configuration",
                    &[("err", &e)],
                );
                return Err(e);
            }
        }
        if let Some(scrape) = self.scrape.get() {
            scrape.apply(&loaded.config);
        }
        self.notifier
            .apply(&loaded.config.alerting, &self.config_dir);
        *self.config.borrow_mut() = Rc::new(loaded);
        m.last_successful.set(true);
        m.last_success_time.set(unix_seconds(SystemTime::now()));
        log(
            LogLevel::Info,
            "main",
            "completed loading of configuration file",
            &[("file", &self.flags.config_file.display())],
        );
        Ok(())
    }

    /// Asks the whole process to shut down, as SIGTERM would.
    pub fn quit(&self) {
        self.control.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads and validates a configuration file.
pub fn load_config(path: &std::path::Path) -> Result<LoadedConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading config file {}: {e}", path.display()))?;
    let config = Config::parse(&text)
        .and_then(|c| c.check_alertmanager_tls().map(|()| c))
        .map_err(|e| format!("loading config file {}: {e}", path.display()))?;
    Ok(LoadedConfig { config, text })
}

pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Everything the router executor is started with.
pub struct RouterStart {
    pub flags: Flags,
    pub config: LoadedConfig,
    /// The router's listener (core 0's of the group, see `http::listeners`).
    pub listener: Socket,
    pub http: ServerConfig,
    /// `--web.max-connections`, shared with the fronts' listeners.
    pub slots: Arc<ConnectionSlots>,
    /// The router's ends of each front's forwarding channel.
    pub forwarded: Vec<ServeEnds>,
    pub fronts: Arc<FrontShared>,
    pub control: Arc<Control>,
    pub shards: Vec<ShardChannels>,
    /// Start-up failures (the listener cannot bind) go to the main thread.
    pub failures: mpsc::Sender<StartupError>,
}

/// The router executor's main: returns when the process shuts down, after the scrape loops
/// stopped and every shard was told to close.
pub async fn run_router(start: RouterStart) {
    let RouterStart {
        flags,
        config,
        listener,
        http,
        slots,
        forwarded,
        fronts,
        control,
        shards,
        failures,
    } = start;
    let config_dir = flags
        .config_file
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let queries = open_query_tracker(&flags);
    let notifier = Notifier::new(flags.alertmanager_notification_queue_capacity);
    let app = Rc::new(App {
        flags,
        control: control.clone(),
        started: SystemTime::now(),
        config: RefCell::new(Rc::new(config)),
        reload_metrics: ReloadMetrics {
            last_successful: Cell::new(true),
            last_success_time: Cell::new(unix_seconds(SystemTime::now())),
            ..Default::default()
        },
        router: OnceCell::new(),
        scrape: OnceCell::new(),
        rules: OnceCell::new(),
        notifier: notifier.clone(),
        config_dir: config_dir.clone(),
        scrape_metrics: Rc::new(ScrapeMetrics::default()),
        queries,
        wal_replayed: Cell::new(None),
        http_metrics: fronts.http_metrics.clone(),
        fronts: fronts.clone(),
        query_timings: QueryTimings::new(std::time::Instant::now()),
    });

    let api = Rc::new(ApiHandler::new(app.clone()));
    let forwarding_limit = http.drain_timeout + Duration::from_secs(1);
    let server = Server::from_listener(listener, http, api.clone(), slots);
    let addr = match server.local_addr() {
        Ok(a) => a,
        Err(e) => {
            let _ = failures.send(StartupError::Listen(e.to_string()));
            return;
        }
    };
    log(
        LogLevel::Info,
        "web",
        "listening",
        &[
            ("address", &addr),
            ("lifecycle", &app.flags.web_enable_lifecycle),
        ],
    );
    let (http_stop, http_stopped) = local_channel::new_bounded::<()>(1);
    let http_task = glommio::spawn_local(server.serve_until(async move {
        let _ = http_stopped.recv().await;
    }));
    // Answered from the start: fronts forward `/-/ready` during the WAL replay too.
    let forward_tasks: Vec<_> = forwarded
        .into_iter()
        .map(|ends| glommio::spawn_local(serve_forwarded(ends, api.clone())))
        .collect();
    let forwarding_done = || async {
        // Fronts close their ends once their connections drained; bounded all the same.
        let all = async {
            for t in forward_tasks {
                t.await;
            }
        };
        let limit = glommio::timer::sleep(forwarding_limit);
        future::or(all, async {
            limit.await;
        })
        .await;
    };

    let stopping = || control.stop.load(Ordering::SeqCst);
    let opened: Vec<Arc<OnceLock<u64>>> = shards.iter().map(|s| s.opened.clone()).collect();
    let Some(links) = connect_shards(shards, &stopping).await else {
        drop(http_stop);
        let _ = http_task.await;
        forwarding_done().await;
        return;
    };
    fronts.publish_labels(links.iter().map(|l| l.shared_label_generation()).collect());
    let router = Rc::new(Router::new(links));
    let _ = app.router.set(router.clone());
    let replayed = opened.iter().filter_map(|o| o.get().copied()).max();
    app.wal_replayed.set(Some(replayed.unwrap_or(0)));
    let scrape = Rc::new(ScrapeManager::new(
        router.clone(),
        app.scrape_metrics.clone(),
        config_dir,
    ));
    let _ = app.scrape.set(scrape.clone());
    scrape.apply(&app.config.borrow().config);
    notifier.apply(&app.config.borrow().config.alerting, &app.config_dir);
    let notifier_task = glommio::spawn_local(notifier.clone().run());
    let rules = RuleManager::new(
        Rc::new(RouterStorage {
            router: router.clone(),
            engine: RefCell::new(app.engine()),
        }),
        RuleManagerOptions {
            outage_tolerance_ms: app.flags.rules_alert_for_outage_tolerance.as_millis() as i64,
            grace_period_ms: app.flags.rules_alert_for_grace_period.as_millis() as i64,
            resend_delay_ms: app.flags.rules_alert_resend_delay.as_millis() as i64,
            external_url: external_url(&app.flags, addr),
        },
        notifier.clone(),
    );
    let _ = app.rules.set(rules.clone());
    let loaded_rules = rules.apply(&app.config.borrow().config, &app.config_dir);
    if let Err(e) = loaded_rules {
        // The configuration was checked before start, but a rule file can still fail here
        // (it changed since): the server runs without rules, as a failed reload would leave it.
        log(
            LogLevel::Error,
            "rules",
            "error loading rule files",
            &[("err", &e)],
        );
        app.reload_metrics.last_successful.set(false);
    }
    log(
        LogLevel::Info,
        "main",
        "server is ready to receive web requests",
        &[],
    );

    let mut last_discovery = Instant::now();
    while !stopping() {
        glommio::timer::sleep(CONTROL_POLL).await;
        if control.reload.swap(false, Ordering::SeqCst) {
            let _ = app.reload();
        }
        if last_discovery.elapsed() >= DISCOVERY_POLL {
            last_discovery = Instant::now();
            scrape.poll_discovery();
        }
        // Loops of vanished targets end on their own, after their staleness markers.
        if scrape.has_stopping() {
            let reaper = scrape.clone();
            glommio::spawn_local(async move { reaper.reap().await }).detach();
        }
    }
    log(LogLevel::Info, "main", "stopping rule manager", &[]);
    rules.stop_all();
    drop(notifier_task);
    log(LogLevel::Info, "main", "stopping scrape manager", &[]);
    scrape.stop_all().await;
    drop(http_stop);
    let _ = http_task.await;
    forwarding_done().await;
    // Every acknowledged append is in the WAL; the shards close once their queues drain.
    router.close();
}

/// `--web.external-url`, or Prometheus's default: `http://<hostname>:<port>/`.
fn external_url(flags: &Flags, addr: SocketAddr) -> String {
    if !flags.web_external_url.is_empty() {
        return flags.web_external_url.trim_end_matches('/').to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("http://{host}:{}", addr.port())
}

/// How often the router looks whether another shard has rebuilt its head.
const OPENED_POLL: Duration = Duration::from_millis(2);

/// Connects to every shard once its head is rebuilt; `None` when the process is asked to
/// stop first.
///
/// glommio's channel `connect` does not park while the peer has not connected: the executor
/// polls it in a loop. Awaited while a shard replays, it took half of that shard's core
/// (the router shares shard 0's), so the router connects to a shard only once the shard
/// says it is open (and connecting on its side), waiting on a timer until then.
async fn connect_shards(
    shards: Vec<ShardChannels>,
    stopping: &impl Fn() -> bool,
) -> Option<Vec<Rc<ShardLink>>> {
    let mut pending: Vec<(usize, ShardChannels)> = shards.into_iter().enumerate().collect();
    let mut links: Vec<Option<Rc<ShardLink>>> = (0..pending.len()).map(|_| None).collect();
    while !pending.is_empty() {
        if stopping() {
            return None;
        }
        let Some(pos) = pending.iter().position(|(_, ch)| ch.opened.get().is_some()) else {
            glommio::timer::sleep(OPENED_POLL).await;
            continue;
        };
        let (i, ch) = pending.swap_remove(pos);
        // Set before `opened`, so always there. A signal of our own instead would never
        // match what the shard tags its answers with once it changed: answers would be
        // asked for every time, never wrong.
        let labels = ch
            .labels
            .get()
            .cloned()
            .unwrap_or_else(LabelGeneration::new);
        let connect = async {
            let requests = ch.requests.connect().await;
            let replies = ch.replies.connect().await;
            Some((requests, replies))
        };
        let cancelled = async {
            while !stopping() {
                glommio::timer::sleep(CONTROL_POLL).await;
            }
            None
        };
        let (requests, replies) = future::or(connect, cancelled).await?;
        links[i] = Some(ShardLink::start(i, requests, replies, labels));
    }
    links.into_iter().collect()
}

/// The active-query tracker on `<data>/queries.active`, logging what the last run left
/// unfinished there (queries running when it crashed), as Prometheus does at start.
fn open_query_tracker(flags: &Flags) -> ActiveQueryTracker {
    let (tracker, report) =
        ActiveQueryTracker::open(&flags.storage_path, flags.query_max_concurrency);
    match report {
        Ok(Some(queries)) => log(
            LogLevel::Warn,
            "query tracker",
            "these queries didn't finish in promcore's last run",
            &[("queries", &queries)],
        ),
        Ok(None) => {}
        Err(e) => log(
            LogLevel::Error,
            "query tracker",
            "queries.active cannot be used; queries are not recorded for crash reports",
            &[("err", &e)],
        ),
    }
    tracker
}
