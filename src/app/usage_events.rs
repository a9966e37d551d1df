//! Recorded usage events as resources: voiding one (everything it moved is reversed in
//! one transaction, with who and why) and listing a customer's.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::usage::{UsageOutcome, stored_outcome};
use super::{App, AppError, Caller, clock};
use crate::db::credit::PromotionDrawdown;
use crate::db::usage::TotalRow;
use crate::db::usage_events::{EventFilter, EventRecord};
use crate::db::{self, Conn};
use crate::domain::ids::{ApiKeyId, AppliedPromotionId, CommitId, CustomerId, OrgId, ProductId};
use crate::domain::limits::Decision;
use crate::domain::page::{Page, PageRequest};
use crate::domain::void::{SegmentDraw, Voided, reversal_entries};
use crate::domain::windows::{WindowKind, window_of};

const RESOURCE: &str = "usage event";

/// A recorded event and the answer it got.
#[derive(Clone, Debug)]
pub struct RecordedEvent {
    pub id: Uuid,
    pub event_id: String,
    pub customer: CustomerId,
    pub product: ProductId,
    pub quantity: Decimal,
    pub amount: Decimal,
    pub credit_type: String,
    pub occurred_at: DateTime<Utc>,
    pub contract_id: Option<String>,
    pub decision: Decision,
    pub recorded_at: DateTime<Utc>,
    pub outcome: UsageOutcome,
    /// When, by which key and why it was voided.
    pub voided: Option<(DateTime<Utc>, Option<ApiKeyId>, String)>,
}

fn recorded(r: EventRecord) -> Result<RecordedEvent, AppError> {
    let outcome = stored_outcome(&r.answer())?;
    Ok(RecordedEvent {
        id: r.id,
        customer: r.customer(),
        product: r.product(),
        event_id: r.event_id,
        quantity: r.quantity,
        amount: r.amount,
        credit_type: r.credit_type,
        occurred_at: r.occurred_at,
        contract_id: r.contract_id,
        decision: outcome.decision,
        recorded_at: r.recorded_at,
        voided: r.voided_at.map(|at| (at, r.voided_by.map(ApiKeyId), r.void_reason.unwrap_or_default())),
        outcome,
    })
}

/// Gives back what the event drew from commit segments; refuses when one has closed.
fn reverse_commit_draws(
    conn: &mut Conn,
    org: OrgId,
    e: &EventRecord,
    outcome: &UsageOutcome,
    (now, grace, reason): (DateTime<Utc>, crate::domain::commit::timeline::LateUsageGrace, &str),
) -> Result<(), AppError> {
    let draws: Vec<SegmentDraw> = outcome
        .draws
        .iter()
        .filter_map(|d| {
            d.commit_id.map(|c| SegmentDraw {
                commit_id: CommitId(c),
                segment_idx: d.segment_idx,
                amount: d.amount,
            })
        })
        .collect();
    let mut commits: Vec<CommitId> = draws.iter().map(|d| d.commit_id).collect();
    commits.sort();
    commits.dedup();
    let mut segments = Vec::new();
    for c in commits {
        segments.extend(db::commits::segments(conn, org, c, true)?);
    }
    let voided = Voided { id: e.id, product: e.product(), occurred_at: e.occurred_at, reason };
    let entries = reversal_entries(voided, &draws, &segments, (now, grace), Uuid::now_v7).map_err(|c| {
        AppError::FailedPrecondition {
            reason: "SEGMENT_CLOSED",
            message: format!(
                "the event drew from segment {} of commit {}, which has closed; its history is final",
                c.segment_idx, c.commit_id
            ),
        }
    })?;
    let mut given_back: HashMap<(CommitId, i32), Decimal> = HashMap::new();
    for entry in &entries {
        *given_back.entry((entry.commit_id, entry.segment_idx)).or_default() += entry.amount;
    }
    let remaining: Vec<(CommitId, i32, Decimal)> = segments
        .iter()
        .filter_map(|s| given_back.get(&(s.commit_id, s.idx)).map(|g| (s.commit_id, s.idx, s.remaining + g)))
        .collect();
    // The balances and the entries that explain them, in one statement.
    let rows = db::writes::Rows { remaining: &remaining, ledger: &entries, ..Default::default() };
    Ok(db::writes::write(conn, org, &rows)?)
}

