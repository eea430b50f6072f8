-- "Login with …": upstream OpenID providers, the accounts linked to them, and the logins that
-- are under way at an upstream. Portable like the rest (TEXT, BIGINT Unix seconds).

-- One upstream OpenID provider (`auth-server providers add`). The client secret is sealed like
-- a signing key ("v1:" when KEY_ENCRYPTION_KEY is set, else "plain:"); '' is a public client.
CREATE TABLE identity_providers (
    name          TEXT PRIMARY KEY,
    issuer        TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    scope         TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- The provider a federated account logs in through; NULL for a local account with a password.
ALTER TABLE users ADD COLUMN idp TEXT;

-- A local account is linked to an upstream identity by (provider, issuer, upstream sub) only:
-- never by email or username, which an upstream may let anybody choose. A `sub` is unique only
-- within its issuer (OpenID Connect Core §2), so a provider name registered again for another
-- issuer never reaches the accounts of the first.
CREATE TABLE federated_identities (
    provider   TEXT NOT NULL,
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, issuer, subject)
);

-- A login sent to an upstream and not yet back: keyed by the SHA-256 of its `state`, bound to
-- the browser that started it (SHA-256 of its CSRF cookie), consumed once by the callback.
CREATE TABLE federation_logins (
    state_hash    TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    browser_hash  TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    -- The pending authorization request of our own client, form-encoded.
    request       TEXT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
);
CREATE INDEX federation_logins_expiry ON federation_logins (expires_at);
