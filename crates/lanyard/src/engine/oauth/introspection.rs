//! Token introspection (RFC 7662) and revocation (RFC 7009).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{bearer, issue};
use crate::engine::secrets::secret_eq;
use crate::engine::tokens::{self, ClientCredentials};
use crate::error::{ApiError, ApiResult, OAuthError};
use crate::resources::resources;
use crate::state::App;

/// Who is asking: an application, or a custom resource with its own secret.
pub enum Caller {
    Client { client_id: String },
    Resource { audience: String },
}

pub async fn authenticate(app: &App, env_id: &str, creds: &ClientCredentials) -> ApiResult<Caller> {
    match tokens::authenticate_client(app, env_id, creds).await {
        Ok(client) => Ok(Caller::Client {
            client_id: client.data["clientId"]
                .as_str()
                .unwrap_or(&client.id)
                .to_string(),
        }),
        // A client assertion authenticates an application only; say why it failed.
        Err(e) if creds.assertion.is_some() => Err(e),
        Err(_) => {
            // A custom resource authenticates with its id and its own secret.
            let invalid = || {
                ApiError::from(OAuthError::new(
                    "invalid_client",
                    "Client authentication failed.",
                ))
            };
            if uuid::Uuid::parse_str(&creds.client_id).is_err() {
                return Err(invalid());
            }
            let res = app
                .store
                .read()
                .get(resources::KIND, env_id, &creds.client_id)
                .await?
                .filter(|r| r.data["type"] == "CUSTOM")
                .ok_or_else(invalid)?;
            let sealed = res.secrets.as_deref().ok_or_else(invalid)?;
            let secret = app.master.decrypt_json(sealed)?;
            let given = creds.secret.as_deref().unwrap_or_default();
            if !secret["secret"]
                .as_str()
                .is_some_and(|s| secret_eq(s, given))
            {
                return Err(invalid());
            }
            Ok(Caller::Resource {
                audience: res.data["audience"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            })
        }
    }
}

#[derive(Deserialize)]
struct RefreshView {
    family: String,
    app_id: String,
    scopes: super::grants::ScopeSet,
    sign_on: issue::SignOn,
    used: bool,
    #[serde(default)]
    issued_ms: Option<i64>,
}

fn audience_has(claims: &Value, aud: &str) -> bool {
    match &claims["aud"] {
        Value::String(s) => s == aud,
        Value::Array(a) => a.iter().any(|v| v.as_str() == Some(aud)),
        _ => false,
    }
}

pub async fn introspect(app: &App, env_id: &str, caller: &Caller, token: &str) -> ApiResult<Value> {
    let inactive = json!({ "active": false });
    if let Some(claims) = bearer::verify(app, env_id, token).await? {
        let allowed = match caller {
            Caller::Client { client_id } => {
                claims["client_id"].as_str() == Some(client_id.as_str())
            }
            Caller::Resource { audience } => audience_has(&claims, audience),
        };
        if !allowed {
            return Ok(inactive);
        }
        let mut out = claims.as_object().cloned().unwrap_or_default();
        out.insert("active".into(), json!(true));
        out.insert("token_type".into(), json!("Bearer"));
        return Ok(Value::Object(out));
    }
    if let Some((item, r, client_id)) = find_refresh(app, env_id, token).await? {
        let mine = matches!(caller, Caller::Client { client_id: c } if *c == client_id);
        if !mine || r.used {
            return Ok(inactive);
        }
        let standing =
            super::code_flow::refresh_standing(app, env_id, &r.family, &r.sign_on, r.issued_ms)
                .await?;
        if !standing.family_live || !standing.session_live {
            return Ok(inactive);
        }
        return Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": client_id,
            "scope": r.scopes.all().join(" "),
            "sub": r.sign_on.user_id,
            "sid": r.sign_on.session_id,
            "exp": item.expires_at,
            "iss": app.issuer(env_id),
        }));
    }
    Ok(inactive)
}

/// A refresh token of this environment, with the client id of the application it was issued to.
async fn find_refresh(
    app: &App,
    env_id: &str,
    token: &str,
) -> ApiResult<Option<(crate::store::runtime::Item, RefreshView, String)>> {
    let Some(item) = app
        .store
        .runtime_get(issue::REFRESH_KIND, &issue::sha256_b64(token))
        .await?
        .filter(|i| i.env_id == env_id)
    else {
        return Ok(None);
    };
    let r: RefreshView = serde_json::from_value(item.data.clone()).map_err(ApiError::internal)?;
    let client = app
        .store
        .read()
        .get(crate::resources::applications::KIND, env_id, &r.app_id)
        .await?;
    let client_id = client
        .as_ref()
        .and_then(|c| c.data["clientId"].as_str())
        .unwrap_or(&r.app_id)
        .to_string();
    Ok(Some((item, r, client_id)))
}

/// Revokes a token of the calling client; unknown tokens are not an error (RFC 7009 §2.2).
pub async fn revoke(app: &App, env_id: &str, client_id: &str, token: &str) -> ApiResult<()> {
    if let Some(claims) = bearer::verify(app, env_id, token).await? {
        if claims["client_id"].as_str() == Some(client_id)
            && let (Some(jti), Some(exp)) = (claims["jti"].as_str(), claims["exp"].as_i64())
        {
            issue::revoke_jti(app, env_id, jti, exp).await?;
        }
        return Ok(());
    }
    if let Some((_, r, owner)) = find_refresh(app, env_id, token).await?
        && owner == client_id
    {
        super::code_flow::revoke_family(app, env_id, &r.family).await?;
    }
    Ok(())
}
