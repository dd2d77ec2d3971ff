//! From a discovered target to the target that is scraped (Prometheus's `PopulateLabels`):
//! the discovered labels plus `job`, `__scheme__`, `__metrics_path__`, `__scrape_interval__`,
//! `__scrape_timeout__` and `__param_*` defaults, then `relabel_configs`, then the checks,
//! `__meta_*` removal and the `instance` default. A pure function of the scrape config and
//! the discovered labels: it opens no connection and keeps no state.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use shards::labels::{Labels, LabelsError};
use thiserror::Error;

use super::duration::{Duration, DurationError};
use super::label_builder::LabelBuilder;
use super::relabel::{self, RelabelScratch};
use super::scrape::{check_target_address, ScrapeConfig};
use super::target_group::TargetGroup;

pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_LABEL_PREFIX: &str = "__param_";
pub const META_LABEL_PREFIX: &str = "__meta_";
pub const RESERVED_LABEL_PREFIX: &str = "__";
pub const JOB_LABEL: &str = "job";
pub const INSTANCE_LABEL: &str = "instance";

/// Why a target that relabeling kept cannot be scraped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TargetError {
    #[error("no address")]
    NoAddress,
    #[error("{0}")]
    InvalidAddress(String),
    #[error("error parsing scrape interval: {0}")]
    Interval(DurationError),
    #[error("scrape interval cannot be 0")]
    ZeroInterval,
    #[error("error parsing scrape timeout: {0}")]
    Timeout(DurationError),
    #[error("scrape timeout cannot be 0")]
    ZeroTimeout,
    #[error("scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})")]
    TimeoutExceedsInterval { timeout: String, interval: String },
    #[error("invalid labels: {0}")]
    Labels(#[from] LabelsError),
}

/// A target to scrape, after relabeling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The labels attached to every scraped series: no `__`-prefixed label.
    pub labels: Labels,
    pub scheme: String,
    pub address: String,
    pub metrics_path: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// The job's `params`, each first value replaced by its `__param_<name>` label.
    pub params: BTreeMap<String, Vec<String>>,
}

/// The outcome for one discovered target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopulatedTarget {
    /// The labels before relabeling (shown as `discoveredLabels` by the API).
    pub discovered: Labels,
    /// `None` when relabeling dropped the target.
    pub target: Option<Target>,
}

/// Computes the target for the discovered `target_labels` (at least `__address__`) of a
/// group with `group_labels`; target labels win over group labels.
pub fn populate_labels(
    cfg: &ScrapeConfig,
    target_labels: &[(&str, &str)],
    group_labels: &BTreeMap<String, String>,
) -> Result<PopulatedTarget, TargetError> {
    let mut lb = LabelBuilder::new();
    for (name, value) in group_labels {
        lb.set(name, value);
    }
    for (name, value) in target_labels {
        lb.set(name, value);
    }
    let interval = cfg.scrape_interval.to_string();
    let timeout = cfg.scrape_timeout.to_string();
    for (name, value) in [
        (JOB_LABEL, cfg.job_name.as_str()),
        (SCRAPE_INTERVAL_LABEL, &interval),
        (SCRAPE_TIMEOUT_LABEL, &timeout),
        (METRICS_PATH_LABEL, &cfg.metrics_path),
        (SCHEME_LABEL, &cfg.scheme),
    ] {
        if !lb.contains(name) {
            lb.set(name, value);
        }
    }
    let mut param_label = String::new();
    for (name, values) in &cfg.params {
        param_label.clear();
        param_label.push_str(PARAM_LABEL_PREFIX);
        param_label.push_str(name);
        if let Some(first) = values.first() {
            if !lb.contains(&param_label) {
                lb.set(&param_label, first);
            }
        }
    }
    let discovered = lb.to_labels()?;

    if !relabel::process_with(
        &mut lb,
        &cfg.relabel_configs,
        &mut RelabelScratch::default(),
    ) {
        return Ok(PopulatedTarget {
            discovered,
            target: None,
        });
    }
    let address = lb.get(ADDRESS_LABEL).to_string();
    if address.is_empty() {
        return Err(TargetError::NoAddress);
    }
    check_target_address(&address).map_err(TargetError::InvalidAddress)?;
    let interval_text = lb.get(SCRAPE_INTERVAL_LABEL);
    let interval = Duration::parse(interval_text).map_err(TargetError::Interval)?;
    if interval.is_zero() {
        return Err(TargetError::ZeroInterval);
    }
    let timeout_text = lb.get(SCRAPE_TIMEOUT_LABEL);
    let timeout = Duration::parse(timeout_text).map_err(TargetError::Timeout)?;
    if timeout.is_zero() {
        return Err(TargetError::ZeroTimeout);
    }
    if timeout > interval {
        return Err(TargetError::TimeoutExceedsInterval {
            timeout: timeout_text.to_string(),
            interval: interval_text.to_string(),
        });
    }
    lb.retain(|l| !l.name.starts_with(META_LABEL_PREFIX));
    if !lb.contains(INSTANCE_LABEL) {
        lb.set(INSTANCE_LABEL, &address);
    }

    let mut params = cfg.params.clone();
    for l in lb.iter() {
        if let Some(name) = l.name.strip_prefix(PARAM_LABEL_PREFIX) {
            match params.get_mut(name).and_then(|v| v.first_mut()) {
                Some(first) => first.clone_from(&l.value),
                None => {
                    params.insert(name.to_string(), vec![l.value.clone()]);
                }
            }
        }
    }
    let scheme = lb.get(SCHEME_LABEL).to_string();
    let metrics_path = lb.get(METRICS_PATH_LABEL).to_string();
    lb.retain(|l| !l.name.starts_with(RESERVED_LABEL_PREFIX));
    Ok(PopulatedTarget {
        discovered,
        target: Some(Target {
            labels: lb.to_labels()?,
            scheme,
            address,
            metrics_path,
            interval,
            timeout,
            params,
        }),
    })
}

