//! `loadgen serve`: the simulated targets on glommio, one pinned executor per core, each
//! owning the targets `i % executors == e`, their listeners and their connections.
//!
//! A connection serves keep-alive requests one after another; a scrape advances its
//! target's simulated time, writes the values into the body's slots and copies (or gzips)
//! the body into the connection's reused buffer, so no await ever sees a body half-written
//! by another scrape. The main thread only waits for signals and reports CPU use; it exits
//! the process on SIGINT/SIGTERM after a final report. This module must never block an
//! executor or allocate per scrape.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorBuilder, Placement};
use thiserror::Error;

use crate::body::{Format, GzipPlan, Layout, ShapeConfig, ShapeError, Target};
use crate::cpu;
use crate::file_sd::{self, FileSdError};
use crate::flags::ServeFlags;
use crate::http::{self, Request, Route, Status, MAX_HEAD_BYTES};
use crate::log;

/// glommio's io_uring rings need this much locked memory per executor.
const MEMLOCK_PER_EXECUTOR: u64 = 512 * 1024;
/// A kept-alive connection idle this long is closed; scrape intervals are shorter.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// A scraper that does not take a body within this time is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Scrapes closer together than this serve the same values (and skip the slot writes).
const MIN_ADVANCE: Duration = Duration::from_millis(1);

#[derive(Debug, Error)]
pub enum ServeError {
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error("locked-memory limit is {have_kib} KiB; {executors} glommio executors need {need_kib} KiB: raise `ulimit -l` (LimitMEMLOCK), or lower --cores")]
    Memlock {
        have_kib: u64,
        need_kib: u64,
        executors: usize,
    },
    #[error("cannot listen on {addr}: {source}; is another loadgen or exporter there? choose another --base-port/--port/--listen")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting executor {executor}: {reason}")]
    Executor { executor: usize, reason: String },
    #[error("executor {0} stopped before its targets were listening")]
    ExecutorLost(usize),
    #[error(transparent)]
    FileSd(#[from] FileSdError),
    #[error("signal setup: {0}")]
    Signals(std::io::Error),
}

/// Counters every executor adds to, once per scrape, and the main thread reports.
#[derive(Debug, Default)]
pub struct Stats {
    pub scrapes: AtomicU64,
    pub bytes_out: AtomicU64,
    pub connections: AtomicU64,
    pub bad_requests: AtomicU64,
}

/// What the connections of one executor share.
struct Executor {
    /// Indexed by `Format as usize`: one plan per template, shared by every target.
    gzip: Arc<[GzipPlan; 2]>,
    stats: Arc<Stats>,
    offer_openmetrics: bool,
}

struct SimTarget {
    target: Target,
    last_advance: Instant,
}

