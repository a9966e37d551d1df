//! Recorded usage events as resources: read one, list a customer's, mark one voided.
//! (Recording them, in batches, is in `usage.rs`.)

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::DbError;
use super::schema::{usage_event_keys, usage_events};
use super::usage::StoredAnswer;
use crate::domain::ids::{ApiKeyId, CustomerId, OrgId, ProductId};

/// A recorded event with its stored answer (see `StoredAnswer`).
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = usage_events)]
pub struct EventRecord {
    pub id: Uuid,
    pub event_id: String,
    pub customer_id: Uuid,
    pub product_id: Uuid,
    pub quantity: Decimal,
    pub amount: Decimal,
    pub credit_type: String,
    pub occurred_at: DateTime<Utc>,
    pub contract_id: Option<String>,
    pub decision: String,
    pub outcome: Option<serde_json::Value>,
    pub recorded_at: DateTime<Utc>,
    pub voided_at: Option<DateTime<Utc>>,
    pub voided_by: Option<Uuid>,
    pub void_reason: Option<String>,
    pub outcome_packed: Option<Vec<u8>>,
}

impl EventRecord {
    pub fn customer(&self) -> CustomerId {
        CustomerId(self.customer_id)
    }

    pub fn product(&self) -> ProductId {
        ProductId(self.product_id)
    }

    pub fn answer(&self) -> StoredAnswer {
        StoredAnswer::of(self.outcome_packed.clone(), self.outcome.clone())
    }
}

/// Filters of an event listing; `None` does not filter.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub customer: Option<CustomerId>,
    pub product: Option<ProductId>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub decision: Option<&'static str>,
    pub include_voided: bool,
}

/// The primary key (customer, id, month) of event `event_id`, from its key row: the
/// events' own keys carry the month, so an event is found through its key.
fn key_of(
    conn: &mut PgConnection,
    org: OrgId,
    event_id: &str,
) -> Result<Option<(Uuid, Uuid, DateTime<Utc>)>, DbError> {
    Ok(usage_event_keys::table
        .find((org.uuid(), event_id))
        .select((usage_event_keys::customer_id, usage_event_keys::id, usage_event_keys::recorded_at))
        .first(conn)
        .optional()?)
}

/// The event recorded under `event_id`, locked when `lock`.
pub fn get(
    conn: &mut PgConnection,
    org: OrgId,
    event_id: &str,
    lock: bool,
) -> Result<Option<EventRecord>, DbError> {
    let Some((customer, id, month)) = key_of(conn, org, event_id)? else { return Ok(None) };
    let q = usage_events::table.find((org.uuid(), customer, id, month)).select(EventRecord::as_select());
    Ok(if lock { q.for_update().first(conn).optional()? } else { q.first(conn).optional()? })
}

/// Up to `limit` events of the filter after recording `after`, in recording order.
pub fn list(
    conn: &mut PgConnection,
    org: OrgId,
    f: &EventFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<EventRecord>, DbError> {
    let mut q = usage_events::table.filter(usage_events::org_id.eq(org.uuid())).into_boxed();
    if let Some(c) = f.customer {
        q = q.filter(usage_events::customer_id.eq(c.uuid()));
    }
    if let Some(p) = f.product {
        q = q.filter(usage_events::product_id.eq(p.uuid()));
    }
    if let Some(t) = f.from {
        q = q.filter(usage_events::occurred_at.ge(t));
    }
    if let Some(t) = f.until {
        q = q.filter(usage_events::occurred_at.lt(t));
    }
    if let Some(d) = f.decision {
        q = q.filter(usage_events::decision.eq(d));
    }
    if !f.include_voided {
        q = q.filter(usage_events::voided_at.is_null());
    }
    if let Some(a) = after {
        q = q.filter(usage_events::id.gt(a));
    }
    Ok(q.order(usage_events::id).limit(limit).select(EventRecord::as_select()).load(conn)?)
}

/// Marks the event voided at `at` by `by` for `reason`.
pub fn mark_voided(
    conn: &mut PgConnection,
    org: OrgId,
    event_id: &str,
    (at, by, reason): (DateTime<Utc>, ApiKeyId, &str),
) -> Result<(), DbError> {
    let Some((customer, id, month)) = key_of(conn, org, event_id)? else { return Ok(()) };
    diesel::update(usage_events::table.find((org.uuid(), customer, id, month)))
        .set((
            usage_events::voided_at.eq(at),
            usage_events::voided_by.eq(by.uuid()),
            usage_events::void_reason.eq(reason),
        ))
        .execute(conn)?;
    Ok(())
}
