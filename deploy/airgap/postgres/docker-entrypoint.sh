#!/bin/bash
# Entrypoint of the air-gapped PostgreSQL image (jwt-platform/postgres:15).
#
# It behaves like the official `postgres` image's entrypoint for everything this project and its
# tools use, so compose files, init scripts and the testcontainers Postgres module work unchanged:
#   - POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
#     POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default = POSTGRES_USER),
#     POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD (default scram-sha-256), PGDATA.
#   - On first start (empty PGDATA): initdb, then a temporary server listening only on the Unix
#     socket runs /docker-entrypoint-initdb.d/*.sh, *.sql, *.sql.gz in name order, then stops.
#   - Arguments starting with '-' are passed to postgres (`docker run img -c fsync=off`).
#   - Runs as root only long enough to fix ownership, then drops to the postgres user.
#
# Log lines that readiness probes wait for (same streams as the official image):
#   - the temporary init server logs through pg_ctl to STDOUT
#     ("database system is ready to accept connections"), then
#     "PostgreSQL init process complete; ready for start up." on stdout,
#   - the real server logs to STDERR ("database system is ready to accept connections").
# testcontainers-modules' Postgres image (0.15) waits for that message on stderr AND on stdout,
# i.e. for a freshly initialised container that has finished init and started the real server.
set -Eeuo pipefail

PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
export PATH="${PG_BIN}:${PATH}"
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"

log() { echo "entrypoint: $*"; }

# `docker run IMAGE -c x=y` -> postgres -c x=y
if [ $# -eq 0 ] || [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

# Anything but the server (bash, psql, ...) simply runs.
if [ "$1" != 'postgres' ]; then
    exec "$@"
fi

if [ "$(id -u)" = '0' ]; then
    # Volumes arrive owned by root; PGDATA must belong to postgres and be private.
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 2775 /var/run/postgresql
    # Re-run this script as postgres. setpriv (util-linux, essential in Debian) needs no PAM,
    # unlike su/runuser, and keeps the environment (POSTGRES_* included).
    export HOME=/var/lib/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

# Started with --user: at least make sure PGDATA exists and is ours.
mkdir -p "$PGDATA"
chmod 700 "$PGDATA" 2>/dev/null || true

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    POSTGRES_USER="${POSTGRES_USER:-postgres}"
    POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
    POSTGRES_HOST_AUTH_METHOD="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
        cat >&2 <<'EOF'
Error: the database is uninitialized and POSTGRES_PASSWORD is not set.
       Set POSTGRES_PASSWORD to a non-empty value for the superuser, or (only on a trusted
       network) POSTGRES_HOST_AUTH_METHOD=trust to allow connections without a password.
EOF
        exit 1
    fi

    log "initializing database in $PGDATA"
    pwfile=""
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        # Through a file, not argv: the password must not show up in `ps`.
        pwfile="$(mktemp)"
        printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    fi
    # Local (Unix socket) connections trusted, as in the official image: only processes inside
    # the container reach the socket. TCP uses POSTGRES_HOST_AUTH_METHOD (see pg_hba below).
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of words by design
    initdb --username="$POSTGRES_USER" ${pwfile:+--pwfile="$pwfile"} \
        --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" \
        --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-}
    [ -n "$pwfile" ] && rm -f "$pwfile"

    # Listen on every interface of the container; accept password logins from any address. The
    # container network, not pg_hba, is the boundary (as in the official image).
    {
        echo
        echo "# added by docker-entrypoint.sh"
        echo "host all all all $POSTGRES_HOST_AUTH_METHOD"
    } >>"$PGDATA/pg_hba.conf"
    {
        echo
        echo "# added by docker-entrypoint.sh"
        echo "listen_addresses = '*'"
    } >>"$PGDATA/postgresql.auto.conf"

    # Temporary server: Unix socket only, so nobody (healthchecks with -h, clients) can connect
    # over TCP before the init scripts have finished. Its log goes to stdout via pg_ctl.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start

    export PGPASSWORD="${PGPASSWORD:-${POSTGRES_PASSWORD:-}}"
    psql_base=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [ "$POSTGRES_DB" != 'postgres' ]; then
        "${psql_base[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
        log "created database $POSTGRES_DB"
    fi

    # Same contract as the official image: executable *.sh are run, others sourced; *.sql run
    # with psql against POSTGRES_DB; *.sql.gz decompressed first. Variables available to scripts:
    # POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD, PGPASSWORD.
    export POSTGRES_USER POSTGRES_DB
    shopt -s nullglob
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh)
                if [ -x "$f" ]; then log "running $f"; "$f"
                else log "sourcing $f"; # shellcheck disable=SC1090
                    . "$f"; fi ;;
            *.sql) log "running $f"; "${psql_base[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
            *.sql.gz) log "running $f"; gunzip -c "$f" | "${psql_base[@]}" --dbname "$POSTGRES_DB" ;;
            *) log "ignoring $f" ;;
        esac
    done
    shopt -u nullglob
    unset PGPASSWORD

    pg_ctl -D "$PGDATA" -m fast -w stop
    echo
    echo 'PostgreSQL init process complete; ready for start up.'
    echo
else
    log "PostgreSQL database directory appears to contain a database; skipping initialization"
fi

# The real server: logs to stderr, PID 1 after exec so `docker stop` (SIGINT, see STOPSIGNAL)
# makes a clean fast shutdown.
exec "$@"
