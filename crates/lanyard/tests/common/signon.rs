//! Sign-on helpers for the authorize / flows / resume / token tests: a small cookie jar (the
//! harness keeps no cookies, and every flow, resume and signoff call is bound to the `ST`
//! cookie), form and flow-action requests, URL parameter parsing, PKCE, and independent
//! ID token verification against `/as/jwks` with the `jsonwebtoken` crate.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{Resp, TestApp};

/// The public URL every test app runs under.
pub const PUBLIC: &str = "http://lanyard.test";

/// A strong password that satisfies the default password policy.
pub const PASSWORD: &str = "Gr33n-Lanyard-Walrus!42";

/// Cookies a browser keeps between calls (one host, so names are enough).
#[derive(Debug, Default, Clone)]
pub struct Jar(BTreeMap<String, String>);

impl Jar {
    pub fn new() -> Jar {
        Jar::default()
    }
    /// Applies the `Set-Cookie` headers of a response (an empty value or `Max-Age=0` deletes).
    pub fn absorb(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(header::SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let mut parts = v.split(';');
            let Some((name, value)) = parts.next().and_then(|kv| kv.trim().split_once('=')) else {
                continue;
            };
            let expired = parts.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if expired || value.is_empty() {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_string(), value.to_string());
            }
        }
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.insert(name.into(), value.into());
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The `Cookie` request header value.
    pub fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// A URL of the public host as a path the router serves; paths pass through.
pub fn local(url: &str) -> String {
    url.strip_prefix(PUBLIC).unwrap_or(url).to_string()
}

/// Sends any request through the router with extra headers.
pub async fn call(
    t: &TestApp,
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> Resp {
    let mut req = Request::builder().method(method).uri(local(url));
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap();
    let resp = t.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        text,
    }
}

fn with_cookies(
    jar: &Jar,
    mut headers: Vec<(&'static str, String)>,
) -> Vec<(&'static str, String)> {
    if let Some(c) = jar.header() {
        headers.push(("cookie", c));
    }
    headers
}

/// A browser GET: sends the jar's cookies and keeps the ones set.
pub async fn browser_get(t: &TestApp, jar: &mut Jar, url: &str) -> Resp {
    let r = call(t, Method::GET, url, &with_cookies(jar, vec![]), None).await;
    jar.absorb(&r.headers);
    r
}

/// A browser form POST (`application/x-www-form-urlencoded`).
pub async fn browser_form(t: &TestApp, jar: &mut Jar, url: &str, fields: &[(&str, &str)]) -> Resp {
    let body = serde_urlencoded::to_string(fields).unwrap().into_bytes();
    let headers = with_cookies(
        jar,
        vec![(
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        )],
    );
    let r = call(t, Method::POST, url, &headers, Some(body)).await;
    jar.absorb(&r.headers);
    r
}

/// A flow action: `POST /{env}/flows/{id}` with `Content-Type: application/vnd.pingidentity.{action}+json`.
pub async fn flow_action(
    t: &TestApp,
    jar: &mut Jar,
    flow_url: &str,
    action: &str,
    body: Value,
) -> Resp {
    let headers = with_cookies(
        jar,
        vec![(
            "content-type",
            format!("application/vnd.pingidentity.{action}+json"),
        )],
    );
    let r = call(
        t,
        Method::POST,
        flow_url,
        &headers,
        Some(body.to_string().into_bytes()),
    )
    .await;
    jar.absorb(&r.headers);
    r
}

/// A token-endpoint style form POST with optional Basic client authentication (no cookies).
pub async fn token_form(
    t: &TestApp,
    url: &str,
    basic: Option<(&str, &str)>,
    fields: &[(&str, &str)],
) -> Resp {
    let mut headers = vec![(
        "content-type",
        "application/x-www-form-urlencoded".to_string(),
    )];
    if let Some((id, secret)) = basic {
        use base64::Engine;
        headers.push((
            "authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
            ),
        ));
    }
    call(
        t,
        Method::POST,
        url,
        &headers,
        Some(serde_urlencoded::to_string(fields).unwrap().into_bytes()),
    )
    .await
}

/// A GET with a bearer token (userinfo, self-service).
pub async fn bearer_get(t: &TestApp, url: &str, token: &str) -> Resp {
    call(
        t,
        Method::GET,
        url,
        &[("authorization", format!("Bearer {token}"))],
        None,
    )
    .await
}

/// The `Location` header of a redirect.
pub fn location(r: &Resp) -> String {
    r.headers
        .get(header::LOCATION)
        .unwrap_or_else(|| panic!("no Location ({}): {}", r.status, r.text))
        .to_str()
        .unwrap()
        .to_string()
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> BTreeMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let q = q.split('#').next().unwrap_or_default();
    serde_urlencoded::from_str::<Vec<(String, String)>>(q)
        .unwrap()
        .into_iter()
        .collect()
}

/// The fragment parameters of a URL.
pub fn fragment_of(url: &str) -> BTreeMap<String, String> {
    let f = url.split_once('#').map(|(_, f)| f).unwrap_or_default();
    serde_urlencoded::from_str::<Vec<(String, String)>>(f)
        .unwrap()
        .into_iter()
        .collect()
}

/// A PKCE pair (RFC 7636): a random 64-character verifier and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    (verifier.clone(), s256(&verifier))
}

