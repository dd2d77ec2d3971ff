//! Parsing of the HTTP API's request parameters exactly as Prometheus parses them: times,
//! durations, `limit`, `match[]` series selectors and `U__`-escaped label names, with
//! Prometheus's error messages word for word (clients and users match on them). Every
//! error here is the handler's `bad_data` (HTTP 400).
//!
//! This module only turns strings into values. It never reads a request, never decides
//! which parameters an endpoint takes or what their defaults mean, and never touches
//! storage; the handler does that and wraps errors with the parameter's name through
//! [`ApiParamError::for_param`] the way Prometheus's `invalidParamError` does.

use std::fmt;

use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;
use shards::index::matcher::write_go_quoted;
use shards::index::{MatchType, Matcher, MatcherError};
use thiserror::Error;

use super::json::ErrorType;
use super::rfc3339;
use crate::config::duration::Duration;

/// The earliest time the API knows: the default `start` of `labels`, `label/<n>/values`,
/// `series`, `query_exemplars` and `delete_series`. Prometheus defines it as
/// `time.Unix(math.MinInt64/1000 + 62135596801, 0)` (the offset keeps Go's time arithmetic
/// away from overflow), i.e. `-292273086-05-16T16:47:06Z`; in milliseconds, as its storage
/// sees it through `timestamp.FromTime`.
pub const MIN_TIME: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;

/// The latest time the API knows, the default `end`:
/// `time.Unix(math.MaxInt64/1000 - 62135596801, 999999999)`, i.e.
/// `292277025-08-18T07:12:54.999999999Z`, in milliseconds.
pub const MAX_TIME: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;

/// `MIN_TIME` and `MAX_TIME` as Go prints them (RFC 3339 with years Go cannot parse back):
/// clients such as Grafana and the Prometheus Go client send these for an open bound.
pub const MIN_TIME_FORMATTED: &str = "-292273086-05-16T16:47:06Z";
pub const MAX_TIME_FORMATTED: &str = "292277025-08-18T07:12:54.999999999Z";

/// Prometheus refuses range queries with more points per series than this.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Why a parameter was refused. `Display` is Prometheus's message, so the handler can send
/// `{"status":"error","errorType":"bad_data","error":<Display>}` as it is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApiParamError {
    #[error("cannot parse {} to a valid timestamp", GoQuoted(.0))]
    Timestamp(String),
    #[error("cannot parse {} to a valid duration", GoQuoted(.0))]
    Duration(String),
    #[error("cannot parse {} to a valid duration. It overflows int64", GoQuoted(.0))]
    DurationOverflow(String),
    /// Go's `strconv.Atoi` message.
    #[error("strconv.Atoi: parsing {}: invalid syntax", GoQuoted(.0))]
    IntegerSyntax(String),
    #[error("strconv.Atoi: parsing {}: value out of range", GoQuoted(.0))]
    IntegerRange(String),
    #[error("limit must be non-negative")]
    NegativeLimit,
    /// A `match[]` value that is not a plain series selector; the text is the parser's.
    #[error("{0}")]
    Selector(String),
    #[error("match[] must contain at least one non-empty matcher")]
    EmptyMatchers,
    #[error("{0}")]
    Matcher(#[from] MatcherError),
    #[error("no match[] parameter provided")]
    NoMatch,
    #[error("invalid label name: {}", GoQuoted(.0))]
    LabelName(String),
    /// `query_range`'s `end < start`.
    #[error("end timestamp must not be before start time")]
    EndBeforeStart,
    /// `query_exemplars`' `end < start` (Prometheus words it differently there).
    #[error("end timestamp must not be before start timestamp")]
    EndBeforeStartTimestamp,
    #[error(
        "zero or negative query resolution step widths are not accepted. Try a positive integer"
    )]
    NonPositiveStep,
    #[error("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")]
    TooManyPoints,
    /// What `parseTimeParam` adds for optional times (`start` of `series`, `time` of
    /// `query`, ...); `query_range`'s required `start`/`end` do without it.
    #[error("invalid time value for '{param}': {source}")]
    TimeValue {
        param: &'static str,
        source: Box<ApiParamError>,
    },
    /// Prometheus's `invalidParamError`.
    #[error("invalid parameter \"{param}\": {source}")]
    InvalidParameter {
        param: &'static str,
        source: Box<ApiParamError>,
    },
}

