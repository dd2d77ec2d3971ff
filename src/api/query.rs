//! `/api/v1/query` and `/api/v1/query_range`: parameters read and checked in Prometheus's
//! order with its messages (`params`), the query admitted by the active-query tracker
//! (`--query.max-concurrency`), evaluated by the PromQL engine over the shards, and answered
//! as Prometheus's JSON (`query_result`).
//!
//! Error mapping, once, here: an expression that does not parse or has the wrong type is
//! `bad_data` (`invalid parameter "query": ...`), evaluation refusing the data is `execution`
//! (422), the deadline is `timeout` (503), storage failing is `internal` (500).

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_lite::FutureExt;

use crate::http::{Request, Response, StatusCode};
use crate::promql::engine::{QueryParams, QueryResult};
use crate::promql::error::QueryError;
use crate::server::App;

use super::json::{self, ErrorType, TRUNCATED_WARNING};
use super::params::{self, ApiParamError};
use super::parse_error;
use super::query_result;
use super::v1::{bad_data, error_response, unavailable};

pub async fn instant(app: &App, req: &Request) -> Response {
    run(app, req, |req| {
        params::parse_time_param("time", req.param("time"), now_ms()).map(Span::Instant)
    })
    .await
}

pub async fn range(app: &App, req: &Request) -> Response {
    run(app, req, range_span).await
}

/// When a query is evaluated.
enum Span {
    Instant(i64),
    /// Start, end and step, in ms.
    Range(i64, i64, i64),
}

/// `start`, `end` and `step` checked in Prometheus's order.
fn range_span(req: &Request) -> Result<Span, ApiParamError> {
    let start =
        params::parse_time(req.param("start").unwrap_or("")).map_err(|e| e.for_param("start"))?;
    let end = params::parse_time(req.param("end").unwrap_or("")).map_err(|e| e.for_param("end"))?;
    if end < start {
        return Err(ApiParamError::EndBeforeStart.for_param("end"));
    }
    let step = params::parse_duration_param(req.param("step").unwrap_or(""))
        .map_err(|e| e.for_param("step"))?;
    params::check_range(start, end, step)?;
    Ok(Span::Range(start, end, step.as_millis().max(1)))
}

/// What both endpoints share: `limit`, then the span, then `timeout`/`lookback_delta` (the
/// order of Prometheus's checks), a slot from the tracker, the evaluation, the answer.
async fn run(
    app: &App,
    req: &Request,
    span: impl FnOnce(&Request) -> Result<Span, ApiParamError>,
) -> Response {
    let Some(router) = app.router.get() else {
        return unavailable();
    };
    let checked = params::parse_limit(req.param("limit"))
        .map_err(|e| e.for_param("limit"))
        .and_then(|limit| Ok((limit, span(req)?, query_params(req)?)));
    let (limit, span, query_params) = match checked {
        Ok(c) => c,
        Err(e) => return bad_data(e),
    };
    let query = req.param("query").unwrap_or("");
    let queued = Instant::now();
    let _running = app.queries.insert(query).await;
    app.query_timings.queued(queued.elapsed());
    let evaluating = Instant::now();
    let engine = app.engine();
    let result = match span {
        Span::Instant(t) => contain(engine.instant_query(&**router, query, t, &query_params)).await,
        Span::Range(start, end, step) => {
            contain(engine.range_query(&**router, query, start, end, step, &query_params)).await
        }
    };
    app.query_timings.evaluated(evaluating.elapsed());
    answer(query, result, limit)
}

/// Runs a query so that a bug in the engine fails that query, not the router executor, as
/// Prometheus's engine recovers from panics: the answer is an `unexpected error`.
async fn contain(
    query: impl std::future::Future<Output = Result<QueryResult, QueryError>>,
) -> Result<QueryResult, QueryError> {
    match AssertUnwindSafe(query).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(QueryError::Storage(format!("unexpected error: {what}")))
        }
    }
}

/// `timeout` and `lookback_delta`, each optional; a `lookback_delta` of zero or less means the
/// server's default, as in Prometheus.
fn query_params(req: &Request) -> Result<QueryParams, ApiParamError> {
    let duration = |name: &'static str| -> Result<Option<i64>, ApiParamError> {
        match req.param(name) {
            None | Some("") => Ok(None),
            Some(v) => params::parse_duration_param(v)
                .map(|d| Some(d.as_millis()))
                .map_err(|e| e.for_param(name)),
        }
    };
    let timeout = duration("timeout")?;
    let lookback = duration("lookback_delta")?;
    Ok(QueryParams {
        timeout: timeout
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis(ms as u64)),
        lookback_delta: lookback.filter(|ms| *ms > 0),
    })
}

fn answer(query: &str, result: Result<QueryResult, QueryError>, limit: usize) -> Response {
    let mut result = match result {
        Ok(r) => r,
        Err(e) => return query_error(query, &e),
    };
    let mut warnings = result.annotations.warnings;
    if query_result::truncate(&mut result.value, limit) {
        warnings.push(TRUNCATED_WARNING.to_string());
    }
    let mut out = Vec::with_capacity(256);
    json::success_with_annotations(
        &mut out,
        |out| query_result::write_result(out, &result.value),
        &warnings,
        &result.annotations.infos,
    );
    Response::json(StatusCode::OK, out)
}

fn query_error(query: &str, e: &QueryError) -> Response {
    let (kind, message) = match e {
        QueryError::BadData(m) => (
            ErrorType::BadData,
            format!(
                "invalid parameter \"query\": {}",
                parse_error::prometheus_message(query, m)
            ),
        ),
        QueryError::Execution(_) | QueryError::TooManySamples(_) => {
            (ErrorType::Execution, e.to_string())
        }
        QueryError::Timeout(_) => (ErrorType::Timeout, e.to_string()),
        QueryError::Storage(_) => (ErrorType::Internal, e.to_string()),
    };
    error_response(kind, &message)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
