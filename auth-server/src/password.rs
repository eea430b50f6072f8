//! Argon2id password hashing with bounded concurrency and bounded memory.
//!
//! Each hash needs `m` KiB of working memory (19 MiB by default) and tens of milliseconds of CPU.
//! Hashing runs on the blocking pool, at most `concurrency` at once. A semaphore alone would not
//! bound memory: the allocator keeps freed 19 MiB blocks around, and each new blocking thread
//! would get its own. So every permit comes with a pre-allocated block buffer that is reused for
//! the life of the process: memory is `concurrency × m`, whatever the load. Callers that would
//! wait longer than `queue_timeout` for a permit get [`HashError::Busy`] (503 + `Retry-After`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret as _, SecretString};
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;

/// Hashing settings.
#[derive(Debug, Clone)]
pub struct HashSettings {
    /// Memory cost in KiB (OWASP: 19456).
    pub memory_kib: u32,
    /// Iterations (OWASP: 2).
    pub iterations: u32,
    /// Parallelism (OWASP: 1).
    pub parallelism: u32,
    /// Hashes running at once.
    pub concurrency: usize,
    /// Longest wait for a hashing slot before answering 503.
    pub queue_timeout: Duration,
}

impl Default for HashSettings {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            concurrency: std::thread::available_parallelism().map(usize::from).unwrap_or(2),
            queue_timeout: Duration::from_secs(2),
        }
    }
}

/// Why a hash could not be computed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot stayed busy for longer than the queue timeout.
    #[error("password hashing is saturated")]
    Busy,
    /// A stored hash is not a valid Argon2 PHC string, or hashing failed.
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// The password matches the stored hash.
    pub matches: bool,
    /// The stored hash uses weaker parameters than configured; re-hash on success.
    pub needs_rehash: bool,
}

const OUTPUT_LEN: usize = 32;
const SALT_LEN: usize = 16;

/// The password hasher. Cheap to clone.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("PasswordHasher").finish_non_exhaustive()
    }
}

struct Inner {
    params: Params,
    settings: HashSettings,
    /// Held by the blocking task itself, so a caller that goes away mid-hash (a client
    /// disconnect cancels its future) does not free the slot while the hash still runs.
    permits: Arc<Semaphore>,
    /// One block buffer per permit, allocated on first use and then reused forever.
    buffers: Mutex<Vec<Vec<Block>>>,
    /// A real hash of a random password: unknown users are checked against it so that their
    /// login costs the same as a wrong password.
    dummy_hash: Mutex<Option<String>>,
}

impl PasswordHasher {
    /// Creates a hasher; fails if the parameters are invalid.
    pub fn new(settings: HashSettings) -> Result<Self, HashError> {
        let params =
            Params::new(settings.memory_kib, settings.iterations, settings.parallelism, Some(OUTPUT_LEN))
                .map_err(|error| HashError::Internal(error.to_string()))?;
        let concurrency = settings.concurrency.max(1);
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                permits: Arc::new(Semaphore::new(concurrency)),
                buffers: Mutex::new(Vec::with_capacity(concurrency)),
                dummy_hash: Mutex::new(None),
                settings: HashSettings { concurrency, ..settings },
            }),
        })
    }

    /// Hashes a password into a PHC string.
    pub async fn hash(&self, password: &SecretString) -> Result<String, HashError> {
        let password = password.clone();
        self.run(move |inner, blocks| inner.hash_with(password.expose_secret().as_bytes(), blocks)).await
    }

    /// Checks `password` against a stored PHC string.
    pub async fn verify(&self, password: &SecretString, stored: &str) -> Result<Verification, HashError> {
        let password = password.clone();
        let stored = stored.to_owned();
        self.run(move |inner, blocks| inner.verify_with(password.expose_secret().as_bytes(), &stored, blocks))
            .await
    }

    /// Spends the same work as [`verify`](Self::verify) against a dummy hash and reports no
    /// match: used for unknown users so response time does not reveal whether a user exists.
    pub async fn verify_dummy(&self, password: &SecretString) -> Result<(), HashError> {
        let dummy = self.dummy_hash().await?;
        self.verify(password, &dummy).await.map(|_| ())
    }

    async fn dummy_hash(&self) -> Result<String, HashError> {
        if let Some(hash) = self.inner.dummy_hash.lock().ok().and_then(|slot| slot.clone()) {
            return Ok(hash);
        }
        let random = SaltString::generate(&mut rand::rngs::OsRng);
        let hash = self.hash(&SecretString::from(random.as_str().to_owned())).await?;
        if let Ok(mut slot) = self.inner.dummy_hash.lock() {
            *slot = Some(hash.clone());
        }
        Ok(hash)
    }

    /// Waits (bounded) for a slot, then runs `work` on the blocking pool with a reused buffer.
    async fn run<T, F>(&self, work: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut Vec<Block>) -> Result<T, HashError> + Send + 'static,
    {
        let waited = Instant::now();
        let permit = tokio::time::timeout(
            self.inner.settings.queue_timeout,
            self.inner.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| {
            metrics::counter!("password_hash_rejected_total").increment(1);
            HashError::Busy
        })?
        .map_err(|_| HashError::Busy)?;
        metrics::histogram!("password_hash_queue_wait_seconds").record(waited.elapsed().as_secs_f64());
        let inner = self.inner.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            lower_thread_priority();
            let _entered = span.enter();
            let mut blocks = inner.take_buffer();
            let started = Instant::now();
            let result = work(&inner, &mut blocks);
            metrics::histogram!("password_hash_duration_seconds").record(started.elapsed().as_secs_f64());
            inner.return_buffer(blocks);
            result
        })
        .await
        .map_err(|error| HashError::Internal(error.to_string()))?
    }
}

