//! Validated setting types: a value that cannot overflow the arithmetic done with it is
//! refused when the flag is parsed, with a message naming the flag, instead of being clamped
//! (or wrapping) where it is used.

use std::time::Duration;

/// Ten years: the longest lifetime, age or interval any setting accepts.
pub const MAX_SECONDS: u32 = 10 * 366 * 24 * 3600;

/// A number of seconds from 0 to [`MAX_SECONDS`]. Kept as `u32`, so every conversion it
/// offers (to `i64` for Unix times, to `Duration` for `Instant` arithmetic) is exact and cannot
/// overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(u32);

impl Seconds {
    /// `seconds`, capped at [`MAX_SECONDS`] (for literals in code and tests).
    pub const fn new(seconds: u32) -> Self {
        Self(if seconds > MAX_SECONDS { MAX_SECONDS } else { seconds })
    }

    /// As a `Duration`.
    pub fn duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }

    /// As the signed seconds of JWT claims and stored Unix times.
    pub fn as_i64(self) -> i64 {
        i64::from(self.0)
    }

    /// As an unsigned number (for headers such as `max-age`).
    pub fn as_u64(self) -> u64 {
        u64::from(self.0)
    }
}

impl std::fmt::Display for Seconds {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(formatter)
    }
}

impl std::str::FromStr for Seconds {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let seconds: u64 =
            value.trim().parse().map_err(|_| format!("{value:?} is not a whole number of seconds"))?;
        u32::try_from(seconds)
            .ok()
            .filter(|seconds| *seconds <= MAX_SECONDS)
            .map(Self)
            .ok_or_else(|| format!("at most {MAX_SECONDS} seconds (ten years), got {seconds}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_values_are_refused_with_the_limit_in_the_message() {
        for absurd in ["18446744073709551615", "9223372036854775808", "4294967296", "316224001"] {
            let error = absurd.parse::<Seconds>().unwrap_err();
            assert!(error.contains("ten years"), "{absurd}: {error}");
        }
        assert!("-1".parse::<Seconds>().is_err());
        assert!("1.5".parse::<Seconds>().is_err());
    }

    #[test]
    fn valid_values_convert_exactly() {
        let ten_years: Seconds = MAX_SECONDS.to_string().parse().unwrap();
        assert_eq!(ten_years.as_i64(), i64::from(MAX_SECONDS));
        assert_eq!(ten_years.duration(), Duration::from_secs(u64::from(MAX_SECONDS)));
        assert_eq!("0".parse::<Seconds>().unwrap(), Seconds::new(0));
        assert_eq!(Seconds::new(u32::MAX), ten_years);
    }
}
