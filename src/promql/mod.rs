//! PromQL: evaluation of the expressions that `promql-parser` parses, as Prometheus 3 defines
//! them (`../shared/spec/promql.md`), with Prometheus's own test files as the judge.
//!
//! `value` holds the result types every part shares; `functions` the per-series kernels (pure
//! arithmetic over points, no labels, no storage). This module never touches sockets or files:
//! the data it evaluates over is handed to it, so it is tested and benchmarked without either.

pub mod functions;
pub mod value;
