//! Usage event, total and alert rows. Every query takes a whole batch's keys at once, so
//! a batch costs a fixed number of statements whatever its size.
//!
//! Lookups by a batch's keys are `unnest(keys) CROSS JOIN LATERAL (... OFFSET 0)`: the
//! `OFFSET 0` keeps the subquery from being merged into a join, so the plan is one index
//! probe per key whatever the table's statistics say. Statements are planned once per
//! connection (see `SessionSettings` in `db`), and a plain join planned while a table
//! was analyzed empty hashed a scan of the organization's whole table on every call as
//! the table filled (2 ms per call in the benchmark, against 0.05 ms).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Date, Nullable, Numeric, Text, Timestamptz, Uuid as SqlUuid};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::DbError;
use super::error::stored;
use super::prepared::{BindNext, prepared};
use super::schema::usage_alerts;
use super::writes::{Rows, write};
use crate::domain::allowance::Measure;
use crate::domain::ids::{CustomerId, OrgId, ProductId};
use crate::domain::limits::{AlertKey, Decision};
use crate::domain::usage::UsageEvent;
use crate::domain::windows::WindowKind;

/// The answer stored with an event, as the app encoded it: packed since migration
/// 2026-12-02-001100, JSON before.
#[derive(Clone, Debug, PartialEq)]
pub enum StoredAnswer {
    Packed(Vec<u8>),
    Json(serde_json::Value),
}

impl StoredAnswer {
    /// The answer of a row's two columns (a check constraint keeps exactly one set).
    pub fn of(packed: Option<Vec<u8>>, json: Option<serde_json::Value>) -> Self {
        match (packed, json) {
            (Some(p), _) => Self::Packed(p),
            (None, Some(j)) => Self::Json(j),
            (None, None) => Self::Packed(Vec::new()),
        }
    }
}

/// A decided event as stored: its fingerprint and the answer it got.
#[derive(Debug)]
pub struct StoredEvent {
    pub event_id: String,
    pub fingerprint: Vec<u8>,
    pub answer: StoredAnswer,
}

/// A decided event to store, in the domain's terms: `db` makes its row.
#[derive(Debug)]
pub struct EventToStore<'a> {
    pub event: &'a UsageEvent,
    pub id: Uuid,
    pub product: ProductId,
    pub decision: Decision,
    pub fingerprint: [u8; 32],
    /// The answer, packed by the app.
    pub outcome: Vec<u8>,
}

/// The totals and alert levels of org `$1` in the windows `($2 customer, $3 kind, $4 first day)`.
const LOAD_WINDOWS: &str = include_str!("sql/usage_load_windows.sql");

/// The lookups by a batch's keys (the customers' open holds among them), with their
/// parameter types and the column every index probe of their plans must name (the key,
/// not only the org): `tests/it/plans.rs` checks their plans made on tables analyzed
/// empty.
pub const KEY_LOOKUPS: [(&str, &str, &[&str]); 4] = [
    (super::usage_start::LOCKING, "uuid, uuid[], text[]", &["id = asked.id", "event_id = wanted.event_id"]),
    (super::usage_start::STORED_EVENTS, "uuid, uuid[], uuid[], timestamptz[]", &["id = k.id"]),
    // The windows' second scan is `w_1` in a plan.
    (
        LOAD_WINDOWS,
        "uuid, uuid[], text[], date[]",
        &["customer_id = w.customer_id", "customer_id = w_1.customer_id"],
    ),
    (super::reservations::OPEN_HOLDS, "uuid, uuid[], text, timestamptz", &["customer_id = asked.id"]),
];

/// A window of one customer whose totals are wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WindowKey {
    pub customer: CustomerId,
    pub kind: WindowKind,
    pub first_day: NaiveDate,
}

