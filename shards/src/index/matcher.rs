//! Label matchers (`job="api"`, `path=~"/v1/.*"`) with Prometheus 3 semantics: a regex is
//! RE2 syntax, fully anchored as `^(?s:<re>)$`, and an absent label matches as "". This file
//! owns deciding whether one value matches; choosing which series to read is the index's
//! job (`mem_postings`), which uses `set_matches` to look values up instead of scanning.
//!
//! Like Prometheus's `FastRegexMatcher`, a regex is analysed once at construction so common
//! shapes never run the regex engine: a literal or an alternation of literals becomes a
//! set lookup, `.*`/`.+` become constant checks, `foo.*`/`.*foo`/`.*foo.*` string tests.
//! The analysis works on the parsed expression, never on the source text, so `a\.b` or
//! `(a|b)` are recognised and `a.b` is not mistaken for a literal.

use regex::Regex;
use regex_syntax::ast::{self, Ast};
use regex_syntax::hir::{literal::Extractor, Class, Hir, HirKind};
use std::fmt;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchType {
    /// `!=` and `!~`: they match the values their positive form does not.
    pub fn is_negative(self) -> bool {
        matches!(self, MatchType::NotEqual | MatchType::NotRegex)
    }

    /// The operator as PromQL writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        }
    }
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MatcherError {
    #[error("invalid regular expression {regex:?} in matcher for label {name:?}: {reason}")]
    InvalidRegex {
        name: String,
        regex: String,
        reason: String,
    },
}

/// One label matcher. `kind`, `name` and `value` are public for reading; build a new
/// matcher rather than mutating them, since the compiled form is derived from them.
#[derive(Clone)]
pub struct Matcher {
    pub kind: MatchType,
    pub name: String,
    pub value: String,
    re: ValueMatcher,
}

/// The positive test of a matcher (negative kinds invert its answer).
#[derive(Clone)]
enum ValueMatcher {
    /// `=` or a regex matching exactly one string.
    Literal(String),
    /// A regex matching exactly a finite set of strings; sorted and deduplicated.
    Set(Box<[String]>),
    /// `.*`: everything.
    Any,
    /// `.+`: everything but "".
    NonEmpty,
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(Box<Regex>),
}

impl Matcher {
    pub fn new(
        kind: MatchType,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let (name, value) = (name.into(), value.into());
        let re = match kind {
            MatchType::Equal | MatchType::NotEqual => ValueMatcher::Literal(value.clone()),
            MatchType::Regex | MatchType::NotRegex => {
                compile(&value).map_err(|reason| MatcherError::InvalidRegex {
                    name: name.clone(),
                    regex: value.clone(),
                    reason,
                })?
            }
        };
        Ok(Matcher {
            kind,
            name,
            value,
            re,
        })
    }

    /// Whether a series whose label `name` has value `v` is selected; `v` is "" when the
    /// series lacks the label.
    #[inline]
    pub fn matches(&self, v: &str) -> bool {
        self.re.matches(v) != self.kind.is_negative()
    }

    /// Whether series lacking the label are selected.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// The finite set of values the positive form (`=`/`=~` of this matcher's value)
    /// matches, sorted, if it is one: the index looks these up directly instead of
    /// testing every value of the label. For a negative matcher this is the set it
    /// excludes.
    pub fn set_matches(&self) -> Option<&[String]> {
        match &self.re {
            ValueMatcher::Literal(s) => Some(std::slice::from_ref(s)),
            ValueMatcher::Set(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the positive form matches every string (`.*`).
    pub fn positive_matches_all(&self) -> bool {
        matches!(self.re, ValueMatcher::Any)
    }

    /// Whether the positive form matches exactly the non-empty strings (`.+`).
    pub fn positive_matches_non_empty(&self) -> bool {
        matches!(self.re, ValueMatcher::NonEmpty)
    }

    /// The matcher selecting the opposite values: `=` <-> `!=`, `=~` <-> `!~`.
    pub fn inverse(&self) -> Matcher {
        let kind = match self.kind {
            MatchType::Equal => MatchType::NotEqual,
            MatchType::NotEqual => MatchType::Equal,
            MatchType::Regex => MatchType::NotRegex,
            MatchType::NotRegex => MatchType::Regex,
        };
        Matcher {
            kind,
            ..self.clone()
        }
    }
}

impl ValueMatcher {
    #[inline]
    fn matches(&self, v: &str) -> bool {
        match self {
            ValueMatcher::Literal(s) => s == v,
            ValueMatcher::Set(s) => s.binary_search_by(|x| x.as_str().cmp(v)).is_ok(),
            ValueMatcher::Any => true,
            ValueMatcher::NonEmpty => !v.is_empty(),
            ValueMatcher::Prefix(p) => v.starts_with(p.as_str()),
            ValueMatcher::Suffix(s) => v.ends_with(s.as_str()),
            ValueMatcher::Contains(c) => v.contains(c.as_str()),
            ValueMatcher::Regex(re) => re.is_match(v),
        }
    }
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.kind == o.kind && self.name == o.name && self.value == o.value
    }
}

impl Eq for Matcher {}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `name<op>"value"`, the value quoted as Go's `strconv.Quote` does, as Prometheus prints
/// matchers in selectors and error messages.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, self.kind)?;
        write_go_quoted(f, &self.value)
    }
}

