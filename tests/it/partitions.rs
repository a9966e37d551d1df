//! Violations and usage events are partitioned by month of `recorded_at`: months are made
//! ahead by a job; the feed's retention drops whole months once no org's feed retains a
//! row of them, and its rows no month was made for land in the default partition and are
//! pruned there; an event id stays used once across months (the key table).

use billing::proto::v1 as pb;
use chrono::{Datelike as _, Duration, TimeZone as _, Utc};
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use tonic::Code;

use crate::support::fixtures::{
    Tenant, block_everything, commits, create_commit, event, list_violations, prepaid, raise, record,
    usage_client,
};
use crate::support::{TestServer, expect_code};
use crate::usage::{daily_amount, set_limits};

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

/// The name of `table`'s partition of the month `months` after the current one.
fn month_of(table: &str, months: u32) -> String {
    let now = Utc::now();
    let index = now.year() * 12 + now.month0() as i32 + months as i32;
    format!("{table}_y{:04}m{:02}", index / 12, index % 12 + 1)
}

/// The feed's partition of the month `months` after the current one.
fn month_name(months: u32) -> String {
    month_of("violations", months)
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

    // Months missing ahead (a job that did not run) are made by the next run, for the
    // feed and the usage events alike.
    owner
        .batch_execute(&format!("DROP TABLE {}; DROP TABLE {}", month_name(2), month_of("usage_events", 3)))
        .unwrap();
    assert_eq!(server.app.make_months_ahead().await.unwrap(), [month_name(2), month_of("usage_events", 3)]);
    assert!(partitions(&mut owner).contains(&month_name(2)));
    let refused = owner.batch_execute("SELECT billing_create_month_partition('customers', '2026-01-01')");
    assert!(
        refused.as_ref().is_err_and(|e| e.to_string().contains("customers is not a partitioned table")),
        "{refused:?}"
    );
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
async fn rows_without_a_month_wait_in_the_default_partition_until_it_is_made_or_they_are_pruned() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let org = server.org_of(&t.key).await.uuid();
    let mut owner = server.db.connect();
    block_everything(&server, &t).await;
    raise(&server, &t, "e", 3).await;
    record_at(&mut owner, org, 1, Utc.with_ymd_and_hms(2020, 5, 1, 0, 0, 0).unwrap());
    record_at(&mut owner, org, 2, Utc.with_ymd_and_hms(2020, 6, 1, 0, 0, 0).unwrap());
    let default = "violations_default".to_owned();
    assert_eq!(placement(&mut owner), [(1, default.clone()), (2, default.clone()), (3, month_name(0))]);
    // Making a month late moves its rows out of the default partition.
    owner.batch_execute("SELECT billing_create_month_partition('violations', '2020-06-01')").unwrap();
    let june = "violations_y2020m06".to_owned();
    assert_eq!(placement(&mut owner), [(1, default), (2, june.clone()), (3, month_name(0))]);

    let run = server.app.prune_violations(Utc.with_ymd_and_hms(2020, 5, 20, 0, 0, 0).unwrap()).await.unwrap();
    assert_eq!(run.violations, 1);
    assert_eq!(
        placement(&mut owner),
        [(2, june), (3, month_name(0))],
        "the default partition's pruned row is deleted"
    );
}

/// The partition holding event `event_id`.
fn event_partition(conn: &mut PgConnection, event_id: &str) -> String {
    diesel::sql_query("SELECT tableoid::regclass::text AS name FROM usage_events WHERE event_id = $1")
        .bind::<Text, _>(event_id)
        .get_result::<Name>(conn)
        .unwrap()
        .name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stored_in_an_earlier_month_is_still_replayed_refused_when_changed_listed_and_voided() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_amount("100", "0")).await;
    let mut u = usage_client(&server, &t.key).await;
    let e = event(&t, "e1", "CREED", "1", "60");
    let first = record(&mut u, e.clone()).await.unwrap();
    let mut owner = server.db.connect();
    assert_eq!(event_partition(&mut owner, "e1"), month_of("usage_events", 0));
    // As if it had been recorded in January: the event moves to January's month, its key
    // with it (the key names the event's month).
    owner
        .batch_execute(
            "SELECT billing_create_month_partition('usage_events', '2026-01-01');
             UPDATE usage_events SET recorded_at = '2026-01-15T12:00:00Z' WHERE event_id = 'e1';
             UPDATE usage_event_keys SET recorded_at = '2026-01-15T12:00:00Z' WHERE event_id = 'e1';",
        )
        .unwrap();
    assert_eq!(event_partition(&mut owner, "e1"), "usage_events_y2026m01");

    let again = record(&mut u, e.clone()).await.unwrap();
    assert!(again.replayed, "found in January, not recorded again this month");
    assert_eq!(pb::UsageOutcome { replayed: false, ..again }, first);
    let mut changed = e.clone();
    changed.rated_amount = "61".into();
    expect_code(record(&mut u, changed).await, Code::AlreadyExists);
    let in_batch = u
        .record_usage_batch(pb::RecordUsageBatchRequest { events: vec![e.clone()] })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert!(
        matches!(&in_batch[0].result, Some(pb::usage_batch_result::Result::Outcome(o)) if o.replayed),
        "{in_batch:?}"
    );
    let listed = u
        .list_usage_events(pb::ListUsageEventsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.events.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["e1"]);
    u.void_usage_event(pb::VoidUsageEventRequest { event_id: "e1".into(), reason: "sent twice".into() })
        .await
        .expect("the January event is voided");
    let voided: i64 = diesel::sql_query(
        "SELECT count(*) AS seq, 'x' AS partition FROM usage_events_y2026m01 WHERE voided_at IS NOT NULL",
    )
    .get_result::<Placed>(&mut owner)
    .unwrap()
    .seq;
    assert_eq!(voided, 1, "voided in its own month");
}

