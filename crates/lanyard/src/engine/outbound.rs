//! The one HTTP client for calls Lanyard makes to other servers (SMS and voice providers,
//! applications' `jwksUrl`): 5-second connect and request timeouts, and no redirects (a
//! provider or key server answers; it does not send us elsewhere); the guard on where those
//! calls may go; and the encoding of values put into URLs.
//!
//! The guard. Outbound URLs are chosen by environment administrators, and a `jwksUrl` is
//! fetched on an unauthenticated token request, so without a guard anyone could make Lanyard
//! call into its own network: loopback services, private ranges, the cloud metadata service
//! at 169.254.169.254. By default a call may only reach a public address ([`is_public`]):
//! - the URL must be http or https;
//! - an IP-literal host is checked before sending (hyper connects to a literal without asking
//!   the resolver);
//! - a host name is resolved by [`PublicOnly`], which drops every non-public address from the
//!   answer: the addresses checked are the ones connected to, so a name that changes its
//!   answer between a check and the connection (DNS rebinding) cannot slip through;
//! - proxies from the environment (`HTTPS_PROXY`…) are not used: through a proxy the guard
//!   would see the proxy's address, not the destination's.
//!
//! `--outbound-allow-private` (`Settings::outbound_allow_private`) lifts the guard, for tests
//! against local servers and for closed networks. The flag is read from the `App` of each
//! call (not a process-wide switch), so apps with different settings can share one process;
//! it picks one of two clients built once: guarded, or open.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::state::App;

pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Why the guard refused a call. The text is for the server log: it names addresses, so it
/// is never shown to the caller of the endpoint that made the call.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the URL is not valid")]
    BadUrl,
    #[error("only http and https URLs may be called")]
    Scheme,
    #[error("{0} is not a public address (see --outbound-allow-private)")]
    Address(IpAddr),
    #[error("the host name resolves to no public address (see --outbound-allow-private)")]
    NoPublicAddress,
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
}

static GUARDED: LazyLock<reqwest::Client> = LazyLock::new(|| {
    builder()
        .dns_resolver(Arc::new(PublicOnly))
        .no_proxy()
        .build()
        // Building fails only without a TLS backend; a default client would lack the guard,
        // so there is no fallback here.
        .expect("the outbound HTTP client can be built")
});

static OPEN: LazyLock<reqwest::Client> = LazyLock::new(|| {
    builder()
        .build()
        .expect("the outbound HTTP client can be built")
});

/// A request to `url` through the client `app`'s settings allow, or why it may not be made.
pub fn request(
    app: &App,
    method: reqwest::Method,
    url: &str,
) -> Result<reqwest::RequestBuilder, Refused> {
    request_with(app.settings.outbound_allow_private, method, url)
}

/// [`request`] with the setting given.
pub fn request_with(
    allow_private: bool,
    method: reqwest::Method,
    url: &str,
) -> Result<reqwest::RequestBuilder, Refused> {
    let url = checked_url(url, allow_private)?;
    let client = if allow_private { &*OPEN } else { &*GUARDED };
    Ok(client.request(method, url))
}

/// The URL when it is http(s) and, unless private destinations are allowed, its host is not
/// an IP literal of a non-public address (names are checked when they are resolved).
fn checked_url(url: &str, allow_private: bool) -> Result<reqwest::Url, Refused> {
    let url = reqwest::Url::parse(url).map_err(|_| Refused::BadUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused::Scheme);
    }
    let host = url.host_str().ok_or(Refused::BadUrl)?;
    // The URL parser has already turned IPv4 spellings such as 0x7f.1 or 2130706433 into
    // dotted quads; IPv6 literals keep their brackets.
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>();
    if let Ok(ip) = literal
        && !allow_private
        && !is_public(ip)
    {
        return Err(Refused::Address(ip));
    }
    Ok(url)
}

/// The guard's refusal behind a failed call, if that is why it failed (the resolver's error
/// travels inside hyper's connect error).
pub fn refusal(e: &reqwest::Error) -> Option<&Refused> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return Some(r);
        }
        source = s.source();
    }
    None
}

/// Why a call failed, for the server log: the error's causes without reqwest's own message,
/// which contains the URL (a provider URL may carry credentials or the message).
pub fn reason(e: &reqwest::Error) -> String {
    if let Some(r) = refusal(e) {
        return r.to_string();
    }
    if e.is_timeout() {
        return "no answer within the timeout".into();
    }
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        "the request failed".into()
    } else {
        parts.join(": ")
    }
}

/// The guarded client's resolver: the system's answer (getaddrinfo, as reqwest's default)
/// without its non-public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public = keep_public(found)?;
            Ok::<Addrs, Box<dyn std::error::Error + Send + Sync>>(Box::new(public.into_iter()))
        })
    }
}

