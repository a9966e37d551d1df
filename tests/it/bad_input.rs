//! Hostile values: malformed and overflowing decimals, negative quantities, timestamps
//! out of range, unknown enum values, empty and 10,000-character ids and keys. Each is
//! refused with INVALID_ARGUMENT naming its field, and none changes anything.

use billing::proto::v1 as pb;
use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use prost_types::Timestamp;
use tonic::Code;

use crate::support::fixtures::{Tenant, allowances, commits, day, event, prepaid, record, usage_client};
use crate::support::{TestServer, bad_fields, expect_code};

const OVERFLOW: &str = "79228162514264337593543950336"; // one past rust_decimal's maximum
const YEAR_10000: i64 = 253_402_300_800;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn rows(server: &TestServer, table: &str) -> i64 {
    diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
        .get_result::<Count>(&mut server.db.connect())
        .unwrap()
        .n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_usage_values_are_invalid_with_their_paths_and_change_nothing() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut u = usage_client(&server, &t.key).await;
    type Edit = Box<dyn Fn(&mut pb::UsageEvent)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("negative quantity", Box::new(|e| e.quantity = "-1".into()), "event.quantity"),
        ("overflowing quantity", Box::new(|e| e.quantity = OVERFLOW.into()), "event.quantity"),
        ("exponent", Box::new(|e| e.rated_amount = "1e400".into()), "event.rated_amount"),
        ("NaN", Box::new(|e| e.rated_amount = "NaN".into()), "event.rated_amount"),
        ("comma", Box::new(|e| e.rated_amount = "12,50".into()), "event.rated_amount"),
        ("padded", Box::new(|e| e.rated_amount = " 1".into()), "event.rated_amount"),
        (
            "year 10000",
            Box::new(|e| e.timestamp = Some(Timestamp { seconds: YEAR_10000, nanos: 0 })),
            "event.timestamp",
        ),
        (
            "nanos out of range",
            Box::new(|e| e.timestamp = Some(Timestamp { seconds: Utc::now().timestamp(), nanos: -1 })),
            "event.timestamp",
        ),
        ("empty event id", Box::new(|e| e.event_id = String::new()), "event.event_id"),
        ("10k event id", Box::new(move |e| e.event_id = "e".repeat(10_000)), "event.event_id"),
        (
            "empty customer",
            Box::new(|e| e.customer = billing::proto::customer_id(String::new())),
            "event.customer_id",
        ),
        (
            "10k customer",
            Box::new(move |e| e.customer = billing::proto::customer_id("c".repeat(10_000))),
            "event.customer_id",
        ),
    ];
    for (name, edit, path) in cases {
        let mut e = event(&t, "hostile", "CREED", "1", "1");
        edit(&mut e);
        let status = expect_code(record(&mut u, e).await, Code::InvalidArgument);
        let fields = bad_fields(&status);
        assert!(fields.iter().any(|f| f == path), "{name}: expected {path} among {fields:?}");
        assert!(status.message().len() < 1_000, "{name}: the message does not echo the input");
    }
    assert_eq!(rows(&server, "usage_events"), 0);
    assert_eq!(rows(&server, "usage_totals"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_commit_and_limit_values_are_invalid_and_change_nothing() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    let valid = prepaid(&t, "100", "1", day(2026, 1, 1), day(2027, 1, 1));
    type Edit = Box<dyn Fn(&mut pb::Commit)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("unknown type", Box::new(|m| m.r#type = 99), "commit.type"),
        (
            "overflowing amount",
            Box::new(|m| m.access_schedule.as_mut().unwrap().schedule_items[0].amount = OVERFLOW.into()),
            "commit.access_schedule.schedule_items[0].amount",
        ),
        (
            "negative amount",
            Box::new(|m| m.access_schedule.as_mut().unwrap().schedule_items[0].amount = "-5".into()),
            "commit.access_schedule.schedule_items[0].amount",
        ),
        (
            "year 10000",
            Box::new(|m| {
                m.access_schedule.as_mut().unwrap().schedule_items[0].ending_before =
                    Some(Timestamp { seconds: YEAR_10000, nanos: 0 })
            }),
            "commit.access_schedule.schedule_items[0].ending_before",
        ),
        (
            "10k uniqueness key",
            Box::new(|m| m.uniqueness_key = Some("k".repeat(10_000))),
            "commit.uniqueness_key",
        ),
        (
            "empty uniqueness key",
            Box::new(|m| m.uniqueness_key = Some(String::new())),
            "commit.uniqueness_key",
        ),
        ("10k product id", Box::new(|m| m.product_id = "p".repeat(10_000)), "commit.product_id"),
        ("malformed priority", Box::new(|m| m.priority = "first".into()), "commit.priority"),
    ];
    for (name, edit, path) in cases {
        let mut m = valid.clone();
        edit(&mut m);
        let status = expect_code(
            c.create_commit(pb::CreateCommitRequest { commit: Some(m), request_id: String::new() }).await,
            Code::InvalidArgument,
        );
        let fields = bad_fields(&status);
        assert!(fields.iter().any(|f| f == path), "{name}: expected {path} among {fields:?}");
    }

    let mut a = allowances(&server, &t.key).await;
    let limits = |edit: &dyn Fn(&mut pb::AllowanceLimits)| {
        let mut l = pb::AllowanceLimits {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            ..Default::default()
        };
        edit(&mut l);
        pb::ReplaceAllowanceLimitsRequest { limits: Some(l) }
    };
    for (name, req, path) in [
        (
            "negative maximum",
            limits(&|l| l.accumulated_maximum_rated_amount_per_day = Some("-1".into())),
            "limits.accumulated_maximum_rated_amount_per_day",
        ),
        (
            "overflowing maximum",
            limits(&|l| l.accumulated_maximum_usage_per_month = Some(OVERFLOW.into())),
            "limits.accumulated_maximum_usage_per_month",
        ),
        (
            "tolerance not a number",
            limits(&|l| l.percentage_of_allowed_exceeded_usage_limit = Some("ten".into())),
            "limits.percentage_of_allowed_exceeded_usage_limit",
        ),
    ] {
        let status = expect_code(a.replace_allowance_limits(req).await, Code::InvalidArgument);
        let fields = bad_fields(&status);
        assert!(fields.iter().any(|f| f == path), "{name}: expected {path} among {fields:?}");
    }
    assert_eq!(rows(&server, "commits"), 0);
    assert_eq!(rows(&server, "allowance_limits"), 0);
}
