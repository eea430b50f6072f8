//! OAuth clients (service-to-service credentials): registration and authentication.
//!
//! A client secret is 256 bits from the OS random generator and is stored as its SHA-256.
//! A fast hash is right here and wrong for passwords: Argon2's slowness exists to make guessing
//! a low-entropy human password expensive, but nobody can enumerate 2^256 random secrets, so a
//! preimage-resistant hash already protects a leaked table completely, and verifying costs
//! microseconds instead of 19 MiB and tens of milliseconds per service token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use shared_auth::jws::Algorithm;
use shared_auth::time::unix_now_i64;
use sqlx::AnyPool;
use subtle::ConstantTimeEq as _;

pub use crate::store::clients::Client;
use crate::store::clients::{self as store, Inserted, NewClient};
use crate::tokens::hash_token;

/// The one moment a secret exists in plain form: right after creation.
#[derive(Serialize)]
pub struct CreatedClient {
    /// Client id.
    pub client_id: String,
    /// The secret; shown once, stored only hashed. Absent for a public client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for CreatedClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("CreatedClient").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// A fresh 256-bit secret.
pub fn generate_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
}

fn valid_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"._-:".contains(&byte))
}

/// What a client is registered with.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Scopes it may request.
    pub scopes: Vec<String>,
    /// Audiences its tokens are for (at least one, unless it has redirect URIs).
    pub audiences: Vec<String>,
    /// May introspect every token.
    pub introspect_any: bool,
    /// Exact redirect URIs of the authorization code grant.
    pub redirect_uris: Vec<String>,
    /// Where logout may redirect.
    pub post_logout_redirect_uris: Vec<String>,
    /// No secret: `client_id` alone at the token endpoint.
    pub public: bool,
    /// Not asked for consent.
    pub first_party: bool,
    /// `EdDSA` or `RS256`.
    pub id_token_alg: Algorithm,
    /// Audiences it may obtain for a user by token exchange (RFC 8693); empty: none.
    pub exchange_audiences: Vec<String>,
    /// Its tokens must be DPoP-bound (RFC 9449): every token request carries a proof.
    pub dpop_required: bool,
}

impl Default for Registration {
    fn default() -> Self {
        Self {
            scopes: Vec::new(),
            audiences: Vec::new(),
            introspect_any: false,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            public: false,
            first_party: false,
            id_token_alg: Algorithm::EdDSA,
            exchange_audiences: Vec::new(),
            dpop_required: false,
        }
    }
}

/// Checks a redirect URI as DESIGN.md's "Clients" says: absolute, `https` (or `http` on a
/// loopback host: `127.0.0.1`, `[::1]`, `localhost` or a name under `.localhost`, which RFC 6761
/// §6.3 reserves for loopback and browsers resolve so), without a fragment, and without spaces
/// (the stored list is space-separated; a valid URI has none anyway).
pub fn validate_redirect_uri(uri: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(uri).map_err(|error| anyhow::anyhow!("redirect URI {uri:?}: {error}"))?;
    anyhow::ensure!(!uri.contains('#') && parsed.fragment().is_none(), "redirect URI {uri:?} has a fragment");
    anyhow::ensure!(!uri.chars().any(char::is_whitespace), "redirect URI {uri:?} contains whitespace");
    anyhow::ensure!(
        parsed.username().is_empty() && parsed.password().is_none(),
        "redirect URI {uri:?} has user info"
    );
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(&parsed) => Ok(()),
        "http" => anyhow::bail!("redirect URI {uri:?} must be https (plain http only for loopback hosts)"),
        scheme => anyhow::bail!("redirect URI {uri:?}: scheme {scheme} is not allowed"),
    }
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host_str() {
        Some("127.0.0.1" | "[::1]" | "localhost") => true,
        // The compose demo's issuers (`auth.localhost`, `acme.localhost`) are such names.
        Some(host) => host.strip_suffix(".localhost").is_some_and(|name| !name.is_empty()),
        None => false,
    }
}

impl Client {
    /// Whether `uri` is one of its redirect URIs: the exact string, or for a public client
    /// registered with a port-less loopback IP URI, the same URI with any port (RFC 8252 §7.3).
    pub fn allows_redirect(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|registered| registered == uri)
            || (self.public && self.redirect_uris.iter().any(|registered| loopback_any_port(registered, uri)))
    }

    /// Whether `uri` is one of its post-logout redirect URIs (exact string).
    pub fn allows_post_logout_redirect(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|registered| registered == uri)
    }

    /// Whether it may use the authorization code grant.
    pub fn uses_authorization_code(&self) -> bool {
        !self.redirect_uris.is_empty()
    }

    /// The algorithm of its id_tokens.
    pub fn id_token_algorithm(&self) -> Algorithm {
        Algorithm::parse(&self.id_token_alg).unwrap_or(Algorithm::EdDSA)
    }

    /// Whether it may use token exchange at all: deny by default, so only a client registered
    /// with `--exchange-audience` can act for users.
    pub fn may_exchange(&self) -> bool {
        !self.exchange_audiences.is_empty()
    }

    /// Whether it may obtain a token for `audience` by token exchange.
    pub fn may_exchange_for(&self, audience: &str) -> bool {
        self.exchange_audiences.iter().any(|allowed| allowed == audience)
    }
}

