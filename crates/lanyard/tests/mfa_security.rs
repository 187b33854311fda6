//! Multi-factor sign-on under attack and bad input: wrong, expired and replayed passcodes and
//! the device lock they lead to; device selection and the send rate limit; `noDevicesMode`;
//! bad flow actions; device management with bad input and across environments; a custom SMS
//! provider (a local HTTP server in the test) that works and one that fails; identifier-first
//! sign-on that does not tell known usernames from unknown ones. Every assertion is on status
//! codes and PingOne error bodies (`code`, `details[0].code`, `details[0].target`, `innerError`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode};
use common::mfa::{self, path};
use common::signon::{self, Jar, PASSWORD};
use common::{Resp, TestApp, assert_error, backends};
use serde_json::{Value, json};

const CB: &str = "https://example.com";
const PHONE: &str = "+15125550100";
const PHONE_B: &str = "+15125550177";

// ---- setup (as in uc_mfa.rs) ----

/// A web app with openid/profile/email granted; returns (app, secret).
async fn web_app(t: &TestApp, env: &str, name: &str) -> (String, String) {
    let app = signon::create_app(
        t,
        env,
        json!({ "name": name, "enabled": true, "type": "WEB_APP", "protocol": "OPENID_CONNECT",
                "responseTypes": ["CODE"], "grantTypes": ["AUTHORIZATION_CODE"],
                "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC", "redirectUris": [CB] }),
    )
    .await;
    signon::grant(t, env, &app, "openid", &["openid", "profile", "email"]).await;
    let secret = signon::app_secret(t, env, &app).await;
    (app, secret)
}

/// A user with a password and MFA enabled; returns the user id.
async fn mfa_user(t: &TestApp, env: &str, username: &str) -> String {
    let user = signon::create_user(t, env, username).await;
    mfa::enable_mfa(t, env, &user).await;
    user
}

/// The LOGIN-then-MFA policy most tests use (SMS and email allowed).
fn login_then_mfa(mfa_extra: Value) -> Vec<Value> {
    let mut m = json!({ "priority": 2, "type": "MULTI_FACTOR_AUTHENTICATION", "sms": { "enabled": true }, "email": { "enabled": true } });
    for (k, v) in mfa_extra.as_object().cloned().unwrap_or_default() {
        m[k] = v;
    }
    vec![json!({ "priority": 1, "type": "LOGIN" }), m]
}

/// A device authentication policy (all fields `mfa_policies.rs` requires); `sms_life` is the
/// SMS passcode lifetime. Returns its id.
async fn device_policy(
    t: &TestApp,
    env: &str,
    name: &str,
    selection: &str,
    sms_life: Value,
) -> String {
    let failure = json!({ "count": 3, "coolDown": { "duration": 2, "timeUnit": "MINUTES" } });
    let offline = |life: Value| json!({ "enabled": true, "otp": { "lifeTime": life, "failure": failure.clone() } });
    let r = t
        .post(
            &path(env, "/deviceAuthenticationPolicies"),
            json!({
                "name": name,
                "authentication": { "deviceSelection": selection },
                "sms": offline(sms_life),
                "voice": offline(json!({ "duration": 30, "timeUnit": "MINUTES" })),
                "email": offline(json!({ "duration": 30, "timeUnit": "MINUTES" })),
                "totp": { "enabled": true, "otp": { "failure": failure.clone() } },
            }),
        )
        .await;
    assert_eq!(r.status, 201, "device authentication policy: {}", r.text);
    assert_eq!(r.body["authentication"]["deviceSelection"], selection);
    r.id()
}

/// A redirect-mode authorize in a new browser; returns the flow URL.
async fn start(t: &TestApp, jar: &mut Jar, env: &str, app: &str, state: &str) -> String {
    let a = signon::browser_get(
        t,
        jar,
        &format!("/{env}/as/authorize?client_id={app}&response_type=code&scope=openid&redirect_uri={CB}&state={state}"),
    )
    .await;
    assert_eq!(a.status, 302, "authorize: {}", a.text);
    mfa::flow_url(env, &signon::flow_id_of(&signon::location(&a)))
}

/// A new browser through authorize and the password; returns (jar, flow URL, flow response).
async fn password_step(t: &TestApp, env: &str, app: &str, username: &str) -> (Jar, String, Resp) {
    let mut jar = Jar::new();
    let flow = start(t, &mut jar, env, app, "s").await;
    let f = signon::flow_action(
        t,
        &mut jar,
        &flow,
        "usernamePassword.check",
        json!({ "username": username, "password": PASSWORD }),
    )
    .await;
    assert_eq!(f.status, 200, "usernamePassword.check: {}", f.text);
    (jar, flow, f)
}

