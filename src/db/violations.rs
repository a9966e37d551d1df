//! The violation feed table: appending with a per-org gapless sequence.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Uuid as SqlUuid};
use uuid::Uuid;

use super::DbError;
use super::prepared::{BindNext, prepared};
use super::schema::{violation_sequences, violations};
use crate::domain::ids::{CustomerId, OrgId};
use crate::domain::violation::{
    FeedPosition, NewViolation, Violation, ViolationDetail, ViolationFilter, ViolationKind,
};

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

/// A violation's detail as stored: a JSON object of the fields set (those unset are read
/// back as their defaults).
fn detail_json(detail: &ViolationDetail) -> Result<serde_json::Value, DbError> {
    let mut json =
        serde_json::to_value(detail).map_err(|e| DbError::Other(format!("serializing violation: {e}")))?;
    if let serde_json::Value::Object(fields) = &mut json {
        fields.retain(|_, v| !v.is_null());
    }
    Ok(json)
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
    // Raw, not Diesel's upsert: Diesel never keeps a `DO UPDATE` statement prepared
    // (`DoUpdate` marks itself unsafe to cache), so it was parsed and planned again in
    // every usage transaction that raised a violation (128 callers: 15 to 20% fewer
    // events/s, docs/performance.md).
    let last: LastSeq = prepared(include_str!("sql/violations_take_sequence.sql"))
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
            detail: detail_json(&v.detail)?,
        });
        out.push(Violation { seq, recorded_at: now, violation: v.clone() });
    }
    for chunk in rows.chunks(4000) {
        diesel::insert_into(violations::table).values(chunk).execute(conn)?;
    }
    diesel::sql_query(format!("NOTIFY {NOTIFY_CHANNEL}")).execute(conn)?;
    Ok(out)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = violations)]
struct ViolationRow {
    seq: i64,
    id: Uuid,
    kind: String,
    customer_id: Option<Uuid>,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    detail: serde_json::Value,
}

impl TryFrom<ViolationRow> for Violation {
    type Error = DbError;
    fn try_from(r: ViolationRow) -> Result<Self, DbError> {
        let kind = ViolationKind::parse(&r.kind)
            .ok_or_else(|| DbError::Other(format!("stored violation kind {:?}", r.kind)))?;
        let detail: ViolationDetail = serde_json::from_value(r.detail)
            .map_err(|e| DbError::Other(format!("stored violation detail: {e}")))?;
        Ok(Violation {
            seq: r.seq,
            recorded_at: r.recorded_at,
            violation: NewViolation {
                id: r.id,
                kind,
                customer_id: r.customer_id.map(CustomerId),
                occurred_at: r.occurred_at,
                detail,
            },
        })
    }
}

/// Up to `limit` violations with `after < seq <= up_to` matching `filter`, in order.
pub fn page(
    conn: &mut PgConnection,
    org: OrgId,
    filter: &ViolationFilter,
    after: i64,
    up_to: Option<i64>,
    limit: i64,
) -> Result<Vec<Violation>, DbError> {
    let mut q = violations::table
        .filter(violations::org_id.eq(org.uuid()))
        .filter(violations::seq.gt(after))
        .into_boxed();
    if let Some(up_to) = up_to {
        q = q.filter(violations::seq.le(up_to));
    }
    if let Some(customer) = filter.customer_id {
        q = q.filter(violations::customer_id.eq(customer.uuid()));
    }
    if !filter.kinds.is_empty() {
        q = q.filter(violations::kind.eq_any(filter.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>()));
    }
    q.order(violations::seq)
        .limit(limit)
        .select(ViolationRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Violation::try_from)
        .collect()
}

/// Where the org's feed stands.
pub fn position(conn: &mut PgConnection, org: OrgId) -> Result<FeedPosition, DbError> {
    let row: Option<(i64, i64)> = violation_sequences::table
        .find(org.uuid())
        .select((violation_sequences::last_seq, violation_sequences::retained_from))
        .first(conn)
        .optional()?;
    Ok(row.map_or_else(FeedPosition::default, |(last_seq, retained_from)| FeedPosition {
        last_seq,
        retained_from,
    }))
}

