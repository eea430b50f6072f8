//! The revocation list: which sessions, tokens and subjects the auth server has revoked.
//!
//! Stateless tokens cannot be recalled, so logout needs a list the services apply on every
//! request. The auth server signs the list with its current signing key (header
//! `typ: revocations+jwt`, so it can never pass as an access token and vice versa); services poll
//! it, verify it with the same key cache, refuse lists older than the one they hold, and keep the
//! last good list on disk so it stays in force through an outage and a restart.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::claims::AccessClaims;
use crate::fetch::{self, FetchError};
use crate::jws::{self, VerifyingKey};
use crate::keys::KeyCache;

/// The `typ` header of a signed revocation list.
pub const REVOCATION_LIST_TYPE: &str = "revocations+jwt";

/// The signed payload of `GET /v1/revocations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevocationList {
    /// The issuer that signed the list.
    pub iss: String,
    /// When the list was produced; a service never goes back to an older list.
    pub iat: i64,
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
    /// After this time no token the entry covers is valid anyway; the entry is dropped then.
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

/// The list in the form checked on every request.
#[derive(Debug, Default)]
struct RevocationSet {
    issued_at: i64,
    sessions: HashSet<String>,
    tokens: HashSet<String>,
    subjects: HashMap<String, i64>,
}

impl RevocationSet {
    fn from_list(list: &RevocationList) -> Self {
        Self {
            issued_at: list.iat,
            sessions: list.sessions.iter().map(|entry| entry.id.clone()).collect(),
            tokens: list.tokens.iter().map(|entry| entry.id.clone()).collect(),
            subjects: list.subjects.iter().map(|cut| (cut.id.clone(), cut.not_before)).collect(),
        }
    }

    fn revokes(&self, claims: &AccessClaims) -> bool {
        self.tokens.contains(&claims.jti)
            || claims.sid.as_ref().is_some_and(|sid| self.sessions.contains(sid))
            || self.subjects.get(&claims.sub).is_some_and(|cutoff| claims.iat < *cutoff)
    }
}

/// Where the revocation list comes from and where it is kept.
#[derive(Debug, Clone)]
pub struct RevocationSettings {
    /// How often to poll (default 15 s).
    pub poll_interval: Duration,
    /// Largest list accepted.
    pub max_body_bytes: usize,
    /// Where the last good (signed) list is kept.
    pub cache_file: Option<PathBuf>,
}

impl Default for RevocationSettings {
    fn default() -> Self {
        Self { poll_interval: Duration::from_secs(15), max_body_bytes: 4 * 1024 * 1024, cache_file: None }
    }
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
    current: RwLock<Arc<RevocationSet>>,
    etag: Mutex<Option<String>>,
    generation: AtomicU64,
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
}

impl Revocations {
    /// Creates the list, loading and re-verifying the disk copy with the cached keys.
    pub fn new(settings: RevocationSettings, keys: KeyCache) -> Self {
        let revocations = Self {
            inner: Arc::new(Inner {
                settings,
                keys,
                current: RwLock::new(Arc::default()),
                etag: Mutex::new(None),
                generation: AtomicU64::new(0),
            }),
        };
        revocations.load_disk_copy();
        revocations
    }

    /// Changes whenever the list in force changes.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Whether the token these claims belong to is revoked.
    pub fn is_revoked(&self, claims: &AccessClaims) -> bool {
        self.inner.current.read().map(|set| set.revokes(claims)).unwrap_or(true)
    }

    /// Verifies a signed list and puts it in force unless it is older than the current one.
    /// Returns whether the list in force changed.
    pub async fn apply_signed(&self, compact: &str) -> Result<bool, RevocationError> {
        let parts = jws::split_compact(compact).map_err(|_| RevocationError::Rejected("malformed"))?;
        let kid = parts.header.kid.as_deref().ok_or(RevocationError::Rejected("no kid"))?;
        let key = self.inner.keys.key_for(kid).await.map_err(|_| RevocationError::Rejected("unknown key"))?;
        self.install(&parts, &key)
    }

    fn install(&self, parts: &jws::UnverifiedJws<'_>, key: &VerifyingKey) -> Result<bool, RevocationError> {
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
        let mut current =
            self.inner.current.write().map_err(|_| RevocationError::Rejected("lock poisoned"))?;
        if list.iat < current.issued_at {
            return Err(RevocationError::Rejected("older than the list in force"));
        }
        let next = RevocationSet::from_list(&list);
        let changed = current.sessions != next.sessions
            || current.tokens != next.tokens
            || current.subjects != next.subjects;
        *current = Arc::new(next);
        drop(current);
        if changed {
            self.inner.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(changed)
    }

    /// Polls the list once, with `If-None-Match`.
    #[tracing::instrument(name = "poll_revocations", skip_all,
        fields(issuer = %self.inner.keys.settings().issuer))]
    pub async fn poll(&self) -> Result<(), RevocationError> {
        let url = match self.inner.keys.metadata().and_then(|metadata| metadata.revocation_list_uri) {
            Some(url) => url,
            None => format!("{}/v1/revocations", self.inner.keys.settings().issuer.trim_end_matches('/')),
        };
        let etag = self.inner.etag.lock().ok().and_then(|etag| etag.clone());
        let fetched = fetch::fetch_capped(
            self.inner.keys.http(),
            &url,
            self.inner.settings.max_body_bytes,
            etag.as_deref(),
        )
        .await?;
        if fetched.not_modified {
            return Ok(());
        }
        let compact = String::from_utf8(fetched.body).map_err(|_| RevocationError::Rejected("not UTF-8"))?;
        let changed = self.apply_signed(compact.trim()).await?;
        if let Ok(mut slot) = self.inner.etag.lock() {
            *slot = fetched.etag;
        }
        if changed {
            tracing::info!("revocation list updated");
        }
        if let Some(path) = &self.inner.settings.cache_file {
            crate::persist::spawn_write(path.clone(), compact.into_bytes(), "revocation list");
        }
        Ok(())
    }

    /// Loads the last good list, verified with the keys already loaded from disk: no network,
    /// so a service restarted during an outage applies it before serving its first request.
    fn load_disk_copy(&self) {
        let Some(path) = &self.inner.settings.cache_file else {
            return;
        };
        let Ok(compact) = std::fs::read_to_string(path) else {
            return;
        };
        let result = jws::split_compact(compact.trim())
            .map_err(|_| RevocationError::Rejected("malformed"))
            .and_then(|parts| {
                let kid = parts.header.kid.as_deref().unwrap_or_default();
                let key = self.inner.keys.cached_key(kid).ok_or(RevocationError::Rejected("unknown key"))?;
                self.install(&parts, &key)
            });
        match result {
            Ok(_) => tracing::info!(path = %path.display(), "loaded cached revocation list"),
            Err(error) => tracing::warn!(%error, "cached revocation list unusable"),
        }
    }

    /// Polls every `poll_interval` until the task is dropped.
    pub fn spawn_poll(&self) -> tokio::task::JoinHandle<()> {
        let revocations = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(error) = revocations.poll().await {
                    tracing::debug!(%error, "revocation list poll failed; keeping the list in force");
                }
                tokio::time::sleep(revocations.inner.settings.poll_interval).await;
            }
        })
    }
}
