//! The search half of the Elasticsearch API (compat-spec §6.8, Appendix B):
//! `_search`, `_msearch` (Grafana's Elasticsearch data source and log
//! panel), `_count` and `_mapping`, answered in the shapes clients read.
//! The query DSL is `logs::esdsl`; aggregations are `logs::aggs`.

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::AppState;
use super::elastic::es_error;
use super::logs::{LogsApi, api, decoded_body};
use crate::logs::aggs;
use crate::logs::esdsl;
use crate::logs::query::{self as lucene, Operator, Query};
use crate::logs::search::{Limits, Order, Position, Request, SearchError};
use crate::logs::time::now_ms;

/// The default `track_total_hits`: counts above it are reported as "gte".
const TRACK_TOTAL_HITS: u64 = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_search", get(search_all).post(search_all))
        .route("/{index}/_search", get(search_index).post(search_index))
        .route("/_msearch", get(msearch_all).post(msearch_all))
        .route("/{index}/_msearch", get(msearch_index).post(msearch_index))
        .route("/_count", get(count_all).post(count_all))
        .route("/{index}/_count", get(count_index).post(count_index))
        .route("/_mapping", get(mapping_all))
        .route("/{index}/_mapping", get(mapping_index))
}

fn error_response(e: SearchError) -> Response {
    match e {
        SearchError::Bad(m) => es_error(StatusCode::BAD_REQUEST, "search_phase_execution_exception", &m),
        SearchError::Index(e) => es_error(StatusCode::INTERNAL_SERVER_ERROR, "exception", &e.to_string()),
    }
}

/// The query-string parameters ES clients put on searches.
fn params(raw: Option<String>) -> Map<String, Value> {
    let raw = raw.unwrap_or_default();
    form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect()
}

/// The log store, or the Elasticsearch-shaped error when it is not running.
fn logs_api(state: &AppState) -> Result<LogsApi, Box<Response>> {
    api(state).cloned().map_err(|e| Box::new(es_error(e.status(), "illegal_state_exception", &e.to_string())))
}

/// Runs `work` on a blocking thread and answers with its JSON or its error.
async fn answer(work: impl FnOnce() -> Result<Value, SearchError> + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(|| crate::telemetry::accounts::within(crate::telemetry::accounts::Account::Queries, work)).await {
        Ok(Ok(v)) => v.to_string().into_response(),
        Ok(Err(e)) => error_response(e),
        Err(e) => es_error(StatusCode::INTERNAL_SERVER_ERROR, "exception", &format!("search panicked: {e}")),
    }
}

/// The query of a request: the `q` parameter, else the body's `query`, else
/// everything; narrowed to the index expression of the path.
fn user_query(params: &Map<String, Value>, body: &Value, index: Option<&str>) -> Result<Query, SearchError> {
    let query = match (params.get("q").and_then(Value::as_str), body.get("query")) {
        (Some(q), _) => lucene::parse(q, Operator::Or).map_err(|e| SearchError::Bad(format!("Failed to parse query [{q}]: {e}")))?,
        (None, Some(dsl)) => esdsl::query(dsl)?,
        (None, None) => Query::All,
    };
    Ok(esdsl::and(query, index.and_then(esdsl::indices)))
}

fn body_json(headers: &HeaderMap, body: Bytes, api: &LogsApi) -> Result<Value, Box<Response>> {
    let body = decoded_body(headers, body, api.max_body).map_err(|e| Box::new(es_error(e.status(), "parse_exception", &e.to_string())))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&body)
        .map_err(|e| Box::new(es_error(StatusCode::BAD_REQUEST, "parse_exception", &format!("the request body is not JSON: {e}"))))
}

async fn search_all(state: State<AppState>, q: RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    search(state, None, q, headers, body).await
}

async fn search_index(state: State<AppState>, Path(index): Path<String>, q: RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    search(state, Some(index), q, headers, body).await
}

async fn search(State(state): State<AppState>, index: Option<String>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let (api, body) = match logs_api(&state).and_then(|api| Ok((body_json(&headers, body, &api)?, api))) {
        Ok((body, api)) => (api, body),
        Err(r) => return *r,
    };
    let params = params(q);
    let (limits, log) = (api.limits, api.http.logs.index.clone());
    answer(move || run(&log, index.as_deref(), &body, &params, &limits)).await
}

/// A parameter from the URL, or else the body.
fn param<'a>(params: &'a Map<String, Value>, body: &'a Value, key: &str) -> Option<&'a Value> {
    params.get(key).or_else(|| body.get(key))
}

