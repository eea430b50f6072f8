//! Swagger UI on users-service's `/docs`: "Authorize" runs the authorization code flow with
//! PKCE as the public client `swagger-ui` in a popup, then "Try it out" on `GET /v1/users/me`
//! answers 200.

use crate::harness::{Browser, DEMO_USER, Platform, PlatformOptions, log_in_on_the_hosted_page};

#[tokio::test]
async fn swagger_ui_authorizes_with_the_code_flow_and_tries_get_users_me() {
    let Some(mut browser) = Browser::launch("swagger_ui").await else { return };
    let platform = Platform::start(PlatformOptions::default()).await;
    let (users, auth) = (platform.url("users-service"), platform.auth_url());

    browser.goto(&format!("{users}/docs")).await;
    browser.click(".auth-wrapper .authorize").await;
    browser.find(".modal-ux").await;
    // The dialog lists the bearer scheme and the oauth2 one; the latter has a client id field,
    // prefilled with swagger-ui, and the scopes to tick.
    let oauth = ".modal-ux .auth-container:has(input[data-name=clientId])";
    let client_id = browser.find(&format!("{oauth} input[data-name=clientId]")).await;
    assert_eq!(client_id.prop("value").await.unwrap().as_deref(), Some("swagger-ui"));
    for scope in ["openid", "profile:read"] {
        browser.click(&format!("{oauth} label[for='{scope}-authorizationCode-checkbox-oauth2']")).await;
    }
    browser.screenshot("swagger-authorize").await;

    let main = browser.client.window().await.unwrap();
    browser.click(&format!("{oauth} button.authorize")).await;
    let opened = std::time::Instant::now();
    let popup = loop {
        assert!(opened.elapsed() < crate::harness::STEP_TIMEOUT, "Authorize opened no popup");
        let windows = browser.client.windows().await.unwrap();
        if let Some(popup) = windows.into_iter().find(|window| *window != main) {
            break popup;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    browser.client.switch_to_window(popup).await.unwrap();
    log_in_on_the_hosted_page(&browser, &auth, DEMO_USER).await;
    // The popup lands on /docs/oauth2-redirect.html, hands the code to the opener and closes.
    let deadline = std::time::Instant::now() + crate::harness::STEP_TIMEOUT;
    while browser.client.windows().await.unwrap().len() > 1 {
        assert!(std::time::Instant::now() < deadline, "the popup did not close");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    browser.client.switch_to_window(main).await.unwrap();
    browser
        .wait_until(
            "Swagger UI holds a token (the oauth2 scheme shows Logout)",
            "return [...document.querySelectorAll('.modal-ux button')].some((b) => b.textContent.trim() === 'Logout')",
        )
        .await;
    browser.click(".modal-ux button.close-modal").await;

    let operation = ".opblock.opblock-get:has([data-path='/v1/users/me'])";
    browser.click(&format!("{operation} .opblock-summary-control")).await;
    browser.click(&format!("{operation} .try-out__btn")).await;
    browser.click(&format!("{operation} .execute")).await;
    browser
        .wait_until(
            "GET /v1/users/me answered 200",
            &format!("return document.querySelector(\"{operation} .live-responses-table tr.response .response-col_status\")?.textContent.trim() === '200'"),
        )
        .await;
    let body = browser
        .text(&format!("{operation} .live-responses-table tr.response .response-col_description pre"))
        .await;
    assert!(body.contains("\"username\": \"demo\""), "the profile of the user who authorized: {body}");
    println!("[swagger ui] Authorize (code + PKCE as swagger-ui), then GET /v1/users/me: 200");

    browser.assert_stayed_on(&platform.origins()).await;
    browser.close().await;
}
