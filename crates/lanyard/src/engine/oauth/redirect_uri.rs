//! Redirect URIs (`redirectUris`, `postLogoutRedirectUris`, and the `redirect_uri` of a
//! request): which may ever receive a browser, and how a registered URI matches a requested one.
//!
//! - A scheme that runs script where it lands (`javascript:`, `data:`, `vbscript:`) is refused
//!   however it is spelled: any case, percent-encoded, or with the tabs, newlines and leading
//!   control characters a browser's URL parser drops.
//! - Without a wildcard, a registered URI matches only itself, byte for byte (RFC 9700 §4.1.3).
//! - A wildcard (when the application allows them) is a whole leftmost label of an http(s)
//!   host: `https://*.example.com/cb`. It stands for one or more DNS labels there and nothing
//!   else; scheme, the rest of the host, port, userinfo, path and query are compared exactly,
//!   on the parsed URL (never on the string, where `https://evil.example/.example.com/cb` would
//!   "end with" `.example.com/cb`).

use url::{Host, Url};

/// Schemes whose URL runs script in the page that follows it.
const SCRIPT_SCHEMES: &[&str] = &["javascript", "data", "vbscript"];

/// What a browser would take as the scheme of `uri`: control characters and whitespace
/// dropped, percent-encoding undone (repeatedly: `%256a` is `%6a` is `j`), lower case.
fn effective_scheme(uri: &str) -> String {
    let mut s: String = uri
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect();
    for _ in 0..4 {
        let decoded = percent_encoding::percent_decode_str(&s)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == s {
            break;
        }
        s = decoded
            .chars()
            .filter(|c| !c.is_whitespace() && !c.is_control())
            .collect();
    }
    s.split(':').next().unwrap_or_default().to_ascii_lowercase()
}

/// Whether `uri` would run script where it lands.
pub fn runs_script(uri: &str) -> bool {
    let parsed = Url::parse(uri).map(|u| u.scheme().to_string());
    SCRIPT_SCHEMES
        .iter()
        .any(|s| effective_scheme(uri) == *s || parsed.as_deref() == Ok(*s))
}

/// Why a registered URI with `*` is not an acceptable wildcard pattern, if it is not.
pub fn wildcard_problem(pattern: &str) -> Option<&'static str> {
    const WHERE: &str = "A wildcard may only stand for the leftmost labels of an http or https host, as in https://*.example.com/callback.";
    let Some((scheme, rest)) = pattern.split_once("://") else {
        return Some(WHERE);
    };
    if scheme != "https" && scheme != "http" {
        return Some(WHERE);
    }
    // Only `*.` at the very start of the authority, and no other `*` anywhere.
    let Some(after) = rest.strip_prefix("*.") else {
        return Some(WHERE);
    };
    if after.contains('*') {
        return Some(WHERE);
    }
    let Ok(url) = Url::parse(&format!("{scheme}://{after}")) else {
        return Some(WHERE);
    };
    match url.host() {
        Some(Host::Domain(d)) if d.split('.').filter(|l| !l.is_empty()).count() >= 2 => None,
        Some(Host::Domain(_)) => {
            Some("A wildcard must be followed by at least two labels of the host (*.example.com).")
        }
        _ => Some(WHERE),
    }
}

/// Whether `registered` (exact, or a wildcard pattern when `wildcards`) admits `uri`.
pub fn matches(registered: &str, uri: &str, wildcards: bool) -> bool {
    if registered == uri {
        return true;
    }
    if !wildcards || !registered.contains('*') || wildcard_problem(registered).is_some() {
        return false;
    }
    let Some((scheme, rest)) = registered.split_once("://") else {
        return false;
    };
    let Some(suffix_authority) = rest.strip_prefix("*.") else {
        return false;
    };
    let (Ok(pattern), Ok(given)) = (
        Url::parse(&format!("{scheme}://{suffix_authority}")),
        Url::parse(uri),
    ) else {
        return false;
    };
    let (Some(Host::Domain(suffix)), Some(Host::Domain(host))) = (pattern.host(), given.host())
    else {
        return false;
    };
    // The labels the wildcard stands for: one or more, each a DNS label.
    let Some(labels) = host.strip_suffix(suffix).and_then(|h| h.strip_suffix('.')) else {
        return false;
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    labels.split('.').all(label_ok)
        && given.scheme() == pattern.scheme()
        && given.username() == pattern.username()
        && given.password() == pattern.password()
        && given.port() == pattern.port()
        && given.path() == pattern.path()
        && given.query() == pattern.query()
        && given.fragment().is_none()
        // The parsed form must be what was sent: no normalisation may have made it match.
        && given.as_str().trim_end_matches('/') == uri.trim_end_matches('/')
}

/// Whether `uri` matches one of the `registered` redirect URIs.
pub fn allowed(registered: &[&str], uri: &str, wildcards: bool) -> bool {
    !runs_script(uri) && registered.iter().any(|r| matches(r, uri, wildcards))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_schemes_in_any_spelling() {
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "javascript://%0aalert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "\u{1}javascript:alert(1)",
            "%6Aavascript:alert(1)",
            "%256Aavascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "DATA://text/html;base64,PHNjcmlwdD4=",
            "vbscript:msgbox(1)",
            "VBScript://x",
        ] {
            assert!(runs_script(bad), "{bad:?}");
        }
        for good in [
            "https://app.example.com/cb",
            "com.example.app:/oauth2redirect",
            "http://127.0.0.1:3000/cb",
            "https://example.com/javascript:x",
        ] {
            assert!(!runs_script(good), "{good:?}");
        }
    }

    #[test]
    fn wildcards_stand_for_leftmost_host_labels_only() {
        let p = "https://*.example.com/cb";
        for ok in ["https://a.example.com/cb", "https://a-b.c.example.com/cb"] {
            assert!(matches(p, ok, true), "{ok}");
        }
        for bad in [
            "https://evil.example/.example.com/cb",
            "https://evil.example/x.example.com/cb",
            "https://a.example.com.evil.example/cb",
            "https://a.example.com@evil.example/cb",
            "https://x@a.example.com/cb",
            "https://a.example.com:8443/cb",
            "https://a.example.com/cb/extra",
            "https://a.example.com/cb?x=1",
            "https://a.example.com/cb#x",
            "http://a.example.com/cb",
            "https://example.com/cb",
            "https://.example.com/cb",
            "https://a..example.com/cb",
            "https://a%2eevil.example.com/cb",
            "https://-a.example.com/cb",
            "https://aexample.com/cb",
        ] {
            assert!(!matches(p, bad, true), "{bad}");
        }
        assert!(
            !matches(p, "https://a.example.com/cb", false),
            "only when allowed"
        );
    }

    #[test]
    fn wildcard_patterns_are_checked_when_saved() {
        assert_eq!(wildcard_problem("https://*.example.com/cb"), None);
        assert_eq!(wildcard_problem("http://*.apps.example.com:8080/cb"), None);
        for bad in [
            "https://app.example.com/*",
            "https://a*.example.com/cb",
            "https://*.com/cb",
            "https://*/cb",
            "https://*.*.example.com/cb",
            "https://x.*.example.com/cb",
            "myapp://*.example.com/cb",
            "https://*.example.com/cb?x=*",
            "https://*.127.0.0.1/cb",
        ] {
            assert!(wildcard_problem(bad).is_some(), "{bad}");
        }
    }
}
