//! The LOGIN action: username and password, with password change when the password must be
//! changed, and single sign-on from the browser session.

use serde_json::Value;

use super::recovery::{self, RECOVERY_CODE_REQUIRED};
use super::{ActionType, Flow, FlowCtx, Step, required_str};
use crate::clock;
use crate::engine::password_policy;
use crate::engine::unknown_accounts;
use crate::engine::user_password::{self, CheckOutcome};
use crate::error::{ApiError, ApiResult, Detail};
use crate::resources::users;

pub const USERNAME_PASSWORD_REQUIRED: &str = "USERNAME_PASSWORD_REQUIRED";
pub const MUST_CHANGE_PASSWORD: &str = "MUST_CHANGE_PASSWORD";
pub const PASSWORD_EXPIRED: &str = "PASSWORD_EXPIRED";

pub struct Login;

fn bad_credentials() -> ApiError {
    ApiError::one(Detail::invalid(
        "username",
        "Invalid username and/or password.",
    ))
}

#[async_trait::async_trait]
impl ActionType for Login {
    fn type_name(&self) -> &'static str {
        "LOGIN"
    }

    async fn enter(&self, ctx: &FlowCtx<'_>, flow: &mut Flow, _cfg: &Value) -> ApiResult<Step> {
        if single_sign_on(ctx, flow).await? {
            return Ok(Step::Next);
        }
        Ok(Step::Wait(USERNAME_PASSWORD_REQUIRED))
    }

    fn actions(&self, flow: &Flow, cfg: &Value) -> Vec<&'static str> {
        let can_recover = recovery::enabled(cfg);
        match flow.status.as_str() {
            USERNAME_PASSWORD_REQUIRED if can_recover => {
                vec!["usernamePassword.check", "password.forgot"]
            }
            USERNAME_PASSWORD_REQUIRED => vec!["usernamePassword.check"],
            RECOVERY_CODE_REQUIRED if can_recover => {
                vec!["password.recover", "password.sendRecoveryCode"]
            }
            MUST_CHANGE_PASSWORD | PASSWORD_EXPIRED => vec!["password.reset"],
            _ => vec![],
        }
    }

    async fn act(
        &self,
        ctx: &FlowCtx<'_>,
        flow: &mut Flow,
        cfg: &Value,
        action: &str,
        body: &Value,
    ) -> ApiResult<Step> {
        match action {
            "usernamePassword.check" => {
                let username = required_str(body, "username")?;
                let password = required_str(body, "password")?;
                check_password(ctx, flow, username, password).await
            }
            "password.reset" => {
                let current = required_str(body, "currentPassword")?;
                let new_password = required_str(body, "newPassword")?;
                let user_id = flow
                    .user_id
                    .clone()
                    .ok_or_else(|| ApiError::InvalidRequest("The flow has no user.".into()))?;
                let app = ctx.app;
                let mut tx = app.store.begin().await?;
                let mut user = tx
                    .get(users::KIND, &flow.env_id, &user_id)
                    .await?
                    .ok_or_else(bad_credentials)?;
                let before = (user.data.clone(), user.secrets.clone());
                let result =
                    user_password::reset(app, &mut tx, &mut user, Some(current), new_password)
                        .await;
                // Failed attempts count toward the lockout, so the user is saved either way.
                if user.data != before.0 || user.secrets != before.1 {
                    tx.update_data(&mut user).await?;
                }
                tx.commit().await?;
                result?;
                Ok(Step::Next)
            }
            // The engine offers these only with `recovery.enabled`; checked again all the same.
            "password.forgot" | "password.sendRecoveryCode" | "password.recover"
                if !recovery::enabled(cfg) =>
            {
                Err(ApiError::InvalidRequest(
                    "Password recovery is not enabled for this sign-on.".into(),
                ))
            }
            "password.forgot" => recovery::forgot(ctx, flow, body).await,
            "password.sendRecoveryCode" => recovery::resend(ctx, flow).await,
            "password.recover" => recovery::recover(ctx, flow, body).await,
            _ => Err(ApiError::InvalidRequest(format!(
                "The action '{action}' is not supported here."
            ))),
        }
    }
}

/// Single sign-on: whether the browser's session already proved a password for the flow's
/// user (or for anyone, when the flow has no user yet) recently enough; if so the flow takes
/// the session's user and `pwd`.
pub async fn single_sign_on(ctx: &FlowCtx<'_>, flow: &mut Flow) -> ApiResult<bool> {
    // Single sign-on: the browser's session already proved a password for a user.
    let max_age = flow.request.as_ref().and_then(|r| r.max_age);
    // OIDC Core 3.1.2.1: max_age=0 is prompt=login (a same-second session is not fresh enough).
    let forced = flow
        .request
        .as_ref()
        .is_some_and(|r| r.prompt.iter().any(|p| p == "login"))
        || max_age == Some(0);
    if let (Some(uid), Some(pwd_at), false) = (&ctx.session.user_id, ctx.session.pwd_at, forced) {
        let fresh = max_age.is_none_or(|m| clock::unix() - pwd_at <= m);
        // The session's user must still exist and be enabled (an implicit token is issued
        // without another look at the user), and the session must still sign them on (its
        // limits, the account lock, a password reset since).
        let user = match fresh {
            true => users::enabled(ctx.app, &flow.env_id, uid).await?,
            false => None,
        };
        if let Some(user) = user.filter(|_| flow.user_id.as_ref().is_none_or(|u| u == uid))
            && crate::engine::sessions::signs_on(ctx.app, &flow.env_id, ctx.session, &user).await?
        {
            flow.set_user(&user);
            flow.auth_time = Some(ctx.session.auth_time.unwrap_or(pwd_at));
            flow.add_amr("pwd");
            return Ok(true);
        }
    }
    Ok(false)
}

