//! The revocation list must not fail open in silence: a blocked or replayed feed shows as
//! `degraded`, then fails closed, and no list accepted can un-revoke a session before every
//! token of it has expired.
use crate::common::{self, Forger};
use crate::issuer::TestIssuer;

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use shared_auth::jws::Algorithm;
use shared_auth::revocation::{RevocationError, RevocationSettings, RevocationStatus, Revocations};
use shared_auth::time::ManualClock;
use shared_auth::{KeyCache, Verifier, VerifierSettings, VerifyError};

const MAX_AGE: Duration = Duration::from_secs(120);
const FAIL_CLOSED_AFTER: Duration = Duration::from_secs(3600);

fn forger() -> &'static Forger {
    Forger::shared(Algorithm::EdDSA)
}

/// Revocation settings of a service: stale after two minutes, closed after an hour.
pub(crate) fn settings() -> RevocationSettings {
    RevocationSettings {
        max_age: MAX_AGE,
        fail_closed_after: Some(FAIL_CLOSED_AFTER),
        ..RevocationSettings::default()
    }
}

/// A service polling a fake issuer, on a clock the test moves.
struct Service {
    issuer: TestIssuer,
    manual: ManualClock,
    verifier: Verifier,
}

impl Service {
    async fn start() -> Self {
        let issuer = TestIssuer::start(forger().jwks()).await;
        let manual = ManualClock::starting_now();
        let keys = KeyCache::with_clock(common::key_cache_settings(&issuer.url), manual.clock()).unwrap();
        keys.refresh().await.unwrap();
        let revocations = Revocations::new(settings(), keys.clone());
        let verifier = Verifier::new(VerifierSettings::new(&issuer.url, common::AUDIENCE), keys, revocations);
        Self { issuer, manual, verifier }
    }

    fn revocations(&self) -> &Revocations {
        self.verifier.revocations()
    }

    /// A signed list with this `seq`, signed `age_secs` ago, valid for five minutes from then.
    fn list(&self, seq: u64, age_secs: i64, sessions: &[&str]) -> String {
        let iat = self.manual.now() - age_secs;
        let sessions: Vec<Value> =
            sessions.iter().map(|sid| json!({ "id": sid, "exp": iat + 960 })).collect();
        forger().sign_revocations(&json!({
            "iss": self.issuer.url, "iat": iat, "exp": iat + 300, "seq": seq, "sessions": sessions,
        }))
    }

    /// A user token of session `sid`, issued now for 15 minutes.
    fn token_of_session(&self, sid: &str) -> String {
        let mut claims = common::user_claims(&self.issuer.url);
        claims["sid"] = json!(sid);
        claims["iat"] = json!(self.manual.now());
        claims["nbf"] = json!(self.manual.now());
        claims["exp"] = json!(self.manual.now() + 900);
        forger().sign(&claims)
    }

    fn advance(&self, by: Duration) {
        self.manual.advance(by);
    }
}

#[tokio::test]
async fn a_blocked_feed_turns_the_list_degraded_then_fails_closed_instead_of_staying_ready() {
    let service = Service::start().await;
    service.issuer.serve_list(service.list(1, 0, &[]));
    service.revocations().poll().await.unwrap();
    let token = service.token_of_session("live-session");
    let fresh = service.revocations().status();
    service.issuer.fail_feed(StatusCode::SERVICE_UNAVAILABLE);

    service.advance(MAX_AGE);
    let blocked_poll = service.revocations().poll().await;
    let at_the_maximum_age = service.revocations().status();
    service.advance(Duration::from_secs(1));
    let past_the_maximum_age = service.revocations().status();
    let verified_while_stale = service.verifier.verify(&token).await;
    service.advance(FAIL_CLOSED_AFTER - MAX_AGE);
    let past_the_hard_bound = service.revocations().status();
    let fresh_token = service.token_of_session("live-session");
    let verified_past_the_hard_bound = service.verifier.verify(&fresh_token).await;

    assert_eq!(fresh, RevocationStatus::Ready);
    assert!(matches!(blocked_poll, Err(RevocationError::Fetch(_))), "{blocked_poll:?}");
    assert_eq!(at_the_maximum_age, RevocationStatus::Ready);
    assert_eq!(past_the_maximum_age, RevocationStatus::Degraded);
    assert!(verified_while_stale.is_ok(), "degraded still serves: {verified_while_stale:?}");
    assert_eq!(past_the_hard_bound, RevocationStatus::Unavailable);
    assert_eq!(verified_past_the_hard_bound.unwrap_err(), VerifyError::RevocationsUnavailable);
}

