//! Acceptance use cases for multi-factor sign-on, step by step as the PingOne how-to guides
//! run them (`shared/spec/seeds/000_85cdb1063f7e3e1d.txt`): UC01 (LOGIN and MFA actions),
//! UC15 (an MFA policy for a web app), UC16 (passwordless), UC17 (MFA only with a
//! login_hint_token), UC18 (transaction approval over SMS), UC19 (two MFA actions) and UC20
//! (an authenticator app). Passcodes are read from the outbox; TOTP codes are computed.

mod common;

use axum::http::Method;
use common::mfa::{self, path};
use common::signon::{self, Jar, PASSWORD, PUBLIC};
use common::{TestApp, backends};
use serde_json::{Value, json};

const CB: &str = "https://example.com";
const PHONE: &str = "+15125550100";

/// Steps shared by the guides: a web app with the openid scopes granted; returns (app, secret).
async fn web_app(t: &TestApp, env: &str, name: &str) -> (String, String) {
    // Step: create the web application.
    let r = t
        .post(
            &path(env, "/applications"),
            json!({ "name": name, "enabled": true, "type": "WEB_APP", "protocol": "OPENID_CONNECT",
                    "responseTypes": ["CODE"], "grantTypes": ["AUTHORIZATION_CODE"],
                    "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC", "redirectUris": [CB] }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let app = r.id();
    // Steps: get all resources, get the OIDC scopes, assign a resource grant.
    let res = t.get(&path(env, "/resources")).await;
    assert_eq!(res.status, 200);
    let openid = res.body["_embedded"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "openid")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let scopes = t
        .get(&path(env, &format!("/resources/{openid}/scopes")))
        .await;
    assert_eq!(scopes.status, 200);
    let ids: Vec<Value> = scopes.body["_embedded"]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            ["profile", "email", "openid"].contains(&s["name"].as_str().unwrap_or_default())
        })
        .map(|s| json!({ "id": s["id"] }))
        .collect();
    let g = t
        .post(
            &path(env, &format!("/applications/{app}/grants")),
            json!({ "resource": { "id": openid }, "scopes": ids }),
        )
        .await;
    assert_eq!(g.status, 201, "{}", g.text);
    let secret = signon::app_secret(t, env, &app).await;
    (app, secret)
}

