//! Eight bytes at a time (SWAR): byte classes of a little-endian `u64` word and the value of
//! a run of decimal digits, for the parser's hot scans (names, label values, numbers). Each
//! class sets the high bit of the bytes that belong to it, exactly (no false positives), so
//! `trailing_zeros() / 8` of a class is the index of its first member. This file only
//! classifies and converts bytes; it never decides what a token means.

pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;
pub(crate) const HIGHS: u64 = 0x8080_8080_8080_8080;
const LOWS: u64 = !HIGHS;

/// The eight bytes at `s[i..i + 8]` as a little-endian word, if that many remain.
#[inline(always)]
pub(crate) fn word(s: &[u8], i: usize) -> Option<u64> {
    s.get(i..)
        .and_then(|rest| rest.first_chunk::<8>())
        .map(|chunk| u64::from_le_bytes(*chunk))
}

/// Like `word`, but past the end of `s` the missing bytes read as newlines: the end of the
/// body ends a line as a newline does, and a newline is no digit nor name byte.
#[inline(always)]
pub(crate) fn word_or_newlines(s: &[u8], i: usize) -> u64 {
    match word(s, i) {
        Some(w) => w,
        None => tail_word(s, i),
    }
}

#[cold]
fn tail_word(s: &[u8], i: usize) -> u64 {
    let mut chunk = [b'\n'; 8];
    let rest = s.get(i..).unwrap_or_default();
    chunk[..rest.len()].copy_from_slice(rest);
    u64::from_le_bytes(chunk)
}

/// Index (0..=8) of the first byte of `class` (high bits as returned by the functions
/// below); 8 when there is none.
#[inline(always)]
pub(crate) fn first(class: u64) -> usize {
    (class.trailing_zeros() / 8) as usize
}

/// High bit of each byte equal to `b`.
#[inline(always)]
pub(crate) fn equal(word: u64, b: u8) -> u64 {
    let x = word ^ (ONES * u64::from(b));
    // A byte is zero when neither its low seven bits (carried into the high one) nor its
    // high bit is set; no carry crosses a byte.
    !(((x & LOWS) + LOWS) | x) & HIGHS
}

/// High bit of each byte with `lo <= byte <= hi` (`hi` < 0x80).
#[inline(always)]
pub(crate) fn in_range(word: u64, lo: u8, hi: u8) -> u64 {
    byte_range(word & LOWS, lo, hi) & !word & HIGHS
}

/// High bit of each byte of `x` (all below 0x80) with `lo <= byte <= hi`; each sum stays
/// below 0x100, so no carry crosses a byte.
#[inline(always)]
pub(crate) fn byte_range(x: u64, lo: u8, hi: u8) -> u64 {
    let at_least_lo = x + ONES * u64::from(0x80 - lo);
    let above_hi = x + ONES * u64::from(0x7f - hi);
    at_least_lo & !above_hi & HIGHS
}

/// High bit of each ASCII digit.
#[inline(always)]
pub(crate) fn digits(word: u64) -> u64 {
    in_range(word, b'0', b'9')
}

/// The value of the first `n` (0..=8) bytes of `word`, which are ASCII digits, most
/// significant first. Bytes past them are ignored.
#[inline(always)]
pub(crate) fn digits_value(word: u64, n: usize) -> u64 {
    // Borrows of the subtraction only run upwards, out of the digits into the bytes that
    // the shift drops; the shift turns those into leading zeros.
    let x = word.wrapping_sub(ONES * u64::from(b'0'));
    let x = x.checked_shl(64 - 8 * n as u32).unwrap_or(0);
    // Pairs, then quads, then the eight: each step multiplies the more significant half
    // by a power of ten and adds the other, in place.
    let x = x.wrapping_mul(10).wrapping_add(x >> 8);
    const LOW_BYTES: u64 = 0x0000_00ff_0000_00ff;
    const MUL_PAIRS: u64 = 100 + (1_000_000 << 32);
    const MUL_QUADS: u64 = 1 + (10_000 << 32);
    ((x & LOW_BYTES)
        .wrapping_mul(MUL_PAIRS)
        .wrapping_add(((x >> 16) & LOW_BYTES).wrapping_mul(MUL_QUADS)))
        >> 32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &[u8]) -> u64 {
        word_or_newlines(s, 0)
    }

    #[test]
    fn classes_are_exact() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut chunk = [b'a'; 8];
                chunk[pos] = b;
                let word = u64::from_le_bytes(chunk);
                let at = |class: u64| class & (0x80 << (8 * pos)) != 0;
                assert_eq!(at(equal(word, b'"')), b == b'"', "{b:#x}");
                assert_eq!(at(digits(word)), b.is_ascii_digit(), "{b:#x}");
                assert_eq!(at(in_range(word, b'a', b'z')), b.is_ascii_lowercase());
                assert_eq!(at(in_range(word, b'A', b'Z')), b.is_ascii_uppercase());
                // The other bytes are 'a': none is a digit or a quote.
                assert_eq!(digits(word) & !(0x80 << (8 * pos)), 0);
                assert_eq!(equal(word, b'"') & !(0x80 << (8 * pos)), 0);
            }
        }
    }

    #[test]
    fn digit_values() {
        assert_eq!(digits_value(w(b"12345678"), 8), 12_345_678);
        assert_eq!(digits_value(w(b"00000001"), 8), 1);
        assert_eq!(digits_value(w(b"99999999"), 8), 99_999_999);
        assert_eq!(digits_value(w(b"123.5"), 3), 123);
        assert_eq!(digits_value(w(b"7 "), 1), 7);
        assert_eq!(digits_value(w(b""), 0), 0);
        assert_eq!(digits_value(w(b"x"), 0), 0);
        for n in 0..=8 {
            let text = "98765432";
            let want: u64 = text[..n].parse().unwrap_or(0);
            assert_eq!(digits_value(w(&text.as_bytes()[..n]), n), want, "{n}");
            assert_eq!(digits_value(w(text.as_bytes()), n), want, "{n}");
        }
    }

    #[test]
    fn words_near_the_end() {
        assert_eq!(word(b"1234567", 0), None);
        assert_eq!(word(b"12345678", 1), None);
        assert_eq!(word(b"12345678", 9), None);
        assert_eq!(w(b"12"), 0x0a0a_0a0a_0a0a_3231);
        assert_eq!(word_or_newlines(b"12", 5), 0x0a0a_0a0a_0a0a_0a0a);
        assert_eq!(first(digits(w(b"12"))), 0);
        assert_eq!(first(!digits(w(b"12")) & HIGHS), 2);
    }
}
