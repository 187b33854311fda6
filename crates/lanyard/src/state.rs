//! What every handler shares: the store, settings, master key and caches.

use std::sync::Arc;

use crate::config::Settings;
use crate::engine::keys::KeyCache;
use crate::engine::secrets::MasterKey;
use crate::store::Store;

pub struct App {
    pub store: Store,
    pub settings: Settings,
    pub master: MasterKey,
    pub keys: KeyCache,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

pub type AppState = Arc<App>;

impl App {
    pub fn public_url(&self) -> &str {
        &self.settings.public_url
    }
    /// `{public}/v1/environments/{env}` + `rest`.
    pub fn env_href(&self, env_id: &str, rest: &str) -> String {
        format!(
            "{}/v1/environments/{env_id}{rest}",
            self.settings.public_url
        )
    }
    pub fn issuer(&self, env_id: &str) -> String {
        format!("{}/{env_id}/as", self.settings.public_url)
    }
}
