//! The violation feed is partitioned by month of `recorded_at`: months are made ahead by
//! the prune job, retention drops whole months once no org's feed retains a row of them,
//! and rows no month was made for land in the default partition and are pruned there.

use billing::proto::v1 as pb;
use chrono::{Datelike as _, Duration, TimeZone as _, Utc};
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::support::TestServer;
use crate::support::fixtures::{Tenant, block_everything, list_violations, raise};

#[derive(QueryableByName, Debug, PartialEq)]
struct Placed {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    partition: String,
}

/// Each violation of the table, with the partition that holds it, by sequence number.
fn placement(conn: &mut PgConnection) -> Vec<(i64, String)> {
    diesel::sql_query("SELECT seq, tableoid::regclass::text AS partition FROM violations ORDER BY seq")
        .load::<Placed>(conn)
        .unwrap()
        .into_iter()
        .map(|p| (p.seq, p.partition))
        .collect()
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The feed's partitions, by name.
fn partitions(conn: &mut PgConnection) -> Vec<String> {
    diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'violations'::regclass ORDER BY 1",
    )
    .load::<Name>(conn)
    .unwrap()
    .into_iter()
    .map(|n| n.name)
    .collect()
}

/// The partition name of the month `months` after the current one.
fn month_name(months: u32) -> String {
    let now = Utc::now();
    let index = now.year() * 12 + now.month0() as i32 + months as i32;
    format!("violations_y{:04}m{:02}", index / 12, index % 12 + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violations_land_in_their_month_and_months_are_made_ahead() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    block_everything(&server, &t).await;
    raise(&server, &t, "now", 3).await;
    let mut owner = server.db.connect();
    assert_eq!(placement(&mut owner), (1..=3).map(|s| (s, month_name(0))).collect::<Vec<_>>());
    let mut expected: Vec<String> =
        (0..=3).map(month_name).chain(["violations_default".to_owned()]).collect();
    expected.sort();
    let mut found = partitions(&mut owner);
    found.retain(|p| expected.contains(p));
    assert_eq!(found, expected, "this month, three ahead and the default partition exist");

    // A month missing ahead (a job that did not run) is made by the next prune run.
    owner.batch_execute(&format!("DROP TABLE {}", month_name(2))).unwrap();
    let run = server.app.prune_violations(Utc::now() - Duration::days(30)).await.unwrap();
    assert_eq!(run.months_made, [month_name(2)]);
    assert!(partitions(&mut owner).contains(&month_name(2)));
}

/// Moves violation `seq` of `org` to `recorded_at`, as the table's owner (PostgreSQL
/// moves the row to that month's partition).
fn record_at(conn: &mut PgConnection, org: uuid::Uuid, seq: i64, recorded_at: chrono::DateTime<Utc>) {
    let moved = diesel::sql_query("UPDATE violations SET recorded_at = $3 WHERE org_id = $1 AND seq = $2")
        .bind::<diesel::sql_types::Uuid, _>(org)
        .bind::<BigInt, _>(seq)
        .bind::<diesel::sql_types::Timestamptz, _>(recorded_at)
        .execute(conn)
        .unwrap();
    assert_eq!(moved, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_a_month_no_feed_retains_and_keeps_one_a_feed_still_reads() {
    let server = TestServer::start().await;
    let a = Tenant::create(&server, "A").await;
    let b = Tenant::create(&server, "B").await;
    let (org_a, org_b) = (server.org_of(&a.key).await.uuid(), server.org_of(&b.key).await.uuid());
    let mut owner = server.db.connect();
    owner
        .batch_execute(
            "SELECT billing_create_month_partition('violations', '2026-01-01');
             SELECT billing_create_month_partition('violations', '2026-02-01');",
        )
        .unwrap();
    let at = |month: u32, day: u32| Utc.with_ymd_and_hms(2026, month, day, 12, 0, 0).unwrap();
    for t in [&a, &b] {
        block_everything(&server, t).await;
    }
    // A: two January violations, then one recorded now.
    raise(&server, &a, "a", 3).await;
    record_at(&mut owner, org_a, 1, at(1, 10));
    record_at(&mut owner, org_a, 2, at(1, 20));
    // B: its February violation took its number after one recorded later (a transaction
    // that began before the month ended): past the cutoff by time, but after a number
    // the feed still retains, so it stays readable and February stays.
    raise(&server, &b, "b", 2).await;
    record_at(&mut owner, org_b, 2, at(2, 27));

    let cutoff = at(3, 15);
    let run = server.app.prune_violations(cutoff).await.unwrap();
    assert_eq!(run.violations, 2, "A's two January violations left the feed; none of B's");
    assert_eq!(run.months_dropped, ["violations_y2026m01"]);
    let left = partitions(&mut owner);
    assert!(
        !left.contains(&"violations_y2026m01".to_owned()) && left.contains(&"violations_y2026m02".to_owned())
    );
    let seqs = |v: Vec<pb::Violation>| v.into_iter().map(|v| v.sequence).collect::<Vec<_>>();
    let all = pb::ListViolationsRequest { page_size: 100, ..Default::default() };
    assert_eq!(seqs(list_violations(&server, &a.key, all.clone()).await), [3]);
    assert_eq!(seqs(list_violations(&server, &b.key, all.clone()).await), [1, 2], "B still reads February");

    // Once B's feed moves past it too, February goes.
    let run = server.app.prune_violations(Utc::now() + Duration::seconds(1)).await.unwrap();
    assert_eq!(run.violations, 3);
    assert_eq!(run.months_dropped, ["violations_y2026m02"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_without_a_month_land_in_the_default_partition_and_are_pruned_there() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let org = server.org_of(&t.key).await.uuid();
    let mut owner = server.db.connect();
    block_everything(&server, &t).await;
    raise(&server, &t, "e", 2).await;
    record_at(&mut owner, org, 1, Utc.with_ymd_and_hms(2020, 5, 1, 0, 0, 0).unwrap());
    assert_eq!(placement(&mut owner), [(1, "violations_default".to_owned()), (2, month_name(0))]);
    // Its month cannot be made while its rows sit in the default partition.
    owner.batch_execute("SELECT billing_create_month_partition('violations', '2020-05-01')").unwrap();
    assert!(!partitions(&mut owner).contains(&"violations_y2020m05".to_owned()));

    let run = server.app.prune_violations(Utc::now() - Duration::days(1)).await.unwrap();
    assert_eq!(run.violations, 1);
    assert_eq!(placement(&mut owner), [(2, month_name(0))], "the default partition's pruned row is deleted");
}
