//! The key cache: the auth server's public keys, in memory and on disk.
//!
//! This is what lets a service keep verifying tokens while the auth server is down, even across
//! a restart: the last good key set is loaded from disk at start, refreshed in the background,
//! and only ever replaced by another good key set. Nothing the auth server (or something
//! pretending to be it) sends can empty the cache or block a request that carries a known `kid`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fetch::{self, FetchError, HttpClientError, ServerMetadata};
use crate::jws::{JwkSet, VerifyingKey};
use crate::time::Clock;

/// Tuning of the key cache. Every bound is explicit so an operator can reason about outages.
#[derive(Debug, Clone)]
pub struct KeyCacheSettings {
    /// The issuer whose discovery document names the key set.
    pub issuer: String,
    /// Never refresh more often than this, whatever `Cache-Control` says.
    pub refresh_min: Duration,
    /// Never refresh less often than this, whatever `Cache-Control` says.
    pub refresh_max: Duration,
    /// Past this age without a successful refresh, fail closed (503).
    pub max_age: Duration,
    /// After an unknown-`kid` refetch, no other such refetch for this long. A `kid` refused
    /// only because it arrived within this window is looked up again by a refetch at the
    /// window's end, so a genuine new key waits at most this long, even under a flood of
    /// forged `kid`s.
    pub unknown_kid_cooldown: Duration,
    /// Total time one call to the auth server may take.
    pub fetch_timeout: Duration,
    /// Largest key set accepted.
    pub max_body_bytes: usize,
    /// Where the last good key set is kept; `None` keeps it in memory only.
    ///
    /// The copy is trusted at start as if the issuer had sent it: whoever can write the file
    /// can plant keys, so it is written 0600 in a directory created 0700 (keep the directory
    /// the service's own). Its age is never taken from the file alone: it counts from the
    /// older of the confirmation time recorded in it and the file's modification time, and
    /// never from the future, so a copied, restored or edited file cannot outlive
    /// [`max_age`](Self::max_age). A fetched set is written before it is put in force, so a
    /// key a service has verified with is on disk for its next start.
    pub cache_file: Option<PathBuf>,
    /// Fetch the key set from here instead of the `jwks_uri` of the issuer's discovery. For a
    /// caller that read and checked the discovery itself, such as the auth server relying on an
    /// upstream provider whose key set lives on another origin (Google's does).
    pub jwks_uri: Option<String>,
}

impl KeyCacheSettings {
    /// Defaults suitable for production, for the given issuer.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            refresh_min: Duration::from_secs(30),
            refresh_max: Duration::from_secs(300),
            max_age: Duration::from_secs(24 * 3600),
            unknown_kid_cooldown: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(2),
            max_body_bytes: 64 * 1024,
            cache_file: None,
            jwks_uri: None,
        }
    }
}

/// How fit the key cache is to verify tokens; `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Keys are fresh.
    Ready,
    /// The last refresh failed; serving on keys younger than the maximum age.
    Degraded,
    /// No keys, or keys older than the maximum age: protected routes answer 503.
    Unavailable,
}

/// Why no key could be found for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLookupError {
    /// No key set has ever been obtained.
    NoKeys,
    /// The key set is older than the allowed maximum age.
    TooStale,
    /// The key set does not contain this `kid`, even after a permitted refetch.
    UnknownKid,
}

/// A key set as fetched, with the time it was last confirmed by the auth server.
struct KeySet {
    keys: HashMap<String, Arc<VerifyingKey>>,
    /// Unix seconds of the last successful fetch that returned this set.
    confirmed_at: u64,
    /// The JWKS as canonical JSON, to detect changes and to persist.
    canonical: String,
}

/// The on-disk format of the cached key set.
#[derive(Serialize, Deserialize)]
struct DiskCopy {
    confirmed_at: u64,
    jwks: JwkSet,
}

/// Longest `kid` looked up; longer ones are refused without touching any cache.
pub const MAX_KID_LEN: usize = 128;

/// The auth server's public keys. Cheap to clone: all clones share one cache.
#[derive(Clone)]
pub struct KeyCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KeyCache")
            .field("issuer", &self.inner.settings.issuer)
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

