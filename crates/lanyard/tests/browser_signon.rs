//! The hosted sign-on page (`/{envId}/signon/?flowId=…`).
//!
//! In process (no browser): security headers, escaping, CSRF and `ST` cookie refusal, error
//! messages, the password change screen, start over, and the resume redirect.
//!
//! In a real browser: headless Chromium, driven over the DevTools protocol, types a username
//! and password into the page, submits the form, follows the redirect to resume and lands on
//! a redirect URI served by this test; the code is then exchanged at the token endpoint. When
//! Chromium is not installed the browser test fails under CI (CI=true) and is skipped
//! otherwise. Set LANYARD_SIGNON_SCREENSHOT=/path.png to keep a screenshot of the page.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::TestApp;
use common::signon::{
    Jar, app_secret, browser_form, browser_get, flow_id_of, grant, location, query_of, token_form,
};
use serde_json::{Value, json};

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

// ---- the real browser ----

fn chromium() -> Option<String> {
    if let Ok(p) = std::env::var("LANYARD_CHROMIUM") {
        return Some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|p| p.is_file())
    .map(|p| p.display().to_string())
}

/// A minimal Chrome DevTools protocol client over one page's WebSocket.
struct Cdp {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: u64,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        self.next += 1;
        let id = self.next;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws
            .send(Message::Text(msg.into()))
            .await
            .expect("CDP send");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("CDP {method}: no answer"));
            let Some(Ok(Message::Text(text))) = next else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "CDP {method}: {v}");
                return v["result"].clone();
            }
        }
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until the page's URL satisfies `pred` and the document is loaded; returns the URL.
    async fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
        loop {
            let v = self
                .eval("JSON.stringify([location.href, document.readyState])")
                .await;
            let [href, state]: [String; 2] =
                serde_json::from_str(v.as_str().unwrap_or("[\"\",\"\"]")).unwrap();
            if state == "complete" && pred(&href) {
                return href;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waiting for {what}; the browser is at {href} ({state})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A real mouse click in the middle of the element.
    async fn click(&mut self, selector: &str) {
        let js = format!(
            "(() => {{ const r = document.querySelector({}).getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
            json!(selector)
        );
        let xy = self.eval(&js).await;
        let (x, y) = (xy[0].as_f64().unwrap(), xy[1].as_f64().unwrap());
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .await;
        }
    }

    /// Types text into the focused element, one key at a time.
    async fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            let s = c.to_string();
            self.call(
                "Input.dispatchKeyEvent",
                json!({ "type": "keyDown", "text": s, "unmodifiedText": s, "key": s }),
            )
            .await;
            self.call(
                "Input.dispatchKeyEvent",
                json!({ "type": "keyUp", "key": s }),
            )
            .await;
        }
    }

    async fn active_id(&mut self) -> String {
        self.eval("document.activeElement && document.activeElement.id")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// A one-route HTTP server standing in for the client application: it answers every request
/// with a small page and reports the request target.
async fn callback_server() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let target = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                let body = "<!DOCTYPE html><title>Client</title><p>Signed on</p>";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = tx.send(target);
            });
        }
    });
    (port, rx)
}

