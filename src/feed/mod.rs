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

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use futures::Stream;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{App, AppError, Caller};
use crate::db::listen::Channel;
use crate::db::violations::NOTIFY_CHANNEL;
use crate::domain::violation::{StartAt, Violation, ViolationFilter};
use registry::Registry;
pub use subscriber::StreamEnd;
use subscriber::Subscriber;

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

    /// Opens a stream of the caller's org's violations matching `filter` from `start`;
    /// it ends when the caller's key is revoked or expires. Problems with the request (unknown
    /// customer, cursor not retained or ahead) fail here, before any message.
    pub async fn watch(
        &self,
        caller: Caller,
        start: StartAt,
        filter: ViolationFilter,
    ) -> Result<Watch, AppError> {
        let org = caller.org;
        if self.stop.is_cancelled() {
            return Err(AppError::Db(crate::db::DbError::ShuttingDown));
        }
        // Subscribe before reading the position, so nothing committed after it is missed;
        // likewise for revocations before the key is trusted for the stream.
        let subscription = self.registry.subscribe(org);
        let revocations = self.app.key_cache().revocations();
        let position = self.app.feed_position(org, filter.clone()).await?;
        // Live delivery starts after this head (unless an earlier subscriber started it);
        // everything up to the head this stream reads from the table.
        self.registry.start_at(org, position.last_seq);
        let seen = position.resolve(start)?;
        let (tx, rx) = mpsc::channel(self.config.stream_buffer);
        let (end_tx, end) = oneshot::channel();
        let subscriber = Subscriber {
            app: self.app.clone(),
            org,
            key: caller.key,
            expiry: caller.expires_at.map(instant_of),
            filter,
            subscription,
            revocations: Some(revocations),
            seen,
            tx,
            end: Some(end_tx),
            stop: self.stop.clone(),
            stats: Arc::clone(&self.stats),
        };
        tokio::spawn(subscriber.run());
        Ok(Watch { rx, end })
    }
}

/// The monotonic instant of the wall-clock time `at` (now if it has passed).
fn instant_of(at: DateTime<Utc>) -> Instant {
    let ahead = (at - crate::app::clock::now()).to_std().unwrap_or_default();
    Instant::now() + ahead
}

/// One open stream, as its reader sees it.
pub struct Watch {
    rx: mpsc::Receiver<Violation>,
    end: oneshot::Receiver<StreamEnd>,
}

impl Watch {
    /// Violations in order, then always exactly one end, never a silent finish. The end
    /// goes out as soon as it is known, ahead of violations still buffered for a slow
    /// client: those are dropped, which loses nothing, since the client's last cursor
    /// comes before them and resuming from it delivers them again.
    pub fn into_stream(self) -> impl Stream<Item = Result<Violation, StreamEnd>> + Send {
        futures::stream::unfold(Some(self), |state| async move {
            let mut w = state?;
            let ended = |r: Result<StreamEnd, oneshot::error::RecvError>| r.unwrap_or(StreamEnd::Interrupted);
            tokio::select! {
                biased;
                why = &mut w.end => Some((Err(ended(why)), None)),
                next = w.rx.recv() => match next {
                    Some(v) => Some((Ok(v), Some(w))),
                    None => {
                        let why = (&mut w.end).await;
                        Some((Err(ended(why)), None))
                    }
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::domain::ids::CustomerId;
    use crate::domain::violation::{NewViolation, ViolationDetail, ViolationKind};

    fn violation(seq: i64) -> Violation {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        Violation {
            seq,
            recorded_at: at,
            violation: NewViolation::new(
                uuid::Uuid::now_v7(),
                ViolationKind::LimitBlock,
                Some(CustomerId::generate()),
                at,
                ViolationDetail::default(),
            ),
        }
    }

    fn watch(buffer: usize) -> (mpsc::Sender<Violation>, oneshot::Sender<StreamEnd>, Watch) {
        let (tx, rx) = mpsc::channel(buffer);
        let (end_tx, end) = oneshot::channel();
        (tx, end_tx, Watch { rx, end })
    }

    #[tokio::test]
    async fn the_end_goes_out_ahead_of_a_full_buffer_and_nothing_follows_it() {
        let (tx, end, w) = watch(1);
        tx.try_send(violation(7)).unwrap();
        assert!(tx.try_send(violation(8)).is_err(), "the buffer is full");
        end.send(StreamEnd::Shutdown).unwrap();
        let items: Vec<_> = w.into_stream().collect().await;
        assert_eq!(items.len(), 1, "the end, then nothing: {items:?}");
        assert_eq!(items[0].as_ref().unwrap_err(), &StreamEnd::Shutdown);
    }

    #[tokio::test]
    async fn violations_flow_until_the_end_and_a_vanished_task_is_an_error_not_a_finish() {
        let (tx, end, w) = watch(4);
        tx.try_send(violation(1)).unwrap();
        tx.try_send(violation(2)).unwrap();
        let mut stream = Box::pin(w.into_stream());
        assert_eq!(stream.next().await.unwrap().unwrap().seq, 1);
        assert_eq!(stream.next().await.unwrap().unwrap().seq, 2);
        // The task ends without saying why (it panicked): the reader is told to resume.
        drop((tx, end));
        assert!(matches!(stream.next().await, Some(Err(StreamEnd::Interrupted))));
        assert!(stream.next().await.is_none());
    }
}
