//! Where a transaction's time goes, seen from the service: in its statements (sent, run
//! by PostgreSQL and answered: the round trips) or between them (the service's own work:
//! reading answers into values, deciding, building the next statement). PostgreSQL sees
//! the second part as `idle in transaction` and cannot tell it from the transport; the
//! service can, so it reports both as `db_transaction_seconds{part}`.

use std::time::{Duration, Instant};

use diesel::connection::{Connection, Instrumentation, InstrumentationEvent};
use diesel::pg::PgConnection;

/// Sums the time of a connection's statements, from the moment Diesel starts one
/// (binding its parameters) to the moment its answer is read. Installed on every pooled
/// connection; a transaction reads and resets it with [`take`].
#[derive(Debug, Default)]
pub(super) struct StatementClock {
    started: Option<Instant>,
    spent: Duration,
    statements: u32,
}

impl Instrumentation for StatementClock {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { .. } => self.started = Some(Instant::now()),
            InstrumentationEvent::FinishQuery { .. } => {
                if let Some(started) = self.started.take() {
                    self.spent += started.elapsed();
                    self.statements += 1;
                }
            }
            _ => {}
        }
    }
}

/// The statements run on `conn` since the last call, and the time they took; zero on a
/// connection without the clock.
pub(super) fn take(conn: &mut PgConnection) -> (u32, Duration) {
    match conn.instrumentation().downcast_mut::<StatementClock>() {
        Some(clock) => {
            let taken = (clock.statements, clock.spent);
            *clock = StatementClock::default();
            taken
        }
        None => (0, Duration::ZERO),
    }
}

/// Records a committed transaction that took `wall` in all and ran `statements` taking
/// `in_statements`.
pub(super) fn record(wall: Duration, (statements, in_statements): (u32, Duration)) {
    metrics::histogram!("db_transaction_seconds", "part" => "statements").record(in_statements.as_secs_f64());
    metrics::histogram!("db_transaction_seconds", "part" => "service")
        .record(wall.saturating_sub(in_statements).as_secs_f64());
    metrics::histogram!("db_transaction_statements").record(f64::from(statements));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_counts_a_statement_from_its_start_to_its_answer_and_only_finished_ones() {
        let mut clock = StatementClock::default();
        let query = diesel::connection::StrQueryHelper::new("SELECT 1");
        clock.on_connection_event(InstrumentationEvent::start_query(&query));
        clock.on_connection_event(InstrumentationEvent::finish_query(&query, None));
        clock.on_connection_event(InstrumentationEvent::start_query(&query));
        assert_eq!(clock.statements, 1, "the second statement has not answered yet");
        assert!(clock.started.is_some());
        clock.on_connection_event(InstrumentationEvent::finish_query(&query, None));
        clock.on_connection_event(InstrumentationEvent::finish_query(&query, None));
        assert_eq!(clock.statements, 2, "a finish without a start counts nothing");
    }
}
