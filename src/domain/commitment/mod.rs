//! Commitments (seed 000, Amberflo; seed 001, telco): a customer's obligations — minimum
//! spend or usage per period, a minimum term — optionally in a subscription and linked to
//! a promotion or device given in exchange, with a violation policy and an ending config.

pub mod document;
pub mod ending;
pub mod periods;

use chrono::{DateTime, Months, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::authorship::Authorship;
use super::ids::{ApiKeyId, CommitmentId, CustomerId, ProductId};
use super::money::{check_non_negative, check_positive};
use super::text::check_code;
use super::validation::Violations;

/// Most obligations of one kind per scope.
pub const MAX_OBLIGATIONS: usize = 20;

/// Where a commitment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommitmentStatus {
    Active,
    Fulfilled,
    Violated,
    Terminated,
    Ended,
}

impl CommitmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Fulfilled => "FULFILLED",
            Self::Violated => "VIOLATED",
            Self::Terminated => "TERMINATED",
            Self::Ended => "ENDED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Fulfilled, Self::Violated, Self::Terminated, Self::Ended]
            .into_iter()
            .find(|x| x.as_str() == s)
    }

    /// Still in its term: periods keep closing and it may be changed or terminated.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Active | Self::Violated)
    }
}

/// Over what an obligation is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PeriodKind {
    Month,
    Quarter,
    Year,
    Term,
}

impl PeriodKind {
    /// Months in a full period; `None` for the whole term.
    pub fn months(self) -> Option<u32> {
        match self {
            Self::Month => Some(1),
            Self::Quarter => Some(3),
            Self::Year => Some(12),
            Self::Term => None,
        }
    }
}

/// Which usage an obligation counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// All of the customer's usage.
    Customer,
    /// Usage recorded with the commitment's subscription as contract.
    Account,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Account => "account",
        }
    }

    /// The scope `as_str` names.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Customer, Self::Account].into_iter().find(|x| x.as_str() == s)
    }
}

/// What an obligation counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Rated amounts.
    Spend,
    /// Quantities.
    Usage,
}

impl Measure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spend => "spend",
            Self::Usage => "usage",
        }
    }

    /// The measure `as_str` names.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Spend, Self::Usage].into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinimumSpend {
    pub period: PeriodKind,
    #[serde(with = "crate::domain::money::exact")]
    pub amount: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinimumUsage {
    pub period: PeriodKind,
    #[serde(with = "crate::domain::money::exact")]
    pub quantity: Decimal,
    #[serde(default)]
    pub product_id: Option<ProductId>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Obligations {
    #[serde(default)]
    pub minimum_spend: Vec<MinimumSpend>,
    #[serde(default)]
    pub minimum_usage: Vec<MinimumUsage>,
    /// 0: the whole term.
    #[serde(default)]
    pub minimum_term_months: u32,
}

impl Obligations {
    pub fn is_empty(&self) -> bool {
        self.minimum_spend.is_empty() && self.minimum_usage.is_empty() && self.minimum_term_months == 0
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViolationPolicy {
    #[serde(default)]
    pub notify_per_customer_violations: bool,
    #[serde(default)]
    pub notify_per_account_violations: bool,
    #[serde(default)]
    pub compensate_on_customer_violation: bool,
    #[serde(default)]
    pub compensate_on_account_violation: bool,
}

impl ViolationPolicy {
    pub fn notifies(&self, scope: Scope) -> bool {
        match scope {
            Scope::Customer => self.notify_per_customer_violations,
            Scope::Account => self.notify_per_account_violations,
        }
    }

    pub fn compensates(&self, scope: Scope) -> bool {
        match scope {
            Scope::Customer => self.compensate_on_customer_violation,
            Scope::Account => self.compensate_on_account_violation,
        }
    }
}

/// An amount of money with its credit type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Penalty {
    #[serde(with = "crate::domain::money::exact")]
    pub amount: Decimal,
    #[serde(default = "default_credit_type")]
    pub credit_type: String,
}

fn default_credit_type() -> String {
    super::money::DEFAULT_CREDIT_TYPE.to_owned()
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndingConfig {
    #[serde(default)]
    pub plan_id: Option<String>,
    #[serde(default)]
    pub restart_commitment: bool,
    #[serde(default)]
    pub extend_prepaid_card_end_time: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
}

/// What a commitment is, as its owner may set and change it. Its serde form is the
/// mutable part of the commitment's JSON form (the document PATCH works on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    pub subscription_id: Option<Uuid>,
    pub promotion_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    pub product_id: Option<ProductId>,
    pub time_range: TimeRange,
    pub customer_obligations: Obligations,
    pub account_obligations: Obligations,
    pub violation_policy: ViolationPolicy,
    pub early_termination_penalty: Option<Penalty>,
    pub ending_config: EndingConfig,
}

impl Terms {
    /// Each scope with its obligations.
    pub fn scopes(&self) -> [(Scope, &Obligations); 2] {
        [(Scope::Customer, &self.customer_obligations), (Scope::Account, &self.account_obligations)]
    }

    /// The instant before which a termination is early (the end when the minimum term
    /// is 0 or longer than the term).
    pub fn minimum_term_end(&self) -> DateTime<Utc> {
        let months =
            self.customer_obligations.minimum_term_months.max(self.account_obligations.minimum_term_months);
        if months == 0 {
            return self.time_range.end_time;
        }
        self.time_range
            .start_time
            .checked_add_months(Months::new(months))
            .map_or(self.time_range.end_time, |t| t.min(self.time_range.end_time))
    }
}

/// Where a caller expects a commitment to be: each part it names (subscription,
/// promotion, device) must be the commitment's own; parts left out match anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub subscription_id: Option<Uuid>,
    pub promotion_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
}

impl Placement {
    /// Whether commitments with `terms` are under this placement.
    pub fn holds_for(&self, terms: &Terms) -> bool {
        let part = |expected: Option<Uuid>, actual: Option<Uuid>| expected.is_none() || expected == actual;
        part(self.subscription_id, terms.subscription_id)
            && part(self.promotion_id, terms.promotion_id)
            && part(self.device_id, terms.device_id)
    }
}

/// A commitment as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commitment {
    pub id: CommitmentId,
    pub customer: CustomerId,
    pub terms: Terms,
    pub status: CommitmentStatus,
    pub successor: Option<CommitmentId>,
    pub ended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub by: Authorship,
}

