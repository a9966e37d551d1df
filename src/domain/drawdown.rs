//! The drawdown engine: allocates a rated usage across the balances that apply to it —
//! lowest priority first, then the one ending soonest, then the oldest — splitting it
//! where one balance is not enough. What nothing covers is overage.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::commit::applicability::{Applicability, UsageFacts};
use super::commit::timeline::{LaterEntries, drawable_at, insert_later};
use super::fingerprint::fingerprint;
use super::ids::{AppliedPromotionId, CommitId, CustomerId, ProductId};
use super::money::check_non_negative;
use super::text::{check_code, check_string_map};
use super::validation::{Parsed, Violations};

/// How far in the future a recorded usage may be dated (clock skew between services).
pub const MAX_FUTURE_SKEW: Duration = Duration::hours(1);
/// Most group values a usage may carry.
pub const MAX_GROUP_VALUES: usize = 50;

/// A usage already rated, as the drawdown engine takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RatedUsage {
    pub product_id: ProductId,
    pub amount: Decimal,
    pub credit_type: String,
    pub timestamp: DateTime<Utc>,
    pub group_values: BTreeMap<String, String>,
    pub contract_id: Option<String>,
}

/// A rated usage as read from the wire.
#[derive(Clone, Debug, Default)]
pub struct RatedUsageDraft {
    pub product_id: Parsed<ProductId>,
    pub amount: Parsed<Decimal>,
    pub credit_type: String,
    pub timestamp: Parsed<DateTime<Utc>>,
    pub group_values: BTreeMap<String, String>,
    pub contract_id: Option<String>,
}

/// Checks a usage; `latest` (when given) is the latest timestamp accepted.
pub fn validate_rated_usage(
    d: RatedUsageDraft,
    latest: Option<DateTime<Utc>>,
    v: &mut Violations,
) -> Option<RatedUsage> {
    let product_id = d.product_id.required(v, "product_id");
    let amount = d.amount.required(v, "amount");
    if let Some(a) = amount {
        check_non_negative(v, "amount", a);
    }
    let timestamp = d.timestamp.required(v, "timestamp");
    if let (Some(t), Some(latest)) = (timestamp, latest)
        && t > latest
    {
        v.add("timestamp", "is too far in the future");
    }
    check_string_map(v, "group_values", &d.group_values, MAX_GROUP_VALUES, 256);
    if let Some(c) = &d.contract_id {
        check_code(v, "contract_id", c, 128);
    }
    if !v.is_empty() {
        return None;
    }
    Some(RatedUsage {
        product_id: product_id?,
        amount: amount?,
        credit_type: d.credit_type,
        timestamp: timestamp?,
        group_values: d.group_values,
        contract_id: d.contract_id,
    })
}

impl RatedUsage {
    /// A fingerprint of this usage for `customer`: two requests under one idempotency
    /// key are the same request exactly when their fingerprints are equal.
    pub fn fingerprint(&self, customer: CustomerId) -> [u8; 32] {
        let parts = [
            customer.to_string(),
            self.product_id.to_string(),
            self.amount.normalize().to_string(),
            self.credit_type.clone(),
            self.timestamp.timestamp_micros().to_string(),
            self.contract_id.clone().unwrap_or_default(),
        ];
        fingerprint(&parts, &self.group_values)
    }
}

/// A balance usage can be drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceRef {
    /// One access segment of a commit.
    CommitSegment { commit_id: CommitId, idx: i32 },
    /// One cycle of a credit promotion applied to the customer.
    CreditPromotion { applied: AppliedPromotionId, cycle_start: DateTime<Utc> },
}

/// A drawable balance with what decides its order and applicability.
#[derive(Clone, Debug)]
pub struct Source {
    pub source: SourceRef,
    pub priority: Decimal,
    pub starting_at: DateTime<Utc>,
    pub ending_before: DateTime<Utc>,
    /// Creation order of the owning commit (a v7 id): older draws first on ties.
    pub created_order: Uuid,
    pub credit_type: String,
    pub applicability: Arc<Applicability>,
    /// The balance once every entry has taken effect (a commit segment's `remaining`).
    pub available: Decimal,
    /// What it was granted (a segment's amount; a credit promotion's amount per cycle,
    /// or its total), against which a balance alert's percentage is taken.
    pub granted: Decimal,
    /// Entries effective after the earliest instant being decided (commit segments
    /// only): what [`drawable_at`] needs so late usage never overdraws history.
    pub later: LaterEntries,
    /// A balance shared with other sources (a credit promotion's total across its
    /// cycles): an index into the pools passed to [`allocate`].
    pub pool: Option<usize>,
}

