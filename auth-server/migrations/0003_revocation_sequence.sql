-- The sequence number of the signed revocation list (`seq`), which services use to refuse a
-- replayed older list. It must only grow, across replicas and restarts, so it lives in the
-- database that every replica shares (see store/revocations.rs for how it is computed).

-- The sequence number the write of each entry produced.
ALTER TABLE revocations ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;

-- The highest sequence number of the entries pruning has deleted, so that deleting the
-- newest expired entry never lowers the published number. One row.
CREATE TABLE revocation_sequence (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO revocation_sequence (id, value) VALUES (1, 0);
