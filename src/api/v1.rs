//! The `/api/v1` endpoints that are not PromQL: series, label names and values, targets and
//! status. Parameters and errors follow Prometheus exactly (`params`), answers are written by
//! `json`; the data comes from the router (fan-out over the shards) and the scrape manager.

use shards::index::matcher::Matcher;
use shards::labels::Labels;
use shards::string_list::{Merged, StringList};

use std::sync::Arc;

use shards::label_generation::LabelGeneration;

use crate::http::{Request, Response, SharedBody, StatusCode};
use crate::router::{published_label_lists, LabelRequest};
use crate::server::App;

use std::collections::BTreeMap;

use super::json::{self, ErrorType};
use super::params::{self, ApiParamError};
use crate::scrape::metadata::MetricMetadata;

use super::runtime::{self, RuntimeInfo};
use super::status::{write_build_info, write_config, write_flags, BuildInfo};
use super::targets::{write_targets, DroppedTargetJson, TargetJson, TargetsFilter};
use super::tsdb_status;

/// The selectors of every `match[]`; `Ok(empty)` when there is none.
fn match_params(req: &Request) -> Result<Vec<Vec<Matcher>>, ApiParamError> {
    let selectors: Vec<&str> = req.params().get_all("match[]").collect();
    params::parse_match_params(&selectors)
}

