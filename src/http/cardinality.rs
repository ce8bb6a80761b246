//! `GET /api/cardinality?depth=2&top=20`: the metric prefixes with the most
//! series, and how many they gained in the last hour and day (from the host
//! collector's samples, at depth 2).

use axum::Json;
use axum::extract::{RawQuery, State};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::host::cardinality::DEPTH;

pub async fn cardinality(State(state): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<Value>, ApiError> {
    let params: Vec<(String, String)> = form_urlencoded::parse(q.unwrap_or_default().as_bytes()).into_owned().collect();
    let number = |key: &str, default: usize, max: usize| -> Result<usize, ApiError> {
        match params.iter().find(|(k, _)| k == key) {
            None => Ok(default),
            Some((_, v)) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| ApiError::BadRequest(format!("{key} must be 1..={max}"))),
        }
    };
    let depth = number("depth", DEPTH, 10)?;
    let top = number("top", 20, 1000)?;
    let store = state.backends.store.clone();
    let counts = tokio::task::spawn_blocking(move || store.count_by_prefix(depth))
        .await
        .map_err(|e| ApiError::Internal(format!("cardinality panicked: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let total: u64 = counts.values().sum();
    let mut ranked: Vec<(String, u64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let now = crate::tsdb::store::unix_now() as i64;
    let samples = &state.backends.cardinality;
    let prefixes: Vec<Value> = ranked
        .into_iter()
        .take(top)
        .map(|(prefix, series)| {
            let growth = |ago: i64| -> Value {
                match (depth == DEPTH).then(|| samples.before(&prefix, now, ago)).flatten() {
                    Some((_, then)) => json!(series as i64 - then as i64),
                    None => Value::Null,
                }
            };
            json!({"prefix": prefix, "series": series, "growth_1h": growth(3600), "growth_24h": growth(86_400)})
        })
        .collect();
    let limits = state.backends.store.limits();
    Ok(Json(json!({"depth": depth, "total": total, "prefixes": prefixes, "limits": limits})))
}
