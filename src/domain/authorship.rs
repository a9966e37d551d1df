//! Which API key created a resource and which last changed it. The database records it
//! on every write (a trigger reads the key of the transaction); these rules give the
//! same answer for the resource a use case returns, without reading it back.

use super::ids::ApiKeyId;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Authorship {
    pub created_by: Option<ApiKeyId>,
    pub updated_by: Option<ApiKeyId>,
}

impl Authorship {
    /// A resource created with `key`.
    pub fn created(key: Option<ApiKeyId>) -> Self {
        Self { created_by: key, updated_by: key }
    }

    /// After a change made with `key`; a change without one (the service's own work)
    /// keeps the last key that changed it.
    pub fn changed(self, key: Option<ApiKeyId>) -> Self {
        Self { created_by: self.created_by, updated_by: last_changed_by(self.updated_by, key) }
    }

    /// From stored columns.
    pub fn of(created_by: Option<uuid::Uuid>, updated_by: Option<uuid::Uuid>) -> Self {
        Self { created_by: created_by.map(ApiKeyId), updated_by: updated_by.map(ApiKeyId) }
    }
}

/// Who last changed a resource last changed by `previous`, after a change made with `key`.
pub fn last_changed_by(previous: Option<ApiKeyId>, key: Option<ApiKeyId>) -> Option<ApiKeyId> {
    key.or(previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u128) -> Option<ApiKeyId> {
        Some(ApiKeyId(uuid::Uuid::from_u128(n)))
    }

    #[test]
    fn a_change_names_its_key_and_keeps_the_creator() {
        let created = Authorship::created(key(1));
        assert_eq!(created, Authorship { created_by: key(1), updated_by: key(1) });
        assert_eq!(created.changed(key(2)), Authorship { created_by: key(1), updated_by: key(2) });
    }

    #[test]
    fn a_change_without_a_key_keeps_the_last_one() {
        let changed = Authorship::created(key(1)).changed(key(2));
        assert_eq!(changed.changed(None), changed);
        assert_eq!(Authorship::created(None).changed(None), Authorship::default());
    }

    #[test]
    fn stored_columns_read_back() {
        let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        assert_eq!(Authorship::of(Some(a), Some(b)), Authorship { created_by: key(1), updated_by: key(2) });
        assert_eq!(Authorship::of(None, None), Authorship::default());
    }
}
