//! The query entry points: parse, fetch every selector's data from a `SeriesSource`, evaluate
//! the whole expression over all steps at once, then finish the result as Prometheus does
//! (delayed `__name__` removal, duplicate label sets, ordering, annotations).
//!
//! This is the only async part of PromQL: it awaits the source once per selector before
//! evaluation starts, and never while evaluating.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use promql_parser::parser::value::ValueType;
use promql_parser::parser::Expr;

use super::error::QueryError;
use super::eval::{prefetch, Evaluated, Evaluator, PushedLeaf, Shared};
use super::labelset::drop_metric_name;
use super::leaf::LeafQuery;
use super::source::SeriesSource;
use super::value::{Annotations, Matrix, Sample, Series, Value};

/// Engine-wide settings (Prometheus's flags of the same meaning).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// `--query.lookback-delta`, ms.
    pub lookback_delta: i64,
    /// `--query.max-samples`.
    pub max_samples: usize,
    /// `--query.timeout`.
    pub timeout: Duration,
    /// Step of subqueries written without one (the global evaluation interval), ms.
    pub default_subquery_step: i64,
    /// Whether leaves a shard can answer alone are evaluated on the shards (see `plan`);
    /// off, the shards only select and everything is evaluated here.
    pub pushdown: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step: 60 * 1000,
            pushdown: true,
        }
    }
}

/// A finished query: its value and the warnings/infos it produced.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    pub annotations: Annotations,
}

/// Per-query settings the HTTP API may override.
#[derive(Debug, Clone, Default)]
pub struct QueryParams {
    /// Overrides the engine's lookback delta (ms) when set.
    pub lookback_delta: Option<i64>,
    /// A deadline earlier than the engine's timeout.
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct Engine {
    pub opts: EngineOptions,
}

/// Prometheus's documented name of an expression type, as in its error messages.
fn documented_type(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
    }
}

/// Parses `query` for an instant query.
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    parse_with(query, 0, 0)
}

