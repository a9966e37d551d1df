//! The schema stays ready to be distributed by `org_id` (Citus): the distribution
//! column must be in every primary key, unique constraint and foreign key of a table
//! distributed by it. Checked on the migrated schema, so a migration that breaks the
//! rule fails here.

use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::support::TestDb;

/// Tenant tables whose keys may leave `org_id` out, and why.
const EXCEPTIONS: &[(&str, &str)] = &[(
    "api_keys_pkey",
    "a key is found by its id before its organization is known (the cross-org lookup); \
     on Citus api_keys becomes a reference table",
)];

#[derive(QueryableByName)]
struct Constraint {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    definition: String,
}

/// The primary keys, unique constraints and foreign keys of tables with an `org_id`
/// column that leave it out.
fn keys_without_org_id(conn: &mut PgConnection) -> Vec<Constraint> {
    diesel::sql_query(
        "SELECT c.relname::text AS table_name, con.conname::text AS name,
                pg_get_constraintdef(con.oid) AS definition
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_constraint con ON con.conrelid = c.oid AND con.contype IN ('p', 'u', 'f')
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
           AND EXISTS (SELECT 1 FROM pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped)
           AND NOT EXISTS (SELECT 1 FROM unnest(con.conkey) k
                           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k
                           WHERE a.attname = 'org_id')
         ORDER BY 1, 2",
    )
    .load(conn)
    .unwrap()
}

#[test]
fn every_key_of_a_tenant_table_carries_org_id() {
    let db = TestDb::create();
    let mut conn = db.connect();
    let missing = keys_without_org_id(&mut conn);
    let unexplained: Vec<String> = missing
        .iter()
        .filter(|c| !EXCEPTIONS.iter().any(|(name, _)| *name == c.name))
        .map(|c| format!("{}.{}: {}", c.table_name, c.name, c.definition))
        .collect();
    assert!(unexplained.is_empty(), "keys of tenant tables without org_id: {unexplained:#?}");
    // An exception whose constraint is gone (or now carries org_id) is dropped from the list.
    for (name, why) in EXCEPTIONS {
        assert!(
            missing.iter().any(|c| c.name == *name),
            "{name} is listed as an exception ({why}) but needs none"
        );
    }
}

#[test]
fn a_tenant_table_keyed_without_org_id_is_found() {
    let db = TestDb::create();
    let mut conn = db.connect();
    use diesel::connection::SimpleConnection;
    conn.batch_execute(
        "CREATE TABLE probe_parent (org_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (org_id, id));
         CREATE TABLE probe (org_id uuid NOT NULL, id uuid PRIMARY KEY, code text UNIQUE,
                             parent uuid, FOREIGN KEY (org_id, parent) REFERENCES probe_parent,
                             other uuid REFERENCES probe (id))",
    )
    .unwrap();
    let mut found: Vec<String> = keys_without_org_id(&mut conn)
        .into_iter()
        .filter(|c| c.table_name == "probe")
        .map(|c| c.name)
        .collect();
    found.sort();
    assert_eq!(found, ["probe_code_key", "probe_other_fkey", "probe_pkey"]);
}
