//! The revocation list: which sessions, tokens and subjects the auth server has revoked.
//!
//! Stateless tokens cannot be recalled, so logout needs a list the services apply on every
//! request. The auth server signs the list with its current signing key (header
//! `typ: revocations+jwt`, so it can never pass as an access token and vice versa); services poll
//! it, verify it with the same key cache and keep the last good list on disk so it stays in force
//! through an outage and a restart.
//!
//! A list that silently stops arriving would leave logged-out sessions valid with nothing to
//! show for it, so the list's freshness is tracked like the keys' age:
//!
//! - **Age** counts from the list's signed `iat` (never from when it was received, so a list
//!   replayed by someone who blocks the real one ages as it should). Past
//!   [`RevocationSettings::max_age`], or past the list's own `exp`, the list is stale:
//!   [`RevocationStatus::Degraded`]. Past [`RevocationSettings::fail_closed_after`] it is
//!   [`RevocationStatus::Unavailable`] and the verifier refuses every token with a 503.
//! - **Order**: a list carries a sequence number `seq` that only grows. A list with a lower
//!   `seq` than the one in force is refused, and so is a list without `seq` once one with it
//!   was seen.
//! - **Union**: accepting a list never drops an entry before its own `exp` (plus the
//!   verifier's leeway), so a replayed or pruned list can never un-revoke a session early.
//! - **No list** (a missing or corrupt disk copy, an issuer that has not answered yet) is not an
//!   empty list: it is degraded when the service started with keys from disk (it had a list
//!   before), once a poll has failed, and once `max_age` has passed since start; and past
//!   `fail_closed_after` since start it fails closed.
//!
//! Lists of older servers, without `exp` and `seq`, are accepted: their age still counts from
//! their `iat`, and they are ordered by `iat` among themselves.

mod entries;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::claims::AccessClaims;
use crate::fetch::{self, FetchError};
use crate::jws::{self, VerifyingKey};
use crate::keys::KeyCache;
use entries::RevocationSet;

/// The `typ` header of a signed revocation list.
pub const REVOCATION_LIST_TYPE: &str = "revocations+jwt";

/// The signed payload of `GET /v1/revocations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevocationList {
    /// The issuer that signed the list.
    pub iss: String,
    /// When the list was produced. Its age, and so whether a service still takes it as
    /// current, counts from here.
    pub iat: i64,
    /// After this the list must not be taken as current (services report it stale). Absent
    /// in lists of older servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Sequence number: never lower in a later list of the same issuer, across replicas and
    /// restarts. A service refuses a list with a lower one than the list in force. Absent in
    /// lists of older servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Revoked login sessions (`sid`), each until every token of it has expired.
    #[serde(default)]
    pub sessions: Vec<RevokedEntry>,
    /// Revoked individual access tokens (`jti`).
    #[serde(default)]
    pub tokens: Vec<RevokedEntry>,
    /// Per-subject cut-offs: tokens of `id` issued before `not_before` are revoked.
    #[serde(default)]
    pub subjects: Vec<SubjectCutoff>,
}

/// One revoked session or token id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevokedEntry {
    /// The `sid` or `jti`.
    pub id: String,
    /// No token the entry covers expires later than this. Services keep the entry until this
    /// plus their leeway, whatever later lists say.
    pub exp: i64,
}

/// Tokens of a subject issued before `not_before` are revoked (e.g. a disabled user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubjectCutoff {
    /// The `sub`.
    pub id: String,
    /// Tokens with `iat` before this are revoked.
    pub not_before: i64,
    /// When the entry can be dropped.
    pub exp: i64,
}

