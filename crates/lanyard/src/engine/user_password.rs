//! A user's password and account lock, independent of HTTP: the password status state machine
//! (`NO_PASSWORD`, `OK`, `MUST_CHANGE_PASSWORD`, `PASSWORD_EXPIRED`, `PASSWORD_LOCKED_OUT`),
//! checks with failure counting and lockout, history, and the administrative account lock.
//! The management API (`http::users`) and the sign-on flows share these functions.
//!
//! Storage: the state is `user.data["_password"]` (internal, never rendered):
//! `{ status, lastChangedAt, failureCount, lockedAt, unlockAt, statusBeforeLock }`. The hash
//! and the replaced hashes live in the user's sealed secrets:
//! `{ passwordHash, passwordHistory: [ { hash, replacedAt } ] }` (newest first, at most 24).
//!
//! Functions mutate the user document only; the caller writes it in its transaction. Checks
//! that fail still change the document (failure count, lockout): callers persist the document
//! before returning the error (see `http::users`).
//!
//! Choices where PingOne's documentation is silent:
//! - `PASSWORD_EXPIRED` is derived when reading (an `OK` password older than the policy's
//!   `maxAgeDays`), never stored.
//! - A lockout records the status it interrupted and restores it when lifted (after
//!   `lockout.durationSeconds`, lazily on the next read or check; or by an unlock or a new
//!   password). Without `durationSeconds` only an administrator unlocks.
//! - `history.count` includes the current password; replaced passwords older than
//!   `history.retentionDays` (counted from their replacement) may be reused.
//! - `minAgeDays` applies to self-service changes (`currentPassword` given) of an `OK`
//!   password only; administrators and forced changes are not held back.
//! - The account lock (`account.status` `LOCKED`) is separate from the password lockout.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::password_policy::{self, Candidate, Lookup};
use super::passwords;
use crate::clock;
use crate::error::{ApiError, ApiResult, Detail};
use crate::state::App;
use crate::store::Doc;

pub const OK: &str = "OK";
pub const NO_PASSWORD: &str = "NO_PASSWORD";
pub const MUST_CHANGE_PASSWORD: &str = "MUST_CHANGE_PASSWORD";
pub const PASSWORD_EXPIRED: &str = "PASSWORD_EXPIRED";
pub const PASSWORD_LOCKED_OUT: &str = "PASSWORD_LOCKED_OUT";

const STATE_KEY: &str = "_password";
const HASH_KEY: &str = "passwordHash";
const HISTORY_KEY: &str = "passwordHistory";
/// Replaced hashes kept whatever the policy says (the largest `history.count` is 24).
const HISTORY_KEEP: usize = 24;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordState {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_changed_at: Option<String>,
    #[serde(default)]
    pub failure_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_at: Option<String>,
    /// When a lockout lifts by itself; absent while locked: an administrator must unlock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_before_lock: Option<String>,
}

impl PasswordState {
    fn no_password() -> Self {
        PasswordState {
            status: NO_PASSWORD.into(),
            ..Default::default()
        }
    }
}

pub fn state_of(user: &Doc) -> PasswordState {
    serde_json::from_value::<PasswordState>(user.data[STATE_KEY].clone())
        .ok()
        .filter(|s| !s.status.is_empty())
        .unwrap_or_else(PasswordState::no_password)
}

fn store_state(user: &mut Doc, s: &PasswordState) {
    user.data[STATE_KEY] = serde_json::to_value(s).unwrap_or(Value::Null);
}

fn unlock_state(s: &mut PasswordState) {
    s.status = s.status_before_lock.take().unwrap_or_else(|| OK.into());
    s.failure_count = 0;
    s.locked_at = None;
    s.unlock_at = None;
}

/// Lifts a lockout whose duration has passed; returns whether the state changed.
pub fn lift_expired_lockout(s: &mut PasswordState, now: OffsetDateTime) -> bool {
    if s.status != PASSWORD_LOCKED_OUT {
        return false;
    }
    match s.unlock_at.as_deref().and_then(clock::parse) {
        Some(at) if at <= now => {
            unlock_state(s);
            true
        }
        _ => false,
    }
}

fn seconds_until(at: Option<&str>, now: OffsetDateTime) -> Option<i64> {
    let at = clock::parse(at?)?;
    let secs = (at - now).as_seconds_f64().ceil() as i64;
    Some(secs.max(1))
}

/// The password state as a client sees it at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub status: String,
    pub last_changed_at: Option<String>,
    pub failures_remaining: Option<i64>,
    pub seconds_until_unlock: Option<i64>,
}

