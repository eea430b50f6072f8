//! Registration: validation at the edge, 409 on duplicates, limits before hashing.
use crate::common;

use common::TestApp;
use serde_json::{Value, json};

testkit::on_both_backends! {
    async fn registration_creates_an_account_and_a_duplicate_username_is_a_conflict(database) {
        let app = TestApp::start(database).await;

        let created = app.register("Alice", "correct horse battery").await;
        assert_eq!(created.status(), 201);
        let body: Value = created.json().await.unwrap();
        assert_eq!(body["username"], "alice");
        assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()));

        for again in ["alice", "ALICE"] {
            let duplicate = app.register(again, "another password").await;
            assert_eq!(duplicate.status(), 409);
            assert_eq!(duplicate.headers()["content-type"], "application/problem+json");
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&app.state.pool).await.unwrap();
        assert_eq!(count, 1);
    }

    async fn concurrent_registrations_of_one_name_create_one_account_and_the_rest_get_409(database) {
        // One hashing slot and a 1 ms queue: had the losers queued for a hash they do not need,
        // they would be shed with 503 instead of being told the name is taken.
        let app = TestApp::start_with(database, |config| {
            config.hash_concurrency = Some(1);
            config.hash_queue_timeout_ms = 1;
        })
        .await;
        let attempts = (0..12).map(|_| app.register("racer", "password-racer"));
        let statuses: Vec<u16> = futures_util::future::join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    }
}

#[tokio::test]
async fn passwords_shorter_than_8_characters_are_rejected_with_422() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let response = app.register("bob", "1234567").await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 422);
    assert!(problem["detail"].as_str().unwrap().contains("at least 8"));
}

#[tokio::test]
async fn long_passwords_are_accepted_and_never_truncated_or_case_folded() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let long: String = "Ab1!".repeat(32) + &"é".repeat(500); // 628 characters, > 128
    assert_eq!(app.register("longpass", &long).await.status(), 201);

    assert_eq!(app.login("longpass", &long).await.status(), 200);
    let truncated: String = long.chars().take(128).collect();
    assert_eq!(app.login("longpass", &truncated).await.status(), 401);
    assert_eq!(app.login("longpass", &long.to_lowercase()).await.status(), 401);
    assert_eq!(app.login("longpass", &format!("{long} ")).await.status(), 401);
}

#[tokio::test]
async fn invalid_usernames_are_rejected_with_422() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    for bad in ["ab", "has space", "semi;colon", &"x".repeat(65)] {
        assert_eq!(app.register(bad, "password-ok").await.status(), 422, "{bad}");
    }
}

#[tokio::test]
async fn oversized_bodies_are_rejected_with_413_before_any_hashing() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let huge = "x".repeat(100 * 1024);
    let response = app.register("huge", &huge).await;
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&app.state.pool).await.unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn malformed_json_wrong_content_type_and_missing_fields_are_client_errors() {
    let app = TestApp::start(testkit::TestDatabase::sqlite()).await;
    let url = format!("{}/v1/users", app.url);

    let malformed = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"username\":")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(malformed.headers()["content-type"], "application/problem+json");

    let not_json =
        app.client.post(&url).header("content-type", "text/plain").body("hello").send().await.unwrap();
    assert_eq!(not_json.status(), 415);

    let missing = app.post_json("/v1/users", &json!({"username": "carol"})).await;
    assert_eq!(missing.status(), 422);

    let wrong_type = app.post_json("/v1/users", &json!({"username": 5, "password": ["x"]})).await;
    assert_eq!(wrong_type.status(), 422);
}

#[tokio::test]
async fn saturated_hashing_answers_503_with_retry_after() {
    let app = TestApp::start_with(testkit::TestDatabase::sqlite(), |config| {
        config.hash_concurrency = Some(1);
        config.hash_queue_timeout_ms = 1;
    })
    .await;
    let names: Vec<String> = (0..6).map(|i| format!("user{i}")).collect();
    let attempts = names.iter().map(|name| app.register(name, "password-long-enough"));
    let responses = futures_util::future::join_all(attempts).await;
    let busy: Vec<_> = responses.iter().filter(|response| response.status() == 503).collect();
    assert!(!busy.is_empty(), "expected some 503 with one hashing slot and a 1 ms queue timeout");
    assert!(busy.iter().all(|response| response.headers().contains_key("retry-after")));
    assert!(responses.iter().all(|response| response.status() == 201 || response.status() == 503));
}

testkit::on_both_backends! {
    async fn registrations_are_limited_per_address_across_replicas_for_an_hour(database) {
        let first = TestApp::start_with_clock(database, |config| {
            config.argon2_memory_kib = 1024;
            config.argon2_iterations = 1;
            config.registration_limit_per_hour = 3;
            config.trust_x_forwarded_for = true;
        })
        .await;
        let register_from = |app: &TestApp, address: &'static str, name: String| {
            let request = app
                .client
                .post(format!("{}/v1/users", app.url))
                .header("x-forwarded-for", address)
                .json(&serde_json::json!({"username": name, "password": "long-enough-password"}));
            async move { request.send().await.unwrap() }
        };
        for index in 0..3 {
            assert_eq!(register_from(&first, "192.0.2.1", format!("user-{index}")).await.status(), 201);
        }

        let refused = register_from(&first, "192.0.2.1", "user-3".into()).await;
        let elsewhere = register_from(&first, "192.0.2.2", "user-4".into()).await;

        assert_eq!(refused.status(), 429);
        let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry_after), "{retry_after}");
        assert_eq!(refused.headers()["content-type"], "application/problem+json");
        assert_eq!(elsewhere.status(), 201, "the limit is per address");
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&first.state.pool).await.unwrap();
        assert_eq!(users, 4, "the refused registration stored nothing");

        first.advance(std::time::Duration::from_secs(3600));
        assert_eq!(register_from(&first, "192.0.2.1", "user-5".into()).await.status(), 201, "a new hour");
    }
}

#[tokio::test]
async fn a_second_replica_shares_the_registration_count() {
    let database = testkit::TestDatabase::sqlite();
    let replica_database = database.same_database();
    let limit_to_two = |config: &mut auth_server::config::Config| {
        config.argon2_memory_kib = 1024;
        config.argon2_iterations = 1;
        config.registration_limit_per_hour = 2;
    };
    let first = TestApp::start_with(database, limit_to_two).await;
    let second = TestApp::start_with(replica_database, limit_to_two).await;

    assert_eq!(first.register("ada", "long-enough-password").await.status(), 201);
    assert_eq!(second.register("bea", "long-enough-password").await.status(), 201);
    assert_eq!(first.register("cyd", "long-enough-password").await.status(), 429);
    assert_eq!(second.register("dot", "long-enough-password").await.status(), 429);
}
