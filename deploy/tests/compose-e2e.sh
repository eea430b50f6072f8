#!/usr/bin/env bash
# Deploy test: the real images under docker compose, the user scenario
# against the published ports, the demo web app as a browser sees it (its page, policy and
# config, CORS, the issuer's one name for the host and the containers, a whole authorization code
# login with PKCE as client demo-web, and one through "Continue with Acme ID", the second auth
# server), then the point of the whole design: stop the auth server
# and show that both services keep serving, also after a service restart during the outage (key
# cache on its DATA_DIR volume).
#
#   deploy/tests/compose-e2e.sh [--bin-dir DIR] [--skip-build] [--requests N]
#
#   --bin-dir DIR   prebuilt static binaries (else build-images.sh runs the crt-static cargo build)
#   --skip-build    use the jwt-platform/*:local images already present
#   --requests N    requests per outage phase (default 200)
# Env: COMPOSE (default docker-compose; "docker compose" for v2), KEEP_UP=1 leaves the stack
#      running for inspection, AUTH_HOST_PORT/USERS_HOST_PORT/ORDERS_HOST_PORT/DEMO_WEB_HOST_PORT
#      (8080-8083), AUTH_MANAGEMENT_HOST_PORT/USERS_MANAGEMENT_HOST_PORT/ORDERS_MANAGEMENT_HOST_PORT
#      (9080-9082).
#
# Needs: docker, compose, curl, python3 (JSON, the request loop, and bench/browser.py's scripted
# browser for the login), root for build-images.sh.
# Exit status: 0 only if every check passed; the stack is always removed (down -v) unless KEEP_UP=1.
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_ROOT="$(cd "$DEPLOY_DIR/.." && pwd)"
COMPOSE="${COMPOSE:-docker-compose}"
PROJECT=jwtdemo
BIN_DIR="${BIN_DIR:-}"
SKIP_BUILD=0
REQUESTS=200
export JWT_IMAGE_TAG="${JWT_IMAGE_TAG:-local}"
AUTH="http://127.0.0.1:${AUTH_HOST_PORT:-8080}"
USERS="http://127.0.0.1:${USERS_HOST_PORT:-8081}"
ORDERS="http://127.0.0.1:${ORDERS_HOST_PORT:-8082}"
WEB="http://127.0.0.1:${DEMO_WEB_HOST_PORT:-8083}"
# The issuer as docker-compose.yml sets it: one name for the host (curl and browsers resolve
# *.localhost to loopback) and for the containers (a network alias of auth-server).
ISSUER="http://auth.localhost:${AUTH_HOST_PORT:-8080}"
# Acme ID, the second auth server: the upstream provider behind "Continue with Acme ID".
ACME="http://127.0.0.1:${ACME_HOST_PORT:-8090}"
ACME_ISSUER="http://acme.localhost:${ACME_HOST_PORT:-8090}"
# What `auth-server demo-seed` registers for the client demo-web (on the default port only).
DEMO_WEB_REDIRECT_URI=http://127.0.0.1:8083/callback
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
# dpop_http METHOD URL TOKEN [JSON-BODY] -> like http, for a DPoP-bound token: `Authorization: DPoP`
# and a fresh proof for this request, signed by the key in $WORK/dpop.pem (bench/browser.py).
dpop_http() {
    local method="$1" url="$2" token="$3" body="${4:-}" proof args code
    proof="$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import browser; print(browser.DpopKey.load(sys.argv[2]).proof(sys.argv[3], sys.argv[4], sys.argv[5]))' \
        "$REPO_ROOT/bench" "$WORK/dpop.pem" "$method" "$url" "$token" 2>/dev/null)" || proof=none
    args=(-sS -o "$WORK/body" -w '%{http_code}' --max-time 10 -X "$method"
        -H "Authorization: DPoP $token" -H "DPoP: $proof")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
    rm -f "$WORK/body"
    code="$(curl "${args[@]}" "$url" 2>/dev/null)" || true
    echo "${code:-000}"
    cat "$WORK/body" 2>/dev/null || true
}
# response_header URL NAME [CURL-ARGS...] -> the value of header NAME (case-insensitive), empty if
# absent or nothing answered.
response_header() {
    local url="$1" name="$2"
    shift 2
    curl -sS -o /dev/null -D - --max-time 10 "$@" "$url" 2>/dev/null \
        | tr -d '\r' | awk -v n="$(tr '[:upper:]' '[:lower:]' <<<"$name")" \
            'BEGIN { FS = ": " } tolower($1) == n { sub(/^[^:]*: /, ""); print; exit }' || true
}
# preflight URL ORIGIN METHOD HEADERS -> Access-Control-Allow-Origin of the CORS preflight.
preflight() {
    response_header "$1" Access-Control-Allow-Origin -X OPTIONS -H "Origin: $2" \
        -H "Access-Control-Request-Method: $3" -H "Access-Control-Request-Headers: $4"
}
expect_equal() { # description expected actual
    if [ "$3" = "$2" ]; then ok "$1: ${3:-(none)}"; else fail "$1: got '${3}', expected '${2}'"; fi
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
IMAGES=(jwt-platform/postgres:15 "jwt-platform/auth-server:$JWT_IMAGE_TAG" \
    "jwt-platform/users-service:$JWT_IMAGE_TAG" "jwt-platform/orders-service:$JWT_IMAGE_TAG" \
    "jwt-platform/demo-web:$JWT_IMAGE_TAG")
for img in "${IMAGES[@]}"; do
    docker image inspect "$img" >/dev/null 2>&1 || { log "missing image $img"; exit 1; }
done

# ---- up ------------------------------------------------------------------------------------------
compose down -v --remove-orphans >/dev/null 2>&1 || true   # leftovers of an interrupted run
log "compose up (project $PROJECT)"
T_UP=$(now)
if ! compose up -d --no-build; then fail "compose up"; exit 1; fi
for s in postgres auth-server acme-id users-service orders-service demo-web; do
    if wait_healthy "$s" 180; then ok "$s healthy"; else fail "$s never became healthy"; exit 1; fi
done
UP_SECONDS="$(since "$T_UP")"
log "all services healthy ${UP_SECONDS}s after 'up'"
seed_state="$(docker inspect --format '{{.State.Status}}:{{.State.ExitCode}}' "$(compose ps -a -q seed 2>/dev/null || compose ps -q seed)" 2>/dev/null || echo missing)"
if [ "$seed_state" = "exited:0" ]; then ok "seed job exited 0"; else fail "seed job state $seed_state"; fi
acme_seed_state="$(docker inspect --format '{{.State.Status}}:{{.State.ExitCode}}' "$(compose ps -a -q acme-seed 2>/dev/null || compose ps -q acme-seed)" 2>/dev/null || echo missing)"
if [ "$acme_seed_state" = "exited:0" ]; then ok "acme-seed job exited 0"; else fail "acme-seed job state $acme_seed_state"; fi

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

# ---- the demo web app, as a browser sees it ------------------------------------------------------
for path in /healthz /readyz /config.json; do
    expect "GET $WEB$path" 200 "$(http GET "$WEB$path")"
done
expect "GET $WEB/ (the page)" 200 "$(http GET "$WEB/")"
expect "GET $WEB/callback (the same page)" 200 "$(http GET "$WEB/callback")"
policy="$(response_header "$WEB/" Content-Security-Policy)"
connect_src="$(tr ';' '\n' <<<"$policy" | sed -n 's/^ *connect-src //p')"
for origin in "$ISSUER" "$USERS" "$ORDERS"; do
    if [[ " $connect_src " == *" $origin "* ]]; then ok "the page's connect-src lists $origin"
    else fail "the page's connect-src lacks $origin: '$policy'"; fi
done
config="$(body_of "$(http GET "$WEB/config.json")")"
expect_equal "config.json issuer" "$ISSUER" "$(json_get issuer <<<"$config")"
expect_equal "config.json users_service_url" "$USERS" "$(json_get users_service_url <<<"$config")"
expect_equal "config.json orders_service_url" "$ORDERS" "$(json_get orders_service_url <<<"$config")"
expect_equal "config.json client_id" demo-web "$(json_get client_id <<<"$config")"
expect_equal "config.json redirect_uri" "$WEB/callback" "$(json_get redirect_uri <<<"$config")"

# The issuer's one name: the auth server calls itself by it, the host reaches it (curl resolves
# *.localhost to loopback, as browsers do), and users-service, which verified the token above with
# keys fetched from it, reaches it inside the network.
r="$(http GET "$AUTH/.well-known/openid-configuration")"
expect_equal "discovery issuer (what the browser is told)" "$ISSUER" "$(body_of "$r" | json_get issuer)"
expect "GET $ISSUER/.well-known/openid-configuration from the host" 200 \
    "$(http GET "$ISSUER/.well-known/openid-configuration")"
expect "GET $ISSUER/.well-known/jwks.json from the host" 200 "$(http GET "$ISSUER/.well-known/jwks.json")"

# CORS: the demo app's origin, and no other.
for origin in "$WEB" http://evil.example; do
    want="$origin"; [ "$origin" = "$WEB" ] || want=""
    expect_equal "preflight from $origin to users-service GET /v1/users/me" "$want" \
        "$(preflight "$USERS/v1/users/me" "$origin" GET authorization)"
    expect_equal "preflight from $origin to orders-service POST /v1/orders" "$want" \
        "$(preflight "$ORDERS/v1/orders" "$origin" POST authorization,content-type)"
    expect_equal "preflight from $origin to auth-server POST /oauth2/token" "$want" \
        "$(preflight "$ISSUER/oauth2/token" "$origin" POST content-type)"
done
# Swagger UI on users-service (its origin) posts the code to the token endpoint too.
expect_equal "preflight from $USERS (its Swagger UI) to auth-server POST /oauth2/token" "$USERS" \
    "$(preflight "$ISSUER/oauth2/token" "$USERS" POST content-type)"

# A whole login as the demo app does it: GET /oauth2/authorize as the public client demo-web with
# PKCE, the hosted login form posted back with its CSRF cookie and hidden inputs, 302 to the
# callback with code, state and iss; the code exchanged at the token endpoint with client_id alone
# and a DPoP proof (demo-web is registered with --dpop), so the token is bound to a key kept in
# $WORK/dpop.pem, which every later call with it proves.
# bench/browser.py is the scripted browser; it connects to 127.0.0.1 and names the issuer's host
# in Host, as a browser does with *.localhost (Python itself asks the system resolver, which need
# not know *.localhost).
t0=$(now)
if WEB_TOKEN="$(python3 - "$REPO_ROOT/bench" "$AUTH" "$ISSUER" "$DEMO_WEB_REDIRECT_URI" \
    "$(json_get scope <<<"$config")" "$WORK/dpop.pem" 2>"$WORK/login.err" <<'PY'
import http.client, sys, urllib.parse
sys.path.insert(0, sys.argv[1])
import browser  # bench/browser.py

auth, issuer, redirect_uri, scope, key_file = sys.argv[2:7]
key = browser.DpopKey()
key.save(key_file)
issuer_host = urllib.parse.urlsplit(issuer).netloc

class IssuerConnection(http.client.HTTPConnection):
    def putrequest(self, method, url, skip_host=False, skip_accept_encoding=False):
        super().putrequest(method, url, skip_host=True, skip_accept_encoding=skip_accept_encoding)
        self.putheader("Host", issuer_host)

agent = browser.Agent(auth)
agent.connection = IssuerConnection(agent.host, agent.port, timeout=agent.timeout)
client = browser.Client("demo-web", redirect_uri, scope)
code, verifier = browser.log_in(agent, client, "demo", "demo-password", issuer)
tokens = browser.redeem(agent, client, code, verifier, dpop_key=key, issuer=issuer)
print(tokens["access_token"])
PY
)"; then
    ok "authorization code login as demo through the hosted login page, code exchanged for a DPoP-bound token ($(since "$t0")s)"
