//! The HTTP layer: one router for the management API (`/v1`), the authentication API
//! (`/{envId}/...`) and the operational endpoints, with logging, metrics, transaction ids and
//! panic containment as layers.

pub mod apps;
pub mod authorize;
pub mod devices;
pub mod extract;
pub mod html;
pub mod mgmt;
pub mod oauth;
pub mod openapi;
pub mod ops;
pub mod signon;
pub mod sso_cookie_settings;
pub mod token_admin;
pub mod userinfo;
pub mod users;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::state::AppState;

/// Routes outside the generic resource layer, for the OpenAPI document: (path, method, summary, success).
pub const EXTRA_ROUTES: &[(&str, &str, &str, &str)] = &[
    ("/healthz", "get", "Liveness", "200"),
    ("/readyz", "get", "Readiness (database reachable)", "200"),
    (
        "/metrics",
        "get",
        "Prometheus metrics (Bearer --metrics-token; 404 without that setting)",
        "200",
    ),
    ("/v1/openapi.json", "get", "This document", "200"),
    ("/v1/roles", "get", "List built-in roles", "200"),
    ("/v1/roles/{roleId}", "get", "Read a built-in role", "200"),
    (
        "/v1/environments/{envId}/applications/{id}/secret",
        "get",
        "Read an application's client secret",
        "200",
    ),
    (
        "/v1/environments/{envId}/applications/{id}/secret",
        "post",
        "Rotate an application's client secret",
        "200",
    ),
    (
        "/v1/environments/{envId}/applications/{id}/secret",
        "delete",
        "Drop the previous client secret",
        "204",
    ),
    (
        "/v1/environments/{envId}/users/{id}",
        "post",
        "Lock or unlock a user account (account.lock+json, account.unlock+json)",
        "200",
    ),
    (
        "/v1/environments/{envId}/users/{id}/password",
        "get",
        "Read a user's password state",
        "200",
    ),
    (
        "/v1/environments/{envId}/users/{id}/password",
        "put",
        "Set, reset, check, force change or unlock a user's password (by Content-Type)",
        "200",
    ),
    (
        "/v1/environments/{envId}/users/{id}/password",
        "post",
        "Set, reset, check, force change or unlock a user's password (by Content-Type)",
        "200",
    ),
    (
        "/v1/environments/{envId}/users/{id}/enabled",
        "get",
        "Read whether a user is enabled",
        "200",
    ),
    (
        "/v1/environments/{envId}/users/{id}/enabled",
        "put",
        "Enable or disable a user",
        "200",
    ),
    (
        "/v1/environments/{envId}/users/{id}/population",
        "get",
        "Read a user's population",
        "200",
    ),
    (
        "/v1/environments/{envId}/users/{id}/population",
        "put",
        "Move a user to another population",
        "200",
    ),
    (
        "/v1/environments/{envId}/users/{parentId}/devices",
        "get",
        "List a user's MFA devices in the user's order",
        "200",
    ),
    (
        "/v1/environments/{envId}/users/{parentId}/devices",
        "post",
        "Create an MFA device (application/json) or set the device order (devices.reorder+json)",
        "201",
    ),
    (
        "/v1/environments/{envId}/users/{parentId}/devices",
        "delete",
        "Remove the device order (devices.order.remove+json)",
        "204",
    ),
    (
        "/v1/environments/{envId}/users/{parentId}/devices/{id}",
        "post",
        "Activate, block, unblock or unlock a device (by Content-Type)",
        "200",
    ),
    (
        "/v1/environments/{envId}/users/{parentId}/devices/{id}/nickname",
        "put",
        "Set a device's nickname",
        "200",
    ),
    (
        "/v1/environments/{envId}/users/{id}/mfaEnabled",
        "get",
        "Read whether MFA is enabled for a user",
        "200",
    ),
    (
        "/v1/environments/{envId}/users/{id}/mfaEnabled",
        "put",
        "Enable or disable MFA for a user (POST accepted too)",
        "200",
    ),
    (
        "/v1/environments/{envId}/ssoCookieSettings",
        "get",
        "Read the environment's SSO session settings",
        "200",
    ),
    (
        "/v1/environments/{envId}/ssoCookieSettings",
        "post",
        "Set the environment's SSO session settings",
        "200",
    ),
    (
        "/v1/environments/{envId}/templates",
        "get",
        "List the notification templates",
        "200",
    ),
    (
        "/v1/environments/{envId}/templates/{name}",
        "get",
        "Read a notification template",
        "200",
    ),
    (
        "/{envId}/as/token",
        "post",
        "OAuth 2.0 token endpoint (client_credentials)",
        "200",
    ),
    (
        "/{envId}/as/jwks",
        "get",
        "The environment's signing keys",
        "200",
    ),
    (
        "/{envId}/as/.well-known/openid-configuration",
        "get",
        "OpenID Connect discovery",
        "200",
    ),
];

