//! The real promcore binary over its data directory: shards placed by series hash and
//! rebuilt in parallel at start-up, a clean SIGTERM shutdown that leaves snapshots and
//! removes the lock, a restart from those snapshots, and the start-up errors that name
//! their fix (directory locked, shard count changed).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use shards::data_dir::DataDir;
use shards::head::{AppendBatch, BatchSample, SeriesKey};
use shards::labels::{shard_for, Labels};
use shards::shard::{Shard, ShardOptions};
use shards::wal::PageCacheFs;

const SHARDS: usize = 2;
const SERIES: usize = 300;

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Server {
    /// Starts promcore in the data directory's parent with relative paths, as a user
    /// following the README would.
    fn start(data: &Path, shards: usize) -> Server {
        let cwd = data.parent().unwrap();
        std::fs::write(
            cwd.join("prometheus.yml"),
            "global:\n  scrape_interval: 15s\n",
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_promcore"))
            .current_dir(cwd)
            .arg("--config.file=prometheus.yml")
            .arg(format!(
                "--storage.tsdb.path={}",
                data.file_name().unwrap().to_string_lossy()
            ))
            .arg(format!("--shards={shards}"))
            // Port 0: tests run in parallel, each server on a port of its own.
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            lines: rx,
            log: Vec::new(),
        }
    }

    /// Waits (bounded) for a log line containing `needle`.
    fn wait_for(&mut self, needle: &str) -> Option<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    fn stop(mut self) -> (i32, Vec<String>) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        self.log.extend(self.lines.iter());
        (status.code().unwrap_or(-1), self.log)
    }

    fn exit(mut self) -> (i32, Vec<String>) {
        let status = self.child.wait().unwrap();
        self.log.extend(self.lines.iter());
        (status.code().unwrap_or(-1), self.log)
    }
}

/// Writes `SERIES` series into their owning shards, as the router will.
fn populate(data: &Path) {
    let dd = DataDir::open(data, SHARDS).unwrap();
    let dirs: Vec<PathBuf> = (0..SHARDS).map(|i| dd.shard_dir(i)).collect();
    let mut per_shard: Vec<Vec<Labels>> = vec![Vec::new(); SHARDS];
    for i in 0..SERIES {
        let l = Labels::from_pairs([("__name__", "lifecycle"), ("i", &i.to_string())]).unwrap();
        per_shard[shard_for(l.hash(), SHARDS)].push(l);
    }
    for (dir, series) in dirs.into_iter().zip(per_shard) {
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let opts = ShardOptions::default();
                let (mut shard, _) = Shard::open(&dir, opts, PageCacheFs, |_| {}).await.unwrap();
                for k in 0..200i64 {
                    let b = AppendBatch {
                        new_series: series.clone(),
                        samples: (0..series.len())
                            .map(|i| BatchSample {
                                series: SeriesKey::New(i as u32),
                                t: k * 15_000,
                                v: k as f64,
                            })
                            .collect(),
                        start_timestamps: Vec::new(),
                    };
                    shard.append(&b).await.unwrap();
                }
                shard.sync().await.unwrap();
                std::mem::forget(shard); // as after a crash: WAL replay at the next start
            })
            .unwrap()
            .join()
            .unwrap();
    }
    // The lock dies with `dd`'s file when the process is done; release it now.
    dd.close().unwrap();
}

fn series_in(line: &str) -> usize {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix("series="))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn start_replay_stop_and_restart_from_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    populate(&data);

    // First start: every shard replays its WAL, in parallel; the series add up.
    let mut s = Server::start(&data, SHARDS);
    let mut total = 0;
    for _ in 0..SHARDS {
        let line = s
            .wait_for("head rebuilt")
            .unwrap_or_else(|| panic!("no replay: {:?}", s.log));
        assert!(line.contains("snapshot=false"), "{line}");
        total += series_in(&line);
    }
    assert_eq!(total, SERIES);
    assert!(s.wait_for("server is ready").is_some(), "{:?}", s.log);

    // A second process on the same directory is refused, naming the fix.
    let (code, log) = Server::start(&data, SHARDS).exit();
    assert_ne!(code, 0);
    assert!(
        log.iter().any(|l| l.contains("locked by another process")),
        "{log:?}"
    );

    let (code, log) = s.stop();
    assert_eq!(code, 0, "{log:?}");
    assert!(log.iter().any(|l| l.contains("SIGTERM")), "{log:?}");
    assert!(
        !data.join("lock").exists(),
        "lock file removed on clean shutdown"
    );
    for i in 0..SHARDS {
        let snaps = std::fs::read_dir(data.join(format!("shard-{i:03}")))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("chunk_snapshot.")
            })
            .count();
        assert_eq!(
            snaps, 1,
            "shard {i} has one snapshot after a clean shutdown"
        );
    }

    // Clean restart: heads come from the snapshots.
    let mut s = Server::start(&data, SHARDS);
    let mut total = 0;
    for _ in 0..SHARDS {
        let line = s
            .wait_for("head rebuilt")
            .unwrap_or_else(|| panic!("{:?}", s.log));
        assert!(line.contains("snapshot=true"), "{line}");
        total += series_in(&line);
    }
    assert_eq!(total, SERIES);
    let (code, log) = s.stop();
    assert_eq!(code, 0, "{log:?}");

    // Another shard count would hide data: refused, naming the count to use.
    let (code, log) = Server::start(&data, SHARDS + 1).exit();
    assert_ne!(code, 0);
    assert!(
        log.iter()
            .any(|l| l.contains(&format!("start with --shards {SHARDS}"))),
        "{log:?}"
    );
}

#[test]
fn a_bad_config_is_refused_with_the_field_path() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 15x\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_promcore"))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            tmp.path().join("data").display()
        ))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("global.scrape_interval"), "{err}");
    assert!(
        !tmp.path().join("data").exists(),
        "nothing opened before the config is valid"
    );
}
