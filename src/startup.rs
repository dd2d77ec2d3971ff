//! Start-up and shutdown of the process: checks that name their fix, the data directory,
//! the HTTP listeners (one per core, bound here in core order, see `http::listeners`), one
//! pinned executor per shard (heads rebuilt in parallel), the router's, one front per core
//! besides the router's (`front`), and the signal wait.
//!
//! Signals are blocked in every thread before any executor starts and taken synchronously
//! by the main thread with `sigtimedwait`, so no handler runs inside an executor; the main
//! thread passes them on to the router executor through `Control`.

use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use glommio::{LocalExecutorBuilder, Placement};
use shards::data_dir::DataDir;
use shards::label_generation::LabelGeneration;
use shards::retention::RetentionOptions;
use shards::shard::{OpenProgress, Shard, ShardOptions};
use shards::wal::PageCacheFs;
use thiserror::Error;

use crate::api::front::FrontShared;
use crate::api::handler::api_policy;
use crate::api::http_metrics::HttpMetrics;
use crate::flags::{Flags, LogLevel};
use crate::front::{run_front, FrontStart};
use crate::http::forward;
use crate::http::listeners::bind_listeners_patiently;
use crate::http::{ConnectionSlots, ServerConfig};
use crate::log::log;
use crate::router::protocol::{Envelope, Reply};
use crate::router::shard_service::ShardService;
use crate::server::{load_config, run_router, Control, RouterStart, ShardChannels};

/// Requests queued per shard before senders wait (back-pressure), and replies queued back.
const SHARD_QUEUE: usize = 256;

/// How often the main thread looks for a signal, a quit request or a failure.
const CONTROL_POLL: Duration = Duration::from_millis(100);

/// glommio's io_uring rings need this much locked memory per executor.
const MEMLOCK_PER_EXECUTOR: u64 = 512 * 1024;

/// The buffer arena each executor registers with its ring, glommio's smallest. It only
/// serves O_DIRECT file I/O (`DmaFile`), which the server does not do: the WAL is written
/// through the page cache (`PageCacheFs`), blocks and chunks_head with plain files. At
/// glommio's default of 10 MiB, registering (pinning, so faulting in and zeroing) the
/// arenas cost three executors 30 MiB of RSS and ~7,700 page faults before a shard could
/// start its head rebuild.
/// How long start-up waits for its address to be free (`bind_listeners_patiently`).
const LISTEN_PATIENCE: Duration = Duration::from_secs(2);

const IO_MEMORY_PER_EXECUTOR: usize = 64 * 1024;

/// How long a front executor polls before it sleeps once it has nothing to do. A forwarded
/// request's answer comes back from the router within ~100 us; parked, the front's core
/// halted meanwhile and waking it cost ~30 us more per request (BENCHMARKS.md, issue 6,
/// front6). Spins only right after work, never while the server is idle.
const FRONT_SPIN: Duration = Duration::from_micros(100);

#[derive(Debug, Error)]
pub enum StartupError {
    #[error("{0}")]
    Config(String),
    #[error("cannot serve HTTP: {0}")]
    Listen(String),
    #[error(
        "locked-memory limit is {have_kib} KiB but {shards} shard executors need at least {need_kib} KiB: raise it with `ulimit -l {need_kib}` or LimitMEMLOCK= in the systemd unit"
    )]
    Memlock {
        have_kib: u64,
        need_kib: u64,
        shards: usize,
    },
    #[error(transparent)]
    DataDir(#[from] shards::data_dir::DataDirError),
    #[error("shard {shard}: {reason}")]
    Shard { shard: usize, reason: String },
    #[error("cannot start executor for shard {shard}: {reason} (io_uring must be available: Linux >= 5.8, not disabled by kernel.io_uring_disabled or a seccomp profile)")]
    Executor { shard: usize, reason: String },
    #[error("signal setup: {0}")]
    Signals(std::io::Error),
}

