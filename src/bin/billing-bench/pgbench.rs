//! The Postgres limit: `pgbench` running, per transaction, the SQL one usage event
//! costs at least (a dedupe lookup in `usage_event_keys`, the day and month totals
//! upserts, the read of the ledger entries effective after the event, a commit balance
//! update, and the event's key and row with a stored answer of the size the service's
//! are) on the service's own tables and data; the same work in set-based form for a
//! batch of events per transaction, the limit of RecordUsageBatch; and the rows alone a
//! recorded event leaves, written as cheaply as SQL can: the bound no reading or deciding
//! lowers further. The event's row id is
//! derived from its event id (`md5(..)::uuid`) so the key and the row, written by two
//! statements, name the same row.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::cluster::sql_client;

const SCRIPT: &str = r#"\set n random(1, :customers)
SELECT org, cust, prod, cmt, gen_random_uuid()::text AS ev FROM bench_map WHERE n = :n \gset
BEGIN;
SELECT 1 FROM usage_event_keys WHERE org_id = :org AND event_id = :ev;
INSERT INTO usage_totals (org_id, customer_id, window_kind, first_day, product_id, credit_type, amount, quantity)
  VALUES (:org, :cust, 'DAY', current_date, :prod, 'USD', 0.05, 1)
  ON CONFLICT (org_id, customer_id, window_kind, first_day, product_id, credit_type)
  DO UPDATE SET amount = usage_totals.amount + excluded.amount, quantity = usage_totals.quantity + excluded.quantity;
INSERT INTO usage_totals (org_id, customer_id, window_kind, first_day, product_id, credit_type, amount, quantity)
  VALUES (:org, :cust, 'MONTH', date_trunc('month', current_date)::date, :prod, 'USD', 0.05, 1)
  ON CONFLICT (org_id, customer_id, window_kind, first_day, product_id, credit_type)
  DO UPDATE SET amount = usage_totals.amount + excluded.amount, quantity = usage_totals.quantity + excluded.quantity;
SELECT effective_at, amount FROM commit_ledger
  WHERE org_id = :org AND commit_id = :cmt AND segment_idx = 0 AND effective_at > now();
UPDATE commit_segments SET remaining = remaining - 0.05 WHERE org_id = :org AND commit_id = :cmt AND idx = 0;
INSERT INTO usage_event_keys (org_id, event_id, customer_id, id, recorded_at)
  VALUES (:org, :ev, :cust, md5(:ev)::uuid, now());
INSERT INTO usage_events (org_id, event_id, id, customer_id, product_id, quantity, amount, credit_type,
                          occurred_at, decision, fingerprint, outcome_packed, recorded_at)
  VALUES (:org, :ev, md5(:ev)::uuid, :cust, :prod, 1, 0.05, 'USD', now(), 'ALLOWED', '\x00', {ANSWER}, now());
END;
"#;

/// The per-event work for `:batch` events per transaction, set-based: one statement per
/// step over all of the batch's events. Every statement draws the same batch from
/// `:seed` (a hash of the seed and the event's place picks its customer), so no temporary
/// table is needed and statements stay prepared. Rows are locked in key order, as the
/// service does, so concurrent batches wait instead of deadlocking.
const BATCH_SCRIPT: &str = r#"\set seed random(1, 2000000000)
BEGIN;
SELECT count(*) FROM usage_event_keys e JOIN (
  SELECT m.org, :seed || '-' || g AS ev FROM generate_series(1, :batch) g
  {PICK}) b
  ON e.org_id = b.org AND e.event_id = b.ev;
INSERT INTO usage_totals (org_id, customer_id, window_kind, first_day, product_id, credit_type, amount, quantity)
  SELECT m.org, m.cust, 'DAY', current_date, m.prod, 'USD', 0.05 * count(*), count(*)
  FROM generate_series(1, :batch) g {PICK}
  GROUP BY m.org, m.cust, m.prod ORDER BY m.org, m.cust, m.prod
  ON CONFLICT (org_id, customer_id, window_kind, first_day, product_id, credit_type)
  DO UPDATE SET amount = usage_totals.amount + excluded.amount, quantity = usage_totals.quantity + excluded.quantity;
INSERT INTO usage_totals (org_id, customer_id, window_kind, first_day, product_id, credit_type, amount, quantity)
  SELECT m.org, m.cust, 'MONTH', date_trunc('month', current_date)::date, m.prod, 'USD', 0.05 * count(*), count(*)
  FROM generate_series(1, :batch) g {PICK}
  GROUP BY m.org, m.cust, m.prod ORDER BY m.org, m.cust, m.prod
  ON CONFLICT (org_id, customer_id, window_kind, first_day, product_id, credit_type)
  DO UPDATE SET amount = usage_totals.amount + excluded.amount, quantity = usage_totals.quantity + excluded.quantity;
