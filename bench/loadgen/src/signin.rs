//! The `signin` and `signin-mfa` scenarios: a full redirectless (`response_mode=pi.flow`)
//! sign-in per iteration, and the `hash` baseline: single-threaded argon2id hashes at Lanyard's
//! parameters.
//!
//! Setup (management API, admin worker token): a new environment, a `WEB_APP` OIDC application
//! (authorization code, `CLIENT_SECRET_BASIC`), a grant of the `openid` resource's `profile`
//! scope, the application's secret, and N users with a password. For `signin-mfa` also a
//! sign-on policy (LOGIN, then MULTI_FACTOR_AUTHENTICATION with email) assigned to the
//! application, and for every user `mfaEnabled` and an EMAIL device. One iteration, with a fresh
//! cookie jar (a new browser each time) for the next user in turn:
//!
//! 1. `GET /{env}/as/authorize?...&response_mode=pi.flow` → the flow (and the `ST` cookie);
//! 2. `POST /{env}/flows/{flowId}` `usernamePassword.check` → `COMPLETED` (`signin`) or
//!    `OTP_REQUIRED` (`signin-mfa`, a passcode was sent to the EMAIL device);
//!    - `signin-mfa` only: `GET /v1/environments/{env}/outbox?filter=to eq "<email>"&limit=1`
//!      (admin token; newest first) → the 6-digit passcode: test-harness overhead, a real user
//!      reads the email instead;
//!    - `signin-mfa` only: `POST /{env}/flows/{flowId}` `otp.check` `{"otp"}` → `COMPLETED`;
//! 3. `GET /{env}/as/resume?flowId=` → `authorizeResponse.code`;
//! 4. `POST /{env}/as/token` `grant_type=authorization_code` (HTTP Basic) → the tokens.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap};
use hyper::{Method, Request};
use serde_json::{Value, json};

use crate::{Conn, Target, call_json};

pub const REDIRECT_URI: &str = "https://app.example.com/cb";
const REDIRECT_URI_ENC: &str = "https%3A%2F%2Fapp.example.com%2Fcb";
/// The steps of one `signin` iteration, for the error counts and step timings.
pub const STEPS: [&str; 4] = [
    "authorize",
    "flow usernamePassword.check",
    "resume",
    "token",
];
/// The steps of one `signin-mfa` iteration.
pub const MFA_STEPS: [&str; 6] = [
    "authorize",
    "flow usernamePassword.check",
    "outbox read (harness)",
    "flow otp.check",
    "resume",
    "token",
];
/// Lanyard sends at most this many passcodes to one device in 15 minutes (`LIMIT_EXCEEDED`
/// after that), so a `signin-mfa` run may sign each user in at most this often.
pub const MAX_SIGNINS_PER_MFA_USER: usize = 5;

/// What the `signin-mfa` scenario needs to read passcodes: the outbox and the admin token.
pub struct Mfa {
    /// `{apiPath}/environments/{envId}/outbox`.
    outbox_path: String,
    /// `Bearer <admin token>`.
    bearer: String,
}

pub struct SignIn {
    /// `/{envId}` (behind the public URL's path, if any).
    env_prefix: String,
    client_id: String,
    basic: String,
    users: Vec<String>,
    password: String,
    next: AtomicUsize,
    /// `Some` for `signin-mfa`.
    mfa: Option<Mfa>,
    /// Failed measured iterations by the step that failed (indexed like `steps()`).
    pub step_errors: Vec<AtomicU64>,
    /// Total microseconds and count of the steps that succeeded in measured iterations.
    step_us: Vec<AtomicU64>,
    step_ok: Vec<AtomicU64>,
    /// The first few failures, for the report.
    pub samples: Mutex<Vec<String>>,
}

/// Why an iteration failed.
pub struct Failure {
    pub step: usize,
    pub message: String,
    /// The connection is unusable (transport error): open a new one.
    pub broken: bool,
}

/// A cookie jar for one iteration: name → value, from `Set-Cookie`.
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn store(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(header::SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let pair = v.split(';').next().unwrap_or_default().trim();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let expired = v
                .split(';')
                .any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            self.0.retain(|(n, _)| n != name);
            if !expired && !value.is_empty() {
                self.0.push((name.to_string(), value.to_string()));
            }
        }
    }

    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }
}

