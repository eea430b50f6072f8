"""Unit tests of the load harness (bench/harness.py, bench/flood.py, bench/run.py): no network,
no load tool and no project binary is run.

    python3 -m unittest discover -s bench -p 'test_*.py'
"""
import io
import json
import math
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import flood  # noqa: E402
import harness  # noqa: E402
import run  # noqa: E402

HEADER = "response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset"


def hey_line(status):
    return f"0.0021,0.0001,0.0000,0.0000,0.0018,0.0001,{status},0.0015"


def completed(args, stdout="", returncode=0):
    return subprocess.CompletedProcess(args, returncode, stdout=stdout, stderr="")


class HeyCsvTest(unittest.TestCase):
    def test_counts_every_status(self):
        text = "\n".join([HEADER] + [hey_line(200)] * 3 + [hey_line(429)] * 2 + [hey_line(503)]) + "\n"
        result = harness.parse_hey_csv(text, expected=6)
        self.assertEqual(result.statuses, {200: 3, 429: 2, 503: 1})
        self.assertEqual(result.answered, 6)
        self.assertEqual(result.unanswered, 0)
        self.assertEqual(result.fivexx, 1)

    def test_requests_without_a_line_are_unanswered(self):
        # hey writes no line for a refused, reset or timed-out request.
        text = "\n".join([HEADER] + [hey_line(200)] * 7)
        result = harness.parse_hey_csv(text, expected=10)
        self.assertEqual(result.statuses, {200: 7})
        self.assertEqual(result.unanswered, 3)
        self.assertEqual(result.fivexx, 0)

    def test_lines_without_a_valid_status_are_unanswered(self):
        text = "\n".join([HEADER, hey_line(204), hey_line(""), hey_line("abc"), hey_line(0), "0.0021,0.0001,200"])
        result = harness.parse_hey_csv(text, expected=5)
        self.assertEqual(result.statuses, {204: 1})
        self.assertEqual(result.unanswered, 4)

    def test_only_the_header_means_nothing_answered(self):
        result = harness.parse_hey_csv(HEADER + "\n", expected=100)
        self.assertEqual((result.statuses, result.unanswered), ({}, 100))

    def test_text_output_is_rejected(self):
        summary = "Summary:\n  Total:\t0.1 secs\n\nStatus code distribution:\n  [200]\t100 responses\n"
        with self.assertRaises(ValueError):
            harness.parse_hey_csv(summary, expected=100)

    def test_more_lines_than_requests_is_an_error(self):
        with self.assertRaises(ValueError):
            harness.parse_hey_csv("\n".join([HEADER] + [hey_line(200)] * 3), expected=2)

    def test_hey_asks_for_csv_and_parses_it(self):
        out = "\n".join([HEADER] + [hey_line(200)] * 9 + [hey_line(500)]) + "\n"
        with mock.patch.object(harness.subprocess, "run", return_value=completed([], out)) as run_mock:
            result = harness.hey("POST", "http://127.0.0.1:1/x", 20, 10, "application/json", "{}", {"A": "b"})
        args = run_mock.call_args[0][0]
        self.assertEqual(args[args.index("-o") + 1], "csv")
        self.assertEqual(args[args.index("-n") + 1], "20")
        self.assertEqual(args[-1], "http://127.0.0.1:1/x")
        self.assertEqual((result.statuses, result.unanswered, result.fivexx), ({200: 9, 500: 1}, 10, 1))

    def test_count_not_a_multiple_of_concurrency_is_refused(self):
        # hey would send 100 // 30 * 30 = 90 requests.
        with mock.patch.object(harness.subprocess, "run") as run_mock:
            with self.assertRaises(ValueError):
                harness.hey("GET", "http://127.0.0.1:1/", 100, 30)
        run_mock.assert_not_called()


WRK_REPORT = {"duration_us": 2_000_000, "requests": 1000, "bytes": 123456,
              "errors": {"connect": 1, "read": 2, "write": 0, "status": 100, "timeout": 3},
              "latency_us": {"mean": 812.5, "max": 9000, "p50": 700, "p90": 1500, "p99": 4770}}


