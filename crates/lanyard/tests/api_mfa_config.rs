//! MFA configuration through the management API: device authentication policies (the
//! environment default, one default at a time, validation), references to them from sign-on
//! actions, notification templates and contents, and phone delivery settings' credentials.

mod common;

use axum::http::StatusCode;
use common::{TestApp, assert_error, backends};
use serde_json::{Value, json};

fn p(env: &str, rest: &str) -> String {
    TestApp::env_path(env, rest)
}

fn method(enabled: bool) -> Value {
    json!({ "enabled": enabled, "otp": { "lifeTime": { "duration": 5, "timeUnit": "MINUTES" },
            "failure": { "count": 3, "coolDown": { "duration": 2, "timeUnit": "MINUTES" } } } })
}

fn policy_body(name: &str) -> Value {
    json!({ "name": name, "sms": method(true), "voice": method(false), "email": method(true),
            "totp": { "enabled": true, "otp": { "failure": { "count": 3, "coolDown": { "duration": 2, "timeUnit": "MINUTES" } } } } })
}

#[tokio::test]
async fn device_authentication_policies() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let list = t.get(&p(&env, "/deviceAuthenticationPolicies")).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        let all = list.body["_embedded"]["deviceAuthenticationPolicies"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(all.len(), 1, "{}", list.text);
        let default = &all[0];
        assert_eq!(default["name"], "Default MFA Policy");
        assert_eq!(default["default"], true);
        assert_eq!(
            default["authentication"]["deviceSelection"],
            "DEFAULT_TO_FIRST"
        );
        assert_eq!(default["sms"]["otp"]["otpLength"], 6);
        let default_id = default["id"].as_str().unwrap().to_string();

        // A new policy; made the default, it takes the flag from the old one.
        let r = t
            .post(
                &p(&env, "/deviceAuthenticationPolicies"),
                policy_body("Strict"),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(r.body["default"], false);
        assert_eq!(
            r.body["authentication"]["deviceSelection"], "DEFAULT_TO_FIRST",
            "defaulted"
        );
        let strict = r.id();
        let mut body = policy_body("Strict");
        body["default"] = json!(true);
        let r = t
            .put(
                &p(&env, &format!("/deviceAuthenticationPolicies/{strict}")),
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["default"], true);
        let old = t
            .get(&p(
                &env,
                &format!("/deviceAuthenticationPolicies/{default_id}"),
            ))
            .await;
        assert_eq!(old.body["default"], false, "{}", old.text);
        // The default cannot be deleted; another one can.
        let r = t
            .delete(&p(&env, &format!("/deviceAuthenticationPolicies/{strict}")))
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "REQUEST_FAILED", None);
        let r = t
            .delete(&p(
                &env,
                &format!("/deviceAuthenticationPolicies/{default_id}"),
            ))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

        // Validation.
        let mut no_sms = policy_body("NoSms");
        no_sms.as_object_mut().unwrap().remove("sms");
        let r = t
            .post(&p(&env, "/deviceAuthenticationPolicies"), no_sms)
            .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("REQUIRED_VALUE"),
        );
        let mut short = policy_body("Short");
        short["sms"]["otp"]["otpLength"] = json!(5);
        let r = t
            .post(&p(&env, "/deviceAuthenticationPolicies"), short)
            .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("OUT_OF_RANGE"),
        );
        let mut unit = policy_body("Unit");
        unit["email"]["otp"]["lifeTime"]["timeUnit"] = json!("HOURS");
        let r = t
            .post(&p(&env, "/deviceAuthenticationPolicies"), unit)
            .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        let mut sel = policy_body("Sel");
        sel["authentication"] = json!({ "deviceSelection": "RANDOM" });
        let r = t.post(&p(&env, "/deviceAuthenticationPolicies"), sel).await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        let r = t
            .post(
                &p(&env, "/deviceAuthenticationPolicies"),
                policy_body("Strict"),
            )
            .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("UNIQUENESS_VIOLATION"),
        );

        // A sign-on action may name only a policy that exists.
        let sop = t
            .post(&p(&env, "/signOnPolicies"), json!({ "name": "Mfa" }))
            .await
            .id();
        let r = t
            .post(
                &p(&env, &format!("/signOnPolicies/{sop}/actions")),
                json!({ "priority": 1, "type": "MULTI_FACTOR_AUTHENTICATION", "deviceAuthenticationPolicy": { "id": default_id } }),
            )
            .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        assert_eq!(
            r.body["details"][0]["target"],
            "deviceAuthenticationPolicy.id"
        );
        let r = t
            .post(
                &p(&env, &format!("/signOnPolicies/{sop}/actions")),
                json!({ "priority": 1, "type": "MULTI_FACTOR_AUTHENTICATION", "deviceAuthenticationPolicy": { "id": strict } }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(r.body["noDevicesMode"], "BLOCK");
    }
}

