//! The log routes on `http.listen`: `POST /api/logs` (NDJSON or a JSON array,
//! answered once durable) and `GET /api/logs/search`. Shared with the
//! Elasticsearch API: request bodies decompressed per `Content-Encoding`.

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::logs::event::from_json_line;
use crate::logs::listener::{Input, Lines};
use crate::logs::pipeline::IngestError;
use crate::logs::time::now_ms;

/// The log store as the HTTP handlers see it.
#[derive(Clone)]
pub struct LogsApi {
    /// `POST /api/logs`.
    pub http: Input,
    /// The Elasticsearch API's `_bulk`.
    pub elasticsearch: Input,
    pub max_body: usize,
}

pub(super) fn api(state: &AppState) -> Result<&LogsApi, ApiError> {
    state.backends.logs.as_ref().ok_or_else(|| ApiError::NotFound("the log store is not running".into()))
}

/// The body as sent, or inflated per `Content-Encoding` (gzip, deflate),
/// never past `max` bytes.
pub fn decoded_body(headers: &HeaderMap, body: Bytes, max: usize) -> Result<Bytes, ApiError> {
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("").trim().to_ascii_lowercase();
    let mut out = Vec::new();
    let read = match encoding.as_str() {
        "" | "identity" => return Ok(body),
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(&body[..]).take(max as u64 + 1).read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(&body[..]).take(max as u64 + 1).read_to_end(&mut out),
        other => return Err(ApiError::BadRequest(format!("unsupported content-encoding {other:?}"))),
    };
    read.map_err(|e| ApiError::BadRequest(format!("cannot decompress the {encoding} body: {e}")))?;
    if out.len() > max {
        return Err(ApiError::PayloadTooLarge(format!("decompressed body is over http.max_body ({max} bytes)")));
    }
    Ok(Bytes::from(out))
}

pub fn ingest_error(e: IngestError) -> ApiError {
    match e {
        IngestError::Overloaded { .. } => ApiError::TooManyRequests(e.to_string()),
        IngestError::Wal(_) => ApiError::Unavailable(e.to_string()),
    }
}

/// `POST /api/logs`: NDJSON (one event or array a line) or one JSON array.
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let api = api(&state)?.clone();
    let body = decoded_body(&headers, body, api.max_body)?;
    let input = api.http;
    tokio::task::spawn_blocking(move || {
        let now = now_ms();
        let mut ops = Vec::new();
        let mut bad = 0u64;
        let mut lines = Lines::new(input.max_event);
        lines.push(&body, true, |line| match line {
            Ok(line) => {
                for parsed in from_json_line(line, now) {
                    match input.op(parsed, None) {
                        Some(op) => ops.push(op),
                        None => bad += 1,
                    }
                }
            }
            Err(len) => {
                bad += 1;
                input.stats.bad(&format!("event line of {len} bytes is over logs.max_event {}", input.max_event));
            }
        });
        if ops.is_empty() && bad == 0 {
            return Err(ApiError::BadRequest("the body holds no events".into()));
        }
        let accepted = ops.len() as u64;
        if !ops.is_empty() {
            input.logs.ingest(ops).map_err(ingest_error)?;
            input.stats.received(accepted);
        }
        Ok(Json(json!({ "accepted": accepted, "rejected": bad })))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("log ingest panicked: {e}")))?
}

#[derive(Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    from: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/logs/search`: newest first.
pub async fn search(State(state): State<AppState>, Query(p): Query<SearchParams>) -> Result<Json<Value>, ApiError> {
    let api = api(&state)?.clone();
    let now_s = now_ms() / 1000;
    let time = |spec: &Option<String>, default: i64| -> Result<i64, ApiError> {
        match spec.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(s) => crate::graphite::timespec::parse(s, now_s).map(|t| t * 1000).map_err(|e| ApiError::BadRequest(e.to_string())),
        }
    };
    let from = time(&p.from, 0)?;
    let until = time(&p.until, i64::MAX / 2)?;
    let limit = p.limit.unwrap_or(100).min(10_000);
    let index = Arc::clone(&api.http.logs.index);
    let started = Instant::now();
    let (total, hits) = tokio::task::spawn_blocking(move || index.search(&p.q, from, until.saturating_add(999), limit))
        .await
        .map_err(|e| ApiError::Internal(format!("log search panicked: {e}")))?
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let hits: Vec<Value> = hits.iter().filter_map(|h| serde_json::from_str(h).ok()).collect();
    Ok(Json(json!({
        "total": total,
        "took_ms": started.elapsed().as_millis() as u64,
        "hits": hits,
        "cursor": Value::Null,
    })))
}
