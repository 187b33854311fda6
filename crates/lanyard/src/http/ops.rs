//! Operational endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document, roles;
//! and the router of the metrics-only listener (`--metrics-listen`).
//!
//! Metrics tell request rates, routes and error counts, so they are not for anyone who can
//! reach the public listener: there `/metrics` needs `--metrics-token` (and answers 404
//! without it); the metrics listener, meant for a private address, serves them openly.

use aws_lc_rs::digest;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::extract::Mgmt;
use crate::engine::authz;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

pub async fn readyz(State(app): State<AppState>) -> Response {
    if app.store.ping().await {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "database unreachable" })),
        )
            .into_response()
    }
}

/// `/metrics` on the public listener: with `--metrics-token`, to a request presenting it
/// as a bearer token; without the setting, not served (404, like any unknown path).
pub async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let Some(expected) = app.settings.metrics_token.as_deref() else {
        return Err(ApiError::not_found());
    };
    if !bearer_is(&headers, expected) {
        return Err(ApiError::Unauthorized(
            "The metrics token is missing or wrong.".into(),
        ));
    }
    Ok(render_metrics(&app))
}

/// `/metrics` on the metrics listener: no authentication, its address is the boundary.
async fn open_metrics(State(app): State<AppState>) -> Response {
    render_metrics(&app)
}

fn render_metrics(app: &AppState) -> Response {
    let body = app.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Whether the request's `Authorization: Bearer <token>` is `expected`. The SHA-256 digests
/// are compared in constant time, so neither the token's bytes nor its length show in the
/// answer's timing.
fn bearer_is(headers: &HeaderMap, expected: &str) -> bool {
    let Some((scheme, token)) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
    else {
        return false;
    };
    let presented = digest::digest(&digest::SHA256, token.trim().as_bytes());
    let wanted = digest::digest(&digest::SHA256, expected.as_bytes());
    scheme.eq_ignore_ascii_case("bearer") && bool::from(presented.as_ref().ct_eq(wanted.as_ref()))
}

/// The router of `--metrics-listen`: `/metrics` and `/healthz`, nothing else.
pub fn metrics_router(app: AppState) -> Router {
    Router::new()
        .route("/metrics", get(open_metrics))
        .route("/healthz", get(healthz))
        .fallback(|| async { ApiError::not_found() })
        .with_state(app)
}

pub async fn openapi(State(app): State<AppState>) -> Response {
    Json(super::openapi::document(app.public_url())).into_response()
}

pub async fn roles(mg: Mgmt) -> ApiResult<Response> {
    let url = mg.app.public_url().to_string();
    let items: Vec<_> = authz::ROLES
        .iter()
        .map(|r| authz::role_json(r, &url))
        .collect();
    let n = items.len();
    Ok(Json(json!({
        "_links": { "self": { "href": format!("{url}/v1/roles") } },
        "_embedded": { "roles": items },
        "count": n,
        "size": n,
    }))
    .into_response())
}

pub async fn role(mg: Mgmt, Path(id): Path<String>) -> ApiResult<Response> {
    let r = authz::role(&id).ok_or_else(ApiError::not_found)?;
    Ok(Json(authz::role_json(r, mg.app.public_url())).into_response())
}
