//! loadgen: simulated Prometheus exporters for benchmarking scrapers (`serve`), and the
//! driver of the ingestion benchmark against promcore, Prometheus and VictoriaMetrics
//! (`bench`).
//!
//! The library holds the pure parts, tested without sockets: bodies, their in-place updates
//! and their gzip planned once per template (`body`, `slot`), HTTP request handling
//! (`http`), the file_sd output (`file_sd`) and CPU accounting (`cpu`). `serve` runs them on glommio executors. Nothing
//! here may become the bottleneck of a benchmark: per-scrape work never allocates.

pub mod bench;
pub mod body;
pub mod check;
pub mod cpu;
pub mod file_sd;
pub mod flags;
pub mod http;
pub mod log;
pub mod rng;
pub mod serve;
pub mod slot;
