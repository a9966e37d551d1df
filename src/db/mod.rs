//! Persistence: Diesel on PostgreSQL, the only place SQL lives.
//!
//! Diesel is blocking, so every use goes through [`Db::run`] or [`Db::transaction`],
//! which check a connection out of the r2d2 pool and run the whole closure on tokio's
//! blocking pool; a runtime worker never waits on the database. Every tenant query takes
//! the caller's `OrgId`, and every transaction also sets it as `app.org_id` for the
//! row-level security policies.
//!
//! Statements are written in Diesel's DSL where it can say them. The rest are in
//! `src/db/sql/`, one file per statement named `<module>_<what it does>.sql`, loaded with
//! `include_str!` and prepared once per connection (`prepared`): statements over arrays
//! (`unnest`, one statement per batch whatever its size), lateral probes per key, the
//! ledger's page, whose running balance is a window over every entry taken before the
//! page's filters (a subquery in `FROM`, which the DSL cannot write), and upserts on the
//! usage path (Diesel never keeps an `ON CONFLICT .. DO UPDATE`, nor an `UPDATE`,
//! prepared: each run is parsed and planned again). One-line calls of
//! the schema's own functions (`billing_*`, made by the migrations) and of PostgreSQL's
//! (`pg_notify`, `pg_cancel_backend`, advisory locks) stay inline.

pub mod acting_key;
pub mod allowances;
pub mod balance_alerts;
pub mod budget;
pub mod commit_ledger;
pub mod commitments;
pub mod commits;
pub mod conninfo;
pub mod credit;
pub mod credit_types;
pub mod customers;
pub mod deadline;
pub mod drawdowns;
pub mod error;
pub mod listen;
pub mod migrate;
pub mod partitions;
pub mod prepared;
pub mod probe;
pub mod products;
pub mod promos;
pub mod request_ids;
pub mod reservations;
pub mod schema;
pub mod shutdown;
pub mod tenancy;
mod timing;
pub mod tls;
pub mod usage;
pub mod usage_events;
pub mod usage_start;
pub mod violations;
pub mod writes;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};

pub use conninfo::{BadConnInfo, ConnInfo};
pub use error::{DbError, TxError};

use crate::domain::ids::{ApiKeyId, OrgId};

/// How the service reaches its database.
#[derive(Clone, Debug)]
pub struct DbConfig {
    /// libpq connection settings: a `postgres://` URL or `key=value` pairs (see
    /// [`ConnInfo`]).
    pub url: String,
    /// Most connections held open at once.
    pub pool_size: u32,
    /// Longest wait for a free connection before failing with UNAVAILABLE; keep it
    /// shorter than callers' deadlines.
    pub acquire_timeout: Duration,
    /// Server-side limit on any one statement.
    pub statement_timeout: Duration,
    /// Most pieces of work waiting for a connection at once; past it work is refused at
    /// once (UNAVAILABLE with a retry delay) instead of queueing toward its deadline.
    pub max_waiting: usize,
    /// Times a transaction that hit a serialization failure or deadlock is run again.
    pub max_retries: u32,
    /// Role the pooled connections log in as, so row-level security applies to every
    /// query: at `login_url` when set, otherwise at `url` with its user replaced and
    /// its password dropped (see [`ConnInfo::as_role`]). `None` logs in as `url`'s own
    /// user (operator commands, which own the schema). The service's role cannot switch
    /// to another, owns nothing and cannot bypass row-level security.
    pub role: Option<String>,
    /// The settings the service's role logs in with, when they cannot be made from
    /// `url` (password authentication).
    pub login_url: Option<String>,
}

impl DbConfig {
    /// Defaults for `url`, as the service's flags document them.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 16,
            acquire_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(10),
            max_waiting: 1024,
            max_retries: 3,
            role: Some(APP_ROLE.to_owned()),
            login_url: None,
        }
    }

    /// The settings pooled connections log in with.
    pub fn pool_conninfo(&self) -> Result<ConnInfo, BadConnInfo> {
        match (&self.role, &self.login_url) {
            (None, _) => self.url.parse(),
            (Some(_), Some(url)) => url.parse(),
            (Some(role), None) => Ok(self.url.parse::<ConnInfo>()?.as_role(role)),
        }
    }
}

