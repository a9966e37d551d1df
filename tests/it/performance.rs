//! What the performance work relies on: concurrent RecordUsage calls grouped into shared
//! transactions without changing any answer, the Prometheus endpoint, and a smoke run of
//! the benchmark so it cannot rot.

use std::collections::HashSet;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use billing::app::usage_batcher::BatcherConfig;
use billing::proto::v1 as pb;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::db::server_url;
use crate::support::fixtures::{Tenant, event, record, usage_client};
use crate::support::server::test_server_config;
use crate::support::{TestDb, TestServer, bad_fields};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[tokio::test]
async fn concurrent_calls_share_transactions_and_keep_their_own_answers() {
    let config = billing::server::ServerConfig {
        usage_batching: BatcherConfig { max_in_flight: 1, ..BatcherConfig::default() },
        ..test_server_config()
    };
    let server = TestServer::start_with(Arc::new(TestDb::create()), config, |c| c).await;
    server.wait_serving().await;
    let t = Tenant::create(&server, "Acme").await;
    let client = usage_client(&server, &t.key).await;

    // Five concurrent sends of one event: one effect, the rest replays.
    let repeated = event(&t, "same", "CREED", "1", "2");
    let mut calls = Vec::new();
    for i in 0..60 {
        let e = match i {
            0..5 => repeated.clone(),
            5 => event(&t, "bad", "NO-SUCH-CODE", "1", "2"),
            _ => event(&t, &format!("e{i}"), "CREED", "1", "2"),
        };
        let mut c = client.clone();
        calls.push(tokio::spawn(async move { (i, record(&mut c, e).await) }));
    }
    let mut replays = 0;
    let mut firsts = 0;
    for call in calls {
        let (i, result) = call.await.unwrap();
        match i {
            0..5 => {
                let o = result.expect("repeat answered");
                assert_eq!(o.decision, pb::UsageDecision::Allowed as i32);
                if o.replayed { replays += 1 } else { firsts += 1 }
            }
            5 => {
                let status = result.expect_err("unknown product refused");
                assert_eq!(status.code(), Code::InvalidArgument);
                assert_eq!(bad_fields(&status), vec!["event.product_code"]);
            }
            _ => assert!(!result.expect("recorded").replayed),
        }
    }
    assert_eq!((firsts, replays), (1, 4), "one send of the repeated event took effect");

    let mut conn = server.db.connect();
    let rows: Count =
        diesel::sql_query("SELECT count(*) AS n FROM usage_events").get_result(&mut conn).unwrap();
    assert_eq!(rows.n, 55, "each distinct valid event is stored once");
    let commits: Count = diesel::sql_query("SELECT count(DISTINCT recorded_at) AS n FROM usage_events")
        .get_result(&mut conn)
        .unwrap();
    assert!(commits.n < 55, "59 concurrent calls ran in fewer transactions ({} of them)", commits.n);
    let total: Count =
        diesel::sql_query("SELECT sum(quantity)::int8 AS n FROM usage_totals WHERE window_kind = 'DAY'")
            .get_result(&mut conn)
            .unwrap();
    assert_eq!(total.n, 55, "totals count every stored event once");
}

/// The trimmed cells of the first line of `table` that starts with `start`.
fn row_cells<'a>(table: &'a str, start: &str) -> Option<Vec<&'a str>> {
    Some(table.lines().find(|l| l.starts_with(start))?.split('|').map(str::trim).collect())
}

/// The numbers in the first row of a report's table that starts with `start`.
fn numbers_in_row(table: &str, start: &str) -> Vec<f64> {
    row_cells(table, start).unwrap_or_default().iter().filter_map(|c| c.parse().ok()).collect()
}

/// The text in the first row starting with `start` of a report's table (its first line
/// starting `| ` is the header), in the column whose header is `column`.
fn cell_text<'a>(table: &'a str, start: &str, column: &str) -> Option<&'a str> {
    let at = row_cells(table, "| ")?.iter().position(|h| *h == column)?;
    row_cells(table, start)?.get(at).copied()
}

/// [`cell_text`] as a number.
fn cell(table: &str, start: &str, column: &str) -> Option<f64> {
    cell_text(table, start, column)?.parse().ok()
}

/// Drops the database a benchmark run made, whatever still holds it open.
fn drop_bench_database(database: &str) {
    let mut admin = PgConnection::establish(&format!("{}/postgres", server_url())).unwrap();
    let _ =
        diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)")).execute(&mut admin);
}

/// The processes whose parent is `pid`, from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let parent = format!("PPid:\t{pid}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/status")).is_ok_and(|s| s.lines().any(|l| l == parent))
        })
        .collect()
}