pub fn s256(s: &str) -> String {
    use base64::Engine;
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d)
}

/// `at_hash` / `c_hash` for RS256: base64url of the left half of the SHA-256.
pub fn half_hash(s: &str) -> String {
    use base64::Engine;
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}

/// Verifies an RS256 JWT against the environment's published JWKS (by `kid`) and checks
/// `iss` and `aud`; returns the claims.
pub async fn verify_jwt(t: &TestApp, env: &str, token: &str, audience: &str) -> Value {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
    let jwks = call(t, Method::GET, &format!("/{env}/as/jwks"), &[], None).await;
    assert_eq!(jwks.status, 200, "jwks: {}", jwks.text);
    let header = decode_header(token).expect("a JWT header");
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("tokens name their key");
    let jwk = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS: {}", jwks.text));
    assert_eq!(jwk["kty"], "RSA");
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .expect("an RSA key");
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[audience]);
    v.set_issuer(&[format!("{PUBLIC}/{env}/as")]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    decode::<Value>(token, &key, &v)
        .unwrap_or_else(|e| panic!("JWT does not verify: {e}"))
        .claims
}

/// The claims of a JWT without verifying it (for tokens with several audiences, after `verify_jwt`).
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

// ---- setup through the management API ----

/// Id of a resource by name (`openid`, `PingOne API`).
pub async fn resource_id(t: &TestApp, env: &str, name: &str) -> String {
    let r = t.get(&TestApp::env_path(env, "/resources")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["_embedded"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("no resource {name}: {}", r.text))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Ids of a resource's scopes by name.
pub async fn scope_ids(t: &TestApp, env: &str, resource: &str, names: &[&str]) -> Vec<String> {
    let r = t
        .get(&TestApp::env_path(
            env,
            &format!("/resources/{resource}/scopes"),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let all = r.body["_embedded"]["scopes"].as_array().unwrap();
    names
        .iter()
        .map(|n| {
            all.iter()
                .find(|s| s["name"] == *n)
                .unwrap_or_else(|| panic!("no scope {n}: {}", r.text))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Grants the named scopes of a resource to an application.
pub async fn grant(t: &TestApp, env: &str, app: &str, resource_name: &str, scopes: &[&str]) {
    let res = resource_id(t, env, resource_name).await;
    let ids = scope_ids(t, env, &res, scopes).await;
    let body = json!({ "resource": { "id": res }, "scopes": ids.iter().map(|i| json!({ "id": i })).collect::<Vec<_>>() });
    let r = t
        .post(
            &TestApp::env_path(env, &format!("/applications/{app}/grants")),
            body,
        )
        .await;
    assert_eq!(r.status, 201, "grant: {}", r.text);
}

/// Creates an application and returns its id (= client_id).
pub async fn create_app(t: &TestApp, env: &str, body: Value) -> String {
    let r = t.post(&TestApp::env_path(env, "/applications"), body).await;
    assert_eq!(r.status, 201, "application: {}", r.text);
    r.id()
}

pub async fn app_secret(t: &TestApp, env: &str, app: &str) -> String {
    let r = t
        .get(&TestApp::env_path(
            env,
            &format!("/applications/{app}/secret"),
        ))
        .await;
    assert_eq!(r.status, 200, "secret: {}", r.text);
    r.body["secret"].as_str().unwrap().to_string()
}

/// Creates a user in the default population with `PASSWORD`; returns the user's id.
pub async fn create_user(t: &TestApp, env: &str, username: &str) -> String {
    let r = t
        .post(
            &TestApp::env_path(env, "/users"),
            json!({ "username": username, "email": format!("{username}@example.com"), "name": { "given": "Jane", "family": "Doe" } }),
        )
        .await;
    assert_eq!(r.status, 201, "user: {}", r.text);
    let id = r.id();
    let p = t
        .action(
            Method::PUT,
            &TestApp::env_path(env, &format!("/users/{id}/password")),
            "application/vnd.pingidentity.password.set+json",
            Some(json!({ "value": PASSWORD, "forceChange": false })),
        )
        .await;
    assert_eq!(p.status, 200, "password: {}", p.text);
    id
}

/// A web application with the authorization code and refresh token grants, a client secret
/// (Basic), and openid/profile/email granted.
pub fn web_app_body(name: &str, redirect: &str) -> Value {
    json!({
        "name": name, "enabled": true, "type": "WEB_APP", "protocol": "OPENID_CONNECT",
        "responseTypes": ["CODE"], "grantTypes": ["AUTHORIZATION_CODE", "REFRESH_TOKEN"],
        "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC",
        "redirectUris": [redirect], "postLogoutRedirectUris": [format!("{redirect}/logout")],
    })
}

/// The flow id in a sign-on page URL (`…/signon/?flowId=…`).
pub fn flow_id_of(url: &str) -> String {
    query_of(url)
        .get("flowId")
        .cloned()
        .unwrap_or_else(|| panic!("no flowId in {url}"))
}

/// Runs a redirect-mode authorize (GET) through sign-on with username and password and resume;
/// returns the final redirect's `Location`.
pub async fn sign_on(
    t: &TestApp,
    jar: &mut Jar,
    env: &str,
    params: &[(&str, &str)],
    username: &str,
) -> String {
    let qs = serde_urlencoded::to_string(params).unwrap();
    let a = browser_get(t, jar, &format!("/{env}/as/authorize?{qs}")).await;
    assert_eq!(a.status, 302, "authorize: {}", a.text);
    let loc = location(&a);
    if !loc.contains("/signon/") {
        return loc; // single sign-on answered at once
    }
    let flow = format!("/{env}/flows/{}", flow_id_of(&loc));
    let f = flow_action(
        t,
        jar,
        &flow,
        "usernamePassword.check",
        json!({ "username": username, "password": PASSWORD }),
    )
    .await;
    assert_eq!(f.status, 200, "usernamePassword.check: {}", f.text);
    assert_eq!(f.body["status"], "COMPLETED", "{}", f.text);
    let r = browser_get(t, jar, f.body["resumeUrl"].as_str().unwrap()).await;
    assert_eq!(r.status, 302, "resume: {}", r.text);
    location(&r)
}

/// Signs the browser off as a user would: `GET url` (`/{env}/as/signoff?…`), and when that
/// answers with the "Sign off?" confirmation, a click on its button (the POST of its form).
/// Returns the final answer.
pub async fn sign_off(t: &TestApp, jar: &mut Jar, url: &str) -> Resp {
    let r = browser_get(t, jar, url).await;
    if r.status != 200 || !r.text.contains("<form") {
        return r;
    }
    let (action, fields) = form_of(&r.text);
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    browser_form(t, jar, &path_of(&action), &fields).await
}

/// The `action` and the named inputs (name, unescaped value) of a page's first form.
pub fn form_of(html: &str) -> (String, Vec<(String, String)>) {
    let attr = |tag: &str, name: &str| {
        let marker = format!("{name}=\"");
        tag.find(&marker).map(|at| {
            let rest = &tag[at + marker.len()..];
            unescape(rest.split('"').next().unwrap_or_default())
        })
    };
    let form = html
        .split("<form")
        .nth(1)
        .unwrap_or_else(|| panic!("no form in:\n{html}"));
    let form = form.split("</form>").next().unwrap_or_default();
    let action = attr(form.split('>').next().unwrap_or_default(), "action")
        .unwrap_or_else(|| panic!("no form action in:\n{html}"));
    let fields = form
        .split("<input")
        .skip(1)
        .filter_map(|input| {
            let tag = input.split('>').next().unwrap_or_default();
            Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default()))
        })
        .collect();
    (action, fields)
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The path (and query) of an absolute URL of any scheme and host; paths pass through.
pub fn path_of(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or("/".into(), |at| rest[at..].to_string()),
        None => url.to_string(),
    }
}
