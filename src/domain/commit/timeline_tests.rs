//! The effective-time rules of a segment's history, and a property test that plays
//! random sequences of grants, adjustments, voids, late and early usage and closing
//! against them, checking the ledger invariants at every instant.

use chrono::TimeZone;
use proptest::prelude::*;

use super::*;

fn day(d: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(d)
}

fn dec(v: i64) -> Decimal {
    Decimal::from(v)
}

#[test]
fn late_usage_cannot_spend_credit_granted_after_it() {
    // Grant 100 on day 0, +50 adjustment on day 10: on day 5 only 100 existed.
    let later = vec![(day(10), dec(50))];
    assert_eq!(drawable_at(dec(150), &later, day(5)), dec(100));
    assert_eq!(drawable_at(dec(150), &later, day(10)), dec(150), "effective at the instant itself");
    assert_eq!(balance_at(dec(150), &later, day(10)), dec(150), "an entry counts from its own instant");
    assert_eq!(balance_at(dec(150), &later, day(9)), dec(100));
}

#[test]
fn late_usage_cannot_make_a_later_running_balance_negative() {
    // 100 granted; 80 drawn on day 10. On day 5 the balance is 100, but taking more than
    // 20 would leave day 10 below zero.
    let later = vec![(day(10), dec(-80))];
    assert_eq!(balance_at(dec(20), &later, day(5)), dec(100));
    assert_eq!(drawable_at(dec(20), &later, day(5)), dec(20));
}

#[test]
fn entries_keep_effective_time_order_after_equal_instants() {
    let mut later = vec![(day(1), dec(1)), (day(3), dec(3))];
    insert_later(&mut later, day(1), dec(2));
    insert_later(&mut later, day(5), dec(5));
    assert_eq!(later, vec![(day(1), dec(1)), (day(1), dec(2)), (day(3), dec(3)), (day(5), dec(5))]);
}

#[test]
fn an_entry_on_an_upcoming_segment_takes_effect_at_its_start() {
    assert_eq!(effective_instant(day(30), day(1)), day(30));
    assert_eq!(effective_instant(day(1), day(30)), day(30));
}

#[test]
fn a_negative_adjustment_on_an_upcoming_segment_is_checked_at_its_start() {
    // Segment [30, 60) of 100 not started yet: its grant is effective on day 30.
    let d = decide_adjustment((day(30), day(60)), false, dec(100), &[(day(30), dec(100))], dec(-20), day(1));
    assert_eq!(d, Ok(day(30)));
    let too_much =
        decide_adjustment((day(30), day(60)), false, dec(100), &[(day(30), dec(100))], dec(-120), day(1));
    assert_eq!(too_much, Err(AdjustmentRefusal::InsufficientBalance { drawable: dec(100) }));
    let all_of_it =
        decide_adjustment((day(30), day(60)), false, dec(100), &[(day(30), dec(100))], dec(-100), day(1));
    assert_eq!(all_of_it, Ok(day(30)), "taking exactly what it holds leaves zero, which is allowed");
}

#[test]
fn an_adjustment_on_an_ended_or_closed_segment_is_refused() {
    let r = |closed, now| decide_adjustment((day(0), day(10)), closed, dec(5), &[], dec(1), now);
    assert_eq!(r(false, day(10)), Err(AdjustmentRefusal::SegmentEnded), "the end is exclusive");
    assert_eq!(r(true, day(5)), Err(AdjustmentRefusal::SegmentEnded));
    assert_eq!(r(false, day(9)), Ok(day(9)));
}

#[test]
fn a_segment_takes_late_usage_until_its_grace_has_passed() {
    let grace = LateUsageGrace(Duration::hours(2));
    let end = day(10);
    assert!(grace.still_open(end, end + Duration::hours(1)));
    assert!(!grace.still_open(end, end + Duration::hours(2)), "closed exactly at end + grace");
    assert_eq!(grace.closed_through(end + Duration::hours(2)), end);
}

/// One step of a random history, at a wall-clock instant that only moves forward.
#[derive(Clone, Debug)]
enum Op {
    /// Wall clock moves on by this many hours.
    Wait(i64),
    /// A manual adjustment.
    Adjust(i64),
    /// Usage of `amount` dated `hours_back` before now (negative: slightly ahead).
    Usage { amount: i64, hours_back: i64 },
    /// The commit is voided.
    Void,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1i64..200).prop_map(Op::Wait),
        (-150i64..150).prop_map(Op::Adjust),
        ((1i64..120), (-1i64..400)).prop_map(|(amount, hours_back)| Op::Usage { amount, hours_back }),
        Just(Op::Void),
    ]
}

