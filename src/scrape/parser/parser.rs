//! The line parser: walks a response body in place and yields one `Entry` per meaningful
//! line, for text 0.0.4 or OpenMetrics 1.0 depending on the `Format`. Lines are read in the
//! body, a newline ending each token scan as the end of the line would, so each line is
//! read once; every token is a slice of the body, so a sample whose series is already
//! cached costs no allocation at all. The grammar of every line is checked, cached or not
//! (common shapes on byte masks, the rest byte by byte). It never decodes labels unless
//! asked (`Parser::labels`), never validates UTF-8 it does not need, and stops at the first
//! error, because any error fails the whole scrape.

use std::borrow::Cow;

use super::entry::{Entry, MetricType};
use super::error::{Fail, ParseError, ParseErrorKind};
use super::escape::{unescape, Escapes};
use super::format::Format;
use super::labels::{
    check_exemplar_label, decode_series, label_set_end, scan_labels, skip_blanks, LabelPairs,
};
use super::names::metric_name_len;
use super::number::{
    decimal_prefix, digits_prefix, parse_seconds_as_ms, parse_timestamp_ms, parse_value_slow,
};
use super::swar;
use super::utf8::ascii_str;
use crate::scrape::series_hash::KnownSeries;

/// A metadata or comment line, and where it ends. (Blank lines and `# EOF` never get
/// here.)
type LineResult<'a> = Result<(Entry<'a>, usize), Fail>;

/// A sample line's series, value and timestamp, and where its line ends.
type SampleResult<'a> = Result<(&'a [u8], f64, Option<i64>, usize), Fail>;

/// Parses an exposition body; an `Iterator` of entries that ends after the first error.
pub struct Parser<'a> {
    body: &'a [u8],
    /// Start of the next line.
    pos: usize,
    /// Number of the line last read (1-based), for errors.
    line: usize,
    format: Format,
    done: bool,
    /// The entry last returned was the one `next_expecting` was told to expect.
    took_expected: bool,
    /// Start of the line of the last `#` entry, for `comment_line`.
    comment_start: usize,
}

impl<'a> Parser<'a> {
    pub fn new(body: &'a [u8], format: Format) -> Self {
        Parser {
            body,
            pos: 0,
            line: 0,
            format,
            done: false,
            took_expected: false,
            comment_start: 0,
        }
    }

