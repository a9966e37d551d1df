//! The violation feed: live delivery of violations to WatchViolations streams, on every
//! instance. Writers append violations in their own transactions and NOTIFY; each
//! instance's listener wakes its fetcher, which reads new rows once per org and
//! broadcasts them to that org's subscribers through the registry. Subscribers fill any
//! gap from the table, so delivery is in order and at least once, and a slow subscriber
//! slows nobody else.

pub mod fetcher;
pub mod listener;
pub mod registry;
pub mod subscriber;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{App, AppError};
use crate::domain::ids::OrgId;
use crate::domain::violation::{StartAt, StartError, ViolationFilter};
use registry::Registry;
use subscriber::{Item, Subscriber};

/// How the feed runs.
#[derive(Clone, Debug)]
pub struct FeedConfig {
    /// Fallback poll of the table when no notification arrives.
    pub poll_interval: Duration,
    /// Messages buffered per stream before the stream waits for its client.
    pub stream_buffer: usize,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self { poll_interval: Duration::from_secs(1), stream_buffer: 64 }
    }
}

/// The running feed of one instance.
#[derive(Clone)]
pub struct Feed {
    app: App,
    registry: Arc<Registry>,
    config: FeedConfig,
    stop: CancellationToken,
}

impl Feed {
    /// Starts the listener (on `database_url`) and the fetcher; both end with `stop`.
    pub fn start(
        app: App,
        database_url: String,
        config: FeedConfig,
        stop: CancellationToken,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let registry = Arc::new(Registry::default());
        let wake = Arc::new(Notify::new());
        let tasks = vec![
            tokio::spawn(listener::run(database_url, Arc::clone(&wake), stop.clone())),
            tokio::spawn(fetcher::run(
                app.clone(),
                Arc::clone(&registry),
                wake,
                config.poll_interval,
                stop.clone(),
            )),
        ];
        (Self { app, registry, config, stop }, tasks)
    }

    /// Live subscriptions on this instance.
    pub fn subscribers(&self) -> usize {
        self.registry.subscribers()
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
        let seen = position.resolve(start).map_err(|e| match e {
            StartError::NotRetained => {
                AppError::OutOfRange("the violations after this cursor are no longer retained".into())
            }
            StartError::Ahead => {
                AppError::OutOfRange("this cursor is ahead of the organization's feed".into())
            }
        })?;
        let (tx, rx) = mpsc::channel(self.config.stream_buffer);
        let subscriber = Subscriber {
            app: self.app.clone(),
            org,
            filter,
            subscription,
            seen,
            tx,
            stop: self.stop.clone(),
        };
        tokio::spawn(subscriber.run());
        Ok(rx)
    }
}
