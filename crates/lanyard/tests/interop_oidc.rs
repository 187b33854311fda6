//! Interoperability with a relying-party library nobody here wrote: Lanyard serves on
//! 127.0.0.1 (in process, a real TCP listener), the environment, application and user are
//! set up through the management API, and `tests/interop/oidc_rp.mjs` (openid-client + jose
//! on Node) runs discovery, authorization code + PKCE through the flows API, the code
//! exchange with ID token validation, userinfo, refresh, introspection, revocation and signoff.
//!
//! Needs `node` and `npm ci` in `tests/interop` (the CI script does it). Without them the test
//! prints a note and passes, unless `CI` is set, where it fails.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::signon::{self, PASSWORD};
use common::{TestApp, backends};
use serde_json::{Value, json};

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Whether the Node tooling is there; otherwise why not.
fn tooling() -> Result<(), String> {
    match std::process::Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => {
            let v = String::from_utf8_lossy(&o.stdout)
                .trim()
                .trim_start_matches('v')
                .to_string();
            let major: u32 = v
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            if major < 20 {
                return Err(format!("node {v} is too old (openid-client 6 needs 20+)"));
            }
        }
        _ => return Err("node is not installed".into()),
    }
    if !interop_dir()
        .join("node_modules/openid-client/package.json")
        .exists()
    {
        return Err(format!(
            "openid-client is not installed: run `npm ci` in {}",
            interop_dir().display()
        ));
    }
    Ok(())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

#[tokio::test]
async fn openid_client_signs_on_with_code_and_pkce() {
    if let Err(why) = tooling() {
        if in_ci() {
            panic!("interop tooling missing in CI: {why}");
        }
        eprintln!("SKIPPED interop_oidc: {why}");
        return;
    }
    for db in backends() {
        // Lanyard on a real listener, its links and issuer under that address.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let t = TestApp::with_public_url(db, &base).await;
        let router = t.router.clone();
        let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

        // Environment, user, application (code + refresh, Basic, S256 PKCE required), grants.
        let env = t.new_env().await;
        let user = signon::create_user(&t, &env, "rp.user").await;
        let redirect = "https://rp.example.com/callback";
        let post_logout = "https://rp.example.com/bye";
        let app = signon::create_app(
            &t,
            &env,
            json!({
                "name": "openid-client RP", "enabled": true, "type": "WEB_APP", "protocol": "OPENID_CONNECT",
                "grantTypes": ["AUTHORIZATION_CODE", "REFRESH_TOKEN"], "responseTypes": ["CODE"],
                "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC", "pkceEnforcement": "S256_REQUIRED",
                "redirectUris": [redirect], "postLogoutRedirectUris": [post_logout],
            }),
        )
        .await;
        signon::grant(&t, &env, &app, "openid", &["profile", "email"]).await;
        let secret = signon::app_secret(&t, &env, &app).await;

        // The relying party.
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg("oidc_rp.mjs")
            .current_dir(interop_dir())
            .env("ISSUER", format!("{base}/{env}/as"))
            .env("CLIENT_ID", &app)
            .env("CLIENT_SECRET", &secret)
            .env("REDIRECT_URI", redirect)
            .env("POST_LOGOUT_REDIRECT_URI", post_logout)
            .env("USERNAME", "rp.user")
            .env("PASSWORD", PASSWORD)
            .env("EXPECTED_SUB", &user)
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .expect("the RP finishes within 2 minutes")
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "the relying party failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        );
        let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("RP output {stdout}: {e}"));
        eprintln!("openid-client RP: {result}");
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(result["sub"], user.as_str());
        assert_eq!(result["userinfo"]["email"], "rp.user@example.com");
        server.abort();
    }
}
