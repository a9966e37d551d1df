//! Server behaviour: health, reflection, limits, database loss, shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use billing::proto::v1 as pb;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::support::server::test_server_config;
use crate::support::{TestDb, TestServer, expect_code};

async fn health_of(server: &TestServer, service: &str) -> i32 {
    let mut health = HealthClient::new(server.channel().await);
    health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_each_service_serving() {
    let server = TestServer::start().await;
    for service in [
        "",
        "billing.commitments.v1.CustomerService",
        "billing.commitments.v1.ProductService",
        "billing.commitments.v1.CommitService",
        "billing.commitments.v1.AllowanceService",
        "billing.commitments.v1.UsageService",
        "billing.commitments.v1.ViolationService",
        "billing.commitments.v1.PromoService",
        "billing.commitments.v1.CommitmentService",
        "billing.commitments.v1.CreditTypeService",
    ] {
        assert_eq!(health_of(&server, service).await, ServingStatus::Serving as i32, "{service}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1_lists_every_service() {
    let server = TestServer::start().await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "billing.commitments.v1.CustomerService",
        "billing.commitments.v1.ProductService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_means_not_serving_and_unavailable_fast() {
    // A database URL on a port nothing listens on.
    let db = Arc::new(TestDb::create());
    let server = TestServer::start_with(db, test_server_config(), |mut c| {
        c.url = "postgres://postgres@127.0.0.1:1/nowhere".into();
        c.acquire_timeout = Duration::from_millis(500);
        c
    })
    .await;
    assert_eq!(health_of(&server, "").await, ServingStatus::NotServing as i32);
    let key = billing::domain::api_key::format_key(billing::domain::ids::ApiKeyId::generate(), &[1; 32]);
    let mut customers = server.customers(&key).await;
    let started = Instant::now();
    let status =
        expect_code(customers.list_customers(pb::ListCustomersRequest::default()).await, Code::Unavailable);
    assert!(started.elapsed() < Duration::from_secs(5), "failed fast, not at the deadline: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_is_resource_exhausted_and_changes_nothing() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut c = server.customers(&key).await;
    let huge = pb::CreateCustomerRequest {
        customer: Some(pb::Customer {
            external_id: "ACR1".into(),
            name: "x".repeat(5 * 1024 * 1024),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let status = expect_code(c.create_customer(huge).await, Code::ResourceExhausted);
    assert_eq!(crate::support::reason(&status), "MESSAGE_TOO_LARGE");
    assert!(status.message().contains("the limit is: 4194304 bytes"), "{status:?}");
    let listed = c.list_customers(pb::ListCustomersRequest::default()).await.unwrap().into_inner();
    assert!(listed.customers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_not_serving_and_returns() {
    let mut server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    let mut watch = health.watch(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().status, ServingStatus::Serving as i32);
    server.signal_stop();
    let next =
        tokio::time::timeout(Duration::from_secs(5), watch.next()).await.expect("health changes at once");
    let update = next.expect("an update before the stream ends").expect("an update, not an error");
    assert_eq!(update.status, ServingStatus::NotServing as i32);
    drop(watch);
    tokio::time::timeout(Duration::from_secs(10), server.join())
        .await
        .expect("server exits within its grace period")
        .expect("clean exit");
}

#[tokio::test]
async fn background_jobs_start_once_the_new_database_is_migrated() {
    // The service creates and migrates this database itself; the prune job's first run
    // must come after that, not fail on a missing schema and wait an hour.
    let db = TestDb::unmigrated();
    let serve = crate::support::process::ServeProcess::start(&db.url, &["--violation-prune-interval", "1h"]);
    let logs = std::sync::Arc::clone(&serve.logs);
    crate::support::wait_until("the first prune runs", || {
        let ran = logs.lock().unwrap().iter().any(|l| l.contains("pruned violations past their retention"));
        async move { ran }
    })
    .await;
    let failures: Vec<String> =
        serve.logs.lock().unwrap().iter().filter(|l| l.contains("failed")).cloned().collect();
    assert!(failures.is_empty(), "no background job failed: {failures:#?}");
    // Creating the database it was told to use is no trouble to warn of.
    let warnings: Vec<String> =
        serve.logs.lock().unwrap().iter().filter(|l| l.contains(r#""level":"WARN""#)).cloned().collect();
    assert!(warnings.is_empty(), "no warning while the new database is made: {warnings:#?}");
}

/// Reads from a raw connection until the server closes it (EOF or reset); the limit is
/// for a server that never does.
async fn closed_by_server(mut socket: tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(limit, socket.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_speaks_is_closed_at_the_handshake_deadline() {
    let mut config = test_server_config();
    config.connections.handshake_timeout = Duration::from_millis(200);
    let server = TestServer::start_with(Arc::new(TestDb::create()), config, |c| c).await;
    let silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_by_server(silent, Duration::from_secs(60)).await, "the silent connection is closed");
    // A client that speaks is served as usual.
    server.wait_serving().await;
}

/// A client that starts its opening and stalls is dropped like a silent one (before,
/// one byte was enough to be handed to HTTP/2, which waited for the rest forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_stalls_inside_its_opening_is_closed_at_the_handshake_deadline() {
    use tokio::io::AsyncWriteExt as _;
    let mut config = test_server_config();
    config.connections.handshake_timeout = Duration::from_millis(200);
    let server = TestServer::start_with(Arc::new(TestDb::create()), config, |c| c).await;
    let mut preface_only = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    preface_only.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    let mut half_tls = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    half_tls.write_all(&[0x16, 3, 1, 0x02, 0x00, 1, 0, 1]).await.unwrap();
    assert!(closed_by_server(preface_only, Duration::from_secs(60)).await, "no SETTINGS after the preface");
    assert!(closed_by_server(half_tls, Duration::from_secs(60)).await, "a ClientHello cut short");
    // Whole openings are served as usual.
    server.wait_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_at_once_and_their_places_come_back() {
    let mut config = test_server_config();
    config.connections = billing::listener::ConnectionLimits {
        max_connections: 2,
        handshake_timeout: Duration::from_secs(600),
    };
    let server = TestServer::start_with(Arc::new(TestDb::create()), config, |c| c).await;
    // Two silent connections take both places (accepted in order: the third comes last).
    let first = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let second = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let third = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Closed long before the 600 s handshake deadline could explain it.
    assert!(closed_by_server(third, Duration::from_secs(60)).await, "the third connection is refused");
    // Their clients leave: the places come back and a real client is served.
    drop((first, second));
    server.wait_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_server_backs_off_warns_and_serves_again() {
    // 48 descriptors in all: a few dozen silent connections exhaust them.
    let db = TestDb::create();
    let serve = crate::support::process::ServeProcess::start_under(
        &["prlimit", "--nofile=48:48"],
        &db.url,
        &["--db-pool-size", "2", "--handshake-timeout", "600s"],
    );
    let address = serve.address.clone();
    let mut silent = Vec::new();
    for _ in 0..80 {
        silent.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    let logs = Arc::clone(&serve.logs);
    crate::support::wait_until("accepting fails and backs off with a warning", || {
        let warned =
            logs.lock().unwrap().iter().any(|l| l.contains("accepting a connection failed; backing off"));
        async move { warned }
    })
    .await;
    let limit = serve.logs.lock().unwrap().iter().any(|l| l.contains("open-file limit") && l.contains("48"));
    assert!(limit, "the open-file limit is logged at start");
    // The clients leave: the server serves again without a restart.
    drop(silent);
    crate::support::wait_until("health answers again", || {
        let address = address.clone();
        async move { crate::support::process::grpcurl(&address, &["grpc.health.v1.Health/Check"]).0 }
    })
    .await;
}

/// A client that compresses its requests with gzip is understood (without it such a
/// request is UNIMPLEMENTED), and one that accepts gzip is answered in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_requests_are_accepted_and_answered_in_gzip() {
    use tonic::codec::CompressionEncoding::Gzip;
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut customers = server.customers(&key).await.send_compressed(Gzip).accept_compressed(Gzip);
    let created = customers
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                external_id: "GZ-1".into(),
                name: "Gzip".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("a gzip request is accepted");
    assert_eq!(created.metadata().get("grpc-encoding").map(|v| v.to_str().unwrap()), Some("gzip"));
    assert_eq!(created.into_inner().customer.unwrap().external_id, "GZ-1");

    let mut health = HealthClient::new(server.channel().await).send_compressed(Gzip);
    let status =
        health.check(HealthCheckRequest { service: String::new() }).await.expect("health takes gzip");
    assert_eq!(status.into_inner().status, ServingStatus::Serving as i32);
}

/// With `--no-migrate` the service leaves the schema to the `migrate` step: it neither
/// creates nor migrates the database, keeps its gRPC port closed and is not ready until
/// the step has run, then opens the port and serves.
#[tokio::test]
async fn no_migrate_waits_for_the_migrate_step_with_its_port_closed() {
    use crate::support::process::{ServeProcess, admin, free_port, grpcurl, http_get};
    let db = TestDb::unmigrated();
    let (listen, metrics) = (free_port(), free_port());
    let serve = ServeProcess::launch(&db.url, &listen, &["--no-migrate", "--metrics-listen", &metrics]);
    let logs = Arc::clone(&serve.logs);
    crate::support::wait_until("serve says it waits for the database", || {
        let waiting = logs.lock().unwrap().iter().any(|l| l.contains("database not ready"));
        async move { waiting }
    })
    .await;
    assert!(std::net::TcpStream::connect(&listen).is_err(), "no connection before the schema is there");
    assert_eq!(http_get(&metrics, "/readyz").0, 503, "not ready");

    admin(&db.url, &["migrate"]);
    crate::support::wait_until("serve opens its port", || {
        let open = std::net::TcpStream::connect(&listen).is_ok();
        async move { open }
    })
    .await;
    let (ok, out, err) = grpcurl(&listen, &["grpc.health.v1.Health/Check"]);
    assert!(ok && out.contains("SERVING"), "{out}{err}");
}

/// Health `Watch` and reflection streams end with UNAVAILABLE when shutdown begins, so
/// they do not hold the process for its grace period (an hour here: it exits long
/// before, or this test fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_watch_and_reflection_streams_end_at_shutdown_instead_of_holding_it() {
    use crate::support::process::ServeProcess;
    let db = TestDb::create();
    let mut serve = ServeProcess::start(&db.url, &["--shutdown-grace", "1h"]);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", serve.address))
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let mut watch = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .expect("watch opens")
        .into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().status, ServingStatus::Serving as i32);
    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let requests = tokio_stream::iter(vec![list]).chain(tokio_stream::pending());
    let mut reflection = ServerReflectionClient::new(channel)
        .server_reflection_info(requests)
        .await
        .expect("reflection opens")
        .into_inner();
    assert!(reflection.next().await.unwrap().is_ok(), "reflection answers, and stays open");

    serve.signal_term();
    let ended = loop {
        match watch.next().await {
            Some(Ok(_)) => continue, // NOT_SERVING comes first
            Some(Err(status)) => break status.code(),
            None => break Code::Ok,
        }
    };
    assert_eq!(ended, Code::Unavailable, "the watch ends as the server goes");
    let ended = reflection.next().await.map(|r| r.map(|_| ()));
    assert!(matches!(&ended, Some(Err(s)) if s.code() == Code::Unavailable), "{ended:?}");
    let status = serve.wait_exit(Duration::from_secs(120)).expect("exits without waiting out the grace");
    assert!(status.success(), "{status:?}");
}

/// With a drain delay the listener keeps taking calls after SIGTERM while health says
/// NOT_SERVING, so load balancers can stop sending before connections are refused.
#[tokio::test]
async fn a_drain_delay_keeps_taking_calls_while_health_says_not_serving() {
    use crate::support::process::{ServeProcess, grpcurl};
    let db = TestDb::create();
    let serve = ServeProcess::start(&db.url, &["--shutdown-drain-delay", "1h"]);
    serve.signal_term();
    // Each grpcurl call opens a new connection: an answer at all proves the listener open.
    crate::support::wait_until("health answers NOT_SERVING on a new connection", || {
        let (_, out, _) = grpcurl(&serve.address, &["grpc.health.v1.Health/Check"]);
        async move { out.contains("NOT_SERVING") }
    })
    .await;
    let (ok, out, err) = grpcurl(&serve.address, &["list"]);
    assert!(ok && out.contains("billing.commitments.v1.UsageService"), "calls are still taken: {out}{err}");
}

/// A pool the server cannot fill (all instances' pools must fit in max_connections) is
/// said at start, not discovered as UNAVAILABLE under load.
#[tokio::test]
async fn a_pool_larger_than_the_server_allows_is_warned_of_at_start() {
    use crate::support::process::ServeProcess;
    let db = TestDb::create();
    let serve = ServeProcess::start(&db.url, &["--db-pool-size", "100000"]);
    let logs = Arc::clone(&serve.logs);
    crate::support::wait_until("serve warns that its pool cannot fill", || {
        let warned = logs.lock().unwrap().iter().any(|l| {
            l.contains("connection budget") && l.contains("100000") && l.contains("max_connections")
        });
        async move { warned }
    })
    .await;
}
