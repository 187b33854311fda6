//! Password recovery in the LOGIN action (`recovery.enabled`): `password.forgot` emails a
//! recovery code (read here from the outbox API, or from a tiny SMTP sink), `password.recover`
//! sets a new password with the policy and signs on, `password.sendRecoveryCode` resends within
//! limits. Wrong, dead and expired codes, unknown users (no enumeration), recovery disabled,
//! the hosted page screens, SMTP delivery and failure, and the outbox API itself.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::signon::{self, Jar, PASSWORD};
use common::{Resp, TestApp, assert_error, backends};
use lanyard::engine::flows::{self, recovery};
use lanyard::engine::notifications::{self, Channel, Message};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const CB: &str = "https://app.example.com/cb";
const NEW_PASSWORD: &str = "Blue-Harbor-Otter#2024x";

struct Ctx {
    t: TestApp,
    env: String,
    app: String,
    user: String,
}

async fn setup_with(t: TestApp) -> Ctx {
    let env = t.new_env().await;
    let user = signon::create_user(&t, &env, "alice").await;
    let app = signon::create_app(&t, &env, signon::web_app_body("Web", CB)).await;
    signon::grant(&t, &env, &app, "openid", &["profile", "email"]).await;
    Ctx { t, env, app, user }
}

async fn setup(db: Option<String>) -> Ctx {
    setup_with(TestApp::new(db).await).await
}

/// A fresh authorize in `jar`: returns the flow URL (`/{env}/flows/{id}`).
async fn start(c: &Ctx, jar: &mut Jar) -> String {
    let qs = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", c.app.as_str()),
        ("redirect_uri", CB),
        ("scope", "openid profile"),
        ("state", "st-1"),
    ])
    .unwrap();
    let r = signon::browser_get(&c.t, jar, &format!("/{}/as/authorize?{qs}", c.env)).await;
    assert_eq!(r.status, StatusCode::FOUND, "authorize: {}", r.text);
    let loc = signon::location(&r);
    format!("/{}/flows/{}", c.env, signon::flow_id_of(&loc))
}

fn links(r: &Resp) -> Vec<String> {
    let mut v: Vec<String> = r.body["_links"]
        .as_object()
        .unwrap_or_else(|| panic!("no _links: {}", r.text))
        .keys()
        .cloned()
        .collect();
    v.sort();
    v
}

/// The outbox messages sent to `to`, newest first.
async fn outbox_to(c: &Ctx, to: &str) -> Vec<Value> {
    let filter = format!("to eq \"{to}\"");
    let qs = serde_urlencoded::to_string([("filter", filter.as_str())]).unwrap();
    let r =
        c.t.get(&TestApp::env_path(&c.env, &format!("/outbox?{qs}")))
            .await;
    assert_eq!(r.status, StatusCode::OK, "outbox: {}", r.text);
    r.body["_embedded"]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The recovery code in an email body: the line that is 8 characters of the code alphabet.
fn code_in(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| {
            l.len() == recovery::CODE_LENGTH
                && l.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        })
        .unwrap_or_else(|| panic!("no code in:\n{text}"))
        .to_string()
}

/// The newest code sent to alice.
async fn latest_code(c: &Ctx) -> String {
    let m = outbox_to(c, "alice@example.com").await;
    code_in(m[0]["body"].as_str().expect("a message"))
}

async fn act(c: &Ctx, jar: &mut Jar, flow: &str, action: &str, body: Value) -> Resp {
    signon::flow_action(&c.t, jar, flow, action, body).await
}

async fn recover(c: &Ctx, jar: &mut Jar, flow: &str, code: &str, password: &str) -> Resp {
    act(
        c,
        jar,
        flow,
        "password.recover",
        json!({ "recoveryCode": code, "newPassword": password }),
    )
    .await
}

fn assert_wrong_code(r: &Resp, remaining: i64) {
    assert_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some("INVALID_VALUE"),
    );
    assert_eq!(r.body["details"][0]["target"], "recoveryCode", "{}", r.text);
    assert_eq!(
        r.body["details"][0]["innerError"]["failuresRemaining"], remaining,
        "{}",
        r.text
    );
}

