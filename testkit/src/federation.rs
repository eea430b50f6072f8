//! "Acme ID": a second instance of our own auth server as the upstream OpenID provider of a
//! stack (DESIGN.md "Upstream providers"), set up the way `platform`, the end-to-end tests and
//! the compose seed job do it: Acme gets the user `acme-user` and our server as a confidential
//! client redirecting to `<ISSUER>/federation/acme/callback`; our server gets Acme as the
//! provider `acme`, displayed "Acme ID".
//!
//! This module runs inside `platform`, so it returns errors rather than panicking.
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use anyhow::Context as _;

use crate::launch::Launcher;

/// The provider's name at our server: its callback path, `acme:` account names, `idp`.
pub const PROVIDER: &str = "acme";
/// What the login page's button says after "Continue with".
pub const DISPLAY_NAME: &str = "Acme ID";
/// The user at Acme.
pub const USER: &str = "acme-user";
/// Their password.
pub const PASSWORD: &str = "acme-password";
/// Our server's client id at Acme.
pub const CLIENT_ID: &str = "jwt-platform";

/// Registers the two auth servers at each other, idempotently: when `ours` already has the
/// provider, nothing is done. Otherwise Acme's user is created if missing, our client at Acme
/// is (re)created, and its secret goes to `providers add` on standard input. Returns what
/// `providers add` printed, or `None` when the provider existed.
pub async fn register(ours: &Launcher, acme: &Launcher) -> anyhow::Result<Option<String>> {
    let auth = ours.services().auth_server().name.clone();
    let providers: serde_json::Value =
        serde_json::from_str(&ours.run(&auth, &["providers", "list"]).await?).context("providers list")?;
    let existing =
        providers.as_array().is_some_and(|list| list.iter().any(|provider| provider["name"] == PROVIDER));
    if existing {
        return Ok(None);
    }
    if let Err(error) = acme.run_with_input(&auth, &["users", "create", USER], PASSWORD).await {
        anyhow::ensure!(format!("{error:#}").contains("is taken"), error);
    }
    // A client left by an earlier, interrupted run has a secret nobody kept: make a new one.
    let _ = acme.run(&auth, &["clients", "delete", CLIENT_ID]).await;
    let callback = format!("{}/federation/{PROVIDER}/callback", ours.issuer_url());
    let created = acme
        .run(
            &auth,
            &[
                "clients",
                "create",
                CLIENT_ID,
                "--redirect-uri",
                &callback,
                "--first-party",
                "--scope",
                "openid profile",
            ],
        )
        .await?;
    let created: serde_json::Value =
        serde_json::from_str(&created).context("clients create printed no JSON")?;
    let secret = created["client_secret"].as_str().context("clients create printed no client_secret")?;
    let acme_issuer = acme.issuer_url();
    let args = [
        "providers",
        "add",
        PROVIDER,
        "--issuer",
        &acme_issuer,
        "--client-id",
        CLIENT_ID,
        "--display-name",
        DISPLAY_NAME,
    ];
    ours.run_with_input(&auth, &args, secret).await.map(Some)
}
