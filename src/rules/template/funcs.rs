//! The functions a rule template may call: Go's `text/template` built-ins (`len`, `index`,
//! `printf`, `eq`, `html`, ...) and Prometheus 2.42's (`query`, `humanize*`, `toTime`,
//! `parseDuration`, `stripPort`, `graphLink`, ...), with Go's argument rules: string
//! parameters take only strings, the humanize family takes anything Prometheus's
//! `convertToFloat` takes, and comparisons refuse to mix an `int` and a `float64`.
//! `and`/`or` are lazy and live in `exec`. Pure: `query` answers come from `TemplateData`.

use std::cmp::Ordering;

use super::super::go_format::{format_float_g, printf, FormatArg};
use super::exec::Stop;
use super::value::{Kind, Val};
use super::{QuerySample, TemplateData};
use crate::http::form::encode_component as query_escape;

/// Every function a template may name; anything else is a load-time error.
pub(super) const FUNCTIONS: &[&str] = &[
    // Go's built-ins.
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
    "slice",
    "call",
    "print",
    "printf",
    "println",
    "html",
    "js",
    "urlquery",
    // Prometheus 2.42's.
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "pathPrefix",
    "externalURL",
    "parseDuration",
    "stripPort",
    "stripDomain",
];

struct Args<'a> {
    name: &'a str,
    v: Vec<Val>,
}

impl Args<'_> {
    fn want(&self, n: usize) -> Result<(), String> {
        if self.v.len() == n {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args for {}: want {n} got {}",
                self.name,
                self.v.len()
            ))
        }
    }

    fn at_least(&self, n: usize) -> Result<(), String> {
        if self.v.len() >= n {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args for {}: want at least {n} got {}",
                self.name,
                self.v.len()
            ))
        }
    }

    fn wrong(&self, i: usize, expected: &str) -> String {
        format!(
            "wrong type for value; expected {expected}; got {}",
            self.v[i].type_name()
        )
    }

    fn str(&self, i: usize) -> Result<&str, String> {
        match &self.v[i] {
            Val::Str(s) => Ok(s),
            _ => Err(self.wrong(i, "string")),
        }
    }

    fn float(&self, i: usize) -> Result<f64, String> {
        self.v[i].to_float()
    }

    fn samples(&self, i: usize) -> Result<Vec<QuerySample>, String> {
        match &self.v[i] {
            Val::Samples(s) => Ok(s.clone()),
            Val::Nil => Ok(Vec::new()),
            _ => Err(self.wrong(i, "template.queryResult")),
        }
    }

    fn sample(&self, i: usize) -> Result<&QuerySample, String> {
        match &self.v[i] {
            Val::Sample(s) => Ok(s),
            Val::Nil => {
                Err("runtime error: invalid memory address or nil pointer dereference".into())
            }
            _ => Err(self.wrong(i, "*template.sample")),
        }
    }
}

/// Calls a function other than `and`/`or` with its evaluated arguments.
pub(super) fn call(data: &TemplateData, name: &str, args: Vec<Val>) -> Result<Val, Stop> {
    if name == "query" {
        let a = Args { name, v: args };
        a.want(1)?;
        let q = a.str(0)?;
        return match data.queries.get(q) {
            Some(r) => Ok(Val::Samples(r.clone())),
            None => Err(Stop::NeedQuery(q.to_string())),
        };
    }
    call_pure(data, name, Args { name, v: args })
        .map_err(|e| Stop::Error(format!("error calling {name}: {e}")))
}

