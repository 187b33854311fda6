//! Two `lanyard serve` processes on one PostgreSQL database (LANYARD_TEST_DATABASE_URL): what one
//! writes the other reads, and tokens issued by one verify on the other. Skipped (with a note on
//! stderr) when the variable is not set.

mod binary;

use binary::{Api, Server, client_token, free_port, http_client, read_credentials};
use serde_json::json;

/// The same values as the in-process harness (tests/common), because the database is shared
/// with those tests: the master key must decrypt what they stored, and the bootstrap admin
/// application is the one they created.
const TEST_MASTER_KEY: &str = "bGFueWFyZC10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=";
const ADMIN_CLIENT_ID: &str = "0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e";
const ADMIN_CLIENT_SECRET: &str = "lanyard-test-admin-secret";
/// Both processes sit behind one public URL, as replicas behind a load balancer would.
const PUBLIC_URL: &str = "http://lanyard-cluster.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_postgres_database() {
    let url = match std::env::var("LANYARD_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            eprintln!("skipped: LANYARD_TEST_DATABASE_URL is not set");
            return;
        }
    };
    let http = http_client();
    let env = [
        ("LANYARD_MASTER_KEY", TEST_MASTER_KEY),
        ("LANYARD_ADMIN_CLIENT_ID", ADMIN_CLIENT_ID),
        ("LANYARD_ADMIN_CLIENT_SECRET", ADMIN_CLIENT_SECRET),
    ];
    let args = ["--database-url", url.as_str(), "--public-url", PUBLIC_URL];
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (port1, port2) = (free_port(), free_port());
    // Started together: on a fresh database both race through the bootstrap.
    let mut s1 = Server::spawn(d1.path(), port1, "p1", &env, &args);
    let mut s2 = Server::spawn(d2.path(), port2, "p2", &env, &args);
    s1.wait_healthy(&http).await;
    s2.wait_healthy(&http).await;
    for s in [&s1, &s2] {
        let r = http.get(format!("{}/readyz", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "readyz on {}", s.base);
    }

    let c1 = read_credentials(d1.path());
    let c2 = read_credentials(d2.path());
    assert_eq!(c1, c2, "both processes describe the same organization");
    assert_eq!(c1["clientId"], ADMIN_CLIENT_ID);
    assert_eq!(c1["clientSecret"], ADMIN_CLIENT_SECRET);
    assert_eq!(c1["apiPath"], format!("{PUBLIC_URL}/v1"));
    let admin_env = c1["environmentId"].as_str().unwrap();

    // Each process is reached directly on its own port; the public URL only names the issuer.
    let token_path = format!("/{admin_env}/as/token");
    let t1 = client_token(
        &http,
        &format!("{}{token_path}", s1.base),
        ADMIN_CLIENT_ID,
        ADMIN_CLIENT_SECRET,
    )
    .await;
    let t2 = client_token(
        &http,
        &format!("{}{token_path}", s2.base),
        ADMIN_CLIENT_ID,
        ADMIN_CLIENT_SECRET,
    )
    .await;
    let p1 = Api {
        http: http.clone(),
        api_path: format!("{}/v1", s1.base),
        token: t1.clone(),
    };
    let p2 = Api {
        http: http.clone(),
        api_path: format!("{}/v1", s2.base),
        token: t2,
    };
    // A token from process 1 verifies on process 2 (signing keys live in the database).
    let cross = Api {
        http: http.clone(),
        api_path: p2.api_path.clone(),
        token: t1,
    };

    // ---- write through 1 ----
    let name = format!("e2e-pg-{}", uuid::Uuid::new_v4());
    let r = p1
        .post(
            "/environments",
            &json!({ "name": name, "type": "SANDBOX", "region": "NA", "description": "two processes" }),
        )
        .await;
    r.expect(201);
    let env_id = r.id();
    let e = format!("/environments/{env_id}");
    let r = p1
        .post(
            &format!("{e}/populations"),
            &json!({ "name": "Shared", "description": "created through process 1" }),
        )
        .await;
    r.expect(201);
    let pop = r.id();
    let r = p1
        .post(
            &format!("{e}/users"),
            &json!({
                "username": "shared.user",
                "email": "shared.user@example.com",
                "name": { "given": "Shared", "family": "User" },
                "population": { "id": pop }
            }),
        )
        .await;
    r.expect(201);
    let user = r.id();

    // ---- read through 2 ----
    for p in [
        e.clone(),
        format!("{e}/populations/{pop}"),
        format!("{e}/users/{user}"),
    ] {
        let a = p1.get(&p).await;
        a.expect(200);
        let b = p2.get(&p).await;
        b.expect(200);
        assert_eq!(a.body, b.body, "{p} differs between the processes");
        cross.get(&p).await.expect(200);
    }
    let r = p2
        .get(&format!("/environments?filter=name%20eq%20%22{name}%22"))
        .await;
    r.expect(200);
    assert_eq!(r.body["count"], 1, "{}", r.text);
    let r = p2.get(&format!("{e}/populations/{pop}")).await;
    assert_eq!(r.body["userCount"], 1, "{}", r.text);
    let r = p2
        .get(&format!(
            "{e}/users?filter=username%20eq%20%22shared.user%22"
        ))
        .await;
    r.expect(200);
    assert_eq!(r.body["count"], 1, "{}", r.text);

    // ---- update through 2, read through 1 ----
    let r = p2
        .put(
            &format!("{e}/populations/{pop}"),
            &json!({ "name": "Shared (renamed)", "description": "updated through process 2" }),
        )
        .await;
    r.expect(200);
    let r = p2
        .patch(
            &format!("{e}/users/{user}"),
            &json!({ "name": { "given": "Updated", "family": "User" }, "title": "Replica" }),
        )
        .await;
    r.expect(200);
    let r = p1.get(&format!("{e}/populations/{pop}")).await;
    r.expect(200);
    assert_eq!(r.body["name"], "Shared (renamed)");
    assert_eq!(r.body["description"], "updated through process 2");
    let r = p1.get(&format!("{e}/users/{user}")).await;
    r.expect(200);
    assert_eq!(r.body["name"]["given"], "Updated", "{}", r.text);
    assert_eq!(r.body["title"], "Replica", "{}", r.text);
    assert_eq!(r.body["email"], "shared.user@example.com");

    // A uniqueness rule holds across processes.
    let r = p2
        .post(
            &format!("{e}/users"),
            &json!({ "username": "shared.user", "population": { "id": pop } }),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body["details"][0]["code"], "UNIQUENESS_VIOLATION",
        "{}",
        r.text
    );

    // ---- clean up through 2 (the database outlives this test), gone on 1 ----
    p2.delete(&e).await.expect(204);
    let r = p1.get(&format!("{e}/users/{user}")).await;
    assert!(matches!(r.status, 403 | 404), "{}: {}", r.status, r.text);

    for s in [&mut s1, &mut s2] {
        let status = s.terminate();
        assert!(status.success(), "{status}\n{}", s.log());
    }
}