fn number(v: Option<&Value>, key: &str, default: u64) -> Result<u64, SearchError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| SearchError::Bad(format!("[{key}] must be a non-negative integer"))),
        Some(Value::String(s)) => s.parse().map_err(|_| SearchError::Bad(format!("[{key}] must be a non-negative integer, not {s:?}"))),
        Some(other) => Err(SearchError::Bad(format!("[{key}] must be a number, not {other}"))),
    }
}

/// One search: the body and URL parameters of `_search`, or a `_msearch` pair.
fn run(
    index: &crate::logs::index::LogIndex,
    pattern: Option<&str>,
    body: &Value,
    params: &Map<String, Value>,
    limits: &Limits,
) -> Result<Value, SearchError> {
    let started = Instant::now();
    let now = now_ms();
    let query = user_query(params, body, pattern)?;
    let size = number(param(params, body, "size"), "size", 10)? as usize;
    let from = number(param(params, body, "from"), "from", 0)? as usize;
    let order = sort_order(params, body)?;
    let after = match body.get("search_after") {
        None | Some(Value::Null) => None,
        Some(v) => Some(search_after(v, order)?),
    };
    let plan = match body.get("aggs").or_else(|| body.get("aggregations")) {
        None => None,
        Some(a) => Some(aggs::plan(a, now)?),
    };
    let (lo, hi) = (i64::MIN / 2, i64::MAX / 2);
    let mut timed_out = false;
    let (mut total, mut aggregations) = (0u64, None);
    if let Some(plan) = &plan {
        let (n, results, late) = index.aggregate(&query, lo, hi, Some(plan.request.clone()), limits, now)?;
        total = n;
        timed_out |= late;
        aggregations = results.map(|r| aggs::finish(plan, r));
    }
    let mut hits = Vec::new();
    if size > 0 || plan.is_none() {
        let req = Request { query, from_ms: lo, until_ms: hi, order, offset: from, limit: size, after };
        let found = index.find(&req, limits, now).map_err(|e| match e {
            SearchError::Bad(m) if m.contains("result window") => SearchError::Bad(format!(
                "Result window is too large, from + size must be less than or equal to: [{}] but was [{}]",
                limits.window,
                from + size
            )),
            other => other,
        })?;
        total = found.total;
        timed_out |= found.timed_out;
        let source_filter = body.get("_source");
        for h in found.hits {
            hits.push(hit(&h.source, h.position, source_filter));
        }
    }
    let track = match param(params, body, "track_total_hits") {
        Some(Value::Bool(true)) => u64::MAX,
        Some(Value::String(s)) if s == "true" => u64::MAX,
        Some(v) => number(Some(v), "track_total_hits", TRACK_TOTAL_HITS).unwrap_or(TRACK_TOTAL_HITS),
        None => TRACK_TOTAL_HITS,
    };
    let as_int = params.get("rest_total_hits_as_int").and_then(Value::as_str).is_some_and(|v| v == "true");
    let total = if as_int {
        json!(total)
    } else if total > track {
        json!({"value": track, "relation": "gte"})
    } else {
        json!({"value": total, "relation": "eq"})
    };
    let mut out = json!({
        "took": started.elapsed().as_millis() as u64,
        "timed_out": timed_out,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"total": total, "max_score": null, "hits": hits},
    });
    if let Some(a) = aggregations {
        out["aggregations"] = a;
    }
    Ok(out)
}

/// A stored event as an Elasticsearch hit: `_index` and `_id` out of the source.
fn hit(stored: &str, position: Position, filter: Option<&Value>) -> Value {
    let mut source: Map<String, Value> = serde_json::from_str(stored).unwrap_or_default();
    let index = match source.remove("_index") {
        Some(Value::String(s)) => s,
        _ => "instantops".to_owned(),
    };
    let id = match source.remove("_id") {
        Some(Value::String(s)) => s,
        _ => format!("{}-{}", position.part, position.seq),
    };
    let mut hit = json!({
        "_index": index,
        "_id": id,
        "_score": null,
        "sort": [position.ts, position.tiebreak()],
    });
    if let Some(source) = esdsl::source_filter(source, filter) {
        hit["_source"] = Value::Object(source);
    }
    hit
}

