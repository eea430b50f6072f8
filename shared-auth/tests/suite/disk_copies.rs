//! The disk copies of the key set and the revocation list: private files, and an age that the
//! file cannot make younger than it is.
use crate::common::{self, Forger, UNREACHABLE_ISSUER};
use crate::issuer::TestIssuer;
use crate::revocation_freshness;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::json;
use shared_auth::jws::Algorithm;
use shared_auth::revocation::{RevocationStatus, Revocations};
use shared_auth::time::{ManualClock, unix_now};
use shared_auth::{KeyCache, KeyCacheSettings, KeyStatus};

const TEN_YEARS: u64 = 10 * 366 * 24 * 3600;

fn forger() -> &'static Forger {
    Forger::shared(Algorithm::EdDSA)
}

fn settings_with_file(issuer: &str, file: PathBuf) -> KeyCacheSettings {
    let mut settings = common::key_cache_settings(issuer);
    settings.cache_file = Some(file);
    settings
}

/// Writes a key-set copy that says it was confirmed at `confirmed_at`.
fn write_key_copy(file: &Path, confirmed_at: u64) {
    let copy = json!({ "confirmed_at": confirmed_at, "jwks": forger().jwks() });
    std::fs::write(file, serde_json::to_vec(&copy).unwrap()).unwrap();
}

/// Sets the file's modification time `age` into the past.
fn backdate(file: &Path, age: Duration) {
    let file = std::fs::File::options().write(true).open(file).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[tokio::test]
async fn a_key_copy_claiming_a_future_confirmation_ages_from_when_the_file_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    write_key_copy(&file, unix_now() + TEN_YEARS);
    let manual = ManualClock::starting_now();
    let settings = settings_with_file(UNREACHABLE_ISSUER, file);
    let max_age = settings.max_age;
    let keys = KeyCache::with_clock(settings, manual.clock()).unwrap();
    let loaded = keys.status();

    manual.advance(max_age + Duration::from_secs(60));

    assert_eq!(loaded, KeyStatus::Ready);
    assert_eq!(keys.status(), KeyStatus::Unavailable, "the copy outlived JWKS_MAX_AGE_SECS");
}

#[tokio::test]
async fn a_key_copy_restored_with_an_old_modification_time_counts_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    write_key_copy(&file, unix_now());
    backdate(&file, Duration::from_secs(2 * 3600));
    let mut settings = settings_with_file(UNREACHABLE_ISSUER, file);
    settings.max_age = Duration::from_secs(3600);

    let keys = KeyCache::new(settings).unwrap();

    assert_eq!(keys.status(), KeyStatus::Unavailable);
    assert!(keys.age().unwrap() >= Duration::from_secs(2 * 3600));
}

#[tokio::test]
async fn a_revocation_copy_counts_from_its_signed_iat_and_never_from_after_it_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("jwks.json");
    let list_file = dir.path().join("revocations.jwt");
    write_key_copy(&key_file, unix_now());
    let now = shared_auth::time::unix_now_i64();
    let list = forger().sign_revocations(&json!({
        "iss": UNREACHABLE_ISSUER, "iat": now, "exp": now + 300, "seq": 3,
    }));
    std::fs::write(&list_file, list).unwrap();
    backdate(&list_file, Duration::from_secs(2 * 3600));
    let keys = KeyCache::new(settings_with_file(UNREACHABLE_ISSUER, key_file)).unwrap();
    let settings = shared_auth::revocation::RevocationSettings {
        cache_file: Some(list_file),
        ..revocation_freshness::settings()
    };

    let revocations = Revocations::new(settings, keys);

    assert_eq!(revocations.seq(), Some(3), "the copy was loaded");
    assert!(revocations.age().unwrap() >= Duration::from_secs(2 * 3600));
    assert_eq!(revocations.status(), RevocationStatus::Unavailable);
}

