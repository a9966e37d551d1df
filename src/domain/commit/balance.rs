//! A commit's balance over time: ledger entries, segment states, and the balance of each
//! segment at any instant.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::CommitType;
use crate::domain::ids::{CommitId, ProductId};

/// What a ledger entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LedgerKind {
    Grant,
    Drawdown,
    Expiry,
    Adjustment,
    TrueUp,
    Void,
    /// A note, of no amount, that the segment's access end moved (a commitment's end
    /// extended the prepaid access).
    AccessExtended,
}

impl LedgerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grant => "GRANT",
            Self::Drawdown => "DRAWDOWN",
            Self::Expiry => "EXPIRY",
            Self::Adjustment => "ADJUSTMENT",
            Self::TrueUp => "TRUE_UP",
            Self::Void => "VOID",
            Self::AccessExtended => "ACCESS_EXTENDED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "GRANT" => Self::Grant,
            "DRAWDOWN" => Self::Drawdown,
            "EXPIRY" => Self::Expiry,
            "ADJUSTMENT" => Self::Adjustment,
            "TRUE_UP" => Self::TrueUp,
            "VOID" => Self::Void,
            "ACCESS_EXTENDED" => Self::AccessExtended,
            _ => return None,
        })
    }
}

/// One signed change of a segment's balance.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerEntry {
    pub id: Uuid,
    pub commit_id: CommitId,
    pub segment_idx: i32,
    pub kind: LedgerKind,
    pub amount: Decimal,
    pub effective_at: DateTime<Utc>,
    pub source_id: Option<Uuid>,
    pub product_id: Option<ProductId>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Why a segment takes no more drawdowns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseKind {
    Expired,
    TruedUp,
    Voided,
}

impl CloseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "EXPIRED",
            Self::TruedUp => "TRUED_UP",
            Self::Voided => "VOIDED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "EXPIRED" => Self::Expired,
            "TRUED_UP" => Self::TruedUp,
            "VOIDED" => Self::Voided,
            _ => return None,
        })
    }

    /// How a segment of a commit of type `t` closes when it ends.
    pub fn at_end_of(t: CommitType) -> Self {
        match t {
            CommitType::Prepaid => Self::Expired,
            CommitType::Postpaid => Self::TruedUp,
        }
    }

    /// The ledger entry that writes off what is left when closing this way.
    pub fn ledger_kind(self) -> LedgerKind {
        match self {
            Self::Expired => LedgerKind::Expiry,
            Self::TruedUp => LedgerKind::TrueUp,
            Self::Voided => LedgerKind::Void,
        }
    }
}

/// An access segment as stored: its live balance and whether it is closed.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub commit_id: CommitId,
    pub idx: i32,
    pub starting_at: DateTime<Utc>,
    pub ending_before: DateTime<Utc>,
    pub amount: Decimal,
    pub remaining: Decimal,
    pub closed: Option<(DateTime<Utc>, CloseKind)>,
}

impl Segment {
    /// Open for drawdowns of usage at `t`: not closed, and `t` within the segment.
    pub fn accepts_usage_at(&self, t: DateTime<Utc>) -> bool {
        self.closed.is_none() && self.starting_at <= t && t < self.ending_before
    }

    /// Ended at or before `closed_through` (see `LateUsageGrace::closed_through`) but
    /// not yet closed: its remainder must be written off.
    pub fn is_due(&self, closed_through: DateTime<Utc>) -> bool {
        self.closed.is_none() && self.ending_before <= closed_through
    }
}

/// A segment's state at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentPhase {
    Upcoming,
    Active,
    Closed(CloseKind),
}

/// A segment's balance at an instant.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentBalance {
    pub idx: i32,
    pub starting_at: DateTime<Utc>,
    pub ending_before: DateTime<Utc>,
    pub phase: SegmentPhase,
    pub granted: Decimal,
    pub drawn: Decimal,
    pub adjusted: Decimal,
    pub remaining: Decimal,
}

/// The phase of `s` at `at`, for a commit of type `t`. A segment that has ended counts
/// as closed even before the closing job wrote its entry.
pub fn phase_at(s: &Segment, t: CommitType, at: DateTime<Utc>) -> SegmentPhase {
    match s.closed {
        Some((closed_at, kind)) if closed_at <= at => SegmentPhase::Closed(kind),
        _ if at >= s.ending_before => SegmentPhase::Closed(CloseKind::at_end_of(t)),
        _ if at < s.starting_at => SegmentPhase::Upcoming,
        _ => SegmentPhase::Active,
    }
}

