//! The `/api/v1` endpoints that are not PromQL: series, label names and values, targets and
//! status. Parameters and errors follow Prometheus exactly (`params`), answers are written by
//! `json`; the data comes from the router (fan-out over the shards) and the scrape manager.

use shards::index::matcher::Matcher;
use shards::labels::Labels;

use crate::http::{Request, Response, StatusCode};
use crate::server::App;

use std::collections::BTreeMap;

use super::json::{self, ErrorType};
use super::params::{self, ApiParamError};
use super::status::{write_build_info, write_config, write_flags, BuildInfo};
use super::targets::{write_targets, DroppedTargetJson, TargetJson, TargetsFilter};

/// The selectors of every `match[]`; `Ok(empty)` when there is none.
fn match_params(req: &Request) -> Result<Vec<Vec<Matcher>>, ApiParamError> {
    let selectors: Vec<&str> = req.params().get_all("match[]").collect();
    params::parse_match_params(&selectors)
}

fn time_param(req: &Request, name: &'static str, default: i64) -> Result<i64, ApiParamError> {
    params::parse_time_param(name, req.param(name), default)
}

fn limit_param(req: &Request) -> Result<usize, ApiParamError> {
    params::parse_limit(req.param("limit")).map_err(|e| e.for_param("limit"))
}

fn success(warnings: &[String], data: impl FnOnce(&mut Vec<u8>)) -> Response {
    let mut out = Vec::with_capacity(256);
    json::success_with_annotations(&mut out, data, warnings, &[]);
    Response::json(StatusCode::OK, out)
}

pub(super) fn error_response(kind: ErrorType, message: &str) -> Response {
    let mut out = Vec::with_capacity(64 + message.len());
    json::error(&mut out, kind, message);
    let status = StatusCode::new(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Response::json(status, out)
}

pub(super) fn bad_data(e: impl ToString) -> Response {
    error_response(ErrorType::BadData, &e.to_string())
}

pub(super) fn unavailable() -> Response {
    Response::text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        .with_header("X-Prometheus-Stopping", "false")
}

/// Cuts `items` to `limit` (0: no limit) and says so in the warnings.
fn truncate<T>(items: &mut Vec<T>, limit: usize, warnings: &mut Vec<String>) {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        warnings.push("results truncated due to limit".to_string());
    }
}

pub async fn series(app: &App, req: &Request) -> Response {
    let Some(router) = app.router.get() else {
        return unavailable();
    };
    let selectors = match match_params(req) {
        Ok(s) if s.is_empty() => return bad_data(ApiParamError::NoMatch),
        Ok(s) => s,
        Err(e) => return bad_data(e.for_param("match[]")),
    };
    let (start, end, limit) = match (
        time_param(req, "start", params::MIN_TIME),
        time_param(req, "end", params::MAX_TIME),
        limit_param(req),
    ) {
        (Ok(s), Ok(e), Ok(l)) => (s, e, l),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return bad_data(e),
    };
    let mut all: Vec<Labels> = Vec::new();
    for matchers in &selectors {
        match router.series(matchers, start, end).await {
            Ok(s) => all.extend(s),
            Err(e) => return error_response(ErrorType::Execution, &e.to_string()),
        }
    }
    if selectors.len() > 1 {
        all.sort();
        all.dedup();
    }
    let mut warnings = Vec::new();
    truncate(&mut all, limit, &mut warnings);
    success(&warnings, |out| json::write_label_sets(out, &all))
}

/// What `labels` and `label/<name>/values` share: their `match[]` selectors (one empty
/// selector, meaning every series, when there is none), `limit`, and checked `start`/`end`.
fn metadata_params(req: &Request) -> Result<(Vec<Vec<Matcher>>, usize), Response> {
    let (mut selectors, limit) = match (match_params(req), limit_param(req)) {
        (Ok(s), Ok(l)) => (s, l),
        (Err(e), _) | (_, Err(e)) => return Err(bad_data(e)),
    };
    time_param(req, "start", params::MIN_TIME)
        .and_then(|_| time_param(req, "end", params::MAX_TIME))
        .map_err(bad_data)?;
    if selectors.is_empty() {
        selectors.push(Vec::new());
    }
    Ok((selectors, limit))
}

