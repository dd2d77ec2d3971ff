//! `promcore promqltest FILE...`: runs Prometheus's PromQL test files (their own format, see
//! `script`) against promcore's engine over real shards, and reports per file how many evals
//! passed, failed and were skipped. The test files are the judge of the engine's semantics.

pub mod runner;
pub mod script;

use std::path::Path;

use crate::promql::engine::{Engine, EngineOptions};
use runner::{run_script, FileReport, MemoryStorage};

/// The engine settings the upstream test runner uses: lookback 5m, at most 10000 samples
/// loaded per query, subqueries without a step run at 1m.
pub fn test_engine() -> Engine {
    Engine::new(EngineOptions {
        max_samples: 10_000,
        ..EngineOptions::default()
    })
}

/// Runs one file on in-memory storage.
pub fn run_file_in_memory(path: &Path) -> Result<FileReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let engine = test_engine();
    let mut storage = MemoryStorage::default();
    futures_lite::future::block_on(run_script(&text, &mut storage, &engine))
}

/// The `promqltest` subcommand: returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    if args.is_empty() {
        eprintln!("usage: promcore promqltest FILE...");
        return 2;
    }
    // Panics are reported per eval by the runner; keep their text out of the report.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = false;
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    for f in args {
        match run_file_in_memory(Path::new(f)) {
            Ok(r) => {
                println!("{f}: pass {} fail {} skip {}", r.pass, r.fail, r.skip);
                let shown = std::env::var("PROMQLTEST_SHOW")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(5);
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
