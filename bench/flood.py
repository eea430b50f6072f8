#!/usr/bin/env python3
"""CI flood gate: every binary of services.toml on loopback, `hey -n 10000 -c 100` against every
operation of each binary's /openapi.json plus the document itself and /docs/. Exit 1 on any 5xx or
unanswered request, and before any load when a documented operation with a request body has no
body in the table below (a new endpoint cannot be skipped silently).

    python3 bench/flood.py --bin-dir target/debug      # what .ci/run runs

Needs `hey` (Debian package; installed with apt-get when missing). Only 127.0.0.1 is targeted.
"""
import argparse
import base64
import json
import os
import re
import sys
import urllib.parse
from collections import namedtuple

import browser
import harness

FORM = "application/x-www-form-urlencoded"
METHODS = ("get", "post", "put", "patch", "delete")

FloodRequest = namedtuple("FloodRequest", "service method path url content_type body headers")


class FloodError(RuntimeError):
    pass


def plan_requests(documents, bodies, path_values, default_headers, queries=None):
    """One request per documented operation, then /openapi.json and /docs/, per service.

    documents: [(service name, base URL, its OpenAPI document)]; bodies: {(method, path):
    (content type, body, headers replacing the default ones)}; path_values: {service name:
    {path parameter: value}}; queries: {(method, path): (query string, headers replacing the
    default ones)} for operations that take their input in the query. An operation with a
    requestBody and no entry in `bodies`, or a path parameter without a value, is a FloodError."""
    queries = queries or {}
    requests = []
    for name, base_url, document in documents:
        values = path_values.get(name, {})
        for path, item in sorted(document.get("paths", {}).items()):
            for method in sorted(m.upper() for m in item if m in METHODS):
                operation = item[method.lower()]
                if "requestBody" in operation and (method, path) not in bodies:
                    raise FloodError(f"{name}: no flood body for {method} {path}; add one to bench/flood.py")
                content_type, body, headers = bodies.get((method, path), (None, None, None))
                query, query_headers = queries.get((method, path), ("", None))
                if headers is None:
                    headers = query_headers

                def value(match):
                    if match.group(1) not in values:
                        raise FloodError(f"{name}: no value for {{{match.group(1)}}} in {method} {path}; "
                                         "add one to bench/flood.py")
                    return str(values[match.group(1)])

                concrete = re.sub(r"\{(\w+)\}", value, path)
                requests.append(FloodRequest(name, method, path, base_url + concrete + (f"?{query}" if query else ""),
                                             content_type, body, default_headers if headers is None else headers))
        for path in ("/openapi.json", "/docs/"):
            requests.append(FloodRequest(name, "GET", path, base_url + path, None, None, default_headers))
    return requests


