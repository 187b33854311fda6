//! Who may call the management API: bearer tokens (missing, malformed, forged, expired, revoked),
//! role assignments and their scopes, environment visibility, and the roles themselves.

mod common;

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{ADMIN_CLIENT_ID, Resp, TestApp, assert_error, backends};
use lanyard::engine::authz::{
    ENVIRONMENT_ADMIN, IDENTITY_DATA_ADMIN, IDENTITY_DATA_READ_ONLY, ORGANIZATION_ADMIN,
};
use serde_json::{Value, json};

fn path(env: &str, rest: &str) -> String {
    TestApp::env_path(env, rest)
}

async fn call(t: &TestApp, method: Method, p: &str, token: &str, body: Option<Value>) -> Resp {
    let ct = body.as_ref().map(|_| "application/json");
    t.send(
        method,
        p,
        Some(token),
        ct,
        body.map(|b| b.to_string().into_bytes()),
    )
    .await
}

fn assert_unauthorized(r: &Resp) {
    assert_error(
        r,
        StatusCode::UNAUTHORIZED,
        "ACCESS_FAILED",
        Some("INVALID_TOKEN"),
    );
    assert_eq!(r.headers["www-authenticate"], "Bearer", "{}", r.text);
}

fn assert_forbidden(r: &Resp) {
    assert_error(
        r,
        StatusCode::FORBIDDEN,
        "ACCESS_FAILED",
        Some("INSUFFICIENT_PERMISSIONS"),
    );
}

