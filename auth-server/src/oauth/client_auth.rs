//! Client authentication at the OAuth endpoints: HTTP Basic (`client_secret_basic`) or form
//! fields (`client_secret_post`), never both (RFC 6749 §2.3.1).

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{OAuthError, OAuthForm};
use crate::clients::{self, Client};
use crate::state::AppState;

/// Credentials as presented.
pub(crate) struct Presented {
    client_id: String,
    secret: String,
    basic: bool,
}

/// Reads the client's credentials, if any were sent.
pub(crate) fn presented(headers: &HeaderMap, form: &OAuthForm) -> Result<Option<Presented>, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value.to_str().map_err(|_| OAuthError::InvalidClient { basic: true })?;
            let (scheme, encoded) = value.split_once(' ').ok_or(OAuthError::InvalidClient { basic: true })?;
            // RFC 6749 §5.2: an unsupported authentication method is `invalid_client` (401),
            // answered with the scheme that is supported.
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OAuthError::InvalidClient { basic: true });
            }
            let decoded =
                STANDARD.decode(encoded.trim()).map_err(|_| OAuthError::InvalidClient { basic: true })?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| OAuthError::InvalidClient { basic: true })?;
            let (id, secret) = decoded.split_once(':').ok_or(OAuthError::InvalidClient { basic: true })?;
            Some(Presented { client_id: form_decode(id), secret: form_decode(secret), basic: true })
        }
    };
    let in_form = form.get("client_secret").is_some();
    match (basic, in_form) {
        (Some(_), true) => {
            Err(OAuthError::InvalidRequest("client authenticated by both Basic and form fields".into()))
        }
        (Some(basic), false) => {
            if form.get("client_id").is_some_and(|id| id != basic.client_id) {
                return Err(OAuthError::InvalidRequest("client_id does not match Basic credentials".into()));
            }
            Ok(Some(basic))
        }
        (None, true) => Ok(Some(Presented {
            client_id: form.require("client_id")?.to_owned(),
            secret: form.require("client_secret")?.to_owned(),
            basic: false,
        })),
        (None, false) => Ok(None),
    }
}

/// `client_id` and `client_secret` inside Basic are form-urlencoded first (RFC 6749 §2.3.1).
fn form_decode(value: &str) -> String {
    form_urlencoded::parse(format!("v={value}").as_bytes())
        .next()
        .map(|(_, decoded)| decoded.into_owned())
        .unwrap_or_default()
}

/// Authenticates the presented credentials; `Ok(None)` when none were presented.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<Option<Client>, OAuthError> {
    let Some(presented) = presented(headers, form)? else {
        return Ok(None);
    };
    match clients::authenticate(&state.pool, &presented.client_id, &presented.secret).await? {
        Some(client) => Ok(Some(client)),
        None => {
            tracing::info!(client_id = %presented.client_id, "client authentication failed");
            Err(OAuthError::InvalidClient { basic: presented.basic })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("a+b%3Ac"), "a b:c");
    }
}
