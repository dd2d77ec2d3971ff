//! One target's scrape loop: waits its offset, then every interval fetches the target, turns
//! the body into per-shard batches (`append`), sends them to the owning shards and waits for
//! their acknowledgement, and records how it went for the API and `/metrics`.
//!
//! The loop owns the target's HTTP connection and scrape cache; nothing else touches them.
//! Its byte buffers are lent for each scrape (`scrape_buffers`). It never blocks the
//! executor: the fetch is bounded by `scrape_timeout`, and a slow shard slows only this
//! loop's next send (back-pressure), never another target.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_lite::future;
use glommio::channels::local_channel::LocalReceiver;
use shards::head::AppendOutcome;

use crate::config::target::Target;
use crate::router::Router;
use crate::scrape::append::{AppendError, BodyReport, Report, ScrapeAppender, ShardBatches};
use crate::scrape::client::{ScrapeClient, ScrapeError, ScrapeRequest};
use crate::scrape::metrics::ScrapeMetrics;
use crate::scrape::parser::format_for_content_type;
use crate::scrape::scrape_buffers::Lent;
use crate::scrape::target_status::{Health, TargetStatus};
use crate::tls::TlsClient;

/// What Prometheus 2.x sends: OpenMetrics preferred, text 0.0.4 accepted.
pub const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

const USER_AGENT: &str = concat!("promcore/", env!("CARGO_PKG_VERSION"));

/// How a loop was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Keep running.
    Run,
    /// The target is gone: write staleness markers at the next tick, then end.
    TargetGone,
    /// Replaced by a new loop for the same target (reload) or the server is shutting down:
    /// end without markers.
    Quiet,
}

/// The fixed part of a loop's scrapes: from the target and its job.
#[derive(Debug, Clone)]
pub struct ScrapeSettings {
    pub target: Target,
    pub body_size_limit: u64,
    pub accept_gzip: bool,
    /// The full `Authorization` header value, if the job has credentials.
    pub authorization: Option<String>,
    /// The job's loaded `tls_config` for an `https` target; `Err` says why it could not be
    /// loaded (each scrape then fails with it).
    pub tls: Result<Option<TlsClient>, String>,
    /// Decides the loop's phase within the interval; stable for a target.
    pub offset_seed: u64,
}

pub struct ScrapeLoop {
    settings: ScrapeSettings,
    path_and_query: String,
    appender: ScrapeAppender,
    client: ScrapeClient,
    batches: ShardBatches,
    /// Samples each shard's batch held last scrape: the next batch is allocated for as many
    /// when the scrape starts instead of being kept allocated in between.
    last_samples: Vec<usize>,
    router: Rc<Router>,
    status: Rc<RefCell<TargetStatus>>,
    metrics: Rc<ScrapeMetrics>,
    stop: Rc<Cell<StopMode>>,
    wake: LocalReceiver<()>,
}

