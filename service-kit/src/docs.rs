//! The OpenAPI document every binary serves at `/openapi.json`, and Swagger UI at `/docs`
//! (served from the binary; no CDN).

use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::problem::PROBLEM_JSON;

/// Titles the document, declares the `bearer` security scheme and corrects the media type of
/// problem bodies.
pub(crate) fn complete(openapi: &mut OpenApi, title: &str) {
    document_problem_media_type(openapi);
    openapi.info = utoipa::openapi::InfoBuilder::new()
        .title(title)
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(format!(
            "{title} of the JWT authorization platform. Errors are application/problem+json \
             (RFC 9457); authentication failures follow RFC 6750."
        )))
        .build();
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
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
