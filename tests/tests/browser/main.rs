//! The platform in a real browser: headless Chromium (Debian's `chromium`), driven over
//! WebDriver (Debian's `chromium-driver`, through `fantoccini`), against the real binaries of
//! `services.toml` on free loopback ports.
//!
//! - `demo_app`: log in through the demo app, edit the profile, order; stop the auth server and
//!   keep ordering; start it again and refresh past the token's expiry; log out and see both
//!   services reject the old token.
//! - `dpop`: the demo app's tokens are DPoP-bound to a key its page cannot export; copied out
//!   of the page, a token is refused as Bearer, without a proof, replayed and with another key.
//! - `swagger_ui`: "Authorize" on a service's `/docs`, then "Try it out" on `GET /v1/users/me`.
//! - `login_page`: the hosted login page by keyboard alone.
//! - `federated_login`: "Continue with Acme ID", through a second auth server, back logged in.
//!
//! Every test also checks that no request left the platform's origins (the browser's network
//! log) and that the pages logged no console error.
//!
//! Without Chromium or its driver the tests print a loud SKIPPED line and pass, unless
//! `REQUIRE_BROWSER=1` (CI sets it), which makes that a failure. `CHROMIUM` and `CHROMEDRIVER`
//! name other binaries. `WRITE_SCREENSHOTS=1` writes the README's pictures to `docs/images/`
//! (`scripts/screenshots.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod demo_app;
mod dpop;
mod federated_login;
mod harness;
mod login_page;
mod swagger_ui;
