//! `billing-bench`: measures the service against the Postgres limit on this machine.
//!
//! It starts release instances (two by default, `--instances N`) on a fresh database,
//! seeds a realistic org through the public API, drives RecordUsage (single and batched)
//! from its own tonic clients, spread over every instance,
//! runs pgbench with the per-event SQL at the same concurrencies (and in set-based form
//! at the batch sizes), times violations to
//! subscribers on the first and last instance, and measures idle subscribers' memory.
//! Server-side figures (CPU, RSS, subscribers) come from the instances' Prometheus
//! endpoints, PostgreSQL's connections from `pg_stat_activity`.
//! `--smoke` runs every phase on tiny data in seconds; the test suite runs it.

mod cluster;
mod connections;
mod cpu;
mod feed;
mod load;
mod pgbench;
mod prefill;
mod seed;
mod settle;
mod stages;
mod wal;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::cluster::{Cluster, Scrape, connect, sibling_binary};
use crate::connections::{ConnectionSampler, ConnectionsUsed};
use crate::cpu::CpuSample;
use crate::load::{Measured, Target};
use crate::stages::{StageSample, Stages};

#[derive(Parser, Debug)]
#[command(name = "billing-bench", about = "Throughput and latency of the service against pgbench")]
struct Args {
    /// Every phase on tiny data for a few seconds: checks the harness, measures nothing.
    #[arg(long)]
    smoke: bool,
    /// PostgreSQL server URL without a database name.
    #[arg(long, env = "BENCH_POSTGRES_URL", default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres_url: String,
    /// Database the run creates (dropping it first if it exists).
    #[arg(long, default_value = "billing_bench")]
    database: String,
    /// The service binary; by default the one next to this binary.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Customers to seed.
    #[arg(long, default_value_t = 10_000)]
    customers: usize,
    /// Measured time of each load phase.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured time before each load phase.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Client concurrencies of the single-event phase.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    concurrency: Vec<usize>,
    /// Client concurrencies of the reserve -> commit phase (ReservationService).
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    reservation_concurrency: Vec<usize>,
    /// Batch sizes of the batch phase.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    batch_sizes: Vec<usize>,
    /// Concurrent callers of the batch phase.
    #[arg(long, default_value_t = 4)]
    batch_callers: usize,
    /// HTTP/2 connections the load is spread over (at least one per instance).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Service instances on the one database; the load phases spread their connections
    /// over all of them, the feed phases use the first and the last.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    instances: u16,
    /// Violations timed in the latency phase.
    #[arg(long, default_value_t = 500)]
    violations: usize,
    /// Idle WatchViolations subscribers opened.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Waves of streams opened and closed, to see whether memory comes back.
    #[arg(long, default_value_t = 6)]
    stream_waves: usize,
    /// Streams of each wave.
    #[arg(long, default_value_t = 5_000)]
    wave_streams: usize,
    /// Connection pool size of each instance.
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
    /// Usage events written in SQL before the load (spread over the last year), to
    /// measure recording on tables of a long-lived deployment.
    #[arg(long, default_value_t = 0)]
    prefill_events: i64,
    /// Idle time before the load, after autovacuum has finished, a checkpoint, the file
    /// systems are flushed and write-back has drained (which always happens): lets a
    /// machine that just wrote gigabytes calm.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Where the report (Markdown) and the instances' logs are written.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

impl Args {
    fn shrink_for_smoke(mut self) -> Self {
        if self.smoke {
            self.customers = 20;
            self.duration = Duration::from_secs(1);
            self.warmup = Duration::from_millis(200);
            self.concurrency = vec![1, 4];
            self.reservation_concurrency = vec![2];
            self.batch_sizes = vec![10];
            self.batch_callers = 2;
            self.connections = 2;
            self.violations = 10;
            self.subscribers = 50;
            self.stream_waves = 2;
            self.wave_streams = 20;
        }
        self
    }
}

/// Figures of one load phase.
struct PhaseRow {
    /// Callers, or the batch size in the batch phase.
    size: usize,
    measured: Measured,
    /// CPU of all instances together, in percent of one core.
    cpu_percent: f64,
    /// The largest peak RSS of one instance.
    peak_rss: f64,
    /// CPU of the service and PostgreSQL per 1,000 events, in milliseconds.
    cpu_per_1000: f64,
    connections: ConnectionsUsed,
    /// WAL written per event, in KB (all of PostgreSQL's, over the phase).
    wal_kb_per_event: f64,
    /// Where the instances' time went (single-event phases).
    stages: Stages,
}

fn mb(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

/// Runs one closed-loop phase of `callers` (sending batches of `batch`, or single events
/// when 0) and measures what it cost the instances and PostgreSQL.
async fn phase(
    args: &Args,
    cluster: &Cluster,
    target: &Target,
    (callers, batch): (usize, usize),
) -> anyhow::Result<PhaseRow> {
    let metrics = cluster.metrics();
    let sampler = ConnectionSampler::start(&cluster.database_url).await?;
    let wal = wal::WalMark::take(&cluster.database_url).await?;
    let scrapes = Scrape::all(&metrics).await?;
    let (before, stages) = (CpuSample::of(&scrapes), StageSample::of(&scrapes));
    let measured = load::closed_loop(target, callers, batch, args.warmup, args.duration).await;
    let wall = (args.warmup + args.duration).as_secs_f64();
    // The instances' CPU sampler runs every second: let it catch the phase's end.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let scrapes = Scrape::all(&metrics).await?;
    let after = CpuSample::of(&scrapes);
    let stages = stages.until(&StageSample::of(&scrapes));
    let used = before.used_until(&after);
    let connections = sampler.stop();
    let wal_bytes = wal.bytes_since().await?;
    let events = measured.events_per_second() * wall;
    Ok(PhaseRow {
        size: if batch == 0 { callers } else { batch },
        cpu_percent: used.service / (wall + 1.1) * 100.0,
        cpu_per_1000: used.ms_per_1000(measured.events_per_second(), wall),
        measured,
        peak_rss: after.peak_rss,
        connections,
        wal_kb_per_event: if events > 0.0 { wal_bytes as f64 / 1024.0 / events } else { 0.0 },
        stages,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse().shrink_for_smoke();
    // A run stopped by a signal (`timeout`, `kill`, Ctrl-C) drops what it started: the
    // instances (stopped and waited for by `Instance`'s drop) and a running pgbench (killed
    // on drop), so none is left holding connections and CPU that the next run would count.
    tokio::select! {
        done = run(args) => done,
        signal = stop_signal() => anyhow::bail!("stopped by {signal}; the instances it started are stopped"),
    }
}

/// The first SIGINT or SIGTERM, by name.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut int), Ok(mut term)) => tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        // Without handlers the signals keep their default action: nothing to wait for.
        _ => std::future::pending().await,
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let bin = match &args.server_bin {
        Some(p) => p.clone(),
        None => sibling_binary("billing-commitments")?,
    };
    let run_started = Instant::now();
    let count = usize::from(args.instances);
    eprintln!("starting {count} instances on a fresh database {:?}", args.database);
    let cluster =
        Cluster::start(&bin, &args.postgres_url, &args.database, count, args.pool_size, &args.out).await?;
    let (a, b) = (&cluster.instances[0], &cluster.instances[count - 1]);
    // Channel i goes to instance i mod N, so channel 0 (the feed phase's sender) is on A.
    let mut channels = Vec::new();
    for i in 0..args.connections.max(count) {
        channels.push(connect(cluster.instances[i % count].grpc).await?);
    }
    eprintln!("seeding {} customers", args.customers);
    let seeded = seed::seed(&channels, &cluster.key, args.customers, 64).await?;
    if args.prefill_events > 0 {
        eprintln!("prefilling {} usage events", args.prefill_events);
        prefill::prefill(&cluster.database_url, args.prefill_events).await?;
    }
    // As autovacuum would within a minute: plans made on the empty tables' statistics
    // scan a whole org where an index finds one customer's rows.
    cluster.analyze().await?;
    let settled = settle::settle(&cluster.database_url, args.settle).await?;
    eprintln!(
        "settled: autovacuum done, checkpointed, write-back drained and {:?} idle in {settled:.0?}",
        args.settle
    );
    let target = Target {
        channels: channels.clone(),
        key: cluster.key.clone(),
        customers: std::sync::Arc::new(seeded.customers),
        codes: seeded.codes,
    };

    let mut singles = Vec::new();
    for &callers in &args.concurrency {
        eprintln!("RecordUsage, {callers} callers");
        singles.push(phase(&args, &cluster, &target, (callers, 0)).await?);
    }
    let best = singles.iter().map(|r| r.measured.events_per_second()).fold(0.0, f64::max);
    eprintln!("RecordUsage, open loop at half of {best:.0} events/s");
    let metrics = cluster.metrics();
    let stages = StageSample::of(&Scrape::all(&metrics).await?);
    let half = load::open_loop(&target, (best / 2.0).max(1.0), args.warmup, args.duration).await;
    let half_stages = stages.until(&StageSample::of(&Scrape::all(&metrics).await?));

    let mut reservations = Vec::new();
    for &callers in &args.reservation_concurrency {
        eprintln!("ReserveUsage -> CommitReservation, {callers} callers");
        reservations
            .push((callers, load::reserve_commit(&target, callers, args.warmup, args.duration).await));
    }

    let mut batches = Vec::new();
    for &size in &args.batch_sizes {
        eprintln!("RecordUsageBatch of {size}, {} callers", args.batch_callers);
        batches.push(phase(&args, &cluster, &target, (args.batch_callers, size)).await?);
    }

    let mut per_instance = Vec::new();
    for instance in &cluster.instances {
        per_instance.push(Scrape::from(instance.metrics).await?.sum("usage_events_total", &[]));
    }

    eprintln!("pgbench with the per-event SQL");
    let scripts = pgbench::prepare(&cluster.database_url, &args.out).await?;
    let seconds = args.duration.as_secs();
    let mut pg = Vec::new();
    for &callers in &args.concurrency {
        let clients = callers.min(pgbench::free_connections(&cluster.database_url).await?);
        pg.push(
            pgbench::run(&cluster.database_url, &scripts.per_event, (args.customers, 1), clients, seconds)
                .await?,
        );
    }
    eprintln!("pgbench with the batch SQL, then writing the rows alone");
    let (mut pg_batches, mut pg_rows) = (Vec::new(), Vec::new());
    for &size in &args.batch_sizes {
        let sized = (args.customers, size);
        let url = &cluster.database_url;
        let batch = pgbench::run(url, &scripts.batch, sized, args.batch_callers, seconds).await?;
        pg_batches.push(batch.tps * size as f64);
        let rows = pgbench::run(url, &scripts.rows, sized, args.batch_callers, seconds).await?;
        pg_rows.push(rows.tps * pgbench::rows_per_transaction(args.customers, size) as f64);
    }

    eprintln!("violation latency, {} violations", args.violations);
    let latency =
        feed::violation_latency(&target, a.grpc, b.grpc, args.violations, Duration::from_millis(20)).await?;
    eprintln!("{} idle subscribers", args.subscribers);
    let idle = feed::idle_subscribers(b.grpc, b.metrics, &cluster.key, args.subscribers).await?;
    eprintln!("{} waves of {} streams", args.stream_waves, args.wave_streams);
    let waves =
        feed::stream_waves(b.grpc, b.metrics, &cluster.key, (args.stream_waves, args.wave_streams)).await?;

    let report = report(
        &args,
        &singles,
        (&half, &half_stages),
        best,
        (&batches, &pg_batches, &pg_rows),
        &per_instance,
        &reservations,
        &pg,
        &latency,
        (&idle, &waves),
        run_started.elapsed(),
    );
    println!("{report}");
    std::fs::write(args.out.join("report.md"), &report)?;
    let measured: Vec<&Measured> = singles
        .iter()
        .map(|r| &r.measured)
        .chain([&half])
        .chain(batches.iter().map(|r| &r.measured))
        .chain(reservations.iter().map(|(_, r)| &r.pairs))
        .collect();
    let errors: u64 = measured.iter().map(|m| m.errors).sum();
    if errors > 0 {
        let first = measured.iter().find_map(|m| m.first_error.clone());
        anyhow::bail!("{errors} calls failed; first: {}", first.unwrap_or_default());
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn report(
    args: &Args,
    singles: &[PhaseRow],
    (half, half_stages): (&Measured, &Stages),
    best: f64,
    (batches, pg_batches, pg_rows): (&[PhaseRow], &[f64], &[f64]),
    per_instance: &[f64],
    reservations: &[(usize, load::PairsMeasured)],
    pg: &[pgbench::PgbenchRun],
    latency: &feed::FeedLatency,
    (idle, waves): (&feed::IdleSubscribers, &feed::StreamWaves),
    took: Duration,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# billing-bench{}\n\n{} customers, {} usage events prefilled, {} measured per phase after {} warm-up, {} HTTP/2 connections, \
         {} instance(s) (pool {} each), {} cores; run took {:.0?}.\n",
        if args.smoke { " (smoke: not a measurement)" } else { "" },
        args.customers,
        args.prefill_events,
        humantime::format_duration(args.duration),
        humantime::format_duration(args.warmup),
        args.connections.max(usize::from(args.instances)),
        args.instances,
        args.pool_size,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        took,
    );
    let _ = writeln!(s, "## RecordUsage, one event per call (closed loop) vs pgbench (same per-event SQL)\n");
    let _ = writeln!(
        s,
        "| callers | events/s | p50 ms | p99 ms | p999 ms | errors | server CPU % (all instances) | CPU ms per 1,000 events (service + PostgreSQL) | server peak RSS MB | PostgreSQL connections open / busy | WAL KB per event | pgbench clients | pgbench tps | pgbench avg ms | service / pgbench |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (r, p) in singles.iter().zip(pg) {
        let m = &r.measured;
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.0} | {:.0} | {:.0} | {} / {} | {:.1} | {} | {:.0} | {:.2} | {:.2} |",
            r.size,
            m.events_per_second(),
            m.ms(0.5),
            m.ms(0.99),
            m.ms(0.999),
            m.errors,
            r.cpu_percent,
            r.cpu_per_1000,
            mb(r.peak_rss),
            r.connections.open,
            r.connections.busy,
            r.wal_kb_per_event,
            p.clients,
            p.tps,
            p.latency_avg_ms,
            m.events_per_second() / p.tps,
        );
    }
    let _ = writeln!(
        s,
        "\nInside the service, means over each phase from the instances' series (`usage_queue_seconds`, `db_blocking_start_seconds`, `db_pool_acquire_seconds`, `db_transaction_seconds`, `db_transaction_statements`, `usage_transaction_events`; the background jobs' few transactions count in too):\n"
    );
    let _ = writeln!(
        s,
        "| callers | server ms per call | queue ms | to a thread ms | connection ms | transaction: statements ms | transaction: service ms between them | statements per transaction | events per transaction |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let rows = singles.iter().map(|r| (r.size.to_string(), &r.stages));
    for (callers, t) in rows.chain([("open loop".to_owned(), half_stages)]) {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {:.3} | {:.3} | {:.2} | {:.3} | {:.1} | {:.1} |",
            callers,
            t.call_ms,
            t.queue_ms,
            t.thread_ms,
            t.pool_ms,
            t.statements_ms,
            t.service_ms,
            t.statements_per_transaction,
            t.events_per_transaction,
        );
    }
    let spread: Vec<String> = per_instance.iter().map(|n| format!("{n:.0}")).collect();
    let _ = writeln!(s, "\nEvents decided by each instance over the load phases: {}.", spread.join(", "));
    let _ = writeln!(
        s,
        "\nOpen loop at half the best rate ({:.0} events/s offered): {:.0} events/s, p50 {:.2} ms, p99 {:.2} ms, \
         p999 {:.2} ms (from each call's scheduled time), {} errors.\n",
        best / 2.0,
        half.events_per_second(),
        half.ms(0.5),
        half.ms(0.99),
        half.ms(0.999),
        half.errors,
    );
    let _ = writeln!(
        s,
        "## RecordUsageBatch ({} callers) vs pgbench (same clients, the per-event SQL set-based per batch)\n",
        args.batch_callers
    );
    let _ = writeln!(
        s,
        "The last column is pgbench writing only the rows recorded events leave (customers locked, totals, \
         balances, a ledger entry per drawdown, the event's key and row), consecutive customers, nothing read \
         or decided: what these rows cost PostgreSQL on this machine at best.\n"
    );
    let _ = writeln!(
        s,
        "| batch size | events/s | p50 ms per call | p99 ms per call | errors | server CPU % (all instances) | CPU ms per 1,000 events (service + PostgreSQL) | PostgreSQL connections open / busy | WAL KB per event | pgbench events/s | service / pgbench | pgbench, the rows alone: events/s |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for ((r, pg), rows) in batches.iter().zip(pg_batches).zip(pg_rows) {
        let m = &r.measured;
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.1} | {:.1} | {} | {:.0} | {:.0} | {} / {} | {:.1} | {pg:.0} | {:.2} | {rows:.0} |",
            r.size,
            m.events_per_second(),
            m.ms(0.5),
            m.ms(0.99),
            m.errors,
            r.cpu_percent,
            r.cpu_per_1000,
            r.connections.open,
            r.connections.busy,
            r.wal_kb_per_event,
            m.events_per_second() / pg,
        );
    }
    let _ = writeln!(
        s,
        "\n## ReserveUsage -> CommitReservation (closed loop; one pair records one event) vs RecordUsage\n"
    );
    let _ = writeln!(
        s,
        "| callers | pairs/s | pair p50 ms | pair p99 ms | reserve p50 / p99 ms | commit p50 / p99 ms | errors | RecordUsage events/s | RecordUsage p99 ms |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (callers, r) in reservations {
        let single = singles.iter().find(|x| x.size == *callers).map(|x| &x.measured);
        let m = &r.pairs;
        let _ = writeln!(
            s,
            "| {callers} | {:.0} | {:.2} | {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {} | {} | {} |",
            m.events_per_second(),
            m.ms(0.5),
            m.ms(0.99),
            load::PairsMeasured::ms(&r.reserve, 0.5),
            load::PairsMeasured::ms(&r.reserve, 0.99),
            load::PairsMeasured::ms(&r.commit, 0.5),
            load::PairsMeasured::ms(&r.commit, 0.99),
            m.errors,
            single.map_or("-".to_owned(), |x| format!("{:.0}", x.events_per_second())),
            single.map_or("-".to_owned(), |x| format!("{:.2}", x.ms(0.99))),
        );
    }
    let _ = writeln!(
        s,
        "\n## Violation latency (causing call sent on instance A -> subscriber receives)\n\n\
         | subscriber on | p50 ms | p99 ms | violations |\n|---|---:|---:|---:|\n\
         | first instance (A), the sender's | {:.2} | {:.2} | {} |\n| last instance (B) | {:.2} | {:.2} | {} |\n",
        latency.same.0, latency.same.1, latency.same.2, latency.other.0, latency.other.1, latency.other.2,
    );
    let per = (idle.rss_with - idle.rss_before) / idle.count.max(1) as f64 / 1024.0;
    let _ = writeln!(
        s,
        "## Idle WatchViolations subscribers (instance B)\n\n\
         | subscribers | RSS before MB | RSS with them MB | RSS after they left MB | KB per subscriber |\n\
         |---:|---:|---:|---:|---:|\n| {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        idle.count,
        mb(idle.rss_before),
        mb(idle.rss_with),
        mb(idle.rss_after_close),
        per,
    );
    let last = waves.waves.last().map_or(waves.rss_before, |w| w.1);
    let _ = writeln!(
        s,
        "\n## Waves of {} streams opened and closed (instance B)\n\n\
         RSS before: {:.1} MB; after the last of {} waves: {:.1} MB ({:.2}x).\n\n\
         | wave | RSS at peak MB | RSS after close MB |\n|---:|---:|---:|",
        waves.per_wave,
        mb(waves.rss_before),
        waves.waves.len(),
        mb(last),
        last / waves.rss_before.max(1.0),
    );
    for (i, (peak, after)) in waves.waves.iter().enumerate() {
        let _ = writeln!(s, "| {} | {:.1} | {:.1} |", i + 1, mb(*peak), mb(*after));
    }
    s
}