/// Creates an enabled worker in `env` without inherited roles, gives it `roles` (role id, scope
/// type, scope id) and returns (application id, secret, token).
async fn worker_with(
    t: &TestApp,
    env: &str,
    roles: &[(&str, &str, &str)],
) -> (String, String, String) {
    let r = t.post(&path(env, "/applications"), json!({
        "name": format!("worker-{}", uuid::Uuid::new_v4()), "protocol": "OPENID_CONNECT", "type": "WORKER",
        "enabled": true, "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC", "assignActorRoles": false,
    })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.id();
    for (role, ty, scope) in roles {
        let a = t
            .post(
                &path(env, &format!("/applications/{id}/roleAssignments")),
                json!({ "role": { "id": role }, "scope": { "type": ty, "id": scope } }),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    let secret = t
        .get(&path(env, &format!("/applications/{id}/secret")))
        .await
        .body["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let token = t.client_token(env, &id, &secret).await;
    (id, secret, token)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims like the server's own worker tokens, for the bootstrap admin worker.
async fn admin_claims(t: &TestApp, exp: i64) -> Value {
    let org = lanyard::resources::environments::org_of(&t.app, &t.admin_env)
        .await
        .unwrap();
    json!({
        "client_id": ADMIN_CLIENT_ID, "iss": t.app.issuer(&t.admin_env), "jti": uuid::Uuid::new_v4().to_string(),
        "iat": now() - 60, "exp": exp, "aud": ["https://api.pingone.com"], "env": t.admin_env, "org": org,
    })
}

async fn sign(t: &TestApp, env: &str, claims: &Value) -> String {
    let key = t
        .app
        .keys
        .default_key(&t.app.store, &t.app.master, env)
        .await
        .unwrap()
        .unwrap();
    key.sign(claims)
}

#[tokio::test]
async fn missing_malformed_forged_and_expired_tokens_are_refused() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let envs = "/v1/environments";
        for p in [
            envs.to_string(),
            path(&t.admin_env, "/applications"),
            "/v1/roles".into(),
        ] {
            let r = t.send(Method::GET, &p, None, None, None).await;
            assert_unauthorized(&r);
        }
        // Missing tokens are refused before anything else is looked at.
        assert_unauthorized(
            &t.send(
                Method::GET,
                &path(&uuid::Uuid::new_v4().to_string(), "/applications"),
                None,
                None,
                None,
            )
            .await,
        );
        assert_unauthorized(
            &t.send(
                Method::POST,
                envs,
                None,
                Some("application/json"),
                Some(b"{}".to_vec()),
            )
            .await,
        );
        for bad in ["garbage", "a.b.c", "", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"] {
            assert_unauthorized(&call(&t, Method::GET, envs, bad, None).await);
        }
        let mut req = axum::http::Request::builder().uri(envs).header(
            "authorization",
            format!("Basic {}", URL_SAFE_NO_PAD.encode("a:b")),
        );
        req = req.header("x-test", "1");
        let resp = tower::ServiceExt::oneshot(
            t.router.clone(),
            req.body(axum::body::Body::empty()).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::UNAUTHORIZED,
            "Basic credentials are not a bearer token"
        );

        // A correctly minted token works: the forgeries below differ in one thing each.
        let good = sign(&t, &t.admin_env, &admin_claims(&t, now() + 600).await).await;
        assert_eq!(
            call(&t, Method::GET, envs, &good, None).await.status,
            StatusCode::OK
        );

        // Expired.
        let expired = sign(&t, &t.admin_env, &admin_claims(&t, now() - 5).await).await;
        let r = call(&t, Method::GET, envs, &expired, None).await;
        assert_unauthorized(&r);
        // Another audience, another issuer, no expiry.
        let mut c = admin_claims(&t, now() + 600).await;
        c["aud"] = json!(["https://orders.example.com"]);
        assert_unauthorized(
            &call(
                &t,
                Method::GET,
                envs,
                &sign(&t, &t.admin_env, &c).await,
                None,
            )
            .await,
        );
        let mut c = admin_claims(&t, now() + 600).await;
        c["iss"] = json!("https://auth.pingone.com/other/as");
        assert_unauthorized(
            &call(
                &t,
                Method::GET,
                envs,
                &sign(&t, &t.admin_env, &c).await,
                None,
            )
            .await,
        );
        let mut c = admin_claims(&t, now() + 600).await;
        c.as_object_mut().unwrap().remove("exp");
        assert_unauthorized(
            &call(
                &t,
                Method::GET,
                envs,
                &sign(&t, &t.admin_env, &c).await,
                None,
            )
            .await,
        );

        // Signed by another environment's key (its own kid, then the admin key's kid).
        let other = t.new_env().await;
        let foreign = sign(&t, &other, &admin_claims(&t, now() + 600).await).await;
        assert_unauthorized(&call(&t, Method::GET, envs, &foreign, None).await);
        let good_header = good.split('.').next().unwrap();
        let mut parts: Vec<&str> = foreign.split('.').collect();
        parts[0] = good_header;
        assert_unauthorized(&call(&t, Method::GET, envs, &parts.join("."), None).await);
        // Claims changed after signing.
        let mut tampered: Vec<String> = good.split('.').map(str::to_string).collect();
        let mut c = admin_claims(&t, now() + 600).await;
        c["client_id"] = json!("someone-else");
        tampered[1] = URL_SAFE_NO_PAD.encode(c.to_string());
        assert_unauthorized(&call(&t, Method::GET, envs, &tampered.join("."), None).await);
        // alg=none.
        let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "kid": "x" }).to_string());
        let none = format!(
            "{header}.{}.",
            URL_SAFE_NO_PAD.encode(admin_claims(&t, now() + 600).await.to_string())
        );
        assert_unauthorized(&call(&t, Method::GET, envs, &none, None).await);
        // Only workers act on the management API, even with roles and a well-formed token.
        let env = t.new_env().await;
        let web = t.post(&path(&env, "/applications"), json!({
            "name": "web", "protocol": "OPENID_CONNECT", "type": "WEB_APP", "enabled": true,
            "redirectUris": ["https://a.example.com/cb"], "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC",
        })).await.id();
        let ra = t.post(&path(&env, &format!("/applications/{web}/roleAssignments")), json!({ "role": { "id": ENVIRONMENT_ADMIN }, "scope": { "type": "ENVIRONMENT", "id": env } })).await;
        assert_eq!(ra.status, StatusCode::CREATED, "{}", ra.text);
        let mut c = admin_claims(&t, now() + 600).await;
        c["client_id"] = json!(web);
        c["env"] = json!(env);
        c["iss"] = json!(t.app.issuer(&env));
        assert_unauthorized(
            &call(
                &t,
                Method::GET,
                &path(&env, "/applications"),
                &sign(&t, &env, &c).await,
                None,
            )
            .await,
        );

        // A token for a client that does not exist.
        let mut c = admin_claims(&t, now() + 600).await;
        c["client_id"] = json!(uuid::Uuid::new_v4().to_string());
        assert_unauthorized(
            &call(
                &t,
                Method::GET,
                envs,
                &sign(&t, &t.admin_env, &c).await,
                None,
            )
            .await,
        );
    }
}

