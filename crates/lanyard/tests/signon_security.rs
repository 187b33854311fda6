//! Sign-on under bad input and attack: every case is refused with the OAuth error (RFC 6749,
//! OIDC Core) or PingOne error body a client expects, and nothing is redirected to a URI
//! that is not registered.

mod common;

use axum::http::{Method, StatusCode};
use common::signon::{self, Jar, PASSWORD, PUBLIC};
use common::{Resp, TestApp, assert_error, backends};
use serde_json::{Value, json};

const CB: &str = "https://app.example.com/cb";

struct Ctx {
    t: TestApp,
    env: String,
    app: String,
    secret: String,
    user: String,
}

/// An environment with a user `alice` and a web app (code + refresh, Basic, profile granted).
async fn setup(db: Option<String>) -> Ctx {
    let t = TestApp::new(db).await;
    let env = t.new_env().await;
    let user = signon::create_user(&t, &env, "alice").await;
    let app = signon::create_app(&t, &env, signon::web_app_body("Web", CB)).await;
    signon::grant(&t, &env, &app, "openid", &["profile", "email"]).await;
    let secret = signon::app_secret(&t, &env, &app).await;
    Ctx {
        t,
        env,
        app,
        secret,
        user,
    }
}

fn code_params<'a>(app: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("response_type", "code"),
        ("client_id", app),
        ("redirect_uri", CB),
        ("scope", "openid profile"),
        ("state", "st-1"),
    ];
    p.extend_from_slice(extra);
    p
}

async fn authorize(c: &Ctx, jar: &mut Jar, params: &[(&str, &str)]) -> Resp {
    let qs = serde_urlencoded::to_string(params).unwrap();
    signon::browser_get(&c.t, jar, &format!("/{}/as/authorize?{qs}", c.env)).await
}

/// Signs alice on through a fresh authorize and returns the code.
async fn login_code(c: &Ctx, jar: &mut Jar, extra: &[(&str, &str)]) -> String {
    let back = signon::sign_on(&c.t, jar, &c.env, &code_params(&c.app, extra), "alice").await;
    assert!(back.starts_with(&format!("{CB}?")), "{back}");
    signon::query_of(&back)
        .get("code")
        .unwrap_or_else(|| panic!("no code: {back}"))
        .clone()
}

async fn exchange(c: &Ctx, code: &str) -> Resp {
    signon::token_form(
        &c.t,
        &format!("/{}/as/token", c.env),
        Some((&c.app, &c.secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
        ],
    )
    .await
}

async fn refresh(c: &Ctx, rt: &str) -> Resp {
    signon::token_form(
        &c.t,
        &format!("/{}/as/token", c.env),
        Some((&c.app, &c.secret)),
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}

async fn introspect(c: &Ctx, client: (&str, &str), token: &str) -> Resp {
    let r = signon::token_form(
        &c.t,
        &format!("/{}/as/introspect", c.env),
        Some(client),
        &[("token", token)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "introspect: {}", r.text);
    r
}

fn assert_oauth(r: &Resp, status: StatusCode, error: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["error"], error, "{}", r.text);
    assert!(r.body["error_description"].is_string(), "{}", r.text);
}

/// A redirect to the client carrying an OAuth error (in the query or the fragment).
fn assert_redirected_error(r: &Resp, prefix: &str, error: &str, fragment: bool) {
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    let loc = signon::location(r);
    assert!(loc.starts_with(prefix), "{loc}");
    let p = if fragment {
        signon::fragment_of(&loc)
    } else {
        signon::query_of(&loc)
    };
    assert_eq!(p.get("error").map(String::as_str), Some(error), "{loc}");
    assert!(p.contains_key("error_description"), "{loc}");
    assert_eq!(
        p.get("state").map(String::as_str),
        Some("st-1"),
        "state is echoed: {loc}"
    );
    assert!(
        !p.contains_key("code") && !p.contains_key("access_token"),
        "{loc}"
    );
}

/// A PingOne error answered to the user agent itself, never redirected.
fn assert_not_redirected(r: &Resp) {
    assert!(
        r.headers.get("location").is_none(),
        "must not redirect: {:?}",
        r.headers
    );
    assert_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some("INVALID_VALUE"),
    );
}

#[tokio::test]
async fn untrusted_clients_and_redirect_uris_are_never_redirected_to() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let unknown = uuid::Uuid::new_v4().to_string();
        // Unknown client.
        let r = authorize(&c, &mut jar, &code_params(&unknown, &[])).await;
        assert_not_redirected(&r);
        assert_eq!(r.body["details"][0]["target"], "client_id", "{}", r.text);
        // No client at all.
        let r = authorize(
            &c,
            &mut jar,
            &[("response_type", "code"), ("redirect_uri", CB)],
        )
        .await;
        assert_not_redirected(&r);
        // A client of another environment.
        let other_env = c.t.new_env().await;
        let r = signon::browser_get(
            &c.t,
            &mut jar,
            &format!(
                "/{other_env}/as/authorize?{}",
                serde_urlencoded::to_string(code_params(&c.app, &[])).unwrap()
            ),
        )
        .await;
        assert_not_redirected(&r);
        // A redirect URI that is not registered, or only a prefix/extension of one.
        for bad in [
            "https://evil.example.com/cb",
            "https://app.example.com/cb/../evil",
            "https://app.example.com/cb?x=1",
            "https://app.example.com/c",
        ] {
            let mut p = code_params(&c.app, &[]);
            p.retain(|(k, _)| *k != "redirect_uri");
            p.push(("redirect_uri", bad));
            let r = authorize(&c, &mut jar, &p).await;
            assert_not_redirected(&r);
            assert_eq!(
                r.body["details"][0]["target"], "redirect_uri",
                "{bad}: {}",
                r.text
            );
        }
        // A missing redirect URI outside pi.flow.
        let r = authorize(
            &c,
            &mut jar,
            &[
                ("response_type", "code"),
                ("client_id", &c.app),
                ("scope", "openid"),
            ],
        )
        .await;
        assert_not_redirected(&r);
        // A disabled application.
        let mut disabled = signon::web_app_body("Web", CB);
        disabled["enabled"] = json!(false);
        let r =
            c.t.put(
                &TestApp::env_path(&c.env, &format!("/applications/{}", c.app)),
                disabled,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = authorize(&c, &mut jar, &code_params(&c.app, &[])).await;
        assert_not_redirected(&r);
        // An unknown environment.
        let r = signon::browser_get(
            &c.t,
            &mut jar,
            &format!("/{}/as/authorize?client_id={}", uuid::Uuid::new_v4(), c.app),
        )
        .await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND", None);
    }
}

#[tokio::test]
async fn request_errors_after_the_redirect_uri_go_back_to_the_client() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        // The web app has no implicit grant: response_type=token is refused, in the fragment.
        let mut p = code_params(&c.app, &[("nonce", "n")]);
        p[0] = ("response_type", "token");
        let r = authorize(&c, &mut jar, &p).await;
        assert_redirected_error(&r, &format!("{CB}#"), "unsupported_response_type", true);
        // An unknown response type.
        p[0] = ("response_type", "bogus");
        let r = authorize(&c, &mut jar, &p).await;
        assert_redirected_error(&r, &format!("{CB}?"), "unsupported_response_type", false);
        // A scope that is not granted.
        let mut p = code_params(&c.app, &[]);
        p[3] = ("scope", "openid phone");
        let r = authorize(&c, &mut jar, &p).await;
        assert_redirected_error(&r, &format!("{CB}?"), "invalid_scope", false);
        // An unknown prompt value.
        let r = authorize(
            &c,
            &mut jar,
            &code_params(&c.app, &[("prompt", "sideways")]),
        )
        .await;
        assert_redirected_error(&r, &format!("{CB}?"), "invalid_request", false);

        // Implicit and hybrid ID tokens need a nonce (OIDC Core 3.2.2.1).
        let spa = signon::create_app(
            &c.t,
            &c.env,
            json!({
                "name": "SPA", "enabled": true, "type": "SINGLE_PAGE_APP", "protocol": "OPENID_CONNECT",
                "grantTypes": ["IMPLICIT"], "responseTypes": ["TOKEN", "ID_TOKEN"], "tokenEndpointAuthMethod": "NONE",
                "redirectUris": ["https://spa.example.com/"],
            }),
        )
        .await;
        let base = [
            ("client_id", spa.as_str()),
            ("redirect_uri", "https://spa.example.com/"),
            ("scope", "openid"),
            ("state", "st-1"),
        ];
        for rt in ["token id_token", "id_token"] {
            let mut p = base.to_vec();
            p.push(("response_type", rt));
            let r = authorize(&c, &mut jar, &p).await;
            assert_redirected_error(&r, "https://spa.example.com/#", "invalid_request", true);
        }
        // Tokens are never put in a query string.
        let mut p = base.to_vec();
        p.extend([
            ("response_type", "token id_token"),
            ("nonce", "n"),
            ("response_mode", "query"),
        ]);
        let r = authorize(&c, &mut jar, &p).await;
        assert_redirected_error(&r, "https://spa.example.com/#", "invalid_request", true);
        // The SPA has no code grant.
        let mut p = base.to_vec();
        p.push(("response_type", "code"));
        let r = authorize(&c, &mut jar, &p).await;
        assert_redirected_error(
            &r,
            "https://spa.example.com/?",
            "unsupported_response_type",
            false,
        );
    }
}

#[tokio::test]
async fn pkce_downgrades_and_wrong_verifiers_are_refused() {
    for db in backends() {
        let c = setup(db).await;
        let native = signon::create_app(
            &c.t,
            &c.env,
            json!({
                "name": "Native", "enabled": true, "type": "NATIVE_APP", "protocol": "OPENID_CONNECT",
                "grantTypes": ["AUTHORIZATION_CODE"], "responseTypes": ["CODE"], "tokenEndpointAuthMethod": "NONE",
                "pkceEnforcement": "S256_REQUIRED", "redirectUris": [CB],
            }),
        )
        .await;
        signon::grant(&c.t, &c.env, &native, "openid", &["profile"]).await;
        let mut jar = Jar::new();
        let (verifier, challenge) = signon::pkce_pair();
        // No challenge, a plain challenge, and a challenge without a method (defaults to plain).
        for extra in [
            vec![],
            vec![
                ("code_challenge", verifier.as_str()),
                ("code_challenge_method", "plain"),
            ],
            vec![("code_challenge", verifier.as_str())],
        ] {
            let r = authorize(&c, &mut jar, &code_params(&native, &extra)).await;
            assert_redirected_error(&r, &format!("{CB}?"), "invalid_request", false);
        }
        // S256 goes through.
        let back = signon::sign_on(
            &c.t,
            &mut jar,
            &c.env,
            &code_params(
                &native,
                &[
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                ],
            ),
            "alice",
        )
        .await;
        let code = signon::query_of(&back)["code"].clone();
        let token = |v: Option<String>| {
            let mut f = vec![
                ("grant_type", "authorization_code".to_string()),
                ("code", code.clone()),
                ("redirect_uri", CB.to_string()),
                ("client_id", native.clone()),
            ];
            if let Some(v) = v {
                f.push(("code_verifier", v));
            }
            let url = format!("/{}/as/token", c.env);
            let t = &c.t;
            async move {
                let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
                signon::token_form(t, &url, None, &f).await
            }
        };
        // A wrong verifier, the challenge itself (a plain downgrade), and no verifier.
        let (other, _) = signon::pkce_pair();
        for v in [Some(other.clone()), Some(challenge.clone()), None] {
            let r = token(v).await;
            assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_grant");
        }
        let r = token(Some(verifier.clone())).await;
        assert_eq!(r.status, StatusCode::OK, "the right verifier: {}", r.text);
        assert!(r.body["access_token"].is_string());
    }
}

