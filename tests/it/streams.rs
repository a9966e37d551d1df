//! Streaming clients under stress: clients that vanish behind a dead network, and a
//! SIGTERM with streams open and calls in flight, some past the grace period.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use billing::proto::v1 as pb;
use billing::proto::v1::violation_service_client::ViolationServiceClient;
use billing::proto::v1::watch_violations_request::Start;
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::Code;
use tonic::codec::Streaming;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::process::{ServeProcess, admin, free_port, gauge, scrape};
use crate::support::{Key, TestDb, reason};

/// A TCP relay in front of the server that can go silent: it then forwards nothing in
/// either direction but keeps every socket open, as when a client's network dies.
struct Relay {
    addr: std::net::SocketAddr,
    silent: Arc<AtomicBool>,
}

impl Relay {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let silent = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&silent);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(upstream).await.unwrap();
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, Arc::clone(&flag)));
                tokio::spawn(pipe(sr, cw, Arc::clone(&flag)));
            }
        });
        Self { addr, silent }
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    silent: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if silent.load(Ordering::Relaxed) {
            // Hold both sockets open, forwarding nothing, for as long as the test runs.
            let _held = (from, to);
            std::future::pending::<()>().await;
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Polls the server's metrics until `done` holds for them, returning that scrape.
async fn wait_metrics(addr: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    // Bounded for a loaded machine; normally ends within a second or two.
    for _ in 0..900 {
        let body = scrape(addr);
        if done(&body) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}: {}", scrape(addr));
}

async fn watch_from_now(channel: Channel, key: &str) -> Streaming<pb::WatchViolationsResponse> {
    let req = pb::WatchViolationsRequest { start: Some(Start::FromNow(true)), ..Default::default() };
    ViolationServiceClient::with_interceptor(channel, Key::bearer(key))
        .watch_violations(req)
        .await
        .expect("watch")
        .into_inner()
}

fn value(body: &str, name: &str) -> f64 {
    gauge(body, name).unwrap_or(-1.0)
}

/// Opens 1,000 streams through a fresh relay, then kills the relay's network, and waits
/// until the server has released them all. Returns (tasks, RSS) at the peak.
async fn vanishing_wave(server: &str, metrics: &str, key: &str, tasks_before: f64) -> (f64, f64) {
    let relay = Relay::start(server.parse().unwrap()).await;
    let mut streams = Vec::new();
    for _ in 0..10 {
        let channel =
            Endpoint::from_shared(format!("http://{}", relay.addr)).unwrap().connect().await.unwrap();
        streams
            .extend(futures::future::join_all((0..100).map(|_| watch_from_now(channel.clone(), key))).await);
    }
    let peak = wait_metrics(metrics, "1000 subscribers with their tasks sampled", |b| {
        value(b, "violation_feed_subscribers") == 1000.0
            && value(b, "runtime_alive_tasks") >= tasks_before + 1000.0
    })
    .await;
    // The clients' network dies: nothing more arrives from them, and they never close.
    relay.silent.store(true, Ordering::Relaxed);
    wait_metrics(metrics, "every subscription is released", |b| {
        value(b, "violation_feed_subscribers") == 0.0
    })
    .await;
    wait_metrics(metrics, "the server's tasks are back to the baseline", |b| {
        value(b, "runtime_alive_tasks") <= tasks_before
    })
    .await;
    drop(streams);
    (value(&peak, "runtime_alive_tasks"), value(&peak, "process_resident_memory_bytes"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_clients_that_vanish_free_their_tasks_and_memory() {
    let db = TestDb::create();
    let org = admin(&db.url, &["admin", "create-org", "Acme"]);
    let key = admin(&db.url, &["admin", "create-api-key", "--org", org.trim()]).trim().to_owned();
    let metrics = free_port();
    let serve = ServeProcess::start(
        &db.url,
        // Pings answered within 2 s keep a live (if loaded) client; a vanished one is given
        // up within a few seconds.
        &["--metrics-listen", &metrics, "--keepalive-interval", "500ms", "--keepalive-timeout", "2s"],
    );
    // Settled: health checks and jobs have started and the first samples are in.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = scrape(&metrics);
    let (tasks_before, rss_before) =
        (value(&before, "runtime_alive_tasks"), value(&before, "process_resident_memory_bytes"));

    // Waves: a leak grows by the same amount with each; memory the allocator keeps for
    // reuse (glibc does not hand it back) levels off after the first waves.
    let mut after = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..4 {
        peaks.push(vanishing_wave(&serve.address, &metrics, &key, tasks_before).await);
        tokio::time::sleep(Duration::from_millis(1200)).await; // one more sample
        after.push(value(&scrape(&metrics), "process_resident_memory_bytes"));
    }
    let mb = |b: f64| (b / 1e5).round() / 10.0;
    eprintln!(
        "tasks {tasks_before} -> peaks {:?}; RSS {} MB -> peaks {:?} -> after each wave {:?} MB",
        peaks.iter().map(|p| p.0).collect::<Vec<_>>(),
        mb(rss_before),
        peaks.iter().map(|p| mb(p.1)).collect::<Vec<_>>(),
        after.iter().map(|a| mb(*a)).collect::<Vec<_>>()
    );
    let wave_cost = peaks[0].1 - rss_before;
    // A leak grows by about the same amount with every wave; the growth is averaged
    // over the last three, since one sample can catch the allocator before it returned
    // a wave's pages (jemalloc purges them over a second).
    let growth_per_wave = (after[3] - after[0]) / 3.0;
    assert!(
        growth_per_wave < wave_cost / 4.0,
        "memory levels off wave after wave: after each wave {after:?}, one wave costs {wave_cost}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_streams_refuses_new_calls_finishes_in_flight_ones_and_exits_in_grace() {
    let db = TestDb::create();
    let org = admin(&db.url, &["admin", "create-org", "Acme"]);
    let key = admin(&db.url, &["admin", "create-api-key", "--org", org.trim()]).trim().to_owned();
    let mut serve = ServeProcess::start(&db.url, &["--shutdown-grace", "2s"]);
    let endpoint = format!("http://{}", serve.address);
    let channel = Endpoint::from_shared(endpoint.clone()).unwrap().connect().await.unwrap();
    let mut health =
        HealthClient::new(channel.clone()).watch(HealthCheckRequest::default()).await.unwrap().into_inner();
    // The first answer may predate the first database check.
    while health.message().await.unwrap().unwrap().status != ServingStatus::Serving as i32 {}
    let mut streams = futures::future::join_all((0..50).map(|_| watch_from_now(channel.clone(), &key))).await;

    // An in-flight call: it waits on a lock the test holds across the signal.
    let mut blocker = db.connect();
    blocker.batch_execute("BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE").unwrap();
    let mut customers = pb::customer_service_client::CustomerServiceClient::with_interceptor(
        channel.clone(),
        Key::bearer(&key),
    );
    let in_flight =
        tokio::spawn(async move { customers.list_customers(pb::ListCustomersRequest::default()).await });
    // Wait until the call is in the database, blocked on the lock.
    let mut watcher = db.connect();
    for _ in 0..500 {
        let waiting: i64 = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .get_result::<Count>(&mut watcher)
        .map(|r| r.n)
        .unwrap_or(0);
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let signalled = std::time::Instant::now();
    serve.signal_term();
    let update =
        tokio::time::timeout(Duration::from_secs(1), health.message()).await.expect("health changes at once");
    let update = update.expect("an update, not an error").expect("an update before the stream ends");
    assert_eq!(update.status, ServingStatus::NotServing as i32);
    for stream in &mut streams {
        let end = tokio::time::timeout(Duration::from_secs(2), stream.message()).await.expect("stream ends");
        assert_eq!(end.expect_err("ends with a status").code(), Code::Unavailable);
    }
    let fresh = Endpoint::from_shared(endpoint).unwrap().connect().await;
    assert!(fresh.is_err(), "new connections are refused once draining");

    blocker.batch_execute("ROLLBACK").unwrap();
    in_flight.await.unwrap().expect("the call in flight at the signal completes");
    // `streams` and `channel` stay open: the process must not wait for its clients.
    let (exit, _serve) =
        tokio::task::spawn_blocking(move || (serve.wait_exit(Duration::from_secs(10)), serve)).await.unwrap();
    let exit = exit.expect("exits");
    assert!(exit.success(), "clean exit: {exit:?}");
    assert!(signalled.elapsed() < Duration::from_secs(2 + 3), "within the grace period, plus slack");
    drop((streams, channel));
}

/// The end of the grace period: a write still blocked on a lock is cancelled and rolled
/// back, its caller is told so, and the process exits while the lock is still held.
/// Before, the call's connection was closed at the grace period, the process exited
/// only when the statement timeout ended the wait, and the write committed if the lock
/// was released first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_blocked_past_the_grace_period_is_rolled_back_answered_and_the_process_exits() {
    let db = TestDb::create();
    let org = admin(&db.url, &["admin", "create-org", "Acme"]);
    let key = admin(&db.url, &["admin", "create-api-key", "--org", org.trim()]).trim().to_owned();
    // Timeouts far beyond the test's bounds: only the grace period may end the call.
    let mut serve = ServeProcess::start(
        &db.url,
        &["--shutdown-grace", "300ms", "--db-statement-timeout", "10min", "--request-timeout", "10min"],
    );
    let channel =
        Endpoint::from_shared(format!("http://{}", serve.address)).unwrap().connect().await.unwrap();
    let mut blocker = db.connect();
    blocker.batch_execute("BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE").unwrap();
    let mut customers =
        pb::customer_service_client::CustomerServiceClient::with_interceptor(channel, Key::bearer(&key));
    let create = pb::CreateCustomerRequest {
        customer: Some(pb::Customer {
            external_id: "blocked-at-shutdown".into(),
            name: "Blocked".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let call = tokio::spawn(async move { customers.create_customer(create).await });
    db.wait_for_lock_waiters(1, "the create waits on the test's lock").await;

    serve.signal_term();
    let status = call.await.unwrap().expect_err("the blocked create cannot succeed");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), "SHUTTING_DOWN", "answered by the service, not a dropped connection");
    let (exit, _serve) =
        tokio::task::spawn_blocking(move || (serve.wait_exit(Duration::from_secs(60)), serve)).await.unwrap();
    assert!(exit.expect("exits while the lock is still held").success());

    blocker.batch_execute("COMMIT").unwrap();
    let stored: i64 =
        diesel::sql_query("SELECT count(*) AS n FROM customers WHERE external_id = 'blocked-at-shutdown'")
            .get_result::<Count>(&mut blocker)
            .unwrap()
            .n;
    assert_eq!(stored, 0, "the cancelled create wrote nothing");
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}
