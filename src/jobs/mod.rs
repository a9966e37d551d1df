//! Background work, safe with several instances on one database: every task finds its
//! work in the database and does each piece in a transaction that locks and re-checks
//! it, so two instances never do the same piece twice.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::App;

/// How often each background task runs.
#[derive(Clone, Debug)]
pub struct JobsConfig {
    /// Closing access segments that have ended (expiries and true-ups).
    pub segment_close_interval: Duration,
    /// How long violations are kept in the feed.
    pub violation_retention: Duration,
    /// How often expired violations are pruned.
    pub violation_prune_interval: Duration,
    /// How often commitment periods that have ended are closed.
    pub commitment_evaluation_interval: Duration,
    /// How often open reservations past their expiry are marked expired.
    pub reservation_expiry_interval: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            segment_close_interval: Duration::from_secs(10),
            violation_retention: Duration::from_secs(30 * 24 * 3600),
            violation_prune_interval: Duration::from_secs(3600),
            commitment_evaluation_interval: Duration::from_secs(60),
            reservation_expiry_interval: Duration::from_secs(10),
        }
    }
}

/// Starts every background task; each first waits until `migrated` says the schema is
/// in place (a job run against a half-made schema would fail and wait a whole interval),
/// and they stop when `stop` is cancelled.
pub fn spawn(
    app: App,
    config: JobsConfig,
    migrated: watch::Receiver<bool>,
    stop: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let closer = app.clone();
    let evaluator = app.clone();
    let expirer = app.clone();
    let pruner = app;
    let retention =
        chrono::Duration::from_std(config.violation_retention).unwrap_or(chrono::Duration::days(30));
    vec![
        tokio::spawn(every(config.segment_close_interval, migrated.clone(), stop.clone(), move || {
            let app = closer.clone();
            async move {
                match app.close_due_segments().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(segments = n, "closed ended access segments"),
                    Err(e) => tracing::warn!(error = %e, "closing ended access segments failed"),
                }
            }
        })),
        tokio::spawn(every(
            config.commitment_evaluation_interval,
            migrated.clone(),
            stop.clone(),
            move || {
                let app = evaluator.clone();
                async move {
                    match app.evaluate_due_commitments().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(periods = n, "closed commitment periods"),
                        Err(e) => tracing::warn!(error = %e, "closing commitment periods failed"),
                    }
                }
            },
        )),
        tokio::spawn(every(config.reservation_expiry_interval, migrated.clone(), stop.clone(), move || {
            let app = expirer.clone();
            async move {
                match app.expire_due_reservations().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(reservations = n, "expired reservations"),
                    Err(e) => tracing::warn!(error = %e, "expiring reservations failed"),
                }
            }
        })),
        tokio::spawn(every(config.violation_prune_interval, migrated, stop, move || {
            let app = pruner.clone();
            async move {
                match app.prune_violations(crate::app::clock::now() - retention).await {
                    Ok(p) => tracing::info!(
                        violations = p.violations,
                        months_dropped = ?p.months_dropped,
                        "pruned violations past their retention"
                    ),
                    Err(e) => tracing::warn!(error = %e, "pruning violations failed"),
                }
                match app.make_months_ahead().await {
                    Ok(made) if made.is_empty() => {}
                    Ok(made) => tracing::info!(partitions = ?made, "made monthly partitions ahead"),
                    Err(e) => tracing::warn!(error = %e, "making monthly partitions ahead failed"),
                }
            }
        })),
    ]
}

/// Runs `task` every `interval`, from when `migrated` turns true until `stop` is
/// cancelled.
async fn every<F, Fut>(
    interval: Duration,
    mut migrated: watch::Receiver<bool>,
    stop: CancellationToken,
    mut task: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    tokio::select! {
        _ = stop.cancelled() => return,
        ready = migrated.wait_for(|m| *m) => if ready.is_err() { return },
    }
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => task().await,
        }
    }
}
