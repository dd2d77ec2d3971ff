//! Bytes of the body as `str`. Almost everything in an exposition is ASCII, which is
//! checked a word at a time in line; only other text goes through the general UTF-8
//! validator, whose call costs more than the check for the short names and values here.
//! This file never decides what is valid where: callers do.

use super::swar;

/// `s` as text, if it is UTF-8.
#[inline]
pub(crate) fn utf8(s: &[u8]) -> Option<&str> {
    if is_ascii(s) {
        // SAFETY: ASCII is UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(s) })
    } else {
        std::str::from_utf8(s).ok()
    }
}

/// Whether every byte of `s` is ASCII: the high bits of its words, or'd. Names and values
/// are a few words long, where this beats the standard library's general loop; the last
/// word overlaps the one before rather than ending byte by byte.
#[inline]
fn is_ascii(s: &[u8]) -> bool {
    let Some(last) = s.len().checked_sub(8) else {
        return s.iter().all(u8::is_ascii);
    };
    let mut high = swar::word(s, last).unwrap_or(0);
    let mut i = 0;
    while i < last {
        high |= swar::word(s, i).unwrap_or(0);
        i += 8;
    }
    high & swar::HIGHS == 0
}

/// Text already checked against an ASCII byte class (a name, a unit), so this never falls
/// back; the fallback only keeps the function total.
#[inline]
pub(crate) fn ascii_str(s: &[u8]) -> &str {
    utf8(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_at_every_length_and_position() {
        for len in 0..40 {
            let mut s = vec![b'a'; len];
            assert!(is_ascii(&s), "{len}");
            for pos in 0..len {
                s[pos] = 0x80;
                assert!(!is_ascii(&s), "{len} {pos}");
                s[pos] = 0x7f;
                assert!(is_ascii(&s), "{len} {pos}");
            }
        }
    }

    #[test]
    fn ascii_and_beyond() {
        assert_eq!(utf8(b""), Some(""));
        assert_eq!(
            utf8(b"node_cpu_seconds_total"),
            Some("node_cpu_seconds_total")
        );
        assert_eq!(utf8("é ☃".as_bytes()), Some("é ☃"));
        assert_eq!(utf8(b"a\xff"), None);
        assert_eq!(utf8(b"\xc3"), None);
        assert_eq!(ascii_str(b"up"), "up");
        assert_eq!(ascii_str(b"\xff"), "");
    }
}
