//! Ending sessions and telling others about it: logout, revocation (RFC 7009), introspection
//! (RFC 7662), the signed revocation feed, and disabling a user.
use crate::common;

use clap::Parser as _;
use common::{TestApp, decode_part, lists, status_and_json};
use serde_json::{Value, json};
use shared_auth::jws::{JwkSet, VerifyingKey, split_compact};

/// A client registered to introspect every token (`--introspect`); returns its secret.
async fn introspector(app: &TestApp) -> String {
    app.create_introspecting_client("gateway").await
}

fn claim(token: &Value, name: &str) -> String {
    decode_part(token["access_token"].as_str().unwrap(), 1)[name].as_str().unwrap().to_owned()
}

testkit::on_both_backends! {
    async fn logout_ends_the_session_its_refresh_token_dies_and_its_sid_is_published(database) {
        let app = TestApp::start(database).await;
        let login = app.registered_login("anna", "anna-password").await;
        let sid = claim(&login, "sid");
        let etag_before = app.get("/v1/revocations").await.headers()["etag"].clone();

        let response = app.logout(login["access_token"].as_str().unwrap()).await;

        assert_eq!(response.status(), 204);
        let (status, error) = status_and_json(app.refresh(login["refresh_token"].as_str().unwrap()).await).await;
        assert_eq!(status, 400);
        assert_eq!(error["error"], "invalid_grant");
        let list = app.revocation_list().await;
        assert!(lists(&list.sessions, &sid), "{:?}", list.sessions);
        let exp = list.sessions.iter().find(|entry| entry.id == sid).unwrap().exp;
        let access_exp = decode_part(login["access_token"].as_str().unwrap(), 1)["exp"].as_i64().unwrap();
        assert!(exp >= access_exp, "listed until every access token of the session has expired");
        assert_ne!(app.get("/v1/revocations").await.headers()["etag"], etag_before, "the ETag follows the entries");
    }

    async fn the_revocation_list_is_a_signed_jwt_that_verifies_with_the_published_key(database) {
        let app = TestApp::start(database).await;
        let login = app.registered_login("bob", "bob-password").await;
        assert_eq!(app.logout(login["access_token"].as_str().unwrap()).await.status(), 204);

        let response = app.get("/v1/revocations").await;

        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/jwt");
        assert!(response.headers().contains_key("cache-control"));
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let compact = response.text().await.unwrap();
        let parts = split_compact(&compact).unwrap();
        assert_eq!(parts.header.typ.as_deref(), Some("revocations+jwt"));
        let kid = parts.header.kid.clone().unwrap();
        let jwks: JwkSet = serde_json::from_value(app.jwks().await).unwrap();
        let jwk = jwks.keys.iter().find(|jwk| jwk.kid.as_deref() == Some(kid.as_str())).unwrap();
        let key = VerifyingKey::from_jwk(jwk).unwrap();
        assert_eq!(parts.header.alg, key.algorithm().as_str());
        assert!(key.verify(parts.signing_input, &parts.signature), "signature does not verify");
        assert!(!key.verify(b"some other payload", &parts.signature));
        let payload: Value = serde_json::from_slice(&parts.payload).unwrap();
        assert_eq!(payload["iss"], app.url.as_str());
        assert_eq!(payload["sessions"][0]["id"], claim(&login, "sid"));

        let revalidated = app
            .client
            .get(format!("{}/v1/revocations", app.url))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(revalidated.status(), 304);
        assert_eq!(revalidated.headers()["etag"], etag.as_str());
        assert!(revalidated.bytes().await.unwrap().is_empty());
    }

    async fn revoking_a_refresh_token_ends_its_session_and_publishes_the_sid(database) {
        let app = TestApp::start(database).await;
        let secret = introspector(&app).await;
        let login = app.registered_login("carl", "carl-password").await;
        let refresh_token = login["refresh_token"].as_str().unwrap();

        let response = app
            .post_form("/oauth2/revoke", &[("token", refresh_token), ("token_type_hint", "refresh_token")])
            .await;

        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let (status, error) = status_and_json(app.refresh(refresh_token).await).await;
        assert_eq!(status, 400);
        assert_eq!(error["error"], "invalid_grant");
        assert!(lists(&app.revocation_list().await.sessions, &claim(&login, "sid")));
        let access = app.introspect("gateway", &secret, login["access_token"].as_str().unwrap()).await;
        assert_eq!(access, json!({"active": false}), "the session's access tokens die with it");
    }

    async fn revoking_an_access_token_publishes_its_jti_and_leaves_the_session(database) {
        let app = TestApp::start(database).await;
        let secret = introspector(&app).await;
        let login = app.registered_login("dina", "dina-password").await;
        let access_token = login["access_token"].as_str().unwrap();

        let response = app.post_form("/oauth2/revoke", &[("token", access_token)]).await;

        assert_eq!(response.status(), 200);
        let list = app.revocation_list().await;
        assert!(lists(&list.tokens, &claim(&login, "jti")), "{:?}", list.tokens);
        assert!(list.sessions.is_empty(), "only the one token is revoked: {:?}", list.sessions);
        assert_eq!(app.introspect("gateway", &secret, access_token).await, json!({"active": false}));
        app.refreshed(login["refresh_token"].as_str().unwrap()).await;
    }

    async fn disabling_a_user_ends_every_session_refuses_login_and_publishes_a_subject_cutoff(database) {
        let app = TestApp::start(database).await;
        let secret = introspector(&app).await;
        let first = app.registered_login("dave", "dave-password").await;
        let second = app.login("dave", "dave-password").await.json::<Value>().await.unwrap();
        let wrong_password = app.login("dave", "not-the-password").await.bytes().await.unwrap();
        let sub = claim(&first, "sub");

        let ended = auth_server::cli::disable_user(&app.state, "dave").await.unwrap();

        assert_eq!(ended, 2);
        for session in [&first, &second] {
            let (status, error) =
                status_and_json(app.refresh(session["refresh_token"].as_str().unwrap()).await).await;
            assert_eq!(status, 400);
            assert_eq!(error["error"], "invalid_grant");
            let access = app.introspect("gateway", &secret, session["access_token"].as_str().unwrap()).await;
            assert_eq!(access, json!({"active": false}));
        }
        let login = app.login("dave", "dave-password").await;
        assert_eq!(login.status(), 401);
        assert_eq!(login.bytes().await.unwrap(), wrong_password, "a disabled account looks like a wrong password");
        let list = app.revocation_list().await;
        let cutoff = list.subjects.iter().find(|subject| subject.id == sub).unwrap();
        let issued_at = decode_part(second["access_token"].as_str().unwrap(), 1)["iat"].as_i64().unwrap();
        assert!(cutoff.not_before > issued_at, "tokens issued before disabling are cut off");
        assert!(lists(&list.sessions, &claim(&first, "sid")));
        assert!(lists(&list.sessions, &claim(&second, "sid")));
    }
}

