//! The `{name="value",...}` part of a sample line: one lexer for both formats (text 0.0.4
//! allows blanks between tokens and, like Prometheus, a missing comma; OpenMetrics allows
//! neither), used twice. On every line it only finds where the set ends, validating the
//! grammar; on a scrape-cache miss it also decodes the values and checks the set.
//! It never allocates unless an escape must be resolved.

use std::borrow::Cow;

use super::error::{Fail, ParseErrorKind};
use super::escape::{unescape, Escapes};
use super::format::Format;
use super::names::{label_name_len, metric_name_len};
use super::swar;
use super::utf8::{ascii_str, utf8};
use super::window::{ClassMasks, Window, Window64};

/// The label name under which a series carries its metric name.
pub const METRIC_NAME_LABEL: &str = "__name__";

/// Decoded labels of one series, in exposition order, `__name__` first.
pub type LabelPairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

#[inline]
pub(crate) fn skip_blanks(s: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t') = s.get(i) {
        i += 1;
    }
    i
}

/// Where the label set whose `{` is at `line[open]` ends (just past its `}`), for a sample
/// on the scrape-cache path, where nothing is done with the labels. A set in the form
/// exporters write, `{name="value",...}` without blanks nor backslashes within 64 bytes, is
/// checked all at once on byte masks; anything else goes through `scan_labels`, which also
/// reports the errors.
#[inline]
pub(crate) fn label_set_end(line: &[u8], open: usize, format: Format) -> Result<usize, Fail> {
    match quick_label_set(line, open) {
        Some(end) => Ok(end),
        None => scan_labels(line, open, format, |_, _| Ok(())),
    }
}

/// The grammar of a label set checked on the masks of one window at its `{`: every label
/// at once, rather than one after the other. Most sets fit 32 bytes, whose masks cost half
/// those of 64.
#[inline(always)]
fn quick_label_set(line: &[u8], open: usize) -> Option<usize> {
    let end = match Window::at(line, open).and_then(label_set_in) {
        Some(end) => end,
        None => label_set_in(Window64::at(line, open)?)?,
    };
    Some(open + end as usize + 1)
}

/// Where the label set at the start of `w` (bit `k` is byte `k`) ends, if it is well
/// formed and ends within the window.
#[inline(always)]
fn label_set_in(w: impl ClassMasks) -> Option<u32> {
    let quotes = w.eq(b'"');
    // Set from each opening quote up to its closing one (excluded): a running parity.
    let mut inside = quotes;
    for shift in [1, 2, 4, 8, 16, 32] {
        inside ^= inside << shift;
    }
    let outside = !inside & !quotes;
    // Masks past the window are clear: no '}' there.
    let end = (w.eq(b'}') & outside).trailing_zeros();
    if end == 64 {
        return None;
    }
    // Bits 0..=end, and the bytes strictly between the braces.
    let set = u64::MAX >> (63 - end);
    let between = set & !1 & !(1 << end);
    let opening = quotes & inside & set;
    let closing = quotes & !inside & set;
    let equals = w.eq(b'=') & outside & between;
    let commas = w.eq(b',') & outside & between;
    let names = w.label_name() & outside & between;
    let name_starts = ((1 | commas) << 1) & between;
    let valid =
        // Values hold no escape and stay on the line.
        w.escape_or_newline() & set == 0
        // Outside the values, only names, '=' and ','.
        && outside & between & !(names | equals | commas) == 0
        // Each name starts after '{' or ',', with a letter or '_', and ends at an '='
        // that opens a value.
        && name_starts & !(names & !w.digits()) == 0
        && (equals >> 1) & !names == 0
        && equals == opening >> 1
        // Each value is followed by ',' or the '}', and each ',' follows a value.
        && commas & !(closing << 1) == 0
        && (closing << 1) & set & !(commas | 1 << end) == 0
        // The '}' follows a value, a ',' or the '{'.
        && (closing | commas | 1) >> (end - 1) & 1 == 1;
    valid.then_some(end)
}

