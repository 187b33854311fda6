//! Password policies applied on every password write, and the password state of a user.
//! (First version: length and hashing; the full rule set is filled in with the users issue.)

use serde_json::json;

use crate::error::{ApiError, ApiResult, Detail};
use crate::resources::WriteCtx;
use crate::store::Doc;

/// Checks `password` against the user's policy, hashes it, and records it on `user`.
/// `allow_hash`: an import may carry a pre-hashed password (argon2 or bcrypt).
pub async fn set_password(
    ctx: &mut WriteCtx<'_>,
    user: &mut Doc,
    password: &str,
    force_change: bool,
    allow_hash: bool,
    target: &str,
) -> ApiResult<()> {
    let hash = if allow_hash && crate::engine::passwords::is_supported_hash(password) {
        password.to_string()
    } else {
        if password.chars().count() < 8 {
            return Err(ApiError::one(Detail::new(
                "INVALID_VALUE",
                Some(target.into()),
                "The password does not meet the password policy.",
            )));
        }
        crate::engine::passwords::hash(password.to_string(), ctx.app.settings.hash).await?
    };
    user.secrets = Some(
        ctx.app
            .master
            .encrypt_json(&json!({ "passwordHash": hash })),
    );
    user.data["_password"] = json!({
        "status": if force_change { "MUST_CHANGE_PASSWORD" } else { "OK" },
        "lastChangedAt": crate::clock::now(),
    });
    Ok(())
}
