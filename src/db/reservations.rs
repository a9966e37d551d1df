//! Reservation rows and the extensions kept for their replays.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text, Timestamptz, Uuid as SqlUuid};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::DbError;
use super::prepared::{BindNext, prepared};
use super::schema::{reservation_extensions, usage_reservations};
use crate::domain::ids::{CustomerId, OrgId, ProductId, ReservationId};
use crate::domain::reservation::{Amounts, Reservation, State};

#[derive(Queryable, QueryableByName, Selectable, Insertable, Debug)]
#[diesel(table_name = usage_reservations, check_for_backend(diesel::pg::Pg))]
struct ReservationRow {
    org_id: Uuid,
    id: Uuid,
    request_id: String,
    customer_id: Uuid,
    product_id: Uuid,
    credit_type: String,
    group_values: serde_json::Value,
    contract_id: Option<String>,
    requested_quantity: Decimal,
    requested_amount: Decimal,
    granted_quantity: Decimal,
    granted_amount: Decimal,
    state: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    settled_at: Option<DateTime<Utc>>,
    event_id: Option<String>,
}

impl ReservationRow {
    fn of(org: OrgId, r: &Reservation) -> Result<Self, DbError> {
        Ok(Self {
            org_id: org.uuid(),
            id: r.id.uuid(),
            request_id: r.request_id.clone(),
            customer_id: r.customer.uuid(),
            product_id: r.product.uuid(),
            credit_type: r.credit_type.clone(),
            group_values: serde_json::to_value(&r.group_values)
                .map_err(|e| DbError::Other(format!("group values: {e}")))?,
            contract_id: r.contract_id.clone(),
            requested_quantity: r.requested.quantity,
            requested_amount: r.requested.amount,
            granted_quantity: r.granted.quantity,
            granted_amount: r.granted.amount,
            state: r.state.as_str().to_owned(),
            created_at: r.created_at,
            expires_at: r.expires_at,
            settled_at: r.settled_at,
            event_id: r.event_id.clone(),
        })
    }
}

impl TryFrom<ReservationRow> for Reservation {
    type Error = DbError;
    fn try_from(r: ReservationRow) -> Result<Self, DbError> {
        let state = State::parse(&r.state)
            .ok_or_else(|| DbError::Other(format!("unknown reservation state {:?}", r.state)))?;
        let group_values: BTreeMap<String, String> = serde_json::from_value(r.group_values)
            .map_err(|e| DbError::Other(format!("reservation group values: {e}")))?;
        Ok(Self {
            id: ReservationId(r.id),
            request_id: r.request_id,
            customer: CustomerId(r.customer_id),
            product: ProductId(r.product_id),
            credit_type: r.credit_type,
            group_values,
            contract_id: r.contract_id,
            requested: Amounts { quantity: r.requested_quantity, amount: r.requested_amount },
            granted: Amounts { quantity: r.granted_quantity, amount: r.granted_amount },
            state,
            created_at: r.created_at,
            expires_at: r.expires_at,
            settled_at: r.settled_at,
            event_id: r.event_id,
        })
    }
}

fn reservations(rows: Vec<ReservationRow>) -> Result<Vec<Reservation>, DbError> {
    rows.into_iter().map(Reservation::try_from).collect()
}

/// A stored request: what it was for and the first answer, packed by the app.
pub struct StoredRequest<T> {
    pub subject: T,
    pub fingerprint: Vec<u8>,
    pub answer: Vec<u8>,
}

/// Inserts a new reservation with its request's fingerprint and packed answer.
pub fn insert(
    conn: &mut PgConnection,
    org: OrgId,
    r: &Reservation,
    fingerprint: &[u8],
    answer: &[u8],
) -> Result<(), DbError> {
    diesel::insert_into(usage_reservations::table)
        .values((
            ReservationRow::of(org, r)?,
            usage_reservations::fingerprint.eq(fingerprint),
            usage_reservations::answer.eq(answer),
        ))
        .execute(conn)?;
    Ok(())
}

/// Writes a reservation's grant, expiry and state.
pub fn update(conn: &mut PgConnection, org: OrgId, r: &Reservation) -> Result<(), DbError> {
    diesel::update(usage_reservations::table.find((org.uuid(), r.id.uuid())))
        .set((
            usage_reservations::requested_quantity.eq(r.requested.quantity),
            usage_reservations::requested_amount.eq(r.requested.amount),
            usage_reservations::granted_quantity.eq(r.granted.quantity),
            usage_reservations::granted_amount.eq(r.granted.amount),
            usage_reservations::state.eq(r.state.as_str()),
            usage_reservations::expires_at.eq(r.expires_at),
            usage_reservations::settled_at.eq(r.settled_at),
            usage_reservations::event_id.eq(&r.event_id),
        ))
        .execute(conn)?;
    Ok(())
}

/// One reservation; with `lock`, locked until the transaction ends.
pub fn get(
    conn: &mut PgConnection,
    org: OrgId,
    id: ReservationId,
    lock: bool,
) -> Result<Option<Reservation>, DbError> {
    let q = usage_reservations::table.find((org.uuid(), id.uuid())).select(ReservationRow::as_select());
    let row = if lock { q.for_update().first(conn).optional()? } else { q.first(conn).optional()? };
    row.map(Reservation::try_from).transpose()
}