impl Source {
    fn order_key(&self) -> (Decimal, DateTime<Utc>, Uuid, SourceRef) {
        (self.priority, self.ending_before, self.created_order, self.source)
    }

    fn applies(&self, u: &Usage<'_>) -> bool {
        self.available > Decimal::ZERO
            && self.credit_type == u.credit_type
            && self.starting_at <= u.timestamp
            && u.timestamp < self.ending_before
            && self.applicability.applies_to(&u.facts)
    }
}

/// A rated usage to allocate.
#[derive(Clone, Copy, Debug)]
pub struct Usage<'a> {
    pub facts: UsageFacts<'a>,
    pub amount: Decimal,
    pub credit_type: &'a str,
    pub timestamp: DateTime<Utc>,
}

/// One part of a usage drawn from one source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draw {
    pub source: SourceRef,
    pub amount: Decimal,
    pub remaining_after: Decimal,
}

/// Where a usage went: draws in allocation order, and the uncovered rest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allocation {
    pub draws: Vec<Draw>,
    pub overage: Decimal,
}

/// Puts sources in drawing order. `allocate` expects this order.
pub fn sort_sources(sources: &mut [Source]) {
    sources.sort_by_key(Source::order_key);
}

/// Allocates `usage` over `sources` (in the order of [`sort_sources`]), taking what it
/// draws out of their `available` (and their shared `pools`) so the next usage sees the
/// new balances.
pub fn allocate(sources: &mut [Source], pools: &mut [Decimal], usage: &Usage<'_>) -> Allocation {
    let mut left = usage.amount.max(Decimal::ZERO);
    let mut draws = Vec::new();
    for s in sources.iter_mut() {
        if left.is_zero() {
            break;
        }
        if !s.applies(usage) {
            continue;
        }
        let pooled = s.pool.and_then(|i| pools.get(i).copied());
        let drawable = drawable_at(s.available, &s.later, usage.timestamp);
        let take = left.min(drawable).min(pooled.unwrap_or(drawable));
        if take.is_zero() {
            continue;
        }
        s.available -= take;
        insert_later(&mut s.later, usage.timestamp, -take);
        if let Some(i) = s.pool {
            pools[i] -= take;
        }
        left -= take;
        let remaining_after = match s.pool {
            Some(i) => s.available.min(pools[i]),
            None => s.available,
        };
        draws.push(Draw { source: s.source, amount: take, remaining_after });
    }
    Allocation { draws, overage: left }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, m, 1, 0, 0, 0).unwrap()
    }

    fn source(priority: i64, ends: u32, order: u128, available: i64) -> Source {
        Source {
            source: SourceRef::CommitSegment { commit_id: CommitId(Uuid::from_u128(order)), idx: 0 },
            priority: Decimal::from(priority),
            starting_at: at(1),
            ending_before: at(ends),
            created_order: Uuid::from_u128(order),
            credit_type: "USD".into(),
            applicability: Arc::new(Applicability::default()),
            available: Decimal::from(available),
            granted: Decimal::from(available),
            later: Vec::new(),
            pool: None,
        }
    }

    fn run(sources: &mut [Source], amount: i64, when: DateTime<Utc>) -> Allocation {
        sort_sources(sources);
        let groups = BTreeMap::new();
        let usage = Usage {
            facts: UsageFacts {
                product_id: ProductId(Uuid::nil()),
                product_tags: &[],
                group_values: &groups,
                contract_id: None,
            },
            amount: Decimal::from(amount),
            credit_type: "USD",
            timestamp: when,
        };
        allocate(sources, &mut [], &usage)
    }

    fn drawn_from(a: &Allocation) -> Vec<(u128, i64)> {
        a.draws
            .iter()
            .map(|d| {
                let SourceRef::CommitSegment { commit_id, .. } = d.source else {
                    panic!("only commits here")
                };
                (commit_id.0.as_u128(), d.amount.try_into().unwrap())
            })
            .collect()
    }

    #[test]
    fn fingerprint_ignores_trailing_zeros_but_not_values() {
        let u = RatedUsage {
            product_id: ProductId(Uuid::nil()),
            amount: "1.50".parse().unwrap(),
            credit_type: "USD".into(),
            timestamp: at(2),
            group_values: BTreeMap::from([("region".into(), "EU".into())]),
            contract_id: None,
        };
        let c = CustomerId(Uuid::nil());
        let same = RatedUsage { amount: "1.5".parse().unwrap(), ..u.clone() };
        assert_eq!(u.fingerprint(c), same.fingerprint(c));
        let other =
            RatedUsage { group_values: BTreeMap::from([("region".into(), "US".into())]), ..u.clone() };
        assert_ne!(u.fingerprint(c), other.fingerprint(c));
    }

    #[test]
    fn usage_dated_past_the_latest_accepted_time_is_invalid() {
        let d = RatedUsageDraft {
            product_id: Parsed::Valid(ProductId(Uuid::nil())),
            amount: Parsed::Valid(Decimal::ONE),
            credit_type: "USD".into(),
            timestamp: Parsed::Valid(at(6)),
            ..Default::default()
        };
        let mut v = Violations::default();
        assert!(validate_rated_usage(d.clone(), Some(at(5)), &mut v).is_none());
        assert_eq!(v.items()[0].field, "timestamp");
        let mut v = Violations::default();
        assert!(
            validate_rated_usage(d.clone(), Some(at(6)), &mut v).is_some(),
            "the latest accepted instant itself"
        );
        let mut v = Violations::default();
        assert!(validate_rated_usage(d, None, &mut v).is_some());
    }

    #[test]
    fn negative_usage_amount_is_invalid() {
        let d = RatedUsageDraft {
            product_id: Parsed::Valid(ProductId(Uuid::nil())),
            amount: Parsed::Valid(Decimal::NEGATIVE_ONE),
            timestamp: Parsed::Valid(at(2)),
            ..Default::default()
        };
        let mut v = Violations::default();
        assert!(validate_rated_usage(d, None, &mut v).is_none());
        assert_eq!(v.items()[0].field, "amount");
    }

    #[test]
    fn lowest_priority_draws_first() {
        let mut s = vec![source(2, 12, 1, 100), source(1, 12, 2, 100)];
        assert_eq!(drawn_from(&run(&mut s, 30, at(2))), [(2, 30)]);
    }

    #[test]
    fn on_equal_priority_the_segment_ending_soonest_draws_first() {
        let mut s = vec![source(1, 12, 1, 100), source(1, 6, 2, 100)];
        assert_eq!(drawn_from(&run(&mut s, 30, at(2))), [(2, 30)]);
    }

    #[test]
    fn on_equal_priority_and_end_the_oldest_commit_draws_first() {
        let mut s = vec![source(1, 12, 9, 100), source(1, 12, 3, 100)];
        assert_eq!(drawn_from(&run(&mut s, 30, at(2))), [(3, 30)]);
    }

    #[test]
    fn usage_splits_across_commits_and_the_rest_is_overage() {
        let mut s = vec![source(1, 12, 1, 20), source(2, 12, 2, 50)];
        let a = run(&mut s, 100, at(2));
        assert_eq!(drawn_from(&a), [(1, 20), (2, 50)]);
        assert_eq!(a.overage, Decimal::from(30));
        assert_eq!(a.draws[0].remaining_after, Decimal::ZERO);
    }

    #[test]
    fn segments_not_containing_the_timestamp_or_of_other_credit_types_are_skipped() {
        let mut later = source(0, 12, 1, 100);
        later.starting_at = at(6);
        let mut euro = source(0, 12, 2, 100);
        euro.credit_type = "EUR".into();
        let mut s = vec![later, euro, source(5, 12, 3, 100)];
        assert_eq!(drawn_from(&run(&mut s, 10, at(2))), [(3, 10)]);
        assert_eq!(run(&mut s, 10, at(12)).overage, Decimal::from(10), "the end is exclusive");
    }

    #[test]
    fn successive_usages_see_the_balance_left_by_earlier_ones() {
        let mut s = vec![source(1, 12, 1, 50)];
        run(&mut s, 40, at(2));
        let second = run(&mut s, 40, at(3));
        assert_eq!(drawn_from(&second), [(1, 10)]);
        assert_eq!(second.overage, Decimal::from(30));
    }

    #[test]
    fn within_one_batch_earlier_dated_usage_cannot_overdraw_what_later_usage_took() {
        let mut s = vec![source(1, 12, 1, 100)];
        // Usage dated March takes 80; then usage dated February (decided after it) may
        // take only the 20 that leaves March's running balance at zero.
        assert_eq!(drawn_from(&run(&mut s, 80, at(3))), [(1, 80)]);
        let earlier = run(&mut s, 50, at(2));
        assert_eq!((drawn_from(&earlier), earlier.overage), (vec![(1, 20)], Decimal::from(30)));
    }

    #[test]
    fn a_shared_pool_caps_the_sources_that_draw_on_it() {
        // Two cycles of 100 each, sharing a total of 150.
        let mut a = source(1, 6, 1, 100);
        let mut b = source(1, 12, 1, 100);
        a.pool = Some(0);
        b.pool = Some(0);
        b.source = SourceRef::CommitSegment { commit_id: CommitId(Uuid::from_u128(1)), idx: 1 };
        a.starting_at = at(1);
        b.starting_at = at(1);
        let mut sources = vec![a, b];
        sort_sources(&mut sources);
        let mut pools = [Decimal::from(150)];
        let groups = BTreeMap::new();
        let usage = |amount: i64| Usage {
            facts: UsageFacts {
                product_id: ProductId(Uuid::nil()),
                product_tags: &[],
                group_values: &groups,
                contract_id: None,
            },
            amount: Decimal::from(amount),
            credit_type: "USD",
            timestamp: at(2),
        };
        let first = allocate(&mut sources, &mut pools, &usage(120));
        assert_eq!(first.draws.iter().map(|d| d.amount).sum::<Decimal>(), Decimal::from(120));
        assert_eq!(
            first.draws.last().unwrap().remaining_after,
            Decimal::from(30),
            "the pool is the tighter limit"
        );
        let second = allocate(&mut sources, &mut pools, &usage(100));
        assert_eq!(second.overage, Decimal::from(70), "only 30 of the pool was left");
        assert_eq!(pools[0], Decimal::ZERO);
    }

    proptest! {
        #[test]
        fn allocation_conserves_the_amount_and_never_overdraws(
            balances in proptest::collection::vec((0i64..5, 2u32..12, 0i64..1000, proptest::option::of(0usize..2)), 0..8),
            pool_sizes in proptest::collection::vec(0i64..1500, 2),
            amounts in proptest::collection::vec(0i64..2000, 1..10),
        ) {
            let mut sources: Vec<Source> = balances
                .iter()
                .enumerate()
                .map(|(i, (p, end, avail, pool))| Source { pool: *pool, ..source(*p, *end, i as u128 + 1, *avail) })
                .collect();
            sort_sources(&mut sources);
            let mut pools: Vec<Decimal> = pool_sizes.iter().map(|p| Decimal::from(*p)).collect();
            let pools_before = pools.clone();
            let groups = BTreeMap::new();
            let mut drawn_by_pool = [Decimal::ZERO; 2];
            for amount in amounts {
                let usage = Usage {
                    facts: UsageFacts { product_id: ProductId(Uuid::nil()), product_tags: &[], group_values: &groups, contract_id: None },
                    amount: Decimal::from(amount),
                    credit_type: "USD",
                    timestamp: at(1),
                };
                let a = allocate(&mut sources, &mut pools, &usage);
                let drawn: Decimal = a.draws.iter().map(|d| d.amount).sum();
                prop_assert_eq!(drawn + a.overage, Decimal::from(amount));
                prop_assert!(a.draws.iter().all(|d| d.amount > Decimal::ZERO));
                prop_assert!(sources.iter().all(|s| s.available >= Decimal::ZERO));
                prop_assert!(pools.iter().all(|p| *p >= Decimal::ZERO));
                // Draws follow the drawing order.
                let keys: Vec<_> = a.draws.iter().map(|d| sources.iter().position(|s| s.source == d.source).unwrap()).collect();
                prop_assert!(keys.windows(2).all(|w| w[0] < w[1]));
                for d in &a.draws {
                    if let Some(i) = sources.iter().find(|s| s.source == d.source).and_then(|s| s.pool) {
                        drawn_by_pool[i] += d.amount;
                    }
                }
                // Overage only when every balance is used up (or held back by its pool).
                if a.overage > Decimal::ZERO {
                    prop_assert!(sources.iter().all(|s| s.available.is_zero() || s.pool.is_some_and(|i| pools[i].is_zero())));
                }
            }
            for i in 0..2 {
                prop_assert_eq!(pools_before[i] - pools[i], drawn_by_pool[i], "a pool loses exactly what its sources drew");
            }
        }
    }
}