/// Resumes a completed flow and exchanges the code; returns the ID token's claims.
async fn finish(t: &TestApp, jar: &mut Jar, env: &str, app: &str, secret: &str, f: &Resp) -> Value {
    assert_eq!(f.body["status"], "COMPLETED", "{}", f.text);
    let r = signon::browser_get(t, jar, f.body["resumeUrl"].as_str().unwrap()).await;
    assert_eq!(r.status, 302, "resume: {}", r.text);
    let q = signon::query_of(&signon::location(&r));
    let code = q.get("code").unwrap_or_else(|| panic!("no code: {q:?}"));
    let tok = signon::token_form(
        t,
        &format!("/{env}/as/token"),
        Some((app, secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_eq!(tok.status, 200, "token: {}", tok.text);
    signon::verify_jwt(t, env, tok.body["id_token"].as_str().unwrap(), app).await
}

/// A six-digit code that is not `code`.
fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

fn ids(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// The passcode of the one message to `to` that is not in `before` (ids).
async fn new_otp(t: &TestApp, env: &str, to: &str, before: &[String]) -> String {
    let all = mfa::messages_to(t, env, to).await;
    let fresh: Vec<&Value> = all
        .iter()
        .filter(|m| !before.contains(&m["id"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(fresh.len(), 1, "exactly one new message to {to}: {all:?}");
    mfa::digits_in(fresh[0]["body"].as_str().unwrap(), 6).expect("a passcode")
}

/// Asserts a PingOne error with its first detail's code and target.
fn expect_detail(r: &Resp, status: u16, code: &str, detail: &str, target: &str) {
    assert_error(r, StatusCode::from_u16(status).unwrap(), code, Some(detail));
    assert_eq!(r.body["details"][0]["code"], detail, "{}", r.text);
    assert_eq!(r.body["details"][0]["target"], target, "{}", r.text);
}

/// A flow POST with any Content-Type and raw body (the browser's cookies included).
async fn raw_flow_post(t: &TestApp, jar: &Jar, flow: &str, content_type: &str, body: &str) -> Resp {
    let mut h = vec![("content-type", content_type.to_string())];
    if let Some(c) = jar.header() {
        h.push(("cookie", c));
    }
    signon::call(t, Method::POST, flow, &h, Some(body.as_bytes().to_vec())).await
}

async fn get_device(t: &TestApp, env: &str, user: &str, device: &str) -> Resp {
    t.get(&path(env, &format!("/users/{user}/devices/{device}")))
        .await
}

// ---- 1. wrong passcodes and the device lock ----

#[tokio::test]
async fn wrong_otps_count_down_then_lock_the_device_until_unlocked() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        // The environment's default device authentication policy: 3 failures, 2 minutes.
        let pols = t.get(&path(&env, "/deviceAuthenticationPolicies")).await;
        assert_eq!(pols.status, 200, "{}", pols.text);
        let all = pols.body["_embedded"]
            .as_object()
            .and_then(|e| e.values().next())
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let def = all
            .iter()
            .find(|p| p["default"] == true)
            .unwrap_or_else(|| panic!("no default policy: {}", pols.text));
        assert_eq!(def["sms"]["otp"]["failure"]["count"], 3, "{def}");
        assert_eq!(
            def["sms"]["otp"]["failure"]["coolDown"],
            json!({ "duration": 2, "timeUnit": "MINUTES" }),
            "{def}"
        );

        let (app, secret) = web_app(&t, &env, "Lock").await;
        mfa::policy(&t, &env, &app, "LoginMfa", &login_then_mfa(json!({}))).await;
        let user = mfa_user(&t, &env, "lock.user").await;
        let dev = mfa::device(&t, &env, &user, json!({ "type": "SMS", "phone": PHONE })).await;

        let (mut jar, flow, f) = password_step(&t, &env, &app, "lock.user").await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        let right = mfa::latest_otp(&t, &env, PHONE).await;
        let bad = wrong(&right);
        for remaining in [2, 1] {
            let w =
                signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": bad })).await;
            expect_detail(&w, 400, "INVALID_DATA", "INVALID_OTP", "otp");
            assert_eq!(
                w.body["details"][0]["innerError"]["failuresRemaining"], remaining,
                "{}",
                w.text
            );
        }
        // The third wrong code locks the device.
        let w = signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": bad })).await;
        expect_detail(&w, 400, "INVALID_DATA", "DEVICE_LOCKED", "otp");
        let secs = w.body["details"][0]["innerError"]["secondsUntilUnlock"]
            .as_i64()
            .unwrap_or_else(|| panic!("secondsUntilUnlock: {}", w.text));
        assert!(secs > 0 && secs <= 120, "{secs}");
        // While locked the right code is refused too.
        let w =
            signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": right })).await;
        expect_detail(&w, 400, "INVALID_DATA", "DEVICE_LOCKED", "otp");
        assert!(
            w.body["details"][0]["innerError"]["secondsUntilUnlock"]
                .as_i64()
                .unwrap_or(0)
                > 0,
            "{}",
            w.text
        );
        let g = get_device(&t, &env, &user, &dev).await;
        assert_eq!(g.status, 200, "{}", g.text);
        assert_eq!(g.body["lock"]["status"], "LOCKED", "{}", g.text);

        // The lock is on the device, not the flow: another browser's sign-on is refused as well,
        // and no passcode is sent to a locked device.
        let before = mfa::messages_to(&t, &env, PHONE).await.len();
        let (mut jar2, flow2, f2) = password_step(&t, &env, &app, "lock.user").await;
        assert_eq!(f2.body["status"], "OTP_REQUIRED", "{}", f2.text);
        assert_eq!(
            mfa::messages_to(&t, &env, PHONE).await.len(),
            before,
            "nothing is sent to a locked device"
        );
        let w =
            signon::flow_action(&t, &mut jar2, &flow2, "otp.check", json!({ "otp": right })).await;
        expect_detail(&w, 400, "INVALID_DATA", "DEVICE_LOCKED", "otp");

        // An admin unlocks the device.
        let u = mfa::device_action(&t, &env, &user, &dev, "device.unlock", json!({})).await;
        assert_eq!(u.status, 200, "{}", u.text);
        assert_eq!(u.body["lock"]["status"], "UNLOCKED", "{}", u.text);
        let g = get_device(&t, &env, &user, &dev).await;
        assert_eq!(g.body["lock"]["status"], "UNLOCKED", "{}", g.text);

        // The code the wrong guesses killed stays dead; a new one signs on.
        let w =
            signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": right })).await;
        expect_detail(&w, 400, "INVALID_DATA", "INVALID_OTP", "otp");
        let seen = ids(&mfa::messages_to(&t, &env, PHONE).await);
        let s = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "device.select",
            json!({ "device": { "id": dev } }),
        )
        .await;
        assert_eq!(s.status, 200, "{}", s.text);
        assert_eq!(s.body["status"], "OTP_REQUIRED", "{}", s.text);
        let fresh = new_otp(&t, &env, PHONE, &seen).await;
        let f =
            signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": fresh })).await;
        let claims = finish(&t, &mut jar, &env, &app, &secret, &f).await;
        assert_eq!(claims["amr"], json!(["pwd", "sms"]));
    }
}

// ---- 2. an expired passcode ----

#[tokio::test]
async fn an_expired_otp_is_refused() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        // A lifetime out of range is refused.
        let bad = t
            .post(
                &path(&env, "/deviceAuthenticationPolicies"),
                json!({ "name": "Bad", "sms": { "enabled": true, "otp": { "lifeTime": { "duration": 0, "timeUnit": "SECONDS" },
                        "failure": { "count": 3, "coolDown": { "duration": 2, "timeUnit": "MINUTES" } } } } }),
            )
            .await;
        assert_eq!(bad.status, 400, "{}", bad.text);
        assert!(
            bad.body["details"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["code"] == "OUT_OF_RANGE" && d["target"] == "sms.otp.lifeTime.duration"),
            "{}",
            bad.text
        );

        let pol = device_policy(
            &t,
            &env,
            "Short SMS codes",
            "DEFAULT_TO_FIRST",
            json!({ "duration": 1, "timeUnit": "SECONDS" }),
        )
        .await;
        let (app, _) = web_app(&t, &env, "Expiry").await;
        mfa::policy(
            &t,
            &env,
            &app,
            "ShortCodes",
            &login_then_mfa(json!({ "deviceAuthenticationPolicy": { "id": pol } })),
        )
        .await;
        let user = mfa_user(&t, &env, "slow.user").await;
        mfa::device(&t, &env, &user, json!({ "type": "SMS", "phone": PHONE })).await;
        let (mut jar, flow, f) = password_step(&t, &env, &app, "slow.user").await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        let otp = mfa::latest_otp(&t, &env, PHONE).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let w = signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": otp })).await;
        expect_detail(&w, 400, "INVALID_DATA", "INVALID_OTP", "otp");
        let again = signon::browser_get(&t, &mut jar, &flow).await;
        assert_eq!(
            again.body["status"], "OTP_REQUIRED",
            "the flow waits for a new code: {}",
            again.text
        );
    }
}

// ---- 3. a passcode is single use ----

#[tokio::test]
async fn a_code_is_single_use_across_sign_ons() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let (app, secret) = web_app(&t, &env, "Once").await;
        mfa::policy(&t, &env, &app, "LoginMfa", &login_then_mfa(json!({}))).await;
        let user = mfa_user(&t, &env, "once.user").await;
        let dev = mfa::device(&t, &env, &user, json!({ "type": "SMS", "phone": PHONE })).await;

        let (mut jar, flow, f) = password_step(&t, &env, &app, "once.user").await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        let old = mfa::latest_otp(&t, &env, PHONE).await;
        let f = signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": old })).await;
        finish(&t, &mut jar, &env, &app, &secret, &f).await;

        // A second sign-on (another browser) gets a new code; the old one is refused.
        let seen = ids(&mfa::messages_to(&t, &env, PHONE).await);
        let (mut jar, flow, f) = password_step(&t, &env, &app, "once.user").await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        let mut new = new_otp(&t, &env, PHONE, &seen).await;
        while new == old {
            // One in a million: ask for another so the old code is really a different one.
            let seen = ids(&mfa::messages_to(&t, &env, PHONE).await);
            signon::flow_action(
                &t,
                &mut jar,
                &flow,
                "device.select",
                json!({ "device": { "id": dev } }),
            )
            .await;
            new = new_otp(&t, &env, PHONE, &seen).await;
        }
        let w = signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": old })).await;
        expect_detail(&w, 400, "INVALID_DATA", "INVALID_OTP", "otp");
        assert_eq!(
            w.body["details"][0]["innerError"]["failuresRemaining"], 2,
            "{}",
            w.text
        );
        // Asking for a new code does not reset the failure count, and voids the previous code.
        let seen = ids(&mfa::messages_to(&t, &env, PHONE).await);
        let s = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "device.select",
            json!({ "device": { "id": dev } }),
        )
        .await;
        assert_eq!(s.status, 200, "{}", s.text);
        let newest = new_otp(&t, &env, PHONE, &seen).await;
        if newest != new {
            let w =
                signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": new })).await;
            expect_detail(&w, 400, "INVALID_DATA", "INVALID_OTP", "otp");
            assert_eq!(
                w.body["details"][0]["innerError"]["failuresRemaining"], 1,
                "{}",
                w.text
            );
        }
        let f =
            signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": newest })).await;
        finish(&t, &mut jar, &env, &app, &secret, &f).await;
        // A completed sign-on's flow is gone: its code cannot be checked again.
        let again =
            signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": newest })).await;
        assert_eq!(again.status, 404, "{}", again.text);
    }
}

