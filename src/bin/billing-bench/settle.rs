//! Letting the machine settle before the load: after gigabytes of writes (a prefill,
//! the previous run's database dropped) the kernel keeps writing back for minutes, and a
//! load measured meanwhile is 35 to 60% slower on a two-core machine, more than any
//! effect the benchmark looks for.
//!
//! Every run's load also starts right after a checkpoint. The first change to a page
//! after a checkpoint writes the whole page to the WAL; a run whose load starts right
//! after one (a prefilled run always did, its prefill checkpointed) pays those images
//! for every page it touches first, a run whose last checkpoint was minutes earlier does
//! not, and prefilled and empty runs would not be measured alike.

use std::time::{Duration, Instant};

use crate::cluster::sql_client;

/// Below this much memory waiting to be written back, the machine counts as quiet.
const QUIET_BYTES: u64 = 32 * 1024 * 1024;
/// How long to wait for write-back before measuring anyway (and saying so).
const MOST: Duration = Duration::from_secs(600);

/// Bytes dirty or being written back, from `/proc/meminfo` (Linux); `None` elsewhere.
fn pending_writeback() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
    };
    Some((kb("Dirty:")? + kb("Writeback:")?) * 1024)
}

/// Autovacuum workers running on the server of `client`.
async fn autovacuum_workers(client: &tokio_postgres::Client) -> anyhow::Result<i64> {
    let row = client
        .query_one("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'", &[])
        .await?;
    Ok(row.get(0))
}

/// Waits until no autovacuum worker runs (after millions of rows written it vacuums and
/// analyzes them, on the same two cores as the load), checkpoints, flushes the file
/// systems and waits until nothing is left to write back, then idles for `pause`;
/// returns how long it took.
pub async fn settle(database_url: &str, pause: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let client = sql_client(database_url, "the settle check").await?;
    loop {
        let workers = autovacuum_workers(&client).await?;
        if workers == 0 {
            break;
        }
        if started.elapsed() > MOST {
            eprintln!("  still {workers} autovacuum worker(s) after {MOST:?}: measuring anyway");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // CHECKPOINT takes a superuser or `pg_checkpoint`; a run without either is measured
    // anyway, and says that its load may not start alike.
    if let Err(e) = client.batch_execute("CHECKPOINT").await {
        eprintln!("  no checkpoint before the load ({e}): runs may not start alike");
    }
    // `sync` returns once everything dirty is on disk; it blocks, so off the runtime.
    tokio::task::spawn_blocking(|| std::process::Command::new("sync").status()).await??;
    while let Some(pending) = pending_writeback().filter(|b| *b > QUIET_BYTES) {
        if started.elapsed() > MOST {
            eprintln!("  still {} MB to write back after {MOST:?}: measuring anyway", pending >> 20);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(pause).await;
    Ok(started.elapsed())
}
