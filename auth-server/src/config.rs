//! Command line and environment of `auth-server` (flags with environment fallbacks).

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret as _, SecretSlice, SecretString};
use service_kit::db::{StorageArgs, parse_secret};
use service_kit::{Seconds, ServerArgs};
use shared_auth::jws::Algorithm;

use crate::keyring::KeyRingSettings;
use crate::password::HashSettings;

/// The authorization server: accounts, login, signed access tokens, refresh tokens, keys.
#[derive(Debug, Clone, Parser)]
#[command(name = "auth-server", version, about)]
pub struct Cli {
    /// What to do; the default is `serve`.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings shared by every subcommand.
    #[command(flatten)]
    pub config: Config,
}

/// Server settings. Every flag has an environment variable of the same name in capitals.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080", global = true)]
    pub listen_addr: SocketAddr,
    /// Database location.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Connection limits, timeouts and the management listener (`MANAGEMENT_ADDR`).
    #[command(flatten)]
    pub server: ServerArgs,
    /// Public base URL of this server: the `iss` of every token and the base of discovery.
    /// Not a global flag: `providers add --issuer` names the upstream's (set ours with `ISSUER`
    /// or before the subcommand).
    #[arg(long, env = "ISSUER", default_value = "http://127.0.0.1:8080")]
    pub issuer: String,
    /// Access-token lifetime in seconds.
    #[arg(long, env = "ACCESS_TOKEN_TTL_SECS", default_value = "900", global = true)]
    pub access_token_ttl_secs: Seconds,
    /// Absolute refresh-token (session) lifetime in seconds.
    #[arg(long, env = "REFRESH_TOKEN_TTL_SECS", default_value = "2592000", global = true)]
    pub refresh_token_ttl_secs: Seconds,
    /// A refresh token unused for this many seconds dies.
    #[arg(long, env = "REFRESH_IDLE_TTL_SECS", default_value = "604800", global = true)]
    pub refresh_idle_ttl_secs: Seconds,
    /// Audiences of user access tokens (comma-separated).
    #[arg(
        long,
        env = "TOKEN_AUDIENCES",
        default_value = "users-service,orders-service",
        value_delimiter = ',',
        global = true
    )]
    pub token_audiences: Vec<String>,
    /// Scope granted to users at login (space-separated).
    #[arg(
        long,
        env = "USER_SCOPE",
        default_value = "profile:read profile:write orders:read orders:write",
        global = true
    )]
    pub user_scope: String,
    /// Algorithm of newly generated signing keys: EdDSA, ES256 or RS256.
    #[arg(long, env = "SIGNING_ALG", default_value = "EdDSA", global = true)]
    pub signing_alg: Algorithm,
    /// Seconds between publishing a rotated key and signing with it; at least the services'
    /// maximum key-refresh interval (JWKS_REFRESH_MAX_SECS, default 300).
    #[arg(long, env = "KEY_PREPUBLISH_SECS", default_value = "600", global = true)]
    pub key_prepublish_secs: Seconds,
    /// Base64 of 32 random bytes; encrypts private signing keys at rest. Strongly recommended.
    #[arg(long, env = "KEY_ENCRYPTION_KEY", value_parser = parse_secret, hide_env_values = true, global = true)]
    pub key_encryption_key: Option<SecretString>,
    /// `Cache-Control: max-age` of the key set and discovery documents, in seconds.
    #[arg(long, env = "JWKS_MAX_AGE_SECS", default_value = "300", global = true)]
    pub jwks_max_age_secs: Seconds,
    /// Argon2id memory cost in KiB.
    #[arg(long, env = "ARGON2_MEMORY_KIB", default_value_t = 19_456, global = true)]
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    #[arg(long, env = "ARGON2_ITERATIONS", default_value_t = 2, global = true)]
    pub argon2_iterations: u32,
    /// Argon2id parallelism.
    #[arg(long, env = "ARGON2_PARALLELISM", default_value_t = 1, global = true)]
    pub argon2_parallelism: u32,
    /// Password hashes computed at once (default: number of cores).
    #[arg(long, env = "HASH_CONCURRENCY", global = true)]
    pub hash_concurrency: Option<usize>,
    /// Longest wait for a hashing slot before answering 503 (milliseconds).
    #[arg(long, env = "HASH_QUEUE_TIMEOUT_MS", default_value_t = 2_000, global = true,
        value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub hash_queue_timeout_ms: u64,
    /// Failed logins per account (and per client address) before throttling starts.
    #[arg(long, env = "LOGIN_FAILURE_THRESHOLD", default_value_t = 5, global = true)]
    pub login_failure_threshold: u32,
    /// Registrations (`POST /v1/users`) per client address and hour, counted in the database
    /// so every replica shares the count; beyond it, 429 with `Retry-After`. 0 turns it off.
    #[arg(long, env = "REGISTRATION_LIMIT_PER_HOUR", default_value_t = 20, global = true)]
    pub registration_limit_per_hour: u32,
    /// "Continue with …" starts (`/federation/NAME/start`) per client address and minute,
    /// counted in the database like registrations; beyond it, a 429 page with `Retry-After`.
    /// Each start stores a pending login, so this bounds what one address can make the server
    /// keep. 0 turns it off.
    #[arg(long, env = "FEDERATION_START_LIMIT_PER_MINUTE", default_value_t = 60, global = true)]
    pub federation_start_limit_per_minute: u32,
    /// Take the client address for login throttling from the last `X-Forwarded-For` entry
    /// (set this only behind a proxy that appends it; otherwise clients could forge it).
    #[arg(long, env = "TRUST_X_FORWARDED_FOR", default_value_t = false, global = true)]
    pub trust_x_forwarded_for: bool,
    /// How often replicas re-read the signing keys from the database (seconds).
    #[arg(long, env = "KEY_RELOAD_SECS", default_value = "10", global = true)]
    pub key_reload_secs: Seconds,
    /// Lifetime of a browser session (single sign-on at the hosted login page), in seconds.
    #[arg(long, env = "SSO_SESSION_TTL_SECS", default_value = "28800", global = true)]
    pub sso_session_ttl_secs: Seconds,
    /// Name of the browser-session cookie. The default is derived from the issuer's host and
    /// port, so two auth servers on one host (browsers share cookies across ports) never clash.
    #[arg(long, env = "SESSION_COOKIE_NAME", global = true)]
    pub session_cookie_name: Option<String>,
    /// Total time one call to an upstream OpenID provider ("Login with …": discovery, key set,
    /// code exchange) may take, in milliseconds; past it the user sees a 504 page.
    #[arg(long, env = "UPSTREAM_TIMEOUT_MS", default_value_t = 3000, global = true)]
    pub upstream_timeout_ms: u64,
}

