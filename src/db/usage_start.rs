//! The statement a usage transaction starts with: its customers, locked when it records,
//! and the dedupe keys of the stored events among its ids, in one round trip (see the
//! statement's comment for why reading them before the lock is granted stays exact);
//! then, only when some were found (a replay), their events.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bytea, Int4, Int8, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use super::DbError;
use super::customers::{Extras, parse_time_zone};
use super::prepared::{BindNext, prepared};
use super::usage::{StoredAnswer, StoredEvent};
use crate::domain::ids::{CustomerId, OrgId};

/// Customers `$2` of org `$1`, locked, and the dedupe keys of the stored events among
/// the ids `$3`.
pub const LOCKING: &str = include_str!("sql/usage_customers_and_event_keys.sql");

/// The stored events of org `$1` by their keys: customers `$2`, ids `$3`, months `$4`.
pub const STORED_EVENTS: &str = include_str!("sql/usage_stored_events.sql");

/// The lock clause [`LOCKING`] ends its customers' read with.
const LOCK: &str = " FOR NO KEY UPDATE";

/// [`LOCKING`] without the lock, for decisions that record nothing.
static READING: LazyLock<String> = LazyLock::new(|| LOCKING.replacen(LOCK, "", 1));

/// A customer of a usage batch, as the batch's decisions need it.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchCustomer {
    pub id: CustomerId,
    pub time_zone: chrono_tz::Tz,
    pub extras: Extras,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Nullable<SqlUuid>)]
    customer_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    time_zone: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    holds_until: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Int4>)]
    balance_alerts: Option<i32>,
    #[diesel(sql_type = Nullable<Int4>)]
    promotions_applied: Option<i32>,
    #[diesel(sql_type = Nullable<Int8>)]
    limits_version: Option<i64>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    event_customer_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    event_row_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    event_recorded_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = Text)]
    event_id: String,
    #[diesel(sql_type = Bytea)]
    fingerprint: Vec<u8>,
    #[diesel(sql_type = Nullable<Bytea>)]
    outcome_packed: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    outcome: Option<serde_json::Value>,
}

/// The customers among `ids` in the order of `ids`, which the caller sorts (locked in
/// that order when `lock`), and the stored events among `event_ids` (a second round trip
/// when there are some).
pub fn customers_and_events(
    conn: &mut PgConnection,
    org: OrgId,
    ids: &[CustomerId],
    event_ids: &[String],
    lock: bool,
) -> Result<(Vec<BatchCustomer>, Vec<StoredEvent>), DbError> {
    if ids.is_empty() && event_ids.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let sql: &'static str = if lock { LOCKING } else { READING.as_str() };
    let ids: Vec<Uuid> = ids.iter().map(|c| c.uuid()).collect();
    let rows: Vec<Row> = prepared(sql)
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Array<Text>, _>(event_ids)
        .load(conn)?;
    let mut customers = Vec::new();
    let (mut key_customers, mut key_ids, mut key_months) = (Vec::new(), Vec::new(), Vec::new());
    for r in rows {
        match (r.customer_id, r.event_customer_id, r.event_row_id, r.event_recorded_at) {
            (Some(id), ..) => customers.push(BatchCustomer {
                id: CustomerId(id),
                time_zone: parse_time_zone(r.time_zone.as_deref().unwrap_or_default())?,
                extras: Extras {
                    holds_until: r.holds_until,
                    balance_alerts: r.balance_alerts.unwrap_or_default(),
                    promotions_applied: r.promotions_applied.unwrap_or_default(),
                    limits_version: r.limits_version.unwrap_or_default(),
                },
            }),
            (None, Some(customer), Some(id), Some(month)) => {
                key_customers.push(customer);
                key_ids.push(id);
                key_months.push(month);
            }
            _ => {
                return Err(DbError::Other(
                    "a usage start row with neither a customer nor an event's key".into(),
                ));
            }
        }
    }
    if key_ids.is_empty() {
        return Ok((customers, Vec::new()));
    }
    let events: Vec<EventRow> = prepared(STORED_EVENTS)
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<Array<SqlUuid>, _>(key_customers)
        .bind::<Array<SqlUuid>, _>(key_ids)
        .bind::<Array<Timestamptz>, _>(key_months)
        .load(conn)?;
    let events = events
        .into_iter()
        .map(|r| StoredEvent {
            event_id: r.event_id,
            fingerprint: r.fingerprint,
            answer: StoredAnswer::of(r.outcome_packed, r.outcome),
        })
        .collect();
    Ok((customers, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reading_statement_is_the_locking_one_without_its_lock() {
        assert!(LOCKING.contains(LOCK));
        assert!(!READING.contains("FOR NO KEY UPDATE"));
        assert_eq!(READING.len(), LOCKING.len() - LOCK.len());
    }
}
