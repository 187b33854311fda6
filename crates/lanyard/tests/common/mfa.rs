//! MFA helpers for the tests: devices, reading passcodes from the outbox (as a test reads
//! codes without a phone), TOTP codes from a device's secret, and HS256 JWTs signed with a
//! client secret (login_hint_token, request objects).

use axum::http::Method;
use serde_json::{Value, json};

use super::{Resp, TestApp};

pub fn path(env: &str, rest: &str) -> String {
    TestApp::env_path(env, rest)
}

/// `POST /users/{id}/mfaEnabled` as the how-to guides write it.
pub async fn enable_mfa(t: &TestApp, env: &str, user: &str) {
    let r = t
        .post(
            &path(env, &format!("/users/{user}/mfaEnabled")),
            json!({ "mfaEnabled": true }),
        )
        .await;
    assert_eq!(r.status, 200, "mfaEnabled: {}", r.text);
    assert_eq!(r.body["mfaEnabled"], true);
}

pub async fn add_device(t: &TestApp, env: &str, user: &str, body: Value) -> Resp {
    t.post(&path(env, &format!("/users/{user}/devices")), body)
        .await
}

/// Creates an active device and returns its id.
pub async fn device(t: &TestApp, env: &str, user: &str, body: Value) -> String {
    let r = add_device(t, env, user, body).await;
    assert_eq!(r.status, 201, "device: {}", r.text);
    r.id()
}

/// The messages delivered to `to`, newest first.
pub async fn messages_to(t: &TestApp, env: &str, to: &str) -> Vec<Value> {
    let q = serde_urlencoded::to_string([("filter", format!("to eq \"{to}\""))]).unwrap();
    let r = t.get(&path(env, &format!("/outbox?{q}"))).await;
    assert_eq!(r.status, 200, "outbox: {}", r.text);
    r.body["_embedded"]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The first run of `len` digits in a text.
pub fn digits_in(text: &str, len: usize) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == len {
                return Some(chars[start..i].iter().collect());
            }
        } else {
            i += 1;
        }
    }
    None
}

/// The passcode of the newest message to `to`.
pub async fn latest_otp(t: &TestApp, env: &str, to: &str) -> String {
    let m = messages_to(t, env, to).await;
    let body = m.first().unwrap_or_else(|| panic!("no message to {to}"))["body"]
        .as_str()
        .unwrap()
        .to_string();
    digits_in(&body, 6).unwrap_or_else(|| panic!("no passcode in {body:?}"))
}

/// The TOTP code of a base32 secret now (RFC 6238, SHA-1, 6 digits, 30 s).
pub fn totp_now(secret: &str) -> String {
    lanyard::engine::otp::totp(secret, lanyard::clock::unix()).expect("a base32 secret")
}

/// An HS256 JWT signed with a client secret.
pub fn hs256(secret: &str, claims: &Value) -> String {
    use jsonwebtoken::{EncodingKey, Header, encode};
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A device action on `POST /users/{user}/devices/{id}` by media type.
pub async fn device_action(
    t: &TestApp,
    env: &str,
    user: &str,
    device: &str,
    media: &str,
    body: Value,
) -> Resp {
    t.action(
        Method::POST,
        &path(env, &format!("/users/{user}/devices/{device}")),
        &format!("application/vnd.pingidentity.{media}+json"),
        Some(body),
    )
    .await
}

/// Creates a sign-on policy with `actions` and assigns it to `app`; returns the policy id.
pub async fn policy(t: &TestApp, env: &str, app: &str, name: &str, actions: &[Value]) -> String {
    let p = t
        .post(
            &path(env, "/signOnPolicies"),
            json!({ "name": name, "description": "MFA" }),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    let id = p.id();
    for a in actions {
        let r = t
            .post(
                &path(env, &format!("/signOnPolicies/{id}/actions")),
                a.clone(),
            )
            .await;
        assert_eq!(r.status, 201, "action: {}", r.text);
        assert_eq!(r.body["type"], a["type"]);
    }
    let r = t
        .post(
            &path(env, &format!("/applications/{app}/signOnPolicyAssignments")),
            json!({ "priority": 1, "signOnPolicy": { "id": id } }),
        )
        .await;
    assert_eq!(r.status, 201, "assignment: {}", r.text);
    id
}

/// The flows API path of a flow.
pub fn flow_url(env: &str, flow: &str) -> String {
    format!("/{env}/flows/{flow}")
}
