//! Identifying the user before a factor: `SIGN_ON_REQUIRED` with `user.lookup` `{username}`,
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
        .filter(|u| u.data["enabled"] == true)
        .ok_or_else(|| {
            ApiError::one(Detail::invalid(
                "username",
                "The user could not be found or cannot sign on.",
            ))
        })?;
    flow.user_id = Some(user.id);
    Ok(())
}
