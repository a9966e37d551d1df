//! Credit promotions (seed 000's applied promotions): credit per cycle and/or in total,
//! applied to a customer with a priority and a time range, drawn down by usage in the
//! same order as commits.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Months, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::authorship::Authorship;
use super::commit::Applicability;
use super::drawdown::{Source, SourceRef};
use super::ids::{ApiKeyId, AppliedPromotionId, CreditPromotionId, CustomerId, ProductId};
use super::money::check_positive;
use super::text::{check_code, check_name};
use super::validation::{Parsed, Violations};

/// How often a per-cycle amount renews.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cycle {
    Monthly,
    Quarterly,
    Annual,
}

impl Cycle {
    pub fn months(self) -> u32 {
        match self {
            Self::Monthly => 1,
            Self::Quarterly => 3,
            Self::Annual => 12,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "MONTHLY",
            Self::Quarterly => "QUARTERLY",
            Self::Annual => "ANNUAL",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "MONTHLY" => Some(Self::Monthly),
            "QUARTERLY" => Some(Self::Quarterly),
            "ANNUAL" => Some(Self::Annual),
            _ => None,
        }
    }
}

/// A credit promotion definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditPromotion {
    pub id: CreditPromotionId,
    pub name: String,
    pub credit_type: String,
    pub amount_per_cycle: Option<Decimal>,
    pub total_amount: Option<Decimal>,
    pub cycle: Cycle,
    pub applicability: Applicability,
    pub created_at: DateTime<Utc>,
    pub by: Authorship,
}

/// A credit promotion definition as read from the wire.
#[derive(Clone, Debug)]
pub struct CreditPromotionDraft {
    pub name: String,
    pub credit_type: String,
    pub amount_per_cycle: Parsed<Decimal>,
    pub total_amount: Parsed<Decimal>,
    pub cycle: Cycle,
    pub product_ids: Vec<Parsed<ProductId>>,
    pub product_tags: Vec<String>,
}

/// Checks a definition; `known` are the org's products among those it names.
pub fn validate_promotion(
    d: CreditPromotionDraft,
    known: &[ProductId],
    (now, key): (DateTime<Utc>, Option<ApiKeyId>),
    v: &mut Violations,
) -> Option<CreditPromotion> {
    check_name(v, "name", &d.name, 200);
    if d.amount_per_cycle.is_absent() && d.total_amount.is_absent() {
        v.add("amount_per_cycle", "or total_amount is required");
    }
    for (field, amount) in [("amount_per_cycle", &d.amount_per_cycle), ("total_amount", &d.total_amount)] {
        if let Some(a) = amount.valid() {
            check_positive(v, field, *a);
        }
    }
    let mut product_ids = Vec::new();
    for (i, p) in d.product_ids.iter().enumerate() {
        if let Some(p) = p.valid() {
            if !known.contains(p) {
                v.add(format!("applicable_product_ids[{i}]"), "no such product");
            }
            product_ids.push(*p);
        }
    }
    for (i, t) in d.product_tags.iter().enumerate() {
        check_code(v, &format!("applicable_product_tags[{i}]"), t, 128);
    }
    if !v.is_empty() {
        return None;
    }
    Some(CreditPromotion {
        id: CreditPromotionId::generate(),
        name: d.name,
        credit_type: d.credit_type,
        amount_per_cycle: d.amount_per_cycle.into_valid(),
        total_amount: d.total_amount.into_valid(),
        cycle: d.cycle,
        applicability: Applicability { product_ids, product_tags: d.product_tags, ..Default::default() },
        created_at: now,
        by: Authorship::created(key),
    })
}

/// A credit promotion applied to a customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedPromotion {
    pub id: AppliedPromotionId,
    pub customer: CustomerId,
    pub promotion: CreditPromotionId,
    pub product: Option<ProductId>,
    pub priority: Decimal,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub commitment_id: Option<Uuid>,
    pub relation_id: Option<String>,
    pub added_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
    pub removal_context: Option<String>,
    pub total_used: Decimal,
    pub by: Authorship,
}

/// An application as read from the wire.
#[derive(Clone, Debug, Default)]
pub struct ApplicationDraft {
    pub customer: Parsed<CustomerId>,
    pub promotion: Parsed<CreditPromotionId>,
    pub product: Parsed<ProductId>,
    pub priority: Parsed<Decimal>,
    pub starts_at: Parsed<DateTime<Utc>>,
    pub ends_at: Parsed<DateTime<Utc>>,
    pub commitment_id: Option<Uuid>,
    pub relation_id: Option<String>,
}

/// What an application names that exists in the organization.
#[derive(Clone, Debug, Default)]
pub struct ApplicationRefs {
    pub customer_exists: bool,
    pub promotion_exists: bool,
    pub product_exists: bool,
}