/// The products of the organization among those terms name.
pub type KnownProducts = std::collections::HashSet<ProductId>;

fn check_obligations(
    v: &mut Violations,
    scope: &str,
    o: &Obligations,
    term: &TimeRange,
    known: &KnownProducts,
) {
    v.nested(scope, |v| {
        for (list, len) in
            [("minimum_spend", o.minimum_spend.len()), ("minimum_usage", o.minimum_usage.len())]
        {
            if len > MAX_OBLIGATIONS {
                v.add(list, format!("must have at most {MAX_OBLIGATIONS} obligations"));
            }
        }
        for (i, s) in o.minimum_spend.iter().enumerate() {
            check_positive(v, &format!("minimum_spend[{i}].amount"), s.amount);
        }
        for (i, u) in o.minimum_usage.iter().enumerate() {
            check_positive(v, &format!("minimum_usage[{i}].quantity"), u.quantity);
            if let Some(p) = u.product_id
                && !known.contains(&p)
            {
                v.add(format!("minimum_usage[{i}].product_id"), "no such product");
            }
        }
        if o.minimum_term_months > 0
            && term
                .start_time
                .checked_add_months(Months::new(o.minimum_term_months))
                .is_none_or(|t| t > term.end_time)
        {
            v.add("minimum_term_months", "is longer than the time range");
        }
    });
}

/// Checks every rule of a commitment's terms; field names are those of its JSON form.
pub fn validate_terms(t: &Terms, known: &KnownProducts, v: &mut Violations) {
    if t.time_range.end_time <= t.time_range.start_time {
        v.add("time_range.end_time", "must be after the start");
    }
    if let Some(p) = t.product_id
        && !known.contains(&p)
    {
        v.add("product_id", "no such product");
    }
    check_obligations(v, "customer_obligations", &t.customer_obligations, &t.time_range, known);
    check_obligations(v, "account_obligations", &t.account_obligations, &t.time_range, known);
    let counts_account =
        !t.account_obligations.minimum_spend.is_empty() || !t.account_obligations.minimum_usage.is_empty();
    if counts_account && t.subscription_id.is_none() {
        v.add("subscription_id", "is required by account-scope obligations");
    }
    if let Some(p) = &t.early_termination_penalty {
        check_non_negative(v, "early_termination_penalty.amount", p.amount);
        super::money::parse_credit_type(v, "early_termination_penalty.credit_type", &p.credit_type);
    }
    if let Some(plan) = &t.ending_config.plan_id {
        check_code(v, "ending_config.plan_id", plan, 128);
    }
}

/// Rules on a change of terms `to` from `from` for a commitment in its term at `now`.
pub fn validate_change(from: &Terms, to: &Terms, now: DateTime<Utc>, v: &mut Violations) {
    if to.time_range.start_time != from.time_range.start_time && from.time_range.start_time <= now {
        v.add("time_range.start_time", "cannot change once the commitment has started");
    }
    if to.time_range.end_time != from.time_range.end_time && to.time_range.end_time <= now {
        v.add("time_range.end_time", "must be in the future");
    }
}

impl Commitment {
    /// A new commitment on `terms` for `customer`, created at `now` with `key`.
    pub fn create(customer: CustomerId, terms: Terms, now: DateTime<Utc>, key: Option<ApiKeyId>) -> Self {
        Self {
            id: CommitmentId::generate(),
            customer,
            terms,
            status: CommitmentStatus::Active,
            successor: None,
            ended_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
            by: Authorship::created(key),
        }
    }