#[tokio::test]
async fn client_authentication_failures_are_invalid_client() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let code = login_code(&c, &mut jar, &[]).await;
        let url = format!("/{}/as/token", c.env);
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CB),
        ];
        // Wrong secret.
        let r = signon::token_form(&c.t, &url, Some((&c.app, "not-the-secret")), &form).await;
        assert_oauth(&r, StatusCode::UNAUTHORIZED, "invalid_client");
        assert!(
            r.headers.get("www-authenticate").is_some(),
            "{:?}",
            r.headers
        );
        // Unknown client.
        let r = signon::token_form(
            &c.t,
            &url,
            Some((&uuid::Uuid::new_v4().to_string(), &c.secret)),
            &form,
        )
        .await;
        assert_oauth(&r, StatusCode::UNAUTHORIZED, "invalid_client");
        // The right secret by the wrong method (the app is CLIENT_SECRET_BASIC).
        let mut post = form.to_vec();
        post.extend([
            ("client_id", c.app.as_str()),
            ("client_secret", c.secret.as_str()),
        ]);
        let r = signon::token_form(&c.t, &url, None, &post).await;
        assert_oauth(&r, StatusCode::UNAUTHORIZED, "invalid_client");
        // No authentication at all for a confidential client.
        let mut none = form.to_vec();
        none.push(("client_id", c.app.as_str()));
        let r = signon::token_form(&c.t, &url, None, &none).await;
        assert_oauth(&r, StatusCode::UNAUTHORIZED, "invalid_client");
        // None of that burned the code.
        let r = exchange(&c, &code).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        // An unknown grant type.
        let r = signon::token_form(
            &c.t,
            &url,
            Some((&c.app, &c.secret)),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
        assert_oauth(&r, StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let code = login_code(&c, &mut jar, &[]).await;
        let first = exchange(&c, &code).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);
        let at = first.body["access_token"].as_str().unwrap().to_string();
        let rt = first.body["refresh_token"]
            .as_str()
            .expect("a refresh token")
            .to_string();
        assert_eq!(
            signon::bearer_get(&c.t, &format!("/{}/as/userinfo", c.env), &at)
                .await
                .status,
            StatusCode::OK
        );
        // The replay fails…
        let second = exchange(&c, &code).await;
        assert_oauth(&second, StatusCode::BAD_REQUEST, "invalid_grant");
        // …and the tokens of the first exchange stop working (RFC 6749 §4.1.2).
        let r = refresh(&c, &rt).await;
        assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_grant");
        let r = signon::bearer_get(&c.t, &format!("/{}/as/userinfo", c.env), &at).await;
        assert_oauth(&r, StatusCode::UNAUTHORIZED, "invalid_token");
        assert_eq!(
            introspect(&c, (&c.app, &c.secret), &at).await.body,
            json!({ "active": false })
        );
        // A made-up code.
        let r = exchange(&c, "not-a-code").await;
        assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_grant");
    }
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_redirect_uri() {
    for db in backends() {
        let c = setup(db).await;
        let other = signon::create_app(&c.t, &c.env, signon::web_app_body("Other", CB)).await;
        signon::grant(&c.t, &c.env, &other, "openid", &["profile"]).await;
        let other_secret = signon::app_secret(&c.t, &c.env, &other).await;
        let mut jar = Jar::new();
        let code = login_code(&c, &mut jar, &[]).await;
        let url = format!("/{}/as/token", c.env);
        // Another client presents the code.
        let r = signon::token_form(
            &c.t,
            &url,
            Some((&other, &other_secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
            ],
        )
        .await;
        assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_grant");
        // The right client with another redirect URI, or none.
        let r = signon::token_form(
            &c.t,
            &url,
            Some((&c.app, &c.secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://app.example.com/other"),
            ],
        )
        .await;
        assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_grant");
        let r = signon::token_form(
            &c.t,
            &url,
            Some((&c.app, &c.secret)),
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
        .await;
        assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_grant");
        // The code of another environment's token endpoint.
        let env2 = c.t.new_env().await;
        let r = signon::token_form(
            &c.t,
            &format!("/{env2}/as/token"),
            Some((&c.app, &c.secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
            ],
        )
        .await;
        assert_oauth(&r, StatusCode::UNAUTHORIZED, "invalid_client");
        // A code_verifier for a code that had no code_challenge (a PKCE downgrade probe).
        let (verifier, _) = signon::pkce_pair();
        let r = signon::token_form(
            &c.t,
            &url,
            Some((&c.app, &c.secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await;
        assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_grant");
        // The rightful exchange still works.
        let r = exchange(&c, &code).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
}

#[tokio::test]
async fn a_replayed_refresh_token_revokes_its_family() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let code = login_code(&c, &mut jar, &[]).await;
        let r = exchange(&c, &code).await;
        let rt1 = r.body["refresh_token"].as_str().unwrap().to_string();
        // Rotation: each use gives a new refresh token (and a new ID token for openid).
        let r = refresh(&c, &rt1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let rt2 = r.body["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(rt1, rt2);
        let id = signon::verify_jwt(
            &c.t,
            &c.env,
            r.body["id_token"].as_str().expect("an ID token on refresh"),
            &c.app,
        )
        .await;
        assert_eq!(id["sub"], c.user.as_str());
        assert_eq!(
            id["at_hash"],
            signon::half_hash(r.body["access_token"].as_str().unwrap()).as_str()
        );
        // Another client cannot use it.
        let other = signon::create_app(&c.t, &c.env, signon::web_app_body("Other", CB)).await;
        let other_secret = signon::app_secret(&c.t, &c.env, &other).await;
        let r = signon::token_form(
            &c.t,
            &format!("/{}/as/token", c.env),
            Some((&other, &other_secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", &rt2)],
        )
        .await;
        assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_grant");
        // A wider scope than granted originally.
        let r = signon::token_form(
            &c.t,
            &format!("/{}/as/token", c.env),
            Some((&c.app, &c.secret)),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt2),
                ("scope", "openid profile email"),
            ],
        )
        .await;
        assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_scope");
        // The replay of the first token fails and revokes the family: the current one dies too.
        let r = refresh(&c, &rt1).await;
        assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_grant");
        let r = refresh(&c, &rt2).await;
        assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_grant");
        assert_eq!(
            introspect(&c, (&c.app, &c.secret), &rt2).await.body["active"],
            false
        );
    }
}

#[tokio::test]
async fn flow_calls_are_guarded() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let r = authorize(&c, &mut jar, &code_params(&c.app, &[])).await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
        let flow_id = signon::flow_id_of(&signon::location(&r));
        let flow = format!("/{}/flows/{flow_id}", c.env);
        let creds = json!({ "username": "alice", "password": PASSWORD });

        // A wrong content type: 415.
        let headers = [
            ("content-type", "application/json".to_string()),
            ("cookie", jar.header().unwrap()),
        ];
        let r = signon::call(
            &c.t,
            Method::POST,
            &flow,
            &headers,
            Some(creds.to_string().into_bytes()),
        )
        .await;
        assert_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "INVALID_REQUEST",
            None,
        );
        // An action the flow does not offer in its status: 400.
        let r = signon::flow_action(
            &c.t,
            &mut jar,
            &flow,
            "password.reset",
            json!({ "currentPassword": PASSWORD, "newPassword": "Another-Passw0rd!" }),
        )
        .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None);
        let r = signon::flow_action(
            &c.t,
            &mut jar,
            &flow,
            "otp.check",
            json!({ "otp": "123456" }),
        )
        .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None);
        // A body that is not a JSON object, and missing fields.
        let r = signon::flow_action(
            &c.t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            json!(["alice"]),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        let r = signon::flow_action(
            &c.t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            json!({ "username": "alice" }),
        )
        .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("REQUIRED_VALUE"),
        );
        // The flow id under another environment: 404.
        let env2 = c.t.new_env().await;
        let r =
            signon::browser_get(&c.t, &mut jar.clone(), &format!("/{env2}/flows/{flow_id}")).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND", None);
        let r = signon::flow_action(
            &c.t,
            &mut jar.clone(),
            &format!("/{env2}/flows/{flow_id}"),
            "usernamePassword.check",
            creds.clone(),
        )
        .await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND", None);
        // Unknown and malformed flow ids: 404.
        for id in [uuid::Uuid::new_v4().to_string(), "not-a-flow".to_string()] {
            let r = signon::browser_get(&c.t, &mut jar.clone(), &format!("/{}/flows/{id}", c.env))
                .await;
            assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND", None);
        }
        // Without the flow's ST cookie, or with another browser's: refused.
        let mut stranger = Jar::new();
        let r = signon::browser_get(&c.t, &mut stranger, &flow).await;
        assert_error(&r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None);
        let r = signon::flow_action(
            &c.t,
            &mut stranger,
            &flow,
            "usernamePassword.check",
            creds.clone(),
        )
        .await;
        assert_error(&r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None);
        let r = authorize(&c, &mut stranger, &code_params(&c.app, &[])).await; // the stranger's own session
        assert_eq!(r.status, StatusCode::FOUND);
        assert!(stranger.get("ST").is_some() && stranger.get("ST") != jar.get("ST"));
        let r = signon::browser_get(&c.t, &mut stranger.clone(), &flow).await;
        assert_error(&r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None);
        let r = signon::flow_action(
            &c.t,
            &mut stranger.clone(),
            &flow,
            "usernamePassword.check",
            creds.clone(),
        )
        .await;
        assert_error(&r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None);
        let r = signon::browser_get(
            &c.t,
            &mut stranger.clone(),
            &format!("/{}/as/resume?flowId={flow_id}", c.env),
        )
        .await;
        assert_error(&r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None);
        let mut forged = Jar::new();
        forged.set("ST", &uuid::Uuid::new_v4().to_string());
        let r = signon::browser_get(&c.t, &mut forged, &flow).await;
        assert_error(&r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None);

        // Resuming before the flow is complete sends the browser back to the sign-on page.
        let r = signon::browser_get(
            &c.t,
            &mut jar,
            &format!("/{}/as/resume?flowId={flow_id}", c.env),
        )
        .await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
        assert!(
            signon::location(&r).contains(&format!("/signon/?flowId={flow_id}")),
            "{}",
            signon::location(&r)
        );
        // The owner completes it; the completed flow takes no more actions.
        let r = signon::flow_action(
            &c.t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            creds.clone(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["status"], "COMPLETED");
        let r = signon::flow_action(
            &c.t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            creds.clone(),
        )
        .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None);
        // Resume needs its flowId.
        let r = signon::browser_get(&c.t, &mut jar, &format!("/{}/as/resume", c.env)).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None);
    }
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_the_same_answer() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let r = authorize(&c, &mut jar, &code_params(&c.app, &[])).await;
        let flow = format!(
            "/{}/flows/{}",
            c.env,
            signon::flow_id_of(&signon::location(&r))
        );
        let strip = |r: &Resp| {
            let mut b = r.body.clone();
            b.as_object_mut().unwrap().remove("id");
            b
        };
        let wrong_password = signon::flow_action(
            &c.t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            json!({ "username": "alice", "password": "Wrong-Passw0rd!" }),
        )
        .await;
        let unknown_user = signon::flow_action(
            &c.t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            json!({ "username": "nobody", "password": "Wrong-Passw0rd!" }),
        )
        .await;
        for r in [&wrong_password, &unknown_user] {
            assert_error(
                r,
                StatusCode::BAD_REQUEST,
                "INVALID_DATA",
                Some("INVALID_VALUE"),
            );
            assert_eq!(r.body["details"][0]["target"], "username", "{}", r.text);
            assert_eq!(
                r.body["details"][0]["message"], "Invalid username and/or password.",
                "{}",
                r.text
            );
        }
        assert_eq!(
            strip(&wrong_password),
            strip(&unknown_user),
            "nothing tells an unknown user from a wrong password"
        );
        // The flow still waits for credentials, and the right ones work.
        let r = signon::browser_get(&c.t, &mut jar, &flow).await;
        assert_eq!(r.body["status"], "USERNAME_PASSWORD_REQUIRED", "{}", r.text);
        assert!(
            r.body["_embedded"].get("user").is_none(),
            "no user is revealed: {}",
            r.text
        );
        let r = signon::flow_action(
            &c.t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            json!({ "username": "alice", "password": PASSWORD }),
        )
        .await;
        assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);
        assert_eq!(r.body["_embedded"]["user"]["id"], c.user.as_str());
    }
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let r = authorize(&c, &mut jar, &code_params(&c.app, &[("prompt", "none")])).await;
        assert_redirected_error(&r, &format!("{CB}?"), "login_required", false);
        // prompt=none cannot be combined with other values.
        let r = authorize(
            &c,
            &mut jar,
            &code_params(&c.app, &[("prompt", "none login")]),
        )
        .await;
        assert_redirected_error(&r, &format!("{CB}?"), "invalid_request", false);
    }
}

