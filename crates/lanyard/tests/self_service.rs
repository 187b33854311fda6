//! A signed-in user's own record through the management API with `p1:read:user` /
//! `p1:update:user` and their `{scope}:{suffix}` sub-scopes, limited by the scopes'
//! `schemaAttributes`.

mod common;

use axum::http::{Method, StatusCode};
use common::signon::{self, Jar};
use common::{TestApp, backends};
use serde_json::{Value, json};

const CB: &str = "https://app.example.com/cb";

async fn scope(t: &TestApp, env: &str, api: &str, body: Value) {
    let r = t
        .post(
            &TestApp::env_path(env, &format!("/resources/{api}/scopes")),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// Signs `jdoe` on and returns an access token for `scope`.
async fn token_for(t: &TestApp, env: &str, app: &str, secret: &str, scope: &str) -> String {
    let mut jar = Jar::new();
    let back = signon::sign_on(
        t,
        &mut jar,
        env,
        &[
            ("client_id", app),
            ("response_type", "code"),
            ("scope", scope),
            ("redirect_uri", CB),
        ],
        "jdoe",
    )
    .await;
    let code = signon::query_of(&back)["code"].clone();
    let r = signon::token_form(
        t,
        &format!("/{env}/as/token"),
        Some((app, secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn schema_attributes_limit_what_a_user_reads_and_writes() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let user = signon::create_user(&t, &env, "jdoe").await;
        let r = t
            .patch(
                &TestApp::env_path(&env, &format!("/users/{user}")),
                json!({ "nickname": "JD", "mobilePhone": "+15125550100" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let app = signon::create_app(&t, &env, signon::web_app_body("Web", CB)).await;
        let secret = signon::app_secret(&t, &env, &app).await;
        let api = signon::resource_id(&t, &env, "PingOne API").await;
        scope(
            &t,
            &env,
            &api,
            json!({ "name": "p1:read:user:card", "schemaAttributes": ["name.given", "email"] }),
        )
        .await;
        scope(
            &t,
            &env,
            &api,
            json!({ "name": "p1:update:user:phone", "schemaAttributes": ["mobilePhone"] }),
        )
        .await;
        signon::grant(
            &t,
            &env,
            &app,
            "PingOne API",
            &["p1:read:user", "p1:read:user:card", "p1:update:user:phone"],
        )
        .await;
        signon::grant(&t, &env, &app, "openid", &["profile"]).await;
        let me = format!("/v1/environments/{env}/users/{user}");

        // The sub-scope alone: only its attributes.
        let card = token_for(&t, &env, &app, &secret, "openid p1:read:user:card").await;
        let r = signon::bearer_get(&t, &me, &card).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["id"], user.as_str());
        assert_eq!(r.body["name"], json!({ "given": "Jane" }), "{}", r.text);
        assert_eq!(r.body["email"], "jdoe@example.com");
        for hidden in [
            "username",
            "nickname",
            "mobilePhone",
            "population",
            "lifecycle",
        ] {
            assert!(
                r.body.get(hidden).is_none(),
                "{hidden} is not in the scope: {}",
                r.text
            );
        }
        // p1:read:user (no schemaAttributes) with it: everything.
        let all = token_for(
            &t,
            &env,
            &app,
            &secret,
            "openid p1:read:user p1:read:user:card",
        )
        .await;
        let r = signon::bearer_get(&t, &me, &all).await;
        assert_eq!(r.body["username"], "jdoe", "{}", r.text);
        assert_eq!(r.body["nickname"], "JD");

        // The update sub-scope changes only mobilePhone; other fields in the body are ignored.
        let phone = token_for(&t, &env, &app, &secret, "openid p1:update:user:phone").await;
        for method in [Method::PATCH, Method::PUT] {
            let number = if method == Method::PATCH {
                "+15125550111"
            } else {
                "+15125550122"
            };
            let r = signon::call(
                &t,
                method.clone(),
                &me,
                &[("authorization", format!("Bearer {phone}")), ("content-type", "application/json".into())],
                Some(json!({ "username": "jdoe", "mobilePhone": number, "nickname": "Hacked", "email": "evil@example.com" }).to_string().into_bytes()),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{method}: {}", r.text);
            assert_eq!(r.body["mobilePhone"], number, "{}", r.text);
            assert!(
                r.body.get("nickname").is_none(),
                "only the scope's attributes come back: {}",
                r.text
            );
            let stored = t
                .get(&TestApp::env_path(&env, &format!("/users/{user}")))
                .await;
            assert_eq!(stored.body["mobilePhone"], number);
            assert_eq!(stored.body["nickname"], "JD", "{method}: untouched");
            assert_eq!(
                stored.body["email"], "jdoe@example.com",
                "{method}: untouched"
            );
        }
        // Reading needs a read scope.
        let r = signon::bearer_get(&t, &me, &phone).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    }
}