class WrkReportTest(unittest.TestCase):
    def test_parses_the_json_report(self):
        result = harness.parse_wrk_report(json.dumps(WRK_REPORT))
        self.assertAlmostEqual(result.rate, 450.0)  # (1000 - 100 non-2xx) / 2 s
        self.assertEqual(result.total, 1000)
        self.assertEqual(result.non2xx, 100)
        self.assertAlmostEqual(result.p99_ms, 4.77)
        self.assertEqual(result.socket_errors, 6)
        rate, total, non2xx, p99_ms, _ = result  # what run.py unpacks
        self.assertEqual((total, non2xx), (1000, 100))

    def test_no_requests_gives_nan_latency(self):
        report = dict(WRK_REPORT, requests=0, errors=dict(WRK_REPORT["errors"], status=0))
        self.assertTrue(math.isnan(harness.parse_wrk_report(json.dumps(report)).p99_ms))

    def test_malformed_reports_are_rejected(self):
        for text in ("", "Running 10s test @ http://127.0.0.1:1/\n", json.dumps({"requests": 3}),
                     json.dumps(dict(WRK_REPORT, duration_us=0))):
            with self.subTest(text=text), self.assertRaises(ValueError):
                harness.parse_wrk_report(text)

    def test_script_gets_a_done_function_writing_the_report(self):
        script = harness.wrk_script('wrk.method = "POST"\n', "/tmp/x/report.json")
        self.assertTrue(script.startswith('wrk.method = "POST"\n'))
        self.assertIn('io.open("/tmp/x/report.json", "w")', script)
        self.assertRegex(script, r"done = function\(summary, latency, requests\)")
        self.assertIn("latency:percentile(99)", script)

    def test_a_script_with_its_own_done_is_refused(self):
        for script in ("function done(s, l, r) end", "done = function(s, l, r) end"):
            with self.subTest(script=script), self.assertRaises(ValueError):
                harness.wrk_script(script, "/tmp/r.json")

    def test_wrk_reads_the_report_its_script_wrote(self):
        def fake_wrk(args, **_):
            with open(args[args.index("-s") + 1]) as f:
                report_path = json.loads(re.search(r'io\.open\(("[^"]+")', f.read()).group(1))
            with open(report_path, "w") as f:
                f.write(json.dumps(WRK_REPORT))
            return completed(args, "text summary, not parsed")

        with harness.session() as scratch, mock.patch.object(harness.subprocess, "run", side_effect=fake_wrk):
            result = harness.wrk("http://127.0.0.1:1/", 1, connections=2, threads=1, script="-- nothing\n")
            self.assertEqual(os.listdir(scratch), [])  # script and report removed after reading
        self.assertEqual((result.total, result.non2xx), (1000, 100))


class GoalTest(unittest.TestCase):
    def test_at_least(self):
        self.assertIs(harness.goal_met(harness.at_least(0.85), 0.80), False)
        self.assertIs(harness.goal_met(harness.at_least(0.9), 0.92), True)
        self.assertIs(harness.goal_met(harness.at_least(0.3), 0.29), False)
        self.assertIs(harness.goal_met(harness.at_least(0.85), 0.85), True)

    def test_at_most(self):
        self.assertIs(harness.goal_met(harness.at_most(1.15), [1.08, 1.02, 1.03]), True)
        self.assertIs(harness.goal_met(harness.at_most(1.15), [1.08, 1.20, 1.03]), False)
        self.assertIs(harness.goal_met(harness.at_most(5), 4.77), True)
        self.assertIs(harness.goal_met(harness.at_most(5), 5.01), False)
        self.assertIs(harness.goal_met(harness.at_most(0, "0"), 0), True)
        self.assertIs(harness.goal_met(harness.at_most(0, "0"), 1), False)

    def test_about(self):
        goal = harness.about(1.0, 0.05)
        self.assertIs(harness.goal_met(goal, 1.00), True)
        self.assertIs(harness.goal_met(goal, 0.96), True)
        self.assertIs(harness.goal_met(goal, 1.10), False)
        self.assertIs(harness.goal_met(goal, 0.90), False)

    def test_reported_and_unmeasured(self):
        self.assertIsNone(harness.goal_met(harness.reported(), ()))
        self.assertIs(harness.goal_met(harness.at_most(5), math.nan), False)
        with self.assertRaises(ValueError):
            harness.Row("x", "y", harness.at_least(1), "z")  # a goal but nothing to check

    def test_table_marks_unmet_goals(self):
        rows = [
            harness.Row("login ratio", "**0.80**", harness.at_least(0.85, "≥ 0.85"), "wrk", 0.80),
            harness.Row("protected ratio", "**0.92**", harness.at_least(0.9, "≥ 0.9"), "wrk", 0.92),
            harness.Row("cold verify", "**1.08 / 1.02 / 1.03**", harness.at_most(1.15, "≤ 1.15"), "criterion",
                        [1.08, 1.02, 1.03]),
            harness.Row("signing", "22.3 µs", harness.reported(), "criterion"),
        ]
        lines = harness.table_lines(rows)
        self.assertEqual(lines[0], "| what | result | goal | met | how |")
        self.assertEqual(lines[2], "| login ratio | **0.80** | ≥ 0.85 | **not met** | wrk |")
        self.assertEqual(lines[3], "| protected ratio | **0.92** | ≥ 0.9 | yes | wrk |")
        self.assertEqual(lines[4], "| cold verify | **1.08 / 1.02 / 1.03** | ≤ 1.15 | yes | criterion |")
        self.assertEqual(lines[5], "| signing | 22.3 µs | reported | — | criterion |")

    def test_flood_row_goal_is_zero(self):
        self.assertEqual(harness.met_cell(flood.flood_row(0, 32)), "yes")
        self.assertEqual(harness.met_cell(flood.flood_row(3, 32)), "**not met**")


