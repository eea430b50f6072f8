//! Signing keys: generated on first start, stored in the database so every replica signs with
//! the same keys, rotated with pre-publication, retired only after their last token expired.
//!
//! Lifecycle of a key (all times in the row, so replicas agree without talking to each other):
//! - created: published in the JWKS at once, but not signing yet;
//! - `activates_at` (created + pre-publication delay): the newest active key signs. The delay
//!   gives every service time to fetch the new key before the first token signed with it;
//! - `unpublish_at` (when a newer key activates + access-token lifetime + margin): removed from
//!   the JWKS. Every token it signed has expired by then.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use secrecy::{ExposeSecret as _, SecretSlice};
use serde::Serialize;
use service_kit::Seconds;
use shared_auth::jws::{Algorithm, Jwk, JwkSet, SigningKey, VerifyingKey};
use shared_auth::keys::{KeyCache, KeyCacheSettings};
use shared_auth::time::Clock;
use sqlx::AnyPool;

use crate::store::keys::{self, KeyRow, KeyState};

/// Extra time a retired key stays published beyond the access-token lifetime, for clock skew.
const UNPUBLISH_MARGIN_SECS: i64 = 120;

/// How keys are made and protected.
#[derive(Debug, Clone)]
pub struct KeyRingSettings {
    /// Algorithm of newly generated keys.
    pub algorithm: Algorithm,
    /// Time between publishing a new key and signing with it.
    pub prepublish: Seconds,
    /// Lifetime of access tokens, which decides when a retired key may disappear.
    pub access_token_ttl: Seconds,
    /// 32-byte key that encrypts private keys at rest; `None` stores them unencrypted.
    pub encryption_key: Option<SecretSlice<u8>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("KeyRing").field("settings", &self.inner.settings).finish_non_exhaustive()
    }
}

/// The key that signs right now.
pub struct ActiveKey {
    /// Its `kid`.
    pub kid: String,
    /// The parsed private key, kept for the life of the process.
    pub key: SigningKey,
}

impl std::fmt::Debug for ActiveKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ActiveKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

struct RingState {
    /// The access-token key: the newest active key of the configured algorithm.
    signing: Arc<ActiveKey>,
    /// The newest active key of each other algorithm that has one (RS256 for the id_tokens of
    /// clients registered with `--id-token-alg RS256`).
    others: Vec<Arc<ActiveKey>>,
    jwks: JwkSet,
}

/// The published keys and the current signing key. Cheap to clone.
#[derive(Clone)]
pub struct KeyRing {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    clock: Clock,
    settings: KeyRingSettings,
    state: RwLock<Option<Arc<RingState>>>,
    /// The published keys in the form shared-auth's verifier uses, so the auth server checks
    /// its own tokens (logout) with exactly the rules the services apply.
    verifier_keys: KeyCache,
}

/// One key as `keys list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    /// Algorithm.
    pub algorithm: String,
    /// `pending`, `active`, `retired` (published, not signing) or `expired`.
    pub state: KeyState,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub activates_at: i64,
    /// Unix seconds.
    pub unpublish_at: Option<i64>,
}

impl KeyRing {
    /// Loads the keys, generating the first one if the database has none usable.
    pub async fn load_or_init(
        pool: AnyPool,
        settings: KeyRingSettings,
        issuer: &str,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        // The auth server's own verifier (logout, introspection) reads time from the same clock.
        let verifier_keys = KeyCache::with_clock(KeyCacheSettings::new(issuer), clock.clone())?;
        if settings.encryption_key.is_none() {
            tracing::warn!(
                "KEY_ENCRYPTION_KEY is not set: private signing keys are stored UNENCRYPTED in the database; \
                 anyone who can read it can forge tokens every service accepts. Set KEY_ENCRYPTION_KEY \
                 (32 bytes, base64) in production."
            );
        }
        let inner = Inner { pool, clock, settings, state: RwLock::new(None), verifier_keys };
        let ring = Self { inner: Arc::new(inner) };
        if ring.reload().await.is_err() {
            tracing::info!(algorithm = %ring.inner.settings.algorithm, "no signing key yet; generating one");
            ring.insert_new_key(ring.inner.settings.algorithm, 0).await?;
            ring.reload().await?;
        }
        Ok(ring)
    }

