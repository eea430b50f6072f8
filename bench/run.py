#!/usr/bin/env python3
"""Load harness: release binaries on loopback, figures as ratios against baselines measured in
the same run (these machines are shared and noisy, so absolute numbers mean little).

    python3 bench/run.py            # everything, writes BENCHMARKS.md
    python3 bench/run.py --quick    # shorter runs, same table

Needs `wrk` (Debian package; installed with apt-get when missing). Only 127.0.0.1 is targeted.
Nothing here is asserted in CI: performance is reported, not tested.
"""
import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
CORES = os.cpu_count() or 2


def sh(*args, **kwargs):
    return subprocess.run(args, check=True, text=True, capture_output=True, cwd=ROOT, **kwargs).stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, form=False):
    data = None
    headers = dict(headers or {})
    if body is not None:
        if form:
            data = "&".join(f"{k}={v}" for k, v in body.items()).encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Service:
    """A release binary on a free loopback port with a fresh data dir."""

    def __init__(self, binary, env, name=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = tempfile.mkdtemp(prefix="bench-")
        full_env = dict(os.environ, LISTEN_ADDR=f"127.0.0.1:{self.port}", DATA_DIR=self.data, RUST_LOG="error")
        full_env.pop("DATABASE_URL", None)
        full_env.update({k: v(self) if callable(v) else v for k, v in env.items()})
        self.started = time.perf_counter()
        self.process = subprocess.Popen([os.path.join(RELEASE, binary)], env=full_env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.name = name or binary

    def wait_ready(self, timeout=30):
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            try:
                status, _ = http("GET", self.url + "/readyz")
                if status == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.002)
        raise RuntimeError(f"{self.name} not ready")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=15)
        shutil.rmtree(self.data, ignore_errors=True)


def wrk(url, seconds, connections, threads=2, script=None):
    """Runs wrk; returns (requests/s of 2xx, total requests, non-2xx, p99 ms)."""
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        args += ["-s", script]
    out = subprocess.run(args + [url], check=True, text=True, capture_output=True).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    duration = float(re.search(r"requests in ([\d.]+)s", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    return (total - non2xx) / duration, total, non2xx, p99_ms


def lua(body, content_type="application/json", headers=None):
    fd, path = tempfile.mkstemp(suffix=".lua")
    with os.fdopen(fd, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")
        f.write(f'wrk.headers["Content-Type"] = "{content_type}"\n')
        for name, value in (headers or {}).items():
            f.write(f'wrk.headers["{name}"] = "{value}"\n')
    return path


def criterion_means(bench_package, bench, names, quick):
    """Runs a criterion bench and returns mean ns per named benchmark."""
    timing = ["--warm-up-time", "1", "--measurement-time", "2" if quick else "5"]
    sh("cargo", "bench", "-q", "-p", bench_package, "--bench", bench, "--", *timing)
    means = {}
    for name in names:
        path = os.path.join(ROOT, "target", "criterion", *name.split("/"), "new", "estimates.json")
        with open(path) as f:
            means[name] = json.load(f)["mean"]["point_estimate"]
    return means


def section_signing(rows, quick):
    names = [f"{kind}/{alg}" for alg in ("EdDSA", "ES256", "RS256") for kind in ("issue_access_token", "raw_signature")]
    means = criterion_means("auth-server", "signing", names, quick)
    for alg in ("EdDSA", "ES256", "RS256"):
        issue, raw = means[f"issue_access_token/{alg}"], means[f"raw_signature/{alg}"]
        rows.append((f"token signing, {alg}", f"{issue / 1000:.1f} µs per token ({issue / raw:.2f}× the bare signature)",
                     "reported", "criterion `issue_access_token` vs `raw_signature`"))


def section_login(rows, quick, env_extra=None):
    seconds = 5 if quick else 10
    bound = json.loads(sh("cargo", "run", "-q", "--release", "-p", "auth-server", "--example", "argon2_bound",
                          "--", str(CORES), str(seconds)))
    auth = Service("auth-server", dict({"ISSUER": lambda s: s.url, "HASH_CONCURRENCY": str(CORES)}, **(env_extra or {})))
    auth.wait_ready()
    try:
        assert http("POST", auth.url + "/v1/users", {"username": "bench", "password": "bench-password"})[0] == 201
        script = lua(json.dumps({"username": "bench", "password": "bench-password"}))
        rate, total, non2xx, p99 = wrk(auth.url + "/v1/auth/login", seconds, connections=2 * CORES, script=script)
        ratio = rate / bound["hashes_per_second"]
        rows.append(("login throughput ÷ raw Argon2id bound", f"{rate:.1f}/s ÷ {bound['hashes_per_second']:.1f}/s = **{ratio:.2f}**",
                     "≥ 0.85", f"wrk -c{2 * CORES} on /v1/auth/login vs {CORES} threads hashing, same run; non-2xx: {non2xx}"))
        # Peak RSS after at least 1,000 logins (the wrk run above already did `total`).
        if total < 1000:
            wrk(auth.url + "/v1/auth/login", max(2, int((1000 - total) / max(rate, 1)) + 1), connections=2 * CORES, script=script)
        peak_mib = rss_kib(auth.process.pid, "VmHWM") / 1024
        budget = 30 + CORES * 1.2 * 19
        rows.append((f"auth-server peak RSS after ≥ 1,000 logins (N = {CORES})", f"{peak_mib:.1f} MiB",
                     f"≤ {budget:.0f} MiB (30 + N × 1.2 × 19)", "VmHWM from /proc"))
        return auth, bound
    except Exception:
        auth.stop()
        raise


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", default=os.path.join(ROOT, "BENCHMARKS.md"))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    print("building release binaries ...", file=sys.stderr)
    sh("cargo", "build", "-q", "--release", "-p", "auth-server", "-p", "users-service", "-p", "orders-service", "-p", "bench",
       "--example", "argon2_bound")
    rows = []
    section_signing(rows, args.quick)
    auth, _ = section_login(rows, args.quick)
    auth.stop()
    write(args.output, rows, args.quick)


def write(path, rows, quick):
    machine = f"{platform.machine()}, {CORES} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB, {platform.platform()}"
    lines = [
        "# Benchmarks",
        "",
        "Measured by `python3 bench/run.py" + (" --quick" if quick else "") + "` on " + time.strftime("%Y-%m-%d") + ".",
        f"Machine: {machine}. Shared and noisy: read the ratios, which compare against a baseline",
        "measured in the same run, rather than the absolute numbers. Release builds, loopback only.",
        "",
        "| what | result | goal | how |",
        "|---|---|---|---|",
    ]
    lines += [f"| {what} | {result} | {goal} | {how} |" for what, result, goal, how in rows]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
