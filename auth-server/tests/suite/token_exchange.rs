//! Token exchange at `POST /oauth2/token` (RFC 8693), by rule: §2.1 the request (client
//! authentication, `subject_token_type`, `audience`/`resource`, `scope`), §2.2 the response
//! (`issued_token_type`, no refresh token) and its errors, §4.1 `act` (nested on a chained
//! exchange), and this platform's rules (DESIGN.md "Token exchange"): the caller must be in the
//! subject token's `aud`, the scope only narrows, `exp` never passes the subject token's, and
//! ending the user's session ends the exchanged tokens too.
use crate::common;

use std::time::Duration;

use common::{TestApp, decode_part, lists, status_and_json};
use serde_json::{Value, json};

const TOKEN: &str = "/oauth2/token";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The acting service of these tests, named like the platform's: user tokens (aud
/// `TOKEN_AUDIENCES`) name it, so it may exchange them.
const ACTOR: &str = "orders-service";

/// Registers `client_id` with `scopes`, tokens of its own for `users-service`, and the given
/// exchange audiences; returns its secret.
async fn exchanging_client(
    app: &TestApp,
    client_id: &str,
    scopes: &[&str],
    exchange_audiences: &[&str],
) -> String {
    let secret = auth_server::clients::generate_secret();
    let registration = auth_server::clients::Registration {
        scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
        audiences: vec!["users-service".into()],
        exchange_audiences: exchange_audiences.iter().map(|audience| (*audience).to_owned()).collect(),
        ..auth_server::clients::Registration::default()
    };
    auth_server::clients::register(&app.state.pool, client_id, &secret, &registration).await.unwrap();
    secrecy::ExposeSecret::expose_secret(&secret).to_owned()
}

/// The acting service: may obtain `profile:read` and `orders:read` tokens for users-service.
async fn actor(app: &TestApp) -> String {
    exchanging_client(app, ACTOR, &["profile:read", "orders:read"], &["users-service"]).await
}

/// POST a token exchange of `subject_token` as `client_id`, with `extra` parameters.
async fn exchange(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    subject_token: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", GRANT),
        ("subject_token", subject_token),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ];
    form.extend_from_slice(extra);
    app.post_form_as(TOKEN, client_id, secret, &form).await
}

