//! The platform's services as the workspace's `services.toml` lists them: name, contract port,
//! data dir, and what a resource service or a browser app needs from the rest of the stack. The file is compiled
//! in, so `platform` and the end-to-end tests start exactly the services it names.

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use serde::Deserialize;

/// The committed `services.toml`, as text.
pub const SERVICES_TOML: &str = include_str!("../../services.toml");

/// Every service of the platform: the auth server first, then the resource services, then the
/// browser apps, each in the file's order (the order a stack starts them in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Services {
    services: Vec<Service>,
}

/// One binary of the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The binary and its package; for a resource service also its token audience.
    pub name: String,
    /// Its contract port on 127.0.0.1 (the default of its `LISTEN_ADDR`).
    pub port: u16,
    /// Its sub-directory of a stack's data dir.
    pub data_dir: String,
    /// What it is.
    pub role: Role,
}

/// What a service is to the rest of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The authorization server: gets `ISSUER` and `TOKEN_AUDIENCES`.
    AuthServer,
    /// A protected resource service: gets `AUTH_ISSUER`.
    Resource(ResourceNeeds),
    /// A browser app (the demo web app): gets `AUTH_ISSUER` and the services' URLs for the
    /// browser, and its origin is in every other binary's `CORS_ALLOWED_ORIGINS`. It has no API
    /// of its own and no token audience.
    WebApp(WebAppNeeds),
}

/// What a browser app needs besides the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAppNeeds {
    /// Environment variables set to another service's base URL, by variable.
    pub urls: BTreeMap<String, String>,
}

/// What a resource service needs besides the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceNeeds {
    /// The OAuth client it calls other services as (`CLIENT_ID`, with the seeded
    /// `CLIENT_SECRET`), if it calls any.
    pub client_id: Option<String>,
    /// Environment variables set to another service's base URL, by variable.
    pub urls: BTreeMap<String, String>,
    /// Whether users' access tokens are for it (it is in the auth server's `TOKEN_AUDIENCES`).
    pub user_audience: bool,
}

impl Service {
    /// `127.0.0.1:port`, where it listens by default.
    pub fn contract_address(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Its needs, if it is a resource service.
    pub fn resource(&self) -> Option<&ResourceNeeds> {
        match &self.role {
            Role::Resource(needs) => Some(needs),
            Role::AuthServer | Role::WebApp(_) => None,
        }
    }

    /// Whether it is a browser app.
    pub fn is_web_app(&self) -> bool {
        matches!(self.role, Role::WebApp(_))
    }

    /// The environment variables it gets set to other services' URLs.
    pub fn urls(&self) -> Option<&BTreeMap<String, String>> {
        match &self.role {
            Role::Resource(needs) => Some(&needs.urls),
            Role::WebApp(needs) => Some(&needs.urls),
            Role::AuthServer => None,
        }
    }
}

impl Services {
    /// The services of the committed `services.toml`, parsed once.
    ///
    /// # Panics
    ///
    /// When the file is invalid: a defect of the build, like code that does not compile (this
    /// module's tests parse it), so the message is all that start-up can give.
    pub fn committed() -> &'static Self {
        static COMMITTED: OnceLock<Services> = OnceLock::new();
        COMMITTED.get_or_init(|| match Self::parse(SERVICES_TOML) {
            Ok(services) => services,
            Err(error) => panic!("services.toml at the workspace root is invalid: {error:#}"),
        })
    }

