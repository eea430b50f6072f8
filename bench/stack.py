#!/usr/bin/env python3
"""Runs every binary of services.toml on free loopback ports, the auth server seeded with the demo
accounts and the client of services.toml, until SIGTERM or Ctrl-C; then stops them and removes
their data. What scripts/schemathesis.sh tests against.

    python3 bench/stack.py --bin-dir target/debug --state STATE.json [--log-dir DIR]

Once every service is ready it writes STATE.json (atomically):
    {"services": [{"name": ..., "url": ..., "role": "auth-server" | "resource"}, ...],
     "client_id": ..., "client_secret": ...}
the auth server first, then the resource services in the file's order. It exits non-zero when a
service fails to start or exits on its own. RUST_LOG (default warn) is passed to the services.
"""
import argparse
import json
import os
import secrets
import sys
import time

import harness


def state(started, secret):
    """The STATE.json document for the started services."""
    return {
        "services": [{"name": service.name, "url": service.url, "role": harness.SERVICES.get(service.name).role}
                     for service, _ in started],
        "client_id": harness.SERVICES.client_id(),
        "client_secret": secret,
    }


def write_atomically(path, text):
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(text)
    os.replace(temporary, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", default=os.path.join(harness.target_dir(), "debug"),
                        help="where the binaries are (default: target/debug)")
    parser.add_argument("--state", required=True, help="where to write the URLs and the client secret")
    parser.add_argument("--log-dir", help="write each service's output to LOG_DIR/NAME.log")
    args = parser.parse_args(argv)
    harness.set_bin_dir(args.bin_dir)
    harness.require_binaries(harness.BIN_DIR, harness.SERVICE_BINARIES)
    secret = secrets.token_urlsafe(32)
    with harness.session(prefix="jwt-stack-"):
        started = harness.start_stack(seed_secret=secret, log_dir=args.log_dir,
                                      rust_log=os.environ.get("RUST_LOG", "warn"))
        write_atomically(args.state, json.dumps(state(started, secret)) + "\n")
        while True:
            for service, _ in started:
                if service.process.poll() is not None:
                    sys.exit(f"stack: {service.name} exited (status {service.process.returncode})")
            time.sleep(0.5)


if __name__ == "__main__":
    main()