fn call_pure(data: &TemplateData, name: &str, a: Args) -> Result<Val, String> {
    Ok(match name {
        "not" => {
            a.want(1)?;
            Val::Bool(!a.v[0].truthy())
        }
        "eq" => {
            a.at_least(1)?;
            if a.v.len() == 1 {
                return Err("missing argument for comparison".into());
            }
            let mut any = false;
            for other in &a.v[1..] {
                any |= equal(&a.v[0], other)?;
            }
            Val::Bool(any)
        }
        "ne" => {
            a.want(2)?;
            Val::Bool(!equal(&a.v[0], &a.v[1])?)
        }
        "lt" | "le" | "gt" | "ge" => {
            a.want(2)?;
            let (x, y) = (&a.v[0], &a.v[1]);
            let less = less(x, y)?;
            Val::Bool(match name {
                "lt" => less,
                "le" => less || equal(x, y)?,
                "gt" => !less && !equal(x, y)?,
                _ => !less,
            })
        }
        "len" => {
            a.want(1)?;
            Val::Int(match &a.v[0] {
                Val::Str(s) => s.len(),
                Val::StrMap(m) => m.len(),
                Val::AnyMap(m) => m.len(),
                Val::Samples(s) => s.len(),
                Val::Nil => return Err("len of nil pointer".into()),
                other => return Err(format!("len of type {}", other.type_name())),
            } as i64)
        }
        "index" => {
            a.at_least(1)?;
            let mut item = a.v[0].clone();
            for key in &a.v[1..] {
                item = index(&item, key)?;
            }
            item
        }
        "slice" => {
            a.at_least(1)?;
            let bounds: Vec<usize> = a.v[1..]
                .iter()
                .map(|v| match v {
                    Val::Int(i) if *i >= 0 => Ok(*i as usize),
                    Val::Int(i) => Err(format!("index out of range: {i}")),
                    other => Err(format!(
                        "cannot index slice/array with type {}",
                        other.type_name()
                    )),
                })
                .collect::<Result<_, _>>()?;
            let len = match &a.v[0] {
                Val::Str(s) => s.len(),
                Val::Samples(s) => s.len(),
                other => return Err(format!("can't slice item of type {}", other.type_name())),
            };
            let lo = bounds.first().copied().unwrap_or(0);
            let hi = bounds.get(1).copied().unwrap_or(len);
            if bounds.len() > 2 || lo > hi || hi > len {
                return Err(format!("invalid slice index: {lo} > {hi}"));
            }
            match &a.v[0] {
                Val::Str(s) => Val::Str(
                    s.get(lo..hi)
                        .ok_or_else(|| "slice splits a character".to_string())?
                        .to_string(),
                ),
                Val::Samples(s) => Val::Samples(s[lo..hi].to_vec()),
                _ => Val::Nil,
            }
        }
        "call" => {
            a.at_least(1)?;
            return Err(format!("non-function of type {}", a.v[0].type_name()));
        }
        "print" => Val::Str(sprint(&a.v)),
        "println" => {
            let parts: Vec<String> = a.v.iter().map(sprint_one).collect();
            Val::Str(parts.join(" ") + "\n")
        }
        "printf" => {
            a.at_least(1)?;
            let format = a.str(0)?;
            let fa: Vec<FormatArg> = a.v[1..]
                .iter()
                .map(|v| match v {
                    Val::Float(f) => FormatArg::Num(*f),
                    Val::Int(i) => FormatArg::Int(*i),
                    Val::Bool(b) => FormatArg::Bool(*b),
                    other => FormatArg::Str(sprint_one(other)),
                })
                .collect();
            Val::Str(printf(format, &fa))
        }
        "html" => Val::Str(html_escape(&eval_args(&a.v))),
        "js" => Val::Str(js_escape(&eval_args(&a.v))),
        "urlquery" => Val::Str(query_escape(&eval_args(&a.v))),
        "first" => {
            a.want(1)?;
            match a.samples(0)?.into_iter().next() {
                Some(s) => Val::Sample(s),
                None => return Err("first() called on vector with no elements".into()),
            }
        }
        "label" => {
            a.want(2)?;
            let l = a.str(0)?;
            Val::Str(a.sample(1)?.labels.get(l).cloned().unwrap_or_default())
        }
        "value" => {
            a.want(1)?;
            Val::Float(a.sample(0)?.value)
        }
        "strvalue" => {
            a.want(1)?;
            Val::Str(
                a.sample(0)?
                    .labels
                    .get("__value__")
                    .cloned()
                    .unwrap_or_default(),
            )
        }
        "args" => Val::AnyMap(
            a.v.iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v.clone()))
                .collect(),
        ),
        "reReplaceAll" => {
            a.want(3)?;
            let re = compile(a.str(0)?)?;
            Val::Str(re.replace_all(a.str(2)?, a.str(1)?).into_owned())
        }
        "match" => {
            a.want(2)?;
            Val::Bool(compile(a.str(0)?)?.is_match(a.str(1)?))
        }
        "safeHtml" | "toUpper" | "toLower" | "title" | "graphLink" | "tableLink" | "stripPort"
        | "stripDomain" => {
            a.want(1)?;
            let s = a.str(0)?;
            Val::Str(match name {
                "safeHtml" => s.to_string(),
                "toUpper" => s.to_uppercase(),
                "toLower" => s.to_lowercase(),
                "title" => title(s),
                "graphLink" => format!("/graph?g0.expr={}&g0.tab=0", query_escape(s)),
                "tableLink" => format!("/graph?g0.expr={}&g0.tab=1", query_escape(s)),
                "stripPort" => split_host_port(s).map_or(s, |(h, _)| h).to_string(),
                _ => strip_domain(s),
            })
        }
        "sortByLabel" => {
            a.want(2)?;
            let l = a.str(0)?;
            let mut v = a.samples(1)?;
            // Stable, and a missing label sorts as "" (Go's map lookup).
            v.sort_by(|x, y| {
                let get = |s: &QuerySample| s.labels.get(l).cloned().unwrap_or_default();
                get(x).cmp(&get(y))
            });
            Val::Samples(v)
        }
        "humanize" | "humanize1024" | "humanizeDuration" | "humanizePercentage" => {
            a.want(1)?;
            let v = a.float(0)?;
            Val::Str(match name {
                "humanize" => humanize(v),
                "humanize1024" => humanize1024(v),
                "humanizeDuration" => humanize_duration(v),
                _ => format!("{}%", format_float_g(v * 100.0, 4)),
            })
        }
        "humanizeTimestamp" => {
            a.want(1)?;
            let v = a.float(0)?;
            if !v.is_finite() {
                Val::Str(format_float_g(v, 4))
            } else {
                Val::Str(Val::Time(float_to_time(v)?).print())
            }
        }
        "toTime" => {
            a.want(1)?;
            let v = a.float(0)?;
            if !v.is_finite() {
                return Err("value is NaN or Inf".into());
            }
            Val::Time(float_to_time(v)?)
        }
        "pathPrefix" => {
            a.want(0)?;
            Val::Str(url_path(&data.external_url).to_string())
        }
        "externalURL" => {
            a.want(0)?;
            Val::Str(data.external_url.clone())
        }
        "parseDuration" => {
            a.want(1)?;
            let d =
                crate::config::duration::Duration::parse(a.str(0)?).map_err(|e| e.to_string())?;
            Val::Float(d.as_millis() as f64 / 1000.0)
        }
        other => return Err(format!("function {other:?} not defined")),
    })
}

fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern)
        .map_err(|e| format!("regexp: Compile({pattern:?}): error parsing regexp: {e}"))
}

/// Go's `eq` for two values: same basic kind, or an error; nil equals only nil.
fn equal(x: &Val, y: &Val) -> Result<bool, String> {
    if matches!(x, Val::Nil) || matches!(y, Val::Nil) {
        return Ok(matches!(x, Val::Nil) && matches!(y, Val::Nil));
    }
    if x.kind() != y.kind() {
        return Err("incompatible types for comparison".into());
    }
    Ok(match (x, y) {
        (Val::Bool(a), Val::Bool(b)) => a == b,
        (Val::Int(a), Val::Int(b)) => a == b,
        (Val::Float(a), Val::Float(b)) => a == b,
        (Val::Str(a), Val::Str(b)) => a == b,
        (Val::Sample(_) | Val::Time(_), _) => x == y,
        _ => return Err("invalid type for comparison".into()),
    })
}

/// Go's `lt`: ints, floats and strings, each only with its own kind.
fn less(x: &Val, y: &Val) -> Result<bool, String> {
    let (kx, ky) = (x.kind(), y.kind());
    if matches!(kx, Kind::Bool | Kind::Other) || matches!(ky, Kind::Bool | Kind::Other) {
        return Err("invalid type for comparison".into());
    }
    if kx != ky {
        return Err("incompatible types for comparison".into());
    }
    Ok(match (x, y) {
        (Val::Int(a), Val::Int(b)) => a < b,
        (Val::Float(a), Val::Float(b)) => a.partial_cmp(b) == Some(Ordering::Less),
        (Val::Str(a), Val::Str(b)) => a < b,
        _ => false,
    })
}

