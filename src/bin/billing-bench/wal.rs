//! Write-ahead log written during a phase: the bytes every event costs PostgreSQL to make
//! durable (its rows, index entries and, after a checkpoint, the full image of each page
//! first touched), whoever wrote them.

use crate::cluster::sql_client;

/// The WAL position at the start of a phase.
pub struct WalMark {
    client: tokio_postgres::Client,
    at: i64,
}

/// Bytes of WAL from its start to the current insert position.
const POSITION: &str = "SELECT (pg_current_wal_insert_lsn() - '0/0')::int8";

impl WalMark {
    pub async fn take(database_url: &str) -> anyhow::Result<Self> {
        let client = sql_client(database_url, "the WAL sampler").await?;
        let at = client.query_one(POSITION, &[]).await?.get(0);
        Ok(Self { client, at })
    }

    /// WAL bytes written since the mark.
    pub async fn bytes_since(&self) -> anyhow::Result<i64> {
        let now: i64 = self.client.query_one(POSITION, &[]).await?.get(0);
        Ok(now - self.at)
    }
}
