//! `POST /oauth2/token`: refresh-token rotation and reuse detection, lifetimes, scope narrowing,
//! client credentials, RFC 6749 error responses, and a generic OAuth client using the metadata.
use crate::common;

use std::time::Duration;

use common::{TestApp, decode_part, lists, status_and_json};
use serde_json::{Value, json};

const TOKEN: &str = "/oauth2/token";

async fn refresh_tokens_of_session(app: &TestApp, sid: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM refresh_tokens WHERE sid = $1")
        .bind(sid)
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
}

testkit::on_both_backends! {
    async fn refreshing_rotates_the_refresh_token_and_the_old_one_is_then_refused(database) {
        let app = TestApp::start(database).await;
        let login = app.registered_login("rita", "rita-password").await;
        let first = login["refresh_token"].as_str().unwrap();

        let rotated = app.refreshed(first).await;
        let second = rotated["refresh_token"].as_str().unwrap();
        let third = app.refreshed(second).await;
        let (status, error) = status_and_json(app.refresh(first).await).await;

        assert_ne!(second, first);
        assert_ne!(third["refresh_token"], rotated["refresh_token"]);
        assert_eq!(rotated["token_type"], "Bearer");
        assert_eq!(rotated["expires_in"], 900);
        assert_eq!(rotated["scope"], "profile:read profile:write orders:read orders:write");
        assert_eq!(status, 400);
        assert_eq!(error["error"], "invalid_grant");
        let used: Option<i64> = sqlx::query_scalar("SELECT used_at FROM refresh_tokens WHERE token_hash = $1")
            .bind(auth_server::tokens::hash_token(first))
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
        assert!(used.is_some(), "the presented token is marked used");
    }

    async fn presenting_a_used_refresh_token_revokes_the_whole_session(database) {
        let app = TestApp::start(database).await;
        let login = app.registered_login("sam", "sam-password").await;
        let sid = decode_part(login["access_token"].as_str().unwrap(), 1)["sid"].as_str().unwrap().to_owned();
        let stolen = login["refresh_token"].as_str().unwrap();
        let newest = app.refreshed(stolen).await["refresh_token"].as_str().unwrap().to_owned();

        let (reuse_status, reuse) = status_and_json(app.refresh(stolen).await).await;
        let (newest_status, newest_error) = status_and_json(app.refresh(&newest).await).await;

        assert_eq!(reuse_status, 400);
        assert_eq!(reuse["error"], "invalid_grant");
        assert_eq!(newest_status, 400, "the legitimate holder's newest token dies with the family");
        assert_eq!(newest_error["error"], "invalid_grant");
        let list = app.revocation_list().await;
        assert!(lists(&list.sessions, &sid), "sid {sid} not in {:?}", list.sessions);
    }

    async fn concurrent_refreshes_with_one_token_succeed_exactly_once(database) {
        let app = TestApp::start(database).await;
        let login = app.registered_login("tess", "tess-password").await;
        let refresh_token = login["refresh_token"].as_str().unwrap();
        let sid = decode_part(login["access_token"].as_str().unwrap(), 1)["sid"].as_str().unwrap().to_owned();

        let attempts = (0..8).map(|_| app.refresh(refresh_token));
        let responses = futures_util::future::join_all(attempts).await;

        let mut statuses = Vec::new();
        for response in responses {
            let (status, body) = status_and_json(response).await;
            if status != 200 {
                assert_eq!(body["error"], "invalid_grant", "{body}");
            }
            statuses.push(status);
        }
        assert_eq!(statuses.iter().filter(|&&status| status == 200).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|&&status| status == 400).count(), 7, "{statuses:?}");
        assert_eq!(refresh_tokens_of_session(&app, &sid).await, 2, "exactly one successor was minted");
    }

    async fn a_refresh_token_dies_at_the_absolute_session_lifetime_even_when_kept_in_use(database) {
        let app = TestApp::start_with_clock(database, |config| config.refresh_token_ttl_secs = service_kit::Seconds::new(2)).await;
        let login = app.registered_login("uma", "uma-password").await;
        app.advance(Duration::from_secs(1));
        let rotated = app.refreshed(login["refresh_token"].as_str().unwrap()).await;

        app.advance(Duration::from_secs(1));
        let (status, error) = status_and_json(app.refresh(rotated["refresh_token"].as_str().unwrap()).await).await;

        assert_eq!(status, 400);
        assert_eq!(error["error"], "invalid_grant");
    }

    async fn a_refresh_token_left_unused_for_the_idle_lifetime_dies(database) {
        let app = TestApp::start_with_clock(database, |config| config.refresh_idle_ttl_secs = service_kit::Seconds::new(1)).await;
        let login = app.registered_login("vera", "vera-password").await;

        app.advance(Duration::from_secs(1));
        let (status, error) = status_and_json(app.refresh(login["refresh_token"].as_str().unwrap()).await).await;

        assert_eq!(status, 400);
        assert_eq!(error["error"], "invalid_grant");
        assert_eq!(error["error_description"], "refresh token expired");
    }

    async fn refresh_can_narrow_the_scope_but_never_widen_it_again(database) {
        let app = TestApp::start(database).await;
        let login = app.registered_login("wendy", "wendy-password").await;
        let original = decode_part(login["access_token"].as_str().unwrap(), 1);

        let narrowed = app
            .post_form(TOKEN, &[
                ("grant_type", "refresh_token"),
                ("refresh_token", login["refresh_token"].as_str().unwrap()),
                ("scope", "profile:read"),
            ])
            .await;
        assert_eq!(narrowed.status(), 200);
        let narrowed: Value = narrowed.json().await.unwrap();
        let narrowed_refresh = narrowed["refresh_token"].as_str().unwrap();
        let mut refusals = Vec::new();
        for wider in ["profile:read profile:write orders:read orders:write admin", "profile:read profile:write orders:read orders:write"] {
            let response = app
                .post_form(TOKEN, &[("grant_type", "refresh_token"), ("refresh_token", narrowed_refresh), ("scope", wider)])
                .await;
            refusals.push(status_and_json(response).await);
        }
        let after_refusals = app.refreshed(narrowed_refresh).await;

        assert_eq!(narrowed["scope"], "profile:read");
        let claims = decode_part(narrowed["access_token"].as_str().unwrap(), 1);
        assert_eq!(claims["scope"], "profile:read");
        assert_eq!(claims["sub"], original["sub"]);
        assert_eq!(claims["sid"], original["sid"]);
        assert_eq!(claims["preferred_username"], "wendy");
        assert_ne!(claims["jti"], original["jti"]);
        for (status, error) in refusals {
            assert_eq!(status, 400);
            assert_eq!(error["error"], "invalid_scope");
        }
        assert_eq!(after_refusals["scope"], "profile:read", "a refused request neither burns nor widens the token");
    }

    async fn client_credentials_authenticate_by_http_basic_or_by_form_fields(database) {
        let app = TestApp::start(database).await;
        let secret = app.create_client("reports", &["users:read"], &["users-service"]).await;

        let by_basic = app.post_form_as(TOKEN, "reports", &secret, &[("grant_type", "client_credentials")]).await;
        let by_form = app
            .post_form(TOKEN, &[("grant_type", "client_credentials"), ("client_id", "reports"), ("client_secret", &secret)])
            .await;

        for response in [by_basic, by_form] {
            let (status, body) = status_and_json(response).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["token_type"], "Bearer");
            assert_eq!(body["scope"], "users:read");
            assert!(body.get("refresh_token").is_none(), "no refresh token for client credentials: {body}");
            let claims = decode_part(body["access_token"].as_str().unwrap(), 1);
            assert_eq!(claims["sub"], "reports");
            assert_eq!(claims["client_id"], "reports");
            assert_eq!(claims["aud"], json!(["users-service"]));
            assert_eq!(claims["scope"], "users:read");
            assert!(claims.get("sid").is_none(), "service tokens have no session: {claims}");
            assert!(claims.get("preferred_username").is_none());
        }
        let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(&app.state.pool).await.unwrap();
        assert_eq!(sessions, 0, "client credentials create no session");
    }

    async fn client_credentials_grant_only_registered_scopes_and_audiences(database) {
        let app = TestApp::start(database).await;
        let secret = app.create_client("reports", &["users:read", "users:list"], &["users-service"]).await;
        let request = |extra: &'static [(&'static str, &'static str)]| {
            let mut form = vec![("grant_type", "client_credentials")];
            form.extend_from_slice(extra);
            let (app, secret) = (&app, &secret);
            async move { status_and_json(app.post_form_as(TOKEN, "reports", secret, &form).await).await }
        };

        let (default_status, default) = request(&[]).await;
        let (narrow_status, narrow) = request(&[("scope", "users:read")]).await;
        let (scope_status, scope_error) = request(&[("scope", "users:read admin")]).await;
        let (audience_status, audience_error) = request(&[("audience", "orders-service")]).await;
        let (own_audience_status, own_audience) = request(&[("audience", "users-service")]).await;

        assert_eq!(default_status, 200);
        assert_eq!(default["scope"], "users:list users:read", "omitting scope grants every registered scope");
        assert_eq!(decode_part(default["access_token"].as_str().unwrap(), 1)["scope"], "users:list users:read");
        assert_eq!(narrow_status, 200);
        assert_eq!(decode_part(narrow["access_token"].as_str().unwrap(), 1)["scope"], "users:read");
        assert_eq!(scope_status, 400);
        assert_eq!(scope_error["error"], "invalid_scope");
        assert_eq!(audience_status, 400);
        assert_eq!(audience_error["error"], "invalid_scope");
        assert_eq!(own_audience_status, 200);
        assert_eq!(decode_part(own_audience["access_token"].as_str().unwrap(), 1)["aud"], json!(["users-service"]));
    }
}

