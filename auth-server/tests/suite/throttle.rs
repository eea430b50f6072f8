//! Login throttling: locks after repeated failures that reveal nothing, treat unknown users like
//! real ones, cannot be used to lock a victim out of their own address, and expire.
use crate::common;

use std::time::Duration;

use auth_server::config::Config;
use auth_server::throttle::Decision;
use common::TestApp;
use serde_json::json;

/// Throttling does not depend on the hashing cost; cheap hashes keep the tests (and the time
/// they spend inside a one-second lock) short.
fn cheap_hashing(config: &mut Config) {
    config.argon2_memory_kib = 1024;
    config.argon2_iterations = 1;
}

/// A login whose client address, as a trusting proxy would report it, is `forwarded_for`.
async fn login_via_proxy(
    app: &TestApp,
    forwarded_for: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/auth/login", app.url))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

async fn session_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(&app.state.pool).await.unwrap()
}

testkit::on_both_backends! {
    async fn after_five_wrong_passwords_even_the_right_password_gets_a_429_that_reveals_nothing(database) {
        let app = TestApp::start_with(database, cheap_hashing).await;
        assert_eq!(app.register("nora", "nora-password").await.status(), 201);
        for attempt in 1..=5 {
            assert_eq!(app.login("nora", "wrong-password").await.status(), 401, "attempt {attempt}");
        }

        let wrong = app.login("nora", "wrong-password").await;
        let right = app.login("nora", "nora-password").await;

        assert_eq!(wrong.status(), 429);
        assert_eq!(right.status(), 429);
        assert!((1..=2).contains(&retry_after(&wrong)), "{}", retry_after(&wrong));
        assert!((1..=2).contains(&retry_after(&right)));
        assert_eq!(wrong.headers()["content-type"], right.headers()["content-type"]);
        assert_eq!(wrong.bytes().await.unwrap(), right.bytes().await.unwrap());
        assert_eq!(session_count(&app).await, 0, "the right password during a lock logs nobody in");
    }
}

#[tokio::test]
async fn an_unknown_username_is_throttled_exactly_like_a_real_one() {
    let app = TestApp::start_with(testkit::TestDatabase::sqlite(), cheap_hashing).await;
    assert_eq!(app.register("olga", "olga-password").await.status(), 201);

    let mut outcomes = Vec::new();
    for username in ["olga", "nobody-known"] {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(app.login(username, "wrong-password").await.status());
        }
        let locked = app.login(username, "wrong-password").await;
        statuses.push(locked.status());
        let retry = locked.headers().contains_key("retry-after");
        outcomes.push((statuses, retry, locked.bytes().await.unwrap()));
    }

    let (real, unknown) = (&outcomes[0], &outcomes[1]);
    assert_eq!(real.0, [401, 401, 401, 401, 401, 429]);
    assert_eq!(unknown.0, real.0);
    assert!(real.1 && unknown.1, "both locks carry Retry-After");
    assert_eq!(unknown.2, real.2, "the 429 bodies are identical");
}

#[tokio::test]
async fn forwarded_for_headers_are_ignored_unless_the_proxy_is_trusted() {
    let app = TestApp::start_with(testkit::TestDatabase::sqlite(), cheap_hashing).await;
    assert_eq!(app.register("pia", "pia-password").await.status(), 201);
    for attempt in 1..=5 {
        let response = login_via_proxy(&app, &format!("10.0.0.{attempt}"), "pia", "wrong-password").await;
        assert_eq!(response.status(), 401);
    }

    let response = login_via_proxy(&app, "10.0.0.99", "pia", "pia-password").await;

    assert_eq!(response.status(), 429, "every attempt came from the TCP peer 127.0.0.1");
    assert_eq!(session_count(&app).await, 0);
}