/// A population and a user in it with a password and MFA enabled (the guides' steps).
async fn mfa_user(t: &TestApp, env: &str, username: &str) -> String {
    let pop = t
        .post(
            &path(env, "/populations"),
            json!({ "name": format!("MFA users {username}") }),
        )
        .await;
    assert_eq!(pop.status, 201, "{}", pop.text);
    let u = t
        .post(
            &path(env, "/users"),
            json!({ "username": username, "email": format!("{username}@example.com"), "population": { "id": pop.id() } }),
        )
        .await;
    assert_eq!(u.status, 201, "{}", u.text);
    let user = u.id();
    // "Set user password": the guide writes POST with the password.set media type.
    let p = t
        .action(
            Method::POST,
            &path(env, &format!("/users/{user}/password")),
            "application/vnd.pingidentity.password.set+json",
            Some(json!({ "value": PASSWORD, "forceChange": false })),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    mfa::enable_mfa(t, env, &user).await;
    user
}

async fn exchange(t: &TestApp, env: &str, app: &str, secret: &str, code: &str) -> Value {
    let r = signon::token_form(
        t,
        &format!("/{env}/as/token"),
        Some((app, secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "token: {}", r.text);
    r.body
}

#[tokio::test]
async fn uc01_login_and_mfa_actions() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        // Steps 1-4: application, resources, scopes, grant.
        let (app, _) = web_app(&t, &env, "WebAppWithMFA").await;
        // Steps 5-8: policy, LOGIN action, MFA action (runs after LOGIN), assignment.
        mfa::policy(
            &t,
            &env,
            &app,
            "LoginAndMFA",
            &[
                json!({ "priority": 1, "type": "LOGIN" }),
                json!({ "priority": 10, "type": "MULTI_FACTOR_AUTHENTICATION", "sms": { "enabled": true }, "email": { "enabled": true } }),
            ],
        )
        .await;
        // Steps 9-12: population, user, password, MFA enabled.
        let user = mfa_user(&t, &env, "mfa.user").await;
        // Step 13: an SMS device (an admin's device is active at once).
        let r = mfa::add_device(
            &t,
            &env,
            &user,
            json!({ "type": "SMS", "phone": "+1.5125550100" }),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["status"], "ACTIVE");
        assert_eq!(r.body["phone"], PHONE, "stored in E.164");
        assert_eq!(r.body["user"]["id"], user.as_str());
        assert_eq!(r.body["lock"]["status"], "UNLOCKED");
        let device = r.id();

        // Step 14: the authorization request (POST).
        let mut jar = Jar::new();
        let a = signon::browser_form(
            &t,
            &mut jar,
            &format!("/{env}/as/authorize"),
            &[
                ("client_id", &app),
                ("response_type", "code"),
                ("scope", "openid profile"),
                ("redirect_uri", CB),
                ("state", "s1"),
            ],
        )
        .await;
        assert_eq!(a.status, 302, "{}", a.text);
        let flow = signon::flow_id_of(&signon::location(&a));
        // Step 15: get the flow.
        let f = signon::browser_get(&t, &mut jar, &mfa::flow_url(&env, &flow)).await;
        assert_eq!(f.body["status"], "USERNAME_PASSWORD_REQUIRED", "{}", f.text);
        // Step 16: the login credentials; the MFA action sends a passcode to the only device.
        let f = signon::flow_action(
            &t,
            &mut jar,
            &mfa::flow_url(&env, &flow),
            "usernamePassword.check",
            json!({ "username": "mfa.user", "password": PASSWORD }),
        )
        .await;
        assert_eq!(f.status, 200, "{}", f.text);
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        assert_eq!(f.body["selectedDevice"]["id"], device.as_str());
        assert_eq!(
            f.body["_embedded"]["devices"][0]["phone"], "*******00",
            "masked"
        );
        assert!(f.body["_links"]["otp.check"]["href"].is_string());
        let sms = mfa::messages_to(&t, &env, PHONE).await;
        assert_eq!(sms.len(), 1);
        assert_eq!(sms[0]["deliveryMethod"], "SMS");
        assert_eq!(sms[0]["user"]["id"], user.as_str());
        let otp = mfa::latest_otp(&t, &env, PHONE).await;
        // Step 17: check the OTP.
        let f = signon::flow_action(
            &t,
            &mut jar,
            &mfa::flow_url(&env, &flow),
            "otp.check",
            json!({ "otp": otp }),
        )
        .await;
        assert_eq!(f.status, 200, "{}", f.text);
        assert_eq!(f.body["status"], "COMPLETED", "{}", f.text);
        // Step 18: resume.
        let r = signon::browser_get(&t, &mut jar, f.body["resumeUrl"].as_str().unwrap()).await;
        assert_eq!(r.status, 302, "{}", r.text);
        let q = signon::query_of(&signon::location(&r));
        assert_eq!(q["state"], "s1");
        // Steps 19-20: the secret, then the token.
        let secret = signon::app_secret(&t, &env, &app).await;
        let tokens = exchange(&t, &env, &app, &secret, &q["code"]).await;
        let claims = signon::verify_jwt(&t, &env, tokens["id_token"].as_str().unwrap(), &app).await;
        assert_eq!(claims["sub"], user.as_str());
        assert_eq!(claims["amr"], json!(["pwd", "sms"]), "both factors");
        assert_eq!(claims["acr"], "LoginAndMFA");
        // The passcode was used once.
        let again = signon::flow_action(
            &t,
            &mut jar,
            &mfa::flow_url(&env, &flow),
            "otp.check",
            json!({ "otp": otp }),
        )
        .await;
        assert_eq!(again.status, 404, "the flow is consumed: {}", again.text);
    }
}

#[tokio::test]
async fn uc15_mfa_policy_for_a_web_app() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        // Steps 1-4.
        let (app, _) = web_app(&t, &env, "WebAppMFA").await;
        // Steps 5-7: an MFA policy whose action comes first, assigned to the app.
        let pol = mfa::policy(
            &t,
            &env,
            &app,
            "MFA_Policy",
            &[json!({ "priority": 1, "type": "MULTI_FACTOR_AUTHENTICATION", "sms": { "enabled": true }, "email": { "enabled": true } })],
        )
        .await;
        let acts = t
            .get(&path(&env, &format!("/signOnPolicies/{pol}/actions")))
            .await;
        assert_eq!(
            acts.body["_embedded"]["actions"][0]["noDevicesMode"], "BLOCK",
            "the default"
        );
        let asg = t
            .get(&path(
                &env,
                &format!("/applications/{app}/signOnPolicyAssignments"),
            ))
            .await;
        assert_eq!(
            asg.body["_embedded"]["signOnPolicyAssignments"][0]["signOnPolicy"]["id"],
            pol.as_str()
        );
        // The app's sign-on now asks who the user is (an MFA action needs a user).
        let mut jar = Jar::new();
        let a = signon::browser_get(&t, &mut jar, &format!("/{env}/as/authorize?client_id={app}&response_type=code&scope=openid&redirect_uri={CB}&response_mode=pi.flow")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["status"], "SIGN_ON_REQUIRED");
        assert!(a.body["_links"]["user.lookup"]["href"].is_string());
    }
}

