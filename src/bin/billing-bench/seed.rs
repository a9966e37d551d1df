//! A realistic org, created through the public API: two service products, and per
//! customer allowance limits with two service allowances, two commits, and for one
//! customer in ten an applied credit promotion.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use billing::proto::v1 as pb;
use billing::proto::v1::allowance_service_client::AllowanceServiceClient;
use billing::proto::v1::commit_service_client::CommitServiceClient;
use billing::proto::v1::customer_service_client::CustomerServiceClient;
use billing::proto::v1::product_service_client::ProductServiceClient;
use billing::proto::v1::promo_service_client::PromoServiceClient;
use chrono::Utc;
use futures::StreamExt as _;
use tonic::transport::Channel;

use crate::load::{authed, ts};

/// Per-transaction usage maximum of every customer: an event above it is blocked and
/// raises a violation.
pub const MAX_USAGE_PER_TRANSACTION: u32 = 1000;

/// What the load needs to know about the seeded org.
pub struct Seeded {
    pub customers: Vec<String>,
    /// Product codes of the two services.
    pub codes: [&'static str; 2],
}

const CODES: [&str; 2] = ["VOD-HD", "FUEL-95"];
const TAGS: [&str; 2] = ["vod", "fuel"];

async fn create_product(channel: Channel, key: &str, i: usize) -> anyhow::Result<String> {
    let req = pb::CreateProductRequest {
        product: Some(pb::Product {
            code: CODES[i].into(),
            name: CODES[i].into(),
            tags: vec![TAGS[i].into()],
            service_type: format!("{} services", TAGS[i]),
            service_family: format!("{} family", TAGS[i]),
            kind: pb::ProductKind::Service.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let product = ProductServiceClient::new(channel).create_product(authed(req, key)).await?;
    Ok(product.into_inner().product.context("no product")?.id)
}

fn limits(customer_id: &str) -> pb::AllowanceLimits {
    let service = |i: usize| pb::ServiceAllowance {
        selector: Some(pb::service_allowance::Selector::Service(CODES[i].into())),
        maximum_usage_per_transaction: Some("500".into()),
        maximum_usage_per_day: Some("1000000".into()),
        maximum_rated_amount_per_month: Some("10000000".into()),
        ..Default::default()
    };
    pb::AllowanceLimits {
        customer: billing::proto::customer_id(customer_id),
        accumulated_maximum_usage_per_transaction: Some(MAX_USAGE_PER_TRANSACTION.to_string()),
        accumulated_maximum_usage_per_day: Some("10000000".into()),
        accumulated_maximum_rated_amount_per_month: Some("100000000".into()),
        percentage_of_allowed_exceeded_usage_limit: Some("10".into()),
        warning_thresholds: vec!["80".into()],
        usage_services_allowance: vec![service(0), service(1)],
        ..Default::default()
    }
}

fn commit(customer_id: &str, product_id: &str, priority: &str, tags: Vec<String>) -> pb::Commit {
    let now = Utc::now();
    pb::Commit {
        r#type: pb::CommitType::Prepaid.into(),
        customer: billing::proto::customer_id(customer_id),
        product_id: product_id.into(),
        priority: priority.into(),
        applicable_product_tags: tags,
        access_schedule: Some(pb::AccessSchedule {
            credit_type: String::new(),
            schedule_items: vec![pb::AccessScheduleItem {
                amount: "1000000".into(),
                starting_at: ts(now - chrono::Duration::days(1)),
                ending_before: ts(now + chrono::Duration::days(30)),
            }],
        }),
        ..Default::default()
    }
}

/// Everything one customer gets; returns its id.
async fn seed_customer(
    channel: Channel,
    key: String,
    n: usize,
    products: Arc<[String; 2]>,
    promotion: Arc<String>,
) -> anyhow::Result<String> {
    let customer = CustomerServiceClient::new(channel.clone())
        .create_customer(authed(
            pb::CreateCustomerRequest {
                customer: Some(pb::Customer {
                    external_id: format!("bench-{n:06}"),
                    name: format!("Customer {n}"),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &key,
        ))
        .await?
        .into_inner()
        .customer
        .context("no customer")?
        .id;
    AllowanceServiceClient::new(channel.clone())
        .replace_allowance_limits(authed(
            pb::ReplaceAllowanceLimitsRequest { limits: Some(limits(&customer)) },
            &key,
        ))
        .await?;
    let mut commits = CommitServiceClient::new(channel.clone());
    for c in [
        commit(&customer, &products[0], "1", vec![TAGS[0].into()]),
        commit(&customer, &products[1], "2", Vec::new()),
    ] {
        commits
            .create_commit(authed(
                pb::CreateCommitRequest { commit: Some(c), request_id: String::new() },
                &key,
            ))
            .await?;
    }
    if n.is_multiple_of(10) {
        let applied = pb::AppliedPromotion {
            customer: billing::proto::customer_id(customer.clone()),
            promotion_id: (*promotion).clone(),
            priority: "0".into(),
            applied_time_range: Some(pb::TimeRange {
                start_time: ts(Utc::now() - chrono::Duration::days(1)),
                end_time: None,
            }),
            ..Default::default()
        };
        PromoServiceClient::new(channel)
            .apply_promotion(authed(
                pb::ApplyPromotionRequest { applied: Some(applied), request_id: String::new() },
                &key,
            ))
            .await?;
    }
    Ok(customer)
}

/// Seeds `customers` customers over `channels`, `in_flight` at a time, reporting progress.
pub async fn seed(
    channels: &[Channel],
    key: &str,
    customers: usize,
    in_flight: usize,
) -> anyhow::Result<Seeded> {
    let products = Arc::new([
        create_product(channels[0].clone(), key, 0).await?,
        create_product(channels[0].clone(), key, 1).await?,
    ]);
    let promotion = PromoServiceClient::new(channels[0].clone())
        .create_credit_promotion(authed(
            pb::CreateCreditPromotionRequest {
                promotion: Some(pb::CreditPromotion {
                    name: "Welcome credit".into(),
                    total_amount: Some("50".into()),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            key,
        ))
        .await?
        .into_inner()
        .promotion
        .context("no promotion")?
        .id;
    let promotion = Arc::new(promotion);
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let progress = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                eprintln!("  seeded {} / {customers} customers", done.load(Ordering::Relaxed));
            }
        })
    };
    let results: Vec<anyhow::Result<String>> = futures::stream::iter(0..customers)
        .map(|n| {
            let (channel, key) = (channels[n % channels.len()].clone(), key.to_owned());
            let (products, promotion, done) =
                (Arc::clone(&products), Arc::clone(&promotion), Arc::clone(&done));
            async move {
                let id = seed_customer(channel, key, n, products, promotion).await;
                done.fetch_add(1, Ordering::Relaxed);
                id
            }
        })
        .buffered(in_flight)
        .collect()
        .await;
    progress.abort();
    let customers = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    eprintln!("  seeded {} customers in {:.1?}", customers.len(), started.elapsed());
    Ok(Seeded { customers, codes: CODES })
}
