//! Alert label and annotation templates: the part of Go's `text/template` that Prometheus
//! rules use (`{{ $labels.x }}`, `{{ $value | humanize }}`, pipelines, `if`/`else`, `range`,
//! `with`) and Prometheus's template functions (`humanize*`, `printf`, `query`, `first`,
//! `value`, `label`, `title`, `toUpper`, ...). A template is parsed when its rule loads, so an
//! unknown function or a syntax error is a load-time error, as in Prometheus.
//!
//! Expansion is pure: `query` results come from the caller. When a template needs a query
//! whose result it was not given, expansion stops with `Expansion::NeedQuery`; the caller runs
//! the query and expands again with it (see `alerting`). This module never does I/O.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use thiserror::Error;

use super::go_format::{format_float_g, format_value, printf};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    #[error("template: {0}")]
    Parse(String),
    #[error("error executing template: {0}")]
    Exec(String),
}

/// A sample as `query` returns it to a template.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// What a template may read.
#[derive(Debug, Clone, Default)]
pub struct TemplateData {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    /// Results of `query` calls, by query text.
    pub queries: HashMap<String, Vec<QuerySample>>,
}

/// The outcome of one expansion.
#[derive(Debug, Clone, PartialEq)]
pub enum Expansion {
    Done(String),
    /// The template calls `query` with this text and its result is not in `queries` yet.
    NeedQuery(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Option<String>, Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
struct Pipeline {
    /// `{{ $x := ... }}`
    declare: Option<String>,
    commands: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    /// `$name.f1.f2` (`$` alone is the root data).
    Var(String, Vec<String>),
    /// `.f1.f2` (`.` alone: the current value).
    Dot(Vec<String>),
    Func(String),
    Paren(Pipeline),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

const FUNCTIONS: &[&str] = &[
    "and",
    "or",
    "not",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "html",
    "js",
    "urlquery",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "toUpper",
    "toLower",
    "title",
    "match",
    "reReplaceAll",
    "safeHtml",
    "stripPort",
    "stripDomain",
    "args",
    "pathPrefix",
    "externalURL",
    "parseDuration",
    "tableLink",
    "graphLink",
];

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut p = Parser { src: text, pos: 0 };
        let (nodes, end) = p.nodes()?;
        if let Some(end) = end {
            return Err(TemplateError::Parse(format!("unexpected {{{{{end}}}}}")));
        }
        Ok(Template { nodes })
    }

    /// Expands with Prometheus's preamble variables: `$labels`, `$value`, `$externalLabels`,
    /// `$externalURL`, and `.` being `{Labels, Value, ExternalLabels, ExternalURL}`.
    pub fn expand(&self, data: &TemplateData) -> Result<Expansion, TemplateError> {
        let root = Val::Map(vec![
            ("Labels".into(), Val::StrMap(data.labels.clone())),
            ("Value".into(), Val::Num(data.value)),
            (
                "ExternalLabels".into(),
                Val::StrMap(data.external_labels.clone()),
            ),
            ("ExternalURL".into(), Val::Str(data.external_url.clone())),
        ]);
        let mut ex = Exec {
            data,
            vars: vec![
                ("$".into(), root.clone()),
                ("$labels".into(), Val::StrMap(data.labels.clone())),
                (
                    "$externalLabels".into(),
                    Val::StrMap(data.external_labels.clone()),
                ),
                ("$externalURL".into(), Val::Str(data.external_url.clone())),
                ("$value".into(), Val::Num(data.value)),
            ],
            out: String::new(),
        };
        match ex.run(&self.nodes, &root) {
            Ok(()) => Ok(Expansion::Done(ex.out)),
            Err(Stop::NeedQuery(q)) => Ok(Expansion::NeedQuery(q)),
            Err(Stop::Error(e)) => Err(TemplateError::Exec(e)),
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    /// Nodes up to `{{end}}`/`{{else}}` (returned) or the end of the text (`None`).
    fn nodes(&mut self) -> Result<(Vec<Node>, Option<&'static str>), TemplateError> {
        let mut nodes = Vec::new();
        loop {
            let rest = &self.src[self.pos..];
            let Some(open) = rest.find("{{") else {
                if !rest.is_empty() {
                    nodes.push(Node::Text(rest.to_string()));
                }
                self.pos = self.src.len();
                return Ok((nodes, None));
            };
            let mut text = &rest[..open];
            let mut inner_start = self.pos + open + 2;
            if self.src[inner_start..].starts_with("- ") {
                text = text.trim_end();
                inner_start += 2;
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text.to_string()));
            }
            let Some(close) = self.src[inner_start..].find("}}") else {
                return Err(TemplateError::Parse("unclosed action".into()));
            };
            let mut inner = &self.src[inner_start..inner_start + close];
            self.pos = inner_start + close + 2;
            if inner.ends_with(" -") {
                inner = &inner[..inner.len() - 2];
                let trimmed = self.src[self.pos..].trim_start();
                self.pos = self.src.len() - trimmed.len();
            }
            let inner = inner.trim();
            if inner.starts_with("/*") {
                continue;
            }
            let (word, rest) = match inner.split_once(char::is_whitespace) {
                Some((w, r)) => (w, r.trim()),
                None => (inner, ""),
            };
            match word {
                "end" => return Ok((nodes, Some("end"))),
                "else" if rest.is_empty() => return Ok((nodes, Some("else"))),
                "else" => return Err(TemplateError::Parse("else if/with is not supported".into())),
                "if" | "with" | "range" => {
                    let mut range_var = None;
                    let mut pipe_text = rest;
                    if word == "range" {
                        if let Some((lhs, rhs)) = rest.split_once(":=") {
                            let vars: Vec<&str> = lhs.split(',').map(str::trim).collect();
                            range_var = vars.last().map(|v| v.to_string());
                            pipe_text = rhs.trim();
                        }
                    }
                    let pipe = parse_pipeline(pipe_text)?;
                    let (body, end) = self.nodes()?;
                    let else_body = match end {
                        Some("else") => {
                            let (e, end2) = self.nodes()?;
                            if end2 != Some("end") {
                                return Err(TemplateError::Parse(format!(
                                    "missing {{{{end}}}} of {word}"
                                )));
                            }
                            e
                        }
                        Some(_) => Vec::new(),
                        None => {
                            return Err(TemplateError::Parse(format!(
                                "unexpected EOF: missing {{{{end}}}} of {word}"
                            )))
                        }
                    };
                    nodes.push(match word {
                        "if" => Node::If(pipe, body, else_body),
                        "with" => Node::With(pipe, body, else_body),
                        _ => Node::Range(range_var, pipe, body, else_body),
                    });
                }
                "define" | "template" | "block" | "break" | "continue" => {
                    return Err(TemplateError::Parse(format!(
                        "{{{{{word}}}}} is not supported"
                    )))
                }
                _ => nodes.push(Node::Action(parse_pipeline(inner)?)),
            }
        }
    }
}

fn parse_pipeline(text: &str) -> Result<Pipeline, TemplateError> {
    let mut declare = None;
    let mut body = text;
    if text.starts_with('$') {
        if let Some((lhs, rhs)) = text.split_once(":=").or_else(|| text.split_once(" = ")) {
            declare = Some(lhs.trim().to_string());
            body = rhs;
        }
    }
    let tokens = tokenize(body)?;
    let mut pos = 0;
    let p = pipeline_tokens(&tokens, &mut pos)?;
    if pos != tokens.len() {
        return Err(TemplateError::Parse(format!(
            "unexpected {:?} in command",
            tokens[pos]
        )));
    }
    Ok(Pipeline { declare, ..p })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Arg(Arg),
    Pipe,
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, TemplateError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let perr = |m: String| TemplateError::Parse(m);
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'|' => {
                out.push(Tok::Pipe);
                i += 1
            }
            b'(' => {
                out.push(Tok::Open);
                i += 1
            }
            b')' => {
                out.push(Tok::Close);
                i += 1
            }
            b'"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(perr("unterminated quoted string".into())),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            let e = b
                                .get(i + 1)
                                .copied()
                                .ok_or_else(|| perr("bad escape".into()))?;
                            s.push(match e {
                                b'n' => '\n',
                                b't' => '\t',
                                b'\\' => '\\',
                                b'"' => '"',
                                _ => return Err(perr("unsupported escape in string".into())),
                            });
                            i += 2;
                        }
                        Some(_) => {
                            let ch = text[i..].chars().next().unwrap_or(' ');
                            s.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                i += 1;
                out.push(Tok::Arg(Arg::Str(s)));
            }
            b'`' => {
                let end = text[i + 1..]
                    .find('`')
                    .ok_or_else(|| perr("unterminated raw quoted string".into()))?;
                out.push(Tok::Arg(Arg::Str(text[i + 1..i + 1 + end].to_string())));
                i += end + 2;
            }
            _ => {
                let start = i;
                while i < b.len()
                    && !matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | b'|' | b'(' | b')')
                {
                    i += 1;
                }
                let word = &text[start..i];
                out.push(Tok::Arg(word_arg(word)?));
            }
        }
    }
    Ok(out)
}

