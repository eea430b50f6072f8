"""A scripted browser for the auth server's hosted login, the Python counterpart of
testkit/src/browser.rs: a keep-alive connection, a cookie jar, forms read off the page, redirects
never followed. bench/run.py's browser section drives it; only 127.0.0.1 is targeted.

A flow is what a user of a relying party does (DESIGN.md "Authorization endpoint and hosted
login"): GET /oauth2/authorize, which answers the login page; POST the page's form (its hidden
inputs unchanged, plus the credentials) to /oauth2/login, which answers 302 to the redirect URI
with code, state and iss; then the relying party's POST /oauth2/token with grant_type
authorization_code, the PKCE verifier and its client_id (a public client). A client registered
with `--dpop` (demo-web) sends a DPoP proof with it (DpopKey), and then with every call made with
the token it gets.
"""
import base64
import hashlib
import html.parser
import http.client
import itertools
import json
import secrets
import threading
import time
import urllib.parse
from collections import Counter, namedtuple

FORM = "application/x-www-form-urlencoded"

Form = namedtuple("Form", "action method fields")
Form.__doc__ = """action and method as written in the page; fields: [(name, value)] of its named
inputs in page order (what a browser submits, buttons excluded)."""

Response = namedtuple("Response", "status headers body")
Client = namedtuple("Client", "client_id redirect_uri scope")
FlowRun = namedtuple("FlowRun", "flows seconds failures client_cpu_seconds")
FlowRun.__doc__ = """flows: completed flows (tokens received); seconds: wall time; failures:
Counter of "step status" for flows that did not complete; client_cpu_seconds: CPU time this
process (the load generator) spent meanwhile."""

# Input types a browser does not submit by themselves.
NOT_SUBMITTED = {"submit", "button", "image", "reset", "file"}


class FlowError(RuntimeError):
    """A step of a flow got an answer other than the expected one."""

    def __init__(self, step, status, detail=""):
        super().__init__(f"{step}: {status} {detail}".strip())
        self.step, self.status = step, status


class _FormParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self._open = None

    def handle_starttag(self, tag, attrs):
        attributes = {name: (value if value is not None else "") for name, value in attrs}
        if tag == "form":
            self._open = Form(attributes.get("action", ""), attributes.get("method", "get").lower(), [])
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and attributes.get("name"):
            if attributes.get("type", "text").lower() not in NOT_SUBMITTED:
                self._open.fields.append((attributes["name"], attributes.get("value", "")))

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None


def parse_forms(page):
    """Every <form> of an HTML page, with its named inputs (entities decoded)."""
    parser = _FormParser()
    parser.feed(page)
    parser.close()
    return parser.forms


def form_with_action(page, path):
    """The one form of `page` posting to `path` (the action's path, query ignored); None when
    there is none, an error when there are several."""
    forms = [form for form in parse_forms(page) if urllib.parse.urlsplit(form.action).path == path]
    if len(forms) > 1:
        raise ValueError(f"{len(forms)} forms post to {path}")
    return forms[0] if forms else None


def location_params(location):
    """{name: value} of a redirect's query; a repeated name is an error (RFC 6749 §3.1)."""
    params = {}
    for name, value in urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query, keep_blank_values=True):
        if name in params:
            raise ValueError(f"{name} repeated in {location}")
        params[name] = value
    return params


def redirect_target(location):
    """scheme://host[:port]/path of a Location, to compare with the registered redirect URI."""
    parts = urllib.parse.urlsplit(location)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def session_cookie_name(issuer, override=None):
    """The browser-session cookie's name as the auth server derives it from ISSUER
    (Config::session_cookie_name): `SESSION_COOKIE_NAME` when set, else `authsrv_<host>_<port>`
    with every character but ASCII letters and digits as `_`, prefixed `__Host-` under https.
    The CSRF cookie is this name plus `_csrf`."""
    if override:
        return override
    parts = urllib.parse.urlsplit(issuer.rstrip("/"))
    if not parts.scheme or not parts.hostname:
        secure, host = False, issuer.rstrip("/")
    else:
        secure = parts.scheme == "https"
        # The url crate keeps an IPv6 host's brackets; urllib drops them.
        hostname = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
        host = f"{hostname}_{port}"
    host = "".join(c if c.isascii() and c.isalnum() else "_" for c in host)
    return ("__Host-" if secure else "") + f"authsrv_{host}"


