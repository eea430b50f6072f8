-- orders-service owns orders. Portable SQLite/PostgreSQL SQL.
CREATE TABLE orders (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    item          TEXT NOT NULL,
    quantity      BIGINT NOT NULL,
    -- Display name fetched from users-service at creation; NULL when it was unreachable.
    customer_name TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX orders_user ON orders (user_id, created_at);
