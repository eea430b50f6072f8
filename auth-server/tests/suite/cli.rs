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
    assert!(run().contains("created user demo"));
    assert_eq!(run(), "");
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
