//! `promcore promqltest FILE...`: runs Prometheus's PromQL test files (their own format, see
//! `script`) against promcore's engine over real shards, and reports per file how many evals
//! passed, failed and were skipped. The test files are the judge of the engine's semantics.

pub mod identical;
pub mod runner;
pub mod script;
pub mod shard_storage;

use std::path::Path;

use crate::promql::engine::{Engine, EngineOptions};
use runner::{run_script, FileReport, FileResults, MemoryStorage};

/// The engine settings the upstream test runner uses: lookback 5m, at most 10000 samples
/// loaded per query, subqueries without a step run at 1m; leaves pushed to the shards or not.
pub fn test_engine(pushdown: bool) -> Engine {
    Engine::new(EngineOptions {
        max_samples: 10_000,
        pushdown,
        ..EngineOptions::default()
    })
}

/// How evals are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The planner pushes leaves to the shards (the server's way).
    Pushdown,
    /// Everything on the router, shards only select (`--no-pushdown`).
    RouterOnly,
    /// Both, and an eval fails unless the two answers are identical (`--compare-pushdown`).
    Compare,
}

impl Mode {
    fn engines(self) -> (Engine, Option<Engine>) {
        match self {
            Mode::Pushdown => (test_engine(true), None),
            Mode::RouterOnly => (test_engine(false), None),
            Mode::Compare => (test_engine(true), Some(test_engine(false))),
        }
    }
}

/// Runs one file on in-memory storage.
pub fn run_file_in_memory(path: &Path, mode: Mode) -> Result<FileReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (engine, reference) = mode.engines();
    let mut storage = MemoryStorage::default();
    futures_lite::future::block_on(run_script(&text, &mut storage, &engine, reference.as_ref()))
}

/// Shards the runner starts unless told otherwise.
pub const DEFAULT_SHARDS: usize = 3;

pub const USAGE: &str =
    "usage: promcore promqltest [--shards N | --memory] [--no-pushdown | --compare-pushdown] FILE...";

/// Runs `files` on `shards` real shards, or in memory when `shards` is 0.
pub fn run_files(files: &[String], shards: usize, mode: Mode) -> Result<FileResults, String> {
    if shards == 0 {
        return Ok(files
            .iter()
            .map(|f| (f.clone(), run_file_in_memory(Path::new(f), mode)))
            .collect());
    }
    let mut texts = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
        texts.push((f.clone(), text));
    }
    let (engine, reference) = mode.engines();
    shard_storage::run_files(texts, shards, engine, reference)
}

/// The `promqltest` subcommand: returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let mut shards = DEFAULT_SHARDS;
    let mut files = Vec::new();
    let mut mode = Mode::Pushdown;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--memory" => shards = 0,
            "--no-pushdown" => mode = Mode::RouterOnly,
            "--compare-pushdown" => mode = Mode::Compare,
            "--shards" => match it.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => shards = n,
                _ => {
                    eprintln!("{USAGE}");
                    return 2;
                }
            },
            _ => files.push(a.clone()),
        }
    }
    if files.is_empty() {
        eprintln!("{USAGE}");
        return 2;
    }
    // Panics are reported per eval by the runner; keep their text out of the report.
    std::panic::set_hook(Box::new(|_| {}));
    let results = match run_files(&files, shards, mode) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("promqltest: {e}");
            return 1;
        }
    };
    let shown = std::env::var("PROMQLTEST_SHOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut failed = false;
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    for (f, r) in results {
        match r {
            Ok(r) => {
                println!("{f}: pass {} fail {} skip {}", r.pass, r.fail, r.skip);
                for x in r.failures.iter().take(shown) {
                    println!("  FAIL {x}");
                }
                pass += r.pass;
                fail += r.fail;
                skip += r.skip;
                failed |= r.fail > 0;
            }
            Err(e) => {
                println!("{f}: error: {e}");
                failed = true;
            }
        }
    }
    println!("total: pass {pass} fail {fail} skip {skip}");
    i32::from(failed)
}
