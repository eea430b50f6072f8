//! RFC 6750, bearer token usage: the `Authorization: Bearer` syntax (§2.1), no other way of
//! sending a token (§2.2, §2.3), the `WWW-Authenticate` challenge and its error codes (§3,
//! §3.1), and requests too large for any token.

use reqwest::Method;
use serde_json::{Value, json};
use shared_auth::VerifyError;
use testkit::scopes::USER_SCOPES;

use super::harness::{
    Case, Expect, KID_EDDSA, OrdersApp, UsersApp, check, check_at, header_for, service_claims, sign_json,
    trusted_keys, with, without,
};

/// RFC 6750 §3: "If the request lacks any authentication information ... the resource server
/// SHOULD NOT include an error code": 401 with a bare `Bearer` challenge, on every protected
/// route.
#[tokio::test]
async fn no_token_gets_a_bare_bearer_challenge() {
    let app = UsersApp::start().await;
    let cases = ["/v1/users/me", "/v1/users", "/v1/users/user-1"]
        .into_iter()
        .map(|path| Case::anonymous(format!("GET {path} without Authorization"), path, Expect::NoToken))
        .collect();
    check(&app, "RFC 6750 §3: no token", cases).await;
}

/// RFC 6750 §2.1 (`credentials = "Bearer" 1*SP b64token`) and §3.1 (`invalid_request`, 400:
/// "the request is ... otherwise malformed"): other schemes, a missing or split token, characters
/// outside b64token, non-ASCII bytes, and more than one Authorization header (RFC 9110 §5.3: the
/// field is not a list, so two of them are a malformed request, not a choice for the server).
/// The scheme is case-insensitive (RFC 9110 §11.1).
#[tokio::test]
async fn a_malformed_authorization_header_is_invalid_request() {
    let app = UsersApp::start().await;
    let genuine = app.token();
    let bad = Expect::InvalidRequest;
    let mut cases: Vec<Case> = [
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        "Bearer    ".to_owned(),
        "Bearer a b".to_owned(),
        format!("Bearer\t{genuine}"),
        format!("Bearer={genuine}"),
        format!("Bearer {genuine} {genuine}"),
        format!("Bearer {genuine},"),
        format!("Bearer \"{genuine}\""),
        format!("Bearer <{genuine}>"),
        format!("Bearer {genuine};"),
    ]
    .into_iter()
    .map(|value| Case::header(format!("Authorization: {:.40}", value), value.into_bytes(), bad))
    .collect();
    cases.push(Case::header(
        "non-ASCII byte in the token",
        [b"Bearer ", genuine.as_bytes(), &[0xe9]].concat(),
        bad,
    ));
    cases.push(Case::header("Latin-1 scheme", b"B\xe9arer abc".to_vec(), bad));
    let two = |first: &str, second: &str| Case {
        authorization: vec![format!("Bearer {first}").into_bytes(), format!("Bearer {second}").into_bytes()],
        ..Case::header(String::new(), Vec::new(), bad)
    };
    cases.push(Case { name: "two headers: genuine, then garbage".into(), ..two(&genuine, "garbage") });
    cases.push(Case { name: "two headers: garbage, then genuine".into(), ..two("garbage", &genuine) });
    cases.push(Case { name: "two headers: the same genuine token twice".into(), ..two(&genuine, &genuine) });
    // '=' is a b64token character, so this one is syntactically a token, just not a JWS.
    cases.push(Case::header(
        "Bearer access_token=<token>",
        format!("Bearer access_token={genuine}").into_bytes(),
        Expect::Rejected(VerifyError::Malformed),
    ));
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        cases.push(Case::header(
            format!("scheme {scheme:?} is accepted"),
            format!("{scheme} {genuine}").into_bytes(),
            Expect::Accepted,
        ));
    }
    cases.push(Case::header(
        "several spaces before the token are accepted",
        format!("Bearer   {genuine}").into_bytes(),
        Expect::Accepted,
    ));
    check(&app, "RFC 6750 §2.1, §3.1: invalid_request", cases).await;
}

/// RFC 6750 §3 ("attempted using an unsupported authentication method": no error code) and
/// RFC 9110 §11.6.1 (a 401 carries a challenge for the scheme the resource takes): credentials
/// of another scheme, even wrapping a genuine token, get 401 with a bare `Bearer` challenge.
#[tokio::test]
async fn credentials_of_another_scheme_get_a_bare_bearer_challenge() {
    let app = UsersApp::start().await;
    let genuine = app.token();
    let cases: Vec<Case> = [
        "Basic dXNlcjpwYXNzd29yZA==".to_owned(),
        format!("Token {genuine}"),
        format!("OAuth {genuine}"),
        format!("DPoPx {genuine}"),
        format!("Bearer{genuine}"),
        genuine.clone(),
    ]
    .into_iter()
    .map(|value| Case::header(format!("Authorization: {:.40}", value), value.into_bytes(), Expect::NoToken))
    .collect();
    check(&app, "RFC 6750 §3, RFC 9110 §11.6.1: another scheme", cases).await;
}

