//! The HTTP server: the only code that knows axum. It owns the `[http]` config
//! section, the router, and the translation of every subsystem's errors into
//! status codes. Handlers are thin: parse the request, call a subsystem, shape
//! the answer.

mod admin;
mod auth;
mod cardinality;
mod checks;
mod dashboards;
pub mod elastic;
mod elastic_search;
pub mod error;
mod graphite;
pub mod logs;
mod logsearch;
mod status;
mod tsdb;
mod ui;

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

pub use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;

use crate::config::{Listen, Problem, Size};
use crate::telemetry::{Budget, Counter, LogHandle, Registry};
use error::ApiError;

/// The `[http]` section. Defaults and documentation: config/instantops.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: Listen,
    /// Unset by default: writes are open unless a token is configured.
    #[serde(default)]
    pub token: Option<String>,
    pub max_body: Size,
}

impl Config {
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if let Some(token) = &self.token
            && (token.trim().is_empty() || token.trim() != token)
        {
            problems.push(Problem::new("http.token", "must be non-empty and have no surrounding spaces"));
        }
        if self.max_body.bytes() < 1024 || self.max_body.bytes() > 1 << 30 {
            problems.push(Problem::new("http.max_body", format!("{} is outside 1KiB..1GiB", self.max_body)));
        }
        problems
    }
}

/// The stores and subsystem settings handlers read.
pub struct Backends {
    pub store: Arc<crate::tsdb::Store>,
    pub graphite: crate::graphite::Config,
    /// None when the log store is not running.
    pub logs: Option<logs::LogsApi>,
    pub alerts: Option<Arc<crate::alerts::engine::Engine>>,
    /// The host collector's series-count samples, for `/api/cardinality`.
    pub cardinality: Arc<crate::host::cardinality::Cardinality>,
    /// Where data lives and how long it is kept, for the overview.
    pub storage: Storage,
    pub dashboards: Arc<crate::dashboards::DashboardStore>,
}

/// The data folder and retention settings `/api/status` reports.
#[derive(Debug, Clone, Default)]
pub struct Storage {
    pub data_dir: std::path::PathBuf,
    /// carbon.schemas as (pattern, retentions), first match wins.
    pub schemas: Vec<(String, String)>,
    /// logs.retention and logs.max_disk; None when the log store is off.
    pub logs_retention_s: Option<u64>,
    pub logs_max_disk: Option<u64>,
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub registry: Registry,
    pub budget: Budget,
    pub log: LogHandle,
    pub token: Option<String>,
    /// Every bound listener, by contract name, in start order.
    pub listeners: Vec<(&'static str, SocketAddr)>,
    pub started: Instant,
    pub ready: AtomicBool,
    pub backends: Backends,
    auth_failures: Counter,
    requests: [Counter; 5],
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(
        registry: Registry,
        budget: Budget,
        log: LogHandle,
        token: Option<String>,
        listeners: Vec<(&'static str, SocketAddr)>,
        backends: Backends,
    ) -> AppState {
        let auth_failures = registry.counter("instantops_http_auth_failures_total", "Writes refused for a missing or wrong token.", &[]);
        let requests = ["1xx", "2xx", "3xx", "4xx", "5xx"].map(|class| {
            registry.counter("instantops_http_requests_total", "HTTP requests answered, by status class.", &[("code", class)])
        });
        AppState(Arc::new(Shared {
            registry,
            budget,
            log,
            token,
            listeners,
            started: Instant::now(),
            ready: AtomicBool::new(false),
            backends,
            auth_failures,
            requests,
        }))
    }
}

/// The whole HTTP surface. Routes that change state are grouped in `writes`
/// and sit behind the token check; everything else is a read.
pub fn router(state: AppState, max_body: usize) -> Router {
    let writes = Router::new()
        .route("/api/config/log_level", put(admin::put_log_level))
        .route("/api/tsdb/compact", post(tsdb::compact))
        .route("/api/logs", post(logs::post))
        .route("/api/checks", post(checks::create))
        .route("/api/checks/{id}", put(checks::update).delete(checks::delete))
        .route("/api/checks/{id}/alerts", delete(checks::forget))
        .route("/api/checks/{id}/subscriptions", post(checks::add_subscription))
        .route("/api/checks/{id}/subscriptions/{sid}", put(checks::put_subscription).delete(checks::delete_subscription))
        .route("/api/checks/{id}/subscriptions/{sid}/test", put(checks::test_subscription))
        .route("/api/checks/{id}/alerts/{aid}/ack", post(checks::acknowledge))
        .route("/api/checks/{id}/silence", put(checks::silence).delete(checks::unsilence))
        .route("/api/dashboards", post(dashboards::create))
        .route("/api/dashboards/{id}", put(dashboards::put).delete(dashboards::delete))
        .merge(graphite::write_routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_token));
    let reads = Router::new()
        .route("/healthz", get(status::healthz))
        .route("/api/status", get(status::status))
        .route("/metrics", get(status::prometheus))
        .route("/api/config/log_level", get(admin::get_log_level))
        .route("/api/checks", get(checks::list))
        .route("/api/checks/noisiest", get(checks::noisiest))
        .route("/api/checks/{id}", get(checks::get))
        .route("/api/checks/{id}/alerts", get(checks::alerts))
        .route("/api/checks/{id}/actions", get(checks::actions))
        .route("/api/checks/{id}/image", get(checks::image))
        .route("/api/chart/{target}", get(checks::chart))
        .route("/api/alerts", get(checks::all_alerts))
        .route("/api/dashboards", get(dashboards::list))
        .route("/api/dashboards/{id}", get(dashboards::get))
        .route("/api/cardinality", get(cardinality::cardinality))
        .route("/api/logs/search", get(logsearch::search))
        .route("/api/logs/histogram", get(logsearch::histogram))
        .route("/api/logs/fields", get(logsearch::fields))
        .route("/api/logs/tail", get(logsearch::tail))
        .merge(graphite::routes())
        .merge(ui::routes());
    reads
        .merge(writes)
        .fallback(not_found)
        .layer(middleware::map_response(error::json_errors))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .with_state(state)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    ApiError::NotFound(format!("no route for {method} {}", uri.path())).into_response()
}

async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let class = usize::from(response.status().as_u16() / 100).clamp(1, 5) - 1;
    state.requests[class].inc();
    response
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
