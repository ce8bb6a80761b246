//! Health and self-observation: `/healthz`, `/api/status`, and `/metrics` in
//! Prometheus text format.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::AppState;
use crate::telemetry::memory;

pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    if state.ready.load(std::sync::atomic::Ordering::Acquire) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

pub async fn status(State(state): State<AppState>) -> Json<Value> {
    let readings = state.registry.snapshot();
    let mut counters = BTreeMap::new();
    let mut gauges = BTreeMap::new();
    for r in &readings {
        let target = match r.kind {
            crate::telemetry::registry::Kind::Counter => &mut counters,
            crate::telemetry::registry::Kind::Gauge => &mut gauges,
        };
        target.insert(r.key(), r.value);
    }
    let bad_lines_seen: f64 = readings.iter().filter(|r| r.name == "instantops_bad_lines_total").map(|r| r.value).sum();
    let listeners: BTreeMap<&str, String> = state.listeners.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let gauge = |name: &str| readings.iter().find(|r| r.name == name).map(|r| r.value as u64);
    let storage = &state.backends.storage;
    let schemas: Vec<Value> =
        storage.schemas.iter().map(|(pattern, retentions)| json!({"pattern": pattern, "retentions": retentions})).collect();
    Json(json!({
        "version": crate::VERSION,
        "uptime_s": state.started.elapsed().as_secs_f64(),
        "listeners": listeners,
        "memory": {
            "limit": state.budget.limit(),
            "rss": memory::rss_bytes(),
            "subsystems": state.budget.shares(),
            "used": state.budget.used(),
            "allocators": crate::telemetry::alloc::read(),
            "accounts": accounts(),
        },
        "storage": {
            "data_dir": storage.data_dir,
            "tsdb": {"disk_bytes": state.backends.store.disk_bytes(), "retentions": schemas},
            "logs": {
                "disk_bytes": gauge("instantops_logs_disk_bytes"),
                "max_disk": storage.logs_max_disk,
                "retention_s": storage.logs_retention_s,
            },
        },
        "bad_lines_seen": bad_lines_seen,
        "counters": counters,
        "gauges": gauges,
    }))
}

/// Live Rust heap bytes by account, as the allocator counts them; null in a
/// build without the accounting allocator (`--features system-alloc`).
fn accounts() -> Value {
    use crate::telemetry::accounts;
    if !accounts::active() {
        return Value::Null;
    }
    Value::Object(accounts::held().iter().map(|(account, bytes)| (account.name().to_string(), json!(bytes))).collect())
}

pub async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.registry.prometheus())
}