    /// The next term when it restarts: the same terms, shifted by the term's length.
    pub fn restarted(&self, now: DateTime<Utc>) -> Self {
        let length = self.terms.time_range.end_time - self.terms.time_range.start_time;
        let mut terms = self.terms.clone();
        terms.time_range = TimeRange {
            start_time: self.terms.time_range.end_time,
            end_time: self.terms.time_range.end_time + length,
        };
        // Made by the service, not by a key.
        Self::create(self.customer, terms, now, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).unwrap()
    }

    pub(super) fn terms() -> Terms {
        Terms {
            subscription_id: None,
            promotion_id: None,
            device_id: None,
            product_id: None,
            time_range: TimeRange { start_time: at(2026, 1), end_time: at(2027, 1) },
            customer_obligations: Obligations {
                minimum_spend: vec![MinimumSpend { period: PeriodKind::Month, amount: Decimal::from(100) }],
                ..Default::default()
            },
            account_obligations: Obligations::default(),
            violation_policy: ViolationPolicy::default(),
            early_termination_penalty: None,
            ending_config: EndingConfig::default(),
        }
    }

    fn fields(t: &Terms) -> Vec<String> {
        let mut v = Violations::default();
        validate_terms(t, &KnownProducts::new(), &mut v);
        v.items().iter().map(|i| i.field.clone()).collect()
    }

    #[test]
    fn valid_terms_pass() {
        assert!(fields(&terms()).is_empty());
    }

    #[test]
    fn a_placement_holds_when_every_part_it_names_is_the_commitments() {
        let (sub, promo, device) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let t = Terms { subscription_id: Some(sub), promotion_id: Some(promo), device_id: None, ..terms() };
        assert!(Placement::default().holds_for(&t), "naming nothing matches anything");
        let full = Placement { subscription_id: Some(sub), promotion_id: Some(promo), device_id: None };
        assert!(full.holds_for(&t));
        for wrong in [
            Placement { subscription_id: Some(Uuid::now_v7()), ..full },
            Placement { promotion_id: Some(Uuid::now_v7()), ..full },
            Placement { device_id: Some(device), ..full },
        ] {
            assert!(!wrong.holds_for(&t), "{wrong:?}");
        }
    }

    #[test]
    fn range_amounts_and_minimum_term_are_checked() {
        let mut t = terms();
        t.time_range.end_time = at(2026, 1);
        t.customer_obligations.minimum_spend[0].amount = Decimal::ZERO;
        t.customer_obligations.minimum_term_months = 24;
        t.early_termination_penalty =
            Some(Penalty { amount: Decimal::NEGATIVE_ONE, credit_type: "USD".into() });
        assert_eq!(
            fields(&t),
            [
                "time_range.end_time",
                "customer_obligations.minimum_spend[0].amount",
                "customer_obligations.minimum_term_months",
                "early_termination_penalty.amount"
            ]
        );
    }

    #[test]
    fn account_obligations_need_a_subscription() {
        let mut t = terms();
        t.account_obligations.minimum_usage.push(MinimumUsage {
            period: PeriodKind::Term,
            quantity: Decimal::ONE,
            product_id: None,
        });
        assert_eq!(fields(&t), ["subscription_id"]);
        t.subscription_id = Some(Uuid::now_v7());
        assert!(fields(&t).is_empty());
    }

    #[test]
    fn minimum_term_end_defaults_to_the_end() {
        let mut t = terms();
        assert_eq!(t.minimum_term_end(), at(2027, 1));
        t.customer_obligations.minimum_term_months = 6;
        assert_eq!(t.minimum_term_end(), at(2026, 7));
    }

    #[test]
    fn the_start_cannot_move_once_started() {
        let from = terms();
        let mut to = terms();
        to.time_range.start_time = at(2026, 2);
        let mut v = Violations::default();
        validate_change(&from, &to, at(2026, 3), &mut v);
        assert_eq!(v.items()[0].field, "time_range.start_time");
        let mut v = Violations::default();
        validate_change(&from, &to, at(2025, 12), &mut v);
        assert!(v.is_empty(), "before the start it may move");
    }

    #[test]
    fn a_restart_runs_the_same_terms_for_the_next_term() {
        let c = Commitment::create(CustomerId::generate(), terms(), at(2026, 1), None);
        let next = c.restarted(at(2027, 1));
        assert_eq!(next.terms.time_range.start_time, at(2027, 1));
        assert_eq!(next.terms.time_range.end_time, at(2027, 1) + (at(2027, 1) - at(2026, 1)));
        assert_eq!(next.terms.customer_obligations, c.terms.customer_obligations);
        assert_ne!(next.id, c.id);
    }
}

#[cfg(test)]
#[path = "terms_tests.rs"]
mod terms_tests;