pub fn run(flags: &Flags) -> Result<(), StartupError> {
    // Refused with the field's path before anything is opened.
    let loaded = load_config(&flags.config_file).map_err(StartupError::Config)?;
    log(
        LogLevel::Info,
        "main",
        "configuration loaded",
        &[
            ("file", &flags.config_file.display()),
            ("scrapeConfigs", &loaded.config.scrape_configs.len()),
        ],
    );
    let listen = flags
        .listen_address()
        .map_err(|e| StartupError::Config(e.to_string()))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards = flags
        .shards
        .or_else(|| DataDir::recorded_shards(&flags.storage_path))
        .unwrap_or(cores);
    // A listener on every core (the router's on core 0) when there is more than one core:
    // connections are served on the client's core (`front`).
    let fronts = cores.saturating_sub(1);
    // One executor per shard, plus the router's and the fronts'.
    check_memlock(shards + 1 + fronts)?;
    let signals = block_signals()?;

    let data = DataDir::open(&flags.storage_path, shards)?;
    log(
        LogLevel::Info,
        "main",
        "starting promcore",
        &[
            ("version", &env!("CARGO_PKG_VERSION")),
            ("data", &data.path().display()),
            ("shards", &shards),
        ],
    );
    let mut listeners = bind_listeners_patiently(listen, fronts + 1, LISTEN_PATIENCE)
        .map_err(|e| StartupError::Listen(format!("cannot listen on {listen}: {e}")))?
        .into_iter();
    // Core 0's, bound first: the router's.
    let router_listener = listeners
        .next()
        .ok_or_else(|| StartupError::Listen(format!("cannot listen on {listen}")))?;
    let http = http_config(flags);
    let slots = ConnectionSlots::new(http.max_connections);
    let front_shared = FrontShared::new(fronts + 1, Arc::new(HttpMetrics::default()));
    let control = Arc::new(Control::default());
    let (fail_tx, fail_rx) = mpsc::channel::<StartupError>();
    let mut router_ends = Vec::with_capacity(shards);
    let mut handles = Vec::with_capacity(shards + 1);
    let mut failure = None;
    for i in 0..shards {
        let (req_tx, req_rx) = shared_channel::new_bounded::<Envelope>(SHARD_QUEUE);
        let (rep_tx, rep_rx) = shared_channel::new_bounded::<Reply>(SHARD_QUEUE);
        let opened = Arc::new(OnceLock::new());
        let labels = Arc::new(OnceLock::new());
        router_ends.push(ShardChannels {
            requests: req_tx,
            replies: rep_rx,
            opened: opened.clone(),
            labels: labels.clone(),
        });
        let dir = data.shard_dir(i);
        let (control, failures) = (control.clone(), fail_tx.clone());
        let mut opts = ShardOptions {
            snapshot_on_shutdown: flags.snapshot_on_shutdown,
            retention: RetentionOptions {
                time_ms: millis(flags.effective_retention_time()),
                max_bytes: flags.retention_size.bytes(),
            },
            ..Default::default()
        };
        opts.head.chunk_range = millis(flags.min_block_duration);
        opts.compaction.max_block_duration = millis(flags.max_block_duration());
        let builder = LocalExecutorBuilder::new(Placement::Fixed(i % cores))
            .name(&format!("shard-{i:03}"))
            .io_memory(IO_MEMORY_PER_EXECUTOR);
        let spawned = builder.spawn(move || async move {
            let channels = ShardEnds {
                requests: req_rx,
                replies: rep_tx,
                opened,
                labels,
            };
            shard_main(i, &dir, opts, channels, control, failures).await
        });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                failure = Some(StartupError::Executor {
                    shard: i,
                    reason: e.to_string(),
                });
                break;
            }
        }
    }
    let (front_ends, forwarded): (Vec<_>, Vec<_>) = (0..fronts).map(|_| forward::channel()).unzip();
    if failure.is_none() {
        let start = RouterStart {
            flags: flags.clone(),
            config: loaded,
            listener: router_listener,
            http: http.clone(),
            slots: slots.clone(),
            forwarded,
            fronts: front_shared.clone(),
            control: control.clone(),
            shards: router_ends,
            failures: fail_tx.clone(),
        };
        // The router shares shard 0's core: on small machines every core is a shard's.
        let spawned = LocalExecutorBuilder::new(Placement::Fixed(0))
            .name("router")
            .io_memory(IO_MEMORY_PER_EXECUTOR)
            .spawn(move || async move { run_router(start).await });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                failure = Some(StartupError::Executor {
                    shard: shards,
                    reason: e.to_string(),
                })
            }
        }
    }
    // Start-up's ends of the fronts' stop sockets: dropped once the process stops.
    let mut front_stops = Vec::with_capacity(fronts);
    for (i, (ends, listener)) in front_ends.into_iter().zip(listeners).enumerate() {
        if failure.is_some() {
            break;
        }
        let core = i + 1;
        let front_stop = match StdUnixStream::pair() {
            Ok((kept, given)) => {
                front_stops.push(kept);
                given
            }
            Err(e) => {
                failure = Some(StartupError::Executor {
                    shard: shards + core,
                    reason: format!("cannot create the front's stop socket: {e}"),
                });
                break;
            }
        };
        let start = FrontStart {
            core,
            listener,
            http: http.clone(),
            slots: slots.clone(),
            forward: ends,
            shared: front_shared.clone(),
            policy: api_policy(flags),
            stop: front_stop,
        };
        let spawned = LocalExecutorBuilder::new(Placement::Fixed(core))
            .name(&format!("http-{core}"))
            .io_memory(IO_MEMORY_PER_EXECUTOR)
            .spin_before_park(FRONT_SPIN)
            .spawn(move || async move { run_front(start).await });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                failure = Some(StartupError::Executor {
                    shard: shards + core,
                    reason: e.to_string(),
                })
            }
        }
    }
    drop(fail_tx);
    if failure.is_none() {
        failure = wait_for_stop(&signals, &control, &fail_rx);
    }
    control.stop.store(true, Ordering::SeqCst);
    drop(front_stops);
    for (i, h) in handles.into_iter().enumerate() {
        if let Err(e) = h.join() {
            failure.get_or_insert(StartupError::Shard {
                shard: i,
                reason: e.to_string(),
            });
        }
    }
    // A shard that failed while others were closing.
    if let Ok(e) = fail_rx.try_recv() {
        failure.get_or_insert(e);
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if let Err(e) = data.close() {
        log(
            LogLevel::Warn,
            "main",
            "cannot remove lock file",
            &[("err", &e)],
        );
    }
    log(LogLevel::Info, "main", "see you next time", &[]);
    Ok(())
}

