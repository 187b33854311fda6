//! Browser sessions: the `ST` cookie names a session record (stored by the SHA-256 of the
//! cookie value, so a database read does not reveal live cookies). A session exists from the
//! first authorize; it carries the signed-in user once a flow completes, for single sign-on.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clock;
use crate::error::ApiResult;
use crate::state::App;

pub const COOKIE: &str = "ST";
pub const KIND: &str = "session";
/// Sessions live 30 days from their last use, as the `ST` cookie's Max-Age.
pub const LIFETIME: i64 = 30 * 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Session {
    pub id: String,
    pub env_id: String,
    pub user_id: Option<String>,
    pub auth_time: Option<i64>,
    #[serde(default)]
    pub amr: Vec<String>,
    /// When the user last proved a password / a second factor in this session.
    pub pwd_at: Option<i64>,
    pub mfa_at: Option<i64>,
}

pub fn hash(cookie: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, cookie.as_bytes()))
}

/// The session of this cookie in this environment, if it is live.
pub async fn find(
    app: &App,
    env_id: &str,
    cookie: Option<&str>,
) -> ApiResult<Option<(crate::store::runtime::Item, Session)>> {
    let Some(c) = cookie.filter(|c| !c.is_empty() && c.len() <= 128) else {
        return Ok(None);
    };
    let Some(item) = app.store.runtime_get(KIND, &hash(c)).await? else {
        return Ok(None);
    };
    if item.env_id != env_id {
        return Ok(None);
    }
    let s: Session =
        serde_json::from_value(item.data.clone()).map_err(crate::error::ApiError::internal)?;
    Ok(Some((item, s)))
}

/// Starts a new anonymous session; returns the cookie value and the session.
pub async fn create(app: &App, env_id: &str) -> ApiResult<(String, Session)> {
    let cookie = uuid::Uuid::new_v4().to_string();
    let s = Session {
        id: uuid::Uuid::new_v4().to_string(),
        env_id: env_id.into(),
        ..Default::default()
    };
    app.store
        .runtime_put(
            KIND,
            &hash(&cookie),
            env_id,
            &json!(s),
            clock::unix() + LIFETIME,
        )
        .await?;
    Ok((cookie, s))
}

/// Records a completed sign-on in the session.
pub async fn sign_on(
    app: &App,
    env_id: &str,
    cookie: &str,
    user_id: &str,
    amr: &[String],
    auth_time: i64,
) -> ApiResult<Session> {
    for _ in 0..5 {
        let Some((item, mut s)) = find(app, env_id, Some(cookie)).await? else {
            break;
        };
        if s.user_id.as_deref().is_some_and(|u| u != user_id) {
            // Another user signs in on this browser: a new session id.
            s = Session {
                id: uuid::Uuid::new_v4().to_string(),
                env_id: env_id.into(),
                ..Default::default()
            };
        }
        s.user_id = Some(user_id.into());
        s.auth_time = Some(auth_time);
        if amr.iter().any(|a| a == "pwd") {
            s.pwd_at = Some(auth_time);
        }
        if amr.iter().any(|a| a != "pwd") {
            s.mfa_at = Some(auth_time);
        }
        s.amr = amr.to_vec();
        if app
            .store
            .runtime_swap(&item, &json!(s), clock::unix() + LIFETIME)
            .await?
        {
            mark_live(app, &s).await?;
            return Ok(s);
        }
    }
    // The session vanished (signed off meanwhile): start a fresh one under the same cookie.
    let s = Session {
        id: uuid::Uuid::new_v4().to_string(),
        env_id: env_id.into(),
        user_id: Some(user_id.into()),
        auth_time: Some(auth_time),
        amr: amr.to_vec(),
        pwd_at: amr.iter().any(|a| a == "pwd").then_some(auth_time),
        mfa_at: amr.iter().any(|a| a != "pwd").then_some(auth_time),
    };
    app.store
        .runtime_upsert(
            KIND,
            &hash(cookie),
            env_id,
            &json!(s),
            clock::unix() + LIFETIME,
        )
        .await?;
    mark_live(app, &s).await?;
    Ok(s)
}

/// Refresh tokens live only as long as the session they came from: a marker per session id,
/// kept with the session and removed at signoff.
const LIVE_KIND: &str = "sessionLive";

async fn mark_live(app: &App, s: &Session) -> ApiResult<()> {
    app.store
        .runtime_upsert(
            LIVE_KIND,
            &s.id,
            &s.env_id,
            &json!({}),
            clock::unix() + LIFETIME,
        )
        .await
}

pub async fn is_live(app: &App, session_id: &str) -> ApiResult<bool> {
    Ok(app
        .store
        .runtime_get(LIVE_KIND, session_id)
        .await?
        .is_some())
}

pub async fn end(app: &App, cookie: &str) -> ApiResult<()> {
    if let Some(item) = app.store.runtime_get(KIND, &hash(cookie)).await?
        && let Some(id) = item.data["id"].as_str()
    {
        app.store.runtime_delete(LIVE_KIND, id).await?;
    }
    app.store.runtime_delete(KIND, &hash(cookie)).await?;
    Ok(())
}

/// The `Set-Cookie` value for a session cookie (Secure and SameSite=None only over https).
pub fn set_cookie(app: &App, env_id: &str, cookie: &str) -> String {
    if app.public_url().starts_with("https://") {
        format!(
            "{COOKIE}={cookie}; Path=/{env_id}; Max-Age={LIFETIME}; Secure; HttpOnly; SameSite=None"
        )
    } else {
        format!("{COOKIE}={cookie}; Path=/{env_id}; Max-Age={LIFETIME}; HttpOnly; SameSite=Lax")
    }
}

pub fn clear_cookie(env_id: &str) -> String {
    format!("{COOKIE}=; Path=/{env_id}; Max-Age=0; HttpOnly")
}

/// The `ST` cookie of a request.
pub fn cookie_of(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE).then(|| v.to_string())
        })
}
