//! Every resource says which API key created it and which last changed it, in the
//! answer to the write and in every later read.

use billing::domain::api_key::parse_key;
use billing::proto::customer_id;
use billing::proto::v1 as pb;
use chrono::{Duration, Utc};

use crate::commitments::{create, monthly_spend, op, string};
use crate::support::TestServer;
use crate::support::fixtures::{
    Tenant, allowances, commitments_client, commits, create_commit, credit_promotion, prepaid, promos, ts,
};

fn id_of(key: &str) -> String {
    parse_key(key).unwrap().0.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_resource_names_the_key_that_created_it_and_the_one_that_last_changed_it() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let org = server.org_of(&t.key).await;
    let second = server.key_for(org).await;
    let (a, b) = (id_of(&t.key), id_of(&second));

    // Customers: created with A (by the fixture), changed with B.
    let mut customers_b = server.customers(&second).await;
    let changed = customers_b
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                id: t.customer_id.clone(),
                name: "Renamed".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!((changed.created_by.as_str(), changed.updated_by.as_str()), (a.as_str(), b.as_str()));
    let read = t.customer(&server).await;
    assert_eq!(read, changed, "what is stored is what the update answered");

    // Products: created with A.
    let product = server
        .products(&t.key)
        .await
        .get_product(pb::GetProductRequest { id: t.vod.clone() })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert_eq!((product.created_by.as_str(), product.updated_by.as_str()), (a.as_str(), a.as_str()));

    // Commits: created with A, voided with B.
    let now = Utc::now();
    let commit = create_commit(
        &mut commits(&server, &t.key).await,
        prepaid(&t, "10", "1", now, now + Duration::days(9)),
    )
    .await;
    assert_eq!((commit.created_by.as_str(), commit.updated_by.as_str()), (a.as_str(), a.as_str()));
    let voided = commits(&server, &second)
        .await
        .void_commit(pb::VoidCommitRequest { id: commit.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .commit
        .unwrap();
    assert_eq!((voided.created_by.as_str(), voided.updated_by.as_str()), (a.as_str(), b.as_str()));
    let read = commits(&server, &t.key)
        .await
        .get_commit(pb::GetCommitRequest { id: commit.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .commit
        .unwrap();
    assert_eq!((read.created_by, read.updated_by), (a.clone(), b.clone()));

    // Commitments: created with A, patched with B.
    let created = create(
        &mut commitments_client(&server, &t.key).await,
        monthly_spend(&t, "1", now, now + Duration::days(90)),
    )
    .await;
    let patched = commitments_client(&server, &second)
        .await
        .patch_commitment(pb::PatchCommitmentRequest {
            id: created.id.clone(),
            operations: vec![op("replace", "/ending_config/plan_id", Some(string("gold")))],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .commitment
        .unwrap();
    assert_eq!((patched.created_by.as_str(), patched.updated_by.as_str()), (a.as_str(), b.as_str()));
    let read = commitments_client(&server, &t.key)
        .await
        .get_commitment(pb::GetCommitmentRequest { id: created.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .commitment
        .unwrap();
    assert_eq!((read.created_by, read.updated_by), (a.clone(), b.clone()));

    // Allowance limits: set with B, changed with A.
    let set = allowances(&server, &second)
        .await
        .replace_allowance_limits(pb::ReplaceAllowanceLimitsRequest {
            limits: Some(pb::AllowanceLimits {
                customer: customer_id(t.customer_id.clone()),
                accumulated_maximum_rated_amount_per_day: Some("10".into()),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .limits
        .unwrap();
    assert_eq!((set.created_by.as_str(), set.updated_by.as_str()), (b.as_str(), b.as_str()));
    let changed = allowances(&server, &t.key)
        .await
        .update_allowance_limits(pb::UpdateAllowanceLimitsRequest {
            customer: customer_id(t.customer_id.clone()),
            accumulated_maximum_rated_amount_per_day: Some("20".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .limits
        .unwrap();
    assert_eq!((changed.created_by.as_str(), changed.updated_by.as_str()), (b.as_str(), a.as_str()));
    let read = allowances(&server, &second)
        .await
        .get_allowance_limits(pb::GetAllowanceLimitsRequest { customer: customer_id(t.customer_id.clone()) })
        .await
        .unwrap()
        .into_inner()
        .limits
        .unwrap();
    assert_eq!((read.created_by, read.updated_by), (b.clone(), a.clone()));

    // Billing promos: created with A, changed with B.
    let mut promos_a = promos(&server, &t.key).await;
    let made =
        crate::promos::create(&mut promos_a, crate::promos::promo(pb::BillingPromoType::BuyNTakeM, &t.vod))
            .await;
    let changed = promos(&server, &second)
        .await
        .update_billing_promo(pb::UpdateBillingPromoRequest {
            promo: Some(pb::BillingPromo { id: made.id.clone(), product_n: Some(3), ..Default::default() }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .promo
        .unwrap();
    assert_eq!((changed.created_by.as_str(), changed.updated_by.as_str()), (a.as_str(), b.as_str()));

    // Credit promotions: created with A; applied with B, removed with A.
    let promotion = credit_promotion(&server, &t, "welcome", "10").await;
    assert_eq!((promotion.created_by.as_str(), promotion.updated_by.as_str()), (a.as_str(), a.as_str()));
    let applied = promos(&server, &second)
        .await
        .apply_promotion(pb::ApplyPromotionRequest {
            applied: Some(pb::AppliedPromotion {
                customer: customer_id(t.customer_id.clone()),
                promotion_id: promotion.id.clone(),
                priority: "1".into(),
                applied_time_range: Some(pb::TimeRange { start_time: ts(now), end_time: None }),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .applied
        .unwrap();
    assert_eq!((applied.created_by.as_str(), applied.updated_by.as_str()), (b.as_str(), b.as_str()));
    let removed = promos_a
        .remove_applied_promotion(pb::RemoveAppliedPromotionRequest {
            id: applied.id.clone(),
            removal_context: String::new(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .applied
        .unwrap();
    assert_eq!((removed.created_by.as_str(), removed.updated_by.as_str()), (b.as_str(), a.as_str()));
    let listed = promos_a
        .list_applied_promotions(pb::ListAppliedPromotionsRequest {
            customer: customer_id(t.customer_id.clone()),
            include_removed: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .applied;
    assert_eq!((listed[0].created_by.as_str(), listed[0].updated_by.as_str()), (b.as_str(), a.as_str()));
}
