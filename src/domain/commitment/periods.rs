//! Periods of obligations and their evaluation: periods are anchored on the start of the
//! term (a month, quarter or year at a time, or the whole term); a period cut short by
//! the end of the term needs a share of its minimum in proportion to its length.

use chrono::{DateTime, Months, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

use super::{Measure, PeriodKind, Scope, Terms};
use crate::domain::ids::ProductId;
use crate::domain::money::MAX_SCALE;

/// One period of an obligation, and the full period it is a part of when cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// End of the full period (beyond `end` when the term cuts it short).
    pub full_end: DateTime<Utc>,
}

impl Period {
    /// `amount` in proportion to how much of the full period this one spans.
    pub fn prorate(&self, amount: Decimal) -> Decimal {
        if self.end >= self.full_end {
            return amount;
        }
        let part = Decimal::from((self.end - self.start).num_seconds());
        let full = Decimal::from((self.full_end - self.start).num_seconds());
        if full.is_zero() {
            return amount;
        }
        (amount * part / full).round_dp_with_strategy(MAX_SCALE, RoundingStrategy::MidpointAwayFromZero)
    }
}

/// Every period of `kind` over `[start, end)`.
pub fn periods(kind: PeriodKind, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<Period> {
    let Some(months) = kind.months() else {
        return vec![Period { start, end, full_end: end }];
    };
    let mut out = Vec::new();
    for k in 0u32.. {
        let (Some(from), Some(full_end)) = (
            start.checked_add_months(Months::new(k * months)),
            start.checked_add_months(Months::new((k + 1) * months)),
        ) else {
            break;
        };
        if from >= end {
            break;
        }
        out.push(Period { start: from, end: full_end.min(end), full_end });
    }
    out
}

/// One obligation of a commitment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Obligation {
    pub scope: Scope,
    pub measure: Measure,
    pub index: usize,
    pub kind: PeriodKind,
    /// Minimum per full period.
    pub minimum: Decimal,
    /// For usage: only this product counts.
    pub product: Option<ProductId>,
}

/// Every obligation of the terms, customer scope first.
pub fn obligations(t: &Terms) -> Vec<Obligation> {
    let mut out = Vec::new();
    for (scope, o) in t.scopes() {
        for (index, s) in o.minimum_spend.iter().enumerate() {
            out.push(Obligation {
                scope,
                measure: Measure::Spend,
                index,
                kind: s.period,
                minimum: s.amount,
                product: None,
            });
        }
        for (index, u) in o.minimum_usage.iter().enumerate() {
            out.push(Obligation {
                scope,
                measure: Measure::Usage,
                index,
                kind: u.period,
                minimum: u.quantity,
                product: u.product_id,
            });
        }
    }
    out
}

/// How one period of one obligation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodOutcome {
    Met,
    Shortfall,
    Open,
}

/// One period of one obligation, measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeriodResult {
    pub obligation: Obligation,
    pub period: Period,
    pub required: Decimal,
    pub measured: Decimal,
    pub outcome: PeriodOutcome,
}

impl PeriodResult {
    pub fn shortfall(&self) -> Decimal {
        (self.required - self.measured).max(Decimal::ZERO)
    }
}

/// Judges one period: `measured` is what was recorded in it (up to `as_of` when open).
pub fn judge(
    obligation: Obligation,
    period: Period,
    measured: Decimal,
    as_of: DateTime<Utc>,
) -> PeriodResult {
    let required = period.prorate(obligation.minimum);
    let outcome = if period.end > as_of {
        PeriodOutcome::Open
    } else if measured >= required {
        PeriodOutcome::Met
    } else {
        PeriodOutcome::Shortfall
    };
    PeriodResult { obligation, period, required, measured, outcome }
}

/// A period as it was judged when it closed: under the terms in force then (`required`,
/// `measured` as stored), whatever the obligation says now. A closed period is never
/// judged again, so an edit applies to open and future periods only.
pub fn as_closed(
    obligation: Obligation,
    period: Period,
    required: Decimal,
    measured: Decimal,
) -> PeriodResult {
    let outcome = if measured >= required { PeriodOutcome::Met } else { PeriodOutcome::Shortfall };
    PeriodResult { obligation, period, required, measured, outcome }
}

