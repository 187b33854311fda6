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
