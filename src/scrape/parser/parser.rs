//! The line parser: walks a response body in place and yields one `Entry` per meaningful
//! line, for text 0.0.4 or OpenMetrics 1.0 depending on the `Format`. Lines are found with
//! a SIMD byte search and every token is a slice of the body, so a sample whose series is
//! already cached costs no allocation at all. It never decodes labels unless asked
//! (`Parser::labels`), never validates UTF-8 it does not need, and stops at the first
//! error, because any error fails the whole scrape.

use super::entry::{Entry, MetricType};
use super::error::{Fail, ParseError, ParseErrorKind};
use super::escape::{unescape, Escapes};
use super::format::Format;
use super::labels::{check_exemplar_label, decode_series, scan_labels, skip_blanks, LabelPairs};
use super::names::{ascii_str, metric_name_len};
use super::number::{parse_seconds_as_ms, parse_timestamp_ms, parse_value};

/// A metadata or comment line. (Blank lines and `# EOF` never get here.)
type LineResult<'a> = Result<Entry<'a>, Fail>;

/// A sample line's series, value and timestamp.
type SampleResult<'a> = Result<(&'a [u8], f64, Option<i64>), Fail>;

/// Parses an exposition body; an `Iterator` of entries that ends after the first error.
pub struct Parser<'a> {
    body: &'a [u8],
    /// Start of the next line.
    pos: usize,
    /// Number of the line last read (1-based), for errors.
    line: usize,
    format: Format,
    done: bool,
}

impl<'a> Parser<'a> {
    pub fn new(body: &'a [u8], format: Format) -> Self {
        Parser {
            body,
            pos: 0,
            line: 0,
            format,
            done: false,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The 1-based number of the line of the entry last returned.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Decodes the labels of a sample's `series` (escapes resolved, `__name__` first) into
    /// the caller's reusable buffer; needed only on a scrape-cache miss. An error here
    /// (invalid UTF-8, a duplicate label name) must fail the scrape like a parse error; it
    /// is reported at the line of the entry last returned.
    pub fn labels(&self, series: &'a [u8], out: &mut LabelPairs<'a>) -> Result<(), ParseError> {
        decode_series(series, self.format, out).map_err(|kind| ParseError {
            line: self.line.max(1),
            kind,
        })
    }

    fn entry(&mut self, parsed: Result<Entry<'a>, Fail>) -> Option<Result<Entry<'a>, ParseError>> {
        match parsed {
            Ok(entry) => Some(Ok(entry)),
            Err(kind) => self.fail(self.line, kind),
        }
    }

    fn fail(&mut self, line: usize, kind: Fail) -> Option<Result<Entry<'a>, ParseError>> {
        self.done = true;
        Some(Err(ParseError { line, kind }))
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let body = self.body;
            if self.pos >= body.len() {
                return match self.format {
                    Format::PrometheusText => {
                        self.done = true;
                        None
                    }
                    Format::OpenMetrics => {
                        self.fail(self.line + 1, ParseErrorKind::MissingEof.into())
                    }
                };
            }
            let rest = &body[self.pos..];
            // The final line may lack its newline.
            let (line, next) = match memchr::memchr(b'\n', rest) {
                Some(n) => (&rest[..n], self.pos + n + 1),
                None => (rest, body.len()),
            };
            self.pos = next;
            self.line += 1;
            // Samples come back as plain fields and become an `Entry` right in the return
            // slot: moving a finished `Entry` out of a temporary costs a store-forwarding
            // stall per line.
            let parsed = match self.format {
                Format::PrometheusText => {
                    let start = skip_blanks(line, 0);
                    match line.get(start) {
                        None => continue,
                        Some(b'#' | b'{') => return self.entry(text_other(line, start)),
                        Some(_) => text_sample(line, start),
                    }
                }
                Format::OpenMetrics => match line.first() {
                    Some(b'#' | b'{') | None if line == b"# EOF" => {
                        if self.pos < body.len() {
                            let kind = ParseErrorKind::DataAfterEof.into();
                            return self.fail(self.line + 1, kind);
                        }
                        self.done = true;
                        continue;
                    }
                    Some(b'#' | b'{') | None => return self.entry(openmetrics_other(line)),
                    Some(_) => openmetrics_sample(line),
                },
            };
            return match parsed {
                Ok((series, value, timestamp_ms)) => Some(Ok(Entry::Sample {
                    series,
                    value,
                    timestamp_ms,
                })),
                Err(kind) => self.fail(self.line, kind),
            };
        }
    }
}

/// Where the token starting at `from` ends: the next blank (both formats' value and
/// timestamp tokens stop there) or the end of the line.
#[inline]
fn token_end(line: &[u8], from: usize, text: bool) -> usize {
    let rest = &line[from..];
    from + rest
        .iter()
        .position(|&c| c == b' ' || (text && c == b'\t'))
        .unwrap_or(rest.len())
}

// ---- text 0.0.4 ----

/// A text line that is not a sample.
#[inline(never)]
fn text_other(line: &[u8], start: usize) -> LineResult<'_> {
    match line.get(start) {
        Some(b'#') => text_comment(line, start + 1),
        _ => Err(ParseErrorKind::QuotedName.into()),
    }
}