#[tokio::test]
async fn uc16_passwordless_sign_on() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        // Step 1: the application.
        let (app, secret) = web_app(&t, &env, "Passwordless").await;
        // Steps 2-4: policy, the one MFA action (email), assignment.
        mfa::policy(&t, &env, &app, "Passwordless", &[json!({ "priority": 1, "type": "MULTI_FACTOR_AUTHENTICATION", "email": { "enabled": true } })]).await;
        let user = mfa_user(&t, &env, "nopass").await;
        mfa::device(
            &t,
            &env,
            &user,
            json!({ "type": "EMAIL", "email": "nopass@example.com" }),
        )
        .await;
        // Step 5: the authorization server answers with the sign-on screen's URL.
        let mut jar = Jar::new();
        let a = signon::browser_get(&t, &mut jar, &format!("/{env}/as/authorize?client_id={app}&response_type=code&scope=openid&redirect_uri={CB}")).await;
        assert_eq!(a.status, 302, "{}", a.text);
        let loc = signon::location(&a);
        assert!(
            loc.starts_with(&format!("{PUBLIC}/{env}/signon/?flowId=")),
            "{loc}"
        );
        // And the sign-on runs without a password: username, then the emailed code.
        let flow = mfa::flow_url(&env, &signon::flow_id_of(&loc));
        let f = signon::browser_get(&t, &mut jar, &flow).await;
        assert_eq!(f.body["status"], "SIGN_ON_REQUIRED", "{}", f.text);
        let f = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "user.lookup",
            json!({ "username": "nopass" }),
        )
        .await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        assert_eq!(
            f.body["_embedded"]["devices"][0]["email"],
            "no****@example.com"
        );
        let otp = mfa::latest_otp(&t, &env, "nopass@example.com").await;
        let f = signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": otp })).await;
        assert_eq!(f.body["status"], "COMPLETED", "{}", f.text);
        let r = signon::browser_get(&t, &mut jar, f.body["resumeUrl"].as_str().unwrap()).await;
        let q = signon::query_of(&signon::location(&r));
        let tokens = exchange(&t, &env, &app, &secret, &q["code"]).await;
        let claims = signon::verify_jwt(&t, &env, tokens["id_token"].as_str().unwrap(), &app).await;
        assert_eq!(claims["amr"], json!(["email"]), "no password");
        // The same browser again: the session names the user, so the flow goes straight to
        // the passcode; with prompt=login it asks who signs on.
        let again = format!(
            "/{env}/as/authorize?client_id={app}&response_type=code&scope=openid&redirect_uri={CB}&response_mode=pi.flow"
        );
        let a = signon::browser_get(&t, &mut jar, &again).await;
        assert_eq!(a.body["status"], "OTP_REQUIRED", "{}", a.text);
        assert_eq!(a.body["_embedded"]["user"]["id"], user.as_str());
        let a = signon::browser_get(&t, &mut jar, &format!("{again}&prompt=login")).await;
        assert_eq!(a.body["status"], "SIGN_ON_REQUIRED", "{}", a.text);
        // An unknown username is refused.
        let mut jar = Jar::new();
        let a = signon::browser_get(&t, &mut jar, &format!("/{env}/as/authorize?client_id={app}&response_type=code&scope=openid&redirect_uri={CB}&response_mode=pi.flow")).await;
        let flow = mfa::flow_url(&env, a.body["id"].as_str().unwrap());
        let f = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "user.lookup",
            json!({ "username": "nobody" }),
        )
        .await;
        assert_eq!(f.status, 400, "{}", f.text);
        assert_eq!(f.body["details"][0]["target"], "username");
    }
}