// ---- 4. bad flow actions ----

#[tokio::test]
async fn bad_flow_actions_are_refused() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let (app, secret) = web_app(&t, &env, "BadInput").await;
        mfa::policy(&t, &env, &app, "LoginMfa", &login_then_mfa(json!({}))).await;
        let user = mfa_user(&t, &env, "alice").await;
        mfa::device(&t, &env, &user, json!({ "type": "SMS", "phone": PHONE })).await;
        let bob = mfa_user(&t, &env, "bob").await;
        let bobs = mfa::device(&t, &env, &bob, json!({ "type": "SMS", "phone": PHONE_B })).await;

        let mut jar = Jar::new();
        let flow = start(&t, &mut jar, &env, &app, "s").await;
        // A passcode before the password: not an action of USERNAME_PASSWORD_REQUIRED.
        let w =
            signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": "123456" })).await;
        assert_error(&w, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None);
        let w = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "device.select",
            json!({ "device": { "id": bobs } }),
        )
        .await;
        assert_error(&w, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None);
        // A flow action needs its vendor media type.
        let w = raw_flow_post(
            &t,
            &jar,
            &flow,
            "application/json",
            &json!({ "username": "alice", "password": PASSWORD }).to_string(),
        )
        .await;
        assert_eq!(w.status, 415, "{}", w.text);
        assert_eq!(w.body["code"], "INVALID_REQUEST", "{}", w.text);
        let w = raw_flow_post(&t, &jar, &flow, "text/plain", "username=alice").await;
        assert_eq!(w.status, 415, "{}", w.text);
        // Malformed JSON and a non-object body.
        let w = raw_flow_post(
            &t,
            &jar,
            &flow,
            "application/vnd.pingidentity.usernamePassword.check+json",
            "{\"username\":",
        )
        .await;
        assert_error(&w, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None);
        let w = raw_flow_post(
            &t,
            &jar,
            &flow,
            "application/vnd.pingidentity.usernamePassword.check+json",
            "[]",
        )
        .await;
        assert_eq!(w.status, 400, "{}", w.text);

        let f = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            json!({ "username": "alice", "password": PASSWORD }),
        )
        .await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        // Another user's device, an unknown device, a missing id: refused; nothing is sent to Bob.
        let w = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "device.select",
            json!({ "device": { "id": bobs } }),
        )
        .await;
        expect_detail(&w, 400, "INVALID_DATA", "INVALID_VALUE", "device.id");
        let unknown = uuid::Uuid::new_v4().to_string();
        let w = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "device.select",
            json!({ "device": { "id": unknown } }),
        )
        .await;
        expect_detail(&w, 400, "INVALID_DATA", "INVALID_VALUE", "device.id");
        let w = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "device.select",
            json!({ "device": {} }),
        )
        .await;
        expect_detail(&w, 400, "INVALID_DATA", "REQUIRED_VALUE", "device.id");
        assert!(
            mfa::messages_to(&t, &env, PHONE_B).await.is_empty(),
            "nothing reaches another user's device"
        );
        // A missing or non-string passcode.
        let w = signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({})).await;
        expect_detail(&w, 400, "INVALID_DATA", "REQUIRED_VALUE", "otp");
        let w =
            signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": 123456 })).await;
        expect_detail(&w, 400, "INVALID_DATA", "INVALID_VALUE", "otp");
        let w = signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": "" })).await;
        assert_eq!(w.status, 400, "{}", w.text);
        assert_eq!(w.body["details"][0]["target"], "otp", "{}", w.text);
        let w = raw_flow_post(&t, &jar, &flow, "application/json", "{\"otp\":\"123456\"}").await;
        assert_eq!(w.status, 415, "{}", w.text);
        // The flow is not reachable through another environment's path.
        let other_env = t.new_env().await;
        let foreign = flow.replacen(&env, &other_env, 1);
        let w = signon::flow_action(
            &t,
            &mut jar,
            &foreign,
            "otp.check",
            json!({ "otp": "123456" }),
        )
        .await;
        assert_eq!(w.status, 404, "{}", w.text);
        // Another browser cannot act on this flow.
        let mut other = Jar::new();
        let right = mfa::latest_otp(&t, &env, PHONE).await;
        let w =
            signon::flow_action(&t, &mut other, &flow, "otp.check", json!({ "otp": right })).await;
        assert_eq!(w.status, 403, "{}", w.text);
        // None of that counted as a wrong passcode: the first wrong one leaves 2.
        let w = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "otp.check",
            json!({ "otp": wrong(&right) }),
        )
        .await;
        expect_detail(&w, 400, "INVALID_DATA", "INVALID_OTP", "otp");
        assert_eq!(
            w.body["details"][0]["innerError"]["failuresRemaining"], 2,
            "{}",
            w.text
        );
        let f =
            signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": right })).await;
        let claims = finish(&t, &mut jar, &env, &app, &secret, &f).await;
        assert_eq!(claims["sub"], user.as_str());
    }
}

// ---- 5. device selection ----

#[tokio::test]
async fn prompt_to_select_lists_masked_devices_and_sends_only_to_the_chosen_one() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let pol = device_policy(
            &t,
            &env,
            "Prompt",
            "PROMPT_TO_SELECT",
            json!({ "duration": 30, "timeUnit": "MINUTES" }),
        )
        .await;
        let (app, secret) = web_app(&t, &env, "Select").await;
        mfa::policy(
            &t,
            &env,
            &app,
            "Select",
            &login_then_mfa(json!({ "deviceAuthenticationPolicy": { "id": pol } })),
        )
        .await;
        let user = mfa_user(&t, &env, "picker").await;
        const MAIL: &str = "abigail@ping.example";
        let sms = mfa::device(&t, &env, &user, json!({ "type": "SMS", "phone": PHONE })).await;
        let email = mfa::device(&t, &env, &user, json!({ "type": "EMAIL", "email": MAIL })).await;

        let (mut jar, flow, f) = password_step(&t, &env, &app, "picker").await;
        assert_eq!(f.body["status"], "DEVICE_SELECTION_REQUIRED", "{}", f.text);
        assert!(
            f.body["_links"]["device.select"]["href"].is_string(),
            "{}",
            f.text
        );
        assert!(
            f.body["_links"].get("otp.check").is_none(),
            "no passcode to check yet: {}",
            f.text
        );
        assert!(f.body.get("selectedDevice").is_none(), "{}", f.text);
        let devs = f.body["_embedded"]["devices"]
            .as_array()
            .unwrap_or_else(|| panic!("devices: {}", f.text));
        assert_eq!(devs.len(), 2, "{}", f.text);
        let by_id = |id: &str| {
            devs.iter()
                .find(|d| d["id"] == id)
                .unwrap_or_else(|| panic!("{id} not offered: {}", f.text))
                .clone()
        };
        assert_eq!(by_id(&sms)["type"], "SMS");
        assert_eq!(by_id(&sms)["phone"], "*******00");
        assert_eq!(by_id(&email)["type"], "EMAIL");
        assert_eq!(by_id(&email)["email"], "ab****@ping.example");
        assert!(
            !f.text.contains(PHONE) && !f.text.contains("5125550100") && !f.text.contains(MAIL),
            "masked: {}",
            f.text
        );
        assert!(
            mfa::messages_to(&t, &env, PHONE).await.is_empty(),
            "nothing is sent before a device is chosen"
        );
        assert!(
            mfa::messages_to(&t, &env, MAIL).await.is_empty(),
            "nothing is sent before a device is chosen"
        );
        // otp.check is not an action of DEVICE_SELECTION_REQUIRED.
        let w =
            signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": "123456" })).await;
        assert_error(&w, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None);

        // Choose the email device: one message to it, none to the phone.
        let s = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "device.select",
            json!({ "device": { "id": email } }),
        )
        .await;
        assert_eq!(s.status, 200, "{}", s.text);
        assert_eq!(s.body["status"], "OTP_REQUIRED", "{}", s.text);
        assert_eq!(s.body["selectedDevice"]["id"], email.as_str(), "{}", s.text);
        assert_eq!(mfa::messages_to(&t, &env, MAIL).await.len(), 1);
        assert!(mfa::messages_to(&t, &env, PHONE).await.is_empty());
        let email_code = mfa::latest_otp(&t, &env, MAIL).await;

        // Switch to the phone in OTP_REQUIRED: the code goes there; the email code is void.
        let s = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "device.select",
            json!({ "device": { "id": sms } }),
        )
        .await;
        assert_eq!(s.status, 200, "{}", s.text);
        assert_eq!(s.body["status"], "OTP_REQUIRED", "{}", s.text);
        assert_eq!(s.body["selectedDevice"]["id"], sms.as_str(), "{}", s.text);
        assert_eq!(mfa::messages_to(&t, &env, PHONE).await.len(), 1);
        assert_eq!(
            mfa::messages_to(&t, &env, MAIL).await.len(),
            1,
            "no second email"
        );
        let sms_code = mfa::latest_otp(&t, &env, PHONE).await;
        if email_code != sms_code {
            let w = signon::flow_action(
                &t,
                &mut jar,
                &flow,
                "otp.check",
                json!({ "otp": email_code }),
            )
            .await;
            expect_detail(&w, 400, "INVALID_DATA", "INVALID_OTP", "otp");
        }
        let f =
            signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": sms_code })).await;
        let claims = finish(&t, &mut jar, &env, &app, &secret, &f).await;
        assert_eq!(claims["amr"], json!(["pwd", "sms"]));

        // With one usable device PROMPT_TO_SELECT goes straight to the passcode.
        let solo = mfa_user(&t, &env, "solo").await;
        mfa::device(&t, &env, &solo, json!({ "type": "SMS", "phone": PHONE_B })).await;
        let (_, _, f) = password_step(&t, &env, &app, "solo").await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        assert_eq!(mfa::messages_to(&t, &env, PHONE_B).await.len(), 1);
    }
}