/// One product's total in one window of one customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotalRow {
    pub customer: CustomerId,
    pub product: ProductId,
    pub kind: WindowKind,
    pub first_day: NaiveDate,
    /// Credit type of `amount`: totals are kept per credit type.
    pub credit_type: String,
    pub amount: Decimal,
    pub quantity: Decimal,
}

/// A row of `LOAD_WINDOWS`: a total when it names a product, else an alert level.
#[derive(QueryableByName)]
struct RawWindowRow {
    #[diesel(sql_type = SqlUuid)]
    customer_id: Uuid,
    #[diesel(sql_type = Text)]
    window_kind: String,
    #[diesel(sql_type = Date)]
    first_day: NaiveDate,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    product_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    credit_type: Option<String>,
    #[diesel(sql_type = Nullable<Numeric>)]
    amount: Option<Decimal>,
    #[diesel(sql_type = Nullable<Numeric>)]
    quantity: Option<Decimal>,
    #[diesel(sql_type = Nullable<Text>)]
    scope: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    measure: Option<String>,
    #[diesel(sql_type = Nullable<Numeric>)]
    percent: Option<Decimal>,
}

fn key_arrays(keys: &[WindowKey]) -> (Vec<Uuid>, Vec<String>, Vec<NaiveDate>) {
    (
        keys.iter().map(|k| k.customer.uuid()).collect(),
        keys.iter().map(|k| k.kind.as_str().to_owned()).collect(),
        keys.iter().map(|k| k.first_day).collect(),
    )
}

fn window_kind(s: &str) -> Result<WindowKind, DbError> {
    stored("window kind", s, WindowKind::parse)
}

/// What the windows of some customers hold: product totals and alert levels.
#[derive(Debug, Default)]
pub struct WindowRows {
    pub totals: Vec<TotalRow>,
    pub alerts: Vec<AlertRow>,
}

/// Every product total and alert level in the given windows, in one statement.
pub fn load_windows(conn: &mut PgConnection, org: OrgId, keys: &[WindowKey]) -> Result<WindowRows, DbError> {
    let mut out = WindowRows::default();
    if keys.is_empty() {
        return Ok(out);
    }
    let (customers, kinds, days) = key_arrays(keys);
    let rows: Vec<RawWindowRow> = prepared(LOAD_WINDOWS)
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<Array<SqlUuid>, _>(customers)
        .bind::<Array<Text>, _>(kinds)
        .bind::<Array<Date>, _>(days)
        .load(conn)?;
    for r in rows {
        let customer = CustomerId(r.customer_id);
        match (r.product_id, r.credit_type, r.amount, r.quantity, r.scope, r.measure, r.percent) {
            (Some(product), Some(credit_type), Some(amount), Some(quantity), ..) => {
                out.totals.push(TotalRow {
                    customer,
                    product: ProductId(product),
                    kind: window_kind(&r.window_kind)?,
                    first_day: r.first_day,
                    credit_type,
                    amount,
                    quantity,
                })
            }
            (None, .., Some(scope), Some(measure), Some(percent)) => out.alerts.push(AlertRow {
                customer,
                key: alert_key(scope, &measure, &r.window_kind, r.first_day)?,
                percent,
            }),
            _ => return Err(DbError::Other(format!("stored window row of customer {customer} incomplete"))),
        }
    }
    Ok(out)
}

/// Adds each row's amount and quantity to its total (rows must have distinct keys).
pub fn add_totals(conn: &mut PgConnection, org: OrgId, deltas: &[TotalRow]) -> Result<(), DbError> {
    write(conn, org, &Rows { totals: deltas, ..Rows::default() })
}

/// The highest threshold notified for one scope, measure and window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRow {
    pub customer: CustomerId,
    pub key: AlertKey,
    pub percent: Decimal,
}

#[derive(Insertable)]
#[diesel(table_name = usage_alerts)]
struct NewAlert<'a> {
    org_id: Uuid,
    customer_id: Uuid,
    scope: &'a str,
    measure: &'a str,
    window_kind: &'static str,
    first_day: NaiveDate,
    percent: Decimal,
    raised_at: DateTime<Utc>,
}

