#!/usr/bin/env bash
# Smoke test of the air-gapped packaging, runnable before (or without) the Rust release build:
#   1. deploy/airgap/build-images.sh builds the debootstrap base and PostgreSQL images (timed).
#   2. The PostgreSQL image is checked the way compose and testcontainers use it:
#      POSTGRES_USER/PASSWORD/DB honoured, password auth over TCP, init scripts run
#      (deploy/postgres/init-databases.sh -> databases auth, users, orders with owner roles and
#      no cross-database CONNECT), `-c` args passed to postgres, the "ready to accept connections"
#      line on both stdout (init server) and stderr (real server), data kept across a restart,
#      refusal to start without a password.
#   3. Service images are assembled from a static stand-in binary (deploy/tests/fake-service.c,
#      compiled with gcc -static) and checked: size, non-root, HEALTHCHECK turns healthy, DATA_DIR
#      writable, container DNS works in a scratch image.
#   4. The compose files (base + air-gapped override) are validated with docker-compose config and
#      brought up with those stand-ins: postgres healthy -> auth healthy -> seed exits 0 -> users,
#      orders and demo-web healthy, ports answer on 127.0.0.1. Always torn down (down -v).
# Real-binary end-to-end: deploy/tests/compose-e2e.sh.
#
# Usage: deploy/tests/airgap-smoke.sh      (needs root for step 1, docker, gcc, psql, curl)
# Env:   COMPOSE="docker compose" to use Compose v2 instead of docker-compose.
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMPOSE="${COMPOSE:-docker-compose}"
TAG=smoke                  # service images get this tag, never overwriting the real `local` ones
PROJECT=jwtsmoke
PG_CONTAINER=jwt-smoke-pg
FAILS=0
PASSES=0
WORK="$(mktemp -d)"

log() { printf '[smoke %(%H:%M:%S)T] %s\n' -1 "$*"; }
ok() { log "ok   $*"; PASSES=$((PASSES + 1)); }
fail() { log "FAIL $*"; FAILS=$((FAILS + 1)); }
check() { local what="$1"; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi; }

compose() { $COMPOSE -p "$PROJECT" -f "$DEPLOY_DIR/docker-compose.yml" -f "$DEPLOY_DIR/docker-compose.airgap.yml" "$@"; }

cleanup() {
    docker rm -f -v "$PG_CONTAINER" "${PG_CONTAINER}-nopw" jwt-smoke-svc >/dev/null 2>&1 || true
    JWT_IMAGE_TAG=$TAG compose down -v --remove-orphans >/dev/null 2>&1 || true
    docker network rm jwt-smoke-net >/dev/null 2>&1 || true
    # The stand-in images are useless afterwards (base and postgres images stay: they are real).
    docker rmi "jwt-platform/auth-server:$TAG" "jwt-platform/users-service:$TAG" \
        "jwt-platform/orders-service:$TAG" "jwt-platform/demo-web:$TAG" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_healthy() { # container timeout_s -> prints seconds waited; non-zero if not healthy in time
    local c="$1" limit="$2" t0 s
    t0=$(date +%s.%N)
    while :; do
        s="$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$c" 2>/dev/null || echo gone)"
        [ "$s" = healthy ] && { echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f'; return 0; }
        case "$s" in exited|dead|gone) return 1 ;; esac
        [ "$(echo "$(date +%s.%N) - $t0 > $limit" | bc)" = 1 ] && return 1
        sleep 0.2
    done
}

# `--pull never` everywhere: an image that is missing must fail here, not trigger a registry lookup.
command -v bc >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bc >/dev/null; }

# ---- 1. images --------------------------------------------------------------------------------
log "building base + postgres images"
t0=$(date +%s)
"$DEPLOY_DIR/airgap/build-images.sh" --only base,postgres
log "base+postgres step: $(( $(date +%s) - t0 ))s (cached rootfs/images make reruns fast)"

# ---- 2. PostgreSQL image --------------------------------------------------------------------------
log "starting $PG_CONTAINER (POSTGRES_USER=smoke, POSTGRES_DB=smokedb, -c fsync=off)"
docker run --pull never -d --name "$PG_CONTAINER" \
    -e POSTGRES_USER=smoke -e POSTGRES_PASSWORD=smoke-pw -e POSTGRES_DB=smokedb \
    -e AUTH_DB_PASSWORD=auth-pw -e USERS_DB_PASSWORD=users-pw -e ORDERS_DB_PASSWORD=orders-pw \
    -v "$DEPLOY_DIR/postgres/init-databases.sh:/docker-entrypoint-initdb.d/10-init-databases.sh:ro" \
    -p 127.0.0.1::5432 jwt-platform/postgres:15 -c fsync=off >/dev/null
