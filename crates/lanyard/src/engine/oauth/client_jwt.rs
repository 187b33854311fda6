//! JWTs a client signs itself: request objects (OIDC Core §6.1) and client assertions for
//! `client_secret_jwt` / `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9). One verifier serves
//! both: HS256/384/512 keyed with the client secret (or the previous one while it is still
//! valid), RS256/384/512 with a key of the application's `jwks`, or of the JWKS published at
//! its `jwksUrl` (fetched, then cached for five minutes; see `remote_jwks`).
//!
//! Client assertion rules (PingOne): `iss` = `sub` = client_id; `aud` = the token endpoint,
//! the issuer (`…/as`) or the endpoint being called; `exp` required and at most one hour
//! ahead; `nbf`, when present, not in the future. PingOne does not check `jti`; Lanyard
//! refuses a `jti` it has already accepted from the same client until that assertion's `exp`
//! (RFC 7523 §3 item 7), recorded in the runtime store. An assertion without `jti` is accepted.

use aws_lc_rs::{hmac, signature};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::clock;
use crate::error::{ApiError, OAuthError};
use crate::resources::applications;
use crate::state::App;
use crate::store::Doc;

pub const HMAC_ALGS: &[&str] = &["HS256", "HS384", "HS512"];
pub const RSA_ALGS: &[&str] = &["RS256", "RS384", "RS512"];

/// `client_assertion_type` for JWT client authentication (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Runtime items recording the `jti` of accepted client assertions until their `exp`.
pub const REPLAY_KIND: &str = "client_assertion_jti";
/// The longest an assertion may be valid for, counted from now.
pub const MAX_ASSERTION_SECONDS: i64 = 3600;
/// Clock skew tolerated on `nbf` and on the one-hour cap of `exp`.
pub const LEEWAY_SECONDS: i64 = 60;

/// Why a client JWT was refused.
pub enum JwtError {
    /// A sentence for the client.
    Invalid(String),
    /// The server failed (e.g. decrypting the secret).
    Server(ApiError),
}

impl From<ApiError> for JwtError {
    fn from(e: ApiError) -> Self {
        JwtError::Server(e)
    }
}

pub struct VerifiedJwt {
    pub header: Value,
    pub claims: Value,
}

fn decode_part(s: &str, what: &str) -> Result<Value, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| JwtError::Invalid(format!("The {what} is not valid base64url.")))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| JwtError::Invalid(format!("The {what} is not valid JSON.")))
}

/// The header and claims of a compact JWT, without verifying anything.
pub fn parse_unverified(token: &str, what: &str) -> Result<(Value, Value), JwtError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || token.len() > 64 * 1024 {
        return Err(JwtError::Invalid(format!(
            "The {what} is not a compact JWT."
        )));
    }
    let header = decode_part(parts[0], what)?;
    let claims = decode_part(parts[1], what)?;
    if !header.is_object() || !claims.is_object() {
        return Err(JwtError::Invalid(format!(
            "The {what}'s header and claims must be JSON objects."
        )));
    }
    Ok((header, claims))
}

/// The secrets an HMAC-signed JWT of `client` may be keyed with: the current secret, and the
/// previous one while its rotation grace period lasts.
fn hmac_secrets(app: &App, client: &Doc) -> Result<Vec<String>, ApiError> {
    let s = applications::secrets_of(app, client)?;
    let mut out = Vec::new();
    if let Some(c) = s["secret"].as_str().filter(|c| !c.is_empty()) {
        out.push(c.to_string());
    }
    let previous_valid = s["previous"]["expiresAt"]
        .as_str()
        .and_then(clock::parse)
        .is_some_and(|t| t > time::OffsetDateTime::now_utc());
    if previous_valid && let Some(p) = s["previous"]["secret"].as_str().filter(|p| !p.is_empty()) {
        out.push(p.to_string());
    }
    Ok(out)
}

/// The application's `jwks` (a JSON string), or None when it has none.
pub fn jwks_of(client: &Doc) -> Option<Value> {
    client.data["jwks"]
        .as_str()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .filter(|v| v["keys"].is_array())
}