    /// `next`, told which series the next sample line most likely has, and which `#` line
    /// the next metadata line most likely is; in the text format only (OpenMetrics bodies
    /// ignore both hints).
    ///
    /// `series` is the length and hash of the series bytes of a line this target's parser
    /// accepted before (the scrape cache's next entry). A line whose first `series.len`
    /// bytes hash to `series.hash`, followed by one space and no label set, has that series
    /// (`series_hash` argues why equal hashes are taken for equal bytes): its grammar was
    /// checked when it was first seen, so the name and label set are not scanned again.
    ///
    /// `metadata_line` gives, only when the next line is a `#` line, the whole of a `#`
    /// line (as `comment_line` returned it) that the text parser accepted before. A line
    /// byte-identical to it means what it meant then, so it is not parsed again: it comes
    /// back as `Entry::Comment` with `took_expected` set, and the caller, which kept what
    /// the line meant, reads nothing more from it.
    ///
    /// Anything else is parsed as by `next`.
    #[inline]
    pub fn next_expecting<'e>(
        &mut self,
        series: KnownSeries,
        metadata_line: impl Fn() -> &'e [u8],
    ) -> Option<Result<Entry<'a>, ParseError>> {
        self.step(series, metadata_line)
    }

    /// Whether the entry `next_expecting` returned last was the expected one: a sample with
    /// the expected series, or the expected `#` line (returned as `Entry::Comment`).
    pub fn took_expected(&self) -> bool {
        self.took_expected
    }

    /// The `#` line of the entry last returned, when that entry was a metadata line or a
    /// comment: from the start of its line (blanks included) to its end, without the
    /// newline. What `next_expecting` takes as `metadata_line` in a later body.
    pub fn comment_line(&self) -> &'a [u8] {
        let end = self.pos.saturating_sub(1).min(self.body.len());
        &self.body[self.comment_start.min(end)..end]
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

    /// A line other than a sample: the entry, or the error that ends the parse.
    fn other(&mut self, parsed: LineResult<'a>) -> Option<Result<Entry<'a>, ParseError>> {
        match parsed {
            Ok((entry, line_end)) => {
                self.pos = line_end + 1;
                Some(Ok(entry))
            }
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
        self.step(KnownSeries::NONE, || &[])
    }
}

impl<'a> Parser<'a> {
    #[inline(always)]
    fn step<'e>(
        &mut self,
        expected: KnownSeries,
        metadata_line: impl Fn() -> &'e [u8],
    ) -> Option<Result<Entry<'a>, ParseError>> {
        self.took_expected = false;
        loop {
            if self.done {
                return None;
            }
            let body = self.body;
            let pos = self.pos;
            let Some(&first) = body.get(pos) else {
                return match self.format {
                    Format::PrometheusText => {
                        self.done = true;
                        None
                    }
                    Format::OpenMetrics => {
                        self.fail(self.line + 1, ParseErrorKind::MissingEof.into())
                    }
                };
            };
            self.line += 1;
            // Samples are read in the body, a newline ending the line, so that a sample's
            // line is scanned once; only the rarer lines are cut out first. Samples come
            // back as plain fields and become an `Entry` right in the return slot: moving a
            // finished `Entry` out of a temporary costs a store-forwarding stall per line.
            let parsed = match self.format {
                Format::PrometheusText => {
                    let start = skip_blanks(body, pos);
                    match body.get(start) {
                        None => {
                            self.pos = body.len();
                            continue;
                        }
                        Some(b'\n') => {
                            self.pos = start + 1;
                            continue;
                        }
                        Some(b'#') => {
                            if let Some(end) = known_line_end(body, pos, metadata_line()) {
                                self.took_expected = true;
                                self.pos = end + 1;
                                return Some(Ok(Entry::Comment));
                            }
                            self.comment_start = pos;
                            return self.other(text_comment(body, start));
                        }
                        Some(b'{') => {
                            return self.fail(self.line, ParseErrorKind::QuotedName.into())
                        }
                        Some(_) => match known_series_end(body, start, expected) {
                            Some(end) => {
                                self.took_expected = true;
                                // `known_series_end` saw the one space before the value.
                                text_sample_value(body, start, end, end + 1)
                            }
                            None => text_sample(body, start),
                        },
                    }
                }
                Format::OpenMetrics => match first {
                    b'#' if body.get(pos..pos + 5) == Some(b"# EOF")
                        && at_line_end(body, pos + 5) =>
                    {
                        if pos + 6 < body.len() {
                            let kind = ParseErrorKind::DataAfterEof.into();
                            return self.fail(self.line + 1, kind);
                        }
                        self.done = true;
                        continue;
                    }
                    b'#' => {
                        self.comment_start = pos;
                        return self.other(openmetrics_comment(body, pos));
                    }
                    b'{' => return self.fail(self.line, ParseErrorKind::QuotedName.into()),
                    b'\n' => return self.fail(self.line, ParseErrorKind::BlankLine.into()),
                    _ => openmetrics_sample(body, pos),
                },
            };
            return match parsed {
                Ok((series, value, timestamp_ms, line_end)) => {
                    self.pos = line_end + 1;
                    Some(Ok(Entry::Sample {
                        series,
                        value,
                        timestamp_ms,
                    }))
                }
                Err(kind) => self.fail(self.line, kind),
            };
        }
    }
}

/// Whether `line[i]` ends the line: a newline, or the end of the body.
#[inline(always)]
fn at_line_end(line: &[u8], i: usize) -> bool {
    line.get(i).is_none_or(|&c| c == b'\n')
}

/// Where the token starting at `from` ends: the next blank (both formats' value and
/// timestamp tokens stop there) or the end of the line.
#[inline]
fn token_end(line: &[u8], from: usize, text: bool) -> usize {
    let rest = &line[from..];
    from + rest
        .iter()
        .position(|&c| c == b' ' || c == b'\n' || (text && c == b'\t'))
        .unwrap_or(rest.len())
}

/// Whether a number read up to `line[end]` is the whole token.
#[inline(always)]
fn ends_token(line: &[u8], end: usize, text: bool) -> bool {
    match line.get(end) {
        None | Some(b' ' | b'\n') => true,
        Some(b'\t') => text,
        Some(_) => false,
    }
}

/// The number token at `line[start..]` and where it ends: plain decimals converted in
/// place, anything else (and errors) by the general parser. Inlined with `decimal_prefix`:
/// a call here cost a tenth of the cached sample path in register saves and result moves.
#[inline(always)]
fn value_at(
    line: &[u8],
    start: usize,
    text: bool,
    what: &'static str,
) -> Result<(f64, usize), Fail> {
    if let Some((value, end)) = decimal_prefix(line, start) {
        if ends_token(line, end, text) {
            return Ok((value, end));
        }
    }
    value_token(line, start, text, what)
}