#[tokio::test]
async fn notification_templates_and_contents() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let r = t.get(&p(&env, "/templates")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["count"], 16);
        let names: Vec<&str> = r.body["_embedded"]["templates"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["id"].as_str())
            .collect();
        for n in [
            "strong_authentication",
            "transaction",
            "recovery_code_template",
            "verification_code_template",
            "device_pairing",
        ] {
            assert!(names.contains(&n), "{n}: {names:?}");
        }
        let r = t.get(&p(&env, "/templates/strong_authentication")).await;
        assert_eq!(
            r.body["deliveryMethods"],
            json!(["SMS", "Voice", "Email", "Push"])
        );
        assert_eq!(
            t.get(&p(&env, "/templates/no_such_template")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            t.post(&p(&env, "/templates"), json!({ "name": "mine" }))
                .await
                .status,
            StatusCode::METHOD_NOT_ALLOWED
        );

        // The defaults are there, marked default; they can be changed but not deleted.
        let c = t
            .get(&p(&env, "/templates/strong_authentication/contents"))
            .await;
        assert_eq!(c.status, StatusCode::OK, "{}", c.text);
        let contents = c.body["_embedded"]["contents"].as_array().unwrap().clone();
        let sms = contents
            .iter()
            .find(|c| c["deliveryMethod"] == "SMS")
            .expect("a default SMS content");
        assert_eq!(sms["default"], true);
        assert_eq!(sms["locale"], "en");
        assert!(sms["content"].as_str().unwrap().contains("${otp}"));
        let sms_id = sms["id"].as_str().unwrap().to_string();
        let path = p(
            &env,
            &format!("/templates/strong_authentication/contents/{sms_id}"),
        );
        let r = t
            .put(
                &path,
                json!({ "locale": "en", "deliveryMethod": "SMS", "content": "Code: ${otp}" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["default"], true, "still the default");
        assert_error(
            &t.delete(&path).await,
            StatusCode::BAD_REQUEST,
            "REQUEST_FAILED",
            None,
        );

        // A new content: validated per delivery method and template.
        let contents = p(&env, "/templates/strong_authentication/contents");
        let r = t
            .post(
                &contents,
                json!({ "locale": "de", "deliveryMethod": "SMS" }),
            )
            .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("REQUIRED_VALUE"),
        );
        let r = t
            .post(
                &contents,
                json!({ "locale": "not a locale", "deliveryMethod": "SMS", "content": "${otp}" }),
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
                &contents,
                json!({ "locale": "de", "deliveryMethod": "Fax", "content": "${otp}" }),
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
                &p(&env, "/templates/verification_code_template/contents"),
                json!({ "locale": "de", "deliveryMethod": "SMS", "content": "${code}" }),
            )
            .await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        let r = t.post(&contents, json!({ "locale": "de", "deliveryMethod": "Email", "subject": "Code", "body": "Ihr Code: ${otp}" })).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(r.body["default"], false);
        assert_eq!(r.body["emailContentType"], "text/html");
        let id = r.id();
        // A content keeps its delivery method.
        let r = t.put(&format!("{contents}/{id}"), json!({ "locale": "de", "deliveryMethod": "SMS", "subject": "Code", "body": "Neu: ${otp}" })).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["deliveryMethod"], "Email");
        assert_eq!(r.body["body"], "Neu: ${otp}");
        let filtered = t
            .get(&format!("{contents}?filter=locale%20eq%20%22de%22"))
            .await;
        assert_eq!(filtered.body["count"], 1, "{}", filtered.text);
        assert_eq!(
            t.delete(&format!("{contents}/{id}")).await.status,
            StatusCode::NO_CONTENT
        );
        // Contents of one template are not reachable under another.
        assert_eq!(
            t.get(&p(
                &env,
                &format!("/templates/transaction/contents/{sms_id}")
            ))
            .await
            .status,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn phone_delivery_credentials_stay_sealed() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let settings = p(&env, "/notificationsSettings/phoneDeliverySettings");
        let body = json!({ "provider": "CUSTOM_PROVIDER", "name": "Gateway",
            "authentication": { "method": "BEARER", "authToken": "very-secret-token" },
            "requests": [{ "deliveryMethod": "SMS", "method": "GET", "url": "https://sms.example.com/send?to=${to}&m=${message}" }] });
        let r = t.post(&settings, body.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert!(!r.text.contains("very-secret-token"), "{}", r.text);
        let id = r.id();
        // A PUT without the token keeps it; the list never shows it.
        let mut renamed = body.clone();
        renamed["name"] = json!("Renamed");
        renamed["authentication"] = json!({ "method": "BEARER" });
        let r = t.put(&format!("{settings}/{id}"), renamed).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["name"], "Renamed");
        let l = t.get(&settings).await;
        assert!(!l.text.contains("very-secret-token"), "{}", l.text);
        // Switching to BASIC needs the new credentials.
        let mut basic = body.clone();
        basic["authentication"] = json!({ "method": "BASIC", "username": "u" });
        let r = t.put(&format!("{settings}/{id}"), basic).await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("REQUIRED_VALUE"),
        );
        // Two requests for one delivery method are refused.
        let mut twice = body.clone();
        twice["requests"] = json!([body["requests"][0], body["requests"][0]]);
        let r = t.post(&settings, twice).await;
        assert_error(
            &r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some("INVALID_VALUE"),
        );
        // Stored sealed: the database row does not hold the token in clear.
        let row = t
            .app
            .store
            .read()
            .get(lanyard::resources::phone_delivery::KIND, &env, &id)
            .await
            .unwrap()
            .unwrap();
        assert!(!row.data.to_string().contains("very-secret-token"));
        assert!(
            !row.secrets
                .unwrap_or_default()
                .contains("very-secret-token")
        );
    }
}

