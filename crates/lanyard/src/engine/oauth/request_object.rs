//! Request objects (OIDC Core §6.1): the `request` parameter, a JWT whose claims are the
//! authorization request's parameters. Signed HS256/384/512 with the client secret, or
//! RS256/384/512 with a key of the application's `jwks`; unsigned (`alg: none`) only when the
//! application allows it. Claims take precedence over the query parameters.

use aws_lc_rs::{hmac, signature};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::clock;
use crate::error::{ApiError, ApiResult, Detail};
use crate::resources::applications;
use crate::state::App;
use crate::store::Doc;

fn invalid(message: &str) -> ApiError {
    ApiError::one(Detail::new(
        "INVALID_VALUE",
        Some("request".into()),
        message,
    ))
}

/// Verifies a compact JWS (or unsigned JWT when allowed) from the client; returns its claims.
pub fn verify_client_jwt(
    app: &App,
    client: &Doc,
    token: &str,
    allow_unsigned: bool,
) -> ApiResult<Value> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || token.len() > 64 * 1024 {
        return Err(invalid("The request object is not a compact JWT."));
    }
    let decode = |s: &str| -> ApiResult<Value> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| invalid("The request object is not valid base64url."))?;
        serde_json::from_slice(&bytes).map_err(|_| invalid("The request object is not valid JSON."))
    };
    let header = decode(parts[0])?;
    let claims = decode(parts[1])?;
    if !claims.is_object() {
        return Err(invalid(
            "The request object's claims must be a JSON object.",
        ));
    }
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    let sig = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|_| invalid("The request object's signature is not valid base64url."))?;
    let alg = header["alg"].as_str().unwrap_or_default();
    let ok = match alg {
        "none" => allow_unsigned && sig.is_empty(),
        "HS256" | "HS384" | "HS512" => {
            let secret = applications::secrets_of(app, client)?["secret"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if secret.is_empty() {
                return Err(invalid(
                    "The application has no secret to verify an HMAC-signed request object.",
                ));
            }
            let algo = match alg {
                "HS256" => hmac::HMAC_SHA256,
                "HS384" => hmac::HMAC_SHA384,
                _ => hmac::HMAC_SHA512,
            };
            hmac::verify(
                &hmac::Key::new(algo, secret.as_bytes()),
                signing_input.as_bytes(),
                &sig,
            )
            .is_ok()
        }
        "RS256" | "RS384" | "RS512" => {
            let params = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                _ => &signature::RSA_PKCS1_2048_8192_SHA512,
            };
            let jwks: Value = client.data["jwks"]
                .as_str()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(Value::Null);
            let kid = header["kid"].as_str();
            jwks["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|k| k["kty"] == "RSA" && (kid.is_none() || k["kid"].as_str() == kid))
                .any(|k| {
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
        return Err(invalid("The request object's signature is not valid."));
    }
    let now = clock::unix();
    if claims["exp"].as_i64().is_some_and(|e| e <= now) {
        return Err(invalid("The request object has expired."));
    }
    if claims["nbf"].as_i64().is_some_and(|n| n > now + 60) {
        return Err(invalid("The request object is not valid yet."));
    }
    Ok(claims)
}

/// Merges a request object into the authorization parameters (claims win). Without a
/// `request`, refuses the request when the application requires signed request objects.
pub fn merge(
    app: &App,
    client: &Doc,
    params: Vec<(String, String)>,
) -> ApiResult<Vec<(String, String)>> {
    let Some(token) = params
        .iter()
        .find(|(k, _)| k == "request")
        .map(|(_, v)| v.clone())
    else {
        if client.data["requireSignedRequestObject"] == true {
            return Err(invalid(
                "This application requires a signed request object.",
            ));
        }
        return Ok(params);
    };
    let allow_unsigned = client.data["supportUnsignedRequestObject"] == true
        && client.data["requireSignedRequestObject"] != true;
    let claims = verify_client_jwt(app, client, &token, allow_unsigned)?;
    let client_id = client.data["clientId"].as_str().unwrap_or(&client.id);
    if let Some(iss) = claims["iss"].as_str() {
        if iss != client_id {
            return Err(invalid("The request object's iss must be the client_id."));
        }
    }
    if let Some(aud) = claims.get("aud") {
        let issuer = app.issuer(&client.env_id);
        let ok = match aud {
            Value::String(s) => *s == issuer,
            Value::Array(a) => a.iter().any(|v| v.as_str() == Some(issuer.as_str())),
            _ => false,
        };
        if !ok {
            return Err(invalid("The request object's aud must be the issuer."));
        }
    }
    for k in ["client_id", "response_type"] {
        let q = params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if let (Some(c), Some(q)) = (claims[k].as_str(), q) {
            if c != q {
                return Err(invalid(&format!(
                    "{k} in the request object differs from the query."
                )));
            }
        }
    }
    let mut out: Vec<(String, String)> =
        params.into_iter().filter(|(k, _)| k != "request").collect();
    for (k, v) in claims.as_object().into_iter().flatten() {
        if ["iss", "aud", "exp", "iat", "nbf", "jti"].contains(&k.as_str()) {
            continue;
        }
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Null => continue,
            other => other.to_string(),
        };
        out.retain(|(n, _)| n != k);
        out.push((k.clone(), v));
    }
    Ok(out)
}