/// Changes the flow's recovery state in the store (to simulate the passage of time).
async fn age_recovery(c: &Ctx, flow_url: &str, field: &str, by: i64) {
    let id = flow_url.rsplit('/').next().unwrap();
    let store = &c.t.app.store;
    let item = store
        .runtime_get(flows::KIND, id)
        .await
        .unwrap()
        .expect("the flow");
    let mut data = item.data.clone();
    let v = &mut data["scratch"][recovery::SCRATCH_KEY][field];
    *v = json!(v.as_i64().expect("a number") - by);
    assert!(
        store
            .runtime_swap(&item, &data, item.expires_at)
            .await
            .unwrap()
    );
}

async fn password_status(c: &Ctx) -> Value {
    let r =
        c.t.get(&TestApp::env_path(
            &c.env,
            &format!("/users/{}/password", c.user),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["status"].clone()
}

#[tokio::test]
async fn forgot_recover_and_sign_on() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let flow = start(&c, &mut jar).await;

        // Lock the password first: recovery lifts the lockout.
        let mut locked = false;
        for _ in 0..10 {
            let r = act(
                &c,
                &mut jar,
                &flow,
                "usernamePassword.check",
                json!({ "username": "alice", "password": "wrong" }),
            )
            .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
            if r.detail_code() == "PASSWORD_LOCKED_OUT" {
                locked = true;
                break;
            }
        }
        assert!(locked, "the default policy locks the password");
        assert_eq!(password_status(&c).await, "PASSWORD_LOCKED_OUT");

        let r = signon::browser_get(&c.t, &mut jar, &flow).await;
        assert_eq!(r.body["status"], "USERNAME_PASSWORD_REQUIRED");
        assert!(
            links(&r).contains(&"password.forgot".to_string()),
            "{}",
            r.text
        );

        let r = act(
            &c,
            &mut jar,
            &flow,
            "password.forgot",
            json!({ "username": "alice" }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["status"], "RECOVERY_CODE_REQUIRED", "{}", r.text);
        let l = links(&r);
        for a in [
            "password.recover",
            "password.sendRecoveryCode",
            "session.reset",
        ] {
            assert!(l.contains(&a.to_string()), "{a}: {}", r.text);
        }
        assert!(!l.contains(&"password.forgot".to_string()), "{}", r.text);
        assert!(
            r.body["_embedded"]["user"].is_null(),
            "not identified yet: {}",
            r.text
        );

        let msgs = outbox_to(&c, "alice@example.com").await;
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        let m = &msgs[0];
        assert_eq!(m["deliveryMethod"], "EMAIL");
        assert_eq!(m["status"], "RECORDED", "no SMTP configured");
        assert_eq!(m["user"]["id"], c.user.as_str());
        assert!(
            m["subject"].as_str().unwrap().contains("recovery code"),
            "{m}"
        );
        let code = code_in(m["body"].as_str().unwrap());
        // Only a hash is kept in the flow.
        let id = flow.rsplit('/').next().unwrap();
        let item =
            c.t.app
                .store
                .runtime_get(flows::KIND, id)
                .await
                .unwrap()
                .unwrap();
        assert!(
            !item.data.to_string().contains(&code),
            "the code is not stored"
        );

        // A wrong code counts.
        let r = recover(&c, &mut jar, &flow, "ABCDEFGH", NEW_PASSWORD).await;
        assert_wrong_code(&r, 4);
        // The right code with a password the policy refuses: the policy's error, the code stays.
        let r = recover(&c, &mut jar, &flow, &code, "short").await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_DATA", None);
        assert_eq!(r.body["details"][0]["target"], "newPassword", "{}", r.text);
        // The right code (typed in lower case) and a good password: signed on.
        let r = recover(&c, &mut jar, &flow, &code.to_lowercase(), NEW_PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);
        assert_eq!(password_status(&c).await, "OK", "the lockout is lifted");
        let back = signon::browser_get(&c.t, &mut jar, r.body["resumeUrl"].as_str().unwrap()).await;
        assert_eq!(back.status, StatusCode::FOUND, "{}", back.text);
        let loc = signon::location(&back);
        assert!(loc.starts_with(&format!("{CB}?")), "{loc}");
        assert!(signon::query_of(&loc).contains_key("code"), "{loc}");

        // The new password works, the old one does not.
        let mut jar2 = Jar::new();
        let flow2 = start(&c, &mut jar2).await;
        let r = act(
            &c,
            &mut jar2,
            &flow2,
            "usernamePassword.check",
            json!({ "username": "alice", "password": PASSWORD }),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        let r = act(
            &c,
            &mut jar2,
            &flow2,
            "usernamePassword.check",
            json!({ "username": "alice", "password": NEW_PASSWORD }),
        )
        .await;
        assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);
    }
}

#[tokio::test]
async fn wrong_expired_and_resent_codes() {
    for db in backends() {
        let c = setup(db).await;
        let mut jar = Jar::new();
        let flow = start(&c, &mut jar).await;
        let r = act(
            &c,
            &mut jar,
            &flow,
            "password.forgot",
            json!({ "username": "alice" }),
        )
        .await;
        assert_eq!(r.body["status"], "RECOVERY_CODE_REQUIRED", "{}", r.text);
        let code = latest_code(&c).await;

        // Five wrong guesses kill the code: even the right one is refused then.
        for left in (0..recovery::MAX_FAILURES).rev() {
            assert_wrong_code(
                &recover(&c, &mut jar, &flow, "WRONG234", NEW_PASSWORD).await,
                left,
            );
        }
        let r = recover(&c, &mut jar, &flow, &code, NEW_PASSWORD).await;
        assert_wrong_code(&r, 0);
        assert!(
            r.body["details"][0]["message"]
                .as_str()
                .unwrap()
                .contains("new code"),
            "{}",
            r.text
        );

        // A new code at once is too soon.
        let r = act(&c, &mut jar, &flow, "password.sendRecoveryCode", json!({})).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "REQUEST_FAILED", None);
        age_recovery(&c, &flow, "lastSentAt", recovery::RESEND_SECONDS).await;
        // The empty body of the media type without +json.
        let r = signon::call(
            &c.t,
            Method::POST,
            &flow,
            &[
                (
                    "content-type",
                    "application/vnd.pingidentity.password.sendRecoveryCode".into(),
                ),
                ("cookie", jar.header().unwrap()),
            ],
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["status"], "RECOVERY_CODE_REQUIRED");
        assert_eq!(outbox_to(&c, "alice@example.com").await.len(), 2);
        let second = latest_code(&c).await;
        assert_ne!(second, code);
        // Only the newest code works; the counter started again.
        assert_wrong_code(&recover(&c, &mut jar, &flow, &code, NEW_PASSWORD).await, 4);

        // After five minutes the code has expired.
        age_recovery(&c, &flow, "expiresAt", recovery::CODE_SECONDS).await;
        assert_wrong_code(
            &recover(&c, &mut jar, &flow, &second, NEW_PASSWORD).await,
            0,
        );

        // At most five codes per flow.
        for _ in 2..recovery::MAX_SENDS {
            age_recovery(&c, &flow, "lastSentAt", recovery::RESEND_SECONDS).await;
            let r = act(&c, &mut jar, &flow, "password.sendRecoveryCode", json!({})).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
        age_recovery(&c, &flow, "lastSentAt", recovery::RESEND_SECONDS).await;
        let r = act(&c, &mut jar, &flow, "password.sendRecoveryCode", json!({})).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "REQUEST_FAILED", None);
        assert!(
            r.body["message"].as_str().unwrap().contains("Too many"),
            "{}",
            r.text
        );
        assert_eq!(
            outbox_to(&c, "alice@example.com").await.len() as i64,
            recovery::MAX_SENDS
        );
        // The newest of them still works.
        let last = latest_code(&c).await;
        let r = recover(&c, &mut jar, &flow, &last, NEW_PASSWORD).await;
        assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);

        // session.reset forgets the recovery.
        let mut jar = Jar::new();
        let flow = start(&c, &mut jar).await;
        act(
            &c,
            &mut jar,
            &flow,
            "password.forgot",
            json!({ "username": "alice" }),
        )
        .await;
        let r = act(&c, &mut jar, &flow, "session.reset", json!({})).await;
        assert_eq!(r.body["status"], "USERNAME_PASSWORD_REQUIRED", "{}", r.text);
        let id = flow.rsplit('/').next().unwrap();
        let item =
            c.t.app
                .store
                .runtime_get(flows::KIND, id)
                .await
                .unwrap()
                .unwrap();
        assert!(item.data["scratch"].get(recovery::SCRATCH_KEY).is_none());
        let r = recover(&c, &mut jar, &flow, &last, NEW_PASSWORD).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None);
    }
}