/// `usernamePassword.check`: the password engine's check with failure counting and lockout.
/// An unknown user, a wrong password and a user without a password get the same answer.
pub async fn check_password(
    ctx: &FlowCtx<'_>,
    flow: &mut Flow,
    username: &str,
    password: &str,
) -> ApiResult<Step> {
    let app = ctx.app;
    let now = time::OffsetDateTime::now_utc();
    let Some(found) = app
        .store
        .read()
        .find_unique(&flow.env_id, users::KIND, "username", username)
        .await?
    else {
        return Err(unknown_account(ctx, &flow.env_id, username, password).await);
    };
    // The hash runs before the write transaction, which then records its outcome.
    let verified = user_password::verify_detached(app, &found, password).await?;
    let mut cached = password_policy::Cached(app);
    // A right password with nothing to record (no failures to clear, no lockout to lift)
    // needs no write transaction at all.
    let mut user = found.clone();
    let mut outcome =
        user_password::check_after(app, &mut cached, &mut user, &found, password, verified).await?;
    if user.data != found.data || !matches!(outcome, CheckOutcome::Ok) {
        let mut tx = app.store.begin().await?;
        // Concurrent checks of one user take turns (PostgreSQL row lock): every failure counts.
        tx.lock(&flow.env_id, &found.id).await?;
        user = tx
            .get(users::KIND, &flow.env_id, &found.id)
            .await?
            .ok_or_else(bad_credentials)?;
        let before = user.data.clone();
        outcome =
            user_password::check_after(app, &mut tx, &mut user, &found, password, verified).await?;
        if user.data != before {
            tx.update_data(&mut user).await?;
        }
        tx.commit().await?;
    }
    let policy = password_policy::policy_for(&mut cached, &user).await?;
    match outcome {
        CheckOutcome::Ok => {}
        CheckOutcome::NoPassword => {
            return Err(unknown_account(ctx, &flow.env_id, username, password).await);
        }
        CheckOutcome::Mismatch { failures_remaining } => return Err(mismatch(failures_remaining)),
        CheckOutcome::LockedOut { .. } | CheckOutcome::LockedNow { .. } => {
            return outcome.into_result("password").map(|_| Step::Next);
        }
    }
    // The right password: only now say why an account cannot sign on.
    if user.data["enabled"] != true {
        return Err(ApiError::one(Detail::new(
            "ACCOUNT_NOT_USABLE",
            Some("username".into()),
            "The account is disabled.",
        )));
    }
    if user_password::account_locked(&user, now) {
        return Err(ApiError::one(Detail::new(
            "ACCOUNT_NOT_USABLE",
            Some("username".into()),
            "The account is locked.",
        )));
    }
    flow.set_user(&user);
    flow.auth_time = Some(clock::unix());
    flow.add_amr("pwd");
    let view = user_password::view(&user, policy.as_ref().map(|p| &p.data), now);
    Ok(match view.status.as_str() {
        MUST_CHANGE_PASSWORD => Step::Wait(MUST_CHANGE_PASSWORD),
        PASSWORD_EXPIRED => Step::Wait(PASSWORD_EXPIRED),
        _ => Step::Next,
    })
}

/// The answer for a username that cannot check a password (no such user, or no password):
/// the hash work a real check does, and a real account's failure counting and lockout under
/// the environment's default policy (`engine::unknown_accounts`).
async fn unknown_account(
    ctx: &FlowCtx<'_>,
    env_id: &str,
    username: &str,
    password: &str,
) -> ApiError {
    let answer = async {
        let mut cached = password_policy::Cached(ctx.app);
        let default = password_policy::default_policy(&mut cached, env_id).await?;
        let lockout = default
            .as_ref()
            .and_then(|p| password_policy::lockout(&p.data));
        // The hash work a real check does, so timing does not tell unknown users apart.
        let hash = async {
            let _ = crate::engine::passwords::verify(password.to_string(), DUMMY_HASH.to_string())
                .await;
        };
        unknown_accounts::check(ctx.app, env_id, username, lockout, hash).await
    };
    match answer.await {
        Ok(CheckOutcome::Mismatch { failures_remaining }) => mismatch(failures_remaining),
        Ok(other) => other
            .into_result("password")
            .err()
            .unwrap_or_else(bad_credentials),
        Err(e) => e,
    }
}

fn mismatch(failures_remaining: Option<i64>) -> ApiError {
    let d = Detail::invalid("username", "Invalid username and/or password.");
    ApiError::one(match failures_remaining {
        Some(n) => d.with_inner(serde_json::json!({ "failuresRemaining": n })),
        None => d,
    })
}

/// An argon2id hash of a random value, verified against when the user does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3qk2m7p3dYwQ3Hn9d8xJ5cX1tJmQ9J0cS0yqKz3m6nE";
