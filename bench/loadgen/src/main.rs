//! `lanyard-bench`: a closed-loop load generator for a running Lanyard over plain HTTP/1.1.
//!
//! A fixed number of workers (default 32), each with its own keep-alive connection, send the
//! next request as soon as the previous answer is read, for a fixed duration (after a short
//! warm-up) or until a request count is reached. It reports throughput and latency percentiles.
//!
//! Scenarios:
//! - `token`: `POST {tokenEndpoint}` with `grant_type=client_credentials` and HTTP Basic
//!   client authentication (the admin worker from `admin-credentials.json`).
//! - `user-read`: `GET /v1/environments/{env}/users/{id}` with a bearer token; the tool first
//!   creates a sandbox environment and a user through the API (and deletes them afterwards).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Scenario {
    /// client_credentials token issuance (HTTP Basic)
    Token,
    /// GET one user with a bearer token
    UserRead,
}

#[derive(Parser, Debug)]
#[command(
    name = "lanyard-bench",
    version,
    about = "Load generator for Lanyard (plain HTTP/1.1, closed loop, fixed concurrency)"
)]
struct Args {
    /// The scenario to run.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Lanyard's admin-credentials.json (environmentId, clientId, clientSecret, tokenEndpoint, apiPath).
    #[arg(long)]
    credentials: std::path::PathBuf,
    /// Where to connect, e.g. http://127.0.0.1:8080 [default: the host in tokenEndpoint].
    #[arg(long)]
    base_url: Option<String>,
    /// Concurrent workers, one keep-alive connection each.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    /// Stop after this many measured requests (whichever comes first with --duration).
    #[arg(long)]
    requests: Option<u64>,
    /// Warm-up seconds, not measured.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Runtime threads [default: the CPUs this process may run on].
    #[arg(long)]
    threads: Option<usize>,
    /// Also print the result as one JSON line (prefixed `RESULT `).
    #[arg(long)]
    json: bool,
    /// Keep the environment the user-read scenario creates.
    #[arg(long)]
    keep: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?
        .block_on(run(args, threads))
}

/// `http://host:port/path` → (`host:port`, `/path`). TLS is deliberately unsupported.
fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("only http:// URLs are supported: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((authority.to_string(), path.to_string()))
}

#[derive(Clone)]
struct Target {
    /// `host:port` to connect to.
    connect: String,
    /// Host header (the public URL's authority).
    host: String,
}

struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(t: &Target) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(&t.connect)
            .await
            .with_context(|| format!("connecting to {}", t.connect))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender })
    }

    async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// One request, reusable: rebuilt cheaply for every send.
#[derive(Clone)]
struct Call {
    method: Method,
    path: String,
    headers: Vec<(header::HeaderName, String)>,
    body: Bytes,
}

impl Call {
    fn build(&self, host: &str) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(header::HOST, host);
        for (k, v) in &self.headers {
            b = b.header(k, v.as_str());
        }
        b.body(Full::new(self.body.clone())).expect("valid request")
    }
}

