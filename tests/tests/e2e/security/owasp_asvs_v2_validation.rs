//! OWASP ASVS 5.0 chapter V2, validation: input is validated against what it is for (2.2.1),
//! at the service (2.2.2). Display names and order items are labels other people read, so
//! characters that change how text reads without being seen are refused: bidirectional
//! controls, which reorder what follows them ("Trojan Source", CVE-2021-42574; Unicode
//! UAX #9), and zero-width or invisible characters, which make two different labels look the
//! same (Unicode UTS #39, UTR #36). Each gets 422 and leaves nothing stored.

use reqwest::Method;
use serde_json::{Value, json};

use super::harness::{Case, Expect, OrdersApp, UsersApp, check, check_at};

/// Labels that must be refused, each with what it is.
fn refused_labels() -> Vec<(&'static str, String)> {
    let inside = |character: char| format!("Bob{character}nimda");
    vec![
        ("RIGHT-TO-LEFT OVERRIDE U+202E", inside('\u{202E}')),
        ("U+202E at the start", "\u{202E}nimda".to_owned()),
        ("LEFT-TO-RIGHT OVERRIDE U+202D", inside('\u{202D}')),
        ("LEFT-TO-RIGHT EMBEDDING U+202A", inside('\u{202A}')),
        ("RIGHT-TO-LEFT EMBEDDING U+202B", inside('\u{202B}')),
        ("POP DIRECTIONAL FORMATTING U+202C", inside('\u{202C}')),
        ("LEFT-TO-RIGHT ISOLATE U+2066", inside('\u{2066}')),
        ("RIGHT-TO-LEFT ISOLATE U+2067", inside('\u{2067}')),
        ("FIRST STRONG ISOLATE U+2068", inside('\u{2068}')),
        ("POP DIRECTIONAL ISOLATE U+2069", inside('\u{2069}')),
        ("LEFT-TO-RIGHT MARK U+200E", inside('\u{200E}')),
        ("RIGHT-TO-LEFT MARK U+200F", inside('\u{200F}')),
        ("ARABIC LETTER MARK U+061C", inside('\u{061C}')),
        ("ZERO WIDTH SPACE U+200B", "ad\u{200B}min".to_owned()),
        ("U+200B at the end (not trimmed as a space)", "admin\u{200B}".to_owned()),
        ("only U+200B", "\u{200B}".to_owned()),
        ("ZERO WIDTH NON-JOINER U+200C", "ad\u{200C}min".to_owned()),
        ("ZERO WIDTH JOINER U+200D", "ad\u{200D}min".to_owned()),
        ("WORD JOINER U+2060", "ad\u{2060}min".to_owned()),
        ("INVISIBLE SEPARATOR U+2063", "ad\u{2063}min".to_owned()),
        ("ZERO WIDTH NO-BREAK SPACE (BOM) U+FEFF", "\u{FEFF}admin".to_owned()),
        ("SOFT HYPHEN U+00AD", "ad\u{00AD}min".to_owned()),
        ("LINE SEPARATOR U+2028", "first\u{2028}second".to_owned()),
        ("PARAGRAPH SEPARATOR U+2029", "first\u{2029}second".to_owned()),
        ("ESC (a terminal escape)", "\u{1b}[31mred".to_owned()),
        ("newline", "first\nsecond".to_owned()),
    ]
}

/// Labels of any script that must keep working: the refusal is of invisible characters, not of
/// languages written right to left.
fn accepted_labels() -> [&'static str; 4] {
    ["Zoë Ångström", "مرحبا بالعالم", "שלום", "李小龙 🍕"]
}

/// ASVS 2.2.1 at users-service: `PATCH /v1/users/me` refuses a display name holding a
/// bidirectional control or an invisible character (422, problem+json), and the stored name
/// stays what it was; names in any script, right-to-left ones included, are accepted.
#[tokio::test]
async fn display_names_with_bidi_controls_or_invisible_characters_are_refused() {
    let app = UsersApp::start().await;
    let token = app.token();
    let patch = |name: String, display_name: &str, expect: Expect| {
        Case::token(name, &token, expect).sending(Method::PATCH, json!({"display_name": display_name}))
    };
    let mut cases: Vec<Case> = refused_labels()
        .into_iter()
        .map(|(what, label)| patch(format!("display name with {what}"), &label, Expect::Unprocessable))
        .collect();
    let last_accepted = accepted_labels()[3];
    for label in accepted_labels() {
        cases.push(patch(format!("display name {label:?}"), label, Expect::Accepted));
    }
    check(&app, "ASVS 2.2.1: display names without bidi or invisible characters", cases).await;

    let profile: Value = app
        .http
        .get(format!("{}/v1/users/me", app.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(profile["display_name"], last_accepted, "only accepted names were ever stored");
}

/// ASVS 2.2.1 at orders-service: `POST /v1/orders` refuses an item holding a bidirectional
/// control or an invisible character (422, problem+json) and creates no order; items in any
/// script are created.
#[tokio::test]
async fn order_items_with_bidi_controls_or_invisible_characters_are_refused() {
    let app = OrdersApp::start().await;
    let token = app.token();
    let order = |name: String, item: &str, expect: Expect| {
        Case::token(name, &token, expect)
            .on("/v1/orders")
            .sending(Method::POST, json!({"item": item, "quantity": 1}))
    };
    let mut cases: Vec<Case> = refused_labels()
        .into_iter()
        .map(|(what, label)| order(format!("item with {what}"), &label, Expect::Unprocessable))
        .collect();
    for label in accepted_labels() {
        cases.push(order(format!("item {label:?}"), label, Expect::Status(201)));
    }
    check_at(&app.url, &app.http, "ASVS 2.2.1: order items without bidi or invisible characters", cases)
        .await;

    let orders: Vec<Value> = app
        .http
        .get(format!("{}/v1/orders", app.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut items: Vec<&str> = orders.iter().map(|order| order["item"].as_str().unwrap()).collect();
    items.sort_unstable();
    let mut expected = accepted_labels().to_vec();
    expected.sort_unstable();
    assert_eq!(items, expected, "only the accepted items became orders");
}
