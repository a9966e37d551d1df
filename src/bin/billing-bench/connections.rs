//! PostgreSQL connections the instances use during a phase: how many are open to the
//! benchmark's database and how many are busy at once (running a statement or inside a
//! transaction), sampled from `pg_stat_activity`. With more instances the open count
//! grows by a pool each; the busy count shows whether the database is what they wait on.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::cluster::sql_client;

/// The largest counts seen while sampling.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnectionsUsed {
    pub open: i64,
    pub busy: i64,
}

/// Samples `pg_stat_activity` every 50 ms until stopped.
pub struct ConnectionSampler {
    open: Arc<AtomicI64>,
    busy: Arc<AtomicI64>,
    task: JoinHandle<()>,
}

/// Connections to the database, then those not idle, leaving out this sampler's own.
const SAMPLE: &str = "SELECT count(*), count(*) FILTER (WHERE state <> 'idle') \
     FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";

impl ConnectionSampler {
    pub async fn start(database_url: &str) -> anyhow::Result<Self> {
        let client = sql_client(database_url, "the connection sampler").await?;
        let statement = client.prepare(SAMPLE).await?;
        let (open, busy) = (Arc::new(AtomicI64::new(0)), Arc::new(AtomicI64::new(0)));
        let (o, b) = (open.clone(), busy.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
                let Ok(row) = client.query_one(&statement, &[]).await else { return };
                o.fetch_max(row.get(0), Ordering::Relaxed);
                b.fetch_max(row.get(1), Ordering::Relaxed);
            }
        });
        Ok(Self { open, busy, task })
    }

    /// The peaks since the start; stops sampling.
    pub fn stop(self) -> ConnectionsUsed {
        self.task.abort();
        ConnectionsUsed { open: self.open.load(Ordering::Relaxed), busy: self.busy.load(Ordering::Relaxed) }
    }
}