#[tokio::test]
async fn keys_on_disk_with_a_missing_or_corrupt_list_are_degraded_not_an_empty_list() {
    for list in [None, Some("not a signed list")] {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("jwks.json");
        let list_file = dir.path().join("revocations.jwt");
        write_key_copy(&key_file, unix_now());
        if let Some(content) = list {
            std::fs::write(&list_file, content).unwrap();
        }
        let keys = KeyCache::new(settings_with_file(UNREACHABLE_ISSUER, key_file)).unwrap();
        let settings = shared_auth::revocation::RevocationSettings {
            cache_file: Some(list_file),
            ..revocation_freshness::settings()
        };

        let revocations = Revocations::new(settings, keys.clone());

        assert_eq!(keys.status(), KeyStatus::Ready);
        assert_eq!(revocations.status(), RevocationStatus::Degraded, "list file {list:?}");
        assert_eq!(revocations.age(), None);
    }
}

#[cfg(unix)]
#[tokio::test]
async fn key_and_revocation_copies_are_0600_files_in_a_0700_directory() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let issuer = TestIssuer::start(forger().jwks()).await;
    let now = shared_auth::time::unix_now_i64();
    issuer.serve_list(forger().sign_revocations(&json!({
        "iss": issuer.url, "iat": now, "exp": now + 300, "seq": 1,
    })));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("data").join("auth-cache");
    let keys = KeyCache::new(settings_with_file(&issuer.url, cache.join("jwks.json"))).unwrap();
    keys.refresh().await.unwrap();
    let settings = shared_auth::revocation::RevocationSettings {
        cache_file: Some(cache.join("revocations.jwt")),
        ..revocation_freshness::settings()
    };
    let revocations = Revocations::new(settings, keys);
    revocations.poll().await.unwrap();

    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&dir.path().join("data")), 0o700);
    assert_eq!(mode(&cache.join("jwks.json")), 0o600);
    assert_eq!(mode(&cache.join("revocations.jwt")), 0o600);
}

/// A crash right after a poll must not bring back a list older than the one the service
/// enforced: the list is on disk before it is in force, so a service that refused a session
/// refuses it after any restart.
#[tokio::test]
async fn a_list_in_force_is_already_on_disk_for_a_restart_a_moment_later() {
    let issuer = TestIssuer::start(forger().jwks()).await;
    let dir = tempfile::tempdir().unwrap();
    let list_file = dir.path().join("revocations.jwt");
    let keys = KeyCache::new(settings_with_file(&issuer.url, dir.path().join("jwks.json"))).unwrap();
    keys.refresh().await.unwrap();
    let settings = shared_auth::revocation::RevocationSettings {
        cache_file: Some(list_file.clone()),
        ..revocation_freshness::settings()
    };
    let running = Revocations::new(settings.clone(), keys.clone());
    let now = shared_auth::time::unix_now_i64();
    for seq in 1..=10 {
        issuer.serve_list(forger().sign_revocations(&json!({
            "iss": issuer.url, "iat": now, "exp": now + 300, "seq": seq,
            "sessions": [{ "id": format!("session-{seq}"), "exp": now + 900 }],
        })));
        running.poll().await.unwrap();
        assert_eq!(running.seq(), Some(seq));

        let restarted = Revocations::new(settings.clone(), keys.clone());
        assert_eq!(restarted.seq(), Some(seq), "the restarted service loaded an older list");
    }
}

/// Likewise for keys: a key fetched for an unknown `kid` is on disk by the time a token signed
/// with it is accepted, so a service restarted during an outage a moment later accepts it too.
#[tokio::test]
async fn a_key_in_force_is_already_on_disk_for_a_restart_a_moment_later() {
    let issuer = TestIssuer::start(forger().jwks()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    let mut settings = settings_with_file(&issuer.url, file.clone());
    settings.unknown_kid_cooldown = Duration::ZERO;
    let running = KeyCache::new(settings).unwrap();
    running.refresh().await.unwrap();
    for _ in 0..10 {
        let rotated = Forger::new(Algorithm::EdDSA);
        issuer.publish(rotated.jwks());
        running.key_for(&rotated.kid).await.expect("the running service fetches the new key");

        let restarted = KeyCache::new(settings_with_file(UNREACHABLE_ISSUER, file.clone())).unwrap();
        assert!(
            restarted.key_for(&rotated.kid).await.is_ok(),
            "the restarted service does not know the key the running one accepted"
        );
    }
}
