//! The LOGIN action: username and password, with password change when the password must be
//! changed, and single sign-on from the browser session.

use serde_json::Value;

use super::{ActionType, Flow, FlowCtx, Step, required_str};
use crate::clock;
use crate::error::{ApiError, ApiResult, Detail};
use crate::resources::users;

pub const USERNAME_PASSWORD_REQUIRED: &str = "USERNAME_PASSWORD_REQUIRED";
pub const MUST_CHANGE_PASSWORD: &str = "MUST_CHANGE_PASSWORD";
pub const PASSWORD_EXPIRED: &str = "PASSWORD_EXPIRED";

pub struct Login;

fn bad_credentials() -> ApiError {
    ApiError::one(Detail::invalid("username", "Invalid username and/or password."))
}

#[async_trait::async_trait]
impl ActionType for Login {
    fn type_name(&self) -> &'static str {
        "LOGIN"
    }

    async fn enter(&self, ctx: &FlowCtx<'_>, flow: &mut Flow, _cfg: &Value) -> ApiResult<Step> {
        // Single sign-on: the browser's session already proved a password for a user.
        let max_age = flow.request.as_ref().and_then(|r| r.max_age);
        // OIDC Core 3.1.2.1: max_age=0 is prompt=login (a same-second session is not fresh enough).
        let forced = flow.request.as_ref().is_some_and(|r| r.prompt.iter().any(|p| p == "login")) || max_age == Some(0);
        if let (Some(uid), Some(pwd_at), false) = (&ctx.session.user_id, ctx.session.pwd_at, forced) {
            let fresh = max_age.is_none_or(|m| clock::unix() - pwd_at <= m);
            // The session's user must still exist and be enabled (an implicit token is issued
            // without another look at the user).
            let live = fresh && ctx.app.store.read().get(users::KIND, &flow.env_id, uid).await?.is_some_and(|u| u.data["enabled"] == true);
            if live && flow.user_id.as_ref().is_none_or(|u| u == uid) {
                flow.user_id = Some(uid.clone());
                flow.auth_time = Some(ctx.session.auth_time.unwrap_or(pwd_at));
                if !flow.amr.iter().any(|a| a == "pwd") {
                    flow.amr.push("pwd".into());
                }
                return Ok(Step::Next);
            }
        }
        Ok(Step::Wait(USERNAME_PASSWORD_REQUIRED))
    }

    fn actions(&self, flow: &Flow, _cfg: &Value) -> Vec<&'static str> {
        match flow.status.as_str() {
            USERNAME_PASSWORD_REQUIRED => vec!["usernamePassword.check"],
            MUST_CHANGE_PASSWORD | PASSWORD_EXPIRED => vec!["password.reset"],
            _ => vec![],
        }
    }

    async fn act(&self, ctx: &FlowCtx<'_>, flow: &mut Flow, _cfg: &Value, action: &str, body: &Value) -> ApiResult<Step> {
        match action {
            "usernamePassword.check" => {
                let username = required_str(body, "username")?;
                let password = required_str(body, "password")?;
                let app = ctx.app;
                let user = app.store.read().find_unique(&flow.env_id, users::KIND, "username", username).await?;
                // The same answer for an unknown user and a wrong password; the hash work is
                // done either way so timing does not tell them apart.
                let Some(user) = user else {
                    let _ = crate::engine::passwords::verify(password.to_string(), DUMMY_HASH.to_string()).await;
                    return Err(bad_credentials());
                };
                let hash = user
                    .secrets
                    .as_deref()
                    .and_then(|s| app.master.decrypt_json(s).ok())
                    .and_then(|v| v["passwordHash"].as_str().map(str::to_string))
                    .unwrap_or_else(|| DUMMY_HASH.to_string());
                let ok = crate::engine::passwords::verify(password.to_string(), hash).await;
                if !ok || user.data["enabled"] != true {
                    return Err(bad_credentials());
                }
                flow.user_id = Some(user.id.clone());
                flow.auth_time = Some(clock::unix());
                flow.amr.push("pwd".into());
                match user.data["_password"]["status"].as_str() {
                    Some(MUST_CHANGE_PASSWORD) => Ok(Step::Wait(MUST_CHANGE_PASSWORD)),
                    Some(PASSWORD_EXPIRED) => Ok(Step::Wait(PASSWORD_EXPIRED)),
                    _ => Ok(Step::Next),
                }
            }
            _ => Err(ApiError::InvalidRequest(format!("The action '{action}' is not supported here."))),
        }
    }
}

/// An argon2id hash of a random value, verified against when the user does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3qk2m7p3dYwQ3Hn9d8xJ5cX1tJmQ9J0cS0yqKz3m6nE";