/// Operator subcommands; they work on the same database and exit.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage user accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage OAuth clients (service-to-service credentials).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage upstream OpenID providers ("Login with …").
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Create the demo accounts and the orders-service client if missing (idempotent).
    DemoSeed {
        /// Secret for the `orders-service` client.
        #[arg(long, env = "DEMO_CLIENT_SECRET", value_parser = parse_secret, hide_env_values = true)]
        client_secret: SecretString,
        /// Also register "Acme ID" at this issuer as the upstream provider `acme` (the compose
        /// demo's second auth server, seeded by `demo-seed-acme`), if missing.
        #[arg(long, env = "DEMO_ACME_ISSUER", requires = "federation_secret")]
        acme_issuer: Option<String>,
        /// Our client secret at Acme ID (`demo-seed-acme` registers the same).
        #[arg(long, env = "DEMO_FEDERATION_SECRET", value_parser = parse_secret, hide_env_values = true)]
        federation_secret: Option<SecretString>,
    },
    /// Seed this server as "Acme ID", the demo's upstream provider: the user `acme-user`
    /// (password `acme-password`) and the client `jwt-platform` of the relying party, created
    /// only if missing (idempotent).
    DemoSeedAcme {
        /// The relying party's issuer; its client redirects to `<URL>/federation/acme/callback`.
        #[arg(long, env = "DEMO_ACME_RELYING_PARTY")]
        relying_party: String,
        /// The relying party's client secret (`demo-seed --acme-issuer` stores the same).
        #[arg(long, env = "DEMO_FEDERATION_SECRET", value_parser = parse_secret, hide_env_values = true)]
        federation_secret: SecretString,
    },
    /// Exit 0 if the server at LISTEN_ADDR answers /healthz (for container health checks).
    Healthcheck,
}

/// `auth-server users ...`
#[derive(Debug, Clone, Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password is read from standard input.
    Create {
        /// Login name.
        username: String,
        /// Roles to grant (repeatable), e.g. `--role admin`.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Disable a user and end all of their sessions.
    Disable {
        /// Login name.
        username: String,
    },
}

