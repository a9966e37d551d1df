//! Prometheus metrics and HTTP probes on a port of their own (`--metrics-listen`):
//! `/metrics`, `/healthz` (the process is up) and `/readyz` (it can serve: database
//! reachable and migrated, not shutting down). Code records through the `metrics` facade
//! (a no-op until the recorder is installed, as in tests); this module installs the
//! recorder, describes every series (the `# HELP` lines), and samples what is not an
//! event: the process (metrics-process) and the connection pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::db::Db;

/// Latency buckets, in seconds: fine below 10 ms where the targets are.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// Sizes of usage transactions (events decided together).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1000.0, 2000.0];

/// The build, for `--version` and the `billing_build_info` series: the crate version,
/// the git revision and the date it was built (both from build.rs).
pub const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (", env!("BUILD_GIT_REVISION"), ", built ", env!("BUILD_DATE"), ")");

/// The metrics endpoint of one process: its bound socket and the recorder it renders.
#[derive(Clone)]
pub struct MetricsEndpoint {
    listener: Arc<std::net::TcpListener>,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for MetricsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsEndpoint").field("listener", &self.listener).finish_non_exhaustive()
    }
}

/// Binds `addr` (so a port in use fails the start, and probes can connect as soon as
/// the process says it serves) and installs the process's recorder, once.
pub fn install(addr: SocketAddr) -> anyhow::Result<MetricsEndpoint> {
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    listener.set_nonblocking(true)?;
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full("usage_transaction_events".into()), BATCH_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full("db_transaction_statements".into()), BATCH_BUCKETS)?
        .install_recorder()?;
    describe();
    metrics::gauge!(
        "billing_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "revision" => env!("BUILD_GIT_REVISION"),
        "build_date" => env!("BUILD_DATE")
    )
    .set(1.0);
    Ok(MetricsEndpoint { listener: Arc::new(listener), handle })
}

/// The `# HELP` line of every series this service records.
fn describe() {
    use metrics::{describe_counter as counter, describe_gauge as gauge, describe_histogram as histogram};
    metrics_process::Collector::default().describe();
    gauge!("billing_build_info", "The running build: version, git revision and build date (always 1).");
    counter!("grpc_server_started_total", "RPCs started on the server.");
    counter!("grpc_server_handled_total", "RPCs completed on the server, whatever their status.");
    histogram!(
        "grpc_server_handling_seconds",
        Unit::Seconds,
        "Time from an RPC's arrival to its last message (streams included)."
    );
    gauge!(
        "process_resident_memory_peak_bytes",
        Unit::Bytes,
        "Largest resident set size the process has had."
    );
    gauge!("runtime_alive_tasks", "Tasks alive in the async runtime (streams, connections, jobs).");
    gauge!("db_pool_connections", "Open database connections of the pool, by state (idle, in_use).");
    gauge!("db_pool_waiting", "Calls waiting for a database connection.");
    histogram!(
        "db_blocking_start_seconds",
        Unit::Seconds,
        "Time from handing database work to the blocking pool to its start on a thread."
    );
    histogram!("db_pool_acquire_seconds", Unit::Seconds, "Wait for a database connection.");
    histogram!(
        "db_transaction_seconds",
        Unit::Seconds,
        "Committed transactions' time, by part: in statements (round trips, BEGIN and COMMIT included) or in the service between them."
    );
    histogram!(
        "db_transaction_statements",
        "Statements of a committed transaction, BEGIN and COMMIT included."
    );
    counter!("db_work_shed_total", "Calls refused at once because too many were waiting for a connection.");
    counter!(
        "db_work_expired_before_start_total",
        "Database work not started because its call's deadline had passed."
    );
    gauge!("violation_feed_subscribers", "Open WatchViolations streams on this instance.");
    histogram!(
        "violation_feed_publish_lag_seconds",
        Unit::Seconds,
        "Time from a violation's commit to its delivery to this instance's subscribers."
    );
    counter!("usage_events_total", "Usage events decided, by outcome.");
    histogram!("usage_transaction_events", "Usage events decided together in one database transaction.");
    histogram!(
        "usage_queue_seconds",
        Unit::Seconds,
        "Time a RecordUsage call waits in its organization's queue for a shared transaction."
    );
}

/// What the probes answer and `/metrics` renders.
#[derive(Clone)]
struct Probes {
    handle: PrometheusHandle,
    ready: watch::Receiver<bool>,
    process: std::sync::Arc<metrics_process::Collector>,
}

/// Serves `/metrics`, `/healthz` and `/readyz` on the endpoint until `stop`; `ready`
/// says whether the instance can serve.
pub async fn serve(endpoint: MetricsEndpoint, ready: watch::Receiver<bool>, stop: CancellationToken) {
    let listener = match endpoint.listener.try_clone().and_then(tokio::net::TcpListener::from_std) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "metrics endpoint failed to start; serving gRPC without it");
            return;
        }
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let probes = Probes { handle: endpoint.handle, ready, process: Default::default() };
    let upkeep = probes.handle.clone();
    let app = Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readiness))
        .with_state(probes);
    tracing::info!(address = %addr, "serving /metrics, /healthz and /readyz");
    let stopped = stop.clone();
    let upkeep_loop = async move {
        // Histograms are drained into their buckets here, not on every record.
        loop {
            tokio::select! {
                _ = stopped.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => upkeep.run_upkeep(),
            }
        }
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
    let (served, ()) = tokio::join!(server, upkeep_loop);
    if let Err(e) = served {
        tracing::error!(error = %e, "metrics endpoint failed");
    }
}

async fn render(State(probes): State<Probes>) -> impl IntoResponse {
    probes.process.collect();
    if let Some(peak) = peak_resident_bytes() {
        metrics::gauge!("process_resident_memory_peak_bytes").set(peak as f64);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], probes.handle.render())
}

async fn readiness(State(probes): State<Probes>) -> (StatusCode, &'static str) {
    if *probes.ready.borrow() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// The largest resident set the process has had, from getrusage.
fn peak_resident_bytes() -> Option<u64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage writes a whole rusage into the pointer on success.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    // Linux reports ru_maxrss in kibibytes.
    u64::try_from(usage.ru_maxrss).ok().map(|kib| kib * 1024)
}

/// Samples the runtime and the pool every `interval` until `stop`.
pub async fn sample(db: Db, interval: Duration, stop: CancellationToken) {
    loop {
        // Tasks alive in the runtime: streams, connections, jobs. A leak shows here first.
        metrics::gauge!("runtime_alive_tasks")
            .set(tokio::runtime::Handle::current().metrics().num_alive_tasks() as f64);
        let pool = db.pool_state();
        let idle = f64::from(pool.idle_connections);
        metrics::gauge!("db_pool_connections", "state" => "idle").set(idle);
        metrics::gauge!("db_pool_connections", "state" => "in_use").set(f64::from(pool.connections) - idle);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_resident_set_is_read_from_the_kernel() {
        let before = peak_resident_bytes().expect("getrusage answers");
        let ballast = vec![1u8; 64 * 1024 * 1024];
        std::hint::black_box(&ballast);
        let after = peak_resident_bytes().expect("getrusage answers");
        assert!(after >= before + 32 * 1024 * 1024, "64 MiB touched raises the peak: {before} -> {after}");
    }
}
