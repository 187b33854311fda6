//! Wrong-password answers for a username that names no account able to check a password (no
//! such user, or a user without a password): the same answers a real account gives under the
//! environment's default password policy. `failuresRemaining` counts down from the first
//! attempt, the last failure answers `PASSWORD_LOCKED_OUT`, and the lockout lasts the policy's
//! `durationSeconds`, so a sign-on cannot tell which usernames exist.
//!
//! The count lives in the runtime table under a hash of the environment and the lowercased
//! username (never the username itself), changed with compare-and-swap so concurrent guesses
//! all count, on every node. A count is forgotten 30 days after its last failure.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use super::password_policy::Lockout;
use super::user_password::{self, CheckOutcome, PasswordState};
use crate::error::ApiResult;
use crate::state::App;

const KIND: &str = "unknownAccount";
const KEEP_SECONDS: i64 = 30 * 24 * 3600;
/// Compare-and-swap attempts before a concurrent writer is taken to have counted for us.
const ATTEMPTS: usize = 4;

fn key(env_id: &str, username: &str) -> String {
    let material = format!("{env_id}\u{0}{}", username.to_lowercase());
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, material.as_bytes()))
}

/// Whether the username's stand-in is locked out now (a locked real account does not hash
/// the password either, so neither does a locked stand-in).
pub async fn locked_out(
    app: &App,
    env_id: &str,
    username: &str,
) -> ApiResult<Option<CheckOutcome>> {
    let now = OffsetDateTime::now_utc();
    let item = app.store.runtime_get(KIND, &key(env_id, username)).await?;
    let mut state = item
        .and_then(|i| serde_json::from_value::<PasswordState>(i.data).ok())
        .unwrap_or_else(fresh);
    user_password::lift_expired_lockout(&mut state, now);
    Ok(user_password::lockout_outcome(&state, now))
}

/// Counts a failed attempt for the username and answers as a real account would.
pub async fn record_failure(
    app: &App,
    env_id: &str,
    username: &str,
    lockout: Option<Lockout>,
) -> ApiResult<CheckOutcome> {
    let id = key(env_id, username);
    let mut outcome = CheckOutcome::Mismatch {
        failures_remaining: lockout.map(|l| l.failure_count - 1),
    };
    for _ in 0..ATTEMPTS {
        let now = OffsetDateTime::now_utc();
        let item = app.store.runtime_get(KIND, &id).await?;
        let mut state = item
            .as_ref()
            .and_then(|i| serde_json::from_value::<PasswordState>(i.data.clone()).ok())
            .unwrap_or_else(fresh);
        user_password::lift_expired_lockout(&mut state, now);
        outcome = match user_password::lockout_outcome(&state, now) {
            Some(locked) => locked,
            None => user_password::record_failure(&mut state, lockout, now),
        };
        let data = serde_json::to_value(&state).unwrap_or_default();
        let expires = crate::clock::unix() + KEEP_SECONDS;
        let stored = match &item {
            Some(i) => app.store.runtime_swap(i, &data, expires).await?,
            // A concurrent first failure inserted it: read again and count on top.
            None => app
                .store
                .runtime_put(KIND, &id, env_id, &data, expires)
                .await
                .is_ok(),
        };
        if stored {
            break;
        }
    }
    Ok(outcome)
}

fn fresh() -> PasswordState {
    PasswordState {
        status: user_password::OK.into(),
        ..Default::default()
    }
}
