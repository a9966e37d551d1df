//! Row-level security: the database itself keeps organizations apart, even from a query
//! that forgot its org filter.

use billing::db::schema::customers;
use billing::db::{Db, DbError};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use crate::support::server::test_db_config;
use crate::support::{TestServer, fixtures::Tenant};

#[derive(QueryableByName, Debug)]
struct TableSecurity {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Bool)]
    has_org_id: bool,
    #[diesel(sql_type = Bool)]
    enabled: bool,
    #[diesel(sql_type = Bool)]
    forced: bool,
    #[diesel(sql_type = Bool)]
    has_policy: bool,
    /// A partition of a partitioned table: reached through its parent, whose policy
    /// applies; the service's role may not reach it directly.
    #[diesel(sql_type = Bool)]
    is_partition: bool,
    #[diesel(sql_type = Bool)]
    app_may_read: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tenant_table_has_a_forced_policy() {
    let server = TestServer::start().await;
    let mut conn = server.db.connect();
    let tables: Vec<TableSecurity> = diesel::sql_query(
        "SELECT c.relname::text AS table_name,
                EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                        AND a.attname = 'org_id' AND NOT a.attisdropped) AS has_org_id,
                c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
                EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid) AS has_policy,
                c.relispartition AS is_partition,
                has_table_privilege('billing_app', c.oid, 'SELECT') AS app_may_read
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .load(&mut conn)
    .unwrap();
    let unscoped: Vec<&str> =
        tables.iter().filter(|t| !t.has_org_id).map(|t| t.table_name.as_str()).collect();
    // A new table without org_id must be a deliberate exception, added here.
    assert_eq!(unscoped, ["__diesel_schema_migrations", "organizations", "token_secrets"]);
    let (partitions, tenant_tables): (Vec<&TableSecurity>, Vec<&TableSecurity>) =
        tables.iter().filter(|t| t.has_org_id).partition(|t| t.is_partition);
    assert!(tenant_tables.len() >= 20, "found only {tenant_tables:?}");
    assert!(!partitions.is_empty(), "the feed's months are found");
    for p in partitions {
        assert!(
            !p.app_may_read,
            "{} is readable by the service's role around its parent's policy",
            p.table_name
        );
    }
    for t in tenant_tables {
        assert!(t.enabled && t.forced && t.has_policy, "{} is not protected: {t:?}", t.table_name);
    }
}

#[derive(QueryableByName, Debug)]
struct PolicyText {
    #[diesel(sql_type = Text)]
    tablename: String,
    #[diesel(sql_type = Text)]
    qual: String,
    #[diesel(sql_type = Text)]
    with_check: String,
}

/// A policy that calls `billing_current_org()` per row runs it as a SQL function for
/// every row it checks (an upsert of 2,000 usage totals took 78 ms instead of 47); as a
/// scalar subquery it is evaluated once per statement. Every policy, including those of
/// tables added later, must use that form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_policy_reads_the_current_org_once_per_statement() {
    let server = TestServer::start().await;
    let policies: Vec<PolicyText> = diesel::sql_query(
        "SELECT tablename::text, coalesce(qual, '') AS qual, coalesce(with_check, '') AS with_check \
         FROM pg_policies WHERE schemaname = 'public' ORDER BY 1",
    )
    .load(&mut server.db.connect())
    .unwrap();
    assert!(policies.len() >= 20, "found only {policies:?}");
    let once = "(org_id = ( SELECT billing_current_org() AS billing_current_org))";
    let own_org = "(id = ( SELECT billing_current_org() AS billing_current_org))";
    for p in &policies {
        let expected = if p.tablename == "organizations" { own_org } else { once };
        assert_eq!((p.qual.as_str(), p.with_check.as_str()), (expected, expected), "{}", p.tablename);
    }
}

#[derive(QueryableByName, Debug)]
struct Role {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    logged_in_as: String,
    #[diesel(sql_type = Bool)]
    superuser: bool,
    #[diesel(sql_type = Bool)]
    bypass: bool,
    #[diesel(sql_type = Bool)]
    owns_tables: bool,
    #[diesel(sql_type = Bool)]
    member_of_a_role: bool,
}

