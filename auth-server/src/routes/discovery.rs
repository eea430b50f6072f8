//! Discovery: RFC 8414 metadata (also served as `openid-configuration`) and the JWKS.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use service_kit::problem::Problem;
use shared_auth::jws::JwkSet;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(oauth_metadata))
        .routes(routes!(openid_configuration))
        .routes(routes!(jwks))
}

/// Authorization server metadata (RFC 8414), listing only what this server implements.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServerMetadata {
    /// The issuer identifier; equals the `iss` of every token.
    pub issuer: String,
    /// Authorization endpoint: the browser login (code flow with PKCE).
    pub authorization_endpoint: String,
    /// OAuth 2.0 token endpoint.
    pub token_endpoint: String,
    /// OpenID Connect userinfo endpoint.
    pub userinfo_endpoint: String,
    /// OpenID Connect RP-Initiated Logout endpoint.
    pub end_session_endpoint: String,
    /// Public keys.
    pub jwks_uri: String,
    /// RFC 7009 revocation endpoint.
    pub revocation_endpoint: String,
    /// RFC 7662 introspection endpoint.
    pub introspection_endpoint: String,
    /// Signed list of revoked sessions and tokens, for resource servers (platform extension).
    pub revocation_list_uri: String,
    /// Grants the token endpoint accepts.
    pub grant_types_supported: Vec<String>,
    /// `code` only.
    pub response_types_supported: Vec<String>,
    /// `query` only.
    pub response_modes_supported: Vec<String>,
    /// PKCE methods: `S256` only (`plain` is refused).
    pub code_challenge_methods_supported: Vec<String>,
    /// id_token algorithms: EdDSA (default) and RS256 (per client).
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// `public`: every client sees the same `sub`.
    pub subject_types_supported: Vec<String>,
    /// Scopes a client may ask for (`openid`, `profile` and the user scopes).
    pub scopes_supported: Vec<String>,
    /// Claims of id_tokens and userinfo.
    pub claims_supported: Vec<String>,
    /// Authorization responses carry `iss` (RFC 9207).
    pub authorization_response_iss_parameter_supported: bool,
    /// DPoP proof algorithms accepted at the token endpoint (RFC 9449 §5.1): ES256 and EdDSA.
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// Request objects are refused (`request_not_supported`).
    pub request_parameter_supported: bool,
    /// Request objects by reference are refused; absent would mean `true` (OIDC Discovery §3).
    pub request_uri_parameter_supported: bool,
    /// Client authentication at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Client authentication at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// Client authentication at the introspection endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// Access-token signature algorithm.
    pub access_token_signing_alg_values_supported: Vec<String>,
    /// Human documentation (Swagger UI).
    pub service_documentation: String,
}

impl ServerMetadata {
    fn for_state(state: &AppState) -> Result<Self, ApiError> {
        let issuer = state.tokens.issuer().to_owned();
        let url = |path: &str| format!("{issuer}{path}");
        let client_auth = vec!["client_secret_basic".to_owned(), "client_secret_post".to_owned()];
        let strings = |values: &[&str]| values.iter().map(|&value| value.to_owned()).collect::<Vec<_>>();
        let mut scopes = strings(&["openid", "profile"]);
        scopes.extend(state.config.user_scope.split_whitespace().map(str::to_owned));
        let algorithm = state.tokens.keyring().signing_key()?.key.algorithm().to_string();
        Ok(Self {
            authorization_endpoint: url("/oauth2/authorize"),
            token_endpoint: url("/oauth2/token"),
            userinfo_endpoint: url("/oauth2/userinfo"),
            end_session_endpoint: url("/oauth2/logout"),
            jwks_uri: url("/.well-known/jwks.json"),
            revocation_endpoint: url("/oauth2/revoke"),
            introspection_endpoint: url("/oauth2/introspect"),
            revocation_list_uri: url("/v1/revocations"),
            grant_types_supported: crate::oauth::grants::supported()
                .iter()
                .map(|&name| name.to_owned())
                .collect(),
            response_types_supported: strings(&["code"]),
            response_modes_supported: strings(&["query"]),
            code_challenge_methods_supported: strings(&["S256"]),
            id_token_signing_alg_values_supported: strings(&["EdDSA", "RS256"]),
            subject_types_supported: strings(&["public"]),
            scopes_supported: scopes,
            claims_supported: strings(&[
                "iss",
                "sub",
                "aud",
                "azp",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "sid",
                "at_hash",
                "preferred_username",
            ]),
            authorization_response_iss_parameter_supported: true,
            dpop_signing_alg_values_supported: shared_auth::dpop::SUPPORTED_ALGORITHMS
                .iter()
                .map(|algorithm| algorithm.as_str().to_owned())
                .collect(),
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
            token_endpoint_auth_methods_supported: [client_auth.as_slice(), &strings(&["none"])].concat(),
            revocation_endpoint_auth_methods_supported: client_auth.clone(),
            introspection_endpoint_auth_methods_supported: client_auth,
            access_token_signing_alg_values_supported: vec![algorithm],
            service_documentation: url("/docs"),
            issuer,
        })
    }
}

fn cacheable(state: &AppState, body: impl Serialize) -> Response {
    let cache_control = format!("public, max-age={}", state.config.jwks_max_age_secs);
    ([(header::CACHE_CONTROL, cache_control)], axum::Json(body)).into_response()
}

/// Authorization server metadata (RFC 8414).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses(
        (status = 200, description = "Metadata; cacheable", body = ServerMetadata),
        (status = 500, description = "Keys not loaded", body = Problem)))]
#[tracing::instrument(skip_all)]
async fn oauth_metadata(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(cacheable(&state, ServerMetadata::for_state(&state)?))
}

/// The same metadata at the OpenID Connect discovery path, for clients that only look there.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "discovery",
    responses(
        (status = 200, description = "Metadata; cacheable", body = ServerMetadata),
        (status = 500, description = "Keys not loaded", body = Problem)))]
#[tracing::instrument(skip_all)]
async fn openid_configuration(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(cacheable(&state, ServerMetadata::for_state(&state)?))
}

/// The public signing keys: every key that may have signed a live token, and the next one.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "discovery",
    responses(
        (status = 200, description = "JSON Web Key Set; cacheable", body = JwkSet),
        (status = 500, description = "Keys not loaded", body = Problem)))]
#[tracing::instrument(skip_all)]
async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(cacheable(&state, state.tokens.keyring().jwks()?))
}