/// A token exchange for users-service that must succeed; returns the response body.
async fn exchanged(app: &TestApp, client_id: &str, secret: &str, subject_token: &str) -> Value {
    let (status, body) = status_and_json(
        exchange(app, client_id, secret, subject_token, &[("audience", "users-service")]).await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn access(response: &Value) -> &str {
    response["access_token"].as_str().unwrap()
}

/// The error code of a refusal, after checking its status.
async fn refusal(response: reqwest::Response, status: u16) -> String {
    let (actual, body) = status_and_json(response).await;
    assert_eq!(actual, status, "{body}");
    assert!(body.get("access_token").is_none(), "{body}");
    body["error"].as_str().unwrap().to_owned()
}

testkit::on_both_backends! {
    async fn an_exchanged_token_is_the_users_own_for_one_audience_with_the_client_as_actor(database) {
        let app = TestApp::start(database).await;
        let secret = actor(&app).await;
        let login = app.registered_login("ann", "ann-password").await;
        let subject = decode_part(access(&login), 1);
        let sessions_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(&app.state.pool).await.unwrap();

        let response = exchange(&app, ACTOR, &secret, access(&login), &[("audience", "users-service")]).await;

        assert_eq!(response.headers()["cache-control"], "no-store");
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
        assert_eq!(body["token_type"], "Bearer");
        assert!(body.get("refresh_token").is_none(), "RFC 8693 §2.2.1: no refresh token here: {body}");
        // The user's scope cut down to what the client is registered for, in the response too.
        assert_eq!(body["scope"], "orders:read profile:read");
        let header = decode_part(access(&body), 0);
        let claims = decode_part(access(&body), 1);
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(claims["sub"], subject["sub"]);
        assert_eq!(claims["sid"], subject["sid"]);
        assert_eq!(claims["preferred_username"], "ann");
        assert_eq!(claims["aud"], json!(["users-service"]));
        assert_eq!(claims["client_id"], ACTOR);
        assert_eq!(claims["act"], json!({"sub": ACTOR}));
        assert_eq!(claims["scope"], "orders:read profile:read");
        assert_eq!(claims["iss"], app.url.as_str());
        assert_ne!(claims["jti"], subject["jti"]);
        assert!(claims["exp"].as_i64() <= subject["exp"].as_i64());
        assert_eq!(body["expires_in"].as_i64().unwrap(), claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap());
        // It is a token the platform's services accept: shared-auth's rules hold.
        let verified = app.state.verifier.verify(access(&body)).await.unwrap();
        assert_eq!(verified.actor(), Some(ACTOR));
        assert!(verified.is_user());
        let sessions_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(&app.state.pool).await.unwrap();
        assert_eq!(sessions_after, sessions_before, "an exchange starts no session of its own");
    }

    async fn after_logout_neither_the_subject_token_nor_the_exchanged_one_is_accepted(database) {
        let app = TestApp::start(database).await;
        let secret = actor(&app).await;
        let login = app.registered_login("bob", "bob-password").await;
        let exchanged = exchanged(&app, ACTOR, &secret, access(&login)).await;
        let sid = decode_part(access(&exchanged), 1)["sid"].as_str().unwrap().to_owned();
        assert_eq!(app.introspect(ACTOR, &secret, access(&exchanged)).await["active"], true);

        assert_eq!(app.logout(access(&login)).await.status(), 204);
        let again = exchange(&app, ACTOR, &secret, access(&login), &[("audience", "users-service")]).await;

        assert_eq!(refusal(again, 400).await, "invalid_grant");
        // Services key revocations on sid, and the exchanged token carries the session's.
        assert!(lists(&app.revocation_list().await.sessions, &sid), "sid {sid} not revoked");
        assert_eq!(app.introspect(ACTOR, &secret, access(&exchanged)).await["active"], false);
    }
}

#[tokio::test]
async fn resource_names_the_target_like_audience_and_both_must_agree() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = actor(&app).await;
    let login = app.registered_login("cleo", "cleo-password").await;

    let by_resource = exchange(&app, ACTOR, &secret, access(&login), &[("resource", "users-service")]).await;
    let both_agreeing = exchange(
        &app,
        ACTOR,
        &secret,
        access(&login),
        &[("audience", "users-service"), ("resource", "users-service")],
    )
    .await;
    let disagreeing = exchange(
        &app,
        ACTOR,
        &secret,
        access(&login),
        &[("audience", "users-service"), ("resource", "orders-service")],
    )
    .await;

    for response in [by_resource, both_agreeing] {
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(decode_part(access(&body), 1)["aud"], json!(["users-service"]));
    }
    assert_eq!(refusal(disagreeing, 400).await, "invalid_target");
}

#[tokio::test]
async fn an_audience_the_client_may_not_obtain_or_none_at_all_is_an_invalid_target() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = actor(&app).await;
    let login = app.registered_login("dora", "dora-password").await;
    let subject = access(&login);

    // orders-service is in the user token's aud, but not among the client's exchange audiences.
    let forbidden = exchange(&app, ACTOR, &secret, subject, &[("audience", "orders-service")]).await;
    let missing = exchange(&app, ACTOR, &secret, subject, &[]).await;
    let two = exchange(
        &app,
        ACTOR,
        &secret,
        subject,
        &[("audience", "users-service"), ("audience", "orders-service")],
    )
    .await;
    let listed_together =
        exchange(&app, ACTOR, &secret, subject, &[("audience", "users-service orders-service")]).await;

    for response in [forbidden, missing, two, listed_together] {
        assert_eq!(refusal(response, 400).await, "invalid_target");
    }
}

#[tokio::test]
async fn a_client_registered_without_exchange_audiences_may_not_exchange_at_all() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = app.create_client(ACTOR, &["profile:read"], &["users-service"]).await;
    let login = app.registered_login("emil", "emil-password").await;

    let response = exchange(&app, ACTOR, &secret, access(&login), &[("audience", "users-service")]).await;

    assert_eq!(refusal(response, 400).await, "unauthorized_client");
}