pub fn view(user: &Doc, policy: Option<&Value>, now: OffsetDateTime) -> View {
    let mut s = state_of(user);
    lift_expired_lockout(&mut s, now);
    let mut status = s.status.clone();
    if status == OK {
        let max_age = policy.and_then(password_policy::max_age_days);
        let changed = s.last_changed_at.as_deref().and_then(clock::parse);
        if let (Some(days), Some(changed)) = (max_age, changed)
            && changed + Duration::days(days) <= now
        {
            status = PASSWORD_EXPIRED.into();
        }
    }
    let locked = status == PASSWORD_LOCKED_OUT;
    let failures_remaining = match policy.and_then(password_policy::lockout) {
        Some(lo) if !locked && status != NO_PASSWORD => {
            Some((lo.failure_count - s.failure_count).max(0))
        }
        _ => None,
    };
    View {
        seconds_until_unlock: if locked {
            seconds_until(s.unlock_at.as_deref(), now)
        } else {
            None
        },
        last_changed_at: if status == NO_PASSWORD {
            None
        } else {
            s.last_changed_at
        },
        failures_remaining,
        status,
    }
}

// ---- secrets ----

fn secrets_of(app: &App, user: &Doc) -> ApiResult<Value> {
    let v = match &user.secrets {
        None => json!({}),
        Some(sealed) => app
            .master
            .decrypt_json(sealed)
            .map_err(ApiError::internal)?,
    };
    Ok(if v.is_object() { v } else { json!({}) })
}

fn seal(app: &App, user: &mut Doc, secrets: &Value) {
    user.secrets = Some(app.master.encrypt_json(secrets));
}

/// Moves the current hash (if any) to the front of the history.
fn retire_current(secrets: &mut Value, now: OffsetDateTime) {
    let Some(old) = secrets
        .get(HASH_KEY)
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return;
    };
    let mut history: Vec<Value> = secrets
        .get(HISTORY_KEY)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    history.insert(0, json!({ "hash": old, "replacedAt": clock::format(now) }));
    history.truncate(HISTORY_KEEP);
    secrets[HISTORY_KEY] = Value::Array(history);
    if let Some(m) = secrets.as_object_mut() {
        m.remove(HASH_KEY);
    }
}

/// Whether `password` is the current password or one of the policy's remembered ones.
async fn reused(
    password: &str,
    secrets: &Value,
    count: usize,
    retention_days: Option<i64>,
    now: OffsetDateTime,
) -> bool {
    let mut hashes: Vec<String> = secrets
        .get(HASH_KEY)
        .and_then(Value::as_str)
        .map(|h| vec![h.to_string()])
        .unwrap_or_default();
    let previous = secrets
        .get(HISTORY_KEY)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for e in previous {
        if hashes.len() >= count {
            break;
        }
        let replaced = e["replacedAt"].as_str().and_then(clock::parse);
        let retained = match (retention_days, replaced) {
            (Some(days), Some(at)) => at + Duration::days(days) > now,
            _ => true,
        };
        if let (true, Some(h)) = (retained, e["hash"].as_str()) {
            hashes.push(h.to_string());
        }
    }
    hashes.truncate(count);
    if hashes.is_empty() {
        return false;
    }
    let password = password.to_string();
    passwords::on_hashing_thread(move || {
        hashes.iter().any(|h| passwords::verify_sync(&password, h))
    })
    .await
    .unwrap_or(false)
}

/// A pre-encoded password given for import: `{BCRYPT}`/`{ARGON2}` prefixes (PingOne's scheme
/// notation) are accepted around a bcrypt or argon2 PHC string. `None`: clear text.
fn imported_hash(value: &str, target: &str) -> ApiResult<Option<String>> {
    let mut v = value;
    let mut scheme = None;
    if value.starts_with('{')
        && let Some(end) = value.find('}')
    {
        let name = &value[1..end];
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            scheme = Some(name.to_ascii_uppercase());
            v = &value[end + 1..];
        }
    }
    let valid_bcrypt = || v.parse::<bcrypt::HashParts>().is_ok();
    // An argon2 hash whose costs are beyond what a sign-in may spend is refused too.
    let valid_argon2 = || passwords::valid_argon2(v);
    let bad = |m: &str| Err(ApiError::one(Detail::invalid(target, m)));
    match scheme.as_deref() {
        Some("BCRYPT") if valid_bcrypt() => Ok(Some(v.to_string())),
        Some("ARGON2" | "ARGON2ID" | "ARGON2I" | "ARGON2D") if valid_argon2() => {
            Ok(Some(v.to_string()))
        }
        Some("BCRYPT" | "ARGON2" | "ARGON2ID" | "ARGON2I" | "ARGON2D") => {
            bad("The pre-encoded password is not a valid hash of its scheme.")
        }
        Some(_) => bad("The password encoding scheme is not supported; use bcrypt or argon2."),
        None if passwords::is_supported_hash(v) => {
            if valid_bcrypt() || valid_argon2() {
                Ok(Some(v.to_string()))
            } else {
                bad("The pre-encoded password is not a valid bcrypt or argon2 hash.")
            }
        }
        None => Ok(None),
    }
}