T_PG=$(date +%s.%N)
PG_PORT="$(docker port "$PG_CONTAINER" 5432/tcp | head -1 | sed 's/.*://')"
psql_as() { PGPASSWORD="$2" psql -X -At -h 127.0.0.1 -p "$PG_PORT" -U "$1" -d "$3" -c "$4"; }
# Readiness as a client sees it (TCP opens only after initdb + init scripts), polled every 0.1 s;
# the HEALTHCHECK below is coarser (5 s interval).
for _ in $(seq 1200); do psql_as smoke smoke-pw smokedb 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
log "first start: accepting TCP connections after $(echo "$(date +%s.%N) - $T_PG" | bc | xargs printf '%.1f')s (initdb + init scripts)"
if secs="$(wait_healthy "$PG_CONTAINER" 120)"; then ok "postgres container healthy (HEALTHCHECK, +${secs}s)"
else fail "postgres did not become healthy"; docker logs "$PG_CONTAINER" 2>&1 | tail -30; fi

out_lines="$(docker logs "$PG_CONTAINER" 2>/dev/null | grep -c 'database system is ready to accept connections' || true)"
err_lines="$(docker logs "$PG_CONTAINER" 2>&1 >/dev/null | grep -c 'database system is ready to accept connections' || true)"
log "ready line: ${out_lines}x on stdout (init server), ${err_lines}x on stderr (real server)"
check "ready line on stdout and on stderr (testcontainers-modules 0.15 waits for both)" \
    test "$out_lines" -ge 1 -a "$err_lines" -ge 1
check "POSTGRES_USER/PASSWORD/DB: smoke can log in to smokedb over TCP" \
    test "$(psql_as smoke smoke-pw smokedb "select current_user || '@' || current_database()")" = "smoke@smokedb"
check "wrong password is rejected (password auth on TCP)" \
    bash -c "! PGPASSWORD=wrong psql -X -h 127.0.0.1 -p $PG_PORT -U smoke -d smokedb -c 'select 1'"
dbs="$(psql_as smoke smoke-pw smokedb "select string_agg(datname || ':' || pg_get_userbyid(datdba), ',' order by datname) from pg_database where datname in ('auth','users','orders')")"
log "service databases: $dbs"
check "init script created auth, users, orders owned by their roles" test "$dbs" = "auth:auth,orders:orders,users:users"
check "role auth can connect to database auth and create tables (migrations)" \
    psql_as auth auth-pw auth "create table smoke_t(id int); drop table smoke_t"
check "role auth cannot connect to database users" bash -c "! PGPASSWORD=auth-pw psql -X -h 127.0.0.1 -p $PG_PORT -U auth -d users -c 'select 1'"
check "command-line '-c fsync=off' reached postgres" test "$(psql_as smoke smoke-pw smokedb 'show fsync')" = off
check "pg_isready inside the container" docker exec "$PG_CONTAINER" pg_isready -h 127.0.0.1 -U smoke
# shellcheck disable=SC2016  # expanded inside the container, on purpose
check "server (PID 1) runs as user postgres, not root" \
    docker exec "$PG_CONTAINER" sh -c 'test "$(awk "/^Uid:/ {print \$2}" /proc/1/status)" = "$(id -u postgres)"'
psql_as smoke smoke-pw smokedb "create table persisted(v text); insert into persisted values ('kept')" >/dev/null
t0=$(date +%s.%N)
docker restart "$PG_CONTAINER" >/dev/null
# The random host port changes on restart.
PG_PORT="$(docker port "$PG_CONTAINER" 5432/tcp | head -1 | sed 's/.*://')"
for _ in $(seq 600); do psql_as smoke smoke-pw smokedb 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
log "restart (existing data) -> accepting TCP connections after $(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f')s"
check "data survives a restart, init skipped" test "$(psql_as smoke smoke-pw smokedb 'select v from persisted')" = kept
check "entrypoint logged 'skipping initialization' on restart" bash -c "docker logs $PG_CONTAINER 2>&1 | grep -q 'skipping initialization'"
docker run --pull never -d --name "${PG_CONTAINER}-nopw" jwt-platform/postgres:15 >/dev/null
rc="$(docker wait "${PG_CONTAINER}-nopw")"
check "without POSTGRES_PASSWORD the container refuses to initialise (exit $rc)" test "$rc" != 0
docker rm -f -v "$PG_CONTAINER" "${PG_CONTAINER}-nopw" >/dev/null

# ---- 3. service images from a static stand-in binary ------------------------------------------------
log "compiling the static stand-in binary (gcc -static)"
mkdir -p "$WORK/bin"
gcc -static -O2 -o "$WORK/fake-service" "$DEPLOY_DIR/tests/fake-service.c" 2>"$WORK/gcc.err" \
    || { cat "$WORK/gcc.err"; fail "gcc -static"; }