#[tokio::test]
async fn an_attacker_spread_over_many_addresses_cannot_lock_the_victim_out_of_a_trusted_address() {
    let app = TestApp::start_with(testkit::TestDatabase::sqlite(), |config| {
        cheap_hashing(config);
        config.trust_x_forwarded_for = true;
    })
    .await;
    assert_eq!(app.register("victim", "victim-password").await.status(), 201);
    assert_eq!(login_via_proxy(&app, "192.0.2.7", "victim", "victim-password").await.status(), 200);

    let mut attack = Vec::new();
    for host in 1..=25 {
        let response = login_via_proxy(&app, &format!("10.0.0.{host}"), "victim", "guess-password").await;
        attack.push(response.status().as_u16());
    }
    let new_address = login_via_proxy(&app, "10.0.0.200", "victim", "victim-password").await;
    let spoofed = login_via_proxy(&app, "192.0.2.7, 10.0.0.201", "victim", "victim-password").await;
    let victim = login_via_proxy(&app, "192.0.2.7", "victim", "victim-password").await;
    let still_locked = login_via_proxy(&app, "10.0.0.202", "victim", "victim-password").await;

    // The account-wide bucket (4 × 5 failures) locks; no single address reached its own limit.
    assert_eq!(attack[..20], [401; 20]);
    assert_eq!(attack[20..], [429; 5]);
    assert_eq!(new_address.status(), 429);
    assert_eq!(spoofed.status(), 429, "only the last X-Forwarded-For entry counts");
    assert_eq!(victim.status(), 200, "the victim's own address is exempt from the account lock");
    assert_eq!(still_locked.status(), 429, "the account was locked throughout the victim's login");
    assert_eq!(session_count(&app).await, 2, "the victim's two logins, nobody else's");
}

#[tokio::test]
async fn a_lock_ends_after_its_retry_after_and_the_right_password_works_again() {
    let app = TestApp::start_with_clock(testkit::TestDatabase::sqlite(), |config| {
        cheap_hashing(config);
        config.login_failure_threshold = 1;
    })
    .await;
    assert_eq!(app.register("quinn", "quinn-password").await.status(), 201);
    assert_eq!(app.login("quinn", "wrong-password").await.status(), 401);
    let locked = app.login("quinn", "quinn-password").await;
    assert_eq!(locked.status(), 429);
    let wait = retry_after(&locked);
    assert!((1..=2).contains(&wait), "{wait}");

    app.advance(Duration::from_secs(wait - 1));
    let still_locked = app.login("quinn", "quinn-password").await;
    app.advance(Duration::from_secs(1));
    let response = app.login("quinn", "quinn-password").await;

    assert_eq!(still_locked.status(), 429, "a second before Retry-After is over");
    assert_eq!(response.status(), 200);
    assert_eq!(session_count(&app).await, 1);
}

#[tokio::test]
async fn a_one_second_lock_is_not_cut_short_by_the_next_clock_tick() {
    let app = TestApp::start_with_clock(testkit::TestDatabase::sqlite(), |config| {
        config.login_failure_threshold = 1;
    })
    .await;
    let address = Some("198.51.100.9".parse().unwrap());
    let begin =
        || async { app.state.throttle.begin("rhea", address, None, app.state.clock.now()).await.unwrap() };
    // Times are whole seconds: a failure late in second t and a look early in second t + 1 are
    // one tick apart however few milliseconds passed between them.
    let Decision::Allow(attempt) = begin().await else {
        panic!("the first attempt is allowed");
    };
    app.state.throttle.record_failure(attempt, app.state.clock.now()).await.unwrap();

    app.advance(Duration::from_secs(1));
    let next_tick = begin().await;
    app.advance(Duration::from_secs(1));
    let after_the_lock = begin().await;

    assert!(matches!(next_tick, Decision::Locked { .. }), "a 1 s lock ended at the next tick: {next_tick:?}");
    assert!(matches!(after_the_lock, Decision::Allow(_)), "{after_the_lock:?}");
}

