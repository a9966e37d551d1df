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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::db::listen::{Channel, Link};
use crate::db::tenancy::REVOKED_CHANNEL;
use crate::domain::api_key::KeyRecord;
use crate::domain::ids::ApiKeyId;

/// How a key cache behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyCacheConfig {
    /// How long a resolved key is trusted without asking the database again; zero
    /// turns the cache off.
    pub ttl: Duration,
    /// Most keys kept at once.
    pub capacity: usize,
}

impl Default for KeyCacheConfig {
    fn default() -> Self {
        Self { ttl: Duration::from_secs(30), capacity: 10_000 }
    }
}

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

/// A ticket taken before reading a key from the database: the read may be cached only
/// if nothing was forgotten meanwhile (a revocation could have raced the read).
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

#[derive(Default)]
struct State {
    keys: HashMap<ApiKeyId, (KeyRecord, Instant)>,
    /// Bumped whenever anything is forgotten.
    generation: u64,
    /// Whether revocations are being received.
    listening: bool,
}

/// The per-instance cache; cheap to share.
#[derive(Clone)]
pub struct KeyCache {
    config: KeyCacheConfig,
    state: Arc<Mutex<State>>,
    revocations: broadcast::Sender<Revocation>,
}

impl KeyCache {
    pub fn new(config: KeyCacheConfig) -> Self {
        Self { config, state: Arc::default(), revocations: broadcast::channel(REVOCATIONS_BUFFERED).0 }
    }

    /// Revocations from now on.
    pub fn revocations(&self) -> broadcast::Receiver<Revocation> {
        self.revocations.subscribe()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is valid after any panic elsewhere: every change is one assignment.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached record of `id`, if fresh.
    pub fn get(&self, id: ApiKeyId) -> Option<KeyRecord> {
        self.get_at(id, Instant::now())
    }

    /// [`KeyCache::get`] at `now` (tests choose the instant).
    fn get_at(&self, id: ApiKeyId, now: Instant) -> Option<KeyRecord> {
        let state = self.state();
        let (record, fetched) = state.keys.get(&id)?;
        self.fresh(*fetched, now).then(|| record.clone())
    }

    fn fresh(&self, fetched: Instant, now: Instant) -> bool {
        now.saturating_duration_since(fetched) < self.config.ttl
    }

    /// Take before reading a key from the database.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.state().generation)
    }

    /// Keeps what the database said about `id`, unless anything was forgotten since
    /// `ticket` was taken or revocations are not being received.
    pub fn put(&self, ticket: Ticket, id: ApiKeyId, record: KeyRecord) {
        self.put_at(ticket, id, record, Instant::now());
    }

    /// [`KeyCache::put`] at `now` (tests choose the instant). Expired entries are
    /// dropped only when the cache is full: while there is room, a put does no more.
    fn put_at(&self, ticket: Ticket, id: ApiKeyId, record: KeyRecord, now: Instant) {
        if self.config.ttl.is_zero() {
            return;
        }
        let mut state = self.state();
        if !state.listening || state.generation != ticket.0 {
            return;
        }
        if state.keys.len() >= self.config.capacity && !state.keys.contains_key(&id) {
            state.keys.retain(|_, (_, fetched)| self.fresh(*fetched, now));
            if state.keys.len() >= self.config.capacity {
                // Still full of live keys: start over rather than track recency.
                state.keys.clear();
            }
        }
        state.keys.insert(id, (record, now));
    }

    /// Forgets `id` (it was revoked).
    pub fn forget(&self, id: ApiKeyId) {
        {
            let mut state = self.state();
            state.generation += 1;
            state.keys.remove(&id);
        }
        // No receiver is not an error: no stream is open.
        let _ = self.revocations.send(Revocation::Key(id));
    }

    /// Forgets everything, and caches from now on only if `listening`.
    fn reset(&self, listening: bool) {
        {
            let mut state = self.state();
            state.generation += 1;
            state.keys.clear();
            state.listening = listening;
        }
        let _ = self.revocations.send(Revocation::Unsure);
    }

    /// Keys cached now, for tests and metrics.
    pub fn len(&self) -> usize {
        self.state().keys.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    fn a_key_read_while_listening_is_served_from_the_cache() {
        let cache = listening(KeyCacheConfig::default());
        cache.put(cache.ticket(), key(1), record(7));
        assert_eq!(cache.get(key(1)), Some(record(7)));
        assert_eq!(cache.get(key(2)), None);
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
    fn an_entry_expires_after_its_time_to_live_and_zero_turns_caching_off() {
        let cache = listening(KeyCacheConfig { ttl: Duration::ZERO, capacity: 10 });
        cache.put(cache.ticket(), key(1), record(7));
        assert!(cache.is_empty());

        let cache = listening(KeyCacheConfig { ttl: Duration::from_nanos(1), capacity: 10 });
        let stored = Instant::now();
        cache.put_at(cache.ticket(), key(1), record(7), stored);
        assert_eq!(cache.get_at(key(1), stored + Duration::from_nanos(1)), None);
    }

    #[test]
    fn a_full_cache_makes_room_and_never_grows_past_its_capacity() {
        let cache = listening(KeyCacheConfig { ttl: Duration::from_secs(60), capacity: 3 });
        for n in 0..10 {
            cache.put(cache.ticket(), key(n), record(7));
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.get(key(9)), Some(record(7)), "the newest key is kept");
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

    #[test]
    fn an_entry_lives_exactly_its_time_to_live() {
        let ttl = Duration::from_secs(30);
        let cache = listening(KeyCacheConfig { ttl, capacity: 10 });
        let t0 = Instant::now();
        cache.put_at(cache.ticket(), key(1), record(7), t0);
        assert_eq!(cache.get_at(key(1), t0 + ttl - Duration::from_nanos(1)), Some(record(7)));
        assert_eq!(cache.get_at(key(1), t0 + ttl), None);
    }

    #[test]
    fn a_full_cache_drops_its_expired_entries_and_keeps_the_fresh_ones() {
        let cache = listening(KeyCacheConfig { ttl: Duration::from_secs(60), capacity: 2 });
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        cache.put_at(cache.ticket(), key(1), record(7), at(0));
        cache.put_at(cache.ticket(), key(2), record(7), at(50));
        // Full at 70 s: key 1 (70 s old) has expired, key 2 (20 s) has not.
        cache.put_at(cache.ticket(), key(3), record(7), at(70));
        assert_eq!((cache.get_at(key(2), at(70)), cache.len()), (Some(record(7)), 2));
    }

    #[test]
    fn a_cache_with_room_keeps_expired_entries_until_it_is_full() {
        let cache = listening(KeyCacheConfig { ttl: Duration::from_secs(60), capacity: 10 });
        let t0 = Instant::now();
        cache.put_at(cache.ticket(), key(1), record(7), t0);
        cache.put_at(cache.ticket(), key(2), record(7), t0 + Duration::from_secs(70));
        assert_eq!(cache.len(), 2, "no sweep while there is room");
    }

    #[test]
    fn a_read_that_raced_a_reconnect_is_not_cached_and_emptiness_is_reported() {
        let cache = listening(KeyCacheConfig::default());
        assert!(cache.is_empty());
        let before = cache.ticket();
        // The link came back: notices may have been missed while the read was running.
        (cache.channel().on_link)(Link::Up);
        cache.put(before, key(1), record(7));
        assert!(cache.is_empty(), "the raced read is not kept");
        cache.put(cache.ticket(), key(1), record(7));
        assert!(!cache.is_empty());
    }
}
