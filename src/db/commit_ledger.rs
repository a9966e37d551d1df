//! Commit ledger rows: every signed change of a segment's balance.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Numeric, Text, Timestamptz, Uuid as SqlUuid};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::DbError;
use super::error::stored;
use super::prepared::{BindNext, prepared};
use super::schema::{commit_ledger, commit_ledger_requests};
use crate::domain::commit::balance::{KindTotal, LedgerEntry, LedgerKind};
use crate::domain::commit::timeline::LaterEntries;
use crate::domain::ids::{CommitId, OrgId, ProductId};

#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = commit_ledger)]
struct LedgerRow {
    id: Uuid,
    commit_id: Uuid,
    segment_idx: i32,
    kind: String,
    amount: Decimal,
    effective_at: DateTime<Utc>,
    source_id: Option<Uuid>,
    product_id: Option<Uuid>,
    reason: Option<String>,
    created_at: DateTime<Utc>,
}

impl TryFrom<LedgerRow> for LedgerEntry {
    type Error = DbError;
    fn try_from(r: LedgerRow) -> Result<Self, DbError> {
        Ok(LedgerEntry {
            id: r.id,
            commit_id: CommitId(r.commit_id),
            segment_idx: r.segment_idx,
            kind: LedgerKind::parse(&r.kind)
                .ok_or_else(|| DbError::Other(format!("stored ledger kind {:?}", r.kind)))?,
            amount: r.amount,
            effective_at: r.effective_at,
            source_id: r.source_id,
            product_id: r.product_id.map(ProductId),
            reason: r.reason,
            created_at: r.created_at,
        })
    }
}

/// The idempotency key of an entry and a fingerprint of the request that wrote it.
#[derive(Clone, Copy, Debug)]
pub struct RequestKey<'a> {
    pub id: &'a str,
    pub hash: &'a [u8],
}

/// Appends entries (plain ones, without a request key).
pub fn insert(conn: &mut PgConnection, org: OrgId, entries: &[LedgerEntry]) -> Result<(), DbError> {
    insert_with_key(conn, org, entries, None)
}

/// Appends entries, tagging them with a request key when given.
pub fn insert_with_key(
    conn: &mut PgConnection,
    org: OrgId,
    entries: &[LedgerEntry],
    key: Option<RequestKey<'_>>,
) -> Result<(), DbError> {
    super::writes::write(
        conn,
        org,
        &super::writes::Rows { ledger: entries, ledger_key: key, ..Default::default() },
    )
}

/// The entry written for `request_id`, with its request fingerprint.
pub fn find_by_request(
    conn: &mut PgConnection,
    org: OrgId,
    request_id: &str,
) -> Result<Option<(LedgerEntry, Vec<u8>)>, DbError> {
    let Some((entry_id, effective_at)) = commit_ledger_requests::table
        .find((org.uuid(), request_id))
        .select((commit_ledger_requests::entry_id, commit_ledger_requests::effective_at))
        .first::<(Uuid, DateTime<Utc>)>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let row: Option<(LedgerRow, Option<Vec<u8>>)> = commit_ledger::table
        .find((org.uuid(), entry_id, effective_at))
        .select((LedgerRow::as_select(), commit_ledger::request_hash))
        .first(conn)
        .optional()?;
    row.map(|(r, h)| Ok((LedgerEntry::try_from(r)?, h.unwrap_or_default()))).transpose()
}

/// Per segment and kind, the sum of the commit's entries effective by `at`.
pub fn totals_up_to(
    conn: &mut PgConnection,
    org: OrgId,
    commit: CommitId,
    at: DateTime<Utc>,
) -> Result<Vec<KindTotal>, DbError> {
    use commit_ledger::dsl as l;
    let rows: Vec<(i32, String, Option<Decimal>)> = l::commit_ledger
        .filter(l::org_id.eq(org.uuid()))
        .filter(l::commit_id.eq(commit.uuid()))
        .filter(l::effective_at.le(at))
        .group_by((l::segment_idx, l::kind))
        .select((l::segment_idx, l::kind, diesel::dsl::sum(l::amount)))
        .order_by((l::segment_idx, l::kind))
        .load(conn)?;
    rows.into_iter()
        .map(|(segment_idx, kind, amount)| {
            let kind = stored("ledger kind", &kind, LedgerKind::parse)?;
            Ok(KindTotal { segment_idx, kind, amount: amount.unwrap_or_default() })
        })
        .collect()
}