/// The role the migrations create for the service: it owns nothing, cannot switch to
/// another role and cannot bypass row-level security.
pub const APP_ROLE: &str = "billing_app";

pub type PgPool = Pool<ConnectionManager<PgConnection>>;

/// The connection a transaction closure receives; use cases pass it to `db` functions.
pub type Conn = PgConnection;

/// Handle on the connection pool; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    max_retries: u32,
    statement_timeout: Duration,
    expired: Arc<AtomicU64>,
    /// One permit per piece of work allowed to wait for a connection.
    waiting: Arc<tokio::sync::Semaphore>,
    /// The permits `waiting` was made with.
    max_waiting: usize,
    /// Work running now, and the switch that stops it at the end of a shutdown.
    in_flight: Arc<shutdown::InFlight>,
    /// The URL connections log in with (also for the connections outside the pool).
    url: Arc<str>,
}

/// Session settings applied to every new pooled connection.
#[derive(Debug)]
struct SessionSettings {
    statement_timeout_ms: u128,
    /// Names the pool's sessions in `pg_stat_activity` (see `shutdown`).
    application_name: String,
}

impl SessionSettings {
    fn sql(&self) -> String {
        // Prepared statements are planned once per connection (a generic plan): planning
        // them for their parameters on every run was 40% of PostgreSQL's time on the
        // usage path (docs/performance.md), most of it pruning partitions. A generic plan
        // is made from the statistics of the moment, and PostgreSQL replans when a table
        // is analyzed, but a table analyzed empty (a month made ahead, a new database)
        // that then fills keeps its plan until autovacuum analyzes it again: with
        // sequential scans allowed, that plan scans the table on every call. Every
        // statement of the service has an index for its org and keys, so sequential
        // scans are left only where no index serves; lookups by a batch's keys are
        // written to probe per key (see `db::usage`). A plan left with a sequential scan
        // costs over 10^10 for it, far past `jit_above_cost`: JIT compiled each such
        // statement (500 ms for a one-row table), so it is off; the service's statements
        // are short, where JIT never pays.
        // The name is made by `shutdown::InFlight`: letters, digits and a space.
        format!(
            "SET statement_timeout = {}; SET TIME ZONE 'UTC'; SET plan_cache_mode = force_generic_plan; \
             SET enable_seqscan = off; SET jit = off; SET application_name = '{}'",
            self.statement_timeout_ms, self.application_name
        )
    }
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.set_instrumentation(timing::StatementClock::default());
        conn.batch_execute(&self.sql()).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Reports pool connection failures through tracing instead of the `log` crate.
#[derive(Debug)]
struct TracingErrorHandler;

impl diesel::r2d2::HandleError<diesel::r2d2::Error> for TracingErrorHandler {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(error = %error, "database connection failed");
    }
}

