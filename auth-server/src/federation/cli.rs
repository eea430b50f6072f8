//! `auth-server providers add | list | delete`.

use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;

use crate::config::ProvidersCommand;
use crate::state::AppState;
use crate::store::federation::{self as store, Provider};

/// What `providers add` prints: the redirect URI to register at the upstream.
#[derive(Debug, Serialize)]
pub struct AddedProvider {
    /// The provider's name.
    pub name: String,
    /// `<ISSUER>/federation/NAME/callback`.
    pub redirect_uri: String,
}

/// A provider to register.
#[derive(Debug, Clone)]
pub struct NewProvider {
    /// Our name for it.
    pub name: String,
    /// Its issuer.
    pub issuer: String,
    /// Our client id there.
    pub client_id: String,
    /// The button's text after "Continue with".
    pub display_name: String,
    /// Scopes to ask for.
    pub scope: String,
}

/// Runs a `providers` subcommand.
pub async fn run(state: &AppState, command: ProvidersCommand) -> anyhow::Result<()> {
    match command {
        ProvidersCommand::Add { name, issuer, client_id, display_name, scope } => {
            let secret = crate::cli::read_stdin_secret("client secret")?;
            let secret = (!secret.is_empty()).then(|| SecretString::from(secret));
            let provider = NewProvider { name, issuer, client_id, display_name, scope };
            let (added, discovery) = add(state, &provider, secret.as_ref()).await?;
            if let Err(error) = discovery {
                eprintln!(
                    "warning: cannot read the discovery document of {}: {error:#}. The provider is stored; \
                     the login page shows it as unavailable until it can be read.",
                    provider.issuer
                );
            }
            println!("{}", serde_json::to_string(&added)?);
        }
        ProvidersCommand::List => {
            println!("{}", serde_json::to_string_pretty(&store::list_providers(&state.pool).await?)?);
        }
        ProvidersCommand::Delete { name } => {
            anyhow::ensure!(store::delete_provider(&state.pool, &name).await?, "no provider {name:?}");
            println!("{}", serde_json::json!({ "name": name, "deleted": true }));
        }
    }
    Ok(())
}

/// Stores a provider, its secret sealed, then reads the upstream's discovery at once. The
/// second value says whether that worked: a provider whose discovery cannot be read is stored
/// all the same (the upstream may be down for now).
pub async fn add(
    state: &AppState,
    provider: &NewProvider,
    secret: Option<&SecretString>,
) -> anyhow::Result<(AddedProvider, anyhow::Result<()>)> {
    anyhow::ensure!(
        super::valid_provider_name(&provider.name),
        "provider name must be 1-32 characters of a-z, 0-9 or '-', starting with a letter"
    );
    let issuer = provider.issuer.trim_end_matches('/').to_owned();
    let parsed = url::Url::parse(&issuer).map_err(|error| anyhow::anyhow!("--issuer {issuer:?}: {error}"))?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "https" | "http")
            && parsed.query().is_none()
            && parsed.fragment().is_none(),
        "--issuer must be an http(s) URL without query or fragment"
    );
    anyhow::ensure!(!provider.client_id.is_empty(), "--client-id must not be empty");
    let display_name = provider.display_name.trim();
    anyhow::ensure!(
        (1..=64).contains(&display_name.chars().count()),
        "--display-name must be 1-64 characters"
    );
    let sealed_secret = match secret {
        Some(secret) => state
            .tokens
            .keyring()
            .seal(&super::secret_label(&provider.name), secret.expose_secret().as_bytes())?,
        None => String::new(),
    };
    let stored = Provider {
        name: provider.name.clone(),
        issuer,
        client_id: provider.client_id.clone(),
        sealed_secret,
        display_name: display_name.to_owned(),
        scope: provider.scope.split_whitespace().collect::<Vec<_>>().join(" "),
        created_at: state.clock.now(),
    };
    anyhow::ensure!(
        store::insert_provider(&state.pool, &stored).await?,
        "provider {:?} already exists",
        provider.name
    );
    let added = AddedProvider {
        name: stored.name.clone(),
        redirect_uri: super::redirect_uri(state.tokens.issuer(), &stored.name),
    };
    let discovery = match state.federation.upstream(&stored) {
        Ok(upstream) => upstream.metadata().await.map(|_| ()).map_err(anyhow::Error::new),
        Err(error) => Err(anyhow::Error::new(error)),
    };
    Ok((added, discovery))
}

/// The demo's upstream provider as our server knows it.
const DEMO_PROVIDER: &str = "acme";
/// Our client id at Acme ID in the demo.
const DEMO_CLIENT_AT_ACME: &str = "jwt-platform";

/// `demo-seed --acme-issuer`: registers Acme ID as the provider `acme`, if missing.
pub async fn demo_seed_provider(state: &AppState, issuer: &str, secret: &SecretString) -> anyhow::Result<()> {
    if store::find_provider(&state.pool, DEMO_PROVIDER).await?.is_some() {
        return Ok(());
    }
    let provider = NewProvider {
        name: DEMO_PROVIDER.into(),
        issuer: issuer.into(),
        client_id: DEMO_CLIENT_AT_ACME.into(),
        display_name: "Acme ID".into(),
        scope: "openid profile".into(),
    };
    let (added, discovery) = add(state, &provider, Some(secret)).await?;
    if let Err(error) = discovery {
        eprintln!("warning: cannot read the discovery document of {issuer} yet: {error:#}");
    }
    println!("created provider {} (redirect URI {})", added.name, added.redirect_uri);
    Ok(())
}

/// `demo-seed-acme`: this server as Acme ID, with `acme-user` and the relying party's client.
pub async fn demo_seed_acme(
    state: &AppState,
    relying_party: &str,
    secret: &SecretString,
) -> anyhow::Result<()> {
    let username =
        crate::domain::Username::try_from("acme-user").map_err(|error| anyhow::anyhow!(error.0))?;
    if crate::store::users::find_by_username(&state.pool, &username).await?.is_none() {
        let password = crate::domain::Password::try_from("acme-password".to_owned())
            .map_err(|error| anyhow::anyhow!(error.0))?;
        crate::cli::create_user(state, username.as_str(), password, &[]).await?;
        println!("created user acme-user");
    }
    if crate::store::clients::find(&state.pool, DEMO_CLIENT_AT_ACME).await?.is_none() {
        let registration = crate::clients::Registration {
            scopes: vec!["openid".into(), "profile".into()],
            redirect_uris: vec![super::redirect_uri(relying_party.trim_end_matches('/'), DEMO_PROVIDER)],
            first_party: true,
            ..crate::clients::Registration::default()
        };
        crate::cli::create_client(state, DEMO_CLIENT_AT_ACME, secret, &registration).await?;
        println!("created client {DEMO_CLIENT_AT_ACME}");
    }
    Ok(())
}
