//! The data of `/api/v1/status/buildinfo`, `/status/flags` and `/status/config`, in
//! Prometheus's shapes. This module formats; it never reads flags or configuration itself.

use std::collections::BTreeMap;

use super::json::{write_label_pairs, write_string};

/// The Prometheus release whose HTTP API promcore answers like, reported as buildinfo's
/// `version`. Grafana reads `version` as a Prometheus semver to pick features (below
/// 2.24.0 it stops using `labels`/`label/<n>/values` with `match[]` and falls back to
/// `series`), so promcore's own `0.x` would degrade it; the API promcore implements is
/// Prometheus 3's, hence a 3.x version here and promcore's own in `goVersion`.
pub const PROMETHEUS_API_VERSION: &str = "3.0.0";

/// Build information, every field a string as in Prometheus. There is deliberately no
/// `features` field: Grafana takes a non-empty `features` map for Mimir and then calls
/// Mimir-only ruler endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: String,
    pub revision: String,
    pub branch: String,
    pub build_user: String,
    pub build_date: String,
    /// Prometheus reports its Go toolchain; promcore names its own version and Rust here.
    pub go_version: String,
}

impl BuildInfo {
    /// This binary's: revision, branch, user and date come from the environment at build
    /// time (`PROMCORE_REVISION`, `PROMCORE_BRANCH`, `PROMCORE_BUILD_USER`,
    /// `PROMCORE_BUILD_DATE`, as Prometheus's release tooling stamps them), else `unknown`.
    pub fn promcore() -> BuildInfo {
        let stamp = |v: Option<&str>| v.unwrap_or("unknown").to_string();
        BuildInfo {
            version: PROMETHEUS_API_VERSION.to_string(),
            revision: stamp(option_env!("PROMCORE_REVISION")),
            branch: stamp(option_env!("PROMCORE_BRANCH")),
            build_user: stamp(option_env!("PROMCORE_BUILD_USER")),
            build_date: stamp(option_env!("PROMCORE_BUILD_DATE")),
            go_version: concat!("rustc (promcore ", env!("CARGO_PKG_VERSION"), ")").to_string(),
        }
    }
}

/// `{"version":...,"revision":...,"branch":...,"buildUser":...,"buildDate":...,"goVersion":...}`.
pub fn write_build_info(out: &mut Vec<u8>, info: &BuildInfo) {
    write_label_pairs(
        out,
        [
            ("version", info.version.as_str()),
            ("revision", info.revision.as_str()),
            ("branch", info.branch.as_str()),
            ("buildUser", info.build_user.as_str()),
            ("buildDate", info.build_date.as_str()),
            ("goVersion", info.go_version.as_str()),
        ],
    );
}

/// The command-line flags as an object of strings, names without `--`, sorted by name as
/// Go writes a map: `{"query.lookback-delta":"5m",...}`.
pub fn write_flags(out: &mut Vec<u8>, flags: &BTreeMap<String, String>) {
    write_label_pairs(out, flags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
}

/// `{"yaml":"<the loaded configuration as YAML>"}`.
pub fn write_config(out: &mut Vec<u8>, yaml: &str) {
    out.extend_from_slice(br#"{"yaml":"#);
    write_string(out, yaml);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::super::json::success;
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn build_info_shape() {
        let info = BuildInfo {
            version: "3.14.0".into(),
            revision: "d15adb9a".into(),
            branch: "HEAD".into(),
            build_user: "u@h".into(),
            build_date: "20260821-16:53:52".into(),
            go_version: "go1.x".into(),
        };
        assert_eq!(
            text(|o| success(o, |o| write_build_info(o, &info))),
            r#"{"status":"success","data":{"version":"3.14.0","revision":"d15adb9a","branch":"HEAD","buildUser":"u@h","buildDate":"20260821-16:53:52","goVersion":"go1.x"}}"#
        );
    }

    #[test]
    fn promcore_build_info_satisfies_grafana() {
        let body = text(|o| write_build_info(o, &BuildInfo::promcore()));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(v.get("features").is_none());
        // A plain semver at or above 2.24.0, Grafana's threshold for the labels API.
        let parts: Vec<u64> = v["version"]
            .as_str()
            .unwrap()
            .split('.')
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(parts.len(), 3);
        assert!(parts[0] >= 3);
        let go_version = v["goVersion"].as_str().unwrap();
        assert!(go_version.contains(env!("CARGO_PKG_VERSION")));
        for key in ["revision", "branch", "buildUser", "buildDate"] {
            assert!(v[key].is_string(), "{key}");
        }
    }

    #[test]
    fn flags_and_config() {
        let flags = BTreeMap::from([
            ("storage.tsdb.retention.time".to_string(), "15d".to_string()),
            ("query.lookback-delta".to_string(), "5m".to_string()),
            ("query.max-samples".to_string(), "50000000".to_string()),
        ]);
        assert_eq!(
            text(|o| write_flags(o, &flags)),
            r#"{"query.lookback-delta":"5m","query.max-samples":"50000000","storage.tsdb.retention.time":"15d"}"#
        );
        assert_eq!(text(|o| write_flags(o, &BTreeMap::new())), "{}");
        assert_eq!(
            text(|o| success(o, |o| write_config(o, "global:\n  scrape_interval: 1m\n"))),
            r#"{"status":"success","data":{"yaml":"global:\n  scrape_interval: 1m\n"}}"#
        );
    }
}