// ---- writes ----

pub struct SetOptions<'a> {
    pub force_change: bool,
    /// Accept a pre-encoded password (import, `password.set`); it skips the policy.
    pub allow_hash: bool,
    /// `bypassPolicy` of `password.set`/`password.setValue`.
    pub bypass_policy: bool,
    /// The request field reported in errors.
    pub target: &'a str,
    /// The verified current password of a self-service change.
    pub current: Option<&'a str>,
}

/// Evaluates `password` against the user's policy, hashes it (on a blocking thread) and makes
/// it the user's password: status `OK` (or `MUST_CHANGE_PASSWORD`), failures and lockout cleared.
pub async fn set<L: Lookup + ?Sized>(
    app: &App,
    db: &mut L,
    user: &mut Doc,
    password: &str,
    o: SetOptions<'_>,
) -> ApiResult<()> {
    let now = OffsetDateTime::now_utc();
    if password.is_empty() {
        return Err(ApiError::one(Detail::new(
            "EMPTY_VALUE",
            Some(o.target.to_string()),
            format!("{} must not be empty", o.target),
        )));
    }
    let mut secrets = secrets_of(app, user)?;
    let imported = if o.allow_hash {
        imported_hash(password, o.target)?
    } else {
        None
    };
    let hash = match imported {
        Some(h) => h,
        None => {
            if !o.bypass_policy
                && let Some(policy) = password_policy::policy_for(db, user).await?
            {
                let policy = &policy.data;
                let candidate = Candidate {
                    password,
                    profile: &user.data,
                    current: o.current,
                };
                let mut failed = password_policy::unsatisfied(policy, &candidate);
                if let Some((count, days)) = password_policy::history(policy)
                    && reused(password, &secrets, count, days, now).await
                {
                    failed.push("history");
                }
                if o.current.is_some() && too_young(&state_of(user), policy, now) {
                    failed.push("minAgeDays");
                }
                if !failed.is_empty() {
                    return Err(password_policy::violation(o.target, &failed));
                }
            }
            passwords::hash(password.to_string(), app.settings.hash).await?
        }
    };
    retire_current(&mut secrets, now);
    secrets[HASH_KEY] = json!(hash);
    seal(app, user, &secrets);
    store_state(
        user,
        &PasswordState {
            status: if o.force_change {
                MUST_CHANGE_PASSWORD
            } else {
                OK
            }
            .into(),
            last_changed_at: Some(clock::format(now)),
            ..Default::default()
        },
    );
    Ok(())
}

fn too_young(s: &PasswordState, policy: &Value, now: OffsetDateTime) -> bool {
    let (Some(days), Some(changed)) = (
        password_policy::min_age_days(policy),
        s.last_changed_at.as_deref().and_then(clock::parse),
    ) else {
        return false;
    };
    s.status == OK && changed + Duration::days(days) > now
}

/// Removes the password (`password.setValue` without a value): status `NO_PASSWORD`. The old
/// hash stays in the history.
pub fn unset(app: &App, user: &mut Doc) -> ApiResult<()> {
    let mut secrets = secrets_of(app, user)?;
    retire_current(&mut secrets, OffsetDateTime::now_utc());
    seal(app, user, &secrets);
    store_state(user, &PasswordState::no_password());
    Ok(())
}

/// `password.forceChange`: the password must be changed at the next sign-on.
pub fn force_change(user: &mut Doc, target: &str) -> ApiResult<()> {
    let mut s = state_of(user);
    lift_expired_lockout(&mut s, OffsetDateTime::now_utc());
    if s.status == NO_PASSWORD {
        return Err(CheckOutcome::NoPassword.into_result(target).unwrap_err());
    }
    if s.status == PASSWORD_LOCKED_OUT {
        s.status_before_lock = Some(MUST_CHANGE_PASSWORD.into());
    } else {
        s.status = MUST_CHANGE_PASSWORD.into();
    }
    store_state(user, &s);
    Ok(())
}