    /// Re-reads the keys from the database: picks up rotations by other replicas and the
    /// activation of pre-published keys.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let now = self.inner.clock.now();
        let rows = keys::published(&self.inner.pool, now).await.context("failed to read signing keys")?;
        let primary = self.inner.settings.algorithm;
        let current = self.inner.state.read().ok().and_then(|state| state.clone());
        let known: Vec<Arc<ActiveKey>> = current
            .iter()
            .flat_map(|state| std::iter::once(state.signing.clone()).chain(state.others.iter().cloned()))
            .collect();
        let mut signing = None;
        let mut others = Vec::new();
        for algorithm in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
            let Some(row) = newest_active(&rows, algorithm, now) else {
                continue;
            };
            // Keys already parsed stay: no private-key decoding per reload.
            let key = match known.iter().find(|key| key.kid == row.kid) {
                Some(key) => key.clone(),
                None => Arc::new(self.decrypt(row)?),
            };
            if algorithm == primary {
                signing = Some(key);
            } else {
                others.push(key);
            }
        }
        let signing = signing.context("no active signing key")?;
        let mut jwks = JwkSet::default();
        for row in &rows {
            let jwk: Jwk = serde_json::from_str(&row.public_jwk).context("failed to parse stored JWK")?;
            // Refuse to publish what no verifier could use.
            VerifyingKey::from_jwk(&jwk)?;
            jwks.keys.push(jwk);
        }
        self.inner.verifier_keys.replace_keys(jwks.clone())?;
        if let Ok(mut state) = self.inner.state.write() {
            *state = Some(Arc::new(RingState { signing, others, jwks }));
        }
        Ok(())
    }

    /// The published keys as a shared-auth key cache (kept in step with every reload).
    pub fn verifier_keys(&self) -> KeyCache {
        self.inner.verifier_keys.clone()
    }

    /// Reloads every `interval` until the runtime stops.
    pub fn spawn_reload(&self, interval: Duration) {
        let ring = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                if let Err(error) = ring.reload().await {
                    tracing::warn!(error = format!("{error:#}"), "failed to reload signing keys");
                }
            }
        });
    }

    fn state(&self) -> anyhow::Result<Arc<RingState>> {
        self.inner.state.read().ok().and_then(|state| state.clone()).context("key ring not loaded")
    }

    /// The key that signs access tokens now.
    pub fn signing_key(&self) -> anyhow::Result<Arc<ActiveKey>> {
        Ok(self.state()?.signing.clone())
    }

    /// The key that signs with `algorithm` now (id_tokens of a client's `--id-token-alg`),
    /// generating the first key of that algorithm when there is none: it is published at once,
    /// and every relying party fetches the key set when it meets a new `kid`.
    pub async fn signing_key_for(&self, algorithm: Algorithm) -> anyhow::Result<Arc<ActiveKey>> {
        let find = |state: Arc<RingState>| {
            std::iter::once(&state.signing)
                .chain(&state.others)
                .find(|key| key.key.algorithm() == algorithm)
                .cloned()
        };
        if let Some(key) = find(self.state()?) {
            return Ok(key);
        }
        tracing::info!(%algorithm, "no signing key of this algorithm yet; generating one");
        self.insert_new_key(algorithm, 0).await?;
        self.reload().await?;
        find(self.state()?).context("the new signing key is not active")
    }

    /// The public key set to publish.
    pub fn jwks(&self) -> anyhow::Result<JwkSet> {
        Ok(self.state()?.jwks.clone())
    }

    /// Publishes a new key that starts signing after the pre-publication delay, and schedules
    /// the unpublication of the keys it replaces.
    /// Rotates the access-token key and, beside it, the key of every other algorithm that
    /// signs (RS256 id_tokens). Returns the new access-token key.
    pub async fn rotate(&self) -> anyhow::Result<KeyInfo> {
        let primary = self.inner.settings.algorithm;
        let others: Vec<Algorithm> = self.state()?.others.iter().map(|key| key.key.algorithm()).collect();
        let replaced = match others.first() {
            // Keys of an earlier SIGNING_ALG go, the other algorithm's keys stay.
            Some(other) => keys::Replaced::AllBut(other.as_str()),
            None => keys::Replaced::All,
        };
        let info = self.rotate_one(primary, replaced).await?;
        for other in others {
            self.rotate_one(other, keys::Replaced::Of(other.as_str())).await?;
        }
        self.reload().await?;
        Ok(info)
    }

    async fn rotate_one(
        &self,
        algorithm: Algorithm,
        replaced: keys::Replaced<'_>,
    ) -> anyhow::Result<KeyInfo> {
        let info = self.insert_new_key(algorithm, self.inner.settings.prepublish.as_i64()).await?;
        // Both terms are bounded (ten years each), so the sum cannot overflow.
        let unpublish_at =
            info.activates_at + self.inner.settings.access_token_ttl.as_i64() + UNPUBLISH_MARGIN_SECS;
        keys::schedule_unpublish(&self.inner.pool, &info.kid, replaced, unpublish_at)
            .await
            .context("failed to schedule retirement of the previous keys")?;
        Ok(info)
    }

    /// Every stored key with its state.
    pub async fn list(&self) -> anyhow::Result<Vec<KeyInfo>> {
        let now = self.inner.clock.now();
        let state = self.state()?;
        let signing: Vec<&str> =
            std::iter::once(&state.signing).chain(&state.others).map(|key| key.kid.as_str()).collect();
        let rows = keys::all(&self.inner.pool).await.context("failed to read signing keys")?;
        Ok(rows
            .into_iter()
            .map(|row| KeyInfo {
                state: row.state(&signing, now),
                kid: row.kid,
                algorithm: row.algorithm,
                created_at: row.created_at,
                activates_at: row.activates_at,
                unpublish_at: row.unpublish_at,
            })
            .collect())
    }

    async fn insert_new_key(&self, algorithm: Algorithm, activate_in_secs: i64) -> anyhow::Result<KeyInfo> {
        // RSA generation takes long enough to stall an async worker.
        let key = tokio::task::spawn_blocking(move || SigningKey::generate(algorithm))
            .await
            .context("key generation task failed")??;
        let public = key.verifying_key();
        let kid = public.thumbprint();
        let jwk = serde_json::to_string(&public.to_jwk(&kid))?;
        let private_key = self.encrypt(&kid, &key.to_pkcs8_der()?)?;
        let now = self.inner.clock.now();
        // Strictly after every existing key of its algorithm, so "the newest active key signs"
        // is never a tie, even for two rotations within one second.
        let latest = keys::latest_activation(&self.inner.pool, algorithm.as_str())
            .await
            .context("failed to read key activation times")?;
        let activates_at = (now + activate_in_secs).max(latest.map_or(i64::MIN, |latest| latest + 1));
        let info = KeyInfo {
            kid: kid.clone(),
            algorithm: algorithm.to_string(),
            state: if activates_at <= now { KeyState::Active } else { KeyState::Pending },
            created_at: now,
            activates_at,
            unpublish_at: None,
        };
        let row = KeyRow {
            kid: kid.clone(),
            algorithm: algorithm.as_str().to_owned(),
            private_key,
            public_jwk: jwk,
            created_at: info.created_at,
            activates_at: info.activates_at,
            unpublish_at: None,
        };
        keys::insert(&self.inner.pool, &row).await.context("failed to store the new signing key")?;
        tracing::info!(kid, %algorithm, activates_at = info.activates_at, "signing key created");
        Ok(info)
    }

    fn cipher(&self) -> anyhow::Result<Option<ChaCha20Poly1305>> {
        self.inner
            .settings
            .encryption_key
            .as_ref()
            .map(|key| {
                ChaCha20Poly1305::new_from_slice(key.expose_secret())
                    .map_err(|_| anyhow::anyhow!("KEY_ENCRYPTION_KEY must be 32 bytes"))
            })
            .transpose()
    }

    /// `v1:` + base64(nonce ‖ ciphertext) with the kid as associated data (a key row cannot be
    /// swapped for another), or `plain:` + base64(PKCS#8) when no encryption key is configured.
    fn encrypt(&self, kid: &str, der: &[u8]) -> anyhow::Result<String> {
        let Some(cipher) = self.cipher()? else {
            return Ok(format!("plain:{}", STANDARD.encode(der)));
        };
        let mut nonce = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: der, aad: kid.as_bytes() })
            .map_err(|_| anyhow::anyhow!("failed to encrypt the private key"))?;
        Ok(format!("v1:{}", STANDARD.encode([nonce.as_slice(), &sealed].concat())))
    }

    fn decrypt(&self, row: &KeyRow) -> anyhow::Result<ActiveKey> {
        let algorithm: Algorithm = row.algorithm.parse().map_err(anyhow::Error::msg)?;
        let der = self.unseal(&row.kid, &row.private_key, &format!("signing key {}", row.kid))?;
        Ok(ActiveKey { kid: row.kid.clone(), key: SigningKey::from_pkcs8_der(algorithm, &der)? })
    }

    /// The plain bytes of a value stored by [`Self::encrypt`] with `aad`; `what` names it in
    /// errors.
    fn unseal(&self, aad: &str, stored: &str, what: &str) -> anyhow::Result<Vec<u8>> {
        if let Some(plain) = stored.strip_prefix("plain:") {
            return Ok(STANDARD.decode(plain)?);
        }
        let Some(sealed) = stored.strip_prefix("v1:") else {
            anyhow::bail!("{what} has an unknown storage format");
        };
        let cipher = self
            .cipher()?
            .with_context(|| format!("{what} is encrypted but KEY_ENCRYPTION_KEY is not set"))?;
        let sealed = STANDARD.decode(sealed)?;
        anyhow::ensure!(sealed.len() > 12, "encrypted {what} too short");
        let (nonce, ciphertext) = sealed.split_at(12);
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: aad.as_bytes() })
            .map_err(|_| anyhow::anyhow!("cannot decrypt {what}: wrong KEY_ENCRYPTION_KEY?"))
    }

    /// Seals a secret that is not a signing key (an upstream provider's client secret) as the
    /// private keys are: encrypted with `KEY_ENCRYPTION_KEY` when it is set, bound to `label`
    /// (a sealed value cannot be moved to another row).
    pub fn seal(&self, label: &str, secret: &[u8]) -> anyhow::Result<String> {
        self.encrypt(label, secret)
    }

    /// The plain value of [`Self::seal`] with the same `label`.
    pub fn open(&self, label: &str, sealed: &str) -> anyhow::Result<Vec<u8>> {
        self.unseal(label, sealed, label)
    }
}

/// The key of `algorithm` that signs at `now`: the one activated last.
fn newest_active(rows: &[KeyRow], algorithm: Algorithm, now: i64) -> Option<&KeyRow> {
    rows.iter()
        .filter(|row| row.activates_at <= now && row.algorithm == algorithm.as_str())
        .max_by(|a, b| (a.activates_at, &a.kid).cmp(&(b.activates_at, &b.kid)))
}
