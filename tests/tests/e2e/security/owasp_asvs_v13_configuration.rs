//! OWASP ASVS 5.0 chapter V13, configuration: "access to secret assets adheres to the principle
//! of least privilege" (13.3.2). The auth server's SQLite database holds password hashes,
//! refresh-token hashes and, without `KEY_ENCRYPTION_KEY`, the private signing keys: on the real
//! binaries the data dirs are 0700 and what they hold 0600 (no group or other bits), whether the
//! binary created them or found them looser.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use secrecy::SecretString;
use testkit::Services;
use testkit::launch::{self, Launcher};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The modes under `dir` that grant more than its owner: the directory itself must be 0700,
/// and every file (and sub-directory) in it must have no group or other bits.
fn too_open(dir: &Path) -> Vec<String> {
    let mut wrong = Vec::new();
    if mode(dir) != 0o700 {
        wrong.push(format!("{} is {:o}", dir.display(), mode(dir)));
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if mode(&path) & 0o077 != 0 {
            wrong.push(format!("{} is {:o}", path.display(), mode(&path)));
        }
        if path.is_dir() {
            wrong.extend(too_open(&path));
        }
    }
    wrong
}

fn launcher(data: &Path) -> Launcher {
    let services = Services::committed();
    Launcher::new(
        services.clone(),
        launch::workspace_binaries(services).unwrap(),
        data,
        SecretString::from("v13-demo-client-secret"),
    )
    .on_free_ports()
    .unwrap()
    .auth_env("ARGON2_MEMORY_KIB", 1024)
    .auth_env("ARGON2_ITERATIONS", 1)
    .rust_log("error")
}

/// ASVS 13.3.2 on a fresh start of the whole stack (seeded, every binary ready): the auth
/// server's data dir is 0700 and `auth.sqlite` (with its WAL files) 0600; every service's data
/// dir and what it holds (SQLite files, the key and revocation caches) are the owner's alone.
#[tokio::test]
async fn the_real_binaries_keep_their_data_dirs_and_databases_to_their_own_user() {
    let data = tempfile::tempdir().unwrap();
    let mut stack = launch::Stack::start(launcher(data.path())).await.unwrap();
    let services = Services::committed();
    let auth_dir = data.path().join(&services.auth_server().data_dir);

    assert_eq!(mode(&auth_dir), 0o700, "the auth server's data dir");
    assert_eq!(mode(&auth_dir.join("auth.sqlite")), 0o600, "auth.sqlite");
    let mut wrong = Vec::new();
    let mut checked = 0;
    for service in services.all() {
        let dir = data.path().join(&service.data_dir);
        checked += 1 + std::fs::read_dir(&dir).unwrap().count();
        wrong.extend(too_open(&dir));
    }
    stack.stop().await;
    assert!(wrong.is_empty(), "readable by others:\n{}", wrong.join("\n"));
    println!("[ASVS 13.3.2: data dirs of the real binaries] {checked} paths: all the owner's alone");
}

/// ASVS 13.3.2 where an operator's data dir was created looser (0755, `auth.sqlite` 0644, as a
/// default umask leaves them): the real auth server tightens both at start, before serving.
#[tokio::test]
async fn the_real_auth_server_tightens_a_looser_data_dir_and_database_at_start() {
    let data = tempfile::tempdir().unwrap();
    let launcher = launcher(data.path());
    let auth_dir = data.path().join(&Services::committed().auth_server().data_dir);
    std::fs::create_dir(&auth_dir).unwrap();
    std::fs::set_permissions(&auth_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let database = auth_dir.join("auth.sqlite");
    std::fs::write(&database, b"").unwrap();
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();

    let process = launcher.start("auth-server").await.unwrap();

    assert_eq!((mode(&auth_dir), mode(&database)), (0o700, 0o600), "data dir and auth.sqlite after start");
    let wrong = too_open(&auth_dir);
    process.terminate().await;
    assert!(wrong.is_empty(), "readable by others:\n{}", wrong.join("\n"));
    println!("[ASVS 13.3.2: looser data dir tightened at start] 2 cases: all as required");
}