// ---- 6. the send rate limit ----

#[tokio::test]
async fn the_sixth_send_within_15_minutes_is_refused() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let (app, _) = web_app(&t, &env, "Limit").await;
        mfa::policy(&t, &env, &app, "LoginMfa", &login_then_mfa(json!({}))).await;
        let user = mfa_user(&t, &env, "spammed").await;
        let sms = mfa::device(&t, &env, &user, json!({ "type": "SMS", "phone": PHONE })).await;
        let email = mfa::device(
            &t,
            &env,
            &user,
            json!({ "type": "EMAIL", "email": "spammed@example.com" }),
        )
        .await;

        // The password step sends the first code (to the first device); four re-sends follow.
        let (mut jar, flow, f) = password_step(&t, &env, &app, "spammed").await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        assert_eq!(f.body["selectedDevice"]["id"], sms.as_str());
        for n in 2..=5 {
            let s = signon::flow_action(
                &t,
                &mut jar,
                &flow,
                "device.select",
                json!({ "device": { "id": sms } }),
            )
            .await;
            assert_eq!(s.status, 200, "send {n}: {}", s.text);
            assert_eq!(s.body["status"], "OTP_REQUIRED", "{}", s.text);
        }
        assert_eq!(mfa::messages_to(&t, &env, PHONE).await.len(), 5);
        let w = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "device.select",
            json!({ "device": { "id": sms } }),
        )
        .await;
        assert_error(
            &w,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("LIMIT_EXCEEDED"),
        );
        assert_eq!(w.body["details"][0]["code"], "LIMIT_EXCEEDED", "{}", w.text);
        let retry = w.body["details"][0]["innerError"]["secondsUntilRetry"]
            .as_i64()
            .unwrap_or_else(|| panic!("secondsUntilRetry: {}", w.text));
        assert!(retry > 0 && retry <= 15 * 60, "{retry}");
        assert_eq!(
            mfa::messages_to(&t, &env, PHONE).await.len(),
            5,
            "no sixth message"
        );

        // The refused send changed nothing: the fifth code still completes this sign-on.
        let fifth = mfa::latest_otp(&t, &env, PHONE).await;
        let c =
            signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": fifth })).await;
        assert_eq!(c.body["status"], "COMPLETED", "{}", c.text);

        // It holds across flows: a new browser's sign-on sends no sixth SMS either, and
        // offers the devices instead; the limit is per device, so the email device works.
        let mut jar2 = Jar::new();
        let flow2 = start(&t, &mut jar2, &env, &app, "s2").await;
        let f2 = signon::flow_action(
            &t,
            &mut jar2,
            &flow2,
            "usernamePassword.check",
            json!({ "username": "spammed", "password": PASSWORD }),
        )
        .await;
        assert_eq!(
            mfa::messages_to(&t, &env, PHONE).await.len(),
            5,
            "no sixth message from another flow: {}",
            f2.text
        );
        assert_eq!(
            f2.body["status"], "DEVICE_SELECTION_REQUIRED",
            "{}",
            f2.text
        );
        assert_eq!(f2.body["error"]["code"], "LIMIT_EXCEEDED", "{}", f2.text);
        let s = signon::flow_action(
            &t,
            &mut jar2,
            &flow2,
            "device.select",
            json!({ "device": { "id": email } }),
        )
        .await;
        assert_eq!(s.status, 200, "{}", s.text);
        assert_eq!(s.body["selectedDevice"]["id"], email.as_str(), "{}", s.text);
        assert_eq!(
            mfa::messages_to(&t, &env, "spammed@example.com")
                .await
                .len(),
            1
        );
        assert_ne!(f2.body["status"], "COMPLETED", "{}", f2.text);
    }
}

/// When the first device of a new sign-on has used up its sends, the password was right and
/// another device is usable: the flow must let the user go on with that device instead of
/// being stranded in a status whose actions it no longer offers.
#[tokio::test]
async fn a_rate_limited_first_device_does_not_strand_a_new_sign_on() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let (app, secret) = web_app(&t, &env, "Strand").await;
        mfa::policy(&t, &env, &app, "LoginMfa", &login_then_mfa(json!({}))).await;
        let user = mfa_user(&t, &env, "stranded").await;
        let sms = mfa::device(&t, &env, &user, json!({ "type": "SMS", "phone": PHONE })).await;
        let email = mfa::device(
            &t,
            &env,
            &user,
            json!({ "type": "EMAIL", "email": "stranded@example.com" }),
        )
        .await;
        let (mut jar, flow, f) = password_step(&t, &env, &app, "stranded").await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        for _ in 2..=5 {
            let s = signon::flow_action(
                &t,
                &mut jar,
                &flow,
                "device.select",
                json!({ "device": { "id": sms } }),
            )
            .await;
            assert_eq!(s.status, 200, "{}", s.text);
        }
        assert_eq!(mfa::messages_to(&t, &env, PHONE).await.len(), 5);

        // A new browser: the password is right, the SMS device may not get a sixth code.
        let mut jar2 = Jar::new();
        let flow2 = start(&t, &mut jar2, &env, &app, "s2").await;
        let f2 = signon::flow_action(
            &t,
            &mut jar2,
            &flow2,
            "usernamePassword.check",
            json!({ "username": "stranded", "password": PASSWORD }),
        )
        .await;
        assert_eq!(
            mfa::messages_to(&t, &env, PHONE).await.len(),
            5,
            "no sixth SMS: {}",
            f2.text
        );
        let g = signon::browser_get(&t, &mut jar2, &flow2).await;
        assert!(
            g.body["status"] == "OTP_REQUIRED" || g.body["status"] == "DEVICE_SELECTION_REQUIRED",
            "after the right password the flow waits for a device or a code, not for the password again: {}",
            g.text
        );
        assert!(
            g.body["_links"]["device.select"]["href"].is_string(),
            "another device can be chosen: {}",
            g.text
        );
        let s = signon::flow_action(
            &t,
            &mut jar2,
            &flow2,
            "device.select",
            json!({ "device": { "id": email } }),
        )
        .await;
        assert_eq!(s.status, 200, "{}", s.text);
        assert_eq!(s.body["status"], "OTP_REQUIRED", "{}", s.text);
        let otp = mfa::latest_otp(&t, &env, "stranded@example.com").await;
        let f =
            signon::flow_action(&t, &mut jar2, &flow2, "otp.check", json!({ "otp": otp })).await;
        let claims = finish(&t, &mut jar2, &env, &app, &secret, &f).await;
        assert_eq!(claims["amr"], json!(["pwd", "email"]));
    }
}

