"""Shared parts of the load harness (bench/run.py), the CI flood gate (bench/flood.py) and the
stack for Schemathesis (bench/stack.py): the binaries of services.toml on loopback, the load tools
with machine-readable output, the goal column of the results table, and the scratch directory
every run writes into.

Nothing here targets anything but 127.0.0.1.
"""
import contextlib
import csv
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import namedtuple

import services

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORES = os.cpu_count() or 2
# The platform's services (services.toml), the auth server first.
SERVICES = services.load()
AUTH_SERVER = SERVICES.auth_server.name


def target_dir():
    """Cargo's target directory (CARGO_TARGET_DIR when set)."""
    return os.path.abspath(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"))


# Where the service binaries are taken from; set_bin_dir() replaces it.
BIN_DIR = os.path.join(target_dir(), "release")


def set_bin_dir(path):
    global BIN_DIR
    BIN_DIR = os.path.abspath(path)


def bin_path(name):
    return os.path.join(BIN_DIR, name)


def sh(*args, env=None):
    return subprocess.run(args, check=True, text=True, capture_output=True, cwd=ROOT, env=env).stdout


# --- scratch directory and child processes -------------------------------------------------------
# A run writes every file (service data dirs, Lua scripts, token lists, load-tool reports) into one
# directory that session() removes on the way out, whatever the way out is: a normal end, an
# exception, Ctrl-C (KeyboardInterrupt) or SIGTERM (turned into SystemExit). Processes started with
# spawn() and still running then are stopped first.

_scratch = None
_children = []


def _raise_exit(signum, _frame):
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def session(prefix="jwt-bench-"):
    global _scratch
    if _scratch is not None:
        raise RuntimeError("a harness session is already open")
    previous_term = signal.signal(signal.SIGTERM, _raise_exit)
    directory = tempfile.mkdtemp(prefix=prefix)
    _scratch = directory
    try:
        yield directory
    finally:
        # A second Ctrl-C must not cut the cleanup short.
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stop_children()
            shutil.rmtree(directory, ignore_errors=True)
        finally:
            _scratch = None
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)


def scratch_dir(prefix="tmp-"):
    """A new directory inside the session's scratch directory."""
    if _scratch is None:
        raise RuntimeError("no harness session: wrap the run in `with harness.session():`")
    return tempfile.mkdtemp(prefix=prefix, dir=_scratch)


def scratch_file(text="", suffix=""):
    """A new file inside the session's scratch directory holding `text`; returns its path."""
    if _scratch is None:
        raise RuntimeError("no harness session: wrap the run in `with harness.session():`")
    fd, path = tempfile.mkstemp(suffix=suffix, dir=_scratch)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def spawn(args, **kwargs):
    """subprocess.Popen, stopped at the end of the session at the latest."""
    process = subprocess.Popen(args, **kwargs)
    _children.append(process)
    return process


def stop_process(process, timeout=15):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process in _children:
        _children.remove(process)


def stop_children():
    for process in list(_children):
        if process.poll() is None:
            process.terminate()
    for process in list(_children):
        stop_process(process, timeout=5)


# --- loopback HTTP and the services --------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, form=False, timeout=30):
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
        with urllib.request.urlopen(request, timeout=timeout) as response:
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
    """A binary from BIN_DIR on a loopback port (`port`, else a free one) with a fresh data dir.
    `seed`, as (subcommand args, extra env), is run on the same data dir before the server starts.
    Output goes to LOG_DIR/NAME.log when `log_dir` is given, else nowhere."""

    def __init__(self, binary, env, seed=None, port=None, data_prefix="data", log_dir=None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = scratch_dir(f"{data_prefix}-")
        self.name = binary
        full_env = dict(os.environ, LISTEN_ADDR=f"127.0.0.1:{self.port}", DATA_DIR=self.data, RUST_LOG="error")
        full_env.pop("DATABASE_URL", None)
        full_env.update({k: v(self) if callable(v) else v for k, v in env.items()})
        executable = bin_path(binary)
        with _log(log_dir, binary) as log:
            if seed:
                args, extra = seed
                seeded = subprocess.run([executable, *args], env=dict(full_env, **extra), stdin=subprocess.DEVNULL,
                                        capture_output=True, text=True)
                if log:
                    log.write(seeded.stdout + seeded.stderr)
                    log.flush()
                if seeded.returncode != 0:
                    raise RuntimeError(f"{binary} {' '.join(args)} failed ({seeded.returncode}): {seeded.stderr.strip()}")
            self.started = time.perf_counter()
            output = log or subprocess.DEVNULL
            self.process = spawn([executable], env=full_env, stdin=subprocess.DEVNULL, stdout=output, stderr=output)

    def wait_ready(self, timeout=30):
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.process.returncode} before it was ready")
            try:
                status, _ = http("GET", self.url + "/readyz")
                if status == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.002)
        raise RuntimeError(f"{self.name} not ready")

    def stop(self):
        stop_process(self.process)
        shutil.rmtree(self.data, ignore_errors=True)


