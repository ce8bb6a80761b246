//! The Seyren-compatible alerting API (compat-spec §5.4) plus acting on
//! alerts: acknowledge with a note, silence a check until a time, the
//! actions taken per check, and the noisiest checks. Lists come in Seyren's
//! `{"values", "items", "start", "total"}` wrapper. Writes sit behind the
//! token (see `mod.rs`); checks declared in the config file can be silenced
//! and acknowledged but not changed or deleted.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::alerts::engine::Engine;
use crate::alerts::model::{AlertType, Check, Subscription};
use crate::alerts::store::StoreError;
use crate::logs::time::{now_ms, parse_date_math};

fn engine(state: &AppState) -> Result<Arc<Engine>, ApiError> {
    state.backends.alerts.clone().ok_or_else(|| ApiError::NotFound("alerting is not running".into()))
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid(m) => ApiError::BadRequest(m),
        StoreError::NoCheck(id) => ApiError::NotFound(format!("no check {id}")),
        other => ApiError::Internal(other.to_string()),
    }
}

fn params(raw: Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()
}

fn param<'a>(p: &'a [(String, String)], key: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Seyren's list wrapper over `values[start..start+items]`.
fn page<T: serde::Serialize>(values: Vec<T>, p: &[(String, String)]) -> Json<Value> {
    let start = param(p, "start").and_then(|s| s.parse::<usize>().ok()).unwrap_or(0);
    let items = param(p, "items").and_then(|s| s.parse::<usize>().ok()).unwrap_or(values.len().max(20));
    let total = values.len();
    let shown: Vec<T> = values.into_iter().skip(start).take(items).collect();
    Json(json!({"values": shown, "items": shown.len(), "start": start, "total": total}))
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| ApiError::BadRequest(format!("{what}: {e}")))
}

fn who(body: &Value) -> String {
    body.get("by").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or("api").to_owned()
}