class CommittedBenchmarksTest(unittest.TestCase):
    """BENCHMARKS.md says "not met" wherever its own figure misses its goal."""

    def test_met_column_agrees_with_the_figures(self):
        with open(os.path.join(harness.ROOT, "BENCHMARKS.md")) as f:
            lines = [line for line in f.read().splitlines() if line.startswith("| ")]
        self.assertEqual(lines[0], harness.TABLE_HEADER[0])
        checked = 0
        for line in lines[1:]:
            what, result, goal, met, _ = [cell.strip() for cell in line.strip("|").split(" | ")]
            with self.subTest(what=what):
                self.assertIn(met, ("yes", "**not met**", "—"))
                self.assertEqual(met == "—", goal.startswith("reported"))
                simple = re.fullmatch(r"([≥≤]) ([\d.]+)", goal)
                figure = re.search(r"\*\*([\d.]+(?: / [\d.]+)*)\*\*", result)
                if simple and figure:
                    make = harness.at_least if simple.group(1) == "≥" else harness.at_most
                    values = [float(v) for v in figure.group(1).split(" / ")]
                    expected = harness.goal_met(make(float(simple.group(2))), values)
                    self.assertEqual(met, "yes" if expected else "**not met**", line)
                    checked += 1
        self.assertGreaterEqual(checked, 5)


def openapi(paths):
    return {"openapi": "3.1.0", "paths": paths}


class FloodPlanTest(unittest.TestCase):
    bearer = {"Authorization": "Bearer t"}

    def test_operation_with_a_body_and_no_entry_is_an_error(self):
        document = openapi({"/v1/things": {"post": {"requestBody": {"content": {}}}, "get": {}}})
        with self.assertRaisesRegex(flood.FloodError, r"no flood body for POST /v1/things"):
            flood.plan_requests([("things-service", "http://127.0.0.1:1", document)], {}, {}, self.bearer)

    def test_every_operation_plus_document_and_docs(self):
        document = openapi({
            "/v1/things": {"post": {"requestBody": {}}, "get": {}},
            "/v1/things/{id}": {"delete": {}, "parameters": []},
        })
        bodies = {("POST", "/v1/things"): ("application/json", '{"a":1}', None)}
        requests = flood.plan_requests([("things", "http://127.0.0.1:1", document)], bodies, {"things": {"id": 7}},
                                       self.bearer)
        self.assertEqual([(r.method, r.path, r.url) for r in requests], [
            ("GET", "/v1/things", "http://127.0.0.1:1/v1/things"),
            ("POST", "/v1/things", "http://127.0.0.1:1/v1/things"),
            ("DELETE", "/v1/things/{id}", "http://127.0.0.1:1/v1/things/7"),
            ("GET", "/openapi.json", "http://127.0.0.1:1/openapi.json"),
            ("GET", "/docs/", "http://127.0.0.1:1/docs/"),
        ])
        post = requests[1]
        self.assertEqual((post.content_type, post.body, post.headers), ("application/json", '{"a":1}', self.bearer))

    def test_queries_and_their_headers_and_no_headers_at_all(self):
        # The hosted-login operations: input in the query, a cookie instead of the bearer, and a
        # form body that carries its own token (no Authorization header at all).
        document = openapi({"/oauth2/authorize": {"get": {}}, "/oauth2/userinfo": {"post": {"requestBody": {}}}})
        cookie = {"Cookie": "session=s"}
        bodies = {("POST", "/oauth2/userinfo"): ("application/x-www-form-urlencoded", "access_token=a", {})}
        queries = {("GET", "/oauth2/authorize"): ("client_id=c&state=s%20t", cookie)}
        requests = flood.plan_requests([("auth", "http://127.0.0.1:1", document)], bodies, {}, self.bearer, queries)
        self.assertEqual([(r.method, r.url, r.headers) for r in requests[:2]], [
            ("GET", "http://127.0.0.1:1/oauth2/authorize?client_id=c&state=s%20t", cookie),
            ("POST", "http://127.0.0.1:1/oauth2/userinfo", {}),
        ])

    def test_path_parameter_without_a_value_is_an_error(self):
        document = openapi({"/v1/things/{slug}": {"get": {}}})
        with self.assertRaisesRegex(flood.FloodError, r"no value for \{slug\}"):
            flood.plan_requests([("things", "http://127.0.0.1:1", document)], {}, {"things": {"id": 1}}, self.bearer)


