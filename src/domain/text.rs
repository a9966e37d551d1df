//! Rules for free-text and identifier fields shared by every resource.

use super::validation::Violations;

/// Checks that `value` has between `min` and `max` characters (not bytes).
pub fn check_length(v: &mut Violations, field: &str, value: &str, min: usize, max: usize) {
    let len = value.chars().count();
    if len < min {
        if min == 1 {
            v.add(field, "must not be empty");
        } else {
            v.add(field, format!("must have at least {min} characters"));
        }
    } else if len > max {
        v.add(field, format!("must have at most {max} characters"));
    }
}

/// Checks an identifier-like value: bounded length, no control characters, no
/// surrounding white space (so two codes never differ only by invisible characters).
pub fn check_code(v: &mut Violations, field: &str, value: &str, max: usize) {
    check_length(v, field, value, 1, max);
    if value.chars().any(char::is_control) {
        v.add(field, "must not contain control characters");
    } else if value.trim() != value {
        v.add(field, "must not start or end with white space");
    }
}

/// Checks a display name: bounded length and no control characters.
pub fn check_name(v: &mut Violations, field: &str, value: &str, max: usize) {
    check_length(v, field, value, 1, max);
    if value.chars().any(char::is_control) {
        v.add(field, "must not contain control characters");
    }
}

/// Checks a string map: at most `max_entries`, keys like codes (1 to 128 characters),
/// values at most `max_value` characters. Entries are named `field["key"]`.
pub fn check_string_map(
    v: &mut Violations,
    field: &str,
    map: &std::collections::BTreeMap<String, String>,
    max_entries: usize,
    max_value: usize,
) {
    if map.len() > max_entries {
        v.add(field, format!("must have at most {max_entries} entries"));
    }
    for (k, val) in map {
        let entry = format!("{field}[{k:?}]");
        check_code(v, &entry, k, 128);
        check_length(v, &entry, val, 0, max_value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_counts_characters_not_bytes() {
        let mut v = Violations::default();
        check_length(&mut v, "name", "Κατερίνα", 1, 8);
        assert!(v.is_empty());
        check_length(&mut v, "name", "Κατερίνα!", 1, 8);
        assert_eq!(v.items()[0].description, "must have at most 8 characters");
    }

    #[test]
    fn code_rejects_padding_and_control_characters() {
        let mut v = Violations::default();
        check_code(&mut v, "code", " CREED", 128);
        check_code(&mut v, "code", "CR\u{0}EED", 128);
        check_code(&mut v, "code", "", 128);
        let d: Vec<_> = v.items().iter().map(|i| i.description.as_str()).collect();
        assert_eq!(
            d,
            [
                "must not start or end with white space",
                "must not contain control characters",
                "must not be empty"
            ]
        );
    }
}
