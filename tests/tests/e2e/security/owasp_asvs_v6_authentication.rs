//! OWASP ASVS 5.0 chapter V6, authentication, at the real auth server: password length and
//! composition (6.2.1, 6.2.5, 6.2.9), passwords used exactly as given (6.2.8), brute-force
//! throttling (6.3.1), also against parallel guesses and against a flood under new names,
//! failures that do not tell whether an account exists (6.3.8), and the registration limit per
//! address (2.4.1, anti-automation of account creation).

use std::time::{Duration, Instant};

use serde_json::json;

use super::harness::AuthApp;

/// ASVS 6.2.1: "user set passwords are at least 8 characters in length". Seven characters are
/// refused (422) however many bytes they take; eight are enough.
#[tokio::test]
async fn passwords_shorter_than_8_characters_are_refused() {
    let auth = AuthApp::start().await;
    let cases = [
        ("seven ASCII characters", "1234567", 422),
        ("seven two-byte characters (14 bytes)", "ééééééé", 422),
        ("seven four-byte characters (28 bytes)", "🔑🔑🔑🔑🔑🔑🔑", 422),
        ("empty", "", 422),
        ("eight ASCII characters", "12345678", 201),
    ];
    for (index, (name, password, status)) in cases.iter().enumerate() {
        assert_eq!(auth.register(&format!("short-{index}"), password).await, *status, "{name}");
    }
    assert_eq!(auth.login("short-4", "12345678").await.status(), 200);
    println!("[ASVS 6.2.1: minimum length] {} cases: all as required", cases.len());
}

