//! Property tests (proptest) through the real routers with `tower::ServiceExt::oneshot`:
//!
//! - any single-byte change, insertion, deletion or truncation of a genuine token is refused
//!   (400 or 401), never accepted and never a 5xx (RFC 8725 §3.3, ASVS 9.1.1);
//! - any JSON body, well-formed or odd (wrong types, nesting, duplicate members, numbers beyond
//!   i64 and f64, huge strings) sent to every JSON endpoint gets a 2xx or 4xx, never a 5xx
//!   (DESIGN: "No 500 for anything a client can send").
//!
//! Cases per property are in [`CASES`]; failures are not persisted (no regression files in the
//! tree), the failing input is printed instead.

use axum::body::Body;
use axum::http::{HeaderValue, Request, header};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::harness::{AuthApp, KID_EDDSA, KID_ES256, KID_RS256, OrdersApp, UsersApp, oneshot};

/// Cases per property.
const CASES: u32 = 128;

fn runner() -> TestRunner {
    TestRunner::new(Config { cases: CASES, failure_persistence: None, ..Config::default() })
}

/// One edit of a token's bytes.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

/// Bytes an edit writes: mostly base64url and `.`, so edits get past the header syntax check and
/// reach the verifier, sometimes anything at all.
fn edit_byte() -> impl Strategy<Value = u8> {
    let alphabet: Vec<u8> = (b'A'..=b'Z').chain(b'a'..=b'z').chain(b'0'..=b'9').chain(*b"-_.=+/").collect();
    prop_oneof![3 => prop::sample::select(alphabet), 1 => any::<u8>()]
}

fn edit(length: usize) -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..length, edit_byte()).prop_map(|(at, byte)| Edit::Replace(at, byte)),
        (0..=length, edit_byte()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        (0..length).prop_map(Edit::Delete),
        (0..length).prop_map(Edit::Truncate),
    ]
}

fn apply(token: &[u8], edit: &Edit) -> Vec<u8> {
    let mut bytes = token.to_vec();
    match *edit {
        Edit::Replace(at, byte) => bytes[at] = byte,
        Edit::Insert(at, byte) => bytes.insert(at, byte),
        Edit::Delete(at) => {
            bytes.remove(at);
        }
        Edit::Truncate(length) => bytes.truncate(length),
    }
    bytes
}

/// RFC 8725 §3.3 and ASVS 9.1.1 as a property: for genuine EdDSA, ES256 and RS256 tokens, every
/// edit that changes the token is refused with 400 (`invalid_request`, not a b64token any more)
/// or 401 (`invalid_token`), never accepted and never a 5xx.
#[test]
fn no_edit_of_a_genuine_token_is_accepted() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(UsersApp::start());
    let tokens: Vec<String> =
        [KID_EDDSA, KID_ES256, KID_RS256].iter().map(|kid| app.token_signed_by(kid)).collect();
    let lengths: Vec<usize> = tokens.iter().map(String::len).collect();
    let strategy = (0..tokens.len()).prop_flat_map(move |index| (Just(index), edit(lengths[index])));
    runner()
        .run(&strategy, |(index, edit)| {
            let original = tokens[index].as_bytes();
            let edited = apply(original, &edit);
            // Leading spaces are part of the `Bearer  token` separator, not of the token.
            let token_part: &[u8] = edited.strip_prefix(b" ").map_or(&edited, |rest| rest);
            prop_assume!(token_part != original);
            let Ok(value) = HeaderValue::from_bytes(&[b"Bearer ", &edited[..]].concat()) else {
                // Not a header any HTTP client could send (CR, LF, NUL).
                return Ok(());
            };
            let request = Request::get("/v1/users/me")
                .header(header::AUTHORIZATION, value)
                .body(Body::empty())
                .unwrap();
            let (status, _, _) = runtime.block_on(oneshot(&app.router, request));
            prop_assert!(
                status == 400 || status == 401,
                "edit {edit:?} of the {index} token answered {status}"
            );
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
    println!("[RFC 8725 §3.3 property: token edits] {CASES} cases: none accepted, no 5xx");
}

/// A JSON document, with numbers `serde_json::Value` cannot hold.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Integer(i64),
    Float(f64),
    /// A number literal beyond i64/u64/f64, or in an unusual spelling.
    Literal(&'static str),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn write(&self, out: &mut String) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            Self::Integer(value) => out.push_str(&value.to_string()),
            Self::Float(value) => out.push_str(&serde_json::to_string(value).unwrap()),
            Self::Literal(text) => out.push_str(text),
            Self::String(text) => out.push_str(&serde_json::to_string(text).unwrap()),
            Self::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Self::Object(members) => {
                out.push('{');
                for (index, (name, value)) in members.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(name).unwrap());
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }
}

