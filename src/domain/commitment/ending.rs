//! What a commitment's natural end does beyond its own status: the prepaid access it
//! extends and the notice that carries the next plan.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{Commitment, CommitmentStatus};
use crate::domain::commit::Commit;
use crate::domain::commit::balance::{LedgerEntry, LedgerKind, Segment};
use crate::domain::ids::CommitId;
use crate::domain::violation::{NewViolation, ViolationDetail, ViolationKind};

/// The segment of a prepaid commit whose end moves to `to` when a commitment ending at
/// `ended_at` extends prepaid access: the commit's last segment, if it was still open at
/// that end (not closed, not ended before it) and ends before `to`. A segment already
/// written off stays as it is: its expiry is on the ledger.
pub fn prepaid_extension(segments: &[Segment], ended_at: DateTime<Utc>, to: DateTime<Utc>) -> Option<i32> {
    let last = segments.iter().max_by_key(|s| (s.ending_before, s.idx))?;
    (last.closed.is_none() && last.ending_before >= ended_at && last.ending_before < to).then_some(last.idx)
}

/// An extension of one commit's access, as decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Extension {
    /// The commit with its segment's new end.
    pub commit: Commit,
    pub segment_idx: i32,
    /// The ledger's note of it: no amount, effective at the commitment's end.
    pub note: LedgerEntry,
}

/// Extends `commit`'s segment `idx` to `to` because `commitment` ended; `entry_id`
/// names the ledger note.
pub fn extend(
    commit: &Commit,
    idx: i32,
    to: DateTime<Utc>,
    commitment: &Commitment,
    entry_id: Uuid,
    now: DateTime<Utc>,
) -> Extension {
    let mut next = commit.clone();
    let from = next.access.get(idx as usize).map(|a| a.ending_before);
    if let Some(item) = next.access.get_mut(idx as usize) {
        item.ending_before = to;
    }
    next.version += 1;
    next.updated_at = now;
    let from = from.map_or_else(String::new, |t| format!(" from {}", t.to_rfc3339()));
    let note = LedgerEntry {
        id: entry_id,
        commit_id: commit.id,
        segment_idx: idx,
        kind: LedgerKind::AccessExtended,
        amount: Decimal::ZERO,
        effective_at: commitment.terms.time_range.end_time,
        source_id: Some(commitment.id.uuid()),
        product_id: None,
        reason: Some(format!(
            "access extended{from} to {}: commitment {} ended",
            to.to_rfc3339(),
            commitment.id
        )),
        created_at: now,
    };
    Extension { commit: next, segment_idx: idx, note }
}

/// The COMMITMENT_ENDED notice of a commitment that reached its end, with the next plan
/// its ending config names and the prepaid commits it extended.
pub fn ended_notice(c: &Commitment, extended: &[CommitId], violation_id: Uuid) -> NewViolation {
    let end = c.terms.time_range.end_time;
    let plan = c.terms.ending_config.plan_id.clone();
    let mut message = format!("commitment {} ended {}", c.id, outcome(c.status));
    if let Some(successor) = c.successor {
        message.push_str(&format!(", restarted as {successor}"));
    }
    if let Some(plan) = &plan {
        message.push_str(&format!("; next plan {plan}"));
    }
    if !extended.is_empty() {
        let ids: Vec<String> = extended.iter().map(ToString::to_string).collect();
        message.push_str(&format!("; prepaid access extended on commits {}", ids.join(", ")));
    }
    NewViolation {
        id: violation_id,
        kind: ViolationKind::CommitmentEnded,
        customer_id: Some(c.customer),
        occurred_at: end,
        detail: ViolationDetail {
            message,
            commitment_id: Some(c.id.uuid()),
            plan_id: plan,
            ..Default::default()
        },
    }
}

fn outcome(status: CommitmentStatus) -> &'static str {
    match status {
        CommitmentStatus::Violated => "with obligations not met",
        _ => "with its obligations met",
    }
}

#[cfg(test)]
#[path = "ending_tests.rs"]
mod tests;