def parse_set_cookie(value):
    """(name, value, deleted) of one Set-Cookie header: deleted when Max-Age is 0 or less or
    the value is empty (how the server clears its session cookie)."""
    first, *attributes = value.split(";")
    name, _, cookie_value = first.strip().partition("=")
    deleted = cookie_value == ""
    for attribute in attributes:
        key, _, argument = attribute.strip().partition("=")
        if key.lower() == "max-age":
            try:
                deleted = deleted or int(argument) <= 0
            except ValueError:
                pass
    return name, cookie_value, deleted


class CookieJar:
    """The cookies of one browser for one origin (path, expiry and Secure are not modelled: the
    server sets every cookie on Path=/ of plain-http loopback)."""

    def __init__(self):
        self.cookies = {}

    def update(self, set_cookie_values):
        for value in set_cookie_values:
            name, cookie_value, deleted = parse_set_cookie(value)
            if deleted:
                self.cookies.pop(name, None)
            elif name:
                self.cookies[name] = cookie_value

    def header(self):
        """The Cookie header's value, or None for an empty jar."""
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items()) or None


def pkce_challenge(verifier):
    """The S256 code_challenge of a code_verifier (RFC 7636 §4.2): base64url(SHA-256)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def pkce_pair():
    """(code_verifier, code_challenge): 32 random bytes as the verifier, and its S256."""
    verifier = secrets.token_urlsafe(32)
    return verifier, pkce_challenge(verifier)


def authorize_path(client, challenge, state, nonce):
    """The path and query of an authorization request (response_type=code, PKCE S256)."""
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client.client_id, "redirect_uri": client.redirect_uri,
        "scope": client.scope, "state": state, "nonce": nonce,
        "code_challenge": challenge, "code_challenge_method": "S256",
    })
    return f"/oauth2/authorize?{query}"


class Agent:
    """One browser: a keep-alive connection to the auth server and a cookie jar. Redirects are
    answers, not followed."""

    def __init__(self, base_url, timeout=30):
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port, self.timeout = parts.hostname, parts.port, timeout
        self.connection = None
        self.jar = CookieJar()

    def new_browser(self):
        """Forgets every cookie: the next request comes from a browser that never came here."""
        self.jar = CookieJar()

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def request(self, method, path, form=None, headers=None):
        """One request (a form body when `form`, a list of pairs, is given, and `headers` on top);
        a connection that fails is closed and the error raised, never retried (a login must not be
        sent twice)."""
        headers = dict(headers or {})
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = FORM
        cookie = self.jar.header()
        if cookie:
            headers["Cookie"] = cookie
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.connection.request(method, path, body=body, headers=headers)
            answer = self.connection.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        self.jar.update(answer.headers.get_all("Set-Cookie") or [])
        return Response(answer.status, answer.headers, data.decode("utf-8", "replace"))


def log_in(agent, client, username, password, issuer):
    """GET /oauth2/authorize, then the login form with the credentials. Returns (code,
    code_verifier) from the 302, after checking that it goes to the redirect URI with the
    request's state and the issuer's iss (RFC 9207)."""
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    page = agent.request("GET", authorize_path(client, challenge, state, nonce))
    if page.status != 200:
        raise FlowError("authorize", page.status, page.headers.get("Location", ""))
    form = form_with_action(page.body, "/oauth2/login")
    if form is None or form.method != "post":
        raise FlowError("authorize", page.status, "no login form")
    fields = [(name, value) for name, value in form.fields if name not in ("username", "password")]
    fields += [("username", username), ("password", password)]
    answer = agent.request("POST", urllib.parse.urlsplit(form.action).path, fields)
    location = answer.headers.get("Location")
    if answer.status != 302 or not location:
        raise FlowError("login", answer.status)
    params = location_params(location)
    if redirect_target(location) != client.redirect_uri or "code" not in params:
        raise FlowError("login", answer.status, f"redirect without a code: {location[:120]}")
    if params.get("state") != state or params.get("iss") != issuer:
        raise FlowError("login", answer.status, f"wrong state or iss: {location[:120]}")
    return params["code"], verifier


def exchange_form(client, code, verifier):
    """The token request of a public client redeeming a code."""
    return [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", client.redirect_uri),
            ("code_verifier", verifier), ("client_id", client.client_id)]


def redeem(agent, client, code, verifier, dpop_key=None, issuer=None):
    """POST /oauth2/token for the code; returns the token response (with an id_token). With
    `dpop_key`, the request carries a proof for `issuer`'s token endpoint and the access token
    must come back DPoP-bound to that key."""
    headers = {}
    if dpop_key is not None:
        headers["DPoP"] = dpop_key.proof("POST", f"{issuer}/oauth2/token")
    answer = agent.request("POST", "/oauth2/token", exchange_form(client, code, verifier), headers)
    if answer.status != 200:
        raise FlowError("token", answer.status, answer.body[:200])
    tokens = json.loads(answer.body)
    if "id_token" not in tokens or "refresh_token" not in tokens:
        raise FlowError("token", answer.status, "no id_token or refresh_token")
    if dpop_key is not None and tokens.get("token_type") != "DPoP":
        raise FlowError("token", answer.status, f"a {tokens.get('token_type')} token, not a DPoP-bound one")
    return tokens


def _base64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class DpopKey:
    """A client's ES256 key for DPoP proofs (RFC 9449 §4), from the `cryptography` package
    (imported here only, so the rest of this module needs nothing outside the standard library).
    It can be saved to a PEM file and loaded again, for a shell script that makes one proof per
    call."""

    def __init__(self, private_key=None):
        from cryptography.hazmat.primitives.asymmetric import ec

        self._key = private_key or ec.generate_private_key(ec.SECP256R1())

    @classmethod
    def load(cls, path):
        from cryptography.hazmat.primitives import serialization

        with open(path, "rb") as file:
            return cls(serialization.load_pem_private_key(file.read(), password=None))

    def save(self, path):
        from cryptography.hazmat.primitives import serialization

        pem = self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        with open(path, "wb") as file:
            file.write(pem)

    def jwk(self):
        """The public key as the proof header carries it."""
        numbers = self._key.public_key().public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": _base64url(numbers.x.to_bytes(32, "big")),
                "y": _base64url(numbers.y.to_bytes(32, "big"))}

    def thumbprint(self):
        """RFC 7638: SHA-256 of the required members in lexicographic order, no whitespace."""
        jwk = self.jwk()
        canonical = json.dumps({name: jwk[name] for name in ("crv", "kty", "x", "y")}, separators=(",", ":"))
        return _base64url(hashlib.sha256(canonical.encode()).digest())

    def proof(self, method, url, access_token=None, iat=None):
        """A proof for one request: `htu` the URL without query and fragment, a random `jti`,
        `iat` now (or as given), and `ath` when it goes with an access token."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        parts = urllib.parse.urlsplit(url)
        claims = {"jti": secrets.token_urlsafe(16), "htm": method,
                  "htu": urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
                  "iat": int(time.time()) if iat is None else iat}
        if access_token is not None:
            claims["ath"] = _base64url(hashlib.sha256(access_token.encode()).digest())
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()}
        signing_input = ".".join(_base64url(json.dumps(part, separators=(",", ":")).encode())
                                 for part in (header, claims))
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        # JWS wants r || s, 32 bytes each (RFC 7518 §3.4), not DER.
        return f"{signing_input}.{_base64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def run_flows(base_url, issuer, client, accounts, password, workers, seconds):
    """`workers` threads, each one browser after another (a new cookie jar per flow, one
    keep-alive connection per thread) doing the whole flow as the next of `accounts`, until
    `seconds` have passed; flows under way then are finished and counted."""
    deadline = time.perf_counter() + seconds
    turns = itertools.count()
    lock = threading.Lock()
    done, failures = [0], Counter()

    def worker():
        agent = Agent(base_url)
        try:
            while time.perf_counter() < deadline:
                username = accounts[next(turns) % len(accounts)]
                agent.new_browser()
                try:
                    code, verifier = log_in(agent, client, username, password, issuer)
                    redeem(agent, client, code, verifier)
                except FlowError as error:
                    outcome = f"{error.step} {error.status}"
                except (OSError, http.client.HTTPException) as error:
                    outcome = f"connection {type(error).__name__}"
                else:
                    outcome = None
                with lock:
                    if outcome is None:
                        done[0] += 1
                    else:
                        failures[outcome] += 1
        finally:
            agent.close()

    cpu_before, started = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return FlowRun(done[0], time.perf_counter() - started, failures, time.process_time() - cpu_before)
