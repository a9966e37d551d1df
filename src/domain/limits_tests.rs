//! Limit evaluation: each maximum, the tolerance edges, soft limits, thresholds once per
//! window, services not included, and windows rolling over in a non-UTC time zone.

use chrono::TimeZone;

use super::*;
use crate::domain::allowance::ServiceAllowance;
use crate::domain::product::ProductKind;

fn d(v: i64) -> Decimal {
    Decimal::from(v)
}

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

fn product(code: &str, service_type: &str) -> Product {
    let now = at(1, 0);
    Product {
        id: ProductId::generate(),
        code: code.into(),
        name: code.into(),
        tags: vec![],
        service_type: Some(service_type.into()),
        service_family: None,
        kind: ProductKind::Service,
        created_at: now,
        updated_at: now,
        version: 1,
        by: Default::default(),
    }
}

fn usage(limits: LimitSettings) -> CustomerUsage {
    CustomerUsage {
        time_zone: Tz::UTC,
        limits: Some(limits),
        totals: HashMap::new(),
        products: HashMap::new(),
        alerted: HashMap::new(),
    }
}

fn event(p: &Product, quantity: i64, amount: i64, when: DateTime<Utc>) -> EventFacts<'_> {
    EventFacts { product: p, quantity: d(quantity), amount: d(amount), credit_type: "USD", at: when }
}

/// Evaluates and, unless blocked, records; returns the decision.
fn push(u: &mut CustomerUsage, e: &EventFacts<'_>) -> Decision {
    let ev = u.evaluate(e);
    u.record(e, &ev);
    ev.decision
}

#[test]
fn no_limits_allow_everything() {
    let p = product("CREED", "VOD");
    let u = CustomerUsage { limits: None, ..usage(LimitSettings::default()) };
    let ev = u.evaluate(&event(&p, 1_000_000, 1_000_000, at(1, 0)));
    assert_eq!(ev.decision, Decision::Allowed);
    assert!(ev.checks.is_empty());
}

#[test]
fn each_of_the_six_maxima_is_checked() {
    let p = product("CREED", "VOD");
    for (measure, period) in MAXIMA {
        let mut maxima = Maxima::default();
        let mut patch = crate::domain::allowance::MaximaPatch::default();
        let i = MAXIMA.iter().position(|m| *m == (measure, period)).unwrap();
        patch.0[i] = Some(Some(d(10)));
        maxima.patch(&patch);
        let mut u = usage(LimitSettings { maxima, ..Default::default() });
        // Two events of 6: the second passes a daily or monthly maximum, never a
        // per-transaction one.
        assert_eq!(push(&mut u, &event(&p, 6, 6, at(2, 10))), Decision::Allowed);
        let second = u.evaluate(&event(&p, 6, 6, at(2, 11)));
        assert_eq!(second.checks.len(), 1);
        let check = &second.checks[0];
        assert_eq!((check.measure, check.period), (measure, period));
        let expected = if period == Period::Transaction { Decision::Allowed } else { Decision::Blocked };
        assert_eq!(second.decision, expected, "{measure:?} per {period:?}");
        assert_eq!(check.used, if period == Period::Transaction { d(6) } else { d(12) });
    }
}

#[test]
fn exactly_at_the_maximum_is_within_and_exactly_at_the_tolerance_is_allowed() {
    let p = product("CREED", "VOD");
    let limits = LimitSettings {
        maxima: Maxima { amount_per_day: Some(d(100)), ..Default::default() },
        tolerance_percent: Some(d(30)),
        ..Default::default()
    };
    let mut u = usage(limits);
    let at_max = u.evaluate(&event(&p, 0, 100, at(2, 1)));
    assert_eq!((at_max.decision, at_max.checks[0].outcome), (Decision::Allowed, Outcome::Within));
    u.record(&event(&p, 0, 100, at(2, 1)), &at_max);
    let at_tolerance = u.evaluate(&event(&p, 0, 30, at(2, 2)));
    assert_eq!(at_tolerance.decision, Decision::AllowedOverLimit);
    assert_eq!((at_tolerance.checks[0].used, at_tolerance.checks[0].tolerance_maximum), (d(130), d(130)));
    let past = u.evaluate(&event(&p, 0, 31, at(2, 2)));
    assert_eq!((past.decision, past.checks[0].outcome), (Decision::Blocked, Outcome::Exceeded));
    let just_past =
        u.evaluate(&EventFacts { amount: "30.000000000001".parse().unwrap(), ..event(&p, 0, 0, at(2, 2)) });
    assert_eq!(just_past.decision, Decision::Blocked, "a hair past the tolerance blocks");
}

