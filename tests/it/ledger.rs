//! The commit ledger as a history in effective time, over the wire: late usage never
//! spends credit that did not exist yet, entries on an upcoming segment take effect at
//! its start, late usage is decided by its timestamp and the grace period alone, and
//! every running balance the ledger shows is what GetCommitBalance answers then; an entry
//! written past the service binds late usage as one written through it.

use std::str::FromStr;

use billing::proto::v1 as pb;
use chrono::{DateTime, Duration, Utc};
use prost_types::FieldMask;
use rust_decimal::Decimal;
use tonic::Code;

use crate::support::fixtures::{
    Tenant, apply, commits, create_commit, event, prepaid, record, ts, usage, usage_client,
};
use crate::support::server::Authed;
use crate::support::{TestServer, bad_fields, expect_code, reason};

type Commits = pb::commit_service_client::CommitServiceClient<Authed>;

/// Now at the service's precision (microseconds), so instants compare exactly.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// A usage of `product` worth `amount` dated `at`.
fn usage_at(product: &str, amount: &str, at: DateTime<Utc>) -> pb::RatedUsage {
    pb::RatedUsage { timestamp: ts(at), ..usage(product, amount) }
}

async fn balance_at(c: &mut Commits, commit: &str, at: DateTime<Utc>) -> Decimal {
    let r = c
        .get_commit_balance(pb::GetCommitBalanceRequest { commit_id: commit.into(), at: ts(at) })
        .await
        .unwrap()
        .into_inner();
    dec(&r.balance.unwrap().amount)
}

