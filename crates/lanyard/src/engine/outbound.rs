//! The one HTTP client for calls Lanyard makes to other servers (SMS and voice providers,
//! applications' `jwksUrl`): 5-second connect and request timeouts, and no redirects (a
//! provider or key server answers; it does not send us elsewhere); and the encoding of values
//! put into URLs.

use std::sync::LazyLock;
use std::time::Duration;

pub const TIMEOUT: Duration = Duration::from_secs(5);

static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
});

pub fn client() -> &'static reqwest::Client {
    &CLIENT
}

/// RFC 3986 unreserved characters stay; everything else is percent-encoded (for a value put
/// into a URL's path or query).
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn url_component(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}
