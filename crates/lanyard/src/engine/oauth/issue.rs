//! Issuing tokens for a signed-in user: access tokens, ID tokens (with `at_hash`/`c_hash`),
//! the user's claims by scope, single-use authorization codes and rotating refresh tokens.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::grants::ScopeSet;
use crate::clock;
use crate::engine::keys::SigningKey;
use crate::engine::secrets::random_bytes;
use crate::error::{ApiError, ApiResult};
use crate::resources::resources;
use crate::state::App;
use crate::store::{Doc, json_path};

pub const CODE_KIND: &str = "authorizationCode";
pub const REFRESH_KIND: &str = "refreshToken";
pub const FAMILY_KIND: &str = "refreshFamily";
pub const REVOKED_KIND: &str = "revokedToken";
/// Authorization codes are short-lived (RFC 6749 §4.1.2 recommends at most 10 minutes).
pub const CODE_SECONDS: i64 = 60;

/// Everything a sign-on established that tokens are made from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignOn {
    pub user_id: String,
    pub session_id: String,
    /// The session's key in the runtime store (never shown: it is the hash of the cookie), so
    /// that refresh tokens can tell whether their session still exists.
    #[serde(default)]
    pub session_key: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: String,
    pub nonce: Option<String>,
}

pub fn opaque() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(32))
}

pub fn sha256_b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, s.as_bytes()))
}

/// `at_hash` / `c_hash`: the left half of the SHA-256 of the value (RS256).
pub fn half_hash(s: &str) -> String {
    let d = digest::digest(&digest::SHA256, s.as_bytes());
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}

fn str_at<'a>(user: &'a Value, path: &str) -> Option<&'a Value> {
    json_path(user, path).filter(|v| !v.is_null())
}

/// Evaluates a mapping expression: `${user.path}` reads the user; anything else is a literal.
pub fn evaluate(expr: &str, user: &Doc) -> Option<Value> {
    match expr
        .strip_prefix("${user.")
        .and_then(|r| r.strip_suffix('}'))
    {
        Some("id") => Some(json!(user.id)),
        Some("createdAt") => Some(json!(user.created_at)),
        Some("updatedAt") => Some(json!(user.updated_at)),
        Some(path) if !path.starts_with('_') => str_at(&user.data, path).cloned(),
        Some(_) => None,
        None => Some(json!(expr)),
    }
}

/// The standard claims of `user` released by the given OIDC scopes.
pub fn user_claims(user: &Doc, scopes: &[String]) -> Map<String, Value> {
    let mut c = Map::new();
    let d = &user.data;
    let mut put = |k: &str, v: Option<&Value>| {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            c.insert(k.into(), v.clone());
        }
    };
    let has = |s: &str| scopes.iter().any(|x| x == s);
    if has("profile") {
        let formatted = d["name"]["formatted"]
            .as_str()
            .map(str::to_string)
            .or_else(|| {
                let parts: Vec<&str> = [d["name"]["given"].as_str(), d["name"]["family"].as_str()]
                    .into_iter()
                    .flatten()
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            });
        put("name", formatted.map(Value::String).as_ref());
        put("given_name", str_at(d, "name.given"));
        put("family_name", str_at(d, "name.family"));
        put("middle_name", str_at(d, "name.middle"));
        put("preferred_username", str_at(d, "username"));
        put("nickname", str_at(d, "nickname"));
        put("picture", str_at(d, "photo.href"));
        put("zoneinfo", str_at(d, "timezone"));
        put("locale", str_at(d, "locale"));
        let updated = clock::parse(&user.updated_at).map(|t| json!(t.unix_timestamp()));
        put("updated_at", updated.as_ref());
    }
    if has("email") {
        put("email", str_at(d, "email"));
        put("email_verified", Some(&json!(d["emailVerified"] == true)));
    }
    if has("address") && d["address"].is_object() {
        let a = &d["address"];
        let mut addr = Map::new();
        for (from, to) in [
            ("streetAddress", "street_address"),
            ("locality", "locality"),
            ("region", "region"),
            ("postalCode", "postal_code"),
            ("countryCode", "country"),
        ] {
            if let Some(v) = a.get(from).filter(|v| !v.is_null()) {
                addr.insert(to.into(), v.clone());
            }
        }
        if !addr.is_empty() {
            c.insert("address".into(), Value::Object(addr));
        }
    }
    if has("phone") {
        let phone = str_at(d, "mobilePhone")
            .or_else(|| str_at(d, "primaryPhone"))
            .cloned();
        if let Some(p) = phone {
            c.insert("phone_number".into(), p);
            c.insert("phone_number_verified".into(), json!(false));
        }
    }
    c
}