/// The public addresses of a resolver's answer; an error when none is left.
fn keep_public(found: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Refused> {
    let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
    if public.is_empty() {
        return Err(Refused::NoPublicAddress);
    }
    Ok(public)
}

/// Whether `ip` is an address of the public internet: not this host, not a private,
/// link-local or shared (CGNAT) network, not multicast, broadcast, documentation or reserved.
/// IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4) are judged by that address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let internal = a == 0 // "this network", with 0.0.0.0 (RFC 1122)
        || a == 10 // private (RFC 1918)
        || a == 127 // loopback
        || (a == 100 && (64..128).contains(&b)) // shared address space, CGNAT (RFC 6598)
        || (a == 169 && b == 254) // link-local, with cloud metadata 169.254.169.254
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments (RFC 6890)
        || (a == 192 && b == 0 && c == 2) // documentation, TEST-NET-1 (RFC 5737)
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking (RFC 2544)
        || (a == 198 && b == 51 && c == 100) // documentation, TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // documentation, TEST-NET-3
        || a >= 224; // multicast 224/4, reserved 240/4, broadcast 255.255.255.255
    !internal
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // IPv4-mapped ::ffff:0:0/96.
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => is_public_v4(embedded(hi, lo)),
        // NAT64's well-known prefix 64:ff9b::/96 reaches the IPv4 address it carries.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => is_public_v4(embedded(hi, lo)),
        // 6to4 2002::/16 likewise.
        [0x2002, hi, lo, ..] => is_public_v4(embedded(hi, lo)),
        // Teredo 2001::/32 (tunnels to an IPv4 address it hides), benchmarking 2001:2::/48,
        // documentation 2001:db8::/32 and 3fff::/20 (RFC 9637).
        [0x2001, 0, ..] | [0x2001, 2, 0, ..] | [0x2001, 0xdb8, ..] => false,
        [0x3fff, x, ..] if x < 0x1000 => false,
        // Global unicast is 2000::/3; everything else is unspecified, loopback, IPv4-compatible,
        // discard-only, unique-local fc00::/7, link-local fe80::/10, site-local, multicast
        // ff00::/8 or not assigned.
        [x, ..] => x & 0xe000 == 0x2000,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "127.255.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2001::1",
            "2001:2::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!is_public(ip(a)), "{a} must not count as public");
        }
    }

    #[test]
    fn public_addresses_are_public() {
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "169.253.1.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.254",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:4860:4860::8888",
            "3fff:1000::1",
        ] {
            assert!(is_public(ip(a)), "{a} is public");
        }
    }

    #[test]
    fn urls_must_be_http_and_ip_literals_public() {
        for url in [
            "http://127.0.0.1:8080/jwks",
            "https://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://10.0.0.1/",
            "http://0/",
        ] {
            assert!(
                matches!(checked_url(url, false), Err(Refused::Address(_))),
                "{url} refused"
            );
            assert!(
                checked_url(url, true).is_ok(),
                "{url} allowed when private is"
            );
        }
        for url in ["file:///etc/passwd", "ftp://8.8.8.8/", "gopher://8.8.8.8/"] {
            assert!(
                matches!(checked_url(url, true), Err(Refused::Scheme)),
                "{url}"
            );
        }
        assert!(matches!(
            checked_url("not a url", false),
            Err(Refused::BadUrl)
        ));
        assert!(checked_url("https://8.8.8.8/", false).is_ok());
        assert!(checked_url("https://[2606:4700:4700::1111]/", false).is_ok());
        // Names are left to the resolver.
        assert!(checked_url("https://keys.example.com/jwks", false).is_ok());
    }

    #[test]
    fn the_resolver_keeps_only_public_addresses() {
        let sa = |s: &str| SocketAddr::new(ip(s), 0);
        assert_eq!(
            keep_public(vec![sa("127.0.0.1"), sa("8.8.8.8"), sa("::1")]).unwrap(),
            vec![sa("8.8.8.8")]
        );
        assert!(matches!(
            keep_public(vec![sa("127.0.0.1"), sa("::1")]),
            Err(Refused::NoPublicAddress)
        ));
        assert!(matches!(keep_public(vec![]), Err(Refused::NoPublicAddress)));
    }

    /// A name resolving to loopback is refused by the guarded client at connection time, and
    /// the refusal can be told from other failures.
    #[tokio::test]
    async fn a_name_for_loopback_is_refused_when_connecting() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://localhost:{port}/");
        let err = request_with(false, reqwest::Method::GET, &url)
            .unwrap()
            .send()
            .await
            .expect_err("refused");
        assert!(
            matches!(refusal(&err), Some(Refused::NoPublicAddress)),
            "{}",
            reason(&err)
        );
        assert!(!reason(&err).contains(&url), "{}", reason(&err));
    }
}
