//! The OpenAPI document every binary serves at `/openapi.json`, and Swagger UI at `/docs`
//! (served from the binary; no CDN).

use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::problem::PROBLEM_JSON;

/// The public client Swagger UI logs in as (registered by `auth-server demo-seed`).
pub(crate) const SWAGGER_CLIENT_ID: &str = "swagger-ui";

/// Titles the document, declares the `bearer` security scheme and corrects the media type of
/// problem bodies. With an `issuer`, it also declares the `oauth2` scheme (authorization code at
/// that issuer) as an alternative to `bearer` on every protected operation, with the same
/// scopes, so Swagger UI's "Authorize" can log in and "Try it out" sends the token.
pub(crate) fn complete(openapi: &mut OpenApi, title: &str, issuer: Option<&str>) {
    document_problem_media_type(openapi);
    openapi.info = utoipa::openapi::InfoBuilder::new()
        .title(title)
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(format!(
            "{title} of the JWT authorization platform. Errors are application/problem+json \
             (RFC 9457); authentication failures follow RFC 6750, and RFC 9449 for DPoP-bound tokens."
        )))
        .build();
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "An access token of the auth server: `Authorization: Bearer <token>`, or for a \
                     DPoP-bound token (`token_type: DPoP`) `Authorization: DPoP <token>` with a `DPoP` \
                     proof header for this request (RFC 9449)",
                ))
                .build(),
        ),
    );
    if let Some(issuer) = issuer {
        add_oauth2_login(openapi, issuer);
    }
}

/// Swagger UI's OAuth settings: the public client, PKCE, and the OpenID scopes preselected.
pub(crate) fn swagger_oauth() -> utoipa_swagger_ui::oauth::Config {
    utoipa_swagger_ui::oauth::Config::new()
        .client_id(SWAGGER_CLIENT_ID)
        .app_name("JWT platform")
        .scope_separator(" ")
        .use_pkce_with_authorization_code_grant(true)
}

/// Adds the `oauth2` scheme and, beside every `bearer` requirement, an `oauth2` one with the
/// same scopes. Done on the document's JSON because utoipa's requirement type does not expose
/// its scopes.
fn add_oauth2_login(openapi: &mut OpenApi, issuer: &str) {
    use utoipa::openapi::security::{AuthorizationCode, Flow, OAuth2, Scopes};
    let Ok(mut document) = serde_json::to_value(&*openapi) else {
        return;
    };
    let mut scopes = std::collections::BTreeSet::new();
    if let Some(paths) = document.get_mut("paths").and_then(|paths| paths.as_object_mut()) {
        for operation in
            paths.values_mut().filter_map(|item| item.as_object_mut()).flat_map(|item| item.values_mut())
        {
            let Some(security) = operation.get_mut("security").and_then(|security| security.as_array_mut())
            else {
                continue;
            };
            let alternatives: Vec<serde_json::Value> = security
                .iter()
                .filter_map(|requirement| requirement.get("bearer"))
                .map(|needed| serde_json::json!({ "oauth2": needed }))
                .collect();
            for alternative in alternatives {
                if let Some(needed) = alternative["oauth2"].as_array() {
                    scopes.extend(needed.iter().filter_map(|scope| scope.as_str()).map(str::to_owned));
                }
                security.push(alternative);
            }
        }
    }
    let Ok(with_alternatives) = serde_json::from_value::<OpenApi>(document) else {
        return;
    };
    *openapi = with_alternatives;
    scopes.insert("openid".to_owned());
    let flow = AuthorizationCode::new(
        format!("{issuer}/oauth2/authorize"),
        format!("{issuer}/oauth2/token"),
        Scopes::from_iter(scopes.into_iter().map(|scope| (scope.clone(), format!("scope {scope}")))),
    );
    let scheme = SecurityScheme::OAuth2(OAuth2::with_description(
        [Flow::AuthorizationCode(flow)],
        "Log in through the auth server (authorization code with PKCE, public client swagger-ui).",
    ));
    openapi.components.get_or_insert_with(Default::default).add_security_scheme("oauth2", scheme);
}

/// Problem bodies are sent as `application/problem+json` (RFC 9457), but `#[utoipa::path]`
/// documents every body as `application/json`. Corrected here, once for every service, so the
/// document says what the wire carries (clients and contract testers such as Schemathesis check
/// the media type).
fn document_problem_media_type(openapi: &mut OpenApi) {
    use utoipa::openapi::RefOr;
    let is_problem = |content: &RefOr<utoipa::openapi::Content>| {
        matches!(content, RefOr::T(content)
            if matches!(&content.schema, Some(RefOr::Ref(schema)) if schema.ref_location.ends_with("/Problem")))
    };
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            for response in operation.responses.responses.values_mut() {
                let RefOr::T(response) = response else { continue };
                if response.content.get("application/json").is_some_and(is_problem)
                    && let Some(content) = response.content.shift_remove("application/json")
                {
                    response.content.insert(PROBLEM_JSON.to_owned(), content);
                }
            }
        }
    }
}
