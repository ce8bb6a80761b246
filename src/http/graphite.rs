//! The Graphite-web routes: request parsing (query string and form body
//! merged, as graphite-web merges them) and the blocking store work off the
//! async threads. The semantics live in `crate::graphite`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::error::ApiError;
use crate::graphite::render::Reply;
use crate::graphite::{events, find, functions, render, tags};

/// The one Graphite route that changes state; `http/mod.rs` puts it behind the token.
pub fn write_routes() -> Router<AppState> {
    Router::new().route("/events", axum::routing::post(post_event)).route("/events/", axum::routing::post(post_event))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/render", get(render_view).post(render_view))
        .route("/render/", get(render_view).post(render_view))
        .route("/metrics/find", get(find_view).post(find_view))
        .route("/metrics/find/", get(find_view).post(find_view))
        .route("/metrics/expand", get(expand_view).post(expand_view))
        .route("/metrics/index.json", get(index_view))
        .route("/tags/findSeries", get(find_series).post(find_series))
        .route("/tags", get(tags_list))
        .route("/tags/", get(tags_list))
        .route("/tags/autoComplete/tags", get(autocomplete_tags).post(autocomplete_tags))
        .route("/tags/autoComplete/values", get(autocomplete_values).post(autocomplete_values))
        .route("/tags/{tag}", get(tag_details))
        .route("/events/get_data", get(events_data))
        .route("/version", get(version))
        .route("/version/", get(version))
        .route("/functions", get(functions_view))
        .route("/functions/", get(functions_view))
        .route("/functions/{name}", get(function_view))
}

/// Query string pairs, then form-body pairs (when the body is a form).
fn params(query: Option<String>, headers: &HeaderMap, body: &Bytes) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if is_form && !body.is_empty() {
        out.extend(form_urlencoded::parse(body).into_owned());
    }
    out
}

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, reply.body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Runs a graphite view on this thread, with the runtime's worker handed to
/// another thread for its duration (`block_in_place`), so other connections
/// keep being served. A render used to go to the blocking pool and its answer
/// back to this task: two thread wake-ups per request, and the 180 KB body of
/// a 24 h series written on one core and sent from another. In an
/// interleaved loop that render went from 0.63-0.70 to 0.50 ms with this
/// alone (BENCHMARKS.md, "Graphite API"). The runtime is always
/// multi-threaded (`main.rs`).
async fn blocking(state: AppState, work: impl FnOnce(&AppState) -> Reply) -> Response {
    let reply = tokio::task::block_in_place(move || {
        crate::telemetry::accounts::within(crate::telemetry::accounts::Account::Queries, || work(&state))
    });
    respond(reply)
}

fn wall_clock() -> i64 {
    i64::from(crate::tsdb::store::unix_now())
}

async fn render_view(State(state): State<AppState>, RawQuery(query): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let p = params(query, &headers, &body);
    blocking(state, move |s| render::render(&s.backends.store, &p, s.backends.graphite.limits(), wall_clock())).await
}

/// A read of the catalog: the merged parameters and `graphite.max_series`.
type CatalogView = fn(&crate::tsdb::Store, &[(String, String)], usize) -> Reply;

async fn catalog_view(state: AppState, query: Option<String>, headers: HeaderMap, body: Bytes, view: CatalogView) -> Response {
    let p = params(query, &headers, &body);
    blocking(state, move |s| view(&s.backends.store, &p, s.backends.graphite.max_series)).await
}

async fn find_view(State(state): State<AppState>, RawQuery(query): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    catalog_view(state, query, headers, body, find::find_view).await
}

async fn expand_view(State(state): State<AppState>, RawQuery(query): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    catalog_view(state, query, headers, body, find::expand_view).await
}

async fn index_view(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    catalog_view(state, query, HeaderMap::new(), Bytes::new(), find::index_view).await
}

async fn find_series(State(state): State<AppState>, RawQuery(query): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    catalog_view(state, query, headers, body, tags::find_series_view).await
}

async fn tags_list(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let p = params(query, &HeaderMap::new(), &Bytes::new());
    blocking(state, move |s| tags::list_view(&s.backends.store, &p)).await
}

async fn tag_details(State(state): State<AppState>, Path(tag): Path<String>, RawQuery(query): RawQuery) -> Response {
    let p = params(query, &HeaderMap::new(), &Bytes::new());
    blocking(state, move |s| tags::tag_view(&s.backends.store, &tag, &p)).await
}

async fn autocomplete_tags(State(state): State<AppState>, RawQuery(query): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    catalog_view(state, query, headers, body, tags::autocomplete_tags).await
}

async fn autocomplete_values(State(state): State<AppState>, RawQuery(query): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    catalog_view(state, query, headers, body, tags::autocomplete_values).await
}

async fn post_event(State(state): State<AppState>, body: Bytes) -> Response {
    blocking(state, move |s| events::post(&s.backends.store, &body, wall_clock())).await
}

async fn events_data(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let p = params(query, &HeaderMap::new(), &Bytes::new());
    blocking(state, move |s| events::get_data(&s.backends.store, &p, wall_clock())).await
}

async fn version() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], crate::graphite::VERSION).into_response()
}

/// graphite-web's `/functions` metadata for the implemented functions only,
/// built once.
fn metadata() -> &'static serde_json::Map<String, serde_json::Value> {
    static METADATA: std::sync::OnceLock<serde_json::Map<String, serde_json::Value>> = std::sync::OnceLock::new();
    METADATA.get_or_init(|| {
        let all = functions::metadata_json();
        let mut out = serde_json::Map::new();
        for name in functions::names() {
            if let Some(entry) = all.get(name) {
                let mut entry = entry.clone();
                entry["name"] = serde_json::Value::String(name.to_string());
                out.insert(name.to_string(), entry);
            }
        }
        out
    })
}

async fn functions_view(RawQuery(query): RawQuery) -> Response {
    let p = params(query, &HeaderMap::new(), &Bytes::new());
    let grouped = render::first(&p, "grouped").is_some_and(|g| g != "0" && !g.is_empty());
    let group = render::first(&p, "group");
    let mut meta = metadata().clone();
    if let Some(g) = group {
        meta.retain(|_, v| v["group"] == g);
    }
    let value = if grouped {
        let mut by_group = serde_json::Map::new();
        for (name, entry) in meta {
            let g = entry["group"].as_str().unwrap_or("Ungrouped").to_string();
            by_group.entry(g).or_insert_with(|| serde_json::json!({}))[&name] = entry;
        }
        serde_json::Value::Object(by_group)
    } else {
        serde_json::Value::Object(meta)
    };
    let text = value.to_string().replace("\"Infinity\"", "1e9999");
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

async fn function_view(Path(name): Path<String>) -> Response {
    match metadata().get(&name) {
        Some(entry) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], entry.to_string().replace("\"Infinity\"", "1e9999"))
            .into_response(),
        None => ApiError::NotFound(format!("no function {name:?}")).into_response(),
    }
}
