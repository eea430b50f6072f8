//! Operator subcommands: users, clients, keys, upstream providers, demo seed, health check.

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};

use crate::clients;
use crate::config::{Cli, ClientsCommand, Command, KeysCommand, UsersCommand};
use crate::domain::{Password, Username, validate_role};
use crate::sessions;
use crate::state::AppState;
use crate::store::{self, CreateUserError, users};

/// Runs the command line's subcommand (default: serve).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => crate::run(config).await.map(|()| ExitCode::SUCCESS),
        Command::Healthcheck => Ok(if service_kit::healthcheck(config.listen_addr) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        command => {
            let state = crate::build_state(config).await?;
            run_on(&state, command).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs an operator subcommand against an existing state (the server's, in tests).
pub async fn run_on(state: &AppState, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Users(UsersCommand::Create { username, roles }) => {
            let password = read_password_from_stdin()?;
            let user = create_user(state, &username, password, &roles).await?;
            println!("{}", serde_json::json!({ "id": user.id, "username": user.username }));
        }
        Command::Users(UsersCommand::Disable { username }) => {
            let ended = disable_user(state, &username).await?;
            println!(
                "{}",
                serde_json::json!({ "username": username, "disabled": true, "sessions_ended": ended })
            );
        }
        Command::Clients(ClientsCommand::Create {
            client_id,
            scope,
            audiences,
            introspect,
            redirect_uris,
            public,
            post_logout_redirect_uris,
            first_party,
            id_token_alg,
            exchange_audiences,
            dpop,
        }) => {
            let secret = clients::generate_secret();
            let scopes: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
            let registration = clients::Registration {
                scopes,
                audiences,
                introspect_any: introspect,
                redirect_uris,
                post_logout_redirect_uris,
                public,
                first_party,
                id_token_alg,
                exchange_audiences,
                dpop_required: dpop,
            };
            create_client(state, &client_id, &secret, &registration).await?;
            let client_secret = (!public).then(|| secret.expose_secret().to_owned());
            println!("{}", serde_json::to_string(&clients::CreatedClient { client_id, client_secret })?);
        }
        Command::Clients(ClientsCommand::List) => {
            println!("{}", serde_json::to_string_pretty(&store::clients::list(&state.pool).await?)?);
        }
        Command::Clients(ClientsCommand::Delete { client_id }) => {
            let now = state.clock.now();
            let deleted =
                store::clients::delete(&state.pool, &client_id, now, sessions::revoked_until(state, now))
                    .await?;
            anyhow::ensure!(deleted, "no client {client_id:?}");
            println!("{}", serde_json::json!({ "client_id": client_id, "deleted": true }));
        }
        Command::Keys(KeysCommand::List) => {
            println!("{}", serde_json::to_string_pretty(&state.tokens.keyring().list().await?)?);
        }
        Command::Keys(KeysCommand::Rotate) => {
            let key = state.tokens.keyring().rotate().await?;
            println!("{}", serde_json::to_string_pretty(&key)?);
        }
        Command::Providers(command) => crate::federation::cli::run(state, command).await?,
        Command::DemoSeed { client_secret, acme_issuer, federation_secret } => {
            demo_seed(state, &client_secret).await?;
            if let (Some(issuer), Some(secret)) = (acme_issuer, federation_secret) {
                crate::federation::cli::demo_seed_provider(state, &issuer, &secret).await?;
            }
        }
        Command::DemoSeedAcme { relying_party, federation_secret } => {
            crate::federation::cli::demo_seed_acme(state, &relying_party, &federation_secret).await?;
        }
        Command::Serve | Command::Healthcheck => {}
    }
    Ok(())
}

/// Registers a client, and publishes a key of its id_token algorithm at once when none exists
/// (RS256 beside the EdDSA default): a relying party that fetched the key set when it started
/// then already knows the key its first id_token names.
pub async fn create_client(
    state: &AppState,
    client_id: &str,
    secret: &SecretString,
    registration: &clients::Registration,
) -> anyhow::Result<()> {
    clients::register(&state.pool, client_id, secret, registration).await?;
    if !registration.redirect_uris.is_empty() {
        state.tokens.keyring().signing_key_for(registration.id_token_alg).await?;
    }
    Ok(())
}

/// Reads a secret from standard input: everything up to the end, minus one trailing line
/// break (what `echo` or a terminal adds); nothing else is trimmed.
pub(crate) fn read_stdin_secret(what: &str) -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut input)
        .with_context(|| format!("failed to read the {what} from standard input"))?;
    let value = input.strip_suffix('\n').map(|rest| rest.strip_suffix('\r').unwrap_or(rest));
    Ok(value.unwrap_or(&input).to_owned())
}

