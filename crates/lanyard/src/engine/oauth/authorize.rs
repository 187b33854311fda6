//! Validating an authorization request (`/as/authorize`) against its application, in the order
//! RFC 6749 §4.1.2.1 requires: errors before the redirect URI is trusted are never redirected.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::redirect_uri;
use crate::error::{ApiError, Detail};
use crate::store::Doc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    #[serde(rename = "query")]
    Query,
    #[serde(rename = "fragment")]
    Fragment,
    #[serde(rename = "form_post")]
    FormPost,
    #[serde(rename = "pi.flow")]
    PiFlow,
}

impl ResponseMode {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "query" => ResponseMode::Query,
            "fragment" => ResponseMode::Fragment,
            "form_post" => ResponseMode::FormPost,
            "pi.flow" => ResponseMode::PiFlow,
            _ => return None,
        })
    }
}

/// A validated authorization request, kept with the flow until the response is sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub app_id: String,
    /// As sent (None when omitted with pi.flow); the token request must repeat it.
    pub redirect_uri: Option<String>,
    pub response_types: Vec<String>,
    pub response_mode: ResponseMode,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub acr_values: Vec<String>,
    pub login_hint: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// `pi.template` of a request object: the notification template (name, variant,
    /// variables) of the passcode message (transaction approval).
    #[serde(default)]
    pub pi_template: Option<Value>,
}

impl AuthorizeRequest {
    pub fn wants(&self, response_type: &str) -> bool {
        self.response_types.iter().any(|r| r == response_type)
    }
    pub fn is_oidc(&self) -> bool {
        self.scopes.iter().any(|s| s == "openid")
    }
}

