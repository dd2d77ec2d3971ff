//! The syntax of Go's `text/template` as Prometheus parses rule templates: text and actions,
//! trim markers (`{{-`, `-}}`), comments, pipelines with `$x :=` / `$x =`, `if`/`else if`/
//! `else`, `with`, `range` (with `$i, $v :=`, `break`, `continue`), `define`, `template` and
//! `block`. Everything Go refuses when it parses (an unknown function, an undefined variable,
//! an unclosed action, a misplaced `else`/`end`/`break`) is refused here, because Prometheus
//! refuses such a rule file when it loads. Pure: text in, tree out.

use std::collections::HashMap;

use super::TemplateError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    Template(String, Option<Pipeline>),
    Break,
    Continue,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pipeline {
    /// Variables declared (`:=`) or assigned (`=`) with the pipeline's value.
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Vec<Operand>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Operand {
    Str(String),
    /// A number constant without `.`, `e` or `p`: Go passes it to functions as an `int`.
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Dot,
    /// `.a.b`
    Field(Vec<String>),
    /// `$x.a.b` (`$` is the data the template was executed with).
    Var(String, Vec<String>),
    Func(String),
    /// `(pipeline).a.b`
    Paren(Box<Pipeline>, Vec<String>),
}

/// A parsed template: its main body and the templates it defines.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Tree {
    pub main: Vec<Node>,
    pub defs: HashMap<String, Vec<Node>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Var(String),
    Field(String),
    Dot,
    Str(String),
    Int(i64),
    Float(f64),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

/// A token and whether white space came before it (`$x.y` is one operand, `$x .y` two).
type Spaced = (Tok, bool);

enum Piece {
    Text(String),
    Action(Vec<Spaced>),
}

fn perr(m: impl Into<String>) -> TemplateError {
    TemplateError::Parse(m.into())
}

/// Go's white space in templates: what trim markers remove.
fn is_go_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn lex(src: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    while pos <= src.len() {
        let rest = &src[pos..];
        let open = rest.find("{{");
        let mut text = &rest[..open.unwrap_or(rest.len())];
        if trim_next {
            text = text.trim_start_matches(is_go_space);
            trim_next = false;
        }
        let Some(open) = open else {
            if !text.is_empty() {
                pieces.push(Piece::Text(text.to_string()));
            }
            break;
        };
        let mut at = pos + open + 2;
        let after = &src[at..];
        if after.starts_with('-') && after[1..].starts_with(is_go_space) {
            text = text.trim_end_matches(is_go_space);
            at += 2;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_string()));
        }
        if src[at..].starts_with("/*") {
            let end = src[at..]
                .find("*/")
                .ok_or_else(|| perr("unclosed comment"))?;
            at += end + 2;
            if src[at..].starts_with(" -}}") {
                trim_next = true;
                at += 4;
            } else if src[at..].starts_with("}}") {
                at += 2;
            } else {
                return Err(perr("comment ends before closing delimiter"));
            }
            pos = at;
            continue;
        }
        let (toks, end, trim) = lex_action(src, at)?;
        pieces.push(Piece::Action(toks));
        trim_next = trim;
        pos = end;
    }
    Ok(pieces)
}

