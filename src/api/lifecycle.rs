//! The management endpoints: `/-/healthy`, `/-/ready`, `/-/reload` and `/-/quit`, with
//! Prometheus's methods, status codes and texts (tools and load balancers look at them).

use crate::http::{Method, Request, Response, StatusCode};
use crate::server::App;

pub fn healthy() -> Response {
    Response::text(StatusCode::OK, "Prometheus Server is Healthy.\n")
}

/// 503 until every shard has rebuilt its head and scraping runs.
pub fn ready(app: &App) -> Response {
    if app.is_ready() {
        Response::text(StatusCode::OK, "Prometheus Server is Ready.\n")
    } else {
        Response::text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
    }
}

fn lifecycle_allowed(app: &App, req: &Request) -> Result<(), Response> {
    if !matches!(req.method(), Method::Post | Method::Put) {
        return Err(Response::text(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only POST or PUT requests allowed",
        )
        .with_header("Allow", "POST, PUT"));
    }
    if !app.flags.web_enable_lifecycle {
        return Err(Response::text(
            StatusCode::FORBIDDEN,
            "Lifecycle API is not enabled.",
        ));
    }
    Ok(())
}

/// Reloads the configuration; a bad one is refused (500 and the error) and the running one
/// stays, exactly as SIGHUP.
pub fn reload(app: &App, req: &Request) -> Response {
    if let Err(r) = lifecycle_allowed(app, req) {
        return r;
    }
    match app.reload() {
        Ok(()) => Response::new(StatusCode::OK),
        Err(e) => Response::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        ),
    }
}

/// Starts a clean shutdown, as SIGTERM.
pub fn quit(app: &App, req: &Request) -> Response {
    if let Err(r) = lifecycle_allowed(app, req) {
        return r;
    }
    app.quit();
    Response::text(StatusCode::OK, "Requesting termination... Goodbye!\n")
}
