//! The hosted sign-on page (`/{envId}/signon/?flowId=…`).
//!
//! In process (no browser): security headers, escaping, CSRF and `ST` cookie refusal, error
//! messages, the password change screen, start over, and the resume redirect.
//!
//! In a real browser: headless Chromium, driven through chromedriver (WebDriver, with
//! fantoccini), types a username and password (and an emailed passcode) into the page, submits
//! the form, follows the redirect to resume and lands on a redirect URI served by this test;
//! the code is then exchanged at the token endpoint. When Chromium or chromedriver is not
//! installed the browser tests fail under CI (CI=true) and are skipped otherwise. Set
//! LANYARD_SIGNON_SCREENSHOT=/path.png to keep a screenshot of the page.

mod common;

use std::os::unix::process::CommandExt;
use std::time::Duration;

use axum::http::StatusCode;
use common::TestApp;
use common::signon::{
    Jar, app_secret, browser_form, browser_get, flow_id_of, grant, location, query_of, token_form,
};
use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

const PASSWORD: &str = "Gr33n-Lanyard-Walrus!42";

struct Setup {
    env: String,
    client_id: String,
    secret: String,
    redirect: String,
}

/// An environment with a WEB_APP (code flow, client_secret_basic), the openid scopes granted,
/// and a user created with a password.
async fn setup(
    t: &TestApp,
    app_name: &str,
    redirect: &str,
    username: &str,
    force_change: bool,
) -> Setup {
    let env = t.new_env().await;
    let r = t
        .post(
            &TestApp::env_path(&env, "/applications"),
            json!({
                "name": app_name, "enabled": true, "type": "WEB_APP", "protocol": "OPENID_CONNECT",
                "grantTypes": ["AUTHORIZATION_CODE"], "responseTypes": ["CODE"],
                "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC", "redirectUris": [redirect],
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "application: {}", r.text);
    let client_id = r.id();
    grant(
        t,
        &env,
        &client_id,
        "openid",
        &["openid", "profile", "email"],
    )
    .await;
    let r = t
        .post(
            &TestApp::env_path(&env, "/users"),
            json!({
                "username": username, "email": "jane@example.com", "name": { "given": "Jane", "family": "Doe" },
                "password": { "value": PASSWORD, "forceChange": force_change },
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "user: {}", r.text);
    let secret = app_secret(t, &env, &client_id).await;
    Setup {
        env,
        client_id,
        secret,
        redirect: redirect.into(),
    }
}

fn authorize_path(s: &Setup) -> String {
    let qs = serde_urlencoded::to_string([
        ("client_id", s.client_id.as_str()),
        ("response_type", "code"),
        ("scope", "openid profile"),
        ("redirect_uri", s.redirect.as_str()),
        ("state", "st-123"),
        ("nonce", "n-456"),
    ])
    .unwrap();
    format!("/{}/as/authorize?{qs}", s.env)
}

/// Authorize in the "browser": returns the sign-on page URL (the jar then holds `ST`).
async fn start(t: &TestApp, jar: &mut Jar, s: &Setup) -> String {
    let r = browser_get(t, jar, &authorize_path(s)).await;
    assert_eq!(r.status, StatusCode::FOUND, "authorize: {}", r.text);
    let page = location(&r);
    assert!(
        page.contains(&format!("/{}/signon/?flowId=", s.env)),
        "{page}"
    );
    assert!(jar.get("ST").is_some(), "authorize sets the session cookie");
    page
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

fn header<'a>(r: &'a common::Resp, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn assert_page_headers(r: &common::Resp) {
    assert!(
        header(r, "content-type").starts_with("text/html"),
        "{:?}",
        r.headers
    );
    let csp = header(r, "content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(header(r, "x-frame-options"), "DENY");
    assert_eq!(header(r, "referrer-policy"), "no-referrer");
    assert_eq!(header(r, "cache-control"), "no-store");
}

/// Posts one of the page's forms.
async fn post_page(
    t: &TestApp,
    jar: &mut Jar,
    page: &str,
    csrf: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> common::Resp {
    let flow_id = flow_id_of(page);
    let mut all = vec![
        ("flowId", flow_id.as_str()),
        ("action", action),
        ("csrfToken", csrf),
    ];
    all.extend_from_slice(fields);
    browser_form(t, jar, page, &all).await
}

#[tokio::test]
async fn page_signs_on_and_redirects_to_resume() {
    let t = TestApp::new(None).await;
    let s = setup(
        &t,
        "Acme Portal",
        "https://app.example.com/cb",
        "jane",
        false,
    )
    .await;
    let mut jar = Jar::new();
    let page = start(&t, &mut jar, &s).await;

    let r = browser_get(&t, &mut jar, &page).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_page_headers(&r);
    let csp = header(&r, "content-security-policy");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|x| x.split('\'').next())
        .expect("a style nonce");
    assert!(
        r.text.contains(&format!("<style nonce=\"{nonce}\">")),
        "the inline style carries the nonce"
    );
    assert!(
        r.text.contains("Acme Portal"),
        "the application's name is shown"
    );
    assert!(r.text.contains("<html lang=\"en\">"));
    for needle in [
        "<label for=\"username\">Username</label>",
        "autocomplete=\"username\"",
        "<label for=\"password\">Password</label>",
        "type=\"password\" autocomplete=\"current-password\"",
        "name=\"action\" value=\"usernamePassword.check\"",
        "method=\"post\"",
    ] {
        assert!(r.text.contains(needle), "{needle} in:\n{}", r.text);
    }
    assert!(!r.text.contains("<script"), "the page needs no JavaScript");
    let csrf = hidden(&r.text, "csrfToken");
    assert!(csrf.len() >= 32, "{csrf}");

    // The same page without the trailing slash.
    let r2 = browser_get(&t, &mut jar, &page.replace("/signon/?", "/signon?")).await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.text);

    // A wrong password: the PingOne message in the page, the username filled in again.
    let r = post_page(
        &t,
        &mut jar,
        &page,
        &csrf,
        "usernamePassword.check",
        &[("username", "jane"), ("password", "nope")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_page_headers(&r);
    assert!(
        r.text.contains("Invalid username and/or password."),
        "{}",
        r.text
    );
    assert!(r.text.contains("role=\"alert\""), "{}", r.text);
    assert!(
        r.text.contains("value=\"jane\""),
        "the username is kept: {}",
        r.text
    );
    assert!(!r.text.contains("nope"), "the password is never echoed");

    // The right one: 303 to the resume URL, which answers the client with a code.
    let r = post_page(
        &t,
        &mut jar,
        &page,
        &csrf,
        "usernamePassword.check",
        &[("username", "jane"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let resume = location(&r);
    assert_eq!(
        resume,
        format!(
            "http://lanyard.test/{}/as/resume?flowId={}",
            s.env,
            flow_id_of(&page)
        )
    );
    let r = browser_get(&t, &mut jar, &resume).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    let cb = location(&r);
    assert!(cb.starts_with("https://app.example.com/cb?"), "{cb}");
    let q = query_of(&cb);
    assert_eq!(q["state"], "st-123");
    let tok = token_form(
        &t,
        &format!("/{}/as/token", s.env),
        Some((&s.client_id, &s.secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", &s.redirect),
        ],
    )
    .await;
    assert_eq!(tok.status, StatusCode::OK, "token: {}", tok.text);
    assert!(
        tok.body["access_token"].is_string() && tok.body["id_token"].is_string(),
        "{}",
        tok.text
    );

    // The finished flow was consumed: the page is a friendly 404 now.
    let r = browser_get(&t, &mut jar, &page).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_page_headers(&r);
    assert!(r.text.contains("This sign-on has expired"), "{}", r.text);
}

#[tokio::test]
async fn everything_shown_is_escaped() {
    let t = TestApp::new(None).await;
    let evil_app = "<img src=x onerror=alert(1)> & \"Co\"";
    let evil_user = "<script>alert('u')</script>";
    let s = setup(&t, evil_app, "https://app.example.com/cb", evil_user, true).await;
    let mut jar = Jar::new();
    let page = start(&t, &mut jar, &s).await;

    let r = browser_get(&t, &mut jar, &page).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.text.contains("<img"), "{}", r.text);
    assert!(
        r.text
            .contains("&lt;img src=x onerror=alert(1)&gt; &amp; &quot;Co&quot;"),
        "{}",
        r.text
    );
    let csrf = hidden(&r.text, "csrfToken");

    // A refused attempt echoes the typed username: escaped.
    let r = post_page(
        &t,
        &mut jar,
        &page,
        &csrf,
        "usernamePassword.check",
        &[("username", evil_user), ("password", "wrong")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(!r.text.contains("<script"), "{}", r.text);
    assert!(
        r.text
            .contains("value=\"&lt;script&gt;alert(&#x27;u&#x27;)&lt;/script&gt;\""),
        "{}",
        r.text
    );

    // The password change screen names the signed-on user: escaped.
    let r = post_page(
        &t,
        &mut jar,
        &page,
        &csrf,
        "usernamePassword.check",
        &[("username", evil_user), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(location(&r), page, "post/redirect/get back to the page");
    let r = browser_get(&t, &mut jar, &page).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("Change your password"), "{}", r.text);
    assert!(
        r.text.contains("name=\"action\" value=\"password.reset\""),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("autocomplete=\"new-password\""),
        "{}",
        r.text
    );
    assert!(
        !r.text.contains("<script") && !r.text.contains("<img"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains(
            "Signed on as <strong>&lt;script&gt;alert(&#x27;u&#x27;)&lt;/script&gt;</strong>"
        ),
        "{}",
        r.text
    );

    // The page's own check: the new password typed twice must match (the engine is not asked).
    let r = post_page(
        &t,
        &mut jar,
        &page,
        &csrf,
        "password.reset",
        &[
            ("currentPassword", PASSWORD),
            ("newPassword", "N3w-Passw0rd-Quokka!"),
            ("confirmNewPassword", "different"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.text.contains("The new passwords do not match."),
        "{}",
        r.text
    );

    // Start over (session.reset): back to username and password.
    let r = post_page(&t, &mut jar, &page, &csrf, "session.reset", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let r = browser_get(&t, &mut jar, &page).await;
    assert!(
        r.text
            .contains("name=\"action\" value=\"usernamePassword.check\""),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn csrf_token_is_required() {
    let t = TestApp::new(None).await;
    let s = setup(&t, "Acme", "https://app.example.com/cb", "jane", false).await;
    let mut jar = Jar::new();
    let page = start(&t, &mut jar, &s).await;
    let r = browser_get(&t, &mut jar, &page).await;
    let csrf = hidden(&r.text, "csrfToken");

    for bad in ["", "x", &format!("{csrf}x")] {
        let r = post_page(
            &t,
            &mut jar,
            &page,
            bad,
            "usernamePassword.check",
            &[("username", "jane"), ("password", PASSWORD)],
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "csrf {bad:?}: {}", r.text);
        assert_page_headers(&r);
        assert!(r.text.contains("This form has expired"), "{}", r.text);
    }
    // The flow did not move: the right token still works.
    let r = post_page(
        &t,
        &mut jar,
        &page,
        &csrf,
        "usernamePassword.check",
        &[("username", "jane"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(
        location(&r).contains("/as/resume?flowId="),
        "{}",
        location(&r)
    );
}

#[tokio::test]
async fn the_flow_belongs_to_its_session_cookie() {
    let t = TestApp::new(None).await;
    let s = setup(&t, "Acme", "https://app.example.com/cb", "jane", false).await;
    let mut jar = Jar::new();
    let page = start(&t, &mut jar, &s).await;
    let r = browser_get(&t, &mut jar, &page).await;
    let csrf = hidden(&r.text, "csrfToken");

    // Another browser (its own ST) and a browser without cookies: refused, even with the token.
    let mut other = Jar::new();
    start(&t, &mut other, &s).await;
    let mut none = Jar::new();
    for jar2 in [&mut other, &mut none] {
        let r = post_page(
            &t,
            jar2,
            &page,
            &csrf,
            "usernamePassword.check",
            &[("username", "jane"), ("password", PASSWORD)],
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert!(r.text.contains("another session"), "{}", r.text);
        let r = browser_get(&t, jar2, &page).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    }
    let r = browser_get(&t, &mut jar, &page).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the owner still sees the page: {}",
        r.text
    );
}

#[tokio::test]
async fn bad_links_get_friendly_pages() {
    let t = TestApp::new(None).await;
    let s = setup(&t, "Acme", "https://app.example.com/cb", "jane", false).await;
    let mut jar = Jar::new();
    start(&t, &mut jar, &s).await;
    let unknown = format!("/{}/signon/?flowId={}", s.env, uuid::Uuid::new_v4());
    let r = browser_get(&t, &mut jar, &unknown).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(r.text.contains("This sign-on has expired"), "{}", r.text);
    let r = browser_get(
        &t,
        &mut jar,
        &format!("/{}/signon/?flowId=not-a-uuid", s.env),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = browser_get(&t, &mut jar, &format!("/{}/signon/", s.env)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(header(&r, "content-type").starts_with("text/html"));
    let r = browser_get(
        &t,
        &mut jar,
        &format!(
            "/{}/signon/?flowId={}",
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4()
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "unknown environment: {}",
        r.text
    );
}

#[tokio::test]
async fn login_hint_fills_in_the_username() {
    let t = TestApp::new(None).await;
    let s = setup(&t, "Acme", "https://app.example.com/cb", "jane", false).await;
    let mut jar = Jar::new();
    let r = browser_get(
        &t,
        &mut jar,
        &format!("{}&login_hint=%3Cjane%3E", authorize_path(&s)),
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    let r = browser_get(&t, &mut jar, &location(&r)).await;
    assert!(
        r.text.contains("value=\"&lt;jane&gt;\""),
        "the hint, escaped, is the username: {}",
        r.text
    );
    // Without a hint the field is empty.
    let page = start(&t, &mut jar, &s).await;
    let r = browser_get(&t, &mut jar, &page).await;
    assert!(!r.text.contains("&lt;jane&gt;"), "{}", r.text);
}

// ---- multi-factor screens ----

/// `setup` plus a LOGIN-then-MFA policy (email and SMS allowed, devices chosen by the user
/// when there are several) assigned to the app, MFA enabled for the user, and an email device
/// with `nickname`; returns the setup and the user id.
async fn setup_mfa(t: &TestApp, redirect: &str, username: &str, nickname: &str) -> (Setup, String) {
    let s = setup(t, "Acme MFA", redirect, username, false).await;
    let p = |rest: &str| TestApp::env_path(&s.env, rest);
    let pol = t
        .post(
            &p("/deviceAuthenticationPolicies"),
            json!({ "name": "Prompt", "authentication": { "deviceSelection": "PROMPT_TO_SELECT" },
                    "sms": { "enabled": true, "otp": { "lifeTime": { "duration": 5, "timeUnit": "MINUTES" }, "failure": { "count": 3, "coolDown": { "duration": 2, "timeUnit": "MINUTES" } } } },
                    "voice": { "enabled": false, "otp": { "lifeTime": { "duration": 5, "timeUnit": "MINUTES" }, "failure": { "count": 3, "coolDown": { "duration": 2, "timeUnit": "MINUTES" } } } },
                    "email": { "enabled": true, "otp": { "lifeTime": { "duration": 5, "timeUnit": "MINUTES" }, "failure": { "count": 3, "coolDown": { "duration": 2, "timeUnit": "MINUTES" } } } },
                    "totp": { "enabled": false, "otp": { "failure": { "count": 3, "coolDown": { "duration": 2, "timeUnit": "MINUTES" } } } } }),
        )
        .await;
    assert_eq!(pol.status, StatusCode::CREATED, "{}", pol.text);
    let sop = t
        .post(&p("/signOnPolicies"), json!({ "name": "LoginMfa" }))
        .await;
    let sop = sop.id();
    for a in [
        json!({ "priority": 1, "type": "LOGIN" }),
        json!({ "priority": 2, "type": "MULTI_FACTOR_AUTHENTICATION", "deviceAuthenticationPolicy": { "id": pol.id() } }),
    ] {
        let r = t
            .post(&p(&format!("/signOnPolicies/{sop}/actions")), a)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = t
        .post(
            &p(&format!(
                "/applications/{}/signOnPolicyAssignments",
                s.client_id
            )),
            json!({ "priority": 1, "signOnPolicy": { "id": sop } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let users = t
        .get(&p(&format!(
            "/users?filter=username%20eq%20%22{username}%22"
        )))
        .await;
    let user = users.body["_embedded"]["users"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = t
        .put(
            &p(&format!("/users/{user}/mfaEnabled")),
            json!({ "mfaEnabled": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = t
        .post(
            &p(&format!("/users/{user}/devices")),
            json!({ "type": "EMAIL", "email": "jane@example.com", "nickname": nickname }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    (s, user)
}

/// The newest passcode emailed to jane@example.com.
async fn emailed_code(t: &TestApp, env: &str) -> String {
    let r = t
        .get(&TestApp::env_path(
            env,
            "/outbox?filter=to%20eq%20%22jane@example.com%22",
        ))
        .await;
    let body = r.body["_embedded"]["messages"][0]["body"]
        .as_str()
        .expect("a message")
        .to_string();
    common::mfa::digits_in(&body, 6).unwrap_or_else(|| panic!("no code in {body}"))
}

#[tokio::test]
async fn mfa_pages_select_a_device_and_check_the_code() {
    let t = TestApp::new(None).await;
    let (s, user) = setup_mfa(
        &t,
        "https://app.example.com/cb",
        "jane.mfa",
        "<b>Work</b> mail",
    )
    .await;
    let r = t
        .post(
            &TestApp::env_path(&s.env, &format!("/users/{user}/devices")),
            json!({ "type": "SMS", "phone": "+15125550123" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let mut jar = Jar::new();
    let page = start(&t, &mut jar, &s).await;
    let r = browser_get(&t, &mut jar, &page).await;
    let csrf = hidden(&r.text, "csrfToken");
    let r = post_page(
        &t,
        &mut jar,
        &page,
        &csrf,
        "usernamePassword.check",
        &[("username", "jane.mfa"), ("password", PASSWORD)],
    )
    .await;
    // The page redirects to itself after a post (PRG); follow it.
    let r = if r.status == StatusCode::SEE_OTHER {
        browser_get(&t, &mut jar, &location(&r)).await
    } else {
        r
    };
    assert_page_headers(&r);
    // Two devices: the user chooses; the nickname is escaped; nothing is sent yet.
    assert!(
        r.text.contains("Choose how to receive a one-time passcode"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("&lt;b&gt;Work&lt;/b&gt; mail"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("<b>Work</b>"));
    assert!(r.text.contains("Text message to *******23"), "{}", r.text);
    let email_form = r
        .text
        .split("<form")
        .find(|f| f.contains("&lt;b&gt;Work&lt;/b&gt; mail"))
        .expect("the email device's form");
    let email_device = email_form
        .split("name=\"device.id\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = post_page(
        &t,
        &mut jar,
        &page,
        &csrf,
        "device.select",
        &[("device.id", &email_device)],
    )
    .await;
    let r = if r.status == StatusCode::SEE_OTHER {
        browser_get(&t, &mut jar, &location(&r)).await
    } else {
        r
    };
    assert!(r.text.contains("Enter your passcode"), "{}", r.text);
    assert!(
        r.text.contains("Send a new code")
            && r.text.contains("Use Text message to *******23 instead"),
        "{}",
        r.text
    );
    // A wrong code shows the attempts left; the right one finishes at the redirect URI.
    let r = post_page(
        &t,
        &mut jar,
        &page,
        &csrf,
        "otp.check",
        &[("otp", "000000")],
    )
    .await;
    let r = if r.status == StatusCode::SEE_OTHER {
        browser_get(&t, &mut jar, &location(&r)).await
    } else {
        r
    };
    assert!(
        r.text.contains("role=\"alert\"") && r.text.contains('2'),
        "{}",
        r.text
    );
    let code = emailed_code(&t, &s.env).await;
    let r = post_page(&t, &mut jar, &page, &csrf, "otp.check", &[("otp", &code)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let resume = location(&r);
    let r = browser_get(&t, &mut jar, &resume).await;
    let back = location(&r);
    assert!(back.starts_with("https://app.example.com/cb?"), "{back}");
    assert!(query_of(&back).contains_key("code"), "{back}");
}

// ---- the real browser ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_on_through_the_hosted_page() {
    let Some(b) = browser("browser sign-on test").await else {
        return;
    };
    let (t, public, redirect, mut callbacks) = serve().await;
    let s = setup(&t, "Acme Browser App", &redirect, "jane.browser", false).await;
    let c = &b.client;
    let username = open_signon_page(c, &public, &s).await;
    let title = c.title().await.unwrap();
    assert!(title.contains("Acme Browser App"), "{title}");
    screenshot(c, "").await;

    // A wrong password first: the error is in the page, the username kept, the password focused.
    username.send_keys("jane.browser").await.unwrap();
    type_password(c, "not-the-password").await;
    click(c, Locator::Css("button.primary")).await;
    let error = "//*[@role='alert'][contains(., 'Invalid username and/or password.')]";
    wait_for(c, Locator::XPath(error)).await;
    for (id, value) in [("username", "jane.browser"), ("password", "")] {
        let field = c.find(Locator::Id(id)).await.unwrap().prop("value").await;
        assert_eq!(field.unwrap().as_deref(), Some(value), "#{id}");
    }
    screenshot(c, "-error").await;
    // After a refused attempt the password has the focus.
    let password = wait_for_focus(c, "password").await;

    // The right password: submit, resume, and land on the client's redirect URI.
    password.send_keys(PASSWORD).await.unwrap();
    click(c, Locator::Css("button.primary")).await;
    let landed = landing(c, &redirect, &mut callbacks).await;
    let tok = redeem(&public, &s, &landed).await;
    assert!(
        tok["access_token"].is_string() && tok["id_token"].is_string(),
        "{tok}"
    );
    let claims = common::signon::claims_of(tok["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], "n-456", "{claims}");
    assert_eq!(claims["aud"], s.client_id.as_str(), "{claims}");
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn chromium_signs_on_with_an_emailed_passcode() {
    let Some(b) = browser("browser MFA test").await else {
        return;
    };
    let (t, public, redirect, mut callbacks) = serve().await;
    let (s, user) = setup_mfa(&t, &redirect, "jane.otp", "Mail").await;
    let r = t
        .post(
            &TestApp::env_path(&s.env, &format!("/users/{user}/devices")),
            json!({ "type": "SMS", "phone": "+15125550123" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let c = &b.client;
    let username = open_signon_page(c, &public, &s).await;
    username.send_keys("jane.otp").await.unwrap();
    type_password(c, PASSWORD).await;
    click(c, Locator::Css("button.primary")).await;

    // Two devices: the page lists them; the user chooses the email device ("Mail").
    let lead = "//p[@class='lead'][contains(., 'Choose how to receive a one-time passcode')]";
    wait_for(c, Locator::XPath(lead)).await;
    let text = c.find(Locator::Css("body")).await.unwrap().text().await;
    let text = text.unwrap();
    assert!(
        text.contains("Mail (Email to ja****@example.com)")
            && text.contains("Text message to *******23"),
        "{text}"
    );
    screenshot(c, "-devices").await;
    let mail = "//button[contains(@class, 'primary')][starts-with(normalize-space(.), 'Mail')]";
    click(c, Locator::XPath(mail)).await;

    // The code is sent and the passcode field has the focus.
    let otp = wait_for_focus(c, "otp").await;
    screenshot(c, "-otp").await;
    let code = emailed_code(&t, &s.env).await;
    otp.send_keys(&code).await.unwrap();
    click(c, Locator::Css("button.primary")).await;
    let landed = landing(c, &redirect, &mut callbacks).await;
    let tok = redeem(&public, &s, &landed).await;
    let claims = common::signon::claims_of(tok["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "email"]), "{claims}");
    b.client.close().await.unwrap();
}

/// A WebDriver session with headless Chromium. Fields drop in order: the session, then
/// chromedriver (killed), then the profile directory.
struct Browser {
    client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

/// chromedriver, in a process group of its own with the Chromium it starts: when dropped (also
/// when the test panics) the whole group is killed, so no browser outlives the test.
struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: kill(2) with the negated pid of our own child signals only its process group.
        unsafe { libc::kill(-(self.0.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// `$env`, or the first of `names` on the PATH.
fn program(env: &str, names: &[&str]) -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(p.into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// Starts chromedriver on a port it picks and opens a session with headless Chromium. When
/// either is not installed: a failure under CI (CI=true), otherwise `None` (the test skips).
async fn browser(test: &str) -> Option<Browser> {
    let chromium = program(
        "LANYARD_CHROMIUM",
        &[
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ],
    );
    let chromedriver = program("LANYARD_CHROMEDRIVER", &["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        let missing = "Chromium or chromedriver is not installed (apt-get install -y chromium \
                       chromium-driver)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{missing}: the {test} cannot run under CI");
        }
        eprintln!("NOTE: {missing}: skipping the {test}");
        return None;
    };
    let mut child = std::process::Command::new(&chromedriver)
        .arg("--port=0")
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
    let stdout = child.stdout.take().unwrap();
    let driver = Driver(child);
    // chromedriver prints its port once it listens; its output is drained until it exits.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let (mut tx, started) = (Some(tx), "ChromeDriver was started successfully on port ");
        let lines = std::io::BufReader::new(stdout).lines();
        for line in lines.map_while(Result::ok) {
            if let Some(port) = line.strip_prefix(started)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(port.trim_end_matches('.').to_string());
            }
        }
    });
    let port = tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .expect("chromedriver did not start listening")
        .expect("chromedriver exited before listening");
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({ "goog:chromeOptions": {
        "binary": chromium,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1000,800", format!("--user-data-dir={}", profile.path().display())],
    }});
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session with headless Chromium");
    Some(Browser {
        client,
        _driver: driver,
        _profile: profile,
    })
}

/// Lanyard on a real port (its public URL pointing there) and a client application's redirect
/// URI: returns the app, the public URL, the redirect URI and the request targets it receives.
async fn serve() -> (TestApp, String, String, UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let t = TestApp::with_public_url(None, &public).await;
    let router = t.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    // The client application: a small page for every request, whose target it reports.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect = format!("http://{}/callback", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let client_app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let _ = tx.send(uri.to_string());
        async { axum::response::Html("<!DOCTYPE html><title>Client</title><p>Signed on</p>") }
    });
    tokio::spawn(async move { axum::serve(listener, client_app).await.unwrap() });
    (t, public, redirect, rx)
}

/// The client sends the browser to authorize; Lanyard sends it on to the sign-on page, where
/// the username field has the focus. Returns that field.
async fn open_signon_page(c: &Client, public: &str, s: &Setup) -> Element {
    let authorize = format!("{public}{}", authorize_path(s));
    c.goto(&authorize).await.unwrap();
    let username = wait_for_focus(c, "username").await;
    let page = c.current_url().await.unwrap().to_string();
    let prefix = format!("{public}/{}/signon/?flowId=", s.env);
    assert!(page.starts_with(&prefix), "{page}");
    username
}

/// A real click in the password field, which then has the focus, and typing.
async fn type_password(c: &Client, password: &str) {
    click(c, Locator::Id("password")).await;
    let field = c.active_element().await.unwrap();
    assert_eq!(field.attr("id").await.unwrap().as_deref(), Some("password"));
    field.send_keys(password).await.unwrap();
}

async fn click(c: &Client, what: Locator<'_>) {
    c.find(what).await.unwrap().click().await.unwrap();
}

/// Waits (up to 45 s) until `what` is in the page.
async fn wait_for(c: &Client, what: Locator<'_>) -> Element {
    let wait = c.wait().at_most(Duration::from_secs(45));
    wait.for_element(what)
        .await
        .unwrap_or_else(|e| panic!("waiting for {what:?}: {e}"))
}

/// Waits until the element with `id` has the focus (autofocus runs once the page is in).
async fn wait_for_focus(c: &Client, id: &str) -> Element {
    wait_for(c, Locator::Css(&format!("#{id}:focus"))).await
}

/// Waits until the browser is at the redirect URI (the client application got the request);
/// checks `state` and returns the URL.
async fn landing(c: &Client, redirect: &str, calls: &mut UnboundedReceiver<String>) -> String {
    let target = tokio::time::timeout(Duration::from_secs(45), calls.recv())
        .await
        .expect("the browser never reached the redirect URI")
        .unwrap();
    assert!(target.starts_with("/callback?"), "{target}");
    let query = &target["/callback?".len()..];
    let landed = url::Url::parse(&format!("{redirect}?{query}")).unwrap();
    c.wait()
        .at_most(Duration::from_secs(45))
        .for_url(&landed)
        .await
        .unwrap_or_else(|e| panic!("the browser is not at {landed}: {e}"));
    let landed = landed.to_string();
    assert_eq!(query_of(&landed)["state"], "st-123", "{landed}");
    landed
}

/// Exchanges the code the browser landed with at the token endpoint, over HTTP.
async fn redeem(public: &str, s: &Setup, landed: &str) -> Value {
    let q = query_of(landed);
    let code = q.get("code").unwrap_or_else(|| panic!("no code: {landed}"));
    let tok = reqwest::Client::new()
        .post(format!("{public}/{}/as/token", s.env))
        .basic_auth(&s.client_id, Some(&s.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", s.redirect.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(tok.status(), 200);
    tok.json().await.unwrap()
}

/// With LANYARD_SIGNON_SCREENSHOT=/path.png, keeps a screenshot of the page as /path{suffix}.png.
async fn screenshot(c: &Client, suffix: &str) {
    if let Ok(path) = std::env::var("LANYARD_SIGNON_SCREENSHOT") {
        let png = c.screenshot().await.unwrap();
        std::fs::write(path.replace(".png", &format!("{suffix}.png")), png).unwrap();
    }
}
