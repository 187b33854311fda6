//! User endpoints beyond the generic layer: creation in both media types (create and import),
//! the password actions (`/users/{id}/password`, chosen by Content-Type, on PUT and POST alike),
//! the account lock (`POST /users/{id}`), `/users/{id}/enabled` and `/users/{id}/population`.
//! The rules live in `engine::user_password` and `engine::password_policy`; handlers parse,
//! load, call the engine and persist in one transaction.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::extract::{Mgmt, read_json};
use super::mgmt::{JSON, created, method_not_allowed, render_full};
use crate::engine::authz::Area;
use crate::engine::password_policy;
use crate::engine::sessions;
use crate::engine::user_password::{self, SetOptions};
use crate::error::{ApiError, ApiResult, Detail};
use crate::model::schema::{Field, Mode, Ty, f, validate};
use crate::resources::users::{KIND, USER_IMPORT, USERS};
use crate::resources::{Resource, WriteCtx, ops, populations, roles};
use crate::state::{App, AppState};
use crate::store::{Doc, Tx};

pub const IMPORT: &str = "application/vnd.pingidentity.user.import+json";
pub const ACCOUNT_LOCK: &str = "application/vnd.pingidentity.account.lock+json";
pub const ACCOUNT_UNLOCK: &str = "application/vnd.pingidentity.account.unlock+json";
pub const PASSWORD_SET: &str = "application/vnd.pingidentity.password.set+json";
pub const PASSWORD_SET_VALUE: &str = "application/vnd.pingidentity.password.setValue+json";
pub const PASSWORD_RESET: &str = "application/vnd.pingidentity.password.reset+json";
pub const PASSWORD_CHECK: &str = "application/vnd.pingidentity.password.check+json";
pub const PASSWORD_FORCE_CHANGE: &str = "application/vnd.pingidentity.password.forceChange";
pub const PASSWORD_FORCE_CHANGE_JSON: &str =
    "application/vnd.pingidentity.password.forceChange+json";
pub const PASSWORD_UNLOCK: &str = "application/vnd.pingidentity.password.unlock";
pub const PASSWORD_UNLOCK_JSON: &str = "application/vnd.pingidentity.password.unlock+json";

/// Content types of `/users/{id}/password` writes (compared case-insensitively; parameters
/// such as `charset` are ignored).
const PASSWORD_TYPES: &[&str] = &[
    PASSWORD_SET,
    PASSWORD_SET_VALUE,
    PASSWORD_RESET,
    PASSWORD_CHECK,
    PASSWORD_FORCE_CHANGE,
    PASSWORD_FORCE_CHANGE_JSON,
    PASSWORD_UNLOCK,
    PASSWORD_UNLOCK_JSON,
];

const USER: &str = "/v1/environments/{envId}/users/{id}";

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    // `/users` and `/users/{id}` get their other methods (and the 405 fallback) from the
    // generic layer; a method router merged into a path that has a fallback must not have one.
    r.route("/v1/environments/{envId}/users", post(create))
        .route(USER, post(account_action))
        .route(
            &format!("{USER}/password"),
            get(read_password)
                .put(password_action)
                .post(password_action)
                .fallback(method_not_allowed),
        )
        .route(
            &format!("{USER}/enabled"),
            get(read_enabled)
                .put(update_enabled)
                .fallback(method_not_allowed),
        )
        .route(
            &format!("{USER}/population"),
            get(read_population)
                .put(update_population)
                .fallback(method_not_allowed),
        )
}

async fn create(mg: Mgmt, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    mg.require(Area::Identity, true)?;
    let (media, input) = read_json(&headers, body, &[JSON, IMPORT]).await?;
    let r: &dyn Resource = if media == IMPORT {
        &USER_IMPORT
    } else {
        &USERS
    };
    let env = mg.env()?.clone();
    let mut tx = mg.app.store.begin().await?;
    let mut ctx = WriteCtx {
        app: &mg.app,
        tx: &mut tx,
        env: &env,
        org_id: &mg.org_id,
    };
    let doc = ops::create(&mut ctx, r, &input, "").await?;
    tx.commit().await?;
    mg.app.changed();
    created(&mg.app, &USERS, &doc).await
}

// ---- helpers ----

async fn load_read(mg: &Mgmt) -> ApiResult<Doc> {
    user_in_path(mg, "id").await
}

