//! Access-token signing cost per algorithm: the whole `TokenIssuer::issue` (claims, JSON,
//! base64url, signature with the in-memory key) and the bare signature for comparison.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use auth_server::config::Cli;
use auth_server::tokens::TokenRequest;
use clap::Parser as _;
use criterion::{Criterion, criterion_group, criterion_main};
use shared_auth::jws::{Algorithm, SigningKey};

fn request() -> TokenRequest {
    TokenRequest {
        subject: "01a22726-3cb2-770e-bc03-86c75dc48ba2".into(),
        client_id: "platform".into(),
        scope: "profile:read profile:write orders:read orders:write".into(),
        audiences: vec!["users-service".into(), "orders-service".into()],
        roles: vec![],
        username: Some("alice".into()),
        sid: Some("3dcd3b44e68f4a2faf8f4d52bbb07f0f".into()),
        idp: None,
        bound_key: None,
    }
}

fn signing(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for algorithm in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
        let dir = tempfile::tempdir().unwrap();
        let mut cli = Cli::parse_from(["auth-server"]);
        cli.config.storage.data_dir = dir.path().to_path_buf();
        cli.config.signing_alg = algorithm;
        let state = runtime.block_on(auth_server::build_state(cli.config)).unwrap();
        c.bench_function(&format!("issue_access_token/{algorithm}"), |b| {
            b.iter(|| state.tokens.issue(request()).unwrap())
        });
        let key = SigningKey::generate(algorithm).unwrap();
        let message = vec![b'x'; 400];
        c.bench_function(&format!("raw_signature/{algorithm}"), |b| b.iter(|| key.sign(&message).unwrap()));
    }
}

criterion_group!(benches, signing);
criterion_main!(benches);
