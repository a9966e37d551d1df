//! Where a single-event phase's time went inside the service, from the instances' own
//! series: a call's wait in its org's queue, the hand-over to a blocking thread and the
//! pool, and its shared transaction split into the statements' round trips and the
//! service's work between them. Events per second say how fast; these say which part
//! to cut next.

use crate::cluster::Scrape;

/// The histograms read, each as (sum, count), with the labels that pick the series.
const SERIES: [(&str, &[&str]); 8] = [
    ("grpc_server_handling_seconds", &["grpc_method=\"RecordUsage\""]),
    ("usage_queue_seconds", &[]),
    ("db_blocking_start_seconds", &[]),
    ("db_pool_acquire_seconds", &[]),
    ("db_transaction_seconds", &["part=\"statements\""]),
    ("db_transaction_seconds", &["part=\"service\""]),
    ("db_transaction_statements", &[]),
    ("usage_transaction_events", &[]),
];

/// The series' sums and counts over all instances at one instant.
pub struct StageSample {
    series: [(f64, f64); 8],
}

/// Means over a phase: milliseconds per call or per transaction, and sizes.
pub struct Stages {
    /// Server time of a RecordUsage call, from its arrival to its answer.
    pub call_ms: f64,
    /// A call's wait in its org's queue for a shared transaction.
    pub queue_ms: f64,
    /// Database work handed to the blocking pool until a thread runs it.
    pub thread_ms: f64,
    /// The wait for a pooled connection.
    pub pool_ms: f64,
    /// A transaction's statements (round trips, `BEGIN` and `COMMIT` included).
    pub statements_ms: f64,
    /// A transaction's time in the service between its statements.
    pub service_ms: f64,
    /// Statements of a transaction, `BEGIN` and `COMMIT` included.
    pub statements_per_transaction: f64,
    /// Events a usage transaction decided together.
    pub events_per_transaction: f64,
}

fn mean((sum, count): (f64, f64)) -> f64 {
    if count > 0.0 { sum / count } else { 0.0 }
}

impl StageSample {
    /// The series summed over `scrapes` (one per instance).
    pub fn of(scrapes: &[Scrape]) -> Self {
        let mut series = [(0.0, 0.0); 8];
        for scrape in scrapes {
            for (total, (name, labels)) in series.iter_mut().zip(SERIES) {
                total.0 += scrape.sum(&format!("{name}_sum"), labels);
                total.1 += scrape.sum(&format!("{name}_count"), labels);
            }
        }
        Self { series }
    }

    /// The means of what happened between `self` and `later`.
    pub fn until(&self, later: &StageSample) -> Stages {
        let delta = |i: usize| (later.series[i].0 - self.series[i].0, later.series[i].1 - self.series[i].1);
        let ms = |i: usize| mean(delta(i)) * 1000.0;
        Stages {
            call_ms: ms(0),
            queue_ms: ms(1),
            thread_ms: ms(2),
            pool_ms: ms(3),
            statements_ms: ms(4),
            service_ms: ms(5),
            statements_per_transaction: mean(delta(6)),
            events_per_transaction: mean(delta(7)),
        }
    }
}
