//! Faults: connections killed mid-transaction or while idle in the pool, an exhausted
//! pool, conflicts between transactions. Each proves nothing is lost or counted twice
//! and the service recovers by itself.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use billing::db::{Db, DbConfig, DbError};
use billing::proto::v1 as pb;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Numeric};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

use crate::support::fixtures::{Tenant, commits, create_commit, day, event, prepaid, record, usage_client};
use crate::support::server::{test_db_config, test_server_config};
use crate::support::{TestDb, TestServer};

#[derive(QueryableByName)]
struct Sums {
    #[diesel(sql_type = BigInt)]
    events: i64,
    #[diesel(sql_type = Numeric)]
    day_total: rust_decimal::Decimal,
    #[diesel(sql_type = Numeric)]
    remaining: rust_decimal::Decimal,
    #[diesel(sql_type = Numeric)]
    drawn: rust_decimal::Decimal,
}

fn sums(db: &TestDb) -> Sums {
    diesel::sql_query(
        "SELECT (SELECT count(*) FROM usage_events) AS events,
                (SELECT coalesce(sum(amount), 0) FROM usage_totals WHERE window_kind = 'DAY') AS day_total,
                (SELECT coalesce(sum(remaining), 0) FROM commit_segments) AS remaining,
                (SELECT coalesce(sum(abs(amount)), 0) FROM commit_ledger WHERE kind = 'DRAWDOWN') AS drawn",
    )
    .get_result(&mut db.connect())
    .unwrap()
}