#[test]
fn blocked_event_counts_toward_nothing() {
    let p = product("CREED", "VOD");
    let mut u = usage(LimitSettings {
        maxima: Maxima { usage_per_day: Some(d(5)), ..Default::default() },
        ..Default::default()
    });
    assert_eq!(push(&mut u, &event(&p, 6, 0, at(2, 1))), Decision::Blocked);
    assert_eq!(push(&mut u, &event(&p, 5, 0, at(2, 2))), Decision::Allowed, "the blocked 6 was not counted");
}

#[test]
fn soft_limits_never_block_but_report_over_limit() {
    let p = product("CREED", "VOD");
    let mut u = usage(LimitSettings {
        maxima: Maxima { usage_per_transaction: Some(d(1)), ..Default::default() },
        block_not_included: true,
        soft: true,
        ..Default::default()
    });
    let ev = u.evaluate(&event(&p, 50, 0, at(2, 1)));
    assert_eq!(ev.decision, Decision::AllowedOverLimit);
    assert!(ev.not_included_blocks && ev.soft);
    assert_eq!(ev.checks[0].outcome, Outcome::Exceeded);
    u.record(&event(&p, 50, 0, at(2, 1)), &ev);
    assert_eq!(u.scope_total(None, &window_of(WindowKind::Day, Tz::UTC, at(2, 1)), Measure::Usage), d(50));
}

#[test]
fn service_allowances_apply_by_code_type_and_family_alongside_the_customer_maxima() {
    let creed = product("CREED", "VOD");
    let fuel = product("EXXON", "Fuel");
    let limits = LimitSettings {
        maxima: Maxima { amount_per_month: Some(d(1000)), ..Default::default() },
        services: vec![
            ServiceAllowance {
                selector: Selector::Service("CREED".into()),
                maxima: Maxima { amount_per_month: Some(d(5)), ..Default::default() },
            },
            ServiceAllowance {
                selector: Selector::ServiceType("VOD".into()),
                maxima: Maxima { usage_per_day: Some(d(3)), ..Default::default() },
            },
        ],
        ..Default::default()
    };
    let mut u = usage(limits);
    let ev = u.evaluate(&event(&creed, 1, 4, at(2, 1)));
    let scopes: Vec<_> = ev.checks.iter().map(|c| c.scope.as_str()).collect();
    assert_eq!(scopes, ["customer", "service:CREED", "service_type:VOD"]);
    u.record(&event(&creed, 1, 4, at(2, 1)), &ev);
    assert_eq!(
        push(&mut u, &event(&creed, 1, 2, at(2, 2))),
        Decision::Blocked,
        "CREED's monthly 5 is passed"
    );
    let fuel_ev = u.evaluate(&event(&fuel, 100, 2, at(2, 2)));
    assert_eq!(fuel_ev.decision, Decision::Allowed);
    assert_eq!(fuel_ev.checks.len(), 1, "only the customer maximum applies to fuel");
    assert!(fuel_ev.service_not_included);
}

#[test]
fn services_not_included_are_blocked_only_when_the_flag_is_set() {
    let fuel = product("EXXON", "Fuel");
    let allowance =
        ServiceAllowance { selector: Selector::Service("CREED".into()), maxima: Maxima::default() };
    let open = usage(LimitSettings { services: vec![allowance.clone()], ..Default::default() });
    assert_eq!(open.evaluate(&event(&fuel, 1, 1, at(2, 1))).decision, Decision::Allowed);
    let closed =
        usage(LimitSettings { services: vec![allowance], block_not_included: true, ..Default::default() });
    let ev = closed.evaluate(&event(&fuel, 1, 1, at(2, 1)));
    assert_eq!(ev.decision, Decision::Blocked);
    assert!(ev.not_included_blocks);
}

