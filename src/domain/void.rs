//! Voiding a recorded usage event: what it drew from commit segments is given back,
//! effective when it was drawn, so every later running balance rises by the same amount
//! and none can fall below zero. A segment that has closed (its grace has passed, or it
//! was voided) keeps its history: an event that drew from one cannot be voided.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::commit::balance::{LedgerEntry, LedgerKind, Segment};
use super::commit::timeline::LateUsageGrace;
use super::ids::{CommitId, ProductId};

/// One part of the event's drawdown from a commit segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentDraw {
    pub commit_id: CommitId,
    pub segment_idx: i32,
    pub amount: Decimal,
}

/// Why an event cannot be voided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentClosed {
    pub commit_id: CommitId,
    pub segment_idx: i32,
}

/// The recorded event being voided, as the reversal needs it.
#[derive(Clone, Copy, Debug)]
pub struct Voided<'a> {
    /// The id of the recording: the source of its ledger entries.
    pub id: Uuid,
    pub product: ProductId,
    pub occurred_at: DateTime<Utc>,
    pub reason: &'a str,
}

/// The ledger entries giving back each of `draws` (of the event `e`) to its segment
/// (one of `segments`), or the first segment that has closed at `now`. `next_id` gives
/// each entry's id.
pub fn reversal_entries(
    e: Voided<'_>,
    draws: &[SegmentDraw],
    segments: &[Segment],
    (now, grace): (DateTime<Utc>, LateUsageGrace),
    mut next_id: impl FnMut() -> Uuid,
) -> Result<Vec<LedgerEntry>, SegmentClosed> {
    draws
        .iter()
        .map(|d| {
            let closed = SegmentClosed { commit_id: d.commit_id, segment_idx: d.segment_idx };
            let segment = segments
                .iter()
                .find(|s| s.commit_id == d.commit_id && s.idx == d.segment_idx)
                .ok_or(closed)?;
            if segment.closed.is_some() || !grace.still_open(segment.ending_before, now) {
                return Err(closed);
            }
            Ok(LedgerEntry {
                id: next_id(),
                commit_id: d.commit_id,
                segment_idx: d.segment_idx,
                kind: LedgerKind::Drawdown,
                amount: d.amount,
                effective_at: e.occurred_at,
                source_id: Some(e.id),
                product_id: Some(e.product),
                reason: Some(format!("void: {}", e.reason)),
                created_at: now,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::domain::commit::balance::CloseKind;

    fn at(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, 0, 0, 0).unwrap()
    }

    fn segment(ends: DateTime<Utc>, closed: bool) -> Segment {
        Segment {
            commit_id: CommitId(Uuid::from_u128(1)),
            idx: 0,
            starting_at: at(1),
            ending_before: ends,
            amount: Decimal::from(100),
            remaining: Decimal::from(60),
            closed: closed.then_some((ends, CloseKind::Expired)),
        }
    }

    /// Voids an event that drew 40 from segment `drawn_from` of commit 1.
    fn void_of(
        drawn_from: i32,
        segments: &[Segment],
        now: DateTime<Utc>,
    ) -> Result<Vec<LedgerEntry>, SegmentClosed> {
        let e = Voided {
            id: Uuid::from_u128(9),
            product: ProductId(Uuid::nil()),
            occurred_at: at(5),
            reason: "dup",
        };
        let draws = [SegmentDraw {
            commit_id: CommitId(Uuid::from_u128(1)),
            segment_idx: drawn_from,
            amount: Decimal::from(40),
        }];
        reversal_entries(e, &draws, segments, (now, LateUsageGrace(Duration::hours(1))), || {
            Uuid::from_u128(7)
        })
    }

    fn void(segments: &[Segment], now: DateTime<Utc>) -> Result<Vec<LedgerEntry>, SegmentClosed> {
        void_of(0, segments, now)
    }

    #[test]
    fn a_void_gives_back_what_was_drawn_when_it_was_drawn() {
        let entries = void(&[segment(at(20), false)], at(10)).unwrap();
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(
            (e.amount, e.effective_at, e.source_id),
            (Decimal::from(40), at(5), Some(Uuid::from_u128(9)))
        );
        assert_eq!(e.reason.as_deref(), Some("void: dup"));
    }

    #[test]
    fn a_void_gives_back_to_the_segment_it_drew_from_not_a_sibling() {
        // Segment 0 of the commit has closed; the event drew from segment 1, still open.
        let mut open = segment(at(20), false);
        open.idx = 1;
        let entries = void_of(1, &[segment(at(4), true), open], at(10)).expect("segment 1 is open");
        assert_eq!(entries[0].segment_idx, 1);
    }

    #[test]
    fn a_void_cannot_reopen_a_closed_segment() {
        let closed = SegmentClosed { commit_id: CommitId(Uuid::from_u128(1)), segment_idx: 0 };
        assert_eq!(void(&[segment(at(20), true)], at(10)), Err(closed));
        assert_eq!(
            void(&[segment(at(10), false)], at(10) + Duration::hours(1)),
            Err(closed),
            "grace over, job or not"
        );
        assert!(void(&[segment(at(10), false)], at(10) + Duration::minutes(59)).is_ok(), "within the grace");
    }
}
