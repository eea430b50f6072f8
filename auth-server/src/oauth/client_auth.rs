//! Client credentials as presented at the OAuth endpoints: HTTP Basic (`client_secret_basic`)
//! or form fields (`client_secret_post`), never both (RFC 6749 §2.3.1).

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret as _, SecretString};

use super::OAuthError;
use super::request::FormCredentials;

/// Credentials as presented.
pub(crate) struct Presented {
    pub(crate) client_id: String,
    secret: SecretString,
    /// They came by HTTP Basic (a failure then answers with a Basic challenge).
    pub(crate) basic: bool,
}

impl Presented {
    pub(crate) fn secret(&self) -> &str {
        self.secret.expose_secret()
    }
}

/// Reads the client's credentials, if any were sent.
pub(crate) fn presented(headers: &HeaderMap, form: FormCredentials) -> Result<Option<Presented>, OAuthError> {
    let basic = headers.get(header::AUTHORIZATION).map(basic_credentials).transpose()?;
    match (basic, form.client_secret) {
        (Some(_), Some(_)) => {
            Err(OAuthError::InvalidRequest("client authenticated by both Basic and form fields".into()))
        }
        (Some(basic), None) => {
            if form.client_id.is_some_and(|id| id != basic.client_id) {
                return Err(OAuthError::InvalidRequest("client_id does not match Basic credentials".into()));
            }
            Ok(Some(basic))
        }
        (None, Some(secret)) => {
            let client_id =
                form.client_id.ok_or_else(|| OAuthError::InvalidRequest("missing client_id".into()))?;
            Ok(Some(Presented { client_id, secret, basic: false }))
        }
        (None, None) => Ok(None),
    }
}

fn basic_credentials(value: &axum::http::HeaderValue) -> Result<Presented, OAuthError> {
    let refused = OAuthError::InvalidClient { basic: true };
    let value = value.to_str().map_err(|_| OAuthError::InvalidClient { basic: true })?;
    let (scheme, encoded) = value.split_once(' ').ok_or(OAuthError::InvalidClient { basic: true })?;
    // RFC 6749 §5.2: an unsupported authentication method is `invalid_client` (401), answered
    // with the scheme that is supported.
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(refused);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| OAuthError::InvalidClient { basic: true })?;
    let decoded = String::from_utf8(decoded).map_err(|_| OAuthError::InvalidClient { basic: true })?;
    let (id, secret) = decoded.split_once(':').ok_or(refused)?;
    Ok(Presented { client_id: form_decode(id), secret: SecretString::from(form_decode(secret)), basic: true })
}

/// `client_id` and `client_secret` inside Basic are form-urlencoded first (RFC 6749 §2.3.1).
fn form_decode(value: &str) -> String {
    form_urlencoded::parse(format!("v={value}").as_bytes())
        .next()
        .map(|(_, decoded)| decoded.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("a+b%3Ac"), "a b:c");
    }

    #[test]
    fn basic_and_form_secrets_together_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Basic YTpi".parse().unwrap());
        let form = FormCredentials { client_id: None, client_secret: Some(SecretString::from("b")) };
        assert!(matches!(presented(&headers, form), Err(OAuthError::InvalidRequest(_))));
    }

    #[test]
    fn another_scheme_is_an_invalid_client_with_a_basic_challenge() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        let form = FormCredentials { client_id: None, client_secret: None };
        assert!(matches!(presented(&headers, form), Err(OAuthError::InvalidClient { basic: true })));
    }
}