/// The periods of every obligation that have started by `as_of` and, for a commitment
/// that stopped early (terminated), end by `stop`.
pub fn periods_to_judge(
    t: &Terms,
    as_of: DateTime<Utc>,
    stop: Option<DateTime<Utc>>,
) -> Vec<(Obligation, Period)> {
    let mut out = Vec::new();
    for o in obligations(t) {
        for p in periods(o.kind, t.time_range.start_time, t.time_range.end_time) {
            if p.start > as_of || stop.is_some_and(|s| p.end > s) {
                continue;
            }
            out.push((o, p));
        }
    }
    out
}

/// Identifies a closed period: scope, measure, obligation index, period start.
pub type PeriodKey = (Scope, Measure, i32, DateTime<Utc>);

/// The key of one period of one obligation.
pub fn key(o: &Obligation, p: &Period) -> PeriodKey {
    (o.scope, o.measure, o.index as i32, p.start)
}

/// When the evaluator must next look at a commitment: the earliest end of a period not
/// yet closed (ending by `stop` for a terminated one); for one still in its term, at the
/// latest its end, when it is finished.
pub fn next_check(
    t: &Terms,
    closed: &std::collections::HashSet<PeriodKey>,
    stop: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let far = t.time_range.end_time;
    let earliest = periods_to_judge(t, far, stop)
        .into_iter()
        .filter(|(o, p)| !closed.contains(&key(o, p)))
        .map(|(_, p)| p.end)
        .min();
    match stop {
        Some(_) => earliest,
        None => Some(earliest.map_or(far, |e| e.min(far))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::commitment::{MinimumSpend, MinimumUsage, Obligations};
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    #[test]
    fn months_are_anchored_on_the_start_and_the_last_is_cut_short() {
        let p = periods(PeriodKind::Month, at(2026, 1, 31), at(2026, 4, 15));
        let bounds: Vec<_> = p.iter().map(|p| (p.start, p.end)).collect();
        assert_eq!(
            bounds,
            [
                (at(2026, 1, 31), at(2026, 2, 28)),
                (at(2026, 2, 28), at(2026, 3, 31)),
                (at(2026, 3, 31), at(2026, 4, 15)),
            ]
        );
        assert_eq!(p[2].full_end, at(2026, 4, 30));
    }

    #[test]
    fn quarters_years_and_the_term() {
        assert_eq!(periods(PeriodKind::Quarter, at(2026, 1, 1), at(2027, 1, 1)).len(), 4);
        assert_eq!(periods(PeriodKind::Year, at(2026, 1, 1), at(2028, 7, 1)).len(), 3);
        let term = periods(PeriodKind::Term, at(2026, 1, 1), at(2026, 3, 10));
        assert_eq!(term, [Period { start: at(2026, 1, 1), end: at(2026, 3, 10), full_end: at(2026, 3, 10) }]);
    }

    #[test]
    fn a_cut_period_needs_a_prorated_minimum() {
        // April 1 to April 16 of a month ending May 1: 15 of 30 days.
        let p = Period { start: at(2026, 4, 1), end: at(2026, 4, 16), full_end: at(2026, 5, 1) };
        assert_eq!(p.prorate(Decimal::from(100)), Decimal::from(50));
        let whole = Period { start: at(2026, 4, 1), end: at(2026, 5, 1), full_end: at(2026, 5, 1) };
        assert_eq!(whole.prorate(Decimal::from(100)), Decimal::from(100));
    }

    fn obligation(kind: PeriodKind) -> Obligation {
        Obligation {
            scope: Scope::Customer,
            measure: Measure::Spend,
            index: 0,
            kind,
            minimum: Decimal::from(100),
            product: None,
        }
    }

    #[test]
    fn a_period_is_judged_only_once_it_has_ended() {
        let p = Period { start: at(2026, 1, 1), end: at(2026, 2, 1), full_end: at(2026, 2, 1) };
        let o = obligation(PeriodKind::Month);
        assert_eq!(judge(o, p, Decimal::from(10), at(2026, 1, 31)).outcome, PeriodOutcome::Open);
        let edge = judge(o, p, Decimal::from(99), at(2026, 2, 1));
        assert_eq!(
            (edge.outcome, edge.shortfall()),
            (PeriodOutcome::Shortfall, Decimal::ONE),
            "ends exactly at as_of"
        );
        assert_eq!(
            judge(o, p, Decimal::from(100), at(2026, 2, 1)).outcome,
            PeriodOutcome::Met,
            "exactly the minimum meets it"
        );
    }

    #[test]
    fn both_scopes_and_both_measures_are_obligations() {
        let mut t = crate::domain::commitment::tests::terms();
        t.account_obligations = Obligations {
            minimum_usage: vec![MinimumUsage {
                period: PeriodKind::Term,
                quantity: Decimal::TEN,
                product_id: None,
            }],
            ..Default::default()
        };
        t.customer_obligations
            .minimum_spend
            .push(MinimumSpend { period: PeriodKind::Quarter, amount: Decimal::ONE });
        let all: Vec<_> = obligations(&t).iter().map(|o| (o.scope, o.measure, o.index)).collect();
        assert_eq!(
            all,
            [
                (Scope::Customer, Measure::Spend, 0),
                (Scope::Customer, Measure::Spend, 1),
                (Scope::Account, Measure::Usage, 0)
            ]
        );
    }

    #[test]
    fn the_next_check_is_the_earliest_unclosed_period_end() {
        let t = crate::domain::commitment::tests::terms();
        let mut closed = std::collections::HashSet::new();
        assert_eq!(next_check(&t, &closed, None), Some(at(2026, 2, 1)));
        let o = obligations(&t)[0];
        let jan = periods(o.kind, t.time_range.start_time, t.time_range.end_time)[0];
        closed.insert(key(&o, &jan));
        assert_eq!(next_check(&t, &closed, None), Some(at(2026, 3, 1)));
        assert_eq!(next_check(&t, &closed, Some(at(2026, 2, 15))), None, "terminated: February never closes");
        let mut none = crate::domain::commitment::tests::terms();
        none.customer_obligations = Default::default();
        assert_eq!(next_check(&none, &closed, None), Some(at(2027, 1, 1)), "without obligations: at the end");
    }

    #[test]
    fn periods_to_judge_start_by_as_of_and_stop_at_a_termination() {
        let t = crate::domain::commitment::tests::terms();
        assert_eq!(periods_to_judge(&t, at(2026, 3, 15), None).len(), 3, "Jan, Feb, and the open March");
        assert_eq!(
            periods_to_judge(&t, at(2026, 3, 15), Some(at(2026, 3, 15))).len(),
            2,
            "March never closes"
        );
    }

    #[test]
    fn quarters_are_anchored_on_the_start_with_their_full_ends() {
        let p = periods(PeriodKind::Quarter, at(2026, 1, 1), at(2026, 5, 15));
        let bounds: Vec<_> = p.iter().map(|p| (p.start, p.end, p.full_end)).collect();
        assert_eq!(
            bounds,
            [
                (at(2026, 1, 1), at(2026, 4, 1), at(2026, 4, 1)),
                (at(2026, 4, 1), at(2026, 5, 15), at(2026, 7, 1))
            ]
        );
    }

    #[test]
    fn a_closed_period_is_met_from_exactly_its_stored_minimum() {
        let p = Period { start: at(2026, 1, 1), end: at(2026, 2, 1), full_end: at(2026, 2, 1) };
        let o = obligation(PeriodKind::Month);
        let closed = |measured: i64| as_closed(o, p, Decimal::from(50), Decimal::from(measured)).outcome;
        assert_eq!((closed(50), closed(49)), (PeriodOutcome::Met, PeriodOutcome::Shortfall));
    }

    #[test]
    fn a_period_starting_at_as_of_is_judged_and_one_ending_at_the_stop_is_kept() {
        let t = crate::domain::commitment::tests::terms();
        assert_eq!(periods_to_judge(&t, at(2026, 3, 1), None).len(), 3, "March starts at as_of");
        assert_eq!(
            periods_to_judge(&t, at(2026, 3, 15), Some(at(2026, 3, 1))).len(),
            2,
            "February ends exactly at the stop"
        );
    }
}
