//! What every handler shares: the store, settings, master key and caches.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::TtlCache;
use crate::engine::authz::Actor;
use crate::store::Doc;

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
    /// Environments by id (their existence and organization are read on every request).
    pub environments: TtlCache<String, Doc>,
    /// Verified management API bearer tokens (by SHA-256) and their actors.
    pub actors: TtlCache<String, Actor>,
    /// Sign-on configuration read on every sign-in (applications, their grants, their sign-on
    /// policy and its actions), by a key naming what was read.
    pub sign_on_config: TtlCache<String, std::sync::Arc<Vec<Doc>>>,
}

/// How long hot entries are trusted before the database is asked again.
pub const CACHE_TTL: Duration = Duration::from_secs(2);

impl App {
    pub fn new(
        store: Store,
        settings: Settings,
        master: MasterKey,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> Self {
        App {
            store,
            settings,
            master,
            keys: KeyCache::default(),
            metrics,
            environments: TtlCache::new(CACHE_TTL, 10_000),
            actors: TtlCache::new(CACHE_TTL, 50_000),
            sign_on_config: TtlCache::new(CACHE_TTL, 50_000),
        }
    }
}

pub type AppState = Arc<App>;

impl App {
    /// After a management write: verified tokens are re-checked (roles, applications and users
    /// may have changed). Other processes see the change within `CACHE_TTL`.
    pub fn changed(&self) {
        self.actors.clear();
        self.sign_on_config.clear();
    }

    /// A configuration document by kind and id, through the sign-on configuration cache.
    pub async fn cached_doc(
        &self,
        kind: &str,
        env_id: &str,
        id: &str,
    ) -> crate::error::ApiResult<Option<Doc>> {
        let found = self
            .cached_config(format!("doc|{kind}|{env_id}|{id}"), || async {
                Ok(self
                    .store
                    .read()
                    .get(kind, env_id, id)
                    .await?
                    .into_iter()
                    .collect())
            })
            .await?;
        Ok(found.first().cloned())
    }

    /// The children of a configuration document (grants, sign-on policy assignments,
    /// actions), through the sign-on configuration cache.
    pub async fn cached_children(
        &self,
        kind: &str,
        env_id: &str,
        parent_id: &str,
    ) -> crate::error::ApiResult<std::sync::Arc<Vec<Doc>>> {
        self.cached_config(format!("children|{kind}|{env_id}|{parent_id}"), || async {
            self.store.read().children(kind, env_id, parent_id).await
        })
        .await
    }

    /// Documents from the sign-on configuration cache, or `load`ed and remembered under `key`.
    pub async fn cached_config<F, Fut>(
        &self,
        key: String,
        load: F,
    ) -> crate::error::ApiResult<std::sync::Arc<Vec<Doc>>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = crate::error::ApiResult<Vec<Doc>>>,
    {
        if let Some(v) = self.sign_on_config.get(&key) {
            return Ok(v);
        }
        let v = std::sync::Arc::new(load().await?);
        self.sign_on_config.put(key, v.clone(), None);
        Ok(v)
    }

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
