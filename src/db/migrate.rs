//! Creating the database when missing and running the embedded migrations.

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{BadConnInfo, ConnInfo, DbError};

/// The migrations under `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Arbitrary key of the advisory lock that serializes migration runs, so several
/// instances starting at once do not race on the schema.
const MIGRATION_LOCK_KEY: i64 = 0x6269_6c6c_696e_6721;

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the database named in `url` (libpq settings) if it does not exist; true
/// when it was created.
pub fn ensure_database(url: &str) -> Result<bool, DbError> {
    if PgConnection::establish(url).is_ok() {
        return Ok(false);
    }
    let settings: ConnInfo = url.parse().map_err(|e: BadConnInfo| DbError::Other(e.to_string()))?;
    let database = settings
        .get("dbname")
        .filter(|name| !name.is_empty())
        .ok_or_else(|| DbError::Other("the database settings name no database (dbname)".into()))?
        .to_owned();
    let mut admin = PgConnection::establish(&settings.on_database("postgres").to_libpq())?;
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let found: Found =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(&database)
            .get_result(&mut admin)?;
    if found.exists {
        // It exists but we could not connect: report the real reason.
        PgConnection::establish(url)?;
        return Ok(false);
    }
    match admin.batch_execute(&format!("CREATE DATABASE {}", quote_ident(&database))) {
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
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