impl SignIn {
    fn request(
        &self,
        t: &Target,
        method: Method,
        path: &str,
        jar: Option<&Jar>,
        headers: &[(header::HeaderName, &str)],
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, t.host.as_str());
        if let Some(c) = jar.and_then(Jar::header) {
            b = b.header(header::COOKIE, c);
        }
        for (k, v) in headers {
            b = b.header(k, *v);
        }
        b.body(Full::new(body)).expect("valid request")
    }

    /// The step names of this scenario.
    pub fn steps(&self) -> &'static [&'static str] {
        if self.mfa.is_some() {
            &MFA_STEPS
        } else {
            &STEPS
        }
    }

    /// Mean milliseconds of each step over the measured iterations (the successful steps).
    pub fn step_means_ms(&self) -> Vec<(&'static str, f64, u64)> {
        self.steps()
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let n = self.step_ok[i].load(Ordering::Relaxed);
                let us = self.step_us[i].load(Ordering::Relaxed);
                (
                    *name,
                    if n > 0 {
                        us as f64 / n as f64 / 1000.0
                    } else {
                        0.0
                    },
                    n,
                )
            })
            .collect()
    }

    /// One whole sign-in of the next user, on `conn`; `measured`: count the step timings.
    pub async fn iterate(
        &self,
        conn: &mut Conn,
        t: &Target,
        measured: bool,
    ) -> Result<(), Failure> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let user = &self.users[n % self.users.len()];
        let mut jar = Jar::default();
        let fail = |step: usize, message: String| Failure {
            step,
            message,
            broken: false,
        };
        let send = |step: usize, e: anyhow::Error| Failure {
            step,
            message: format!("{e:#}"),
            broken: true,
        };
        let mut started = Instant::now();
        let mut done = |step: usize| {
            let now = Instant::now();
            if measured {
                let us = now.duration_since(started).as_micros() as u64;
                self.step_us[step].fetch_add(us, Ordering::Relaxed);
                self.step_ok[step].fetch_add(1, Ordering::Relaxed);
            }
            started = now;
        };
        let p = &self.env_prefix;
        // The step numbers after the password: two more with MFA.
        let (resume_step, token_step) = if self.mfa.is_some() { (4, 5) } else { (2, 3) };
        if self.mfa.is_some() && n >= MAX_SIGNINS_PER_MFA_USER * self.users.len() {
            return Err(fail(
                1,
                format!(
                    "sign-in {} would be the {}th of {user} in this run, over Lanyard's limit of {MAX_SIGNINS_PER_MFA_USER} passcodes per device in 15 minutes: use more --users",
                    n + 1,
                    n / self.users.len() + 1
                ),
            ));
        }

        // 1. authorize (pi.flow): the flow and the ST cookie.
        let path = format!(
            "{p}/as/authorize?client_id={}&response_type=code&response_mode=pi.flow&scope=openid%20profile&redirect_uri={REDIRECT_URI_ENC}",
            self.client_id
        );
        let req = self.request(t, Method::GET, &path, None, &[], Bytes::new());
        let (st, headers, body) = conn.send_full(req).await.map_err(|e| send(0, e))?;
        jar.store(&headers);
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if st != 200 {
            return Err(fail(0, format!("{st} {}", String::from_utf8_lossy(&body))));
        }
        let Some(flow_id) = v["id"].as_str() else {
            return Err(fail(0, format!("no flow id: {v}")));
        };
        if !jar.has("ST") {
            return Err(fail(0, "no ST cookie".into()));
        }
        let flow_path = format!("{p}/flows/{flow_id}");
        done(0);

        // 2. usernamePassword.check: the password hash.
        let body = Bytes::from(json!({ "username": user, "password": self.password }).to_string());
        let req = self.request(
            t,
            Method::POST,
            &flow_path,
            Some(&jar),
            &[(
                header::CONTENT_TYPE,
                "application/vnd.pingidentity.usernamePassword.check+json",
            )],
            body,
        );
        let (st, headers, body) = conn.send_full(req).await.map_err(|e| send(1, e))?;
        jar.store(&headers);
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let want = if self.mfa.is_some() {
            "OTP_REQUIRED"
        } else {
            "COMPLETED"
        };
        if st != 200 || v["status"] != want {
            return Err(fail(1, format!("{st} {}", String::from_utf8_lossy(&body))));
        }
        done(1);

        if let Some(mfa) = &self.mfa {
            // 2a. The passcode from the outbox (what the user would read in the email): the
            // newest message to the user's address. Test-harness overhead, not part of a sign-in.
            let path = format!(
                "{}?filter=to%20eq%20%22{}%40example.com%22&limit=1",
                mfa.outbox_path, user
            );
            let req = self.request(
                t,
                Method::GET,
                &path,
                None,
                &[(header::AUTHORIZATION, mfa.bearer.as_str())],
                Bytes::new(),
            );
            let (st, _, body) = conn.send_full(req).await.map_err(|e| send(2, e))?;
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let text = v["_embedded"]["messages"][0]["body"]
                .as_str()
                .unwrap_or_default();
            let Some(otp) = digits_in(text, 6).filter(|_| st == 200) else {
                return Err(fail(2, format!("{st} {}", String::from_utf8_lossy(&body))));
            };
            done(2);

            // 2b. otp.check: the passcode (a salted SHA-256 compare on the server).
            let req = self.request(
                t,
                Method::POST,
                &flow_path,
                Some(&jar),
                &[(
                    header::CONTENT_TYPE,
                    "application/vnd.pingidentity.otp.check+json",
                )],
                Bytes::from(json!({ "otp": otp }).to_string()),
            );
            let (st, headers, body) = conn.send_full(req).await.map_err(|e| send(3, e))?;
            jar.store(&headers);
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if st != 200 || v["status"] != "COMPLETED" {
                return Err(fail(3, format!("{st} {}", String::from_utf8_lossy(&body))));
            }
            done(3);
        }

        // 3. resume: the authorization response.
        let req = self.request(
            t,
            Method::GET,
            &format!("{p}/as/resume?flowId={flow_id}"),
            Some(&jar),
            &[],
            Bytes::new(),
        );
        let (st, headers, body) = conn
            .send_full(req)
            .await
            .map_err(|e| send(resume_step, e))?;
        jar.store(&headers);
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let Some(code) = v["authorizeResponse"]["code"]
            .as_str()
            .filter(|_| st == 200)
        else {
            return Err(fail(
                resume_step,
                format!("{st} {}", String::from_utf8_lossy(&body)),
            ));
        };
        done(resume_step);

        // 4. token: the code for the tokens.
        let form =
            format!("grant_type=authorization_code&code={code}&redirect_uri={REDIRECT_URI_ENC}");
        let req = self.request(
            t,
            Method::POST,
            &format!("{p}/as/token"),
            None,
            &[
                (header::AUTHORIZATION, self.basic.as_str()),
                (header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
            ],
            Bytes::from(form),
        );
        let (st, _, body) = conn.send_full(req).await.map_err(|e| send(token_step, e))?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if st != 200 || !v["access_token"].is_string() || !v["id_token"].is_string() {
            return Err(fail(
                token_step,
                format!("{st} {}", String::from_utf8_lossy(&body)),
            ));
        }
        done(token_step);
        Ok(())
    }

    pub fn record(&self, f: &Failure) {
        self.step_errors[f.step].fetch_add(1, Ordering::Relaxed);
        let mut s = self.samples.lock().unwrap();
        if s.len() < 5 {
            let mut m = f.message.clone();
            m.truncate(300);
            s.push(format!("{}: {m}", self.steps()[f.step]));
        }
    }
}