/// The sum of a segment's ledger entries of one kind, effective by some instant.
#[derive(Clone, Debug, PartialEq)]
pub struct KindTotal {
    pub segment_idx: i32,
    pub kind: LedgerKind,
    pub amount: Decimal,
}

/// Sums `entries` effective by `at` per segment and kind.
pub fn totals_up_to(entries: &[LedgerEntry], at: DateTime<Utc>) -> Vec<KindTotal> {
    let mut totals: Vec<KindTotal> = Vec::new();
    for e in entries.iter().filter(|e| e.effective_at <= at) {
        match totals.iter_mut().find(|t| t.segment_idx == e.segment_idx && t.kind == e.kind) {
            Some(t) => t.amount += e.amount,
            None => totals.push(KindTotal { segment_idx: e.segment_idx, kind: e.kind, amount: e.amount }),
        }
    }
    totals
}

/// Each segment's balance at `at`, from the segments and the sums of the commit's ledger
/// entries effective by `at` (see [`totals_up_to`]).
pub fn balances_at(
    t: CommitType,
    segments: &[Segment],
    totals: &[KindTotal],
    at: DateTime<Utc>,
) -> Vec<SegmentBalance> {
    segments
        .iter()
        .map(|s| {
            let mut b = SegmentBalance {
                idx: s.idx,
                starting_at: s.starting_at,
                ending_before: s.ending_before,
                phase: phase_at(s, t, at),
                granted: Decimal::ZERO,
                drawn: Decimal::ZERO,
                adjusted: Decimal::ZERO,
                remaining: Decimal::ZERO,
            };
            for e in totals.iter().filter(|e| e.segment_idx == s.idx) {
                match e.kind {
                    LedgerKind::Grant => b.granted += e.amount,
                    LedgerKind::Drawdown => b.drawn -= e.amount,
                    LedgerKind::Adjustment => b.adjusted += e.amount,
                    LedgerKind::Expiry
                    | LedgerKind::TrueUp
                    | LedgerKind::Void
                    | LedgerKind::AccessExtended => {}
                }
            }
            // An ended segment holds nothing from its end on: its write-off, effective
            // at the end, is recorded once the late-usage grace has passed.
            if b.phase == SegmentPhase::Active {
                b.remaining = b.granted - b.drawn + b.adjusted;
            }
            b
        })
        .collect()
}

