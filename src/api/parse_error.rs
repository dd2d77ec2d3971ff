//! PromQL parse errors as Prometheus words them: `<line>:<column>: parse error: <message>`.
//!
//! The `promql-parser` crate reports the same problems as Prometheus's parser but in its own
//! words and without a position. This module rewrites the common messages into Prometheus's
//! wording and finds the position Prometheus reports (the end of the input for errors found
//! there, else the start of the offending token or expression) by re-reading the query with a
//! small tokenizer. It is pure text: it never evaluates, and a message it does not recognise is
//! returned unchanged rather than dressed up with a guessed position.

use promql_parser::parser::{self, value::ValueType};

/// Prometheus's text for the parser error `message` about `query`; `message` unchanged when
/// it is not one of the errors mapped here.
pub fn prometheus_message(query: &str, message: &str) -> String {
    match translate(query, message) {
        Some((pos, text)) => {
            let (line, col) = line_column(query, pos);
            format!("{line}:{col}: parse error: {text}")
        }
        None => message.to_string(),
    }
}

/// Prometheus's text for a `match[]` selector that is not a bare series selector (its parser's
/// selector entry point): errors inside the braces as for expressions, anything after the
/// selector an `unexpected <token>` at that token. `parse error: <message>` when neither fits.
pub fn selector_message(selector: &str, message: &str) -> String {
    let q = Query::new(selector);
    let braces = message.contains("inside braces") || message.contains("label matcher");
    let found = if braces {
        translate(selector, message)
    } else {
        q.after_selector()
            .and_then(|i| Some((q.tokens[i].start, format!("unexpected {}", q.describe(i)?))))
    };
    match found {
        Some((pos, text)) => {
            let (line, col) = line_column(selector, pos);
            format!("{line}:{col}: parse error: {text}")
        }
        None => format!("parse error: {message}"),
    }
}

/// Prometheus's 1-based line and byte column of byte offset `pos`.
fn line_column(query: &str, pos: usize) -> (usize, usize) {
    let before = &query.as_bytes()[..pos.min(query.len())];
    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
    let col = match before.iter().rposition(|b| *b == b'\n') {
        Some(nl) => pos - nl,
        None => pos + 1,
    };
    (line, col)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ident,
    Number,
    Str,
    /// A string that reaches the end of the input.
    Unterminated,
    Open(u8),
    Close(u8),
    Comma,
    Op,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

fn tokenize(q: &str) -> Vec<Token> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' | b'`' => {
                i += 1;
                let mut closed = false;
                while i < b.len() {
                    if b[i] == b'\\' && c != b'`' {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    if b[i - 1] == c {
                        closed = true;
                        break;
                    }
                }
                i = i.min(b.len());
                if closed {
                    Kind::Str
                } else {
                    Kind::Unterminated
                }
            }
            b'(' | b'{' | b'[' => {
                i += 1;
                Kind::Open(c)
            }
            b')' | b'}' | b']' => {
                i += 1;
                Kind::Close(c)
            }
            b',' => {
                i += 1;
                Kind::Comma
            }
            c if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
                Kind::Number
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' && !inside_bracket(&out) => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                Kind::Ident
            }
            b'=' | b'!' | b'<' | b'>' => {
                i += 1;
                if i < b.len() && (b[i] == b'=' || b[i] == b'~') {
                    i += 1;
                }
                Kind::Op
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'@' | b':' => {
                i += 1;
                Kind::Op
            }
            _ => {
                // One UTF-8 character.
                i += 1;
                while i < b.len() && (b[i] & 0xC0) == 0x80 {
                    i += 1;
                }
                Kind::Other
            }
        };
        out.push(Token {
            kind,
            start,
            end: i,
        });
    }
    out
}

/// Whether the last unclosed opener is `[` (where `:` separates range and step).
fn inside_bracket(tokens: &[Token]) -> bool {
    let mut depth = 0i32;
    for t in tokens.iter().rev() {
        match t.kind {
            Kind::Close(_) => depth += 1,
            Kind::Open(c) if depth == 0 => return c == b'[',
            Kind::Open(_) => depth -= 1,
            _ => {}
        }
    }
    false
}