def _log(log_dir, name):
    """LOG_DIR/NAME.log opened for appending, or a null context without a log dir."""
    if log_dir is None:
        return contextlib.nullcontext()
    return open(os.path.join(log_dir, f"{name}.log"), "a")


def stack_environments(ports, seed_secret=None):
    """{service name: the environment its role in services.toml calls for} for a stack whose
    services listen on 127.0.0.1:ports[name]: the auth server gets ISSUER (its own URL) and
    TOKEN_AUDIENCES, each resource service AUTH_ISSUER, the URLs its `urls` name and, when there is
    a client secret, CLIENT_ID and CLIENT_SECRET for its client_id. The Python counterpart of
    testkit::launch (which platform and the end-to-end tests use)."""
    def url(name):
        return f"http://127.0.0.1:{ports[name]}"

    issuer = url(AUTH_SERVER)
    audiences = SERVICES.user_audiences()
    environments = {AUTH_SERVER: {"ISSUER": issuer, **({"TOKEN_AUDIENCES": ",".join(audiences)} if audiences else {})}}
    for entry in SERVICES.resource_services:
        env = {"AUTH_ISSUER": issuer}
        env.update({variable: url(target) for variable, target in entry.urls.items()})
        if entry.client_id and seed_secret:
            env.update(CLIENT_ID=entry.client_id, CLIENT_SECRET=seed_secret)
        environments[entry.name] = env
    return environments


def start_stack(seed_secret=None, log_dir=None, rust_log=None):
    """Every service of services.toml, each on a free port with a fresh data dir, the auth server
    first (seeded with the demo accounts and the client of services.toml when a secret is given),
    then the resource services in the file's order, each started once the one before is ready.
    Returns [(service, seconds to ready), ...] in that order."""
    ports = {entry.name: free_port() for entry in SERVICES.all}
    environments = stack_environments(ports, seed_secret)
    started, ready = [], []
    try:
        for entry in SERVICES.all:
            env = dict(environments[entry.name], **({"RUST_LOG": rust_log} if rust_log else {}))
            seed = None
            if entry.name == AUTH_SERVER and seed_secret:
                seed = (["demo-seed"], {"DEMO_CLIENT_SECRET": seed_secret})
            service = Service(entry.name, env, seed=seed, port=ports[entry.name], data_prefix=entry.data_dir,
                              log_dir=log_dir)
            started.append(service)
            ready.append((service, service.wait_ready()))
    except BaseException:
        for service in started:
            service.stop()
        raise
    return ready


# --- what has to be there before a run ----------------------------------------------------------

SERVICE_BINARIES = tuple(SERVICES.names)
# Binary -> package: each service's binary is its package's; the benchmark server is bench's.
PACKAGE_OF = dict({name: name for name in SERVICE_BINARIES}, **{"verify-bench-server": "bench"})


def cargo_profile_of(bin_dir):
    """The cargo profile whose output directory `bin_dir` is (target/debug: dev, target/release:
    release, target/<name>: name), or None when it is not a directory of the cargo target dir."""
    bin_dir = os.path.realpath(bin_dir)
    if os.path.dirname(bin_dir) != os.path.realpath(target_dir()):
        return None
    name = os.path.basename(bin_dir)
    return "dev" if name == "debug" else name


def cargo_profile_args(profile):
    if profile == "dev":
        return []
    if profile == "release":
        return ["--release"]
    return ["--profile", profile]


def _build_command(targets, profile):
    return ["cargo", "build", "--locked", *targets, *cargo_profile_args(profile or "release")]


def _shown(command):
    return " ".join(command)


def require_binaries(bin_dir, names):
    """Exits with one line naming the cargo command when a binary is missing."""
    missing = [name for name in names if not os.access(os.path.join(bin_dir, name), os.X_OK)]
    if missing:
        packages = []
        for name in missing:
            packages += ["-p", PACKAGE_OF.get(name, name)]
        command = _build_command(packages, cargo_profile_of(bin_dir))
        raise SystemExit(f"bench: {', '.join(missing)} not found in {bin_dir}: run `{_shown(command)}`"
                         + ("" if cargo_profile_of(bin_dir) else " and pass its output directory as --bin-dir"))


