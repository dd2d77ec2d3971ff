//! Numbers of the exposition formats: sample values in Go `strconv.ParseFloat` syntax minus
//! `_` separators and hex floats (what Prometheus accepts), the canonical NaN, and timestamps
//! (integer milliseconds in text 0.0.4, float seconds in OpenMetrics). Pure functions over
//! byte slices; they never allocate.

use thiserror::Error;

use super::swar;
use super::utf8::utf8;

/// The bit pattern every parsed NaN is replaced by (Prometheus's `value.NormalNaN`), so that
/// a scraped NaN can never be mistaken for a staleness marker (`0x7ff0000000000002`).
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// Why a number was refused; the wording is Go's, as Prometheus users see it in `up` errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum NumberError {
    #[error("invalid syntax")]
    Syntax,
    #[error("value out of range")]
    Range,
}

/// Powers of ten that are exact in an f64: multiplying or dividing an exact mantissa by one
/// of them rounds once, hence correctly (Clinger's fast path).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Powers of ten by which a mantissa makes room for the next 0 to 8 digits.
const POW10_U64: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// A sample value: every NaN comes back as the canonical one. (The parser reads values with
/// `decimal_prefix` and `parse_value_slow`; this whole-token form is what they are tested
/// against.)
#[cfg(test)]
pub fn parse_value(s: &[u8]) -> Result<f64, NumberError> {
    parse_float(s).map(canonical_nan)
}

/// `parse_value` for a token that `decimal_prefix` already failed to read whole: straight
/// to the general parser.
#[cold]
pub(crate) fn parse_value_slow(s: &[u8]) -> Result<f64, NumberError> {
    parse_float_slow(s).map(canonical_nan)
}

#[inline]
fn canonical_nan(v: f64) -> f64 {
    if v.is_nan() {
        f64::from_bits(NORMAL_NAN_BITS)
    } else {
        v
    }
}

/// Go's `ParseFloat(s, 64)` without `_` and hex, NaN left as parsed.
#[inline]
pub fn parse_float(s: &[u8]) -> Result<f64, NumberError> {
    match decimal_prefix(s, 0) {
        Some((v, end)) if end == s.len() => Ok(v),
        _ => parse_float_slow(s),
    }
}

/// The plain decimal at the start of `s[start..]`, if its value is exact, and the index
/// just past it: what exporters write almost always (`0`, `12345`, `0.25`, `1.6e+09`).
/// The caller checks that the token ends there; `None` (or a token going on) sends the
/// text to `parse_float`, which also reports the errors. Digits are read eight at a time
/// and may be read past the token, so callers pass the whole body, not a token slice.
#[inline(always)]
pub(crate) fn decimal_prefix(s: &[u8], start: usize) -> Option<(f64, usize)> {
    // A lone `0` (counters of errors, drops, gauges at rest) is the most frequent value of
    // all: settled before the digit-run machinery.
    if s.get(start) == Some(&b'0')
        && !matches!(s.get(start + 1), Some(b'0'..=b'9' | b'.' | b'e' | b'E'))
    {
        return Some((0.0, start + 1));
    }
    let (negative, int_start) = match s.get(start)? {
        b'-' => (true, start + 1),
        b'+' => (false, start + 1),
        _ => (false, start),
    };
    let (mut mantissa, mut i) = digits_prefix(s, int_start, 0);
    let mut digits = i - int_start;
    let mut exponent: i32 = 0;
    if s.get(i) == Some(&b'.') {
        let frac_start = i + 1;
        (mantissa, i) = digits_prefix(s, frac_start, mantissa);
        digits += i - frac_start;
        exponent = -((i - frac_start) as i32);
    }
    // 19 digits always fit a u64; more may have wrapped.
    if digits == 0 || digits > 19 {
        return None;
    }
    if let Some(&(b'e' | b'E')) = s.get(i) {
        i += 1;
        let negative_exp = match s.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        // One or two digits, nearly always: a byte at a time is cheaper than a word.
        let exp_start = i;
        let mut e: i32 = 0;
        while let Some(&c) = s.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            e = e * 10 + i32::from(d);
            i += 1;
            // Longer exponents are the general parser's.
            if i - exp_start > 4 {
                return None;
            }
        }
        if i == exp_start {
            return None;
        }
        exponent += if negative_exp { -e } else { e };
    }
    if mantissa > (1 << 53) || !(-22..=22).contains(&exponent) {
        return exact_decimal(&s[start..i]).map(|v| (v, i));
    }
    let m = mantissa as f64;
    let v = match exponent {
        0 => m,
        1.. => m * POW10[exponent as usize],
        _ => m / POW10[(-exponent) as usize],
    };
    Some((if negative { -v } else { v }, i))
}

/// A plain decimal of at most 19 significant digits that Clinger's fast path cannot settle
/// (a mantissa beyond 2^53, as in the 17 digits of a shortest round-trip float, or a power
/// of ten beyond 10^22): Rust's parser, which is exact (Eisel–Lemire, then a big-number
/// fallback for the rare ties), on the token already checked to be ASCII digits, dot,
/// exponent and signs. It is the parse that `parse_float_slow` ends in, without that
/// function's token search and checks; a value beyond f64's range is left to it, to report.
#[inline(never)]
fn exact_decimal(token: &[u8]) -> Option<f64> {
    let v: f64 = utf8(token)?.parse().ok()?;
    v.is_finite().then_some(v)
}

