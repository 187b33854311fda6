//! Password recovery inside the LOGIN action (`recovery.enabled`): `password.forgot`
//! `{username}` emails a one-time recovery code and waits in `RECOVERY_CODE_REQUIRED`;
//! `password.recover` `{recoveryCode, newPassword}` sets a new password (with the user's
//! password policy, which also lifts a password lockout), ends the user's other sign-ons
//! (`sessions::end_sign_ons`) and signs the user on;
//! `password.sendRecoveryCode` sends a new code.
//!
//! Codes are 8 characters of an unambiguous alphabet (no `0/O`, `1/I`) from the system CSPRNG,
//! valid for 5 minutes, dead after 5 wrong guesses; only a salted SHA-256 of the code is kept,
//! in the flow's scratch, and compared in constant time. Sending is limited per flow (one code
//! every 30 seconds, 5 in all).
//!
//! No user enumeration: a username that matches no one who can recover (unknown, disabled,
//! locked account, no email, no password) takes the same path: the flow waits for a code, the
//! limits count the same, and every code is refused with the same error. Nothing is sent.
//! The email goes out after the response (the outbox entry is `PENDING` meanwhile), so
//! response times do not differ either.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Flow, FlowCtx, Step, required_str};
use crate::clock;
use crate::engine::message_templates;
use crate::engine::notifications::{self, Channel, Message};
use crate::engine::otp;
use crate::engine::secrets;
use crate::engine::sessions;
use crate::engine::user_password::{self, SetOptions};
use crate::error::{ApiError, ApiResult, Detail};
use crate::resources::users;
use crate::store::Doc;

pub const RECOVERY_CODE_REQUIRED: &str = "RECOVERY_CODE_REQUIRED";

/// The flow scratch key of the recovery state.
pub const SCRATCH_KEY: &str = "recovery";
pub const CODE_LENGTH: usize = 8;
/// How long a code is valid.
pub const CODE_SECONDS: i64 = 5 * 60;
/// Wrong guesses that kill a code.
pub const MAX_FAILURES: i64 = 5;
/// At least this long between two codes of one flow.
pub const RESEND_SECONDS: i64 = 30;
/// Codes one flow sends at most (the first included).
pub const MAX_SENDS: i64 = 5;

/// 32 characters (so a random byte maps without bias), without `0 O 1 I`.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// What the flow keeps between the recovery actions (`flow.scratch["recovery"]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryState {
    /// The user the code was sent to; `None` when the username matched no one who can recover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// base64url(SHA-256(salt ‖ code)); `None` when nothing was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_hash: Option<String>,
    #[serde(default)]
    pub salt: String,
    /// Unix seconds.
    #[serde(default)]
    pub expires_at: i64,
    #[serde(default)]
    pub failures: i64,
    #[serde(default)]
    pub sends: i64,
    /// Unix seconds of the last code.
    #[serde(default)]
    pub last_sent_at: i64,
}

/// A fresh recovery code.
pub fn new_code() -> String {
    secrets::random_bytes(CODE_LENGTH)
        .into_iter()
        .map(|b| ALPHABET[(b & 31) as usize] as char)
        .collect()
}

/// What the user typed, as the code is written: spaces and dashes dropped, upper case.
pub fn normalize(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// Why a code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong; this many guesses are left for this code.
    Wrong { failures_remaining: i64 },
    /// Expired, or killed by too many wrong guesses: a new code is needed.
    Dead,
}

impl RecoveryState {
    /// Starts a new code at `now` (the previous one stops working); returns the code, which is
    /// only sent when the state has a user.
    pub fn issue(&mut self, now: i64) -> String {
        let code = new_code();
        self.salt = URL_SAFE_NO_PAD.encode(secrets::random_bytes(16));
        self.code_hash = Some(otp::digest(&self.salt, &code));
        self.expires_at = now + CODE_SECONDS;
        self.failures = 0;
        self.sends += 1;
        self.last_sent_at = now;
        code
    }

    /// Whether another code may be sent at `now`; the error says when or why not.
    pub fn may_resend(&self, now: i64) -> Result<(), String> {
        if self.sends >= MAX_SENDS {
            return Err(
                "Too many recovery codes were sent for this sign-on. Start over to try again."
                    .into(),
            );
        }
        let wait = self.last_sent_at + RESEND_SECONDS - now;
        if wait > 0 {
            return Err(format!(
                "A new recovery code was sent recently. Wait {wait} seconds before asking for another."
            ));
        }
        Ok(())
    }