fn word_arg(word: &str) -> Result<Arg, TemplateError> {
    let fields = |s: &str| -> Vec<String> {
        s.split('.')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect()
    };
    if let Some(rest) = word.strip_prefix('$') {
        let (name, f) = match rest.find('.') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        return Ok(Arg::Var(format!("${name}"), fields(f)));
    }
    if word.starts_with('.') {
        return Ok(Arg::Dot(fields(word)));
    }
    match word {
        "true" => return Ok(Arg::Bool(true)),
        "false" => return Ok(Arg::Bool(false)),
        "nil" => return Ok(Arg::Nil),
        _ => {}
    }
    if word.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') {
        return word
            .parse::<f64>()
            .map(Arg::Num)
            .map_err(|_| TemplateError::Parse(format!("bad number syntax: {word:?}")));
    }
    if FUNCTIONS.contains(&word) {
        Ok(Arg::Func(word.to_string()))
    } else {
        Err(TemplateError::Parse(format!(
            "function {word:?} not defined"
        )))
    }
}

fn pipeline_tokens(t: &[Tok], pos: &mut usize) -> Result<Pipeline, TemplateError> {
    let mut commands = Vec::new();
    let mut cmd = Vec::new();
    while let Some(tok) = t.get(*pos) {
        match tok {
            Tok::Close => break,
            Tok::Pipe => {
                if cmd.is_empty() {
                    return Err(TemplateError::Parse("missing command".into()));
                }
                commands.push(std::mem::take(&mut cmd));
                *pos += 1;
            }
            Tok::Open => {
                *pos += 1;
                let inner = pipeline_tokens(t, pos)?;
                if t.get(*pos) != Some(&Tok::Close) {
                    return Err(TemplateError::Parse("unclosed left paren".into()));
                }
                *pos += 1;
                cmd.push(Arg::Paren(inner));
            }
            Tok::Arg(a) => {
                cmd.push(a.clone());
                *pos += 1;
            }
        }
    }
    if cmd.is_empty() {
        return Err(TemplateError::Parse("missing value for command".into()));
    }
    commands.push(cmd);
    Ok(Pipeline {
        declare: None,
        commands,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Nil,
    Bool(bool),
    Num(f64),
    Str(String),
    StrMap(BTreeMap<String, String>),
    Map(Vec<(String, Val)>),
    Sample(QuerySample),
    Samples(Vec<QuerySample>),
}

impl Val {
    fn truthy(&self) -> bool {
        match self {
            Val::Nil => false,
            Val::Bool(b) => *b,
            Val::Num(f) => *f != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::StrMap(m) => !m.is_empty(),
            Val::Map(m) => !m.is_empty(),
            Val::Sample(_) => true,
            Val::Samples(s) => !s.is_empty(),
        }
    }

    /// Go's `fmt.Sprint` of the value.
    fn print(&self) -> String {
        match self {
            Val::Nil => "<no value>".into(),
            Val::Bool(b) => b.to_string(),
            Val::Num(f) => format_value(*f),
            Val::Str(s) => s.clone(),
            Val::StrMap(m) => {
                let inner: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", inner.join(" "))
            }
            Val::Map(_) => "{...}".into(),
            Val::Sample(s) => format!("{{{:?} {}}}", s.labels, format_value(s.value)),
            Val::Samples(v) => format!("[{} samples]", v.len()),
        }
    }

    fn field(&self, name: &str) -> Result<Val, String> {
        match self {
            Val::StrMap(m) => Ok(m.get(name).map_or(Val::Nil, |v| Val::Str(v.clone()))),
            Val::Map(m) => m
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("can't evaluate field {name}")),
            Val::Sample(s) => match name {
                "Labels" => Ok(Val::StrMap(s.labels.clone())),
                "Value" => Ok(Val::Num(s.value)),
                _ => Err(format!("can't evaluate field {name} in type sample")),
            },
            Val::Nil => Ok(Val::Nil),
            _ => Err(format!(
                "can't evaluate field {name} in type {}",
                self.type_name()
            )),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Val::Nil => "nil",
            Val::Bool(_) => "bool",
            Val::Num(_) => "float64",
            Val::Str(_) => "string",
            Val::StrMap(_) => "map[string]string",
            Val::Map(_) => "struct",
            Val::Sample(_) => "*template.sample",
            Val::Samples(_) => "template.queryResult",
        }
    }

    fn number(&self) -> Result<f64, String> {
        match self {
            Val::Num(f) => Ok(*f),
            Val::Str(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
            Val::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
            other => Err(format!("can't convert {} to a number", other.type_name())),
        }
    }
}

enum Stop {
    NeedQuery(String),
    Error(String),
}

impl From<String> for Stop {
    fn from(e: String) -> Stop {
        Stop::Error(e)
    }
}

struct Exec<'a> {
    data: &'a TemplateData,
    vars: Vec<(String, Val)>,
    out: String,
}

impl Exec<'_> {
    fn run(&mut self, nodes: &[Node], dot: &Val) -> Result<(), Stop> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.declare.is_none() {
                        self.out.push_str(&v.print());
                    }
                }
                Node::If(p, then, otherwise) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    let r = self.run(if v.truthy() { then } else { otherwise }, dot);
                    self.vars.truncate(mark);
                    r?;
                }
                Node::With(p, then, otherwise) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    let r = if v.truthy() {
                        self.run(then, &v)
                    } else {
                        self.run(otherwise, dot)
                    };
                    self.vars.truncate(mark);
                    r?;
                }
                Node::Range(var, p, body, otherwise) => {
                    let v = self.pipeline(p, dot)?;
                    let items: Vec<Val> = match v {
                        Val::Samples(s) => s.into_iter().map(Val::Sample).collect(),
                        Val::StrMap(m) => m.into_values().map(Val::Str).collect(),
                        Val::Nil => Vec::new(),
                        other => {
                            return Err(format!("range can't iterate over {}", other.print()).into())
                        }
                    };
                    if items.is_empty() {
                        self.run(otherwise, dot)?;
                    }
                    for item in items {
                        let mark = self.vars.len();
                        if let Some(name) = var {
                            self.vars.push((name.clone(), item.clone()));
                        }
                        let r = self.run(body, &item);
                        self.vars.truncate(mark);
                        r?;
                    }
                }
            }
        }
        Ok(())
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Val) -> Result<Val, Stop> {
        let mut prev: Option<Val> = None;
        for cmd in &p.commands {
            prev = Some(self.command(cmd, dot, prev)?);
        }
        let v = prev.unwrap_or(Val::Nil);
        if let Some(name) = &p.declare {
            match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some(slot) if !p.commands.is_empty() && name.starts_with('$') => slot.1 = v.clone(),
                _ => self.vars.push((name.clone(), v.clone())),
            }
        }
        Ok(v)
    }

    fn arg(&mut self, a: &Arg, dot: &Val) -> Result<Val, Stop> {
        Ok(match a {
            Arg::Str(s) => Val::Str(s.clone()),
            Arg::Num(f) => Val::Num(*f),
            Arg::Bool(b) => Val::Bool(*b),
            Arg::Nil => Val::Nil,
            Arg::Var(name, fields) => {
                let mut v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| format!("undefined variable: {name}"))?;
                for f in fields {
                    v = v.field(f)?;
                }
                v
            }
            Arg::Dot(fields) => {
                let mut v = dot.clone();
                for f in fields {
                    v = v.field(f)?;
                }
                v
            }
            Arg::Func(name) => self.call(name, Vec::new())?,
            Arg::Paren(p) => self.pipeline(p, dot)?,
        })
    }

    fn command(&mut self, cmd: &[Arg], dot: &Val, piped: Option<Val>) -> Result<Val, Stop> {
        match &cmd[0] {
            Arg::Func(name) => {
                let mut args = Vec::with_capacity(cmd.len());
                for a in &cmd[1..] {
                    args.push(self.arg(a, dot)?);
                }
                args.extend(piped);
                self.call(name, args)
            }
            a if cmd.len() == 1 && piped.is_none() => self.arg(a, dot),
            _ => Err(Stop::Error("can't give argument to non-function".into())),
        }
    }

    fn call(&mut self, name: &str, args: Vec<Val>) -> Result<Val, Stop> {
        let n = args.len();
        let want = |k: usize| -> Result<(), Stop> {
            if n == k {
                Ok(())
            } else {
                Err(Stop::Error(format!(
                    "wrong number of args for {name}: want {k} got {n}"
                )))
            }
        };
        let num = |i: usize| -> Result<f64, Stop> { Ok(args[i].number()?) };
        let s = |i: usize| -> String {
            match &args[i] {
                Val::Str(s) => s.clone(),
                v => v.print(),
            }
        };
        Ok(match name {
            "query" => {
                want(1)?;
                let q = s(0);
                match self.data.queries.get(&q) {
                    Some(r) => Val::Samples(r.clone()),
                    None => return Err(Stop::NeedQuery(q)),
                }
            }
            "first" => {
                want(1)?;
                match &args[0] {
                    Val::Samples(v) => v.first().cloned().map_or(Val::Nil, Val::Sample),
                    _ => return Err(Stop::Error("first of a non-query result".into())),
                }
            }
            "value" => {
                want(1)?;
                match &args[0] {
                    Val::Sample(x) => Val::Num(x.value),
                    _ => return Err(Stop::Error("value of a non-sample".into())),
                }
            }
            "strvalue" => {
                want(1)?;
                match &args[0] {
                    Val::Sample(x) => {
                        Val::Str(x.labels.get("__value__").cloned().unwrap_or_default())
                    }
                    _ => return Err(Stop::Error("strvalue of a non-sample".into())),
                }
            }
            "label" => {
                want(2)?;
                match &args[1] {
                    Val::Sample(x) => Val::Str(x.labels.get(&s(0)).cloned().unwrap_or_default()),
                    _ => return Err(Stop::Error("label of a non-sample".into())),
                }
            }
            "sortByLabel" => {
                want(2)?;
                let key = s(0);
                match &args[1] {
                    Val::Samples(v) => {
                        let mut v = v.clone();
                        v.sort_by(|a, b| a.labels.get(&key).cmp(&b.labels.get(&key)));
                        Val::Samples(v)
                    }
                    _ => return Err(Stop::Error("sortByLabel of a non-query result".into())),
                }
            }
            "humanize" => {
                want(1)?;
                Val::Str(humanize(num(0)?))
            }
            "humanize1024" => {
                want(1)?;
                Val::Str(humanize1024(num(0)?))
            }
            "humanizeDuration" => {
                want(1)?;
                Val::Str(humanize_duration(num(0)?))
            }
            "humanizePercentage" => {
                want(1)?;
                Val::Str(format!("{}%", format_float_g(num(0)? * 100.0, 4)))
            }
            "humanizeTimestamp" => {
                want(1)?;
                Val::Str(humanize_timestamp(num(0)?))
            }
            "toUpper" => {
                want(1)?;
                Val::Str(s(0).to_uppercase())
            }
            "toLower" => {
                want(1)?;
                Val::Str(s(0).to_lowercase())
            }
            "title" => {
                want(1)?;
                Val::Str(title(&s(0)))
            }
            "safeHtml" | "html" | "js" | "urlquery" | "print" => {
                Val::Str(args.iter().map(Val::print).collect::<Vec<_>>().join(""))
            }
            "println" => Val::Str(args.iter().map(Val::print).collect::<Vec<_>>().join(" ") + "\n"),
            "printf" => {
                if n == 0 {
                    return Err(Stop::Error("wrong number of args for printf".into()));
                }
                let fa: Vec<super::go_format::FormatArg> = args[1..]
                    .iter()
                    .map(|v| match v {
                        Val::Num(f) => super::go_format::FormatArg::Num(*f),
                        Val::Bool(b) => super::go_format::FormatArg::Str(b.to_string()),
                        Val::Str(x) => super::go_format::FormatArg::Str(x.clone()),
                        other => super::go_format::FormatArg::Str(other.print()),
                    })
                    .collect();
                Val::Str(printf(&s(0), &fa))
            }
            "match" => {
                want(2)?;
                let re = regex::Regex::new(&s(0)).map_err(|e| Stop::Error(e.to_string()))?;
                Val::Bool(re.is_match(&s(1)))
            }
            "reReplaceAll" => {
                want(3)?;
                let re = regex::Regex::new(&s(0)).map_err(|e| Stop::Error(e.to_string()))?;
                Val::Str(re.replace_all(&s(2), s(1).as_str()).into_owned())
            }
            "stripPort" => {
                want(1)?;
                let h = s(0);
                Val::Str(match h.rsplit_once(':') {
                    Some((host, _)) => host
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_string(),
                    None => h,
                })
            }
            "stripDomain" => {
                want(1)?;
                let h = s(0);
                let (host, port) = match h.rsplit_once(':') {
                    Some((a, p)) => (a.to_string(), format!(":{p}")),
                    None => (h.clone(), String::new()),
                };
                if host.parse::<std::net::IpAddr>().is_ok() {
                    Val::Str(h)
                } else {
                    Val::Str(format!("{}{port}", host.split('.').next().unwrap_or("")))
                }
            }
            "pathPrefix" => Val::Str(String::new()),
            "externalURL" => Val::Str(self.data.external_url.clone()),
            "toTime" | "parseDuration" => {
                return Err(Stop::Error(format!("{name} is not supported by promcore")))
            }
            "tableLink" | "graphLink" => {
                want(1)?;
                Val::Str(format!("/graph?g0.expr={}&g0.tab=1", s(0)))
            }
            "args" => Val::Map(
                args.iter()
                    .enumerate()
                    .map(|(i, v)| (format!("arg{i}"), v.clone()))
                    .collect(),
            ),
            "len" => {
                want(1)?;
                Val::Num(match &args[0] {
                    Val::Str(x) => x.len(),
                    Val::Samples(v) => v.len(),
                    Val::StrMap(m) => m.len(),
                    _ => return Err(Stop::Error("len of a value without length".into())),
                } as f64)
            }
            "index" => {
                want(2)?;
                match &args[0] {
                    Val::StrMap(m) => m.get(&s(1)).map_or(Val::Nil, |v| Val::Str(v.clone())),
                    Val::Samples(v) => {
                        let i = num(1)? as usize;
                        v.get(i)
                            .cloned()
                            .map(Val::Sample)
                            .ok_or_else(|| Stop::Error("index out of range".into()))?
                    }
                    _ => return Err(Stop::Error("can't index item".into())),
                }
            }
            "not" => {
                want(1)?;
                Val::Bool(!args[0].truthy())
            }
            "and" => args
                .iter()
                .find(|v| !v.truthy())
                .or(args.last())
                .cloned()
                .unwrap_or(Val::Nil),
            "or" => args
                .iter()
                .find(|v| v.truthy())
                .or(args.last())
                .cloned()
                .unwrap_or(Val::Nil),
            "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
                want(2)?;
                let ord = match (&args[0], &args[1]) {
                    (Val::Str(a), Val::Str(b)) => a.partial_cmp(b),
                    (a, b) => a.number()?.partial_cmp(&b.number()?),
                };
                use std::cmp::Ordering::*;
                Val::Bool(match (name, ord) {
                    ("eq", o) => o == Some(Equal),
                    ("ne", o) => o != Some(Equal),
                    ("lt", o) => o == Some(Less),
                    ("le", o) => matches!(o, Some(Less | Equal)),
                    ("gt", o) => o == Some(Greater),
                    (_, o) => matches!(o, Some(Greater | Equal)),
                })
            }
            other => return Err(Stop::Error(format!("function {other:?} not defined"))),
        })
    }
}

