//! Collecting every bad field of a request before failing, each named by its path.

use std::fmt;

/// One bad field: its path in the request (e.g. `customer.time_zone`) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// All the bad fields found so far. Empty means valid.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Violations {
    prefix: String,
    items: Vec<FieldViolation>,
}

impl Violations {
    /// An empty collector whose paths start with `prefix` (e.g. `customer`).
    pub fn at(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned(), items: Vec::new() }
    }

    /// Records that `field` (relative to the prefix) is bad.
    pub fn add(&mut self, field: impl AsRef<str>, description: impl Into<String>) {
        let field = join_path(&self.prefix, field.as_ref());
        self.items.push(FieldViolation { field, description: description.into() });
    }

    /// Runs `check` with a collector rooted at `prefix.field` and keeps what it found.
    pub fn nested<T>(&mut self, field: impl AsRef<str>, check: impl FnOnce(&mut Violations) -> T) -> T {
        let mut inner = Violations::at(&join_path(&self.prefix, field.as_ref()));
        let out = check(&mut inner);
        self.items.append(&mut inner.items);
        out
    }

    /// Adds every violation of `other` (already carrying full paths).
    pub fn extend(&mut self, other: Violations) {
        self.items.extend(other.items);
    }

    /// Adds those of `other` whose field has no violation yet: a field that could not be
    /// parsed is not blamed again by a rule that judged its stand-in.
    pub fn extend_unreported(&mut self, other: Violations) {
        for item in other.items {
            if !self.items.iter().any(|i| i.field == item.field) {
                self.items.push(item);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn items(&self) -> &[FieldViolation] {
        &self.items
    }

    /// `Ok(value)` when nothing was recorded, the violations otherwise.
    pub fn finish<T>(self, value: T) -> Result<T, Violations> {
        if self.items.is_empty() { Ok(value) } else { Err(self) }
    }

    /// A single violation, for rules found outside a validation pass.
    pub fn single(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            prefix: String::new(),
            items: vec![FieldViolation { field: field.into(), description: description.into() }],
        }
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", v.field, v.description)?;
        }
        Ok(())
    }
}

fn join_path(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) if field.starts_with('[') => format!("{prefix}{field}"),
        (false, false) => format!("{prefix}.{field}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_paths_join_with_dots_and_indexes() {
        let mut v = Violations::at("commit");
        v.nested("access_schedule", |v| {
            v.nested("schedule_items[2]", |v| v.add("amount", "must be positive"));
        });
        v.add("name", "must not be empty");
        let fields: Vec<_> = v.items().iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["commit.access_schedule.schedule_items[2].amount", "commit.name"]);
    }

    #[test]
    fn finish_fails_when_anything_was_recorded() {
        assert_eq!(Violations::at("x").finish(1), Ok(1));
        let mut v = Violations::at("x");
        v.add("y", "bad");
        assert!(v.finish(1).is_err());
    }

    #[test]
    fn violations_display_as_field_and_reason_separated_by_semicolons() {
        let mut v = Violations::single("start", "is not a timestamp");
        assert_eq!(v.to_string(), "start: is not a timestamp");
        v.add("end", "must be after start");
        assert_eq!(v.to_string(), "start: is not a timestamp; end: must be after start");
    }

    #[test]
    fn an_index_joins_its_list_without_a_dot() {
        let mut v = Violations::at("events");
        v.add("[3]", "is not an event");
        v.nested("[4]", |v| v.add("quantity", "must not be negative"));
        let fields: Vec<_> = v.items().iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["events[3]", "events[4].quantity"]);
    }

    #[test]
    fn a_parse_is_absent_invalid_or_valid_and_maps_only_a_valid_value() {
        assert_eq!(Parsed::from_parse(false, Some(1)), Parsed::Absent);
        assert_eq!(Parsed::<i32>::from_parse(true, None), Parsed::Invalid);
        assert_eq!(Parsed::from_parse(true, Some(1)), Parsed::Valid(1));
        assert_eq!(Parsed::Valid(2).map(|x| x * 10), Parsed::Valid(20));
        assert_eq!(Parsed::<i32>::Invalid.map(|x| x * 10), Parsed::Invalid);
        assert_eq!(Parsed::<i32>::Absent.map(|x| x * 10), Parsed::Absent);
    }

    #[test]
    fn extend_keeps_every_violation_and_extend_unreported_skips_fields_already_blamed() {
        let parsing = Violations::single("start", "is not a timestamp");
        let mut rules = Violations::single("start", "must be before end");
        rules.add("end", "must be after start");
        let descriptions =
            |v: &Violations| v.items().iter().map(|i| i.description.clone()).collect::<Vec<_>>();

        let mut all = parsing.clone();
        all.extend(rules.clone());
        assert_eq!(descriptions(&all), ["is not a timestamp", "must be before end", "must be after start"]);

        let mut unreported = parsing;
        unreported.extend_unreported(rules);
        assert_eq!(descriptions(&unreported), ["is not a timestamp", "must be after start"]);
    }
}

/// A value read from the wire: absent, present but malformed (already recorded as a
/// violation by whoever parsed it), or valid. Rules use it to tell "missing" apart from
/// "bad", so each problem is reported once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Parsed<T> {
    #[default]
    Absent,
    Invalid,
    Valid(T),
}

impl<T> Parsed<T> {
    pub fn valid(&self) -> Option<&T> {
        match self {
            Self::Valid(t) => Some(t),
            _ => None,
        }
    }

    pub fn into_valid(self) -> Option<T> {
        match self {
            Self::Valid(t) => Some(t),
            _ => None,
        }
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }

    pub fn is_present(&self) -> bool {
        !self.is_absent()
    }

    /// From a parse that recorded its own violation when it returned `None`.
    pub fn from_parse(present: bool, value: Option<T>) -> Self {
        match (present, value) {
            (false, _) => Self::Absent,
            (true, Some(v)) => Self::Valid(v),
            (true, None) => Self::Invalid,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Parsed<U> {
        match self {
            Self::Absent => Parsed::Absent,
            Self::Invalid => Parsed::Invalid,
            Self::Valid(t) => Parsed::Valid(f(t)),
        }
    }

    /// The value when valid; records "is required" when absent.
    pub fn required(self, v: &mut Violations, field: &str) -> Option<T> {
        if self.is_absent() {
            v.add(field, "is required");
        }
        self.into_valid()
    }
}
