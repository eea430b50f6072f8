//! RFC 7662, OAuth 2.0 token introspection, at the real auth server: the endpoint requires
//! client authentication (§2.1), and it tells a token's state only to those entitled to it
//! (§4, "the authorization server MAY respond differently to different protected resources
//! making the same request"; DESIGN.md's rule): the token's own client, a client its `aud`
//! names, or one registered with `--introspect`. Everyone else gets `{"active": false}`, the
//! answer for a token that does not exist (§2.2), so nothing about it leaks. Deleting a client
//! makes its live tokens inactive everywhere (RFC 7009 §2.1's spirit: a dead client's grants
//! die with it).

use clap::Parser as _;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use shared_auth::VerifyError;
use testkit::TestDatabase;

use super::harness::{AuthApp, Expect, Outcome};

/// Registers `client_id` (with `--introspect` when `introspect_any`); returns its secret.
async fn register(
    auth: &AuthApp,
    client_id: &str,
    scopes: &[&str],
    audiences: &[&str],
    introspect_any: bool,
) -> String {
    let secret = auth_server::clients::generate_secret();
    let registration = auth_server::clients::Registration {
        scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
        audiences: audiences.iter().map(|audience| (*audience).to_owned()).collect(),
        introspect_any,
        ..auth_server::clients::Registration::default()
    };
    auth_server::clients::register(&auth.state.pool, client_id, &secret, &registration).await.unwrap();
    secret.expose_secret().to_owned()
}

