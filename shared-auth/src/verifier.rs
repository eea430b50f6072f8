//! Access-token verification (RFC 8725, RFC 9068 §4) with a verified-token cache, and DPoP
//! sender-constrained tokens (RFC 9449 §7).
//!
//! [`Verifier::verify`] takes a bearer token and refuses one bound to a DPoP key (a stolen
//! bound token must not work as a bearer one, §7.2). [`Verifier::verify_dpop`] takes a bound
//! token with its proof: the token check is served by the same cache, so a repeated token costs
//! one proof signature, not two signatures.

use std::sync::Arc;
use std::time::Duration;

use crate::claims::AccessClaims;
use crate::dpop::{ProofError, ProofRequest, ProofSettings, ProofVerifier};
use crate::jws::{self, SplitError};
use crate::keys::{KeyCache, KeyLookupError, KeyStatus};
use crate::revocation::{RevocationStatus, Revocations};

/// What a service accepts.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// The exact `iss` expected.
    pub issuer: String,
    /// This service's own name; it must be one of the token's `aud`.
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`. Revocation entries are kept this long
    /// past their own `exp` too, so an entry outlives every token it covers.
    pub leeway: Duration,
    /// Tokens whose lifetime (`exp - iat`) is longer than this are refused, however they were
    /// signed: a key that leaked, or an issuer misconfigured, cannot mint tokens that outlive
    /// every revocation entry and key rotation by years.
    pub max_token_lifetime: Duration,
    /// Tokens longer than this are refused before any decoding.
    pub max_token_bytes: usize,
    /// How many verified tokens are remembered.
    pub cache_capacity: u64,
    /// Whether `aud` must contain `audience`. Only the auth server's own endpoints (logout),
    /// which accept a token issued for any of the platform's services, turn this off.
    pub check_audience: bool,
    /// This service's externally visible base URL (`PUBLIC_URL`), e.g.
    /// `https://api.example.com/orders-service`: a DPoP proof's `htu` must be it plus the
    /// request path. It is configured rather than read from the `Host` header, which a client
    /// chooses and a proxy may rewrite. `None`: DPoP-bound tokens are not accepted.
    pub public_url: Option<String>,
    /// DPoP proof checks: the `iat` window and the size of the `jti` replay cache.
    pub dpop: ProofSettings,
}

impl VerifierSettings {
    /// Defaults: 30 s leeway, lifetimes up to 24 h, 8 KiB tokens, 10,000 cached tokens.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: Duration::from_secs(30),
            max_token_lifetime: Duration::from_secs(24 * 3600),
            max_token_bytes: 8 * 1024,
            cache_capacity: 10_000,
            check_audience: true,
            public_url: None,
            dpop: ProofSettings::default(),
        }
    }

    /// Accepts DPoP-bound tokens for requests addressed to `public_url`.
    pub fn with_public_url(mut self, public_url: impl Into<String>) -> Self {
        self.public_url = Some(public_url.into());
        self
    }
}

