//! Authentication and organization isolation.

use std::sync::Arc;
use std::time::Duration;

use billing::app::KeyCacheConfig;
use billing::proto::v1 as pb;
use billing::proto::v1::customer_service_client::CustomerServiceClient;
use tonic::Code;

use crate::support::{Key, TestServer, expect_code, reason, wait_until};

fn new_customer(external_id: &str) -> pb::CreateCustomerRequest {
    pb::CreateCustomerRequest {
        customer: Some(pb::Customer {
            external_id: external_id.into(),
            name: "Acme Ltd".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

async fn list_with(
    server: &TestServer,
    key: Key,
) -> Result<tonic::Response<pb::ListCustomersResponse>, tonic::Status> {
    CustomerServiceClient::with_interceptor(server.channel().await, key)
        .list_customers(pb::ListCustomersRequest::default())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_without_key_is_unauthenticated() {
    let server = TestServer::start().await;
    let status = expect_code(list_with(&server, Key::none()).await, Code::Unauthenticated);
    assert_eq!(reason(&status), "UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_keys_are_unauthenticated() {
    let server = TestServer::start().await;
    let long = "x".repeat(10_000);
    for header in ["Bearer", "Bearer nonsense", "Basic dXNlcjpwYXNz", "bck_123", &format!("Bearer {long}")] {
        expect_code(list_with(&server, Key::raw(header)).await, Code::Unauthenticated);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_formed_unknown_key_is_unauthenticated() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    // Same id, different secret: the hash comparison must reject it.
    let forged = format!("{}{}", &key[..key.len() - 4], "AAAA");
    expect_code(list_with(&server, Key::bearer(&forged)).await, Code::Unauthenticated);
    let unknown_id =
        billing::domain::api_key::format_key(billing::domain::ids::ApiKeyId::generate(), &[9; 32]);
    expect_code(list_with(&server, Key::bearer(&unknown_id)).await, Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_is_unauthenticated_and_others_keep_working() {
    let server = TestServer::start().await;
    let (org, key) = server.org("Acme").await;
    let second = server.key_for(org).await;
    list_with(&server, Key::bearer(&key)).await.expect("live key works");
    let (id, _) = billing::domain::api_key::parse_key(&key).unwrap();
    server.admin.revoke_api_key(id).await.unwrap();
    // The serving instance learns of the revocation by its notice (it may have cached
    // the key), so the refusal is waited for; from then on it holds.
    wait_until("the revoked key is refused", || async {
        list_with(&server, Key::bearer(&key)).await.is_err_and(|s| s.code() == Code::Unauthenticated)
    })
    .await;
    expect_code(list_with(&server, Key::bearer(&key)).await, Code::Unauthenticated);
    list_with(&server, Key::bearer(&second)).await.expect("the org's other key still works");
}

/// Instance B caches keys for an hour, so only the revocation's notice can explain B
/// refusing a key that instance A revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_instance_is_refused_by_another_that_cached_it() {
    let a = TestServer::start().await;
    let hour = KeyCacheConfig { ttl: Duration::from_secs(3600), ..KeyCacheConfig::default() };
    let b = TestServer::start_with_key_cache(Arc::clone(&a.db), hour).await;
    let (_, key) = a.org("Acme").await;
    let (id, _) = billing::domain::api_key::parse_key(&key).unwrap();
    // Cached once B's listener is up (until then B asks the database every time).
    wait_until("B caches the key", || async {
        list_with(&b, Key::bearer(&key)).await.expect("live key works on B");
        b.app.key_cache().get(id).is_some()
    })
    .await;

    a.admin.revoke_api_key(id).await.unwrap();
    wait_until("B refuses the revoked key", || async {
        list_with(&b, Key::bearer(&key)).await.is_err_and(|s| s.code() == Code::Unauthenticated)
    })
    .await;
    assert!(b.app.key_cache().get(id).is_none_or(|r| r.revoked), "B no longer trusts it");
    expect_code(list_with(&a, Key::bearer(&key)).await, Code::Unauthenticated);
}

/// A cached key is served without asking the database: removed behind the service's
/// back (no notice), it keeps working on the instance that cached it until its time to
/// live runs out, which a new instance's lookup shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_key_is_resolved_without_a_database_lookup() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let (id, _) = billing::domain::api_key::parse_key(&key).unwrap();
    wait_until("the key is cached", || async {
        list_with(&server, Key::bearer(&key)).await.expect("live key works");
        server.app.key_cache().get(id).is_some()
    })
    .await;
    {
        use diesel::prelude::*;
        let mut owner = server.db.connect();
        diesel::sql_query("DELETE FROM api_keys WHERE id = $1")
            .bind::<diesel::sql_types::Uuid, _>(id.0)
            .execute(&mut owner)
            .unwrap();
    }
    list_with(&server, Key::bearer(&key)).await.expect("served from the cache");
    let fresh = TestServer::start_on(Arc::clone(&server.db)).await;
    expect_code(list_with(&fresh, Key::bearer(&key)).await, Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_orgs_customer_is_not_found_for_every_verb() {
    let server = TestServer::start().await;
    let (_, key_a) = server.org("A").await;
    let (_, key_b) = server.org("B").await;
    let mut a = server.customers(&key_a).await;
    let mut b = server.customers(&key_b).await;
    let created = a.create_customer(new_customer("ACR1")).await.unwrap().into_inner().customer.unwrap();

    expect_code(b.get_customer(pb::GetCustomerRequest { id: created.id.clone() }).await, Code::NotFound);
    let listed = b.list_customers(pb::ListCustomersRequest::default()).await.unwrap().into_inner();
    assert!(listed.customers.is_empty(), "org B must not list org A's customers");
    let update = pb::UpdateCustomerRequest {
        customer: Some(pb::Customer { name: "Hijacked".into(), ..created.clone() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["name".into()] }),
    };
    expect_code(b.update_customer(update).await, Code::NotFound);
    expect_code(
        b.delete_customer(pb::DeleteCustomerRequest { id: created.id.clone(), etag: String::new() }).await,
        Code::NotFound,
    );

    let still = a.get_customer(pb::GetCustomerRequest { id: created.id }).await.unwrap().into_inner();
    assert_eq!(still.customer.unwrap().name, "Acme Ltd", "org A's customer is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_external_id_may_exist_in_two_orgs() {
    let server = TestServer::start().await;
    let (_, key_a) = server.org("A").await;
    let (_, key_b) = server.org("B").await;
    server.customers(&key_a).await.create_customer(new_customer("ACR1")).await.unwrap();
    server
        .customers(&key_b)
        .await
        .create_customer(new_customer("ACR1"))
        .await
        .expect("external ids are per org");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_appear_in_the_logs_even_at_trace_level() {
    use crate::support::process::{ServeProcess, admin, grpcurl};
    let db = crate::support::TestDb::create();
    let org = admin(&db.url, &["admin", "create-org", "Acme"]);
    let key = admin(&db.url, &["admin", "create-api-key", "--org", org.trim()]).trim().to_owned();
    let forged = format!("{}{}", &key[..key.len() - 4], "AAAA");
    let mut serve = ServeProcess::start_logging(&db.url, &[], "trace");
    for k in [&key, &forged, &"not-a-key".to_owned()] {
        let header = format!("authorization: Bearer {k}");
        grpcurl(
            &serve.address,
            &["-H", &header, "-d", "{}", "billing.commitments.v1.CustomerService/ListCustomers"],
        );
    }
    serve.terminate(Duration::from_secs(10));
    let logs = serve.logs.lock().unwrap().join("\n");
    assert!(logs.contains("ListCustomers"), "the calls were logged");
    let (_, secret) = billing::domain::api_key::parse_key(&key).unwrap();
    for leaked in [secret, &forged[forged.len() - 20..], "not-a-key"] {
        assert!(!logs.contains(leaked), "a key's secret was logged: {leaked}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filtered_by_another_orgs_customer_are_not_found() {
    let server = TestServer::start().await;
    let owner = crate::support::fixtures::Tenant::create(&server, "A").await;
    let intruder = crate::support::fixtures::Tenant::create(&server, "B").await;
    let foreign = owner.customer_id.clone();

    let mut commits = crate::support::fixtures::commits(&server, &intruder.key).await;
    let status = expect_code(
        commits
            .list_commits(pb::ListCommitsRequest {
                customer: billing::proto::customer_id(foreign.clone()),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(reason(&status), "NOT_FOUND");
    let mut commitments = crate::support::fixtures::commitments_client(&server, &intruder.key).await;
    expect_code(
        commitments
            .list_commitments(pb::ListCommitmentsRequest {
                customer: billing::proto::customer_id(foreign.clone()),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
    // The owner filters by the same id and gets an (empty) page.
    let mut own = crate::support::fixtures::commits(&server, &owner.key).await;
    own.list_commits(pb::ListCommitsRequest {
        customer: billing::proto::customer_id(foreign),
        ..Default::default()
    })
    .await
    .expect("the owner lists its customer's commits");
}
