//! The data of `/api/v1/targets` in Prometheus's exact shape (`activeTargets`,
//! `droppedTargets`, `droppedTargetCounts`, camelCase keys) and its `state` / `scrapePool`
//! filters. Callers describe each target with borrowed fields, so answering never copies
//! label sets.
//!
//! This module formats; it never looks at the scrape manager and never sorts: callers pass
//! targets grouped by scrape pool, pools sorted by name, as Prometheus lists them.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use shards::labels::Labels;

use super::json::{write_go_json_float, write_labels, write_string};
use super::rfc3339::{self, Instant};
use crate::scrape::target_status::Health;

/// One active target.
#[derive(Debug, Clone, Copy)]
pub struct TargetJson<'a> {
    /// The labels before relabeling (`__address__`, `__meta_*`, ...).
    pub discovered_labels: &'a Labels,
    /// The labels attached to the target's series.
    pub labels: &'a Labels,
    pub scrape_pool: &'a str,
    pub scrape_url: &'a str,
    /// The scrape URL as seen from outside (`localhost` replaced by the server's host).
    pub global_url: &'a str,
    /// Empty when the last scrape succeeded.
    pub last_error: &'a str,
    /// Start of the last scrape; `None` before the first, shown as Go's zero time.
    pub last_scrape: Option<SystemTime>,
    pub last_scrape_duration: Duration,
    pub health: Health,
    /// The target's `__scrape_interval__` / `__scrape_timeout__` values (`"15s"`).
    pub scrape_interval: &'a str,
    pub scrape_timeout: &'a str,
}

/// One target that relabeling dropped.
#[derive(Debug, Clone, Copy)]
pub struct DroppedTargetJson<'a> {
    pub discovered_labels: &'a Labels,
    pub scrape_pool: &'a str,
}

/// Which targets a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetsFilter<'a> {
    pub active: bool,
    pub dropped: bool,
    /// Only this pool's targets (`scrapePool=`); the dropped counts stay unfiltered.
    pub scrape_pool: Option<&'a str>,
}

impl<'a> TargetsFilter<'a> {
    /// From the `state` and `scrapePool` query parameters, as Prometheus reads them:
    /// `state` is case-insensitive; absent, empty or `any` show both lists, `active` or
    /// `dropped` one of them, and any other value neither (the docs say "ignored", the
    /// code shows two empty lists). An empty `scrapePool` is no filter.
    pub fn from_params(state: Option<&str>, scrape_pool: Option<&'a str>) -> Self {
        let state = state.unwrap_or("").to_ascii_lowercase();
        let any = state.is_empty() || state == "any";
        TargetsFilter {
            active: any || state == "active",
            dropped: any || state == "dropped",
            scrape_pool: scrape_pool.filter(|p| !p.is_empty()),
        }
    }

    fn keeps(&self, pool: &str) -> bool {
        self.scrape_pool.is_none_or(|p| p == pool)
    }
}