const WHO_AM_I: &str = "SELECT current_user::text AS name, session_user::text AS logged_in_as,
        r.rolsuper AS superuser, r.rolbypassrls AS bypass,
        EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid) AS owns_tables,
        EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) AS member_of_a_role
    FROM pg_roles r WHERE r.rolname = current_user";

/// A pooled session logs in as the service's role, not as the owner switched with SET
/// ROLE: an injected `RESET ROLE` or `SET ROLE` cannot reach the owner's rights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_connections_log_in_as_a_role_that_owns_nothing_cannot_bypass_and_cannot_switch() {
    let server = TestServer::start().await;
    let (role, after_reset, switch) = server
        .app
        .db()
        .run(|conn| {
            let role: Role = diesel::sql_query(WHO_AM_I).get_result(conn)?;
            conn.batch_execute("RESET ROLE")?;
            let after_reset: Role = diesel::sql_query(WHO_AM_I).get_result(conn)?;
            let switch = conn.batch_execute("SET ROLE postgres");
            Ok::<_, DbError>((role, after_reset, switch))
        })
        .await
        .unwrap();
    assert_eq!((role.name.as_str(), role.logged_in_as.as_str()), ("billing_app", "billing_app"));
    assert!(!role.superuser && !role.bypass && !role.owns_tables && !role.member_of_a_role, "{role:?}");
    assert_eq!(after_reset.name, "billing_app", "RESET ROLE leaves the service's role");
    let refused = switch.expect_err("the service's role cannot switch to the owner");
    assert!(refused.to_string().contains("permission denied"), "{refused}");
}

#[derive(QueryableByName)]
struct Session {
    #[diesel(sql_type = Text)]
    user_name: String,
    #[diesel(sql_type = Text)]
    query: String,
}

/// Every connection the service opens (pool, feed listener, health probe) logs in as
/// its role; only the migrations log in as the owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_of_the_service_logs_in_as_its_role() {
    let server = TestServer::start().await;
    server.wait_serving().await;
    server.app.db().run(|conn| conn.batch_execute("SELECT 1").map_err(DbError::from)).await.unwrap();
    let owner = server.db.connect();
    let sessions = |owner: &mut diesel::PgConnection| -> Vec<(String, String)> {
        diesel::sql_query(
            "SELECT usename::text AS user_name, coalesce(query, '') AS query \
             FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .load::<Session>(owner)
        .unwrap()
        .into_iter()
        .map(|s| (s.user_name, s.query))
        .collect()
    };
    // The listener connects on its own schedule: wait until it has.
    let owner = std::sync::Mutex::new(owner);
    crate::support::wait_until("the feed's listener is connected", || {
        let listening =
            sessions(&mut owner.lock().unwrap()).iter().any(|(_, query)| query.starts_with("LISTEN"));
        async move { listening }
    })
    .await;
    let seen = sessions(&mut owner.lock().unwrap());
    assert!(seen.len() >= 3, "pool, listener and probe: {seen:?}");
    for (user, query) in &seen {
        assert_eq!(user, "billing_app", "a session logged in as {user}, last running {query:?}");
    }
}