#[inline(never)]
fn value_token(
    line: &[u8],
    start: usize,
    text: bool,
    what: &'static str,
) -> Result<(f64, usize), Fail> {
    let end = token_end(line, start, text);
    let token = &line[start..end];
    // `decimal_prefix` read this token already: it is not a plain decimal it converts.
    let value = parse_value_slow(token).map_err(|e| ParseErrorKind::number(what, token, e))?;
    Ok((value, end))
}

/// A text sample at `body[start..]` (its first non-blank byte); returns, with its fields,
/// the index of the newline (or end of body) ending its line.
#[inline]
fn text_sample(body: &[u8], start: usize) -> SampleResult<'_> {
    let name_len = metric_name_len(&body[start..]);
    if name_len == 0 {
        return Err(ParseErrorKind::syntax("metric name", body, start));
    }
    let mut end = start + name_len;
    // Blanks are allowed between the tokens, but exporters write `name{...} value` with
    // single spaces: that form is tested for before any loop over blanks.
    let open = match body.get(end) {
        Some(b'{') => end,
        _ => skip_blanks(body, end),
    };
    if body.get(open) == Some(&b'{') {
        end = label_set_end(body, open, Format::PrometheusText)?;
    }
    text_sample_after_series(body, start, end)
}

/// Where the text sample at `body[start..]` would end its series if that series is
/// `expected`: bytes of its length and hash, then one space and a byte that starts no label
/// set nor blank (`name {l="v"} 1` is the series `name {l="v"}`, not `name`).
#[inline(always)]
fn known_series_end(body: &[u8], start: usize, expected: KnownSeries) -> Option<usize> {
    if expected.len == 0 {
        return None;
    }
    let (series, after) = body.get(start..)?.split_at_checked(expected.len)?;
    match after {
        [b' ', c, ..] if !matches!(c, b' ' | b'\t' | b'{') && expected.is(series) => {
            Some(start + expected.len)
        }
        _ => None,
    }
}

/// Where the line starting at `body[pos]` ends if it is `expected` (a whole line, without
/// its newline), or `None`; an empty `expected` is no line.
#[inline]
fn known_line_end(body: &[u8], pos: usize, expected: &[u8]) -> Option<usize> {
    if expected.is_empty() {
        return None;
    }
    let end = pos + expected.len();
    (body.get(pos..end)? == expected && at_line_end(body, end)).then_some(end)
}

/// The rest of a text sample whose series is `body[start..end]`.
#[inline(always)]
fn text_sample_after_series(body: &[u8], start: usize, end: usize) -> SampleResult<'_> {
    let value_start = match body.get(end..end + 2) {
        Some(&[b' ', c]) if !matches!(c, b' ' | b'\t') => end + 1,
        _ => skip_blanks(body, end),
    };
    text_sample_value(body, start, end, value_start)
}

/// The rest of a text sample whose series is `body[start..end]` and whose value would start
/// at `value_start`, after the blanks.
#[inline(always)]
fn text_sample_value(
    body: &[u8],
    start: usize,
    end: usize,
    value_start: usize,
) -> SampleResult<'_> {
    let series = &body[start..end];
    if value_start == end || at_line_end(body, value_start) {
        return Err(ParseErrorKind::syntax(
            "blank then value after metric",
            body,
            value_start,
        ));
    }
    let (value, value_end) = value_at(body, value_start, true, "sample value")?;
    if body.get(value_end) == Some(&b'\n') {
        return Ok((series, value, None, value_end));
    }
    let ts_start = skip_blanks(body, value_end);
    if at_line_end(body, ts_start) {
        return Ok((series, value, None, ts_start));
    }
    let (ts, ts_end) = timestamp_ms_at(body, ts_start)?;
    let tail = skip_blanks(body, ts_end);
    if !at_line_end(body, tail) {
        return Err(ParseErrorKind::syntax(
            "end of line after timestamp",
            body,
            tail,
        ));
    }
    Ok((series, value, Some(ts), tail))
}

/// A text timestamp token at `line[start..]` and where it ends.
#[inline]
fn timestamp_ms_at(line: &[u8], start: usize) -> Result<(i64, usize), Fail> {
    let (ms, end) = digits_prefix(line, start, 0);
    // 18 digits cannot overflow an i64; longer ones are checked below.
    if (1..=18).contains(&(end - start)) && ends_token(line, end, true) {
        return Ok((ms as i64, end));
    }
    let end = token_end(line, start, true);
    let token = &line[start..end];
    let ms =
        parse_timestamp_ms(token).map_err(|e| ParseErrorKind::number("timestamp", token, e))?;
    Ok((ms, end))
}

