//! Signing keys: RSA-2048 keys with self-signed certificates, generated per environment,
//! stored encrypted, cached parsed in memory, and used to sign and verify compact JWS (RS256).
//! Signing goes straight through aws-lc-rs with the parsed key kept in memory: parsing the DER
//! key on every signature (as generic JWT crates do) would cost more than the signature itself.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use parking_lot::RwLock;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::clock;
use crate::engine::secrets::{MasterKey, random_bytes};
use crate::store::{Doc, ListQuery, Store};

pub const KIND: &str = "key";

pub struct SigningKey {
    pub id: String,
    pub env_id: String,
    pair: RsaKeyPair,
    n: Vec<u8>,
    e: Vec<u8>,
    cert_der: Vec<u8>,
}

impl SigningKey {
    fn from_parts(id: &str, env_id: &str, pkcs8: &[u8], cert_der: Vec<u8>) -> anyhow::Result<Self> {
        let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| anyhow!("bad signing key: {e}"))?;
        let pk = pair.public_key();
        let n = pk.modulus().big_endian_without_leading_zero().to_vec();
        let e = pk.exponent().big_endian_without_leading_zero().to_vec();
        Ok(SigningKey {
            id: id.into(),
            env_id: env_id.into(),
            pair,
            n,
            e,
            cert_der,
        })
    }

    /// The public JWK, as published at `/as/jwks`.
    pub fn jwk(&self) -> Value {
        use aws_lc_rs::digest;
        let x5t = URL_SAFE_NO_PAD.encode(digest::digest(
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            &self.cert_der,
        ));
        let x5t256 = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &self.cert_der));
        json!({
            "kty": "RSA",
            "kid": self.id,
            "use": "sig",
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
            "x5c": [STANDARD.encode(&self.cert_der)],
            "x5t": x5t,
            "x5t#S256": x5t256,
        })
    }

    /// Signs `claims` as a compact JWS with RS256 and this key's `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": self.id });
        let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                out.as_bytes(),
                &mut sig,
            )
            .expect("RSA signing with a valid key cannot fail");
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig));
        out
    }

    fn verify_signature(&self, message: &[u8], sig: &[u8]) -> bool {
        RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
        .is_ok()
    }
}

/// Generates a new RSA-2048 signing key: the stored document and its sealed private material.
pub fn generate(env_id: &str, org_id: &str, name: &str, master: &MasterKey) -> anyhow::Result<Doc> {
    let pair =
        RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow!("RSA key generation failed"))?;
    let pkcs8 = pair
        .as_der()
        .map_err(|_| anyhow!("cannot encode key"))?
        .as_ref()
        .to_vec();
    let now = OffsetDateTime::now_utc();
    let not_after = now + Duration::days(365);
    let subject = format!("CN={name}, OU=Lanyard, O=Lanyard");
    let serial = random_bytes(8);
    let serial_number =
        i64::from_be_bytes(serial.clone().try_into().unwrap_or([1; 8])).unsigned_abs() >> 1;

    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .context("loading the key for its certificate")?;
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, name);
    dn.push(rcgen::DnType::OrganizationalUnitName, "Lanyard");
    dn.push(rcgen::DnType::OrganizationName, "Lanyard");
    params.distinguished_name = dn;
    params.not_before = now - Duration::minutes(5);
    params.not_after = not_after;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(
        &serial_number.to_be_bytes(),
    ));
    let cert = params
        .self_signed(&kp)
        .context("self-signing the certificate")?;

    let id = uuid::Uuid::new_v4().to_string();
    let data = json!({
        "name": name,
        "subjectDN": subject,
        "issuerDN": subject,
        "algorithm": "RSA",
        "keyLength": 2048,
        "signatureAlgorithm": "SHA256withRSA",
        "usageType": "SIGNING",
        "validityPeriod": 365,
        "default": true,
        "serialNumber": serial_number,
        "startsAt": clock::format(now),
        "expiresAt": clock::format(not_after),
        "status": "VALID",
        "organization": { "id": org_id },
    });
    let mut doc = Doc::new(KIND, &id, env_id, "", data);
    doc.secrets = Some(master.encrypt_json(&json!({
        "pkcs8": STANDARD.encode(&pkcs8),
        "certificate": STANDARD.encode(cert.der()),
    })));
    Ok(doc)
}

fn load(doc: &Doc, master: &MasterKey) -> anyhow::Result<SigningKey> {
    let sealed = doc
        .secrets
        .as_deref()
        .ok_or_else(|| anyhow!("key {} has no private material", doc.id))?;
    let s = master.decrypt_json(sealed)?;
    let field = |k: &str| -> anyhow::Result<Vec<u8>> {
        Ok(STANDARD.decode(
            s.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("missing {k}"))?,
        )?)
    };
    SigningKey::from_parts(
        &doc.id,
        &doc.env_id,
        &field("pkcs8")?,
        field("certificate")?,
    )
}

