#!/usr/bin/env bash
# Deploy test: the real images under docker compose, the user scenario
# against the published ports, then the point of the whole design: stop the auth server and show
# that both services keep serving, also after a service restart during the outage (key cache on
# its DATA_DIR volume).
#
#   deploy/tests/compose-e2e.sh [--bin-dir DIR] [--skip-build] [--requests N]
#
#   --bin-dir DIR   prebuilt static binaries (else build-images.sh runs the crt-static cargo build)
#   --skip-build    use the jwt-platform/*:local images already present
#   --requests N    requests per outage phase (default 200)
# Env: COMPOSE (default docker-compose; "docker compose" for v2), KEEP_UP=1 leaves the stack
#      running for inspection, AUTH_HOST_PORT/USERS_HOST_PORT/ORDERS_HOST_PORT (8080/8081/8082),
#      AUTH_MANAGEMENT_HOST_PORT/USERS_MANAGEMENT_HOST_PORT/ORDERS_MANAGEMENT_HOST_PORT (9080-9082).
#
# Needs: docker, compose, curl, python3 (JSON and the request loop), root for build-images.sh.
# Exit status: 0 only if every check passed; the stack is always removed (down -v) unless KEEP_UP=1.
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMPOSE="${COMPOSE:-docker-compose}"
PROJECT=jwtdemo
BIN_DIR="${BIN_DIR:-}"
SKIP_BUILD=0
REQUESTS=200
export JWT_IMAGE_TAG="${JWT_IMAGE_TAG:-local}"
AUTH="http://127.0.0.1:${AUTH_HOST_PORT:-8080}"
USERS="http://127.0.0.1:${USERS_HOST_PORT:-8081}"
ORDERS="http://127.0.0.1:${ORDERS_HOST_PORT:-8082}"
# The management listeners (MANAGEMENT_ADDR): /metrics lives there, not on the API ports.
AUTH_MANAGEMENT="http://127.0.0.1:${AUTH_MANAGEMENT_HOST_PORT:-9080}"
USERS_MANAGEMENT="http://127.0.0.1:${USERS_MANAGEMENT_HOST_PORT:-9081}"
ORDERS_MANAGEMENT="http://127.0.0.1:${ORDERS_MANAGEMENT_HOST_PORT:-9082}"

while [ $# -gt 0 ]; do
    case "$1" in
        --bin-dir) BIN_DIR="$2"; shift 2 ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        --requests) REQUESTS="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

FAILS=0
PASSES=0
WORK="$(mktemp -d)"
log() { printf '[e2e %(%H:%M:%S)T] %s\n' -1 "$*"; }
ok() { log "ok   $*"; PASSES=$((PASSES + 1)); }
fail() { log "FAIL $*"; FAILS=$((FAILS + 1)); }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

# shellcheck disable=SC2086  # COMPOSE may be two words
compose() { $COMPOSE -p "$PROJECT" -f "$DEPLOY_DIR/docker-compose.yml" -f "$DEPLOY_DIR/docker-compose.airgap.yml" "$@"; }

cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ "${SUMMARY_DONE:-0}" = 0 ]; then
        echo "compose-e2e: $PASSES passed, $((FAILS > 0 ? FAILS : 1)) failed"
    fi
    if [ "$rc" -ne 0 ] || [ "$FAILS" -ne 0 ]; then
        log "logs of the stack (last 40 lines per service):"
        compose logs --no-color --tail 40 2>&1 | sed 's/^/    /' || true
    fi
    if [ "${KEEP_UP:-0}" = 1 ]; then
        log "KEEP_UP=1: stack left running (project $PROJECT)"
    else
        compose down -v --remove-orphans >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# http METHOD URL [TOKEN] [JSON-BODY] -> prints "STATUS" on line 1, body after; never fails itself.
http() {
    local method="$1" url="$2" token="${3:-}" body="${4:-}" args code
    args=(-sS -o "$WORK/body" -w '%{http_code}' --max-time 10 -X "$method")
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
    rm -f "$WORK/body"
    # curl prints 000 itself when nothing answered (and then exits non-zero).
    code="$(curl "${args[@]}" "$url" 2>/dev/null)" || true
    echo "${code:-000}"
    cat "$WORK/body" 2>/dev/null || true
}
status_of() { head -n1 <<<"$1"; }
body_of() { tail -n +2 <<<"$1"; }
json_get() { python3 -c 'import json,sys; v=json.load(sys.stdin); print(v.get(sys.argv[1], "") if isinstance(v, dict) else "")' "$1" 2>/dev/null || true; }
expect() { # description expected-status response
    local got; got="$(status_of "$3")"
    if [ "$got" = "$2" ]; then ok "$1 -> $got"; else fail "$1 -> $got (expected $2): $(body_of "$3" | head -c 300)"; fi
}

