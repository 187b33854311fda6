//! Browser sessions: the `ST` cookie names a session record (stored by the SHA-256 of the
//! cookie value, its key, so a database read does not reveal live cookies). The first
//! authorize of a browser starts an anonymous session (stored with its first flow); it carries
//! the signed-in user once a flow completes, for single sign-on. Refresh tokens remember the
//! key and id of the session they came from and are usable while it lasts.
//!
//! A signed-in session ends (for single sign-on and for its refresh tokens):
//! - after the environment's idle timeout without a sign-on (single sign-on counts), and at
//!   the latest after its absolute lifetime from the first sign-on in it (`ssoCookieSettings`,
//!   see [`Limits`]); the row's expiry is set from both, and they are checked again on use,
//!   so a shortened setting applies to live sessions too;
//! - when the user's sign-ons are ended (a password set, reset or recovered, see
//!   [`end_sign_ons`]): sessions are stored by cookie hash and cannot be listed by user, so the
//!   user document carries a marker that every use compares with;
//! - while the account is locked or disabled.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock;
use crate::engine::user_password;
use crate::error::{ApiError, ApiResult};
use crate::state::App;
use crate::store::Doc;
use crate::store::runtime::Item;

pub const COOKIE: &str = "ST";
pub const KIND: &str = "session";
/// The `ST` cookie's Max-Age before a sign-on (the anonymous session of a browser's first
/// authorize), and the default limits: 30 days, PingOne's fixed idle timeout.
pub const LIFETIME: i64 = 30 * 24 * 3600;
/// The environment's session settings (`/ssoCookieSettings`): at most one document per
/// environment, whose id is the environment's.
pub const SETTINGS_KIND: &str = "ssoCookieSettings";
/// The default idle timeout and absolute lifetime, in minutes (= `LIFETIME`).
pub const DEFAULT_MINUTES: i64 = LIFETIME / 60;
/// The user document's marker (unix milliseconds, internal): sign-ons recorded before it no
/// longer count (see `Session::signs_on`).
pub const VALID_AFTER: &str = "_sessionsValidAfterMs";

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
    /// When the session's user first signed on in it (unix seconds): the absolute lifetime
    /// counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// When a sign-on (single sign-on included) was last recorded in it (unix milliseconds):
    /// the idle timeout counts from here, and the user's marker is compared with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_on_ms: Option<i64>,
    /// The CSRF token of the forms that act on the session itself (the signoff confirmation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
}

impl Session {
    fn anonymous(env_id: &str) -> Session {
        Session {
            id: uuid::Uuid::new_v4().to_string(),
            env_id: env_id.into(),
            ..Default::default()
        }
    }

    /// Sessions stored before these fields existed count from their last sign-on.
    fn started(&self) -> i64 {
        self.started_at.or(self.auth_time).unwrap_or_default()
    }
    fn last_used_ms(&self) -> i64 {
        self.signed_on_ms
            .or(self.auth_time.map(|t| t * 1000))
            .unwrap_or_default()
    }

    /// Whether this session still signs `user` (as read by the caller, which checked that
    /// the user exists and is enabled) on: its user, within the limits, the account not
    /// locked, and signed on since the user's sign-ons were last ended.
    pub fn signs_on(&self, user: &Doc, limits: &Limits, now_ms: i64) -> bool {
        self.user_id.as_deref() == Some(user.id.as_str())
            && limits.hold(self, now_ms)
            && !user_password::account_locked(user, time::OffsetDateTime::now_utc())
            && marker_of(user).is_none_or(|marker| {
                // The proof (whole seconds) is not from before the marker's second, and the
                // sign-on was recorded from the marker's millisecond on: a flow that proved
                // the old password before a reset and resumes after it ends, and so does a
                // session recorded earlier in the marker's second; the recovery that set the
                // marker (its resume may follow within the millisecond) and every later
                // sign-on count.
                self.auth_time.unwrap_or_default() >= marker.div_euclid(1000)
                    && self.last_used_ms() >= marker
            })
    }