/// Parsed signing keys by kid, and each environment's default signing key.
#[derive(Default)]
pub struct KeyCache {
    by_kid: RwLock<HashMap<String, Arc<SigningKey>>>,
    default_for_env: RwLock<HashMap<String, String>>,
}

impl KeyCache {
    pub async fn default_key(
        &self,
        store: &Store,
        master: &MasterKey,
        env_id: &str,
    ) -> anyhow::Result<Option<Arc<SigningKey>>> {
        let kid = self.default_for_env.read().get(env_id).cloned();
        if let Some(k) = kid.and_then(|kid| self.by_kid.read().get(&kid).cloned()) {
            return Ok(Some(k));
        }
        let keys = self.env_keys(store, env_id).await?;
        let Some(doc) = keys
            .iter()
            .find(|d| d.data["usageType"] == "SIGNING" && d.data["default"] == true)
        else {
            return Ok(None);
        };
        let key = Arc::new(load(doc, master)?);
        self.by_kid.write().insert(key.id.clone(), key.clone());
        self.default_for_env
            .write()
            .insert(env_id.to_string(), key.id.clone());
        Ok(Some(key))
    }

    pub async fn by_kid(
        &self,
        store: &Store,
        master: &MasterKey,
        env_id: &str,
        kid: &str,
    ) -> anyhow::Result<Option<Arc<SigningKey>>> {
        if let Some(k) = self.by_kid.read().get(kid).filter(|k| k.env_id == env_id) {
            return Ok(Some(k.clone()));
        }
        if uuid::Uuid::parse_str(kid).is_err() {
            return Ok(None);
        }
        let Some(doc) = store
            .read()
            .get(KIND, env_id, kid)
            .await
            .map_err(|e| anyhow!("{e}"))?
        else {
            return Ok(None);
        };
        let key = Arc::new(load(&doc, master)?);
        self.by_kid.write().insert(key.id.clone(), key.clone());
        Ok(Some(key))
    }

    /// Public JWKs of every signing key of an environment.
    pub async fn jwks(
        &self,
        store: &Store,
        master: &MasterKey,
        env_id: &str,
    ) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        for doc in self.env_keys(store, env_id).await? {
            if doc.data["usageType"] != "SIGNING" {
                continue;
            }
            if let Some(k) = self.by_kid(store, master, env_id, &doc.id).await? {
                out.push(k.jwk());
            }
        }
        Ok(out)
    }

    pub fn forget_env(&self, env_id: &str) {
        self.default_for_env.write().remove(env_id);
        self.by_kid.write().retain(|_, k| k.env_id != env_id);
    }

    async fn env_keys(&self, store: &Store, env_id: &str) -> anyhow::Result<Vec<Doc>> {
        store
            .read()
            .list(&ListQuery {
                kind: KIND,
                env_id,
                parent_id: None,
                condition: None,
                limit: 1000,
                after: None,
            })
            .await
            .map_err(|e| anyhow!("{e}"))
    }
}

/// A compact JWS split into its parts, before its signature is checked.
pub struct UnverifiedJwt {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl UnverifiedJwt {
    pub fn parse(token: &str) -> Option<Self> {
        let mut parts = token.split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || token.len() > 16 * 1024 {
            return None;
        }
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
        if !claims.is_object() {
            return None;
        }
        Some(UnverifiedJwt {
            header,
            claims,
            signing_input: format!("{h}.{c}"),
            signature: URL_SAFE_NO_PAD.decode(s).ok()?,
        })
    }

    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// Checks the RS256 signature with `key`; any other `alg` is refused.
    pub fn verify(self, key: &SigningKey) -> Option<Value> {
        if self.header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return None;
        }
        key.verify_signature(self.signing_input.as_bytes(), &self.signature)
            .then_some(self.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_and_reject_tampering() {
        let master = MasterKey::from_bytes(&[3u8; 32]).unwrap();
        let doc = generate("env", "org", "test", &master).unwrap();
        let key = load(&doc, &master).unwrap();
        let token = key.sign(&json!({"sub": "a", "n": 1}));
        let claims = UnverifiedJwt::parse(&token).unwrap().verify(&key).unwrap();
        assert_eq!(claims["sub"], "a");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(json!({"sub": "b", "n": 1}).to_string());
        parts[1] = &forged;
        assert!(
            UnverifiedJwt::parse(&parts.join("."))
                .unwrap()
                .verify(&key)
                .is_none()
        );
        let jwk = key.jwk();
        assert_eq!(jwk["kid"], doc.id.as_str());
        assert_eq!(jwk["e"], "AQAB");
    }
}
