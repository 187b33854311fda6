//! In-process test harness: a Lanyard app on a fresh SQLite file (and on PostgreSQL when
//! LANYARD_TEST_DATABASE_URL is set), driven through the router with `tower::ServiceExt::oneshot`.
#![allow(dead_code)]

pub mod mfa;
pub mod signon;

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use lanyard::config::{LogFormat, Settings};
use lanyard::state::AppState;

/// Fixed so that every test process on one PostgreSQL database can read the shared secrets.
pub const TEST_MASTER_KEY: &str = "bGFueWFyZC10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=";
pub const ADMIN_CLIENT_ID: &str = "0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e";
pub const ADMIN_CLIENT_SECRET: &str = "lanyard-test-admin-secret";

/// The databases every store/API test runs on.
pub fn backends() -> Vec<Option<String>> {
    let mut v = vec![None];
    if let Ok(url) = std::env::var("LANYARD_TEST_DATABASE_URL")
        && !url.is_empty()
    {
        v.push(Some(url));
    }
    v
}

pub struct TestApp {
    pub app: AppState,
    pub router: Router,
    /// The Administrators environment.
    pub admin_env: String,
    /// A worker token with the organization-wide admin roles.
    pub token: String,
    pub backend: &'static str,
    _dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap_or_default().to_string()
    }
    /// The first error detail's code, for PingOne error bodies.
    pub fn detail_code(&self) -> &str {
        self.body["details"][0]["code"].as_str().unwrap_or_default()
    }
}

impl TestApp {
    /// `db`: None for a fresh SQLite file, or a PostgreSQL URL.
    pub async fn new(db: Option<String>) -> TestApp {
        Self::with_public_url(db, "http://lanyard.test").await
    }

    /// Like `new`, with the public URL the app puts in links and redirects (for a test that
    /// serves the app on a real listener).
    pub async fn with_public_url(db: Option<String>, public_url: &str) -> TestApp {
        Self::with_settings(db, public_url, |_| {}).await
    }

    /// Like `with_public_url`, with other settings changed by `tweak` (e.g. `smtp_url`).
    pub async fn with_settings(
        db: Option<String>,
        public_url: &str,
        tweak: impl FnOnce(&mut Settings),
    ) -> TestApp {
        // Server-side errors show in a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let data_dir: PathBuf = dir.path().to_path_buf();
        let backend = if db.is_some() { "postgres" } else { "sqlite" };
        let database_url =
            db.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("lanyard.db").display()));
        let mut settings = Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir,
            database_url,
            public_url: public_url.into(),
            log_format: LogFormat::Text,
            log: "warn".into(),
            admin_client_id: Some(ADMIN_CLIENT_ID.into()),
            admin_client_secret: Some(ADMIN_CLIENT_SECRET.into()),
            master_key: Some(TEST_MASTER_KEY.into()),
            // Cheap hashing keeps the suite fast; production defaults are tested in passwords.rs.
            hash: lanyard::engine::passwords::HashParams {
                memory_kib: 1024,
                iterations: 1,
                parallelism: 1,
            },
            // Tests call mock servers on 127.0.0.1 (jwksUrl, phone providers); a test of the
            // outbound guard turns this off in `tweak`.
            outbound_allow_private: true,
            // The suites read delivered codes from the outbox, a development aid.
            dev: true,
            outbox: true,
            ..Settings::default()
        };
        tweak(&mut settings);
        let app = lanyard::server::build(settings).await.expect("app starts");
        let router = lanyard::http::router(app.clone());
        let creds: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("admin-credentials.json")).unwrap(),
        )
        .unwrap();
        let admin_env = creds["environmentId"].as_str().unwrap().to_string();
        let mut t = TestApp {
            app,
            router,
            admin_env: admin_env.clone(),
            token: String::new(),
            backend,
            _dir: dir,
        };
        t.token = t
            .client_token(&admin_env, ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET)
            .await;
        t
    }

    pub async fn client_token(&self, env: &str, id: &str, secret: &str) -> String {
        let r = self
            .form(
                &format!("/{env}/as/token"),
                Some((id, secret)),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "token: {}", r.text);
        r.body["access_token"].as_str().unwrap().to_string()
    }

    /// Sends a request; `body` is sent as JSON with `content_type` (or none when `None`).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(&self.token), None, None)
            .await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, Some(&self.token), None, None)
            .await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(
            Method::POST,
            path,
            Some(&self.token),
            Some("application/json"),
            Some(body.to_string().into_bytes()),
        )
        .await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(
            Method::PUT,
            path,
            Some(&self.token),
            Some("application/json"),
            Some(body.to_string().into_bytes()),
        )
        .await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(
            Method::PATCH,
            path,
            Some(&self.token),
            Some("application/json"),
            Some(body.to_string().into_bytes()),
        )
        .await
    }
    /// POST/PUT with a custom media type (PingOne action content types).
    pub async fn action(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Option<Value>,
    ) -> Resp {
        self.send(
            method,
            path,
            Some(&self.token),
            Some(content_type),
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    pub async fn form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        fields: &[(&str, &str)],
    ) -> Resp {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            use base64::Engine;
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            req = req.header("authorization", format!("Basic {b}"));
        }
        let body = serde_urlencoded::to_string(fields).unwrap();
        let resp = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&bytes).to_string(),
        }
    }

    /// Creates a fresh environment (with its default contents) and returns its id.
    pub async fn new_env(&self) -> String {
        let name = format!("test-{}", uuid::Uuid::new_v4());
        let r = self
            .post(
                "/v1/environments",
                json!({ "name": name, "type": "SANDBOX", "region": "NA" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.id()
    }

    pub fn env_path(env: &str, rest: &str) -> String {
        format!("/v1/environments/{env}{rest}")
    }
}

/// Asserts a PingOne error body: status, top-level code, and (optionally) the first detail code.
pub fn assert_error(r: &Resp, status: StatusCode, code: &str, detail: Option<&str>) {
    assert_eq!(r.status, status, "body: {}", r.text);
    assert_eq!(r.body["code"], code, "body: {}", r.text);
    assert!(
        r.body["id"].as_str().is_some_and(|s| !s.is_empty()),
        "error id: {}",
        r.text
    );
    assert!(r.body["message"].is_string(), "message: {}", r.text);
    if let Some(d) = detail {
        assert!(
            r.body["details"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["code"] == d)),
            "expected detail {d}: {}",
            r.text
        );
    }
}
