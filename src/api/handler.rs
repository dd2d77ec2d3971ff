//! Routes each HTTP request to its endpoint. The tables below are the whole surface of the
//! server today; each endpoint lives in the module named after what it serves.
//!
//! `/api/v1/*` follows Prometheus's router: each path has its methods (GET, or GET and POST),
//! another method gets `405 Method Not Allowed` with `Allow`, `OPTIONS` on any `/api/v1/*` path
//! is a 204, an unknown path a plain-text 404, and every answer of an endpoint carries the
//! CORS headers (`cors`).

use std::rc::Rc;
use std::time::Instant;

use crate::flags::Flags;
use crate::http::{Handler, Method, Request, Response, StatusCode};
use crate::server::App;

use super::cors::Cors;
use super::route_prefix::{self, Routed};
use super::{admin, expression, federate, lifecycle, parse_query, query, rules, self_metrics, v1};

pub struct ApiHandler {
    app: Rc<App>,
    cors: Cors,
    /// `/` or `/prefix` (`route_prefix`).
    prefix: String,
}

impl ApiHandler {
    pub fn new(app: Rc<App>) -> Self {
        let (cors, prefix) = api_policy(&app.flags);
        ApiHandler { app, cors, prefix }
    }
}

/// The CORS policy and the route prefix the flags set: what every listener applies the same
/// way (`api::front` too).
pub fn api_policy(flags: &Flags) -> (Cors, String) {
    let cors = Cors::new(&flags.web_cors_origin);
    let prefix =
        route_prefix::route_prefix(&flags.web_external_url, flags.web_route_prefix.as_deref());
    (cors, prefix)
}

/// Go's `http.Redirect` answer.
fn redirect(status: u16, location: &str) -> Response {
    let reason = if status == 301 {
        "Moved Permanently"
    } else {
        "Found"
    };
    let mut body = String::from("<a href=\"");
    for c in location.chars() {
        match c {
            '&' => body.push_str("&amp;"),
            '<' => body.push_str("&lt;"),
            '>' => body.push_str("&gt;"),
            '"' => body.push_str("&#34;"),
            '\'' => body.push_str("&#39;"),
            c => body.push(c),
        }
    }
    body.push_str(&format!("\">{reason}</a>.\n\n"));
    Response::new(StatusCode::new(status).unwrap_or(StatusCode::OK))
        .with_header("Location", location.to_string())
        .with_body("text/html; charset=utf-8", body.into_bytes())
}

/// An `/api/v1` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Query,
    QueryRange,
    QueryExemplars,
    FormatQuery,
    ParseQuery,
    Series,
    Labels,
    LabelValues(String),
    Metadata,
    Targets,
    TargetsMetadata,
    ScrapePools,
    Rules,
    Alerts,
    Alertmanagers,
    StatusConfig,
    StatusFlags,
    StatusBuildinfo,
    StatusRuntimeinfo,
    StatusTsdb,
    StatusWalReplay,
    AdminDeleteSeries,
    AdminCleanTombstones,
    AdminSnapshot,
}

impl Endpoint {
    /// The endpoint at `path` (below `/api/v1`), if any.
    pub fn route(path: &str) -> Option<Endpoint> {
        let rest = path.strip_prefix("/api/v1/")?;
        Some(match rest {
            "query" => Endpoint::Query,
            "query_range" => Endpoint::QueryRange,
            "query_exemplars" => Endpoint::QueryExemplars,
            "format_query" => Endpoint::FormatQuery,
            "parse_query" => Endpoint::ParseQuery,
            "series" => Endpoint::Series,
            "labels" => Endpoint::Labels,
            "metadata" => Endpoint::Metadata,
            "targets" => Endpoint::Targets,
            "targets/metadata" => Endpoint::TargetsMetadata,
            "scrape_pools" => Endpoint::ScrapePools,
            "rules" => Endpoint::Rules,
            "alerts" => Endpoint::Alerts,
            "alertmanagers" => Endpoint::Alertmanagers,
            "status/config" => Endpoint::StatusConfig,
            "status/flags" => Endpoint::StatusFlags,
            "status/buildinfo" => Endpoint::StatusBuildinfo,
            "status/runtimeinfo" => Endpoint::StatusRuntimeinfo,
            "status/tsdb" => Endpoint::StatusTsdb,
            "status/walreplay" => Endpoint::StatusWalReplay,
            "admin/tsdb/delete_series" => Endpoint::AdminDeleteSeries,
            "admin/tsdb/clean_tombstones" => Endpoint::AdminCleanTombstones,
            "admin/tsdb/snapshot" => Endpoint::AdminSnapshot,
            p => {
                // One path segment between `label/` and `/values`, as the router's `:name`.
                let name = p.strip_prefix("label/")?.strip_suffix("/values")?;
                if name.is_empty() || name.contains('/') {
                    return None;
                }
                Endpoint::LabelValues(name.to_string())
            }
        })
    }