/// Verifies a compact JWS signed by `client` with one of `algs` (`"none"` accepts an unsigned
/// JWT only when listed). `what` names the JWT in the messages ("request object").
pub async fn verify(
    app: &App,
    client: &Doc,
    token: &str,
    what: &str,
    algs: &[&str],
) -> Result<VerifiedJwt, JwtError> {
    // Only an RSA signature needs the client's keys; fetch them from jwksUrl when that is
    // where the application keeps them.
    let rsa = parse_unverified(token, what)
        .ok()
        .and_then(|(h, _)| {
            h["alg"]
                .as_str()
                .map(|a| RSA_ALGS.contains(&a) && algs.contains(&a))
        })
        .unwrap_or(false);
    let jwks = match (jwks_of(client), client.data["jwksUrl"].as_str()) {
        (Some(k), _) => Some(k),
        (None, Some(url)) if rsa => Some(remote_keys(app, client, url).await?),
        _ => None,
    };
    verify_with_keys(app, client, token, what, algs, jwks)
}

/// The JWKS at the client's `jwksUrl`. Whoever sends a token request triggers the fetch, so
/// the refusal is one fixed sentence: what the key server answered (a status, "not JSON", a
/// timeout) or that its address is not allowed would let anyone probe the network behind
/// Lanyard. The reason goes to the server log.
async fn remote_keys(app: &App, client: &Doc, url: &str) -> Result<Value, JwtError> {
    super::remote_jwks::get(app, url).await.map_err(|reason| {
        tracing::warn!(
            environment_id = %client.env_id,
            application_id = %client.id,
            %reason,
            "the application's keys could not be obtained from its jwksUrl"
        );
        JwtError::Invalid(JWKS_URL_FAILED.into())
    })
}

/// The description of every refusal caused by a `jwksUrl` that could not be used.
pub const JWKS_URL_FAILED: &str = "The client's keys could not be obtained from its jwksUrl.";

/// [`verify`] with the client's JWKS already at hand.
pub fn verify_with_keys(
    app: &App,
    client: &Doc,
    token: &str,
    what: &str,
    algs: &[&str],
    jwks: Option<Value>,
) -> Result<VerifiedJwt, JwtError> {
    let bad = |m: String| JwtError::Invalid(m);
    let (header, claims) = parse_unverified(token, what)?;
    let mut parts = token.rsplitn(2, '.');
    let sig_b64 = parts.next().unwrap_or_default();
    let signing_input = parts.next().unwrap_or_default();
    let sig = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| bad(format!("The {what}'s signature is not valid base64url.")))?;
    let alg = header["alg"].as_str().unwrap_or_default();
    if !algs.contains(&alg) {
        return Err(bad(format!(
            "The {what} is signed with '{alg}'; expected one of {}.",
            algs.join(", ")
        )));
    }
    // RFC 7515 §4.1.11: extensions this verifier does not understand must not be ignored.
    if header.get("crit").is_some() {
        return Err(bad(format!(
            "The {what} has critical header parameters Lanyard does not support."
        )));
    }
    let ok = match alg {
        "none" => sig.is_empty(),
        "HS256" | "HS384" | "HS512" => {
            let secrets = hmac_secrets(app, client)?;
            if secrets.is_empty() {
                return Err(bad(format!(
                    "The application has no secret to verify an HMAC-signed {what}."
                )));
            }
            let algo = match alg {
                "HS256" => hmac::HMAC_SHA256,
                "HS384" => hmac::HMAC_SHA384,
                _ => hmac::HMAC_SHA512,
            };
            secrets.iter().any(|s| {
                hmac::verify(
                    &hmac::Key::new(algo, s.as_bytes()),
                    signing_input.as_bytes(),
                    &sig,
                )
                .is_ok()
            })
        }
        "RS256" | "RS384" | "RS512" => {
            let params = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                _ => &signature::RSA_PKCS1_2048_8192_SHA512,
            };
            let Some(jwks) = jwks else {
                return Err(bad(format!(
                    "The application has no jwks or jwksUrl to verify an RSA-signed {what}."
                )));
            };
            let kid = header["kid"].as_str();
            let candidates: Vec<&Value> = jwks["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|k| k["kty"] == "RSA")
                .filter(|k| k["use"].as_str().is_none_or(|u| u == "sig"))
                .filter(|k| k["alg"].as_str().is_none_or(|a| a == alg))
                .filter(|k| kid.is_none() || k["kid"].as_str() == kid)
                .collect();
            if candidates.is_empty() {
                return Err(bad(match kid {
                    Some(kid) => format!(
                        "The application's jwks has no RSA signing key with kid '{kid}' for {alg}."
                    ),
                    None => format!("The application's jwks has no RSA signing key for {alg}."),
                }));
            }
            candidates.into_iter().any(|k| {
                let n = k["n"].as_str().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
                let e = k["e"].as_str().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
                match (n, e) {
                    (Some(n), Some(e)) => signature::RsaPublicKeyComponents { n: &n, e: &e }
                        .verify(params, signing_input.as_bytes(), &sig)
                        .is_ok(),
                    _ => false,
                }
            })
        }
        _ => false,
    };
    if !ok {
        return Err(bad(format!("The {what}'s signature is not valid.")));
    }
    Ok(VerifiedJwt { header, claims })
}

