//! Byte classes of metric and label names (Prometheus's legacy, unquoted names). One table
//! lookup per byte keeps name scanning off the profile; this file never decides anything
//! about quoting or escapes.

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
    match s.first() {
        Some(&c) if CLASS[c as usize] & (NAME_START | COLON) != 0 => {}
        _ => return 0,
    }
    1 + s[1..]
        .iter()
        .take_while(|&&c| CLASS[c as usize] & (NAME_CONT | COLON) != 0)
        .count()
}

/// Length of the label name (`[a-zA-Z_][a-zA-Z0-9_]*`) at the start of `s`; 0 if there is
/// none.
#[inline]
pub(crate) fn label_name_len(s: &[u8]) -> usize {
    match s.first() {
        Some(&c) if CLASS[c as usize] & NAME_START != 0 => {}
        _ => return 0,
    }
    1 + s[1..]
        .iter()
        .take_while(|&&c| CLASS[c as usize] & NAME_CONT != 0)
        .count()
}

/// Whether the whole of `s` is a valid metric name.
pub fn is_valid_metric_name(s: &[u8]) -> bool {
    !s.is_empty() && metric_name_len(s) == s.len()
}

/// Whether the whole of `s` is a valid label name.
pub fn is_valid_label_name(s: &[u8]) -> bool {
    !s.is_empty() && label_name_len(s) == s.len()
}

/// A name already checked against the tables above is ASCII, so this never fails; the
/// fallback only keeps the function total.
#[inline]
pub(crate) fn ascii_str(s: &[u8]) -> &str {
    std::str::from_utf8(s).unwrap_or_default()
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

    #[test]
    fn prefix_lengths() {
        assert_eq!(metric_name_len(b"foo:bar{x"), 7);
        assert_eq!(label_name_len(b"foo:bar"), 3);
        assert_eq!(metric_name_len(b"{"), 0);
        assert_eq!(label_name_len(b""), 0);
    }
}