wait_healthy() { # service timeout_s
    local svc="$1" limit="$2" t0 cid s
    t0=$(date +%s)
    while :; do
        cid="$(compose ps -q "$svc" 2>/dev/null || true)"
        s="$( [ -n "$cid" ] && docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$cid" 2>/dev/null || echo missing)"
        [ "$s" = healthy ] && return 0
        [ $(( $(date +%s) - t0 )) -ge "$limit" ] && { log "$svc is '$s' after ${limit}s"; return 1; }
        sleep 0.5
    done
}

# Sends N requests alternating GET users/me, GET orders and (every 10th) POST orders; prints
# "requests failures p50_ms p99_ms". A failure is any status other than the expected one.
load() {
    python3 - "$1" "$2" "$USERS" "$ORDERS" <<'PY'
import json, sys, time, urllib.request, urllib.error
n, token, users, orders = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
fails, lat, first_errors = 0, [], []
for i in range(n):
    if i % 10 == 9:
        req, want = urllib.request.Request(orders + "/v1/orders", method="POST",
            data=json.dumps({"item": f"outage-{i}", "quantity": 1}).encode(),
            headers={"Content-Type": "application/json"}), 201
    elif i % 2:
        req, want = urllib.request.Request(orders + "/v1/orders"), 200
    else:
        req, want = urllib.request.Request(users + "/v1/users/me"), 200
    req.add_header("Authorization", "Bearer " + token)
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except Exception as e:  # connection refused, timeout
        code = repr(e)
    lat.append((time.perf_counter() - t0) * 1000)
    if code != want:
        fails += 1
        if len(first_errors) < 5:
            first_errors.append(f"{req.get_method()} {req.full_url}: {code}")
lat.sort()
for e in first_errors:
    print("  error:", e, file=sys.stderr)
print(n, fails, f"{lat[len(lat) // 2]:.1f}", f"{lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.1f}")
PY
}

# ---- build ------------------------------------------------------------------------------------
if [ "$SKIP_BUILD" = 0 ]; then
    log "building images (air-gapped path)"
    t0=$(now)
    "$DEPLOY_DIR/airgap/build-images.sh" ${BIN_DIR:+--bin-dir "$BIN_DIR"} --tag "$JWT_IMAGE_TAG"
    log "images built in $(since "$t0")s"
fi
for img in jwt-platform/postgres:15 "jwt-platform/auth-server:$JWT_IMAGE_TAG" \
    "jwt-platform/users-service:$JWT_IMAGE_TAG" "jwt-platform/orders-service:$JWT_IMAGE_TAG"; do
    docker image inspect "$img" >/dev/null 2>&1 || { log "missing image $img"; exit 1; }
done

# ---- up ------------------------------------------------------------------------------------------
compose down -v --remove-orphans >/dev/null 2>&1 || true   # leftovers of an interrupted run
log "compose up (project $PROJECT)"
T_UP=$(now)
if ! compose up -d --no-build; then fail "compose up"; exit 1; fi
for s in postgres auth-server users-service orders-service; do
    if wait_healthy "$s" 180; then ok "$s healthy"; else fail "$s never became healthy"; exit 1; fi
done
UP_SECONDS="$(since "$T_UP")"
log "all services healthy ${UP_SECONDS}s after 'up'"
seed_state="$(docker inspect --format '{{.State.Status}}:{{.State.ExitCode}}' "$(compose ps -a -q seed 2>/dev/null || compose ps -q seed)" 2>/dev/null || echo missing)"
if [ "$seed_state" = "exited:0" ]; then ok "seed job exited 0"; else fail "seed job state $seed_state"; fi

# ---- scenario with auth-server up ----------------------------------------------------------------
for p in "$AUTH" "$USERS" "$ORDERS"; do
    for path in /healthz /readyz /openapi.json; do
        expect "GET $p$path" 200 "$(http GET "$p$path")"
    done
    expect "GET $p/metrics (moved to the management listener)" 404 "$(http GET "$p/metrics")"
done
for p in "$AUTH_MANAGEMENT" "$USERS_MANAGEMENT" "$ORDERS_MANAGEMENT"; do
    for path in /metrics /healthz /readyz; do
        expect "GET $p$path" 200 "$(http GET "$p$path")"
    done
done
expect "GET $AUTH/.well-known/jwks.json" 200 "$(http GET "$AUTH/.well-known/jwks.json")"

USERNAME="e2e-$(date +%s)-$RANDOM"
PASSWORD="e2e-password-$RANDOM$RANDOM"
expect "register $USERNAME" 201 "$(http POST "$AUTH/v1/users" "" "{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\"}")"
r="$(http POST "$AUTH/v1/auth/login" "" "{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\"}")"
expect "login $USERNAME" 200 "$r"
TOKEN="$(body_of "$r" | json_get access_token)"
[ -n "$TOKEN" ] || { fail "no access_token in login response"; exit 1; }
expect "login with wrong password" 401 "$(http POST "$AUTH/v1/auth/login" "" "{\"username\":\"$USERNAME\",\"password\":\"wrong\"}")"
expect "seeded user demo can log in" 200 "$(http POST "$AUTH/v1/auth/login" "" '{"username":"demo","password":"demo-password"}')"