/// `password.unlock`: lifts a lockout and clears the failure count.
pub fn unlock(user: &mut Doc) {
    let mut s = state_of(user);
    if s.status == PASSWORD_LOCKED_OUT {
        unlock_state(&mut s);
    } else {
        s.failure_count = 0;
    }
    store_state(user, &s);
}

// ---- checks ----

/// The result of checking a password. Failures have already been counted on the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    Ok,
    NoPassword,
    /// Locked before this attempt (the password was not compared).
    LockedOut {
        seconds_until_unlock: Option<i64>,
    },
    /// Wrong password; `failures_remaining` when the policy has a lockout.
    Mismatch {
        failures_remaining: Option<i64>,
    },
    /// Wrong password, and this failure locked the password.
    LockedNow {
        seconds_until_unlock: Option<i64>,
    },
}

impl CheckOutcome {
    /// The management API's error for a failed check, naming `target` (`password`,
    /// `currentPassword`).
    pub fn into_result(self, target: &str) -> ApiResult<()> {
        let t = Some(target.to_string());
        let detail = match self {
            CheckOutcome::Ok => return Ok(()),
            CheckOutcome::NoPassword => {
                Detail::new("NO_PASSWORD", t, "The user does not have a password.")
            }
            CheckOutcome::LockedOut {
                seconds_until_unlock,
            } => {
                let d = Detail::new(
                    "PASSWORD_LOCKED_OUT",
                    t,
                    "The password is locked because of too many failed attempts.",
                );
                match seconds_until_unlock {
                    Some(s) => d.with_inner(json!({ "secondsUntilUnlock": s })),
                    None => d,
                }
            }
            CheckOutcome::Mismatch { failures_remaining } => {
                let d = Detail::new(
                    "INVALID_VALUE",
                    t,
                    "The provided password did not match provisioned password",
                );
                match failures_remaining {
                    Some(n) => d.with_inner(json!({ "failuresRemaining": n })),
                    None => d,
                }
            }
            CheckOutcome::LockedNow {
                seconds_until_unlock,
            } => {
                let mut inner = json!({ "failuresRemaining": 0 });
                if let Some(s) = seconds_until_unlock {
                    inner["secondsUntilUnlock"] = json!(s);
                }
                Detail::new(
                    "PASSWORD_LOCKED_OUT",
                    t,
                    "The provided password did not match provisioned password; the password is now locked.",
                )
                .with_inner(inner)
            }
        };
        Err(ApiError::one(detail))
    }
}

/// Compares `password` with the stored hash only (no state change).
pub async fn verify(app: &App, user: &Doc, password: &str) -> ApiResult<bool> {
    let secrets = secrets_of(app, user)?;
    match secrets.get(HASH_KEY).and_then(Value::as_str) {
        Some(h) => Ok(passwords::verify(password.to_string(), h.to_string()).await),
        None => Ok(false),
    }
}

/// Checks `password` (`password.check`, sign-on): lifts an expired lockout, counts a failure
/// and locks per the policy's `lockout`, clears the count on success. `OK`,
/// `MUST_CHANGE_PASSWORD` and `PASSWORD_EXPIRED` passwords check successfully.
pub async fn check<L: Lookup + ?Sized>(
    app: &App,
    db: &mut L,
    user: &mut Doc,
    password: &str,
) -> ApiResult<CheckOutcome> {
    check_known(app, db, user, password, None).await
}

/// The hash of a check, done on a copy of the user read outside any transaction (a hash is
/// ~15 ms of CPU: no write lock or open transaction should wait on it). None when the check
/// needs no hash (no password, locked out).
pub async fn verify_detached(app: &App, snapshot: &Doc, password: &str) -> ApiResult<Option<bool>> {
    let mut s = state_of(snapshot);
    lift_expired_lockout(&mut s, OffsetDateTime::now_utc());
    if s.status == NO_PASSWORD || s.status == PASSWORD_LOCKED_OUT {
        return Ok(None);
    }
    Ok(Some(verify(app, snapshot, password).await?))
}

