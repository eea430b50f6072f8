//! The demo app's whole story in one tab: log in, profile, orders; the auth server stops and the
//! tab keeps working; it starts again and the app refreshes past the token's expiry; logout
//! reaches both services.

use std::time::{Duration, Instant};

use crate::harness::{
    Browser, DEMO_USER, Platform, PlatformOptions, Request, STEP_TIMEOUT, log_in_on_the_hosted_page,
    wait_for_the_app_session,
};

/// Short, so the test can wait for expiry; long enough for the outage part to run on one token.
const ACCESS_TOKEN_TTL_SECS: u64 = 25;

/// The number of orders listed, once it equals `count`, and the newest one's text.
async fn wait_for_orders(browser: &Browser, count: usize, newest: &str) {
    browser
        .wait_until(
            &format!("{count} orders listed, the newest {newest:?}"),
            &format!(
                "const items = document.querySelectorAll('#orders li'); \
                 return items.length === {count} && items[0].textContent.includes({newest:?});"
            ),
        )
        .await;
}

async fn create_order(browser: &Browser, item: &str) {
    browser.fill("#order-item", item).await;
    browser.click("#create-order").await;
}

async fn state_of(browser: &Browser, service: &str) -> String {
    let value = browser
        .eval(&format!("return document.querySelector('#status [data-service={service:?}]').dataset.state"))
        .await;
    value.as_str().unwrap_or_default().to_owned()
}

/// Requests since `mark` to `base` that did not get a 2xx.
fn failed_since<'a>(requests: &'a [Request], mark: usize, base: &str) -> Vec<&'a Request> {
    requests
        .iter()
        .filter(|request| request.seq >= mark && request.is_under(base) && request.method != "OPTIONS")
        .filter(|request| !request.status.is_some_and(|status| (200..300).contains(&status)))
        .collect()
}