#[tokio::test]
async fn authenticating_by_basic_and_form_fields_at_once_is_invalid_request() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = app.create_client("reports", &["users:read"], &["users-service"]).await;

    let response = app
        .post_form_as(
            TOKEN,
            "reports",
            &secret,
            &[("grant_type", "client_credentials"), ("client_id", "reports"), ("client_secret", &secret)],
        )
        .await;

    let (status, error) = status_and_json(response).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"], "invalid_request");
    assert!(error.get("access_token").is_none());
}

#[tokio::test]
async fn a_wrong_client_secret_is_invalid_client_with_a_basic_challenge_when_basic_was_used() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    app.create_client("reports", &["users:read"], &["users-service"]).await;
    let wrong = auth_server::clients::generate_secret();
    let wrong = secrecy::ExposeSecret::expose_secret(&wrong).to_owned();

    let by_basic = app.post_form_as(TOKEN, "reports", &wrong, &[("grant_type", "client_credentials")]).await;
    let by_form = app
        .post_form(
            TOKEN,
            &[("grant_type", "client_credentials"), ("client_id", "reports"), ("client_secret", &wrong)],
        )
        .await;
    let unknown_client =
        app.post_form_as(TOKEN, "no-such-client", &wrong, &[("grant_type", "client_credentials")]).await;

    assert_eq!(by_basic.status(), 401);
    let challenge = by_basic.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    assert_eq!(status_and_json(by_basic).await.1["error"], "invalid_client");
    assert_eq!(by_form.status(), 401);
    assert!(
        by_form.headers().get("www-authenticate").is_none(),
        "no Basic challenge when Basic was not used"
    );
    assert_eq!(status_and_json(by_form).await.1["error"], "invalid_client");
    let (unknown_status, unknown) = status_and_json(unknown_client).await;
    assert_eq!(unknown_status, 401);
    assert_eq!(unknown["error"], "invalid_client");
}

