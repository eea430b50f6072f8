//! Signing keys: storage, encryption at rest, rotation with pre-publication, discovery.
use crate::common;

use auth_server::store::keys::KeyState;
use common::{TestApp, decode_part};
use serde_json::Value;

fn kid(token: &str) -> String {
    decode_part(token, 0)["kid"].as_str().unwrap().to_owned()
}

testkit::on_both_backends! {
    async fn rotation_publishes_the_next_key_at_once_but_signs_with_it_only_after_prepublication(database) {
        let app = TestApp::start_with(database, |config| config.key_prepublish_secs = service_kit::Seconds::new(3600)).await;
        let before = app.registered_login("kate", "kate-password").await;
        let old_kid = kid(before["access_token"].as_str().unwrap());

        let rotated = app.state.tokens.keyring().rotate().await.unwrap();

        let jwks = app.jwks().await;
        let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|key| key["kid"].as_str().unwrap()).collect();
        assert!(kids.contains(&old_kid.as_str()) && kids.contains(&rotated.kid.as_str()), "{kids:?}");
        let after = app.login("kate", "kate-password").await.json::<Value>().await.unwrap();
        assert_eq!(kid(after["access_token"].as_str().unwrap()), old_kid, "signed with the pending key too early");

        let states: Vec<(String, KeyState)> = app.state.tokens.keyring().list().await.unwrap().into_iter().map(|key| (key.kid, key.state)).collect();
        assert!(states.contains(&(rotated.kid.clone(), KeyState::Pending)), "{states:?}");
        assert!(states.contains(&(old_kid.clone(), KeyState::Active)), "{states:?}");
    }

    async fn a_token_signed_before_a_rotation_still_verifies_after_it(database) {
        let app = TestApp::start_with_clock(database, |config| config.key_prepublish_secs = service_kit::Seconds::new(0)).await;
        let before = app.registered_login("liam", "liam-password").await;
        let old_token = before["access_token"].as_str().unwrap().to_owned();

        let rotated = app.state.tokens.keyring().rotate().await.unwrap();
        // Activation is one second after the previous key's, even without pre-publication.
        assert_eq!(app.state.tokens.keyring().signing_key().unwrap().kid, kid(&old_token), "not active yet");
        app.advance(std::time::Duration::from_secs(1));
        app.state.tokens.keyring().reload().await.unwrap();
        let after = app.login("liam", "liam-password").await.json::<Value>().await.unwrap();
        assert_eq!(kid(after["access_token"].as_str().unwrap()), rotated.kid, "new key signs once active");

        // The old key stays published (unpublish_at is after every old token's expiry).
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(app.jwks().await).unwrap();
        let old_key = jwks.find(&kid(&old_token)).expect("retired key must stay published");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.set_audience(&["users-service"]);
        assert!(jsonwebtoken::decode::<Value>(&old_token, &jsonwebtoken::DecodingKey::from_jwk(old_key).unwrap(), &validation).is_ok());
        let retired = app.state.tokens.keyring().list().await.unwrap().into_iter().find(|key| key.kid == kid(&old_token)).unwrap();
        assert_eq!(retired.state, KeyState::Retired);
        assert!(retired.unpublish_at.unwrap() >= rotated.activates_at + 900);
    }

    async fn two_replicas_on_one_database_share_keys_and_rotate_consistently(database) {
        let first = TestApp::start(database).await;
        let second_db = first.database.same_database();
        let second = TestApp::start(second_db).await;
        assert_eq!(first.jwks().await, second.jwks().await);

        let rotated = first.state.tokens.keyring().rotate().await.unwrap();
        second.state.tokens.keyring().reload().await.unwrap();
        assert_eq!(first.jwks().await, second.jwks().await);
        assert!(second.jwks().await["keys"].as_array().unwrap().iter().any(|key| key["kid"] == rotated.kid.as_str()));

        // A token from one replica verifies with the other's key set.
        let body = first.registered_login("mona", "mona-password").await;
        let token = body["access_token"].as_str().unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(second.jwks().await).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid(token)).unwrap()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.set_audience(&["orders-service"]);
        validation.set_issuer(&[first.url.as_str()]);
        assert!(jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok());
    }
}

#[tokio::test]
async fn the_jwks_never_contains_private_key_members() {
    for algorithm in [
        shared_auth::jws::Algorithm::EdDSA,
        shared_auth::jws::Algorithm::ES256,
        shared_auth::jws::Algorithm::RS256,
    ] {
        let app =
            TestApp::start_with(testkit::TestDatabase::sqlite(), |config| config.signing_alg = algorithm)
                .await;
        let jwks = app.jwks().await;
        for key in jwks["keys"].as_array().unwrap() {
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(key.get(private).is_none(), "{algorithm}: private member {private} published");
            }
            assert_eq!(key["use"], "sig");
            assert_eq!(key["alg"], algorithm.as_str());
        }
    }
}

#[tokio::test]
async fn private_keys_are_encrypted_at_rest_when_an_encryption_key_is_configured() {
    use base64::Engine as _;
    let encryption_key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let database = testkit::TestDatabase::sqlite();
    let url = database.url.clone();
    let app = TestApp::start_with(database, |config| {
        config.key_encryption_key = Some(secrecy::SecretString::from(encryption_key.clone()));
    })
    .await;
    let stored: String =
        sqlx::query_scalar("SELECT private_key FROM signing_keys").fetch_one(&app.state.pool).await.unwrap();
    assert!(stored.starts_with("v1:"), "stored unencrypted");

    // Without the key, or with a wrong one, the server refuses to start rather than sign with
    // something else.
    for wrong in [None, Some(base64::engine::general_purpose::STANDARD.encode([8u8; 32]))] {
        let mut config = common::test_config(&app.database, &app.url);
        config.storage.database_url = Some(secrecy::SecretString::from(url.clone()));
        config.key_encryption_key = wrong.map(secrecy::SecretString::from);
        let error = auth_server::build_state(config).await.expect_err("must refuse to start");
        assert!(format!("{error:#}").contains("KEY_ENCRYPTION_KEY"), "{error:#}");
    }
}

#[tokio::test]
async fn discovery_documents_list_what_exists_and_are_cacheable() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["cache-control"], "public, max-age=300", "{path}");
    }
    let metadata: Value = app.get("/.well-known/oauth-authorization-server").await.json().await.unwrap();
    assert_eq!(metadata["issuer"], app.url.as_str());
    assert_eq!(metadata["jwks_uri"], format!("{}/.well-known/jwks.json", app.url));
    assert_eq!(metadata["token_endpoint"], format!("{}/oauth2/token", app.url));
    assert_eq!(
        metadata["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    // Every endpoint the metadata advertises answers (not 404).
    for field in
        ["token_endpoint", "jwks_uri", "revocation_endpoint", "introspection_endpoint", "revocation_list_uri"]
    {
        let url = metadata[field].as_str().unwrap();
        let status = if field.ends_with("uri") {
            app.client.get(url).send().await.unwrap().status()
        } else {
            app.client.post(url).form(&[("token", "x")]).send().await.unwrap().status()
        };
        assert_ne!(status, 404, "{field}");
    }
}
