//! Customers' allowance limits as the usage path reads them, per organization and
//! instance, each kept under the customer's limits version.
//!
//! No notice is needed to keep it exact: every write to a customer's limits moves the
//! version on the customer's row (a trigger, whatever the writer), and the usage
//! transaction reads that version from the row it locks, which is the latest committed.
//! An entry is used only when its version is the row's. Entries are kept only from reads
//! made under the customer's lock, so the limits read belong to the version read (a
//! limits write takes the same lock). Customers that never had limits (version 0) cost
//! no read at all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::db::{self, Conn, DbError};
use crate::domain::allowance::LimitSettings;
use crate::domain::ids::{CustomerId, OrgId};

/// What the customer row says of its limits: `None` for version 0, never had any.
type Entry = (i64, Option<LimitSettings>);

/// The per-instance cache; clones share its entries.
#[derive(Clone)]
pub struct LimitsCache {
    /// Most entries kept at once; 0 keeps none.
    capacity: usize,
    entries: Arc<Mutex<HashMap<(OrgId, CustomerId), Entry>>>,
}

impl LimitsCache {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, entries: Arc::default() }
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<(OrgId, CustomerId), Entry>> {
        // Every change is one map operation: the map is valid after any panic elsewhere.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Customers whose limits are held now, for tests.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The limits of `customers` of `org`, each given with its row's limits version:
    /// held ones at that version from here, the others in one statement. With `locked`
    /// (the caller holds those customers' locks), what was read is kept for next time.
    pub(super) fn find(
        &self,
        conn: &mut Conn,
        org: OrgId,
        customers: &[(CustomerId, i64)],
        locked: bool,
    ) -> Result<HashMap<CustomerId, LimitSettings>, DbError> {
        let (mut found, missing) = self.held(org, customers);
        if missing.is_empty() {
            return Ok(found);
        }
        let ids: Vec<CustomerId> = missing.iter().map(|(id, _)| *id).collect();
        let mut read = db::allowances::get_many(conn, org, &ids)?;
        let mut entries = self.entries();
        for (id, version) in missing {
            let limits = read.remove(&id).map(|l| l.settings);
            if locked {
                self.keep(&mut entries, (org, id), (version, limits.clone()));
            }
            if let Some(l) = limits {
                found.insert(id, l);
            }
        }
        Ok(found)
    }

    /// The limits held at the versions asked, and the customers still to read.
    fn held(
        &self,
        org: OrgId,
        customers: &[(CustomerId, i64)],
    ) -> (HashMap<CustomerId, LimitSettings>, Vec<(CustomerId, i64)>) {
        let (mut found, mut missing) = (HashMap::new(), Vec::new());
        let entries = self.entries();
        for &(id, version) in customers.iter().filter(|(_, version)| *version > 0) {
            match entries.get(&(org, id)) {
                Some((held, limits)) if *held == version => {
                    if let Some(l) = limits {
                        found.insert(id, l.clone());
                    }
                }
                _ => missing.push((id, version)),
            }
        }
        (found, missing)
    }

    /// Keeps `entry` unless a later version is held (versions only grow).
    fn keep(
        &self,
        entries: &mut HashMap<(OrgId, CustomerId), Entry>,
        key: (OrgId, CustomerId),
        entry: Entry,
    ) {
        if self.capacity == 0 || entries.get(&key).is_some_and(|(held, _)| *held > entry.0) {
            return;
        }
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            // Full: start over rather than track recency (a miss costs one read).
            entries.clear();
        }
        entries.insert(key, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u128) -> (OrgId, CustomerId) {
        (OrgId(uuid::Uuid::from_u128(1)), CustomerId(uuid::Uuid::from_u128(n)))
    }

    fn settings(currency: &str) -> LimitSettings {
        LimitSettings { currency: currency.into(), ..LimitSettings::default() }
    }

    fn cache_with(capacity: usize, held: &[(u128, i64, Option<&str>)]) -> LimitsCache {
        let cache = LimitsCache::new(capacity);
        {
            let mut entries = cache.entries();
            for &(n, version, currency) in held {
                cache.keep(&mut entries, key(n), (version, currency.map(settings)));
            }
        }
        cache
    }

    #[test]
    fn held_limits_serve_only_the_version_they_were_read_at() {
        let cache = cache_with(10, &[(1, 3, Some("USD")), (2, 5, None)]);
        let (org, one) = key(1);
        let two = key(2).1;
        let (found, missing) = cache.held(org, &[(one, 3), (two, 5)]);
        assert_eq!(found.get(&one).map(|l| l.currency.as_str()), Some("USD"));
        assert!(!found.contains_key(&two), "held as having none");
        assert!(missing.is_empty());

        let (found, missing) = cache.held(org, &[(one, 4), (two, 6)]);
        assert!(found.is_empty());
        assert_eq!(missing, vec![(one, 4), (two, 6)], "a moved version is read again");
    }

    #[test]
    fn customers_that_never_had_limits_are_neither_found_nor_read() {
        let cache = LimitsCache::new(10);
        let (org, one) = key(1);
        let (found, missing) = cache.held(org, &[(one, 0)]);
        assert!(found.is_empty() && missing.is_empty());
    }

    #[test]
    fn an_earlier_version_never_replaces_a_later_one() {
        let cache = cache_with(10, &[(1, 4, Some("EUR")), (1, 3, Some("USD"))]);
        let (org, one) = key(1);
        let (found, _) = cache.held(org, &[(one, 4)]);
        assert_eq!(found.get(&one).map(|l| l.currency.as_str()), Some("EUR"));
    }

    #[test]
    fn the_capacity_bounds_the_entries_and_zero_keeps_none() {
        let cache = cache_with(2, &[(1, 1, None), (2, 1, None)]);
        assert_eq!(cache.len(), 2);
        let cache = cache_with(2, &[(1, 1, None), (2, 1, None), (3, 1, None)]);
        assert_eq!(cache.len(), 1, "full: started over with the newcomer");
        assert!(cache_with(0, &[(1, 1, None)]).is_empty());
    }
}