#[tokio::test]
async fn device_lists_take_a_filter() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let user = t
            .post(&p(&env, "/users"), json!({ "username": "filtered" }))
            .await
            .id();
        let devices = p(&env, &format!("/users/{user}/devices"));
        for body in [
            json!({ "type": "SMS", "phone": "+15125550100" }),
            json!({ "type": "EMAIL", "email": "f@example.com" }),
            json!({ "type": "TOTP" }),
        ] {
            assert_eq!(t.post(&devices, body).await.status, StatusCode::CREATED);
        }
        let q = |f: &str| {
            format!(
                "{devices}?filter={}",
                f.replace(' ', "%20").replace('"', "%22")
            )
        };
        let r = t.get(&q(r#"type eq "EMAIL""#)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["count"], 1, "{}", r.text);
        assert_eq!(r.body["_embedded"]["devices"][0]["type"], "EMAIL");
        let r = t.get(&q(r#"status eq "ACTIVATION_REQUIRED""#)).await;
        assert_eq!(r.body["count"], 1, "the TOTP device: {}", r.text);
        let r = t.get(&q(r#"phone eq "+15125550100""#)).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "not a filterable attribute: {}",
            r.text
        );
        let r = t.get(&q(r#"type eq"#)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert_eq!(t.get(&devices).await.body["count"], 3);
    }
}
