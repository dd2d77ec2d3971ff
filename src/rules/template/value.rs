//! The values a template handles, with Go's rules for them: truth (`if`), printing
//! (`fmt.Fprint`), field access with `missingkey=zero` (a missing label is the empty string),
//! and the comparison functions' kinds (an `int` constant and a `float64` do not compare).

use std::collections::BTreeMap;

use super::super::go_format::format_value;
use super::QuerySample;
use crate::http::date::civil_from_days;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    /// Go's nil / missing value (prints `<no value>`).
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `map[string]string`: label sets.
    StrMap(BTreeMap<String, String>),
    /// `map[string]interface{}`: what `args` returns.
    AnyMap(BTreeMap<String, Val>),
    /// The alert data (`.`): a struct with named fields.
    Struct(Vec<(&'static str, Val)>),
    /// `*sample`
    Sample(QuerySample),
    /// `queryResult`
    Samples(Vec<QuerySample>),
    /// `*time.Time`, in nanoseconds since the epoch, UTC.
    Time(i64),
}

/// The kinds Go's comparison functions distinguish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Bool,
    Int,
    Float,
    Str,
    Other,
}

impl Val {
    pub fn truthy(&self) -> bool {
        match self {
            Val::Nil => false,
            Val::Bool(b) => *b,
            Val::Int(i) => *i != 0,
            Val::Float(f) => *f != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::StrMap(m) => !m.is_empty(),
            Val::AnyMap(m) => !m.is_empty(),
            Val::Samples(s) => !s.is_empty(),
            Val::Struct(_) | Val::Sample(_) | Val::Time(_) => true,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Val::Bool(_) => Kind::Bool,
            Val::Int(_) => Kind::Int,
            Val::Float(_) => Kind::Float,
            Val::Str(_) => Kind::Str,
            _ => Kind::Other,
        }
    }

    /// Go's `fmt.Sprint` of the value as a template prints it (pointers followed).
    pub fn print(&self) -> String {
        match self {
            Val::Nil => "<no value>".into(),
            other => other.print_inner(),
        }
    }

    fn print_inner(&self) -> String {
        match self {
            Val::Nil => "<nil>".into(),
            Val::Bool(b) => b.to_string(),
            Val::Int(i) => i.to_string(),
            Val::Float(f) => format_value(*f),
            Val::Str(s) => s.clone(),
            Val::StrMap(m) => print_map(m.iter().map(|(k, v)| (k, v.clone()))),
            Val::AnyMap(m) => print_map(m.iter().map(|(k, v)| (k, v.print_inner()))),
            Val::Struct(fields) => {
                let inner: Vec<String> = fields.iter().map(|(_, v)| v.print_inner()).collect();
                format!("{{{}}}", inner.join(" "))
            }
            Val::Sample(s) => print_sample(s),
            Val::Samples(v) => {
                let inner: Vec<String> =
                    v.iter().map(|s| format!("&{}", print_sample(s))).collect();
                format!("[{}]", inner.join(" "))
            }
            Val::Time(ns) => go_time_string(*ns),
        }
    }

    /// Go's type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Nil => "<nil>",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Float(_) => "float64",
            Val::Str(_) => "string",
            Val::StrMap(_) => "map[string]string",
            Val::AnyMap(_) => "map[string]interface {}",
            Val::Struct(_) => "struct",
            Val::Sample(_) => "*template.sample",
            Val::Samples(_) => "template.queryResult",
            Val::Time(_) => "*time.Time",
        }
    }

    /// `.name` on the value, with `missingkey=zero` as Prometheus sets it.
    pub fn field(&self, name: &str) -> Result<Val, String> {
        match self {
            Val::StrMap(m) => Ok(Val::Str(m.get(name).cloned().unwrap_or_default())),
            Val::AnyMap(m) => Ok(m.get(name).cloned().unwrap_or(Val::Nil)),
            Val::Struct(fields) => fields
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("can't evaluate field {name} in type struct")),
            Val::Sample(s) => match name {
                "Labels" => Ok(Val::StrMap(s.labels.clone())),
                "Value" => Ok(Val::Float(s.value)),
                _ => Err(format!(
                    "can't evaluate field {name} in type *template.sample"
                )),
            },
            Val::Nil => Err(format!("nil pointer evaluating interface {{}}.{name}")),
            other => Err(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            )),
        }
    }

    /// Prometheus's `convertToFloat`: floats, integers and numeric strings.
    pub fn to_float(&self) -> Result<f64, String> {
        match self {
            Val::Float(f) => Ok(*f),
            Val::Int(i) => Ok(*i as f64),
            Val::Str(s) => parse_go_float(s)
                .ok_or_else(|| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
            other => Err(format!("can't convert {} to float", other.type_name())),
        }
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for the spellings that matter (`Inf`, `NaN` included).
fn parse_go_float(s: &str) -> Option<f64> {
    let body = s.trim_start_matches(['+', '-']);
    if body.is_empty() || body.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return s.parse::<f64>().ok();
    }
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    s.parse::<f64>().ok()
}

fn print_map(entries: impl Iterator<Item = (impl AsRef<str>, String)>) -> String {
    let inner: Vec<String> = entries
        .map(|(k, v)| format!("{}:{v}", k.as_ref()))
        .collect();
    format!("map[{}]", inner.join(" "))
}

fn print_sample(s: &QuerySample) -> String {
    format!(
        "{{{} {}}}",
        print_map(s.labels.iter().map(|(k, v)| (k, v.clone()))),
        format_value(s.value)
    )
}

/// Go's `time.Time.String()` in UTC: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub(super) fn go_time_string(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
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
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}