/// Why a token was refused. [`VerifyError::reason`] is the `reason` label of
/// `token_rejections_total`; every variant but `KeysUnavailable` and `RevocationsUnavailable`
/// is a 401 `invalid_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Longer than the configured cap.
    #[error("token too large")]
    TooLarge,
    /// Not a compact JWS of base64url parts.
    #[error("malformed token")]
    Malformed,
    /// The header is not valid JSON or lacks members we need.
    #[error("invalid token header")]
    BadHeader,
    /// `typ` is not `at+jwt`.
    #[error("wrong token type")]
    WrongType,
    /// The header has a `crit` member.
    #[error("critical header extension not understood")]
    CriticalHeader,
    /// No key with this `kid` is published.
    #[error("unknown key id")]
    UnknownKid,
    /// The header's `alg` is not the algorithm of the key it names.
    #[error("algorithm does not match the key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// The claims are not valid JSON of the expected types, or a required claim is missing.
    #[error("invalid claims")]
    BadClaims,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// This service is not in `aud`.
    #[error("wrong audience")]
    WrongAudience,
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `exp - iat` is longer than the configured maximum lifetime.
    #[error("token lifetime too long")]
    LifetimeTooLong,
    /// A DPoP-bound token (`cnf.jkt`) presented as a bearer token (RFC 9449 §7.2).
    #[error("token is bound to a DPoP key and must be sent with the DPoP scheme")]
    BoundToKey,
    /// A token without `cnf.jkt` presented with the DPoP scheme.
    #[error("token is not bound to a DPoP key")]
    NotBound,
    /// The token, its session or its subject was revoked.
    #[error("token revoked")]
    Revoked,
    /// No usable key set (none yet, or older than the maximum age): a 503, not a 401.
    #[error("verification keys unavailable")]
    KeysUnavailable,
    /// The revocation list is older than the fail-closed bound (or there has been none for
    /// that long): a 503, not a 401, since revoked tokens could no longer be told apart.
    #[error("revocation list unavailable")]
    RevocationsUnavailable,
}

impl VerifyError {
    /// A short label for metrics and logs.
    pub fn reason(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::BadHeader => "bad_header",
            Self::WrongType => "wrong_type",
            Self::CriticalHeader => "crit",
            Self::UnknownKid => "unknown_kid",
            Self::AlgorithmMismatch => "alg_mismatch",
            Self::BadSignature => "bad_signature",
            Self::BadClaims => "bad_claims",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::BoundToKey => "bound_to_key",
            Self::NotBound => "not_bound",
            Self::Revoked => "revoked",
            Self::KeysUnavailable => "keys_unavailable",
            Self::RevocationsUnavailable => "revocations_unavailable",
        }
    }
}

#[derive(Clone)]
struct CachedToken {
    claims: Arc<AccessClaims>,
    /// Key-set and revocation generations at verification time; a change invalidates the entry.
    generation: (u64, u64),
}

fn count(result: Result<Arc<AccessClaims>, VerifyError>) -> Result<Arc<AccessClaims>, VerifyError> {
    if let Err(error) = &result {
        metrics::counter!("token_rejections_total", "reason" => error.reason()).increment(1);
    }
    result
}

/// Verifies access tokens. Cheap to clone; clones share keys, revocations and the cache.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Verifier").field("settings", &self.inner.settings).finish_non_exhaustive()
    }
}

struct Inner {
    settings: VerifierSettings,
    keys: KeyCache,
    revocations: Revocations,
    verified: moka::sync::Cache<Arc<str>, CachedToken>,
    proofs: ProofVerifier,
}

/// Why a request with `Authorization: DPoP` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DpopRejection {
    /// The access token: `invalid_token` (or a 503 for missing keys or revocations).
    #[error(transparent)]
    Token(VerifyError),
    /// The proof: `invalid_dpop_proof` (or a 503 for a full replay cache).
    #[error(transparent)]
    Proof(ProofError),
    /// This verifier has no public URL to check `htu` against: it takes bearer tokens only.
    #[error("DPoP is not configured")]
    NotConfigured,
}

impl Verifier {
    /// Builds a verifier over a key cache and a revocation list. Token dates (`exp`, `nbf`,
    /// `iat`) are read against the key cache's clock ([`KeyCache::with_clock`]), so one clock
    /// decides both whether a token has expired and whether the keys are too old.
    pub fn new(settings: VerifierSettings, keys: KeyCache, revocations: Revocations) -> Self {
        revocations.keep_entries_past_exp(settings.leeway);
        let verified = moka::sync::Cache::builder()
            .max_capacity(settings.cache_capacity)
            // Entries are also checked against `exp` on every hit; this only bounds how long a
            // dead entry can occupy space.
            .time_to_live(Duration::from_secs(3600))
            .build();
        let proofs = ProofVerifier::new(settings.dpop.clone(), keys.clock().clone());
        Self { inner: Arc::new(Inner { settings, keys, revocations, verified, proofs }) }
    }

