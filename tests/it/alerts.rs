//! AlertService: balance alerts in alarm once per crossing and back once, moved by
//! usage, top-ups, reservations and their expiry; alerts made below their threshold; bad
//! requests; limit warnings in ListAlertStates; one crossing under concurrent usage on
//! two instances.

use crate::support::limit_of;
use std::sync::Arc;

use billing::proto::v1 as pb;
use billing::proto::v1::alert_service_client::AlertServiceClient;
use billing::proto::v1::reservation_service_client::ReservationServiceClient;
use tonic::Code;

use crate::support::fixtures::{
    Tenant, commits, create_commit, event, far_ahead, long_ago, prepaid, record, usage_client, violations,
};
use crate::support::server::{Authed, Key, test_server_config};
use crate::support::{TestServer, bad_fields, expect_code, wait_until};
use crate::usage::set_limits;

async fn alerts(server: &TestServer, key: &str) -> AlertServiceClient<Authed> {
    AlertServiceClient::with_interceptor(server.channel().await, Key::bearer(key))
}

fn below(
    t: &Tenant,
    threshold: pb::create_balance_alert_request::Threshold,
) -> pb::CreateBalanceAlertRequest {
    pb::CreateBalanceAlertRequest {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        credit_type: String::new(),
        threshold: Some(threshold),
        request_id: String::new(),
    }
}

fn amount(x: &str) -> pb::create_balance_alert_request::Threshold {
    pb::create_balance_alert_request::Threshold::ThresholdAmount(x.into())
}

fn percent(x: &str) -> pb::create_balance_alert_request::Threshold {
    pb::create_balance_alert_request::Threshold::ThresholdPercent(x.into())
}

async fn create(c: &mut AlertServiceClient<Authed>, req: pb::CreateBalanceAlertRequest) -> pb::BalanceAlert {
    c.create_balance_alert(req).await.expect("create alert").into_inner().alert.unwrap()
}

