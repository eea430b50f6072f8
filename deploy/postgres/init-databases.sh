#!/usr/bin/env bash
# PostgreSQL first-start script: one database and one login role per service (database per
# service: no service can read another's tables). Mounted into /docker-entrypoint-initdb.d/ of the official postgres
# image (docker-compose.yml) and of the air-gapped jwt-platform/postgres image; both run it once,
# when the data volume is empty. To re-run it: `docker compose down -v` (drops the data!).
#
# For each NAME in SERVICE_DATABASES (default "auth users orders"):
#   role NAME (LOGIN, password from env NAME_DB_PASSWORD, e.g. AUTH_DB_PASSWORD),
#   database NAME owned by that role, CONNECT revoked from PUBLIC so a service cannot open
#   another service's database. Being the owner, the role can run its own migrations.
#
# The body runs in a subshell: the official entrypoint *sources* non-executable *.sh files, and
# neither our `set -u` nor an `exit` may leak into it.
(
    set -euo pipefail
    for db in ${SERVICE_DATABASES:-auth users orders}; do
        var="$(printf '%s' "$db" | tr '[:lower:]-' '[:upper:]_')_DB_PASSWORD"
        pw="${!var:-}"
        if [ -z "$pw" ]; then
            echo "init-databases: ${var} is not set; refusing to create role ${db} without a password" >&2
            exit 1
        fi
        # Values travel as psql variables (:'x' quotes a literal, :"x" an identifier), so any
        # password or name is quoted correctly. \gexec makes it idempotent.
        psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
            --set db="$db" --set pw="$pw" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'db', :'pw')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'db')
\gexec
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'db', :'db', 'UTF8')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')
\gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
        echo "init-databases: database ${db} with owner role ${db} ready"
    done
)
