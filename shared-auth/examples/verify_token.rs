//! Verifies one access token against an issuer, as a resource service would, and prints its
//! claims or the reason it was refused.
//!
//! ```sh
//! cargo run -p platform                     # in another terminal: the whole stack
//! TOKEN=$(curl -s -X POST http://127.0.0.1:8080/v1/auth/login -H 'content-type: application/json' \
//!     -d '{"username":"demo","password":"demo-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
//! cargo run -p shared-auth --example verify_token -- http://127.0.0.1:8080 users-service "$TOKEN"
//! ```

use shared_auth::revocation::RevocationSettings;
use shared_auth::{KeyCache, KeyCacheSettings, Revocations, Verifier, VerifierSettings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(issuer), Some(audience), Some(token)) = (args.next(), args.next(), args.next()) else {
        anyhow::bail!("usage: verify_token ISSUER AUDIENCE TOKEN");
    };
    // No disk copy here: a service sets `KeyCacheSettings::cache_file` so it survives a
    // restart while the issuer is down.
    let keys = KeyCache::new(KeyCacheSettings::new(&issuer))?;
    keys.refresh().await?;
    let revocations = Revocations::new(RevocationSettings::default(), keys.clone());
    let verifier = Verifier::new(VerifierSettings::new(&issuer, &audience), keys, revocations);
    match verifier.verify(&token).await {
        Ok(claims) => println!("{}", serde_json::to_string_pretty(&*claims)?),
        Err(refused) => println!("refused: {refused} ({})", refused.reason()),
    }
    Ok(())
}