else
    fail "authorization code login as client demo-web: $(tail -n 5 "$WORK/login.err")"
    WEB_TOKEN=none
fi
r="$(dpop_http GET "$USERS/v1/users/me" "$WEB_TOKEN")"
expect "GET users-service /v1/users/me with the code-flow token and a DPoP proof" 200 "$r"
expect_equal "the code-flow token's profile" demo "$(body_of "$r" | json_get username)"
expect "POST orders-service /v1/orders with the code-flow token and a DPoP proof" 201 \
    "$(dpop_http POST "$ORDERS/v1/orders" "$WEB_TOKEN" '{"item":"demo-web-book","quantity":1}')"
# RFC 9449 §7.2: the same token without the key is worth nothing.
expect "the DPoP-bound token sent as a bearer token is refused" 401 "$(http GET "$USERS/v1/users/me" "$WEB_TOKEN")"
expect "the DPoP-bound token without a proof is refused" 401 \
    "$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: DPoP $WEB_TOKEN" "$USERS/v1/users/me")"
expect_equal "a GET from the demo app's origin may be read by it" "$WEB" \
    "$(response_header "$USERS/v1/users/me" Access-Control-Allow-Origin -H "Origin: $WEB" \
        -H "Authorization: DPoP $WEB_TOKEN")"

