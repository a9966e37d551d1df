//! One of everything for an organization, created through the public API, so tenancy
//! tests have rows in (nearly) every table to keep apart.

use billing::proto::v1 as pb;
use chrono::{Duration, Utc};

use super::TestServer;
use super::fixtures::{
    Tenant, apply, commitments_client, commits, create_commit, credit_promotion, event, prepaid, promos,
    record, ts, usage, usage_client,
};

/// What was created, by id.
pub struct Everything {
    pub commit: pb::Commit,
    pub commitment: pb::Commitment,
    pub promo: pb::BillingPromo,
}

/// Gives `t` a commit (segments, ledger, an adjustment, a drawdown request), allowance
/// limits with usage over them (events, totals, alerts, violations), a commitment with
/// its edit, a billing promo with a basket and a reward, a credit promotion applied to
/// the customer, and a custom credit type.
pub async fn one_of_everything(server: &TestServer, t: &Tenant) -> Everything {
    let now = Utc::now();
    let mut c = commits(server, &t.key).await;
    let commit =
        create_commit(&mut c, prepaid(t, "100", "9", now - Duration::days(1), now + Duration::days(30)))
            .await;
    apply(&mut c, t, "draw-1", usage(&t.vod, "1")).await.expect("apply a drawdown");
    c.adjust_commit_balance(pb::AdjustCommitBalanceRequest {
        commit_id: commit.id.clone(),
        segment_index: 0,
        amount: "1".into(),
        reason: "goodwill".into(),
        request_id: "adj-1".into(),
    })
    .await
    .expect("adjust");

    let limits = pb::AllowanceLimits {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        accumulated_maximum_rated_amount_per_day: Some("10".into()),
        warning_thresholds: vec!["50".into()],
        ..Default::default()
    };
    super::fixtures::allowances(server, &t.key)
        .await
        .replace_allowance_limits(pb::ReplaceAllowanceLimitsRequest { limits: Some(limits) })
        .await
        .expect("limits");
    let mut u = usage_client(server, &t.key).await;
    record(&mut u, event(t, "e-1", "CREED", "1", "6")).await.expect("usage over the threshold");
    record(&mut u, event(t, "e-2", "CREED", "1", "60")).await.expect("blocked usage");

    let mut cm = commitments_client(server, &t.key).await;
    let created = cm
        .create_commitment(pb::CreateCommitmentRequest {
            commitment: Some(pb::Commitment {
                customer: billing::proto::customer_id(t.customer_id.clone()),
                time_range: Some(pb::TimeRange {
                    start_time: ts(now),
                    end_time: ts(now + Duration::days(90)),
                }),
                customer_obligations: Some(pb::Obligations {
                    minimum_spend: vec![pb::MinimumSpend {
                        period: pb::ObligationPeriod::Month.into(),
                        amount: "1".into(),
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            apply_promotion: None,
            request_id: String::new(),
        })
        .await
        .expect("commitment")
        .into_inner()
        .commitment
        .unwrap();
    let patch = pb::PatchCommitmentRequest {
        id: created.id.clone(),
        etag: created.etag.clone(),
        operations: vec![pb::PatchOperation {
            op: "replace".into(),
            path: "/ending_config/plan_id".into(),
            value: Some(prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue("basic".into())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let commitment = cm.patch_commitment(patch).await.expect("patch").into_inner().commitment.unwrap();

    let mut p = promos(server, &t.key).await;
    let promo = p
        .create_billing_promo(pb::CreateBillingPromoRequest {
            promo: Some(pb::BillingPromo {
                r#type: pb::BillingPromoType::Rewards.into(),
                product_type: pb::ProductKind::Service.into(),
                product: t.vod.clone(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("promo")
        .into_inner()
        .promo
        .unwrap();
    p.evaluate_basket(pb::EvaluateBasketRequest {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        basket_id: "basket-1".into(),
        lines: vec![pb::BasketLine { product_id: t.vod.clone(), quantity: 2 }],
        ..Default::default()
    })
    .await
    .expect("basket");
    let promotion = credit_promotion(server, t, "Welcome", "10").await;
    p.apply_promotion(pb::ApplyPromotionRequest {
        applied: Some(pb::AppliedPromotion {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            promotion_id: promotion.id,
            priority: "1".into(),
            applied_time_range: Some(pb::TimeRange {
                start_time: ts(now - Duration::days(1)),
                end_time: None,
            }),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .expect("apply promotion");
    record(&mut u, event(t, "e-3", "CREED", "1", "2")).await.expect("usage drawing the promotion");
    pb::credit_type_service_client::CreditTypeServiceClient::with_interceptor(
        server.channel().await,
        super::Key::bearer(&t.key),
    )
    .create_credit_type(pb::CreateCreditTypeRequest {
        credit_type: Some(pb::CreditType {
            code: "CREDITS".into(),
            name: "Credits".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .expect("credit type");
    Everything { commit, commitment, promo }
}
