//! Start-up and shutdown of the process: checks that name their fix, the data directory,
//! one pinned executor per shard (heads rebuilt in parallel), and the signal wait.
//!
//! Signals are blocked in every thread before any executor starts and taken synchronously
//! by the main thread with `sigwait`, so no handler runs inside an executor.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use shards::data_dir::DataDir;
use shards::shard::{OpenProgress, Shard, ShardOptions};
use shards::wal::DmaFs;
use thiserror::Error;

use crate::flags::{Flags, LogLevel};
use crate::log::log;

/// glommio's io_uring rings need this much locked memory per executor.
const MEMLOCK_PER_EXECUTOR: u64 = 512 * 1024;

#[derive(Debug, Error)]
pub enum StartupError {
    #[error("loading config file {path}: {source}")]
    Config {
        path: String,
        source: crate::config::ConfigError,
    },
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
    // Refused with the field's path before anything is opened. Scraping with it comes next.
    let config =
        crate::config::Config::load(&flags.config_file).map_err(|source| StartupError::Config {
            path: flags.config_file.display().to_string(),
            source,
        })?;
    log(
        LogLevel::Info,
        "main",
        "configuration loaded",
        &[
            ("file", &flags.config_file.display()),
            ("scrapeConfigs", &config.scrape_configs.len()),
        ],
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards = flags
        .shards
        .or_else(|| DataDir::recorded_shards(&flags.storage_path))
        .unwrap_or(cores);
    check_memlock(shards)?;
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
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<usize, StartupError>>();
    let mut handles = Vec::with_capacity(shards);
    for i in 0..shards {
        let dir = data.shard_dir(i);
        let shard_stop = stop.clone();
        let ready = ready_tx.clone();
        let opts = ShardOptions {
            snapshot_on_shutdown: flags.snapshot_on_shutdown,
            ..Default::default()
        };
        let builder =
            LocalExecutorBuilder::new(Placement::Fixed(i % cores)).name(&format!("shard-{i:03}"));
        let handle = builder
            .spawn(move || async move { shard_main(i, &dir, opts, shard_stop, ready).await });
        match handle {
            Ok(h) => handles.push(h),
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                return Err(StartupError::Executor {
                    shard: i,
                    reason: e.to_string(),
                });
            }
        }
    }
    drop(ready_tx);
    let mut failure = None;
    for _ in 0..shards {
        match ready_rx.recv() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(_) => break,
        }
    }
    if failure.is_none() {
        log(
            LogLevel::Info,
            "main",
            "server is ready",
            &[("startup", &format!("{:?}", started.elapsed()))],
        );
        let sig = wait_for_signal(&signals);
        log(
            LogLevel::Info,
            "main",
            "received signal, shutting down",
            &[("signal", &sig)],
        );
    }
    stop.store(true, Ordering::SeqCst);
    for (i, h) in handles.into_iter().enumerate() {
        if let Err(e) = h.join() {
            failure.get_or_insert(StartupError::Shard {
                shard: i,
                reason: e.to_string(),
            });
        }
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

async fn shard_main(
    i: usize,
    dir: &Path,
    opts: ShardOptions,
    stop: Arc<AtomicBool>,
    ready: mpsc::Sender<Result<usize, StartupError>>,
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
    let shard = match Shard::open(dir, opts, DmaFs, progress).await {
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
            let _ = ready.send(Ok(i));
            shard
        }
        Err(e) => {
            let _ = ready.send(Err(StartupError::Shard {
                shard: i,
                reason: e.to_string(),
            }));
            return;
        }
    };
    while !stop.load(Ordering::SeqCst) {
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
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
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(StartupError::Signals(std::io::Error::from_raw_os_error(rc)));
        }
        Ok(set)
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> &'static str {
    let mut sig: libc::c_int = 0;
    // SAFETY: sigwait reads the set and writes the signal number.
    let rc = unsafe { libc::sigwait(set, &mut sig) };
    match (rc, sig) {
        (0, libc::SIGINT) => "SIGINT",
        (0, libc::SIGTERM) => "SIGTERM",
        _ => "unknown",
    }
}
