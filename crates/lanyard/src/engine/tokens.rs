//! Access tokens: issuing them (client_credentials for now) and turning a bearer token on the
//! management API back into an `Actor`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::clock;
use crate::engine::authz::{Actor, ActorKind};
use crate::engine::keys::UnverifiedJwt;
use crate::engine::oauth::client_jwt;
use crate::engine::oauth::grants::{self, ScopeSet};
use crate::engine::oauth::issue;
use crate::error::{ApiError, ApiResult, OAuthError};
use crate::resources::{applications, roles};
use crate::state::App;
use crate::store::Doc;

/// The audience of tokens for the platform (management) API, as PingOne issues it.
pub const PLATFORM_AUDIENCE: &str = "https://api.pingone.com";

/// Verifies a management API bearer token and loads the actor's role assignments.
pub async fn authenticate(app: &App, authorization: Option<&str>) -> ApiResult<Actor> {
    let unauthorized = |m: &str| ApiError::Unauthorized(m.to_string());
    let token = authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| unauthorized("An access token is required."))?;
    let jwt = UnverifiedJwt::parse(token)
        .ok_or_else(|| unauthorized("The access token is malformed."))?;
    let env_id = jwt
        .claims
        .get("env")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kid = jwt.kid().unwrap_or_default().to_string();
    if uuid::Uuid::parse_str(&env_id).is_err() {
        return Err(unauthorized("The access token is invalid."));
    }
    let key = app
        .keys
        .by_kid(&app.store, &app.master, &env_id, &kid)
        .await?
        .ok_or_else(|| unauthorized("The access token is invalid."))?;
    let claims = jwt
        .verify(&key)
        .ok_or_else(|| unauthorized("The access token is invalid."))?;
    let now = clock::unix();
    if claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_none_or(|exp| exp <= now)
    {
        return Err(unauthorized("The access token has expired."));
    }
    if claims.get("iss").and_then(Value::as_str) != Some(app.issuer(&env_id).as_str()) {
        return Err(unauthorized(
            "The access token was not issued by this server.",
        ));
    }
    if !audience_contains(&claims, PLATFORM_AUDIENCE) {
        return Err(unauthorized("The access token is not for the PingOne API."));
    }
    let org_id = claims
        .get("org")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let client_id = claims
        .get("client_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(sub) = claims.get("sub").and_then(Value::as_str) {
        // A signed-in user's token: only its `p1:*` self-service scopes, on its own user.
        if let Some(jti) = claims.get("jti").and_then(Value::as_str)
            && crate::engine::oauth::issue::is_revoked(app, jti).await?
        {
            return Err(unauthorized("The access token has been revoked."));
        }
        let user = crate::resources::users::enabled(app, &env_id, sub)
            .await?
            .ok_or_else(|| {
                unauthorized("The user of this access token no longer exists or is disabled.")
            })?;
        let scopes = claims
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .split(' ')
            .filter(|s| s.starts_with("p1:"))
            .map(str::to_string)
            .collect();
        return Ok(Actor {
            kind: ActorKind::User,
            id: user.id,
            env_id,
            org_id,
            assignments: vec![],
            scopes,
        });
    }
    // Only worker applications act on the management API with their own role assignments.
    let client = applications::find_by_client_id(app, &env_id, client_id)
        .await?
        .filter(|c| c.data["enabled"] == true && c.data["type"] == "WORKER")
        .ok_or_else(|| {
            unauthorized("The client of this access token no longer exists or is disabled.")
        })?;
    let assignments = roles::assignments_of(app, &env_id, &client.id).await?;
    Ok(Actor {
        kind: ActorKind::Application,
        id: client.id,
        env_id,
        org_id,
        assignments,
        scopes: vec![],
    })
}

fn audience_contains(claims: &Value, aud: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(s)) => s == aud,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(aud)),
        _ => false,
    }
}

/// The client credentials a token request presented.
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<String>,
    /// The `tokenEndpointAuthMethod` the request used; for a client assertion, the one its
    /// `alg` implies (HS* → CLIENT_SECRET_JWT, RS* → PRIVATE_KEY_JWT).
    pub method: &'static str,
    /// The `client_assertion` (RFC 7523 §2.2), for the JWT methods.
    pub assertion: Option<String>,
    /// The endpoint authenticated at (`token`, `introspect`, `revoke`): a client assertion's
    /// `aud` may name it.
    pub endpoint: &'static str,
}