/// Reads the password from standard input, as [`read_stdin_secret`].
fn read_password_from_stdin() -> anyhow::Result<Password> {
    let password = read_stdin_secret("password")?;
    Password::try_from(password).map_err(|error| anyhow::anyhow!(error.0))
}

/// Creates a user with roles (operator path: roles are allowed here, not in self-service).
pub async fn create_user(
    state: &AppState,
    username: &str,
    password: Password,
    roles: &[String],
) -> anyhow::Result<store::User> {
    let username = Username::try_from(username).map_err(|error| anyhow::anyhow!(error.0))?;
    for role in roles {
        validate_role(role).map_err(|error| anyhow::anyhow!(error.0))?;
    }
    let hash = state.hasher.hash(password.secret()).await?;
    users::create(&state.pool, &username, &hash, roles, state.clock.now()).await.map_err(
        |error| match error {
            CreateUserError::Taken => anyhow::anyhow!("username {:?} is taken", username.as_str()),
            CreateUserError::Database(error) => anyhow::Error::new(error).context("failed to create user"),
        },
    )
}

/// Disables a user and ends every one of their sessions; returns how many were active.
pub async fn disable_user(state: &AppState, username: &str) -> anyhow::Result<usize> {
    // A federated account's name (`acme:alice`) is no username; it is looked up as stored.
    let user = if username.contains(':') {
        users::find_by_name(&state.pool, username).await?
    } else {
        let username = Username::try_from(username).map_err(|error| anyhow::anyhow!(error.0))?;
        users::find_by_username(&state.pool, &username).await?
    };
    let user = user.with_context(|| format!("no user {username:?}"))?;
    let now = state.clock.now();
    users::disable(&state.pool, &user.id, now).await?;
    let ended =
        store::sessions::end_all_of_user(&state.pool, &user.id, now, sessions::revoked_until(state, now))
            .await
            .context("failed to end the user's sessions")?;
    Ok(ended)
}

/// Demo accounts, the orders-service client and the browser clients, created only if missing.
pub async fn demo_seed(state: &AppState, client_secret: &SecretString) -> anyhow::Result<()> {
    let accounts = [("demo", "demo-password", vec![]), ("admin", "admin-password", vec!["admin".to_owned()])];
    for (name, password, roles) in accounts {
        let username = Username::try_from(name).map_err(|error| anyhow::anyhow!(error.0))?;
        if users::find_by_username(&state.pool, &username).await?.is_none() {
            let password =
                Password::try_from(password.to_owned()).map_err(|error| anyhow::anyhow!(error.0))?;
            create_user(state, name, password, &roles).await?;
            println!("created user {name}");
        }
    }
    if store::clients::find(&state.pool, "orders-service").await?.is_none() {
        clients::register(&state.pool, "orders-service", client_secret, &orders_service_registration())
            .await?;
        println!("created client orders-service");
    }
    for (client_id, redirect_uris, post_logout, dpop_required) in demo_browser_clients() {
        if store::clients::find(&state.pool, client_id).await?.is_none() {
            let registration = clients::Registration {
                scopes: ["openid", "profile"]
                    .into_iter()
                    .map(str::to_owned)
                    .chain(state.config.user_scope.split_whitespace().map(str::to_owned))
                    .collect(),
                redirect_uris,
                post_logout_redirect_uris: post_logout,
                public: true,
                first_party: true,
                dpop_required,
                ..clients::Registration::default()
            };
            clients::register(&state.pool, client_id, &clients::generate_secret(), &registration).await?;
            println!("created client {client_id}");
        }
    }
    Ok(())
}

/// orders-service reads a customer's profile on the customer's behalf: it exchanges the
/// customer's access token for one with `aud: users-service` (token exchange), which
/// users-service authorises as the customer. So the client needs no `users:read` (anyone's
/// profile) for itself; its `--scope` bounds what an exchanged token may carry, and
/// `profile:read` is all the lookup needs.
fn orders_service_registration() -> clients::Registration {
    clients::Registration {
        scopes: vec!["profile:read".to_owned()],
        audiences: vec!["users-service".to_owned()],
        exchange_audiences: vec!["users-service".to_owned()],
        ..clients::Registration::default()
    }
}

/// The public, first-party browser clients of the demo (DESIGN.md "Clients"): the demo web
/// app, whose tokens are DPoP-bound to a key the page cannot export (`--dpop`), and Swagger UI
/// on each binary's `/docs`, which sends bearer tokens.
fn demo_browser_clients() -> [(&'static str, Vec<String>, Vec<String>, bool); 2] {
    let demo_web = "http://127.0.0.1:8083";
    let swagger =
        [8080, 8081, 8082].map(|port| format!("http://127.0.0.1:{port}/docs/oauth2-redirect.html")).to_vec();
    [
        ("demo-web", vec![format!("{demo_web}/callback")], vec![format!("{demo_web}/")], true),
        ("swagger-ui", swagger, Vec::new(), false),
    ]
}