/// The user named by the path parameter `param` (`id`, or `parentId` under `/users/{…}/…`).
pub(super) async fn user_in_path(mg: &Mgmt, param: &str) -> ApiResult<Doc> {
    mg.app
        .store
        .read()
        .get(KIND, &mg.env()?.id, mg.param(param))
        .await?
        .ok_or_else(ApiError::not_found)
}

async fn load_write(mg: &Mgmt, tx: &mut Tx) -> ApiResult<Doc> {
    // Writers of one user take turns (PostgreSQL row lock): no lost failure counts or flags.
    tx.lock(&mg.env()?.id, mg.param("id")).await?;
    tx.get(KIND, &mg.env()?.id, mg.param("id"))
        .await?
        .ok_or_else(ApiError::not_found)
}

fn body_of(fields: &[Field], input: &Value) -> ApiResult<Map<String, Value>> {
    validate(fields, input, None, Mode::Create).map_err(ApiError::invalid)
}

fn user_href(app: &App, user: &Doc, rest: &str) -> String {
    app.env_href(&user.env_id, &format!("/users/{}{rest}", user.id))
}

// ---- password ----

fn password_body(app: &App, user: &Doc, policy: Option<&Doc>) -> Value {
    let v = user_password::view(user, policy.map(|p| &p.data), OffsetDateTime::now_utc());
    let mut links = json!({
        "self": { "href": user_href(app, user, "/password") },
        "environment": { "href": app.env_href(&user.env_id, "") },
        "user": { "href": user_href(app, user, "") },
    });
    let mut body = json!({
        "environment": { "id": user.env_id },
        "user": { "id": user.id },
    });
    if let Some(p) = policy {
        links["passwordPolicy"] =
            json!({ "href": app.env_href(&user.env_id, &format!("/passwordPolicies/{}", p.id)) });
        body["passwordPolicy"] = json!({ "id": p.id });
    }
    body["status"] = json!(v.status);
    if let Some(at) = v.last_changed_at {
        body["lastChangedAt"] = json!(at);
    }
    if let Some(n) = v.failures_remaining {
        body["failuresRemaining"] = json!(n);
    }
    if let Some(s) = v.seconds_until_unlock {
        body["secondsUntilUnlock"] = json!(s);
    }
    body["_links"] = links;
    body
}

async fn read_password(mg: Mgmt) -> ApiResult<Response> {
    mg.require(Area::Identity, false)?;
    let user = load_read(&mg).await?;
    let policy = password_policy::policy_for(&mut mg.app.store.read(), &user).await?;
    Ok(Json(password_body(&mg.app, &user, policy.as_ref())).into_response())
}

const PASSWORD: Ty = Ty::Str { min: 1, max: 4096 };
const SET_FIELDS: &[Field] = &[
    f("value", PASSWORD).req(),
    f("forceChange", Ty::Bool).def_bool(false),
    f("bypassPolicy", Ty::Bool).def_bool(false),
];
const SET_VALUE_FIELDS: &[Field] = &[
    f("value", PASSWORD),
    f("forceChange", Ty::Bool).def_bool(false),
    f("bypassPolicy", Ty::Bool).def_bool(false),
];
const RESET_FIELDS: &[Field] = &[
    f("newPassword", PASSWORD).req(),
    f("currentPassword", PASSWORD),
];
const CHECK_FIELDS: &[Field] = &[f("password", PASSWORD).req()];

enum PasswordAction {
    Set {
        value: Option<String>,
        force_change: bool,
        bypass_policy: bool,
    },
    Reset {
        current: Option<String>,
        new_password: String,
    },
    Check(String),
    ForceChange,
    Unlock,
}

impl PasswordAction {
    /// Whether the action gives the user a new password (or removes it): their sign-ons so
    /// far end with the old one.
    fn replaces_password(&self) -> bool {
        matches!(
            self,
            PasswordAction::Set { .. } | PasswordAction::Reset { .. }
        )
    }

