//! Environments and populations through the management API.

mod common;

use axum::http::StatusCode;
use common::{TestApp, assert_error, backends};
use serde_json::json;

#[tokio::test]
async fn environment_lifecycle_with_default_contents() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let name = format!("env-{}", uuid::Uuid::new_v4());
        let r = t.post("/v1/environments", json!({ "name": name, "type": "SANDBOX", "region": "EU", "status": "DELETE_PENDING" })).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let env = r.id();
        assert_eq!(
            r.body["status"], "ACTIVE",
            "read-only status is ignored on write"
        );
        assert!(r.body["organization"]["id"].is_string());
        assert_eq!(
            r.body["_links"]["self"]["href"],
            format!("http://lanyard.test/v1/environments/{env}")
        );
        assert_eq!(
            r.headers["location"],
            format!("http://lanyard.test/v1/environments/{env}").as_str()
        );

        let pops = t.get(&TestApp::env_path(&env, "/populations")).await;
        assert_eq!(pops.body["count"], 1);
        assert_eq!(pops.body["_embedded"]["populations"][0]["name"], "Default");
        assert_eq!(pops.body["_embedded"]["populations"][0]["default"], true);
        let res = t.get(&TestApp::env_path(&env, "/resources")).await;
        let mut names: Vec<&str> = res.body["_embedded"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["PingOne API", "openid"]);
        let jwks = t
            .send(
                axum::http::Method::GET,
                &format!("/{env}/as/jwks"),
                None,
                None,
                None,
            )
            .await;
        assert_eq!(jwks.body["keys"].as_array().unwrap().len(), 1);

        // Duplicate name in the organization.
        let dup = t
            .post(
                "/v1/environments",
                json!({ "name": name, "type": "SANDBOX", "region": "NA" }),
            )
            .await;
        assert_error(
            &dup,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("UNIQUENESS_VIOLATION"),
        );

        // Filter and read.
        let f = t
            .get(&format!("/v1/environments?filter=name%20eq%20%22{name}%22"))
            .await;
        assert_eq!(f.body["count"], 1, "{}", f.text);
        let put = t
            .put(
                &TestApp::env_path(&env, ""),
                json!({ "name": name, "type": "PRODUCTION", "region": "NA" }),
            )
            .await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.text);
        assert_eq!(put.body["type"], "PRODUCTION");
        assert_eq!(put.body["region"], "EU", "region is fixed at creation");

        let del = t.delete(&TestApp::env_path(&env, "")).await;
        assert_eq!(del.status, StatusCode::NO_CONTENT);
        let gone = t.get(&TestApp::env_path(&env, "/populations")).await;
        assert_error(&gone, StatusCode::FORBIDDEN, "ACCESS_FAILED", None);
    }
}

#[tokio::test]
async fn the_administrators_environment_cannot_be_deleted() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let r = t.delete(&TestApp::env_path(&t.admin_env, "")).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "REQUEST_FAILED", None);
    }
}

#[tokio::test]
async fn populations_default_rule_and_user_count() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let p = TestApp::env_path(&env, "/populations");
        let a = t
            .post(&p, json!({ "name": "A", "description": "first" }))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        assert_eq!(a.body["default"], false);
        assert_eq!(a.body["userCount"], 0);
        let dup = t.post(&p, json!({ "name": "a" })).await;
        assert_error(
            &dup,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("UNIQUENESS_VIOLATION"),
        );

        // Making A the default clears it on Default.
        let put = t
            .put(
                &format!("{p}/{}", a.id()),
                json!({ "name": "A", "default": true }),
            )
            .await;
        assert_eq!(put.body["default"], true, "{}", put.text);
        let list = t.get(&format!("{p}?filter=default%20eq%20true")).await;
        assert_eq!(list.body["count"], 1);
        assert_eq!(
            list.body["_embedded"]["populations"][0]["id"],
            a.id().as_str()
        );

        // The default population cannot be deleted; one with users cannot either.
        assert_error(
            &t.delete(&format!("{p}/{}", a.id())).await,
            StatusCode::BAD_REQUEST,
            "REQUEST_FAILED",
            None,
        );
        let u = t
            .post(
                &TestApp::env_path(&env, "/users"),
                json!({ "username": "u1" }),
            )
            .await;
        assert_eq!(
            u.body["population"]["id"],
            a.id().as_str(),
            "users land in the default population"
        );
        assert_eq!(t.get(&format!("{p}/{}", a.id())).await.body["userCount"], 1);
    }
}

#[tokio::test]
async fn lists_order_by_creation_both_ways_with_paging() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let p = TestApp::env_path(&env, "/populations");
        for n in ["p1", "p2", "p3"] {
            assert_eq!(
                t.post(&p, json!({ "name": n })).await.status,
                StatusCode::CREATED
            );
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        let names = |r: &common::Resp| -> Vec<String> {
            r.body["_embedded"]["populations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["name"].as_str().unwrap().to_string())
                .collect()
        };
        let asc = t.get(&format!("{p}?order=createdAt")).await;
        assert_eq!(names(&asc), vec!["Default", "p1", "p2", "p3"]);
        // Newest first, two at a time: the cursor continues in the same order.
        let first = t.get(&format!("{p}?order=-createdAt&limit=2")).await;
        assert_eq!(names(&first), vec!["p3", "p2"]);
        let next = first.body["_links"]["next"]["href"]
            .as_str()
            .unwrap()
            .replace("http://lanyard.test", "");
        let second = t.get(&next).await;
        assert_eq!(names(&second), vec!["p1", "Default"], "{}", second.text);
        let bad = t.get(&format!("{p}?order=name")).await;
        assert_error(
            &bad,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
    }
}