impl ApiParamError {
    /// `invalid parameter "<param>": <self>`.
    pub fn for_param(self, param: &'static str) -> ApiParamError {
        ApiParamError::InvalidParameter {
            param,
            source: Box::new(self),
        }
    }

    /// Every parameter error is the client's: `bad_data`, HTTP 400.
    pub fn error_type(&self) -> ErrorType {
        ErrorType::BadData
    }
}

/// A `<rfc3339 | unix_timestamp>` as Prometheus's `parseTime` reads it, in milliseconds:
/// first a Go float of seconds (`1700000000`, `1700000000.123`, `1.7e9`, `-5`) whose
/// fraction is rounded to milliseconds, then RFC 3339 (`2023-11-14T22:13:20.123Z`,
/// `...+01:00`), then [`MIN_TIME_FORMATTED`] / [`MAX_TIME_FORMATTED`].
///
/// Seconds beyond the millisecond range saturate (Grafana sends milliseconds where seconds
/// are expected, and Prometheus takes them as far-future seconds, so they must not fail);
/// `±Inf` saturate too. Where Prometheus turns `NaN` into an arbitrary time, this refuses it.
/// RFC 3339 sub-millisecond digits are dropped here, where Prometheus keeps them until it
/// converts to milliseconds.
pub fn parse_time(s: &str) -> Result<i64, ApiParamError> {
    if let Some(t) = parse_go_float(s) {
        if t.is_nan() {
            return Err(ApiParamError::Timestamp(s.to_string()));
        }
        // Go: s, ns := math.Modf(t); ns = math.Round(ns*1000)/1000;
        // time.Unix(int64(s), int64(ns*1e9)), then milliseconds rounded down.
        let secs = t.trunc();
        let frac = ((t - secs) * 1000.0).round() / 1000.0;
        let nanos = (frac * 1e9) as i64;
        return Ok((secs as i64)
            .saturating_mul(1000)
            .saturating_add(nanos.div_euclid(1_000_000)));
    }
    if let Some(t) = rfc3339::parse(s) {
        return Ok(t.as_millis());
    }
    match s {
        MIN_TIME_FORMATTED => Ok(MIN_TIME),
        MAX_TIME_FORMATTED => Ok(MAX_TIME),
        _ => Err(ApiParamError::Timestamp(s.to_string())),
    }
}

/// An optional time parameter as Prometheus's `parseTimeParam` reads it: absent or empty
/// gives `default` (MIN_TIME, MAX_TIME or now), a bad value
/// `invalid parameter "start": invalid time value for 'start': cannot parse "x" to a valid timestamp`.
pub fn parse_time_param(
    param: &'static str,
    value: Option<&str>,
    default: i64,
) -> Result<i64, ApiParamError> {
    match value {
        None | Some("") => Ok(default),
        Some(s) => parse_time(s).map_err(|e| {
            ApiParamError::TimeValue {
                param,
                source: Box::new(e),
            }
            .for_param(param)
        }),
    }
}

/// A signed span of nanoseconds, as Go's `time.Duration`: `step`, `timeout` and
/// `lookback_delta` are compared and divided in nanoseconds by Prometheus before the engine
/// sees milliseconds, and `0.0005` seconds is a positive step there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiDuration {
    nanos: i64,
}

impl ApiDuration {
    pub const fn from_nanos(nanos: i64) -> ApiDuration {
        ApiDuration { nanos }
    }

    pub const fn as_nanos(self) -> i64 {
        self.nanos
    }

