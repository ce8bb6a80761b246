//! Log search on `http.listen` (CONTRACT.md): `GET /api/logs/search`,
//! `/api/logs/histogram`, `/api/logs/fields` and the live `/api/logs/tail`
//! (Server-Sent Events). Queries are Lucene syntax (`logs::query`) with AND
//! between juxtaposed clauses; times are Graphite time specs.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query as Params, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::error::ApiError;
use super::logs::{LogsApi, api};
use crate::logs::aggs;
use crate::logs::index::LogIndex;
use crate::logs::matcher::Matcher;
use crate::logs::query::{self, Operator};
use crate::logs::search::{Order, Position, Request, SearchError};
use crate::logs::time::now_ms;

/// Histogram buckets asked for when `buckets` is not given, and the most allowed.
const DEFAULT_BUCKETS: u64 = 60;
const MAX_BUCKETS: u64 = 2_000;

#[derive(Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    from: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    /// `asc` for oldest first; newest first otherwise.
    order: Option<String>,
    buckets: Option<u64>,
    field: Option<String>,
    size: Option<u32>,
}

pub fn search_error(e: SearchError) -> ApiError {
    match e {
        SearchError::Bad(m) => ApiError::BadRequest(m),
        SearchError::Index(e) => ApiError::Internal(e.to_string()),
    }
}

/// The query and time range every log read takes: `from` defaults to 24 h ago,
/// `until` to now (both inclusive, to the millisecond).
fn scope(p: &SearchParams, now: i64) -> Result<(query::Query, i64, i64), ApiError> {
    let q = query::parse(&p.q, Operator::And).map_err(|e| ApiError::BadRequest(format!("bad query: {e}")))?;
    let time = |spec: &Option<String>, default: i64| -> Result<i64, ApiError> {
        match spec.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(s) => crate::graphite::timespec::parse(s, now / 1000).map(|t| t * 1000).map_err(|e| ApiError::BadRequest(e.to_string())),
        }
    };
    let from = time(&p.from, now - 86_400_000)?;
    let until = time(&p.until, now)?.saturating_add(999);
    if from > until {
        return Err(ApiError::BadRequest("from is after until".into()));
    }
    Ok((q, from, until))
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(|| crate::telemetry::accounts::within(crate::telemetry::accounts::Account::Queries, work))
        .await
        .map_err(|e| ApiError::Internal(format!("log search panicked: {e}")))?
}

fn index(api: &LogsApi) -> Arc<LogIndex> {
    Arc::clone(&api.http.logs.index)
}

/// `GET /api/logs/search`: `{"total", "took_ms", "hits", "cursor", "timed_out"}`;
/// `cursor` (null on the last page) fetches the next page.
pub async fn search(State(state): State<AppState>, Params(p): Params<SearchParams>) -> Result<Json<Value>, ApiError> {
    let api = api(&state)?.clone();
    let now = now_ms();
    let (query, from_ms, until_ms) = scope(&p, now)?;
    let after = match p.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(Position::decode(c).ok_or_else(|| ApiError::BadRequest(format!("cursor {c:?} is not one this API handed out")))?),
    };
    let order = match p.order.as_deref() {
        None | Some("desc") => Order::NewestFirst,
        Some("asc") => Order::OldestFirst,
        Some(other) => return Err(ApiError::BadRequest(format!("order {other:?}: use asc or desc"))),
    };
    let limit = p.limit.unwrap_or(100);
    let req = Request { query, from_ms, until_ms, order, offset: 0, limit, after };
    let (index, limits) = (index(&api), api.limits);
    let started = Instant::now();
    let found = blocking(move || index.find(&req, &limits, now).map_err(search_error)).await?;
    let cursor = (found.hits.len() == limit && limit > 0).then(|| found.hits.last().map(|h| h.position.encode())).flatten();
    let hits: Vec<Value> = found.hits.iter().filter_map(|h| serde_json::from_str(&h.source).ok()).collect();
    Ok(Json(json!({
        "total": found.total,
        "took_ms": started.elapsed().as_millis() as u64,
        "timed_out": found.timed_out,
        "hits": hits,
        "cursor": cursor,
    })))
}

/// The bucket width for about `buckets` buckets over `span_ms`: a round
/// number of seconds, minutes, hours or days.
fn interval_s(span_ms: i64, buckets: u64) -> i64 {
    const STEPS: [i64; 20] =
        [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 604_800, 2_592_000];
    let want = (span_ms / 1000).max(1) / buckets.max(1) as i64;
    STEPS.iter().copied().find(|&s| s >= want).unwrap_or((want + 86_399) / 86_400 * 86_400)
}