#[tokio::test]
async fn logout_without_a_token_is_401_with_a_bare_bearer_challenge() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;

    let missing = app.client.post(format!("{}/v1/auth/logout", app.url)).send().await.unwrap();
    let garbage = app.logout("not.a.token").await;

    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
    assert_eq!(garbage.status(), 401);
    let challenge = garbage.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with(r#"Bearer error="invalid_token""#), "{challenge}");
    assert!(app.revocation_list().await.sessions.is_empty());
}

#[tokio::test]
async fn logout_with_a_service_token_is_forbidden_and_revokes_nothing() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = app.create_client("reports", &["users:read"], &["users-service"]).await;
    let token = app.client_token("reports", &secret).await;

    let response = app.logout(token["access_token"].as_str().unwrap()).await;

    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    let list = app.revocation_list().await;
    assert!(list.sessions.is_empty() && list.tokens.is_empty() && list.subjects.is_empty());
}

#[tokio::test]
async fn logout_leaves_the_users_other_sessions_alone() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let laptop = app.registered_login("edna", "edna-password").await;
    let phone: Value = app.login("edna", "edna-password").await.json().await.unwrap();

    assert_eq!(app.logout(laptop["access_token"].as_str().unwrap()).await.status(), 204);

    app.refreshed(phone["refresh_token"].as_str().unwrap()).await;
    let list = app.revocation_list().await;
    assert!(lists(&list.sessions, &claim(&laptop, "sid")));
    assert!(!lists(&list.sessions, &claim(&phone, "sid")));
}

