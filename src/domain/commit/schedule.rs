//! Invoice schedules: explicit dated charges and recurring charges, expanded into dated
//! charges whose amounts sum exactly to what was scheduled.

use chrono::{DateTime, Months, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::domain::money::{MAX_SCALE, round_to_cents};

/// Most charges one recurring schedule may expand to.
pub const MAX_RECURRING_CHARGES: usize = 1000;

/// A charge given as an amount, or as unit price times quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargeAmount {
    Amount(Decimal),
    UnitPrice { unit_price: Decimal, quantity: Decimal },
}

impl ChargeAmount {
    pub fn total(&self) -> Decimal {
        match *self {
            Self::Amount(a) => a,
            Self::UnitPrice { unit_price, quantity } => unit_price * quantity,
        }
    }

    /// The unit price: the amount itself when given as an amount.
    pub fn unit_price(&self) -> Decimal {
        match *self {
            Self::Amount(a) => a,
            Self::UnitPrice { unit_price, .. } => unit_price,
        }
    }

    /// The quantity: 1 when given as an amount.
    pub fn quantity(&self) -> Decimal {
        match *self {
            Self::Amount(_) => Decimal::ONE,
            Self::UnitPrice { quantity, .. } => quantity,
        }
    }
}

/// One explicit invoice charge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceItem {
    pub timestamp: DateTime<Utc>,
    pub charge: ChargeAmount,
}

/// How often a recurring schedule charges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frequency {
    Monthly,
    Quarterly,
    SemiAnnual,
    Annual,
}

impl Frequency {
    pub fn months(self) -> u32 {
        match self {
            Self::Monthly => 1,
            Self::Quarterly => 3,
            Self::SemiAnnual => 6,
            Self::Annual => 12,
        }
    }
}

/// How a recurring schedule spreads its amount over its charges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Distribution {
    Divided,
    DividedRounded,
    Each,
}

/// A charge repeated every `frequency` from `starting_at` until before `ending_before`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecurringSchedule {
    pub distribution: Distribution,
    pub starting_at: DateTime<Utc>,
    pub ending_before: DateTime<Utc>,
    pub frequency: Frequency,
    pub charge: ChargeAmount,
}

/// A commit's invoice schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceSchedule {
    pub credit_type: String,
    pub do_not_invoice: bool,
    pub items: Vec<InvoiceItem>,
    pub recurring: Option<RecurringSchedule>,
}

/// One dated charge of an expanded schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceCharge {
    pub timestamp: DateTime<Utc>,
    pub amount: Decimal,
    pub unit_price: Decimal,
    pub quantity: Decimal,
}

/// The instants of a recurring schedule: `starting_at` plus whole periods, anchored on
/// the start (Jan 31 monthly gives Feb 28/29, Mar 31, ...), before `ending_before`.
/// Stops after `limit` + 1 so callers can tell "too many" without expanding everything.
pub fn charge_times(
    starting_at: DateTime<Utc>,
    ending_before: DateTime<Utc>,
    frequency: Frequency,
    limit: usize,
) -> Vec<DateTime<Utc>> {
    let mut times = Vec::new();
    for k in 0..=limit as u32 {
        let Some(t) = starting_at.checked_add_months(Months::new(k * frequency.months())) else {
            break;
        };
        if t >= ending_before {
            break;
        }
        times.push(t);
    }
    times
}

/// Splits `total` into `n` shares summing exactly to it: every share but the last is
/// `total / n` (to the cent when `to_cents`, else to the finest scale kept), and the last
/// takes the remainder.
pub fn divide(total: Decimal, n: usize, to_cents: bool) -> Vec<Decimal> {
    if n == 0 {
        return Vec::new();
    }
    let quotient = total / Decimal::from(n);
    let share = if to_cents {
        round_to_cents(quotient)
    } else {
        quotient.round_dp_with_strategy(MAX_SCALE, RoundingStrategy::ToZero)
    };
    let mut shares = vec![share; n - 1];
    shares.push(total - share * Decimal::from(n - 1));
    shares
}

impl RecurringSchedule {
    /// The dated charges of this schedule.
    pub fn expand(&self) -> Vec<InvoiceCharge> {
        let times = charge_times(self.starting_at, self.ending_before, self.frequency, MAX_RECURRING_CHARGES);
        match self.distribution {
            Distribution::Each => times
                .into_iter()
                .map(|timestamp| InvoiceCharge {
                    timestamp,
                    amount: self.charge.total(),
                    unit_price: self.charge.unit_price(),
                    quantity: self.charge.quantity(),
                })
                .collect(),
            Distribution::Divided | Distribution::DividedRounded => {
                let to_cents = self.distribution == Distribution::DividedRounded;
                let shares = divide(self.charge.total(), times.len(), to_cents);
                times
                    .into_iter()
                    .zip(shares)
                    .map(|(timestamp, amount)| InvoiceCharge {
                        timestamp,
                        amount,
                        unit_price: amount,
                        quantity: Decimal::ONE,
                    })
                    .collect()
            }
        }
    }
}

