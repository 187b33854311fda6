//! Request objects (OIDC Core §6.1): the `request` parameter, a JWT whose claims are the
//! authorization request's parameters. Signed HS256/384/512 with the client secret, or
//! RS256/384/512 with a key of the application's `jwks`; unsigned (`alg: none`) only when the
//! application allows it. Claims take precedence over the query parameters.

use serde_json::Value;

use super::client_jwt::{self, JwtError};
use crate::error::{ApiError, ApiResult, Detail};
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
/// The signature is checked by the verifier shared with client assertions
/// ([`client_jwt::verify`]); the expiry rules here are the request object's.
pub async fn verify_client_jwt(
    app: &App,
    client: &Doc,
    token: &str,
    allow_unsigned: bool,
) -> ApiResult<Value> {
    let mut algs: Vec<&str> = client_jwt::HMAC_ALGS.to_vec();
    algs.extend_from_slice(client_jwt::RSA_ALGS);
    if allow_unsigned {
        algs.push("none");
    }
    let claims = match client_jwt::verify(app, client, token, "request object", &algs).await {
        Ok(v) => v.claims,
        Err(JwtError::Invalid(m)) => return Err(invalid(&m)),
        Err(JwtError::Server(e)) => return Err(e),
    };
    // A request object without exp could be replayed forever.
    client_jwt::lifetime(&claims, "request object").map_err(|m| invalid(&m))?;
    Ok(claims)
}

/// Merges a request object into the authorization parameters (claims win). Without a
/// `request`, refuses the request when the application requires signed request objects.
pub async fn merge(
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
    let claims = verify_client_jwt(app, client, &token, allow_unsigned).await?;
    let client_id = client.data["clientId"].as_str().unwrap_or(&client.id);
    if let Some(iss) = claims["iss"].as_str()
        && iss != client_id
    {
        return Err(invalid("The request object's iss must be the client_id."));
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
        if let (Some(c), Some(q)) = (claims[k].as_str(), q)
            && c != q
        {
            return Err(invalid(&format!(
                "{k} in the request object differs from the query."
            )));
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