    /// Parses and checks a `services.toml`: names, ports and data dirs distinct, every `urls`
    /// target a listed service, at most one service with a client id.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: File = toml::from_str(text)?;
        let auth = file.auth_server;
        let mut services = vec![Service {
            name: auth.name,
            port: auth.port,
            data_dir: auth.data_dir,
            role: Role::AuthServer,
        }];
        services.extend(file.resource_service.into_iter().map(|entry| Service {
            name: entry.name,
            port: entry.port,
            data_dir: entry.data_dir,
            role: Role::Resource(ResourceNeeds {
                client_id: entry.client_id,
                urls: entry.urls,
                user_audience: entry.user_audience,
            }),
        }));
        services.extend(file.web_app.into_iter().map(|entry| Service {
            name: entry.name,
            port: entry.port,
            data_dir: entry.data_dir,
            role: Role::WebApp(WebAppNeeds { urls: entry.urls }),
        }));
        let services = Self { services };
        services.check()?;
        Ok(services)
    }

    fn check(&self) -> anyhow::Result<()> {
        let (mut names, mut ports, mut data_dirs) = (HashSet::new(), HashSet::new(), HashSet::new());
        for service in &self.services {
            let name = &service.name;
            anyhow::ensure!(
                !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_lowercase() || byte == b'-'),
                "service name {name:?}: a package name of lowercase letters and dashes"
            );
            anyhow::ensure!(names.insert(name.as_str()), "{name} is listed twice");
            anyhow::ensure!(service.port != 0, "{name}: port 0 is no contract port");
            anyhow::ensure!(ports.insert(service.port), "{name}: port {} is taken", service.port);
            anyhow::ensure!(
                !service.data_dir.is_empty()
                    && !service.data_dir.contains(['/', '\\'])
                    && service.data_dir != "."
                    && service.data_dir != "..",
                "{name}: data_dir {:?} must be one directory name",
                service.data_dir
            );
            anyhow::ensure!(
                data_dirs.insert(service.data_dir.as_str()),
                "{name}: data_dir {:?} is taken",
                service.data_dir
            );
        }
        for service in &self.services {
            let Some(urls) = service.urls() else { continue };
            for (variable, target) in urls {
                anyhow::ensure!(
                    !variable.is_empty()
                        && variable.bytes().all(|byte| byte.is_ascii_uppercase() || byte == b'_'),
                    "{}: {variable:?} is no environment variable name",
                    service.name
                );
                anyhow::ensure!(
                    self.get(target).is_some(),
                    "{}: {variable} names {target:?}, which is not listed",
                    service.name
                );
            }
        }
        let clients =
            self.resource_services().filter_map(Service::resource).filter(|needs| needs.client_id.is_some());
        anyhow::ensure!(
            clients.count() <= 1,
            "more than one service has a client_id, but auth-server demo-seed registers one client"
        );
        Ok(())
    }

    /// Every service, the auth server first.
    pub fn all(&self) -> &[Service] {
        &self.services
    }

    /// The auth server.
    pub fn auth_server(&self) -> &Service {
        // `parse` always puts it first.
        &self.services[0]
    }

    /// The resource services, in start order.
    pub fn resource_services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().filter(|service| service.resource().is_some())
    }

    /// The browser apps, in start order (after the resource services).
    pub fn web_apps(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().filter(|service| service.is_web_app())
    }

    /// The browser origins of the web apps on their contract ports: what the other binaries'
    /// `CORS_ALLOWED_ORIGINS` lists (a launcher on other ports computes its own).
    pub fn web_origins(&self) -> Vec<String> {
        self.web_apps().map(|service| format!("http://{}", service.contract_address())).collect()
    }

    /// The service called `name`.
    pub fn get(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|service| service.name == name)
    }

    /// The audiences of users' access tokens: the resource services with `user_audience`.
    pub fn user_audiences(&self) -> Vec<&str> {
        self.resource_services()
            .filter(|service| service.resource().is_some_and(|needs| needs.user_audience))
            .map(|service| service.name.as_str())
            .collect()
    }
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    auth_server: AuthServerEntry,
    #[serde(default)]
    resource_service: Vec<ResourceEntry>,
    #[serde(default)]
    web_app: Vec<WebAppEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthServerEntry {
    name: String,
    port: u16,
    data_dir: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceEntry {
    name: String,
    port: u16,
    data_dir: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    urls: BTreeMap<String, String>,
    #[serde(default = "yes")]
    user_audience: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebAppEntry {
    name: String,
    port: u16,
    data_dir: String,
    #[serde(default)]
    urls: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn workspace_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
    }

    /// The workspace members that are binaries of the platform: `*-server`, `*-service` and
    /// `*-web`.
    fn service_crates() -> Vec<String> {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        let manifest: toml::Table = toml::from_str(&manifest).unwrap();
        let members = manifest["workspace"]["members"].as_array().unwrap();
        let mut crates: Vec<String> = members
            .iter()
            .map(|member| member.as_str().unwrap().to_owned())
            .filter(|member| ["-server", "-service", "-web"].iter().any(|suffix| member.ends_with(suffix)))
            .collect();
        crates.sort();
        crates
    }

    fn rust_sources(directory: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(rust_sources(&path));
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(path);
            }
        }
        files
    }

    const MINIMAL: &str = r#"
        [auth_server]
        name = "auth-server"
        port = 8080
        data_dir = "auth"
    "#;

    #[test]
    fn the_committed_file_lists_exactly_the_service_crates_of_the_workspace() {
        let services = Services::committed();

        let mut listed: Vec<String> = services.all().iter().map(|service| service.name.clone()).collect();
        listed.sort();
        assert_eq!(listed, service_crates());
        assert_eq!(services.auth_server().name, "auth-server");
        assert!(services.resource_services().count() >= 2);
    }

    #[test]
    fn the_committed_ports_are_the_defaults_the_services_own_code_listens_on() {
        let services = Services::committed();

        for service in services.all() {
            let address = format!("\"127.0.0.1:{}\"", service.port);
            let sources = rust_sources(&workspace_root().join(&service.name).join("src"));
            let found = sources.iter().any(|file| std::fs::read_to_string(file).unwrap().contains(&address));
            assert!(
                found,
                "{} lists port {}, but no source of its crate has {address}",
                service.name, service.port
            );
        }
    }

    #[test]
    fn the_committed_file_keeps_the_contract_of_the_three_services() {
        let services = Services::committed();

        let described: Vec<(&str, u16, &str)> = services
            .all()
            .iter()
            .filter(|service| {
                ["auth-server", "users-service", "orders-service"].contains(&service.name.as_str())
            })
            .map(|service| (service.name.as_str(), service.port, service.data_dir.as_str()))
            .collect();
        assert_eq!(
            described,
            [
                ("auth-server", 8080, "auth"),
                ("users-service", 8081, "users"),
                ("orders-service", 8082, "orders")
            ]
        );
        let orders = services.get("orders-service").unwrap().resource().unwrap();
        assert_eq!(orders.client_id.as_deref(), Some("orders-service"));
        assert_eq!(orders.urls["USERS_SERVICE_URL"], "users-service");
        assert!(
            services.user_audiences().starts_with(&["users-service", "orders-service"]),
            "auth-server's default audiences come first"
        );
    }

    #[test]
    fn the_demo_web_app_is_a_web_app_on_the_origin_its_client_is_registered_for() {
        let services = Services::committed();

        let demo = services.get("demo-web").unwrap();
        assert!(demo.is_web_app() && demo.resource().is_none());
        assert_eq!(demo.port, 8083);
        let urls = demo.urls().unwrap();
        assert_eq!(urls["USERS_SERVICE_URL"], "users-service");
        assert_eq!(urls["ORDERS_SERVICE_URL"], "orders-service");
        // auth-server demo-seed registers demo-web with http://127.0.0.1:8083/callback.
        assert_eq!(services.web_origins(), ["http://127.0.0.1:8083"]);
        assert!(!services.user_audiences().contains(&"demo-web"), "no token audience");
        assert!(services.resource_services().all(|service| !service.is_web_app()));
    }

    #[test]
    fn a_web_app_is_checked_like_the_others() {
        let web = |fields: &str| format!("{MINIMAL}\n[[web_app]]\n{fields}\n");

        let parsed = Services::parse(&web("name = \"a-web\"\nport = 1\ndata_dir = \"w\"")).unwrap();
        assert_eq!(parsed.web_apps().count(), 1);
        for (text, reason) in [
            (web("name = \"a-web\"\nport = 8080\ndata_dir = \"w\""), "port 8080 is taken"),
            (web("name = \"a-web\"\nport = 1\ndata_dir = \"w\"\nurls = { X_URL = \"b\" }"), "not listed"),
            (web("name = \"a-web\"\nport = 1\ndata_dir = \"w\"\nclient_id = \"x\""), "unknown field"),
        ] {
            let error = format!("{:#}", Services::parse(&text).unwrap_err());
            assert!(error.contains(reason), "expected {reason:?}, got {error:?} for\n{text}");
        }
    }

    #[test]
    fn a_file_with_only_the_auth_server_has_no_resource_services() {
        let services = Services::parse(MINIMAL).unwrap();

        assert_eq!(services.all().len(), 1);
        assert_eq!(services.auth_server().role, Role::AuthServer);
        assert_eq!(services.auth_server().contract_address(), "127.0.0.1:8080".parse().unwrap());
        assert!(services.user_audiences().is_empty());
    }

    #[test]
    fn resource_keys_have_defaults() {
        let text =
            format!("{MINIMAL}\n[[resource_service]]\nname = \"a-service\"\nport = 1\ndata_dir = \"a\"\n");

        let services = Services::parse(&text).unwrap();

        let needs = services.get("a-service").unwrap().resource().unwrap();
        assert_eq!(needs, &ResourceNeeds { client_id: None, urls: BTreeMap::new(), user_audience: true });
    }

    #[test]
    fn inconsistent_files_are_rejected_with_the_reason() {
        let resource = |fields: &str| format!("{MINIMAL}\n[[resource_service]]\n{fields}\n");
        let cases = [
            (resource("name = \"a-service\"\nport = 8080\ndata_dir = \"a\""), "port 8080 is taken"),
            (resource("name = \"auth-server\"\nport = 1\ndata_dir = \"a\""), "listed twice"),
            (resource("name = \"a-service\"\nport = 1\ndata_dir = \"auth\""), "data_dir \"auth\" is taken"),
            (resource("name = \"a-service\"\nport = 1\ndata_dir = \"a/b\""), "one directory name"),
            (resource("name = \"A_service\"\nport = 1\ndata_dir = \"a\""), "lowercase letters and dashes"),
            (resource("name = \"a-service\"\nport = 0\ndata_dir = \"a\""), "port 0"),
            (
                resource(
                    "name = \"a-service\"\nport = 1\ndata_dir = \"a\"\nurls = { B_URL = \"b-service\" }",
                ),
                "not listed",
            ),
            (
                resource(
                    "name = \"a-service\"\nport = 1\ndata_dir = \"a\"\nurls = { b_url = \"auth-server\" }",
                ),
                "no environment variable name",
            ),
            (
                resource("name = \"a-service\"\nport = 1\ndata_dir = \"a\"\nclient-id = \"a\""),
                "unknown field",
            ),
            (MINIMAL.replace("port = 8080", "port = 8080\nclient_id = \"x\""), "unknown field"),
            (MINIMAL.replace("port = 8080", ""), "missing field"),
        ];
        for (text, reason) in cases {
            let error = format!("{:#}", Services::parse(&text).unwrap_err());
            assert!(error.contains(reason), "expected {reason:?}, got {error:?} for\n{text}");
        }
    }

    #[test]
    fn two_services_with_client_credentials_are_rejected() {
        let text = format!(
            "{MINIMAL}\n[[resource_service]]\nname = \"a-service\"\nport = 1\ndata_dir = \"a\"\nclient_id = \"a\"\n\
             [[resource_service]]\nname = \"b-service\"\nport = 2\ndata_dir = \"b\"\nclient_id = \"b\"\n"
        );

        let error = Services::parse(&text).unwrap_err().to_string();

        assert!(error.contains("demo-seed registers one client"), "{error}");
    }
}
