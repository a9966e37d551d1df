//! Ready-made org, customer and products for tests that need them, created through the
//! public API.

use billing::proto::v1 as pb;
use billing::proto::v1::commit_service_client::CommitServiceClient;
use chrono::{DateTime, TimeZone, Utc};
use prost_types::Timestamp;

use super::server::{Authed, TestServer};

/// A wire timestamp.
pub fn ts(t: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
}

/// Midnight UTC of a date.
pub fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

/// The instant this test dates its usage at: taken once, on first use, so every event
/// of a test falls in the same day and month even when the test runs across midnight
/// (nextest runs each test in its own process).
pub fn test_now() -> DateTime<Utc> {
    static NOW: std::sync::LazyLock<DateTime<Utc>> = std::sync::LazyLock::new(|| {
        DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default()
    });
    *NOW
}

/// Midnight UTC `days` from today: dates relative to the run, so a test holds on any day.
pub fn days_from_today(days: i64) -> DateTime<Utc> {
    let today = Utc::now().date_naive().and_hms_opt(0, 0, 0).unwrap_or_default();
    Utc.from_utc_datetime(&today) + chrono::Duration::days(days)
}

/// The start of a segment open around any usage dated now: a year back.
pub fn long_ago() -> DateTime<Utc> {
    days_from_today(-365)
}

/// The end of a segment open around any usage dated now: ten years ahead.
pub fn far_ahead() -> DateTime<Utc> {
    days_from_today(3650)
}

/// An org with a key, one customer and two products (tagged "vod" and "fuel").
pub struct Tenant {
    pub key: String,
    pub customer_id: String,
    pub vod: String,
    pub fuel: String,
}

