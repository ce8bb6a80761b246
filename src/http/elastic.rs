//! The Elasticsearch-compatible API on `logs.elasticsearch` (compat-spec
//! §6.8): what Filebeat, Logstash, Vector, Fluent Bit and the official clients
//! call at start (`GET /`, `_license`, `_cluster/health`, template, ILM and
//! pipeline probes) and `_bulk`; searches are `elastic_search.rs`. Every response carries
//! `X-Elastic-Product: Elasticsearch` and a JSON content type, which clients
//! from 7.14 on check. The bulk body's grammar is `logs::inputs::bulk`.

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use foldhash::HashMap;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::logs::{api, decoded_body, ingest_error};
use crate::logs::inputs::bulk::{self, Action, Op as BulkOp, Outcome};
use crate::logs::json::{Json, Object};
use crate::logs::pipeline::Op;
use crate::logs::time::now_ms;

/// The version reported by `GET /`; 8.x clients and shippers accept it.
const VERSION: &str = "8.11.0";
/// Most actions one `_bulk` request may carry.
const MAX_ACTIONS: usize = 100_000;

pub fn router(state: AppState, max_body: usize) -> Router {
    Router::new()
        .route("/", get(root).head(root))
        .route("/_license", get(license))
        .route("/_xpack", get(xpack))
        .route("/_cluster/health", get(health))
        .route("/_cluster/health/{index}", get(health))
        .route("/_bulk", any(bulk_root))
        .route("/{index}/_bulk", any(bulk_index))
        .route("/_index_template/{*rest}", any(accept_empty))
        .route("/_template/{*rest}", any(accept_empty))
        .route("/_ilm/{*rest}", any(accept_empty))
        .route("/_ingest/{*rest}", any(accept_empty))
        .route("/_data_stream/{*rest}", any(accept_empty))
        .route("/_alias/{*rest}", any(accept_empty))
        .route("/_aliases", any(accept_empty))
        .route("/_nodes", any(accept_empty))
        .route("/_nodes/{*rest}", any(accept_empty))
        .merge(super::elastic_search::routes())
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(product_headers))
        .with_state(state)
}