/// Newest first unless the sort (body or `sort=` parameter) says
/// `@timestamp` ascending. `_doc` and `_score` sort by time too: there is no
/// relevance score here, and time is the arrival order clients expect.
fn sort_order(params: &Map<String, Value>, body: &Value) -> Result<Order, SearchError> {
    let first = match (params.get("sort").and_then(Value::as_str), body.get("sort")) {
        (Some(s), _) => {
            let (field, dir) = s.split(',').next().unwrap_or("").split_once(':').unwrap_or((s, "desc"));
            Some((field.to_owned(), dir.to_owned()))
        }
        (None, Some(v)) => sort_spec(v)?,
        (None, None) => None,
    };
    let Some((field, dir)) = first else { return Ok(Order::NewestFirst) };
    match field.as_str() {
        "@timestamp" | "timestamp" | "_doc" | "_score" => {}
        other => return Err(SearchError::Bad(format!("sorting by [{other}] is not supported: sort by @timestamp"))),
    }
    Ok(match (field.as_str(), dir.to_ascii_lowercase().as_str()) {
        ("_score", _) => Order::NewestFirst,
        (_, "asc") => Order::OldestFirst,
        _ => Order::NewestFirst,
    })
}

/// The first sort key: `"f"`, `{"f": "asc"}`, `{"f": {"order": "asc"}}`, or a list.
fn sort_spec(v: &Value) -> Result<Option<(String, String)>, SearchError> {
    Ok(match v {
        Value::Array(items) => match items.first() {
            Some(first) => sort_spec(first)?,
            None => None,
        },
        Value::String(s) => Some((s.clone(), if s == "_score" { "desc" } else { "asc" }.to_owned())),
        Value::Object(o) => {
            let Some((field, how)) = o.iter().next() else { return Ok(None) };
            let dir = match how {
                Value::String(d) => d.clone(),
                Value::Object(h) => h.get("order").and_then(Value::as_str).unwrap_or("asc").to_owned(),
                _ => "asc".to_owned(),
            };
            Some((field.clone(), dir))
        }
        _ => return Err(SearchError::Bad(format!("sort must be a string, an object or a list, not {v}"))),
    })
}