pub fn run(flags: &ServeFlags) -> Result<(), ServeError> {
    let layout = Layout::new(ShapeConfig {
        series: flags.series_per_target,
        labels: flags.labels,
        label_values: flags.label_values,
    })?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let executors = flags.cores.unwrap_or(cores).min(flags.targets);
    check_memlock(executors)?;
    raise_fd_limit(flags.targets);
    let signals = block_signals()?;

    let stats = Arc::new(Stats::default());
    let started = Instant::now();
    // The plans' literal codes are fitted to a target like the ones served.
    let mut sample = Target::new(layout.clone(), flags.seed, 0.0);
    let gzip = Arc::new(
        [Format::Text, Format::OpenMetrics]
            .map(|f| layout.gzip_plan(f, sample.body(f), flags.gzip_level)),
    );
    drop(sample);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<Vec<(usize, SocketAddr)>, ServeError>>();
    let mut handles = Vec::with_capacity(executors);
    for e in 0..executors {
        let mine: Vec<(usize, SocketAddr)> = (e..flags.targets)
            .step_by(executors)
            .map(|i| (i, flags.target_addr(i)))
            .collect();
        let layout = layout.clone();
        let ready = ready_tx.clone();
        let shared = Executor {
            gzip: gzip.clone(),
            stats: stats.clone(),
            offer_openmetrics: flags.offer_openmetrics,
        };
        let (seed, churn) = (flags.seed, flags.churn_per_minute);
        let placement = if flags.pin {
            Placement::Fixed(e % cores)
        } else {
            Placement::Unbound
        };
        let builder = LocalExecutorBuilder::new(placement).name(&format!("loadgen-{e}"));
        let handle = builder.spawn(move || async move {
            executor_main(mine, layout, seed, churn, shared, ready).await
        });
        match handle {
            Ok(h) => handles.push(h),
            Err(err) => {
                return Err(ServeError::Executor {
                    executor: e,
                    reason: err.to_string(),
                })
            }
        }
    }
    drop(ready_tx);
    let mut bound = Vec::with_capacity(flags.targets);
    for e in 0..executors {
        match ready_rx.recv() {
            Ok(Ok(addrs)) => bound.extend(addrs),
            Ok(Err(err)) => return Err(err),
            Err(_) => return Err(ServeError::ExecutorLost(e)),
        }
    }
    bound.sort_unstable_by_key(|(i, _)| *i);
    let addrs: Vec<SocketAddr> = bound.into_iter().map(|(_, a)| a).collect();
    file_sd::write(&flags.sd_file, &addrs)?;
    log::info(
        "targets ready",
        &[
            ("targets", &addrs.len()),
            ("seriesPerTarget", &flags.series_per_target),
            ("first", &addrs[0]),
            ("last", &addrs[addrs.len() - 1]),
            ("executors", &executors),
            ("sdFile", &flags.sd_file.display()),
            ("startup", &format!("{:?}", started.elapsed())),
        ],
    );

    let mut reporter = Reporter::new(stats, started);
    let sig = loop {
        match wait_for_signal(&signals, flags.report_every) {
            Some(sig) => break sig,
            None => reporter.report("cpu"),
        }
    };
    log::info("received signal, exiting", &[("signal", &sig)]);
    reporter.report_total();
    // The executors own only sockets and memory; the OS takes both back.
    std::process::exit(0)
}

async fn executor_main(
    targets: Vec<(usize, SocketAddr)>,
    layout: Arc<Layout>,
    seed: u64,
    churn_per_minute: f64,
    shared: Executor,
    ready: mpsc::Sender<Result<Vec<(usize, SocketAddr)>, ServeError>>,
) {
    let shared = Rc::new(shared);
    let mut listeners = Vec::with_capacity(targets.len());
    let mut bound = Vec::with_capacity(targets.len());
    for (i, addr) in targets {
        let listener = match TcpListener::bind(addr).and_then(|l| Ok((l.local_addr()?, l))) {
            Ok((local, l)) => {
                bound.push((i, local));
                l
            }
            Err(source) => {
                let source = source.into();
                let _ = ready.send(Err(ServeError::Bind { addr, source }));
                return;
            }
        };
        let target = Target::new(
            layout.clone(),
            seed ^ crate::rng::mix(i as u64),
            churn_per_minute,
        );
        let sim = Rc::new(RefCell::new(SimTarget {
            target,
            last_advance: Instant::now(),
        }));
        listeners.push((listener, sim));
    }
    if ready.send(Ok(bound)).is_err() {
        return;
    }
    let mut accept_loops = Vec::with_capacity(listeners.len());
    for (listener, sim) in listeners {
        let shared = shared.clone();
        accept_loops.push(glommio::spawn_local(accept_loop(listener, sim, shared)));
    }
    for task in accept_loops {
        task.await;
    }
}

