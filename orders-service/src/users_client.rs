//! The call to users-service for a customer's display name, made on the customer's behalf: the
//! customer's access token is exchanged (RFC 8693) for one meant for users-service, which
//! authorises it as the customer reading their own profile. orders-service needs no right of
//! its own to read anyone's profile. Best effort: any failure yields `None` and the order is
//! created.

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use shared_auth::fetch::{HttpClientError, bounded_client};
use shared_auth::{ServiceTokenClient, ServiceTokenSettings};

/// The audience users-service verifies (its `AUTH_AUDIENCE`): what the customer's token is
/// exchanged for, and what orders-service's client must be registered to obtain
/// (`--exchange-audience users-service`).
pub const USERS_SERVICE_AUDIENCE: &str = "users-service";

/// Fetches display names from users-service.
#[derive(Debug, Clone)]
pub struct UsersClient {
    http: reqwest::Client,
    base_url: String,
    tokens: Option<ServiceTokenClient>,
}

#[derive(Deserialize)]
struct Profile {
    display_name: String,
}

impl UsersClient {
    /// A client for `base_url`, exchanging tokens as `client_id` when a secret is configured.
    pub fn new(
        base_url: &str,
        issuer: &str,
        client_id: &str,
        client_secret: Option<SecretString>,
        timeout: Duration,
    ) -> Result<Self, HttpClientError> {
        let tokens = client_secret
            .map(|client_secret| {
                ServiceTokenClient::new(ServiceTokenSettings {
                    issuer: issuer.to_owned(),
                    client_id: client_id.to_owned(),
                    client_secret,
                    // The client-credentials token is not used (every call here is made for a
                    // user); an exchanged token's scope is bounded by the client's registration.
                    scope: None,
                    timeout,
                })
            })
            .transpose()?;
        let http = bounded_client(timeout)?;
        Ok(Self { http, base_url: base_url.trim_end_matches('/').to_owned(), tokens })
    }

    /// The display name of user `id`, read with the user's own access token `user_token`
    /// exchanged for users-service, or `None` if it cannot be had right now. The exchanged
    /// token is cached per user token, so while the auth server is down a customer who
    /// ordered before still gets their name.
    // Inside the handler's span, so only at debug. `skip_all`: `self` holds the token client
    // (and with it the client secret), and `user_token` is a credential.
    #[tracing::instrument(level = "debug", name = "fetch_display_name", skip_all, fields(user_id = %id))]
    pub async fn display_name(&self, user_token: &str, id: &str) -> Option<String> {
        let tokens = self.tokens.as_ref()?;
        let token = match tokens.exchange(user_token, USERS_SERVICE_AUDIENCE).await {
            Ok(token) => token,
            Err(error) => {
                tracing::warn!(%error, "no token for users-service; creating the order without a customer name");
                return None;
            }
        };
        let url = format!("{}/v1/users/{id}", self.base_url);
        match self.http.get(url).bearer_auth(token.expose_secret()).send().await {
            Ok(response) if response.status().is_success() => {
                response.json::<Profile>().await.ok().map(|profile| profile.display_name)
            }
            Ok(response) => {
                tracing::warn!(status = %response.status(), "users-service refused the profile lookup");
                None
            }
            Err(error) => {
                tracing::warn!(error = %error.without_url(), "users-service unreachable");
                None
            }
        }
    }
}
