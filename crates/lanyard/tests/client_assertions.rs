//! Client authentication with a client assertion (RFC 7523 §2.2, OIDC Core §9):
//! `client_secret_jwt` (HS256/384/512 keyed with the client secret) and `private_key_jwt`
//! (RS256/384/512 with a key of the application's `jwks`) at `/as/token`, `/as/introspect` and
//! `/as/revoke`, and every way an assertion is refused with 401 `invalid_client`.

mod common;

use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair};
use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::signon::{self, Jar, PUBLIC};
use common::{Resp, TestApp, backends};
use serde_json::{Value, json};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const CB: &str = "https://app.example.com/cb";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An RSA key the client holds, and its public JWK.
struct ClientKey {
    pair: RsaKeyPair,
    kid: String,
}

impl ClientKey {
    fn generate(kid: &str) -> ClientKey {
        ClientKey {
            pair: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
            kid: kid.into(),
        }
    }
    fn jwk(&self) -> Value {
        let pk = self.pair.public_key();
        json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
            "n": b64(pk.modulus().big_endian_without_leading_zero()),
            "e": b64(pk.exponent().big_endian_without_leading_zero()),
        })
    }
    /// The application's `jwks` value: a JSON Web Key Set as a string.
    fn jwks(&self) -> String {
        json!({ "keys": [self.jwk()] }).to_string()
    }
    fn sign(&self, alg: &str, claims: &Value) -> String {
        let header = json!({ "alg": alg, "typ": "JWT", "kid": self.kid });
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let enc = match alg {
            "RS256" => &signature::RSA_PKCS1_SHA256,
            "RS384" => &signature::RSA_PKCS1_SHA384,
            _ => &signature::RSA_PKCS1_SHA512,
        };
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                enc,
                &aws_lc_rs::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", b64(sig))
    }
}

/// A client_secret_jwt assertion: HMAC keyed with `secret`.
fn sign_hs(alg: &str, secret: &[u8], claims: &Value) -> String {
    let header = json!({ "alg": alg, "typ": "JWT" });
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let algo = match alg {
        "HS256" => aws_lc_rs::hmac::HMAC_SHA256,
        "HS384" => aws_lc_rs::hmac::HMAC_SHA384,
        _ => aws_lc_rs::hmac::HMAC_SHA512,
    };
    let tag = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(algo, secret), input.as_bytes());
    format!("{input}.{}", b64(tag))
}

/// An unsigned JWT (`alg: none`).
fn unsigned(claims: &Value) -> String {
    let header = json!({ "alg": "none", "typ": "JWT" });
    format!("{}.{}.", b64(header.to_string()), b64(claims.to_string()))
}

