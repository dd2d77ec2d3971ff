//! Table tests of whole lines and bodies in both formats, from the spec's edge cases.

use super::*;

/// An entry rendered to one comparable line: `S series value [@ts]`, `H metric text`,
/// `T metric type`, `U metric unit`, `C`.
fn render(e: &Entry<'_>) -> String {
    match e {
        Entry::Sample {
            series,
            value,
            timestamp_ms,
        } => {
            let mut s = format!("S {} {value:?}", String::from_utf8_lossy(series));
            if let Some(ts) = timestamp_ms {
                s += &format!(" @{ts}");
            }
            s
        }
        Entry::Help { metric, text } => format!("H {metric} {text}"),
        Entry::Type { metric, kind } => format!("T {metric} {}", kind.as_str()),
        Entry::Unit { metric, unit } => format!("U {metric} {unit}"),
        Entry::Comment => "C".into(),
    }
}

fn parse(body: &[u8], format: Format) -> Result<Vec<String>, ParseError> {
    Parser::new(body, format)
        .map(|e| e.map(|e| render(&e)))
        .collect()
}

fn check_valid(format: Format, cases: &[(&str, &[&str])]) {
    for (body, want) in cases {
        match parse(body.as_bytes(), format) {
            Ok(got) => assert_eq!(&got, want, "{format:?} body {body:?}"),
            Err(e) => panic!("{format:?} body {body:?}: {e}"),
        }
    }
}

/// Each invalid body must fail at `line` with a message containing `why`.
fn check_invalid(format: Format, cases: &[(&str, usize, &str)]) {
    for &(body, line, why) in cases {
        match parse(body.as_bytes(), format) {
            Ok(got) => panic!("{format:?} body {body:?} accepted: {got:?}"),
            Err(e) => {
                assert_eq!(e.line, line, "{format:?} body {body:?}: {e}");
                assert!(
                    e.to_string().contains(why),
                    "{format:?} body {body:?}: {e:?} does not say {why:?}"
                );
            }
        }
    }
}

