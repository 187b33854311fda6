//! `/as/introspect` (RFC 7662), `/as/revoke` (RFC 7009) and `/as/signoff` (with its
//! confirmation page).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use super::html::{self, escape as html_escape};
use super::oauth::{client_form, known_env};
use super::signon;
use crate::engine::keys::UnverifiedJwt;
use crate::engine::oauth::introspection;
use crate::engine::sessions;
use crate::engine::tokens;
use crate::error::{ApiError, ApiResult, OAuthError};
use crate::resources::applications;
use crate::state::{App, AppState};
use crate::store::Doc;

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

/// The parameters of `/as/signoff`, in the query (GET) or the form (POST).
#[derive(serde::Deserialize)]
pub struct SignoffParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    /// The confirmation page's CSRF token (read from the POST form only).
    #[serde(rename = "csrfToken")]
    csrf_token: Option<String>,
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// GET `/as/signoff`.
pub async fn signoff(
    State(app): State<AppState>,
    Path(env_id): Path<String>,
    Query(p): Query<SignoffParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // A GET never confirms: a token in a URL leaks (history, Referer) and links are what a
    // cross-site attacker can make a browser follow.
    sign_off(&app, &env_id, &p, None, &headers).await
}

/// POST `/as/signoff`: the same parameters as a form (RP-Initiated Logout allows POST), and
/// the confirmation page's form with its CSRF token.
pub async fn signoff_post(
    State(app): State<AppState>,
    Path(env_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if super::extract::media_type(&headers) != "application/x-www-form-urlencoded" {
        return Err(ApiError::UnsupportedMediaType(
            "Signoff accepts form posts only.".into(),
        ));
    }
    let bytes = super::extract::read_bytes(body).await?;
    let p: SignoffParams = serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| ApiError::InvalidRequest("The form could not be read.".into()))?;
    sign_off(&app, &env_id, &p, p.csrf_token.as_deref(), &headers).await
}

/// Ends the browser's session. With a valid `id_token_hint` at once, as PingOne does. Without
/// one, a browser signed on here is asked first, since a bare cross-site link or form must not
/// sign it out (logout CSRF): the confirmation page posts back with a CSRF token kept in the
/// session, and only that post ends it. A browser without a signed-in session has nothing to
/// lose and is signed off at once. `post_logout_redirect_uri` is checked before anything.
async fn sign_off(
    app: &App,
    env_id: &str,
    p: &SignoffParams,
    sent_csrf: Option<&str>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    known_env(app, env_id).await?;
    if p.post_logout_redirect_uri.as_deref().map_or(0, str::len)
        + p.state.as_deref().map_or(0, str::len)
        > 8192
    {
        return Err(ApiError::InvalidRequest(
            "post_logout_redirect_uri and state are too long.".into(),
        ));
    }
    let cookie = sessions::cookie_of(headers);
    let session = sessions::find(app, env_id, cookie.as_deref()).await?;
    let hinted_app = match &p.id_token_hint {
        Some(hint) => Some(hinted_app(app, env_id, hint, session.as_ref().map(|(_, s)| s)).await?),
        None => None,
    };
    if let Some(uri) = &p.post_logout_redirect_uri {
        check_post_logout_uri(app, env_id, uri, hinted_app.as_ref()).await?;
    }
    if let (None, Some(live), Some(cookie)) = (&hinted_app, session, &cookie)
        && live.1.user_id.is_some()
    {
        let expected = live.1.csrf.clone().unwrap_or_default();
        if !signon::csrf_matches(&expected, sent_csrf.unwrap_or_default()) {
            let token =
                sessions::csrf_token(app, env_id, cookie, live, signon::new_csrf_token()).await?;
            return Ok(confirmation(app, env_id, p, &token, sent_csrf.is_some()));
        }
    }
    if let Some(c) = &cookie {
        sessions::end(app, c).await?;
    }
    Ok(signed_off(env_id, p))
}

