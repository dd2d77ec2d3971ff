//! Prometheus 3's experimental `anchored` and `smoothed` selector modifiers
//! (`rate(x[5m] anchored)`, `x smoothed`), which `promql-parser` 0.11 reserves as tokens but
//! cannot parse (spec §13.2). A pre-pass over the query text finds each modifier written
//! after a selector (and after its range, `offset` and `@`), removes it, and records it on
//! that selector as a sentinel label matcher, which the parser accepts as any other matcher.
//! The evaluator reads the modifier back from the node with `of` and never lets the sentinel
//! reach the storage or a label set.
//!
//! It owns the recognition of the modifiers and the rules of where they are allowed; it must
//! never evaluate anything (the semantics live in `eval` and `functions`).

use std::borrow::Cow;

use promql_parser::parser::{Expr, VectorSelector};

/// The label name of the sentinel matcher; its value is the modifier's keyword.
pub const SENTINEL: &str = "__promcore_range_modifier__";

/// How a selector reads the samples around its window's edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeModifier {
    /// The window starts with the last sample at or before its left edge (within the lookback).
    Anchored,
    /// Values at the window's edges (or at an instant) are interpolated between the samples
    /// around them.
    Smoothed,
}

impl RangeModifier {
    fn keyword(self) -> &'static str {
        match self {
            RangeModifier::Anchored => "anchored",
            RangeModifier::Smoothed => "smoothed",
        }
    }

    /// The functions whose range argument may carry the modifier, as Prometheus lists them.
    fn allowed(self) -> &'static [&'static str] {
        match self {
            RangeModifier::Anchored => &["changes", "delta", "increase", "rate", "resets"],
            RangeModifier::Smoothed => &["delta", "increase", "rate"],
        }
    }
}

/// The modifier recorded on `vs`, if any.
pub fn of(vs: &VectorSelector) -> Option<RangeModifier> {
    vs.matchers
        .matchers
        .iter()
        .find(|m| m.name == SENTINEL)
        .and_then(|m| match m.value.as_str() {
            "anchored" => Some(RangeModifier::Anchored),
            "smoothed" => Some(RangeModifier::Smoothed),
            _ => None,
        })
}

/// Words after which `anchored`/`smoothed` is a metric name, not a modifier.
const OPERATOR_WORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "atan2",
];

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// Rewrites every `anchored`/`smoothed` modifier of `query` into a sentinel matcher on its
/// selector. Text without modifiers comes back unchanged.
pub fn mark(query: &str) -> Cow<'_, str> {
    let b = query.as_bytes();
    // (keyword start, keyword end, insertion point, braces already hold matchers, modifier)
    let mut found: Vec<(usize, usize, usize, Insert, RangeModifier)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => i = super::duration_expr::skip_string(b, i),
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && is_word_byte(b[i]) {
                    i += 1;
                }
                let word = &query[start..i];
                let modifier = match word {
                    "anchored" => RangeModifier::Anchored,
                    "smoothed" => RangeModifier::Smoothed,
                    _ => continue,
                };
                if start > 0 && matches!(b[start - 1], b'.' | b'"') {
                    continue;
                }
                // A call or a selector of that name is not a modifier.
                let next = query[i..].trim_start().bytes().next();
                if matches!(next, Some(b'(' | b'{' | b'[')) {
                    continue;
                }
                if let Some((at, insert)) = selector_before(b, start) {
                    found.push((start, i, at, insert, modifier));
                }
            }
            _ => i += 1,
        }
    }
    if found.is_empty() {
        return Cow::Borrowed(query);
    }
    // Edits from the back so that earlier positions stay valid.
    let mut out = query.to_string();
    for (start, end, at, insert, modifier) in found.into_iter().rev() {
        out.replace_range(start..end, "");
        let matcher = format!("{SENTINEL}=\"{}\"", modifier.keyword());
        let text = match insert {
            Insert::NewBraces => format!("{{{matcher}}}"),
            Insert::EmptyBraces => matcher,
            Insert::AfterMatchers => format!(", {matcher}"),
        };
        out.insert_str(at, &text);
    }
    Cow::Owned(out)
}

/// How the sentinel goes into the selector.
#[derive(Debug, Clone, Copy)]
enum Insert {
    /// After a bare metric name.
    NewBraces,
    /// Into `{}`.
    EmptyBraces,
    /// Before the `}` of non-empty braces.
    AfterMatchers,
}

