//! Harness for the end-to-end tests that run the real `lanyard` binary: start it on a free
//! loopback port with a temporary data dir, wait for `/healthz`, stop it with SIGTERM, and talk
//! to it over plain HTTP with reqwest (redirects disabled, as the how-to guides require).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_lanyard");

/// A port that was free a moment ago (bind to port 0, read it, release it).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A running `lanyard serve` process. Killed (SIGKILL) on drop if still running, so a failed
/// test never leaves a server behind.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    /// `http://127.0.0.1:{port}` — also the public URL (the default for a loopback listener).
    pub base: String,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
}

impl Server {
    /// Starts `lanyard serve --listen 127.0.0.1:{port} --data-dir {data_dir}` with every
    /// inherited `LANYARD_*` variable removed and `env` added; stderr goes to a log file in
    /// `data_dir` (one per start, named after `label`).
    pub fn spawn(
        data_dir: &Path,
        port: u16,
        label: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Server {
        let log_path = data_dir.join(format!("server-{label}.log"));
        std::fs::create_dir_all(data_dir).unwrap();
        let log = std::fs::File::create(&log_path).expect("create log file");
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, _) in std::env::vars() {
            if k.starts_with("LANYARD_") {
                cmd.env_remove(&k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn lanyard");
        Server {
            child: Some(child),
            port,
            base: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
            log_path,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Polls `/healthz` until it answers 200 (up to 60 s: the first start generates keys and
    /// runs migrations); panics with the server log if the process exits first.
    pub async fn wait_healthy(&mut self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("{}/healthz", self.base);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "lanyard exited before becoming healthy ({status}); log:\n{}",
                    self.log()
                );
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status() == 200
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "lanyard did not become healthy in 60 s; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM (through `kill`, std has no signal API) and waits up to 30 s for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.pid();
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -TERM {pid} failed");
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!(
                    "lanyard did not exit within 30 s of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `DIR/admin-credentials.json`.
pub fn read_credentials(data_dir: &Path) -> Value {
    let text = std::fs::read_to_string(data_dir.join("admin-credentials.json"))
        .expect("admin-credentials.json exists");
    serde_json::from_str(&text).expect("admin-credentials.json is JSON")
}

/// A client_credentials token from `token_endpoint`, authenticating with HTTP Basic.
pub async fn client_token(
    http: &reqwest::Client,
    token_endpoint: &str,
    client_id: &str,
    secret: &str,
) -> String {
    let r = http
        .post(token_endpoint)
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "token: {body}");
    assert_eq!(body["token_type"], "Bearer", "token: {body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap_or_default().to_string()
    }
    /// The items of a HAL collection: `_embedded.{key}`.
    pub fn embedded(&self, key: &str) -> Vec<Value> {
        self.body["_embedded"][key]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.text);
        self
    }
}

/// The management API at `apiPath` with one bearer token.
pub struct Api {
    pub http: reqwest::Client,
    /// `{public}/v1`
    pub api_path: String,
    pub token: String,
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.api_path, path)
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(reqwest::Method::GET, path, None, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send(
            reqwest::Method::POST,
            path,
            Some("application/json"),
            Some(body),
        )
        .await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send(
            reqwest::Method::PUT,
            path,
            Some("application/json"),
            Some(body),
        )
        .await
    }
    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.send(
            reqwest::Method::PATCH,
            path,
            Some("application/json"),
            Some(body),
        )
        .await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(reqwest::Method::DELETE, path, None, None).await
    }
}
