//! Scoped API keys: which scope each RPC needs, keys that expire, and the key API
//! (create, get, list, revoke) used by a second instance.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use billing::app::KeyCacheConfig;
use billing::domain::scope::{Scope, Scopes};
use billing::proto::v1 as pb;
use billing::proto::v1::api_key_service_client::ApiKeyServiceClient;
use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::support::fixtures::{ts, violations};
use crate::support::server::Authed;
use crate::support::{Key, TestServer, bad_fields, expect_code, reason, wait_until};

const PACKAGE: &str = "billing.commitments.v1";

/// Which scope each method needs, written out here independently of the server's table.
const METHODS: &[(Scope, &str, &[&str])] = &[
    (Scope::Admin, "ApiKeyService", &["CreateApiKey", "GetApiKey", "ListApiKeys", "RevokeApiKey"]),
    (Scope::Feed, "ViolationService", &["WatchViolations", "ListViolations"]),
    (Scope::Usage, "UsageService", &["RecordUsage", "RecordUsageBatch", "CheckUsage", "VoidUsageEvent"]),
    (Scope::Usage, "CommitService", &["PreviewDrawdown", "ApplyDrawdown"]),
    (Scope::Usage, "PromoService", &["EvaluateBasket", "RedeemReward"]),
    (
        Scope::Usage,
        "ReservationService",
        &["ReserveUsage", "ExtendReservation", "CommitReservation", "ReleaseReservation"],
    ),
    (Scope::Read, "ReservationService", &["GetReservation", "ListReservations", "GetCustomerBalance"]),
    (Scope::Read, "AlertService", &["ListAlertStates"]),
    (Scope::Write, "AlertService", &["CreateBalanceAlert", "DeleteBalanceAlert"]),
    (Scope::Read, "UsageService", &["GetAllowanceUsage", "ListUsageEvents"]),
    (Scope::Read, "CustomerService", &["GetCustomer", "ListCustomers"]),
    (Scope::Read, "ProductService", &["GetProduct", "ListProducts"]),
    (Scope::Read, "CreditTypeService", &["ListCreditTypes"]),
    (Scope::Read, "CommitService", &["GetCommit", "ListCommits", "GetCommitBalance", "ListCommitLedger"]),
    (
        Scope::Read,
        "CommitmentService",
        &[
            "GetCommitment",
            "ListCommitments",
            "ListCommitmentEdits",
            "EvaluateCommitment",
            "ListCompensations",
        ],
    ),
    (
        Scope::Read,
        "PromoService",
        &[
            "GetBillingPromo",
            "ListBillingPromos",
            "ListRewards",
            "ListCreditPromotions",
            "ListAppliedPromotions",
        ],
    ),
    (Scope::Read, "AllowanceService", &["GetAllowanceLimits"]),
    (Scope::Write, "CustomerService", &["CreateCustomer", "UpdateCustomer", "DeleteCustomer"]),
    (Scope::Write, "ProductService", &["CreateProduct", "UpdateProduct", "DeleteProduct"]),
    (Scope::Write, "CreditTypeService", &["CreateCreditType"]),
    (Scope::Write, "CommitService", &["CreateCommit", "UpdateCommit", "VoidCommit", "AdjustCommitBalance"]),
    (Scope::Write, "CommitmentService", &["CreateCommitment", "PatchCommitment", "TerminateCommitment"]),
    (
        Scope::Write,
        "PromoService",
        &[
            "CreateBillingPromo",
            "UpdateBillingPromo",
            "DeleteBillingPromo",
            "CreateCreditPromotion",
            "ApplyPromotion",
            "RemoveAppliedPromotion",
        ],
    ),
    (
        Scope::Write,
        "AllowanceService",
        &["ReplaceAllowanceLimits", "UpdateAllowanceLimits", "DeleteAllowanceLimits"],
    ),
];

fn expected() -> Vec<(String, Scope)> {
    METHODS
        .iter()
        .flat_map(|(scope, service, methods)| {
            methods.iter().map(move |m| (format!("/{PACKAGE}.{service}/{m}"), *scope))
        })
        .collect()
}

/// Every method the server's descriptors declare.
fn declared() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(billing::proto::FILE_DESCRIPTOR_SET).unwrap();
    set.file
        .iter()
        .filter(|f| f.package() == PACKAGE)
        .flat_map(|f| f.service.iter())
        .flat_map(|s| s.method.iter().map(move |m| format!("/{PACKAGE}.{}/{}", s.name(), m.name())))
        .collect()
}