#[derive(QueryableByName)]
struct OrgRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: uuid::Uuid,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_role_reads_only_its_own_organizations_row() {
    let server = TestServer::start().await;
    let a = Tenant::create(&server, "A").await;
    Tenant::create(&server, "B").await;
    let org_a = server.org_of(&a.key).await;
    let visible = |conn: &mut diesel::PgConnection| {
        diesel::sql_query("SELECT id FROM organizations").load::<OrgRow>(conn).map_err(DbError::from)
    };
    let in_a = server.app.db().transaction(org_a, move |conn| visible(conn)).await.unwrap();
    assert_eq!(in_a.iter().map(|o| o.id).collect::<Vec<_>>(), [org_a.uuid()]);
    let outside = server.app.db().run(visible).await.unwrap();
    assert!(outside.is_empty(), "outside an org's transaction no organization is visible");
    let mut owner = server.db.connect();
    assert_eq!(visible(&mut owner).unwrap().len(), 2, "the owner sees both");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_forgot_its_org_filter_sees_only_its_own_org() {
    let server = TestServer::start().await;
    let a = Tenant::create(&server, "A").await;
    Tenant::create(&server, "B").await;
    a.another_customer(&server, "A2").await;
    let org_a = server.app.authenticate(&a.key).await.unwrap().org;
    let db = Db::open(&test_db_config(&server.db.url)).expect("a pool");

    // No filter at all, inside A's transaction: only A's two customers.
    let seen: i64 = db
        .transaction(org_a, |conn| customers::table.count().get_result(conn).map_err(DbError::from))
        .await
        .unwrap();
    assert_eq!(seen, 2);

    // Outside any org's transaction: nothing.
    let seen: i64 =
        db.run(|conn| customers::table.count().get_result(conn).map_err(DbError::from)).await.unwrap();
    assert_eq!(seen, 0);

    // The owner sees all three, so the rows are there.
    let mut owner = server.db.connect();
    assert_eq!(customers::table.count().get_result::<i64>(&mut owner).unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_into_another_org_is_refused_by_the_database() {
    let server = TestServer::start().await;
    let a = Tenant::create(&server, "A").await;
    let b = Tenant::create(&server, "B").await;
    let org_a = server.app.authenticate(&a.key).await.unwrap().org;
    let b_customer: uuid::Uuid = b.customer_id.parse().unwrap();
    let db = Db::open(&test_db_config(&server.db.url)).expect("a pool");

    // An update of B's customer from A's transaction, without an org filter, touches nothing.
    let updated = db
        .transaction(org_a, move |conn| {
            diesel::update(customers::table.filter(customers::id.eq(b_customer)))
                .set(customers::name.eq("hijacked"))
                .execute(conn)
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(updated, 0);

    // Moving A's customer into B's org fails the policy's check.
    let moved = db
        .transaction(org_a, move |conn| {
            diesel::sql_query("UPDATE customers SET org_id = gen_random_uuid() WHERE org_id = $1")
                .bind::<diesel::sql_types::Uuid, _>(org_a.uuid())
                .execute(conn)
                .map_err(DbError::from)
        })
        .await;
    assert!(matches!(moved, Err(DbError::Other(ref m)) if m.contains("row-level security")), "{moved:?}");
    let mut owner = server.db.connect();
    let names: Vec<String> = customers::table.select(customers::name).load(&mut owner).unwrap();
    assert!(!names.iter().any(|n| n == "hijacked"));
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_security_hides_another_orgs_rows_in_every_tenant_table() {
    let server = TestServer::start().await;
    let a = Tenant::create(&server, "A").await;
    let b = Tenant::create(&server, "B").await;
    crate::support::populate::one_of_everything(&server, &b).await;
    let org_a = server.org_of(&a.key).await;
    let org_b = server.org_of(&b.key).await;
    let mut owner = server.db.connect();
    let tables: Vec<String> = diesel::sql_query(
        "SELECT c.relname::text AS table_name FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1",
    )
    .load::<TableName>(&mut owner)
    .unwrap()
    .into_iter()
    .map(|t| t.table_name)
    .collect();
    let db = Db::open(&test_db_config(&server.db.url)).expect("a pool");
    let mut covered = Vec::new();
    for table in tables {
        let sql = format!("SELECT count(*) AS n FROM {table} WHERE org_id = $1");
        let count = move |conn: &mut diesel::PgConnection| {
            diesel::sql_query(&sql).bind::<diesel::sql_types::Uuid, _>(org_b.uuid()).get_result::<Count>(conn)
        };
        let as_owner = count(&mut owner).unwrap().n;
        // The same query, with the org filter pointing at B, from A's transaction.
        let seen_by_a =
            db.transaction(org_a, move |conn| count(conn).map_err(DbError::from)).await.unwrap().n;
        assert_eq!(seen_by_a, 0, "{table}: A's transaction sees {seen_by_a} of B's {as_owner} rows");
        if as_owner > 0 {
            covered.push(table);
        }
    }
    // Not vacuous: B has rows in nearly every tenant table.
    assert!(covered.len() >= 20, "only {} tables had rows to hide: {covered:?}", covered.len());
}

#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    table_name: String,
}
