//! UsageService: decisions, recording, drawdowns, violations, idempotency, batches,
//! CheckUsage, GetAllowanceUsage, and a daily maximum under concurrent callers.

use crate::support::limit_of;
use std::sync::Arc;

use billing::proto::v1 as pb;
use chrono::{Duration, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use tonic::Code;

use crate::support::fixtures::{
    Tenant, allowances, commits, create_commit, event, far_ahead, long_ago, prepaid, record, test_now, ts,
    usage_client,
};
use crate::support::{TestServer, bad_fields, expect_code, reason};

pub(crate) async fn set_limits(server: &TestServer, t: &Tenant, limits: pb::AllowanceLimits) {
    allowances(server, &t.key)
        .await
        .replace_allowance_limits(pb::ReplaceAllowanceLimitsRequest {
            limits: Some(pb::AllowanceLimits {
                customer: billing::proto::customer_id(t.customer_id.clone()),
                ..limits
            }),
        })
        .await
        .expect("set limits");
}

pub(crate) fn daily_amount(max: &str, tolerance: &str) -> pb::AllowanceLimits {
    pb::AllowanceLimits {
        accumulated_maximum_rated_amount_per_day: Some(max.into()),
        percentage_of_allowed_exceeded_usage_limit: Some(tolerance.into()),
        ..Default::default()
    }
}

fn kinds(o: &pb::UsageOutcome) -> Vec<i32> {
    o.violations.iter().map(|v| v.kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_usage_is_recorded_and_drawn_down() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let commit = create_commit(&mut c, prepaid(&t, "50", "1", long_ago(), far_ahead())).await;
    set_limits(&server, &t, daily_amount("100", "0")).await;
    let mut u = usage_client(&server, &t.key).await;

    let first = record(&mut u, event(&t, "e1", "CREED", "2", "30")).await.unwrap();
    assert_eq!(first.decision, pb::UsageDecision::Allowed as i32);
    assert_eq!(first.checks.len(), 1);
    assert_eq!((first.checks[0].used.as_str(), first.checks[0].maximum.as_str()), ("30", "100"));
    assert_eq!(first.drawdowns[0].commit_id, commit.id);
    assert_eq!(first.overage, "0");
    let second = record(&mut u, event(&t, "e2", "CREED", "1", "40")).await.unwrap();
    assert_eq!((second.drawdowns[0].amount.as_str(), second.overage.as_str()), ("20", "20"));
    assert_eq!(kinds(&second), [pb::ViolationKind::CommitExhausted as i32]);
    assert_eq!(second.checks[0].used, "70", "the day's total includes the first event");

    let report = u
        .get_allowance_usage(pb::GetAllowanceUsageRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            at: ts(test_now()),
        })
        .await
        .unwrap()
        .into_inner();
    let line = &report.usage[0];
    assert_eq!(
        (limit_of(&line.limit_ref), line.used.as_str(), line.percent_used.as_str()),
        ((pb::LimitScope::Customer, "", pb::LimitMeasure::RatedAmount, pb::LimitPeriod::Day), "70", "70")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_maximum_within_tolerance_is_allowed_with_a_warning() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_amount("100", "30")).await;
    let mut u = usage_client(&server, &t.key).await;
    record(&mut u, event(&t, "e1", "CREED", "1", "100")).await.unwrap();
    let over = record(&mut u, event(&t, "e2", "CREED", "1", "30")).await.unwrap();
    assert_eq!(over.decision, pb::UsageDecision::AllowedOverLimit as i32);
    assert_eq!(over.checks[0].outcome, pb::LimitOutcome::OverLimit as i32);
    assert_eq!(kinds(&over), [pb::ViolationKind::LimitWarning as i32]);
    let warning = &over.violations[0];
    assert_eq!(
        (warning.used.as_str(), warning.limit.as_str(), warning.tolerance_limit.as_str()),
        ("130", "100", "130")
    );
    assert!(warning.sequence > 0 && !warning.cursor.is_empty(), "written to the feed");
    assert_eq!(
        limit_of(&warning.limit_ref),
        (pb::LimitScope::Customer, "", pb::LimitMeasure::RatedAmount, pb::LimitPeriod::Day)
    );
    let listed = crate::support::fixtures::list_violations(&server, &t.key, Default::default()).await;
    assert_eq!(
        listed.last().map(|v| &v.limit_ref),
        Some(&warning.limit_ref),
        "the feed names the same maximum"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)]
async fn the_string_forms_of_a_maximum_are_still_sent_beside_its_enums() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_amount("100", "0")).await;
    let mut u = usage_client(&server, &t.key).await;
    let blocked = record(&mut u, event(&t, "e1", "CREED", "1", "130")).await.unwrap();
    let check = &blocked.checks[0];
    assert_eq!(
        (check.scope.as_str(), check.measure.as_str(), check.period.as_str()),
        ("customer", "rated_amount", "day")
    );
    let v = &blocked.violations[0];
    assert_eq!(
        (v.scope.as_str(), v.measure.as_str(), v.period.as_str()),
        ("customer", "rated_amount", "day")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_usage_records_nothing_and_draws_nothing() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let commit = create_commit(&mut c, prepaid(&t, "500", "1", long_ago(), far_ahead())).await;
    set_limits(&server, &t, daily_amount("100", "30")).await;
    let mut u = usage_client(&server, &t.key).await;
    record(&mut u, event(&t, "e1", "CREED", "1", "100")).await.unwrap();
    let blocked = record(&mut u, event(&t, "e2", "CREED", "1", "31")).await.unwrap();
    assert_eq!(blocked.decision, pb::UsageDecision::Blocked as i32);
    assert!(blocked.drawdowns.is_empty());
    assert_eq!(kinds(&blocked), [pb::ViolationKind::LimitBlock as i32]);
    assert!(blocked.violations[0].blocked);

    let balance =
        c.get_commit_balance(pb::GetCommitBalanceRequest { commit_id: commit.id, at: None }).await.unwrap();
    assert_eq!(balance.into_inner().balance.unwrap().amount, "400", "only the first event drew");
    let report = u
        .get_allowance_usage(pb::GetAllowanceUsageRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            at: ts(test_now()),
        })
        .await
        .unwrap();
    assert_eq!(report.into_inner().usage[0].used, "100", "the blocked event is not counted");
    let fits = record(&mut u, event(&t, "e3", "CREED", "1", "30")).await.unwrap();
    assert_eq!(
        fits.decision,
        pb::UsageDecision::AllowedOverLimit as i32,
        "what fits in the tolerance still passes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_not_included_are_blocked_when_asked() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(
        &server,
        &t,
        pb::AllowanceLimits {
            block_services_not_included_in_usage_allowance_limits_settings: true,
            usage_services_allowance: vec![pb::ServiceAllowance {
                selector: Some(pb::service_allowance::Selector::ServiceType("vod services".into())),
                maximum_usage_per_transaction: Some("3".into()),
                ..Default::default()
            }],
            ..Default::default()
        },
    )
    .await;
    let mut u = usage_client(&server, &t.key).await;
    let vod = record(&mut u, event(&t, "e1", "CREED", "3", "1")).await.unwrap();
    assert_eq!(vod.decision, pb::UsageDecision::Allowed as i32);
    assert_eq!(
        limit_of(&vod.checks[0].limit_ref),
        (pb::LimitScope::ServiceType, "vod services", pb::LimitMeasure::Usage, pb::LimitPeriod::Transaction)
    );
    let fuel = record(&mut u, event(&t, "e2", "EXXON", "1", "1")).await.unwrap();
    assert_eq!(fuel.decision, pb::UsageDecision::Blocked as i32);
    assert!(fuel.service_not_included);
    assert_eq!(kinds(&fuel), [pb::ViolationKind::ServiceNotIncluded as i32]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_limits_notify_but_never_block() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, pb::AllowanceLimits { soft: true, ..daily_amount("10", "0") }).await;
    let mut u = usage_client(&server, &t.key).await;
    let o = record(&mut u, event(&t, "e1", "CREED", "1", "50")).await.unwrap();
    assert_eq!(o.decision, pb::UsageDecision::AllowedOverLimit as i32);
    assert_eq!(kinds(&o), [pb::ViolationKind::LimitWarning as i32]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warning_thresholds_are_notified_once_per_window() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(
        &server,
        &t,
        pb::AllowanceLimits { warning_thresholds: vec!["80".into()], ..daily_amount("100", "0") },
    )
    .await;
    let mut u = usage_client(&server, &t.key).await;
    assert!(record(&mut u, event(&t, "e1", "CREED", "1", "79")).await.unwrap().violations.is_empty());
    let crossing = record(&mut u, event(&t, "e2", "CREED", "1", "1")).await.unwrap();
    assert_eq!(kinds(&crossing), [pb::ViolationKind::ThresholdCrossed as i32]);
    assert_eq!(crossing.violations[0].threshold_percent, "80");
    assert!(
        record(&mut u, event(&t, "e3", "CREED", "1", "5")).await.unwrap().violations.is_empty(),
        "once per window"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_return_the_first_answer_and_conflicting_payloads_are_refused() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_amount("100", "0")).await;
    let mut u = usage_client(&server, &t.key).await;
    let e = event(&t, "e1", "CREED", "1", "60");
    let first = record(&mut u, e.clone()).await.unwrap();
    let again = record(&mut u, e.clone()).await.unwrap();
    assert!(again.replayed);
    assert_eq!(pb::UsageOutcome { replayed: false, ..again }, first);
    let mut changed = e.clone();
    changed.rated_amount = "61".into();
    let status = expect_code(record(&mut u, changed).await, Code::AlreadyExists);
    assert_eq!(reason(&status), "ALREADY_EXISTS");
    let report = u
        .get_allowance_usage(pb::GetAllowanceUsageRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            at: ts(test_now()),
        })
        .await
        .unwrap();
    assert_eq!(report.into_inner().usage[0].used, "60", "counted once");

    // The same id in another organization is another event.
    let other = Tenant::create(&server, "Other").await;
    let mut uo = usage_client(&server, &other.key).await;
    let theirs = record(&mut uo, event(&other, "e1", "CREED", "1", "60")).await.unwrap();
    assert!(!theirs.replayed);
}