/// The first run of exactly `len` ASCII digits in `text`.
fn digits_in(text: &str, len: usize) -> Option<String> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == len {
                return Some(text[start..i].to_string());
            }
        } else {
            i += 1;
        }
    }
    None
}

fn ok(st: u16, want: u16, what: &str, body: &Value) -> anyhow::Result<()> {
    if st != want {
        bail!("{what}: {st} {body}");
    }
    Ok(())
}

/// Creates the environment, the application, its grant and the users (with `mfa`: the LOGIN +
/// MFA sign-on policy, and per user `mfaEnabled` and an EMAIL device); returns the scenario and
/// the environment's management path (for the clean-up).
#[allow(clippy::too_many_arguments)]
pub async fn setup(
    conn: &mut Conn,
    t: &Target,
    api_prefix: &str,
    auth_prefix: &str,
    token: &str,
    users: usize,
    password: &str,
    user_connections: usize,
    mfa: bool,
) -> anyhow::Result<(SignIn, String)> {
    let started = Instant::now();
    let name = format!(
        "bench-{}-{}",
        if mfa { "signin-mfa" } else { "signin" },
        uuid::Uuid::new_v4()
    );
    let (st, env) = call_json(
        conn,
        t,
        Method::POST,
        &format!("{api_prefix}/environments"),
        token,
        Some(json!({ "name": name, "type": "SANDBOX", "region": "NA" })),
    )
    .await?;
    ok(st, 201, "creating the environment", &env)?;
    let env_id = env["id"].as_str().unwrap_or_default().to_string();
    let env_path = format!("{api_prefix}/environments/{env_id}");

    let (st, app) = call_json(
        conn,
        t,
        Method::POST,
        &format!("{env_path}/applications"),
        token,
        Some(json!({
            "name": "Bench Web App",
            "enabled": true,
            "type": "WEB_APP",
            "protocol": "OPENID_CONNECT",
            "grantTypes": ["AUTHORIZATION_CODE"],
            "responseTypes": ["CODE"],
            "tokenEndpointAuthMethod": "CLIENT_SECRET_BASIC",
            "redirectUris": [REDIRECT_URI],
        })),
    )
    .await?;
    ok(st, 201, "creating the application", &app)?;
    let app_id = app["id"].as_str().unwrap_or_default().to_string();
    let client_id = app["clientId"].as_str().unwrap_or(&app_id).to_string();

    let (st, res) = call_json(
        conn,
        t,
        Method::GET,
        &format!("{env_path}/resources?filter=name%20eq%20%22openid%22"),
        token,
        None,
    )
    .await?;
    ok(st, 200, "finding the openid resource", &res)?;
    let openid = res["_embedded"]["resources"][0]["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no openid resource: {res}"))?
        .to_string();
    let (st, scopes) = call_json(
        conn,
        t,
        Method::GET,
        &format!("{env_path}/resources/{openid}/scopes"),
        token,
        None,
    )
    .await?;
    ok(st, 200, "listing the openid scopes", &scopes)?;
    let profile = scopes["_embedded"]["scopes"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "profile"))
        .and_then(|s| s["id"].as_str())
        .ok_or_else(|| anyhow!("no profile scope: {scopes}"))?
        .to_string();
    let (st, grant) = call_json(
        conn,
        t,
        Method::POST,
        &format!("{env_path}/applications/{app_id}/grants"),
        token,
        Some(json!({ "resource": { "id": openid }, "scopes": [{ "id": profile }] })),
    )
    .await?;
    ok(st, 201, "granting openid profile", &grant)?;
    let (st, secret) = call_json(
        conn,
        t,
        Method::GET,
        &format!("{env_path}/applications/{app_id}/secret"),
        token,
        None,
    )
    .await?;
    ok(st, 200, "reading the application secret", &secret)?;
    let secret = secret["secret"]
        .as_str()
        .ok_or_else(|| anyhow!("no secret: {secret}"))?
        .to_string();

    if mfa {
        // LOGIN, then MULTI_FACTOR_AUTHENTICATION by email, for this application.
        let (st, pol) = call_json(
            conn,
            t,
            Method::POST,
            &format!("{env_path}/signOnPolicies"),
            token,
            Some(json!({ "name": "BenchLoginThenMFA" })),
        )
        .await?;
        ok(st, 201, "creating the sign-on policy", &pol)?;
        let pol_id = pol["id"].as_str().unwrap_or_default().to_string();
        for action in [
            json!({ "priority": 1, "type": "LOGIN" }),
            json!({ "priority": 2, "type": "MULTI_FACTOR_AUTHENTICATION", "email": { "enabled": true } }),
        ] {
            let (st, a) = call_json(
                conn,
                t,
                Method::POST,
                &format!("{env_path}/signOnPolicies/{pol_id}/actions"),
                token,
                Some(action),
            )
            .await?;
            ok(st, 201, "creating a sign-on policy action", &a)?;
        }
        let (st, a) = call_json(
            conn,
            t,
            Method::POST,
            &format!("{env_path}/applications/{app_id}/signOnPolicyAssignments"),
            token,
            Some(json!({ "priority": 1, "signOnPolicy": { "id": pol_id } })),
        )
        .await?;
        ok(st, 201, "assigning the sign-on policy", &a)?;
    }

    // The users, on a few connections (every create hashes the password); with MFA also
    // mfaEnabled and an EMAIL device each.
    let usernames: Vec<String> = (0..users).map(|i| format!("bench-user-{i}")).collect();
    let next = std::sync::Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..user_connections.clamp(1, users.max(1)) {
        let (t, token, path, next, names, password) = (
            t.clone(),
            token.to_string(),
            format!("{env_path}/users"),
            next.clone(),
            usernames.clone(),
            password.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&t).await?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(name) = names.get(i) else {
                    return anyhow::Ok(());
                };
                let (st, user) = call_json(
                    &mut conn,
                    &t,
                    Method::POST,
                    &path,
                    &token,
                    Some(json!({
                        "username": name,
                        "email": format!("{name}@example.com"),
                        "name": { "given": "Bench", "family": format!("User {i}") },
                        "password": { "value": password },
                    })),
                )
                .await?;
                ok(st, 201, &format!("creating user {name}"), &user)?;
                if !mfa {
                    continue;
                }
                let user_path = format!("{path}/{}", user["id"].as_str().unwrap_or_default());
                let (st, r) = call_json(
                    &mut conn,
                    &t,
                    Method::PUT,
                    &format!("{user_path}/mfaEnabled"),
                    &token,
                    Some(json!({ "mfaEnabled": true })),
                )
                .await?;
                ok(st, 200, &format!("enabling MFA for {name}"), &r)?;
                let (st, d) = call_json(
                    &mut conn,
                    &t,
                    Method::POST,
                    &format!("{user_path}/devices"),
                    &token,
                    Some(json!({ "type": "EMAIL", "email": format!("{name}@example.com") })),
                )
                .await?;
                ok(st, 201, &format!("adding an EMAIL device for {name}"), &d)?;
                if d["status"] != "ACTIVE" {
                    bail!("the EMAIL device of {name} is not ACTIVE: {d}");
                }
            }
        }));
    }
    for task in tasks {
        task.await.context("user creation task")??;
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
    );
    let steps = if mfa { MFA_STEPS.len() } else { STEPS.len() };
    let counters = || (0..steps).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
    let signin = SignIn {
        env_prefix: format!("{auth_prefix}/{env_id}"),
        client_id,
        basic,
        users: usernames,
        password: password.to_string(),
        next: AtomicUsize::new(0),
        mfa: mfa.then(|| Mfa {
            outbox_path: format!("{env_path}/outbox"),
            bearer: format!("Bearer {token}"),
        }),
        step_errors: counters(),
        step_us: counters(),
        step_ok: counters(),
        samples: Mutex::new(Vec::new()),
    };
    // One sign-in now, so that a broken setup fails here with a clear message.
    if let Err(f) = signin.iterate(conn, t, false).await {
        bail!(
            "the first sign-in failed at {}: {}",
            signin.steps()[f.step],
            f.message
        );
    }
    eprintln!(
        "setup        environment {env_id}, application {app_id}, {users} users{} ({:.1} s)",
        if mfa {
            " with MFA and an EMAIL device"
        } else {
            ""
        },
        started.elapsed().as_secs_f64()
    );
    Ok((signin, env_path))
}