/// Parses `query`, duration expressions resolved with the range query's `step` and range.
pub fn parse_with(query: &str, step: i64, range: i64) -> Result<Expr, QueryError> {
    let q = super::string_escapes::normalize(query).map_err(QueryError::BadData)?;
    let q = super::duration_expr::resolve(&q, step, range).map_err(QueryError::BadData)?;
    let q = super::duration_expr::mark_info_selectors(&q);
    let q = super::range_modifier::mark(&q);
    let expr = promql_parser::parser::parse(&q).map_err(QueryError::BadData)?;
    super::range_modifier::check(&expr).map_err(QueryError::BadData)?;
    Ok(expr)
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// Evaluates `query` at `t` (ms).
    pub async fn instant_query<S: SeriesSource>(
        &self,
        source: &S,
        query: &str,
        t: i64,
        params: &QueryParams,
    ) -> Result<QueryResult, QueryError> {
        let expr = parse(query)?;
        self.exec(source, query, &expr, t, t, 0, params).await
    }

    /// Evaluates `query` at every `step` (ms) from `start` to `end`.
    pub async fn range_query<S: SeriesSource>(
        &self,
        source: &S,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        params: &QueryParams,
    ) -> Result<QueryResult, QueryError> {
        if step <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(QueryError::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        let expr = parse_with(query, step, end - start)?;
        let t = expr.value_type();
        if t != ValueType::Vector && t != ValueType::Scalar {
            return Err(QueryError::BadData(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                documented_type(t)
            )));
        }
        self.exec(source, query, &expr, start, end, step, params)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn exec<S: SeriesSource>(
        &self,
        source: &S,
        query: &str,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        params: &QueryParams,
    ) -> Result<QueryResult, QueryError> {
        let timeout = params
            .timeout
            .map_or(self.opts.timeout, |t| t.min(self.opts.timeout));
        let deadline = Instant::now().checked_add(timeout);
        let lookback = params
            .lookback_delta
            .filter(|l| *l > 0)
            .unwrap_or(self.opts.lookback_delta);
        let mut leaf_annotations = Annotations::default();
        let plan = prefetch::Plan {
            start,
            end,
            lookback,
        };
        let instant = step == 0;
        let interval = if instant { 1 } else { step };
        let leaves = if self.opts.pushdown {
            super::plan::leaves(expr)
        } else {
            Vec::new()
        };
        // Selectors inside a leaf are read by the shards, not fetched here.
        let mut on_shards = HashSet::new();
        for l in &leaves {
            for r in prefetch::collect(l.expr, &plan)? {
                on_shards.insert(r.node);
            }
        }
        let mut pushed = HashMap::with_capacity(leaves.len());
        for l in &leaves {
            let q = LeafQuery {
                expr: l.expr.clone(),
                combine: l.combine,
                query: query.to_string(),
                start,
                end,
                interval,
                query_start: start,
                query_end: end,
                query_step: step,
                lookback,
                default_subquery_step: self.opts.default_subquery_step,
                max_samples: self.opts.max_samples,
                deadline,
            };
            let r = source.eval_leaf(&q).await?;
            pushed.insert(
                l.node,
                PushedLeaf {
                    start,
                    end,
                    interval,
                    series: r.series,
                    held_below: r.held_below,
                },
            );
            leaf_annotations.merge(r.annotations);
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Err(QueryError::Timeout("query preparation"));
            }
        }
        let requests = prefetch::collect(expr, &plan)?;
        let mut data = HashMap::with_capacity(requests.len());
        for r in requests
            .into_iter()
            .filter(|r| !on_shards.contains(&r.node))
        {
            let series = source
                .select(&r.matchers, r.mint, r.maxt)
                .await
                .map_err(QueryError::Storage)?;
            data.insert(r.node, series);
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Err(QueryError::Timeout("query preparation"));
            }
        }
        let mut shared = Shared {
            data: &data,
            pushed,
            shards: source.shard_count(),
            max_samples: self.opts.max_samples,
            current_samples: 0,
            deadline,
            annotations: leaf_annotations,
            query_start: start,
            query_end: end,
            query_step: step,
            lookback,
            default_subquery_step: self.opts.default_subquery_step,
            query,
        };
        let evaluated = Evaluator {
            sh: &mut shared,
            start,
            end,
            interval,
        }
        .eval(expr)?;
        let annotations = std::mem::take(&mut shared.annotations);
        let value = if instant {
            match evaluated {
                Evaluated::Scalar(v) => Value::Scalar {
                    t: start,
                    f: v.first().copied().unwrap_or(f64::NAN),
                },
                Evaluated::Str(s) => Value::String { t: start, s },
                Evaluated::Vector(m) => Value::Vector(finish_vector(m, start)?),
                Evaluated::Matrix(m) => Value::Matrix(finish_matrix(m)?),
            }
        } else {
            match evaluated {
                Evaluated::Scalar(v) => Value::Matrix(vec![Series {
                    labels: Default::default(),
                    points: v
                        .into_iter()
                        .enumerate()
                        .map(|(k, f)| super::value::FPoint {
                            t: start + k as i64 * step,
                            f,
                        })
                        .collect(),
                    drop_name: false,
                }]),
                Evaluated::Vector(m) | Evaluated::Matrix(m) => Value::Matrix(finish_matrix(m)?),
                Evaluated::Str(_) => {
                    return Err(QueryError::BadData(
                        "invalid expression type \"string\" for range query, must be Scalar or instant Vector".into(),
                    ))
                }
            }
        };
        Ok(QueryResult { value, annotations })
    }
}

/// An instant query's vector: names dropped where marked, label sets unique, samples stamped
/// with the evaluation time.
fn finish_vector(m: Matrix, t: i64) -> Result<Vec<Sample>, QueryError> {
    let mut out = Vec::with_capacity(m.len());
    let mut seen = std::collections::HashSet::with_capacity(m.len());
    for s in m {
        let labels = if s.drop_name {
            drop_metric_name(&s.labels)
        } else {
            s.labels
        };
        if !seen.insert(labels.clone()) {
            return Err(QueryError::exec(
                "vector cannot contain metrics with the same labelset",
            ));
        }
        let f = s.points.first().map_or(f64::NAN, |p| p.f);
        out.push(Sample {
            labels,
            t,
            f,
            drop_name: false,
        });
    }
    Ok(out)
}

