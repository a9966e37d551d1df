//! What an API key may do: its scopes, and the rules for keys an API caller creates.
//!
//! Scopes are independent: `admin` manages keys and does not imply `write`; a key that
//! needs both holds both. A key can only hand out scopes it holds itself, so no key can
//! mint one with more rights than its own.

use std::fmt;

use chrono::{DateTime, Utc};

use super::text::check_name;
use super::validation::Violations;

/// One right a key can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// API keys and organization settings.
    Admin,
    /// Catalog, commits, promos, commitments and allowance limits.
    Write,
    /// Recording, checking and voiding usage, and drawing balances down.
    Usage,
    /// Getting and listing.
    Read,
    /// Watching and listing violations.
    Feed,
}

impl Scope {
    pub const ALL: [Scope; 5] = [Scope::Admin, Scope::Write, Scope::Usage, Scope::Read, Scope::Feed];

    /// The name stored and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Write => "write",
            Scope::Usage => "usage",
            Scope::Read => "read",
            Scope::Feed => "feed",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    /// Every scope: what keys made before scopes existed, and bootstrap keys, hold.
    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every scope of `other` is in `self`.
    pub fn covers(self, other: Scopes) -> bool {
        other.0 & !self.0 == 0
    }

    /// The scopes of `self` not in `other`.
    pub fn without(self, other: Scopes) -> Scopes {
        Scopes(self.0 & !other.0)
    }

    /// In the order of [`Scope::ALL`].
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// The stored names.
    pub fn names(self) -> Vec<String> {
        self.iter().map(|s| s.as_str().to_owned()).collect()
    }

    /// Reads stored names; `None` if one is not a scope (the table's check forbids it).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Option<Scopes> {
        names.iter().map(|n| Scope::parse(n.as_ref())).collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

/// Why a key that exists is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRefusal {
    Revoked,
    Expired,
}

/// Whether a key with this state may be used at `now`. A key is expired from the
/// instant of its expiry on.
pub fn check_usable(
    revoked: bool,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), KeyRefusal> {
    if revoked {
        Err(KeyRefusal::Revoked)
    } else if expires_at.is_some_and(|t| t <= now) {
        Err(KeyRefusal::Expired)
    } else {
        Ok(())
    }
}

/// Longest key name.
pub const MAX_KEY_NAME: usize = 200;

/// A key an API caller asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRequest {
    pub name: String,
    pub scopes: Scopes,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Checks a requested key's fields (under `v`'s prefix): a name, at least one scope,
/// an expiry still ahead of `now`.
pub fn validate_key_request(req: &KeyRequest, now: DateTime<Utc>, v: &mut Violations) {
    check_name(v, "name", &req.name, MAX_KEY_NAME);
    if req.scopes.is_empty() {
        v.add("scopes", "must name at least one scope");
    }
    if req.expires_at.is_some_and(|t| t <= now) {
        v.add("expire_time", "must be in the future");
    }
}

/// The scopes `requested` that `granter` does not hold; empty when it may grant them.
pub fn beyond_granter(granter: Scopes, requested: Scopes) -> Scopes {
    requested.without(granter)
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn set(scopes: &[Scope]) -> Scopes {
        scopes.iter().copied().collect()
    }

    #[test]
    fn each_scope_is_its_own_right_and_names_round_trip() {
        for s in Scope::ALL {
            let only = set(&[s]);
            assert!(only.contains(s));
            assert_eq!(Scope::ALL.into_iter().filter(|o| only.contains(*o)).count(), 1, "{s}");
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(Scopes::from_names(&Scopes::all().names()), Some(Scopes::all()));
        assert!(Scope::ALL.into_iter().all(|s| Scopes::all().contains(s)), "all holds every scope");
        assert_eq!(Scopes::all().names(), ["admin", "write", "usage", "read", "feed"]);
        assert_eq!(Scope::Write.to_string(), "write", "shown by its stored name");
        assert_eq!(set(&[Scope::Read, Scope::Read]), set(&[Scope::Read]), "a repeated scope is held once");
        assert_eq!(Scopes::from_names(&["read", "root"]), None);
        assert_eq!(Scope::parse("Read"), None, "stored names are lower case");
    }

    #[test]
    fn a_set_covers_its_subsets_only() {
        let rw = set(&[Scope::Read, Scope::Write]);
        assert!(rw.covers(set(&[Scope::Read])));
        assert!(rw.covers(Scopes::default()));
        assert!(!rw.covers(set(&[Scope::Read, Scope::Admin])));
        assert_eq!(beyond_granter(rw, set(&[Scope::Admin, Scope::Read])), set(&[Scope::Admin]));
        assert!(beyond_granter(Scopes::all(), Scopes::all()).is_empty());
    }

    #[test]
    fn a_key_is_refused_once_revoked_and_from_the_instant_it_expires() {
        let now = Utc::now();
        assert_eq!(check_usable(false, None, now), Ok(()));
        assert_eq!(check_usable(false, Some(now + Duration::seconds(1)), now), Ok(()));
        assert_eq!(check_usable(false, Some(now), now), Err(KeyRefusal::Expired));
        assert_eq!(check_usable(true, Some(now + Duration::days(1)), now), Err(KeyRefusal::Revoked));
    }

    #[test]
    fn a_requested_key_needs_a_name_a_scope_and_an_expiry_ahead() {
        let now = Utc::now();
        let good = KeyRequest { name: "pipeline".into(), scopes: set(&[Scope::Usage]), expires_at: None };
        let mut v = Violations::default();
        validate_key_request(&good, now, &mut v);
        assert!(v.is_empty());

        let bad = KeyRequest { name: String::new(), scopes: Scopes::default(), expires_at: Some(now) };
        let mut v = Violations::at("api_key");
        validate_key_request(&bad, now, &mut v);
        let fields: Vec<_> = v.items().iter().map(|i| i.field.clone()).collect();
        assert_eq!(fields, ["api_key.name", "api_key.scopes", "api_key.expire_time"]);
    }
}
