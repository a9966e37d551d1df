//! Request ids (AIP-155) of the calls that create or move something, every query scoped
//! by org: what each call's payload was (its fingerprint) and what it made.

use diesel::prelude::*;

use super::schema::request_ids;
use super::{Conn, DbError};
use crate::domain::ids::OrgId;

/// The constraint a concurrent call with the same id trips.
const KEY: &str = "request_ids_pkey";

/// Holds `request_id` of `operation` for the rest of the transaction: a concurrent call
/// with the same id waits here until this one commits or rolls back, then finds what it
/// made (so racing retries make one thing, whatever else they would collide on).
pub fn claim(conn: &mut Conn, org: OrgId, operation: &str, request_id: &str) -> Result<(), DbError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<diesel::sql_types::Text, _>(format!("request_ids/{}/{operation}/{request_id}", org.uuid()))
        .execute(conn)?;
    Ok(())
}

/// The fingerprint and resource of the call `operation` made with `request_id`.
pub fn find(
    conn: &mut Conn,
    org: OrgId,
    operation: &str,
    request_id: &str,
) -> Result<Option<(Vec<u8>, String)>, DbError> {
    Ok(request_ids::table
        .filter(request_ids::org_id.eq(org.uuid()))
        .filter(request_ids::operation.eq(operation))
        .filter(request_ids::request_id.eq(request_id))
        .select((request_ids::fingerprint, request_ids::resource))
        .first(conn)
        .optional()?)
}

/// Remembers what the call made. Should a call with the same id have committed
/// meanwhile (`claim` keeps that from happening), the conflict runs the transaction
/// again, and it finds that call's.
pub fn insert(
    conn: &mut Conn,
    org: OrgId,
    operation: &str,
    request_id: &str,
    fingerprint: &[u8],
    resource: &str,
) -> Result<(), DbError> {
    diesel::insert_into(request_ids::table)
        .values((
            request_ids::org_id.eq(org.uuid()),
            request_ids::operation.eq(operation),
            request_ids::request_id.eq(request_id),
            request_ids::fingerprint.eq(fingerprint),
            request_ids::resource.eq(resource),
        ))
        .execute(conn)
        .map_err(|e| DbError::from(e).retry_if_taken(KEY))?;
    Ok(())
}