def ensure_argon2_bound(bin_dir, run=subprocess.run):
    """Path of the `argon2_bound` example (auth-server/examples/argon2_bound.rs) for the binaries
    in `bin_dir`: <bin_dir>/examples/argon2_bound. When it is missing and `bin_dir` is a cargo
    output directory, it is built with that directory's profile; otherwise, or when the build
    fails, the run ends with one line saying what to run."""
    path = os.path.join(bin_dir, "examples", "argon2_bound")
    if os.access(path, os.X_OK):
        return path
    profile = cargo_profile_of(bin_dir)
    command = _build_command(["-p", AUTH_SERVER, "--example", "argon2_bound"], profile)
    if profile is None:
        raise SystemExit(f"bench: {path} not found and {bin_dir} is not a cargo output directory: "
                         f"run `{_shown(command)}` and pass --bin-dir {os.path.join(target_dir(), 'release')}")
    print(f"bench: {path} not found; building it: {_shown(command)}", file=sys.stderr, flush=True)
    try:
        result = run(command, cwd=ROOT)
        status = result.returncode
    except OSError as error:  # no cargo
        status = error
    if status != 0 or not os.access(path, os.X_OK):
        raise SystemExit(f"bench: {path} not found and `{_shown(command)}` failed ({status}): run it and fix what it reports")
    return path


def ensure_tools(tools):
    """Installs the Debian packages of the same name when a tool is missing."""
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        print(f"installing {', '.join(missing)} with apt-get ...", file=sys.stderr)
        apt_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=apt_env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=apt_env, stdout=subprocess.DEVNULL)


# --- hey: one CSV line per answered request ------------------------------------------------------

HEY_CSV_HEADER = ["response-time", "DNS+dialup", "DNS", "Request-write", "Response-delay", "Response-read",
                  "status-code", "offset"]


class HeyResult(namedtuple("HeyResult", "statuses unanswered")):
    """statuses: {HTTP status: responses}; unanswered: requests sent without a usable answer."""

    @property
    def answered(self):
        return sum(self.statuses.values())

    @property
    def fivexx(self):
        return sum(n for status, n in self.statuses.items() if status >= 500)


def parse_hey_csv(text, expected):
    """`hey -o csv` output for `expected` requests. hey writes one line per request that got a
    response and none for a request that failed (refused, reset, timed out), so every request
    without a line, or with a line without a valid status code, counts as unanswered."""
    rows = [row for row in csv.reader(text.splitlines()) if row]
    if not rows or [field.strip() for field in rows[0]] != HEY_CSV_HEADER:
        raise ValueError(f"not `hey -o csv` output: {text[:120]!r}")
    status_index = HEY_CSV_HEADER.index("status-code")
    statuses = {}
    for row in rows[1:]:
        try:
            status = int(row[status_index]) if len(row) == len(HEY_CSV_HEADER) else 0
        except ValueError:
            status = 0
        if 100 <= status <= 599:
            statuses[status] = statuses.get(status, 0) + 1
    answered = sum(statuses.values())
    if answered > expected:
        raise ValueError(f"hey reported {answered} responses for {expected} requests")
    return HeyResult(dict(sorted(statuses.items())), expected - answered)


