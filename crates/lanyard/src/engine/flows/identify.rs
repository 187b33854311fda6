//! Identifying the user before a factor: `SIGN_ON_REQUIRED` with `user.lookup` `{username}`
//! (or the browser session's user),
//! used by IDENTIFIER_FIRST and by policies whose first action needs a user but asks no
//! password (an MFA action first: passwordless). A username that names no enabled user is
//! refused (a passwordless sign-on cannot hide whether an account exists: it either sends a
//! code or it does not).

use serde_json::Value;

use super::{Flow, FlowCtx, required_str};
use crate::error::{ApiError, ApiResult, Detail};
use crate::resources::users;

pub const SIGN_ON_REQUIRED: &str = "SIGN_ON_REQUIRED";

/// `user.lookup`: sets the flow's user.
pub async fn lookup(ctx: &FlowCtx<'_>, flow: &mut Flow, body: &Value) -> ApiResult<()> {
    let username = required_str(body, "username")?;
    let user = ctx
        .app
        .store
        .read()
        .find_unique(&flow.env_id, users::KIND, "username", username)
        .await?
        .filter(users::is_enabled)
        .ok_or_else(|| {
            ApiError::one(Detail::invalid(
                "username",
                "The user could not be found or cannot sign on.",
            ))
        })?;
    flow.set_user(&user);
    Ok(())
}

/// The browser session's signed-on user becomes the flow's user (an MFA-first policy then
/// needs no `user.lookup`), unless the client asks for a fresh sign-on (`prompt=login`,
/// `max_age=0`) or the user can no longer sign on.
pub async fn from_session(ctx: &FlowCtx<'_>, flow: &mut Flow) -> ApiResult<bool> {
    let fresh_wanted = flow
        .request
        .as_ref()
        .is_some_and(|r| r.prompt.iter().any(|p| p == "login") || r.max_age == Some(0));
    let Some(uid) = ctx.session.user_id.as_ref().filter(|_| !fresh_wanted) else {
        return Ok(false);
    };
    // The session must still sign its user on (its limits, the account lock, a password
    // reset since): an ended session identifies no one.
    let Some(user) = users::enabled(ctx.app, &flow.env_id, uid).await? else {
        return Ok(false);
    };
    if !crate::engine::sessions::signs_on(ctx.app, &flow.env_id, ctx.session, &user).await? {
        return Ok(false);
    }
    flow.set_user(&user);
    Ok(true)
}
