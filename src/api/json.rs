//! The JSON of the HTTP API, byte for byte as Prometheus writes it: the response envelope,
//! error types and their HTTP statuses, strings, label sets, timestamps and sample values.
//! Everything is appended to a caller's `Vec<u8>` without building a value tree, because
//! answers (`series` over a million series, long matrices) can be large.
//!
//! This module owns formatting only. It never decides what an answer contains, never
//! sorts or filters results, and never sets HTTP headers (the body is always
//! `application/json`; the handler sends the status from [`ErrorType::http_status`]).
//!
//! Go's quirks are reproduced on purpose: strings are escaped as `encoding/json` escapes
//! them (`<`, `>`, `&`, U+2028, U+2029 as `\u....`), sample values are strings in
//! `strconv.FormatFloat` form (`"NaN"`, `"+Inf"`, `"1e-07"`), timestamps are seconds with
//! exactly three decimals when there is a millisecond part.

use shards::labels::Labels;

/// The `errorType` of an error answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// Bad parameters, PromQL parse errors, bad `match[]`.
    BadData,
    /// Evaluation failures: too many samples, many-to-many matching, ...
    Execution,
    /// The client went away before the answer was ready.
    Canceled,
    /// The query exceeded its timeout.
    Timeout,
    /// Storage or encoding failures.
    Internal,
    /// Admin API disabled, storage not ready.
    Unavailable,
    NotFound,
    /// `Accept` negotiation failed.
    NotAcceptable,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Canceled => "canceled",
            ErrorType::Timeout => "timeout",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
            ErrorType::NotFound => "not_found",
            ErrorType::NotAcceptable => "not_acceptable",
        }
    }

    /// The HTTP status Prometheus 3 answers with (`respondError`). `canceled` is nginx's 499
    /// "client closed request"; `unavailable` has no case of its own there and falls
    /// through to 500. (Prometheus 2 answered 503 for `canceled`.)
    pub fn http_status(self) -> u16 {
        match self {
            ErrorType::BadData => 400,
            ErrorType::Execution => 422,
            ErrorType::Canceled => 499,
            ErrorType::Timeout => 503,
            ErrorType::Internal => 500,
            ErrorType::Unavailable => 500,
            ErrorType::NotFound => 404,
            ErrorType::NotAcceptable => 406,
        }
    }
}

/// The warning Prometheus adds when `limit` cut a result.
pub const TRUNCATED_WARNING: &str = "results truncated due to limit";

/// Prometheus sends at most this many warnings (and as many infos), then one line saying
/// how many more there were.
pub const MAX_ANNOTATIONS: usize = 10;

/// `{"status":"success","data":<data>}`, where `data` appends the data's JSON.
pub fn success(out: &mut Vec<u8>, data: impl FnOnce(&mut Vec<u8>)) {
    success_with_annotations::<&str>(out, data, &[], &[]);
}

/// `{"status":"success","data":<data>,"warnings":[...],"infos":[...]}`; each list only when
/// non-empty and capped at [`MAX_ANNOTATIONS`] plus a `"<n> more warning annotations
/// omitted"` / `"<n> more info annotations omitted"` line, as Prometheus does.
pub fn success_with_annotations<S: AsRef<str>>(
    out: &mut Vec<u8>,
    data: impl FnOnce(&mut Vec<u8>),
    warnings: &[S],
    infos: &[S],
) {
    out.extend_from_slice(br#"{"status":"success","data":"#);
    data(out);
    write_annotations(out, "warnings", "warning", warnings);
    write_annotations(out, "infos", "info", infos);
    out.push(b'}');
}

/// As [`success_with_annotations`] without infos, for answers whose warnings are known only
/// once their data is written (a `limit` found to cut a list being merged): `data` appends
/// the data and returns the warnings.
pub fn success_then_warnings<S: AsRef<str>>(
    out: &mut Vec<u8>,
    data: impl FnOnce(&mut Vec<u8>) -> Vec<S>,
) {
    out.extend_from_slice(br#"{"status":"success","data":"#);
    let warnings = data(out);
    write_annotations(out, "warnings", "warning", &warnings);
    out.push(b'}');
}

fn write_annotations<S: AsRef<str>>(out: &mut Vec<u8>, key: &str, kind: &str, notes: &[S]) {
    if notes.is_empty() {
        return;
    }
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":[");
    for (i, note) in notes.iter().take(MAX_ANNOTATIONS).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, note.as_ref());
    }
    if notes.len() > MAX_ANNOTATIONS {
        let omitted = notes.len() - MAX_ANNOTATIONS;
        out.push(b',');
        write_string(out, &format!("{omitted} more {kind} annotations omitted"));
    }
    out.push(b']');
}

