"""Unit tests of the scripted browser (bench/browser.py) and the browser section's wrk scripts
(bench/run.py): no network, no load tool and no project binary is run.

    python3 -m unittest discover -s bench -p 'test_*.py'
"""
import base64
import hashlib
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import browser  # noqa: E402
import run  # noqa: E402

# The shape of the hosted login page (auth-server/src/oauth/pages.rs), values escaped as maud does.
LOGIN_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Log in</title>
<link rel="stylesheet" href="/oauth2/static/pages.css"></head><body><main class="card">
<h1>Log in</h1><p class="client">to continue to <strong>bench-web</strong></p>
<form method="post" action="/oauth2/login">
<input type="hidden" name="csrf_token" value="c5rf-T0ken_x">
<input type="hidden" name="client_id" value="bench-web">
<input type="hidden" name="redirect_uri" value="http://127.0.0.1:9/cb">
<input type="hidden" name="state" value="&quot;&gt;&lt;a&amp;b">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" required value="demo">
<label for="password">Password</label>
<input id="password" name="password" type="password" required autofocus>
<button type="submit">Log in</button>
</form></main></body></html>"""

CONSENT_PAGE = """<form method="post" action="/oauth2/consent"><input type="hidden" name="csrf_token" value="t">
<div class="buttons"><button type="submit" name="decision" value="allow">Allow</button>
<input type="submit" name="decision" value="deny"></div></form>"""


class FormTest(unittest.TestCase):
    def test_the_login_form_gives_its_inputs_in_order_with_entities_decoded(self):
        form = browser.form_with_action(LOGIN_PAGE, "/oauth2/login")
        self.assertEqual((form.action, form.method), ("/oauth2/login", "post"))
        self.assertEqual(form.fields, [
            ("csrf_token", "c5rf-T0ken_x"), ("client_id", "bench-web"), ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("state", '"><a&b'), ("username", "demo"), ("password", ""),
        ])

    def test_buttons_and_submit_inputs_are_not_fields(self):
        form = browser.form_with_action(CONSENT_PAGE, "/oauth2/consent")
        self.assertEqual(form.fields, [("csrf_token", "t")])

    def test_inputs_outside_a_form_and_forms_elsewhere_are_ignored(self):
        page = '<input name="stray" value="1"><form action="/other"><input name="x"></form>' + LOGIN_PAGE
        self.assertEqual(len(browser.parse_forms(page)), 2)
        self.assertEqual(browser.form_with_action(page, "/other").fields, [("x", "")])
        self.assertNotIn(("stray", "1"), browser.form_with_action(page, "/oauth2/login").fields)

    def test_no_form_is_none_and_two_are_an_error(self):
        self.assertIsNone(browser.form_with_action("<p>Logged out</p>", "/oauth2/login"))
        with self.assertRaisesRegex(ValueError, "2 forms"):
            browser.form_with_action(LOGIN_PAGE + LOGIN_PAGE, "/oauth2/login")

    def test_an_absolute_action_matches_by_path(self):
        page = '<form method="POST" action="http://127.0.0.1:8080/oauth2/login?x=1"></form>'
        self.assertEqual(browser.form_with_action(page, "/oauth2/login").method, "post")


class LocationTest(unittest.TestCase):
    def test_code_state_and_iss_are_read_decoded(self):
        location = "http://127.0.0.1:9/cb?code=abc-_9&state=a+b%26c&iss=http%3A%2F%2F127.0.0.1%3A8080"
        self.assertEqual(browser.location_params(location),
                         {"code": "abc-_9", "state": "a b&c", "iss": "http://127.0.0.1:8080"})
        self.assertEqual(browser.redirect_target(location), "http://127.0.0.1:9/cb")

    def test_a_registered_query_is_kept_and_empty_values_count(self):
        params = browser.location_params("https://app.example/cb?x=1&code=c&state=")
        self.assertEqual(params, {"x": "1", "code": "c", "state": ""})

    def test_a_repeated_parameter_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "code repeated"):
            browser.location_params("http://127.0.0.1:9/cb?code=a&code=b")


class CookieTest(unittest.TestCase):
    def test_the_jar_keeps_set_cookies_and_drops_cleared_ones(self):
        jar = browser.CookieJar()
        self.assertIsNone(jar.header())
        jar.update(["authsrv_127_0_0_1_8080_csrf=t0k; HttpOnly; SameSite=Lax; Path=/"])
        jar.update(["authsrv_127_0_0_1_8080=s3ss=ion; HttpOnly; SameSite=Lax; Path=/; Max-Age=28800"])
        self.assertEqual(jar.header(), "authsrv_127_0_0_1_8080_csrf=t0k; authsrv_127_0_0_1_8080=s3ss=ion")
        jar.update(["authsrv_127_0_0_1_8080=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"])
        self.assertEqual(jar.cookies, {"authsrv_127_0_0_1_8080_csrf": "t0k"})

    def test_max_age_zero_or_less_deletes(self):
        for attributes, deleted in (("Max-Age=0", True), ("max-age=-1", True), ("Max-Age=5", False),
                                    ("Max-Age=x", False), ("Path=/", False)):
            with self.subTest(attributes=attributes):
                self.assertEqual(browser.parse_set_cookie(f"n=v; {attributes}"), ("n", "v", deleted))

    def test_session_cookie_names_follow_the_issuer(self):
        cases = [
            ("http://127.0.0.1:8080", None, "authsrv_127_0_0_1_8080"),
            ("http://127.0.0.1:8080/", None, "authsrv_127_0_0_1_8080"),
            ("https://login.example.com", None, "__Host-authsrv_login_example_com_443"),
            ("http://localhost", None, "authsrv_localhost_80"),
            ("http://[::1]:9000", None, "authsrv____1__9000"),
            ("http://127.0.0.1:8080", "sso", "sso"),
        ]
        for issuer, override, expected in cases:
            with self.subTest(issuer=issuer):
                self.assertEqual(browser.session_cookie_name(issuer, override), expected)


class PkceTest(unittest.TestCase):
    def test_the_challenge_is_the_s256_of_the_verifier(self):
        verifier, challenge = browser.pkce_pair()
        self.assertEqual(len(verifier), 43)
        self.assertRegex(verifier, r"^[A-Za-z0-9_-]{43}$")
        expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        self.assertEqual(challenge, expected)
        self.assertNotEqual(browser.pkce_pair(), browser.pkce_pair())

    def test_the_challenge_of_rfc_7636_appendix_b(self):
        self.assertEqual(browser.pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
                         "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")

    def test_the_authorization_request_asks_for_a_code_with_s256(self):
        path = browser.authorize_path(run.BROWSER_CLIENT, "C" * 43, "s t", "n")
        params = browser.location_params(path)
        self.assertTrue(path.startswith("/oauth2/authorize?"))
        self.assertEqual(params["response_type"], "code")
        self.assertEqual(params["code_challenge_method"], "S256")
        self.assertEqual(params["redirect_uri"], "http://127.0.0.1:9/cb")
        self.assertEqual((params["state"], params["scope"]), ("s t", "openid profile profile:read"))

    def test_a_public_client_redeems_with_its_id_and_the_verifier(self):
        form = dict(browser.exchange_form(run.BROWSER_CLIENT, "the-code", "the-verifier"))
        self.assertEqual(form, {"grant_type": "authorization_code", "code": "the-code",
                                "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": "the-verifier",
                                "client_id": "bench-web"})


class BrowserScriptsTest(unittest.TestCase):
    def test_minting_sends_the_cookie_and_keeps_codes_of_302s_only(self):
        script = run.code_minting_script("a=1; b=2", "/scratch/codes-x/thread-")
        self.assertIn('wrk.headers["Cookie"] = "a=1; b=2"', script)
        self.assertIn('io.open("/scratch/codes-x/thread-" .. id .. ".codes", "w")', script)
        self.assertIn("status == 302", script)

    def test_each_exchange_thread_takes_every_nth_code_once(self):
        script = run.code_exchange_script("/scratch/x.codes", 16, run.BROWSER_CLIENT, "v" * 43)
        self.assertIn('io.lines("/scratch/x.codes")', script)
        self.assertIn("index = index + 16", script)
        self.assertIn("grant_type=authorization_code&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&code_verifier="
                      + "v" * 43 + "&client_id=bench-web&code=", script)

    def test_refresh_chains_of_a_public_client_name_it(self):
        self.assertIn('"grant_type=refresh_token&client_id=bench-web&refresh_token=" .. current',
                      run.refresh_chain_script("/scratch/r", "&client_id=bench-web"))
        self.assertIn('"grant_type=refresh_token&refresh_token=" .. current', run.refresh_chain_script("/scratch/r"))


class DpopKeyTest(unittest.TestCase):
    @staticmethod
    def part(jws, index):
        encoded = jws.split(".")[index]
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))

    def test_a_proof_names_the_request_and_the_token_and_verifies_with_its_public_key(self):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        key = browser.DpopKey()
        proof = key.proof("GET", "http://127.0.0.1:8081/v1/users/me?x=1#y", "the-token", iat=1_700_000_000)

        header, claims = (json.loads(self.part(proof, index)) for index in (0, 1))
        self.assertEqual((header["typ"], header["alg"], header["jwk"]), ("dpop+jwt", "ES256", key.jwk()))
        self.assertNotIn("d", header["jwk"])
        self.assertEqual((claims["htm"], claims["htu"], claims["iat"]),
                         ("GET", "http://127.0.0.1:8081/v1/users/me", 1_700_000_000))
        self.assertEqual(self.part(f"x.{claims['ath']}", 1), hashlib.sha256(b"the-token").digest())
        signature = self.part(proof, 2)
        self.assertEqual(len(signature), 64)
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        key._key.public_key().verify(der, proof.rsplit(".", 1)[0].encode(), ec.ECDSA(hashes.SHA256()))
        self.assertNotEqual(json.loads(self.part(key.proof("GET", "http://a/"), 1))["jti"], claims["jti"])

    def test_a_saved_key_loads_with_the_same_thumbprint(self):
        key = browser.DpopKey()
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"dpop-test-{os.getpid()}.pem")
        try:
            key.save(path)
            self.assertEqual(browser.DpopKey.load(path).thumbprint(), key.thumbprint())
        finally:
            os.remove(path)
        self.assertNotEqual(browser.DpopKey().thumbprint(), key.thumbprint())


if __name__ == "__main__":
    unittest.main()