/// Raises alert levels (never lowers them), noting they were raised at `now`; rows must
/// have distinct keys.
pub fn raise_alerts(
    conn: &mut PgConnection,
    org: OrgId,
    alerts: &[AlertRow],
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    if alerts.is_empty() {
        return Ok(());
    }
    let rows: Vec<NewAlert> = alerts
        .iter()
        .map(|a| NewAlert {
            org_id: org.uuid(),
            customer_id: a.customer.uuid(),
            scope: &a.key.scope,
            measure: a.key.measure.as_str(),
            window_kind: a.key.kind.as_str(),
            first_day: a.key.first_day,
            percent: a.percent,
            raised_at: now,
        })
        .collect();
    diesel::insert_into(usage_alerts::table)
        .values(&rows)
        .on_conflict((
            usage_alerts::org_id,
            usage_alerts::customer_id,
            usage_alerts::scope,
            usage_alerts::measure,
            usage_alerts::window_kind,
            usage_alerts::first_day,
        ))
        .do_update()
        .set((
            usage_alerts::percent
                .eq(diesel::dsl::sql::<Numeric>("GREATEST(usage_alerts.percent, EXCLUDED.percent)")),
            usage_alerts::raised_at.eq(diesel::dsl::sql::<Nullable<Timestamptz>>("EXCLUDED.raised_at")),
        ))
        .execute(conn)?;
    Ok(())
}

/// A limit warning raised in a window, with when it was last raised (unknown for
/// those raised before that was kept).
#[derive(Debug)]
pub struct RaisedAlert {
    pub alert: AlertRow,
    pub raised_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = usage_alerts, check_for_backend(diesel::pg::Pg))]
struct RaisedRow {
    scope: String,
    measure: String,
    window_kind: String,
    first_day: NaiveDate,
    percent: Decimal,
    raised_at: Option<DateTime<Utc>>,
}

/// The key of a stored alert; a measure or window kind this build does not know is an
/// error, never taken for another.
fn alert_key(scope: String, measure: &str, kind: &str, first_day: NaiveDate) -> Result<AlertKey, DbError> {
    Ok(AlertKey {
        scope,
        measure: stored("alert measure", measure, Measure::parse)?,
        kind: window_kind(kind)?,
        first_day,
    })
}

/// A customer's limit warnings raised in the windows of `keys`.
pub fn raised_alerts(
    conn: &mut PgConnection,
    org: OrgId,
    customer: CustomerId,
    keys: &[(WindowKind, NaiveDate)],
) -> Result<Vec<RaisedAlert>, DbError> {
    let mut out = Vec::new();
    for (kind, day) in keys {
        let rows: Vec<RaisedRow> = usage_alerts::table
            .filter(usage_alerts::org_id.eq(org.uuid()))
            .filter(usage_alerts::customer_id.eq(customer.uuid()))
            .filter(usage_alerts::window_kind.eq(kind.as_str()))
            .filter(usage_alerts::first_day.eq(day))
            .order((usage_alerts::scope, usage_alerts::measure))
            .select(RaisedRow::as_select())
            .load(conn)?;
        for r in rows {
            let key = alert_key(r.scope, &r.measure, &r.window_kind, r.first_day)?;
            let alert = AlertRow { customer, key, percent: r.percent };
            out.push(RaisedAlert { alert, raised_at: r.raised_at });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_alert_of_an_unknown_measure_is_an_error_not_another_measure() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let known = alert_key("customer".into(), "rated_amount", "MONTH", day).unwrap();
        assert_eq!((known.measure, known.kind), (Measure::RatedAmount, WindowKind::Month));
        assert!(matches!(alert_key("customer".into(), "bytes", "MONTH", day), Err(DbError::Other(_))));
    }
}
