//! Malformed requests get PingOne error bodies with the right status, and write nothing.

mod common;

use axum::http::{Method, StatusCode};
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

async fn raw(t: &TestApp, method: Method, p: &str, ct: Option<&str>, body: &[u8]) -> Resp {
    t.send(method, p, Some(&t.token), ct, Some(body.to_vec()))
        .await
}

fn detail_targets(r: &Resp) -> Vec<(String, String)> {
    r.body["details"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    (
                        d["code"].as_str().unwrap_or_default().to_string(),
                        d["target"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn has_detail(r: &Resp, code: &str, target: &str) {
    assert_error(r, StatusCode::BAD_REQUEST, "INVALID_DATA", None);
    assert!(
        detail_targets(r).contains(&(code.to_string(), target.to_string())),
        "expected {code} on {target}: {}",
        r.text
    );
}

const WEB: &str = r#"{"name":"w","protocol":"OPENID_CONNECT","type":"WEB_APP","redirectUris":["https://a.example.com/cb"],"tokenEndpointAuthMethod":"CLIENT_SECRET_BASIC"}"#;

#[tokio::test]
async fn malformed_bodies_are_refused_and_write_nothing() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let apps = path(&env, "/applications");
        let pops = path(&env, "/populations");
        let res = path(&env, "/resources");
        let pols = path(&env, "/signOnPolicies");
        let collections = [apps.clone(), pops.clone(), res.clone(), pols.clone()];
        let mut before = Vec::new();
        for c in &collections {
            before.push(count(&t, c).await);
        }

        // Not JSON at all, truncated, trailing garbage, not UTF-8, nested beyond reason.
        let deep = "[".repeat(5000) + &"]".repeat(5000);
        for body in [
            &b"{\"name\": "[..],
            b"name=x",
            b"{\"name\": \"x\"} extra",
            b"\xff\xfe{}",
            deep.as_bytes(),
            b"{'name': 'x'}",
        ] {
            for c in &collections {
                let r = raw(&t, Method::POST, c, Some("application/json"), body).await;
                assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None);
            }
        }
        // JSON that is not an object.
        for body in [&b"[]"[..], b"null", b"\"name\"", b"42"] {
            for c in &collections {
                let r = raw(&t, Method::POST, c, Some("application/json"), body).await;
                assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_DATA", None);
            }
        }
        // Wrong types, each with a detail naming the field.
        has_detail(
            &t.post(&pops, json!({ "name": 5 })).await,
            "INVALID_VALUE",
            "name",
        );
        has_detail(
            &t.post(&pops, json!({ "name": ["a"] })).await,
            "INVALID_VALUE",
            "name",
        );
        has_detail(
            &t.post(&pops, json!({ "name": "p", "default": "yes" }))
                .await,
            "INVALID_VALUE",
            "default",
        );
        has_detail(
            &t.post(&pops, json!({ "name": "p", "default": 1 })).await,
            "INVALID_VALUE",
            "default",
        );
        has_detail(
            &t.post(&pops, json!({ "name": "p", "passwordPolicy": "x" }))
                .await,
            "INVALID_VALUE",
            "passwordPolicy",
        );
        has_detail(
            &t.post(&pops, json!({ "name": "p", "passwordPolicy": {} }))
                .await,
            "REQUIRED_VALUE",
            "passwordPolicy.id",
        );
        has_detail(
            &t.post(
                &res,
                json!({ "name": "r", "accessTokenValiditySeconds": 3600.5 }),
            )
            .await,
            "INVALID_VALUE",
            "accessTokenValiditySeconds",
        );
        has_detail(
            &t.post(
                &res,
                json!({ "name": "r", "accessTokenValiditySeconds": true }),
            )
            .await,
            "INVALID_VALUE",
            "accessTokenValiditySeconds",
        );
        has_detail(&t.post(&apps, json!({ "name": "w", "protocol": "OPENID_CONNECT", "type": "WEB_APP", "tokenEndpointAuthMethod": "NONE", "redirectUris": "https://a.example.com" })).await, "INVALID_VALUE", "redirectUris");
        has_detail(&t.post(&apps, json!({ "name": "w", "protocol": "OPENID_CONNECT", "type": "WEB_APP", "tokenEndpointAuthMethod": "NONE", "redirectUris": [42] })).await, "INVALID_VALUE", "redirectUris[0]");
        has_detail(
            &t.post(&pols, json!({ "name": { "en": "x" } })).await,
            "INVALID_VALUE",
            "name",
        );
        // Unknown enum values list the allowed ones.
        let r = t
            .post(
                &apps,
                json!({ "name": "w", "protocol": "WS_FED_PLUS", "type": "WEB_APP" }),
            )
            .await;
        has_detail(&r, "INVALID_VALUE", "protocol");
        assert!(
            r.body["details"][0]["innerError"]["allowedValues"]
                .as_array()
                .is_some_and(|a| a.contains(&json!("SAML"))),
            "{}",
            r.text
        );
        let r = t
            .post(
                &res,
                json!({ "name": "r", "introspectEndpointAuthMethod": "basic" }),
            )
            .await;
        has_detail(&r, "INVALID_VALUE", "introspectEndpointAuthMethod");
        assert_eq!(
            r.body["details"][0]["innerError"]["allowedValues"],
            json!(["NONE", "CLIENT_SECRET_BASIC", "CLIENT_SECRET_POST"])
        );
        // Missing required fields, all of them reported.
        let r = t.post(&apps, json!({ "protocol": "OPENID_CONNECT" })).await;
        for target in ["name", "type", "tokenEndpointAuthMethod"] {
            has_detail(&r, "REQUIRED_VALUE", target);
        }
        has_detail(
            &raw(&t, Method::POST, &pops, Some("application/json"), b"").await,
            "REQUIRED_VALUE",
            "name",
        );
        has_detail(
            &t.post(&pols, json!({ "name": null })).await,
            "REQUIRED_VALUE",
            "name",
        );

        // Too large: 413 with a PingOne body, before anything is parsed.
        let big = format!(
            "{{\"name\":\"big\",\"description\":\"{}\"}}",
            "x".repeat(2 * 1024 * 1024)
        );
        for c in &collections {
            let r = raw(
                &t,
                Method::POST,
                c,
                Some("application/json"),
                big.as_bytes(),
            )
            .await;
            assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "INVALID_REQUEST", None);
        }
        // Wrong or missing Content-Type: 415 with a PingOne body.
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("application/xml"),
            None,
        ] {
            let r = raw(&t, Method::POST, &pops, ct, br#"{"name":"typed"}"#).await;
            assert_error(
                &r,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "INVALID_REQUEST",
                None,
            );
            let r = raw(&t, Method::POST, &apps, ct, WEB.as_bytes()).await;
            assert_error(
                &r,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "INVALID_REQUEST",
                None,
            );
        }

        for (c, n) in collections.iter().zip(&before) {
            assert_eq!(count(&t, c).await, *n, "nothing was written to {c}");
        }
        // The same bodies with the right media type (parameters and case allowed) are fine.
        let r = raw(
            &t,
            Method::POST,
            &pops,
            Some("Application/JSON; charset=utf-8"),
            br#"{"name":"typed"}"#,
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
}

#[tokio::test]
async fn malformed_updates_change_nothing() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let app = raw(
            &t,
            Method::POST,
            &path(&env, "/applications"),
            Some("application/json"),
            WEB.as_bytes(),
        )
        .await;
        assert_eq!(app.status, StatusCode::CREATED, "{}", app.text);
        let ap = path(&env, &format!("/applications/{}", app.id()));
        let pop = t
            .post(
                &path(&env, "/populations"),
                json!({ "name": "Staff", "description": "kept" }),
            )
            .await;
        let pp = path(&env, &format!("/populations/{}", pop.id()));
        for (p, original) in [(&ap, &app.body), (&pp, &pop.body)] {
            for (ct, body, status, code) in [
                (
                    Some("application/json"),
                    &b"{\"name\":"[..],
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST",
                ),
                (
                    Some("application/json"),
                    b"[]",
                    StatusCode::BAD_REQUEST,
                    "INVALID_DATA",
                ),
                (
                    Some("application/json"),
                    b"{\"name\": 7}",
                    StatusCode::BAD_REQUEST,
                    "INVALID_DATA",
                ),
                (
                    Some("application/json"),
                    b"{}",
                    StatusCode::BAD_REQUEST,
                    "INVALID_DATA",
                ),
                (
                    Some("text/plain"),
                    b"{\"name\":\"x\"}",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "INVALID_REQUEST",
                ),
            ] {
                let r = raw(&t, Method::PUT, p, ct, body).await;
                assert_error(&r, status, code, None);
            }
            let big = format!("{{\"name\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
            assert_error(
                &raw(&t, Method::PUT, p, Some("application/json"), big.as_bytes()).await,
                StatusCode::PAYLOAD_TOO_LARGE,
                "INVALID_REQUEST",
                None,
            );
            let now = t.get(p).await;
            assert_eq!(&now.body, original, "a refused PUT changed {p}");
        }
    }
}

#[tokio::test]
async fn bad_filters_limits_and_cursors() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let apps = path(&env, "/applications");
        for i in 0..3 {
            let body = WEB.replace("\"w\"", &format!("\"app{i}\""));
            assert_eq!(
                raw(
                    &t,
                    Method::POST,
                    &apps,
                    Some("application/json"),
                    body.as_bytes()
                )
                .await
                .status,
                StatusCode::CREATED
            );
        }
        let filter_error = |r: &Resp| {
            has_detail(r, "INVALID_FILTER", "filter");
        };
        // Does not parse.
        for f in [
            "name eq",
            "name",
            "(name eq \"a\"",
            "name eq \"a",
            "name eq 'a'",
            "name xx \"a\"",
            "name eq \"a\" b",
            "",
            "and",
            "name eq \"a\" and",
        ] {
            let r = t.get(&format!("{apps}?filter={}", urlencode(f))).await;
            filter_error(&r);
        }
        // Unsupported attribute, with the supported ones listed.
        let r = t
            .get(&format!("{apps}?filter={}", urlencode(r#"secret eq "x""#)))
            .await;
        filter_error(&r);
        let supported = r.body["details"][0]["innerError"]["supportedAttributes"]
            .as_array()
            .unwrap();
        assert!(
            supported.contains(&json!("name")) && supported.contains(&json!("type")),
            "{}",
            r.text
        );
        filter_error(
            &t.get(&format!(
                "{apps}?filter={}",
                urlencode(r#"memberOfGroups[id eq "x"]"#)
            ))
            .await,
        );
        // Unsupported operator, with the supported ones listed.
        let r = t
            .get(&format!("{apps}?filter={}", urlencode(r#"type co "WEB""#)))
            .await;
        filter_error(&r);
        assert_eq!(
            r.body["details"][0]["innerError"]["supportedOperators"],
            json!(["eq", "ne"]),
            "{}",
            r.text
        );
        // Wrong value types.
        filter_error(
            &t.get(&format!(
                "{apps}?filter={}",
                urlencode(r#"enabled eq "yes""#)
            ))
            .await,
        );
        filter_error(
            &t.get(&format!("{apps}?filter={}", urlencode(r#"name eq 5"#)))
                .await,
        );
        filter_error(
            &t.get(&format!("{apps}?filter={}", urlencode(r#"name co null"#)))
                .await,
        );
        // A filter that is fine, as a control.
        assert_eq!(
            t.get(&format!("{apps}?filter={}", urlencode(r#"name sw "app""#)))
                .await
                .body["count"],
            3
        );

        // limit.
        for l in [
            "0",
            "abc",
            "-1",
            "1001",
            "1.5",
            "",
            "99999999999999999999999",
        ] {
            let r = t.get(&format!("{apps}?limit={}", urlencode(l))).await;
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_DATA", None);
            assert!(
                detail_targets(&r)
                    .iter()
                    .any(|(_, target)| target == "limit"),
                "{l}: {}",
                r.text
            );
        }
        assert_eq!(
            t.get(&format!("{apps}?limit=1000")).await.status,
            StatusCode::OK
        );
        // cursor.
        for c in ["!!!", "abc", "bm90LWEtY3Vyc29y", ""] {
            let r = t.get(&format!("{apps}?cursor={}", urlencode(c))).await;
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_DATA", None);
            assert!(
                detail_targets(&r)
                    .iter()
                    .any(|(_, target)| target == "cursor"),
                "{c}: {}",
                r.text
            );
        }
        // A query string that does not decode is a PingOne 400 too.
        let r = t.get(&format!("{apps}?filter=%ff%fe")).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_DATA", None);
        let r = t.get(&format!("{apps}?limit=%ff")).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_DATA", None);
        // The environments list validates the same way.
        filter_error(
            &t.get(&format!(
                "/v1/environments?filter={}",
                urlencode("nope eq 1")
            ))
            .await,
        );
        assert_error(
            &t.get("/v1/environments?limit=0").await,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            None,
        );
    }
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        for p in [
            "/v1/nothing".to_string(),
            "/nothing".into(),
            path(&env, "/nothing"),
            path(&env, "/applications/x/y/z/w"),
            "/v1".into(),
        ] {
            let r = t.get(&p).await;
            assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND", None);
            let r = t.send(Method::GET, &p, None, None, None).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{p}: {}", r.text);
        }
        let pop = t
            .post(&path(&env, "/populations"), json!({ "name": "p" }))
            .await
            .id();
        for (m, p) in [
            (Method::PATCH, path(&env, &format!("/populations/{pop}"))),
            (Method::POST, path(&env, &format!("/populations/{pop}"))),
            (Method::PUT, path(&env, "/populations")),
            (Method::DELETE, path(&env, "/populations")),
            (Method::PUT, "/v1/environments".into()),
            (Method::DELETE, "/v1/roles".into()),
            (
                Method::POST,
                format!("/v1/roles/{}", lanyard::engine::authz::ENVIRONMENT_ADMIN),
            ),
            (Method::PUT, format!("/{env}/as/token")),
        ] {
            let r = t
                .send(
                    m.clone(),
                    &p,
                    Some(&t.token),
                    Some("application/json"),
                    Some(b"{}".to_vec()),
                )
                .await;
            assert_error(
                &r,
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                None,
            );
        }
        assert_eq!(
            t.get(&path(&env, &format!("/populations/{pop}")))
                .await
                .body["name"],
            "p"
        );
        assert_eq!(count(&t, &path(&env, "/populations")).await, 2);
        // Errors are JSON.
        let r = t.get("/v1/nothing").await;
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let _: Value = serde_json::from_str(&r.text).unwrap();
    }
}
