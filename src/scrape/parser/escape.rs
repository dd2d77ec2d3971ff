//! Escape sequences of quoted label values and HELP text. Resolution borrows when there is
//! nothing to resolve, so the common case costs one UTF-8 check and one backslash search. Unknown
//! sequences are kept as written, as Go's `strings.Replacer` in Prometheus keeps them.

use std::borrow::Cow;

use super::swar;
use super::utf8::utf8;

/// Which escapes a piece of text knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escapes {
    /// `\\`, `\"`, `\n`: label values in both formats, HELP text in OpenMetrics.
    Quoted,
    /// `\\`, `\n`: HELP text in text 0.0.4, where `\"` stays as written.
    TextHelp,
}

/// Decodes `raw` (the bytes between the quotes, or the HELP text). `None` if it is not
/// UTF-8; checking the raw bytes suffices because every escape is ASCII.
#[inline]
pub(crate) fn unescape(raw: &[u8], escapes: Escapes) -> Option<Cow<'_, str>> {
    let text = utf8(raw)?;
    if !has_backslash(raw) {
        return Some(Cow::Borrowed(text));
    }
    let first = memchr::memchr(b'\\', raw).unwrap_or(raw.len());
    Some(Cow::Owned(resolve(text, first, escapes)))
}

/// Whether `s` holds a backslash, checked in line a word at a time (the last word
/// overlapping the one before): label values are a few bytes long, shorter than a call
/// to the general search costs.
#[inline]
fn has_backslash(s: &[u8]) -> bool {
    let Some(last) = s.len().checked_sub(8) else {
        return s.contains(&b'\\');
    };
    let mut found = swar::word(s, last).map_or(0, |w| swar::equal(w, b'\\'));
    let mut i = 0;
    while i < last {
        found |= swar::word(s, i).map_or(0, |w| swar::equal(w, b'\\'));
        i += 8;
    }
    found != 0
}

#[cold]
fn resolve(text: &str, first: usize, escapes: Escapes) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = first;
    loop {
        // `at` is a backslash, one byte, so `at + 1` and `at + 2` fall on char boundaries
        // whenever the escaped byte is ASCII.
        let replacement = match (bytes.get(at + 1), escapes) {
            (Some(b'\\'), _) => Some('\\'),
            (Some(b'n'), _) => Some('\n'),
            (Some(b'"'), Escapes::Quoted) => Some('"'),
            _ => None,
        };
        let resume = match replacement {
            Some(c) => {
                out.push_str(&text[copied..at]);
                out.push(c);
                at + 2
            }
            None => at + 1,
        };
        if replacement.is_some() {
            copied = resume;
        }
        match memchr::memchr(b'\\', &bytes[resume..]) {
            Some(next) => at = resume + next,
            None => break,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// The inverse for label values, used by tests and by anything that renders an exposition.
pub fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> String {
        unescape(s.as_bytes(), Escapes::Quoted)
            .unwrap()
            .into_owned()
    }
    fn h(s: &str) -> String {
        unescape(s.as_bytes(), Escapes::TextHelp)
            .unwrap()
            .into_owned()
    }

    #[test]
    fn borrows_when_nothing_to_resolve() {
        assert!(matches!(
            unescape(b"plain value", Escapes::Quoted),
            Some(Cow::Borrowed("plain value"))
        ));
    }

    #[test]
    fn label_value_escapes() {
        assert_eq!(q(r#"C:\\DIR\\FILE.TXT"#), r"C:\DIR\FILE.TXT");
        assert_eq!(
            q(r#"Cannot find file:\n\"FILE.TXT\""#),
            "Cannot find file:\n\"FILE.TXT\""
        );
        assert_eq!(q(r"\\n"), r"\n");
        assert_eq!(q(r"\\\n"), "\\\n");
        // Unknown sequences stay as written, the backslash included.
        assert_eq!(q(r"a\tb\x"), r"a\tb\x");
        assert_eq!(q(r"\é\"), r"\é\");
        assert_eq!(q("nul\0ok"), "nul\0ok");
    }

    #[test]
    fn text_help_escapes() {
        assert_eq!(h(r"a\\b\nc"), "a\\b\nc");
        assert_eq!(h(r#"say \"hi\""#), r#"say \"hi\""#);
        assert_eq!(h(r"trailing\"), r"trailing\");
    }

    #[test]
    fn backslashes_at_every_length_and_position() {
        for len in 0..40 {
            let mut s = vec![b'a'; len];
            assert!(!has_backslash(&s), "{len}");
            for pos in 0..len {
                s[pos] = b'\\';
                assert!(has_backslash(&s), "{len} {pos}");
                s[pos] = b'a';
            }
        }
    }

    #[test]
    fn refuses_invalid_utf8() {
        assert!(unescape(b"\xff", Escapes::Quoted).is_none());
        assert!(unescape(b"a\\\xc3", Escapes::Quoted).is_none());
    }

    #[test]
    fn escape_round_trip() {
        for v in ["", "a", "\\", "\"", "\n", "a\\\"\n\tb", "\\n", "é\\é"] {
            let mut s = String::new();
            escape_label_value(v, &mut s);
            assert_eq!(q(&s), v);
        }
    }
}