/// RFC 6750 §2.3 (and RFC 9700 §4.3.2, which forbids it): a token in the URI query is not an
/// access token here; the request is unauthenticated. §2.2's form-encoded body parameter is not
/// supported either.
#[tokio::test]
async fn a_token_in_the_query_or_the_body_is_not_accepted() {
    let app = UsersApp::start().await;
    let genuine = app.token();
    let query = app.http.get(format!("{}/v1/users/me?access_token={genuine}", app.url)).send().await.unwrap();
    let form = app
        .http
        .patch(format!("{}/v1/users/me", app.url))
        .form(&[("access_token", genuine.as_str()), ("display_name", "x")])
        .send()
        .await
        .unwrap();
    for (name, response) in [("query ?access_token=", query), ("form body access_token=", form)] {
        let outcome = super::harness::Outcome::read(response).await;
        assert_eq!(Expect::NoToken.mismatch(&outcome), None, "{name}");
    }
    println!("[RFC 6750 §2.2, §2.3: token outside the header] 2 cases: all as required");
}

/// RFC 6750 §3.1 `insufficient_scope` (403): a valid token without the role, scope or kind of
/// principal a route needs; the same tokens where they are enough get through.
#[tokio::test]
async fn a_valid_token_without_the_needed_scope_is_insufficient_scope() {
    let app = UsersApp::start().await;
    let issuer = app.issuer.url.clone();
    let user = app.token();
    let service = |scope: &str| {
        sign_json(
            &trusted_keys().eddsa,
            &header_for(KID_EDDSA),
            &service_claims(&issuer, "users-service", scope),
        )
    };
    let mut admin_claims = app.claims();
    admin_claims["roles"] = json!(["admin"]);
    let admin = app.sign_claims(&admin_claims);
    let mut roles_as_scope = app.claims();
    roles_as_scope["scope"] =
        json!("profile:read profile:write orders:read orders:write admin users:read:all");
    let roles_as_scope = app.sign_claims(&roles_as_scope);
    let denied = Expect::InsufficientScope;
    let cases = vec![
        Case::token("user lists all users (needs role admin)", &user, denied).on("/v1/users"),
        Case::token("user with scope 'admin' but no admin role lists users", &roles_as_scope, denied)
            .on("/v1/users"),
        Case::token("user reads another user's profile", &user, denied).on("/v1/users/someone-else"),
        Case::token("user with look-alike scope reads another profile", &roles_as_scope, denied)
            .on("/v1/users/someone-else"),
        Case::token("service token without users:read reads a profile", service("orders:write"), denied)
            .on("/v1/users/user-1"),
        Case::token("service token asks for a user's own profile", service("users:read"), denied),
        Case::token("service token lists users", service("users:read"), denied).on("/v1/users"),
        Case::token("admin lists users", &admin, Expect::Accepted).on("/v1/users"),
        Case::token("service token with users:read reads a profile", service("users:read"), Expect::Accepted)
            .on("/v1/users/user-1"),
        Case::token("user reads their own profile by id", &user, Expect::Accepted).on("/v1/users/user-1"),
    ];
    check(&app, "RFC 6750 §3.1: insufficient_scope", cases).await;
}

/// RFC 6750 §3.1 `invalid_token` for a token over the verifier's size cap (8 KiB), and RFC 9110
/// §15.5 for headers over the HTTP server's limit: a 4xx, never a 5xx or a dropped connection.
/// Up to hyper's header buffer (about 400 KiB) the token reaches the verifier and is refused
/// unread as too large; past it hyper answers 431 itself.
#[tokio::test]
async fn oversized_tokens_and_headers_get_4xx_never_5xx() {
    let app = UsersApp::start().await;
    let too_large = Expect::Rejected(VerifyError::TooLarge);
    let padded = |bytes: usize| {
        let mut claims = app.claims();
        claims["padding"] = json!("p".repeat(bytes * 3 / 4));
        app.sign_claims(&claims)
    };
    let cases = vec![
        Case::token("signed token of about 10 KB", padded(10 * 1024), too_large),
        Case::token("signed token of about 100 KB", padded(100 * 1024), too_large),
        Case::token("64 KB of b64token characters", "a".repeat(64 * 1024), too_large),
        Case::token("8193 bytes, one over the cap", "a".repeat(8 * 1024 + 1), too_large),
    ];
    check(&app, "RFC 6750 §3.1: oversized tokens", cases).await;

    let mut statuses = Vec::new();
    for kib in [256, 512, 1024] {
        let value = format!("Bearer {}", "a".repeat(kib * 1024));
        let response =
            app.http.get(format!("{}/v1/users/me", app.url)).header("authorization", value).send().await;
        let status = response
            .map(|response| response.status().as_u16())
            .unwrap_or_else(|error| panic!("{kib} KiB header: {error}"));
        assert!((400..500).contains(&status), "{kib} KiB Authorization header answered {status}");
        statuses.push(format!("{kib} KiB -> {status}"));
    }
    println!("[RFC 9110 §15.5: oversized headers] {}", statuses.join(", "));
}

