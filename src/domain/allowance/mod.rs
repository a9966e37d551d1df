//! Usage allowance limits (seed 003, CRM.COM): maxima of rated amount and usage per
//! transaction, day and month, for the customer and per service, service type or service
//! family; a tolerance; blocking of services no allowance includes. Edited as the seed
//! does: top-level fields set, service allowances added, updated and removed by actions.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ids::CustomerId;
use super::money::check_non_negative;
use super::product::Product;
use super::text::check_code;
use super::validation::{Parsed, Violations};

mod update;

pub use update::*;

/// Most warning thresholds a limit set may carry.
pub const MAX_THRESHOLDS: usize = 10;
/// Most service allowances a customer may have.
pub const MAX_SERVICE_ALLOWANCES: usize = 200;

/// What a maximum counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Measure {
    RatedAmount,
    Usage,
}

impl Measure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RatedAmount => "rated_amount",
            Self::Usage => "usage",
        }
    }

    /// The measure `as_str` names.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::RatedAmount, Self::Usage].into_iter().find(|m| m.as_str() == name)
    }
}

/// Over what a maximum counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Period {
    Transaction,
    Day,
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transaction => "transaction",
            Self::Day => "day",
            Self::Month => "month",
        }
    }

    /// The period `as_str` names.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Transaction, Self::Day, Self::Month].into_iter().find(|p| p.as_str() == name)
    }
}

/// The six maxima of a limit set or a service allowance; `None` is no maximum.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maxima {
    pub amount_per_transaction: Option<Decimal>,
    pub amount_per_day: Option<Decimal>,
    pub amount_per_month: Option<Decimal>,
    pub usage_per_transaction: Option<Decimal>,
    pub usage_per_day: Option<Decimal>,
    pub usage_per_month: Option<Decimal>,
}

/// Every (measure, period) pair, in the order checks are reported.
pub const MAXIMA: [(Measure, Period); 6] = [
    (Measure::RatedAmount, Period::Transaction),
    (Measure::RatedAmount, Period::Day),
    (Measure::RatedAmount, Period::Month),
    (Measure::Usage, Period::Transaction),
    (Measure::Usage, Period::Day),
    (Measure::Usage, Period::Month),
];

impl Maxima {
    pub fn get(&self, measure: Measure, period: Period) -> Option<Decimal> {
        *self.slot(measure, period)
    }

    fn slot(&self, measure: Measure, period: Period) -> &Option<Decimal> {
        match (measure, period) {
            (Measure::RatedAmount, Period::Transaction) => &self.amount_per_transaction,
            (Measure::RatedAmount, Period::Day) => &self.amount_per_day,
            (Measure::RatedAmount, Period::Month) => &self.amount_per_month,
            (Measure::Usage, Period::Transaction) => &self.usage_per_transaction,
            (Measure::Usage, Period::Day) => &self.usage_per_day,
            (Measure::Usage, Period::Month) => &self.usage_per_month,
        }
    }

    fn slot_mut(&mut self, measure: Measure, period: Period) -> &mut Option<Decimal> {
        match (measure, period) {
            (Measure::RatedAmount, Period::Transaction) => &mut self.amount_per_transaction,
            (Measure::RatedAmount, Period::Day) => &mut self.amount_per_day,
            (Measure::RatedAmount, Period::Month) => &mut self.amount_per_month,
            (Measure::Usage, Period::Transaction) => &mut self.usage_per_transaction,
            (Measure::Usage, Period::Day) => &mut self.usage_per_day,
            (Measure::Usage, Period::Month) => &mut self.usage_per_month,
        }
    }

    /// Applies a patch: given fields are set (or cleared), the others kept.
    pub fn patch(&mut self, p: &MaximaPatch) {
        for (measure, period) in MAXIMA {
            if let Some(value) = p.get(measure, period) {
                *self.slot_mut(measure, period) = value;
            }
        }
    }
}

/// Changes to maxima: `None` keeps a field, `Some(None)` clears it, `Some(Some(x))` sets it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MaximaPatch(pub [Option<Option<Decimal>>; 6]);

