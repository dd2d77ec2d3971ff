//! Request parameters the way Go's `net/url` and `Request.ParseForm` read them, because the
//! Prometheus API (and so Grafana) relies on that exact behaviour: percent-decoding of keys and
//! values, `+` as a space, `&` as the only separator, repeated keys kept in order (`match[]`),
//! and the urlencoded POST body merged *before* the URL query so that its values win.
//!
//! This module only decodes bytes into owned strings. It never decides what a parameter means
//! and never rejects a request: a malformed pair is skipped and remembered as the first
//! [`FormError`], which an API handler can turn into a `bad_data` answer as Prometheus does.

use super::chunked::hex_digit;
use thiserror::Error;

/// A defect in a query string or form body. Decoding goes on past it, like Go's `ParseQuery`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormError {
    /// A `%` not followed by two hex digits, e.g. `q=%zz`.
    #[error("invalid URL escape {0:?}")]
    InvalidEscape(String),
    /// Go refuses `;` as a separator since 1.17; so do we, to agree on what a query means.
    #[error("invalid semicolon separator in query")]
    Semicolon,
}

/// An ordered multimap of decoded parameters. Form-body values come first, then the URL's,
/// so [`Params::get`] answers what Go's `FormValue` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
    error: Option<FormError>,
}

impl Params {
    /// Decodes one `application/x-www-form-urlencoded` string (a query string or a form body)
    /// and appends its pairs.
    pub fn extend_from_urlencoded(&mut self, input: &[u8]) {
        for part in input.split(|&b| b == b'&') {
            if part.is_empty() {
                continue;
            }
            if part.contains(&b';') {
                self.note(FormError::Semicolon);
                continue;
            }
            let (key, value) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &part[part.len()..]),
            };
            match (decode_component(key, true), decode_component(value, true)) {
                (Ok(k), Ok(v)) => self.pairs.push((k, v)),
                (Err(e), _) | (_, Err(e)) => self.note(e),
            }
        }
    }

    fn note(&mut self, e: FormError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// The first value of `name`: the form body's if it has one, else the URL's.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable parameter such as `match[]`, body values first.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` was given at all, even with an empty value.
    pub fn contains(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// Every pair in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The first malformed pair met while decoding, if any.
    pub fn error(&self) -> Option<&FormError> {
        self.error.as_ref()
    }
}

/// Percent-decodes one component. `plus_as_space` is true for query strings and forms and false
/// for paths, where `+` is a literal plus. Invalid UTF-8 after decoding is replaced with U+FFFD
/// rather than refused: every consumer (PromQL, label names) rejects it later with a better error.
pub fn decode_component(input: &[u8], plus_as_space: bool) -> Result<String, FormError> {
    // The common case — nothing to decode — costs one copy and no second pass.
    if !input
        .iter()
        .any(|&b| b == b'%' || (plus_as_space && b == b'+'))
    {
        return Ok(String::from_utf8_lossy(input).into_owned());
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => {
                let hi = input.get(i + 1).and_then(|&b| hex_digit(b));
                let lo = input.get(i + 2).and_then(|&b| hex_digit(b));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => {
                        let end = (i + 3).min(input.len());
                        return Err(FormError::InvalidEscape(
                            String::from_utf8_lossy(&input[i..end]).into_owned(),
                        ));
                    }
                }
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Go's `url.QueryEscape`, the inverse of the decoding above: used for Prometheus's
/// generator URLs and the template functions that build links.
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Params {
        let mut p = Params::default();
        p.extend_from_urlencoded(s.as_bytes());
        p
    }

    #[test]
    fn decodes_escapes_plus_and_repeated_keys() {
        let p =
            parse("match%5B%5D=up&match[]=%7Bjob%3D%22x%22%7D&query=rate(a[5m])+*+2&empty=&flag");
        assert_eq!(
            p.get_all("match[]").collect::<Vec<_>>(),
            vec!["up", "{job=\"x\"}"]
        );
        assert_eq!(p.get("query"), Some("rate(a[5m]) * 2"));
        assert_eq!(p.get("empty"), Some(""));
        assert_eq!(p.get("flag"), Some(""));
        assert!(p.contains("flag"));
        assert_eq!(p.get("missing"), None);
        assert_eq!(p.error(), None);
        assert_eq!(p.len(), 5);
    }

    #[test]
    fn first_value_wins_so_body_merged_first_wins() {
        let mut p = Params::default();
        p.extend_from_urlencoded(b"query=body&match[]=b");
        p.extend_from_urlencoded(b"query=url&match[]=u");
        assert_eq!(p.get("query"), Some("body"));
        assert_eq!(p.get_all("match[]").collect::<Vec<_>>(), vec!["b", "u"]);
    }

    #[test]
    fn malformed_pairs_are_skipped_and_remembered() {
        let p = parse("a=1&b=%zz&c=%4&d=4;e=5&f=%41");
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![("a", "1"), ("f", "A")]);
        assert_eq!(p.error(), Some(&FormError::InvalidEscape("%zz".into())));
    }

    #[test]
    fn path_decoding_keeps_plus() {
        assert_eq!(decode_component(b"/a+b%2Fc", false).unwrap(), "/a+b/c");
        assert_eq!(decode_component(b"%E2%9C%93", true).unwrap(), "✓");
        assert_eq!(decode_component(b"%FF", true).unwrap(), "\u{FFFD}");
    }

    proptest! {
        #[test]
        fn encoded_pairs_decode_to_themselves(
            pairs in proptest::collection::vec((".{0,12}", ".{0,24}"), 0..8)
        ) {
            let query = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
                .collect::<Vec<_>>()
                .join("&");
            let p = parse(&query);
            let want: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            // "=" alone is a pair with an empty key, which Go keeps too.
            prop_assert_eq!(p.iter().collect::<Vec<_>>(), want);
            prop_assert_eq!(p.error(), None);
        }

        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut p = Params::default();
            p.extend_from_urlencoded(&input);
        }
    }
}