/// `{"status":"error","errorType":"bad_data","error":"<message>"}`; send it with
/// `error_type.http_status()`.
pub fn error(out: &mut Vec<u8>, error_type: ErrorType, message: &str) {
    out.extend_from_slice(br#"{"status":"error","errorType":""#);
    out.extend_from_slice(error_type.as_str().as_bytes());
    out.extend_from_slice(br#"","error":"#);
    write_string(out, message);
    out.push(b'}');
}

/// The bytes `write_string` must look at: control characters, `"`, `\\`, `<`, `>`, `&`, and
/// 0xE2, the first byte of U+2028 and U+2029. Everything else is copied as it is.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'&' as usize] = true;
    t[0xe2] = true;
    t
};

/// A JSON string escaped as Go's `encoding/json` does (HTML-safe).
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    // Most strings (label names and values) need no escape: one copy.
    if !bytes.iter().any(|&b| SPECIAL[usize::from(b)]) {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            0x00..=0x1f | b'<' | b'>' | b'&' => None,
            // U+2028 and U+2029 (E2 80 A8/A9) end lines in JavaScript.
            0xe2 if bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9)) =>
            {
                None
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => {
                out.extend_from_slice(e);
                i += 1;
            }
            None if b == 0xe2 => {
                out.extend_from_slice(if bytes[i + 2] == 0xa8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
            }
            None => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                i += 1;
            }
        }
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// `["a","b"]` — label names and label values; `[]` when empty, never `null`.
/// Whether `write_string` copies strings made of these bytes as they are: none is a byte it
/// escapes or looks at. One pass over many strings' bytes together, in blocks the compiler
/// vectorises, where asking per string costs a loop and a table lookup per byte.
pub fn copied_as_is(bytes: &[u8]) -> bool {
    bytes.chunks(64).all(|block| {
        !block.iter().fold(false, |seen, &b| {
            seen | (b < 0x20)
                | (b == b'"')
                | (b == b'\\')
                | (b == b'<')
                | (b == b'>')
                | (b == b'&')
                | (b == 0xe2)
        })
    })
}

/// `write_string_list` for strings all `copied_as_is`: each copied between quotes with no
/// look at its bytes.
pub fn write_plain_string_list<'a>(out: &mut Vec<u8>, items: impl IntoIterator<Item = &'a str>) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        debug_assert!(copied_as_is(item.as_bytes()), "{item:?} needs escaping");
        if i > 0 {
            out.push(b',');
        }
        out.reserve(item.len() + 2);
        out.push(b'"');
        out.extend_from_slice(item.as_bytes());
        out.push(b'"');
    }
    out.push(b']');
}

pub fn write_string_list<S: AsRef<str>>(out: &mut Vec<u8>, items: impl IntoIterator<Item = S>) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, item.as_ref());
    }
    out.push(b']');
}

/// A label set as a JSON object in label order (sorted by name, so `__name__` first):
/// `{"__name__":"up","job":"x"}`; `{}` when empty.
pub fn write_labels(out: &mut Vec<u8>, labels: &Labels) {
    write_label_pairs(
        out,
        labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
    );
}

