//! The caller's deadline, carried to the database work done for it: work whose deadline
//! has passed by the time it gets a connection is not started (its caller has already
//! been told DEADLINE_EXCEEDED, so nothing may change behind its back), and a
//! transaction's statement timeout is never longer than what is left.
//!
//! The gRPC layer sets it for the whole handling of a call, counted from when the call is
//! accepted (`grpc::entry`); `Db` reads it on the calling task, before the work moves to
//! the blocking pool.

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `f` with `deadline` (when there is one) as the deadline of its database work.
pub async fn within<F: Future>(deadline: Option<Instant>, f: F) -> F::Output {
    match deadline {
        Some(d) => DEADLINE.scope(d, f).await,
        None => f.await,
    }
}

/// The deadline of the current task's work, if it has one.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// What is left of `deadline` at `now`; `None` once it has passed.
pub fn left(deadline: Instant, now: Instant) -> Option<Duration> {
    deadline.checked_duration_since(now).filter(|d| !d.is_zero())
}