async fn accept_loop(listener: TcpListener, sim: Rc<RefCell<SimTarget>>, shared: Rc<Executor>) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                shared.stats.connections.fetch_add(1, Ordering::Relaxed);
                glommio::spawn_local(serve_connection(stream, sim.clone(), shared.clone()))
                    .detach();
            }
            Err(e) => {
                // Out of file descriptors or a transient accept error: back off instead of
                // spinning, and keep the target alive.
                log::error("accept failed", &[("err", &e)]);
                glommio::timer::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    sim: Rc<RefCell<SimTarget>>,
    shared: Rc<Executor>,
) {
    // A failed option leaves the defaults, which still serve correctly.
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let mut input = vec![0u8; 4096];
    let mut filled = 0;
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    loop {
        loop {
            out.clear();
            let (consumed, keep_alive) = match http::parse_request(&input[..filled]) {
                Ok(Some(req)) => {
                    respond(&req, &sim, &shared, &mut out, &mut scratch);
                    (req.len, req.keep_alive)
                }
                Ok(None) => break,
                Err(e) => {
                    shared.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                    let msg = e.to_string();
                    http::write_head(&mut out, e.status(), None, msg.len() + 1, false, false);
                    out.extend_from_slice(msg.as_bytes());
                    out.push(b'\n');
                    (filled, false)
                }
            };
            if stream.write_all(&out).await.is_err() {
                return;
            }
            input.copy_within(consumed..filled, 0);
            filled -= consumed;
            if !keep_alive {
                let _ = stream.close().await;
                return;
            }
        }
        if filled == input.len() {
            // parse_request refuses heads at MAX_HEAD_BYTES, so this stops growing there.
            input.resize(MAX_HEAD_BYTES, 0);
        }
        match stream.read(&mut input[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
    }
}

/// Appends the whole response to `out`. Synchronous, so no other scrape of this target can
/// run between advancing its values and copying its body.
fn respond(
    req: &Request,
    sim: &RefCell<SimTarget>,
    shared: &Executor,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) {
    let (status, text) = match req.route {
        Route::Metrics => {
            let mut sim = sim.borrow_mut();
            let now = Instant::now();
            let dt = now.saturating_duration_since(sim.last_advance);
            if dt >= MIN_ADVANCE {
                sim.target.advance(dt.as_secs_f64());
                sim.last_advance = now;
            }
            let format = if shared.offer_openmetrics && req.wants_openmetrics {
                Format::OpenMetrics
            } else {
                Format::Text
            };
            let body = sim.target.body(format);
            let payload = if req.gzip {
                scratch.clear();
                shared.gzip[format as usize].encode(body, scratch);
                &scratch[..]
            } else {
                body
            };
            http::write_head(
                out,
                Status::Ok,
                Some(format),
                payload.len(),
                req.gzip,
                req.keep_alive,
            );
            if !req.head_only {
                out.extend_from_slice(payload);
            }
            shared.stats.scrapes.fetch_add(1, Ordering::Relaxed);
            shared
                .stats
                .bytes_out
                .fetch_add(out.len() as u64, Ordering::Relaxed);
            return;
        }
        Route::NotFound => (
            Status::NotFound,
            &b"not found: loadgen serves /metrics\n"[..],
        ),
        Route::MethodNotAllowed => (Status::MethodNotAllowed, &b"only GET and HEAD\n"[..]),
    };
    http::write_head(out, status, None, text.len(), false, req.keep_alive);
    if !req.head_only {
        out.extend_from_slice(text);
    }
}

/// Periodic CPU reports and the final one.
struct Reporter {
    stats: Arc<Stats>,
    started: Instant,
    start_usage: cpu::Usage,
    last: (Instant, cpu::Usage, u64),
}

impl Reporter {
    fn new(stats: Arc<Stats>, started: Instant) -> Reporter {
        let usage = cpu::read().unwrap_or_default();
        Reporter {
            stats,
            started,
            start_usage: usage,
            last: (Instant::now(), usage, 0),
        }
    }

    fn report(&mut self, msg: &str) {
        let now = Instant::now();
        let usage = match cpu::read() {
            Ok(u) => u,
            Err(e) => {
                log::error("cannot read CPU use", &[("err", &e)]);
                return;
            }
        };
        let scrapes = self.stats.scrapes.load(Ordering::Relaxed);
        let wall = now - self.last.0;
        let rate = (scrapes - self.last.2) as f64 / wall.as_secs_f64().max(1e-9);
        log::info(
            msg,
            &[
                (
                    "cpuPercent",
                    &format!("{:.1}", cpu::percent(&self.last.1, &usage, wall)),
                ),
                ("cpuSeconds", &format!("{:.2}", usage.cpu().as_secs_f64())),
                ("scrapesPerSecond", &format!("{rate:.1}")),
                ("scrapes", &scrapes),
                ("rssBytes", &usage.rss_bytes),
            ],
        );
        self.last = (now, usage, scrapes);
    }

    fn report_total(&mut self) {
        let usage = cpu::read().unwrap_or(self.last.1);
        let wall = self.started.elapsed();
        let scrapes = self.stats.scrapes.load(Ordering::Relaxed);
        let cpu_used = usage.cpu().saturating_sub(self.start_usage.cpu());
        let per_scrape_us = cpu_used.as_secs_f64() * 1e6 / scrapes.max(1) as f64;
        log::info(
            "total",
            &[
                ("wallSeconds", &format!("{:.1}", wall.as_secs_f64())),
                ("cpuSeconds", &format!("{:.2}", usage.cpu().as_secs_f64())),
                ("userSeconds", &format!("{:.2}", usage.user.as_secs_f64())),
                (
                    "systemSeconds",
                    &format!("{:.2}", usage.system.as_secs_f64()),
                ),
                (
                    "cpuPercent",
                    &format!("{:.1}", cpu::percent(&self.start_usage, &usage, wall)),
                ),
                ("scrapes", &scrapes),
                ("cpuMicrosPerScrape", &format!("{per_scrape_us:.0}")),
                ("bytesOut", &self.stats.bytes_out.load(Ordering::Relaxed)),
                (
                    "connections",
                    &self.stats.connections.load(Ordering::Relaxed),
                ),
                (
                    "badRequests",
                    &self.stats.bad_requests.load(Ordering::Relaxed),
                ),
                ("rssBytes", &usage.rss_bytes),
            ],
        );
    }
}

fn check_memlock(executors: usize) -> Result<(), ServeError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return Ok(());
    }
    let need = MEMLOCK_PER_EXECUTOR * executors as u64;
    if lim.rlim_cur != libc::RLIM_INFINITY && lim.rlim_cur < need {
        return Err(ServeError::Memlock {
            have_kib: lim.rlim_cur / 1024,
            need_kib: need / 1024,
            executors,
        });
    }
    Ok(())
}