/// An authorize with `prompt=none` in `jar`: the redirect back to the client.
async fn silent_authorize(c: &Ctx, jar: &mut Jar) -> std::collections::BTreeMap<String, String> {
    let qs = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", c.app.as_str()),
        ("redirect_uri", CB),
        ("scope", "openid profile"),
        ("prompt", "none"),
    ])
    .unwrap();
    let r = signon::browser_get(&c.t, jar, &format!("/{}/as/authorize?{qs}", c.env)).await;
    assert_eq!(r.status, StatusCode::FOUND, "authorize: {}", r.text);
    let loc = signon::location(&r);
    assert!(loc.starts_with(&format!("{CB}?")), "{loc}");
    signon::query_of(&loc)
}

/// A grant at the token endpoint with the app's secret.
async fn token(c: &Ctx, secret: &str, fields: &[(&str, &str)]) -> Resp {
    let url = format!("/{}/as/token", c.env);
    signon::token_form(&c.t, &url, Some((&c.app, secret)), fields).await
}

/// The refresh token a code is exchanged for.
async fn refresh_token_for(c: &Ctx, secret: &str, code: &str) -> String {
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CB),
    ];
    let r = token(c, secret, &fields).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["refresh_token"].as_str().unwrap().to_string()
}

/// Recovery is what a user does when someone else may know the password: the sessions and
/// refresh tokens of every other browser end (here: one that signed on with the old
/// password), while the browser that recovered stays signed on.
#[tokio::test]
async fn recovery_ends_the_other_sign_ons_and_keeps_its_own() {
    for db in backends() {
        let c = setup(db).await;
        let secret = signon::app_secret(&c.t, &c.env, &c.app).await;
        let mut other = Jar::new();
        let params = [
            ("response_type", "code"),
            ("client_id", c.app.as_str()),
            ("redirect_uri", CB),
            ("scope", "openid profile"),
        ];
        let back = signon::sign_on(&c.t, &mut other, &c.env, &params, "alice").await;
        let other_rt = refresh_token_for(&c, &secret, &signon::query_of(&back)["code"]).await;

        let mut jar = Jar::new();
        let flow = start(&c, &mut jar).await;
        let r = act(
            &c,
            &mut jar,
            &flow,
            "password.forgot",
            json!({ "username": "alice" }),
        )
        .await;
        assert_eq!(r.body["status"], "RECOVERY_CODE_REQUIRED", "{}", r.text);
        let code = latest_code(&c).await;
        let r = recover(&c, &mut jar, &flow, &code, NEW_PASSWORD).await;
        assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);
        let back = signon::browser_get(&c.t, &mut jar, r.body["resumeUrl"].as_str().unwrap()).await;
        let own_rt = refresh_token_for(
            &c,
            &secret,
            &signon::query_of(&signon::location(&back))["code"],
        )
        .await;

        // The other browser is signed out, and its refresh token is dead.
        let q = silent_authorize(&c, &mut other).await;
        assert_eq!(
            q.get("error").map(String::as_str),
            Some("login_required"),
            "{q:?}"
        );
        let r = token(
            &c,
            &secret,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &other_rt),
            ],
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert_eq!(r.body["error"], "invalid_grant", "{}", r.text);
        // The browser that recovered is signed on: single sign-on and its refresh token work.
        let q = silent_authorize(&c, &mut jar).await;
        assert!(q.contains_key("code"), "{q:?}");
        let r = token(
            &c,
            &secret,
            &[("grant_type", "refresh_token"), ("refresh_token", &own_rt)],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
}