    /// The settings in force.
    pub fn settings(&self) -> &VerifierSettings {
        &self.inner.settings
    }

    /// The key cache.
    pub fn keys(&self) -> &KeyCache {
        &self.inner.keys
    }

    /// The revocation list.
    pub fn revocations(&self) -> &Revocations {
        &self.inner.revocations
    }

    /// Key readiness, for `/readyz`. Also brings the `jwks_age_seconds` and
    /// `revocation_list_age_seconds` gauges up to date (no I/O), so a metrics scrape that
    /// calls it renders both.
    pub fn status(&self) -> KeyStatus {
        self.inner.revocations.status();
        self.inner.keys.status()
    }

    /// Revocation-list readiness, for `/readyz`.
    pub fn revocation_status(&self) -> RevocationStatus {
        self.inner.revocations.status()
    }

    /// Starts the background key refresh and revocation polling. The tasks run until the
    /// runtime stops.
    pub fn start_background_refresh(&self) {
        let verifier = self.clone();
        tokio::spawn(async move {
            // The revocation list is signed with the issuer's keys: poll it once keys had their
            // first chance to arrive, so the first poll can verify it.
            let keys = verifier.keys().spawn_refresh();
            let mut waited = Duration::ZERO;
            while verifier.keys().age().is_none() && waited < Duration::from_secs(5) && !keys.is_finished() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                waited += Duration::from_millis(50);
            }
            verifier.revocations().spawn_poll();
        });
    }

    /// The DPoP proof verifier, with this service's replay cache.
    pub fn proofs(&self) -> &ProofVerifier {
        &self.inner.proofs
    }

    /// Verifies a bearer `token` and returns its claims. A token bound to a DPoP key is
    /// refused ([`VerifyError::BoundToKey`]). Rejections are counted by reason.
    pub async fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, VerifyError> {
        let result = match self.verify_uncounted(token).await {
            Ok(claims) if claims.cnf.is_some() => Err(VerifyError::BoundToKey),
            other => other,
        };
        count(result)
    }

    /// Verifies `token` whether or not it is bound to a DPoP key: for the auth server's own
    /// endpoints that look at a token without being called with it (introspection, revocation,
    /// token exchange's subject token).
    pub async fn verify_ignoring_binding(&self, token: &str) -> Result<Arc<AccessClaims>, VerifyError> {
        count(self.verify_uncounted(token).await)
    }

    /// Verifies a DPoP-bound `token` sent as `Authorization: DPoP` with `proof`, for a request
    /// of `method` to `path` (and query) on this service: the token as [`verify`](Self::verify)
    /// does (through the same cache), then the proof against `cnf.jkt`, the request, the hash
    /// of the token and the replay cache.
    pub async fn verify_dpop(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        path: &str,
    ) -> Result<Arc<AccessClaims>, DpopRejection> {
        let public_url = self.inner.settings.public_url.as_deref().ok_or(DpopRejection::NotConfigured)?;
        let claims = match self.verify_uncounted(token).await {
            Ok(claims) if claims.cnf.is_none() => Err(VerifyError::NotBound),
            other => other,
        };
        let claims = count(claims).map_err(DpopRejection::Token)?;
        let uri = format!("{}{path}", public_url.trim_end_matches('/'));
        let request = ProofRequest {
            method,
            uri: &uri,
            access_token: Some(token),
            expected_thumbprint: claims.bound_key(),
        };
        self.inner.proofs.verify(proof, &request).map_err(DpopRejection::Proof)?;
        Ok(claims)
    }

    async fn verify_uncounted(&self, token: &str) -> Result<Arc<AccessClaims>, VerifyError> {
        if token.len() > self.inner.settings.max_token_bytes {
            return Err(VerifyError::TooLarge);
        }
        let generation = (self.inner.keys.generation(), self.inner.revocations.generation());
        if let Some(hit) = self.inner.verified.get(token)
            && hit.generation == generation
        {
            self.check_times(&hit.claims)?;
            self.check_keys_usable()?;
            return Ok(hit.claims);
        }
        let claims = Arc::new(self.verify_fully(token).await?);
        self.inner.verified.insert(Arc::from(token), CachedToken { claims: claims.clone(), generation });
        Ok(claims)
    }

    /// A cached token is only as good as the keys: past the maximum age, fail closed as a miss
    /// would.
    fn check_keys_usable(&self) -> Result<(), VerifyError> {
        match self.inner.keys.age() {
            Some(age) if age <= self.inner.keys.settings().max_age => Ok(()),
            _ => Err(VerifyError::KeysUnavailable),
        }
    }

    async fn verify_fully(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let parts = jws::split_compact(token).map_err(|error| match error {
            SplitError::Malformed => VerifyError::Malformed,
            SplitError::BadHeader => VerifyError::BadHeader,
        })?;
        let header = &parts.header;
        if header.crit.is_some() {
            return Err(VerifyError::CriticalHeader);
        }
        let typ_ok = header.typ.as_deref().is_some_and(|typ| {
            typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(VerifyError::WrongType);
        }
        let kid = header.kid.as_deref().ok_or(VerifyError::BadHeader)?;
        let key = self.inner.keys.key_for(kid).await.map_err(|error| match error {
            KeyLookupError::UnknownKid => VerifyError::UnknownKid,
            KeyLookupError::NoKeys | KeyLookupError::TooStale => VerifyError::KeysUnavailable,
        })?;
        // The key decides the algorithm; the header may only agree with it (RFC 8725 §3.1).
        if key.algorithm().as_str() != header.alg {
            return Err(VerifyError::AlgorithmMismatch);
        }
        if !key.verify(parts.signing_input, &parts.signature) {
            return Err(VerifyError::BadSignature);
        }
        let claims: AccessClaims =
            serde_json::from_slice(&parts.payload).map_err(|_| VerifyError::BadClaims)?;
        if [&claims.sub, &claims.jti, &claims.client_id].iter().any(|value| value.is_empty()) {
            return Err(VerifyError::BadClaims);
        }
        if claims.iss != self.inner.settings.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if self.inner.settings.check_audience
            && !claims.aud.iter().any(|audience| *audience == self.inner.settings.audience)
        {
            return Err(VerifyError::WrongAudience);
        }
        let max_lifetime =
            i64::try_from(self.inner.settings.max_token_lifetime.as_secs()).unwrap_or(i64::MAX);
        if claims.exp.saturating_sub(claims.iat) > max_lifetime {
            return Err(VerifyError::LifetimeTooLong);
        }
        self.check_times(&claims)?;
        Ok(claims)
    }

    /// Expiry, not-before and revocation: the checks that can change for a cached token.
    /// A revocation list past its fail-closed bound refuses every token, as keys past their
    /// maximum age do.
    fn check_times(&self, claims: &AccessClaims) -> Result<(), VerifyError> {
        let now = self.inner.keys.clock().now();
        let leeway = i64::try_from(self.inner.settings.leeway.as_secs()).unwrap_or(0);
        if claims.exp.saturating_add(leeway) <= now {
            return Err(VerifyError::Expired);
        }
        let not_before = claims.nbf.unwrap_or(claims.iat).max(claims.iat);
        if not_before.saturating_sub(leeway) > now {
            return Err(VerifyError::NotYetValid);
        }
        if self.inner.revocations.too_old() {
            return Err(VerifyError::RevocationsUnavailable);
        }
        if self.inner.revocations.is_revoked(claims) {
            return Err(VerifyError::Revoked);
        }
        Ok(())
    }
}
