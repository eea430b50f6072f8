-- DPoP (RFC 9449). `dpop_required` (0 or 1, like the other flags): the client registered with
-- `--dpop` must send a proof with every token request. Existing clients keep working as they
-- did: 0.
ALTER TABLE clients ADD COLUMN dpop_required INTEGER NOT NULL DEFAULT 0;

-- The thumbprint of the DPoP key a public client's refresh tokens are bound to (§5): every
-- refresh of the session must come with a proof signed by that key. NULL: not bound.
ALTER TABLE sessions ADD COLUMN dpop_jkt TEXT;