/// Over https the session cookie comes twice, as PingOne sets it: `ST` (`Secure;
/// SameSite=None`) and its twin `ST-NO-SS` (no SameSite, for browsers that mishandle `None`). A
/// browser that kept only the twin is still recognised, and signoff deletes both.
#[tokio::test]
async fn https_sets_the_session_cookie_and_its_twin() {
    for db in backends() {
        let t = TestApp::with_public_url(db, "https://lanyard.test").await;
        let env = t.new_env().await;
        signon::create_user(&t, &env, "alice").await;
        let app = signon::create_app(&t, &env, signon::web_app_body("Web", CB)).await;
        signon::grant(&t, &env, &app, "openid", &["profile"]).await;
        let mut jar = Jar::new();
        let a = signon::browser_get(
            &t,
            &mut jar,
            &format!("/{env}/as/authorize?client_id={app}&response_type=code&scope=openid&redirect_uri={CB}&response_mode=pi.flow"),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        let set: Vec<String> = a
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        let named = |n: &str| {
            set.iter()
                .find(|c| c.starts_with(&format!("{n}=")))
                .unwrap_or_else(|| panic!("{n} in {set:?}"))
                .clone()
        };
        let (st, twin) = (named("ST"), named("ST-NO-SS"));
        for c in [&st, &twin] {
            assert!(c.contains("Secure") && c.contains("HttpOnly"), "{c}");
            assert!(c.contains(&format!("Path=/{env}")), "{c}");
        }
        assert!(st.contains("SameSite=None"), "{st}");
        assert!(!twin.contains("SameSite"), "{twin}");
        assert_eq!(jar.get("ST"), jar.get("ST-NO-SS"), "the same value");

        // A browser that kept only the twin.
        let mut old = Jar::new();
        old.set("ST-NO-SS", jar.get("ST-NO-SS").unwrap());
        let flow = a.body["id"].as_str().unwrap();
        let f = signon::flow_action(
            &t,
            &mut old,
            &format!("/{env}/flows/{flow}"),
            "usernamePassword.check",
            json!({ "username": "alice", "password": PASSWORD }),
        )
        .await;
        assert_eq!(f.body["status"], "COMPLETED", "{}", f.text);
        let r = signon::browser_get(&t, &mut old, &format!("/{env}/as/resume?flowId={flow}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(
            r.body["authorizeResponse"]["code"].is_string(),
            "{}",
            r.text
        );

        let r = signon::sign_off(&t, &mut old, &format!("/{env}/as/signoff")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let cleared: Vec<&str> = r
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        for n in ["ST", "ST-NO-SS"] {
            assert!(
                cleared
                    .iter()
                    .any(|c| c.starts_with(&format!("{n}=;")) && c.contains("Max-Age=0")),
                "{n} deleted: {cleared:?}"
            );
        }
        assert!(old.is_empty(), "{old:?}");
    }
}

/// Session fixation: a cookie planted in a browser before the sign-on (here: the anonymous
/// cookie the browser got at its first authorize, which an attacker could have obtained the
/// same way) is worth nothing afterwards, because signing on replaces the cookie. The browser's
/// other flows, bound to the cookie it had, stay usable.
#[tokio::test]
async fn signing_on_replaces_the_session_cookie() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let pi = code_params(&c.app, &[("response_mode", "pi.flow")]);
        let first = authorize(&c, &mut jar, &pi).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);
        let planted = jar.get("ST").expect("an ST cookie").to_string();
        let mut attacker = Jar::new();
        attacker.set("ST", &planted);
        // A second tab of the same browser: the same session, another flow.
        let second = authorize(&c, &mut jar, &pi).await;
        assert_eq!(jar.get("ST"), Some(planted.as_str()));
        let flow = |b: &Resp| format!("/{}/flows/{}", c.env, b.body["id"].as_str().unwrap());

        let f = signon::flow_action(
            &c.t,
            &mut jar,
            &flow(&first),
            "usernamePassword.check",
            json!({ "username": "alice", "password": signon::PASSWORD }),
        )
        .await;
        assert_eq!(f.body["status"], "COMPLETED", "{}", f.text);
        let r = signon::browser_get(&c.t, &mut jar, f.body["resumeUrl"].as_str().unwrap()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(
            r.body["authorizeResponse"]["code"].is_string(),
            "{}",
            r.text
        );
        let now = jar.get("ST").expect("still a cookie").to_string();
        assert_ne!(now, planted, "the sign-on replaced the cookie");

        // The planted cookie signs no one in.
        let r = authorize(
            &c,
            &mut attacker,
            &code_params(&c.app, &[("prompt", "none")]),
        )
        .await;
        assert_redirected_error(&r, &format!("{CB}?"), "login_required", false);
        // The browser's other tab goes on with the new cookie; the browser has single sign-on.
        let r = signon::browser_get(&c.t, &mut jar, &flow(&second)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = authorize(&c, &mut jar, &code_params(&c.app, &[("prompt", "none")])).await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
        assert!(signon::query_of(&signon::location(&r)).contains_key("code"));
        // Single sign-on keeps the cookie (the user did not change).
        assert_eq!(jar.get("ST"), Some(now.as_str()));
    }
}

#[tokio::test]
async fn single_sign_on_prompt_login_max_age_and_signoff() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let code = login_code(&c, &mut jar, &[]).await;
        let first = exchange(&c, &code).await;
        let sid = signon::claims_of(first.body["id_token"].as_str().unwrap())["sid"].clone();
        let auth_time =
            signon::claims_of(first.body["id_token"].as_str().unwrap())["auth_time"].clone();

        // A second authorize with the same ST cookie completes without a login.
        for extra in [vec![], vec![("prompt", "none")]] {
            let r = authorize(&c, &mut jar, &code_params(&c.app, &extra)).await;
            assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
            let back = signon::location(&r);
            assert!(
                back.starts_with(&format!("{CB}?")),
                "straight back to the client: {back}"
            );
            let q = signon::query_of(&back);
            assert_eq!(q["state"], "st-1");
            let r = exchange(&c, &q["code"]).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            let id = signon::verify_jwt(&c.t, &c.env, r.body["id_token"].as_str().unwrap(), &c.app)
                .await;
            assert_eq!(id["sid"], sid, "the same session");
            assert_eq!(id["auth_time"], auth_time, "no new authentication");
        }
        // Another application of the environment shares the session.
        let other = signon::create_app(
            &c.t,
            &c.env,
            signon::web_app_body("Other", "https://other.example.com/cb"),
        )
        .await;
        let r = authorize(
            &c,
            &mut jar,
            &[
                ("response_type", "code"),
                ("client_id", &other),
                ("redirect_uri", "https://other.example.com/cb"),
                ("scope", "openid"),
            ],
        )
        .await;
        assert!(
            signon::location(&r).starts_with("https://other.example.com/cb?code="),
            "{}",
            signon::location(&r)
        );

        // prompt=login and max_age=0 force the password again.
        for extra in [("prompt", "login"), ("max_age", "0")] {
            let r = authorize(&c, &mut jar, &code_params(&c.app, &[extra])).await;
            assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
            let page = signon::location(&r);
            assert!(
                page.starts_with(&format!("{PUBLIC}/{}/signon/?flowId=", c.env)),
                "{extra:?} needs a login: {page}"
            );
            let flow = format!("/{}/flows/{}", c.env, signon::flow_id_of(&page));
            let r = signon::browser_get(&c.t, &mut jar, &flow).await;
            assert_eq!(r.body["status"], "USERNAME_PASSWORD_REQUIRED", "{}", r.text);
        }

        // Signoff ends the session: even a browser that kept the old cookie must sign on again.
        let kept = jar.clone();
        let r = signon::sign_off(
            &c.t,
            &mut jar,
            &format!(
                "/{}/as/signoff?post_logout_redirect_uri={CB}/logout&state=bye",
                c.env
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
        assert_eq!(signon::location(&r), format!("{CB}/logout?state=bye"));
        assert!(jar.get("ST").is_none(), "the cookie is cleared");
        for mut j in [kept.clone(), jar.clone()] {
            let r = authorize(&c, &mut j, &code_params(&c.app, &[])).await;
            assert!(
                signon::location(&r).contains("/signon/?flowId="),
                "a login again: {}",
                signon::location(&r)
            );
            let r = authorize(
                &c,
                &mut kept.clone(),
                &code_params(&c.app, &[("prompt", "none")]),
            )
            .await;
            assert_redirected_error(&r, &format!("{CB}?"), "login_required", false);
        }
        // A post-logout URI that is not registered is not redirected to.
        let r = signon::browser_get(
            &c.t,
            &mut jar,
            &format!(
                "/{}/as/signoff?post_logout_redirect_uri=https://evil.example.com/",
                c.env
            ),
        )
        .await;
        assert!(r.headers.get("location").is_none(), "{:?}", r.headers);
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    }
}

#[tokio::test]
async fn introspection_and_revocation() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let code = login_code(&c, &mut jar, &[]).await;
        let r = exchange(&c, &code).await;
        let at = r.body["access_token"].as_str().unwrap().to_string();
        let rt = r.body["refresh_token"].as_str().unwrap().to_string();
        let me = (c.app.as_str(), c.secret.as_str());

        // Active for the client's own tokens, with their claims.
        let r = introspect(&c, me, &at).await;
        assert_eq!(r.body["active"], true, "{}", r.text);
        assert_eq!(r.body["sub"], c.user.as_str());
        assert_eq!(r.body["client_id"], c.app.as_str());
        assert_eq!(r.body["iss"], format!("{PUBLIC}/{}/as", c.env).as_str());
        assert!(
            r.body["scope"].as_str().unwrap().contains("openid"),
            "{}",
            r.text
        );
        assert!(r.body["exp"].is_i64(), "{}", r.text);
        let r = introspect(&c, me, &rt).await;
        assert_eq!(r.body["active"], true, "{}", r.text);
        assert_eq!(r.body["sub"], c.user.as_str());
        // Another client learns nothing about them.
        let other = signon::create_app(&c.t, &c.env, signon::web_app_body("Other", CB)).await;
        let other_secret = signon::app_secret(&c.t, &c.env, &other).await;
        for tok in [&at, &rt] {
            assert_eq!(
                introspect(&c, (&other, &other_secret), tok).await.body,
                json!({ "active": false })
            );
        }
        // Garbage is simply inactive; bad client credentials are invalid_client.
        assert_eq!(
            introspect(&c, me, "garbage").await.body,
            json!({ "active": false })
        );
        let r = signon::token_form(
            &c.t,
            &format!("/{}/as/introspect", c.env),
            Some((&c.app, "wrong")),
            &[("token", &at)],
        )
        .await;
        assert_oauth(&r, StatusCode::UNAUTHORIZED, "invalid_client");

        // Another client cannot revoke them (RFC 7009: still 200, nothing happens).
        let revoke = |client: (&str, &str), token: &str| {
            let url = format!("/{}/as/revoke", c.env);
            let (id, secret) = (client.0.to_string(), client.1.to_string());
            let token = token.to_string();
            let t = &c.t;
            async move { signon::token_form(t, &url, Some((&id, &secret)), &[("token", &token)]).await }
        };
        assert_eq!(
            revoke((&other, &other_secret), &at).await.status,
            StatusCode::OK
        );
        assert_eq!(introspect(&c, me, &at).await.body["active"], true);
        // The owner revokes: inactive, and refused where used.
        assert_eq!(revoke(me, &at).await.status, StatusCode::OK);
        assert_eq!(
            introspect(&c, me, &at).await.body,
            json!({ "active": false })
        );
        assert_eq!(revoke(me, &rt).await.status, StatusCode::OK);
        assert_eq!(
            introspect(&c, me, &rt).await.body,
            json!({ "active": false })
        );
        assert_oauth(
            &refresh(&c, &rt).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        );
        // Revoking an unknown token is not an error.
        assert_eq!(revoke(me, "unknown-token").await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn userinfo_refuses_bad_tokens() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let code = login_code(&c, &mut jar, &[]).await;
        let r = exchange(&c, &code).await;
        let at = r.body["access_token"].as_str().unwrap().to_string();
        let url = format!("/{}/as/userinfo", c.env);

        let r = signon::bearer_get(&c.t, &url, &at).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["sub"], c.user.as_str());
        assert_eq!(r.body["preferred_username"], "alice");
        assert!(
            r.body.get("email").is_none(),
            "email was not asked for: {}",
            r.text
        );
        // POST works the same.
        let r = signon::call(
            &c.t,
            Method::POST,
            &url,
            &[("authorization", format!("Bearer {at}"))],
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);

        // An expired token, signed by the environment's own key.
        let key =
            c.t.app
                .keys
                .default_key(&c.t.app.store, &c.t.app.master, &c.env)
                .await
                .unwrap()
                .unwrap();
        let mut claims: Value = signon::claims_of(&at);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        claims["iat"] = json!(now - 7200);
        claims["exp"] = json!(now - 3600);
        claims["jti"] = json!(uuid::Uuid::new_v4().to_string());
        let expired = key.sign(&claims);
        // A token with a forged signature (claims of a live token, signature of another).
        let mut parts: Vec<&str> = at.split('.').collect();
        let expired_sig = expired.split('.').nth(2).unwrap().to_string();
        parts[2] = &expired_sig;
        let forged = parts.join(".");
        // A token of another environment.
        let env2 = c.t.new_env().await;
        let key2 =
            c.t.app
                .keys
                .default_key(&c.t.app.store, &c.t.app.master, &env2)
                .await
                .unwrap()
                .unwrap();
        let mut foreign_claims = signon::claims_of(&at);
        foreign_claims["iss"] = json!(format!("{PUBLIC}/{env2}/as"));
        let foreign = key2.sign(&foreign_claims);
        // A client_credentials token carries no user.
        let worker =
            c.t.client_token(
                &c.t.admin_env,
                common::ADMIN_CLIENT_ID,
                common::ADMIN_CLIENT_SECRET,
            )
            .await;
        for (what, token) in [
            ("expired", expired.as_str()),
            ("garbage", "garbage"),
            ("forged", forged.as_str()),
            ("foreign", foreign.as_str()),
            ("worker", worker.as_str()),
        ] {
            let r = signon::bearer_get(&c.t, &url, token).await;
            assert_oauth(&r, StatusCode::UNAUTHORIZED, "invalid_token");
            let challenge = r
                .headers
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            assert!(
                challenge.starts_with("Bearer") && challenge.contains("invalid_token"),
                "{what}: {challenge}"
            );
        }
        // No token at all.
        let r = signon::call(&c.t, Method::GET, &url, &[], None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
        // Revoked.
        let r = signon::token_form(
            &c.t,
            &format!("/{}/as/revoke", c.env),
            Some((&c.app, &c.secret)),
            &[("token", &at)],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = signon::bearer_get(&c.t, &url, &at).await;
        assert_oauth(&r, StatusCode::UNAUTHORIZED, "invalid_token");
    }
}

#[tokio::test]
async fn pi_flow_runs_without_redirects() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        // pi.flow: the authorize answer is the flow itself (no redirect_uri needed).
        let r = authorize(
            &c,
            &mut jar,
            &[
                ("response_type", "code"),
                ("client_id", &c.app),
                ("scope", "openid"),
                ("response_mode", "pi.flow"),
                ("state", "st-1"),
            ],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(jar.get("ST").is_some(), "pi.flow sets the session cookie");
        assert_eq!(r.body["status"], "USERNAME_PASSWORD_REQUIRED", "{}", r.text);
        let flow_id = r.body["id"].as_str().unwrap().to_string();
        let check = r.body["_links"]["usernamePassword.check"]["href"]
            .as_str()
            .unwrap()
            .to_string();
        let r = signon::flow_action(
            &c.t,
            &mut jar,
            &check,
            "usernamePassword.check",
            json!({ "username": "alice", "password": PASSWORD }),
        )
        .await;
        assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);
        let r = signon::browser_get(&c.t, &mut jar, r.body["resumeUrl"].as_str().unwrap()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["id"], flow_id.as_str());
        assert_eq!(r.body["authorizeResponse"]["state"], "st-1");
        let code = r.body["authorizeResponse"]["code"]
            .as_str()
            .expect("a code")
            .to_string();
        // No redirect_uri was sent, so none is repeated at the token endpoint.
        let r = signon::token_form(
            &c.t,
            &format!("/{}/as/token", c.env),
            Some((&c.app, &c.secret)),
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        // A pi.flow request still refuses an unregistered redirect_uri.
        let r = authorize(
            &c,
            &mut jar,
            &[
                ("response_type", "code"),
                ("client_id", &c.app),
                ("response_mode", "pi.flow"),
                ("redirect_uri", "https://evil.example.com/"),
            ],
        )
        .await;
        assert_not_redirected(&r);
    }
}

#[tokio::test]
async fn concurrent_uses_of_one_code_or_refresh_token_yield_one_answer() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let code = login_code(&c, &mut jar, &[]).await;
        let (a, b, d, e) = tokio::join!(
            exchange(&c, &code),
            exchange(&c, &code),
            exchange(&c, &code),
            exchange(&c, &code)
        );
        let ok: Vec<&Resp> = [&a, &b, &d, &e]
            .into_iter()
            .filter(|r| r.status == StatusCode::OK)
            .collect();
        assert_eq!(
            ok.len(),
            1,
            "exactly one exchange wins: {} {} {} {}",
            a.text,
            b.text,
            d.text,
            e.text
        );
        for r in [&a, &b, &d, &e]
            .into_iter()
            .filter(|r| r.status != StatusCode::OK)
        {
            assert_oauth(r, StatusCode::BAD_REQUEST, "invalid_grant");
        }
        let rt = ok[0].body["refresh_token"].as_str().unwrap().to_string();
        let (a, b, d) = tokio::join!(refresh(&c, &rt), refresh(&c, &rt), refresh(&c, &rt));
        assert!(
            [&a, &b, &d]
                .iter()
                .filter(|r| r.status == StatusCode::OK)
                .count()
                <= 1,
            "at most one refresh wins: {} {} {}",
            a.text,
            b.text,
            d.text
        );
        for r in [&a, &b, &d]
            .into_iter()
            .filter(|r| r.status != StatusCode::OK)
        {
            assert_oauth(r, StatusCode::BAD_REQUEST, "invalid_grant");
        }
    }
}