/// UC17 and UC18 share their setup: an SMS-only MFA policy, a user with an SMS device.
async fn mfa_only(t: &TestApp, env: &str) -> (String, String, String) {
    let (app, secret) = web_app(t, env, "WebApp4Mfa").await;
    mfa::policy(t, env, &app, "SMS_Only", &[json!({ "priority": 1, "type": "MULTI_FACTOR_AUTHENTICATION", "sms": { "enabled": true }, "email": { "enabled": false } })]).await;
    let user = mfa_user(t, env, "hinted").await;
    mfa::device(t, env, &user, json!({ "type": "SMS", "phone": PHONE })).await;
    (app, secret, user)
}

fn hint(env: &str, app: &str, sub: &str, exp_in: i64) -> Value {
    let now = lanyard::clock::unix();
    json!({ "iss": app, "sub": sub, "aud": format!("{PUBLIC}/{env}/as"), "iat": now, "exp": now + exp_in })
}

#[tokio::test]
async fn uc17_mfa_only_with_a_login_hint_token() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        // Steps 1-13.
        let (app, secret, user) = mfa_only(&t, &env).await;
        // Step 14: authorize with the login_hint_token: the flow starts at the passcode.
        let token = mfa::hs256(&secret, &hint(&env, &app, "hinted", 3600));
        let mut jar = Jar::new();
        let a = signon::browser_get(&t, &mut jar, &format!("/{env}/as/authorize?client_id={app}&response_type=code&response_mode=pi.flow&scope=openid&login_hint_token={token}")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["status"], "OTP_REQUIRED", "{}", a.text);
        assert_eq!(a.body["_embedded"]["user"]["id"], user.as_str());
        // Step 15: check the OTP.
        let otp = mfa::latest_otp(&t, &env, PHONE).await;
        let flow = mfa::flow_url(&env, a.body["id"].as_str().unwrap());
        let f = signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": otp })).await;
        assert_eq!(f.body["status"], "COMPLETED", "{}", f.text);
        // Step 16: resume returns the code.
        let r = signon::browser_get(&t, &mut jar, f.body["resumeUrl"].as_str().unwrap()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            r.body["authorizeResponse"]["code"].is_string(),
            "{}",
            r.text
        );

        // Bad tokens are refused: wrong key, expired, wrong audience, unknown user, by user id works.
        let bad = [
            mfa::hs256(
                "not-the-secret-not-the-secret-not-the-secret",
                &hint(&env, &app, "hinted", 3600),
            ),
            mfa::hs256(&secret, &hint(&env, &app, "hinted", -10)),
            // Valid for a year: a stolen hint would sign its user on for that long.
            mfa::hs256(&secret, &hint(&env, &app, "hinted", 365 * 24 * 3600)),
            mfa::hs256(
                &secret,
                &json!({ "iss": app, "sub": "hinted", "aud": "https://elsewhere/as", "exp": lanyard::clock::unix() + 60 }),
            ),
            mfa::hs256(&secret, &hint(&env, &app, "nobody", 3600)),
            "not.a.jwt".to_string(),
        ];
        for b in bad {
            let mut jar = Jar::new();
            let a = signon::browser_get(&t, &mut jar, &format!("/{env}/as/authorize?client_id={app}&response_type=code&response_mode=pi.flow&scope=openid&login_hint_token={b}")).await;
            assert_eq!(a.status, 400, "{}", a.text);
            assert_eq!(
                a.body["details"][0]["target"], "login_hint_token",
                "{}",
                a.text
            );
        }
        let by_id = mfa::hs256(&secret, &hint(&env, &app, &user, 3600));
        let a = signon::browser_get(&t, &mut Jar::new(), &format!("/{env}/as/authorize?client_id={app}&response_type=code&response_mode=pi.flow&scope=openid&login_hint_token={by_id}")).await;
        assert_eq!(a.body["status"], "OTP_REQUIRED", "{}", a.text);
        // In redirect mode a bad token is an OAuth error at the redirect URI.
        let a = signon::browser_get(&t, &mut Jar::new(), &format!("/{env}/as/authorize?client_id={app}&response_type=code&scope=openid&redirect_uri={CB}&login_hint_token=x.y.z")).await;
        assert_eq!(a.status, 302);
        assert_eq!(
            signon::query_of(&signon::location(&a))["error"],
            "invalid_request"
        );
    }
}

