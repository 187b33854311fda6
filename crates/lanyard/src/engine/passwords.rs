//! Password hashing: argon2id for everything Lanyard hashes; imported bcrypt hashes verify too.
//!
//! Every argon2 hash needs `memory_kib` of working memory (19 MiB by default). Allocating (and
//! zeroing) that per hash cost several percent of a sign-in, so hashes run on a fixed set of
//! hashing threads (one per core), each of which keeps one block array and reuses it for its
//! next hash and verification (argon2 overwrites every block in its first pass, so the old
//! contents do not matter). The memory held is one array per core that has hashed in the last
//! 30 seconds or so.

use std::cell::RefCell;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

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

fn params(p: HashParams) -> Params {
    Params::new(p.memory_kib, p.iterations, p.parallelism, None).unwrap_or_default()
}

/// The largest block array (in 1 KiB blocks, so 64 MiB) a thread keeps for the next hash; an
/// imported hash with a larger memory cost gets a temporary one.
const KEEP_BLOCKS: usize = 64 * 1024;

thread_local! {
    /// This thread's argon2 working memory, reused from hash to hash.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `count` argon2 blocks: this thread's reused array (grown if needed), or a
/// temporary one for an oversized memory cost.
fn with_blocks<R>(count: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    if count > KEEP_BLOCKS {
        return f(&mut new_block_array(count));
    }
    BLOCKS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut blocks) => {
            if blocks.len() < count {
                // A fresh allocation rather than `resize`, which would copy.
                *blocks = new_block_array(count);
            }
            f(&mut blocks[..count])
        }
        // Not reached (hashing does not re-enter), but never panic over it.
        Err(_) => f(&mut new_block_array(count)),
    })
}

/// A zeroed block array, backed by transparent huge pages where Linux offers them on request
/// (`madvise` mode, the usual default). argon2 reads its blocks in a data-dependent order, so
/// with 4 KiB pages most reference-block reads miss the TLB; 2 MiB pages made a hash 5–12 %
/// faster here, more inside the busy server (and page walks cost double under virtualisation).
fn new_block_array(count: usize) -> Vec<Block> {
    let mut blocks = Vec::with_capacity(count);
    advise_huge_pages(&mut blocks);
    // The first touch happens here, after the advice.
    blocks.resize(count, Block::default());
    blocks
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(blocks: &mut Vec<Block>) {
    const HUGE_PAGE: usize = 2 << 20;
    let start = blocks.as_mut_ptr() as usize;
    let end = start + blocks.capacity() * std::mem::size_of::<Block>();
    let (from, to) = (
        start.next_multiple_of(HUGE_PAGE),
        end / HUGE_PAGE * HUGE_PAGE,
    );
    if to > from {
        // SAFETY: advice about memory this Vec owns and has not handed out; MADV_HUGEPAGE
        // changes no contents, and a refusal (no THP support) only leaves small pages.
        unsafe {
            libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_: &mut Vec<Block>) {}

/// A job for the hashing threads.
type HashJob = Box<dyn FnOnce() + Send>;

/// Idle hashing threads free their block array after this long.
const IDLE_FREE: Duration = Duration::from_secs(30);

/// Hashing threads: one per core, started on first use, each keeping its block array. A job
/// queue in front of a fixed set of threads means at most one hash per core at a time (more
/// would only slow each other down), and every hash runs on memory that is already mapped, on
/// huge pages and warm in the caches: tokio's blocking pool moved hashes between threads, each
/// with its own 19 MiB array, which made a hash in the server ~13 % slower than alone.
fn hashing_queue() -> &'static std::sync::mpsc::SyncSender<HashJob> {
    static QUEUE: OnceLock<std::sync::mpsc::SyncSender<HashJob>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Bounded only so that a flood cannot grow it without limit; requests wait in line.
        let (tx, rx) = std::sync::mpsc::sync_channel::<HashJob>(4096);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("lanyard-hash-{i}"))
                .spawn(move || hashing_thread(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        tx
    })
}

fn hashing_thread(rx: &Mutex<std::sync::mpsc::Receiver<HashJob>>) {
    normal_scheduling();
    loop {
        let next = match rx.lock() {
            Ok(rx) => rx.recv_timeout(IDLE_FREE),
            Err(_) => return,
        };
        match next {
            // A panicking job drops its reply sender; the caller sees an error.
            Ok(job) => drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))),
            Err(RecvTimeoutError::Timeout) => BLOCKS.with(|b| {
                if let Ok(mut b) = b.try_borrow_mut() {
                    *b = Vec::new();
                }
            }),
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The server runs its request threads as SCHED_BATCH (`main.rs`), which threads inherit;
/// hashing threads use the normal policy, so that request handling does not preempt a hash.
fn normal_scheduling() {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler on the calling thread with a valid parameter; going back to
    // SCHED_OTHER needs no privilege, and a refusal leaves the policy as it was.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
    }
}