#[tokio::test]
async fn revoking_an_unknown_or_malformed_token_is_200_and_changes_nothing() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let login = app.registered_login("fred", "fred-password").await;

    let unknown = app.post_form("/oauth2/revoke", &[("token", "no-such-token")]).await;
    let malformed = app.post_form("/oauth2/revoke", &[("token", "a.b.c")]).await;
    let missing = app.post_form("/oauth2/revoke", &[("token_type_hint", "access_token")]).await;

    assert_eq!(unknown.status(), 200);
    assert_eq!(malformed.status(), 200);
    let (status, error) = status_and_json(missing).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"], "invalid_request");
    let list = app.revocation_list().await;
    assert!(list.sessions.is_empty() && list.tokens.is_empty());
    app.refreshed(login["refresh_token"].as_str().unwrap()).await;
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_token_but_can_revoke_its_own() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let owner_secret = app.create_client("reports", &["users:read"], &["users-service"]).await;
    let other_secret = app.create_introspecting_client("billing").await;
    let token = app.client_token("reports", &owner_secret).await;
    let access_token = token["access_token"].as_str().unwrap();

    let by_other =
        app.post_form_as("/oauth2/revoke", "billing", &other_secret, &[("token", access_token)]).await;
    let anonymous = app.post_form("/oauth2/revoke", &[("token", access_token)]).await;

    assert_eq!(by_other.status(), 200, "RFC 7009 does not reveal why nothing happened");
    assert_eq!(anonymous.status(), 200);
    assert_eq!(app.introspect("billing", &other_secret, access_token).await["active"], true);
    assert!(app.revocation_list().await.tokens.is_empty());

    let by_owner =
        app.post_form_as("/oauth2/revoke", "reports", &owner_secret, &[("token", access_token)]).await;

    assert_eq!(by_owner.status(), 200);
    assert_eq!(app.introspect("billing", &other_secret, access_token).await, json!({"active": false}));
    assert!(lists(&app.revocation_list().await.tokens, &claim(&token, "jti")));
}

#[tokio::test]
async fn a_confidential_client_cannot_revoke_a_users_refresh_token() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = app.create_client("reports", &["users:read"], &["users-service"]).await;
    let login = app.registered_login("gail", "gail-password").await;
    let refresh_token = login["refresh_token"].as_str().unwrap();

    let response = app.post_form_as("/oauth2/revoke", "reports", &secret, &[("token", refresh_token)]).await;

    assert_eq!(response.status(), 200);
    assert!(app.revocation_list().await.sessions.is_empty());
    app.refreshed(refresh_token).await;
}

#[tokio::test]
async fn introspection_requires_client_authentication() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    introspector(&app).await;
    let login = app.registered_login("hugo", "hugo-password").await;
    let access_token = login["access_token"].as_str().unwrap();

    let anonymous = app.post_form("/oauth2/introspect", &[("token", access_token)]).await;
    let wrong_secret =
        app.post_form_as("/oauth2/introspect", "gateway", "wrong-secret", &[("token", access_token)]).await;

    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["cache-control"], "no-store");
    assert_eq!(
        status_and_json(anonymous).await.1,
        json!({"error": "invalid_client", "error_description": "client authentication failed"})
    );
    assert_eq!(wrong_secret.status(), 401);
    assert!(wrong_secret.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic realm="));
    let body = status_and_json(wrong_secret).await.1;
    assert_eq!(body["error"], "invalid_client");
    assert!(body.get("active").is_none(), "nothing about the token leaks: {body}");
}

#[tokio::test]
async fn introspection_describes_an_active_access_token() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = introspector(&app).await;
    let login = app.registered_login("iris", "iris-password").await;
    let access_token = login["access_token"].as_str().unwrap();
    let claims = decode_part(access_token, 1);

    let response =
        app.post_form_as("/oauth2/introspect", "gateway", &secret, &[("token", access_token)]).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "access_token");
    assert_eq!(body["sub"], claims["sub"]);
    assert_eq!(body["scope"], "profile:read profile:write orders:read orders:write");
    assert_eq!(body["client_id"], "platform");
    assert_eq!(body["username"], "iris");
    assert_eq!(body["exp"], claims["exp"]);
    assert_eq!(body["jti"], claims["jti"]);
    assert_eq!(body["sid"], claims["sid"]);
    assert_eq!(body["iss"], app.url.as_str());
}

