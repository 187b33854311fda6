//! Password hashing: argon2id for everything Lanyard hashes; imported bcrypt hashes verify too.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

#[derive(Debug, Clone, Copy)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    /// OWASP's argon2id baseline (m=19 MiB, t=2, p=1).
    fn default() -> Self {
        HashParams {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

fn argon2(p: HashParams) -> Argon2<'static> {
    let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// At most one hash per core at a time: more would only slow each other down and hold
/// `memory_kib` each (19 MiB by default) in the allocator's per-thread pools.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    })
}

/// Hashes on a blocking thread: one hash is ~20 ms of CPU.
pub async fn hash(password: String, p: HashParams) -> anyhow::Result<String> {
    let _slot = hashing_slots().acquire().await?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2(p)
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("{e}"))
    })
    .await?
}

/// Verifies against an argon2 PHC string or an imported bcrypt hash.
pub async fn verify(password: String, stored: String) -> bool {
    let Ok(_slot) = hashing_slots().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || verify_sync(&password, &stored))
        .await
        .unwrap_or(false)
}

pub fn verify_sync(password: &str, stored: &str) -> bool {
    if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
        return bcrypt::verify(password, stored).unwrap_or(false);
    }
    match PasswordHash::new(stored) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// Whether a value given as a password is already a hash we can import.
pub fn is_supported_hash(value: &str) -> bool {
    value.starts_with("$argon2")
        || value.starts_with("$2a$")
        || value.starts_with("$2b$")
        || value.starts_with("$2y$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2_and_bcrypt() {
        let p = HashParams {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        };
        let h = hash("Secret123!".into(), p).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("Secret123!".into(), h.clone()).await);
        assert!(!verify("secret123!".into(), h).await);
        let b = bcrypt::hash("pw", 4).unwrap();
        assert!(verify_sync("pw", &b) && !verify_sync("px", &b));
        assert!(!verify_sync("pw", "garbage"));
    }
}
