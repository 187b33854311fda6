//! Two Lanyard nodes on one PostgreSQL database: authorize through one, finish the flow, resume
//! and exchange the code through the other (flows, sessions and codes live in the database).

mod common;

use axum::http::StatusCode;
use common::TestApp;
use common::signon::{self, Jar, PASSWORD};
use serde_json::json;

const CB: &str = "https://app.example.com/cb";

#[tokio::test]
async fn a_sign_on_moves_between_nodes() {
    let Ok(url) = std::env::var("LANYARD_TEST_DATABASE_URL") else {
        println!("skipped: LANYARD_TEST_DATABASE_URL is not set");
        return;
    };
    let a = TestApp::new(Some(url.clone())).await;
    let b = TestApp::new(Some(url)).await;
    let env = a.new_env().await;
    let user = signon::create_user(&a, &env, "alice").await;
    let app = signon::create_app(&a, &env, signon::web_app_body("Web", CB)).await;
    signon::grant(&a, &env, &app, "openid", &["profile"]).await;
    let secret = signon::app_secret(&b, &env, &app).await;

    // Authorize on node A.
    let mut jar = Jar::new();
    let qs = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", app.as_str()),
        ("redirect_uri", CB),
        ("scope", "openid profile"),
        ("state", "two-nodes"),
    ])
    .unwrap();
    let r = signon::browser_get(&a, &mut jar, &format!("/{env}/as/authorize?{qs}")).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    let flow = format!("/{env}/flows/{}", signon::flow_id_of(&signon::location(&r)));

    // The flow, read and finished on node B.
    let r = signon::browser_get(&b, &mut jar, &flow).await;
    assert_eq!(r.body["status"], "USERNAME_PASSWORD_REQUIRED", "{}", r.text);
    let r = signon::flow_action(
        &b,
        &mut jar,
        &flow,
        "usernamePassword.check",
        json!({ "username": "alice", "password": PASSWORD }),
    )
    .await;
    assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);

    // Resume on A, the code exchanged on B.
    let flow_id = flow.rsplit('/').next().unwrap().to_string();
    let r = signon::browser_get(&a, &mut jar, &format!("/{env}/as/resume?flowId={flow_id}")).await;
    let back = signon::location(&r);
    assert!(back.starts_with(CB), "{back}");
    let code = signon::query_of(&back)["code"].clone();
    let r = signon::token_form(
        &b,
        &format!("/{env}/as/token"),
        Some((&app, &secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        signon::claims_of(r.body["id_token"].as_str().unwrap())["sub"],
        user.as_str()
    );

    // The code is single use across nodes too.
    let r = signon::token_form(
        &a,
        &format!("/{env}/as/token"),
        Some((&app, &secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["error"], "invalid_grant");

    // The session made on B signs the user on at A without a login.
    let r = signon::browser_get(&a, &mut jar, &format!("/{env}/as/authorize?{qs}")).await;
    assert!(
        signon::location(&r).starts_with(CB),
        "single sign-on across nodes: {}",
        signon::location(&r)
    );
}

/// MFA across nodes: the passcode sent through node A is checked on node B, and wrong
/// passcodes on both nodes add up to one device lock that both nodes enforce.
#[tokio::test]
async fn passcodes_and_device_locks_span_nodes() {
    let Ok(url) = std::env::var("LANYARD_TEST_DATABASE_URL") else {
        println!("skipped: LANYARD_TEST_DATABASE_URL is not set");
        return;
    };
    let a = TestApp::new(Some(url.clone())).await;
    let b = TestApp::new(Some(url)).await;
    let env = a.new_env().await;
    let p = |rest: &str| TestApp::env_path(&env, rest);
    let user = signon::create_user(&a, &env, "mallory").await;
    let app = signon::create_app(&a, &env, signon::web_app_body("Web", CB)).await;
    signon::grant(&a, &env, &app, "openid", &["profile"]).await;
    let pol = a
        .post(&p("/signOnPolicies"), json!({ "name": "Mfa" }))
        .await
        .id();
    for act in [
        json!({ "priority": 1, "type": "LOGIN" }),
        json!({ "priority": 2, "type": "MULTI_FACTOR_AUTHENTICATION", "sms": { "enabled": true } }),
    ] {
        assert_eq!(
            a.post(&p(&format!("/signOnPolicies/{pol}/actions")), act)
                .await
                .status,
            201
        );
    }
    let r = a
        .post(
            &p(&format!("/applications/{app}/signOnPolicyAssignments")),
            json!({ "priority": 1, "signOnPolicy": { "id": pol } }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    common::mfa::enable_mfa(&a, &env, &user).await;
    let device = common::mfa::device(
        &a,
        &env,
        &user,
        json!({ "type": "SMS", "phone": "+15125550199" }),
    )
    .await;

    // Password on A sends the code; the code checked on B completes the sign-on.
    let (flow, mut jar) = start_on(&a, &env, &app).await;
    let r = signon::flow_action(
        &a,
        &mut jar,
        &flow,
        "usernamePassword.check",
        json!({ "username": "mallory", "password": PASSWORD }),
    )
    .await;
    assert_eq!(r.body["status"], "OTP_REQUIRED", "{}", r.text);
    let otp = common::mfa::latest_otp(&b, &env, "+15125550199").await;
    let r = signon::flow_action(&b, &mut jar, &flow, "otp.check", json!({ "otp": otp })).await;
    assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);

    // Wrong codes: one on A, one on B, the third on A locks the device for both.
    let (flow, mut jar) = start_on(&b, &env, &app).await;
    let r = signon::flow_action(
        &b,
        &mut jar,
        &flow,
        "usernamePassword.check",
        json!({ "username": "mallory", "password": PASSWORD }),
    )
    .await;
    assert_eq!(r.body["status"], "OTP_REQUIRED", "{}", r.text);
    let w = signon::flow_action(&a, &mut jar, &flow, "otp.check", json!({ "otp": "000001" })).await;
    assert_eq!(
        w.body["details"][0]["innerError"]["failuresRemaining"], 2,
        "{}",
        w.text
    );
    let w = signon::flow_action(&b, &mut jar, &flow, "otp.check", json!({ "otp": "000002" })).await;
    assert_eq!(
        w.body["details"][0]["innerError"]["failuresRemaining"], 1,
        "{}",
        w.text
    );
    let w = signon::flow_action(&a, &mut jar, &flow, "otp.check", json!({ "otp": "000003" })).await;
    assert_eq!(w.body["details"][0]["code"], "DEVICE_LOCKED", "{}", w.text);
    let otp = common::mfa::latest_otp(&a, &env, "+15125550199").await;
    let w = signon::flow_action(&b, &mut jar, &flow, "otp.check", json!({ "otp": otp })).await;
    assert_eq!(
        w.body["details"][0]["code"], "DEVICE_LOCKED",
        "the lock holds on the other node: {}",
        w.text
    );
    let d = b.get(&p(&format!("/users/{user}/devices/{device}"))).await;
    assert_eq!(d.body["lock"]["status"], "LOCKED", "{}", d.text);
}

/// An authorize through `node`: the flow path and the browser's cookies.
async fn start_on(node: &TestApp, env: &str, app: &str) -> (String, Jar) {
    let qs = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", app),
        ("redirect_uri", CB),
        ("scope", "openid"),
    ])
    .unwrap();
    let mut jar = Jar::new();
    let r = signon::browser_get(node, &mut jar, &format!("/{env}/as/authorize?{qs}")).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    (
        format!("/{env}/flows/{}", signon::flow_id_of(&signon::location(&r))),
        jar,
    )
}
