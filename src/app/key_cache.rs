//! API keys resolved recently, so that most calls are authenticated without a round
//! trip to the database. Revoking a key NOTIFYs `billing_api_keys` with its id; see
//! [`NoticeCache`] for how that keeps the cache correct.

use super::notice_cache::NoticeCache;
use crate::db::listen::Channel;
use crate::db::tenancy::REVOKED_CHANNEL;
use crate::domain::ids::{ApiKeyId, OrgId};

/// What the database said about a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub org: OrgId,
    pub secret_sha256: Vec<u8>,
    /// Revocation is final, so a revoked key may be remembered as such.
    pub revoked: bool,
}

/// The per-instance cache of resolved keys.
pub type KeyCache = NoticeCache<ApiKeyId, KeyRecord>;

/// The revocation channel for the instance's notification listener.
pub fn revocations(cache: &KeyCache) -> Channel {
    cache.channel(REVOKED_CHANNEL, |payload| {
        let id = ApiKeyId(payload.parse::<uuid::Uuid>().ok()?);
        Some(move |k: &ApiKeyId| *k == id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::notice_cache::CacheConfig;
    use crate::db::listen::Link;

    #[test]
    fn a_revocation_notice_forgets_only_the_key_it_names() {
        let cache = KeyCache::new(CacheConfig::default());
        let channel = revocations(&cache);
        (channel.on_link)(Link::Up);
        let record =
            KeyRecord { org: OrgId(uuid::Uuid::from_u128(7)), secret_sha256: vec![1], revoked: false };
        let (a, b) = (ApiKeyId(uuid::Uuid::from_u128(1)), ApiKeyId(uuid::Uuid::from_u128(2)));
        cache.put(cache.ticket(), a, record.clone());
        cache.put(cache.ticket(), b, record.clone());
        (channel.on_notify)(&a.0.to_string());
        assert_eq!((cache.get(&a), cache.get(&b)), (None, Some(record)));
        (channel.on_notify)("garbage");
        assert!(cache.is_empty(), "an unreadable notice forgets every key");
    }
}
