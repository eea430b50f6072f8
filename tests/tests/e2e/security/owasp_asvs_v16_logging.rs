//! OWASP ASVS 5.0 chapter V16, security logging, on the real auth-server binary, whose logs go
//! to standard error (captured here to a file through `testkit::launch`): request values are
//! encoded so they cannot forge a log entry (16.4.1, CWE-117), and credentials and tokens are
//! never logged (16.2.5), in the text format and in `LOG_FORMAT=json`.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use testkit::Services;
use testkit::launch::{self, Launcher};

/// A whole log entry as the text format writes one, with a timestamp no real entry has.
const FORGED: &str = "2099-01-01T00:00:00.000000Z  INFO forged-entry: login succeeded user_id=\"admin\"";
/// A client secret an attacker sends with the forged client id.
const ATTACKER_SECRET: &str = "attacker-sent-secret-7f3a";
/// The password of the user this test registers.
const PASSWORD: &str = "logged-user-password-91c2";

/// `value` with every byte but ASCII letters and digits percent-encoded (what RFC 6749
/// §2.3.1 asks of a client id inside HTTP Basic).
fn percent_encoded(value: &str) -> String {
    value
        .bytes()
        .map(
            |byte| {
                if byte.is_ascii_alphanumeric() { (byte as char).to_string() } else { format!("%{byte:02X}") }
            },
        )
        .collect()
}

/// `line` without ANSI colour sequences.
fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(character) = chars.next() {
        if character == '\u{1b}' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(character);
        }
    }
    out
}

/// What the test sent that must not show in the log, and the injected requests it made.
struct Sent {
    secrets: Vec<(&'static str, String)>,
    injections: usize,
}

/// Drives the running auth server at `url`: injections through the token endpoint (form and
/// Basic, LF and CR), the login and an unknown path; then every credential flow once.
async fn exercise(url: &str, client_secret: &str) -> Sent {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let token_endpoint = format!("{url}/oauth2/token");
    let mut injections = 0;
    for separator in ["\n", "\r", "\r\n"] {
        let client_id = format!("a{separator}{FORGED}");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", ATTACKER_SECRET),
        ];
        let by_form = http.post(&token_endpoint).form(&form).send().await.unwrap();
        assert_eq!(by_form.status(), 401, "form client_id with {separator:?}");
        let by_basic = http
            .post(&token_endpoint)
            .basic_auth(percent_encoded(&client_id), Some(ATTACKER_SECRET))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(by_basic.status(), 401, "Basic client_id with {separator:?}");
        injections += 2;
    }
    let login = json!({"username": format!("a\n{FORGED}"), "password": ATTACKER_SECRET});
    let response = http.post(format!("{url}/v1/auth/login")).json(&login).send().await.unwrap();
    assert!(response.status().is_client_error(), "login with a newline in the username");
    let response =
        http.get(format!("{url}/no-such-path%0A{}", percent_encoded(FORGED))).send().await.unwrap();
    assert_eq!(response.status(), 404);
    injections += 2;