/// RFC 8252 §7.3: `http://127.0.0.1/cb` or `http://[::1]/cb` registered without a port matches
/// the same URI with any port. Nothing else about the URI may differ.
fn loopback_any_port(registered: &str, presented: &str) -> bool {
    let (Ok(registered), Ok(mut presented)) = (url::Url::parse(registered), url::Url::parse(presented))
    else {
        return false;
    };
    let loopback_ip = matches!(registered.host_str(), Some("127.0.0.1" | "[::1]"));
    if registered.scheme() != "http"
        || !loopback_ip
        || registered.port().is_some()
        || presented.port().is_none()
    {
        return false;
    }
    if presented.set_port(None).is_err() {
        return false;
    }
    registered.as_str() == presented.as_str()
}

/// Registers a client with the given secret, scopes and audiences (see [`register`]).
pub async fn create(
    pool: &AnyPool,
    client_id: &str,
    secret: &SecretString,
    scopes: &[String],
    audiences: &[String],
) -> anyhow::Result<()> {
    let registration =
        Registration { scopes: scopes.to_vec(), audiences: audiences.to_vec(), ..Registration::default() };
    register(pool, client_id, secret, &registration).await
}

/// Registers a client, created now (by the system clock: nothing expires by a client's
/// creation date). Fails if the id exists.
pub async fn register(
    pool: &AnyPool,
    client_id: &str,
    secret: &SecretString,
    registration: &Registration,
) -> anyhow::Result<()> {
    anyhow::ensure!(valid_id(client_id), "client id must be 1-128 characters of A-Z a-z 0-9 . _ - :");
    anyhow::ensure!(
        !registration.audiences.is_empty() || !registration.redirect_uris.is_empty(),
        "a client needs at least one audience (or a redirect URI, whose tokens default to TOKEN_AUDIENCES)"
    );
    for value in
        registration.scopes.iter().chain(&registration.audiences).chain(&registration.exchange_audiences)
    {
        anyhow::ensure!(valid_id(value), "invalid scope or audience {value:?}");
    }
    for uri in registration.redirect_uris.iter().chain(&registration.post_logout_redirect_uris) {
        validate_redirect_uri(uri)?;
    }
    anyhow::ensure!(
        matches!(registration.id_token_alg, Algorithm::EdDSA | Algorithm::RS256),
        "--id-token-alg must be EdDSA or RS256"
    );
    anyhow::ensure!(
        !registration.public || !registration.redirect_uris.is_empty(),
        "a public client needs a redirect URI: it has no secret for the client credentials grant"
    );
    anyhow::ensure!(
        !registration.public || registration.exchange_audiences.is_empty(),
        "a public client cannot use --exchange-audience: token exchange requires client authentication"
    );
    // A public client has no secret: '' is never the SHA-256 of anything presented.
    let secret_hash = if registration.public { String::new() } else { hash_token(secret.expose_secret()) };
    let client = NewClient {
        client_id,
        secret_hash: &secret_hash,
        scopes: &registration.scopes,
        audiences: &registration.audiences,
        introspect_any: registration.introspect_any,
        redirect_uris: &registration.redirect_uris,
        post_logout_redirect_uris: &registration.post_logout_redirect_uris,
        public: registration.public,
        first_party: registration.first_party,
        id_token_alg: registration.id_token_alg.as_str(),
        exchange_audiences: &registration.exchange_audiences,
        dpop_required: registration.dpop_required,
    };
    match store::insert(pool, &client, unix_now_i64()).await? {
        Inserted::Created => Ok(()),
        Inserted::Exists => anyhow::bail!("client {client_id:?} already exists"),
    }
}

/// Whether `caller` may learn that a token is active (DESIGN.md's rule, RFC 7662 §4): the
/// token's own client, a client its `aud` names (a resource server checking what it was sent),
/// or one registered with `--introspect`.
pub fn may_introspect(caller: &Client, token_client: &str, token_audiences: &[String]) -> bool {
    caller.introspect_any || caller.client_id == token_client || token_audiences.contains(&caller.client_id)
}

/// A registered public client by id: how public clients identify themselves at the token
/// endpoint (`token_endpoint_auth_method=none`). `None` for a confidential or unknown client.
pub async fn find_public(pool: &AnyPool, client_id: &str) -> anyhow::Result<Option<Client>> {
    Ok(store::find(pool, client_id).await?.map(|stored| stored.client).filter(|client| client.public))
}

/// Checks a client's credentials in constant time. `None` for an unknown id or wrong secret.
#[tracing::instrument(skip(pool, secret), err(level = "debug"))]
pub async fn authenticate(pool: &AnyPool, client_id: &str, secret: &str) -> anyhow::Result<Option<Client>> {
    let stored = store::find(pool, client_id).await?;
    // Hash even for unknown ids, so both paths cost the same.
    let presented = hash_token(secret);
    let Some(stored) = stored else {
        let _ = presented.as_bytes().ct_eq(hash_token("").as_bytes());
        return Ok(None);
    };
    // A public client has no secret, and presenting one is not authentication.
    if stored.client.public {
        return Ok(None);
    }
    Ok(bool::from(presented.as_bytes().ct_eq(stored.secret_hash.as_bytes())).then_some(stored.client))
}