/// Gives back what the event drew from credit promotions.
fn reverse_promotion_draws(
    conn: &mut Conn,
    org: OrgId,
    e: &EventRecord,
    outcome: &UsageOutcome,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let applied: Vec<AppliedPromotionId> =
        outcome.draws.iter().filter_map(|d| d.applied_promotion_id.map(AppliedPromotionId)).collect();
    if applied.is_empty() {
        return Ok(());
    }
    let reversals: Vec<PromotionDrawdown> =
        db::credit::drawdowns_of_source(conn, org, &applied, e.occurred_at, e.id)?
            .into_iter()
            .map(|d| PromotionDrawdown {
                id: Uuid::now_v7(),
                amount: -d.amount,
                reverses: Some(d.id),
                created_at: now,
                ..d
            })
            .collect();
    let uses: Vec<_> = reversals.iter().map(|r| (r.applied, r.cycle_start, -r.amount)).collect();
    db::credit::insert_drawdowns(conn, org, &reversals)?;
    db::credit::give_back_uses(conn, org, &uses)?;
    Ok(())
}

/// Takes the event out of its daily and monthly totals.
fn reverse_totals(conn: &mut Conn, org: OrgId, e: &EventRecord, tz: chrono_tz::Tz) -> Result<(), AppError> {
    let rows: Vec<TotalRow> = [WindowKind::Day, WindowKind::Month]
        .into_iter()
        .map(|kind| TotalRow {
            customer: e.customer(),
            product: e.product(),
            kind,
            first_day: window_of(kind, tz, e.occurred_at).first_day,
            credit_type: e.credit_type.clone(),
            amount: -e.amount,
            quantity: -e.quantity,
        })
        .collect();
    db::usage::add_totals(conn, org, &rows)?;
    Ok(())
}

impl App {
    /// Voids the event recorded as `event_id`; answers it and whether it was voided
    /// already (then nothing changes).
    pub async fn void_usage_event(
        &self,
        caller: Caller,
        event_id: String,
        reason: String,
    ) -> Result<(RecordedEvent, bool), AppError> {
        let org = caller.org;
        let grace = self.policy().late_usage_grace;
        self.db()
            .transaction(org, move |conn| {
                let missing = || AppError::not_found(RESOURCE, &event_id);
                let found = db::usage_events::get(conn, org, &event_id, false)?.ok_or_else(missing)?;
                // The customer's lock first, as every writer of its balances takes it.
                let customer = db::customers::get_locked(conn, org, found.customer())?.ok_or_else(missing)?;
                let e = db::usage_events::get(conn, org, &event_id, true)?.ok_or_else(missing)?;
                if e.voided_at.is_some() {
                    return Ok((recorded(e)?, true));
                }
                let outcome = stored_outcome(&e.answer())?;
                let now = clock::now();
                if outcome.decision != Decision::Blocked {
                    reverse_commit_draws(conn, org, &e, &outcome, (now, grace, &reason))?;
                    reverse_promotion_draws(conn, org, &e, &outcome, now)?;
                    reverse_totals(conn, org, &e, customer.time_zone)?;
                }
                db::usage_events::mark_voided(conn, org, &event_id, (now, caller.key, &reason))?;
                super::balance_alerts::settle_alerts(conn, org, &[customer.id], (now, grace))?;
                let voided = db::usage_events::get(conn, org, &event_id, false)?.ok_or_else(missing)?;
                Ok((recorded(voided)?, false))
            })
            .await
    }

    /// One page of the customer's recorded events, in recording order.
    pub async fn list_usage_events(
        &self,
        org: OrgId,
        filter: EventFilter,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<RecordedEvent>, AppError> {
        self.page_by_id(
            org,
            page,
            &filters_key,
            |e: &RecordedEvent| e.id.to_string(),
            move |conn, after, limit| {
                if let Some(c) = filter.customer
                    && !db::customers::exists(conn, org, c)?
                {
                    return Err(AppError::not_found("customer", c));
                }
                db::usage_events::list(conn, org, &filter, after, limit)?.into_iter().map(recorded).collect()
            },
        )
        .await
    }
}