/// Where the revocation list comes from, where it is kept, and how old it may get.
#[derive(Debug, Clone)]
pub struct RevocationSettings {
    /// How often to poll (default 15 s).
    pub poll_interval: Duration,
    /// Largest list accepted.
    pub max_body_bytes: usize,
    /// Where the last good (signed) list is kept. It is verified again with the cached keys
    /// when loaded, so the file cannot add revocations the issuer did not sign (nor, the list
    /// being a union, remove any); its age counts from the list's signed `iat`, clamped to
    /// the file's modification time and to now. Written 0600 in a directory created 0700,
    /// before the list is put in force, so a restart never goes back on a refusal.
    pub cache_file: Option<PathBuf>,
    /// Past this age (since the list in force was signed) the list is stale and the status
    /// degraded (default 120 s: eight polls).
    pub max_age: Duration,
    /// Past this age the list is unusable: the verifier refuses every token with
    /// [`VerifyError::RevocationsUnavailable`](crate::VerifyError::RevocationsUnavailable), a
    /// 503. `None` (the default) never fails closed, for issuers that publish no list (and
    /// for the auth server's own verifier, which reads revocations from its database).
    pub fail_closed_after: Option<Duration>,
}

impl Default for RevocationSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(15),
            max_body_bytes: 4 * 1024 * 1024,
            cache_file: None,
            max_age: Duration::from_secs(120),
            fail_closed_after: None,
        }
    }
}

/// How fit the revocation list is to be applied; `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationStatus {
    /// The list is current.
    Ready,
    /// The list is stale (older than its maximum age or past its `exp`), or there is none
    /// where one was expected: revoked tokens may still be accepted.
    Degraded,
    /// The list is older than the fail-closed bound: protected routes answer 503.
    Unavailable,
}

/// Why a revocation list was refused.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// Fetching failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The signature, header or issuer is wrong.
    #[error("revocation list rejected: {0}")]
    Rejected(&'static str),
    /// Older than the list in force (a lower `seq`; a list without `seq` after one with it;
    /// between lists without `seq`, an older `iat`): a replay, or a server gone back in time.
    #[error("revocation list refused: older than the list in force ({0})")]
    Outdated(&'static str),
}

impl RevocationError {
    /// A short label: the `outcome` of `revocation_poll_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Fetch(error) => error.label(),
            Self::Rejected(_) => "rejected",
            Self::Outdated(_) => "outdated",
        }
    }
}

/// What the issuer last said about the list, as far as it is ordered and dated.
#[derive(Debug, Clone, Copy)]
struct Version {
    seq: Option<u64>,
    iat: i64,
    exp: Option<i64>,
    /// Clock seconds from which the list's age counts: the latest signed `iat` accepted,
    /// clamped to when it was received (or the disk copy written), never in the future.
    confirmed_at: i64,
}

#[derive(Debug, Default)]
struct State {
    entries: Arc<RevocationSet>,
    /// `None` until a list is accepted.
    version: Option<Version>,
}

/// The revocation list in force. Cheap to clone.
#[derive(Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Revocations").field("generation", &self.generation()).finish_non_exhaustive()
    }
}

struct Inner {
    settings: RevocationSettings,
    keys: KeyCache,
    state: RwLock<State>,
    etag: Mutex<Option<String>>,
    generation: AtomicU64,
    /// Clock seconds at creation: without a list, the age counts from here.
    started_at: i64,
    /// The service started with keys from disk but no usable list from disk: it had one.
    list_expected: AtomicBool,
    last_poll_failed: AtomicBool,
    /// Seconds past an entry's `exp` it is kept: the verifier's leeway.
    entry_margin: AtomicI64,
}

impl Revocations {
    /// Creates the list, loading and re-verifying the disk copy with the cached keys. The age
    /// and the status follow the key cache's clock.
    pub fn new(settings: RevocationSettings, keys: KeyCache) -> Self {
        let keys_from_disk = keys.age().is_some();
        let started_at = keys.clock().now();
        let revocations = Self {
            inner: Arc::new(Inner {
                list_expected: AtomicBool::new(false),
                settings,
                keys,
                state: RwLock::new(State::default()),
                etag: Mutex::new(None),
                generation: AtomicU64::new(0),
                started_at,
                last_poll_failed: AtomicBool::new(false),
                entry_margin: AtomicI64::new(0),
            }),
        };
        let loaded = revocations.load_disk_copy();
        if !loaded && keys_from_disk && revocations.inner.settings.cache_file.is_some() {
            tracing::warn!("keys were loaded from disk but no revocation list: degraded until one arrives");
            revocations.inner.list_expected.store(true, Ordering::Relaxed);
        }
        revocations
    }