// ---- 7. noDevicesMode ----

#[tokio::test]
async fn no_devices_mode_bypass_block_and_passwordless() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let user = mfa_user(&t, &env, "nodevice").await;

        // BYPASS after a password: the sign-on completes with the password alone.
        let (app, secret) = web_app(&t, &env, "Bypass").await;
        mfa::policy(
            &t,
            &env,
            &app,
            "Bypass",
            &login_then_mfa(json!({ "noDevicesMode": "BYPASS" })),
        )
        .await;
        let (mut jar, _, f) = password_step(&t, &env, &app, "nodevice").await;
        let claims = finish(&t, &mut jar, &env, &app, &secret, &f).await;
        assert_eq!(claims["sub"], user.as_str());
        assert_eq!(claims["amr"], json!(["pwd"]));

        // BLOCK: the flow fails and resume answers the client with access_denied.
        let (app, _) = web_app(&t, &env, "Block").await;
        mfa::policy(
            &t,
            &env,
            &app,
            "Block",
            &login_then_mfa(json!({ "noDevicesMode": "BLOCK" })),
        )
        .await;
        let (mut jar, _, f) = password_step(&t, &env, &app, "nodevice").await;
        assert_eq!(f.body["status"], "FAILED", "{}", f.text);
        let r = signon::browser_get(&t, &mut jar, f.body["resumeUrl"].as_str().unwrap()).await;
        assert_eq!(r.status, 302, "{}", r.text);
        let loc = signon::location(&r);
        assert!(loc.starts_with(CB), "{loc}");
        let q = signon::query_of(&loc);
        assert_eq!(
            q.get("error").map(String::as_str),
            Some("access_denied"),
            "{loc}"
        );
        assert_eq!(q.get("state").map(String::as_str), Some("s"), "{loc}");
        assert!(!q.contains_key("code"), "{loc}");

        // A blocked device does not count: with BLOCK the sign-on fails as without devices.
        let blocked = mfa_user(&t, &env, "blocked").await;
        let dev = mfa::device(&t, &env, &blocked, json!({ "type": "SMS", "phone": PHONE })).await;
        let b = mfa::device_action(&t, &env, &blocked, &dev, "device.block", json!({})).await;
        assert_eq!(b.status, 200, "{}", b.text);
        assert_eq!(b.body["block"]["status"], "BLOCKED", "{}", b.text);
        let (_, _, f) = password_step(&t, &env, &app, "blocked").await;
        assert_eq!(f.body["status"], "FAILED", "{}", f.text);
        assert!(
            mfa::messages_to(&t, &env, PHONE).await.is_empty(),
            "nothing is sent to a blocked device"
        );

        // Passwordless (MFA only) with BYPASS and no device: nothing was proven, so it fails.
        let (app, _) = web_app(&t, &env, "Passwordless").await;
        mfa::policy(&t, &env, &app, "Passwordless", &[json!({ "priority": 1, "type": "MULTI_FACTOR_AUTHENTICATION", "noDevicesMode": "BYPASS", "sms": { "enabled": true }, "email": { "enabled": true } })]).await;
        let mut jar = Jar::new();
        let flow = start(&t, &mut jar, &env, &app, "p").await;
        let f = signon::browser_get(&t, &mut jar, &flow).await;
        assert_eq!(f.body["status"], "SIGN_ON_REQUIRED", "{}", f.text);
        let f = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "user.lookup",
            json!({ "username": "nodevice" }),
        )
        .await;
        assert_ne!(
            f.body["status"], "COMPLETED",
            "a bypass must not complete a sign-on without any factor: {}",
            f.text
        );
        assert_eq!(f.body["status"], "FAILED", "{}", f.text);
        let r = signon::browser_get(&t, &mut jar, f.body["resumeUrl"].as_str().unwrap()).await;
        let q = signon::query_of(&signon::location(&r));
        assert_eq!(
            q.get("error").map(String::as_str),
            Some("access_denied"),
            "{q:?}"
        );
        assert!(!q.contains_key("code"), "{q:?}");
    }
}

// ---- 8. device management with bad input ----

