//! [`OAuthRequest`]: the one extractor of the OAuth endpoints. It reads the form body into the
//! endpoint's parameter type and authenticates the client that presented credentials.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use super::OAuthError;
use super::client_auth::{self, Presented};
use crate::clients::Client;
use crate::state::AppState;

/// The form of an OAuth endpoint: its own parameters and, for `client_secret_post`, the client's
/// credentials. This is both what the body is parsed into and what the OpenAPI document shows.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OAuthForm<T> {
    /// The endpoint's parameters.
    #[serde(flatten)]
    pub params: T,
    /// Client authentication in the form.
    #[serde(flatten)]
    pub credentials: FormCredentials,
}

/// Client authentication in the form (`client_secret_post`) instead of HTTP Basic; never both.
#[derive(Deserialize, ToSchema)]
pub struct FormCredentials {
    /// The client's id.
    pub client_id: Option<String>,
    /// The client's secret.
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<SecretString>,
}

impl std::fmt::Debug for FormCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("FormCredentials").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// The parameters of one OAuth endpoint.
pub trait OAuthParams: DeserializeOwned + Send {
    /// Checks made before the form is deserialized, for errors whose OAuth code is not
    /// `invalid_request` (an unknown grant type is `unsupported_grant_type`).
    fn precheck(_pairs: &[(String, String)]) -> Result<(), OAuthError> {
        Ok(())
    }
}

/// A parsed OAuth request.
#[derive(Debug)]
pub struct OAuthRequest<T> {
    /// The endpoint's parameters.
    pub params: T,
    /// The client, when it presented credentials and they were right. Wrong credentials never
    /// get this far: they are `invalid_client`.
    pub client: Option<Client>,
    /// A registered public client that sent its `client_id` without a secret
    /// (`token_endpoint_auth_method=none`). It proves nothing, so only the grants meant for
    /// public clients look at it.
    pub public_client: Option<Client>,
}

impl<T> OAuthRequest<T> {
    /// The client, which this endpoint requires to authenticate.
    pub fn require_client(&self) -> Result<&Client, OAuthError> {
        self.client.as_ref().ok_or(OAuthError::InvalidClient { basic: false })
    }
}

impl<T: OAuthParams> FromRequest<AppState> for OAuthRequest<T> {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        require_form_content_type(&headers)?;
        let body = match Bytes::from_request(request, state).await {
            Ok(body) => body,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(OAuthError::BodyTooLarge);
            }
            Err(rejection) => return Err(OAuthError::InvalidRequest(rejection.body_text())),
        };
        let pairs = form_pairs(&body)?;
        T::precheck(&pairs)?;
        let form: OAuthForm<T> = deserialize(&pairs)?;
        let named = form.credentials.client_id.clone();
        let presented = client_auth::presented(&headers, form.credentials)?;
        let (client, public_client) = match (presented, named) {
            (Some(presented), _) => (Some(authenticate(state, presented).await?), None),
            (None, Some(client_id)) => (None, identify_public(state, &client_id).await?),
            (None, None) => (None, None),
        };
        Ok(Self { params: form.params, client, public_client })
    }
}

fn require_form_content_type(headers: &HeaderMap) -> Result<(), OAuthError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
    let is_form = content_type.is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    });
    if is_form {
        Ok(())
    } else {
        Err(OAuthError::InvalidRequest("content type must be application/x-www-form-urlencoded".into()))
    }
}

/// The name/value pairs of a form body, without those sent without a value: "parameters sent
/// without a value MUST be treated as if they were omitted" (RFC 6749 §3.1).
fn form_pairs(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| OAuthError::InvalidRequest("malformed form body".into()))?;
    Ok(pairs.into_iter().filter(|(_, value)| !value.is_empty()).collect())
}

/// Deserializes the pairs. The parameter types say which names they read: those must not repeat
/// (RFC 6749 §3.2), and every other name is ignored, repeated or not (§3.1).
fn deserialize<T: DeserializeOwned>(pairs: &[(String, String)]) -> Result<T, OAuthError> {
    let encoded = serde_urlencoded::to_string(pairs)
        .map_err(|_| OAuthError::InvalidRequest("malformed form body".into()))?;
    serde_urlencoded::from_str(&encoded).map_err(|error| OAuthError::InvalidRequest(describe(&error)))
}

/// serde's "missing field `x`" and "duplicate field `x`", in the words of RFC 6749.
fn describe(error: &serde_urlencoded::de::Error) -> String {
    let message = error.to_string();
    let field = |prefix: &str| {
        message.strip_prefix(prefix).and_then(|rest| rest.strip_suffix('`')).map(str::to_owned)
    };
    if let Some(name) = field("missing field `") {
        format!("missing {name}")
    } else if let Some(name) = field("duplicate field `") {
        format!("parameter {name} repeated")
    } else {
        message
    }
}

/// A `client_id` without a secret: a registered public client, or the first-party client of
/// `/v1/auth/login` (which has no row). Any other id is a confidential client that did not
/// authenticate: `invalid_client`.
async fn identify_public(state: &AppState, client_id: &str) -> Result<Option<Client>, OAuthError> {
    if client_id == super::FIRST_PARTY_CLIENT {
        return Ok(None);
    }
    match crate::clients::find_public(&state.pool, client_id).await? {
        Some(client) => Ok(Some(client)),
        None => {
            tracing::info!(client_id, "client_id without a secret is not a public client");
            Err(OAuthError::InvalidClient { basic: false })
        }
    }
}

async fn authenticate(state: &AppState, presented: Presented) -> Result<Client, OAuthError> {
    match crate::clients::authenticate(&state.pool, &presented.client_id, presented.secret()).await? {
        Some(client) => Ok(client),
        None => {
            tracing::info!(client_id = %presented.client_id, "client authentication failed");
            Err(OAuthError::InvalidClient { basic: presented.basic })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Probe {
        token: String,
        hint: Option<String>,
    }

    #[test]
    fn empty_values_count_as_absent() {
        let pairs = form_pairs(b"token=abc&hint=").unwrap();
        let probe: Probe = deserialize(&pairs).unwrap();
        assert_eq!((probe.token.as_str(), probe.hint), ("abc", None));
    }

    #[test]
    fn a_known_parameter_must_not_repeat_and_unknown_ones_may() {
        let repeated = deserialize::<Probe>(&form_pairs(b"token=a&token=b").unwrap()).unwrap_err();
        assert!(
            matches!(repeated, OAuthError::InvalidRequest(detail) if detail == "parameter token repeated")
        );
        let probe: Probe = deserialize(&form_pairs(b"token=a&other=1&other=2").unwrap()).unwrap();
        assert_eq!(probe.token, "a");
    }

    #[test]
    fn a_missing_required_parameter_is_named() {
        let missing = deserialize::<Probe>(&form_pairs(b"hint=x").unwrap()).unwrap_err();
        assert!(matches!(missing, OAuthError::InvalidRequest(detail) if detail == "missing token"));
    }
}
