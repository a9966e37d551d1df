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

/// A service allowance change (seed 003's `action`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowanceChange {
    Add(ServiceAllowance),
    Update { selector: Selector, patch: MaximaPatch },
    Remove(Selector),
}

/// An UpdateAllowanceLimits call: the top-level fields given, then the changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitsUpdate {
    pub maxima: MaximaPatch,
    pub currency: Option<String>,
    pub tolerance_percent: Option<Option<Decimal>>,
    pub block_not_included: Option<bool>,
    pub soft: Option<bool>,
    pub warning_thresholds: Option<Vec<Decimal>>,
    pub changes: Vec<AllowanceChange>,
}

/// Checks one maximum (parsed or absent): zero or more.
pub fn check_maximum(v: &mut Violations, field: &str, value: &Parsed<Decimal>) {
    if let Some(d) = value.valid() {
        check_non_negative(v, field, *d);
    }
}

/// Checks a tolerance percentage: 0 to 1000.
pub fn check_tolerance(v: &mut Violations, field: &str, p: Option<Decimal>) {
    if let Some(p) = p
        && (p < Decimal::ZERO || p > Decimal::from(1000))
    {
        v.add(field, "must be between 0 and 1000 percent");
    }
}

/// Checks and sorts warning thresholds: each in (0, 100], distinct, at most 10.
pub fn check_thresholds(v: &mut Violations, field: &str, mut t: Vec<Decimal>) -> Vec<Decimal> {
    if t.len() > MAX_THRESHOLDS {
        v.add(field, format!("must have at most {MAX_THRESHOLDS} thresholds"));
    }
    for (i, p) in t.iter().enumerate() {
        if *p <= Decimal::ZERO || *p > Decimal::ONE_HUNDRED {
            v.add(format!("{field}[{i}]"), "must be greater than 0 and at most 100");
        }
    }
    t.sort();
    let before = t.len();
    t.dedup();
    if t.len() != before {
        v.add(field, "must not repeat a threshold");
    }
    t
}

/// Checks a selector's value, and that a service code names a product of the org.
pub fn check_selector(v: &mut Violations, field: &str, s: &Selector, product_codes: &HashSet<String>) {
    check_code(v, field, s.value(), 128);
    if let Selector::Service(code) = s
        && !code.is_empty()
        && !product_codes.contains(code)
    {
        v.add(field, "no product has this code");
    }
}

/// Checks a full set of service allowances: valid selectors, each used once.
pub fn check_services(
    v: &mut Violations,
    field: &str,
    services: &[ServiceAllowance],
    product_codes: &HashSet<String>,
) {
    if services.len() > MAX_SERVICE_ALLOWANCES {
        v.add(field, format!("must have at most {MAX_SERVICE_ALLOWANCES} allowances"));
    }
    let mut seen = HashSet::new();
    for (i, s) in services.iter().enumerate() {
        let item = format!("{field}[{i}]");
        check_selector(v, &item, &s.selector, product_codes);
        check_maxima(v, &item, &s.maxima);
        if !seen.insert(&s.selector) {
            v.add(&item, format!("repeats the allowance for {}", s.selector.scope()));
        }
    }
}

fn check_maxima(v: &mut Violations, field: &str, m: &Maxima) {
    for (measure, period) in MAXIMA {
        if m.get(measure, period).is_some_and(|d| d < Decimal::ZERO) {
            v.add(format!("{field}.{}", wire_name(measure, period, false)), "must not be negative");
        }
    }
}

/// The wire name of a maximum: top-level (`accumulated_maximum_...`) or per service.
pub fn wire_name(measure: Measure, period: Period, top_level: bool) -> String {
    let prefix = if top_level { "accumulated_maximum" } else { "maximum" };
    format!("{prefix}_{}_per_{}", measure.as_str(), period.as_str())
}