struct Query<'a> {
    text: &'a str,
    tokens: Vec<Token>,
}

const AGGREGATORS: &[&str] = &[
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "count_values",
    "quantile",
    "limitk",
    "limit_ratio",
];

const BINARY_OPS: &[&str] = &[
    "+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless", "atan2",
];

impl<'a> Query<'a> {
    fn new(text: &'a str) -> Self {
        Query {
            text,
            tokens: tokenize(text),
        }
    }

    fn text_of(&self, t: &Token) -> &'a str {
        &self.text[t.start..t.end]
    }

    fn is(&self, i: usize, kind: Kind, text: &str) -> bool {
        self.tokens
            .get(i)
            .is_some_and(|t| t.kind == kind && self.text_of(t) == text)
    }

    /// The index of the token closing the opener at `open`.
    fn closing(&self, open: usize) -> Option<usize> {
        let mut depth = 0;
        for (i, t) in self.tokens.iter().enumerate().skip(open) {
            match t.kind {
                Kind::Open(_) => depth += 1,
                Kind::Close(_) => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The top-level comma-separated token ranges between the opener at `open` and its closer.
    fn args(&self, open: usize) -> Vec<(usize, usize)> {
        let end = self.closing(open).unwrap_or(self.tokens.len());
        let mut out = Vec::new();
        let (mut depth, mut from) = (0, open + 1);
        for i in open + 1..end {
            match self.tokens[i].kind {
                Kind::Open(_) => depth += 1,
                Kind::Close(_) => depth -= 1,
                Kind::Comma if depth == 0 => {
                    out.push((from, i));
                    from = i + 1;
                }
                _ => {}
            }
        }
        if from < end {
            out.push((from, end));
        }
        out
    }

    /// The source text of tokens `from..to`.
    fn span(&self, (from, to): (usize, usize)) -> &'a str {
        match (
            self.tokens.get(from),
            to.checked_sub(1).and_then(|l| self.tokens.get(l)),
        ) {
            (Some(a), Some(b)) if from < to => &self.text[a.start..b.end],
            _ => "",
        }
    }

    fn start_of(&self, i: usize) -> usize {
        self.tokens.get(i).map_or(self.text.len(), |t| t.start)
    }

    /// The type of the expression in tokens `range`, when it parses on its own.
    fn type_of(&self, range: (usize, usize)) -> Option<ValueType> {
        parser::parse(self.span(range)).ok().map(|e| e.value_type())
    }

    /// Indexes of the `(` of every call of function `name`.
    fn calls(&self, name: &str) -> Vec<usize> {
        (0..self.tokens.len())
            .filter(|&i| self.is(i, Kind::Ident, name) && self.is(i + 1, Kind::Open(b'('), "("))
            .map(|i| i + 1)
            .collect()
    }

    /// The `(` of the argument list of every aggregation, with its name's token.
    fn aggregations(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for i in 0..self.tokens.len() {
            let t = self.tokens[i];
            if t.kind != Kind::Ident || !AGGREGATORS.contains(&self.text_of(&t)) {
                continue;
            }
            let mut j = i + 1;
            if self.is(j, Kind::Ident, "by") || self.is(j, Kind::Ident, "without") {
                match self.closing(j + 1) {
                    Some(c) => j = c + 1,
                    None => continue,
                }
            }
            if self.is(j, Kind::Open(b'('), "(") {
                out.push((i, j));
            }
        }
        out
    }

    /// Whether token `i` is a binary operator (not a unary sign).
    fn is_binary_op(&self, i: usize) -> bool {
        let t = self.tokens[i];
        let text = self.text_of(&t);
        if !BINARY_OPS.contains(&text) || !matches!(t.kind, Kind::Op | Kind::Ident) {
            return false;
        }
        // A sign after an operator, an opener or at the start is unary.
        i > 0
            && match self.tokens[i - 1].kind {
                Kind::Ident => !matches!(
                    self.text_of(&self.tokens[i - 1]),
                    "offset" | "bool" | "by" | "without" | "on" | "ignoring"
                ),
                Kind::Number | Kind::Str | Kind::Close(_) => true,
                _ => false,
            }
    }

    /// The operands of binary operators, group by group: each range is one operand of an
    /// operator at its nesting level, with a leading `bool`/`on(..)`/`group_left(..)` skipped.
    fn operands(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut groups = vec![(0, self.tokens.len())];
        for (i, t) in self.tokens.iter().enumerate() {
            if let Kind::Open(_) = t.kind {
                for a in self.args(i) {
                    groups.push(a);
                }
            }
        }
        for (from, to) in groups {
            let mut pieces = Vec::new();
            let (mut depth, mut piece) = (0, from);
            for i in from..to {
                match self.tokens[i].kind {
                    Kind::Open(_) => depth += 1,
                    Kind::Close(_) => depth -= 1,
                    _ if depth == 0 && self.is_binary_op(i) => {
                        pieces.push((piece, i));
                        piece = i + 1;
                    }
                    _ => {}
                }
            }
            if pieces.is_empty() {
                continue;
            }
            pieces.push((piece, to));
            for (mut a, b) in pieces {
                loop {
                    match self.tokens.get(a).map(|t| self.text_of(t)) {
                        Some("bool") => a += 1,
                        Some("on" | "ignoring" | "group_left" | "group_right")
                            if self.is(a + 1, Kind::Open(b'('), "(") =>
                        {
                            a = self.closing(a + 1).map_or(b, |c| c + 1)
                        }
                        Some("group_left" | "group_right") => a += 1,
                        _ => break,
                    }
                }
                if a < b {
                    out.push((a, b));
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// The start of the group (parenthesised, argument, or whole query) around token `i`.
    fn group_start(&self, i: usize) -> usize {
        let mut depth = 0;
        for j in (0..i).rev() {
            match self.tokens[j].kind {
                Kind::Close(_) => depth += 1,
                Kind::Open(_) if depth == 0 => return j + 1,
                Kind::Open(_) => depth -= 1,
                Kind::Comma if depth == 0 => return j + 1,
                _ => {}
            }
        }
        0
    }
}

/// `'name'` as promql-parser quotes names in its messages.
fn quoted_single(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('\'')?;
    let end = rest.find('\'')?;
    Some(rest[..end].to_string())
}

/// Prometheus's name of a value type in messages.
fn type_name(t: &str) -> &str {
    match t {
        "matrix" => "range vector",
        "vector" => "instant vector",
        other => other,
    }
}

fn parse_value_type(t: &str) -> Option<ValueType> {
    Some(match t {
        "matrix" => ValueType::Matrix,
        "vector" => ValueType::Vector,
        "scalar" => ValueType::Scalar,
        "string" => ValueType::String,
        _ => return None,
    })
}

/// The byte offset Prometheus reports and its message, for a recognised promql-parser error.
fn translate(query: &str, message: &str) -> Option<(usize, String)> {
    let q = Query::new(query);
    let eof = query.len();
    if message == "no expression found in input" {
        return Some((0, message.to_string()));
    }
    if message == "unexpected end of input inside brackets" {
        return Some((eof, "unclosed left bracket".to_string()));
    }
    if message == "unclosed left parenthesis" || message.starts_with("unexpected end of input") {
        return Some((eof, message.to_string()));
    }
    if message == "unexpected right parenthesis ')'" {
        let mut depth = 0i32;
        for t in &q.tokens {
            match t.kind {
                Kind::Open(b'(') => depth += 1,
                Kind::Close(b')') if depth == 0 => return Some((t.end, message.to_string())),
                Kind::Close(b')') => depth -= 1,
                _ => {}
            }
        }
        return None;
    }
    if message == "unexpected right brace '}'" {
        let mut depth = 0i32;
        for t in &q.tokens {
            match t.kind {
                Kind::Open(b'{') => depth += 1,
                Kind::Close(b'}') if depth == 0 => {
                    return Some((t.start, "unexpected character: '}'".to_string()))
                }
                Kind::Close(b'}') => depth -= 1,
                _ => {}
            }
        }
        return None;
    }
    if message.starts_with("unterminated quoted string") {
        let t = q.tokens.iter().find(|t| t.kind == Kind::Unterminated)?;
        return Some((t.start, "unterminated quoted string".to_string()));
    }
    if let Some(name) = quoted_single(message, "unknown function with name ") {
        let i = q.calls(&name).first().copied()?;
        return Some((
            q.start_of(i - 1),
            format!("unknown function with name \"{name}\""),
        ));
    }
    if let Some(rest) = message.strip_prefix("expected ") {
        if let Some((count, call)) = rest.split_once(" argument(s) in call to ") {
            let (name, got) = call.strip_prefix('\'')?.split_once("', ")?;
            let i = q.calls(name).first().copied()?;
            return Some((
                q.start_of(i - 1),
                format!("expected {count} argument(s) in call to \"{name}\", {got}"),
            ));
        }
        if let Some((expected, rest)) = rest
            .strip_prefix("type ")
            .and_then(|r| r.split_once(" in call to function '"))
        {
            let (name, got) = rest.split_once("', got ")?;
            let got_type = parse_value_type(got)?;
            let calls = q.calls(name);
            // The culprit is the argument that, replaced by a value of the expected type,
            // makes the call's argument types right.
            let stand_in = match expected {
                "matrix" => "x[1m]",
                "vector" => "x",
                "string" => "\"s\"",
                _ => "1",
            };
            let arg = calls
                .iter()
                .flat_map(|&open| {
                    let args = q.args(open);
                    let q = &q;
                    args.clone()
                        .into_iter()
                        .enumerate()
                        .filter_map(move |(i, a)| {
                            if q.type_of(a) != Some(got_type) {
                                return None;
                            }
                            let texts: Vec<&str> = args
                                .iter()
                                .enumerate()
                                .map(|(j, &b)| if i == j { stand_in } else { q.span(b) })
                                .collect();
                            let call = format!("{name}({})", texts.join(","));
                            let fixed = parser::parse(&call)
                                .err()
                                .is_none_or(|e| !e.contains(" in call to function "));
                            fixed.then_some(a)
                        })
                })
                .next()
                .or_else(|| {
                    calls
                        .first()
                        .and_then(|&open| q.args(open).first().copied())
                })?;
            return Some((
                q.start_of(arg.0),
                format!(
                    "expected type {} in call to function \"{name}\", got {}",
                    type_name(expected),
                    type_name(got)
                ),
            ));
        }
        if let Some((expected, got)) = rest
            .strip_prefix("type ")
            .and_then(|r| r.split_once(" in aggregation expression, got "))
        {
            let got_type = parse_value_type(got)?;
            // A scalar or string is expected only of the parameter (`topk`, `count_values`).
            let param = matches!(expected, "scalar" | "string");
            let arg = q
                .aggregations()
                .iter()
                .filter_map(|&(_, open)| {
                    let args = q.args(open);
                    if param {
                        args.first().copied()
                    } else {
                        args.last().copied()
                    }
                })
                .find(|&a| q.type_of(a) == Some(got_type))?;
            let what = if param { "parameter" } else { "expression" };
            return Some((
                q.start_of(arg.0),
                format!(
                    "expected type {} in aggregation {what}, got {}",
                    type_name(expected),
                    type_name(got)
                ),
            ));
        }
        return None;
    }
    if message.starts_with("wrong number of arguments for aggregate expression")
        || message.starts_with("no arguments for aggregate expression")
    {
        let (name, _) = q.aggregations().first().copied()?;
        return Some((q.start_of(name), message.to_string()));
    }
    if message == "binary expression must contain only scalar and instant vector types" {
        let operand = q.operands().into_iter().find(|&a| {
            matches!(
                q.type_of(a),
                Some(ValueType::Matrix) | Some(ValueType::String)
            )
        })?;
        return Some((q.start_of(operand.0), message.to_string()));
    }
    if let Some(op) = quoted_single(message, "set operator ") {
        let i =
            (0..q.tokens.len()).find(|&i| q.text_of(&q.tokens[i]) == op && q.is_binary_op(i))?;
        return Some((
            q.start_of(q.group_start(i)),
            format!("set operator \"{op}\" not allowed in binary scalar expression"),
        ));
    }
    if message == "comparisons between scalars must use BOOL modifier" {
        let i = (0..q.tokens.len()).find(|&i| {
            matches!(
                q.text_of(&q.tokens[i]),
                "==" | "!=" | ">" | "<" | ">=" | "<="
            ) && q.is_binary_op(i)
        })?;
        return Some((q.start_of(i), message.to_string()));
    }
    if message == "vector selector must contain at least one non-empty matcher" {
        let i = (0..q.tokens.len()).find(|&i| {
            q.tokens[i].kind == Kind::Open(b'{')
                && !(i > 0 && q.tokens[i - 1].kind == Kind::Ident)
                && q.closing(i).is_some_and(|c| {
                    parser::parse(q.span((i, c + 1)))
                        .err()
                        .is_some_and(|e| e == message)
                })
        })?;
        return Some((q.start_of(i), message.to_string()));
    }
    if let Some(rest) = message.strip_prefix("metric name must not be set twice: '") {
        let (a, b) = rest.split_once("' or '")?;
        let b = b.strip_suffix('\'')?;
        let i = (0..q.tokens.len())
            .find(|&i| q.is(i, Kind::Ident, a) && q.is(i + 1, Kind::Open(b'{'), "{"))?;
        return Some((
            q.start_of(i),
            format!("metric name must not be set twice: \"{a}\" or \"{b}\""),
        ));
    }
    if message == "duration must be greater than 0" {
        let t = q.tokens.iter().find(|t| {
            t.kind == Kind::Number
                && q.text_of(t)
                    .trim_end_matches(|c: char| c.is_ascii_alphabetic())
                    .parse::<f64>()
                    .is_ok_and(|v| v == 0.0)
                && q.text_of(t).ends_with(|c: char| c.is_ascii_alphabetic())
        })?;
        return Some((t.start, message.to_string()));
    }
    if message == "ranges only allowed for vector selectors" {
        let i = (1..q.tokens.len()).find(|&i| {
            q.tokens[i].kind == Kind::Open(b'[')
                && matches!(q.tokens[i - 1].kind, Kind::Close(b']') | Kind::Close(b')'))
                && !q.args(i).iter().any(|&(a, b)| {
                    (a..b).any(|j| q.is(j, Kind::Op, ":")) || q.span((a, b)).contains(':')
                })
        })?;
        return Some((q.start_of(i), message.to_string()));
    }
    if let Some(rest) = message.strip_prefix("ParseFloatError. ") {
        let number = rest.split_once(" can't be parsed")?.0;
        let t = q.tokens.iter().find(|t| q.text_of(t) == number)?;
        return Some((
            t.start,
            format!(
                "error parsing number: strconv.ParseFloat: parsing \"{number}\": invalid syntax"
            ),
        ));
    }
    if let Some(name) = quoted_single(
        message,
        "invalid label matcher, expected label matching operator after ",
    ) {
        let i = (0..q.tokens.len()).find(|&i| {
            q.is(i, Kind::Ident, &name)
                && matches!(
                    q.tokens.get(i + 1).map(|t| t.kind),
                    Some(Kind::Close(b'}') | Kind::Comma)
                )
        })?;
        let next = q.text_of(&q.tokens[i + 1]);
        return Some((
            q.tokens[i + 1].start,
            format!("unexpected \"{next}\" in label matching, expected label matching operator"),
        ));
    }
    if message == "invalid promql query" {
        let last = q.tokens.len().checked_sub(1)?;
        let text = q.text_of(&q.tokens[last]);
        if text == "by" || text == "without" {
            return Some((
                eof,
                "unexpected end of input in grouping opts, expected \"(\"".to_string(),
            ));
        }
        let operator = BINARY_OPS.contains(&text) || text == "bool";
        if operator && q.tokens[last].kind != Kind::Str {
            return Some((eof, "unexpected end of input".to_string()));
        }
        if let Some(i) = q.find_unexpected_identifier() {
            let t = q.tokens[i];
            return Some((
                t.start,
                format!("unexpected identifier \"{}\"", q.text_of(&t)),
            ));
        }
    }
    None
}

impl Query<'_> {
    /// The first token after a leading `name{...}` selector.
    fn after_selector(&self) -> Option<usize> {
        let mut i = 0;
        if self.tokens.first()?.kind == Kind::Ident {
            i = 1;
        }
        if self
            .tokens
            .get(i)
            .is_some_and(|t| t.kind == Kind::Open(b'{'))
        {
            i = self.closing(i)? + 1;
        }
        (i < self.tokens.len()).then_some(i)
    }

    /// How Prometheus's parser names token `i` in an `unexpected ...` message.
    fn describe(&self, i: usize) -> Option<String> {
        let t = self.tokens[i];
        let text = self.text_of(&t);
        const KEYWORDS: &[&str] = &[
            "offset",
            "by",
            "without",
            "on",
            "ignoring",
            "group_left",
            "group_right",
            "bool",
        ];
        const WORD_OPS: &[&str] = &["and", "or", "unless", "atan2"];
        Some(match t.kind {
            Kind::Open(_) | Kind::Close(_) | Kind::Comma => format!("\"{text}\""),
            Kind::Op if text == "@" || text == ":" => format!("\"{text}\""),
            Kind::Op => format!("<op:{text}>"),
            Kind::Ident if KEYWORDS.contains(&text) => format!("<{text}>"),
            Kind::Ident if WORD_OPS.contains(&text) => format!("<op:{text}>"),
            Kind::Ident => format!("identifier \"{text}\""),
            Kind::Number => format!("number \"{text}\""),
            _ => return None,
        })
    }

    /// Two operands in a row at the top level (`foo bar`): the second is what Prometheus's
    /// parser calls an unexpected identifier.
    fn find_unexpected_identifier(&self) -> Option<usize> {
        let mut depth = 0;
        for i in 1..self.tokens.len() {
            match self.tokens[i].kind {
                Kind::Open(_) => depth += 1,
                Kind::Close(_) => depth -= 1,
                Kind::Ident if depth == 0 => {
                    let prev = self.tokens[i - 1];
                    let text = self.text_of(&self.tokens[i]);
                    let ends_operand = match prev.kind {
                        Kind::Ident => !matches!(
                            self.text_of(&prev),
                            "offset"
                                | "bool"
                                | "by"
                                | "without"
                                | "on"
                                | "ignoring"
                                | "group_left"
                                | "group_right"
                                | "and"
                                | "or"
                                | "unless"
                                | "atan2"
                        ),
                        Kind::Close(_) | Kind::Number | Kind::Str => true,
                        _ => false,
                    };
                    let keyword = matches!(
                        text,
                        "offset"
                            | "bool"
                            | "by"
                            | "without"
                            | "on"
                            | "ignoring"
                            | "group_left"
                            | "group_right"
                            | "and"
                            | "or"
                            | "unless"
                            | "atan2"
                    );
                    if ends_operand && !keyword {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(query: &str) -> String {
        match parser::parse(query) {
            Ok(_) => panic!("{query:?} parses"),
            Err(e) => prometheus_message(query, &e),
        }
    }

    #[test]
    fn messages_and_positions_are_prometheus_2_42s() {
        // Each expected text is what Prometheus 2.42's /api/v1/query answered (after
        // `invalid parameter "query": `).
        for (query, expected) in [
            ("", "1:1: parse error: no expression found in input"),
            ("foo(", "1:5: parse error: unclosed left parenthesis"),
            ("((x)", "1:5: parse error: unclosed left parenthesis"),
            ("rate(g_temp)", "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"),
            ("sum(\n  rate(x)\n)", "2:8: parse error: expected type range vector in call to function \"rate\", got instant vector"),
            ("histogram_quantile(0.9, x[5m])", "1:25: parse error: expected type instant vector in call to function \"histogram_quantile\", got range vector"),
            ("sum(x) + rate(y)", "1:15: parse error: expected type range vector in call to function \"rate\", got instant vector"),
            ("round(x, y)", "1:10: parse error: expected type scalar in call to function \"round\", got instant vector"),
            ("rate(1)", "1:6: parse error: expected type range vector in call to function \"rate\", got scalar"),
            ("1 +", "1:4: parse error: unexpected end of input"),
            ("1 + ", "1:5: parse error: unexpected end of input"),
            ("-", "1:2: parse error: unexpected end of input"),
            ("x ==bool", "1:9: parse error: unexpected end of input"),
            ("foo{", "1:5: parse error: unexpected end of input inside braces"),
            ("foo{a=\"b\"", "1:10: parse error: unexpected end of input inside braces"),
            ("foo[5m", "1:7: parse error: unclosed left bracket"),
            ("foo[5m:", "1:8: parse error: unclosed left bracket"),
            ("sum(x) by", "1:10: parse error: unexpected end of input in grouping opts, expected \"(\""),
            (")", "1:2: parse error: unexpected right parenthesis ')'"),
            ("x)", "1:3: parse error: unexpected right parenthesis ')'"),
            ("x}", "1:2: parse error: unexpected character: '}'"),
            ("foo bar", "1:5: parse error: unexpected identifier \"bar\""),
            ("rate(x[5m], 1)", "1:1: parse error: expected 1 argument(s) in call to \"rate\", got 2"),
            ("label_join(x, 1)", "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 2"),
            ("nofunc(x)", "1:1: parse error: unknown function with name \"nofunc\""),
            ("x[5m] + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types"),
            ("foo + bar[5m]", "1:7: parse error: binary expression must contain only scalar and instant vector types"),
            ("(x[5m]) + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types"),
            ("\"a\" + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types"),
            ("sum(x[5m])", "1:5: parse error: expected type instant vector in aggregation expression, got range vector"),
            ("sum by (a) (x[5m])", "1:13: parse error: expected type instant vector in aggregation expression, got range vector"),
            ("topk(x[5m], y)", "1:6: parse error: expected type scalar in aggregation parameter, got range vector"),
            ("count_values(1, x)", "1:14: parse error: expected type string in aggregation parameter, got scalar"),
            ("x offset", "1:9: parse error: unexpected end of input in offset, expected duration"),
            ("x @ ", "1:5: parse error: unexpected end of input in @, expected timestamp"),
            ("x and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"),
            ("a + (b and 1)", "1:6: parse error: set operator \"and\" not allowed in binary scalar expression"),
            ("{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
            ("{__name__=\"a\"} + {}", "1:18: parse error: vector selector must contain at least one non-empty matcher"),
            ("x{__name__=\"y\"}", "1:1: parse error: metric name must not be set twice: \"x\" or \"y\""),
            (" 1 ==  2", "1:4: parse error: comparisons between scalars must use BOOL modifier"),
            ("x[5m][5m]", "1:6: parse error: ranges only allowed for vector selectors"),
            ("'abc", "1:1: parse error: unterminated quoted string"),
            ("1e", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e\": invalid syntax"),
            ("x[0s]", "1:3: parse error: duration must be greater than 0"),
            ("x[1m:0s]", "1:6: parse error: duration must be greater than 0"),
            ("x{a}", "1:4: parse error: unexpected \"}\" in label matching, expected label matching operator"),
            ("topk(x)", "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1"),
        ] {
            assert_eq!(ours(query), expected, "{query:?}");
        }
    }

    #[test]
    fn selector_errors_are_prometheus_2_42s() {
        // Each expected text is what Prometheus 2.42's /api/v1/series answered for match[].
        for (selector, expected) in [
            ("foo(", "1:4: parse error: unexpected \"(\""),
            ("sum(x)", "1:4: parse error: unexpected \"(\""),
            ("x[5m]", "1:2: parse error: unexpected \"[\""),
            ("x offset 5m", "1:3: parse error: unexpected <offset>"),
            ("1", "1:1: parse error: unexpected number \"1\""),
            ("foo bar", "1:5: parse error: unexpected identifier \"bar\""),
            ("foo{", "1:5: parse error: unexpected end of input inside braces"),
            ("x{a=\"b\"", "1:8: parse error: unexpected end of input inside braces"),
            ("foo{a}", "1:6: parse error: unexpected \"}\" in label matching, expected label matching operator"),
        ] {
            let message = match parser::parse(selector) {
                Err(e) => e,
                Ok(_) => "not a selector".to_string(),
            };
            assert_eq!(selector_message(selector, &message), expected, "{selector:?}");
        }
    }

    #[test]
    fn unknown_messages_are_left_alone() {
        assert_eq!(prometheus_message("x", "something else"), "something else");
    }
}
