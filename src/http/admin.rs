//! Run-time settings over HTTP: the log level. A change here is a config
//! change, so it sits behind the token check.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;

pub async fn get_log_level(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "level": state.log.level() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelChange {
    level: String,
}

pub async fn put_log_level(State(state): State<AppState>, Json(change): Json<LevelChange>) -> Result<Json<Value>, ApiError> {
    state.log.set_level(&change.level).map_err(ApiError::BadRequest)?;
    tracing::info!(level = %change.level, "log level changed over HTTP");
    Ok(Json(json!({ "level": state.log.level() })))
}
