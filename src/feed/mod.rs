//! The violation feed: live delivery of violations to WatchViolations streams, on every
//! instance. Writers append violations in their own transactions and NOTIFY; each
//! instance's notification listener (`db::listen`) wakes its fetcher, which reads new rows once per org and
//! broadcasts them to that org's subscribers through the registry. Subscribers fill any
//! gap from the table, so delivery is in order and at least once, and a slow subscriber
//! slows nobody else.

pub mod fetcher;
pub mod registry;
pub mod subscriber;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{App, AppError};
use crate::db::listen::Channel;
use crate::db::violations::NOTIFY_CHANNEL;
use crate::domain::ids::OrgId;
use crate::domain::violation::{StartAt, ViolationFilter};
use registry::Registry;
use subscriber::{Item, Subscriber};

/// How the feed runs.
#[derive(Clone, Debug)]
pub struct FeedConfig {
    /// Fallback poll of the table when no notification arrives.
    pub poll_interval: Duration,
    /// Messages buffered per stream before the stream waits for its client.
    pub stream_buffer: usize,
    /// Live messages an org's broadcast holds for its slowest subscriber; one that falls
    /// further behind re-reads from the table.
    pub live_capacity: usize,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            stream_buffer: 64,
            live_capacity: registry::CHANNEL_CAPACITY,
        }
    }
}

/// How often subscribers took the feed's repair paths since the instance started: lag
/// (re-read from the table), a gap in the live sequence, and live messages skipped
/// because the table had delivered them. For operators, and for tests that must prove
/// those paths ran.
#[derive(Debug, Default)]
pub struct FeedStats {
    pub lagged: AtomicU64,
    pub gaps: AtomicU64,
    pub duplicates_skipped: AtomicU64,
}

/// A reading of [`FeedStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedStatsSnapshot {
    pub lagged: u64,
    pub gaps: u64,
    pub duplicates_skipped: u64,
}

/// The running feed of one instance.
#[derive(Clone)]
pub struct Feed {
    app: App,
    registry: Arc<Registry>,
    config: FeedConfig,
    stats: Arc<FeedStats>,
    stop: CancellationToken,
    wake: Arc<Notify>,
}

impl Feed {
    /// Starts the fetcher, which ends with `stop`. It is woken through [`Feed::channel`],
    /// which the instance's notification listener must carry.
    pub fn start(app: App, config: FeedConfig, stop: CancellationToken) -> (Self, Vec<JoinHandle<()>>) {
        let registry = Arc::new(Registry::with_capacity(config.live_capacity));
        let wake = Arc::new(Notify::new());
        let tasks = vec![tokio::spawn(fetcher::run(
            app.clone(),
            Arc::clone(&registry),
            Arc::clone(&wake),
            config.poll_interval,
            stop.clone(),
        ))];
        (Self { app, registry, config, stats: Arc::default(), stop, wake }, tasks)
    }

    /// The feed's notification channel: each notification, and each (re)connect or loss
    /// of the listener (whatever was committed meanwhile is found by the fetcher's
    /// catch-up), wakes the fetcher. Notifications carry nothing: the table is the truth.
    pub fn channel(&self) -> Channel {
        let (on_notify, on_link) = (Arc::clone(&self.wake), Arc::clone(&self.wake));
        Channel {
            name: NOTIFY_CHANNEL,
            on_notify: Arc::new(move |_| on_notify.notify_one()),
            on_link: Arc::new(move |_| on_link.notify_one()),
        }
    }

    /// Live subscriptions on this instance.
    pub fn subscribers(&self) -> usize {
        self.registry.subscribers()
    }

    /// How often subscribers took the repair paths so far.
    pub fn stats(&self) -> FeedStatsSnapshot {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FeedStatsSnapshot {
            lagged: read(&self.stats.lagged),
            gaps: read(&self.stats.gaps),
            duplicates_skipped: read(&self.stats.duplicates_skipped),
        }
    }

    /// Opens a stream of `org`'s violations matching `filter` from `start`. Problems
    /// with the request (unknown customer, cursor not retained or ahead) fail here, before
    /// any message.
    pub async fn watch(
        &self,
        org: OrgId,
        start: StartAt,
        filter: ViolationFilter,
    ) -> Result<mpsc::Receiver<Item>, AppError> {
        if self.stop.is_cancelled() {
            return Err(AppError::Db(crate::db::DbError::Unavailable("server is shutting down".into())));
        }
        // Subscribe before reading the position, so nothing committed after it is missed.
        let subscription = self.registry.subscribe(org);
        let position = self.app.feed_position(org, filter.clone()).await?;
        // Live delivery starts after this head (unless an earlier subscriber started it);
        // everything up to the head this stream reads from the table.
        self.registry.start_at(org, position.last_seq);
        let seen = position.resolve(start)?;
        let (tx, rx) = mpsc::channel(self.config.stream_buffer);
        let subscriber = Subscriber {
            app: self.app.clone(),
            org,
            filter,
            subscription,
            seen,
            tx,
            stop: self.stop.clone(),
            stats: Arc::clone(&self.stats),
        };
        tokio::spawn(subscriber.run());
        Ok(rx)
    }
}