#[tokio::test]
async fn a_confidential_client_cannot_redeem_a_refresh_token_issued_to_another_client() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = app.create_client("reports", &["users:read"], &["users-service"]).await;
    let login = app.registered_login("xena", "xena-password").await;
    let refresh_token = login["refresh_token"].as_str().unwrap();

    let response = app
        .post_form_as(
            TOKEN,
            "reports",
            &secret,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
        )
        .await;

    let (status, error) = status_and_json(response).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"], "invalid_grant");
    // RFC 6749 §6: the token was not issued to that client, so it is not consumed either.
    assert_eq!(app.refreshed(refresh_token).await["token_type"], "Bearer");
}

#[tokio::test]
async fn the_password_grant_and_unknown_grant_types_are_unsupported() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    assert_eq!(app.register("yara", "yara-password").await.status(), 201);

    let password = app
        .post_form(TOKEN, &[("grant_type", "password"), ("username", "yara"), ("password", "yara-password")])
        .await;
    let unknown = app.post_form(TOKEN, &[("grant_type", "urn:example:magic")]).await;
    for response in [password, unknown] {
        let (status, error) = status_and_json(response).await;
        assert_eq!(status, 400);
        assert_eq!(error["error"], "unsupported_grant_type");
    }
    let sessions: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(&app.state.pool).await.unwrap();
    assert_eq!(sessions, 0, "the right password through the password grant creates no session");
}