fn invalid_client(m: impl Into<String>) -> ApiError {
    OAuthError::new("invalid_client", m).into()
}

/// Reads a client assertion without verifying it: the client it names (`sub`) and the
/// authentication method its algorithm implies.
pub fn peek(assertion: &str) -> Result<(String, &'static str), OAuthError> {
    let (header, claims) =
        parse_unverified(assertion, "client assertion").map_err(|e| match e {
            JwtError::Invalid(m) => OAuthError::new("invalid_client", m),
            JwtError::Server(_) => {
                OAuthError::new("invalid_client", "The client assertion is invalid.")
            }
        })?;
    let alg = header["alg"].as_str().unwrap_or_default();
    let method = if HMAC_ALGS.contains(&alg) {
        "CLIENT_SECRET_JWT"
    } else if RSA_ALGS.contains(&alg) {
        "PRIVATE_KEY_JWT"
    } else {
        return Err(OAuthError::new(
            "invalid_client",
            format!(
                "The client assertion's alg '{alg}' is not supported; use HS256/HS384/HS512 (client_secret_jwt) or RS256/RS384/RS512 (private_key_jwt)."
            ),
        ));
    };
    let sub = claims["sub"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            OAuthError::new(
                "invalid_client",
                "The client assertion must have sub = client_id.",
            )
        })?;
    Ok((sub.to_string(), method))
}

fn number(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().map(|f| f.floor() as i64))
}

/// Authenticates `client` (whose `tokenEndpointAuthMethod` is CLIENT_SECRET_JWT or
/// PRIVATE_KEY_JWT) with a client assertion presented at `endpoint` (`token`, `introspect`,
/// `revoke`). Returns the assertion's claims.
pub async fn authenticate(
    app: &App,
    env_id: &str,
    client: &Doc,
    assertion: &str,
    endpoint: &str,
) -> Result<Value, ApiError> {
    let method = client.data["tokenEndpointAuthMethod"]
        .as_str()
        .unwrap_or_default();
    let algs = match method {
        "CLIENT_SECRET_JWT" => HMAC_ALGS,
        "PRIVATE_KEY_JWT" => RSA_ALGS,
        _ => {
            return Err(invalid_client(format!(
                "The application authenticates with {method}, not with a client assertion."
            )));
        }
    };
    let verified = match verify(app, client, assertion, "client assertion", algs).await {
        Ok(v) => v,
        Err(JwtError::Invalid(m)) => return Err(invalid_client(m)),
        Err(JwtError::Server(e)) => return Err(e),
    };
    let claims = verified.claims;
    let client_id = client.data["clientId"].as_str().unwrap_or(&client.id);
    if claims["iss"].as_str() != Some(client_id) {
        return Err(invalid_client(
            "The client assertion's iss must be the client_id.",
        ));
    }
    if claims["sub"].as_str() != Some(client_id) {
        return Err(invalid_client(
            "The client assertion's sub must be the client_id.",
        ));
    }
    let issuer = app.issuer(env_id);
    let accepted = [
        issuer.clone(),
        format!("{issuer}/token"),
        format!("{issuer}/{endpoint}"),
    ];
    let aud_ok = match &claims["aud"] {
        Value::String(s) => accepted.contains(s),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .any(|s| accepted.iter().any(|x| x == s)),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid_client(format!(
            "The client assertion's aud must be the token endpoint ({issuer}/token), the issuer ({issuer}) or the endpoint called ({issuer}/{endpoint})."
        )));
    }
    let exp = lifetime(&claims, "client assertion").map_err(invalid_client)?;
    if let Some(jti) = claims.get("jti").filter(|v| !v.is_null()) {
        let jti = jti
            .as_str()
            .ok_or_else(|| invalid_client("The client assertion's jti must be a string."))?;
        record_jti(app, env_id, client_id, jti, exp).await?;
    }
    Ok(claims)
}

