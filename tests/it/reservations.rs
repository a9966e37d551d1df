//! ReservationService: holds counted by every decision, grants bounded by limits and
//! balances, commits recorded as usage, releases and expiries ending holds, idempotency,
//! customer balances, and the invariant under concurrent callers on two instances.

use crate::support::limit_of;
use std::sync::Arc;

use billing::proto::v1 as pb;
use billing::proto::v1::reservation_service_client::ReservationServiceClient;
use billing::proto::v1::usage_service_client::UsageServiceClient;
use rust_decimal::Decimal;
use tonic::Code;

use crate::support::fixtures::{
    Tenant, apply, commits, create_commit, event, far_ahead, long_ago, prepaid, record, test_now, ts, usage,
    usage_client,
};
use crate::support::server::{Authed, Key, test_server_config};
use crate::support::{TestServer, bad_fields, expect_code, reason, wait_until};
use crate::usage::set_limits;

async fn client(server: &TestServer, key: &str) -> ReservationServiceClient<Authed> {
    ReservationServiceClient::with_interceptor(server.channel().await, Key::bearer(key))
}

/// A request to hold `quantity` and `amount` of CREED for the tenant's customer.
fn ask(t: &Tenant, request_id: &str, quantity: &str, amount: &str) -> pb::ReserveUsageRequest {
    pb::ReserveUsageRequest {
        request_id: request_id.into(),
        customer: billing::proto::customer_id(t.customer_id.clone()),
        product: Some(pb::reserve_usage_request::Product::ProductCode("CREED".into())),
        quantity: quantity.into(),
        rated_amount: amount.into(),
        allow_overage: true,
        ..Default::default()
    }
}

fn daily_usage(max: &str) -> pb::AllowanceLimits {
    pb::AllowanceLimits { accumulated_maximum_usage_per_day: Some(max.into()), ..Default::default() }
}

async fn reserve(
    c: &mut ReservationServiceClient<Authed>,
    req: pb::ReserveUsageRequest,
) -> pb::ReserveUsageResponse {
    c.reserve_usage(req).await.expect("reserve").into_inner()
}

fn decision(r: &pb::ReserveUsageResponse) -> pb::ReservationDecision {
    r.decision()
}

fn granted(r: &pb::ReserveUsageResponse) -> (String, String) {
    let res = r.reservation.as_ref().unwrap();
    (res.granted_quantity.clone(), res.granted_rated_amount.clone())
}

fn id(r: &pb::ReserveUsageResponse) -> String {
    r.reservation.as_ref().unwrap().id.clone()
}

async fn balance(c: &mut ReservationServiceClient<Authed>, t: &Tenant) -> pb::CreditTypeBalance {
    let b = c
        .get_customer_balance(pb::GetCustomerBalanceRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            at: None,
        })
        .await
        .expect("balance")
        .into_inner();
    b.balances.into_iter().find(|b| b.credit_type == "USD").unwrap_or_default()
}

async fn commit(
    c: &mut ReservationServiceClient<Authed>,
    reservation: &str,
    event_id: &str,
    quantity: &str,
    amount: &str,
) -> Result<pb::CommitReservationResponse, tonic::Status> {
    c.commit_reservation(pb::CommitReservationRequest {
        reservation_id: reservation.into(),
        event_id: event_id.into(),
        quantity: quantity.into(),
        rated_amount: amount.into(),
        timestamp: None,
    })
    .await
    .map(|r| r.into_inner())
}

async fn release(
    c: &mut ReservationServiceClient<Authed>,
    reservation: &str,
) -> Result<pb::ReleaseReservationResponse, tonic::Status> {
    c.release_reservation(pb::ReleaseReservationRequest { reservation_id: reservation.into() })
        .await
        .map(|r| r.into_inner())
}

