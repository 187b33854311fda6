//! One-time passcodes: random numeric codes for SMS, voice and email (from the system CSPRNG,
//! kept only as a salted SHA-256, compared in constant time) and TOTP (RFC 6238: HMAC-SHA1,
//! 6 digits, 30-second steps) for authenticator apps.
//!
//! TOTP is computed with aws-lc-rs's HMAC (the project's one crypto provider) rather than a
//! TOTP crate that would bring a second SHA-1/HMAC implementation.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::engine::secrets;

/// TOTP parameters (what authenticator apps assume when the key URI says nothing else).
pub const TOTP_DIGITS: u32 = 6;
pub const TOTP_STEP: i64 = 30;
/// Steps either side of now that are accepted (clock drift).
pub const TOTP_SKEW: i64 = 1;

/// A random numeric code of `len` digits (no modulo bias: bytes above the last full
/// multiple of 10 are drawn again).
pub fn numeric_code(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in secrets::random_bytes(len * 2) {
            if b < 250 && out.len() < len {
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
    out
}

/// What is kept of a sent code: never the code itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Challenge {
    pub salt: String,
    pub hash: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// base64url(SHA-256(salt ‖ 0 ‖ code)): how every one-time code is kept.
pub fn digest(salt: &str, code: &str) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(salt.as_bytes());
    ctx.update(b"\0");
    ctx.update(code.as_bytes());
    URL_SAFE_NO_PAD.encode(ctx.finish())
}

impl Challenge {
    /// A new challenge for `code`, valid until `expires_at`.
    pub fn new(code: &str, expires_at: i64) -> Challenge {
        let salt = URL_SAFE_NO_PAD.encode(secrets::random_bytes(16));
        Challenge {
            hash: digest(&salt, code),
            salt,
            expires_at,
        }
    }

    pub fn expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }

    /// Whether `input` (spaces ignored) is the code; constant time in the code.
    pub fn matches(&self, input: &str) -> bool {
        let typed: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        !self.hash.is_empty() && secrets::secret_eq(&digest(&self.salt, &typed), &self.hash)
    }
}

// ---- TOTP ----

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (how key URIs carry TOTP secrets).
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes base32 (case-insensitive, padding and spaces ignored); None on other characters.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.chars().filter(|c| *c != '=' && !c.is_whitespace()) {
        let v = BASE32
            .iter()
            .position(|&x| x as char == c.to_ascii_uppercase())? as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

/// A new TOTP secret (160 bits, as RFC 4226 recommends), base32-encoded.
pub fn new_totp_secret() -> String {
    base32_encode(&secrets::random_bytes(20))
}

/// The HOTP value (RFC 4226) of `secret` at `counter`.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let h = tag.as_ref();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let bin = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    format!(
        "{:0width$}",
        bin % 10u32.pow(digits),
        width = digits as usize
    )
}

/// The TOTP step of a unix time.
pub fn totp_step(unix: i64) -> i64 {
    unix.div_euclid(TOTP_STEP)
}

/// The TOTP code at `unix` for a base32 secret.
pub fn totp(secret_b32: &str, unix: i64) -> Option<String> {
    let key = base32_decode(secret_b32)?;
    Some(hotp(&key, totp_step(unix) as u64, TOTP_DIGITS))
}

/// Checks a TOTP code within ±`TOTP_SKEW` steps of `unix`, refusing any step at or before
/// `last_step` (a code is accepted once). Returns the step that matched.
pub fn totp_verify(
    secret_b32: &str,
    input: &str,
    unix: i64,
    last_step: Option<i64>,
) -> Option<i64> {
    let key = base32_decode(secret_b32)?;
    let typed: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    let now = totp_step(unix);
    let mut found = None;
    // Every candidate is computed and compared, so timing says nothing about which matched.
    for step in (now - TOTP_SKEW)..=(now + TOTP_SKEW) {
        let code = hotp(&key, step as u64, TOTP_DIGITS);
        if secrets::secret_eq(&code, &typed) && last_step.is_none_or(|l| step > l) {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` key URI authenticator apps scan (Google Authenticator key URI format).
pub fn key_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    let enc = crate::engine::outbound::url_component;
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B: the ASCII secret "12345678901234567890", 8 digits.
        let key = b"12345678901234567890";
        for (t, want) in [
            (59i64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
        ] {
            assert_eq!(hotp(key, (t / 30) as u64, 8), want, "t={t}");
        }
        let b32 = base32_encode(key);
        assert_eq!(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(totp(&b32, 59).unwrap(), "287082");
    }

    #[test]
    fn base32_round_trip() {
        for n in 0..40 {
            let b = secrets::random_bytes(n);
            assert_eq!(base32_decode(&base32_encode(&b)).unwrap(), b);
        }
        assert!(base32_decode("not base32!").is_none());
        assert_eq!(base32_decode("mzxw6===").unwrap(), b"foo");
    }

    #[test]
    fn totp_accepts_skew_once() {
        let s = new_totp_secret();
        let now = 1_700_000_000;
        let code = totp(&s, now - 30).unwrap();
        let step = totp_verify(&s, &code, now, None).expect("one step back is accepted");
        assert!(
            totp_verify(&s, &code, now, Some(step)).is_none(),
            "replay refused"
        );
        let old = totp(&s, now - 90).unwrap();
        assert!(totp_verify(&s, &old, now, None).is_none() || old == code);
        assert!(totp_verify(&s, "12345", now, None).is_none());
    }

    #[test]
    fn numeric_codes_and_challenges() {
        let c = numeric_code(8);
        assert_eq!(c.len(), 8);
        assert!(c.chars().all(|ch| ch.is_ascii_digit()));
        let ch = Challenge::new(&c, 100);
        assert!(ch.matches(&c) && ch.matches(&format!(" {c} ")));
        assert!(!ch.matches("00000000") || c == "00000000");
        assert!(!ch.expired(99) && ch.expired(100));
        assert!(!Challenge::default().matches(""));
    }

    #[test]
    fn key_uri_is_escaped() {
        let u = key_uri("My Env", "jane doe@x.com", "ABC");
        assert!(
            u.starts_with("otpauth://totp/My%20Env:jane%20doe%40x.com?secret=ABC&issuer=My%20Env")
        );
    }
}
