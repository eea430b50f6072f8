//! The hosted login page works with the keyboard alone: focus starts in the username field,
//! Tab walks username → password → the button, Enter submits.

use fantoccini::key::Key;

use crate::harness::{
    Browser, DEMO_USER, Platform, PlatformOptions, wait_for_the_app_session, wait_for_the_hosted_page,
};

#[tokio::test]
async fn the_hosted_login_page_works_by_keyboard_alone() {
    let Some(mut browser) = Browser::launch("login_page").await else { return };
    let platform = Platform::start(PlatformOptions::default()).await;
    let (web, auth) = (platform.url("demo-web"), platform.auth_url());

    browser.goto(&web).await;
    browser.find("#login").await;
    // From the app to the login page by keyboard too: Tab to the button, Enter.
    let mut tabs = 0;
    while browser.focused().await != "button#login" {
        browser.press_tab().await;
        tabs += 1;
        assert!(tabs <= 10, "the login button is not reachable with Tab");
    }
    browser.press(&[Key::Enter.into()]).await;
    wait_for_the_hosted_page(&browser, &auth).await;
    browser.wait_until("the page has loaded", "return document.readyState === 'complete'").await;

    assert_eq!(browser.focused().await, "input#username[username]", "the username field has the focus");
    let labels = browser
        .eval("return ['username', 'password'].every((id) => document.querySelector(`label[for=${id}]`)?.textContent.trim().length > 0)")
        .await;
    assert_eq!(labels, true, "both fields have a label");
    let (username, password) = DEMO_USER;
    browser.type_text(username).await;
    browser.press_tab().await;
    assert_eq!(browser.focused().await, "input#password[password]");
    browser.type_text(password).await;
    browser.press_tab().await;
    assert_eq!(browser.focused().await, "button", "the submit button is next");
    let outline = browser.eval("return getComputedStyle(document.activeElement).outlineStyle").await;
    assert_ne!(outline, "none", "the focused button shows a focus ring");
    browser.press(&[Key::Enter.into()]).await;

    wait_for_the_app_session(&browser, DEMO_USER.0).await;
    println!(
        "[login page] {tabs} Tab(s) to the app's login button; username, Tab, password, Tab, Enter: logged in"
    );

    browser.assert_stayed_on(&platform.origins()).await;
    browser.close().await;
}