#[inline]
fn text_sample(line: &[u8], start: usize) -> SampleResult<'_> {
    let name_len = metric_name_len(&line[start..]);
    if name_len == 0 {
        return Err(ParseErrorKind::syntax("metric name", line, start));
    }
    let mut end = start + name_len;
    let open = skip_blanks(line, end);
    if line.get(open) == Some(&b'{') {
        end = scan_labels(line, open, Format::PrometheusText, |_, _| Ok(()))?;
    }
    let series = &line[start..end];
    let value_start = skip_blanks(line, end);
    if value_start == end || value_start == line.len() {
        return Err(ParseErrorKind::syntax(
            "blank then value after metric",
            line,
            value_start,
        ));
    }
    let value_end = token_end(line, value_start, true);
    let value_text = &line[value_start..value_end];
    let value = parse_value(value_text)
        .map_err(|e| ParseErrorKind::number("sample value", value_text, e))?;
    let ts_start = skip_blanks(line, value_end);
    if ts_start == line.len() {
        return sample(series, value, None);
    }
    let ts_end = token_end(line, ts_start, true);
    let ts_text = &line[ts_start..ts_end];
    let ts =
        parse_timestamp_ms(ts_text).map_err(|e| ParseErrorKind::number("timestamp", ts_text, e))?;
    let tail = skip_blanks(line, ts_end);
    if tail != line.len() {
        return Err(ParseErrorKind::syntax(
            "end of line after timestamp",
            line,
            tail,
        ));
    }
    sample(series, value, Some(ts))
}

#[inline]
fn sample(series: &[u8], value: f64, timestamp_ms: Option<i64>) -> SampleResult<'_> {
    Ok((series, value, timestamp_ms))
}

/// A `#` line of the text format: HELP and TYPE need `#`, blanks, the keyword and blanks;
/// anything else (`#HELP`, `# HELPx`, `# EOF`, a lone `# HELP`) is a comment.
/// Out of line: metadata is rarer than samples, and inlined it slows the sample path.
#[inline(never)]
fn text_comment(line: &[u8], after_hash: usize) -> LineResult<'_> {
    let keyword = skip_blanks(line, after_hash);
    if keyword == after_hash {
        return Ok(Entry::Comment);
    }
    let is_help = match line.get(keyword..keyword + 4) {
        Some(b"HELP") => true,
        Some(b"TYPE") => false,
        _ => return Ok(Entry::Comment),
    };
    let name_start = skip_blanks(line, keyword + 4);
    if name_start == keyword + 4 {
        return Ok(Entry::Comment);
    }
    let what = if is_help {
        "metric name after HELP"
    } else {
        "metric name after TYPE"
    };
    let (metric, text) = metadata_name_and_text(line, name_start, what)?;
    if is_help {
        return help(metric, text, Escapes::TextHelp);
    }
    match MetricType::from_text(text) {
        Some(kind) => Ok(Entry::Type { metric, kind }),
        None => Err(ParseErrorKind::InvalidMetricType(super::error::snippet(text)).into()),
    }
}

/// The metric name of a metadata line and the text after it. Like Prometheus, the text is
/// the rest of the line less the one byte separating it from the name.
fn metadata_name_and_text<'a>(
    line: &'a [u8],
    name_start: usize,
    what: &'static str,
) -> Result<(&'a str, &'a [u8]), Fail> {
    if line.get(name_start) == Some(&b'"') {
        return Err(ParseErrorKind::QuotedName.into());
    }
    let name_len = metric_name_len(&line[name_start..]);
    if name_len == 0 {
        return Err(ParseErrorKind::syntax(what, line, name_start));
    }
    let name_end = name_start + name_len;
    let text = line.get(name_end + 1..).unwrap_or_default();
    Ok((ascii_str(&line[name_start..name_end]), text))
}

fn help<'a>(metric: &'a str, text: &'a [u8], escapes: Escapes) -> LineResult<'a> {
    let text = unescape(text, escapes).ok_or(ParseErrorKind::InvalidUtf8("help text"))?;
    Ok(Entry::Help { metric, text })
}

// ---- OpenMetrics 1.0 ----

/// An OpenMetrics line that is not a sample nor `# EOF`.
#[inline(never)]
fn openmetrics_other(line: &[u8]) -> LineResult<'_> {
    match line.first() {
        None => Err(ParseErrorKind::BlankLine.into()),
        Some(b'#') => openmetrics_comment(line),
        _ => Err(ParseErrorKind::QuotedName.into()),
    }
}

