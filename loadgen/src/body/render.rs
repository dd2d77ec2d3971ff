//! Rendering a shape into a template body, once per format: every byte of the exposition
//! except the values and the `pod` label values, whose fixed-width slots are recorded by
//! offset.
//!
//! This is the only place that knows the two wire formats' differences (metadata order,
//! counter and info family names, `# EOF`). It runs once per process and may allocate; it
//! must never be called per scrape.

use std::io::Write as _;

use super::shape::{Kind, Shape, BUCKETS, DIMENSIONS, QUANTILES};

/// Width of a `pod` label value: eight hex digits.
pub const POD_WIDTH: usize = 8;

/// The info metric every target exposes first, value always 1.
const INFO_FAMILY: &str = "loadgen_build";
const INFO_LABELS: &str = r#"{version="2.42.0",revision="loadgen",goversion="go1.20.1"}"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`
    Text,
    /// `application/openmetrics-text; version=1.0.0`
    OpenMetrics,
}

impl Format {
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A template body and where its slots are.
#[derive(Debug, Clone)]
pub struct Rendering {
    pub format: Format,
    /// The body with every value slot holding zero and every `pod` slot `00000000`.
    pub bytes: Vec<u8>,
    /// Offset of value slot `i` (widths are in `Shape::slots`).
    pub value_at: Vec<u32>,
    /// Offset of the `pod` label value on the line of value slot `i`.
    pub pod_at: Vec<u32>,
}

impl Rendering {
    pub fn new(shape: &Shape, format: Format) -> Rendering {
        // Lines run about 100 bytes; one reservation avoids regrowing a large body.
        let mut out = Vec::with_capacity(64 + shape.slots.len() * 112);
        let mut value_at = Vec::with_capacity(shape.slots.len());
        let mut pod_at = Vec::with_capacity(shape.slots.len());
        let om = format == Format::OpenMetrics;

        let info_help = "Constant 1, labelled by the simulated exporter's build.";
        if om {
            meta(&mut out, "TYPE", INFO_FAMILY, "info");
            meta(&mut out, "HELP", INFO_FAMILY, info_help);
        } else {
            meta(&mut out, "HELP", "loadgen_build_info", info_help);
            meta(&mut out, "TYPE", "loadgen_build_info", "gauge");
        }
        out.extend_from_slice(b"loadgen_build_info");
        out.extend_from_slice(INFO_LABELS.as_bytes());
        out.extend_from_slice(b" 1\n");

        let mut labels = String::new();
        for family in &shape.families {
            let (type_name, type_word) = match (family.kind, om) {
                (Kind::Counter, true) => (
                    family.name.strip_suffix("_total").unwrap_or(&family.name),
                    "counter",
                ),
                (Kind::Counter, false) => (family.name.as_str(), "counter"),
                (Kind::Gauge, _) => (family.name.as_str(), "gauge"),
                (Kind::Histogram, _) => (family.name.as_str(), "histogram"),
                (Kind::Summary, _) => (family.name.as_str(), "summary"),
            };
            if om {
                meta(&mut out, "TYPE", type_name, type_word);
                meta(&mut out, "HELP", type_name, family.help);
            } else {
                meta(&mut out, "HELP", type_name, family.help);
                meta(&mut out, "TYPE", type_name, type_word);
            }
            for group in &shape.groups[family.groups.clone()] {
                labels.clear();
                for (dim, (label, _)) in DIMENSIONS.iter().enumerate().take(shape.config.labels) {
                    labels.push_str(label);
                    labels.push_str("=\"");
                    labels.push_str(&shape.label_value(group.combo, dim));
                    labels.push_str("\",");
                }
                labels.push_str("pod=\"");
                let mut line = |suffix: &str, extra: Option<(&str, &str)>| {
                    out.extend_from_slice(family.name.as_bytes());
                    out.extend_from_slice(suffix.as_bytes());
                    out.push(b'{');
                    out.extend_from_slice(labels.as_bytes());
                    pod_at.push(out.len() as u32);
                    out.extend_from_slice(&[b'0'; POD_WIDTH]);
                    out.push(b'"');
                    if let Some((name, value)) = extra {
                        let _ = write!(out, ",{name}=\"{value}\"");
                    }
                    out.extend_from_slice(b"} ");
                    let slot = value_at.len();
                    value_at.push(out.len() as u32);
                    let format = shape.slots[slot];
                    let start = out.len();
                    out.resize(start + usize::from(format.width), b'0');
                    format.write(&mut out[start..], 0);
                    out.push(b'\n');
                };
                match family.kind {
                    Kind::Counter | Kind::Gauge => line("", None),
                    Kind::Histogram => {
                        for le in BUCKETS.iter().chain(["+Inf"].iter()) {
                            line("_bucket", Some(("le", le)));
                        }
                        line("_sum", None);
                        line("_count", None);
                    }
                    Kind::Summary => {
                        for q in QUANTILES {
                            line("", Some(("quantile", q)));
                        }
                        line("_sum", None);
                        line("_count", None);
                    }
                }
            }
        }
        if om {
            out.extend_from_slice(b"# EOF\n");
        }
        debug_assert_eq!(value_at.len(), shape.slots.len());
        Rendering {
            format,
            bytes: out,
            value_at,
            pod_at,
        }
    }
}

fn meta(out: &mut Vec<u8>, what: &str, name: &str, text: &str) {
    let _ = writeln!(out, "# {what} {name} {text}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::shape::ShapeConfig;

    fn small() -> Shape {
        Shape::new(ShapeConfig {
            series: 27,
            labels: 1,
            label_values: 2,
        })
        .unwrap()
    }

    #[test]
    fn text_template_pinned_head() {
        let r = Rendering::new(&small(), Format::Text);
        let text = String::from_utf8(r.bytes).unwrap();
        let head: Vec<&str> = text.lines().take(8).collect();
        assert_eq!(
            head,
            [
                "# HELP loadgen_build_info Constant 1, labelled by the simulated exporter's build.",
                "# TYPE loadgen_build_info gauge",
                r#"loadgen_build_info{version="2.42.0",revision="loadgen",goversion="go1.20.1"} 1"#,
                "# HELP loadgen_http_request_duration_seconds HTTP request latencies.",
                "# TYPE loadgen_http_request_duration_seconds histogram",
                r#"loadgen_http_request_duration_seconds_bucket{handler="/api/v1/users",pod="00000000",le="0.005"} 000000000000"#,
                r#"loadgen_http_request_duration_seconds_bucket{handler="/api/v1/users",pod="00000000",le="0.01"} 000000000000"#,
                r#"loadgen_http_request_duration_seconds_bucket{handler="/api/v1/users",pod="00000000",le="0.025"} 000000000000"#,
            ]
        );
        assert!(text.contains("# TYPE loadgen_http_requests_total counter\n"));
        assert!(text.contains(
            "loadgen_http_request_duration_seconds_sum{handler=\"/api/v1/users\",pod=\"00000000\"} 000000000.000000\n"
        ));
    }

    #[test]
    fn openmetrics_template_differs_only_where_the_format_does() {
        let r = Rendering::new(&small(), Format::OpenMetrics);
        let text = String::from_utf8(r.bytes).unwrap();
        assert!(text.starts_with("# TYPE loadgen_build info\n# HELP loadgen_build "));
        assert!(text.contains("# TYPE loadgen_http_requests counter\n"));
        assert!(text.contains("\nloadgen_http_requests_total{"));
        assert!(text.ends_with("\n# EOF\n"));
    }

    #[test]
    fn slots_point_at_their_bytes() {
        let shape = small();
        for format in [Format::Text, Format::OpenMetrics] {
            let r = Rendering::new(&shape, format);
            assert_eq!(r.value_at.len(), shape.slots.len());
            for (i, &at) in r.value_at.iter().enumerate() {
                let at = at as usize;
                let w = usize::from(shape.slots[i].width);
                assert_eq!(r.bytes[at - 1], b' ');
                assert_eq!(r.bytes[at + w], b'\n');
                let pod = r.pod_at[i] as usize;
                assert_eq!(&r.bytes[pod - 5..pod], b"pod=\"");
                assert_eq!(r.bytes[pod + POD_WIDTH], b'"');
            }
        }
    }
}