/// A segment's ledger as the service keeps it, driven only by the rules above.
struct Sim {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    grace: LateUsageGrace,
    entries: Vec<(DateTime<Utc>, Decimal)>,
    closed: bool,
    /// The history up to the segment's end as it was when the segment closed.
    closed_history: Option<Vec<(DateTime<Utc>, Decimal)>>,
}

impl Sim {
    fn total(&self) -> Decimal {
        self.entries.iter().map(|(_, a)| *a).sum()
    }

    fn later(&self, t: DateTime<Utc>) -> LaterEntries {
        let mut later: LaterEntries = self.entries.iter().filter(|(at, _)| *at > t).copied().collect();
        later.sort_by_key(|(at, _)| *at);
        later
    }

    fn record(&mut self, at: DateTime<Utc>, amount: Decimal) {
        let mut sorted = self.entries.clone();
        sorted.sort_by_key(|(x, _)| *x);
        insert_later(&mut sorted, at, amount);
        self.entries = sorted;
    }

    /// The closing job (or a read) at `now`: once the grace has passed, the remainder
    /// expires at the segment's end.
    fn close_if_due(&mut self, now: DateTime<Utc>) {
        if !self.closed && !self.grace.still_open(self.end, now) {
            let total = self.total();
            self.record(self.end, -total);
            self.closed = true;
            self.closed_history = Some(self.entries.clone());
        }
    }

    fn apply(&mut self, op: &Op, now: DateTime<Utc>) {
        match *op {
            Op::Wait(_) => {}
            Op::Adjust(amount) => {
                let at = effective_instant(self.start, now);
                let d = decide_adjustment(
                    (self.start, self.end),
                    self.closed,
                    self.total(),
                    &self.later(at),
                    dec(amount),
                    now,
                );
                if let Ok(at) = d {
                    self.record(at, dec(amount));
                }
            }
            Op::Usage { amount, hours_back } => {
                let t = now - Duration::hours(hours_back);
                let inside = self.start <= t && t < self.end;
                if inside && !self.closed && self.grace.still_open(self.end, now) {
                    let take = dec(amount).min(drawable_at(self.total(), &self.later(t), t));
                    if take > Decimal::ZERO {
                        self.record(t, -take);
                    }
                }
            }
            Op::Void => {
                if !self.closed {
                    let total = self.total();
                    self.record(effective_instant(self.start, now), -total);
                    self.closed = true;
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn the_ledger_never_goes_below_zero_and_a_closed_period_never_changes(
        grant in 1i64..300,
        starts_in in 0i64..100,
        length in 1i64..300,
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let mut now = day(0);
        let start = now + Duration::hours(starts_in);
        let mut sim = Sim {
            start,
            end: start + Duration::hours(length),
            grace: LateUsageGrace(Duration::hours(24)),
            entries: vec![(start, dec(grant))],
            closed: false,
            closed_history: None,
        };
        for op in &ops {
            if let Op::Wait(h) = op {
                now += Duration::hours(*h);
            }
            sim.close_if_due(now);
            sim.apply(op, now);

            // At every instant an entry takes effect, the running balance is >= 0 and
            // equals what the balance function answers for that instant.
            let mut running = Decimal::ZERO;
            for (i, (at, amount)) in sim.entries.iter().enumerate() {
                running += *amount;
                let last_at_instant = sim.entries.get(i + 1).is_none_or(|(next, _)| next > at);
                if last_at_instant {
                    prop_assert!(running >= Decimal::ZERO, "balance {} at {}", running, at);
                    prop_assert_eq!(balance_at(sim.total(), &sim.later(*at), *at), running);
                }
            }
            prop_assert!(sim.entries.windows(2).all(|w| w[0].0 <= w[1].0), "kept in effective order");
            prop_assert!(sim.entries.iter().all(|(at, _)| *at >= sim.start), "nothing before the grant");
            if let Some(history) = &sim.closed_history {
                prop_assert_eq!(history, &sim.entries, "a closed segment's history never changes");
                prop_assert_eq!(sim.total(), Decimal::ZERO);
            }
        }
    }
}