    /// Whether a refresh token of this session, issued at `issued_ms` (unix milliseconds;
    /// unknown for tokens stored before it was recorded) for a sign-on proved at `auth_time`,
    /// still counts: the session signs the user on, and neither the token nor its sign-on is
    /// from before the user's sign-ons were ended (the session itself may have been signed on
    /// again since, in the same browser, which revives no older token).
    pub fn keeps_token(
        &self,
        auth_time: i64,
        issued_ms: Option<i64>,
        user: &Doc,
        limits: &Limits,
        now_ms: i64,
    ) -> bool {
        self.signs_on(user, limits, now_ms)
            && marker_of(user).is_none_or(|marker| {
                auth_time >= marker.div_euclid(1000) && issued_ms.is_none_or(|at| at >= marker)
            })
    }
}

/// Unix milliseconds.
pub fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

fn marker_of(user: &Doc) -> Option<i64> {
    user.data[VALID_AFTER].as_i64()
}

/// Ends every sign-on of the user so far, in every browser, and the refresh tokens issued for
/// them (a password set, reset or recovered): stores the marker on the user document (the
/// caller writes it) and returns it. A sign-on proved from the marker's second on, and
/// recorded from its millisecond on, counts (so would one recorded just before it in that
/// millisecond: an accepted window of under a millisecond).
pub fn end_sign_ons(user: &mut Doc) -> i64 {
    let marker = now_ms();
    user.data[VALID_AFTER] = json!(marker);
    marker
}

/// Whether `session` still signs `user` on, under the environment's current limits (read
/// through the configuration cache: no statement).
pub async fn signs_on(app: &App, env_id: &str, session: &Session, user: &Doc) -> ApiResult<bool> {
    let limits = Limits::of(app, env_id).await?;
    Ok(session.signs_on(user, &limits, now_ms()))
}

/// An environment's session limits (`ssoCookieSettings`), in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Without a sign-on (single sign-on included) for this long, the session ends.
    pub idle: i64,
    /// This long after the first sign-on in it, the session ends however much it is used.
    pub max: i64,
    /// The cookie outlives the browser (`useNonPersistentSessionTokenCookie` false).
    pub persistent: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            idle: LIFETIME,
            max: LIFETIME,
            persistent: true,
        }
    }
}

impl Limits {
    /// The limits of a settings document (defaults for what it lacks).
    pub fn of_settings(data: &Value) -> Limits {
        let seconds = |k: &str| data[k].as_i64().unwrap_or(DEFAULT_MINUTES) * 60;
        Limits {
            idle: seconds("idleTimeoutInMinutes"),
            max: seconds("maxLifetimeInMinutes"),
            persistent: data["useNonPersistentSessionTokenCookie"] != true,
        }
    }

    /// The environment's limits, through the configuration cache (read on every sign-on and
    /// refresh).
    pub async fn of(app: &App, env_id: &str) -> ApiResult<Limits> {
        let doc = app.cached_doc(SETTINGS_KIND, env_id, env_id).await?;
        Ok(doc
            .map(|d| Limits::of_settings(&d.data))
            .unwrap_or_default())
    }

    /// Whether a signed-in session is within both limits at `now_ms`.
    fn hold(&self, s: &Session, now_ms: i64) -> bool {
        now_ms <= s.last_used_ms() + self.idle * 1000 && now_ms <= (s.started() + self.max) * 1000
    }

    /// When a session used now ends: the idle timeout from now, but never after its absolute
    /// lifetime.
    fn expires_at(&self, s: &Session, now: i64) -> i64 {
        (now + self.idle).min(s.started() + self.max)
    }

