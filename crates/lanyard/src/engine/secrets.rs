//! Encryption at rest for material the API must return later (client secrets, private keys):
//! AES-256-GCM under the master key, which comes from `LANYARD_MASTER_KEY` or the data dir.

use std::path::Path;

use anyhow::{Context, anyhow};
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

const PREFIX: &str = "v1:";

pub struct MasterKey {
    key: RandomizedNonceKey,
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        if bytes.len() != 32 {
            return Err(anyhow!("the master key must be 32 bytes (base64-encoded)"));
        }
        Ok(MasterKey {
            key: RandomizedNonceKey::new(&AES_256_GCM, bytes)
                .map_err(|_| anyhow!("invalid master key"))?,
        })
    }

    /// The key given in config, else `<data-dir>/master.key`, created (mode 0600) on first start.
    pub fn load_or_create(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        if let Some(b64) = configured {
            let bytes = STANDARD
                .decode(b64.trim())
                .context("LANYARD_MASTER_KEY must be base64")?;
            return Self::from_bytes(&bytes);
        }
        let path = data_dir.join("master.key");
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let bytes = STANDARD
                .decode(text.trim())
                .context("master.key must be base64")?;
            return Self::from_bytes(&bytes);
        }
        let bytes = random_bytes(32);
        crate::fsutil::write_private(&path, STANDARD.encode(&bytes).as_bytes())?;
        Self::from_bytes(&bytes)
    }

    pub fn encrypt(&self, plain: &[u8]) -> String {
        let mut buf = plain.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::empty(), &mut buf)
            .expect("AES-GCM sealing cannot fail");
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&buf);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    pub fn decrypt(&self, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let b64 = sealed
            .strip_prefix(PREFIX)
            .ok_or_else(|| anyhow!("unknown secret format"))?;
        let raw = STANDARD.decode(b64)?;
        if raw.len() < NONCE_LEN {
            return Err(anyhow!("sealed secret too short"));
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow!("bad nonce"))?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut body)
            .map_err(|_| anyhow!("secret does not decrypt under this master key"))?;
        Ok(plain.to_vec())
    }

    pub fn encrypt_json(&self, v: &serde_json::Value) -> String {
        self.encrypt(v.to_string().as_bytes())
    }

    pub fn decrypt_json(&self, sealed: &str) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.decrypt(sealed)?)?)
    }
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).expect("the system RNG works");
    b
}

/// A random secret of `[A-Za-z0-9-_]` characters (64 characters: 384 bits).
pub fn random_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(48))
}

/// Constant-time equality for secrets.
pub fn secret_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let k = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let sealed = k.encrypt(b"hello");
        assert_ne!(k.encrypt(b"hello"), sealed, "nonces differ");
        assert_eq!(k.decrypt(&sealed).unwrap(), b"hello");
        let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.decrypt(&sealed).is_err());
        assert!(MasterKey::from_bytes(&[1u8; 16]).is_err());
        assert!(secret_eq("abc", "abc") && !secret_eq("abc", "abd") && !secret_eq("abc", "ab"));
    }
}
