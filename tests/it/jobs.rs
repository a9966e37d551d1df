//! Every background job does each piece of its work exactly once with four instances on
//! one database: segment closing, commitment evaluation, reservation expiry and feed
//! pruning, each run by all four at once (while their own timers run them too).

use std::sync::Arc;

use billing::proto::v1 as pb;
use chrono::{Duration, Utc};

use crate::commitments::{monthly_spend, months_ago};
use crate::support::fixtures::{
    Tenant, commitments_client, commits, create_commit, days_from_today, far_ahead, list_violations, prepaid,
};
use crate::support::server::{Key, accepting_old_usage};
use crate::support::{TestServer, wait_until};

/// Every job's entry point on every instance, all at once.
async fn run_every_job_everywhere(instances: &[TestServer]) {
    let runs = instances.iter().map(|s| {
        let app = s.app.clone();
        async move {
            let (closed, evaluated, expired) = tokio::join!(
                app.close_due_segments(),
                app.evaluate_due_commitments(),
                app.expire_due_reservations()
            );
            closed.expect("closing segments");
            evaluated.expect("evaluating commitments");
            expired.expect("expiring reservations");
        }
    });
    futures::future::join_all(runs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_instances_running_every_job_at_once_do_each_piece_of_work_once() {
    let first = TestServer::start_accepting_old_usage().await;
    let db = Arc::clone(&first.db);
    let mut instances = vec![first];
    for _ in 0..3 {
        instances.push(TestServer::start_with_policy(Arc::clone(&db), accepting_old_usage()).await);
    }
    let server = &instances[0];
    let t = Tenant::create(server, "Acme").await;

    // A prepaid segment that ended two days ago: its balance expires, once.
    let mut c = commits(server, &t.key).await;
    let ended =
        create_commit(&mut c, prepaid(&t, "50", "1", days_from_today(-30), days_from_today(-2))).await;
    // A commitment whose first two months passed without spend: a shortfall each.
    let mut cm = commitments_client(server, &t.key).await;
    let commitment =
        crate::commitments::create(&mut cm, monthly_spend(&t, "100", months_ago(2), far_ahead())).await;
    // A hold of 50 ms: it expires, once.
    let mut r = pb::reservation_service_client::ReservationServiceClient::with_interceptor(
        server.channel().await,
        Key::bearer(&t.key),
    );
    let hold = r
        .reserve_usage(pb::ReserveUsageRequest {
            request_id: "hold-1".into(),
            customer: billing::proto::customer_id(t.customer_id.clone()),
            product: Some(pb::reserve_usage_request::Product::ProductCode("CREED".into())),
            quantity: "1".into(),
            rated_amount: "5".into(),
            allow_overage: true,
            ttl: Some(prost_types::Duration { seconds: 0, nanos: 50_000_000 }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .reservation
        .unwrap();
    let expires = hold.expire_time.unwrap();
    wait_until("the hold's expiry has passed", || {
        let past = Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
            > expires.seconds * 1_000_000_000 + i64::from(expires.nanos);
        async move { past }
    })
    .await;

    run_every_job_everywhere(&instances).await;
    run_every_job_everywhere(&instances).await;

    let expiries = c
        .list_commit_ledger(pb::ListCommitLedgerRequest {
            commit_id: ended.id.clone(),
            kind: pb::LedgerEntryKind::Expiry.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(expiries.len(), 1, "one expiry of the ended segment: {expiries:?}");
    assert_eq!(expiries[0].running_balance, "0");

    let compensations = cm
        .list_compensations(pb::ListCompensationsRequest {
            commitment_id: commitment.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .compensations;
    let periods: std::collections::BTreeSet<_> =
        compensations.iter().map(|c| c.period_start.map(|t| t.seconds)).collect();
    assert!(!compensations.is_empty(), "the ended months were evaluated");
    assert_eq!(periods.len(), compensations.len(), "one compensation per period: {compensations:?}");
    let kinds = vec![pb::ViolationKind::CommitmentShortfall.into()];
    let shortfalls =
        list_violations(server, &t.key, pb::ListViolationsRequest { kinds, ..Default::default() }).await;
    assert_eq!(shortfalls.len(), compensations.len(), "one violation per shortfall");

    let held = r
        .get_reservation(pb::GetReservationRequest { reservation_id: hold.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .reservation
        .unwrap();
    assert_eq!(held.state(), pb::ReservationState::Expired);
    let balance = r
        .get_customer_balance(pb::GetCustomerBalanceRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balance.open_reservations, 0, "the hold was released once");

    // Pruning: everything written so far is past a cutoff a day ahead; four pruners at
    // once remove each violation once between them, and the feed is empty after.
    let before =
        list_violations(server, &t.key, pb::ListViolationsRequest { page_size: 1000, ..Default::default() })
            .await
            .len();
    assert!(before > 0);
    let cutoff = Utc::now() + Duration::days(1);
    let pruned: usize = futures::future::join_all(instances.iter().map(|s| s.app.prune_violations(cutoff)))
        .await
        .into_iter()
        .map(|n| n.expect("pruning").violations)
        .sum();
    assert_eq!(pruned, before, "each violation pruned once");
    let after = list_violations(server, &t.key, pb::ListViolationsRequest::default()).await;
    assert!(after.is_empty(), "{after:?}");

    // Months ahead: with one missing, four instances making months at once make it once.
    server.app.make_months_ahead().await.expect("every month ahead in place");
    let mut owner = server.db.connect();
    use diesel::connection::SimpleConnection as _;
    let ahead = (Utc::now() + Duration::days(80)).format("usage_events_y%Ym%m").to_string();
    owner.batch_execute(&format!("DROP TABLE {ahead}")).unwrap();
    let made: Vec<String> = futures::future::join_all(instances.iter().map(|s| s.app.make_months_ahead()))
        .await
        .into_iter()
        .flat_map(|m| m.expect("making months"))
        .collect();
    assert_eq!(made, [ahead], "the missing month made once among four instances");
}