#[derive(QueryableByName)]
struct EntryPlace {
    #[diesel(sql_type = Text)]
    partition: String,
    /// The partition its effective month would have.
    #[diesel(sql_type = Text)]
    month: String,
}

/// Where the ledger entries of `commit` are, with the month each takes effect in.
fn entry_places(conn: &mut PgConnection, commit: &str) -> Vec<(String, String)> {
    diesel::sql_query(
        "SELECT tableoid::regclass::text AS partition,
                to_char(effective_at AT TIME ZONE 'UTC', '\"commit_ledger_y\"YYYY\"m\"MM') AS month
         FROM commit_ledger WHERE commit_id = $1::uuid ORDER BY effective_at, id",
    )
    .bind::<Text, _>(commit)
    .load::<EntryPlace>(conn)
    .unwrap()
    .into_iter()
    .map(|p| (p.partition, p.month))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_entries_live_in_the_month_they_take_effect_and_a_request_id_replays_from_any_month() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let now = Utc::now();
    let current = create_commit(&mut c, prepaid(&t, "100", "1", now, now + Duration::days(30))).await;
    let later = now + Duration::days(730);
    let scheduled = create_commit(&mut c, prepaid(&t, "50", "1", later, later + Duration::days(30))).await;
    let mut owner = server.db.connect();
    let grant = entry_places(&mut owner, &current.id);
    assert_eq!(grant.len(), 1);
    assert_eq!(grant[0].0, grant[0].1, "the grant is in its effective month");
    let waiting = entry_places(&mut owner, &scheduled.id);
    assert_eq!(waiting[0].0, "commit_ledger_default", "two years ahead, no month is made yet");
    // Making that month moves the grant in.
    owner
        .batch_execute(&format!(
            "SELECT billing_create_month_partition('commit_ledger', '{}')",
            later.format("%Y-%m-01")
        ))
        .unwrap();
    let moved = entry_places(&mut owner, &scheduled.id);
    assert_eq!(moved[0].0, moved[0].1);

    // An adjustment sent with a request id, its entry then in an earlier month: a retry
    // still finds it there, and another request under the id is refused.
    let adjust = |amount: &str| pb::AdjustCommitBalanceRequest {
        commit_id: current.id.clone(),
        segment_index: 0,
        amount: amount.into(),
        reason: "goodwill".into(),
        request_id: "adj-1".into(),
    };
    let first = c.adjust_commit_balance(adjust("25")).await.unwrap().into_inner().entry.unwrap();
    owner
        .batch_execute(&format!(
            "SELECT billing_create_month_partition('commit_ledger', '2026-01-01');
             UPDATE commit_ledger SET effective_at = '2026-01-15T00:00:00Z' WHERE id = '{id}';
             UPDATE commit_ledger_requests SET effective_at = '2026-01-15T00:00:00Z' WHERE entry_id = '{id}';",
            id = first.id
        ))
        .unwrap();
    let january: Vec<String> =
        entry_places(&mut owner, &current.id).into_iter().map(|(partition, _)| partition).collect();
    assert!(january.contains(&"commit_ledger_y2026m01".to_owned()), "{january:?}");
    let replay = c.adjust_commit_balance(adjust("25")).await.unwrap().into_inner().entry.unwrap();
    assert_eq!(replay.id, first.id, "the retry returns the January entry");
    expect_code(c.adjust_commit_balance(adjust("26")).await, Code::AlreadyExists);
}
