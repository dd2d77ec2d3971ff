//! The body of Alertmanager's `POST /api/v2/alerts`: a JSON array of alerts with labels,
//! annotations, `startsAt`, `endsAt` (RFC 3339, as Go prints them) and `generatorURL`.
//! Pure encoding; no I/O.

use std::collections::BTreeMap;

use crate::api::json::{write_label_pairs, write_string};
use crate::api::rfc3339::{format_nano, Instant};

/// An alert as the notifier queues and sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifierAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Milliseconds since the epoch.
    pub starts_at: i64,
    pub ends_at: i64,
    pub generator_url: String,
}

/// Labels or annotations as a JSON object, in name order.
fn write_map(out: &mut Vec<u8>, m: &BTreeMap<String, String>) {
    write_label_pairs(out, m.iter().map(|(k, v)| (k.as_str(), v.as_str())));
}

fn write_time(out: &mut Vec<u8>, ms: i64) {
    out.push(b'"');
    format_nano(
        out,
        Instant {
            secs: ms.div_euclid(1000),
            nanos: (ms.rem_euclid(1000) * 1_000_000) as u32,
        },
    );
    out.push(b'"');
}

pub fn encode(alerts: &[NotifierAlert]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 * alerts.len() + 2);
    out.push(b'[');
    for (i, a) in alerts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"labels\":");
        write_map(&mut out, &a.labels);
        out.extend_from_slice(b",\"annotations\":");
        write_map(&mut out, &a.annotations);
        out.extend_from_slice(b",\"startsAt\":");
        write_time(&mut out, a.starts_at);
        out.extend_from_slice(b",\"endsAt\":");
        write_time(&mut out, a.ends_at);
        out.extend_from_slice(b",\"generatorURL\":");
        write_string(&mut out, &a.generator_url);
        out.push(b'}');
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_alertmanagers_v2_shape() {
        let a = NotifierAlert {
            labels: [("alertname".to_string(), "A\"x".to_string())]
                .into_iter()
                .collect(),
            annotations: BTreeMap::new(),
            starts_at: 1_700_000_000_500,
            ends_at: 1_700_000_060_000,
            generator_url: "http://p/graph?g0.expr=up".into(),
        };
        let body = String::from_utf8(encode(&[a])).unwrap();
        assert_eq!(
            body,
            r#"[{"labels":{"alertname":"A\"x"},"annotations":{},"startsAt":"2023-11-14T22:13:20.5Z","endsAt":"2023-11-14T22:14:20Z","generatorURL":"http://p/graph?g0.expr=up"}]"#
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v[0]["labels"]["alertname"], "A\"x");
    }
}