#[tokio::test]
async fn device_management_refuses_bad_input_and_other_environments() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let other_env = t.new_env().await;
        let user = mfa_user(&t, &env, "devices.user").await;
        let devices = path(&env, &format!("/users/{user}/devices"));

        for phone in ["5125551234", "+1abc"] {
            let r =
                mfa::add_device(&t, &env, &user, json!({ "type": "SMS", "phone": phone })).await;
            expect_detail(&r, 400, "INVALID_DATA", "INVALID_VALUE", "phone");
        }
        let r = mfa::add_device(
            &t,
            &env,
            &user,
            json!({ "type": "VOICE", "phone": "+1 512 555 CALL" }),
        )
        .await;
        expect_detail(&r, 400, "INVALID_DATA", "INVALID_VALUE", "phone");
        let r = mfa::add_device(
            &t,
            &env,
            &user,
            json!({ "type": "EMAIL", "email": "not-an-email" }),
        )
        .await;
        expect_detail(&r, 400, "INVALID_DATA", "INVALID_VALUE", "email");
        let r = mfa::add_device(
            &t,
            &env,
            &user,
            json!({ "type": "CARRIER_PIGEON", "phone": PHONE }),
        )
        .await;
        expect_detail(&r, 400, "INVALID_DATA", "INVALID_VALUE", "type");
        let r = mfa::add_device(&t, &env, &user, json!({ "type": "SMS" })).await;
        expect_detail(&r, 400, "INVALID_DATA", "REQUIRED_VALUE", "phone");
        let r = mfa::add_device(&t, &env, &user, json!({ "type": "EMAIL" })).await;
        expect_detail(&r, 400, "INVALID_DATA", "REQUIRED_VALUE", "email");
        let r = mfa::add_device(&t, &env, &user, json!({ "phone": PHONE })).await;
        expect_detail(&r, 400, "INVALID_DATA", "REQUIRED_VALUE", "type");
        let r = t
            .send(
                Method::POST,
                &devices,
                Some(&t.token),
                Some("application/json"),
                Some(b"{\"type\":\"SMS\",".to_vec()),
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None);
        let r = t
            .send(
                Method::POST,
                &devices,
                Some(&t.token),
                Some("text/plain"),
                Some(b"type=SMS".to_vec()),
            )
            .await;
        assert_eq!(r.status, 415, "{}", r.text);
        let l = t.get(&devices).await;
        assert_eq!(l.status, 200, "{}", l.text);
        assert_eq!(l.body["count"], 0, "nothing was created: {}", l.text);

        // Three devices, created in this order.
        let a = mfa::device(&t, &env, &user, json!({ "type": "SMS", "phone": PHONE })).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let b = mfa::device(
            &t,
            &env,
            &user,
            json!({ "type": "EMAIL", "email": "devices.user@example.com" }),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let c = mfa::device(
            &t,
            &env,
            &user,
            json!({ "type": "VOICE", "phone": "+1 (512) 555-0199" }),
        )
        .await;
        let order = |r: &Resp| -> Vec<String> {
            r.body["_embedded"]["devices"]
                .as_array()
                .unwrap_or_else(|| panic!("{}", r.text))
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_string())
                .collect()
        };
        let creation = vec![a.clone(), b.clone(), c.clone()];
        assert_eq!(order(&t.get(&devices).await), creation);

        // Another environment's path never shows the device.
        let other_user = mfa_user(&t, &other_env, "devices.user").await;
        for p in [
            path(&other_env, &format!("/users/{user}/devices/{a}")),
            path(&other_env, &format!("/users/{other_user}/devices/{a}")),
        ] {
            let r = t.get(&p).await;
            assert!(
                r.status == 404 || r.status == 403,
                "{p}: {} {}",
                r.status,
                r.text
            );
            assert!(!r.text.contains(PHONE), "{}", r.text);
            let r = t
                .action(
                    Method::POST,
                    &p,
                    "application/vnd.pingidentity.device.unlock+json",
                    Some(json!({})),
                )
                .await;
            assert!(
                r.status == 404 || r.status == 403,
                "{p}: {} {}",
                r.status,
                r.text
            );
            let r = t.delete(&p).await;
            assert!(
                r.status == 404 || r.status == 403,
                "{p}: {} {}",
                r.status,
                r.text
            );
        }
        let r = t
            .get(&path(&other_env, &format!("/users/{user}/devices")))
            .await;
        assert!(
            r.status == 404 || r.status == 403,
            "{} {}",
            r.status,
            r.text
        );
        // Nor another user's path in the same environment.
        let r = t
            .get(&path(&env, &format!("/users/{other_user}/devices/{a}")))
            .await;
        assert!(
            r.status == 404 || r.status == 403,
            "{} {}",
            r.status,
            r.text
        );
        let stranger = mfa_user(&t, &env, "stranger").await;
        let r = t
            .get(&path(&env, &format!("/users/{stranger}/devices/{a}")))
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        let r = t
            .put(
                &path(&env, &format!("/users/{stranger}/devices/{a}/nickname")),
                json!({ "nickname": "Mine now" }),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        assert_eq!(
            get_device(&t, &env, &user, &a).await.status,
            200,
            "the device is still there"
        );

        // Reorder: c, a first; b after them.
        let reorder = |body: Value| {
            let devices = devices.clone();
            let t = &t;
            async move {
                t.action(
                    Method::POST,
                    &devices,
                    "application/vnd.pingidentity.devices.reorder+json",
                    Some(body),
                )
                .await
            }
        };
        let r = reorder(json!({ "order": [{ "id": c }, { "id": a }] })).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(order(&r), vec![c.clone(), a.clone(), b.clone()]);
        assert_eq!(
            order(&t.get(&devices).await),
            vec![c.clone(), a.clone(), b.clone()]
        );
        // A foreign id, a duplicate, a non-UUID, no order: refused, and the order stays.
        let foreign = mfa::device(
            &t,
            &env,
            &stranger,
            json!({ "type": "SMS", "phone": PHONE_B }),
        )
        .await;
        let r = reorder(json!({ "order": [{ "id": b }, { "id": foreign }] })).await;
        expect_detail(&r, 400, "INVALID_DATA", "INVALID_VALUE", "order[1].id");
        let r = reorder(json!({ "order": [{ "id": b }, { "id": b }] })).await;
        expect_detail(&r, 400, "INVALID_DATA", "INVALID_VALUE", "order[1].id");
        let r = reorder(json!({ "order": [{ "id": "not-a-uuid" }] })).await;
        expect_detail(&r, 400, "INVALID_DATA", "INVALID_VALUE", "order[0].id");
        let r = reorder(json!({})).await;
        expect_detail(&r, 400, "INVALID_DATA", "REQUIRED_VALUE", "order");
        assert_eq!(
            order(&t.get(&devices).await),
            vec![c.clone(), a.clone(), b.clone()],
            "unchanged"
        );

        // Removing the order: creation order again (and the wrong media type is refused).
        let r = t
            .send(
                Method::DELETE,
                &devices,
                Some(&t.token),
                Some("application/json"),
                None,
            )
            .await;
        assert_eq!(r.status, 415, "{}", r.text);
        let r = t
            .action(
                Method::DELETE,
                &devices,
                "application/vnd.pingidentity.devices.order.remove+json",
                None,
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert_eq!(order(&t.get(&devices).await), creation);

        // The nickname.
        let n = t
            .put(
                &path(&env, &format!("/users/{user}/devices/{a}/nickname")),
                json!({ "nickname": "Work phone" }),
            )
            .await;
        assert_eq!(n.status, 200, "{}", n.text);
        assert_eq!(n.body["nickname"], "Work phone");
        assert_eq!(
            get_device(&t, &env, &user, &a).await.body["nickname"],
            "Work phone"
        );
        let n = t
            .put(
                &path(&env, &format!("/users/{user}/devices/{a}/nickname")),
                json!({}),
            )
            .await;
        expect_detail(&n, 400, "INVALID_DATA", "REQUIRED_VALUE", "nickname");
        let n = t
            .put(
                &path(&env, &format!("/users/{user}/devices/{a}/nickname")),
                json!({ "nickname": "x".repeat(101) }),
            )
            .await;
        expect_detail(&n, 400, "INVALID_DATA", "SIZE_LIMIT_EXCEEDED", "nickname");

        // A device action with an unknown media type.
        let r = t
            .action(
                Method::POST,
                &path(&env, &format!("/users/{user}/devices/{a}")),
                "application/vnd.pingidentity.device.steal+json",
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 415, "{}", r.text);
    }
}

// ---- 9. a custom SMS provider ----

#[derive(Clone, Default)]
struct Provider {
    /// The status the provider answers with.
    status: Arc<AtomicU16>,
    /// (path, headers, body) of every request received.
    seen: Arc<parking_lot::Mutex<Vec<(String, HeaderMap, String)>>>,
}

/// A local HTTP server that records requests; returns its state and base URL.
async fn start_provider() -> (Provider, String) {
    let p = Provider::default();
    p.status.store(200, Ordering::SeqCst);
    let state = p.clone();
    let router = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                state
                    .seen
                    .lock()
                    .push((uri.path().to_string(), headers, body));
                StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (p, format!("http://{addr}"))
}

fn has_key(v: &Value, key: &str) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| k == key || has_key(v, key)),
        Value::Array(a) => a.iter().any(|v| has_key(v, key)),
        _ => false,
    }
}