#[derive(QueryableByName)]
struct PackedAnswer {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bytea>)]
    outcome_packed: Option<Vec<u8>>,
}

#[derive(QueryableByName)]
struct DetailJson {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

/// Answers are stored packed; events recorded before that keep a JSON answer, and both
/// replay and list alike. The blocked event carries a violation, whose unset detail
/// fields are packed with the answer (by position) but left out of the violations
/// table's JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_stored_packed_or_as_json_from_before_replay_and_list_alike() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_amount("100", "0")).await;
    let mut u = usage_client(&server, &t.key).await;
    record(&mut u, event(&t, "e1", "CREED", "1", "60")).await.unwrap();
    let blocked = event(&t, "e2", "CREED", "1", "50");
    let first = record(&mut u, blocked.clone()).await.unwrap();
    assert_eq!(first.decision, pb::UsageDecision::Blocked as i32);
    assert!(!first.violations.is_empty(), "a violation to store");
    let listed = |u: &mut pb::usage_service_client::UsageServiceClient<_>| {
        let req = pb::ListUsageEventsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            ..Default::default()
        };
        let mut u = u.clone();
        async move {
            let events = u.list_usage_events(req).await.unwrap().into_inner().events;
            events.into_iter().find(|e| e.event_id == "e2").and_then(|e| e.outcome).unwrap()
        }
    };
    let again = record(&mut u, blocked.clone()).await.unwrap();
    assert_eq!(pb::UsageOutcome { replayed: false, ..again }, first, "packed answer replayed");
    assert_eq!(listed(&mut u).await, first, "packed answer listed");

    // The same answer as an event recorded before packing holds it.
    let mut conn = server.db.connect();
    let packed = diesel::sql_query("SELECT outcome_packed FROM usage_events WHERE event_id = 'e2'")
        .get_result::<PackedAnswer>(&mut conn)
        .unwrap()
        .outcome_packed
        .expect("new answers are packed");
    let answer = billing::app::usage::unpack_outcome(&packed).unwrap();
    let json = serde_json::to_string(&answer).unwrap();
    let detail =
        diesel::sql_query("SELECT detail::text AS detail FROM violations WHERE detail->>'event_id' = 'e2'")
            .get_result::<DetailJson>(&mut conn)
            .unwrap()
            .detail;
    assert!(detail.contains("\"scope\"") && !detail.contains("null"), "only the fields set: {detail}");
    assert!(packed.len() < json.len(), "packed {} bytes, JSON {}", packed.len(), json.len());
    diesel::sql_query(
        "UPDATE usage_events SET outcome = $1::jsonb, outcome_packed = NULL WHERE event_id = 'e2'",
    )
    .bind::<diesel::sql_types::Text, _>(&json)
    .execute(&mut conn)
    .unwrap();
    let from_json = record(&mut u, blocked).await.unwrap();
    assert_eq!(pb::UsageOutcome { replayed: false, ..from_json }, first, "JSON answer replayed");
    assert_eq!(listed(&mut u).await, first, "JSON answer listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_decides_each_event_in_order_and_isolates_bad_ones() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_amount("100", "0")).await;
    let mut u = usage_client(&server, &t.key).await;
    let mut bad = event(&t, "bad", "CREED", "-1", "1");
    bad.timestamp = ts(Utc::now() + Duration::days(1));
    let b1 = event(&t, "b1", "CREED", "1", "60");
    let mut b1_changed = b1.clone();
    b1_changed.quantity = "2".into();
    let events = vec![
        b1.clone(),
        bad,
        event(&t, "b2", "CREED", "1", "50"),
        event(&t, "b3", "NOPE", "1", "1"),
        b1,
        event(&t, "b4", "CREED", "1", "40"),
        b1_changed,
    ];
    let results =
        u.record_usage_batch(pb::RecordUsageBatchRequest { events }).await.unwrap().into_inner().results;
    use pb::usage_batch_result::Result as R;
    let summary: Vec<String> = results
        .iter()
        .map(|r| match r.result.as_ref().unwrap() {
            R::Outcome(o) => format!("{}:{}:{}", o.event_id, o.decision, o.replayed),
            R::Error(e) => format!("error:{}", e.code),
        })
        .collect();
    let (allowed, blocked) = (pb::UsageDecision::Allowed as i32, pb::UsageDecision::Blocked as i32);
    assert_eq!(
        summary,
        [
            format!("b1:{allowed}:false"),
            format!("error:{}", Code::InvalidArgument as i32),
            format!("b2:{blocked}:false"),
            format!("error:{}", Code::InvalidArgument as i32),
            format!("b1:{allowed}:true"),
            format!("b4:{allowed}:false"),
            format!("error:{}", Code::AlreadyExists as i32),
        ]
    );
    let R::Error(e) = results[1].result.as_ref().unwrap() else { unreachable!() };
    let fields = crate::support::rpc_status_fields(e);
    assert_eq!(fields, ["events[1].quantity", "events[1].timestamp"]);
    let R::Error(e) = results[3].result.as_ref().unwrap() else { unreachable!() };
    assert!(e.message.contains("events[3].product_code"), "{}", e.message);

    let empty = u.record_usage_batch(pb::RecordUsageBatchRequest { events: vec![] }).await;
    assert_eq!(bad_fields(&expect_code(empty, Code::InvalidArgument)), ["events"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_usage_decides_without_recording() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_amount("100", "0")).await;
    let mut u = usage_client(&server, &t.key).await;
    for _ in 0..3 {
        let mut e = event(&t, "", "CREED", "1", "80");
        e.event_id.clear();
        let o = u
            .check_usage(pb::CheckUsageRequest { event: Some(e) })
            .await
            .unwrap()
            .into_inner()
            .outcome
            .unwrap();
        assert_eq!(
            o.decision,
            pb::UsageDecision::Allowed as i32,
            "nothing was recorded by the previous checks"
        );
    }
    let mut e = event(&t, "", "CREED", "1", "101");
    e.event_id.clear();
    let o =
        u.check_usage(pb::CheckUsageRequest { event: Some(e) }).await.unwrap().into_inner().outcome.unwrap();
    assert_eq!(o.decision, pb::UsageDecision::Blocked as i32);
    assert_eq!(o.violations[0].sequence, 0, "listed, not written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_invalid_with_paths() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut u = usage_client(&server, &t.key).await;
    let bad = pb::UsageEvent {
        event_id: String::new(),
        customer: billing::proto::customer_id("x"),
        product: None,
        quantity: "1e3".into(),
        rated_amount: "abc".into(),
        timestamp: ts(Utc::now() + Duration::days(365 * 100)),
        ..Default::default()
    };
    let status = expect_code(record(&mut u, bad).await, Code::InvalidArgument);
    assert_eq!(
        bad_fields(&status),
        [
            "event.customer_id",
            "event.quantity",
            "event.rated_amount",
            "event.event_id",
            "event.product_id",
            "event.timestamp"
        ]
    );
    let mut unknown_customer = event(&t, "e", "CREED", "1", "1");
    unknown_customer.customer = billing::proto::customer_id(uuid::Uuid::now_v7().to_string());
    expect_code(record(&mut u, unknown_customer).await, Code::NotFound);
    let mut by_id = event(&t, "by-id", "", "1", "1");
    by_id.product = Some(pb::usage_event::Product::ProductId(t.vod.clone()));
    assert_eq!(record(&mut u, by_id).await.unwrap().decision, pb::UsageDecision::Allowed as i32);
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_across_a_daily_maximum_get_exactly_what_fits() {
    let first = TestServer::start().await;
    let second = TestServer::start_on(Arc::clone(&first.db)).await;
    let t = Tenant::create(&first, "Acme").await;
    set_limits(
        &first,
        &t,
        pb::AllowanceLimits { accumulated_maximum_usage_per_day: Some("50".into()), ..Default::default() },
    )
    .await;
    let mut tasks = Vec::new();
    for (s, server) in [&first, &second].into_iter().enumerate() {
        for client in 0..8 {
            let mut u = usage_client(server, &t.key).await;
            let events: Vec<_> =
                (0..10).map(|i| event(&t, &format!("{s}-{client}-{i}"), "CREED", "1", "1")).collect();
            tasks.push(tokio::spawn(async move {
                let mut decisions = Vec::new();
                for e in events {
                    decisions.push(record(&mut u, e).await.expect("record").decision);
                }
                decisions
            }));
        }
    }
    let mut allowed = 0;
    let mut blocked = 0;
    for t in tasks {
        for d in t.await.unwrap() {
            if d == pb::UsageDecision::Allowed as i32 {
                allowed += 1;
            } else if d == pb::UsageDecision::Blocked as i32 {
                blocked += 1;
            }
        }
    }
    assert_eq!((allowed, blocked), (50, 110), "exactly the events that fit are allowed");
    let mut u = usage_client(&first, &t.key).await;
    let report = u
        .get_allowance_usage(pb::GetAllowanceUsageRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            at: ts(test_now()),
        })
        .await
        .unwrap();
    assert_eq!(report.into_inner().usage[0].used, "50");
    let mut conn = first.db.connect();
    let gaps: Row = diesel::sql_query(
        "SELECT (count(*) - (max(seq) - min(seq) + 1)) + (min(seq) - 1) AS n FROM violations",
    )
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(gaps.n, 0, "violation sequence numbers run from 1 without gaps");
}

#[derive(QueryableByName)]
struct Recorded {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Events a batch chunk takes: each customer of [`a_then_b`] fills one.
const CHUNK: usize = billing::app::usage_batch::CHUNK_EVENTS;

/// A chunk's worth of events of the tenant's customer, then as many of customer `b`, as
/// in their ids.
fn a_then_b(t: &Tenant, b: &str) -> Vec<pb::UsageEvent> {
    let a = (0..CHUNK).map(|i| event_of(t, &t.customer_id, &format!("a-{i}")));
    let b = (0..CHUNK).map(|i| event_of(t, b, &format!("b-{i}")));
    a.chain(b).collect()
}

/// An event of one unit of CREED for `customer`, one of the tenant's customers.
fn event_of(t: &Tenant, customer: &str, event_id: &str) -> pb::UsageEvent {
    pb::UsageEvent {
        customer: billing::proto::customer_id(customer.to_owned()),
        ..event(t, event_id, "CREED", "1", "1")
    }
}

/// A connection holding customer `id`'s row locked until it rolls back.
fn lock_customer(server: &TestServer, id: &str) -> diesel::PgConnection {
    let mut holder = server.db.connect();
    holder.batch_execute("BEGIN").unwrap();
    diesel::sql_query("SELECT 1::bigint AS n FROM customers WHERE id = $1::uuid FOR UPDATE")
        .bind::<diesel::sql_types::Text, _>(id.to_owned())
        .load::<Recorded>(&mut holder)
        .unwrap();
    holder
}

/// Events recorded for `customer`.
fn recorded(conn: &mut diesel::PgConnection, customer: &str) -> i64 {
    diesel::sql_query("SELECT count(*) AS n FROM usage_events WHERE customer_id = $1::uuid")
        .bind::<diesel::sql_types::Text, _>(customer.to_owned())
        .get_result::<Recorded>(conn)
        .unwrap()
        .n
}

/// A long batch is decided in chunks of whole customers, each its own transaction: a
/// customer locked by someone else holds back only the chunk holding it, so concurrent
/// batches that share a few customers queue on those chunks instead of on each other's
/// whole batch. Here customer A's chunk is recorded and visible while customer B's row
/// is locked; once it is released, B's chunk follows, every answer in request order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_batch_commits_chunk_by_chunk_so_a_locked_customer_holds_back_only_its_chunk() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let b = t.another_customer(&server, "ACR2").await;
    let events = a_then_b(&t, &b);
    let mut holder = lock_customer(&server, &b);
    let mut u = usage_client(&server, &t.key).await;
    let call =
        tokio::spawn(async move { u.record_usage_batch(pb::RecordUsageBatchRequest { events }).await });

    let watcher = std::sync::Mutex::new(server.db.connect());
    crate::support::wait_until("A's chunk is committed while B is locked", || {
        let seen = recorded(&mut watcher.lock().unwrap(), &t.customer_id);
        async move { seen == CHUNK as i64 }
    })
    .await;
    let mut watcher = watcher.into_inner().unwrap();
    assert_eq!(recorded(&mut watcher, &b), 0, "B's chunk waits for its lock");
    assert!(!call.is_finished());

    holder.batch_execute("ROLLBACK").unwrap();
    let results = call.await.unwrap().expect("the batch is answered").into_inner().results;
    use pb::usage_batch_result::Result as R;
    let ids: Vec<String> = results
        .iter()
        .map(|r| match r.result.as_ref().unwrap() {
            R::Outcome(o) => o.event_id.clone(),
            R::Error(e) => panic!("an event failed: {e:?}"),
        })
        .collect();
    let expected: Vec<String> =
        (0..CHUNK).map(|i| format!("a-{i}")).chain((0..CHUNK).map(|i| format!("b-{i}"))).collect();
    assert_eq!(ids, expected);
    assert_eq!(recorded(&mut watcher, &b), CHUNK as i64);
}

/// A long batch that names one event id for two customers is decided in request order,
/// as one transaction decides it: the first of the two is recorded and the second is the
/// id's repeat with another payload (ALREADY_EXISTS), even when the first belongs to the
/// customer whose chunk would come later in id order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_batch_naming_one_event_id_for_two_customers_records_the_first_in_the_request() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let b = t.another_customer(&server, "ACR2").await;
    let a = t.customer_id.clone();
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    let of = |customer: &str, id: String| event_of(&t, customer, &id);
    // The higher customer's "dup" first, then a chunk's worth of the lower customer's
    // events with its own "dup" last, then a chunk's worth of the higher customer's.
    let events: Vec<pb::UsageEvent> = std::iter::once(of(&high, "dup".into()))
        .chain((1..CHUNK).map(|i| of(&low, format!("low-{i}"))))
        .chain(std::iter::once(of(&low, "dup".into())))
        .chain((1..CHUNK).map(|i| of(&high, format!("high-{i}"))))
        .collect();
    let mut u = usage_client(&server, &t.key).await;
    let results =
        u.record_usage_batch(pb::RecordUsageBatchRequest { events }).await.unwrap().into_inner().results;
    use pb::usage_batch_result::Result as R;
    match results[0].result.as_ref().unwrap() {
        R::Outcome(o) => assert!(!o.replayed && o.event_id == "dup"),
        R::Error(e) => panic!("the first \"dup\" in the request is recorded: {e:?}"),
    }
    match results[CHUNK].result.as_ref().unwrap() {
        R::Error(e) => assert_eq!(e.code, Code::AlreadyExists as i32, "{e:?}"),
        R::Outcome(o) => panic!("the second \"dup\" must not be recorded: {o:?}"),
    }
    let mut conn = server.db.connect();
    assert_eq!((recorded(&mut conn, &low), recorded(&mut conn, &high)), (CHUNK as i64 - 1, CHUNK as i64));
}

/// When the database fails a chunk after an earlier one was recorded (here B's chunk
/// outwaits the statement timeout on B's locked row), the call still answers: the
/// recorded events with their outcomes, the others with the error, and sending those
/// again once the database is well records them, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_that_fails_after_others_were_recorded_answers_its_events_with_the_error() {
    use billing::db::DbConfig;
    let db = Arc::new(crate::support::TestDb::create());
    let short = |c: DbConfig| DbConfig { statement_timeout: std::time::Duration::from_millis(300), ..c };
    let server = TestServer::start_with(db, crate::support::server::test_server_config(), short).await;
    server.wait_serving().await;
    let t = Tenant::create(&server, "Acme").await;
    let b = t.another_customer(&server, "ACR2").await;
    let events = a_then_b(&t, &b);
    let mut holder = lock_customer(&server, &b);
    let mut u = usage_client(&server, &t.key).await;
    let results = u
        .record_usage_batch(pb::RecordUsageBatchRequest { events: events.clone() })
        .await
        .expect("part of the batch was recorded: the call answers")
        .into_inner()
        .results;
    holder.batch_execute("ROLLBACK").unwrap();
    use pb::usage_batch_result::Result as R;
    let (outcomes, errors): (Vec<_>, Vec<_>) =
        results.iter().map(|r| r.result.as_ref().unwrap()).partition(|r| matches!(r, R::Outcome(_)));
    assert_eq!((outcomes.len(), errors.len()), (CHUNK, CHUNK));
    assert!(
        results[..CHUNK].iter().all(|r| matches!(r.result, Some(R::Outcome(_)))),
        "A's events are recorded"
    );
    for e in &errors {
        let R::Error(e) = e else { unreachable!() };
        assert_eq!(e.code, Code::Unavailable as i32, "{e:?}");
    }
    let mut watcher = server.db.connect();
    let n = CHUNK as i64;
    assert_eq!((recorded(&mut watcher, &t.customer_id), recorded(&mut watcher, &b)), (n, 0));

    let again =
        u.record_usage_batch(pb::RecordUsageBatchRequest { events }).await.unwrap().into_inner().results;
    let replayed: Vec<bool> = again
        .iter()
        .map(|r| match r.result.as_ref().unwrap() {
            R::Outcome(o) => o.replayed,
            R::Error(e) => panic!("the repeat failed: {e:?}"),
        })
        .collect();
    assert!(replayed[..CHUNK].iter().all(|r| *r) && replayed[CHUNK..].iter().all(|r| !*r));
    assert_eq!((recorded(&mut watcher, &t.customer_id), recorded(&mut watcher, &b)), (n, n));
}