    let account = json!({"username": "logged-user", "password": PASSWORD});
    assert_eq!(http.post(format!("{url}/v1/users")).json(&account).send().await.unwrap().status(), 201);
    let wrong = json!({"username": "logged-user", "password": "not-the-password-at-all"});
    assert_eq!(http.post(format!("{url}/v1/auth/login")).json(&wrong).send().await.unwrap().status(), 401);
    let login: Value =
        http.post(format!("{url}/v1/auth/login")).json(&account).send().await.unwrap().json().await.unwrap();
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    let refreshed: Value = http
        .post(&token_endpoint)
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let form =
        [("grant_type", "client_credentials"), ("client_id", "reports"), ("client_secret", client_secret)];
    let service: Value = http.post(&token_endpoint).form(&form).send().await.unwrap().json().await.unwrap();
    let service = service["access_token"].as_str().unwrap().to_owned();
    let by_basic = http
        .post(&token_endpoint)
        .basic_auth("reports", Some(client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(by_basic.status(), 200);
    for path in ["/oauth2/introspect", "/oauth2/revoke"] {
        let response = http
            .post(format!("{url}{path}"))
            .basic_auth("reports", Some(client_secret))
            .form(&[("token", &service)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let new_access = refreshed["access_token"].as_str().unwrap().to_owned();
    let logout = http.post(format!("{url}/v1/auth/logout")).bearer_auth(&new_access).send().await.unwrap();
    assert_eq!(logout.status(), 204);
    let secrets = vec![
        ("the user's password", PASSWORD.to_owned()),
        ("the attacker's client secret", ATTACKER_SECRET.to_owned()),
        ("the client secret", client_secret.to_owned()),
        ("an access token", access),
        ("a refresh token", refresh),
        ("the refreshed access token", new_access),
        ("the rotated refresh token", refreshed["refresh_token"].as_str().unwrap().to_owned()),
        ("a service token", service),
    ];
    Sent { secrets, injections }
}

/// ASVS 16.4.1 ("all logging components appropriately encode data to prevent log injection")
/// and 16.2.5 (credentials are not logged; tokens only hashed or masked), on the real binary
/// with `RUST_LOG=debug`, in both log formats. A client id, a username and a path carrying a
/// newline or carriage return and a whole forged entry reach the log (so the test sees them)
/// only inside the genuine entry: no line of the log starts with the forged timestamp, and in
/// JSON every line is one object. No password, client secret or token appears anywhere.
#[tokio::test]
async fn request_values_cannot_forge_log_entries_and_secrets_never_reach_the_log() {
    let services = Services::committed();
    let mut cases = 0;
    for format in ["text", "json"] {
        let data = tempfile::tempdir().unwrap();
        let log_dir = tempfile::tempdir().unwrap();
        let launcher = Launcher::new(
            services.clone(),
            launch::workspace_binaries(services).unwrap(),
            data.path(),
            SecretString::from("v16-unused-demo-secret"),
        )
        .on_free_ports()
        .unwrap()
        .auth_env("LOG_FORMAT", format)
        .auth_env("NO_COLOR", 1)
        .auth_env("ARGON2_MEMORY_KIB", 1024)
        .auth_env("ARGON2_ITERATIONS", 1)
        .rust_log("debug");
        let created = launcher
            .run(
                "auth-server",
                &["clients", "create", "reports", "--scope", "users:read", "--audience", "users-service"],
            )
            .await
            .unwrap();
        let created: Value = serde_json::from_str(&created).unwrap();
        let client_secret = created["client_secret"].as_str().unwrap().to_owned();
        let log_path = log_dir.path().join("auth-server.log");
        let process = launcher
            .start_logging_to("auth-server", std::fs::File::create(&log_path).unwrap())
            .await
            .unwrap();

        let sent = exercise(&launcher.url("auth-server").unwrap(), &client_secret).await;
        process.terminate().await;
        let log = std::fs::read_to_string(&log_path).unwrap();

        assert!(
            log.contains("login succeeded"),
            "{format}: the capture did not see the server's logs:\n{log}"
        );
        assert!(
            log.contains("client authentication failed"),
            "{format}: the refused clients were not logged"
        );
        let carrying: Vec<&str> = log.lines().filter(|line| line.contains("forged-entry")).collect();
        assert!(!carrying.is_empty(), "{format}: no injected value was logged, so nothing was tested");
        let mut forged = Vec::new();
        for line in log.lines().filter(|line| !line.trim().is_empty()) {
            let line = plain(line);
            let genuine = match format {
                "json" => serde_json::from_str::<Value>(&line).is_ok_and(|entry| {
                    entry["timestamp"].as_str().is_some_and(|timestamp| !timestamp.starts_with("2099"))
                }),
                _ => {
                    !line.trim_start().starts_with("2099-01-01")
                        && !line.trim_start().starts_with("INFO forged")
                }
            };
            if !genuine {
                forged.push(line);
            }
        }
        assert!(forged.is_empty(), "{format}: forged or broken log lines:\n{}", forged.join("\n"));
        for (what, secret) in &sent.secrets {
            assert!(!log.contains(secret.as_str()), "{format}: {what} reached the log");
        }
        println!(
            "[ASVS 16.4.1, 16.2.5: {format} logs of the real auth-server] {} injections ({} lines carry them, \
             escaped), {} secrets: all as required",
            sent.injections,
            carrying.len(),
            sent.secrets.len()
        );
        cases += sent.injections + sent.secrets.len();
    }
    assert_eq!(cases, 2 * (8 + 8));
}