impl Db {
    /// A pool for `config`. No connection is made yet, so the service can start (and
    /// report NOT_SERVING) while the database is down; the error is settings libpq
    /// cannot read.
    pub fn open(config: &DbConfig) -> Result<Self, BadConnInfo> {
        // A connect timeout unless one is given, so a dead host fails fast.
        let url = config
            .pool_conninfo()?
            .with_default("connect_timeout", config.acquire_timeout.as_secs().max(1).to_string())
            .to_libpq();
        let in_flight = Arc::new(shutdown::InFlight::new());
        let max_waiting = config.max_waiting.max(1);
        let manager = ConnectionManager::<PgConnection>::new(url.clone());
        let pool = Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(0))
            .connection_timeout(config.acquire_timeout)
            // Tested where it matters instead (`run`, and a stale BEGIN in `transaction`):
            // a round trip on every checkout was one of the usage path's ~17.
            .test_on_check_out(false)
            .error_handler(Box::new(TracingErrorHandler))
            .connection_customizer(Box::new(SessionSettings {
                statement_timeout_ms: config.statement_timeout.as_millis(),
                application_name: in_flight.application_name().to_owned(),
            }))
            .build_unchecked(manager);
        Ok(Self {
            pool,
            max_retries: config.max_retries,
            statement_timeout: config.statement_timeout,
            expired: Arc::default(),
            waiting: Arc::new(tokio::sync::Semaphore::new(max_waiting)),
            max_waiting,
            in_flight,
            url: url.into(),
        })
    }

    /// The URL the pool's connections log in with: the service's other connections (the
    /// feed's listener, the health probe, the canceller) log in the same way.
    pub fn login_url(&self) -> &str {
        &self.url
    }

    /// Ends the pool's work for a shutdown whose grace period is over: no work starts
    /// and no transaction commits from now on, and running statements are cancelled
    /// (their transactions roll back and answer `DbError::ShuttingDown`) until nothing
    /// runs or `margin` has passed.
    pub async fn close(&self, margin: Duration) -> shutdown::Closed {
        let (in_flight, url) = (Arc::clone(&self.in_flight), Arc::clone(&self.url));
        tokio::task::spawn_blocking(move || shutdown::close(&in_flight, &url, margin))
            .await
            .unwrap_or_default()
    }

    /// How many pieces of work were not started because their caller's deadline had
    /// passed when a connection became free (for metrics and tests).
    pub fn expired_before_start(&self) -> u64 {
        self.expired.load(Ordering::Relaxed)
    }

    /// How many pieces of work are admitted and waiting for a connection now (for tests).
    pub fn waiting_for_connection(&self) -> usize {
        self.max_waiting - self.waiting.available_permits()
    }

    /// Why the pool cannot fill on its server, if it cannot (see `budget`).
    pub async fn connection_shortfall(&self) -> Result<Option<String>, DbError> {
        let size = self.pool.max_size();
        self.run(move |conn| Ok(budget::shortfall(size, &budget::read(conn)?))).await
    }

    /// Connections open and idle, for metrics.
    pub fn pool_state(&self) -> diesel::r2d2::State {
        self.pool.state()
    }

    /// Runs `f` with a pooled connection on the blocking pool, inside the caller's span.
    /// The connection is tested with a round trip first (see `tested`).
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.with_connection(move |pool, conn| {
            let mut conn = tested(pool, conn)?;
            f(&mut conn)
        })
        .await
    }

    /// Runs `f` on the blocking pool, inside the caller's span, with a connection checked
    /// out of the pool (and the pool, to replace it).
    async fn with_connection<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&PgPool, Pooled) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        let deadline = deadline::current();
        let expired = Arc::clone(&self.expired);
        let in_flight = Arc::clone(&self.in_flight);
        // Admission: shed work at once rather than let it wait past its deadline.
        let Ok(admitted) = Arc::clone(&self.waiting).try_acquire_owned() else {
            metrics::counter!("db_work_shed_total").increment(1);
            return Err(DbError::Overloaded.into());
        };
        let submitted = std::time::Instant::now();
        let task = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            metrics::histogram!("db_blocking_start_seconds").record(submitted.elapsed().as_secs_f64());
            let waiting = metrics::gauge!("db_pool_waiting");
            waiting.increment(1.0);
            let started = std::time::Instant::now();
            let got = pool.get();
            drop(admitted);
            waiting.decrement(1.0);
            metrics::histogram!("db_pool_acquire_seconds").record(started.elapsed().as_secs_f64());
            let conn = got.map_err(DbError::from)?;
            if deadline.is_some_and(|d| deadline::left(d, std::time::Instant::now()).is_none()) {
                expired.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("db_work_expired_before_start_total").increment(1);
                return Err(DbError::DeadlineExceeded.into());
            }
            let Some(_running) = in_flight.enter() else { return Err(DbError::ShuttingDown.into()) };
            f(&pool, conn)
        });
        match task.await {
            Ok(result) => result,
            Err(join) => Err(DbError::Other(format!("database task failed: {join}")).into()),
        }
    }

    /// Runs `f` in one transaction scoped to `org`, again (up to the configured number
    /// of times) when it fails with a serialization failure or deadlock.
    pub async fn transaction<T, E, F>(&self, org: OrgId, mut f: F) -> Result<T, E>
    where
        F: FnMut(&mut PgConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: TxError,
    {
        let max_retries = self.max_retries;
        let (deadline, statement_timeout) = (deadline::current(), self.statement_timeout);
        let key = acting_key::current();
        let in_flight = Arc::clone(&self.in_flight);
        self.with_connection(move |pool, mut conn| {
            let (mut attempt, mut stale) = (0, 0);
            loop {
                // What is left of the caller's deadline, if less than the usual timeout.
                let timeout = deadline
                    .map(|d| deadline::left(d, std::time::Instant::now()).unwrap_or(Duration::from_millis(1)))
                    .filter(|left| *left < statement_timeout);
                let outcome = org_transaction(&mut conn, (org, key), (timeout, &in_flight), &mut f);
                let error = match outcome {
                    Ok(value) => return Ok(value),
                    Err(TxFailure::App(e)) => e,
                    // The server closed this connection while it sat in the pool (a
                    // restart, a terminated backend) and nothing ran on it: replace it.
                    // Dropped, it goes back broken and the pool discards it.
                    Err(TxFailure::Stale(_)) if stale < pool.max_size() => {
                        stale += 1;
                        conn = replace(pool, conn)?;
                        continue;
                    }
                    Err(TxFailure::Db(e) | TxFailure::Stale(e)) => E::from(DbError::from(e)),
                };
                // The statement ran out of what was left of the caller's deadline: the
                // caller's time is up, which is not the database being slow.
                if timeout.is_some() && matches!(error.as_db_error(), Some(DbError::Timeout)) {
                    return Err(DbError::DeadlineExceeded.into());
                }
                // Rolled back, most likely by the cancel that closing sent.
                if in_flight.is_closing() && error.as_db_error().is_some() {
                    return Err(DbError::ShuttingDown.into());
                }
                let retryable = error.as_db_error().is_some_and(DbError::is_retryable);
                if !retryable || attempt >= max_retries {
                    return Err(error);
                }
                attempt += 1;
                tracing::debug!(attempt, "retrying transaction after a conflict");
                std::thread::sleep(Duration::from_millis(5 * u64::from(attempt)));
            }
        })
        .await
    }

    /// The health probe's own connection, logging in like the pool's (see `probe`).
    pub fn probe(&self) -> probe::Probe {
        probe::Probe::new(self.url.to_string(), self.statement_timeout.as_millis())
    }
}