#[tokio::test]
async fn the_demo_app_logs_in_keeps_working_through_an_auth_outage_refreshes_and_logs_out() {
    let Some(mut browser) = Browser::launch("demo_app").await else { return };
    let mut platform = Platform::start(PlatformOptions {
        access_token_ttl_secs: ACCESS_TOKEN_TTL_SECS,
        ..PlatformOptions::default()
    })
    .await;
    let (web, auth) = (platform.url("demo-web"), platform.auth_url());
    let (users, orders) = (platform.url("users-service"), platform.url("orders-service"));

    // 1. Log in through the hosted page, see the profile, rename, order.
    browser.goto(&web).await;
    browser.click("#login").await;
    browser.find("input[name=username]").await;
    browser.screenshot("login-page").await;
    log_in_on_the_hosted_page(&browser, &auth, DEMO_USER).await;
    let logged_in_at = Instant::now();
    wait_for_the_app_session(&browser, DEMO_USER.0).await;
    assert_eq!(browser.current_url().await, format!("{web}/"), "code and state left the address bar");
    browser.fill("#display-name-input", "Demo in a browser").await;
    browser.click("#save-display-name").await;
    browser
        .wait_until(
            "the new display name",
            "return document.getElementById('profile-name').textContent === 'Demo in a browser'",
        )
        .await;
    create_order(&browser, "coffee beans").await;
    wait_for_orders(&browser, 1, "coffee beans").await;
    for service in ["auth-server", "users-service", "orders-service"] {
        browser
            .wait_until(&format!("{service} ready"), &format!("return document.querySelector('#status [data-service={service:?}]').dataset.state === 'ready'"))
            .await;
    }
    browser.screenshot("demo-app-orders").await;
    println!("[demo app] logged in, profile shown and renamed, one order listed, strip all ready");

    // 2. The auth server stops: the same tab keeps reading and ordering, the strip turns
    //    degraded, and no call to a service fails.
    let before_outage = browser.mark().await;
    platform.kill_auth().await;
    let noticed = browser
        .wait_until_for(
            "the strip shows the outage",
            "const s = (n) => document.querySelector(`#status [data-service=\"${n}\"]`).dataset.state; \
             return s('auth-server') === 'unavailable' && s('users-service') === 'degraded' \
                 && s('orders-service') === 'degraded' && isShown(document.getElementById('outage'));",
            STEP_TIMEOUT,
        )
        .await;
    create_order(&browser, "ordered during the outage").await;
    wait_for_orders(&browser, 2, "ordered during the outage").await;
    browser.fill("#display-name-input", "Renamed during the outage").await;
    browser.click("#save-display-name").await;
    browser
        .wait_until(
            "renamed during the outage",
            "return document.getElementById('profile-name').textContent === 'Renamed during the outage'",
        )
        .await;
    assert_eq!(state_of(&browser, "users-service").await, "degraded");
    browser.screenshot("demo-app-outage").await;
    let requests = browser.requests().await.to_vec();
    let to_services: Vec<&Request> = requests
        .iter()
        .filter(|r| {
            r.seq >= before_outage && (r.is_under(&users) || r.is_under(&orders)) && r.method != "OPTIONS"
        })
        .collect();
    let api_calls = to_services.iter().filter(|r| r.url.contains("/v1/")).count();
    assert!(api_calls >= 2, "the order and the rename went out: {to_services:#?}");
    let failed: Vec<&Request> =
        [failed_since(&requests, before_outage, &users), failed_since(&requests, before_outage, &orders)]
            .concat();
    assert!(failed.is_empty(), "calls to the services failed during the outage: {failed:#?}");
    let auth_refused = requests
        .iter()
        .filter(|r| r.seq >= before_outage && r.is_under(&auth) && r.failure.is_some())
        .count();
    assert!(auth_refused >= 1, "the strip asked the stopped auth server and was refused");
    println!(
        "[demo app] auth server killed: strip degraded after {noticed:?}; {} calls to the services \
         ({api_calls} API calls), 0 failed; {auth_refused} refused calls to the auth server",
        to_services.len()
    );

    // 3. The auth server starts again; once the access token has expired, the next call gets a
    //    401, the app refreshes (the rotated refresh token) and retries.
    platform.start_auth().await;
    browser
        .wait_until_for("the strip sees the auth server back", "return document.querySelector('#status [data-service=\"auth-server\"]').dataset.state === 'ready'", STEP_TIMEOUT)
        .await;
    let expiry = Duration::from_secs(ACCESS_TOKEN_TTL_SECS + 1);
    if let Some(left) = expiry.checked_sub(logged_in_at.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let before_refresh = browser.mark().await;
    create_order(&browser, "ordered after the token expired").await;
    wait_for_orders(&browser, 3, "ordered after the token expired").await;
    let requests = browser.requests().await.to_vec();
    let after: Vec<&Request> =
        requests.iter().filter(|r| r.seq >= before_refresh && r.method != "OPTIONS").collect();
    let rejected = after.iter().position(|r| r.is_under(&orders) && r.status == Some(401));
    let refreshed =
        after.iter().position(|r| r.url == format!("{auth}/oauth2/token") && r.status == Some(200));
    let created = after.iter().rposition(|r| {
        r.is_under(&format!("{orders}/v1/orders")) && r.method == "POST" && r.status == Some(201)
    });
    let sequence = after.iter().map(|r| r.describe()).collect::<Vec<_>>();
    assert!(
        matches!((rejected, refreshed, created), (Some(a), Some(b), Some(c)) if a < b && b < c),
        "expected 401, refresh, then 201: {sequence:#?}"
    );
    println!("[demo app] token expired after {:?}: 401, refresh, retried order 201", logged_in_at.elapsed());

    // 4. Logout through the end_session_endpoint: both services reject the last access token
    //    within one revocation poll. The token is DPoP-bound, so from outside the page it only
    //    shows which check refuses it: the proof (wrong key) while the token is good, the token
    //    itself once it is revoked.
    let token = requests
        .iter()
        .rev()
        .filter(|r| r.is_under(&users) || r.is_under(&orders))
        .find_map(|r| r.authorization.clone())
        .and_then(|header| header.strip_prefix("DPoP ").map(str::to_owned))
        .expect("the app sent a DPoP-bound token");
    let me = format!("{users}/v1/users/me");
    let my_orders = format!("{orders}/v1/orders");
    let before = platform.copied_token_answer(&me, &token).await;
    assert_eq!(before, (401, "invalid_dpop_proof".to_owned()), "the token is still good before logout");
    browser.click("#logout").await;
    browser
        .wait_until("logged out, back in the app", "return isShown(document.getElementById('login'))")
        .await;
    let logged_out = Instant::now();
    assert_eq!(browser.current_url().await, format!("{web}/"));
    assert_eq!(browser.text("#message").await, "You are logged out.");
    let poll = Duration::from_secs(platform.options.revocation_poll_secs);
    loop {
        let revoked = (401, "invalid_token".to_owned());
        let statuses = (
            platform.copied_token_answer(&me, &token).await,
            platform.copied_token_answer(&my_orders, &token).await,
        );
        if statuses == (revoked.clone(), revoked) {
            break;
        }
        assert!(
            logged_out.elapsed() < poll + Duration::from_secs(2),
            "still accepted after logout: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "[demo app] logout: both services reject the old token {:?} after it (poll {poll:?})",
        logged_out.elapsed()
    );

    browser.assert_stayed_on(&platform.origins()).await;
    browser.close().await;
}