    /// Checks a typed code at `now`, counting a wrong guess. Without a user nothing was sent,
    /// and every code is wrong (counted the same way).
    pub fn verify(&mut self, input: &str, now: i64) -> Result<(), Refusal> {
        if self.failures >= MAX_FAILURES || now >= self.expires_at {
            return Err(Refusal::Dead);
        }
        let typed = otp::digest(&self.salt, &normalize(input));
        let expected = self.code_hash.clone().unwrap_or_default();
        let matched = secrets::secret_eq(&typed, &expected) && self.user_id.is_some();
        if matched {
            return Ok(());
        }
        self.failures += 1;
        Err(Refusal::Wrong {
            failures_remaining: MAX_FAILURES - self.failures,
        })
    }
}

impl Refusal {
    pub fn into_error(self) -> ApiError {
        let (message, remaining) = match self {
            Refusal::Wrong { failures_remaining } => (
                "The recovery code is not valid.".to_string(),
                failures_remaining,
            ),
            Refusal::Dead => (
                "The recovery code has expired or was entered wrong too many times. Ask for a new code."
                    .to_string(),
                0,
            ),
        };
        ApiError::one(
            Detail::invalid("recoveryCode", message)
                .with_inner(json!({ "failuresRemaining": remaining })),
        )
    }
}

