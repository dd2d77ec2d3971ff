//! `prometheus.yml`: the schema promcore supports, with Prometheus's defaults and checks.
//! `Config::parse` / `Config::load` return a fully resolved configuration (every default filled
//! from `global`, every relabel regex compiled) or the first error, naming the field's path
//! (`scrape_configs[2].relabel_configs[0].regex: ...`). Unknown fields are refused, so a typo
//! is never silently ignored. Sections promcore does not act on yet (`remote_write`, ...)
//! are kept as opaque YAML, not refused.
//!
//! This module never touches the running server: applying a configuration (and keeping the
//! old one when a reload fails) is the caller's job.

pub mod alerting;
pub mod duration;
pub mod field_path;
pub mod file_sd;
pub mod global;
pub mod label_builder;
pub mod relabel;
pub mod scrape;
pub mod size;
pub mod target;
pub mod target_group;
pub mod tls;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use global::GlobalConfig;
use scrape::ScrapeConfig;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Malformed YAML, an unknown field or a value of the wrong type, with the field's
    /// path, line and column.
    #[error("{0}")]
    Syntax(#[from] field_path::FieldError),
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{}: {source}", file.display())]
    InFile {
        file: PathBuf,
        #[source]
        source: Box<ConfigError>,
    },
}

impl ConfigError {
    fn invalid(path: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub global: GlobalConfig,
    /// Globs of rule files, relative to the configuration file; expanded when rules load.
    pub rule_files: Vec<String>,
    /// Globs of files holding more scrape configs (Prometheus 2.43+); not loaded yet.
    pub scrape_config_files: Vec<String>,
    pub scrape_configs: Vec<ScrapeConfig>,
    pub alerting: alerting::AlertingConfig,
    /// Opaque until remote write is built.
    pub remote_write: Option<serde_yaml::Value>,
    pub remote_read: Option<serde_yaml::Value>,
    pub storage: Option<serde_yaml::Value>,
    pub tracing: Option<serde_yaml::Value>,
    pub otlp: Option<serde_yaml::Value>,
    pub runtime: Option<serde_yaml::Value>,
}

impl Default for Config {
    fn default() -> Self {
        let mut global = GlobalConfig::default();
        // Resolving the empty global section cannot fail: it only fills defaults.
        let _ = global.resolve();
        Config {
            global,
            rule_files: Vec::new(),
            scrape_config_files: Vec::new(),
            scrape_configs: Vec::new(),
            alerting: alerting::AlertingConfig::default(),
            remote_write: None,
            remote_read: None,
            storage: None,
            tracing: None,
            otlp: None,
            runtime: None,
        }
    }
}

impl Config {
    /// Reads and parses the file at `path`; errors are prefixed with the file name.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Config::parse_in(&text, dir).map_err(|e| ConfigError::InFile {
            file: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Parses, fills the defaults and validates a configuration. An empty document is the
    /// default configuration, as in Prometheus. Relative file names are relative to the
    /// working directory.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse_in(text, Path::new(""))
    }

    /// As [`Config::parse`], with relative file names relative to `dir` (the configuration
    /// file's directory, as in Prometheus).
    pub fn parse_in(text: &str, dir: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = field_path::from_yaml(text)?;
        for s in &mut config.scrape_configs {
            s.tls_config.set_directory(dir);
        }
        for am in &mut config.alerting.alertmanagers {
            am.tls_config.set_directory(dir);
        }
        config.resolve()?;
        Ok(config)
    }

    /// The server's check of the Alertmanagers' TLS files: Prometheus builds their clients
    /// when it applies a configuration and refuses the configuration (at start-up or on a
    /// reload) when a CA, certificate or key cannot be used. A scrape job's unusable TLS
    /// files do not refuse it: that job alone is left out (see `scrape::manager`).
    pub fn check_alertmanager_tls(&self) -> Result<(), ConfigError> {
        for (i, am) in self.alerting.alertmanagers.iter().enumerate() {
            if am.scheme == "https" || am.tls_config != tls::TlsConfig::default() {
                crate::tls::TlsClient::load(&am.tls_config).map_err(|e| {
                    ConfigError::invalid(
                        format!("alerting.alertmanagers[{i}].tls_config.{}", e.field),
                        e.reason,
                    )
                })?;
            }
        }
        Ok(())
    }

