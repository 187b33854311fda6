//! End to end against the real binary: `lanyard serve` on a free loopback port and a temporary
//! data dir; UC01 ("Use LOGIN and MFA Actions to Authenticate Users") steps 1–11 with the
//! how-to guide's requests; graceful shutdown on SIGTERM; a restart on the same data dir that
//! keeps everything (and the admin credentials); the operational endpoints; `--help`; who may
//! read the metrics (issue 15) and the modes of the data dir and its files.

mod binary;

use std::process::Command;

use binary::{Api, Server, client_token, free_port, http_client, read_credentials};
use serde_json::{Value, json};

#[test]
fn help_mentions_the_settings() {
    let out = Command::new(binary::BIN).arg("--help").output().unwrap();
    assert!(out.status.success(), "lanyard --help: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("serve"), "lanyard --help:\n{text}");

    let out = Command::new(binary::BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "lanyard serve --help: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--listen",
        "--data-dir",
        "--database-url",
        "--public-url",
        "--config",
        "LANYARD_LISTEN",
        "LANYARD_DATA_DIR",
        "LANYARD_DATABASE_URL",
        "LANYARD_PUBLIC_URL",
        "LANYARD_ADMIN_CLIENT_ID",
        "LANYARD_ADMIN_CLIENT_SECRET",
        "LANYARD_MASTER_KEY",
        "--outbound-allow-private",
        "LANYARD_OUTBOUND_ALLOW_PRIVATE",
        "--metrics-listen",
        "LANYARD_METRICS_LISTEN",
        "--metrics-token",
        "LANYARD_METRICS_TOKEN",
    ] {
        assert!(
            text.contains(needle),
            "lanyard serve --help lacks {needle}:\n{text}"
        );
    }
}

#[test]
fn a_bad_setting_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(binary::BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            "ftp://x",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--public-url"),
        "{out:?}"
    );
}

#[test]
fn an_empty_metrics_token_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(binary::BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-token="])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("LANYARD_METRICS_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--metrics-token"),
        "{out:?}"
    );
}

/// The GETs whose bodies must be identical before and after a restart.
fn snapshot_paths(env: &str, ids: &Ids) -> Vec<String> {
    let e = format!("/environments/{env}");
    vec![
        e.clone(),
        format!("{e}/applications/{}", ids.app),
        format!("{e}/applications/{}/grants/{}", ids.app, ids.grant),
        format!("{e}/applications/{}/grants", ids.app),
        format!("{e}/signOnPolicies/{}", ids.policy),
        format!("{e}/signOnPolicies/{}/actions", ids.policy),
        format!("{e}/signOnPolicies/{}/actions/{}", ids.policy, ids.login),
        format!("{e}/signOnPolicies/{}/actions/{}", ids.policy, ids.mfa),
        format!(
            "{e}/applications/{}/signOnPolicyAssignments/{}",
            ids.app, ids.assignment
        ),
        format!("{e}/populations/{}", ids.population),
        format!("{e}/users/{}", ids.user),
    ]
}

struct Ids {
    app: String,
    grant: String,
    policy: String,
    login: String,
    mfa: String,
    assignment: String,
    population: String,
    user: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uc01_configuration_through_the_binary_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let http = http_client();
    let metrics_token = "e2e-metrics-token-0123456789";
    let mut server = Server::spawn(
        dir.path(),
        port,
        "first",
        &[("LANYARD_METRICS_TOKEN", metrics_token)],
        &[],
    );
    server.wait_healthy(&http).await;
    let base = server.base.clone();