fn load(flow: &Flow) -> RecoveryState {
    flow.scratch
        .get(SCRATCH_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

fn store(flow: &mut Flow, s: &RecoveryState) {
    flow.scratch.insert(
        SCRATCH_KEY.into(),
        serde_json::to_value(s).unwrap_or(Value::Null),
    );
}

/// Whether the LOGIN action's configuration enables recovery.
pub fn enabled(cfg: &Value) -> bool {
    cfg["recovery"]["enabled"] == true
}

/// The user's email if a recovery code may be sent to this user.
fn recoverable_email(user: &Doc) -> Option<String> {
    if user.data["enabled"] != true
        || user_password::account_locked(user, time::OffsetDateTime::now_utc())
        || user_password::state_of(user).status == user_password::NO_PASSWORD
    {
        return None;
    }
    user.data["email"]
        .as_str()
        .filter(|e| e.contains('@'))
        .map(str::to_string)
}

async fn user_by_id(ctx: &FlowCtx<'_>, env_id: &str, id: &str) -> ApiResult<Option<Doc>> {
    ctx.app.store.read().get(users::KIND, env_id, id).await
}

/// Sends a code to the state's user, when it has one that may still recover.
async fn send(ctx: &FlowCtx<'_>, flow: &Flow, s: &RecoveryState, code: &str) -> ApiResult<()> {
    let Some(uid) = &s.user_id else {
        return Ok(());
    };
    let Some(user) = user_by_id(ctx, &flow.env_id, uid).await? else {
        return Ok(());
    };
    let Some(email) = recoverable_email(&user) else {
        return Ok(());
    };
    let mut vars = serde_json::Map::new();
    vars.insert("code".into(), json!(code));
    vars.insert("application.name".into(), json!(flow.application.name));
    let msg = message_templates::render(
        ctx.app,
        &flow.env_id,
        "recovery_code_template",
        None,
        Channel::Email,
        Some(&user),
        &vars,
    )
    .await?;
    // Sent after the answer, so timing does not tell who has an account.
    notifications::deliver_detached(
        ctx.app,
        &Message {
            env_id: &flow.env_id,
            channel: Channel::Email,
            to: &email,
            subject: &msg.subject,
            body: &msg.body,
            user_id: Some(uid),
            from: msg.from.as_deref(),
        },
    )
    .await?;
    Ok(())
}

/// `password.forgot` `{username}`.
pub async fn forgot(ctx: &FlowCtx<'_>, flow: &mut Flow, body: &Value) -> ApiResult<Step> {
    let username = required_str(body, "username")?;
    let found = ctx
        .app
        .store
        .read()
        .find_unique(&flow.env_id, users::KIND, "username", username)
        .await?;
    let mut s = RecoveryState {
        user_id: found
            .filter(|u| recoverable_email(u).is_some())
            .map(|u| u.id),
        ..Default::default()
    };
    let code = s.issue(clock::unix());
    send(ctx, flow, &s, &code).await?;
    store(flow, &s);
    Ok(Step::Wait(RECOVERY_CODE_REQUIRED))
}

/// `password.sendRecoveryCode`: a new code, within the flow's limits.
pub async fn resend(ctx: &FlowCtx<'_>, flow: &mut Flow) -> ApiResult<Step> {
    let mut s = load(flow);
    let now = clock::unix();
    s.may_resend(now)
        .map_err(|m| ApiError::RequestFailed(m, vec![]))?;
    let code = s.issue(now);
    send(ctx, flow, &s, &code).await?;
    store(flow, &s);
    Ok(Step::Wait(RECOVERY_CODE_REQUIRED))
}

/// `password.recover` `{recoveryCode, newPassword}`: on the right code, the new password (with
/// the policy) and the user is signed on.
pub async fn recover(ctx: &FlowCtx<'_>, flow: &mut Flow, body: &Value) -> ApiResult<Step> {
    let code = required_str(body, "recoveryCode")?;
    let new_password = required_str(body, "newPassword")?;
    let mut s = load(flow);
    let checked = s.verify(code, clock::unix());
    // Wrong guesses count: the flow is saved with the error.
    store(flow, &s);
    checked.map_err(Refusal::into_error)?;
    let uid = s
        .user_id
        .clone()
        .ok_or_else(|| Refusal::Dead.into_error())?;

    let app = ctx.app;
    let mut tx = app.store.begin().await?;
    let Some(mut user) = tx.get(users::KIND, &flow.env_id, &uid).await? else {
        return Err(Refusal::Dead.into_error());
    };
    // The code proves the mailbox: now the account's state may be told.
    if user.data["enabled"] != true {
        return Err(ApiError::one(Detail::new(
            "ACCOUNT_NOT_USABLE",
            Some("username".into()),
            "The account is disabled.",
        )));
    }
    if user_password::account_locked(&user, time::OffsetDateTime::now_utc()) {
        return Err(ApiError::one(Detail::new(
            "ACCOUNT_NOT_USABLE",
            Some("username".into()),
            "The account is locked.",
        )));
    }
    // A password the policy refuses leaves the code valid for another try.
    user_password::set(
        app,
        &mut tx,
        &mut user,
        new_password,
        SetOptions {
            force_change: false,
            allow_hash: false,
            bypass_policy: false,
            target: "newPassword",
            current: None,
        },
    )
    .await?;
    // The new password ends the user's other sign-ons (sessions and refresh tokens, of
    // whoever knew the old password); this one is proved after the marker, so it counts.
    let ended = sessions::end_sign_ons(&mut user);
    tx.update_data(&mut user).await?;
    tx.commit().await?;

    // The code is used up.
    flow.scratch.remove(SCRATCH_KEY);
    flow.set_user(&user);
    flow.auth_time = Some(ended.div_euclid(1000));
    flow.add_amr("pwd");
    Ok(Step::Next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> RecoveryState {
        RecoveryState {
            user_id: Some("u".into()),
            ..Default::default()
        }
    }

    #[test]
    fn codes_use_the_alphabet_and_differ() {
        let a = new_code();
        assert_eq!(a.len(), CODE_LENGTH);
        assert!(a.bytes().all(|b| ALPHABET.contains(&b)), "{a}");
        let many: std::collections::HashSet<String> = (0..200).map(|_| new_code()).collect();
        assert_eq!(many.len(), 200);
        assert_eq!(normalize(" abcd-ef23 "), "ABCDEF23");
    }

    #[test]
    fn the_right_code_works_and_only_the_hash_is_kept() {
        let mut s = known();
        let code = s.issue(1000);
        let kept = serde_json::to_string(&s).unwrap();
        assert!(!kept.contains(&code), "{kept}");
        assert_eq!(s.verify(&code.to_lowercase(), 1001), Ok(()));
        assert_eq!(s.failures, 0);
    }

    #[test]
    fn wrong_codes_count_and_kill_the_code_after_five() {
        let mut s = known();
        let code = s.issue(1000);
        for left in (0..MAX_FAILURES).rev() {
            assert_eq!(
                s.verify("WRONG234", 1001),
                Err(Refusal::Wrong {
                    failures_remaining: left
                })
            );
        }
        assert_eq!(s.verify(&code, 1002), Err(Refusal::Dead));
        // A new code works again.
        let code = s.issue(1100);
        assert_eq!(s.verify(&code, 1101), Ok(()));
    }

    #[test]
    fn codes_expire_after_five_minutes() {
        let mut s = known();
        let code = s.issue(1000);
        assert_eq!(s.verify(&code, 1000 + CODE_SECONDS), Err(Refusal::Dead));
        assert_eq!(s.verify(&code, 1000 + CODE_SECONDS - 1), Ok(()));
    }

    #[test]
    fn without_a_user_every_code_is_wrong_the_same_way() {
        let mut s = RecoveryState::default();
        let code = s.issue(1000);
        assert_eq!(
            s.verify(&code, 1001),
            Err(Refusal::Wrong {
                failures_remaining: MAX_FAILURES - 1
            })
        );
    }

    #[test]
    fn resends_are_limited() {
        let mut s = known();
        s.issue(1000);
        assert!(s.may_resend(1000 + RESEND_SECONDS - 1).is_err());
        let mut t = 1000;
        for _ in 1..MAX_SENDS {
            t += RESEND_SECONDS;
            assert_eq!(s.may_resend(t), Ok(()));
            s.issue(t);
        }
        let e = s.may_resend(t + 3600).unwrap_err();
        assert!(e.contains("Too many"), "{e}");
    }
}
