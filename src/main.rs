//! The promcore server binary: flags, start-up checks, one pinned glommio executor per
//! storage shard, and a clean shutdown on SIGTERM/SIGINT.
//!
//! Today the server runs the storage engine: it opens (or creates) the data directory,
//! rebuilds every shard's head in parallel (snapshot, chunks_head, WAL), reports when it is
//! ready, and on a signal closes every shard cleanly (WAL synced, head snapshot written).
//! Scraping, the HTTP API and PromQL are built on top of it (see the open issues).

// TEMPORARY (api branch): declares the API modules so they compile; replaced on merge.
mod api;
mod config;
mod flags;
mod http;
mod log;
mod metrics;
mod scrape;
mod startup;

use std::process::ExitCode;

use flags::{Flags, LogLevel, USAGE};

/// mimalloc rather than glibc's malloc: creating series allocates many small, long-lived
/// objects next to short-lived batch buffers, and glibc spent more time consolidating its
/// free lists than the head spent creating series (measured with the head benchmark).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("promcore: {e}");
            return ExitCode::from(2);
        }
    };
    if flags.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if flags.version {
        println!("promcore, version {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    log::set_level(flags.log_level);
    match startup::run(&flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::log(LogLevel::Error, "main", &e.to_string(), &[]);
            ExitCode::FAILURE
        }
    }
}