/// Lexes the label set whose `{` is at `line[open]` and returns the index just past its `}`.
/// `on_label` sees each label's name and raw (still escaped) value. `line` may run on past
/// the line: a newline ends it as the end of the slice would.
#[inline]
pub(crate) fn scan_labels<'a, F>(
    line: &'a [u8],
    open: usize,
    format: Format,
    mut on_label: F,
) -> Result<usize, Fail>
where
    F: FnMut(&'a [u8], &'a [u8]) -> Result<(), Fail>,
{
    let text = format == Format::PrometheusText;
    let blanks = |i| if text { skip_blanks(line, i) } else { i };
    let mut i = open + 1;
    loop {
        i = blanks(i);
        let (name_end, value_start, close) = match quick_label(line, i) {
            Some(found) => found,
            None => {
                let name_len = label_name_len(line.get(i..).unwrap_or_default());
                if name_len == 0 {
                    return match line.get(i) {
                        Some(b'}') => Ok(i + 1),
                        Some(b'"') => Err(ParseErrorKind::QuotedName.into()),
                        _ => Err(ParseErrorKind::syntax("label name or '}'", line, i)),
                    };
                }
                let name_end = i + name_len;
                let equals = blanks(name_end);
                if line.get(equals) != Some(&b'=') {
                    return Err(ParseErrorKind::syntax("'=' after label name", line, equals));
                }
                let quote = blanks(equals + 1);
                if line.get(quote) != Some(&b'"') {
                    return Err(ParseErrorKind::syntax("quoted label value", line, quote));
                }
                (name_end, quote + 1, closing_quote(line, quote + 1)?)
            }
        };
        on_label(&line[i..name_end], &line[value_start..close])?;
        i = close + 1;
        if line.get(i) == Some(&b'}') {
            return Ok(i + 1);
        }
        i = blanks(i);
        match line.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Ok(i + 1),
            // Prometheus's text parser reads a label right after a value, without a comma.
            Some(&c) if text && c != b'\n' => {}
            _ => {
                return Err(ParseErrorKind::syntax(
                    "',' or '}' after label value",
                    line,
                    i,
                ))
            }
        }
    }
}

/// The common label, `name="value"` with no backslash in the value, found within one
/// window at `line[i..]`: where the name ends, the value starts and its closing quote is.
/// `None` leaves the label, whatever it is, to the byte-wise scan.
#[inline(always)]
fn quick_label(line: &[u8], i: usize) -> Option<(usize, usize, usize)> {
    let w = Window::at(line, i)?;
    let name = u64::from(w.label_name());
    let quotes = u64::from(w.eq(b'"'));
    // At most 32: the bits past the window are clear.
    let name_len = (!name).trailing_zeros();
    let starts_name = name & !u64::from(w.digits()) & 1 == 1;
    let equals_then_quote = u64::from(w.eq(b'=')) & (quotes >> 1);
    if !starts_name || equals_then_quote >> name_len & 1 == 0 {
        return None;
    }
    let value = name_len + 2;
    let stops = (quotes | u64::from(w.eq(b'\\')) | u64::from(w.eq(b'\n'))) >> value;
    let close = value + stops.trailing_zeros();
    if stops == 0 || quotes >> close & 1 == 0 {
        return None;
    }
    Some((
        i + name_len as usize,
        i + value as usize,
        i + close as usize,
    ))
}

/// Index of the `"` closing a quoted string whose content starts at `from`. A backslash
/// escapes whatever byte follows it, except the newline ending the line: the string is
/// then unterminated. Eight bytes at a time: label values are the longest tokens after
/// names.
#[inline]
fn closing_quote(line: &[u8], from: usize) -> Result<usize, Fail> {
    let mut i = from;
    loop {
        let c = match swar::word(line, i) {
            Some(word) => {
                let stop =
                    swar::equal(word, b'"') | swar::equal(word, b'\\') | swar::equal(word, b'\n');
                if stop == 0 {
                    i += 8;
                    continue;
                }
                i += swar::first(stop);
                line[i]
            }
            None => match line.get(i) {
                Some(&c) if matches!(c, b'"' | b'\\' | b'\n') => c,
                Some(_) => {
                    i += 1;
                    continue;
                }
                None => break,
            },
        };
        match c {
            b'"' => return Ok(i),
            b'\\' if line.get(i + 1).is_some_and(|&c| c != b'\n') => i += 2,
            _ => break,
        }
    }
    Err(ParseErrorKind::UnterminatedQuote.into())
}

