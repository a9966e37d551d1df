//! The health probe's connection: one of its own, outside the pool, so a pool busy with
//! work is not mistaken for a dead database; it logs in like the pool's connections
//! (the service's role, the same statement timeout).

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;

/// Asks the database whether it answers, keeping the connection between asks.
pub struct Probe {
    url: String,
    statement_timeout_ms: u128,
    conn: Option<PgConnection>,
}

impl Probe {
    pub(super) fn new(url: String, statement_timeout_ms: u128) -> Self {
        Self { url, statement_timeout_ms, conn: None }
    }

    /// Whether the database answers now; blocking, so run it on the blocking pool. A
    /// connection that failed is dropped and made again on the next ask.
    pub fn answers(&mut self) -> bool {
        let (mut conn, check) = match self.conn.take() {
            Some(c) => (c, "SELECT 1".to_owned()),
            None => match PgConnection::establish(&self.url) {
                // A new connection gets the pool's timeout with its first check.
                Ok(c) => (c, format!("SET statement_timeout = {}; SELECT 1", self.statement_timeout_ms)),
                Err(_) => return false,
            },
        };
        let ok = conn.batch_execute(&check).is_ok();
        if ok {
            self.conn = Some(conn);
        }
        ok
    }
}
