//! "Continue with Acme ID" in a real browser: the demo app's login goes through our hosted
//! page to a second auth server's, and comes back logged in as the federated account.

use crate::harness::{
    Browser, Platform, PlatformOptions, log_in_on_the_hosted_page, wait_for_the_app_session,
};

#[tokio::test]
async fn the_demo_app_logs_in_through_continue_with_acme_id() {
    let Some(mut browser) = Browser::launch("federated_login").await else { return };
    let mut platform = Platform::start(PlatformOptions::default()).await;
    let acme = platform.start_acme().await;
    let web = platform.url("demo-web");

    browser.goto(&web).await;
    browser.click("#login").await;
    browser.find("a.provider").await;
    assert_eq!(browser.text("a.provider").await, "Continue with Acme ID");
    browser.click("a.provider").await;
    log_in_on_the_hosted_page(&browser, &acme, (testkit::federation::USER, testkit::federation::PASSWORD))
        .await;
    wait_for_the_app_session(&browser, "acme:acme-user").await;

    assert_eq!(browser.current_url().await, format!("{web}/"), "code and state left the address bar");
    let mut origins = platform.origins();
    origins.push(acme);
    browser.assert_stayed_on(&origins).await;
    println!("[demo app] Continue with Acme ID: logged in as acme:acme-user");
}
