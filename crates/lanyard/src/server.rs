//! Starting and stopping the server: storage, bootstrap, listener, graceful shutdown.

use std::sync::{Arc, OnceLock};

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

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
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let master = MasterKey::load_or_create(settings.master_key.as_deref(), &settings.data_dir)?;
    let store = Store::connect(&settings.database_url).await?;
    let app = Arc::new(App::new(store, settings, master, metrics_handle()));
    crate::engine::bootstrap::run(&app).await?;
    Ok(app)
}

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listen = settings.listen;
    let app = build(settings).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, public_url = %app.public_url(), database = %app.store.dialect_name(), "lanyard listening");
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
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    sweeper.abort();
    tracing::info!("shutting down: in-flight requests finished, closing the database");
    app.store.close().await;
    Ok(())
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
