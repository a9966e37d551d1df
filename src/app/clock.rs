//! The application's clock. Times are cut to microseconds, PostgreSQL's precision, so
//! what a call answers is exactly what a later read returns.

use chrono::{DateTime, Utc};

/// The current time at microsecond precision.
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}