async fn used_today(server: &TestServer, t: &Tenant) -> String {
    let report = usage_client(server, &t.key)
        .await
        .get_allowance_usage(pb::GetAllowanceUsageRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            at: None,
        })
        .await
        .expect("allowance usage")
        .into_inner();
    let day_usage = |l: &&pb::AllowanceUsage| {
        let (_, _, measure, period) = limit_of(&l.limit_ref);
        (measure, period) == (pb::LimitMeasure::Usage, pb::LimitPeriod::Day)
    };
    report.usage.iter().find(day_usage).map(|l| l.used.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_reservation_counts_as_used_by_usage_and_by_other_reservations() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_usage("10")).await;
    let mut c = client(&server, &t.key).await;
    let mut u = usage_client(&server, &t.key).await;

    let first = reserve(&mut c, ask(&t, "r1", "6", "0")).await;
    assert_eq!(decision(&first), pb::ReservationDecision::Granted);
    assert_eq!(first.reservation.as_ref().unwrap().state(), pb::ReservationState::Open);
    // 6 held of 10: 5 more is past the maximum for usage and for a whole reservation.
    let check = u
        .check_usage(pb::CheckUsageRequest { event: Some(event(&t, "", "CREED", "5", "0")) })
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    assert_eq!(check.decision(), pb::UsageDecision::Blocked);
    assert_eq!(check.checks[0].used, "11", "the hold is in the day's total");
    let whole = reserve(&mut c, ask(&t, "r2", "5", "0")).await;
    assert_eq!(decision(&whole), pb::ReservationDecision::Denied);
    assert_eq!(whole.reservation.as_ref().unwrap().state(), pb::ReservationState::Denied);
    let part =
        reserve(&mut c, pb::ReserveUsageRequest { allow_partial: true, ..ask(&t, "r3", "5", "0") }).await;
    assert_eq!(decision(&part), pb::ReservationDecision::Partial);
    assert_eq!(granted(&part).0, "4");
    let over = record(&mut u, event(&t, "e1", "CREED", "1", "0")).await.unwrap();
    assert_eq!(over.decision(), pb::UsageDecision::Blocked, "10 of 10 are held");

    // Releasing gives the headroom back; nothing was ever written into the totals.
    let released = release(&mut c, &id(&first)).await.unwrap();
    assert!(!released.already_settled);
    assert_eq!(released.reservation.unwrap().state(), pb::ReservationState::Released);
    let after = record(&mut u, event(&t, "e2", "CREED", "6", "0")).await.unwrap();
    assert_eq!(after.decision(), pb::UsageDecision::Allowed);
    assert_eq!(used_today(&server, &t).await, "6", "only recorded usage is in the stored totals");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_records_what_was_used_and_ends_the_hold_in_one_step() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut cc = commits(&server, &t.key).await;
    let prepaid_commit = create_commit(&mut cc, prepaid(&t, "50", "1", long_ago(), far_ahead())).await;
    let mut c = client(&server, &t.key).await;

    let before = balance(&mut c, &t).await;
    assert_eq!(
        (before.balance.as_str(), before.reserved.as_str(), before.available.as_str()),
        ("50", "0", "50")
    );
    let r =
        reserve(&mut c, pb::ReserveUsageRequest { allow_overage: false, ..ask(&t, "r1", "3", "30") }).await;
    assert_eq!((decision(&r), r.coverable_amount.as_str()), (pb::ReservationDecision::Granted, "30"));
    let held = balance(&mut c, &t).await;
    assert_eq!((held.balance.as_str(), held.reserved.as_str(), held.available.as_str()), ("50", "30", "20"));
    assert_eq!(held.sources[0].commit_id, prepaid_commit.id);
    assert_eq!(held.sources[0].reserved, "30");

    // Less was used than reserved: the event draws 12 and the rest is free again.
    let done = commit(&mut c, &id(&r), "call-1", "1", "12").await.unwrap();
    let outcome = done.outcome.unwrap();
    assert_eq!(outcome.drawdowns[0].amount, "12");
    assert_eq!(outcome.drawdowns[0].remaining_after, "38", "the hold no longer counts");
    let res = done.reservation.unwrap();
    assert_eq!((res.state(), res.event_id.as_str()), (pb::ReservationState::Committed, "call-1"));
    let after = balance(&mut c, &t).await;
    assert_eq!(
        (after.balance.as_str(), after.reserved.as_str(), after.available.as_str()),
        ("38", "0", "38")
    );
    let listed = usage_client(&server, &t.key)
        .await
        .list_usage_events(pb::ListUsageEventsRequest {
            customer: billing::proto::customer_id(t.customer_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.events.len(), 1);
    assert_eq!(
        (listed.events[0].event_id.as_str(), listed.events[0].rated_amount.as_str()),
        ("call-1", "12")
    );

    // A repeat is the event's replay; another event, or a release, is refused.
    let again = commit(&mut c, &id(&r), "call-1", "1", "12").await.unwrap();
    assert!(again.outcome.unwrap().replayed);
    let other = expect_code(commit(&mut c, &id(&r), "call-2", "1", "12").await, Code::FailedPrecondition);
    assert_eq!(reason(&other), "RESERVATION_NOT_OPEN");
    expect_code(release(&mut c, &id(&r)).await, Code::FailedPrecondition);
    assert_eq!(balance(&mut c, &t).await.balance, "38", "nothing drawn twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_overage_the_balance_bounds_the_grant_and_usage_cannot_take_what_is_held() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut cc = commits(&server, &t.key).await;
    create_commit(&mut cc, prepaid(&t, "50", "1", long_ago(), far_ahead())).await;
    let mut c = client(&server, &t.key).await;
    let strict = |req: pb::ReserveUsageRequest| pb::ReserveUsageRequest { allow_overage: false, ..req };

    let part =
        reserve(&mut c, pb::ReserveUsageRequest { allow_partial: true, ..strict(ask(&t, "r1", "8", "80")) })
            .await;
    assert_eq!(
        (decision(&part), granted(&part)),
        (pb::ReservationDecision::Partial, ("5".into(), "50".into()))
    );
    let none = reserve(&mut c, strict(ask(&t, "r2", "1", "10"))).await;
    assert_eq!(decision(&none), pb::ReservationDecision::Denied, "the whole balance is held");
    let overage = reserve(&mut c, ask(&t, "r3", "1", "10")).await;
    assert_eq!(decision(&overage), pb::ReservationDecision::Granted, "overage allowed: nothing bounds it");

    // Usage recorded meanwhile draws only what no hold covers: here nothing.
    let mut u = usage_client(&server, &t.key).await;
    let direct = record(&mut u, event(&t, "e1", "CREED", "1", "30")).await.unwrap();
    assert!(direct.drawdowns.is_empty());
    assert_eq!(direct.overage, "30");
    release(&mut c, &id(&part)).await.unwrap();
    let freed = record(&mut u, event(&t, "e2", "CREED", "1", "30")).await.unwrap();
    assert_eq!(freed.drawdowns[0].amount, "30", "released: the balance is drawable again");
    // The overage-allowed hold now takes 10 of what is left; the draw above wrote the
    // segment with that hold still in it (holds are never written).
    let now = balance(&mut c, &t).await;
    assert_eq!((now.balance.as_str(), now.reserved.as_str(), now.available.as_str()), ("20", "10", "10"));
    release(&mut c, &id(&overage)).await.unwrap();
    assert_eq!(balance(&mut c, &t).await.available, "20");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_drawdown_cannot_take_what_a_reservation_holds() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut cc = commits(&server, &t.key).await;
    create_commit(&mut cc, prepaid(&t, "50", "1", long_ago(), far_ahead())).await;
    let mut c = client(&server, &t.key).await;
    reserve(&mut c, pb::ReserveUsageRequest { allow_overage: false, ..ask(&t, "r1", "1", "40") }).await;

    let drawn = apply(&mut cc, &t, "d1", usage(&t.vod, "30")).await.unwrap();
    assert_eq!((drawn.drawdowns[0].amount.as_str(), drawn.overage.as_str()), ("10", "20"));
    let b = balance(&mut c, &t).await;
    assert_eq!((b.balance.as_str(), b.reserved.as_str(), b.available.as_str()), ("40", "40", "0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_request_id_returns_the_first_answer_and_another_payload_is_already_exists() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_usage("10")).await;
    let mut c = client(&server, &t.key).await;

    let first = reserve(&mut c, ask(&t, "r1", "6", "0")).await;
    let again = reserve(&mut c, ask(&t, "r1", "6", "0")).await;
    assert!(again.replayed && !first.replayed);
    assert_eq!(
        (id(&again), decision(&again), granted(&again)),
        (id(&first), decision(&first), granted(&first))
    );
    let other = expect_code(c.reserve_usage(ask(&t, "r1", "7", "0")).await, Code::AlreadyExists);
    assert_eq!(reason(&other), "ALREADY_EXISTS");
    // The repeat held nothing more: 4 are still free.
    let rest = reserve(&mut c, ask(&t, "r2", "4", "0")).await;
    assert_eq!(decision(&rest), pb::ReservationDecision::Granted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_adds_what_fits_moves_the_expiry_and_replays_by_request_id() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_usage("10")).await;
    let mut c = client(&server, &t.key).await;
    let r = reserve(&mut c, ask(&t, "r1", "4", "0")).await;
    let first_expiry = r.reservation.as_ref().unwrap().expire_time.unwrap();
    let extend = |request_id: &str, quantity: &str, partial: bool| pb::ExtendReservationRequest {
        reservation_id: id(&r),
        request_id: request_id.into(),
        additional_quantity: quantity.into(),
        ttl: Some(prost_types::Duration { seconds: 3600, nanos: 0 }),
        allow_partial: partial,
        ..Default::default()
    };

    let more = c.extend_reservation(extend("x1", "5", false)).await.unwrap().into_inner();
    assert_eq!(more.decision(), pb::ReservationDecision::Granted);
    let res = more.reservation.clone().unwrap();
    assert_eq!((res.granted_quantity.as_str(), res.requested_quantity.as_str()), ("9", "9"));
    assert!(res.expire_time.unwrap().seconds > first_expiry.seconds + 3000, "an hour from now");
    let capped = c.extend_reservation(extend("x2", "5", true)).await.unwrap().into_inner();
    assert_eq!(
        (capped.decision(), capped.granted_quantity.as_str()),
        (pb::ReservationDecision::Partial, "1")
    );
    let denied = c.extend_reservation(extend("x3", "1", true)).await.unwrap().into_inner();
    assert_eq!(denied.decision(), pb::ReservationDecision::Denied);
    assert_eq!(denied.reservation.unwrap().granted_quantity, "10", "a denied extension changes nothing");

    let replay = c.extend_reservation(extend("x1", "5", false)).await.unwrap().into_inner();
    assert!(replay.replayed);
    assert_eq!(
        (replay.decision(), replay.granted_quantity.as_str()),
        (pb::ReservationDecision::Granted, "5")
    );
    assert_eq!(replay.reservation.unwrap().granted_quantity, "10", "the replay held nothing more");
    expect_code(c.extend_reservation(extend("x1", "6", false)).await, Code::AlreadyExists);

    release(&mut c, &id(&r)).await.unwrap();
    let late = expect_code(c.extend_reservation(extend("x4", "1", false)).await, Code::FailedPrecondition);
    assert_eq!(reason(&late), "RESERVATION_NOT_OPEN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extended_expiry_keeps_the_hold_past_the_first_one() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_usage("10")).await;
    let mut c = client(&server, &t.key).await;
    // The extension must reach the reservation before its short expiry: on a machine
    // too busy for that, try again with a longer one.
    let mut seconds = 1;
    let first_expiry = loop {
        let short = pb::ReserveUsageRequest {
            ttl: Some(prost_types::Duration { seconds, nanos: 0 }),
            ..ask(&t, &format!("r{seconds}"), "6", "0")
        };
        let r = reserve(&mut c, short).await;
        let extended = c
            .extend_reservation(pb::ExtendReservationRequest {
                reservation_id: id(&r),
                request_id: format!("x{seconds}"),
                ttl: Some(prost_types::Duration { seconds: 3600, nanos: 0 }),
                ..Default::default()
            })
            .await;
        match extended {
            Ok(_) => break r.reservation.as_ref().unwrap().expire_time.unwrap(),
            Err(s) if s.code() == Code::FailedPrecondition && seconds < 64 => seconds *= 4,
            Err(s) => panic!("extend: {s}"),
        }
    };
    wait_until("the first expiry has passed", || async move {
        chrono::Utc::now().timestamp() > first_expiry.seconds + 1
    })
    .await;
    let mut u = usage_client(&server, &t.key).await;
    let check = u
        .check_usage(pb::CheckUsageRequest { event: Some(event(&t, "", "CREED", "5", "0")) })
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    assert_eq!(check.checks[0].used, "11", "the extended hold still counts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_past_its_expiry_holds_nothing_is_marked_by_the_job_and_can_still_be_committed() {
    let mut config = test_server_config();
    config.jobs.reservation_expiry_interval = std::time::Duration::from_millis(100);
    let server = TestServer::start_with(Arc::new(crate::support::db::TestDb::create()), config, |c| c).await;
    server.wait_serving().await;
    let t = Tenant::create(&server, "Acme").await;
    set_limits(&server, &t, daily_usage("10")).await;
    let mut c = client(&server, &t.key).await;
    let short = pb::ReserveUsageRequest {
        ttl: Some(prost_types::Duration { seconds: 0, nanos: 50_000_000 }),
        ..ask(&t, "r1", "10", "0")
    };
    let r = reserve(&mut c, short).await;
    assert_eq!(decision(&r), pb::ReservationDecision::Granted);

    let db = server.db.clone();
    let reservation = id(&r);
    wait_until("the expiry job marks the reservation", || {
        let db = db.clone();
        let reservation = reservation.clone();
        async move {
            use diesel::prelude::*;
            let mut conn = db.connect();
            diesel::sql_query(format!(
                "SELECT 1 FROM usage_reservations WHERE id = '{reservation}' AND state = 'EXPIRED' AND settled_at = expires_at"
            ))
            .execute(&mut conn)
            .unwrap()
                == 1
        }
    })
    .await;
    let read =
        c.get_reservation(pb::GetReservationRequest { reservation_id: id(&r) }).await.unwrap().into_inner();
    assert_eq!(read.reservation.unwrap().state(), pb::ReservationState::Expired);
    let whole = reserve(&mut c, ask(&t, "r2", "10", "0")).await;
    assert_eq!(decision(&whole), pb::ReservationDecision::Granted, "the expired hold is gone");
    release(&mut c, &id(&whole)).await.unwrap();

    // The usage it was for happened: committing records it, judged as any event.
    let done = commit(&mut c, &id(&r), "late-call", "3", "0").await.unwrap();
    assert_eq!(done.outcome.unwrap().decision(), pb::UsageDecision::Allowed);
    assert_eq!(done.reservation.unwrap().state(), pb::ReservationState::Committed);
    let again = release(&mut c, &id(&whole)).await.unwrap();
    assert!(again.already_settled, "releasing twice changes nothing");
    assert_eq!(used_today(&server, &t).await, "3", "the expiry neither lost nor added anything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_every_bad_field() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = client(&server, &t.key).await;
    let bad = pb::ReserveUsageRequest {
        request_id: String::new(),
        quantity: "-1".into(),
        ttl: Some(prost_types::Duration { seconds: 100 * 24 * 3600, nanos: 0 }),
        ..ask(&t, "", "", "0")
    };
    let status = expect_code(c.reserve_usage(bad).await, Code::InvalidArgument);
    let mut fields = bad_fields(&status);
    fields.sort();
    assert_eq!(fields, ["quantity", "request_id", "ttl"]);
    let status = expect_code(
        c.commit_reservation(pb::CommitReservationRequest {
            reservation_id: "nope".into(),
            event_id: String::new(),
            quantity: "x".into(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
    );
    let mut fields = bad_fields(&status);
    fields.sort();
    assert_eq!(fields, ["event_id", "quantity", "reservation_id"]);
    let negative = pb::ExtendReservationRequest {
        reservation_id: uuid::Uuid::now_v7().to_string(),
        request_id: "x1".into(),
        ttl: Some(prost_types::Duration { seconds: 0, nanos: i32::MIN }),
        ..Default::default()
    };
    let status = expect_code(c.extend_reservation(negative).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["ttl"]);
    let missing = uuid::Uuid::now_v7().to_string();
    expect_code(release(&mut c, &missing).await, Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_list_by_customer_page_by_page_and_open_only() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = client(&server, &t.key).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(id(&reserve(&mut c, ask(&t, &format!("r{i}"), "1", "0")).await));
    }
    release(&mut c, &ids[1]).await.unwrap();
    let list = |open_only: bool, page_token: String| pb::ListReservationsRequest {
        customer: billing::proto::customer_id(t.customer_id.clone()),
        open_only,
        page_size: 2,
        page_token,
    };
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = c.list_reservations(list(false, token)).await.unwrap().into_inner();
        seen.extend(page.reservations.into_iter().map(|r| r.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ids, "every reservation once, oldest first");
    let open = c
        .list_reservations(pb::ListReservationsRequest { page_size: 10, ..list(true, String::new()) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(open.reservations.len(), 4, "the released one is not open");
}

fn dec(s: &str) -> Decimal {
    s.parse().expect("a decimal")
}

/// Runs `n` calls at once, half on each instance, all released together.
async fn at_once<T, F, Fut>(a: &TestServer, b: &TestServer, key: &str, n: usize, call: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, ReservationServiceClient<Authed>, UsageServiceClient<Authed>) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let server = if i % 2 == 0 { a } else { b };
        let call = call(i, client(server, key).await, usage_client(server, key).await);
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            call.await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

/// The invariant of credit control, on two instances at once: concurrent reservations
/// never hold more than the maximum and the balance allow; with commits, releases and
/// direct usage mixed in, holds plus usage stay within them; once every hold has ended
/// the totals and balance are those of the recorded usage alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reservations_on_two_instances_never_grant_past_the_maximum_or_the_balance() {
    let a = TestServer::start().await;
    let b = TestServer::start_on(a.db.clone()).await;
    let t = Tenant::create(&a, "Acme").await;
    set_limits(&a, &t, daily_usage("100")).await;
    let mut cc = commits(&a, &t.key).await;
    create_commit(&mut cc, prepaid(&t, "60", "1", long_ago(), far_ahead())).await;
    let customer = t.customer_id.clone();
    let hold =
        move |request_id: String, quantity: &str, amount: &str, partial: bool| pb::ReserveUsageRequest {
            request_id,
            customer: billing::proto::customer_id(customer.clone()),
            product: Some(pb::reserve_usage_request::Product::ProductCode("CREED".into())),
            quantity: quantity.into(),
            rated_amount: amount.into(),
            allow_partial: partial,
            ..Default::default()
        };

    // Half ask for 7 units (16 x 7 = 112 of 100), half for 5 of the balance (80 of 60).
    let first = at_once(&a, &b, &t.key, 32, |i, mut c, _| {
        let req = if i % 2 == 0 {
            hold(format!("q{i}"), "7", "0", i % 4 == 0)
        } else {
            hold(format!("a{i}"), "0", "5", false)
        };
        async move { c.reserve_usage(req).await.expect("reserve").into_inner().reservation.unwrap() }
    })
    .await;
    let quantity: Decimal = first.iter().map(|r| dec(&r.granted_quantity)).sum();
    let amount: Decimal = first.iter().map(|r| dec(&r.granted_rated_amount)).sum();
    assert!(quantity <= dec("100") && quantity > dec("93"), "units held: {quantity}");
    assert_eq!(amount, dec("60"), "exactly the balance is held");

    // Every hold is settled or released while usage comes in on both instances.
    let second = at_once(&a, &b, &t.key, 32, |i, mut c, mut u| {
        let r = first[i].clone();
        let event =
            pb::UsageEvent { timestamp: ts(test_now()), ..event(&t, &format!("d{i}"), "CREED", "1", "1") };
        async move {
            let mut used = (Decimal::ZERO, Decimal::ZERO);
            if r.state() == pb::ReservationState::Open && i % 3 == 0 {
                let done = c
                    .commit_reservation(pb::CommitReservationRequest {
                        reservation_id: r.id.clone(),
                        event_id: format!("c{i}"),
                        quantity: "2".into(),
                        rated_amount: "1".into(),
                        timestamp: None,
                    })
                    .await
                    .expect("commit")
                    .into_inner();
                if done.outcome.unwrap().decision() != pb::UsageDecision::Blocked {
                    used = (used.0 + Decimal::TWO, used.1 + Decimal::ONE);
                }
            } else {
                c.release_reservation(pb::ReleaseReservationRequest { reservation_id: r.id.clone() })
                    .await
                    .expect("release");
            }
            let direct = u.record_usage(pb::RecordUsageRequest { event: Some(event) }).await.expect("record");
            if direct.into_inner().outcome.unwrap().decision() != pb::UsageDecision::Blocked {
                used = (used.0 + Decimal::ONE, used.1 + Decimal::ONE);
            }
            used
        }
    })
    .await;
    let used = second.iter().fold((Decimal::ZERO, Decimal::ZERO), |s, u| (s.0 + u.0, s.1 + u.1));

    let mut c = client(&a, &t.key).await;
    let settled = balance(&mut c, &t).await;
    assert_eq!(settled.reserved, "0", "every hold has ended");
    assert_eq!(dec(&used_today(&a, &t).await), used.0, "the day's total is the recorded usage alone");
    let drawn = dec("60") - dec(&settled.balance);
    assert!(drawn <= used.1, "the balance was drawn by recorded usage only ({drawn} of {})", used.1);

    // And a last wave holds what is left, never more.
    let last = at_once(&a, &b, &t.key, 16, |i, mut c, _| {
        let req = hold(format!("z{i}"), "9", "9", true);
        async move { c.reserve_usage(req).await.expect("reserve").into_inner().reservation.unwrap() }
    })
    .await;
    let quantity: Decimal = last.iter().map(|r| dec(&r.granted_quantity)).sum();
    let amount: Decimal = last.iter().map(|r| dec(&r.granted_rated_amount)).sum();
    assert!(quantity + used.0 <= dec("100"), "held {quantity} + used {} within the maximum", used.0);
    assert!(amount <= dec(&settled.balance), "held {amount} within the balance {}", settled.balance);
}