/// A matrix result: names dropped where marked, series that became identical merged when their
/// points do not collide, sorted by labels.
fn finish_matrix(m: Matrix) -> Result<Matrix, QueryError> {
    let m: Matrix = m
        .into_iter()
        .map(|mut s| {
            if s.drop_name {
                s.labels = drop_metric_name(&s.labels);
                s.drop_name = false;
            }
            s
        })
        .collect();
    let mut out = super::eval::call::merge_same_labels(m)?;
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::source::{MemorySource, RawSeries};
    use crate::promql::value::FPoint;
    use shards::labels::Labels;

    fn series(pairs: &[(&str, &str)], points: &[(i64, f64)]) -> RawSeries {
        RawSeries {
            labels: Labels::from_pairs(pairs.iter().copied()).unwrap(),
            points: points.iter().map(|&(t, f)| FPoint { t, f }).collect(),
            start_timestamps: Vec::new(),
        }
    }

    fn source() -> MemorySource {
        MemorySource::new(vec![
            series(
                &[("__name__", "req_total"), ("job", "a")],
                &[(0, 0.0), (60_000, 60.0), (120_000, 120.0)],
            ),
            series(
                &[("__name__", "req_total"), ("job", "b")],
                &[(0, 0.0), (60_000, 120.0), (120_000, 240.0)],
            ),
        ])
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        futures_lite::future::block_on(f)
    }

    #[test]
    fn instant_query_aggregates_rates_and_drops_the_name() {
        let e = Engine::default();
        let r = run(e.instant_query(
            &source(),
            "sum by (job) (rate(req_total[2m]))",
            120_000,
            &QueryParams::default(),
        ))
        .unwrap();
        let Value::Vector(v) = r.value else {
            panic!("not a vector: {:?}", r.value)
        };
        let got: Vec<(String, f64)> = v
            .iter()
            .map(|s| (s.labels.get("job").unwrap().to_string(), s.f))
            .collect();
        assert_eq!(got, vec![("a".into(), 1.0), ("b".into(), 2.0)]);
        assert!(v
            .iter()
            .all(|s| s.labels.get("__name__").is_none() && s.t == 120_000));
    }

    #[test]
    fn range_query_stitches_steps_and_sorts_series() {
        let e = Engine::default();
        let r = run(e.range_query(
            &source(),
            "req_total / on(job) group_left req_total",
            0,
            120_000,
            60_000,
            &QueryParams::default(),
        ))
        .unwrap();
        let Value::Matrix(m) = r.value else {
            panic!("not a matrix")
        };
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].labels.get("job"), Some("a"));
        let vals: Vec<f64> = m[1].points.iter().map(|p| p.f).collect();
        assert!(vals[0].is_nan() && vals[1] == 1.0 && vals[2] == 1.0);
    }

    #[test]
    fn errors_and_limits_are_prometheus_texts() {
        let e = Engine::default();
        let p = QueryParams::default();
        let err = run(e.range_query(&source(), "req_total[1m]", 0, 60_000, 1000, &p)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
        );
        let small = Engine::new(EngineOptions {
            max_samples: 3,
            ..EngineOptions::default()
        });
        let err =
            run(small.range_query(&source(), "req_total", 0, 120_000, 60_000, &p)).unwrap_err();
        assert_eq!(err, QueryError::TooManySamples("query execution"));
        let err = run(e.instant_query(&source(), "req_total + ignoring(job) req_total", 0, &p))
            .unwrap_err();
        assert!(
            err.to_string().starts_with("found duplicate series"),
            "{err}"
        );
    }

    #[test]
    fn pushdown_holds_as_many_samples_as_the_router_alone() {
        let p = QueryParams::default();
        for q in [
            "sum by (job) (rate(req_total[2m]))",
            "topk(1, abs(req_total))",
            "abs(req_total)",
            "count(req_total) + max(-req_total)",
        ] {
            for max_samples in 0..24 {
                let answer = |pushdown| {
                    let e = Engine::new(EngineOptions {
                        max_samples,
                        pushdown,
                        ..EngineOptions::default()
                    });
                    run(e.range_query(&source(), q, 0, 120_000, 60_000, &p))
                };
                assert_eq!(answer(true), answer(false), "{q} with {max_samples}");
            }
        }
    }

    #[test]
    fn deadline_stops_evaluation() {
        let e = Engine::default();
        let p = QueryParams {
            timeout: Some(Duration::ZERO),
            ..QueryParams::default()
        };
        let err = run(e.instant_query(&source(), "sum(req_total)", 0, &p)).unwrap_err();
        assert!(matches!(err, QueryError::Timeout(_)), "{err}");
    }
}
