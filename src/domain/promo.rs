//! Billing promos (seed 002): buy-N-take-M and rewards, their defaults and rules, and the
//! evaluation of a basket against them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::authorship::last_changed_by;
use super::ids::{ApiKeyId, CustomerId, ProductId, PromoId, RewardId};
use super::product::ProductKind;
use super::validation::{Parsed, Violations};

/// Most lines a basket may have.
pub const MAX_BASKET_LINES: usize = 1000;

/// Kind of billing promo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PromoType {
    Rewards,
    BuyNTakeM,
}

impl PromoType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rewards => "REWARDS",
            Self::BuyNTakeM => "BUY_N_TAKE_M",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "REWARDS" => Some(Self::Rewards),
            "BUY_N_TAKE_M" => Some(Self::BuyNTakeM),
            _ => None,
        }
    }
}

/// A billing promo as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillingPromo {
    pub id: PromoId,
    pub promo_type: PromoType,
    pub validity_start: DateTime<Utc>,
    pub validity_end: Option<DateTime<Utc>>,
    pub product_type: ProductKind,
    pub product: ProductId,
    pub product_n: u32,
    pub reward_product_type: ProductKind,
    pub reward_product: ProductId,
    pub reward_product_m: u32,
    pub created_at: DateTime<Utc>,
    pub created_by: ApiKeyId,
    /// The key that last changed it (`None`: none since it was created).
    pub updated_by: Option<ApiKeyId>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl BillingPromo {
    /// True when the promo is valid at `t` (start inclusive, end exclusive).
    pub fn valid_at(&self, t: DateTime<Utc>) -> bool {
        self.validity_start <= t && self.validity_end.is_none_or(|end| t < end)
    }
}

/// A promo as read from the wire.
#[derive(Clone, Debug, Default)]
pub struct PromoDraft {
    pub promo_type: Parsed<PromoType>,
    pub validity_start: Parsed<DateTime<Utc>>,
    pub validity_end: Parsed<DateTime<Utc>>,
    pub product_type: Parsed<ProductKind>,
    pub product: Parsed<ProductId>,
    pub product_n: Option<u32>,
    pub reward_product_type: Parsed<ProductKind>,
    pub reward_product: Parsed<ProductId>,
    pub reward_product_m: Option<u32>,
    pub created_at: Parsed<DateTime<Utc>>,
}

/// The kinds of the products a promo names that exist in the organization.
pub type ProductKinds = HashMap<ProductId, ProductKind>;

fn check_product(
    v: &mut Violations,
    field: &str,
    id: ProductId,
    kind: Option<ProductKind>,
    kinds: &ProductKinds,
) {
    match (kinds.get(&id), kind) {
        (None, _) => v.add(field, "no such product"),
        (Some(actual), Some(expected)) if *actual != expected => {
            v.add(field, format!("is a {}, not a {}", actual.as_str(), expected.as_str()));
        }
        _ => {}
    }
}

fn check_count(v: &mut Violations, field: &str, n: u32) {
    if n == 0 {
        v.add(field, "must be at least 1");
    }
}

/// Checks a draft and fills in the seed's defaults: validity from `now`, N of 1, the
/// reward product (and its type) of the bought one, M of N, created `now` by `created_by`.
pub fn validate_new(
    d: PromoDraft,
    kinds: &ProductKinds,
    now: DateTime<Utc>,
    created_by: ApiKeyId,
    v: &mut Violations,
) -> Option<BillingPromo> {
    let promo_type = d.promo_type.required(v, "type");
    let product_type = d.product_type.required(v, "product_type");
    let product = d.product.required(v, "product");
    if let Some(p) = product {
        check_product(v, "product", p, product_type, kinds);
    }
    let product_n = d.product_n.unwrap_or(1);
    check_count(v, "product_n", product_n);
    let type_given = !d.reward_product_type.is_absent();
    let reward_product_type = match d.reward_product_type {
        Parsed::Absent => product_type,
        other => other.into_valid(),
    };
    let reward_product = match d.reward_product {
        Parsed::Absent => {
            // The defaulted reward product must still be of the reward type given.
            if let (Some(p), true) = (product, type_given) {
                check_product(v, "reward_product_type", p, reward_product_type, kinds);
            }
            product
        }
        Parsed::Valid(p) => {
            check_product(v, "reward_product", p, reward_product_type, kinds);
            Some(p)
        }
        Parsed::Invalid => None,
    };
    let reward_product_m = d.reward_product_m.unwrap_or(product_n);
    check_count(v, "reward_product_m", reward_product_m);
    let validity_start = match d.validity_start {
        Parsed::Absent => Some(now),
        other => other.into_valid(),
    };
    let validity_end = d.validity_end.into_valid();
    if let (Some(start), Some(end)) = (validity_start, validity_end)
        && end <= start
    {
        v.add("validity_end_time", "must be after validity_start_time");
    }
    let created_at = match d.created_at {
        Parsed::Absent => Some(now),
        other => other.into_valid(),
    };
    if !v.is_empty() {
        return None;
    }
    Some(BillingPromo {
        id: PromoId::generate(),
        promo_type: promo_type?,
        validity_start: validity_start?,
        validity_end,
        product_type: product_type?,
        product: product?,
        product_n,
        reward_product_type: reward_product_type?,
        reward_product: reward_product?,
        reward_product_m,
        created_at: created_at?,
        created_by,
        updated_by: Some(created_by),
        updated_at: now,
        version: 1,
    })
}

