-- users-service owns profiles. A profile is created on the user's first authenticated request,
-- from the token's `sub` and `preferred_username`. Portable SQLite/PostgreSQL SQL.
CREATE TABLE profiles (
    id           TEXT PRIMARY KEY,
    username     TEXT NOT NULL,
    display_name TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