/// `auth-server clients ...`
#[derive(Debug, Clone, Subcommand)]
pub enum ClientsCommand {
    /// Register a client; prints its secret once.
    Create {
        /// Client id.
        client_id: String,
        /// Space-separated scopes the client may request.
        #[arg(long, default_value = "")]
        scope: String,
        /// Audience the client's tokens are for (repeatable). Required unless the client has
        /// a redirect URI: its users' tokens then default to TOKEN_AUDIENCES.
        #[arg(long = "audience", required_unless_present = "redirect_uris")]
        audiences: Vec<String>,
        /// May introspect every token (a gateway); without it a client learns only about
        /// tokens issued to it or naming it in `aud`.
        #[arg(long)]
        introspect: bool,
        /// Enables the authorization code grant, redirecting only to this exact URI
        /// (repeatable). `https`, or `http` on a loopback host; no fragment.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A client with no secret (SPA, native app, Swagger UI): it authenticates with
        /// `client_id` alone, and the output has no `client_secret`.
        #[arg(long)]
        public: bool,
        /// Where `/oauth2/logout` may send the browser back (repeatable).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Users are not asked for consent.
        #[arg(long)]
        first_party: bool,
        /// Algorithm of the client's id_tokens: `EdDSA` or `RS256`.
        #[arg(long, default_value = "EdDSA")]
        id_token_alg: Algorithm,
        /// An audience the client may obtain for a user by exchanging the user's access token
        /// (RFC 8693 token exchange; repeatable). Without it, token exchange is refused.
        #[arg(long = "exchange-audience")]
        exchange_audiences: Vec<String>,
        /// The client's tokens must be DPoP-bound (RFC 9449): a token request without a valid
        /// `DPoP` proof is refused with `invalid_dpop_proof`.
        #[arg(long)]
        dpop: bool,
    },
    /// List clients (never their secrets).
    List,
    /// Delete a client, revoking its live tokens and ending its sessions.
    Delete {
        /// Client id.
        client_id: String,
    },
}

/// `auth-server providers ...`
#[derive(Debug, Clone, Subcommand)]
pub enum ProvidersCommand {
    /// Register an upstream OpenID provider; its client secret is read from standard input
    /// (empty: a public client with PKCE). Prints the redirect URI to register there.
    Add {
        /// Our name for it (`a-z 0-9 -`): the callback path, account names `NAME:...` and the
        /// `idp` claim.
        name: String,
        /// Its issuer, e.g. `https://accounts.google.com`.
        #[arg(long)]
        issuer: String,
        /// Our client id at the provider.
        #[arg(long)]
        client_id: String,
        /// What the login page's button says: "Continue with DISPLAY NAME".
        #[arg(long)]
        display_name: String,
        /// Scopes to ask for, space-separated (`openid` is always asked for).
        #[arg(long, default_value = "openid profile")]
        scope: String,
    },
    /// List providers (never their secrets).
    List,
    /// Delete a provider; its accounts stay, and can no longer log in.
    Delete {
        /// The provider's name.
        name: String,
    },
}

/// `auth-server keys ...`
#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// List signing keys and their state.
    List,
    /// Publish a new key; it signs after the pre-publication delay.
    Rotate,
}

impl Config {
    /// Hashing settings from the flags.
    pub fn hash_settings(&self) -> HashSettings {
        let defaults = HashSettings::default();
        HashSettings {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
            concurrency: self.hash_concurrency.unwrap_or(defaults.concurrency),
            queue_timeout: Duration::from_millis(self.hash_queue_timeout_ms),
        }
    }

    /// Key-ring settings from the flags; fails if the encryption key is not 32 base64 bytes.
    pub fn key_ring_settings(&self) -> anyhow::Result<KeyRingSettings> {
        let encryption_key = match &self.key_encryption_key {
            None => None,
            Some(encoded) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded.expose_secret().trim())
                    .map_err(|_| anyhow::anyhow!("KEY_ENCRYPTION_KEY is not valid base64"))?;
                anyhow::ensure!(bytes.len() == 32, "KEY_ENCRYPTION_KEY must decode to 32 bytes");
                Some(SecretSlice::from(bytes))
            }
        };
        Ok(KeyRingSettings {
            algorithm: self.signing_alg,
            prepublish: self.key_prepublish_secs,
            access_token_ttl: self.access_token_ttl_secs,
            encryption_key,
        })
    }

    /// The name of the browser-session cookie: `SESSION_COOKIE_NAME`, or `authsrv_<host>_<port>`
    /// of the issuer (non-alphanumerics as `_`), with the `__Host-` prefix under https.
    pub fn session_cookie_name(&self) -> String {
        if let Some(name) = &self.session_cookie_name {
            return name.clone();
        }
        let issuer = self.issuer();
        let (secure, host) = match url::Url::parse(&issuer) {
            Ok(url) => (
                url.scheme() == "https",
                format!("{}_{}", url.host_str().unwrap_or(""), url.port_or_known_default().unwrap_or(0)),
            ),
            Err(_) => (false, issuer),
        };
        let host: String = host.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        format!("{}authsrv_{host}", if secure { "__Host-" } else { "" })
    }

    /// Whether the issuer is https (cookies are then `Secure`).
    pub fn issuer_is_https(&self) -> bool {
        self.issuer().starts_with("https://")
    }

    /// The issuer without a trailing slash, as it appears in `iss`.
    pub fn issuer(&self) -> String {
        self.issuer.trim_end_matches('/').to_owned()
    }
}
