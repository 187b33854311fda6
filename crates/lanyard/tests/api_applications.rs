//! Applications (OIDC and SAML) and their sub-resources through the management API: defaults,
//! validation with detail targets, listing/filtering/paging, PUT, delete cascades, client secrets
//! and rotation, grants, attribute mappings and sign-on policy assignments.

mod common;

use std::collections::HashSet;

use axum::http::StatusCode;
use common::{Resp, TestApp, assert_error, backends};
use serde_json::{Value, json};

fn path(env: &str, rest: &str) -> String {
    TestApp::env_path(env, rest)
}

/// An href of a response as a path the router serves.
fn local(href: &Value) -> String {
    href.as_str()
        .unwrap_or_else(|| panic!("not an href: {href}"))
        .strip_prefix("http://lanyard.test")
        .expect("hrefs use the public URL")
        .to_string()
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

fn web_app(name: &str) -> Value {
    json!({
        "name": name,
        "protocol": "OPENID_CONNECT",
        "type": "WEB_APP",
        "grantTypes": ["AUTHORIZATION_CODE", "REFRESH_TOKEN"],
        "responseTypes": ["CODE"],
        "redirectUris": ["https://app.example.com/callback"],
        "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC",
    })
}

fn worker(name: &str) -> Value {
    json!({
        "name": name,
        "protocol": "OPENID_CONNECT",
        "type": "WORKER",
        "enabled": true,
        "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC",
        "assignActorRoles": false,
    })
}

fn saml_app(name: &str, entity: &str) -> Value {
    json!({
        "name": name,
        "protocol": "SAML",
        "type": "WEB_APP",
        "spEntityId": entity,
        "acsUrls": ["https://sp.example.com/acs"],
        "assertionDuration": 60,
    })
}

async fn create(t: &TestApp, env: &str, body: Value) -> Resp {
    let r = t.post(&path(env, "/applications"), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r
}

async fn secret_of(t: &TestApp, env: &str, app: &str) -> String {
    let r = t
        .get(&path(env, &format!("/applications/{app}/secret")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["secret"].as_str().unwrap().to_string()
}

async fn token_status(t: &TestApp, env: &str, id: &str, secret: &str) -> StatusCode {
    t.form(
        &format!("/{env}/as/token"),
        Some((id, secret)),
        &[("grant_type", "client_credentials")],
    )
    .await
    .status
}

#[tokio::test]
async fn oidc_applications_of_each_type_are_created_with_defaults() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let bodies = [
            web_app("Web"),
            json!({
                "name": "Native", "protocol": "OPENID_CONNECT", "type": "NATIVE_APP",
                "grantTypes": ["AUTHORIZATION_CODE"], "responseTypes": ["CODE"],
                "redirectUris": ["com.example.app://callback"], "tokenEndpointAuthMethod": "NONE",
                "pkceEnforcement": "S256_REQUIRED",
            }),
            json!({
                "name": "SPA", "protocol": "OPENID_CONNECT", "type": "SINGLE_PAGE_APP",
                "grantTypes": ["IMPLICIT"], "responseTypes": ["TOKEN", "ID_TOKEN"],
                "redirectUris": ["https://spa.example.com/"], "tokenEndpointAuthMethod": "NONE",
            }),
            worker("Worker"),
        ];
        let mut ids = Vec::new();
        for body in bodies {
            let r = create(&t, &env, body.clone()).await;
            let id = r.id();
            let self_href = format!("http://lanyard.test/v1/environments/{env}/applications/{id}");
            assert_eq!(r.headers["location"], self_href.as_str());
            assert_eq!(r.body["_links"]["self"]["href"], self_href.as_str());
            assert_eq!(
                r.body["_links"]["environment"]["href"],
                format!("http://lanyard.test/v1/environments/{env}").as_str()
            );
            assert_eq!(r.body["environment"]["id"], env.as_str());
            assert_eq!(r.body["type"], body["type"]);
            assert_eq!(r.body["protocol"], "OPENID_CONNECT");
            assert_eq!(r.body["name"], body["name"]);
            assert_eq!(
                r.body["clientId"],
                id.as_str(),
                "the OAuth client_id is the application id"
            );
            assert_eq!(r.body["refreshTokenDuration"], 2592000);
            assert_eq!(r.body["parRequirement"], "OPTIONAL");
            assert_eq!(r.body["parTimeout"], 60);
            assert_eq!(r.body["deviceTimeout"], 600);
            assert_eq!(r.body["devicePollingInterval"], 5);
            assert_eq!(
                r.body["additionalRefreshTokenReplayProtectionEnabled"],
                true
            );
            assert!(r.body["createdAt"].is_string() && r.body["updatedAt"].is_string());
            assert!(
                r.body.get("clientSecret").is_none() && r.body.get("secret").is_none(),
                "secrets are never rendered: {}",
                r.text
            );
            assert!(
                r.body.get("assignActorRoles").is_none(),
                "assignActorRoles is write-only"
            );
            let expected_pkce = body
                .get("pkceEnforcement")
                .cloned()
                .unwrap_or(json!("OPTIONAL"));
            assert_eq!(r.body["pkceEnforcement"], expected_pkce);
            if body["type"] == "WORKER" {
                assert_eq!(r.body["enabled"], true);
                assert_eq!(
                    r.body["grantTypes"],
                    json!(["CLIENT_CREDENTIALS"]),
                    "workers default to client_credentials"
                );
            } else {
                assert_eq!(r.body["enabled"], false, "enabled defaults to false");
                assert_eq!(r.body["grantTypes"], body["grantTypes"]);
                assert_eq!(r.body["responseTypes"], body["responseTypes"]);
            }
            // Read returns the same document.
            let g = t.get(&local(&r.body["_links"]["self"]["href"])).await;
            assert_eq!(g.status, StatusCode::OK, "{}", g.text);
            assert_eq!(g.body, r.body);
            ids.push(id);
        }
        let list = t.get(&path(&env, "/applications")).await;
        assert_eq!(list.status, StatusCode::OK);
        assert_eq!(list.body["count"], 4);
        assert_eq!(list.body["size"], 4);
        assert_eq!(
            list.body["_links"]["self"]["href"],
            format!("http://lanyard.test/v1/environments/{env}/applications").as_str()
        );
        let listed: HashSet<&str> = list.body["_embedded"]["applications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, ids.iter().map(String::as_str).collect());
        // Every OIDC application gets the core `sub` mapping.
        let maps = t
            .get(&path(&env, &format!("/applications/{}/attributes", ids[0])))
            .await;
        assert_eq!(maps.body["count"], 1, "{}", maps.text);
        assert_eq!(maps.body["_embedded"]["attributes"][0]["name"], "sub");
        assert_eq!(
            maps.body["_embedded"]["attributes"][0]["mappingType"],
            "CORE"
        );
        // Unknown ids are 404.
        let missing = t
            .get(&path(
                &env,
                &format!("/applications/{}", uuid::Uuid::new_v4()),
            ))
            .await;
        assert_error(&missing, StatusCode::NOT_FOUND, "NOT_FOUND", None);
        // An application is only visible in its own environment.
        let elsewhere = t
            .get(&path(&t.admin_env, &format!("/applications/{}", ids[0])))
            .await;
        assert_error(&elsewhere, StatusCode::NOT_FOUND, "NOT_FOUND", None);
    }
}

#[tokio::test]
async fn saml_applications() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let r = create(&t, &env, saml_app("SP", "urn:sp:one")).await;
        assert_eq!(r.body["protocol"], "SAML");
        assert_eq!(r.body["assertionSigned"], true);
        assert_eq!(r.body["responseSigned"], false);
        assert_eq!(r.body["enabled"], false);
        assert_eq!(r.body["acsUrls"], json!(["https://sp.example.com/acs"]));
        assert!(
            r.body.get("clientId").is_none(),
            "SAML applications have no OAuth client: {}",
            r.text
        );
        let maps = t
            .get(&path(&env, &format!("/applications/{}/attributes", r.id())))
            .await;
        assert_eq!(
            maps.body["_embedded"]["attributes"][0]["name"],
            "saml_subject"
        );
        assert_eq!(
            maps.body["_embedded"]["attributes"][0]["mappingType"],
            "CORE"
        );
        // SAML applications have no client secret.
        let s = t
            .get(&path(&env, &format!("/applications/{}/secret", r.id())))
            .await;
        assert_error(&s, StatusCode::BAD_REQUEST, "REQUEST_FAILED", None);

        // spEntityId is unique in the environment (case-insensitively).
        let dup = t
            .post(&path(&env, "/applications"), saml_app("SP2", "URN:SP:ONE"))
            .await;
        invalid(&dup, "UNIQUENESS_VIOLATION", "spEntityId");
        // ... but not across environments.
        create(&t, &t.new_env().await, saml_app("SP", "urn:sp:one")).await;

        let mut no_acs = saml_app("SP3", "urn:sp:three");
        no_acs.as_object_mut().unwrap().remove("acsUrls");
        invalid(
            &t.post(&path(&env, "/applications"), no_acs).await,
            "REQUIRED_VALUE",
            "acsUrls",
        );
        let mut bad_acs = saml_app("SP3", "urn:sp:three");
        bad_acs["acsUrls"] = json!(["not a url"]);
        invalid(
            &t.post(&path(&env, "/applications"), bad_acs).await,
            "INVALID_VALUE",
            "acsUrls[0]",
        );
        let mut no_duration = saml_app("SP3", "urn:sp:three");
        no_duration
            .as_object_mut()
            .unwrap()
            .remove("assertionDuration");
        invalid(
            &t.post(&path(&env, "/applications"), no_duration).await,
            "REQUIRED_VALUE",
            "assertionDuration",
        );
        let mut bad_type = saml_app("SP3", "urn:sp:three");
        bad_type["type"] = json!("WORKER");
        let d = invalid(
            &t.post(&path(&env, "/applications"), bad_type).await,
            "INVALID_VALUE",
            "type",
        );
        assert!(
            d["innerError"]["allowedValues"]
                .as_array()
                .unwrap()
                .contains(&json!("WEB_APP"))
        );

        // The IdP signing key must be one of the environment's keys.
        let mut signed = saml_app("SP4", "urn:sp:four");
        signed["idpSigning"] =
            json!({ "key": { "id": uuid::Uuid::new_v4() }, "algorithm": "SHA256withRSA" });
        invalid(
            &t.post(&path(&env, "/applications"), signed.clone()).await,
            "INVALID_VALUE",
            "idpSigning.key.id",
        );
        let jwks = t
            .send(
                axum::http::Method::GET,
                &format!("/{env}/as/jwks"),
                None,
                None,
                None,
            )
            .await;
        let kid = jwks.body["keys"][0]["kid"].as_str().unwrap().to_string();
        signed["idpSigning"]["key"]["id"] = json!(kid);
        let ok = create(&t, &env, signed).await;
        assert_eq!(ok.body["idpSigning"]["key"]["id"], kid.as_str());
        assert_eq!(
            count(&t, &path(&env, "/applications")).await,
            2,
            "failed creates wrote nothing"
        );

        // PUT keeps the protocol and type.
        let mut put = saml_app("SP renamed", "urn:sp:one");
        put["protocol"] = json!("OPENID_CONNECT");
        put["responseSigned"] = json!(true);
        let p = t
            .put(&path(&env, &format!("/applications/{}", r.id())), put)
            .await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.text);
        assert_eq!(p.body["protocol"], "SAML");
        assert_eq!(p.body["name"], "SP renamed");
        assert_eq!(p.body["responseSigned"], true);
    }
}

