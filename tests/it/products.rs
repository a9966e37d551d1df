//! ProductService: CRUD, validation, uniqueness, filters and isolation.

use billing::proto::v1 as pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::support::{TestServer, bad_fields, expect_code};

fn product(code: &str, kind: pb::ProductKind, tags: &[&str], service_type: &str) -> pb::CreateProductRequest {
    pb::CreateProductRequest {
        product: Some(pb::Product {
            code: code.into(),
            name: format!("{code} product"),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            service_type: service_type.into(),
            kind: kind.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_round_trips_every_field() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut p = server.products(&key).await;
    let mut req = product("CREED", pb::ProductKind::Service, &["vod", "premium"], "Usage Services");
    req.product.as_mut().unwrap().service_family = "Channels".into();
    let created = p.create_product(req).await.unwrap().into_inner().product.unwrap();
    assert_eq!(created.tags, ["vod", "premium"]);
    assert_eq!(created.service_family, "Channels");
    let got = p.get_product(pb::GetProductRequest { id: created.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got.product.unwrap(), created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_product_names_every_bad_field() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut p = server.products(&key).await;
    let mut req = product("", pb::ProductKind::Unspecified, &["ok", "", "ok"], " padded");
    req.product.as_mut().unwrap().name = String::new();
    let status = expect_code(p.create_product(req).await, Code::InvalidArgument);
    assert_eq!(
        bad_fields(&status),
        [
            "product.code",
            "product.name",
            "product.tags[1]",
            "product.tags[2]",
            "product.service_type",
            "product.kind"
        ]
    );
    let mut unknown_kind = product("X", pb::ProductKind::Service, &[], "");
    unknown_kind.product.as_mut().unwrap().kind = 99;
    let status = expect_code(p.create_product(unknown_kind).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["product.kind"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_code_is_already_exists() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut p = server.products(&key).await;
    p.create_product(product("CREED", pb::ProductKind::Service, &[], "")).await.unwrap();
    expect_code(
        p.create_product(product("CREED", pb::ProductKind::InventoryVariant, &[], "")).await,
        Code::AlreadyExists,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_by_kind_tag_type_and_code() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut p = server.products(&key).await;
    p.create_product(product("A", pb::ProductKind::Service, &["vod"], "Usage Services")).await.unwrap();
    p.create_product(product("B", pb::ProductKind::Service, &["fuel", "vod"], "Fuel")).await.unwrap();
    p.create_product(product("C", pb::ProductKind::InventoryVariant, &["fuel"], "")).await.unwrap();
    let codes = |r: pb::ListProductsResponse| r.products.into_iter().map(|p| p.code).collect::<Vec<_>>();

    let by_tag =
        p.list_products(pb::ListProductsRequest { tag: "vod".into(), ..Default::default() }).await.unwrap();
    assert_eq!(codes(by_tag.into_inner()), ["A", "B"]);
    let by_kind =
        pb::ListProductsRequest { kind: pb::ProductKind::InventoryVariant.into(), ..Default::default() };
    assert_eq!(codes(p.list_products(by_kind).await.unwrap().into_inner()), ["C"]);
    let by_type = pb::ListProductsRequest { service_type: "Fuel".into(), ..Default::default() };
    assert_eq!(codes(p.list_products(by_type).await.unwrap().into_inner()), ["B"]);
    let by_code = pb::ListProductsRequest { code: "A".into(), ..Default::default() };
    assert_eq!(codes(p.list_products(by_code).await.unwrap().into_inner()), ["A"]);
    let bad_kind = pb::ListProductsRequest { kind: 42, ..Default::default() };
    assert_eq!(bad_fields(&expect_code(p.list_products(bad_kind).await, Code::InvalidArgument)), ["kind"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_can_clear_the_service_type_and_retag() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut p = server.products(&key).await;
    let created = p
        .create_product(product("A", pb::ProductKind::Service, &["vod"], "Usage"))
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    let req = pb::UpdateProductRequest {
        product: Some(pb::Product {
            id: created.id.clone(),
            etag: created.etag.clone(),
            tags: vec!["fuel".into()],
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: vec!["tags".into(), "service_type".into()] }),
    };
    let updated = p.update_product(req).await.unwrap().into_inner().product.unwrap();
    assert_eq!(updated.tags, ["fuel"]);
    assert_eq!(updated.service_type, "");
    assert_eq!(updated.code, "A");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_orgs_product_is_not_found() {
    let server = TestServer::start().await;
    let (_, key_a) = server.org("A").await;
    let (_, key_b) = server.org("B").await;
    let created = server
        .products(&key_a)
        .await
        .create_product(product("A", pb::ProductKind::Service, &[], ""))
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    let mut b = server.products(&key_b).await;
    expect_code(b.get_product(pb::GetProductRequest { id: created.id.clone() }).await, Code::NotFound);
    assert!(
        b.list_products(pb::ListProductsRequest::default()).await.unwrap().into_inner().products.is_empty()
    );
    let upd = pb::UpdateProductRequest {
        product: Some(pb::Product { name: "x".into(), ..created.clone() }),
        update_mask: Some(FieldMask { paths: vec!["name".into()] }),
    };
    expect_code(b.update_product(upd).await, Code::NotFound);
    expect_code(
        b.delete_product(pb::DeleteProductRequest { id: created.id.clone(), etag: String::new() }).await,
        Code::NotFound,
    );
    let owners_view =
        server.products(&key_a).await.get_product(pb::GetProductRequest { id: created.id.clone() }).await;
    assert_eq!(
        owners_view.unwrap().into_inner().product.unwrap(),
        created,
        "the owner's product is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_etag_refuses_update_and_delete_and_changes_nothing() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut c = server.products(&key).await;
    let created = c
        .create_product(product("CREED", pb::ProductKind::Service, &["vod"], "Usage Services"))
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    let rename = |name: &str, etag: &str| pb::UpdateProductRequest {
        product: Some(pb::Product { name: name.into(), etag: etag.into(), ..created.clone() }),
        update_mask: Some(FieldMask { paths: vec!["name".into()] }),
    };
    let renamed =
        c.update_product(rename("First", &created.etag)).await.unwrap().into_inner().product.unwrap();
    let stale = created.etag.clone();
    assert_ne!(renamed.etag, stale);
    let status = expect_code(c.update_product(rename("Second", &stale)).await, Code::Aborted);
    assert_eq!(crate::support::reason(&status), "ETAG_MISMATCH");
    let delete = pb::DeleteProductRequest { id: created.id.clone(), etag: stale };
    expect_code(c.delete_product(delete).await, Code::Aborted);
    let now =
        c.get_product(pb::GetProductRequest { id: created.id.clone() }).await.unwrap().into_inner().product;
    assert_eq!(now.unwrap().name, "First", "neither the stale update nor the stale delete changed anything");
}

/// The catalog cache of an instance that keeps products for an hour, and a usage client
/// on it that has recorded CREED once the cache holds it (until the instance's listener
/// is up, nothing is cached and every event reads the product).
async fn caching_creed(
    a: &TestServer,
    t: &crate::support::fixtures::Tenant,
) -> (TestServer, billing::proto::v1::usage_service_client::UsageServiceClient<crate::support::server::Authed>)
{
    use crate::support::fixtures::{event, record, usage_client};
    use billing::domain::usage::ProductRef;

    let hour = billing::app::CacheConfig { ttl: std::time::Duration::from_secs(3600), capacity: 100 };
    let b =
        TestServer::start_with_app(std::sync::Arc::clone(&a.db), |app| app.with_product_cache(hour)).await;
    let org = b.org_of(&t.key).await;
    let on_b = usage_client(&b, &t.key).await;
    let mut n = 0;
    crate::support::wait_until("B caches CREED", || {
        n += 1;
        let (mut on_b, e) = (on_b.clone(), event(t, &format!("warm-{n}"), "CREED", "1", "1"));
        let b = &b;
        async move {
            record(&mut on_b, e).await.expect("CREED is a product");
            b.app.product_cache().get(org, &ProductRef::Code("CREED".into())).is_some()
        }
    })
    .await;
    (b, on_b)
}

/// Instance B keeps products for an hour, so only the update's notice can explain B
/// using the product renamed through instance A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_renamed_on_one_instance_is_used_renamed_by_another_that_cached_it() {
    use crate::support::fixtures::{Tenant, event, record};

    let a = TestServer::start().await;
    let t = Tenant::create(&a, "Acme").await;
    let (_b, mut on_b) = caching_creed(&a, &t).await;

    let mut products = a.products(&t.key).await;
    let current = products
        .get_product(pb::GetProductRequest { id: t.vod.clone() })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    let rename = pb::UpdateProductRequest {
        product: Some(pb::Product {
            id: t.vod.clone(),
            etag: current.etag,
            code: "RENAMED".into(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: vec!["code".into()] }),
    };
    products.update_product(rename).await.expect("rename on A");

    crate::support::wait_until("B no longer knows CREED", || {
        let (mut on_b, e) = (on_b.clone(), event(&t, "after-rename", "CREED", "1", "1"));
        async move { record(&mut on_b, e).await.is_err_and(|s| s.code() == Code::InvalidArgument) }
    })
    .await;
    let renamed = record(&mut on_b, event(&t, "renamed", "RENAMED", "1", "1")).await.expect("RENAMED on B");
    assert!(!renamed.replayed);
}

/// A cached product is used without reading it: renamed behind every instance's back
/// (the change's trigger disabled, so no notice), B still takes the old code, which an
/// instance that reads the database refuses; a change made in SQL with the trigger in
/// place reaches B like one made through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_product_is_used_without_a_read_and_any_writer_announces_its_changes() {
    use diesel::connection::SimpleConnection;

    use crate::support::fixtures::{Tenant, event, record, usage_client};

    let a = TestServer::start_with_app(std::sync::Arc::new(crate::support::db::TestDb::create()), |app| {
        app.with_product_cache(billing::app::CacheConfig { ttl: std::time::Duration::ZERO, capacity: 1 })
    })
    .await;
    let t = Tenant::create(&a, "Acme").await;
    let (_b, mut on_b) = caching_creed(&a, &t).await;
    let mut owner = a.db.connect();
    owner
        .batch_execute(
            "BEGIN; ALTER TABLE products DISABLE TRIGGER products_changed;
             UPDATE products SET code = 'QUIET' WHERE code = 'CREED';
             ALTER TABLE products ENABLE TRIGGER products_changed; COMMIT;",
        )
        .unwrap();
    let mut on_a = usage_client(&a, &t.key).await;
    let refused = record(&mut on_a, event(&t, "on-a", "CREED", "1", "1")).await;
    assert_eq!(
        refused.map_err(|s| s.code()).err(),
        Some(Code::InvalidArgument),
        "A (no cache) reads the rename"
    );
    record(&mut on_b, event(&t, "on-b", "CREED", "1", "1")).await.expect("B uses its cached CREED");

    owner.batch_execute("UPDATE products SET name = 'Renamed in SQL' WHERE code = 'QUIET'").unwrap();
    crate::support::wait_until("B forgets CREED", || {
        let (mut on_b, e) = (on_b.clone(), event(&t, "after-sql", "CREED", "1", "1"));
        async move { record(&mut on_b, e).await.is_err_and(|s| s.code() == Code::InvalidArgument) }
    })
    .await;
}
