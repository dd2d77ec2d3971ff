//! Property tests: random series rendered to both formats parse back exactly, and no input
//! makes the parser panic.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::scrape::series_hash::KnownSeries;

use super::*;

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
    timestamp_ms: Option<i64>,
}

fn sample() -> impl Strategy<Value = Sample> {
    (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        proptest::collection::btree_map(
            "[a-zA-Z_][a-zA-Z0-9_]{0,8}".prop_filter("not __name__", |n| n != "__name__"),
            // Any text, with the characters that need escapes made frequent.
            proptest::collection::vec(
                prop_oneof![Just('\\'), Just('"'), Just('\n'), Just('n'), any::<char>()],
                0..12,
            )
            .prop_map(|cs| cs.into_iter().collect::<String>()),
            0..6,
        ),
        prop_oneof![
            any::<f64>(),
            (-1_000_000i64..1_000_000).prop_map(|v| v as f64),
            (-1_000_000i64..1_000_000).prop_map(|v| v as f64 / 1000.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
        ],
        proptest::option::of(0i64..4_000_000_000_000),
    )
        .prop_map(|(name, labels, value, timestamp_ms)| Sample {
            name,
            labels,
            value,
            timestamp_ms,
        })
}

fn render_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

/// `(series, line)`; `blank` separates tokens (text allows any run of blanks).
fn render(s: &Sample, format: Format, blank: &str, trailing_comma: bool) -> (String, String) {
    let mut series = s.name.clone();
    if !s.labels.is_empty() || trailing_comma {
        series.push('{');
        for (i, (n, v)) in s.labels.iter().enumerate() {
            if i > 0 {
                series.push(',');
            }
            series.push_str(n);
            series.push_str("=\"");
            escape_label_value(v, &mut series);
            series.push('"');
        }
        if trailing_comma && !s.labels.is_empty() {
            series.push(',');
        }
        series.push('}');
    }
    let mut line = format!("{series}{blank}{}", render_value(s.value));
    if let Some(ms) = s.timestamp_ms {
        match format {
            Format::PrometheusText => line += &format!("{blank}{ms}"),
            Format::OpenMetrics => line += &format!(" {}.{:03}", ms / 1000, ms % 1000),
        }
    }
    (series, line)
}

fn check_round_trip(samples: &[Sample], format: Format, blank: &str, trailing_comma: bool) {
    let mut body = String::new();
    let mut rendered = Vec::new();
    for s in samples {
        let (series, line) = render(s, format, blank, trailing_comma);
        body += &line;
        body.push('\n');
        rendered.push(series);
    }
    if format == Format::OpenMetrics {
        body += "# EOF\n";
    }
    let mut parser = Parser::new(body.as_bytes(), format);
    let mut out = Vec::new();
    let mut n = 0;
    while let Some(entry) = parser.next() {
        let entry = entry.unwrap_or_else(|e| panic!("{e} in {body:?}"));
        let Entry::Sample {
            series,
            value,
            timestamp_ms,
        } = entry
        else {
            panic!("unexpected {entry:?}")
        };
        let want = &samples[n];
        assert_eq!(series, rendered[n].as_bytes());
        if want.value.is_nan() {
            assert_eq!(value.to_bits(), NORMAL_NAN_BITS);
        } else {
            assert_eq!(value.to_bits(), want.value.to_bits(), "{body:?}");
        }
        match (format, timestamp_ms, want.timestamp_ms) {
            // Float seconds lose up to a millisecond to int64(ts*1000), as in Prometheus.
            (Format::OpenMetrics, Some(got), Some(want)) => assert!((got - want).abs() <= 1),
            (_, got, want) => assert_eq!(got, want),
        }
        parser.labels(series, &mut out).unwrap();
        assert_eq!(out[0].0, METRIC_NAME_LABEL);
        assert_eq!(out[0].1, want.name.as_str());
        let got: Vec<(&str, &str)> = out[1..]
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_ref()))
            .collect();
        let expected: Vec<(&str, &str)> = want
            .labels
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, expected);
        n += 1;
    }
    assert_eq!(n, samples.len());
}

const SOUP: &[&[u8]] = &[
    b"a", b"{", b"}", b"\"", b"\\", b"=", b",", b" ", b"\t", b"\n", b"#", b"# ", b"1", b".", b"e",
    b"-", b"+Inf", b"NaN", b"# HELP ", b"# TYPE ", b"# UNIT ", b"# EOF", b"counter", b" # {",
    b"\xff", b"_total",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn text_round_trip(
        samples in proptest::collection::vec(sample(), 1..8),
        blank in "[ \t]{1,3}",
        trailing_comma: bool,
    ) {
        check_round_trip(&samples, Format::PrometheusText, &blank, trailing_comma);
    }

    #[test]
    fn openmetrics_round_trip(
        samples in proptest::collection::vec(sample(), 1..8),
        trailing_comma: bool,
    ) {
        check_round_trip(&samples, Format::OpenMetrics, " ", trailing_comma);
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        exhaust(&body);
    }

    /// Bytes from the grammar's alphabet reach much deeper than uniform noise.
    #[test]
    fn grammar_soup_never_panics(
        body in proptest::collection::vec(
            proptest::sample::select(SOUP),
            0..64,
        )
    ) {
        exhaust(&body.concat());
    }

    /// Told to expect a series, the parser answers exactly as without the hint, whichever
    /// accepted series it is told (the right one, another line's, or none).
    #[test]
    fn expecting_a_series_changes_no_answer(
        samples in proptest::collection::vec(sample(), 1..8),
        blank in "[ \t]{1,3}",
        soup in proptest::collection::vec(proptest::sample::select(SOUP), 0..24),
        shift in 0usize..3,
    ) {
        let mut body = String::new();
        for s in &samples {
            body += &render(s, Format::PrometheusText, &blank, false).1;
            body.push('\n');
        }
        let mut body = body.into_bytes();
        body.extend(soup.concat());
        check_expecting(&body, shift);
    }
}

