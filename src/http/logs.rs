//! The log ingest route on `http.listen`: `POST /api/logs` (NDJSON or a JSON
//! array, answered once durable); searches are `logsearch.rs`. Shared with the
//! Elasticsearch API: request bodies decompressed per `Content-Encoding`.

use std::io::Read;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
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
    pub limits: crate::logs::search::Limits,
    /// Set when the HTTP server stops: live tails end.
    pub stopping: tokio::sync::watch::Receiver<bool>,
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
        IngestError::Overloaded { .. } | IngestError::Memory => ApiError::TooManyRequests(e.to_string()),
        IngestError::Wal(_) => ApiError::Unavailable(e.to_string()),
    }
}

/// `POST /api/logs`: NDJSON (one event or array a line) or one JSON array.
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let api = api(&state)?.clone();
    let body = decoded_body(&headers, body, api.max_body)?;
    let input = api.http;
    tokio::task::spawn_blocking(move || {
        let _account = crate::telemetry::accounts::enter(crate::telemetry::accounts::Account::Logs);
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
