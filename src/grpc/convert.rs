//! Conversions between wire values and domain values shared by every service: ids,
//! timestamps, field masks. Bad values are recorded as field violations, never panics.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use prost_types::{FieldMask, Timestamp};

use rust_decimal::Decimal;

use crate::domain::money::{format_decimal, parse_decimal};
use crate::domain::validation::{Parsed, Violations};

/// Parses a required id; records a violation and returns `None` when it is not a UUID.
pub fn parse_id<T: FromStr>(v: &mut Violations, field: &str, value: &str) -> Option<T> {
    if value.is_empty() {
        v.add(field, "is required");
        return None;
    }
    if value.len() > 64 {
        v.add(field, "must be a UUID");
        return None;
    }
    match value.parse() {
        Ok(id) => Some(id),
        Err(_) => {
            v.add(field, "must be a UUID");
            None
        }
    }
}

/// Parses an optional id: empty means `None`.
pub fn parse_optional_id<T: FromStr>(v: &mut Violations, field: &str, value: &str) -> Option<T> {
    if value.is_empty() { None } else { parse_id(v, field, value) }
}

/// The id of a get/delete style request, or INVALID_ARGUMENT naming `field`.
pub fn require_id<T: FromStr>(field: &str, value: &str) -> Result<T, Violations> {
    let mut v = Violations::default();
    let id = parse_id(&mut v, field, value);
    match id {
        Some(id) => Ok(id),
        None => Err(v),
    }
}

/// An API key's id on the wire; empty for none (a resource written by the service itself,
/// or before keys were recorded).
pub fn key_id(key: Option<crate::domain::ids::ApiKeyId>) -> String {
    key.map(|k| k.to_string()).unwrap_or_default()
}

/// A domain time on the wire.
pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

/// An optional domain time on the wire.
pub fn opt_timestamp(t: Option<DateTime<Utc>>) -> Option<Timestamp> {
    t.map(timestamp)
}

/// Earliest and latest instants accepted anywhere (a bound on garbage, not a rule).
fn in_supported_range(t: &DateTime<Utc>) -> bool {
    let min = DateTime::<Utc>::from_timestamp(0, 0).unwrap_or_default();
    let max = DateTime::<Utc>::from_timestamp(253_402_300_799, 0).unwrap_or_default(); // 9999-12-31
    *t >= min && *t <= max
}

/// A wire time in the domain; records a violation when it is out of range.
pub fn parse_timestamp(v: &mut Violations, field: &str, ts: &Timestamp) -> Option<DateTime<Utc>> {
    let parsed = u32::try_from(ts.nanos)
        .ok()
        .and_then(|nanos| DateTime::<Utc>::from_timestamp(ts.seconds, nanos))
        .filter(in_supported_range);
    if parsed.is_none() {
        v.add(field, "must be a timestamp between 1970-01-01 and 9999-12-31");
    }
    parsed
}

/// A required wire time; records a violation when missing.
pub fn require_timestamp(v: &mut Violations, field: &str, ts: &Option<Timestamp>) -> Option<DateTime<Utc>> {
    match ts {
        Some(ts) => parse_timestamp(v, field, ts),
        None => {
            v.add(field, "is required");
            None
        }
    }
}

/// An optional wire time.
pub fn optional_timestamp(v: &mut Violations, field: &str, ts: &Option<Timestamp>) -> Option<DateTime<Utc>> {
    ts.as_ref().and_then(|ts| parse_timestamp(v, field, ts))
}

/// The paths an update changes (AIP-134): the mask's paths, checked against `mutable`;
/// `*` alone means every mutable field; an empty or absent mask means the mutable fields
/// the request's resource sets (`set`: those with a value other than the default).
pub fn mask_paths(
    v: &mut Violations,
    mask: Option<FieldMask>,
    mutable: &[&'static str],
    set: &[&'static str],
) -> Vec<&'static str> {
    let paths = mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        if set.is_empty() {
            v.add(
                "update_mask",
                format!("is empty and the resource sets none of its mutable fields: {}", mutable.join(", ")),
            );
        }
        return set.to_vec();
    }
    if paths.iter().any(|p| p == "*") {
        if paths.len() > 1 {
            v.add("update_mask", "\"*\" (every mutable field) must be the only path");
        }
        return mutable.to_vec();
    }
    let mut out = Vec::with_capacity(paths.len());
    for (i, path) in paths.iter().enumerate() {
        match mutable.iter().find(|m| **m == path.as_str()) {
            Some(m) if !out.contains(m) => out.push(*m),
            Some(_) => {}
            None => v.add(
                format!("update_mask.paths[{i}]"),
                format!("is not a mutable field; use one of: {}", mutable.join(", ")),
            ),
        }
    }
    out
}