/// A protected operation, the scope its OpenAPI document names, and what a token with just
/// that scope (and `roles`) gets.
struct Operation {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    scope: &'static str,
    roles: &'static [&'static str],
    allowed: Expect,
}

impl Operation {
    fn new(method: Method, path: &'static str, scope: &'static str, allowed: Expect) -> Self {
        Self { method, path, body: None, scope, roles: &[], allowed }
    }

    fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn for_roles(mut self, roles: &'static [&'static str]) -> Self {
        self.roles = roles;
        self
    }

    fn case(&self, name: String, token: String, expect: Expect) -> Case {
        let label = format!("{} {}: {name}", self.method, self.path);
        let case = Case::token(label, token, expect).on(self.path);
        match &self.body {
            Some(body) => case.sending(self.method.clone(), body.clone()),
            None => Case { method: self.method.clone(), ..case },
        }
    }

    /// A user token narrowed in every way that leaves this operation's scope out gets 403
    /// naming exactly that scope; the scope alone is enough.
    fn narrowed_cases(&self, claims: &Value, sign: impl Fn(&Value) -> String) -> Vec<Case> {
        let needed = self.scope;
        let claims = with(claims.clone(), "roles", json!(self.roles));
        let scoped = |scope: &str| sign(&with(claims.clone(), "scope", json!(scope)));
        let others: Vec<&str> = USER_SCOPES.iter().copied().filter(|scope| *scope != needed).collect();
        let (resource, _) = needed.split_once(':').unwrap();
        let lacking = Expect::ScopeNeeded(needed);
        let mut cases = vec![
            self.case("every other user scope".into(), scoped(&others.join(" ")), lacking),
            self.case("scope empty".into(), scoped(""), lacking),
            self.case("no scope claim".into(), sign(&without(claims.clone(), "scope")), lacking),
        ];
        for look_alike in [
            needed.to_uppercase(),
            format!("{needed}s"),
            format!("{resource}:*"),
            resource.to_owned(),
            needed.replace(':', "."),
            format!("{needed},{}", others[0]),
            format!("\"{needed}\""),
        ] {
            cases.push(self.case(format!("look-alike scope {look_alike:?}"), scoped(&look_alike), lacking));
        }
        cases.push(self.case(format!("only {needed} is enough"), scoped(needed), self.allowed));
        cases
    }
}

/// RFC 6750 §3.1 `insufficient_scope` ("the request requires higher privileges than provided by
/// the access token") with §3's `scope` attribute: at users-service, every operation refuses a
/// user token narrowed to other scopes (the auth server issues such tokens, e.g. by token
/// exchange) with 403 naming the scope its document lists, whatever look-alike the token
/// carries; the scope alone gets through.
#[tokio::test]
async fn users_service_refuses_a_token_narrowed_to_other_scopes_and_names_the_scope() {
    let app = UsersApp::start().await;
    let operations = [
        Operation::new(Method::GET, "/v1/users/me", "profile:read", Expect::Accepted),
        Operation::new(Method::PATCH, "/v1/users/me", "profile:write", Expect::Accepted)
            .with_body(json!({"display_name": "Narrowed"})),
        Operation::new(Method::GET, "/v1/users/user-1", "profile:read", Expect::Accepted),
        Operation::new(Method::GET, "/v1/users", "profile:read", Expect::Accepted).for_roles(&["admin"]),
        Operation::new(Method::GET, "/v1/users/someone-else", "profile:read", Expect::Status(404))
            .for_roles(&["admin"]),
    ];
    let cases: Vec<Case> = operations
        .iter()
        .flat_map(|operation| operation.narrowed_cases(&app.claims(), |claims| app.sign_claims(claims)))
        .collect();
    check(&app, "RFC 6750 §3.1: insufficient_scope names the scope (users-service)", cases).await;
}