/// Waits for SIGTERM/SIGINT, `/-/quit` or a start-up failure; SIGHUP asks for a reload.
fn wait_for_stop(
    signals: &libc::sigset_t,
    control: &Control,
    failures: &mpsc::Receiver<StartupError>,
) -> Option<StartupError> {
    loop {
        match wait_for_signal(signals, CONTROL_POLL) {
            Some(libc::SIGHUP) => {
                log(LogLevel::Info, "main", "received SIGHUP, reloading", &[]);
                control.reload.store(true, Ordering::SeqCst);
            }
            Some(sig @ (libc::SIGINT | libc::SIGTERM)) => {
                let name = if sig == libc::SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                log(
                    LogLevel::Info,
                    "main",
                    "received signal, shutting down",
                    &[("signal", &name)],
                );
                return None;
            }
            _ => {}
        }
        if let Ok(e) = failures.try_recv() {
            return Some(e);
        }
        if control.stop.load(Ordering::SeqCst) {
            log(
                LogLevel::Info,
                "main",
                "shutdown requested via /-/quit",
                &[],
            );
            return None;
        }
    }
}

/// A shard's ends of its link to the router, and what it publishes once open.
struct ShardEnds {
    requests: SharedReceiver<Envelope>,
    replies: SharedSender<Reply>,
    /// Set once the head is rebuilt, just before the shard connects: see `ShardChannels`.
    opened: Arc<OnceLock<u64>>,
    /// Set before `opened`: what the shard publishes for the router's label answers.
    labels: Arc<OnceLock<Arc<LabelGeneration>>>,
}

