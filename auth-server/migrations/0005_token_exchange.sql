-- Token exchange (RFC 8693): the audiences a client may obtain for a user by exchanging the
-- user's access token (`clients create --exchange-audience`), space-separated like the other
-- lists. Empty, the default, means the client may not exchange at all: existing clients keep
-- exactly the powers they had.
ALTER TABLE clients ADD COLUMN exchange_audiences TEXT NOT NULL DEFAULT '';