    /// The new cookie of a session signed on now.
    fn cookie(&self, s: &Session, now: i64) -> NewCookie {
        NewCookie {
            value: uuid::Uuid::new_v4().to_string(),
            max_age: self
                .persistent
                .then(|| (s.started() + self.max - now).max(0)),
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

/// A recorded sign-on: the session, its key, and the new cookie when the cookie changed.
pub struct SignedOn {
    pub session: Session,
    pub key: String,
    pub new_cookie: Option<NewCookie>,
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
    let limits = Limits::of(app, env_id).await?;
    let now_ms = now_ms();
    let now = now_ms.div_euclid(1000);
    let record = |mut s: Session| {
        let other_user = s.user_id.as_deref().is_some_and(|u| u != user_id);
        let outlived = s.user_id.is_some() && !limits.hold(&s, now_ms);
        if other_user || outlived {
            // Another user signs in on this browser, or the session outlived its limits: a
            // new session id (the refresh tokens of the previous sign-on end with it).
            s = Session::anonymous(env_id);
        }
        // The absolute lifetime counts from the first sign-on in the session.
        s.started_at = s.started_at.or(s.auth_time).or(Some(auth_time));
        s.user_id = Some(user_id.into());
        s.auth_time = Some(auth_time);
        s.signed_on_ms = Some(now_ms);
        if amr.iter().any(|a| a == "pwd") {
            s.pwd_at = Some(auth_time);
        }
        if amr.iter().any(|a| a != "pwd") {
            s.mfa_at = Some(auth_time);
        }
        s.amr = amr.to_vec();
        s
    };
    for _ in 0..5 {
        let Some((item, before)) = current.take() else {
            break;
        };
        let same_user = before.user_id.as_deref() == Some(user_id);
        let mut s = record(before);
        let fresh = (!same_user).then(|| limits.cookie(&s, now));
        let key = fresh
            .as_ref()
            .map(|c| hash(&c.value))
            .unwrap_or_else(|| item.id.clone());
        if fresh.is_some() {
            s.rotated_from = Some(item.id.clone());
        }
        if app
            .store
            .runtime_swap_as(&item, &key, &json!(s), limits.expires_at(&s, now))
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
    let fresh = limits.cookie(&s, now);
    let key = hash(&fresh.value);
    app.store
        .runtime_put(KIND, &key, env_id, &json!(s), limits.expires_at(&s, now))
        .await?;
    Ok(SignedOn {
        session: s,
        key,
        new_cookie: Some(fresh),
    })
}

/// The session's CSRF token (for forms that act on the session itself): the one it has, else
/// `fresh`, stored with it now. A concurrent change of the session is read again.
pub async fn csrf_token(
    app: &App,
    env_id: &str,
    cookie: &str,
    mut current: (Item, Session),
    fresh: String,
) -> ApiResult<String> {
    for _ in 0..5 {
        let (item, mut s) = current;
        if let Some(token) = s.csrf {
            return Ok(token);
        }
        s.csrf = Some(fresh.clone());
        if app
            .store
            .runtime_swap(&item, &json!(s), item.expires_at)
            .await?
        {
            return Ok(fresh);
        }
        current = find(app, env_id, Some(cookie))
            .await?
            .ok_or_else(|| ApiError::NotFound("The session has ended.".into()))?;
    }
    Err(ApiError::RequestFailed(
        "The session was changed by another request; try again.".into(),
        vec![],
    ))
}

pub async fn end(app: &App, cookie: &str) -> ApiResult<()> {
    app.store.runtime_delete(KIND, &hash(cookie)).await?;
    Ok(())
}

/// The twin of `ST` without a SameSite attribute (over https), as PingOne sets it, for browsers
/// that drop or mishandle `SameSite=None` cookies; read when `ST` is missing.
pub const COOKIE_NO_SAMESITE: &str = "ST-NO-SS";

/// A session cookie minted at a sign-on, with how long the browser keeps it (`None`: until it
/// closes), decided there from the environment's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCookie {
    pub value: String,
    pub max_age: Option<i64>,
}

/// What `set_cookie` sets: a plain value (the anonymous session of a browser's first
/// authorize, kept `LIFETIME`) or a [`NewCookie`].
pub trait CookieValue {
    fn value(&self) -> &str;
    fn max_age(&self) -> Option<i64>;
}

impl CookieValue for String {
    fn value(&self) -> &str {
        self
    }
    fn max_age(&self) -> Option<i64> {
        Some(LIFETIME)
    }
}

impl CookieValue for NewCookie {
    fn value(&self) -> &str {
        &self.value
    }
    fn max_age(&self) -> Option<i64> {
        self.max_age
    }
}

/// The `Set-Cookie` values for a session cookie: over https `ST` with `Secure; SameSite=None`
/// and its twin `ST-NO-SS`; over plain http (development) `ST` with `SameSite=Lax`. Without a
/// Max-Age the cookie ends with the browser session.
pub fn set_cookie<C: CookieValue + ?Sized>(app: &App, env_id: &str, cookie: &C) -> Vec<String> {
    let max_age = cookie
        .max_age()
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    let common = format!("Path=/{env_id}{max_age}; HttpOnly");
    let cookie = cookie.value();
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: i64 = 1_700_000_000_500;
    const NOW: i64 = NOW_MS / 1000;

    fn user(marker: Option<i64>) -> Doc {
        let mut data = json!({ "enabled": true });
        if let Some(m) = marker {
            data[VALID_AFTER] = json!(m);
        }
        Doc::new("user", "u", "e", "", data)
    }

    fn session(auth_time: i64, signed_on_ms: i64) -> Session {
        Session {
            id: "s".into(),
            user_id: Some("u".into()),
            auth_time: Some(auth_time),
            started_at: Some(auth_time),
            signed_on_ms: Some(signed_on_ms),
            ..Default::default()
        }
    }

    #[test]
    fn a_marker_ends_what_was_signed_on_before_it() {
        let limits = Limits::default();
        let at = |auth_time, recorded| {
            session(auth_time, recorded).signs_on(&user(Some(NOW_MS)), &limits, NOW_MS + 10)
        };
        assert!(session(NOW - 60, NOW_MS - 60_000).signs_on(&user(None), &limits, NOW_MS));
        assert!(!at(NOW - 60, NOW_MS - 60_000), "signed on a minute before");
        assert!(
            !at(NOW, NOW_MS - 1),
            "recorded earlier in the marker's second"
        );
        assert!(
            !at(NOW - 60, NOW_MS + 5),
            "an old proof resumed after the marker"
        );
        assert!(at(NOW, NOW_MS), "the recovery that set the marker");
        assert!(at(NOW + 1, NOW_MS + 900), "a sign-on after it");
        let s = session(NOW, NOW_MS + 5);
        let u = user(Some(NOW_MS));
        assert!(
            !s.keeps_token(NOW, Some(NOW_MS - 1), &u, &limits, NOW_MS + 10),
            "a token from before"
        );
        assert!(
            !s.keeps_token(NOW - 1, None, &u, &limits, NOW_MS + 10),
            "an older stored token"
        );
        assert!(s.keeps_token(NOW, Some(NOW_MS + 3), &u, &limits, NOW_MS + 10));
    }

    #[test]
    fn limits_count_idle_from_the_last_sign_on_and_the_lifetime_from_the_first() {
        let limits =
            Limits::of_settings(&json!({ "idleTimeoutInMinutes": 10, "maxLifetimeInMinutes": 60 }));
        assert_eq!(
            (limits.idle, limits.max, limits.persistent),
            (600, 3600, true)
        );
        assert_eq!(Limits::of_settings(&json!({})), Limits::default());
        let mut s = session(NOW - 3000, (NOW - 100) * 1000);
        assert!(limits.hold(&s, NOW_MS));
        assert_eq!(
            limits.expires_at(&s, NOW),
            NOW - 3000 + 3600,
            "capped by the lifetime"
        );
        s.signed_on_ms = Some((NOW - 601) * 1000);
        assert!(!limits.hold(&s, NOW * 1000), "idle");
        let s = session(NOW - 3601, NOW_MS);
        assert!(!limits.hold(&s, NOW_MS), "past the lifetime");
        let session_cookie = Limits {
            persistent: false,
            ..limits
        };
        assert_eq!(session_cookie.cookie(&s, NOW).max_age, None);
        assert_eq!(
            limits.cookie(&session(NOW, NOW_MS), NOW).max_age,
            Some(3600)
        );
    }
}