/// Runs CPU-heavy password work (one or more hashes) on a hashing thread and waits for it. A
/// job whose caller has gone (a dropped request) is skipped.
pub async fn on_hashing_thread<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> anyhow::Result<R> {
    let (reply, result) = tokio::sync::oneshot::channel();
    let job: HashJob = Box::new(move || {
        if !reply.is_closed() {
            let _ = reply.send(f());
        }
    });
    let queue = hashing_queue().clone();
    // The queue is bounded: wait for room off the async threads.
    if let Err(std::sync::mpsc::TrySendError::Full(job)) = queue.try_send(job) {
        tokio::task::spawn_blocking(move || queue.send(job))
            .await?
            .map_err(|_| anyhow::anyhow!("the password hashing threads have stopped"))?;
    }
    result
        .await
        .map_err(|_| anyhow::anyhow!("password hashing failed"))
}

/// Hashes on a hashing thread: one hash is ~15–20 ms of CPU.
pub async fn hash(password: String, p: HashParams) -> anyhow::Result<String> {
    on_hashing_thread(move || hash_sync(&password, p)).await?
}

/// A new argon2id PHC string, `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>` (random 16-byte salt,
/// 32-byte output), exactly what `Argon2::hash_password` gives, on this thread's reused memory.
pub fn hash_sync(password: &str, p: HashParams) -> anyhow::Result<String> {
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("{e}");
    let params = params(p);
    let a2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| err(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_blocks(params.block_count(), |blocks| {
        a2.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks)
    })
    .map_err(|e| err(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| err(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| err(&e))?),
    };
    Ok(phc.to_string())
}

/// Verifies against an argon2 PHC string or an imported bcrypt hash, on a hashing thread.
pub async fn verify(password: String, stored: String) -> bool {
    on_hashing_thread(move || verify_sync(&password, &stored))
        .await
        .unwrap_or(false)
}

pub fn verify_sync(password: &str, stored: &str) -> bool {
    if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
        return bcrypt::verify(password, stored).unwrap_or(false);
    }
    match PasswordHash::new(stored) {
        Ok(h) => verify_argon2(password.as_bytes(), &h),
        Err(_) => false,
    }
}

