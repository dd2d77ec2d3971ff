//! `/api/v1/admin/tsdb/*`, Prometheus's admin API, served only with `--web.enable-admin-api`:
//! `delete_series` (tombstones, see `shards::deletion`), `clean_tombstones` (blocks rewritten
//! without deleted samples) and `snapshot` (every shard's blocks hard-linked, plus the head
//! written as a block, under `<data>/snapshots/<name>/shard-NNN/`). Parameters, status codes
//! and JSON are Prometheus 2.42's, the disabled case included (500, `unavailable`).
//!
//! This module parses and answers; the shards do the work (`ShardRequest::DeleteSeries`,
//! `CleanTombstones`, `Snapshot`). It never touches a block or the WAL itself; the only file
//! it writes is the snapshot's copy of `promcore.json`, which makes the snapshot a data
//! directory promcore can be started on.

use std::path::{Path, PathBuf};

use shards::block::Ulid;
use shards::data_dir::shard_dir;

use crate::http::date::civil_from_days;
use crate::http::{Request, Response, StatusCode};
use crate::router::protocol::ShardRequest;
use crate::server::App;

use super::json::{self, ErrorType};
use super::params::{self, ApiParamError};
use super::v1::{bad_data, error_response, time_param, unavailable};

/// Where snapshots go, below the data directory (Prometheus's name).
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// The file that makes a directory a promcore data directory (shard count, format).
const DATA_DIR_META: &str = "promcore.json";

fn disabled() -> Response {
    error_response(ErrorType::Unavailable, "admin APIs disabled")
}

fn internal(message: String) -> Response {
    error_response(ErrorType::Internal, &message)
}

/// `POST|PUT /api/v1/admin/tsdb/delete_series`: `match[]` (at least one), `start`, `end`.
pub async fn delete_series(app: &App, req: &Request) -> Response {
    if !app.flags.web_enable_admin_api {
        return disabled();
    }
    // Prometheus's order: presence of match[], then start, then end, then each selector.
    let raw: Vec<&str> = req.params().get_all("match[]").collect();
    if raw.is_empty() {
        return bad_data(ApiParamError::NoMatch);
    }
    let (start, end) = match (
        time_param(req, "start", params::MIN_TIME),
        time_param(req, "end", params::MAX_TIME),
    ) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return bad_data(e),
    };
    let selectors = match params::parse_match_params(&raw) {
        Ok(s) => s,
        Err(e) => return bad_data(e.for_param("match[]")),
    };
    let Some(router) = app.router.get() else {
        return unavailable();
    };
    let request = || ShardRequest::DeleteSeries {
        selectors: selectors.clone(),
        mint: start,
        maxt: end,
    };
    match router.admin(request).await {
        Ok(()) => Response::new(StatusCode::NO_CONTENT),
        Err(e) => internal(e.to_string()),
    }
}

/// `POST|PUT /api/v1/admin/tsdb/clean_tombstones`.
pub async fn clean_tombstones(app: &App) -> Response {
    if !app.flags.web_enable_admin_api {
        return disabled();
    }
    let Some(router) = app.router.get() else {
        return unavailable();
    };
    match router.admin(|| ShardRequest::CleanTombstones).await {
        Ok(()) => Response::new(StatusCode::NO_CONTENT),
        Err(e) => internal(e.to_string()),
    }
}

/// `POST|PUT /api/v1/admin/tsdb/snapshot`: `skip_head` (a Go boolean, default false).
pub async fn snapshot(app: &App, req: &Request) -> Response {
    if !app.flags.web_enable_admin_api {
        return disabled();
    }
    let skip_head = match req.param("skip_head") {
        None | Some("") => false,
        Some(v) => match parse_go_bool(v) {
            Some(b) => b,
            None => {
                return bad_data(format!(
                    "invalid parameter \"skip_head\": unable to parse boolean: \
                     strconv.ParseBool: parsing {}: invalid syntax",
                    go_quote(v)
                ))
            }
        },
    };
    let Some(router) = app.router.get() else {
        return unavailable();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // Go's `rand.Int63`: 63 random bits, printed as 16 hex digits.
    let name = snapshot_name(now.as_secs() as i64, (Ulid::new().0 as u64) >> 1);
    let dir = app.flags.storage_path.join(SNAPSHOTS_DIR).join(&name);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return internal(format!("create snapshot directory: {e}"));
    }
    if let Err(e) = copy_data_dir_meta(&app.flags.storage_path, &dir) {
        return internal(format!("create snapshot: {e}"));
    }
    let at = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    let mut shard = 0;
    let request = || {
        let r = ShardRequest::Snapshot {
            dir: shard_dir(&dir, shard),
            with_head: !skip_head,
            at,
        };
        shard += 1;
        r
    };
    if let Err(e) = router.admin(request).await {
        return internal(format!("create snapshot: {e}"));
    }
    let mut out = Vec::with_capacity(96);
    json::success(&mut out, |out| {
        out.extend_from_slice(br#"{"name":"#);
        json::write_string(out, &name);
        out.push(b'}');
    });
    Response::json(StatusCode::OK, out)
}

fn copy_data_dir_meta(data: &Path, snapshot: &Path) -> std::io::Result<()> {
    let to: PathBuf = snapshot.join(DATA_DIR_META);
    std::fs::copy(data.join(DATA_DIR_META), to).map(drop)
}

/// `<UTC time as 20060102T150405Z>-<16 hex digits>`, Prometheus's snapshot name.
pub fn snapshot_name(unix_secs: i64, random: u64) -> String {
    let (days, rem) = (unix_secs.div_euclid(86_400), unix_secs.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}{mo:02}{d:02}T{:02}{:02}{:02}Z-{random:016x}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.Quote` for the printable ASCII that error messages echo.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_as_prometheus() {
        // 2026-12-05T23:59:49Z, as Prometheus 2.42 named a snapshot taken then.
        assert_eq!(
            snapshot_name(1_796_515_189, 0x7ea0_75a5_d1a4_da7d),
            "20261205T235949Z-7ea075a5d1a4da7d"
        );
        assert_eq!(snapshot_name(0, 1), "19700101T000000Z-0000000000000001");
    }

    #[test]
    fn go_booleans() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(t), Some(true));
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(f), Some(false));
        }
        assert_eq!(parse_go_bool("yes"), None);
        assert_eq!(go_quote("abc"), "\"abc\"");
    }
}