# "Continue with Acme ID": our login page's link, Acme's login form as acme-user, back through our
# callback to demo-web's redirect URI with a code; the account is acme:acme-user, its tokens say
# idp "acme", and users-service takes them. Two scripted browsers' connections (one per server,
# each naming its issuer's host), one cookie jar each, as a browser keeps one per site.
t0=$(now)
if FED_TOKEN="$(python3 - "$REPO_ROOT/bench" "$AUTH" "$ISSUER" "$ACME" "$ACME_ISSUER" "$DEMO_WEB_REDIRECT_URI" \
    "$(json_get scope <<<"$config")" "$WORK/dpop.pem" 2>"$WORK/federated.err" <<'PY'
import html, http.client, os, re, sys, urllib.parse
sys.path.insert(0, sys.argv[1])
import browser  # bench/browser.py

auth, issuer, acme, acme_issuer, redirect_uri, scope, key_file = sys.argv[2:9]
# demo-web is registered with --dpop: the token is bound to the key the calls below prove.
key = browser.DpopKey.load(key_file) if os.path.exists(key_file) else browser.DpopKey()
key.save(key_file)

def agent_for(base_url, issuer_url):
    host = urllib.parse.urlsplit(issuer_url).netloc
    class IssuerConnection(http.client.HTTPConnection):
        def putrequest(self, method, url, skip_host=False, skip_accept_encoding=False):
            super().putrequest(method, url, skip_host=True, skip_accept_encoding=skip_accept_encoding)
            self.putheader("Host", host)
    agent = browser.Agent(base_url)
    agent.connection = IssuerConnection(agent.host, agent.port, timeout=agent.timeout)
    return agent

