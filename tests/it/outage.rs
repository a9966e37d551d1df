//! PostgreSQL stopped and started under a running service, on a cluster of the test's
//! own: health follows the database, calls fail fast, and everything recovers unaided.

use std::sync::Arc;
use std::time::Duration;

use billing::db::DbConfig;
use billing::proto::v1 as pb;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::private_pg::PrivatePostgres;
use crate::support::server::test_server_config;
use crate::support::{TestDb, TestServer, expect_code};

async fn wait_health(server: &TestServer, wanted: ServingStatus, within: Duration) {
    let mut health = HealthClient::new(server.channel().await);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let status = health.check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
        if status.status == wanted as i32 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "health never became {wanted:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn new_customer(external_id: &str) -> pb::CreateCustomerRequest {
    pb::CreateCustomerRequest {
        customer: Some(pb::Customer {
            external_id: external_id.into(),
            name: "C".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_started_is_survived_without_a_restart() {
    let pg = PrivatePostgres::start();
    let url = pg.url("billing");
    crate::support::db::prepare(&url).await;
    let server = TestServer::start_with(Arc::new(TestDb::create()), test_server_config(), |c| DbConfig {
        url: url.clone(),
        acquire_timeout: Duration::from_millis(500),
        ..c
    })
    .await;
    server.wait_serving().await;
    let (_, key) = server.org("Acme").await;
    let mut customers = server.customers(&key).await;
    customers.create_customer(new_customer("before")).await.expect("works while the database is up");

    pg.stop_server();
    wait_health(&server, ServingStatus::NotServing, Duration::from_secs(10)).await;
    let mut req = tonic::Request::new(new_customer("during"));
    req.set_timeout(Duration::from_secs(5));
    expect_code(customers.create_customer(req).await, Code::Unavailable);

    pg.start_server();
    wait_health(&server, ServingStatus::Serving, Duration::from_secs(20)).await;
    customers.create_customer(new_customer("after")).await.expect("works again without a restart");
    let listed = customers.list_customers(pb::ListCustomersRequest::default()).await.unwrap().into_inner();
    let ids: Vec<_> = listed.customers.iter().map(|c| c.external_id.as_str()).collect();
    assert_eq!(ids.len(), 2, "the failed call left nothing behind: {ids:?}");
    assert!(ids.contains(&"before") && ids.contains(&"after"));
}

/// Shutdown begun, the instance stays NOT_SERVING through its drain delay even when the
/// database goes away and comes back: the health monitor seeing it recover does not put
/// a stopping instance back into a load balancer's rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_blip_during_the_drain_delay_does_not_bring_health_back() {
    use crate::support::process::{ServeProcess, grpcurl};
    let pg = PrivatePostgres::start();
    let url = pg.url("billing");
    crate::support::db::prepare(&url).await;
    let serve = ServeProcess::start(&url, &["--shutdown-drain-delay", "600s"]);
    let logs = Arc::clone(&serve.logs);
    // The index of the first log line from `from` on that holds every one of `parts`.
    let line_with = |parts: &'static [&'static str], from: usize| {
        let logs = Arc::clone(&logs);
        async move {
            let mut found = None;
            crate::support::wait_until(parts[0], || {
                found =
                    logs.lock().unwrap().iter().skip(from).position(|l| parts.iter().all(|p| l.contains(p)));
                let seen = found.is_some();
                async move { seen }
            })
            .await;
            from + found.unwrap()
        }
    };
    serve.signal_term();
    let draining = line_with(&["still taking calls while load balancers notice"], 0).await;
    pg.stop_server();
    let lost = line_with(&["health changed", r#""serving":false"#], draining).await;
    pg.start_server();
    line_with(&["health changed", r#""serving":true"#], lost).await;
    let (ok, out, err) = grpcurl(&serve.address, &["grpc.health.v1.Health/Check"]);
    assert!(ok && out.contains("NOT_SERVING"), "still not serving while it drains: {out}{err}");
}
