//! The end of a shutdown's grace period. Database work still running then is cancelled
//! and rolled back, and none may commit afterwards, so a caller answered UNAVAILABLE
//! can retry knowing nothing was written, and the process never waits for a lock or a
//! statement timeout before it exits.
//!
//! A pool's sessions carry an `application_name` unique to it; that is how its backends
//! are found in `pg_stat_activity` and cancelled from a separate connection (the pool
//! may be exhausted by the very work being cancelled).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, Integer, Text};

/// Database work of one pool: how much is running, and whether it may still commit.
#[derive(Debug)]
pub(crate) struct InFlight {
    closing: AtomicBool,
    running: AtomicUsize,
    /// `application_name` of every session of the pool.
    name: String,
}

/// One piece of work counted as running until dropped.
pub(crate) struct Running<'a>(&'a InFlight);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl InFlight {
    pub(crate) fn new() -> Self {
        Self {
            closing: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            name: format!("billing-commitments {}", uuid::Uuid::now_v7().simple()),
        }
    }

    pub(crate) fn application_name(&self) -> &str {
        &self.name
    }

    /// Counts a piece of work as running, unless the pool is closing (then it must not
    /// start).
    pub(crate) fn enter(&self) -> Option<Running<'_>> {
        self.running.fetch_add(1, Ordering::SeqCst);
        let running = Running(self);
        // Checked after counting: `close` sets the flag then waits for the count, so
        // work that passes this check is either waited for or cancelled.
        (!self.is_closing()).then_some(running)
    }

    /// Once true, no work starts and no transaction commits.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }
}

#[derive(QueryableByName)]
struct Backend {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// The pool's backends running a statement or holding a transaction open.
fn busy_backends(conn: &mut PgConnection, name: &str) -> QueryResult<Vec<i32>> {
    let rows: Vec<Backend> =
        diesel::sql_query(include_str!("sql/shutdown_busy_backends.sql")).bind::<Text, _>(name).load(conn)?;
    Ok(rows.into_iter().map(|b| b.pid).collect())
}

fn cancel_backends(conn: &mut PgConnection, pids: &[i32]) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_cancel_backend(pid) FROM unnest($1::int4[]) AS b(pid)")
        .bind::<Array<Integer>, _>(pids)
        .execute(conn)
        .map(drop)
}

/// What closing a pool did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Closed {
    /// Cancel requests sent to busy backends.
    pub cancelled: usize,
    /// Work still running when the margin ran out (the database did not answer).
    pub still_running: usize,
}

/// Stops new work and commits, then cancels the pool's busy backends (again every few
/// milliseconds: work between two statements when first asked starts its next one)
/// until nothing runs or `margin` has passed. Blocking: run it on the blocking pool.
pub(crate) fn close(in_flight: &InFlight, url: &str, margin: Duration) -> Closed {
    in_flight.closing.store(true, Ordering::SeqCst);
    let until = Instant::now() + margin;
    let mut conn: Option<PgConnection> = None;
    let mut closed = Closed::default();
    while in_flight.running() > 0 && Instant::now() < until {
        if conn.is_none() {
            conn = PgConnection::establish(url)
                .inspect_err(|e| tracing::warn!(error = %e, "cannot connect to cancel in-flight work"))
                .ok();
        }
        if let Some(c) = conn.as_mut() {
            let sent = busy_backends(c, &in_flight.name)
                .and_then(|pids| cancel_backends(c, &pids).map(|()| pids.len()));
            match sent {
                Ok(n) => closed.cancelled += n,
                Err(e) => {
                    tracing::warn!(error = %e, "cancelling in-flight work failed");
                    conn = None;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    closed.still_running = in_flight.running();
    closed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_counts_while_it_runs_and_none_starts_once_closing() {
        let f = InFlight::new();
        let running = f.enter().expect("open: work starts");
        assert_eq!(f.running(), 1);
        drop(running);
        assert_eq!(f.running(), 0);
        f.closing.store(true, Ordering::SeqCst);
        assert!(f.enter().is_none(), "closing: work does not start");
        assert_eq!(f.running(), 0, "refused work is not counted");
    }

    #[test]
    fn every_pool_has_its_own_session_name() {
        assert_ne!(InFlight::new().application_name(), InFlight::new().application_name());
    }
}
