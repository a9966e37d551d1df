//! History is not rewritten: a closed commitment period keeps the terms it was judged
//! under, a promotion given with a commitment ends with it, a customer's time zone does
//! not move under counted usage, usage cannot be dated past the backdating horizon, and
//! a check of a recorded event answers its replay.

use billing::proto::v1 as pb;
use chrono::{Duration, Utc};
use prost_types::FieldMask;
use tonic::Code;

use crate::commitments::{create, monthly_spend, months_ago, op, spend, string};
use crate::support::fixtures::{
    Tenant, commitments_client, commits, create_commit, credit_promotion, event, prepaid, promos, record, ts,
    usage_client,
};
use crate::support::{TestServer, bad_fields, expect_code, reason};
use crate::usage::{daily_amount, set_limits};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_period_keeps_the_terms_it_was_judged_under() {
    let server = TestServer::start_accepting_old_usage().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commitments_client(&server, &t.key).await;
    let start = months_ago(2) - Duration::days(1);
    let created = create(&mut c, monthly_spend(&t, "100", start, start + Duration::days(365))).await;
    spend(&server, &t, "m1", "40", start + Duration::days(3), "").await;
    server.app.evaluate_due_commitments().await.unwrap();

    let current = c
        .get_commitment(pb::GetCommitmentRequest { id: created.id.clone(), ..Default::default() })
        .await
        .unwrap();
    c.patch_commitment(pb::PatchCommitmentRequest {
        id: created.id.clone(),
        etag: current.into_inner().commitment.unwrap().etag,
        operations: vec![op("replace", "/customer_obligations/minimum_spend/0/amount", Some(string("40")))],
        ..Default::default()
    })
    .await
    .unwrap();

    let e = c
        .evaluate_commitment(pb::EvaluateCommitmentRequest { id: created.id.clone(), as_of: None })
        .await
        .unwrap()
        .into_inner();
    let judged: Vec<_> =
        e.periods.iter().map(|p| (p.required.as_str(), p.shortfall.as_str(), p.outcome)).collect();
    use pb::PeriodOutcome as O;
    assert_eq!(
        judged,
        [
            ("100", "60", O::Shortfall as i32),
            ("100", "100", O::Shortfall as i32),
            ("40", "40", O::Open as i32)
        ],
        "closed months keep the minimum of 100 they were judged under; the open one takes the edit"
    );
    let compensations = c
        .list_compensations(pb::ListCompensationsRequest { commitment_id: created.id, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .compensations;
    let amounts: Vec<_> = compensations.iter().map(|c| c.amount.as_ref().unwrap().amount.as_str()).collect();
    assert_eq!(amounts, ["60", "100"], "what was recorded agrees with what the evaluation says");
}

/// Creates `commitment` with `promotion` applied from `from` on; returns both.
async fn with_promotion(
    server: &TestServer,
    t: &Tenant,
    commitment: pb::Commitment,
    promotion: &pb::CreditPromotion,
    from: chrono::DateTime<Utc>,
) -> (pb::Commitment, pb::AppliedPromotion) {
    let created = commitments_client(server, &t.key)
        .await
        .create_commitment(pb::CreateCommitmentRequest {
            commitment: Some(commitment),
            apply_promotion: Some(pb::AppliedPromotion {
                promotion_id: promotion.id.clone(),
                priority: "0".into(),
                applied_time_range: Some(pb::TimeRange { start_time: ts(from), end_time: None }),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    (created.commitment.unwrap(), created.first_applied_promotions[0].clone())
}

async fn applied_now(server: &TestServer, t: &Tenant) -> Vec<pb::AppliedPromotion> {
    promos(server, &t.key)
        .await
        .list_applied_promotions(pb::ListAppliedPromotionsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            include_removed: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .applied
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_a_commitment_removes_the_promotions_applied_with_it() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let promotion = credit_promotion(&server, &t, "Device credit", "10").await;
    let now = Utc::now();
    let (commitment, _) = with_promotion(
        &server,
        &t,
        monthly_spend(&t, "1", now - Duration::hours(1), now + Duration::days(365)),
        &promotion,
        now - Duration::hours(1),
    )
    .await;
    let mut u = usage_client(&server, &t.key).await;
    let before = record(&mut u, event(&t, "before", "CREED", "1", "3")).await.unwrap();
    assert_eq!(before.drawdowns.len(), 1, "the promotion draws while the commitment runs");

    commitments_client(&server, &t.key)
        .await
        .terminate_commitment(pb::TerminateCommitmentRequest {
            id: commitment.id.clone(),
            etag: commitment.etag.clone(),
            reason: "moved away".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let applied = applied_now(&server, &t).await;
    assert!(applied[0].removed_time.is_some(), "removed in the termination's transaction");
    assert!(applied[0].removal_context.contains("terminated"), "{}", applied[0].removal_context);
    let after = record(&mut u, event(&t, "after", "CREED", "1", "3")).await.unwrap();
    assert!(after.drawdowns.is_empty() && after.overage == "3", "it draws no more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commitment_ending_without_restart_removes_its_promotions_and_a_restart_keeps_them() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let promotion = credit_promotion(&server, &t, "Device credit", "10").await;
    let start = months_ago(1) - Duration::days(2);
    let end = chrono::DateTime::from_timestamp(Utc::now().timestamp() - 3600, 0).unwrap();
    let (ended, _) =
        with_promotion(&server, &t, monthly_spend(&t, "0.01", start, end), &promotion, start).await;
    let mut restarting = monthly_spend(&t, "0.01", start, end);
    restarting.ending_config = Some(pb::EndingConfig { restart_commitment: true, ..Default::default() });
    let (restarted, _) = with_promotion(&server, &t, restarting, &promotion, start).await;
    server.app.evaluate_due_commitments().await.unwrap();

    let applied = applied_now(&server, &t).await;
    let of = |id: &str| applied.iter().find(|a| a.commitment_id == id).cloned();
    let removed = of(&ended.id).expect("the ended commitment's promotion");
    assert_eq!(removed.removed_time, ts(end), "removed at the commitment's end");
    assert!(removed.removal_context.contains("ended"));
    assert!(of(&restarted.id).is_none(), "moved to the successor");
    let successor = commitments_client(&server, &t.key)
        .await
        .get_commitment(pb::GetCommitmentRequest { id: restarted.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .commitment
        .unwrap()
        .successor_id;
    let moved = of(&successor).expect("the restarted commitment's promotion goes on with its successor");
    assert!(moved.removed_time.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_zone_cannot_change_while_limits_count_local_days() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_amount("100", "0")).await;
    let mut customers = billing::proto::v1::customer_service_client::CustomerServiceClient::with_interceptor(
        server.channel().await,
        crate::support::server::Key::bearer(&t.key),
    );
    let update = pb::UpdateCustomerRequest {
        customer: Some(pb::Customer {
            id: t.customer_id.clone(),
            time_zone: "Asia/Tokyo".into(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: vec!["time_zone".into()] }),
    };
    let status = expect_code(customers.update_customer(update).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "TIME_ZONE_LOCKED_BY_LIMITS");
    let kept = t.customer(&server).await;
    assert_eq!(kept.time_zone, "UTC");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_older_than_the_backdating_horizon_is_refused_and_records_nothing() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_amount("100", "0")).await;
    let mut u = usage_client(&server, &t.key).await;
    let mut old = event(&t, "old", "CREED", "1", "500");
    // Always before the start of the previous month.
    old.timestamp = ts(Utc::now() - Duration::days(63));
    let status = record(&mut u, old.clone()).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["event.timestamp"]);
    let check = u.check_usage(pb::CheckUsageRequest { event: Some(old) }).await.unwrap_err();
    assert_eq!(bad_fields(&check), ["event.timestamp"], "a check refuses what a recording would");
    let next = record(&mut u, event(&t, "now", "CREED", "1", "1")).await.unwrap();
    assert_eq!(next.decision, pb::UsageDecision::Allowed as i32, "nothing of the refused event was counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checking_a_recorded_event_answers_its_replay() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_amount("100", "0")).await;
    let mut u = usage_client(&server, &t.key).await;
    let e = event(&t, "e-1", "CREED", "1", "80");
    let recorded = record(&mut u, e.clone()).await.unwrap();
    let checked = u
        .check_usage(pb::CheckUsageRequest { event: Some(e.clone()) })
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    assert!(checked.replayed);
    assert_eq!(checked.decision, recorded.decision, "not counted twice (80 + 80 would be blocked)");
    assert_eq!(checked.checks, recorded.checks);
    let changed = pb::UsageEvent { rated_amount: "81".into(), ..e };
    expect_code(u.check_usage(pb::CheckUsageRequest { event: Some(changed) }).await, Code::AlreadyExists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_types_are_case_insensitive() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let mut commit = prepaid(&t, "100", "1", Utc::now() - Duration::days(1), Utc::now() + Duration::days(30));
    commit.access_schedule.as_mut().unwrap().credit_type = "eur".into();
    let created = create_commit(&mut c, commit).await;
    assert_eq!(created.access_schedule.unwrap().credit_type, "EUR", "stored upper-case");
    let mut u = usage_client(&server, &t.key).await;
    let mut e = event(&t, "eur", "CREED", "1", "30");
    e.credit_type = "Eur".into();
    let o = record(&mut u, e).await.unwrap();
    assert_eq!((o.drawdowns.len(), o.overage.as_str()), (1, "0"), "drawn from the EUR commit");
}
