//! The key cache against an auth server that misbehaves, hangs, disappears or is flooded with
//! garbage `kid`s: good keys are never lost, every fetch is bounded, and the disk copy carries
//! a service through a restart during an outage.
use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Forger, UNREACHABLE_ISSUER};
use serde_json::json;
use shared_auth::fetch::FetchError;
use shared_auth::jws::Algorithm;
use shared_auth::time::{ManualClock, unix_now};
use shared_auth::{KeyCache, KeyCacheSettings, KeyStatus, Verifier, VerifyError};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DISCOVERY_PATH: &str = "/.well-known/oauth-authorization-server";
const JWKS_PATH: &str = "/jwks.json";

fn forger() -> &'static Forger {
    Forger::shared(Algorithm::EdDSA)
}

/// Serves discovery for the server's own URI as issuer; expects exactly `times` fetches.
async fn mount_discovery(server: &MockServer, times: u64) {
    Mock::given(method("GET"))
        .and(path(DISCOVERY_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": server.uri(),
            "jwks_uri": format!("{}{JWKS_PATH}", server.uri()),
        })))
        .expect(times)
        .named("discovery")
        .mount(server)
        .await;
}

/// Serves the forger's key set once, then leaves the key-set route to whatever is mounted next.
async fn mount_good_key_set_once(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(JWKS_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(forger().jwks()))
        .up_to_n_times(1)
        .expect(1)
        .named("good key set")
        .mount(server)
        .await;
}

async fn key_set_fetches(server: &MockServer) -> usize {
    let requests = server.received_requests().await.unwrap();
    requests.iter().filter(|request| request.url.path() == JWKS_PATH).count()
}

/// What happened when a refresh met a fault after one good refresh.
struct FaultOutcome {
    error: FetchError,
    elapsed: Duration,
    verifier: Verifier,
    server: MockServer,
}

/// One good refresh, a valid token verified, then a refresh against `fault`.
async fn refresh_into(fault: ResponseTemplate, fetch_timeout: Duration) -> FaultOutcome {
    let server = MockServer::start().await;
    mount_discovery(&server, 1).await;
    mount_good_key_set_once(&server).await;
    Mock::given(method("GET"))
        .and(path(JWKS_PATH))
        .respond_with(fault)
        .expect(1)
        .named("faulty key set")
        .mount(&server)
        .await;
    let mut settings = common::key_cache_settings(&server.uri());
    settings.fetch_timeout = fetch_timeout;
    let keys = KeyCache::new(settings).unwrap();
    keys.refresh().await.unwrap();
    let verifier = common::verifier_over(keys.clone(), &server.uri());
    verifier.verify(&forger().sign(&common::user_claims(&server.uri()))).await.unwrap();

    let started = Instant::now();
    let error = keys.refresh().await.unwrap_err();
    let elapsed = started.elapsed();

    FaultOutcome { error, elapsed, verifier, server }
}

impl FaultOutcome {
    /// A token never seen before (so not in the verified-token cache) still verifies.
    async fn assert_good_keys_still_verify(&self) {
        let token = forger().sign(&common::user_claims(&self.server.uri()));
        assert_eq!(self.verifier.verify(&token).await.unwrap().sub, "user-1");
        assert_eq!(self.verifier.status(), KeyStatus::Degraded);
        self.server.verify().await;
    }
}

#[tokio::test]
async fn a_key_set_answered_with_a_server_error_leaves_the_good_keys_in_place() {
    let outcome = refresh_into(ResponseTemplate::new(500), Duration::from_millis(200)).await;

    assert!(matches!(outcome.error, FetchError::Status(500)), "{:?}", outcome.error);
    outcome.assert_good_keys_still_verify().await;
}

#[tokio::test]
async fn a_garbage_key_set_leaves_the_good_keys_in_place() {
    let garbage = ResponseTemplate::new(200).set_body_string("<html>maintenance</html>");

    let outcome = refresh_into(garbage, Duration::from_millis(200)).await;

    assert!(matches!(outcome.error, FetchError::Invalid(_)), "{:?}", outcome.error);
    outcome.assert_good_keys_still_verify().await;
}