#[tokio::test]
async fn sms_through_a_custom_provider_and_when_it_fails() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let (provider, base) = start_provider().await;
        let settings = path(&env, "/notificationsSettings/phoneDeliverySettings");
        let request = |body: &str| {
            json!({ "deliveryMethod": "SMS", "method": "POST", "url": format!("{base}/sms"), "body": body,
                    "headers": { "content-type": "application/json" } })
        };
        let good_body = "{\"to\":\"${to}\",\"text\":\"${message}\"}";

        // Validation: the request must carry ${message} (and ${to}); BASIC needs its password.
        let r = t
            .post(&settings, json!({ "provider": "CUSTOM_PROVIDER", "name": "Bad", "authentication": { "method": "BASIC", "username": "u", "password": "p" },
                                     "requests": [request("{\"to\":\"${to}\"}")] }))
            .await;
        expect_detail(&r, 400, "INVALID_DATA", "INVALID_VALUE", "requests[0]");
        let r = t
            .post(&settings, json!({ "provider": "CUSTOM_PROVIDER", "name": "Bad", "authentication": { "method": "BASIC", "username": "u", "password": "p" },
                                     "requests": [request("{\"text\":\"${message}\"}")] }))
            .await;
        expect_detail(&r, 400, "INVALID_DATA", "INVALID_VALUE", "requests[0]");
        let r = t
            .post(&settings, json!({ "provider": "CUSTOM_PROVIDER", "name": "Bad", "authentication": { "method": "BASIC", "username": "u" },
                                     "requests": [request(good_body)] }))
            .await;
        expect_detail(
            &r,
            400,
            "INVALID_DATA",
            "REQUIRED_VALUE",
            "authentication.password",
        );
        let r = t
            .post(&settings, json!({ "provider": "TWILIO", "name": "Bad", "authentication": { "method": "BASIC", "username": "u", "password": "p" },
                                     "requests": [request(good_body)] }))
            .await;
        expect_detail(&r, 400, "INVALID_DATA", "INVALID_VALUE", "provider");
        let r = t.get(&settings).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["count"], 0, "nothing was created: {}", r.text);

        // The provider: created, and its password never shown.
        let r = t
            .post(&settings, json!({ "provider": "CUSTOM_PROVIDER", "name": "Test", "authentication": { "method": "BASIC", "username": "u", "password": "p" },
                                     "requests": [request(good_body)] }))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert!(!has_key(&r.body, "password"), "{}", r.text);
        assert_eq!(r.body["authentication"]["method"], "BASIC", "{}", r.text);
        let id = r.id();
        let g = t.get(&format!("{settings}/{id}")).await;
        assert_eq!(g.status, 200, "{}", g.text);
        assert!(!has_key(&g.body, "password"), "{}", g.text);
        let l = t.get(&settings).await;
        assert_eq!(l.body["count"], 1, "{}", l.text);
        assert!(!has_key(&l.body, "password"), "{}", l.text);

        // A sign-on's SMS reaches the provider.
        let (app, secret) = web_app(&t, &env, "Provider").await;
        mfa::policy(&t, &env, &app, "LoginMfa", &login_then_mfa(json!({}))).await;
        let user = mfa_user(&t, &env, "texted").await;
        let dev = mfa::device(&t, &env, &user, json!({ "type": "SMS", "phone": PHONE })).await;
        let (mut jar, flow, f) = password_step(&t, &env, &app, "texted").await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        assert!(f.body.get("error").is_none(), "{}", f.text);
        let out = mfa::messages_to(&t, &env, PHONE).await;
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["status"], "SENT", "{:?}", out[0]);
        let otp = mfa::latest_otp(&t, &env, PHONE).await;
        {
            let seen = provider.seen.lock();
            assert_eq!(seen.len(), 1, "one request");
            let (p, headers, body) = &seen[0];
            assert_eq!(p, "/sms");
            assert_eq!(
                headers.get("authorization").and_then(|v| v.to_str().ok()),
                Some("Basic dTpw")
            );
            assert!(
                headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/json"))
            );
            let sent: Value =
                serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
            assert_eq!(sent["to"], PHONE, "{body}");
            assert!(
                sent["text"].as_str().unwrap_or_default().contains(&otp),
                "{body}"
            );
        }
        let f = signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": otp })).await;
        finish(&t, &mut jar, &env, &app, &secret, &f).await;

        // The provider fails: the outbox says so, and the flow still answers, with an error.
        provider.status.store(500, Ordering::SeqCst);
        let before = provider.seen.lock().len();
        let (mut jar, flow, f) = password_step(&t, &env, &app, "texted").await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        assert_eq!(f.body["error"]["code"], "NOTIFICATION_FAILED", "{}", f.text);
        assert!(f.body["error"]["message"].is_string(), "{}", f.text);
        assert!(
            provider.seen.lock().len() > before,
            "the provider was called"
        );
        let out = mfa::messages_to(&t, &env, PHONE).await;
        assert_eq!(out.len(), 2);
        let failed: Vec<&Value> = out.iter().filter(|m| m["status"] == "FAILED").collect();
        assert_eq!(failed.len(), 1, "{out:?}");
        let err = failed[0]["error"]
            .as_str()
            .unwrap_or_else(|| panic!("an error: {:?}", failed[0]));
        assert!(!err.is_empty() && !err.contains("dTpw"), "{err}");
        let g = signon::browser_get(&t, &mut jar, &flow).await;
        assert_eq!(g.body["error"]["code"], "NOTIFICATION_FAILED", "{}", g.text);

        // The provider recovers: a re-send works and the error is gone.
        provider.status.store(200, Ordering::SeqCst);
        let s = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "device.select",
            json!({ "device": { "id": dev } }),
        )
        .await;
        assert_eq!(s.status, 200, "{}", s.text);
        assert_eq!(s.body["status"], "OTP_REQUIRED", "{}", s.text);
        assert!(s.body.get("error").is_none(), "{}", s.text);
        let out = mfa::messages_to(&t, &env, PHONE).await;
        assert_eq!(
            out.iter().filter(|m| m["status"] == "SENT").count(),
            2,
            "{out:?}"
        );
    }
}

/// Issue 15 (SSRF): an environment's phone provider URL on Lanyard's own network is not
/// called while the outbound guard is on (the default outside tests), by IP literal or by a
/// name resolving there; the outbox and the flow say only that the provider could not be
/// reached, nothing about the address or what answers there.
#[tokio::test]
async fn a_phone_provider_on_the_servers_own_network_is_not_called() {
    let t =
        TestApp::with_settings(None, signon::PUBLIC, |s| s.outbound_allow_private = false).await;
    let (provider, base) = start_provider().await;
    let port = base.rsplit(':').next().unwrap().to_string();
    for url in [
        format!("{base}/sms"),
        format!("http://localhost:{port}/sms"),
    ] {
        let env = t.new_env().await;
        let r = t
            .post(
                &path(&env, "/notificationsSettings/phoneDeliverySettings"),
                json!({ "provider": "CUSTOM_PROVIDER", "name": "Inside", "authentication": { "method": "BEARER", "authToken": "tkn" },
                        "requests": [{ "deliveryMethod": "SMS", "method": "GET", "url": format!("{url}?to=${{to}}&m=${{message}}") }] }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let (app, _) = web_app(&t, &env, "Inside").await;
        mfa::policy(&t, &env, &app, "LoginMfa", &login_then_mfa(json!({}))).await;
        let user = mfa_user(&t, &env, "inside").await;
        mfa::device(&t, &env, &user, json!({ "type": "SMS", "phone": PHONE })).await;
        let (_, _, f) = password_step(&t, &env, &app, "inside").await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        assert_eq!(f.body["error"]["code"], "NOTIFICATION_FAILED", "{}", f.text);
        let shown = f.body["error"]["message"].as_str().unwrap_or_default();
        for revealing in [port.as_str(), "127.0.0.1", "localhost", "public address"] {
            assert!(!shown.contains(revealing), "{url}: {shown}");
        }
        let out = mfa::messages_to(&t, &env, PHONE).await;
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0]["status"], "FAILED", "{url}: {:?}", out[0]);
        assert_eq!(
            out[0]["error"], "the provider could not be reached",
            "{url}: {:?}",
            out[0]
        );
    }
    assert!(
        provider.seen.lock().is_empty(),
        "the provider was never called"
    );
}

// ---- 10. identifier first ----