/// The `hash` scenario: `n` argon2id hashes (after one warm-up hash) on this thread, with a
/// fresh random salt each. `reuse_memory: false`: the plain `PasswordHasher::hash_password`,
/// which allocates and initialises the `memory_kib` block array for every hash (what Lanyard did
/// before it reused memory); `true`: Lanyard's own `passwords::hash_sync`, exactly as the server
/// hashes and verifies (one reused block array per thread, on huge pages where Linux offers
/// them). Returns hashes per second, wall-clock and per CPU-second.
pub fn hash_rate(
    n: u32,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    reuse_memory: bool,
) -> anyhow::Result<(f64, f64)> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(memory_kib, iterations, parallelism, None)
        .map_err(|e| anyhow!("argon2 parameters: {e}"))?;
    let lanyard_params = lanyard::engine::passwords::HashParams {
        memory_kib,
        iterations,
        parallelism,
    };
    let a2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let one = || -> anyhow::Result<()> {
        let password = "Gr33n-Lanyard-Walrus!42";
        if reuse_memory {
            lanyard::engine::passwords::hash_sync(password, lanyard_params)?;
        } else {
            // 16 random bytes (Lanyard uses OsRng; uuid v4 draws from the same OS source).
            let salt = uuid::Uuid::new_v4();
            let salt = SaltString::encode_b64(salt.as_bytes()).map_err(|e| anyhow!("{e}"))?;
            a2.hash_password(password.as_bytes(), &salt)
                .map_err(|e| anyhow!("{e}"))?;
        }
        Ok(())
    };
    one()?;
    let start = Instant::now();
    let cpu_start = libc_cpu_time();
    for _ in 0..n.max(1) {
        one()?;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = libc_cpu_time().zip(cpu_start).map(|(b, a)| b - a);
    let rate = n.max(1) as f64 / wall;
    let cpu_rate = cpu
        .filter(|c| *c > 0.0)
        .map(|c| n.max(1) as f64 / c)
        .unwrap_or(rate);
    Ok((rate, cpu_rate))
}

/// This thread's CPU time in seconds, from /proc (Linux), if available.
fn libc_cpu_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    Some((utime + stime) / 100.0)
}
