//! One `scrape_configs` entry (a job): where and how often to scrape, limits, HTTP
//! authentication, service discovery (`static_configs`, `file_sd_configs`) and relabeling.
//! It takes its defaults from the global section as Prometheus's `ScrapeConfig.Validate`
//! does, and checks itself. It never performs a scrape nor reads a credentials file.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::duration::Duration;
use super::file_sd::FileSdConfig;
use super::global::{validate_scrape_protocols, GlobalConfig};
use super::relabel::RelabelConfig;
use super::size::ByteSize;
use super::target_group::TargetGroup;
use super::tls::TlsConfig;

/// A password or token: read from the file, never printed (`<secret>` in logs and in the
/// configuration the API shows, as Prometheus does).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<secret>")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    pub username_file: String,
    pub password: Secret,
    pub password_file: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// `Bearer` when not set.
    #[serde(rename = "type")]
    pub kind: String,
    pub credentials: Secret,
    pub credentials_file: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: String,
    #[serde(default)]
    pub honor_labels: bool,
    #[serde(default = "yes")]
    pub honor_timestamps: bool,
    #[serde(default)]
    pub track_timestamps_staleness: bool,
    /// Query parameters of the scrape URL; each first value becomes `__param_<name>`.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    /// Zero until resolved from the global section.
    #[serde(default)]
    pub scrape_interval: Duration,
    /// Zero until resolved: min(global timeout, this job's interval).
    #[serde(default)]
    pub scrape_timeout: Duration,
    #[serde(default)]
    pub scrape_protocols: Vec<String>,
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default = "yes")]
    pub enable_compression: bool,
    /// Zero: the global limit (itself zero for none).
    #[serde(default)]
    pub body_size_limit: ByteSize,
    #[serde(default)]
    pub sample_limit: u64,
    #[serde(default)]
    pub target_limit: u64,
    #[serde(default)]
    pub label_limit: u64,
    #[serde(default)]
    pub label_name_length_limit: u64,
    #[serde(default)]
    pub label_value_length_limit: u64,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub authorization: Option<Authorization>,
    /// For `https` targets; its files are loaded by the `tls` module.
    #[serde(default)]
    pub tls_config: TlsConfig,
    #[serde(default)]
    pub static_configs: Vec<TargetGroup>,
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

fn yes() -> bool {
    true
}

fn default_metrics_path() -> String {
    "/metrics".to_string()
}

fn default_scheme() -> String {
    "http".to_string()
}

/// A failure as `(field, reason)`, the field relative to the scrape config.
type FieldError = (String, String);

impl ScrapeConfig {
    /// Fills the defaults from `global` (already resolved) and checks the job.
    pub fn resolve(&mut self, global: &GlobalConfig) -> Result<(), FieldError> {
        let err = |field: &str, reason: String| Err((field.to_string(), reason));
        if self.job_name.is_empty() {
            return err("job_name", "job_name is empty".into());
        }
        if self.scheme != "http" && self.scheme != "https" {
            return err(
                "scheme",
                format!(
                    "unsupported scheme {:?}: expected http or https",
                    self.scheme
                ),
            );
        }
        if self.scrape_interval.is_zero() {
            self.scrape_interval = global.scrape_interval;
        }
        if self.scrape_timeout > self.scrape_interval {
            return err(
                "scrape_timeout",
                format!(
                    "scrape timeout ({}) greater than scrape interval ({}) for scrape config with job name {:?}",
                    self.scrape_timeout, self.scrape_interval, self.job_name
                ),
            );
        }
        if self.scrape_timeout.is_zero() {
            self.scrape_timeout = global.scrape_timeout.min(self.scrape_interval);
        }
        if self.body_size_limit.bytes() == 0 {
            self.body_size_limit = global.body_size_limit;
        }
        for (limit, global_limit) in [
            (&mut self.sample_limit, global.sample_limit),
            (&mut self.target_limit, global.target_limit),
            (&mut self.label_limit, global.label_limit),
            (
                &mut self.label_name_length_limit,
                global.label_name_length_limit,
            ),
            (
                &mut self.label_value_length_limit,
                global.label_value_length_limit,
            ),
        ] {
            if *limit == 0 {
                *limit = global_limit;
            }
        }
        if self.scrape_protocols.is_empty() {
            self.scrape_protocols = global.scrape_protocols.clone();
        }
        validate_scrape_protocols(&self.scrape_protocols)
            .map_err(|(i, reason)| (format!("scrape_protocols[{i}]"), reason))?;
        self.validate_auth()?;
        self.tls_config
            .validate()
            .map_err(|(field, reason)| (format!("tls_config.{field}"), reason))?;
        for (i, group) in self.static_configs.iter_mut().enumerate() {
            if let Some((field, reason)) = group.invalid_label() {
                return err(&format!("static_configs[{i}].{field}"), reason);
            }
            for (j, target) in group.targets.iter().enumerate() {
                if let Err(reason) = check_target_address(target) {
                    return err(&format!("static_configs[{i}].targets[{j}]"), reason);
                }
            }
            group.source = i.to_string();
        }
        for (i, sd) in self.file_sd_configs.iter().enumerate() {
            sd.validate()
                .map_err(|(field, reason)| (format!("file_sd_configs[{i}].{field}"), reason))?;
        }
        for (section, configs) in [
            ("relabel_configs", &self.relabel_configs),
            ("metric_relabel_configs", &self.metric_relabel_configs),
        ] {
            for (i, c) in configs.iter().enumerate() {
                c.validate().map_err(|e| {
                    let field = if e.field.is_empty() {
                        format!("{section}[{i}]")
                    } else {
                        format!("{section}[{i}].{}", e.field)
                    };
                    (field, e.reason)
                })?;
            }
        }
        Ok(())
    }

