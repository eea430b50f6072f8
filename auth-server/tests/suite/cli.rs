//! The operator CLI, run as the real binary against a data dir.
use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;

fn auth_server(data_dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .args(args)
        .env("DATA_DIR", data_dir)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn users_create_reads_the_password_from_stdin_and_refuses_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, _) = auth_server(
        dir.path(),
        &["users", "create", "root", "--role", "admin"],
        Some("  spaced password  \n"),
    );
    assert!(ok);
    let created: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(created["username"], "root");

    let (ok, _, stderr) = auth_server(dir.path(), &["users", "create", "root"], Some("another-password\n"));
    assert!(!ok);
    assert!(stderr.contains("taken"), "{stderr}");

    let (ok, _, stderr) = auth_server(dir.path(), &["users", "create", "shorty"], Some("short\n"));
    assert!(!ok);
    assert!(stderr.contains("at least 8"), "{stderr}");
}

#[test]
fn clients_create_shows_the_secret_once_and_list_never_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, _) = auth_server(
        dir.path(),
        &["clients", "create", "reports", "--scope", "users:read orders:read", "--audience", "users-service"],
        None,
    );
    assert!(ok);
    let created: Value = serde_json::from_str(&stdout).unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 43, "256-bit secret expected");

    let (ok, listed, _) = auth_server(dir.path(), &["clients", "list"], None);
    assert!(ok);
    assert!(listed.contains("reports") && !listed.contains(secret));
    let database = std::fs::read(dir.path().join("auth.sqlite")).unwrap();
    assert!(
        !database.windows(secret.len()).any(|window| window == secret.as_bytes()),
        "secret stored in plain text"
    );

    let (ok, _, _) = auth_server(dir.path(), &["clients", "delete", "reports"], None);
    assert!(ok);
    let (ok, _, _) = auth_server(dir.path(), &["clients", "delete", "reports"], None);
    assert!(!ok);
}

#[test]
fn a_browser_client_is_registered_with_every_flag_and_listed_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = auth_server(
        dir.path(),
        &[
            "clients",
            "create",
            "spa",
            "--public",
            "--first-party",
            "--redirect-uri",
            "http://127.0.0.1:8083/callback",
            "--redirect-uri",
            "https://spa.example/callback",
            "--post-logout-redirect-uri",
            "https://spa.example/",
            "--id-token-alg",
            "RS256",
            "--scope",
            "openid profile:read",
        ],
        None,
    );
    assert!(ok, "{stderr}");
    let created: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(created["client_id"], "spa");
    assert!(created.get("client_secret").is_none(), "a public client has no secret: {created}");

    let (ok, listed, _) = auth_server(dir.path(), &["clients", "list"], None);
    assert!(ok);
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    let spa = listed.iter().find(|client| client["client_id"] == "spa").unwrap();
    assert_eq!(
        spa["redirect_uris"],
        serde_json::json!(["http://127.0.0.1:8083/callback", "https://spa.example/callback"])
    );
    assert_eq!(spa["post_logout_redirect_uris"], serde_json::json!(["https://spa.example/"]));
    assert_eq!(
        (&spa["public"], &spa["first_party"], &spa["id_token_alg"]),
        (&Value::Bool(true), &Value::Bool(true), &Value::from("RS256"))
    );
    assert_eq!(spa["audiences"], serde_json::json!([]), "tokens default to TOKEN_AUDIENCES");

    // The RS256 key is published beside the EdDSA one as soon as the client exists.
    let (_, keys, _) = auth_server(dir.path(), &["keys", "list"], None);
    let keys: Vec<Value> = serde_json::from_str(&keys).unwrap();
    let algorithms: Vec<&str> = keys.iter().map(|key| key["algorithm"].as_str().unwrap()).collect();
    assert!(algorithms.contains(&"EdDSA") && algorithms.contains(&"RS256"), "{algorithms:?}");
    assert!(keys.iter().all(|key| key["state"] == "active"), "{keys:?}");

    // `keys rotate` rotates both: each algorithm gets a pending successor.
    let (ok, _, _) = auth_server(dir.path(), &["keys", "rotate"], None);
    assert!(ok);
    let (_, keys, _) = auth_server(dir.path(), &["keys", "list"], None);
    let keys: Vec<Value> = serde_json::from_str(&keys).unwrap();
    for algorithm in ["EdDSA", "RS256"] {
        let of = |state: &str| {
            keys.iter().filter(|key| key["algorithm"] == algorithm && key["state"] == state).count()
        };
        assert_eq!((of("active"), of("pending")), (1, 1), "{algorithm}: {keys:?}");
    }
}