const ODD_NUMBERS: &[&str] = &[
    "1e400",
    "-1e400",
    "1e-400",
    "-0",
    "123456789012345678901234567890",
    "18446744073709551616",
    "-9223372036854775809",
    "9223372036854775807",
    "1E+2",
    "0.1e1",
];

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "\\PC{0,40}",
        2 => prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
        1 => (60_000usize..70_000).prop_map(|length| "a".repeat(length)),
        1 => Just(String::new()),
    ]
}

fn leaf() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::Integer),
        any::<f64>().prop_map(Json::Float),
        prop::sample::select(ODD_NUMBERS).prop_map(Json::Literal),
        any_string().prop_map(Json::String),
    ]
}

fn any_json() -> impl Strategy<Value = Json> {
    leaf().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::vec(("\\PC{0,10}", inner), 0..6).prop_map(Json::Object),
        ]
    })
}

/// A value for `field` that passes validation most of the time, so bodies get past the
/// extractor into the handlers and the database.
fn plausible(field: &'static str) -> BoxedStrategy<Json> {
    match field {
        "username" => "[a-z0-9][a-z0-9._-]{2,20}".prop_map(Json::String).boxed(),
        "password" => "\\PC{8,40}".prop_map(Json::String).boxed(),
        "quantity" => prop_oneof![4 => 1i64..=1000, 1 => any::<i64>()].prop_map(Json::Integer).boxed(),
        _ => prop_oneof![4 => "\\PC{1,100}", 1 => "\\PC{0,300}"].prop_map(Json::String).boxed(),
    }
}

/// A value for `field`: a plausible one, or anything.
fn field_value(field: &'static str) -> BoxedStrategy<Json> {
    prop_oneof![2 => plausible(field), 1 => any_json()].boxed()
}

/// Bodies for an endpoint whose fields are `fields`: every field once with a plausible value
/// (reaching the handler), objects of those names with any values (each possibly twice,
/// possibly missing, with extra members), or any JSON at all.
fn body(fields: &'static [&'static str]) -> impl Strategy<Value = Json> {
    let complete = fields
        .iter()
        .map(|field| plausible(field).prop_map(move |value| (field.to_string(), value)).boxed())
        .collect::<Vec<_>>()
        .prop_map(Json::Object);
    let member = prop_oneof![
        4 => prop::sample::select(fields).prop_flat_map(|field| (Just(field.to_owned()), field_value(field))),
        1 => ("\\PC{0,12}", any_json()),
    ];
    prop_oneof![
        2 => complete,
        2 => prop::collection::vec(member, 0..5).prop_map(Json::Object),
        1 => any_json(),
    ]
}

/// Sends every generated body to `method path` on `router` (with `token` when given) and
/// requires anything but a 5xx; errors must be problem documents.
fn never_a_server_error(
    runtime: &tokio::runtime::Runtime,
    router: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    fields: &'static [&'static str],
) {
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    runner()
        .run(&body(fields), |json| {
            let mut request =
                Request::builder().method(method).uri(path).header(header::CONTENT_TYPE, "application/json");
            if let Some(token) = token {
                request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            let text = json.text();
            let (status, content_type, _) =
                runtime.block_on(oneshot(router, request.body(Body::from(text.clone())).unwrap()));
            *statuses.borrow_mut().entry(status).or_default() += 1;
            prop_assert!(status < 500, "{method} {path} answered {status} to {:.300}", text);
            if status >= 400 {
                prop_assert_eq!(
                    content_type.as_deref(),
                    Some("application/problem+json"),
                    "{} {} {}",
                    method,
                    path,
                    status
                );
            }
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
    println!(
        "[DESIGN: no 5xx for client input] {method} {path}: {CASES} bodies, statuses {:?}",
        statuses.borrow()
    );
}

/// `POST /v1/users` and `POST /v1/auth/login` at the auth server.
#[test]
fn auth_server_json_endpoints_never_answer_5xx() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let auth = runtime.block_on(AuthApp::start());
    never_a_server_error(&runtime, &auth.router, "POST", "/v1/users", None, &["username", "password"]);
    never_a_server_error(&runtime, &auth.router, "POST", "/v1/auth/login", None, &["username", "password"]);
}

/// `PATCH /v1/users/me` at users-service.
#[test]
fn users_service_json_endpoint_never_answers_5xx() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(UsersApp::start());
    let token = app.token();
    never_a_server_error(&runtime, &app.router, "PATCH", "/v1/users/me", Some(&token), &["display_name"]);
}

/// `POST /v1/orders` at orders-service.
#[test]
fn orders_service_json_endpoint_never_answers_5xx() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(OrdersApp::start());
    let token = app.token();
    never_a_server_error(&runtime, &app.router, "POST", "/v1/orders", Some(&token), &["item", "quantity"]);
}