SELECT count(*) FROM commit_ledger l JOIN (
  SELECT DISTINCT m.org, m.cmt FROM generate_series(1, :batch) g
  {PICK}) b
  ON l.org_id = b.org AND l.commit_id = b.cmt AND l.segment_idx = 0 AND l.effective_at > now();
SELECT 1 FROM commit_segments s JOIN (
  SELECT DISTINCT m.org, m.cmt FROM generate_series(1, :batch) g
  {PICK}) b
  ON s.org_id = b.org AND s.commit_id = b.cmt AND s.idx = 0
  ORDER BY s.org_id, s.commit_id FOR UPDATE OF s;
UPDATE commit_segments s SET remaining = remaining - d.amount FROM (
  SELECT m.org, m.cmt, 0.05 * count(*) AS amount FROM generate_series(1, :batch) g
  {PICK} GROUP BY m.org, m.cmt) d
  WHERE s.org_id = d.org AND s.commit_id = d.cmt AND s.idx = 0;
INSERT INTO usage_event_keys (org_id, event_id, customer_id, id, recorded_at)
  SELECT m.org, :seed || '-' || g, m.cust, md5(:seed || '-' || g)::uuid, now()
  FROM generate_series(1, :batch) g {PICK};
INSERT INTO usage_events (org_id, event_id, id, customer_id, product_id, quantity, amount, credit_type,
                          occurred_at, decision, fingerprint, outcome_packed, recorded_at)
  SELECT m.org, :seed || '-' || g, md5(:seed || '-' || g)::uuid, m.cust, m.prod, 1, 0.05, 'USD', now(), 'ALLOWED',
         '\x00', {ANSWER}, now()
  FROM generate_series(1, :batch) g {PICK};
END;
"#;

/// The rows a batch of recorded events leaves, and nothing else: the customers locked,
/// the day and month totals, the segment's balance (with `ledger_last_at`, as the service
/// writes it), a ledger entry per drawdown, the event's key and its row. No reads, no
/// decisions, and the cheapest pick of customers (`:rows` of them, consecutive in id
/// order, one event each), so no step of the service's work is counted but the writing.
/// Ledger ids are time-ordered, as the service's UUID v7 are; event ids start `rows-` so
/// they never meet the batch script's.
const ROWS_SCRIPT: &str = r#"\set first random(1, :customers - :rows + 1)
\set last :first + :rows - 1
\set seed random(1, 2000000000)
BEGIN;
SELECT 1 FROM customers c JOIN bench_map m ON c.org_id = m.org AND c.id = m.cust
  WHERE m.n BETWEEN :first AND :last ORDER BY c.id FOR UPDATE OF c;
INSERT INTO usage_totals (org_id, customer_id, window_kind, first_day, product_id, credit_type, amount, quantity)
  SELECT m.org, m.cust, k.kind, k.day, m.prod, 'USD', 0.05, 1
  FROM bench_map m, (VALUES ('DAY', current_date), ('MONTH', date_trunc('month', current_date)::date)) k(kind, day)
  WHERE m.n BETWEEN :first AND :last
  ON CONFLICT (org_id, customer_id, window_kind, first_day, product_id, credit_type)
  DO UPDATE SET amount = usage_totals.amount + excluded.amount, quantity = usage_totals.quantity + excluded.quantity;
UPDATE commit_segments s SET remaining = remaining - 0.05, ledger_last_at = GREATEST(s.ledger_last_at, now())
  FROM bench_map m WHERE m.n BETWEEN :first AND :last AND s.org_id = m.org AND s.commit_id = m.cmt AND s.idx = 0;
INSERT INTO commit_ledger (org_id, id, commit_id, segment_idx, kind, amount, effective_at, source_id, product_id, created_at)
  SELECT m.org, (lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000000)::bigint), 14, '0')
                 || substr(md5('rows-' || :seed || '-' || m.n), 15))::uuid,
         m.cmt, 0, 'DRAWDOWN', -0.05, now(), md5('rows-' || :seed || '-' || m.n)::uuid, m.prod, now()
  FROM bench_map m WHERE m.n BETWEEN :first AND :last;
INSERT INTO usage_event_keys (org_id, event_id, customer_id, id, recorded_at)
  SELECT m.org, 'rows-' || :seed || '-' || m.n, m.cust, md5('rows-' || :seed || '-' || m.n)::uuid, now()
  FROM bench_map m WHERE m.n BETWEEN :first AND :last;
INSERT INTO usage_events (org_id, event_id, id, customer_id, product_id, quantity, amount, credit_type,
                          occurred_at, decision, fingerprint, outcome_packed, recorded_at)
  SELECT m.org, 'rows-' || :seed || '-' || m.n, md5('rows-' || :seed || '-' || m.n)::uuid, m.cust, m.prod, 1, 0.05, 'USD', now(), 'ALLOWED',
         '\x00', {ANSWER}, now()
  FROM bench_map m WHERE m.n BETWEEN :first AND :last;
END;
"#;

