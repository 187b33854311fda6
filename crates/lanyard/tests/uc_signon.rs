//! Acceptance use cases for sign-on, step by step as the PingOne how-to guides run them
//! (`shared/spec/seeds/000_85cdb1063f7e3e1d.txt`):
//! - UC11 "Configure an application with an authorization code grant"
//! - UC12 "Configure a single-page application with an implicit grant"
//! - UC03 "Configure a PKCE authorization workflow"
//!
//! The `ST` session cookie set by authorize is carried by hand into the flow and resume calls
//! (`common::signon::Jar`), and ID tokens are verified independently against `/as/jwks`.

mod common;

use axum::http::{Method, StatusCode};
use common::signon::{self, Jar, PASSWORD, PUBLIC};
use common::{TestApp, backends};
use serde_json::{Value, json};

fn path(env: &str, rest: &str) -> String {
    TestApp::env_path(env, rest)
}

/// Asserts the `Set-Cookie: ST=…` of an authorize response (bound to the environment's path).
fn assert_session_cookie(r: &common::Resp, env: &str) {
    let cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("ST="))
        .unwrap_or_else(|| panic!("authorize sets the ST cookie: {:?}", r.headers));
    assert!(cookie.contains(&format!("Path=/{env}")), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

/// Asserts a flow object as `GET /flows/{id}` and the actions return it.
fn assert_flow(body: &Value, env: &str, flow_id: &str, status: &str) {
    assert_eq!(body["id"], flow_id, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["environment"]["id"], env, "{body}");
    assert_eq!(
        body["resumeUrl"],
        format!("{PUBLIC}/{env}/as/resume?flowId={flow_id}").as_str(),
        "{body}"
    );
    assert_eq!(
        body["_links"]["self"]["href"],
        format!("{PUBLIC}/{env}/flows/{flow_id}").as_str(),
        "{body}"
    );
    assert!(
        body["createdAt"].is_string() && body["expiresAt"].is_string(),
        "{body}"
    );
}

/// What UC11's steps 1–9 leave behind.
struct Uc11 {
    t: TestApp,
    env: String,
    user: String,
    access_token: String,
}

/// UC11 steps 1–9: create a web app, read its secret, find the PingOne API resource and its
/// scopes, grant `p1:read:user`, authorize (POST), read the flow, sign on, resume, and
/// exchange the code for tokens.
async fn uc11_steps_1_to_9(db: Option<String>) -> Uc11 {
    let t = TestApp::new(db).await;
    let env = t.new_env().await;
    // Prerequisite: a user who signs on.
    let user = signon::create_user(&t, &env, "uc11.user").await;

    // Step 1: Create an OpenID Connect (OIDC) application.
    let r = t
        .post(
            &path(&env, "/applications"),
            json!({
                "name": "AppWithCodeGrant", "enabled": true, "type": "WEB_APP", "protocol": "OPENID_CONNECT",
                "responseTypes": ["CODE"], "grantTypes": ["AUTHORIZATION_CODE"],
                "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC",
                "postLogoutRedirectUris": ["https://www.example.com"], "redirectUris": ["https://www.example.com"],
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "step 1: {}", r.text);
    assert_eq!(r.body["type"], "WEB_APP");
    assert_eq!(r.body["grantTypes"], json!(["AUTHORIZATION_CODE"]));
    assert_eq!(r.body["responseTypes"], json!(["CODE"]));
    assert_eq!(r.body["tokenEndpointAuthMethod"], "CLIENT_SECRET_BASIC");
    let app = r.id();

    // Step 2: Get the application secret.
    let r = t
        .get(&path(&env, &format!("/applications/{app}/secret")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "step 2: {}", r.text);
    let secret = r.body["secret"].as_str().expect("secret").to_string();
    assert!(secret.len() >= 32, "{}", r.text);

    // Step 3: Get the list of resources (the PingOne platform resource).
    let r = t.get(&path(&env, "/resources")).await;
    assert_eq!(r.status, StatusCode::OK, "step 3: {}", r.text);
    let platform = r.body["_embedded"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "PingOne API")
        .expect("the PingOne API resource")
        .clone();
    assert_eq!(platform["type"], "PINGONE_API");
    let resource = platform["id"].as_str().unwrap().to_string();

    // Step 4: Get all scopes of the PingOne API resource.
    let r = t
        .get(&path(&env, &format!("/resources/{resource}/scopes")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "step 4: {}", r.text);
    let read_user = r.body["_embedded"]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "p1:read:user")
        .expect("p1:read:user")["id"]
        .clone();

    // Step 5: Create the application's resource access grant.
    let r = t
        .post(
            &path(&env, &format!("/applications/{app}/grants")),
            json!({ "resource": { "id": resource }, "scopes": [{ "id": read_user }] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "step 5: {}", r.text);
    assert_eq!(r.body["resource"]["id"], resource.as_str());
    assert_eq!(r.body["scopes"][0]["id"], read_user);

    // Step 6: Obtain an authorization grant (POST /as/authorize, form-encoded).
    let mut jar = Jar::new();
    let r = signon::browser_form(
        &t,
        &mut jar,
        &format!("/{env}/as/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", &app),
            ("redirect_uri", "https://www.example.com"),
            ("scope", "openid p1:read:user"),
            ("state", "uc11-state"),
            ("nonce", "uc11-nonce"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND, "step 6: {}", r.text);
    let signon_page = signon::location(&r);
    assert!(
        signon_page.starts_with(&format!("{PUBLIC}/{env}/signon/?flowId=")),
        "{signon_page}"
    );
    assert_session_cookie(&r, &env);
    let flow_id = signon::flow_id_of(&signon_page);
    let flow = format!("/{env}/flows/{flow_id}");

    // Step 7: Get the flow.
    let r = signon::browser_get(&t, &mut jar, &flow).await;
    assert_eq!(r.status, StatusCode::OK, "step 7: {}", r.text);
    assert_flow(&r.body, &env, &flow_id, "USERNAME_PASSWORD_REQUIRED");
    assert_eq!(
        r.body["_links"]["usernamePassword.check"]["href"],
        format!("{PUBLIC}{flow}").as_str()
    );
    assert_eq!(
        r.body["_embedded"]["application"]["name"],
        "AppWithCodeGrant"
    );

    // Step 8: Submit login credentials.
    let r = signon::flow_action(
        &t,
        &mut jar,
        &flow,
        "usernamePassword.check",
        json!({ "username": "uc11.user", "password": PASSWORD }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "step 8: {}", r.text);
    assert_flow(&r.body, &env, &flow_id, "COMPLETED");
    assert_eq!(r.body["_embedded"]["user"]["id"], user.as_str());
    assert_eq!(r.body["_embedded"]["user"]["username"], "uc11.user");
    // The flow completed: the browser resumes the authorization request, which returns the code.
    let r = signon::browser_get(&t, &mut jar, r.body["resumeUrl"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::FOUND, "resume: {}", r.text);
    let back = signon::location(&r);
    assert!(back.starts_with("https://www.example.com?"), "{back}");
    let q = signon::query_of(&back);
    assert_eq!(q["state"], "uc11-state");
    let code = q.get("code").expect("a code").clone();

    // Step 9: Generate the access token.
    let r = signon::token_form(
        &t,
        &format!("/{env}/as/token"),
        Some((&app, &secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://www.example.com"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "step 9: {}", r.text);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    let scopes: Vec<&str> = r.body["scope"].as_str().unwrap().split(' ').collect();
    assert!(
        scopes.contains(&"openid") && scopes.contains(&"p1:read:user"),
        "{}",
        r.text
    );
    assert!(
        r.body.get("refresh_token").is_none(),
        "no REFRESH_TOKEN grant, no refresh token: {}",
        r.text
    );
    assert_eq!(r.headers["cache-control"], "no-store");
    let access_token = r.body["access_token"].as_str().unwrap().to_string();
    let at = signon::verify_jwt(&t, &env, &access_token, "https://api.pingone.com").await;
    assert_eq!(at["sub"], user.as_str());
    assert_eq!(at["client_id"], app.as_str());
    assert_eq!(at["env"], env.as_str());
    assert!(at["sid"].is_string() && at["org"].is_string(), "{at}");
    let id = signon::verify_jwt(&t, &env, r.body["id_token"].as_str().unwrap(), &app).await;
    assert_eq!(id["sub"], user.as_str());
    assert_eq!(id["nonce"], "uc11-nonce");
    assert_eq!(id["at_hash"], signon::half_hash(&access_token).as_str());
    assert_eq!(id["sid"], at["sid"]);
    assert_eq!(id["amr"], json!(["pwd"]));
    assert!(
        id["auth_time"].as_i64().is_some() && id["acr"].is_string(),
        "{id}"
    );

    Uc11 {
        t,
        env,
        user,
        access_token,
    }
}

#[tokio::test]
async fn uc11_application_with_an_authorization_code_grant() {
    for db in backends() {
        let uc = uc11_steps_1_to_9(db).await;
        // Step 10 (the user reads their own record with the token) runs in
        // `uc11_step10_user_reads_own_record`.
        assert!(!uc.access_token.is_empty());
    }
}

#[tokio::test]
async fn uc11_step10_user_reads_own_record() {
    for db in backends() {
        let uc = uc11_steps_1_to_9(db).await;
        // Step 10: Get user information with the user's own access token (p1:read:user).
        let r = signon::bearer_get(
            &uc.t,
            &path(&uc.env, &format!("/users/{}", uc.user)),
            &uc.access_token,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "step 10: {}", r.text);
        assert_eq!(r.body["id"], uc.user.as_str());
        assert_eq!(r.body["username"], "uc11.user");
        // p1:read:user is about the user's own record only.
        let other = signon::create_user(&uc.t, &uc.env, "someone.else").await;
        let r = signon::bearer_get(
            &uc.t,
            &path(&uc.env, &format!("/users/{other}")),
            &uc.access_token,
        )
        .await;
        assert!(
            r.status == StatusCode::FORBIDDEN || r.status == StatusCode::NOT_FOUND,
            "another user's record: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn uc12_single_page_application_with_an_implicit_grant() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;

        // Step 1: Create a single-page application.
        let r = t
            .post(
                &path(&env, "/applications"),
                json!({
                    "enabled": true, "name": "Single-Page-App", "description": "A Single Page App",
                    "type": "SINGLE_PAGE_APP", "protocol": "OPENID_CONNECT", "grantTypes": ["IMPLICIT"],
                    "redirectUris": ["https://www.google.com"], "responseTypes": ["TOKEN", "ID_TOKEN"],
                    "tokenEndpointAuthMethod": "NONE", "refreshTokenDuration": 86400, "refreshTokenRollingDuration": 86400,
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "step 1: {}", r.text);
        assert_eq!(r.body["type"], "SINGLE_PAGE_APP");
        assert_eq!(r.body["grantTypes"], json!(["IMPLICIT"]));
        assert_eq!(r.body["tokenEndpointAuthMethod"], "NONE");
        let app = r.id();

        // Step 2: Get the list of resources.
        let r = t.get(&path(&env, "/resources")).await;
        assert_eq!(r.status, StatusCode::OK, "step 2: {}", r.text);
        let resource = r.body["_embedded"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "PingOne API")
            .expect("PingOne API")["id"]
            .as_str()
            .unwrap()
            .to_string();

        // Step 3: Get all scopes.
        let r = t
            .get(&path(&env, &format!("/resources/{resource}/scopes")))
            .await;
        assert_eq!(r.status, StatusCode::OK, "step 3: {}", r.text);
        let read_user = r.body["_embedded"]["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "p1:read:user")
            .expect("p1:read:user")["id"]
            .clone();

        // Step 4: Create the application's resource access grant (and the profile scope of
        // the openid resource, for userinfo below).
        let r = t
            .post(
                &path(&env, &format!("/applications/{app}/grants")),
                json!({ "resource": { "id": resource }, "scopes": [{ "id": read_user }] }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "step 4: {}", r.text);
        signon::grant(&t, &env, &app, "openid", &["profile"]).await;

        // Step 5: Create a population.
        let r = t
            .post(
                &path(&env, "/populations"),
                json!({ "name": "SPA population", "description": "Users of the SPA" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "step 5: {}", r.text);
        let population = r.id();

        // Step 6: Create a user in that population.
        let r = t
            .post(
                &path(&env, "/users"),
                json!({ "email": "spa.user@example.com", "name": { "given": "Spa", "family": "User" }, "population": { "id": population }, "username": "spa.user" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "step 6: {}", r.text);
        assert_eq!(r.body["population"]["id"], population.as_str());
        let user = r.id();

        // Step 7: Set the user's password (POST, as the guide has it).
        let r = t
            .action(
                Method::POST,
                &path(&env, &format!("/users/{user}/password")),
                "application/vnd.pingidentity.password.set+json",
                Some(json!({ "value": PASSWORD, "forceChange": false })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "step 7: {}", r.text);

        // Step 8: Send the authorize request (POST, form-encoded).
        let mut jar = Jar::new();
        let r = signon::browser_form(
            &t,
            &mut jar,
            &format!("/{env}/as/authorize"),
            &[
                ("response_type", "token id_token"),
                ("client_id", &app),
                ("redirect_uri", "https://www.google.com"),
                ("scope", "openid profile p1:read:user"),
                ("nonce", "uc12-nonce-5f2b"),
                ("state", "uc12-state"),
            ],
        )
        .await;
        assert_eq!(r.status, StatusCode::FOUND, "step 8: {}", r.text);
        let page = signon::location(&r);
        assert!(
            page.starts_with(&format!("{PUBLIC}/{env}/signon/?flowId=")),
            "{page}"
        );
        assert_session_cookie(&r, &env);
        let flow_id = signon::flow_id_of(&page);
        let flow = format!("/{env}/flows/{flow_id}");

        // Step 9: Get the flow.
        let r = signon::browser_get(&t, &mut jar, &flow).await;
        assert_eq!(r.status, StatusCode::OK, "step 9: {}", r.text);
        assert_flow(&r.body, &env, &flow_id, "USERNAME_PASSWORD_REQUIRED");
        assert!(
            r.body["_links"]["usernamePassword.check"]["href"].is_string(),
            "{}",
            r.text
        );

        // Step 10: Submit login credentials.
        let r = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            json!({ "username": "spa.user", "password": PASSWORD }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "step 10: {}", r.text);
        assert_flow(&r.body, &env, &flow_id, "COMPLETED");
        assert_eq!(r.body["_embedded"]["user"]["id"], user.as_str());

        // Step 11: Call the resume endpoint: the tokens come back in the fragment.
        let r =
            signon::browser_get(&t, &mut jar, &format!("/{env}/as/resume?flowId={flow_id}")).await;
        assert_eq!(r.status, StatusCode::FOUND, "step 11: {}", r.text);
        let back = signon::location(&r);
        assert!(
            back.starts_with("https://www.google.com#"),
            "tokens never travel in the query: {back}"
        );
        let f = signon::fragment_of(&back);
        assert!(!f.contains_key("code"), "{back}");
        assert_eq!(f["token_type"], "Bearer");
        assert_eq!(f["expires_in"], "3600");
        assert_eq!(f["state"], "uc12-state");
        let scopes: Vec<&str> = f["scope"].split(' ').collect();
        for s in ["openid", "profile", "p1:read:user"] {
            assert!(scopes.contains(&s), "{s} in {}", f["scope"]);
        }
        let access_token = &f["access_token"];
        let id = signon::verify_jwt(&t, &env, &f["id_token"], &app).await;
        assert_eq!(id["sub"], user.as_str());
        assert_eq!(id["nonce"], "uc12-nonce-5f2b");
        assert_eq!(
            id["at_hash"],
            signon::half_hash(access_token).as_str(),
            "at_hash binds the ID token to the access token"
        );
        assert!(id.get("c_hash").is_none(), "{id}");
        let at = signon::verify_jwt(&t, &env, access_token, "https://api.pingone.com").await;
        assert_eq!(at["sub"], user.as_str());
        assert_eq!(at["client_id"], app.as_str());
        assert_eq!(at["sid"], id["sid"]);

        // The access token reads the user's claims at userinfo.
        let r = signon::bearer_get(&t, &format!("/{env}/as/userinfo"), access_token).await;
        assert_eq!(r.status, StatusCode::OK, "userinfo: {}", r.text);
        assert_eq!(r.body["sub"], user.as_str());
        assert_eq!(r.body["given_name"], "Spa");
        assert_eq!(r.body["preferred_username"], "spa.user");

        // The flow was consumed by the resume.
        let r =
            signon::browser_get(&t, &mut jar, &format!("/{env}/as/resume?flowId={flow_id}")).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "a second resume: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn uc03_pkce_authorization_workflow() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let user = signon::create_user(&t, &env, "pkce.user").await;

        // Step 1: Create the application connection (native app, S256 required).
        let r = t
            .post(
                &path(&env, "/applications"),
                json!({
                    "name": "UseCasePKCEApp", "description": "this is my use case PKCE application",
                    "pkceEnforcement": "S256_REQUIRED", "enabled": true, "type": "NATIVE_APP", "protocol": "OPENID_CONNECT",
                    "responseTypes": ["CODE", "TOKEN", "ID_TOKEN"], "grantTypes": ["AUTHORIZATION_CODE", "IMPLICIT"],
                    "tokenEndpointAuthMethod": "NONE",
                    "postLogoutRedirectUris": ["https://www.example.com"], "redirectUris": ["https://www.example.com"],
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "step 1: {}", r.text);
        assert_eq!(r.body["type"], "NATIVE_APP");
        assert_eq!(r.body["pkceEnforcement"], "S256_REQUIRED");
        assert_eq!(r.body["tokenEndpointAuthMethod"], "NONE");
        let app = r.id();

        // Step 2: Submit the authorize request with code_challenge and code_challenge_method.
        let (verifier, challenge) = signon::pkce_pair();
        let mut jar = Jar::new();
        let qs = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", app.as_str()),
            ("redirect_uri", "https://www.example.com"),
            ("scope", "openid"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .unwrap();
        let r = signon::browser_get(&t, &mut jar, &format!("/{env}/as/authorize?{qs}")).await;
        assert_eq!(r.status, StatusCode::FOUND, "step 2: {}", r.text);
        let page = signon::location(&r);
        assert!(
            page.starts_with(&format!("{PUBLIC}/{env}/signon/?flowId=")),
            "{page}"
        );
        assert_session_cookie(&r, &env);
        let flow_id = signon::flow_id_of(&page);
        let flow = format!("/{env}/flows/{flow_id}");

        // Step 3: Verify flow initialization.
        let r = signon::browser_get(&t, &mut jar, &flow).await;
        assert_eq!(r.status, StatusCode::OK, "step 3: {}", r.text);
        assert_flow(&r.body, &env, &flow_id, "USERNAME_PASSWORD_REQUIRED");

        // Step 4: Submit username and password.
        let r = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            json!({ "username": "pkce.user", "password": PASSWORD }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "step 4: {}", r.text);
        assert_flow(&r.body, &env, &flow_id, "COMPLETED");

        // Step 5: Call the resume endpoint.
        let r =
            signon::browser_get(&t, &mut jar, &format!("/{env}/as/resume?flowId={flow_id}")).await;
        assert_eq!(r.status, StatusCode::FOUND, "step 5: {}", r.text);
        let back = signon::location(&r);
        assert!(back.starts_with("https://www.example.com?code="), "{back}");
        let code = signon::query_of(&back)["code"].clone();

        // Step 6: Exchange the code with the code_verifier (public client: client_id only).
        let r = signon::token_form(
            &t,
            &format!("/{env}/as/token"),
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://www.example.com"),
                ("client_id", &app),
                ("code_verifier", &verifier),
            ],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "step 6: {}", r.text);
        assert_eq!(r.body["token_type"], "Bearer");
        assert_eq!(r.body["scope"], "openid");
        let id = signon::verify_jwt(&t, &env, r.body["id_token"].as_str().unwrap(), &app).await;
        assert_eq!(id["sub"], user.as_str());
        assert_eq!(
            id["at_hash"],
            signon::half_hash(r.body["access_token"].as_str().unwrap()).as_str()
        );
        assert!(id.get("nonce").is_none(), "no nonce was sent: {id}");
    }
}