#[test]
fn text_valid() {
    check_valid(
        Format::PrometheusText,
        &[
            ("a 1", &["S a 1.0"]),
            ("a 1\n", &["S a 1.0"]),
            ("", &[]),
            ("\n\n  \n\t\n", &[]),
            ("a{b=\"c\"} 1 123", &["S a{b=\"c\"} 1.0 @123"]),
            ("a{b=\"c\",} 1", &["S a{b=\"c\",} 1.0"]),
            ("a{} 1", &["S a{} 1.0"]),
            ("a {b=\"c\"} 1", &["S a {b=\"c\"} 1.0"]),
            ("a{ b = \"c\" , d=\"e\" ,} 1", &["S a{ b = \"c\" , d=\"e\" ,} 1.0"]),
            ("a{b=\"c\" d=\"e\"} 1", &["S a{b=\"c\" d=\"e\"} 1.0"]),
            ("a\t1\t", &["S a 1.0"]),
            ("  a 1", &["S a 1.0"]),
            ("a 1 2  \t", &["S a 1.0 @2"]),
            ("a  \t 1   2", &["S a 1.0 @2"]),
            ("\n\na 1\n\nb 2\n", &["S a 1.0", "S b 2.0"]),
            ("a:b_c9 1", &["S a:b_c9 1.0"]),
            ("a{b=\"}\\\" {x} \\\\\"} 1", &["S a{b=\"}\\\" {x} \\\\\"} 1.0"]),
            ("a{b=\"é ☃ \0\"} 1", &["S a{b=\"é ☃ \0\"} 1.0"]),
            // Values: Go ParseFloat spellings.
            ("a +Inf\nb -Inf\nc Inf\nd inf\ne infinity", &[
                "S a inf", "S b -inf", "S c inf", "S d inf", "S e inf",
            ]),
            ("a 1e3\nb .5\nc -0\nd 1.\ne 1E-2\nf +7", &[
                "S a 1000.0", "S b 0.5", "S c -0.0", "S d 1.0", "S e 0.01", "S f 7.0",
            ]),
            ("a 9223372036854775807", &["S a 9.223372036854776e18"]),
            ("a 1 0\nb 1 9223372036854775807", &["S a 1.0 @0", "S b 1.0 @9223372036854775807"]),
            // Metadata.
            ("# HELP a some help", &["H a some help"]),
            ("# HELP a", &["H a "]),
            ("# HELP a ", &["H a "]),
            ("# HELP a  two", &["H a  two"]),
            ("#\tHELP\ta\tx", &["H a x"]),
            ("#  HELP   a x y ", &["H a x y "]),
            (r#"# HELP a x\ny \\ z \" \t"#, &["H a x\ny \\ z \\\" \\t"]),
            ("# HELP a é\0", &["H a é\0"]),
            ("# TYPE a counter\n# TYPE b gauge\n# TYPE c histogram\n# TYPE d summary\n# TYPE e untyped", &[
                "T a counter", "T b gauge", "T c histogram", "T d summary", "T e unknown",
            ]),
            // Plain comments.
            ("#HELP a x\n# HELPx a\n# HELP\n#\n# random\n# EOF\n# UNIT a_s s\n# help a x", &[
                "C", "C", "C", "C", "C", "C", "C", "C",
            ]),
            ("# \u{0}\u{7f} \\", &["C"]),
            // The spec's example.
            (concat!(
                "# HELP http_requests_total The total number of HTTP requests.\n",
                "# TYPE http_requests_total counter\n",
                "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n",
                "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n",
                "metric_without_timestamp_and_labels 12.47\n",
                "something_weird{problem=\"division by zero\"} +Inf\n",
            ), &[
                "H http_requests_total The total number of HTTP requests.",
                "T http_requests_total counter",
                "S http_requests_total{method=\"post\",code=\"200\"} 1027.0 @1395066363000",
                "S msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1458255915.0",
                "S metric_without_timestamp_and_labels 12.47",
                "S something_weird{problem=\"division by zero\"} inf",
            ]),
        ],
    );
}

#[test]
fn text_comments_are_not_utf8_checked() {
    assert_eq!(
        parse(b"# \xff\xfe\na 1", Format::PrometheusText).unwrap(),
        ["C", "S a 1.0"]
    );
}

#[test]
fn text_invalid() {
    check_invalid(
        Format::PrometheusText,
        &[
            ("a", 1, "expected blank then value"),
            ("a{b=\"c\"}", 1, "expected blank then value"),
            ("a{b=\"c\"}1", 1, "expected blank then value"),
            ("a 1 -1", 1, "invalid timestamp \"-1\""),
            ("a 1 +1", 1, "invalid timestamp"),
            ("a 1 1.5", 1, "invalid timestamp"),
            ("a 1 9223372036854775808", 1, "out of range"),
            ("a 1 2 3", 1, "end of line after timestamp"),
            (
                "a 1_000",
                1,
                "invalid sample value \"1_000\": invalid syntax",
            ),
            ("a 0x10", 1, "invalid syntax"),
            ("a 1p3", 1, "invalid syntax"),
            ("a +nan", 1, "invalid syntax"),
            ("a -NaN", 1, "invalid syntax"),
            ("a 1e400", 1, "value out of range"),
            ("a 1,5", 1, "invalid syntax"),
            ("a 1\r\n", 1, "invalid sample value \"1\\r\""),
            ("a{b=c} 1", 1, "expected quoted label value"),
            ("a{b=\"c} 1", 1, "unterminated quoted string"),
            ("a{b=\"c\\\"} 1", 1, "unterminated"),
            ("a{,} 1", 1, "expected label name or '}', found ','"),
            ("a{b=\"c\",,} 1", 1, "expected label name"),
            ("a{1b=\"c\"} 1", 1, "expected label name"),
            (
                "a{b:c=\"d\"} 1",
                1,
                "expected '=' after label name, found ':'",
            ),
            ("a{b} 1", 1, "expected '='"),
            ("a{b=\"c\" 1", 1, "expected label name"),
            (
                "a{b=\"c\"}} 1",
                1,
                "expected blank then value after metric, found '}'",
            ),
            ("1a 1", 1, "expected metric name"),
            ("a-b 1", 1, "expected blank then value"),
            ("a.b 1", 1, "expected blank then value"),
            ("\"a\" 1", 1, "expected metric name"),
            (
                "{\"a.b\"} 1",
                1,
                "quoted (UTF-8) metric and label names are not supported",
            ),
            ("a{\"b.c\"=\"d\"} 1", 1, "quoted (UTF-8)"),
            ("# TYPE a foo", 1, "invalid metric type \"foo\""),
            ("# TYPE a", 1, "invalid metric type \"\""),
            ("# TYPE a  counter", 1, "invalid metric type \" counter\""),
            ("# TYPE a counter ", 1, "invalid metric type"),
            ("# TYPE a unknown", 1, "invalid metric type"),
            ("# TYPE a gaugehistogram", 1, "invalid metric type"),
            ("# HELP 1a x", 1, "expected metric name after HELP"),
            ("# TYPE \"a\" counter", 1, "quoted"),
            ("a 1\nb\nc 1", 2, "expected blank then value"),
        ],
    );
    let err = parse(b"# HELP a \xff", Format::PrometheusText).unwrap_err();
    assert_eq!(*err.kind, ParseErrorKind::InvalidUtf8("help text"));
}

#[test]
fn text_nan_is_canonical() {
    for v in ["NaN", "Nan", "nan", "NAN"] {
        let body = format!("a {v}");
        let mut p = Parser::new(body.as_bytes(), Format::PrometheusText);
        match p.next() {
            Some(Ok(Entry::Sample { value, .. })) => assert_eq!(value.to_bits(), NORMAL_NAN_BITS),
            other => panic!("{v}: {other:?}"),
        }
    }
}

#[test]
fn stops_after_the_first_error() {
    let mut p = Parser::new(b"a 1\nb x\nc 1\n", Format::PrometheusText);
    assert!(matches!(p.next(), Some(Ok(_))));
    assert!(matches!(p.next(), Some(Err(ParseError { line: 2, .. }))));
    assert!(p.next().is_none());
    assert!(p.next().is_none());
}

#[test]
fn labels_decode_on_demand() {
    let body = "a{path=\"C:\\\\DIR\",msg=\"say \\\"hi\\\"\\n\",x=\"\"} 1\nb 2\n";
    let mut p = Parser::new(body.as_bytes(), Format::PrometheusText);
    let mut out = Vec::new();
    let Some(Ok(Entry::Sample { series, .. })) = p.next() else {
        panic!()
    };
    p.labels(series, &mut out).unwrap();
    let got: Vec<(&str, &str)> = out.iter().map(|(n, v)| (n.as_ref(), v.as_ref())).collect();
    assert_eq!(
        got,
        [
            ("__name__", "a"),
            ("path", "C:\\DIR"),
            ("msg", "say \"hi\"\n"),
            ("x", "")
        ]
    );
    // Only values with escapes were copied.
    assert!(matches!(out[0].1, std::borrow::Cow::Borrowed(_)));
    assert!(matches!(out[3].1, std::borrow::Cow::Borrowed(_)));
    let Some(Ok(Entry::Sample { series, .. })) = p.next() else {
        panic!()
    };
    p.labels(series, &mut out).unwrap();
    assert_eq!(out.len(), 1);
}

#[test]
fn labels_refuse_what_the_scan_lets_through() {
    for (body, want) in [
        (
            &b"a{b=\"\xff\"} 1\n"[..],
            ParseErrorKind::InvalidUtf8("label value"),
        ),
        (
            b"ok 1\na{b=\"1\",b=\"2\"} 1",
            ParseErrorKind::DuplicateLabelName("b".into()),
        ),
        (
            b"a{__name__=\"x\"} 1",
            ParseErrorKind::DuplicateLabelName("__name__".into()),
        ),
    ] {
        for format in [Format::PrometheusText, Format::OpenMetrics] {
            let mut p = Parser::new(body, format);
            let mut out = Vec::new();
            let mut last = None;
            for e in p.by_ref() {
                if let Ok(Entry::Sample { series, .. }) = e {
                    last = Some(series);
                    if series.starts_with(b"a") {
                        break;
                    }
                }
            }
            let err = p.labels(last.unwrap(), &mut out).unwrap_err();
            assert_eq!(*err.kind, want);
            assert_eq!(
                err.line,
                body.split(|&b| b == b'\n')
                    .position(|l| l.starts_with(b"a"))
                    .unwrap()
                    + 1
            );
        }
    }
}

#[test]
fn openmetrics_valid() {
    check_valid(
        Format::OpenMetrics,
        &[
            ("# EOF", &[]),
            ("# EOF\n", &[]),
            ("a 1\n# EOF", &["S a 1.0"]),
            (
                concat!(
                    "# TYPE foo histogram\n",
                    "foo_bucket{le=\"0.1\"} 8 # {trace_id=\"KOO5S4vxi0o\"} 0.067 1520879607.789\n",
                    "foo_bucket{le=\"+Inf\"} 17\n",
                    "foo_count 17\n",
                    "foo_sum 324789.3\n",
                    "foo_created 1520430000.123\n",
                    "# TYPE acme_up gauge\n",
                    "acme_up 1\n",
                    "# EOF\n",
                ),
                &[
                    "T foo histogram",
                    "S foo_bucket{le=\"0.1\"} 8.0",
                    "S foo_bucket{le=\"+Inf\"} 17.0",
                    "S foo_count 17.0",
                    "S foo_sum 324789.3",
                    "S foo_created 1520430000.123",
                    "T acme_up gauge",
                    "S acme_up 1.0",
                ],
            ),
            (
                concat!(
                    "# TYPE a_seconds counter\n",
                    "# UNIT a_seconds seconds\n",
                    "# HELP a_seconds h\\\"i\\\\ \\n \\t\n",
                    "a_seconds_total 1 1520879607.789 # {trace_id=\"x\",} 1.0 123\n",
                    "a_seconds_total{x=\"y\"} 1 # {} 1\n",
                    "a_seconds_total{x=\"z\"} 1 # {a=\"b\",c=\"\"} NaN\n",
                    "# EOF\n",
                ),
                &[
                    "T a_seconds counter",
                    "U a_seconds seconds",
                    "H a_seconds h\"i\\ \n \\t",
                    "S a_seconds_total 1.0 @1520879607789",
                    "S a_seconds_total{x=\"y\"} 1.0",
                    "S a_seconds_total{x=\"z\"} 1.0",
                ],
            ),
            ("# UNIT a \n# HELP a \n# EOF", &["U a ", "H a "]),
            ("# HELP a  x\n# EOF", &["H a  x"]),
            (
                concat!(
                "# TYPE a counter\n# TYPE b gauge\n# TYPE c histogram\n# TYPE d gaugehistogram\n",
                "# TYPE e summary\n# TYPE f info\n# TYPE g stateset\n# TYPE h unknown\n# EOF",
            ),
                &[
                    "T a counter",
                    "T b gauge",
                    "T c histogram",
                    "T d gaugehistogram",
                    "T e summary",
                    "T f info",
                    "T g stateset",
                    "T h unknown",
                ],
            ),
            (
                "a{b=\"c\",} 1\na{} 2\n# EOF",
                &["S a{b=\"c\",} 1.0", "S a{} 2.0"],
            ),
            (
                "a Inf\nb -infinity\nc +Inf\nd 1e-3\n# EOF",
                &["S a inf", "S b -inf", "S c inf", "S d 0.001"],
            ),
            (
                "a 1 1\nb 1 -1.5\nc 1 0.0019\nd 1 1e3\n# EOF",
                &[
                    "S a 1.0 @1000",
                    "S b 1.0 @-1500",
                    "S c 1.0 @1",
                    "S d 1.0 @1000000",
                ],
            ),
        ],
    );
}

#[test]
fn openmetrics_invalid() {
    check_invalid(
        Format::OpenMetrics,
        &[
            ("", 1, "data does not end with # EOF"),
            ("a 1", 2, "data does not end with # EOF"),
            ("a 1\n", 2, "data does not end with # EOF"),
            ("# EOF\n\n", 2, "unexpected data after # EOF"),
            ("# EOF\na 1\n", 2, "unexpected data after # EOF"),
            ("# EOF \n", 1, "only # HELP"),
            ("# EOFa\n", 1, "only # HELP"),
            ("a 1\n\n# EOF", 2, "blank lines are not allowed"),
            (
                "a  1\n# EOF",
                1,
                "expected a value after a single space, found space",
            ),
            (
                "a 1 \n# EOF",
                1,
                "expected timestamp or exemplar, found end of line",
            ),
            (
                "a 1  2\n# EOF",
                1,
                "expected timestamp or exemplar, found space",
            ),
            (
                "a 1 2 \n# EOF",
                1,
                "end of line or exemplar after timestamp",
            ),
            ("a\t1\n# EOF", 1, "expected a space then a value, found tab"),
            (" a 1\n# EOF", 1, "expected metric name, found space"),
            (
                "a {b=\"c\"} 1\n# EOF",
                1,
                "invalid sample value \"{b=\\\"c\\\"}\"",
            ),
            (
                "a{b=\"c\", d=\"e\"} 1\n# EOF",
                1,
                "expected label name or '}', found space",
            ),
            ("a{ b=\"c\"} 1\n# EOF", 1, "expected label name"),
            ("a{b =\"c\"} 1\n# EOF", 1, "expected '=' after label name"),
            (
                "a{b=\"c\" d=\"e\"} 1\n# EOF",
                1,
                "expected ',' or '}' after label value",
            ),
            ("a{b=\"c\" } 1\n# EOF", 1, "expected ',' or '}'"),
            ("a 1\r\n# EOF", 1, "invalid sample value"),
            (
                "# random comment\n# EOF",
                1,
                "only # HELP, # TYPE, # UNIT and # EOF",
            ),
            ("#HELP a x\n# EOF", 1, "only # HELP"),
            ("#\n# EOF", 1, "only # HELP"),
            (
                "# HELP  a x\n# EOF",
                1,
                "expected metric name after HELP, found space",
            ),
            (
                "# TYPE a untyped\n# EOF",
                1,
                "invalid metric type \"untyped\"",
            ),
            (
                "# TYPE a counter \n# EOF",
                1,
                "invalid metric type \"counter \"",
            ),
            (
                "# HELP a\n# EOF",
                1,
                "expected a space then text after metric name, found end of line",
            ),
            ("# HELP a\tx\n# EOF", 1, "expected a space then text"),
            (
                "# UNIT a_seconds bytes\n# EOF",
                1,
                "unit \"bytes\" not a suffix of metric \"a_seconds\"",
            ),
            ("# UNIT seconds seconds\n# EOF", 1, "not a suffix"),
            ("# UNIT aseconds seconds\n# EOF", 1, "not a suffix"),
            (
                "a 1 NaN\n# EOF",
                1,
                "invalid timestamp \"NaN\": value out of range",
            ),
            ("a 1 +Inf\n# EOF", 1, "invalid timestamp"),
            ("a 1 1e400\n# EOF", 1, "invalid timestamp"),
            (
                "a 1 1_0\n# EOF",
                1,
                "invalid timestamp \"1_0\": invalid syntax",
            ),
            (
                "a 1 # {x=\"y\"}\n# EOF",
                1,
                "expected a space then a value, found end of line",
            ),
            (
                "a 1 # {x=\"y\"} 1 2 3\n# EOF",
                1,
                "end of line after exemplar timestamp",
            ),
            (
                "a 1 # {x=\"y\"} z\n# EOF",
                1,
                "invalid exemplar value \"z\"",
            ),
            (
                "a 1 # {x=\"y\"} 1 NaN\n# EOF",
                1,
                "invalid exemplar timestamp",
            ),
            (
                "a 1 #{x=\"y\"} 1\n# EOF",
                1,
                "invalid timestamp \"#{x=\\\"y\\\"}\"",
            ),
            ("a 1 # x\n# EOF", 1, "invalid timestamp \"#\""),
            (
                "a 1 2 3\n# EOF",
                1,
                "end of line or exemplar after timestamp, found '3'",
            ),
            ("a 1 # {x=\"y\" } 1\n# EOF", 1, "expected ',' or '}'"),
            ("{\"a.b\"} 1\n# EOF", 1, "quoted (UTF-8)"),
            ("# HELP \"a.b\" x\n# EOF", 1, "quoted (UTF-8)"),
            ("a 1\nb\n# EOF", 2, "expected a space then a value"),
        ],
    );
    let err = parse(b"a 1 # {x=\"\xff\"} 1\n# EOF", Format::OpenMetrics).unwrap_err();
    assert_eq!(
        *err.kind,
        ParseErrorKind::InvalidUtf8("exemplar label value")
    );
    let err = parse(b"# HELP a \xff\n# EOF", Format::OpenMetrics).unwrap_err();
    assert_eq!(*err.kind, ParseErrorKind::InvalidUtf8("help text"));
}

#[test]
fn openmetrics_nan_value_is_canonical() {
    let mut p = Parser::new(b"a NaN\n# EOF\n", Format::OpenMetrics);
    let Some(Ok(Entry::Sample { value, .. })) = p.next() else {
        panic!()
    };
    assert_eq!(value.to_bits(), NORMAL_NAN_BITS);
    assert!(p.next().is_none());
}