/// A client-credentials access token of `client_id`.
async fn client_token(auth: &AuthApp, client_id: &str, secret: &str) -> String {
    let response = auth
        .http
        .post(format!("{}/oauth2/token", auth.url))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "client_credentials for {client_id}");
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// `POST /oauth2/introspect` as `client_id` (HTTP Basic); returns status and body.
async fn introspect(auth: &AuthApp, client_id: &str, secret: &str, token: &str) -> (u16, Value) {
    let response = auth
        .http
        .post(format!("{}/oauth2/introspect", auth.url))
        .basic_auth(client_id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// RFC 7662 §4 and DESIGN.md's rule, as a table over three kinds of token (a service token
/// issued to `reports` for users-service; a user's access token, for both services; a user's
/// refresh token, which has no audience) and five callers (the token's client, each resource
/// server's client, an `--introspect` gateway, an unrelated client). An entitled caller gets
/// `active: true` with the token's `client_id`; any other gets exactly `{"active": false}`, no
/// member more. Without client authentication, or with a wrong secret, the answer is 401
/// `invalid_client` (§2.1).
#[tokio::test]
async fn only_the_tokens_client_its_audience_or_an_introspect_client_learns_that_it_is_active() {
    let auth = AuthApp::start().await;
    let mut secrets = std::collections::HashMap::new();
    for (client_id, audiences, introspect_any) in [
        ("reports", &["users-service"][..], false),
        ("users-service", &["orders-service"][..], false),
        ("orders-service", &["users-service"][..], false),
        ("billing", &["users-service"][..], false),
        ("gateway", &["users-service"][..], true),
    ] {
        let secret = register(&auth, client_id, &["users:read"], audiences, introspect_any).await;
        secrets.insert(client_id, secret);
    }
    let service_token = client_token(&auth, "reports", &secrets["reports"]).await;
    let login = auth.registered_login("introspected-user", "introspected-password").await;
    let access_token = login["access_token"].as_str().unwrap().to_owned();
    let refresh_token = login["refresh_token"].as_str().unwrap().to_owned();

    let active = |client: &'static str| Some(client);
    let cases = [
        ("service token", &service_token, "reports", active("reports")),
        ("service token", &service_token, "users-service", active("reports")),
        ("service token", &service_token, "gateway", active("reports")),
        ("service token", &service_token, "orders-service", None),
        ("service token", &service_token, "billing", None),
        ("user access token", &access_token, "users-service", active("platform")),
        ("user access token", &access_token, "orders-service", active("platform")),
        ("user access token", &access_token, "gateway", active("platform")),
        ("user access token", &access_token, "reports", None),
        ("user access token", &access_token, "billing", None),
        ("refresh token", &refresh_token, "gateway", active("platform")),
        ("refresh token", &refresh_token, "users-service", None),
        ("refresh token", &refresh_token, "orders-service", None),
        ("refresh token", &refresh_token, "reports", None),
        ("refresh token", &refresh_token, "billing", None),
    ];
    let mut failures = Vec::new();
    for (kind, token, caller, expected) in &cases {
        let (status, body) = introspect(&auth, caller, &secrets[caller], token).await;
        let as_required = match expected {
            Some(client) => status == 200 && body["active"] == true && body["client_id"] == *client,
            None => status == 200 && body == json!({"active": false}),
        };
        if !as_required {
            failures.push(format!(
                "  - {kind} introspected by {caller}: expected {expected:?}, got {status} {body}"
            ));
        }
    }
    assert!(failures.is_empty(), "[RFC 7662 §4] {} cases failed:\n{}", failures.len(), failures.join("\n"));

    let anonymous = auth.post_form("/oauth2/introspect", &[("token", &service_token)]).await;
    assert_eq!(anonymous.status(), 401, "no client authentication");
    let anonymous: Value = anonymous.json().await.unwrap();
    assert_eq!(anonymous["error"], "invalid_client");
    let (status, body) = introspect(&auth, "gateway", "not-the-gateway-secret", &service_token).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "a wrong secret: {body}");
    println!("[RFC 7662 §2.1, §4: introspection privacy] {} cases: all as required", cases.len() + 2);
}

/// RFC 7662 §2.2 ("active ... the token ... has not been revoked") after `auth-server clients
/// delete X`: X's live service token is inactive even to an `--introspect` client, the signed
/// revocation list carries a subject cut-off for X covering the token's `iat`, and a resource
/// server that polls the list refuses the token (401 `invalid_token`, revoked) where it
/// accepted it before. X's secret no longer gets a token.
#[tokio::test]
async fn deleting_a_client_makes_its_live_tokens_inactive_and_lists_it_as_cut_off() {
    let auth = AuthApp::start().await;
    let reports = register(&auth, "reports", &["users:read"], &["users-service"], false).await;
    let gateway = register(&auth, "gateway", &[], &["users-service"], true).await;
    let token = client_token(&auth, "reports", &reports).await;
    let database = TestDatabase::sqlite();
    let users = testkit::start_resource_service(
        &users_service::SERVICE,
        users_service::api,
        &auth.url,
        &database,
        |_| {},
    )
    .await;
    users.verifier.revocations().poll().await.unwrap();
    let read_profile = || async {
        let response = auth
            .http
            .get(format!("{}/v1/users/some-user", users.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        Outcome::read(response).await
    };
    assert_eq!(introspect(&auth, "gateway", &gateway, &token).await.1["active"], true, "before");
    assert_eq!(read_profile().await.status, 404, "before: accepted (no such profile)");

    let command = auth_server::config::Cli::parse_from(["auth-server", "clients", "delete", "reports"]);
    auth_server::cli::run_on(&auth.state, command.command.unwrap()).await.unwrap();
    users.verifier.revocations().poll().await.unwrap();

    assert_eq!(introspect(&auth, "gateway", &gateway, &token).await, (200, json!({"active": false})));
    let list =
        auth.http.get(format!("{}/v1/revocations", auth.url)).send().await.unwrap().text().await.unwrap();
    let list: shared_auth::revocation::RevocationList = serde_json::from_value(payload(&list)).unwrap();
    let iat = payload(&token)["iat"].as_i64().unwrap();
    let cutoff = list.subjects.iter().find(|cutoff| cutoff.id == "reports");
    assert!(
        cutoff.is_some_and(|cutoff| cutoff.not_before > iat),
        "no cut-off covering iat {iat}: {:?}",
        list.subjects
    );
    let after = read_profile().await;
    assert_eq!(Expect::Rejected(VerifyError::Revoked).mismatch(&after), None, "at users-service");
    let again = auth
        .http
        .post(format!("{}/oauth2/token", auth.url))
        .basic_auth("reports", Some(&reports))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401, "the deleted client's secret");
    println!("[RFC 7662 §2.2: a deleted client's tokens] 4 cases: all as required");
}

/// The payload of a compact JWS, unverified (the server's own output, read back).
fn payload(compact: &str) -> Value {
    use base64::Engine as _;
    let part = compact.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
