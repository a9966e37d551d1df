//! A per-instance cache of rows that any instance may change, kept correct by the
//! database's notifications: a change NOTIFYs a channel when it commits, and each
//! instance forgets what the notice names on receipt. The API key cache and the catalog
//! cache are both this.
//!
//! Entries are kept only while this instance's listener is connected (a notice missed
//! while it is down could otherwise leave a stale entry); everything is forgotten when
//! the link drops or comes back. A read that started before a notice arrived is not kept
//! (it may predate the change). A time to live bounds what any remaining race could leave
//! behind, and a capacity bounds memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

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
/// forgotten meanwhile (a notice could have raced the read).
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

struct State<K, V> {
    entries: HashMap<K, (V, Instant)>,
    /// Bumped whenever anything is forgotten.
    generation: u64,
    /// Whether notices are being received.
    listening: bool,
}

/// The cache; clones share its entries.
pub struct NoticeCache<K, V> {
    config: CacheConfig,
    state: Arc<Mutex<State<K, V>>>,
}

impl<K, V> Clone for NoticeCache<K, V> {
    fn clone(&self) -> Self {
        Self { config: self.config, state: Arc::clone(&self.state) }
    }
}

impl<K: Eq + Hash, V: Clone> NoticeCache<K, V> {
    pub fn new(config: CacheConfig) -> Self {
        let state = State { entries: HashMap::new(), generation: 0, listening: false };
        Self { config, state: Arc::new(Mutex::new(state)) }
    }

    fn state(&self) -> MutexGuard<'_, State<K, V>> {
        // Every change is one assignment or map operation: the state is valid after any
        // panic elsewhere.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry of `key`, if fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        self.get_at(key, Instant::now())
    }

    /// [`NoticeCache::get`] at `now` (tests choose the instant).
    pub(crate) fn get_at(&self, key: &K, now: Instant) -> Option<V> {
        let state = self.state();
        let (value, stored) = state.entries.get(key)?;
        self.fresh(*stored, now).then(|| value.clone())
    }

    fn fresh(&self, stored: Instant, now: Instant) -> bool {
        now.saturating_duration_since(stored) < self.config.ttl
    }

    /// Take before reading from the database.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.state().generation)
    }

    /// Keeps what the database said about `key`, unless anything was forgotten since
    /// `ticket` was taken or notices are not being received.
    pub fn put(&self, ticket: Ticket, key: K, value: V) {
        self.put_at(ticket, key, value, Instant::now());
    }

    /// [`NoticeCache::put`] at `now` (tests choose the instant). Expired entries are
    /// dropped only when the cache is full: while there is room, a put does no more.
    pub(crate) fn put_at(&self, ticket: Ticket, key: K, value: V, now: Instant) {
        if self.config.ttl.is_zero() {
            return;
        }
        let mut state = self.state();
        if !state.listening || state.generation != ticket.0 {
            return;
        }
        if state.entries.len() >= self.config.capacity && !state.entries.contains_key(&key) {
            state.entries.retain(|_, (_, stored)| self.fresh(*stored, now));
            if state.entries.len() >= self.config.capacity {
                // Still full of fresh entries: start over rather than track recency.
                state.entries.clear();
            }
        }
        state.entries.insert(key, (value, now));
    }

    /// Forgets every entry `stale` picks, and spoils reads in flight.
    pub fn forget_where(&self, stale: impl Fn(&K) -> bool) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.retain(|k, _| !stale(k));
    }

    /// Forgets everything, and keeps entries from now on only if `listening`.
    pub fn reset(&self, listening: bool) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    type Cache = NoticeCache<u32, &'static str>;

    fn listening(config: CacheConfig) -> Cache {
        let cache = Cache::new(config);
        cache.reset(true);
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

        cache.reset(true);
        cache.put(cache.ticket(), 1, "one");
        assert!(cache.get(&1).is_some());

        cache.reset(false);
        assert_eq!(cache.get(&1), None, "forgotten when the link drops");
        cache.put(cache.ticket(), 1, "one");
        assert_eq!(cache.get(&1), None, "and not kept while it is down");
    }

    #[test]
    fn forgetting_drops_what_it_picks_and_spoils_reads_that_raced_it() {
        let cache = listening(CacheConfig::default());
        cache.put(cache.ticket(), 1, "one");
        cache.put(cache.ticket(), 2, "two");
        let before = cache.ticket();
        cache.forget_where(|k| *k == 1);
        assert_eq!(cache.get(&1), None);
        assert!(cache.get(&2).is_some(), "other entries stay");

        // A read that started before the notice may have seen the old row.
        cache.put(before, 1, "one");
        assert_eq!(cache.get(&1), None);
    }

    #[test]
    fn a_read_that_raced_a_reconnect_is_not_kept_and_emptiness_is_reported() {
        let cache = listening(CacheConfig::default());
        assert!(cache.is_empty());
        let before = cache.ticket();
        // The link came back: notices may have been missed while the read was running.
        cache.reset(true);
        cache.put(before, 1, "one");
        assert!(cache.is_empty(), "the raced read is not kept");
        cache.put(cache.ticket(), 1, "one");
        assert!(!cache.is_empty());
    }

    #[test]
    fn a_zero_time_to_live_turns_caching_off() {
        let cache = listening(CacheConfig { ttl: Duration::ZERO, capacity: 10 });
        cache.put(cache.ticket(), 1, "one");
        assert!(cache.is_empty());
    }

    #[test]
    fn an_entry_lives_exactly_its_time_to_live() {
        let ttl = Duration::from_secs(30);
        let cache = listening(CacheConfig { ttl, capacity: 10 });
        let t0 = Instant::now();
        cache.put_at(cache.ticket(), 1, "one", t0);
        assert_eq!(cache.get_at(&1, t0 + ttl - Duration::from_nanos(1)), Some("one"));
        assert_eq!(cache.get_at(&1, t0 + ttl), None);
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

    #[test]
    fn a_full_cache_drops_its_expired_entries_and_keeps_the_fresh_ones() {
        let cache = listening(CacheConfig { ttl: Duration::from_secs(60), capacity: 2 });
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        cache.put_at(cache.ticket(), 1, "one", at(0));
        cache.put_at(cache.ticket(), 2, "two", at(50));
        // Full at 70 s: entry 1 (70 s old) has expired, entry 2 (20 s) has not.
        cache.put_at(cache.ticket(), 3, "three", at(70));
        assert_eq!((cache.get_at(&2, at(70)), cache.len()), (Some("two"), 2));
    }

    #[test]
    fn a_cache_with_room_keeps_expired_entries_until_it_is_full() {
        let cache = listening(CacheConfig { ttl: Duration::from_secs(60), capacity: 10 });
        let t0 = Instant::now();
        cache.put_at(cache.ticket(), 1, "one", t0);
        cache.put_at(cache.ticket(), 2, "two", t0 + Duration::from_secs(70));
        assert_eq!(cache.len(), 2, "no sweep while there is room");
    }
}