#[tokio::test]
async fn once_the_feed_is_back_a_fresh_list_makes_the_service_ready_again() {
    let service = Service::start().await;
    service.issuer.serve_list(service.list(1, 0, &[]));
    service.revocations().poll().await.unwrap();
    service.advance(FAIL_CLOSED_AFTER + Duration::from_secs(1));
    let token = service.token_of_session("live-session");
    assert_eq!(service.verifier.verify(&token).await.unwrap_err(), VerifyError::RevocationsUnavailable);

    service.issuer.serve_list(service.list(2, 0, &[]));
    service.revocations().poll().await.unwrap();

    assert_eq!(service.revocations().status(), RevocationStatus::Ready);
    assert_eq!(service.revocations().seq(), Some(2));
    assert!(service.verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn an_old_captured_list_does_not_make_a_fresh_instance_ready() {
    let stale = Service::start().await;
    let closed = Service::start().await;

    stale.revocations().apply_signed(&stale.list(9, 121, &[])).await.unwrap();
    closed.revocations().apply_signed(&closed.list(9, 3601, &[])).await.unwrap();

    assert_eq!(stale.revocations().status(), RevocationStatus::Degraded);
    assert_eq!(stale.revocations().age(), Some(Duration::from_secs(121)));
    assert_eq!(closed.revocations().status(), RevocationStatus::Unavailable);
    let token = closed.token_of_session("s");
    assert_eq!(closed.verifier.verify(&token).await.unwrap_err(), VerifyError::RevocationsUnavailable);
}

#[tokio::test]
async fn a_list_past_the_exp_its_issuer_gave_it_is_stale_however_young() {
    let service = Service::start().await;
    let iat = service.manual.now() - 61;
    let expired = forger().sign_revocations(&json!({
        "iss": service.issuer.url, "iat": iat, "exp": iat + 60, "seq": 1,
    }));

    service.revocations().apply_signed(&expired).await.unwrap();

    assert!(service.revocations().age().unwrap() < MAX_AGE);
    assert_eq!(service.revocations().status(), RevocationStatus::Degraded);
}

#[tokio::test]
async fn a_replayed_list_cannot_unrevoke_a_session_logged_out_in_the_same_second() {
    let service = Service::start().await;
    let before_logout = service.list(6, 0, &[]);
    let after_logout = service.list(7, 0, &["logged-out"]);
    let other_replica_same_seq = service.list(7, 0, &[]);
    let token = service.token_of_session("logged-out");
    service.revocations().apply_signed(&after_logout).await.unwrap();

    let replayed = service.revocations().apply_signed(&before_logout).await;
    let same_seq = service.revocations().apply_signed(&other_replica_same_seq).await;

    assert!(matches!(replayed, Err(RevocationError::Outdated(_))), "{replayed:?}");
    assert!(same_seq.is_ok(), "a list of the same seq is merged: {same_seq:?}");
    assert_eq!(service.revocations().seq(), Some(7));
    assert_eq!(service.verifier.verify(&token).await.unwrap_err(), VerifyError::Revoked);
}

#[tokio::test]
async fn a_revocation_outlives_its_tokens_by_the_leeway_whatever_later_lists_leave_out() {
    let service = Service::start().await;
    let leeway = service.verifier.settings().leeway;
    let token = service.token_of_session("logged-out");
    let token_exp = service.manual.now() + 900;
    let revoked = forger().sign_revocations(&json!({
        "iss": service.issuer.url, "iat": service.manual.now(), "exp": service.manual.now() + 300, "seq": 1,
        "sessions": [{ "id": "logged-out", "exp": token_exp }],
    }));
    service.revocations().apply_signed(&revoked).await.unwrap();

    // The issuer dropped the entry at its exp; the token is still within the leeway.
    service.advance(Duration::from_secs(900) + leeway - Duration::from_secs(1));
    let pruned_by_the_issuer = service.list(2, 0, &[]);
    service.revocations().apply_signed(&pruned_by_the_issuer).await.unwrap();
    let within_the_leeway = service.verifier.verify(&token).await;

    assert_eq!(within_the_leeway.unwrap_err(), VerifyError::Revoked);
}

#[tokio::test]
async fn lists_of_an_older_server_without_seq_or_exp_are_accepted_and_ordered_by_iat() {
    let service = Service::start().await;
    let legacy = |age_secs: i64, sessions: Value| {
        let iat = service.manual.now() - age_secs;
        forger().sign_revocations(&json!({ "iss": service.issuer.url, "iat": iat, "sessions": sessions }))
    };
    let exp = service.manual.now() + 900;

    let newer = service.revocations().apply_signed(&legacy(10, json!([{ "id": "s1", "exp": exp }]))).await;
    let older = service.revocations().apply_signed(&legacy(20, json!([]))).await;
    let with_seq = service.revocations().apply_signed(&service.list(1, 0, &[])).await;
    let legacy_after_seq = service.revocations().apply_signed(&legacy(0, json!([]))).await;

    assert!(newer.unwrap());
    assert!(matches!(older, Err(RevocationError::Outdated(_))), "{older:?}");
    assert!(with_seq.is_ok(), "{with_seq:?}");
    assert!(matches!(legacy_after_seq, Err(RevocationError::Outdated(_))), "{legacy_after_seq:?}");
    assert_eq!(service.revocations().status(), RevocationStatus::Ready);
    let token = service.token_of_session("s1");
    assert_eq!(service.verifier.verify(&token).await.unwrap_err(), VerifyError::Revoked);
}

#[tokio::test]
async fn without_a_list_a_failed_first_poll_is_degraded_and_the_hard_bound_counts_from_start() {
    let service = Service::start().await;
    let before_any_poll = service.revocations().status();

    let failed = service.revocations().poll().await;
    let after_a_failed_poll = service.revocations().status();
    service.advance(FAIL_CLOSED_AFTER + Duration::from_secs(1));
    let token = service.token_of_session("s");

    assert_eq!(before_any_poll, RevocationStatus::Ready, "no poll has had its chance yet");
    assert!(matches!(failed, Err(RevocationError::Fetch(_))), "{failed:?}");
    assert_eq!(after_a_failed_poll, RevocationStatus::Degraded);
    assert_eq!(service.revocations().status(), RevocationStatus::Unavailable);
    assert_eq!(service.verifier.verify(&token).await.unwrap_err(), VerifyError::RevocationsUnavailable);
}

/// A 304 is not signed, so it renews nothing: it only saves the transfer while the list in
/// force is young. Past half its useful life a poll asks for the whole list again.
#[tokio::test]
async fn a_not_modified_answer_renews_nothing_and_is_asked_for_only_while_the_list_is_young() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let issuer = server.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": issuer, "jwks_uri": format!("{issuer}/jwks.json"),
            "revocation_list_uri": format!("{issuer}/v1/revocations"),
        })))
        .mount(&server)
        .await;
    Mock::given(path("/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(forger().jwks()))
        .mount(&server)
        .await;
    let manual = ManualClock::starting_now();
    let list = forger().sign_revocations(&json!({
        "iss": issuer, "iat": manual.now(), "exp": manual.now() + 300, "seq": 1,
    }));
    Mock::given(path("/v1/revocations"))
        .and(header("if-none-match", "\"v1\""))
        .respond_with(ResponseTemplate::new(304).insert_header("etag", "\"v1\""))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/revocations"))
        .respond_with(ResponseTemplate::new(200).set_body_string(list).insert_header("etag", "\"v1\""))
        .mount(&server)
        .await;
    let keys = KeyCache::with_clock(common::key_cache_settings(&issuer), manual.clock()).unwrap();
    keys.refresh().await.unwrap();
    let revocations = Revocations::new(settings(), keys);
    revocations.poll().await.unwrap();

    manual.advance(MAX_AGE / 2 - Duration::from_secs(1));
    revocations.poll().await.unwrap();
    let age_after_not_modified = revocations.age();
    manual.advance(Duration::from_secs(1));
    revocations.poll().await.unwrap();

    let polls: Vec<bool> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|request| request.url.path() == "/v1/revocations")
        .map(|request| request.headers.contains_key("if-none-match"))
        .collect();
    assert_eq!(polls, [false, true, false], "revalidated only while young");
    assert_eq!(age_after_not_modified, Some(MAX_AGE / 2 - Duration::from_secs(1)));
}
