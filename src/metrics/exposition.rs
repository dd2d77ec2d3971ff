//! The Prometheus text exposition format 0.0.4, written: `# HELP` and `# TYPE` lines, samples
//! with escaped label values, and sample values formatted exactly as Go's client_golang does
//! (so `/metrics` reads byte-for-byte like a Prometheus server's). Pure formatting into a
//! `String`; it never reads a metric, never sorts and never does I/O.

use std::fmt::{self, Write as _};

/// The `Content-Type` of a body written by [`MetricsWriter`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type, as spelled on its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Summary,
    Histogram,
    Untyped,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
            Kind::Histogram => "histogram",
            Kind::Untyped => "untyped",
        }
    }
}

/// Builds one exposition body. Families are written in call order: a family line first, then
/// its samples. Names come from our own code, never from outside, so they are checked in debug
/// builds only; label values and help texts are escaped always.
#[derive(Debug, Default)]
pub struct MetricsWriter {
    out: String,
    /// The last family declared, so debug builds catch a sample written under the wrong one.
    family: String,
    kind: Option<Kind>,
}

impl MetricsWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer whose buffer starts with `capacity` bytes: the handler passes the previous
    /// body's length so a scrape of `/metrics` grows the buffer once at most.
    pub fn with_capacity(capacity: usize) -> Self {
        MetricsWriter {
            out: String::with_capacity(capacity),
            ..Self::default()
        }
    }

    /// Starts a family: its `# HELP` (when `help` is not empty) and `# TYPE` lines.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        debug_assert!(is_metric_name(name), "invalid metric name {name:?}");
        if !help.is_empty() {
            self.out.push_str("# HELP ");
            self.out.push_str(name);
            self.out.push(' ');
            push_escaped(&mut self.out, help, false);
            self.out.push('\n');
        }
        self.out.push_str("# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.as_str());
        self.out.push('\n');
        self.family.clear();
        self.family.push_str(name);
        self.kind = Some(kind);
    }

    /// One sample line of the current family. `name` is the family's name, or for summaries
    /// and histograms the family's name with `_sum`, `_count` or `_bucket` appended.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        debug_assert!(
            self.belongs_to_family(name),
            "sample {name:?} outside family {:?}",
            self.family
        );
        self.out.push_str(name);
        if !labels.is_empty() {
            let mut separator = '{';
            for (label, value) in labels {
                debug_assert!(is_label_name(label), "invalid label name {label:?}");
                self.out.push(separator);
                self.out.push_str(label);
                self.out.push_str("=\"");
                push_escaped(&mut self.out, value, true);
                self.out.push('"');
                separator = ',';
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_float(&mut self.out, value);
        self.out.push('\n');
    }

    /// The body written so far.
    pub fn as_str(&self) -> &str {
        &self.out
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn belongs_to_family(&self, name: &str) -> bool {
        let Some(suffix) = name.strip_prefix(self.family.as_str()) else {
            return false;
        };
        match self.kind {
            None => false,
            Some(Kind::Summary) => matches!(suffix, "" | "_sum" | "_count"),
            Some(Kind::Histogram) => matches!(suffix, "_bucket" | "_sum" | "_count"),
            Some(_) => suffix.is_empty(),
        }
    }
}

/// Appends `s` with `\` and newline escaped, and `"` too inside a label value: the escaping of
/// client_golang (`# HELP` text leaves `"` alone).
fn push_escaped(out: &mut String, s: &str, quote: bool) {
    let mut rest = s;
    while let Some(at) = rest.find(|c| c == '\\' || c == '\n' || (quote && c == '"')) {
        out.push_str(&rest[..at]);
        out.push_str(match rest.as_bytes()[at] {
            b'\\' => "\\\\",
            b'\n' => "\\n",
            _ => "\\\"",
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` decides between plain and exponent notation by
/// this precision when it prints the shortest digits: exponent when the decimal exponent is
/// `< -4` or `>= 6` (`1e+06`, `123456`, `1.5e-07`, `0.0001`).
const GO_SHORTEST_PRECISION: i32 = 6;

/// Appends `v` exactly as client_golang's text encoder does: `0` for both zeros, `NaN`,
/// `+Inf`, `-Inf`, otherwise the shortest digits that read back as `v`, laid out by Go's `%g`
/// rules with a signed, at least two-digit exponent.
pub fn push_float(out: &mut String, v: f64) {
    if v == 0.0 {
        // client_golang special-cases `f == 0`, which holds for -0 as well.
        out.push('0');
        return;
    }
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    let scientific = shortest_scientific(v.abs());
    let text = scientific.as_str();
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let mut digits = [0u8; STACK_TEXT];
    let mut nd = 0;
    for &b in mantissa.as_bytes().iter().filter(|b| b.is_ascii_digit()) {
        digits[nd] = b;
        nd += 1;
    }
    let digits = &digits[..nd];
    if v < 0.0 {
        out.push('-');
    }
    if !(-4..GO_SHORTEST_PRECISION).contains(&exponent) {
        push_exponent_form(out, digits, exponent);
    } else {
        push_plain_form(out, digits, exponent);
    }
}

/// The shortest digits that read back as `v` (finite, positive), in Rust's `{:e}` layout
/// (`1.5e-7`), chosen as Go chooses them: of the shortest candidates, the one nearest `v`,
/// and on an exact tie the even one. Rust's shortest mode picks the same nearest candidate
/// but breaks ties upwards (1059438285926254.25 gives `...543`, Go `...542`), so the digits
/// are redone in Rust's exact mode, which rounds ties to even, at the same length; its result
/// is taken when it reads back as `v` (near a power of two the nearest decimal can fall
/// outside the narrower lower half of the rounding interval, and Go keeps the shortest one).
fn shortest_scientific(v: f64) -> StackText {
    let mut shortest = StackText::new();
    let written = write!(shortest, "{v:e}");
    debug_assert!(
        written.is_ok(),
        "an f64 in {{:e}} fits in {STACK_TEXT} bytes"
    );
    let text = shortest.as_str();
    let mantissa = text.split_once('e').map_or(text, |(m, _)| m);
    let fraction_digits = mantissa.len().saturating_sub(2);
    let mut even = StackText::new();
    if write!(even, "{v:.fraction_digits$e}").is_ok()
        && even.as_str() != text
        && even.as_str().parse::<f64>().ok() == Some(v)
    {
        return even;
    }
    shortest
}

/// `d.ddde±XX`: Go's `%e` with as many fraction digits as there are digits after the first.
fn push_exponent_form(out: &mut String, digits: &[u8], exponent: i32) {
    out.push(char::from(digits[0]));
    if digits.len() > 1 {
        out.push('.');
        for &d in &digits[1..] {
            out.push(char::from(d));
        }
    }
    out.push('e');
    out.push(if exponent < 0 { '-' } else { '+' });
    let magnitude = exponent.unsigned_abs();
    if magnitude < 10 {
        out.push('0');
    }
    let _ = write!(out, "{magnitude}");
}

/// `ddd.ddd`: Go's `%f` with exactly the fraction digits the shortest representation needs.
fn push_plain_form(out: &mut String, digits: &[u8], exponent: i32) {
    // The decimal point sits `point` digits after the start of `digits` (negative: before).
    let point = exponent + 1;
    if point > 0 {
        for i in 0..point as usize {
            out.push(char::from(*digits.get(i).unwrap_or(&b'0')));
        }
    } else {
        out.push('0');
    }
    let fraction = digits.len() as i32 - point;
    if fraction > 0 {
        out.push('.');
        for i in point..point + fraction {
            let d = usize::try_from(i).ok().and_then(|i| digits.get(i));
            out.push(char::from(*d.unwrap_or(&b'0')));
        }
    }
}

/// The longest `{:e}` of an f64 is 23 bytes (`2.2250738585072014e-308`).
const STACK_TEXT: usize = 32;

/// A fixed buffer `write!` can target, so formatting a sample never allocates.
struct StackText {
    buf: [u8; STACK_TEXT],
    len: usize,
}

impl StackText {
    fn new() -> Self {
        StackText {
            buf: [0; STACK_TEXT],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only `write_str` fills the buffer, with whole `&str`s.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > STACK_TEXT {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, the names the text format writes without quoting.
fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(v: f64) -> String {
        let mut s = String::new();
        push_float(&mut s, v);
        s
    }

    /// Outputs of Go's `strconv.FormatFloat(v, 'g', -1, 64)` (and client_golang's special
    /// cases for zero and the non-finite values).
    #[test]
    fn floats_match_go() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (-1.0, "-1"),
            (0.0, "0"),
            (-0.0, "0"),
            (0.5, "0.5"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (2.0, "2"),
            (10.0, "10"),
            (123456.0, "123456"),
            (999999.0, "999999"),
            (123456.5, "123456.5"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (1234567.5, "1.2345675e+06"),
            (123456789.0, "1.23456789e+08"),
            (1e9, "1e+09"),
            (1.6e9, "1.6e+09"),
            (1e21, "1e+21"),
            (2.5e21, "2.5e+21"),
            (1e100, "1e+100"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-1.5e-7, "-1.5e-07"),
            (1e-10, "1e-10"),
            (0.001, "0.001"),
            (0.01, "0.01"),
            (0.05, "0.05"),
            (0.99, "0.99"),
            (-42.25, "-42.25"),
            (18446744073709551615.0, "1.8446744073709552e+19"),
            (9007199254740993.0, "9.007199254740992e+15"),
            // Exact ties between two shortest candidates (the values are exact quotients, as
            // literals they would be too long): Go rounds to even.
            (4237753143705017.0 / 4.0, "1.0594382859262542e+15"),
            (421823707942549.0 / 16.0, "2.6363981746409312e+13"),
            (4237753143705019.0 / 4.0, "1.0594382859262548e+15"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (-f64::MAX, "-1.7976931348623157e+308"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for &(v, want) in cases {
            assert_eq!(go(v), want, "formatting {v:e}");
        }
    }

    #[test]
    fn floats_read_back() {
        // Every finite value formatted reads back bit for bit: the digits are never cut.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if !v.is_finite() || v == 0.0 {
                continue;
            }
            let text = go(v);
            let back: f64 = text.parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{text}");
        }
    }

    #[test]
    fn families_and_samples() {
        let mut w = MetricsWriter::new();
        w.family(
            "prometheus_tsdb_head_series",
            "Total number of series in the head block.",
            Kind::Gauge,
        );
        w.sample("prometheus_tsdb_head_series", &[], 1234.0);
        w.family("promcore_shard_series", "Series per shard.", Kind::Gauge);
        w.sample("promcore_shard_series", &[("shard", "0")], 600.0);
        w.sample(
            "promcore_shard_series",
            &[("shard", "1"), ("x", "y")],
            634.0,
        );
        assert_eq!(
            w.finish(),
            "# HELP prometheus_tsdb_head_series Total number of series in the head block.\n\
             # TYPE prometheus_tsdb_head_series gauge\n\
             prometheus_tsdb_head_series 1234\n\
             # HELP promcore_shard_series Series per shard.\n\
             # TYPE promcore_shard_series gauge\n\
             promcore_shard_series{shard=\"0\"} 600\n\
             promcore_shard_series{shard=\"1\",x=\"y\"} 634\n"
        );
    }

    #[test]
    fn empty_help_writes_type_only() {
        let mut w = MetricsWriter::new();
        w.family("up", "", Kind::Untyped);
        w.sample("up", &[], 1.0);
        assert_eq!(w.finish(), "# TYPE up untyped\nup 1\n");
    }

    #[test]
    fn help_and_label_values_escaped() {
        let mut w = MetricsWriter::new();
        w.family("a_total", "back\\slash \"quoted\"\nnext", Kind::Counter);
        w.sample("a_total", &[("path", "C:\\dir \"x\"\ny")], 3.0);
        assert_eq!(
            w.finish(),
            "# HELP a_total back\\\\slash \"quoted\"\\nnext\n\
             # TYPE a_total counter\n\
             a_total{path=\"C:\\\\dir \\\"x\\\"\\ny\"} 3\n"
        );
    }

    #[test]
    fn multibyte_text_passes_through() {
        let mut w = MetricsWriter::new();
        w.family("a", "grüße \\ 日本", Kind::Gauge);
        w.sample("a", &[("l", "ü\"日")], 1.0);
        assert_eq!(
            w.finish(),
            "# HELP a grüße \\\\ 日本\n# TYPE a gauge\na{l=\"ü\\\"日\"} 1\n"
        );
    }

    #[test]
    fn summary_and_histogram_suffixes() {
        let mut w = MetricsWriter::new();
        w.family("s", "", Kind::Summary);
        w.sample("s", &[("quantile", "0.5")], 1.0);
        w.sample("s_sum", &[], 2.0);
        w.sample("s_count", &[], 3.0);
        w.family("h", "", Kind::Histogram);
        w.sample("h_bucket", &[("le", "+Inf")], 3.0);
        w.sample("h_sum", &[], 2.0);
        w.sample("h_count", &[], 3.0);
        assert!(w.as_str().ends_with("h_count 3\n"));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "outside family")]
    fn sample_of_another_family_caught_in_debug() {
        let mut w = MetricsWriter::new();
        w.family("a", "", Kind::Gauge);
        w.sample("a_sum", &[], 1.0);
    }

    #[test]
    fn names() {
        assert!(is_metric_name("process_cpu_seconds_total"));
        assert!(is_metric_name(":recording:rule"));
        assert!(!is_metric_name("0abc"));
        assert!(!is_metric_name(""));
        assert!(!is_metric_name("a-b"));
        assert!(is_label_name("_x1"));
        assert!(!is_label_name("a:b"));
    }
}