/// Every target holds a listener and a connection per scraper: raise the soft descriptor
/// limit to the hard one, and say so when even that looks short.
fn raise_fd_limit(targets: usize) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    // One listener plus three scrapers' connections per target, and some slack.
    let want = targets as u64 * 4 + 64;
    if lim.rlim_cur != libc::RLIM_INFINITY && lim.rlim_cur < want {
        log::error(
            "file descriptor limit may be too low for three scrapers per target; raise `ulimit -n`",
            &[("limit", &lim.rlim_cur), ("want", &want)],
        );
    }
}

fn block_signals() -> Result<libc::sigset_t, ServeError> {
    // SAFETY: plain libc signal-set manipulation on a local set; the mask is set before any
    // executor thread exists, so every one inherits it and only sigtimedwait sees signals.
    unsafe {
        // A shell starting loadgen in the background sets SIGINT to "ignore", and an ignored
        // signal is discarded even while blocked: restore the default so it is queued for
        // sigtimedwait (blocked everywhere, the default action never runs).
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(ServeError::Signals(std::io::Error::from_raw_os_error(rc)));
        }
        Ok(set)
    }
}

/// Waits up to `timeout` for SIGINT or SIGTERM; `None` when the time ran out.
fn wait_for_signal(set: &libc::sigset_t, timeout: Duration) -> Option<&'static str> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: sigtimedwait reads the set and the timespec; the info pointer may be null.
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    match sig {
        libc::SIGINT => Some("SIGINT"),
        libc::SIGTERM => Some("SIGTERM"),
        _ => None,
    }
}
