//! The authorization server endpoints under `/{envId}/as`: token, JWKS, discovery.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::extract::{media_type, read_bytes};
use crate::engine::tokens;
use crate::error::{ApiError, ApiResult, OAuthError};
use crate::resources::environments;
use crate::state::{App, AppState};

/// The environment of an authentication API path, or 404.
pub async fn known_env(app: &App, env_id: &str) -> ApiResult<crate::store::Doc> {
    let missing = || ApiError::NotFound("The environment was not found.".into());
    if uuid::Uuid::parse_str(env_id).is_err() {
        return Err(missing());
    }
    environments::cached(app, env_id).await?.ok_or_else(missing)
}

/// A client's form request to an authorization server endpoint: the form and the client's
/// credentials, for authentication at `endpoint` (`token`, `introspect`, `revoke`).
pub async fn client_form(
    app: &App,
    env_id: &str,
    headers: &HeaderMap,
    body: Body,
    endpoint: &'static str,
) -> ApiResult<(Vec<(String, String)>, tokens::ClientCredentials)> {
    known_env(app, env_id).await?;
    let form = read_form(headers, body).await?;
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let creds = tokens::client_credentials_of(authorization, &form)?.at(endpoint);
    Ok((form, creds))
}

/// Parses an `application/x-www-form-urlencoded` body; a repeated parameter is an error (RFC 6749 §3.2).
pub async fn read_form(headers: &HeaderMap, body: Body) -> ApiResult<Vec<(String, String)>> {
    if media_type(headers) != "application/x-www-form-urlencoded" {
        return Err(OAuthError::new(
            "invalid_request",
            "The request must be application/x-www-form-urlencoded.",
        )
        .into());
    }
    let bytes = read_bytes(body).await?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| OAuthError::new("invalid_request", "The request body is not a valid form."))?;
    for (i, (k, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(k2, _)| k2 == k) {
            return Err(OAuthError::new(
                "invalid_request",
                format!("The parameter '{k}' is repeated."),
            )
            .into());
        }
    }
    Ok(pairs)
}

fn param<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn no_store(body: Value) -> Response {
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

pub async fn token(
    State(app): State<AppState>,
    Path(env_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (form, creds) = client_form(&app, &env_id, &headers, body, "token").await?;
    let grant_type = param(&form, "grant_type")
        .ok_or_else(|| OAuthError::new("invalid_request", "grant_type is required."))?;
    let client = tokens::authenticate_client(&app, &env_id, &creds).await?;
    let body = match grant_type {
        "client_credentials" => {
            tokens::client_credentials(&app, &env_id, &client, param(&form, "scope")).await?
        }
        "authorization_code" => {
            crate::engine::oauth::code_flow::redeem_code(&app, &env_id, &client, &form).await?
        }
        "refresh_token" => {
            crate::engine::oauth::code_flow::refresh(&app, &env_id, &client, &form).await?
        }
        _ => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!("The grant type '{grant_type}' is not supported."),
            )
            .into());
        }
    };
    Ok(no_store(body))
}

pub async fn jwks(State(app): State<AppState>, Path(env_id): Path<String>) -> ApiResult<Response> {
    known_env(&app, &env_id).await?;
    let keys = app.keys.jwks(&app.store, &app.master, &env_id).await?;
    Ok(Json(json!({ "keys": keys })).into_response())
}

pub async fn discovery(
    State(app): State<AppState>,
    Path(env_id): Path<String>,
) -> ApiResult<Response> {
    known_env(&app, &env_id).await?;
    let iss = app.issuer(&env_id);
    Ok(Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "end_session_endpoint": format!("{iss}/signoff"),
        "introspection_endpoint": format!("{iss}/introspect"),
        "revocation_endpoint": format!("{iss}/revoke"),
        "jwks_uri": format!("{iss}/jwks"),
        "claims_parameter_supported": false,
        "request_parameter_supported": true,
        "request_object_signing_alg_values_supported": ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "none"],
        "request_uri_parameter_supported": false,
        "scopes_supported": ["openid", "profile", "email", "address", "phone"],
        "response_types_supported": ["code", "id_token", "token id_token", "code id_token", "code token", "code token id_token"],
        "response_modes_supported": ["pi.flow", "query", "fragment", "form_post"],
        "grant_types_supported": ["authorization_code", "implicit", "client_credentials", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "introspection_endpoint_auth_signing_alg_values_supported": ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512"],
        "claim_types_supported": ["normal"],
        "claims_supported": ["sub", "iss", "auth_time", "acr", "name", "given_name", "family_name", "middle_name", "preferred_username", "profile", "picture", "zoneinfo", "phone_number", "updated_at", "address", "email", "locale"],
        "code_challenge_methods_supported": ["plain", "S256"],
    }))
    .into_response())
}