    /// Whether the endpoint also takes POST (Prometheus registers GET and POST for these).
    pub fn takes_post(&self) -> bool {
        matches!(
            self,
            Endpoint::Query
                | Endpoint::QueryRange
                | Endpoint::QueryExemplars
                | Endpoint::FormatQuery
                | Endpoint::ParseQuery
                | Endpoint::Series
                | Endpoint::Labels
        )
    }

    /// The admin endpoints take POST and PUT only, as Prometheus registers them.
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Endpoint::AdminDeleteSeries | Endpoint::AdminCleanTombstones | Endpoint::AdminSnapshot
        )
    }

    /// The `Allow` header of a 405 (Go's router lists the methods sorted, `OPTIONS` included).
    pub fn allow(&self) -> &'static str {
        if self.is_admin() {
            "OPTIONS, POST, PUT"
        } else if self.takes_post() {
            "GET, OPTIONS, POST"
        } else {
            "GET, OPTIONS"
        }
    }

    /// The route pattern of the endpoint, as Prometheus names it in its HTTP metrics.
    pub fn pattern(&self) -> &'static str {
        match self {
            Endpoint::Query => "/api/v1/query",
            Endpoint::QueryRange => "/api/v1/query_range",
            Endpoint::QueryExemplars => "/api/v1/query_exemplars",
            Endpoint::FormatQuery => "/api/v1/format_query",
            Endpoint::ParseQuery => "/api/v1/parse_query",
            Endpoint::Series => "/api/v1/series",
            Endpoint::Labels => "/api/v1/labels",
            Endpoint::LabelValues(_) => "/api/v1/label/:name/values",
            Endpoint::Metadata => "/api/v1/metadata",
            Endpoint::Targets => "/api/v1/targets",
            Endpoint::TargetsMetadata => "/api/v1/targets/metadata",
            Endpoint::ScrapePools => "/api/v1/scrape_pools",
            Endpoint::Rules => "/api/v1/rules",
            Endpoint::Alerts => "/api/v1/alerts",
            Endpoint::Alertmanagers => "/api/v1/alertmanagers",
            Endpoint::StatusConfig => "/api/v1/status/config",
            Endpoint::StatusFlags => "/api/v1/status/flags",
            Endpoint::StatusBuildinfo => "/api/v1/status/buildinfo",
            Endpoint::StatusRuntimeinfo => "/api/v1/status/runtimeinfo",
            Endpoint::StatusTsdb => "/api/v1/status/tsdb",
            Endpoint::StatusWalReplay => "/api/v1/status/walreplay",
            Endpoint::AdminDeleteSeries => "/api/v1/admin/tsdb/delete_series",
            Endpoint::AdminCleanTombstones => "/api/v1/admin/tsdb/clean_tombstones",
            Endpoint::AdminSnapshot => "/api/v1/admin/tsdb/snapshot",
        }
    }

    pub fn allows(&self, method: &Method) -> bool {
        if self.is_admin() {
            return matches!(method, Method::Post | Method::Put);
        }
        match method {
            Method::Get => true,
            Method::Post => self.takes_post(),
            _ => false,
        }
    }
}

impl Handler for ApiHandler {
    async fn handle(&self, req: Request) -> Response {
        let app = &*self.app;
        let path = match route_prefix::route(&self.prefix, req.path()) {
            Routed::Inner(p) => p.to_string(),
            Routed::Redirect(status, location) => return redirect(status, &location),
            Routed::NotFound => return not_found(),
        };
        let started = Instant::now();
        let response = self.dispatch(app, &req, &path).await;
        if let Some(handler) = handler_label(&path) {
            let code = response.status().as_u16();
            app.http_metrics.observe(handler, code, started.elapsed());
        }
        response
    }
}

/// The route pattern Prometheus labels a request's metrics with (`handler`); `None` for a
/// path no route serves.
fn handler_label(path: &str) -> Option<&'static str> {
    if path.starts_with("/api/v1/") {
        return Endpoint::route(path).map(|e| e.pattern());
    }
    Some(match path {
        "/-/healthy" => "/-/healthy",
        "/-/ready" => "/-/ready",
        "/-/reload" => "/-/reload",
        "/-/quit" => "/-/quit",
        "/metrics" => "/metrics",
        "/federate" => "/federate",
        "/" => "/",
        _ => return None,
    })
}