def path_of(location, origin):
    parts = urllib.parse.urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == origin, f"{location[:120]} is not on {origin}"
    return parts.path + ("?" + parts.query if parts.query else "")

ours, upstream = agent_for(auth, issuer), agent_for(acme, acme_issuer)
client = browser.Client("demo-web", redirect_uri, scope)
verifier, challenge = browser.pkce_pair()
page = ours.request("GET", browser.authorize_path(client, challenge, "fed-state", "fed-nonce"))
link = re.search(r'<a class="provider" href="([^"]+)">Continue with Acme ID</a>', page.body)
assert page.status == 200 and link, f"no Continue with Acme ID link ({page.status})"
start = ours.request("GET", html.unescape(link.group(1)))
assert start.status == 302, f"start: {start.status} {start.body[:200]}"
login = upstream.request("GET", path_of(start.headers["Location"], acme_issuer))
form = browser.form_with_action(login.body, "/oauth2/login")
assert login.status == 200 and form is not None, f"Acme login page: {login.status}"
fields = [(name, value) for name, value in form.fields if name not in ("username", "password")]
back = upstream.request("POST", "/oauth2/login", fields + [("username", "acme-user"), ("password", "acme-password")])
assert back.status == 302, f"Acme login: {back.status} {back.body[:200]}"
to_app = ours.request("GET", path_of(back.headers["Location"], issuer))
# A page that moves on by itself (meta refresh), outside Acme's form's redirect chain.
refresh = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', to_app.body)
location = html.unescape(refresh.group(1)) if refresh else ""
params = browser.location_params(location)
assert to_app.status == 200 and browser.redirect_target(location) == redirect_uri and "code" in params, \
    f"callback: {to_app.status} {to_app.body[:300]}"
tokens = browser.redeem(ours, client, params["code"], verifier, dpop_key=key, issuer=issuer)
print(tokens["access_token"])
PY
)"; then
    ok "federated login through Acme ID, code exchanged ($(since "$t0")s)"
else
    fail "federated login through Acme ID: $(tail -n 5 "$WORK/federated.err")"
    FED_TOKEN=none
fi
r="$(dpop_http GET "$USERS/v1/users/me" "$FED_TOKEN")"
expect "GET users-service /v1/users/me with the federated token and a DPoP proof" 200 "$r"
expect_equal "the federated account's name" "acme:acme-user" "$(body_of "$r" | json_get username)"
expect_equal "the federated token's idp" acme "$(python3 -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))).get("idp", ""))' "$FED_TOKEN" 2>/dev/null || true)"

# ---- auth-server outage -----------------------------------------------------------------------
log "stopping auth-server"
compose stop auth-server >/dev/null 2>&1
expect "auth-server is really down (login)" 000 "$(http POST "$AUTH/v1/auth/login" "" "{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\"}")"
# DESIGN.md "Demo web app": a logged-in tab keeps working without the auth server.
expect "the demo app is served with auth-server down" 200 "$(http GET "$WEB/config.json")"
expect "the code-flow token works with auth-server down (orders-service)" 200 \
    "$(dpop_http GET "$ORDERS/v1/orders" "$WEB_TOKEN")"

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
for img in "${IMAGES[@]}"; do
    log "  image $(printf '%-36s' "$img") $(docker image inspect --format '{{.Size}}' "$img" | awk '{ printf "%.1f MB", $1 / 1000000 }')"
done

if [ "$FAILS" -eq 0 ]; then log "PASS"; else log "$FAILS check(s) failed"; fi
# Plain summary line (the form CI logs are read for).
echo "compose-e2e: $PASSES passed, $FAILS failed"
SUMMARY_DONE=1
[ "$FAILS" -eq 0 ]