/// Claims from the openid resource's attributes and the application's custom attribute
/// mappings (for the ID token or userinfo).
pub async fn mapped_claims(
    app: &App,
    client: &Doc,
    user: &Doc,
    for_id_token: bool,
) -> ApiResult<Map<String, Value>> {
    let mut out = Map::new();
    // The openid resource's custom attributes first; the application's own mappings win.
    // Configuration, so through the configuration cache: read on every token and userinfo.
    let sources = app
        .cached_config(
            format!("claim-sources|{}|{}", client.env_id, client.id),
            || async {
                let mut reader = app.store.read();
                let mut sources = Vec::new();
                if let Some(openid) = reader
                    .find_unique(&client.env_id, resources::KIND, "name", "openid")
                    .await?
                {
                    sources.extend(
                        reader
                            .children(resources::ATTRIBUTE_KIND, &client.env_id, &openid.id)
                            .await?,
                    );
                }
                sources.extend(
                    reader
                        .children(
                            crate::resources::applications::MAPPING_KIND,
                            &client.env_id,
                            &client.id,
                        )
                        .await?,
                );
                Ok(sources)
            },
        )
        .await?;
    for m in sources.iter() {
        if m.data["type"] == "CORE" || m.data["mappingType"] == "CORE" {
            continue;
        }
        let flag = if for_id_token { "idToken" } else { "userInfo" };
        if m.data[flag] == false {
            continue;
        }
        if let (Some(name), Some(expr)) = (m.data["name"].as_str(), m.data["value"].as_str())
            && let Some(v) = evaluate(expr, user)
        {
            out.insert(name.into(), v);
        }
    }
    Ok(out)
}

/// Signs an access token for a user (or, with `sign_on` None, for the client itself).
pub fn access_token(
    app: &App,
    key: &SigningKey,
    env_id: &str,
    org_id: &str,
    client: &Doc,
    scopes: &ScopeSet,
    sign_on: Option<&SignOn>,
) -> (String, i64, String) {
    let now = clock::unix();
    let lifetime = scopes.custom_lifetime.unwrap_or(3600);
    let scope = scopes.all().join(" ");
    let mut claims = json!({
        "client_id": client.data["clientId"].as_str().unwrap_or(&client.id),
        "iss": app.issuer(env_id),
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": now,
        "exp": now + lifetime,
        "aud": [scopes.audience()],
    });
    if !scope.is_empty() {
        claims["scope"] = json!(scope);
    }
    if scopes.custom_audience.is_none() {
        claims["env"] = json!(env_id);
        claims["org"] = json!(org_id);
    }
    if let Some(s) = sign_on {
        claims["sub"] = json!(s.user_id);
        claims["sid"] = json!(s.session_id);
        claims["auth_time"] = json!(s.auth_time);
        claims["acr"] = json!(s.acr);
    }
    (key.sign(&claims), lifetime, scope)
}

pub struct IdTokenInput<'a> {
    pub access_token: Option<&'a str>,
    pub code: Option<&'a str>,
}

#[allow(clippy::too_many_arguments)]
pub async fn id_token(
    app: &App,
    key: &SigningKey,
    env_id: &str,
    org_id: &str,
    client: &Doc,
    user: &Doc,
    scopes: &ScopeSet,
    s: &SignOn,
    extra: IdTokenInput<'_>,
) -> ApiResult<String> {
    let now = clock::unix();
    let mut claims = Map::new();
    // Claims by scope go into the ID token only when no access token is issued to fetch them (OIDC §5.4).
    if extra.access_token.is_none() {
        claims.extend(user_claims(user, &scopes.oidc));
    }
    claims.extend(mapped_claims(app, client, user, true).await?);
    let fixed = json!({
        "iss": app.issuer(env_id),
        "sub": user.id,
        "aud": client.data["clientId"].as_str().unwrap_or(&client.id),
        "iat": now,
        "exp": now + 3600,
        "auth_time": s.auth_time,
        "acr": s.acr,
        "amr": s.amr,
        "sid": s.session_id,
        "env": env_id,
        "org": org_id,
    });
    for (k, v) in fixed.as_object().into_iter().flatten() {
        claims.insert(k.clone(), v.clone());
    }
    if let Some(n) = &s.nonce {
        claims.insert("nonce".into(), json!(n));
    }
    if let Some(at) = extra.access_token {
        claims.insert("at_hash".into(), json!(half_hash(at)));
    }
    if let Some(c) = extra.code {
        claims.insert("c_hash".into(), json!(half_hash(c)));
    }
    Ok(key.sign(&Value::Object(claims)))
}

/// Records an access token id as revoked until it expires.
pub async fn revoke_jti(app: &App, env_id: &str, jti: &str, exp: i64) -> ApiResult<()> {
    // Concurrent replays may revoke the same token at once: the marker is written, not raced.
    app.store
        .runtime_upsert(
            REVOKED_KIND,
            jti,
            env_id,
            &json!({}),
            exp.max(clock::unix() + 1),
        )
        .await
}

pub async fn is_revoked(app: &App, jti: &str) -> ApiResult<bool> {
    Ok(app.store.runtime_get(REVOKED_KIND, jti).await?.is_some())
}

pub fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e)
}
