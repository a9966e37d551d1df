//! One idempotency convention (AIP-155) for the calls that create or move something:
//! the caller may send a `request_id`; a retry with the same id and the same request
//! gets what the first call made, a reuse with another request is ALREADY_EXISTS naming
//! it. The id is remembered in the call's own transaction, so a call either ran and is
//! remembered or did not run; and a call holds its id (a transaction-scoped advisory
//! lock) while it looks and works, so two calls racing with one id make one thing: the
//! second waits for the first and finds what it made.

use super::AppError;
use crate::db::{self, Conn, DbError};
use crate::domain::ids::OrgId;

/// A caller's id for one request and the fingerprint of the rest of the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId {
    pub id: String,
    pub fingerprint: [u8; 32],
}

/// An operation that takes request ids: an id is used once per operation.
#[derive(Clone, Copy, Debug)]
pub struct Operation {
    /// The RPC, e.g. "CreateCustomer".
    pub name: &'static str,
    /// What it makes, as errors name it.
    pub resource: &'static str,
}

/// Within the call's transaction: what an earlier call with the same id made, read by
/// `read` from its id, when it asked the same (`None`: no id, or no such call).
pub fn replay<T>(
    conn: &mut Conn,
    org: OrgId,
    op: Operation,
    request: Option<&RequestId>,
    read: impl FnOnce(&mut Conn, &str) -> Result<T, AppError>,
) -> Result<Option<T>, AppError> {
    let Some(request) = request else { return Ok(None) };
    db::request_ids::claim(conn, org, op.name, &request.id)?;
    match db::request_ids::find(conn, org, op.name, &request.id)? {
        None => Ok(None),
        Some((fingerprint, made)) if fingerprint == request.fingerprint => read(conn, &made).map(Some),
        Some((_, made)) => Err(AppError::already_exists(op.resource, "request_id", made)),
    }
}

/// `replay` of an operation that made one resource with an id, read by `get`.
pub fn replay_made<I: Copy + std::fmt::Display, T>(
    conn: &mut Conn,
    org: OrgId,
    op: Operation,
    request: Option<&RequestId>,
    id: fn(uuid::Uuid) -> I,
    get: fn(&mut Conn, OrgId, I) -> Result<Option<T>, DbError>,
) -> Result<Option<T>, AppError> {
    replay(conn, org, op, request, |conn, made| {
        let made = id(made_id(made)?);
        get(conn, org, made)?.ok_or_else(|| AppError::not_found(op.resource, made))
    })
}

/// Remembers, in the call's transaction, that it made `made`.
pub fn remember(
    conn: &mut Conn,
    org: OrgId,
    op: Operation,
    request: Option<&RequestId>,
    made: impl ToString,
) -> Result<(), AppError> {
    if let Some(request) = request {
        db::request_ids::insert(conn, org, op.name, &request.id, &request.fingerprint, &made.to_string())?;
    }
    Ok(())
}

/// The id a remembered call made, as a UUID (every resource but credit types has one).
pub fn made_id(made: &str) -> Result<uuid::Uuid, AppError> {
    made.parse().map_err(|_| DbError::Other(format!("a request id names {made:?}, not an id")).into())
}