/// Name/value pairs as a JSON object, in the order given.
pub fn write_label_pairs<'a>(
    out: &mut Vec<u8>,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    out.push(b'{');
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, name);
        out.push(b':');
        write_string(out, value);
    }
    out.push(b'}');
}

/// The `series` endpoint's data: `[{"__name__":"up",...},...]`; `[]` when empty.
pub fn write_label_sets<'a>(out: &mut Vec<u8>, sets: impl IntoIterator<Item = &'a Labels>) {
    out.push(b'[');
    for (i, labels) in sets.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_labels(out, labels);
    }
    out.push(b']');
}

/// A sample timestamp as a JSON number of seconds, written from the milliseconds as
/// Prometheus writes it: `1435781451.781`, `1435781451.780` (the three decimals are kept),
/// `1435781451` (none without a millisecond part), `-1.500` (sign, then the absolute value).
pub fn write_timestamp(out: &mut Vec<u8>, ms: i64) {
    if ms < 0 {
        out.push(b'-');
    }
    let abs = ms.unsigned_abs();
    out.extend_from_slice((abs / 1000).to_string().as_bytes());
    let frac = abs % 1000;
    if frac != 0 {
        out.push(b'.');
        out.push(b'0' + (frac / 100) as u8);
        out.push(b'0' + (frac / 10 % 10) as u8);
        out.push(b'0' + (frac % 10) as u8);
    }
}

/// A sample value as the JSON string Prometheus writes for vectors, matrices and
/// exemplars: Go's `strconv.FormatFloat(v, f, -1, 64)` with `f = 'e'` when
/// `v != 0 && (|v| < 1e-6 || |v| >= 1e21)`, else `'f'`: `"1"`, `"0.1"`, `"1e-07"`,
/// `"1e+21"`, `"NaN"`, `"+Inf"`, `"-Inf"`.
pub fn write_sample_value(out: &mut Vec<u8>, v: f64) {
    out.push(b'"');
    append_float(out, v, sample_format(v));
    out.push(b'"');
}

/// One point of a vector or matrix: `[1435781451.781,"1"]`.
pub fn write_point(out: &mut Vec<u8>, t_ms: i64, v: f64) {
    out.push(b'[');
    write_timestamp(out, t_ms);
    out.push(b',');
    write_sample_value(out, v);
    out.push(b']');
}

/// A `scalar` result: Prometheus marshals `[float64(t)/1000, FormatFloat(v, 'f', -1, 64)]`
/// with Go's `encoding/json`, so the timestamp loses trailing zeros (`1435781451.78`) and
/// the value never has an exponent (`"0.0000001"`). Grafana's health check expects
/// `[4,"2"]` for `1+1` at time 4.
pub fn write_scalar(out: &mut Vec<u8>, t_ms: i64, v: f64) {
    out.push(b'[');
    write_go_json_float(out, t_ms as f64 / 1000.0);
    out.extend_from_slice(b",\"");
    append_float(out, v, FloatFormat::Fixed);
    out.extend_from_slice(b"\"]");
}

/// A `string` result: `[float64(t)/1000, "<string>"]`, marshaled like a scalar.
pub fn write_string_result(out: &mut Vec<u8>, t_ms: i64, s: &str) {
    out.push(b'[');
    write_go_json_float(out, t_ms as f64 / 1000.0);
    out.push(b',');
    write_string(out, s);
    out.push(b']');
}

/// A float as a JSON number the way Go's `encoding/json` writes `float64`
/// (`lastScrapeDuration`, `evaluationTime`): shortest round-trip digits, an exponent only
/// below 1e-6 or from 1e21 on (`1e-7`, `1e+21`). JSON has no NaN or infinity (Go fails
/// to marshal them); they are written as `0` rather than breaking the answer.
pub fn write_go_json_float(out: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        out.push(b'0');
        return;
    }
    let start = out.len();
    append_float(out, v, sample_format(v));
    // Go trims one leading zero from a negative two-digit exponent: e-07 -> e-7.
    let n = out.len() - start;
    if n >= 4
        && out[out.len() - 4] == b'e'
        && out[out.len() - 3] == b'-'
        && out[out.len() - 2] == b'0'
    {
        let last = out[out.len() - 1];
        out.truncate(out.len() - 2);
        out.push(last);
    }
}

