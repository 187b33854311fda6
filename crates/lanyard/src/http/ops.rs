//! Operational endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document, roles.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

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

pub async fn metrics(State(app): State<AppState>) -> Response {
    let body = app.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
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