#[tokio::test]
async fn the_scope_can_only_narrow_and_is_cut_down_to_the_clients_registered_scopes() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = actor(&app).await;
    let login = app.registered_login("fay", "fay-password").await;
    let subject = access(&login);
    let with_scope = |scope: &'static str| {
        let (app, secret) = (&app, &secret);
        async move {
            exchange(app, ACTOR, secret, subject, &[("audience", "users-service"), ("scope", scope)]).await
        }
    };

    let (narrow_status, narrow) = status_and_json(with_scope("profile:read").await).await;
    // profile:write is the user's but not the client's: left out, not an error (RFC 6749 §3.3).
    let (cut_status, cut) = status_and_json(with_scope("profile:read profile:write").await).await;
    let widened = with_scope("profile:read users:read").await;
    let outside_the_client = with_scope("profile:write").await;

    assert_eq!(narrow_status, 200, "{narrow}");
    assert_eq!(decode_part(access(&narrow), 1)["scope"], "profile:read");
    assert_eq!(cut_status, 200, "{cut}");
    assert_eq!(cut["scope"], "profile:read");
    assert_eq!(decode_part(access(&cut), 1)["scope"], "profile:read");
    assert_eq!(refusal(widened, 400).await, "invalid_scope", "users:read is not in the user's token");
    assert_eq!(refusal(outside_the_client, 400).await, "invalid_scope", "nothing would be left");
}

#[tokio::test]
async fn a_user_token_narrowed_on_refresh_cannot_be_widened_by_an_exchange() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = actor(&app).await;
    let login = app.registered_login("gus", "gus-password").await;
    let narrowed = app
        .post_form(
            TOKEN,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", login["refresh_token"].as_str().unwrap()),
                ("scope", "orders:read"),
            ],
        )
        .await;
    let narrowed: Value = narrowed.json().await.unwrap();

    let by_default = exchanged(&app, ACTOR, &secret, access(&narrowed)).await;
    let asked_for_more = exchange(
        &app,
        ACTOR,
        &secret,
        access(&narrowed),
        &[("audience", "users-service"), ("scope", "orders:read profile:read")],
    )
    .await;

    assert_eq!(decode_part(access(&by_default), 1)["scope"], "orders:read");
    assert_eq!(refusal(asked_for_more, 400).await, "invalid_scope");
}

#[tokio::test]
async fn a_client_not_in_the_subject_tokens_audience_cannot_exchange_it() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    // Registered for exchange, but user tokens (aud users-service, orders-service) do not name it.
    let secret = exchanging_client(&app, "billing", &["profile:read"], &["users-service"]).await;
    let login = app.registered_login("hana", "hana-password").await;

    let response = exchange(&app, "billing", &secret, access(&login), &[("audience", "users-service")]).await;

    assert_eq!(refusal(response, 400).await, "invalid_grant");
}

#[tokio::test]
async fn a_chained_exchange_nests_the_previous_actor_inside_the_new_one() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    // orders-service calls billing for the user; billing then calls users-service for them.
    let orders = exchanging_client(&app, ACTOR, &["profile:read", "orders:read"], &["billing"]).await;
    let billing = exchanging_client(&app, "billing", &["profile:read"], &["users-service"]).await;
    let login = app.registered_login("ivo", "ivo-password").await;
    let for_billing = exchange(&app, ACTOR, &orders, access(&login), &[("audience", "billing")]).await;
    let for_billing: Value = for_billing.json().await.unwrap();

    let for_users = exchanged(&app, "billing", &billing, access(&for_billing)).await;

    let first = decode_part(access(&for_billing), 1);
    let second = decode_part(access(&for_users), 1);
    assert_eq!(first["act"], json!({"sub": ACTOR}));
    assert_eq!(second["act"], json!({"sub": "billing", "act": {"sub": ACTOR}}));
    assert_eq!(second["client_id"], "billing");
    assert_eq!(second["aud"], json!(["users-service"]));
    assert_eq!((&second["sub"], &second["sid"]), (&first["sub"], &first["sid"]));
    assert_eq!(second["scope"], "profile:read");
    // The first exchanged token is for billing only: orders-service cannot exchange it again.
    let replayed = exchange(&app, ACTOR, &orders, access(&for_billing), &[("audience", "billing")]).await;
    assert_eq!(refusal(replayed, 400).await, "invalid_grant");
}

