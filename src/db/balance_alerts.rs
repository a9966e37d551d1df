//! Balance alert rows.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::DbError;
use super::schema::balance_alerts;
use crate::domain::balance_alert::{AlertState, BalanceAlert, Threshold};
use crate::domain::ids::{ApiKeyId, BalanceAlertId, CustomerId, OrgId};

#[derive(Queryable, Selectable, Insertable, Debug)]
#[diesel(table_name = balance_alerts, check_for_backend(diesel::pg::Pg))]
struct AlertRow {
    org_id: Uuid,
    id: Uuid,
    customer_id: Uuid,
    credit_type: String,
    threshold_kind: String,
    threshold: Decimal,
    state: String,
    state_changed_at: DateTime<Utc>,
    available: Decimal,
    created_at: DateTime<Utc>,
    created_by: Option<Uuid>,
}

impl TryFrom<AlertRow> for BalanceAlert {
    type Error = DbError;
    fn try_from(r: AlertRow) -> Result<Self, DbError> {
        let threshold = match r.threshold_kind.as_str() {
            "ABSOLUTE" => Threshold::Absolute(r.threshold),
            "PERCENT" => Threshold::Percent(r.threshold),
            other => return Err(DbError::Other(format!("unknown balance alert threshold kind {other:?}"))),
        };
        let state = AlertState::parse(&r.state)
            .ok_or_else(|| DbError::Other(format!("unknown balance alert state {:?}", r.state)))?;
        Ok(Self {
            id: BalanceAlertId(r.id),
            customer: CustomerId(r.customer_id),
            credit_type: r.credit_type,
            threshold,
            state,
            changed_at: r.state_changed_at,
            available: r.available,
            created_at: r.created_at,
            created_by: r.created_by.map(ApiKeyId),
        })
    }
}

fn alerts(rows: Vec<AlertRow>) -> Result<Vec<BalanceAlert>, DbError> {
    rows.into_iter().map(BalanceAlert::try_from).collect()
}

pub fn insert(conn: &mut PgConnection, org: OrgId, a: &BalanceAlert) -> Result<(), DbError> {
    let (threshold_kind, threshold) = match a.threshold {
        Threshold::Absolute(x) => ("ABSOLUTE", x),
        Threshold::Percent(x) => ("PERCENT", x),
    };
    diesel::insert_into(balance_alerts::table)
        .values(AlertRow {
            org_id: org.uuid(),
            id: a.id.uuid(),
            customer_id: a.customer.uuid(),
            credit_type: a.credit_type.clone(),
            threshold_kind: threshold_kind.to_owned(),
            threshold,
            state: a.state.as_str().to_owned(),
            state_changed_at: a.changed_at,
            available: a.available,
            created_at: a.created_at,
            created_by: a.created_by.map(|k| k.uuid()),
        })
        .execute(conn)?;
    Ok(())
}

/// The alerts of `customers`; with `lock`, locked in id order until the transaction ends.
pub fn for_customers(
    conn: &mut PgConnection,
    org: OrgId,
    customers: &[CustomerId],
    lock: bool,
) -> Result<Vec<BalanceAlert>, DbError> {
    let ids: Vec<Uuid> = customers.iter().map(|c| c.uuid()).collect();
    let q = balance_alerts::table
        .filter(balance_alerts::org_id.eq(org.uuid()))
        .filter(balance_alerts::customer_id.eq_any(ids))
        .order(balance_alerts::id)
        .select(AlertRow::as_select());
    alerts(if lock { q.for_update().load(conn)? } else { q.load(conn)? })
}

/// Moves an alert to `state` at `at`, noting the available balance then.
pub fn set_state(
    conn: &mut PgConnection,
    org: OrgId,
    id: BalanceAlertId,
    (state, at, available): (AlertState, DateTime<Utc>, Decimal),
) -> Result<(), DbError> {
    diesel::update(balance_alerts::table.find((org.uuid(), id.uuid())))
        .set((
            balance_alerts::state.eq(state.as_str()),
            balance_alerts::state_changed_at.eq(at),
            balance_alerts::available.eq(available),
        ))
        .execute(conn)?;
    Ok(())
}

/// The customer an alert watches.
pub fn customer_of(
    conn: &mut PgConnection,
    org: OrgId,
    id: BalanceAlertId,
) -> Result<Option<CustomerId>, DbError> {
    Ok(balance_alerts::table
        .find((org.uuid(), id.uuid()))
        .select(balance_alerts::customer_id)
        .first::<Uuid>(conn)
        .optional()?
        .map(CustomerId))
}

/// Deletes an alert; whether it existed.
pub fn delete(conn: &mut PgConnection, org: OrgId, id: BalanceAlertId) -> Result<bool, DbError> {
    Ok(diesel::delete(balance_alerts::table.find((org.uuid(), id.uuid()))).execute(conn)? == 1)
}