/// [`check`] on the stored `user` (in the write transaction) with the result of
/// [`verify_detached`] on `snapshot`; the hash is computed again only if the stored password
/// changed in between. Failures are counted on the stored state, so concurrent checks all
/// count.
pub async fn check_after<L: Lookup + ?Sized>(
    app: &App,
    db: &mut L,
    user: &mut Doc,
    snapshot: &Doc,
    password: &str,
    verified: Option<bool>,
) -> ApiResult<CheckOutcome> {
    let same_hash = user.secrets == snapshot.secrets;
    check_known(app, db, user, password, verified.filter(|_| same_hash)).await
}

async fn check_known<L: Lookup + ?Sized>(
    app: &App,
    db: &mut L,
    user: &mut Doc,
    password: &str,
    verified: Option<bool>,
) -> ApiResult<CheckOutcome> {
    let now = OffsetDateTime::now_utc();
    let mut s = state_of(user);
    let mut changed = lift_expired_lockout(&mut s, now);
    let outcome = if s.status == NO_PASSWORD {
        CheckOutcome::NoPassword
    } else if let Some(locked) = lockout_outcome(&s, now) {
        locked
    } else if match verified {
        Some(v) => v,
        None => verify(app, user, password).await?,
    } {
        if s.failure_count != 0 {
            s.failure_count = 0;
            changed = true;
        }
        CheckOutcome::Ok
    } else {
        changed = true;
        let policy = password_policy::policy_for(db, user).await?;
        let lockout = policy
            .as_ref()
            .and_then(|p| password_policy::lockout(&p.data));
        record_failure(&mut s, lockout, now)
    };
    if changed {
        store_state(user, &s);
    }
    Ok(outcome)
}

/// The answer to a check of a locked-out password (before any comparison), if it is locked.
pub fn lockout_outcome(s: &PasswordState, now: OffsetDateTime) -> Option<CheckOutcome> {
    (s.status == PASSWORD_LOCKED_OUT).then(|| CheckOutcome::LockedOut {
        seconds_until_unlock: seconds_until(s.unlock_at.as_deref(), now),
    })
}

/// Counts a failed check on `s`, locking it when the policy's `lockout` says so.
pub fn record_failure(
    s: &mut PasswordState,
    lockout: Option<password_policy::Lockout>,
    now: OffsetDateTime,
) -> CheckOutcome {
    s.failure_count += 1;
    let Some(lo) = lockout else {
        return CheckOutcome::Mismatch {
            failures_remaining: None,
        };
    };
    if s.failure_count < lo.failure_count {
        return CheckOutcome::Mismatch {
            failures_remaining: Some(lo.failure_count - s.failure_count),
        };
    }
    s.status_before_lock = Some(std::mem::replace(&mut s.status, PASSWORD_LOCKED_OUT.into()));
    s.locked_at = Some(clock::format(now));
    s.unlock_at = lo
        .duration_seconds
        .map(|d| clock::format(now + Duration::seconds(d)));
    CheckOutcome::LockedNow {
        seconds_until_unlock: lo.duration_seconds,
    }
}

/// `password.reset`: with `current`, a self-service change (the current password is checked
/// first, with failure counting; `notSimilarToCurrent` and `minAgeDays` apply); without, an
/// administrator's reset, which also lifts a lockout.
pub async fn reset<L: Lookup + ?Sized>(
    app: &App,
    db: &mut L,
    user: &mut Doc,
    current: Option<&str>,
    new_password: &str,
) -> ApiResult<()> {
    if let Some(cur) = current {
        check(app, db, user, cur)
            .await?
            .into_result("currentPassword")?;
    }
    set(
        app,
        db,
        user,
        new_password,
        SetOptions {
            force_change: false,
            allow_hash: false,
            bypass_policy: false,
            target: "newPassword",
            current,
        },
    )
    .await
}

// ---- account lock ----

/// Locks the account (`account.lock`): `account.status` `LOCKED`, `canAuthenticate` false,
/// `lockedAt`; with `unlock_at` it lifts by itself then.
pub fn lock_account(user: &mut Doc, unlock_at: Option<OffsetDateTime>, now: OffsetDateTime) {
    let mut account = json!({
        "canAuthenticate": false,
        "status": "LOCKED",
        "lockedAt": clock::format(now),
    });
    if let Some(at) = unlock_at {
        account["unlockAt"] = json!(clock::format(at));
    }
    user.data["account"] = account;
}

pub fn unlock_account(user: &mut Doc) {
    user.data["account"] = json!({ "canAuthenticate": true, "status": "OK" });
}

/// Lifts an account lock whose `unlockAt` has passed; returns whether the user changed.
pub fn refresh_account(user: &mut Doc, now: OffsetDateTime) -> bool {
    let account = &user.data["account"];
    let expired = account["status"] == "LOCKED"
        && account["unlockAt"]
            .as_str()
            .and_then(clock::parse)
            .is_some_and(|at| at <= now);
    if expired {
        unlock_account(user);
    }
    expired
}

