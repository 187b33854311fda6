//! Verifying access tokens this environment issued (userinfo, introspection, self-service).

use serde_json::Value;

use super::issue;
use crate::clock;
use crate::engine::keys::UnverifiedJwt;
use crate::error::ApiResult;
use crate::state::App;

/// The verified claims of an access token issued by `env_id`, or None if it is not valid now.
pub async fn verify(app: &App, env_id: &str, token: &str) -> ApiResult<Option<Value>> {
    let Some(jwt) = UnverifiedJwt::parse(token) else {
        return Ok(None);
    };
    let kid = jwt.kid().unwrap_or_default().to_string();
    let Some(key) = app
        .keys
        .by_kid(&app.store, &app.master, env_id, &kid)
        .await?
    else {
        return Ok(None);
    };
    let Some(claims) = jwt.verify(&key) else {
        return Ok(None);
    };
    if claims["iss"].as_str() != Some(app.issuer(env_id).as_str()) {
        return Ok(None);
    }
    if claims["exp"].as_i64().is_none_or(|e| e <= clock::unix()) {
        return Ok(None);
    }
    if let Some(jti) = claims["jti"].as_str()
        && issue::is_revoked(app, jti).await?
    {
        return Ok(None);
    }
    Ok(Some(claims))
}

pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
}