/// `GET /api/logs/histogram`: matches per time bucket, empty buckets included.
pub async fn histogram(State(state): State<AppState>, Params(p): Params<SearchParams>) -> Result<Json<Value>, ApiError> {
    let api = api(&state)?.clone();
    let now = now_ms();
    let (query, from_ms, until_ms) = scope(&p, now)?;
    let buckets = p.buckets.unwrap_or(DEFAULT_BUCKETS);
    if !(1..=MAX_BUCKETS).contains(&buckets) {
        return Err(ApiError::BadRequest(format!("buckets must be 1..={MAX_BUCKETS}")));
    }
    let step = interval_s(until_ms - from_ms, buckets);
    let step_ms = step * 1000;
    let first = from_ms.div_euclid(step_ms) * step_ms;
    let request = json!({"h": {"date_histogram": {"field": "@timestamp", "fixed_interval": format!("{step_ms}ms"),
        "min_doc_count": 0, "extended_bounds": {"min": first, "max": until_ms}}}});
    let (total, results, timed_out, took_ms) = aggregate(&api, query, (from_ms, until_ms), &request, now).await?;
    let counts = aggs::histogram_counts(results.as_ref(), "h");
    let out: Vec<Value> = counts.into_iter().map(|(key_ms, n)| json!([key_ms.div_euclid(1000), n])).collect();
    Ok(Json(json!({
        "interval_s": step,
        "total": total,
        "took_ms": took_ms,
        "timed_out": timed_out,
        "buckets": out,
    })))
}

/// Runs the Elasticsearch-style aggregations `request` over the matches:
/// (matches, results, timed out, ms taken).
async fn aggregate(
    api: &LogsApi,
    query: query::Query,
    (from_ms, until_ms): (i64, i64),
    request: &Value,
    now: i64,
) -> Result<(u64, Option<Value>, bool, u64), ApiError> {
    let aggs = aggs::plan(request, now).map_err(search_error)?.request;
    let (index, limits) = (index(api), api.limits);
    let started = Instant::now();
    let (total, results, timed_out) =
        blocking(move || index.aggregate(&query, from_ms, until_ms, Some(aggs), &limits, now).map_err(search_error)).await?;
    Ok((total, results, timed_out, started.elapsed().as_millis() as u64))
}

/// `GET /api/logs/fields?field=`: the field's top values among the matches.
pub async fn fields(State(state): State<AppState>, Params(p): Params<SearchParams>) -> Result<Json<Value>, ApiError> {
    let api = api(&state)?.clone();
    let now = now_ms();
    let (query, from_ms, until_ms) = scope(&p, now)?;
    let field = p.field.clone().filter(|f| !f.is_empty()).ok_or_else(|| ApiError::BadRequest("field is required".into()))?;
    let size = p.size.unwrap_or(10).clamp(1, 1000);
    let request = json!({"t": {"terms": {"field": field, "size": size}}});
    let (total, results, timed_out, took_ms) = aggregate(&api, query, (from_ms, until_ms), &request, now).await?;
    let (values, other) = aggs::terms_counts(results.as_ref(), "t");
    let values: Vec<Value> = values.into_iter().map(|(value, count)| json!({"value": value, "count": count})).collect();
    Ok(Json(json!({
        "field": field,
        "total": total,
        "took_ms": took_ms,
        "timed_out": timed_out,
        "values": values,
        "other": other,
    })))
}

/// `GET /api/logs/tail?q=`: every new matching event as an SSE `data:` line.
/// A reader that falls more than `logs.tail_buffer` events behind skips them
/// and gets an `event: dropped` with the count; ingest never waits for it.
pub async fn tail(State(state): State<AppState>, Params(p): Params<SearchParams>) -> Result<Response, ApiError> {
    let api = api(&state)?.clone();
    let now = now_ms();
    let q = query::parse(&p.q, Operator::And).map_err(|e| ApiError::BadRequest(format!("bad query: {e}")))?;
    let mut matcher = Matcher::new(q, now).map_err(search_error)?;
    let mut events = api.http.logs.subscribe();
    let mut stopping = api.stopping.clone();
    let stream = async_stream(move |tx| async move {
        let _ = tx.send(Bytes::from_static(b": tail started\n\n")).await;
        let mut keepalive = tokio::time::interval(Duration::from_secs(15));
        while !*stopping.borrow() {
            tokio::select! {
                // Set (or gone) only when the server stops.
                _ = stopping.changed() => break,
                _ = keepalive.tick() => {
                    if tx.send(Bytes::from_static(b": keepalive\n\n")).await.is_err() { break }
                }
                got = events.recv() => {
                    let chunk = match got {
                        Ok(json) => {
                            let matched = serde_json::from_str::<Map<String, Value>>(&json).is_ok_and(|e| matcher.matches(&e));
                            if !matched { continue }
                            format!("data: {json}\n\n")
                        }
                        Err(RecvError::Lagged(n)) => format!("event: dropped\ndata: {{\"dropped\":{n}}}\n\n"),
                        Err(RecvError::Closed) => break,
                    };
                    if tx.send(Bytes::from(chunk)).await.is_err() { break }
                }
            }
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// A stream fed by a task through a small channel: the task ends when the
/// client goes away (its sends fail).
fn async_stream<F, Fut>(produce: F) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::spawn(produce(tx));
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok(b), rx)) })
}