#[test]
fn a_benchmark_stopped_by_sigterm_stops_the_instances_it_started() {
    use std::io::BufRead;
    let out_dir = crate::support::process::tempdir::TempDir::new();
    let database = format!("bench_stop_{}", uuid::Uuid::now_v7().simple());
    let mut bench = Command::new(env!("CARGO_BIN_EXE_billing-bench"))
        .args(["--smoke", "--database", &database, "--server-bin", env!("CARGO_BIN_EXE_billing-commitments")])
        .arg("--out")
        .arg(out_dir.path())
        .env("BENCH_POSTGRES_URL", server_url())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run billing-bench");
    // "seeding" is printed once every instance serves. The pipe stays open until the end:
    // closed, the benchmark's next line would fail to print and end the run another way.
    let mut stderr = std::io::BufReader::new(bench.stderr.take().unwrap());
    let seen: Vec<String> =
        (&mut stderr).lines().map_while(Result::ok).take_while(|l| !l.starts_with("seeding")).collect();
    let instances = children_of(bench.id());
    let killed = Command::new("kill").args(["-TERM", &bench.id().to_string()]).status().unwrap();
    let status = bench.wait().unwrap();
    drop(stderr);
    drop_bench_database(&database);
    assert_eq!(instances.len(), 2, "two instances were running when it was stopped: {seen:?}");
    assert!(killed.success() && !status.success(), "the run ends stopped, not done: {status}");
    // The benchmark waits for its instances before it exits: none may outlive it.
    let left: Vec<&u32> =
        instances.iter().filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists()).collect();
    for p in &left {
        let _ = Command::new("kill").arg(p.to_string()).status();
    }
    assert!(left.is_empty(), "instances {left:?} outlived the stopped benchmark");
}

#[test]
fn benchmark_smoke_run_measures_every_phase_on_every_instance() {
    let out_dir = crate::support::process::tempdir::TempDir::new();
    let database = format!("bench_smoke_{}", uuid::Uuid::now_v7().simple());
    let out = Command::new(env!("CARGO_BIN_EXE_billing-bench"))
        .args(["--smoke", "--database", &database, "--server-bin", env!("CARGO_BIN_EXE_billing-commitments")])
        .args(["--instances", "3", "--prefill-events", "1200"])
        .arg("--out")
        .arg(out_dir.path())
        .env("BENCH_POSTGRES_URL", server_url())
        .output()
        .expect("run billing-bench");
    let prefilled = PgConnection::establish(&format!("{}/{database}", server_url())).ok().map(|mut c| {
        diesel::sql_query("SELECT count(*) AS n FROM usage_events WHERE event_id LIKE 'prefill-%'")
            .get_result::<Count>(&mut c)
            .map(|c| c.n)
    });
    drop_bench_database(&database);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "bench failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    for section in [
        "## RecordUsage, one event per call",
        "Open loop at half the best rate",
        "## RecordUsageBatch",
        "## ReserveUsage -> CommitReservation",
        "## Violation latency",
        "## Idle WatchViolations subscribers",
        "## Waves of 20 streams opened and closed",
    ] {
        assert!(stdout.contains(section), "{section:?} missing from:\n{stdout}");
    }
    let singles = stdout
        .split("## RecordUsage, one event per call")
        .nth(1)
        .and_then(|rest| rest.split("Inside the service").next())
        .unwrap_or_default();
    let rows: HashSet<&str> =
        singles.lines().filter(|l| l.starts_with("| 1 |") || l.starts_with("| 4 |")).collect();
    assert_eq!(rows.len(), 2, "one row per concurrency:\n{stdout}");
    assert!(stdout.contains("3 instance(s)"), "the header names the instances:\n{stdout}");
    assert!(matches!(prefilled, Some(Ok(1200))), "1,200 events were prefilled: {prefilled:?}");
    let spread = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Events decided by each instance over the load phases: "))
        .unwrap_or_default();
    let decided: Vec<f64> = spread.trim_end_matches('.').split(", ").filter_map(|n| n.parse().ok()).collect();
    assert!(
        decided.len() == 3 && decided.iter().all(|n| *n > 0.0),
        "the load reaches all three instances: {spread:?}"
    );
    let connections = cell_text(singles, "| 4 |", "PostgreSQL connections open / busy").unwrap_or_default();
    let busy_open: Vec<i64> = connections.split(" / ").filter_map(|n| n.trim().parse().ok()).collect();
    assert!(
        matches!(busy_open[..], [open, busy] if open >= 3 && busy >= 1),
        "each instance's pool opened a connection and some were busy: {connections:?}"
    );
    let wal = cell(singles, "| 4 |", "WAL KB per event").unwrap_or_default();
    assert!(wal > 0.0, "the WAL each event cost was measured: {singles:?}");
    let inside = stdout.split("Inside the service").nth(1).unwrap_or_default();
    let stages = numbers_in_row(inside, "| 4 |");
    assert!(
        matches!(stages[..], [4.0, call, _, _, _, statements, _, per_transaction, events]
            if call > 0.0 && statements > 0.0 && per_transaction >= 3.0 && events >= 1.0),
        "where the calls' time went inside the service was measured: {inside:?}"
    );
    let open_loop = numbers_in_row(inside, "| open loop |");
    assert!(
        matches!(open_loop[..], [call, _, _, _, statements, _, _, events] if call > 0.0 && statements > 0.0 && events >= 1.0),
        "the open loop's time inside the service was measured: {inside:?}"
    );
    let batch = stdout.split("## RecordUsageBatch").nth(1).unwrap_or_default();
    for column in ["events/s", "pgbench events/s", "pgbench, the rows alone: events/s"] {
        let figure = cell(batch, "| 10 |", column);
        assert!(
            figure.is_some_and(|f| f > 0.0),
            "batches of 10: {column:?} measured, got {figure:?} in {batch}"
        );
    }
    let pairs = stdout.split("## ReserveUsage -> CommitReservation").nth(1).unwrap_or_default();
    let per_second = cell(pairs, "| 2 |", "pairs/s").unwrap_or_default();
    assert!(per_second > 0.0, "reserve -> commit pairs were measured: {pairs:?}");
    assert!(out_dir.path().join("report.md").exists(), "the report is written");
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    n: i32,
}