pub(super) fn time_param(
    req: &Request,
    name: &'static str,
    default: i64,
) -> Result<i64, ApiParamError> {
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

/// What `labels` and `label/<name>/values` share.
struct MetadataParams {
    /// The `match[]` selectors; one empty selector, meaning every series, when there is none.
    selectors: Vec<Vec<Matcher>>,
    limit: usize,
    /// `start` and `end` (ms): the answer comes from the blocks and head overlapping them.
    range: (i64, i64),
    /// Everything besides the range and the label name that the answer depends on, for the
    /// router's kept answers: the selectors' text and the limit.
    key: String,
}

fn metadata_params(req: &Request) -> Result<MetadataParams, Response> {
    let (mut selectors, limit) = match (match_params(req), limit_param(req)) {
        (Ok(s), Ok(l)) => (s, l),
        (Err(e), _) | (_, Err(e)) => return Err(bad_data(e)),
    };
    let range = time_param(req, "start", params::MIN_TIME)
        .and_then(|start| Ok((start, time_param(req, "end", params::MAX_TIME)?)))
        .map_err(bad_data)?;
    if selectors.is_empty() {
        selectors.push(Vec::new());
    }
    let mut key = format!("limit={limit}");
    for s in req.params().get_all("match[]") {
        key.push('\0');
        key.push_str(s);
    }
    Ok(MetadataParams {
        selectors,
        limit,
        range,
        key,
    })
}

/// The answer of the metadata endpoints: the union of `lists` (each sorted: one per shard
/// and `match[]`), cut to `limit`. The union is written as it is merged, never collected:
/// an answer can hold a million values.
fn string_list(lists: &[&StringList], limit: usize) -> Vec<u8> {
    let limit = if limit == 0 { usize::MAX } else { limit };
    // Reserved once for the largest the union can be (every list's strings, quoted and
    // comma-separated, none escaped), rather than grown through the doubling: the lists
    // overlap, but copying a large answer on each growth cost more than the room.
    let most: usize = lists.iter().map(|l| l.byte_len() + 3 * l.len()).sum();
    let mut out = Vec::with_capacity(64 + most);
    let plain = lists
        .iter()
        .all(|l| json::copied_as_is(l.concatenated().as_bytes()));
    let mut merged = Merged::new(lists.iter().map(|l| l.iter()));
    json::success_then_warnings(&mut out, |out| {
        if plain {
            json::write_plain_string_list(out, merged.by_ref().take(limit));
        } else {
            json::write_string_list(out, merged.by_ref().take(limit));
        }
        match merged.next() {
            Some(_) => vec![json::TRUNCATED_WARNING],
            None => Vec::new(),
        }
    });
    out
}

/// `labels` and `label/<name>/values`: answered by the router, from the answers it keeps
/// when the shards have not changed since.
async fn label_answer(app: &App, req: &Request, request: LabelRequest<'_>) -> Response {
    let Some(router) = app.router.get() else {
        return unavailable();
    };
    let p = match metadata_params(req) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let encode = |lists: &[&StringList]| string_list(lists, p.limit);
    match router
        .label_answer(request, &p.selectors, p.range, &p.key, encode)
        .await
    {
        Ok(body) => Response::json_shared(StatusCode::OK, body),
        Err(e) => error_response(ErrorType::Execution, &e.to_string()),
    }
}

/// The answer to `labels` or `label/<name>/values` (`request`, the name decoded) without
/// `match[]`, from the tables the shards published (`generations`): the same bytes the router
/// gives (`Router::label_answer` reads the same tables with the same encoding), readable on
/// any thread. `None` when the parameters are refused, a `match[]` is given, or a shard has
/// not published what the request needs: the router answers those.
pub fn published_label_answer(
    generations: &[Arc<LabelGeneration>],
    req: &Request,
    request: LabelRequest<'_>,
) -> Option<Response> {
    let p = metadata_params(req).ok()?;
    if !matches!(p.selectors.as_slice(), [only] if only.is_empty()) {
        return None;
    }
    let (mint, maxt) = p.range;
    let (_, tables) = published_label_lists(generations.iter().map(|g| &**g), request, mint, maxt)?;
    let lists: Vec<&StringList> = tables.iter().map(|t| &**t).collect();
    let body = SharedBody::new(string_list(&lists, p.limit));
    Some(Response::json_shared(StatusCode::OK, Arc::new(body)))
}

pub async fn labels(app: &App, req: &Request) -> Response {
    label_answer(app, req, LabelRequest::Names).await
}

pub async fn label_values(app: &App, req: &Request, name: &str) -> Response {
    if app.router.get().is_none() {
        return unavailable();
    }
    let name = match params::decode_label_name(name) {
        Ok(n) => n,
        Err(e) => return bad_data(e),
    };
    label_answer(app, req, LabelRequest::Values(&name)).await
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

/// `GET /api/v1/scrape_pools`: the jobs with a scrape pool, sorted.
pub fn scrape_pools(app: &App) -> Response {
    let mut pools: Vec<String> = app
        .scrape
        .get()
        .map(|s| s.target_counts().into_iter().map(|(job, _)| job).collect())
        .unwrap_or_default();
    pools.sort_unstable();
    success(&[], |out| {
        out.extend_from_slice(br#"{"scrapePools":"#);
        json::write_string_list(out, &pools);
        out.push(b'}');
    })
}

pub fn status_runtimeinfo(app: &App) -> Response {
    let f = &app.flags;
    let size = (f.retention_size.0 > 0).then(|| f.retention_size.to_string());
    let info = RuntimeInfo {
        start_time: app.started,
        cwd: std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        hostname: runtime::hostname(),
        server_time: std::time::SystemTime::now(),
        reload_config_success: app.reload_metrics.last_successful.get(),
        last_config_time: app.reload_metrics.last_success_time.get() as i64,
        corruption_count: 0,
        thread_count: runtime::thread_count(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
        storage_retention: runtime::storage_retention(
            &f.retention_time.to_string(),
            size.as_deref(),
        ),
    };
    success(&[], |out| runtime::write_runtime_info(out, &info))
}

/// `GET /api/v1/status/walreplay`. Not gated on readiness, as in Prometheus; the shards do not
/// report progress while they replay, so until then it says nothing is replayed yet.
pub fn status_walreplay(app: &App) -> Response {
    let (max, current) = match app.wal_replayed.get() {
        Some(max) => (max, max),
        None => (0, 0),
    };
    success(&[], |out| runtime::write_wal_replay(out, 0, max, current))
}

/// `limit`-style parameter of the metadata endpoints: absent is -1 (no limit), anything but an
/// integer is refused with `<name> must be a number`, as Prometheus's `strconv.Atoi` check.
fn metadata_number(req: &Request, name: &str) -> Result<i64, Response> {
    match req.param(name) {
        None | Some("") => Ok(-1),
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| bad_data(format!("{name} must be a number"))),
    }
}

/// `GET /api/v1/metadata`: metric name → its distinct `{type, help, unit}` over the active
/// targets. `limit` caps the metrics (0 gives none, as in Prometheus), `limit_per_metric` the
/// entries per metric, `metric` selects one name.
pub fn metadata(app: &App, req: &Request) -> Response {
    let (limit, per_metric) = match (
        metadata_number(req, "limit"),
        metadata_number(req, "limit_per_metric"),
    ) {
        (Ok(l), Ok(p)) => (l, p),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let metric = req.param("metric").unwrap_or("");
    let mut by_name: BTreeMap<String, Vec<MetricMetadata>> = BTreeMap::new();
    let targets = app.scrape.get().map(|s| s.metadata()).unwrap_or_default();
    for (_, _, md) in &targets {
        let md = md.borrow();
        let entries = if metric.is_empty() {
            md.list()
        } else {
            md.get(metric).into_iter().collect()
        };
        for m in entries {
            let set = by_name.entry(m.metric.clone()).or_default();
            if per_metric > 0 && set.len() as i64 >= per_metric {
                continue;
            }
            if !set.contains(&m) {
                set.push(m);
            }
        }
    }
    if limit >= 0 {
        let keep = usize::try_from(limit).unwrap_or(usize::MAX);
        while by_name.len() > keep {
            by_name.pop_last();
        }
    }
    success(&[], |out| {
        out.push(b'{');
        for (i, (name, set)) in by_name.iter_mut().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::write_string(out, name);
            out.extend_from_slice(b":[");
            set.sort_by(|a, b| {
                (a.kind.as_str(), &a.help, &a.unit).cmp(&(b.kind.as_str(), &b.help, &b.unit))
            });
            for (j, m) in set.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                write_metadata_fields(out, None, m);
            }
            out.push(b']');
        }
        out.push(b'}');
    })
}

/// `{"target":{...},"metric":"m","type":"t","help":"h","unit":"u"}` with the parts given.
fn write_metadata_fields(out: &mut Vec<u8>, target: Option<(&Labels, bool)>, m: &MetricMetadata) {
    out.push(b'{');
    if let Some((labels, with_metric)) = target {
        out.extend_from_slice(br#""target":"#);
        json::write_labels(out, labels);
        if with_metric {
            out.extend_from_slice(br#","metric":"#);
            json::write_string(out, &m.metric);
        }
        out.push(b',');
    }
    out.extend_from_slice(br#""type":"#);
    json::write_string(out, m.kind.as_str());
    out.extend_from_slice(br#","help":"#);
    json::write_string(out, &m.help);
    out.extend_from_slice(br#","unit":"#);
    json::write_string(out, &m.unit);
    out.push(b'}');
}

/// `GET /api/v1/targets/metadata`: one entry per target and metric, `match_target` selecting
/// targets by their labels, `metric` one metric (its name is then left out of the entries),
/// `limit` checked before each target as Prometheus does (so a target's entries are never
/// split).
pub fn targets_metadata(app: &App, req: &Request) -> Response {
    let limit = match metadata_number(req, "limit") {
        Ok(l) => l,
        Err(r) => return r,
    };
    let matchers = match req.param("match_target") {
        None | Some("") => None,
        Some(s) => match params::parse_target_matchers(s) {
            Ok(m) => Some(m),
            Err(e) => return bad_data(e),
        },
    };
    let metric = req.param("metric").unwrap_or("");
    let targets = app.scrape.get().map(|s| s.metadata()).unwrap_or_default();
    let mut entries: Vec<(&Labels, MetricMetadata)> = Vec::new();
    for (_, labels, md) in &targets {
        if limit >= 0 && entries.len() as i64 >= limit {
            break;
        }
        if let Some(ms) = &matchers {
            if !ms
                .iter()
                .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
            {
                continue;
            }
        }
        let md = md.borrow();
        if metric.is_empty() {
            entries.extend(md.list().into_iter().map(|m| (labels, m)));
        } else if let Some(m) = md.get(metric) {
            entries.push((labels, m));
        }
    }
    success(&[], |out| {
        out.push(b'[');
        for (i, (labels, m)) in entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_metadata_fields(out, Some((labels, metric.is_empty())), m);
        }
        out.push(b']');
    })
}

/// `GET /api/v1/status/tsdb`: head statistics and the top-`limit` cardinality lists over
/// every shard.
pub async fn status_tsdb(app: &App, req: &Request) -> Response {
    let Some(router) = app.router.get() else {
        return unavailable();
    };
    let limit = match tsdb_status::parse_limit(req.param("limit")) {
        Ok(l) => l,
        Err(e) => return bad_data(e),
    };
    match router.tsdb_status().await {
        Ok(shards) => {
            let summary = tsdb_status::summarize(&shards, limit);
            success(&[], |out| tsdb_status::write_summary(out, &summary))
        }
        Err(e) => error_response(ErrorType::Internal, &e.to_string()),
    }
}
