//! Byte classes of metric and label names (Prometheus's legacy, unquoted names). One table
//! lookup per byte keeps name scanning off the profile; this file never decides anything
//! about quoting or escapes.

use super::swar::{byte_range, HIGHS, ONES};
use super::window::Window;

const NAME_START: u8 = 1; // [a-zA-Z_]
const NAME_CONT: u8 = 2; // [a-zA-Z0-9_]
const COLON: u8 = 4; // ':' is legal in metric names only

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' {
            t[b] = NAME_START | NAME_CONT;
        } else if c.is_ascii_digit() {
            t[b] = NAME_CONT;
        } else if c == b':' {
            t[b] = COLON;
        }
        b += 1;
    }
    t
};

/// Length of the metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) at the start of `s`; 0 if there
/// is none.
#[inline]
pub(crate) fn metric_name_len(s: &[u8]) -> usize {
    // Most names end within one window, found without a loop.
    if let Some(w) = Window::at(s, 0) {
        let len = w.metric_name().trailing_ones();
        if len < 32 {
            let starts_name = CLASS[usize::from(s[0])] & (NAME_START | COLON) != 0;
            return if starts_name { len as usize } else { 0 };
        }
    }
    match s.first() {
        Some(&c) if CLASS[c as usize] & (NAME_START | COLON) != 0 => name_tail_len(s, true),
        _ => 0,
    }
}

/// Length of the label name (`[a-zA-Z_][a-zA-Z0-9_]*`) at the start of `s`; 0 if there is
/// none.
#[inline]
pub(crate) fn label_name_len(s: &[u8]) -> usize {
    match s.first() {
        Some(&c) if CLASS[c as usize] & NAME_START != 0 => name_tail_len(s, false),
        _ => 0,
    }
}

/// Where the name whose first byte is valid ends. Names are the longest tokens of a sample
/// line, so they are checked eight bytes at a time (SWAR), the table finishing the tail.
#[inline]
fn name_tail_len(s: &[u8], colon: bool) -> usize {
    let mut i = 1;
    while let Some(chunk) = s[i..].first_chunk::<8>() {
        let outside = !name_bytes(u64::from_le_bytes(*chunk), colon) & HIGHS;
        if outside != 0 {
            return i + (outside.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let mask = if colon { NAME_CONT | COLON } else { NAME_CONT };
    i + s[i..]
        .iter()
        .take_while(|&&c| CLASS[c as usize] & mask != 0)
        .count()
}

/// The high bit of each byte of `word` set when that byte may continue a name.
#[inline]
fn name_bytes(word: u64, colon: bool) -> u64 {
    let ascii = !word & HIGHS;
    let x = word & !HIGHS;
    // ':' follows '9', so metric names check one range for both.
    let digits = byte_range(x, b'0', if colon { b':' } else { b'9' });
    // Setting 0x20 folds upper case onto lower case and nothing else onto a-z.
    let letters = byte_range(x | (ONES * 0x20), b'a', b'z');
    let underscore = byte_range(x, b'_', b'_');
    (digits | letters | underscore) & ascii
}

/// Whether the whole of `s` is a valid metric name.
pub fn is_valid_metric_name(s: &[u8]) -> bool {
    !s.is_empty() && metric_name_len(s) == s.len()
}

/// Whether the whole of `s` is a valid label name.
pub fn is_valid_label_name(s: &[u8]) -> bool {
    !s.is_empty() && label_name_len(s) == s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        for ok in [
            "a",
            "_",
            ":",
            "a:b_c9",
            "__name__",
            "node_cpu_seconds_total",
            "A1",
        ] {
            assert!(is_valid_metric_name(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "9a", "a-b", "a.b", "é", "a b", "\"a\""] {
            assert!(!is_valid_metric_name(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn label_names() {
        for ok in ["a", "_", "le", "__name__", "A_9"] {
            assert!(is_valid_label_name(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "9a", "a:b", ":", "a-b", "é"] {
            assert!(!is_valid_label_name(bad.as_bytes()), "{bad}");
        }
    }

    /// The byte-at-a-time definition the SWAR scan must match.
    fn reference_len(s: &[u8], colon: bool) -> usize {
        let ok_start = |c: u8| c.is_ascii_alphabetic() || c == b'_' || (colon && c == b':');
        let ok = |c: u8| ok_start(c) || c.is_ascii_digit();
        match s.first() {
            Some(&c) if ok_start(c) => 1 + s[1..].iter().take_while(|&&c| ok(c)).count(),
            _ => 0,
        }
    }

    proptest::proptest! {
        #[test]
        fn swar_matches_the_definition(s in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(b"aZz_:09AG`@[{/;\x80\xba\xdf\xe1\xff".to_vec()),
                proptest::prelude::any::<u8>(),
            ],
            0..40,
        )) {
            proptest::prop_assert_eq!(metric_name_len(&s), reference_len(&s, true));
            proptest::prop_assert_eq!(label_name_len(&s), reference_len(&s, false));
        }
    }

    #[test]
    fn every_byte_in_every_position() {
        for pos in 1..12 {
            for b in 0..=255u8 {
                let mut s = vec![b'a'; 12];
                s[pos] = b;
                assert_eq!(metric_name_len(&s), reference_len(&s, true), "{pos} {b:#x}");
                assert_eq!(label_name_len(&s), reference_len(&s, false), "{pos} {b:#x}");
            }
        }
    }

    #[test]
    fn prefix_lengths() {
        assert_eq!(metric_name_len(b"foo:bar{x"), 7);
        assert_eq!(label_name_len(b"foo:bar"), 3);
        assert_eq!(metric_name_len(b"{"), 0);
        assert_eq!(label_name_len(b""), 0);
    }
}
