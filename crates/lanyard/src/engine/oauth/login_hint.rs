//! `login_hint_token` (PingOne's MFA-only and transaction-approval sign-ons): a JWT that the
//! application signs with its client secret (HS256/384/512) to say who the user is, so the
//! flow starts at the second factor. `iss` must be the client id, `aud` the issuer, `exp` in
//! the future (at most an hour ahead), and `sub` a user id or username of the
//! environment; nested or encrypted tokens (`cty`, `enc`) are refused.

use serde_json::Value;

use super::client_jwt::{self, JwtError};
use crate::error::{ApiError, ApiResult, Detail};
use crate::resources::users;
use crate::state::App;
use crate::store::Doc;

fn invalid(message: &str) -> ApiError {
    ApiError::one(Detail::invalid("login_hint_token", message))
}

/// Verifies the token and returns the user it names.
pub async fn user_of(app: &App, client: &Doc, token: &str) -> ApiResult<Doc> {
    let v = match client_jwt::verify(
        app,
        client,
        token,
        "login_hint_token",
        client_jwt::HMAC_ALGS,
    )
    .await
    {
        Ok(v) => v,
        Err(JwtError::Invalid(m)) => return Err(invalid(&m)),
        Err(JwtError::Server(e)) => return Err(e),
    };
    if v.header.get("cty").is_some() || v.header.get("enc").is_some() {
        return Err(invalid(
            "The login_hint_token must not be nested or encrypted.",
        ));
    }
    let c = &v.claims;
    let client_id = client.data["clientId"].as_str().unwrap_or(&client.id);
    if c["iss"].as_str() != Some(client_id) {
        return Err(invalid("The login_hint_token's iss must be the client_id."));
    }
    let issuer = app.issuer(&client.env_id);
    let aud_ok = match &c["aud"] {
        Value::String(s) => *s == issuer,
        Value::Array(a) => a.iter().any(|x| x.as_str() == Some(issuer.as_str())),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid("The login_hint_token's aud must be the issuer."));
    }
    client_jwt::lifetime(c, "login_hint_token").map_err(|m| invalid(&m))?;
    let sub = c["sub"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("The login_hint_token must have a sub."))?;
    let mut reader = app.store.read();
    let by_id = match uuid::Uuid::parse_str(sub) {
        Ok(_) => reader.get(users::KIND, &client.env_id, sub).await?,
        Err(_) => None,
    };
    let user = match by_id {
        Some(u) => Some(u),
        None => {
            reader
                .find_unique(&client.env_id, users::KIND, "username", sub)
                .await?
        }
    };
    user.filter(users::is_enabled)
        .ok_or_else(|| invalid("The login_hint_token does not name a user who can sign on."))
}
