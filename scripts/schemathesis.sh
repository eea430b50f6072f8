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

browser_session() { # auth-url -> shell assignments: the demo user's browser session (cookies) and
    # an access token with `openid`, through the hosted login as demo-seed's public client
    # swagger-ui (bench/browser.py), whose tokens are bearer tokens that schemathesis can repeat
    # (demo-web's are DPoP-bound, a proof per request); a CSRF cookie name and value for the page
    # forms; and demo-web's redirect URI, which the authorize and consent operations are given.
    "$PYTHON" - "$1" "$ROOT/bench" <<'EOF'
import secrets, shlex, sys
sys.path.insert(0, sys.argv[2])
import browser
issuer = sys.argv[1]
client = browser.Client("demo-web", "http://127.0.0.1:8083/callback", "openid profile profile:read")
bearer_client = browser.Client("swagger-ui", "http://127.0.0.1:8080/docs/oauth2-redirect.html",
                               "openid profile profile:read")
agent = browser.Agent(issuer)
code, verifier = browser.log_in(agent, bearer_client, "demo", "demo-password", issuer)
tokens = browser.redeem(agent, bearer_client, code, verifier)
csrf_name = browser.session_cookie_name(issuer) + "_csrf"
print(f"OPENID_TOKEN={shlex.quote(tokens['access_token'])} SESSION_COOKIES={shlex.quote(agent.jar.header())}")
print(f"CSRF_NAME={shlex.quote(csrf_name)} CSRF_VALUE={shlex.quote(secrets.token_urlsafe(32))}")
print(f"REDIRECT_URI={shlex.quote(client.redirect_uri)}")
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
# The hosted-login operations get what a browser has, so that generated input reaches past the
# first check instead of stopping there (DESIGN.md "Authorization endpoint and hosted login"):
#   /oauth2/authorize  client_id and redirect_uri fixed to demo-seed's demo-web: an unknown
#       client or redirect URI is a 400 page by contract (never a redirect to an unverified
#       URI, RFC 9700 §4.11), and no generator finds a registered pair; every other parameter is
#       generated, and the demo user's browser session cookie is sent, so the answers are the
#       error redirects, the login page and codes.
#   /oauth2/login, /oauth2/consent, /oauth2/logout (POST)  a CSRF cookie and the same value as
#       `csrf_token` (double submit): without them every form post is the 403 page. login and
#       consent also get demo-web's client_id and redirect_uri; login's credentials are
#       generated (the throttle answers 429 after a few). Their negative_data_rejection is off:
#       the pending authorization request in the form is validated first, and once client and
#       redirect URI are known its errors are redirects (RFC 6749 §4.1.2.1, DESIGN.md), so a form
#       without `username` or `decision` and with, say, no `response_type` is a 302 with
#       `error=invalid_request`, which this check counts as accepting invalid input.
#   /federation/{name}/start  the same client_id and redirect_uri as /oauth2/authorize (it takes
#       the same request); a generated provider name is unknown, a 404 page.
#   /federation/{name}/callback  positive_data_acceptance off: a callback is only valid with the
#       `state` of a login this server started, so any generated one (or none) is a 400 page by
#       contract (DESIGN.md "Upstream providers": a state mismatch or a replayed callback gets
#       4xx); the other checks still run.
#   /oauth2/userinfo  an access token with `openid` from the code flow (a /v1/auth/login token
#       has no `openid`: 403 insufficient_scope for everything).
# The first [[operations]] entry matching an operation decides its headers and parameters, so
# these come before the one for every /oauth2/ path.
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
        local client="\"query.client_id\" = \"demo-web\", \"query.redirect_uri\" = \"$REDIRECT_URI\""
        client+=", \"body.client_id\" = \"demo-web\", \"body.redirect_uri\" = \"$REDIRECT_URI\""
        cat >>"$config" <<EOF

[[operations]]
include-path = "/oauth2/authorize"
headers = { Authorization = "Basic $basic", Cookie = "$SESSION_COOKIES" }
parameters = { $client }

[[operations]]
include-path = "/federation/{name}/start"
parameters = { "query.client_id" = "demo-web", "query.redirect_uri" = "$REDIRECT_URI" }

[[operations]]
include-path = "/federation/{name}/callback"
checks.positive_data_acceptance.enabled = false

[[operations]]
include-path-regex = "^/oauth2/(login|consent)\$"
headers = { Authorization = "Basic $basic", Cookie = "$CSRF_NAME=$CSRF_VALUE" }
parameters = { $client, "body.csrf_token" = "$CSRF_VALUE" }
checks.negative_data_rejection.enabled = false

[[operations]]
include-path = "/oauth2/logout"
include-method = "POST"
headers = { Authorization = "Basic $basic", Cookie = "$CSRF_NAME=$CSRF_VALUE" }
parameters = { "body.csrf_token" = "$CSRF_VALUE" }

[[operations]]
include-path = "/oauth2/userinfo"
headers = { Authorization = "Bearer $OPENID_TOKEN" }

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
    if [ "$name" = "$AUTH_NAME" ]; then
        eval "$(browser_session "$AUTH_URL")"
    fi
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
