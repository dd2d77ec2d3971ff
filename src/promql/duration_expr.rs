//! Prometheus 3's duration expressions (`rate(x[5m*2])`, `x offset (1h/2)`, `[step()]`,
//! `min_of(a, b)`), which `promql-parser` 0.11 cannot parse (spec §13.3.1). They are resolved
//! here, on the query text, into plain millisecond durations before parsing: the contents
//! of `[...]` and the operand of `offset` that are not already a literal are evaluated with
//! the query's step and range.
//!
//! Only durations are touched; strings and comments are skipped, and everything else of the
//! query is left byte for byte as written.

use std::borrow::Cow;

/// Rewrites every duration expression of `query` into a literal. `step` and `range` are the
/// range query's step and `end - start` in ms (both 0 for an instant query).
pub fn resolve(query: &str, step: i64, range: i64) -> Result<Cow<'_, str>, String> {
    let b = query.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    let mut changed = false;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => i = skip_string(b, i),
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'[' => {
                let Some(end) = query[i..].find(']').map(|e| i + e) else {
                    return Ok(Cow::Borrowed(query));
                };
                let inner = &query[i + 1..end];
                if !is_literal_range(inner) {
                    let mut parts = Vec::new();
                    for part in split_top_level_colon(inner) {
                        if part.trim().is_empty() {
                            parts.push(String::new());
                        } else {
                            parts.push(format!("{}ms", eval_ms(part, step, range)?));
                        }
                    }
                    out.push_str(&query[copied..=i]);
                    out.push_str(&parts.join(":"));
                    copied = end;
                    changed = true;
                }
                i = end + 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &query[start..i];
                let prev_ok = start == 0 || !matches!(b[start - 1], b'.' | b'"');
                if prev_ok && word.eq_ignore_ascii_case("offset") {
                    let mut j = i;
                    while j < b.len() && b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    let atom_end = atom_end(b, j);
                    let atom = &query[j..atom_end];
                    if !atom.is_empty() && !is_literal_offset(atom) {
                        let ms = eval_ms(atom, step, range)?;
                        if ms == 0 {
                            // `offset 0` is no offset; the parser refuses a zero duration.
                            out.push_str(&query[copied..start]);
                        } else {
                            out.push_str(&query[copied..j]);
                            out.push_str(&format!("{ms}ms"));
                        }
                        copied = atom_end;
                        changed = true;
                    }
                    i = atom_end.max(i);
                }
            }
            _ => i += 1,
        }
    }
    if !changed {
        return Ok(Cow::Borrowed(query));
    }
    out.push_str(&query[copied..]);
    Ok(Cow::Owned(out))
}

/// The index just past the string literal whose opening quote is at `b[start]` (escapes
/// skipped, none in backquotes); the end of `b` for an unterminated one. The query-text
/// pre-passes use it so that a quoted `[5m]` or `anchored` is never rewritten.
pub(crate) fn skip_string(b: &[u8], start: usize) -> usize {
    let q = b[start];
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == b'\\' && q != b'`' {
            i += 2;
            continue;
        }
        if b[i] == q {
            return i + 1;
        }
        i += 1;
    }
    i
}

/// `5m`, `1h30m`, `100`, `1.5` (and a subquery's `a:b` of those): what the parser reads.
fn is_literal_range(s: &str) -> bool {
    split_top_level_colon(s)
        .iter()
        .all(|p| p.trim().is_empty() || is_literal(p.trim()))
}

fn is_literal_offset(s: &str) -> bool {
    let t = s.trim();
    is_literal(t.strip_prefix('-').unwrap_or(t))
}

fn is_literal(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|c| {
            c.is_ascii_digit() || matches!(c, b'.' | b'm' | b's' | b'h' | b'd' | b'w' | b'y')
        })
        && s.as_bytes()[0].is_ascii_digit()
}

fn split_top_level_colon(s: &str) -> Vec<&str> {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ':' if depth == 0 => return vec![&s[..i], &s[i + 1..]],
            _ => {}
        }
    }
    vec![s]
}