    /// promtool's `check config` file checks on scrape jobs' TLS: the client certificate
    /// and key must exist (a CA file is not looked at, as promtool does not).
    pub fn check_client_cert_files(&self) -> Result<(), ConfigError> {
        for (i, s) in self.scrape_configs.iter().enumerate() {
            let t = &s.tls_config;
            for (field, what, file) in [
                ("cert_file", "cert", &t.cert_file),
                ("key_file", "key", &t.key_file),
            ] {
                if file.is_empty() {
                    continue;
                }
                if let Err(e) = std::fs::metadata(file) {
                    return Err(ConfigError::invalid(
                        format!("scrape_configs[{i}].tls_config.{field}"),
                        format!(
                            "error checking client {what} file {file:?}: stat {file}: {}",
                            crate::scrape::client::os_reason(&e)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn scrape_config(&self, job_name: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs.iter().find(|c| c.job_name == job_name)
    }

    fn resolve(&mut self) -> Result<(), ConfigError> {
        self.global
            .resolve()
            .map_err(|(field, reason)| ConfigError::invalid(format!("global.{field}"), reason))?;
        for (i, pattern) in self.rule_files.iter().enumerate() {
            check_glob(pattern)
                .map_err(|reason| ConfigError::invalid(format!("rule_files[{i}]"), reason))?;
        }
        for (i, pattern) in self.scrape_config_files.iter().enumerate() {
            check_glob(pattern).map_err(|reason| {
                ConfigError::invalid(format!("scrape_config_files[{i}]"), reason)
            })?;
        }
        self.alerting
            .validate()
            .map_err(|(field, reason)| ConfigError::invalid(format!("alerting.{field}"), reason))?;
        let mut jobs = HashSet::new();
        for (i, scrape) in self.scrape_configs.iter_mut().enumerate() {
            scrape.resolve(&self.global).map_err(|(field, reason)| {
                ConfigError::invalid(format!("scrape_configs[{i}].{field}"), reason)
            })?;
            if !jobs.insert(scrape.job_name.clone()) {
                return Err(ConfigError::invalid(
                    format!("scrape_configs[{i}].job_name"),
                    format!(
                        "found multiple scrape configs with job name {:?}",
                        scrape.job_name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Prometheus refuses rule file patterns Go's `filepath.Match` cannot parse; the only
/// malformed patterns are unbalanced `[` classes and a trailing `\`.
fn check_glob(pattern: &str) -> Result<(), String> {
    let mut chars = pattern.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next().is_none() => {
                return Err(format!("invalid pattern {pattern:?}: trailing backslash"))
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            _ => {}
        }
    }
    if in_class {
        return Err(format!(
            "invalid pattern {pattern:?}: unclosed character class"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::duration::Duration;
    use super::relabel::Action;
    use super::*;

    fn error(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn the_example_configuration_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prometheus.yml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.global.scrape_interval, Duration::from_secs(15));
        assert_eq!(c.global.evaluation_interval, Duration::from_secs(15));
        let job = c.scrape_config("promcore").unwrap();
        assert_eq!(job.scrape_interval, Duration::from_secs(15));
        assert_eq!(job.scrape_timeout, Duration::from_secs(10));
        assert_eq!(job.static_configs[0].targets, ["localhost:9090"]);
    }

    #[test]
    fn empty_document_is_the_default() {
        for text in ["", "# nothing\n", "{}"] {
            let c = Config::parse(text).unwrap();
            assert_eq!(c, Config::default());
            assert_eq!(c.global.scrape_interval, Duration::from_secs(60));
            assert_eq!(c.global.scrape_timeout, Duration::from_secs(10));
            assert_eq!(c.global.evaluation_interval, Duration::from_secs(60));
        }
    }

    #[test]
    fn a_full_configuration() {
        let c = Config::parse(
            r#"
global:
  scrape_interval: 30s
  scrape_timeout: 20s
  external_labels: {cluster: eu1, replica: 0}
rule_files: ["rules/*.yml", "alerts.yml"]
alerting:
  alertmanagers:
    - static_configs: [{targets: ["am:9093"]}]
      path_prefix: /am
remote_write:
  - url: http://remote/api/v1/write
    queue_config: {max_shards: 10}
scrape_configs:
  - job_name: node
    scrape_interval: 1m
    metrics_path: /m
    scheme: https
    params:
      collect[]: [cpu, meminfo]
    honor_labels: true
    honor_timestamps: false
    sample_limit: 1000
    label_limit: 30
    label_name_length_limit: 200
    label_value_length_limit: 1000
    body_size_limit: 1GiB
    basic_auth: {username: u, password: p}
    static_configs:
      - targets: [a:9100, b:9100]
        labels: {env: prod}
    file_sd_configs:
      - files: [targets/*.json]
        refresh_interval: 1m
    relabel_configs:
      - source_labels: [__address__]
        regex: "(.*):9100"
        target_label: host
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: go_.*
        action: DROP
  - job_name: fast
    scrape_interval: 5s
"#,
        )
        .unwrap();
        assert_eq!(c.global.external_labels["replica"], "0");
        assert_eq!(c.rule_files, ["rules/*.yml", "alerts.yml"]);
        assert!(c.remote_write.is_some());
        assert_eq!(c.alerting.alertmanagers[0].path_prefix, "/am");
        assert_eq!(
            c.alerting.alertmanagers[0].static_configs[0].targets,
            ["am:9093"]
        );
        let node = c.scrape_config("node").unwrap();
        assert_eq!(node.scrape_interval, Duration::from_secs(60));
        assert_eq!(node.scrape_timeout, Duration::from_secs(20));
        assert_eq!(node.params["collect[]"], ["cpu", "meminfo"]);
        assert!(node.honor_labels && !node.honor_timestamps);
        assert_eq!(node.body_size_limit.bytes(), 1 << 30);
        assert_eq!(node.basic_auth.as_ref().unwrap().password.expose(), "p");
        assert_eq!(
            node.file_sd_configs[0].refresh_interval,
            Duration::from_secs(60)
        );
        assert_eq!(node.metric_relabel_configs[0].action, Action::Drop);
        let fast = c.scrape_config("fast").unwrap();
        assert_eq!(fast.scrape_timeout, Duration::from_secs(5));
    }

    #[test]
    fn a_resolved_configuration_prints_back_to_itself() {
        // What /api/v1/status/config will show must load to the same configuration.
        let c = Config::parse(
            "global: {scrape_interval: 90s, external_labels: {a: b}}\nrule_files: [r.yml]\nscrape_configs:\n  - job_name: j\n    body_size_limit: 1536KB\n    static_configs: [{targets: ['h:1']}]\n    relabel_configs: [{source_labels: [a], regex: 'x(.*)', target_label: b, replacement: '${1}'}]\n",
        )
        .unwrap();
        let text = serde_yaml::to_string(&c).unwrap();
        let mut again = Config::parse(&text).unwrap();
        again.scrape_configs[0].static_configs[0].source = "0".into();
        assert_eq!(again, c, "{text}");
        assert!(text.contains("scrape_interval: 1m30s"), "{text}");
        assert!(text.contains("body_size_limit: 1536KiB"), "{text}");
    }

    #[test]
    fn null_relabel_rules_are_refused() {
        assert!(
            Config::parse("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      -\n")
                .is_err()
        );
    }

    #[test]
    fn every_error_names_its_path() {
        let cases = [
            ("global:\n  scrape_interval: 15x\n", "global.scrape_interval: unknown unit \"x\" in duration \"15x\""),
            ("global:\n  scrape_interval: 15\n", "global.scrape_interval: not a valid duration string: \"15\""),
            ("global:\n  scrape_interval: 10s\n  scrape_timeout: 20s\n", "global.scrape_timeout: global scrape timeout (20s) greater than scrape interval (10s)"),
            ("global:\n  external_labels: {'a-b': x}\n", "global.external_labels: \"a-b\" is not a valid label name"),
            ("global:\n  scrape_intervall: 1m\n", "global.scrape_intervall: unknown field `scrape_intervall`"),
            ("scrape_configs:\n  - job_name: a\n  - job_name: a\n", "scrape_configs[1].job_name: found multiple scrape configs with job name \"a\""),
            ("scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n", "scrape_configs[0].scrape_timeout: scrape timeout (10s) greater than scrape interval (5s)"),
            ("scrape_configs:\n  - {job_name: a}\n  - {job_name: b}\n  - job_name: c\n    relabel_configs:\n      - regex: '(['\n", "scrape_configs[2].relabel_configs[0].regex: invalid regex \"([\""),
            ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: nope\n", "scrape_configs[0].relabel_configs[0].action: unknown relabel action \"nope\""),
            ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {action: hashmod, target_label: x}\n", "scrape_configs[0].relabel_configs[0].modulus: relabel configuration for hashmod requires non-zero modulus"),
            ("scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['http://h:1']\n", "scrape_configs[0].static_configs[0].targets[0]: \"http://h:1\" is not a valid hostname"),
            ("scrape_configs:\n  - job_name: a\n    static_configs:\n      - labels: {'0x': y}\n", "scrape_configs[0].static_configs[0].labels: \"0x\" is not a valid label name"),
            ("scrape_configs:\n  - job_name: a\n    body_size_limit: 10kB\n", "scrape_configs[0].body_size_limit: unknown unit \"kB\""),
            ("scrape_configs:\n  - job_name: a\n    sample_limit: -1\n", "scrape_configs[0].sample_limit: invalid type: integer `-1`"),
            ("scrape_configs:\n  - job_name: a\n    tls_config: {cafile: x}\n", "scrape_configs[0].tls_config.cafile: unknown field `cafile`"),
            ("scrape_configs:\n  - job_name: a\n    tls_config: {min_version: TLS14}\n", "scrape_configs[0].tls_config.min_version: unknown TLS version: TLS14"),
            ("scrape_configs:\n  - job_name: a\n    tls_config: {cert_file: c.pem}\n", "scrape_configs[0].tls_config.cert_file: client cert file \"c.pem\" specified without client key file"),
            ("scrape_configs:\n  - scrape_interval: 1m\n", "scrape_configs[0]: missing field `job_name`"),
            ("scrape_configs:\n  - job_name: a\n    file_sd_configs: [{files: [x.txt]}]\n", "scrape_configs[0].file_sd_configs[0].files[0]: path name \"x.txt\" is not valid"),
            ("rule_files: ['rules/[a.yml']\n", "rule_files[0]: invalid pattern"),
            ("alerting:\n  alertmanagers:\n    - api_version: v1\n", "alerting.alertmanagers[0].api_version: expected Alertmanager api version to be one of [v2] but got v1"),
            ("alerting:\n  alertmanagers:\n    - static_configs: [{targets: [a]}]\n      tls_config: {key_file: /k}\n", "alerting.alertmanagers[0].tls_config.key_file: client key file \"/k\" specified without client cert file"),
            ("alerting:\n  alert_relabel_configs:\n    - action: nope\n", "alerting.alert_relabel_configs[0].action: unknown relabel action"),
            ("unknown_section: {}\n", "unknown_section: unknown field `unknown_section`"),
            ("scrape_configs: [\n", "scrape_configs: did not find expected node content at line 2 column 1"),
        ];
        for (text, want) in cases {
            let got = error(text);
            assert!(got.starts_with(want), "\n got: {got}\nwant: {want}...");
        }
    }

    /// Unusable TLS files do not refuse a configuration as such (Prometheus 2.42 parses it);
    /// the server refuses one whose Alertmanager client cannot be built, and `check config`
    /// refuses a missing client certificate or key of a scrape job, as promtool does.
    #[test]
    fn tls_files_are_checked_where_prometheus_checks_them() {
        let ca = "scrape_configs:\n  - job_name: a\n    scheme: https\n    tls_config: {ca_file: /nonexistent/ca.pem}\n";
        let c = Config::parse(ca).unwrap();
        c.check_alertmanager_tls().unwrap();
        c.check_client_cert_files().unwrap();
        let cert = "scrape_configs:\n  - job_name: a\n    tls_config: {cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem}\n";
        let e = Config::parse(cert)
            .unwrap()
            .check_client_cert_files()
            .unwrap_err();
        assert_eq!(e.to_string(), "scrape_configs[0].tls_config.cert_file: error checking client cert file \"/nonexistent/c.pem\": stat /nonexistent/c.pem: no such file or directory");
        let am = "alerting:\n  alertmanagers:\n    - scheme: https\n      tls_config: {cert_file: /nonexistent/c, key_file: /nonexistent/k}\n";
        let c = Config::parse(am).unwrap();
        c.check_client_cert_files().unwrap();
        let e = c.check_alertmanager_tls().unwrap_err();
        assert_eq!(e.to_string(), "alerting.alertmanagers[0].tls_config.cert_file: unable to use specified client cert (/nonexistent/c) & key (/nonexistent/k): open /nonexistent/c: no such file or directory");
        let am_ca =
            "alerting:\n  alertmanagers:\n    - tls_config: {ca_file: /nonexistent/am.pem}\n";
        let e = Config::parse(am_ca)
            .unwrap()
            .check_alertmanager_tls()
            .unwrap_err();
        assert_eq!(e.to_string(), "alerting.alertmanagers[0].tls_config.ca_file: unable to load specified CA cert /nonexistent/am.pem: open /nonexistent/am.pem: no such file or directory");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yml");
        std::fs::write(&path, "global: {scrape_interval: 1x}\n").unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: global.scrape_interval:", path.display())),
            "{e}"
        );
        let e = Config::load(&dir.path().join("missing.yml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
    }
}
