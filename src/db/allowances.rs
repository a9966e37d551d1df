//! Allowance limit rows, every query scoped by org.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::DbError;
use super::schema::allowance_limits;
use crate::domain::allowance::{AllowanceLimits, LimitSettings, Maxima, ServiceAllowance};
use crate::domain::authorship::Authorship;
use crate::domain::ids::{ApiKeyId, CustomerId, OrgId};

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = allowance_limits, treat_none_as_null = true)]
struct AllowanceRow {
    org_id: Uuid,
    customer_id: Uuid,
    max_amount_per_transaction: Option<Decimal>,
    max_amount_per_day: Option<Decimal>,
    max_amount_per_month: Option<Decimal>,
    max_usage_per_transaction: Option<Decimal>,
    max_usage_per_day: Option<Decimal>,
    max_usage_per_month: Option<Decimal>,
    tolerance_percent: Option<Decimal>,
    block_not_included: bool,
    soft: bool,
    warning_thresholds: Vec<Decimal>,
    service_allowances: serde_json::Value,
    currency: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    // The trigger `written_by` has the last word on both.
    created_by: Option<Uuid>,
    updated_by: Option<Uuid>,
}

impl AllowanceRow {
    fn of(org: OrgId, l: &AllowanceLimits) -> Result<Self, DbError> {
        let m = &l.settings.maxima;
        Ok(Self {
            org_id: org.uuid(),
            customer_id: l.customer_id.uuid(),
            max_amount_per_transaction: m.amount_per_transaction,
            max_amount_per_day: m.amount_per_day,
            max_amount_per_month: m.amount_per_month,
            max_usage_per_transaction: m.usage_per_transaction,
            max_usage_per_day: m.usage_per_day,
            max_usage_per_month: m.usage_per_month,
            tolerance_percent: l.settings.tolerance_percent,
            block_not_included: l.settings.block_not_included,
            soft: l.settings.soft,
            warning_thresholds: l.settings.warning_thresholds.clone(),
            service_allowances: serde_json::to_value(&l.settings.services)
                .map_err(|e| DbError::Other(format!("serializing allowances: {e}")))?,
            currency: l.settings.currency.clone(),
            version: l.version,
            created_at: l.created_at,
            updated_at: l.updated_at,
            created_by: l.by.created_by.map(ApiKeyId::uuid),
            updated_by: l.by.updated_by.map(ApiKeyId::uuid),
        })
    }
}

impl TryFrom<AllowanceRow> for AllowanceLimits {
    type Error = DbError;
    fn try_from(r: AllowanceRow) -> Result<Self, DbError> {
        let services: Vec<ServiceAllowance> = serde_json::from_value(r.service_allowances)
            .map_err(|e| DbError::Other(format!("stored service allowances are unreadable: {e}")))?;
        Ok(AllowanceLimits {
            customer_id: CustomerId(r.customer_id),
            settings: LimitSettings {
                maxima: Maxima {
                    amount_per_transaction: r.max_amount_per_transaction,
                    amount_per_day: r.max_amount_per_day,
                    amount_per_month: r.max_amount_per_month,
                    usage_per_transaction: r.max_usage_per_transaction,
                    usage_per_day: r.max_usage_per_day,
                    usage_per_month: r.max_usage_per_month,
                },
                currency: r.currency,
                tolerance_percent: r.tolerance_percent,
                block_not_included: r.block_not_included,
                soft: r.soft,
                warning_thresholds: r.warning_thresholds,
                services,
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
            by: Authorship::of(r.created_by, r.updated_by),
        })
    }
}

pub fn get(
    conn: &mut PgConnection,
    org: OrgId,
    customer: CustomerId,
    lock: bool,
) -> Result<Option<AllowanceLimits>, DbError> {
    let q = allowance_limits::table.find((org.uuid(), customer.uuid())).select(AllowanceRow::as_select());
    let row = if lock { q.for_update().first(conn).optional()? } else { q.first(conn).optional()? };
    row.map(AllowanceLimits::try_from).transpose()
}

/// The limits of each of `customers` that has any.
pub fn get_many(
    conn: &mut PgConnection,
    org: OrgId,
    customers: &[CustomerId],
) -> Result<HashMap<CustomerId, AllowanceLimits>, DbError> {
    if customers.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = customers.iter().map(|c| c.uuid()).collect();
    let rows: Vec<AllowanceRow> = allowance_limits::table
        .filter(allowance_limits::org_id.eq(org.uuid()))
        .filter(allowance_limits::customer_id.eq_any(ids))
        .select(AllowanceRow::as_select())
        .load(conn)?;
    rows.into_iter().map(|r| AllowanceLimits::try_from(r).map(|l| (l.customer_id, l))).collect()
}

/// Writes the limits, creating or replacing the row.
pub fn put(conn: &mut PgConnection, org: OrgId, limits: &AllowanceLimits) -> Result<(), DbError> {
    let row = AllowanceRow::of(org, limits)?;
    diesel::insert_into(allowance_limits::table)
        .values(&row)
        .on_conflict((allowance_limits::org_id, allowance_limits::customer_id))
        .do_update()
        .set(&row)
        .execute(conn)?;
    Ok(())
}

/// Deletes the limits; false when there were none.
pub fn delete(conn: &mut PgConnection, org: OrgId, customer: CustomerId) -> Result<bool, DbError> {
    Ok(diesel::delete(allowance_limits::table.find((org.uuid(), customer.uuid()))).execute(conn)? > 0)
}