for s in auth-server users-service orders-service demo-web; do cp "$WORK/fake-service" "$WORK/bin/$s"; done
"$DEPLOY_DIR/airgap/build-images.sh" --only services --bin-dir "$WORK/bin" --tag "$TAG"
for s in auth-server users-service orders-service demo-web; do
    log "image jwt-platform/$s:$TAG: $(docker image inspect --format '{{.Size}}' "jwt-platform/$s:$TAG") bytes, user $(docker image inspect --format '{{.Config.User}}' "jwt-platform/$s:$TAG")"
done
docker network create jwt-smoke-net >/dev/null
# Aliases as compose gives them, `auth.localhost` being the issuer's host name (docker-compose.yml).
docker run --pull never -d --name jwt-smoke-svc --network jwt-smoke-net --network-alias peer \
    --network-alias auth.localhost "jwt-platform/users-service:$TAG" >/dev/null
if secs="$(wait_healthy jwt-smoke-svc 60)"; then ok "scratch service image healthy after ${secs}s via its HEALTHCHECK"
else fail "scratch service image not healthy"; docker logs jwt-smoke-svc 2>&1 | tail; fi
check "process runs as uid 65532, DATA_DIR writable" \
    bash -c "docker exec jwt-smoke-svc /usr/local/bin/service resolve localhost >/dev/null && docker cp jwt-smoke-svc:/data/fake-started - | tar -xO | grep -qx uid=65532"
check "container DNS (compose-style alias) resolves inside scratch (static glibc)" \
    docker run --pull never --rm --network jwt-smoke-net "jwt-platform/users-service:$TAG" resolve peer
alias_ip="$(docker run --pull never --rm --network jwt-smoke-net "jwt-platform/users-service:$TAG" \
    resolve auth.localhost 2>/dev/null | sed -n 's/^auth\.localhost: //p')"
check "the issuer's name auth.localhost is the container's alias inside scratch ($alias_ip), not loopback" \
    bash -c "[[ '$alias_ip' =~ ^[0-9.]+\$ && '$alias_ip' != 127.* ]]"
docker rm -f jwt-smoke-svc >/dev/null; docker network rm jwt-smoke-net >/dev/null

# ---- 4. compose files ------------------------------------------------------------------------------
# shellcheck disable=SC2086  # COMPOSE may be two words ("docker compose")
check "docker-compose config (base)" $COMPOSE -f "$DEPLOY_DIR/docker-compose.yml" config -q
check "docker-compose config (base + airgap)" compose config -q
log "compose up (stand-in images, project $PROJECT)"
t0=$(date +%s.%N)
if JWT_IMAGE_TAG=$TAG compose up -d --no-build >"$WORK/up.log" 2>&1; then
    up_s="$(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f')"
    ok "compose up -d returned after ${up_s}s (it waits for the healthy/completed dependencies)"
else
    fail "compose up"; cat "$WORK/up.log"
fi
for s in postgres auth-server users-service orders-service demo-web; do
    cid="$(JWT_IMAGE_TAG=$TAG compose ps -q "$s")"
    if [ -n "$cid" ] && secs="$(wait_healthy "$cid" 120)"; then ok "$s healthy (+${secs}s after up returned)"; else fail "$s healthy"; fi
done
seed_cid="$(JWT_IMAGE_TAG=$TAG compose ps -a -q seed 2>/dev/null || JWT_IMAGE_TAG=$TAG compose ps -q seed)"
check "seed ran once and exited 0" test "$(docker inspect --format '{{.State.Status}}:{{.State.ExitCode}}' "$seed_cid")" = "exited:0"
check "seed started only after auth-server was healthy" bash -c "
    a=\$(docker inspect --format '{{range .State.Health.Log}}{{if eq .ExitCode 0}}{{.End}}\n{{end}}{{end}}' $(JWT_IMAGE_TAG=$TAG compose ps -q auth-server) | head -1 | cut -c1-19)
    s=\$(docker inspect --format '{{.State.StartedAt}}' $seed_cid | cut -c1-19)
    [ -n \"\$a\" ] && [ \"\$s\" \\> \"\$a\" -o \"\$s\" = \"\$a\" ]"
for p in 8080 8081 8082 8083; do
    check "127.0.0.1:$p answers /healthz" curl -fsS --max-time 3 "http://127.0.0.1:$p/healthz"
done
check "postgres port is not published" bash -c "[ -z \"\$(JWT_IMAGE_TAG=$TAG $COMPOSE -p $PROJECT -f $DEPLOY_DIR/docker-compose.yml -f $DEPLOY_DIR/docker-compose.airgap.yml port postgres 5432 2>/dev/null | grep -v '^:0$')\" ]"
JWT_IMAGE_TAG=$TAG compose down -v --remove-orphans >/dev/null 2>&1

if [ "$FAILS" -eq 0 ]; then log "ALL CHECKS PASSED"; else log "$FAILS CHECK(S) FAILED"; fi
# Plain summary line (the form CI logs are read for).
echo "airgap-smoke: $PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