/// `GET /api/checks?state=&enabled=&name=&fields=&regexes=`
pub async fn list(State(state): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<Value>, ApiError> {
    let engine = engine(&state)?;
    let p = params(q);
    let states: Vec<&str> = p.iter().filter(|(k, _)| k == "state").map(|(_, v)| v.as_str()).collect();
    let enabled = param(&p, "enabled").map(|e| e == "true");
    let name = param(&p, "name").filter(|n| !n.is_empty());
    let fields: Vec<&str> = p.iter().filter(|(k, _)| k == "fields").map(|(_, v)| v.as_str()).collect();
    let regexes: Vec<regex::Regex> = p
        .iter()
        .filter(|(k, _)| k == "regexes")
        .map(|(_, v)| regex::Regex::new(v).map_err(|e| ApiError::BadRequest(format!("regexes {v:?}: {e}"))))
        .collect::<Result<_, _>>()?;
    let checks: Vec<Check> = engine
        .store
        .checks()
        .into_iter()
        .filter(|c| {
            states.is_empty()
                || states.iter().any(|s| serde_json::to_value(c.state).ok().and_then(|v| v.as_str().map(|x| x == *s)).unwrap_or(false))
        })
        .filter(|c| enabled.is_none_or(|e| c.enabled == e))
        .filter(|c| name.is_none_or(|n| c.name == n))
        .filter(|c| {
            let v = serde_json::to_value(c).unwrap_or_default();
            fields
                .iter()
                .zip(&regexes)
                .all(|(f, r)| v.get(*f).map(|x| x.as_str().map_or(x.to_string(), str::to_owned)).is_some_and(|x| r.is_match(&x)))
        })
        .collect();
    Ok(page(checks, &p))
}

/// `POST /api/checks`: 201 with `Location`.
pub async fn create(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let engine = engine(&state)?;
    let mut check: Check = parse_json(&body, "check")?;
    check.id = engine.store.next_id();
    check.from_config = false;
    check.state = AlertType::Unknown;
    check.last_check = None;
    for s in &mut check.subscriptions {
        s.id = engine.store.next_id();
    }
    engine.store.put(check.clone()).map_err(store_error)?;
    engine.act(&check.id, &who(&serde_json::from_slice(&body).unwrap_or_default()), "", "create").map_err(store_error)?;
    let mut response = (StatusCode::CREATED, Json(serde_json::to_value(&check).unwrap_or_default())).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/checks/{}", check.id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Check>, ApiError> {
    let engine = engine(&state)?;
    engine.store.check(&id).map(Json).ok_or_else(|| ApiError::NotFound(format!("no check {id}")))
}

fn writable(engine: &Engine, id: &str) -> Result<Check, ApiError> {
    let check = engine.store.check(id).ok_or_else(|| ApiError::NotFound(format!("no check {id}")))?;
    if check.from_config {
        return Err(ApiError::BadRequest(format!("check {id} is declared in the config file: change it there")));
    }
    Ok(check)
}

/// `PUT /api/checks/{id}`: replaces the definition, keeps state and history.
pub async fn update(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Result<Json<Check>, ApiError> {
    let engine = engine(&state)?;
    let old = writable(&engine, &id)?;
    let mut check: Check = parse_json(&body, "check")?;
    check.id = id.clone();
    check.state = old.state;
    check.last_check = old.last_check;
    check.from_config = false;
    for s in &mut check.subscriptions {
        if s.id.is_empty() {
            s.id = engine.store.next_id();
        }
    }
    engine.store.put(check.clone()).map_err(store_error)?;
    let action = if old.enabled != check.enabled { if check.enabled { "enable" } else { "disable" } } else { "update" };
    engine.act(&id, &who(&serde_json::from_slice(&body).unwrap_or_default()), "", action).map_err(store_error)?;
    Ok(Json(check))
}

pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let engine = engine(&state)?;
    writable(&engine, &id)?;
    engine.store.remove(&id).map_err(store_error)?;
    engine.act(&id, "api", "", "delete").map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/checks/{id}/alerts?start=&items=`: newest first.
pub async fn alerts(State(state): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Result<Json<Value>, ApiError> {
    let engine = engine(&state)?;
    if engine.store.check(&id).is_none() {
        return Err(ApiError::NotFound(format!("no check {id}")));
    }
    Ok(page(engine.store.alerts(Some(&id)), &params(q)))
}

/// `DELETE /api/checks/{id}/alerts?before=<time>`
pub async fn forget(State(state): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Result<StatusCode, ApiError> {
    let engine = engine(&state)?;
    let p = params(q);
    let before = match param(&p, "before").filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => Some(parse_date_math(b, now_ms(), false).ok_or_else(|| ApiError::BadRequest(format!("before {b:?} is not a time")))?),
    };
    engine.store.forget(&id, before).map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/alerts?start=&items=`: every check's, newest first.
pub async fn all_alerts(State(state): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<Value>, ApiError> {
    let engine = engine(&state)?;
    Ok(page(engine.store.alerts(None), &params(q)))
}

pub async fn add_subscription(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let engine = engine(&state)?;
    writable(&engine, &id)?;
    let mut s: Subscription = parse_json(&body, "subscription")?;
    s.validate().map_err(ApiError::BadRequest)?;
    s.id = engine.store.next_id();
    let out = s.clone();
    engine.store.update(&id, |c| c.subscriptions.push(s)).map_err(store_error)?;
    Ok((StatusCode::CREATED, Json(serde_json::to_value(out).unwrap_or_default())).into_response())
}

pub async fn put_subscription(
    State(state): State<AppState>,
    Path((id, sid)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let engine = engine(&state)?;
    let check = writable(&engine, &id)?;
    if !check.subscriptions.iter().any(|s| s.id == sid) {
        return Err(ApiError::NotFound(format!("no subscription {sid}")));
    }
    let mut s: Subscription = parse_json(&body, "subscription")?;
    s.validate().map_err(ApiError::BadRequest)?;
    s.id = sid.clone();
    engine.store.update(&id, |c| c.subscriptions.iter_mut().filter(|x| x.id == sid).for_each(|x| *x = s.clone())).map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_subscription(State(state): State<AppState>, Path((id, sid)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    let engine = engine(&state)?;
    writable(&engine, &id)?;
    engine.store.update(&id, |c| c.subscriptions.retain(|s| s.id != sid)).map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/checks/{id}/subscriptions/{sid}/test`: a test notification.
pub async fn test_subscription(State(state): State<AppState>, Path((id, sid)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    let engine = engine(&state)?;
    let check = engine.store.check(&id).ok_or_else(|| ApiError::NotFound(format!("no check {id}")))?;
    if engine.test(&check, &sid) { Ok(StatusCode::NO_CONTENT) } else { Err(ApiError::NotFound(format!("no subscription {sid}"))) }
}

#[derive(Deserialize, Default)]
struct Note {
    #[serde(default)]
    by: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    until: Option<Value>,
}

fn note(body: &Bytes) -> Result<Note, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) { Ok(Note::default()) } else { parse_json(body, "body") }
}

fn by(n: &Note) -> &str {
    if n.by.is_empty() { "api" } else { &n.by }
}

/// `POST /api/checks/{id}/alerts/{aid}/ack` `{"by", "note"}`
pub async fn acknowledge(
    State(state): State<AppState>,
    Path((id, aid)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let engine = engine(&state)?;
    let n = note(&body)?;
    let action = crate::alerts::model::Action { by: by(&n).to_owned(), at: now_ms(), note: n.note.clone(), action: "ack".into() };
    if engine.store.acknowledge(&id, &aid, action).map_err(store_error)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no alert {aid} of check {id}")))
    }
}

/// `PUT /api/checks/{id}/silence` `{"until": "+2h" | epoch ms | ISO 8601, "by", "note"}`:
/// evaluation and history go on, notifications stop until then.
pub async fn silence(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Result<Json<Check>, ApiError> {
    let engine = engine(&state)?;
    let n = note(&body)?;
    let now = now_ms();
    let until = match &n.until {
        Some(Value::Number(ms)) => ms.as_i64().ok_or_else(|| ApiError::BadRequest("until must be epoch ms".into()))?,
        Some(Value::String(s)) => {
            let s = s.trim();
            // `+2h` (from now) as well as date math and ISO times.
            let spec = if s.starts_with('+') || s.starts_with('-') { format!("now{s}") } else { s.to_owned() };
            parse_date_math(&spec, now, false).ok_or_else(|| ApiError::BadRequest(format!("until {s:?} is not a time")))?
        }
        _ => return Err(ApiError::BadRequest("until is required: \"+2h\", epoch ms or an ISO 8601 time".into())),
    };
    let check = engine.store.update(&id, |c| c.silenced_until = Some(until)).map_err(store_error)?;
    engine.act(&id, by(&n), &n.note, &format!("silence until {}", crate::logs::time::format_ms(until))).map_err(store_error)?;
    Ok(Json(check))
}

pub async fn unsilence(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Result<Json<Check>, ApiError> {
    let engine = engine(&state)?;
    let n = note(&body)?;
    let check = engine.store.update(&id, |c| c.silenced_until = None).map_err(store_error)?;
    engine.act(&id, by(&n), &n.note, "unsilence").map_err(store_error)?;
    Ok(Json(check))
}

/// `GET /api/checks/{id}/actions`: who did what, newest first.
pub async fn actions(State(state): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Result<Json<Value>, ApiError> {
    let engine = engine(&state)?;
    Ok(page(engine.store.actions(&id), &params(q)))
}

/// `GET /api/checks/{id}/image`: the check's target as a graph, drawn by
/// `/render` over the check's range (a redirect, as Seyren delegates it).
pub async fn image(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let engine = engine(&state)?;
    let check = engine.store.check(&id).ok_or_else(|| ApiError::NotFound(format!("no check {id}")))?;
    if check.kind == crate::alerts::model::Kind::Logs {
        return Err(ApiError::BadRequest("a log check has no graph: see /api/logs/histogram".into()));
    }
    let (from, until) = check.range();
    Ok(chart_redirect(&check.target, from, until))
}

/// `GET /api/chart/{target}`: a target as a graph over the last hour.
pub async fn chart(Path(target): Path<String>) -> Response {
    chart_redirect(&target, "-1h", "now")
}

fn chart_redirect(target: &str, from: &str, until: &str) -> Response {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("target", target)
        .append_pair("from", from)
        .append_pair("until", until)
        .append_pair("format", "png")
        .finish();
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/render?{query}")) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// `GET /api/checks/noisiest?since=-7d&items=10`: checks by state changes.
pub async fn noisiest(State(state): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<Value>, ApiError> {
    let engine = engine(&state)?;
    let p = params(q);
    let since = param(&p, "since").unwrap_or("-7d");
    let since_s = crate::graphite::timespec::parse(since, now_ms() / 1000).map_err(|e| ApiError::BadRequest(format!("since: {e}")))?;
    let rows: Vec<Value> = engine
        .store
        .noisiest(since_s * 1000)
        .into_iter()
        .map(|(id, changes)| {
            let name = engine.store.check(&id).map(|c| c.name).unwrap_or_default();
            json!({"checkId": id, "name": name, "stateChanges": changes})
        })
        .collect();
    Ok(page(rows, &p))
}
