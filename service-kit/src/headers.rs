//! Security headers on every response of every binary (OWASP's REST Security and HTTP Headers
//! cheat sheets), each set only if the handler did not set its own, so a page with needs of its
//! own (the auth server's login page, say) states them itself.
//!
//! - `X-Content-Type-Options: nosniff`: a browser never guesses a type other than the one sent.
//! - `Referrer-Policy: no-referrer`, the strictest choice: nothing here needs the referrer, and
//!   our URLs can carry what must not leak to another site (authorization codes, `state`).
//! - `Content-Security-Policy` and `X-Frame-Options: DENY`: JSON needs no resources at all and no
//!   response may be framed (clickjacking). Swagger UI at `/docs` gets [`DOCS_POLICY`].
//! - `Strict-Transport-Security` only when the binary's public URL is https (RFC 6797 §7.2: not
//!   over plain HTTP; browsers ignore it there anyway). Behind a TLS-terminating proxy the
//!   binary sees plain HTTP but its users see https, so the public URL decides, not the request.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;

/// The policy of every response that sets none: nothing may load, nothing may frame it.
pub const DEFAULT_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// The policy of Swagger UI (`/docs`), exactly what the vendored files need: they are scripts
/// and style sheets of its own (`'self'`; its `index.html` and `oauth2-redirect.html` have no
/// inline script or style, which a test checks on every build); its style sheet draws icons
/// from `data:` images; it fetches `/openapi.json` and sends "Try it out" requests to the same
/// origin. Its React components also render `style` attributes (the syntax highlighting of
/// "Try it out" and its curl command), which a real browser showed blocked under
/// `style-src 'self'`: hence `'unsafe-inline'` for styles only, never for scripts, on a page
/// that shows nothing but our own OpenAPI document and the answers of our own API.
/// Its validator badge (an image from outside) is switched off and would be blocked here.
pub const DOCS_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// A year: browsers then keep using https for the public host (no `includeSubDomains`: other
/// hosts of the domain are not ours to decide for).
const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Whether a public URL is served over TLS, so that Strict-Transport-Security applies.
pub(crate) fn is_https(public_url: &str) -> bool {
    public_url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// Adds the security headers to every response of `router` that lacks them.
pub(crate) fn apply(router: Router, strict_transport_security: bool) -> Router {
    router.layer(axum::middleware::map_response(move |mut response: Response| async move {
        let headers = response.headers_mut();
        let mut set = |name: HeaderName, value: &'static str| {
            headers.entry(name).or_insert(HeaderValue::from_static(value));
        };
        set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        set(header::REFERRER_POLICY, "no-referrer");
        set(header::CONTENT_SECURITY_POLICY, DEFAULT_POLICY);
        set(header::X_FRAME_OPTIONS, "DENY");
        if strict_transport_security {
            set(header::STRICT_TRANSPORT_SECURITY, STRICT_TRANSPORT_SECURITY);
        }
        response
    }))
}

/// Gives the pages of `docs` (Swagger UI) their content security policy. Only documents obey
/// one, so its scripts, style sheets and the OpenAPI document keep the default.
pub(crate) fn docs_policy(docs: Router, issuer: Option<&str>) -> Router {
    // Swagger UI's "Authorize" posts the code to the issuer's token endpoint.
    let policy = match issuer.and_then(origin_of) {
        Some(origin) => DOCS_POLICY.replace("connect-src 'self'", &format!("connect-src 'self' {origin}")),
        None => DOCS_POLICY.to_owned(),
    };
    let policy = HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(DOCS_POLICY));
    docs.layer(axum::middleware::map_response(move |mut response: Response| {
        let policy = policy.clone();
        async move {
            let is_page = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|media_type| media_type.starts_with("text/html"));
            if is_page {
                response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, policy);
            }
            response
        }
    }))
}

/// `scheme://host[:port]` of a URL, as a CSP source.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let valid = !authority.is_empty()
        && authority.bytes().all(|byte| byte.is_ascii_alphanumeric() || b".-:[]".contains(&byte));
    valid.then(|| format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_an_https_public_url_is_https() {
        assert!(super::is_https("https://auth.example"));
        assert!(super::is_https("HTTPS://auth.example"));
        assert!(!super::is_https("http://auth.example"));
        assert!(!super::is_https("http://https.example"));
        assert!(!super::is_https(""));
    }
}
