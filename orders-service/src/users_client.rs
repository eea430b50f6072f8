//! The call to users-service for a customer's display name, with orders-service's own
//! client-credentials token. Best effort: any failure yields `None` and the order is created.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use shared_auth::fetch::{HttpClientError, bounded_client};
use shared_auth::{ServiceTokenClient, ServiceTokenSettings};

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
    /// A client for `base_url`, authenticating as `client_id` when a secret is configured.
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
                    scope: Some("users:read".into()),
                    timeout,
                })
            })
            .transpose()?;
        let http = bounded_client(timeout)?;
        Ok(Self { http, base_url: base_url.trim_end_matches('/').to_owned(), tokens })
    }

    /// The display name of user `id`, or `None` if it cannot be had right now. A user who has
    /// no profile yet has never changed their display name, which defaults to the username:
    /// `username` is returned then.
    // Inside the handler's span, so only at debug. `skip_all`: `self` holds the token client
    // (and with it the client secret); the username is not needed to find a failure.
    #[tracing::instrument(level = "debug", name = "fetch_display_name", skip_all, fields(user_id = %id))]
    pub async fn display_name(&self, id: &str, username: Option<&str>) -> Option<String> {
        let tokens = self.tokens.as_ref()?;
        let url = format!("{}/v1/users/{id}", self.base_url);
        let request = match tokens.authorize(self.http.get(url)).await {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(%error, "no service token; creating the order without a customer name");
                return None;
            }
        };
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                response.json::<Profile>().await.ok().map(|profile| profile.display_name)
            }
            Ok(response) if response.status() == reqwest::StatusCode::NOT_FOUND => {
                username.map(str::to_owned)
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
