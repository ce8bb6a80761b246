//! Saved dashboards over HTTP: `GET /api/dashboards` lists summaries (id,
//! title, tags, updated) by title; `POST` creates (201, an id made from the
//! title when the body has none, 409 when the id is taken); `GET`, `PUT`
//! (create or replace, 200) and `DELETE` (204) on `/api/dashboards/{id}`.
//! Writes sit behind the token (see `mod.rs`). The store does the checking
//! and the file work (`crate::dashboards`), on a blocking thread because
//! every write is fsynced.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::error::ApiError;
use crate::dashboards::store::Summary;
use crate::dashboards::{DashboardError, DashboardStore};

impl From<DashboardError> for ApiError {
    fn from(e: DashboardError) -> ApiError {
        let message = e.to_string();
        match e {
            DashboardError::Invalid(_) => ApiError::BadRequest(message),
            DashboardError::TooLarge { .. } => ApiError::PayloadTooLarge(message),
            DashboardError::NotFound(_) => ApiError::NotFound(message),
            DashboardError::Exists(_) | DashboardError::Full(_) => ApiError::Conflict(message),
            DashboardError::Io { .. } => ApiError::Internal(message),
        }
    }
}

/// Runs `work` on the store on a blocking thread.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&DashboardStore) -> Result<T, DashboardError> + Send + 'static,
) -> Result<T, ApiError> {
    let store: Arc<DashboardStore> = state.backends.dashboards.clone();
    let done = tokio::task::spawn_blocking(move || work(&store)).await;
    Ok(done.map_err(|e| ApiError::Internal(format!("the dashboard store's thread failed: {e}")))??)
}

/// Any JSON body, whatever its content type; the store checks its shape.
fn parse(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the dashboard is not valid JSON: {e}")))
}

pub async fn list(State(state): State<AppState>) -> Json<Vec<Summary>> {
    Json(state.backends.dashboards.list())
}

/// `POST /api/dashboards`: 201 with the stored dashboard and its `Location`.
pub async fn create(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let dashboard = parse(&body)?;
    let stored = blocking(&state, move |store| store.create(dashboard)).await?;
    let location = stored["id"].as_str().and_then(|id| HeaderValue::from_str(&format!("/api/dashboards/{id}")).ok());
    let mut response = (StatusCode::CREATED, Json(stored)).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(blocking(&state, move |store| store.get(&id)).await?))
}

/// `PUT /api/dashboards/{id}`: creates or replaces; 200 either way.
pub async fn put(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let dashboard = parse(&body)?;
    Ok(Json(blocking(&state, move |store| store.put(&id, dashboard)).await?))
}

pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    blocking(&state, move |store| store.delete(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