/// Valid assertion claims for `client` at the token endpoint of `env`, good for 5 minutes.
fn claims(env: &str, client: &str) -> Value {
    let n = now();
    json!({
        "iss": client, "sub": client,
        "aud": format!("{PUBLIC}/{env}/as/token"),
        "iat": n, "exp": n + 300,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

fn with(mut c: Value, k: &str, v: Value) -> Value {
    c[k] = v;
    c
}

/// POSTs a form with a client assertion to `/{env}/as/{endpoint}`.
async fn post_assertion(
    t: &TestApp,
    env: &str,
    endpoint: &str,
    assertion: &str,
    fields: &[(&str, &str)],
) -> Resp {
    let mut f = fields.to_vec();
    f.extend([
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ]);
    signon::token_form(t, &format!("/{env}/as/{endpoint}"), None, &f).await
}

async fn cc(t: &TestApp, env: &str, assertion: &str) -> Resp {
    post_assertion(
        t,
        env,
        "token",
        assertion,
        &[("grant_type", "client_credentials")],
    )
    .await
}

#[track_caller]
fn assert_oauth(r: &Resp, status: StatusCode, error: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["error"], error, "{}", r.text);
    assert!(
        r.body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{}",
        r.text
    );
}

/// 401 invalid_client whose description mentions `words`.
#[track_caller]
fn refused(r: &Resp, words: &str) {
    assert_oauth(r, StatusCode::UNAUTHORIZED, "invalid_client");
    let d = r.body["error_description"].as_str().unwrap();
    assert!(
        d.to_lowercase().contains(&words.to_lowercase()),
        "expected '{words}' in: {d}"
    );
}

fn worker(name: &str, method: &str) -> Value {
    json!({
        "name": name, "protocol": "OPENID_CONNECT", "type": "WORKER", "enabled": true,
        "tokenEndpointAuthMethod": method, "assignActorRoles": false,
    })
}

/// A SERVICE application with the client_credentials grant and `orders:read` of a custom
/// resource granted.
async fn service_app(t: &TestApp, env: &str, method: &str, extra: Value) -> String {
    let mut body = json!({
        "name": format!("Svc {}", uuid::Uuid::new_v4()), "protocol": "OPENID_CONNECT",
        "type": "SERVICE", "enabled": true,
        "grantTypes": ["CLIENT_CREDENTIALS"], "tokenEndpointAuthMethod": method,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let app = signon::create_app(t, env, body).await;
    signon::grant(t, env, &app, "Orders API", &["orders:read"]).await;
    app
}

async fn orders_api(t: &TestApp, env: &str) {
    let r = t
        .post(
            &TestApp::env_path(env, "/resources"),
            json!({ "name": "Orders API", "audience": "https://orders.example.com" }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let s = t
        .post(
            &TestApp::env_path(env, &format!("/resources/{}/scopes", r.id())),
            json!({ "name": "orders:read" }),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.text);
}

#[tokio::test]
async fn client_secret_jwt_authenticates_a_worker_and_a_service_app() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let app = signon::create_app(&t, &env, worker("Worker JWT", "CLIENT_SECRET_JWT")).await;
        let secret = signon::app_secret(&t, &env, &app).await;

        // HS256, aud = the token endpoint.
        let r = cc(
            &t,
            &env,
            &sign_hs("HS256", secret.as_bytes(), &claims(&env, &app)),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let at = r.body["access_token"].as_str().unwrap();
        let c = signon::claims_of(at);
        assert_eq!(c["client_id"], app.as_str());
        assert_eq!(c["aud"], json!(["https://api.pingone.com"]));

        // HS384 and HS512, aud = the issuer (string and array); client_id in the form as well.
        let issuer = format!("{PUBLIC}/{env}/as");
        let a = sign_hs(
            "HS384",
            secret.as_bytes(),
            &with(claims(&env, &app), "aud", json!(issuer)),
        );
        let r = post_assertion(
            &t,
            &env,
            "token",
            &a,
            &[("grant_type", "client_credentials"), ("client_id", &app)],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let a = sign_hs(
            "HS512",
            secret.as_bytes(),
            &with(
                claims(&env, &app),
                "aud",
                json!(["https://elsewhere.example.com", issuer]),
            ),
        );
        assert_eq!(cc(&t, &env, &a).await.status, StatusCode::OK);

        // A SERVICE application gets a token for its granted custom scope.
        orders_api(&t, &env).await;
        let svc = service_app(&t, &env, "CLIENT_SECRET_JWT", json!({})).await;
        let svc_secret = signon::app_secret(&t, &env, &svc).await;
        let r = cc(
            &t,
            &env,
            &sign_hs("HS256", svc_secret.as_bytes(), &claims(&env, &svc)),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["scope"], "orders:read");

        // Refusals specific to client_secret_jwt.
        refused(
            &cc(
                &t,
                &env,
                &sign_hs(
                    "HS256",
                    b"not-the-secret-of-this-application",
                    &claims(&env, &app),
                ),
            )
            .await,
            "signature",
        );
        // Another application's secret.
        refused(
            &cc(
                &t,
                &env,
                &sign_hs("HS256", svc_secret.as_bytes(), &claims(&env, &app)),
            )
            .await,
            "signature",
        );
        // An RSA-signed assertion for a CLIENT_SECRET_JWT application.
        let key = ClientKey::generate("k1");
        refused(
            &cc(&t, &env, &key.sign("RS256", &claims(&env, &app))).await,
            "CLIENT_SECRET_JWT",
        );
        // The secret the right way, by the wrong method (client_secret_basic, client_secret_post).
        let r = t
            .form(
                &format!("/{env}/as/token"),
                Some((&app, &secret)),
                &[("grant_type", "client_credentials")],
            )
            .await;
        refused(&r, "CLIENT_SECRET_JWT");
        let r = signon::token_form(
            &t,
            &format!("/{env}/as/token"),
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &app),
                ("client_secret", &secret),
            ],
        )
        .await;
        refused(&r, "CLIENT_SECRET_JWT");
        // And the other way round: an assertion for a client_secret_basic application.
        let basic =
            signon::create_app(&t, &env, worker("Worker Basic", "CLIENT_SECRET_BASIC")).await;
        let basic_secret = signon::app_secret(&t, &env, &basic).await;
        refused(
            &cc(
                &t,
                &env,
                &sign_hs("HS256", basic_secret.as_bytes(), &claims(&env, &basic)),
            )
            .await,
            "CLIENT_SECRET_BASIC",
        );
    }
}

#[tokio::test]
async fn private_key_jwt_authenticates_with_a_key_of_the_jwks() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let key = ClientKey::generate("client-key-1");
        let mut body = worker("Worker PKJ", "PRIVATE_KEY_JWT");
        body["jwks"] = json!(key.jwks());
        let app = signon::create_app(&t, &env, body).await;

        let r = cc(&t, &env, &key.sign("RS256", &claims(&env, &app))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let at = r.body["access_token"].as_str().unwrap();
        assert_eq!(signon::claims_of(at)["client_id"], app.as_str());
        // The JWK says RS256: RS384 with that key is refused.
        refused(
            &cc(&t, &env, &key.sign("RS384", &claims(&env, &app))).await,
            "RS384",
        );
        // A JWK without `alg` serves RS256, RS384 and RS512.
        let mut jwk = key.jwk();
        jwk.as_object_mut().unwrap().remove("alg");
        let mut body = worker("Worker any RS", "PRIVATE_KEY_JWT");
        body["jwks"] = json!(json!({ "keys": [jwk] }).to_string());
        let any_rs = signon::create_app(&t, &env, body).await;
        for alg in ["RS256", "RS384", "RS512"] {
            let r = cc(&t, &env, &key.sign(alg, &claims(&env, &any_rs))).await;
            assert_eq!(r.status, StatusCode::OK, "{alg}: {}", r.text);
        }

        // A SERVICE application.
        orders_api(&t, &env).await;
        let svc_key = ClientKey::generate("svc-key");
        let svc = service_app(
            &t,
            &env,
            "PRIVATE_KEY_JWT",
            json!({ "jwks": svc_key.jwks() }),
        )
        .await;
        let r = cc(&t, &env, &svc_key.sign("RS256", &claims(&env, &svc))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["scope"], "orders:read");

        // Another key with the same kid does not verify.
        let impostor = ClientKey::generate("client-key-1");
        refused(
            &cc(&t, &env, &impostor.sign("RS256", &claims(&env, &app))).await,
            "signature",
        );
        // A kid the jwks does not have.
        let stranger = ClientKey::generate("unknown-kid");
        refused(
            &cc(&t, &env, &stranger.sign("RS256", &claims(&env, &app))).await,
            "kid",
        );
        // The other application's key.
        refused(
            &cc(&t, &env, &svc_key.sign("RS256", &claims(&env, &app))).await,
            "kid",
        );

        // Algorithm confusion: HS256 keyed with the public JWK, or with the application secret.
        let secret = signon::app_secret(&t, &env, &app).await;
        for hmac_key in [
            key.jwks(),
            key.jwk()["n"].as_str().unwrap().to_string(),
            secret,
        ] {
            refused(
                &cc(
                    &t,
                    &env,
                    &sign_hs("HS256", hmac_key.as_bytes(), &claims(&env, &app)),
                )
                .await,
                "PRIVATE_KEY_JWT",
            );
        }
        // alg: none.
        refused(&cc(&t, &env, &unsigned(&claims(&env, &app))).await, "alg");
        // A tampered payload under a valid signature.
        let good = key.sign("RS256", &claims(&env, &app));
        let parts: Vec<&str> = good.split('.').collect();
        let forged = with(claims(&env, &app), "exp", json!(now() + 600));
        let tampered = format!("{}.{}.{}", parts[0], b64(forged.to_string()), parts[2]);
        refused(&cc(&t, &env, &tampered).await, "signature");
        // client_secret_basic for a PRIVATE_KEY_JWT application.
        let r = t
            .form(
                &format!("/{env}/as/token"),
                Some((&app, &signon::app_secret(&t, &env, &app).await)),
                &[("grant_type", "client_credentials")],
            )
            .await;
        refused(&r, "PRIVATE_KEY_JWT");

        // jwksUrl only: the keys are fetched from there (once, then cached).
        let (base, hits) = jwks_server(key.jwks()).await;
        let mut body = worker("Worker URL", "PRIVATE_KEY_JWT");
        body["jwksUrl"] = json!(format!("{base}/jwks.json"));
        let url_app = signon::create_app(&t, &env, body).await;
        for _ in 0..2 {
            let r = cc(&t, &env, &key.sign("RS256", &claims(&env, &url_app))).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "fetched once, then cached"
        );
        refused(
            &cc(&t, &env, &stranger.sign("RS256", &claims(&env, &url_app))).await,
            "kid",
        );
        // A jwksUrl that answers 500, or that nothing listens on, cannot verify anything; and
        // the refusal is the same sentence whatever the key server did, so a token request
        // cannot probe what answers where (issue 15).
        for url in [
            format!("{base}/broken"),
            "http://127.0.0.1:9/jwks.json".to_string(),
        ] {
            let mut body = worker(&format!("Worker {url}"), "PRIVATE_KEY_JWT");
            body["jwksUrl"] = json!(url);
            let bad_app = signon::create_app(&t, &env, body).await;
            let r = cc(&t, &env, &key.sign("RS256", &claims(&env, &bad_app))).await;
            refused(&r, "jwksUrl");
            assert_eq!(r.body["error_description"], JWKS_URL_FAILED, "{url}");
        }
    }
}

/// A local server publishing `jwks` at `/jwks.json` (counting fetches) and failing at `/broken`.
async fn jwks_server(jwks: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = axum::Router::new()
        .route(
            "/jwks.json",
            axum::routing::get(move || {
                let jwks = jwks.clone();
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    ([("content-type", "application/json")], jwks)
                }
            }),
        )
        .route(
            "/broken",
            axum::routing::get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, hits)
}

/// The one description of a refusal caused by a jwksUrl that could not be used.
const JWKS_URL_FAILED: &str = "The client's keys could not be obtained from its jwksUrl.";

/// Issue 15 (SSRF): anyone may send a token request with a `private_key_jwt` assertion, and
/// Lanyard then fetches the application's jwksUrl. With the outbound guard on (the default
/// outside tests), a jwksUrl on Lanyard's own network is never fetched, whether it names an
/// IP literal, spells it otherwise, or uses a name that resolves there; the refusal names
/// neither the address nor why.
#[tokio::test]
async fn a_jwks_url_on_the_servers_own_network_is_not_fetched() {
    let t = TestApp::with_settings(None, PUBLIC, |s| s.outbound_allow_private = false).await;
    let env = t.new_env().await;
    let key = ClientKey::generate("inside");
    let (base, hits) = jwks_server(key.jwks()).await;
    let port = base.rsplit(':').next().unwrap();
    for url in [
        format!("{base}/jwks.json"),
        format!("http://localhost:{port}/jwks.json"),
        format!("http://[::ffff:127.0.0.1]:{port}/jwks.json"),
        format!("http://[::1]:{port}/jwks.json"),
        format!("http://2130706433:{port}/jwks.json"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.1.2.3/jwks.json".to_string(),
        "http://[fd00::1]/jwks.json".to_string(),
    ] {
        let mut body = worker(&format!("Inside {url}"), "PRIVATE_KEY_JWT");
        body["jwksUrl"] = json!(url);
        let app = signon::create_app(&t, &env, body).await;
        let r = cc(&t, &env, &key.sign("RS256", &claims(&env, &app))).await;
        assert_oauth(&r, StatusCode::UNAUTHORIZED, "invalid_client");
        assert_eq!(
            r.body["error_description"], JWKS_URL_FAILED,
            "{url}: {}",
            r.text
        );
    }
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the local key server was never called"
    );
}

#[tokio::test]
async fn assertion_claims_and_replays_are_checked() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let key = ClientKey::generate("k");
        let mut body = worker("Worker PKJ", "PRIVATE_KEY_JWT");
        body["jwks"] = json!(key.jwks());
        let app = signon::create_app(&t, &env, body).await;
        let hs_app = signon::create_app(&t, &env, worker("Worker HS", "CLIENT_SECRET_JWT")).await;
        let hs_secret = signon::app_secret(&t, &env, &hs_app).await;
        let n = now();
        let base = || claims(&env, &app);

        // Wrong aud: another environment's endpoint, the userinfo endpoint, missing.
        let other_env = t.new_env().await;
        for aud in [
            json!(format!("{PUBLIC}/{other_env}/as/token")),
            json!(format!("{PUBLIC}/{env}/as/userinfo")),
            json!("https://api.pingone.com"),
            json!([]),
        ] {
            refused(
                &cc(&t, &env, &key.sign("RS256", &with(base(), "aud", aud))).await,
                "aud",
            );
        }
        let mut no_aud = base();
        no_aud.as_object_mut().unwrap().remove("aud");
        refused(&cc(&t, &env, &key.sign("RS256", &no_aud)).await, "aud");
        // Expired; no exp; exp more than an hour ahead.
        refused(
            &cc(
                &t,
                &env,
                &key.sign("RS256", &with(base(), "exp", json!(n - 5))),
            )
            .await,
            "expired",
        );
        let mut no_exp = base();
        no_exp.as_object_mut().unwrap().remove("exp");
        refused(&cc(&t, &env, &key.sign("RS256", &no_exp)).await, "exp");
        refused(
            &cc(
                &t,
                &env,
                &key.sign("RS256", &with(base(), "exp", json!(n + 7200))),
            )
            .await,
            "one hour",
        );
        // nbf in the future (a past nbf is fine).
        refused(
            &cc(
                &t,
                &env,
                &key.sign("RS256", &with(base(), "nbf", json!(n + 600))),
            )
            .await,
            "nbf",
        );
        let r = cc(
            &t,
            &env,
            &key.sign("RS256", &with(base(), "nbf", json!(n - 10))),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        // iss ≠ sub; iss or sub another client.
        refused(
            &cc(
                &t,
                &env,
                &key.sign("RS256", &with(base(), "iss", json!(hs_app))),
            )
            .await,
            "iss",
        );
        refused(
            &cc(
                &t,
                &env,
                &sign_hs(
                    "HS256",
                    hs_secret.as_bytes(),
                    &with(claims(&env, &hs_app), "sub", json!(app)),
                ),
            )
            .await,
            "PRIVATE_KEY_JWT",
        );
        let r = cc(
            &t,
            &env,
            &sign_hs(
                "HS256",
                hs_secret.as_bytes(),
                &with(claims(&env, &hs_app), "iss", json!(app)),
            ),
        )
        .await;
        refused(&r, "iss");
        // No sub at all.
        let mut no_sub = base();
        no_sub.as_object_mut().unwrap().remove("sub");
        refused(&cc(&t, &env, &key.sign("RS256", &no_sub)).await, "sub");
        // client_id in the form must be the assertion's sub.
        let r = post_assertion(
            &t,
            &env,
            "token",
            &key.sign("RS256", &base()),
            &[("grant_type", "client_credentials"), ("client_id", &hs_app)],
        )
        .await;
        refused(&r, "client_id");

        // A replayed assertion, and a new assertion reusing a jti, are refused until exp.
        let once = key.sign("RS256", &base());
        assert_eq!(cc(&t, &env, &once).await.status, StatusCode::OK);
        refused(&cc(&t, &env, &once).await, "jti");
        let jti = uuid::Uuid::new_v4().to_string();
        let first = key.sign("RS256", &with(base(), "jti", json!(jti)));
        assert_eq!(cc(&t, &env, &first).await.status, StatusCode::OK);
        let again = key.sign(
            "RS256",
            &with(with(base(), "jti", json!(jti)), "exp", json!(n + 900)),
        );
        refused(&cc(&t, &env, &again).await, "jti");
        // The same jti from another client is its own.
        let hs = sign_hs(
            "HS256",
            hs_secret.as_bytes(),
            &with(claims(&env, &hs_app), "jti", json!(jti)),
        );
        assert_eq!(cc(&t, &env, &hs).await.status, StatusCode::OK);
        // A refused assertion does not burn its jti.
        let jti2 = uuid::Uuid::new_v4().to_string();
        let bad = with(
            with(base(), "jti", json!(jti2)),
            "aud",
            json!("https://wrong.example.com"),
        );
        refused(&cc(&t, &env, &key.sign("RS256", &bad)).await, "aud");
        let good = key.sign("RS256", &with(base(), "jti", json!(jti2)));
        assert_eq!(cc(&t, &env, &good).await.status, StatusCode::OK);

        // Two concurrent requests with one assertion: exactly one is accepted.
        let twice = key.sign("RS256", &base());
        let (r1, r2) = tokio::join!(cc(&t, &env, &twice), cc(&t, &env, &twice));
        let mut statuses = [r1.status, r2.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::UNAUTHORIZED],
            "{} / {}",
            r1.text,
            r2.text
        );
        // A jti whose earlier assertion has expired (its record not swept yet) may be used again.
        let old = uuid::Uuid::new_v4().to_string();
        let record = lanyard::engine::oauth::issue::sha256_b64(&format!("{env}\n{app}\n{old}"));
        t.app
            .store
            .runtime_put("client_assertion_jti", &record, &env, &json!({}), n - 10)
            .await
            .unwrap();
        let reused = key.sign("RS256", &with(base(), "jti", json!(old)));
        assert_eq!(cc(&t, &env, &reused).await.status, StatusCode::OK);
        refused(&cc(&t, &env, &reused).await, "jti");

        // Malformed requests.
        let url = format!("/{env}/as/token");
        let a = key.sign("RS256", &base());
        // Two methods at once: an assertion and Basic, or an assertion and client_secret.
        let r = t
            .form(
                &url,
                Some((&hs_app, &hs_secret)),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &a),
                ],
            )
            .await;
        assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_request");
        let r = post_assertion(
            &t,
            &env,
            "token",
            &a,
            &[("grant_type", "client_credentials"), ("client_secret", "x")],
        )
        .await;
        assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_request");
        // An assertion without its type, and a type without an assertion.
        let r = signon::token_form(
            &t,
            &url,
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion", &a),
            ],
        )
        .await;
        assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_request");
        let r = signon::token_form(
            &t,
            &url,
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
            ],
        )
        .await;
        assert_oauth(&r, StatusCode::BAD_REQUEST, "invalid_request");
        // Another assertion type; not a JWT.
        let r = signon::token_form(
            &t,
            &url,
            None,
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
                ),
                ("client_assertion", &a),
            ],
        )
        .await;
        refused(&r, "client_assertion_type");
        refused(&cc(&t, &env, "not.a-jwt").await, "client assertion");
        // The unauthenticated answer carries WWW-Authenticate (RFC 6749 §5.2).
        let r = cc(&t, &env, &unsigned(&base())).await;
        assert!(
            r.headers.get("www-authenticate").is_some(),
            "{:?}",
            r.headers
        );
        // An unknown client.
        let ghost = uuid::Uuid::new_v4().to_string();
        refused(
            &cc(&t, &env, &key.sign("RS256", &claims(&env, &ghost))).await,
            "failed",
        );
    }
}