/// Calls `path` with an empty request: what matters is whether the call got past the
/// scope check, not what the handler then says about the empty request.
async fn call(channel: Channel, key: &str, path: &str) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
    let mut req = tonic::Request::new(());
    req.metadata_mut().insert("authorization", format!("Bearer {key}").parse().unwrap());
    let path = http::uri::PathAndQuery::from_str(path).unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    if path.path().ends_with("/WatchViolations") {
        grpc.server_streaming(req, path, codec).await.map(drop)
    } else {
        grpc.unary(req, path, codec).await.map(drop)
    }
}

fn only(scope: Scope) -> Scopes {
    [scope].into_iter().collect()
}

async fn keys(server: &TestServer, key: &str) -> ApiKeyServiceClient<Authed> {
    ApiKeyServiceClient::with_interceptor(server.channel().await, Key::bearer(key))
}

#[test]
fn the_tests_table_names_every_method_the_server_declares() {
    let mut table: Vec<String> = expected().into_iter().map(|(m, _)| m).collect();
    let mut methods = declared();
    table.sort();
    methods.sort();
    assert_eq!(table, methods, "add new methods to METHODS with the scope they need");
}

/// Each key holds one scope; every method answers PERMISSION_DENIED exactly when the
/// key lacks the method's scope, with an ErrorInfo naming that scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_needs_exactly_its_scope() {
    let server = TestServer::start().await;
    let (org, _) = server.org("Acme").await;
    let channel = server.channel().await;
    let mut wrong = Vec::new();
    for held in Scope::ALL {
        let key = server.key_with(org, only(held), None).await;
        for (path, needed) in expected() {
            let result = call(channel.clone(), &key, &path).await;
            let denied = result.as_ref().is_err_and(|s| s.code() == Code::PermissionDenied);
            if denied != (held != needed) {
                wrong.push(format!("{path} with {held}: {:?}", result.map_err(|s| s.code())));
                continue;
            }
            if let Err(s) = &result
                && denied
            {
                let info = s.get_error_details().error_info().cloned().expect("ErrorInfo");
                assert_eq!(info.reason, "MISSING_SCOPE");
                assert_eq!(info.metadata.get("scope").map(String::as_str), Some(needed.as_str()), "{path}");
            }
        }
    }
    assert!(wrong.is_empty(), "calls answered against their scope:\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_past_its_expiry_is_unauthenticated_and_its_stream_ends() {
    let server = TestServer::start().await;
    let (_, admin) = server.org("Acme").await;
    let expire = chrono::Utc::now() + chrono::Duration::seconds(2);
    let created = keys(&server, &admin)
        .await
        .create_api_key(pb::CreateApiKeyRequest {
            api_key: Some(pb::ApiKey {
                name: "short lived".into(),
                scopes: vec![pb::ApiKeyScope::Feed as i32],
                expire_time: ts(expire),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let mut feed = violations(&server, &created.key).await;
    let mut stream = feed
        .watch_violations(pb::WatchViolationsRequest::default())
        .await
        .expect("a live key opens a stream")
        .into_inner();
    // A bound that turns a stream that never ends into a failure, not a hang.
    let end = tokio::time::timeout(Duration::from_secs(120), stream.message())
        .await
        .expect("the stream ends within two minutes of its key's expiry")
        .expect_err("the stream ends at the key's expiry");
    assert_eq!(end.code(), Code::Unauthenticated);
    assert_eq!(reason(&end), "API_KEY_EXPIRED");
    assert!(chrono::Utc::now() >= expire, "not before the expiry");

    let status =
        expect_code(feed.list_violations(pb::ListViolationsRequest::default()).await, Code::Unauthenticated);
    assert_eq!(reason(&status), "API_KEY_EXPIRED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_grants_only_scopes_it_holds_and_a_created_key_works_with_its_own() {
    let server = TestServer::start().await;
    let (org, _) = server.org("Acme").await;
    let admin_only = server.key_with(org, only(Scope::Admin), None).await;
    let mut api = keys(&server, &admin_only).await;
    let ask = |scopes: Vec<pb::ApiKeyScope>| pb::CreateApiKeyRequest {
        api_key: Some(pb::ApiKey {
            name: "pipeline".into(),
            scopes: scopes.into_iter().map(|s| s as i32).collect(),
            ..Default::default()
        }),
    };
    let status = expect_code(
        api.create_api_key(ask(vec![pb::ApiKeyScope::Admin, pb::ApiKeyScope::Usage])).await,
        Code::PermissionDenied,
    );
    assert_eq!(status.get_error_details().error_info().unwrap().metadata["scope"], "usage");

    let created = api.create_api_key(ask(vec![pb::ApiKeyScope::Admin])).await.unwrap().into_inner();
    let made = created.api_key.unwrap();
    assert_eq!(made.created_by, billing::domain::api_key::parse_key(&admin_only).unwrap().0.to_string());
    assert_eq!(made.scopes, [pb::ApiKeyScope::Admin as i32]);
    keys(&server, &created.key)
        .await
        .list_api_keys(pb::ListApiKeysRequest::default())
        .await
        .expect("it works");
    let mut customers = server.customers(&created.key).await;
    expect_code(customers.list_customers(pb::ListCustomersRequest::default()).await, Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_request_names_every_bad_field() {
    let server = TestServer::start().await;
    let (_, admin) = server.org("Acme").await;
    let status = expect_code(
        keys(&server, &admin)
            .await
            .create_api_key(pb::CreateApiKeyRequest {
                api_key: Some(pb::ApiKey {
                    scopes: vec![0, 42, pb::ApiKeyScope::Read as i32],
                    expire_time: ts(chrono::Utc::now() - chrono::Duration::hours(1)),
                    ..Default::default()
                }),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        ["api_key.scopes[0]", "api_key.scopes[1]", "api_key.name", "api_key.expire_time"]
    );
}

/// Listing shows keys without secrets, pages, hides revoked keys unless asked, and
/// says when a key was last used; another org's key is NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_listed_without_secrets_and_another_orgs_key_is_not_found() {
    let server = TestServer::start().await;
    let (org, admin) = server.org("Acme").await;
    let (_, other) = server.org("Globex").await;
    let mut api = keys(&server, &admin).await;
    let mut ids = vec![billing::domain::api_key::parse_key(&admin).unwrap().0.to_string()];
    for _ in 0..3 {
        let key = server.key_with(org, only(Scope::Read), None).await;
        ids.push(billing::domain::api_key::parse_key(&key).unwrap().0.to_string());
    }
    api.revoke_api_key(pb::RevokeApiKeyRequest { id: ids[3].clone() }).await.unwrap();

    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let page = api
            .list_api_keys(pb::ListApiKeysRequest { page_size: 1, page_token: token, show_revoked: false })
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.api_keys);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(listed.iter().map(|k| k.id.clone()).collect::<Vec<_>>(), ids[..3]);
    assert!(listed[0].last_use_time.is_some(), "the calling key was used");
    assert!(listed[1].last_use_time.is_none(), "an unused key was not");
    let all = api
        .list_api_keys(pb::ListApiKeysRequest { show_revoked: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.api_keys.len(), 4);
    assert!(all.api_keys[3].revoke_time.is_some());

    let theirs = billing::domain::api_key::parse_key(&other).unwrap().0.to_string();
    expect_code(api.get_api_key(pb::GetApiKeyRequest { id: theirs.clone() }).await, Code::NotFound);
    expect_code(api.revoke_api_key(pb::RevokeApiKeyRequest { id: theirs }).await, Code::NotFound);
    server
        .customers(&other)
        .await
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .expect("not revoked");
}

/// Instance B caches keys for an hour, so only the revocation's notice can explain B
/// refusing a key revoked through A's API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_through_the_api_is_refused_by_another_instance() {
    let a = TestServer::start().await;
    let hour = KeyCacheConfig { ttl: Duration::from_secs(3600), ..KeyCacheConfig::default() };
    let b = TestServer::start_with_key_cache(Arc::clone(&a.db), hour).await;
    let (org, admin) = a.org("Acme").await;
    let reader = a.key_with(org, only(Scope::Read), None).await;
    let (id, _) = billing::domain::api_key::parse_key(&reader).unwrap();
    wait_until("B caches the key", || async {
        b.customers(&reader)
            .await
            .list_customers(pb::ListCustomersRequest::default())
            .await
            .expect("works on B");
        b.app.key_cache().get(id).is_some()
    })
    .await;

    let revoked = keys(&a, &admin)
        .await
        .revoke_api_key(pb::RevokeApiKeyRequest { id: id.to_string() })
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    assert!(revoked.revoke_time.is_some());
    wait_until("B refuses the revoked key", || async {
        let listed = b.customers(&reader).await.list_customers(pb::ListCustomersRequest::default()).await;
        listed.is_err_and(|s| s.code() == Code::Unauthenticated)
    })
    .await;
}