#[tokio::test]
async fn identity_data_read_only_reads_users_of_its_environment_only() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let a = t.new_env().await;
        let b = t.new_env().await;
        let u = t
            .post(&path(&a, "/users"), json!({ "username": "reader-target" }))
            .await;
        assert_eq!(u.status, StatusCode::CREATED, "{}", u.text);
        let (_, _, tok) =
            worker_with(&t, &a, &[(IDENTITY_DATA_READ_ONLY, "ENVIRONMENT", &a)]).await;

        let r = call(&t, Method::GET, &path(&a, "/users"), &tok, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["count"], 1);
        let r = call(
            &t,
            Method::GET,
            &path(&a, &format!("/users/{}", u.id())),
            &tok,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        // No writes.
        assert_forbidden(
            &call(
                &t,
                Method::POST,
                &path(&a, "/users"),
                &tok,
                Some(json!({ "username": "nope" })),
            )
            .await,
        );
        assert_forbidden(
            &call(
                &t,
                Method::DELETE,
                &path(&a, &format!("/users/{}", u.id())),
                &tok,
                None,
            )
            .await,
        );
        assert_eq!(
            t.get(&path(&a, "/users")).await.body["count"],
            1,
            "refused writes wrote nothing"
        );
        // Nothing outside identity data.
        assert_forbidden(&call(&t, Method::GET, &path(&a, "/applications"), &tok, None).await);
        assert_forbidden(
            &call(
                &t,
                Method::POST,
                &path(&a, "/populations"),
                &tok,
                Some(json!({ "name": "p" })),
            )
            .await,
        );
        // Nothing in another environment.
        for p in [path(&b, "/users"), path(&b, ""), path(&b, "/populations")] {
            assert_forbidden(&call(&t, Method::GET, &p, &tok, None).await);
        }
        assert_forbidden(
            &call(
                &t,
                Method::POST,
                "/v1/environments",
                &tok,
                Some(json!({ "name": "x", "type": "SANDBOX", "region": "NA" })),
            )
            .await,
        );
        // It cannot hand out roles either.
        let w2 = t.post(&path(&a, "/applications"), json!({ "name": "w2", "protocol": "OPENID_CONNECT", "type": "WORKER", "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC", "assignActorRoles": false })).await.id();
        let r = call(&t, Method::POST, &path(&a, &format!("/applications/{w2}/roleAssignments")), &tok, Some(json!({ "role": { "id": IDENTITY_DATA_READ_ONLY }, "scope": { "type": "ENVIRONMENT", "id": a } }))).await;
        assert_forbidden(&r);
    }
}