/// Parses `body` as text twice, the second time expecting at the k-th sample the series of
/// sample `k + shift` of the first parse, and compares every entry and error.
fn check_expecting(body: &[u8], shift: usize) {
    let plain: Vec<_> = Parser::new(body, Format::PrometheusText).collect();
    let accepted: Vec<&[u8]> = plain
        .iter()
        .filter_map(|e| match e {
            Ok(Entry::Sample { series, .. }) => Some(*series),
            _ => None,
        })
        .collect();
    let mut parser = Parser::new(body, Format::PrometheusText);
    let mut hinted = Vec::new();
    let mut k = 0;
    loop {
        let expected = accepted.get(k + shift).copied().unwrap_or_default();
        let Some(entry) = parser.next_expecting(KnownSeries::of(expected), || &[]) else {
            break;
        };
        if let Ok(Entry::Sample { series, .. }) = &entry {
            // Taking the hint is allowed, not required (`foo  1` is parsed the long way).
            if parser.took_expected() {
                assert_eq!(*series, expected);
            }
            k += 1;
        }
        hinted.push(entry);
    }
    assert_eq!(format!("{plain:?}"), format!("{hinted:?}"));
}

/// Parses `body` as text twice, the second time expecting at the k-th `#` line the line of
/// the `k + shift`-th `#` entry of the first parse: every entry and error is the same, a
/// line taken as expected standing for the entry its expected line yields alone.
fn check_expecting_lines(body: &[u8], shift: usize) {
    let mut parser = Parser::new(body, Format::PrometheusText);
    let mut plain = Vec::new();
    let mut lines: Vec<&[u8]> = Vec::new();
    while let Some(entry) = parser.next() {
        if matches!(entry, Ok(ref e) if !matches!(e, Entry::Sample { .. })) {
            lines.push(parser.comment_line());
        }
        plain.push(entry);
    }
    let mut parser = Parser::new(body, Format::PrometheusText);
    let mut hinted = Vec::new();
    let mut k = 0;
    loop {
        let expected = lines.get(k + shift).copied().unwrap_or_default();
        let Some(entry) = parser.next_expecting(KnownSeries::NONE, || expected) else {
            break;
        };
        match entry {
            Ok(Entry::Sample { .. }) | Err(_) => hinted.push(entry),
            Ok(entry) => {
                k += 1;
                if parser.took_expected() {
                    assert_eq!(entry, Entry::Comment);
                    let alone = Parser::new(expected, Format::PrometheusText).next();
                    hinted.push(alone.expect("an accepted line parses alone"));
                } else {
                    hinted.push(Ok(entry));
                }
            }
        }
    }
    assert_eq!(format!("{plain:?}"), format!("{hinted:?}"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Metadata lines that repeat, change by a byte, lose their newline or gain blanks:
    /// expecting any accepted `#` line changes no answer.
    #[test]
    fn expecting_a_metadata_line_changes_no_answer(
        lines in proptest::collection::vec(
            proptest::sample::select(&[
                "# HELP a x", "# HELP a xy", "# HELP a x ", "# HELP a", "# TYPE a gauge",
                "# TYPE a gauges", " # TYPE a gauge", "# TYPE a counter", "# HELP b a\\b",
                "# HELP b a\\", "# comment", "#", "a 1", "a{b=\"c\"} 2", "", "# HELP a x\\n",
            ][..]),
            0..12,
        ),
        soup in proptest::collection::vec(proptest::sample::select(SOUP), 0..12),
        shift in 0usize..3,
        newline_at_end: bool,
    ) {
        let mut body = lines.join("\n").into_bytes();
        if newline_at_end {
            body.push(b'\n');
        }
        check_expecting_lines(&body, shift);
        body.extend(soup.concat());
        check_expecting_lines(&body, shift);
    }
}

/// A name-only series is not a prefix of the same name with a label set after a blank.
#[test]
fn expected_name_is_not_taken_for_a_longer_series() {
    let body = b"foo 1\nfoo {a=\"b\"} 2\nfoo  3\nfoo\t4\n";
    let mut parser = Parser::new(body, Format::PrometheusText);
    let mut got = Vec::new();
    while let Some(entry) = parser.next_expecting(KnownSeries::of(b"foo"), || &[]) {
        if let Ok(Entry::Sample { series, value, .. }) = entry {
            got.push((
                String::from_utf8_lossy(series).into_owned(),
                value,
                parser.took_expected(),
            ));
        }
    }
    assert_eq!(
        got,
        [
            ("foo".to_string(), 1.0, true),
            ("foo {a=\"b\"}".to_string(), 2.0, false),
            ("foo".to_string(), 3.0, false),
            ("foo".to_string(), 4.0, false),
        ]
    );
    for shift in 0..3 {
        check_expecting(body, shift);
    }
}

fn exhaust(body: &[u8]) {
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        let mut parser = Parser::new(body, format);
        let mut out = Vec::new();
        while let Some(entry) = parser.next() {
            if let Ok(Entry::Sample { series, .. }) = entry {
                let _ = parser.labels(series, &mut out);
            }
        }
    }
}
