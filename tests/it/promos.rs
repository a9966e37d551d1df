//! PromoService: billing promos (defaults, rules, CRUD), basket evaluation with rewards,
//! redemption, credit promotions drawn down with usage, removal, and isolation.

use billing::proto::v1 as pb;
use chrono::{Duration, Utc};
use prost_types::FieldMask;
use tonic::Code;

use crate::support::fixtures::{
    Tenant, commits, create_commit, day, prepaid, promos, record, ts, usage_client,
};
use crate::support::{TestServer, bad_fields, expect_code, reason};

pub(crate) fn promo(kind: pb::BillingPromoType, product: &str) -> pb::BillingPromo {
    pb::BillingPromo {
        r#type: kind.into(),
        product_type: pb::ProductKind::Service.into(),
        product: product.into(),
        ..Default::default()
    }
}

pub(crate) async fn create(
    c: &mut billing::proto::v1::promo_service_client::PromoServiceClient<crate::support::server::Authed>,
    p: pb::BillingPromo,
) -> pb::BillingPromo {
    c.create_billing_promo(pb::CreateBillingPromoRequest { promo: Some(p), request_id: String::new() })
        .await
        .expect("create promo")
        .into_inner()
        .promo
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promo_takes_the_seeds_defaults_and_its_creators_key() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = promos(&server, &t.key).await;
    let before = Utc::now();
    let p = create(&mut c, promo(pb::BillingPromoType::Rewards, &t.vod)).await;
    let start = p.validity_start_time.unwrap();
    assert!(start.seconds >= before.timestamp() - 1, "validity starts now");
    assert_eq!(p.validity_end_time, None);
    assert_eq!((p.product_n, p.reward_product_m), (Some(1), Some(1)));
    assert_eq!(
        (p.reward_product.as_str(), p.reward_product_type),
        (t.vod.as_str(), pb::ProductKind::Service as i32)
    );
    let (key_id, _) = billing::domain::api_key::parse_key(&t.key).unwrap();
    assert_eq!(p.created_by, key_id.to_string());
    let got = c
        .get_billing_promo(pb::GetBillingPromoRequest { id: p.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .promo
        .unwrap();
    assert_eq!(got, p);
    let n3 = create(
        &mut c,
        pb::BillingPromo { product_n: Some(3), ..promo(pb::BillingPromoType::BuyNTakeM, &t.vod) },
    )
    .await;
    assert_eq!(n3.reward_product_m, Some(3), "M defaults to N");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contradictory_promos_are_invalid_with_every_field_named() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = promos(&server, &t.key).await;
    let bad = pb::BillingPromo {
        r#type: pb::BillingPromoType::BuyNTakeM.into(),
        product_type: pb::ProductKind::InventoryVariant.into(),
        product: t.vod.clone(),
        product_n: Some(0),
        reward_product: uuid::Uuid::now_v7().to_string(),
        reward_product_m: Some(0),
        validity_start_time: ts(day(2026, 6, 1)),
        validity_end_time: ts(day(2026, 5, 1)),
        ..Default::default()
    };
    let status = expect_code(
        c.create_billing_promo(pb::CreateBillingPromoRequest { promo: Some(bad), request_id: String::new() })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        [
            "promo.product",
            "promo.product_n",
            "promo.reward_product",
            "promo.reward_product_m",
            "promo.validity_end_time"
        ]
    );
    let missing = expect_code(
        c.create_billing_promo(pb::CreateBillingPromoRequest {
            promo: Some(pb::BillingPromo::default()),
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&missing), ["promo.type", "promo.product_type", "promo.product"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reward_type_is_checked_against_the_reward_product_given_or_defaulted() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = promos(&server, &t.key).await;
    let mismatched = pb::BillingPromo {
        reward_product_type: pb::ProductKind::InventoryVariant.into(),
        ..promo(pb::BillingPromoType::Rewards, &t.vod)
    };
    let status = expect_code(
        c.create_billing_promo(pb::CreateBillingPromoRequest {
            promo: Some(mismatched),
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        ["promo.reward_product_type"],
        "the defaulted reward product is a SERVICE"
    );

    let created = create(&mut c, promo(pb::BillingPromoType::Rewards, &t.vod)).await;
    let set_type = |kind: pb::ProductKind, etag: &str| pb::UpdateBillingPromoRequest {
        promo: Some(pb::BillingPromo {
            id: created.id.clone(),
            etag: etag.into(),
            reward_product_type: kind.into(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: vec!["reward_product_type".into()] }),
    };
    let updated = c.update_billing_promo(set_type(pb::ProductKind::Service, &created.etag)).await.unwrap();
    let updated = updated.into_inner().promo.unwrap();
    assert_eq!(updated.reward_product_type, pb::ProductKind::Service as i32, "the type alone can be set");
    let status = expect_code(
        c.update_billing_promo(set_type(pb::ProductKind::InventoryVariant, &updated.etag)).await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["promo.reward_product_type"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promos_list_update_and_delete() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = promos(&server, &t.key).await;
    let now = Utc::now();
    let rewards = create(&mut c, promo(pb::BillingPromoType::Rewards, &t.vod)).await;
    let mut old = promo(pb::BillingPromoType::BuyNTakeM, &t.fuel);
    old.validity_start_time = ts(now - Duration::days(10));
    old.validity_end_time = ts(now - Duration::days(5));
    let old = create(&mut c, old).await;
    let ids = |r: pb::ListBillingPromosResponse| r.promos.into_iter().map(|p| p.id).collect::<Vec<_>>();
    let active =
        pb::ListBillingPromosRequest { active_at: ts(now + Duration::seconds(5)), ..Default::default() };
    assert_eq!(ids(c.list_billing_promos(active).await.unwrap().into_inner()), [rewards.id.as_str()]);
    let by_type =
        pb::ListBillingPromosRequest { r#type: pb::BillingPromoType::BuyNTakeM.into(), ..Default::default() };
    assert_eq!(ids(c.list_billing_promos(by_type).await.unwrap().into_inner()), [old.id.as_str()]);
    let by_product = pb::ListBillingPromosRequest { product: t.vod.clone(), ..Default::default() };
    assert_eq!(ids(c.list_billing_promos(by_product).await.unwrap().into_inner()), [rewards.id.as_str()]);

    let update = pb::UpdateBillingPromoRequest {
        promo: Some(pb::BillingPromo {
            id: old.id.clone(),
            etag: old.etag.clone(),
            validity_end_time: None,
            product_n: Some(4),
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: vec!["validity_end_time".into(), "product_n".into()] }),
    };
    let updated = c.update_billing_promo(update.clone()).await.unwrap().into_inner().promo.unwrap();
    assert_eq!((updated.validity_end_time, updated.product_n), (None, Some(4)));
    assert_eq!(reason(&expect_code(c.update_billing_promo(update).await, Code::Aborted)), "ETAG_MISMATCH");
    let zero = pb::UpdateBillingPromoRequest {
        promo: Some(pb::BillingPromo { id: old.id.clone(), reward_product_m: Some(0), ..Default::default() }),
        update_mask: Some(FieldMask { paths: vec!["reward_product_m".into()] }),
    };
    assert_eq!(
        bad_fields(&expect_code(c.update_billing_promo(zero).await, Code::InvalidArgument)),
        ["promo.reward_product_m"]
    );

    c.delete_billing_promo(pb::DeleteBillingPromoRequest { id: old.id.clone(), etag: String::new() })
        .await
        .unwrap();
    expect_code(c.get_billing_promo(pb::GetBillingPromoRequest { id: old.id }).await, Code::NotFound);
    assert_eq!(
        ids(c.list_billing_promos(pb::ListBillingPromosRequest::default()).await.unwrap().into_inner()),
        [rewards.id]
    );
}

fn line(product: &str, quantity: i64) -> pb::BasketLine {
    pb::BasketLine { product_id: product.into(), quantity }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_basket_gets_free_units_rewards_and_reasons() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = promos(&server, &t.key).await;
    let now = Utc::now();
    // Buy 2 VOD, take 1 free; buying 1 fuel grants 2 VOD rewards.
    let b2t1 = create(
        &mut c,
        pb::BillingPromo {
            product_n: Some(2),
            reward_product_m: Some(1),
            ..promo(pb::BillingPromoType::BuyNTakeM, &t.vod)
        },
    )
    .await;
    let rewards = create(
        &mut c,
        pb::BillingPromo {
            reward_product: t.vod.clone(),
            reward_product_m: Some(2),
            ..promo(pb::BillingPromoType::Rewards, &t.fuel)
        },
    )
    .await;
    let mut future = promo(pb::BillingPromoType::BuyNTakeM, &t.vod);
    future.validity_start_time = ts(now + Duration::days(3));
    let future = create(&mut c, future).await;

    let req = |basket_id: &str| pb::EvaluateBasketRequest {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        lines: vec![line(&t.vod, 7), line(&t.fuel, 3)],
        at: None,
        basket_id: basket_id.into(),
    };
    let preview = c.evaluate_basket(req("")).await.unwrap().into_inner();
    assert!(preview.rewards.is_empty(), "nothing is granted without a basket id");
    let vod = preview.lines.iter().find(|l| l.product_id == t.vod).unwrap();
    assert_eq!((vod.free_units, vod.payable_units), (2, 5), "7 VOD: two groups of 3");
    let applied: Vec<_> = preview.applied.iter().map(|a| (a.promo_id.as_str(), a.units)).collect();
    assert_eq!(applied, [(b2t1.id.as_str(), 2), (rewards.id.as_str(), 6)]);
    assert_eq!(preview.skipped.len(), 1);
    assert_eq!(
        (preview.skipped[0].promo_id.as_str(), preview.skipped[0].reason),
        (future.id.as_str(), pb::SkipReason::NotYetValid as i32)
    );

    let granted = c.evaluate_basket(req("order-1")).await.unwrap().into_inner();
    assert_eq!(granted.rewards.len(), 1);
    assert_eq!((granted.rewards[0].units, granted.rewards[0].product_id.as_str()), (6, t.vod.as_str()));
    let again = c.evaluate_basket(req("order-1")).await.unwrap().into_inner();
    assert!(again.replayed);
    assert_eq!(again.rewards, granted.rewards);
    let mut other = req("order-1");
    other.lines[0].quantity = 8;
    expect_code(c.evaluate_basket(other).await, Code::AlreadyExists);
    let listed = c
        .list_rewards(pb::ListRewardsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.rewards.len(), 1, "granted once");

    let bad = pb::EvaluateBasketRequest {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        lines: vec![line(&t.vod, 0), line(&t.vod, 1), line(&uuid::Uuid::now_v7().to_string(), 1)],
        ..Default::default()
    };
    let status = expect_code(c.evaluate_basket(bad).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["lines[0].quantity", "lines[1].product_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewards_are_redeemed_once_per_request_and_never_beyond_what_was_granted() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = promos(&server, &t.key).await;
    create(
        &mut c,
        pb::BillingPromo { reward_product_m: Some(5), ..promo(pb::BillingPromoType::Rewards, &t.vod) },
    )
    .await;
    let granted = c
        .evaluate_basket(pb::EvaluateBasketRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            lines: vec![line(&t.vod, 1)],
            basket_id: "b-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rewards
        .remove(0);
    let redeem = |units: i64, request_id: &str| pb::RedeemRewardRequest {
        reward_id: granted.id.clone(),
        units,
        request_id: request_id.into(),
    };
    let after = c.redeem_reward(redeem(3, "r-1")).await.unwrap().into_inner().reward.unwrap();
    assert_eq!((after.redeemed_units, after.available_units), (3, 2));
    let replay = c.redeem_reward(redeem(3, "r-1")).await.unwrap().into_inner().reward.unwrap();
    assert_eq!(replay.available_units, 2, "the retry redeemed nothing more");
    expect_code(c.redeem_reward(redeem(1, "r-1")).await, Code::AlreadyExists);
    let status = expect_code(c.redeem_reward(redeem(3, "r-2")).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "INSUFFICIENT_REWARD_UNITS");
    let available = c
        .list_rewards(pb::ListRewardsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            available_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(available.rewards[0].available_units, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_promotions_draw_with_usage_in_priority_order_with_commits() {
    let server = TestServer::start_accepting_old_usage().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut cc = commits(&server, &t.key).await;
    let now = Utc::now();
    // The commit's segment ends tomorrow, before the promotion's current cycle: by the
    // end-date tie-break alone it would draw first; only its priority (5 after 1) puts
    // it behind the promotion.
    create_commit(&mut cc, prepaid(&t, "100", "5", now - Duration::days(60), now + Duration::days(1))).await;
    let mut c = promos(&server, &t.key).await;
    let promotion = c
        .create_credit_promotion(pb::CreateCreditPromotionRequest {
            promotion: Some(pb::CreditPromotion {
                name: "Welcome".into(),
                amount_per_cycle: Some("20".into()),
                total_amount: Some("30".into()),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .promotion
        .unwrap();
    let applied = c
        .apply_promotion(pb::ApplyPromotionRequest {
            applied: Some(pb::AppliedPromotion {
                customer: billing::proto::customer_id(t.customer_id.clone()),
                promotion_id: promotion.id.clone(),
                priority: "1".into(),
                applied_time_range: Some(pb::TimeRange {
                    start_time: ts(now - Duration::days(40)),
                    end_time: None,
                }),
                relation_id: "contract-line-7".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .applied
        .unwrap();
    assert_eq!(applied.amount_left_in_cycle.as_ref().unwrap().amount, "20");
    assert_eq!(applied.total_amount_left.as_ref().unwrap().amount, "30");

    let mut u = usage_client(&server, &t.key).await;
    let mut last_cycle = crate::support::fixtures::event(&t, "old", "CREED", "1", "15");
    last_cycle.timestamp = ts(now - Duration::days(35));
    let first = record(&mut u, last_cycle).await.unwrap();
    assert_eq!(
        first.drawdowns[0].applied_promotion_id, applied.id,
        "the promotion (priority 1) draws before the commit (5)"
    );
    assert_eq!(first.drawdowns[0].amount, "15");
    let second =
        record(&mut u, crate::support::fixtures::event(&t, "new", "CREED", "1", "40")).await.unwrap();
    let parts: Vec<_> =
        second.drawdowns.iter().map(|d| (d.applied_promotion_id.is_empty(), d.amount.as_str())).collect();
    assert_eq!(
        parts,
        [(false, "15"), (true, "25")],
        "the promotion first by priority, though the commit ends sooner; this cycle's 20 is capped by the 15 left of the total"
    );

    let listed = c
        .list_applied_promotions(pb::ListAppliedPromotionsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let a = &listed.applied[0];
    assert_eq!(
        (
            a.amount_left_in_cycle.as_ref().unwrap().amount.as_str(),
            a.total_amount_left.as_ref().unwrap().amount.as_str()
        ),
        ("0", "0")
    );
    assert_eq!(a.relation_id, "contract-line-7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_application_draws_no_more_and_keeps_its_history() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = promos(&server, &t.key).await;
    let promotion = c
        .create_credit_promotion(pb::CreateCreditPromotionRequest {
            promotion: Some(pb::CreditPromotion {
                name: "Total".into(),
                total_amount: Some("50".into()),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .promotion
        .unwrap();
    let applied = c
        .apply_promotion(pb::ApplyPromotionRequest {
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
        .unwrap()
        .into_inner()
        .applied
        .unwrap();
    let mut u = usage_client(&server, &t.key).await;
    assert_eq!(
        record(&mut u, crate::support::fixtures::event(&t, "a", "CREED", "1", "10"))
            .await
            .unwrap()
            .drawdowns
            .len(),
        1
    );
    let removed = c
        .remove_applied_promotion(pb::RemoveAppliedPromotionRequest {
            id: applied.id.clone(),
            removal_context: "churn".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .applied
        .unwrap();
    assert!(removed.removed_time.is_some());
    assert_eq!(removed.removal_context, "churn");
    let after = record(&mut u, crate::support::fixtures::event(&t, "b", "CREED", "1", "10")).await.unwrap();
    assert!(after.drawdowns.is_empty() && after.overage == "10");
    expect_code(
        c.remove_applied_promotion(pb::RemoveAppliedPromotionRequest {
            id: applied.id.clone(),
            removal_context: String::new(),
            request_id: String::new(),
        })
        .await,
        Code::FailedPrecondition,
    );
    let current = c
        .list_applied_promotions(pb::ListAppliedPromotionsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(current.into_inner().applied.is_empty());
    let history = c
        .list_applied_promotions(pb::ListAppliedPromotionsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            include_removed: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.applied[0].total_amount_left.as_ref().unwrap().amount, "40", "its use is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credit_promotions_and_applications_are_invalid() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = promos(&server, &t.key).await;
    let status = expect_code(
        c.create_credit_promotion(pb::CreateCreditPromotionRequest {
            promotion: Some(pb::CreditPromotion {
                name: String::new(),
                total_amount: Some("-1".into()),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["promotion.name", "promotion.total_amount"]);
    let status = expect_code(
        c.apply_promotion(pb::ApplyPromotionRequest {
            applied: Some(pb::AppliedPromotion {
                customer: billing::proto::customer_id(t.customer_id.clone()),
                promotion_id: uuid::Uuid::now_v7().to_string(),
                applied_time_range: Some(pb::TimeRange {
                    start_time: ts(day(2026, 2, 1)),
                    end_time: ts(day(2026, 1, 1)),
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        ["applied.promotion_id", "applied.priority", "applied.applied_time_range.end_time"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_orgs_promos_and_rewards_are_not_found() {
    let server = TestServer::start().await;
    let a = Tenant::create(&server, "A").await;
    let b = Tenant::create(&server, "B").await;
    let mut ca = promos(&server, &a.key).await;
    let mut cb = promos(&server, &b.key).await;
    let theirs = create(&mut ca, promo(pb::BillingPromoType::Rewards, &a.vod)).await;
    expect_code(
        cb.get_billing_promo(pb::GetBillingPromoRequest { id: theirs.id.clone() }).await,
        Code::NotFound,
    );
    assert!(
        cb.list_billing_promos(pb::ListBillingPromosRequest::default())
            .await
            .unwrap()
            .into_inner()
            .promos
            .is_empty()
    );
    expect_code(
        cb.delete_billing_promo(pb::DeleteBillingPromoRequest { id: theirs.id.clone(), etag: String::new() })
            .await,
        Code::NotFound,
    );
    let basket = pb::EvaluateBasketRequest {
        customer: billing::proto::customer_id(a.customer_id.clone()),
        lines: vec![line(&a.vod, 1)],
        ..Default::default()
    };
    expect_code(cb.evaluate_basket(basket).await, Code::NotFound);
    expect_code(
        cb.list_rewards(pb::ListRewardsRequest {
            customer: billing::proto::customer_id(a.customer_id.clone()),
            ..Default::default()
        })
        .await,
        Code::NotFound,
    );
    // B's promo on its own product never applies to A's basket.
    create(&mut cb, promo(pb::BillingPromoType::Rewards, &b.vod)).await;
    let own = ca
        .evaluate_basket(pb::EvaluateBasketRequest {
            customer: billing::proto::customer_id(a.customer_id.clone()),
            lines: vec![line(&a.vod, 1)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.applied.len(), 1);
    assert_eq!(own.applied[0].promo_id, theirs.id);
}

/// The customer's `promotions_applied` (migration 2026-12-04-002400), read from the row
/// the usage path locks.
fn promotions_applied(conn: &mut diesel::PgConnection, customer: &str) -> i32 {
    use billing::db::schema::customers;
    use diesel::prelude::*;
    customers::table
        .filter(customers::id.eq(customer.parse::<uuid::Uuid>().unwrap()))
        .select(customers::promotions_applied)
        .get_result(conn)
        .unwrap()
}

/// A usage transaction reads applied promotions only for customers whose locked row
/// counts some (one statement fewer for the others), so every application counts on the
/// customer's row, and the migration that added the count counted the applications made
/// before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_reads_applied_promotions_only_for_customers_whose_row_counts_some() {
    use diesel::connection::SimpleConnection as _;
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = promos(&server, &t.key).await;
    let promotion = crate::support::fixtures::credit_promotion(&server, &t, "Monthly", "50").await;
    let mut conn = server.db.connect();
    assert_eq!(promotions_applied(&mut conn, &t.customer_id), 0);
    let yesterday = Utc::now() - Duration::days(1);
    c.apply_promotion(crate::support::fixtures::application(&t, &promotion.id, "1", yesterday))
        .await
        .unwrap();
    assert_eq!(promotions_applied(&mut conn, &t.customer_id), 1, "the application is counted");

    // Without the count the usage path does not look: the promotion is not drawn.
    conn.batch_execute("UPDATE customers SET promotions_applied = 0").unwrap();
    let mut u = usage_client(&server, &t.key).await;
    let uncounted =
        record(&mut u, crate::support::fixtures::event(&t, "a", "CREED", "1", "10")).await.unwrap();
    assert!(uncounted.drawdowns.is_empty() && uncounted.overage == "10", "{uncounted:?}");

    // The migration counts applications made before it: undone and run again, the
    // count is back and the promotion is drawn.
    crate::support::db::rerun_migrations_from(&mut conn, "20261204002400");
    assert_eq!(promotions_applied(&mut conn, &t.customer_id), 1, "the migration counted it");
    let counted = record(&mut u, crate::support::fixtures::event(&t, "b", "CREED", "1", "10")).await.unwrap();
    assert_eq!(counted.drawdowns.len(), 1, "{counted:?}");
    assert_eq!(counted.overage, "0");
}