    /// Whole milliseconds, truncated towards zero like Prometheus's `durationMilliseconds`.
    pub const fn as_millis(self) -> i64 {
        self.nanos / 1_000_000
    }

    pub const fn is_positive(self) -> bool {
        self.nanos > 0
    }
}

/// A `<duration | float>` as Prometheus's `parseDuration` reads it: a Go float of seconds
/// (`15`, `0.5`, `-1`, `1e3`), else a Prometheus duration (`5m`, `1h30m`, `54s321ms`).
pub fn parse_duration_param(s: &str) -> Result<ApiDuration, ApiParamError> {
    if let Some(secs) = parse_go_float(s) {
        let nanos = secs * 1e9;
        // Go compares with float64(math.MaxInt64), which rounds up to 2^63.
        if nanos > i64::MAX as f64 || nanos < i64::MIN as f64 {
            return Err(ApiParamError::DurationOverflow(s.to_string()));
        }
        return Ok(ApiDuration::from_nanos(nanos as i64));
    }
    match Duration::parse(s) {
        Ok(d) => Ok(ApiDuration::from_nanos(
            (d.as_millis() as i64).saturating_mul(1_000_000),
        )),
        Err(_) => Err(ApiParamError::Duration(s.to_string())),
    }
}

/// `limit` as Prometheus's `parseLimitParam` reads it: absent or empty is 0, no limit.
pub fn parse_limit(value: Option<&str>) -> Result<usize, ApiParamError> {
    let s = match value {
        None | Some("") => return Ok(0),
        Some(s) => s,
    };
    let n = parse_go_int(s)?;
    if n < 0 {
        return Err(ApiParamError::NegativeLimit);
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Checks a range query's bounds in Prometheus's order: `end` not before `start`, a
/// positive `step`, and at most 11,000 steps, computed as Prometheus does in nanoseconds
/// with integer division (so exactly 11,000 steps, 11,001 points, pass).
pub fn check_range(start: i64, end: i64, step: ApiDuration) -> Result<(), ApiParamError> {
    if end < start {
        return Err(ApiParamError::EndBeforeStart.for_param("end"));
    }
    if !step.is_positive() {
        return Err(ApiParamError::NonPositiveStep.for_param("step"));
    }
    // Go's Time.Sub saturates at the largest Duration.
    let span = (i128::from(end) - i128::from(start)) * 1_000_000;
    let span = span.min(i128::from(i64::MAX));
    if span / i128::from(step.as_nanos()) > i128::from(MAX_POINTS_PER_SERIES) {
        return Err(ApiParamError::TooManyPoints);
    }
    Ok(())
}

/// One `match[]` value, a PromQL series selector (`up`, `{job="x"}`,
/// `up{a=~"b.*",c!="d"}`, `{"my.metric"}`), as storage matchers; a metric name becomes a
/// leading `__name__` equality matcher, as in Prometheus. Anything but a bare selector (a
/// range, `offset`, `@`, a function, an operator) is a [`ApiParamError::Selector`], and a
/// selector whose every matcher matches the empty string is
/// [`ApiParamError::EmptyMatchers`] (`{__name__=~".*"}`; `{__name__!=""}` is fine).
pub fn parse_matchers(selector: &str) -> Result<Vec<Matcher>, ApiParamError> {
    let expr = promql_parser::parser::parse(selector).map_err(|e| {
        // The parser runs Prometheus's `checkAST` rule for selectors, which the API's
        // selector entry point skips; its own check gives the API's wording instead.
        if e.contains("at least one non-empty matcher") {
            ApiParamError::EmptyMatchers
        } else {
            ApiParamError::Selector(super::parse_error::selector_message(selector, &e))
        }
    })?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(ApiParamError::Selector(
            super::parse_error::selector_message(
                selector,
                &format!("expected a series selector, got {:?}", selector.trim()),
            ),
        ));
    };
    if vs.offset.is_some() || vs.at.is_some() || !vs.matchers.or_matchers.is_empty() {
        return Err(ApiParamError::Selector(
            super::parse_error::selector_message(
                selector,
                "a series selector takes no offset, @ or `or` matchers",
            ),
        ));
    }
    let mut matchers = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = vs.name {
        matchers.push(Matcher::new(MatchType::Equal, "__name__", name)?);
    }
    for m in vs.matchers.matchers {
        let kind = match m.op {
            MatchOp::Equal => MatchType::Equal,
            MatchOp::NotEqual => MatchType::NotEqual,
            MatchOp::Re(_) => MatchType::Regex,
            MatchOp::NotRe(_) => MatchType::NotRegex,
        };
        matchers.push(Matcher::new(kind, m.name, m.value)?);
    }
    if matchers.iter().all(Matcher::matches_empty) {
        return Err(ApiParamError::EmptyMatchers);
    }
    Ok(matchers)
}

/// `targets/metadata`'s `match_target`, a selector over target labels. Prometheus reads it
/// with `ParseMetricSelector`, which has no non-empty-matcher rule, so `{job=~".*"}` selects
/// every target there; the PromQL parser used here applies that rule, so such a selector is
/// refused (a documented difference).
pub fn parse_target_matchers(selector: &str) -> Result<Vec<Matcher>, ApiParamError> {
    parse_matchers(selector)
}

/// All `match[]` values of a request, one matcher list per selector (their union is
/// selected), as Prometheus's `parseMatchersParam`. Errors come bare, as `labels` and
/// `label/<name>/values` report them; `series` wraps them with `.for_param("match[]")`.
pub fn parse_match_params<S: AsRef<str>>(
    selectors: &[S],
) -> Result<Vec<Vec<Matcher>>, ApiParamError> {
    selectors
        .iter()
        .map(|s| parse_matchers(s.as_ref()))
        .collect()
}

/// The `<label_name>` path segment of `/api/v1/label/<label_name>/values`: a name starting
/// with `U__` is unescaped (`U__http_2e_status__code` is `http.status_code`: `_2e_` is a code point, `__` is `_`);
/// one whose escapes are malformed is kept as written, as Prometheus keeps it. Any
/// non-empty name is valid (Prometheus 3 accepts UTF-8 names).
pub fn decode_label_name(segment: &str) -> Result<String, ApiParamError> {
    let name = match segment.strip_prefix("U__") {
        Some(escaped) => unescape_name(escaped).unwrap_or_else(|| segment.to_string()),
        None => segment.to_string(),
    };
    if name.is_empty() {
        return Err(ApiParamError::LabelName(name));
    }
    Ok(name)
}

fn unescape_name(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        let mut code: u32 = 0;
        let mut digits = 0;
        loop {
            // Prometheus gives up at a sixth digit (or a closing `_` after it), so the
            // highest code points cannot be escaped this way.
            if digits == 6 {
                return None;
            }
            match chars.next()? {
                '_' if digits == 0 => {
                    out.push('_');
                    break;
                }
                '_' => {
                    out.push(char::from_u32(code)?);
                    break;
                }
                h => {
                    code = code * 16 + h.to_digit(16)?;
                    digits += 1;
                }
            }
        }
    }
    Some(out)
}

