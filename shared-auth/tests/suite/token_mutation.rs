//! Property: no single-character change, and no truncation, turns a valid token into another
//! accepted token, and none makes the verifier panic.
use crate::common;

use std::sync::OnceLock;

use common::{ALGORITHMS, Forger, UNREACHABLE_ISSUER as ISSUER};
use proptest::prelude::*;
use proptest::sample::Index;
use shared_auth::Verifier;

/// One verifier and one valid token per algorithm, shared by every generated case.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    verifier: Verifier,
    tokens: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let verifier = common::offline_verifier_for_all_algorithms();
        let tokens = ALGORITHMS
            .iter()
            .map(|algorithm| Forger::shared(*algorithm).sign(&common::user_claims(ISSUER)))
            .collect();
        Fixture { runtime, verifier, tokens }
    })
}

fn is_accepted(token: &str) -> bool {
    let fixture = fixture();
    fixture.runtime.block_on(fixture.verifier.verify(token)).is_ok()
}

#[test]
fn the_unmodified_tokens_are_accepted() {
    for token in &fixture().tokens {
        assert!(is_accepted(token));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn changing_any_single_character_of_a_valid_token_is_never_accepted(
        which in 0..ALGORITHMS.len(),
        position in any::<Index>(),
        replacement in any::<char>(),
    ) {
        let original = &fixture().tokens[which];
        let position = position.index(original.len());
        let replaced = char::from(original.as_bytes()[position]);
        prop_assume!(replacement != replaced);
        let mut mutated = String::with_capacity(original.len() + 4);
        mutated.push_str(&original[..position]);
        mutated.push(replacement);
        mutated.push_str(&original[position + 1..]);

        prop_assert!(!is_accepted(&mutated), "accepted {mutated}");
    }

    #[test]
    fn flipping_any_bit_of_a_valid_token_is_never_accepted(
        which in 0..ALGORITHMS.len(),
        position in any::<Index>(),
        bit in 0..7u8,
    ) {
        let original = &fixture().tokens[which];
        let mut bytes = original.clone().into_bytes();
        let position = position.index(bytes.len());
        bytes[position] ^= 1 << bit;
        // Tokens are ASCII, so flipping one of the low seven bits keeps them ASCII.
        let mutated = String::from_utf8(bytes).unwrap();

        prop_assert!(!is_accepted(&mutated), "accepted {mutated}");
    }

    #[test]
    fn truncating_a_valid_token_is_never_accepted(
        which in 0..ALGORITHMS.len(),
        length in any::<Index>(),
    ) {
        let original = &fixture().tokens[which];
        let truncated = &original[..length.index(original.len())];

        prop_assert!(!is_accepted(truncated), "accepted {truncated}");
    }
}
