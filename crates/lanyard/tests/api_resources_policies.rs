//! Resources, scopes and resource attributes; sign-on policies and their actions.

mod common;

use axum::http::StatusCode;
use common::{Resp, TestApp, assert_error, backends};
use serde_json::{Value, json};

fn path(env: &str, rest: &str) -> String {
    TestApp::env_path(env, rest)
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_string()
}

async fn count(t: &TestApp, p: &str) -> i64 {
    let r = t.get(p).await;
    assert_eq!(r.status, StatusCode::OK, "{p}: {}", r.text);
    r.body["count"].as_i64().unwrap()
}

/// Asserts a 400 INVALID_DATA carrying a detail with this code and target; returns the detail.
fn invalid(r: &Resp, code: &str, target: &str) -> Value {
    assert_error(r, StatusCode::BAD_REQUEST, "INVALID_DATA", None);
    r.body["details"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|d| d["code"] == code && d["target"] == target)
        })
        .cloned()
        .unwrap_or_else(|| panic!("expected detail {code} on {target}: {}", r.text))
}

async fn created(t: &TestApp, p: &str, body: Value) -> Resp {
    let r = t.post(p, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{p}: {}", r.text);
    r
}

/// The id of the only item of a filtered list.
async fn find(t: &TestApp, p: &str, key: &str, filter: &str) -> Value {
    let r = t.get(&format!("{p}?filter={}", urlencode(filter))).await;
    assert_eq!(r.body["count"], 1, "{filter}: {}", r.text);
    r.body["_embedded"][key][0].clone()
}

#[tokio::test]
async fn custom_resources() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let rp = path(&env, "/resources");
        let r = created(
            &t,
            &rp,
            json!({ "name": "Orders API", "type": "PINGONE_API" }),
        )
        .await;
        assert_eq!(
            r.body["type"], "CUSTOM",
            "only custom resources can be created"
        );
        assert_eq!(
            r.body["audience"], "Orders API",
            "the audience defaults to the name"
        );
        assert_eq!(r.body["accessTokenValiditySeconds"], 3600);
        assert_eq!(
            r.body["introspectEndpointAuthMethod"],
            "CLIENT_SECRET_BASIC"
        );
        assert_eq!(
            r.headers["location"],
            format!(
                "http://lanyard.test/v1/environments/{env}/resources/{}",
                r.id()
            )
            .as_str()
        );
        assert!(r.body.get("clientSecret").is_none() && r.body.get("secret").is_none());
        // A custom resource has the core `sub` attribute.
        let attrs = t
            .get(&path(&env, &format!("/resources/{}/attributes", r.id())))
            .await;
        assert_eq!(attrs.body["count"], 1, "{}", attrs.text);
        assert_eq!(attrs.body["_embedded"]["attributes"][0]["name"], "sub");
        assert_eq!(attrs.body["_embedded"]["attributes"][0]["type"], "CORE");

        let with_aud = created(&t, &rp, json!({ "name": "Billing", "audience": "https://billing.example.com", "accessTokenValiditySeconds": 300 })).await;
        assert_eq!(with_aud.body["audience"], "https://billing.example.com");
        created(
            &t,
            &rp,
            json!({ "name": "Long", "accessTokenValiditySeconds": 2592000 }),
        )
        .await;

        for (body, code, target) in [
            (
                json!({ "name": "P", "audience": "https://api.pingone.com/mine" }),
                "INVALID_VALUE",
                "audience",
            ),
            (
                json!({ "name": "P", "audience": "https://x.PingOne.eu" }),
                "INVALID_VALUE",
                "audience",
            ),
            (
                json!({ "name": "P", "audience": "https://auth.pingidentity.com" }),
                "INVALID_VALUE",
                "audience",
            ),
            (
                json!({ "name": "P", "audience": "https://p.example.com/#frag" }),
                "INVALID_VALUE",
                "audience",
            ),
            (
                json!({ "name": "pingone stuff" }),
                "INVALID_VALUE",
                "audience",
            ),
            (
                json!({ "name": "P", "accessTokenValiditySeconds": 299 }),
                "OUT_OF_RANGE",
                "accessTokenValiditySeconds",
            ),
            (
                json!({ "name": "P", "accessTokenValiditySeconds": 2592001 }),
                "OUT_OF_RANGE",
                "accessTokenValiditySeconds",
            ),
            (
                json!({ "name": "P", "accessTokenValiditySeconds": "3600" }),
                "INVALID_VALUE",
                "accessTokenValiditySeconds",
            ),
            (
                json!({ "name": "P", "introspectEndpointAuthMethod": "PRIVATE_KEY_JWT" }),
                "INVALID_VALUE",
                "introspectEndpointAuthMethod",
            ),
            (
                json!({ "description": "no name" }),
                "REQUIRED_VALUE",
                "name",
            ),
            (
                json!({ "name": "orders api" }),
                "UNIQUENESS_VIOLATION",
                "name",
            ),
            (json!({ "name": "openid" }), "UNIQUENESS_VIOLATION", "name"),
        ] {
            let e = t.post(&rp, body.clone()).await;
            let d = invalid(&e, code, target);
            if code == "OUT_OF_RANGE" {
                assert_eq!(d["innerError"]["rangeMinimumValue"], 300, "{}", e.text);
                assert_eq!(d["innerError"]["rangeMaximumValue"], 2592000, "{}", e.text);
            }
        }
        assert_eq!(
            count(&t, &rp).await,
            5,
            "two built-ins and three custom resources"
        );

        // Filters.
        let f = t
            .get(&format!("{rp}?filter={}", urlencode(r#"type eq "CUSTOM""#)))
            .await;
        assert_eq!(f.body["count"], 3);
        let f = t
            .get(&format!(
                "{rp}?filter={}",
                urlencode(r#"audience eq "https://billing.example.com""#)
            ))
            .await;
        assert_eq!(f.body["_embedded"]["resources"][0]["name"], "Billing");

        // PUT: audience follows the body; type stays.
        let ip = path(&env, &format!("/resources/{}", r.id()));
        let u = t.put(&ip, json!({ "name": "Orders API", "audience": "https://orders.example.com", "type": "OPENID_CONNECT" })).await;
        assert_eq!(u.status, StatusCode::OK, "{}", u.text);
        assert_eq!(u.body["audience"], "https://orders.example.com");
        assert_eq!(u.body["type"], "CUSTOM");
        invalid(
            &t.put(
                &ip,
                json!({ "name": "Orders API", "audience": "https://pingone.com" }),
            )
            .await,
            "INVALID_VALUE",
            "audience",
        );
        invalid(
            &t.put(&ip, json!({ "name": "Billing" })).await,
            "UNIQUENESS_VIOLATION",
            "name",
        );
        assert_eq!(
            t.get(&ip).await.body["audience"],
            "https://orders.example.com",
            "refused PUTs change nothing"
        );

        // Deleting a custom resource removes its scopes, attributes and the grants of it.
        let scope = created(
            &t,
            &format!("{ip}/scopes"),
            json!({ "name": "orders:read" }),
        )
        .await;
        let app = created(&t, &path(&env, "/applications"), json!({
            "name": "Svc", "protocol": "OPENID_CONNECT", "type": "SERVICE",
            "grantTypes": ["CLIENT_CREDENTIALS"], "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC",
        })).await;
        let gp = path(&env, &format!("/applications/{}/grants", app.id()));
        created(
            &t,
            &gp,
            json!({ "resource": { "id": r.id() }, "scopes": [ { "id": scope.id() } ] }),
        )
        .await;
        let d = t.delete(&ip).await;
        assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.text);
        assert_error(&t.get(&ip).await, StatusCode::NOT_FOUND, "NOT_FOUND", None);
        assert_eq!(
            count(&t, &gp).await,
            0,
            "grants of a deleted resource are gone"
        );
        let mut reader = t.app.store.read();
        assert!(
            reader
                .children("scope", &env, &r.id())
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            reader
                .children("resourceAttribute", &env, &r.id())
                .await
                .unwrap()
                .is_empty()
        );
        // Its name is free again.
        created(&t, &rp, json!({ "name": "Orders API" })).await;
    }
}

#[tokio::test]
async fn built_in_resources_cannot_be_deleted_or_renamed() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let rp = path(&env, "/resources");
        let openid = find(&t, &rp, "resources", r#"name eq "openid""#).await;
        assert_eq!(openid["type"], "OPENID_CONNECT");
        let platform = find(&t, &rp, "resources", r#"type eq "PINGONE_API""#).await;
        assert_eq!(platform["name"], "PingOne API");
        assert_eq!(platform["audience"], "https://api.pingone.com");
        for res in [&openid, &platform] {
            let ip = path(&env, &format!("/resources/{}", res["id"].as_str().unwrap()));
            assert_error(
                &t.delete(&ip).await,
                StatusCode::BAD_REQUEST,
                "REQUEST_FAILED",
                None,
            );
            assert_eq!(t.get(&ip).await.status, StatusCode::OK);
            invalid(
                &t.put(&ip, json!({ "name": "renamed" })).await,
                "INVALID_VALUE",
                "name",
            );
            // A PUT may change the description and lifetime, never the audience or type.
            let u = t.put(&ip, json!({ "name": res["name"], "description": "changed", "audience": "https://elsewhere.example.com", "accessTokenValiditySeconds": 7200 })).await;
            assert_eq!(u.status, StatusCode::OK, "{}", u.text);
            assert_eq!(u.body["description"], "changed");
            assert_eq!(u.body["accessTokenValiditySeconds"], 7200);
            assert_eq!(u.body["audience"], res["audience"]);
            assert_eq!(u.body["type"], res["type"]);
        }
        let scopes = t
            .get(&path(
                &env,
                &format!("/resources/{}/scopes", openid["id"].as_str().unwrap()),
            ))
            .await;
        let mut names: Vec<&str> = scopes.body["_embedded"]["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec!["address", "email", "openid", "phone", "profile"]
        );
        assert_eq!(count(&t, &rp).await, 2);
    }
}

#[tokio::test]
async fn scopes_of_custom_and_built_in_resources() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let rp = path(&env, "/resources");
        let orders = created(&t, &rp, json!({ "name": "Orders" })).await.id();
        let billing = created(&t, &rp, json!({ "name": "Billing" })).await.id();
        let sp = path(&env, &format!("/resources/{orders}/scopes"));
        let s = created(
            &t,
            &sp,
            json!({ "name": "orders:read", "description": "Read orders" }),
        )
        .await;
        assert_eq!(s.body["resource"]["id"], orders.as_str());
        assert_eq!(
            s.body["_links"]["resource"]["href"],
            format!("http://lanyard.test/v1/environments/{env}/resources/{orders}").as_str()
        );
        // Unique per resource, case-insensitively; the same name on another resource is fine.
        let d = invalid(
            &t.post(&sp, json!({ "name": "ORDERS:READ" })).await,
            "UNIQUENESS_VIOLATION",
            "name",
        );
        assert_eq!(d["innerError"]["existingId"], s.id().as_str());
        created(
            &t,
            &path(&env, &format!("/resources/{billing}/scopes")),
            json!({ "name": "orders:read" }),
        )
        .await;
        for (body, code, target) in [
            (json!({ "name": "p1:read:user" }), "INVALID_VALUE", "name"),
            (json!({ "name": "p1:orders" }), "INVALID_VALUE", "name"),
            (json!({ "name": "two words" }), "INVALID_VALUE", "name"),
            (json!({ "name": "" }), "INVALID_VALUE", "name"),
            (json!({}), "REQUIRED_VALUE", "name"),
            (
                json!({ "name": "orders:write", "schemaAttributes": ["email"] }),
                "INVALID_VALUE",
                "schemaAttributes",
            ),
        ] {
            invalid(&t.post(&sp, body).await, code, target);
        }
        let d = invalid(
            &t.post(&sp, json!({ "name": "two words" })).await,
            "INVALID_VALUE",
            "name",
        );
        assert!(d["innerError"]["allowedPattern"].is_string());
        assert_eq!(count(&t, &sp).await, 1, "refused scopes wrote nothing");
        // Renaming a custom scope is fine; onto a sibling's name is not.
        let w = created(&t, &sp, json!({ "name": "orders:write" })).await;
        let u = t
            .put(
                &format!("{sp}/{}", w.id()),
                json!({ "name": "orders:admin" }),
            )
            .await;
        assert_eq!(u.body["name"], "orders:admin", "{}", u.text);
        invalid(
            &t.put(
                &format!("{sp}/{}", w.id()),
                json!({ "name": "orders:read" }),
            )
            .await,
            "UNIQUENESS_VIOLATION",
            "name",
        );
        assert_eq!(
            t.delete(&format!("{sp}/{}", w.id())).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(count(&t, &sp).await, 1);

        // The PingOne API resource accepts only p1:read:user:{suffix} and p1:update:user:{suffix}.
        let platform = find(&t, &rp, "resources", r#"type eq "PINGONE_API""#).await;
        let pp = path(
            &env,
            &format!("/resources/{}/scopes", platform["id"].as_str().unwrap()),
        );
        let before = count(&t, &pp).await;
        let hr = created(
            &t,
            &pp,
            json!({ "name": "p1:read:user:hr", "schemaAttributes": ["name.given", "email"] }),
        )
        .await;
        assert_eq!(hr.body["schemaAttributes"], json!(["name.given", "email"]));
        created(
            &t,
            &pp,
            json!({ "name": "p1:update:user:hr", "schemaAttributes": ["*"] }),
        )
        .await;
        for (body, target) in [
            (json!({ "name": "p1:delete:user:hr" }), "name"),
            (json!({ "name": "orders" }), "name"),
            (json!({ "name": "p1:read:user:" }), "name"),
            (json!({ "name": "p1:update:user:" }), "name"),
            (
                json!({ "name": "p1:read:user:x", "schemaAttributes": ["*", "email"] }),
                "schemaAttributes",
            ),
            (json!({ "name": "p1:read:user:hr" }), "name"),
        ] {
            let r = t.post(&pp, body.clone()).await;
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_DATA", None);
            assert!(
                r.body["details"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d["target"] == target),
                "{body}: {}",
                r.text
            );
        }
        assert_eq!(count(&t, &pp).await, before + 2);
        // Predefined scopes: p1:read:user takes schemaAttributes but cannot be renamed or deleted.
        let read_user = find(&t, &pp, "scopes", r#"name eq "p1:read:user""#).await;
        let rp_user = format!("{pp}/{}", read_user["id"].as_str().unwrap());
        let u = t
            .put(
                &rp_user,
                json!({ "name": "p1:read:user", "schemaAttributes": ["email"] }),
            )
            .await;
        assert_eq!(u.status, StatusCode::OK, "{}", u.text);
        invalid(
            &t.put(&rp_user, json!({ "name": "p1:read:users" })).await,
            "INVALID_VALUE",
            "name",
        );
        assert_error(
            &t.delete(&rp_user).await,
            StatusCode::BAD_REQUEST,
            "REQUEST_FAILED",
            None,
        );
        let mfa = find(&t, &pp, "scopes", r#"name eq "p1:update:userMfaEnabled""#).await;
        invalid(
            &t.put(
                &format!("{pp}/{}", mfa["id"].as_str().unwrap()),
                json!({ "name": "p1:update:userMfaEnabled", "schemaAttributes": ["email"] }),
            )
            .await,
            "INVALID_VALUE",
            "schemaAttributes",
        );
        // The sub-scoped ones are custom: they can be deleted.
        assert_eq!(
            t.delete(&format!("{pp}/{}", hr.id())).await.status,
            StatusCode::NO_CONTENT
        );

        // The openid resource: its standard scopes stay; custom scopes can be added, not p1: ones.
        let openid = find(&t, &rp, "resources", r#"name eq "openid""#).await;
        let op = path(
            &env,
            &format!("/resources/{}/scopes", openid["id"].as_str().unwrap()),
        );
        created(&t, &op, json!({ "name": "groups" })).await;
        invalid(
            &t.post(&op, json!({ "name": "p1:read:user:x" })).await,
            "INVALID_VALUE",
            "name",
        );
        let email = find(&t, &op, "scopes", r#"name eq "email""#).await;
        assert_error(
            &t.delete(&format!("{op}/{}", email["id"].as_str().unwrap()))
                .await,
            StatusCode::BAD_REQUEST,
            "REQUEST_FAILED",
            None,
        );
        // Deleting a scope takes it out of the grants; a grant left empty goes.
        let r1 = created(&t, &sp, json!({ "name": "orders:r1" })).await.id();
        let r2 = created(&t, &sp, json!({ "name": "orders:r2" })).await.id();
        let app = created(&t, &path(&env, "/applications"), json!({
            "name": "Svc", "protocol": "OPENID_CONNECT", "type": "SERVICE",
            "grantTypes": ["CLIENT_CREDENTIALS"], "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC",
        })).await.id();
        let gp = path(&env, &format!("/applications/{app}/grants"));
        let g = created(
            &t,
            &gp,
            json!({ "resource": { "id": orders }, "scopes": [ { "id": r1 }, { "id": r2 } ] }),
        )
        .await
        .id();
        assert_eq!(
            t.delete(&format!("{sp}/{r1}")).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            t.get(&format!("{gp}/{g}")).await.body["scopes"],
            json!([{ "id": r2 }])
        );
        assert_eq!(
            t.delete(&format!("{sp}/{r2}")).await.status,
            StatusCode::NO_CONTENT
        );
        assert_error(
            &t.get(&format!("{gp}/{g}")).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );

        // Scopes of unknown resources.
        let none = path(&env, &format!("/resources/{}/scopes", uuid::Uuid::new_v4()));
        assert_error(
            &t.get(&none).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
        assert_error(
            &t.post(&none, json!({ "name": "x" })).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
        // A scope is reachable only under its own resource.
        assert_error(
            &t.get(&format!("{op}/{}", s.id())).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
    }
}

#[tokio::test]
async fn resource_attributes() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let res = created(&t, &path(&env, "/resources"), json!({ "name": "Orders" }))
            .await
            .id();
        let ap = path(&env, &format!("/resources/{res}/attributes"));
        let sub = find(&t, &ap, "attributes", r#"name eq "sub""#).await;
        let sub_p = format!("{ap}/{}", sub["id"].as_str().unwrap());
        assert_error(
            &t.delete(&sub_p).await,
            StatusCode::BAD_REQUEST,
            "REQUEST_FAILED",
            None,
        );
        invalid(
            &t.put(&sub_p, json!({ "name": "subject", "value": "${user.id}" }))
                .await,
            "INVALID_VALUE",
            "name",
        );
        let u = t
            .put(
                &sub_p,
                json!({ "name": "sub", "value": "${user.username}" }),
            )
            .await;
        assert_eq!(u.status, StatusCode::OK, "{}", u.text);
        assert_eq!(u.body["type"], "CORE");

        let a = created(
            &t,
            &ap,
            json!({ "name": "department", "value": "${user.department}", "type": "CORE" }),
        )
        .await;
        assert_eq!(a.body["type"], "CUSTOM");
        assert_eq!(a.body["resource"]["id"], res.as_str());
        for (body, code, target) in [
            (
                json!({ "name": "aud", "value": "x" }),
                "INVALID_VALUE",
                "name",
            ),
            (
                json!({ "name": "sub", "value": "x" }),
                "INVALID_VALUE",
                "name",
            ),
            (
                json!({ "name": "p1.region", "value": "x" }),
                "INVALID_VALUE",
                "name",
            ),
            (
                json!({ "name": "team", "value": "x", "idToken": true }),
                "INVALID_VALUE",
                "idToken",
            ),
            (json!({ "name": "team" }), "REQUIRED_VALUE", "value"),
            (
                json!({ "name": "Department", "value": "x" }),
                "UNIQUENESS_VIOLATION",
                "name",
            ),
            (
                json!({ "name": "team", "value": "${session.id}" }),
                "INVALID_VALUE",
                "value",
            ),
            (
                json!({ "name": "team", "value": "${user.team" }),
                "INVALID_VALUE",
                "value",
            ),
        ] {
            invalid(&t.post(&ap, body).await, code, target);
        }
        assert_eq!(count(&t, &ap).await, 2);
        let lit = created(&t, &ap, json!({ "name": "tier", "value": "gold" })).await;
        assert_eq!(lit.body["value"], "gold");
        assert_eq!(
            t.delete(&format!("{ap}/{}", a.id())).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(count(&t, &ap).await, 2);
    }
}

async fn policy(t: &TestApp, env: &str, name: &str) -> String {
    created(t, &path(env, "/signOnPolicies"), json!({ "name": name }))
        .await
        .id()
}

#[tokio::test]
async fn sign_on_policies() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let pp = path(&env, "/signOnPolicies");
        let list = t.get(&pp).await;
        assert_eq!(list.body["count"], 2, "{}", list.text);
        let single = find(&t, &pp, "signOnPolicies", r#"name eq "Single_Factor""#).await;
        assert_eq!(single["default"], true);
        let multi = find(&t, &pp, "signOnPolicies", r#"name eq "Multi_Factor""#).await;
        assert_eq!(multi["default"], false);
        let ma = t
            .get(&path(
                &env,
                &format!("/signOnPolicies/{}/actions", multi["id"].as_str().unwrap()),
            ))
            .await;
        let types: Vec<(&str, i64)> = ma.body["_embedded"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["type"].as_str().unwrap(), a["priority"].as_i64().unwrap()))
            .collect();
        assert!(
            types.contains(&("LOGIN", 1)) && types.contains(&("MULTI_FACTOR_AUTHENTICATION", 2)),
            "{types:?}"
        );

        // A PUT that leaves `default` out keeps it (it can only ever be set to true).
        let sp = format!("{pp}/{}", single["id"].as_str().unwrap());
        let u = t
            .put(
                &sp,
                json!({ "name": "Single_Factor", "description": "renamed nothing" }),
            )
            .await;
        assert_eq!(u.status, StatusCode::OK, "{}", u.text);
        assert_eq!(u.body["default"], true);
        let u = t
            .put(
                &format!("{pp}/{}", multi["id"].as_str().unwrap()),
                json!({ "name": "Multi_Factor" }),
            )
            .await;
        assert_eq!(u.body["default"], false, "{}", u.text);

        // Names: letters, digits, `_ . -` and spaces, or an absolute URI; unique.
        let p = created(
            &t,
            &pp,
            // PingOne's own guide sends "default" as a string; it is read as the boolean.
            json!({ "name": "Passwordless_v2.1 - beta", "description": "d", "default": "false" }),
        )
        .await;
        assert_eq!(p.body["default"], false);
        created(&t, &pp, json!({ "name": "urn:acme:policy:mfa" })).await;
        for (body, code, target) in [
            (json!({ "name": "bad/name" }), "INVALID_VALUE", "name"),
            (json!({ "name": "bad!" }), "INVALID_VALUE", "name"),
            (json!({ "name": "" }), "INVALID_VALUE", "name"),
            (json!({ "name": "n".repeat(257) }), "INVALID_VALUE", "name"),
            (json!({}), "REQUIRED_VALUE", "name"),
            (
                json!({ "name": "single_factor" }),
                "UNIQUENESS_VIOLATION",
                "name",
            ),
            (
                json!({ "name": "ok", "default": "yes" }),
                "INVALID_VALUE",
                "default",
            ),
            (
                json!({ "name": "ok", "default": 0 }),
                "INVALID_VALUE",
                "default",
            ),
        ] {
            let r = t.post(&pp, body.clone()).await;
            let d = invalid(&r, code, target);
            if body["name"] == "bad/name" {
                assert!(d["innerError"]["allowedPattern"].is_string(), "{}", r.text);
            }
        }
        assert_eq!(count(&t, &pp).await, 4);

        // Making a policy the default clears it on the others.
        let np = format!("{pp}/{}", p.id());
        let u = t
            .put(
                &np,
                json!({ "name": "Passwordless_v2.1 - beta", "default": true }),
            )
            .await;
        assert_eq!(u.body["default"], true, "{}", u.text);
        let defaults = t
            .get(&format!("{pp}?filter={}", urlencode("default eq true")))
            .await;
        assert_eq!(defaults.body["count"], 1);
        assert_eq!(
            defaults.body["_embedded"]["signOnPolicies"][0]["id"],
            p.id().as_str()
        );
        // The default policy cannot be deleted or un-defaulted.
        assert_error(
            &t.delete(&np).await,
            StatusCode::BAD_REQUEST,
            "REQUEST_FAILED",
            None,
        );
        invalid(
            &t.put(
                &np,
                json!({ "name": "Passwordless_v2.1 - beta", "default": false }),
            )
            .await,
            "INVALID_VALUE",
            "default",
        );
        // A new policy created as the default takes it over.
        let newest = created(&t, &pp, json!({ "name": "Newest", "default": true })).await;
        assert_eq!(newest.body["default"], true);
        assert_eq!(t.get(&np).await.body["default"], false);
        assert_eq!(
            t.get(&format!("{pp}?filter={}", urlencode("default eq true")))
                .await
                .body["count"],
            1
        );

        // Deleting a policy deletes its actions and its application assignments.
        let victim = policy(&t, &env, "Victim").await;
        let vp = format!("{pp}/{victim}");
        created(
            &t,
            &format!("{vp}/actions"),
            json!({ "type": "LOGIN", "priority": 1 }),
        )
        .await;
        let app = created(&t, &path(&env, "/applications"), json!({
            "name": "Web", "protocol": "OPENID_CONNECT", "type": "WEB_APP", "redirectUris": ["https://a.example.com/cb"],
            "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC",
        })).await.id();
        let asp = path(
            &env,
            &format!("/applications/{app}/signOnPolicyAssignments"),
        );
        created(
            &t,
            &asp,
            json!({ "signOnPolicy": { "id": victim }, "priority": 1 }),
        )
        .await;
        created(
            &t,
            &asp,
            json!({ "signOnPolicy": { "id": p.id() }, "priority": 2 }),
        )
        .await;
        assert_eq!(t.delete(&vp).await.status, StatusCode::NO_CONTENT);
        assert_error(&t.get(&vp).await, StatusCode::NOT_FOUND, "NOT_FOUND", None);
        let left = t.get(&asp).await;
        assert_eq!(left.body["count"], 1, "{}", left.text);
        assert_eq!(
            left.body["_embedded"]["signOnPolicyAssignments"][0]["signOnPolicy"]["id"],
            p.id().as_str()
        );
        assert_eq!(
            left.body["_embedded"]["signOnPolicyAssignments"][0]["priority"],
            1
        );
        assert!(
            t.app
                .store
                .read()
                .children("signOnPolicyAction", &env, &victim)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn actions_of_every_type() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let pol = policy(&t, &env, "Everything").await;
        let ap = path(&env, &format!("/signOnPolicies/{pol}/actions"));
        let pop = find(
            &t,
            &path(&env, "/populations"),
            "populations",
            r#"name eq "Default""#,
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let idp = uuid::Uuid::new_v4().to_string();

        let login = created(&t, &ap, json!({ "type": "LOGIN", "priority": 1 })).await;
        assert_eq!(login.body["recovery"], json!({ "enabled": true }));
        assert_eq!(login.body["registration"]["enabled"], false);
        assert_eq!(login.body["signOnPolicy"]["id"], pol.as_str());
        assert_eq!(
            login.body["_links"]["signOnPolicy"]["href"],
            format!("http://lanyard.test/v1/environments/{env}/signOnPolicies/{pol}").as_str()
        );
        let reg = created(
            &t,
            &ap,
            json!({
                "type": "LOGIN", "priority": 2, "recovery": { "enabled": false },
                "registration": { "enabled": true, "population": { "id": pop } },
                "enforceLockoutForIdentityProviders": true,
            }),
        )
        .await;
        assert_eq!(reg.body["registration"]["population"]["id"], pop.as_str());
        assert_eq!(
            reg.body["registration"]["confirmIdentityProviderAttributes"],
            false
        );
        assert_eq!(reg.body["recovery"]["enabled"], false);
        let ext = created(&t, &ap, json!({ "type": "LOGIN", "priority": 3, "registration": { "enabled": false, "external": { "href": "https://register.example.com" } } })).await;
        assert_eq!(
            ext.body["registration"]["external"]["href"],
            "https://register.example.com"
        );
        let mfa = created(&t, &ap, json!({ "type": "MULTI_FACTOR_AUTHENTICATION", "priority": 4, "sms": { "enabled": true }, "email": { "enabled": true },
            "applications": [ { "id": uuid::Uuid::new_v4(), "autoEnrollment": { "enabled": true }, "deviceAuthorization": { "enabled": true, "extraVerification": "permissive" } } ] })).await;
        assert_eq!(mfa.body["noDevicesMode"], "BLOCK");
        assert_eq!(mfa.body["sms"]["enabled"], true);
        assert_eq!(
            mfa.body["applications"][0]["deviceAuthorization"]["extraVerification"],
            "permissive"
        );
        let idf = created(&t, &ap, json!({ "type": "IDENTIFIER_FIRST", "priority": 5,
            "discoveryRules": [ { "condition": { "contains": "@example.com", "value": "${identifier}" }, "identityProvider": { "id": idp } } ] })).await;
        assert_eq!(
            idf.body["discoveryRules"][0]["identityProvider"]["id"],
            idp.as_str()
        );
        assert_eq!(idf.body["recovery"]["enabled"], true);
        let pp = created(&t, &ap, json!({ "type": "PROGRESSIVE_PROFILING", "priority": 6, "promptText": "Tell us more",
            "attributes": [ { "name": "mobilePhone", "required": true }, { "name": "nickname", "required": false } ] })).await;
        assert_eq!(
            pp.body["attributes"][0],
            json!({ "name": "mobilePhone", "required": true })
        );
        assert_eq!(pp.body["promptText"], "Tell us more");
        assert_eq!(pp.body["preventMultiplePromptsPerFlow"], true);
        assert_eq!(pp.body["promptIntervalSeconds"], 7776000);
        let agreement = uuid::Uuid::new_v4().to_string();
        let ag = created(&t, &ap, json!({ "type": "AGREEMENT", "priority": 7, "agreement": { "id": agreement }, "disableDeclineOption": true })).await;
        assert_eq!(ag.body["agreement"]["id"], agreement.as_str());
        assert_eq!(ag.body["disableDeclineOption"], true);
        let ip = created(&t, &ap, json!({ "type": "IDENTITY_PROVIDER", "priority": 8, "identityProvider": { "id": idp }, "acrValues": "urn:acr:mfa", "passUserContext": true,
            "registration": { "enabled": true, "population": { "id": pop } } })).await;
        assert_eq!(ip.body["identityProvider"]["id"], idp.as_str());
        assert_eq!(ip.body["acrValues"], "urn:acr:mfa");
        assert_eq!(count(&t, &ap).await, 8);
        let f = t
            .get(&format!("{ap}?filter={}", urlencode(r#"type eq "LOGIN""#)))
            .await;
        assert_eq!(f.body["count"], 3, "{}", f.text);

        for (body, code, target) in [
            (
                json!({ "type": "MFA", "priority": 1 }),
                "INVALID_VALUE",
                "type",
            ),
            (json!({ "priority": 1 }), "REQUIRED_VALUE", "type"),
            (json!({ "type": "LOGIN" }), "REQUIRED_VALUE", "priority"),
            (
                json!({ "type": "LOGIN", "priority": 0 }),
                "OUT_OF_RANGE",
                "priority",
            ),
            (
                json!({ "type": "LOGIN", "priority": "first" }),
                "INVALID_VALUE",
                "priority",
            ),
            (
                json!({ "type": "LOGIN", "priority": 1, "recovery": {} }),
                "REQUIRED_VALUE",
                "recovery.enabled",
            ),
            (
                json!({ "type": "LOGIN", "priority": 1, "registration": { "enabled": true, "population": { "id": uuid::Uuid::new_v4() } } }),
                "INVALID_VALUE",
                "registration.population.id",
            ),
            (
                json!({ "type": "LOGIN", "priority": 1, "registration": { "enabled": true, "external": { "href": "https://r.example.com" } } }),
                "INVALID_VALUE",
                "registration.external",
            ),
            (
                json!({ "type": "LOGIN", "priority": 1, "socialProviders": [ { "id": "facebook" } ] }),
                "INVALID_VALUE",
                "socialProviders[0].id",
            ),
            (
                json!({ "type": "MULTI_FACTOR_AUTHENTICATION", "priority": 1, "noDevicesMode": "ALLOW" }),
                "INVALID_VALUE",
                "noDevicesMode",
            ),
            (
                json!({ "type": "MULTI_FACTOR_AUTHENTICATION", "priority": 1, "sms": { "enabled": "yes" } }),
                "INVALID_VALUE",
                "sms.enabled",
            ),
            (
                json!({ "type": "PROGRESSIVE_PROFILING", "priority": 1, "attributes": [ { "name": "nickname", "required": true } ] }),
                "REQUIRED_VALUE",
                "promptText",
            ),
            (
                json!({ "type": "PROGRESSIVE_PROFILING", "priority": 1, "promptText": "x" }),
                "REQUIRED_VALUE",
                "attributes",
            ),
            (
                json!({ "type": "PROGRESSIVE_PROFILING", "priority": 1, "promptText": "x", "attributes": [ { "name": "nickname" } ] }),
                "REQUIRED_VALUE",
                "attributes[0].required",
            ),
            (
                json!({ "type": "PROGRESSIVE_PROFILING", "priority": 1, "promptText": "x", "attributes": [ { "name": "nickname", "required": true } ], "promptIntervalSeconds": 0 }),
                "OUT_OF_RANGE",
                "promptIntervalSeconds",
            ),
            (
                json!({ "type": "AGREEMENT", "priority": 1 }),
                "REQUIRED_VALUE",
                "agreement",
            ),
            (
                json!({ "type": "AGREEMENT", "priority": 1, "agreement": { "id": "nope" } }),
                "INVALID_VALUE",
                "agreement.id",
            ),
            (
                json!({ "type": "IDENTITY_PROVIDER", "priority": 1 }),
                "REQUIRED_VALUE",
                "identityProvider",
            ),
            (
                json!({ "type": "IDENTITY_PROVIDER", "priority": 1, "identityProvider": { "id": idp }, "registration": {} }),
                "REQUIRED_VALUE",
                "registration.enabled",
            ),
            (
                json!({ "type": "IDENTIFIER_FIRST", "priority": 1, "discoveryRules": [ { "condition": { "contains": "@x.com" }, "identityProvider": { "id": idp } } ] }),
                "REQUIRED_VALUE",
                "discoveryRules[0].condition.value",
            ),
        ] {
            let r = t.post(&ap, body.clone()).await;
            let d = invalid(&r, code, target);
            if target == "type" && code == "INVALID_VALUE" {
                let allowed = d["innerError"]["allowedValues"].as_array().unwrap();
                for ty in [
                    "LOGIN",
                    "MULTI_FACTOR_AUTHENTICATION",
                    "IDENTIFIER_FIRST",
                    "PROGRESSIVE_PROFILING",
                    "AGREEMENT",
                    "IDENTITY_PROVIDER",
                ] {
                    assert!(allowed.contains(&json!(ty)), "{ty}: {}", r.text);
                }
            }
        }
        assert_eq!(count(&t, &ap).await, 8, "refused actions wrote nothing");
        let prios: Vec<i64> = {
            let mut v: Vec<i64> = t.get(&ap).await.body["_embedded"]["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["priority"].as_i64().unwrap())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            prios,
            (1..=8).collect::<Vec<_>>(),
            "a refused insert does not renumber"
        );

        // PUT keeps the type; fields follow the stored type's schema.
        let u = t.put(&format!("{ap}/{}", pp.id()), json!({ "type": "LOGIN", "priority": 6, "promptText": "Changed", "attributes": [ { "name": "nickname", "required": true } ] })).await;
        assert_eq!(u.status, StatusCode::OK, "{}", u.text);
        assert_eq!(u.body["type"], "PROGRESSIVE_PROFILING");
        assert_eq!(u.body["promptText"], "Changed");
        invalid(&t.put(&format!("{ap}/{}", pp.id()), json!({ "priority": 6, "attributes": [ { "name": "nickname", "required": true } ] })).await, "REQUIRED_VALUE", "promptText");
        // Actions of unknown policies.
        let none = path(
            &env,
            &format!("/signOnPolicies/{}/actions", uuid::Uuid::new_v4()),
        );
        assert_error(
            &t.post(&none, json!({ "type": "LOGIN", "priority": 1 }))
                .await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
    }
}

async fn order(t: &TestApp, ap: &str) -> Vec<(String, i64)> {
    let r = t.get(ap).await;
    let mut v: Vec<(String, i64)> = r.body["_embedded"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["priority"].as_i64().unwrap(),
            )
        })
        .collect();
    v.sort_by_key(|(_, p)| *p);
    v
}

#[tokio::test]
async fn action_priorities_stay_dense_and_unique() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let pol = policy(&t, &env, "Ordered").await;
        let ap = path(&env, &format!("/signOnPolicies/{pol}/actions"));
        let a = created(&t, &ap, json!({ "type": "LOGIN", "priority": 1 }))
            .await
            .id();
        let b = created(
            &t,
            &ap,
            json!({ "type": "MULTI_FACTOR_AUTHENTICATION", "priority": 2 }),
        )
        .await
        .id();
        let c = created(&t, &ap, json!({ "type": "AGREEMENT", "priority": 3, "agreement": { "id": uuid::Uuid::new_v4() } })).await.id();
        // Insert at 1 shifts the others.
        let d = created(
            &t,
            &ap,
            json!({ "type": "MULTI_FACTOR_AUTHENTICATION", "priority": 1 }),
        )
        .await;
        assert_eq!(d.body["priority"], 1);
        let d = d.id();
        assert_eq!(
            order(&t, &ap).await,
            vec![
                (d.clone(), 1),
                (a.clone(), 2),
                (b.clone(), 3),
                (c.clone(), 4)
            ]
        );
        // Insert in the middle; past the end lands at the end.
        let e = created(&t, &ap, json!({ "type": "LOGIN", "priority": 3 }))
            .await
            .id();
        let f = created(&t, &ap, json!({ "type": "LOGIN", "priority": 99 })).await;
        assert_eq!(f.body["priority"], 6);
        let f = f.id();
        assert_eq!(
            order(&t, &ap).await,
            vec![
                (d.clone(), 1),
                (a.clone(), 2),
                (e.clone(), 3),
                (b.clone(), 4),
                (c.clone(), 5),
                (f.clone(), 6)
            ]
        );
        // Delete compacts.
        assert_eq!(
            t.delete(&format!("{ap}/{a}")).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            order(&t, &ap).await,
            vec![
                (d.clone(), 1),
                (e.clone(), 2),
                (b.clone(), 3),
                (c.clone(), 4),
                (f.clone(), 5)
            ]
        );
        // Moving with PUT, up and down.
        let m = t.put(&format!("{ap}/{c}"), json!({ "type": "AGREEMENT", "priority": 1, "agreement": { "id": uuid::Uuid::new_v4() } })).await;
        assert_eq!(m.body["priority"], 1, "{}", m.text);
        assert_eq!(
            order(&t, &ap).await,
            vec![
                (c.clone(), 1),
                (d.clone(), 2),
                (e.clone(), 3),
                (b.clone(), 4),
                (f.clone(), 5)
            ]
        );
        let m = t
            .put(
                &format!("{ap}/{d}"),
                json!({ "type": "MULTI_FACTOR_AUTHENTICATION", "priority": 50 }),
            )
            .await;
        assert_eq!(m.body["priority"], 5, "{}", m.text);
        assert_eq!(
            order(&t, &ap).await,
            vec![
                (c.clone(), 1),
                (e.clone(), 2),
                (b.clone(), 3),
                (f.clone(), 4),
                (d.clone(), 5)
            ]
        );
        // Priorities are per policy.
        let other = policy(&t, &env, "Other").await;
        let o = created(
            &t,
            &path(&env, &format!("/signOnPolicies/{other}/actions")),
            json!({ "type": "LOGIN", "priority": 3 }),
        )
        .await;
        assert_eq!(o.body["priority"], 1);
        assert_eq!(order(&t, &ap).await.len(), 5);
        // An action is reachable only under its own policy.
        assert_error(
            &t.get(&path(&env, &format!("/signOnPolicies/{other}/actions/{c}")))
                .await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
    }
}

#[tokio::test]
async fn action_conditions_are_validated() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let pol = policy(&t, &env, "Conditional").await;
        let ap = path(&env, &format!("/signOnPolicies/{pol}/actions"));
        created(&t, &ap, json!({ "type": "LOGIN", "priority": 1, "condition": { "secondsSince": "${session.lastSignOn.withAuthenticator.pwd.at}", "greater": 3600 } })).await;
        let ok = [
            json!({ "or": [
                { "value": "${user.population.id}", "equals": "x" },
                { "not": { "contains": "${flow.request.http.remoteIp}", "ipRange": ["10.0.0.0/8", "192.168.1.1", "2001:db8::/32"] } },
                { "and": [ { "ipRisk": { "minScore": 80, "maxScore": 100 }, "valid": "${flow.request.http.remoteIp}" }, { "anonymousNetwork": ["10.0.0.0/8"], "valid": "${flow.request.http.remoteIp}" } ] },
                { "geoVelocity": "${flow.request.http.remoteIp}", "valid": { "previousSuccessfulAuthenticationIp": "${user.lastSignOn.remoteIp}", "previousSuccessfulAuthenticationTime": "${user.lastSignOn.at}" } },
            ] }),
            json!({ "value": "${user.verified}", "equals": true }),
        ];
        for c in ok {
            let r = t
                .post(
                    &ap,
                    json!({ "type": "MULTI_FACTOR_AUTHENTICATION", "priority": 2, "condition": c }),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            assert_eq!(r.body["condition"], c);
        }
        let before = count(&t, &ap).await;
        for (c, target) in [
            (json!({ "foo": 1 }), "condition"),
            (json!("always"), "condition"),
            (json!({ "and": [] }), "condition"),
            (json!({ "or": "x" }), "condition"),
            (
                json!({ "secondsSince": "${session.lastSignOn.withAuthenticator.pwd.at}", "greater": 0 }),
                "condition",
            ),
            (
                json!({ "and": [ { "value": "${user.x}", "equals": "y" }, { "bogus": true } ] }),
                "condition.and[1]",
            ),
            (
                json!({ "not": { "contains": "${flow.request.http.remoteIp}", "ipRange": ["300.1.1.1/8"] } }),
                "condition.not",
            ),
            (
                json!({ "not": { "contains": "${flow.request.http.remoteIp}", "ipRange": ["10.0.0.0/33"] } }),
                "condition.not",
            ),
        ] {
            let r = t
                .post(
                    &ap,
                    json!({ "type": "MULTI_FACTOR_AUTHENTICATION", "priority": 2, "condition": c }),
                )
                .await;
            invalid(&r, "INVALID_VALUE", target);
        }
        // The first action cannot depend on the user (the user is not known yet).
        let r = t.post(&ap, json!({ "type": "LOGIN", "priority": 1, "condition": { "value": "${user.population.id}", "equals": "x" } })).await;
        invalid(&r, "INVALID_VALUE", "condition");
        assert_eq!(
            count(&t, &ap).await,
            before,
            "refused actions wrote nothing"
        );
        // ... wherever it asked to be placed, and whether created or moved there.
        let empty = policy(&t, &env, "Empty").await;
        let ep = path(&env, &format!("/signOnPolicies/{empty}/actions"));
        let user_cond = json!({ "value": "${user.population.id}", "equals": "x" });
        invalid(&t.post(&ep, json!({ "type": "MULTI_FACTOR_AUTHENTICATION", "priority": 5, "condition": user_cond })).await, "INVALID_VALUE", "condition");
        assert_eq!(count(&t, &ep).await, 0);
        created(&t, &ep, json!({ "type": "LOGIN", "priority": 1 })).await;
        let second = created(
            &t,
            &ep,
            json!({ "type": "MULTI_FACTOR_AUTHENTICATION", "priority": 2, "condition": user_cond }),
        )
        .await;
        let r = t.put(&format!("{ep}/{}", second.id()), json!({ "type": "MULTI_FACTOR_AUTHENTICATION", "priority": 1, "condition": user_cond })).await;
        invalid(&r, "INVALID_VALUE", "condition");
        assert_eq!(
            t.get(&format!("{ep}/{}", second.id())).await.body["priority"],
            2,
            "a refused move changes nothing"
        );
    }
}

/// Sends the same kind of request from several tasks at once; returns the statuses.
async fn concurrently(
    t: &TestApp,
    reqs: Vec<(axum::http::Method, String, Value)>,
) -> Vec<StatusCode> {
    let mut handles = Vec::new();
    for (m, p, body) in reqs {
        let router = t.router.clone();
        let token = t.token.clone();
        handles.push(tokio::spawn(async move {
            let req = axum::http::Request::builder()
                .method(m)
                .uri(p)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.to_string()))
                .unwrap();
            tower::ServiceExt::oneshot(router, req)
                .await
                .unwrap()
                .status()
        }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_keep_priorities_and_the_default_unique() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let pol = policy(&t, &env, "Busy").await;
        let ap = path(&env, &format!("/signOnPolicies/{pol}/actions"));
        let n = 8;
        let statuses = concurrently(
            &t,
            (0..n)
                .map(|_| {
                    (
                        axum::http::Method::POST,
                        ap.clone(),
                        json!({ "type": "LOGIN", "priority": 1 }),
                    )
                })
                .collect(),
        )
        .await;
        assert!(
            statuses.iter().all(|s| *s == StatusCode::CREATED),
            "{statuses:?}"
        );
        let mut prios: Vec<i64> = order(&t, &ap).await.into_iter().map(|(_, p)| p).collect();
        prios.sort();
        assert_eq!(
            prios,
            (1..=n as i64).collect::<Vec<_>>(),
            "priorities stay dense and unique under concurrent inserts"
        );

        // Several policies made the default at once: exactly one ends up the default.
        let pp = path(&env, "/signOnPolicies");
        let mut reqs = Vec::new();
        for i in 0..6 {
            let name = format!("Contender{i}");
            let id = policy(&t, &env, &name).await;
            reqs.push((
                axum::http::Method::PUT,
                format!("{pp}/{id}"),
                json!({ "name": name, "default": true }),
            ));
        }
        let statuses = concurrently(&t, reqs).await;
        assert!(
            statuses.iter().all(|s| *s == StatusCode::OK),
            "{statuses:?}"
        );
        let defaults = t
            .get(&format!("{pp}?filter={}", urlencode("default eq true")))
            .await;
        assert_eq!(defaults.body["count"], 1, "{}", defaults.text);
    }
}