testkit::on_both_backends! {
    async fn parallel_guesses_get_exactly_the_threshold_of_password_checks(database) {
        let app = TestApp::start_with(database, cheap_hashing).await;
        assert_eq!(app.register("sami", "sami-password").await.status(), 201);

        // Forty guesses at once: each is counted before its password is hashed, so only the
        // first five (the threshold) reach the password check however the requests interleave.
        let mut guesses = tokio::task::JoinSet::new();
        for guess in 0..40 {
            let (client, url) = (app.client.clone(), app.url.clone());
            guesses.spawn(async move {
                let body = json!({"username": "sami", "password": format!("guess-number-{guess}")});
                client.post(format!("{url}/v1/auth/login")).json(&body).send().await.unwrap().status().as_u16()
            });
        }
        let mut statuses = guesses.join_all().await;
        statuses.sort_unstable();

        assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
        assert_eq!(statuses[5..], [429; 35], "{statuses:?}");
        assert_eq!(session_count(&app).await, 0);
    }
}

#[tokio::test]
async fn successful_logins_take_their_attempts_back() {
    // Threshold 1: an address locks after 10 failures in its window.
    let app = TestApp::start_with(testkit::TestDatabase::sqlite(), |config| {
        cheap_hashing(config);
        config.login_failure_threshold = 1;
    })
    .await;
    assert_eq!(app.register("tess", "tess-password").await.status(), 201);
    for login in 1..=12 {
        assert_eq!(app.login("tess", "tess-password").await.status(), 200, "login {login}");
    }

    // Had the twelve successes stayed counted, the address bucket would lock at the first failure.
    let mut failures = Vec::new();
    for name in ["ulla", "vera", "wilma"] {
        failures.push(app.login(name, "wrong-password").await.status().as_u16());
    }

    assert_eq!(failures, [401, 401, 401]);
}

#[tokio::test]
async fn an_abandoned_attempt_is_taken_back() {
    // Threshold 1: the attempt sets a provisional lock on its account + address bucket.
    let app = TestApp::start_with(testkit::TestDatabase::sqlite(), |config| {
        config.login_failure_threshold = 1;
    })
    .await;
    let address = Some("198.51.100.10".parse().unwrap());
    let Decision::Allow(attempt) =
        app.state.throttle.begin("sven", address, None, app.state.clock.now()).await.unwrap()
    else {
        panic!("the first attempt is allowed");
    };

    // The client went away before a verdict: the handler, and the attempt with it, is dropped.
    drop(attempt);
    let pair = "pair:sven|198.51.100.10";
    let mut row: (i64, i64) = (-1, -1);
    for _ in 0..500 {
        row = sqlx::query_as("SELECT failures, locked_until FROM login_failures WHERE bucket = $1")
            .bind(pair)
            .fetch_one(&app.state.pool)
            .await
            .unwrap();
        if row == (0, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    assert_eq!(row, (0, 0), "(failures, locked_until) of the abandoned attempt's bucket");
    assert!(matches!(
        app.state.throttle.begin("sven", address, None, app.state.clock.now()).await.unwrap(),
        Decision::Allow(_)
    ));
}

testkit::on_both_backends! {
    async fn a_flood_from_a_locked_address_adds_no_rows_whatever_names_it_tries(database) {
        // Threshold 1: the address bucket locks after 10 failures.
        let app = TestApp::start_with(database, |config| {
            cheap_hashing(config);
            config.login_failure_threshold = 1;
        })
        .await;
        let rows = || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM login_failures").fetch_one(&app.state.pool).await.unwrap()
        };
        for name in 0..10 {
            assert_eq!(app.login(&format!("name-{name}"), "wrong-password").await.status(), 401);
        }
        assert_eq!(app.login("name-10", "wrong-password").await.status(), 429, "the address is locked");
        let before = rows().await;

        for name in 11..111 {
            assert_eq!(app.login(&format!("name-{name}"), "wrong-password").await.status(), 429);
        }

        assert_eq!(rows().await, before, "100 refused attempts under new names");
    }
}