#[tokio::test]
async fn applications_filter_and_page() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let mut enabled_web = web_app("Alpha web");
        enabled_web["enabled"] = json!(true);
        let mut all =
            vec![
            create(&t, &env, enabled_web).await.id(),
            create(&t, &env, web_app("Beta web")).await.id(),
            create(&t, &env, worker("Gamma worker")).await.id(),
            create(&t, &env, saml_app("Delta saml", "urn:delta")).await.id(),
            create(&t, &env, json!({
                "name": "Epsilon spa", "protocol": "OPENID_CONNECT", "type": "SINGLE_PAGE_APP",
                "redirectUris": ["https://spa.example.com/"], "tokenEndpointAuthMethod": "NONE",
            })).await.id(),
        ];
        let base = path(&env, "/applications");
        let names = |r: &Resp| -> Vec<String> {
            let mut v: Vec<String> = r.body["_embedded"]["applications"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["name"].as_str().unwrap().to_string())
                .collect();
            v.sort();
            v
        };
        for (filter, expected) in [
            (r#"name eq "beta web""#, vec!["Beta web"]),
            (r#"name sw "Gamma""#, vec!["Gamma worker"]),
            // SAML applications are WEB_APPs too.
            (
                r#"type eq "WEB_APP""#,
                vec!["Alpha web", "Beta web", "Delta saml"],
            ),
            (r#"type eq "SINGLE_PAGE_APP""#, vec!["Epsilon spa"]),
            (r#"protocol eq "SAML""#, vec!["Delta saml"]),
            (r#"enabled eq true"#, vec!["Alpha web", "Gamma worker"]),
            (
                r#"type eq "WEB_APP" and enabled eq false"#,
                vec!["Beta web", "Delta saml"],
            ),
            (
                r#"type eq "WEB_APP" and protocol eq "OPENID_CONNECT" and enabled eq false"#,
                vec!["Beta web"],
            ),
            (
                r#"protocol eq "SAML" or type eq "WORKER""#,
                vec!["Delta saml", "Gamma worker"],
            ),
            (r#"name eq "nobody""#, vec![]),
        ] {
            let r = t.get(&format!("{base}?filter={}", urlencode(filter))).await;
            assert_eq!(r.status, StatusCode::OK, "{filter}: {}", r.text);
            assert_eq!(names(&r), expected, "{filter}");
            assert_eq!(r.body["count"], expected.len(), "{filter}");
            assert_eq!(r.body["size"], expected.len(), "{filter}");
        }

        // limit=1, then follow _links.next until it is gone.
        let mut seen = Vec::new();
        let mut next = Some(format!("{base}?limit=1"));
        while let Some(p) = next {
            let r = t.get(&p).await;
            assert_eq!(r.status, StatusCode::OK, "{p}: {}", r.text);
            assert_eq!(r.body["count"], 5, "count is the total on every page");
            assert_eq!(r.body["size"], 1, "size is the page's size");
            seen.push(
                r.body["_embedded"]["applications"][0]["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
            next = r.body["_links"].get("next").map(|n| local(&n["href"]));
            assert!(seen.len() <= 5, "paging does not end");
        }
        assert_eq!(seen.len(), 5);
        let mut sorted_seen = seen.clone();
        sorted_seen.sort();
        all.sort();
        assert_eq!(sorted_seen, all, "every application exactly once");

        // Paging keeps the filter.
        let mut seen_web = 0;
        let mut next = Some(format!(
            "{base}?limit=2&filter={}",
            urlencode(r#"protocol eq "OPENID_CONNECT""#)
        ));
        let mut pages = 0;
        while let Some(p) = next {
            let r = t.get(&p).await;
            assert_eq!(r.body["count"], 4, "{}", r.text);
            for a in r.body["_embedded"]["applications"].as_array().unwrap() {
                assert_eq!(a["protocol"], "OPENID_CONNECT");
                seen_web += 1;
            }
            pages += 1;
            next = r.body["_links"].get("next").map(|n| local(&n["href"]));
        }
        assert_eq!((seen_web, pages), (4, 2));
        // A page that holds everything has no next link.
        let whole = t.get(&format!("{base}?limit=5")).await;
        assert!(whole.body["_links"].get("next").is_none(), "{}", whole.text);
    }
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_string()
}

#[tokio::test]
async fn put_replaces_an_application() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let mut body = web_app("Web");
        body["description"] = json!("first");
        body["pkceEnforcement"] = json!("REQUIRED");
        let r = create(&t, &env, body).await;
        let p = path(&env, &format!("/applications/{}", r.id()));

        let mut put = web_app("Web renamed");
        put["enabled"] = json!(true);
        put["type"] = json!("WORKER");
        put["clientId"] = json!("another-client-id");
        put["refreshTokenDuration"] = json!(3600);
        let u = t.put(&p, put).await;
        assert_eq!(u.status, StatusCode::OK, "{}", u.text);
        assert_eq!(u.body["name"], "Web renamed");
        assert_eq!(u.body["enabled"], true);
        assert_eq!(u.body["type"], "WEB_APP", "type is fixed at creation");
        assert_eq!(
            u.body["clientId"],
            r.id().as_str(),
            "clientId is fixed at creation"
        );
        assert_eq!(u.body["refreshTokenDuration"], 3600);
        assert!(
            u.body.get("description").is_none(),
            "PUT replaces: omitted fields are removed: {}",
            u.text
        );
        assert_eq!(
            u.body["pkceEnforcement"], "OPTIONAL",
            "omitted fields fall back to their defaults"
        );
        assert_eq!(u.body["createdAt"], r.body["createdAt"]);
        assert_eq!(t.get(&p).await.body, u.body);
        // The secret survives a PUT.
        let before = secret_of(&t, &env, &r.id()).await;
        let again = t.put(&p, web_app("Web renamed")).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(secret_of(&t, &env, &r.id()).await, before);

        // An invalid PUT changes nothing.
        let mut bad = web_app("Web renamed");
        bad["responseTypes"] = json!([]);
        invalid(&t.put(&p, bad).await, "INVALID_VALUE", "responseTypes");
        assert_eq!(t.get(&p).await.body["name"], "Web renamed");
        let missing = t
            .put(
                &path(&env, &format!("/applications/{}", uuid::Uuid::new_v4())),
                web_app("x"),
            )
            .await;
        assert_error(&missing, StatusCode::NOT_FOUND, "NOT_FOUND", None);

        // Switching a public client to a confidential one gives it a secret.
        let spa = create(
            &t,
            &env,
            json!({
                "name": "Public", "protocol": "OPENID_CONNECT", "type": "NATIVE_APP",
                "redirectUris": ["com.example.app://cb"], "tokenEndpointAuthMethod": "NONE",
            }),
        )
        .await;
        let sp = path(&env, &format!("/applications/{}/secret", spa.id()));
        assert_error(
            &t.get(&sp).await,
            StatusCode::BAD_REQUEST,
            "REQUEST_FAILED",
            None,
        );
        let conf = t.put(&path(&env, &format!("/applications/{}", spa.id())), json!({
            "name": "Public", "protocol": "OPENID_CONNECT", "type": "NATIVE_APP",
            "redirectUris": ["com.example.app://cb"], "tokenEndpointAuthMethod": "CLIENT_SECRET_POST",
        })).await;
        assert_eq!(conf.status, StatusCode::OK, "{}", conf.text);
        assert!(
            t.get(&sp).await.body["secret"]
                .as_str()
                .is_some_and(|s| s.len() >= 32)
        );
    }
}

#[tokio::test]
async fn application_validation_errors_name_their_targets() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let apps = path(&env, "/applications");
        let with = |base: Value, changes: Value| {
            let mut b = base;
            for (k, v) in changes.as_object().unwrap() {
                if v.is_null() {
                    b.as_object_mut().unwrap().remove(k);
                } else {
                    b[k] = v.clone();
                }
            }
            b
        };
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                with(web_app("a"), json!({ "tokenEndpointAuthMethod": null })),
                "REQUIRED_VALUE",
                "tokenEndpointAuthMethod",
            ),
            (
                with(web_app("a"), json!({ "protocol": null })),
                "REQUIRED_VALUE",
                "protocol",
            ),
            (
                with(web_app("a"), json!({ "name": null })),
                "REQUIRED_VALUE",
                "name",
            ),
            (
                with(web_app("a"), json!({ "name": "" })),
                "EMPTY_VALUE",
                "name",
            ),
            (
                with(web_app("a"), json!({ "name": "n".repeat(257) })),
                "SIZE_LIMIT_EXCEEDED",
                "name",
            ),
            (
                with(web_app("a"), json!({ "type": "MOBILE_APP" })),
                "INVALID_VALUE",
                "type",
            ),
            (
                with(web_app("a"), json!({ "protocol": "OAUTH" })),
                "INVALID_VALUE",
                "protocol",
            ),
            (
                with(web_app("a"), json!({ "tokenEndpointAuthMethod": "SECRET" })),
                "INVALID_VALUE",
                "tokenEndpointAuthMethod",
            ),
            (
                with(
                    web_app("a"),
                    json!({ "grantTypes": ["AUTHORIZATION_CODE", "PASSWORD"] }),
                ),
                "INVALID_VALUE",
                "grantTypes[1]",
            ),
            (
                with(web_app("a"), json!({ "pkceEnforcement": "ALWAYS" })),
                "INVALID_VALUE",
                "pkceEnforcement",
            ),
            (
                with(web_app("a"), json!({ "enabled": "yes" })),
                "INVALID_VALUE",
                "enabled",
            ),
            (
                with(web_app("a"), json!({ "refreshTokenDuration": 10 })),
                "OUT_OF_RANGE",
                "refreshTokenDuration",
            ),
            (
                with(web_app("a"), json!({ "parTimeout": 601 })),
                "OUT_OF_RANGE",
                "parTimeout",
            ),
            (
                with(web_app("a"), json!({ "devicePathId": "has spaces" })),
                "INVALID_VALUE",
                "devicePathId",
            ),
            // AUTHORIZATION_CODE without the CODE response type.
            (
                with(web_app("a"), json!({ "responseTypes": [] })),
                "INVALID_VALUE",
                "responseTypes",
            ),
            (
                with(web_app("a"), json!({ "responseTypes": ["TOKEN"] })),
                "INVALID_VALUE",
                "responseTypes",
            ),
            // A single-page app is a public client.
            (
                json!({ "name": "spa", "protocol": "OPENID_CONNECT", "type": "SINGLE_PAGE_APP", "redirectUris": ["https://spa.example.com/"], "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC" }),
                "INVALID_VALUE",
                "tokenEndpointAuthMethod",
            ),
            // client_credentials needs client authentication.
            (
                with(worker("w"), json!({ "tokenEndpointAuthMethod": "NONE" })),
                "INVALID_VALUE",
                "tokenEndpointAuthMethod",
            ),
            (
                with(
                    web_app("a"),
                    json!({ "grantTypes": ["REFRESH_TOKEN"], "responseTypes": [] }),
                ),
                "INVALID_VALUE",
                "grantTypes",
            ),
            (
                with(
                    web_app("a"),
                    json!({ "redirectUris": ["https://*.example.com/cb"] }),
                ),
                "INVALID_VALUE",
                "redirectUris[0]",
            ),
            // Script schemes, however spelled, never become a redirect target.
            (
                with(
                    web_app("a"),
                    json!({ "redirectUris": ["javascript://app.example.com/%0aalert(document.domain)"] }),
                ),
                "INVALID_VALUE",
                "redirectUris[0]",
            ),
            (
                with(
                    web_app("a"),
                    json!({ "redirectUris": ["https://ok.example.com/cb", "DATA://text/html,<script>alert(1)</script>"] }),
                ),
                "INVALID_VALUE",
                "redirectUris[1]",
            ),
            (
                with(
                    web_app("a"),
                    json!({ "postLogoutRedirectUris": ["%76bscript://x.example.com/"] }),
                ),
                "INVALID_VALUE",
                "postLogoutRedirectUris[0]",
            ),
            // A wildcard stands only for leftmost host labels.
            (
                with(
                    web_app("a"),
                    json!({ "redirectUris": ["https://app.example.com/*"], "allowWildcardInRedirectUris": true }),
                ),
                "INVALID_VALUE",
                "redirectUris[0]",
            ),
            (
                with(
                    web_app("a"),
                    json!({ "redirectUris": ["https://*.com/cb"], "allowWildcardInRedirectUris": true }),
                ),
                "INVALID_VALUE",
                "redirectUris[0]",
            ),
            (
                with(
                    web_app("a"),
                    json!({ "redirectUris": ["https://ok.example.com/cb", "/relative"] }),
                ),
                "INVALID_VALUE",
                "redirectUris[1]",
            ),
            (
                with(
                    web_app("a"),
                    json!({ "redirectUris": ["https://app.example.com/cb#frag"] }),
                ),
                "INVALID_VALUE",
                "redirectUris[0]",
            ),
            (
                with(web_app("a"), json!({ "redirectUris": null })),
                "REQUIRED_VALUE",
                "redirectUris",
            ),
            (
                with(
                    web_app("a"),
                    json!({ "postLogoutRedirectUris": ["https://*.example.com/"], "allowWildcardInRedirectUris": true }),
                ),
                "INVALID_VALUE",
                "postLogoutRedirectUris[0]",
            ),
            (
                with(
                    web_app("a"),
                    json!({ "requireSignedRequestObject": true, "supportUnsignedRequestObject": true }),
                ),
                "INVALID_VALUE",
                "supportUnsignedRequestObject",
            ),
            (
                with(
                    web_app("a"),
                    json!({ "tokenEndpointAuthMethod": "PRIVATE_KEY_JWT" }),
                ),
                "REQUIRED_VALUE",
                "jwks",
            ),
            (
                with(
                    web_app("a"),
                    json!({ "tokenEndpointAuthMethod": "PRIVATE_KEY_JWT", "jwks": "not json" }),
                ),
                "INVALID_VALUE",
                "jwks",
            ),
            (
                with(
                    web_app("a"),
                    json!({ "corsSettings": { "behavior": "ALLOW_ALL" } }),
                ),
                "INVALID_VALUE",
                "corsSettings.behavior",
            ),
            (
                with(web_app("a"), json!({ "icon": { "href": "nope" } })),
                "INVALID_VALUE",
                "icon.href",
            ),
            (
                with(
                    web_app("a"),
                    json!({ "accessControl": { "group": { "type": "ANY_GROUP" } } }),
                ),
                "REQUIRED_VALUE",
                "accessControl.group.groups",
            ),
            (
                with(saml_app("s", "urn:s"), json!({ "acsUrls": null })),
                "REQUIRED_VALUE",
                "acsUrls",
            ),
            (
                with(saml_app("s", "urn:s"), json!({ "spEntityId": null })),
                "REQUIRED_VALUE",
                "spEntityId",
            ),
        ];
        for (body, code, target) in cases {
            let r = t.post(&apps, body.clone()).await;
            let d = invalid(&r, code, target);
            // Unknown enum values list what is allowed.
            let enum_value = [
                "type",
                "protocol",
                "tokenEndpointAuthMethod",
                "pkceEnforcement",
                "grantTypes[1]",
                "corsSettings.behavior",
            ]
            .contains(&target)
                && !(target == "tokenEndpointAuthMethod"
                    && body["tokenEndpointAuthMethod"] != "SECRET");
            if code == "INVALID_VALUE" && enum_value {
                assert!(
                    d["innerError"]["allowedValues"].is_array(),
                    "allowedValues for {target}: {}",
                    r.text
                );
            }
        }
        let d = invalid(
            &t.post(&apps, with(web_app("a"), json!({ "type": "MOBILE_APP" })))
                .await,
            "INVALID_VALUE",
            "type",
        );
        let allowed: Vec<&str> = d["innerError"]["allowedValues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for ty in [
            "WEB_APP",
            "NATIVE_APP",
            "SINGLE_PAGE_APP",
            "WORKER",
            "SERVICE",
        ] {
            assert!(allowed.contains(&ty), "{ty} in {allowed:?}");
        }
        let d = invalid(
            &t.post(
                &apps,
                with(web_app("a"), json!({ "refreshTokenDuration": 10 })),
            )
            .await,
            "OUT_OF_RANGE",
            "refreshTokenDuration",
        );
        assert_eq!(d["innerError"]["rangeMinimumValue"], 60);
        assert_eq!(count(&t, &apps).await, 0, "no failed create wrote anything");

        // Wildcards are accepted once allowed; several errors are reported together.
        let wild = t.post(&apps, with(web_app("w"), json!({ "redirectUris": ["https://*.example.com/cb"], "allowWildcardInRedirectUris": true }))).await;
        assert_eq!(wild.status, StatusCode::CREATED, "{}", wild.text);
        let many = t
            .post(
                &apps,
                with(web_app("m"), json!({ "type": "X", "enabled": 1 })),
            )
            .await;
        invalid(&many, "INVALID_VALUE", "type");
        invalid(&many, "INVALID_VALUE", "enabled");
        assert_eq!(count(&t, &apps).await, 1);
    }
}

#[tokio::test]
async fn client_secret_read_rotate_and_previous() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let app = create(&t, &env, worker("Rotating")).await.id();
        let sp = path(&env, &format!("/applications/{app}/secret"));
        let s = t.get(&sp).await;
        assert_eq!(s.status, StatusCode::OK, "{}", s.text);
        assert_eq!(s.body["application"]["id"], app.as_str());
        assert_eq!(s.body["environment"]["id"], env.as_str());
        assert!(s.body.get("previous").is_none());
        let first = s.body["secret"].as_str().unwrap().to_string();
        assert!(first.len() >= 32, "secret {first}");
        assert_eq!(token_status(&t, &env, &app, &first).await, StatusCode::OK);
        assert_eq!(
            token_status(&t, &env, &app, "wrong").await,
            StatusCode::UNAUTHORIZED
        );

        // Rotate without keeping the previous secret: the old one stops working at once.
        let r = t
            .send(axum::http::Method::POST, &sp, Some(&t.token), None, None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let second = r.body["secret"].as_str().unwrap().to_string();
        assert_ne!(second, first);
        assert!(r.body.get("previous").is_none(), "{}", r.text);
        assert_eq!(secret_of(&t, &env, &app).await, second);
        assert_eq!(
            token_status(&t, &env, &app, &first).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(token_status(&t, &env, &app, &second).await, StatusCode::OK);

        // Rotate keeping the previous secret for an hour: both work.
        let until = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        let until_s = lanyard::clock::format(until);
        let r = t
            .post(&sp, json!({ "previous": { "expiresAt": until_s } }))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let third = r.body["secret"].as_str().unwrap().to_string();
        assert_ne!(third, second);
        assert_eq!(r.body["previous"]["secret"], second.as_str());
        assert_eq!(r.body["previous"]["expiresAt"], until_s.as_str());
        let g = t.get(&sp).await;
        assert_eq!(g.body["secret"], third.as_str());
        assert_eq!(g.body["previous"]["secret"], second.as_str());
        assert_eq!(token_status(&t, &env, &app, &second).await, StatusCode::OK);
        assert_eq!(token_status(&t, &env, &app, &third).await, StatusCode::OK);

        // Dropping the previous secret ends it.
        let d = t.delete(&sp).await;
        assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.text);
        assert!(d.text.is_empty());
        assert!(t.get(&sp).await.body.get("previous").is_none());
        assert_eq!(
            token_status(&t, &env, &app, &second).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(token_status(&t, &env, &app, &third).await, StatusCode::OK);

        // The previous secret stops working when it expires.
        {
            let mut tx = t.app.store.begin().await.unwrap();
            let mut doc = tx.get("application", &env, &app).await.unwrap().unwrap();
            let past = lanyard::clock::format(
                time::OffsetDateTime::now_utc() - time::Duration::seconds(5),
            );
            doc.secrets = Some(t.app.master.encrypt_json(
                &json!({ "secret": third, "previous": { "secret": second, "expiresAt": past } }),
            ));
            tx.update_data(&mut doc).await.unwrap();
            tx.commit().await.unwrap();
        }
        assert_eq!(
            token_status(&t, &env, &app, &second).await,
            StatusCode::UNAUTHORIZED,
            "an expired previous secret is refused"
        );
        assert_eq!(token_status(&t, &env, &app, &third).await, StatusCode::OK);

        // previous.expiresAt must be a date 1 minute to 30 days ahead; nothing changes otherwise.
        for bad in [
            json!({ "previous": { "expiresAt": lanyard::clock::format(time::OffsetDateTime::now_utc() - time::Duration::hours(1)) } }),
            json!({ "previous": { "expiresAt": lanyard::clock::format(time::OffsetDateTime::now_utc() + time::Duration::days(31)) } }),
        ] {
            let r = t.post(&sp, bad).await;
            invalid(&r, "OUT_OF_RANGE", "previous.expiresAt");
        }
        invalid(
            &t.post(&sp, json!({ "previous": { "expiresAt": "tomorrow" } }))
                .await,
            "INVALID_VALUE",
            "previous.expiresAt",
        );
        assert_error(
            &t.send(
                axum::http::Method::POST,
                &sp,
                Some(&t.token),
                Some("application/json"),
                Some(b"{oops".to_vec()),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            None,
        );
        assert_eq!(
            secret_of(&t, &env, &app).await,
            third,
            "failed rotations change nothing"
        );

        // An imported client_id is matched exactly, not case-insensitively.
        let mut imported = worker("Imported");
        imported["clientId"] = json!("Imported-Client-01");
        let imp = create(&t, &env, imported).await;
        assert_eq!(imp.body["clientId"], "Imported-Client-01");
        let isecret = secret_of(&t, &env, &imp.id()).await;
        assert_eq!(
            token_status(&t, &env, "Imported-Client-01", &isecret).await,
            StatusCode::OK
        );
        assert_eq!(
            token_status(&t, &env, "imported-client-01", &isecret).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            token_status(&t, &env, &imp.id(), &isecret).await,
            StatusCode::UNAUTHORIZED,
            "with an imported client_id the id is not a client_id"
        );
        invalid(
            &t.post(&path(&env, "/applications"), {
                let mut w = worker("Dup");
                w["clientId"] = json!("IMPORTED-client-01");
                w
            })
            .await,
            "UNIQUENESS_VIOLATION",
            "clientId",
        );

        // Public clients have no secret to read, rotate or drop.
        let public = create(
            &t,
            &env,
            json!({
                "name": "Public", "protocol": "OPENID_CONNECT", "type": "SINGLE_PAGE_APP",
                "redirectUris": ["https://spa.example.com/"], "tokenEndpointAuthMethod": "NONE",
            }),
        )
        .await
        .id();
        let pp = path(&env, &format!("/applications/{public}/secret"));
        assert_error(
            &t.get(&pp).await,
            StatusCode::BAD_REQUEST,
            "REQUEST_FAILED",
            None,
        );
        assert_error(
            &t.send(axum::http::Method::POST, &pp, Some(&t.token), None, None)
                .await,
            StatusCode::BAD_REQUEST,
            "REQUEST_FAILED",
            None,
        );
        assert_error(
            &t.delete(&pp).await,
            StatusCode::BAD_REQUEST,
            "REQUEST_FAILED",
            None,
        );
        assert_error(
            &t.get(&pp).await,
            StatusCode::BAD_REQUEST,
            "REQUEST_FAILED",
            None,
        );
        // Unknown applications are 404.
        let none = path(
            &env,
            &format!("/applications/{}/secret", uuid::Uuid::new_v4()),
        );
        assert_error(
            &t.get(&none).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
        assert_error(
            &t.delete(&none).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
        assert_error(
            &t.send(axum::http::Method::PUT, &sp, Some(&t.token), None, None)
                .await,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            None,
        );
    }
}

#[tokio::test]
async fn a_new_worker_with_environment_admin_manages_its_environment() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let w = create(&t, &env, worker("Env worker")).await.id();
        let secret = secret_of(&t, &env, &w).await;
        // Without roles the token is valid but grants nothing.
        let bare = t.client_token(&env, &w, &secret).await;
        let apps = path(&env, "/applications");
        let r = t
            .send(axum::http::Method::GET, &apps, Some(&bare), None, None)
            .await;
        assert_error(
            &r,
            StatusCode::FORBIDDEN,
            "ACCESS_FAILED",
            Some("INSUFFICIENT_PERMISSIONS"),
        );
        assert_eq!(
            count(
                &t,
                &path(&env, &format!("/applications/{w}/roleAssignments"))
            )
            .await,
            0,
            "assignActorRoles=false: no inherited roles"
        );

        let ra = t
            .post(
                &path(&env, &format!("/applications/{w}/roleAssignments")),
                json!({
                    "role": { "id": lanyard::engine::authz::ENVIRONMENT_ADMIN },
                    "scope": { "type": "ENVIRONMENT", "id": env },
                }),
            )
            .await;
        assert_eq!(ra.status, StatusCode::CREATED, "{}", ra.text);
        assert_eq!(ra.body["readOnly"], false);
        assert_eq!(ra.body["application"]["id"], w.as_str());

        let tok = t.client_token(&env, &w, &secret).await;
        let r = t
            .send(axum::http::Method::GET, &apps, Some(&tok), None, None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["count"], 1);
        let body = json!({ "name": "Made by the worker" })
            .to_string()
            .into_bytes();
        let r = t
            .send(
                axum::http::Method::POST,
                &path(&env, "/populations"),
                Some(&tok),
                Some("application/json"),
                Some(body),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let other = t
            .send(
                axum::http::Method::GET,
                &path(&t.admin_env, "/applications"),
                Some(&tok),
                None,
                None,
            )
            .await;
        assert_error(&other, StatusCode::FORBIDDEN, "ACCESS_FAILED", None);

        // Disabling the worker stops its tokens and its token requests.
        let mut off = worker("Env worker");
        off["enabled"] = json!(false);
        assert_eq!(
            t.put(&path(&env, &format!("/applications/{w}")), off)
                .await
                .status,
            StatusCode::OK
        );
        let r = t
            .send(axum::http::Method::GET, &apps, Some(&tok), None, None)
            .await;
        assert_error(
            &r,
            StatusCode::UNAUTHORIZED,
            "ACCESS_FAILED",
            Some("INVALID_TOKEN"),
        );
        let r = t
            .form(
                &format!("/{env}/as/token"),
                Some((&w, &secret)),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert_eq!(r.body["error"], "unauthorized_client");
    }
}

#[tokio::test]
async fn a_worker_created_through_the_api_inherits_the_creators_roles() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let mut body = worker("Inheriting");
        body.as_object_mut().unwrap().remove("assignActorRoles");
        let w = create(&t, &env, body).await.id();
        let ras = t
            .get(&path(&env, &format!("/applications/{w}/roleAssignments")))
            .await;
        assert_eq!(
            ras.body["count"], 3,
            "the admin worker's three organization roles: {}",
            ras.text
        );
        for ra in ras.body["_embedded"]["roleAssignments"].as_array().unwrap() {
            assert_eq!(ra["scope"]["type"], "ORGANIZATION");
            assert_eq!(ra["readOnly"], false);
        }
        let tok = t
            .client_token(&env, &w, &secret_of(&t, &env, &w).await)
            .await;
        let r = t
            .send(
                axum::http::Method::GET,
                &path(&t.admin_env, "/applications"),
                Some(&tok),
                None,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        // Only client_credentials workers inherit.
        let web = create(&t, &env, web_app("Web")).await.id();
        assert_eq!(
            count(
                &t,
                &path(&env, &format!("/applications/{web}/roleAssignments"))
            )
            .await,
            0
        );
        let mut interactive = web_app("Interactive worker");
        interactive["type"] = json!("WORKER");
        interactive["grantTypes"] = json!(["AUTHORIZATION_CODE"]);
        let iw = create(&t, &env, interactive).await.id();
        assert_eq!(
            count(
                &t,
                &path(&env, &format!("/applications/{iw}/roleAssignments"))
            )
            .await,
            0
        );
    }
}

/// A custom resource with the given scope names; returns (resource id, scope ids).
async fn resource_with_scopes(
    t: &TestApp,
    env: &str,
    name: &str,
    scopes: &[&str],
) -> (String, Vec<String>) {
    let r = t
        .post(&path(env, "/resources"), json!({ "name": name }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let mut ids = Vec::new();
    for s in scopes {
        let sc = t
            .post(
                &path(env, &format!("/resources/{}/scopes", r.id())),
                json!({ "name": s }),
            )
            .await;
        assert_eq!(sc.status, StatusCode::CREATED, "{}", sc.text);
        ids.push(sc.id());
    }
    (r.id(), ids)
}

#[tokio::test]
async fn grants_reference_a_resource_and_its_scopes() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let (orders, os) =
            resource_with_scopes(&t, &env, "Orders", &["orders:read", "orders:write"]).await;
        let (billing, bs) = resource_with_scopes(&t, &env, "Billing", &["billing:read"]).await;
        let app = create(&t, &env, json!({
            "name": "Service", "protocol": "OPENID_CONNECT", "type": "SERVICE", "enabled": true,
            "grantTypes": ["CLIENT_CREDENTIALS"], "tokenEndpointAuthMethod": "CLIENT_SECRET_POST",
        })).await.id();
        let gp = path(&env, &format!("/applications/{app}/grants"));

        let g = t.post(&gp, json!({ "resource": { "id": orders }, "scopes": [ { "id": os[0] }, { "id": os[1] } ] })).await;
        assert_eq!(g.status, StatusCode::CREATED, "{}", g.text);
        assert_eq!(g.body["application"]["id"], app.as_str());
        assert_eq!(g.body["resource"]["id"], orders.as_str());
        assert_eq!(
            g.body["_links"]["application"]["href"],
            format!("http://lanyard.test/v1/environments/{env}/applications/{app}").as_str()
        );
        assert_eq!(
            g.headers["location"],
            format!(
                "http://lanyard.test/v1/environments/{env}/applications/{app}/grants/{}",
                g.id()
            )
            .as_str()
        );

        // The granted scopes are what client_credentials issues.
        let secret = secret_of(&t, &env, &app).await;
        let tok = t
            .form(
                &format!("/{env}/as/token"),
                None,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &app),
                    ("client_secret", &secret),
                ],
            )
            .await;
        assert_eq!(tok.status, StatusCode::OK, "{}", tok.text);
        let mut scopes: Vec<&str> = tok.body["scope"].as_str().unwrap().split(' ').collect();
        scopes.sort();
        assert_eq!(scopes, vec!["orders:read", "orders:write"]);

        // A scope of another resource.
        let r = t
            .post(
                &gp,
                json!({ "resource": { "id": billing }, "scopes": [ { "id": os[0] } ] }),
            )
            .await;
        let d = invalid(&r, "INVALID_VALUE", "scopes[0].id");
        assert_eq!(d["innerError"]["referencedValues"], json!([os[0]]));
        let r = t.post(&gp, json!({ "resource": { "id": billing }, "scopes": [ { "id": bs[0] }, { "id": os[1] } ] })).await;
        invalid(&r, "INVALID_VALUE", "scopes[1].id");
        // Unknown resource, unknown scope, no scopes, malformed ids.
        invalid(&t.post(&gp, json!({ "resource": { "id": uuid::Uuid::new_v4() }, "scopes": [ { "id": bs[0] } ] })).await, "INVALID_VALUE", "resource.id");
        invalid(&t.post(&gp, json!({ "resource": { "id": billing }, "scopes": [ { "id": uuid::Uuid::new_v4() } ] })).await, "INVALID_VALUE", "scopes[0].id");
        invalid(
            &t.post(&gp, json!({ "resource": { "id": billing }, "scopes": [] }))
                .await,
            "EMPTY_VALUE",
            "scopes",
        );
        invalid(
            &t.post(&gp, json!({ "resource": { "id": billing } })).await,
            "REQUIRED_VALUE",
            "scopes",
        );
        invalid(
            &t.post(
                &gp,
                json!({ "resource": { "id": "billing" }, "scopes": [ { "id": bs[0] } ] }),
            )
            .await,
            "INVALID_VALUE",
            "resource.id",
        );
        invalid(&t.post(&gp, json!({ "resource": { "id": billing }, "scopes": [ { "id": bs[0] }, { "id": bs[0] } ] })).await, "INVALID_VALUE", "scopes[1].id");
        // One grant per resource.
        let dup = t
            .post(
                &gp,
                json!({ "resource": { "id": orders }, "scopes": [ { "id": os[0] } ] }),
            )
            .await;
        let d = invalid(&dup, "UNIQUENESS_VIOLATION", "resource.id");
        assert_eq!(d["innerError"]["existingId"], g.id().as_str());
        assert_eq!(count(&t, &gp).await, 1, "failed grants wrote nothing");

        // Built-in resources can be granted too.
        let res = t
            .get(&format!(
                "{}?filter={}",
                path(&env, "/resources"),
                urlencode(r#"name eq "openid""#)
            ))
            .await;
        let openid = res.body["_embedded"]["resources"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let sc = t
            .get(&format!(
                "{}?filter={}",
                path(&env, &format!("/resources/{openid}/scopes")),
                urlencode(r#"name eq "profile""#)
            ))
            .await;
        let profile = sc.body["_embedded"]["scopes"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let og = t
            .post(
                &gp,
                json!({ "resource": { "id": openid }, "scopes": [ { "id": profile } ] }),
            )
            .await;
        assert_eq!(og.status, StatusCode::CREATED, "{}", og.text);

        // PUT replaces the scopes; it is validated the same way.
        let gi = format!("{gp}/{}", g.id());
        let u = t
            .put(
                &gi,
                json!({ "resource": { "id": orders }, "scopes": [ { "id": os[1] } ] }),
            )
            .await;
        assert_eq!(u.status, StatusCode::OK, "{}", u.text);
        assert_eq!(u.body["scopes"], json!([{ "id": os[1] }]));
        invalid(
            &t.put(
                &gi,
                json!({ "resource": { "id": orders }, "scopes": [ { "id": bs[0] } ] }),
            )
            .await,
            "INVALID_VALUE",
            "scopes[0].id",
        );
        // Filter by resource.
        let f = t
            .get(&format!(
                "{gp}?filter={}",
                urlencode(&format!(r#"resource.id eq "{orders}""#))
            ))
            .await;
        assert_eq!(f.body["count"], 1, "{}", f.text);
        // Delete.
        assert_eq!(t.delete(&gi).await.status, StatusCode::NO_CONTENT);
        assert_error(&t.get(&gi).await, StatusCode::NOT_FOUND, "NOT_FOUND", None);
        assert_eq!(count(&t, &gp).await, 1);
        // Grants of an unknown application are 404.
        let none = path(
            &env,
            &format!("/applications/{}/grants", uuid::Uuid::new_v4()),
        );
        assert_error(
            &t.get(&none).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
        assert_error(
            &t.post(
                &none,
                json!({ "resource": { "id": orders }, "scopes": [ { "id": os[0] } ] }),
            )
            .await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
    }
}

#[tokio::test]
async fn attribute_mappings() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let app = create(&t, &env, web_app("Web")).await.id();
        let mp = path(&env, &format!("/applications/{app}/attributes"));
        let list = t.get(&mp).await;
        assert_eq!(list.body["count"], 1);
        let sub = &list.body["_embedded"]["attributes"][0];
        assert_eq!(sub["name"], "sub");
        assert_eq!(sub["value"], "${user.id}");
        assert_eq!(sub["mappingType"], "CORE");
        assert_eq!(sub["required"], true);
        assert_eq!(sub["application"]["id"], app.as_str());
        let sub_id = sub["id"].as_str().unwrap().to_string();

        // The core mapping can be changed but not deleted or renamed.
        let d = t.delete(&format!("{mp}/{sub_id}")).await;
        assert_error(&d, StatusCode::BAD_REQUEST, "REQUEST_FAILED", None);
        assert_eq!(
            t.get(&format!("{mp}/{sub_id}")).await.status,
            StatusCode::OK
        );
        invalid(
            &t.put(
                &format!("{mp}/{sub_id}"),
                json!({ "name": "subject", "value": "${user.username}", "required": true }),
            )
            .await,
            "INVALID_VALUE",
            "name",
        );
        let u = t.put(&format!("{mp}/{sub_id}"), json!({ "name": "sub", "value": "${user.username}", "required": true, "mappingType": "CUSTOM" })).await;
        assert_eq!(u.status, StatusCode::OK, "{}", u.text);
        assert_eq!(u.body["value"], "${user.username}");
        assert_eq!(u.body["mappingType"], "CORE", "mappingType is read-only");

        // Custom mappings.
        let c = t
            .post(
                &mp,
                json!({ "name": "email", "value": "${user.email}", "mappingType": "CORE" }),
            )
            .await;
        assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
        assert_eq!(c.body["mappingType"], "CUSTOM");
        assert_eq!(c.body["idToken"], true);
        assert_eq!(c.body["userInfo"], true);
        assert_eq!(c.body["required"], false);
        let dup = t
            .post(&mp, json!({ "name": "EMAIL", "value": "${user.email}" }))
            .await;
        invalid(&dup, "UNIQUENESS_VIOLATION", "name");
        for reserved in ["sub", "aud", "nonce", "client_id", "exp"] {
            invalid(
                &t.post(&mp, json!({ "name": reserved, "value": "x" })).await,
                "INVALID_VALUE",
                "name",
            );
        }
        invalid(
            &t.post(&mp, json!({ "name": "nickname" })).await,
            "REQUIRED_VALUE",
            "value",
        );
        invalid(
            &t.post(&mp, json!({ "name": "nickname", "value": "${session.id}" }))
                .await,
            "INVALID_VALUE",
            "value",
        );
        invalid(
            &t.post(
                &mp,
                json!({ "name": "nickname", "value": "${user.nickname} and more" }),
            )
            .await,
            "INVALID_VALUE",
            "value",
        );
        invalid(
            &t.post(
                &mp,
                json!({ "name": "nickname", "value": "x", "oidcScopes": ["nope"] }),
            )
            .await,
            "INVALID_VALUE",
            "oidcScopes[0]",
        );
        assert_eq!(count(&t, &mp).await, 2, "refused mappings wrote nothing");
        let nested = t
            .post(
                &mp,
                json!({ "name": "given", "value": "${user.name.given}" }),
            )
            .await;
        assert_eq!(nested.status, StatusCode::CREATED, "{}", nested.text);
        let literal = t
            .post(&mp, json!({ "name": "tier", "value": "gold" }))
            .await;
        assert_eq!(literal.status, StatusCode::CREATED, "{}", literal.text);
        assert_eq!(
            t.delete(&format!("{mp}/{}", nested.id())).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            t.delete(&format!("{mp}/{}", literal.id())).await.status,
            StatusCode::NO_CONTENT
        );
        // A custom mapping cannot be renamed to a reserved name either.
        invalid(
            &t.put(
                &format!("{mp}/{}", c.id()),
                json!({ "name": "iss", "value": "x" }),
            )
            .await,
            "INVALID_VALUE",
            "name",
        );
        assert_eq!(
            t.delete(&format!("{mp}/{}", c.id())).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(count(&t, &mp).await, 1);

        // SAML applications reserve the subject.
        let saml = create(&t, &env, saml_app("SP", "urn:sp")).await.id();
        let sm = path(&env, &format!("/applications/{saml}/attributes"));
        let l = t.get(&sm).await;
        assert_eq!(l.body["_embedded"]["attributes"][0]["name"], "saml_subject");
        assert!(
            l.body["_embedded"]["attributes"][0]
                .get("idToken")
                .is_none(),
            "{}",
            l.text
        );
        invalid(
            &t.post(
                &sm,
                json!({ "name": "samlAssertion.subject", "value": "${user.email}" }),
            )
            .await,
            "INVALID_VALUE",
            "name",
        );
        let ok = t.post(&sm, json!({ "name": "email", "value": "${user.email}", "nameFormat": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic" })).await;
        assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
        assert!(
            ok.body.get("idToken").is_none(),
            "idToken is OIDC-only: {}",
            ok.text
        );
    }
}

async fn assignments(t: &TestApp, ap: &str) -> Vec<(String, i64)> {
    let r = t.get(ap).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut v: Vec<(String, i64)> = r.body["_embedded"]["signOnPolicyAssignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["signOnPolicy"]["id"].as_str().unwrap().to_string(),
                a["priority"].as_i64().unwrap(),
            )
        })
        .collect();
    v.sort_by_key(|(_, p)| *p);
    v
}

#[tokio::test]
async fn sign_on_policy_assignments_keep_dense_priorities() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let app = create(&t, &env, web_app("Web")).await.id();
        let ap = path(
            &env,
            &format!("/applications/{app}/signOnPolicyAssignments"),
        );
        let mut pols = Vec::new();
        for n in ["P1", "P2", "P3"] {
            let r = t
                .post(&path(&env, "/signOnPolicies"), json!({ "name": n }))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            pols.push(r.id());
        }
        let (p1, p2, p3) = (&pols[0], &pols[1], &pols[2]);

        invalid(
            &t.post(
                &ap,
                json!({ "signOnPolicy": { "id": uuid::Uuid::new_v4() }, "priority": 1 }),
            )
            .await,
            "INVALID_VALUE",
            "signOnPolicy.id",
        );
        invalid(
            &t.post(&ap, json!({ "signOnPolicy": { "id": p1 } })).await,
            "REQUIRED_VALUE",
            "priority",
        );
        invalid(
            &t.post(&ap, json!({ "signOnPolicy": { "id": p1 }, "priority": 0 }))
                .await,
            "OUT_OF_RANGE",
            "priority",
        );
        assert_eq!(count(&t, &ap).await, 0);

        let a1 = t
            .post(&ap, json!({ "signOnPolicy": { "id": p1 }, "priority": 1 }))
            .await;
        assert_eq!(a1.status, StatusCode::CREATED, "{}", a1.text);
        assert_eq!(a1.body["application"]["id"], app.as_str());
        // Inserting at 1 moves the others down.
        let a2 = t
            .post(&ap, json!({ "signOnPolicy": { "id": p2 }, "priority": 1 }))
            .await;
        assert_eq!(a2.body["priority"], 1);
        // A priority past the end lands at the end.
        let a3 = t
            .post(&ap, json!({ "signOnPolicy": { "id": p3 }, "priority": 10 }))
            .await;
        assert_eq!(a3.body["priority"], 3, "{}", a3.text);
        assert_eq!(
            assignments(&t, &ap).await,
            vec![(p2.clone(), 1), (p1.clone(), 2), (p3.clone(), 3)]
        );
        // A policy is assigned once per application.
        invalid(
            &t.post(&ap, json!({ "signOnPolicy": { "id": p1 }, "priority": 1 }))
                .await,
            "UNIQUENESS_VIOLATION",
            "signOnPolicy.id",
        );
        assert_eq!(
            assignments(&t, &ap).await,
            vec![(p2.clone(), 1), (p1.clone(), 2), (p3.clone(), 3)],
            "a refused insert does not renumber"
        );

        // Moving with PUT.
        let m = t
            .put(
                &format!("{ap}/{}", a3.id()),
                json!({ "signOnPolicy": { "id": p3 }, "priority": 1 }),
            )
            .await;
        assert_eq!(m.status, StatusCode::OK, "{}", m.text);
        assert_eq!(
            assignments(&t, &ap).await,
            vec![(p3.clone(), 1), (p2.clone(), 2), (p1.clone(), 3)]
        );
        // Deleting closes the gap.
        assert_eq!(
            t.delete(&format!("{ap}/{}", a2.id())).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            assignments(&t, &ap).await,
            vec![(p3.clone(), 1), (p1.clone(), 2)]
        );
        // Deleting a policy removes its assignments and closes the gap.
        assert_eq!(
            t.delete(&path(&env, &format!("/signOnPolicies/{p3}")))
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(assignments(&t, &ap).await, vec![(p1.clone(), 1)]);
        // Assignments are per application.
        let other = create(&t, &env, web_app("Other")).await.id();
        let op = path(
            &env,
            &format!("/applications/{other}/signOnPolicyAssignments"),
        );
        let r = t
            .post(&op, json!({ "signOnPolicy": { "id": p1 }, "priority": 5 }))
            .await;
        assert_eq!(r.body["priority"], 1, "{}", r.text);
        assert_eq!(assignments(&t, &ap).await, vec![(p1.clone(), 1)]);
        // An assignment is reachable only under its own application.
        assert_error(
            &t.get(&format!("{op}/{}", a1.id())).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
    }
}

#[tokio::test]
async fn deleting_an_application_removes_its_children() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let (res, scopes) = resource_with_scopes(&t, &env, "Orders", &["orders:read"]).await;
        let mut body = worker("Doomed");
        body["grantTypes"] = json!(["CLIENT_CREDENTIALS"]);
        let app = create(&t, &env, body).await.id();
        let base = path(&env, &format!("/applications/{app}"));
        assert_eq!(
            t.post(
                &format!("{base}/grants"),
                json!({ "resource": { "id": res }, "scopes": [ { "id": scopes[0] } ] })
            )
            .await
            .status,
            StatusCode::CREATED
        );
        assert_eq!(
            t.post(
                &format!("{base}/attributes"),
                json!({ "name": "email", "value": "${user.email}" })
            )
            .await
            .status,
            StatusCode::CREATED
        );
        let pol = t.get(&path(&env, "/signOnPolicies")).await.body["_embedded"]["signOnPolicies"]
            [0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            t.post(
                &format!("{base}/signOnPolicyAssignments"),
                json!({ "signOnPolicy": { "id": pol }, "priority": 1 })
            )
            .await
            .status,
            StatusCode::CREATED
        );
        let ra = t.post(&format!("{base}/roleAssignments"), json!({ "role": { "id": lanyard::engine::authz::ENVIRONMENT_ADMIN }, "scope": { "type": "ENVIRONMENT", "id": env } })).await;
        assert_eq!(ra.status, StatusCode::CREATED, "{}", ra.text);
        let secret = secret_of(&t, &env, &app).await;
        let tok = t.client_token(&env, &app, &secret).await;
        assert_eq!(
            t.send(
                axum::http::Method::GET,
                &path(&env, "/applications"),
                Some(&tok),
                None,
                None
            )
            .await
            .status,
            StatusCode::OK
        );

        let d = t.delete(&base).await;
        assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.text);
        assert!(d.text.is_empty());
        assert_error(
            &t.get(&base).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
        assert_error(
            &t.delete(&base).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        );
        for sub in [
            "grants",
            "attributes",
            "signOnPolicyAssignments",
            "roleAssignments",
        ] {
            assert_error(
                &t.get(&format!("{base}/{sub}")).await,
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                None,
            );
        }
        let mut reader = t.app.store.read();
        for kind in [
            "grant",
            "applicationAttribute",
            "signOnPolicyAssignment",
            "roleAssignment",
        ] {
            assert!(
                reader.children(kind, &env, &app).await.unwrap().is_empty(),
                "{kind} left behind"
            );
        }
        // The application's tokens and credentials stop working.
        let r = t
            .send(
                axum::http::Method::GET,
                &path(&env, "/applications"),
                Some(&tok),
                None,
                None,
            )
            .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "ACCESS_FAILED", None);
        assert_eq!(
            token_status(&t, &env, &app, &secret).await,
            StatusCode::UNAUTHORIZED
        );
        // The policy and resource are untouched.
        assert_eq!(
            t.get(&path(&env, &format!("/signOnPolicies/{pol}")))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            t.get(&path(&env, &format!("/resources/{res}")))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(count(&t, &path(&env, "/applications")).await, 0);
    }
}