/// ASVS 6.2.9 ("passwords of at least 64 characters are permitted") and 6.2.5 ("passwords of any
/// composition can be used"): 64, 128 and 1024 characters; spaces only, emoji, scripts other than
/// Latin, digits only, quotes and backslashes, control characters. Each registers and logs in.
#[tokio::test]
async fn long_passwords_of_any_composition_are_accepted() {
    let auth = AuthApp::start().await;
    let cases = [
        ("64 characters", "p".repeat(64)),
        ("128 characters", "correct horse battery staple ".repeat(5)[..128].to_owned()),
        ("1024 characters", "é".repeat(1024)),
        ("spaces only", " ".repeat(12)),
        ("emoji", "🔑🦀🔒🗝️🔑🦀🔒🗝️".to_owned()),
        ("Cyrillic, Greek, CJK", "пароль-κωδικός-密码".to_owned()),
        ("digits only", "0123456789".to_owned()),
        ("quotes, backslashes, JSON syntax", r#"p"a\s's{"w":[0]}\u0000"#.to_owned()),
        ("tab and newline", "tab\there\nnewline".to_owned()),
    ];
    for (index, (name, password)) in cases.iter().enumerate() {
        let username = format!("composition-{index}");
        assert_eq!(auth.register(&username, password).await, 201, "{name}");
        assert_eq!(auth.login(&username, password).await.status(), 200, "{name}: login");
    }
    println!("[ASVS 6.2.5, 6.2.9: length and composition] {} cases: all as required", cases.len());
}

/// ASVS 6.2.8: "the application verifies the user's password exactly as received ... without any
/// modifications such as truncation or case transformation": trimmed, case-changed, truncated
/// (at bcrypt's 72 bytes), Unicode-normalised (NFD for an NFC password) or extended variants of
/// the right password all fail.
#[tokio::test]
async fn passwords_are_verified_exactly_as_given() {
    let auth = AuthApp::start_with(|config| {
        config.argon2_memory_kib = 1024;
        config.argon2_iterations = 1;
        config.login_failure_threshold = 100;
    })
    .await;
    let password = format!("  Café {}  ", "Long-Passphrase-".repeat(8));
    assert_eq!(auth.register("exact-user", &password).await, 201);
    let variants = [
        ("surrounding spaces trimmed", password.trim().to_owned()),
        ("upper-cased", password.to_uppercase()),
        ("lower-cased", password.to_lowercase()),
        (
            "truncated to 72 bytes",
            password.char_indices().take_while(|(at, c)| at + c.len_utf8() <= 72).map(|(_, c)| c).collect(),
        ),
        ("Unicode NFD instead of NFC", password.replacen('é', "e\u{301}", 1)),
        ("one character added", format!("{password}x")),
    ];
    for (name, variant) in &variants {
        assert_ne!(variant, &password, "{name}");
        assert_eq!(auth.login("exact-user", variant).await.status(), 401, "{name}");
    }
    assert_eq!(auth.login("exact-user", &password).await.status(), 200, "the exact password");
    println!("[ASVS 6.2.8: no modification] {} cases: all as required", variants.len() + 1);
}

/// ASVS 6.3.1: brute force is throttled as documented (auth-server's throttle module): past
/// the threshold of failures for one account from one address the login answers 429 with
/// `Retry-After`, before looking at the password, so even the right one gets 429.
#[tokio::test]
async fn repeated_failures_are_throttled_before_the_password_is_checked() {
    let auth = AuthApp::start_with(|config| {
        config.argon2_memory_kib = 1024;
        config.argon2_iterations = 1;
        config.login_failure_threshold = 3;
    })
    .await;
    assert_eq!(auth.register("guessed-user", "the-real-password").await, 201);
    for attempt in 0..3 {
        assert_eq!(auth.login("guessed-user", &format!("guess-{attempt}-password")).await.status(), 401);
    }
    let locked = auth.login("guessed-user", "the-real-password").await;
    assert_eq!(locked.status(), 429, "the right password during the lock");
    assert!(locked.headers().contains_key("retry-after"));
    let unknown_locked = {
        for attempt in 0..3 {
            auth.login("nobody-here", &format!("guess-{attempt}-password")).await;
        }
        auth.login("nobody-here", "any-password").await.status()
    };
    assert_eq!(unknown_locked, 429, "unknown accounts are throttled exactly like real ones");
    println!("[ASVS 6.3.1: brute force] 2 cases: all as required");
}

/// ASVS 6.3.1 under concurrency: guesses sent all at once cannot outrun the throttle. Each
/// attempt is counted before its password is hashed, so of 30 parallel guesses exactly the
/// threshold (3) reach the password check and the rest get 429 (the load flood found 104 checks
/// where 5 were allowed before this was so).
#[tokio::test]
async fn parallel_guesses_cannot_outrun_the_throttle() {
    let auth = AuthApp::start_with(|config| {
        config.argon2_memory_kib = 1024;
        config.argon2_iterations = 1;
        config.login_failure_threshold = 3;
    })
    .await;
    assert_eq!(auth.register("raced-user", "the-real-password").await, 201);

    let passwords: Vec<String> = (0..30).map(|guess| format!("parallel-guess-{guess}")).collect();
    let guesses = passwords.iter().map(|password| auth.login("raced-user", password));
    let mut statuses: Vec<u16> = futures_util::future::join_all(guesses)
        .await
        .iter()
        .map(|response| response.status().as_u16())
        .collect();
    statuses.sort_unstable();

    assert_eq!(statuses[..3], [401; 3], "{statuses:?}");
    assert_eq!(statuses[3..], [429; 27], "{statuses:?}");
    println!("[ASVS 6.3.1: parallel brute force] 30 cases: all as required");
}

/// ASVS 6.3.8: "valid users cannot be deduced from failed authentication challenges, such as ...
/// error messages, HTTP response codes, or different response times". Unknown user, wrong
/// password, a username that cannot exist and a too-short password get byte-identical answers
/// (status, body, headers other than `date` and `x-request-id`); an unknown user costs the same
/// Argon2 work as a wrong password (real Argon2 parameters here, medians of five).
#[tokio::test]
async fn failed_logins_do_not_reveal_whether_the_account_exists() {
    let auth = AuthApp::start_with(|config| config.login_failure_threshold = 1000).await;
    assert_eq!(auth.register("existing-user", "existing-password").await, 201);
    let attempts = [
        ("wrong password", "existing-user", "wrong-password"),
        ("unknown user", "unknown-user", "wrong-password"),
        ("username that cannot exist", "x!", "wrong-password"),
        ("password below the minimum", "existing-user", "short"),
        ("wrong password, username in capitals", "EXISTING-USER", "wrong-password"),
    ];
    let mut answers = Vec::new();
    for (name, username, password) in attempts {
        let response = auth.login(username, password).await;
        let mut headers: Vec<(String, Vec<u8>)> = response
            .headers()
            .iter()
            .filter(|(header, _)| !matches!(header.as_str(), "date" | "x-request-id"))
            .map(|(header, value)| (header.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        headers.sort();
        let status = response.status().as_u16();
        answers.push((name, status, headers, response.bytes().await.unwrap().to_vec()));
    }
    let (_, status, headers, body) = &answers[0];
    assert_eq!(*status, 401);
    for (name, other_status, other_headers, other_body) in &answers[1..] {
        assert_eq!(
            (other_status, other_headers, other_body),
            (status, headers, body),
            "{name} differs from a wrong password"
        );
    }

    let median = |mut samples: Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2]
    };
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for round in 0..5 {
        let started = Instant::now();
        auth.post_json(
            "/v1/auth/login",
            &json!({"username": "existing-user", "password": format!("wrong-{round}-password")}),
        )
        .await;
        wrong.push(started.elapsed());
        let started = Instant::now();
        auth.post_json(
            "/v1/auth/login",
            &json!({"username": format!("ghost-{round}"), "password": format!("wrong-{round}-password")}),
        )
        .await;
        unknown.push(started.elapsed());
    }
    let (wrong, unknown) = (median(wrong), median(unknown));
    // Without the dummy hash an unknown user would answer in well under a tenth of the time.
    assert!(
        unknown * 4 >= wrong,
        "unknown user {unknown:?} vs wrong password {wrong:?}: the dummy hash is missing"
    );
    println!(
        "[ASVS 6.3.8: no account enumeration] {} byte-identical failures; median {:?} unknown vs {:?} wrong password",
        answers.len(),
        unknown,
        wrong
    );
}

/// ASVS 2.4.1 ("anti-automation controls ... against excessive calls ... garbage-data creation,
/// quota exhaustion") on the account-creation path ASVS V6 protects: `POST /v1/users` is limited
/// per client address (`REGISTRATION_LIMIT_PER_HOUR`, here 3). The next registration from that
/// address is 429 with `Retry-After` (at most an hour) and stores nothing: no row, and the name
/// is still free; another address still registers.
#[tokio::test]
async fn registrations_beyond_the_limit_per_address_get_429_and_store_nothing() {
    let auth = AuthApp::start_with(|config| {
        config.argon2_memory_kib = 1024;
        config.argon2_iterations = 1;
        config.registration_limit_per_hour = 3;
        config.trust_x_forwarded_for = true;
    })
    .await;
    let register_from = |address: &'static str, username: &str| {
        auth.http
            .post(format!("{}/v1/users", auth.url))
            .header("x-forwarded-for", address)
            .json(&json!({"username": username, "password": "registration-password"}))
            .send()
    };
    for index in 0..3 {
        let response = register_from("192.0.2.7", &format!("limited-{index}")).await.unwrap();
        assert_eq!(response.status(), 201, "registration {index} of 3");
    }
    let users_before = testkit::count_rows(&auth.state.pool, "users").await;

    let refused = register_from("192.0.2.7", "limited-3").await.unwrap();
    let refused_again = register_from("192.0.2.7", "limited-4").await.unwrap();

    let mut outcomes = Vec::new();
    for (name, response) in [("fourth", refused), ("fifth", refused_again)] {
        assert_eq!(response.status(), 429, "{name} registration from the address");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{name}");
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry_after), "{name}: Retry-After {retry_after}");
        outcomes.push(retry_after);
    }
    assert_eq!(
        testkit::count_rows(&auth.state.pool, "users").await,
        users_before,
        "no row for a refused one"
    );
    assert_eq!(auth.login("limited-3", "registration-password").await.status(), 401, "no account");
    let elsewhere = register_from("192.0.2.8", "limited-3").await.unwrap();
    assert_eq!(elsewhere.status(), 201, "the name was still free, and the limit is per address");
    println!(
        "[ASVS 2.4.1, V6: registration limit per address] 5 cases: all as required (Retry-After {outcomes:?})"
    );
}