/// An (organization, id) pair found by a cross-organization work query.
#[derive(QueryableByName)]
struct OrgAndId {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    org_id: uuid::Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: uuid::Uuid,
}

/// Error of one transaction attempt: from the closure, or from BEGIN / COMMIT.
enum TxFailure<E> {
    App(E),
    Db(diesel::result::Error),
    /// BEGIN found the connection closed: nothing of the transaction ran.
    Stale(diesel::result::Error),
}

type Pooled = diesel::r2d2::PooledConnection<ConnectionManager<PgConnection>>;

/// `conn` if it answers a round trip, else another connection of `pool` that does: what
/// sits idle in the pool may have been closed by the server (a restart, a terminated
/// backend) without the pool knowing. A failed test leaves the connection broken, so the
/// pool discards it. `transaction` skips the round trip: it finds out at `BEGIN`.
fn tested(pool: &PgPool, mut conn: Pooled) -> Result<Pooled, DbError> {
    use diesel::r2d2::R2D2Connection;
    for _ in 0..pool.max_size() {
        match conn.ping() {
            Ok(()) => return Ok(conn),
            Err(e) if is_closed(&e) => conn = replace(pool, conn)?,
            Err(e) => return Err(e.into()),
        }
    }
    conn.ping()?;
    Ok(conn)
}

