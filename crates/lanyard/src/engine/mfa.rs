//! Multi-factor rules shared by sign-on flows and device activation: which of a user's
//! devices a policy allows, sending a one-time passcode (rate limited per device), checking
//! one (SMS/voice/email codes against their challenge, TOTP against the device secret, each
//! accepted once), and counting failures into a device lock that every process sees (the
//! counters live on the device document).

use serde_json::{Map, Value, json};

use crate::clock;
use crate::engine::message_templates;
use crate::engine::notifications::{self, Channel, Message};
use crate::engine::otp::{self, Challenge};
use crate::error::{ApiError, ApiResult, Detail};
use crate::resources::{devices, mfa_policies, users};
use crate::state::App;
use crate::store::{Doc, Tx};

/// Sends one device may receive within `SEND_WINDOW` seconds.
pub const MAX_SENDS: usize = 5;
/// Sends all of one user's devices may receive within `SEND_WINDOW` seconds.
pub const MAX_USER_SENDS: usize = 10;
pub const SEND_WINDOW: i64 = 15 * 60;

/// The policy key of a device type (`sms`, `voice`, `email`, `totp`).
pub fn method_key(device_type: &str) -> &'static str {
    match device_type {
        "SMS" => "sms",
        "VOICE" => "voice",
        "EMAIL" => "email",
        _ => "totp",
    }
}

/// The `amr` value (RFC 8176) of a device type.
pub fn amr_of(device_type: &str) -> &'static str {
    match device_type {
        "SMS" => "sms",
        "VOICE" => "tel",
        "EMAIL" => "email",
        _ => "otp",
    }
}

/// The OTP rules of one method of a policy.
#[derive(Debug, Clone, Copy)]
pub struct OtpRules {
    pub length: usize,
    pub lifetime: i64,
    pub failure_count: i64,
    pub cool_down: i64,
}

pub fn rules(policy: Option<&Doc>, device_type: &str) -> OtpRules {
    let m = policy
        .map(|p| &p.data[method_key(device_type)])
        .unwrap_or(&Value::Null);
    OtpRules {
        length: m["otp"]["otpLength"].as_u64().unwrap_or(6).clamp(6, 10) as usize,
        lifetime: mfa_policies::seconds(&m["otp"]["lifeTime"]).unwrap_or(30 * 60),
        failure_count: m["otp"]["failure"]["count"].as_i64().unwrap_or(3).max(1),
        cool_down: mfa_policies::seconds(&m["otp"]["failure"]["coolDown"]).unwrap_or(120),
    }
}

/// Whether a device type may be used under `policy` and, when the sign-on action sets the
/// legacy per-method toggles (`sms`, `voice`, `email`, `authenticator`), under those too.
pub fn type_allowed(policy: Option<&Doc>, action: &Value, device_type: &str) -> bool {
    let key = method_key(device_type);
    let by_policy = policy.is_none_or(|p| p.data[key]["enabled"] == true);
    let toggle = if key == "totp" { "authenticator" } else { key };
    let toggles = ["sms", "voice", "email", "authenticator"];
    let by_action = if toggles.iter().any(|t| action.get(*t).is_some()) {
        action[toggle]["enabled"] == true
    } else {
        true
    };
    by_policy && by_action
}

/// The user's active devices usable here, in the user's order.
pub async fn usable_devices(
    app: &App,
    env_id: &str,
    user_id: &str,
    policy: Option<&Doc>,
    action: &Value,
) -> ApiResult<Vec<Doc>> {
    let all = app
        .store
        .read()
        .children(devices::KIND, env_id, user_id)
        .await?;
    Ok(devices::in_order(all)
        .into_iter()
        .filter(|d| d.data["status"] == devices::ACTIVE && d.data["block"]["status"] != "BLOCKED")
        .filter(|d| type_allowed(policy, action, d.data["type"].as_str().unwrap_or_default()))
        .collect())
}

