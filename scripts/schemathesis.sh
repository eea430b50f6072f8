#!/usr/bin/env bash
# Property-based API testing of every binary of services.toml from its own OpenAPI document
# with Schemathesis: every documented operation is called with generated valid and invalid input,
# and every response is checked against the document (status codes, content types, headers,
# schemas) and against the platform's rules (no 5xx, invalid input refused, auth enforced).
#
#   scripts/schemathesis.sh
#
# Installs Schemathesis from PyPI into a virtualenv under the cache dir (reused when present),
# builds the debug binaries as the test step does (a no-op when they are current), starts every
# service of services.toml on free loopback ports with temporary data dirs (bench/stack.py, the
# load harness's launcher), logs in as the demo user and runs Schemathesis against each in turn:
# the resource services first, in the file's order, the auth server last (its run logs out and
# trips the login throttle, which would spoil the others' tokens). Prints one summary line per
# binary; exits non-zero if any check failed. The processes are always stopped, whatever happens.
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
STACK_PID=
cleanup() {
    local status=$?
    if [ -n "$STACK_PID" ]; then
        kill "$STACK_PID" 2>/dev/null || true
        wait "$STACK_PID" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -n "${KEEP_LOGS:-}" ]; then
        echo "logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

# Every service of services.toml, the auth server seeded with the demo accounts and its client;
# RUST_LOG (default warn) goes to the services, their output to $WORK/NAME.log.
"$PYTHON" "$ROOT/bench/stack.py" --bin-dir "$TARGET" --state "$WORK/stack.json" --log-dir "$WORK" &
STACK_PID=$!
until [ -s "$WORK/stack.json" ]; do
    if ! kill -0 "$STACK_PID" 2>/dev/null; then
        wait "$STACK_PID" || true
        STACK_PID=
        for log in "$WORK"/*.log; do
            [ -e "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
        done
        echo "the services did not start" >&2
        exit 1
    fi
    sleep 0.2
done
# AUTH_NAME, AUTH_URL, CLIENT_ID, CLIENT_SECRET, and RESOURCES: "name url" per resource service.
eval "$("$PYTHON" - "$WORK/stack.json" <<'EOF'
import json, shlex, sys
with open(sys.argv[1]) as f:
    state = json.load(f)
auth, *resources = state["services"]
print(f"AUTH_NAME={shlex.quote(auth['name'])} AUTH_URL={shlex.quote(auth['url'])}")
print(f"CLIENT_ID={shlex.quote(state['client_id'])} CLIENT_SECRET={shlex.quote(state['client_secret'])}")
print("RESOURCES=" + shlex.quote("\n".join(f"{service['name']} {service['url']}" for service in resources)))
EOF
)"

# --- the runs ------------------------------------------------------------------------------
# The configuration of one run: every check (what `--checks all` selects), the bearer token for
# every request, except the OAuth endpoints, which authenticate clients with HTTP Basic: there
# the credentials of the client of services.toml (orders-service's) are sent instead, so client
# credentials, revocation and introspection are exercised past client authentication.
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
    basic=$(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)
    cat >"$config" <<EOF
headers = { Authorization = "Bearer $2" }

[checks]
enabled = true
EOF
    if [ "$1" = "$AUTH_NAME" ]; then
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

# The resource services as the demo user, except users-service: as the demo admin, so its
# admin-only listing is exercised too. The auth server last.
while read -r name url; do
    user=demo
    [ "$name" = users-service ] && user=admin
    run "$name" "$url" "$user" </dev/null
done <<<"$RESOURCES"
run "$AUTH_NAME" "$AUTH_URL" demo

echo
echo "=== schemathesis $VERSION, at most $MAX_EXAMPLES examples per operation and phase, seed $SEED ==="
printf '%s\n' "${SUMMARY[@]}"
echo "total $((SECONDS - started)) s"
exit "$failed"
