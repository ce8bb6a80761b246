//! The `http.token` check on mutating routes: when a token is configured, a
//! write needs `Authorization: Bearer <token>`. Reads never need it.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

pub async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = state.token.as_deref() else {
        return next.run(request).await;
    };
    let given =
        request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    match given {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => next.run(request).await,
        Some(_) => {
            state.auth_failures.inc();
            ApiError::Unauthorized("wrong bearer token".into()).into_response()
        }
        None => {
            state.auth_failures.inc();
            ApiError::Unauthorized("this route changes state and needs \"Authorization: Bearer <http.token>\"".into()).into_response()
        }
    }
}

/// Compares without an early exit, so response time does not leak a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