/// Prometheus's `humanize`: SI prefixes, four significant digits.
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format_float_g(v, 4);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", format_float_g(v, 4))
}

pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return format_float_g(v, 4);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", format_float_g(v, 4))
}

pub fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return format_float_g(v, 4);
    }
    if v == 0.0 {
        return format!("{}s", format_float_g(v, 4));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let d = v as i64;
        let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        return if days != 0 {
            format!("{sign}{days}d {h}h {m}m {s}s")
        } else if h != 0 {
            format!("{sign}{h}h {m}m {s}s")
        } else if m != 0 {
            format!("{sign}{m}m {s}s")
        } else {
            format!("{sign}{}s", format_float_g(v, 4))
        };
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", format_float_g(v, 4))
}

/// Go's `time.Time.String()` in UTC: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub fn humanize_timestamp(v: f64) -> String {
    if !v.is_finite() {
        return format_float_g(v, 4);
    }
    // Prometheus goes through model.Time: milliseconds, truncated.
    let ms = (v * 1e9) as i64 / 1_000_000;
    let secs = ms.div_euclid(1000);
    let nanos = ms.rem_euclid(1000) * 1_000_000;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, mo, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        let _ = write!(out, ".{}", frac.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Go's deprecated `strings.Title`: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(t: &str, data: &TemplateData) -> String {
        match Template::parse(t).unwrap().expand(data).unwrap() {
            Expansion::Done(s) => s,
            Expansion::NeedQuery(q) => panic!("needs {q}"),
        }
    }

    fn data() -> TemplateData {
        TemplateData {
            labels: [
                ("instance".to_string(), "h:9100".to_string()),
                ("job".into(), "node".into()),
            ]
            .into_iter()
            .collect(),
            value: 1234567.0,
            external_labels: [("cluster".to_string(), "eu".to_string())]
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn variables_pipelines_and_functions() {
        let d = data();
        assert_eq!(
            expand("{{ $labels.instance }} is {{ $value }}", &d),
            "h:9100 is 1.234567e+06"
        );
        assert_eq!(expand("{{ $value | humanize }}", &d), "1.235M");
        assert_eq!(expand("{{ humanize1024 2048 }}", &d), "2ki");
        assert_eq!(expand("{{ humanizeDuration 3725 }}", &d), "1h 2m 5s");
        assert_eq!(expand("{{ humanizeDuration 0.25 }}", &d), "250ms");
        assert_eq!(expand("{{ humanizePercentage 0.1234 }}", &d), "12.34%");
        assert_eq!(
            expand("{{ humanizeTimestamp 1435065584.128 }}", &d),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(
            expand(
                "{{ .Labels.job | toUpper }} {{ title \"a quick fox\" }}",
                &d
            ),
            "NODE A Quick Fox"
        );
        assert_eq!(
            expand("{{ printf \"%.2f %s %d\" 3.14159 \"x\" 7 }}", &d),
            "3.14 x 7"
        );
        assert_eq!(expand("{{ $externalLabels.cluster }}", &d), "eu");
        assert_eq!(
            expand("{{ if gt $value 1000.0 }}big{{ else }}small{{ end }}", &d),
            "big"
        );
        assert_eq!(expand("{{ stripPort $labels.instance }}", &d), "h");
        assert_eq!(
            expand("{{ reReplaceAll \"(h):.*\" \"$1\" $labels.instance }}", &d),
            "h"
        );
    }

    #[test]
    fn query_results_come_from_the_caller() {
        let mut d = data();
        let t = Template::parse("{{ with query \"up\" }}{{ . | first | value }} {{ . | first | label \"job\" }}{{ end }}").unwrap();
        assert_eq!(t.expand(&d).unwrap(), Expansion::NeedQuery("up".into()));
        d.queries.insert(
            "up".into(),
            vec![QuerySample {
                labels: [("job".to_string(), "a".to_string())].into_iter().collect(),
                value: 1.0,
            }],
        );
        assert_eq!(t.expand(&d).unwrap(), Expansion::Done("1 a".into()));
        let r = Template::parse("{{ range query \"up\" }}{{ .Labels.job }}={{ .Value }};{{ end }}")
            .unwrap();
        assert_eq!(r.expand(&d).unwrap(), Expansion::Done("a=1;".into()));
    }

    #[test]
    fn unknown_functions_and_bad_syntax_fail_to_parse() {
        assert!(Template::parse("{{ nosuch 1 }}").is_err());
        assert!(Template::parse("{{ if 1 }}x").is_err());
        assert!(Template::parse("{{ $labels.x ").is_err());
        assert!(Template::parse("plain text").is_ok());
    }
}