/// Go's `strconv.FormatFloat` verbs used by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatFormat {
    /// `'f'`: never an exponent.
    Fixed,
    /// `'e'`: `d.ddde±XX`, at least two exponent digits.
    Exponent,
}

fn sample_format(v: f64) -> FloatFormat {
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        FloatFormat::Exponent
    } else {
        FloatFormat::Fixed
    }
}

/// Go's `strconv.AppendFloat(out, v, fmt, -1, 64)`: the shortest digits that read back as
/// `v`, and `NaN`, `+Inf`, `-Inf`. Alert values use `'e'` (`1e+00`), scalars `'f'`.
pub fn append_float(out: &mut Vec<u8>, v: f64, format: FloatFormat) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    match format {
        // Rust's Display is shortest round-trip digits without an exponent, as Go's 'f'.
        FloatFormat::Fixed => out.extend_from_slice(v.to_string().as_bytes()),
        FloatFormat::Exponent => {
            // Rust's LowerExp gives the same shortest digits as `1.5e-10`/`1e21`; Go writes
            // the exponent with a sign and at least two digits.
            let s = format!("{v:e}");
            let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
            let exp: i32 = exp.parse().unwrap_or(0);
            out.extend_from_slice(mantissa.as_bytes());
            out.push(b'e');
            out.push(if exp < 0 { b'-' } else { b'+' });
            let abs = exp.unsigned_abs();
            if abs < 10 {
                out.push(b'0');
            }
            out.extend_from_slice(abs.to_string().as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    proptest::proptest! {
        /// A list found `copied_as_is` is written by `write_plain_string_list` exactly as
        /// `write_string_list` writes it; any string with a byte that needs a look is not.
        #[test]
        fn plain_lists_are_written_as_escaping_would(
            items in proptest::collection::vec("[a-z<&\"\\\\\n\u{2028}\u{e9}-]{0,70}", 0..5)
        ) {
            let all: String = items.concat();
            let plain = copied_as_is(all.as_bytes());
            let escaped = text(|o| write_string_list(o, &items));
            let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
            proptest::prop_assert_eq!(plain, !all.bytes().any(|b| SPECIAL[usize::from(b)]));
            if plain {
                let fast = text(|o| write_plain_string_list(o, items.iter().map(String::as_str)));
                proptest::prop_assert_eq!(&fast, &escaped);
                proptest::prop_assert_eq!(fast, format!("[{}]", quoted.join(",")));
            }
        }
    }

    #[test]
    fn error_types_and_statuses() {
        let cases = [
            (ErrorType::BadData, "bad_data", 400),
            (ErrorType::Execution, "execution", 422),
            (ErrorType::Canceled, "canceled", 499),
            (ErrorType::Timeout, "timeout", 503),
            (ErrorType::Internal, "internal", 500),
            (ErrorType::Unavailable, "unavailable", 500),
            (ErrorType::NotFound, "not_found", 404),
            (ErrorType::NotAcceptable, "not_acceptable", 406),
        ];
        for (t, name, status) in cases {
            assert_eq!((t.as_str(), t.http_status()), (name, status));
        }
    }

    #[test]
    fn envelopes() {
        assert_eq!(
            text(|o| success(o, |o| write_string_list(o, ["a", "b"]))),
            r#"{"status":"success","data":["a","b"]}"#
        );
        assert_eq!(
            text(|o| success_with_annotations(
                o,
                |o| write_string_list::<&str>(o, []),
                &[TRUNCATED_WARNING],
                &[]
            )),
            r#"{"status":"success","data":[],"warnings":["results truncated due to limit"]}"#
        );
        assert_eq!(
            text(|o| success_with_annotations(o, |o| o.extend_from_slice(b"{}"), &[], &["i"])),
            r#"{"status":"success","data":{},"infos":["i"]}"#
        );
        assert_eq!(
            text(|o| error(
                o,
                ErrorType::BadData,
                r#"invalid parameter "start": cannot parse "abc" to a valid timestamp"#
            )),
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"start\": cannot parse \"abc\" to a valid timestamp"}"#
        );
        // The answer is valid JSON with the keys Grafana reads.
        let body = text(|o| {
            error(
                o,
                ErrorType::Timeout,
                "query timed out in expression evaluation",
            )
        });
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["errorType"], "timeout");
        assert_eq!(v["error"], "query timed out in expression evaluation");
    }

    #[test]
    fn annotations_are_capped_like_prometheus() {
        let warnings: Vec<String> = (0..13).map(|i| format!("w{i}")).collect();
        let infos: Vec<String> = (0..11).map(|i| format!("i{i}")).collect();
        let body =
            text(|o| success_with_annotations(o, |o| o.extend_from_slice(b"1"), &warnings, &infos));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let w = v["warnings"].as_array().unwrap();
        assert_eq!(w.len(), 11);
        assert_eq!(w[9], "w9");
        assert_eq!(w[10], "3 more warning annotations omitted");
        let i = v["infos"].as_array().unwrap();
        assert_eq!(i.len(), 11);
        assert_eq!(i[10], "1 more info annotations omitted");
        // Key order: status, data, warnings, infos.
        assert!(body.starts_with(r#"{"status":"success","data":1,"warnings":["w0""#));
        assert!(body.contains(r#"omitted"],"infos":["i0""#));
    }

    #[test]
    fn strings_are_escaped_as_go_encoding_json() {
        let s = |v: &str| text(|o| write_string(o, v));
        assert_eq!(s(""), r#""""#);
        assert_eq!(s("plain"), r#""plain""#);
        assert_eq!(s(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(s("a\nb\rc\td"), r#""a\nb\rc\td""#);
        assert_eq!(
            s("\u{8}\u{c}\u{0}\u{1f}\u{7f}"),
            "\"\\b\\f\\u0000\\u001f\u{7f}\""
        );
        assert_eq!(
            s("<a href='x'>&</a>"),
            r#""\u003ca href='x'\u003e\u0026\u003c/a\u003e""#
        );
        assert_eq!(s("x\u{2028}y\u{2029}z"), r#""x\u2028y\u2029z""#);
        assert_eq!(s("é😀€"), "\"é😀€\"");
        // Whatever the input, serde reads back the same string.
        for v in ["a\u{1}b<>&\u{2028}\"\\é\u{2027}\u{202a}", "\u{e2}\u{80}"] {
            let back: String = serde_json::from_str(&s(v)).unwrap();
            assert_eq!(back, v);
        }
    }

    #[test]
    fn label_sets_and_lists() {
        let up = labels(&[("job", "x"), ("__name__", "up"), ("instance", "h:9100")]);
        assert_eq!(
            text(|o| write_labels(o, &up)),
            r#"{"__name__":"up","instance":"h:9100","job":"x"}"#
        );
        assert_eq!(text(|o| write_labels(o, &Labels::empty())), "{}");
        let other = labels(&[("__name__", "node_load1"), ("a", "<b>")]);
        assert_eq!(
            text(|o| write_label_sets(o, [&up, &other])),
            r#"[{"__name__":"up","instance":"h:9100","job":"x"},{"__name__":"node_load1","a":"\u003cb\u003e"}]"#
        );
        assert_eq!(text(|o| write_label_sets(o, [])), "[]");
        assert_eq!(text(|o| write_string_list::<&str>(o, [])), "[]");
        assert_eq!(
            text(|o| write_string_list(o, vec!["__name__".to_string(), "job".to_string()])),
            r#"["__name__","job"]"#
        );
        assert_eq!(
            text(|o| write_label_pairs(o, [("b", "1"), ("a", "2")])),
            r#"{"b":"1","a":"2"}"#
        );
    }

    #[test]
    fn timestamps_as_the_spec_shows() {
        let t = |ms| text(|o| write_timestamp(o, ms));
        assert_eq!(t(1_435_781_451_781), "1435781451.781");
        assert_eq!(t(1_435_781_451_780), "1435781451.780");
        assert_eq!(t(1_435_781_451_005), "1435781451.005");
        assert_eq!(t(1_435_781_451_000), "1435781451");
        assert_eq!(t(0), "0");
        assert_eq!(t(-1_500), "-1.500");
        assert_eq!(t(-5), "-0.005");
        assert_eq!(t(i64::MIN), "-9223372036854775.808");
        assert_eq!(t(i64::MAX), "9223372036854775.807");
    }

    #[test]
    fn sample_values_as_go_formats_them() {
        let v = |x| text(|o| write_sample_value(o, x));
        let cases: [(f64, &str); 20] = [
            (1.0, "1"),
            (0.1, "0.1"),
            (1234.5, "1234.5"),
            (1e20, "100000000000000000000"),
            (-0.0, "-0"),
            (0.0, "0"),
            (0.000001, "0.000001"),
            (1e-7, "1e-07"),
            (1.5e-10, "1.5e-10"),
            (1e21, "1e+21"),
            (-2.5e22, "-2.5e+22"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1_700_000_000.123, "1700000000.123"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (123456789012345680000.0, "123456789012345680000"),
            (-42.0, "-42"),
        ];
        for (x, want) in cases {
            assert_eq!(v(x), format!("\"{want}\""), "{x:e}");
        }
        let e = |x| text(|o| append_float(o, x, FloatFormat::Exponent));
        assert_eq!(e(1.0), "1e+00");
        assert_eq!(e(15.0), "1.5e+01");
        assert_eq!(e(0.0), "0e+00");
        assert_eq!(e(f64::NAN), "NaN");
        assert_eq!(e(f64::INFINITY), "+Inf");
    }

    #[test]
    fn points_scalars_and_strings() {
        assert_eq!(
            text(|o| write_point(o, 1_435_781_451_781, 1.0)),
            r#"[1435781451.781,"1"]"#
        );
        assert_eq!(
            text(|o| write_point(o, 1_700_000_000_000, f64::NAN)),
            r#"[1700000000,"NaN"]"#
        );
        // Grafana's "Save & test": 1+1 at time 4.
        assert_eq!(text(|o| write_scalar(o, 4_000, 2.0)), r#"[4,"2"]"#);
        assert_eq!(
            text(|o| write_scalar(o, 1_435_781_451_780, 1e-7)),
            r#"[1435781451.78,"0.0000001"]"#
        );
        assert_eq!(
            text(|o| write_scalar(o, 1_000, 1e21)),
            r#"[1,"1000000000000000000000"]"#
        );
        assert_eq!(
            text(|o| write_scalar(o, 0, f64::NEG_INFINITY)),
            r#"[0,"-Inf"]"#
        );
        assert_eq!(
            text(|o| write_string_result(o, 1_435_781_451_781, "a<b")),
            r#"[1435781451.781,"a\u003cb"]"#
        );
    }

    #[test]
    fn go_json_floats() {
        let f = |x| text(|o| write_go_json_float(o, x));
        assert_eq!(f(0.050688943), "0.050688943");
        assert_eq!(f(0.0), "0");
        assert_eq!(f(15.0), "15");
        assert_eq!(f(1e-7), "1e-7");
        assert_eq!(f(1.5e-10), "1.5e-10");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(-3e-9), "-3e-9");
        assert_eq!(f(f64::NAN), "0");
    }
}