/// The names of the `fields` whose flag says the resource sets them.
pub fn set_fields(fields: &[(&'static str, bool)]) -> Vec<&'static str> {
    fields.iter().filter(|(_, set)| *set).map(|(name, _)| *name).collect()
}

/// Empty string as `None`, for optional text fields carried as proto3 strings.
pub fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

/// An id that may be absent (empty string): absent, malformed (recorded), or valid.
pub fn parsed_id<T: FromStr>(v: &mut Violations, field: &str, value: &str) -> Parsed<T> {
    if value.is_empty() {
        return Parsed::Absent;
    }
    Parsed::from_parse(true, parse_id(v, field, value))
}

/// A decimal string that may be absent (empty string).
pub fn parsed_decimal(v: &mut Violations, field: &str, value: &str) -> Parsed<Decimal> {
    if value.is_empty() {
        return Parsed::Absent;
    }
    Parsed::from_parse(true, parse_decimal(v, field, value))
}

/// A decimal carried in a proto3 `optional string`: present even when empty.
pub fn parsed_optional_decimal(v: &mut Violations, field: &str, value: Option<&str>) -> Parsed<Decimal> {
    match value {
        None => Parsed::Absent,
        Some("") => {
            v.add(field, "must be a decimal string such as \"12.50\"");
            Parsed::Invalid
        }
        Some(s) => Parsed::from_parse(true, parse_decimal(v, field, s)),
    }
}

/// A timestamp that may be absent.
pub fn parsed_timestamp(v: &mut Violations, field: &str, ts: &Option<Timestamp>) -> Parsed<DateTime<Utc>> {
    match ts {
        None => Parsed::Absent,
        Some(ts) => Parsed::from_parse(true, parse_timestamp(v, field, ts)),
    }
}

/// An enum field: 0 (UNSPECIFIED) is absent; an unknown number is recorded as invalid.
pub fn parsed_enum<T>(
    v: &mut Violations,
    field: &str,
    value: i32,
    known: impl FnOnce(i32) -> Option<T>,
) -> Parsed<T> {
    if value == 0 {
        return Parsed::Absent;
    }
    match known(value) {
        Some(t) => Parsed::Valid(t),
        None => {
            v.add(field, format!("{value} is not a known value"));
            Parsed::Invalid
        }
    }
}

/// The instant a read asks about (`field`), now when unset.
pub fn instant_or_now(field: &str, ts: &Option<Timestamp>) -> Result<DateTime<Utc>, Violations> {
    let mut v = Violations::default();
    let at = parsed_timestamp(&mut v, field, ts).into_valid();
    v.finish(at.unwrap_or_else(crate::app::clock::now))
}

/// A decimal for the wire.
pub fn decimal(d: Decimal) -> String {
    format_decimal(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_mask_means_the_fields_the_resource_sets() {
        let mut v = Violations::default();
        assert_eq!(mask_paths(&mut v, None, &["a", "b"], &["b"]), ["b"]);
        let empty = FieldMask { paths: vec![] };
        assert_eq!(mask_paths(&mut v, Some(empty), &["a", "b"], &["a", "b"]), ["a", "b"]);
        assert!(v.is_empty());
        assert!(mask_paths(&mut v, None, &["a", "b"], &[]).is_empty());
        assert_eq!(v.items()[0].field, "update_mask", "nothing to update is refused");
    }

    #[test]
    fn a_star_alone_means_every_mutable_field() {
        let mut v = Violations::default();
        let star = FieldMask { paths: vec!["*".into()] };
        assert_eq!(mask_paths(&mut v, Some(star), &["a", "b"], &[]), ["a", "b"]);
        assert!(v.is_empty());
        let mixed = FieldMask { paths: vec!["*".into(), "a".into()] };
        mask_paths(&mut v, Some(mixed), &["a", "b"], &[]);
        assert_eq!(v.items()[0].field, "update_mask");
    }

    #[test]
    fn set_fields_are_those_flagged() {
        assert_eq!(set_fields(&[("a", true), ("b", false), ("c", true)]), ["a", "c"]);
    }

    #[test]
    fn unknown_mask_path_is_named_by_index() {
        let mut v = Violations::default();
        let mask = FieldMask { paths: vec!["a".into(), "id".into()] };
        assert_eq!(mask_paths(&mut v, Some(mask), &["a", "b"], &[]), ["a"]);
        assert_eq!(v.items()[0].field, "update_mask.paths[1]");
    }

    #[test]
    fn timestamps_round_trip_and_reject_negative_nanos() {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 5).unwrap();
        let mut v = Violations::default();
        assert_eq!(parse_timestamp(&mut v, "t", &timestamp(t)), Some(t));
        let bad = Timestamp { seconds: 1, nanos: -1 };
        assert_eq!(parse_timestamp(&mut v, "t", &bad), None);
        assert_eq!(v.items().len(), 1);
    }

    #[test]
    fn ids_must_be_uuids() {
        let mut v = Violations::default();
        assert_eq!(parse_id::<uuid::Uuid>(&mut v, "id", "nope"), None);
        assert_eq!(parse_id::<uuid::Uuid>(&mut v, "id", ""), None);
        assert_eq!(v.items().len(), 2);
    }
}
