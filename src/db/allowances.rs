//! Allowance limit rows, every query scoped by org.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Jsonb, Nullable, Numeric, Text, Uuid as SqlUuid};
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
        let (customer_id, settings) = settings_of((
            r.customer_id,
            r.max_amount_per_transaction,
            r.max_amount_per_day,
            r.max_amount_per_month,
            r.max_usage_per_transaction,
            r.max_usage_per_day,
            r.max_usage_per_month,
            r.tolerance_percent,
            r.block_not_included,
            r.soft,
            r.warning_thresholds,
            r.service_allowances,
            r.currency,
        ))?;
        Ok(AllowanceLimits {
            customer_id,
            settings,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
            by: Authorship::of(r.created_by, r.updated_by),
        })
    }
}

/// The SQL types of [`SettingsRecord`]: a row's customer and the columns of its settings.
pub type SettingsSql = (
    SqlUuid,
    Nullable<Numeric>,
    Nullable<Numeric>,
    Nullable<Numeric>,
    Nullable<Numeric>,
    Nullable<Numeric>,
    Nullable<Numeric>,
    Nullable<Numeric>,
    Bool,
    Bool,
    Array<Numeric>,
    Jsonb,
    Text,
);

/// A limits row's customer and settings, in the order of its columns (maxima per
/// transaction, day and month of amount then usage, tolerance, `block_not_included`,
/// `soft`, warning thresholds, service allowances, currency): what the usage path
/// reads of it.
pub type SettingsRecord = (
    Uuid,
    Option<Decimal>,
    Option<Decimal>,
    Option<Decimal>,
    Option<Decimal>,
    Option<Decimal>,
    Option<Decimal>,
    Option<Decimal>,
    bool,
    bool,
    Vec<Decimal>,
    serde_json::Value,
    String,
);

/// The customer and limit settings of a stored row's columns.
pub fn settings_of(r: SettingsRecord) -> Result<(CustomerId, LimitSettings), DbError> {
    let (
        customer,
        apt,
        apd,
        apm,
        upt,
        upd,
        upm,
        tolerance_percent,
        block_not_included,
        soft,
        warnings,
        services,
        currency,
    ) = r;
    let services: Vec<ServiceAllowance> = serde_json::from_value(services)
        .map_err(|e| DbError::Other(format!("stored service allowances are unreadable: {e}")))?;
    let maxima = Maxima {
        amount_per_transaction: apt,
        amount_per_day: apd,
        amount_per_month: apm,
        usage_per_transaction: upt,
        usage_per_day: upd,
        usage_per_month: upm,
    };
    let settings = LimitSettings {
        maxima,
        currency,
        tolerance_percent,
        block_not_included,
        soft,
        warning_thresholds: warnings,
        services,
    };
    Ok((CustomerId(customer), settings))
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