/// Checks an application (field names relative to the applied promotion).
pub fn validate_application(
    d: ApplicationDraft,
    refs: &ApplicationRefs,
    (now, key): (DateTime<Utc>, Option<ApiKeyId>),
    v: &mut Violations,
) -> Option<AppliedPromotion> {
    let customer = d.customer.required(v, "customer_id");
    if customer.is_some() && !refs.customer_exists {
        v.add("customer_id", "no such customer");
    }
    let promotion = d.promotion.required(v, "promotion_id");
    if promotion.is_some() && !refs.promotion_exists {
        v.add("promotion_id", "no such credit promotion");
    }
    let product = d.product.into_valid();
    if product.is_some() && !refs.product_exists {
        v.add("product_id", "no such product");
    }
    let priority = d.priority.required(v, "priority");
    let starts_at = d.starts_at.required(v, "applied_time_range.start_time");
    let ends_at = d.ends_at.into_valid();
    if let (Some(s), Some(e)) = (starts_at, ends_at)
        && e <= s
    {
        v.add("applied_time_range.end_time", "must be after the start");
    }
    if let Some(r) = &d.relation_id {
        check_code(v, "relation_id", r, 128);
    }
    if !v.is_empty() {
        return None;
    }
    Some(AppliedPromotion {
        id: AppliedPromotionId::generate(),
        customer: customer?,
        promotion: promotion?,
        product,
        priority: priority?,
        starts_at: starts_at?,
        ends_at,
        commitment_id: d.commitment_id,
        relation_id: d.relation_id,
        added_at: now,
        removed_at: None,
        removal_context: None,
        total_used: Decimal::ZERO,
        by: Authorship::created(key),
    })
}

/// Far future: the end of an open-ended application.
fn open_end() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl AppliedPromotion {
    /// End of the application (open-ended: the far future).
    pub fn end(&self) -> DateTime<Utc> {
        self.ends_at.unwrap_or_else(open_end)
    }

    /// The cycle containing `t` (clipped to the application), `None` outside it. A
    /// promotion without a per-cycle amount has one cycle: the whole application.
    pub fn cycle_at(&self, p: &CreditPromotion, t: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if t < self.starts_at || t >= self.end() {
            return None;
        }
        if p.amount_per_cycle.is_none() {
            return Some((self.starts_at, self.end()));
        }
        let months = p.cycle.months();
        // Anchored on the start: cycle k starts at start + k periods.
        let mut k = 0u32;
        loop {
            let start = self.starts_at.checked_add_months(Months::new(k * months))?;
            let next = self.starts_at.checked_add_months(Months::new((k + 1) * months))?;
            if t < next {
                return Some((start, next.min(self.end())));
            }
            k += 1;
        }
    }

    /// Every cycle overlapping `[from, until]`.
    pub fn cycles_between(
        &self,
        p: &CreditPromotion,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let mut out = Vec::new();
        let mut t = from.max(self.starts_at);
        while t <= until {
            let Some(c) = self.cycle_at(p, t) else { break };
            out.push(c);
            if c.1 >= self.end() {
                break;
            }
            t = c.1;
        }
        out
    }

    /// What the application covers: the promotion's products, narrowed to one product
    /// when the application names one.
    pub fn applicability(&self, p: &CreditPromotion) -> Applicability {
        match self.product {
            Some(product) => Applicability { product_ids: vec![product], ..Default::default() },
            None => p.applicability.clone(),
        }
    }
}

/// What is left of an application at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmountsLeft {
    pub in_cycle: Decimal,
    pub total: Decimal,
}

/// What is left of `a` at `at`, given what its current cycle has used.
pub fn amounts_left(
    a: &AppliedPromotion,
    p: &CreditPromotion,
    cycle_used: Decimal,
    at: DateTime<Utc>,
) -> AmountsLeft {
    let active = a.removed_at.is_none() && a.cycle_at(p, at).is_some();
    let total_left = p.total_amount.map(|t| (t - a.total_used).max(Decimal::ZERO));
    let cycle_left = p.amount_per_cycle.map(|c| (c - cycle_used).max(Decimal::ZERO));
    let (in_cycle, total) = match (cycle_left, total_left) {
        (Some(c), Some(t)) => (c.min(t), t),
        (Some(c), None) => (c, c),
        (None, Some(t)) => (t, t),
        (None, None) => (Decimal::ZERO, Decimal::ZERO),
    };
    if active {
        AmountsLeft { in_cycle, total }
    } else {
        AmountsLeft { in_cycle: Decimal::ZERO, total: total_left.unwrap_or_default() }
    }
}

/// The drawable balances of an application for usage dated in `[from, until]`: one per
/// cycle, all drawing on one shared pool when there is a total. `used` gives each cycle's
/// use so far; `pools` receives the pool, whose index the sources carry.
pub fn sources_of(
    a: &AppliedPromotion,
    p: &CreditPromotion,
    used: &HashMap<DateTime<Utc>, Decimal>,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    pools: &mut Vec<Decimal>,
) -> Vec<Source> {
    if a.removed_at.is_some() {
        return Vec::new();
    }
    let pool = p.total_amount.map(|t| {
        pools.push((t - a.total_used).max(Decimal::ZERO));
        pools.len() - 1
    });
    let applicability = Arc::new(a.applicability(p));
    a.cycles_between(p, from, until)
        .into_iter()
        .map(|(start, end)| {
            let cycle_used = used.get(&start).copied().unwrap_or_default();
            let available = match (p.amount_per_cycle, pool) {
                (Some(c), _) => (c - cycle_used).max(Decimal::ZERO),
                (None, Some(i)) => pools[i],
                (None, None) => Decimal::ZERO,
            };
            Source {
                source: SourceRef::CreditPromotion { applied: a.id, cycle_start: start },
                priority: a.priority,
                starting_at: start,
                ending_before: end,
                created_order: a.id.uuid(),
                credit_type: p.credit_type.clone(),
                applicability: Arc::clone(&applicability),
                available,
                granted: p.amount_per_cycle.or(p.total_amount).unwrap_or_default(),
                later: Vec::new(),
                pool,
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "credit_tests.rs"]
mod tests;