#[derive(QueryableByName)]
struct PagedRow {
    #[diesel(embed)]
    entry: LedgerRow,
    #[diesel(sql_type = Numeric)]
    running_balance: Decimal,
}

/// Up to `limit` entries of the commit after `after` in (effective time, id) order, each
/// with the commit's balance right after it (counting every entry, whatever `kind`).
pub fn page(
    conn: &mut PgConnection,
    org: OrgId,
    commit: CommitId,
    kind: Option<LedgerKind>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<(LedgerEntry, Decimal)>, DbError> {
    let rows: Vec<PagedRow> = prepared(include_str!("sql/commit_ledger_page.sql"))
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<SqlUuid, _>(commit.uuid())
        .bind::<Nullable<Text>, _>(kind.map(LedgerKind::as_str))
        .bind::<Nullable<Timestamptz>, _>(after.map(|a| a.0))
        .bind::<Nullable<SqlUuid>, _>(after.map(|a| a.1))
        .bind::<BigInt, _>(limit)
        .load(conn)?;
    rows.into_iter().map(|r| Ok((LedgerEntry::try_from(r.entry)?, r.running_balance))).collect()
}

#[derive(QueryableByName)]
struct LaterRow {
    #[diesel(sql_type = SqlUuid)]
    commit_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    segment_idx: i32,
    #[diesel(sql_type = Timestamptz)]
    effective_at: DateTime<Utc>,
    #[diesel(sql_type = Numeric)]
    amount: Decimal,
}

/// The entries of the given segments effective after `after`, per segment in
/// effective-time (then id) order: what a drawdown decision at or after `after` needs.
pub fn effective_after(
    conn: &mut PgConnection,
    org: OrgId,
    segments: &[(CommitId, i32)],
    after: DateTime<Utc>,
) -> Result<HashMap<(CommitId, i32), LaterEntries>, DbError> {
    use diesel::sql_types::{Array, Int4};
    let mut out: HashMap<(CommitId, i32), LaterEntries> = HashMap::new();
    if segments.is_empty() {
        return Ok(out);
    }
    let commit_ids: Vec<Uuid> = segments.iter().map(|s| s.0.uuid()).collect();
    let idxs: Vec<i32> = segments.iter().map(|s| s.1).collect();
    let rows: Vec<LaterRow> = prepared(include_str!("sql/commit_ledger_effective_after.sql"))
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<Array<SqlUuid>, _>(commit_ids)
        .bind::<Array<Int4>, _>(idxs)
        .bind::<Timestamptz, _>(after)
        .load(conn)?;
    for r in rows {
        out.entry((CommitId(r.commit_id), r.segment_idx)).or_default().push((r.effective_at, r.amount));
    }
    Ok(out)
}

/// The latest instant a drawdown on the segment takes effect, if any was recorded.
pub fn latest_drawdown(
    conn: &mut PgConnection,
    org: OrgId,
    commit: CommitId,
    segment_idx: i32,
) -> Result<Option<DateTime<Utc>>, DbError> {
    Ok(commit_ledger::table
        .filter(commit_ledger::org_id.eq(org.uuid()))
        .filter(commit_ledger::commit_id.eq(commit.uuid()))
        .filter(commit_ledger::segment_idx.eq(segment_idx))
        .filter(commit_ledger::kind.eq(LedgerKind::Drawdown.as_str()))
        .select(diesel::dsl::max(commit_ledger::effective_at))
        .first::<Option<DateTime<Utc>>>(conn)?)
}

/// The commit's balance right after `entry`: the sum of its entries up to it in
/// (effective time, id) order, as the ledger's running balance shows it.
pub fn running_balance(conn: &mut PgConnection, org: OrgId, entry: &LedgerEntry) -> Result<Decimal, DbError> {
    #[derive(QueryableByName)]
    struct Sum {
        #[diesel(sql_type = Nullable<Numeric>)]
        total: Option<Decimal>,
    }
    let row: Sum = prepared(include_str!("sql/commit_ledger_running_balance.sql"))
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<SqlUuid, _>(entry.commit_id.uuid())
        .bind::<Timestamptz, _>(entry.effective_at)
        .bind::<SqlUuid, _>(entry.id)
        .get_result(conn)?;
    Ok(row.total.unwrap_or_default())
}