    /// The settings in force.
    pub fn settings(&self) -> &RevocationSettings {
        &self.inner.settings
    }

    /// Keeps entries at least `leeway` past their `exp`: a verifier with this leeway accepts a
    /// token until its `exp` plus the leeway. [`Verifier::new`](crate::Verifier::new) calls it.
    pub(crate) fn keep_entries_past_exp(&self, leeway: Duration) {
        let seconds = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX);
        self.inner.entry_margin.fetch_max(seconds, Ordering::Relaxed);
    }

    /// Changes whenever the entries in force change.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Whether the token these claims belong to is revoked by the entries in force.
    pub fn is_revoked(&self, claims: &AccessClaims) -> bool {
        self.inner.state.read().map(|state| state.entries.revokes(claims)).unwrap_or(true)
    }

    /// The sequence number of the list in force, if it has one.
    pub fn seq(&self) -> Option<u64> {
        self.inner.state.read().ok().and_then(|state| state.version.and_then(|version| version.seq))
    }

    /// How long since the issuer last vouched for the list in force (its `iat`); `None`
    /// without a list.
    pub fn age(&self) -> Option<Duration> {
        let version = self.inner.state.read().ok().and_then(|state| state.version)?;
        Some(Duration::from_secs(self.now().saturating_sub(version.confirmed_at).unsigned_abs()))
    }

    fn now(&self) -> i64 {
        self.inner.keys.clock().now()
    }

    /// Seconds the service has been without a current list: the list's age, or without a list
    /// the time since start.
    fn age_secs(&self, now: i64, version: Option<&Version>) -> u64 {
        let since = version.map_or(self.inner.started_at, |version| version.confirmed_at);
        now.saturating_sub(since).max(0).unsigned_abs()
    }

    /// Ready, degraded or unavailable; also updates the `revocation_list_age_seconds` gauge
    /// (without a list: the time since start).
    pub fn status(&self) -> RevocationStatus {
        let now = self.now();
        let version = self.inner.state.read().ok().and_then(|state| state.version);
        let age = self.age_secs(now, version.as_ref());
        #[allow(clippy::cast_precision_loss, reason = "a gauge; ages are far below 2^52 s")]
        metrics::gauge!("revocation_list_age_seconds").set(age as f64);
        let settings = &self.inner.settings;
        if settings.fail_closed_after.is_some_and(|bound| age > bound.as_secs()) {
            return RevocationStatus::Unavailable;
        }
        let stale = age > settings.max_age.as_secs();
        let degraded = match version {
            Some(version) => stale || version.exp.is_some_and(|exp| now >= exp),
            None => {
                stale
                    || self.inner.list_expected.load(Ordering::Relaxed)
                    || self.inner.last_poll_failed.load(Ordering::Relaxed)
            }
        };
        if degraded { RevocationStatus::Degraded } else { RevocationStatus::Ready }
    }

    /// Whether the list is too old to verify with: past
    /// [`fail_closed_after`](RevocationSettings::fail_closed_after).
    pub(crate) fn too_old(&self) -> bool {
        let Some(bound) = self.inner.settings.fail_closed_after else {
            return false;
        };
        let version = self.inner.state.read().ok().and_then(|state| state.version);
        self.age_secs(self.now(), version.as_ref()) > bound.as_secs()
    }

    /// Verifies a signed list and merges it into the entries in force, unless it is older
    /// than the list in force. Returns whether the entries changed.
    pub async fn apply_signed(&self, compact: &str) -> Result<bool, RevocationError> {
        let list = self.verified(compact).await?;
        self.install(&list, self.now())
    }

    /// Splits and verifies a signed list fetched from the issuer, fetching its key if needed.
    async fn verified(&self, compact: &str) -> Result<RevocationList, RevocationError> {
        let parts = jws::split_compact(compact).map_err(|_| RevocationError::Rejected("malformed"))?;
        let kid = parts.header.kid.as_deref().ok_or(RevocationError::Rejected("no kid"))?;
        let key = self.inner.keys.key_for(kid).await.map_err(|_| RevocationError::Rejected("unknown key"))?;
        self.verify(&parts, &key)
    }

    /// Checks a list's header, its signature with `key`, and its issuer.
    fn verify(
        &self,
        parts: &jws::UnverifiedJws<'_>,
        key: &VerifyingKey,
    ) -> Result<RevocationList, RevocationError> {
        if parts.header.typ.as_deref() != Some(REVOCATION_LIST_TYPE) || parts.header.crit.is_some() {
            return Err(RevocationError::Rejected("header"));
        }
        if key.algorithm().as_str() != parts.header.alg || !key.verify(parts.signing_input, &parts.signature)
        {
            return Err(RevocationError::Rejected("signature"));
        }
        let list: RevocationList =
            serde_json::from_slice(&parts.payload).map_err(|_| RevocationError::Rejected("payload"))?;
        if list.iss != self.inner.keys.settings().issuer {
            return Err(RevocationError::Rejected("issuer"));
        }
        Ok(list)
    }

    /// The version `list` would move the one in force to, and whether it is newer; refuses a
    /// list older than the one in force. `received_at` bounds the list's confirmation time:
    /// when it arrived, or when the disk copy was written.
    fn advance(
        &self,
        current: Option<Version>,
        list: &RevocationList,
        received_at: i64,
    ) -> Result<(Version, bool), RevocationError> {
        if let Some(current) = &current {
            check_order(current, list)?;
        }
        let confirmed_at = list.iat.min(received_at).min(self.now());
        let version = match current {
            None => Version { seq: list.seq, iat: list.iat, exp: list.exp, confirmed_at },
            Some(current) => Version {
                seq: current.seq.max(list.seq),
                iat: current.iat.max(list.iat),
                exp: current.exp.max(list.exp),
                confirmed_at: current.confirmed_at.max(confirmed_at),
            },
        };
        let newer = current
            .is_none_or(|current| version.seq > current.seq || version.confirmed_at > current.confirmed_at);
        Ok((version, newer))
    }

    /// Merges a verified list into the entries in force. Returns whether the entries changed.
    fn install(&self, list: &RevocationList, received_at: i64) -> Result<bool, RevocationError> {
        let now = self.now();
        let margin = self.inner.entry_margin.load(Ordering::Relaxed);
        let mut state = self.inner.state.write().map_err(|_| RevocationError::Rejected("lock poisoned"))?;
        let (version, _) = self.advance(state.version, list, received_at)?;
        let next = state.entries.merged(list, now, margin);
        let changed = next != *state.entries;
        if changed {
            state.entries = Arc::new(next);
        }
        state.version = Some(version);
        drop(state);
        if changed {
            self.inner.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(changed)
    }

    /// Polls the list once and counts the outcome in `revocation_poll_total{outcome}`.
    #[tracing::instrument(name = "poll_revocations", skip_all,
        fields(issuer = %self.inner.keys.settings().issuer))]
    pub async fn poll(&self) -> Result<(), RevocationError> {
        let result = self.poll_once().await;
        let outcome = match &result {
            Ok(outcome) => *outcome,
            Err(error) => error.label(),
        };
        metrics::counter!("revocation_poll_total", "outcome" => outcome).increment(1);
        self.inner.last_poll_failed.store(result.is_err(), Ordering::Relaxed);
        self.status();
        result.map(|_| ())
    }

    async fn poll_once(&self) -> Result<&'static str, RevocationError> {
        let url = match self.inner.keys.metadata().and_then(|metadata| metadata.revocation_list_uri) {
            Some(url) => url,
            None => format!("{}/v1/revocations", self.inner.keys.settings().issuer.trim_end_matches('/')),
        };
        let etag = if self.may_revalidate() {
            self.inner.etag.lock().ok().and_then(|etag| etag.clone())
        } else {
            None
        };
        let fetched = fetch::fetch_capped(
            self.inner.keys.http(),
            &url,
            self.inner.settings.max_body_bytes,
            etag.as_deref(),
        )
        .await?;
        if fetched.not_modified {
            return Ok("not_modified");
        }
        let compact = String::from_utf8(fetched.body).map_err(|_| RevocationError::Rejected("not UTF-8"))?;
        let compact = compact.trim();
        let list = self.verified(compact).await?;
        let received_at = self.now();
        let current = self.inner.state.read().ok().and_then(|state| state.version);
        let (_, newer) = self.advance(current, &list, received_at)?;
        if newer && let Some(path) = &self.inner.settings.cache_file {
            // On disk before in force: once a service has refused a token, it refuses it
            // after a restart too, even one that follows a crash a moment later.
            crate::persist::write(path.clone(), compact.as_bytes().to_vec(), "revocation list").await;
        }
        let changed = self.install(&list, received_at)?;
        if let Ok(mut slot) = self.inner.etag.lock() {
            *slot = fetched.etag;
        }
        if changed {
            let entries = self.inner.state.read().map(|state| state.entries.len()).unwrap_or_default();
            tracing::info!(entries, seq = ?self.seq(), "revocation list updated");
        }
        Ok("success")
    }

    /// A 304 proves nothing about freshness (it is not signed), and the list's age counts from
    /// its signed `iat` only. So revalidation (`If-None-Match`) is used while the list in force
    /// is in the first half of its useful life (the shorter of its lifetime and `max_age`);
    /// after that, a poll asks for the whole list, whose new `iat` renews it.
    fn may_revalidate(&self) -> bool {
        let Some(version) = self.inner.state.read().ok().and_then(|state| state.version) else {
            return false;
        };
        let max_age = i64::try_from(self.inner.settings.max_age.as_secs()).unwrap_or(i64::MAX);
        let useful = version.exp.map_or(max_age, |exp| exp.saturating_sub(version.iat).min(max_age));
        self.now().saturating_sub(version.confirmed_at) < useful / 2
    }

    /// Loads the last good list, verified with the keys already loaded from disk: no network,
    /// so a service restarted during an outage applies it before serving its first request.
    /// Returns whether a list was loaded.
    fn load_disk_copy(&self) -> bool {
        let Some(path) = &self.inner.settings.cache_file else {
            return false;
        };
        let compact = match std::fs::read_to_string(path) {
            Ok(compact) => compact,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return false,
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "cannot read cached revocation list");
                return false;
            }
        };
        // Never younger than the file: a list cannot have been received after it was written.
        let written_at = crate::persist::modified_at(path).map_or(0, |at| i64::try_from(at).unwrap_or(0));
        let result = jws::split_compact(compact.trim())
            .map_err(|_| RevocationError::Rejected("malformed"))
            .and_then(|parts| {
                let kid = parts.header.kid.as_deref().unwrap_or_default();
                let key = self.inner.keys.cached_key(kid).ok_or(RevocationError::Rejected("unknown key"))?;
                self.install(&self.verify(&parts, &key)?, written_at)
            });
        match result {
            Ok(_) => {
                tracing::info!(path = %path.display(), "loaded cached revocation list");
                true
            }
            Err(error) => {
                tracing::warn!(%error, "cached revocation list unusable");
                false
            }
        }
    }

    /// Polls every `poll_interval` until the task is dropped. A failed poll is a WARN: the
    /// list in force stays, and ages.
    pub fn spawn_poll(&self) -> tokio::task::JoinHandle<()> {
        let revocations = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(error) = revocations.poll().await {
                    let age_secs = revocations.age().map(|age| age.as_secs());
                    tracing::warn!(%error, ?age_secs, status = ?revocations.status(),
                        "revocation list poll failed; keeping the list in force");
                }
                tokio::time::sleep(revocations.inner.settings.poll_interval).await;
            }
        })
    }
}

/// Refuses `list` if it is older than the list in force.
fn check_order(current: &Version, list: &RevocationList) -> Result<(), RevocationError> {
    match (current.seq, list.seq) {
        (Some(held), Some(received)) if received < held => Err(RevocationError::Outdated("lower seq")),
        (Some(_), None) => Err(RevocationError::Outdated("no seq after a list with one")),
        (None, None) if list.iat < current.iat => Err(RevocationError::Outdated("older iat")),
        _ => Ok(()),
    }
}