async fn product_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert("x-elastic-product", HeaderValue::from_static("Elasticsearch"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub(super) fn es_error(status: StatusCode, kind: &str, reason: &str) -> Response {
    let body = json!({
        "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
        "status": status.as_u16(),
    });
    (status, body.to_string()).into_response()
}

fn api_error(e: ApiError) -> Response {
    let kind = match e.status() {
        StatusCode::TOO_MANY_REQUESTS => "es_rejected_execution_exception",
        StatusCode::PAYLOAD_TOO_LARGE => "content_too_long_exception",
        _ => "illegal_argument_exception",
    };
    let mut response = es_error(e.status(), kind, &e.to_string());
    if e.status() == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    es_error(StatusCode::NOT_FOUND, "resource_not_found_exception", &format!("no handler for {method} {}", uri.path()))
}

async fn root(method: Method) -> Response {
    if method == Method::HEAD {
        return StatusCode::OK.into_response();
    }
    let body = json!({
        "name": "instantops",
        "cluster_name": "instantops",
        "cluster_uuid": "aW5zdGFudG9wcy1sb2dz",
        "version": {
            "number": VERSION,
            "build_flavor": "default",
            "build_type": "docker",
            "build_hash": env!("CARGO_PKG_VERSION"),
            "build_date": "2023-11-04T10:04:57.184859352Z",
            "build_snapshot": false,
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    });
    body.to_string().into_response()
}

async fn license() -> String {
    json!({"license": {"uid": "instantops", "type": "basic", "status": "active", "expiry_date_in_millis": 4_000_000_000_000u64}})
        .to_string()
}

async fn xpack() -> String {
    json!({"build": {}, "license": {"uid": "instantops", "type": "basic", "mode": "basic", "status": "active"}, "features": {}}).to_string()
}

async fn health() -> String {
    json!({
        "cluster_name": "instantops", "status": "green", "timed_out": false, "number_of_nodes": 1, "number_of_data_nodes": 1,
        "active_primary_shards": 1, "active_shards": 1, "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": 0,
        "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0, "active_shards_percent_as_number": 100.0
    })
    .to_string()
}

/// Template, ILM, pipeline and alias probes: accepted as they come (200 `{}`),
/// so shippers go on to `_bulk`; writes answer `acknowledged`.
async fn accept_empty(method: Method) -> Response {
    match method {
        Method::HEAD => StatusCode::OK.into_response(),
        Method::GET => "{}".into_response(),
        _ => json!({"acknowledged": true}).to_string().into_response(),
    }
}

async fn bulk_root(State(state): State<AppState>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    bulk_request(state, method, None, headers, body).await
}

async fn bulk_index(State(state): State<AppState>, method: Method, Path(index): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    bulk_request(state, method, Some(index), headers, body).await
}

async fn bulk_request(state: AppState, method: Method, index: Option<String>, headers: HeaderMap, body: Bytes) -> Response {
    if method != Method::POST && method != Method::PUT {
        return es_error(StatusCode::METHOD_NOT_ALLOWED, "illegal_argument_exception", "_bulk takes POST or PUT");
    }
    let api = match api(&state) {
        Ok(api) => api.clone(),
        Err(e) => return api_error(e),
    };
    let started = Instant::now();
    // Decompressing and parsing a body of up to `max_body` bytes is CPU work
    // of tens of milliseconds: it runs on a blocking thread with the rest, so
    // the runtime's workers go on serving other connections meanwhile.
    let done = tokio::task::spawn_blocking(move || {
        let _account = crate::telemetry::accounts::enter(crate::telemetry::accounts::Account::Logs);
        let body = decoded_body(&headers, body, api.max_body)?;
        let actions = match bulk::parse(&body, index.as_deref(), MAX_ACTIONS) {
            Ok(a) => a,
            Err(e) => {
                api.elasticsearch.stats.bad(&e);
                return Ok((StatusCode::BAD_REQUEST, bulk::request_error(&e.to_string())).into_response());
            }
        };
        let input = api.elasticsearch;
        let logs = input.logs.clone();
        logs.admit().map_err(ingest_error)?;
        let first_seq = logs.indexed();
        let (items, submitted) = {
            // Reads of ids and the submission that records the new ones are
            // one step; waiting for durability is not part of it.
            let _ids = logs.id_lock.lock().expect("id lock poisoned");
            let mut batch =
                Batch { input: &input, overlay: HashMap::default(), ops: Vec::new(), now: now_ms(), seed: seed(), base: first_seq };
            let items: Vec<(BulkOp, String, String, Outcome)> = actions.into_iter().map(|a| batch.apply(a)).collect();
            let accepted = batch.ops.iter().filter(|op| matches!(op, Op::Add { .. })).count() as u64;
            let submitted = match batch.ops.is_empty() {
                true => None,
                false => Some((logs.submit(batch.ops).map_err(ingest_error)?, accepted)),
            };
            (items, submitted)
        };
        // The actions read their documents from the body in place; they
        // are all queued now, so it need not be held through the wait.
        drop(body);
        if let Some((end, accepted)) = submitted {
            logs.wait(end).map_err(ingest_error)?;
            input.stats.received(accepted);
        }
        Ok::<_, ApiError>(bulk::response(started.elapsed().as_millis() as u64, &items, first_seq).into_response())
    })
    .await;
    match done {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => api_error(e),
        Err(e) => api_error(ApiError::Internal(format!("bulk panicked: {e}"))),
    }
}

/// One `_bulk` request's work: ops to submit, and what they did to ids
/// earlier in the same request.
struct Batch<'a> {
    input: &'a crate::logs::listener::Input,
    overlay: HashMap<String, Option<std::sync::Arc<str>>>,
    ops: Vec<Op>,
    now: i64,
    /// Inputs of generated ids: randomness, and a sequence base.
    seed: u64,
    base: u64,
}

impl Batch<'_> {
    fn current(&self, id: &str) -> Option<String> {
        match self.overlay.get(id) {
            Some(json) => json.as_deref().map(String::from),
            None => self.input.logs.get(id).ok().flatten(),
        }
    }

    fn apply(&mut self, action: Action) -> (BulkOp, String, String, Outcome) {
        let op = action.op;
        let Some(index) = action.index else {
            let id = action.id.unwrap_or_default();
            return (op, String::new(), id, failed(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;"));
        };
        let given = action.id.clone();
        if given.is_none() && matches!(op, BulkOp::Update | BulkOp::Delete) {
            return (op, index, String::new(), failed(400, "action_request_validation_exception", "Validation Failed: 1: id is missing;"));
        }
        let id = action.id.unwrap_or_else(|| bulk::new_id(self.now, self.base + self.ops.len() as u64, self.seed));
        let outcome = match op {
            BulkOp::Index | BulkOp::Create => match action.source {
                Some(Ok(source)) => {
                    let existed = given.is_some() && self.current(&id).is_some();
                    if op == BulkOp::Create && existed {
                        failed(
                            409,
                            "version_conflict_engine_exception",
                            &format!("[{id}]: version conflict, document already exists (current version [1])"),
                        )
                    } else {
                        match self.add(source, &index, &id, given.is_none()) {
                            Ok(()) if existed => Outcome::Updated,
                            Ok(()) => Outcome::Created,
                            Err(o) => o,
                        }
                    }
                }
                Some(Err(reason)) => failed(400, "document_parsing_exception", &reason),
                None => failed(400, "action_request_validation_exception", "source is missing"),
            },
            BulkOp::Update => match action.source {
                Some(Ok(body)) => self.update(body, &index, &id),
                Some(Err(reason)) => failed(400, "x_content_parse_exception", &reason),
                None => failed(400, "action_request_validation_exception", "script or doc is missing"),
            },
            BulkOp::Delete => {
                if self.current(&id).is_some() {
                    self.ops.push(Op::Delete { id: id.clone() });
                    self.overlay.insert(id.clone(), None);
                    Outcome::Deleted
                } else {
                    Outcome::NotFound
                }
            }
        };
        (op, index, id, outcome)
    }

    /// Queues `source` as the document `id` of `index`; `fresh` when the id
    /// was generated for it (nothing to replace).
    fn add(&mut self, source: Object<'_>, index: &str, id: &str, fresh: bool) -> Result<(), Outcome> {
        match self.input.op(bulk::document(source, index, id, self.now), None) {
            Some(mut op) => {
                if let Op::Add { event, fresh: is_fresh } = &mut op {
                    *is_fresh = fresh;
                    // A generated id is new to this request's later actions
                    // too: the client learns it from the response.
                    if !fresh {
                        self.overlay.insert(id.into(), Some(event.json.clone()));
                    }
                }
                self.ops.push(op);
                Ok(())
            }
            None => Err(failed(400, "document_parsing_exception", "too many fields (logs.max_fields)")),
        }
    }

    fn update(&mut self, mut body: Object<'_>, index: &str, id: &str) -> Outcome {
        let Some(Json::Object(doc)) = body.remove("doc") else {
            return failed(400, "action_request_validation_exception", "Validation Failed: 1: script or doc is missing;");
        };
        let upsert = body.get("doc_as_upsert").and_then(Json::as_bool).unwrap_or(false);
        match self.current(id) {
            Some(json) => {
                let mut merged: Object = serde_json::from_str(&json).unwrap_or_default();
                merge(&mut merged, doc);
                match self.add(merged, index, id, false) {
                    Ok(()) => Outcome::Updated,
                    Err(o) => o,
                }
            }
            None if upsert => match self.add(doc, index, id, false) {
                Ok(()) => Outcome::Created,
                Err(o) => o,
            },
            None => failed(404, "document_missing_exception", &format!("[{id}]: document missing")),
        }
    }
}

/// Elasticsearch's partial-document merge: objects merge key by key, anything else replaces.
fn merge<'a>(into: &mut Object<'a>, doc: Object<'a>) {
    for (k, v) in doc {
        match (into.get_mut(&k), v) {
            (Some(Json::Object(old)), Json::Object(new)) => merge(old, new),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

fn failed(status: u16, kind: &str, reason: &str) -> Outcome {
    Outcome::Failed { status, kind: kind.into(), reason: reason.into() }
}

/// Per-process randomness for generated ids.
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}