struct Inner {
    settings: KeyCacheSettings,
    http: reqwest::Client,
    current: RwLock<Option<Arc<KeySet>>>,
    metadata: RwLock<Option<ServerMetadata>>,
    /// Held during an unknown-`kid` refetch, so concurrent requests share one fetch.
    refetch: tokio::sync::Mutex<()>,
    /// Clock seconds of the last unknown-`kid` refetch: the start of the cooldown window.
    last_refetch: Mutex<Option<u64>>,
    /// The end of the window for which a refetch is already scheduled (see
    /// [`KeyCache::schedule_refetch_at_window_end`]).
    scheduled_refetch: Mutex<Option<u64>>,
    last_refresh_failed: AtomicBool,
    generation: AtomicU64,
    /// Where key ages and the refetch cooldown are measured; the verifier reads token dates
    /// from it too.
    clock: Clock,
}

impl KeyCache {
    /// Creates the cache and loads the disk copy, if one exists. Does no network I/O.
    pub fn new(settings: KeyCacheSettings) -> Result<Self, HttpClientError> {
        Self::with_clock(settings, Clock::system())
    }

    /// [`KeyCache::new`] reading "now" from `clock`: key ages, the maximum age and the
    /// unknown-`kid` cooldown follow it, and so do the token dates of a [`Verifier`] built
    /// over this cache. Tests pass a [`ManualClock`](crate::time::ManualClock)'s clock to
    /// age keys without sleeping.
    ///
    /// [`Verifier`]: crate::Verifier
    pub fn with_clock(settings: KeyCacheSettings, clock: Clock) -> Result<Self, HttpClientError> {
        let http = fetch::bounded_client(settings.fetch_timeout)?;
        let cache = Self {
            inner: Arc::new(Inner {
                http,
                current: RwLock::new(None),
                metadata: RwLock::new(None),
                refetch: tokio::sync::Mutex::new(()),
                last_refetch: Mutex::new(None),
                scheduled_refetch: Mutex::new(None),
                last_refresh_failed: AtomicBool::new(false),
                generation: AtomicU64::new(0),
                clock,
                settings,
            }),
        };
        cache.load_disk_copy();
        Ok(cache)
    }

    /// The settings in force.
    pub fn settings(&self) -> &KeyCacheSettings {
        &self.inner.settings
    }

    /// The clock this cache (and a verifier over it) reads.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Changes whenever the key set's content changes; the verified-token cache compares it.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// The discovery document, once fetched.
    pub fn metadata(&self) -> Option<ServerMetadata> {
        self.inner.metadata.read().ok().and_then(|metadata| metadata.clone())
    }

