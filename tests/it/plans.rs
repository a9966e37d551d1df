//! Statements are planned once per pooled connection (generic plans) from the table
//! statistics of that moment. These tests pin what keeps that safe: the pool's sessions
//! plan once, never JIT-compile, and scan sequentially only where no index serves; and
//! the usage path's lookups by a batch's keys stay index probes by those keys even when
//! planned while their tables were analyzed empty (a new database, a month made ahead),
//! which is when a plain join planned a scan of the organization's whole table.

use billing::db::usage::KEY_LOOKUPS;
use billing::db::{Db, DbError};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::support::TestDb;
use crate::support::server::test_db_config;

#[derive(QueryableByName)]
struct Settings {
    #[diesel(sql_type = Text)]
    plan_cache_mode: String,
    #[diesel(sql_type = Text)]
    enable_seqscan: String,
    #[diesel(sql_type = Text)]
    jit: String,
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_sessions_plan_once_never_jit_and_scan_only_where_no_index_serves() {
    let db = TestDb::create();
    let pool = Db::open(&test_db_config(&db.url)).unwrap();
    let s: Settings = pool
        .run(|conn| {
            diesel::sql_query(
                "SELECT current_setting('plan_cache_mode') AS plan_cache_mode, \
                 current_setting('enable_seqscan') AS enable_seqscan, current_setting('jit') AS jit",
            )
            .get_result(conn)
            .map_err(DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(s.plan_cache_mode, "force_generic_plan", "statements are planned once per connection");
    assert_eq!(s.enable_seqscan, "off", "an index serves wherever one can");
    assert_eq!(s.jit, "off", "a plan left with a sequential scan costs past jit_above_cost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_key_lookups_planned_on_tables_analyzed_empty_probe_by_their_keys() {
    let db = TestDb::create();
    // The worst moment to plan: every table analyzed while empty.
    db.connect().batch_execute("ANALYZE").unwrap();
    let pool = Db::open(&test_db_config(&db.url)).unwrap();
    for (i, (sql, types, probes)) in KEY_LOOKUPS.iter().enumerate() {
        let plan = generic_plan(&pool, &format!("lookup_{i}"), types, sql).await;
        let plan: Vec<&str> = plan.iter().map(String::as_str).collect();
        let shown = plan.join("\n");
        assert!(!shown.contains("Seq Scan") && !shown.contains("Hash"), "no scan of a table:\n{shown}");
        let conditions: Vec<&&str> = plan.iter().filter(|l| l.contains("Index Cond")).collect();
        assert!(!conditions.is_empty(), "the lookup reads through an index:\n{shown}");
        for c in conditions {
            assert!(
                probes.iter().any(|p| c.contains(p)),
                "every index probe names its key ({probes:?}), not only the org: {c}\n{shown}"
            );
        }
    }
}

/// A usage transaction's first statement, planned as the pool plans it (once, generic),
/// names no month of `usage_events`: a generic plan locks and starts a scan on every
/// partition it names, so a join to the events there cost each transaction more with
/// every month of history kept. The events of the keys it finds are read apart, by
/// replays only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_start_statement_opens_no_month_of_usage_events() {
    let db = TestDb::create();
    let pool = Db::open(&test_db_config(&db.url)).unwrap();
    let shown = generic_plan(&pool, "start", "uuid, uuid[], text[]", billing::db::usage_start::LOCKING)
        .await
        .join("\n");
    assert!(shown.contains("usage_event_keys"), "the statement reads the dedupe keys:\n{shown}");
    assert!(!shown.contains("usage_events"), "no month of the events table is opened:\n{shown}");
}

/// The lines of the plan `sql` (its parameters of `types`) gets when prepared on a pooled
/// session, executed with every parameter NULL: the plan the pool keeps for it.
async fn generic_plan(pool: &Db, name: &str, types: &str, sql: &str) -> Vec<String> {
    let nulls = vec!["NULL"; types.split(',').count()].join(", ");
    let prepare = format!("PREPARE {name}({types}) AS {sql}");
    let explain = format!("EXPLAIN EXECUTE {name}({nulls})");
    let plan: Vec<PlanLine> = pool
        .run(move |conn| -> Result<Vec<PlanLine>, DbError> {
            conn.batch_execute(&prepare)?;
            Ok(diesel::sql_query(explain).load(conn)?)
        })
        .await
        .unwrap();
    plan.into_iter().map(|l| l.line).collect()
}
