//! Operator actions on the series store: `POST /api/tsdb/compact` writes what
//! is pending and compacts everything now, as VictoriaMetrics'
//! `/internal/force_merge` does, so that space is reclaimed (expired chunks
//! dropped, merge operands folded into compressed chunks) without waiting for
//! RocksDB to pick the files. A write: it sits behind the token.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;

pub async fn compact(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let work = tokio::task::spawn_blocking(move || {
        let store = &state.backends.store;
        let started = Instant::now();
        let before = store.disk_bytes();
        store.flush(crate::tsdb::store::unix_now())?;
        store.compact()?;
        Ok::<_, crate::tsdb::StoreError>(json!({
            "sst_bytes_before": before,
            "sst_bytes_after": store.disk_bytes(),
            "seconds": started.elapsed().as_secs_f64(),
        }))
    });
    match work.await {
        Ok(Ok(answer)) => Ok(Json(answer)),
        Ok(Err(e)) => Err(ApiError::Internal(format!("compaction failed: {e}"))),
        Err(e) => Err(ApiError::Internal(format!("the compaction thread failed: {e}"))),
    }
}