/// Changes to a promo; `None` keeps a field (`validity_end: Some(None)` removes the end).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PromoChanges {
    pub validity_start: Option<DateTime<Utc>>,
    pub validity_end: Option<Option<DateTime<Utc>>>,
    pub product_n: Option<u32>,
    pub reward_product_type: Option<ProductKind>,
    pub reward_product: Option<ProductId>,
    pub reward_product_m: Option<u32>,
}

/// Fields UpdateBillingPromo may change, as named in its update mask.
pub const MUTABLE_FIELDS: [&str; 6] = [
    "validity_start_time",
    "validity_end_time",
    "product_n",
    "reward_product_type",
    "reward_product",
    "reward_product_m",
];

/// The promo after `c`, one version later; every broken rule goes to `v`.
pub fn apply_changes(
    p: &BillingPromo,
    c: PromoChanges,
    kinds: &ProductKinds,
    (now, key): (DateTime<Utc>, Option<ApiKeyId>),
    v: &mut Violations,
) -> BillingPromo {
    let mut next = p.clone();
    next.updated_by = last_changed_by(p.updated_by, key);
    if let Some(s) = c.validity_start {
        next.validity_start = s;
    }
    if let Some(e) = c.validity_end {
        next.validity_end = e;
    }
    if next.validity_end.is_some_and(|end| end <= next.validity_start) {
        v.add("validity_end_time", "must be after validity_start_time");
    }
    if let Some(n) = c.product_n {
        check_count(v, "product_n", n);
        next.product_n = n;
    }
    if let Some(m) = c.reward_product_m {
        check_count(v, "reward_product_m", m);
        next.reward_product_m = m;
    }
    if let Some(t) = c.reward_product_type {
        next.reward_product_type = t;
    }
    if let Some(r) = c.reward_product {
        next.reward_product = r;
    }
    if c.reward_product.is_some() || c.reward_product_type.is_some() {
        // Blame the field the caller changed: the product, or the type alone.
        let field = if c.reward_product.is_some() { "reward_product" } else { "reward_product_type" };
        check_product(v, field, next.reward_product, Some(next.reward_product_type), kinds);
    }
    next.updated_at = now;
    next.version += 1;
    next
}

/// One line of a basket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BasketLine {
    pub product: ProductId,
    pub quantity: i64,
}

/// Checks basket lines: 1 to 1000, each product once, quantities of at least 1.
pub fn check_lines(v: &mut Violations, lines: &[Parsed<BasketLine>]) {
    if lines.is_empty() || lines.len() > MAX_BASKET_LINES {
        v.add("lines", format!("must hold 1 to {MAX_BASKET_LINES} lines"));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(l) = l.valid() else { continue };
        if l.quantity < 1 {
            v.add(format!("lines[{i}].quantity"), "must be at least 1");
        }
        if !seen.insert(l.product) {
            v.add(format!("lines[{i}].product_id"), "repeats a product of an earlier line");
        }
    }
}

/// Why a candidate promo did not apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SkipReason {
    Expired,
    NotYetValid,
    QuantityTooLow,
    NothingToMakeFree,
}

/// A promo that applied.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppliedPromo {
    pub promo_id: PromoId,
    pub promo_type: PromoType,
    pub product: ProductId,
    pub reward_product: ProductId,
    pub groups: i64,
    pub units: i64,
}

/// A candidate promo that did not apply.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SkippedPromo {
    pub promo_id: PromoId,
    pub reason: SkipReason,
    pub message: String,
}

/// A basket line after the promos.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineOutcome {
    pub product: ProductId,
    pub quantity: i64,
    pub free_units: i64,
}

/// Everything decided about a basket.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BasketOutcome {
    pub applied: Vec<AppliedPromo>,
    pub skipped: Vec<SkippedPromo>,
    pub lines: Vec<LineOutcome>,
}

/// A buy-N-take-M on the same product over `available` units: every full group of N + M
/// gives M, and a last partial group gives what it holds beyond N. Returns (groups, free
/// units, units used as qualifiers or made free).
fn same_product(available: i64, n: i64, m: i64) -> (i64, i64, i64) {
    let group = n + m;
    let (full, rest) = (available / group, available % group);
    let partial = (rest - n).clamp(0, m);
    let used = full * group + if partial > 0 { n + partial } else { 0 };
    (full + i64::from(partial > 0), full * m + partial, used)
}

