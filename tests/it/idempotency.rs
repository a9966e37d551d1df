//! A reused idempotency or uniqueness key answers ALREADY_EXISTS naming the resource
//! that holds it (`ResourceInfo.resource_name`), so a client whose first call timed out
//! can find what it created.

use billing::proto::v1 as pb;
use chrono::{Duration, Utc};
use tonic::{Code, Status};

use crate::support::fixtures::{
    Tenant, apply, commits, create_commit, event, prepaid, record, usage, usage_client,
};
use crate::support::{TestServer, expect_code};

/// The id the ALREADY_EXISTS answer names.
fn existing(status: Status) -> String {
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    use tonic_types::StatusExt;
    status.get_error_details().resource_info().expect("resource info").resource_name.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_key_names_the_resource_that_holds_it() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;

    let mut customers = server.customers(&t.key).await;
    let again = pb::CreateCustomerRequest {
        customer: Some(pb::Customer {
            external_id: "ACR1".into(),
            name: "Other".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let status = customers.create_customer(again).await.unwrap_err();
    assert_eq!(existing(status), t.customer_id, "external id");

    let mut products = server.products(&t.key).await;
    let again = pb::CreateProductRequest {
        product: Some(pb::Product {
            code: "CREED".into(),
            name: "Other".into(),
            kind: pb::ProductKind::Service.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    assert_eq!(existing(products.create_product(again).await.unwrap_err()), t.vod, "product code");

    let mut c = commits(&server, &t.key).await;
    let mut keyed = prepaid(&t, "100", "1", Utc::now() - Duration::days(1), Utc::now() + Duration::days(30));
    keyed.uniqueness_key = Some("contract-7".into());
    let commit = create_commit(&mut c, keyed.clone()).await;
    let status = c
        .create_commit(pb::CreateCommitRequest { commit: Some(keyed), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(existing(status), commit.id, "commit uniqueness key");

    let first = apply(&mut c, &t, "draw-1", usage(&t.vod, "5")).await.unwrap();
    let status = apply(&mut c, &t, "draw-1", usage(&t.vod, "6")).await.unwrap_err();
    assert_eq!(existing(status), first.drawdown_id, "drawdown idempotency key");

    let adjust = |amount: &str| pb::AdjustCommitBalanceRequest {
        commit_id: commit.id.clone(),
        segment_index: 0,
        amount: amount.into(),
        reason: "goodwill".into(),
        request_id: "adj-1".into(),
    };
    let entry = c.adjust_commit_balance(adjust("1")).await.unwrap().into_inner().entry.unwrap();
    assert_eq!(existing(c.adjust_commit_balance(adjust("2")).await.unwrap_err()), entry.id, "adjustment");

    let mut u = usage_client(&server, &t.key).await;
    record(&mut u, event(&t, "evt-1", "CREED", "1", "1")).await.unwrap();
    let status = record(&mut u, event(&t, "evt-1", "CREED", "1", "2")).await.unwrap_err();
    assert_eq!(existing(status), "evt-1", "usage event id");
    expect_code(record(&mut u, event(&t, "evt-1", "CREED", "1", "3")).await, Code::AlreadyExists);
}
