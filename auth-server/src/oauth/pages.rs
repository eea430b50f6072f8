//! The auth server's HTML pages: hosted login, consent, logout confirmation, "logged out", and
//! errors. Server-rendered with maud (every interpolated value is HTML-escaped), no JavaScript,
//! styled by one inline-free stylesheet so the CSP can forbid inline script and style.
//!
//! Every page answers with [`page_headers`]: `no-store`, `X-Frame-Options: DENY`, a CSP with
//! `frame-ancestors 'none'` and `Referrer-Policy: no-referrer` (DESIGN.md "Pages").

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// The stylesheet every page links, served at [`STYLESHEET_PATH`].
pub(crate) const STYLESHEET: &str = include_str!("pages.css");
/// Where [`STYLESHEET`] is served.
pub(crate) const STYLESHEET_PATH: &str = "/oauth2/static/pages.css";

/// The stylesheet of the login, consent and logout pages.
#[utoipa::path(get, path = "/oauth2/static/pages.css", tag = "oauth2",
    responses((status = 200, description = "CSS; cacheable", content_type = "text/css", body = String)))]
pub(crate) async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        STYLESHEET,
    )
}

/// The Content-Security-Policy of every page: nothing but our own stylesheet, forms posting
/// only to this origin, and no framing (clickjacking, RFC 9700 §4.16).
const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                        frame-ancestors 'none'; base-uri 'none'";

/// [`PAGE_CSP`] for a page whose form's answer redirects to `origin` (a client's).
fn page_csp_redirecting_to(origin: &str) -> String {
    PAGE_CSP.replace("form-action 'self'", &format!("form-action 'self' {origin}"))
}

/// The headers of every HTML page.
pub(crate) fn page_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers
}

/// A rendered page with its status and the page headers.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) markup: Markup,
    pub(crate) headers: HeaderMap,
}

impl Page {
    pub(crate) fn new(status: StatusCode, markup: Markup) -> Self {
        Self { status, markup, headers: page_headers() }
    }

    /// Lets this page's form lead on to `redirect_uri`, which must be one registered for the
    /// client. Browsers apply `form-action` to the redirects that follow a submission too, so
    /// the login, consent and logout forms, whose answers redirect to the client, must list its
    /// origin; every other page keeps `form-action 'self'`.
    pub(crate) fn redirecting_to(mut self, redirect_uri: &str) -> Self {
        let origin = url::Url::parse(redirect_uri).map(|url| url.origin());
        if let Ok(origin @ url::Origin::Tuple(..)) = origin
            && let Ok(csp) = HeaderValue::from_str(&page_csp_redirecting_to(&origin.ascii_serialization()))
        {
            self.headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        self
    }

    /// Adds a header (a cookie, `Retry-After`).
    pub(crate) fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        (self.status, self.headers, self.markup.into_string()).into_response()
    }
}

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href=(STYLESHEET_PATH);
            }
            body {
                main class="card" {
                    (body)
                }
            }
        }
    }
}

/// Hidden inputs carrying a pending request back unchanged, and the CSRF token.
fn hidden(fields: &[(&'static str, String)], csrf_token: &str) -> Markup {
    html! {
        input type="hidden" name="csrf_token" value=(csrf_token);
        @for (name, value) in fields {
            input type="hidden" name=(name) value=(value);
        }
    }
}

/// What the login page shows.
#[derive(Debug)]
pub(crate) struct LoginPage<'a> {
    /// The client the user is logging in to.
    pub(crate) client_id: &'a str,
    /// The pending authorization request, posted back unchanged.
    pub(crate) fields: &'a [(&'static str, String)],
    /// The CSRF token bound to this browser.
    pub(crate) csrf_token: &'a str,
    /// Pre-filled username (`login_hint`, or what was typed).
    pub(crate) username: &'a str,
    /// An error to show above the form.
    pub(crate) error: Option<&'a str>,
    /// The upstream providers to offer ("Continue with …"), each a link of its own.
    pub(crate) providers: &'a [crate::federation::ProviderButton],
}