#[tokio::test]
async fn uc18_transaction_approval_over_sms() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        // Steps 1-8.
        let (app, secret, _) = mfa_only(&t, &env).await;
        // Step 9: a transaction SMS template (the guide's body, with ${OTP}).
        let c = t
            .post(
                &path(&env, "/templates/transaction/contents"),
                json!({ "locale": "en", "deliveryMethod": "SMS", "variant": "variant_A",
                        "content": "Approve this transfer of ${sum} ${currency} to ${recipient}, by entering this OTP: ${OTP}" }),
            )
            .await;
        assert_eq!(c.status, 201, "{}", c.text);
        assert_eq!(c.body["template"]["id"], "transaction");
        assert_eq!(c.body["default"], false);
        // Steps 10-14 were part of the setup. Step 15: the request object with pi.template;
        // its sub lets it serve as the login_hint_token too.
        let mut claims = hint(&env, &app, "hinted", 300);
        claims["pi.template"] = json!({ "name": "transaction", "variant": "variant_A",
            "variables": { "sum": "1,000,000", "currency": "USD", "recipient": "Charlie Parker" } });
        let jwt = mfa::hs256(&secret, &claims);
        let mut jar = Jar::new();
        let a = signon::browser_get(&t, &mut jar, &format!("/{env}/as/authorize?client_id={app}&response_type=code&response_mode=pi.flow&request={jwt}&scope=profile%20openid&login_hint_token={jwt}")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["status"], "OTP_REQUIRED", "{}", a.text);
        let sms = mfa::messages_to(&t, &env, PHONE).await;
        let body = sms[0]["body"].as_str().unwrap();
        assert!(
            body.starts_with(
                "Approve this transfer of 1,000,000 USD to Charlie Parker, by entering this OTP: "
            ),
            "{body}"
        );
        let otp = mfa::digits_in(body, 6).unwrap();
        // Step 16: check the OTP. Step 17: resume. Step 18: the token.
        let flow = mfa::flow_url(&env, a.body["id"].as_str().unwrap());
        let f = signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": otp })).await;
        assert_eq!(f.body["status"], "COMPLETED", "{}", f.text);
        let r = signon::browser_get(&t, &mut jar, f.body["resumeUrl"].as_str().unwrap()).await;
        let code = r.body["authorizeResponse"]["code"]
            .as_str()
            .expect("a code")
            .to_string();
        let r = signon::token_form(
            &t,
            &format!("/{env}/as/token"),
            Some((&app, &secret)),
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body["access_token"].is_string());

        // A template content with a variable the template does not define is refused.
        let bad = t.post(&path(&env, "/templates/strong_authentication/contents"), json!({ "locale": "fr", "deliveryMethod": "SMS", "content": "Code ${otp} ${bogus}" })).await;
        assert_eq!(bad.status, 400, "{}", bad.text);
        assert_eq!(bad.body["details"][0]["target"], "content");
        // The same template, method, locale and variant twice is a uniqueness violation.
        let dup = t.post(&path(&env, "/templates/transaction/contents"), json!({ "locale": "en", "deliveryMethod": "SMS", "variant": "variant_a", "content": "${otp}" })).await;
        assert_eq!(dup.status, 400, "{}", dup.text);
        assert_eq!(dup.body["details"][0]["code"], "UNIQUENESS_VIOLATION");
        let unknown = t.get(&path(&env, "/templates/nonsense/contents")).await;
        assert_eq!(unknown.status, 404);
        let tpl = t.get(&path(&env, "/templates/transaction")).await;
        assert_eq!(tpl.body["allowDynamicVariables"], true, "{}", tpl.text);
    }
}

