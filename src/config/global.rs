//! The `global:` section: defaults for every scrape config (interval, timeout, limits), the
//! rule evaluation interval and the external labels. It fills its own defaults as Prometheus's
//! `GlobalConfig.UnmarshalYAML` does; it never reaches into scrape configs (they take their
//! defaults from it, in `scrape`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shards::labels::is_valid_label_name;

use super::duration::Duration;
use super::size::ByteSize;

pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);

/// Zero durations and limits mean "not set" until `resolve` fills them; afterwards the
/// durations are set and a zero limit means "no limit", as in Prometheus.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub evaluation_interval: Duration,
    pub rule_query_offset: Duration,
    pub external_labels: BTreeMap<String, String>,
    pub body_size_limit: ByteSize,
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub query_log_file: String,
    pub scrape_protocols: Vec<String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: Duration::ZERO,
            scrape_timeout: Duration::ZERO,
            evaluation_interval: Duration::ZERO,
            rule_query_offset: Duration::ZERO,
            external_labels: BTreeMap::new(),
            body_size_limit: ByteSize(0),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            query_log_file: String::new(),
            scrape_protocols: Vec::new(),
        }
    }
}

/// The scrape protocols Prometheus knows (`config.ScrapeProtocol`).
const SCRAPE_PROTOCOLS: [&str; 5] = [
    "PrometheusProto",
    "OpenMetricsText0.0.1",
    "OpenMetricsText1.0.0",
    "PrometheusText0.0.4",
    "PrometheusText1.0.0",
];

impl GlobalConfig {
    /// Fills the defaults and checks the section, as `(field, reason)` on failure.
    pub fn resolve(&mut self) -> Result<(), (String, String)> {
        if self.scrape_interval.is_zero() {
            self.scrape_interval = DEFAULT_SCRAPE_INTERVAL;
        }
        if self.scrape_timeout > self.scrape_interval {
            return Err((
                "scrape_timeout".into(),
                format!(
                    "global scrape timeout ({}) greater than scrape interval ({})",
                    self.scrape_timeout, self.scrape_interval
                ),
            ));
        }
        if self.scrape_timeout.is_zero() {
            self.scrape_timeout = DEFAULT_SCRAPE_TIMEOUT.min(self.scrape_interval);
        }
        if self.evaluation_interval.is_zero() {
            self.evaluation_interval = DEFAULT_EVALUATION_INTERVAL;
        }
        if let Some(name) = self
            .external_labels
            .keys()
            .find(|n| !is_valid_label_name(n))
        {
            return Err((
                "external_labels".into(),
                format!("{name:?} is not a valid label name"),
            ));
        }
        validate_scrape_protocols(&self.scrape_protocols)
            .map_err(|(i, reason)| (format!("scrape_protocols[{i}]"), reason))
    }
}

/// Each protocol known and listed once, as `(index, reason)` on failure.
pub fn validate_scrape_protocols(protocols: &[String]) -> Result<(), (usize, String)> {
    for (i, p) in protocols.iter().enumerate() {
        if !SCRAPE_PROTOCOLS.contains(&p.as_str()) {
            return Err((
                i,
                format!(
                    "unknown scrape protocol {p:?}, supported: {}",
                    SCRAPE_PROTOCOLS.join(", ")
                ),
            ));
        }
        if protocols[..i].contains(p) {
            return Err((i, format!("duplicated protocol in scrape_protocols: {p:?}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(yaml: &str) -> Result<GlobalConfig, (String, String)> {
        let mut g: GlobalConfig = serde_yaml::from_str(yaml).unwrap();
        g.resolve().map(|()| g)
    }

    #[test]
    fn defaults() {
        let g = resolved("{}").unwrap();
        assert_eq!(g.scrape_interval, Duration::from_secs(60));
        assert_eq!(g.scrape_timeout, Duration::from_secs(10));
        assert_eq!(g.evaluation_interval, Duration::from_secs(60));
        // A short interval bounds the default timeout.
        let g = resolved("scrape_interval: 5s").unwrap();
        assert_eq!(g.scrape_timeout, Duration::from_secs(5));
        let g = resolved("scrape_interval: 15s").unwrap();
        assert_eq!(g.scrape_timeout, Duration::from_secs(10));
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            resolved("scrape_timeout: 2m").unwrap_err().0,
            "scrape_timeout"
        );
        assert_eq!(
            resolved("external_labels: {'a b': x}").unwrap_err().0,
            "external_labels"
        );
        assert_eq!(
            resolved("scrape_protocols: [PrometheusText0.0.4, Nope]")
                .unwrap_err()
                .0,
            "scrape_protocols[1]"
        );
    }
}