/// The batch's events (`g` in 1..=:batch) and their customers, as every statement of
/// the batch script reads them (`{PICK}` there).
const PICK: &str = "JOIN bench_map m ON m.n = 1 + (hashint4(g + :seed) & 2147483647) % :customers";

/// The stored answer of each event: the benchmark's events pack theirs in about 600
/// bytes (see `prefill`).
const ANSWER: &str = "decode(repeat('5a', 600), 'hex')";

/// Maps 1..=N to the seeded customers, with a product and a commit of each.
const MAP: &str = "DROP TABLE IF EXISTS bench_map;
CREATE TABLE bench_map AS
SELECT row_number() OVER (ORDER BY c.id)::int AS n, c.org_id AS org, c.id AS cust,
       (SELECT p.id FROM products p WHERE p.org_id = c.org_id ORDER BY p.id LIMIT 1) AS prod,
       (SELECT s.commit_id FROM commit_segments s
         WHERE s.org_id = c.org_id AND s.customer_id = c.id ORDER BY s.commit_id LIMIT 1) AS cmt
FROM customers c;
CREATE UNIQUE INDEX ON bench_map (n);
ANALYZE bench_map;";

/// The events the rows script writes per transaction: one per customer, so at most
/// all of them.
pub fn rows_per_transaction(customers: usize, batch: usize) -> usize {
    batch.min(customers).max(1)
}

/// What one pgbench run measured.
pub struct PgbenchRun {
    pub clients: usize,
    pub tps: f64,
    pub latency_avg_ms: f64,
}

fn pgbench_binary() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("PGBENCH") {
        return Ok(p.into());
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("pgbench"))
        .find(|p| p.exists());
    let versioned = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/pgbench"))
        .find(|p| p.exists());
    on_path.or(versioned).context("pgbench not found (install postgresql-client, or set PGBENCH)")
}

/// The scripts pgbench runs.
pub struct Scripts {
    /// One event per transaction.
    pub per_event: PathBuf,
    /// `batch` events per transaction, set-based.
    pub batch: PathBuf,
    /// The rows of `rows` events per transaction, and nothing else.
    pub rows: PathBuf,
}

/// Prepares the mapping table and writes the scripts.
pub async fn prepare(database_url: &str, dir: &Path) -> anyhow::Result<Scripts> {
    let client = sql_client(database_url, "to create bench_map").await?;
    client.batch_execute(MAP).await.context("creating bench_map")?;
    let scripts = Scripts {
        per_event: dir.join("usage_event.sql"),
        batch: dir.join("usage_batch.sql"),
        rows: dir.join("usage_rows.sql"),
    };
    std::fs::write(&scripts.per_event, SCRIPT.replace("{ANSWER}", ANSWER))?;
    std::fs::write(&scripts.batch, BATCH_SCRIPT.replace("{PICK}", PICK).replace("{ANSWER}", ANSWER))?;
    std::fs::write(&scripts.rows, ROWS_SCRIPT.replace("{ANSWER}", ANSWER))?;
    Ok(scripts)
}

/// Connections pgbench may open without starving the running service of its own.
pub async fn free_connections(database_url: &str) -> anyhow::Result<usize> {
    let client = sql_client(database_url, "to count free connections").await?;
    let row = client
        .query_one(
            "SELECT current_setting('max_connections')::int - count(*)::int FROM pg_stat_activity",
            &[],
        )
        .await?;
    let free: i32 = row.get(0);
    // Room for the service's pools to grow back and for superuser slots.
    Ok(usize::try_from(free - 40).unwrap_or(1).max(1))
}

/// Runs the script with `clients` connections for `seconds`; `batch` is the batch
/// script's events per transaction, and the rows script's too where the customers are
/// that many (`rows_per_transaction`). Dropped before it ends, the run kills pgbench.
pub async fn run(
    database_url: &str,
    script: &Path,
    (customers, batch): (usize, usize),
    clients: usize,
    seconds: u64,
) -> anyhow::Result<PgbenchRun> {
    let out = tokio::process::Command::new(pgbench_binary()?)
        .args(["-n", "-M", "prepared", "-c", &clients.to_string(), "-j", &clients.min(2).to_string()])
        .args(["-T", &seconds.max(1).to_string(), "-D", &format!("customers={customers}")])
        .args(["-D", &format!("batch={batch}")])
        .args(["-D", &format!("rows={}", rows_per_transaction(customers, batch))])
        .arg("-f")
        .arg(script)
        .arg(database_url)
        .kill_on_drop(true)
        .output()
        .await
        .context("running pgbench")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("pgbench failed: {}\n{}{}", out.status, stdout, String::from_utf8_lossy(&out.stderr));
    }
    let number_after = |prefix: &str| -> anyhow::Result<f64> {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .with_context(|| format!("no {prefix:?} in pgbench output"))?;
        Ok(line[prefix.len()..].split_whitespace().next().unwrap_or_default().parse()?)
    };
    Ok(PgbenchRun {
        clients,
        tps: number_after("tps = ")?,
        latency_avg_ms: number_after("latency average = ")?,
    })
}