/// The lifetime rules of every JWT a client makes for us (client assertions, request objects,
/// login_hint_tokens): `exp` required, in the future and at most one hour ahead (a stolen
/// token is useful for an hour, not forever); `nbf` and `iat`, when present, not in the
/// future (with [`LEEWAY_SECONDS`] of skew). Returns `exp`, or why the token is refused.
pub fn lifetime(claims: &Value, what: &str) -> Result<i64, String> {
    let now = clock::unix();
    let exp = number(&claims["exp"]).ok_or_else(|| format!("The {what} must have an exp."))?;
    if exp <= now {
        return Err(format!("The {what} has expired."));
    }
    if exp > now + MAX_ASSERTION_SECONDS + LEEWAY_SECONDS {
        return Err(format!(
            "The {what}'s exp must be no more than one hour in the future."
        ));
    }
    for (claim, why) in [("nbf", "nbf"), ("iat", "iat")] {
        if let Some(v) = claims.get(claim).filter(|v| !v.is_null()) {
            let t = number(v).ok_or_else(|| format!("The {what}'s {claim} must be a number."))?;
            if t > now + LEEWAY_SECONDS {
                return Err(format!(
                    "The {what} is not valid yet ({why} is in the future)."
                ));
            }
        }
    }
    Ok(exp)
}

/// Records an assertion's `jti` until `exp`; refuses one already recorded. The insert is the
/// arbiter: of two concurrent requests with one `jti`, only one can create the item.
async fn record_jti(
    app: &App,
    env_id: &str,
    client_id: &str,
    jti: &str,
    exp: i64,
) -> Result<(), ApiError> {
    let replayed = || invalid_client("The client assertion's jti has already been used.");
    let id = super::issue::sha256_b64(&format!("{env_id}\n{client_id}\n{jti}"));
    if app.store.runtime_get(REPLAY_KIND, &id).await?.is_some() {
        return Err(replayed());
    }
    let data = json!({ "clientId": client_id });
    if app
        .store
        .runtime_put(REPLAY_KIND, &id, env_id, &data, exp)
        .await
        .is_ok()
    {
        return Ok(());
    }
    // Either a concurrent request recorded it first, or an expired item not swept yet holds
    // the key (the jti is reused after its earlier assertion expired, which is allowed).
    if app.store.runtime_get(REPLAY_KIND, &id).await?.is_some() {
        return Err(replayed());
    }
    app.store.runtime_delete(REPLAY_KIND, &id).await?;
    match app
        .store
        .runtime_put(REPLAY_KIND, &id, env_id, &data, exp)
        .await
    {
        Ok(()) => Ok(()),
        Err(e) => {
            if app.store.runtime_get(REPLAY_KIND, &id).await?.is_some() {
                Err(replayed())
            } else {
                Err(e)
            }
        }
    }
}