async fn ledger(c: &mut Commits, commit: &str) -> Vec<pb::LedgerEntry> {
    c.list_commit_ledger(pb::ListCommitLedgerRequest {
        commit_id: commit.into(),
        page_size: 100,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .entries
}

fn instant(t: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let t = t.as_ref().expect("timestamp");
    DateTime::from_timestamp(t.seconds, t.nanos as u32).unwrap()
}

/// Every running balance of the ledger is >= 0 and equals GetCommitBalance at its
/// entry's instant (for the last entry of each instant: balances count a whole instant).
async fn assert_history_is_consistent(c: &mut Commits, commit: &str) -> Vec<pb::LedgerEntry> {
    let entries = ledger(c, commit).await;
    for (i, e) in entries.iter().enumerate() {
        let running = dec(&e.running_balance);
        assert!(running >= Decimal::ZERO, "running balance below zero: {e:?}");
        let at = instant(&e.effective_time);
        let last_of_instant = entries.get(i + 1).is_none_or(|n| instant(&n.effective_time) > at);
        if last_of_instant {
            assert_eq!(balance_at(c, commit, at).await, running, "ledger and balance disagree at {at}");
        }
    }
    entries
}

async fn adjust(c: &mut Commits, commit: &str, amount: &str) -> Result<pb::LedgerEntry, tonic::Status> {
    c.adjust_commit_balance(pb::AdjustCommitBalanceRequest {
        commit_id: commit.into(),
        segment_index: 0,
        amount: amount.into(),
        reason: "goodwill".into(),
        request_id: String::new(),
    })
    .await
    .map(|r| r.into_inner().entry.unwrap())
}

/// A server, a tenant, its commits client, now, and a prepaid commit of 100 that started
/// ten days ago and ends in thirty: what the late-usage cases start from.
async fn commit_of_100_from_ten_days_ago() -> (TestServer, Tenant, Commits, DateTime<Utc>, pb::Commit) {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let now = self::now();
    let commit =
        create_commit(&mut c, prepaid(&t, "100", "1", now - Duration::days(10), now + Duration::days(30)))
            .await;
    (server, t, c, now, commit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_usage_cannot_spend_credit_granted_after_it() {
    let (_server, t, mut c, now, commit) = commit_of_100_from_ten_days_ago().await;
    adjust(&mut c, &commit.id, "50").await.unwrap();

    let five_days_ago = now - Duration::days(5);
    let late = apply(&mut c, &t, "late", usage_at(&t.vod, "120", five_days_ago)).await.unwrap();
    assert_eq!(late.drawdowns.len(), 1);
    assert_eq!(late.drawdowns[0].amount, "100", "only the 100 granted then");
    assert_eq!(late.overage, "20");
    assert_eq!(balance_at(&mut c, &commit.id, five_days_ago).await, Decimal::ZERO);
    assert_eq!(balance_at(&mut c, &commit.id, self::now()).await, dec("50"), "the adjustment is still there");
    assert_history_is_consistent(&mut c, &commit.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_usage_cannot_make_a_later_running_balance_negative() {
    let (_server, t, mut c, now, commit) = commit_of_100_from_ten_days_ago().await;
    apply(&mut c, &t, "recent", usage_at(&t.vod, "80", now - Duration::days(1))).await.unwrap();
    // Five days ago the segment held 100, but 80 of it is spent the day before yesterday
    // ... after: only 20 may go without the later balance falling below zero.
    let late = apply(&mut c, &t, "late", usage_at(&t.vod, "50", now - Duration::days(5))).await.unwrap();
    assert_eq!((late.drawdowns[0].amount.as_str(), late.overage.as_str()), ("20", "30"));
    assert_history_is_consistent(&mut c, &commit.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_on_an_upcoming_segment_take_effect_at_its_start() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let start = now() + Duration::days(10);
    let commit = create_commit(&mut c, prepaid(&t, "100", "1", start, start + Duration::days(30))).await;

    let entry = adjust(&mut c, &commit.id, "-20").await.unwrap();
    assert_eq!(instant(&entry.effective_time), instant(&ts(start)), "effective at the segment's start");
    assert_eq!(entry.running_balance, "80", "the answer carries the running balance");
    let status = expect_code(adjust(&mut c, &commit.id, "-81").await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "INSUFFICIENT_BALANCE");
    assert_eq!(balance_at(&mut c, &commit.id, start).await, dec("80"));
    assert_eq!(balance_at(&mut c, &commit.id, start - Duration::seconds(1)).await, Decimal::ZERO);

    c.void_commit(pb::VoidCommitRequest {
        id: commit.id.clone(),
        etag: commit.etag.clone(),
        reason: "cancelled".into(),
        request_id: String::new(),
    })
    .await
    .unwrap();
    let entries = assert_history_is_consistent(&mut c, &commit.id).await;
    let void = entries.last().unwrap();
    assert_eq!(void.kind, pb::LedgerEntryKind::Void as i32);
    assert_eq!((void.amount.as_str(), instant(&void.effective_time)), ("-80", instant(&ts(start))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adjustment_answers_with_its_running_balance() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let now = self::now();
    let commit =
        create_commit(&mut c, prepaid(&t, "100", "1", now - Duration::days(1), now + Duration::days(30)))
            .await;
    apply(&mut c, &t, "u", usage_at(&t.vod, "30", now - Duration::hours(1))).await.unwrap();
    let entry = adjust(&mut c, &commit.id, "-5").await.unwrap();
    assert_eq!(entry.running_balance, "65");
    let listed = ledger(&mut c, &commit.id).await;
    assert_eq!(listed.last().unwrap().running_balance, entry.running_balance);
}

/// A commit of 100 whose only segment ended `ago`.
async fn ended_commit(c: &mut Commits, t: &Tenant, ago: Duration) -> pb::Commit {
    let end = now() - ago;
    create_commit(c, prepaid(t, "100", "1", end - Duration::days(5), end)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_usage_within_the_grace_draws_whether_or_not_anything_closed_the_segment() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    // The default grace is one hour: a segment that ended 30 minutes ago still takes
    // usage dated inside it, even after a ledger read and a run of the closing job.
    let commit = ended_commit(&mut c, &t, Duration::minutes(30)).await;
    ledger(&mut c, &commit.id).await;
    server.app.close_due_segments().await.unwrap();
    let inside = now() - Duration::hours(2);
    let late = apply(&mut c, &t, "late", usage_at(&t.vod, "40", inside)).await.unwrap();
    assert_eq!((late.drawdowns.len(), late.overage.as_str()), (1, "0"));
    let entries = assert_history_is_consistent(&mut c, &commit.id).await;
    assert!(entries.iter().all(|e| e.kind != pb::LedgerEntryKind::Expiry as i32), "not closed in its grace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_usage_after_the_grace_is_overage_whether_or_not_anything_closed_the_segment() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let inside = now() - Duration::hours(3);
    // Nothing has closed this one yet...
    ended_commit(&mut c, &t, Duration::hours(2)).await;
    let untouched = apply(&mut c, &t, "late-1", usage_at(&t.vod, "40", inside)).await.unwrap();
    assert!(untouched.drawdowns.is_empty() && untouched.overage == "40");
    // ... and this one has been closed by the job: the same answer.
    let closed = ended_commit(&mut c, &t, Duration::hours(2)).await;
    server.app.close_due_segments().await.unwrap();
    let after_job = apply(&mut c, &t, "late-2", usage_at(&t.vod, "40", inside)).await.unwrap();
    assert!(after_job.drawdowns.is_empty() && after_job.overage == "40");
    let entries = assert_history_is_consistent(&mut c, &closed.id).await;
    let expiry = entries.last().unwrap();
    assert_eq!((expiry.kind, expiry.amount.as_str()), (pb::LedgerEntryKind::Expiry as i32, "-100"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shortening_the_end_below_a_recorded_drawdown_is_refused() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let now = self::now();
    let commit =
        create_commit(&mut c, prepaid(&t, "100", "1", now - Duration::days(1), now + Duration::days(30)))
            .await;
    // Usage may be dated a little ahead (clock skew): 40 minutes from now.
    apply(&mut c, &t, "ahead", usage_at(&t.vod, "10", now + Duration::minutes(40))).await.unwrap();
    let update = |end: DateTime<Utc>, etag: &str| pb::UpdateCommitRequest {
        commit: Some(pb::Commit {
            id: commit.id.clone(),
            etag: etag.into(),
            access_end_time: ts(end),
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: vec!["access_end_time".into()] }),
    };
    let status = c.update_commit(update(now + Duration::minutes(20), &commit.etag)).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["commit.access_end_time"]);
    let moved = c.update_commit(update(now + Duration::hours(2), &commit.etag)).await.unwrap();
    assert_eq!(moved.into_inner().commit.unwrap().access_end_time, ts(now + Duration::hours(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_and_apply_accept_and_refuse_the_same_timestamps() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let now = self::now();
    for at in [now + Duration::days(30), now - Duration::days(70)] {
        let preview = c
            .preview_drawdown(pb::PreviewDrawdownRequest {
                customer: billing::proto::customer_id(t.customer_id.clone()),
                usage: Some(usage_at(&t.vod, "1", at)),
            })
            .await;
        assert_eq!(bad_fields(&preview.unwrap_err()), ["usage.timestamp"], "preview of {at}");
        let applied = apply(&mut c, &t, &format!("k-{}", at.timestamp()), usage_at(&t.vod, "1", at)).await;
        assert_eq!(bad_fields(&applied.unwrap_err()), ["usage.timestamp"], "apply of {at}");
    }
}

/// The segment's `ledger_last_at`, read as the database's owner: the latest effective time
/// among its entries, by which the usage path skips reading the entries after an event.
fn ledger_last_at(conn: &mut diesel::PgConnection, commit: &str) -> Option<DateTime<Utc>> {
    use billing::db::schema::commit_segments;
    use diesel::prelude::*;
    commit_segments::table
        .filter(commit_segments::commit_id.eq(uuid::Uuid::parse_str(commit).unwrap()))
        .filter(commit_segments::idx.eq(0))
        .select(commit_segments::ledger_last_at)
        .first(conn)
        .unwrap()
}

/// An operator's correction written in SQL, past the service, still binds late usage:
/// the ledger's trigger moves the segment's `ledger_last_at`, so the usage path reads the
/// entry as one after the event instead of skipping the segment's later entries; and an
/// entry moved later by hand moves it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_usage_cannot_spend_a_correction_an_operator_wrote_in_sql_after_it() {
    use diesel::prelude::*;
    use diesel::sql_types::{Timestamptz, Uuid as SqlUuid};

    let (server, t, mut c, now, commit) = commit_of_100_from_ten_days_ago().await;
    let yesterday = now - Duration::days(1);
    let mut owner = server.db.connect();
    let id = uuid::Uuid::parse_str(&commit.id).unwrap();
    owner
        .transaction(|conn| {
            diesel::sql_query(
                "INSERT INTO commit_ledger (org_id, id, commit_id, segment_idx, kind, amount, effective_at, reason, created_at)
                 SELECT org_id, gen_random_uuid(), id, 0, 'ADJUSTMENT', 50, $2, 'correction', now()
                 FROM commits WHERE id = $1",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<Timestamptz, _>(yesterday)
            .execute(conn)?;
            diesel::sql_query("UPDATE commit_segments SET remaining = remaining + 50 WHERE commit_id = $1")
                .bind::<SqlUuid, _>(id)
                .execute(conn)
        })
        .unwrap();
    assert_eq!(ledger_last_at(&mut owner, &commit.id), Some(yesterday));

    let late = apply(&mut c, &t, "late", usage_at(&t.vod, "120", now - Duration::days(5))).await.unwrap();
    assert_eq!(
        (late.drawdowns[0].amount.as_str(), late.overage.as_str()),
        ("100", "20"),
        "only the 100 granted then"
    );
    assert_eq!(balance_at(&mut c, &commit.id, self::now()).await, dec("50"), "the correction is still there");
    assert_history_is_consistent(&mut c, &commit.id).await;

    // Entries are appended only, but one moved later by hand moves the value with it.
    let hour_ago = now - Duration::hours(1);
    diesel::sql_query(
        "UPDATE commit_ledger SET effective_at = $2 WHERE commit_id = $1 AND kind = 'ADJUSTMENT'",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Timestamptz, _>(hour_ago)
    .execute(&mut owner)
    .unwrap();
    assert_eq!(ledger_last_at(&mut owner, &commit.id), Some(hour_ago));
}

/// Usage moves its segments' `ledger_last_at` in the statement that writes their balance
/// (the trigger, disabled here, then has no row to update a second time); and the
/// migration gives segments written before it the latest effective time of their entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_moves_its_segments_ledger_last_at_itself_and_the_migration_backfills_it() {
    use diesel::connection::SimpleConnection as _;

    let (server, t, _c, now, commit) = commit_of_100_from_ten_days_ago().await;
    let mut owner = server.db.connect();
    assert_eq!(ledger_last_at(&mut owner, &commit.id), Some(now - Duration::days(10)), "the grant");

    owner.batch_execute("ALTER TABLE commit_ledger DISABLE TRIGGER segments_ledger_last_at").unwrap();
    let hour_ago = now - Duration::hours(1);
    let mut u = usage_client(&server, &t.key).await;
    let drawn =
        record(&mut u, pb::UsageEvent { timestamp: ts(hour_ago), ..event(&t, "u", "CREED", "1", "30") })
            .await
            .unwrap();
    assert_eq!(drawn.drawdowns.len(), 1);
    assert_eq!(ledger_last_at(&mut owner, &commit.id), Some(hour_ago));
    owner.batch_execute("ALTER TABLE commit_ledger ENABLE TRIGGER segments_ledger_last_at").unwrap();

    crate::support::db::rerun_migrations_from(&mut owner, "20261204150000");
    assert_eq!(ledger_last_at(&mut owner, &commit.id), Some(hour_ago), "backfilled");
}