/// Walks back from a modifier at `kw` over the selector's `@`, `offset` and range to where
/// its sentinel goes. None when no selector precedes it (then the word is a metric name).
fn selector_before(b: &[u8], kw: usize) -> Option<(usize, Insert)> {
    let mut i = kw;
    loop {
        i = skip_ws_back(b, i);
        if i == 0 {
            return None;
        }
        match b[i - 1] {
            b']' => {
                let mut depth = 0;
                let mut k = i;
                loop {
                    k = k.checked_sub(1)?;
                    match b[k] {
                        b']' => depth += 1,
                        b'[' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                i = k;
            }
            b')' => {
                // Only `@ start()` / `@ end()` end with a parenthesis here.
                let k = skip_ws_back(b, i - 1);
                let k = k.checked_sub(1).filter(|&k| b[k] == b'(')?;
                let w = word_start(b, k);
                if !matches!(&b[w..k], b"start" | b"end") {
                    return None;
                }
                let a = skip_ws_back(b, w);
                if a == 0 || b[a - 1] != b'@' {
                    return None;
                }
                i = a - 1;
            }
            b'}' => {
                let k = skip_ws_back(b, i - 1);
                let insert = if k > 0 && b[k - 1] == b'{' {
                    Insert::EmptyBraces
                } else {
                    Insert::AfterMatchers
                };
                return Some((i - 1, insert));
            }
            c if is_word_byte(c) || c == b'.' => {
                let mut w = i;
                while w > 0 && (is_word_byte(b[w - 1]) || b[w - 1] == b'.') {
                    w -= 1;
                }
                // A signed number is an offset's or an `@`'s operand.
                let mut s = w;
                if s > 0 && matches!(b[s - 1], b'-' | b'+') {
                    s -= 1;
                }
                let before = skip_ws_back(b, s);
                if before > 0 && b[before - 1] == b'@' {
                    i = before - 1;
                    continue;
                }
                let pw = word_start(b, before);
                if &b[pw..before] == b"offset" {
                    i = pw;
                    continue;
                }
                let word = std::str::from_utf8(&b[w..i]).ok()?;
                if !(b[w].is_ascii_alphabetic() || b[w] == b'_' || b[w] == b':')
                    || OPERATOR_WORDS.contains(&word)
                {
                    return None;
                }
                return Some((i, Insert::NewBraces));
            }
            _ => return None,
        }
    }
}

fn skip_ws_back(b: &[u8], mut i: usize) -> usize {
    while i > 0 && b[i - 1].is_ascii_whitespace() {
        i -= 1;
    }
    i
}

fn word_start(b: &[u8], mut i: usize) -> usize {
    while i > 0 && is_word_byte(b[i - 1]) {
        i -= 1;
    }
    i
}

/// Prometheus's parse-time rule: a range selector with a modifier may only be the argument
/// of the functions that know what to do with it.
pub fn check(expr: &Expr) -> Result<(), String> {
    let mut err = None;
    visit(expr, &mut err);
    err.map_or(Ok(()), Err)
}

fn visit(e: &Expr, err: &mut Option<String>) {
    if err.is_some() {
        return;
    }
    match e {
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                visit(p, err);
            }
            visit(&a.expr, err);
        }
        Expr::Unary(u) => visit(&u.expr, err),
        Expr::Binary(b) => {
            visit(&b.lhs, err);
            visit(&b.rhs, err);
        }
        Expr::Paren(p) => visit(&p.expr, err),
        Expr::Subquery(s) => visit(&s.expr, err),
        Expr::Call(c) => {
            for a in &c.args.args {
                if let Expr::MatrixSelector(ms) = super::eval::unparen(a) {
                    if let Some(m) = of(&ms.vs) {
                        if !m.allowed().contains(&c.func.name) {
                            *err = Some(format!(
                                "{} modifier can only be used with: {} - not with {}",
                                m.keyword(),
                                m.allowed().join(", "),
                                c.func.name
                            ));
                            return;
                        }
                    }
                }
                visit(a, err);
            }
        }
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::Extension(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modifiers_become_sentinel_matchers_on_their_selector() {
        let s = |m: &str| format!("{SENTINEL}=\"{m}\"");
        assert_eq!(
            mark("rate(x[5m] anchored)"),
            format!("rate(x{{{}}}[5m] )", s("anchored"))
        );
        assert_eq!(
            mark("increase(x{a=\"b\"}[1m] smoothed)"),
            format!("increase(x{{a=\"b\", {}}}[1m] )", s("smoothed"))
        );
        assert_eq!(
            mark("metric offset -100 smoothed + 0"),
            format!("metric{{{}}} offset -100  + 0", s("smoothed"))
        );
        assert_eq!(
            mark("metric @ 100 smoothed"),
            format!("metric{{{}}} @ 100 ", s("smoothed"))
        );
        assert_eq!(
            mark("x[1m] @ start() anchored"),
            format!("x{{{}}}[1m] @ start() ", s("anchored"))
        );
    }

    #[test]
    fn metric_names_and_strings_are_left_alone() {
        for q in [
            "anchored",
            "sum(smoothed)",
            "a and anchored",
            "label_replace(x, \"d\", \"anchored\", \"s\", \".*\")",
            "smoothed{a=\"b\"}",
            "rate(anchored[5m])",
        ] {
            assert_eq!(mark(q), q, "{q}");
        }
    }

    #[test]
    fn functions_that_cannot_use_a_modifier_are_refused() {
        let parse = |q: &str| promql_parser::parser::parse(&mark(q)).unwrap();
        assert_eq!(
            check(&parse("deriv(foo[3m] smoothed)")).unwrap_err(),
            "smoothed modifier can only be used with: delta, increase, rate - not with deriv"
        );
        assert!(check(&parse("resets(foo[3m] anchored)")).is_ok());
        assert_eq!(
            of_first(&parse("foo smoothed")),
            Some(RangeModifier::Smoothed)
        );
    }

    fn of_first(e: &Expr) -> Option<RangeModifier> {
        match e {
            Expr::VectorSelector(vs) => of(vs),
            _ => None,
        }
    }
}
