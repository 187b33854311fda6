//! Sends an SMS or voice message through a custom phone delivery provider: the request's URL
//! and body templates get `${to}`, `${message}`, `${from}` (escaped for where they go: the
//! query string, a JSON body or a form body), its headers and the provider credentials. Each
//! attempt has the outbound client's 5-second timeout; a timeout, connection failure or 5xx answer is retried once.
//! The provider's URL goes through the outbound guard (public addresses only unless
//! `--outbound-allow-private`); a refused or unreachable provider is recorded as "could not
//! be reached", the same words for both, and the reason is logged: the outbox and the flow
//! show the error, and they must not map the network behind Lanyard.

use base64::Engine;
use serde_json::Value;

use super::notifications::{Channel, Message};
use super::outbound;
use crate::state::App;

const ATTEMPTS: usize = 2;
const UNREACHABLE: &str = "the provider could not be reached";

#[derive(Clone, Copy, PartialEq)]
enum Escape {
    Url,
    Json,
    Raw,
}

fn escape(s: &str, how: Escape) -> String {
    match how {
        Escape::Url => crate::engine::outbound::url_component(s),
        Escape::Json => {
            let quoted = Value::String(s.to_string()).to_string();
            quoted[1..quoted.len() - 1].to_string()
        }
        Escape::Raw => s.to_string(),
    }
}

fn fill(template: &str, vars: &[(&str, &str)], how: Escape) -> String {
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), &escape(v, how));
    }
    out
}

/// How a body's variables are escaped, from its Content-Type header.
fn body_escape(headers: &serde_json::Map<String, Value>) -> Escape {
    let ct = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if ct.contains("json") {
        Escape::Json
    } else if ct.contains("x-www-form-urlencoded") {
        Escape::Url
    } else {
        Escape::Raw
    }
}

/// Sends `m` with the provider `request` (one of the settings' `requests`) and `auth`
/// (the settings' `authentication` with its unsealed credentials).
pub async fn send(app: &App, request: &Value, auth: &Value, m: &Message<'_>) -> Result<(), String> {
    let to = if request["phoneNumberFormat"] == "NUMBER_ONLY" {
        m.to.trim_start_matches('+').to_string()
    } else {
        m.to.to_string()
    };
    let message = if m.channel == Channel::Voice {
        format!(
            "{}{}{}",
            request["beforeTag"].as_str().unwrap_or_default(),
            m.body,
            request["afterTag"].as_str().unwrap_or_default()
        )
    } else {
        m.body.to_string()
    };
    let vars = [
        ("to", to.as_str()),
        ("message", message.as_str()),
        ("from", ""),
    ];
    let url = fill(
        request["url"].as_str().unwrap_or_default(),
        &vars,
        Escape::Url,
    );
    let empty = serde_json::Map::new();
    let headers = request["headers"].as_object().unwrap_or(&empty);
    let method = if request["method"] == "POST" {
        reqwest::Method::POST
    } else {
        reqwest::Method::GET
    };
    let body = fill(
        request["body"].as_str().unwrap_or_default(),
        &vars,
        body_escape(headers),
    );
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        let mut rb = outbound::request(app, method.clone(), &url)
            .map_err(|r| unreachable(m, &r.to_string()))?;
        if method == reqwest::Method::POST {
            rb = rb.body(body.clone());
        }
        for (k, v) in headers {
            rb = rb.header(k.as_str(), v.as_str().unwrap_or_default());
        }
        rb = match auth["method"].as_str() {
            Some("BASIC") => {
                let pair = format!(
                    "{}:{}",
                    auth["username"].as_str().unwrap_or_default(),
                    auth["password"].as_str().unwrap_or_default()
                );
                rb.header(
                    "Authorization",
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    ),
                )
            }
            Some("BEARER") => rb.bearer_auth(auth["authToken"].as_str().unwrap_or_default()),
            Some("CUSTOM_HEADER") => rb.header(
                auth["headerName"].as_str().unwrap_or("Authorization"),
                auth["headerValue"].as_str().unwrap_or_default(),
            ),
            _ => rb,
        };
        match rb.send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status().is_server_error() => {
                last = format!("the provider answered {}", r.status().as_u16());
            }
            Ok(r) => return Err(format!("the provider answered {}", r.status().as_u16())),
            // The guard refused the address the provider's name resolved to: no retry.
            Err(e) if outbound::refusal(&e).is_some() => {
                return Err(unreachable(m, &outbound::reason(&e)));
            }
            Err(e) if e.is_timeout() => last = "the provider did not answer in time".into(),
            Err(e) => last = unreachable(m, &outbound::reason(&e)),
        }
    }
    Err(last)
}

/// Logs why the provider could not be reached (the reason names addresses, never the URL,
/// which may carry credentials or the message) and returns the words recorded for it.
fn unreachable(m: &Message<'_>, reason: &str) -> String {
    tracing::warn!(
        environment_id = %m.env_id,
        channel = m.channel.name(),
        %reason,
        "the phone delivery provider could not be reached"
    );
    UNREACHABLE.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_by_place() {
        let vars = [("to", "+15125551234"), ("message", "Code \"1 2\"&x")];
        assert_eq!(
            fill("https://p/s?to=${to}&m=${message}", &vars, Escape::Url),
            "https://p/s?to=%2B15125551234&m=Code%20%221%202%22%26x"
        );
        assert_eq!(
            fill(r#"{"to":"${to}","m":"${message}"}"#, &vars, Escape::Json),
            r#"{"to":"+15125551234","m":"Code \"1 2\"&x"}"#
        );
    }
}