#[test]
fn a_service_client_is_registered_with_its_exchange_audiences_and_listed_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = auth_server(
        dir.path(),
        &[
            "clients",
            "create",
            "gateway",
            "--scope",
            "profile:read",
            "--audience",
            "users-service",
            "--exchange-audience",
            "users-service",
            "--exchange-audience",
            "orders-service",
        ],
        None,
    );
    assert!(ok, "{stderr}");
    assert!(serde_json::from_str::<Value>(&stdout).unwrap()["client_secret"].is_string());
    let (ok, _, stderr) =
        auth_server(dir.path(), &["clients", "create", "plain", "--audience", "users-service"], None);
    assert!(ok, "{stderr}");

    let (ok, listed, _) = auth_server(dir.path(), &["clients", "list"], None);
    assert!(ok);
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    let client = |id: &str| listed.iter().find(|client| client["client_id"] == id).unwrap().clone();
    assert_eq!(
        client("gateway")["exchange_audiences"],
        serde_json::json!(["users-service", "orders-service"])
    );
    assert_eq!(
        client("plain")["exchange_audiences"],
        serde_json::json!([]),
        "token exchange is off by default"
    );
}

#[test]
fn an_exchange_audience_that_is_no_valid_name_or_belongs_to_a_public_client_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = auth_server(
        dir.path(),
        &["clients", "create", "bad", "--audience", "users-service", "--exchange-audience", "users service"],
        None,
    );
    assert!(!ok && stderr.contains("invalid scope or audience"), "{stderr}");
    let (ok, _, stderr) = auth_server(
        dir.path(),
        &[
            "clients",
            "create",
            "spa",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--exchange-audience",
            "users-service",
        ],
        None,
    );
    assert!(!ok && stderr.contains("--exchange-audience"), "{stderr}");
    let (_, listed, _) = auth_server(dir.path(), &["clients", "list"], None);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&listed).unwrap(), Vec::<Value>::new());
}

#[test]
fn redirect_uris_that_the_contract_forbids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (uri, expected) in [
        ("http://app.example/callback", "https"),
        ("http://localhost.example/callback", "https"),
        ("http://evil-localhost/callback", "https"),
        ("https://app.example/callback#fragment", "fragment"),
        ("not a uri", "redirect URI"),
        ("javascript:alert(1)", "scheme"),
        ("https://user:pass@app.example/cb", "user info"),
    ] {
        let (ok, _, stderr) =
            auth_server(dir.path(), &["clients", "create", "bad", "--public", "--redirect-uri", uri], None);
        assert!(!ok, "{uri} was accepted");
        assert!(stderr.contains(expected), "{uri}: {stderr}");
    }
    for loopback in [
        "http://127.0.0.1/cb",
        "http://[::1]:9000/cb",
        "http://localhost:3000/cb",
        "http://auth.localhost:8080/federation/acme/callback",
    ] {
        let id = format!("ok-{}", loopback.len());
        let (ok, _, stderr) = auth_server(
            dir.path(),
            &["clients", "create", &id, "--public", "--redirect-uri", loopback],
            None,
        );
        assert!(ok, "{loopback}: {stderr}");
    }
    let (ok, _, stderr) = auth_server(dir.path(), &["clients", "create", "nothing"], None);
    assert!(
        !ok && stderr.contains("--audience"),
        "a client with neither audience nor redirect URI: {stderr}"
    );
}

#[test]
fn keys_rotate_adds_a_pending_key_that_keys_list_shows() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, listed, _) = auth_server(dir.path(), &["keys", "list"], None);
    assert!(ok);
    let before: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0]["state"], "active");

    let (ok, rotated, _) = auth_server(dir.path(), &["keys", "rotate"], None);
    assert!(ok);
    let rotated: Value = serde_json::from_str(&rotated).unwrap();
    assert_eq!(rotated["state"], "pending");

    let (_, listed, _) = auth_server(dir.path(), &["keys", "list"], None);
    let after: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert_eq!(after.len(), 2);
    assert!(after.iter().any(|key| key["kid"] == rotated["kid"] && key["state"] == "pending"));
    assert!(after.iter().any(|key| key["kid"] == before[0]["kid"]
        && key["state"] == "active"
        && key["unpublish_at"].is_i64()));
}

