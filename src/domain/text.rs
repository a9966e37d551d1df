//! Rules for free-text and identifier fields shared by every resource.

use super::validation::Violations;

/// Checks that `value` has between `min` and `max` characters (not bytes).
pub fn check_length(v: &mut Violations, field: &str, value: &str, min: usize, max: usize) {
    // PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
    if value.contains('\0') {
        v.add(field, "must not contain NUL characters");
        return;
    }
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
    if value.chars().any(|c| c.is_control() && c != '\0') {
        v.add(field, "must not contain control characters");
    } else if value.trim() != value {
        v.add(field, "must not start or end with white space");
    }
}

/// Checks a display name: bounded length and no control characters.
pub fn check_name(v: &mut Violations, field: &str, value: &str, max: usize) {
    check_length(v, field, value, 1, max);
    if value.chars().any(|c| c.is_control() && c != '\0') {
        v.add(field, "must not contain control characters");
    }
}

/// An optional filter value of a List request: `None` when empty, else checked like
/// any stored text (at most 256 characters, no NUL).
pub fn filter_text(v: &mut Violations, field: &str, value: String) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    check_length(v, field, &value, 1, 256);
    Some(value)
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
        // A hostile key must not make the path itself huge: name it by a prefix.
        let shown: String = k.chars().take(32).collect();
        let entry =
            if shown.len() < k.len() { format!("{field}[{shown:?}…]") } else { format!("{field}[{k:?}]") };
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
    fn a_name_refuses_control_characters_and_reports_nul_once() {
        let mut v = Violations::default();
        check_name(&mut v, "a", "Katerina", 200);
        assert!(v.is_empty());
        check_name(&mut v, "b", "Kate\u{7}rina", 200);
        check_name(&mut v, "c", "Kate\u{0}rina", 200);
        let d: Vec<_> = v.items().iter().map(|i| (i.field.as_str(), i.description.as_str())).collect();
        assert_eq!(
            d,
            [("b", "must not contain control characters"), ("c", "must not contain NUL characters")]
        );
    }

    #[test]
    fn a_filter_is_absent_when_empty_and_checked_when_given() {
        let mut v = Violations::default();
        assert_eq!(filter_text(&mut v, "f", String::new()), None);
        assert_eq!(filter_text(&mut v, "f", "Europe/Athens".into()), Some("Europe/Athens".to_string()));
        assert!(v.is_empty());
        assert_eq!(filter_text(&mut v, "g", "a\u{0}b".into()), Some("a\u{0}b".to_string()));
        assert_eq!(v.items()[0].field, "g", "the bad filter is reported");
    }

    #[test]
    fn a_map_is_bounded_in_entries_and_names_a_long_key_by_its_prefix() {
        use std::collections::BTreeMap;
        let two: BTreeMap<String, String> = [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        let mut v = Violations::default();
        check_string_map(&mut v, "m", &two, 2, 10);
        assert!(v.is_empty(), "exactly the most entries is fine");
        check_string_map(&mut v, "m", &two, 1, 10);
        assert_eq!(v.items()[0].description, "must have at most 1 entries");

        let long_key = "k".repeat(40);
        let one: BTreeMap<String, String> = [(long_key, "x".repeat(11))].into();
        let mut v = Violations::default();
        check_string_map(&mut v, "m", &one, 5, 10);
        assert_eq!(
            v.items()[0].field,
            format!("m[{:?}…]", "k".repeat(32)),
            "the path shows a 32-character prefix"
        );
        let short: BTreeMap<String, String> = [("key".into(), "x".repeat(11))].into();
        let mut v = Violations::default();
        check_string_map(&mut v, "m", &short, 5, 10);
        assert_eq!(v.items()[0].field, "m[\"key\"]");
    }

    #[test]
    fn code_rejects_padding_and_control_characters() {
        let mut v = Violations::default();
        check_code(&mut v, "code", " CREED", 128);
        check_code(&mut v, "code", "CR\u{7}EED", 128);
        check_code(&mut v, "code", "CR\u{0}EED", 128);
        check_code(&mut v, "code", "", 128);
        let d: Vec<_> = v.items().iter().map(|i| i.description.as_str()).collect();
        assert_eq!(
            d,
            [
                "must not start or end with white space",
                "must not contain control characters",
                "must not contain NUL characters",
                "must not be empty"
            ]
        );
    }
}