#[cold]
fn parse_float_slow(s: &[u8]) -> Result<f64, NumberError> {
    let (signed, unsigned) = match s.first() {
        Some(b'+' | b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    match unsigned.first() {
        None => return Err(NumberError::Syntax),
        Some(b'i' | b'I' | b'n' | b'N') => return special(s[0] == b'-', signed, unsigned),
        _ => {}
    }
    // Within this alphabet Rust's float grammar is Go's decimal grammar; outside it lie the
    // forms Prometheus refuses (`_`, hex, `p` exponents) or Rust alone would take.
    if !s
        .iter()
        .all(|&c| matches!(c, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(NumberError::Syntax);
    }
    let text = utf8(s).ok_or(NumberError::Syntax)?;
    let v: f64 = text.parse().map_err(|_| NumberError::Syntax)?;
    // Go reports a finite literal beyond f64's range as ErrRange, and Prometheus fails on it.
    if v.is_infinite() {
        return Err(NumberError::Range);
    }
    Ok(v)
}

/// Go's `special`: `inf` and `infinity` in any case with an optional sign, `nan` in any case
/// without one.
fn special(negative: bool, signed: bool, word: &[u8]) -> Result<f64, NumberError> {
    if word.eq_ignore_ascii_case(b"inf") || word.eq_ignore_ascii_case(b"infinity") {
        return Ok(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if !signed && word.eq_ignore_ascii_case(b"nan") {
        return Ok(f64::NAN);
    }
    Err(NumberError::Syntax)
}

/// A text 0.0.4 timestamp: digits only (the lexer takes no sign), int64 milliseconds.
#[inline]
pub fn parse_timestamp_ms(s: &[u8]) -> Result<i64, NumberError> {
    if s.is_empty() {
        return Err(NumberError::Syntax);
    }
    let mut v: i64 = 0;
    for &c in s {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return Err(NumberError::Syntax);
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(d)))
            .ok_or(NumberError::Range)?;
    }
    Ok(v)
}

/// An OpenMetrics timestamp: float seconds, converted as Prometheus does with
/// `int64(ts * 1000)` (truncation toward zero). NaN, infinities and values beyond int64
/// milliseconds are refused.
#[inline]
pub fn parse_seconds_as_ms(s: &[u8]) -> Result<i64, NumberError> {
    let seconds = parse_float(s)?;
    if seconds.is_nan() || seconds.is_infinite() {
        return Err(NumberError::Range);
    }
    let ms = seconds * 1000.0;
    // i64::MIN is exactly representable; i64::MAX rounds up to 2^63, which is out of range.
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&ms) {
        return Err(NumberError::Range);
    }
    Ok(ms as i64)
}

/// Folds the run of ASCII digits at `s[start..]` into `mantissa` (wrapping: the caller
/// bounds the digit count) eight at a time; returns it and the index after the last digit.
#[inline(always)]
pub(crate) fn digits_prefix(s: &[u8], start: usize, mut mantissa: u64) -> (u64, usize) {
    let mut i = start;
    loop {
        let word = swar::word_or_newlines(s, i);
        let n = swar::first(!swar::digits(word) & swar::HIGHS);
        mantissa = mantissa
            .wrapping_mul(POW10_U64[n])
            .wrapping_add(swar::digits_value(word, n));
        i += n;
        if n < 8 {
            return (mantissa, i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> f64 {
        parse_value(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn go_float_syntax() {
        for (s, v) in [
            ("0", 0.0),
            ("1", 1.0),
            ("-1", -1.0),
            ("+1", 1.0),
            ("1e3", 1000.0),
            ("1E3", 1000.0),
            ("1e+3", 1000.0),
            ("1e-3", 0.001),
            (".5", 0.5),
            ("5.", 5.0),
            ("1.e2", 100.0),
            ("007", 7.0),
            ("1.458255915e9", 1.458255915e9),
            ("12.47", 12.47),
            ("1e-400", 0.0),
            ("123456789012345678901234567890", 1.2345678901234568e29),
            ("0.1000000000000000055511151231257827", 0.1),
            ("4.9e-324", 4.9e-324),
            ("1.7976931348623157e308", f64::MAX),
        ] {
            assert_eq!(ok(s), v, "{s}");
        }
        assert!(ok("-0").is_sign_negative());
        assert!(ok("-0.0").is_sign_negative());
    }

    #[test]
    fn infinities_and_nan() {
        for s in [
            "+Inf",
            "Inf",
            "inf",
            "INF",
            "infinity",
            "+Infinity",
            "iNfInItY",
        ] {
            assert_eq!(ok(s), f64::INFINITY, "{s}");
        }
        for s in ["-Inf", "-inf", "-infinity"] {
            assert_eq!(ok(s), f64::NEG_INFINITY, "{s}");
        }
        for s in ["NaN", "Nan", "nan", "NAN"] {
            assert_eq!(ok(s).to_bits(), NORMAL_NAN_BITS, "{s}");
        }
    }

    #[test]
    fn refused() {
        for s in [
            "",
            "+",
            "-",
            ".",
            "e5",
            "1e",
            "1e+",
            "1_000",
            "0x10",
            "0x1p3",
            "1p3",
            "+nan",
            "-NaN",
            "infin",
            "infinityy",
            "nana",
            "1.2.3",
            "1e5e5",
            "--1",
            "+-1",
            " 1",
            "1 ",
            "1f",
            "½",
            "１",
        ] {
            assert_eq!(
                parse_value(s.as_bytes()),
                Err(NumberError::Syntax),
                "{s:?} must be refused"
            );
        }
        assert_eq!(parse_value(b"1e400"), Err(NumberError::Range));
        assert_eq!(parse_value(b"-1e309"), Err(NumberError::Range));
    }

    #[test]
    fn timestamps_ms() {
        assert_eq!(parse_timestamp_ms(b"1395066363000"), Ok(1395066363000));
        assert_eq!(parse_timestamp_ms(b"0"), Ok(0));
        assert_eq!(parse_timestamp_ms(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(
            parse_timestamp_ms(b"9223372036854775808"),
            Err(NumberError::Range)
        );
        for s in ["", "-1", "+1", "1.5", "1e3"] {
            assert_eq!(
                parse_timestamp_ms(s.as_bytes()),
                Err(NumberError::Syntax),
                "{s}"
            );
        }
    }

    #[test]
    fn timestamps_seconds() {
        assert_eq!(parse_seconds_as_ms(b"1520879607.789"), Ok(1520879607789));
        assert_eq!(parse_seconds_as_ms(b"1"), Ok(1000));
        assert_eq!(parse_seconds_as_ms(b"-1.5"), Ok(-1500));
        // Truncation toward zero, as Go's int64() conversion.
        assert_eq!(parse_seconds_as_ms(b"0.0019"), Ok(1));
        assert_eq!(parse_seconds_as_ms(b"-0.0019"), Ok(-1));
        for s in ["NaN", "+Inf", "-Inf", "1e17"] {
            assert_eq!(
                parse_seconds_as_ms(s.as_bytes()),
                Err(NumberError::Range),
                "{s}"
            );
        }
    }

    proptest! {
        /// The fast path and Rust's correctly rounded parser agree bit for bit.
        #[test]
        fn fast_path_is_correctly_rounded(mantissa in 0u64..10_000_000_000_000_000_000, frac in 0usize..20, exp in -30i32..30, neg: bool) {
            let digits = mantissa.to_string();
            let split = digits.len().saturating_sub(frac);
            let text = format!("{}{}.{}e{}", if neg { "-" } else { "" }, &digits[..split], &digits[split..], exp);
            let expected: f64 = text.parse().unwrap();
            prop_assert_eq!(parse_float(text.as_bytes()).unwrap().to_bits(), expected.to_bits(), "{}", text);
        }

        /// Up to 19 significant digits and a short exponent, the value is read without the
        /// general parser, and exactly.
        #[test]
        fn nineteen_digits_stay_off_the_general_parser(mantissa in 0u64..10_000_000_000_000_000_000, frac in 0usize..20, exp in -400i32..400, neg: bool) {
            let digits = mantissa.to_string();
            let split = digits.len().saturating_sub(frac);
            let text = format!("{}{}.{}e{}", if neg { "-" } else { "" }, &digits[..split], &digits[split..], exp);
            let slow = parse_float_slow(text.as_bytes()).map(f64::to_bits);
            match decimal_prefix(text.as_bytes(), 0) {
                Some((v, end)) => {
                    prop_assert_eq!(end, text.len());
                    prop_assert_eq!(Ok(v.to_bits()), slow, "{}", text);
                }
                // Only what the general parser reports as out of range is left to it.
                None => prop_assert_eq!(slow, Err(NumberError::Range), "{}", text),
            }
        }

        /// Every finite f64, written by Rust's shortest round-trip formatting (plain and
        /// scientific), parses back to itself.
        #[test]
        fn round_trip(bits: u64) {
            let v = f64::from_bits(bits);
            prop_assume!(v.is_finite());
            prop_assert_eq!(parse_float(format!("{v}").as_bytes()).unwrap().to_bits(), bits);
            prop_assert_eq!(parse_float(format!("{v:e}").as_bytes()).unwrap().to_bits(), bits);
        }

        /// The fast paths (a lone zero, plain decimals) give what the general parser gives
        /// for short tokens of the number alphabet, errors included.
        #[test]
        fn fast_paths_agree_with_the_general_parser(s in "[0-9.eE+-]{1,6}") {
            let fast = parse_float(s.as_bytes()).map(f64::to_bits);
            let slow = parse_float_slow(s.as_bytes()).map(f64::to_bits);
            prop_assert_eq!(fast, slow, "{}", s);
        }

        #[test]
        fn never_panics(s in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_value(&s);
            let _ = parse_timestamp_ms(&s);
            let _ = parse_seconds_as_ms(&s);
        }
    }
}