#[derive(QueryableByName)]
struct PositionRow {
    #[diesel(sql_type = SqlUuid)]
    org_id: Uuid,
    #[diesel(sql_type = BigInt)]
    last_seq: i64,
    #[diesel(sql_type = BigInt)]
    retained_from: i64,
}

/// Feed positions of `orgs` (of every org with a feed when `None`). Spans organizations,
/// so it reads through `billing_feed_positions()`, which returns only counters.
fn feed_positions(conn: &mut PgConnection, orgs: Option<&[OrgId]>) -> Result<Vec<PositionRow>, DbError> {
    let ids: Option<Vec<Uuid>> = orgs.map(|o| o.iter().map(|o| o.uuid()).collect());
    Ok(prepared("SELECT * FROM billing_feed_positions($1)")
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Array<SqlUuid>>, _>(ids)
        .load::<PositionRow>(conn)?)
}

/// Where each of `orgs`' feeds stands, for the feed fetcher serving all their streams.
pub fn positions(conn: &mut PgConnection, orgs: &[OrgId]) -> Result<Vec<(OrgId, FeedPosition)>, DbError> {
    Ok(feed_positions(conn, Some(orgs))?
        .into_iter()
        .map(|r| (OrgId(r.org_id), FeedPosition { last_seq: r.last_seq, retained_from: r.retained_from }))
        .collect())
}

/// Organizations that have a feed, for the pruning job.
pub fn orgs_with_feeds(conn: &mut PgConnection) -> Result<Vec<OrgId>, DbError> {
    Ok(feed_positions(conn, None)?.into_iter().map(|r| OrgId(r.org_id)).collect())
}

/// Moves the org's retained position past the violations recorded before `cutoff`
/// (always a prefix of the feed): readers no longer see them, and cursors before them
/// are OUT_OF_RANGE. The rows themselves go with their month (see [`drop_expired`]).
/// Returns how many left the feed.
pub fn prune(conn: &mut PgConnection, org: OrgId, cutoff: DateTime<Utc>) -> Result<usize, DbError> {
    // Lock the sequence row: writers wait, so the prefix below stays a prefix.
    let Some((last, retained_from)) = violation_sequences::table
        .find(org.uuid())
        .select((violation_sequences::last_seq, violation_sequences::retained_from))
        .for_update()
        .first::<(i64, i64)>(conn)
        .optional()?
    else {
        return Ok(0);
    };
    let keep_from: Option<i64> = violations::table
        .filter(violations::org_id.eq(org.uuid()))
        .filter(violations::seq.ge(retained_from))
        .filter(violations::recorded_at.ge(cutoff))
        .select(diesel::dsl::min(violations::seq))
        .first(conn)?;
    let keep_from = keep_from.unwrap_or(last + 1).max(retained_from);
    if keep_from == retained_from {
        return Ok(0);
    }
    // The sequence is gapless: what leaves is every number from retained_from on.
    let leaving = keep_from - retained_from;
    diesel::update(violation_sequences::table.find(org.uuid()))
        .set(violation_sequences::retained_from.eq(keep_from))
        .execute(conn)?;
    Ok(usize::try_from(leaving).unwrap_or(0))
}

/// Drops the feed's months that ended by `cutoff` and that no org's feed retains any
/// more (run [`prune`] for every org first), and deletes such rows from the default
/// partition; returns the months dropped. Spans organizations.
pub fn drop_expired(conn: &mut PgConnection, cutoff: DateTime<Utc>) -> Result<Vec<String>, DbError> {
    Ok(prepared("SELECT billing_drop_expired_violations($1) AS name")
        .bind::<diesel::sql_types::Timestamptz, _>(cutoff)
        .load::<super::partitions::Partition>(conn)?
        .into_iter()
        .map(|p| p.name)
        .collect())
}