/// Counts the connection's prepared statements with text `sql`.
fn prepared_count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement = $1")
        .bind::<diesel::sql_types::Text, _>(sql)
        .get_result::<Count>(conn)
        .unwrap()
        .n
}

#[test]
fn hand_written_statements_are_prepared_once_per_connection_and_raw_ones_are_not() {
    use billing::db::prepared::{BindNext, prepared};
    let db = TestDb::create();
    let mut conn = db.connect();
    const SQL: &str = "SELECT $1::int4 + 1 AS n";
    for i in 0..3 {
        let row: Number =
            prepared(SQL).bind::<diesel::sql_types::Integer, _>(i).get_result(&mut conn).unwrap();
        assert_eq!(row.n, i + 1, "each run binds its own value");
    }
    assert_eq!(prepared_count(&mut conn, SQL), 1, "three runs, one prepared statement");

    const RAW: &str = "SELECT $1::int4 + 2 AS n";
    let row: Number =
        diesel::sql_query(RAW).bind::<diesel::sql_types::Integer, _>(1).get_result(&mut conn).unwrap();
    assert_eq!(row.n, 3);
    assert_eq!(prepared_count(&mut conn, RAW), 0, "sql_query is sent unnamed every time");
}

#[tokio::test]
async fn a_full_usage_queue_answers_resource_exhausted_at_once_and_loses_nothing() {
    // One transaction at a time, one event each, one call allowed to wait.
    let config = billing::server::ServerConfig {
        usage_batching: BatcherConfig {
            max_in_flight: 1,
            max_group: 1,
            max_queued: 1,
            ..BatcherConfig::default()
        },
        ..test_server_config()
    };
    let server = TestServer::start_with(Arc::new(TestDb::create()), config, |c| c).await;
    server.wait_serving().await;
    let t = Tenant::create(&server, "Acme").await;
    let client = usage_client(&server, &t.key).await;

    // The first call runs and waits on the customer's row, which the test holds.
    let mut blocker = server.db.connect();
    blocker.batch_execute("BEGIN").unwrap();
    diesel::sql_query("SELECT 1 AS n FROM customers WHERE id = $1::uuid FOR UPDATE")
        .bind::<diesel::sql_types::Text, _>(&t.customer_id)
        .execute(&mut blocker)
        .unwrap();
    let send = |id: String| {
        let mut c = client.clone();
        let e = event(&t, &id, "CREED", "1", "2");
        tokio::spawn(async move { record(&mut c, e).await })
    };
    let running = send("running".into());
    server.db.wait_for_lock_waiters(1, "the first call waits on the row lock").await;

    // Four more: one fits in the queue, three are refused without waiting for the lock.
    let mut more: Vec<_> = (0..4).map(|i| send(format!("more{i}"))).collect();
    let mut refused = Vec::new();
    while refused.len() < 3 {
        // The limit is for a broken bound (the calls would wait for the lock), not a pace.
        let (done, i, rest) =
            tokio::time::timeout(Duration::from_secs(60), futures::future::select_all(more))
                .await
                .expect("calls past the queue's bound are answered without waiting");
        more = rest;
        let status = done.unwrap().expect_err(&format!("call {i} cannot finish while the row is locked"));
        refused.push(status);
    }
    for status in &refused {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert_eq!(crate::support::reason(status), "USAGE_QUEUE_FULL");
        let retry = status.get_error_details().retry_info().and_then(|r| r.retry_delay);
        assert!(retry.is_some_and(|d| d > Duration::ZERO), "a retry delay is given: {retry:?}");
    }

    // Released, the running and the queued call both record; the queue takes calls again.
    blocker.batch_execute("COMMIT").unwrap();
    assert!(!running.await.unwrap().expect("the running call records").replayed);
    let queued = more.pop().expect("one call was queued");
    assert!(!queued.await.unwrap().expect("the queued call records").replayed);
    send("after".into()).await.unwrap().expect("a call after the queue drained records");
    let mut conn = server.db.connect();
    let rows: Count =
        diesel::sql_query("SELECT count(*) AS n FROM usage_events").get_result(&mut conn).unwrap();
    assert_eq!(rows.n, 3, "the two accepted calls and the later one are stored, the refused ones are not");
}