/// A `#` line of the text format at `body[hash]`: HELP and TYPE need `#`, blanks, the
/// keyword and blanks; anything else (`#HELP`, `# HELPx`, `# EOF`, a lone `# HELP`) is a
/// comment. Out of line: metadata is rarer than samples, and inlined it slows the sample
/// path.
#[inline(never)]
fn text_comment(body: &[u8], hash: usize) -> LineResult<'_> {
    let keyword = skip_blanks(body, hash + 1);
    if keyword == hash + 1 {
        return comment(body, keyword);
    }
    let is_help = match body.get(keyword..keyword + 4) {
        Some(b"HELP") => true,
        Some(b"TYPE") => false,
        _ => return comment(body, keyword),
    };
    let name_start = skip_blanks(body, keyword + 4);
    if name_start == keyword + 4 {
        return comment(body, name_start);
    }
    let what = if is_help {
        "metric name after HELP"
    } else {
        "metric name after TYPE"
    };
    let metric = metadata_name(body, name_start, what)?;
    // Like Prometheus, the text is the rest of the line less the one byte separating it
    // from the name.
    let name_end = name_start + metric.len();
    let text_start = if at_line_end(body, name_end) {
        name_end
    } else {
        name_end + 1
    };
    if is_help {
        return help(body, metric, text_start, Escapes::TextHelp);
    }
    let end = line_end(body, text_start);
    let text = &body[text_start..end];
    match MetricType::from_text(text) {
        Some(kind) => Ok((Entry::Type { metric, kind }, end)),
        None => Err(ParseErrorKind::InvalidMetricType(super::error::snippet(text)).into()),
    }
}

fn comment(body: &[u8], from: usize) -> LineResult<'_> {
    Ok((Entry::Comment, line_end(body, from)))
}

/// The metric name of a metadata line, at `body[name_start..]`.
#[inline]
fn metadata_name<'a>(
    body: &'a [u8],
    name_start: usize,
    what: &'static str,
) -> Result<&'a str, Fail> {
    if body.get(name_start) == Some(&b'"') {
        return Err(ParseErrorKind::QuotedName.into());
    }
    let name_len = metric_name_len(&body[name_start..]);
    if name_len == 0 {
        return Err(ParseErrorKind::syntax(what, body, name_start));
    }
    Ok(ascii_str(&body[name_start..name_start + name_len]))
}

/// HELP text from `body[start..]` to the end of its line. Text that is ASCII without a
/// backslash (nearly all of it) is found in one pass and borrowed.
#[inline]
fn help<'a>(body: &'a [u8], metric: &'a str, start: usize, escapes: Escapes) -> LineResult<'a> {
    let plain_end = plain_text_end(body, start);
    if at_line_end(body, plain_end) {
        let text = Cow::Borrowed(ascii_str(&body[start..plain_end]));
        return Ok((Entry::Help { metric, text }, plain_end));
    }
    let end = line_end(body, plain_end);
    let text =
        unescape(&body[start..end], escapes).ok_or(ParseErrorKind::InvalidUtf8("help text"))?;
    Ok((Entry::Help { metric, text }, end))
}

/// Where the run of ASCII bytes other than a newline or a backslash starting at `from`
/// ends, eight bytes at a time.
#[inline]
fn plain_text_end(body: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(word) = swar::word(body, i) {
        let stop = swar::equal(word, b'\n') | swar::equal(word, b'\\') | (word & swar::HIGHS);
        if stop != 0 {
            return i + swar::first(stop);
        }
        i += 8;
    }
    i + body[i..]
        .iter()
        .take_while(|&&c| c.is_ascii() && c != b'\n' && c != b'\\')
        .count()
}

/// The index of the newline ending the line that `from` is in, or the end of the body.
/// Metadata lines end a few bytes after their name: one word is checked before the
/// general search.
#[inline]
fn line_end(body: &[u8], from: usize) -> usize {
    if let Some(word) = swar::word(body, from) {
        let newline = swar::equal(word, b'\n');
        if newline != 0 {
            return from + swar::first(newline);
        }
    }
    let rest = body.get(from..).unwrap_or_default();
    from + memchr::memchr(b'\n', rest).unwrap_or(rest.len())
}

// ---- OpenMetrics 1.0 ----