/// Writes `s` quoted as Go's `strconv.Quote` (`%q`) does: how Prometheus shows label values
/// and offending parameters in its messages.
pub fn write_go_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\x07' => f.write_str("\\a")?,
            '\x08' => f.write_str("\\b")?,
            '\x0c' => f.write_str("\\f")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\x0b' => f.write_str("\\v")?,
            // Go escapes what Unicode calls non-printable; control characters and the
            // separators/format characters below cover what label values realistically hold.
            ' ' => f.write_char(' ')?,
            c if c < ' ' || c == '\x7f' => write!(f, "\\x{:02x}", c as u32)?,
            // Go prints no space but ASCII's as it is (U+00A0, U+2000..., category Z).
            c if c.is_control() || c.is_whitespace() || is_go_unprintable(c) => {
                if (c as u32) < 0x10000 {
                    write!(f, "\\u{:04x}", c as u32)?
                } else {
                    write!(f, "\\U{:08x}", c as u32)?
                }
            }
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

fn is_go_unprintable(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

/// Parses `re` as RE2 would (Perl syntax, `.` matching newline, `\d \s \w` ASCII-only)
/// and picks the cheapest exact implementation of its anchored form.
fn compile(re: &str) -> Result<ValueMatcher, String> {
    let mut parsed = ast::parse::Parser::new()
        .parse(re)
        .map_err(|e| e.kind().to_string())?;
    perl_classes_to_ascii(&mut parsed);
    let hir = regex_syntax::hir::translate::TranslatorBuilder::new()
        .dot_matches_new_line(true)
        .build()
        .translate(re, &parsed)
        .map_err(|e| e.kind().to_string())?;
    if let Some(fast) = fast_path(&hir) {
        return Ok(fast);
    }
    // Compiled from the rewritten syntax tree printed back, not from the HIR: the AST
    // printer round-trips exactly, the HIR one does not (it prints `(a+)?` as `a+?`).
    let anchored = format!("^(?s:{parsed})$");
    let compiled = Regex::new(&anchored).map_err(|e| e.to_string())?;
    Ok(ValueMatcher::Regex(Box::new(compiled)))
}

fn fast_path(hir: &Hir) -> Option<ValueMatcher> {
    // Look-arounds (`\b`, `^` inside) constrain neighbours, which literal extraction ignores.
    if hir.properties().look_set().is_empty() {
        let mut ex = Extractor::new();
        ex.limit_literal_len(4096).limit_total(256);
        let seq = ex.extract(hir);
        if seq.is_finite() && seq.is_exact() {
            let mut set = Vec::new();
            for lit in seq.literals().unwrap_or_default() {
                set.push(String::from_utf8(lit.as_bytes().to_vec()).ok()?);
            }
            set.sort_unstable();
            set.dedup();
            return Some(match <[String; 1]>::try_from(set) {
                Ok([one]) => ValueMatcher::Literal(one),
                Err(set) => ValueMatcher::Set(set.into_boxed_slice()),
            });
        }
    }
    let parts: &[Hir] = match strip_captures(hir).kind() {
        HirKind::Concat(parts) => parts,
        _ => std::slice::from_ref(strip_captures(hir)),
    };
    let parts: Vec<&Hir> = parts.iter().map(strip_captures).collect();
    match parts.as_slice() {
        [a] if any_run(a) == Some(0) => Some(ValueMatcher::Any),
        [a] if any_run(a) == Some(1) => Some(ValueMatcher::NonEmpty),
        [p, a] if any_run(a) == Some(0) => Some(ValueMatcher::Prefix(literal(p)?)),
        [a, s] if any_run(a) == Some(0) => Some(ValueMatcher::Suffix(literal(s)?)),
        [a, c, b] if any_run(a) == Some(0) && any_run(b) == Some(0) => {
            Some(ValueMatcher::Contains(literal(c)?))
        }
        _ => None,
    }
}

fn strip_captures(mut h: &Hir) -> &Hir {
    while let HirKind::Capture(c) = h.kind() {
        h = &c.sub;
    }
    h
}

/// `Some(n)` if `h` is "any character, at least `n` times, unbounded".
fn any_run(h: &Hir) -> Option<u32> {
    let HirKind::Repetition(r) = h.kind() else {
        return None;
    };
    let HirKind::Class(Class::Unicode(c)) = strip_captures(&r.sub).kind() else {
        return None;
    };
    let full = matches!(c.ranges(), [r] if r.start() == '\0' && r.end() == char::MAX);
    (full && r.max.is_none()).then_some(r.min)
}

fn literal(h: &Hir) -> Option<String> {
    match h.kind() {
        HirKind::Literal(l) => String::from_utf8(l.0.to_vec()).ok(),
        _ => None,
    }
}

/// RE2's `\d`, `\s` and `\w` are ASCII-only where Rust's are Unicode-aware: replace each
/// with the explicit class RE2 means, keeping every other construct untouched.
fn perl_classes_to_ascii(a: &mut Ast) {
    match a {
        Ast::ClassPerl(p) => {
            let class = re2_perl_class(&p.kind, p.negated, p.span);
            *a = Ast::ClassBracketed(Box::new(class));
        }
        Ast::ClassBracketed(b) => set_to_ascii(&mut b.kind),
        Ast::Repetition(r) => perl_classes_to_ascii(&mut r.ast),
        Ast::Group(g) => perl_classes_to_ascii(&mut g.ast),
        Ast::Alternation(x) => x.asts.iter_mut().for_each(perl_classes_to_ascii),
        Ast::Concat(x) => x.asts.iter_mut().for_each(perl_classes_to_ascii),
        Ast::Empty(_)
        | Ast::Flags(_)
        | Ast::Literal(_)
        | Ast::Dot(_)
        | Ast::Assertion(_)
        | Ast::ClassUnicode(_) => {}
    }
}

fn set_to_ascii(s: &mut ast::ClassSet) {
    match s {
        ast::ClassSet::Item(i) => item_to_ascii(i),
        ast::ClassSet::BinaryOp(op) => {
            set_to_ascii(&mut op.lhs);
            set_to_ascii(&mut op.rhs);
        }
    }
}

fn item_to_ascii(i: &mut ast::ClassSetItem) {
    match i {
        ast::ClassSetItem::Perl(p) => {
            let class = re2_perl_class(&p.kind, p.negated, p.span);
            *i = ast::ClassSetItem::Bracketed(Box::new(class));
        }
        ast::ClassSetItem::Bracketed(b) => set_to_ascii(&mut b.kind),
        ast::ClassSetItem::Union(u) => u.items.iter_mut().for_each(item_to_ascii),
        _ => {}
    }
}

fn re2_perl_class(
    kind: &ast::ClassPerlKind,
    negated: bool,
    span: ast::Span,
) -> ast::ClassBracketed {
    let lit = |c| ast::Literal {
        span,
        kind: ast::LiteralKind::Verbatim,
        c,
    };
    let range = |a, b| {
        ast::ClassSetItem::Range(ast::ClassSetRange {
            span,
            start: lit(a),
            end: lit(b),
        })
    };
    let items = match kind {
        ast::ClassPerlKind::Digit => vec![range('0', '9')],
        ast::ClassPerlKind::Word => vec![
            range('0', '9'),
            range('A', 'Z'),
            range('a', 'z'),
            ast::ClassSetItem::Literal(lit('_')),
        ],
        ast::ClassPerlKind::Space => ['\t', '\n', '\x0c', '\r', ' ']
            .into_iter()
            .map(|c| ast::ClassSetItem::Literal(lit(c)))
            .collect(),
    };
    ast::ClassBracketed {
        span,
        negated,
        kind: ast::ClassSet::Item(ast::ClassSetItem::Union(ast::ClassSetUnion { span, items })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(kind: MatchType, v: &str) -> Matcher {
        Matcher::new(kind, "l", v).unwrap()
    }

    fn shape(v: &str) -> &'static str {
        match m(MatchType::Regex, v).re {
            ValueMatcher::Literal(_) => "literal",
            ValueMatcher::Set(_) => "set",
            ValueMatcher::Any => "any",
            ValueMatcher::NonEmpty => "nonempty",
            ValueMatcher::Prefix(_) => "prefix",
            ValueMatcher::Suffix(_) => "suffix",
            ValueMatcher::Contains(_) => "contains",
            ValueMatcher::Regex(_) => "regex",
        }
    }

    #[test]
    fn fast_paths_are_recognised() {
        assert_eq!(shape("foo"), "literal");
        assert_eq!(shape(r"a\.b"), "literal");
        assert_eq!(shape(""), "literal");
        assert_eq!(shape("a|b|c"), "set");
        assert_eq!(shape("(foo|bar)"), "set");
        assert_eq!(shape("foo|foobar"), "set");
        assert_eq!(shape("api-(1|2)"), "set");
        assert_eq!(shape(".*"), "any");
        assert_eq!(shape("(.*)"), "any");
        assert_eq!(shape(".*?"), "any");
        assert_eq!(shape(".+"), "nonempty");
        assert_eq!(shape("foo.*"), "prefix");
        assert_eq!(shape(".*foo"), "suffix");
        assert_eq!(shape(".*foo.*"), "contains");
        assert_eq!(shape("a.b"), "regex");
        assert_eq!(shape("foo.+"), "regex");
        assert_eq!(shape(r"\bfoo"), "regex");
        assert_eq!(shape("[a-z]+"), "regex");
        assert_eq!(shape("(?i)ab"), "set");
        assert_eq!(shape(&"x".repeat(300)), "literal");
        let ci = m(MatchType::Regex, "(?i)ab");
        assert!(ci.matches("aB") && ci.matches("AB") && !ci.matches("abc"));
        assert_eq!(
            m(MatchType::Regex, "foo|foobar").set_matches().unwrap(),
            ["foo", "foobar"]
        );
    }

    #[test]
    fn anchored_semantics() {
        let r = m(MatchType::Regex, "a.*");
        assert!(r.matches("abc") && r.matches("a") && !r.matches("ba"));
        let r = m(MatchType::Regex, "foo|bar");
        assert!(r.matches("foo") && r.matches("bar") && !r.matches("foobar"));
        assert!(!r.matches_empty());
        // Top-level alternation stays inside the anchors on the compiled path too.
        let r = m(MatchType::Regex, "a.c|x+");
        assert!(r.matches("abc") && r.matches("xx") && !r.matches("abcx") && !r.matches("zxx"));
        // `.` matches newline (?s).
        assert!(m(MatchType::Regex, "a.b").matches("a\nb"));
        assert!(m(MatchType::Regex, ".*").matches("a\nb"));
        // Empty regex matches only "".
        let r = m(MatchType::Regex, "");
        assert!(r.matches_empty() && !r.matches("a"));
        assert!(m(MatchType::Regex, "|a").matches_empty());
        assert!(m(MatchType::Regex, "a?").matches_empty());
    }

    #[test]
    fn negations_and_equality() {
        assert!(m(MatchType::Equal, "").matches_empty());
        assert!(!m(MatchType::Equal, "x").matches_empty());
        assert!(m(MatchType::NotEqual, "x").matches_empty());
        assert!(!m(MatchType::NotEqual, "").matches_empty());
        assert!(!m(MatchType::NotEqual, "x").matches("x"));
        assert!(m(MatchType::NotRegex, "a|b").matches("c"));
        assert!(!m(MatchType::NotRegex, "a|b").matches("b"));
        assert!(!m(MatchType::NotRegex, ".*").matches(""));
        assert!(m(MatchType::NotRegex, ".+").matches_empty());
        let inv = m(MatchType::NotRegex, "a+").inverse();
        assert_eq!(inv.kind, MatchType::Regex);
        assert!(inv.matches("aa"));
    }

    #[test]
    fn re2_ascii_perl_classes() {
        let d = m(MatchType::Regex, r"\d+");
        assert!(d.matches("123") && !d.matches("١٢٣"));
        let w = m(MatchType::Regex, r"[\w-]+");
        assert!(w.matches("a_b-9") && !w.matches("é"));
        let nd = m(MatchType::Regex, r"\D");
        assert!(nd.matches("é") && !nd.matches("1"));
        let s = m(MatchType::Regex, r"a\sb");
        assert!(s.matches("a\tb") && !s.matches("a\u{a0}b") && !s.matches("a\x0bb"));
        let ns = m(MatchType::Regex, r"[^\S]");
        assert!(ns.matches(" ") && !ns.matches("x"));
        // Unicode classes still work as in RE2.
        assert!(m(MatchType::Regex, r"\pL+").matches("héllo"));
    }

    #[test]
    fn errors() {
        let e = Matcher::new(MatchType::Regex, "job", "a(").unwrap_err();
        assert!(matches!(e, MatcherError::InvalidRegex { .. }));
        assert!(e.to_string().contains("job"));
        // Cannot escape the anchoring group.
        assert!(Matcher::new(MatchType::Regex, "job", "a)|(b").is_err());
        // Equality values are never parsed.
        assert!(Matcher::new(MatchType::Equal, "job", "a(").is_ok());
    }

    #[test]
    fn display_like_prometheus() {
        assert_eq!(
            Matcher::new(MatchType::Regex, "job", "a.*")
                .unwrap()
                .to_string(),
            r#"job=~"a.*""#
        );
        assert_eq!(
            Matcher::new(MatchType::NotEqual, "a", "x")
                .unwrap()
                .to_string(),
            r#"a!="x""#
        );
        assert_eq!(
            Matcher::new(MatchType::NotRegex, "a", "")
                .unwrap()
                .to_string(),
            r#"a!~"""#
        );
        assert_eq!(
            Matcher::new(MatchType::Equal, "a", "q\"\\\n\t\x01é\u{2028}")
                .unwrap()
                .to_string(),
            r#"a="q\"\\\n\t\x01é\u2028""#
        );
        assert_eq!(
            Matcher::new(MatchType::Regex, "a", r"\d\.")
                .unwrap()
                .to_string(),
            r#"a=~"\\d\\.""#
        );
    }

    /// Small regexes over a tiny alphabet, so fast paths and the compiled path both get
    /// exercised and strings often match.
    fn regex_strategy() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("ab".to_string()),
            Just(".".to_string()),
            Just("[ab]".to_string()),
            Just(r"\d".to_string()),
            Just("".to_string()),
        ];
        leaf.prop_recursive(4, 16, 3, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("{x}{y}")),
                (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("{x}|{y}")),
                inner.clone().prop_map(|x| format!("({x})")),
                inner.clone().prop_map(|x| format!("(?:{x})*")),
                inner.clone().prop_map(|x| format!("(?:{x})+")),
                inner.prop_map(|x| format!("(?:{x})?")),
            ]
        })
    }

    proptest! {
        #[test]
        fn fast_paths_agree_with_the_regex_engine(
            re in regex_strategy(),
            values in proptest::collection::vec("[ab1\n]{0,4}", 1..20),
        ) {
            let matcher = m(MatchType::Regex, &re);
            let reference = Regex::new(&format!("^(?s:{re})$")).unwrap();
            let not = m(MatchType::NotRegex, &re);
            for v in &values {
                prop_assert_eq!(matcher.matches(v), reference.is_match(v), "{} on {:?}", re, v);
                prop_assert_eq!(not.matches(v), !reference.is_match(v));
            }
            if let Some(set) = matcher.set_matches() {
                for s in set {
                    prop_assert!(reference.is_match(s), "{} set member {:?}", re, s);
                }
            }
        }
    }
}
