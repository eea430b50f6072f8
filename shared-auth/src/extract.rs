//! axum extractors: `Authenticated` for any valid token, [`Scoped`] and [`UserScoped`] for a
//! token that carries the scope an operation needs, and role checks that yield 403.
//!
//! Scopes follow one scheme, `<resource>:<action>`: `profile:read` and `profile:write` (your
//! own profile), `orders:read` and `orders:write` (your own orders), `users:read` (anyone's
//! profile, for services). A service names each scope once, as a type ([`scope!`](crate::scope!)), and the
//! handler's extractor enforces it.
//!
//! A DPoP-bound token comes as `Authorization: DPoP <token>` with its proof in a `DPoP` header
//! (RFC 9449 §7); the same extractors take it, so handlers do not change. A bound token sent as
//! `Bearer` is refused, a bad proof is 401 `invalid_dpop_proof`, and every 401 for a missing
//! token offers both schemes (`Bearer` and `DPoP algs="ES256 EdDSA"`).
//!
//! Responses follow RFC 6750 §3: no token, or credentials of another scheme (`Basic …`) → 401
//! with a bare `Bearer` challenge; a malformed `Bearer` header → 400 `invalid_request`; a bad token → 401 `invalid_token`; a valid
//! token without the needed scope or role → 403 `insufficient_scope`. Missing keys, or a
//! revocation list past its fail-closed age → 503, never a 401 that would send a client to log
//! in again for nothing.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::claims::AccessClaims;
use crate::dpop::{self, ProofError};
use crate::problem::{self, Problem};
use crate::verifier::{DpopRejection, Verifier, VerifyError};

