//! Commitment, edit, closed period and compensation rows, every query scoped by org
//! (but for finding the evaluator's work).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::DbError;
use super::error::stored;
use super::prepared::{BindNext, prepared};
use super::schema::{
    commitment_compensations, commitment_edits, commitment_periods, commitments, usage_events,
};
use crate::domain::authorship::Authorship;
use crate::domain::commitment::document::Operation;
use crate::domain::commitment::periods::PeriodKey;
use crate::domain::commitment::{Commitment, CommitmentStatus, Measure, Scope, Terms};
use crate::domain::ids::{ApiKeyId, CommitmentId, CustomerId, OrgId, ProductId};

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = commitments, treat_none_as_null = true)]
struct CommitmentRow {
    org_id: Uuid,
    id: Uuid,
    customer_id: Uuid,
    subscription_id: Option<Uuid>,
    promotion_id: Option<Uuid>,
    device_id: Option<Uuid>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    terms: serde_json::Value,
    status: String,
    successor_id: Option<Uuid>,
    ended_at: Option<DateTime<Utc>>,
    next_check_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
    // The trigger `written_by` has the last word on both.
    created_by: Option<Uuid>,
    updated_by: Option<Uuid>,
}

impl CommitmentRow {
    fn of(org: OrgId, c: &Commitment, next_check_at: Option<DateTime<Utc>>) -> Result<Self, DbError> {
        Ok(Self {
            org_id: org.uuid(),
            id: c.id.uuid(),
            customer_id: c.customer.uuid(),
            subscription_id: c.terms.subscription_id,
            promotion_id: c.terms.promotion_id,
            device_id: c.terms.device_id,
            starts_at: c.terms.time_range.start_time,
            ends_at: c.terms.time_range.end_time,
            terms: serde_json::to_value(&c.terms)
                .map_err(|e| DbError::Other(format!("serializing terms: {e}")))?,
            status: c.status.as_str().to_owned(),
            successor_id: c.successor.map(|s| s.uuid()),
            ended_at: c.ended_at,
            next_check_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
            version: c.version,
            created_by: c.by.created_by.map(ApiKeyId::uuid),
            updated_by: c.by.updated_by.map(ApiKeyId::uuid),
        })
    }
}

impl TryFrom<CommitmentRow> for Commitment {
    type Error = DbError;
    fn try_from(r: CommitmentRow) -> Result<Self, DbError> {
        let terms: Terms =
            serde_json::from_value(r.terms).map_err(|e| DbError::Other(format!("stored terms: {e}")))?;
        Ok(Commitment {
            id: CommitmentId(r.id),
            customer: CustomerId(r.customer_id),
            terms,
            status: CommitmentStatus::parse(&r.status)
                .ok_or_else(|| DbError::Other(format!("stored status {:?}", r.status)))?,
            successor: r.successor_id.map(CommitmentId),
            ended_at: r.ended_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
            by: Authorship::of(r.created_by, r.updated_by),
        })
    }
}

/// Inserts `c`; the evaluator will look at it at `next_check_at`.
pub fn insert(
    conn: &mut PgConnection,
    org: OrgId,
    c: &Commitment,
    next_check_at: Option<DateTime<Utc>>,
) -> Result<(), DbError> {
    diesel::insert_into(commitments::table)
        .values(CommitmentRow::of(org, c, next_check_at)?)
        .execute(conn)?;
    Ok(())
}

/// Writes every field of `c`.
pub fn update(
    conn: &mut PgConnection,
    org: OrgId,
    c: &Commitment,
    next_check_at: Option<DateTime<Utc>>,
) -> Result<(), DbError> {
    diesel::update(commitments::table.find((org.uuid(), c.id.uuid())))
        .set(CommitmentRow::of(org, c, next_check_at)?)
        .execute(conn)?;
    Ok(())
}

pub fn get(
    conn: &mut PgConnection,
    org: OrgId,
    id: CommitmentId,
    lock: bool,
) -> Result<Option<Commitment>, DbError> {
    let q = commitments::table.find((org.uuid(), id.uuid())).select(CommitmentRow::as_select());
    let row = if lock { q.for_update().first(conn).optional()? } else { q.first(conn).optional()? };
    row.map(Commitment::try_from).transpose()
}

