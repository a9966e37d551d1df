//! The violation feed table: appending with a per-org gapless sequence.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Uuid as SqlUuid};
use uuid::Uuid;

use super::DbError;
use super::schema::violations;
use crate::domain::ids::OrgId;
use crate::domain::violation::{NewViolation, Violation};

/// The LISTEN/NOTIFY channel that wakes feed readers. The payload is always empty: the
/// table is the truth, and no tenant data travels on the channel.
pub const NOTIFY_CHANNEL: &str = "billing_violations";

#[derive(Insertable)]
#[diesel(table_name = violations)]
struct NewViolationRow {
    org_id: Uuid,
    seq: i64,
    id: Uuid,
    kind: &'static str,
    customer_id: Option<Uuid>,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    detail: serde_json::Value,
}

#[derive(QueryableByName)]
struct LastSeq {
    #[diesel(sql_type = BigInt)]
    last_seq: i64,
}

/// Appends `new` to the org's feed and returns them with their sequence numbers.
///
/// The sequence row stays locked until the transaction ends, so feeds commit in
/// sequence order: call this last in a transaction, to hold the lock briefly.
pub fn append(
    conn: &mut PgConnection,
    org: OrgId,
    new: &[NewViolation],
    now: DateTime<Utc>,
) -> Result<Vec<Violation>, DbError> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let n = new.len() as i64;
    let last: LastSeq = diesel::sql_query(
        "INSERT INTO violation_sequences (org_id, last_seq) VALUES ($1, $2) \
         ON CONFLICT (org_id) DO UPDATE SET last_seq = violation_sequences.last_seq + EXCLUDED.last_seq \
         RETURNING last_seq",
    )
    .bind::<SqlUuid, _>(org.uuid())
    .bind::<BigInt, _>(n)
    .get_result(conn)?;
    let first = last.last_seq - n + 1;
    let mut rows = Vec::with_capacity(new.len());
    let mut out = Vec::with_capacity(new.len());
    for (i, v) in new.iter().enumerate() {
        let seq = first + i as i64;
        rows.push(NewViolationRow {
            org_id: org.uuid(),
            seq,
            id: v.id,
            kind: v.kind.as_str(),
            customer_id: v.customer_id.map(|c| c.uuid()),
            occurred_at: v.occurred_at,
            recorded_at: now,
            detail: serde_json::to_value(&v.detail)
                .map_err(|e| DbError::Other(format!("serializing violation: {e}")))?,
        });
        out.push(Violation { seq, recorded_at: now, violation: v.clone() });
    }
    for chunk in rows.chunks(4000) {
        diesel::insert_into(violations::table).values(chunk).execute(conn)?;
    }
    diesel::sql_query(format!("NOTIFY {NOTIFY_CHANNEL}")).execute(conn)?;
    Ok(out)
}