#[inline]
fn openmetrics_sample(line: &[u8]) -> SampleResult<'_> {
    let name_len = metric_name_len(line);
    if name_len == 0 {
        return Err(ParseErrorKind::syntax("metric name", line, 0));
    }
    let mut end = name_len;
    if line.get(end) == Some(&b'{') {
        end = scan_labels(line, end, Format::OpenMetrics, |_, _| Ok(()))?;
    }
    let series = &line[..end];
    let (value, after_value) = openmetrics_value(line, end, "sample value")?;
    let Some(next) = after_value else {
        return sample(series, value, None);
    };
    if is_exemplar(line, next) {
        exemplar(line, next + 2)?;
        return sample(series, value, None);
    }
    let ts_end = token_end(line, next, false);
    let ts_text = &line[next..ts_end];
    if ts_text.is_empty() {
        return Err(ParseErrorKind::syntax("timestamp or exemplar", line, next));
    }
    let ts = parse_seconds_as_ms(ts_text)
        .map_err(|e| ParseErrorKind::number("timestamp", ts_text, e))?;
    if ts_end < line.len() {
        if !is_exemplar(line, ts_end + 1) {
            return Err(ParseErrorKind::syntax(
                "end of line or exemplar after timestamp",
                line,
                ts_end + 1,
            ));
        }
        exemplar(line, ts_end + 3)?;
    }
    sample(series, value, Some(ts))
}

/// Exactly one space then a number at `line[at..]`. Returns the value and, if the line
/// goes on, where the next token starts (past its single separating space).
#[inline]
fn openmetrics_value(
    line: &[u8],
    at: usize,
    what: &'static str,
) -> Result<(f64, Option<usize>), Fail> {
    if line.get(at) != Some(&b' ') {
        return Err(ParseErrorKind::syntax("a space then a value", line, at));
    }
    let start = at + 1;
    let end = token_end(line, start, false);
    if end == start {
        return Err(ParseErrorKind::syntax(
            "a value after a single space",
            line,
            start,
        ));
    }
    let text = &line[start..end];
    let value = parse_value(text).map_err(|e| ParseErrorKind::number(what, text, e))?;
    Ok((value, (end < line.len()).then_some(end + 1)))
}

#[inline]
fn is_exemplar(line: &[u8], at: usize) -> bool {
    line.get(at..at + 3) == Some(b"# {")
}

/// ` # {labels} value [timestamp]` after a sample, with `line[open]` its `{`: checked as
/// Prometheus checks it, then dropped (exemplars are not stored).
fn exemplar(line: &[u8], open: usize) -> Result<(), Fail> {
    let end = scan_labels(line, open, Format::OpenMetrics, check_exemplar_label)?;
    let (_, after_value) = openmetrics_value(line, end, "exemplar value")?;
    let Some(ts_start) = after_value else {
        return Ok(());
    };
    let ts_end = token_end(line, ts_start, false);
    if ts_end != line.len() {
        return Err(ParseErrorKind::syntax(
            "end of line after exemplar timestamp",
            line,
            ts_end,
        ));
    }
    let ts_text = &line[ts_start..];
    parse_seconds_as_ms(ts_text)
        .map_err(|e| ParseErrorKind::number("exemplar timestamp", ts_text, e))?;
    Ok(())
}

/// Only `# HELP`, `# TYPE`, `# UNIT` (each with exactly one space around the keyword and
/// after the name) and `# EOF` (seen by the caller) may start with `#`.
#[inline(never)]
fn openmetrics_comment(line: &[u8]) -> LineResult<'_> {
    let (keyword, what) = match line.get(..7) {
        Some(b"# HELP ") => (b'H', "metric name after HELP"),
        Some(b"# TYPE ") => (b'T', "metric name after TYPE"),
        Some(b"# UNIT ") => (b'U', "metric name after UNIT"),
        _ => return Err(ParseErrorKind::InvalidComment.into()),
    };
    let (metric, text) = metadata_name_and_text(line, 7, what)?;
    let separator = 7 + metric.len();
    if line.get(separator) != Some(&b' ') {
        return Err(ParseErrorKind::syntax(
            "a space then text after metric name",
            line,
            separator,
        ));
    }
    match keyword {
        b'H' => help(metric, text, Escapes::Quoted),
        b'T' => match MetricType::from_openmetrics(text) {
            Some(kind) => Ok(Entry::Type { metric, kind }),
            None => Err(ParseErrorKind::InvalidMetricType(super::error::snippet(text)).into()),
        },
        _ => {
            let unit_is_suffix = text.is_empty()
                || (metric.len() > text.len()
                    && metric.as_bytes().ends_with(text)
                    && metric.as_bytes()[metric.len() - text.len() - 1] == b'_');
            if !unit_is_suffix {
                return Err(ParseErrorKind::UnitNotSuffix {
                    unit: super::error::snippet(text),
                    metric: metric.to_owned(),
                }
                .into());
            }
            // A non-empty unit is a suffix of an ASCII name, hence ASCII.
            Ok(Entry::Unit {
                metric,
                unit: ascii_str(text),
            })
        }
    }
}
