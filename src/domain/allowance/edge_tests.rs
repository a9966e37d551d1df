//! The bounds of allowance limits' fields, each at its edge, and how selectors match.

use super::*;
use crate::domain::ids::ProductId;
use crate::domain::product::ProductKind;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn fields(v: &Violations) -> Vec<&str> {
    v.items().iter().map(|i| i.field.as_str()).collect()
}

fn product(code: &str, service_type: Option<&str>, service_family: Option<&str>) -> Product {
    Product {
        id: ProductId(uuid::Uuid::from_u128(1)),
        code: code.into(),
        name: code.into(),
        tags: Vec::new(),
        service_type: service_type.map(str::to_owned),
        service_family: service_family.map(str::to_owned),
        kind: ProductKind::Service,
        created_at: DateTime::UNIX_EPOCH,
        updated_at: DateTime::UNIX_EPOCH,
        version: 1,
        by: Default::default(),
    }
}

#[test]
fn a_maximum_may_be_zero_or_absent_but_not_negative() {
    let mut v = Violations::default();
    check_maximum(&mut v, "zero", &Parsed::Valid(Decimal::ZERO));
    check_maximum(&mut v, "absent", &Parsed::Absent);
    check_maximum(&mut v, "negative", &Parsed::Valid(d("-0.01")));
    assert_eq!(fields(&v), ["negative"]);
}

#[test]
fn a_tolerance_is_from_zero_to_a_thousand_percent_inclusive() {
    let mut v = Violations::default();
    for (field, p) in [("zero", "0"), ("top", "1000"), ("none", ""), ("below", "-0.01"), ("above", "1000.01")]
    {
        check_tolerance(&mut v, field, (!p.is_empty()).then(|| d(p)));
    }
    assert_eq!(fields(&v), ["below", "above"]);
}

#[test]
fn ten_thresholds_are_allowed_and_a_hundred_percent_is_the_highest() {
    let mut v = Violations::default();
    let ten: Vec<Decimal> = (1..=10).map(|i| Decimal::from(i * 10)).collect();
    assert_eq!(check_thresholds(&mut v, "t", ten.clone()), ten);
    assert!(v.is_empty(), "ten distinct thresholds up to 100: {:?}", v.items());

    let eleven: Vec<Decimal> = (1..=11).map(|i| Decimal::from(i * 9)).collect();
    check_thresholds(&mut v, "t", eleven);
    assert_eq!(fields(&v), ["t"], "one too many");

    let mut v = Violations::default();
    check_thresholds(&mut v, "t", vec![d("0.01"), d("100"), d("100.01")]);
    assert_eq!(fields(&v), ["t[2]"]);
}

#[test]
fn two_hundred_service_allowances_are_allowed_and_one_more_is_not() {
    let codes: HashSet<String> = (0..=MAX_SERVICE_ALLOWANCES).map(|i| format!("P{i}")).collect();
    let services: Vec<ServiceAllowance> = (0..=MAX_SERVICE_ALLOWANCES)
        .map(|i| ServiceAllowance { selector: Selector::Service(format!("P{i}")), maxima: Maxima::default() })
        .collect();
    let mut v = Violations::default();
    check_services(&mut v, "s", &services[..MAX_SERVICE_ALLOWANCES], &codes);
    assert!(v.is_empty());
    check_services(&mut v, "s", &services, &codes);
    assert_eq!(fields(&v), ["s"]);

    // The same bound holds for what an update leaves.
    let full = LimitSettings { services: services[..MAX_SERVICE_ALLOWANCES].to_vec(), ..Default::default() };
    let mut v = Violations::default();
    apply_update(Some(&full), LimitsUpdate::default(), "u", &mut v);
    assert!(v.is_empty(), "exactly at the bound");
    let one_more = LimitsUpdate {
        changes: vec![AllowanceChange::Add(services[MAX_SERVICE_ALLOWANCES].clone())],
        ..Default::default()
    };
    apply_update(Some(&full), one_more, "u", &mut v);
    assert_eq!(fields(&v), ["u"]);
}

#[test]
fn a_negative_service_maximum_is_named_by_its_wire_field() {
    let mut v = Violations::default();
    let codes = HashSet::from(["CREED".to_string()]);
    let services = [ServiceAllowance {
        selector: Selector::Service("CREED".into()),
        maxima: Maxima {
            usage_per_day: Some(d("-1")),
            amount_per_month: Some(Decimal::ZERO),
            ..Default::default()
        },
    }];
    check_services(&mut v, "s", &services, &codes);
    assert_eq!(fields(&v), ["s[0].maximum_usage_per_day"]);
    assert_eq!(
        wire_name(Measure::RatedAmount, Period::Transaction, true),
        "accumulated_maximum_rated_amount_per_transaction"
    );
}

