//! Prometheus metrics on an HTTP port of their own (`--metrics-listen`). Code records
//! through the `metrics` facade (a no-op until an exporter is installed, as in tests);
//! this module installs the exporter and samples what is not an event: the process's
//! CPU and memory (from `/proc`) and the connection pool.
//!
//! Names recorded elsewhere, for one place to look them up:
//! - `grpc_server_handled_total{service,method,code}` and
//!   `grpc_server_handling_seconds{service,method}` (grpc/observe.rs);
//! - `db_pool_waiting`, `db_pool_acquire_seconds` (db/mod.rs);
//! - `violation_feed_subscribers`, `violation_feed_publish_lag_seconds` (feed);
//! - `usage_events_total{outcome}`, `usage_transaction_events` (app/usage.rs).

use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tokio_util::sync::CancellationToken;

use crate::db::Db;

/// Latency buckets, in seconds: fine below 10 ms where the targets are.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// Sizes of usage transactions (events decided together).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1000.0, 2000.0];

/// Serves `/metrics` on `addr`; must run inside the tokio runtime.
pub fn install(addr: SocketAddr) -> anyhow::Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full("usage_transaction_events".into()), BATCH_BUCKETS)?
        .install()?;
    tracing::info!(address = %addr, "serving Prometheus metrics on /metrics");
    Ok(())
}

/// What `/proc/self` says about this process.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ProcessSample {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub peak_resident_bytes: u64,
    pub threads: u64,
}

/// Reads `/proc/self/stat` and `/proc/self/status`; `None` where there is no procfs.
pub fn sample_process() -> Option<ProcessSample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_process(&stat, &status, clock_ticks_per_second())
}

/// Linux reports CPU time in clock ticks; USER_HZ is 100 on every mainstream platform.
fn clock_ticks_per_second() -> f64 {
    100.0
}

fn parse_process(stat: &str, status: &str, ticks: f64) -> Option<ProcessSample> {
    // The command name (field 2) may hold spaces: count fields after its closing paren.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let kb = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()
    };
    Some(ProcessSample {
        cpu_seconds: (utime + stime) / ticks,
        resident_bytes: kb("VmRSS:")? * 1024,
        peak_resident_bytes: kb("VmHWM:")? * 1024,
        threads: kb("Threads:").unwrap_or(0),
    })
}

/// Samples process and pool figures every `interval` until `stop`.
pub async fn sample(db: Db, interval: Duration, stop: CancellationToken) {
    loop {
        if let Some(p) = sample_process() {
            metrics::gauge!("process_cpu_seconds_total").set(p.cpu_seconds);
            metrics::gauge!("process_resident_memory_bytes").set(p.resident_bytes as f64);
            metrics::gauge!("process_resident_memory_peak_bytes").set(p.peak_resident_bytes as f64);
            metrics::gauge!("process_threads").set(p.threads as f64);
        }
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

    const STAT: &str = "4242 (billing (x) y) S 1 4242 4242 0 -1 4194560 1500 0 0 0 250 50 0 0 20 0 9 0 \
                        1234 100000 2000 18446744073709551615";
    const STATUS: &str = "Name:\tbilling\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t9\n";

    #[test]
    fn cpu_time_is_user_plus_system_ticks_even_with_parens_in_the_name() {
        let s = parse_process(STAT, STATUS, 100.0).expect("parses");
        assert_eq!(s.cpu_seconds, 3.0);
    }

    #[test]
    fn memory_figures_come_from_status_in_bytes() {
        let s = parse_process(STAT, STATUS, 100.0).expect("parses");
        assert_eq!((s.resident_bytes, s.peak_resident_bytes, s.threads), (10240 * 1024, 20480 * 1024, 9));
    }

    #[test]
    fn this_process_can_be_sampled() {
        let s = sample_process().expect("procfs on Linux");
        assert!(s.resident_bytes > 0 && s.peak_resident_bytes >= s.resident_bytes);
    }
}