/// The end of `offset`'s operand: signs, then a parenthesised expression, a call or a
/// literal.
fn atom_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b'-' | b'+') {
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
    }
    if i < b.len() && b[i] == b'(' {
        return matching_paren(b, i);
    }
    let start = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
        i += 1;
    }
    if i < b.len() && b[i] == b'(' && i > start && b[start].is_ascii_alphabetic() {
        return matching_paren(b, i);
    }
    i
}

fn matching_paren(b: &[u8], open: usize) -> usize {
    let mut depth = 0;
    for (k, &c) in b.iter().enumerate().skip(open) {
        match c {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    b.len()
}

/// A matcher inserted into `info`'s selector argument, and ignored by `info`: Prometheus
/// accepts a selector there whose matchers all match the empty string (`{data=~".*"}`),
/// which promql-parser refuses as a selector.
pub const INFO_SENTINEL: &str = "__promcore_info_selector__";

/// Adds `INFO_SENTINEL="1"` to the bare `{...}` selector given as `info`'s second argument.
pub fn mark_info_selectors(query: &str) -> Cow<'_, str> {
    let b = query.as_bytes();
    let mut inserts = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => i = skip_string(b, i),
            _ if query[i..].starts_with("info")
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let mut j = i + 4;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if j >= b.len() || b[j] != b'(' {
                    i += 4;
                    continue;
                }
                // The top-level comma of the call, then a bare selector.
                let mut depth = 0;
                let mut k = j;
                while k < b.len() {
                    match b[k] {
                        b'"' | b'\'' | b'`' => {
                            k = skip_string(b, k);
                            continue;
                        }
                        b'(' | b'[' | b'{' => depth += 1,
                        b')' | b']' | b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        b',' if depth == 1 => {
                            let mut m = k + 1;
                            while m < b.len() && b[m].is_ascii_whitespace() {
                                m += 1;
                            }
                            if m < b.len() && b[m] == b'{' {
                                inserts.push(m + 1);
                            }
                            break;
                        }
                        _ => {}
                    }
                    k += 1;
                }
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    if inserts.is_empty() {
        return Cow::Borrowed(query);
    }
    let mut out = String::with_capacity(query.len() + inserts.len() * 40);
    let mut last = 0;
    for at in inserts {
        out.push_str(&query[last..at]);
        out.push_str(INFO_SENTINEL);
        out.push_str("=\"1\"");
        let rest = query[at..].trim_start();
        if !rest.starts_with('}') {
            out.push_str(", ");
        }
        last = at;
    }
    out.push_str(&query[last..]);
    Cow::Owned(out)
}

/// Evaluates a duration expression to milliseconds.
pub fn eval_ms(s: &str, step: i64, range: i64) -> Result<i64, String> {
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
        step,
        range,
    };
    let v = p.sum()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("invalid duration expression {s:?}"));
    }
    Ok((v * 1000.0).round() as i64)
}