/// The outcome for every target of a group, in order.
pub fn populate_group(
    cfg: &ScrapeConfig,
    group: &TargetGroup,
) -> Vec<Result<PopulatedTarget, TargetError>> {
    group
        .targets
        .iter()
        .map(|address| populate_labels(cfg, &[(ADDRESS_LABEL, address)], &group.labels))
        .collect()
}

impl Target {
    /// `scheme://address/metrics_path?params`, encoded as Go's `url.URL` does (query keys
    /// sorted).
    pub fn url(&self) -> String {
        let mut url = String::with_capacity(
            self.scheme.len() + self.address.len() + self.metrics_path.len() + 16,
        );
        url.push_str(&self.scheme);
        url.push_str("://");
        url.push_str(&self.address);
        self.write_path_and_query(&mut url);
        url
    }

    /// The request target of a scrape: the URL's path and query, encoded as in [`Target::url`]
    /// (`/` when the metrics path is empty).
    pub fn path_and_query(&self) -> String {
        let mut out = String::with_capacity(self.metrics_path.len() + 16);
        self.write_path_and_query(&mut out);
        if out.is_empty() || out.starts_with('?') {
            out.insert(0, '/');
        }
        out
    }

    fn write_path_and_query(&self, url: &mut String) {
        if !self.metrics_path.is_empty() && !self.metrics_path.starts_with('/') {
            url.push('/');
        }
        escape(&self.metrics_path, url, is_path_safe, false);
        let mut separator = '?';
        for (name, values) in &self.params {
            for value in values {
                url.push(separator);
                separator = '&';
                escape(name, url, is_unreserved, true);
                url.push('=');
                escape(value, url, is_unreserved, true);
            }
        }
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn is_path_safe(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'@'
        )
}

fn escape(s: &str, out: &mut String, safe: fn(u8) -> bool, space_as_plus: bool) {
    for b in s.bytes() {
        if safe(b) {
            out.push(char::from(b));
        } else if b == b' ' && space_as_plus {
            out.push('+');
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::global::GlobalConfig;

    fn job(yaml: &str) -> ScrapeConfig {
        let mut g = GlobalConfig::default();
        g.resolve().unwrap();
        let mut c: ScrapeConfig = serde_yaml::from_str(yaml).unwrap();
        c.resolve(&g).unwrap();
        c
    }

    fn pairs(l: &Labels) -> Vec<(&str, &str)> {
        l.iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect()
    }

    #[test]
    fn defaults_before_and_after_relabeling() {
        let cfg = job("{job_name: node, scrape_interval: 15s, params: {module: [http_2xx, x]}}");
        let group = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let p = populate_labels(
            &cfg,
            &[("__address__", "h:9100"), ("__meta_x", "y")],
            &group,
        )
        .unwrap();
        assert_eq!(
            pairs(&p.discovered),
            [
                ("__address__", "h:9100"),
                ("__meta_x", "y"),
                ("__metrics_path__", "/metrics"),
                ("__param_module", "http_2xx"),
                ("__scheme__", "http"),
                ("__scrape_interval__", "15s"),
                ("__scrape_timeout__", "10s"),
                ("env", "prod"),
                ("job", "node"),
            ]
        );
        let t = p.target.unwrap();
        assert_eq!(
            pairs(&t.labels),
            [("env", "prod"), ("instance", "h:9100"), ("job", "node")]
        );
        assert_eq!(t.interval, Duration::from_secs(15));
        assert_eq!(t.timeout, Duration::from_secs(10));
        assert_eq!(t.url(), "http://h:9100/metrics?module=http_2xx&module=x");
    }

    #[test]
    fn target_labels_win_over_group_and_defaults() {
        let cfg = job("{job_name: j}");
        let group = BTreeMap::from([
            ("env".to_string(), "group".to_string()),
            ("job".to_string(), "from-group".to_string()),
        ]);
        let p =
            populate_labels(&cfg, &[("__address__", "a:1"), ("env", "target")], &group).unwrap();
        let t = p.target.unwrap();
        assert_eq!(t.labels.get("env"), Some("target"));
        assert_eq!(t.labels.get("job"), Some("from-group"));
    }

    #[test]
    fn relabeling_rewrites_url_and_instance() {
        // The blackbox exporter pattern from Prometheus's documentation.
        let cfg = job(r#"
job_name: blackbox
metrics_path: /probe
params: {module: [http_2xx]}
relabel_configs:
  - source_labels: [__address__]
    target_label: __param_target
  - source_labels: [__param_target]
    target_label: instance
  - target_label: __address__
    replacement: 127.0.0.1:9115
  - target_label: __scheme__
    replacement: https
"#);
        let p = populate_labels(&cfg, &[("__address__", "example.com")], &BTreeMap::new()).unwrap();
        let t = p.target.unwrap();
        assert_eq!(t.address, "127.0.0.1:9115");
        assert_eq!(
            pairs(&t.labels),
            [("instance", "example.com"), ("job", "blackbox")]
        );
        assert_eq!(
            t.url(),
            "https://127.0.0.1:9115/probe?module=http_2xx&target=example.com"
        );
    }

    #[test]
    fn dropped_targets_keep_their_discovered_labels() {
        let cfg = job("{job_name: j, relabel_configs: [{source_labels: [__address__], regex: 'skip:.*', action: drop}]}");
        let p = populate_labels(&cfg, &[("__address__", "skip:1")], &BTreeMap::new()).unwrap();
        assert_eq!(p.target, None);
        assert_eq!(p.discovered.get("__address__"), Some("skip:1"));
    }

    #[test]
    fn interval_and_timeout_from_labels() {
        let cfg = job(
            "{job_name: j, relabel_configs: [{source_labels: [__meta_interval], regex: '(.+)', target_label: __scrape_interval__}]}",
        );
        let t = populate_labels(
            &cfg,
            &[("__address__", "a:1"), ("__meta_interval", "30s")],
            &BTreeMap::new(),
        )
        .unwrap()
        .target
        .unwrap();
        assert_eq!(t.interval, Duration::from_secs(30));
        assert_eq!(
            populate_labels(
                &cfg,
                &[("__address__", "a:1"), ("__meta_interval", "5s")],
                &BTreeMap::new()
            ),
            Err(TargetError::TimeoutExceedsInterval {
                timeout: "10s".into(),
                interval: "5s".into()
            })
        );
        assert!(matches!(
            populate_labels(
                &cfg,
                &[("__address__", "a:1"), ("__meta_interval", "5x")],
                &BTreeMap::new()
            ),
            Err(TargetError::Interval(_))
        ));
        assert_eq!(
            populate_labels(
                &cfg,
                &[("__address__", "a:1"), ("__meta_interval", "0s")],
                &BTreeMap::new()
            ),
            Err(TargetError::ZeroInterval)
        );
    }

    #[test]
    fn address_errors() {
        let cfg =
            job("{job_name: j, relabel_configs: [{target_label: __address__, replacement: ''}]}");
        assert_eq!(
            populate_labels(&cfg, &[("__address__", "a:1")], &BTreeMap::new()),
            Err(TargetError::NoAddress)
        );
        let cfg = job("{job_name: j}");
        assert!(matches!(
            populate_labels(&cfg, &[("__address__", "http://a:1")], &BTreeMap::new()),
            Err(TargetError::InvalidAddress(_))
        ));
    }

    #[test]
    fn group_targets_in_order() {
        let cfg =
            job("{job_name: j, static_configs: [{targets: ['a:1', 'b:2'], labels: {env: x}}]}");
        let out = populate_group(&cfg, &cfg.static_configs[0]);
        let instances: Vec<_> = out
            .iter()
            .map(|r| {
                r.as_ref()
                    .unwrap()
                    .target
                    .as_ref()
                    .unwrap()
                    .labels
                    .get("instance")
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(instances, ["a:1", "b:2"]);
    }

    #[test]
    fn url_escaping() {
        let t = Target {
            labels: Labels::empty(),
            scheme: "http".into(),
            address: "h:1".into(),
            metrics_path: "a b/c".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            params: BTreeMap::from([("q".to_string(), vec!["x y&z=é".to_string()])]),
        };
        assert_eq!(t.url(), "http://h:1/a%20b/c?q=x+y%26z%3D%C3%A9");
        assert_eq!(t.path_and_query(), "/a%20b/c?q=x+y%26z%3D%C3%A9");
        let bare = Target {
            metrics_path: String::new(),
            ..t
        };
        assert_eq!(bare.path_and_query(), "/?q=x+y%26z%3D%C3%A9");
    }
}