#[tokio::test]
async fn introspect_and_revoke_accept_client_assertions() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let key = ClientKey::generate("k");
        let mut body = worker("Worker PKJ", "PRIVATE_KEY_JWT");
        body["jwks"] = json!(key.jwks());
        let app = signon::create_app(&t, &env, body).await;
        let issuer = format!("{PUBLIC}/{env}/as");

        let r = cc(&t, &env, &key.sign("RS256", &claims(&env, &app))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let at = r.body["access_token"].as_str().unwrap().to_string();

        // aud = the introspection endpoint, the token endpoint or the issuer.
        for aud in [
            format!("{issuer}/introspect"),
            format!("{issuer}/token"),
            issuer.clone(),
        ] {
            let a = key.sign("RS256", &with(claims(&env, &app), "aud", json!(aud)));
            let r = post_assertion(&t, &env, "introspect", &a, &[("token", &at)]).await;
            assert_eq!(r.status, StatusCode::OK, "{aud}: {}", r.text);
            assert_eq!(r.body["active"], true, "{}", r.text);
        }
        // The revocation endpoint is not the introspection endpoint.
        let a = key.sign(
            "RS256",
            &with(claims(&env, &app), "aud", json!(format!("{issuer}/revoke"))),
        );
        refused(
            &post_assertion(&t, &env, "introspect", &a, &[("token", &at)]).await,
            "aud",
        );
        // A bad assertion at introspect says why.
        refused(
            &post_assertion(
                &t,
                &env,
                "introspect",
                &unsigned(&claims(&env, &app)),
                &[("token", &at)],
            )
            .await,
            "alg",
        );

        // Revoke with aud = the revocation endpoint; the token is then inactive.
        let a = key.sign(
            "RS256",
            &with(claims(&env, &app), "aud", json!(format!("{issuer}/revoke"))),
        );
        let r = post_assertion(&t, &env, "revoke", &a, &[("token", &at)]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let a = key.sign(
            "RS256",
            &with(
                claims(&env, &app),
                "aud",
                json!(format!("{issuer}/introspect")),
            ),
        );
        let r = post_assertion(&t, &env, "introspect", &a, &[("token", &at)]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["active"], false, "{}", r.text);
        // A replayed assertion at revoke.
        let once = key.sign(
            "RS256",
            &with(claims(&env, &app), "aud", json!(format!("{issuer}/revoke"))),
        );
        assert_eq!(
            post_assertion(&t, &env, "revoke", &once, &[("token", &at)])
                .await
                .status,
            StatusCode::OK
        );
        refused(
            &post_assertion(&t, &env, "revoke", &once, &[("token", &at)]).await,
            "jti",
        );
    }
}

