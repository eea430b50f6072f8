//! Text that other people see (display names, order items): what it may not contain.
//!
//! Control characters break logs and terminals; bidirectional controls reorder what follows
//! them, so "Bob\u{202E}nimda" shows as "Bobadmin"; zero-width characters make two different
//! names look identical. None of them has a place in a short label, so they are refused.

/// Whether `character` is refused in a label: a control character, a bidirectional control
/// (embedding, override, isolate, the implicit marks), or a zero-width or invisible one.
pub fn is_forbidden_in_label(character: char) -> bool {
    character.is_control()
        || matches!(
            character,
            // Bidirectional controls: LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI; LRM, RLM, ALM.
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
            // Zero-width space, non-joiner, joiner; word joiner and the invisible operators;
            // the byte-order mark; the soft hyphen; the line and paragraph separators.
            | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' | '\u{2028}' | '\u{2029}'
        )
}

/// Whether `value` holds a refused character (see [`is_forbidden_in_label`]).
pub fn has_forbidden_in_label(value: &str) -> bool {
    value.chars().any(is_forbidden_in_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_overrides_zero_width_and_control_characters_are_refused() {
        for refused in [
            "Bob\u{202E}nimda",
            "a\u{2066}b",
            "ad\u{200B}min",
            "x\u{FEFF}",
            "a\u{200D}b",
            "line\nbreak",
            "\u{1b}[31m",
        ] {
            assert!(has_forbidden_in_label(refused), "{refused:?}");
        }
    }

    #[test]
    fn letters_of_any_script_spaces_and_emoji_are_allowed() {
        for allowed in ["Zoë Ångström", "李小龙", "مرحبا", "Δημήτρης", "Bob B.", "🍕 pizza"]
        {
            assert!(!has_forbidden_in_label(allowed), "{allowed:?}");
        }
    }
}