impl MaximaPatch {
    pub fn get(&self, measure: Measure, period: Period) -> Option<Option<Decimal>> {
        let i = MAXIMA.iter().position(|m| *m == (measure, period)).unwrap_or(0);
        self.0[i]
    }

    /// A patch that sets every field to what `m` holds (a full replacement).
    pub fn replacing_with(m: &Maxima) -> Self {
        Self(MAXIMA.map(|(measure, period)| Some(m.get(measure, period))))
    }
}

/// What a service allowance applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Selector {
    /// A product by code.
    Service(String),
    ServiceType(String),
    ServiceFamily(String),
}

impl Selector {
    /// True when `product` falls under this selector.
    pub fn matches(&self, product: &Product) -> bool {
        match self {
            Self::Service(code) => product.code == *code,
            Self::ServiceType(t) => product.service_type.as_deref() == Some(t.as_str()),
            Self::ServiceFamily(f) => product.service_family.as_deref() == Some(f.as_str()),
        }
    }

    /// The scope name used in checks, totals and violations ("service:CREED", ...).
    pub fn scope(&self) -> String {
        match self {
            Self::Service(code) => format!("service:{code}"),
            Self::ServiceType(t) => format!("service_type:{t}"),
            Self::ServiceFamily(f) => format!("service_family:{f}"),
        }
    }

    /// The selector of a scope name `scope` made; `None` for the customer's own
    /// ("customer") or a name it never makes.
    pub fn from_scope(scope: &str) -> Option<Self> {
        let (kind, value) = scope.split_once(':')?;
        let make = match kind {
            "service" => Self::Service,
            "service_type" => Self::ServiceType,
            "service_family" => Self::ServiceFamily,
            _ => return None,
        };
        Some(make(value.to_owned()))
    }

    pub fn value(&self) -> &str {
        match self {
            Self::Service(v) | Self::ServiceType(v) | Self::ServiceFamily(v) => v,
        }
    }
}

/// Maxima for the usage of one selector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAllowance {
    pub selector: Selector,
    pub maxima: Maxima,
}

/// A customer's allowance limits as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct AllowanceLimits {
    pub customer_id: CustomerId,
    pub settings: LimitSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub by: super::authorship::Authorship,
}

impl AllowanceLimits {
    /// `settings` stored for `customer` at `now` by `key`: the first version, or the one
    /// after `current`.
    pub fn next(
        current: Option<&Self>,
        customer: CustomerId,
        settings: LimitSettings,
        now: DateTime<Utc>,
        key: Option<super::ids::ApiKeyId>,
    ) -> Self {
        use super::authorship::Authorship;
        Self {
            customer_id: customer,
            settings,
            created_at: current.map_or(now, |c| c.created_at),
            updated_at: now,
            version: current.map_or(1, |c| c.version + 1),
            by: current.map_or(Authorship::created(key), |c| c.by.changed(key)),
        }
    }
}

/// The limits themselves, without bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitSettings {
    pub maxima: Maxima,
    /// Credit type (upper-case) of every maximum on rated amount.
    pub currency: String,
    /// Tolerance in percent; `None` is 0.
    pub tolerance_percent: Option<Decimal>,
    pub block_not_included: bool,
    pub soft: bool,
    /// Sorted, distinct percentages in (0, 100].
    pub warning_thresholds: Vec<Decimal>,
    pub services: Vec<ServiceAllowance>,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            maxima: Maxima::default(),
            currency: super::money::DEFAULT_CREDIT_TYPE.to_owned(),
            tolerance_percent: None,
            block_not_included: false,
            soft: false,
            warning_thresholds: Vec::new(),
            services: Vec::new(),
        }
    }
}

impl LimitSettings {
    /// `maximum` raised by the tolerance.
    pub fn with_tolerance(&self, maximum: Decimal) -> Decimal {
        match self.tolerance_percent {
            Some(p) => maximum + maximum * p / Decimal::ONE_HUNDRED,
            None => maximum,
        }
    }

    /// The service allowances that apply to `product`.
    pub fn allowances_for<'a>(
        &'a self,
        product: &'a Product,
    ) -> impl Iterator<Item = &'a ServiceAllowance> + 'a {
        self.services.iter().filter(move |s| s.selector.matches(product))
    }
}

#[cfg(test)]
mod edge_tests;
