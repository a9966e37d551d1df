//! The fetcher: on each wake-up (or poll tick) it finds which subscribed orgs' feeds
//! moved, reads their new violations once, and hands them to the registry. Readers of
//! one instance thus cost one query per org per wake-up, however many they are.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::registry::Registry;
use crate::app::App;
use crate::domain::violation::ViolationFilter;

/// Most violations read per org per query.
const BATCH: i64 = 1000;

/// Fetches and publishes until `stop`.
pub async fn run(
    app: App,
    registry: Arc<Registry>,
    wake: Arc<Notify>,
    poll: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
        if let Err(e) = fetch_once(&app, &registry).await {
            tracing::warn!(error = %e, "violation feed fetch failed; retrying on the next wake-up");
        }
    }
}

/// Publishes whatever subscribed orgs' feeds gained since their last broadcast.
pub async fn fetch_once(app: &App, registry: &Registry) -> Result<(), crate::app::AppError> {
    let orgs = registry.orgs();
    if orgs.is_empty() {
        return Ok(());
    }
    let positions: HashMap<_, _> =
        app.feed_positions(orgs.iter().map(|(o, _)| *o).collect()).await?.into_iter().collect();
    for (org, last) in orgs {
        let head = positions.get(&org).map_or(0, |p| p.last_seq);
        // An org's broadcast starts where its first subscriber found the feed; until
        // that subscriber has looked, there is nothing to send it.
        let Some(mut last) = last else { continue };
        while last < head {
            let (batch, _) =
                app.violations_between(org, ViolationFilter::default(), last, Some(head), BATCH).await?;
            let Some(end) = batch.last().map(|v| v.seq) else { break };
            registry.publish(org, batch);
            last = end;
        }
    }
    Ok(())
}