/// The reservation created by `request_id`, with that request's fingerprint and answer.
pub fn by_request_id(
    conn: &mut PgConnection,
    org: OrgId,
    request_id: &str,
) -> Result<Option<StoredRequest<Reservation>>, DbError> {
    let row = usage_reservations::table
        .filter(usage_reservations::org_id.eq(org.uuid()))
        .filter(usage_reservations::request_id.eq(request_id))
        .select((ReservationRow::as_select(), usage_reservations::fingerprint, usage_reservations::answer))
        .first::<(ReservationRow, Vec<u8>, Vec<u8>)>(conn)
        .optional()?;
    row.map(|(r, fingerprint, answer)| Ok(StoredRequest { subject: r.try_into()?, fingerprint, answer }))
        .transpose()
}

/// The holds of customers `$2` of org `$1` in state `$3` (OPEN) at `$4`.
pub const OPEN_HOLDS: &str = include_str!("sql/reservations_open_holds.sql");

/// The reservations of `customers` holding something at `now`, in id order.
pub fn open_holds(
    conn: &mut PgConnection,
    org: OrgId,
    customers: &[CustomerId],
    now: DateTime<Utc>,
) -> Result<Vec<Reservation>, DbError> {
    let ids: Vec<Uuid> = customers.iter().map(|c| c.uuid()).collect();
    let rows: Vec<ReservationRow> = prepared(OPEN_HOLDS)
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Text, _>(State::Open.as_str())
        .bind::<Timestamptz, _>(now)
        .load(conn)?;
    reservations(rows)
}

/// A page of a customer's reservations (only those open at `open_at`, when given),
/// oldest first.
pub fn list(
    conn: &mut PgConnection,
    org: OrgId,
    customer: CustomerId,
    open_at: Option<DateTime<Utc>>,
    (after, limit): (Option<Uuid>, i64),
) -> Result<Vec<Reservation>, DbError> {
    let mut q = usage_reservations::table
        .filter(usage_reservations::org_id.eq(org.uuid()))
        .filter(usage_reservations::customer_id.eq(customer.uuid()))
        .into_boxed();
    if let Some(now) = open_at {
        q = q
            .filter(usage_reservations::state.eq(State::Open.as_str()))
            .filter(usage_reservations::expires_at.gt(now));
    }
    if let Some(a) = after {
        q = q.filter(usage_reservations::id.gt(a));
    }
    let rows = q.order(usage_reservations::id).limit(limit).select(ReservationRow::as_select()).load(conn)?;
    reservations(rows)
}

/// Open reservations (with their org) past their expiry at `now`, earliest first. Spans
/// organizations through the SECURITY DEFINER function, which returns only ids.
pub fn due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(OrgId, ReservationId)>, DbError> {
    let rows = prepared("SELECT org_id, id FROM billing_due_reservations($1, $2)")
        .bind::<Timestamptz, _>(now)
        .bind::<BigInt, _>(limit)
        .load::<super::OrgAndId>(conn)?;
    Ok(rows.into_iter().map(|r| (OrgId(r.org_id), ReservationId(r.id))).collect())
}

/// Marks those of `ids` still open and past their expiry at `now` as expired (at their
/// expiry); the customer of each it marked. A reservation settled meanwhile is left as
/// it is.
pub fn expire(
    conn: &mut PgConnection,
    org: OrgId,
    ids: &[ReservationId],
    now: DateTime<Utc>,
) -> Result<Vec<CustomerId>, DbError> {
    let ids: Vec<Uuid> = ids.iter().map(|i| i.uuid()).collect();
    Ok(diesel::update(
        usage_reservations::table
            .filter(usage_reservations::org_id.eq(org.uuid()))
            .filter(usage_reservations::id.eq_any(ids))
            .filter(usage_reservations::state.eq(State::Open.as_str()))
            .filter(usage_reservations::expires_at.le(now)),
    )
    .set((
        usage_reservations::state.eq(State::Expired.as_str()),
        usage_reservations::settled_at.eq(usage_reservations::expires_at.nullable()),
    ))
    .returning(usage_reservations::customer_id)
    .get_results::<Uuid>(conn)?
    .into_iter()
    .map(CustomerId)
    .collect())
}

/// Keeps an extension's request for its replay.
pub fn insert_extension(
    conn: &mut PgConnection,
    org: OrgId,
    request_id: &str,
    reservation: ReservationId,
    (fingerprint, answer): (&[u8], &[u8]),
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::insert_into(reservation_extensions::table)
        .values((
            reservation_extensions::org_id.eq(org.uuid()),
            reservation_extensions::request_id.eq(request_id),
            reservation_extensions::reservation_id.eq(reservation.uuid()),
            reservation_extensions::fingerprint.eq(fingerprint),
            reservation_extensions::answer.eq(answer),
            reservation_extensions::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The extension made by `request_id`: the reservation it extended, its fingerprint and
/// first answer.
pub fn extension(
    conn: &mut PgConnection,
    org: OrgId,
    request_id: &str,
) -> Result<Option<StoredRequest<ReservationId>>, DbError> {
    let row = reservation_extensions::table
        .find((org.uuid(), request_id))
        .select((
            reservation_extensions::reservation_id,
            reservation_extensions::fingerprint,
            reservation_extensions::answer,
        ))
        .first::<(Uuid, Vec<u8>, Vec<u8>)>(conn)
        .optional()?;
    Ok(row.map(|(id, fingerprint, answer)| StoredRequest { subject: ReservationId(id), fingerprint, answer }))
}