/// The balance alert violations of the tenant's customer so far: (kind, available).
async fn crossings(server: &TestServer, t: &Tenant) -> Vec<(pb::ViolationKind, String)> {
    let page = violations(server, &t.key)
        .await
        .list_violations(pb::ListViolationsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            kinds: vec![pb::ViolationKind::BalanceLow as i32, pb::ViolationKind::BalanceRecovered as i32],
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("list violations")
        .into_inner();
    page.violations.iter().map(|v| (v.kind(), v.amount.clone())).collect()
}

async fn states(c: &mut AlertServiceClient<Authed>, t: &Tenant) -> pb::ListAlertStatesResponse {
    c.list_alert_states(pb::ListAlertStatesRequest {
        customer: billing::proto::customer_id(t.customer_id.clone()),
    })
    .await
    .expect("alert states")
    .into_inner()
}

use pb::ViolationKind::{BalanceLow as LOW, BalanceRecovered as RECOVERED};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balance_alert_goes_into_alarm_once_and_recovers_once_with_a_top_up() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut cc = commits(&server, &t.key).await;
    let commit = create_commit(&mut cc, prepaid(&t, "100", "1", long_ago(), far_ahead())).await;
    let mut a = alerts(&server, &t.key).await;
    let alert = create(&mut a, below(&t, amount("30"))).await;
    assert_eq!(alert.status(), pb::AlertStatus::Ok);
    let mut u = usage_client(&server, &t.key).await;

    record(&mut u, event(&t, "e1", "CREED", "1", "50")).await.unwrap();
    assert!(crossings(&server, &t).await.is_empty(), "50 left: above 30");
    record(&mut u, event(&t, "e2", "CREED", "1", "30")).await.unwrap();
    // Judged on the balance the crossing event leaves, in its own transaction.
    assert_eq!(crossings(&server, &t).await, [(LOW, "20".to_owned())], "at the event that crossed");
    record(&mut u, event(&t, "e3", "CREED", "1", "5")).await.unwrap();
    assert_eq!(crossings(&server, &t).await, [(LOW, "20".to_owned())], "once");
    let now = states(&mut a, &t).await;
    assert_eq!(now.balance_alerts[0].status(), pb::AlertStatus::Alarm);
    assert_eq!(now.balance_alerts[0].available, "20");

    cc.adjust_commit_balance(pb::AdjustCommitBalanceRequest {
        commit_id: commit.id.clone(),
        segment_index: 0,
        amount: "50".into(),
        reason: "top-up".into(),
        ..Default::default()
    })
    .await
    .expect("top up");
    assert_eq!(crossings(&server, &t).await, [(LOW, "20".to_owned()), (RECOVERED, "65".to_owned())]);
    let after = states(&mut a, &t).await.balance_alerts.remove(0);
    assert_eq!(after.status(), pb::AlertStatus::Ok);
    assert!(
        after.state_change_time.unwrap().seconds >= now.balance_alerts[0].state_change_time.unwrap().seconds
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_move_the_available_balance_and_a_release_or_an_expiry_recovers_it() {
    let mut config = test_server_config();
    config.jobs.reservation_expiry_interval = std::time::Duration::from_millis(100);
    let server = TestServer::start_with(Arc::new(crate::support::db::TestDb::create()), config, |c| c).await;
    server.wait_serving().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut cc = commits(&server, &t.key).await;
    create_commit(&mut cc, prepaid(&t, "100", "1", long_ago(), far_ahead())).await;
    let mut a = alerts(&server, &t.key).await;
    create(&mut a, below(&t, percent("50"))).await;
    let mut r = ReservationServiceClient::with_interceptor(server.channel().await, Key::bearer(&t.key));
    let hold = |request_id: &str, ttl: Option<prost_types::Duration>| pb::ReserveUsageRequest {
        request_id: request_id.into(),
        customer: billing::proto::customer_id(t.customer_id.clone()),
        product: Some(pb::reserve_usage_request::Product::ProductCode("CREED".into())),
        quantity: "1".into(),
        rated_amount: "60".into(),
        ttl,
        ..Default::default()
    };

    let held = r.reserve_usage(hold("r1", None)).await.unwrap().into_inner().reservation.unwrap();
    assert_eq!(crossings(&server, &t).await, [(LOW, "40".to_owned())], "40 of 100 available: below 50 %");
    r.release_reservation(pb::ReleaseReservationRequest { reservation_id: held.id }).await.unwrap();
    assert_eq!(crossings(&server, &t).await.last(), Some(&(RECOVERED, "100".to_owned())));

    let short = Some(prost_types::Duration { seconds: 0, nanos: 50_000_000 });
    r.reserve_usage(hold("r2", short)).await.unwrap();
    let (server_ref, t_ref) = (&server, &t);
    wait_until(
        "the expiry recovers the alert",
        || async move { crossings(server_ref, t_ref).await.len() == 4 },
    )
    .await;
    let seen: Vec<_> = crossings(&server, &t).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(seen, [LOW, RECOVERED, LOW, RECOVERED]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_made_below_its_threshold_starts_in_alarm_and_bad_ones_are_refused() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut a = alerts(&server, &t.key).await;
    let alert = create(&mut a, below(&t, amount("10"))).await;
    assert_eq!((alert.status(), alert.available.as_str()), (pb::AlertStatus::Alarm, "0"));
    assert_eq!(crossings(&server, &t).await, [(LOW, "0".to_owned())]);

    let too_much =
        expect_code(a.create_balance_alert(below(&t, percent("150"))).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&too_much), ["threshold_percent"]);
    let none = pb::CreateBalanceAlertRequest { threshold: None, ..below(&t, amount("1")) };
    assert_eq!(
        bad_fields(&expect_code(a.create_balance_alert(none).await, Code::InvalidArgument)),
        ["threshold_amount"]
    );
    let junk = expect_code(a.create_balance_alert(below(&t, amount("ten"))).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&junk), ["threshold_amount"]);
    let stranger = pb::CreateBalanceAlertRequest {
        customer: billing::proto::customer_id(uuid::Uuid::now_v7().to_string()),
        ..below(&t, amount("1"))
    };
    expect_code(a.create_balance_alert(stranger).await, Code::NotFound);

    a.delete_balance_alert(pb::DeleteBalanceAlertRequest { alert_id: alert.id.clone() }).await.unwrap();
    assert!(states(&mut a, &t).await.balance_alerts.is_empty());
    expect_code(
        a.delete_balance_alert(pb::DeleteBalanceAlertRequest { alert_id: alert.id }).await,
        Code::NotFound,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_warnings_are_in_alarm_since_their_threshold_was_crossed_in_the_window() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(
        &server,
        &t,
        pb::AllowanceLimits {
            accumulated_maximum_rated_amount_per_day: Some("100".into()),
            accumulated_maximum_rated_amount_per_month: Some("1000".into()),
            warning_thresholds: vec!["50".into()],
            ..Default::default()
        },
    )
    .await;
    let mut a = alerts(&server, &t.key).await;
    let fresh = states(&mut a, &t).await.limit_alerts;
    assert_eq!(fresh.len(), 2);
    assert!(fresh.iter().all(|l| l.status() == pb::AlertStatus::Ok && l.state_change_time.is_none()));

    let mut u = usage_client(&server, &t.key).await;
    record(&mut u, event(&t, "e1", "CREED", "1", "60")).await.unwrap();
    let now = states(&mut a, &t).await.limit_alerts;
    let day = now.iter().find(|l| limit_of(&l.limit_ref).3 == pb::LimitPeriod::Day).unwrap();
    assert_eq!(
        (day.status(), day.threshold_percent.as_str(), day.used.as_str()),
        (pb::AlertStatus::Alarm, "50", "60")
    );
    assert!(day.state_change_time.is_some());
    let month = now.iter().find(|l| limit_of(&l.limit_ref).3 == pb::LimitPeriod::Month).unwrap();
    assert_eq!(month.status(), pb::AlertStatus::Ok, "60 of 1,000 is below 50 %");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_usage_on_two_instances_announces_one_crossing() {
    let a = TestServer::start().await;
    let b = TestServer::start_on(a.db.clone()).await;
    let t = Tenant::create(&a, "Acme").await;
    let mut cc = commits(&a, &t.key).await;
    create_commit(&mut cc, prepaid(&t, "100", "1", long_ago(), far_ahead())).await;
    create(&mut alerts(&a, &t.key).await, below(&t, amount("50"))).await;

    let start = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut u = usage_client(if i % 2 == 0 { &a } else { &b }, &t.key).await;
        let e = event(&t, &format!("e{i}"), "CREED", "1", "5");
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            record(&mut u, e).await.expect("record")
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Concurrent calls may share a transaction: the crossing is announced once, with
    // what was available when the transaction that crossed committed.
    let seen = crossings(&a, &t).await;
    assert_eq!(seen.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [LOW], "one crossing: {seen:?}");
    assert!(seen[0].1.parse::<rust_decimal::Decimal>().unwrap() < rust_decimal::Decimal::from(50));
}