/// Why a request was not authorised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header: 401 with a bare challenge.
    #[error("a bearer token is required")]
    MissingToken,
    /// Credentials of another scheme (`Basic …`): 401 with a bare challenge, which tells the
    /// client the scheme this resource takes (RFC 6750 §3, RFC 9110 §11.6.1).
    #[error("the Authorization scheme is not Bearer or DPoP")]
    UnsupportedScheme,
    /// The header is not `Bearer <token>`: 400 `invalid_request`.
    #[error("malformed Authorization header")]
    InvalidRequest,
    /// The token failed verification: 401 `invalid_token`.
    #[error("invalid token: {0}")]
    InvalidToken(VerifyError),
    /// A token sent with the DPoP scheme failed verification: 401 with a `DPoP` challenge,
    /// `invalid_token`.
    #[error("invalid DPoP-bound token: {0}")]
    InvalidBoundToken(VerifyError),
    /// The DPoP proof failed: 401 `DPoP error="invalid_dpop_proof"` (RFC 9449 §7.1).
    #[error("invalid DPoP proof: {0}")]
    InvalidProof(ProofError),
    /// Valid token without the scope needed: 403 `insufficient_scope` naming the scope.
    #[error("insufficient scope: requires {0}")]
    InsufficientScope(String),
    /// Valid token without the role needed: 403 `insufficient_scope`. Roles are not scopes, so
    /// the challenge names none (RFC 6750's `scope` attribute lists scopes the client could ask
    /// for, and no client can ask for a role).
    #[error("requires role {0}")]
    MissingRole(String),
    /// A service (client-credentials) token on an operation for people: 403.
    #[error("requires a user token")]
    NotAUser,
    /// No usable keys, or a revocation list too old to tell revoked tokens apart: 503.
    #[error("token verification unavailable")]
    Unavailable,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let algs = dpop::supported_algorithms();
        let (status, challenge, detail) = match &self {
            Self::MissingToken | Self::UnsupportedScheme => {
                (StatusCode::UNAUTHORIZED, "Bearer".to_owned(), "a bearer token is required".to_owned())
            }
            Self::InvalidRequest => (
                StatusCode::BAD_REQUEST,
                r#"Bearer error="invalid_request""#.to_owned(),
                "the Authorization header must be `Bearer <token>`".to_owned(),
            ),
            // A bound token sent as Bearer: tell the client the scheme it must use.
            Self::InvalidToken(error @ VerifyError::BoundToKey) | Self::InvalidBoundToken(error) => (
                StatusCode::UNAUTHORIZED,
                format!(r#"DPoP error="invalid_token", error_description="{error}", algs="{algs}""#),
                error.to_string(),
            ),
            Self::InvalidToken(error) => (
                StatusCode::UNAUTHORIZED,
                format!(r#"Bearer error="invalid_token", error_description="{error}""#),
                error.to_string(),
            ),
            Self::InvalidProof(error) => (
                StatusCode::UNAUTHORIZED,
                format!(r#"DPoP error="invalid_dpop_proof", error_description="{error}", algs="{algs}""#),
                error.to_string(),
            ),
            Self::InsufficientScope(needed) => (
                StatusCode::FORBIDDEN,
                format!(r#"Bearer error="insufficient_scope", scope="{needed}""#),
                format!("requires scope {needed}"),
            ),
            Self::MissingRole(role) => (
                StatusCode::FORBIDDEN,
                r#"Bearer error="insufficient_scope""#.to_owned(),
                format!("requires role {role}"),
            ),
            Self::NotAUser => (
                StatusCode::FORBIDDEN,
                r#"Bearer error="insufficient_scope""#.to_owned(),
                "requires a user token".to_owned(),
            ),
            Self::Unavailable => {
                return problem::unavailable(
                    5,
                    "token verification is not available: no current keys or revocation list",
                );
            }
        };
        let mut response = Problem::new(status).with_detail(detail).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        // Without credentials of ours, either scheme will do: offer DPoP too (RFC 9449 §7.1).
        if matches!(self, Self::MissingToken | Self::UnsupportedScheme)
            && let Ok(value) = HeaderValue::from_str(&format!(r#"DPoP algs="{algs}""#))
        {
            response.headers_mut().append(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// A request with a valid access token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<AccessClaims>);

impl std::ops::Deref for Authenticated {
    type Target = AccessClaims;
    fn deref(&self) -> &AccessClaims {
        &self.0
    }
}

impl Authenticated {
    /// 403 unless the token carries `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), AuthError> {
        if self.has_scope(scope) { Ok(()) } else { Err(AuthError::InsufficientScope(scope.into())) }
    }

    /// 403 unless the token carries `role`.
    pub fn require_role(&self, role: &str) -> Result<(), AuthError> {
        if self.has_role(role) { Ok(()) } else { Err(AuthError::MissingRole(role.into())) }
    }

    /// 403 for service (client-credentials) tokens on routes meant for people.
    pub fn require_user(&self) -> Result<(), AuthError> {
        if self.is_user() { Ok(()) } else { Err(AuthError::NotAUser) }
    }
}

/// The access token of a request and the scheme it came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// `Authorization: Bearer <token>` (RFC 6750).
    Bearer(&'a str),
    /// `Authorization: DPoP <token>` (RFC 9449 §7.1); the proof is in the `DPoP` header.
    Dpop(&'a str),
}

#[cfg(test)]
fn bearer_token(parts: &Parts) -> Result<Option<&str>, AuthError> {
    bearer_token_in(&parts.headers)
}

/// The token of `Authorization: Bearer <token>` in `headers`, with the RFC 6750 errors of the
/// extractors; `Ok(None)` when there is no header. For handlers that also take the token from
/// elsewhere (a form body, as OpenID userinfo may). `DPoP` credentials are another scheme here.
pub fn bearer_token_in(headers: &axum::http::HeaderMap) -> Result<Option<&str>, AuthError> {
    match credentials_in(headers)? {
        None => Ok(None),
        Some(Credentials::Bearer(token)) => Ok(Some(token)),
        Some(Credentials::Dpop(_)) => Err(AuthError::UnsupportedScheme),
    }
}

/// The token of `Authorization: Bearer <token>` or `Authorization: DPoP <token>` in `headers`,
/// with the RFC 6750 errors of the extractors; `Ok(None)` when there is no header.
pub fn credentials_in(headers: &axum::http::HeaderMap) -> Result<Option<Credentials<'_>>, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    // The field is not a list (RFC 9110 §5.3): with two, a proxy and this service could each
    // authorise a different one, so the request is malformed rather than ours to pick from.
    if values.next().is_some() {
        return Err(AuthError::InvalidRequest);
    }
    let value = value.to_str().map_err(|_| AuthError::InvalidRequest)?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    if !scheme.eq_ignore_ascii_case("bearer") && !dpop {
        // A well-formed scheme name (RFC 9110 §11.1, a `token`) of another scheme is
        // credentials we do not take, not a malformed request.
        let is_scheme_name = !scheme.is_empty()
            && scheme.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte));
        return Err(if is_scheme_name { AuthError::UnsupportedScheme } else { AuthError::InvalidRequest });
    }
    let token = token.trim_start_matches(' ');
    // RFC 6750 b64token characters only; anything else cannot be a JWS anyway.
    let valid_token = !token.is_empty()
        && token.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._~+/=".contains(&byte));
    if !valid_token {
        return Err(AuthError::InvalidRequest);
    }
    Ok(Some(if dpop { Credentials::Dpop(token) } else { Credentials::Bearer(token) }))
}

impl From<DpopRejection> for AuthError {
    /// The rejection of a request with the DPoP scheme: `invalid_token` or `invalid_dpop_proof`
    /// with a `DPoP` challenge, or 503 when keys, revocations or replay cache are unusable.
    fn from(rejection: DpopRejection) -> Self {
        match rejection {
            DpopRejection::Token(VerifyError::KeysUnavailable | VerifyError::RevocationsUnavailable)
            | DpopRejection::Proof(ProofError::ReplayCacheFull) => Self::Unavailable,
            DpopRejection::Token(error) => Self::InvalidBoundToken(error),
            DpopRejection::Proof(error) => Self::InvalidProof(error),
            DpopRejection::NotConfigured => Self::UnsupportedScheme,
        }
    }
}

/// Verifies `Authorization: DPoP <token>` with the request's one proof header.
pub async fn verify_dpop_request(
    verifier: &Verifier,
    token: &str,
    headers: &axum::http::HeaderMap,
    method: &str,
    path: &str,
) -> Result<Arc<AccessClaims>, AuthError> {
    let proof = dpop::proof_in(headers)
        .and_then(|proof| proof.ok_or(ProofError::Missing))
        .map_err(AuthError::InvalidProof)?;
    Ok(verifier.verify_dpop(token, proof, method, path).await?)
}

/// The answers every protected operation can give besides its own, for `#[utoipa::path]`:
/// `responses((status = 200, ...), ProtectedResponses)`. Written once, so no operation can
/// forget one and their wording cannot drift apart.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(dead_code, reason = "only the OpenAPI description of these variants is used")]
pub enum ProtectedResponses {
    /// Malformed request: the Authorization header, the body or the query (RFC 6750 §3.1
    /// `invalid_request` for the header).
    #[response(status = 400)]
    BadRequest(Problem),
    /// No token, another scheme, or an invalid token (RFC 6750 §3, `WWW-Authenticate: Bearer`).
    #[response(status = 401)]
    Unauthorized(Problem),
    /// A valid token without the scope, role or kind of caller this operation needs
    /// (`insufficient_scope`).
    #[response(status = 403)]
    Forbidden(Problem),
    /// The verification keys or the revocation list are unavailable or too old: the service
    /// fails closed.
    #[response(status = 503)]
    Unavailable(Problem),
}

async fn authenticate(parts: &Parts, verifier: &Verifier) -> Result<Option<Authenticated>, AuthError> {
    match credentials_in(&parts.headers)? {
        None => Ok(None),
        Some(Credentials::Bearer(token)) => match verifier.verify(token).await {
            Ok(claims) => Ok(Some(Authenticated(claims))),
            Err(VerifyError::KeysUnavailable | VerifyError::RevocationsUnavailable) => {
                Err(AuthError::Unavailable)
            }
            Err(error) => Err(AuthError::InvalidToken(error)),
        },
        Some(Credentials::Dpop(token)) => {
            // The proof's `htu` has no query (RFC 9449 §4.2): the path is what it names.
            let (method, path) = (parts.method.as_str(), parts.uri.path());
            verify_dpop_request(verifier, token, &parts.headers, method, path)
                .await
                .map(|claims| Some(Authenticated(claims)))
        }
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        authenticate(parts, &Verifier::from_ref(state)).await?.ok_or(AuthError::MissingToken)
    }
}

/// `Option<Authenticated>` is `None` only when no token was sent; an invalid token is still
/// rejected, so a broken token can never downgrade a caller to anonymous.
impl<S> OptionalFromRequestParts<S> for Authenticated
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Self::Rejection> {
        authenticate(parts, &Verifier::from_ref(state)).await
    }
}

/// A request with a valid *user* token: service tokens get 403.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser(pub Authenticated);

impl std::ops::Deref for AuthenticatedUser {
    type Target = AccessClaims;
    fn deref(&self) -> &AccessClaims {
        &self.0
    }
}

impl<S> FromRequestParts<S> for AuthenticatedUser
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let authenticated = <Authenticated as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        authenticated.require_user()?;
        Ok(Self(authenticated))
    }
}

/// A scope an operation needs, as a type, for [`Scoped`] and [`UserScoped`]. Declare one with
/// [`scope!`](crate::scope!).
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope, `<resource>:<action>`.
    const SCOPE: &'static str;
}

/// Declares a [`RequiredScope`] type: `shared_auth::scope!(pub OrdersWrite = "orders:write");`.
/// The operation's OpenAPI `security` should list the same string; a test can check it (see
/// the services' tests).
#[macro_export]
macro_rules! scope {
    ($(#[$meta:meta])* $vis:vis $name:ident = $scope:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;

        impl $crate::extract::RequiredScope for $name {
            const SCOPE: &'static str = $scope;
        }
    };
}

/// A request with a valid token that carries the scope `S` (else 403 `insufficient_scope`
/// naming it).
#[derive(Debug, Clone)]
pub struct Scoped<S>(pub Authenticated, std::marker::PhantomData<S>);

impl<S> std::ops::Deref for Scoped<S> {
    type Target = AccessClaims;
    fn deref(&self) -> &AccessClaims {
        &self.0
    }
}

impl<S, State> FromRequestParts<State> for Scoped<S>
where
    S: RequiredScope,
    Verifier: FromRef<State>,
    State: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let authenticated =
            <Authenticated as FromRequestParts<State>>::from_request_parts(parts, state).await?;
        authenticated.require_scope(S::SCOPE)?;
        Ok(Self(authenticated, std::marker::PhantomData))
    }
}