#[tokio::test]
async fn an_authorization_code_is_redeemed_with_private_key_jwt() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        signon::create_user(&t, &env, "alice").await;
        let key = ClientKey::generate("web-key");
        let mut body = signon::web_app_body("Web PKJ", CB);
        body["tokenEndpointAuthMethod"] = json!("PRIVATE_KEY_JWT");
        body["jwks"] = json!(key.jwks());
        let app = signon::create_app(&t, &env, body).await;
        signon::grant(&t, &env, &app, "openid", &["profile"]).await;

        let mut jar = Jar::new();
        let back = signon::sign_on(
            &t,
            &mut jar,
            &env,
            &[
                ("response_type", "code"),
                ("client_id", &app),
                ("redirect_uri", CB),
                ("scope", "openid profile"),
                ("state", "s1"),
            ],
            "alice",
        )
        .await;
        let code = signon::query_of(&back)["code"].clone();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CB),
            ("client_id", app.as_str()),
        ];
        // A wrong signature does not burn the code.
        let impostor = ClientKey::generate("web-key");
        let r = post_assertion(
            &t,
            &env,
            "token",
            &impostor.sign("RS256", &claims(&env, &app)),
            &form,
        )
        .await;
        refused(&r, "signature");
        let r = post_assertion(
            &t,
            &env,
            "token",
            &key.sign("RS256", &claims(&env, &app)),
            &form,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.body["access_token"].is_string(), "{}", r.text);
        let id = signon::verify_jwt(&t, &env, r.body["id_token"].as_str().unwrap(), &app).await;
        assert_eq!(id["aud"], app.as_str());
        // The refresh token is redeemed the same way.
        if let Some(rt) = r.body["refresh_token"].as_str() {
            let r = post_assertion(
                &t,
                &env,
                "token",
                &key.sign("RS256", &claims(&env, &app)),
                &[("grant_type", "refresh_token"), ("refresh_token", rt)],
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
    }
}

#[tokio::test]
async fn discovery_lists_the_jwt_client_authentication_methods() {
    let t = TestApp::new(None).await;
    let env = t.new_env().await;
    let r = signon::call(
        &t,
        Method::GET,
        &format!("/{env}/as/.well-known/openid-configuration"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for key in [
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        let m = r.body[key].as_array().unwrap();
        for want in [
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
        ] {
            assert!(
                m.iter().any(|x| x == want),
                "{key} lacks {want}: {}",
                r.text
            );
        }
    }
    let algs = r.body["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    for want in ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512"] {
        assert!(algs.iter().any(|x| x == want), "{}", r.text);
    }
    assert!(!algs.iter().any(|x| x == "none"), "{}", r.text);
}
