//! Creating the database when missing and running the embedded migrations.

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::DbError;

/// The migrations under `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Arbitrary key of the advisory lock that serializes migration runs, so several
/// instances starting at once do not race on the schema.
const MIGRATION_LOCK_KEY: i64 = 0x6269_6c6c_696e_6721;

/// A libpq URL split around its database name.
#[derive(Debug, PartialEq, Eq)]
struct UrlParts<'a> {
    before: &'a str,
    database: &'a str,
    after: &'a str,
}

fn split_database(url: &str) -> Option<UrlParts<'_>> {
    let scheme_end = url.find("://")? + 3;
    let path_start = scheme_end + url[scheme_end..].find('/')?;
    let rest = &url[path_start + 1..];
    let db_len = rest.find('?').unwrap_or(rest.len());
    Some(UrlParts { before: &url[..path_start + 1], database: &rest[..db_len], after: &rest[db_len..] })
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the database named in `url` if it does not exist; true when it was created.
pub fn ensure_database(url: &str) -> Result<bool, DbError> {
    if PgConnection::establish(url).is_ok() {
        return Ok(false);
    }
    let parts = split_database(url)
        .filter(|p| !p.database.is_empty())
        .ok_or_else(|| DbError::Other("database URL names no database".into()))?;
    let admin_url = format!("{}postgres{}", parts.before, parts.after);
    let mut admin = PgConnection::establish(&admin_url)?;
    let exists: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
        "EXISTS (SELECT 1 FROM pg_database WHERE datname = '{}')",
        parts.database.replace('\'', "''")
    )))
    .get_result(&mut admin)?;
    if exists {
        // It exists but we could not connect: report the real reason.
        PgConnection::establish(url)?;
        return Ok(false);
    }
    match admin.batch_execute(&format!("CREATE DATABASE {}", quote_ident(parts.database))) {
        Ok(()) => Ok(true),
        // Another instance created it first.
        Err(e) if e.to_string().contains("already exists") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Runs every pending migration under an advisory lock; returns the versions applied.
pub fn run_migrations(conn: &mut PgConnection) -> Result<Vec<String>, DbError> {
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
    let result = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|e| DbError::Other(format!("migration failed: {e}")));
    conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
    result
}

/// The embedded migrations the database at `url` has not applied, by version. Reads
/// the migrations table and nothing else, so the service's own role (which cannot
/// change the schema) can ask.
pub fn pending_migrations(url: &str) -> Result<Vec<String>, DbError> {
    #[derive(QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let mut conn = PgConnection::establish(url)?;
    let applied: std::collections::HashSet<String> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Applied>(&mut conn)
            .map_err(|e| DbError::Other(format!("no migrations table ({e})")))?
            .into_iter()
            .map(|a| a.version)
            .collect();
    let embedded = diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map_err(|e| DbError::Other(format!("embedded migrations: {e}")))?;
    Ok(embedded
        .iter()
        .map(|m| m.name().version().to_string())
        .filter(|version| !applied.contains(version))
        .collect())
}

/// Succeeds once the database at `url` has every embedded migration, for a service that
/// leaves migrating to a separate step (`serve --no-migrate`).
pub fn require_migrated(url: &str) -> Result<Vec<String>, DbError> {
    let pending = pending_migrations(url)?;
    match pending.first() {
        None => Ok(Vec::new()),
        Some(first) => Err(DbError::Other(format!(
            "{} migration(s) not applied yet, from {first}: run `billing-commitments migrate`",
            pending.len()
        ))),
    }
}

/// Creates the database if needed and brings its schema up to date.
pub fn prepare_database(url: &str) -> Result<Vec<String>, DbError> {
    let created = ensure_database(url)?;
    if created {
        tracing::info!("created database");
    }
    let mut conn = PgConnection::establish(url)?;
    run_migrations(&mut conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_found_between_host_and_query() {
        let p = split_database("postgres://u@h:5432/billing?sslmode=disable").unwrap();
        assert_eq!(p.before, "postgres://u@h:5432/");
        assert_eq!(p.database, "billing");
        assert_eq!(p.after, "?sslmode=disable");
        assert_eq!(split_database("postgres://h/db").unwrap().database, "db");
        assert!(split_database("postgres://h").is_none());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
