//! What every binary serves besides its API: health, readiness, metrics, docs, request ids,
//! problem fallbacks; and that every route is documented.
use crate::common;

use common::TestApp;
use serde_json::Value;

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["database"], "ready");

    app.registered_login("nina", "nina-password").await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"logins_total{outcome="success"}"#), "{metrics}");
    assert!(metrics.contains("password_hash_queue_wait_seconds"), "{metrics}");
    assert!(metrics.contains(r#"route="/v1/auth/login""#), "{metrics}");
    assert!(metrics.contains("http_request_duration_seconds_bucket"), "{metrics}");
}

#[tokio::test]
async fn readiness_is_unavailable_when_the_database_is_gone() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    app.state.pool.close().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "unavailable");
}

#[tokio::test]
async fn request_ids_are_generated_or_propagated() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let generated = app.get("/healthz").await;
    assert!(generated.headers()["x-request-id"].to_str().unwrap().len() >= 32);
    let propagated = app
        .client
        .get(format!("{}/healthz", app.url))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(propagated.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn unknown_paths_and_methods_get_problem_documents() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let missing = app.get("/no/such/path").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
    let wrong_method = app.client.delete(format!("{}/v1/users", app.url)).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn swagger_ui_and_the_openapi_document_are_served_from_the_binary() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let docs = app.get("/docs/").await;
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    for path in [
        "/v1/users",
        "/v1/auth/login",
        "/v1/auth/logout",
        "/oauth2/token",
        "/oauth2/revoke",
        "/oauth2/introspect",
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/v1/revocations",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} undocumented");
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let url = format!("{}{}", app.url, path.replace("{id}", "x"));
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app.client.request(method.clone(), url).send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            // 404/405 from the router's fallback would mean a documented route does not exist.
            assert!(
                status != 405
                    && !(status == 404 && body.contains("\"title\":\"Not Found\"") && !path.contains('{')),
                "{method} {path} -> {status}"
            );
        }
    }
}

/// Routes are registered only through `utoipa_axum::routes!`, which refuses a handler without
/// `#[utoipa::path]` at compile time. This test fails when someone adds a plain `.route(` (an
/// undocumented route) to any of the crates' sources.
#[test]
fn routes_are_only_registered_through_documented_handlers() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut offenders = Vec::new();
    for crate_dir in ["auth-server", "users-service", "orders-service", "shared-auth"] {
        let mut stack = vec![root.join(crate_dir).join("src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|ext| ext == "rs") {
                    let source = std::fs::read_to_string(&path).unwrap();
                    for (number, line) in source.lines().enumerate() {
                        if line.contains(".route(")
                            || line.contains(".route_service(")
                            || line.contains(".nest(")
                        {
                            offenders.push(format!("{}:{}", path.display(), number + 1));
                        }
                    }
                }
            }
        }
    }
    assert!(offenders.is_empty(), "undocumented routes: {offenders:?}");
}

/// The token endpoint's documented form is the one the server parses: one branch per grant that
/// discovery advertises, each with that grant's own parameters, plus the form's client
/// credentials.
#[tokio::test]
async fn the_token_form_documents_every_advertised_grant_with_its_own_parameters() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let metadata: Value = app.get("/.well-known/oauth-authorization-server").await.json().await.unwrap();
    let schemas = &spec["components"]["schemas"];
    let resolve = |schema: &Value| -> Value {
        match schema["$ref"].as_str() {
            Some(reference) => schemas[reference.rsplit('/').next().unwrap()].clone(),
            None => schema.clone(),
        }
    };
    let form = resolve(
        &spec["paths"]["/oauth2/token"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
            ["schema"],
    );
    let parts = form["allOf"].as_array().expect("grant parameters and client credentials");
    let credentials = resolve(&parts[1]);
    assert!(credentials["properties"].get("client_secret").is_some(), "{credentials}");

    // Each branch: the grant's parameter schema and its `grant_type` value.
    let mut documented = std::collections::BTreeMap::new();
    for branch in parts[0]["oneOf"].as_array().unwrap() {
        let [params, tag] = branch["allOf"].as_array().unwrap().as_slice() else { panic!("{branch}") };
        let grant_type = tag["properties"]["grant_type"]["enum"][0].as_str().unwrap().to_owned();
        let properties: Vec<String> =
            resolve(params)["properties"].as_object().unwrap().keys().cloned().collect();
        documented.insert(grant_type, properties);
    }
    let advertised: Vec<&str> = metadata["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|value| value.as_str().unwrap())
        .collect();
    assert_eq!(documented.len(), advertised.len(), "{documented:?}");
    for grant_type in &advertised {
        assert!(documented.contains_key(*grant_type), "{grant_type} undocumented: {documented:?}");
    }
    assert!(documented["refresh_token"].contains(&"refresh_token".to_owned()), "{documented:?}");
    assert!(documented["client_credentials"].contains(&"audience".to_owned()), "{documented:?}");
    let exchange = &documented["urn:ietf:params:oauth:grant-type:token-exchange"];
    for parameter in ["subject_token", "subject_token_type", "audience", "resource", "scope"] {
        assert!(exchange.contains(&parameter.to_owned()), "{parameter}: {documented:?}");
    }
}

/// DESIGN.md "CORS": discovery, the key set, token, revocation and userinfo answer the listed
/// browser origin (preflights too, cached); the hosted pages, introspection and the account
/// API do not; another origin gets nothing.
#[tokio::test]
async fn browser_endpoints_answer_cors_for_the_listed_origin_only() {
    const ORIGIN: &str = "http://127.0.0.1:8083";
    let app = TestApp::start_with(testkit::TestDatabase::sqlite(), |config| {
        config.server.cors_allowed_origins = vec![ORIGIN.to_owned()];
    })
    .await;
    let preflight = |path: &str, origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type, dpop")
            .send()
    };
    for path in ["/oauth2/token", "/oauth2/revoke", "/oauth2/userinfo", "/.well-known/jwks.json"] {
        let response = preflight(path, ORIGIN).await.unwrap();
        assert_eq!(response.headers().get("access-control-allow-origin").unwrap(), ORIGIN, "{path}");
        assert_eq!(response.headers()["access-control-max-age"], "600", "{path}");
        let refused = preflight(path, "http://evil.example").await.unwrap();
        assert!(refused.headers().get("access-control-allow-origin").is_none(), "{path}");
    }
    for path in ["/.well-known/openid-configuration", "/v1/revocations", "/readyz"] {
        let response =
            app.client.get(format!("{}{path}", app.url)).header("origin", ORIGIN).send().await.unwrap();
        assert_eq!(response.headers().get("access-control-allow-origin").unwrap(), ORIGIN, "{path}");
        assert!(response.headers().get("access-control-allow-credentials").is_none(), "{path}");
    }
    for path in ["/oauth2/login", "/oauth2/introspect", "/v1/auth/login", "/oauth2/authorize"] {
        let response = preflight(path, ORIGIN).await.unwrap();
        assert!(response.headers().get("access-control-allow-origin").is_none(), "{path} answers CORS");
    }
}