async fn shard_main(
    i: usize,
    dir: &Path,
    opts: ShardOptions,
    channels: ShardEnds,
    control: Arc<Control>,
    failures: mpsc::Sender<StartupError>,
) {
    let component = format!("shard-{i:03}");
    let progress = |p: OpenProgress| match p {
        OpenProgress::SnapshotLoaded { path, series } => log(
            LogLevel::Info,
            &component,
            "head snapshot loaded",
            &[("dir", &path.display()), ("series", &series)],
        ),
        OpenProgress::SnapshotIgnored { path, reason } => log(
            LogLevel::Warn,
            &component,
            "head snapshot not used",
            &[("dir", &path.display()), ("reason", &reason)],
        ),
        OpenProgress::WalSegment {
            segment,
            last,
            records,
            samples,
        } => log(
            LogLevel::Info,
            &component,
            "WAL segment loaded",
            &[
                ("segment", &segment),
                ("maxSegment", &last),
                ("records", &records),
                ("samples", &samples),
            ],
        ),
        OpenProgress::WalRepaired(r) => log(
            LogLevel::Warn,
            &component,
            "WAL tail was corrupt and has been repaired",
            &[("report", &format!("{r:?}"))],
        ),
    };
    let shard = match Shard::open(dir, opts, PageCacheFs, progress).await {
        Ok((shard, report)) => {
            log(
                LogLevel::Info,
                &component,
                "head rebuilt",
                &[
                    ("series", &shard.head().num_series()),
                    ("walSamples", &report.replay.samples),
                    ("mmappedChunks", &report.replay.mmapped_chunks),
                    ("snapshot", &report.snapshot.is_some()),
                    ("duration", &format!("{:?}", report.duration)),
                ],
            );
            shard
        }
        Err(e) => {
            let _ = failures.send(StartupError::Shard {
                shard: i,
                reason: e.to_string(),
            });
            return;
        }
    };
    let ShardEnds {
        requests: req_rx,
        replies: rep_tx,
        opened,
        labels,
    } = channels;
    let _ = labels.set(shard.label_generation());
    // The router connects its ends only after this (see `server::connect_shards`).
    let _ = opened.set(shard.wal_position().segment);
    let connect = async {
        let requests = req_rx.connect().await;
        let replies = rep_tx.connect().await;
        Some((requests, replies))
    };
    // The router may never connect (it failed to start): stop waiting on shutdown.
    let stopped = async {
        while !control.stop.load(Ordering::SeqCst) {
            glommio::timer::sleep(CONTROL_POLL).await;
        }
        None
    };
    let shard = match futures_lite::future::or(connect, stopped).await {
        Some((requests, replies)) => ShardService::new(shard).serve(requests, replies).await,
        None => shard,
    };
    let closing = Instant::now();
    match shard.close().await {
        Ok(()) => log(
            LogLevel::Info,
            &component,
            "shard closed",
            &[("duration", &format!("{:?}", closing.elapsed()))],
        ),
        Err(e) => log(
            LogLevel::Error,
            &component,
            "closing shard failed",
            &[("err", &e)],
        ),
    }
}

fn millis(d: crate::config::duration::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn check_memlock(shards: usize) -> Result<(), StartupError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return Ok(());
    }
    let need = MEMLOCK_PER_EXECUTOR * shards as u64;
    if lim.rlim_cur != libc::RLIM_INFINITY && lim.rlim_cur < need {
        return Err(StartupError::Memlock {
            have_kib: lim.rlim_cur / 1024,
            need_kib: need / 1024,
            shards,
        });
    }
    Ok(())
}

fn block_signals() -> Result<libc::sigset_t, StartupError> {
    // SAFETY: plain libc signal-set manipulation on a local set; the mask is set before any
    // other thread exists, so every executor thread inherits it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(StartupError::Signals(std::io::Error::from_raw_os_error(rc)));
        }
        Ok(set)
    }
}

/// The next blocked signal of `set` within `timeout`, if any.
fn wait_for_signal(set: &libc::sigset_t, timeout: Duration) -> Option<libc::c_int> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: sigtimedwait reads the set and the timeout; no siginfo is requested.
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}

/// The HTTP server's limits from the flags. `--web.read-timeout` is Go's `ReadTimeout`: it
/// bounds reading a whole request, head included, and (Prometheus sets no `IdleTimeout`) how
/// long a kept-alive connection may wait for its next request.
fn http_config(flags: &Flags) -> ServerConfig {
    let read_timeout = flags.web_read_timeout.as_std();
    let defaults = ServerConfig::default();
    ServerConfig {
        max_connections: flags.web_max_connections,
        read_timeout,
        idle_timeout: read_timeout,
        header_timeout: defaults.header_timeout.min(read_timeout),
        ..defaults
    }
}
