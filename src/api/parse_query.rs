//! `GET|POST /api/v1/parse_query` (Prometheus 3, experimental, used by its UI's tree view):
//! the expression's syntax tree as JSON, node by node in the shape Prometheus's
//! `translateAST` gives (`type` plus the node's fields, keys sorted as Go marshals maps).
//! Prometheus 2.42 has no such endpoint. This module only reads the parsed tree: it never
//! evaluates and never reads storage.

use std::time::UNIX_EPOCH;

use promql_parser::label::{MatchOp, Matcher, METRIC_NAME};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{
    AtModifier, BinaryExpr, Expr, LabelModifier, Offset, VectorMatchCardinality, VectorSelector,
};
use serde_json::{json, Map, Value};

use crate::http::{Request, Response, StatusCode};

use super::expression;
use super::json::{self as api_json, FloatFormat};
use super::v1::bad_data;

/// `GET|POST /api/v1/parse_query`.
pub fn parse_query(req: &Request) -> Response {
    match expression::parse(req.param("query").unwrap_or("")) {
        Ok(expr) => {
            let tree = translate(&expr).to_string();
            let mut out = Vec::with_capacity(64 + tree.len());
            api_json::success(&mut out, |o| o.extend_from_slice(tree.as_bytes()));
            Response::json(StatusCode::OK, out)
        }
        Err(message) => bad_data(format!("invalid parameter \"query\": {message}")),
    }
}

/// The JSON of one node (Prometheus's `translateAST`).
pub fn translate(e: &Expr) -> Value {
    match e {
        Expr::Aggregate(a) => {
            let (grouping, without) = match &a.modifier {
                Some(LabelModifier::Include(l)) => (l.labels.clone(), false),
                Some(LabelModifier::Exclude(l)) => (l.labels.clone(), true),
                None => (Vec::new(), false),
            };
            json!({
                "type": "aggregation",
                "op": a.op.to_string(),
                "expr": translate(&a.expr),
                "param": a.param.as_deref().map_or(Value::Null, translate),
                "grouping": grouping,
                "without": without,
            })
        }
        Expr::Binary(b) => json!({
            "type": "binaryExpr",
            "op": b.op.to_string(),
            "lhs": translate(&b.lhs),
            "rhs": translate(&b.rhs),
            "matching": matching(b),
            "bool": b.modifier.as_ref().is_some_and(|m| m.return_bool),
        }),
        Expr::Call(c) => json!({
            "type": "call",
            "func": {
                "name": c.func.name,
                "argTypes": c.func.arg_types.iter().map(type_name).collect::<Vec<_>>(),
                "variadic": c.func.variadic,
                "returnType": type_name(&c.func.return_type),
            },
            "args": c.args.args.iter().map(|a| translate(a)).collect::<Vec<_>>(),
        }),
        Expr::MatrixSelector(m) => {
            let mut v = selector(&m.vs, "matrixSelector");
            v["range"] = json!(m.range.as_millis() as i64);
            v
        }
        Expr::VectorSelector(vs) => selector(vs, "vectorSelector"),
        Expr::Subquery(s) => {
            let (timestamp, start_or_end) = at(s.at.as_ref());
            json!({
                "type": "subquery",
                "expr": translate(&s.expr),
                "range": s.range.as_millis() as i64,
                "offset": offset_ms(s.offset.as_ref()),
                "step": s.step.map_or(0, |d| d.as_millis() as i64),
                "timestamp": timestamp,
                "startOrEnd": start_or_end,
                "alignEvalTime": false,
            })
        }
        Expr::NumberLiteral(n) => {
            let mut val = Vec::new();
            api_json::append_float(&mut val, n.val, FloatFormat::Fixed);
            json!({"type": "numberLiteral", "val": String::from_utf8_lossy(&val)})
        }
        Expr::Paren(p) => json!({"type": "parenExpr", "expr": translate(&p.expr)}),
        Expr::StringLiteral(s) => json!({"type": "stringLiteral", "val": s.val}),
        Expr::Unary(u) => json!({"type": "unaryExpr", "op": "-", "expr": translate(&u.expr)}),
        Expr::Extension(_) => Value::Null,
    }
}

fn type_name(t: &ValueType) -> String {
    t.to_string()
}

/// A vector selector's fields; its matchers as Prometheus holds them: those written in the
/// braces, then the metric name's.
fn selector(vs: &VectorSelector, kind: &str) -> Value {
    let mut matchers: Vec<Value> = vs.matchers.matchers.iter().map(matcher).collect();
    if let Some(name) = &vs.name {
        if !vs.matchers.matchers.iter().any(|m| m.name == METRIC_NAME) {
            matchers.push(json!({"name": METRIC_NAME, "type": "=", "value": name}));
        }
    }
    let (timestamp, start_or_end) = at(vs.at.as_ref());
    json!({
        "type": kind,
        "name": vs.name.clone().unwrap_or_default(),
        "offset": offset_ms(vs.offset.as_ref()),
        "matchers": matchers,
        "timestamp": timestamp,
        "startOrEnd": start_or_end,
        "anchored": false,
        "smoothed": false,
    })
}

fn matcher(m: &Matcher) -> Value {
    let op = match m.op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Re(_) => "=~",
        MatchOp::NotRe(_) => "!~",
    };
    json!({"name": m.name, "type": op, "value": m.value})
}

fn offset_ms(o: Option<&Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
        None => 0,
    }
}