/// Sorted, deduplicated and cut to `limit`, as the metadata endpoints answer.
fn string_list(mut items: Vec<String>, limit: usize) -> Response {
    items.sort_unstable();
    items.dedup();
    let mut warnings = Vec::new();
    truncate(&mut items, limit, &mut warnings);
    success(&warnings, |out| json::write_string_list(out, &items))
}

pub async fn labels(app: &App, req: &Request) -> Response {
    let Some(router) = app.router.get() else {
        return unavailable();
    };
    let (selectors, limit) = match metadata_params(req) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut names = Vec::new();
    for matchers in &selectors {
        match router.label_names(matchers).await {
            Ok(n) => names.extend(n),
            Err(e) => return error_response(ErrorType::Execution, &e.to_string()),
        }
    }
    string_list(names, limit)
}

pub async fn label_values(app: &App, req: &Request, name: &str) -> Response {
    let Some(router) = app.router.get() else {
        return unavailable();
    };
    let name = match params::decode_label_name(name) {
        Ok(n) => n,
        Err(e) => return bad_data(e),
    };
    let (selectors, limit) = match metadata_params(req) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut values = Vec::new();
    for matchers in &selectors {
        match router.label_values(&name, matchers).await {
            Ok(v) => values.extend(v),
            Err(e) => return error_response(ErrorType::Execution, &e.to_string()),
        }
    }
    string_list(values, limit)
}

pub fn targets(app: &App, req: &Request) -> Response {
    let Some(scrape) = app.scrape.get() else {
        return unavailable();
    };
    let (active, dropped) = scrape.targets();
    let intervals: Vec<(String, String)> = active
        .iter()
        .map(|t| (prom_duration(t.interval), prom_duration(t.timeout)))
        .collect();
    let active_json: Vec<TargetJson<'_>> = active
        .iter()
        .zip(&intervals)
        .map(|(t, (interval, timeout))| TargetJson {
            discovered_labels: &t.discovered,
            labels: &t.labels,
            scrape_pool: &t.job,
            scrape_url: &t.scrape_url,
            global_url: &t.scrape_url,
            last_error: &t.last_error,
            last_scrape: t.last_scrape,
            last_scrape_duration: std::time::Duration::from_secs_f64(t.last_scrape_duration),
            health: t.health,
            scrape_interval: interval,
            scrape_timeout: timeout,
        })
        .collect();
    let dropped_json: Vec<DroppedTargetJson<'_>> = dropped
        .iter()
        .map(|t| DroppedTargetJson {
            discovered_labels: &t.discovered,
            scrape_pool: &t.job,
        })
        .collect();
    let mut counts = BTreeMap::new();
    for t in &dropped {
        *counts.entry(t.job.clone()).or_insert(0) += 1;
    }
    let filter = TargetsFilter::from_params(req.param("state"), req.param("scrapePool"));
    success(&[], |out| {
        write_targets(out, &active_json, &dropped_json, &counts, &filter)
    })
}

/// A duration as Prometheus prints one (`15s`, `1m`).
fn prom_duration(d: std::time::Duration) -> String {
    crate::config::duration::Duration::from_millis(d.as_millis() as u64).to_string()
}

pub fn status_config(app: &App) -> Response {
    // Prometheus shows the loaded configuration re-marshalled, defaults filled in and
    // secrets hidden; serializing our parsed config does the same.
    let config = app.config.borrow().clone();
    let yaml = serde_yaml::to_string(&config.config).unwrap_or_else(|_| config.text.clone());
    success(&[], |out| write_config(out, &yaml))
}

pub fn status_flags(app: &App) -> Response {
    let flags: BTreeMap<String, String> = app
        .flags
        .status_flags()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    success(&[], |out| write_flags(out, &flags))
}

pub fn status_buildinfo() -> Response {
    success(&[], |out| write_build_info(out, &BuildInfo::promcore()))
}

/// An `/api/v1` path we do not serve: 404, or 405 for a known path with the wrong method.
pub fn not_found_or_method(req: &Request) -> Response {
    let _ = req;
    Response::text(StatusCode::NOT_FOUND, "404 page not found\n")
}
