//! Recorded usage events: voiding reverses everything an event moved (totals, commit
//! balances and ledger, credit promotion uses) in one transaction, idempotently, never
//! reopening a closed segment; listing pages a customer's events with filters.

use crate::support::limit_of;
use billing::proto::v1 as pb;
use chrono::{Duration, Utc};
use tonic::Code;

use crate::support::fixtures::{
    Tenant, commits, create_commit, credit_promotion, event, prepaid, promos, record, test_now, ts,
    usage_client,
};
use crate::support::server::Authed;
use crate::support::{TestServer, bad_fields, expect_code, reason};
use crate::usage::{daily_amount, set_limits};

type Usage = pb::usage_service_client::UsageServiceClient<Authed>;

async fn void(u: &mut Usage, event_id: &str) -> Result<pb::VoidUsageEventResponse, tonic::Status> {
    u.void_usage_event(pb::VoidUsageEventRequest { event_id: event_id.into(), reason: "sent twice".into() })
        .await
        .map(|r| r.into_inner())
}

async fn daily_used(server: &TestServer, t: &Tenant, u: &mut Usage) -> String {
    let _ = server;
    let usage = u
        .get_allowance_usage(pb::GetAllowanceUsageRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            at: ts(test_now()),
        })
        .await
        .unwrap()
        .into_inner()
        .usage;
    let customer_day = |l: &&pb::AllowanceUsage| {
        let (scope, _, _, period) = limit_of(&l.limit_ref);
        (scope, period) == (pb::LimitScope::Customer, pb::LimitPeriod::Day)
    };
    usage.iter().find(customer_day).unwrap().used.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voiding_an_event_reverses_totals_balances_and_promotion_draws_once() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_amount("100", "0")).await;
    let mut c = commits(&server, &t.key).await;
    let commit = create_commit(
        &mut c,
        prepaid(&t, "50", "5", Utc::now() - Duration::days(1), Utc::now() + Duration::days(30)),
    )
    .await;
    let mut p = promos(&server, &t.key).await;
    let promotion = credit_promotion(&server, &t, "Welcome", "10").await;
    p.apply_promotion(pb::ApplyPromotionRequest {
        applied: Some(pb::AppliedPromotion {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            promotion_id: promotion.id.clone(),
            priority: "1".into(),
            applied_time_range: Some(pb::TimeRange {
                start_time: ts(Utc::now() - Duration::days(1)),
                end_time: None,
            }),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .unwrap();

    let mut u = usage_client(&server, &t.key).await;
    let dup = event(&t, "dup", "CREED", "1", "40");
    let first = record(&mut u, dup.clone()).await.unwrap();
    assert_eq!(first.drawdowns.len(), 2, "10 from the promotion, 30 from the commit");
    record(&mut u, event(&t, "kept", "CREED", "1", "5")).await.unwrap();
    assert_eq!(daily_used(&server, &t, &mut u).await, "45");

    let voided = void(&mut u, "dup").await.unwrap();
    assert!(!voided.already_voided);
    let e = voided.event.unwrap();
    assert!(e.void_time.is_some() && e.void_reason == "sent twice" && !e.voided_by.is_empty());
    assert_eq!(daily_used(&server, &t, &mut u).await, "5", "out of the daily total");
    let balance = c
        .get_commit_balance(pb::GetCommitBalanceRequest { commit_id: commit.id.clone(), at: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balance.balance.unwrap().amount, "45", "50 - 30 - 5 ('kept') + the 30 given back");
    let applied = p
        .list_applied_promotions(pb::ListAppliedPromotionsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .applied;
    assert_eq!(
        applied[0].amount_left_in_cycle.as_ref().unwrap().amount,
        "10",
        "the promotion's 10 given back"
    );
    let ledger = c
        .list_commit_ledger(pb::ListCommitLedgerRequest {
            commit_id: commit.id.clone(),
            page_size: 50,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(ledger.iter().all(|e| !e.running_balance.starts_with('-')));
    let reversal = ledger.iter().find(|e| e.amount == "30").expect("the reversal is in the ledger");
    assert_eq!(reversal.kind, pb::LedgerEntryKind::Drawdown as i32);
    assert_eq!(reversal.effective_time, ledger.iter().find(|e| e.amount == "-30").unwrap().effective_time);

    let again = void(&mut u, "dup").await.unwrap();
    assert!(again.already_voided, "idempotent");
    assert_eq!(daily_used(&server, &t, &mut u).await, "5", "nothing reversed twice");
    let replay = record(&mut u, dup).await.unwrap();
    assert!(replay.replayed, "a replay of a voided event records nothing again");
    assert_eq!(daily_used(&server, &t, &mut u).await, "5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_drew_from_a_closed_segment_cannot_be_voided() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let commit = create_commit(
        &mut c,
        prepaid(&t, "50", "1", Utc::now() - Duration::days(1), Utc::now() + Duration::days(30)),
    )
    .await;
    let mut u = usage_client(&server, &t.key).await;
    record(&mut u, event(&t, "e", "CREED", "1", "10")).await.unwrap();
    c.void_commit(pb::VoidCommitRequest {
        id: commit.id,
        etag: commit.etag,
        reason: "cancelled".into(),
        request_id: String::new(),
    })
    .await
    .unwrap();
    let status = expect_code(void(&mut u, "e").await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "SEGMENT_CLOSED");
    expect_code(void(&mut u, "unknown").await, Code::NotFound);
    assert_eq!(bad_fields(&expect_code(void(&mut u, "").await, Code::InvalidArgument)), ["event_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_listed_per_customer_with_filters_and_pages() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_amount("100", "0")).await;
    let mut u = usage_client(&server, &t.key).await;
    for (id, code, amount) in
        [("a", "CREED", "10"), ("b", "EXXON", "10"), ("c", "CREED", "500"), ("d", "CREED", "1")]
    {
        record(&mut u, event(&t, id, code, "1", amount)).await.unwrap();
    }
    void(&mut u, "d").await.unwrap();
    let list = |req: pb::ListUsageEventsRequest| {
        let mut u = u.clone();
        async move { u.list_usage_events(req).await.unwrap().into_inner() }
    };
    let ids =
        |r: &pb::ListUsageEventsResponse| r.events.iter().map(|e| e.event_id.clone()).collect::<Vec<_>>();
    let base = pb::ListUsageEventsRequest {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        ..Default::default()
    };

    assert_eq!(ids(&list(base.clone()).await), ["a", "b", "c"], "voided events left out by default");
    let all = list(pb::ListUsageEventsRequest { include_voided: true, ..base.clone() }).await;
    assert_eq!(ids(&all), ["a", "b", "c", "d"]);
    let by_product = pb::ListUsageEventsRequest { product_id: t.fuel.clone(), ..base.clone() };
    assert_eq!(ids(&list(by_product).await), ["b"]);
    let blocked = pb::ListUsageEventsRequest { decision: pb::UsageDecision::Blocked.into(), ..base.clone() };
    assert_eq!(ids(&list(blocked).await), ["c"]);
    let future =
        pb::ListUsageEventsRequest { start_time: ts(Utc::now() + Duration::hours(2)), ..base.clone() };
    assert!(list(future).await.events.is_empty());

    let first = list(pb::ListUsageEventsRequest { page_size: 2, ..base.clone() }).await;
    assert_eq!(ids(&first), ["a", "b"]);
    let second = list(pb::ListUsageEventsRequest {
        page_size: 2,
        page_token: first.next_page_token.clone(),
        ..base.clone()
    })
    .await;
    assert_eq!((ids(&second), second.next_page_token.as_str()), (vec!["c".to_string()], ""));
    let mut other = u.clone();
    let mismatched = pb::ListUsageEventsRequest {
        page_token: first.next_page_token,
        product_id: t.vod.clone(),
        ..base.clone()
    };
    expect_code(other.list_usage_events(mismatched).await, Code::InvalidArgument);
    let nobody = pb::ListUsageEventsRequest {
        customer: billing::proto::customer_id(uuid::Uuid::now_v7().to_string()),
        ..Default::default()
    };
    expect_code(other.list_usage_events(nobody).await, Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voided_event_no_longer_counts_toward_a_commitment() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = crate::support::fixtures::commitments_client(&server, &t.key).await;
    let now = Utc::now();
    let commitment = crate::commitments::create(
        &mut c,
        crate::commitments::monthly_spend(&t, "100", now - Duration::hours(1), now + Duration::days(365)),
    )
    .await;
    let mut u = usage_client(&server, &t.key).await;
    record(&mut u, event(&t, "spent", "CREED", "1", "40")).await.unwrap();
    let measured = |c: &mut pb::commitment_service_client::CommitmentServiceClient<Authed>| {
        let mut c = c.clone();
        let id = commitment.id.clone();
        async move {
            let e = c.evaluate_commitment(pb::EvaluateCommitmentRequest { id, as_of: None }).await.unwrap();
            e.into_inner().periods[0].measured.clone()
        }
    };
    assert_eq!(measured(&mut c).await, "40");
    void(&mut u, "spent").await.unwrap();
    assert_eq!(measured(&mut c).await, "0");
}