#[tokio::test]
async fn uc19_two_mfa_actions() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        // Steps 1-4.
        let (app, _) = web_app(&t, &env, "TwoFactors").await;
        // Steps 5-8: an SMS action, then an email action.
        mfa::policy(
            &t,
            &env,
            &app,
            "SmsThenEmail",
            &[
                json!({ "priority": 1, "type": "MULTI_FACTOR_AUTHENTICATION", "sms": { "enabled": true }, "email": { "enabled": false } }),
                json!({ "priority": 2, "type": "MULTI_FACTOR_AUTHENTICATION", "sms": { "enabled": false }, "email": { "enabled": true } }),
            ],
        )
        .await;
        // Steps 9-14: population, user, password, MFA, an SMS and an email device.
        let user = mfa_user(&t, &env, "two.factors").await;
        let sms_dev = mfa::device(&t, &env, &user, json!({ "type": "SMS", "phone": PHONE })).await;
        let email_dev = mfa::device(
            &t,
            &env,
            &user,
            json!({ "type": "EMAIL", "email": "two@example.com" }),
        )
        .await;
        // Step 15: authorize. Step 16: the flow asks who signs on.
        let mut jar = Jar::new();
        let a = signon::browser_get(&t, &mut jar, &format!("/{env}/as/authorize?client_id={app}&response_type=code&scope=openid&redirect_uri={CB}")).await;
        let flow = mfa::flow_url(&env, &signon::flow_id_of(&signon::location(&a)));
        let f = signon::browser_get(&t, &mut jar, &flow).await;
        assert_eq!(f.body["status"], "SIGN_ON_REQUIRED", "{}", f.text);
        // Step 17: user lookup; the SMS action sends its code.
        let f = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "user.lookup",
            json!({ "username": "two.factors" }),
        )
        .await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        assert_eq!(f.body["selectedDevice"]["id"], sms_dev.as_str());
        assert_eq!(
            f.body["_embedded"]["devices"].as_array().unwrap().len(),
            1,
            "only SMS here"
        );
        // Step 18: the SMS code; the email action follows.
        let otp = mfa::latest_otp(&t, &env, PHONE).await;
        let f = signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": otp })).await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        assert_eq!(f.body["selectedDevice"]["id"], email_dev.as_str());
        // The SMS code does not work for the email step.
        let w = signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": otp })).await;
        assert_eq!(w.status, 400, "{}", w.text);
        assert_eq!(w.body["details"][0]["code"], "INVALID_OTP");
        assert_eq!(w.body["details"][0]["innerError"]["failuresRemaining"], 2);
        // Step 19: the email code.
        let otp = mfa::latest_otp(&t, &env, "two@example.com").await;
        let f = signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": otp })).await;
        assert_eq!(f.body["status"], "COMPLETED", "{}", f.text);
        // Steps 20-22: resume, secret, token.
        let r = signon::browser_get(&t, &mut jar, f.body["resumeUrl"].as_str().unwrap()).await;
        let q = signon::query_of(&signon::location(&r));
        let secret = signon::app_secret(&t, &env, &app).await;
        let tokens = exchange(&t, &env, &app, &secret, &q["code"]).await;
        let claims = signon::verify_jwt(&t, &env, tokens["id_token"].as_str().unwrap(), &app).await;
        assert_eq!(claims["amr"], json!(["sms", "email"]));
    }
}

