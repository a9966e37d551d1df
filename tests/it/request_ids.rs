//! One idempotency convention (AIP-155) on every call that creates or moves something:
//! a retry with the same `request_id` and request gets what the first call made (and
//! makes nothing more); the same id with another request is ALREADY_EXISTS naming it.

use std::future::Future;

use billing::proto::v1 as pb;
use chrono::{Duration, Utc};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::commitments::monthly_spend;
use crate::promos::promo;
use crate::support::fixtures::{
    Tenant, application, commitments_client, commits, create_commit, credit_promotion, prepaid, promos,
};
use crate::support::server::Key;
use crate::support::{TestServer, bad_fields, expect_code};

/// `call` with `first` twice names one resource; with `changed` (same request id,
/// another request) it is ALREADY_EXISTS naming that resource. Returns its id.
async fn replays<R: Clone, F, Fut>(what: &str, call: F, first: R, changed: R) -> String
where
    F: Fn(R) -> Fut,
    Fut: Future<Output = Result<String, Status>>,
{
    let made = call(first.clone()).await.unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let again = call(first).await.unwrap_or_else(|e| panic!("{what} retried: {e:?}"));
    assert_eq!(again, made, "{what}: a retry gets what the first call made");
    let status = call(changed).await.expect_err("another request under the same id");
    assert_eq!(status.code(), Code::AlreadyExists, "{what}: {status:?}");
    let named = status.get_error_details().resource_info().map(|r| r.resource_name.clone());
    assert_eq!(named.as_deref(), Some(made.as_str()), "{what}: the refusal names what the id made");
    made
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_create_with_a_request_id_makes_one_thing_and_replays_it() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let rid = || "req-1".to_owned();

    let customers = server.customers(&t.key).await;
    let customer = |name: &str| pb::CreateCustomerRequest {
        customer: Some(pb::Customer {
            external_id: "ACR-RID".into(),
            name: name.into(),
            ..Default::default()
        }),
        request_id: rid(),
    };
    let call = |r| {
        let mut c = customers.clone();
        async move { Ok(c.create_customer(r).await?.into_inner().customer.unwrap().id) }
    };
    replays("CreateCustomer", call, customer("Katerina"), customer("Other")).await;

    let products = server.products(&t.key).await;
    let product = |name: &str| pb::CreateProductRequest {
        product: Some(pb::Product {
            code: "RID".into(),
            name: name.into(),
            kind: pb::ProductKind::Service.into(),
            ..Default::default()
        }),
        request_id: rid(),
    };
    let call = |r| {
        let mut c = products.clone();
        async move { Ok(c.create_product(r).await?.into_inner().product.unwrap().id) }
    };
    replays("CreateProduct", call, product("VOD"), product("Other")).await;

    let credit_types = pb::credit_type_service_client::CreditTypeServiceClient::with_interceptor(
        server.channel().await,
        Key::bearer(&t.key),
    );
    let credit_type = |name: &str| pb::CreateCreditTypeRequest {
        credit_type: Some(pb::CreditType { code: "POINTS".into(), name: name.into(), ..Default::default() }),
        request_id: rid(),
    };
    let call = |r| {
        let mut c = credit_types.clone();
        async move { Ok(c.create_credit_type(r).await?.into_inner().credit_type.unwrap().code) }
    };
    replays("CreateCreditType", call, credit_type("Points"), credit_type("Other")).await;

    let c = commits(&server, &t.key).await;
    let (from, to) = (Utc::now() - Duration::days(1), Utc::now() + Duration::days(30));
    let commit = |amount: &str| pb::CreateCommitRequest {
        commit: Some(prepaid(&t, amount, "1", from, to)),
        request_id: rid(),
    };
    let call = |r| {
        let mut c = c.clone();
        async move { Ok(c.create_commit(r).await?.into_inner().commit.unwrap().id) }
    };
    replays("CreateCommit", call, commit("100"), commit("200")).await;

    let cm = commitments_client(&server, &t.key).await;
    let commitment = |amount: &str| pb::CreateCommitmentRequest {
        commitment: Some(monthly_spend(&t, amount, from, to)),
        apply_promotion: None,
        request_id: rid(),
    };
    let call = |r| {
        let mut c = cm.clone();
        async move { Ok(c.create_commitment(r).await?.into_inner().commitment.unwrap().id) }
    };
    replays("CreateCommitment", call, commitment("100"), commitment("200")).await;

    let p = promos(&server, &t.key).await;
    let billing_promo = |n: u32| pb::CreateBillingPromoRequest {
        promo: Some(pb::BillingPromo {
            product_n: Some(n),
            ..promo(pb::BillingPromoType::BuyNTakeM, &t.vod)
        }),
        request_id: rid(),
    };
    let call = |r| {
        let mut c = p.clone();
        async move { Ok(c.create_billing_promo(r).await?.into_inner().promo.unwrap().id) }
    };
    replays("CreateBillingPromo", call, billing_promo(2), billing_promo(3)).await;

    let credit = |per_cycle: &str| pb::CreateCreditPromotionRequest {
        promotion: Some(pb::CreditPromotion {
            name: "Welcome".into(),
            amount_per_cycle: Some(per_cycle.into()),
            ..Default::default()
        }),
        request_id: rid(),
    };
    let call = |r| {
        let mut c = p.clone();
        async move { Ok(c.create_credit_promotion(r).await?.into_inner().promotion.unwrap().id) }
    };
    replays("CreateCreditPromotion", call, credit("10"), credit("20")).await;

    let promotion = credit_promotion(&server, &t, "Loyalty", "5").await;
    let apply = |priority: &str| pb::ApplyPromotionRequest {
        request_id: rid(),
        ..application(&t, &promotion.id, priority, from)
    };
    let call = |r| {
        let mut c = p.clone();
        async move { Ok(c.apply_promotion(r).await?.into_inner().applied.unwrap().id) }
    };
    replays("ApplyPromotion", call, apply("1"), apply("2")).await;

    let alerts = pb::alert_service_client::AlertServiceClient::with_interceptor(
        server.channel().await,
        Key::bearer(&t.key),
    );
    let alert = |below: &str| pb::CreateBalanceAlertRequest {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        threshold: Some(pb::create_balance_alert_request::Threshold::ThresholdAmount(below.into())),
        request_id: rid(),
        ..Default::default()
    };
    let call = |r| {
        let mut c = alerts.clone();
        async move { Ok(c.create_balance_alert(r).await?.into_inner().alert.unwrap().id) }
    };
    replays("CreateBalanceAlert", call, alert("10"), alert("20")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_void_or_termination_retried_with_its_request_id_answers_as_the_first_did() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let (from, to) = (Utc::now() - Duration::days(1), Utc::now() + Duration::days(365));

    let mut c = commits(&server, &t.key).await;
    let commit = create_commit(&mut c, prepaid(&t, "100", "1", from, to)).await;
    let void = |id: &str| pb::VoidCommitRequest {
        id: id.to_owned(),
        reason: "cancelled".into(),
        request_id: "void-1".into(),
        ..Default::default()
    };
    let first = c.void_commit(void(&commit.id)).await.unwrap().into_inner().commit.unwrap();
    let again = c
        .void_commit(void(&commit.id))
        .await
        .expect("a retried void is answered")
        .into_inner()
        .commit
        .unwrap();
    assert_eq!(again, first, "the retry gets the voided commit");
    let unkeyed = pb::VoidCommitRequest { request_id: String::new(), ..void(&commit.id) };
    expect_code(c.void_commit(unkeyed).await, Code::FailedPrecondition);

    let mut cm = commitments_client(&server, &t.key).await;
    let mut terms = monthly_spend(&t, "1", from, to);
    terms.customer_obligations.as_mut().unwrap().minimum_term_months = 6;
    terms.early_termination_penalty = Some(pb::Money { amount: "250".into(), credit_type: String::new() });
    let commitment = crate::commitments::create(&mut cm, terms).await;
    let terminate = pb::TerminateCommitmentRequest {
        id: commitment.id.clone(),
        reason: "moved abroad".into(),
        request_id: "terminate-1".into(),
        ..Default::default()
    };
    let first = cm.terminate_commitment(terminate.clone()).await.unwrap().into_inner();
    let again =
        cm.terminate_commitment(terminate).await.expect("a retried termination is answered").into_inner();
    assert_eq!(again.penalty, first.penalty, "the retry names the penalty the first recorded");
    assert_eq!(again.commitment, first.commitment);
    let compensations = cm
        .list_compensations(pb::ListCompensationsRequest {
            commitment_id: commitment.id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .compensations;
    assert_eq!(compensations.len(), 1, "one penalty, however often the call is retried");
    let p = promos(&server, &t.key).await;
    let promotion = credit_promotion(&server, &t, "Loyalty", "5").await;
    let applied = p
        .clone()
        .apply_promotion(application(&t, &promotion.id, "1", from))
        .await
        .unwrap()
        .into_inner()
        .applied
        .unwrap();
    let remove = pb::RemoveAppliedPromotionRequest {
        id: applied.id,
        removal_context: "plan changed".into(),
        request_id: "remove-1".into(),
    };
    let first = p.clone().remove_applied_promotion(remove.clone()).await.unwrap().into_inner();
    let again =
        p.clone().remove_applied_promotion(remove.clone()).await.expect("a retried removal is answered");
    assert_eq!(again.into_inner().applied.map(|a| a.removed_time), first.applied.map(|a| a.removed_time));
    let unkeyed = pb::RemoveAppliedPromotionRequest { request_id: String::new(), ..remove };
    expect_code(p.clone().remove_applied_promotion(unkeyed).await, Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_with_one_request_id_make_one_customer() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let customers = server.customers(&t.key).await;
    let request = pb::CreateCustomerRequest {
        customer: Some(pb::Customer {
            external_id: "RACE".into(),
            name: "Racer".into(),
            ..Default::default()
        }),
        request_id: "race-1".into(),
    };
    let calls = (0..8).map(|_| {
        let (mut c, r) = (customers.clone(), request.clone());
        tokio::spawn(async move { c.create_customer(r).await.map(|a| a.into_inner().customer.unwrap().id) })
    });
    let ids: std::collections::BTreeSet<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().expect("every call is answered"))
        .collect();
    assert_eq!(ids.len(), 1, "one customer for one request id: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_id_is_refused_beside_the_other_bad_fields() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut customers = server.customers(&t.key).await;
    let bad = pb::CreateCustomerRequest {
        customer: Some(pb::Customer { external_id: "X".into(), ..Default::default() }),
        request_id: "x".repeat(129),
    };
    let status = expect_code(customers.create_customer(bad).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["request_id", "customer.name"]);
    // PostgreSQL text cannot hold NUL: refused, never looked up.
    let nul = pb::CreateCustomerRequest {
        customer: Some(pb::Customer { external_id: "X".into(), name: "X".into(), ..Default::default() }),
        request_id: "a\0b".into(),
    };
    let status = expect_code(customers.create_customer(nul).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["request_id"]);
}
