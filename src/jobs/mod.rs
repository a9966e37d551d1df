//! Background work, safe with several instances on one database: every task finds its
//! work in the database and does each piece in a transaction that locks and re-checks
//! it, so two instances never do the same piece twice.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::App;

/// How often each background task runs.
#[derive(Clone, Debug)]
pub struct JobsConfig {
    /// Closing access segments that have ended (expiries and true-ups).
    pub segment_close_interval: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { segment_close_interval: Duration::from_secs(10) }
    }
}

/// Starts every background task; they stop when `stop` is cancelled.
pub fn spawn(app: App, config: JobsConfig, stop: CancellationToken) -> Vec<JoinHandle<()>> {
    vec![tokio::spawn(every(config.segment_close_interval, stop, move || {
        let app = app.clone();
        async move {
            match app.close_due_segments().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(segments = n, "closed ended access segments"),
                Err(e) => tracing::warn!(error = %e, "closing ended access segments failed"),
            }
        }
    }))]
}

/// Runs `task` every `interval` until `stop` is cancelled.
async fn every<F, Fut>(interval: Duration, stop: CancellationToken, mut task: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => task().await,
        }
    }
}