/// RFC 6750 §3.1 and §3, at orders-service: the same for its three operations.
#[tokio::test]
async fn orders_service_refuses_a_token_narrowed_to_other_scopes_and_names_the_scope() {
    let app = OrdersApp::start().await;
    let operations = [
        Operation::new(Method::GET, "/v1/orders", "orders:read", Expect::Accepted),
        Operation::new(Method::POST, "/v1/orders", "orders:write", Expect::Status(201))
            .with_body(json!({"item": "narrowed beans", "quantity": 1})),
        Operation::new(Method::GET, "/v1/orders/no-such-order", "orders:read", Expect::Status(404)),
    ];
    let cases: Vec<Case> = operations
        .iter()
        .flat_map(|operation| operation.narrowed_cases(&app.claims(), |claims| app.sign_claims(claims)))
        .collect();
    check_at(
        &app.url,
        &app.http,
        "RFC 6750 §3.1: insufficient_scope names the scope (orders-service)",
        cases,
    )
    .await;
}

/// RFC 6750 §3.1 `insufficient_scope` without a `scope` attribute when no scope would help:
/// a missing role (listing users, reading someone else's profile without `admin`), a role
/// spelled differently or smuggled in as a scope, and a service token (every scope it could
/// hold) on an operation for people, at both services. §3 lets the attribute name only scopes
/// a client can request, and no client can request a role or a user.
#[tokio::test]
async fn a_missing_role_or_a_service_token_is_insufficient_scope_without_a_scope_attribute() {
    let users = UsersApp::start().await;
    let orders = OrdersApp::start().await;
    let user = users.token();
    let user_with = |member: &str, value: Value| users.sign_claims(&with(users.claims(), member, value));
    let every_scope = "profile:read profile:write orders:read orders:write users:read";
    let service = |audience: &str, issuer: &str, scope: &str| {
        sign_json(&trusted_keys().eddsa, &header_for(KID_EDDSA), &service_claims(issuer, audience, scope))
    };
    let users_service_token = service("users-service", &users.issuer.url, every_scope);
    let denied = Expect::NotPermitted;
    let patch = |case: Case| case.sending(Method::PATCH, json!({"display_name": "Service"}));
    let users_cases = vec![
        Case::token("user without role admin lists users", &user, denied).on("/v1/users"),
        Case::token("role \"Admin\" is not admin", user_with("roles", json!(["Admin"])), denied)
            .on("/v1/users"),
        Case::token("role \"admin \" is not admin", user_with("roles", json!(["admin "])), denied)
            .on("/v1/users"),
        Case::token(
            "\"admin\" as a scope is not the role",
            user_with("scope", json!(format!("{every_scope} admin"))),
            denied,
        )
        .on("/v1/users"),
        Case::token("user without admin or users:read reads another profile", &user, denied)
            .on("/v1/users/someone-else"),
        Case::token("service token with every scope reads /v1/users/me", &users_service_token, denied),
        patch(Case::token(
            "service token with every scope changes /v1/users/me",
            &users_service_token,
            denied,
        )),
        Case::token("service token with every scope lists users", &users_service_token, denied)
            .on("/v1/users"),
        // A service token can get in only by `users:read`, so that refusal names it.
        Case::token(
            "service token without users:read reads a profile",
            service("users-service", &users.issuer.url, "profile:read"),
            Expect::ScopeNeeded("users:read"),
        )
        .on("/v1/users/user-1"),
        Case::token(
            "control: role admin lists users",
            user_with("roles", json!(["admin"])),
            Expect::Accepted,
        )
        .on("/v1/users"),
    ];
    let users_count =
        check(&users, "RFC 6750 §3.1: insufficient_scope for a role or a user (users-service)", users_cases)
            .await;

    let orders_service_token = service("orders-service", &orders.issuer.url, every_scope);
    let orders_cases = vec![
        Case::token("service token with every scope lists orders", &orders_service_token, denied)
            .on("/v1/orders"),
        Case::token("service token with every scope places an order", &orders_service_token, denied)
            .on("/v1/orders")
            .sending(Method::POST, json!({"item": "service beans", "quantity": 1})),
        Case::token("service token with every scope reads an order", &orders_service_token, denied)
            .on("/v1/orders/no-such-order"),
        Case::token("control: a user token lists orders", orders.token(), Expect::Accepted).on("/v1/orders"),
    ];
    let orders_count = check_at(
        &orders.url,
        &orders.http,
        "RFC 6750 §3.1: insufficient_scope for a role or a user (orders-service)",
        orders_cases,
    )
    .await;
    assert_eq!(users_count + orders_count, 14);
}
