//! The writes most transactions end with (usage totals, segment balances, ledger entries,
//! usage events), sent as one statement: on the usage path they were four round trips of
//! the fourteen a one-event transaction made (docs/performance.md). Callers that write
//! only some of them leave the rest empty; the single-purpose functions of `usage` and
//! `commit_ledger` are such callers, and this is the service's only writer of ledger
//! entries: every segment an entry is on moves its `ledger_last_at` in the same statement,
//! so the ledger's trigger, kept for other writers, skips the service's role.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bytea, Date, Int4, Nullable, Numeric, Text, Timestamptz, Uuid as SqlUuid};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::DbError;
use super::commit_ledger::RequestKey;
use super::prepared::{BindNext, prepared};
use super::usage::{EventToStore, TotalRow};
use crate::domain::commit::balance::LedgerEntry;
use crate::domain::ids::{CommitId, OrgId};

/// What one statement writes; every part may be empty.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rows<'a> {
    /// Added to the window totals (rows with distinct keys).
    pub totals: &'a [TotalRow],
    /// Segments' new remaining balances, by (commit, index).
    pub remaining: &'a [(CommitId, i32, Decimal)],
    /// Ledger entries appended, tagged with `ledger_key` when given.
    pub ledger: &'a [LedgerEntry],
    pub ledger_key: Option<RequestKey<'a>>,
    /// Decided usage events, with the time they are recorded at.
    pub events: Option<NewEvents<'a>>,
}

/// Usage events to insert, each with its dedupe key.
#[derive(Clone, Copy, Debug)]
pub struct NewEvents<'a> {
    pub rows: &'a [EventToStore<'a>],
    pub recorded_at: DateTime<Utc>,
}

impl Rows<'_> {
    fn is_empty(&self) -> bool {
        self.totals.is_empty()
            && self.remaining.is_empty()
            && self.ledger.is_empty()
            && self.events.is_none_or(|e| e.rows.is_empty())
    }
}