#[tokio::test]
async fn form_post_escapes_what_it_echoes() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        login_code(&c, &mut jar, &[]).await;
        // Single sign-on answers at once, with an auto-submitting form.
        let evil = "\"><script>alert(1)</script>";
        let mut p = code_params(&c.app, &[("response_mode", "form_post")]);
        p[4] = ("state", evil);
        let r = authorize(&c, &mut jar, &p).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{:?}",
            r.headers
        );
        assert_eq!(r.headers["cache-control"], "no-store");
        assert!(!r.text.contains("<script>"), "state is escaped: {}", r.text);
        assert!(r.text.contains("&quot;&gt;&lt;script&gt;"), "{}", r.text);
        assert!(r.text.contains(&format!("action=\"{CB}\"")), "{}", r.text);
        assert!(r.text.contains("name=\"code\""), "{}", r.text);
    }
}

#[tokio::test]
async fn tokens_of_a_disabled_user_stop_working() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let code = login_code(&c, &mut jar, &[]).await;
        let r = exchange(&c, &code).await;
        let at = r.body["access_token"].as_str().unwrap().to_string();
        let rt = r.body["refresh_token"].as_str().unwrap().to_string();
        let r =
            c.t.put(
                &TestApp::env_path(&c.env, &format!("/users/{}/enabled", c.user)),
                json!({ "enabled": false }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = signon::bearer_get(&c.t, &format!("/{}/as/userinfo", c.env), &at).await;
        assert_oauth(&r, StatusCode::UNAUTHORIZED, "invalid_token");
        assert_oauth(
            &refresh(&c, &rt).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        );
        // The browser session no longer signs the disabled user on: no code, no implicit token.
        let r = authorize(&c, &mut jar, &code_params(&c.app, &[])).await;
        assert!(
            signon::location(&r).contains("/signon/?flowId="),
            "single sign-on for a disabled user: {}",
            signon::location(&r)
        );
        let r = authorize(&c, &mut jar, &code_params(&c.app, &[("prompt", "none")])).await;
        assert_redirected_error(&r, &format!("{CB}?"), "login_required", false);
        let spa = signon::create_app(
            &c.t,
            &c.env,
            json!({
                "name": "SPA", "enabled": true, "type": "SINGLE_PAGE_APP", "protocol": "OPENID_CONNECT",
                "grantTypes": ["IMPLICIT"], "responseTypes": ["TOKEN"], "tokenEndpointAuthMethod": "NONE",
                "redirectUris": ["https://spa.example.com/"],
            }),
        )
        .await;
        signon::grant(&c.t, &c.env, &spa, "openid", &["profile"]).await;
        let r = authorize(
            &c,
            &mut jar,
            &[
                ("response_type", "token"),
                ("client_id", &spa),
                ("redirect_uri", "https://spa.example.com/"),
                ("scope", "profile"),
                ("prompt", "none"),
                ("state", "st-1"),
            ],
        )
        .await;
        assert_redirected_error(&r, "https://spa.example.com/#", "login_required", true);
        // A deleted user's session signs nobody on either.
        let bob = signon::create_user(&c.t, &c.env, "bob").await;
        let mut bob_jar = Jar::new();
        signon::sign_on(&c.t, &mut bob_jar, &c.env, &code_params(&c.app, &[]), "bob").await;
        let r =
            c.t.delete(&TestApp::env_path(&c.env, &format!("/users/{bob}")))
                .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
        let r = authorize(
            &c,
            &mut bob_jar,
            &code_params(&c.app, &[("prompt", "none")]),
        )
        .await;
        assert_redirected_error(&r, &format!("{CB}?"), "login_required", false);
        // Nor can the disabled user sign on again, with the same answer as a wrong password.
        let mut fresh = Jar::new();
        let r = authorize(&c, &mut fresh, &code_params(&c.app, &[])).await;
        let flow = format!(
            "/{}/flows/{}",
            c.env,
            signon::flow_id_of(&signon::location(&r))
        );
        let r = signon::flow_action(
            &c.t,
            &mut fresh,
            &flow,
            "usernamePassword.check",
            json!({ "username": "alice", "password": PASSWORD }),
        )
        .await;
        // With the right password the user learns why they cannot sign on; nothing is issued.
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("ACCOUNT_NOT_USABLE"),
        );
    }
}