#[test]
fn demo_seed_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let output = Command::new(env!("CARGO_BIN_EXE_auth-server"))
            .arg("demo-seed")
            .env("DATA_DIR", dir.path())
            .env("DEMO_CLIENT_SECRET", "demo-client-secret")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    let first = run();
    assert!(first.contains("created user demo"));
    assert!(
        first.contains("created client demo-web") && first.contains("created client swagger-ui"),
        "{first}"
    );
    assert_eq!(run(), "");

    let (_, listed, _) = auth_server(dir.path(), &["clients", "list"], None);
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    let client = |id: &str| listed.iter().find(|client| client["client_id"] == id).unwrap().clone();
    // orders-service reads profiles as the customer, by token exchange: no users:read.
    let orders = client("orders-service");
    assert_eq!(orders["scopes"], serde_json::json!(["profile:read"]));
    assert_eq!(orders["audiences"], serde_json::json!(["users-service"]));
    assert_eq!(orders["exchange_audiences"], serde_json::json!(["users-service"]));
    let demo_web = client("demo-web");
    assert_eq!(demo_web["redirect_uris"], serde_json::json!(["http://127.0.0.1:8083/callback"]));
    assert_eq!((&demo_web["public"], &demo_web["first_party"]), (&Value::Bool(true), &Value::Bool(true)));
    assert_eq!(demo_web["dpop_required"], Value::Bool(true), "the demo app's tokens are DPoP-bound");
    let swagger = client("swagger-ui");
    assert_eq!(
        swagger["redirect_uris"],
        serde_json::json!([
            "http://127.0.0.1:8080/docs/oauth2-redirect.html",
            "http://127.0.0.1:8081/docs/oauth2-redirect.html",
            "http://127.0.0.1:8082/docs/oauth2-redirect.html"
        ])
    );
    assert_eq!(swagger["public"], Value::Bool(true));
    assert_eq!(swagger["dpop_required"], Value::Bool(false), "Swagger UI sends bearer tokens");
}

#[test]
fn help_documents_the_environment_variables() {
    let output = Command::new(env!("CARGO_BIN_EXE_auth-server")).arg("--help").output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for variable in
        ["LISTEN_ADDR", "DATABASE_URL", "DATA_DIR", "ISSUER", "ACCESS_TOKEN_TTL_SECS", "KEY_ENCRYPTION_KEY"]
    {
        assert!(help.contains(variable), "{variable} missing from --help");
    }
}

/// A lifetime, age or interval beyond ten years is refused at start, naming the setting,
/// rather than wrapping or being clamped where tokens and sessions compute their expiry.
#[test]
fn absurd_durations_are_a_clear_start_up_error() {
    let data_dir = tempfile::tempdir().unwrap();
    for variable in [
        "ACCESS_TOKEN_TTL_SECS",
        "REFRESH_TOKEN_TTL_SECS",
        "REFRESH_IDLE_TTL_SECS",
        "KEY_PREPUBLISH_SECS",
        "JWKS_MAX_AGE_SECS",
        "KEY_RELOAD_SECS",
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_auth-server"))
            .args(["keys", "list"])
            .env("DATA_DIR", data_dir.path())
            .env_remove("DATABASE_URL")
            .env(variable, "18446744073709551615")
            .output()
            .unwrap();

        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}: {stderr}");
        assert!(stderr.contains("ten years"), "{variable}: {stderr}");
        assert!(!stderr.contains("panicked"), "{variable}: {stderr}");
    }
}

#[test]
fn a_client_created_with_dpop_is_listed_as_requiring_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = auth_server(
        dir.path(),
        &["clients", "create", "bound", "--audience", "users-service", "--dpop"],
        None,
    );
    assert!(ok, "{stderr}");
    let (ok, _, stderr) =
        auth_server(dir.path(), &["clients", "create", "plain", "--audience", "users-service"], None);
    assert!(ok, "{stderr}");

    let (ok, listed, _) = auth_server(dir.path(), &["clients", "list"], None);

    assert!(ok);
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    let required =
        |id: &str| listed.iter().find(|client| client["client_id"] == id).unwrap()["dpop_required"].clone();
    assert_eq!((required("bound"), required("plain")), (Value::Bool(true), Value::Bool(false)));
}
