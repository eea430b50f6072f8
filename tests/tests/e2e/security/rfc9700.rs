//! RFC 9700, OAuth 2.0 Security Best Current Practice, at the real auth server: no resource
//! owner password grant (§2.4), client authentication (§2.5), refresh token rotation with reuse
//! detection (§4.14.2).

use serde_json::Value;

use super::harness::AuthApp;

/// RFC 9700 §2.4: "The resource owner password credentials grant MUST NOT be used." The token
/// endpoint answers `unsupported_grant_type` (RFC 6749 §5.2) even for correct credentials and an
/// authenticated client; so it does for the other grants this server does not offer.
#[tokio::test]
async fn the_password_grant_and_other_unoffered_grants_are_unsupported() {
    let auth = AuthApp::start().await;
    assert_eq!(auth.register("ropc-user", "ropc-password").await, 201);
    let secret = auth_server::clients::generate_secret();
    auth_server::clients::create(&auth.state.pool, "legacy-app", &secret, &[], &["users-service".into()])
        .await
        .unwrap();
    let secret = secrecy::ExposeSecret::expose_secret(&secret).to_owned();
    let password_grant =
        [("grant_type", "password"), ("username", "ropc-user"), ("password", "ropc-password")];
    let mut outcomes = vec![
        ("password grant, correct credentials", auth.post_form("/oauth2/token", &password_grant).await),
        (
            "password grant by an authenticated client",
            auth.http
                .post(format!("{}/oauth2/token", auth.url))
                .basic_auth("legacy-app", Some(&secret))
                .form(&password_grant)
                .send()
                .await
                .unwrap(),
        ),
    ];
    for grant in [
        "PASSWORD",
        "implicit",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        let response = auth
            .post_form(
                "/oauth2/token",
                &[("grant_type", grant), ("username", "ropc-user"), ("password", "ropc-password")],
            )
            .await;
        outcomes.push((grant, response));
    }
    let count = outcomes.len();
    for (name, response) in outcomes {
        assert_eq!(response.status(), 400, "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unsupported_grant_type", "{name}: {body}");
        assert!(body.get("access_token").is_none(), "{name}: {body}");
    }
    println!("[RFC 9700 §2.4: no password grant] {count} cases: all as required");
}

/// RFC 9700 §4.14.2: refresh tokens of public clients are rotated, and "if a refresh token is
/// compromised and subsequently used by both the attacker and the legitimate client, one of them
/// will present an invalidated refresh token, which will inform the authorization server of the
/// breach": the reuse is `invalid_grant`, and the whole family dies: the token that replaced
/// it, and the session's access tokens (published in the revocation list).
#[tokio::test]
async fn a_reused_refresh_token_revokes_its_whole_family() {
    let auth = AuthApp::start().await;
    let login = auth.registered_login("rotating-user", "rotating-password").await;
    let first = login["refresh_token"].as_str().unwrap().to_owned();
    let sid = claims_of(login["access_token"].as_str().unwrap())["sid"].as_str().unwrap().to_owned();

    let rotated: Value = refresh(&auth, &first).await.1;
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first, "every refresh issues a new refresh token");

    let (status, body) = refresh(&auth, &first).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "the reused token: {body}");
    let (status, body) = refresh(&auth, &second).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "its successor after the reuse: {body}"
    );

    let list =
        auth.http.get(format!("{}/v1/revocations", auth.url)).send().await.unwrap().text().await.unwrap();
    let list: shared_auth::revocation::RevocationList = serde_json::from_value(claims_of(&list)).unwrap();
    assert!(list.sessions.iter().any(|entry| entry.id == sid), "the session's access tokens are revoked too");
    println!("[RFC 9700 §4.14.2: reuse detection] 4 cases: all as required");
}

/// RFC 9700 §4.14.2 under a race: two refreshes with one token at the same moment (the
/// legitimate client and a thief) get exactly one success; the other is the reuse it is.
#[tokio::test]
async fn a_refresh_token_redeemed_twice_at_once_succeeds_only_once() {
    let auth = AuthApp::start().await;
    let login = auth.registered_login("racing-user", "racing-password").await;
    let token = login["refresh_token"].as_str().unwrap();
    let (a, b) = tokio::join!(refresh(&auth, token), refresh(&auth, token));
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400], "exactly one of two concurrent redemptions succeeds: {a:?} {b:?}");
    let loser = if a.0 == 400 { &a.1 } else { &b.1 };
    assert_eq!(loser["error"], "invalid_grant");
    println!("[RFC 9700 §4.14.2: concurrent redemption] 1 case: as required");
}

/// RFC 9700 §4.14.2 ("refresh tokens ... invalidated ... when the user logs out"): after logout
/// the session's refresh token is `invalid_grant`.
#[tokio::test]
async fn logout_ends_the_refresh_token() {
    let auth = AuthApp::start().await;
    let login = auth.registered_login("leaving-user", "leaving-password").await;
    let response = auth
        .http
        .post(format!("{}/v1/auth/logout", auth.url))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, body) = refresh(&auth, login["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    println!("[RFC 9700 §4.14.2: logout] 1 case: as required");
}

/// RFC 9700 §2.5 (client authentication) with RFC 6749 §5.2: at the endpoints that
/// authenticate clients, a bearer access token in `Authorization` is not client authentication
/// but an unsupported method: 401 `invalid_client` with a `Basic` challenge, never a token.
#[tokio::test]
async fn a_bearer_token_is_not_client_authentication() {
    let auth = AuthApp::start().await;
    let login = auth.registered_login("bearer-user", "bearer-password").await;
    let access = login["access_token"].as_str().unwrap();
    let requests: [(&str, &[(&str, &str)]); 3] = [
        ("/oauth2/token", &[("grant_type", "client_credentials")]),
        ("/oauth2/introspect", &[("token", access)]),
        ("/oauth2/revoke", &[("token", access)]),
    ];
    for (path, form) in requests {
        let response = auth
            .http
            .post(format!("{}{path}", auth.url))
            .bearer_auth(access)
            .form(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Basic"), "{path}: {challenge}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{path}: {body}");
    }
    println!("[RFC 9700 §2.5, RFC 6749 §5.2: client authentication] 3 cases: all as required");
}

async fn refresh(auth: &AuthApp, token: &str) -> (u16, Value) {
    let response =
        auth.post_form("/oauth2/token", &[("grant_type", "refresh_token"), ("refresh_token", token)]).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
        .unwrap()
}
