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
}