/// `timestamp` (ms) and `startOrEnd` of an `@` modifier.
fn at(a: Option<&AtModifier>) -> (Value, Value) {
    match a {
        None => (Value::Null, Value::Null),
        Some(AtModifier::Start) => (Value::Null, json!("start")),
        Some(AtModifier::End) => (Value::Null, json!("end")),
        Some(AtModifier::At(t)) => {
            let ms = match t.duration_since(UNIX_EPOCH) {
                Ok(d) => d.as_millis() as i64,
                Err(e) => -(e.duration().as_millis() as i64),
            };
            (json!(ms), Value::Null)
        }
    }
}

/// Vector matching, which Prometheus keeps only between two instant vectors.
fn matching(b: &BinaryExpr) -> Value {
    let vectors =
        b.lhs.value_type() == ValueType::Vector && b.rhs.value_type() == ValueType::Vector;
    if !vectors {
        return Value::Null;
    }
    let set_op = matches!(b.op.to_string().as_str(), "and" | "or" | "unless");
    let modifier = b.modifier.as_ref();
    let (card, include) = match modifier.map(|m| &m.card) {
        Some(VectorMatchCardinality::ManyToOne(l)) => ("many-to-one", l.labels.clone()),
        Some(VectorMatchCardinality::OneToMany(l)) => ("one-to-many", l.labels.clone()),
        Some(VectorMatchCardinality::ManyToMany) => ("many-to-many", Vec::new()),
        _ if set_op => ("many-to-many", Vec::new()),
        _ => ("one-to-one", Vec::new()),
    };
    let (labels, on) = match modifier.and_then(|m| m.matching.as_ref()) {
        Some(LabelModifier::Include(l)) => (l.labels.clone(), true),
        Some(LabelModifier::Exclude(l)) => (l.labels.clone(), false),
        None => (Vec::new(), false),
    };
    let fill = modifier.map(|m| (m.fill_values.lhs, m.fill_values.rhs));
    let mut fill_values = Map::new();
    fill_values.insert("lhs".into(), json!(fill.and_then(|f| f.0)));
    fill_values.insert("rhs".into(), json!(fill.and_then(|f| f.1)));
    json!({
        "card": card,
        "labels": labels,
        "on": on,
        "include": include,
        "fillValues": fill_values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(q: &str) -> Value {
        match expression::parse(q) {
            Ok(e) => translate(&e),
            Err(m) => panic!("{q}: {m}"),
        }
    }

    /// Goldens in the shape of Prometheus 3's `translateAST` (web/api/v1/translate_ast.go):
    /// name matcher last, offsets and ranges in ms, `matching` only between two vectors.
    #[test]
    fn trees_are_prometheus_3s() {
        let expected = json!({
            "type": "binaryExpr", "op": "/", "bool": false,
            "matching": {"card": "one-to-one", "labels": ["job"], "on": true, "include": [],
                         "fillValues": {"lhs": null, "rhs": null}},
            "lhs": {"type": "aggregation", "op": "sum", "grouping": ["job"], "without": false,
                    "param": null,
                    "expr": {"type": "call",
                             "func": {"name": "rate", "argTypes": ["matrix"], "variadic": 0,
                                      "returnType": "vector"},
                             "args": [{"type": "matrixSelector", "name": "http_requests_total",
                                       "range": 300000, "offset": 60000,
                                       "matchers": [{"name": "code", "type": "=~", "value": "5.."},
                                                    {"name": "__name__", "type": "=", "value": "http_requests_total"}],
                                       "timestamp": null, "startOrEnd": null,
                                       "anchored": false, "smoothed": false}]}},
            "rhs": {"type": "vectorSelector", "name": "up", "offset": 0,
                    "matchers": [{"name": "__name__", "type": "=", "value": "up"}],
                    "timestamp": 1000, "startOrEnd": null, "anchored": false, "smoothed": false},
        });
        assert_eq!(
            tree("sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m] offset 1m)) / on(job) up @ 1"),
            expected
        );
        assert_eq!(
            tree("1 + -2"),
            json!({"type": "binaryExpr", "op": "+", "bool": false, "matching": null,
                   "lhs": {"type": "numberLiteral", "val": "1"},
                   "rhs": {"type": "numberLiteral", "val": "-2"}})
        );
        let x = json!({"type": "vectorSelector", "name": "x", "offset": 0,
                       "matchers": [{"name": "__name__", "type": "=", "value": "x"}],
                       "timestamp": null, "startOrEnd": null, "anchored": false, "smoothed": false});
        assert_eq!(
            tree("-(x)"),
            json!({"type": "unaryExpr", "op": "-", "expr": {"type": "parenExpr", "expr": x}})
        );
        assert_eq!(
            tree("topk(3, x)"),
            json!({"type": "aggregation", "op": "topk", "grouping": [], "without": false,
                   "param": {"type": "numberLiteral", "val": "3"}, "expr": x})
        );
        assert_eq!(
            tree("x[1h:1m] @ end()"),
            json!({"type": "subquery", "range": 3600000, "step": 60000, "offset": 0,
                   "timestamp": null, "startOrEnd": "end", "alignEvalTime": false, "expr": x})
        );
        assert_eq!(
            tree("a and ignoring(b) c")["matching"],
            json!({"card": "many-to-many", "labels": ["b"], "on": false, "include": [],
                   "fillValues": {"lhs": null, "rhs": null}})
        );
        assert_eq!(tree("\"s\""), json!({"type": "stringLiteral", "val": "s"}));
    }
}