#[tokio::test]
async fn uc20_authenticator_app() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        // Step 1: a native application.
        let r = t
            .post(
                &path(&env, "/applications"),
                json!({ "name": "NativeTOTP", "enabled": true, "type": "NATIVE_APP", "protocol": "OPENID_CONNECT",
                        "responseTypes": ["CODE"], "grantTypes": ["AUTHORIZATION_CODE"], "tokenEndpointAuthMethod": "NONE",
                        "pkceEnforcement": "S256_REQUIRED", "redirectUris": ["com.example.app://callback"] }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let app = r.id();
        // Steps 2-4: resources, scopes, grant.
        signon::grant(&t, &env, &app, "openid", &["openid", "profile"]).await;
        // Steps 5-7: the policy with an MFA action allowing only the authenticator app.
        mfa::policy(
            &t,
            &env,
            &app,
            "AuthenticatorApp",
            &[
                json!({ "priority": 1, "type": "LOGIN" }),
                json!({ "priority": 10, "type": "MULTI_FACTOR_AUTHENTICATION",
                        "sms": { "enabled": false }, "email": { "enabled": false }, "authenticator": { "enabled": true } }),
            ],
        )
        .await;
        // A user pairs an authenticator app: the TOTP device shows its secret once.
        let user = mfa_user(&t, &env, "totp.user").await;
        mfa::device(&t, &env, &user, json!({ "type": "SMS", "phone": PHONE })).await;
        let d = mfa::add_device(&t, &env, &user, json!({ "type": "TOTP" })).await;
        assert_eq!(d.status, 201, "{}", d.text);
        assert_eq!(d.body["status"], "ACTIVATION_REQUIRED");
        let secret = d.body["secret"].as_str().unwrap().to_string();
        assert!(
            d.body["keyUri"]
                .as_str()
                .unwrap()
                .starts_with("otpauth://totp/"),
            "{}",
            d.text
        );
        let totp = d.id();
        let read = t
            .get(&path(&env, &format!("/users/{user}/devices/{totp}")))
            .await;
        assert!(
            read.body.get("secret").is_none(),
            "the secret is not shown again"
        );
        let w = mfa::device_action(
            &t,
            &env,
            &user,
            &totp,
            "device.activate",
            json!({ "otp": "000000" }),
        )
        .await;
        assert_eq!(w.status, 400, "{}", w.text);
        let activation_code = mfa::totp_now(&secret);
        let a = mfa::device_action(
            &t,
            &env,
            &user,
            &totp,
            "device.activate",
            json!({ "otp": activation_code }),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["status"], "ACTIVE");

        // Sign on: password, then the authenticator code (SMS is not allowed by the action).
        let (verifier, challenge) = signon::pkce_pair();
        let mut jar = Jar::new();
        let a = signon::browser_get(&t, &mut jar, &format!("/{env}/as/authorize?client_id={app}&response_type=code&scope=openid&redirect_uri=com.example.app://callback&code_challenge={challenge}&code_challenge_method=S256&response_mode=pi.flow")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let flow = mfa::flow_url(&env, a.body["id"].as_str().unwrap());
        let f = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "usernamePassword.check",
            json!({ "username": "totp.user", "password": PASSWORD }),
        )
        .await;
        assert_eq!(f.body["status"], "OTP_REQUIRED", "{}", f.text);
        assert_eq!(f.body["selectedDevice"]["id"], totp.as_str());
        assert!(
            mfa::messages_to(&t, &env, PHONE).await.is_empty(),
            "nothing is sent for TOTP"
        );
        // The activation's code (its time step) cannot be used again ...
        let w = signon::flow_action(
            &t,
            &mut jar,
            &flow,
            "otp.check",
            json!({ "otp": activation_code }),
        )
        .await;
        assert_eq!(w.status, 400, "a TOTP step is accepted once: {}", w.text);
        assert_eq!(w.body["details"][0]["code"], "INVALID_OTP");
        // ... but the next step's code (within the ±1 step window) is a fresh one.
        let code = lanyard::engine::otp::totp(&secret, lanyard::clock::unix() + 30).unwrap();
        let f = signon::flow_action(&t, &mut jar, &flow, "otp.check", json!({ "otp": code })).await;
        assert_eq!(f.body["status"], "COMPLETED", "{}", f.text);
        let r = signon::browser_get(&t, &mut jar, f.body["resumeUrl"].as_str().unwrap()).await;
        let code = r.body["authorizeResponse"]["code"]
            .as_str()
            .unwrap()
            .to_string();
        let tok = signon::token_form(
            &t,
            &format!("/{env}/as/token"),
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", &app),
                ("redirect_uri", "com.example.app://callback"),
                ("code_verifier", &verifier),
            ],
        )
        .await;
        assert_eq!(tok.status, 200, "{}", tok.text);
        let claims = signon::claims_of(tok.body["id_token"].as_str().unwrap());
        assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    }
}