/// Decodes a series key (as yielded in `Entry::Sample`) into `out`: `__name__` first, then
/// the labels in exposition order, escapes resolved. Refuses invalid UTF-8 and duplicate
/// names (an explicit `__name__` label included). Empty values are kept: they mean "label
/// absent" and the label-set builder drops them.
pub(crate) fn decode_series<'a>(
    series: &'a [u8],
    format: Format,
    out: &mut LabelPairs<'a>,
) -> Result<(), Fail> {
    out.clear();
    let name_len = metric_name_len(series);
    if name_len == 0 {
        return Err(match series.first() {
            Some(b'{' | b'"') => ParseErrorKind::QuotedName.into(),
            _ => ParseErrorKind::syntax("metric name", series, 0),
        });
    }
    out.push((
        Cow::Borrowed(METRIC_NAME_LABEL),
        Cow::Borrowed(ascii_str(&series[..name_len])),
    ));
    if name_len == series.len() {
        return Ok(());
    }
    let open = match format {
        Format::PrometheusText => skip_blanks(series, name_len),
        Format::OpenMetrics => name_len,
    };
    if series.get(open) != Some(&b'{') {
        return Err(ParseErrorKind::syntax(
            "'{' after metric name",
            series,
            open,
        ));
    }
    let end = scan_labels(series, open, format, |name, raw| {
        let value =
            unescape(raw, Escapes::Quoted).ok_or(ParseErrorKind::InvalidUtf8("label value"))?;
        out.push((Cow::Borrowed(ascii_str(name)), value));
        Ok(())
    })?;
    if end != series.len() {
        return Err(ParseErrorKind::syntax(
            "end of series after '}'",
            series,
            end,
        ));
    }
    match first_duplicate(out) {
        Some(name) => Err(ParseErrorKind::DuplicateLabelName(name.to_owned()).into()),
        None => Ok(()),
    }
}

/// Validates the exemplar label values Prometheus checks, then forgets them.
pub(crate) fn check_exemplar_label(_name: &[u8], raw: &[u8]) -> Result<(), Fail> {
    utf8(raw)
        .map(|_| ())
        .ok_or_else(|| ParseErrorKind::InvalidUtf8("exemplar label value").into())
}

fn first_duplicate<'l>(labels: &'l [(Cow<'_, str>, Cow<'_, str>)]) -> Option<&'l str> {
    // Real series have a handful of labels: pairwise comparison beats sorting. A hostile
    // target with thousands of labels gets the sort, not a quadratic scan.
    if labels.len() <= 16 {
        for (i, (a, _)) in labels.iter().enumerate() {
            if labels[i + 1..].iter().any(|(b, _)| a == b) {
                return Some(a);
            }
        }
        return None;
    }
    let mut names: Vec<&str> = labels.iter().map(|(n, _)| n.as_ref()).collect();
    names.sort_unstable();
    names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

