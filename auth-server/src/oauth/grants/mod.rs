//! The grants of the token endpoint: [`GrantRequest`] has one variant per grant, and each grant
//! is a module here with its parameters and its handler.
//!
//! Adding a grant is a module and a variant (the compiler then asks for its arm in
//! [`GrantRequest::grant`]): discovery's `grant_types_supported`, the `unsupported_grant_type`
//! text, the parameters the form reads and the OpenAPI schema all follow from the enum.

pub(crate) mod authorization_code;
pub(crate) mod client_credentials;
pub(crate) mod refresh_token;
pub(crate) mod token_exchange;

use serde::Deserialize;
use utoipa::ToSchema;

use super::request::OAuthParams;
use super::{OAuthError, TokenResponse};
use crate::clients::Client;
use crate::state::AppState;

/// A token request, by `grant_type`.
#[derive(Debug, Deserialize, ToSchema, strum::VariantNames, strum::IntoStaticStr)]
#[serde(tag = "grant_type", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum GrantRequest {
    /// Redeem an authorization code with its PKCE verifier (RFC 6749 §4.1.3, RFC 7636).
    AuthorizationCode(authorization_code::AuthorizationCodeParams),
    /// Rotate a refresh token (RFC 6749 §6).
    RefreshToken(refresh_token::RefreshTokenParams),
    /// A service token for an authenticated client (RFC 6749 §4.4).
    ClientCredentials(client_credentials::ClientCredentialsParams),
    /// A user's access token, exchanged by an authenticated client for one to call another
    /// service on the user's behalf (RFC 8693), by the URN the RFC names it with.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    #[strum(serialize = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange(token_exchange::TokenExchangeParams),
}

/// The `grant_type` values the token endpoint accepts, in the order of [`GrantRequest`].
pub fn supported() -> &'static [&'static str] {
    <GrantRequest as strum::VariantNames>::VARIANTS
}

impl GrantRequest {
    /// Its `grant_type`.
    pub fn grant_type(&self) -> &'static str {
        self.into()
    }

    /// Runs the grant for `client` (authenticated, when it presented credentials) or
    /// `public_client` (a registered public client that named itself by `client_id`).
    /// `dpop_key` is the thumbprint of the key of a valid DPoP proof sent with the request:
    /// every grant then binds its access token to that key (`token_type: DPoP`). A client
    /// registered with `--dpop` must send one.
    pub(crate) async fn grant(
        self,
        state: &AppState,
        client: Option<Client>,
        public_client: Option<Client>,
        dpop_key: Option<String>,
    ) -> Result<TokenResponse, OAuthError> {
        let named = client.as_ref().or(public_client.as_ref());
        if dpop_key.is_none() && named.is_some_and(|client| client.dpop_required) {
            return Err(OAuthError::InvalidDpopProof("this client must send a DPoP proof".into()));
        }
        match self {
            Self::AuthorizationCode(params) => {
                authorization_code::grant(state, client.or(public_client), params, dpop_key).await
            }
            Self::RefreshToken(params) => {
                refresh_token::grant(state, client.or(public_client), params, dpop_key).await
            }
            // A public client has no secret to prove it is the service it claims to be.
            Self::ClientCredentials(params) => {
                client_credentials::grant(state, client, params, dpop_key).await
            }
            // Acting for a user takes a client that proves who it is (RFC 8693 §2.1).
            Self::TokenExchange(params) => token_exchange::grant(state, client, params, dpop_key).await,
        }
    }
}

impl OAuthParams for GrantRequest {
    /// A missing or repeated `grant_type` is `invalid_request`; one that is not a variant is
    /// `unsupported_grant_type` (`password` among them: RFC 9700 §2.4).
    fn precheck(pairs: &[(String, String)]) -> Result<(), OAuthError> {
        let mut grant_types = pairs.iter().filter(|(name, _)| name == "grant_type").map(|(_, value)| value);
        match (grant_types.next(), grant_types.next()) {
            (None, _) => Err(OAuthError::InvalidRequest("missing grant_type".into())),
            (Some(_), Some(_)) => Err(OAuthError::InvalidRequest("parameter grant_type repeated".into())),
            (Some(grant_type), None) if !supported().contains(&grant_type.as_str()) => {
                Err(OAuthError::UnsupportedGrantType)
            }
            (Some(grant_type), None) if grant_type == token_exchange::GRANT_TYPE => {
                token_exchange::precheck(pairs)
            }
            (Some(_), None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(form: &[(&str, &str)]) -> Vec<(String, String)> {
        form.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn every_supported_name_deserializes_to_the_variant_of_that_name() {
        // serde (the form) and strum (the names) both derive the names from the variants; this
        // holds them to the same spelling. Each variant's parameters are filled with "x".
        let fields = [
            "refresh_token",
            "scope",
            "audience",
            "code",
            "redirect_uri",
            "code_verifier",
            "subject_token",
            "subject_token_type",
        ];
        for name in supported() {
            let mut form = vec![("grant_type", *name)];
            form.extend(fields.iter().map(|field| (*field, "x")));
            let parsed: GrantRequest =
                serde_urlencoded::from_str(&serde_urlencoded::to_string(&form).unwrap())
                    .unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(parsed.grant_type(), *name);
        }
        assert_eq!(
            supported(),
            ["authorization_code", "refresh_token", "client_credentials", token_exchange::GRANT_TYPE]
        );
    }

    #[test]
    fn grant_types_are_checked_before_the_form_is_read() {
        assert!(GrantRequest::precheck(&pairs(&[("grant_type", "refresh_token")])).is_ok());
        assert!(matches!(
            GrantRequest::precheck(&pairs(&[("grant_type", "password")])),
            Err(OAuthError::UnsupportedGrantType)
        ));
        assert!(matches!(GrantRequest::precheck(&pairs(&[])), Err(OAuthError::InvalidRequest(_))));
        assert!(matches!(
            GrantRequest::precheck(&pairs(&[
                ("grant_type", "refresh_token"),
                ("grant_type", "refresh_token")
            ])),
            Err(OAuthError::InvalidRequest(_))
        ));
    }
}