#[tokio::test]
async fn an_access_token_is_inactive_after_logout() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = introspector(&app).await;
    let login = app.registered_login("jack", "jack-password").await;
    let access_token = login["access_token"].as_str().unwrap();
    assert_eq!(app.introspect("gateway", &secret, access_token).await["active"], true);

    assert_eq!(app.logout(access_token).await.status(), 204);

    assert_eq!(app.introspect("gateway", &secret, access_token).await, json!({"active": false}));
}

#[tokio::test]
async fn garbage_unknown_and_tampered_tokens_are_simply_inactive() {
    use base64::Engine as _;
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = introspector(&app).await;
    let login = app.registered_login("kate", "kate-password").await;
    let access_token = login["access_token"].as_str().unwrap();
    let mut forged_claims = decode_part(access_token, 1);
    forged_claims["roles"] = json!(["admin"]);
    let mut parts: Vec<String> = access_token.split('.').map(str::to_owned).collect();
    parts[1] =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
    let tampered = parts.join(".");

    for token in ["garbage", "a.b.c", "unknown-opaque-refresh-token", tampered.as_str()] {
        assert_eq!(app.introspect("gateway", &secret, token).await, json!({"active": false}), "{token}");
    }
    assert_eq!(app.introspect("gateway", &secret, access_token).await["active"], true);
}

#[tokio::test]
async fn a_refresh_token_introspects_active_until_it_is_used() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = introspector(&app).await;
    let login = app.registered_login("liam", "liam-password").await;
    let refresh_token = login["refresh_token"].as_str().unwrap();

    let before = app.introspect("gateway", &secret, refresh_token).await;
    let rotated = app.refreshed(refresh_token).await;
    let after = app.introspect("gateway", &secret, refresh_token).await;

    assert_eq!(before["active"], true);
    assert_eq!(before["token_type"], "refresh_token");
    assert_eq!(before["sub"], claim(&login, "sub"));
    assert_eq!(before["sid"], claim(&login, "sid"));
    assert_eq!(before["client_id"], "platform");
    assert_eq!(before["scope"], "profile:read profile:write orders:read orders:write");
    assert!(before["exp"].as_i64().unwrap() > shared_auth::time::unix_now_i64());
    assert_eq!(after, json!({"active": false}));
    let successor = app.introspect("gateway", &secret, rotated["refresh_token"].as_str().unwrap()).await;
    assert_eq!(successor["active"], true);
}

/// The auth server's own token checks (logout, revoke, introspect) read the revocations it
/// wrote itself: a logged-out access token is no credential for a second logout, and a token
/// revoked through /oauth2/revoke is inactive at once, with no poll in between.
#[tokio::test]
async fn a_logged_out_or_revoked_access_token_is_refused_by_the_auth_server_itself() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let first = app.registered_login("rita", "rita-password").await;
    let first_token = first["access_token"].as_str().unwrap();
    assert_eq!(app.logout(first_token).await.status(), 204);

    let again = app.logout(first_token).await;

    assert_eq!(again.status(), 401);
    let challenge = again.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with(r#"Bearer error="invalid_token""#), "{challenge}");
    assert!(challenge.contains("revoked"), "{challenge}");

    let second: Value = app.login("rita", "rita-password").await.json().await.unwrap();
    let second_token = second["access_token"].as_str().unwrap().to_owned();
    let revoked = app.post_form("/oauth2/revoke", &[("token", second_token.as_str())]).await;
    assert_eq!(revoked.status(), 200);

    assert_eq!(app.logout(&second_token).await.status(), 401);
}

/// Services poll `/v1/revocations` every few seconds: the read leaves the table alone (an
/// expired entry is left out, and deleted only by the background pruning).
#[tokio::test]
async fn reading_the_revocation_list_deletes_nothing_and_leaves_out_expired_entries() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let now = shared_auth::time::unix_now_i64();
    insert_revocation(&app, "long-gone", now - 600, now - 300).await;
    insert_revocation(&app, "still-live", now, now + 300).await;
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM revocations")
            .fetch_one(&app.state.pool)
            .await
            .unwrap()
    };

    let list = app.revocation_list().await;

    assert!(lists(&list.tokens, "still-live"), "{:?}", list.tokens);
    assert!(!lists(&list.tokens, "long-gone"), "{:?}", list.tokens);
    assert_eq!(count().await, 2, "a read must not delete");
    assert_eq!(auth_server::store::revocations::prune(&app.state.pool, now).await.unwrap(), 1);
    assert_eq!(count().await, 1);
}

