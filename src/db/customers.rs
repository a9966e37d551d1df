//! Customer rows and queries, every one scoped by org.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::DbError;
use super::schema::customers;
use crate::domain::authorship::Authorship;
use crate::domain::customer::{Customer, CustomerFilter};
use crate::domain::ids::{CustomerId, OrgId};

#[derive(Queryable, Selectable)]
#[diesel(table_name = customers)]
pub struct CustomerRow {
    pub id: Uuid,
    pub external_id: String,
    pub name: String,
    pub time_zone: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub updated_by: Option<Uuid>,
}

/// Written by every insert and update; `created_by` / `updated_by` are the trigger's.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = customers)]
pub struct NewCustomerRow<'a> {
    pub org_id: Uuid,
    pub id: Uuid,
    pub external_id: &'a str,
    pub name: &'a str,
    pub time_zone: &'a str,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl<'a> NewCustomerRow<'a> {
    fn of(org: OrgId, c: &'a Customer) -> Self {
        Self {
            org_id: org.uuid(),
            id: c.id.uuid(),
            external_id: &c.external_id,
            name: &c.name,
            time_zone: c.time_zone.name(),
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

impl TryFrom<CustomerRow> for Customer {
    type Error = DbError;
    fn try_from(r: CustomerRow) -> Result<Self, DbError> {
        let time_zone = parse_time_zone(&r.time_zone)?;
        Ok(Customer {
            id: CustomerId(r.id),
            external_id: r.external_id,
            name: r.name,
            time_zone,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
            by: Authorship::of(r.created_by, r.updated_by),
        })
    }
}

/// A stored time zone's name as a time zone.
pub(super) fn parse_time_zone(name: &str) -> Result<chrono_tz::Tz, DbError> {
    name.parse().map_err(|_| DbError::Other(format!("stored time zone {name:?} is unknown")))
}

pub fn insert(conn: &mut PgConnection, org: OrgId, c: &Customer) -> Result<(), DbError> {
    diesel::insert_into(customers::table).values(NewCustomerRow::of(org, c)).execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut PgConnection, org: OrgId, id: CustomerId) -> Result<Option<Customer>, DbError> {
    customers::table
        .find((org.uuid(), id.uuid()))
        .select(CustomerRow::as_select())
        .first(conn)
        .optional()?
        .map(Customer::try_from)
        .transpose()
}

/// Reads and locks the customer for the rest of the transaction.
pub fn get_for_update(
    conn: &mut PgConnection,
    org: OrgId,
    id: CustomerId,
) -> Result<Option<Customer>, DbError> {
    customers::table
        .find((org.uuid(), id.uuid()))
        .select(CustomerRow::as_select())
        .for_update()
        .first(conn)
        .optional()?
        .map(Customer::try_from)
        .transpose()
}

/// Writes every field of `c` (including its new version).
pub fn update(conn: &mut PgConnection, org: OrgId, c: &Customer) -> Result<(), DbError> {
    diesel::update(customers::table.find((org.uuid(), c.id.uuid())))
        .set(NewCustomerRow::of(org, c))
        .execute(conn)?;
    Ok(())
}

/// Deletes the customer; false when it did not exist.
pub fn delete(conn: &mut PgConnection, org: OrgId, id: CustomerId) -> Result<bool, DbError> {
    let n = diesel::delete(customers::table.find((org.uuid(), id.uuid()))).execute(conn)?;
    Ok(n > 0)
}

/// Up to `limit` customers after `after` in id order (creation order, ids being v7).
pub fn list(
    conn: &mut PgConnection,
    org: OrgId,
    filter: &CustomerFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Customer>, DbError> {
    let mut q = customers::table.filter(customers::org_id.eq(org.uuid())).into_boxed();
    if let Some(after) = after {
        q = q.filter(customers::id.gt(after));
    }
    if let Some(external_id) = &filter.external_id {
        q = q.filter(customers::external_id.eq(external_id.clone()));
    }
    if let Some(tz) = &filter.time_zone {
        q = q.filter(customers::time_zone.eq(tz.clone()));
    }
    q.order(customers::id)
        .limit(limit)
        .select(CustomerRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Customer::try_from)
        .collect()
}

/// Takes the customer's row lock (FOR NO KEY UPDATE, so inserts referencing the customer
/// are not blocked). Every transaction that changes a customer's balances or usage takes
/// it first: that serializes them per customer and fixes the lock order (customer, then
/// commits, then segments), so they cannot deadlock. False when there is no customer.
pub fn lock(conn: &mut PgConnection, org: OrgId, id: CustomerId) -> Result<bool, DbError> {
    let found: Option<Uuid> = customers::table
        .find((org.uuid(), id.uuid()))
        .select(customers::id)
        .for_no_key_update()
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// True when the customer exists.
pub fn exists(conn: &mut PgConnection, org: OrgId, id: CustomerId) -> Result<bool, DbError> {
    Ok(diesel::select(diesel::dsl::exists(customers::table.find((org.uuid(), id.uuid()))))
        .get_result(conn)?)
}

/// Reads the customer and locks it FOR NO KEY UPDATE, as every balance-changing
/// transaction locks its customers first (a usage transaction locks its batch's in
/// `db::usage_start`).
pub fn get_locked(conn: &mut PgConnection, org: OrgId, id: CustomerId) -> Result<Option<Customer>, DbError> {
    customers::table
        .find((org.uuid(), id.uuid()))
        .select(CustomerRow::as_select())
        .for_no_key_update()
        .first(conn)
        .optional()?
        .map(Customer::try_from)
        .transpose()
}

/// What a usage decision must read beyond a customer's own fields, kept on its row so
/// the statement that locks it tells (see the reservations migration and
/// `db::usage_start`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extras {
    /// No reservation of the customer holds anything from this instant on.
    pub holds_until: Option<DateTime<Utc>>,
    /// How many balance alerts it has.
    pub balance_alerts: i32,
    /// How many promotions were ever applied to it (removed ones included): none means
    /// there are no applied promotions to read.
    pub promotions_applied: i32,
    /// Moves with every write to its allowance limits (a trigger); 0: it never had any.
    /// What an instance caches of its limits is valid at this version only.
    pub limits_version: i64,
}

/// Notes that a reservation of the customer may hold until `until`.
pub fn note_hold(
    conn: &mut PgConnection,
    org: OrgId,
    id: CustomerId,
    until: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::update(customers::table.find((org.uuid(), id.uuid())))
        .set(
            customers::holds_until.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >("GREATEST(holds_until, ")
            .bind::<diesel::sql_types::Timestamptz, _>(until)
            .sql(")")),
        )
        .execute(conn)?;
    Ok(())
}

/// Adds `delta` to the customer's count of balance alerts.
pub fn count_alerts(conn: &mut PgConnection, org: OrgId, id: CustomerId, delta: i32) -> Result<(), DbError> {
    diesel::update(customers::table.find((org.uuid(), id.uuid())))
        .set(customers::balance_alerts.eq(customers::balance_alerts + delta))
        .execute(conn)?;
    Ok(())
}

/// Notes that a promotion was applied to the customer (see [`Extras::promotions_applied`]);
/// the caller holds the customer's lock.
pub fn note_promotion_applied(conn: &mut PgConnection, org: OrgId, id: CustomerId) -> Result<(), DbError> {
    diesel::update(customers::table.find((org.uuid(), id.uuid())))
        .set(customers::promotions_applied.eq(customers::promotions_applied + 1))
        .execute(conn)?;
    Ok(())
}

/// The ids of the customers with `external_ids`, by external id (unknown ones absent).
pub fn ids_by_external_ids(
    conn: &mut PgConnection,
    org: OrgId,
    external_ids: &[&str],
) -> Result<Vec<(String, CustomerId)>, DbError> {
    let rows: Vec<(String, Uuid)> = customers::table
        .filter(customers::org_id.eq(org.uuid()))
        .filter(customers::external_id.eq_any(external_ids))
        .select((customers::external_id, customers::id))
        .load(conn)?;
    Ok(rows.into_iter().map(|(e, id)| (e, CustomerId(id))).collect())
}

/// The id of the customer with `external_id`, if any.
pub fn id_by_external_id(
    conn: &mut PgConnection,
    org: OrgId,
    external_id: &str,
) -> Result<Option<Uuid>, DbError> {
    Ok(customers::table
        .filter(customers::org_id.eq(org.uuid()))
        .filter(customers::external_id.eq(external_id))
        .select(customers::id)
        .first(conn)
        .optional()?)
}