#[tokio::test]
async fn signoff_checks_its_id_token_hint() {
    for db in backends() {
        let c = setup(db).await;
        signon::create_user(&c.t, &c.env, "bob").await;
        // Bob signs on in another browser and gets an ID token.
        let mut bob = Jar::new();
        let back = signon::sign_on(&c.t, &mut bob, &c.env, &code_params(&c.app, &[]), "bob").await;
        let bob_id = exchange(&c, &signon::query_of(&back)["code"]).await.body["id_token"]
            .as_str()
            .unwrap()
            .to_string();
        // Alice's browser.
        let mut alice = Jar::new();
        login_code(&c, &mut alice, &[]).await;
        // Bob's ID token cannot sign Alice out, nor can a tampered one.
        let url = |hint: &str| {
            format!(
                "/{}/as/signoff?id_token_hint={hint}&post_logout_redirect_uri={CB}/logout",
                c.env
            )
        };
        let r = signon::browser_get(&c.t, &mut alice.clone(), &url(&bob_id)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.headers.get("location").is_none());
        let mut parts: Vec<String> = bob_id.split('.').map(str::to_string).collect();
        parts[2] = parts[2].chars().rev().collect();
        let r = signon::browser_get(&c.t, &mut alice.clone(), &url(&parts.join("."))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        // Alice is still signed on.
        let r = authorize(&c, &mut alice, &code_params(&c.app, &[("prompt", "none")])).await;
        assert!(
            signon::location(&r).starts_with(&format!("{CB}?code=")),
            "{}",
            signon::location(&r)
        );
        // Bob's own token signs Bob out.
        let r = signon::browser_get(&c.t, &mut bob, &url(&bob_id)).await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
        let r = authorize(&c, &mut bob, &code_params(&c.app, &[("prompt", "none")])).await;
        assert_redirected_error(&r, &format!("{CB}?"), "login_required", false);
    }
}

/// Moves a runtime record's expiry (codes, flows) to simulate the passage of time.
async fn age(c: &Ctx, kind: &str, id: &str, expires_at: i64) {
    let store = &c.t.app.store;
    let item = store
        .runtime_get(kind, id)
        .await
        .unwrap()
        .expect("the record");
    assert!(
        store
            .runtime_swap(&item, &item.data, expires_at)
            .await
            .unwrap()
    );
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn expired_codes_and_flows_are_refused() {
    use lanyard::engine::oauth::issue::{CODE_KIND, CODE_SECONDS, sha256_b64};
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        // A code older than its lifetime (kept only to recognise replays).
        let code = login_code(&c, &mut jar, &[]).await;
        age(
            &c,
            CODE_KIND,
            &sha256_b64(&code),
            now() + 10 * CODE_SECONDS - CODE_SECONDS - 2,
        )
        .await;
        assert_oauth(
            &exchange(&c, &code).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        );

        // A flow idle past its 15 minutes is gone for every call.
        let r = authorize(&c, &mut jar, &code_params(&c.app, &[("prompt", "login")])).await;
        let flow_id = signon::flow_id_of(&signon::location(&r));
        let flow = format!("/{}/flows/{flow_id}", c.env);
        assert_eq!(
            signon::browser_get(&c.t, &mut jar, &flow).await.status,
            StatusCode::OK
        );
        age(&c, lanyard::engine::flows::KIND, &flow_id, now() - 1).await;
        let r = signon::browser_get(&c.t, &mut jar, &flow).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND", None);
        let r = signon::flow_action(
            &c.t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            json!({ "username": "alice", "password": PASSWORD }),
        )
        .await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND", None);
        let r = signon::browser_get(
            &c.t,
            &mut jar,
            &format!("/{}/as/resume?flowId={flow_id}", c.env),
        )
        .await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND", None);
    }
}

#[tokio::test]
async fn brute_force_against_one_user_locks_the_password() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let r = authorize(&c, &mut jar, &code_params(&c.app, &[])).await;
        let flow = format!(
            "/{}/flows/{}",
            c.env,
            signon::flow_id_of(&signon::location(&r))
        );
        let attempt = |password: &'static str| json!({ "username": "alice", "password": password });
        // The Standard policy locks after 5 failures for 900 seconds.
        for remaining in (0..5).rev() {
            let r = signon::flow_action(
                &c.t,
                &mut jar,
                &flow,
                "usernamePassword.check",
                attempt("Wrong-Passw0rd!"),
            )
            .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
            if remaining > 0 {
                assert_eq!(
                    r.body["details"][0]["innerError"]["failuresRemaining"], remaining,
                    "{}",
                    r.text
                );
            } else {
                assert_eq!(
                    r.body["details"][0]["code"], "PASSWORD_LOCKED_OUT",
                    "{}",
                    r.text
                );
            }
        }
        // Now even the right password is refused, with the time until unlock.
        let r = signon::flow_action(
            &c.t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            attempt(PASSWORD),
        )
        .await;
        assert_eq!(
            r.body["details"][0]["code"], "PASSWORD_LOCKED_OUT",
            "{}",
            r.text
        );
        let secs = r.body["details"][0]["innerError"]["secondsUntilUnlock"]
            .as_i64()
            .unwrap_or(0);
        assert!(secs > 800 && secs <= 900, "{}", r.text);
        let state =
            c.t.get(&TestApp::env_path(
                &c.env,
                &format!("/users/{}/password", c.user),
            ))
            .await;
        assert_eq!(
            state.body["status"], "PASSWORD_LOCKED_OUT",
            "{}",
            state.text
        );
        // An administrator unlocks; the right password signs on.
        let r =
            c.t.action(
                axum::http::Method::POST,
                &TestApp::env_path(&c.env, &format!("/users/{}/password", c.user)),
                "application/vnd.pingidentity.password.unlock+json",
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = signon::flow_action(
            &c.t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            attempt(PASSWORD),
        )
        .await;
        assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);
    }
}

#[tokio::test]
async fn refresh_tokens_end_with_their_session() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let code = login_code(&c, &mut jar, &[]).await;
        let r = exchange(&c, &code).await;
        let rt = r.body["refresh_token"].as_str().unwrap().to_string();
        let r = refresh(&c, &rt).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "refresh while the session lives: {}",
            r.text
        );
        let rt2 = r.body["refresh_token"].as_str().unwrap().to_string();
        // Sign off in the browser: the session, and with it the refresh tokens, end.
        let r = signon::sign_off(&c.t, &mut jar, &format!("/{}/as/signoff", c.env)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(
            introspect(&c, (&c.app, &c.secret), &rt2).await.body["active"],
            false
        );
        assert_oauth(
            &refresh(&c, &rt2).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        );

        // Another user signing in on the same browser replaces the session: the first user's
        // refresh tokens end with it, the new user's work.
        let mut jar = Jar::new();
        let code = login_code(&c, &mut jar, &[]).await;
        let alice_rt = exchange(&c, &code).await.body["refresh_token"]
            .as_str()
            .unwrap()
            .to_string();
        signon::create_user(&c.t, &c.env, "bob").await;
        let back = signon::sign_on(
            &c.t,
            &mut jar,
            &c.env,
            &code_params(&c.app, &[("prompt", "login")]),
            "bob",
        )
        .await;
        let bob = exchange(&c, &signon::query_of(&back)["code"]).await;
        assert_eq!(bob.status, StatusCode::OK, "{}", bob.text);
        let bob_rt = bob.body["refresh_token"].as_str().unwrap().to_string();
        assert_oauth(
            &refresh(&c, &alice_rt).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        );
        let r = refresh(&c, &bob_rt).await;
        assert_eq!(r.status, StatusCode::OK, "bob's refresh: {}", r.text);
    }
}