#[test]
fn thresholds_are_crossed_once_per_window() {
    let p = product("CREED", "VOD");
    let mut u = usage(LimitSettings {
        maxima: Maxima { amount_per_day: Some(d(100)), ..Default::default() },
        warning_thresholds: vec![d(50), d(80), d(90)],
        ..Default::default()
    });
    let crossed = |u: &mut CustomerUsage, amount: i64, when| {
        let e = event(&p, 0, amount, when);
        let ev = u.evaluate(&e);
        u.record(&e, &ev);
        ev.crossings.iter().map(|c| c.percent).collect::<Vec<_>>()
    };
    assert_eq!(crossed(&mut u, 40, at(2, 1)), Vec::<Decimal>::new());
    assert_eq!(crossed(&mut u, 45, at(2, 2)), [d(50), d(80)], "one event can cross two thresholds");
    assert_eq!(crossed(&mut u, 1, at(2, 3)), Vec::<Decimal>::new(), "already notified in this window");
    assert_eq!(crossed(&mut u, 5, at(2, 4)), [d(90)]);
    assert_eq!(crossed(&mut u, 60, at(3, 1)), [d(50)], "a new day is a new window");
}

#[test]
fn windows_roll_over_in_the_customers_time_zone() {
    let p = product("CREED", "VOD");
    let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
    let mut u = CustomerUsage {
        time_zone: tokyo,
        ..usage(LimitSettings {
            maxima: Maxima { usage_per_day: Some(d(10)), usage_per_month: Some(d(15)), ..Default::default() },
            ..Default::default()
        })
    };
    // 14:59 UTC is 23:59 in Tokyo; 15:00 UTC is already the next day there.
    assert_eq!(
        push(&mut u, &event(&p, 10, 0, Utc.with_ymd_and_hms(2026, 3, 2, 14, 59, 0).unwrap())),
        Decision::Allowed
    );
    assert_eq!(
        push(&mut u, &event(&p, 1, 0, Utc.with_ymd_and_hms(2026, 3, 2, 14, 59, 30).unwrap())),
        Decision::Blocked
    );
    assert_eq!(
        push(&mut u, &event(&p, 5, 0, Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap())),
        Decision::Allowed
    );
    // The month of March (Tokyo) now holds 15; 15:00 UTC on Mar 31 is April 1 in Tokyo.
    assert_eq!(
        push(&mut u, &event(&p, 1, 0, Utc.with_ymd_and_hms(2026, 3, 31, 14, 0, 0).unwrap())),
        Decision::Blocked
    );
    assert_eq!(
        push(&mut u, &event(&p, 1, 0, Utc.with_ymd_and_hms(2026, 3, 31, 15, 0, 0).unwrap())),
        Decision::Allowed
    );
}

#[test]
fn an_allowance_added_mid_window_sees_earlier_usage_of_its_products() {
    let p = product("CREED", "VOD");
    let mut u = usage(LimitSettings::default());
    push(&mut u, &event(&p, 8, 0, at(2, 1)));
    u.limits = Some(LimitSettings {
        services: vec![ServiceAllowance {
            selector: Selector::Service("CREED".into()),
            maxima: Maxima { usage_per_month: Some(d(10)), ..Default::default() },
        }],
        ..Default::default()
    });
    assert_eq!(u.evaluate(&event(&p, 3, 0, at(5, 1))).decision, Decision::Blocked);
}

#[test]
fn amounts_in_another_currency_are_refused_where_an_amount_maximum_applies_and_never_summed() {
    let p = product("CREED", "VOD");
    let daily_amount = LimitSettings {
        maxima: Maxima { amount_per_day: Some(d(100)), ..Default::default() },
        currency: "EUR".into(),
        ..Default::default()
    };
    let mut u = usage(daily_amount);
    let eur = EventFacts { credit_type: "EUR", ..event(&p, 1, 80, at(2, 10)) };
    let usd = event(&p, 1, 80, at(2, 11));
    assert_eq!(u.foreign_currency(&eur), None);
    assert_eq!(u.foreign_currency(&usd), Some("EUR"), "80 USD cannot be judged against a EUR maximum");
    assert_eq!(push(&mut u, &eur), Decision::Allowed);
    // Recorded anyway (as a caller with no amount maximum could), it is not summed.
    u.record(&usd, &u.evaluate(&usd));
    let next = u.evaluate(&EventFacts { credit_type: "EUR", ..event(&p, 1, 20, at(2, 12)) });
    assert_eq!((next.decision, next.checks[0].used), (Decision::Allowed, d(100)), "80 EUR + 20 EUR");

    let usage_only = LimitSettings {
        maxima: Maxima { usage_per_day: Some(d(100)), ..Default::default() },
        currency: "EUR".into(),
        ..Default::default()
    };
    assert_eq!(
        usage(usage_only).foreign_currency(&usd),
        None,
        "no amount maximum: any currency counts toward usage"
    );
}

