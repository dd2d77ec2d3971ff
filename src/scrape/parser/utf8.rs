//! Bytes of the body as `str`. Almost everything in an exposition is ASCII, which is
//! checked a word at a time in line; only other text goes through the general UTF-8
//! validator, whose call costs more than the check for the short names and values here.
//! This file never decides what is valid where: callers do.

/// `s` as text, if it is UTF-8.
#[inline]
pub(crate) fn utf8(s: &[u8]) -> Option<&str> {
    if s.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(s) })
    } else {
        std::str::from_utf8(s).ok()
    }
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