impl ClientCredentials {
    /// The same credentials, presented at another endpoint than `/as/token`.
    pub fn at(self, endpoint: &'static str) -> Self {
        ClientCredentials { endpoint, ..self }
    }
}

/// Reads client authentication from the `Authorization: Basic` header or the form body.
pub fn client_credentials_of(
    authorization: Option<&str>,
    form: &[(String, String)],
) -> Result<ClientCredentials, OAuthError> {
    let form_get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let assertion = form_get("client_assertion");
    let assertion_type = form_get("client_assertion_type");
    if assertion.is_some() || assertion_type.is_some() {
        if authorization.is_some() || form_get("client_secret").is_some() {
            return Err(OAuthError::new(
                "invalid_request",
                "Use only one client authentication method: a client assertion, or a client secret.",
            ));
        }
        let (Some(assertion), Some(assertion_type)) = (assertion, assertion_type) else {
            return Err(OAuthError::new(
                "invalid_request",
                "client_assertion and client_assertion_type must be sent together.",
            ));
        };
        if assertion_type != client_jwt::ASSERTION_TYPE {
            return Err(OAuthError::new(
                "invalid_client",
                format!(
                    "The client_assertion_type must be {}.",
                    client_jwt::ASSERTION_TYPE
                ),
            ));
        }
        let (sub, method) = client_jwt::peek(&assertion)?;
        if form_get("client_id").is_some_and(|id| id != sub) {
            return Err(OAuthError::new(
                "invalid_client",
                "The client_id differs from the client assertion's sub.",
            ));
        }
        return Ok(ClientCredentials {
            client_id: sub,
            secret: None,
            method,
            assertion: Some(assertion),
            endpoint: "token",
        });
    }
    if let Some(h) = authorization {
        let b64 = h.strip_prefix("Basic ").ok_or_else(|| {
            OAuthError::new("invalid_client", "Unsupported Authorization scheme.")
        })?;
        let raw = STANDARD
            .decode(b64.trim())
            .map_err(|_| OAuthError::new("invalid_client", "Malformed Basic credentials."))?;
        let raw = String::from_utf8(raw)
            .map_err(|_| OAuthError::new("invalid_client", "Malformed Basic credentials."))?;
        let (id, secret) = raw
            .split_once(':')
            .ok_or_else(|| OAuthError::new("invalid_client", "Malformed Basic credentials."))?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded.
        let decode = |s: &str| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
                .ok()
                .and_then(|v| v.into_iter().next())
                .map(|(_, v)| v)
        };
        let id = decode(id).unwrap_or_else(|| id.to_string());
        let secret = decode(secret).unwrap_or_else(|| secret.to_string());
        if form_get("client_secret").is_some() {
            return Err(OAuthError::new(
                "invalid_request",
                "Use only one client authentication method.",
            ));
        }
        return Ok(ClientCredentials {
            client_id: id,
            secret: Some(secret),
            method: "CLIENT_SECRET_BASIC",
            assertion: None,
            endpoint: "token",
        });
    }
    let client_id = form_get("client_id")
        .ok_or_else(|| OAuthError::new("invalid_client", "Client authentication is required."))?;
    match form_get("client_secret") {
        Some(s) => Ok(ClientCredentials {
            client_id,
            secret: Some(s),
            method: "CLIENT_SECRET_POST",
            assertion: None,
            endpoint: "token",
        }),
        None => Ok(ClientCredentials {
            client_id,
            secret: None,
            method: "NONE",
            assertion: None,
            endpoint: "token",
        }),
    }
}