#[tokio::test]
async fn unknown_users_get_the_same_answer_and_no_mail() {
    for db in backends() {
        let c = setup(db).await;
        // A user without email and a disabled user are treated as unknown.
        let r =
            c.t.post(
                &TestApp::env_path(&c.env, "/users"),
                json!({ "username": "noemail", "password": { "value": PASSWORD } }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let bob = signon::create_user(&c.t, &c.env, "bob").await;
        let r =
            c.t.put(
                &TestApp::env_path(&c.env, &format!("/users/{bob}/enabled")),
                json!({ "enabled": false }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);

        let mut jar = Jar::new();
        let flow = start(&c, &mut jar).await;
        let known = act(
            &c,
            &mut jar,
            &flow,
            "password.forgot",
            json!({ "username": "alice" }),
        )
        .await;
        let known_wrong = recover(&c, &mut jar, &flow, "WRONG234", NEW_PASSWORD).await;
        for name in ["nobody", "noemail", "bob"] {
            let mut jar = Jar::new();
            let flow = start(&c, &mut jar).await;
            let r = act(
                &c,
                &mut jar,
                &flow,
                "password.forgot",
                json!({ "username": name }),
            )
            .await;
            assert_eq!(r.status, known.status, "{name}: {}", r.text);
            assert_eq!(r.body["status"], "RECOVERY_CODE_REQUIRED", "{}", r.text);
            assert_eq!(links(&r), links(&known), "{name}");
            assert_eq!(r.body["_embedded"], known.body["_embedded"], "{name}");
            let w = recover(&c, &mut jar, &flow, "WRONG234", NEW_PASSWORD).await;
            assert_eq!(w.status, known_wrong.status);
            assert_eq!(w.body["details"], known_wrong.body["details"], "{name}");
            assert_eq!(w.body["message"], known_wrong.body["message"], "{name}");
            // Resends behave the same.
            let s = act(&c, &mut jar, &flow, "password.sendRecoveryCode", json!({})).await;
            assert_error(&s, StatusCode::BAD_REQUEST, "REQUEST_FAILED", None);
        }
        // Only alice's message was ever sent.
        let r = c.t.get(&TestApp::env_path(&c.env, "/outbox")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let all = r.body["_embedded"]["messages"].as_array().unwrap();
        assert_eq!(all.len(), 1, "{}", r.text);
        assert_eq!(all[0]["to"], "alice@example.com");
    }
}

#[tokio::test]
async fn recovery_disabled_offers_nothing() {
    for db in backends() {
        let c = setup(db).await;
        let pols = c.t.get(&TestApp::env_path(&c.env, "/signOnPolicies")).await;
        for p in pols.body["_embedded"]["signOnPolicies"].as_array().unwrap() {
            let pid = p["id"].as_str().unwrap();
            let acts =
                c.t.get(&TestApp::env_path(
                    &c.env,
                    &format!("/signOnPolicies/{pid}/actions"),
                ))
                .await;
            for a in acts.body["_embedded"]["actions"].as_array().unwrap() {
                if a["type"] != "LOGIN" {
                    continue;
                }
                let r = c
                    .t
                    .put(
                        &TestApp::env_path(
                            &c.env,
                            &format!("/signOnPolicies/{pid}/actions/{}", a["id"].as_str().unwrap()),
                        ),
                        json!({ "type": "LOGIN", "priority": a["priority"], "recovery": { "enabled": false }, "registration": { "enabled": false } }),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            }
        }
        let mut jar = Jar::new();
        let flow = start(&c, &mut jar).await;
        let r = signon::browser_get(&c.t, &mut jar, &flow).await;
        assert_eq!(r.body["status"], "USERNAME_PASSWORD_REQUIRED");
        assert!(
            !links(&r).contains(&"password.forgot".to_string()),
            "{}",
            r.text
        );
        let r = act(
            &c,
            &mut jar,
            &flow,
            "password.forgot",
            json!({ "username": "alice" }),
        )
        .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None);
        let page = format!(
            "/{}/signon/?flowId={}",
            c.env,
            flow.rsplit('/').next().unwrap()
        );
        let page = signon::browser_get(&c.t, &mut jar, &page).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        assert!(!page.text.contains("Forgot password?"), "{}", page.text);
        assert!(outbox_to(&c, "alice@example.com").await.is_empty());
    }
}

/// The value of a hidden input.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden {name} in:\n{html}"))
        + marker.len();
    html[at..].split('"').next().unwrap().to_string()
}

/// Posts one of the hosted page's forms.
struct PagePost<'a> {
    t: &'a TestApp,
    page: String,
    flow_id: String,
}

impl PagePost<'_> {
    async fn send(&self, jar: &mut Jar, csrf: &str, action: &str, fields: &[(&str, &str)]) -> Resp {
        let mut all = vec![
            ("flowId", self.flow_id.as_str()),
            ("action", action),
            ("csrfToken", csrf),
        ];
        all.extend_from_slice(fields);
        signon::browser_form(self.t, jar, &self.page, &all).await
    }
}

#[tokio::test]
async fn hosted_page_recovers_a_password() {
    let c = setup(None).await;
    let mut jar = Jar::new();
    let flow = start(&c, &mut jar).await;
    let flow_id = flow.rsplit('/').next().unwrap().to_string();
    let page = format!("/{}/signon/?flowId={flow_id}", c.env);
    let post = PagePost {
        t: &c.t,
        page: page.clone(),
        flow_id: flow_id.clone(),
    };
    let r = signon::browser_get(&c.t, &mut jar, &page).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("Forgot password?"), "{}", r.text);
    assert!(
        r.text.contains("name=\"view\" value=\"forgot\""),
        "{}",
        r.text
    );
    let csrf = hidden(&r.text, "csrfToken");

    // The forgot screen (a GET of the same page).
    let r = signon::browser_get(&c.t, &mut jar, &format!("{page}&view=forgot")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("Reset your password"), "{}", r.text);
    assert!(
        r.text.contains("name=\"action\" value=\"password.forgot\""),
        "{}",
        r.text
    );
    // An empty username is refused on the same screen.
    let r = post
        .send(&mut jar, &csrf, "password.forgot", &[("username", "")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("value=\"password.forgot\""), "{}", r.text);

    let r = post
        .send(&mut jar, &csrf, "password.forgot", &[("username", "alice")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let r = signon::browser_get(&c.t, &mut jar, &page).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for needle in [
        "Enter your recovery code",
        "<label for=\"recoveryCode\">Recovery code</label>",
        "autocomplete=\"one-time-code\"",
        "name=\"confirmNewPassword\"",
        "value=\"password.recover\"",
        "value=\"password.sendRecoveryCode\"",
        "Send a new code",
    ] {
        assert!(r.text.contains(needle), "{needle} in:\n{}", r.text);
    }
    let code = latest_code(&c).await;

    // Mismatched confirmation: refused by the page, nothing counted.
    let r = post
        .send(
            &mut jar,
            &csrf,
            "password.recover",
            &[
                ("recoveryCode", &code),
                ("newPassword", NEW_PASSWORD),
                ("confirmNewPassword", "x"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("do not match"), "{}", r.text);
    // A wrong code: the message and the attempts left.
    let r = post
        .send(
            &mut jar,
            &csrf,
            "password.recover",
            &[
                ("recoveryCode", "WRONG234"),
                ("newPassword", NEW_PASSWORD),
                ("confirmNewPassword", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.text.contains("The recovery code is not valid."),
        "{}",
        r.text
    );
    assert!(r.text.contains("4 attempts remaining."), "{}", r.text);
    assert!(r.text.contains("aria-invalid=\"true\""), "{}", r.text);
    assert!(!r.text.contains("WRONG234"), "codes are not echoed");
    // Resend too soon: the limit's message in the page.
    let r = post
        .send(&mut jar, &csrf, "password.sendRecoveryCode", &[])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("Wait"), "{}", r.text);
    // The right code: on to the resume URL.
    let r = post
        .send(
            &mut jar,
            &csrf,
            "password.recover",
            &[
                ("recoveryCode", &code),
                ("newPassword", NEW_PASSWORD),
                ("confirmNewPassword", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(signon::location(&r).contains("/as/resume?flowId="));
}

// ---- SMTP ----

/// A tiny SMTP server: accepts every message and passes each DATA section on.
async fn smtp_sink() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                w.write_all(b"220 sink.test ESMTP\r\n").await.ok();
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.trim_end().to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                        b"250 sink.test\r\n"
                    } else if cmd.starts_with("MAIL")
                        || cmd.starts_with("RCPT")
                        || cmd.starts_with("RSET")
                        || cmd.starts_with("NOOP")
                    {
                        b"250 OK\r\n"
                    } else if cmd == "DATA" {
                        w.write_all(b"354 go ahead\r\n").await.ok();
                        let mut data = String::new();
                        while !data.ends_with("\r\n.\r\n") {
                            let mut l = String::new();
                            if r.read_line(&mut l).await.unwrap_or(0) == 0 {
                                return;
                            }
                            data.push_str(&l);
                        }
                        tx.send(data).ok();
                        b"250 queued\r\n"
                    } else if cmd == "QUIT" {
                        w.write_all(b"221 bye\r\n").await.ok();
                        return;
                    } else {
                        b"502 not implemented\r\n"
                    };
                    w.write_all(reply).await.ok();
                }
            });
        }
    });
    (port, rx)
}

/// The outbox once its newest message is no longer `PENDING` (recovery mail is sent after the
/// flow has answered).
async fn settled_outbox(c: &Ctx, to: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let msgs = outbox_to(c, to).await;
        if msgs.first().is_some_and(|m| m["status"] != "PENDING") {
            return msgs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivery never settled: {msgs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn codes_are_mailed_over_smtp() {
    for db in backends() {
        let (port, mut mails) = smtp_sink().await;
        let t = TestApp::with_settings(db, signon::PUBLIC, |s| {
            s.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
            s.smtp_from = "Lanyard Test <noreply@lanyard.test>".into();
        })
        .await;
        let c = setup_with(t).await;
        let mut jar = Jar::new();
        let flow = start(&c, &mut jar).await;
        let r = act(
            &c,
            &mut jar,
            &flow,
            "password.forgot",
            json!({ "username": "alice" }),
        )
        .await;
        assert_eq!(r.body["status"], "RECOVERY_CODE_REQUIRED", "{}", r.text);
        let mail = tokio::time::timeout(Duration::from_secs(10), mails.recv())
            .await
            .expect("the sink got a mail")
            .unwrap();
        let msgs = settled_outbox(&c, "alice@example.com").await;
        assert_eq!(msgs[0]["status"], "SENT", "{:?}", msgs[0]);
        let code = code_in(msgs[0]["body"].as_str().unwrap());
        assert!(mail.contains(&code), "{mail}");
        assert!(mail.contains("alice@example.com"), "{mail}");
        assert!(mail.contains("noreply@lanyard.test"), "{mail}");
        let r = recover(&c, &mut jar, &flow, &code, NEW_PASSWORD).await;
        assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);
    }
}

#[tokio::test]
async fn a_refusing_smtp_server_is_recorded_and_the_flow_goes_on() {
    for db in backends() {
        // A port nothing listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let t = TestApp::with_settings(db, signon::PUBLIC, |s| {
            s.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        })
        .await;
        let c = setup_with(t).await;
        let mut jar = Jar::new();
        let flow = start(&c, &mut jar).await;
        let r = act(
            &c,
            &mut jar,
            &flow,
            "password.forgot",
            json!({ "username": "alice" }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["status"], "RECOVERY_CODE_REQUIRED", "{}", r.text);
        let msgs = settled_outbox(&c, "alice@example.com").await;
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0]["status"], "FAILED", "{:?}", msgs[0]);
        assert!(
            msgs[0]["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{:?}",
            msgs[0]
        );
        // The code is still readable in the outbox, and works.
        let code = code_in(msgs[0]["body"].as_str().unwrap());
        let r = recover(&c, &mut jar, &flow, &code, NEW_PASSWORD).await;
        assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);
    }
}

