//! What token verification costs, per algorithm: the bare signature check, a full verification
//! with the verified-token cache disabled (`cache_capacity: 0`), and a repeat verification served
//! by the cache; plus, for EdDSA, two peers validating the same token: the `jwt-authorizer`
//! crate and plain `jsonwebtoken::decode`; and DPoP (`dpop_ES256`, `dpop_EdDSA`): one repeated
//! bound token with a fresh proof each time (`verify_dpop`) against the floor, the proof's bare
//! signature check (`proof_signature`).
//!
//! Run with `cargo bench -p shared-auth --bench verify`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/suite/common.rs"]
mod common;

use std::hint::black_box;

use common::{ALGORITHMS, AUDIENCE, Forger, UNREACHABLE_ISSUER as ISSUER};
use criterion::{Criterion, criterion_group, criterion_main};
use shared_auth::jws::{self, Algorithm, VerifyingKey};
use shared_auth::{AccessClaims, KeyCache, Verifier, VerifierSettings};

/// A verifier over `forger`'s key that never contacts anything; `cache_capacity: 0` disables
/// the verified-token cache (moka stores nothing at capacity zero).
fn verifier(forger: &Forger, cache_capacity: u64) -> Verifier {
    let keys = KeyCache::new(common::key_cache_settings(ISSUER)).unwrap();
    keys.replace_keys(forger.jwks()).unwrap();
    let mut settings = VerifierSettings::new(ISSUER, AUDIENCE);
    settings.cache_capacity = cache_capacity;
    common::verifier_with_settings(keys, settings)
}

fn ours(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for algorithm in ALGORITHMS {
        let forger = Forger::new(algorithm);
        let token = forger.sign(&common::user_claims(ISSUER));
        let parts = jws::split_compact(&token).unwrap();
        let key = VerifyingKey::from_jwk(&forger.jwk()).unwrap();
        let uncached = verifier(&forger, 0);
        let cached = verifier(&forger, 10_000);
        runtime.block_on(cached.verify(&token)).unwrap();

        let mut group = criterion.benchmark_group(algorithm.as_str());
        group.bench_function("raw_signature", |bencher| {
            bencher.iter(|| assert!(key.verify(black_box(parts.signing_input), black_box(&parts.signature))));
        });
        group.bench_function("verify_cold", |bencher| {
            bencher.iter(|| runtime.block_on(uncached.verify(black_box(&token))).unwrap());
        });
        group.bench_function("verify_cached", |bencher| {
            bencher.iter(|| runtime.block_on(cached.verify(black_box(&token))).unwrap());
        });
        group.finish();
    }
}

fn peers(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let forger = Forger::new(Algorithm::EdDSA);
    let token = forger.sign(&common::user_claims(ISSUER));
    let jwks_text = serde_json::to_string(&forger.jwks()).unwrap();
    let authorizer: jwt_authorizer::Authorizer<AccessClaims> = runtime
        .block_on(
            jwt_authorizer::JwtAuthorizer::from_jwks_text(&jwks_text)
                .validation(jwt_authorizer::Validation::new().iss(&[ISSUER]).aud(&[AUDIENCE]).leeway(30))
                .build(),
        )
        .unwrap();
    let decoding_key = jsonwebtoken::DecodingKey::from_ed_components(&forger.jwk().x.unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.leeway = 30;
    // Both peers must accept the token they are measured on.
    runtime.block_on(authorizer.check_auth(&token)).unwrap();
    jsonwebtoken::decode::<AccessClaims>(&token, &decoding_key, &validation).unwrap();

    let mut group = criterion.benchmark_group("EdDSA_peers");
    group.bench_function("jwt_authorizer_check_auth", |bencher| {
        bencher.iter(|| runtime.block_on(authorizer.check_auth(black_box(&token))).unwrap());
    });
    group.bench_function("jsonwebtoken_decode", |bencher| {
        bencher.iter(|| {
            jsonwebtoken::decode::<AccessClaims>(black_box(&token), &decoding_key, &validation).unwrap()
        });
    });
    group.finish();
}

/// A repeated bound token with a fresh proof per request: the token check comes from the
/// cache, so what remains should be about one signature verification, the proof's.
fn dpop(criterion: &mut Criterion) {
    use criterion::BatchSize;
    use shared_auth::dpop::ProofKey;

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let forger = Forger::new(Algorithm::EdDSA);
    for algorithm in [Algorithm::ES256, Algorithm::EdDSA] {
        let client = ProofKey::generate(algorithm).unwrap();
        let mut claims = common::user_claims(ISSUER);
        claims["cnf"] = serde_json::json!({ "jkt": client.thumbprint() });
        let token = forger.sign(&claims);
        let keys = KeyCache::new(common::key_cache_settings(ISSUER)).unwrap();
        keys.replace_keys(forger.jwks()).unwrap();
        let mut settings = VerifierSettings::new(ISSUER, AUDIENCE).with_public_url("http://bench.invalid");
        // Every iteration remembers a proof: room for all of them.
        settings.dpop.replay_capacity = 50_000_000;
        let verifier = common::verifier_with_settings(keys, settings);
        let uri = "http://bench.invalid/v1/orders";
        let fresh_proof =
            || client.proof("GET", uri, Some(&token), shared_auth::time::unix_now_i64()).unwrap();
        runtime.block_on(verifier.verify_dpop(&token, &fresh_proof(), "GET", "/v1/orders")).unwrap();
        let proof_key = VerifyingKey::from_jwk(&shared_auth::jws::Jwk {
            alg: Some(algorithm.as_str().into()),
            ..client.public_jwk()
        })
        .unwrap();

        let mut group = criterion.benchmark_group(format!("dpop_{}", algorithm.as_str()));
        group.bench_function("proof_signature", |bencher| {
            bencher.iter_batched(
                fresh_proof,
                |proof| {
                    let parts = jws::split_compact(&proof).unwrap();
                    assert!(proof_key.verify(parts.signing_input, &parts.signature));
                },
                BatchSize::SmallInput,
            );
        });
        group.bench_function("verify_dpop", |bencher| {
            bencher.iter_batched(
                fresh_proof,
                |proof| runtime.block_on(verifier.verify_dpop(&token, &proof, "GET", "/v1/orders")).unwrap(),
                BatchSize::SmallInput,
            );
        });
        group.finish();
    }
}

criterion_group!(benches, ours, peers, dpop);
criterion_main!(benches);