/// The `Set-Cookie` of `r` for the cookie `name`, with its attributes.
fn set_cookie_of(r: &Resp, name: &str) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// Whether the browser in `jar` is still signed on (single sign-on answers a code at once).
async fn signed_on(c: &Ctx, jar: &mut Jar) -> bool {
    let r = authorize(c, jar, &code_params(&c.app, &[("prompt", "none")])).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    signon::query_of(&signon::location(&r)).contains_key("code")
}

/// Logout CSRF: a cross-site link or form to `/as/signoff` without `id_token_hint` must not
/// sign the browser out. It gets a "Sign off?" page whose form carries a CSRF token bound to
/// the session; only that form, posted back, signs off. Tokens from elsewhere (another
/// session, a GET, a guess) do nothing.
#[tokio::test]
async fn a_cross_site_signoff_asks_before_signing_off() {
    for db in backends() {
        let c = setup(db).await;
        let mut alice = Jar::new();
        login_code(&c, &mut alice, &[]).await;
        let state = "\"><script>alert(1)</script>";
        let qs = serde_urlencoded::to_string([
            ("post_logout_redirect_uri", format!("{CB}/logout")),
            ("state", state.to_string()),
        ])
        .unwrap();
        let url = format!("/{}/as/signoff?{qs}", c.env);

        // The attacker's link: a page, not a signoff.
        let page = signon::browser_get(&c.t, &mut alice, &url).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        assert!(page.text.contains("Sign off?"), "{}", page.text);
        assert!(page.headers.get("location").is_none());
        assert!(set_cookie_of(&page, "ST").is_none(), "{:?}", page.headers);
        assert!(!page.text.contains("<script>"), "escaped: {}", page.text);
        let header = |n: &str| page.headers.get(n).unwrap().to_str().unwrap().to_string();
        assert_eq!(header("cache-control"), "no-store");
        assert_eq!(header("x-frame-options"), "DENY");
        let csp = header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            csp.contains("form-action 'self' https://app.example.com"),
            "{csp}"
        );
        let (action, fields) = signon::form_of(&page.text);
        assert_eq!(action, format!("{PUBLIC}/{}/as/signoff", c.env));
        let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(field("state").as_deref(), Some(state), "carried through");
        let token = field("csrfToken").expect("a CSRF token");
        assert!(
            signed_on(&c, &mut alice).await,
            "the link signed nobody off"
        );

        // A cross-site form without the token, with a wrong one, or with a token of another
        // session (the attacker's own browser, signed on as bob) is asked again.
        signon::create_user(&c.t, &c.env, "bob").await;
        let mut attacker = Jar::new();
        signon::sign_on(
            &c.t,
            &mut attacker,
            &c.env,
            &code_params(&c.app, &[]),
            "bob",
        )
        .await;
        let theirs = signon::form_of(&signon::browser_get(&c.t, &mut attacker, &url).await.text).1;
        let their_token = theirs
            .iter()
            .find(|(k, _)| k == "csrfToken")
            .unwrap()
            .1
            .clone();
        let post = format!("/{}/as/signoff", c.env);
        for (sent, status) in [
            (None, StatusCode::OK),
            (Some("forged"), StatusCode::FORBIDDEN),
            (Some(their_token.as_str()), StatusCode::FORBIDDEN),
        ] {
            let mut form = vec![("post_logout_redirect_uri", format!("{CB}/logout"))];
            form.extend(sent.map(|t| ("csrfToken", t.to_string())));
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = signon::browser_form(&c.t, &mut alice, &post, &form).await;
            assert_eq!(r.status, status, "{sent:?}: {}", r.text);
            assert!(r.text.contains("Sign off?"), "{}", r.text);
            assert!(r.headers.get("location").is_none(), "{sent:?}");
            assert!(signed_on(&c, &mut alice).await, "{sent:?} signed alice off");
        }
        // Alice's own token in a GET does not sign off either (a GET never confirms).
        let r = signon::browser_get(&c.t, &mut alice, &format!("{url}&csrfToken={token}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(signed_on(&c, &mut alice).await);

        // Alice clicks "Sign off": signed off and sent to the registered URI with the state.
        let r = signon::sign_off(&c.t, &mut alice, &url).await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
        let back = signon::location(&r);
        assert!(back.starts_with(&format!("{CB}/logout?")), "{back}");
        assert_eq!(signon::query_of(&back)["state"], state);
        assert!(alice.get("ST").is_none(), "the cookie is cleared");
        assert!(!signed_on(&c, &mut alice).await);
        // The attacker's own browser was not touched.
        assert!(signed_on(&c, &mut attacker).await);
        // Without a signed-in session there is nothing to ask: signed off at once.
        let r = signon::browser_get(&c.t, &mut Jar::new(), &url).await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
        // The form's parameters are checked as the link's are.
        let evil = format!(
            "/{}/as/signoff?post_logout_redirect_uri=https://evil.example/",
            c.env
        );
        let r = signon::browser_get(&c.t, &mut attacker, &evil).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        let r = signon::browser_form(
            &c.t,
            &mut attacker,
            &post,
            &[
                ("post_logout_redirect_uri", "https://evil.example/"),
                ("csrfToken", &their_token),
            ],
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(signed_on(&c, &mut attacker).await);
    }
}

/// Signs alice on in `jar` with `password` (a fresh sign-on); returns a refresh token.
async fn refresh_token(c: &Ctx, jar: &mut Jar, password: &str) -> String {
    let r = authorize(c, jar, &code_params(&c.app, &[("prompt", "login")])).await;
    let flow = format!(
        "/{}/flows/{}",
        c.env,
        signon::flow_id_of(&signon::location(&r))
    );
    let f = signon::flow_action(
        &c.t,
        jar,
        &flow,
        "usernamePassword.check",
        json!({ "username": "alice", "password": password }),
    )
    .await;
    assert_eq!(f.body["status"], "COMPLETED", "{}", f.text);
    let r = signon::browser_get(&c.t, jar, f.body["resumeUrl"].as_str().unwrap()).await;
    let code = signon::query_of(&signon::location(&r))["code"].clone();
    let r = exchange(c, &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["refresh_token"].as_str().unwrap().to_string()
}

/// Whether a refresh token still works, by introspection and by refreshing (which rotates
/// it: `rt` becomes the new one).
async fn refresh_works(c: &Ctx, rt: &mut String) -> bool {
    let active = introspect(c, (&c.app, &c.secret), rt).await.body["active"] == true;
    let r = refresh(c, rt).await;
    assert_eq!(active, r.status == StatusCode::OK, "{}", r.text);
    if active {
        *rt = r.body["refresh_token"].as_str().unwrap().to_string();
    } else {
        assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_grant");
    }
    active
}

/// Moves alice's last password change two days back (the policy's `minAgeDays` holds back
/// changes with the current password).
async fn age_password(c: &Ctx) {
    let mut tx = c.t.app.store.begin().await.unwrap();
    let mut user = tx
        .get(lanyard::resources::users::KIND, &c.env, &c.user)
        .await
        .unwrap()
        .expect("alice");
    let before = time::OffsetDateTime::now_utc() - time::Duration::days(2);
    user.data["_password"]["lastChangedAt"] = json!(lanyard::clock::format(before));
    tx.update_data(&mut user).await.unwrap();
    tx.commit().await.unwrap();
}

/// An administrator who sets a password, or a password change through the management API
/// (say, after a phishing report), shuts out whoever knew the old one: every browser session
/// and refresh token of the user ends, however recent; the new password signs on as usual.
#[tokio::test]
async fn a_new_password_through_the_management_api_ends_every_sign_on() {
    for db in backends() {
        let c = setup(db).await;
        let url = TestApp::env_path(&c.env, &format!("/users/{}/password", c.user));
        let (second, third) = ("N3w-Lanyard-Otter!77", "Th1rd-Lanyard-Heron!58");
        let changes = [
            (
                PASSWORD,
                "application/vnd.pingidentity.password.set+json",
                json!({ "value": second }),
                second,
            ),
            (
                second,
                "application/vnd.pingidentity.password.reset+json",
                json!({ "currentPassword": second, "newPassword": third }),
                third,
            ),
        ];
        for (old, media, body, new) in changes {
            // Two browsers signed on (the attacker's and the user's), each with a refresh token.
            let (mut a, mut b) = (Jar::new(), Jar::new());
            let mut rt_a = refresh_token(&c, &mut a, old).await;
            let mut rt_b = refresh_token(&c, &mut b, old).await;
            assert!(signed_on(&c, &mut a).await && refresh_works(&c, &mut rt_a).await);
            age_password(&c).await;
            let r = c.t.action(Method::PUT, &url, media, Some(body)).await;
            assert_eq!(r.status, StatusCode::OK, "{media}: {}", r.text);
            for (jar, rt) in [(&mut a, &mut rt_a), (&mut b, &mut rt_b)] {
                assert!(!signed_on(&c, jar).await, "{media}: a session survived");
                assert!(
                    !refresh_works(&c, rt).await,
                    "{media}: a refresh token survived"
                );
            }
            // The new password signs on, with single sign-on and refresh tokens; even in a
            // browser whose session had ended.
            let mut rt = refresh_token(&c, &mut a, new).await;
            assert!(signed_on(&c, &mut a).await);
            assert!(refresh_works(&c, &mut rt).await);
            assert!(
                !refresh_works(&c, &mut rt_a).await,
                "the old token stays dead"
            );
        }
    }
}

/// A locked account signs nobody on: not through an existing session, nor its refresh
/// tokens (a disabled account likewise, see `tokens_of_a_disabled_user_stop_working`).
#[tokio::test]
async fn a_locked_account_ends_its_sign_ons() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let mut rt = refresh_token(&c, &mut jar, PASSWORD).await;
        let r =
            c.t.action(
                Method::POST,
                &TestApp::env_path(&c.env, &format!("/users/{}", c.user)),
                "application/vnd.pingidentity.account.lock+json",
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(
            !signed_on(&c, &mut jar).await,
            "single sign-on of a locked account"
        );
        assert!(
            !refresh_works(&c, &mut rt).await,
            "refresh of a locked account"
        );
    }
}

/// Changes the stored session of `jar`'s cookie (to simulate the passage of time); returns its
/// expiry.
async fn edit_session(c: &Ctx, jar: &Jar, edit: impl FnOnce(&mut Value)) -> i64 {
    let store = &c.t.app.store;
    let key = lanyard::engine::sessions::hash(jar.get("ST").expect("a session cookie"));
    let item = store
        .runtime_get(lanyard::engine::sessions::KIND, &key)
        .await
        .unwrap()
        .expect("the session");
    let mut data = item.data.clone();
    edit(&mut data);
    assert!(
        store
            .runtime_swap(&item, &data, item.expires_at)
            .await
            .unwrap()
    );
    item.expires_at
}

fn back_by(v: &mut Value, seconds: i64, unit: i64) {
    *v = json!(v.as_i64().expect("a number") - seconds * unit);
}

async fn sso_settings(c: &Ctx, body: Value) -> Resp {
    c.t.post(&TestApp::env_path(&c.env, "/ssoCookieSettings"), body)
        .await
}

/// `/ssoCookieSettings` as PingOne documents it (GET, POST, `useNonPersistentSessionTokenCookie`)
/// with Lanyard's `idleTimeoutInMinutes` and `maxLifetimeInMinutes`, validated with PingOne
/// error bodies.
#[tokio::test]
async fn sso_cookie_settings_are_read_set_and_validated() {
    for db in backends() {
        let c = setup(db).await;
        let path = TestApp::env_path(&c.env, "/ssoCookieSettings");
        let r = c.t.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["useNonPersistentSessionTokenCookie"], false);
        assert_eq!(r.body["idleTimeoutInMinutes"], 43200);
        assert_eq!(r.body["maxLifetimeInMinutes"], 43200);
        assert_eq!(r.body["environment"]["id"], c.env.as_str());
        assert!(
            r.body["_links"]["self"]["href"]
                .as_str()
                .unwrap()
                .ends_with("/ssoCookieSettings")
        );

        let r = sso_settings(&c, json!({ "useNonPersistentSessionTokenCookie": true })).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["useNonPersistentSessionTokenCookie"], true);
        let r = sso_settings(
            &c,
            json!({ "idleTimeoutInMinutes": 30, "maxLifetimeInMinutes": 480 }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = c.t.get(&path).await;
        assert_eq!(
            r.body["useNonPersistentSessionTokenCookie"], true,
            "kept: {}",
            r.text
        );
        assert_eq!(r.body["idleTimeoutInMinutes"], 30);
        assert_eq!(r.body["maxLifetimeInMinutes"], 480);

        for (body, code, target) in [
            (
                json!({ "idleTimeoutInMinutes": 0 }),
                "OUT_OF_RANGE",
                "idleTimeoutInMinutes",
            ),
            (
                json!({ "maxLifetimeInMinutes": 525601 }),
                "OUT_OF_RANGE",
                "maxLifetimeInMinutes",
            ),
            (
                json!({ "idleTimeoutInMinutes": 1.5 }),
                "INVALID_VALUE",
                "idleTimeoutInMinutes",
            ),
            (
                json!({ "idleTimeoutInMinutes": "60" }),
                "INVALID_VALUE",
                "idleTimeoutInMinutes",
            ),
            (
                json!({ "useNonPersistentSessionTokenCookie": 1 }),
                "INVALID_VALUE",
                "useNonPersistentSessionTokenCookie",
            ),
            (
                json!({ "idleTimeoutInMinutes": 600 }),
                "OUT_OF_RANGE",
                "maxLifetimeInMinutes",
            ),
        ] {
            let r = sso_settings(&c, body.clone()).await;
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_DATA", Some(code));
            assert_eq!(r.body["details"][0]["target"], target, "{body}: {}", r.text);
        }
        let r = c.t.get(&path).await;
        assert_eq!(
            r.body["idleTimeoutInMinutes"], 30,
            "refused writes change nothing"
        );
        let r = c.t.put(&path, json!({})).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.text);
    }
}

/// The SSO session no longer slides forever: it ends after the environment's idle timeout
/// without use and, however much it is used, after its absolute lifetime from the sign-on;
/// its refresh tokens end with it. A new user in the browser starts a new session.
#[tokio::test]
async fn sso_sessions_end_after_the_idle_timeout_and_the_absolute_lifetime() {
    for db in backends() {
        let c = setup(db).await;
        let r = sso_settings(
            &c,
            json!({ "idleTimeoutInMinutes": 60, "maxLifetimeInMinutes": 480 }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);

        // The stored session expires after the idle timeout; single sign-on slides it.
        let mut jar = Jar::new();
        let mut rt = refresh_token(&c, &mut jar, PASSWORD).await;
        let expires = edit_session(&c, &jar, |_| {}).await;
        assert!((expires - now() - 3600).abs() <= 2, "{expires}");
        // An hour and a minute without use (the row kept, as under a longer setting before).
        edit_session(&c, &jar, |s| back_by(&mut s["signed_on_ms"], 3660, 1000)).await;
        assert!(!signed_on(&c, &mut jar).await, "idle past the timeout");
        assert!(
            !refresh_works(&c, &mut rt).await,
            "its refresh token ends with it"
        );

        // Used all along, but signed on more than 8 hours ago.
        let mut jar = Jar::new();
        let mut rt = refresh_token(&c, &mut jar, PASSWORD).await;
        assert!(signed_on(&c, &mut jar).await);
        edit_session(&c, &jar, |s| {
            back_by(&mut s["started_at"], 8 * 3600 + 60, 1)
        })
        .await;
        assert!(!signed_on(&c, &mut jar).await, "past the absolute lifetime");
        assert!(!refresh_works(&c, &mut rt).await);
        // Single sign-on never extends a session beyond its lifetime.
        let mut jar = Jar::new();
        refresh_token(&c, &mut jar, PASSWORD).await;
        edit_session(&c, &jar, |s| {
            back_by(&mut s["started_at"], 8 * 3600 - 600, 1)
        })
        .await;
        assert!(signed_on(&c, &mut jar).await);
        let expires = edit_session(&c, &jar, |_| {}).await;
        assert!(
            (expires - now() - 600).abs() <= 2,
            "capped by the lifetime: {expires}"
        );

        // Another user signing on in that browser starts a new session with its own lifetime.
        signon::create_user(&c.t, &c.env, "bob").await;
        signon::sign_on(
            &c.t,
            &mut jar,
            &c.env,
            &code_params(&c.app, &[("prompt", "login")]),
            "bob",
        )
        .await;
        let expires = edit_session(&c, &jar, |_| {}).await;
        assert!((expires - now() - 3600).abs() <= 2, "{expires}");
    }
}

/// `useNonPersistentSessionTokenCookie`: the signed-in `ST` cookie is a browser-session cookie
/// (no Max-Age); otherwise it lasts the session's absolute lifetime.
#[tokio::test]
async fn the_session_cookie_persists_as_the_environment_says() {
    for db in backends() {
        let c = setup(db).await;
        for (settings, max_age) in [
            (
                json!({ "maxLifetimeInMinutes": 600, "idleTimeoutInMinutes": 60 }),
                Some("Max-Age=36000"),
            ),
            (json!({ "useNonPersistentSessionTokenCookie": true }), None),
        ] {
            assert_eq!(sso_settings(&c, settings).await.status, StatusCode::OK);
            let mut jar = Jar::new();
            let r = authorize(&c, &mut jar, &code_params(&c.app, &[])).await;
            let flow = format!(
                "/{}/flows/{}",
                c.env,
                signon::flow_id_of(&signon::location(&r))
            );
            let f = signon::flow_action(
                &c.t,
                &mut jar,
                &flow,
                "usernamePassword.check",
                json!({ "username": "alice", "password": PASSWORD }),
            )
            .await;
            let r =
                signon::browser_get(&c.t, &mut jar, f.body["resumeUrl"].as_str().unwrap()).await;
            let cookie = set_cookie_of(&r, "ST").expect("the signed-in cookie");
            match max_age {
                Some(m) => assert!(cookie.contains(m), "{cookie}"),
                None => assert!(!cookie.contains("Max-Age"), "{cookie}"),
            }
            assert!(signed_on(&c, &mut jar).await);
        }
    }
}

/// The application's `accessControl`: `ADMIN_USERS_ONLY` admits only users with a role
/// assignment; a group rule admits no one while Lanyard has no groups.
#[tokio::test]
async fn application_access_control_refuses_users_it_does_not_admit() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let user = signon::create_user(&t, &env, "alice").await;
        let mut body = signon::web_app_body("Admins only", CB);
        body["accessControl"] = json!({ "role": { "type": "ADMIN_USERS_ONLY" } });
        let app = signon::create_app(&t, &env, body).await;
        signon::grant(&t, &env, &app, "openid", &["profile"]).await;
        let sign_on = |jar: &mut Jar| {
            let (t, env, app) = (&t, env.clone(), app.clone());
            let mut jar = std::mem::take(jar);
            async move {
                let a = signon::browser_get(t, &mut jar, &format!("/{env}/as/authorize?client_id={app}&response_type=code&scope=openid&redirect_uri={CB}&response_mode=pi.flow")).await;
                let flow = format!("/{env}/flows/{}", a.body["id"].as_str().unwrap());
                signon::flow_action(
                    t,
                    &mut jar,
                    &flow,
                    "usernamePassword.check",
                    json!({ "username": "alice", "password": PASSWORD }),
                )
                .await
            }
        };
        let f = sign_on(&mut Jar::new()).await;
        assert_eq!(f.body["status"], "FAILED", "{}", f.text);
        assert_eq!(f.body["error"]["code"], "access_denied", "{}", f.text);
        // With a role assignment alice is an administrator, and gets in.
        let roles = t.get("/v1/roles").await;
        let role = roles.body["_embedded"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "Identity Data Read Only")
            .unwrap()["id"]
            .clone();
        let r = t
            .post(
                &TestApp::env_path(&env, &format!("/users/{user}/roleAssignments")),
                json!({ "role": { "id": role }, "scope": { "type": "ENVIRONMENT", "id": env } }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let f = sign_on(&mut Jar::new()).await;
        assert_eq!(f.body["status"], "COMPLETED", "{}", f.text);
        // A group rule.
        let mut body = signon::web_app_body("Group only", CB);
        body["accessControl"] = json!({ "group": { "type": "ANY_GROUP", "groups": [{ "id": uuid::Uuid::new_v4().to_string() }] } });
        let grouped = signon::create_app(&t, &env, body).await;
        signon::grant(&t, &env, &grouped, "openid", &["profile"]).await;
        let mut jar = Jar::new();
        let a = signon::browser_get(&t, &mut jar, &format!("/{env}/as/authorize?client_id={grouped}&response_type=code&scope=openid&redirect_uri={CB}&response_mode=pi.flow")).await;
        let flow = format!("/{env}/flows/{}", a.body["id"].as_str().unwrap());
        let f = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            json!({ "username": "alice", "password": PASSWORD }),
        )
        .await;
        assert_eq!(f.body["status"], "FAILED", "{}", f.text);
    }
}

/// Wrong passwords sent at the same time all count: the hash runs outside the write
/// transaction, but each failure is recorded on the stored state.
#[tokio::test]
async fn concurrent_wrong_passwords_all_count_toward_the_lockout() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let user = signon::create_user(&t, &env, "target").await;
        let app = signon::create_app(&t, &env, signon::web_app_body("Web", CB)).await;
        signon::grant(&t, &env, &app, "openid", &["profile"]).await;
        let mut attempts = Vec::new();
        for i in 0..8 {
            let (t, env, app) = (&t, env.clone(), app.clone());
            attempts.push(async move {
                let mut jar = Jar::new();
                let a = signon::browser_get(t, &mut jar, &format!("/{env}/as/authorize?client_id={app}&response_type=code&scope=openid&redirect_uri={CB}&response_mode=pi.flow")).await;
                let flow = format!("/{env}/flows/{}", a.body["id"].as_str().unwrap());
                signon::flow_action(t, &mut jar, &flow, "usernamePassword.check", json!({ "username": "target", "password": format!("wrong-{i}") })).await
            });
        }
        let results = futures_util::future::join_all(attempts).await;
        assert!(
            results.iter().all(|r| r.status == StatusCode::BAD_REQUEST),
            "all refused"
        );
        let state = t
            .get(&TestApp::env_path(&env, &format!("/users/{user}/password")))
            .await;
        assert_eq!(
            state.body["status"], "PASSWORD_LOCKED_OUT",
            "{}",
            state.text
        );
    }
}