/// Reuses a label buffer across bodies: the pairs borrow the previous body, so the vector
/// cannot outlive it as it is, but its allocation can.
pub fn recycle_label_buffer<'b>(mut buffer: LabelPairs<'_>) -> LabelPairs<'b> {
    buffer.clear();
    // An in-place collect of a same-layout element type keeps the allocation.
    buffer
        .into_iter()
        .map(|_| (Cow::Borrowed(""), Cow::Borrowed("")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(series: &str, format: Format) -> Result<Vec<(String, String)>, ParseErrorKind> {
        let mut out = Vec::new();
        decode_series(series.as_bytes(), format, &mut out).map_err(|e| *e)?;
        Ok(out
            .into_iter()
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|&(n, v)| (n.into(), v.into())).collect()
    }

    #[test]
    fn decodes_in_exposition_order() {
        for format in [Format::PrometheusText, Format::OpenMetrics] {
            assert_eq!(
                decode(r#"up{job="a",instance="b\"c"}"#, format),
                Ok(pairs(&[
                    ("__name__", "up"),
                    ("job", "a"),
                    ("instance", "b\"c")
                ]))
            );
            assert_eq!(decode("up", format), Ok(pairs(&[("__name__", "up")])));
            assert_eq!(decode("up{}", format), Ok(pairs(&[("__name__", "up")])));
            assert_eq!(
                decode(r#"up{a="",}"#, format),
                Ok(pairs(&[("__name__", "up"), ("a", "")]))
            );
        }
        assert_eq!(
            decode(r#"up { a = "1" , b="2" c="3" }"#, Format::PrometheusText),
            Ok(pairs(&[
                ("__name__", "up"),
                ("a", "1"),
                ("b", "2"),
                ("c", "3")
            ]))
        );
    }

    #[test]
    fn refuses_duplicates_and_bad_utf8() {
        for format in [Format::PrometheusText, Format::OpenMetrics] {
            assert_eq!(
                decode(r#"up{a="1",a="2"}"#, format),
                Err(ParseErrorKind::DuplicateLabelName("a".into()))
            );
            assert_eq!(
                decode(r#"up{__name__="x"}"#, format),
                Err(ParseErrorKind::DuplicateLabelName("__name__".into()))
            );
            let mut out = Vec::new();
            assert_eq!(
                decode_series(b"up{a=\"\xff\"}", format, &mut out).map_err(|e| *e),
                Err(ParseErrorKind::InvalidUtf8("label value"))
            );
        }
        let many: String = (0..40).map(|i| format!("l{i}=\"v\",")).collect();
        assert!(decode(&format!("up{{{many}}}"), Format::OpenMetrics).is_ok());
        assert_eq!(
            decode(&format!("up{{{many}l7=\"x\"}}"), Format::OpenMetrics),
            Err(ParseErrorKind::DuplicateLabelName("l7".into()))
        );
    }

    #[test]
    fn refuses_what_the_scanner_would() {
        for bad in [
            "",
            "9up",
            "up ",
            "up{",
            "up{a}",
            "up{a=}",
            "up{a=\"1\"",
            "up{a=\"1\"}x",
            "up{,}",
            "up{a=\"1\",,}",
            "up{a=\"\\\"}",
        ] {
            assert!(decode(bad, Format::PrometheusText).is_err(), "{bad:?}");
        }
        for bad in [
            "up {}",
            "up{ a=\"1\"}",
            "up{a=\"1\" }",
            "up{a=\"1\" b=\"2\"}",
        ] {
            assert!(decode(bad, Format::OpenMetrics).is_err(), "{bad:?}");
            assert!(decode(bad, Format::PrometheusText).is_ok(), "{bad:?}");
        }
        assert_eq!(
            decode(r#"{"my.metric"}"#, Format::PrometheusText),
            Err(ParseErrorKind::QuotedName)
        );
    }

    /// Whatever the mask check accepts, the byte-wise lexer accepts in both formats and
    /// ends at the same place; and it does accept the common form.
    fn check_quick_set(set: &[u8]) -> Option<usize> {
        let mut line = set.to_vec();
        line.extend_from_slice(b" 1\n");
        line.resize(line.len() + 64, b'x');
        let quick = quick_label_set(&line, 0);
        if let Some(end) = quick {
            for format in [Format::PrometheusText, Format::OpenMetrics] {
                let scanned = scan_labels(&line, 0, format, |_, _| Ok(())).map_err(|e| *e);
                assert_eq!(
                    scanned,
                    Ok(end),
                    "{format:?} {:?}",
                    String::from_utf8_lossy(set)
                );
            }
        }
        quick
    }

    #[test]
    fn quick_set_takes_the_common_form() {
        for set in [
            &br#"{}"#[..],
            br#"{a="b"}"#,
            br#"{cpu="0",mode="idle"}"#,
            br#"{a="",}"#,
            br#"{le="+Inf",x_1="} {=,"}"#,
            br#"{device="/dev/nvme0n1p0",fstype="ext4",mountpoint="/srv/data0"}"#,
            "{a=\"é\"}".as_bytes(),
        ] {
            assert_eq!(
                check_quick_set(set),
                Some(set.len()),
                "{:?}",
                String::from_utf8_lossy(set)
            );
        }
        // Left to the byte-wise lexer: blanks, escapes, errors, sets past the window.
        for set in [
            &br#"{ a="b"}"#[..],
            br#"{a ="b"}"#,
            br#"{a="b" }"#,
            br#"{a="b",b="c" }"#,
            br#"{a="b" c="d"}"#,
            br#"{a="\"b"}"#,
            br#"{a="b\\"}"#,
            br#"{a="b",,}"#,
            br#"{,}"#,
            br#"{a}"#,
            br#"{a=}"#,
            br#"{a="b"c}"#,
            br#"{9a="b"}"#,
            br#"{"a"="b"}"#,
            br#"{a:b="c"}"#,
            br#"{a=="b"}"#,
            br#"{a="b"="c"}"#,
            br#"{a="b}"#,
            br#"{a="b"x}"#,
            b"{a=\"b\nc\"}",
            br#"{a="0123456789012345678901234567890123456789012345678901234567890"}"#,
        ] {
            assert_eq!(
                check_quick_set(set),
                None,
                "{:?}",
                String::from_utf8_lossy(set)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn quick_set_agrees_with_the_lexer(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                &b"a"[..], b"le", b"_x9", b"9", b":", b"=", b"\"", b"=\"", b"\",", b"\",b=\"",
                b",", b"}", b"{", b" ", b"\t", b"\\", b"\n", b"\xc3\xa9", b"v/-. ",
            ]),
            0..16,
        )) {
            let mut set = b"{".to_vec();
            set.extend(parts.concat());
            check_quick_set(&set);
        }
    }

    #[test]
    fn recycling_keeps_the_allocation() {
        let body = String::from(r#"a{b="c"}"#);
        let mut out = Vec::with_capacity(32);
        decode_series(body.as_bytes(), Format::OpenMetrics, &mut out).unwrap();
        let capacity = out.capacity();
        let out: LabelPairs<'static> = recycle_label_buffer(out);
        drop(body);
        assert!(out.is_empty());
        assert_eq!(out.capacity(), capacity);
    }
}
