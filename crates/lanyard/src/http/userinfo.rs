//! `GET|POST /{envId}/as/userinfo`: the signed-in user's claims for the token's OIDC scopes.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::engine::oauth::{bearer, issue};
use crate::error::ApiResult;
use crate::resources::{applications, users};
use crate::state::AppState;

fn invalid_token(description: &str) -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "error": "invalid_token", "error_description": description })),
    )
        .into_response();
    let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{description}\"");
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

pub async fn userinfo(
    State(app): State<AppState>,
    Path(env_id): Path<String>,
    headers: HeaderMap,
    _body: Body,
) -> ApiResult<Response> {
    if uuid::Uuid::parse_str(&env_id).is_err() {
        return Ok(invalid_token("The access token is invalid."));
    }
    let Some(token) = bearer::bearer(&headers) else {
        return Ok(invalid_token("An access token is required."));
    };
    let Some(claims) = bearer::verify(&app, &env_id, token).await? else {
        return Ok(invalid_token("The access token is invalid or expired."));
    };
    let scopes: Vec<String> = claims["scope"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .map(str::to_string)
        .collect();
    let Some(sub) = claims["sub"]
        .as_str()
        .filter(|_| scopes.iter().any(|s| s == "openid"))
    else {
        return Ok(invalid_token(
            "The access token was not issued for OpenID Connect.",
        ));
    };
    let Some(user) = users::enabled(&app, &env_id, sub).await? else {
        return Ok(invalid_token("The user no longer exists."));
    };
    let mut out = serde_json::Map::new();
    out.insert("sub".into(), json!(user.id));
    out.extend(issue::user_claims(&user, &scopes));
    if let Some(client) = applications::find_by_client_id(
        &app,
        &env_id,
        claims["client_id"].as_str().unwrap_or_default(),
    )
    .await?
    {
        out.extend(issue::mapped_claims(&app, &client, &user, false).await?);
    }
    let mut r = Json(Value::Object(out)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