/// ASVS 6.3.1 against a flood: once an address is locked (after ten failures at threshold 1),
/// a hundred more attempts under new usernames each get 429 and add no row to
/// `login_failures`, so a locked attacker cannot grow the throttle's own table (a resource
/// exhaustion of the control itself, ASVS 2.4.1).
#[tokio::test]
async fn a_flood_from_a_locked_address_under_new_names_adds_no_rows() {
    let auth = AuthApp::start_with(|config| {
        config.argon2_memory_kib = 1024;
        config.argon2_iterations = 1;
        config.login_failure_threshold = 1;
    })
    .await;
    for name in 0..10 {
        assert_eq!(
            auth.login(&format!("flood-{name}"), "wrong-password").await.status(),
            401,
            "attempt {name}"
        );
    }
    assert_eq!(auth.login("flood-10", "wrong-password").await.status(), 429, "the address is locked");
    let rows_before = testkit::count_rows(&auth.state.pool, "login_failures").await;
    assert!(rows_before > 0, "the failures so far were counted");

    let mut statuses = std::collections::BTreeMap::new();
    for name in 11..111 {
        let status = auth.login(&format!("flood-{name}"), "wrong-password").await.status().as_u16();
        *statuses.entry(status).or_insert(0) += 1;
    }

    assert_eq!(statuses, [(429, 100)].into(), "every attempt of the flood");
    assert_eq!(testkit::count_rows(&auth.state.pool, "login_failures").await, rows_before, "rows added");
    println!(
        "[ASVS 6.3.1: flood from a locked address] 100 cases: all as required ({rows_before} rows before and after)"
    );
}
