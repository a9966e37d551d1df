//! Every statement the service runs on a tenant table names `org_id`, so Citus can route
//! it to the one shard of its organization. Checked on what PostgreSQL itself recorded
//! (`pg_stat_statements`, nested statements of functions included) while the README's
//! whole walk-through ran against a server with its background jobs every second; the
//! cross-organization functions listed in docs/scaling.md are the only exceptions.

use std::collections::HashSet;

use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use crate::e2e::wait_serving;
use crate::readme::run_walk_through;
use crate::support::private_pg::PrivatePostgres;
use crate::support::process::{ServeProcess, admin};

/// Functions that work across organizations by design; docs/scaling.md says how each
/// runs on Citus. Statements inside them may leave `org_id` out.
const CROSS_ORG_FUNCTIONS: &[&str] = &[
    "billing_api_key",
    "billing_resolve_api_key",
    "billing_due_segments",
    "billing_due_commitments",
    "billing_due_reservations",
    "billing_feed_positions",
    "billing_create_partitions_ahead",
    "billing_create_month_partition",
    "billing_drop_expired_violations",
];

/// Statements tests run as the service's role without an org filter on purpose, and why.
const TEST_PROBES: &[(&str, &str)] = &[
    (
        r#"SELECT COUNT(*) FROM "customers""#,
        "row_security.rs: a query that forgets its org filter sees its org only",
    ),
    (
        r#"UPDATE "customers" SET "name" = $1 WHERE ("customers"."id" = $2)"#,
        "row_security.rs: an update of another org's row by its id changes nothing",
    ),
    (
        "UPDATE customers SET name = name || $2 WHERE id = $1",
        "faults.rs: holds a customer's row lock from outside",
    ),
];

/// Lower case, without identifier quotes, whitespace runs made one space.
fn normalized(sql: &str) -> String {
    sql.to_lowercase().replace('"', "").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `normalized` without `--` comments, with every constant (quoted literal, number, `$n`
/// parameter) made `?`: pg_stat_statements records a function's constants as parameters.
fn shape(sql: &str) -> String {
    let uncommented: Vec<&str> = sql.lines().map(|l| l.split("--").next().unwrap_or_default()).collect();
    let text = normalized(&uncommented.join("\n"));
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut previous = ' ';
    while let Some(c) = chars.next() {
        let starts_number = c.is_ascii_digit() && !(previous.is_alphanumeric() || previous == '_');
        if c == '\'' {
            chars.by_ref().take_while(|&c| c != '\'').for_each(drop);
            out.push('?');
        } else if c == '$' || starts_number {
            while chars.next_if(|c| c.is_ascii_digit() || *c == '.').is_some() {}
            out.push('?');
        } else {
            out.push(c);
        }
        previous = c;
    }
    out
}

/// The tables of `tenant_tables` that `sql` reads or writes (after FROM, JOIN, UPDATE
/// or INTO).
fn tenant_tables_named<'a>(sql: &str, tenant_tables: &'a HashSet<String>) -> Vec<&'a str> {
    let text = normalized(sql).replace(['(', ')', ','], " ");
    let words: Vec<&str> = text.split(' ').collect();
    words
        .windows(2)
        .filter(|w| matches!(w[0], "from" | "join" | "update" | "into"))
        .filter_map(|w| tenant_tables.get(w[1].trim_start_matches("public.")).map(String::as_str))
        .collect()
}

/// Whether `sql` names `org_id` where Citus routes by it: compared by equality (or with
/// `ANY`/`IN`), or given as a column of an INSERT.
fn filters_by_org(sql: &str) -> bool {
    let text = normalized(sql);
    let compared = text.match_indices("org_id").any(|(at, _)| {
        let after = text[at + "org_id".len()..].trim_start();
        after.starts_with('=') || after.starts_with("in ") || after.starts_with("is not distinct from")
    });
    // Every INSERT of the statement (a CTE may hold several) names org_id among its columns.
    let mut inserts = text.split("insert into ").skip(1).peekable();
    let inserted = inserts.peek().is_some()
        && inserts.all(|rest| rest.split(')').next().unwrap_or_default().contains("org_id"));
    compared || inserted
}

