//! What an operator's tooling reads: Prometheus series under the grpc-ecosystem names
//! with `# HELP` on each, the build, HTTP liveness and readiness probes, and a request
//! id on every call and its log lines.

use std::collections::HashSet;
use std::process::Command;

use tonic::metadata::MetadataValue;

use crate::support::process::{
    ServeProcess, admin, free_port, gauge, grpcurl, http_get, root, run_ok, scrape,
};
use crate::support::{TestDb, TestServer, wait_until};

/// Whether `revision` names a commit of this repository (the one the binary under test
/// was built from; HEAD may have moved on since).
fn is_a_commit(revision: &str) -> bool {
    revision.len() == 12
        && Command::new("git")
            .args(["cat-file", "-e", &format!("{revision}^{{commit}}")])
            .current_dir(root())
            .status()
            .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn metrics_use_grpc_ecosystem_names_and_every_series_is_described() {
    let db = TestDb::create();
    let metrics = free_port();
    let serve = ServeProcess::start(&db.url, &["--metrics-listen", &metrics]);
    assert!(grpcurl(&serve.address, &["grpc.health.v1.Health/Check"]).0, "health answers");
    let (ok, _, _) = grpcurl(&serve.address, &["billing.commitments.v1.CustomerService/ListCustomers"]);
    assert!(!ok, "a call without a key fails");
    let expected = [
        r#"grpc_server_started_total{grpc_service="grpc.health.v1.Health",grpc_method="Check",grpc_type="unary"} 1"#,
        r#"grpc_server_handled_total{grpc_service="grpc.health.v1.Health",grpc_method="Check",grpc_type="unary",grpc_code="OK"} 1"#,
        r#"grpc_server_handled_total{grpc_service="billing.commitments.v1.CustomerService",grpc_method="ListCustomers",grpc_type="unary",grpc_code="Unauthenticated"} 1"#,
        r#"grpc_server_handling_seconds_bucket{grpc_service="grpc.health.v1.Health",grpc_method="Check",grpc_type="unary",le="0.005"}"#,
        // grpcurl (1.8) finds methods through reflection v1alpha, a bidirectional stream.
        r#"grpc_server_started_total{grpc_service="grpc.reflection.v1alpha.ServerReflection",grpc_method="ServerReflectionInfo",grpc_type="bidi_stream"}"#,
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_resident_memory_peak_bytes ",
        "db_pool_connections{state=\"idle\"}",
    ];
    // Histograms reach the text at the exporter's upkeep and the pool at its sampling:
    // wait for them rather than for a fixed time.
    wait_until("every expected series is scraped", || {
        let body = scrape(&metrics);
        async move { expected.iter().all(|e| body.contains(e)) }
    })
    .await;
    let body = scrape(&metrics);
    let typed: HashSet<&str> =
        body.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split_whitespace().next()).collect();
    let described: HashSet<&str> =
        body.lines().filter_map(|l| l.strip_prefix("# HELP ")?.split_whitespace().next()).collect();
    let undescribed: Vec<_> = typed.difference(&described).collect();
    assert!(typed.len() > 10 && undescribed.is_empty(), "series without # HELP: {undescribed:?}");
    let build = format!(r#"billing_build_info{{version="{}",revision=""#, env!("CARGO_PKG_VERSION"));
    let revision = body.split(&build).nth(1).and_then(|rest| rest.split('"').next());
    assert!(revision.is_some_and(is_a_commit), "{build}<a commit>... missing from:\n{body}");
}

/// Where a usage call's time went, for the operator who asks why it was slow: its wait in
/// the org's queue, the hand-over to the blocking pool, and its transaction split into
/// the statements' round trips and the service's own work between them.
#[tokio::test]
async fn a_usage_call_reports_its_queue_wait_and_its_transactions_statements_and_service_time() {
    let db = TestDb::create();
    let org = admin(&db.url, &["admin", "create-org", "Acme"]);
    let key = admin(&db.url, &["admin", "create-api-key", "--org", org.trim()]).trim().to_owned();
    let metrics = free_port();
    let serve = ServeProcess::start(&db.url, &["--metrics-listen", &metrics]);
    let auth = format!("authorization: Bearer {key}");
    // A customer the org does not have: refused, after a transaction that looked for it.
    let event = format!(
        r#"{{"event": {{"event_id": "e-1", "customer_id": "{}", "product_code": "API", "quantity": "1", "rated_amount": "1", "timestamp": "{}"}}}}"#,
        uuid::Uuid::now_v7(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let (ok, _, err) = grpcurl(
        &serve.address,
        &["-H", &auth, "-d", &event, "billing.commitments.v1.UsageService/RecordUsage"],
    );
    assert!(!ok && err.contains("NotFound"), "the unknown customer is refused: {err}");
    wait_until("the call's stages are scraped", || {
        let body = scrape(&metrics);
        async move { gauge(&body, "usage_queue_seconds_count") == Some(1.0) }
    })
    .await;
    let body = scrape(&metrics);
    let value = |name: &str| gauge(&body, name).unwrap_or_else(|| panic!("{name} missing from:\n{body}"));
    // The background jobs' transactions count too, so only bounds that hold for every
    // transaction are checked.
    let transactions = value("db_transaction_statements_count");
    assert!(transactions >= 1.0);
    assert!(
        value("db_transaction_statements_sum") >= 2.0 * transactions,
        "BEGIN and COMMIT count as statements"
    );
    assert!(value(r#"db_transaction_seconds_sum{part="statements"}"#) > 0.0, "round trips are timed");
    assert_eq!(value(r#"db_transaction_seconds_count{part="service"}"#), transactions);
    assert!(value("db_blocking_start_seconds_count") >= transactions);
}

#[test]
fn version_names_the_revision_and_build_date() {
    let out = run_ok(Command::new(env!("CARGO_BIN_EXE_billing-commitments")).arg("--version"));
    let (name, rest) = out.trim().split_once(' ').expect("name and version");
    assert_eq!(name, "billing-commitments");
    assert!(rest.starts_with(env!("CARGO_PKG_VERSION")), "{out}");
    let revision = rest.split(['(', ',']).nth(1).unwrap_or_default().trim();
    assert!(is_a_commit(revision), "the git revision: {out}");
    let date = rest.split("built ").nth(1).expect("a build date").trim_end_matches(')');
    assert!(chrono::DateTime::parse_from_rfc3339(date).is_ok(), "an RFC 3339 build date: {out}");
}

/// Liveness is the process, readiness the database: a database that cannot be reached
/// leaves /healthz answering 200 (an orchestrator must not restart the process) while
/// /readyz answers 503 (it must not send traffic).
#[tokio::test]
async fn healthz_is_the_process_and_readyz_the_database() {
    let nowhere = format!("postgres://postgres@{}/billing_nowhere", free_port());
    let metrics = free_port();
    let _serve = ServeProcess::launch(&nowhere, &free_port(), &["--metrics-listen", &metrics]);
    wait_until("the metrics port is open", || {
        let open = std::net::TcpStream::connect(&metrics).is_ok();
        async move { open }
    })
    .await;
    let (status, body) = http_get(&metrics, "/healthz");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(&metrics, "/readyz");
    assert_eq!(status, 503, "not ready without a database: {body}");

    let db = TestDb::create();
    let metrics = free_port();
    let _serve = ServeProcess::start(&db.url, &["--metrics-listen", &metrics]);
    wait_until("/readyz answers 200 once the database is migrated", || {
        let ready = http_get(&metrics, "/readyz").0 == 200;
        async move { ready }
    })
    .await;
    assert_eq!(http_get(&metrics, "/healthz").0, 200);
}

/// A caller's `x-request-id` comes back on the answer and names the call in its log
/// line; a call without one gets a new id, returned the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_is_returned_and_logged() {
    let server = TestServer::start().await;
    let (_, key) = server.org("Acme").await;
    let mut customers = server.customers(&key).await;
    let mut request = tonic::Request::new(billing::proto::v1::ListCustomersRequest::default());
    request.metadata_mut().insert("x-request-id", MetadataValue::from_static("trace-me-42"));
    let answer = customers.list_customers(request).await.expect("listed");
    assert_eq!(answer.metadata().get("x-request-id").unwrap(), "trace-me-42");

    let answer = customers.list_customers(billing::proto::v1::ListCustomersRequest::default()).await.unwrap();
    let generated = answer.metadata().get("x-request-id").expect("an id is made up").to_str().unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "a UUID: {generated}");

    let db = TestDb::create();
    let serve = ServeProcess::start(&db.url, &[]);
    let (_, _, _) = grpcurl(
        &serve.address,
        &["-H", "x-request-id: from-the-edge-7", "billing.commitments.v1.CustomerService/ListCustomers"],
    );
    let line_of_the_call = || {
        let logs = serve.logs.lock().unwrap();
        logs.iter().find(|l| l.contains("rpc finished") && l.contains("ListCustomers")).cloned()
    };
    wait_until("the call's log line is written", || {
        let written = line_of_the_call().is_some();
        async move { written }
    })
    .await;
    let line = line_of_the_call().unwrap();
    assert!(line.contains("from-the-edge-7"), "the call's log line names its request id: {line}");
}

/// An OTLP collector stand-in that keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector(std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest>,
    ) -> Result<
        tonic::Response<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse>,
        tonic::Status,
    > {
        let spans =
            request.into_inner().resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
        self.0.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(Default::default()))
    }
}

/// With an OTLP endpoint, each call's span is exported there as a child of the caller's
/// W3C `traceparent`, named after its method; the call's log line names the trace too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_continue_the_callers_trace_and_reach_the_otlp_collector() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let db = TestDb::create();
    let serve = ServeProcess::start(&db.url, &["--otlp-endpoint", &endpoint]);
    let (trace, parent) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let traceparent = format!("traceparent: 00-{trace}-{parent}-01");
    let (ok, _, err) = grpcurl(&serve.address, &["-H", &traceparent, "grpc.health.v1.Health/Check"]);
    assert!(ok, "{err}");

    let check_span = || {
        let spans = collector.0.lock().unwrap();
        spans.iter().find(|s| s.name == "grpc.health.v1.Health/Check").cloned()
    };
    wait_until("the call's span reaches the collector", || {
        let arrived = check_span().is_some();
        async move { arrived }
    })
    .await;
    let span = check_span().unwrap();
    assert_eq!(hex::encode(&span.trace_id), trace, "the caller's trace continues");
    assert_eq!(hex::encode(&span.parent_span_id), parent, "under the caller's span");
    let logs = serve.logs.lock().unwrap();
    let line =
        logs.iter().find(|l| l.contains("rpc finished") && l.contains("Health/Check")).expect("logged");
    assert!(line.contains(trace), "the log line names the trace: {line}");
}
