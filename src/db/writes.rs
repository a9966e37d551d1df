//! The writes most transactions end with (usage totals, segment balances, ledger entries,
//! usage events), sent as one statement: on the usage path they were four round trips of
//! the fourteen a one-event transaction made (docs/performance.md). Callers that write
//! only some of them leave the rest empty; the single-purpose functions of `usage` and
//! `commit_ledger` are such callers. Writing a segment's balance with its new entries in
//! the same call lets it move the segment's `ledger_last_at` too, so the ledger's trigger
//! has no row to update again.

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
    prepared(include_str!("sql/writes_totals_balances_ledger_events.sql"))
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<Array<SqlUuid>, _>(t.iter().map(|d| d.customer.uuid()).collect::<Vec<Uuid>>())
        .bind::<Array<Text>, _>(t.iter().map(|d| d.kind.as_str()).collect::<Vec<&str>>())
        .bind::<Array<Date>, _>(t.iter().map(|d| d.first_day).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(t.iter().map(|d| d.product.uuid()).collect::<Vec<Uuid>>())
        .bind::<Array<Text>, _>(t.iter().map(|d| d.credit_type.as_str()).collect::<Vec<&str>>())
        .bind::<Array<Numeric>, _>(t.iter().map(|d| d.amount).collect::<Vec<Decimal>>())
        .bind::<Array<Numeric>, _>(t.iter().map(|d| d.quantity).collect::<Vec<Decimal>>())
        .bind::<Array<SqlUuid>, _>(w.remaining.iter().map(|s| s.0.uuid()).collect::<Vec<Uuid>>())
        .bind::<Array<Int4>, _>(w.remaining.iter().map(|s| s.1).collect::<Vec<i32>>())
        .bind::<Array<Numeric>, _>(w.remaining.iter().map(|s| s.2).collect::<Vec<Decimal>>())
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
        .bind::<Array<Nullable<Timestamptz>>, _>(latest_entries(w.remaining, l))
        .execute(conn)?;
    Ok(())
}

/// For each segment of `remaining`, the latest effective time among `ledger`'s entries on
/// it (None when it has none there).
fn latest_entries(
    remaining: &[(CommitId, i32, Decimal)],
    ledger: &[LedgerEntry],
) -> Vec<Option<DateTime<Utc>>> {
    let mut latest: HashMap<(CommitId, i32), DateTime<Utc>> = HashMap::with_capacity(ledger.len());
    for e in ledger {
        let at = latest.entry((e.commit_id, e.segment_idx)).or_insert(e.effective_at);
        *at = (*at).max(e.effective_at);
    }
    remaining.iter().map(|(commit, idx, _)| latest.get(&(*commit, *idx)).copied()).collect()
}