/// Lexes one action from `at` (just after `{{`); returns its tokens, the offset after its
/// `}}` and whether it ended with a trim marker.
fn lex_action(src: &str, mut i: usize) -> Result<(Vec<Spaced>, usize, bool), TemplateError> {
    let mut toks = Vec::new();
    let mut spaced = false;
    loop {
        let rest = &src[i..];
        if rest.starts_with(" -}}") {
            return Ok((toks, i + 4, true));
        }
        if rest.starts_with("}}") {
            return Ok((toks, i + 2, false));
        }
        let Some(c) = rest.chars().next() else {
            return Err(perr("unclosed action"));
        };
        if is_go_space(c) {
            i += 1;
            spaced = true;
            continue;
        }
        let tok = match c {
            '|' => {
                i += 1;
                Tok::Pipe
            }
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '=' => {
                i += 1;
                Tok::Assign
            }
            ':' if rest.starts_with(":=") => {
                i += 2;
                Tok::Declare
            }
            '"' => {
                let (s, len) = quoted(rest)?;
                i += len;
                Tok::Str(s)
            }
            '`' => {
                let end = rest[1..]
                    .find('`')
                    .ok_or_else(|| perr("unterminated raw quoted string"))?;
                i += end + 2;
                Tok::Str(rest[1..1 + end].to_string())
            }
            '\'' => {
                let mut chars = rest[1..].chars();
                let ch = chars
                    .next()
                    .ok_or_else(|| perr("unterminated character constant"))?;
                if ch == '\\' || chars.next() != Some('\'') {
                    return Err(perr("unsupported character constant"));
                }
                i += 2 + ch.len_utf8();
                Tok::Int(ch as i64)
            }
            '$' => {
                let n = ident_len(&rest[1..]);
                i += 1 + n;
                Tok::Var(rest[..1 + n].to_string())
            }
            '.' if !rest[1..].starts_with(|c: char| c.is_ascii_digit()) => {
                let n = ident_len(&rest[1..]);
                i += 1 + n;
                if n == 0 {
                    Tok::Dot
                } else {
                    Tok::Field(rest[1..1 + n].to_string())
                }
            }
            c if c.is_ascii_digit()
                || (matches!(c, '+' | '-' | '.')
                    && rest[1..].starts_with(|d: char| d.is_ascii_digit() || d == '.')) =>
            {
                let n = number_len(rest);
                i += n;
                number(&rest[..n])?
            }
            c if c.is_alphabetic() || c == '_' => {
                let n = ident_len(rest);
                i += n;
                Tok::Ident(rest[..n].to_string())
            }
            c if c.is_ascii_graphic() => {
                return Err(perr(format!("unexpected {:?} in command", c.to_string())))
            }
            c => return Err(perr(format!("bad character U+{:04X} '{c}'", c as u32))),
        };
        toks.push((tok, spaced));
        spaced = false;
    }
}

fn ident_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(s.len(), |(i, _)| i)
}

fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut n = usize::from(matches!(b[0], b'+' | b'-'));
    while n < b.len() {
        let c = b[n];
        let exp_sign = matches!(c, b'+' | b'-') && matches!(b[n - 1], b'e' | b'E' | b'p' | b'P');
        if !(c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exp_sign) {
            break;
        }
        n += 1;
    }
    n
}

/// Go's number constants: an integer unless the text has `.`, `e` or `p` (hex aside).
fn number(text: &str) -> Result<Tok, TemplateError> {
    let bad = || perr(format!("bad number syntax: {text:?}"));
    let (neg, digits) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let clean = digits.replace('_', "");
    let lower = clean.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(bin) = lower.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|c| c.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else if lower.bytes().all(|c| c.is_ascii_digit()) {
        lower.parse::<i64>().ok()
    } else {
        None
    };
    if let Some(v) = int {
        return Ok(Tok::Int(if neg { -v } else { v }));
    }
    if lower.starts_with("0x") || !lower.contains(['.', 'e']) {
        return Err(bad());
    }
    let v: f64 = clean.parse().map_err(|_| bad())?;
    Ok(Tok::Float(if neg { -v } else { v }))
}

/// A Go interpreted string literal at the start of `s`; returns it and its length in `s`.
fn quoted(s: &str) -> Result<(String, usize), TemplateError> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => break,
            '\\' => {
                let (_, e) = chars
                    .next()
                    .ok_or_else(|| perr("unterminated quoted string"))?;
                let mut hex = |n: usize| -> Result<char, TemplateError> {
                    let mut v = 0u32;
                    for _ in 0..n {
                        let (_, h) = chars.next().ok_or_else(|| perr("bad escape"))?;
                        v = v * 16 + h.to_digit(16).ok_or_else(|| perr("bad escape"))?;
                    }
                    char::from_u32(v).ok_or_else(|| perr("bad escape"))
                };
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'a' => '\x07',
                    'b' => '\x08',
                    'f' => '\x0c',
                    'v' => '\x0b',
                    '\\' => '\\',
                    '"' => '"',
                    'x' => hex(2)?,
                    'u' => hex(4)?,
                    'U' => hex(8)?,
                    _ => return Err(perr("invalid syntax in quoted string")),
                });
            }
            c => out.push(c),
        }
    }
    Err(perr("unterminated quoted string"))
}