/// A kind the server never writes is corrupt data: skipping it would un-revoke what it
/// covers without a trace, so the list is refused (500, logged) until it is repaired.
#[tokio::test]
async fn an_unknown_revocation_kind_is_an_error_not_a_silent_skip() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let now = shared_auth::time::unix_now_i64();
    // Only raw SQL can write a kind that `RevocationKind` does not have.
    sqlx::query(
        "INSERT INTO revocations (kind, id, not_before, expires_at) VALUES ('sesion', 'typo', $1, $2)",
    )
    .bind(now)
    .bind(now + 300)
    .execute(&app.state.pool)
    .await
    .unwrap();

    let response = app.get("/v1/revocations").await;

    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
}

/// Lists an access token's `jti` as revoked from `not_before` until `expires_at`.
async fn insert_revocation(app: &TestApp, jti: &str, not_before: i64, expires_at: i64) {
    use auth_server::store::revocations::{self, Revocation, RevocationKind};
    let revocation = Revocation { kind: RevocationKind::Token, id: jti.to_owned(), not_before, expires_at };
    let mut connection = app.state.pool.acquire().await.unwrap();
    revocations::upsert(&mut connection, &revocation).await.unwrap();
}

/// DESIGN.md's introspection rule: the token's own client, a client its `aud` names, or one
/// registered with `--introspect`; everyone else learns nothing (`active: false`).
#[tokio::test]
async fn only_the_tokens_client_its_audience_or_an_introspector_learns_that_it_is_active() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let reports = app.create_client("reports", &["users:read"], &["users-service"]).await;
    // A resource server's own client: its id is in every user token's `aud`.
    let users_service = app.create_client("users-service", &[], &["orders-service"]).await;
    let outsider = app.create_client("billing", &["users:read"], &["users-service"]).await;
    let gateway = app.create_introspecting_client("gateway").await;
    let service_token =
        app.client_token("reports", &reports).await["access_token"].as_str().unwrap().to_owned();
    let login = app.registered_login("ivy", "ivy-password").await;
    let user_token = login["access_token"].as_str().unwrap();
    let refresh_token = login["refresh_token"].as_str().unwrap();

    let active = |body: Value| body["active"] == true;
    // The service token: issued to reports, for users-service.
    assert!(active(app.introspect("reports", &reports, &service_token).await), "its own client");
    assert!(active(app.introspect("users-service", &users_service, &service_token).await), "its audience");
    assert!(active(app.introspect("gateway", &gateway, &service_token).await), "--introspect");
    assert_eq!(app.introspect("billing", &outsider, &service_token).await, json!({"active": false}));
    // The user's tokens: issued to the first-party client, for users-service and orders-service.
    assert!(active(app.introspect("users-service", &users_service, user_token).await), "its audience");
    assert_eq!(app.introspect("reports", &reports, user_token).await, json!({"active": false}));
    assert_eq!(app.introspect("billing", &outsider, user_token).await, json!({"active": false}));
    // A refresh token has no audience: only an introspector may look.
    assert!(active(app.introspect("gateway", &gateway, refresh_token).await));
    assert_eq!(
        app.introspect("users-service", &users_service, refresh_token).await,
        json!({"active": false})
    );
}

/// `clients delete` revokes what the client holds: its live service tokens are listed (a
/// subject cut-off), introspection calls them inactive, and the secret no longer works.
#[tokio::test]
async fn deleting_a_client_revokes_its_live_tokens() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let secret = app.create_client("reports", &["users:read"], &["users-service"]).await;
    let gateway = introspector(&app).await;
    let token = app.client_token("reports", &secret).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.introspect("gateway", &gateway, &token).await["active"], true);

    let command = auth_server::config::Cli::parse_from(["auth-server", "clients", "delete", "reports"]);
    auth_server::cli::run_on(&app.state, command.command.unwrap()).await.unwrap();

    assert_eq!(app.introspect("gateway", &gateway, &token).await, json!({"active": false}));
    let list = app.revocation_list().await;
    assert!(list.subjects.iter().any(|cutoff| cutoff.id == "reports"), "{:?}", list.subjects);
    let again =
        app.post_form_as("/oauth2/token", "reports", &secret, &[("grant_type", "client_credentials")]).await;
    assert_eq!(again.status(), 401);
}