/// Total usable balance of a set of segment balances.
pub fn total(balances: &[SegmentBalance]) -> Decimal {
    balances.iter().map(|b| b.remaining).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, m, d, 0, 0, 0).unwrap()
    }

    fn entry(idx: i32, kind: LedgerKind, amount: i64, when: DateTime<Utc>) -> LedgerEntry {
        LedgerEntry {
            id: Uuid::now_v7(),
            commit_id: CommitId(Uuid::nil()),
            segment_idx: idx,
            kind,
            amount: Decimal::from(amount),
            effective_at: when,
            source_id: None,
            product_id: None,
            reason: None,
            created_at: when,
        }
    }

    fn segment(idx: i32, from: DateTime<Utc>, to: DateTime<Utc>) -> Segment {
        Segment {
            commit_id: CommitId(Uuid::nil()),
            idx,
            starting_at: from,
            ending_before: to,
            amount: Decimal::from(100),
            remaining: Decimal::from(100),
            closed: None,
        }
    }

    #[test]
    fn balance_counts_only_what_happened_by_the_instant() {
        let segs = [segment(0, at(1, 1), at(3, 1))];
        let entries = [
            entry(0, LedgerKind::Grant, 100, at(1, 1)),
            entry(0, LedgerKind::Drawdown, -30, at(1, 10)),
            entry(0, LedgerKind::Adjustment, 5, at(1, 20)),
            entry(0, LedgerKind::Drawdown, -20, at(2, 1)),
        ];
        let b = |t| total(&balances_at(CommitType::Prepaid, &segs, &totals_up_to(&entries, t), t));
        assert_eq!(b(at(1, 5)), Decimal::from(100));
        assert_eq!(b(at(1, 15)), Decimal::from(70));
        assert_eq!(b(at(2, 15)), Decimal::from(55));
    }

    #[test]
    fn upcoming_and_ended_segments_hold_nothing() {
        let segs = [segment(0, at(2, 1), at(3, 1))];
        let entries = [entry(0, LedgerKind::Grant, 100, at(2, 1))];
        let before = balances_at(CommitType::Prepaid, &segs, &totals_up_to(&entries, at(1, 1)), at(1, 1));
        assert_eq!((before[0].phase, before[0].remaining), (SegmentPhase::Upcoming, Decimal::ZERO));
        let after = balances_at(CommitType::Postpaid, &segs, &totals_up_to(&entries, at(3, 1)), at(3, 1));
        assert_eq!(after[0].phase, SegmentPhase::Closed(CloseKind::TruedUp), "the end is exclusive");
        assert_eq!(after[0].remaining, Decimal::ZERO);
    }

    #[test]
    fn voided_segment_holds_nothing_from_the_void_on() {
        let mut s = segment(0, at(1, 1), at(12, 1));
        s.closed = Some((at(6, 1), CloseKind::Voided));
        let entries =
            [entry(0, LedgerKind::Grant, 100, at(1, 1)), entry(0, LedgerKind::Void, -100, at(6, 1))];
        let b = |t| {
            balances_at(CommitType::Prepaid, std::slice::from_ref(&s), &totals_up_to(&entries, t), t)[0]
                .clone()
        };
        assert_eq!(b(at(5, 31)).remaining, Decimal::from(100));
        assert_eq!(b(at(6, 1)).phase, SegmentPhase::Closed(CloseKind::Voided));
        assert_eq!(b(at(6, 1)).remaining, Decimal::ZERO);
    }

    #[test]
    fn segment_accepts_usage_inside_its_window_until_closed() {
        let mut s = segment(0, at(1, 1), at(2, 1));
        assert!(s.accepts_usage_at(at(1, 1)));
        assert!(!s.accepts_usage_at(at(2, 1)));
        assert!(s.is_due(at(2, 1)));
        s.closed = Some((at(2, 1), CloseKind::Expired));
        assert!(!s.accepts_usage_at(at(1, 15)));
        assert!(!s.is_due(at(3, 1)));
    }

    #[test]
    fn ledger_and_close_kinds_are_stored_under_their_names() {
        use LedgerKind::*;
        let ledger = [Grant, Drawdown, Expiry, Adjustment, TrueUp, Void, AccessExtended];
        let names: Vec<_> = ledger.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            ["GRANT", "DRAWDOWN", "EXPIRY", "ADJUSTMENT", "TRUE_UP", "VOID", "ACCESS_EXTENDED"]
        );
        for k in ledger {
            assert_eq!(LedgerKind::parse(k.as_str()), Some(k));
        }
        let closes = [CloseKind::Expired, CloseKind::TruedUp, CloseKind::Voided];
        let names: Vec<_> = closes.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, ["EXPIRED", "TRUED_UP", "VOIDED"]);
        for k in closes {
            assert_eq!(CloseKind::parse(k.as_str()), Some(k));
        }
        assert_eq!((LedgerKind::parse("grant"), CloseKind::parse("")), (None, None));
    }

    #[test]
    fn a_segment_is_active_from_its_first_instant() {
        let s = segment(0, at(1, 1), at(2, 1));
        assert_eq!(phase_at(&s, CommitType::Prepaid, at(1, 1)), SegmentPhase::Active);
        assert_eq!(
            phase_at(&s, CommitType::Prepaid, at(1, 1) - chrono::Duration::seconds(1)),
            SegmentPhase::Upcoming
        );
    }

    #[test]
    fn totals_are_kept_per_segment_and_kind() {
        let entries = [
            entry(0, LedgerKind::Grant, 100, at(1, 1)),
            entry(0, LedgerKind::Drawdown, -30, at(1, 2)),
            entry(1, LedgerKind::Grant, 50, at(1, 3)),
            entry(1, LedgerKind::Drawdown, -5, at(1, 3)),
            entry(0, LedgerKind::Drawdown, -20, at(1, 4)),
        ];
        let totals: Vec<_> =
            totals_up_to(&entries, at(2, 1)).into_iter().map(|t| (t.segment_idx, t.kind, t.amount)).collect();
        let d = Decimal::from;
        assert_eq!(
            totals,
            [
                (0, LedgerKind::Grant, d(100)),
                (0, LedgerKind::Drawdown, d(-50)),
                (1, LedgerKind::Grant, d(50)),
                (1, LedgerKind::Drawdown, d(-5)),
            ]
        );
    }
}