#[tokio::test]
async fn the_exchanged_token_expires_no_later_than_the_subject_token() {
    let app = TestApp::start_with_clock(testkit::TestDatabase::sqlite(), |_| {}).await;
    let secret = actor(&app).await;
    let login = app.registered_login("jana", "jana-password").await;
    let subject = decode_part(access(&login), 1);

    app.advance(Duration::from_secs(600));
    let late = exchanged(&app, ACTOR, &secret, access(&login)).await;
    app.advance(Duration::from_secs(300));
    let expired = exchange(&app, ACTOR, &secret, access(&login), &[("audience", "users-service")]).await;

    let claims = decode_part(access(&late), 1);
    assert_eq!(claims["exp"], subject["exp"], "capped at the subject token's exp, not iat + 900");
    assert_eq!(late["expires_in"], 300);
    // Expired by exactly 0 s: within the verifier's clock-skew leeway, still refused here.
    assert_eq!(refusal(expired, 400).await, "invalid_grant");
}

#[tokio::test]
async fn an_exchanged_token_lives_no_longer_than_the_access_token_lifetime() {
    // A subject token that lives longer than the server's lifetime now (it was issued before
    // ACCESS_TOKEN_TTL_SECS was lowered): the exchanged one still gets at most the lifetime.
    let app = TestApp::start_with_clock(testkit::TestDatabase::sqlite(), |config| {
        config.access_token_ttl_secs = service_kit::Seconds::new(60);
    })
    .await;
    let secret = actor(&app).await;
    assert_eq!(app.register("karl", "karl-password").await.status(), 201);
    let user = auth_server::store::users::find_by_username(
        &app.state.pool,
        &auth_server::domain::Username::try_from("karl").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let login = app.login("karl", "karl-password").await.json::<Value>().await.unwrap();
    let mut long_lived = app.state.verifier.verify(access(&login)).await.unwrap().as_ref().clone();
    long_lived.exp = long_lived.iat + 3_600;
    let signing = app.state.tokens.keyring().signing_key().unwrap();
    let long_lived =
        shared_auth::jws::sign_compact(&signing.key, &signing.kid, "at+jwt", &long_lived).unwrap();

    let response = exchanged(&app, ACTOR, &secret, &long_lived).await;

    let claims = decode_part(access(&response), 1);
    assert_eq!(claims["sub"], user.id.as_str());
    assert_eq!(response["expires_in"], 60);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 60);
}

#[tokio::test]
async fn a_subject_token_of_a_session_ended_by_refresh_token_reuse_or_a_disabled_account_is_refused() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = actor(&app).await;
    let reused = app.registered_login("lena", "lena-password").await;
    let stolen = reused["refresh_token"].as_str().unwrap();
    app.refreshed(stolen).await;
    assert_eq!(app.refresh(stolen).await.status(), 400, "reuse ends the session");
    let disabled = app.registered_login("milo", "milo-password").await;
    auth_server::cli::disable_user(&app.state, "milo").await.unwrap();

    for subject in [access(&reused), access(&disabled)] {
        let response = exchange(&app, ACTOR, &secret, subject, &[("audience", "users-service")]).await;
        assert_eq!(refusal(response, 400).await, "invalid_grant");
    }
}

#[tokio::test]
async fn only_an_access_token_of_a_user_is_a_subject_token() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = actor(&app).await;
    let login = app.registered_login("nora", "nora-password").await;
    let subject = decode_part(access(&login), 1);
    let refresh_token = login["refresh_token"].as_str().unwrap();
    // An id_token signed by this server for the acting client: right keys, issuer and aud,
    // wrong `typ` (RFC 9068 §2.1: `at+jwt` only).
    let now = app.state.clock.now();
    let id_token = auth_server::oauth::id_token::sign(
        &app.state,
        shared_auth::jws::Algorithm::EdDSA,
        &auth_server::oauth::id_token::IdTokenClaims {
            iss: app.url.clone(),
            sub: subject["sub"].as_str().unwrap().to_owned(),
            aud: ACTOR.into(),
            azp: ACTOR.into(),
            exp: now + 300,
            iat: now,
            auth_time: now,
            nonce: None,
            sid: subject["sid"].as_str().unwrap().to_owned(),
            at_hash: None,
            preferred_username: None,
            idp: None,
        },
    )
    .await
    .unwrap();
    // A service token naming the acting client in its aud: no user to act for.
    let service_secret = app.create_client("reports", &["profile:read"], &[ACTOR]).await;
    let service_token = app.client_token("reports", &service_secret).await;
    // A token from another issuer's key.
    let foreign = testkit::FakeIssuer::start().await.user_token("u1", "nora", ACTOR);

    for bad in [refresh_token, id_token.as_str(), access(&service_token), foreign.as_str(), "not-a-token"] {
        let response = exchange(&app, ACTOR, &secret, bad, &[("audience", "users-service")]).await;
        assert_eq!(refusal(response, 400).await, "invalid_grant", "{bad}");
    }
    // The refresh token was not consumed by being offered.
    app.refreshed(refresh_token).await;
}