/// Recursive descent over seconds: `+ -` < `* / %` < unary sign < `^` (right-associative).
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    step: i64,
    range: i64,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn sum(&mut self) -> Result<f64, String> {
        let mut v = self.product()?;
        loop {
            if self.eat(b'+') {
                v += self.product()?;
            } else if self.eat(b'-') {
                v -= self.product()?;
            } else {
                return Ok(v);
            }
        }
    }

    fn product(&mut self) -> Result<f64, String> {
        let mut v = self.unary()?;
        loop {
            if self.eat(b'*') {
                v *= self.unary()?;
            } else if self.eat(b'/') {
                v /= self.unary()?;
            } else if self.eat(b'%') {
                v %= self.unary()?;
            } else {
                return Ok(v);
            }
        }
    }

    fn unary(&mut self) -> Result<f64, String> {
        if self.eat(b'-') {
            return Ok(-self.unary()?);
        }
        if self.eat(b'+') {
            return self.unary();
        }
        self.power()
    }

    fn power(&mut self) -> Result<f64, String> {
        let base = self.atom()?;
        if self.eat(b'^') {
            let exp = self.unary()?;
            return Ok(base.powf(exp));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<f64, String> {
        self.ws();
        if self.eat(b'(') {
            let v = self.sum()?;
            if !self.eat(b')') {
                return Err("missing )".into());
            }
            return Ok(v);
        }
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], b'.' | b'_'))
        {
            self.i += 1;
        }
        let word = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
        if word.is_empty() {
            return Err("expected a duration".into());
        }
        if word.as_bytes()[0].is_ascii_alphabetic() {
            let name = word.to_ascii_lowercase();
            if !self.eat(b'(') {
                return Err(format!("unknown duration {word:?}"));
            }
            let mut args = Vec::new();
            if !self.eat(b')') {
                loop {
                    args.push(self.sum()?);
                    if self.eat(b')') {
                        break;
                    }
                    if !self.eat(b',') {
                        return Err("expected , or )".into());
                    }
                }
            }
            return match (name.as_str(), args.as_slice()) {
                ("step", []) => Ok(self.step as f64 / 1000.0),
                ("range", []) => Ok(self.range as f64 / 1000.0),
                ("min_of", [a, b]) => Ok(a.min(*b)),
                ("max_of", [a, b]) => Ok(a.max(*b)),
                _ => Err(format!("unknown duration function {word:?}")),
            };
        }
        if let Ok(v) = word.parse::<f64>() {
            return Ok(v);
        }
        parse_duration(word)
            .map(|ms| ms as f64 / 1000.0)
            .ok_or_else(|| format!("invalid duration {word:?}"))
    }
}

/// A duration as the test files write times: `0`, `5m`, `1h30m`, `-10s`, `100` (seconds).
pub fn parse_duration(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if s.is_empty() {
        return None;
    }
    let v = if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<i64>().ok()? * 1000
    } else {
        let mut total = 0i64;
        let mut rest = s;
        while !rest.is_empty() {
            let n = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            let num: i64 = rest[..n].parse().ok()?;
            rest = &rest[n..];
            let u = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
            let unit = match &rest[..u] {
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "w" => 7 * 86_400_000,
                "y" => 365 * 86_400_000,
                _ => return None,
            };
            rest = &rest[u..];
            total += num * unit;
        }
        total
    };
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_functions() {
        assert_eq!(eval_ms("26m+4m", 0, 0), Ok(1_800_000));
        assert_eq!(eval_ms("2m*(10+5)", 0, 0), Ok(1_800_000));
        assert_eq!(eval_ms("30m1s-30m1s % 1m", 0, 0), Ok(1_800_000));
        assert_eq!(eval_ms("-2 ^ 2", 0, 0), Ok(-4000));
        assert_eq!(
            eval_ms("max_of(min_of(step()+1,1h),1ms)", 5000, 0),
            Ok(6000)
        );
        assert_eq!(eval_ms("range()", 5000, 10_000), Ok(10_000));
    }

    #[test]
    fn info_selectors_get_a_sentinel() {
        assert_eq!(
            mark_info_selectors(r#"info(m, {data=~".*"})"#),
            format!(r#"info(m, {{{INFO_SENTINEL}="1", data=~".*"}})"#)
        );
        assert_eq!(mark_info_selectors("info(m)"), "info(m)");
        assert_eq!(mark_info_selectors("sum(rate(m[5m]))"), "sum(rate(m[5m]))");
    }

    #[test]
    fn rewrites_only_expressions() {
        assert_eq!(resolve("rate(x[5m])", 0, 0).unwrap(), "rate(x[5m])");
        assert_eq!(resolve("rate(x[5m*2])", 0, 0).unwrap(), "rate(x[600000ms])");
        assert_eq!(
            resolve("x[29s+1s:5s+5s] offset (100 + 2)", 0, 0).unwrap(),
            "x[30000ms:10000ms] offset 102000ms"
        );
        assert_eq!(
            resolve("x offset -step()*2", 5000, 0).unwrap(),
            "x offset -5000ms*2"
        );
        assert_eq!(resolve("x offset -2 ^ 2", 0, 0).unwrap(), "x offset -2 ^ 2");
        assert_eq!(
            resolve(r#"x{a="[5m*2]"}"#, 0, 0).unwrap(),
            r#"x{a="[5m*2]"}"#
        );
    }
}