/// Starts headless Chromium with a DevTools port; returns the process and a client for its page.
async fn launch(binary: &str, profile: &std::path::Path) -> (tokio::process::Child, Cdp) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-sync",
            "--password-store=basic",
            "--window-size=1000,800",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
    let stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let ws_browser = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.split("DevTools listening on ").nth(1) {
                return Some(url.trim().to_string());
            }
            seen.push(line);
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| {
        panic!(
            "Chromium did not open its DevTools port; its output:\n{}",
            seen.join("\n")
        )
    });
    // Keep draining Chromium's log so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let port = ws_browser
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|x| x.split('/').next())
        .expect("a DevTools port")
        .to_string();
    let targets: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page_ws = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "page")
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .unwrap_or_else(|| panic!("no page target: {targets}"))
        .to_string();
    let (ws, _) = tokio_tungstenite::connect_async(page_ws.as_str())
        .await
        .expect("CDP connect");
    (child, Cdp { ws, next: 0 })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_on_through_the_hosted_page() {
    let Some(binary) = chromium() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "Chromium is not installed (apt-get install -y chromium): the browser sign-on test cannot run under CI"
            );
        }
        eprintln!(
            "NOTE: chromium is not installed: skipping the browser sign-on test (apt-get install -y chromium)"
        );
        return;
    };

    // Lanyard on a real port, its public URL pointing there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let t = TestApp::with_public_url(None, &public).await;
    let router = t.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let (cb_port, mut callbacks) = callback_server().await;
    let redirect = format!("http://127.0.0.1:{cb_port}/callback");
    let s = setup(&t, "Acme Browser App", &redirect, "jane.browser", false).await;

    let profile = tempfile::tempdir().unwrap();
    let (mut child, mut cdp) = launch(&binary, profile.path()).await;
    cdp.call("Page.enable", json!({})).await;

    // The client sends the browser to authorize; Lanyard sends it on to the sign-on page.
    cdp.call(
        "Page.navigate",
        json!({ "url": format!("{public}{}", authorize_path(&s)) }),
    )
    .await;
    let page = cdp
        .wait_for("the sign-on page", |u| u.contains("/signon/?flowId="))
        .await;
    assert!(
        page.starts_with(&format!("{public}/{}/signon/", s.env)),
        "{page}"
    );
    let title = cdp.eval("document.title").await;
    assert!(
        title
            .as_str()
            .unwrap_or_default()
            .contains("Acme Browser App"),
        "{title}"
    );
    assert_eq!(
        cdp.active_id().await,
        "username",
        "the username field has the focus"
    );

    if let Ok(path) = std::env::var("LANYARD_SIGNON_SCREENSHOT") {
        use base64::Engine;
        let shot = cdp
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(&path, png).unwrap();
    }

    // A wrong password first: the error is in the page, the username kept, the password focused.
    cdp.type_text("jane.browser").await;
    cdp.click("#password").await;
    assert_eq!(cdp.active_id().await, "password");
    cdp.type_text("not-the-password").await;
    cdp.click("button.primary").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        let alert = cdp
            .eval("(document.querySelector('[role=alert]') || {}).textContent || ''")
            .await;
        if alert
            .as_str()
            .unwrap_or_default()
            .contains("Invalid username and/or password.")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no error shown after a wrong password"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        cdp.eval("document.getElementById('username').value").await,
        "jane.browser"
    );
    assert_eq!(
        cdp.eval("document.getElementById('password').value").await,
        ""
    );
    if let Ok(path) = std::env::var("LANYARD_SIGNON_SCREENSHOT") {
        use base64::Engine;
        let shot = cdp
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path.replace(".png", "-error.png"), png).unwrap();
    }
    assert_eq!(
        cdp.active_id().await,
        "password",
        "after a refused attempt the password has the focus"
    );

    // The right password: submit, resume, and land on the client's redirect URI.
    cdp.type_text(PASSWORD).await;
    cdp.click("button.primary").await;
    let target = tokio::time::timeout(Duration::from_secs(45), callbacks.recv())
        .await
        .expect("the browser never reached the redirect URI")
        .unwrap();
    let landed = cdp
        .wait_for("the redirect URI", |u| u.starts_with(&redirect))
        .await;
    assert!(target.starts_with("/callback?"), "{target}");
    let q = query_of(&landed);
    assert_eq!(q["state"], "st-123", "{landed}");
    let code = q
        .get("code")
        .unwrap_or_else(|| panic!("no code: {landed}"))
        .clone();

    let tok = reqwest::Client::new()
        .post(format!("{public}/{}/as/token", s.env))
        .basic_auth(&s.client_id, Some(&s.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(tok.status(), 200);
    let tok: Value = tok.json().await.unwrap();
    assert!(
        tok["access_token"].is_string() && tok["id_token"].is_string(),
        "{tok}"
    );
    let claims = common::signon::claims_of(tok["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], "n-456", "{claims}");
    assert_eq!(claims["aud"], s.client_id.as_str(), "{claims}");

    let _ = child.kill().await;
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

#[tokio::test]
async fn chromium_signs_on_with_an_emailed_passcode() {
    let Some(binary) = chromium() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "Chromium is not installed (apt-get install -y chromium): the browser MFA test cannot run under CI"
            );
        }
        eprintln!("NOTE: chromium is not installed: skipping the browser MFA test");
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let t = TestApp::with_public_url(None, &public).await;
    let router = t.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let (cb_port, mut callbacks) = callback_server().await;
    let redirect = format!("http://127.0.0.1:{cb_port}/callback");
    let (s, user) = setup_mfa(&t, &redirect, "jane.otp", "Mail").await;
    let r = t
        .post(
            &TestApp::env_path(&s.env, &format!("/users/{user}/devices")),
            json!({ "type": "SMS", "phone": "+15125550123" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let profile = tempfile::tempdir().unwrap();
    let (mut child, mut cdp) = launch(&binary, profile.path()).await;
    cdp.call("Page.enable", json!({})).await;
    cdp.call(
        "Page.navigate",
        json!({ "url": format!("{public}{}", authorize_path(&s)) }),
    )
    .await;
    cdp.wait_for("the sign-on page", |u| u.contains("/signon/?flowId="))
        .await;
    wait_for_focus(&mut cdp, "username").await;
    cdp.type_text("jane.otp").await;
    cdp.click("#password").await;
    cdp.type_text(PASSWORD).await;
    cdp.click("button.primary").await;
    // Two devices: the page lists them; the user chooses the email device ("Mail").
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        // Between the POST and the next page there may be no body yet.
        let text = cdp
            .eval("document.body ? document.body.innerText : ''")
            .await;
        let text = text.as_str().unwrap_or_default();
        if text.contains("Choose how to receive a one-time passcode") {
            assert!(
                text.contains("Mail (Email to ja****@example.com)")
                    && text.contains("Text message to *******23"),
                "{text}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the device list never came: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    screenshot(&mut cdp, "-devices").await;
    cdp.eval("[...document.querySelectorAll('button.primary')].find(b => b.textContent.startsWith('Mail')).click()").await;
    // The code is sent and the passcode field has the focus.
    wait_for_focus(&mut cdp, "otp").await;
    screenshot(&mut cdp, "-otp").await;
    let code = emailed_code(&t, &s.env).await;
    cdp.type_text(&code).await;
    cdp.click("button.primary").await;
    let target = tokio::time::timeout(Duration::from_secs(45), callbacks.recv())
        .await
        .expect("the browser never reached the redirect URI")
        .unwrap();
    assert!(target.starts_with("/callback?"), "{target}");
    let landed = cdp
        .wait_for("the redirect URI", |u| u.starts_with(&redirect))
        .await;
    let code = query_of(&landed)["code"].clone();
    let tok = reqwest::Client::new()
        .post(format!("{public}/{}/as/token", s.env))
        .basic_auth(&s.client_id, Some(&s.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(tok.status(), 200);
    let tok: Value = tok.json().await.unwrap();
    let claims = common::signon::claims_of(tok["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "email"]), "{claims}");
    let _ = child.kill().await;
}

/// Waits until the element with `id` has the focus (the page may still be loading).
async fn wait_for_focus(cdp: &mut Cdp, id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    while cdp.active_id().await != id {
        assert!(
            tokio::time::Instant::now() < deadline,
            "#{id} never got the focus"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// With LANYARD_SIGNON_SCREENSHOT=/path.png, keeps a screenshot of the page as /path{suffix}.png.
async fn screenshot(cdp: &mut Cdp, suffix: &str) {
    let Ok(path) = std::env::var("LANYARD_SIGNON_SCREENSHOT") else {
        return;
    };
    use base64::Engine;
    let shot = cdp
        .call("Page.captureScreenshot", json!({ "format": "png" }))
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let _ = std::fs::write(path.replace(".png", &format!("{suffix}.png")), png);
}