/// The hosted login page: one form with a password input (DESIGN.md "Pages").
pub(crate) fn login(page: &LoginPage<'_>) -> Markup {
    layout(
        "Log in",
        html! {
            h1 { "Log in" }
            p class="client" { "to continue to " strong { (page.client_id) } }
            @if let Some(error) = page.error {
                p class="error" role="alert" id="login-error" { (error) }
            }
            form method="post" action="/oauth2/login" {
                (hidden(page.fields, page.csrf_token))
                label for="username" { "Username" }
                input id="username" name="username" type="text" autocomplete="username"
                    autocapitalize="none" spellcheck="false" required value=(page.username)
                    autofocus[page.username.is_empty()];
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password"
                    required autofocus[!page.username.is_empty()];
                button type="submit" { "Log in" }
            }
            @if !page.providers.is_empty() {
                ul class="providers" {
                    @for provider in page.providers {
                        li {
                            @if let Some(href) = &provider.href {
                                a class="provider" href=(href) { "Continue with " (provider.display_name) }
                            } @else {
                                span class="provider unavailable" {
                                    "Continue with " (provider.display_name) " (unavailable)"
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The consent page: the client and the scopes it asks for, allow or deny.
pub(crate) fn consent(
    client_id: &str,
    scopes: &[&str],
    fields: &[(&'static str, String)],
    csrf_token: &str,
) -> Markup {
    layout(
        "Allow access?",
        html! {
            h1 { "Allow access?" }
            p { strong { (client_id) } " asks to:" }
            ul class="scopes" {
                @for scope in scopes {
                    li { code { (scope) } " " (describe_scope(scope)) }
                }
            }
            form method="post" action="/oauth2/consent" {
                (hidden(fields, csrf_token))
                div class="buttons" {
                    button type="submit" name="decision" value="allow" { "Allow" }
                    button type="submit" name="decision" value="deny" class="secondary" { "Deny" }
                }
            }
        },
    )
}

fn describe_scope(scope: &str) -> &'static str {
    match scope {
        "openid" => "know who you are",
        "profile" => "see your username",
        "profile:read" => "read your profile",
        "profile:write" => "change your profile",
        "orders:read" => "see your orders",
        "orders:write" => "place orders for you",
        _ => "",
    }
}

/// The logout confirmation (a logout request without a valid `id_token_hint`: a GET must not
/// log anybody out by itself).
pub(crate) fn logout_confirmation(fields: &[(&'static str, String)], csrf_token: &str) -> Markup {
    layout(
        "Log out?",
        html! {
            h1 { "Log out?" }
            p { "Do you want to log out of every application that uses this login?" }
            form method="post" action="/oauth2/logout" {
                (hidden(fields, csrf_token))
                button type="submit" { "Log out" }
            }
        },
    )
}

/// A page that moves on to `target` by itself (`<meta http-equiv="refresh">`, no script), with
/// a link for a browser that does not.
pub(crate) fn continue_to(title: &str, target: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="refresh" content={ "0;url=" (target) };
                title { (title) }
                link rel="stylesheet" href=(STYLESHEET_PATH);
            }
            body {
                main class="card" {
                    h1 { (title) }
                    p { a id="continue" href=(target) { "Continue to the application" } }
                }
            }
        }
    }
}

/// After a logout that redirects nowhere.
pub(crate) fn logged_out() -> Markup {
    layout(
        "Logged out",
        html! {
            h1 { "Logged out" }
            p { "You are logged out. You can close this window." }
        },
    )
}

/// An error the browser's user must see (never a redirect: the redirect target is unknown or
/// not trusted).
pub(crate) fn error(title: &str, detail: &str) -> Markup {
    layout(
        title,
        html! {
            h1 { (title) }
            p class="error" role="alert" { (detail) }
        },
    )
}

/// An error page response.
pub(crate) fn error_page(status: StatusCode, title: &str, detail: &str) -> Page {
    Page::new(status, error(title, detail))
}

/// 403 for a form post without this browser's CSRF token.
pub(crate) fn forbidden() -> Page {
    error_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form has expired or did not come from this site. Go back, reload the page and try again.",
    )
}

/// 500 for a failure the user cannot fix; the cause is logged, never shown.
pub(crate) fn internal_error(context: &str, cause: &anyhow::Error) -> Response {
    tracing::error!(error = format!("{cause:#}"), "{context} failure");
    error_page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Please try again later.")
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_that_redirects_to_a_client_may_lead_to_its_origin_only() {
        let csp = |page: &Page| page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
        let plain = Page::new(StatusCode::OK, html! {});
        assert_eq!(csp(&plain), PAGE_CSP);
        let to_client =
            Page::new(StatusCode::OK, html! {}).redirecting_to("http://127.0.0.1:8083/callback?a=b");
        assert!(csp(&to_client).contains("form-action 'self' http://127.0.0.1:8083;"), "{}", csp(&to_client));
        assert!(csp(&to_client).contains("frame-ancestors 'none'"));
        let https = Page::new(StatusCode::OK, html! {}).redirecting_to("https://app.example/cb");
        assert!(csp(&https).contains("form-action 'self' https://app.example;"));
        let unparsable = Page::new(StatusCode::OK, html! {}).redirecting_to("not a URI");
        assert_eq!(csp(&unparsable), PAGE_CSP);
    }

    #[test]
    fn every_value_on_the_login_page_is_escaped() {
        let fields = [("state", "\"><script>alert(1)</script>".to_owned())];
        let markup = login(&LoginPage {
            client_id: "<b>client</b>",
            fields: &fields,
            csrf_token: "t\"x",
            username: "a&b",
            error: Some("<i>no</i>"),
            providers: &[crate::federation::ProviderButton {
                display_name: "<i>Acme</i>".into(),
                href: Some("/federation/acme/start?state=\"><x".into()),
            }],
        })
        .into_string();
        assert!(!markup.contains("<script>"), "{markup}");
        assert!(!markup.contains("<b>client"), "{markup}");
        assert!(!markup.contains("<i>no"), "{markup}");
        assert!(!markup.contains("<i>Acme"), "{markup}");
        assert!(!markup.contains("\"><x"), "{markup}");
        assert!(markup.contains("&quot;&gt;&lt;script&gt;"), "{markup}");
        assert!(markup.contains("value=\"a&amp;b\""), "{markup}");
    }

    #[test]
    fn the_login_page_has_one_form_with_labelled_inputs_and_no_script() {
        let markup = login(&LoginPage {
            client_id: "demo-web",
            fields: &[],
            csrf_token: "t",
            username: "",
            error: None,
            providers: &[
                crate::federation::ProviderButton { display_name: "Acme ID".into(), href: Some("/f".into()) },
                crate::federation::ProviderButton { display_name: "Down".into(), href: None },
            ],
        })
        .into_string();
        assert_eq!(markup.matches("<form").count(), 1);
        assert!(markup.contains("<a class=\"provider\" href=\"/f\">Continue with Acme ID</a>"), "{markup}");
        assert!(markup.contains("Continue with Down (unavailable)"), "{markup}");
        assert_eq!(markup.matches("type=\"password\"").count(), 1);
        assert!(markup.contains("<label for=\"username\">") && markup.contains("id=\"username\""));
        assert!(markup.contains("<label for=\"password\">") && markup.contains("id=\"password\""));
        assert!(!markup.contains("<script"));
        assert!(markup.contains("name=\"viewport\""));
    }
}