#[test]
fn a_selector_value_is_checked_as_a_code_whatever_its_kind() {
    let mut v = Violations::default();
    let codes = HashSet::new();
    check_selector(&mut v, "type", &Selector::ServiceType(" padded".into()), &codes);
    check_selector(&mut v, "family", &Selector::ServiceFamily(String::new()), &codes);
    check_selector(&mut v, "fine", &Selector::ServiceFamily("Video".into()), &codes);
    assert_eq!(fields(&v), ["type", "family"]);
}

#[test]
fn selectors_match_by_code_type_or_family_exactly() {
    let p = product("CREED", Some("Usage Services"), Some("Video"));
    assert!(Selector::Service("CREED".into()).matches(&p));
    assert!(!Selector::Service("CREE".into()).matches(&p));
    assert!(Selector::ServiceType("Usage Services".into()).matches(&p));
    assert!(!Selector::ServiceType("Other".into()).matches(&p));
    assert!(Selector::ServiceFamily("Video".into()).matches(&p));
    assert!(!Selector::ServiceFamily("Audio".into()).matches(&p));
    let bare = product("CREED", None, None);
    assert!(!Selector::ServiceType("Usage Services".into()).matches(&bare));
    assert!(!Selector::ServiceFamily("Video".into()).matches(&bare));
}

#[test]
fn a_replacing_patch_sets_every_maximum_and_clears_the_absent_ones() {
    let mut current =
        Maxima { amount_per_day: Some(d("5")), usage_per_month: Some(d("7")), ..Default::default() };
    let wanted =
        Maxima { amount_per_transaction: Some(d("1")), usage_per_day: Some(d("2")), ..Default::default() };
    current.patch(&MaximaPatch::replacing_with(&wanted));
    assert_eq!(current, wanted);
}

#[test]
fn an_update_sets_each_top_level_field_it_carries_and_keeps_the_others() {
    let current = LimitSettings {
        currency: "USD".into(),
        tolerance_percent: Some(d("10")),
        block_not_included: false,
        soft: false,
        warning_thresholds: vec![d("50")],
        ..Default::default()
    };
    let mut v = Violations::default();
    let kept = apply_update(Some(&current), LimitsUpdate::default(), "u", &mut v);
    assert_eq!(kept, current);
    let update = LimitsUpdate {
        currency: Some("EUR".into()),
        tolerance_percent: Some(None),
        block_not_included: Some(true),
        soft: Some(true),
        warning_thresholds: Some(vec![d("80")]),
        ..Default::default()
    };
    let next = apply_update(Some(&current), update, "u", &mut v);
    assert!(v.is_empty());
    assert_eq!(
        (
            next.currency.as_str(),
            next.tolerance_percent,
            next.block_not_included,
            next.soft,
            next.warning_thresholds
        ),
        ("EUR", None, true, true, vec![d("80")])
    );
}

#[test]
fn measures_periods_and_scopes_read_back_from_the_names_they_are_stored_under() {
    for m in [Measure::RatedAmount, Measure::Usage] {
        assert_eq!(Measure::parse(m.as_str()), Some(m));
    }
    for p in [Period::Transaction, Period::Day, Period::Month] {
        assert_eq!(Period::parse(p.as_str()), Some(p));
    }
    assert_eq!(Measure::parse("amount"), None);
    assert_eq!(Period::parse("week"), None);
    for s in [
        Selector::Service("CREED".into()),
        Selector::ServiceType("Usage Services".into()),
        Selector::ServiceFamily("a:b".into()),
    ] {
        assert_eq!(Selector::from_scope(&s.scope()), Some(s));
    }
    assert_eq!(Selector::from_scope("customer"), None);
    assert_eq!(Selector::from_scope("service_group:X"), None);
}

#[test]
fn stored_limits_start_at_version_one_and_each_store_advances_it_keeping_the_creation() {
    use chrono::TimeZone;
    let (t1, t2) = (
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap(),
    );
    let (customer, k1, k2) =
        (CustomerId(uuid::Uuid::from_u128(1)), uuid::Uuid::from_u128(2), uuid::Uuid::from_u128(3));
    let first = AllowanceLimits::next(
        None,
        customer,
        LimitSettings::default(),
        t1,
        Some(crate::domain::ids::ApiKeyId(k1)),
    );
    assert_eq!((first.version, first.created_at, first.updated_at), (1, t1, t1));
    let second = AllowanceLimits::next(
        Some(&first),
        customer,
        LimitSettings::default(),
        t2,
        Some(crate::domain::ids::ApiKeyId(k2)),
    );
    assert_eq!((second.version, second.created_at, second.updated_at), (2, t1, t2));
    assert_eq!(
        (second.by.created_by, second.by.updated_by),
        (first.by.created_by, Some(crate::domain::ids::ApiKeyId(k2)))
    );
}
