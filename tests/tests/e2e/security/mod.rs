//! The platform's security suite, organised by the rule each test defends. Every test cites its
//! rule; table-driven tests print `[rule] N cases` so the coverage per rule reads off the output
//! (`cargo test -p e2e --test e2e security -- --nocapture`).
//!
//! Token tests run at the HTTP level against users-service (and orders-service) started
//! in-process, trusting an issuer whose keys the tests hold (see `harness`), and require the
//! exact RFC 6750 outcome: 401 `invalid_token` with the verifier's reason, 400 `invalid_request`,
//! 403 `insufficient_scope` (naming the scope, or none for a role), never a 5xx. Tokens are
//! forged byte by byte: header JSON written by hand, base64url-encoded, signed with
//! `shared_auth::jws::SigningKey` or a hand-written HMAC. The auth server's rules run against it
//! in-process too; what only a real binary shows (its headers as deployed, its logs on standard
//! error, its files) runs against the binaries, started by `testkit::launch` as `e2e` does.
//!
//! | module | source |
//! |---|---|
//! | `rfc8725` | RFC 8725 JWT BCP: alg none, HMAC confusion, Wycheproof vectors, encodings, kid |
//! | `rfc9068_section4` | RFC 9068 §4 access-token validation: typ, crit, serialization, iss, aud, claims |
//! | `rfc6750` | RFC 6750 bearer usage: header syntax, challenges, scope on every operation of both services, roles, oversized requests |
//! | `rfc7662` | RFC 7662 introspection: only the token's client, its audience or an `--introspect` client; deleted clients |
//! | `rfc9700` | RFC 9700 OAuth security BCP: no password grant, refresh-token reuse detection |
//! | `rfc9700_authorization_code` | RFC 9700 for the code grant and hosted login: code injection, PKCE downgrade, open redirectors, login CSRF, clickjacking, mix-up (RFC 9207), state, code replay, nonce, session fixation, cookies |
//! | `rfc9449` | RFC 9449 DPoP at users-service behind a proxy: every proof check of §4.3, the scheme (§7), replay and pre-made proofs (§11) |
//! | `openid_connect_federation` | OpenID Connect Core §3.1.3.7 for "Login with …": forged, misdirected and replayed upstream answers, account linking by `sub` only |
//! | `owasp_asvs_v2_validation` | ASVS 5.0 V2: labels without bidi controls or invisible characters |
//! | `owasp_asvs_v3_headers` | ASVS 5.0 V3.4: nosniff, Referrer-Policy, frame-ancestors, HSTS (real binaries) |
//! | `owasp_asvs_v6_authentication` | ASVS 5.0 V6: password rules, throttling, no enumeration, registration limit |
//! | `owasp_asvs_v9_tokens` | ASVS 5.0 V9: integrity, algorithms, key sources, time, maximum lifetime, type, audience |
//! | `owasp_asvs_v13_configuration` | ASVS 5.0 V13.3.2: data dirs 0700, databases 0600 (real binaries) |
//! | `owasp_asvs_v16_logging` | ASVS 5.0 V16: no forged log entries, no secrets in logs (real auth-server) |
//! | `properties` | proptest: token edits and arbitrary JSON bodies never accepted / never 5xx |

mod harness;
mod openid_connect_federation;
mod owasp_asvs_v13_configuration;
mod owasp_asvs_v16_logging;
mod owasp_asvs_v2_validation;
mod owasp_asvs_v3_headers;
mod owasp_asvs_v6_authentication;
mod owasp_asvs_v9_tokens;
mod properties;
mod rfc6750;
mod rfc7662;
mod rfc8725;
mod rfc9068_section4;
mod rfc9449;
mod rfc9700;
mod rfc9700_authorization_code;
