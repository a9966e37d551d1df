//! Callers name customers by their own identifiers: every request that names a customer
//! takes `customer_external_id` instead of `customer_id`, with the same answers, and
//! another organization's external id is NOT_FOUND.

use billing::proto::v1 as pb;
use billing::proto::{CustomerOneof, customer_external_id, customer_id};
use chrono::{Duration, Utc};
use tonic::Code;

use crate::support::fixtures::{
    Tenant, allowances, commitments_client, commits, credit_promotion, prepaid, promos, ts, usage,
    usage_client, violations,
};
use crate::support::{TestServer, expect_code, reason};

/// How a request names the customer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Id,
    External,
    /// An external id only another organization's customer has.
    Foreign,
}

const FOREIGN: &str = "ACR-OF-ANOTHER-ORG";

fn named<T: CustomerOneof>(who: Who, t: &Tenant) -> Option<T> {
    match who {
        Who::Id => customer_id(t.customer_id.clone()),
        Who::External => customer_external_id("ACR1"),
        Who::Foreign => customer_external_id(FOREIGN),
    }
}

/// Calls `$call` (an expression using `$who`) naming the customer by id, by external
/// id and by another org's external id: the first two succeed alike (with equal answers
/// for `same`: reads and idempotent replays), the third is NOT_FOUND naming the external
/// id. Evaluates to the answer by external id.
macro_rules! alike {
    ($name:literal, same, |$who:ident| $call:expr) => {{
        let (by_id, by_external) = alike!(@both $name, |$who| $call);
        assert_eq!(by_id, by_external, "{}", $name);
        by_external
    }};
    ($name:literal, |$who:ident| $call:expr) => {{
        let (_, by_external) = alike!(@both $name, |$who| $call);
        by_external
    }};
    (@both $name:literal, |$who:ident| $call:expr) => {{
        let by_id = {
            let $who = Who::Id;
            $call.await.map(|r| r.into_inner())
        };
        let by_external = {
            let $who = Who::External;
            $call.await.map(|r| r.into_inner())
        };
        let by_id = by_id.unwrap_or_else(|s| panic!("{} by id: {s:?}", $name));
        let by_external = by_external.unwrap_or_else(|s| panic!("{} by external id: {s:?}", $name));
        let foreign = {
            let $who = Who::Foreign;
            $call.await
        };
        let status = expect_code(foreign, Code::NotFound);
        assert!(status.message().contains(FOREIGN), "{}: {}", $name, status.message());
        (by_id, by_external)
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_naming_a_customer_takes_its_external_id_alike() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    // Another org with a customer of the same external id, and one only it has.
    let other = Tenant::create(&server, "Globex").await;
    other.another_customer(&server, FOREIGN).await;
    let now = Utc::now();
    let (start, end) = (now - Duration::days(1), now + Duration::days(30));

    let mut limits = allowances(&server, &t.key).await;
    let l = |who| pb::AllowanceLimits {
        customer: named(who, &t),
        accumulated_maximum_rated_amount_per_day: Some("100".into()),
        ..Default::default()
    };
    alike!("ReplaceAllowanceLimits", |who| limits
        .replace_allowance_limits(pb::ReplaceAllowanceLimitsRequest { limits: Some(l(who)) }));
    alike!("GetAllowanceLimits", same, |who| limits
        .get_allowance_limits(pb::GetAllowanceLimitsRequest { customer: named(who, &t) }));
    alike!("UpdateAllowanceLimits", |who| limits.update_allowance_limits(pb::UpdateAllowanceLimitsRequest {
        customer: named(who, &t),
        accumulated_maximum_rated_amount_per_day: Some("200".into()),
        ..Default::default()
    }));

    let mut c = commits(&server, &t.key).await;
    let commit = |who| pb::Commit { customer: named(who, &t), ..prepaid(&t, "100", "1", start, end) };
    let created = alike!("CreateCommit", |who| c
        .create_commit(pb::CreateCommitRequest { commit: Some(commit(who)), request_id: String::new() }));
    assert_eq!(created.commit.unwrap().customer_id(), t.customer_id, "answers name the customer by id");
    alike!("ListCommits", same, |who| c
        .list_commits(pb::ListCommitsRequest { customer: named(who, &t), ..Default::default() }));
    alike!("PreviewDrawdown", same, |who| c.preview_drawdown(pb::PreviewDrawdownRequest {
        customer: named(who, &t),
        usage: Some(usage(&t.vod, "5")),
    }));
    // The same key by external id replays the call by id: the same customer, the same payload.
    let replay = alike!("ApplyDrawdown", |who| c.apply_drawdown(pb::ApplyDrawdownRequest {
        idempotency_key: "k1".into(),
        customer: named(who, &t),
        usage: Some(usage(&t.vod, "5")),
    }));
    assert!(replay.replayed, "the second call replays the first");

    let mut u = usage_client(&server, &t.key).await;
    let event = |who, id: &str| pb::UsageEvent {
        event_id: id.into(),
        customer: named(who, &t),
        product: Some(pb::usage_event::Product::ProductId(t.vod.clone())),
        quantity: "1".into(),
        rated_amount: "2".into(),
        timestamp: ts(now),
        ..Default::default()
    };
    alike!("CheckUsage", same, |who| u.check_usage(pb::CheckUsageRequest { event: Some(event(who, "")) }));
    alike!("RecordUsage", |who| u.record_usage(pb::RecordUsageRequest { event: Some(event(who, "e1")) }));
    alike!("GetAllowanceUsage", same, |who| u
        .get_allowance_usage(pb::GetAllowanceUsageRequest { customer: named(who, &t), at: ts(now) }));
    alike!("ListUsageEvents", same, |who| u
        .list_usage_events(pb::ListUsageEventsRequest { customer: named(who, &t), ..Default::default() }));

    let mut p = promos(&server, &t.key).await;
    let promotion = credit_promotion(&server, &t, "welcome", "10").await;
    let applied = |who| pb::AppliedPromotion {
        customer: named(who, &t),
        promotion_id: promotion.id.clone(),
        priority: "1".into(),
        applied_time_range: Some(pb::TimeRange { start_time: ts(start), end_time: ts(end) }),
        ..Default::default()
    };
    alike!("ApplyPromotion", |who| p.apply_promotion(pb::ApplyPromotionRequest {
        applied: Some(applied(who)),
        request_id: String::new()
    }));
    alike!("ListAppliedPromotions", same, |who| p.list_applied_promotions(
        pb::ListAppliedPromotionsRequest { customer: named(who, &t), ..Default::default() }
    ));
    alike!("EvaluateBasket", same, |who| p.evaluate_basket(pb::EvaluateBasketRequest {
        customer: named(who, &t),
        lines: vec![pb::BasketLine { product_id: t.vod.clone(), quantity: 2 }],
        ..Default::default()
    }));
    alike!("ListRewards", same, |who| p
        .list_rewards(pb::ListRewardsRequest { customer: named(who, &t), ..Default::default() }));

    let mut m = commitments_client(&server, &t.key).await;
    let commitment = |who| pb::Commitment {
        customer: named(who, &t),
        ..crate::commitments::monthly_spend(&t, "1", start, end)
    };
    alike!("CreateCommitment", |who| m.create_commitment(pb::CreateCommitmentRequest {
        commitment: Some(commitment(who)),
        apply_promotion: None,
        request_id: String::new()
    }));
    alike!("CreateCommitment apply_promotion", |who| m.create_commitment(pb::CreateCommitmentRequest {
        commitment: Some(commitment(Who::Id)),
        apply_promotion: Some(applied(who)),
        request_id: String::new()
    }));
    alike!("ListCommitments", same, |who| m
        .list_commitments(pb::ListCommitmentsRequest { customer: named(who, &t), ..Default::default() }));

    let mut f = violations(&server, &t.key).await;
    alike!("ListViolations", same, |who| f
        .list_violations(pb::ListViolationsRequest { customer: named(who, &t), ..Default::default() }));
    alike!("WatchViolations", |who| f
        .watch_violations(pb::WatchViolationsRequest { customer: named(who, &t), ..Default::default() }));
}

/// In a batch, an event naming an unknown external id is NOT_FOUND on its own; the
/// others are recorded, their customers found in one lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_an_unknown_external_id_per_event() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut u = usage_client(&server, &t.key).await;
    let event = |id: &str, customer| pb::UsageEvent {
        event_id: id.into(),
        customer,
        product: Some(pb::usage_event::Product::ProductId(t.vod.clone())),
        quantity: "1".into(),
        rated_amount: "1".into(),
        timestamp: ts(Utc::now()),
        ..Default::default()
    };
    let results = u
        .record_usage_batch(pb::RecordUsageBatchRequest {
            events: vec![
                event("a", customer_external_id("ACR1")),
                event("b", customer_external_id("NOBODY")),
                event("c", customer_id(t.customer_id.clone())),
                event("d", customer_external_id(" padded ")),
                // Checked before the lookup: PostgreSQL text cannot hold a NUL.
                event("e", customer_external_id("ACR\0X")),
            ],
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    use pb::usage_batch_result::Result as R;
    let codes: Vec<i32> = results
        .iter()
        .map(|r| match r.result.as_ref().unwrap() {
            R::Outcome(_) => 0,
            R::Error(e) => e.code,
        })
        .collect();
    assert_eq!(
        codes,
        [0, Code::NotFound as i32, 0, Code::InvalidArgument as i32, Code::InvalidArgument as i32]
    );
    let Some(R::Error(unknown)) = &results[1].result else { unreachable!() };
    assert!(unknown.message.contains("NOBODY"), "{}", unknown.message);
    let Some(R::Outcome(a)) = &results[0].result else { unreachable!() };
    assert_eq!(a.event_id, "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_external_id_is_invalid_argument_naming_it() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut limits = allowances(&server, &t.key).await;
    for bad in ["", " ACR1", &"x".repeat(129)] {
        let status = expect_code(
            limits
                .get_allowance_limits(pb::GetAllowanceLimitsRequest { customer: customer_external_id(bad) })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(crate::support::bad_fields(&status), ["customer_external_id"], "{bad:?}");
    }
    let status = expect_code(
        limits
            .get_allowance_limits(pb::GetAllowanceLimitsRequest { customer: customer_external_id("NOBODY") })
            .await,
        Code::NotFound,
    );
    assert_eq!(reason(&status), "NOT_FOUND");
}
