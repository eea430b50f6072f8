-- Addresses a user has logged in from successfully: the account-wide throttle bucket does not
-- apply to them (see throttle.rs). They lived in login_failures as 'trusted:' buckets, a table
-- that counts failures; a table of their own says what they are and can be read by key.

CREATE TABLE trusted_addresses (
    username      TEXT NOT NULL,
    address       TEXT NOT NULL,
    trusted_until BIGINT NOT NULL,
    PRIMARY KEY (username, address)
);

-- Carry the existing trusts over. A bucket is 'trusted:<username>|<address>'. SQLite and
-- PostgreSQL share no function that finds a character, so the address is cut off from the right:
-- it consists of hex digits, '.' and ':' only, and rtrim with those stops at the '|' (a username
-- may hold digits and a-f, but never '|').
INSERT INTO trusted_addresses (username, address, trusted_until)
SELECT substr(rest, 1, length(kept) - 1), substr(rest, length(kept) + 1), locked_until
FROM (
    SELECT substr(bucket, 9) AS rest,
           rtrim(substr(bucket, 9), '0123456789abcdefABCDEF.:') AS kept,
           locked_until
    FROM login_failures
    WHERE bucket LIKE 'trusted:%'
) AS old
WHERE length(kept) > 1;

DELETE FROM login_failures WHERE bucket LIKE 'trusted:%';

-- The threshold of each bucket, so that one statement can count an attempt in all of a login's
-- buckets (each with its own threshold) through ON CONFLICT's `excluded` row.
ALTER TABLE login_failures ADD COLUMN threshold BIGINT NOT NULL DEFAULT 0;

-- Fixed-window counters of other limits (registrations per address and hour).
CREATE TABLE rate_limits (
    bucket       TEXT PRIMARY KEY,
    count        BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);

-- 1 for a client that may introspect every token (`clients create --introspect`); others only
-- learn about tokens issued to them or meant for them (an `aud` naming them).
ALTER TABLE clients ADD COLUMN introspect_any BIGINT NOT NULL DEFAULT 0;