#[tokio::test]
async fn a_key_set_without_any_usable_key_leaves_the_good_keys_in_place() {
    // A symmetric key under the genuine kid: exactly what an HS256 confusion attack would need.
    let symmetric = json!({ "keys": [
        { "kty": "oct", "kid": forger().kid, "alg": "HS256", "k": "c2VjcmV0" }
    ] });

    let outcome =
        refresh_into(ResponseTemplate::new(200).set_body_json(symmetric), Duration::from_millis(200)).await;

    assert!(matches!(outcome.error, FetchError::Invalid(_)), "{:?}", outcome.error);
    outcome.assert_good_keys_still_verify().await;
}

#[tokio::test]
async fn an_oversized_key_set_leaves_the_good_keys_in_place() {
    let limit = KeyCacheSettings::new("unused").max_body_bytes;
    let mut keys = vec![forger().jwk(); 1];
    let padding = "A".repeat(1024);
    keys.extend((0..limit / 1024 + 1).map(|index| {
        let mut jwk = forger().jwk();
        jwk.kid = Some(format!("{index}-{padding}"));
        jwk
    }));
    let oversized = ResponseTemplate::new(200).set_body_json(json!({ "keys": keys }));

    let outcome = refresh_into(oversized, Duration::from_millis(200)).await;

    assert!(matches!(outcome.error, FetchError::TooLarge(max) if max == limit), "{:?}", outcome.error);
    outcome.assert_good_keys_still_verify().await;
}

