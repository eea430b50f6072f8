//! A genuine new key against a flood of forged `kid`s: an issuer that rotates without
//! pre-publishing signs with a key the services have never seen. The unknown-`kid` cooldown
//! must keep forged `kid`s from hammering the issuer without locking that key out.
use crate::common::{self, Forger};
use crate::issuer::TestIssuer;

use std::time::{Duration, Instant};

use serde_json::json;
use shared_auth::jws::{Algorithm, JwkSet};
use shared_auth::time::ManualClock;
use shared_auth::{KeyCache, Verifier, VerifyError};

/// The key the issuer signs with before the rotation.
fn old_key() -> &'static Forger {
    Forger::shared(Algorithm::EdDSA)
}

struct Rotation {
    issuer: TestIssuer,
    manual: ManualClock,
    cooldown: Duration,
    verifier: Verifier,
    new_key: Forger,
}

impl Rotation {
    /// A verifier that has fetched the issuer's key set once.
    async fn start() -> Self {
        let issuer = TestIssuer::start(old_key().jwks()).await;
        let manual = ManualClock::starting_now();
        let settings = common::key_cache_settings(&issuer.url);
        let cooldown = settings.unknown_kid_cooldown;
        let keys = KeyCache::with_clock(settings, manual.clock()).unwrap();
        keys.refresh().await.unwrap();
        let verifier = common::verifier_over(keys, &issuer.url);
        Self { issuer, manual, cooldown, verifier, new_key: Forger::new(Algorithm::ES256) }
    }

    /// One forged token: a genuine signature (nothing to do with it) under a made-up `kid`.
    async fn forged_token_arrives(&self) {
        let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": common::unique_id() });
        let token = old_key().sign_with_header(&header, &self.claims());
        assert_eq!(self.verifier.verify(&token).await.unwrap_err(), VerifyError::UnknownKid);
    }

    /// The issuer starts signing with a new key, published only now.
    fn rotate_without_prepublication(&self) {
        self.issuer.publish(JwkSet { keys: vec![old_key().jwk(), self.new_key.jwk()] });
    }

    async fn genuine_new_token(&self) -> Result<String, VerifyError> {
        let token = self.new_key.sign(&self.claims());
        self.verifier.verify(&token).await.map(|claims| claims.sub.clone())
    }

    fn claims(&self) -> serde_json::Value {
        let mut claims = common::user_claims(&self.issuer.url);
        claims["iat"] = json!(self.manual.now());
        claims["nbf"] = json!(self.manual.now());
        claims["exp"] = json!(self.manual.now() + 900);
        claims
    }

    fn advance(&self, seconds: u64) {
        self.manual.advance(Duration::from_secs(seconds));
    }
}

#[tokio::test]
async fn a_key_rotated_in_during_a_forged_kid_flood_is_accepted_at_the_end_of_the_window() {
    let rotation = Rotation::start().await;
    let window = rotation.cooldown.as_secs();
    // The flood: a forged kid starts the cooldown window with its refetch.
    rotation.forged_token_arrives().await;
    rotation.advance(1);
    rotation.rotate_without_prepublication();

    let during_the_window = rotation.genuine_new_token().await;
    for _ in 0..3 {
        rotation.advance(window / 4);
        rotation.forged_token_arrives().await;
    }
    rotation.advance(window - 1 - 3 * (window / 4));
    // The genuine client retries as the window ends; the flood goes on right after.
    let at_the_end_of_the_window = rotation.genuine_new_token().await;
    rotation.forged_token_arrives().await;
    let afterwards = rotation.genuine_new_token().await;

    assert_eq!(during_the_window.unwrap_err(), VerifyError::UnknownKid, "the window is still running");
    assert_eq!(at_the_end_of_the_window.unwrap(), "user-1");
    assert_eq!(afterwards.unwrap(), "user-1");
    // Start-up, the flood's first refetch, one at the end of the window: the flood got no more.
    assert_eq!(rotation.issuer.jwks_fetches(), 3);
}

#[tokio::test]
async fn the_end_of_the_window_refetches_by_itself_for_a_kid_it_refused() {
    let rotation = Rotation::start().await;
    rotation.forged_token_arrives().await;
    rotation.rotate_without_prepublication();
    assert_eq!(rotation.genuine_new_token().await.unwrap_err(), VerifyError::UnknownKid);
    let fetches_before = rotation.issuer.jwks_fetches();

    rotation.advance(rotation.cooldown.as_secs());
    let started = Instant::now();
    while rotation.issuer.jwks_fetches() == fetches_before {
        assert!(started.elapsed() < Duration::from_secs(5), "no refetch at the end of the window");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let accepted = rotation.genuine_new_token().await;

    assert_eq!(accepted.unwrap(), "user-1");
    assert_eq!(rotation.issuer.jwks_fetches(), fetches_before + 1, "the scheduled refetch, no other");
}

#[tokio::test]
async fn with_no_window_running_a_key_rotated_in_is_accepted_at_once() {
    let rotation = Rotation::start().await;
    rotation.forged_token_arrives().await;
    rotation.advance(rotation.cooldown.as_secs());
    rotation.forged_token_arrives().await;
    rotation.advance(rotation.cooldown.as_secs());
    rotation.rotate_without_prepublication();

    let accepted = rotation.genuine_new_token().await;

    assert_eq!(accepted.unwrap(), "user-1");
}

#[tokio::test]
async fn forged_kids_refused_in_the_window_are_not_refused_for_longer_than_it() {
    let rotation = Rotation::start().await;
    rotation.forged_token_arrives().await;
    let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": rotation.new_key.kid });
    let early = rotation.new_key.sign_with_header(&header, &rotation.claims());
    assert_eq!(rotation.verifier.verify(&early).await.unwrap_err(), VerifyError::UnknownKid);

    rotation.advance(rotation.cooldown.as_secs());
    rotation.rotate_without_prepublication();
    let after_the_window = rotation.verifier.verify(&early).await;

    // The same kid, refused once during the window, is looked up again after it: a refused
    // kid is not remembered as unknown for minutes.
    assert_eq!(after_the_window.unwrap().sub, "user-1");
}