/// When the evaluator should next look at the commitment.
pub fn next_check(
    conn: &mut PgConnection,
    org: OrgId,
    id: CommitmentId,
) -> Result<Option<DateTime<Utc>>, DbError> {
    Ok(commitments::table
        .find((org.uuid(), id.uuid()))
        .select(commitments::next_check_at)
        .first(conn)
        .optional()?
        .flatten())
}

/// Filters of a commitment listing; `None` does not filter.
#[derive(Clone, Debug, Default)]
pub struct CommitmentFilter {
    pub customer: Option<CustomerId>,
    pub subscription: Option<Uuid>,
    pub device: Option<Uuid>,
    pub promotion: Option<Uuid>,
    pub status: Option<CommitmentStatus>,
}

pub fn list(
    conn: &mut PgConnection,
    org: OrgId,
    f: &CommitmentFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Commitment>, DbError> {
    let mut q = commitments::table.filter(commitments::org_id.eq(org.uuid())).into_boxed();
    if let Some(after) = after {
        q = q.filter(commitments::id.gt(after));
    }
    if let Some(c) = f.customer {
        q = q.filter(commitments::customer_id.eq(c.uuid()));
    }
    if let Some(s) = f.subscription {
        q = q.filter(commitments::subscription_id.eq(s));
    }
    if let Some(d) = f.device {
        q = q.filter(commitments::device_id.eq(d));
    }
    if let Some(p) = f.promotion {
        q = q.filter(commitments::promotion_id.eq(p));
    }
    if let Some(s) = f.status {
        q = q.filter(commitments::status.eq(s.as_str()));
    }
    q.order(commitments::id)
        .limit(limit)
        .select(CommitmentRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Commitment::try_from)
        .collect()
}

/// Commitments (of every org) with something for the evaluator by `now`.
pub fn due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(OrgId, CommitmentId)>, DbError> {
    // Spans organizations: through the SECURITY DEFINER function, which returns only ids.
    let rows = prepared("SELECT org_id, id FROM billing_due_commitments($1, $2)")
        .bind::<diesel::sql_types::Timestamptz, _>(now)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .load::<super::OrgAndId>(conn)?;
    Ok(rows.into_iter().map(|r| (OrgId(r.org_id), CommitmentId(r.id))).collect())
}

/// One applied patch.
#[derive(Clone, Debug, PartialEq)]
pub struct Edit {
    pub id: Uuid,
    pub commitment: CommitmentId,
    pub edited_by: ApiKeyId,
    pub edited_at: DateTime<Utc>,
    pub operations: Vec<Operation>,
}

pub fn insert_edit(conn: &mut PgConnection, org: OrgId, e: &Edit) -> Result<(), DbError> {
    let ops = serde_json::to_value(&e.operations)
        .map_err(|err| DbError::Other(format!("serializing operations: {err}")))?;
    diesel::insert_into(commitment_edits::table)
        .values((
            commitment_edits::org_id.eq(org.uuid()),
            commitment_edits::id.eq(e.id),
            commitment_edits::commitment_id.eq(e.commitment.uuid()),
            commitment_edits::edited_by.eq(e.edited_by.uuid()),
            commitment_edits::edited_at.eq(e.edited_at),
            commitment_edits::operations.eq(ops),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn list_edits(
    conn: &mut PgConnection,
    org: OrgId,
    id: CommitmentId,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Edit>, DbError> {
    let mut q = commitment_edits::table
        .filter(commitment_edits::org_id.eq(org.uuid()))
        .filter(commitment_edits::commitment_id.eq(id.uuid()))
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(commitment_edits::id.gt(after));
    }
    let rows: Vec<(Uuid, Uuid, DateTime<Utc>, serde_json::Value)> = q
        .order(commitment_edits::id)
        .limit(limit)
        .select((
            commitment_edits::id,
            commitment_edits::edited_by,
            commitment_edits::edited_at,
            commitment_edits::operations,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(edit, by, at, ops)| {
            let operations =
                serde_json::from_value(ops).map_err(|e| DbError::Other(format!("stored operations: {e}")))?;
            Ok(Edit { id: edit, commitment: id, edited_by: ApiKeyId(by), edited_at: at, operations })
        })
        .collect()
}

/// A closed period, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedPeriod {
    pub scope: Scope,
    pub measure: Measure,
    pub index: i32,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub required: Decimal,
    pub measured: Decimal,
    pub shortfall: Decimal,
}

impl ClosedPeriod {
    pub fn key(&self) -> PeriodKey {
        (self.scope, self.measure, self.index, self.start)
    }
}

fn scope_of(s: &str) -> Result<Scope, DbError> {
    stored("obligation scope", s, Scope::parse)
}

fn measure_of(s: &str) -> Result<Measure, DbError> {
    stored("obligation measure", s, Measure::parse)
}

fn compensation_kind(s: &str) -> Result<&'static str, DbError> {
    stored("compensation kind", s, |k| ["EARLY_TERMINATION", "SHORTFALL"].into_iter().find(|x| *x == k))
}

pub fn closed_periods(
    conn: &mut PgConnection,
    org: OrgId,
    id: CommitmentId,
) -> Result<Vec<ClosedPeriod>, DbError> {
    type Row = (String, String, i32, DateTime<Utc>, DateTime<Utc>, Decimal, Decimal, Decimal);
    let rows: Vec<Row> = commitment_periods::table
        .filter(commitment_periods::org_id.eq(org.uuid()))
        .filter(commitment_periods::commitment_id.eq(id.uuid()))
        .select((
            commitment_periods::scope,
            commitment_periods::measure,
            commitment_periods::obligation_idx,
            commitment_periods::period_start,
            commitment_periods::period_end,
            commitment_periods::required,
            commitment_periods::measured,
            commitment_periods::shortfall,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(scope, measure, index, start, end, required, measured, shortfall)| {
            Ok(ClosedPeriod {
                scope: scope_of(&scope)?,
                measure: measure_of(&measure)?,
                index,
                start,
                end,
                required,
                measured,
                shortfall,
            })
        })
        .collect()
}

/// The keys of the commitment's closed periods.
pub fn closed_keys(
    conn: &mut PgConnection,
    org: OrgId,
    id: CommitmentId,
) -> Result<HashSet<PeriodKey>, DbError> {
    Ok(closed_periods(conn, org, id)?.iter().map(ClosedPeriod::key).collect())
}

pub fn insert_period(
    conn: &mut PgConnection,
    org: OrgId,
    id: CommitmentId,
    p: &ClosedPeriod,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::insert_into(commitment_periods::table)
        .values((
            commitment_periods::org_id.eq(org.uuid()),
            commitment_periods::commitment_id.eq(id.uuid()),
            commitment_periods::scope.eq(p.scope.as_str()),
            commitment_periods::measure.eq(p.measure.as_str()),
            commitment_periods::obligation_idx.eq(p.index),
            commitment_periods::period_start.eq(p.start),
            commitment_periods::period_end.eq(p.end),
            commitment_periods::required.eq(p.required),
            commitment_periods::measured.eq(p.measured),
            commitment_periods::shortfall.eq(p.shortfall),
            commitment_periods::closed_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// A compensation owed under a commitment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compensation {
    pub id: Uuid,
    pub commitment: CommitmentId,
    /// "SHORTFALL" or "EARLY_TERMINATION".
    pub kind: &'static str,
    pub period: Option<(Scope, Measure, DateTime<Utc>, DateTime<Utc>)>,
    pub amount: Decimal,
    pub credit_type: String,
    pub created_at: DateTime<Utc>,
}

pub fn insert_compensation(conn: &mut PgConnection, org: OrgId, c: &Compensation) -> Result<(), DbError> {
    diesel::insert_into(commitment_compensations::table)
        .values((
            commitment_compensations::org_id.eq(org.uuid()),
            commitment_compensations::id.eq(c.id),
            commitment_compensations::commitment_id.eq(c.commitment.uuid()),
            commitment_compensations::kind.eq(c.kind),
            commitment_compensations::scope.eq(c.period.map(|p| p.0.as_str())),
            commitment_compensations::measure.eq(c.period.map(|p| p.1.as_str())),
            commitment_compensations::period_start.eq(c.period.map(|p| p.2)),
            commitment_compensations::period_end.eq(c.period.map(|p| p.3)),
            commitment_compensations::amount.eq(c.amount),
            commitment_compensations::credit_type.eq(&c.credit_type),
            commitment_compensations::created_at.eq(c.created_at),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn list_compensations(
    conn: &mut PgConnection,
    org: OrgId,
    id: CommitmentId,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Compensation>, DbError> {
    type Row = (
        Uuid,
        String,
        Option<String>,
        Option<String>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Decimal,
        String,
        DateTime<Utc>,
    );
    let mut q = commitment_compensations::table
        .filter(commitment_compensations::org_id.eq(org.uuid()))
        .filter(commitment_compensations::commitment_id.eq(id.uuid()))
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(commitment_compensations::id.gt(after));
    }
    let rows: Vec<Row> = q
        .order(commitment_compensations::id)
        .limit(limit)
        .select((
            commitment_compensations::id,
            commitment_compensations::kind,
            commitment_compensations::scope,
            commitment_compensations::measure,
            commitment_compensations::period_start,
            commitment_compensations::period_end,
            commitment_compensations::amount,
            commitment_compensations::credit_type,
            commitment_compensations::created_at,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(cid, kind, scope, measure, start, end, amount, credit_type, created_at)| {
            Ok(Compensation {
                id: cid,
                commitment: id,
                kind: compensation_kind(&kind)?,
                period: match (scope, measure, start, end) {
                    (Some(s), Some(m), Some(a), Some(b)) => Some((scope_of(&s)?, measure_of(&m)?, a, b)),
                    _ => None,
                },
                amount,
                credit_type,
                created_at,
            })
        })
        .collect()
}

/// What should be measured for an obligation period.
#[derive(Clone, Debug)]
pub struct MeasureQuery<'a> {
    pub customer: CustomerId,
    pub measure: Measure,
    /// Account scope: only usage recorded with this contract id.
    pub contract: Option<&'a str>,
    pub product: Option<ProductId>,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// Recorded (not blocked) spend or usage of a customer in `[from, until)`.
pub fn measure(conn: &mut PgConnection, org: OrgId, q: &MeasureQuery<'_>) -> Result<Decimal, DbError> {
    let mut query = usage_events::table
        .filter(usage_events::org_id.eq(org.uuid()))
        .filter(usage_events::customer_id.eq(q.customer.uuid()))
        .filter(usage_events::decision.ne("BLOCKED"))
        .filter(usage_events::voided_at.is_null())
        .filter(usage_events::occurred_at.ge(q.from))
        .filter(usage_events::occurred_at.lt(q.until))
        .into_boxed();
    if let Some(contract) = q.contract {
        query = query.filter(usage_events::contract_id.eq(contract.to_owned()));
    }
    if let Some(p) = q.product {
        query = query.filter(usage_events::product_id.eq(p.uuid()));
    }
    let total: Option<Decimal> = match q.measure {
        Measure::Spend => query.select(diesel::dsl::sum(usage_events::amount)).first(conn)?,
        Measure::Usage => query.select(diesel::dsl::sum(usage_events::quantity)).first(conn)?,
    };
    Ok(total.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_read_back_as_theirs_and_unknown_ones_are_errors() {
        assert_eq!(scope_of("account").unwrap(), Scope::Account);
        assert_eq!(measure_of("usage").unwrap(), Measure::Usage);
        assert_eq!(compensation_kind("SHORTFALL").unwrap(), "SHORTFALL");
        assert!(scope_of("Account").is_err(), "no silent default to customer");
        assert!(measure_of("quantity").is_err(), "no silent default to spend");
        assert!(compensation_kind("REFUND").is_err(), "no silent default to shortfall");
    }
}
