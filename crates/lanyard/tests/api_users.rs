//! Users, their passwords (every password content type, policies, lockout), the account lock,
//! `/enabled` and `/population` through the management API.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{Resp, TestApp, assert_error, backends};
use serde_json::{Value, json};

const SET: &str = "application/vnd.pingidentity.password.set+json";
const SET_VALUE: &str = "application/vnd.pingidentity.password.setValue+json";
const RESET: &str = "application/vnd.pingidentity.password.reset+json";
const CHECK: &str = "application/vnd.pingidentity.password.check+json";
const IMPORT: &str = "application/vnd.pingidentity.user.import+json";
const LOCK: &str = "application/vnd.pingidentity.account.lock+json";
const UNLOCK: &str = "application/vnd.pingidentity.account.unlock+json";

const GOOD: &str = "Str0ng#Horse";

fn users(env: &str) -> String {
    TestApp::env_path(env, "/users")
}

fn user_path(env: &str, id: &str, rest: &str) -> String {
    TestApp::env_path(env, &format!("/users/{id}{rest}"))
}

async fn create_user(t: &TestApp, env: &str, body: Value) -> String {
    let r = t.post(&users(env), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.id()
}

/// A password action on `/users/{id}/password`.
async fn pw(
    t: &TestApp,
    env: &str,
    id: &str,
    method: Method,
    ct: &str,
    body: Option<Value>,
) -> Resp {
    t.action(method, &user_path(env, id, "/password"), ct, body)
        .await
}

async fn set_pw(t: &TestApp, env: &str, id: &str, value: &str) -> Resp {
    pw(
        t,
        env,
        id,
        Method::PUT,
        SET,
        Some(json!({ "value": value })),
    )
    .await
}

async fn check(t: &TestApp, env: &str, id: &str, password: &str) -> Resp {
    pw(
        t,
        env,
        id,
        Method::POST,
        CHECK,
        Some(json!({ "password": password })),
    )
    .await
}

/// The failed requirement names of a policy violation, after asserting its shape.
fn unsatisfied(r: &Resp, target: &str) -> Vec<String> {
    assert_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some("INVALID_VALUE"),
    );
    let d = &r.body["details"][0];
    assert_eq!(d["target"], target, "{}", r.text);
    d["innerError"]["unsatisfiedRequirements"]
        .as_array()
        .unwrap_or_else(|| panic!("unsatisfiedRequirements: {}", r.text))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// A password policy with only the given rules (plus the three required flags, off).
async fn create_policy(t: &TestApp, env: &str, rules: Value) -> String {
    let mut body = json!({
        "name": format!("policy-{}", uuid::Uuid::new_v4()),
        "excludesCommonlyUsed": false, "excludesProfileData": false, "notSimilarToCurrent": false,
    });
    for (k, v) in rules.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = t
        .post(&TestApp::env_path(env, "/passwordPolicies"), body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.id()
}

async fn population_with_policy(t: &TestApp, env: &str, policy: &str) -> String {
    let r = t
        .post(
            &TestApp::env_path(env, "/populations"),
            json!({ "name": format!("pop-{}", uuid::Uuid::new_v4()), "passwordPolicy": { "id": policy } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.id()
}

fn local(href: &Value) -> String {
    href.as_str()
        .unwrap()
        .strip_prefix("http://lanyard.test")
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn user_crud_filters_paging_and_uniqueness() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let p2 = t
            .post(
                &TestApp::env_path(&env, "/populations"),
                json!({ "name": "P2" }),
            )
            .await
            .id();

        let r = t
            .post(&users(&env), json!({ "username": "alice", "email": "alice@example.com", "name": { "given": "Alice", "family": "Smith" }, "enabled": false, "account": { "status": "LOCKED" } }))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let alice = r.id();
        assert_eq!(r.body["enabled"], true, "enabled is read-only on create");
        assert_eq!(r.body["account"]["status"], "OK");
        assert_eq!(r.body["lifecycle"]["status"], "ACCOUNT_OK");
        assert!(r.body["population"]["id"].is_string());
        assert!(
            r.body.get("_password").is_none() && r.body.get("password").is_none(),
            "{}",
            r.text
        );
        assert_eq!(
            r.headers["location"],
            format!("http://lanyard.test{}", user_path(&env, &alice, "")).as_str()
        );
        let default_pop = r.body["population"]["id"].as_str().unwrap().to_string();
        let bob = create_user(
            &t,
            &env,
            json!({ "username": "bob", "email": "bob@example.com", "name": { "family": "Jones" } }),
        )
        .await;
        let carol = create_user(
            &t,
            &env,
            json!({ "username": "carol", "population": { "id": p2 } }),
        )
        .await;

        let got = t.get(&user_path(&env, &alice, "")).await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.body["username"], "alice");
        assert_eq!(got.body["name"]["family"], "Smith");

        let list = |q: &str| {
            format!(
                "{}?filter={}",
                users(&env),
                q.replace(' ', "%20").replace('"', "%22")
            )
        };
        let all = t.get(&users(&env)).await;
        assert_eq!(
            (all.body["count"].clone(), all.body["size"].clone()),
            (json!(3), json!(3)),
            "{}",
            all.text
        );
        let f = t.get(&list(r#"username eq "alice""#)).await;
        assert_eq!(f.body["count"], 1, "{}", f.text);
        assert_eq!(f.body["_embedded"]["users"][0]["id"], alice.as_str());
        let f = t.get(&list(r#"name.family eq "Jones""#)).await;
        assert_eq!(
            f.body["_embedded"]["users"][0]["id"],
            bob.as_str(),
            "{}",
            f.text
        );
        let f = t.get(&list(&format!(r#"population.id eq "{p2}""#))).await;
        assert_eq!(f.body["count"], 1);
        assert_eq!(f.body["_embedded"]["users"][0]["id"], carol.as_str());
        let f = t.get(&list("enabled eq false")).await;
        assert_eq!(f.body["count"], 0, "{}", f.text);
        let e = t
            .put(
                &user_path(&env, &bob, "/enabled"),
                json!({ "enabled": false }),
            )
            .await;
        assert_eq!(e.status, StatusCode::OK, "{}", e.text);
        let f = t.get(&list("enabled eq false")).await;
        assert_eq!(f.body["count"], 1, "{}", f.text);
        assert_eq!(f.body["_embedded"]["users"][0]["id"], bob.as_str());
        let f = t.get(&list(r#"username sw "a""#)).await;
        assert_eq!(f.body["count"], 1);

        // Paging: two pages, disjoint, following _links.next.
        let page1 = t.get(&format!("{}?limit=2", users(&env))).await;
        assert_eq!(page1.body["size"], 2, "{}", page1.text);
        assert_eq!(page1.body["count"], 3);
        let next = local(&page1.body["_links"]["next"]["href"]);
        let page2 = t.get(&next).await;
        assert_eq!(page2.status, StatusCode::OK, "{}", page2.text);
        assert_eq!(page2.body["size"], 1);
        assert!(page2.body["_links"]["next"].is_null());
        let mut ids: Vec<String> = [&page1, &page2]
            .iter()
            .flat_map(|p| {
                p.body["_embedded"]["users"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u["id"].as_str().unwrap().to_string())
            })
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 3);
        let bad = t.get(&format!("{}?limit=0", users(&env))).await;
        assert_error(
            &bad,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("OUT_OF_RANGE"),
        );

        // PUT replaces the profile but cannot change population or enabled.
        let put = t
            .put(&user_path(&env, &alice, ""), json!({ "username": "alice", "name": { "given": "Alicia" }, "population": { "id": p2 }, "enabled": false }))
            .await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.text);
        assert_eq!(put.body["population"]["id"], default_pop.as_str());
        assert_eq!(put.body["enabled"], true);
        assert_eq!(put.body["name"], json!({ "given": "Alicia" }));
        assert!(
            put.body.get("email").is_none(),
            "PUT removes omitted attributes: {}",
            put.text
        );

        // PATCH merges; null removes.
        let patch = t
            .patch(
                &user_path(&env, &bob, ""),
                json!({ "nickname": "Bobby", "email": null }),
            )
            .await;
        assert_eq!(patch.status, StatusCode::OK, "{}", patch.text);
        assert_eq!(patch.body["nickname"], "Bobby");
        assert!(patch.body.get("email").is_none(), "{}", patch.text);
        assert_eq!(patch.body["name"]["family"], "Jones");
        assert_eq!(patch.body["enabled"], false, "PATCH keeps enabled");

        // Usernames are unique per environment, case-insensitively.
        let dup = t.post(&users(&env), json!({ "username": "ALICE" })).await;
        assert_error(
            &dup,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("UNIQUENESS_VIOLATION"),
        );
        let dup = t
            .patch(&user_path(&env, &carol, ""), json!({ "username": "bob" }))
            .await;
        assert_error(
            &dup,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("UNIQUENESS_VIOLATION"),
        );
        let missing = t
            .post(&users(&env), json!({ "email": "x@example.com" }))
            .await;
        assert_error(
            &missing,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("REQUIRED_VALUE"),
        );
        let other_env = t.new_env().await;
        create_user(&t, &other_env, json!({ "username": "alice" })).await;

        // Delete.
        assert_eq!(
            t.delete(&user_path(&env, &carol, "")).await.status,
            StatusCode::NO_CONTENT
        );
        assert_error(
            &t.get(&user_path(&env, &carol, "")).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
        assert_error(
            &t.delete(&user_path(&env, &carol, "")).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
        create_user(&t, &env, json!({ "username": "carol" })).await;

        // Unknown users are 404 everywhere.
        let ghost = uuid::Uuid::new_v4().to_string();
        for rest in ["", "/password", "/enabled", "/population"] {
            assert_error(
                &t.get(&user_path(&env, &ghost, rest)).await,
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                None,
            );
        }
        assert_error(
            &t.get(&user_path(&env, "not-a-uuid", "/password")).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
        let r = pw(
            &t,
            &env,
            &ghost,
            Method::PUT,
            SET,
            Some(json!({ "value": GOOD })),
        )
        .await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND", None);
        let r = t
            .action(Method::POST, &user_path(&env, &ghost, ""), LOCK, None)
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND", None);
        let r = t
            .put(
                &user_path(&env, &ghost, "/enabled"),
                json!({ "enabled": true }),
            )
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND", None);

        // No token, no access.
        let r = t
            .send(
                Method::GET,
                &user_path(&env, &alice, "/password"),
                None,
                None,
                None,
            )
            .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "ACCESS_FAILED", None);
    }
}

#[tokio::test]
async fn import_with_a_bcrypt_hash_then_check() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let hash = bcrypt::hash("Imported#Pass1", 4).unwrap();
        let r = t
            .action(
                Method::POST,
                &users(&env),
                IMPORT,
                Some(json!({
                    "username": "imported", "password": { "value": hash, "forceChange": true },
                    "lifecycle": { "status": "VERIFICATION_REQUIRED" }, "mfaEnabled": true,
                })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(r.body["lifecycle"]["status"], "VERIFICATION_REQUIRED");
        assert!(r.body.get("password").is_none());
        let id = r.id();

        let state = t.get(&user_path(&env, &id, "/password")).await;
        assert_eq!(state.status, StatusCode::OK, "{}", state.text);
        assert_eq!(state.body["status"], "MUST_CHANGE_PASSWORD");
        assert!(state.body["lastChangedAt"].is_string());
        assert_eq!(state.body["user"]["id"], id.as_str());
        assert_eq!(state.body["environment"]["id"], env.as_str());
        assert_eq!(
            state.body["failuresRemaining"], 5,
            "Standard policy locks after 5: {}",
            state.text
        );
        assert_eq!(
            state.body["_links"]["self"]["href"],
            format!("http://lanyard.test{}", user_path(&env, &id, "/password")).as_str()
        );
        let policies = t
            .get(&TestApp::env_path(
                &env,
                "/passwordPolicies?filter=default%20eq%20true",
            ))
            .await;
        let standard = policies.body["_embedded"]["passwordPolicies"][0]["id"].clone();
        assert_eq!(
            standard, state.body["passwordPolicy"]["id"],
            "{}",
            policies.text
        );

        let ok = check(&t, &env, &id, "Imported#Pass1").await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
        assert_eq!(ok.body["status"], "MUST_CHANGE_PASSWORD");
        let bad = check(&t, &env, &id, "imported#pass1").await;
        assert_error(
            &bad,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        assert_eq!(bad.body["details"][0]["target"], "password");
        assert_eq!(
            bad.body["details"][0]["innerError"]["failuresRemaining"], 4,
            "{}",
            bad.text
        );

        // Pre-hashed passwords skip the policy, with or without PingOne's {BCRYPT} prefix.
        let weak = bcrypt::hash("a", 4).unwrap();
        let r = t.action(Method::POST, &users(&env), IMPORT, Some(json!({ "username": "weak", "password": { "value": format!("{{BCRYPT}}{weak}") } }))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(check(&t, &env, &r.id(), "a").await.status, StatusCode::OK);
        // An argon2 PHC string imports too.
        let r = t.action(Method::POST, &users(&env), IMPORT, Some(json!({ "username": "argon", "password": { "value": argon2_hash("Argon#Pass77") } }))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(
            check(&t, &env, &r.id(), "Argon#Pass77").await.status,
            StatusCode::OK
        );
        // A malformed hash or an unsupported scheme is refused; plain create takes no hashes.
        let r = t
            .action(
                Method::POST,
                &users(&env),
                IMPORT,
                Some(json!({ "username": "broken", "password": { "value": "$2b$10$short" } })),
            )
            .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        let r = t
            .action(
                Method::POST,
                &users(&env),
                IMPORT,
                Some(json!({ "username": "ssha", "password": { "value": "{SSHA512}abc" } })),
            )
            .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        let r = t
            .post(
                &users(&env),
                json!({ "username": "plain", "password": { "value": "$2b$04$abc" } }),
            )
            .await;
        assert!(
            !unsatisfied(&r, "password.value").is_empty(),
            "a hash-looking value is a cleartext password on create"
        );
        assert_eq!(
            t.get(&format!(
                "{}?filter=username%20eq%20%22plain%22",
                users(&env)
            ))
            .await
            .body["count"],
            0
        );

        // The hash is never rendered.
        let u = t.get(&user_path(&env, &id, "")).await;
        assert!(!u.text.contains("$2"), "{}", u.text);
    }
}

fn argon2_hash(pw: &str) -> String {
    use argon2::PasswordHasher;
    use argon2::password_hash::SaltString;
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    argon2::Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn every_password_content_type() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let id = create_user(&t, &env, json!({ "username": "pwuser" })).await;

        let s = t.get(&user_path(&env, &id, "/password")).await;
        assert_eq!(s.body["status"], "NO_PASSWORD", "{}", s.text);
        assert!(
            s.body.get("lastChangedAt").is_none() && s.body.get("failuresRemaining").is_none(),
            "{}",
            s.text
        );
        let r = check(&t, &env, &id, GOOD).await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("NO_PASSWORD"),
        );
        let r = pw(
            &t,
            &env,
            &id,
            Method::POST,
            "application/vnd.pingidentity.password.forceChange",
            None,
        )
        .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("NO_PASSWORD"),
        );

        // set (POST as in the how-to guides), forceChange → MUST_CHANGE_PASSWORD.
        let r = pw(
            &t,
            &env,
            &id,
            Method::POST,
            SET,
            Some(json!({ "value": GOOD, "forceChange": true })),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["status"], "MUST_CHANGE_PASSWORD");
        assert!(r.body["lastChangedAt"].is_string());
        assert!(r.body["passwordPolicy"]["id"].is_string());
        // check: media type case-insensitive, charset tolerated, on PUT as well.
        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            "Application/VND.PingIdentity.Password.Check+JSON; charset=UTF-8",
            Some(json!({ "password": GOOD })),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["status"], "MUST_CHANGE_PASSWORD");

        // setValue without a value unsets; with a value sets.
        let r = pw(&t, &env, &id, Method::PUT, SET_VALUE, Some(json!({}))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["status"], "NO_PASSWORD");
        assert_error(
            &check(&t, &env, &id, GOOD).await,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("NO_PASSWORD"),
        );
        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            SET_VALUE,
            Some(json!({ "value": "An0ther#Horse" })),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["status"], "OK");
        assert_eq!(
            check(&t, &env, &id, "An0ther#Horse").await.status,
            StatusCode::OK
        );

        // set on PUT, no forceChange → OK.
        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            SET,
            Some(json!({ "value": "Thi4d#Zebra" })),
        )
        .await;
        assert_eq!(r.body["status"], "OK", "{}", r.text);

        // forceChange, with and without +json, and unlock likewise.
        for (ct, value) in [
            (
                "application/vnd.pingidentity.password.forceChange",
                "Fifth#Zebra1",
            ),
            (
                "application/vnd.pingidentity.password.forceChange+json",
                "Sixth#Zebra2",
            ),
        ] {
            assert_eq!(set_pw(&t, &env, &id, value).await.body["status"], "OK");
            let r = pw(&t, &env, &id, Method::POST, ct, None).await;
            assert_eq!(r.status, StatusCode::OK, "{ct}: {}", r.text);
            assert_eq!(r.body["status"], "MUST_CHANGE_PASSWORD");
        }
        for ct in [
            "application/vnd.pingidentity.password.unlock",
            "application/vnd.pingidentity.password.unlock+json",
        ] {
            let r = pw(&t, &env, &id, Method::POST, ct, None).await;
            assert_eq!(r.status, StatusCode::OK, "{ct}: {}", r.text);
            assert_eq!(
                r.body["status"], "MUST_CHANGE_PASSWORD",
                "unlocking an unlocked password changes nothing"
            );
        }

        // Admin reset: new password works, the old one does not.
        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            RESET,
            Some(json!({ "newPassword": "Fourth#Lemur5" })),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["status"], "OK");
        assert_eq!(
            check(&t, &env, &id, "Fourth#Lemur5").await.status,
            StatusCode::OK
        );
        assert_eq!(
            check(&t, &env, &id, "Thi4d#Zebra").await.status,
            StatusCode::BAD_REQUEST
        );

        // Self-service reset under the Standard policy: minAgeDays (1) holds a fresh password.
        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            RESET,
            Some(json!({ "currentPassword": "Fourth#Lemur5", "newPassword": "Fifth#Walrus6" })),
        )
        .await;
        assert_eq!(unsatisfied(&r, "newPassword"), vec!["minAgeDays"]);
        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            RESET,
            Some(json!({ "currentPassword": "Wrong#Lemur5", "newPassword": "Fifth#Walrus6" })),
        )
        .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        assert_eq!(r.body["details"][0]["target"], "currentPassword");

        // Bad requests.
        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            "application/json",
            Some(json!({ "value": GOOD })),
        )
        .await;
        assert_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "INVALID_REQUEST",
            None,
        );
        let r = t
            .send(
                Method::POST,
                &user_path(&env, &id, "/password"),
                Some(&t.token),
                None,
                Some(b"{}".to_vec()),
            )
            .await;
        assert_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "INVALID_REQUEST",
            None,
        );
        let r = t
            .send(
                Method::PUT,
                &user_path(&env, &id, "/password"),
                Some(&t.token),
                Some(SET),
                Some(b"{\"value\":".to_vec()),
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None);
        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            SET,
            Some(json!({ "forceChange": true })),
        )
        .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("REQUIRED_VALUE"),
        );
        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            SET,
            Some(json!({ "value": 12345678 })),
        )
        .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            RESET,
            Some(json!({ "currentPassword": "x" })),
        )
        .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("REQUIRED_VALUE"),
        );
        let r = pw(&t, &env, &id, Method::POST, CHECK, Some(json!({}))).await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("REQUIRED_VALUE"),
        );
        let r = t.delete(&user_path(&env, &id, "/password")).await;
        assert_error(
            &r,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            None,
        );
        // The password survived all of that.
        assert_eq!(
            check(&t, &env, &id, "Fourth#Lemur5").await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn self_service_change_rules() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let policy = create_policy(&t, &env, json!({ "notSimilarToCurrent": true, "history": { "count": 2, "retentionDays": 30 }, "length": { "min": 8, "max": 64 } })).await;
        let pop = population_with_policy(&t, &env, &policy).await;
        let id = create_user(&t, &env, json!({ "username": "selfie", "population": { "id": pop }, "password": { "value": "first-password" } })).await;

        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            RESET,
            Some(json!({ "currentPassword": "first-password", "newPassword": "first-password2" })),
        )
        .await;
        assert_eq!(unsatisfied(&r, "newPassword"), vec!["notSimilarToCurrent"]);
        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            RESET,
            Some(json!({ "currentPassword": "first-password", "newPassword": "first-password" })),
        )
        .await;
        let failed = unsatisfied(&r, "newPassword");
        assert!(
            failed.contains(&"history".to_string())
                && failed.contains(&"notSimilarToCurrent".to_string()),
            "{failed:?}"
        );
        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            RESET,
            Some(json!({ "currentPassword": "first-password", "newPassword": "another phrase" })),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(
            check(&t, &env, &id, "another phrase").await.status,
            StatusCode::OK
        );

        // history.count 2: the current and the previous password are remembered, not older ones.
        let set = |v: &'static str| set_pw(&t, &env, &id, v);
        assert_eq!(
            unsatisfied(&set("first-password").await, "password"),
            vec!["history"]
        );
        assert_eq!(
            unsatisfied(&set("another phrase").await, "password"),
            vec!["history"]
        );
        assert_eq!(set("third choice").await.status, StatusCode::OK);
        assert_eq!(
            set("first-password").await.status,
            StatusCode::OK,
            "two changes later it may return"
        );
        // bypassPolicy skips every rule.
        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            SET,
            Some(json!({ "value": "x", "bypassPolicy": true })),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(check(&t, &env, &id, "x").await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn policy_violations_report_unsatisfied_requirements() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        // Standard (the default policy) on create.
        let r = t
            .post(
                &users(&env),
                json!({ "username": "victim", "password": { "value": "short" } }),
            )
            .await;
        let failed = unsatisfied(&r, "password.value");
        assert!(
            failed.contains(&"length".into()) && failed.contains(&"minCharacters".into()),
            "{failed:?}"
        );
        assert!(
            r.body["details"][0]["message"]
                .as_str()
                .unwrap()
                .contains("length")
        );
        let list = t
            .get(&format!(
                "{}?filter=username%20eq%20%22victim%22",
                users(&env)
            ))
            .await;
        assert_eq!(list.body["count"], 0, "a refused password creates no user");

        let id = create_user(&t, &env, json!({ "username": "jdoe", "email": "john.smith@example.com", "name": { "given": "John", "family": "Appleseed" } })).await;
        let set = |v: &'static str| set_pw(&t, &env, &id, v);
        assert_eq!(
            unsatisfied(&set("P@ssw0rd").await, "password"),
            vec!["excludesCommonlyUsed"]
        );
        assert_eq!(
            unsatisfied(&set("Appleseed#77").await, "password"),
            vec!["excludesProfileData"]
        );
        assert_eq!(
            unsatisfied(&set("x#SMITH#99y").await, "password"),
            vec!["excludesProfileData"]
        );
        assert_eq!(
            unsatisfied(&set("Baaad#Zebra1").await, "password"),
            vec!["maxRepeatedCharacters"]
        );
        assert_eq!(
            unsatisfied(&set("Ab1#Ab1#Ab1#").await, "password"),
            vec!["minUniqueCharacters"]
        );
        assert_eq!(
            unsatisfied(&set("alllowercase#1").await, "password"),
            vec!["minCharacters", "maxRepeatedCharacters"]
        );
        assert_eq!(set(GOOD).await.status, StatusCode::OK);
        // Standard remembers 6 passwords: the current one cannot be set again.
        assert_eq!(unsatisfied(&set(GOOD).await, "password"), vec!["history"]);

        // A population's own policy wins over the default: sequences and length.
        let seq = create_policy(&t, &env, json!({ "alphabetSequenceRule": { "maxLength": 3 }, "numberSequenceRule": { "maxLength": 3 }, "qwertySequenceRule": { "maxLength": 3 }, "length": { "min": 10, "max": 20 } })).await;
        let pop = population_with_policy(&t, &env, &seq).await;
        let moved = t
            .put(&user_path(&env, &id, "/population"), json!({ "id": pop }))
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
        let state = t.get(&user_path(&env, &id, "/password")).await;
        assert_eq!(state.body["passwordPolicy"]["id"], seq.as_str());
        assert_eq!(
            unsatisfied(&set("xxabcdxx77").await, "password"),
            vec!["alphabetSequenceRule"]
        );
        assert_eq!(
            unsatisfied(&set("xx1234xxyy").await, "password"),
            vec!["numberSequenceRule"]
        );
        assert_eq!(
            unsatisfied(&set("zzqwerzzyy").await, "password"),
            vec!["qwertySequenceRule"]
        );
        assert_eq!(
            unsatisfied(&set("abc123qweXYZ-long-one").await, "password"),
            vec!["length"]
        );
        assert_eq!(
            set("password").await.status,
            StatusCode::BAD_REQUEST,
            "still too short"
        );
        assert_eq!(
            set("abc-123-qwe").await.status,
            StatusCode::OK,
            "runs of 3 are allowed; no common-password rule here"
        );
    }
}