#[tokio::test]
async fn an_environment_scoped_admin_sees_only_its_environment() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let a = t.new_env().await;
        let b = t.new_env().await;
        let (me, _, tok) = worker_with(&t, &a, &[(ENVIRONMENT_ADMIN, "ENVIRONMENT", &a)]).await;

        let r = call(&t, Method::GET, "/v1/environments", &tok, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["count"], 1, "{}", r.text);
        assert_eq!(r.body["_embedded"]["environments"][0]["id"], a.as_str());
        let f = call(
            &t,
            Method::GET,
            &format!("/v1/environments?filter=id%20eq%20%22{b}%22"),
            &tok,
            None,
        )
        .await;
        assert_eq!(f.body["count"], 0, "{}", f.text);
        assert_eq!(
            call(&t, Method::GET, &path(&a, ""), &tok, None)
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            call(&t, Method::GET, &path(&a, "/applications"), &tok, None)
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            call(
                &t,
                Method::POST,
                &path(&a, "/signOnPolicies"),
                &tok,
                Some(json!({ "name": "Mine" }))
            )
            .await
            .status,
            StatusCode::CREATED
        );

        for (m, p) in [
            (Method::GET, path(&b, "")),
            (Method::GET, path(&b, "/applications")),
            (Method::GET, path(&b, "/signOnPolicies")),
            (Method::DELETE, path(&b, "")),
            (Method::GET, path(&t.admin_env, "/applications")),
        ] {
            assert_forbidden(&call(&t, m, &p, &tok, None).await);
        }
        // Creating and deleting environments is for organization admins.
        assert_forbidden(
            &call(
                &t,
                Method::POST,
                "/v1/environments",
                &tok,
                Some(json!({ "name": "mine", "type": "SANDBOX", "region": "NA" })),
            )
            .await,
        );
        assert_forbidden(&call(&t, Method::DELETE, &path(&a, ""), &tok, None).await);
        assert_eq!(t.get(&path(&a, "")).await.status, StatusCode::OK);

        // No escalation: not Organization Admin, not over environment B, not organization-wide.
        let rp = path(&a, &format!("/applications/{me}/roleAssignments"));
        let before = t.get(&rp).await.body["count"].clone();
        for (role, ty, scope) in [
            (ORGANIZATION_ADMIN, "ORGANIZATION", t.get("/v1/environments").await.body["_embedded"]["environments"][0]["organization"]["id"].as_str().unwrap().to_string()),
            (ENVIRONMENT_ADMIN, "ENVIRONMENT", b.clone()),
            (IDENTITY_DATA_ADMIN, "ENVIRONMENT", b.clone()),
        ] {
            let r = call(&t, Method::POST, &rp, &tok, Some(json!({ "role": { "id": role }, "scope": { "type": ty, "id": scope } }))).await;
            assert_forbidden(&r);
        }
        assert_eq!(
            t.get(&rp).await.body["count"],
            before,
            "refused assignments wrote nothing"
        );
        // Within its environment it may hand out the roles below Organization Admin.
        let r = call(&t, Method::POST, &rp, &tok, Some(json!({ "role": { "id": IDENTITY_DATA_ADMIN }, "scope": { "type": "ENVIRONMENT", "id": a } }))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let tok2 = {
            let secret = t
                .get(&path(&a, &format!("/applications/{me}/secret")))
                .await
                .body["secret"]
                .as_str()
                .unwrap()
                .to_string();
            t.client_token(&a, &me, &secret).await
        };
        let u = call(
            &t,
            Method::POST,
            &path(&a, "/users"),
            &tok2,
            Some(json!({ "username": "made-by-worker" })),
        )
        .await;
        assert_eq!(u.status, StatusCode::CREATED, "{}", u.text);
        // ... and take them away again, but not the admin's organization roles.
        let del = call(&t, Method::DELETE, &format!("{rp}/{}", r.id()), &tok, None).await;
        assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.text);
        let admin_ras = t
            .get(&path(
                &t.admin_env,
                &format!("/applications/{ADMIN_CLIENT_ID}/roleAssignments"),
            ))
            .await;
        let first = admin_ras.body["_embedded"]["roleAssignments"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = call(
            &t,
            Method::DELETE,
            &path(
                &t.admin_env,
                &format!("/applications/{ADMIN_CLIENT_ID}/roleAssignments/{first}"),
            ),
            &tok,
            None,
        )
        .await;
        assert_forbidden(&r);
        // A worker it creates inherits only what it has.
        let w = call(&t, Method::POST, &path(&a, "/applications"), &tok, Some(json!({ "name": "child", "protocol": "OPENID_CONNECT", "type": "WORKER", "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC" }))).await;
        assert_eq!(w.status, StatusCode::CREATED, "{}", w.text);
        let inherited = t
            .get(&path(
                &a,
                &format!("/applications/{}/roleAssignments", w.id()),
            ))
            .await;
        assert_eq!(inherited.body["count"], 1, "{}", inherited.text);
        assert_eq!(
            inherited.body["_embedded"]["roleAssignments"][0]["role"]["id"],
            ENVIRONMENT_ADMIN
        );
        assert_eq!(
            inherited.body["_embedded"]["roleAssignments"][0]["scope"],
            json!({ "type": "ENVIRONMENT", "id": a })
        );
    }
}