// ---- the outbox API ----

#[tokio::test]
async fn outbox_lists_newest_first_and_filters() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let other = t.new_env().await;
        let send = |env: String, channel: Channel, to: &'static str, body: &'static str| {
            let app = t.app.clone();
            async move {
                notifications::deliver(
                    &app,
                    &Message {
                        env_id: &env,
                        channel,
                        to,
                        subject: "s",
                        body,
                        user_id: None,
                        from: None,
                    },
                )
                .await
                .unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        send(env.clone(), Channel::Email, "a@example.com", "one").await;
        send(env.clone(), Channel::Sms, "+15125550100", "two").await;
        send(env.clone(), Channel::Email, "b@example.com", "three").await;
        send(env.clone(), Channel::Email, "a@example.com", "four").await;
        send(other.clone(), Channel::Email, "a@example.com", "elsewhere").await;

        let list = |q: &str| {
            let path = TestApp::env_path(&env, &format!("/outbox{q}"));
            let t = &t;
            async move {
                let r = t.get(&path).await;
                assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
                r.body["_embedded"]["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["body"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(list("").await, ["four", "three", "two", "one"]);
        let q = |f: &str| format!("?{}", serde_urlencoded::to_string([("filter", f)]).unwrap());
        assert_eq!(list(&q("to eq \"a@example.com\"")).await, ["four", "one"]);
        assert_eq!(list(&q("deliveryMethod eq \"SMS\"")).await, ["two"]);
        assert_eq!(
            list(&q(
                "deliveryMethod eq \"EMAIL\" and to eq \"b@example.com\""
            ))
            .await,
            ["three"]
        );
        assert_eq!(list(&q("status eq \"RECORDED\"")).await.len(), 4);
        let r = t.get(&TestApp::env_path(&env, "/outbox?limit=2")).await;
        assert_eq!(
            r.body["_embedded"]["messages"].as_array().unwrap().len(),
            2,
            "{}",
            r.text
        );
        assert!(r.body["_links"]["next"]["href"].is_string(), "{}", r.text);

        // One message by id; and the API needs an admin token.
        let r = t.get(&TestApp::env_path(&env, "/outbox")).await;
        let first = &r.body["_embedded"]["messages"][0];
        let id = first["id"].as_str().unwrap();
        let one = t
            .get(&TestApp::env_path(&env, &format!("/outbox/{id}")))
            .await;
        assert_eq!(one.status, StatusCode::OK, "{}", one.text);
        assert_eq!(one.body["body"], "four");
        assert_eq!(one.body["deliveryMethod"], "EMAIL");
        let anon = t
            .send(
                Method::GET,
                &TestApp::env_path(&env, "/outbox"),
                None,
                None,
                None,
            )
            .await;
        assert_eq!(anon.status, StatusCode::UNAUTHORIZED, "{}", anon.text);
    }
}

#[tokio::test]
async fn recovery_mail_follows_the_template_and_the_users_locale() {
    for db in backends() {
        let c = setup(db).await;
        let p = |rest: &str| TestApp::env_path(&c.env, rest);
        // A French content of the recovery template; alice prefers Canadian French.
        let r =
            c.t.post(
                &p("/templates/recovery_code_template/contents"),
                json!({ "locale": "fr", "deliveryMethod": "Email", "subject": "Votre code",
                        "body": "Bonjour ${user.username},\n\n${code}\n\n(${application.name})",
                        "from": { "name": "Acme", "address": "login@acme.test" } }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let r =
            c.t.patch(
                &p(&format!("/users/{}", c.user)),
                json!({ "locale": "fr-CA" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let mut jar = Jar::new();
        let flow = start(&c, &mut jar).await;
        let r = act(
            &c,
            &mut jar,
            &flow,
            "password.forgot",
            json!({ "username": "alice" }),
        )
        .await;
        assert_eq!(r.body["status"], "RECOVERY_CODE_REQUIRED", "{}", r.text);
        let m = &outbox_to(&c, "alice@example.com").await[0];
        assert_eq!(m["subject"], "Votre code", "{m}");
        let body = m["body"].as_str().unwrap();
        assert!(
            body.starts_with("Bonjour alice,") && body.ends_with("(Web)"),
            "{body}"
        );
        let code = code_in(body);
        let r = recover(&c, &mut jar, &flow, &code, NEW_PASSWORD).await;
        assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);
        // Another user's locale without a content of its own gets the default (English) text.
        let default =
            c.t.get(&p(
                "/templates/recovery_code_template/contents?filter=default%20eq%20true",
            ))
            .await;
        assert_eq!(
            default.body["_embedded"]["contents"][0]["locale"], "en",
            "{}",
            default.text
        );
    }
}
