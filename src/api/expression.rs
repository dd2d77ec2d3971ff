//! The endpoints that look at an expression without evaluating it: `format_query` (the
//! expression pretty-printed) and `query_exemplars` (exemplars of the expression's selectors;
//! promcore stores no exemplars yet, so a well-formed request gets Prometheus's answer with
//! exemplar storage off: a successful empty list, or 204 when there is no selector at all).
//! This module never reads storage.

use promql_parser::parser::Expr;

use crate::http::{Request, Response, StatusCode};
use crate::promql::engine;
use crate::promql::error::QueryError;

use super::json;
use super::params::{self, ApiParamError};
use super::parse_error;
use super::v1::bad_data;

/// `GET|POST /api/v1/format_query`: `data` is the pretty-printed expression.
pub fn format_query(req: &Request) -> Response {
    match pretty(req.param("query").unwrap_or("")) {
        Ok(text) => {
            let mut out = Vec::with_capacity(64 + text.len());
            json::success(&mut out, |o| json::write_string(o, &text));
            Response::json(StatusCode::OK, out)
        }
        Err(message) => bad_data(format!("invalid parameter \"query\": {message}")),
    }
}

/// The expression as Prometheus's `Pretty` prints it; Prometheus's parse error when it does
/// not parse.
pub fn pretty(query: &str) -> Result<String, String> {
    parse(query).map(|expr| expr.prettify())
}

/// The expression, or Prometheus's text of its parse error.
pub fn parse(query: &str) -> Result<Expr, String> {
    match engine::parse(query) {
        Ok(expr) => Ok(expr),
        Err(QueryError::BadData(m)) => Err(parse_error::prometheus_message(query, &m)),
        Err(e) => Err(e.to_string()),
    }
}

/// `GET|POST /api/v1/query_exemplars`: `start` and `end` checked first (as Prometheus does),
/// then the expression; no exemplars are stored, so the answer is `[]`.
pub fn query_exemplars(req: &Request) -> Response {
    let start = match params::parse_time_param("start", req.param("start"), params::MIN_TIME) {
        Ok(t) => t,
        Err(e) => return bad_data(e),
    };
    let end = match params::parse_time_param("end", req.param("end"), params::MAX_TIME) {
        Ok(t) => t,
        Err(e) => return bad_data(e),
    };
    if end < start {
        return bad_data(ApiParamError::EndBeforeStartTimestamp);
    }
    // Unlike `query`, Prometheus reports this parse error without naming the parameter.
    let expr = match parse(req.param("query").unwrap_or("")) {
        Ok(e) => e,
        Err(m) => return bad_data(m),
    };
    if !has_selector(&expr) {
        return Response::new(StatusCode::NO_CONTENT);
    }
    let mut out = Vec::with_capacity(32);
    json::success(&mut out, |o| o.extend_from_slice(b"[]"));
    Response::json(StatusCode::OK, out)
}

/// Whether the expression reads any series (Prometheus's `ExtractSelectors` is non-empty).
fn has_selector(e: &Expr) -> bool {
    match e {
        Expr::VectorSelector(_) | Expr::MatrixSelector(_) => true,
        Expr::Aggregate(a) => has_selector(&a.expr) || a.param.as_deref().is_some_and(has_selector),
        Expr::Unary(u) => has_selector(&u.expr),
        Expr::Binary(b) => has_selector(&b.lhs) || has_selector(&b.rhs),
        Expr::Paren(p) => has_selector(&p.expr),
        Expr::Subquery(s) => has_selector(&s.expr),
        Expr::Call(c) => c.args.args.iter().any(|a| has_selector(a)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_prints_as_prometheus() {
        // Each checked against Prometheus 2.42's format_query.
        for (query, expected) in [
            ("foo/bar", "foo / bar"),
            ("sum(rate(x[5m]))by(job)", "sum by (job) (rate(x[5m]))"),
            ("a+on(b)group_left(c)d", "a + on (b) group_left (c) d"),
            ("-x^2", "-x ^ 2"),
            ("rate(x[5m:1m])", "rate(x[5m:1m])"),
            ("abs(x) and ignoring(a) y", "abs(x) and ignoring (a) y"),
        ] {
            assert_eq!(pretty(query).as_deref(), Ok(expected), "{query}");
        }
        assert!(pretty("foo(").is_err());
        assert!(pretty("").is_err());
    }

    #[test]
    fn selectors_are_found_anywhere() {
        let has = |q: &str| has_selector(&engine::parse(q).unwrap());
        assert!(has("up"));
        assert!(has("1 + sum(rate(x[5m]))"));
        assert!(has("topk(scalar(y), vector(1))"));
        assert!(!has("1 + 2"));
        assert!(!has("vector(time())"));
        assert!(!has("\"s\""));
    }
}
