//! Routes each HTTP request to its endpoint. The table below is the whole surface of the server
//! today; each endpoint lives in the module named after what it serves.

use std::rc::Rc;

use crate::http::{Handler, Method, Request, Response, StatusCode};
use crate::server::App;

use super::{federate, lifecycle, query, self_metrics, v1};

pub struct ApiHandler {
    app: Rc<App>,
}

impl ApiHandler {
    pub fn new(app: Rc<App>) -> Self {
        ApiHandler { app }
    }
}

impl Handler for ApiHandler {
    async fn handle(&self, req: Request) -> Response {
        let app = &*self.app;
        let path = req.path().to_string();
        let read_only = matches!(req.method(), Method::Get | Method::Head);
        let get_or_post = read_only || *req.method() == Method::Post;
        match path.as_str() {
            "/-/healthy" if read_only => lifecycle::healthy(),
            "/-/ready" if read_only => lifecycle::ready(app),
            "/-/reload" => lifecycle::reload(app, &req),
            "/-/quit" => lifecycle::quit(app, &req),
            "/metrics" if read_only => Response::new(StatusCode::OK).with_body(
                crate::metrics::CONTENT_TYPE,
                self_metrics::render(app).await.into_bytes(),
            ),
            "/federate" if read_only => federate::federate(app, &req).await,
            "/api/v1/query" if get_or_post => query::instant(app, &req).await,
            "/api/v1/query_range" if get_or_post => query::range(app, &req).await,
            "/api/v1/series" if get_or_post => v1::series(app, &req).await,
            "/api/v1/labels" if get_or_post => v1::labels(app, &req).await,
            "/api/v1/targets" if read_only => v1::targets(app, &req),
            "/api/v1/status/config" if read_only => v1::status_config(app),
            "/api/v1/status/flags" if read_only => v1::status_flags(app),
            "/api/v1/status/buildinfo" if read_only => v1::status_buildinfo(),
            "/" if read_only => Response::new(StatusCode::new(302).unwrap_or(StatusCode::OK))
                .with_header("Location", "/api/v1/status/buildinfo"),
            p if read_only && p.starts_with("/api/v1/label/") && p.ends_with("/values") => {
                let name = &p["/api/v1/label/".len()..p.len() - "/values".len()];
                v1::label_values(app, &req, name).await
            }
            p if p.starts_with("/api/v1/") => v1::not_found_or_method(&req),
            _ => Response::text(StatusCode::NOT_FOUND, "404 page not found\n"),
        }
    }
}
