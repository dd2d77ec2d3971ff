//! PromQL: evaluation of the expressions that `promql-parser` parses, as Prometheus 3 defines
//! them (`../shared/spec/promql.md`), with Prometheus's own test files as the judge.
//!
//! `engine` is the entry point (instant and range queries); `eval` the evaluator over the
//! AST; `source` the trait through which series are fetched; `value` the result types every
//! part shares; `functions` the per-series kernels (pure arithmetic over points, no labels,
//! no storage). This module never touches sockets or files: the data it evaluates over is
//! handed to it, so it is tested and benchmarked without either.

pub mod annotations;
pub mod duration_expr;
pub mod engine;
pub mod error;
pub mod eval;
pub mod functions;
pub mod labelset;
pub mod leaf;
pub mod plan;
pub mod range_modifier;
pub mod source;
pub mod string_escapes;
pub mod value;

pub use engine::{Engine, EngineOptions, QueryParams, QueryResult};
pub use error::QueryError;
pub use source::{MemorySource, RawSeries, SeriesSource};
