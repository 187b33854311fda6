//! Browser sessions: the `ST` cookie names a session record (stored by the SHA-256 of the
//! cookie value, its key, so a database read does not reveal live cookies). The first
//! authorize of a browser starts an anonymous session (stored with its first flow); it carries
//! the signed-in user once a flow completes, for single sign-on. Refresh tokens remember the
//! key and id of the session they came from and are usable while it lasts.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::state::App;
use crate::store::runtime::Item;

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
    /// The key this session had before its cookie was last replaced (a sign-on): flows of the
    /// same browser bound to the previous cookie stay usable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<String>,
}

impl Session {
    fn anonymous(env_id: &str) -> Session {
        Session {
            id: uuid::Uuid::new_v4().to_string(),
            env_id: env_id.into(),
            ..Default::default()
        }
    }
}

/// The session's key in the runtime store: the hash of its cookie.
pub fn hash(cookie: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, cookie.as_bytes()))
}

/// The key of a plausible cookie (unlimited input is not hashed).
pub fn key_of(cookie: Option<&str>) -> Option<String> {
    cookie.filter(|c| !c.is_empty() && c.len() <= 128).map(hash)
}

/// A stored session item, if there is one and it is of this environment.
pub fn of_item(item: Option<Item>, env_id: &str) -> ApiResult<Option<(Item, Session)>> {
    let Some(item) = item.filter(|i| i.env_id == env_id) else {
        return Ok(None);
    };
    let s: Session = serde_json::from_value(item.data.clone()).map_err(ApiError::internal)?;
    Ok(Some((item, s)))
}

/// The session of this cookie in this environment, if it is live.
pub async fn find(
    app: &App,
    env_id: &str,
    cookie: Option<&str>,
) -> ApiResult<Option<(Item, Session)>> {
    let Some(key) = key_of(cookie) else {
        return Ok(None);
    };
    of_item(app.store.runtime_get(KIND, &key).await?, env_id)
}

/// A new anonymous session and its cookie value, not stored yet: `new_item` gives what to
/// store (with the browser's first flow, in one statement).
pub fn start(env_id: &str) -> (String, Session) {
    (uuid::Uuid::new_v4().to_string(), Session::anonymous(env_id))
}

/// What to store of a new session: its key, data and expiry.
pub fn new_item(cookie: &str, s: &Session) -> (String, serde_json::Value, i64) {
    (hash(cookie), json!(s), clock::unix() + LIFETIME)
}

/// A recorded sign-on: the session, its key, and the new cookie value when the cookie changed.
pub struct SignedOn {
    pub session: Session,
    pub key: String,
    pub new_cookie: Option<String>,
}

/// Records a completed sign-on in the session. `current` is the session as the caller read it
/// (with the flow); it is read again only if it changed meanwhile.
///
/// When the session's user changes (an anonymous session signs in, or another user signs in on
/// this browser) the cookie is replaced, so that a cookie planted in a browser before the
/// sign-on (session fixation) never becomes a signed-in session.
pub async fn sign_on(
    app: &App,
    env_id: &str,
    cookie: &str,
    mut current: Option<(Item, Session)>,
    user_id: &str,
    amr: &[String],
    auth_time: i64,
) -> ApiResult<SignedOn> {
    let record = |mut s: Session| {
        if s.user_id.as_deref().is_some_and(|u| u != user_id) {
            // Another user signs in on this browser: a new session id (the other user's
            // refresh tokens end with their session).
            s = Session::anonymous(env_id);
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
        s
    };
    let new_cookie = || uuid::Uuid::new_v4().to_string();
    for _ in 0..5 {
        let Some((item, before)) = current.take() else {
            break;
        };
        let same_user = before.user_id.as_deref() == Some(user_id);
        let mut s = record(before);
        let fresh = (!same_user).then(new_cookie);
        let key = fresh
            .as_deref()
            .map(hash)
            .unwrap_or_else(|| item.id.clone());
        if fresh.is_some() {
            s.rotated_from = Some(item.id.clone());
        }
        if app
            .store
            .runtime_swap_as(&item, &key, &json!(s), clock::unix() + LIFETIME)
            .await?
        {
            return Ok(SignedOn {
                session: s,
                key,
                new_cookie: fresh,
            });
        }
        current = find(app, env_id, Some(cookie)).await?;
    }
    // No session under this cookie (signed off meanwhile, or never stored): a fresh one, under
    // a new cookie.
    let mut s = record(Session::anonymous(env_id));
    s.rotated_from = key_of(Some(cookie));
    let fresh = new_cookie();
    let key = hash(&fresh);
    app.store
        .runtime_put(KIND, &key, env_id, &json!(s), clock::unix() + LIFETIME)
        .await?;
    Ok(SignedOn {
        session: s,
        key,
        new_cookie: Some(fresh),
    })
}

/// Whether `item` (read under a token's session key) is still the session the token came from:
/// signed off, expired and replaced by another user's sign-on all end it.
pub fn is_session(item: Option<&Item>, session_id: &str) -> bool {
    item.is_some_and(|i| i.data["id"] == session_id)
}

pub async fn end(app: &App, cookie: &str) -> ApiResult<()> {
    app.store.runtime_delete(KIND, &hash(cookie)).await?;
    Ok(())
}

/// The twin of `ST` without a SameSite attribute (over https), as PingOne sets it, for browsers
/// that drop or mishandle `SameSite=None` cookies; read when `ST` is missing.
pub const COOKIE_NO_SAMESITE: &str = "ST-NO-SS";

/// The `Set-Cookie` values for a session cookie: over https `ST` with `Secure; SameSite=None`
/// and its twin `ST-NO-SS`; over plain http (development) `ST` with `SameSite=Lax`.
pub fn set_cookie(app: &App, env_id: &str, cookie: &str) -> Vec<String> {
    let common = format!("Path=/{env_id}; Max-Age={LIFETIME}; HttpOnly");
    if app.public_url().starts_with("https://") {
        vec![
            format!("{COOKIE}={cookie}; {common}; Secure; SameSite=None"),
            format!("{COOKIE_NO_SAMESITE}={cookie}; {common}; Secure"),
        ]
    } else {
        vec![format!("{COOKIE}={cookie}; {common}; SameSite=Lax")]
    }
}

/// The `Set-Cookie` values that delete both session cookies.
pub fn clear_cookie(env_id: &str) -> Vec<String> {
    [COOKIE, COOKIE_NO_SAMESITE]
        .iter()
        .map(|name| format!("{name}=; Path=/{env_id}; Max-Age=0; HttpOnly"))
        .collect()
}

/// The session cookie of a request: `ST`, else `ST-NO-SS`.
pub fn cookie_of(headers: &axum::http::HeaderMap) -> Option<String> {
    let named = |name: &str| {
        headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                (k == name).then(|| v.to_string())
            })
    };
    named(COOKIE).or_else(|| named(COOKIE_NO_SAMESITE))
}