def live_requests(services, secret):
    """The plan for a running stack (`services`: the started harness.Service of every binary, the
    auth server first): logs in, creates an order for the path values, fetches every OpenAPI
    document."""
    by_name = {service.name: service for service in services}
    auth, orders = by_name[harness.AUTH_SERVER], by_name["orders-service"]

    def login(username, password):
        status, body = harness.http("POST", auth.url + "/v1/auth/login", {"username": username, "password": password})
        if status != 200:
            raise FloodError(f"login as {username}: {status} {body[:200]!r}")
        return json.loads(body)

    admin = login("admin", "admin-password")
    admin_id = json.loads(base64.urlsafe_b64decode(admin["access_token"].split(".")[1] + "=="))["sub"]
    throwaway = login("demo", "demo-password")  # logged out and revoked by the flood
    bearer = {"Authorization": f"Bearer {admin['access_token']}"}
    client = harness.SERVICES.client_id()
    basic = {"Authorization": "Basic " + base64.b64encode(f"{client}:{secret}".encode()).decode()}
    status, body = harness.http("POST", orders.url + "/v1/orders", {"item": "flood", "quantity": 1}, bearer)
    if status != 201:
        raise FloodError(f"creating an order: {status} {body[:200]!r}")
    order_id = json.loads(body)["id"]
    browser_bodies, queries = browser_requests(auth)

    bodies = {  # (method, path) -> (content type, body, headers replacing the admin bearer, or None)
        ("POST", "/v1/users"): ("application/json", '{"username":"flood","password":"flood-password"}', None),
        # A wrong password: the throttle answers 429 after five failures, never hashing again.
        ("POST", "/v1/auth/login"): ("application/json", '{"username":"demo","password":"wrong-password"}', None),
        ("POST", "/v1/auth/logout"): (None, None, {"Authorization": f"Bearer {throwaway['access_token']}"}),
        ("POST", "/oauth2/token"): (FORM, "grant_type=client_credentials", basic),
        ("POST", "/oauth2/introspect"): (FORM, f"token={admin['access_token']}", basic),
        ("POST", "/oauth2/revoke"): (FORM, f"token={throwaway['refresh_token']}", basic),
        ("PATCH", "/v1/users/me"): ("application/json", '{"display_name":"Flood"}', None),
        ("POST", "/v1/orders"): ("application/json", '{"item":"flood","quantity":1}', None),
    }
    bodies.update(browser_bodies)
    # No upstream provider is registered in the flood's stack, and the requests carry no state or
    # client: /federation/{name}/... answers its 400 pages (a registered provider would make the
    # start a 502, its upstream being unreachable).
    path_values = {"users-service": {"id": admin_id}, "orders-service": {"id": order_id},
                   harness.AUTH_SERVER: {"name": "flood-unregistered"}}
    documents = []
    for service in services:
        status, body = harness.http("GET", service.url + "/openapi.json")
        if status != 200:
            raise FloodError(f"{service.name}: GET /openapi.json answered {status}")
        documents.append((service.name, service.url, json.loads(body)))
    return plan_requests(documents, bodies, path_values, bearer, queries)


# demo-seed's public, first-party browser clients (auth-server/src/cli.rs). The tokens come from
# swagger-ui's, which are bearer tokens: hey repeats one set of headers, and demo-web's tokens are
# DPoP-bound, each call needing a new proof.
DEMO_WEB = browser.Client("demo-web", "http://127.0.0.1:8083/callback", "openid profile profile:read")
SWAGGER_UI = browser.Client("swagger-ui", "http://127.0.0.1:8080/docs/oauth2-redirect.html",
                            "openid profile profile:read")


def browser_requests(auth):
    """Bodies and queries for the hosted-login operations, each on its busiest path: the demo
    user's browser session (authorize and consent answer 302 with a new code each time: a
    database write), the form posts with that browser's CSRF cookie (login with a wrong
    password: 401, then 429 from the throttle, as /v1/auth/login), userinfo with a token that
    has `openid`, and logout with the id_token and CSRF token of a second session, which the
    first request ends (the rest find it ended)."""
    sessions = []
    for _ in range(2):
        agent = browser.Agent(auth.url)
        try:
            code, verifier = browser.log_in(agent, SWAGGER_UI, "demo", "demo-password", auth.url)
            tokens = browser.redeem(agent, SWAGGER_UI, code, verifier)
        except browser.FlowError as error:
            raise FloodError(f"browser login as demo: {error}") from None
        finally:
            agent.close()
        sessions.append((agent.jar, tokens))
    (jar, tokens), (ended_jar, ended_tokens) = sessions
    csrf = jar.cookies[browser.session_cookie_name(auth.url) + "_csrf"]
    ended_csrf = ended_jar.cookies[browser.session_cookie_name(auth.url) + "_csrf"]
    _, challenge = browser.pkce_pair()
    authorize = browser.authorize_path(DEMO_WEB, challenge, "flood-state", "flood-nonce").split("?", 1)[1]
    cookie = {"Cookie": jar.header()}
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    logout = urllib.parse.urlencode({"id_token_hint": ended_tokens["id_token"], "post_logout_redirect_uri":
                                     "http://127.0.0.1:8083/", "state": "flood-state"})
    bodies = {
        ("POST", "/oauth2/authorize"): (FORM, authorize, cookie),
        ("POST", "/oauth2/consent"): (FORM, f"{authorize}&csrf_token={csrf}&decision=allow", cookie),
        ("POST", "/oauth2/login"): (FORM, f"{authorize}&csrf_token={csrf}&username=demo&password=wrong-password", cookie),
        ("POST", "/oauth2/logout"): (FORM, f"csrf_token={ended_csrf}&client_id=demo-web&"
                                     "post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A8083%2F", {"Cookie": ended_jar.header()}),
        ("POST", "/oauth2/userinfo"): (FORM, f"access_token={tokens['access_token']}", {}),
    }
    queries = {
        ("GET", "/oauth2/authorize"): (authorize, cookie),
        ("GET", "/oauth2/logout"): (logout, {"Cookie": ended_jar.header()}),
        ("GET", "/oauth2/userinfo"): ("", bearer),
    }
    return bodies, queries