/// Seconds until a locked device unlocks, if it is locked at `now`.
pub fn locked_for(device: &Doc, now: i64) -> Option<i64> {
    let until = device.data["_otp"]["lockedUntil"].as_i64()?;
    (until > now).then_some(until - now)
}

/// The device as the flows API shows it: masked, with its state.
pub fn flow_view(device: &Doc) -> Value {
    let mut v = json!({
        "id": device.id,
        "type": device.data["type"],
        "status": device.data["status"],
    });
    if let Some(p) = device.data["phone"].as_str() {
        v["phone"] = json!(devices::mask_phone(p));
    }
    if let Some(e) = device.data["email"].as_str() {
        v["email"] = json!(devices::mask_email(e));
    }
    if let Some(n) = device.data.get("nickname") {
        v["nickname"] = n.clone();
    }
    v
}

/// The lock and block state rendered on a device.
pub fn decorate(device: &Doc, out: &mut Map<String, Value>) {
    let now = clock::unix();
    let lock = match locked_for(device, now) {
        Some(s) => json!({
            "status": "LOCKED",
            "expiresAt": clock::format(time::OffsetDateTime::from_unix_timestamp(now + s).unwrap_or(time::OffsetDateTime::now_utc())),
        }),
        None => json!({ "status": "UNLOCKED" }),
    };
    out.insert("lock".into(), lock);
    if !out.contains_key("block") {
        out.insert("block".into(), json!({ "status": "UNBLOCKED" }));
    }
}

fn invalid_otp(message: &str, failures_remaining: i64) -> ApiError {
    ApiError::one(
        Detail::new("INVALID_OTP", Some("otp".into()), message)
            .with_inner(json!({ "failuresRemaining": failures_remaining })),
    )
}

fn locked_error(seconds: i64) -> ApiError {
    ApiError::one(
        Detail::new(
            "DEVICE_LOCKED",
            Some("otp".into()),
            "Too many wrong passcodes: the device is locked for now.",
        )
        .with_inner(json!({ "secondsUntilUnlock": seconds })),
    )
}

/// What a notification for an OTP says: a template, its variant and variables.
#[derive(Debug, Clone, Default)]
pub struct Notice {
    pub template: String,
    pub variant: Option<String>,
    pub variables: Map<String, Value>,
}

impl Notice {
    pub fn template(name: &str) -> Notice {
        Notice {
            template: name.into(),
            ..Default::default()
        }
    }
}