/// A registered wildcard stands for labels of the host's left part only: a URI whose host is
/// elsewhere (`https://evil.example/.example.com/cb` "ends with" `.example.com/cb`) is refused
/// before anything is redirected, and script schemes never reach a page.
#[tokio::test]
async fn wildcard_redirect_uris_never_leave_the_registered_host() {
    for db in backends() {
        let c = setup(db).await;
        let mut body = signon::web_app_body("Wild", "https://*.example.com/cb");
        body["allowWildcardInRedirectUris"] = json!(true);
        body["postLogoutRedirectUris"] = json!([]);
        let app = signon::create_app(&c.t, &c.env, body).await;
        signon::grant(&c.t, &c.env, &app, "openid", &["profile"]).await;
        for evil in [
            "https://evil.example/.example.com/cb",
            "https://evil.example/x.example.com/cb",
            "https://a.example.com@evil.example/cb",
            "https://a.example.com.evil.example/cb",
            "https://a.example.com/cb/../../evil",
            "javascript://a.example.com/cb%0aalert(1)",
        ] {
            let p = [
                ("response_type", "code"),
                ("client_id", app.as_str()),
                ("redirect_uri", evil),
                ("scope", "openid"),
                ("response_mode", "form_post"),
            ];
            let r = authorize(&c, &mut Jar::new(), &p).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{evil}: {}", r.text);
            assert!(r.headers.get("location").is_none(), "{evil}");
            assert!(
                !r.text.contains("evil.example"),
                "{evil} is never echoed into a page"
            );
        }
        let ok = [
            ("response_type", "code"),
            ("client_id", app.as_str()),
            ("redirect_uri", "https://tenant-1.example.com/cb"),
            ("scope", "openid"),
        ];
        let r = authorize(&c, &mut Jar::new(), &ok).await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
        assert!(
            signon::location(&r).contains("/signon/"),
            "{}",
            signon::location(&r)
        );
    }
}

