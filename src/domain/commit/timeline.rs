//! A segment's balance as a history in effective time. Every ledger entry takes effect at
//! an instant; the balance at `t` is the sum of the entries effective at or before `t`.
//! Two rules keep that history honest whatever order entries arrive in:
//! - a drawdown at `t` takes only what leaves every running balance from `t` on at zero
//!   or more ([`drawable_at`]), so late usage cannot spend credit granted after it;
//! - an entry made on a segment that has not started takes effect at its start
//!   ([`effective_instant`]), never before the segment's grant.
//!
//! Deciding needs only the segment's total (the balance once every entry has taken
//! effect, stored as `remaining`) and the entries effective after the earliest instant
//! being decided: usually none, since usage mostly arrives in time order.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

/// Entries of one segment effective after some instant, in effective-time order.
pub type LaterEntries = Vec<(DateTime<Utc>, Decimal)>;

/// The balance at `t` of a segment whose entries sum to `total`, given every entry
/// effective after `t` among `later`.
pub fn balance_at(total: Decimal, later: &[(DateTime<Utc>, Decimal)], t: DateTime<Utc>) -> Decimal {
    total - later.iter().filter(|(at, _)| *at > t).map(|(_, a)| *a).sum::<Decimal>()
}

/// What a drawdown effective at `t` may take: the lowest running balance from `t` on.
/// `later` must hold every entry effective after `t`, in effective-time order.
pub fn drawable_at(total: Decimal, later: &[(DateTime<Utc>, Decimal)], t: DateTime<Utc>) -> Decimal {
    // Walk back from the end of time: before each later entry the balance was lower by
    // its amount; the lowest of those balances bounds what `t` may take.
    let mut balance = total;
    let mut lowest = total;
    for (at, amount) in later.iter().rev() {
        if *at <= t {
            break;
        }
        balance -= *amount;
        lowest = lowest.min(balance);
    }
    lowest.max(Decimal::ZERO)
}

/// Adds an entry of `amount` effective at `t` to `later`, keeping effective-time order
/// (after entries of the same instant, as its later id orders it in the ledger).
pub fn insert_later(later: &mut LaterEntries, t: DateTime<Utc>, amount: Decimal) {
    let at = later.partition_point(|(x, _)| *x <= t);
    later.insert(at, (t, amount));
}

/// When an entry made at `now` on a segment starting at `start` takes effect: now, or
/// the segment's start while it has not started.
pub fn effective_instant(start: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    now.max(start)
}

/// Why a manual adjustment cannot be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdjustmentRefusal {
    /// The segment has ended (or been closed): its history is final.
    SegmentEnded,
    /// Taking the amount would make a running balance negative; `drawable` is the most
    /// that can be taken at the adjustment's instant.
    InsufficientBalance { drawable: Decimal },
}

/// Decides a manual adjustment of `amount` made at `now` on a segment running
/// `[start, end)` whose entries sum to `total` (`later`: its entries effective after
/// the adjustment's instant). Returns the instant the adjustment takes effect.
pub fn decide_adjustment(
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    closed: bool,
    total: Decimal,
    later: &[(DateTime<Utc>, Decimal)],
    amount: Decimal,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, AdjustmentRefusal> {
    if closed || end <= now {
        return Err(AdjustmentRefusal::SegmentEnded);
    }
    let at = effective_instant(start, now);
    let drawable = drawable_at(total, later, at);
    if amount < Decimal::ZERO && -amount > drawable {
        return Err(AdjustmentRefusal::InsufficientBalance { drawable });
    }
    Ok(at)
}

/// How long after a segment ends usage dated inside it may still draw from it. The
/// answer for late usage depends only on its timestamp, the segment's bounds and this
/// grace, never on when the closing job ran: the job closes a segment only once its
/// grace has passed, and drawdowns stop at that same instant whether it ran or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LateUsageGrace(pub Duration);

impl Default for LateUsageGrace {
    fn default() -> Self {
        Self(Duration::hours(1))
    }
}

impl LateUsageGrace {
    /// Segments that ended at or before this instant take no more drawdowns at `now`
    /// and are due to be closed.
    pub fn closed_through(self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.0
    }

    /// Whether a segment ending at `end` still takes drawdowns at `now`.
    pub fn still_open(self, end: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        end > self.closed_through(now)
    }
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
mod tests;