/// Hashing is throughput work on threads of its own; serving requests is latency work. Running
/// the hashing threads at nice +10 lets the scheduler preempt a hash for a request at once,
/// instead of after a whole time slice, when logins keep every core busy. Once per thread (an
/// unprivileged thread cannot raise its priority again, and blocking threads are reused: other
/// blocking work that later lands on such a thread, key generation or writing a cache file, is
/// background work too). Linux only; a failure only costs latency and is ignored.
fn lower_thread_priority() {
    thread_local!(static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    LOWERED.with(|lowered| {
        if !lowered.replace(true) {
            #[cfg(target_os = "linux")]
            {
                let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
            }
        }
    });
}

impl Inner {
    fn take_buffer(&self) -> Vec<Block> {
        let reused = self.buffers.lock().ok().and_then(|mut buffers| buffers.pop());
        reused.unwrap_or_else(|| vec![Block::default(); self.params.block_count()])
    }

    fn return_buffer(&self, buffer: Vec<Block>) {
        if let Ok(mut buffers) = self.buffers.lock()
            && buffers.len() < self.settings.concurrency
        {
            buffers.push(buffer);
        }
    }

    fn argon2(&self, params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    fn hash_with(&self, password: &[u8], blocks: &mut Vec<Block>) -> Result<String, HashError> {
        let internal = |error: &dyn std::fmt::Display| HashError::Internal(error.to_string());
        let mut salt = [0u8; SALT_LEN];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
        let salt_string = SaltString::encode_b64(&salt).map_err(|e| internal(&e))?;
        let mut output = [0u8; OUTPUT_LEN];
        self.argon2(self.params.clone())
            .hash_password_into_with_memory(password, &salt, &mut output, blocks.as_mut_slice())
            .map_err(|e| internal(&e))?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: argon2::password_hash::ParamsString::try_from(&self.params).map_err(|e| internal(&e))?,
            salt: Some(salt_string.as_salt()),
            hash: Some(Output::new(&output).map_err(|e| internal(&e))?),
        };
        Ok(phc.to_string())
    }

    fn verify_with(
        &self,
        password: &[u8],
        stored: &str,
        blocks: &mut Vec<Block>,
    ) -> Result<Verification, HashError> {
        let internal = |error: &dyn std::fmt::Display| HashError::Internal(error.to_string());
        let phc = PasswordHash::new(stored).map_err(|e| internal(&e))?;
        if phc.algorithm != argon2::ARGON2ID_IDENT {
            return Err(HashError::Internal("stored hash is not argon2id".into()));
        }
        let params = Params::try_from(&phc).map_err(|e| internal(&e))?;
        let salt = phc.salt.ok_or_else(|| HashError::Internal("stored hash has no salt".into()))?;
        let expected = phc.hash.ok_or_else(|| HashError::Internal("stored hash has no output".into()))?;
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| internal(&e))?;
        let mut output = vec![0u8; expected.len()];
        let argon2 = self.argon2(params.clone());
        if params.block_count() <= blocks.len() {
            argon2
                .hash_password_into_with_memory(password, salt_bytes, &mut output, blocks.as_mut_slice())
                .map_err(|e| internal(&e))?;
        } else {
            // A hash made with more memory than we configure now: allocate once for it.
            argon2.hash_password_into(password, salt_bytes, &mut output).map_err(|e| internal(&e))?;
        }
        let matches = bool::from(output.as_slice().ct_eq(expected.as_bytes()));
        let needs_rehash = params.m_cost() < self.params.m_cost()
            || params.t_cost() < self.params.t_cost()
            || params.p_cost() < self.params.p_cost()
            || phc.version != Some(Version::V0x13.into());
        Ok(Verification { matches, needs_rehash })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> HashSettings {
        HashSettings { memory_kib: 1024, iterations: 1, parallelism: 1, concurrency: 2, ..Default::default() }
    }

    fn secret(value: &str) -> SecretString {
        SecretString::from(value.to_owned())
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = PasswordHasher::new(fast()).unwrap();
        let hash = hasher.hash(&secret("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(hasher.verify(&secret("correct horse"), &hash).await.unwrap().matches);
        assert!(!hasher.verify(&secret("Correct horse"), &hash).await.unwrap().matches);
        assert!(!hasher.verify(&secret("correct hors"), &hash).await.unwrap().matches);
    }

    #[tokio::test]
    async fn our_hashes_verify_with_the_reference_implementation() {
        use argon2::PasswordVerifier as _;
        let hasher = PasswordHasher::new(fast()).unwrap();
        let hash = hasher.hash(&secret("interop password")).await.unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(Argon2::default().verify_password(b"interop password", &parsed).is_ok());
    }

    #[tokio::test]
    async fn weaker_stored_parameters_ask_for_a_rehash() {
        let weak = PasswordHasher::new(fast()).unwrap();
        let hash = weak.hash(&secret("password123")).await.unwrap();
        let strong = PasswordHasher::new(HashSettings { memory_kib: 2048, ..fast() }).unwrap();
        let verification = strong.verify(&secret("password123"), &hash).await.unwrap();
        assert!(verification.matches && verification.needs_rehash);
        let same = weak.verify(&secret("password123"), &hash).await.unwrap();
        assert!(!same.needs_rehash);
    }

    #[tokio::test]
    async fn a_saturated_hasher_answers_busy_instead_of_queueing_forever() {
        let hasher = PasswordHasher::new(HashSettings {
            concurrency: 1,
            queue_timeout: Duration::from_millis(1),
            ..fast()
        })
        .unwrap();
        let _held = hasher.inner.permits.acquire().await.unwrap();
        assert!(matches!(hasher.hash(&secret("password123")).await, Err(HashError::Busy)));
    }

    #[tokio::test]
    async fn a_cancelled_caller_keeps_its_slot_until_its_hash_is_done() {
        let hasher = PasswordHasher::new(HashSettings { concurrency: 1, ..fast() }).unwrap();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let (finish, gate) = std::sync::mpsc::channel::<()>();
        let worker = hasher.clone();
        let caller = tokio::spawn(async move {
            worker
                .run(move |_, _| {
                    started_tx.send(()).unwrap();
                    gate.recv().unwrap();
                    Ok(())
                })
                .await
        });
        started.await.unwrap();

        // The client went away: its future is dropped while the blocking hash still runs.
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        let in_use = hasher.inner.permits.available_permits();
        finish.send(()).unwrap();
        hasher.hash(&secret("password123")).await.unwrap();

        assert_eq!(in_use, 0, "the running hash still holds the only slot");
        assert_eq!(hasher.inner.buffers.lock().unwrap().len(), 1, "no second buffer was allocated");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashes_run_at_a_lower_cpu_priority_than_requests() {
        let hasher = PasswordHasher::new(fast()).unwrap();
        let own = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let before = own();

        let hashing = hasher.run(move |_, _| Ok(own())).await.unwrap();

        assert_eq!(hashing, before.max(10), "nice value of a hashing thread (the test began at {before})");
        assert_eq!(own(), before, "the request thread keeps its priority");
    }

    #[tokio::test]
    async fn buffers_are_reused_not_reallocated() {
        let hasher = PasswordHasher::new(fast()).unwrap();
        for _ in 0..5 {
            hasher.hash(&secret("password123")).await.unwrap();
        }
        assert_eq!(hasher.inner.buffers.lock().unwrap().len(), 1);
    }
}