/// Recomputes an argon2 PHC hash with its own algorithm (argon2id, argon2i or argon2d),
/// version, parameters, salt and output length on this thread's reused memory, and compares in
/// constant time (what `PasswordVerifier::verify_password` does, without the allocation).
fn verify_argon2(password: &[u8], h: &PasswordHash<'_>) -> bool {
    let (Some(salt), Some(expected)) = (h.salt, h.hash.as_ref()) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(h.algorithm) else {
        return false;
    };
    let version = match h.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    // m, t, p (and keyid/data), with the output length of the stored hash.
    let Ok(params) = Params::try_from(h) else {
        return false;
    };
    if !within_limits(&params) {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let expected = expected.as_bytes();
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let a2 = Argon2::new(algorithm, version, params.clone());
    let computed = with_blocks(params.block_count(), |blocks| {
        a2.hash_password_into_with_memory(password, salt, out, blocks)
    });
    computed.is_ok() && bool::from(out.ct_eq(expected))
}

/// The costs Lanyard will spend on one stored argon2 hash: at most 1 GiB of memory, 64
/// passes and 16 lanes, so an imported hash cannot make a sign-in exhaust the server.
fn within_limits(p: &Params) -> bool {
    p.m_cost() <= 1024 * 1024 && p.t_cost() <= 64 && p.p_cost() <= 16
}

/// Whether a value given as a password looks like a hash we can import.
pub fn is_supported_hash(value: &str) -> bool {
    value.starts_with("$argon2")
        || value.starts_with("$2a$")
        || value.starts_with("$2b$")
        || value.starts_with("$2y$")
}

/// Whether an argon2 PHC string parses and its costs are within the limits Lanyard verifies.
pub fn valid_argon2(value: &str) -> bool {
    PasswordHash::new(value)
        .ok()
        .filter(|h| {
            h.algorithm.as_str().starts_with("argon2") && h.salt.is_some() && h.hash.is_some()
        })
        .and_then(|h| Params::try_from(&h).ok())
        .is_some_and(|p| within_limits(&p))
}
#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};
    use std::sync::atomic::Ordering;

    const SMALL: HashParams = HashParams {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    #[tokio::test]
    async fn argon2_and_bcrypt() {
        let p = SMALL;
        let h = hash("Secret123!".into(), p).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("Secret123!".into(), h.clone()).await);
        assert!(!verify("secret123!".into(), h).await);
        let b = bcrypt::hash("pw", 4).unwrap();
        assert!(verify_sync("pw", &b) && !verify_sync("px", &b));
        assert!(!verify_sync("pw", "garbage"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_threads_survive_panics_and_abandoned_callers() {
        // A job that panics fails its caller only.
        let failed = on_hashing_thread(|| -> u32 { panic!("boom") }).await;
        assert!(failed.is_err());
        // A caller that goes away before its turn: its job is skipped, the queue moves on.
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let blocker = on_hashing_thread(|| std::thread::sleep(Duration::from_millis(200)));
        let flag = ran.clone();
        let abandoned = on_hashing_thread(move || flag.store(true, Ordering::SeqCst));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut blockers = vec![tokio::spawn(blocker)];
        for _ in 1..threads {
            blockers.push(tokio::spawn(on_hashing_thread(|| {
                std::thread::sleep(Duration::from_millis(200))
            })));
        }
        // Queued behind the sleeping jobs (once they run), then dropped.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = tokio::time::timeout(Duration::from_millis(20), abandoned).await;
        for b in blockers {
            b.await.unwrap().unwrap();
        }
        // Many concurrent hashes all complete and verify.
        let hashes: Vec<_> = (0..8)
            .map(|i| tokio::spawn(hash(format!("Secret{i}!"), SMALL)))
            .collect();
        for (i, h) in hashes.into_iter().enumerate() {
            let h = h.await.unwrap().unwrap();
            assert!(verify(format!("Secret{i}!"), h).await);
        }
        assert!(!ran.load(Ordering::SeqCst), "the abandoned job did not run");
    }

    #[test]
    fn oversized_imported_hashes_are_refused() {
        let ok = hash_sync("pw", SMALL).unwrap();
        assert!(valid_argon2(&ok));
        let huge = ok.replace("m=1024", "m=4194304");
        assert!(!valid_argon2(&huge), "{huge}");
        assert!(!verify_sync("pw", &huge), "not even tried");
        assert!(!valid_argon2(&ok.replace("t=1", "t=1000")));
        assert!(!valid_argon2("$argon2id$garbage"));
    }

    /// A hash made by the plain `argon2` API (which allocates its own memory) verifies here.
    #[test]
    fn plain_argon2_hash_verifies() {
        let salt = SaltString::generate(&mut OsRng);
        let plain = Argon2::default()
            .hash_password(b"Gr33n-Lanyard-Walrus!42", &salt)
            .unwrap()
            .to_string();
        assert!(
            plain.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{plain}"
        );
        assert!(verify_sync("Gr33n-Lanyard-Walrus!42", &plain));
        assert!(!verify_sync("Gr33n-Lanyard-Walrus!43", &plain));
        assert!(!verify_sync("", &plain));
        // Again on the same thread, now that its block array holds the last hash's state.
        assert!(verify_sync("Gr33n-Lanyard-Walrus!42", &plain));
    }

    /// A hash made here has exactly the PHC format of the plain API and verifies with it.
    #[test]
    fn new_hash_verifies_with_plain_argon2() {
        let h = hash_sync("Gr33n-Lanyard-Walrus!42", HashParams::default()).unwrap();
        let parts: Vec<&str> = h.split('$').collect();
        assert_eq!(
            parts[..4],
            ["", "argon2id", "v=19", "m=19456,t=2,p=1"],
            "{h}"
        );
        assert_eq!(parts.len(), 6, "{h}");
        assert_eq!(parts[4].len(), 22, "16-byte salt, unpadded base64: {h}");
        assert_eq!(parts[5].len(), 43, "32-byte output, unpadded base64: {h}");
        let parsed = PasswordHash::new(&h).unwrap();
        assert_eq!(parsed.to_string(), h);
        assert!(
            Argon2::default()
                .verify_password(b"Gr33n-Lanyard-Walrus!42", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"gr33n-Lanyard-Walrus!42", &parsed)
                .is_err()
        );
        assert!(verify_sync("Gr33n-Lanyard-Walrus!42", &h));
        assert!(!verify_sync("Gr33n-Lanyard-Walrus!4", &h));
        // Same password, new salt: a different string, both verify.
        let h2 = hash_sync("Gr33n-Lanyard-Walrus!42", HashParams::default()).unwrap();
        assert_ne!(h, h2);
        assert!(
            verify_sync("Gr33n-Lanyard-Walrus!42", &h2)
                && verify_sync("Gr33n-Lanyard-Walrus!42", &h)
        );
    }

    /// Reusing a dirty block array gives the same result as fresh memory.
    #[test]
    fn reused_memory_matches_fresh_memory() {
        let params = params(HashParams::default());
        let a2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let (mut fresh, mut reused) = ([0u8; 32], [0u8; 32]);
        a2.hash_password_into(b"pw-one", b"saltsaltsaltsalt", &mut fresh)
            .unwrap();
        for pw in [&b"something else"[..], b"pw-one"] {
            with_blocks(params.block_count(), |b| {
                a2.hash_password_into_with_memory(pw, b"saltsaltsaltsalt", &mut reused, b)
            })
            .unwrap();
        }
        assert_eq!(fresh, reused);
    }

    /// Hashes with other parameters (smaller or larger than the thread's array, other variants,
    /// versions and output lengths) verify, and wrong passwords do not.
    #[test]
    fn other_params_verify() {
        let salt = SaltString::generate(&mut OsRng);
        let cases = [
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(1024, 1, 1, None).unwrap(),
            ),
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(19456, 2, 1, None).unwrap(),
            ),
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(1024, 1, 1, None).unwrap(),
            ),
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(2048, 3, 2, Some(64)).unwrap(),
            ),
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(24576, 1, 1, None).unwrap(),
            ),
            (
                Algorithm::Argon2i,
                Version::V0x13,
                Params::new(1024, 2, 1, None).unwrap(),
            ),
            (
                Algorithm::Argon2d,
                Version::V0x10,
                Params::new(1024, 2, 1, None).unwrap(),
            ),
        ];
        for (alg, ver, params) in cases {
            let h = Argon2::new(alg, ver, params)
                .hash_password(b"Secret123!", &salt)
                .unwrap()
                .to_string();
            assert!(verify_sync("Secret123!", &h), "{h}");
            assert!(!verify_sync("Secret123?", &h), "{h}");
        }
        // A hash of ours with the small parameters, checked by the plain API.
        let h = hash_sync("Secret123!", SMALL).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{h}");
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"Secret123!", &parsed)
                .is_ok()
        );
        assert!(verify_sync("Secret123!", &h) && !verify_sync("Secret123", &h));
    }

    /// Broken PHC strings are refused, not panicked over.
    #[test]
    fn malformed_hashes_fail() {
        let good = hash_sync("pw", SMALL).unwrap();
        let (head, output) = good.rsplit_once('$').unwrap();
        let (no_salt, _) = head.rsplit_once('$').unwrap();
        for bad in [
            format!("{head}$"),
            format!("{no_salt}${output}"),
            format!("{head}${}", &output[..8]),
            good.replace("argon2id", "argon2x"),
            good.replace("v=19", "v=18"),
            good.replace("m=1024", "m=1"),
            "$argon2id$v=19$m=1024,t=1,p=1".to_string(),
        ] {
            assert!(!verify_sync("pw", &bad), "{bad}");
        }
        assert!(verify_sync("pw", &good));
    }
}
