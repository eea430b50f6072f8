//! A generic OAuth 2.0 client's walk through the platform, using only what the discovery
//! metadata advertises: metadata → client_credentials with HTTP Basic → a call to users-service.

use e2e::{Stack, StackOptions};
use serde_json::Value;

#[tokio::test]
async fn a_generic_oauth_client_gets_a_service_token_from_discovery_and_calls_users_service() {
    let stack = Stack::start(StackOptions::default()).await;
    let created = stack
        .auth_cli(&["clients", "create", "reporting", "--scope", "users:read", "--audience", "users-service"])
        .await;
    let created: Value = serde_json::from_str(&created).unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    stack.register("target", "target-password").await;
    let user = stack.login("target", "target-password").await;
    let me: Value = stack
        .get(&format!("{}/v1/users/me", stack.users_url()), user["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();

    // 1. Discovery, at the issuer the tokens name (the proxy in front of the auth server).
    let metadata: Value = stack
        .http
        .get(format!("{}/.well-known/oauth-authorization-server", stack.proxy.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(metadata["grant_types_supported"].as_array().unwrap().contains(&"client_credentials".into()));
    assert!(
        metadata["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&"client_secret_basic".into())
    );

    // 2. The token endpoint it names, with client_secret_basic.
    let token: Value = stack
        .http
        .post(metadata["token_endpoint"].as_str().unwrap())
        .basic_auth("reporting", Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "users:read")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["token_type"], "Bearer");
    assert!(token.get("refresh_token").is_none());

    // 3. The resource: users-service accepts the service token for another user's profile.
    let profile = stack
        .get(
            &format!("{}/v1/users/{}", stack.users_url(), me["id"].as_str().unwrap()),
            token["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(profile.status(), 200);
    assert_eq!(profile.json::<Value>().await.unwrap()["username"], "target");
    // ... but not for routes meant for people.
    let own = stack
        .get(&format!("{}/v1/users/me", stack.users_url()), token["access_token"].as_str().unwrap())
        .await;
    assert_eq!(own.status(), 403);
    println!("[generic OAuth client] discovery -> client_credentials (Basic) -> users-service: 200");
}
