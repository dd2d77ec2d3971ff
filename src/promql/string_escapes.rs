//! Byte escapes in PromQL string literals. Go reads `\xHH` and `\OOO` as single bytes, so
//! `"\xc3\xa9"` is `é` and `"\xff"` is not valid UTF-8; `promql-parser` 0.11 reads each as a
//! character (`Ã©`, `ÿ`). A pre-pass over the query text rewrites every run of byte escapes
//! that holds a non-ASCII byte into the characters Go would decode, and refuses a literal
//! whose bytes are not valid UTF-8, which no label name or value can hold here (Prometheus
//! accepts the literal, then finds no such label or refuses it as a label name).
//!
//! It only touches escapes inside `"..."` and `'...'` literals; it never evaluates anything.

use std::borrow::Cow;

/// The query with Go's reading of byte escapes, or why a literal cannot be used.
pub fn normalize(query: &str) -> Result<Cow<'_, str>, String> {
    let b = query.as_bytes();
    // (start, end, replacement) of each run to rewrite.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
                i += 1;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] != b'\\' {
                        i += 1;
                        continue;
                    }
                    let run_start = i;
                    let mut bytes = Vec::new();
                    while let Some((byte, len)) = byte_escape(&b[i..]) {
                        bytes.push(byte);
                        i += len;
                    }
                    if bytes.is_empty() {
                        // Another escape: skip it and the character it escapes.
                        i += 2;
                        continue;
                    }
                    if bytes.iter().all(|c| c.is_ascii()) {
                        continue;
                    }
                    // The run is ASCII text (escapes only), so it can be quoted as is.
                    let text = String::from_utf8(bytes).map_err(|_| {
                        format!(
                            "parse error: the escapes {} of the string literal at character {} are not valid UTF-8",
                            &query[run_start..i],
                            start + 1
                        )
                    })?;
                    let mut out = String::new();
                    for c in text.chars() {
                        if c.is_ascii() {
                            out.push_str(&format!("\\x{:02x}", c as u32));
                        } else {
                            out.push(c);
                        }
                    }
                    edits.push((run_start, i, out));
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    if edits.is_empty() {
        return Ok(Cow::Borrowed(query));
    }
    let mut out = String::with_capacity(query.len());
    let mut last = 0;
    for (s, e, text) in edits {
        out.push_str(&query[last..s]);
        out.push_str(&text);
        last = e;
    }
    out.push_str(&query[last..]);
    Ok(Cow::Owned(out))
}

/// `\xHH` or `\OOO` at the start of `b`: the byte and the escape's length.
fn byte_escape(b: &[u8]) -> Option<(u8, usize)> {
    if b.first() != Some(&b'\\') {
        return None;
    }
    match b.get(1)? {
        b'x' => {
            let h = std::str::from_utf8(b.get(2..4)?).ok()?;
            Some((u8::from_str_radix(h, 16).ok()?, 4))
        }
        b'0'..=b'7' => {
            let o = std::str::from_utf8(b.get(1..4)?).ok()?;
            Some((u8::from_str_radix(o, 8).ok()?, 4))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_escapes_decode_as_utf8_bytes() {
        assert_eq!(normalize(r#"x{a="\xc3\xa9"}"#).unwrap(), "x{a=\"é\"}");
        assert_eq!(normalize(r#"x{a="\303\251"}"#).unwrap(), "x{a=\"é\"}");
        // ASCII escapes and other escapes are left to the parser.
        assert_eq!(
            normalize(r#"x{a="\x41\n\""}"#).unwrap(),
            r#"x{a="\x41\n\""}"#
        );
        assert_eq!(normalize(r"x{a=`\xff`}").unwrap(), r"x{a=`\xff`}");
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert!(normalize(r#"label_replace(m, "\xff", "", "s", "(.*)")"#).is_err());
        assert!(normalize(r#"x{a="\xc3"}"#).is_err());
    }
}