def hey(method, url, count, concurrency, content_type=None, body=None, headers=None):
    """Runs `hey -n count -c concurrency` with CSV output; returns a HeyResult."""
    if count % concurrency:
        # hey sends count // concurrency requests per worker, so the rest would silently go missing.
        raise ValueError(f"-n {count} is not a multiple of -c {concurrency}")
    args = ["hey", "-n", str(count), "-c", str(concurrency), "-m", method, "-t", "30", "-disable-redirects", "-o", "csv"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    if body is not None:
        args += ["-T", content_type, "-d", body]
    out = subprocess.run(args + [url], check=True, text=True, capture_output=True).stdout
    return parse_hey_csv(out, count)


# --- wrk: a JSON report written by the Lua script's done() ---------------------------------------

# Appended to every wrk script; @REPORT@ becomes the report file's path (a Lua string literal).
# Times are microseconds, as wrk keeps them.
WRK_REPORT_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  local file = assert(io.open(@REPORT@, "w"))
  file:write(string.format(
    '{"duration_us": %d, "requests": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.3f, "max": %d, "p50": %d, "p90": %d, "p99": %d}}\\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99)))
  file:close()
end
"""

WrkResult = namedtuple("WrkResult", "rate total non2xx p99_ms socket_errors")
WrkResult.__doc__ = """rate: 2xx/3xx responses per second; total: responses; non2xx: other statuses;
p99_ms: 99th percentile latency; socket_errors: connect + read + write + timeout errors."""


def parse_wrk_report(text):
    """The JSON that WRK_REPORT_LUA writes -> WrkResult."""
    try:
        report = json.loads(text)
        duration = report["duration_us"] / 1e6
        total = int(report["requests"])
        errors = report["errors"]
        non2xx = int(errors["status"])
        socket_errors = sum(int(errors[kind]) for kind in ("connect", "read", "write", "timeout"))
        p99_ms = report["latency_us"]["p99"] / 1000 if total else math.nan
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"not a wrk report ({error}): {text[:120]!r}") from None
    if duration <= 0:
        raise ValueError(f"wrk report with duration {duration}")
    return WrkResult((total - non2xx) / duration, total, non2xx, p99_ms, socket_errors)


def lua_string(text):
    """A Lua string literal (JSON's escapes are a subset of Lua's for ASCII text)."""
    if not text.isascii():
        raise ValueError(f"not ASCII: {text!r}")
    return json.dumps(text)


def wrk_script(script, report_path):
    """`script` (Lua text, may be empty) plus the done() that writes the JSON report."""
    if re.search(r"\bfunction\s+done\b|\bdone\s*=", script):
        raise ValueError("the wrk script defines done() itself; the report needs it")
    return script + "\n" + WRK_REPORT_LUA.replace("@REPORT@", lua_string(report_path))


def wrk(url, seconds, connections, threads=2, script=""):
    """Runs wrk with `script` (Lua text); returns a WrkResult."""
    report = scratch_file(suffix=".json")
    path = scratch_file(wrk_script(script, report), suffix=".lua")
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", path, url]
    subprocess.run(args, check=True, text=True, capture_output=True)
    with open(report) as f:
        text = f.read()
    os.unlink(report)
    os.unlink(path)
    if not text:
        raise RuntimeError(f"wrk wrote no report: {' '.join(args)}")
    return parse_wrk_report(text)


# --- goals: every result row says whether it meets its goal --------------------------------------

class Goal(namedtuple("Goal", "text op target tolerance")):
    """What a result is held against. op: ">=", "<=", "≈" (within `tolerance`), or None for a
    figure that is only reported."""


def at_least(target, text=None):
    return Goal(text or f"≥ {target:g}", ">=", target, 0.0)


def at_most(target, text=None):
    return Goal(text or f"≤ {target:g}", "<=", target, 0.0)


def about(target, tolerance, text=None):
    return Goal(text or f"≈ {target:g} ± {tolerance:g}", "≈", target, tolerance)


def reported(text="reported"):
    return Goal(text, None, None, 0.0)


def goal_met(goal, values):
    """True when every value meets the goal, False when one does not (a NaN never does), None for
    a reported-only figure."""
    if goal.op is None:
        return None
    values = [values] if isinstance(values, (int, float)) else list(values)
    if not values:
        raise ValueError(f"no values to compare with the goal {goal.text!r}")
    for value in values:
        if math.isnan(value):
            return False
        if goal.op == ">=" and not value >= goal.target:
            return False
        if goal.op == "<=" and not value <= goal.target:
            return False
        if goal.op == "≈" and not abs(value - goal.target) <= goal.tolerance:
            return False
    return True


class Row(namedtuple("Row", "what result goal how values")):
    """One line of the results table; `values` are the figures (in the goal's unit) that `goal`
    is checked against."""

    def __new__(cls, what, result, goal, how, values=()):
        values = (values,) if isinstance(values, (int, float)) else tuple(values)
        if goal.op is not None and not values:
            raise ValueError(f"{what}: a goal to check but no values")
        return super().__new__(cls, what, result, goal, how, values)


def met_cell(row):
    met = goal_met(row.goal, row.values)
    return "—" if met is None else ("yes" if met else "**not met**")


TABLE_HEADER = ["| what | result | goal | met | how |", "|---|---|---|---|---|"]


def table_lines(rows):
    return TABLE_HEADER + [f"| {r.what} | {r.result} | {r.goal.text} | {met_cell(r)} | {r.how} |" for r in rows]
