"""Unit tests of the services.toml reader (bench/services.py), the environments the harness
gives each service (bench/harness.py) and the stack's state file (bench/stack.py): no network and
no project binary is run.

    python3 -m unittest discover -s bench -p 'test_*.py'
"""
import os
import sys
import tomllib
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import services  # noqa: E402
import stack  # noqa: E402

MINIMAL = """
[auth_server]
name = "auth-server"
port = 8080
data_dir = "auth"
"""


def with_resource(fields):
    return MINIMAL + "\n[[resource_service]]\n" + fields + "\n"


class CommittedServicesTest(unittest.TestCase):
    def test_every_service_crate_of_the_workspace_is_listed_and_nothing_else(self):
        with open(os.path.join(services.ROOT, "Cargo.toml"), "rb") as f:
            members = tomllib.load(f)["workspace"]["members"]
        crates = sorted(member for member in members if member.endswith(("-server", "-service", "-web")))

        committed = services.load()
        self.assertEqual(sorted(committed.names + [app.name for app in committed.web_apps]), crates)

    def test_the_demo_web_app_is_a_web_app_kept_out_of_the_services_with_an_api(self):
        committed = services.load()

        self.assertEqual([(app.name, app.port, app.role) for app in committed.web_apps], [("demo-web", 8083, "web")])
        self.assertNotIn("demo-web", committed.names)
        self.assertEqual(committed.web_apps[0].urls,
                         {"USERS_SERVICE_URL": "users-service", "ORDERS_SERVICE_URL": "orders-service"})

    def test_ports_and_data_dirs_are_distinct_and_the_contract_ones(self):
        committed = services.load()

        ports = [service.port for service in committed.all]
        data_dirs = [service.data_dir for service in committed.all]
        self.assertEqual(len(set(ports)), len(ports))
        self.assertEqual(len(set(data_dirs)), len(data_dirs))
        contract = {(s.name, s.port, s.data_dir) for s in committed.all}
        self.assertTrue({("auth-server", 8080, "auth"), ("users-service", 8081, "users"),
                         ("orders-service", 8082, "orders")} <= contract)

    def test_the_auth_server_comes_first_and_orders_service_is_the_client(self):
        committed = services.load()

        self.assertEqual(committed.auth_server.role, "auth-server")
        self.assertTrue(all(service.role == "resource" for service in committed.resource_services))
        self.assertEqual(committed.client_id(), "orders-service")
        self.assertEqual(committed.get("orders-service").urls, {"USERS_SERVICE_URL": "users-service"})
        self.assertEqual(committed.user_audiences()[:2], ["users-service", "orders-service"])


