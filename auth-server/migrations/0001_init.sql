-- auth-server schema. Portable between SQLite and PostgreSQL (sqlx Any driver): TEXT ids,
-- BIGINT Unix seconds, no booleans (a nullable timestamp says "when", NULL says "never").

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    -- Argon2id PHC string: algorithm, parameters, salt and hash together.
    password_hash TEXT NOT NULL,
    -- Space-separated role names.
    roles         TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);

-- Signing keys, shared by every replica. The private key is encrypted at rest when a key
-- encryption key is configured ("v1:" prefix), else stored as "plain:" base64 PKCS#8.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    algorithm    TEXT NOT NULL,
    private_key  TEXT NOT NULL,
    public_jwk   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    -- Published from creation; signs only from activates_at (pre-publication).
    activates_at BIGINT NOT NULL,
    -- Stops being published after this (every token it signed has expired by then).
    unpublish_at BIGINT
);

CREATE TABLE clients (
    client_id   TEXT PRIMARY KEY,
    -- SHA-256 of the 256-bit random secret (see clients.rs for why not Argon2).
    secret_hash TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    audiences   TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- A login session: one sid, one family of refresh tokens.
CREATE TABLE sessions (
    sid         TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    scope       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    -- Absolute end of the session: no refresh after this.
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    token_hash      TEXT PRIMARY KEY,
    sid             TEXT NOT NULL,
    scope           TEXT NOT NULL,
    issued_at       BIGINT NOT NULL,
    -- Idle expiry: unused for this long, the token dies.
    idle_expires_at BIGINT NOT NULL,
    -- Set exactly once, atomically, by the refresh that consumes it; a second use is reuse.
    used_at         BIGINT
);
CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid);

-- What the signed revocation list publishes: kind is 'session', 'token' or 'subject'.
CREATE TABLE revocations (
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    -- For 'subject': tokens issued before this are revoked.
    not_before  BIGINT NOT NULL,
    -- Dropped from the list after this: every token it covers has expired.
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);

-- Failed logins per account and per client address, for throttling.
CREATE TABLE login_failures (
    bucket        TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    first_failed  BIGINT NOT NULL,
    locked_until  BIGINT NOT NULL
);
