//! Test databases: the migrations run once into a template named after their content
//! hash; every test clones it (`CREATE DATABASE .. TEMPLATE ..`) and drops its clone at
//! the end, so tests are isolated and run in parallel, across processes too.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use sha2::{Digest, Sha256};

/// Creates (if missing) and migrates the database of `settings`, as `serve` would.
pub async fn prepare(settings: &str) {
    let owned = settings.to_owned();
    tokio::task::spawn_blocking(move || billing::db::migrate::prepare_database(&owned))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("migrating {settings}: {e}"));
}

/// Server-level URL (no database) of the PostgreSQL the tests use.
pub fn server_url() -> String {
    std::env::var("TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

fn admin() -> PgConnection {
    let url = format!("{}/postgres", server_url());
    PgConnection::establish(&url).unwrap_or_else(|e| panic!("tests need PostgreSQL at {url}: {e}"))
}

fn hash_dir(dir: &Path, hasher: &mut Sha256) {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).expect("read migrations").map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            hash_dir(&path, hasher);
        } else {
            hasher.update(path.file_name().unwrap().as_encoded_bytes());
            hasher.update(std::fs::read(&path).expect("read migration"));
        }
    }
}

fn template_name() -> String {
    let mut hasher = Sha256::new();
    hash_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations"), &mut hasher);
    format!("billing_tpl_{}", &hex::encode(hasher.finalize())[..16])
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

fn database_exists(conn: &mut PgConnection, name: &str) -> bool {
    diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
        .bind::<Text, _>(name)
        .get_result::<Exists>(conn)
        .expect("query pg_database")
        .exists
}

/// The migrated template, built by whichever test process gets there first.
fn ensure_template() -> String {
    let name = template_name();
    let mut conn = admin();
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(0x7465_7374_7470_6c00_i64)
        .execute(&mut conn)
        .expect("lock");
    if !database_exists(&mut conn, &name) {
        let building = format!("{name}_build");
        conn.batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)")).unwrap();
        conn.batch_execute(&format!("CREATE DATABASE {building}")).unwrap();
        {
            let mut db = PgConnection::establish(&format!("{}/{building}", server_url())).unwrap();
            billing::db::migrate::run_migrations(&mut db).expect("migrations apply to an empty database");
        }
        conn.batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}")).unwrap();
    }
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(0x7465_7374_7470_6c00_i64)
        .execute(&mut conn)
        .expect("unlock");
    name
}

/// A fresh, migrated database for one test, dropped when this value is.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub fn create() -> Self {
        let template = ensure_template();
        let name = format!("billing_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = admin();
        // Cloning needs the template free of connections; retry while a sibling clones it.
        let mut attempt = 0;
        loop {
            match conn.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}")) {
                Ok(()) => break,
                Err(e) if attempt < 50 && e.to_string().contains("being accessed by other users") => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
                }
                Err(e) => panic!("cloning the template database: {e}"),
            }
        }
        let url = format!("{}/{name}", server_url());
        Self { name, url }
    }

    /// The name and URL of a database that does not exist yet (the service creates and
    /// migrates it); dropped like the others.
    pub fn unmigrated() -> Self {
        let name = format!("billing_test_{}", uuid::Uuid::now_v7().simple());
        let url = format!("{}/{name}", server_url());
        Self { name, url }
    }

    /// Waits until at least `n` sessions of this database wait on a lock (calls the
    /// test has blocked behind a lock it holds).
    pub async fn wait_for_lock_waiters(&self, n: i64, what: &str) {
        #[derive(QueryableByName)]
        struct Waiting {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let watcher = std::sync::Mutex::new(self.connect());
        super::wait_until(what, || {
            let waiting = diesel::sql_query(
                "SELECT count(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .get_result::<Waiting>(&mut *watcher.lock().unwrap())
            .map_or(0, |w| w.n);
            async move { waiting >= n }
        })
        .await;
    }

    /// A direct connection, for assertions on stored rows.
    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connect to test database")
    }
}

/// Undoes the migrations down to and including `version` (e.g. "20261204140000"), then
/// runs them again: how a test sees what a migration does to rows written before it.
pub fn rerun_migrations_from(conn: &mut PgConnection, version: &str) {
    use diesel_migrations::MigrationHarness as _;
    loop {
        let undone = conn.revert_last_migration(billing::db::migrate::MIGRATIONS).unwrap();
        if undone.to_string().replace('-', "") == version {
            break;
        }
    }
    conn.run_pending_migrations(billing::db::migrate::MIGRATIONS).unwrap();
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&format!("{}/postgres", server_url())) {
            let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}
