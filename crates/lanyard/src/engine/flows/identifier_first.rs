//! The IDENTIFIER_FIRST action: the username first (`SIGN_ON_REQUIRED` → `user.lookup`), then
//! the password (`PASSWORD_REQUIRED` → `usernamePassword.check`, the username optional), with
//! LOGIN's password change and recovery. Any username moves on to the password step, so
//! the lookup does not tell whether an account exists; the password check answers unknown
//! users and wrong passwords alike. Single sign-on skips the action as it skips LOGIN.

use serde_json::{Value, json};

use super::login::{self, Login};
use super::{ActionType, Flow, FlowCtx, Step, identify, required_str};
use crate::error::{ApiError, ApiResult, Detail};
use crate::resources::users;

pub const PASSWORD_REQUIRED: &str = "PASSWORD_REQUIRED";
const SCRATCH: &str = "identifier";

pub struct IdentifierFirst;

#[async_trait::async_trait]
impl ActionType for IdentifierFirst {
    fn type_name(&self) -> &'static str {
        "IDENTIFIER_FIRST"
    }

    async fn enter(&self, ctx: &FlowCtx<'_>, flow: &mut Flow, _cfg: &Value) -> ApiResult<Step> {
        if login::single_sign_on(ctx, flow).await? {
            return Ok(Step::Next);
        }
        // A user already named (login_hint_token) only needs the password.
        if let Some(uid) = &flow.user_id
            && let Some(u) = ctx
                .app
                .store
                .read()
                .get(users::KIND, &flow.env_id, uid)
                .await?
        {
            flow.scratch
                .insert(SCRATCH.into(), u.data["username"].clone());
            return Ok(Step::Wait(PASSWORD_REQUIRED));
        }
        Ok(Step::Wait(identify::SIGN_ON_REQUIRED))
    }

    fn actions(&self, flow: &Flow, cfg: &Value) -> Vec<&'static str> {
        match flow.status.as_str() {
            identify::SIGN_ON_REQUIRED => vec!["user.lookup"],
            PASSWORD_REQUIRED => {
                Login.actions(&with_status(flow, login::USERNAME_PASSWORD_REQUIRED), cfg)
            }
            _ => Login.actions(flow, cfg),
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
            "user.lookup" => {
                let username = required_str(body, "username")?;
                flow.scratch.insert(SCRATCH.into(), json!(username));
                Ok(Step::Wait(PASSWORD_REQUIRED))
            }
            "usernamePassword.check" => {
                let identifier = flow
                    .scratch
                    .get(SCRATCH)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let Some(given) = body.get("username").and_then(Value::as_str)
                    && !given.eq_ignore_ascii_case(&identifier)
                {
                    return Err(ApiError::one(Detail::invalid(
                        "username",
                        "The username differs from the one this sign-on started with.",
                    )));
                }
                let password = required_str(body, "password")?;
                login::check_password(ctx, flow, &identifier, password).await
            }
            _ => Login.act(ctx, flow, cfg, action, body).await,
        }
    }
}

fn with_status(flow: &Flow, status: &str) -> Flow {
    let mut f = flow.clone();
    f.status = status.into();
    f
}
