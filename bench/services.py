"""The platform's services as services.toml at the workspace root lists them (the file that
testkit::services reads for platform and the end-to-end tests), with the same checks. Read by
bench/harness.py and so by bench/run.py, bench/flood.py and bench/stack.py (which
scripts/schemathesis.sh runs). Standard library only (tomllib: Python 3.11).
"""
import os
import re
import tomllib
from collections import namedtuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICES_TOML = os.path.join(ROOT, "services.toml")

Service = namedtuple("Service", "name port data_dir role client_id urls user_audience")
Service.__doc__ = """One binary: name (binary and package), contract port on 127.0.0.1, data_dir (its
sub-directory of a stack's data dir), role ("auth-server" or "resource"), and for a resource
service client_id (None, or the client it calls other services as), urls ({environment variable:
service whose base URL it gets}) and user_audience (whether users' tokens are for it)."""

AUTH_KEYS = {"name", "port", "data_dir"}
RESOURCE_KEYS = AUTH_KEYS | {"client_id", "urls", "user_audience"}
WEB_APP_KEYS = AUTH_KEYS | {"urls"}


class Services(namedtuple("Services", "all web_apps")):
    """Every service with an API, the auth server first, then the resource services in start
    order; and apart, the browser apps (`[[web_app]]`, role "web"): the harness measures and
    Schemathesis tests APIs, which a web app does not have, so `all` leaves them out."""

    @property
    def auth_server(self):
        return self.all[0]

    @property
    def resource_services(self):
        return self.all[1:]

    @property
    def names(self):
        return [service.name for service in self.all]

    def get(self, name):
        return next((service for service in self.all if service.name == name), None)

    def user_audiences(self):
        return [service.name for service in self.resource_services if service.user_audience]

    def client_id(self):
        """The client id of the service that calls others with client credentials, or None."""
        return next((service.client_id for service in self.resource_services if service.client_id), None)


def _entry(table, role, keys):
    if not isinstance(table, dict):
        raise ValueError(f"a {role} entry must be a table, not {table!r}")
    unknown = set(table) - keys
    if unknown:
        raise ValueError(f"{table.get('name', role)}: unknown key(s) {', '.join(sorted(unknown))}")
    missing = AUTH_KEYS - set(table)
    if missing:
        raise ValueError(f"{table.get('name', role)}: missing key(s) {', '.join(sorted(missing))}")
    return Service(table["name"], table["port"], table["data_dir"], role, table.get("client_id"),
                   dict(table.get("urls", {})), table.get("user_audience", True))


def parse(text):
    """Parses and checks a services.toml: names, ports and data dirs distinct, every `urls` target
    a listed service, at most one service with a client id. Raises ValueError."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"not TOML: {error}") from None
    unknown = set(document) - {"auth_server", "resource_service", "web_app"}
    if unknown:
        raise ValueError(f"unknown table(s) {', '.join(sorted(unknown))}")
    if "auth_server" not in document:
        raise ValueError("no [auth_server]")
    services = [_entry(document["auth_server"], "auth-server", AUTH_KEYS)]
    services += [_entry(table, "resource", RESOURCE_KEYS) for table in document.get("resource_service", [])]
    web_apps = [_entry(table, "web", WEB_APP_KEYS) for table in document.get("web_app", [])]
    names, ports, data_dirs = set(), set(), set()
    for service in services + web_apps:
        if not isinstance(service.name, str) or not re.fullmatch(r"[a-z-]+", service.name):
            raise ValueError(f"service name {service.name!r}: a package name of lowercase letters and dashes")
        if service.name in names:
            raise ValueError(f"{service.name} is listed twice")
        if not isinstance(service.port, int) or isinstance(service.port, bool) or not 0 < service.port < 65536:
            raise ValueError(f"{service.name}: port {service.port!r} is no contract port")
        if service.port in ports:
            raise ValueError(f"{service.name}: port {service.port} is taken")
        if not isinstance(service.data_dir, str) or service.data_dir in ("", ".", "..") or re.search(r"[/\\]", service.data_dir):
            raise ValueError(f"{service.name}: data_dir {service.data_dir!r} must be one directory name")
        if service.data_dir in data_dirs:
            raise ValueError(f"{service.name}: data_dir {service.data_dir!r} is taken")
        names.add(service.name)
        ports.add(service.port)
        data_dirs.add(service.data_dir)
    for service in services[1:] + web_apps:
        for variable, target in service.urls.items():
            if not re.fullmatch(r"[A-Z_]+", variable):
                raise ValueError(f"{service.name}: {variable!r} is no environment variable name")
            if target not in names:
                raise ValueError(f"{service.name}: {variable} names {target!r}, which is not listed")
        if not isinstance(service.user_audience, bool):
            raise ValueError(f"{service.name}: user_audience must be true or false")
    if sum(1 for service in services if service.client_id) > 1:
        raise ValueError("more than one service has a client_id, but auth-server demo-seed registers one client")
    return Services(tuple(services), tuple(web_apps))


def load(path=SERVICES_TOML):
    """The services of the committed services.toml (or of `path`)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return parse(text)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None