/// The form_post page runs only its own script (by nonce), posts only to the redirect URI's
/// origin and cannot be framed; every other answer has a policy under which nothing runs.
#[tokio::test]
async fn pages_carry_a_strict_content_security_policy() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let back =
            signon::sign_on(&c.t, &mut jar, &c.env, &code_params(&c.app, &[]), "alice").await;
        assert!(back.starts_with(CB), "{back}");
        // Single sign-on now answers form_post at once.
        let r = authorize(
            &c,
            &mut jar,
            &code_params(&c.app, &[("response_mode", "form_post")]),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let csp = r.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("form-action https://app.example.com"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|s| s.split('\'').next())
            .unwrap();
        assert!(
            r.text.contains(&format!("<script nonce=\"{nonce}\">")),
            "{}",
            r.text
        );
        assert!(
            !r.text.contains("onload="),
            "no inline handlers: {}",
            r.text
        );
        assert_eq!(r.headers["x-frame-options"], "DENY");
        assert_eq!(r.headers["cache-control"], "no-store");
        // A flow answer (the user, devices) and an error are not cached, sniffed or framed.
        let f = authorize(
            &c,
            &mut Jar::new(),
            &code_params(&c.app, &[("response_mode", "pi.flow")]),
        )
        .await;
        let e = authorize(
            &c,
            &mut Jar::new(),
            &[
                ("client_id", c.app.as_str()),
                ("redirect_uri", "https://nope.example/"),
            ],
        )
        .await;
        for r in [&f, &e] {
            assert_eq!(r.headers["cache-control"], "no-store", "{}", r.text);
            assert_eq!(r.headers["x-content-type-options"], "nosniff");
            assert_eq!(r.headers["x-frame-options"], "DENY");
            assert!(
                r.headers["content-security-policy"]
                    .to_str()
                    .unwrap()
                    .contains("default-src 'none'")
            );
        }
    }
}

/// `acr_values` chooses only among the policies assigned to the application; without an
/// assignment it cannot replace the environment's default with a weaker policy.
#[tokio::test]
async fn acr_values_cannot_choose_a_weaker_policy() {
    for db in backends() {
        let c = setup(db).await;
        let strong =
            c.t.post(
                &TestApp::env_path(&c.env, "/signOnPolicies"),
                json!({ "name": "Strong", "default": true }),
            )
            .await;
        assert_eq!(strong.status, StatusCode::CREATED, "{}", strong.text);
        let r = authorize(
            &c,
            &mut Jar::new(),
            &code_params(&c.app, &[("acr_values", "Single_Factor")]),
        )
        .await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
        let q = signon::query_of(&signon::location(&r));
        assert_eq!(
            q.get("error").map(String::as_str),
            Some("invalid_request"),
            "{q:?}"
        );
        // Once the application is assigned Single_Factor, acr_values may choose it.
        let single =
            c.t.get(&format!(
                "{}?filter=name%20eq%20%22Single_Factor%22",
                TestApp::env_path(&c.env, "/signOnPolicies")
            ))
            .await
            .body["_embedded"]["signOnPolicies"][0]["id"]
                .as_str()
                .unwrap()
                .to_string();
        let a =
            c.t.post(
                &TestApp::env_path(
                    &c.env,
                    &format!("/applications/{}/signOnPolicyAssignments", c.app),
                ),
                json!({ "priority": 1, "signOnPolicy": { "id": single } }),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        let mut jar = Jar::new();
        let back = signon::sign_on(
            &c.t,
            &mut jar,
            &c.env,
            &code_params(&c.app, &[("acr_values", "Single_Factor")]),
            "alice",
        )
        .await;
        assert!(signon::query_of(&back).contains_key("code"), "{back}");
    }
}

/// Wrong passwords answer alike for an existing user, an unknown username and a user without
/// a password: the same `failuresRemaining` from the first attempt, then the same lockout.
#[tokio::test]
async fn wrong_passwords_do_not_tell_accounts_apart() {
    for db in backends() {
        let c = setup(db).await;
        let nopass =
            c.t.post(
                &TestApp::env_path(&c.env, "/users"),
                json!({ "username": "nopass" }),
            )
            .await;
        assert_eq!(nopass.status, StatusCode::CREATED, "{}", nopass.text);
        let mut answers = Vec::new();
        for username in ["alice", "nobody", "nopass"] {
            let mut seen = Vec::new();
            for attempt in 0..7 {
                let mut jar = Jar::new();
                let f = authorize(
                    &c,
                    &mut jar,
                    &code_params(&c.app, &[("response_mode", "pi.flow")]),
                )
                .await;
                let flow = format!("/{}/flows/{}", c.env, f.body["id"].as_str().unwrap());
                let r = signon::flow_action(
                    &c.t,
                    &mut jar,
                    &flow,
                    "usernamePassword.check",
                    json!({ "username": username, "password": format!("wrong-{attempt}") }),
                )
                .await;
                let d = &r.body["details"][0];
                seen.push((
                    r.status,
                    d["code"].clone(),
                    d["target"].clone(),
                    d["message"].clone(),
                    d["innerError"]["failuresRemaining"].clone(),
                    d["innerError"]["secondsUntilUnlock"].is_number(),
                ));
            }
            answers.push(seen);
        }
        assert!(
            answers[0][0].4.is_number(),
            "the policy counts failures: {:?}",
            answers[0]
        );
        assert!(
            answers[0].iter().any(|a| a.1 == "PASSWORD_LOCKED_OUT"),
            "{:?}",
            answers[0]
        );
        assert_eq!(answers[0], answers[1], "existing and unknown usernames");
        assert_eq!(answers[0], answers[2], "existing and password-less users");
    }
}

/// A public client's code is bound to its instance by PKCE whatever `pkceEnforcement` says,
/// and a request object must expire within the hour (without `exp` it could be replayed
/// forever).
#[tokio::test]
async fn public_clients_need_pkce_and_request_objects_expire() {
    for db in backends() {
        let c = setup(db).await;
        let mut native = signon::web_app_body("Native", CB);
        native["type"] = json!("NATIVE_APP");
        native["tokenEndpointAuthMethod"] = json!("NONE");
        native["grantTypes"] = json!(["AUTHORIZATION_CODE"]);
        let public = signon::create_app(&c.t, &c.env, native).await;
        signon::grant(&c.t, &c.env, &public, "openid", &["profile"]).await;
        let r = authorize(&c, &mut Jar::new(), &code_params(&public, &[])).await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
        let q = signon::query_of(&signon::location(&r));
        assert_eq!(
            q.get("error").map(String::as_str),
            Some("invalid_request"),
            "{q:?}"
        );
        assert!(q["error_description"].contains("code_challenge"), "{q:?}");
        let (_, challenge) = signon::pkce_pair();
        let with_pkce = code_params(
            &public,
            &[
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        );
        let r = authorize(&c, &mut Jar::new(), &with_pkce).await;
        assert!(
            signon::location(&r).contains("/signon/"),
            "{}",
            signon::location(&r)
        );

        let now = lanyard::clock::unix();
        let issuer = format!("{}/{}/as", signon::PUBLIC, c.env);
        let base = json!({ "iss": c.app, "aud": issuer, "client_id": c.app, "response_type": "code",
                           "redirect_uri": CB, "scope": "openid" });
        let mut no_exp = base.clone();
        no_exp["iat"] = json!(now);
        let mut forever = base.clone();
        forever["exp"] = json!(now + 10 * 365 * 24 * 3600);
        let mut fine = base.clone();
        fine["exp"] = json!(now + 300);
        for (claims, ok) in [(no_exp, false), (forever, false), (fine, true)] {
            let jwt = common::mfa::hs256(&c.secret, &claims);
            let p = [
                ("client_id", c.app.as_str()),
                ("response_type", "code"),
                ("request", jwt.as_str()),
            ];
            let r = authorize(&c, &mut Jar::new(), &p).await;
            if ok {
                assert!(signon::location(&r).contains("/signon/"), "{}", r.text);
            } else {
                assert_eq!(r.status, StatusCode::BAD_REQUEST, "{claims}: {}", r.text);
                assert_eq!(r.body["details"][0]["target"], "request", "{}", r.text);
            }
        }
    }
}