/// A request with a valid *user* token that carries the scope `S`: service tokens get 403, and
/// so does a user token narrowed to other scopes.
#[derive(Debug, Clone)]
pub struct UserScoped<S>(pub Authenticated, std::marker::PhantomData<S>);

impl<S> std::ops::Deref for UserScoped<S> {
    type Target = AccessClaims;
    fn deref(&self) -> &AccessClaims {
        &self.0
    }
}

impl<S, State> FromRequestParts<State> for UserScoped<S>
where
    S: RequiredScope,
    Verifier: FromRef<State>,
    State: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let AuthenticatedUser(authenticated) =
            <AuthenticatedUser as FromRequestParts<State>>::from_request_parts(parts, state).await?;
        authenticated.require_scope(S::SCOPE)?;
        Ok(Self(authenticated, std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts_with(authorization: Option<&str>) -> Parts {
        let mut builder = axum::http::Request::builder();
        if let Some(value) = authorization {
            builder = builder.header(header::AUTHORIZATION, value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_dpop_scheme_is_credentials_of_its_own() {
        let parts = parts_with(Some("DPoP abc.def.ghi"));
        assert_eq!(credentials_in(&parts.headers), Ok(Some(Credentials::Dpop("abc.def.ghi"))));
        assert_eq!(bearer_token(&parts), Err(AuthError::UnsupportedScheme));
        let parts = parts_with(Some("dpop abc"));
        assert_eq!(credentials_in(&parts.headers), Ok(Some(Credentials::Dpop("abc"))));
        assert_eq!(credentials_in(&parts_with(Some("DPoP a b")).headers), Err(AuthError::InvalidRequest));
    }

    #[test]
    fn a_missing_token_is_offered_both_schemes_and_a_bad_proof_gets_a_dpop_challenge() {
        let response = AuthError::MissingToken.into_response();
        let challenges: Vec<_> = response
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|value| value.to_str().unwrap())
            .collect();
        assert_eq!(challenges, ["Bearer", r#"DPoP algs="ES256 EdDSA""#]);
        let (status, value) = challenge(AuthError::InvalidProof(ProofError::Replayed));
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(value.unwrap().starts_with(r#"DPoP error="invalid_dpop_proof""#));
        let (status, value) = challenge(AuthError::InvalidToken(VerifyError::BoundToKey));
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(value.unwrap().starts_with(r#"DPoP error="invalid_token""#));
    }

    #[test]
    fn the_authorization_header_must_be_a_bearer_token() {
        assert_eq!(bearer_token(&parts_with(None)), Ok(None));
        assert_eq!(bearer_token(&parts_with(Some("Bearer abc.def.ghi"))), Ok(Some("abc.def.ghi")));
        assert_eq!(bearer_token(&parts_with(Some("bearer abc"))), Ok(Some("abc")));
        for bad in ["Bearer", "Bearer ", "Bearer a b", "Bearer a\"b", "Bearer=abc", "Bearer\tabc"] {
            assert_eq!(bearer_token(&parts_with(Some(bad))), Err(AuthError::InvalidRequest), "{bad}");
        }
        for other in ["Basic dXNlcjpwYXNz", "Token abc", "abc", "Digest username=\"a\""] {
            assert_eq!(bearer_token(&parts_with(Some(other))), Err(AuthError::UnsupportedScheme), "{other}");
        }
    }

    fn challenge(error: AuthError) -> (StatusCode, Option<String>) {
        let response = error.into_response();
        let value =
            response.headers().get(header::WWW_AUTHENTICATE).map(|value| value.to_str().unwrap().to_owned());
        (response.status(), value)
    }

    #[test]
    fn each_rejection_has_the_rfc_6750_status_and_challenge() {
        assert_eq!(challenge(AuthError::MissingToken), (StatusCode::UNAUTHORIZED, Some("Bearer".into())));
        assert_eq!(
            challenge(AuthError::UnsupportedScheme),
            (StatusCode::UNAUTHORIZED, Some("Bearer".into()))
        );
        let (status, value) = challenge(AuthError::InvalidToken(VerifyError::Expired));
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(value.unwrap().starts_with(r#"Bearer error="invalid_token""#));
        let (status, value) = challenge(AuthError::InvalidRequest);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(value.unwrap(), r#"Bearer error="invalid_request""#);
        let (status, value) = challenge(AuthError::InsufficientScope("users:read".into()));
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(value.unwrap(), r#"Bearer error="insufficient_scope", scope="users:read""#);
        assert_eq!(challenge(AuthError::Unavailable).0, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn a_missing_role_or_a_service_token_is_forbidden_without_a_made_up_scope() {
        for error in [AuthError::MissingRole("admin".into()), AuthError::NotAUser] {
            let (status, value) = challenge(error);
            assert_eq!(status, StatusCode::FORBIDDEN);
            assert_eq!(value.unwrap(), r#"Bearer error="insufficient_scope""#);
        }
    }
}
