//! Starting and stopping the server: storage, bootstrap, listeners (public, and metrics when
//! `--metrics-listen` is set), graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{LogFormat, Settings};
use crate::engine::secrets::MasterKey;
use crate::state::{App, AppState};
use crate::store::Store;

/// The process-wide Prometheus recorder (a recorder can be installed only once).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    ],
                )
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

pub fn init_logging(settings: &Settings) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&settings.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Opens the store, applies migrations, bootstraps on first start.
pub async fn build(settings: Settings) -> anyhow::Result<AppState> {
    // The data dir and its files are private to the user running Lanyard; files left wider
    // open by an earlier start are narrowed before SQLite opens the database (its new -wal
    // and -shm files take the database file's mode) and again once everything exists.
    crate::fsutil::private_dir(&settings.data_dir)?;
    let private_files = private_files(&settings);
    crate::fsutil::restrict_files(&private_files);
    let master = MasterKey::load_or_create(settings.master_key.as_deref(), &settings.data_dir)?;
    let store = Store::connect(&settings.database_url).await?;
    let app = Arc::new(App::new(store, settings, master, metrics_handle()));
    crate::engine::bootstrap::run(&app).await?;
    crate::fsutil::restrict_files(&private_files);
    Ok(app)
}

/// The files that hold secrets: `master.key`, `admin-credentials.json`, and an SQLite
/// database with its journal, -wal and -shm files.
fn private_files(settings: &Settings) -> Vec<PathBuf> {
    let mut files = vec![
        settings.data_dir.join("master.key"),
        settings.data_dir.join("admin-credentials.json"),
    ];
    if let Some(db) = crate::store::sqlite_file(&settings.database_url) {
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = db.clone().into_os_string();
            name.push(suffix);
            files.push(PathBuf::from(name));
        }
        files.push(db);
    }
    files
}

/// The file of an SQLite URL (`sqlite://path`, `sqlite:path`, an optional `?query`), as the
/// store reads it; None for PostgreSQL.
async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listen = settings.listen;
    let metrics_listen = settings.metrics_listen;
    let app = build(settings).await?;
    let listener = bind(listen).await?;
    let metrics_listener = match metrics_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let local = listener.local_addr()?;
    tracing::info!(address = %local, public_url = %app.public_url(), database = %app.store.dialect_name(), "lanyard listening");
    if let Some(l) = &metrics_listener {
        tracing::info!(address = %l.local_addr()?, "metrics listening");
    }
    let router = crate::http::router(app.clone());
    // Expired runtime state (flows, sessions, codes, revoked ids) is swept once a minute.
    let sweeper = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                match app.store.runtime_sweep().await {
                    Ok(n) if n > 0 => tracing::debug!(removed = n, "swept expired runtime state"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = ?e, "sweeping runtime state failed"),
                }
            }
        })
    };
    // One signal stops both listeners: each finishes its in-flight requests.
    let (stop, stopped) = watch::channel(());
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(());
    });
    let public = axum::serve(listener, router).with_graceful_shutdown(until(stopped.clone()));
    let metrics = async {
        match metrics_listener {
            Some(l) => {
                axum::serve(l, crate::http::ops::metrics_router(app.clone()))
                    .with_graceful_shutdown(until(stopped.clone()))
                    .await
            }
            None => Ok(()),
        }
    };
    tokio::try_join!(public.into_future(), metrics)?;
    sweeper.abort();
    tracing::info!("shutting down: in-flight requests finished, closing the database");
    app.store.close().await;
    Ok(())
}

/// Resolves when the shutdown signal has been sent.
async fn until(mut stopped: watch::Receiver<()>) {
    let _ = stopped.changed().await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