/// Go's `strconv.ParseFloat(s, 64)` where it succeeds: decimal with optional sign,
/// fraction and exponent, `Inf`/`Infinity` with optional sign and `NaN`, case-insensitive.
/// Out-of-range values are errors in Go (Rust would give infinity). Go's hexadecimal
/// floats and underscore-separated hexadecimal digits are not accepted here.
fn parse_go_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = unsigned.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "infinity" => return s.parse().ok(),
        "nan" if unsigned.len() == s.len() => return Some(f64::NAN),
        _ => {}
    }
    let body = unsigned.as_bytes();
    let (mut digits, mut i) = (0, 0);
    while i < body.len() && body[i].is_ascii_digit() {
        digits += 1;
        i += 1;
    }
    if i < body.len() && body[i] == b'.' {
        i += 1;
        while i < body.len() && body[i].is_ascii_digit() {
            digits += 1;
            i += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if i < body.len() && (body[i] == b'e' || body[i] == b'E') {
        i += 1;
        if i < body.len() && (body[i] == b'+' || body[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < body.len() && body[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != body.len() {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

/// Go's `strconv.Atoi`: optional sign and decimal digits, nothing else.
fn parse_go_int(s: &str) -> Result<i64, ApiParamError> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiParamError::IntegerSyntax(s.to_string()));
    }
    s.parse()
        .map_err(|_| ApiParamError::IntegerRange(s.to_string()))
}

/// A string quoted like Go's `%q` (`strconv.Quote`), which Prometheus uses to show the
/// offending value in its messages; the matchers' quoting, shared.
pub struct GoQuoted<'a>(pub &'a str);

impl fmt::Display for GoQuoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_go_quoted(f, self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::json::write_timestamp;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// What the API writes as a timestamp reads back as the same millisecond.
        #[test]
        fn written_timestamps_parse_back(ms in -9_000_000_000_000i64..9_000_000_000_000) {
            let mut out = Vec::new();
            write_timestamp(&mut out, ms);
            prop_assert_eq!(parse_time(std::str::from_utf8(&out).unwrap()), Ok(ms));
        }
    }

    #[test]
    fn min_and_max_time_are_prometheus_constants() {
        assert_eq!(MIN_TIME, -9_223_309_901_257_974_000);
        assert_eq!(MAX_TIME, 9_223_309_901_257_974_999);
        assert_eq!(parse_time(MIN_TIME_FORMATTED), Ok(MIN_TIME));
        assert_eq!(parse_time(MAX_TIME_FORMATTED), Ok(MAX_TIME));
        // The formatted strings are what Go prints for these instants.
        let mut out = Vec::new();
        rfc3339::format_nano(
            &mut out,
            rfc3339::Instant {
                secs: MIN_TIME / 1000,
                nanos: 0,
            },
        );
        assert_eq!(out, MIN_TIME_FORMATTED.as_bytes());
        out.clear();
        rfc3339::format_nano(
            &mut out,
            rfc3339::Instant {
                secs: MAX_TIME / 1000,
                nanos: 999_999_999,
            },
        );
        assert_eq!(out, MAX_TIME_FORMATTED.as_bytes());
    }

    #[test]
    fn times_as_float_seconds() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("1700000000.123"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("1435781451.781"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("1.7e9"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("+4"), Ok(4_000));
        assert_eq!(parse_time("-5"), Ok(-5_000));
        assert_eq!(parse_time("-1.5"), Ok(-1_500));
        assert_eq!(parse_time(".5"), Ok(500));
        assert_eq!(parse_time("5."), Ok(5_000));
        assert_eq!(parse_time("0"), Ok(0));
        // The fraction is rounded to milliseconds with Go's float operations: 1.0005 - 1 is
        // slightly below 0.0005 in binary, so it rounds down in Prometheus too.
        assert_eq!(parse_time("1.0005"), Ok(1_000));
        assert_eq!(parse_time("1.0006"), Ok(1_001));
        assert_eq!(parse_time("0.0005"), Ok(1));
        assert_eq!(parse_time("1.9996"), Ok(2_000));
        assert_eq!(parse_time("-0.0004"), Ok(0));
        assert_eq!(parse_time("-0.0006"), Ok(-1));
        // Grafana's exemplar probe sends milliseconds: far-future seconds, not an error.
        assert_eq!(parse_time("1732000000000"), Ok(1_732_000_000_000_000));
        assert_eq!(parse_time("1e300"), Ok(i64::MAX));
        assert_eq!(parse_time("-1e300"), Ok(i64::MIN));
        assert_eq!(parse_time("+Inf"), Ok(i64::MAX));
        assert_eq!(parse_time("-infinity"), Ok(i64::MIN));
    }

    #[test]
    fn times_as_rfc3339() {
        assert_eq!(
            parse_time("2023-11-14T22:13:20.123Z"),
            Ok(1_700_000_000_123)
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20+01:00"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z"),
            Ok(1_435_781_451_781)
        );
    }

    #[test]
    fn bad_times_read_as_prometheus() {
        for bad in [
            "abc", "", "NaN", "+NaN", "1e400", "0x10", "1_000", " 1", "1 ", "e5", "1e",
        ] {
            assert_eq!(
                parse_time(bad),
                Err(ApiParamError::Timestamp(bad.to_string())),
                "{bad}"
            );
        }
        assert_eq!(
            parse_time("abc")
                .unwrap_err()
                .for_param("start")
                .to_string(),
            r#"invalid parameter "start": cannot parse "abc" to a valid timestamp"#
        );
        assert_eq!(
            parse_time("").unwrap_err().for_param("end").to_string(),
            r#"invalid parameter "end": cannot parse "" to a valid timestamp"#
        );
    }

    #[test]
    fn optional_time_params() {
        assert_eq!(parse_time_param("start", None, MIN_TIME), Ok(MIN_TIME));
        assert_eq!(parse_time_param("end", Some(""), MAX_TIME), Ok(MAX_TIME));
        assert_eq!(parse_time_param("time", Some("4"), 0), Ok(4_000));
        let err = parse_time_param("start", Some("x"), MIN_TIME).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid parameter "start": invalid time value for 'start': cannot parse "x" to a valid timestamp"#
        );
        assert_eq!(err.error_type(), ErrorType::BadData);
    }

    #[test]
    fn durations() {
        let ns = |s| parse_duration_param(s).map(ApiDuration::as_nanos);
        assert_eq!(ns("15"), Ok(15_000_000_000));
        assert_eq!(ns("0.5"), Ok(500_000_000));
        assert_eq!(ns("30.0"), Ok(30_000_000_000));
        assert_eq!(ns("-1"), Ok(-1_000_000_000));
        assert_eq!(ns("0.0005"), Ok(500_000));
        assert_eq!(ns("5m"), Ok(300_000_000_000));
        assert_eq!(ns("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(ns("54s321ms"), Ok(54_321_000_000));
        assert_eq!(ns("1d"), Ok(86_400_000_000_000));
        assert_eq!(ns("0s"), Ok(0));
        assert_eq!(ns("0"), Ok(0));
        assert_eq!(parse_duration_param("90s").unwrap().as_millis(), 90_000);
        assert_eq!(parse_duration_param("0.0005").unwrap().as_millis(), 0);
        for bad in ["1.5h", "-5m", "5 m", "", "abc", "1m1h", "NaNs"] {
            assert_eq!(
                parse_duration_param(bad),
                Err(ApiParamError::Duration(bad.to_string())),
                "{bad}"
            );
        }
        assert_eq!(
            parse_duration_param("x")
                .unwrap_err()
                .for_param("step")
                .to_string(),
            r#"invalid parameter "step": cannot parse "x" to a valid duration"#
        );
        assert_eq!(
            parse_duration_param("1e10").unwrap_err().to_string(),
            r#"cannot parse "1e10" to a valid duration. It overflows int64"#
        );
        assert_eq!(ns("9e9"), Ok(9_000_000_000_000_000_000));
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None), Ok(0));
        assert_eq!(parse_limit(Some("")), Ok(0));
        assert_eq!(parse_limit(Some("40000")), Ok(40_000));
        assert_eq!(parse_limit(Some("+7")), Ok(7));
        assert_eq!(parse_limit(Some("0")), Ok(0));
        assert_eq!(
            parse_limit(Some("-1"))
                .unwrap_err()
                .for_param("limit")
                .to_string(),
            r#"invalid parameter "limit": limit must be non-negative"#
        );
        assert_eq!(
            parse_limit(Some("1.5")).unwrap_err().to_string(),
            r#"strconv.Atoi: parsing "1.5": invalid syntax"#
        );
        assert_eq!(
            parse_limit(Some("99999999999999999999"))
                .unwrap_err()
                .to_string(),
            r#"strconv.Atoi: parsing "99999999999999999999": value out of range"#
        );
        assert!(parse_limit(Some("-")).is_err());
    }

    #[test]
    fn range_checks_in_prometheus_order() {
        let step = |s| parse_duration_param(s).unwrap();
        assert_eq!(check_range(0, 0, step("15s")), Ok(()));
        assert_eq!(
            check_range(1_000, 0, step("0")).unwrap_err().to_string(),
            r#"invalid parameter "end": end timestamp must not be before start time"#
        );
        assert_eq!(
            check_range(0, 1_000, step("0")).unwrap_err().to_string(),
            r#"invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer"#
        );
        assert!(check_range(0, 1_000, step("-1")).is_err());
        // 11,000 steps (11,001 points) are fine, 11,001 steps are not.
        assert_eq!(check_range(0, 11_000_000, step("1s")), Ok(()));
        assert_eq!(check_range(0, 11_000_999, step("1s")), Ok(()));
        assert_eq!(
            check_range(0, 11_001_000, step("1s")).unwrap_err().to_string(),
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
        );
        assert_eq!(
            check_range(MIN_TIME, MAX_TIME, step("1h")),
            Err(ApiParamError::TooManyPoints)
        );
        // The span saturates at the largest Go duration (~292 years) instead of overflowing.
        assert_eq!(check_range(MIN_TIME, MAX_TIME, step("1e9")), Ok(()));
        assert_eq!(
            check_range(MIN_TIME, MAX_TIME, step("1e5")),
            Err(ApiParamError::TooManyPoints)
        );
        // A sub-millisecond step is positive, and its point limit is computed in nanoseconds.
        assert_eq!(check_range(0, 5, step("0.0005")), Ok(()));
        assert_eq!(
            check_range(0, 6, step("0.0000005")),
            Err(ApiParamError::TooManyPoints)
        );
    }

    fn show(ms: &[Matcher]) -> Vec<String> {
        ms.iter()
            .map(|m| format!("{}{}{:?}", m.name, m.kind, m.value))
            .collect()
    }

    #[test]
    fn selectors_become_matchers() {
        let ok = |s| show(&parse_matchers(s).unwrap());
        assert_eq!(ok("up"), ["__name__=\"up\""]);
        assert_eq!(ok(r#"{job="x"}"#), ["job=\"x\""]);
        assert_eq!(
            ok(r#"up{a=~"b.*",c!="d"}"#),
            ["__name__=\"up\"", "a=~\"b.*\"", "c!=\"d\""]
        );
        assert_eq!(ok(r#"{__name__=~"x|y"}"#), ["__name__=~\"x|y\""]);
        assert_eq!(ok(r#"{__name__!=""}"#), ["__name__!=\"\""]);
        assert_eq!(ok(r#"{__name__=~".+"}"#), ["__name__=~\".+\""]);
        assert_eq!(ok(r#"x{a!~"b"}"#), ["__name__=\"x\"", "a!~\"b\""]);
        assert_eq!(
            ok(r#"{"my.metric", "label.with.dot"="v"}"#),
            ["__name__=\"my.metric\"", "label.with.dot=\"v\""]
        );
        assert_eq!(ok(r#"up{a="\u00e9\n"}"#), ["__name__=\"up\"", "a=\"é\\n\""]);
        // Grafana's multi-value variables and escaped metacharacters.
        assert_eq!(
            ok(r#"up{job=~"(a|b\\.c)"}"#),
            ["__name__=\"up\"", "job=~\"(a|b\\\\.c)\""]
        );
        let m = parse_matchers(r#"up{job=~"(a|b\\.c)"}"#).unwrap();
        assert!(m[1].matches("b.c") && !m[1].matches("bxc"));
    }

    #[test]
    fn selectors_matching_everything_are_refused() {
        for s in [
            r#"{__name__=~".*"}"#,
            "{}",
            r#"{a=""}"#,
            r#"{a=~".*",b!~".+"}"#,
        ] {
            let err = parse_matchers(s).unwrap_err();
            assert_eq!(err, ApiParamError::EmptyMatchers, "{s}");
            assert_eq!(
                err.to_string(),
                "match[] must contain at least one non-empty matcher"
            );
        }
        // One non-empty matcher is enough.
        assert!(parse_matchers(r#"{a="", b="c"}"#).is_ok());
    }

    #[test]
    fn only_bare_selectors_are_accepted() {
        for s in [
            "up[5m]",
            "sum(up)",
            "up offset 5m",
            "up @ 100",
            "1",
            "up + up",
            r#"up{a="b" or c="d"}"#,
            "",
            "up{",
            r#"up{__name__="x"}"#,
        ] {
            match parse_matchers(s) {
                Err(ApiParamError::Selector(msg)) => {
                    assert!(msg.contains("parse error: "), "{msg}")
                }
                other => panic!("{s}: {other:?}"),
            }
        }
        let err = parse_matchers("up[5m]").unwrap_err().for_param("match[]");
        assert!(err
            .to_string()
            .starts_with("invalid parameter \"match[]\": 1:3: parse error: unexpected \"[\""));
    }

    #[test]
    fn match_params_keep_one_list_per_selector() {
        let sets = parse_match_params(&["up", r#"{job="x"}"#]).unwrap();
        assert_eq!(sets.len(), 2);
        assert_eq!(show(&sets[1]), ["job=\"x\""]);
        assert_eq!(
            parse_match_params(&["up", "{}"]),
            Err(ApiParamError::EmptyMatchers)
        );
        assert_eq!(parse_match_params::<&str>(&[]).map(|v| v.len()), Ok(0));
        assert_eq!(
            ApiParamError::NoMatch.to_string(),
            "no match[] parameter provided"
        );
    }

    #[test]
    fn label_names_from_the_path() {
        assert_eq!(decode_label_name("job"), Ok("job".to_string()));
        assert_eq!(
            decode_label_name("U__http_2e_status__code"),
            Ok("http.status_code".to_string())
        );
        // A single `_` opens an escape: `_co...` is not hex, so Prometheus keeps the name.
        assert_eq!(
            decode_label_name("U__http_2e_status_code"),
            Ok("U__http_2e_status_code".to_string())
        );
        assert_eq!(decode_label_name("U__a__b"), Ok("a_b".to_string()));
        assert_eq!(decode_label_name("U__a_1F600_"), Ok("a😀".to_string()));
        assert_eq!(decode_label_name("U___2e_"), Ok(".".to_string()));
        // Malformed escapes leave the name as written.
        for kept in ["U__a_", "U__a_zz_", "U__a_10FFFF_", "U__a_d800_", "U__a_2e"] {
            assert_eq!(decode_label_name(kept), Ok(kept.to_string()));
        }
        assert_eq!(
            decode_label_name("U__").unwrap_err().to_string(),
            r#"invalid label name: """#
        );
        assert!(decode_label_name("").is_err());
    }

    #[test]
    fn go_quoting() {
        let q = |s| GoQuoted(s).to_string();
        assert_eq!(q("abc"), r#""abc""#);
        assert_eq!(q(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(q("a\nb\tc\u{0}\u{7f}"), r#""a\nb\tc\x00\x7f""#);
        assert_eq!(q("é😀 x"), "\"é😀 x\"");
        assert_eq!(q("\u{a0}\u{200b}"), r#""\u00a0\u200b""#);
    }
}
