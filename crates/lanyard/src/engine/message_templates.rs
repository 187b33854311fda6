//! Renders a notification from the environment's template contents: the content is chosen by
//! template, delivery method, variant and the user's locale (exact, then the language, then
//! `en`, then any), and `${...}` variables are filled from the values given (the OTP, the
//! request's `pi.template` variables) and the user's attributes (`${user.username}`,
//! `${user.name.given}` ...). Unknown variables render empty. Variable names compare
//! case-insensitively (PingOne's own samples write both `${otp}` and `${OTP}`).

use serde_json::{Map, Value};

use crate::engine::notifications::Channel;
use crate::error::ApiResult;
use crate::resources::templates::{self, KIND};
use crate::state::App;
use crate::store::{Doc, json_path};

pub struct Rendered {
    pub subject: String,
    pub body: String,
    /// The content's email sender, when it sets one.
    pub from: Option<String>,
}

/// The template content delivery method of a channel.
fn method_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "Email",
        Channel::Sms => "SMS",
        Channel::Voice => "Voice",
    }
}

fn locale_rank(content_locale: &str, wanted: &str) -> u8 {
    let c = content_locale.to_ascii_lowercase().replace('_', "-");
    let w = wanted.to_ascii_lowercase().replace('_', "-");
    let lang = |s: &str| s.split('-').next().unwrap_or_default().to_string();
    if !w.is_empty() && c == w {
        0
    } else if !w.is_empty() && lang(&c) == lang(&w) {
        1
    } else if c == "en" {
        2
    } else if lang(&c) == "en" {
        3
    } else {
        4
    }
}

/// Fills `${name}` placeholders.
pub fn fill(text: &str, vars: &Map<String, Value>, user: Option<&Doc>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find('}') else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let name = &after[..j];
        out.push_str(&value_of(name, vars, user));
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    out
}

fn value_of(name: &str, vars: &Map<String, Value>, user: Option<&Doc>) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    if let Some((_, v)) = vars.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
        return text(v);
    }
    if let (Some(path), Some(u)) = (name.strip_prefix("user."), user)
        && !path.starts_with('_')
    {
        return json_path(&u.data, path).map(text).unwrap_or_default();
    }
    String::new()
}

/// Renders `template` for `channel` to `user`, choosing the content by variant and locale.
pub async fn render(
    app: &App,
    env_id: &str,
    template: &str,
    variant: Option<&str>,
    channel: Channel,
    user: Option<&Doc>,
    vars: &Map<String, Value>,
) -> ApiResult<Rendered> {
    let method = method_name(channel);
    let wanted = user
        .and_then(|u| {
            u.data["locale"]
                .as_str()
                .or(u.data["preferredLanguage"].as_str())
        })
        .unwrap_or("en")
        .to_string();
    // Template contents are configuration: cached like the rest of the sign-on configuration.
    let contents = app.cached_children(KIND, env_id, template).await?;
    let variant = variant.filter(|v| !v.is_empty());
    let pick = |want_variant: Option<&str>| {
        contents
            .iter()
            .filter(|c| c.data["deliveryMethod"].as_str() == Some(method))
            .filter(|c| match want_variant {
                Some(v) => c.data["variant"]
                    .as_str()
                    .is_some_and(|cv| cv.eq_ignore_ascii_case(v)),
                None => c.data["variant"].as_str().is_none_or(str::is_empty),
            })
            .min_by_key(|c| locale_rank(c.data["locale"].as_str().unwrap_or_default(), &wanted))
    };
    // The named variant, else the template's plain content.
    let chosen = variant.and_then(|v| pick(Some(v))).or_else(|| pick(None));
    let (subject, body, from) = match chosen {
        Some(c) => {
            let body = c.data["content"]
                .as_str()
                .or(c.data["body"].as_str())
                .unwrap_or_default();
            let from =
                c.data["from"]["address"]
                    .as_str()
                    .map(|a| match c.data["from"]["name"].as_str() {
                        Some(n) if !n.is_empty() => format!("{n} <{a}>"),
                        _ => a.to_string(),
                    });
            (
                c.data["subject"].as_str().unwrap_or_default().to_string(),
                body.to_string(),
                from,
            )
        }
        None => match templates::default_content(template, method) {
            Some(d) => (
                d.subject.unwrap_or_default().to_string(),
                d.body.to_string(),
                None,
            ),
            None => (String::new(), String::new(), None),
        },
    };
    Ok(Rendered {
        subject: fill(&subject, vars, user),
        body: fill(&body, vars, user),
        from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_variables() {
        let user = Doc::new(
            "user",
            "u",
            "e",
            "",
            json!({ "username": "jdoe", "name": { "given": "Jane" }, "_password": { "x": 1 } }),
        );
        let vars = json!({ "otp": "123456", "sum": 10 })
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            fill(
                "Hi ${user.name.given} (${user.username}): ${OTP} for ${sum} ${nope}${user._password} ${unclosed",
                &vars,
                Some(&user)
            ),
            "Hi Jane (jdoe): 123456 for 10  ${unclosed"
        );
    }

    #[test]
    fn locale_preference() {
        assert!(locale_rank("fr-CA", "fr-CA") < locale_rank("fr", "fr-CA"));
        assert!(locale_rank("fr", "fr-CA") < locale_rank("en", "fr-CA"));
        assert!(locale_rank("en", "de") < locale_rank("es", "de"));
    }
}