async fn call_json(
    conn: &mut Conn,
    t: &Target,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut headers = vec![(header::AUTHORIZATION, format!("Bearer {token}"))];
    if body.is_some() {
        headers.push((header::CONTENT_TYPE, "application/json".into()));
    }
    let call = Call {
        method,
        path: path.to_string(),
        headers,
        body: body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
    };
    let (status, bytes) = conn.send(call.build(&t.host)).await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

fn token_call(token_path: &str, client_id: &str, secret: &str) -> Call {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    Call {
        method: Method::POST,
        path: token_path.to_string(),
        headers: vec![
            (header::AUTHORIZATION, format!("Basic {basic}")),
            (
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded".into(),
            ),
        ],
        body: Bytes::from_static(b"grant_type=client_credentials"),
    }
}

struct Setup {
    call: Call,
    /// What to delete afterwards (path, token).
    cleanup: Option<(String, String)>,
    describe: String,
}

async fn setup(args: &Args, t: &Target, creds: &Value) -> anyhow::Result<Setup> {
    let s = |k: &str| -> anyhow::Result<String> {
        creds[k]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{k} missing in {}", args.credentials.display()))
    };
    let (_, token_path) = split_url(&s("tokenEndpoint")?)?;
    let (_, api_prefix) = split_url(&s("apiPath")?)?;
    let api_prefix = api_prefix.trim_end_matches('/').to_string();
    let tc = token_call(&token_path, &s("clientId")?, &s("clientSecret")?);
    let mut conn = Conn::open(t).await?;
    let (status, body) = conn.send(tc.build(&t.host)).await?;
    if status != 200 {
        bail!(
            "token request failed: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    match args.scenario {
        Scenario::Token => Ok(Setup {
            call: tc,
            cleanup: None,
            describe: format!("POST {token_path} (client_credentials, HTTP Basic)"),
        }),
        Scenario::UserRead => {
            let v: Value = serde_json::from_slice(&body)?;
            let token = v["access_token"]
                .as_str()
                .ok_or_else(|| anyhow!("no access_token"))?
                .to_string();
            let name = format!("bench-{}", uuid::Uuid::new_v4());
            let (st, env) = call_json(
                &mut conn,
                t,
                Method::POST,
                &format!("{api_prefix}/environments"),
                &token,
                Some(json!({ "name": name, "type": "SANDBOX", "region": "NA" })),
            )
            .await?;
            if st != 201 {
                bail!("creating the environment: {st} {env}");
            }
            let env_id = env["id"].as_str().unwrap_or_default().to_string();
            let env_path = format!("{api_prefix}/environments/{env_id}");
            let (st, user) = call_json(
                &mut conn,
                t,
                Method::POST,
                &format!("{env_path}/users"),
                &token,
                Some(json!({
                    "username": "bench.user",
                    "email": "bench.user@example.com",
                    "name": { "given": "Bench", "family": "User" },
                })),
            )
            .await?;
            if st != 201 {
                bail!("creating the user: {st} {user}");
            }
            let user_path = format!(
                "{env_path}/users/{}",
                user["id"].as_str().unwrap_or_default()
            );
            let (st, _) = call_json(&mut conn, t, Method::GET, &user_path, &token, None).await?;
            if st != 200 {
                bail!("reading the user: {st}");
            }
            Ok(Setup {
                call: Call {
                    method: Method::GET,
                    path: user_path.clone(),
                    headers: vec![(header::AUTHORIZATION, format!("Bearer {token}"))],
                    body: Bytes::new(),
                },
                cleanup: (!args.keep).then_some((env_path, token)),
                describe: format!("GET {user_path} (bearer)"),
            })
        }
    }
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u32>,
    errors: u64,
    last_done: Option<Instant>,
}

async fn worker(
    t: Target,
    call: Arc<Call>,
    measure_from: Instant,
    stop_at: Instant,
    budget: Option<u64>,
    issued: Arc<AtomicU64>,
) -> WorkerResult {
    let mut res = WorkerResult::default();
    let mut conn: Option<Conn> = None;
    loop {
        let start = Instant::now();
        if start >= stop_at {
            break;
        }
        let measured = start >= measure_from;
        if measured
            && let Some(max) = budget
            && issued.fetch_add(1, Ordering::Relaxed) >= max
        {
            break;
        }
        if conn.is_none() {
            match Conn::open(&t).await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    if measured {
                        res.errors += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let outcome = conn.as_mut().unwrap().send(call.build(&t.host)).await;
        let done = Instant::now();
        let ok = match outcome {
            Ok((status, _)) => (200..300).contains(&status),
            Err(_) => {
                conn = None;
                false
            }
        };
        if measured {
            if ok {
                let us = done.duration_since(start).as_micros().min(u32::MAX as u128) as u32;
                res.latencies_us.push(us);
            } else {
                res.errors += 1;
            }
            res.last_done = Some(done);
        }
    }
    res
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

async fn run(args: Args, threads: usize) -> anyhow::Result<()> {
    let creds: Value = serde_json::from_str(
        &std::fs::read_to_string(&args.credentials)
            .with_context(|| format!("reading {}", args.credentials.display()))?,
    )?;
    let token_endpoint = creds["tokenEndpoint"]
        .as_str()
        .ok_or_else(|| anyhow!("tokenEndpoint missing"))?;
    let (public_authority, _) = split_url(token_endpoint)?;
    let connect = match &args.base_url {
        Some(u) => split_url(u)?.0,
        None => public_authority.clone(),
    };
    let target = Target {
        connect,
        host: public_authority,
    };
    let setup = setup(&args, &target, &creds).await?;

    let issued = Arc::new(AtomicU64::new(0));
    let call = Arc::new(setup.call);
    let begin = Instant::now();
    let measure_from = begin + Duration::from_secs_f64(args.warmup);
    let stop_at = measure_from + Duration::from_secs_f64(args.duration);
    let mut handles = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency.max(1) {
        handles.push(tokio::spawn(worker(
            target.clone(),
            call.clone(),
            measure_from,
            stop_at,
            args.requests,
            issued.clone(),
        )));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut last = measure_from;
    for h in handles {
        let r = h.await?;
        lat.extend_from_slice(&r.latencies_us);
        errors += r.errors;
        if let Some(d) = r.last_done {
            last = last.max(d);
        }
    }
    let elapsed = last.duration_since(measure_from).as_secs_f64().max(1e-9);
    lat.sort_unstable();
    let ok = lat.len() as u64;
    let rps = ok as f64 / elapsed;
    let (p50, p90, p99, max) = (
        percentile(&lat, 0.50),
        percentile(&lat, 0.90),
        percentile(&lat, 0.99),
        lat.last().map(|v| *v as f64 / 1000.0).unwrap_or(0.0),
    );
    let name = match args.scenario {
        Scenario::Token => "token",
        Scenario::UserRead => "user-read",
    };
    println!("scenario     {name}: {}", setup.describe);
    println!(
        "load         {} connections, {} client threads, {:.1} s warm-up, {:.2} s measured",
        args.concurrency, threads, args.warmup, elapsed
    );
    println!("requests     {ok} ok, {errors} errors");
    println!("throughput   {rps:.0} requests/s");
    println!("latency ms   p50 {p50:.2}  p90 {p90:.2}  p99 {p99:.2}  max {max:.2}");
    if args.json {
        println!(
            "RESULT {}",
            json!({
                "scenario": name, "concurrency": args.concurrency, "threads": threads,
                "seconds": elapsed, "ok": ok, "errors": errors, "rps": rps,
                "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": max,
            })
        );
    }

    if let Some((path, token)) = setup.cleanup {
        let mut conn = Conn::open(&target).await?;
        let (st, body) = call_json(&mut conn, &target, Method::DELETE, &path, &token, None).await?;
        if st != 204 {
            eprintln!("warning: deleting {path}: {st} {body}");
        }
    }
    if ok == 0 {
        bail!("no request succeeded");
    }
    Ok(())
}