fn index(item: &Val, key: &Val) -> Result<Val, String> {
    let int_key = |len: usize| -> Result<usize, String> {
        match key {
            Val::Int(i) if *i >= 0 && (*i as usize) < len => Ok(*i as usize),
            Val::Int(i) => Err(format!("index out of range: {i}")),
            other => Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            )),
        }
    };
    let str_key = || -> Result<&str, String> {
        match key {
            Val::Str(s) => Ok(s),
            other => Err(format!(
                "value has type {}; should be string",
                other.type_name()
            )),
        }
    };
    Ok(match item {
        Val::StrMap(m) => Val::Str(m.get(str_key()?).cloned().unwrap_or_default()),
        Val::AnyMap(m) => m.get(str_key()?).cloned().unwrap_or(Val::Nil),
        Val::Samples(v) => Val::Sample(v[int_key(v.len())?].clone()),
        Val::Str(s) => Val::Int(i64::from(s.as_bytes()[int_key(s.len())?])),
        Val::Nil => return Err("index of untyped nil".into()),
        other => return Err(format!("can't index item of type {}", other.type_name())),
    })
}

/// `fmt.Sprint` of one value (a nil prints `<nil>` here, unlike in an action).
fn sprint_one(v: &Val) -> String {
    match v {
        Val::Nil => "<nil>".into(),
        other => other.print(),
    }
}

/// `fmt.Sprint(args...)`: a space between two operands when neither is a string.
fn sprint(args: &[Val]) -> String {
    let mut out = String::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 && !matches!(v, Val::Str(_)) && !matches!(args[i - 1], Val::Str(_)) {
            out.push(' ');
        }
        out.push_str(&sprint_one(v));
    }
    out
}

/// What `html`, `js` and `urlquery` escape: a lone string as is, else `fmt.Sprint`.
fn eval_args(args: &[Val]) -> String {
    match args {
        [Val::Str(s)] => s.clone(),
        _ => sprint(args),
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' | '>' | '&' | '=' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The path of a URL (`http://h:9090/prom` → `/prom`).
fn url_path(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    path.split(['?', '#']).next().unwrap_or("")
}

/// Go's `net.SplitHostPort`; `None` where Go returns an error.
fn split_host_port(hp: &str) -> Option<(&str, &str)> {
    let i = hp.rfind(':')?;
    let (host, j, k) = if hp.starts_with('[') {
        let end = hp.find(']')?;
        if end + 1 != i {
            return None;
        }
        (&hp[1..end], 1, end + 1)
    } else {
        let host = &hp[..i];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if hp[j..].contains('[') || hp[k..].contains(']') {
        return None;
    }
    Some((host, &hp[i + 1..]))
}

fn strip_domain(hp: &str) -> String {
    let (host, port) = split_host_port(hp).unwrap_or((hp, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return hp.to_string();
    }
    let host = host.split('.').next().unwrap_or("");
    if port.is_empty() {
        host.to_string()
    } else if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Prometheus's `floatToTime`: seconds to nanoseconds, through milliseconds as
/// `model.Time` keeps them.
fn float_to_time(v: f64) -> Result<i64, String> {
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            super::super::go_format::format_value(v)
        ));
    }
    Ok((ns as i64 / 1_000_000) * 1_000_000)
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
        // Go's `isSeparator`: in ASCII only letters, digits and `_` continue a word (so
        // "don't" becomes "Don'T"); beyond ASCII, only white space separates.
        prev_letter = if c.is_ascii() {
            c.is_ascii_alphanumeric() || c == '_'
        } else {
            !c.is_whitespace()
        };
    }
    out
}
