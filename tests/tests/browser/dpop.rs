//! The demo app's tokens are DPoP-bound (RFC 9449) to a key its page made with Web Crypto and
//! cannot export: the page works with them, and the same token copied out of the page (here,
//! out of the browser's network log) is refused by the services however it is sent.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use shared_auth::dpop::token_hash;

use crate::harness::{
    Browser, DEMO_USER, Platform, PlatformOptions, challenge_error, log_in_on_the_hosted_page,
    wait_for_the_app_session,
};

fn json_part(jws: &str, index: usize) -> Value {
    let part = jws.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn order_in_the_page(browser: &Browser, item: &str) {
    browser.fill("#order-item", item).await;
    browser.click("#create-order").await;
    browser
        .wait_until(
            &format!("the order {item:?} listed"),
            &format!("return document.querySelector('#orders li')?.textContent.includes({item:?}) === true"),
        )
        .await;
}

#[tokio::test]
async fn the_demo_apps_tokens_work_in_the_page_and_nowhere_else() {
    let Some(mut browser) = Browser::launch("dpop").await else { return };
    let platform = Platform::start(PlatformOptions::default()).await;
    let (web, auth, orders) = (platform.url("demo-web"), platform.auth_url(), platform.url("orders-service"));

    // 1. Log in and order: every call of the page carries the DPoP scheme and a proof.
    browser.goto(&web).await;
    browser.click("#login").await;
    log_in_on_the_hosted_page(&browser, &auth, DEMO_USER).await;
    wait_for_the_app_session(&browser, DEMO_USER.0).await;
    order_in_the_page(&browser, "bound to this page").await;
    let thumbprint = browser.text("#dpop-thumbprint").await;
    assert_eq!(browser.text("#dpop-extractable").await, "no", "the private key is not extractable");
    browser.screenshot("demo-app-dpop").await;

    let create = format!("{orders}/v1/orders");
    let requests = browser.requests().await.to_vec();
    let sent = requests
        .iter()
        .rev()
        .find(|request| request.url == create && request.method == "POST" && request.status == Some(201))
        .unwrap_or_else(|| panic!("the page created an order: {requests:#?}"));
    let token = sent.authorization.as_deref().and_then(|header| header.strip_prefix("DPoP ")).unwrap();
    let proof = sent.dpop.clone().expect("a DPoP proof with the call");
    let token_requests: Vec<_> = requests
        .iter()
        .filter(|request| request.url == format!("{auth}/oauth2/token") && request.method == "POST")
        .collect();
    assert!(
        !token_requests.is_empty() && token_requests.iter().all(|request| request.dpop.is_some()),
        "every token request carried a proof: {token_requests:#?}"
    );

    // 2. The token names the page's key, and the proof is for this request, signed by that key.
    assert_eq!(json_part(token, 1)["cnf"]["jkt"], thumbprint.as_str(), "cnf.jkt is the page's key");
    let (header, claims) = (json_part(&proof, 0), json_part(&proof, 1));
    assert_eq!((header["typ"].as_str(), header["alg"].as_str()), (Some("dpop+jwt"), Some("ES256")));
    assert!(header["jwk"].get("d").is_none(), "the proof carries the public key only");
    assert_eq!((claims["htm"].as_str(), claims["htu"].as_str()), (Some("POST"), Some(create.as_str())));
    assert_eq!(claims["ath"], token_hash(token), "the proof is for this token");
    println!("[dpop] the page's token is bound to its key {thumbprint}; the key is not extractable");

    // 3. Copied out of the page, the token is refused: as a bearer token, with no proof, with
    //    the page's own proof replayed, and with a proof of another key.
    let http = &platform.http;
    let body = serde_json::json!({ "item": "stolen", "quantity": 1 });
    let as_bearer = http.post(&create).bearer_auth(token).json(&body).send().await.unwrap();
    let without_proof =
        http.post(&create).header("Authorization", format!("DPoP {token}")).json(&body).send().await.unwrap();
    let replayed = http
        .post(&create)
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", &proof)
        .json(&body)
        .send()
        .await
        .unwrap();
    let refusals = [
        ("as Bearer", as_bearer.status().as_u16(), challenge_error(&as_bearer)),
        ("without a proof", without_proof.status().as_u16(), challenge_error(&without_proof)),
        ("with the page's proof replayed", replayed.status().as_u16(), challenge_error(&replayed)),
    ];
    let bearer_challenge = as_bearer.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(bearer_challenge.starts_with("DPoP "), "a bound token is told to use DPoP: {bearer_challenge}");
    assert_eq!(
        refusals.map(|(how, status, error)| (how, status, error)),
        [
            ("as Bearer", 401, "invalid_token".to_owned()),
            ("without a proof", 401, "invalid_dpop_proof".to_owned()),
            ("with the page's proof replayed", 401, "invalid_dpop_proof".to_owned()),
        ]
    );
    let other_key =
        platform.copied_token_answer(&format!("{}/v1/users/me", platform.url("users-service")), token).await;
    assert_eq!(other_key, (401, "invalid_dpop_proof".to_owned()), "a proof of another key");
    println!("[dpop] the copied token: 401 as Bearer, without a proof, replayed, and with another key");

    // 4. Nothing of that touched the page's session: it still orders.
    order_in_the_page(&browser, "still working in the page").await;

    browser.assert_stayed_on(&platform.origins()).await;
    browser.close().await;
}
