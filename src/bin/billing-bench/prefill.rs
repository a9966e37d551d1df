//! History before the load: usage events generated in SQL (not through the API, which
//! would take hours for millions), spread over the seeded customers and the last year,
//! so the load runs against tables and indexes of a long-lived deployment.

use std::time::Instant;

use anyhow::Context as _;

use crate::cluster::sql_client;

/// Rows written by one statement: progress shows, and no statement holds hours of work.
const CHUNK: i64 = 500_000;

/// One chunk of events `first..=last` of `total`: event ids `prefill-<n>`, UUID v7 ids
/// from their recording time, a customer and a product of the seeded org in turn, one
/// every ~3 s over the year before now, and a stored answer the size of a real one; each
/// with its dedupe key, as the service writes them.
const INSERT_CHUNK: &str = "
    WITH org AS (
        SELECT c.org_id, array_agg(c.id ORDER BY c.id) AS customers,
               (SELECT array_agg(p.id ORDER BY p.id) FROM products p WHERE p.org_id = c.org_id) AS products
        FROM customers c GROUP BY c.org_id
    ), made AS (
        SELECT org.*, g, md5(g::text) AS h,
               now() - interval '365 days' * (($3 - g)::float8 / $3) AS at
        FROM org, generate_series($1::int8, $2::int8) AS g
    ), rows AS (
        SELECT org_id, 'prefill-' || g AS event_id,
               (lpad(to_hex((extract(epoch FROM at) * 1000)::int8), 12, '0') || '7' || substr(h, 1, 3) || '8'
                || substr(h, 4, 15))::uuid AS id,
               customers[1 + g % array_length(customers, 1)] AS customer_id,
               products[1 + g % array_length(products, 1)] AS product_id, h, at
        FROM made
    ), keys AS (
        INSERT INTO usage_event_keys (org_id, event_id, customer_id, id, recorded_at)
        SELECT org_id, event_id, customer_id, id, at FROM rows
    )
    INSERT INTO usage_events (org_id, event_id, id, customer_id, product_id, quantity, amount, credit_type,
                              occurred_at, decision, fingerprint, outcome_packed, recorded_at)
    SELECT org_id, event_id, id, customer_id, product_id, 1, 0.05, 'USD', at, 'ALLOWED', sha256(h::bytea),
           $4::bytea, at
    FROM rows";

/// The past year's months of the events, as a deployment that has run a year has them.
const MAKE_MONTHS: &str = "SELECT billing_create_month_partition('usage_events', \
     (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => i))::date) \
     FROM generate_series(1, 12) AS i";

/// Inserts `total` events for the seeded org of `database_url`, then vacuums and
/// analyzes them (the checkpoint before the load is the settle step's, as for every run).
pub async fn prefill(database_url: &str, total: i64) -> anyhow::Result<()> {
    if total <= 0 {
        return Ok(());
    }
    let client = sql_client(database_url, "the prefill").await?;
    // The stored answer of a recorded event: its size is what matters to the table (the
    // benchmark's events pack theirs in about 600 bytes; rows are about 820).
    let answer: Vec<u8> = client
        .query_opt("SELECT outcome_packed FROM usage_events WHERE outcome_packed IS NOT NULL LIMIT 1", &[])
        .await?
        .map_or_else(|| vec![0x5a; 600], |row| row.get(0));
    client.batch_execute(MAKE_MONTHS).await.context("making the past year's months")?;
    let started = Instant::now();
    let mut first = 1;
    while first <= total {
        let last = (first + CHUNK - 1).min(total);
        client
            .execute(INSERT_CHUNK, &[&first, &last, &total, &answer])
            .await
            .with_context(|| format!("prefilling events {first}..={last}"))?;
        eprintln!("  prefilled {last} / {total} events ({:.0?})", started.elapsed());
        first = last + 1;
    }
    // Then as a deployment in its steady state: vacuumed and analyzed.
    client
        .batch_execute("VACUUM ANALYZE usage_events, usage_event_keys")
        .await
        .context("VACUUM ANALYZE after the prefill")?;
    Ok(())
}
