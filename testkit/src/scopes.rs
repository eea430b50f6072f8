//! Holds a protected service to its OpenAPI document: every operation's `security` names the
//! scopes it needs, and a token without them is refused with 403 `insufficient_scope`.

use serde_json::Value;

use crate::FakeIssuer;

/// Every scope a user token from the auth server carries by default (`USER_SCOPE`).
pub const USER_SCOPES: [&str; 4] = ["profile:read", "profile:write", "orders:read", "orders:write"];

/// For each operation of the service at `url` whose `security` lists scopes, calls it with a
/// user token (audience `audience`) that carries every user scope but the ones listed, and
/// asserts 403 `insufficient_scope`. Path parameters are the caller's own id, so the answer
/// cannot be an ownership 404; the body is `{}`, which the auth check precedes. Returns the
/// operations checked, as `METHOD path scopes`.
pub async fn assert_documented_scopes_are_enforced(
    url: &str,
    issuer: &FakeIssuer,
    audience: &str,
) -> Vec<String> {
    let client = reqwest::Client::new();
    let spec: Value = client.get(format!("{url}/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut checked = Vec::new();
    for (path, operations) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let Some(alternatives) = operation["security"].as_array() else { continue };
            let documented: Vec<&str> = alternatives
                .iter()
                .filter_map(|requirement| requirement["bearer"].as_array())
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if documented.is_empty() {
                continue;
            }
            let mut claims = issuer.user_claims("scope-probe", "scope-probe", audience);
            let kept: Vec<&str> =
                USER_SCOPES.iter().copied().filter(|scope| !documented.contains(scope)).collect();
            claims.scope = Some(kept.join(" "));
            let token = issuer.sign(&claims);
            let target = format!("{url}{}", path.replace("{id}", "scope-probe"));
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let response = client
                .request(method.clone(), &target)
                .bearer_auth(token)
                .json(&serde_json::json!({}))
                .send()
                .await
                .unwrap();
            let challenge =
                response.headers().get("www-authenticate").map(|value| value.to_str().unwrap().to_owned());
            assert_eq!(response.status(), 403, "{method} {path} without {documented:?}");
            let challenge = challenge.unwrap_or_default();
            assert!(
                documented.iter().any(
                    |scope| challenge == format!(r#"Bearer error="insufficient_scope", scope="{scope}""#)
                ),
                "{method} {path}: challenge {challenge:?} names none of {documented:?}"
            );
            checked.push(format!("{method} {path} {}", documented.join("|")));
        }
    }
    checked
}
