#!/usr/bin/env bash
# Property-based API testing of the three binaries from their own OpenAPI documents with
# Schemathesis: every documented operation is called with generated valid and invalid input,
# and every response is checked against the document (status codes, content types, headers,
# schemas) and against the platform's rules (no 5xx, invalid input refused, auth enforced).
#
#   scripts/schemathesis.sh
#
# Installs Schemathesis from PyPI into a virtualenv under the cache dir (reused when present),
# builds the debug binaries as the test step does (a no-op when they are current), starts auth-server,
# users-service and orders-service on free loopback ports with temporary data dirs, logs in as
# the demo user and runs Schemathesis against each in turn: users-service and orders-service
# first, auth-server last (its run logs out and trips the login throttle, which would spoil the
# others' tokens). Prints one summary line per binary; exits non-zero if any check failed. The
# processes are always stopped, whatever happens.
#
# Environment:
#   SCHEMATHESIS_CACHE          where the virtualenv lives (default ~/.cache/jwt-platform-schemathesis)
#   SCHEMATHESIS_MAX_EXAMPLES   generated cases per operation and phase (default 25)
#   SCHEMATHESIS_TIMEOUT        hard limit per binary in seconds (default 300)
#   SCHEMATHESIS_SEED           random seed (default fixed, so CI runs are reproducible)
#   CARGO_TARGET_DIR            as for cargo
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=4.32.5
CACHE=${SCHEMATHESIS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jwt-platform-schemathesis}
VENV=$CACHE/venv-$VERSION
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-25}
TIMEOUT=${SCHEMATHESIS_TIMEOUT:-300}
SEED=${SCHEMATHESIS_SEED:-20250601}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/debug
started=$SECONDS

# --- Schemathesis --------------------------------------------------------------------------
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$VERSION"; then
    echo "installing schemathesis $VERSION into $VENV ..." >&2
    rm -rf "$VENV"
    mkdir -p "$CACHE"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi
PYTHON=$VENV/bin/python

# --- binaries ------------------------------------------------------------------------------
# Built exactly as `cargo test --workspace` builds them (a no-op right after the test step in CI):
# `cargo build -p ...` alone resolves features without the dev-dependencies and would rebuild
# much of the dependency tree.
(cd "$ROOT" && cargo test --workspace --locked --no-run --quiet)

# --- processes, always stopped -------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/schemathesis.XXXXXX")
PIDS=()
cleanup() {
    local status=$?
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ] && [ -n "${KEEP_LOGS:-}" ]; then
        echo "logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ready() { # name url
    "$PYTHON" - "$1" "$2" <<'EOF'
import sys, time, urllib.request
name, url = sys.argv[1], sys.argv[2]
deadline = time.time() + 30
while time.time() < deadline:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.2)
sys.exit(f"{name} did not become ready at {url}")
EOF
}

login() { # auth-url user -> access token on stdout (demo-seed's accounts: demo, admin)
    "$PYTHON" - "$1" "$2" <<'EOF'
import json, sys, urllib.request
request = urllib.request.Request(
    sys.argv[1] + "/v1/auth/login",
    data=json.dumps({"username": sys.argv[2], "password": sys.argv[2] + "-password"}).encode(),
    headers={"content-type": "application/json"},
)
with urllib.request.urlopen(request, timeout=10) as response:
    print(json.load(response)["access_token"])
EOF
}

AUTH_PORT=$(free_port)
USERS_PORT=$(free_port)
ORDERS_PORT=$(free_port)
AUTH_URL=http://127.0.0.1:$AUTH_PORT
USERS_URL=http://127.0.0.1:$USERS_PORT
ORDERS_URL=http://127.0.0.1:$ORDERS_PORT
CLIENT_SECRET=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))')
export RUST_LOG=${RUST_LOG:-warn}
unset DATABASE_URL

ISSUER=$AUTH_URL LISTEN_ADDR=127.0.0.1:$AUTH_PORT DATA_DIR=$WORK/auth DEMO_CLIENT_SECRET=$CLIENT_SECRET \
    "$TARGET/auth-server" demo-seed >"$WORK/seed.log" 2>&1 || { cat "$WORK/seed.log" >&2; exit 1; }
ISSUER=$AUTH_URL LISTEN_ADDR=127.0.0.1:$AUTH_PORT DATA_DIR=$WORK/auth \
    "$TARGET/auth-server" >"$WORK/auth-server.log" 2>&1 &