    // ---- admin-credentials.json ----
    let creds = read_credentials(dir.path());
    let admin_env = creds["environmentId"].as_str().unwrap().to_string();
    let client_id = creds["clientId"].as_str().unwrap().to_string();
    let secret = creds["clientSecret"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&admin_env).is_ok(), "{creds}");
    assert!(uuid::Uuid::parse_str(&client_id).is_ok(), "{creds}");
    assert!(secret.len() >= 32, "{creds}");
    assert_eq!(
        creds["tokenEndpoint"],
        format!("{base}/{admin_env}/as/token"),
        "{creds}"
    );
    assert_eq!(creds["apiPath"], format!("{base}/v1"), "{creds}");
    assert_eq!(creds["authPath"], base.as_str(), "{creds}");

    let token = client_token(
        &http,
        creds["tokenEndpoint"].as_str().unwrap(),
        &client_id,
        &secret,
    )
    .await;
    let api = Api {
        http: http.clone(),
        api_path: creds["apiPath"].as_str().unwrap().to_string(),
        token: token.clone(),
    };

    // ---- operational endpoints ----
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let openapi: Value = http
        .get(format!("{base}/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        openapi["paths"].as_object().is_some_and(|p| !p.is_empty()),
        "openapi.json has no paths"
    );
    assert!(
        openapi["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with('3'))
    );

    // ---- an environment for the use case ({{envID}}) ----
    let r = api
        .post(
            "/environments",
            &json!({ "name": format!("UC01 {}", uuid::Uuid::new_v4()), "type": "SANDBOX", "region": "NA" }),
        )
        .await;
    r.expect(201);
    let env = r.id();
    let e = format!("/environments/{env}");

    // Step 1: Create a web application.
    let r = api
        .post(
            &format!("{e}/applications"),
            &json!({
                "enabled": true,
                "name": "LoginMFA_WebApp",
                "description": "A web application for the LOGIN and MFA use case",
                "type": "WEB_APP",
                "protocol": "OPENID_CONNECT",
                "grantTypes": ["AUTHORIZATION_CODE"],
                "responseTypes": ["CODE"],
                "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC",
                "redirectUris": ["https://www.example.com"]
            }),
        )
        .await;
    r.expect(201);
    let app = r.id();
    assert_eq!(r.body["type"], "WEB_APP");
    assert_eq!(r.body["protocol"], "OPENID_CONNECT");
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["grantTypes"], json!(["AUTHORIZATION_CODE"]));
    assert_eq!(r.body["responseTypes"], json!(["CODE"]));
    assert_eq!(r.body["tokenEndpointAuthMethod"], "CLIENT_SECRET_BASIC");
    assert_eq!(r.body["redirectUris"], json!(["https://www.example.com"]));
    assert_eq!(r.body["environment"]["id"], env.as_str());
    assert!(
        r.body.get("clientSecret").is_none(),
        "the secret is read through /secret: {}",
        r.text
    );
    assert_eq!(
        r.headers["location"],
        format!("{base}/v1/environments/{env}/applications/{app}").as_str()
    );

    // Step 2: Get all resources; the openid resource.
    let r = api.get(&format!("{e}/resources")).await;
    r.expect(200);
    let openid = r
        .embedded("resources")
        .into_iter()
        .find(|x| x["name"] == "openid")
        .unwrap_or_else(|| panic!("no openid resource: {}", r.text));
    assert_eq!(openid["type"], "OPENID_CONNECT");
    let openid_id = openid["id"].as_str().unwrap().to_string();

    // Step 3: Get all OIDC scopes.
    let r = api.get(&format!("{e}/resources/{openid_id}/scopes")).await;
    r.expect(200);
    let scopes = r.embedded("scopes");
    let scope_id = |name: &str| {
        scopes
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["id"].as_str())
            .unwrap_or_else(|| panic!("no {name} scope: {}", r.text))
            .to_string()
    };
    let (s_openid, s_profile, s_email) =
        (scope_id("openid"), scope_id("profile"), scope_id("email"));
    assert!(
        scopes
            .iter()
            .all(|s| s["resource"]["id"] == openid_id.as_str())
    );

    // Step 4: Assign a resource grant to the web application.
    let r = api
        .post(
            &format!("{e}/applications/{app}/grants"),
            &json!({
                "resource": { "id": openid_id },
                "scopes": [ { "id": s_openid }, { "id": s_profile }, { "id": s_email } ]
            }),
        )
        .await;
    r.expect(201);
    let grant = r.id();
    assert_eq!(r.body["resource"]["id"], openid_id.as_str());
    assert_eq!(r.body["application"]["id"], app.as_str());
    let mut granted: Vec<&str> = r.body["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    granted.sort();
    let mut wanted = vec![s_openid.as_str(), s_profile.as_str(), s_email.as_str()];
    wanted.sort();
    assert_eq!(granted, wanted);

    // Step 5: Create a sign-on policy (the guide sends "default" as the string "false").
    let policy_name = format!("MFA_UseCasePolicy_{}", std::process::id());
    let r = api
        .post(
            &format!("{e}/signOnPolicies"),
            &json!({ "name": policy_name, "default": "false", "description": "A new MFA sign-on policy." }),
        )
        .await;
    r.expect(201);
    let policy = r.id();
    assert_eq!(r.body["name"], policy_name.as_str());
    assert_eq!(r.body["default"], false);

    // Step 6: Create the login sign-on policy action.
    let r = api
        .post(
            &format!("{e}/signOnPolicies/{policy}/actions"),
            &json!({ "priority": 1, "type": "LOGIN" }),
        )
        .await;
    r.expect(201);
    let login = r.id();
    assert_eq!(r.body["type"], "LOGIN");
    assert_eq!(r.body["priority"], 1);
    assert_eq!(r.body["signOnPolicy"]["id"], policy.as_str());

    // Step 7: Create the MFA sign-on policy action (the guide's body: priority 10, sms + email).
    let r = api
        .post(
            &format!("{e}/signOnPolicies/{policy}/actions"),
            &json!({
                "priority": 10,
                "type": "MULTI_FACTOR_AUTHENTICATION",
                "sms": { "enabled": true },
                "email": { "enabled": true }
            }),
        )
        .await;
    r.expect(201);
    let mfa = r.id();
    assert_eq!(r.body["type"], "MULTI_FACTOR_AUTHENTICATION");
    assert_eq!(r.body["sms"]["enabled"], true);
    assert_eq!(r.body["email"]["enabled"], true);
    assert!(
        r.body["priority"].as_i64().is_some_and(|p| p > 1),
        "MFA runs after LOGIN: {}",
        r.text
    );
    let r = api
        .get(&format!("{e}/signOnPolicies/{policy}/actions"))
        .await;
    r.expect(200);
    let mut actions = r.embedded("actions");
    actions.sort_by_key(|a| a["priority"].as_i64());
    let types: Vec<&str> = actions
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec!["LOGIN", "MULTI_FACTOR_AUTHENTICATION"],
        "{}",
        r.text
    );

    // Step 8: Assign the sign-on policy to the web application.
    let r = api
        .post(
            &format!("{e}/applications/{app}/signOnPolicyAssignments"),
            &json!({ "priority": 1, "signOnPolicy": { "id": policy } }),
        )
        .await;
    r.expect(201);
    let assignment = r.id();
    assert_eq!(r.body["signOnPolicy"]["id"], policy.as_str());
    assert_eq!(r.body["application"]["id"], app.as_str());
    assert_eq!(r.body["priority"], 1);

    // Step 9: Create a population for MFA users.
    let pop_name = format!("MFAPopulation_{}", std::process::id());
    let r = api
        .post(
            &format!("{e}/populations"),
            &json!({ "name": pop_name, "description": "Population for MFA users" }),
        )
        .await;
    r.expect(201);
    let population = r.id();
    assert_eq!(r.body["name"], pop_name.as_str());
    assert_eq!(r.body["default"], false);

    // Step 10: Create a user in it.
    let username = format!("mfa_user_{}", std::process::id());
    let r = api
        .post(
            &format!("{e}/users"),
            &json!({
                "email": "mfa.user@example.com",
                "name": { "given": "Test", "family": "MFAUser" },
                "population": { "id": population },
                "username": username
            }),
        )
        .await;
    r.expect(201);
    let user = r.id();
    assert_eq!(r.body["username"], username.as_str());
    assert_eq!(r.body["email"], "mfa.user@example.com");
    assert_eq!(r.body["name"]["given"], "Test");
    assert_eq!(r.body["name"]["family"], "MFAUser");
    assert_eq!(r.body["population"]["id"], population.as_str());
    assert_eq!(r.body["enabled"], true);
    assert!(r.body.get("password").is_none() || r.body["password"].get("value").is_none());

    // Step 11: Set the user's password (the guide: POST .../password with the set media type).
    let r = api
        .send(
            reqwest::Method::POST,
            &format!("{e}/users/{user}/password"),
            Some("application/vnd.pingidentity.password.set+json"),
            Some(&json!({ "value": "2FederateM0re!", "forceChange": false })),
        )
        .await;
    r.expect(200);
    assert!(
        !r.text.contains("2FederateM0re!"),
        "the password is never echoed: {}",
        r.text
    );
    if let Some(status) = r.body.get("status") {
        assert_eq!(status, "OK", "{}", r.text);
    }

    // ---- metrics saw the traffic ----
    let metrics = http
        .get(format!("{base}/metrics"))
        .bearer_auth(metrics_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("http_requests_total"),
        "metrics:\n{metrics}"
    );

    // ---- snapshot, graceful shutdown, restart on the same data dir ----
    let ids = Ids {
        app: app.clone(),
        grant,
        policy,
        login,
        mfa,
        assignment,
        population,
        user: user.clone(),
    };
    let paths = snapshot_paths(&env, &ids);
    let mut before = Vec::new();
    for p in &paths {
        let r = api.get(p).await;
        r.expect(200);
        before.push(r.body);
    }
    let app_secret = api.get(&format!("{e}/applications/{app}/secret")).await;
    app_secret.expect(200);
    assert!(
        app_secret.body["secret"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );

    let status = server.terminate();
    assert!(
        status.success(),
        "graceful shutdown exit status: {status}\n{}",
        server.log()
    );
    let log = server.log();
    assert!(log.contains("lanyard listening"), "log:\n{log}");
    assert!(log.contains("shutting down"), "log:\n{log}");
    assert!(
        http.get(format!("{base}/healthz")).send().await.is_err(),
        "nothing listens after shutdown"
    );

    let mut server = Server::spawn(dir.path(), port, "second", &[], &[]);
    server.wait_healthy(&http).await;
    assert_eq!(
        read_credentials(dir.path()),
        creds,
        "admin-credentials.json is stable across restarts"
    );
    // The token from before the restart still verifies (same signing keys, same master key)…
    let r = api.get(&e).await;
    r.expect(200);
    // …and the same admin credentials still get a new one.
    let token2 = client_token(
        &http,
        creds["tokenEndpoint"].as_str().unwrap(),
        &client_id,
        &secret,
    )
    .await;
    let api2 = Api {
        http: http.clone(),
        api_path: api.api_path.clone(),
        token: token2,
    };
    for (p, old) in paths.iter().zip(&before) {
        let r = api2.get(p).await;
        r.expect(200);
        assert_eq!(&r.body, old, "{p} changed across the restart");
    }
    let secret_after = api2.get(&format!("{e}/applications/{app}/secret")).await;
    secret_after.expect(200);
    assert_eq!(secret_after.body["secret"], app_secret.body["secret"]);
    let r = api2
        .get(&format!(
            "{e}/users?filter=username%20eq%20%22{username}%22"
        ))
        .await;
    r.expect(200);
    assert_eq!(r.body["count"], 1, "{}", r.text);

    let status = server.terminate();
    assert!(
        status.success(),
        "second shutdown: {status}\n{}",
        server.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_admin_credentials_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let http = http_client();
    let id = "7d3c0f7e-2b1a-4c55-9d1e-0a1b2c3d4e5f";
    let master = "bGFueWFyZC1lMmUtbWFzdGVyLWtleS0zMi1ieXRlcyE="; // 32 bytes
    let env = [
        ("LANYARD_ADMIN_CLIENT_ID", id),
        (
            "LANYARD_ADMIN_CLIENT_SECRET",
            "e2e-fixed-admin-secret-0123456789",
        ),
        ("LANYARD_MASTER_KEY", master),
    ];
    let mut server = Server::spawn(dir.path(), port, "fixed", &env, &[]);
    server.wait_healthy(&http).await;
    let creds = read_credentials(dir.path());
    assert_eq!(creds["clientId"], id);
    assert_eq!(creds["clientSecret"], "e2e-fixed-admin-secret-0123456789");
    assert!(
        !dir.path().join("master.key").exists(),
        "a master key from the environment is not written to disk"
    );
    let token = client_token(
        &http,
        creds["tokenEndpoint"].as_str().unwrap(),
        id,
        "e2e-fixed-admin-secret-0123456789",
    )
    .await;
    let r = http
        .post(creds["tokenEndpoint"].as_str().unwrap())
        .basic_auth(id, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let api = Api {
        http: http.clone(),
        api_path: creds["apiPath"].as_str().unwrap().to_string(),
        token,
    };
    api.get("/environments").await.expect(200);
    let status = server.terminate();
    assert!(status.success(), "{status}\n{}", server.log());

    // A new secret in the environment replaces the stored one on the next start.
    let env2 = [
        ("LANYARD_ADMIN_CLIENT_ID", id),
        (
            "LANYARD_ADMIN_CLIENT_SECRET",
            "e2e-rotated-admin-secret-0123456789",
        ),
        ("LANYARD_MASTER_KEY", master),
    ];
    let mut server = Server::spawn(dir.path(), port, "rotated", &env2, &[]);
    server.wait_healthy(&http).await;
    let creds = read_credentials(dir.path());
    assert_eq!(creds["clientSecret"], "e2e-rotated-admin-secret-0123456789");
    client_token(
        &http,
        creds["tokenEndpoint"].as_str().unwrap(),
        id,
        "e2e-rotated-admin-secret-0123456789",
    )
    .await;
    let status = server.terminate();
    assert!(status.success(), "{status}\n{}", server.log());
}

/// Issue 15: metrics (request rates, routes, error counts) are not for anyone who can reach
/// the public listener. Without settings it does not serve them; with `--metrics-token` it
/// serves them to that bearer token only; `--metrics-listen` serves them (and only them, with
/// `/healthz`) on a second address, which stops with the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_or_the_metrics_listener() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let http = http_client();
    let mut server = Server::spawn(dir.path(), port, "no-metrics", &[], &[]);
    server.wait_healthy(&http).await;
    let base = server.base.clone();
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404, "not served on the public listener");
    let r = http
        .get(format!("{base}/metrics"))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(server.terminate().success(), "{}", server.log());

    let token = "e2e-metrics-token-abcdefghij";
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let mut server = Server::spawn(
        dir.path(),
        port,
        "metrics",
        &[("LANYARD_METRICS_TOKEN", token)],
        &["--metrics-listen", &metrics_addr],
    );
    server.wait_healthy(&http).await;
    for presented in [None, Some("wrong"), Some("e2e-metrics-token-abcdefghi")] {
        let mut req = http.get(format!("{base}/metrics"));
        if let Some(p) = presented {
            req = req.bearer_auth(p);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{presented:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "ACCESS_FAILED", "{body}");
    }
    let r = http
        .get(format!("{base}/metrics"))
        .header("authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("http_requests_total"));

    let internal = format!("http://{metrics_addr}");
    let r = http
        .get(format!("{internal}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "no token on the metrics listener");
    assert!(r.text().await.unwrap().contains("http_requests_total"));
    let r = http
        .get(format!("{internal}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for other in ["/v1/environments", "/readyz", "/v1/openapi.json"] {
        let r = http.get(format!("{internal}{other}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{other} is not on the metrics listener");
    }

    let status = server.terminate();
    assert!(status.success(), "{status}\n{}", server.log());
    assert!(
        server.log().contains("metrics listening"),
        "{}",
        server.log()
    );
    assert!(
        http.get(format!("{internal}/healthz"))
            .send()
            .await
            .is_err(),
        "the metrics listener stopped with the server"
    );
}

#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The files other local users must not read: the database (password hashes, sealed
/// secrets) with its -wal and -shm, the master key and the admin credentials.
const PRIVATE_FILES: &[&str] = &[
    "lanyard.db",
    "lanyard.db-wal",
    "lanyard.db-shm",
    "master.key",
    "admin-credentials.json",
];

/// Issue 15: the data dir is 0700 and the files in it 0600, on a first start into a folder
/// that exists already (the harness creates it 0755) and again after an earlier start (or an
/// earlier version) left them open to everyone.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_dir_and_its_files_are_private() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    set_mode(&dir, 0o755);
    let port = free_port();
    let http = http_client();
    let check = |when: &str| {
        assert_eq!(mode_of(&dir), 0o700, "{when}: the data dir");
        for f in PRIVATE_FILES {
            assert_eq!(mode_of(&dir.join(f)), 0o600, "{when}: {f}");
        }
    };

    let mut server = Server::spawn(&dir, port, "first", &[], &[]);
    server.wait_healthy(&http).await;
    check("first start");
    assert!(server.terminate().success(), "{}", server.log());

    set_mode(&dir, 0o755);
    for f in PRIVATE_FILES {
        let p = dir.join(f);
        if p.exists() {
            set_mode(&p, 0o644);
        }
    }
    let mut server = Server::spawn(&dir, port, "second", &[], &[]);
    server.wait_healthy(&http).await;
    check("restart");
    assert!(server.terminate().success(), "{}", server.log());
}