class Argon2BoundTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.target = os.path.join(self.tmp.name, "target")
        os.makedirs(self.target)
        patcher = mock.patch.object(harness, "target_dir", return_value=self.target)
        patcher.start()
        self.addCleanup(patcher.stop)

    def assert_one_line_exit(self, context, *needles):
        message = context.exception.code
        self.assertIsInstance(message, str)  # SystemExit(str): printed as is, no traceback
        self.assertNotIn("\n", message)
        for needle in needles:
            self.assertIn(needle, message)

    def test_not_a_cargo_directory_names_the_command(self):
        elsewhere = os.path.join(self.tmp.name, "prebuilt")
        os.makedirs(elsewhere)
        run_mock = mock.Mock()
        with self.assertRaises(SystemExit) as context:
            harness.ensure_argon2_bound(elsewhere, run=run_mock)
        run_mock.assert_not_called()
        self.assert_one_line_exit(context, "argon2_bound", "cargo build --locked -p auth-server --example argon2_bound --release")

    def test_failed_build_names_the_command(self):
        bin_dir = os.path.join(self.target, "release")
        run_mock = mock.Mock(return_value=completed([], returncode=101))
        with self.assertRaises(SystemExit) as context, mock.patch("sys.stderr", io.StringIO()):
            harness.ensure_argon2_bound(bin_dir, run=run_mock)
        self.assertEqual(run_mock.call_args[0][0],
                         ["cargo", "build", "--locked", "-p", "auth-server", "--example", "argon2_bound", "--release"])
        self.assert_one_line_exit(context, "cargo build --locked -p auth-server --example argon2_bound --release")

    def test_no_cargo_is_a_one_line_exit(self):
        run_mock = mock.Mock(side_effect=FileNotFoundError(2, "No such file or directory", "cargo"))
        with self.assertRaises(SystemExit) as context, mock.patch("sys.stderr", io.StringIO()):
            harness.ensure_argon2_bound(os.path.join(self.target, "debug"), run=run_mock)
        self.assert_one_line_exit(context, "cargo build --locked -p auth-server --example argon2_bound")

    def test_builds_with_the_profile_of_the_bin_dir(self):
        for profile_dir, extra in (("debug", []), ("release", ["--release"]), ("bench", ["--profile", "bench"])):
            bin_dir = os.path.join(self.target, profile_dir)

            def build(command, **_):
                path = os.path.join(bin_dir, "examples", "argon2_bound")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write("#!/bin/sh\n")
                os.chmod(path, stat.S_IRWXU)
                return completed(command)

            run_mock = mock.Mock(side_effect=build)
            with self.subTest(profile_dir=profile_dir), mock.patch("sys.stderr", io.StringIO()):
                path = harness.ensure_argon2_bound(bin_dir, run=run_mock)
                self.assertEqual(path, os.path.join(bin_dir, "examples", "argon2_bound"))
                self.assertEqual(run_mock.call_args[0][0],
                                 ["cargo", "build", "--locked", "-p", "auth-server", "--example", "argon2_bound", *extra])
                # Present now: no second build.
                harness.ensure_argon2_bound(bin_dir, run=run_mock)
                self.assertEqual(run_mock.call_count, 1)

    def test_run_py_ends_with_the_message_before_measuring(self):
        bin_dir = os.path.join(self.tmp.name, "prebuilt")
        os.makedirs(bin_dir)
        with open(os.path.join(bin_dir, "auth-server"), "w") as f:
            f.write("#!/bin/sh\nexit 1\n")
        os.chmod(os.path.join(bin_dir, "auth-server"), stat.S_IRWXU)
        saved = harness.BIN_DIR
        self.addCleanup(harness.set_bin_dir, saved)
        with mock.patch.object(harness, "ensure_tools") as tools, \
                mock.patch.object(harness.subprocess, "run") as run_mock, \
                mock.patch.object(harness.subprocess, "Popen") as popen:
            with self.assertRaises(SystemExit) as context:
                run.main(["--sections", "login", "--bin-dir", bin_dir, "--output", "-"])
        self.assert_one_line_exit(context, os.path.join(bin_dir, "examples", "argon2_bound"), "cargo build")
        tools.assert_not_called()
        run_mock.assert_not_called()
        popen.assert_not_called()

    def test_missing_service_binary_is_a_one_line_exit(self):
        bin_dir = os.path.join(self.target, "debug")
        os.makedirs(bin_dir)
        with self.assertRaises(SystemExit) as context:
            harness.require_binaries(bin_dir, harness.SERVICE_BINARIES)
        packages = " ".join(f"-p {name}" for name in harness.SERVICE_BINARIES)
        self.assert_one_line_exit(context, ", ".join(harness.SERVICE_BINARIES), f"cargo build --locked {packages}`")


