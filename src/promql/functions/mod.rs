//! PromQL's per-series kernels: the arithmetic of functions such as `rate`, `*_over_time`,
//! `deriv`, `histogram_quantile` (classic buckets) and the elementwise math and date
//! functions, exactly as Prometheus 3 computes them (`../shared/spec/promql.md` §6–§9).
//!
//! Everything here is pure: points or values in, a number out. It never sees labels, storage,
//! the AST, annotations or argument errors; the evaluator owns those, validates arguments and
//! hands each kernel the points of one series' window, oldest first, stale markers removed.
//! A kernel returns `None` where Prometheus produces no output element for the series.

pub mod counter_changes;
pub mod date;
pub mod edge_values;
pub mod histogram;
pub mod kahan;
pub mod math;
pub mod over_time;
pub mod quantile;
pub mod rate;
pub mod regression;
pub mod smoothing;
pub mod start_time;

#[cfg(test)]
mod load_notation;