/// The `data` object of `/api/v1/targets`. A list the filter leaves out is `[]`;
/// `droppedTargetCounts` (dropped targets per pool, all pools) is `null` when dropped
/// targets are not shown, as Prometheus's nil map marshals.
pub fn write_targets(
    out: &mut Vec<u8>,
    active: &[TargetJson<'_>],
    dropped: &[DroppedTargetJson<'_>],
    dropped_counts: &BTreeMap<String, usize>,
    filter: &TargetsFilter<'_>,
) {
    out.extend_from_slice(br#"{"activeTargets":["#);
    if filter.active {
        let kept = active.iter().filter(|t| filter.keeps(t.scrape_pool));
        for (i, t) in kept.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_active_target(out, t);
        }
    }
    out.extend_from_slice(br#"],"droppedTargets":["#);
    if filter.dropped {
        let kept = dropped.iter().filter(|t| filter.keeps(t.scrape_pool));
        for (i, t) in kept.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"discoveredLabels":"#);
            write_labels(out, t.discovered_labels);
            out.extend_from_slice(br#","scrapePool":"#);
            write_string(out, t.scrape_pool);
            out.push(b'}');
        }
    }
    out.extend_from_slice(br#"],"droppedTargetCounts":"#);
    if filter.dropped {
        out.push(b'{');
        for (i, (pool, n)) in dropped_counts.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_string(out, pool);
            out.push(b':');
            out.extend_from_slice(n.to_string().as_bytes());
        }
        out.push(b'}');
    } else {
        out.extend_from_slice(b"null");
    }
    out.push(b'}');
}

fn write_active_target(out: &mut Vec<u8>, t: &TargetJson<'_>) {
    out.extend_from_slice(br#"{"discoveredLabels":"#);
    write_labels(out, t.discovered_labels);
    out.extend_from_slice(br#","labels":"#);
    write_labels(out, t.labels);
    for (key, value) in [
        ("scrapePool", t.scrape_pool),
        ("scrapeUrl", t.scrape_url),
        ("globalUrl", t.global_url),
        ("lastError", t.last_error),
    ] {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        write_string(out, value);
    }
    out.extend_from_slice(br#","lastScrape":""#);
    rfc3339::format_nano(out, go_time(t.last_scrape));
    out.extend_from_slice(br#"","lastScrapeDuration":"#);
    write_go_json_float(out, t.last_scrape_duration.as_secs_f64());
    out.extend_from_slice(br#","health":""#);
    out.extend_from_slice(t.health.as_str().as_bytes());
    out.extend_from_slice(br#"","scrapeInterval":"#);
    write_string(out, t.scrape_interval);
    out.extend_from_slice(br#","scrapeTimeout":"#);
    write_string(out, t.scrape_timeout);
    out.push(b'}');
}

/// `None` is Go's zero `time.Time`, 0001-01-01T00:00:00Z.
fn go_time(t: Option<SystemTime>) -> Instant {
    const GO_ZERO_TIME_SECS: i64 = -62_135_596_800;
    let Some(t) = t else {
        return Instant {
            secs: GO_ZERO_TIME_SECS,
            nanos: 0,
        };
    };
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Instant {
            secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: d.subsec_nanos(),
        },
        Err(before) => {
            let d = before.duration();
            let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => Instant { secs, nanos: 0 },
                n => Instant {
                    secs: secs - 1,
                    nanos: 1_000_000_000 - n,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    struct Fixture {
        discovered: Labels,
        target_labels: Labels,
        node_discovered: Labels,
        counts: BTreeMap<String, usize>,
    }

    fn fixture() -> Fixture {
        Fixture {
            discovered: labels(&[
                ("__address__", "127.0.0.1:9090"),
                ("__metrics_path__", "/metrics"),
                ("__scheme__", "http"),
                ("job", "prometheus"),
            ]),
            target_labels: labels(&[("instance", "127.0.0.1:9090"), ("job", "prometheus")]),
            node_discovered: labels(&[("__address__", "10.0.0.1:9100"), ("job", "node")]),
            counts: BTreeMap::from([("node".to_string(), 1)]),
        }
    }

    fn write(f: &Fixture, filter: TargetsFilter<'_>) -> String {
        let active = [TargetJson {
            discovered_labels: &f.discovered,
            labels: &f.target_labels,
            scrape_pool: "prometheus",
            scrape_url: "http://127.0.0.1:9090/metrics",
            global_url: "http://myhost:9090/metrics",
            last_error: "",
            last_scrape: Some(UNIX_EPOCH + Duration::new(1_484_665_664, 723_715_405)),
            last_scrape_duration: Duration::from_nanos(50_688_943),
            health: Health::Up,
            scrape_interval: "1m",
            scrape_timeout: "10s",
        }];
        let dropped = [DroppedTargetJson {
            discovered_labels: &f.node_discovered,
            scrape_pool: "node",
        }];
        text(|o| write_targets(o, &active, &dropped, &f.counts, &filter))
    }

    /// The spec's example answer (times in UTC: promcore does not use local time).
    const GOLDEN_ALL: &str = concat!(
        r#"{"activeTargets":[{"#,
        r#""discoveredLabels":{"__address__":"127.0.0.1:9090","__metrics_path__":"/metrics","__scheme__":"http","job":"prometheus"},"#,
        r#""labels":{"instance":"127.0.0.1:9090","job":"prometheus"},"#,
        r#""scrapePool":"prometheus","#,
        r#""scrapeUrl":"http://127.0.0.1:9090/metrics","#,
        r#""globalUrl":"http://myhost:9090/metrics","#,
        r#""lastError":"","#,
        r#""lastScrape":"2017-01-17T15:07:44.723715405Z","#,
        r#""lastScrapeDuration":0.050688943,"#,
        r#""health":"up","#,
        r#""scrapeInterval":"1m","#,
        r#""scrapeTimeout":"10s"}],"#,
        r#""droppedTargets":[{"discoveredLabels":{"__address__":"10.0.0.1:9100","job":"node"},"scrapePool":"node"}],"#,
        r#""droppedTargetCounts":{"node":1}}"#
    );

    #[test]
    fn golden_targets_answer() {
        let f = fixture();
        let all = write(&f, TargetsFilter::from_params(None, None));
        assert_eq!(all, GOLDEN_ALL);
        assert_eq!(
            write(&f, TargetsFilter::from_params(Some("ANY"), Some(""))),
            GOLDEN_ALL
        );
        let v: serde_json::Value = serde_json::from_str(&all).unwrap();
        assert_eq!(v["activeTargets"][0]["lastScrapeDuration"], 0.050688943);
    }

    #[test]
    fn state_filter() {
        let f = fixture();
        let active = write(&f, TargetsFilter::from_params(Some("active"), None));
        assert!(active.starts_with(r#"{"activeTargets":[{"discoveredLabels""#));
        assert!(active.ends_with(r#""droppedTargets":[],"droppedTargetCounts":null}"#));

        let dropped = write(&f, TargetsFilter::from_params(Some("Dropped"), None));
        assert_eq!(
            dropped,
            concat!(
                r#"{"activeTargets":[],"droppedTargets":[{"discoveredLabels":{"__address__":"10.0.0.1:9100","job":"node"},"scrapePool":"node"}],"#,
                r#""droppedTargetCounts":{"node":1}}"#
            )
        );
        assert_eq!(
            write(&f, TargetsFilter::from_params(Some("bogus"), None)),
            r#"{"activeTargets":[],"droppedTargets":[],"droppedTargetCounts":null}"#
        );
    }

    #[test]
    fn scrape_pool_filter() {
        let f = fixture();
        let node = write(&f, TargetsFilter::from_params(None, Some("node")));
        assert!(node.starts_with(r#"{"activeTargets":[],"droppedTargets":[{"#));
        let prom = write(&f, TargetsFilter::from_params(None, Some("prometheus")));
        assert!(prom.contains(r#""droppedTargets":[],"droppedTargetCounts":{"node":1}}"#));
    }

    #[test]
    fn never_scraped_target() {
        let f = fixture();
        let t = TargetJson {
            discovered_labels: &f.discovered,
            labels: &f.target_labels,
            scrape_pool: "p",
            scrape_url: "u",
            global_url: "g",
            last_error: "Get \"u\": connection refused",
            last_scrape: None,
            last_scrape_duration: Duration::ZERO,
            health: Health::Unknown,
            scrape_interval: "15s",
            scrape_timeout: "10s",
        };
        let body = text(|o| {
            write_targets(
                o,
                &[t],
                &[],
                &BTreeMap::new(),
                &TargetsFilter::from_params(None, None),
            )
        });
        assert!(body.contains(r#""lastError":"Get \"u\": connection refused","lastScrape":"0001-01-01T00:00:00Z","lastScrapeDuration":0,"health":"unknown""#));
        assert!(body.ends_with(r#""droppedTargets":[],"droppedTargetCounts":{}}"#));
        assert_eq!(Health::Down.as_str(), "down");
    }

    #[test]
    fn times_before_the_epoch() {
        let t = UNIX_EPOCH - Duration::from_millis(1_500);
        assert_eq!(
            go_time(Some(t)),
            Instant {
                secs: -2,
                nanos: 500_000_000
            }
        );
        assert_eq!(go_time(Some(UNIX_EPOCH - Duration::from_secs(3))).secs, -3);
    }
}
