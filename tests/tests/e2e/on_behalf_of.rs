//! On-behalf-of calls with the real binaries: orders-service exchanges the customer's token
//! (RFC 8693) for one meant for users-service, which serves it as the customer; ending the
//! customer's session makes users-service refuse the exchanged token within one revocation
//! poll, because it carries the session's `sid`.

use std::time::{Duration, Instant};

use e2e::{ORDERS_CLIENT_SECRET, Stack, StackOptions};
use serde_json::Value;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Exchanges `user_token` as orders-service (the client demo-seed registered) for users-service.
async fn exchange_as_orders_service(stack: &Stack, user_token: &str) -> reqwest::Response {
    stack
        .http
        .post(format!("{}/oauth2/token", stack.auth_url()))
        .basic_auth("orders-service", Some(ORDERS_CLIENT_SECRET))
        .form(&[
            ("grant_type", GRANT),
            ("subject_token", user_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("audience", "users-service"),
        ])
        .send()
        .await
        .unwrap()
}

/// The value of the first sample of `metric` whose labels contain `label`, in a Prometheus page.
fn sample(metrics: &str, metric: &str, label: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(metric) && line.contains(label))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn an_order_gets_the_name_through_an_exchanged_token_which_logout_revokes_within_one_poll() {
    let stack = Stack::start(StackOptions::default()).await; // revocation poll: 1 s
    stack.register("olga", "olga-password").await;
    let login = stack.login("olga", "olga-password").await;
    let user_token = login["access_token"].as_str().unwrap();
    let renamed = stack
        .http
        .patch(format!("{}/v1/users/me", stack.users_url()))
        .bearer_auth(user_token)
        .json(&serde_json::json!({"display_name": "Olga O."}))
        .send()
        .await
        .unwrap();
    let user_id = renamed.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    // orders-service holds no users:read (demo-seed): only an exchanged token can read the name.
    let created = stack.order(user_token, "samovar").await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.unwrap()["customer_name"], "Olga O.");
    let metrics = stack.http.get(format!("{}/metrics", stack.auth_url())).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let exchanges = sample(&metrics, "token_requests_total", &format!(r#"grant_type="{GRANT}""#));
    assert_eq!(exchanges, Some(1.0), "one exchange at the auth server: {metrics}");

    // The same exchange, made here: the token users-service got.
    let exchanged = exchange_as_orders_service(&stack, user_token).await;
    assert_eq!(exchanged.status(), 200);
    let exchanged: Value = exchanged.json().await.unwrap();
    let exchanged = exchanged["access_token"].as_str().unwrap().to_owned();
    let profile_url = format!("{}/v1/users/{user_id}", stack.users_url());
    let profile = stack.get(&profile_url, &exchanged).await;
    assert_eq!(profile.status(), 200);
    assert_eq!(profile.json::<Value>().await.unwrap()["display_name"], "Olga O.");
    let elsewhere = stack.get(&format!("{}/v1/orders", stack.orders_url()), &exchanged).await;
    assert_eq!(elsewhere.status(), 401, "the exchanged token is for users-service only");

    let logout = stack
        .http
        .post(format!("{}/v1/auth/logout", stack.auth_url()))
        .bearer_auth(user_token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let logged_out = Instant::now();
    loop {
        if stack.get(&profile_url, &exchanged).await.status() == 401 {
            break;
        }
        assert!(
            logged_out.elapsed() < Duration::from_secs(5),
            "users-service still accepts the exchanged token"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rejected_after = logged_out.elapsed();
    println!(
        "[on behalf of] exchanged token rejected by users-service {rejected_after:?} after logout (poll 1 s)"
    );
    assert!(rejected_after <= Duration::from_millis(2500), "{rejected_after:?}");
    assert_eq!(exchange_as_orders_service(&stack, user_token).await.status(), 400, "nor exchanged again");
}