#[tokio::test]
async fn a_hanging_key_set_response_is_abandoned_after_the_fetch_timeout() {
    let fetch_timeout = Duration::from_millis(200);
    let hanging =
        ResponseTemplate::new(200).set_body_json(forger().jwks()).set_delay(Duration::from_secs(30));

    let outcome = refresh_into(hanging, fetch_timeout).await;

    assert!(matches!(outcome.error, FetchError::Unreachable(_)), "{:?}", outcome.error);
    assert!(outcome.elapsed >= fetch_timeout, "gave up before the timeout: {:?}", outcome.elapsed);
    // A bound, not a performance threshold: the call must not wait for the 30 s response.
    assert!(outcome.elapsed < fetch_timeout + Duration::from_secs(3), "took {:?}", outcome.elapsed);
    outcome.assert_good_keys_still_verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_costs_at_most_one_extra_key_fetch() {
    let server = MockServer::start().await;
    mount_discovery(&server, 1).await;
    Mock::given(method("GET"))
        .and(path(JWKS_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(forger().jwks()))
        .mount(&server)
        .await;
    let keys = KeyCache::new(common::key_cache_settings(&server.uri())).unwrap();
    keys.refresh().await.unwrap();
    let verifier = common::verifier_over(keys, &server.uri());
    let claims = common::user_claims(&server.uri());
    let forged: Vec<String> = (0..1_000)
        .map(|index| {
            let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": format!("forged-{index}") });
            forger().sign_with_header(&header, &claims)
        })
        .collect();

    let tasks: Vec<_> = forged
        .into_iter()
        .map(|token| {
            let verifier = verifier.clone();
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }

    assert!(results.iter().all(|result| *result == Err(VerifyError::UnknownKid)));
    let fetches = key_set_fetches(&server).await;
    assert!((1..=2).contains(&fetches), "{fetches} key-set fetches for 1,000 unknown kids");
    let genuine = forger().sign(&common::user_claims(&server.uri()));
    assert!(verifier.verify(&genuine).await.is_ok());
    server.verify().await;
}

#[tokio::test]
async fn once_the_cooldown_has_passed_an_unknown_kid_may_refetch_again() {
    let server = MockServer::start().await;
    mount_discovery(&server, 1).await;
    Mock::given(method("GET"))
        .and(path(JWKS_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(forger().jwks()))
        .mount(&server)
        .await;
    let manual = ManualClock::starting_now();
    let settings = common::key_cache_settings(&server.uri());
    let cooldown = settings.unknown_kid_cooldown;
    let keys = KeyCache::with_clock(settings, manual.clock()).unwrap();
    keys.refresh().await.unwrap();
    let verifier = common::verifier_over(keys, &server.uri());
    let claims = common::user_claims(&server.uri());
    let token_naming = |kid: &str| {
        let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid });
        forger().sign_with_header(&header, &claims)
    };

    let first = verifier.verify(&token_naming("unknown-1")).await;
    let fetches_after_first = key_set_fetches(&server).await;
    manual.advance(cooldown - Duration::from_secs(1));
    let within_cooldown = verifier.verify(&token_naming("unknown-2")).await;
    let fetches_within_cooldown = key_set_fetches(&server).await;
    manual.advance(Duration::from_secs(1));
    let after_cooldown = verifier.verify(&token_naming("unknown-3")).await;

    for result in [first, within_cooldown, after_cooldown] {
        assert_eq!(result.unwrap_err(), VerifyError::UnknownKid);
    }
    assert_eq!(fetches_after_first, 2, "the start-up fetch and one refetch");
    assert_eq!(fetches_within_cooldown, 2, "no refetch within the cooldown");
    assert_eq!(key_set_fetches(&server).await, 3, "one refetch once it has passed");
    server.verify().await;
}

#[tokio::test]
async fn an_unknown_kid_that_a_rotation_published_is_found_by_one_refetch() {
    let server = MockServer::start().await;
    mount_discovery(&server, 1).await;
    mount_good_key_set_once(&server).await;
    let rotated = Forger::new(Algorithm::ES256);
    let both = json!({ "keys": [forger().jwk(), rotated.jwk()] });
    Mock::given(method("GET"))
        .and(path(JWKS_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(both))
        .expect(1)
        .mount(&server)
        .await;
    let keys = KeyCache::new(common::key_cache_settings(&server.uri())).unwrap();
    keys.refresh().await.unwrap();
    let verifier = common::verifier_over(keys, &server.uri());

    let result = verifier.verify(&rotated.sign(&common::user_claims(&server.uri()))).await;

    assert_eq!(result.unwrap().sub, "user-1");
    assert_eq!(key_set_fetches(&server).await, 2);
    server.verify().await;
}

/// Polls until nothing accepts connections at `uri` any more.
async fn wait_until_down(uri: &str) {
    let address = uri.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    while std::net::TcpStream::connect(&address).is_ok() {
        assert!(started.elapsed() < Duration::from_secs(5), "{uri} still accepts connections");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn cache_settings_with_file(issuer: &str, file: PathBuf) -> KeyCacheSettings {
    let mut settings = common::key_cache_settings(issuer);
    settings.cache_file = Some(file);
    settings
}

#[tokio::test]
async fn a_service_restarted_during_an_outage_verifies_with_its_disk_copy() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth-cache").join("jwks.json");
    // A server of its own (not from wiremock's pool), so dropping it really stops it.
    let server = MockServer::builder().start().await;
    let issuer = server.uri();
    mount_discovery(&server, 1).await;
    mount_good_key_set_once(&server).await;
    let before_restart = KeyCache::new(cache_settings_with_file(&issuer, file.clone())).unwrap();
    before_restart.refresh().await.unwrap();
    // Written before the refresh returns.
    let copy: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let token = forger().sign(&common::user_claims(&issuer));
    drop(before_restart);
    drop(server);
    wait_until_down(&issuer).await;

    let after_restart = KeyCache::new(cache_settings_with_file(&issuer, file.clone())).unwrap();
    let refresh = after_restart.refresh().await;
    let verifier = common::verifier_over(after_restart, &issuer);
    let result = verifier.verify(&token).await;

    assert!(matches!(refresh, Err(FetchError::Unreachable(_))), "{refresh:?}");
    assert_eq!(result.unwrap().sub, "user-1");
    assert_eq!(verifier.status(), KeyStatus::Degraded);
    assert_eq!(copy["jwks"]["keys"][0]["kid"], forger().kid.as_str());
    assert!(copy["confirmed_at"].as_u64().unwrap() + 60 > unix_now());
    let leftovers: Vec<String> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}

/// Writes a disk copy of the forger's keys as last confirmed `age` ago.
fn write_disk_copy(file: &Path, age: Duration) {
    let copy = json!({ "confirmed_at": unix_now() - age.as_secs(), "jwks": forger().jwks() });
    std::fs::write(file, serde_json::to_vec(&copy).unwrap()).unwrap();
}

#[tokio::test]
async fn a_disk_copy_older_than_the_maximum_age_fails_closed_as_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    write_disk_copy(&file, Duration::from_secs(2 * 3600));
    let mut settings = cache_settings_with_file(UNREACHABLE_ISSUER, file);
    settings.max_age = Duration::from_secs(3600);
    let verifier = common::verifier_over(KeyCache::new(settings).unwrap(), UNREACHABLE_ISSUER);
    let token = forger().sign(&common::user_claims(UNREACHABLE_ISSUER));

    let result = verifier.verify(&token).await;

    assert_eq!(result.unwrap_err(), VerifyError::KeysUnavailable);
    assert_eq!(verifier.status(), KeyStatus::Unavailable);
}

#[tokio::test]
async fn a_disk_copy_past_the_refresh_interval_but_within_the_maximum_age_serves_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    let settings = cache_settings_with_file(UNREACHABLE_ISSUER, file.clone());
    write_disk_copy(&file, settings.refresh_max * 4);
    let verifier = common::verifier_over(KeyCache::new(settings).unwrap(), UNREACHABLE_ISSUER);
    let token = forger().sign(&common::user_claims(UNREACHABLE_ISSUER));

    let result = verifier.verify(&token).await;

    assert_eq!(result.unwrap().sub, "user-1");
    assert_eq!(verifier.status(), KeyStatus::Degraded);
}

#[tokio::test]
async fn a_cached_token_fails_closed_once_the_keys_pass_their_maximum_age() {
    let manual = ManualClock::starting_now();
    let mut settings = common::key_cache_settings(UNREACHABLE_ISSUER);
    settings.max_age = Duration::from_secs(3600);
    let keys = KeyCache::with_clock(settings, manual.clock()).unwrap();
    keys.replace_keys(forger().jwks()).unwrap();
    let verifier = common::verifier_over(keys, UNREACHABLE_ISSUER);
    // A token that outlives the keys, so only the key age can refuse it.
    let mut claims = common::user_claims(UNREACHABLE_ISSUER);
    claims["exp"] = json!(manual.now() + 7200);
    let token = forger().sign(&claims);
    assert!(verifier.verify(&token).await.is_ok());

    manual.advance(Duration::from_secs(3600));
    let at_the_maximum_age = verifier.verify(&token).await;
    let status_at_the_maximum_age = verifier.status();
    manual.advance(Duration::from_secs(1));
    let past_the_maximum_age = verifier.verify(&token).await;

    assert!(at_the_maximum_age.is_ok(), "{at_the_maximum_age:?}");
    assert_eq!(status_at_the_maximum_age, KeyStatus::Degraded);
    assert_eq!(verifier.status(), KeyStatus::Unavailable);
    assert_eq!(past_the_maximum_age.unwrap_err(), VerifyError::KeysUnavailable);
}

#[tokio::test]
async fn keys_age_with_the_clock_from_ready_to_degraded_to_unavailable() {
    let manual = ManualClock::starting_now();
    let settings = common::key_cache_settings(UNREACHABLE_ISSUER);
    let (refresh_max, max_age) = (settings.refresh_max, settings.max_age);
    let keys = KeyCache::with_clock(settings, manual.clock()).unwrap();
    keys.replace_keys(forger().jwks()).unwrap();
    let fresh = keys.status();

    manual.advance(refresh_max * 2 + Duration::from_secs(1));
    let after_two_missed_refreshes = keys.status();
    manual.advance(max_age);
    let past_the_maximum_age = keys.status();

    assert_eq!(fresh, KeyStatus::Ready);
    assert_eq!(after_two_missed_refreshes, KeyStatus::Degraded);
    assert_eq!(past_the_maximum_age, KeyStatus::Unavailable);
    assert_eq!(keys.age(), Some(refresh_max * 2 + Duration::from_secs(1) + max_age));
}

#[tokio::test]
async fn with_no_keys_at_all_verification_is_unavailable_rather_than_a_token_error() {
    let verifier = common::verifier_over(
        KeyCache::new(common::key_cache_settings(UNREACHABLE_ISSUER)).unwrap(),
        UNREACHABLE_ISSUER,
    );
    let token = forger().sign(&common::user_claims(UNREACHABLE_ISSUER));

    let result = verifier.verify(&token).await;

    assert_eq!(result.unwrap_err(), VerifyError::KeysUnavailable);
    assert_eq!(verifier.status(), KeyStatus::Unavailable);
    assert!(verifier.keys().age().is_none());
}

#[tokio::test]
async fn the_cache_control_max_age_of_the_key_set_is_returned_by_refresh() {
    let server = MockServer::start().await;
    mount_discovery(&server, 1).await;
    Mock::given(method("GET"))
        .and(path(JWKS_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(forger().jwks())
                .insert_header("cache-control", "public, max-age=120"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let keys = KeyCache::new(common::key_cache_settings(&server.uri())).unwrap();

    let max_age = keys.refresh().await.unwrap();

    assert_eq!(max_age, Some(Duration::from_secs(120)));
    assert_eq!(keys.status(), KeyStatus::Ready);
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(DISCOVERY_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": "http://evil.example",
            "jwks_uri": format!("{}{JWKS_PATH}", server.uri()),
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(JWKS_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(forger().jwks()))
        .expect(0)
        .mount(&server)
        .await;
    let keys = KeyCache::new(common::key_cache_settings(&server.uri())).unwrap();

    let result = keys.refresh().await;

    assert!(matches!(result, Err(FetchError::Invalid(_))), "{result:?}");
    assert_eq!(keys.status(), KeyStatus::Unavailable);
    server.verify().await;
}

#[tokio::test]
async fn a_discovery_document_sending_the_key_fetch_to_another_origin_is_refused() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(DISCOVERY_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": server.uri(),
            "jwks_uri": format!("{}{JWKS_PATH}", elsewhere.uri()),
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(JWKS_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(Forger::new(Algorithm::EdDSA).jwks()))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let keys = KeyCache::new(common::key_cache_settings(&server.uri())).unwrap();

    let result = keys.refresh().await;

    assert!(matches!(&result, Err(FetchError::Invalid(reason)) if reason.contains("jwks_uri")), "{result:?}");
    assert_eq!(keys.status(), KeyStatus::Unavailable);
    assert!(keys.metadata().is_none(), "the refused document is not kept");
    elsewhere.verify().await;
}

/// Google and most OpenID providers publish only OpenID Connect Discovery 1.0; the RFC 8414
/// location answers 404 there. Before the fallback, such an issuer left a service at 503.
#[tokio::test]
async fn an_issuer_that_serves_only_openid_configuration_is_trusted() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": server.uri(),
            "jwks_uri": format!("{}{JWKS_PATH}", server.uri()),
            "authorization_endpoint": format!("{}/authorize", server.uri()),
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(JWKS_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(forger().jwks()))
        .mount(&server)
        .await;
    let keys = KeyCache::new(common::key_cache_settings(&server.uri())).unwrap();

    keys.refresh().await.unwrap();
    let verifier = common::verifier_over(keys, &server.uri());
    let token = forger().sign(&common::user_claims(&server.uri()));

    assert_eq!(verifier.status(), KeyStatus::Ready);
    assert!(verifier.verify(&token).await.is_ok());
}

/// An unreachable issuer is unreachable at both locations: the fallback is only for a
/// discovery document that is not there, and the error says what happened.
#[tokio::test]
async fn discovery_falls_back_only_when_the_rfc_8414_document_is_missing() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let client = shared_auth::fetch::bounded_client(Duration::from_secs(2)).unwrap();

    let missing = shared_auth::fetch::discover(&client, &server.uri()).await;
    let unreachable = shared_auth::fetch::discover(&client, UNREACHABLE_ISSUER).await;

    assert!(matches!(missing, Err(FetchError::Status(404))), "{missing:?}");
    assert!(matches!(unreachable, Err(FetchError::Unreachable(_))), "{unreachable:?}");
}

#[tokio::test]
async fn a_cache_given_its_jwks_uri_fetches_keys_there_and_never_reads_discovery() {
    let server = MockServer::start().await;
    mount_discovery(&server, 0).await;
    mount_good_key_set_once(&server).await;
    let settings = KeyCacheSettings {
        // An issuer on another origin than its key set, as Google's is.
        jwks_uri: Some(format!("{}{JWKS_PATH}", server.uri())),
        ..common::key_cache_settings(UNREACHABLE_ISSUER)
    };
    let cache = KeyCache::new(settings).unwrap();

    cache.refresh().await.unwrap();

    let kid = forger().jwk().kid.unwrap();
    assert!(cache.key_for(&kid).await.is_ok());
    assert!(cache.metadata().is_none(), "discovery was not read");
    assert_eq!(key_set_fetches(&server).await, 1);
}