/// An action's condition on a user attribute (`${user.population.id}`) decides per user
/// whether the action runs: MFA only for the population that needs it.
#[tokio::test]
async fn conditions_on_user_attributes_pick_who_gets_mfa() {
    for db in backends() {
        let t = TestApp::new(db).await;
        let env = t.new_env().await;
        let (app, _) = web_app(&t, &env, "ByPopulation").await;
        let strict = mfa_user(&t, &env, "strict.user").await;
        let pop = t.get(&path(&env, &format!("/users/{strict}"))).await.body["population"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        mfa::device(
            &t,
            &env,
            &strict,
            json!({ "type": "EMAIL", "email": "strict@example.com" }),
        )
        .await;
        signon::create_user(&t, &env, "relaxed.user").await;
        mfa::policy(
            &t,
            &env,
            &app,
            "MfaForSome",
            &[
                json!({ "priority": 1, "type": "LOGIN" }),
                json!({ "priority": 2, "type": "MULTI_FACTOR_AUTHENTICATION", "email": { "enabled": true },
                        "condition": { "value": "${user.population.id}", "equals": pop } }),
            ],
        )
        .await;
        for (username, want) in [
            ("strict.user", "OTP_REQUIRED"),
            ("relaxed.user", "COMPLETED"),
        ] {
            let mut jar = Jar::new();
            let a = signon::browser_get(&t, &mut jar, &format!("/{env}/as/authorize?client_id={app}&response_type=code&scope=openid&redirect_uri={CB}&response_mode=pi.flow")).await;
            let flow = mfa::flow_url(&env, a.body["id"].as_str().unwrap());
            let f = signon::flow_action(
                &t,
                &mut jar,
                &flow,
                "usernamePassword.check",
                json!({ "username": username, "password": PASSWORD }),
            )
            .await;
            assert_eq!(f.body["status"], want, "{username}: {}", f.text);
        }
    }
}