/// Where an authorize error goes.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Not redirectable: shown to the user agent as a PingOne error.
    Direct(ApiError),
    /// Sent back to the client's trusted redirect URI.
    Redirect {
        redirect_uri: String,
        mode: ResponseMode,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

impl From<ApiError> for AuthorizeError {
    fn from(e: ApiError) -> Self {
        AuthorizeError::Direct(e)
    }
}

fn direct(target: &str, message: impl Into<String>) -> AuthorizeError {
    AuthorizeError::Direct(ApiError::one(Detail::invalid(target, message)))
}

fn pkce_challenge_ok(c: &str) -> bool {
    (43..=128).contains(&c.len())
        && c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-._~".contains(ch))
}

/// Validates the request parameters against the application `app` (already looked up by client_id).
pub fn validate(
    app: &Doc,
    params: &[(String, String)],
) -> Result<AuthorizeRequest, AuthorizeError> {
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    for (i, (k, _)) in params.iter().enumerate() {
        if params[..i].iter().any(|(k2, _)| k2 == k) {
            return Err(direct(k, format!("The parameter '{k}' is repeated.")));
        }
    }
    if app.data["enabled"] != true {
        return Err(direct("client_id", "The application is disabled."));
    }
    if app.data["protocol"] != "OPENID_CONNECT" {
        return Err(direct(
            "client_id",
            "The application is not an OpenID Connect application.",
        ));
    }
    let mode_param = get("response_mode");
    let mode = match &mode_param {
        Some(m) => Some(
            ResponseMode::parse(m)
                .ok_or_else(|| direct("response_mode", "Unsupported response_mode."))?,
        ),
        None => None,
    };
    // 1. The redirect URI, before anything can be redirected.
    let registered: Vec<&str> = app.data["redirectUris"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let wildcards = app.data["allowWildcardInRedirectUris"] == true;
    let redirect_uri = get("redirect_uri");
    match (&redirect_uri, mode) {
        (Some(uri), _) if !redirect_uri::allowed(&registered, uri, wildcards) => {
            return Err(direct(
                "redirect_uri",
                "The redirect_uri does not match a redirect URI of the application.",
            ));
        }
        (None, Some(ResponseMode::PiFlow)) => {}
        (None, _) => return Err(direct("redirect_uri", "redirect_uri is required.")),
        _ => {}
    }
    let state = get("state");
    let response_type = get("response_type").unwrap_or_default();
    let mut response_types: Vec<String> = response_type
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    response_types.sort();
    response_types.dedup();
    let implicit_like = response_types
        .iter()
        .any(|r| r == "token" || r == "id_token");
    let default_mode = if implicit_like {
        ResponseMode::Fragment
    } else {
        ResponseMode::Query
    };
    let fail =
        |error: &'static str, description: &str, mode: ResponseMode| AuthorizeError::Redirect {
            redirect_uri: redirect_uri.clone().unwrap_or_default(),
            mode,
            state: state.clone(),
            error,
            description: description.to_string(),
        };
    let mode = mode.unwrap_or(default_mode);
    if redirect_uri.is_none() && mode != ResponseMode::PiFlow {
        return Err(direct("redirect_uri", "redirect_uri is required."));
    }
    // Implicit responses must never travel in a query string.
    if implicit_like && mode == ResponseMode::Query {
        return Err(fail(
            "invalid_request",
            "Tokens cannot be returned with response_mode=query.",
            ResponseMode::Fragment,
        ));
    }
    // 2. Response type against the application.
    if response_types.is_empty() {
        return Err(fail("invalid_request", "response_type is required.", mode));
    }
    let app_rt: Vec<&str> = app.data["responseTypes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let app_gt: Vec<&str> = app.data["grantTypes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for rt in &response_types {
        let (needed_rt, needed_gt) = match rt.as_str() {
            "code" => ("CODE", "AUTHORIZATION_CODE"),
            "token" => ("TOKEN", "IMPLICIT"),
            "id_token" => ("ID_TOKEN", "IMPLICIT"),
            _ => {
                return Err(fail(
                    "unsupported_response_type",
                    "Unsupported response_type.",
                    mode,
                ));
            }
        };
        if !app_rt.contains(&needed_rt) {
            return Err(fail(
                "unsupported_response_type",
                "The application does not allow this response_type.",
                mode,
            ));
        }
        if !app_gt.contains(&needed_gt) {
            return Err(fail(
                "unauthorized_client",
                "The application does not allow this grant.",
                mode,
            ));
        }
    }
    let scopes: Vec<String> = get("scope")
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let is_oidc = scopes.iter().any(|s| s == "openid");
    if response_types.iter().any(|r| r == "id_token") && !is_oidc {
        return Err(fail(
            "invalid_scope",
            "The id_token response type requires the openid scope.",
            mode,
        ));
    }
    let nonce = get("nonce");
    if implicit_like && is_oidc && response_types.iter().any(|r| r == "id_token") && nonce.is_none()
    {
        return Err(fail(
            "invalid_request",
            "nonce is required for implicit and hybrid requests.",
            mode,
        ));
    }
    // 3. PKCE per the application's enforcement.
    let code_challenge = get("code_challenge");
    let mut method = get("code_challenge_method");
    let enforcement = app.data["pkceEnforcement"].as_str().unwrap_or("OPTIONAL");
    let wants_code = response_types.iter().any(|r| r == "code");
    if let Some(c) = &code_challenge {
        if !pkce_challenge_ok(c) {
            return Err(fail(
                "invalid_request",
                "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~].",
                mode,
            ));
        }
        let m = method.clone().unwrap_or_else(|| "plain".into());
        if m != "plain" && m != "S256" {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be plain or S256.",
                mode,
            ));
        }
        method = Some(m);
    } else if method.is_some() {
        return Err(fail(
            "invalid_request",
            "code_challenge_method without code_challenge.",
            mode,
        ));
    }
    // A public client cannot prove who redeems its code; PKCE is what binds the code to the
    // client instance that asked for it (RFC 9700 §2.1.1), whatever the enforcement says.
    let public = app.data["tokenEndpointAuthMethod"] == "NONE";
    if wants_code && public && code_challenge.is_none() {
        return Err(fail(
            "invalid_request",
            "code_challenge is required for public clients.",
            mode,
        ));
    }
    if wants_code {
        match enforcement {
            "REQUIRED" if code_challenge.is_none() => {
                return Err(fail("invalid_request", "code_challenge is required.", mode));
            }
            "S256_REQUIRED" if method.as_deref() != Some("S256") => {
                return Err(fail(
                    "invalid_request",
                    "code_challenge with code_challenge_method=S256 is required.",
                    mode,
                ));
            }
            _ => {}
        }
    }
    let prompt: Vec<String> = get("prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for p in &prompt {
        if !["login", "none", "consent"].contains(&p.as_str()) {
            return Err(fail("invalid_request", "Unsupported prompt value.", mode));
        }
    }
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other values.",
            mode,
        ));
    }
    let max_age = match get("max_age") {
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            fail(
                "invalid_request",
                "max_age must be a non-negative integer.",
                mode,
            )
        })?),
        None => None,
    };
    if get("request_uri").is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported; send the request object in `request`.",
            mode,
        ));
    }
    let pi_template = match get("pi.template") {
        None => None,
        Some(t) => match serde_json::from_str::<Value>(&t) {
            Ok(v)
                if v["name"]
                    .as_str()
                    .is_some_and(|n| crate::resources::templates::template(n).is_some())
                    && (v.get("variables").is_none() || v["variables"].is_object()) =>
            {
                Some(v)
            }
            _ => {
                return Err(fail(
                    "invalid_request",
                    "pi.template must name a notification template, with optional variant and variables.",
                    mode,
                ));
            }
        },
    };
    Ok(AuthorizeRequest {
        client_id: app.data["clientId"].as_str().unwrap_or(&app.id).to_string(),
        app_id: app.id.clone(),
        redirect_uri,
        response_types,
        response_mode: mode,
        scopes,
        state,
        nonce,
        prompt,
        max_age,
        acr_values: get("acr_values")
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        login_hint: get("login_hint"),
        code_challenge,
        code_challenge_method: method,
        pi_template,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(extra: Value) -> Doc {
        let mut data = json!({
            "enabled": true, "protocol": "OPENID_CONNECT", "clientId": "c1",
            "redirectUris": ["https://app.example.com/cb"], "responseTypes": ["CODE"],
            "grantTypes": ["AUTHORIZATION_CODE"], "pkceEnforcement": "OPTIONAL",
        });
        crate::resources::ops::merge_patch(&mut data, &extra);
        Doc::new("application", "a1", "e1", "", data)
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn redirect_uri_mismatch_is_never_redirected() {
        let e = validate(
            &app(json!({})),
            &p(&[
                ("response_type", "code"),
                ("redirect_uri", "https://evil.example.com/cb"),
            ]),
        )
        .unwrap_err();
        assert!(matches!(e, AuthorizeError::Direct(_)));
        let e = validate(
            &app(json!({})),
            &p(&[
                ("response_type", "code"),
                ("redirect_uri", "https://app.example.com/cb/extra"),
            ]),
        )
        .unwrap_err();
        assert!(matches!(e, AuthorizeError::Direct(_)));
    }

    #[test]
    fn later_errors_go_back_to_the_client() {
        let e = validate(
            &app(json!({})),
            &p(&[
                ("response_type", "token"),
                ("redirect_uri", "https://app.example.com/cb"),
                ("state", "s"),
            ]),
        )
        .unwrap_err();
        match e {
            AuthorizeError::Redirect {
                error, state, mode, ..
            } => {
                assert_eq!(error, "unsupported_response_type");
                assert_eq!(state.as_deref(), Some("s"));
                assert_eq!(mode, ResponseMode::Fragment);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pkce_enforcement() {
        let a = app(json!({ "pkceEnforcement": "S256_REQUIRED" }));
        let base = [
            ("response_type", "code"),
            ("redirect_uri", "https://app.example.com/cb"),
        ];
        assert!(validate(&a, &p(&base)).is_err());
        let ch = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        let mut plain = base.to_vec();
        plain.push(("code_challenge", ch));
        assert!(
            validate(&a, &p(&plain)).is_err(),
            "plain is a downgrade under S256_REQUIRED"
        );
        plain.push(("code_challenge_method", "S256"));
        let r = validate(&a, &p(&plain)).unwrap();
        assert_eq!(r.code_challenge_method.as_deref(), Some("S256"));
    }

    #[test]
    fn implicit_needs_nonce() {
        let a = app(json!({ "responseTypes": ["TOKEN", "ID_TOKEN"], "grantTypes": ["IMPLICIT"] }));
        let base = [
            ("response_type", "token id_token"),
            ("redirect_uri", "https://app.example.com/cb"),
            ("scope", "openid"),
        ];
        assert!(validate(&a, &p(&base)).is_err());
        let mut ok = base.to_vec();
        ok.push(("nonce", "n"));
        assert_eq!(
            validate(&a, &p(&ok)).unwrap().response_mode,
            ResponseMode::Fragment
        );
    }
}