impl ScrapeLoop {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: ScrapeSettings,
        appender: ScrapeAppender,
        router: Rc<Router>,
        status: Rc<RefCell<TargetStatus>>,
        metrics: Rc<ScrapeMetrics>,
        stop: Rc<Cell<StopMode>>,
        wake: LocalReceiver<()>,
    ) -> Self {
        let path_and_query = settings.target.path_and_query();
        let shards = router.shards();
        ScrapeLoop {
            settings,
            path_and_query,
            appender,
            client: ScrapeClient::new(),
            batches: ShardBatches::new(shards),
            last_samples: vec![0; shards],
            router,
            status,
            metrics,
            stop,
            wake,
        }
    }

    /// Runs until stopped; returns the appender (its cache) for a successor loop.
    pub async fn run(mut self) -> ScrapeAppender {
        let interval = self.settings.target.interval.as_std();
        let mut next = first_tick(interval, self.settings.offset_seed);
        let mut last_start: Option<Instant> = None;
        loop {
            if !self.sleep_until(next).await {
                break;
            }
            let start = Instant::now();
            if let Some(prev) = last_start {
                self.metrics
                    .observe_interval(interval, start.duration_since(prev).as_secs_f64());
            }
            last_start = Some(start);
            // Boxed: the state of a scrape in flight (the exchange's futures, ~4 KiB) is
            // needed only while it runs, not in every idle target's task between scrapes.
            Box::pin(self.scrape_once(start)).await;
            // Skip ticks missed while scraping took longer than the interval.
            next += interval;
            let now = Instant::now();
            while next <= now {
                next += interval;
            }
        }
        if self.stop.get() == StopMode::TargetGone {
            // As Prometheus: the markers carry the timestamp of the first tick not scraped.
            let t = unix_ms(SystemTime::now() + next.saturating_duration_since(Instant::now()));
            self.appender.append_end_of_run(t, &mut self.batches);
            // Nothing to tell anyone if it fails: the target is gone. Boxed as the scrapes are.
            let _ = Box::pin(self.send_batches()).await;
        }
        self.appender
    }

    /// Sleeps until `at`; `false` when asked to stop first.
    async fn sleep_until(&self, at: Instant) -> bool {
        if self.stop.get() != StopMode::Run {
            return false;
        }
        let wait = at.saturating_duration_since(Instant::now());
        let woken = future::or(
            async {
                glommio::timer::sleep(wait).await;
                false
            },
            async {
                let _ = self.wake.recv().await;
                true
            },
        )
        .await;
        !woken && self.stop.get() == StopMode::Run
    }

    async fn scrape_once(&mut self, start: Instant) {
        let t = unix_ms(SystemTime::now());
        let target = &self.settings.target;
        let tls = match (target.scheme.as_str(), &self.settings.tls) {
            ("http", _) => Ok(None),
            ("https", Ok(tls)) => Ok(tls.as_ref()),
            ("https", Err(e)) => Err(e.clone()),
            (other, _) => Err(format!("unsupported scheme {other:?}")),
        };
        let result = match tls {
            Err(e) => Err(e),
            Ok(tls) => {
                let req = ScrapeRequest {
                    address: &target.address,
                    path_and_query: &self.path_and_query,
                    accept: ACCEPT,
                    timeout: target.timeout.as_std(),
                    body_size_limit: self.settings.body_size_limit,
                    accept_gzip: self.settings.accept_gzip,
                    authorization: self.settings.authorization.as_deref(),
                    user_agent: USER_AGENT,
                    tls,
                };
                let mut bufs = Lent::take();
                match self.client.get(&req, &mut bufs).await {
                    Ok(resp) => {
                        let format = format_for_content_type(&resp.content_type);
                        for (batch, &n) in self.batches.batches.iter_mut().zip(&self.last_samples) {
                            batch.samples.reserve(n);
                        }
                        self.appender
                            .append_body(&bufs.body, format, t, &mut self.batches)
                            .map_err(|e: AppendError| {
                                if e == AppendError::SampleLimit {
                                    self.metrics.exceeded_sample_limit.inc();
                                }
                                e.to_string()
                            })
                    }
                    Err(e) => {
                        if matches!(e, ScrapeError::BodySizeLimit) {
                            self.metrics.exceeded_body_size_limit.inc();
                        }
                        Err(e.to_string())
                    }
                }
            }
        };
        let (up, body, error) = match result {
            Ok(body) => (true, body, String::new()),
            Err(e) => {
                self.appender.append_failure(t, &mut self.batches);
                (false, BodyReport::default(), e)
            }
        };
        let duration = start.elapsed().as_secs_f64();
        let report = Report {
            up,
            duration_seconds: duration,
            body,
        };
        self.appender.append_report(t, &report, &mut self.batches);
        let stored = self.send_batches().await;
        let mut status = self.status.borrow_mut();
        status.last_scrape = Some(UNIX_EPOCH + Duration::from_millis(t.max(0) as u64));
        status.last_scrape_duration = duration;
        status.cached_series = self.appender.cache_len();
        match (error.is_empty(), stored) {
            (true, Ok(())) => {
                status.health = Health::Up;
                status.last_error.clear();
            }
            (true, Err(e)) => {
                status.health = Health::Down;
                status.last_error = e;
            }
            (false, _) => {
                status.health = Health::Down;
                status.last_error = error;
            }
        }
        self.metrics.scrapes.inc();
    }

    /// Sends every non-empty batch, waits for all acknowledgements and records new refs.
    async fn send_batches(&mut self) -> Result<(), String> {
        let shards = self.batches.shards();
        let mut pending = Vec::with_capacity(shards);
        let mut error = None;
        for shard in 0..shards {
            let batch = &mut self.batches.batches[shard];
            if batch.samples.is_empty() && batch.new_series.is_empty() {
                continue;
            }
            self.last_samples[shard] = batch.samples.len();
            let batch = std::mem::take(batch);
            match self.router.send_append(shard, batch).await {
                Ok(p) => pending.push((shard, p)),
                Err(e) => {
                    error.get_or_insert(e.to_string());
                }
            }
        }
        let mut outcomes: Vec<Option<AppendOutcome>> = vec![None; shards];
        for (shard, p) in pending {
            match Router::appended(shard, p).await {
                Ok(o) => {
                    self.metrics.record_outcome(&o);
                    outcomes[shard] = Some(o);
                }
                Err(e) => {
                    error.get_or_insert(e.to_string());
                }
            }
        }
        self.appender.commit(&mut self.batches, &outcomes);
        error.map_or(Ok(()), Err)
    }
}