def flood(count=10_000, concurrency=100, out=sys.stdout):
    """Every endpoint of every binary, `count` requests each at `concurrency`. Prints one line per
    endpoint; returns (failures = 5xx + unanswered, endpoints)."""
    secret = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
    started = harness.start_stack(seed_secret=secret)
    services = [service for service, _ in started]
    failures = endpoints = 0
    try:
        for request in live_requests(services, secret):
            result = harness.hey(request.method, request.url, count, concurrency, request.content_type, request.body,
                                 request.headers)
            failures += result.fivexx + result.unanswered
            endpoints += 1
            spread = ", ".join(f"{status}: {n}" for status, n in result.statuses.items())
            mark = "FAIL" if result.fivexx or result.unanswered else "ok  "
            print(f"{mark} {request.service:15} {request.method:5} {request.path:45} {spread}"
                  + (f"; unanswered: {result.unanswered}" if result.unanswered else ""), file=out, flush=True)
            for service in services:
                if service.process.poll() is not None:
                    raise FloodError(f"{service.name} exited (status {service.process.returncode}) during the flood")
    finally:
        for service in services:
            service.stop()
    return failures, endpoints


def flood_row(failures, endpoints, count=10_000, concurrency=100):
    """The results-table row of a flood (bench/run.py's no5xx section)."""
    return harness.Row(f"{count:,} requests at concurrency {concurrency} on every endpoint: 5xx or unanswered",
                       f"**{failures}** of {endpoints * count:,} requests ({endpoints} endpoints)", harness.at_most(0, "0"),
                       f"hey -n {count} -c {concurrency} per documented operation, /openapi.json and /docs/ of every "
                       "binary (`bench/flood.py`)", failures)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", default=os.path.join(harness.target_dir(), "debug"),
                        help=f"where {', '.join(harness.SERVICE_BINARIES)} are (default: target/debug)")
    parser.add_argument("-n", "--requests", type=int, default=10_000, help="requests per endpoint (default 10000)")
    parser.add_argument("-c", "--concurrency", type=int, default=100, help="concurrent requests (default 100)")
    args = parser.parse_args(argv)
    if args.requests <= 0 or args.concurrency <= 0 or args.requests % args.concurrency:
        parser.error("--requests must be a positive multiple of --concurrency")
    harness.set_bin_dir(args.bin_dir)
    harness.require_binaries(harness.BIN_DIR, harness.SERVICE_BINARIES)
    harness.ensure_tools(["hey"])
    with harness.session(prefix="jwt-flood-"):
        try:
            failures, endpoints = flood(args.requests, args.concurrency)
        except FloodError as error:
            sys.exit(f"FAILED: {error}")
    total = endpoints * args.requests
    print(f"flood: {endpoints} endpoints, {total:,} requests, {failures} with a 5xx or no answer")
    if failures:
        sys.exit(f"FAILED: {failures} of {total:,} requests got a 5xx or no answer")


if __name__ == "__main__":
    main()