/// The settings after `update`, starting from `current` (none yet: all empty). Changes
/// apply in order; one that adds an existing selector, or updates or removes a missing
/// one, is a violation named by its index under `field`.
pub fn apply_update(
    current: Option<&LimitSettings>,
    update: LimitsUpdate,
    field: &str,
    v: &mut Violations,
) -> LimitSettings {
    let mut s = current.cloned().unwrap_or_default();
    s.maxima.patch(&update.maxima);
    if let Some(c) = update.currency {
        s.currency = c;
    }
    if let Some(t) = update.tolerance_percent {
        s.tolerance_percent = t;
    }
    if let Some(b) = update.block_not_included {
        s.block_not_included = b;
    }
    if let Some(soft) = update.soft {
        s.soft = soft;
    }
    if let Some(t) = update.warning_thresholds {
        s.warning_thresholds = t;
    }
    for (i, change) in update.changes.into_iter().enumerate() {
        let at = format!("{field}[{i}]");
        let position = |s: &LimitSettings, sel: &Selector| s.services.iter().position(|a| a.selector == *sel);
        match change {
            AllowanceChange::Add(a) => match position(&s, &a.selector) {
                Some(_) => v.add(at, format!("adds {}, which already has an allowance", a.selector.scope())),
                None => s.services.push(a),
            },
            AllowanceChange::Update { selector, patch } => match position(&s, &selector) {
                Some(p) => s.services[p].maxima.patch(&patch),
                None => v.add(at, format!("updates {}, which has no allowance", selector.scope())),
            },
            AllowanceChange::Remove(selector) => match position(&s, &selector) {
                Some(p) => {
                    s.services.remove(p);
                }
                None => v.add(at, format!("removes {}, which has no allowance", selector.scope())),
            },
        }
    }
    if s.services.len() > MAX_SERVICE_ALLOWANCES {
        v.add(field, format!("must leave at most {MAX_SERVICE_ALLOWANCES} allowances"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str, monthly_amount: i64) -> ServiceAllowance {
        ServiceAllowance {
            selector: Selector::Service(code.into()),
            maxima: Maxima { amount_per_month: Some(Decimal::from(monthly_amount)), ..Default::default() },
        }
    }

    fn update(changes: Vec<AllowanceChange>) -> LimitsUpdate {
        LimitsUpdate { changes, ..Default::default() }
    }

    #[test]
    fn seed_example_adds_updates_and_removes_in_order() {
        let current = LimitSettings {
            services: vec![
                service("MAD", 1),
                ServiceAllowance {
                    selector: Selector::ServiceType("ExxonEU".into()),
                    maxima: Maxima::default(),
                },
            ],
            ..Default::default()
        };
        let mut patch = MaximaPatch::default();
        patch.0[0] = Some(Some(Decimal::from(23)));
        let mut v = Violations::default();
        let next = apply_update(
            Some(&current),
            LimitsUpdate {
                maxima: MaximaPatch([
                    None,
                    Some(Some(Decimal::from(100))),
                    Some(Some(Decimal::from(1000))),
                    Some(Some(Decimal::from(5))),
                    None,
                    None,
                ]),
                tolerance_percent: Some(Some(Decimal::from(30))),
                block_not_included: Some(true),
                changes: vec![
                    AllowanceChange::Add(service("CREED", 5)),
                    AllowanceChange::Update { selector: Selector::ServiceType("ExxonEU".into()), patch },
                    AllowanceChange::Remove(Selector::Service("MAD".into())),
                ],
                ..Default::default()
            },
            "usage_services_allowance",
            &mut v,
        );
        assert!(v.is_empty(), "{v}");
        assert_eq!(next.maxima.amount_per_day, Some(Decimal::from(100)));
        assert_eq!(next.maxima.usage_per_transaction, Some(Decimal::from(5)));
        assert!(next.block_not_included);
        let scopes: Vec<_> = next.services.iter().map(|s| s.selector.scope()).collect();
        assert_eq!(scopes, ["service_type:ExxonEU", "service:CREED"]);
        assert_eq!(next.services[0].maxima.amount_per_transaction, Some(Decimal::from(23)));
    }

    #[test]
    fn adding_an_existing_selector_names_the_change() {
        let current = LimitSettings { services: vec![service("CREED", 5)], ..Default::default() };
        let mut v = Violations::default();
        apply_update(Some(&current), update(vec![AllowanceChange::Add(service("CREED", 7))]), "a", &mut v);
        assert_eq!(v.items()[0].field, "a[0]");
    }

    #[test]
    fn updating_or_removing_a_missing_selector_names_the_change() {
        let mut v = Violations::default();
        apply_update(
            None,
            update(vec![
                AllowanceChange::Add(service("X", 1)),
                AllowanceChange::Update {
                    selector: Selector::ServiceFamily("F".into()),
                    patch: MaximaPatch::default(),
                },
                AllowanceChange::Remove(Selector::Service("Y".into())),
            ]),
            "a",
            &mut v,
        );
        let fields: Vec<_> = v.items().iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["a[1]", "a[2]"]);
    }

    #[test]
    fn update_patch_changes_only_given_maxima_and_can_clear() {
        let mut m = Maxima {
            amount_per_day: Some(Decimal::ONE),
            usage_per_day: Some(Decimal::TWO),
            ..Default::default()
        };
        let mut p = MaximaPatch::default();
        p.0[1] = Some(None);
        p.0[5] = Some(Some(Decimal::TEN));
        m.patch(&p);
        assert_eq!(
            (m.amount_per_day, m.usage_per_day, m.usage_per_month),
            (None, Some(Decimal::TWO), Some(Decimal::TEN))
        );
    }

    #[test]
    fn thresholds_are_bounded_sorted_and_distinct() {
        let mut v = Violations::default();
        let t = check_thresholds(&mut v, "t", vec![Decimal::from(90), Decimal::from(80)]);
        assert_eq!(t, [Decimal::from(80), Decimal::from(90)]);
        assert!(v.is_empty());
        check_thresholds(
            &mut v,
            "t",
            vec![Decimal::ZERO, Decimal::from(101), Decimal::from(50), Decimal::from(50)],
        );
        let fields: Vec<_> = v.items().iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["t[0]", "t[1]", "t"]);
    }

    #[test]
    fn service_selector_must_name_an_existing_product_code() {
        let mut v = Violations::default();
        let codes = HashSet::from(["CREED".to_string()]);
        check_services(&mut v, "s", &[service("CREED", 1), service("NOPE", 1), service("CREED", 2)], &codes);
        let fields: Vec<_> = v.items().iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["s[1]", "s[2]"]);
    }

    #[test]
    fn tolerance_raises_the_maximum_by_its_percentage() {
        let s = LimitSettings { tolerance_percent: Some(Decimal::from(30)), ..Default::default() };
        assert_eq!(s.with_tolerance(Decimal::from(100)), Decimal::from(130));
        assert_eq!(LimitSettings::default().with_tolerance(Decimal::from(100)), Decimal::from(100));
    }
}

#[cfg(test)]
#[path = "allowance_tests.rs"]
mod edge_tests;