/// Writes `w` in one statement (`sql/writes_totals_balances_ledger_events.sql`); nothing when it is empty.
pub fn write(conn: &mut PgConnection, org: OrgId, w: &Rows<'_>) -> Result<(), DbError> {
    if w.is_empty() {
        return Ok(());
    }
    let t = w.totals;
    let l = w.ledger;
    let events = w.events.map_or(&[][..], |e| e.rows);
    let segments = segment_writes(w.remaining, l);
    prepared(include_str!("sql/writes_totals_balances_ledger_events.sql"))
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<Array<SqlUuid>, _>(t.iter().map(|d| d.customer.uuid()).collect::<Vec<Uuid>>())
        .bind::<Array<Text>, _>(t.iter().map(|d| d.kind.as_str()).collect::<Vec<&str>>())
        .bind::<Array<Date>, _>(t.iter().map(|d| d.first_day).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(t.iter().map(|d| d.product.uuid()).collect::<Vec<Uuid>>())
        .bind::<Array<Text>, _>(t.iter().map(|d| d.credit_type.as_str()).collect::<Vec<&str>>())
        .bind::<Array<Numeric>, _>(t.iter().map(|d| d.amount).collect::<Vec<Decimal>>())
        .bind::<Array<Numeric>, _>(t.iter().map(|d| d.quantity).collect::<Vec<Decimal>>())
        .bind::<Array<SqlUuid>, _>(segments.iter().map(|s| s.commit.uuid()).collect::<Vec<Uuid>>())
        .bind::<Array<Int4>, _>(segments.iter().map(|s| s.idx).collect::<Vec<i32>>())
        .bind::<Array<Nullable<Numeric>>, _>(segments.iter().map(|s| s.remaining).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(l.iter().map(|e| e.id).collect::<Vec<Uuid>>())
        .bind::<Array<SqlUuid>, _>(l.iter().map(|e| e.commit_id.uuid()).collect::<Vec<Uuid>>())
        .bind::<Array<Int4>, _>(l.iter().map(|e| e.segment_idx).collect::<Vec<i32>>())
        .bind::<Array<Text>, _>(l.iter().map(|e| e.kind.as_str()).collect::<Vec<&str>>())
        .bind::<Array<Numeric>, _>(l.iter().map(|e| e.amount).collect::<Vec<Decimal>>())
        .bind::<Array<Timestamptz>, _>(l.iter().map(|e| e.effective_at).collect::<Vec<_>>())
        .bind::<Array<Nullable<SqlUuid>>, _>(l.iter().map(|e| e.source_id).collect::<Vec<Option<Uuid>>>())
        .bind::<Array<Nullable<SqlUuid>>, _>(
            l.iter().map(|e| e.product_id.map(|p| p.uuid())).collect::<Vec<Option<Uuid>>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            l.iter().map(|e| e.reason.as_deref()).collect::<Vec<Option<&str>>>(),
        )
        .bind::<Array<Timestamptz>, _>(l.iter().map(|e| e.created_at).collect::<Vec<_>>())
        .bind::<Nullable<Text>, _>(w.ledger_key.map(|k| k.id))
        .bind::<Nullable<Bytea>, _>(w.ledger_key.map(|k| k.hash))
        .bind::<Array<Text>, _>(events.iter().map(|s| s.event.event_id.as_str()).collect::<Vec<&str>>())
        .bind::<Array<SqlUuid>, _>(events.iter().map(|s| s.id).collect::<Vec<Uuid>>())
        .bind::<Array<SqlUuid>, _>(events.iter().map(|s| s.event.customer_id.uuid()).collect::<Vec<Uuid>>())
        .bind::<Array<SqlUuid>, _>(events.iter().map(|s| s.product.uuid()).collect::<Vec<Uuid>>())
        .bind::<Array<Numeric>, _>(events.iter().map(|s| s.event.quantity).collect::<Vec<Decimal>>())
        .bind::<Array<Numeric>, _>(events.iter().map(|s| s.event.amount).collect::<Vec<Decimal>>())
        .bind::<Array<Text>, _>(events.iter().map(|s| s.event.credit_type.as_str()).collect::<Vec<&str>>())
        .bind::<Array<Timestamptz>, _>(events.iter().map(|s| s.event.timestamp).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(
            events.iter().map(|s| s.event.contract_id.as_deref()).collect::<Vec<Option<&str>>>(),
        )
        .bind::<Array<Text>, _>(events.iter().map(|s| s.decision.as_str()).collect::<Vec<&str>>())
        .bind::<Array<Bytea>, _>(events.iter().map(|s| &s.fingerprint[..]).collect::<Vec<&[u8]>>())
        .bind::<Array<Bytea>, _>(events.iter().map(|s| &s.outcome[..]).collect::<Vec<&[u8]>>())
        .bind::<Nullable<Timestamptz>, _>(w.events.map(|e| e.recorded_at))
        .bind::<Array<Nullable<Timestamptz>>, _>(segments.iter().map(|s| s.last_entry_at).collect::<Vec<_>>())
        .execute(conn)?;
    Ok(())
}

/// What the statement writes to one segment: its new balance, if any, and the latest
/// effective time among the statement's entries on it, if any.
#[derive(Debug, PartialEq)]
struct SegmentWrite {
    commit: CommitId,
    idx: i32,
    remaining: Option<Decimal>,
    last_entry_at: Option<DateTime<Utc>>,
}

/// The segments of `remaining` (in its order) and then those only `ledger`'s entries are
/// on, each once: every segment that gets an entry moves its `ledger_last_at` in the same
/// statement, whether or not its balance changes (a grant, an access extension).
fn segment_writes(remaining: &[(CommitId, i32, Decimal)], ledger: &[LedgerEntry]) -> Vec<SegmentWrite> {
    let mut writes: Vec<SegmentWrite> = remaining
        .iter()
        .map(|(commit, idx, r)| SegmentWrite {
            commit: *commit,
            idx: *idx,
            remaining: Some(*r),
            last_entry_at: None,
        })
        .collect();
    let mut at: HashMap<(CommitId, i32), usize> =
        writes.iter().enumerate().map(|(i, w)| ((w.commit, w.idx), i)).collect();
    for e in ledger {
        let i = *at.entry((e.commit_id, e.segment_idx)).or_insert_with(|| {
            writes.push(SegmentWrite {
                commit: e.commit_id,
                idx: e.segment_idx,
                remaining: None,
                last_entry_at: None,
            });
            writes.len() - 1
        });
        let last = &mut writes[i].last_entry_at;
        *last = Some(last.map_or(e.effective_at, |l| l.max(e.effective_at)));
    }
    writes
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::commit::balance::LedgerKind;

    fn entry(commit: CommitId, idx: i32, day: u32) -> LedgerEntry {
        let at = Utc.with_ymd_and_hms(2026, 12, day, 0, 0, 0).unwrap();
        LedgerEntry {
            id: Uuid::now_v7(),
            commit_id: commit,
            segment_idx: idx,
            kind: LedgerKind::Grant,
            amount: Decimal::ONE,
            effective_at: at,
            source_id: None,
            product_id: None,
            reason: None,
            created_at: at,
        }
    }

    #[test]
    fn every_segment_an_entry_is_on_moves_to_its_latest_entry_balance_written_or_not() {
        let (a, b) = (CommitId::from(Uuid::now_v7()), CommitId::from(Uuid::now_v7()));
        let day = |d| Some(Utc.with_ymd_and_hms(2026, 12, d, 0, 0, 0).unwrap());
        let writes = segment_writes(
            &[(a, 0, Decimal::TEN), (a, 1, Decimal::ONE)],
            &[entry(a, 0, 3), entry(b, 2, 5), entry(a, 0, 7), entry(b, 2, 4)],
        );
        assert_eq!(
            writes,
            vec![
                SegmentWrite { commit: a, idx: 0, remaining: Some(Decimal::TEN), last_entry_at: day(7) },
                SegmentWrite { commit: a, idx: 1, remaining: Some(Decimal::ONE), last_entry_at: None },
                SegmentWrite { commit: b, idx: 2, remaining: None, last_entry_at: day(5) },
            ]
        );
    }
}
