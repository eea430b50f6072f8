//! The browser side of the hosted login: the single sign-on cookie and the CSRF cookie.
//!
//! - The session cookie holds 256 random bits; the database keeps only their SHA-256
//!   (`browser_sessions`), so every replica sees the session and a leaked table opens none.
//!   A login always makes a new value: a value planted before login is never promoted
//!   (session fixation).
//! - The CSRF cookie holds another random value that every form repeats in `csrf_token`
//!   (double submit). A cross-site post carries no SameSite=Lax cookie, and another cookie jar
//!   has another value: both get 403.
//!
//! Both are HttpOnly, SameSite=Lax, Path=/, and `Secure` with the `__Host-` prefix when the
//! issuer is https. Their names derive from the issuer's host and port
//! ([`crate::config::Config::session_cookie_name`]): browsers do not isolate cookies by port.

use axum::http::{HeaderMap, HeaderValue, header};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use secrecy::ExposeSecret as _;
use subtle::ConstantTimeEq as _;

use crate::state::AppState;
use crate::store::browser_sessions::{self, BrowserSession};
use crate::store::users::{self, User};
use crate::tokens::{OpaqueToken, hash_token};

/// The cookies of one request.
#[derive(Debug)]
pub(crate) struct BrowserCookies {
    jar: CookieJar,
    session_name: String,
    secure: bool,
}

impl BrowserCookies {
    pub(crate) fn new(state: &AppState, headers: &HeaderMap) -> Self {
        Self {
            jar: CookieJar::from_headers(headers),
            session_name: state.config.session_cookie_name(),
            secure: state.config.issuer_is_https(),
        }
    }

    fn csrf_name(&self) -> String {
        format!("{}_csrf", self.session_name)
    }

    /// The CSRF token of this browser, and the `Set-Cookie` to send when it is new.
    pub(crate) fn csrf_token(&self) -> (String, Option<HeaderValue>) {
        if let Some(existing) = self.jar.get(&self.csrf_name())
            && existing.value().len() >= 43
        {
            return (existing.value().to_owned(), None);
        }
        let token = OpaqueToken::generate().plain.expose_secret().to_owned();
        let cookie = self.cookie(self.csrf_name(), token.clone(), None);
        (token, Some(cookie))
    }

    /// The value of this browser's CSRF cookie, if it has one: what a login at an upstream
    /// provider is bound to.
    pub(crate) fn csrf_cookie(&self) -> Option<&str> {
        self.jar.get(&self.csrf_name()).map(|cookie| cookie.value()).filter(|value| value.len() >= 43)
    }

    /// Whether a posted `csrf_token` is this browser's, compared in constant time.
    pub(crate) fn csrf_matches(&self, posted: Option<&str>) -> bool {
        match (self.jar.get(&self.csrf_name()), posted) {
            (Some(cookie), Some(posted)) if !posted.is_empty() => {
                bool::from(cookie.value().as_bytes().ct_eq(posted.as_bytes()))
            }
            _ => false,
        }
    }

    /// The live browser session of the cookie, with its user, unless it ended, expired or the
    /// account is disabled or gone.
    pub(crate) async fn session(&self, state: &AppState) -> anyhow::Result<Option<(BrowserSession, User)>> {
        let Some(cookie) = self.jar.get(&self.session_name) else {
            return Ok(None);
        };
        let now = state.clock.now();
        let Some(session) =
            browser_sessions::find_live(&state.pool, &hash_token(cookie.value()), now).await?
        else {
            return Ok(None);
        };
        let user = users::find_by_id(&state.pool, &session.user_id).await?;
        Ok(user.filter(|user| user.disabled_at.is_none()).map(|user| (session, user)))
    }

    /// The `sid` of the cookie's live session, if any.
    pub(crate) async fn session_sid(&self, state: &AppState) -> anyhow::Result<Option<String>> {
        Ok(self.session(state).await?.map(|(session, _)| session.sid))
    }

    /// A `Set-Cookie` for a new session value.
    pub(crate) fn session_cookie(&self, value: String, max_age_secs: i64) -> HeaderValue {
        self.cookie(self.session_name.clone(), value, Some(max_age_secs))
    }

    /// A `Set-Cookie` that deletes the session cookie.
    pub(crate) fn clear_session_cookie(&self) -> HeaderValue {
        self.cookie(self.session_name.clone(), String::new(), Some(0))
    }

    fn cookie(&self, name: String, value: String, max_age_secs: Option<i64>) -> HeaderValue {
        let mut cookie = Cookie::build((name, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.secure)
            .build();
        if let Some(seconds) = max_age_secs {
            cookie.set_max_age(cookie::time::Duration::seconds(seconds));
        }
        // A cookie built from our own ASCII name and base64url value is always a valid header.
        HeaderValue::from_str(&cookie.encoded().to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// Starts a browser session for `user` logged in now: a new random value (never one the
/// browser brought), stored hashed. Returns the session and its `Set-Cookie`.
pub(crate) async fn start_session(
    state: &AppState,
    cookies: &BrowserCookies,
    user: &User,
    connection: &mut sqlx::AnyConnection,
) -> anyhow::Result<(BrowserSession, HeaderValue)> {
    let now = state.clock.now();
    let ttl = state.config.sso_session_ttl_secs.as_i64();
    let value = OpaqueToken::generate();
    let session = BrowserSession {
        sid: uuid::Uuid::new_v4().simple().to_string(),
        user_id: user.id.clone(),
        auth_time: now,
        // At most ten years: no overflow.
        expires_at: now + ttl,
    };
    browser_sessions::create(connection, &value.hash, &session).await?;
    let cookie = cookies.session_cookie(value.plain.expose_secret().to_owned(), ttl);
    Ok((session, cookie))
}

/// `Set-Cookie` as a header name, for [`super::pages::Page::with_header`].
pub(crate) const SET_COOKIE: header::HeaderName = header::SET_COOKIE;