r="$(http GET "$USERS/v1/users/me" "$TOKEN")"
expect "GET users-service /v1/users/me" 200 "$r"
if body_of "$r" | grep -q "\"$USERNAME\""; then ok "profile names $USERNAME"; else fail "profile lacks username: $(body_of "$r")"; fi
expect "GET /v1/users/me without token" 401 "$(http GET "$USERS/v1/users/me")"
expect "GET /v1/users/me with a garbage token" 401 "$(http GET "$USERS/v1/users/me" "not.a.jwt")"

r="$(http POST "$ORDERS/v1/orders" "$TOKEN" '{"item":"e2e-book","quantity":2}')"
expect "POST orders-service /v1/orders" 201 "$r"
ORDER_ID="$(body_of "$r" | json_get id)"
r="$(http GET "$ORDERS/v1/orders" "$TOKEN")"
expect "GET orders-service /v1/orders" 200 "$r"
if body_of "$r" | grep -q "${ORDER_ID:-e2e-book}"; then ok "order list contains the new order"; else fail "order missing from list: $(body_of "$r" | head -c 300)"; fi

# ---- auth-server outage -----------------------------------------------------------------------
log "stopping auth-server"
compose stop auth-server >/dev/null 2>&1
expect "auth-server is really down (login)" 000 "$(http POST "$AUTH/v1/auth/login" "" "{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\"}")"

read -r n1 f1 p50_1 p99_1 < <(load "$REQUESTS" "$TOKEN")
log "outage, services running: $n1 requests, $f1 failures, p50 ${p50_1} ms, p99 ${p99_1} ms"
if [ "$f1" = 0 ]; then ok "services keep serving with auth-server down"; else fail "$f1 failures during the outage"; fi

log "restarting users-service during the outage (keys must come from its disk cache)"
T_RS=$(now)
compose restart users-service >/dev/null 2>&1
if wait_healthy users-service 120; then ok "users-service healthy again after $(since "$T_RS")s"; else fail "users-service not healthy after restart"; fi
r="$(http GET "$USERS/readyz")"
log "users-service /readyz after restart: $(status_of "$r") $(body_of "$r" | head -c 200)"
expect "users-service verifies the old token after restart" 200 "$(http GET "$USERS/v1/users/me" "$TOKEN")"

read -r n2 f2 p50_2 p99_2 < <(load "$REQUESTS" "$TOKEN")
log "outage, after users-service restart: $n2 requests, $f2 failures, p50 ${p50_2} ms, p99 ${p99_2} ms"
if [ "$f2" = 0 ]; then ok "services keep serving after a restart during the outage"; else fail "$f2 failures after restart"; fi

# ---- recovery -----------------------------------------------------------------------------------
log "starting auth-server again"
T_AS=$(now)
compose start auth-server >/dev/null 2>&1
if wait_healthy auth-server 120; then ok "auth-server healthy again after $(since "$T_AS")s"; else fail "auth-server did not come back"; fi
r="$(http POST "$AUTH/v1/auth/login" "" "{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\"}")"
expect "login after recovery (keys and users persisted in PostgreSQL)" 200 "$r"
TOKEN2="$(body_of "$r" | json_get access_token)"
expect "new token accepted by orders-service" 200 "$(http GET "$ORDERS/v1/orders" "${TOKEN2:-none}")"

# ---- figures --------------------------------------------------------------------------------------
log "figures:"
log "  up -> all healthy:              ${UP_SECONDS} s"
log "  outage requests / failures:     $((n1 + n2)) / $((f1 + f2))"
log "  latency during outage p50/p99:  ${p50_1}/${p99_1} ms, after restart ${p50_2}/${p99_2} ms"
for img in jwt-platform/postgres:15 "jwt-platform/auth-server:$JWT_IMAGE_TAG" \
    "jwt-platform/users-service:$JWT_IMAGE_TAG" "jwt-platform/orders-service:$JWT_IMAGE_TAG"; do
    log "  image $(printf '%-36s' "$img") $(docker image inspect --format '{{.Size}}' "$img" | awk '{ printf "%.1f MB", $1 / 1000000 }')"
done

if [ "$FAILS" -eq 0 ]; then log "PASS"; else log "$FAILS check(s) failed"; fi
# Plain summary line (the form CI logs are read for).
echo "compose-e2e: $PASSES passed, $FAILS failed"
SUMMARY_DONE=1
[ "$FAILS" -eq 0 ]