/// Three wrong passwords under a `failureCount: 3, durationSeconds: 2` policy.
async fn lock_out(t: &TestApp, env: &str, id: &str) {
    for remaining in [2, 1] {
        let r = check(t, env, id, "wrong").await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        assert_eq!(
            r.body["details"][0]["innerError"]["failuresRemaining"], remaining,
            "{}",
            r.text
        );
    }
    let r = check(t, env, id, "wrong").await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some("PASSWORD_LOCKED_OUT"),
    );
    assert_eq!(
        r.body["details"][0]["innerError"]["secondsUntilUnlock"], 2,
        "{}",
        r.text
    );
    assert_eq!(
        r.body["details"][0]["innerError"]["failuresRemaining"], 0,
        "{}",
        r.text
    );
}

#[tokio::test]
async fn lockout_after_failures_then_unlock() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let policy = create_policy(
            &t,
            &env,
            json!({ "lockout": { "failureCount": 3, "durationSeconds": 2 } }),
        )
        .await;
        let pop = population_with_policy(&t, &env, &policy).await;
        let id = create_user(&t, &env, json!({ "username": "locky", "population": { "id": pop }, "password": { "value": GOOD } })).await;

        let state = t.get(&user_path(&env, &id, "/password")).await;
        assert_eq!(state.body["failuresRemaining"], 3, "{}", state.text);
        assert_eq!(state.body["passwordPolicy"]["id"], policy.as_str());

        lock_out(&t, &env, &id).await;
        let state = t.get(&user_path(&env, &id, "/password")).await;
        assert_eq!(
            state.body["status"], "PASSWORD_LOCKED_OUT",
            "{}",
            state.text
        );
        assert!(
            state.body["secondsUntilUnlock"]
                .as_i64()
                .is_some_and(|s| s >= 1),
            "{}",
            state.text
        );
        assert!(state.body.get("failuresRemaining").is_none());
        // Locked: even the right password is refused.
        let r = check(&t, &env, &id, GOOD).await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("PASSWORD_LOCKED_OUT"),
        );

        // password.unlock.
        let r = pw(
            &t,
            &env,
            &id,
            Method::POST,
            "application/vnd.pingidentity.password.unlock",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["status"], "OK");
        assert_eq!(r.body["failuresRemaining"], 3);
        assert_eq!(check(&t, &env, &id, GOOD).await.status, StatusCode::OK);

        // A success clears the failure count.
        assert_eq!(
            check(&t, &env, &id, "wrong").await.body["details"][0]["innerError"]["failuresRemaining"],
            2
        );
        assert_eq!(check(&t, &env, &id, GOOD).await.status, StatusCode::OK);
        assert_eq!(
            t.get(&user_path(&env, &id, "/password")).await.body["failuresRemaining"],
            3
        );

        // The lockout lifts by itself after durationSeconds.
        lock_out(&t, &env, &id).await;
        tokio::time::sleep(Duration::from_millis(2300)).await;
        let state = t.get(&user_path(&env, &id, "/password")).await;
        assert_eq!(state.body["status"], "OK", "{}", state.text);
        assert_eq!(check(&t, &env, &id, GOOD).await.status, StatusCode::OK);

        // An administrator's reset unlocks too.
        lock_out(&t, &env, &id).await;
        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            RESET,
            Some(json!({ "newPassword": "Brand#New99" })),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["status"], "OK");
        assert_eq!(
            check(&t, &env, &id, "Brand#New99").await.status,
            StatusCode::OK
        );

        // Without durationSeconds only an unlock helps; the state has no secondsUntilUnlock.
        let manual = create_policy(&t, &env, json!({ "lockout": { "failureCount": 1 } })).await;
        let pop2 = population_with_policy(&t, &env, &manual).await;
        assert_eq!(
            t.put(&user_path(&env, &id, "/population"), json!({ "id": pop2 }))
                .await
                .status,
            StatusCode::OK
        );
        let r = check(&t, &env, &id, "wrong").await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("PASSWORD_LOCKED_OUT"),
        );
        assert!(
            r.body["details"][0]["innerError"]
                .get("secondsUntilUnlock")
                .is_none(),
            "{}",
            r.text
        );
        let state = t.get(&user_path(&env, &id, "/password")).await;
        assert_eq!(state.body["status"], "PASSWORD_LOCKED_OUT");
        assert!(
            state.body.get("secondsUntilUnlock").is_none(),
            "{}",
            state.text
        );
        // forceChange while locked is remembered for after the unlock.
        let r = pw(
            &t,
            &env,
            &id,
            Method::POST,
            "application/vnd.pingidentity.password.forceChange",
            None,
        )
        .await;
        assert_eq!(r.body["status"], "PASSWORD_LOCKED_OUT", "{}", r.text);
        let r = pw(
            &t,
            &env,
            &id,
            Method::PUT,
            "application/vnd.pingidentity.password.unlock+json",
            Some(json!({})),
        )
        .await;
        assert_eq!(r.body["status"], "MUST_CHANGE_PASSWORD", "{}", r.text);
    }
}