    fn validate_auth(&mut self) -> Result<(), FieldError> {
        let err = |field: &str, reason: &str| Err((field.to_string(), reason.to_string()));
        if let Some(b) = &self.basic_auth {
            if !b.username.is_empty() && !b.username_file.is_empty() {
                return err(
                    "basic_auth",
                    "at most one of basic_auth username & username_file must be configured",
                );
            }
            if !b.password.is_empty() && !b.password_file.is_empty() {
                return err(
                    "basic_auth",
                    "at most one of basic_auth password & password_file must be configured",
                );
            }
        }
        if let Some(a) = &mut self.authorization {
            if !a.credentials.is_empty() && !a.credentials_file.is_empty() {
                return err(
                    "authorization",
                    "at most one of authorization credentials & credentials_file must be configured",
                );
            }
            a.kind = a.kind.trim().to_string();
            if a.kind.is_empty() {
                a.kind = "Bearer".to_string();
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                return err(
                    "authorization.type",
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                );
            }
        }
        if self.basic_auth.is_some() && self.authorization.is_some() {
            return err(
                "authorization",
                "at most one of basic_auth & authorization must be configured",
            );
        }
        Ok(())
    }
}

/// Prometheus's `CheckTargetAddress`, plus refusing an empty address: a target is
/// `host:port`, never a URL.
pub fn check_target_address(address: &str) -> Result<(), String> {
    if address.is_empty() {
        return Err("target address is empty".into());
    }
    if address.contains('/') {
        return Err(format!(
            "{address:?} is not a valid hostname: a target is host:port, without scheme or path (see scheme and metrics_path)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(global: &str, job: &str) -> Result<ScrapeConfig, FieldError> {
        let mut g: GlobalConfig = serde_yaml::from_str(global).unwrap();
        g.resolve().unwrap();
        let mut c: ScrapeConfig = serde_yaml::from_str(job).unwrap();
        c.resolve(&g).map(|()| c)
    }

    #[test]
    fn defaults_from_global() {
        let c = resolved(
            "{scrape_interval: 15s, sample_limit: 100, body_size_limit: 10MB}",
            "job_name: j",
        )
        .unwrap();
        assert_eq!(c.scrape_interval, Duration::from_secs(15));
        assert_eq!(c.scrape_timeout, Duration::from_secs(10));
        assert_eq!(c.metrics_path, "/metrics");
        assert_eq!(c.scheme, "http");
        assert!(c.honor_timestamps && !c.honor_labels && c.enable_compression);
        assert_eq!(c.sample_limit, 100);
        assert_eq!(c.body_size_limit, ByteSize(10 << 20));
        // The job's own interval bounds the inherited timeout.
        let c = resolved("{}", "{job_name: j, scrape_interval: 5s}").unwrap();
        assert_eq!(c.scrape_timeout, Duration::from_secs(5));
        let c = resolved("{}", "{job_name: j, sample_limit: 7}").unwrap();
        assert_eq!(c.sample_limit, 7);
    }

    #[test]
    fn authorization_defaults_to_bearer() {
        let c = resolved("{}", "{job_name: j, authorization: {credentials: t}}").unwrap();
        let a = c.authorization.unwrap();
        assert_eq!(a.kind, "Bearer");
        assert_eq!(a.credentials.expose(), "t");
        assert_eq!(format!("{:?}", a.credentials), "<secret>");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("{job_name: ''}", "job_name"),
            ("{job_name: j, scheme: ftp}", "scheme"),
            ("{job_name: j, scrape_interval: 5s, scrape_timeout: 6s}", "scrape_timeout"),
            ("{job_name: j, static_configs: [{targets: [a:1]}, {targets: [ok:1, 'http://x:1']}]}", "static_configs[1].targets[1]"),
            ("{job_name: j, static_configs: [{targets: ['']}]}", "static_configs[0].targets[0]"),
            ("{job_name: j, static_configs: [{labels: {'x-y': z}}]}", "static_configs[0].labels"),
            ("{job_name: j, file_sd_configs: [{files: [a.txt]}]}", "file_sd_configs[0].files[0]"),
            ("{job_name: j, relabel_configs: [{target_label: y}, {action: hashmod, target_label: x}]}", "relabel_configs[1].modulus"),
            ("{job_name: j, metric_relabel_configs: [{action: dropequal, target_label: x, separator: ','}]}", "metric_relabel_configs[0]"),
            ("{job_name: j, basic_auth: {password: a, password_file: b}}", "basic_auth"),
            ("{job_name: j, basic_auth: {username: a}, authorization: {credentials: b}}", "authorization"),
            ("{job_name: j, authorization: {type: Basic}}", "authorization.type"),
            ("{job_name: j, tls_config: {cert_file: c}}", "tls_config.cert_file"),
            ("{job_name: j, scrape_protocols: [PrometheusText0.0.4, PrometheusText0.0.4]}", "scrape_protocols[1]"),
        ];
        for (job, field) in cases {
            assert_eq!(resolved("{}", job).unwrap_err().0, field, "{job}");
        }
    }
}
