//! The platform's promise, end to end with the real binaries: log in, call the services, stop
//! the auth server, keep working. Each test prints its figures and asserts them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use e2e::{Fault, LoadReport, Stack, StackOptions, steady_stream};
use serde_json::Value;
use shared_auth::claims::ACCESS_TOKEN_TYPE;
use shared_auth::jws::{self, Algorithm, SigningKey};

async fn logged_in(stack: &Stack, name: &str) -> Value {
    stack.register(name, &format!("{name}-password")).await;
    stack.login(name, &format!("{name}-password")).await
}

fn access(token: &Value) -> String {
    token["access_token"].as_str().unwrap().to_owned()
}

fn both_services(stack: &Stack) -> Vec<String> {
    vec![format!("{}/v1/users/me", stack.users_url()), format!("{}/v1/orders", stack.orders_url())]
}

fn kid_of(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap())
            .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_user_registers_logs_in_and_orders_with_the_display_name_fetched_on_their_behalf() {
    let stack = Stack::start(StackOptions::default()).await;
    let token = access(&logged_in(&stack, "alice").await);

    let me = stack.get(&format!("{}/v1/users/me", stack.users_url()), &token).await;
    assert_eq!(me.status(), 200);
    let url = format!("{}/v1/users/me", stack.users_url());
    let renamed = stack
        .http
        .patch(url)
        .bearer_auth(&token)
        .json(&serde_json::json!({"display_name": "Alice Liddell"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);

    let created = stack.order(&token, "coffee beans").await;
    assert_eq!(created.status(), 201);
    let order: Value = created.json().await.unwrap();
    assert_eq!(
        order["customer_name"], "Alice Liddell",
        "fetched from users-service with alice's token exchanged for users-service"
    );

    let orders: Vec<Value> =
        stack.get(&format!("{}/v1/orders", stack.orders_url()), &token).await.json().await.unwrap();
    assert_eq!(orders.len(), 1);
    println!("[happy path] register, login, users/me, rename, order with customer name, list: ok");
}

#[tokio::test]
async fn with_the_auth_server_killed_both_services_serve_a_steady_stream_for_ten_seconds_without_failure() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let token = access(&logged_in(&stack, "bruno").await);
    let before = stack.order(&token, "before").await;
    assert_eq!(before.status(), 201);
    assert_eq!(before.json::<Value>().await.unwrap()["customer_name"], "bruno");
    // Logged in before the outage, but never served by orders-service: nothing exchanged yet.
    let newcomer = access(&logged_in(&stack, "nadia").await);

    stack.kill_auth().await;
    let report =
        steady_stream(&stack.http, &both_services(&stack), &token, 200, 4, Duration::from_secs(10)).await;
    report.print("auth server SIGKILLed, 10 s");

    assert!(report.requests >= 500, "too few requests to mean anything: {}", report.requests);
    assert_eq!(report.failures, 0, "{:?}", report.unexpected);
    // Writes keep working too: the order's name comes from users-service with the token
    // exchanged for bruno before the outage, still cached.
    let created = stack.order(&token, "during the outage").await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.unwrap()["customer_name"], "bruno");
    // Nothing to exchange nadia's token with: her order is taken, without the name.
    let uncached = stack.order(&newcomer, "first order, during the outage").await;
    assert_eq!(uncached.status(), 201);
    assert_eq!(uncached.json::<Value>().await.unwrap()["customer_name"], Value::Null);
}

#[tokio::test]
async fn a_service_restarted_while_the_auth_server_is_down_still_accepts_valid_tokens() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let token = access(&logged_in(&stack, "carla").await);
    stack.kill_auth().await;

    let restarted = Instant::now();
    stack.start_users().await;
    stack.start_orders().await;
    println!("[restart during outage] both services ready again in {:?}", restarted.elapsed());

    let report =
        steady_stream(&stack.http, &both_services(&stack), &token, 200, 2, Duration::from_secs(2)).await;
    report.print("after restart, auth server down");
    assert!(report.requests > 50);
    assert_eq!(report.failures, 0, "{:?}", report.unexpected);
    let ready: Value =
        stack.http.get(format!("{}/readyz", stack.users_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "serving on cached keys must be visible");
}