/// Terminates every other backend of `db` every few milliseconds until `stop`.
fn kill_backends_until(db: Arc<TestDb>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<i64> {
    std::thread::spawn(move || {
        #[derive(QueryableByName)]
        struct Killed {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = db.connect();
        let mut killed = 0;
        while !stop.load(Ordering::Relaxed) {
            let k: Killed = diesel::sql_query(
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                   AND backend_type = 'client backend'",
            )
            .get_result(&mut conn)
            .unwrap();
            killed += k.n;
            std::thread::sleep(Duration::from_millis(100));
        }
        killed
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_killed_mid_burst_lose_nothing_and_count_nothing_twice() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    create_commit(&mut c, prepaid(&t, "100000", "1", day(2020, 1, 1), day(2100, 1, 1))).await;
    let before = sums(&server.db);

    let stop = Arc::new(AtomicBool::new(false));
    let killer = kill_backends_until(Arc::clone(&server.db), Arc::clone(&stop));
    // Built once: a retry must send exactly the same event, timestamp included.
    let all: Vec<Vec<pb::UsageEvent>> = (0..8)
        .map(|client| (0..25).map(|i| event(&t, &format!("{client}-{i}"), "CREED", "1", "2")).collect())
        .collect();
    let mut tasks = Vec::new();
    for events in all.clone() {
        let mut u = usage_client(&server, &t.key).await;
        tasks.push(tokio::spawn(async move {
            let mut failed = Vec::new();
            for e in events {
                match record(&mut u, e.clone()).await {
                    Ok(_) => {}
                    Err(s) => {
                        assert!(
                            matches!(s.code(), Code::Unavailable | Code::Aborted),
                            "a killed connection surfaces as UNAVAILABLE or ABORTED, got {s:?}"
                        );
                        failed.push(e);
                    }
                }
            }
            failed
        }));
    }
    let mut failed = Vec::new();
    for task in tasks {
        failed.extend(task.await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let killed = killer.join().unwrap();
    assert!(killed > 0, "the burst ran while backends were being terminated");

    // The pool recovers by itself: retries of the failed events go through.
    let mut u = usage_client(&server, &t.key).await;
    for e in &failed {
        record(&mut u, e.clone()).await.expect("the retry succeeds once the database is left alone");
    }
    // Every event now has exactly one effect: recording any of them again is a replay.
    for e in all.into_iter().flatten() {
        let again = record(&mut u, e.clone()).await.unwrap();
        assert!(again.replayed, "event {} was recorded exactly once", e.event_id);
    }
    let after = sums(&server.db);
    assert_eq!(after.events - before.events, 200);
    assert_eq!(after.day_total, rust_decimal::Decimal::from(400));
    assert_eq!(before.remaining - after.remaining, rust_decimal::Decimal::from(400));
    assert_eq!(after.drawn, rust_decimal::Decimal::from(400), "the ledger agrees with the balances");
    eprintln!("{killed} backends terminated; {} calls failed and were retried", failed.len());
}

/// Terminates every other client backend of `db` and returns how many, once they have
/// exited (`pg_terminate_backend` with a timeout waits for that).
fn terminate_idle_backends(db: &TestDb) -> i64 {
    #[derive(QueryableByName)]
    struct Killed {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let k: Killed = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 30000)) AS n FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
    )
    .get_result(&mut db.connect())
    .unwrap();
    k.n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_server_closed_while_idle_in_the_pool_are_replaced_without_failing_a_call() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let mut c = commits(&server, &t.key).await;
    create_commit(&mut c, prepaid(&t, "100", "1", day(2020, 1, 1), day(2100, 1, 1))).await;
    let org = server.app.authenticate(&t.key).await.unwrap().org;
    // One connection, so the replacement cannot come from elsewhere in the pool.
    let db = Db::open(&DbConfig { pool_size: 1, ..test_db_config(&server.db.url) }).expect("a pool");
    let select_one = |conn: &mut PgConnection| conn.batch_execute("SELECT 1").map_err(DbError::from);

    db.transaction(org, select_one).await.expect("a first transaction opens the connection");
    assert!(terminate_idle_backends(&server.db) > 0, "the pool's idle connection was terminated");
    db.transaction(org, select_one).await.expect("a transaction replaces the closed connection");
    assert!(terminate_idle_backends(&server.db) > 0);
    db.run(select_one).await.expect("work outside a transaction replaces it too");

    // Through the service: its pool's connections (and the usage path's) were closed too.
    let mut u = usage_client(&server, &t.key).await;
    record(&mut u, event(&t, "before", "CREED", "1", "2")).await.expect("recorded");
    assert!(terminate_idle_backends(&server.db) > 0);
    let after = record(&mut u, event(&t, "after", "CREED", "1", "2")).await;
    assert!(after.is_ok(), "a usage call after its connection was closed while idle: {after:?}");
}

/// A serving server whose pool `pool` shapes (its database is `server.db`), a key of its
/// org, and the test's own connection holding the customers table locked: calls that
/// touch it wait.
async fn server_behind_a_lock(pool: impl FnOnce(DbConfig) -> DbConfig) -> (TestServer, String, PgConnection) {
    let db = Arc::new(TestDb::create());
    // Background jobs tick rarely here: a job waiting for the connections these tests
    // count would pass for a call waiting.
    let hourly = Duration::from_secs(3600);
    let jobs = billing::jobs::JobsConfig {
        segment_close_interval: hourly,
        commitment_evaluation_interval: hourly,
        reservation_expiry_interval: hourly,
        ..Default::default()
    };
    let config = billing::server::ServerConfig { jobs, ..test_server_config() };
    let server = TestServer::start_with(Arc::clone(&db), config, pool).await;
    server.wait_serving().await;
    let (_, key) = server.org("Acme").await;
    let mut blocker = db.connect();
    blocker.batch_execute("BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE").unwrap();
    (server, key, blocker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_fails_the_excess_fast_and_health_still_answers() {
    let (server, key, mut blocker) =
        server_behind_a_lock(|c| DbConfig { pool_size: 2, acquire_timeout: Duration::from_millis(300), ..c })
            .await;
    // Every customer row is held hostage, so calls that get a connection keep it.
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let mut c = futures::executor::block_on(server.customers(&key));
            tokio::spawn(async move {
                let mut req = tonic::Request::new(pb::ListCustomersRequest::default());
                req.set_timeout(Duration::from_secs(3));
                c.list_customers(req).await.map(|_| ()).map_err(|s| s.code())
            })
        })
        .collect();
    // Once both connections are taken (the calls queue behind them), health still
    // answers within its own deadline.
    for _ in 0..400 {
        if server.app.db().pool_state().idle_connections == 0 && server.app.db().pool_state().connections == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut health = HealthClient::new(server.channel().await);
    let mut req = tonic::Request::new(HealthCheckRequest { service: String::new() });
    req.set_timeout(Duration::from_secs(1));
    health.check(req).await.expect("health answers while the pool is exhausted");

    let mut codes = Vec::new();
    for call in calls {
        codes.push(call.await.unwrap());
    }
    let unavailable = codes.iter().filter(|c| **c == Err(Code::Unavailable)).count();
    assert!(unavailable >= 8, "the calls beyond the two connections fail with UNAVAILABLE: {codes:?}");
    assert!(
        // The ones holding a connection end at the caller's deadline (tonic reports the
        // server-side expiry as CANCELLED).
        codes.iter().all(|c| matches!(c, Err(Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled))),
        "no call succeeds behind the lock, none fails otherwise: {codes:?}"
    );

    blocker.batch_execute("ROLLBACK").unwrap();
    let mut c = server.customers(&key).await;
    c.list_customers(pb::ListCustomersRequest::default()).await.expect("recovers once connections free up");
}

/// Two transactions that lock two customers in opposite orders, so PostgreSQL detects
/// a deadlock and aborts one of them.
async fn deadlock(
    db: &Db,
    org: billing::domain::ids::OrgId,
    ids: [uuid::Uuid; 2],
) -> [Result<(), DbError>; 2] {
    let barrier = Arc::new(Barrier::new(2));
    let attempts = Arc::new(AtomicU32::new(0));
    let run = |first: uuid::Uuid, second: uuid::Uuid| {
        let barrier = Arc::clone(&barrier);
        let attempts = Arc::clone(&attempts);
        let db = db.clone();
        let mut mine = 0;
        async move {
            db.transaction(org, move |conn| {
                mine += 1;
                attempts.fetch_add(1, Ordering::SeqCst);
                let touch = |conn: &mut PgConnection, id: uuid::Uuid| {
                    diesel::sql_query("UPDATE customers SET name = name || '.' WHERE id = $1")
                        .bind::<diesel::sql_types::Uuid, _>(id)
                        .execute(conn)
                        .map_err(DbError::from)
                };
                touch(conn, first)?;
                if mine == 1 {
                    barrier.wait();
                }
                touch(conn, second)?;
                Ok(())
            })
            .await
        }
    };
    let (a, b) = tokio::join!(run(ids[0], ids[1]), run(ids[1], ids[0]));
    [a, b]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_is_retried_and_both_transactions_commit_once() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let other = t.another_customer(&server, "ACR2").await;
    let org = server.app.authenticate(&t.key).await.unwrap().org;
    let ids = [t.customer_id.parse().unwrap(), other.parse().unwrap()];
    let db = Db::open(&test_db_config(&server.db.url)).expect("a pool");

    let [a, b] = deadlock(&db, org, ids).await;
    a.expect("first transaction commits");
    b.expect("second transaction commits");
    // Each transaction's effect landed once, the aborted attempt's not at all.
    let names: Vec<String> = billing::db::schema::customers::table
        .select(billing::db::schema::customers::name)
        .load(&mut server.db.connect())
        .unwrap();
    assert!(names.iter().all(|n| n.ends_with("..") && !n.ends_with("...")), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_past_the_retry_budget_are_aborted() {
    let server = TestServer::start().await;
    let t = Tenant::create(&server, "Acme").await;
    let org = server.app.authenticate(&t.key).await.unwrap().org;
    let db = Db::open(&DbConfig { max_retries: 2, ..test_db_config(&server.db.url) }).expect("a pool");
    let attempts = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&attempts);
    // A transaction that always fails to serialize, as PostgreSQL reports it (40001).
    let outcome: Result<(), DbError> = db
        .transaction(org, move |conn| {
            seen.fetch_add(1, Ordering::SeqCst);
            conn.batch_execute(
                "DO $$ BEGIN RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001'; END $$",
            )
            .map_err(DbError::from)
        })
        .await;
    assert!(matches!(outcome, Err(DbError::Conflict(_))), "{outcome:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "one run and two retries, then it gives up");
    let status = tonic::Status::from(billing::app::AppError::from(outcome.unwrap_err()));
    assert_eq!(status.code(), Code::Aborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_deadline_passes_while_it_waits_for_a_connection_changes_nothing() {
    let (server, key, mut blocker) =
        server_behind_a_lock(|c| DbConfig { pool_size: 1, acquire_timeout: Duration::from_secs(60), ..c })
            .await;

    // The only connection is taken by a call that waits on a lock the test holds.
    let mut holder = server.customers(&key).await;
    let holding =
        tokio::spawn(async move { holder.list_customers(pb::ListCustomersRequest::default()).await });
    server.db.wait_for_lock_waiters(1, "the call holding the connection waits on the lock").await;

    // A create whose deadline passes while it waits for that connection. It must reach
    // the pool's queue before its deadline; on a loaded machine it may not, and then the
    // scenario did not happen: it is run again with twice the time.
    let mut timeout = Duration::from_secs(2);
    loop {
        let mut late = server.customers(&key).await;
        let mut req = tonic::Request::new(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                external_id: "LATE".into(),
                name: "Late".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        });
        req.set_timeout(timeout);
        let before = server.app.db().waiting_for_connection();
        let call = tokio::spawn(async move { late.create_customer(req).await });
        crate::support::wait_until("the late call waits for the connection or has ended", || {
            let seen = server.app.db().waiting_for_connection() > before || call.is_finished();
            async move { seen }
        })
        .await;
        let queued = server.app.db().waiting_for_connection() > before;
        let status = call.await.unwrap().expect_err("its deadline passes first");
        assert!(matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled), "{status:?}");
        if queued {
            break;
        }
        timeout *= 2;
    }

    // The connection comes free: the late work is dropped, not run after its caller left.
    blocker.batch_execute("COMMIT").unwrap();
    holding.await.unwrap().expect("the holding call finishes");
    crate::support::wait_until("the late call's work is dropped", || {
        let dropped = server.app.db().expired_before_start() >= 1;
        async move { dropped }
    })
    .await;
    let mut customers = server.customers(&key).await;
    let listed = customers.list_customers(pb::ListCustomersRequest::default()).await.unwrap().into_inner();
    assert!(listed.customers.is_empty(), "nothing was created: {:?}", listed.customers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_is_cancelled_at_its_callers_deadline_and_frees_the_connection() {
    // One connection and a statement timeout of ten minutes: only the caller's deadline
    // can end a statement blocked on the lock the test holds.
    let (server, key, mut blocker) = server_behind_a_lock(|c| DbConfig {
        pool_size: 1,
        acquire_timeout: Duration::from_secs(60),
        statement_timeout: Duration::from_secs(600),
        ..c
    })
    .await;

    let mut c = server.customers(&key).await;
    let mut req = tonic::Request::new(pb::ListCustomersRequest::default());
    req.set_timeout(Duration::from_millis(300));
    let status = c.list_customers(req).await.expect_err("blocked past its deadline");
    assert!(matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled), "{status:?}");

    // With the lock still held, the connection serves another call: the blocked
    // statement was cancelled at its caller's deadline, not at the ten-minute timeout.
    let mut products = server.products(&key).await;
    products.list_products(pb::ListProductsRequest::default()).await.expect("the connection is free again");
    blocker.batch_execute("ROLLBACK").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_the_waiting_bound_are_shed_at_once_with_a_retry_delay() {
    // One connection, one call allowed to wait for it.
    let (server, key, mut blocker) = server_behind_a_lock(|c| DbConfig {
        pool_size: 1,
        max_waiting: 1,
        acquire_timeout: Duration::from_secs(60),
        ..c
    })
    .await;
    let list = |c: &mut billing::proto::v1::customer_service_client::CustomerServiceClient<_>| {
        let mut c = c.clone();
        tokio::spawn(async move { c.list_customers(pb::ListCustomersRequest::default()).await })
    };
    let mut client = server.customers(&key).await;
    let holding = list(&mut client);
    server.db.wait_for_lock_waiters(1, "the first call holds the connection, waiting on the lock").await;

    // Two more: one may wait, the other is answered at once.
    let mut more = vec![list(&mut client), list(&mut client)];
    // The limit is for a bound that does not hold (both would wait for the lock).
    let (first, _, rest) = tokio::time::timeout(Duration::from_secs(60), futures::future::select_all(more))
        .await
        .expect("one of them is answered without waiting");
    more = rest;
    let status = first.unwrap().expect_err("shed");
    assert_eq!(
        (status.code(), crate::support::reason(&status)),
        (Code::Unavailable, "OVERLOADED".to_owned())
    );
    let retry = status.get_error_details().retry_info().and_then(|r| r.retry_delay);
    assert!(retry.is_some_and(|d| d > Duration::ZERO), "{retry:?}");

    blocker.batch_execute("COMMIT").unwrap();
    holding.await.unwrap().expect("the holding call finishes");
    more.pop().unwrap().await.unwrap().expect("the waiting call is served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_calls_against_a_stalled_database_are_shed_at_once_not_at_their_deadlines() {
    // Four connections, all held by calls blocked on a lock; 64 calls may wait.
    let (server, key, mut blocker) = server_behind_a_lock(|c| DbConfig {
        pool_size: 4,
        max_waiting: 64,
        acquire_timeout: Duration::from_secs(60),
        ..c
    })
    .await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(server.customers(&key).await);
    }
    let call = |i: usize| {
        let mut c = clients[i % clients.len()].clone();
        tokio::spawn(async move {
            let mut req = tonic::Request::new(pb::ListCustomersRequest::default());
            req.set_timeout(Duration::from_secs(120));
            c.list_customers(req).await
        })
    };
    let holders: Vec<_> = (0..4).map(call).collect();
    server.db.wait_for_lock_waiters(4, "four calls hold the four connections, waiting on the lock").await;

    let mut pending: Vec<_> = (0..2000).map(call).collect();
    let mut shed = 0;
    // All but the 64 allowed to wait are answered while the database is still stalled.
    while pending.len() > 64 {
        let (done, _, rest) =
            tokio::time::timeout(Duration::from_secs(60), futures::future::select_all(pending))
                .await
                .expect("calls past the waiting bound are answered without waiting");
        pending = rest;
        let status = done.unwrap().expect_err("nothing is served while the database is stalled");
        assert_eq!(
            (status.code(), crate::support::reason(&status)),
            (Code::Unavailable, "OVERLOADED".to_owned())
        );
        assert!(status.get_error_details().retry_info().is_some(), "a retry delay is given");
        shed += 1;
    }
    assert_eq!(shed, 1936);

    blocker.batch_execute("COMMIT").unwrap();
    for call in holders.into_iter().chain(pending) {
        call.await.unwrap().expect("the holders and the waiting calls are served once the lock goes");
    }
}
