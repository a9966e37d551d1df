//! Closing access segments that have ended: what a PREPAID segment did not use expires,
//! what a POSTPAID segment did not use is trued up, both effective at the segment's end.
//! A segment closes once its late-usage grace has passed (never earlier, so late usage
//! dated inside it is decided by its timestamp alone). Run by the background job, and by
//! reads that must show a complete ledger; closing twice is impossible (the segment row
//! is locked and re-checked).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{App, AppError, clock};
use crate::db::{self, Conn};
use crate::domain::commit::CommitType;
use crate::domain::commit::balance::{CloseKind, LedgerEntry, Segment};
use crate::domain::commit::timeline::LateUsageGrace;
use crate::domain::ids::{CommitId, CustomerId, OrgId};
use crate::domain::violation::{NewViolation, ViolationDetail, ViolationKind};

/// The entry that writes off what is left of `s` when it closes as `kind` at `at`.
pub fn write_off(
    s: &Segment,
    kind: CloseKind,
    at: DateTime<Utc>,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> LedgerEntry {
    LedgerEntry {
        id: Uuid::now_v7(),
        commit_id: s.commit_id,
        segment_idx: s.idx,
        kind: kind.ledger_kind(),
        amount: -s.remaining,
        effective_at: at,
        source_id: None,
        product_id: None,
        reason,
        created_at: now,
    }
}

/// The violation telling that a POSTPAID segment ended under-used.
fn true_up_violation(customer: CustomerId, s: &Segment) -> NewViolation {
    NewViolation::new(
        uuid::Uuid::now_v7(),
        ViolationKind::PostpaidTrueUp,
        Some(customer),
        s.ending_before,
        ViolationDetail {
            message: format!(
                "POSTPAID commit {} segment {} ended with {} of {} unused; it is trued up",
                s.commit_id,
                s.idx,
                s.remaining.normalize(),
                s.amount.normalize()
            ),
            commit_id: Some(s.commit_id),
            used: Some(s.amount - s.remaining),
            limit: Some(s.amount),
            amount: Some(s.remaining),
            ..Default::default()
        },
    )
}

/// Closes the customer's segments whose late-usage grace has passed at `now`; the
/// caller holds the customer's lock. Returns how many were closed.
pub fn close_due_for_customer(
    conn: &mut Conn,
    org: OrgId,
    customer: CustomerId,
    (now, grace): (DateTime<Utc>, LateUsageGrace),
) -> Result<usize, AppError> {
    let due = db::commits::due_segments_for_update(conn, org, customer, grace.closed_through(now))?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut ids: Vec<CommitId> = due.iter().map(|s| s.commit_id).collect();
    ids.dedup();
    let commits = db::commits::get_many(conn, org, &ids)?;
    let mut entries = Vec::with_capacity(due.len());
    let mut violations = Vec::new();
    for s in &due {
        let commit_type =
            commits.iter().find(|c| c.id == s.commit_id).map_or(CommitType::Prepaid, |c| c.commit_type);
        let kind = CloseKind::at_end_of(commit_type);
        entries.push(write_off(s, kind, s.ending_before, None, now));
        db::commits::close_segment(conn, org, s.commit_id, s.idx, s.ending_before, kind)?;
        if kind == CloseKind::TruedUp && s.remaining > Decimal::ZERO {
            violations.push(true_up_violation(customer, s));
        }
    }
    db::commit_ledger::insert(conn, org, &entries)?;
    db::violations::append(conn, org, &violations, now)?;
    Ok(due.len())
}

impl App {
    /// Closes every segment, of every organization, whose late-usage grace has passed.
    /// Safe to run on several instances at once. Returns how many segments were closed.
    pub async fn close_due_segments(&self) -> Result<usize, AppError> {
        let now = clock::now();
        let grace = self.policy().late_usage_grace;
        let through = grace.closed_through(now);
        let work =
            self.db().run(move |conn| db::commits::customers_with_due_segments(conn, through, 500)).await?;
        let mut closed = 0;
        for (org, customer) in work {
            closed += self
                .db()
                .transaction(org, move |conn| {
                    if !db::customers::lock(conn, org, customer)? {
                        return Ok(0);
                    }
                    // Before the closing writes its violations (see `crossed_alerts`); a
                    // segment past its grace was not drawable now either way.
                    super::balance_alerts::settle_alerts(conn, org, &[customer], (now, grace))?;
                    close_due_for_customer(conn, org, customer, (now, grace))
                })
                .await?;
        }
        Ok(closed)
    }
}