#[tokio::test]
async fn account_lock_enabled_and_population() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let id = create_user(&t, &env, json!({ "username": "acct" })).await;
        let user = user_path(&env, &id, "");

        // Account lock / unlock: POST on the user, merged with the generic item routes.
        let r = t.action(Method::POST, &user, LOCK, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["id"], id.as_str());
        assert_eq!(r.body["account"]["status"], "LOCKED");
        assert_eq!(r.body["account"]["canAuthenticate"], false);
        assert!(r.body["account"]["lockedAt"].is_string());
        assert_eq!(t.get(&user).await.body["account"]["status"], "LOCKED");
        let r = t
            .action(
                Method::POST,
                &user,
                "application/VND.pingidentity.account.unlock+json; charset=utf-8",
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(
            r.body["account"],
            json!({ "canAuthenticate": true, "status": "OK" })
        );
        let later =
            lanyard::clock::format(time::OffsetDateTime::now_utc() + time::Duration::hours(1));
        let r = t
            .action(
                Method::POST,
                &user,
                LOCK,
                Some(json!({ "unlockAt": later })),
            )
            .await;
        assert_eq!(r.body["account"]["unlockAt"], later.as_str(), "{}", r.text);
        t.action(Method::POST, &user, UNLOCK, None).await;
        let r = t
            .action(
                Method::POST,
                &user,
                LOCK,
                Some(json!({ "unlockAt": "2020-01-01T00:00:00Z" })),
            )
            .await;
        assert_eq!(
            r.body["account"]["status"], "OK",
            "an unlockAt in the past does not lock: {}",
            r.text
        );
        let r = t
            .action(
                Method::POST,
                &user,
                LOCK,
                Some(json!({ "unlockAt": "tomorrow" })),
            )
            .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        let r = t.post(&user, json!({})).await;
        assert_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "INVALID_REQUEST",
            None,
        );
        // The generic methods still work on the same path, and others are 405.
        assert_eq!(
            t.patch(&user, json!({ "nickname": "n" })).await.status,
            StatusCode::OK
        );
        let r = t
            .send(Method::OPTIONS, &user, Some(&t.token), None, None)
            .await;
        assert_error(
            &r,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            None,
        );

        // enabled.
        let e = t.get(&user_path(&env, &id, "/enabled")).await;
        assert_eq!(e.status, StatusCode::OK);
        assert_eq!(e.body["enabled"], true);
        assert_eq!(
            e.body["_links"]["user"]["href"],
            format!("http://lanyard.test{user}").as_str()
        );
        let e = t
            .put(
                &user_path(&env, &id, "/enabled"),
                json!({ "enabled": false }),
            )
            .await;
        assert_eq!(
            (e.status, e.body["enabled"].clone()),
            (StatusCode::OK, json!(false)),
            "{}",
            e.text
        );
        assert_eq!(t.get(&user).await.body["enabled"], false);
        assert_eq!(
            t.get(&user_path(&env, &id, "/enabled")).await.body["enabled"],
            false
        );
        assert_error(
            &t.put(
                &user_path(&env, &id, "/enabled"),
                json!({ "enabled": "no" }),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        assert_error(
            &t.put(&user_path(&env, &id, "/enabled"), json!({})).await,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("REQUIRED_VALUE"),
        );
        let r = t
            .send(
                Method::PUT,
                &user_path(&env, &id, "/enabled"),
                Some(&t.token),
                Some("text/plain"),
                Some(b"{\"enabled\":true}".to_vec()),
            )
            .await;
        assert_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "INVALID_REQUEST",
            None,
        );
        let r = t
            .send(
                Method::PUT,
                &user_path(&env, &id, "/enabled"),
                Some(&t.token),
                Some("application/json"),
                Some(b"{enabled".to_vec()),
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None);
        assert_error(
            &t.delete(&user_path(&env, &id, "/enabled")).await,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            None,
        );
        assert_eq!(
            t.put(
                &user_path(&env, &id, "/enabled"),
                json!({ "enabled": true })
            )
            .await
            .body["enabled"],
            true
        );

        // population: read, move, refuse unknown populations.
        let p = t.get(&user_path(&env, &id, "/population")).await;
        let default_pop = p.body["id"].as_str().unwrap().to_string();
        assert_eq!(
            t.get(&user).await.body["population"]["id"],
            default_pop.as_str()
        );
        let p2 = t
            .post(
                &TestApp::env_path(&env, "/populations"),
                json!({ "name": "Movers" }),
            )
            .await
            .id();
        let m = t
            .put(&user_path(&env, &id, "/population"), json!({ "id": p2 }))
            .await;
        assert_eq!(m.status, StatusCode::OK, "{}", m.text);
        assert_eq!(m.body["id"], p2.as_str());
        assert_eq!(t.get(&user).await.body["population"]["id"], p2.as_str());
        assert_eq!(
            t.get(&TestApp::env_path(&env, &format!("/populations/{p2}")))
                .await
                .body["userCount"],
            1
        );
        assert_eq!(
            t.get(&TestApp::env_path(
                &env,
                &format!("/populations/{default_pop}")
            ))
            .await
            .body["userCount"],
            0
        );
        let r = t
            .put(
                &user_path(&env, &id, "/population"),
                json!({ "id": uuid::Uuid::new_v4().to_string() }),
            )
            .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        let r = t
            .put(
                &user_path(&env, &id, "/population"),
                json!({ "id": "nope" }),
            )
            .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        let other = t.new_env().await;
        let foreign = t.get(&TestApp::env_path(&other, "/populations")).await.body["_embedded"]["populations"][0]["id"].as_str().unwrap().to_string();
        let r = t
            .put(
                &user_path(&env, &id, "/population"),
                json!({ "id": foreign }),
            )
            .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        assert_eq!(
            t.get(&user).await.body["population"]["id"],
            p2.as_str(),
            "failed moves change nothing"
        );
    }
}
