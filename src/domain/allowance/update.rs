//! Editing limits as seed 003 does: the top-level fields an update gives, then service
//! allowances added, updated and removed in order; every rule a field must meet.

use super::*;

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
