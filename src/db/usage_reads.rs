//! What deciding a batch of usage reads once its customers are locked, in one statement:
//! the customers' limit settings, their windows' totals and alert levels, the products
//! the decisions name and the stored events among the batch's ids. Each kind of row
//! comes back as one array of records, so the statement answers one row whatever the
//! batch holds.

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel::pg::sql_types::Record;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bytea, Date, Jsonb, Nullable, Numeric, Text, Uuid as SqlUuid};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::DbError;
use super::allowances::{SettingsRecord, SettingsSql, settings_of};
use super::prepared::{BindNext, prepared};
use super::products::{ProductRecord, ProductRow, ProductSql};
use super::usage::{
    AlertRow, StoredAnswer, StoredEvent, TotalRow, WindowKey, WindowRows, alert_key, key_arrays, window_kind,
};
use crate::domain::allowance::LimitSettings;
use crate::domain::ids::{CustomerId, OrgId, ProductId};
use crate::domain::product::Product;

/// See the file for its parameters and what each array holds.
pub const LOAD_READS: &str = include_str!("sql/usage_load_reads.sql");

/// The lookups by a batch's keys, with their parameter types and what every index probe
/// of their plans must name (the key, not only the org): `tests/it/plans.rs` checks their
/// plans made on tables analyzed empty (products, a catalog read, aside: see the file).
pub const KEY_LOOKUPS: [(&str, &str, &[&str]); 1] = [(
    LOAD_READS,
    "uuid, uuid[], uuid[], text[], date[], uuid[], text[], text[]",
    &["event_id = wanted.event_id", "id = k.id", "customer_id = w_", "customer_id = c.customer_id"],
)];

/// What to read: every key a batch's decisions need.
#[derive(Debug, Default)]
pub struct ReadKeys<'a> {
    /// The customers whose limits are wanted.
    pub customers: &'a [CustomerId],
    /// The windows whose totals and alert levels are wanted.
    pub windows: &'a [WindowKey],
    /// Products named by id; those of the totals found come too.
    pub product_ids: &'a [ProductId],
    /// Products named by code.
    pub product_codes: &'a [String],
    /// Event ids whose stored events are wanted.
    pub event_ids: &'a [String],
}

/// What [`load`] found.
#[derive(Debug, Default)]
pub struct UsageReads {
    /// The limit settings of each customer that has limits.
    pub limits: HashMap<CustomerId, LimitSettings>,
    pub windows: WindowRows,
    /// A product named both by id and by code comes twice.
    pub products: Vec<Product>,
    pub stored: Vec<StoredEvent>,
}

type TotalSql = (SqlUuid, Text, Date, SqlUuid, Text, Numeric, Numeric);
type TotalRecord = (Uuid, String, NaiveDate, Uuid, String, Decimal, Decimal);
type AlertSql = (SqlUuid, Text, Date, Text, Text, Numeric);
type AlertRecord = (Uuid, String, NaiveDate, String, String, Decimal);
type EventSql = (Text, Bytea, Nullable<Bytea>, Nullable<Jsonb>);
type EventRecord = (String, Vec<u8>, Option<Vec<u8>>, Option<serde_json::Value>);

#[derive(QueryableByName)]
struct ReadsRow {
    #[diesel(sql_type = Array<Record<SettingsSql>>)]
    limits: Vec<SettingsRecord>,
    #[diesel(sql_type = Array<Record<TotalSql>>)]
    totals: Vec<TotalRecord>,
    #[diesel(sql_type = Array<Record<AlertSql>>)]
    alerts: Vec<AlertRecord>,
    #[diesel(sql_type = Array<Record<ProductSql>>)]
    products: Vec<ProductRecord>,
    #[diesel(sql_type = Array<Record<EventSql>>)]
    events: Vec<EventRecord>,
}

/// Everything `keys` name, in one round trip (none when they name nothing).
pub fn load(conn: &mut PgConnection, org: OrgId, keys: &ReadKeys) -> Result<UsageReads, DbError> {
    if keys.customers.is_empty()
        && keys.windows.is_empty()
        && keys.product_ids.is_empty()
        && keys.product_codes.is_empty()
        && keys.event_ids.is_empty()
    {
        return Ok(UsageReads::default());
    }
    let customers: Vec<Uuid> = keys.customers.iter().map(|c| c.uuid()).collect();
    let (window_customers, kinds, days) = key_arrays(keys.windows);
    let product_ids: Vec<Uuid> = keys.product_ids.iter().map(|p| p.uuid()).collect();
    let row: ReadsRow = prepared(LOAD_READS)
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<Array<SqlUuid>, _>(customers)
        .bind::<Array<SqlUuid>, _>(window_customers)
        .bind::<Array<Text>, _>(kinds)
        .bind::<Array<Date>, _>(days)
        .bind::<Array<SqlUuid>, _>(product_ids)
        .bind::<Array<Text>, _>(keys.product_codes)
        .bind::<Array<Text>, _>(keys.event_ids)
        .get_result(conn)?;
    let limits = row.limits.into_iter().map(settings_of).collect::<Result<_, _>>()?;
    let totals = row.totals.into_iter().map(total_of).collect::<Result<_, _>>()?;
    let alerts = row
        .alerts
        .into_iter()
        .map(|(customer, kind, first_day, scope, measure, percent)| {
            Ok(AlertRow {
                customer: CustomerId(customer),
                key: alert_key(scope, &measure, &kind, first_day)?,
                percent,
            })
        })
        .collect::<Result<_, DbError>>()?;
    let products =
        row.products.into_iter().map(|p| Product::try_from(ProductRow::from(p))).collect::<Result<_, _>>()?;
    let stored = row
        .events
        .into_iter()
        .map(|(event_id, fingerprint, packed, json)| StoredEvent {
            event_id,
            fingerprint,
            answer: StoredAnswer::of(packed, json),
        })
        .collect();
    Ok(UsageReads { limits, windows: WindowRows { totals, alerts }, products, stored })
}

fn total_of(
    (customer, kind, first_day, product, credit_type, amount, quantity): TotalRecord,
) -> Result<TotalRow, DbError> {
    Ok(TotalRow {
        customer: CustomerId(customer),
        product: ProductId(product),
        kind: window_kind(&kind)?,
        first_day,
        credit_type,
        amount,
        quantity,
    })
}
