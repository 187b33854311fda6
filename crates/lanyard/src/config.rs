//! Settings, from flags, then environment variables, then a TOML file (`--config`), then defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

#[derive(Parser, Debug)]
#[command(
    name = "lanyard",
    version,
    about = "A self-hosted identity platform that speaks the PingOne platform API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server: the management API under /v1 and the authentication API under /{envId}.
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (keys as the flags, with underscores).
    #[arg(long, env = "LANYARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "LANYARD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Folder for the SQLite database, the master key and admin-credentials.json [default: ./lanyard-data].
    #[arg(long, env = "LANYARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER@HOST/DB [default: a SQLite file in the data dir].
    #[arg(long, env = "LANYARD_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Base of every issuer, link and _links.href, e.g. https://id.example.com [default: http://<listen>].
    #[arg(long, env = "LANYARD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Log format [default: text].
    #[arg(long, env = "LANYARD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. info or lanyard=debug [default: info].
    #[arg(long, env = "LANYARD_LOG")]
    pub log: Option<String>,
    /// Client id (a UUID) of the bootstrap admin worker application [default: random on first start].
    #[arg(long, env = "LANYARD_ADMIN_CLIENT_ID")]
    pub admin_client_id: Option<String>,
    /// Client secret of the bootstrap admin worker application [default: random on first start].
    #[arg(long, env = "LANYARD_ADMIN_CLIENT_SECRET", hide_env_values = true)]
    pub admin_client_secret: Option<String>,
    /// Base64 of the 32-byte key that encrypts secrets at rest [default: <data-dir>/master.key].
    #[arg(long, env = "LANYARD_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// argon2id memory cost in KiB [default: 19456].
    #[arg(long, env = "LANYARD_ARGON2_MEMORY_KIB")]
    pub argon2_memory_kib: Option<u32>,
    /// argon2id iterations [default: 2].
    #[arg(long, env = "LANYARD_ARGON2_ITERATIONS")]
    pub argon2_iterations: Option<u32>,
    /// SMTP server for email delivery, e.g. smtp://user:pass@mail.example.com:587?tls=required
    /// or smtps://...; without it, messages are only recorded in the outbox.
    #[arg(long, env = "LANYARD_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The From address of emails [default: Lanyard <noreply@localhost>].
    #[arg(long, env = "LANYARD_SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// Development mode: turns on the development aids (the outbox) [default: false].
    #[arg(
        long,
        env = "LANYARD_DEV",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub dev: Option<bool>,
    /// Record every delivered message (passcodes, recovery codes) in the environments'
    /// outbox, readable by full administrators [default: on with --dev, else off].
    #[arg(
        long,
        env = "LANYARD_OUTBOX",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub outbox: Option<bool>,
    /// Let outbound calls (applications' jwksUrl, the custom phone provider) reach loopback,
    /// private and other non-public addresses; for tests and closed networks [default: false].
    #[arg(
        long,
        env = "LANYARD_OUTBOUND_ALLOW_PRIVATE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub outbound_allow_private: Option<bool>,
    /// A second address serving only /metrics and /healthz, without authentication (keep it
    /// off the public network) [default: none].
    #[arg(long, env = "LANYARD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve /metrics on the public listener to `Authorization: Bearer <token>`; without it
    /// the public listener answers /metrics with 404 [default: none].
    #[arg(long, env = "LANYARD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    public_url: Option<String>,
    log_format: Option<LogFormat>,
    log: Option<String>,
    admin_client_id: Option<String>,
    admin_client_secret: Option<String>,
    master_key: Option<String>,
    argon2_memory_kib: Option<u32>,
    argon2_iterations: Option<u32>,
    smtp_url: Option<String>,
    smtp_from: Option<String>,
    dev: Option<bool>,
    outbox: Option<bool>,
    outbound_allow_private: Option<bool>,
    metrics_listen: Option<SocketAddr>,
    metrics_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// Without a trailing slash.
    pub public_url: String,
    pub log_format: LogFormat,
    pub log: String,
    pub admin_client_id: Option<String>,
    pub admin_client_secret: Option<String>,
    pub master_key: Option<String>,
    pub hash: crate::engine::passwords::HashParams,
    pub smtp_url: Option<String>,
    pub smtp_from: String,
    /// Development mode (`--dev`): the default of the development aids below.
    pub dev: bool,
    /// Whether deliveries are recorded in the outbox and `/outbox` is served.
    pub outbox: bool,
    /// Outbound calls may reach non-public addresses (see `engine::outbound`).
    pub outbound_allow_private: bool,
    /// The metrics-only listener.
    pub metrics_listen: Option<SocketAddr>,
    /// The bearer token for /metrics on the public listener; None: not served there.
    pub metrics_token: Option<String>,
}