#[tokio::test]
async fn the_subject_token_type_must_be_given_and_be_an_access_token() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = actor(&app).await;
    let login = app.registered_login("otto", "otto-password").await;
    let form = |subject_token_type: Option<&'static str>, extra: &'static [(&'static str, &'static str)]| {
        let mut form =
            vec![("grant_type", GRANT), ("subject_token", access(&login)), ("audience", "users-service")];
        form.extend(subject_token_type.map(|value| ("subject_token_type", value)));
        form.extend_from_slice(extra);
        form
    };
    let cases = [
        form(None, &[]),
        form(Some("urn:ietf:params:oauth:token-type:refresh_token"), &[]),
        form(Some("urn:ietf:params:oauth:token-type:id_token"), &[]),
        form(Some("urn:ietf:params:oauth:token-type:jwt"), &[]),
        form(
            Some(ACCESS_TOKEN_TYPE),
            &[("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token")],
        ),
        form(Some(ACCESS_TOKEN_TYPE), &[("actor_token", "x"), ("actor_token_type", ACCESS_TOKEN_TYPE)]),
    ];

    for form in cases {
        let response = app.post_form_as(TOKEN, ACTOR, &secret, &form).await;
        assert_eq!(refusal(response, 400).await, "invalid_request", "{form:?}");
    }
    let missing_subject = app
        .post_form_as(
            TOKEN,
            ACTOR,
            &secret,
            &[
                ("grant_type", GRANT),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("audience", "users-service"),
            ],
        )
        .await;
    assert_eq!(refusal(missing_subject, 400).await, "invalid_request");
}

#[tokio::test]
async fn a_client_that_does_not_authenticate_cannot_exchange() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    actor(&app).await;
    let public = auth_server::clients::Registration {
        redirect_uris: vec!["http://127.0.0.1/cb".into()],
        public: true,
        ..auth_server::clients::Registration::default()
    };
    auth_server::clients::register(&app.state.pool, "spa", &auth_server::clients::generate_secret(), &public)
        .await
        .unwrap();
    let login = app.registered_login("pia", "pia-password").await;
    let form = |client_id: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", GRANT),
            ("subject_token", access(&login)),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("audience", "users-service"),
        ];
        form.extend(client_id.map(|id| ("client_id", id)));
        form
    };

    let anonymous = app.post_form(TOKEN, &form(None)).await;
    let public_client = app.post_form(TOKEN, &form(Some("spa"))).await;
    let wrong_secret = app.post_form_as(TOKEN, ACTOR, "wrong-secret", &form(None)).await;

    assert_eq!(refusal(anonymous, 401).await, "invalid_client");
    assert_eq!(refusal(public_client, 401).await, "invalid_client");
    assert_eq!(refusal(wrong_secret, 401).await, "invalid_client");
}

#[tokio::test]
async fn a_public_client_cannot_be_registered_for_token_exchange() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let registration = auth_server::clients::Registration {
        redirect_uris: vec!["http://127.0.0.1/cb".into()],
        public: true,
        exchange_audiences: vec!["users-service".into()],
        ..auth_server::clients::Registration::default()
    };

    let refused = auth_server::clients::register(
        &app.state.pool,
        "spa",
        &auth_server::clients::generate_secret(),
        &registration,
    )
    .await
    .unwrap_err();

    assert!(refused.to_string().contains("client authentication"), "{refused}");
}

#[tokio::test]
async fn discovery_lists_the_token_exchange_grant() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;

    let metadata: Value = app.get("/.well-known/oauth-authorization-server").await.json().await.unwrap();

    assert!(metadata["grant_types_supported"].as_array().unwrap().contains(&json!(GRANT)), "{metadata}");
}