#[tokio::test]
async fn a_missing_grant_type_is_invalid_request() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let login = app.registered_login("zack", "zack-password").await;
    let refresh_token = login["refresh_token"].as_str().unwrap();

    let missing = app.post_form(TOKEN, &[("refresh_token", refresh_token)]).await;
    let empty = app.post_form(TOKEN, &[("grant_type", ""), ("refresh_token", refresh_token)]).await;

    for response in [missing, empty] {
        let (status, error) = status_and_json(response).await;
        assert_eq!(status, 400);
        assert_eq!(error["error"], "invalid_request");
    }
    app.refreshed(refresh_token).await;
}

#[tokio::test]
async fn a_json_body_is_invalid_request_and_consumes_nothing() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let login = app.registered_login("abel", "abel-password").await;
    let refresh_token = login["refresh_token"].as_str().unwrap();

    let response =
        app.post_json(TOKEN, &json!({"grant_type": "refresh_token", "refresh_token": refresh_token})).await;

    let (status, error) = status_and_json(response).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"], "invalid_request");
    app.refreshed(refresh_token).await;
}

#[tokio::test]
async fn a_repeated_parameter_is_invalid_request_and_consumes_nothing() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let login = app.registered_login("bert", "bert-password").await;
    let refresh_token = login["refresh_token"].as_str().unwrap();

    let repeated_token = app
        .post_form(
            TOKEN,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("refresh_token", refresh_token),
            ],
        )
        .await;
    let repeated_grant = app
        .post_form(
            TOKEN,
            &[
                ("grant_type", "refresh_token"),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await;

    for response in [repeated_token, repeated_grant] {
        let (status, error) = status_and_json(response).await;
        assert_eq!(status, 400);
        assert_eq!(error["error"], "invalid_request");
        assert!(error["error_description"].as_str().unwrap().contains("repeated"), "{error}");
    }
    app.refreshed(refresh_token).await;
}

#[tokio::test]
async fn every_token_endpoint_response_is_uncacheable_and_errors_are_rfc_6749_json() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = app.create_client("reports", &["users:read"], &["users-service"]).await;
    let login = app.registered_login("cora", "cora-password").await;
    let refresh_token = login["refresh_token"].as_str().unwrap().to_owned();

    let successes = vec![
        app.refresh(&refresh_token).await,
        app.post_form_as(TOKEN, "reports", &secret, &[("grant_type", "client_credentials")]).await,
    ];
    let errors = vec![
        app.post_form(TOKEN, &[("grant_type", "password")]).await,
        app.post_form(TOKEN, &[("grant_type", "refresh_token"), ("refresh_token", "nonsense")]).await,
        app.post_form(TOKEN, &[("grant_type", "refresh_token")]).await,
        app.post_form_as(TOKEN, "reports", "wrong-secret", &[("grant_type", "client_credentials")]).await,
        app.post_form_as(
            TOKEN,
            "reports",
            &secret,
            &[("grant_type", "client_credentials"), ("scope", "admin")],
        )
        .await,
        app.post_json(TOKEN, &json!({"grant_type": "client_credentials"})).await,
    ];

    for response in successes {
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["pragma"], "no-cache");
        assert_eq!(response.headers()["content-type"], "application/json");
    }
    let mut codes = Vec::new();
    for response in errors {
        assert!(response.status() == 400 || response.status() == 401, "{}", response.status());
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: Value = response.json().await.unwrap();
        let members = body.as_object().unwrap();
        assert!(members.keys().all(|key| key == "error" || key == "error_description"), "{body}");
        assert!(members.get("error_description").is_none_or(Value::is_string), "{body}");
        codes.push(body["error"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        codes,
        [
            "unsupported_grant_type",
            "invalid_grant",
            "invalid_request",
            "invalid_client",
            "invalid_scope",
            "invalid_request"
        ]
    );
}

#[tokio::test]
async fn a_generic_oauth_client_gets_a_verifiable_service_token_using_only_the_metadata() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = app.create_client("reports", &["users:read"], &["users-service"]).await;
    let http = reqwest::Client::new();

    // Discover.
    let metadata: Value = http
        .get(format!("{}/.well-known/oauth-authorization-server", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issuer = metadata["issuer"].as_str().unwrap();
    let token_endpoint = metadata["token_endpoint"].as_str().unwrap();
    let jwks_uri = metadata["jwks_uri"].as_str().unwrap();
    let auth_methods: Vec<&str> = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|method| method.as_str().unwrap())
        .collect();
    let grants = metadata["grant_types_supported"].as_array().unwrap();
    let algorithm: jsonwebtoken::Algorithm =
        metadata["access_token_signing_alg_values_supported"][0].as_str().unwrap().parse().unwrap();
    assert!(auth_methods.contains(&"client_secret_basic"), "{auth_methods:?}");
    assert!(grants.contains(&json!("client_credentials")), "{grants:?}");

    // Get a token.
    let token: Value = http
        .post(token_endpoint)
        .basic_auth("reports", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = token["access_token"].as_str().unwrap();

    // Verify it with nothing but the published keys.
    let jwks: jsonwebtoken::jwk::JwkSet = http.get(jwks_uri).send().await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(access_token).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(algorithm);
    validation.set_audience(&["users-service"]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let verified = jsonwebtoken::decode::<Value>(access_token, &key, &validation).unwrap();

    assert_eq!(issuer, app.url);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(verified.claims["sub"], "reports");
    assert_eq!(verified.claims["scope"], "users:read");
    let mut other_audience = validation.clone();
    other_audience.set_audience(&["orders-service"]);
    assert!(
        jsonwebtoken::decode::<Value>(access_token, &key, &other_audience).is_err(),
        "the token is only for the audiences the client is registered for"
    );
}

#[tokio::test]
async fn an_oversized_body_is_refused_in_the_oauth_error_format_at_every_oauth_endpoint() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let padding = "x".repeat(service_kit::MAX_BODY_BYTES + 1);

    for path in [TOKEN, "/oauth2/revoke", "/oauth2/introspect"] {
        let response =
            app.post_form(path, &[("grant_type", "client_credentials"), ("padding", &padding)]).await;

        assert_eq!(response.status(), 413, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
        assert_eq!(response.headers()["content-type"], "application/json", "{path}");
        assert_eq!(status_and_json(response).await.1["error"], "invalid_request", "{path}");
    }
}