    /// The HTTP client with the fetch limits, shared with the revocation poller.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    fn snapshot(&self) -> Option<Arc<KeySet>> {
        self.inner.current.read().ok().and_then(|current| current.clone())
    }

    /// Seconds since the key set was last confirmed by the auth server, if there is one.
    pub fn age(&self) -> Option<Duration> {
        self.snapshot().map(|set| Duration::from_secs(self.seconds_since_confirmed(&set)))
    }

    fn seconds_since_confirmed(&self, set: &KeySet) -> u64 {
        self.inner.clock.now_u64().saturating_sub(set.confirmed_at)
    }

    /// Ready, degraded or unavailable; also updates the `jwks_age_seconds` gauge.
    pub fn status(&self) -> KeyStatus {
        let Some(age) = self.age() else {
            return KeyStatus::Unavailable;
        };
        metrics::gauge!("jwks_age_seconds").set(age.as_secs_f64());
        if age > self.inner.settings.max_age {
            KeyStatus::Unavailable
        } else if self.inner.last_refresh_failed.load(Ordering::Relaxed)
            || age > self.inner.settings.refresh_max * 2
        {
            KeyStatus::Degraded
        } else {
            KeyStatus::Ready
        }
    }

    /// The key for `kid`. An unknown `kid` triggers at most one refetch per cooldown window,
    /// shared by all requests that arrive meanwhile.
    ///
    /// A `kid` that arrives within the window (forged ones may have just started it) is
    /// refused for now but not remembered as unknown: it shares a refetch already in flight,
    /// and otherwise a refetch is scheduled for the end of the window. So a key the issuer
    /// published without pre-publication is accepted at once when no window is running, and at
    /// the end of the current window at worst, however many forged `kid`s arrive.
    pub async fn key_for(&self, kid: &str) -> Result<Arc<VerifyingKey>, KeyLookupError> {
        match self.lookup(kid) {
            Err(KeyLookupError::UnknownKid) => {}
            other => return other,
        }
        metrics::counter!("unknown_kid_total").increment(1);
        if kid.len() > MAX_KID_LEN {
            return Err(KeyLookupError::UnknownKid);
        }
        if self.in_cooldown() {
            if self.inner.refetch.try_lock().is_err() {
                // A refetch is in flight: it may bring this kid.
                let _in_flight = self.inner.refetch.lock().await;
                return self.lookup_or_schedule(kid);
            }
            self.schedule_refetch_at_window_end();
            return Err(KeyLookupError::UnknownKid);
        }
        let _shared_fetch = self.inner.refetch.lock().await;
        // Whoever held the lock before us may already have fetched the key, or the window.
        if let Ok(key) = self.lookup(kid) {
            return Ok(key);
        }
        if self.in_cooldown() {
            return self.lookup_or_schedule(kid);
        }
        self.start_window();
        let _ = self.refresh().await;
        self.lookup(kid)
    }

    /// The key for `kid` after a refetch of this window; if that fetch did not have it (it may
    /// have started before the issuer published the key), the end of the window looks again.
    fn lookup_or_schedule(&self, kid: &str) -> Result<Arc<VerifyingKey>, KeyLookupError> {
        let result = self.lookup(kid);
        if result.is_err() {
            self.schedule_refetch_at_window_end();
        }
        result
    }

    fn start_window(&self) {
        if let Ok(mut last) = self.inner.last_refetch.lock() {
            *last = Some(self.inner.clock.now_u64());
        }
    }

    /// Clock seconds at which the current cooldown window ends, if one is running.
    fn window_end(&self) -> Option<u64> {
        let last = self.inner.last_refetch.lock().ok().and_then(|last| *last)?;
        let end = last.saturating_add(self.inner.settings.unknown_kid_cooldown.as_secs());
        (end > self.inner.clock.now_u64()).then_some(end)
    }

    /// Makes sure one refetch runs when the current window ends, for the `kid`s it refused.
    /// It runs as an unknown-`kid` refetch: if a request has already started the next window
    /// by then, that request's fetch did the job and this one is skipped.
    fn schedule_refetch_at_window_end(&self) {
        let Some(end) = self.window_end() else {
            return;
        };
        match self.inner.scheduled_refetch.lock() {
            Ok(mut scheduled) if *scheduled != Some(end) => *scheduled = Some(end),
            _ => return,
        }
        let cache = Arc::downgrade(&self.inner);
        let clock = self.inner.clock.clone();
        tokio::spawn(async move {
            clock.sleep_until(i64::try_from(end).unwrap_or(i64::MAX)).await;
            let Some(inner) = cache.upgrade() else {
                return;
            };
            let cache = KeyCache { inner };
            let _shared_fetch = cache.inner.refetch.lock().await;
            if cache.in_cooldown() {
                return;
            }
            tracing::debug!("refetching the key set for kids refused during the cooldown");
            cache.start_window();
            let _ = cache.refresh().await;
        });
    }

    /// The key for `kid` from the cached set, without any refetch or age check.
    pub(crate) fn cached_key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.snapshot().and_then(|set| set.keys.get(kid).cloned())
    }

    fn lookup(&self, kid: &str) -> Result<Arc<VerifyingKey>, KeyLookupError> {
        let set = self.snapshot().ok_or(KeyLookupError::NoKeys)?;
        if self.seconds_since_confirmed(&set) > self.inner.settings.max_age.as_secs() {
            return Err(KeyLookupError::TooStale);
        }
        set.keys.get(kid).cloned().ok_or(KeyLookupError::UnknownKid)
    }

    /// Measured in whole clock seconds, like every other age here.
    fn in_cooldown(&self) -> bool {
        let now = self.inner.clock.now_u64();
        self.inner.last_refetch.lock().ok().and_then(|last| *last).is_some_and(|last| {
            Duration::from_secs(now.saturating_sub(last)) < self.inner.settings.unknown_kid_cooldown
        })
    }

    /// Fetches discovery (once) and the key set; replaces the cached set only with a good one.
    /// Returns the `Cache-Control` max-age the server asked for.
    #[tracing::instrument(name = "refresh_keys", skip_all, fields(issuer = %self.inner.settings.issuer))]
    pub async fn refresh(&self) -> Result<Option<Duration>, FetchError> {
        let result = self.try_refresh().await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(error) => error.label(),
        };
        metrics::counter!("jwks_refresh_total", "outcome" => outcome).increment(1);
        self.inner.last_refresh_failed.store(result.is_err(), Ordering::Relaxed);
        if let Err(error) = &result {
            tracing::warn!(%error, "key set refresh failed; keeping the keys we have");
        }
        self.status();
        result
    }

    async fn try_refresh(&self) -> Result<Option<Duration>, FetchError> {
        if let Some(jwks_uri) = &self.inner.settings.jwks_uri {
            return self.fetch_keys(jwks_uri).await;
        }
        let metadata = match self.metadata() {
            Some(metadata) => metadata,
            None => {
                let metadata = fetch::discover(&self.inner.http, &self.inner.settings.issuer).await?;
                if let Ok(mut slot) = self.inner.metadata.write() {
                    *slot = Some(metadata.clone());
                }
                metadata
            }
        };
        self.fetch_keys(&metadata.jwks_uri).await
    }

    async fn fetch_keys(&self, jwks_uri: &str) -> Result<Option<Duration>, FetchError> {
        let fetched =
            fetch::fetch_capped(&self.inner.http, jwks_uri, self.inner.settings.max_body_bytes, None).await?;
        let jwks: JwkSet = serde_json::from_slice(&fetched.body)
            .map_err(|error| FetchError::Invalid(format!("key set: {error}")))?;
        let keys = usable_keys(&jwks)?;
        let confirmed_at = self.inner.clock.now_u64();
        // On disk before in force: a token accepted with a new key is accepted after a restart
        // during an outage too, even one that follows a crash a moment later.
        if let Some(path) = &self.inner.settings.cache_file
            && let Ok(bytes) = serde_json::to_vec(&DiskCopy { confirmed_at, jwks: jwks.clone() })
        {
            crate::persist::write(path.clone(), bytes, "key set").await;
        }
        self.put_in_force(keys, &jwks, confirmed_at);
        Ok(fetched.max_age)
    }

    /// Installs a key set obtained some other way than fetching (the auth server verifying its
    /// own tokens, tests). Refused, and the current set kept, unless it has a usable key.
    pub fn replace_keys(&self, jwks: JwkSet) -> Result<(), FetchError> {
        self.install(&jwks, self.inner.clock.now_u64())
    }

    /// Replaces the key set if `jwks` has at least one usable key.
    fn install(&self, jwks: &JwkSet, confirmed_at: u64) -> Result<(), FetchError> {
        self.put_in_force(usable_keys(jwks)?, jwks, confirmed_at);
        Ok(())
    }

    fn put_in_force(&self, keys: HashMap<String, Arc<VerifyingKey>>, jwks: &JwkSet, confirmed_at: u64) {
        let canonical = serde_json::to_string(jwks).unwrap_or_default();
        let changed = self.snapshot().is_none_or(|current| current.canonical != canonical);
        if let Ok(mut current) = self.inner.current.write() {
            *current = Some(Arc::new(KeySet { keys, confirmed_at, canonical }));
        }
        if changed {
            self.inner.generation.fetch_add(1, Ordering::AcqRel);
            tracing::info!(keys = jwks.keys.len(), "key set updated");
        }
    }

    fn load_disk_copy(&self) {
        let Some(path) = &self.inner.settings.cache_file else {
            return;
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return,
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "cannot read cached key set");
                return;
            }
        };
        match serde_json::from_slice::<DiskCopy>(&bytes) {
            Ok(copy) => {
                let confirmed_at = self.clamp_disk_time(path, copy.confirmed_at);
                match self.install(&copy.jwks, confirmed_at) {
                    Ok(()) => tracing::info!(path = %path.display(), "loaded cached key set from disk"),
                    Err(error) => tracing::warn!(%error, "cached key set unusable"),
                }
            }
            Err(error) => tracing::warn!(%error, "cached key set is corrupt; ignoring it"),
        }
    }

    /// A disk copy was confirmed no later than the file was written, and not in the future:
    /// the time recorded in the file is clamped to its modification time and to now, so a
    /// file cannot extend its own life. A file whose modification time cannot be read counts
    /// as confirmed at the epoch, i.e. too old to trust.
    fn clamp_disk_time(&self, path: &std::path::Path, recorded: u64) -> u64 {
        let modified = crate::persist::modified_at(path).unwrap_or_else(|| {
            tracing::warn!(path = %path.display(), "cannot read the modification time of the cached key set");
            0
        });
        recorded.min(modified).min(self.inner.clock.now_u64())
    }

    /// Starts the background refresh: immediately, then as `Cache-Control` says within the
    /// configured bounds, and every `refresh_min` while the auth server is failing.
    pub fn spawn_refresh(&self) -> tokio::task::JoinHandle<()> {
        let cache = self.clone();
        tokio::spawn(async move {
            loop {
                let settings = &cache.inner.settings;
                let delay = match cache.refresh().await {
                    Ok(max_age) => max_age
                        .unwrap_or(settings.refresh_max)
                        .clamp(settings.refresh_min, settings.refresh_max),
                    Err(_) => settings.refresh_min,
                };
                tokio::time::sleep(delay).await;
            }
        })
    }
}