    fn parse(media: &str, input: &Value) -> ApiResult<Self> {
        let is = |t: &str| media.eq_ignore_ascii_case(t);
        let text =
            |b: &Map<String, Value>, k: &str| b.get(k).and_then(Value::as_str).map(str::to_string);
        if is(PASSWORD_SET) || is(PASSWORD_SET_VALUE) {
            let b = body_of(
                if is(PASSWORD_SET) {
                    SET_FIELDS
                } else {
                    SET_VALUE_FIELDS
                },
                input,
            )?;
            Ok(PasswordAction::Set {
                value: text(&b, "value"),
                force_change: b["forceChange"] == true,
                bypass_policy: b["bypassPolicy"] == true,
            })
        } else if is(PASSWORD_RESET) {
            let b = body_of(RESET_FIELDS, input)?;
            Ok(PasswordAction::Reset {
                current: text(&b, "currentPassword"),
                new_password: text(&b, "newPassword").unwrap_or_default(),
            })
        } else if is(PASSWORD_CHECK) {
            let b = body_of(CHECK_FIELDS, input)?;
            Ok(PasswordAction::Check(
                text(&b, "password").unwrap_or_default(),
            ))
        } else if is(PASSWORD_FORCE_CHANGE) || is(PASSWORD_FORCE_CHANGE_JSON) {
            Ok(PasswordAction::ForceChange)
        } else {
            Ok(PasswordAction::Unlock)
        }
    }
}

/// PUT or POST `/users/{id}/password`: the action is chosen by Content-Type. Every success
/// returns 200 with the password state. A failed check or current-password verification still
/// records the failure (and a lockout) before the error is returned.
async fn password_action(mg: Mgmt, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    mg.require(Area::Identity, true)?;
    let (media, input) = read_json(&headers, body, PASSWORD_TYPES).await?;
    let action = PasswordAction::parse(&media, &input)?;
    let app = &mg.app;
    let mut tx = app.store.begin().await?;
    let mut user = load_write(&mg, &mut tx).await?;
    if action.replaces_password() {
        // A new password is the user's credentials: a user holding roles (an administrator
        // signing on to admin-only applications) is the caller's to reset only within the
        // caller's own authority.
        roles::require_authority_over(&mut tx, &mg.actor, &user.env_id, &user.id, &mg.org_id)
            .await?;
    }
    let before = (user.data.clone(), user.secrets.clone());
    let result = match &action {
        PasswordAction::Set {
            value: Some(value),
            force_change,
            bypass_policy,
        } => {
            let o = SetOptions {
                force_change: *force_change,
                allow_hash: true,
                bypass_policy: *bypass_policy,
                target: "password",
                current: None,
            };
            user_password::set(app, &mut tx, &mut user, value, o).await
        }
        PasswordAction::Set { value: None, .. } => user_password::unset(app, &mut user),
        PasswordAction::Reset {
            current,
            new_password,
        } => user_password::reset(app, &mut tx, &mut user, current.as_deref(), new_password).await,
        PasswordAction::Check(password) => {
            match user_password::check(app, &mut tx, &mut user, password).await {
                Ok(outcome) => outcome.into_result("password"),
                Err(e) => Err(e),
            }
        }
        PasswordAction::ForceChange => user_password::force_change(&mut user, "password"),
        PasswordAction::Unlock => {
            user_password::unlock(&mut user);
            Ok(())
        }
    };
    if result.is_ok() && action.replaces_password() {
        // Whoever knew the old password (or held a session or refresh token from it) is out:
        // every browser's session and refresh token of the user ends.
        sessions::end_sign_ons(&mut user);
    }
    if user.data != before.0 || user.secrets != before.1 {
        tx.update_data(&mut user).await?;
    }
    let policy = if result.is_ok() {
        password_policy::policy_for(&mut tx, &user).await?
    } else {
        None
    };
    tx.commit().await?;
    app.changed();
    result?;
    Ok(Json(password_body(app, &user, policy.as_ref())).into_response())
}

// ---- account lock ----