#[test]
fn decisions_are_stored_under_the_names_the_database_accepts() {
    // usage_events.decision is CHECKed against exactly these (migration 000400), and
    // commitment evaluation filters on 'BLOCKED'.
    let names: Vec<_> = [Decision::Allowed, Decision::AllowedOverLimit, Decision::Blocked]
        .into_iter()
        .map(Decision::as_str)
        .collect();
    assert_eq!(names, ["ALLOWED", "ALLOWED_OVER_LIMIT", "BLOCKED"]);
}

#[test]
fn an_amount_in_another_currency_is_judged_by_usage_maxima_only() {
    let p = product("CREED", "VOD");
    let both = LimitSettings {
        maxima: Maxima { amount_per_day: Some(d(100)), usage_per_day: Some(d(10)), ..Default::default() },
        currency: "EUR".into(),
        ..Default::default()
    };
    let u = usage(both);
    let judged = u.evaluate(&event(&p, 3, 500, at(2, 10)));
    let measures: Vec<_> = judged.checks.iter().map(|c| c.measure).collect();
    assert_eq!(measures, [Measure::Usage], "the USD amount is not judged against the EUR maximum");
    assert_eq!(judged.checks[0].used, d(3));
}

#[test]
fn a_zero_maximum_with_thresholds_notifies_nothing_and_never_divides_by_zero() {
    let p = product("CREED", "VOD");
    let u = usage(LimitSettings {
        maxima: Maxima { amount_per_day: Some(d(0)), ..Default::default() },
        warning_thresholds: vec![d(50)],
        soft: true,
        ..Default::default()
    });
    let ev = u.evaluate(&event(&p, 1, 5, at(2, 1)));
    assert!(ev.crossings.is_empty());
    assert_eq!(ev.decision, Decision::AllowedOverLimit, "soft: past a zero maximum is notified, not blocked");
}

#[test]
fn a_threshold_is_crossed_at_its_exact_percentage_of_the_maximum() {
    let p = product("CREED", "VOD");
    let u = usage(LimitSettings {
        maxima: Maxima { amount_per_day: Some(d(200)), ..Default::default() },
        warning_thresholds: vec![d(80)],
        ..Default::default()
    });
    assert!(u.evaluate(&event(&p, 0, 159, at(2, 1))).crossings.is_empty(), "79.5 %");
    let at_80 = u.evaluate(&event(&p, 0, 160, at(2, 1)));
    assert_eq!(at_80.crossings.iter().map(|c| c.percent).collect::<Vec<_>>(), [d(80)], "exactly 80 %");
}

#[test]
fn the_report_shows_each_daily_and_monthly_maximum_with_its_total_and_percentage() {
    let p = product("CREED", "VOD");
    let mut u = usage(LimitSettings {
        maxima: Maxima {
            amount_per_transaction: Some(d(1000)),
            amount_per_day: Some(d(200)),
            usage_per_month: Some(d(0)),
            ..Default::default()
        },
        tolerance_percent: Some(d(10)),
        // Soft, so the event past the zero maximum is still counted.
        soft: true,
        ..Default::default()
    });
    push(&mut u, &event(&p, 2, 150, at(2, 1)));
    let lines: Vec<_> = u
        .report(at(2, 1))
        .into_iter()
        .map(|l| (l.measure, l.used, l.maximum, l.tolerance_maximum, l.percent))
        .collect();
    assert_eq!(
        lines,
        [(Measure::RatedAmount, d(150), d(200), d(220), d(75)), (Measure::Usage, d(2), d(0), d(0), d(0)),],
        "per-transaction maxima are not reported; a zero maximum reports 0 %"
    );
}