class SessionTest(unittest.TestCase):
    def sleeper(self):
        return harness.spawn([sys.executable, "-c", "import time; time.sleep(60)"])

    def test_everything_is_inside_the_scratch_dir_and_removed(self):
        with harness.session() as scratch:
            data = harness.scratch_dir("data-")
            script = harness.scratch_file("-- lua\n", suffix=".lua")
            for path in (data, script):
                self.assertEqual(os.path.dirname(path), scratch)
            with open(script) as f:
                self.assertEqual(f.read(), "-- lua\n")
        self.assertFalse(os.path.exists(scratch))

    def test_ctrl_c_removes_the_dir_and_stops_children(self):
        with self.assertRaises(KeyboardInterrupt):
            with harness.session() as scratch:
                child = self.sleeper()
                harness.scratch_file("x", suffix=".tokens")
                raise KeyboardInterrupt
        self.assertFalse(os.path.exists(scratch))
        self.assertIsNotNone(child.poll())

    def test_sigterm_removes_the_dir_and_stops_children(self):
        before = signal.getsignal(signal.SIGTERM)
        with self.assertRaises(SystemExit) as context:
            with harness.session() as scratch:
                child = self.sleeper()
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler raises before this ends
        self.assertEqual(context.exception.code, 128 + signal.SIGTERM)
        self.assertFalse(os.path.exists(scratch))
        self.assertIsNotNone(child.poll())
        self.assertEqual(signal.getsignal(signal.SIGTERM), before)

    def test_failure_removes_the_dir(self):
        with self.assertRaises(RuntimeError):
            with harness.session() as scratch:
                harness.scratch_dir()
                raise RuntimeError("section failed")
        self.assertFalse(os.path.exists(scratch))

    def test_scratch_needs_a_session(self):
        with self.assertRaises(RuntimeError):
            harness.scratch_file("x")

    def test_run_py_scripts_are_text_not_temp_files(self):
        # Scripts are written by wrk() into the session's scratch dir, not by their builders.
        with mock.patch.object(tempfile, "mkstemp", side_effect=AssertionError("temp file")), \
                mock.patch.object(tempfile, "mkdtemp", side_effect=AssertionError("temp dir")):
            script = run.lua("grant_type=client_credentials", "application/x-www-form-urlencoded",
                             {"Authorization": "Basic x"})
            rotation = run.token_rotation_script("/scratch/tokens")
            run.rotating_login_script(["a", "b"])
        self.assertIn('wrk.body = "grant_type=client_credentials"', script)
        self.assertIn('io.lines("/scratch/tokens")', rotation)


if __name__ == "__main__":
    unittest.main()
