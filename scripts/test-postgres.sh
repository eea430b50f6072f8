#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 on a loopback port for the storage tests and prints the
# export line for TEST_DATABASE_URL. Usage:  eval "$(scripts/test-postgres.sh start)"
#                                            scripts/test-postgres.sh stop
# Installs postgresql-15 from the machine's configured Debian mirror when it is missing.
set -euo pipefail
PGBIN=/usr/lib/postgresql/15/bin
DIR=${TEST_PG_DIR:-/tmp/jwt-platform-test-pg}
PORT=${TEST_PG_PORT:-55432}

case "${1:-start}" in
start)
    if [ ! -x "$PGBIN/initdb" ]; then
        echo "installing postgresql-15 ..." >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >&2
    fi
    if [ -f "$DIR/postmaster.pid" ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR" -m immediate stop >&2 || true
    fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    chown postgres:postgres "$DIR"
    # initdb refuses to run as root: it runs as the postgres user, trusting local connections.
    runuser -u postgres -- "$PGBIN/initdb" -D "$DIR" --auth=trust -U postgres >/dev/null
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" \
        -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" -w start >&2
    echo "export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PORT/postgres"
    ;;
stop)
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR" -m fast stop >&2 || true
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