/// Another connection of `pool` for `closed`, which goes back broken (its transaction
/// manager is in error) and is discarded.
fn replace(pool: &PgPool, closed: Pooled) -> Result<Pooled, DbError> {
    metrics::counter!("db_stale_connections_total").increment(1);
    drop(closed);
    Ok(pool.get()?)
}

/// The error of a statement that could not reach the server: its connection is closed.
fn is_closed(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        e,
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _)
    )
}

impl<E> From<diesel::result::Error> for TxFailure<E> {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e)
    }
}

/// Runs `f` in one transaction whose tenant (for row-level security) is `org`, as
/// Diesel's `Connection::transaction` would, but with `BEGIN` and the tenant setting
/// sent in one round trip.
fn org_transaction<T, E: From<DbError>>(
    conn: &mut PgConnection,
    (org, key): (OrgId, Option<ApiKeyId>),
    (statement_timeout, in_flight): (Option<Duration>, &shutdown::InFlight),
    f: &mut impl FnMut(&mut PgConnection) -> Result<T, E>,
) -> Result<T, TxFailure<E>> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let started = std::time::Instant::now();
    // Statements run on the connection outside a transaction are not this one's.
    timing::take(conn);
    // A UUID's text is hex digits and dashes, safe to write into the statement.
    let mut begin = format!("BEGIN; SELECT set_config('app.org_id', '{}', true)", org.uuid());
    if let Some(key) = key {
        begin.push_str(&format!(", set_config('app.key_id', '{}', true)", key.uuid()));
    }
    if let Some(t) = statement_timeout {
        // For this transaction only: the caller's deadline is nearer than the usual one.
        begin.push_str(&format!(", set_config('statement_timeout', '{}', true)", t.as_millis().max(1)));
    }
    if let Err(e) = AnsiTransactionManager::begin_transaction_sql(conn, &begin) {
        if is_closed(&e) {
            return Err(TxFailure::Stale(e));
        }
        // Should BEGIN have run and the setting failed, leave no transaction open on a
        // connection that goes back to the pool.
        let _ = conn.batch_execute("ROLLBACK");
        return Err(TxFailure::Db(e));
    }
    match f(conn) {
        // The grace period of a shutdown ended while the work ran: its caller is told
        // nothing was written, so nothing may be.
        Ok(_) if in_flight.is_closing() => {
            AnsiTransactionManager::rollback_transaction(conn)?;
            Err(TxFailure::App(DbError::ShuttingDown.into()))
        }
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn)?;
            timing::record(started.elapsed(), timing::take(conn));
            Ok(value)
        }
        Err(e) => match AnsiTransactionManager::rollback_transaction(conn) {
            // A broken transaction manager is a consequence: the first error says why.
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(TxFailure::App(e)),
            Err(rollback) => Err(TxFailure::Db(rollback)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_logs_in_as_the_service_role_unless_it_is_the_owners() {
        let settings = |s: &str| s.parse::<ConnInfo>().unwrap();
        let service = DbConfig::new("postgres://owner@h/b");
        assert_eq!(service.pool_conninfo().unwrap(), settings("postgres://billing_app@h/b"));
        let explicit =
            DbConfig { login_url: Some("postgres://billing_app:pw@h/b".into()), ..service.clone() };
        assert_eq!(explicit.pool_conninfo().unwrap(), settings("postgres://billing_app:pw@h/b"));
        let owner = DbConfig { role: None, ..service };
        assert_eq!(owner.pool_conninfo().unwrap(), settings("postgres://owner@h/b"));
        let pairs = DbConfig::new("host=h dbname=b user=owner");
        assert_eq!(pairs.pool_conninfo().unwrap(), settings("postgres://billing_app@h/b"));
    }
}
