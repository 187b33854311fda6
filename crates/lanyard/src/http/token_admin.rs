//! `/as/introspect` (RFC 7662), `/as/revoke` (RFC 7009) and `/as/signoff`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use super::authorize::html_escape;
use super::oauth::{client_form, known_env};
use crate::engine::keys::UnverifiedJwt;
use crate::engine::oauth::introspection;
use crate::engine::sessions;
use crate::engine::tokens;
use crate::error::{ApiError, ApiResult, OAuthError};
use crate::resources::applications;
use crate::state::AppState;

fn param<'a>(form: &'a [(String, String)], k: &str) -> Option<&'a str> {
    form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

pub async fn introspect(
    State(app): State<AppState>,
    Path(env_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (form, creds) = client_form(&app, &env_id, &headers, body, "introspect").await?;
    let caller = introspection::authenticate(&app, &env_id, &creds).await?;
    let token = param(&form, "token")
        .ok_or_else(|| OAuthError::new("invalid_request", "token is required."))?;
    let out = introspection::introspect(&app, &env_id, &caller, token).await?;
    let mut r = Json(out).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

pub async fn revoke(
    State(app): State<AppState>,
    Path(env_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let (form, creds) = client_form(&app, &env_id, &headers, body, "revoke").await?;
    let client = tokens::authenticate_client(&app, &env_id, &creds).await?;
    let token = param(&form, "token")
        .ok_or_else(|| OAuthError::new("invalid_request", "token is required."))?;
    let client_id = client.data["clientId"]
        .as_str()
        .unwrap_or(&client.id)
        .to_string();
    introspection::revoke(&app, &env_id, &client_id, token).await?;
    Ok(StatusCode::OK)
}

#[derive(serde::Deserialize)]
pub struct SignoffQuery {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

pub async fn signoff(
    State(app): State<AppState>,
    Path(env_id): Path<String>,
    Query(q): Query<SignoffQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    known_env(&app, &env_id).await?;
    if q.post_logout_redirect_uri.as_deref().map_or(0, str::len)
        + q.state.as_deref().map_or(0, str::len)
        > 8192
    {
        return Err(ApiError::InvalidRequest(
            "post_logout_redirect_uri and state are too long.".into(),
        ));
    }
    let cookie = sessions::cookie_of(&headers);
    let session = sessions::find(&app, &env_id, cookie.as_deref())
        .await?
        .map(|(_, s)| s);
    // id_token_hint: signed by this environment (expiry does not matter), for an enabled app.
    let mut hinted_app = None;
    if let Some(hint) = &q.id_token_hint {
        let bad = || ApiError::InvalidRequest("The id_token_hint is not valid.".into());
        let jwt = UnverifiedJwt::parse(hint).ok_or_else(bad)?;
        let kid = jwt.kid().unwrap_or_default().to_string();
        let key = app
            .keys
            .by_kid(&app.store, &app.master, &env_id, &kid)
            .await?
            .ok_or_else(bad)?;
        let claims = jwt.verify(&key).ok_or_else(bad)?;
        if claims["iss"].as_str() != Some(app.issuer(&env_id).as_str()) {
            return Err(bad());
        }
        let client = applications::find_by_client_id(
            &app,
            &env_id,
            claims["aud"].as_str().unwrap_or_default(),
        )
        .await?
        .filter(|c| c.data["enabled"] == true)
        .ok_or_else(bad)?;
        if let (Some(s), Some(sub)) = (&session, claims["sub"].as_str())
            && s.user_id.as_deref().is_some_and(|u| u != sub)
        {
            return Err(ApiError::InvalidRequest(
                "The id_token_hint is for another user than the session's.".into(),
            ));
        }
        hinted_app = Some(client);
    }
    if let Some(uri) = &q.post_logout_redirect_uri {
        let allowed = match &hinted_app {
            Some(c) => strings(&c.data["postLogoutRedirectUris"]).contains(&uri.as_str()),
            None => {
                let apps = app
                    .store
                    .read()
                    .children(applications::KIND, &env_id, "")
                    .await?;
                apps.iter().any(|c| {
                    c.data["enabled"] == true
                        && strings(&c.data["postLogoutRedirectUris"]).contains(&uri.as_str())
                })
            }
        };
        if !allowed {
            return Err(ApiError::InvalidRequest(
                "The post_logout_redirect_uri is not registered.".into(),
            ));
        }
    }
    if let Some(c) = &cookie {
        sessions::end(&app, c).await?;
    }
    let mut resp = match &q.post_logout_redirect_uri {
        Some(uri) => {
            let mut loc = uri.clone();
            if let Some(s) = &q.state {
                let sep = if loc.contains('?') { '&' } else { '?' };
                loc = format!("{loc}{sep}{}", serde_urlencoded::to_string([("state", s)]).unwrap_or_default());
            }
            let mut r = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&loc) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        None => Html(format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Signed out</title></head><body><main><h1>You are signed out</h1><p>{}</p></main></body></html>",
            html_escape("You can close this window.")
        ))
        .into_response(),
    };
    for c in sessions::clear_cookie(&env_id) {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}
