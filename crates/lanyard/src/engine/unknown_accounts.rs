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

/// Answers a wrong-password attempt for the username as a real account would: locked out
/// (without hashing: a locked real account does not hash either), or `hash` is done (the
/// work a real check does) and the failure is counted under `lockout`.
pub async fn check(
    app: &App,
    env_id: &str,
    username: &str,
    lockout: Option<Lockout>,
    hash: impl Future<Output = ()>,
) -> ApiResult<CheckOutcome> {
    let id = key(env_id, username);
    let mut item = app.store.runtime_get(KIND, &id).await?;
    let mut state = state_of(item.as_ref());
    let now = OffsetDateTime::now_utc();
    user_password::lift_expired_lockout(&mut state, now);
    if let Some(locked) = user_password::lockout_outcome(&state, now) {
        return Ok(locked);
    }
    hash.await;
    let mut outcome = CheckOutcome::Mismatch {
        failures_remaining: lockout.map(|l| l.failure_count - 1),
    };
    for attempt in 0..ATTEMPTS {
        let now = OffsetDateTime::now_utc();
        if attempt > 0 {
            // Lost to a concurrent failure: count on top of what it stored.
            item = app.store.runtime_get(KIND, &id).await?;
            state = state_of(item.as_ref());
            user_password::lift_expired_lockout(&mut state, now);
        }
        outcome = match user_password::lockout_outcome(&state, now) {
            Some(locked) => locked,
            None => user_password::record_failure(&mut state, lockout, now),
        };
        let data = serde_json::to_value(&state).unwrap_or_default();
        let expires = crate::clock::unix() + KEEP_SECONDS;
        let stored = match &item {
            Some(i) => app.store.runtime_swap(i, &data, expires).await?,
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

fn state_of(item: Option<&crate::store::runtime::Item>) -> PasswordState {
    item.and_then(|i| serde_json::from_value::<PasswordState>(i.data.clone()).ok())
        .unwrap_or_else(fresh)
}

fn fresh() -> PasswordState {
    PasswordState {
        status: user_password::OK.into(),
        ..Default::default()
    }
}
