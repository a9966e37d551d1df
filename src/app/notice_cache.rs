//! A per-instance cache of rows that other instances may change, kept correct by the
//! database's notifications: every change NOTIFYs a channel when it commits, and each
//! instance forgets what the notice names on receipt.
//!
//! Entries are kept only while this instance's listener is connected (a notice missed
//! while it is down could otherwise leave a stale entry), and everything is forgotten
//! when the link drops or comes back. A read that started before a notice is not kept
//! (it may predate the change). A time to live bounds what any remaining race could
//! leave behind, and a capacity bounds memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::db::listen::{Channel, Link};

/// How a cache behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long an entry is trusted without asking the database again; zero turns the
    /// cache off.
    pub ttl: Duration,
    /// Most entries kept at once.
    pub capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { ttl: Duration::from_secs(30), capacity: 10_000 }
    }
}

/// Taken before reading from the database: the read may be kept only if nothing was
/// forgotten meanwhile.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

struct State<K, V> {
    entries: HashMap<K, (V, Instant)>,
    /// Bumped whenever anything is forgotten.
    generation: u64,
    /// Whether notices are being received.
    listening: bool,
}

/// The cache; cheap to clone (clones share entries).
pub struct NoticeCache<K, V> {
    config: CacheConfig,
    state: Arc<Mutex<State<K, V>>>,
}

impl<K, V> Clone for NoticeCache<K, V> {
    fn clone(&self) -> Self {
        Self { config: self.config, state: Arc::clone(&self.state) }
    }
}

impl<K: Eq + Hash + Send + 'static, V: Clone + Send + 'static> NoticeCache<K, V> {
    pub fn new(config: CacheConfig) -> Self {
        let state = State { entries: HashMap::new(), generation: 0, listening: false };
        Self { config, state: Arc::new(Mutex::new(state)) }
    }

    fn state(&self) -> MutexGuard<'_, State<K, V>> {
        // Every change is a single assignment or map operation: valid after any panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry of `key`, if fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        let state = self.state();
        let (value, stored) = state.entries.get(key)?;
        (stored.elapsed() < self.config.ttl).then(|| value.clone())
    }

    /// Take before reading from the database.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.state().generation)
    }

    /// Keeps what the database said about `key`, unless anything was forgotten since
    /// `ticket` was taken or notices are not being received.
    pub fn put(&self, ticket: Ticket, key: K, value: V) {
        if self.config.ttl.is_zero() {
            return;
        }
        let mut state = self.state();
        if !state.listening || state.generation != ticket.0 {
            return;
        }
        if state.entries.len() >= self.config.capacity && !state.entries.contains_key(&key) {
            let ttl = self.config.ttl;
            state.entries.retain(|_, (_, stored)| stored.elapsed() < ttl);
            if state.entries.len() >= self.config.capacity {
                // Still full of fresh entries: start over rather than track recency.
                state.entries.clear();
            }
        }
        state.entries.insert(key, (value, Instant::now()));
    }

    /// Forgets every entry `stale` picks.
    pub fn forget_where(&self, stale: impl Fn(&K) -> bool) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.retain(|k, _| !stale(k));
    }

    /// Forgets everything, and keeps entries from now on only if `listening`.
    fn reset(&self, listening: bool) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.clear();
        state.listening = listening;
    }

    /// Entries held now, for tests and metrics.
    pub fn len(&self) -> usize {
        self.state().entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The listener's channel `name`: each notice's payload is read by `stale`, which
    /// says which entries it makes stale (`None` when it cannot be read: then all).
    pub fn channel<F, P>(&self, name: &'static str, stale: F) -> Channel
    where
        F: Fn(&str) -> Option<P> + Send + Sync + 'static,
        P: Fn(&K) -> bool,
    {
        let (notified, linked) = (self.clone(), self.clone());
        Channel {
            name,
            on_notify: Arc::new(move |payload| match stale(payload) {
                Some(pick) => notified.forget_where(pick),
                None => notified.reset(true),
            }),
            on_link: Arc::new(move |link| linked.reset(link == Link::Up)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Cache = NoticeCache<u32, &'static str>;

    /// Notices name one key, or are unreadable.
    fn channel(cache: &Cache) -> Channel {
        cache.channel("test", |payload| payload.parse::<u32>().ok().map(|n| move |k: &u32| *k == n))
    }

    fn listening(config: CacheConfig) -> Cache {
        let cache = Cache::new(config);
        (channel(&cache).on_link)(Link::Up);
        cache
    }

    #[test]
    fn an_entry_read_while_listening_is_served() {
        let cache = listening(CacheConfig::default());
        cache.put(cache.ticket(), 1, "one");
        assert_eq!(cache.get(&1), Some("one"));
        assert_eq!(cache.get(&2), None);
    }

    #[test]
    fn nothing_is_kept_until_notices_are_received_nor_after_the_link_drops() {
        let cache = Cache::new(CacheConfig::default());
        cache.put(cache.ticket(), 1, "one");
        assert_eq!(cache.get(&1), None, "not listening yet");

        (channel(&cache).on_link)(Link::Up);
        cache.put(cache.ticket(), 1, "one");
        assert!(cache.get(&1).is_some());

        (channel(&cache).on_link)(Link::Down);
        assert_eq!(cache.get(&1), None, "forgotten when the link drops");
        cache.put(cache.ticket(), 1, "one");
        assert_eq!(cache.get(&1), None, "and not kept while it is down");
    }

    #[test]
    fn a_notice_forgets_what_it_names_and_spoils_reads_that_raced_it() {
        let cache = listening(CacheConfig::default());
        cache.put(cache.ticket(), 1, "one");
        cache.put(cache.ticket(), 2, "two");
        let before = cache.ticket();
        (channel(&cache).on_notify)("1");
        assert_eq!(cache.get(&1), None);
        assert!(cache.get(&2).is_some(), "other entries stay");

        // A read that started before the notice may have seen the old row.
        cache.put(before, 1, "one");
        assert_eq!(cache.get(&1), None);
    }

    #[test]
    fn an_unreadable_notice_forgets_everything() {
        let cache = listening(CacheConfig::default());
        cache.put(cache.ticket(), 1, "one");
        (channel(&cache).on_notify)("not-a-number");
        assert!(cache.is_empty());
    }

    #[test]
    fn an_entry_expires_after_its_time_to_live_and_zero_turns_caching_off() {
        let cache = listening(CacheConfig { ttl: Duration::ZERO, capacity: 10 });
        cache.put(cache.ticket(), 1, "one");
        assert!(cache.is_empty());

        let cache = listening(CacheConfig { ttl: Duration::from_nanos(1), capacity: 10 });
        cache.put(cache.ticket(), 1, "one");
        // Any measurable time is past a nanosecond's life.
        let stored = Instant::now();
        while stored.elapsed() < Duration::from_nanos(2) {}
        assert_eq!(cache.get(&1), None);
    }

    #[test]
    fn a_full_cache_makes_room_and_never_grows_past_its_capacity() {
        let cache = listening(CacheConfig { ttl: Duration::from_secs(60), capacity: 3 });
        for n in 0..10 {
            cache.put(cache.ticket(), n, "n");
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.get(&9), Some("n"), "the newest entry is kept");
    }
}
