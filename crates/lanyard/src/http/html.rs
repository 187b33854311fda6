//! What every HTML page Lanyard renders shares: escaping, the headers that keep a page from
//! being framed, sniffed, cached or leaking its URL, and the CSP source of a redirect target.

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// Security headers of a rendered page; `csp` is its Content-Security-Policy.
pub fn security_headers(r: &mut Response, csp: &str) {
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// `scheme://host[:port]` of an absolute http(s) URL, if it is one that is safe to put in a CSP.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        // Custom schemes (native apps) are not listed: the page's own origin still works,
        // and a scheme alone would allow far too much.
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
    {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_origins_for_form_action() {
        assert_eq!(
            origin("https://app.example.com:8443/cb?x=1").as_deref(),
            Some("https://app.example.com:8443")
        );
        assert_eq!(
            origin("http://127.0.0.1:5000/callback").as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(origin("com.example.app://callback"), None);
        assert_eq!(origin("https://a.example.com;script-src *"), None);
        assert_eq!(
            origin("https://user@a.example.com/x").as_deref(),
            Some("https://a.example.com")
        );
    }
}
