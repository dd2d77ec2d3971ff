//! Which Alertmanagers an `alertmanagers` entry points at: its static and file-discovered
//! target groups, each target given `__address__`, `__scheme__` and `__alerts_path__` and the
//! group's labels, then the entry's `relabel_configs` (which may drop it). The survivors are
//! the active Alertmanagers, the others the dropped ones, as `/api/v1/alertmanagers` lists.
//!
//! Pure, given the target groups; it reads no file (discovery is the notifier's).

use crate::config::alerting::AlertmanagerConfig;
use crate::config::label_builder::LabelBuilder;
use crate::config::relabel::process;
use crate::config::target_group::TargetGroup;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertmanagerTarget {
    pub scheme: String,
    pub address: String,
    pub path: String,
}

impl AlertmanagerTarget {
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.address, self.path)
    }
}

/// `path.Join(prefix, "/api/v2/alerts")`.
pub fn alerts_path(prefix: &str) -> String {
    let joined = format!("{}/api/v2/alerts", prefix.trim_end_matches('/'));
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

/// (active, dropped) Alertmanagers of one entry, given its target groups.
pub fn resolve(
    cfg: &AlertmanagerConfig,
    groups: &[TargetGroup],
) -> (Vec<AlertmanagerTarget>, Vec<AlertmanagerTarget>) {
    let path = alerts_path(&cfg.path_prefix);
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    for g in groups {
        for t in &g.targets {
            let mut lb = LabelBuilder::new();
            for (k, v) in &g.labels {
                lb.set(k, v);
            }
            lb.set("__address__", t);
            lb.set("__scheme__", &cfg.scheme);
            lb.set("__alerts_path__", &path);
            let before = AlertmanagerTarget {
                scheme: cfg.scheme.clone(),
                address: t.clone(),
                path: path.clone(),
            };
            if !process(&mut lb, &cfg.relabel_configs) || lb.get("__address__").is_empty() {
                dropped.push(before);
                continue;
            }
            let am = AlertmanagerTarget {
                scheme: lb.get("__scheme__").to_string(),
                address: lb.get("__address__").to_string(),
                path: lb.get("__alerts_path__").to_string(),
            };
            if !active.contains(&am) {
                active.push(am);
            }
        }
    }
    (active, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_targets_with_prefix_and_relabeling() {
        let cfg: AlertmanagerConfig = serde_yaml::from_str(
            "{path_prefix: /am/, relabel_configs: [{source_labels: [__address__], regex: 'drop.*', action: drop}]}",
        )
        .unwrap();
        let mut cfg = cfg;
        for r in &mut cfg.relabel_configs {
            r.validate().unwrap();
        }
        let groups = vec![TargetGroup {
            targets: vec!["a:9093".into(), "drop:1".into()],
            ..Default::default()
        }];
        let (active, dropped) = resolve(&cfg, &groups);
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].url(), "http://a:9093/am/api/v2/alerts");
        assert_eq!(dropped[0].address, "drop:1");
        assert_eq!(alerts_path("/"), "/api/v2/alerts");
    }
}