impl Tenant {
    pub async fn create(server: &TestServer, name: &str) -> Self {
        let (_, key) = server.org(name).await;
        let customer = server
            .customers(&key)
            .await
            .create_customer(pb::CreateCustomerRequest {
                customer: Some(pb::Customer {
                    external_id: "ACR1".into(),
                    name: "Customer".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("create customer")
            .into_inner()
            .customer
            .unwrap();
        let products = server.products(&key).await;
        let product = |code: &'static str, tag: &'static str| {
            let req = pb::CreateProductRequest {
                product: Some(pb::Product {
                    code: code.into(),
                    name: code.into(),
                    tags: vec![tag.into()],
                    service_type: format!("{tag} services"),
                    service_family: format!("{tag} family"),
                    kind: pb::ProductKind::Service.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            };
            let mut client = products.clone();
            async move {
                client.create_product(req).await.expect("create product").into_inner().product.unwrap().id
            }
        };
        let vod = product("CREED", "vod").await;
        let fuel = product("EXXON", "fuel").await;
        Self { key, customer_id: customer.id, vod, fuel }
    }

    /// The tenant's customer, as `GetCustomer` answers it.
    pub async fn customer(&self, server: &TestServer) -> pb::Customer {
        server
            .customers(&self.key)
            .await
            .get_customer(pb::GetCustomerRequest { id: self.customer_id.clone() })
            .await
            .expect("get customer")
            .into_inner()
            .customer
            .unwrap()
    }

    pub async fn another_customer(&self, server: &TestServer, external_id: &str) -> String {
        server
            .customers(&self.key)
            .await
            .create_customer(pb::CreateCustomerRequest {
                customer: Some(pb::Customer {
                    external_id: external_id.into(),
                    name: "Other".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("create customer")
            .into_inner()
            .customer
            .unwrap()
            .id
    }
}

/// A PREPAID commit of `amount` over `[from, to)` with priority `priority`.
pub fn prepaid(
    t: &Tenant,
    amount: &str,
    priority: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> pb::Commit {
    pb::Commit {
        r#type: pb::CommitType::Prepaid.into(),
        customer: billing::proto::customer_id(t.customer_id.clone()),
        product_id: t.vod.clone(),
        priority: priority.into(),
        access_schedule: Some(pb::AccessSchedule {
            credit_type: String::new(),
            schedule_items: vec![pb::AccessScheduleItem {
                amount: amount.into(),
                starting_at: ts(from),
                ending_before: ts(to),
            }],
        }),
        ..Default::default()
    }
}

pub async fn commits(server: &TestServer, key: &str) -> CommitServiceClient<Authed> {
    CommitServiceClient::with_interceptor(server.channel().await, super::server::Key::bearer(key))
}

/// Creates `commit`, returning it as stored.
pub async fn create_commit(client: &mut CommitServiceClient<Authed>, commit: pb::Commit) -> pb::Commit {
    client
        .create_commit(pb::CreateCommitRequest { commit: Some(commit), request_id: String::new() })
        .await
        .expect("create commit")
        .into_inner()
        .commit
        .unwrap()
}

/// A usage of `product` worth `amount`, happening now (at [`test_now`]).
pub fn usage(product: &str, amount: &str) -> pb::RatedUsage {
    pb::RatedUsage {
        product_id: product.to_owned(),
        amount: amount.into(),
        timestamp: ts(test_now()),
        ..Default::default()
    }
}

/// ApplyDrawdown for the tenant's customer.
pub async fn apply(
    c: &mut CommitServiceClient<Authed>,
    t: &Tenant,
    key: &str,
    u: pb::RatedUsage,
) -> Result<pb::ApplyDrawdownResponse, tonic::Status> {
    c.apply_drawdown(pb::ApplyDrawdownRequest {
        idempotency_key: key.into(),
        customer: billing::proto::customer_id(t.customer_id.clone()),
        usage: Some(u),
    })
    .await
    .map(|r| r.into_inner())
}

pub async fn allowances(
    server: &TestServer,
    key: &str,
) -> billing::proto::v1::allowance_service_client::AllowanceServiceClient<Authed> {
    billing::proto::v1::allowance_service_client::AllowanceServiceClient::with_interceptor(
        server.channel().await,
        super::server::Key::bearer(key),
    )
}

pub async fn usage_client(
    server: &TestServer,
    key: &str,
) -> billing::proto::v1::usage_service_client::UsageServiceClient<Authed> {
    billing::proto::v1::usage_service_client::UsageServiceClient::with_interceptor(
        server.channel().await,
        super::server::Key::bearer(key),
    )
}

/// A usage event of the tenant's customer for the product with `code`, happening now
/// (at [`test_now`]).
pub fn event(t: &Tenant, event_id: &str, code: &str, quantity: &str, amount: &str) -> pb::UsageEvent {
    pb::UsageEvent {
        event_id: event_id.into(),
        customer: billing::proto::customer_id(t.customer_id.clone()),
        product: Some(pb::usage_event::Product::ProductCode(code.into())),
        quantity: quantity.into(),
        rated_amount: amount.into(),
        timestamp: ts(test_now()),
        ..Default::default()
    }
}

/// Records one event, returning its outcome.
pub async fn record(
    c: &mut billing::proto::v1::usage_service_client::UsageServiceClient<Authed>,
    e: pb::UsageEvent,
) -> Result<pb::UsageOutcome, tonic::Status> {
    c.record_usage(pb::RecordUsageRequest { event: Some(e) }).await.map(|r| r.into_inner().outcome.unwrap())
}

pub async fn violations(
    server: &TestServer,
    key: &str,
) -> billing::proto::v1::violation_service_client::ViolationServiceClient<Authed> {
    billing::proto::v1::violation_service_client::ViolationServiceClient::with_interceptor(
        server.channel().await,
        super::server::Key::bearer(key),
    )
}

/// One page of the organization's violations, as `req` asks.
pub async fn list_violations(
    server: &TestServer,
    key: &str,
    req: billing::proto::v1::ListViolationsRequest,
) -> Vec<billing::proto::v1::Violation> {
    violations(server, key).await.list_violations(req).await.expect("list violations").into_inner().violations
}

/// Applying credit promotion `promotion` to the tenant's customer from `start`, open-ended.
pub fn application(
    t: &Tenant,
    promotion: &str,
    priority: &str,
    start: DateTime<Utc>,
) -> pb::ApplyPromotionRequest {
    pb::ApplyPromotionRequest {
        applied: Some(pb::AppliedPromotion {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            promotion_id: promotion.to_owned(),
            priority: priority.into(),
            applied_time_range: Some(pb::TimeRange { start_time: ts(start), end_time: None }),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

/// Makes every usage of the tenant's customer blocked (usage per transaction at most 0),
/// so each recorded event writes exactly one LIMIT_BLOCK violation.
pub async fn block_everything(server: &TestServer, t: &Tenant) {
    allowances(server, &t.key)
        .await
        .replace_allowance_limits(pb::ReplaceAllowanceLimitsRequest {
            limits: Some(pb::AllowanceLimits {
                customer: billing::proto::customer_id(t.customer_id.clone()),
                accumulated_maximum_usage_per_transaction: Some("0".into()),
                ..Default::default()
            }),
        })
        .await
        .expect("set limits");
}

/// Records `n` blocked events named `{prefix}-{i}` (one violation each), in one batch.
pub async fn raise(server: &TestServer, t: &Tenant, prefix: &str, n: usize) {
    let events = (0..n).map(|i| event(t, &format!("{prefix}-{i}"), "CREED", "1", "1")).collect();
    let results = usage_client(server, &t.key)
        .await
        .record_usage_batch(pb::RecordUsageBatchRequest { events })
        .await
        .expect("record batch")
        .into_inner()
        .results;
    assert!(results.iter().all(|r| matches!(r.result, Some(pb::usage_batch_result::Result::Outcome(_)))));
}

pub async fn promos(
    server: &TestServer,
    key: &str,
) -> billing::proto::v1::promo_service_client::PromoServiceClient<Authed> {
    billing::proto::v1::promo_service_client::PromoServiceClient::with_interceptor(
        server.channel().await,
        super::server::Key::bearer(key),
    )
}

pub async fn commitments_client(
    server: &TestServer,
    key: &str,
) -> billing::proto::v1::commitment_service_client::CommitmentServiceClient<Authed> {
    billing::proto::v1::commitment_service_client::CommitmentServiceClient::with_interceptor(
        server.channel().await,
        super::server::Key::bearer(key),
    )
}

/// Creates a credit promotion of `per_cycle` a month for the tenant.
pub async fn credit_promotion(
    server: &TestServer,
    t: &Tenant,
    name: &str,
    per_cycle: &str,
) -> pb::CreditPromotion {
    promos(server, &t.key)
        .await
        .create_credit_promotion(pb::CreateCreditPromotionRequest {
            promotion: Some(pb::CreditPromotion {
                name: name.into(),
                amount_per_cycle: Some(per_cycle.into()),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create credit promotion")
        .into_inner()
        .promotion
        .unwrap()
}