pub fn router(app: AppState) -> Router {
    let mut r: Router<AppState> = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/openapi.json", get(ops::openapi))
        .route("/v1/roles", mgmt::get_route(ops::roles))
        .route("/v1/roles/{roleId}", mgmt::get_route(ops::role))
        .route(
            "/v1/environments/{envId}/applications/{id}/secret",
            get(apps::read)
                .post(apps::rotate)
                .delete(apps::drop_previous)
                .fallback(mgmt::method_not_allowed),
        )
        .route(
            "/{envId}/as/token",
            post(oauth::token).fallback(mgmt::method_not_allowed),
        )
        .route("/{envId}/as/jwks", mgmt::get_route(oauth::jwks))
        .route(
            "/{envId}/as/authorize",
            get(authorize::authorize_get)
                .post(authorize::authorize_post)
                .fallback(mgmt::method_not_allowed),
        )
        .route("/{envId}/as/resume", mgmt::get_route(authorize::resume))
        .route(
            "/{envId}/as/introspect",
            post(token_admin::introspect).fallback(mgmt::method_not_allowed),
        )
        .route(
            "/{envId}/as/revoke",
            post(token_admin::revoke).fallback(mgmt::method_not_allowed),
        )
        .route(
            "/{envId}/as/signoff",
            get(token_admin::signoff)
                .post(token_admin::signoff_post)
                .fallback(mgmt::method_not_allowed),
        )
        .route(
            "/{envId}/as/userinfo",
            get(userinfo::userinfo)
                .post(userinfo::userinfo)
                .fallback(mgmt::method_not_allowed),
        )
        .route(
            "/{envId}/flows/{flowId}",
            get(authorize::get_flow)
                .post(authorize::post_flow)
                .fallback(mgmt::method_not_allowed),
        )
        .route(
            "/{envId}/signon/",
            get(signon::page_get)
                .post(signon::page_post)
                .fallback(mgmt::method_not_allowed),
        )
        .route(
            "/{envId}/signon",
            get(signon::page_get)
                .post(signon::page_post)
                .fallback(mgmt::method_not_allowed),
        )
        .route(
            "/{envId}/as/.well-known/openid-configuration",
            mgmt::get_route(oauth::discovery),
        );
    r = users::routes(r);
    r = sso_cookie_settings::routes(r);
    r = devices::routes(r);
    for res in crate::resources::all() {
        // The outbox exists only where the server keeps one (development mode).
        if res.spec().kind == crate::resources::outbox::KIND && !app.settings.outbox {
            continue;
        }
        r = mgmt::mount(r, res);
    }
    r.fallback(|| async { ApiError::NotFound("The requested resource was not found.".into()) })
        .layer(middleware::from_fn(secure_defaults))
        .layer(middleware::from_fn(observe))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("a request handler panicked").into_response()
        }))
        .with_state(app)
}

/// Headers every answer carries unless its handler chose its own: no sniffing, no framing,
/// a Content-Security-Policy under which nothing runs or loads, and no caching (answers carry
/// users, devices, flows and tokens). Pages that need more (the sign-on pages, form_post) set
/// their own policy.
async fn secure_defaults(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let defaults = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    resp
}

static TRANSACTION_ID: HeaderName = HeaderName::from_static("x-ping-external-transaction-id");
static SESSION_ID: HeaderName = HeaderName::from_static("x-ping-external-session-id");

/// Keeps the characters PingOne allows in correlation ids; others become `_`.
fn sanitize_correlation(v: &str) -> String {
    v.chars()
        .take(256)
        .map(|c| {
            if c.is_alphanumeric() || "._-/@=#+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Structured request log, Prometheus metrics, and the correlation headers.
async fn observe(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let txid = req
        .headers()
        .get(&TRANSACTION_ID)
        .and_then(|v| v.to_str().ok())
        .map(sanitize_correlation)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let session = req
        .headers()
        .get(&SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .map(sanitize_correlation);
    let mut resp = next.run(req).await;
    let status = resp.status().as_u16();
    let elapsed = start.elapsed().as_secs_f64();
    metrics::counter!("http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status.to_string()).increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method.to_string(), "route" => route.clone()).record(elapsed);
    tracing::info!(target: "lanyard::http", %method, %route, status, elapsed_ms = elapsed * 1000.0, transaction_id = %txid, "request");
    if let Ok(v) = HeaderValue::from_str(&txid) {
        resp.headers_mut().insert(TRANSACTION_ID.clone(), v);
    }
    if let Some(v) = session.and_then(|s| HeaderValue::from_str(&s).ok()) {
        resp.headers_mut().insert(SESSION_ID.clone(), v);
    }
    resp
}
