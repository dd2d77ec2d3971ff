//! The handler of the listeners on the cores besides the router's (the "fronts", see
//! `crate::front`): it answers on its own core what it can answer from thread-safe state
//! already published, exactly as the router's `ApiHandler` would (same bytes, headers, CORS,
//! route prefix and HTTP metrics), and forwards every other request to the router.
//!
//! Answered here: `/-/healthy`, and `labels` (GET, POST) and `label/<name>/values` (GET)
//! without `match[]` once every shard is connected, when every shard's published label tables
//! answer them (`v1::published_label_answer`, the code the router's answer runs). Anything
//! else, errors included, is the router's: the front never interprets what it does not
//! answer, and never holds state of its own beyond counters.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use shards::label_generation::LabelGeneration;

use crate::http::forward::Forwarder;
use crate::http::{Handler, Method, Request, Response};
use crate::metrics::{Kind, MetricsWriter};
use crate::router::LabelRequest;

use super::cors::Cors;
use super::handler::Endpoint;
use super::http_metrics::HttpMetrics;
use super::route_prefix::{self, Routed};
use super::{lifecycle, params, v1};

const FRONT_REQUESTS: &str = "promcore_http_front_requests_total";

/// What the router and every front share.
#[derive(Debug)]
pub struct FrontShared {
    /// The HTTP metrics of every listener (the router's `App` holds the same).
    pub http_metrics: Arc<HttpMetrics>,
    /// Every shard's published label tables, in shard order; set by the router once every
    /// shard is connected (before that, label requests are the router's 503).
    labels: OnceLock<Vec<Arc<LabelGeneration>>>,
    /// Per core (index 0, the router's, stays zero): requests answered there, forwarded.
    counts: Vec<[AtomicU64; 2]>,
}

impl FrontShared {
    pub fn new(cores: usize, http_metrics: Arc<HttpMetrics>) -> Arc<FrontShared> {
        Arc::new(FrontShared {
            http_metrics,
            labels: OnceLock::new(),
            counts: (0..cores).map(|_| Default::default()).collect(),
        })
    }

    /// Called once by the router, when every shard is connected.
    pub fn publish_labels(&self, generations: Vec<Arc<LabelGeneration>>) {
        let _ = self.labels.set(generations);
    }

    fn count(&self, core: usize, forwarded: bool) {
        if let Some(c) = self.counts.get(core) {
            c[usize::from(forwarded)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `promcore_http_front_requests_total{core, answered="locally"|"forwarded"}`, for the
    /// cores that have a front.
    pub fn write(&self, w: &mut MetricsWriter) {
        if self.counts.len() < 2 {
            return;
        }
        w.family(
            FRONT_REQUESTS,
            "HTTP requests accepted by the listener of a core besides the router's, by whether that core answered them or forwarded them to the router.",
            Kind::Counter,
        );
        for (core, c) in self.counts.iter().enumerate().skip(1) {
            let core = core.to_string();
            for (i, answered) in ["locally", "forwarded"].into_iter().enumerate() {
                let n = c[i].load(Ordering::Relaxed) as f64;
                w.sample(
                    FRONT_REQUESTS,
                    &[("answered", answered), ("core", &core)],
                    n,
                );
            }
        }
    }
}

pub struct FrontHandler {
    core: usize,
    shared: Arc<FrontShared>,
    cors: Cors,
    /// `/` or `/prefix` (`route_prefix`).
    prefix: String,
    forwarder: Rc<Forwarder>,
}

impl FrontHandler {
    /// `cors` and `prefix` as `handler::api_policy` makes them for the router.
    pub fn new(
        core: usize,
        shared: Arc<FrontShared>,
        (cors, prefix): (Cors, String),
        forwarder: Rc<Forwarder>,
    ) -> Self {
        FrontHandler {
            core,
            shared,
            cors,
            prefix,
            forwarder,
        }
    }

    /// The router's answer when this core can give it from published state; `None` for the
    /// router to answer.
    fn local(&self, req: &Request) -> Option<Response> {
        let Routed::Inner(path) = route_prefix::route(&self.prefix, req.path()) else {
            return None;
        };
        let started = Instant::now();
        let method = req.method();
        let (handler, response) = if path == "/-/healthy" {
            if !matches!(method, Method::Get | Method::Head) {
                return None;
            }
            ("/-/healthy", lifecycle::healthy())
        } else {
            let endpoint = Endpoint::route(path)?;
            if !endpoint.allows(method) {
                return None;
            }
            let generations = self.shared.labels.get()?;
            let mut response = match &endpoint {
                Endpoint::Labels => {
                    v1::published_label_answer(generations, req, LabelRequest::Names)?
                }
                Endpoint::LabelValues(name) => {
                    let name = params::decode_label_name(name).ok()?;
                    v1::published_label_answer(generations, req, LabelRequest::Values(&name))?
                }
                _ => return None,
            };
            self.cors.apply(req.header("origin"), &mut response);
            (endpoint.pattern(), response)
        };
        let code = response.status().as_u16();
        self.shared
            .http_metrics
            .observe(handler, code, started.elapsed());
        Some(response)
    }
}

impl Handler for FrontHandler {
    async fn handle(&self, req: Request) -> Response {
        if let Some(response) = self.local(&req) {
            self.shared.count(self.core, false);
            return response;
        }
        self.shared.count(self.core, true);
        match self.forwarder.forward(req).await {
            Some(response) => response,
            // The router stopped serving (shutting down).
            None => v1::unavailable(),
        }
    }
}
