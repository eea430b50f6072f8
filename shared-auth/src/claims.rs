//! The access-token claims of the platform contract (RFC 9068 plus `roles`, `sid`, `act` for
//! tokens obtained by token exchange, RFC 8693, and `cnf` for DPoP-bound tokens, RFC 9449).

use serde::{Deserialize, Deserializer, Serialize};

/// The `typ` header of every access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Claims of an access token. Issued by auth-server, verified by every service.
///
/// Numeric dates are whole seconds since the Unix epoch; a string, a fraction or a number
/// outside `i64` fails deserialisation, so it can never be mistaken for "no expiry".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessClaims {
    /// Issuer: the auth server's base URL.
    pub iss: String,
    /// Subject: the user id, or the client id for a service token.
    pub sub: String,
    /// Audiences: the services this token is for (a single string is accepted on input).
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Unique token id.
    pub jti: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Roles of the user (e.g. `admin`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The user's login name (user tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// The login session id (user tokens only); logout revokes every token of a session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The service acting for the user (RFC 8693 §4.1), on a token obtained by token
    /// exchange: `sub` is the user, `act.sub` the client that exchanged the user's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The key this token is bound to (RFC 9449 §6, RFC 7800): a DPoP-bound token is only
    /// accepted with a proof signed by that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// A `cnf` claim (RFC 7800) of a DPoP-bound token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Confirmation {
    /// The RFC 7638 SHA-256 thumbprint of the client's DPoP public key.
    pub jkt: String,
}

/// An `act` claim (RFC 8693 §4.1): who acts for the token's subject. A token exchanged again
/// nests the earlier actor inside, so the outermost `sub` is the current actor and the chain
/// reads outward-in, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    /// The acting client's id.
    pub sub: String,
    /// The actor before this one, on a chained exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub act: Option<Box<Actor>>,
}

impl AccessClaims {
    /// Whether the space-separated `scope` claim contains `wanted`.
    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scope.as_deref().is_some_and(|scopes| scopes.split(' ').any(|scope| scope == wanted))
    }

    /// Whether `roles` contains `wanted`.
    pub fn has_role(&self, wanted: &str) -> bool {
        self.roles.iter().any(|role| role == wanted)
    }

    /// A user token carries a login session; a client-credentials token never does. A token
    /// a service obtained for the user by token exchange is a user token too.
    pub fn is_user(&self) -> bool {
        self.sid.is_some()
    }

    /// The client acting for the user (the outermost `act.sub`), when the token came from a
    /// token exchange.
    pub fn actor(&self) -> Option<&str> {
        self.act.as_ref().map(|actor| actor.sub.as_str())
    }

    /// The thumbprint of the DPoP key this token is bound to, if it is bound.
    pub fn bound_key(&self) -> Option<&str> {
        self.cnf.as_ref().map(|confirmation| confirmation.jkt.as_str())
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(audience) => vec![audience],
        OneOrMany::Many(audiences) => audiences,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<AccessClaims, serde_json::Error> {
        serde_json::from_value(json)
    }

    fn valid() -> serde_json::Value {
        serde_json::json!({
            "iss": "http://issuer", "sub": "u1", "aud": ["a"], "exp": 10, "iat": 1,
            "jti": "j", "client_id": "c", "scope": "x y", "roles": ["admin"], "sid": "s"
        })
    }

    #[test]
    fn audience_may_be_a_string_or_an_array() {
        let mut json = valid();
        json["aud"] = "a".into();
        assert_eq!(parse(json).unwrap().aud, vec!["a".to_owned()]);
    }

    #[test]
    fn non_numeric_or_fractional_or_huge_dates_are_rejected() {
        for bad in [serde_json::json!("10"), serde_json::json!(1.5), serde_json::json!(1e300)] {
            let mut json = valid();
            json["exp"] = bad;
            assert!(parse(json).is_err());
        }
    }

    #[test]
    fn scopes_and_roles_match_whole_words_only() {
        let claims = parse(valid()).unwrap();
        assert!(claims.has_scope("x") && claims.has_scope("y"));
        assert!(!claims.has_scope("x y") && !claims.has_scope(""));
        assert!(claims.has_role("admin") && !claims.has_role("adm"));
        assert!(claims.is_user());
    }

    #[test]
    fn a_chained_act_claim_reads_back_nested_and_names_the_newest_actor() {
        let mut json = valid();
        json["act"] = serde_json::json!({"sub": "billing", "act": {"sub": "orders-service"}});

        let claims = parse(json.clone()).unwrap();

        assert_eq!(claims.actor(), Some("billing"));
        let previous = claims.act.as_ref().and_then(|actor| actor.act.as_deref()).unwrap();
        assert_eq!((previous.sub.as_str(), previous.act.is_none()), ("orders-service", true));
        assert_eq!(serde_json::to_value(&claims).unwrap()["act"], json["act"]);
        assert_eq!(parse(valid()).unwrap().actor(), None);
        assert!(serde_json::to_value(parse(valid()).unwrap()).unwrap().get("act").is_none());
    }
}
