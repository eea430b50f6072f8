//! Validated domain values. Requests are parsed into these at the edge, before any hashing or
//! database work, so the rest of the code never sees an unchecked username or password.

use secrecy::SecretString;

/// Why an input value was refused; the message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub &'static str);

/// A login name: 3 to 64 characters of `a-z 0-9 . _ -`, starting with a letter or digit.
/// Letters are folded to lower case, so `Alice` and `alice` are one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// Shortest accepted length.
    pub const MIN_LEN: usize = 3;
    /// Longest accepted length.
    pub const MAX_LEN: usize = 64;

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Username {
    type Error = InvalidInput;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        let folded = value.to_ascii_lowercase();
        let valid_chars = folded
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._-".contains(&byte));
        let starts_well = folded.bytes().next().is_some_and(|byte| byte.is_ascii_alphanumeric());
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&folded.len()) || !valid_chars || !starts_well {
            return Err(InvalidInput(
                "username must be 3-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit",
            ));
        }
        Ok(Self(folded))
    }
}

/// A password: 8 to 1024 characters (Unicode scalar values), taken exactly as given: never
/// trimmed, truncated or case-folded.
pub struct Password(SecretString);

impl Password {
    /// Shortest accepted length, in characters.
    pub const MIN_CHARS: usize = 8;
    /// Longest accepted length, in characters (far beyond any passphrase; bounds input size).
    pub const MAX_CHARS: usize = 1024;

    /// The secret, for hashing.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl TryFrom<String> for Password {
    type Error = InvalidInput;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let chars = value.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(InvalidInput("password must be at least 8 characters"));
        }
        if chars > Self::MAX_CHARS {
            return Err(InvalidInput("password must be at most 1024 characters"));
        }
        Ok(Self(SecretString::from(value)))
    }
}

/// A role name: 1 to 64 characters of `a-z 0-9 _ -`.
pub fn validate_role(role: &str) -> Result<(), InvalidInput> {
    let valid = (1..=64).contains(&role.len())
        && role
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"_-:".contains(&byte));
    if valid { Ok(()) } else { Err(InvalidInput("role must be 1-64 characters of a-z, 0-9, '_', '-', ':'")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn usernames_are_folded_and_validated() {
        assert_eq!(Username::try_from("Alice.B_1").unwrap().as_str(), "alice.b_1");
        for bad in ["", "ab", "-alice", "al ice", "al/ice", "élise", &"a".repeat(65)] {
            assert!(Username::try_from(bad).is_err(), "{bad:?}");
        }
        assert!(Username::try_from("a".repeat(64).as_str()).is_ok());
    }

    #[test]
    fn passwords_from_8_to_1024_characters_are_kept_exactly() {
        assert!(Password::try_from("1234567".to_owned()).is_err());
        let exact = " Ünïcödé Passw0rd ".to_owned();
        assert_eq!(Password::try_from(exact.clone()).unwrap().secret().expose_secret(), exact);
        let long = "é".repeat(1024);
        assert_eq!(Password::try_from(long.clone()).unwrap().secret().expose_secret(), long);
        assert!(Password::try_from("x".repeat(1025)).is_err());
    }

    #[test]
    fn password_debug_output_is_redacted() {
        let password = Password::try_from("super secret value".to_owned()).unwrap();
        assert!(!format!("{password:?}").contains("secret value"));
    }
}