class ParseTest(unittest.TestCase):
    def test_a_web_app_is_checked_like_the_others(self):
        web = MINIMAL + '\n[[web_app]]\nname = "a-web"\nport = 1\ndata_dir = "w"\n'

        self.assertEqual(len(services.parse(web).web_apps), 1)
        for text, reason in [
            (web.replace("port = 1", "port = 8080"), "port 8080 is taken"),
            (web + 'urls = { X_URL = "b-service" }\n', "not listed"),
            (web + 'client_id = "x"\n', "unknown key"),
        ]:
            with self.assertRaises(ValueError) as raised:
                services.parse(text)
            self.assertIn(reason, str(raised.exception))

    def test_resource_keys_have_defaults(self):
        parsed = services.parse(with_resource('name = "a-service"\nport = 1\ndata_dir = "a"'))

        self.assertEqual(parsed.get("a-service"),
                         services.Service("a-service", 1, "a", "resource", None, {}, True))

    def test_inconsistent_files_are_rejected_with_the_reason(self):
        cases = [
            (with_resource('name = "a-service"\nport = 8080\ndata_dir = "a"'), "port 8080 is taken"),
            (with_resource('name = "auth-server"\nport = 1\ndata_dir = "a"'), "listed twice"),
            (with_resource('name = "a-service"\nport = 1\ndata_dir = "auth"'), "data_dir 'auth' is taken"),
            (with_resource('name = "a-service"\nport = 1\ndata_dir = "a/b"'), "one directory name"),
            (with_resource('name = "A_service"\nport = 1\ndata_dir = "a"'), "lowercase letters and dashes"),
            (with_resource('name = "a-service"\nport = 0\ndata_dir = "a"'), "no contract port"),
            (with_resource('name = "a-service"\nport = 1\ndata_dir = "a"\nurls = { B_URL = "b-service" }'), "not listed"),
            (with_resource('name = "a-service"\nport = 1\ndata_dir = "a"\nurls = { b_url = "auth-server" }'),
             "no environment variable name"),
            (with_resource('name = "a-service"\nport = 1\ndata_dir = "a"\nclient-id = "a"'), "unknown key(s) client-id"),
            (MINIMAL.replace("port = 8080", 'port = 8080\nclient_id = "x"'), "unknown key(s) client_id"),
            (MINIMAL.replace("port = 8080", ""), "missing key(s) port"),
            ("[resource_service]\n", "no [auth_server]"),
            (MINIMAL + "\n[[resource_service]]\nname = \"a-service\"\nport = 1\ndata_dir = \"a\"\nclient_id = \"a\"\n"
             "[[resource_service]]\nname = \"b-service\"\nport = 2\ndata_dir = \"b\"\nclient_id = \"b\"\n",
             "demo-seed registers one client"),
            ("[auth_server\n", "not TOML"),
        ]
        for text, reason in cases:
            with self.subTest(reason=reason), self.assertRaises(ValueError) as context:
                services.parse(text)
            self.assertIn(reason, str(context.exception))


# A port per committed service, in the file's order.
PORTS = {service.name: 7000 + index for index, service in enumerate(services.load().all)}


def url(name):
    return f"http://127.0.0.1:{PORTS[name]}"


class StackEnvironmentsTest(unittest.TestCase):
    def test_the_auth_server_gets_its_own_url_as_issuer_and_the_user_audiences(self):
        environment = harness.stack_environments(PORTS)["auth-server"]

        self.assertEqual(environment["ISSUER"], url("auth-server"))
        self.assertEqual(environment["TOKEN_AUDIENCES"], ",".join(services.load().user_audiences()))
        self.assertTrue(environment["TOKEN_AUDIENCES"].startswith("users-service,orders-service"))

    def test_resource_services_get_the_issuer_their_urls_and_with_a_secret_client_credentials(self):
        without = harness.stack_environments(PORTS)
        seeded = harness.stack_environments(PORTS, seed_secret="s3cret")

        self.assertEqual(without["users-service"], {"AUTH_ISSUER": url("auth-server")})
        self.assertEqual(without["orders-service"],
                         {"AUTH_ISSUER": url("auth-server"), "USERS_SERVICE_URL": url("users-service")})
        self.assertEqual(seeded["orders-service"]["CLIENT_ID"], "orders-service")
        self.assertEqual(seeded["orders-service"]["CLIENT_SECRET"], "s3cret")
        self.assertNotIn("CLIENT_SECRET", seeded["users-service"])

    def test_every_service_has_an_environment_in_start_order(self):
        self.assertEqual(list(harness.stack_environments(PORTS)), services.load().names)


class StackStateTest(unittest.TestCase):
    def test_the_state_names_every_service_with_its_role_and_the_client(self):
        class Started:
            def __init__(self, name):
                self.name, self.url = name, url(name)

        document = stack.state([(Started(name), 0.1) for name in PORTS], "s3cret")

        self.assertEqual(document["services"][0], {"name": "auth-server", "url": url("auth-server"),
                                                   "role": "auth-server"})
        self.assertEqual({s["role"] for s in document["services"][1:]}, {"resource"})
        self.assertEqual([s["name"] for s in document["services"]], services.load().names)
        self.assertEqual((document["client_id"], document["client_secret"]), ("orders-service", "s3cret"))


if __name__ == "__main__":
    unittest.main()
