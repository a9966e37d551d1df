//! API keys resolved recently, so that most calls are authenticated without a round
//! trip to the database.
//!
//! Correctness rests on the database's notifications: revoking a key NOTIFYs every
//! instance, which forgets the key at once. Keys are cached only while this instance's
//! listener is connected (a notification missed while it is down could otherwise leave
//! a revoked key usable); when the link drops or comes back, everything is forgotten.
//! A time to live bounds what any remaining race could leave behind, and a capacity
//! bounds memory.
//!
//! The cache also tells long-lived work (violation streams) about revocations, so a
//! stream opened with a key ends when the key is revoked on any instance.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::notice_cache::{CacheConfig, NoticeCache, Ticket};
use crate::db::listen::{Channel, Link};
use crate::db::tenancy::REVOKED_CHANNEL;
use crate::domain::api_key::KeyRecord;
use crate::domain::ids::ApiKeyId;

/// How a key cache behaves (by default 30 s and 10,000 keys).
pub type KeyCacheConfig = CacheConfig;

/// What the cache learned about revocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// This key was revoked.
    Key(ApiKeyId),
    /// Revocations may have been missed (the listener's link dropped or came back, or
    /// a notice could not be read): whoever holds a key must ask the database.
    Unsure,
}

/// Revocations buffered for a slow receiver; one that falls further behind is told
/// `Lagged` and must ask the database, like for [`Revocation::Unsure`].
const REVOCATIONS_BUFFERED: usize = 256;

/// The per-instance cache; cheap to share.
#[derive(Clone)]
pub struct KeyCache {
    keys: NoticeCache<ApiKeyId, KeyRecord>,
    revocations: broadcast::Sender<Revocation>,
}

impl KeyCache {
    pub fn new(config: KeyCacheConfig) -> Self {
        Self { keys: NoticeCache::new(config), revocations: broadcast::channel(REVOCATIONS_BUFFERED).0 }
    }

    /// Revocations from now on.
    pub fn revocations(&self) -> broadcast::Receiver<Revocation> {
        self.revocations.subscribe()
    }

    /// The cached record of `id`, if fresh.
    pub fn get(&self, id: ApiKeyId) -> Option<KeyRecord> {
        self.keys.get(&id)
    }

    /// Take before reading a key from the database.
    pub fn ticket(&self) -> Ticket {
        self.keys.ticket()
    }

    /// Keeps what the database said about `id`, unless anything was forgotten since
    /// `ticket` was taken or revocations are not being received.
    pub fn put(&self, ticket: Ticket, id: ApiKeyId, record: KeyRecord) {
        self.keys.put(ticket, id, record);
    }

    /// Forgets `id` (it was revoked).
    pub fn forget(&self, id: ApiKeyId) {
        self.keys.forget_where(|k| *k == id);
        // No receiver is not an error: no stream is open.
        let _ = self.revocations.send(Revocation::Key(id));
    }

    /// Forgets everything, and caches from now on only if `listening`.
    fn reset(&self, listening: bool) {
        self.keys.reset(listening);
        let _ = self.revocations.send(Revocation::Unsure);
    }

    /// Keys cached now, for tests and metrics.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The revocation channel, for the instance's notification listener.
    pub fn channel(&self) -> Channel {
        let (notified, linked) = (self.clone(), self.clone());
        Channel {
            name: REVOKED_CHANNEL,
            on_notify: Arc::new(move |payload| match payload.parse::<uuid::Uuid>() {
                Ok(id) => notified.forget(ApiKeyId(id)),
                // Not ours to interpret: forget everything to be safe.
                Err(_) => notified.reset(true),
            }),
            on_link: Arc::new(move |link| linked.reset(link == Link::Up)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::OrgId;
    use crate::domain::scope::Scopes;

    fn record(org: u128) -> KeyRecord {
        KeyRecord {
            org: OrgId(uuid::Uuid::from_u128(org)),
            secret_sha256: vec![1, 2],
            revoked: false,
            scopes: Scopes::all(),
            expires_at: None,
        }
    }

    fn listening(config: KeyCacheConfig) -> KeyCache {
        let cache = KeyCache::new(config);
        (cache.channel().on_link)(Link::Up);
        cache
    }

    fn key(n: u128) -> ApiKeyId {
        ApiKeyId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn nothing_is_cached_until_revocations_are_received_nor_after_the_link_drops() {
        let cache = KeyCache::new(KeyCacheConfig::default());
        cache.put(cache.ticket(), key(1), record(7));
        assert_eq!(cache.get(key(1)), None, "not listening yet");

        (cache.channel().on_link)(Link::Up);
        cache.put(cache.ticket(), key(1), record(7));
        assert!(cache.get(key(1)).is_some());

        (cache.channel().on_link)(Link::Down);
        assert_eq!(cache.get(key(1)), None, "forgotten when the link drops");
        cache.put(cache.ticket(), key(1), record(7));
        assert_eq!(cache.get(key(1)), None, "and not cached while it is down");
    }

    #[test]
    fn a_revocation_notice_forgets_the_key_and_spoils_reads_that_raced_it() {
        let cache = listening(KeyCacheConfig::default());
        cache.put(cache.ticket(), key(1), record(7));
        cache.put(cache.ticket(), key(2), record(7));
        let before = cache.ticket();
        (cache.channel().on_notify)(&key(1).0.to_string());
        assert_eq!(cache.get(key(1)), None);
        assert!(cache.get(key(2)).is_some(), "other keys stay");

        // A read that started before the notice may have seen the key live.
        cache.put(before, key(1), record(7));
        assert_eq!(cache.get(key(1)), None);
    }

    #[test]
    fn an_unreadable_notice_forgets_everything() {
        let cache = listening(KeyCacheConfig::default());
        cache.put(cache.ticket(), key(1), record(7));
        (cache.channel().on_notify)("not-a-uuid");
        assert!(cache.is_empty());
    }

    #[test]
    fn receivers_hear_each_revoked_key_and_doubt_when_the_link_changes_or_a_notice_is_unreadable() {
        let cache = listening(KeyCacheConfig::default());
        let mut heard = cache.revocations();
        let channel = cache.channel();
        (channel.on_notify)(&key(3).0.to_string());
        (channel.on_notify)("not a key id");
        (channel.on_link)(Link::Down);
        cache.forget(key(4));
        let mut all = Vec::new();
        while let Ok(r) = heard.try_recv() {
            all.push(r);
        }
        assert_eq!(
            all,
            [Revocation::Key(key(3)), Revocation::Unsure, Revocation::Unsure, Revocation::Key(key(4))]
        );
    }
}
