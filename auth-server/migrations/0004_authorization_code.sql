-- OpenID Connect provider: clients that log users in through the browser, browser sessions
-- (single sign-on), consents and authorization codes. Portable between SQLite and PostgreSQL
-- like the rest: TEXT lists separated by spaces, BIGINT Unix seconds, 0/1 for flags.

-- Redirect URIs never contain spaces (they are URIs), so a space-separated list is safe.
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
-- A public client has no secret (secret_hash is then '').
ALTER TABLE clients ADD COLUMN public_client BIGINT NOT NULL DEFAULT 0;
-- A first-party client is not asked for consent.
ALTER TABLE clients ADD COLUMN first_party BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'EdDSA';

-- A browser session: what the SSO cookie names (by the SHA-256 of its value). Every replica
-- reads it, so single sign-on holds across replicas.
CREATE TABLE browser_sessions (
    id_hash    TEXT PRIMARY KEY,
    -- The `sid` of the id_tokens issued through it (not secret, unlike the cookie value).
    sid        TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at   BIGINT
);
CREATE INDEX browser_sessions_user ON browser_sessions (user_id);

-- Each authorization starts its own refresh family (`sessions` row); this links it to the
-- browser session it came through, so logout ends them all.
ALTER TABLE sessions ADD COLUMN browser_sid TEXT;
CREATE INDEX sessions_browser_sid ON sessions (browser_sid);

-- Granted consents: per user and client, the union of the scopes granted.
CREATE TABLE consents (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Authorization codes, stored as the SHA-256 of the code. `consumed_at` is set by the first
-- redemption attempt, whatever its outcome; `issued_sid` is the refresh family issued from
-- it, ended if the code comes back (RFC 6749 §4.1.2).
CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    nonce          TEXT,
    browser_sid    TEXT NOT NULL,
    auth_time      BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    consumed_at    BIGINT,
    issued_sid     TEXT
);
