//! The first wall between tenants, on its own: every repository query filters by org in
//! code. These run the use cases on a connection as the schema owner, which row-level
//! security does not restrain, so only the code's own filter keeps org B's rows from
//! org A (the second wall, row security, is proven on its own in `row_security.rs`).

use std::str::FromStr;

use billing::app::AppError;
use billing::domain::ids::{CommitId, CommitmentId, CustomerId, OrgId, ProductId, PromoId};
use billing::domain::page::PageRequest;
use billing::domain::seal::TokenSecret;
use chrono::Utc;

use crate::support::TestServer;
use crate::support::fixtures::Tenant;
use crate::support::populate::{Everything, one_of_everything};

/// A first page; its key only seals the next page's token, which these tests do not use.
fn page() -> PageRequest {
    PageRequest::first(100, TokenSecret::new([0; 32]).for_org(OrgId(uuid::Uuid::nil())))
}

fn id<T: FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

fn is_not_found<T: std::fmt::Debug>(r: Result<T, AppError>) -> bool {
    matches!(r, Err(AppError::NotFound { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_filters_by_org_in_code_even_with_row_security_off() {
    let server = TestServer::start().await;
    // Org B owns one of everything; org A owns nothing.
    let b = Tenant::create(&server, "B").await;
    let (a, _) = server.org("A").await;
    let Everything { commit, commitment, promo } = one_of_everything(&server, &b).await;
    let customer: CustomerId = id(&b.customer_id);
    let owner = &server.admin;
    let key = String::new;

    assert!(owner.list_customers(a, Default::default(), page(), key()).await.unwrap().items.is_empty());
    assert!(owner.list_products(a, Default::default(), page(), key()).await.unwrap().items.is_empty());
    assert!(owner.list_commits(a, Default::default(), page(), key()).await.unwrap().items.is_empty());
    assert!(owner.list_commitments(a, Default::default(), page(), key()).await.unwrap().items.is_empty());
    assert!(owner.list_billing_promos(a, Default::default(), page(), key()).await.unwrap().items.is_empty());
    assert!(owner.list_credit_promotions(a, page(), key()).await.unwrap().items.is_empty());
    assert!(owner.list_credit_types(a, page(), key()).await.unwrap().items.is_empty());
    assert!(
        owner
            .list_violations(
                a,
                Default::default(),
                billing::domain::violation::StartAt::Beginning,
                page(),
                key()
            )
            .await
            .unwrap()
            .items
            .is_empty()
    );

    assert!(is_not_found(owner.get_customer(a, customer).await));
    assert!(is_not_found(owner.get_product(a, id::<ProductId>(&b.vod)).await));
    assert!(is_not_found(owner.get_commit(a, id::<CommitId>(&commit.id)).await));
    assert!(is_not_found(owner.commit_balance(a, id::<CommitId>(&commit.id), Utc::now()).await));
    assert!(is_not_found(
        owner.get_commitment(a, id::<CommitmentId>(&commitment.id), Default::default()).await
    ));
    assert!(is_not_found(owner.get_billing_promo(a, id::<PromoId>(&promo.id)).await));
    assert!(is_not_found(owner.get_allowance_limits(a, customer).await));
    assert!(is_not_found(owner.list_applied_promotions(a, customer, true, page(), key()).await));
    let events = billing::db::usage_events::EventFilter { customer: Some(customer), ..Default::default() };
    assert!(is_not_found(owner.list_usage_events(a, events, page(), key()).await));

    // The same calls as B see B's rows: the filter is what kept them from A.
    let b_org: OrgId = server.org_of(&b.key).await;
    assert_eq!(owner.list_customers(b_org, Default::default(), page(), key()).await.unwrap().items.len(), 1);
    assert_eq!(owner.list_commits(b_org, Default::default(), page(), key()).await.unwrap().items.len(), 1);
    assert!(owner.get_billing_promo(b_org, id::<PromoId>(&promo.id)).await.is_ok());
}
