//! Prints a DPoP proof (RFC 9449) for one request, for curl-like tools: a proof is good for one
//! request only, so a shell script makes a new one per call.
//!
//! ```sh
//! cargo run -q -p shared-auth --example dpop_proof -- KEY_FILE METHOD URL [ACCESS_TOKEN]
//! ```
//!
//! `KEY_FILE` holds the client's ES256 key (PKCS#8 DER); it is created, readable by its owner
//! only, when it does not exist. With `ACCESS_TOKEN` the proof carries its hash (`ath`), as a call
//! to a resource needs; without, it is for the token endpoint or `/v1/auth/login`. With `--thumbprint`
//! instead of a method and URL it prints the key's thumbprint (the `cnf.jkt` of its tokens).

use std::io::Write as _;

use anyhow::Context as _;
use shared_auth::dpop::ProofKey;
use shared_auth::jws::Algorithm;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: dpop_proof KEY_FILE (METHOD URL [ACCESS_TOKEN] | --thumbprint)";
    let key_file = args.first().context(usage)?;
    let key = load_or_create(std::path::Path::new(key_file))?;
    match args.get(1..).unwrap_or_default() {
        [flag] if flag == "--thumbprint" => println!("{}", key.thumbprint()),
        [method, url] => println!("{}", key.proof(method, url, None, shared_auth::time::unix_now_i64())?),
        [method, url, token] => {
            println!("{}", key.proof(method, url, Some(token), shared_auth::time::unix_now_i64())?);
        }
        _ => anyhow::bail!(usage),
    }
    Ok(())
}

fn load_or_create(path: &std::path::Path) -> anyhow::Result<ProofKey> {
    if let Ok(der) = std::fs::read(path) {
        return ProofKey::from_pkcs8_der(Algorithm::ES256, &der)
            .with_context(|| format!("{} is not an ES256 PKCS#8 key", path.display()));
    }
    let key = ProofKey::generate(Algorithm::ES256)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(&key.to_pkcs8_der()?)?;
    Ok(key)
}
