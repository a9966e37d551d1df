//! ApplyDrawdown records: the answer given for each idempotency key.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::DbError;
use super::schema::drawdown_requests;
use crate::domain::ids::OrgId;

#[derive(Insertable)]
#[diesel(table_name = drawdown_requests)]
pub struct NewDrawdownRequest<'a> {
    pub org_id: Uuid,
    pub idempotency_key: &'a str,
    pub id: Uuid,
    pub customer_id: Uuid,
    pub request_hash: &'a [u8],
    pub result: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A stored request: its fingerprint and the answer it got.
#[derive(Queryable, Selectable, Debug)]
#[diesel(table_name = drawdown_requests)]
pub struct DrawdownRequest {
    pub id: Uuid,
    pub request_hash: Vec<u8>,
    pub result: serde_json::Value,
}

pub fn find(conn: &mut PgConnection, org: OrgId, key: &str) -> Result<Option<DrawdownRequest>, DbError> {
    Ok(drawdown_requests::table
        .find((org.uuid(), key))
        .select(DrawdownRequest::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert(conn: &mut PgConnection, request: &NewDrawdownRequest<'_>) -> Result<(), DbError> {
    diesel::insert_into(drawdown_requests::table).values(request).execute(conn)?;
    Ok(())
}
