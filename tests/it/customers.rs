//! CustomerService: CRUD, validation, uniqueness, etags, pagination and filters.

use billing::proto::v1 as pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::support::{TestServer, bad_fields, expect_code, reason};

fn customer(external_id: &str, name: &str, tz: &str) -> pb::CreateCustomerRequest {
    pb::CreateCustomerRequest {
        customer: Some(pb::Customer {
            external_id: external_id.into(),
            name: name.into(),
            time_zone: tz.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_customer_reads_back_with_defaults() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut c = server.customers(&key).await;
    let created = c.create_customer(customer("ACR0000001392", "Κατερίνα", "")).await.unwrap().into_inner();
    let created = created.customer.unwrap();
    assert_eq!(created.time_zone, "UTC", "time zone defaults to UTC");
    assert!(uuid::Uuid::parse_str(&created.id).unwrap().get_version_num() == 7, "ids are UUID v7");
    assert!(!created.etag.is_empty());
    let got = c.get_customer(pb::GetCustomerRequest { id: created.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got.customer.unwrap(), created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_field_is_reported_at_once() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut c = server.customers(&key).await;
    let status =
        expect_code(c.create_customer(customer("", "", "Mars/Olympus")).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["customer.external_id", "customer.name", "customer.time_zone"]);
    let status = expect_code(
        c.create_customer(pb::CreateCustomerRequest { customer: None, request_id: String::new() }).await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["customer"]);
    let long = "x".repeat(10_000);
    let status = expect_code(c.create_customer(customer(&long, &long, "UTC")).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["customer.external_id", "customer.name"]);
    let listed = c.list_customers(pb::ListCustomersRequest::default()).await.unwrap().into_inner();
    assert!(listed.customers.is_empty(), "rejected requests create nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_external_id_is_already_exists() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut c = server.customers(&key).await;
    c.create_customer(customer("ACR1", "First", "UTC")).await.unwrap();
    let status = expect_code(c.create_customer(customer("ACR1", "Second", "UTC")).await, Code::AlreadyExists);
    assert_eq!(reason(&status), "ALREADY_EXISTS");
    let listed = c.list_customers(pb::ListCustomersRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.customers.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_that_are_not_uuids_are_invalid() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut c = server.customers(&key).await;
    let status =
        expect_code(c.get_customer(pb::GetCustomerRequest { id: "42".into() }).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["id"]);
    let missing = uuid::Uuid::now_v7().to_string();
    expect_code(c.get_customer(pb::GetCustomerRequest { id: missing }).await, Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_changes_only_masked_fields_and_checks_the_etag() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut c = server.customers(&key).await;
    let created =
        c.create_customer(customer("ACR1", "Old", "UTC")).await.unwrap().into_inner().customer.unwrap();

    let update = |name: &str, tz: &str, etag: &str, paths: &[&str]| pb::UpdateCustomerRequest {
        customer: Some(pb::Customer {
            id: created.id.clone(),
            external_id: String::new(),
            name: name.into(),
            time_zone: tz.into(),
            etag: etag.into(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() }),
    };

    let updated = c
        .update_customer(update("New", "Europe/Athens", &created.etag, &["name", "time_zone"]))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!((updated.name.as_str(), updated.time_zone.as_str()), ("New", "Europe/Athens"));
    assert_eq!(updated.external_id, "ACR1", "unmasked external_id is kept");
    assert_ne!(updated.etag, created.etag, "etag changes with every update");

    let status =
        expect_code(c.update_customer(update("Stale", "", &created.etag, &["name"])).await, Code::Aborted);
    assert_eq!(reason(&status), "ETAG_MISMATCH");
    let status = expect_code(c.update_customer(update("X", "", "", &["id"])).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["update_mask.paths[0]"]);
    let status = expect_code(
        c.update_customer(update("", "Nowhere/Else", "", &["name", "time_zone"])).await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["customer.name", "customer.time_zone"]);

    let now = c.get_customer(pb::GetCustomerRequest { id: created.id.clone() }).await.unwrap().into_inner();
    assert_eq!(now.customer.unwrap(), updated, "failed updates changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_to_a_taken_external_id_is_already_exists() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut c = server.customers(&key).await;
    c.create_customer(customer("ACR1", "One", "UTC")).await.unwrap();
    let two = c.create_customer(customer("ACR2", "Two", "UTC")).await.unwrap().into_inner().customer.unwrap();
    let req = pb::UpdateCustomerRequest {
        customer: Some(pb::Customer { external_id: "ACR1".into(), ..two }),
        update_mask: Some(FieldMask { paths: vec!["external_id".into()] }),
    };
    expect_code(c.update_customer(req).await, Code::AlreadyExists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_checks_the_etag_then_removes() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut c = server.customers(&key).await;
    let created =
        c.create_customer(customer("ACR1", "One", "UTC")).await.unwrap().into_inner().customer.unwrap();
    let stale = "W/\"999\"".to_string();
    expect_code(
        c.delete_customer(pb::DeleteCustomerRequest { id: created.id.clone(), etag: stale }).await,
        Code::Aborted,
    );
    c.delete_customer(pb::DeleteCustomerRequest { id: created.id.clone(), etag: created.etag })
        .await
        .unwrap();
    expect_code(c.get_customer(pb::GetCustomerRequest { id: created.id.clone() }).await, Code::NotFound);
    expect_code(
        c.delete_customer(pb::DeleteCustomerRequest { id: created.id, etag: String::new() }).await,
        Code::NotFound,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_cover_every_customer_once_in_creation_order() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut c = server.customers(&key).await;
    let mut created = Vec::new();
    for i in 0..7 {
        let tz = if i % 2 == 0 { "UTC" } else { "Europe/Athens" };
        let r = c.create_customer(customer(&format!("ACR{i}"), "C", tz)).await.unwrap();
        created.push(r.into_inner().customer.unwrap().id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = c
            .list_customers(pb::ListCustomersRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        seen.extend(page.customers.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every customer once, oldest first");

    let athens = c
        .list_customers(pb::ListCustomersRequest { time_zone: "Europe/Athens".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(athens.customers.len(), 3);
    let one = c
        .list_customers(pb::ListCustomersRequest { external_id: "ACR4".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.customers.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_token_is_bound_to_its_filters() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut c = server.customers(&key).await;
    for i in 0..3 {
        c.create_customer(customer(&format!("ACR{i}"), "C", "UTC")).await.unwrap();
    }
    let first = c
        .list_customers(pb::ListCustomersRequest { page_size: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let other_filter = pb::ListCustomersRequest {
        page_size: 1,
        page_token: first.next_page_token,
        time_zone: "UTC".into(),
        ..Default::default()
    };
    let status = expect_code(c.list_customers(other_filter).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["page_token"]);
    let garbage =
        pb::ListCustomersRequest { page_token: "garbage".into(), page_size: -1, ..Default::default() };
    let status = expect_code(c.list_customers(garbage).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["page_size", "page_token"]);
}

/// AIP-134: an update with an empty mask changes the fields the request sets and keeps
/// the others (before, it meant every field, so a partial update cleared or failed on
/// what it left out); `*` alone means every mutable field; a request with nothing set
/// and no mask is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_mask_updates_the_fields_that_are_set_and_a_star_means_all() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut c = server.customers(&key).await;
    let created = c
        .create_customer(customer("ACR1", "Old", "Europe/Athens"))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    let request = |customer: pb::Customer, paths: &[&str]| pb::UpdateCustomerRequest {
        customer: Some(pb::Customer { id: created.id.clone(), ..customer }),
        update_mask: Some(FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() }),
    };

    let renamed = pb::Customer { name: "New".into(), ..Default::default() };
    let updated = c.update_customer(request(renamed, &[])).await.expect("a partial update").into_inner();
    let updated = updated.customer.unwrap();
    assert_eq!((updated.name.as_str(), updated.external_id.as_str()), ("New", "ACR1"));
    assert_eq!(updated.time_zone, "Europe/Athens", "left out, so kept");

    let status =
        expect_code(c.update_customer(request(pb::Customer::default(), &[])).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["update_mask"]);

    // Every mutable field: the ones left empty are judged as empty (an external id and
    // a name are required).
    let status =
        expect_code(c.update_customer(request(pb::Customer::default(), &["*"])).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["customer.external_id", "customer.name"]);
    let whole = pb::Customer { external_id: "ACR9".into(), name: "Whole".into(), ..Default::default() };
    let updated = c.update_customer(request(whole, &["*"])).await.expect("every field").into_inner();
    assert_eq!(updated.customer.unwrap().time_zone, "UTC", "an empty time zone is the default");
}