/// The same event sent to two instances while its customer is locked: both usage
/// transactions read stored events before they get the lock (in the statement that
/// waits for it), so the second to get it does not see the event the first stored and
/// decides it again; its write fails on the event's key and is retried, and the retry
/// answers the replay. One event stored, one drawdown, one fresh answer and one replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_sent_to_two_instances_while_its_customer_is_locked_is_recorded_once_and_replayed_once() {
    let a = TestServer::start().await;
    let b = TestServer::start_on(Arc::clone(&a.db)).await;
    let t = Tenant::create(&a, "Acme").await;
    let mut c = commits(&a, &t.key).await;
    let commit = create_commit(&mut c, prepaid(&t, "50", "1", long_ago(), far_ahead())).await;
    let mut holder = lock_customer(&a, &t.customer_id);
    let (mut via_a, mut via_b) = (usage_client(&a, &t.key).await, usage_client(&b, &t.key).await);
    let (ea, eb) = (event(&t, "twice", "CREED", "1", "10"), event(&t, "twice", "CREED", "1", "10"));
    let on_a = tokio::spawn(async move { record(&mut via_a, ea).await });
    let on_b = tokio::spawn(async move { record(&mut via_b, eb).await });
    a.db.wait_for_lock_waiters(2, "both instances wait for the customer").await;
    holder.batch_execute("ROLLBACK").unwrap();

    let answers = [on_a.await.unwrap().expect("A answers"), on_b.await.unwrap().expect("B answers")];
    let mut replayed: Vec<bool> = answers.iter().map(|o| o.replayed).collect();
    replayed.sort();
    assert_eq!(replayed, [false, true], "one fresh answer, one replay");
    assert_eq!(answers[0].drawdowns, answers[1].drawdowns, "the replay is the first answer");
    assert_eq!(recorded(&mut a.db.connect(), &t.customer_id), 1);
    let balance = c
        .get_commit_balance(pb::GetCommitBalanceRequest { commit_id: commit.id.clone(), at: None })
        .await
        .unwrap()
        .into_inner()
        .balance
        .unwrap()
        .amount;
    assert_eq!(balance, "40", "drawn once");
}