/// POST `/users/{id}` with `account.lock+json` (optional `unlockAt`) or `account.unlock+json`:
/// 200 with the user.
async fn account_action(mg: Mgmt, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    mg.require(Area::Identity, true)?;
    let (media, input) = read_json(&headers, body, &[ACCOUNT_LOCK, ACCOUNT_UNLOCK]).await?;
    let lock = media.eq_ignore_ascii_case(ACCOUNT_LOCK);
    let unlock_at = match input.get("unlockAt") {
        None | Some(Value::Null) => None,
        Some(v) if lock => Some(v.as_str().and_then(crate::clock::parse).ok_or_else(|| {
            ApiError::one(Detail::invalid(
                "unlockAt",
                "unlockAt must be an RFC 3339 date-time.",
            ))
        })?),
        Some(_) => None,
    };
    let now = OffsetDateTime::now_utc();
    let mut tx = mg.app.store.begin().await?;
    let mut user = load_write(&mg, &mut tx).await?;
    match (lock, unlock_at) {
        // PingOne: an `unlockAt` in the past leaves the account unlocked.
        (true, Some(at)) if at <= now => {
            user_password::refresh_account(&mut user, now);
        }
        (true, at) => user_password::lock_account(&mut user, at, now),
        (false, _) => user_password::unlock_account(&mut user),
    }
    tx.update_data(&mut user).await?;
    tx.commit().await?;
    mg.app.changed();
    Ok(Json(render_full(&mg.app, &USERS, &user).await?).into_response())
}

// ---- enabled ----

fn enabled_body(app: &App, user: &Doc) -> Value {
    json!({
        "_links": {
            "self": { "href": user_href(app, user, "/enabled") },
            "user": { "href": user_href(app, user, "") },
        },
        "enabled": user.data["enabled"].as_bool().unwrap_or(true),
    })
}

async fn read_enabled(mg: Mgmt) -> ApiResult<Response> {
    mg.require(Area::Identity, false)?;
    let user = load_read(&mg).await?;
    Ok(Json(enabled_body(&mg.app, &user)).into_response())
}

const ENABLED_FIELDS: &[Field] = &[f("enabled", Ty::Bool).req()];

async fn update_enabled(mg: Mgmt, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    let user = set_flag(&mg, headers, body, ENABLED_FIELDS).await?;
    Ok(Json(enabled_body(&mg.app, &user)).into_response())
}

/// `PUT /users/{id}/{flag}` with `{ "<flag>": bool }` (`enabled`, `mfaEnabled`): validates the
/// one-field body and stores it on the user; returns the user.
pub(super) async fn set_flag(
    mg: &Mgmt,
    headers: HeaderMap,
    body: Body,
    fields: &[Field],
) -> ApiResult<Doc> {
    mg.require(Area::Identity, true)?;
    let (_, input) = read_json(&headers, body, &[JSON]).await?;
    let b = body_of(fields, &input)?;
    let mut tx = mg.app.store.begin().await?;
    let mut user = load_write(mg, &mut tx).await?;
    for f in fields {
        user.data[f.name] = b[f.name].clone();
    }
    tx.update_data(&mut user).await?;
    tx.commit().await?;
    mg.app.changed();
    Ok(user)
}

// ---- population ----

fn population_body(app: &App, user: &Doc) -> Value {
    let id = user.data["population"]["id"].clone();
    json!({
        "_links": {
            "self": { "href": user_href(app, user, "/population") },
            "user": { "href": user_href(app, user, "") },
            "population": { "href": app.env_href(&user.env_id, &format!("/populations/{}", id.as_str().unwrap_or_default())) },
        },
        "id": id,
    })
}

async fn read_population(mg: Mgmt) -> ApiResult<Response> {
    mg.require(Area::Identity, false)?;
    let user = load_read(&mg).await?;
    Ok(Json(population_body(&mg.app, &user)).into_response())
}

const POPULATION_FIELDS: &[Field] = &[f("id", Ty::Uuid).req()];

/// PUT `/users/{id}/population` `{ "id" }`: the only way to move a user.
async fn update_population(mg: Mgmt, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    mg.require(Area::Identity, true)?;
    let (_, input) = read_json(&headers, body, &[JSON]).await?;
    let b = body_of(POPULATION_FIELDS, &input)?;
    let pop_id = b["id"].as_str().unwrap_or_default().to_string();
    let mut tx = mg.app.store.begin().await?;
    let mut user = load_write(&mg, &mut tx).await?;
    if tx
        .get(populations::KIND, &user.env_id, &pop_id)
        .await?
        .is_none()
    {
        return Err(ApiError::one(Detail::invalid(
            "id",
            "The population does not exist.",
        )));
    }
    user.data["population"] = json!({ "id": pop_id });
    tx.update_data(&mut user).await?;
    tx.commit().await?;
    mg.app.changed();
    Ok(Json(population_body(&mg.app, &user)).into_response())
}
