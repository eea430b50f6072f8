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
from collections import namedtuple

import harness

FORM = "application/x-www-form-urlencoded"
METHODS = ("get", "post", "put", "patch", "delete")

FloodRequest = namedtuple("FloodRequest", "service method path url content_type body headers")


class FloodError(RuntimeError):
    pass


def plan_requests(documents, bodies, path_values, default_headers):
    """One request per documented operation, then /openapi.json and /docs/, per service.

    documents: [(service name, base URL, its OpenAPI document)]; bodies: {(method, path):
    (content type, body, headers replacing the default ones)}; path_values: {service name:
    {path parameter: value}}. An operation with a requestBody and no entry in `bodies`, or a path
    parameter without a value, is a FloodError."""
    requests = []
    for name, base_url, document in documents:
        values = path_values.get(name, {})
        for path, item in sorted(document.get("paths", {}).items()):
            for method in sorted(m.upper() for m in item if m in METHODS):
                operation = item[method.lower()]
                if "requestBody" in operation and (method, path) not in bodies:
                    raise FloodError(f"{name}: no flood body for {method} {path}; add one to bench/flood.py")
                content_type, body, headers = bodies.get((method, path), (None, None, None))

                def value(match):
                    if match.group(1) not in values:
                        raise FloodError(f"{name}: no value for {{{match.group(1)}}} in {method} {path}; "
                                         "add one to bench/flood.py")
                    return str(values[match.group(1)])

                concrete = re.sub(r"\{(\w+)\}", value, path)
                requests.append(FloodRequest(name, method, path, base_url + concrete, content_type, body,
                                             headers or default_headers))
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

    bodies = {  # (method, path) -> (content type, body, headers replacing the admin bearer)
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
    path_values = {"users-service": {"id": admin_id}, "orders-service": {"id": order_id}}
    documents = []
    for service in services:
        status, body = harness.http("GET", service.url + "/openapi.json")
        if status != 200:
            raise FloodError(f"{service.name}: GET /openapi.json answered {status}")
        documents.append((service.name, service.url, json.loads(body)))
    return plan_requests(documents, bodies, path_values, bearer)


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
