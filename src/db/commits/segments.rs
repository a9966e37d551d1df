//! Access segment rows: the balances usage draws from, read and locked in the fixed
//! (commit, index) order, changed, closed, and found when due.

use super::*;

/// A commit's segments in index order, locked when `lock`.
pub fn segments(
    conn: &mut PgConnection,
    org: OrgId,
    commit: CommitId,
    lock: bool,
) -> Result<Vec<Segment>, DbError> {
    let q = commit_segments::table
        .filter(commit_segments::org_id.eq(org.uuid()))
        .filter(commit_segments::commit_id.eq(commit.uuid()))
        .order(commit_segments::idx)
        .select(SegmentRow::as_select());
    segments_of(if lock { q.for_update().load(conn)? } else { q.load(conn)? })
}

#[derive(QueryableByName)]
struct OpenSegmentRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    customer_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    commit_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    idx: i32,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    starting_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    ending_before: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    amount: Decimal,
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    remaining: Decimal,
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Timestamptz>)]
    later_at: Vec<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Numeric>)]
    later_amount: Vec<Decimal>,
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    priority: Decimal,
    #[diesel(sql_type = diesel::sql_types::Text)]
    credit_type: String,
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Uuid>)]
    applicable_product_ids: Vec<Uuid>,
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
    applicable_product_tags: Vec<String>,
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
    applicable_contract_ids: Vec<String>,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    specifiers: serde_json::Value,
}

/// What a commit says about drawing from its segments.
pub struct DrawTerms {
    pub priority: Decimal,
    pub credit_type: String,
    pub applicability: Applicability,
}

/// An open segment with its customer, its commit's terms, and the ledger entries
/// effective after the instant asked for.
pub struct OpenSegment {
    pub customer: CustomerId,
    pub segment: Segment,
    pub terms: DrawTerms,
    pub later: LaterEntries,
}

/// The open segments of `customers` that can take usage at some instant in
/// `[from, until]` and end after `ends_after` (`from`, or later for segments past their
/// grace), each with its commit's terms and its ledger entries effective after `from`;
/// locked when `lock`, in (commit, index) order: the fixed order every transaction takes
/// segment locks in.
pub fn open_segments(
    conn: &mut PgConnection,
    org: OrgId,
    customers: &[CustomerId],
    (from, ends_after, until): (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>),
    lock: bool,
) -> Result<Vec<OpenSegment>, DbError> {
    use diesel::sql_types::{Array, Timestamptz, Uuid as SqlUuid};
    const READ: &str = include_str!("../sql/commits_open_segments.sql");
    const LOCK: &str = concat!(include_str!("../sql/commits_open_segments.sql"), " FOR UPDATE OF s");
    let ids: Vec<Uuid> = customers.iter().map(|c| c.uuid()).collect();
    let rows: Vec<OpenSegmentRow> = prepared(if lock { LOCK } else { READ })
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Timestamptz, _>(ends_after)
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(until)
        .bind::<Timestamptz, _>(from)
        .load(conn)?;
    rows.into_iter()
        .map(|r| {
            let segment = Segment {
                commit_id: CommitId(r.commit_id),
                idx: r.idx,
                starting_at: r.starting_at,
                ending_before: r.ending_before,
                amount: r.amount,
                remaining: r.remaining,
                closed: None,
            };
            let applicability = applicability_of(
                r.applicable_product_ids,
                r.applicable_product_tags,
                r.applicable_contract_ids,
                r.specifiers,
            )?;
            Ok(OpenSegment {
                customer: CustomerId(r.customer_id),
                segment,
                terms: DrawTerms { priority: r.priority, credit_type: r.credit_type, applicability },
                later: r.later_at.into_iter().zip(r.later_amount).collect(),
            })
        })
        .collect()
}

/// Sets a segment's live balance.
pub fn set_remaining(
    conn: &mut PgConnection,
    org: OrgId,
    commit: CommitId,
    idx: i32,
    remaining: Decimal,
) -> Result<(), DbError> {
    diesel::update(commit_segments::table.find((org.uuid(), commit.uuid(), idx)))
        .set(commit_segments::remaining.eq(remaining))
        .execute(conn)?;
    Ok(())
}

/// Closes a segment: it takes no more drawdowns and holds nothing.
pub fn close_segment(
    conn: &mut PgConnection,
    org: OrgId,
    commit: CommitId,
    idx: i32,
    at: DateTime<Utc>,
    kind: CloseKind,
) -> Result<(), DbError> {
    diesel::update(commit_segments::table.find((org.uuid(), commit.uuid(), idx)))
        .set((
            commit_segments::remaining.eq(Decimal::ZERO),
            commit_segments::closed_at.eq(at),
            commit_segments::close_kind.eq(kind.as_str()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Moves a segment's end.
pub fn set_segment_end(
    conn: &mut PgConnection,
    org: OrgId,
    commit: CommitId,
    idx: i32,
    ending_before: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::update(commit_segments::table.find((org.uuid(), commit.uuid(), idx)))
        .set(commit_segments::ending_before.eq(ending_before))
        .execute(conn)?;
    Ok(())
}

/// Customers (with their org) owning segments that ended by `now` and are not closed.
/// Spans organizations: it only finds work, which is then done in each org's transaction.
pub fn customers_with_due_segments(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(OrgId, CustomerId)>, DbError> {
    // Spans organizations: through the SECURITY DEFINER function, which returns only ids.
    let rows = prepared("SELECT org_id, customer_id AS id FROM billing_due_segments($1, $2)")
        .bind::<diesel::sql_types::Timestamptz, _>(now)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .load::<crate::db::OrgAndId>(conn)?;
    Ok(rows.into_iter().map(|r| (OrgId(r.org_id), CustomerId(r.id))).collect())
}

/// The customer's segments that ended by `now` and are not closed, locked, in the fixed
/// (commit, index) order.
pub fn due_segments_for_update(
    conn: &mut PgConnection,
    org: OrgId,
    customer: CustomerId,
    now: DateTime<Utc>,
) -> Result<Vec<Segment>, DbError> {
    let rows = commit_segments::table
        .filter(commit_segments::org_id.eq(org.uuid()))
        .filter(commit_segments::customer_id.eq(customer.uuid()))
        .filter(commit_segments::closed_at.is_null())
        .filter(commit_segments::ending_before.le(now))
        .order((commit_segments::commit_id, commit_segments::idx))
        .select(SegmentRow::as_select())
        .for_update()
        .load(conn)?;
    segments_of(rows)
}