/// The application of an `id_token_hint`: signed by this environment (expiry does not
/// matter), for an enabled application, and for the session's user if there is one.
async fn hinted_app(
    app: &App,
    env_id: &str,
    hint: &str,
    session: Option<&sessions::Session>,
) -> ApiResult<Doc> {
    let bad = || ApiError::InvalidRequest("The id_token_hint is not valid.".into());
    let jwt = UnverifiedJwt::parse(hint).ok_or_else(bad)?;
    let kid = jwt.kid().unwrap_or_default().to_string();
    let key = app
        .keys
        .by_kid(&app.store, &app.master, env_id, &kid)
        .await?
        .ok_or_else(bad)?;
    let claims = jwt.verify(&key).ok_or_else(bad)?;
    if claims["iss"].as_str() != Some(app.issuer(env_id).as_str()) {
        return Err(bad());
    }
    let client =
        applications::find_by_client_id(app, env_id, claims["aud"].as_str().unwrap_or_default())
            .await?
            .filter(|c| c.data["enabled"] == true)
            .ok_or_else(bad)?;
    if let (Some(s), Some(sub)) = (session, claims["sub"].as_str())
        && s.user_id.as_deref().is_some_and(|u| u != sub)
    {
        return Err(ApiError::InvalidRequest(
            "The id_token_hint is for another user than the session's.".into(),
        ));
    }
    Ok(client)
}

/// A `post_logout_redirect_uri` must be registered exactly: with the hinted application, else
/// with some enabled application of the environment.
async fn check_post_logout_uri(
    app: &App,
    env_id: &str,
    uri: &str,
    hinted_app: Option<&Doc>,
) -> ApiResult<()> {
    let allowed = match hinted_app {
        Some(c) => strings(&c.data["postLogoutRedirectUris"]).contains(&uri),
        None => {
            let apps = app
                .store
                .read()
                .children(applications::KIND, env_id, "")
                .await?;
            apps.iter().any(|c| {
                c.data["enabled"] == true
                    && strings(&c.data["postLogoutRedirectUris"]).contains(&uri)
            })
        }
    };
    if !allowed {
        return Err(ApiError::InvalidRequest(
            "The post_logout_redirect_uri is not registered.".into(),
        ));
    }
    Ok(())
}

/// "Sign off?": a form that posts the (already checked) parameters back with the session's
/// CSRF token. `refused`: a token was sent but not the session's (403, asked again).
fn confirmation(
    app: &App,
    env_id: &str,
    p: &SignoffParams,
    token: &str,
    refused: bool,
) -> Response {
    let hidden = |name: &str, value: Option<&str>| {
        value
            .map(|v| {
                format!(
                    "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                    html_escape(v)
                )
            })
            .unwrap_or_default()
    };
    let lead = if refused {
        "This sign-off form has expired. Do you still want to sign off?"
    } else {
        "Do you want to sign off from this browser?"
    };
    let doc = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>Sign off?</title></head>\
         <body><main><h1>Sign off?</h1><p>{}</p><form method=\"post\" action=\"{}\">{}{}{}\
         <button type=\"submit\">Sign off</button></form></main></body></html>",
        html_escape(lead),
        html_escape(&format!("{}/{env_id}/as/signoff", app.public_url())),
        hidden(signon::FIELD_CSRF, Some(token)),
        hidden(
            "post_logout_redirect_uri",
            p.post_logout_redirect_uri.as_deref()
        ),
        hidden("state", p.state.as_deref()),
    );
    let status = if refused {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let mut r = (status, Html(doc)).into_response();
    // The post ends in a redirect to the post-logout URI, which browsers check against
    // form-action too.
    let mut form_action = String::from("'self'");
    if let Some(o) = p.post_logout_redirect_uri.as_deref().and_then(html::origin) {
        form_action = format!("{form_action} {o}");
    }
    html::security_headers(
        &mut r,
        &format!(
            "default-src 'none'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        ),
    );
    r
}

/// The answer once the session has ended: to the post-logout URI (with `state`), else the
/// "signed out" page; both delete the session cookies.
fn signed_off(env_id: &str, p: &SignoffParams) -> Response {
    let mut resp = match &p.post_logout_redirect_uri {
        Some(uri) => {
            let mut loc = uri.clone();
            if let Some(s) = &p.state {
                let sep = if loc.contains('?') { '&' } else { '?' };
                loc = format!(
                    "{loc}{sep}{}",
                    serde_urlencoded::to_string([("state", s)]).unwrap_or_default()
                );
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
    for c in sessions::clear_cookie(env_id) {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}