/// Sends a new passcode to an SMS, voice or email device: the send is counted against the
/// device's and the user's limits (in its own short transaction, committed before anything is delivered:
/// delivery records in the outbox and may wait on a provider). Returns the challenge to keep
/// and whether delivery worked. TOTP devices need no send: `None`.
pub async fn send_code(
    app: &App,
    user: &Doc,
    device_id: &str,
    rules: &OtpRules,
    notice: &Notice,
) -> ApiResult<Option<(Challenge, Result<(), String>)>> {
    let mut tx = app.store.begin().await?;
    let mut device = device_for_update(&mut tx, &user.env_id, &user.id, device_id).await?;
    let ty = device.data["type"].as_str().unwrap_or_default().to_string();
    let (channel, to) = match ty.as_str() {
        "SMS" => (Channel::Sms, device.data["phone"].as_str()),
        "VOICE" => (Channel::Voice, device.data["phone"].as_str()),
        "EMAIL" => (Channel::Email, device.data["email"].as_str()),
        _ => return Ok(None),
    };
    let to = to.unwrap_or_default().to_string();
    let now = clock::unix();
    let recent = |d: &Doc| -> Vec<i64> {
        d.data["_sends"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_i64)
                    .filter(|t| *t > now - SEND_WINDOW)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut sends = recent(&device);
    let mut user_sends: Vec<i64> = Vec::new();
    for d in tx.children(devices::KIND, &user.env_id, &user.id).await? {
        user_sends.extend(recent(&d));
    }
    let limited = if sends.len() >= MAX_SENDS {
        Some(&sends)
    } else if user_sends.len() >= MAX_USER_SENDS {
        Some(&user_sends)
    } else {
        None
    };
    if let Some(sends) = limited {
        let wait = sends
            .iter()
            .min()
            .map(|t| t + SEND_WINDOW - now)
            .unwrap_or(SEND_WINDOW);
        return Err(ApiError::one(
            Detail::new(
                "LIMIT_EXCEEDED",
                Some("device".into()),
                format!(
                    "Too many passcodes were sent to this device. Try again in {wait} seconds."
                ),
            )
            .with_inner(json!({ "secondsUntilRetry": wait })),
        ));
    }
    sends.push(now);
    device.data["_sends"] = json!(sends);
    // A new code lives again after wrong guesses killed the last one.
    device.data["_otp"]["dead"] = json!(false);
    tx.update_data(&mut device).await?;
    tx.commit().await?;
    let code = otp::numeric_code(rules.length);
    let mut vars = notice.variables.clone();
    vars.insert("otp".into(), json!(code));
    let msg = message_templates::render(
        app,
        &device.env_id,
        &notice.template,
        notice.variant.as_deref(),
        channel,
        Some(user),
        &vars,
    )
    .await?;
    let outbox = notifications::deliver(
        app,
        &Message {
            env_id: &device.env_id,
            channel,
            to: &to,
            subject: &msg.subject,
            body: &msg.body,
            user_id: Some(&user.id),
            from: msg.from.as_deref(),
        },
    )
    .await?;
    let delivered = match outbox.data["status"].as_str() {
        Some("FAILED") => Err(outbox.data["error"]
            .as_str()
            .unwrap_or("delivery failed")
            .to_string()),
        _ => Ok(()),
    };
    Ok(Some((
        Challenge::new(&code, now + rules.lifetime),
        delivered,
    )))
}

/// Checks a passcode for `device` (in `tx`, so failures and the lock are stored even when the
/// caller then returns the error). SMS/voice/email codes are checked against `challenge`;
/// TOTP codes against the device secret, each time step accepted once. On success the
/// failure count is cleared.
pub async fn check_code(
    app: &App,
    tx: &mut Tx,
    device: &mut Doc,
    challenge: Option<&Challenge>,
    rules: &OtpRules,
    input: &str,
) -> ApiResult<()> {
    let now = clock::unix();
    if let Some(s) = locked_for(device, now) {
        return Err(locked_error(s));
    }
    let ok = if device.data["type"] == "TOTP" {
        let secret = devices::totp_secret(app, device)
            .ok_or_else(|| ApiError::internal("TOTP device without a secret"))?;
        let last = device.data["_totp"]["lastStep"].as_i64();
        match otp::totp_verify(&secret, input, now, last) {
            Some(step) => {
                device.data["_totp"] = json!({ "lastStep": step });
                true
            }
            None => false,
        }
    } else {
        match challenge {
            Some(c) if c.expired(now) => {
                return Err(invalid_otp(
                    "The passcode has expired. Ask for a new one.",
                    0,
                ));
            }
            Some(c) => c.matches(input),
            None => false,
        }
    };
    if ok {
        device.data["_otp"] = json!({ "failures": 0 });
        tx.update_data(device).await?;
        return Ok(());
    }
    let failures = device.data["_otp"]["failures"].as_i64().unwrap_or(0) + 1;
    if failures >= rules.failure_count {
        device.data["_otp"] =
            json!({ "failures": 0, "lockedUntil": now + rules.cool_down, "dead": true });
        tx.update_data(device).await?;
        if rules.cool_down > 0 {
            return Err(locked_error(rules.cool_down));
        }
        return Err(invalid_otp(
            "Too many wrong passcodes. Ask for a new one.",
            0,
        ));
    }
    device.data["_otp"] = json!({ "failures": failures });
    tx.update_data(device).await?;
    Err(invalid_otp(
        "The passcode is not valid.",
        rules.failure_count - failures,
    ))
}

/// A TOTP device's secret (base32) and `otpauth://` key URI, named after the environment
/// and the user, for the authenticator app to scan; None for other devices.
pub fn totp_enrollment(app: &App, env: &Doc, user: &Doc, device: &Doc) -> Option<(String, String)> {
    let secret = devices::totp_secret(app, device)?;
    let account = user.data["username"].as_str().unwrap_or(&user.id);
    let issuer = env.data["name"].as_str().unwrap_or("Lanyard");
    let uri = otp::key_uri(issuer, account, &secret);
    Some((secret, uri))
}

/// The device authentication policy that governs a device: its `policy`, else the default.
pub async fn policy_of(app: &App, device: &Doc) -> ApiResult<Option<Doc>> {
    mfa_policies::resolve(app, &device.env_id, device.data["policy"]["id"].as_str()).await
}

/// A new SMS, voice or email device waiting for activation gets its pairing code
/// (`device_pairing`), kept hashed on the device; TOTP devices prove their secret instead.
/// Returns the device as stored.
pub async fn start_pairing(app: &App, user: &Doc, device: Doc) -> ApiResult<Doc> {
    if device.data["status"] != devices::ACTIVATION_REQUIRED || device.data["type"] == "TOTP" {
        return Ok(device);
    }
    let policy = policy_of(app, &device).await?;
    let rules = rules(
        policy.as_ref(),
        device.data["type"].as_str().unwrap_or_default(),
    );
    let notice = Notice::template("device_pairing");
    let Some((challenge, _)) = send_code(app, user, &device.id, &rules, &notice).await? else {
        return Ok(device);
    };
    let mut tx = app.store.begin().await?;
    let mut stored = device_for_update(&mut tx, &user.env_id, &user.id, &device.id).await?;
    stored.data["_activation"] = json!(challenge);
    tx.update_data(&mut stored).await?;
    tx.commit().await?;
    Ok(stored)
}

/// `device.activate` `{otp}`: the pairing code (or, for TOTP, a code of the secret) makes the
/// device `ACTIVE`. Wrong codes count like sign-on failures; a code they kill is dropped.
/// The device is changed in `tx` either way.
pub async fn activate(app: &App, tx: &mut Tx, device: &mut Doc, input: &str) -> ApiResult<()> {
    if device.data["status"] != devices::ACTIVATION_REQUIRED {
        return Err(ApiError::RequestFailed(
            "The device is already active.".into(),
            vec![],
        ));
    }
    let policy = policy_of(app, device).await?;
    let rules = rules(
        policy.as_ref(),
        device.data["type"].as_str().unwrap_or_default(),
    );
    let challenge: Option<Challenge> =
        serde_json::from_value(device.data["_activation"].clone()).ok();
    let result = check_code(app, tx, device, challenge.as_ref(), &rules, input).await;
    if result.is_ok() {
        device.data["status"] = json!(devices::ACTIVE);
    }
    if (result.is_ok() || code_dead(device))
        && let Some(m) = device.data.as_object_mut()
    {
        m.remove("_activation");
    }
    result
}

/// Whether the last failures killed the current code (a new one must be sent).
pub fn code_dead(device: &Doc) -> bool {
    device.data["_otp"]["dead"] == true
}

/// Loads a user's device for writing, refusing another user's.
pub async fn device_for_update(
    tx: &mut Tx,
    env_id: &str,
    user_id: &str,
    device_id: &str,
) -> ApiResult<Doc> {
    // The device row is locked until the transaction ends (PostgreSQL), so concurrent
    // checks and sends on one device all count.
    tx.lock(env_id, device_id).await?;
    tx.get(devices::KIND, env_id, device_id)
        .await?
        .filter(|d| d.parent_id == user_id)
        .ok_or_else(|| ApiError::one(Detail::invalid("device.id", "The device was not found.")))
}

/// The user a flow or activation is for.
pub async fn user(app: &App, env_id: &str, user_id: &str) -> ApiResult<Doc> {
    app.store
        .read()
        .get(users::KIND, env_id, user_id)
        .await?
        .ok_or_else(ApiError::not_found)
}
