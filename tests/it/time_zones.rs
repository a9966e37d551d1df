//! Allowance windows are the customer's local calendar days and months, over the wire,
//! at fixed instants: around local midnight, across a month end, and on DST days.

use crate::support::limit_of;
use billing::proto::v1 as pb;
use chrono::{DateTime, TimeZone, Utc};

use crate::support::TestServer;
use crate::support::fixtures::{Tenant, record, ts, usage_client};
use crate::support::server::Authed;
use crate::usage::set_limits;

type Usage = pb::usage_service_client::UsageServiceClient<Authed>;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// A tenant whose customer lives in `tz`, with daily and monthly rated-amount maxima.
async fn customer_in(server: &TestServer, tz: &str, daily: &str, monthly: &str) -> Tenant {
    let t = Tenant::create(server, "Acme").await;
    let current = t.customer(server).await;
    server
        .customers(&t.key)
        .await
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer { time_zone: tz.into(), ..current }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["time_zone".into()] }),
        })
        .await
        .unwrap();
    let limits = pb::AllowanceLimits {
        accumulated_maximum_rated_amount_per_day: Some(daily.into()),
        accumulated_maximum_rated_amount_per_month: Some(monthly.into()),
        ..Default::default()
    };
    set_limits(server, &t, limits).await;
    t
}

/// Records an event of `amount` at `at`; answers the decision and the (day, month) totals.
async fn spend(
    u: &mut Usage,
    t: &Tenant,
    id: &str,
    amount: &str,
    at: DateTime<Utc>,
) -> (i32, String, String) {
    let e = pb::UsageEvent {
        event_id: id.into(),
        customer: billing::proto::customer_id(t.customer_id.clone()),
        product: Some(pb::usage_event::Product::ProductCode("CREED".into())),
        quantity: "1".into(),
        rated_amount: amount.into(),
        timestamp: ts(at),
        ..Default::default()
    };
    let o = record(u, e).await.unwrap();
    let used = |period| {
        o.checks.iter().find(|c| limit_of(&c.limit_ref).3 == period).map(|c| c.used.clone()).unwrap()
    };
    (o.decision, used(pb::LimitPeriod::Day), used(pb::LimitPeriod::Month))
}

const ALLOWED: i32 = pb::UsageDecision::Allowed as i32;
const BLOCKED: i32 = pb::UsageDecision::Blocked as i32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokyo_day_starts_at_local_midnight_not_utc_midnight() {
    let server = TestServer::start_accepting_old_usage().await;
    let t = customer_in(&server, "Asia/Tokyo", "100", "1000").await;
    let mut u = usage_client(&server, &t.key).await;
    // 14:30 UTC is 23:30 in Tokyo (UTC+9); 15:30 UTC is 00:30 the next local day, though
    // the same UTC day.
    assert_eq!(
        spend(&mut u, &t, "a", "80", utc(2026, 3, 14, 14, 30)).await,
        (ALLOWED, "80".into(), "80".into())
    );
    assert_eq!(
        spend(&mut u, &t, "b", "80", utc(2026, 3, 14, 15, 30)).await,
        (ALLOWED, "80".into(), "160".into())
    );
    let c = spend(&mut u, &t, "c", "30", utc(2026, 3, 14, 16, 0)).await;
    assert_eq!(c, (BLOCKED, "110".into(), "190".into()), "b and c share the local day of Mar 15");
    // 14:59 UTC on Mar 14 is still Mar 14 in Tokyo: a's day has 20 left.
    assert_eq!(spend(&mut u, &t, "d", "20", utc(2026, 3, 14, 14, 59)).await.0, ALLOWED);

    let report = u
        .get_allowance_usage(pb::GetAllowanceUsageRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            at: ts(utc(2026, 3, 14, 15, 0)),
        })
        .await
        .unwrap()
        .into_inner();
    let day = report.usage.iter().find(|l| limit_of(&l.limit_ref).3 == pb::LimitPeriod::Day).unwrap();
    assert_eq!((day.used.as_str(), day.window_start), ("80", ts(utc(2026, 3, 14, 15, 0))), "Mar 15 JST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokyo_month_ends_at_local_midnight_of_the_first() {
    let server = TestServer::start_accepting_old_usage().await;
    let t = customer_in(&server, "Asia/Tokyo", "1000", "100").await;
    let mut u = usage_client(&server, &t.key).await;
    // Mar 31 14:30 UTC is Mar 31 23:30 JST; Mar 31 15:30 UTC is Apr 1 00:30 JST.
    assert_eq!(spend(&mut u, &t, "march", "90", utc(2026, 3, 31, 14, 30)).await.0, ALLOWED);
    let april = spend(&mut u, &t, "april", "90", utc(2026, 3, 31, 15, 30)).await;
    assert_eq!((april.0, april.2.as_str()), (ALLOWED, "90"), "a new local month");
    let late_march = spend(&mut u, &t, "late-march", "20", utc(2026, 3, 31, 14, 45)).await;
    assert_eq!((late_march.0, late_march.2.as_str()), (BLOCKED, "110"), "still March in Tokyo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_york_dst_day_has_23_hours_and_its_windows_follow_local_midnight() {
    let server = TestServer::start_accepting_old_usage().await;
    let t = customer_in(&server, "America/New_York", "100", "1000").await;
    let mut u = usage_client(&server, &t.key).await;
    // DST starts on 2026-03-08: that local day runs 05:00 UTC (EST) to 04:00 UTC on the 9th
    // (EDT). 03:30 UTC on the 9th is 23:30 on the 8th; 04:30 UTC is 00:30 on the 9th.
    assert_eq!(spend(&mut u, &t, "first", "60", utc(2026, 3, 8, 5, 0)).await.0, ALLOWED);
    let last = spend(&mut u, &t, "last", "50", utc(2026, 3, 9, 3, 30)).await;
    assert_eq!((last.0, last.1.as_str()), (BLOCKED, "110"), "same 23-hour local day");
    let next = spend(&mut u, &t, "next", "50", utc(2026, 3, 9, 4, 30)).await;
    assert_eq!((next.0, next.1.as_str()), (ALLOWED, "50"), "the next local day");
    // The previous local day ended at 05:00 UTC on the 8th (EST).
    let before = spend(&mut u, &t, "before", "50", utc(2026, 3, 8, 4, 59)).await;
    assert_eq!((before.0, before.1.as_str()), (ALLOWED, "50"));
}