/// Whether the account is locked at `now` (a lapsed `unlockAt` counts as unlocked).
pub fn account_locked(user: &Doc, now: OffsetDateTime) -> bool {
    let mut copy = user.clone();
    refresh_account(&mut copy, now);
    copy.data["account"]["status"] == "LOCKED"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_with(state: Value) -> Doc {
        Doc::new("user", "u", "e", "", json!({ "_password": state }))
    }

    #[test]
    fn lockout_math_and_auto_unlock() {
        let now = OffsetDateTime::now_utc();
        let lo = Some(password_policy::Lockout {
            failure_count: 3,
            duration_seconds: Some(60),
        });
        let mut s = PasswordState {
            status: MUST_CHANGE_PASSWORD.into(),
            ..Default::default()
        };
        assert_eq!(
            record_failure(&mut s, lo, now),
            CheckOutcome::Mismatch {
                failures_remaining: Some(2)
            }
        );
        record_failure(&mut s, lo, now);
        assert_eq!(
            record_failure(&mut s, lo, now),
            CheckOutcome::LockedNow {
                seconds_until_unlock: Some(60)
            }
        );
        assert_eq!(s.status, PASSWORD_LOCKED_OUT);
        assert!(!lift_expired_lockout(
            &mut s.clone(),
            now + Duration::seconds(59)
        ));
        assert!(lift_expired_lockout(&mut s, now + Duration::seconds(60)));
        assert_eq!(
            s.status, MUST_CHANGE_PASSWORD,
            "the interrupted status returns"
        );
        assert_eq!(s.failure_count, 0);
    }

    #[test]
    fn view_derives_expiry_and_remaining_failures() {
        let now = OffsetDateTime::now_utc();
        let policy =
            json!({ "maxAgeDays": 10, "lockout": { "failureCount": 5, "durationSeconds": 900 } });
        let old = clock::format(now - Duration::days(11));
        let u = user_with(json!({ "status": "OK", "lastChangedAt": old, "failureCount": 2 }));
        let v = view(&u, Some(&policy), now);
        assert_eq!(v.status, PASSWORD_EXPIRED);
        assert_eq!(v.failures_remaining, Some(3));
        let fresh = user_with(json!({ "status": "OK", "lastChangedAt": clock::format(now) }));
        assert_eq!(view(&fresh, Some(&policy), now).status, OK);
        let locked = user_with(json!({
            "status": "PASSWORD_LOCKED_OUT", "failureCount": 5, "lastChangedAt": clock::format(now),
            "unlockAt": clock::format(now + Duration::seconds(100)), "statusBeforeLock": "OK",
        }));
        let v = view(&locked, Some(&policy), now);
        assert_eq!(v.status, PASSWORD_LOCKED_OUT);
        assert_eq!(v.failures_remaining, None);
        assert_eq!(v.seconds_until_unlock, Some(100));
        let none = Doc::new("user", "u", "e", "", json!({}));
        let v = view(&none, Some(&policy), now);
        assert_eq!(
            (v.status.as_str(), v.last_changed_at, v.failures_remaining),
            (NO_PASSWORD, None, None)
        );
    }

    #[test]
    fn imported_hash_forms() {
        let b = bcrypt::hash("pw", 4).unwrap();
        assert_eq!(imported_hash(&b, "t").unwrap(), Some(b.clone()));
        assert_eq!(
            imported_hash(&format!("{{BCRYPT}}{b}"), "t").unwrap(),
            Some(b)
        );
        assert_eq!(imported_hash("Secret123!", "t").unwrap(), None);
        assert!(imported_hash("$2b$10$tooshort", "t").is_err());
        assert!(imported_hash("{SSHA512}abcdef", "t").is_err());
    }

    #[test]
    fn account_lock_lapses() {
        let now = OffsetDateTime::now_utc();
        let mut u = Doc::new(
            "user",
            "u",
            "e",
            "",
            json!({ "account": { "status": "OK", "canAuthenticate": true } }),
        );
        lock_account(&mut u, Some(now + Duration::seconds(5)), now);
        assert!(account_locked(&u, now));
        assert!(!account_locked(&u, now + Duration::seconds(5)));
        assert!(refresh_account(&mut u, now + Duration::seconds(6)));
        assert_eq!(u.data["account"]["status"], "OK");
    }
}
