//! The names commitments are stored and reported under, and the bounds of their terms,
//! each at its edge.

use chrono::TimeZone;

use super::tests::terms;
use super::*;

fn at(y: i32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).unwrap()
}

fn fields_with(t: &Terms, known: &KnownProducts) -> Vec<String> {
    let mut v = Violations::default();
    validate_terms(t, known, &mut v);
    v.items().iter().map(|i| i.field.clone()).collect()
}

fn fields(t: &Terms) -> Vec<String> {
    fields_with(t, &KnownProducts::new())
}

#[test]
fn statuses_scopes_and_measures_have_their_stored_names() {
    use CommitmentStatus::*;
    for (s, name, open) in [
        (Active, "ACTIVE", true),
        (Fulfilled, "FULFILLED", false),
        (Violated, "VIOLATED", true),
        (Terminated, "TERMINATED", false),
        (Ended, "ENDED", false),
    ] {
        assert_eq!((s.as_str(), CommitmentStatus::parse(name), s.is_open()), (name, Some(s), open));
    }
    assert_eq!(CommitmentStatus::parse("active"), None);
    assert_eq!((Scope::Customer.as_str(), Scope::Account.as_str()), ("customer", "account"));
    assert_eq!((Measure::Spend.as_str(), Measure::Usage.as_str()), ("spend", "usage"));
}

#[test]
fn obligations_are_empty_only_without_spend_usage_and_minimum_term() {
    assert!(Obligations::default().is_empty());
    let spend = MinimumSpend { period: PeriodKind::Month, amount: Decimal::ONE };
    let usage = MinimumUsage { period: PeriodKind::Month, quantity: Decimal::ONE, product_id: None };
    assert!(!Obligations { minimum_spend: vec![spend], ..Default::default() }.is_empty());
    assert!(!Obligations { minimum_usage: vec![usage], ..Default::default() }.is_empty());
    assert!(!Obligations { minimum_term_months: 1, ..Default::default() }.is_empty());
}

#[test]
fn the_policy_notifies_and_compensates_per_scope_as_each_flag_says() {
    let p = ViolationPolicy { notify_per_customer_violations: true, ..Default::default() };
    assert_eq!((p.notifies(Scope::Customer), p.notifies(Scope::Account)), (true, false));
    let p = ViolationPolicy { notify_per_account_violations: true, ..Default::default() };
    assert_eq!((p.notifies(Scope::Customer), p.notifies(Scope::Account)), (false, true));
    let p = ViolationPolicy { compensate_on_customer_violation: true, ..Default::default() };
    assert_eq!((p.compensates(Scope::Customer), p.compensates(Scope::Account)), (true, false));
    let p = ViolationPolicy { compensate_on_account_violation: true, ..Default::default() };
    assert_eq!((p.compensates(Scope::Customer), p.compensates(Scope::Account)), (false, true));
}

#[test]
fn a_penalty_without_a_credit_type_is_in_the_default_currency() {
    let p: Penalty = serde_json::from_str(r#"{"amount": "5"}"#).unwrap();
    assert_eq!(p.credit_type, "USD");
}

#[test]
fn twenty_obligations_per_list_are_allowed_and_one_more_is_not() {
    let mut t = terms();
    let spend = MinimumSpend { period: PeriodKind::Month, amount: Decimal::ONE };
    let usage = MinimumUsage { period: PeriodKind::Month, quantity: Decimal::ONE, product_id: None };
    t.customer_obligations.minimum_spend = vec![spend.clone(); MAX_OBLIGATIONS];
    t.customer_obligations.minimum_usage = vec![usage.clone(); MAX_OBLIGATIONS];
    assert!(fields(&t).is_empty());
    t.customer_obligations.minimum_spend.push(spend);
    t.customer_obligations.minimum_usage.push(usage);
    assert_eq!(fields(&t), ["customer_obligations.minimum_spend", "customer_obligations.minimum_usage"]);
}

#[test]
fn a_minimum_usage_needs_a_positive_quantity_and_a_known_product() {
    let known = ProductId(Uuid::from_u128(1));
    let mut t = terms();
    t.customer_obligations.minimum_usage = vec![
        MinimumUsage { period: PeriodKind::Month, quantity: Decimal::ZERO, product_id: Some(known) },
        MinimumUsage {
            period: PeriodKind::Month,
            quantity: Decimal::ONE,
            product_id: Some(ProductId(Uuid::from_u128(2))),
        },
    ];
    assert_eq!(
        fields_with(&t, &KnownProducts::from([known])),
        [
            "customer_obligations.minimum_usage[0].quantity",
            "customer_obligations.minimum_usage[1].product_id"
        ]
    );
    t.product_id = Some(ProductId(Uuid::from_u128(3)));
    t.customer_obligations.minimum_usage.clear();
    assert_eq!(fields_with(&t, &KnownProducts::from([known])), ["product_id"]);
    t.product_id = Some(known);
    assert!(fields_with(&t, &KnownProducts::from([known])).is_empty());
}

#[test]
fn a_minimum_term_may_span_exactly_the_time_range() {
    let mut t = terms();
    t.customer_obligations.minimum_term_months = 12;
    assert!(fields(&t).is_empty(), "a year's range holds twelve months");
    t.customer_obligations.minimum_term_months = 13;
    assert_eq!(fields(&t), ["customer_obligations.minimum_term_months"]);
}

#[test]
fn a_range_must_end_after_it_starts_and_account_spend_needs_a_subscription() {
    let mut t = terms();
    t.time_range.end_time = t.time_range.start_time;
    assert_eq!(fields(&t), ["time_range.end_time"]);
    // Reversed: still one problem, not also a minimum term (there is none) too long.
    t.time_range.end_time = at(2025, 12);
    assert_eq!(fields(&t), ["time_range.end_time"]);

    let mut t = terms();
    t.account_obligations.minimum_spend.push(MinimumSpend { period: PeriodKind::Term, amount: Decimal::ONE });
    assert_eq!(fields(&t), ["subscription_id"]);
    let mut t = terms();
    t.account_obligations.minimum_term_months = 1;
    assert!(fields(&t).is_empty(), "a minimum term alone counts nothing per account");
}

#[test]
fn a_new_end_must_be_in_the_future_but_an_unchanged_past_end_is_kept() {
    let from = terms();
    let now = at(2026, 6);
    let check = |end: DateTime<Utc>| {
        let mut to = terms();
        to.time_range.end_time = end;
        let mut v = Violations::default();
        validate_change(&from, &to, now, &mut v);
        v.items().iter().map(|i| i.field.clone()).collect::<Vec<_>>()
    };
    assert_eq!(check(now), ["time_range.end_time"], "now itself is not the future");
    assert_eq!(check(at(2026, 5)), ["time_range.end_time"]);
    assert!(check(at(2026, 7)).is_empty());

    let mut ended = terms();
    ended.time_range.end_time = at(2026, 3);
    let mut v = Violations::default();
    validate_change(&ended, &ended.clone(), now, &mut v);
    assert!(v.is_empty(), "an end already past may stay as it is");
}