#[tokio::test]
async fn identifier_first_does_not_tell_known_usernames_from_unknown_ones() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let (app, secret) = web_app(&t, &env, "IdFirst").await;
        mfa::policy(
            &t,
            &env,
            &app,
            "IdentifierFirst",
            &[json!({ "priority": 1, "type": "IDENTIFIER_FIRST" })],
        )
        .await;
        let user = signon::create_user(&t, &env, "known.user").await;

        let lookup = |name: &'static str| {
            let t = &t;
            let env = env.clone();
            let app = app.clone();
            async move {
                let mut jar = Jar::new();
                let flow = start(t, &mut jar, &env, &app, "i").await;
                let f = signon::browser_get(t, &mut jar, &flow).await;
                assert_eq!(f.body["status"], "SIGN_ON_REQUIRED", "{}", f.text);
                assert!(
                    f.body["_links"]["user.lookup"]["href"].is_string(),
                    "{}",
                    f.text
                );
                let l = signon::flow_action(
                    t,
                    &mut jar,
                    &flow,
                    "user.lookup",
                    json!({ "username": name }),
                )
                .await;
                (jar, flow, l)
            }
        };
        let (mut kjar, kflow, known) = lookup("known.user").await;
        let (mut ujar, uflow, unknown) = lookup("no.such.user").await;
        for l in [&known, &unknown] {
            assert_eq!(l.status, 200, "{}", l.text);
            assert_eq!(l.body["status"], "PASSWORD_REQUIRED", "{}", l.text);
            assert!(
                l.body["_embedded"].get("user").is_none(),
                "the lookup names no user: {}",
                l.text
            );
        }
        let keys = |r: &Resp| {
            r.body["_links"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&known), keys(&unknown), "the same next steps");
        assert!(
            known.body["_links"]["usernamePassword.check"]["href"].is_string(),
            "{}",
            known.text
        );

        // A username other than the one looked up is refused.
        let w = signon::flow_action(
            &t,
            &mut kjar,
            &kflow,
            "usernamePassword.check",
            json!({ "username": "someone.else", "password": PASSWORD }),
        )
        .await;
        expect_detail(&w, 400, "INVALID_DATA", "INVALID_VALUE", "username");
        let w =
            signon::flow_action(&t, &mut kjar, &kflow, "usernamePassword.check", json!({})).await;
        expect_detail(&w, 400, "INVALID_DATA", "REQUIRED_VALUE", "password");

        // The unknown user fails as a wrong password does.
        let u = signon::flow_action(
            &t,
            &mut ujar,
            &uflow,
            "usernamePassword.check",
            json!({ "password": PASSWORD }),
        )
        .await;
        expect_detail(&u, 400, "INVALID_DATA", "INVALID_VALUE", "username");
        let (mut wjar, wflow, _) = lookup("known.user").await;
        let w = signon::flow_action(
            &t,
            &mut wjar,
            &wflow,
            "usernamePassword.check",
            json!({ "password": "Wr0ng-Password-Entirely!" }),
        )
        .await;
        expect_detail(&w, 400, "INVALID_DATA", "INVALID_VALUE", "username");
        assert_eq!(
            u.body["details"][0]["message"], w.body["details"][0]["message"],
            "{} vs {}",
            u.text, w.text
        );
        assert_eq!(
            u.body["details"][0]["innerError"], w.body["details"][0]["innerError"],
            "{} vs {}",
            u.text, w.text
        );

        // The known user's password completes the sign-on (the username may be repeated).
        let f = signon::flow_action(
            &t,
            &mut kjar,
            &kflow,
            "usernamePassword.check",
            json!({ "username": "known.user", "password": PASSWORD }),
        )
        .await;
        let claims = finish(&t, &mut kjar, &env, &app, &secret, &f).await;
        assert_eq!(claims["sub"], user.as_str());
        assert_eq!(claims["amr"], json!(["pwd"]));
    }
}

/// A provider that never answers: the sign-on still answers (two 5-second attempts), the
/// outbox says why, and nothing hangs.
#[tokio::test]
async fn an_sms_provider_that_hangs_does_not_hang_the_sign_on() {
    let t = TestApp::new(None).await;
    let env = t.new_env().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        StatusCode::OK
    });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let r = t
        .post(
            &path(&env, "/notificationsSettings/phoneDeliverySettings"),
            json!({ "provider": "CUSTOM_PROVIDER", "name": "Slow", "authentication": { "method": "BEARER", "authToken": "tkn" },
                    "requests": [{ "deliveryMethod": "SMS", "method": "GET", "url": format!("{base}/send?to=${{to}}&m=${{message}}") }] }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (app, _) = web_app(&t, &env, "Slow").await;
    mfa::policy(&t, &env, &app, "LoginMfa", &login_then_mfa(json!({}))).await;
    let user = mfa_user(&t, &env, "waiting").await;
    mfa::device(&t, &env, &user, json!({ "type": "SMS", "phone": PHONE })).await;
    let (_, _, f) = tokio::time::timeout(
        Duration::from_secs(30),
        password_step(&t, &env, &app, "waiting"),
    )
    .await
    .expect("the sign-on answered although the provider did not");
    assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
    assert_eq!(f.body["error"]["code"], "NOTIFICATION_FAILED", "{}", f.text);
    let out = mfa::messages_to(&t, &env, PHONE).await;
    assert_eq!(out[0]["status"], "FAILED", "{:?}", out[0]);
    assert!(
        out[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("in time"),
        "{:?}",
        out[0]
    );
}

/// Wrong passcodes sent at the same time all count toward the device lock (the device row is
/// locked while a failure is recorded).
#[tokio::test]
async fn concurrent_wrong_passcodes_all_count() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let (app, _) = web_app(&t, &env, "Race").await;
        mfa::policy(&t, &env, &app, "LoginMfa", &login_then_mfa(json!({}))).await;
        let user = mfa_user(&t, &env, "raced").await;
        let dev = mfa::device(&t, &env, &user, json!({ "type": "SMS", "phone": PHONE })).await;
        let (jar, flow, f) = password_step(&t, &env, &app, "raced").await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        let code: u32 = mfa::latest_otp(&t, &env, PHONE).await.parse().unwrap();
        let mut guesses = Vec::new();
        for i in 1..=4 {
            let (t, flow, mut jar) = (&t, flow.clone(), jar.clone());
            let guess = format!("{:06}", (code + i) % 1_000_000);
            guesses.push(async move {
                signon::flow_action(t, &mut jar, &flow, "otp.check", json!({ "otp": guess })).await
            });
        }
        let answers = futures_util::future::join_all(guesses).await;
        assert!(
            answers.iter().all(|r| r.status == StatusCode::BAD_REQUEST),
            "all refused"
        );
        let d = get_device(&t, &env, &user, &dev).await;
        assert_eq!(d.body["lock"]["status"], "LOCKED", "{}", d.text);
    }
}

/// `${session.lastSignOn…}` conditions speak of the flow's own user: a browser in which
/// mallory has just done MFA does not skip alice's MFA when mallory signs in as alice with a
/// stolen password.
#[tokio::test]
async fn another_users_recent_mfa_does_not_skip_mfa() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let (app, _) = web_app(&t, &env, "Web").await;
        let mut actions = login_then_mfa(json!({
            "condition": { "secondsSince": "${session.lastSignOn.withAuthenticator.mfa.at}", "greater": 3600 }
        }));
        actions[1]["priority"] = json!(2);
        mfa::policy(&t, &env, &app, "MFA unless recent", &actions).await;
        for (name, phone) in [("mallory", PHONE), ("alice", PHONE_B)] {
            let u = mfa_user(&t, &env, name).await;
            mfa::device(&t, &env, &u, json!({ "type": "SMS", "phone": phone })).await;
        }
        let authorize = format!(
            "/{env}/as/authorize?client_id={app}&response_type=code&scope=openid&redirect_uri={CB}&response_mode=pi.flow"
        );
        let mut jar = Jar::new();
        let sign_in = |name: &'static str| json!({ "username": name, "password": PASSWORD });
        // mallory: password, then the passcode; the session records her MFA.
        let f = signon::browser_get(&t, &mut jar, &authorize).await;
        let flow = mfa::flow_url(&env, f.body["id"].as_str().unwrap());
        let r = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            sign_in("mallory"),
        )
        .await;
        assert_eq!(r.body["status"], "OTP_REQUIRED", "{}", r.text);
        let otp = mfa::latest_otp(&t, &env, PHONE).await;
        let r = signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": otp })).await;
        assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);
        let done = signon::browser_get(&t, &mut jar, r.body["resumeUrl"].as_str().unwrap()).await;
        assert!(
            done.body["authorizeResponse"]["code"].is_string(),
            "{}",
            done.text
        );
        // Her own next sign-on skips MFA (the condition works) ...
        let f = signon::browser_get(&t, &mut jar, &format!("{authorize}&prompt=login")).await;
        let flow = mfa::flow_url(&env, f.body["id"].as_str().unwrap());
        let r = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            sign_in("mallory"),
        )
        .await;
        assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);
        // ... but alice, in the same browser, is asked for hers.
        let f = signon::browser_get(&t, &mut jar, &format!("{authorize}&prompt=login")).await;
        let flow = mfa::flow_url(&env, f.body["id"].as_str().unwrap());
        let r = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            sign_in("alice"),
        )
        .await;
        assert_eq!(r.body["status"], "OTP_REQUIRED", "{}", r.text);
    }
}