impl InvoiceSchedule {
    /// Every charge of the schedule, explicit and recurring, in time order.
    pub fn expand(&self) -> Vec<InvoiceCharge> {
        let mut charges: Vec<InvoiceCharge> = self
            .items
            .iter()
            .map(|i| InvoiceCharge {
                timestamp: i.timestamp,
                amount: i.charge.total(),
                unit_price: i.charge.unit_price(),
                quantity: i.charge.quantity(),
            })
            .collect();
        if let Some(r) = &self.recurring {
            charges.extend(r.expand());
        }
        charges.sort_by_key(|c| c.timestamp);
        charges
    }

    /// What the whole schedule invoices.
    pub fn total(&self) -> Decimal {
        self.expand().iter().map(|c| c.amount).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    fn recurring(distribution: Distribution, amount: Decimal, months: u32) -> RecurringSchedule {
        RecurringSchedule {
            distribution,
            starting_at: at(2026, 1, 1),
            ending_before: at(2026, 1, 1).checked_add_months(Months::new(months)).unwrap(),
            frequency: Frequency::Monthly,
            charge: ChargeAmount::Amount(amount),
        }
    }

    #[test]
    fn monthly_charges_are_anchored_on_the_start_day() {
        let times = charge_times(at(2026, 1, 31), at(2026, 5, 1), Frequency::Monthly, 100);
        assert_eq!(times, [at(2026, 1, 31), at(2026, 2, 28), at(2026, 3, 31), at(2026, 4, 30)]);
    }

    #[test]
    fn end_is_exclusive() {
        let times = charge_times(at(2026, 1, 1), at(2027, 1, 1), Frequency::Quarterly, 100);
        assert_eq!(times.len(), 4);
        assert_eq!(charge_times(at(2026, 1, 1), at(2026, 1, 1), Frequency::Annual, 100).len(), 0);
    }

    #[test]
    fn divided_rounded_gives_cents_and_the_last_takes_the_remainder() {
        let charges = recurring(Distribution::DividedRounded, Decimal::from(100), 3).expand();
        let amounts: Vec<_> = charges.iter().map(|c| c.amount.to_string()).collect();
        assert_eq!(amounts, ["33.33", "33.33", "33.34"]);
    }

    #[test]
    fn divided_keeps_precision_and_sums_exactly() {
        let charges = recurring(Distribution::Divided, Decimal::from(100), 3).expand();
        assert_eq!(charges[0].amount.to_string(), "33.333333333333");
        assert_eq!(charges.iter().map(|c| c.amount).sum::<Decimal>(), Decimal::from(100));
    }

    #[test]
    fn each_charges_the_full_amount_every_time() {
        let mut r = recurring(Distribution::Each, Decimal::ZERO, 3);
        r.charge = ChargeAmount::UnitPrice { unit_price: Decimal::new(250, 2), quantity: Decimal::from(4) };
        let charges = r.expand();
        assert_eq!(charges.len(), 3);
        assert!(charges.iter().all(|c| c.amount == Decimal::from(10) && c.quantity == Decimal::from(4)));
    }

    #[test]
    fn explicit_and_recurring_charges_merge_in_time_order() {
        let s = InvoiceSchedule {
            credit_type: "USD".into(),
            do_not_invoice: false,
            items: vec![InvoiceItem {
                timestamp: at(2026, 2, 15),
                charge: ChargeAmount::Amount(Decimal::ONE),
            }],
            recurring: Some(recurring(Distribution::Each, Decimal::TEN, 3)),
        };
        let times: Vec<_> = s.expand().iter().map(|c| c.timestamp).collect();
        assert_eq!(times, [at(2026, 1, 1), at(2026, 2, 1), at(2026, 2, 15), at(2026, 3, 1)]);
        assert_eq!(s.total(), Decimal::from(31));
    }

    proptest! {
        #[test]
        fn divided_shares_always_sum_to_the_total(cents in 0i64..10_000_000_000, n in 1usize..400, rounded: bool) {
            let total = Decimal::new(cents, 2);
            let shares = divide(total, n, rounded);
            prop_assert_eq!(shares.len(), n);
            prop_assert_eq!(shares.iter().copied().sum::<Decimal>(), total);
            if rounded {
                prop_assert!(shares[..n - 1].iter().all(|s| s.scale() <= 2));
            }
        }
    }

    #[test]
    fn a_charge_has_its_unit_price_or_its_amount_as_one() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(ChargeAmount::Amount(d("12.5")).unit_price(), d("12.5"));
        let per_unit = ChargeAmount::UnitPrice { unit_price: d("2.5"), quantity: d("4") };
        assert_eq!((per_unit.unit_price(), per_unit.total()), (d("2.5"), d("10")));
    }
}