/// The statements of `recorded` that use a tenant table without filtering by org and
/// do not belong to one of the `exempt` function bodies.
fn statements_without_org(
    recorded: &[String],
    tenant_tables: &HashSet<String>,
    exempt: &[String],
) -> Vec<String> {
    let exempt: Vec<String> = exempt.iter().map(|body| shape(body)).collect();
    recorded
        .iter()
        .filter(|sql| !tenant_tables_named(sql, tenant_tables).is_empty())
        .filter(|sql| !filters_by_org(sql))
        .filter(|sql| {
            let text = shape(sql);
            !exempt.iter().any(|body| body.contains(&text))
        })
        .cloned()
        .collect()
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Recorded {
    #[diesel(sql_type = Text)]
    query: String,
    #[diesel(sql_type = Bool)]
    toplevel: bool,
}

/// Settings of a cluster that records every statement, those inside functions too (also
/// in scripts/check-org-filters).
const RECORDING: &str = "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all \
     -c pg_stat_statements.max=100000";

#[test]
fn every_statement_on_a_tenant_table_filters_by_org_id() {
    // scripts/check-org-filters runs the whole suite on a recording cluster, then this
    // test on what it recorded; alone, the test records the README's walk-through.
    if let Ok(server) = std::env::var("ORG_FILTER_CHECK_URL") {
        let mut stats = PgConnection::establish(&format!("{server}/postgres")).unwrap();
        let schema: Name = diesel::sql_query(
            "SELECT datname::text AS name FROM pg_database WHERE datname LIKE 'billing_tpl_%' ORDER BY 1 DESC",
        )
        .get_result(&mut stats)
        .expect("the suite's migrated template database");
        check_recorded(&mut stats, &format!("{server}/{}", schema.name));
        return;
    }
    let pg = PrivatePostgres::start_with_settings(RECORDING);
    let url = pg.url("billing");
    admin(&url, &["migrate"]);
    let mut stats = PgConnection::establish(&pg.url("postgres")).unwrap();
    // Migrations create tables and functions; what is checked is what serving does.
    stats.batch_execute("CREATE EXTENSION pg_stat_statements; SELECT pg_stat_statements_reset()").unwrap();

    let server = ServeProcess::start(
        &url,
        &[
            "--segment-close-interval=1s",
            "--commitment-evaluation-interval=1s",
            "--violation-prune-interval=1s",
        ],
    );
    wait_serving(&server.address);
    run_walk_through(&url, &server.address);
    drop(server);
    check_recorded(&mut stats, &url);
}

/// Checks the statements `stats`' cluster recorded as the service's role against the
/// schema of the database at `schema_url`.
fn check_recorded(stats: &mut PgConnection, schema_url: &str) {
    let mut db = PgConnection::establish(schema_url).unwrap();
    // Partitions are left out: the service's role may not reach them (row_security.rs
    // checks it); only the month functions move rows between them.
    let tenant_tables: HashSet<String> = diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND EXISTS (SELECT 1 FROM pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped)",
    )
    .load::<Name>(&mut db)
    .unwrap()
    .into_iter()
    .map(|n| n.name)
    .collect();
    let bodies: Vec<String> = diesel::sql_query("SELECT prosrc AS name FROM pg_proc WHERE proname = ANY($1)")
        .bind::<diesel::sql_types::Array<Text>, _>(CROSS_ORG_FUNCTIONS)
        .load::<Name>(&mut db)
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(bodies.len(), CROSS_ORG_FUNCTIONS.len(), "every listed cross-org function exists");
    // The service's own statements (operator commands and the tests' own queries run as
    // the schema owner), and every statement inside a function: those of the SECURITY
    // DEFINER functions the service calls run as their owner.
    let recorded: Vec<Recorded> = diesel::sql_query(
        "SELECT query, toplevel FROM pg_stat_statements WHERE userid = 'billing_app'::regrole OR NOT toplevel",
    )
    .load(stats)
    .unwrap();
    let queries: Vec<String> = recorded
        .iter()
        .map(|r| r.query.clone())
        .filter(|q| !TEST_PROBES.iter().any(|(probe, _)| probe == q))
        .collect();
    let on_tenant_tables =
        queries.iter().filter(|q| !tenant_tables_named(q, &tenant_tables).is_empty()).count();
    let nested = recorded.iter().filter(|r| !r.toplevel).count();
    // The walk-through touches every kind of resource: about a hundred distinct
    // statements, some of them inside functions.
    assert!(
        on_tenant_tables >= 60 && nested > 0,
        "statements recorded: {on_tenant_tables} ({nested} nested)"
    );
    eprintln!("checked {on_tenant_tables} distinct statements on tenant tables ({nested} nested)");
    let offenders = statements_without_org(&queries, &tenant_tables, &bodies);
    assert!(offenders.is_empty(), "statements on tenant tables without an org_id filter: {offenders:#?}");
}

#[test]
fn a_statement_on_a_tenant_table_without_org_id_is_found() {
    let tables: HashSet<String> = ["customers".to_owned(), "usage_events".to_owned()].into();
    let exempt =
        ["BEGIN RETURN QUERY SELECT id FROM customers WHERE id = p_id AND state = 'OPEN' LIMIT 10; END"
            .to_owned()];
    let recorded = [
        r#"SELECT "customers"."id" FROM "customers" WHERE "customers"."org_id" = $1 AND "customers"."id" = $2"#,
        r#"INSERT INTO "usage_events" ("org_id", "id") VALUES ($1, $2)"#,
        "WITH new AS (SELECT * FROM unnest($1) AS r(org_id, id)), k AS (INSERT INTO usage_events (org_id, id) \
         SELECT * FROM new) INSERT INTO customers (org_id, id) SELECT * FROM new",
        "WITH k AS (INSERT INTO usage_events (org_id, id) SELECT 1, 2) INSERT INTO customers (id) SELECT 3",
        "UPDATE customers SET name = $1 WHERE org_id = ANY($2)",
        "SELECT org_id FROM customers WHERE id = $1",
        "DELETE FROM usage_events WHERE id IN (SELECT id FROM customers)",
        "SELECT id FROM customers WHERE id = p_id AND state = $1 LIMIT $2",
        "SELECT id FROM customers WHERE id = p_id AND state = $1",
        "SELECT 1 FROM pg_class",
    ]
    .map(str::to_owned);
    assert_eq!(
        statements_without_org(&recorded, &tables, &exempt),
        [
            "WITH k AS (INSERT INTO usage_events (org_id, id) SELECT 1, 2) INSERT INTO customers (id) SELECT 3",
            "SELECT org_id FROM customers WHERE id = $1",
            "DELETE FROM usage_events WHERE id IN (SELECT id FROM customers)"
        ],
        "only the statements that leave org_id out, or name it without comparing it, outside the exempt body"
    );
}