impl Default for Settings {
    /// The defaults of `lanyard serve` (for embedding and tests; `resolve` reads the real ones).
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".parse().expect("valid default"),
            data_dir: PathBuf::from("./lanyard-data"),
            database_url: "sqlite://./lanyard-data/lanyard.db".into(),
            public_url: "http://127.0.0.1:8080".into(),
            log_format: LogFormat::Text,
            log: "info".into(),
            admin_client_id: None,
            admin_client_secret: None,
            master_key: None,
            hash: crate::engine::passwords::HashParams::default(),
            smtp_url: None,
            smtp_from: DEFAULT_FROM.into(),
            dev: false,
            outbox: false,
            outbound_allow_private: false,
            metrics_listen: None,
            metrics_token: None,
        }
    }
}

const DEFAULT_FROM: &str = "Lanyard <noreply@localhost>";

impl Settings {
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Settings> {
        let file: FileSettings = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileSettings::default(),
        };
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid default"));
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./lanyard-data"));
        let database_url = args
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("lanyard.db").display()));
        let public_url = args
            .public_url
            .or(file.public_url)
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_string();
        if !public_url.starts_with("http://") && !public_url.starts_with("https://") {
            anyhow::bail!("--public-url must start with http:// or https://");
        }
        if let Some(id) = args
            .admin_client_id
            .as_ref()
            .or(file.admin_client_id.as_ref())
        {
            uuid::Uuid::parse_str(id).context("LANYARD_ADMIN_CLIENT_ID must be a UUID")?;
        }
        let metrics_token = args.metrics_token.or(file.metrics_token);
        // An empty token would let `Authorization: Bearer ` through.
        if metrics_token.as_ref().is_some_and(|t| t.trim().is_empty()) {
            anyhow::bail!("--metrics-token must not be empty");
        }
        let defaults = crate::engine::passwords::HashParams::default();
        let dev = args.dev.or(file.dev).unwrap_or(false);
        Ok(Settings {
            listen,
            data_dir,
            database_url,
            public_url,
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
            admin_client_id: args
                .admin_client_id
                .or(file.admin_client_id)
                .map(|s| s.to_lowercase()),
            admin_client_secret: args.admin_client_secret.or(file.admin_client_secret),
            master_key: args.master_key.or(file.master_key),
            hash: crate::engine::passwords::HashParams {
                memory_kib: args
                    .argon2_memory_kib
                    .or(file.argon2_memory_kib)
                    .unwrap_or(defaults.memory_kib),
                iterations: args
                    .argon2_iterations
                    .or(file.argon2_iterations)
                    .unwrap_or(defaults.iterations),
                parallelism: 1,
            },
            smtp_url: args.smtp_url.or(file.smtp_url),
            smtp_from: args
                .smtp_from
                .or(file.smtp_from)
                .unwrap_or_else(|| DEFAULT_FROM.into()),
            dev,
            outbox: args.outbox.or(file.outbox).unwrap_or(dev),
            outbound_allow_private: args
                .outbound_allow_private
                .or(file.outbound_allow_private)
                .unwrap_or(false),
            metrics_listen: args.metrics_listen.or(file.metrics_listen),
            metrics_token,
        })
    }
}