#[tokio::test]
async fn when_the_auth_server_is_back_refresh_and_new_logins_work() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let tokens = logged_in(&stack, "dario").await;
    stack.kill_auth().await;
    assert_eq!(
        stack.get(&format!("{}/v1/users/me", stack.users_url()), &access(&tokens)).await.status(),
        200
    );

    stack.start_auth().await;
    let refreshed = stack.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    assert_eq!(
        stack.get(&format!("{}/v1/orders", stack.orders_url()), &access(&refreshed)).await.status(),
        200
    );
    let fresh = stack.login("dario", "dario-password").await;
    assert_eq!(stack.get(&format!("{}/v1/users/me", stack.users_url()), &access(&fresh)).await.status(), 200);
    println!("[auth server back] refresh: 200, new login: 200");
}

#[tokio::test]
async fn key_rotation_while_traffic_flows_causes_no_failures_and_old_tokens_stay_valid() {
    let options = StackOptions { key_prepublish_secs: 3, ..StackOptions::default() };
    let stack = Stack::start(options).await;
    let old = access(&logged_in(&stack, "elena").await);
    let old_kid = kid_of(&old);

    let traffic = {
        let http = stack.http.clone();
        let urls = both_services(&stack);
        let old = old.clone();
        tokio::spawn(async move { steady_stream(&http, &urls, &old, 200, 2, Duration::from_secs(8)).await })
    };
    let rotated: Value = serde_json::from_str(&stack.auth_cli(&["keys", "rotate"]).await).unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();

    // Keep logging in across the switch; every new token must work at once on both services.
    let mut new_tokens = LoadReport::default();
    let mut saw_new_key = false;
    let deadline = Instant::now() + Duration::from_secs(7);
    while Instant::now() < deadline {
        let token = access(&stack.login("elena", "elena-password").await);
        saw_new_key |= kid_of(&token) == new_kid;
        for url in both_services(&stack) {
            let started = Instant::now();
            let status = stack.get(&url, &token).await.status();
            new_tokens.requests += 1;
            new_tokens.worst = new_tokens.worst.max(started.elapsed());
            if status != 200 {
                new_tokens.failures += 1;
                new_tokens.unexpected.push(format!("{url} ({}) -> {status}", kid_of(&token)));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let old_traffic = traffic.await.unwrap();
    old_traffic.print("rotation: token signed before");
    new_tokens.print("rotation: tokens issued across the switch");

    assert!(saw_new_key, "the new key ({new_kid}) never started signing");
    assert_ne!(old_kid, new_kid);
    assert_eq!(old_traffic.failures, 0, "{:?}", old_traffic.unexpected);
    assert_eq!(new_tokens.failures, 0, "{:?}", new_tokens.unexpected);
}

#[tokio::test]
async fn a_thousand_tokens_with_forged_kids_cost_the_auth_server_at_most_two_key_set_fetches() {
    let options =
        StackOptions { jwks_cache_max_age_secs: 300, jwks_refresh_min_secs: 300, ..StackOptions::default() };
    let stack = Stack::start(options).await;
    let valid = access(&logged_in(&stack, "fabio").await);
    let before = stack.proxy.jwks_fetches();

    let attacker = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let mut claims: Value = {
        use base64::Engine as _;
        let payload = valid.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
            .unwrap()
    };
    claims["sub"] = "attacker".into();
    let forged: Vec<String> = (0..1000)
        .map(|i| jws::sign_compact(&attacker, &format!("forged-{i}"), ACCESS_TOKEN_TYPE, &claims).unwrap())
        .collect();
    let started = Instant::now();
    let url = format!("{}/v1/users/me", stack.users_url());
    let requests = forged.iter().map(|token| stack.get(&url, token));
    let responses = futures_util::future::join_all(requests).await;
    let elapsed = started.elapsed();
    let rejected = responses.iter().filter(|response| response.status() == 401).count();
    let fetches = stack.proxy.jwks_fetches() - before;
    println!(
        "[forged kids] tokens: 1000, rejected with 401: {rejected}, key-set fetches: {fetches}, took {elapsed:?}"
    );

    assert_eq!(rejected, 1000);
    assert!(fetches <= 2, "{fetches} key-set fetches for 1000 forged kids");
    assert_eq!(stack.get(&url, &valid).await.status(), 200);
    // The flood is visible to operators.
    let metrics =
        stack.http.get(format!("{}/metrics", stack.users_url())).send().await.unwrap().text().await.unwrap();
    let counter = |name: &str| {
        metrics
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert_eq!(counter("unknown_kid_total"), Some(1000.0), "{metrics}");
    assert_eq!(counter(r#"token_rejections_total{reason="unknown_kid"}"#), Some(1000.0), "{metrics}");
    assert!(
        counter("jwks_age_seconds").is_some()
            && counter(r#"jwks_refresh_total{outcome="success"}"#).is_some()
    );
}

#[tokio::test]
async fn key_set_faults_never_fail_valid_tokens_and_latency_stays_bounded() {
    let stack = Stack::start(StackOptions::default()).await;
    let token = access(&logged_in(&stack, "greta").await);
    let urls = both_services(&stack);
    for fault in [Fault::ServerError, Fault::Garbage, Fault::Huge, Fault::Hang] {
        stack.proxy.set_fault(fault);
        let fetches_before = stack.proxy.jwks_fetches();
        let report = steady_stream(&stack.http, &urls, &token, 200, 2, Duration::from_secs(3)).await;
        report.print(&format!("key-set fault {fault:?}"));
        assert!(stack.proxy.jwks_fetches() > fetches_before, "{fault:?}: services never hit the fault");
        assert_eq!(report.failures, 0, "{fault:?}: {:?}", report.unexpected);
        // Requests never wait for a key-set fetch: the fetch timeout is 500 ms, and even that
        // is paid by the background task, not by requests with a known key.
        assert!(report.worst < Duration::from_secs(1), "{fault:?}: worst latency {:?}", report.worst);
    }
    stack.proxy.set_fault(Fault::None);
}

#[tokio::test]
async fn after_logout_both_services_reject_the_session_within_the_poll_interval_even_while_the_auth_server_is_down()
 {
    let mut stack = Stack::start(StackOptions::default()).await; // revocation poll: 1 s
    let token = access(&logged_in(&stack, "hugo").await);
    for url in both_services(&stack) {
        assert_eq!(stack.get(&url, &token).await.status(), 200);
    }
    let logout = stack
        .http
        .post(format!("{}/v1/auth/logout", stack.auth_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let logged_out = Instant::now();

    let mut rejected_after = Vec::new();
    for url in both_services(&stack) {
        loop {
            if stack.get(&url, &token).await.status() == 401 {
                rejected_after.push(logged_out.elapsed());
                break;
            }
            assert!(logged_out.elapsed() < Duration::from_secs(5), "{url} still accepts a logged-out token");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    println!(
        "[logout] rejected by users-service after {:?}, orders-service after {:?} (poll interval 1 s)",
        rejected_after[0], rejected_after[1]
    );
    assert!(rejected_after.iter().all(|delay| *delay <= Duration::from_millis(2500)));

    stack.kill_auth().await;
    stack.start_users().await; // restart during the outage: the list comes back from disk
    let report =
        steady_stream(&stack.http, &both_services(&stack), &token, 401, 2, Duration::from_secs(2)).await;
    report.print("logged-out token while the auth server is down");
    assert_eq!(report.failures, 0, "{:?}", report.unexpected);
}

#[tokio::test]
async fn concurrent_refreshes_with_one_refresh_token_yield_exactly_one_success() {
    let stack = Stack::start(StackOptions::default()).await;
    let tokens = logged_in(&stack, "irene").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let attempts = (0..8).map(|_| stack.refresh(refresh_token));
    let statuses: Vec<u16> =
        futures_util::future::join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();
    println!("[refresh race] 8 concurrent refreshes: {statuses:?}");
    assert_eq!(statuses.iter().filter(|status| **status == 200).count(), 1);
    assert!(statuses.iter().all(|status| *status == 200 || *status == 400));
}