/// Slots per interval that phases are rounded down to, while a slot is at most
/// `MAX_PHASE_SLOT` long.
const PHASE_SLOTS: u64 = 20;
/// Phases are rounded down to slots of at most this long.
const MAX_PHASE_SLOT: Duration = Duration::from_millis(500);

/// A target's phase within the interval, from its seed. Targets still spread over
/// `PHASE_SLOTS` slots per interval, but those that share a slot start on one executor
/// wake-up instead of one each, and their responses arrive while the router is busy with
/// the slot's others instead of each waking it: with thousands of targets the wake-ups cost
/// more CPU than the scrapes' work.
fn scrape_phase(interval_ns: u64, seed: u64) -> u64 {
    let slot = (interval_ns / PHASE_SLOTS).clamp(1, MAX_PHASE_SLOT.as_nanos() as u64);
    seed % interval_ns / slot * slot
}

/// The first scrape: the next instant whose phase within `interval` is this target's offset,
/// so that targets spread over the interval and keep their phase across restarts.
fn first_tick(interval: Duration, seed: u64) -> Instant {
    let interval_ns = interval.as_nanos().max(1) as u64;
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let base = interval_ns - now_ns % interval_ns;
    let offset = scrape_phase(interval_ns, seed);
    let mut next = base + offset;
    if next > interval_ns {
        next -= interval_ns;
    }
    Instant::now() + Duration::from_nanos(next)
}

pub fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn returned_size<A, R>(_: fn(A) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Every target's task holds its loop's future for the target's life, so a scrape's
    /// state must not be part of it (it was: 5,296 bytes, a 6 KiB block a target; 2,408
    /// without it, mostly the loop itself and its sleep).
    #[test]
    fn an_idle_loops_task_holds_no_scrape_state() {
        let task = returned_size(ScrapeLoop::run);
        let parts = [
            ("ScrapeLoop", std::mem::size_of::<ScrapeLoop>()),
            ("ScrapeAppender", std::mem::size_of::<ScrapeAppender>()),
            ("ScrapeClient", std::mem::size_of::<ScrapeClient>()),
            ("ScrapeSettings", std::mem::size_of::<ScrapeSettings>()),
            ("TargetStatus", std::mem::size_of::<TargetStatus>()),
        ];
        eprintln!("ScrapeLoop::run future: {task} B; {parts:?}");
        assert!(task <= 3072, "{task} B");
    }

    #[test]
    fn phases_fall_in_slots_within_the_interval() {
        let ten_s = 10_000_000_000u64;
        for seed in [
            0u64,
            1,
            99_999_999,
            100_000_001,
            u64::MAX,
            0x9e37_79b9_7f4a_7c15,
        ] {
            let p = scrape_phase(ten_s, seed);
            assert!(p < ten_s);
            assert_eq!(p % 500_000_000, 0, "10 s: 500 ms slots");
            assert_eq!(p, scrape_phase(ten_s, seed), "stable");
        }
        // Short intervals get a twentieth of the interval, long ones 500 ms; tiny ones still
        // work.
        assert_eq!(scrape_phase(1_000_000_000, 123_456_789), 100_000_000);
        assert_eq!(scrape_phase(60_000_000_000, 1_234_567_890), 1_000_000_000);
        assert_eq!(scrape_phase(50, 1234), 1234 % 50);
        // Different seeds spread over the slots.
        let slots: std::collections::HashSet<u64> = (0..1000u64)
            .map(|i| scrape_phase(ten_s, i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        assert_eq!(slots.len(), 20);
    }
}
