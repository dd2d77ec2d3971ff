//! The `alerting:` section: where alerts go (`alertmanagers`: static and file-discovered
//! targets, scheme, path prefix, timeout, API version, relabeling of the Alertmanager targets)
//! and how alerts are relabeled before they go (`alert_relabel_configs`), with Prometheus's
//! defaults and checks. It never contacts an Alertmanager.

use serde::{Deserialize, Serialize};

use super::duration::Duration;
use super::file_sd::FileSdConfig;
use super::relabel::RelabelConfig;
use super::scrape::{Authorization, BasicAuth};
use super::target_group::TargetGroup;
use super::tls::TlsConfig;

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    pub alert_relabel_configs: Vec<RelabelConfig>,
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    #[serde(default)]
    pub static_configs: Vec<TargetGroup>,
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default = "default_path_prefix")]
    pub path_prefix: String,
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    #[serde(default = "default_api_version")]
    pub api_version: String,
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub authorization: Option<Authorization>,
    #[serde(default)]
    pub tls_config: TlsConfig,
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    #[serde(default = "yes")]
    pub enable_http2: bool,
}

fn default_scheme() -> String {
    "http".into()
}
fn default_path_prefix() -> String {
    "/".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_api_version() -> String {
    "v2".into()
}
fn yes() -> bool {
    true
}

impl AlertingConfig {
    /// Checks the section; the error is (field relative to `alerting`, reason).
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, r) in self.alert_relabel_configs.iter().enumerate() {
            r.validate()
                .map_err(|e| (format!("alert_relabel_configs[{i}].{}", e.field), e.reason))?;
        }
        for (i, am) in self.alertmanagers.iter().enumerate() {
            let p = format!("alertmanagers[{i}]");
            if am.api_version != "v2" {
                return Err((
                    format!("{p}.api_version"),
                    format!(
                        "expected Alertmanager api version to be one of [v2] but got {}",
                        am.api_version
                    ),
                ));
            }
            if am.scheme != "http" && am.scheme != "https" {
                return Err((
                    format!("{p}.scheme"),
                    format!("unsupported scheme {:?}", am.scheme),
                ));
            }
            if am.timeout.is_zero() {
                return Err((
                    format!("{p}.timeout"),
                    "timeout must be greater than zero".into(),
                ));
            }
            am.tls_config
                .validate()
                .map_err(|(field, reason)| (format!("{p}.tls_config.{field}"), reason))?;
            for (j, g) in am.static_configs.iter().enumerate() {
                if let Some((f, reason)) = g.invalid_label() {
                    return Err((format!("{p}.static_configs[{j}].{f}"), reason));
                }
            }
            for (j, f) in am.file_sd_configs.iter().enumerate() {
                f.validate().map_err(|(field, reason)| {
                    (format!("{p}.file_sd_configs[{j}].{field}"), reason)
                })?;
            }
            for (j, r) in am.relabel_configs.iter().enumerate() {
                r.validate()
                    .map_err(|e| (format!("{p}.relabel_configs[{j}].{}", e.field), e.reason))?;
            }
            for (j, r) in am.alert_relabel_configs.iter().enumerate() {
                r.validate().map_err(|e| {
                    (
                        format!("{p}.alert_relabel_configs[{j}].{}", e.field),
                        e.reason,
                    )
                })?;
            }
        }
        Ok(())
    }
}