/// The keys of `jwks` this cache can verify with, by `kid`; an error if there is none.
fn usable_keys(jwks: &JwkSet) -> Result<HashMap<String, Arc<VerifyingKey>>, FetchError> {
    let keys: HashMap<String, Arc<VerifyingKey>> = jwks
        .keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.kid.clone().filter(|kid| kid.len() <= MAX_KID_LEN)?;
            match VerifyingKey::from_jwk(jwk) {
                Ok(key) => Some((kid, Arc::new(key))),
                Err(error) => {
                    tracing::warn!(%error, kid, "ignoring unusable key in key set");
                    None
                }
            }
        })
        .collect();
    if keys.is_empty() {
        return Err(FetchError::Invalid("key set has no usable key".into()));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::{Algorithm, SigningKey};
    use crate::time::unix_now;

    fn jwks_with(kid: &str) -> JwkSet {
        let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
        JwkSet { keys: vec![key.verifying_key().to_jwk(kid)] }
    }

    #[tokio::test]
    async fn a_key_set_without_usable_keys_never_replaces_the_good_one() {
        let cache = KeyCache::new(KeyCacheSettings::new("http://127.0.0.1:9")).unwrap();
        cache.install(&jwks_with("good"), unix_now()).unwrap();
        let empty = JwkSet { keys: vec![] };
        assert!(cache.install(&empty, unix_now()).is_err());
        assert!(cache.lookup("good").is_ok());
    }

    #[tokio::test]
    async fn keys_older_than_the_maximum_age_are_refused() {
        let mut settings = KeyCacheSettings::new("http://127.0.0.1:9");
        settings.max_age = Duration::from_secs(60);
        let cache = KeyCache::new(settings).unwrap();
        cache.install(&jwks_with("old"), unix_now() - 120).unwrap();
        assert_eq!(cache.lookup("old").unwrap_err(), KeyLookupError::TooStale);
        assert_eq!(cache.status(), KeyStatus::Unavailable);
    }

    #[tokio::test]
    async fn the_disk_copy_is_loaded_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = KeyCacheSettings::new("http://127.0.0.1:9");
        settings.cache_file = Some(dir.path().join("jwks.json"));
        let copy = DiskCopy { confirmed_at: unix_now(), jwks: jwks_with("k1") };
        std::fs::write(dir.path().join("jwks.json"), serde_json::to_vec(&copy).unwrap()).unwrap();
        let cache = KeyCache::new(settings).unwrap();
        assert!(cache.lookup("k1").is_ok());
        assert_eq!(cache.status(), KeyStatus::Ready);
    }

    #[tokio::test]
    async fn a_corrupt_disk_copy_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = KeyCacheSettings::new("http://127.0.0.1:9");
        settings.cache_file = Some(dir.path().join("jwks.json"));
        std::fs::write(dir.path().join("jwks.json"), b"{not json").unwrap();
        let cache = KeyCache::new(settings).unwrap();
        assert_eq!(cache.lookup("k1").unwrap_err(), KeyLookupError::NoKeys);
    }
}