/// Authenticates the client of a token request against its application: the method used must
/// be the application's `tokenEndpointAuthMethod`.
pub async fn authenticate_client(
    app: &App,
    env_id: &str,
    creds: &ClientCredentials,
) -> Result<Doc, ApiError> {
    let invalid = || OAuthError::new("invalid_client", "Client authentication failed.");
    let client = applications::find_by_client_id(app, env_id, &creds.client_id)
        .await?
        .ok_or_else(invalid)?;
    if client.data["protocol"] != "OPENID_CONNECT" {
        return Err(invalid().into());
    }
    let method = client.data["tokenEndpointAuthMethod"]
        .as_str()
        .unwrap_or("CLIENT_SECRET_BASIC");
    if method != creds.method {
        return Err(
            OAuthError::new("invalid_client", method_mismatch(method, creds.method)).into(),
        );
    }
    match method {
        "NONE" => {}
        "CLIENT_SECRET_JWT" | "PRIVATE_KEY_JWT" => {
            let assertion = creds.assertion.as_deref().unwrap_or_default();
            client_jwt::authenticate(app, env_id, &client, assertion, creds.endpoint).await?;
        }
        _ => {
            let given = creds.secret.as_deref().unwrap_or_default();
            if !applications::secret_matches(app, &client, given)? {
                return Err(invalid().into());
            }
        }
    }
    if client.data["enabled"] != true {
        return Err(OAuthError::new("unauthorized_client", "The application is disabled.").into());
    }
    Ok(client)
}

/// Says how the application authenticates when the request used another method.
fn method_mismatch(expected: &str, used: &str) -> String {
    let how = |m: &str| match m {
        "CLIENT_SECRET_BASIC" => "client_secret_basic (HTTP Basic with the client secret)",
        "CLIENT_SECRET_POST" => "client_secret_post (client_secret in the form)",
        "CLIENT_SECRET_JWT" => {
            "client_secret_jwt (a client assertion signed HS256/HS384/HS512 with the client secret)"
        }
        "PRIVATE_KEY_JWT" => {
            "private_key_jwt (a client assertion signed RS256/RS384/RS512 with a key of the application's jwks)"
        }
        "NONE" => "none (client_id only)",
        _ => "an unsupported method",
    };
    format!(
        "The application's tokenEndpointAuthMethod is {expected}: authenticate with {}; the request used {}.",
        how(expected),
        how(used)
    )
}

/// `grant_type=client_credentials`. Workers get platform API tokens carrying their roles;
/// other clients get tokens for the custom resource scopes granted to them.
pub async fn client_credentials(
    app: &App,
    env_id: &str,
    client: &Doc,
    scope: Option<&str>,
) -> ApiResult<Value> {
    let grants = client.data["grantTypes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !grants.iter().any(|g| g == "CLIENT_CREDENTIALS") {
        return Err(OAuthError::new(
            "unauthorized_client",
            "The application does not have the client_credentials grant.",
        )
        .into());
    }
    let requested: Vec<&str> = scope
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    let org_id = crate::resources::environments::org_of(app, env_id).await?;
    let scopes = if client.data["type"] == "WORKER" {
        if !requested.is_empty() {
            return Err(OAuthError::new(
                "invalid_scope",
                "A worker application's access comes from its roles, not from scopes.",
            )
            .into());
        }
        ScopeSet::default()
    } else {
        // Without a scope parameter: every custom resource scope granted to the client.
        let asked: Vec<String> = if requested.is_empty() {
            crate::resources::resources::granted_custom_scopes(app, env_id, &client.id)
                .await?
                .into_iter()
                .map(|g| g.scope)
                .collect()
        } else {
            requested.iter().map(|s| s.to_string()).collect()
        };
        let set = grants::resolve(app, client, &asked).await?;
        if !set.oidc.is_empty() || !set.platform.is_empty() || set.offline {
            return Err(OAuthError::new(
                "invalid_scope",
                "client_credentials tokens carry only custom resource scopes.",
            )
            .into());
        }
        if set.custom.is_empty() {
            return Err(OAuthError::new(
                "invalid_scope",
                "No scopes are granted to this application.",
            )
            .into());
        }
        set
    };
    let key = app
        .keys
        .default_key(&app.store, &app.master, env_id)
        .await?
        .ok_or_else(|| ApiError::internal("the environment has no signing key"))?;
    let (token, lifetime, scope) =
        issue::access_token(app, &key, env_id, &org_id, client, &scopes, None);
    let mut body = json!({ "access_token": token, "token_type": "Bearer", "expires_in": lifetime });
    if !scope.is_empty() {
        body["scope"] = json!(scope);
    }
    Ok(body)
}