/// What ended a list of nodes.
enum Closer {
    Eof,
    End,
    /// `{{else ...}}` with the tokens after `else`.
    Else(Vec<Spaced>),
}

struct Parser<'f> {
    pieces: std::vec::IntoIter<Piece>,
    /// Variables in scope, innermost last: using another is a parse error in Go.
    vars: Vec<String>,
    range_depth: usize,
    /// Nesting of control structures: `define` is only allowed outside them.
    depth: usize,
    defs: HashMap<String, Vec<Node>>,
    functions: &'f [&'f str],
}

/// Parses `text`; `vars` are the variables its main body may use besides `$`.
pub(super) fn parse(text: &str, vars: &[&str], functions: &[&str]) -> Result<Tree, TemplateError> {
    let mut p = Parser {
        pieces: lex(text)?.into_iter(),
        vars: std::iter::once("$")
            .chain(vars.iter().copied())
            .map(str::to_string)
            .collect(),
        range_depth: 0,
        depth: 0,
        defs: HashMap::new(),
        functions,
    };
    let (main, end) = p.list()?;
    match end {
        Closer::Eof => Ok(Tree { main, defs: p.defs }),
        Closer::End => Err(perr("unexpected {{end}}")),
        Closer::Else(_) => Err(perr("unexpected {{else}}")),
    }
}

