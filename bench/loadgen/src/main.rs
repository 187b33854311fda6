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
//! - `signin`: a whole redirectless sign-in per iteration (authorize with `pi.flow`, the
//!   `usernamePassword.check` action, resume, the code for tokens) for many users; see
//!   `signin.rs`. Throughput and latency are per sign-in.
//! - `signin-mfa`: the same with a LOGIN + email MFA sign-on policy: after the password the
//!   flow is `OTP_REQUIRED`, the passcode is read from the outbox (admin token; harness
//!   overhead) and sent with `otp.check`. At least `--requests / 4` users, so that no user gets
//!   more than Lanyard's 5 passcodes per device in 15 minutes.
//! - `hash`: no server; times argon2id hashes at Lanyard's parameters on one thread, the
//!   physical limit of sign-ins per core (`--reuse-memory`: one block array for all hashes, as
//!   Lanyard hashes now).

mod signin;

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
    /// a whole sign-in: authorize (pi.flow), usernamePassword.check, resume, code → tokens
    #[value(name = "signin")]
    SignIn,
    /// a sign-in with email MFA: authorize, usernamePassword.check, the passcode from the
    /// outbox, otp.check, resume, code → tokens
    #[value(name = "signin-mfa")]
    SignInMfa,
    /// no server: argon2id hashes per second on one thread
    Hash,
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
    /// Lanyard's admin-credentials.json (environmentId, clientId, clientSecret, tokenEndpoint,
    /// apiPath, authPath); required except for `hash`.
    #[arg(long, required_if_eq_any = [("scenario", "token"), ("scenario", "user-read"), ("scenario", "signin"), ("scenario", "signin-mfa")])]
    credentials: Option<std::path::PathBuf>,
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
    /// Keep the environment the user-read and signin scenarios create.
    #[arg(long)]
    keep: bool,
    /// signin: users to create (one iteration signs in the next one in turn). signin-mfa: at
    /// least --requests / 4 (rounded up) and enough for the warm-up, as every user may get only
    /// 5 passcodes in 15 minutes.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// signin: every user's password.
    #[arg(long, default_value = "Gr33n-Lanyard-Walrus!42")]
    password: String,
    /// hash: hashes to time (after one warm-up hash).
    #[arg(long, default_value_t = 20)]
    hashes: u32,
    /// hash: threads hashing at the same time (each does --hashes); more threads than CPUs
    /// shows what oversubscription costs (cache and memory).
    #[arg(long, default_value_t = 1)]
    hash_threads: usize,
    /// hash: reuse one argon2 block array for all hashes of a thread (as Lanyard does) instead
    /// of the plain API's fresh allocation per hash.
    #[arg(long)]
    reuse_memory: bool,
    /// hash: argon2id memory cost in KiB (Lanyard's default).
    #[arg(long, default_value_t = 19456)]
    argon2_memory_kib: u32,
    /// hash: argon2id iterations (Lanyard's default).
    #[arg(long, default_value_t = 2)]
    argon2_iterations: u32,
    /// hash: argon2id parallelism (Lanyard's default).
    #[arg(long, default_value_t = 1)]
    argon2_parallelism: u32,
    /// The server's process id (same machine): report its VmRSS / VmHWM from /proc/PID/status
    /// after setup, at the --rss-at counts and at the end.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Completed iterations (warm-up included) after which to read the server's memory, e.g. 2000,10000.
    #[arg(long, value_delimiter = ',')]
    rss_at: Vec<u64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.scenario == Scenario::Hash {
        return run_hash(&args);
    }
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
        let (status, _, body) = self.send_full(req).await?;
        Ok((status, body))
    }

    async fn send_full(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> anyhow::Result<(u16, header::HeaderMap, Bytes)> {
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok((status, parts.headers, body))
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

/// What one iteration does.
enum Work {
    /// One request.
    Call(Call),
    /// A whole sign-in (four requests; six with MFA).
    SignIn(signin::SignIn),
}

struct Setup {
    work: Work,
    /// What to delete afterwards (path, token).
    cleanup: Option<(String, String)>,
    describe: String,
}

async fn setup(args: &Args, t: &Target, creds: &Value) -> anyhow::Result<Setup> {
    let file = args
        .credentials
        .as_deref()
        .unwrap_or(std::path::Path::new("?"));
    let s = |k: &str| -> anyhow::Result<String> {
        creds[k]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{k} missing in {}", file.display()))
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
        Scenario::Hash => unreachable!("no setup for hash"),
        Scenario::SignIn | Scenario::SignInMfa => {
            let mfa = args.scenario == Scenario::SignInMfa;
            let users = signin_users(args);
            let v: Value = serde_json::from_slice(&body)?;
            let token = v["access_token"]
                .as_str()
                .ok_or_else(|| anyhow!("no access_token"))?
                .to_string();
            let auth = creds["authPath"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("http://{}", t.host));
            let (_, auth_prefix) = split_url(&auth)?;
            let (si, env_path) = signin::setup(
                &mut conn,
                t,
                &api_prefix,
                auth_prefix.trim_end_matches('/'),
                &token,
                users,
                &args.password,
                4,
                mfa,
            )
            .await?;
            let describe = if mfa {
                format!(
                    "authorize (pi.flow) + usernamePassword.check + passcode from the outbox (harness) + otp.check + resume + authorization_code token, {users} users with an EMAIL device"
                )
            } else {
                format!(
                    "authorize (pi.flow) + usernamePassword.check + resume + authorization_code token, {users} users"
                )
            };
            Ok(Setup {
                work: Work::SignIn(si),
                cleanup: (!args.keep).then_some((env_path, token)),
                describe,
            })
        }
        Scenario::Token => Ok(Setup {
            work: Work::Call(tc),
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
                work: Work::Call(Call {
                    method: Method::GET,
                    path: user_path.clone(),
                    headers: vec![(header::AUTHORIZATION, format!("Bearer {token}"))],
                    body: Bytes::new(),
                }),
                cleanup: (!args.keep).then_some((env_path, token)),
                describe: format!("GET {user_path} (bearer)"),
            })
        }
    }
}

/// Users for the sign-in scenarios: `--users`; for `signin-mfa` at least `--requests / 4`
/// (rounded up), and enough for the measured sign-ins plus the warm-up (assumed at most 200
/// sign-ins/s) and the setup's check at 5 sign-ins per user: Lanyard sends at most 5 passcodes
/// per device in 15 minutes. (An iteration that would exceed it fails at once with a message.)
fn signin_users(args: &Args) -> usize {
    let users = args.users.max(1);
    if args.scenario != Scenario::SignInMfa {
        return users;
    }
    let per_user = signin::MAX_SIGNINS_PER_MFA_USER as u64;
    // Without --requests, the run is bounded by --duration: assume up to 200 sign-ins/s.
    let requests = args
        .requests
        .unwrap_or((args.duration.max(0.0) * 200.0).ceil() as u64);
    let warmup = (args.warmup.max(0.0) * 200.0).ceil() as u64 + 1;
    let need = requests
        .div_ceil(per_user - 1)
        .max((requests + warmup).div_ceil(per_user));
    users.max(need as usize)
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u32>,
    errors: u64,
    last_done: Option<Instant>,
}

/// A labelled (VmRSS, VmHWM) reading in KiB, if /proc was readable.
type Reading = (String, Option<(u64, u64)>);

/// Memory readings of the server at iteration counts.
struct Memory {
    pid: Option<u32>,
    at: Vec<u64>,
    completed: AtomicU64,
    readings: std::sync::Mutex<Vec<Reading>>,
}

impl Memory {
    fn read(&self, label: String) {
        if let Some(pid) = self.pid {
            let r = proc_memory(pid);
            self.readings.lock().unwrap().push((label, r));
        }
    }

    fn completed_one(&self) {
        let n = self.completed.fetch_add(1, Ordering::Relaxed) + 1;
        if self.at.contains(&n) {
            self.read(format!("after {n} iterations"));
        }
    }
}

/// CPU time (user + system) in seconds from a /proc …/stat file (USER_HZ = 100).
fn stat_cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let (u, s): (f64, f64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    Some((u + s) / 100.0)
}

/// The server process's CPU time, and the part of it its password hashing threads
/// (`lanyard-hash-N`) used: the rest is everything besides the hash, measured in the same
/// window whatever the machine's speed does meanwhile.
fn proc_cpu_seconds(pid: u32) -> Option<(f64, f64)> {
    let total = stat_cpu_seconds(&format!("/proc/{pid}/stat"))?;
    let mut hashing = 0.0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.starts_with("lanyard-hash") {
            hashing += stat_cpu_seconds(&dir.join("stat").to_string_lossy()).unwrap_or(0.0);
        }
    }
    Some((total, hashing))
}

