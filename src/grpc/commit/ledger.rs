//! Balance, ledger and adjustment messages <-> domain values.

use crate::app::commits::CommitBalance;
use crate::domain::commit::adjustment::{Adjustment, AdjustmentDraft, validate_adjustment};
use crate::domain::commit::balance::{CloseKind, LedgerEntry, LedgerKind, SegmentPhase};
use crate::domain::validation::Violations;
use crate::grpc::convert::{decimal, parsed_decimal, parsed_id, timestamp};
use crate::proto::v1 as pb;

pub fn ledger_kind(v: i32) -> Option<LedgerKind> {
    Some(match pb::LedgerEntryKind::try_from(v).ok()? {
        pb::LedgerEntryKind::Grant => LedgerKind::Grant,
        pb::LedgerEntryKind::Drawdown => LedgerKind::Drawdown,
        pb::LedgerEntryKind::Expiry => LedgerKind::Expiry,
        pb::LedgerEntryKind::Adjustment => LedgerKind::Adjustment,
        pb::LedgerEntryKind::TrueUp => LedgerKind::TrueUp,
        pb::LedgerEntryKind::Void => LedgerKind::Void,
        pb::LedgerEntryKind::AccessExtended => LedgerKind::AccessExtended,
        pb::LedgerEntryKind::Unspecified => return None,
    })
}

fn ledger_kind_to_wire(k: LedgerKind) -> pb::LedgerEntryKind {
    match k {
        LedgerKind::Grant => pb::LedgerEntryKind::Grant,
        LedgerKind::Drawdown => pb::LedgerEntryKind::Drawdown,
        LedgerKind::Expiry => pb::LedgerEntryKind::Expiry,
        LedgerKind::Adjustment => pb::LedgerEntryKind::Adjustment,
        LedgerKind::TrueUp => pb::LedgerEntryKind::TrueUp,
        LedgerKind::Void => pb::LedgerEntryKind::Void,
        LedgerKind::AccessExtended => pb::LedgerEntryKind::AccessExtended,
    }
}

/// The adjustment of an AdjustCommitBalance request.
pub fn adjustment(req: pb::AdjustCommitBalanceRequest) -> Result<Adjustment, Violations> {
    let mut v = Violations::default();
    let draft = AdjustmentDraft {
        commit_id: parsed_id(&mut v, "commit_id", &req.commit_id),
        segment_idx: req.segment_index,
        amount: parsed_decimal(&mut v, "amount", &req.amount),
        reason: req.reason,
        request_id: req.request_id,
    };
    match validate_adjustment(draft, &mut v) {
        Some(adjustment) if v.is_empty() => Ok(adjustment),
        _ => Err(v),
    }
}

fn phase_to_wire(p: SegmentPhase) -> pb::SegmentState {
    match p {
        SegmentPhase::Upcoming => pb::SegmentState::Upcoming,
        SegmentPhase::Active => pb::SegmentState::Active,
        SegmentPhase::Closed(CloseKind::Expired) => pb::SegmentState::Expired,
        SegmentPhase::Closed(CloseKind::TruedUp) => pb::SegmentState::TruedUp,
        SegmentPhase::Closed(CloseKind::Voided) => pb::SegmentState::Voided,
    }
}

pub fn balance(b: CommitBalance) -> pb::GetCommitBalanceResponse {
    let total = crate::domain::commit::balance::total(&b.segments);
    pb::GetCommitBalanceResponse {
        commit_id: b.commit.id.to_string(),
        at: Some(timestamp(b.at)),
        balance: Some(pb::Money { amount: decimal(total), credit_type: b.commit.credit_type.clone() }),
        segments: b
            .segments
            .into_iter()
            .map(|s| pb::SegmentBalance {
                index: s.idx,
                starting_at: Some(timestamp(s.starting_at)),
                ending_before: Some(timestamp(s.ending_before)),
                state: phase_to_wire(s.phase).into(),
                granted: decimal(s.granted),
                drawn: decimal(s.drawn),
                adjusted: decimal(s.adjusted),
                remaining: decimal(s.remaining),
            })
            .collect(),
    }
}

pub fn ledger_entry(e: LedgerEntry, running_balance: Option<rust_decimal::Decimal>) -> pb::LedgerEntry {
    pb::LedgerEntry {
        id: e.id.to_string(),
        commit_id: e.commit_id.to_string(),
        segment_index: e.segment_idx,
        kind: ledger_kind_to_wire(e.kind).into(),
        amount: decimal(e.amount),
        effective_time: Some(timestamp(e.effective_at)),
        running_balance: running_balance.map(decimal).unwrap_or_default(),
        source_id: e.source_id.map(|s| s.to_string()).unwrap_or_default(),
        product_id: e.product_id.map(|p| p.to_string()).unwrap_or_default(),
        reason: e.reason.unwrap_or_default(),
        create_time: Some(timestamp(e.created_at)),
    }
}