#[tokio::test]
async fn paths_with_unknown_or_malformed_ids() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        for p in [
            path(&env, "/applications/not-a-uuid"),
            path(&env, "/applications/not-a-uuid/grants"),
            path(&env, &format!("/applications/{}", uuid::Uuid::new_v4())),
            path(
                &env,
                &format!(
                    "/signOnPolicies/{}/actions/{}",
                    uuid::Uuid::new_v4(),
                    uuid::Uuid::new_v4()
                ),
            ),
            "/v1/roles/not-a-uuid".into(),
            format!("/v1/roles/{}", uuid::Uuid::new_v4()),
        ] {
            assert_error(&t.get(&p).await, StatusCode::NOT_FOUND, "NOT_FOUND", None);
        }
        assert_error(
            &t.delete(&path(&env, "/resources/12345")).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
        assert_error(
            &t.put(&path(&env, "/resources/12345"), json!({ "name": "x" }))
                .await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
        // An unknown (or malformed) environment is 403, as PingOne answers.
        let unknown = uuid::Uuid::new_v4().to_string();
        for p in [
            path(&unknown, ""),
            path(&unknown, "/applications"),
            path("not-a-uuid", "/applications"),
        ] {
            assert_forbidden(&t.get(&p).await);
        }
        assert_forbidden(
            &t.post(&path(&unknown, "/populations"), json!({ "name": "x" }))
                .await,
        );
        // A child under the wrong parent is 404.
        let r = t
            .post(&path(&env, "/resources"), json!({ "name": "R" }))
            .await;
        let s = t
            .post(
                &path(&env, &format!("/resources/{}/scopes", r.id())),
                json!({ "name": "s" }),
            )
            .await;
        let r2 = t
            .post(&path(&env, "/resources"), json!({ "name": "R2" }))
            .await;
        assert_error(
            &t.get(&path(
                &env,
                &format!("/resources/{}/scopes/{}", r2.id(), s.id()),
            ))
            .await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
        assert_error(
            &t.delete(&path(
                &env,
                &format!("/resources/{}/scopes/{}", r2.id(), s.id()),
            ))
            .await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
        assert_eq!(
            t.get(&path(
                &env,
                &format!("/resources/{}/scopes/{}", r.id(), s.id())
            ))
            .await
            .status,
            StatusCode::OK
        );
        // A resource id of another kind is 404 too.
        assert_error(
            &t.get(&path(&env, &format!("/applications/{}", r.id())))
                .await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
    }
}

#[tokio::test]
async fn roles_and_role_assignments() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let roles = t.get("/v1/roles").await;
        assert_eq!(roles.status, StatusCode::OK, "{}", roles.text);
        let list = roles.body["_embedded"]["roles"].as_array().unwrap();
        assert_eq!(roles.body["count"], list.len());
        let names: Vec<&str> = list.iter().map(|r| r["name"].as_str().unwrap()).collect();
        for n in [
            "Organization Admin",
            "Environment Admin",
            "Identity Data Admin",
            "Identity Data Read Only",
            "Client Application Developer",
            "Configuration Read Only",
        ] {
            assert!(names.contains(&n), "{n} in {names:?}");
        }
        for r in list {
            assert!(
                r["applicableTo"].is_array() && r["permissions"].is_array(),
                "{r}"
            );
            assert_eq!(
                r["_links"]["self"]["href"],
                format!("http://lanyard.test/v1/roles/{}", r["id"].as_str().unwrap()).as_str()
            );
        }
        let one = t.get(&format!("/v1/roles/{ENVIRONMENT_ADMIN}")).await;
        assert_eq!(one.body["name"], "Environment Admin", "{}", one.text);

        let env = t.new_env().await;
        let w = t.post(&path(&env, "/applications"), json!({ "name": "w", "protocol": "OPENID_CONNECT", "type": "WORKER", "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC", "assignActorRoles": false })).await.id();
        let rp = path(&env, &format!("/applications/{w}/roleAssignments"));
        let org = t.get(&path(&env, "")).await.body["organization"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        for (body, code, target) in [
            (
                json!({ "role": { "id": ENVIRONMENT_ADMIN }, "scope": { "type": "ENVIRONMENT", "id": uuid::Uuid::new_v4() } }),
                "INVALID_VALUE",
                "scope.id",
            ),
            (
                json!({ "role": { "id": ENVIRONMENT_ADMIN }, "scope": { "type": "ORGANIZATION", "id": uuid::Uuid::new_v4() } }),
                "INVALID_VALUE",
                "scope.id",
            ),
            (
                json!({ "role": { "id": IDENTITY_DATA_ADMIN }, "scope": { "type": "POPULATION", "id": uuid::Uuid::new_v4() } }),
                "INVALID_VALUE",
                "scope.id",
            ),
            (
                json!({ "role": { "id": ORGANIZATION_ADMIN }, "scope": { "type": "ENVIRONMENT", "id": env } }),
                "INVALID_VALUE",
                "scope.type",
            ),
            (
                json!({ "role": { "id": uuid::Uuid::new_v4() }, "scope": { "type": "ENVIRONMENT", "id": env } }),
                "INVALID_VALUE",
                "role.id",
            ),
            (
                json!({ "role": { "id": ENVIRONMENT_ADMIN }, "scope": { "type": "GALAXY", "id": env } }),
                "INVALID_VALUE",
                "scope.type",
            ),
            (
                json!({ "role": { "id": ENVIRONMENT_ADMIN } }),
                "REQUIRED_VALUE",
                "scope",
            ),
            (
                json!({ "scope": { "type": "ENVIRONMENT", "id": env } }),
                "REQUIRED_VALUE",
                "role",
            ),
        ] {
            let r = t.post(&rp, body).await;
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_DATA", Some(code));
            assert!(
                r.body["details"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d["target"] == target),
                "{target}: {}",
                r.text
            );
        }
        assert_eq!(t.get(&rp).await.body["count"], 0);
        let ok = t.post(&rp, json!({ "role": { "id": ENVIRONMENT_ADMIN }, "scope": { "type": "ORGANIZATION", "id": org } })).await;
        assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
        assert_eq!(ok.body["readOnly"], false);
        let dup = t.post(&rp, json!({ "role": { "id": ENVIRONMENT_ADMIN }, "scope": { "type": "ORGANIZATION", "id": org } })).await;
        assert_error(
            &dup,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("UNIQUENESS_VIOLATION"),
        );
        let f = t
            .get(&format!("{rp}?filter=scope.type%20eq%20%22ORGANIZATION%22"))
            .await;
        assert_eq!(f.body["count"], 1, "{}", f.text);
        assert_eq!(
            t.delete(&format!("{rp}/{}", ok.id())).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(t.get(&rp).await.body["count"], 0);
        // Role assignments cannot be replaced.
        assert_error(
            &t.put(&format!("{rp}/{}", ok.id()), json!({})).await,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            None,
        );

        // The bootstrap assignments are read-only.
        let ap = path(
            &t.admin_env,
            &format!("/applications/{ADMIN_CLIENT_ID}/roleAssignments"),
        );
        let admin = t.get(&ap).await;
        assert_eq!(admin.body["count"], 3, "{}", admin.text);
        for ra in admin.body["_embedded"]["roleAssignments"]
            .as_array()
            .unwrap()
        {
            assert_eq!(ra["readOnly"], true);
            let r = t
                .delete(&format!("{ap}/{}", ra["id"].as_str().unwrap()))
                .await;
            assert_error(&r, StatusCode::BAD_REQUEST, "REQUEST_FAILED", None);
        }
        assert_eq!(t.get(&ap).await.body["count"], 3);
        assert_eq!(
            t.get("/v1/environments").await.status,
            StatusCode::OK,
            "the admin keeps its roles"
        );
    }
}

#[tokio::test]
async fn deleting_an_application_revokes_its_tokens() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let (id, secret, tok) =
            worker_with(&t, &env, &[(ENVIRONMENT_ADMIN, "ENVIRONMENT", &env)]).await;
        assert_eq!(
            call(&t, Method::GET, &path(&env, "/applications"), &tok, None)
                .await
                .status,
            StatusCode::OK
        );
        // Removing the role takes effect on the next call, with the same token.
        let rp = path(&env, &format!("/applications/{id}/roleAssignments"));
        let ra = t.get(&rp).await.body["_embedded"]["roleAssignments"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            t.delete(&format!("{rp}/{ra}")).await.status,
            StatusCode::NO_CONTENT
        );
        assert_forbidden(&call(&t, Method::GET, &path(&env, "/applications"), &tok, None).await);
        assert_eq!(t.post(&rp, json!({ "role": { "id": ENVIRONMENT_ADMIN }, "scope": { "type": "ENVIRONMENT", "id": env } })).await.status, StatusCode::CREATED);
        assert_eq!(
            call(&t, Method::GET, &path(&env, "/applications"), &tok, None)
                .await
                .status,
            StatusCode::OK
        );

        assert_eq!(
            t.delete(&path(&env, &format!("/applications/{id}")))
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_unauthorized(&call(&t, Method::GET, &path(&env, "/applications"), &tok, None).await);
        let r = t
            .form(
                &format!("/{env}/as/token"),
                Some((&id, &secret)),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
        assert_eq!(r.body["error"], "invalid_client");

        // Deleting the environment revokes the tokens of every worker in it.
        let env2 = t.new_env().await;
        let (_, _, tok2) =
            worker_with(&t, &env2, &[(ENVIRONMENT_ADMIN, "ENVIRONMENT", &env2)]).await;
        assert_eq!(
            call(&t, Method::GET, &path(&env2, "/applications"), &tok2, None)
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            t.delete(&path(&env2, "")).await.status,
            StatusCode::NO_CONTENT
        );
        assert_unauthorized(&call(&t, Method::GET, "/v1/environments", &tok2, None).await);
    }
}

const CLIENT_APPLICATION_DEVELOPER: &str = "97369929-2989-4a82-aa53-93e8d36dfa18";

/// Nobody obtains or controls credentials carrying more authority than their own: an
/// environment's Client Application Developer or Environment Admin can neither read nor rotate
/// the secret of a worker holding organization roles, nor take it over by changing it or its
/// roles; workers within their own authority stay theirs to manage.
#[tokio::test]
async fn no_one_obtains_a_stronger_workers_credentials() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let org = lanyard::resources::environments::org_of(&t.app, &env)
            .await
            .unwrap();
        // A worker the organization's admin creates inherits its organization-wide roles.
        let created = t.post(&path(&env, "/applications"), json!({
            "name": "strong", "protocol": "OPENID_CONNECT", "type": "WORKER", "enabled": true,
            "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC",
        })).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        let strong = created.id();
        let held = t
            .get(&path(
                &env,
                &format!("/applications/{strong}/roleAssignments"),
            ))
            .await;
        assert!(
            held.text.contains(ORGANIZATION_ADMIN) && held.text.contains(&org),
            "{}",
            held.text
        );
        let strong_secret = t
            .get(&path(&env, &format!("/applications/{strong}/secret")))
            .await
            .body["secret"]
            .as_str()
            .unwrap()
            .to_string();
        let (_, _, developer) = worker_with(
            &t,
            &env,
            &[(CLIENT_APPLICATION_DEVELOPER, "ENVIRONMENT", &env)],
        )
        .await;
        let (_, _, env_admin) =
            worker_with(&t, &env, &[(ENVIRONMENT_ADMIN, "ENVIRONMENT", &env)]).await;
        let secret = path(&env, &format!("/applications/{strong}/secret"));
        let item = path(&env, &format!("/applications/{strong}"));
        let takeover = json!({
            "name": "taken", "protocol": "OPENID_CONNECT", "type": "WORKER", "enabled": true,
            "tokenEndpointAuthMethod": "PRIVATE_KEY_JWT",
            "jwks": "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
        });
        for token in [&developer, &env_admin] {
            assert_forbidden(&call(&t, Method::GET, &secret, token, None).await);
            assert_forbidden(&call(&t, Method::POST, &secret, token, None).await);
            assert_forbidden(&call(&t, Method::DELETE, &secret, token, None).await);
            assert_forbidden(&call(&t, Method::PUT, &item, token, Some(takeover.clone())).await);
            assert_forbidden(&call(&t, Method::DELETE, &item, token, None).await);
            let more_roles = json!({ "role": { "id": CLIENT_APPLICATION_DEVELOPER }, "scope": { "type": "ENVIRONMENT", "id": env } });
            assert_forbidden(
                &call(
                    &t,
                    Method::POST,
                    &format!("{item}/roleAssignments"),
                    token,
                    Some(more_roles),
                )
                .await,
            );
        }
        // The strong worker is untouched: same secret, same method, same roles.
        t.client_token(&env, &strong, &strong_secret).await;
        let roles = t.get(&format!("{item}/roleAssignments")).await;
        assert_eq!(roles.body["count"], held.body["count"], "{}", roles.text);
        // Within one's own authority: a developer reads the secret of a worker it created
        // (which inherits the developer's role), an environment admin that of an identity
        // data admin worker of its environment.
        let mine = call(
            &t,
            Method::POST,
            &path(&env, "/applications"),
            &developer,
            Some(json!({
                "name": "mine", "protocol": "OPENID_CONNECT", "type": "WORKER", "enabled": true,
                "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC",
            })),
        )
        .await;
        assert_eq!(mine.status, StatusCode::CREATED, "{}", mine.text);
        let r = call(
            &t,
            Method::GET,
            &path(&env, &format!("/applications/{}/secret", mine.id())),
            &developer,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let (ida, _, _) =
            worker_with(&t, &env, &[(IDENTITY_DATA_ADMIN, "ENVIRONMENT", &env)]).await;
        let r = call(
            &t,
            Method::GET,
            &path(&env, &format!("/applications/{ida}/secret")),
            &env_admin,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        // The organization's admin worker still manages the strong one.
        assert_eq!(t.get(&secret).await.status, StatusCode::OK);
    }
}

/// The outbox holds codes that open accounts: only an environment's full administrators read
/// it (not Identity Data Read Only, not Identity Data Admin alone), and a server outside
/// development mode keeps none at all.
#[tokio::test]
async fn the_outbox_is_for_full_administrators_in_development_mode() {
    for db in backends() {
        let t = TestApp::new(db.clone()).await;
        let env = t.new_env().await;
        let outbox = path(&env, "/outbox");
        let (_, _, reader) =
            worker_with(&t, &env, &[(IDENTITY_DATA_READ_ONLY, "ENVIRONMENT", &env)]).await;
        let (_, _, identity_admin) =
            worker_with(&t, &env, &[(IDENTITY_DATA_ADMIN, "ENVIRONMENT", &env)]).await;
        let (_, _, env_admin) =
            worker_with(&t, &env, &[(ENVIRONMENT_ADMIN, "ENVIRONMENT", &env)]).await;
        let (_, _, full) = worker_with(
            &t,
            &env,
            &[
                (ENVIRONMENT_ADMIN, "ENVIRONMENT", &env),
                (IDENTITY_DATA_ADMIN, "ENVIRONMENT", &env),
            ],
        )
        .await;
        for token in [&reader, &identity_admin, &env_admin] {
            assert_forbidden(&call(&t, Method::GET, &outbox, token, None).await);
        }
        let r = call(&t, Method::GET, &outbox, &full, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);

        let prod = TestApp::with_settings(db, "http://lanyard.test", |s| {
            s.dev = false;
            s.outbox = false;
        })
        .await;
        let env = prod.new_env().await;
        let r = prod.get(&path(&env, "/outbox")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    }
}

/// A user's password is that user's credentials: an Identity Data Admin sets the passwords of
/// ordinary users, but not of a user holding roles beyond its own (an Environment Admin).
#[tokio::test]
async fn no_one_resets_a_stronger_users_password() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let user = |name: &str| json!({ "username": name, "email": format!("{name}@example.com") });
        let admin_user = t.post(&path(&env, "/users"), user("boss")).await.id();
        let plain_user = t.post(&path(&env, "/users"), user("plain")).await.id();
        let a = t
            .post(
                &path(&env, &format!("/users/{admin_user}/roleAssignments")),
                json!({ "role": { "id": ENVIRONMENT_ADMIN }, "scope": { "type": "ENVIRONMENT", "id": env } }),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        let (_, _, identity_admin) =
            worker_with(&t, &env, &[(IDENTITY_DATA_ADMIN, "ENVIRONMENT", &env)]).await;
        let set_password = async |id: &str| {
            let body = json!({ "value": "Tr0ub4dor&3x!", "forceChange": false }).to_string();
            t.send(
                Method::PUT,
                &path(&env, &format!("/users/{id}/password")),
                Some(&identity_admin),
                Some("application/vnd.pingidentity.password.set+json"),
                Some(body.into_bytes()),
            )
            .await
        };
        assert_forbidden(&set_password(&admin_user).await);
        let r = set_password(&plain_user).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
}