impl ApiHandler {
    async fn dispatch(&self, app: &App, req: &Request, path: &str) -> Response {
        if path.starts_with("/api/v1/") {
            return self.api(app, req, path).await;
        }
        let read_only = matches!(req.method(), Method::Get | Method::Head);
        match path {
            "/-/healthy" if read_only => lifecycle::healthy(),
            "/-/ready" if read_only => lifecycle::ready(app),
            "/-/reload" => lifecycle::reload(app, req),
            "/-/quit" => lifecycle::quit(app, req),
            "/metrics" if read_only => Response::new(StatusCode::OK).with_body(
                crate::metrics::CONTENT_TYPE,
                self_metrics::render(app).await.into_bytes(),
            ),
            "/federate" if read_only => federate::federate(app, req).await,
            // No UI: the home page is the build information, under the prefix.
            "/" if read_only => redirect(
                302,
                &format!(
                    "{}/api/v1/status/buildinfo",
                    self.prefix.trim_end_matches('/')
                ),
            ),
            _ => not_found(),
        }
    }
}

fn not_found() -> Response {
    Response::text(StatusCode::NOT_FOUND, "404 page not found\n")
}

impl ApiHandler {
    async fn api(&self, app: &App, req: &Request, path: &str) -> Response {
        let origin = req.header("origin");
        if *req.method() == Method::Options {
            let mut r = Response::new(StatusCode::NO_CONTENT);
            self.cors.apply(origin, &mut r);
            return r;
        }
        let Some(endpoint) = Endpoint::route(path) else {
            return not_found();
        };
        if !endpoint.allows(req.method()) {
            return Response::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n")
                .with_header("Allow", endpoint.allow());
        }
        let mut r = serve(app, req, endpoint).await;
        self.cors.apply(origin, &mut r);
        r
    }
}

async fn serve(app: &App, req: &Request, endpoint: Endpoint) -> Response {
    match endpoint {
        Endpoint::Query => query::instant(app, req).await,
        Endpoint::QueryRange => query::range(app, req).await,
        Endpoint::QueryExemplars => expression::query_exemplars(req),
        Endpoint::FormatQuery => expression::format_query(req),
        Endpoint::ParseQuery => parse_query::parse_query(req),
        Endpoint::Series => v1::series(app, req).await,
        Endpoint::Labels => v1::labels(app, req).await,
        Endpoint::LabelValues(name) => v1::label_values(app, req, &name).await,
        Endpoint::Metadata => v1::metadata(app, req),
        Endpoint::Targets => v1::targets(app, req),
        Endpoint::TargetsMetadata => v1::targets_metadata(app, req),
        Endpoint::ScrapePools => v1::scrape_pools(app),
        Endpoint::Rules => rules::rules(app, req),
        Endpoint::Alerts => rules::alerts(app),
        Endpoint::Alertmanagers => rules::alertmanagers(app),
        Endpoint::StatusConfig => v1::status_config(app),
        Endpoint::StatusFlags => v1::status_flags(app),
        Endpoint::StatusBuildinfo => v1::status_buildinfo(),
        Endpoint::StatusRuntimeinfo => v1::status_runtimeinfo(app),
        Endpoint::StatusTsdb => v1::status_tsdb(app, req).await,
        Endpoint::StatusWalReplay => v1::status_walreplay(app),
        Endpoint::AdminDeleteSeries => admin::delete_series(app, req).await,
        Endpoint::AdminCleanTombstones => admin::clean_tombstones(app).await,
        Endpoint::AdminSnapshot => admin::snapshot(app, req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_labels_are_prometheus_route_patterns() {
        assert_eq!(
            handler_label("/api/v1/label/job/values"),
            Some("/api/v1/label/:name/values")
        );
        assert_eq!(
            handler_label("/api/v1/query_range"),
            Some("/api/v1/query_range")
        );
        assert_eq!(handler_label("/federate"), Some("/federate"));
        assert_eq!(handler_label("/api/v1/nothing"), None);
        assert_eq!(handler_label("/nothing"), None);
    }

    #[test]
    fn routes_and_methods() {
        assert_eq!(Endpoint::route("/api/v1/query"), Some(Endpoint::Query));
        assert_eq!(
            Endpoint::route("/api/v1/label/job/values"),
            Some(Endpoint::LabelValues("job".into()))
        );
        assert_eq!(Endpoint::route("/api/v1/label//values"), None);
        assert_eq!(Endpoint::route("/api/v1/label/a/b/values"), None);
        assert_eq!(Endpoint::route("/api/v1/nope"), None);
        assert!(Endpoint::Query.allows(&Method::Post));
        assert!(!Endpoint::Query.allows(&Method::Put));
        assert!(!Endpoint::Query.allows(&Method::Head));
        assert!(!Endpoint::Metadata.allows(&Method::Post));
        assert_eq!(Endpoint::Rules.allow(), "GET, OPTIONS");
        assert_eq!(Endpoint::Labels.allow(), "GET, OPTIONS, POST");
    }
}