/// (VmRSS, VmHWM) in KiB from /proc/PID/status.
fn proc_memory(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        s.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

async fn worker(
    t: Target,
    work: Arc<Work>,
    measure_from: Instant,
    stop_at: Instant,
    budget: Option<u64>,
    issued: Arc<AtomicU64>,
    memory: Arc<Memory>,
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
        let c = conn.as_mut().unwrap();
        let ok = match &*work {
            Work::Call(call) => match c.send(call.build(&t.host)).await {
                Ok((status, _)) => (200..300).contains(&status),
                Err(_) => {
                    conn = None;
                    false
                }
            },
            Work::SignIn(si) => match si.iterate(c, &t, measured).await {
                Ok(()) => true,
                Err(f) => {
                    if measured {
                        si.record(&f);
                    }
                    if f.broken {
                        conn = None;
                    }
                    false
                }
            },
        };
        let done = Instant::now();
        memory.completed_one();
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

fn run_hash(args: &Args) -> anyhow::Result<()> {
    let (m, t, p) = (
        args.argon2_memory_kib,
        args.argon2_iterations,
        args.argon2_parallelism,
    );
    let k = args.hash_threads.max(1);
    let reuse = args.reuse_memory;
    let (rate, cpu_rate) = if k == 1 {
        signin::hash_rate(args.hashes, m, t, p, reuse)?
    } else {
        let start = std::time::Instant::now();
        let hs: Vec<_> = (0..k)
            .map(|_| {
                let n = args.hashes;
                std::thread::spawn(move || signin::hash_rate(n, m, t, p, reuse))
            })
            .collect();
        let mut cpu_time = 0.0;
        for h in hs {
            let (_, cpu_rate) = h.join().map_err(|_| anyhow!("hash thread panicked"))??;
            cpu_time += args.hashes as f64 / cpu_rate;
        }
        // Wall-clock: every thread also did one warm-up hash in the window.
        let total = (k as u32 * args.hashes) as f64;
        let wall_total = (k as u32 * (args.hashes + 1)) as f64;
        (wall_total / start.elapsed().as_secs_f64(), total / cpu_time)
    };
    println!(
        "scenario     hash: argon2id m={m} KiB, t={t}, p={p}, {k} thread(s), {} hashes each, {}",
        args.hashes,
        if reuse {
            "one reused block array per thread"
        } else {
            "fresh memory per hash (plain API)"
        }
    );
    println!(
        "throughput   {rate:.1} hashes/s wall-clock ({:.1} ms per hash), {cpu_rate:.1} per CPU-second",
        1000.0 / rate
    );
    if args.json {
        println!(
            "RESULT {}",
            json!({
                "scenario": "hash", "hashes": args.hashes, "hash_threads": k, "reuse_memory": reuse,
                "memory_kib": m, "iterations": t,
                "parallelism": p, "rps": rate, "cpu_rps": cpu_rate, "ms_per_hash": 1000.0 / rate,
            })
        );
    }
    Ok(())
}

async fn run(args: Args, threads: usize) -> anyhow::Result<()> {
    let path = args
        .credentials
        .clone()
        .ok_or_else(|| anyhow!("--credentials is required"))?;
    let creds: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
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
    let memory = Arc::new(Memory {
        pid: args.server_pid,
        at: args.rss_at.clone(),
        completed: AtomicU64::new(0),
        readings: Default::default(),
    });
    memory.read("after setup".into());

    let issued = Arc::new(AtomicU64::new(0));
    let work = Arc::new(setup.work);
    let begin = Instant::now();
    let measure_from = begin + Duration::from_secs_f64(args.warmup);
    let stop_at = measure_from + Duration::from_secs_f64(args.duration);
    // The server's CPU time over the measured window (same machine only).
    let cpu_from = args.server_pid.map(|pid| {
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            proc_cpu_seconds(pid)
        })
    });
    let mut handles = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency.max(1) {
        handles.push(tokio::spawn(worker(
            target.clone(),
            work.clone(),
            measure_from,
            stop_at,
            args.requests,
            issued.clone(),
            memory.clone(),
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
    let server_cpu = match (cpu_from, args.server_pid) {
        (Some(h), Some(pid)) => h
            .await
            .ok()
            .flatten()
            .zip(proc_cpu_seconds(pid))
            .map(|(a, b)| (b.0 - a.0, b.1 - a.1)),
        _ => None,
    };
    let (server_cpu, hash_cpu) = (server_cpu.map(|c| c.0), server_cpu.map(|c| c.1));
    memory.read(format!(
        "at the end ({} iterations)",
        memory.completed.load(Ordering::Relaxed)
    ));
    let (name, unit) = match args.scenario {
        Scenario::Token => ("token", "requests"),
        Scenario::UserRead => ("user-read", "requests"),
        Scenario::SignIn => ("signin", "sign-ins"),
        Scenario::SignInMfa => ("signin-mfa", "sign-ins"),
        Scenario::Hash => unreachable!(),
    };
    println!("scenario     {name}: {}", setup.describe);
    println!(
        "load         {} connections, {} client threads, {:.1} s warm-up, {:.2} s measured",
        args.concurrency, threads, args.warmup, elapsed
    );
    println!("{unit:<12} {ok} ok, {errors} errors");
    println!("throughput   {rps:.1} {unit}/s");
    println!("latency ms   p50 {p50:.2}  p90 {p90:.2}  p99 {p99:.2}  max {max:.2}");
    if let Some(c) = server_cpu {
        println!(
            "server CPU   {c:.2} s in the measured window ({:.2} cores), {:.1} {unit} per server CPU-second",
            c / elapsed,
            if c > 0.0 { ok as f64 / c } else { 0.0 }
        );
        if let Some(h) = hash_cpu.filter(|h| *h > 0.0 && ok > 0) {
            println!(
                "server CPU   hashing threads {h:.2} s ({:.0} % of the server's CPU): {:.2} ms per {}, the rest {:.2} ms",
                100.0 * h / c,
                1000.0 * h / ok as f64,
                unit.trim_end_matches('s'),
                1000.0 * (c - h) / ok as f64
            );
        }
    }
    let mut step_errors = json!({});
    let mut step_ms = json!({});
    if let Work::SignIn(si) = &*work {
        // Mean time of each step of the successful steps (measured iterations), in order.
        let means = si.step_means_ms();
        let total: f64 = means.iter().map(|(_, ms, _)| ms).sum();
        for (step, ms, n) in &means {
            step_ms[*step] = json!(ms);
            println!(
                "step mean    {step:<28} {ms:8.2} ms ({:4.1} % of the steps' sum, {n} done)",
                if total > 0.0 { 100.0 * ms / total } else { 0.0 }
            );
        }
        for (i, step) in si.steps().iter().enumerate() {
            let n = si.step_errors[i].load(Ordering::Relaxed);
            step_errors[*step] = json!(n);
            if n > 0 {
                println!("errors at    {step}: {n}");
            }
        }
        for s in si.samples.lock().unwrap().iter() {
            println!("  e.g.       {s}");
        }
    }
    let mut mem = Vec::new();
    for (label, r) in memory.readings.lock().unwrap().iter() {
        match r {
            Some((rss, hwm)) => {
                println!(
                    "server mem   {label}: VmRSS {:.1} MiB, VmHWM {:.1} MiB",
                    *rss as f64 / 1024.0,
                    *hwm as f64 / 1024.0
                );
                mem.push(json!({ "at": label, "vmrss_kib": rss, "vmhwm_kib": hwm }));
            }
            None => println!("server mem   {label}: (not readable)"),
        }
    }
    if args.json {
        println!(
            "RESULT {}",
            json!({
                "scenario": name, "concurrency": args.concurrency, "threads": threads,
                "seconds": elapsed, "ok": ok, "errors": errors, "rps": rps,
                "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": max,
                "step_errors": step_errors, "step_mean_ms": step_ms, "memory": mem,
                "server_cpu_s": server_cpu, "server_hash_cpu_s": hash_cpu,
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
