//! Operations: what the dispatch server tells the people who run it, and only that (issue 14).
//!
//! A backend team running dispatch needs to see that it works (requests, syncs, what devices
//! push, what is refused and why) without the server becoming a second place where customer data
//! lives. So this module owns both outputs, and both are built from the same value-free facts: the
//! route *template* (`/v1/operator/jobs/{id}`, never the path with its id), the method, the
//! status, the error's stable code, the duration, and counts of events by kind. Nothing from a
//! request body, a header value or a token reaches a log line or a metric label; the test
//! `operations_output_holds_no_customer_value_token_or_id` drives a day with canary values and
//! scans both.
//!
//! - Logs go through `tracing` (the binary installs a text or JSON-lines subscriber, filtered by
//!   `RUST_LOG`-style directives); one event per request at `info` under the target
//!   `jobseal_dispatch::http`, internal errors at `error`.
//! - Metrics are Prometheus counters and a histogram (`prometheus-client`), served at `/metrics`
//!   in the OpenMetrics text format behind a bearer token: the scrape token if one is configured
//!   (`ServerConfig::metrics_token`), otherwise the operator token. A scrape credential that cannot
//!   create jobs or wipe devices is the point of the separate token.

use crate::error::{ApiError, ErrorCode};
use crate::service::Service;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

/// The OpenMetrics text format's media type, which Prometheus negotiates and parses.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of a request counter: the route template, the method and the status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

/// Labels of the duration histogram: the route template only (methods per route are fixed).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// Labels of a refusal: where, and the stable error code the client was given.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    route: String,
    code: String,
}

/// Labels of a pushed event: its kind (`state`, `audit`, `receipt`, ...) and what came of it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    kind: String,
    outcome: String,
}

/// What one committed sync did, counted by the sync while it runs and handed to
/// [`Metrics::record_sync`] only once its transaction has committed (a rolled-back sync counts as
/// a refusal, not as events).
#[derive(Default)]
pub(crate) struct SyncTally {
    /// (event kind, outcome) of every event in the request.
    events: Vec<(&'static str, &'static str)>,
}

impl SyncTally {
    /// Notes one pushed event: `kind` is the event's wire kind, `outcome` one of `applied`,
    /// `ignored` (acknowledged without effect) or `duplicate` (applied by an earlier request).
    pub(crate) fn event(&mut self, kind: &'static str, outcome: &'static str) {
        self.events.push((kind, outcome));
    }
}

/// The server's counters. One per [`Service`]; cheap to update from any thread.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    refusals: Family<RefusalLabels, Counter>,
    syncs: Counter,
    events: Family<EventLabels, Counter>,
}

impl Metrics {
    /// A fresh set of counters, registered under the `jobseal_dispatch` prefix.
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("jobseal_dispatch");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        // 1 ms to about 16 s.
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's headers to its answer, by route template",
            durations.clone(),
        );
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "refusals",
            "Requests answered with an error, by route template and the error's stable code",
            refusals.clone(),
        );
        let syncs = Counter::default();
        registry.register("syncs", "Device syncs committed", syncs.clone());
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "sync_events",
            "Events pushed in committed syncs, by kind and outcome (applied, ignored, duplicate)",
            events.clone(),
        );
        Metrics { registry, requests, durations, refusals, syncs, events }
    }

    /// Counts a committed sync and its events.
    pub(crate) fn record_sync(&self, tally: SyncTally) {
        self.syncs.inc();
        for (kind, outcome) in tally.events {
            self.events.get_or_create(&EventLabels { kind: kind.to_owned(), outcome: outcome.to_owned() }).inc();
        }
    }

    fn record_request(&self, route: &str, method: &str, status: u16, code: Option<&str>, seconds: f64) {
        let route = route.to_owned();
        self.requests.get_or_create(&RequestLabels { route: route.clone(), method: method.to_owned(), status }).inc();
        self.durations.get_or_create(&RouteLabels { route: route.clone() }).observe(seconds);
        if let Some(code) = code {
            self.refusals.get_or_create(&RefusalLabels { route, code: code.to_owned() }).inc();
        }
    }

    /// The OpenMetrics text of every counter.
    fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The middleware around every route: times the request, then counts and logs its answer. The
/// route is the matched template, or `unmatched` for a path no route has, and an unusual method
/// is `other`, so that a scanner probing random paths and methods cannot grow the label set.
pub(crate) async fn observe(State(service): State<Arc<Service>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    // Standard methods by name, anything else as `other`: a client can send any token as a
    // method, and each would otherwise be a new series.
    let method = match request.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "HEAD" | "OPTIONS" | "PATCH") => m,
        _ => "other",
    }
    .to_owned();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let seconds = elapsed.as_secs_f64();
    let status = response.status().as_u16();
    let code = response.extensions().get::<ErrorCode>().map(|c| c.0);
    service.metrics.record_request(&route, &method, status, code, seconds);
    tracing::info!(
        target: "jobseal_dispatch::http",
        method = %method,
        route = %route,
        status,
        code = code.unwrap_or(""),
        ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "request"
    );
    response
}

/// `GET /metrics`: the counters, for a Prometheus scrape with the scrape (or operator) token.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    security(("metrics_token" = []), ("operator_token" = [])),
    responses((status = 200, description = "Every counter, in the OpenMetrics text format (docs/operations.md).",
        content_type = "application/openmetrics-text", body = String)))]
pub(crate) async fn metrics(State(service): State<Arc<Service>>, headers: HeaderMap) -> Result<Response, ApiError> {
    service.check_metrics(&headers)?;
    let text = service.metrics.render().map_err(|e| ApiError::internal(&e))?;
    Ok(([(CONTENT_TYPE, OPENMETRICS)], text).into_response())
}
