//! Tables partitioned by month (`violations` and `usage_events` by recording time,
//! `commit_ledger` by effective time): their months are made ahead of time by functions
//! the migrations define, so the service's role needs no DDL rights.

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};

use super::DbError;
use super::prepared::{BindNext, prepared};

/// A table partitioned by month.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partitioned {
    Violations,
    UsageEvents,
    CommitLedger,
}

impl Partitioned {
    pub const ALL: [Self; 3] = [Self::Violations, Self::UsageEvents, Self::CommitLedger];

    fn table(self) -> &'static str {
        match self {
            Self::Violations => "violations",
            Self::UsageEvents => "usage_events",
            Self::CommitLedger => "commit_ledger",
        }
    }
}

/// Months made ahead of time, beyond the current one.
pub const MONTHS_AHEAD: i32 = 3;

#[derive(QueryableByName)]
pub(super) struct Partition {
    #[diesel(sql_type = Text)]
    pub name: String,
}

/// Makes `table`'s missing months, from this one to [`MONTHS_AHEAD`] after it; returns
/// their names. Spans organizations.
pub fn make_months_ahead(conn: &mut PgConnection, table: Partitioned) -> Result<Vec<String>, DbError> {
    Ok(prepared("SELECT billing_create_partitions_ahead($1, $2) AS name")
        .bind::<Text, _>(table.table())
        .bind::<Integer, _>(MONTHS_AHEAD)
        .load::<Partition>(conn)?
        .into_iter()
        .map(|p| p.name)
        .collect())
}