fn ident(t: Option<&Spaced>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

impl Parser<'_> {
    fn list(&mut self) -> Result<(Vec<Node>, Closer), TemplateError> {
        let mut nodes = Vec::new();
        while let Some(piece) = self.pieces.next() {
            let toks = match piece {
                Piece::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Piece::Action(toks) => toks,
            };
            let rest = toks.get(1..).unwrap_or_default();
            match ident(toks.first()) {
                Some("end") => {
                    if !rest.is_empty() {
                        return Err(perr("unexpected token in end"));
                    }
                    return Ok((nodes, Closer::End));
                }
                Some("else") => return Ok((nodes, Closer::Else(rest.to_vec()))),
                Some(word @ ("if" | "with" | "range")) => {
                    let word = word.to_string();
                    nodes.push(self.control(&word, rest)?);
                }
                Some("define") => {
                    if self.depth > 0 {
                        return Err(perr("unexpected <define> in command"));
                    }
                    let name = self.template_name(rest, "define")?;
                    if rest.len() > 1 {
                        return Err(perr("unexpected token in define clause"));
                    }
                    let body = self.body_of(&name)?;
                    self.add_def(name, body)?;
                }
                Some("block") => {
                    let name = self.template_name(rest, "block")?;
                    let pipe = self.pipeline(&rest[1..], "block")?;
                    let body = self.body_of(&name)?;
                    self.add_def(name.clone(), body)?;
                    nodes.push(Node::Template(name, Some(pipe)));
                }
                Some("template") => {
                    let name = self.template_name(rest, "template")?;
                    let pipe = if rest.len() > 1 {
                        Some(self.pipeline(&rest[1..], "template")?)
                    } else {
                        None
                    };
                    nodes.push(Node::Template(name, pipe));
                }
                Some(word @ ("break" | "continue")) => {
                    if self.range_depth == 0 {
                        return Err(perr(format!("{{{{{word}}}}} outside {{{{range}}}}")));
                    }
                    if !rest.is_empty() {
                        return Err(perr(format!("unexpected token in {{{{{word}}}}}")));
                    }
                    nodes.push(if word == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                _ => nodes.push(Node::Action(self.pipeline(&toks, "command")?)),
            }
        }
        Ok((nodes, Closer::Eof))
    }

    fn template_name(&self, toks: &[Spaced], ctx: &str) -> Result<String, TemplateError> {
        match toks.first() {
            Some((Tok::Str(s), _)) => Ok(s.clone()),
            _ => Err(perr(format!("missing name in {ctx} clause"))),
        }
    }

    /// A `define`/`block` body: its own variable scope, which holds only `$`.
    fn body_of(&mut self, name: &str) -> Result<Vec<Node>, TemplateError> {
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::take(&mut self.range_depth);
        self.depth += 1;
        let r = self.list();
        self.depth -= 1;
        self.vars = saved;
        self.range_depth = saved_range;
        match r? {
            (body, Closer::End) => Ok(body),
            _ => Err(perr(format!("unexpected EOF in definition of {name:?}"))),
        }
    }

    fn add_def(&mut self, name: String, body: Vec<Node>) -> Result<(), TemplateError> {
        let empty = |b: &[Node]| {
            b.iter()
                .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
        };
        match self.defs.get(&name) {
            Some(old) if !empty(old) && !empty(&body) => Err(perr(format!(
                "template: multiple definition of template {name:?}"
            ))),
            Some(_) if empty(&body) => Ok(()),
            _ => {
                self.defs.insert(name, body);
                Ok(())
            }
        }
    }

    fn control(&mut self, word: &str, toks: &[Spaced]) -> Result<Node, TemplateError> {
        let mark = self.vars.len();
        self.depth += 1;
        let r = self.control_in_scope(word, toks);
        self.depth -= 1;
        self.vars.truncate(mark);
        r
    }

    fn control_in_scope(&mut self, word: &str, toks: &[Spaced]) -> Result<Node, TemplateError> {
        let pipe = self.pipeline(toks, word)?;
        let is_range = word == "range";
        self.range_depth += usize::from(is_range);
        let body = self.list();
        self.range_depth -= usize::from(is_range);
        let (body, end) = body?;
        let otherwise = match end {
            Closer::End => Vec::new(),
            Closer::Eof => {
                return Err(perr(format!(
                    "unexpected EOF: missing {{{{end}}}} of {word}"
                )))
            }
            Closer::Else(rest) if rest.is_empty() => match self.list()? {
                (e, Closer::End) => e,
                (_, Closer::Else(_)) => return Err(perr("expected end; found {{else}}")),
                (_, Closer::Eof) => {
                    return Err(perr(format!(
                        "unexpected EOF: missing {{{{end}}}} of {word}"
                    )))
                }
            },
            // `{{else if}}` shares the `{{end}}` of its `if`. Go before 1.23 (Prometheus 2.42)
            // has no `{{else with}}`, and reads `{{else if}}` after `with` or `range` as
            // stray input.
            Closer::Else(rest) if word == "if" && ident(rest.first()) == Some("if") => {
                vec![self.control("if", &rest[1..])?]
            }
            Closer::Else(rest) if ident(rest.first()) == Some("if") => {
                return Err(perr("unexpected <if> in input"))
            }
            Closer::Else(rest) => {
                return Err(perr(match rest.first() {
                    Some((Tok::Ident(w), _)) => format!("unexpected <{w}> in else"),
                    t => format!("unexpected {:?} in else", t.map(|t| &t.0)),
                }))
            }
        };
        Ok(match word {
            "if" => Node::If(pipe, body, otherwise),
            "with" => Node::With(pipe, body, otherwise),
            _ => Node::Range(pipe, body, otherwise),
        })
    }

    fn pipeline(&mut self, toks: &[Spaced], ctx: &str) -> Result<Pipeline, TemplateError> {
        let mut decl = Vec::new();
        let mut assign = false;
        let mut start = 0;
        let var = |i: usize| match toks.get(i) {
            Some((Tok::Var(v), _)) => Some(v.clone()),
            _ => None,
        };
        let op = |i: usize| toks.get(i).map(|t| &t.0);
        if let Some(v) = var(0) {
            if matches!(op(1), Some(Tok::Declare | Tok::Assign)) {
                assign = op(1) == Some(&Tok::Assign);
                decl.push(v);
                start = 2;
            } else if ctx == "range" && op(1) == Some(&Tok::Comma) {
                let Some(v2) = var(2) else {
                    return Err(perr("range can only initialize variables"));
                };
                if op(3) != Some(&Tok::Declare) {
                    return Err(perr("too many declarations in range"));
                }
                decl.extend([v, v2]);
                start = 4;
            }
        }
        // Go checks `$x =` only when it runs (`undefined variable: $x`).
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        let mut pos = start;
        let cmds = self.commands(toks, &mut pos)?;
        if pos != toks.len() {
            return Err(perr(format!("unexpected {:?} in {ctx}", toks[pos].0)));
        }
        if cmds.is_empty() {
            return Err(perr(format!("missing value for {ctx}")));
        }
        Ok(Pipeline { decl, assign, cmds })
    }

    /// Commands separated by `|`, up to a `)` or the end.
    fn commands(
        &mut self,
        toks: &[Spaced],
        pos: &mut usize,
    ) -> Result<Vec<Vec<Operand>>, TemplateError> {
        let mut cmds: Vec<Vec<Operand>> = Vec::new();
        loop {
            let mut cmd = Vec::new();
            while let Some(o) = self.operand(toks, pos)? {
                cmd.push(o);
            }
            match toks.get(*pos).map(|t| &t.0) {
                Some(Tok::Pipe) => {
                    if cmd.is_empty() {
                        return Err(perr("missing command"));
                    }
                    *pos += 1;
                }
                None | Some(Tok::RParen) => {
                    if cmd.is_empty() && !cmds.is_empty() {
                        return Err(perr("missing command"));
                    }
                    if !cmd.is_empty() {
                        cmds.push(cmd);
                    }
                    break;
                }
                Some(t) => return Err(perr(format!("unexpected {t:?} in operand"))),
            }
            cmds.push(cmd);
        }
        for (i, c) in cmds.iter().enumerate().skip(1) {
            if matches!(
                c[0],
                Operand::Str(_)
                    | Operand::Int(_)
                    | Operand::Float(_)
                    | Operand::Bool(_)
                    | Operand::Nil
                    | Operand::Dot
            ) {
                return Err(perr(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                )));
            }
        }
        Ok(cmds)
    }

    /// Field names written right after an operand (`$x.a.b`, `(...).a`).
    fn chain(toks: &[Spaced], pos: &mut usize) -> Vec<String> {
        let mut fields = Vec::new();
        while let Some((Tok::Field(f), false)) = toks.get(*pos) {
            fields.push(f.clone());
            *pos += 1;
        }
        fields
    }

    fn operand(
        &mut self,
        toks: &[Spaced],
        pos: &mut usize,
    ) -> Result<Option<Operand>, TemplateError> {
        let Some((tok, _)) = toks.get(*pos) else {
            return Ok(None);
        };
        *pos += 1;
        Ok(Some(match tok {
            Tok::Str(s) => Operand::Str(s.clone()),
            Tok::Int(i) => Operand::Int(*i),
            Tok::Float(f) => Operand::Float(*f),
            Tok::Dot => Operand::Dot,
            Tok::Field(f) => {
                let mut fields = vec![f.clone()];
                fields.extend(Self::chain(toks, pos));
                Operand::Field(fields)
            }
            Tok::Var(v) => {
                if !self.vars.contains(v) {
                    return Err(perr(format!("undefined variable {v:?}")));
                }
                Operand::Var(v.clone(), Self::chain(toks, pos))
            }
            Tok::LParen => {
                let cmds = self.commands(toks, pos)?;
                if toks.get(*pos).map(|t| &t.0) != Some(&Tok::RParen) {
                    return Err(perr("unclosed left paren"));
                }
                *pos += 1;
                if cmds.is_empty() {
                    return Err(perr("missing value for parenthesized pipeline"));
                }
                let pipe = Pipeline {
                    decl: Vec::new(),
                    assign: false,
                    cmds,
                };
                Operand::Paren(Box::new(pipe), Self::chain(toks, pos))
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => Operand::Bool(true),
                "false" => Operand::Bool(false),
                "nil" => Operand::Nil,
                n if self.functions.contains(&n) => Operand::Func(n.to_string()),
                n if matches!(
                    n,
                    "if" | "else"
                        | "end"
                        | "range"
                        | "with"
                        | "define"
                        | "template"
                        | "block"
                        | "break"
                        | "continue"
                ) =>
                {
                    return Err(perr(format!("unexpected <{n}> in command")))
                }
                n => return Err(perr(format!("function {n:?} not defined"))),
            },
            Tok::Pipe | Tok::RParen => {
                *pos -= 1;
                return Ok(None);
            }
            t @ (Tok::Declare | Tok::Assign | Tok::Comma) => {
                return Err(perr(format!("unexpected {t:?} in operand")))
            }
        }))
    }
}