/// `search_after` as handed out in `sort`: `[ts]` or `[ts, "part.seq"]`.
fn search_after(v: &Value, order: Order) -> Result<Position, SearchError> {
    let bad = || SearchError::Bad(format!("search_after {v} is not the sort values of a hit"));
    let items = v.as_array().ok_or_else(bad)?;
    let ts = match items.first() {
        Some(Value::Number(n)) => n.as_i64().ok_or_else(bad)?,
        Some(Value::String(s)) => s.parse().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    match items.get(1).and_then(Value::as_str).and_then(|t| t.split_once('.')) {
        Some((part, seq)) => Ok(Position { ts, part: part.parse().map_err(|_| bad())?, seq: seq.parse().map_err(|_| bad())? }),
        // The time alone: everything at that time is behind.
        None => Ok(match order {
            Order::NewestFirst => Position { ts, part: 0, seq: 0 },
            Order::OldestFirst => Position { ts, part: u64::MAX, seq: u64::MAX },
        }),
    }
}

async fn msearch_all(state: State<AppState>, q: RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    msearch(state, None, q, headers, body).await
}

async fn msearch_index(state: State<AppState>, Path(index): Path<String>, q: RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    msearch(state, Some(index), q, headers, body).await
}

/// `_msearch`: NDJSON header/body pairs, answered in order; a failed search
/// is an error at its position, not a failed request.
async fn msearch(State(state): State<AppState>, index: Option<String>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let api = match logs_api(&state) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let body = match decoded_body(&headers, body, api.max_body) {
        Ok(b) => b,
        Err(e) => return es_error(e.status(), "parse_exception", &e.to_string()),
    };
    let url_params = params(q);
    let limits = api.limits;
    let index_log = api.http.logs.index.clone();
    answer(move || {
        let started = Instant::now();
        let text = std::str::from_utf8(&body).map_err(|_| SearchError::Bad("the _msearch body is not UTF-8".into()))?;
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if lines.is_empty() {
            return Err(SearchError::Bad("the _msearch body holds no searches".into()));
        }
        let mut responses = Vec::new();
        for (i, pair) in lines.chunks(2).enumerate() {
            let answer = (|| -> Result<Value, SearchError> {
                let header: Value = serde_json::from_str(pair[0]).map_err(|e| SearchError::Bad(format!("header of search {i}: {e}")))?;
                let search: Value = match pair.get(1) {
                    Some(b) => serde_json::from_str(b).map_err(|e| SearchError::Bad(format!("body of search {i}: {e}")))?,
                    None => return Err(SearchError::Bad(format!("search {i} has a header and no body"))),
                };
                let pattern = match header.get("index") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Array(a)) => Some(a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")),
                    _ => index.clone(),
                };
                let mut p = url_params.clone();
                p.remove("q");
                run(&index_log, pattern.as_deref(), &search, &p, &limits)
            })();
            responses.push(match answer {
                Ok(mut v) => {
                    v["status"] = json!(200);
                    v
                }
                Err(e) => {
                    let (status, kind) = match &e {
                        SearchError::Bad(_) => (400, "search_phase_execution_exception"),
                        SearchError::Index(_) => (500, "exception"),
                    };
                    let reason = e.to_string();
                    json!({"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}, "status": status})
                }
            });
        }
        Ok(json!({"took": started.elapsed().as_millis() as u64, "responses": responses}))
    })
    .await
}

async fn count_all(state: State<AppState>, q: RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    count(state, None, q, headers, body).await
}

async fn count_index(state: State<AppState>, Path(index): Path<String>, q: RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    count(state, Some(index), q, headers, body).await
}

async fn count(State(state): State<AppState>, index: Option<String>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let (api, body) = match logs_api(&state).and_then(|api| Ok((body_json(&headers, body, &api)?, api))) {
        Ok((body, api)) => (api, body),
        Err(r) => return *r,
    };
    let params = params(q);
    let (limits, log) = (api.limits, api.http.logs.index.clone());
    answer(move || {
        let query = user_query(&params, &body, index.as_deref())?;
        let (n, _, _) = log.aggregate(&query, i64::MIN / 2, i64::MAX / 2, None, &limits, now_ms())?;
        Ok(json!({"count": n, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}))
    })
    .await
}

async fn mapping_all(state: State<AppState>) -> Response {
    mapping(state, None).await
}

async fn mapping_index(state: State<AppState>, Path(index): Path<String>) -> Response {
    mapping(state, Some(index)).await
}

/// How many of the newest events `_mapping` infers field types from.
const MAPPING_SAMPLE: usize = 1000;

/// `_mapping`: per index, the field types of its newest events (string →
/// keyword, `message` → text, numbers → long or double, booleans, and
/// `@timestamp` → date), objects as nested `properties`.
async fn mapping(State(state): State<AppState>, index: Option<String>) -> Response {
    let api = match logs_api(&state) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let (limits, log) = (api.limits, api.http.logs.index.clone());
    answer(move || {
        let query = index.as_deref().and_then(esdsl::indices).unwrap_or(Query::All);
        let mut by_index: Map<String, Value> = Map::new();
        for stored in log.sample(query, MAPPING_SAMPLE, &limits, now_ms())? {
            let mut source: Map<String, Value> = serde_json::from_str(&stored).unwrap_or_default();
            let name = match source.remove("_index") {
                Some(Value::String(s)) => s,
                _ => index.clone().filter(|i| !i.contains('*') && !i.contains(',')).unwrap_or_else(|| "instantops".into()),
            };
            source.remove("_id");
            let props = by_index.entry(name).or_insert_with(base_properties);
            infer(props.as_object_mut().expect("properties are an object"), &source, true);
        }
        if by_index.is_empty() {
            let name = index.filter(|i| !i.contains('*') && !i.contains(',')).unwrap_or_else(|| "instantops".into());
            by_index.insert(name, base_properties());
        }
        Ok(Value::Object(by_index.into_iter().map(|(k, props)| (k, json!({"mappings": {"properties": props}}))).collect()))
    })
    .await
}

fn base_properties() -> Value {
    json!({"@timestamp": {"type": "date"}, "message": {"type": "text"}})
}

/// Adds the types of `source`'s fields to `props`; a field seen as both a
/// long and a double is a double.
fn infer(props: &mut Map<String, Value>, source: &Map<String, Value>, top: bool) {
    for (key, value) in source {
        let value = match value {
            Value::Array(items) => match items.iter().find(|v| !v.is_null()) {
                Some(v) => v,
                None => continue,
            },
            v => v,
        };
        let kind = match value {
            Value::Null | Value::Array(_) => continue,
            Value::Object(inner) => {
                let entry = props.entry(key.clone()).or_insert_with(|| json!({"properties": {}}));
                if let Some(p) = entry.get_mut("properties").and_then(Value::as_object_mut) {
                    infer(p, inner, false);
                }
                continue;
            }
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_f64() => "double",
            Value::Number(_) => "long",
            Value::String(_) if top && key == "@timestamp" => "date",
            Value::String(_) if top && key == "message" => "text",
            Value::String(_) => "keyword",
        };
        match props.get(key).and_then(|p| p.get("type")).and_then(Value::as_str) {
            Some("long") if kind == "double" => {}
            Some(_) => continue,
            None => {}
        }
        props.insert(key.clone(), json!({ "type": kind }));
    }
}
