//! Thresholds (absolute, percent, nothing granted), one transition per crossing in each
//! direction, and what a new alert may be.

use chrono::TimeZone;

use super::*;

fn d(v: i64) -> Decimal {
    Decimal::from(v)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

fn alert(threshold: Threshold, state: AlertState) -> BalanceAlert {
    BalanceAlert {
        id: BalanceAlertId::generate(),
        customer: CustomerId::generate(),
        credit_type: "USD".into(),
        threshold,
        state,
        changed_at: now(),
        available: Decimal::ZERO,
        created_at: now(),
        created_by: None,
    }
}

fn standing(available: i64, granted: i64) -> Standing {
    Standing { available: d(available), granted: d(granted) }
}

#[test]
fn an_absolute_threshold_alarms_strictly_below_its_amount() {
    let t = Threshold::Absolute(d(10));
    assert!(t.in_alarm(standing(9, 100)));
    assert!(!t.in_alarm(standing(10, 100)), "at the threshold is not below it");
}

#[test]
fn a_percent_threshold_is_taken_of_what_was_granted_and_nothing_granted_is_below_it() {
    let t = Threshold::Percent(d(20));
    assert!(t.in_alarm(standing(19, 100)));
    assert!(!t.in_alarm(standing(20, 100)));
    assert!(!t.in_alarm(standing(40, 200)), "20 % of 200 is 40");
    assert!(t.in_alarm(standing(0, 0)), "no balance at all is in alarm");
}

#[test]
fn an_ok_alert_falls_into_alarm_once_and_recovers_once() {
    let ok = alert(Threshold::Absolute(d(10)), AlertState::Ok);
    let (state, low) = transition(&ok, standing(5, 50), now(), uuid::Uuid::nil()).expect("a crossing down");
    assert_eq!((state, low.kind), (AlertState::Alarm, ViolationKind::BalanceLow));
    assert_eq!(low.detail.amount, Some(d(5)));
    assert_eq!(low.detail.limit, Some(d(10)));
    assert_eq!(low.detail.alert_id, Some(ok.id.uuid()));
    assert_eq!(low.detail.credit_type.as_deref(), Some("USD"));
    assert_eq!(low.customer_id, Some(ok.customer));
    assert!(low.detail.message.contains("fell below 10 USD"), "{}", low.detail.message);

    let alarm = BalanceAlert { state: AlertState::Alarm, ..ok.clone() };
    assert_eq!(transition(&alarm, standing(1, 50), now(), uuid::Uuid::nil()), None, "still low: nothing new");
    let (state, up) = transition(&alarm, standing(10, 60), now(), uuid::Uuid::nil()).expect("a crossing up");
    assert_eq!((state, up.kind), (AlertState::Ok, ViolationKind::BalanceRecovered));
    assert_eq!(transition(&ok, standing(10, 60), now(), uuid::Uuid::nil()), None, "still fine: nothing new");
}

#[test]
fn a_percent_alert_reports_its_percentage() {
    let ok = alert(Threshold::Percent(d(25)), AlertState::Ok);
    let (_, low) = transition(&ok, standing(10, 100), now(), uuid::Uuid::nil()).unwrap();
    assert_eq!((low.detail.threshold_percent, low.detail.limit), (Some(d(25)), None));
    assert!(low.detail.message.contains("25 % of 100 granted"), "{}", low.detail.message);
}

#[test]
fn a_new_alert_has_exactly_one_positive_threshold() {
    let customer = Parsed::Valid(CustomerId::generate());
    let check = |absolute: Parsed<Decimal>, percent: Parsed<Decimal>| {
        let mut v = Violations::default();
        let draft =
            BalanceAlertDraft { customer: customer.clone(), credit_type: "USD".into(), absolute, percent };
        let out = validate_alert(&draft, &mut v);
        (out.map(|(_, t)| t), v.items().iter().map(|i| i.field.clone()).collect::<Vec<_>>())
    };
    assert_eq!(check(Parsed::Valid(d(5)), Parsed::Absent), (Some(Threshold::Absolute(d(5))), vec![]));
    assert_eq!(check(Parsed::Absent, Parsed::Valid(d(100))), (Some(Threshold::Percent(d(100))), vec![]));
    assert_eq!(check(Parsed::Absent, Parsed::Valid(d(101))).1, ["threshold_percent"]);
    assert_eq!(check(Parsed::Valid(d(0)), Parsed::Absent), (None, vec!["threshold_amount".to_owned()]));
    assert_eq!(check(Parsed::Valid(d(-1)), Parsed::Absent).0, None);
    assert_eq!(check(Parsed::Absent, Parsed::Absent).1, ["threshold_amount"]);
    assert_eq!(check(Parsed::Valid(d(1)), Parsed::Valid(d(1))).1, ["threshold_percent"]);
    let mut v = Violations::default();
    let none = BalanceAlertDraft { absolute: Parsed::Valid(d(1)), ..Default::default() };
    assert_eq!(validate_alert(&none, &mut v), None);
    assert_eq!(v.items()[0].field, "customer_id");
}

#[test]
fn alert_state_names_read_back() {
    for s in [AlertState::Ok, AlertState::Alarm] {
        assert_eq!(AlertState::parse(s.as_str()), Some(s));
    }
    assert_eq!((AlertState::Ok.as_str(), AlertState::Alarm.as_str()), ("OK", "ALARM"));
    assert_eq!(AlertState::parse("ok"), None);
}
