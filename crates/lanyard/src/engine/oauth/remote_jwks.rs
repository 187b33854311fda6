//! Client keys published at an application's `jwksUrl`: fetched over HTTP(S) through the
//! outbound guard (public addresses only unless `--outbound-allow-private`; 5-second timeout,
//! no redirects), at most 256 KiB, kept for five minutes per URL, so a burst of
//! `private_key_jwt` authentications costs one fetch. A URL that fails is not cached.

use std::sync::LazyLock;
use std::time::Duration;

use serde_json::Value;

use crate::cache::TtlCache;
use crate::engine::outbound;
use crate::state::App;

const MAX_BYTES: usize = 256 * 1024;
pub const TTL: Duration = Duration::from_secs(300);

static CACHE: LazyLock<TtlCache<String, Value>> = LazyLock::new(|| TtlCache::new(TTL, 10_000));

/// The JWKS at `url`, from the cache or fetched. The error says why, for the server log
/// only: it describes the key server's answer or address, which a token request (made by
/// anyone) must not learn.
pub async fn get(app: &App, url: &str) -> Result<Value, String> {
    if let Some(v) = CACHE.get(&url.to_string()) {
        return Ok(v);
    }
    let mut resp = outbound::request(app, reqwest::Method::GET, url)
        .map_err(|r| r.to_string())?
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| outbound::reason(&e))?;
    if !resp.status().is_success() {
        return Err(format!("it answered {}", resp.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("its answer could not be read: {}", outbound::reason(&e)))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BYTES {
            return Err("its answer is larger than 256 KiB".into());
        }
    }
    let v: Value =
        serde_json::from_slice(&body).map_err(|_| "its answer is not JSON".to_string())?;
    if !v["keys"].is_array() {
        return Err("its answer is not a JWK set".into());
    }
    CACHE.put(url.to_string(), v.clone(), None);
    Ok(v)
}
