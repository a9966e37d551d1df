//! ApplyDrawdown records: the answer given for each idempotency key.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::DbError;
use super::schema::drawdown_requests;
use crate::domain::ids::{CustomerId, OrgId};

#[derive(Insertable)]
#[diesel(table_name = drawdown_requests)]
struct NewDrawdownRequest<'a> {
    org_id: Uuid,
    idempotency_key: &'a str,
    id: Uuid,
    customer_id: Uuid,
    request_hash: &'a [u8],
    result: serde_json::Value,
    created_at: DateTime<Utc>,
}

/// A drawdown applied under an idempotency key, with the answer `A` it got.
pub struct AppliedDrawdown<'a, A> {
    pub key: &'a str,
    pub id: Uuid,
    pub customer: CustomerId,
    /// The request's fingerprint: a repeat of the key with another request is refused.
    pub fingerprint: &'a [u8],
    pub answer: &'a A,
    pub at: DateTime<Utc>,
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

pub fn insert<A: serde::Serialize>(
    conn: &mut PgConnection,
    org: OrgId,
    applied: &AppliedDrawdown<'_, A>,
) -> Result<(), DbError> {
    let result = serde_json::to_value(applied.answer)
        .map_err(|e| DbError::Other(format!("serializing a drawdown's answer: {e}")))?;
    let row = NewDrawdownRequest {
        org_id: org.uuid(),
        idempotency_key: applied.key,
        id: applied.id,
        customer_id: applied.customer.uuid(),
        request_hash: applied.fingerprint,
        result,
        created_at: applied.at,
    };
    diesel::insert_into(drawdown_requests::table).values(&row).execute(conn)?;
    Ok(())
}
