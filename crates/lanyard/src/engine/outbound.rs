//! The one HTTP client for calls Lanyard makes to other servers (SMS and voice providers,
//! applications' `jwksUrl`): 5-second connect and request timeouts, and no redirects (a
//! provider or key server answers; it does not send us elsewhere).

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