PIDS+=($!)
wait_ready auth-server "$AUTH_URL"
AUTH_ISSUER=$AUTH_URL LISTEN_ADDR=127.0.0.1:$USERS_PORT DATA_DIR=$WORK/users \
    "$TARGET/users-service" >"$WORK/users-service.log" 2>&1 &
PIDS+=($!)
AUTH_ISSUER=$AUTH_URL LISTEN_ADDR=127.0.0.1:$ORDERS_PORT DATA_DIR=$WORK/orders USERS_SERVICE_URL=$USERS_URL \
    CLIENT_ID=orders-service CLIENT_SECRET=$CLIENT_SECRET "$TARGET/orders-service" >"$WORK/orders-service.log" 2>&1 &
PIDS+=($!)
wait_ready users-service "$USERS_URL"
wait_ready orders-service "$ORDERS_URL"

# --- the runs ------------------------------------------------------------------------------
# The configuration of one run: every check (what `--checks all` selects), the bearer token for
# every request, except the OAuth endpoints, which authenticate clients with HTTP Basic: there
# the orders-service client's credentials are sent instead, so client credentials, revocation
# and introspection are exercised past client authentication.
#
# Checks switched off, each for one operation and one reason that is not a defect:
#   GET /v1/revocations  response_schema_conformance: the body is a compact JWS served as
#       `application/jwt` (RFC 7519 §10.3.1) and documented as such, but Schemathesis counts
#       `application/jwt` among the JSON media types and fails to parse it as JSON.
#   POST /oauth2/token  positive_data_acceptance: a schema-valid grant with a refresh token the
#       server never issued is `400 invalid_grant` by RFC 6749 §5.2, which this check does not
#       expect (it allows 401/403/404/409 only); every other check, `not_a_server_error` and
#       `negative_data_rejection` included, still runs there.
# Checks and headers live in the file, not on the command line, because options given there
# would override these per-operation settings.
write_config() { # name token -> config path
    local config=$WORK/schemathesis-$1.toml basic
    basic=$(printf 'orders-service:%s' "$CLIENT_SECRET" | base64 -w0)
    cat >"$config" <<EOF
headers = { Authorization = "Bearer $2" }

[checks]
enabled = true
EOF
    if [ "$1" = auth-server ]; then
        cat >>"$config" <<EOF

[[operations]]
include-path-regex = "^/oauth2/"
headers = { Authorization = "Basic $basic" }

[[operations]]
include-method = "GET"
include-path = "/v1/revocations"
checks.response_schema_conformance.enabled = false

[[operations]]
include-method = "POST"
include-path = "/oauth2/token"
checks.positive_data_acceptance.enabled = false
EOF
    fi
    echo "$config"
}

failed=0
SUMMARY=()
run() { # name url user
    local name=$1 url=$2 user=$3 config status=0 began=$SECONDS
    config=$(write_config "$name" "$(login "$AUTH_URL" "$user")")
    echo "=== $name ($url, as $user) ==="
    (cd "$WORK" && timeout "$TIMEOUT" "$VENV/bin/schemathesis" --config-file "$config" \
        run "$url/openapi.json" \
        --max-examples "$MAX_EXAMPLES" --seed "$SEED" \
        --generation-database none --workers 2 --no-color \
        --request-timeout 10) | tee "$WORK/$name.out" || status=$?
    # "Test cases:" is followed by e.g. "283 generated, 3 found 3 unique failures, 2 skipped".
    local counts
    counts=$(grep -A1 '^Test cases:' "$WORK/$name.out" | tail -1 | xargs || true)
    if [ "$status" -eq 124 ]; then
        counts="timed out after ${TIMEOUT}s"
    fi
    if [ "$status" -ne 0 ]; then
        failed=1
        SUMMARY+=("FAIL  $name: ${counts:-exit $status} ($((SECONDS - began)) s)")
    else
        SUMMARY+=("ok    $name: ${counts:-no failures} ($((SECONDS - began)) s)")
    fi
}

# users-service as the demo admin, so the admin-only listing is exercised too.
run users-service "$USERS_URL" admin
run orders-service "$ORDERS_URL" demo
run auth-server "$AUTH_URL" demo

echo
echo "=== schemathesis $VERSION, at most $MAX_EXAMPLES examples per operation and phase, seed $SEED ==="
printf '%s\n' "${SUMMARY[@]}"
echo "total $((SECONDS - started)) s"
exit "$failed"