/// Evaluates `lines` at `at` against `promos` (the candidates: promos on a product of the
/// basket). Promos apply in validity-start then id order, and do not stack: each one uses
/// up the units that qualified for it and the units it made free, which later promos
/// neither count as bought nor make free again.
pub fn evaluate_basket(promos: &[BillingPromo], lines: &[BasketLine], at: DateTime<Utc>) -> BasketOutcome {
    let quantity: BTreeMap<ProductId, i64> = lines.iter().map(|l| (l.product, l.quantity)).collect();
    let mut free: BTreeMap<ProductId, i64> = BTreeMap::new();
    let mut used: BTreeMap<ProductId, i64> = BTreeMap::new();
    let left = |used: &BTreeMap<ProductId, i64>, p: ProductId| {
        quantity.get(&p).copied().unwrap_or(0) - used.get(&p).copied().unwrap_or(0)
    };
    let mut ordered: Vec<&BillingPromo> =
        promos.iter().filter(|p| quantity.contains_key(&p.product)).collect();
    ordered.sort_by_key(|p| (p.validity_start, p.id));
    let mut out = BasketOutcome::default();
    for p in ordered {
        let skip = |reason, message: String| SkippedPromo { promo_id: p.id, reason, message };
        if at < p.validity_start {
            out.skipped
                .push(skip(SkipReason::NotYetValid, format!("valid from {}", p.validity_start.to_rfc3339())));
            continue;
        }
        if p.validity_end.is_some_and(|end| end <= at) {
            out.skipped.push(skip(SkipReason::Expired, "its validity has ended".into()));
            continue;
        }
        let bought = left(&used, p.product);
        let (n, m) = (i64::from(p.product_n), i64::from(p.reward_product_m));
        let same = p.promo_type == PromoType::BuyNTakeM && p.reward_product == p.product;
        // Groups the bought units allow. On the same product only whether there is one
        // matters here (more than N bought): `same_product` counts its groups of N + M.
        let eligible = if same { i64::from(bought > n) } else { bought / n };
        if eligible == 0 {
            let needed = if same { n + 1 } else { n };
            out.skipped
                .push(skip(SkipReason::QuantityTooLow, format!("needs {needed} units bought, has {bought}")));
            continue;
        }
        // Groups that count, units granted or made free, and units used as qualifiers.
        let (groups, units, qualifiers) = match p.promo_type {
            PromoType::Rewards => (eligible, eligible * m, eligible * n),
            PromoType::BuyNTakeM if same => {
                let (groups, units, used_units) = same_product(bought, n, m);
                (groups, units, used_units - units)
            }
            PromoType::BuyNTakeM => {
                let units = (eligible * m).min(left(&used, p.reward_product));
                // Only the groups that made something free use up their N units.
                let groups = (units + m - 1) / m;
                (groups, units, groups * n)
            }
        };
        if units == 0 {
            out.skipped.push(skip(
                SkipReason::NothingToMakeFree,
                "no unit of the reward product is left to make free".into(),
            ));
            continue;
        }
        *used.entry(p.product).or_default() += qualifiers;
        if p.promo_type == PromoType::BuyNTakeM {
            *used.entry(p.reward_product).or_default() += units;
            *free.entry(p.reward_product).or_default() += units;
        }
        out.applied.push(AppliedPromo {
            promo_id: p.id,
            promo_type: p.promo_type,
            product: p.product,
            reward_product: p.reward_product,
            groups,
            units,
        });
    }
    out.lines = lines
        .iter()
        .map(|l| LineOutcome {
            product: l.product,
            quantity: l.quantity,
            free_units: free.get(&l.product).copied().unwrap_or(0),
        })
        .collect();
    out
}

/// Reward units granted to a customer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reward {
    pub id: RewardId,
    pub customer: CustomerId,
    pub promo: PromoId,
    pub product: ProductId,
    pub units: i64,
    pub redeemed_units: i64,
    pub basket_id: String,
    pub granted_at: DateTime<Utc>,
}

impl Reward {
    pub fn available(&self) -> i64 {
        self.units - self.redeemed_units
    }
}

/// The rewards an evaluated basket grants `customer`.
pub fn rewards_of(
    outcome: &BasketOutcome,
    customer: CustomerId,
    basket_id: &str,
    now: DateTime<Utc>,
) -> Vec<Reward> {
    outcome
        .applied
        .iter()
        .filter(|a| a.promo_type == PromoType::Rewards)
        .map(|a| Reward {
            id: RewardId::generate(),
            customer,
            promo: a.promo_id,
            product: a.reward_product,
            units: a.units,
            redeemed_units: 0,
            basket_id: basket_id.to_owned(),
            granted_at: now,
        })
        .collect()
}

#[cfg(test)]
#[path = "promo_tests.rs"]
mod tests;