/// An OpenMetrics sample at `body[start..]`; returns, with its fields, the index of the
/// newline (or end of body) ending its line.
#[inline]
fn openmetrics_sample(body: &[u8], start: usize) -> SampleResult<'_> {
    let name_len = metric_name_len(&body[start..]);
    if name_len == 0 {
        return Err(ParseErrorKind::syntax("metric name", body, start));
    }
    let mut end = start + name_len;
    if body.get(end) == Some(&b'{') {
        end = label_set_end(body, end, Format::OpenMetrics)?;
    }
    let series = &body[start..end];
    let (value, value_end) = openmetrics_value(body, end, "sample value")?;
    if at_line_end(body, value_end) {
        return Ok((series, value, None, value_end));
    }
    let next = value_end + 1;
    if is_exemplar(body, next) {
        let line_end = exemplar(body, next + 2)?;
        return Ok((series, value, None, line_end));
    }
    let ts_end = token_end(body, next, false);
    let ts_text = &body[next..ts_end];
    if ts_text.is_empty() {
        return Err(ParseErrorKind::syntax("timestamp or exemplar", body, next));
    }
    let ts = parse_seconds_as_ms(ts_text)
        .map_err(|e| ParseErrorKind::number("timestamp", ts_text, e))?;
    if at_line_end(body, ts_end) {
        return Ok((series, value, Some(ts), ts_end));
    }
    if !is_exemplar(body, ts_end + 1) {
        return Err(ParseErrorKind::syntax(
            "end of line or exemplar after timestamp",
            body,
            ts_end + 1,
        ));
    }
    let line_end = exemplar(body, ts_end + 3)?;
    Ok((series, value, Some(ts), line_end))
}

/// Exactly one space then a number at `line[at..]`. Returns the value and where its token
/// ends: the end of the line or the space before the next token.
#[inline]
fn openmetrics_value(line: &[u8], at: usize, what: &'static str) -> Result<(f64, usize), Fail> {
    if line.get(at) != Some(&b' ') {
        return Err(ParseErrorKind::syntax("a space then a value", line, at));
    }
    let start = at + 1;
    if at_line_end(line, start) || line[start] == b' ' {
        return Err(ParseErrorKind::syntax(
            "a value after a single space",
            line,
            start,
        ));
    }
    value_at(line, start, false, what)
}

#[inline]
fn is_exemplar(line: &[u8], at: usize) -> bool {
    line.get(at..at + 3) == Some(b"# {")
}

/// ` # {labels} value [timestamp]` after a sample, with `line[open]` its `{`: checked as
/// Prometheus checks it, then dropped (exemplars are not stored). Returns where the line
/// ends.
#[inline(never)]
fn exemplar(line: &[u8], open: usize) -> Result<usize, Fail> {
    let end = scan_labels(line, open, Format::OpenMetrics, check_exemplar_label)?;
    let (_, value_end) = openmetrics_value(line, end, "exemplar value")?;
    if at_line_end(line, value_end) {
        return Ok(value_end);
    }
    let ts_start = value_end + 1;
    let ts_end = token_end(line, ts_start, false);
    if !at_line_end(line, ts_end) {
        return Err(ParseErrorKind::syntax(
            "end of line after exemplar timestamp",
            line,
            ts_end,
        ));
    }
    let ts_text = &line[ts_start..ts_end];
    parse_seconds_as_ms(ts_text)
        .map_err(|e| ParseErrorKind::number("exemplar timestamp", ts_text, e))?;
    Ok(ts_end)
}

/// Only `# HELP`, `# TYPE`, `# UNIT` (each with exactly one space around the keyword and
/// after the name) and `# EOF` (seen by the caller) may start with `#`; `body[start]` is
/// that `#`.
#[inline(never)]
fn openmetrics_comment(body: &[u8], start: usize) -> LineResult<'_> {
    // No keyword holds a newline: a match lies within the line.
    let (keyword, what) = match body.get(start..start + 7) {
        Some(b"# HELP ") => (b'H', "metric name after HELP"),
        Some(b"# TYPE ") => (b'T', "metric name after TYPE"),
        Some(b"# UNIT ") => (b'U', "metric name after UNIT"),
        _ => return Err(ParseErrorKind::InvalidComment.into()),
    };
    let metric = metadata_name(body, start + 7, what)?;
    let separator = start + 7 + metric.len();
    if body.get(separator) != Some(&b' ') {
        return Err(ParseErrorKind::syntax(
            "a space then text after metric name",
            body,
            separator,
        ));
    }
    let text_start = separator + 1;
    if keyword == b'H' {
        return help(body, metric, text_start, Escapes::Quoted);
    }
    let end = line_end(body, text_start);
    let text = &body[text_start..end];
    if keyword == b'T' {
        return match MetricType::from_openmetrics(text) {
            Some(kind) => Ok((Entry::Type { metric, kind }, end)),
            None => Err(ParseErrorKind::InvalidMetricType(super::error::snippet(text)).into()),
        };
    }
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
    let unit = ascii_str(text);
    Ok((Entry::Unit { metric, unit }, end))
}
