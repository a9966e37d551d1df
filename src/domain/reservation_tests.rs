//! Grants (full, partial, denied; limits and balances), the life of a reservation, and a
//! property test: random reservations, extensions, commits, releases, expiries and
//! direct usage never hold or use more than the limit and balance allowed, and once
//! every hold has ended the totals are those of the committed usage alone.

use std::collections::HashMap;

use chrono::TimeZone;
use chrono_tz::Tz;
use proptest::prelude::*;

use super::*;
use crate::domain::allowance::{LimitSettings, MAXIMA, Maxima, MaximaPatch, Measure, Period};
use crate::domain::ids::ProductId;
use crate::domain::limits::{CustomerUsage, EventFacts};
use crate::domain::product::{Product, ProductKind};
use crate::domain::windows::{WindowKind, window_of};

fn d(v: i64) -> Decimal {
    Decimal::from(v)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

fn product() -> Product {
    Product {
        id: ProductId::generate(),
        code: "CALL".into(),
        name: "Call".into(),
        tags: vec![],
        service_type: Some("VOICE".into()),
        service_family: None,
        kind: ProductKind::Service,
        created_at: now(),
        updated_at: now(),
        version: 1,
        by: Default::default(),
    }
}

/// Limits with one maximum: `max` usage per day, with `tolerance` percent.
fn daily_usage_limit(max: i64, tolerance: i64) -> CustomerUsage {
    let mut patch = MaximaPatch::default();
    let i = MAXIMA.iter().position(|m| *m == (Measure::Usage, Period::Day)).unwrap();
    patch.0[i] = Some(Some(d(max)));
    let mut maxima = Maxima::default();
    maxima.patch(&patch);
    CustomerUsage {
        time_zone: Tz::UTC,
        limits: Some(LimitSettings { maxima, tolerance_percent: Some(d(tolerance)), ..Default::default() }),
        totals: HashMap::new(),
        products: HashMap::new(),
        alerted: HashMap::new(),
    }
}

fn facts(p: &Product, quantity: Decimal, amount: Decimal) -> EventFacts<'_> {
    EventFacts { product: p, quantity, amount, credit_type: "USD", at: now() }
}

fn ask(quantity: i64, amount: i64, allow_partial: bool) -> Ask {
    Ask {
        requested: Amounts { quantity: d(quantity), amount: d(amount) },
        allow_partial,
        allow_overage: false,
    }
}

#[test]
fn a_request_within_every_limit_and_the_balance_is_granted_whole() {
    let p = product();
    let u = daily_usage_limit(100, 0);
    let a = ask(40, 20, false);
    let ev = u.evaluate(&facts(&p, d(40), d(20)));
    assert_eq!(grant(&a, &ev, d(20)), (Grant::Granted, a.requested));
}

#[test]
fn past_a_maximum_a_partial_grant_is_the_room_left_with_tolerance_and_scales_the_amount() {
    let p = product();
    let mut u = daily_usage_limit(100, 10);
    u.hold(&facts(&p, d(80), d(0)));
    // 110 with tolerance, 80 taken: 30 of the 60 asked fit, half of the amount with it.
    let a = ask(60, 12, true);
    let ev = u.evaluate(&facts(&p, d(60), d(12)));
    assert_eq!(ev.decision, Decision::Blocked);
    assert_eq!(grant(&a, &ev, d(1000)), (Grant::Partial, Amounts { quantity: d(30), amount: d(6) }));
    // Without allow_partial the same request holds nothing.
    let whole = Ask { allow_partial: false, ..a };
    assert_eq!(grant(&whole, &ev, d(1000)), (Grant::Denied, Amounts::default()));
}

#[test]
fn a_measure_not_asked_for_bounds_nothing_unless_its_window_is_past_its_tolerance() {
    let p = product();
    let mut u = daily_usage_limit(10, 0);
    let i = MAXIMA.iter().position(|m| *m == (Measure::RatedAmount, Period::Day)).unwrap();
    let mut patch = MaximaPatch::default();
    patch.0[i] = Some(Some(d(100)));
    if let Some(l) = u.limits.as_mut() {
        l.maxima.patch(&patch);
    }
    // Usage exactly at its maximum: an amount-only request gets what the amount allows.
    u.hold(&facts(&p, d(10), d(0)));
    let a = Ask { allow_overage: true, ..ask(0, 200, true) };
    let ev = u.evaluate(&facts(&p, d(0), d(200)));
    assert_eq!(grant(&a, &ev, d(0)), (Grant::Partial, Amounts { quantity: d(0), amount: d(100) }));
    // Past it: nothing passes, not even a request for amount alone.
    u.hold(&facts(&p, d(1), d(0)));
    let ev = u.evaluate(&facts(&p, d(0), d(200)));
    assert_eq!(grant(&a, &ev, d(0)).0, Grant::Denied);
}

#[test]
fn the_balance_bounds_the_amount_unless_overage_is_allowed() {
    let p = product();
    let u = daily_usage_limit(1000, 0);
    let ev = u.evaluate(&facts(&p, d(10), d(50)));
    let a = ask(10, 50, true);
    assert_eq!(grant(&a, &ev, d(20)), (Grant::Partial, Amounts { quantity: d(4), amount: d(20) }));
    assert_eq!(grant(&Ask { allow_partial: false, ..a }, &ev, d(20)).0, Grant::Denied);
    assert_eq!(grant(&Ask { allow_overage: true, ..a }, &ev, d(0)), (Grant::Granted, a.requested));
    assert_eq!(grant(&a, &ev, d(0)).0, Grant::Denied, "nothing coverable: nothing to grant in part");
}

#[test]
fn a_window_already_past_its_tolerance_denies_even_a_partial_request() {
    let p = product();
    let mut u = daily_usage_limit(100, 0);
    u.hold(&facts(&p, d(100), d(0)));
    let ev = u.evaluate(&facts(&p, d(1), d(0)));
    assert_eq!(grant(&ask(1, 0, true), &ev, d(0)), (Grant::Denied, Amounts::default()));
}

#[test]
fn a_service_not_included_where_such_services_are_blocked_is_denied_whatever_the_size() {
    let p = product();
    let mut u = daily_usage_limit(100, 0);
    if let Some(l) = u.limits.as_mut() {
        l.services = vec![crate::domain::allowance::ServiceAllowance {
            selector: crate::domain::allowance::Selector::Service("OTHER".into()),
            maxima: Maxima::default(),
        }];
        l.block_not_included = true;
    }
    let ev = u.evaluate(&facts(&p, d(1), d(0)));
    assert!(ev.not_included_blocks);
    assert_eq!(grant(&ask(1, 0, true), &ev, d(0)).0, Grant::Denied);
}

#[test]
fn partial_grants_round_down_so_they_never_pass_the_room() {
    let p = product();
    let u = daily_usage_limit(10, 0);
    let ev = u.evaluate(&facts(&p, d(3), d(1)));
    // Room 10 of 3 is the whole request; room of 10 in 30 is a third, rounded down.
    let ev_big = u.evaluate(&facts(&p, d(30), d(1)));
    assert_eq!(grant(&ask(3, 1, true), &ev, d(1)).0, Grant::Granted);
    let (g, amounts) = grant(&ask(30, 1, true), &ev_big, d(1));
    assert_eq!(g, Grant::Partial);
    assert_eq!(amounts.quantity, d(10));
    assert_eq!(amounts.amount, Decimal::new(333_333, 6));
}

#[test]
fn a_partial_grant_of_amounts_too_large_to_multiply_still_takes_its_share() {
    let p = product();
    let half = 500_000_000_000_000;
    let u = daily_usage_limit(half, 0);
    let max = 1_000_000_000_000_000;
    let ev = u.evaluate(&facts(&p, d(max), d(max)));
    let a = Ask { allow_overage: true, ..ask(max, max, true) };
    // 10^15 x 5 x 10^14 passes what a Decimal holds: the share is taken the other way.
    assert_eq!(
        grant(&a, &ev, Decimal::ZERO),
        (Grant::Partial, Amounts { quantity: d(half), amount: d(half) })
    );
}

#[test]
fn amounts_add_up_and_are_zero_only_when_both_are() {
    let a = Amounts { quantity: d(2), amount: d(3) };
    let b = Amounts { quantity: d(5), amount: d(7) };
    assert_eq!(a + b, Amounts { quantity: d(7), amount: d(10) });
    assert!(Amounts::default().is_zero());
    assert!(!Amounts { quantity: d(1), amount: d(0) }.is_zero());
    assert!(!Amounts { quantity: d(0), amount: d(1) }.is_zero());
}

#[test]
fn a_reservation_read_past_its_expiry_is_expired_then_and_otherwise_unchanged() {
    let r = Reservation {
        id: crate::domain::ids::ReservationId::generate(),
        request_id: "r1".into(),
        customer: crate::domain::ids::CustomerId::generate(),
        product: ProductId::generate(),
        credit_type: "USD".into(),
        group_values: Default::default(),
        contract_id: None,
        requested: Amounts::default(),
        granted: Amounts::default(),
        state: State::Open,
        created_at: now(),
        expires_at: now() + Duration::minutes(5),
        settled_at: None,
        event_id: None,
    };
    assert_eq!(r.clone().as_of(now()), r, "still open");
    let late = r.clone().as_of(now() + Duration::hours(1));
    assert_eq!((late.state, late.settled_at), (State::Expired, Some(r.expires_at)));
    let released = Reservation { state: State::Released, settled_at: Some(now()), ..r };
    assert_eq!(released.clone().as_of(now() + Duration::hours(1)), released);
}

#[test]
fn an_open_reservation_past_its_expiry_reads_as_expired() {
    let at = now();
    assert_eq!(State::Open.at(at, at), State::Expired);
    assert_eq!(State::Open.at(at + Duration::seconds(1), at), State::Open);
    assert_eq!(State::Released.at(at, at + Duration::days(1)), State::Released);
}

#[test]
fn commits_record_open_or_expired_reservations_repeat_their_own_event_and_refuse_the_rest() {
    assert_eq!(commit_step(State::Open, None, "e1"), Ok(CommitStep::Record));
    assert_eq!(commit_step(State::Expired, None, "e1"), Ok(CommitStep::Record));
    assert_eq!(commit_step(State::Committed, Some("e1"), "e1"), Ok(CommitStep::Repeat));
    assert_eq!(commit_step(State::Committed, Some("e1"), "e2").unwrap_err().state, State::Committed);
    assert!(commit_step(State::Released, None, "e1").is_err());
    assert!(commit_step(State::Denied, None, "e1").is_err());
}

#[test]
fn refusals_say_what_the_reservation_is() {
    assert_eq!(
        commit_step(State::Released, None, "e1").unwrap_err().message,
        "the reservation is released: it cannot be committed"
    );
    assert_eq!(
        commit_step(State::Committed, Some("e1"), "e2").unwrap_err().message,
        "the reservation was committed as event e1"
    );
    assert_eq!(
        check_extendable(State::Expired).unwrap_err().message,
        "the reservation is expired: it cannot be extended"
    );
}

#[test]
fn a_repeated_request_has_the_fingerprint_of_the_first_and_any_change_another() {
    let e = crate::domain::usage::UsageEvent {
        event_id: String::new(),
        customer_id: crate::domain::ids::CustomerId::generate(),
        product: crate::domain::usage::ProductRef::Code("CALL".into()),
        quantity: d(2),
        amount: Decimal::new(150, 2),
        credit_type: "USD".into(),
        timestamp: now(),
        group_values: Default::default(),
        contract_id: None,
    };
    let a = ask(2, 1, false);
    let first = reserve_fingerprint(&e, None, &a);
    let later = crate::domain::usage::UsageEvent {
        timestamp: now() + Duration::minutes(1),
        amount: Decimal::new(1500, 3),
        ..e.clone()
    };
    assert_eq!(
        reserve_fingerprint(&later, None, &a),
        first,
        "the instant sent and trailing zeros do not count"
    );
    let more = crate::domain::usage::UsageEvent { quantity: d(3), ..e.clone() };
    assert_ne!(reserve_fingerprint(&more, None, &a), first);
    assert_ne!(reserve_fingerprint(&e, Some(Duration::minutes(1)), &a), first);
    assert_ne!(reserve_fingerprint(&e, None, &Ask { allow_partial: true, ..a }), first);

    let x = extend_fingerprint("r1", &a, None);
    assert_eq!(extend_fingerprint("r1", &a, None), x);
    assert_ne!(extend_fingerprint("r2", &a, None), x);
    assert_ne!(extend_fingerprint("r1", &ask(3, 1, false), None), x);
    assert_ne!(extend_fingerprint("r1", &a, Some(Duration::minutes(1))), x);
}

#[test]
fn releases_end_an_open_hold_once_and_refuse_a_committed_reservation() {
    assert_eq!(release_step(State::Open), Ok(true));
    for settled in [State::Released, State::Expired, State::Denied] {
        assert_eq!(release_step(settled), Ok(false));
    }
    assert!(release_step(State::Committed).is_err());
    assert!(check_extendable(State::Open).is_ok());
    for s in [State::Committed, State::Released, State::Expired, State::Denied] {
        assert_eq!(check_extendable(s).unwrap_err().state, s);
    }
}

#[test]
fn hold_durations_default_and_cap() {
    let h = HoldDurations { default: Duration::minutes(5), max: Duration::hours(1) };
    let mut v = Violations::default();
    assert_eq!(h.resolve(&mut v, "ttl", None), Some(Duration::minutes(5)));
    assert_eq!(h.resolve(&mut v, "ttl", Some(Duration::minutes(60))), Some(Duration::hours(1)));
    assert!(v.is_empty());
    assert_eq!(h.resolve(&mut v, "ttl", Some(Duration::minutes(61))), None);
    assert_eq!(h.resolve(&mut v, "ttl", Some(Duration::zero())), None);
    assert_eq!(v.items().len(), 2);
}

#[test]
fn state_names_read_back() {
    for s in [State::Open, State::Committed, State::Released, State::Expired, State::Denied] {
        assert_eq!(State::parse(s.as_str()), Some(s));
    }
    assert_eq!(State::parse("open"), None);
}

/// One step of the property test.
#[derive(Clone, Debug)]
enum Step {
    Reserve { quantity: i64, amount: i64, partial: bool },
    Extend { which: usize, quantity: i64, amount: i64 },
    Commit { which: usize, quantity: i64, amount: i64 },
    Release { which: usize },
    Expire { which: usize },
    Direct { quantity: i64, amount: i64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..60i64, 0..40i64, any::<bool>()).prop_map(|(quantity, amount, partial)| Step::Reserve {
            quantity,
            amount,
            partial
        }),
        (0..8usize, 0..30i64, 0..20i64).prop_map(|(which, quantity, amount)| Step::Extend {
            which,
            quantity,
            amount
        }),
        (0..8usize, 0..70i64, 0..50i64).prop_map(|(which, quantity, amount)| Step::Commit {
            which,
            quantity,
            amount
        }),
        (0..8usize).prop_map(|which| Step::Release { which }),
        (0..8usize).prop_map(|which| Step::Expire { which }),
        (0..30i64, 0..20i64).prop_map(|(quantity, amount)| Step::Direct { quantity, amount }),
    ]
}

/// The customer as the service sees it: recorded usage, the balance it drew, and
/// reservations with their state and grant.
struct Model {
    product: Product,
    recorded: CustomerUsage,
    balance: Decimal,
    spent: Decimal,
    reservations: Vec<(State, Amounts)>,
}

impl Model {
    /// What a decision sees: recorded usage with every open hold counted as used, and
    /// the balance left after what was spent and what open holds cover.
    fn view(&self) -> (CustomerUsage, Decimal) {
        let mut seen = self.recorded.clone();
        let mut coverable = self.balance - self.spent;
        for (state, held) in &self.reservations {
            if *state == State::Open {
                seen.hold(&facts(&self.product, held.quantity, held.amount));
                coverable -= held.amount.min(coverable.max(Decimal::ZERO));
            }
        }
        (seen, coverable.max(Decimal::ZERO))
    }

    /// Records usage as RecordUsage would: judged with every open hold as used; allowed
    /// usage draws what the balance has left after the holds (the rest is overage).
    fn record(&mut self, amounts: Amounts) {
        let (seen, coverable) = self.view();
        let f = facts(&self.product, amounts.quantity, amounts.amount);
        let ev = seen.evaluate(&f);
        if ev.decision != Decision::Blocked {
            self.recorded.record(&f, &ev);
            self.spent += amounts.amount.min(coverable);
        }
    }

    fn held(&self) -> Amounts {
        self.reservations
            .iter()
            .filter(|(s, _)| *s == State::Open)
            .fold(Amounts::default(), |sum, (_, a)| sum + *a)
    }

    fn used_today(&self) -> Decimal {
        let w = window_of(WindowKind::Day, Tz::UTC, now());
        self.recorded.scope_total(None, &w, Measure::Usage)
    }
}

const MAX_PER_DAY: i64 = 100;
const BALANCE: i64 = 60;

proptest! {
    #[test]
    fn holds_plus_usage_never_pass_what_was_allowed_and_settle_to_the_committed_usage(
        steps in proptest::collection::vec(step(), 1..40)
    ) {
        let mut m = Model {
            product: product(),
            recorded: daily_usage_limit(MAX_PER_DAY, 0),
            balance: d(BALANCE),
            spent: Decimal::ZERO,
            reservations: Vec::new(),
        };
        for s in steps {
            match s {
                Step::Reserve { quantity, amount, partial } => {
                    let a = ask(quantity, amount, partial);
                    let (seen, coverable) = m.view();
                    let ev = seen.evaluate(&facts(&m.product, a.requested.quantity, a.requested.amount));
                    let (g, granted) = grant(&a, &ev, coverable);
                    let state = if g == Grant::Denied { State::Denied } else { State::Open };
                    prop_assert!(granted.quantity <= a.requested.quantity && granted.amount <= a.requested.amount);
                    m.reservations.push((state, granted));
                }
                Step::Extend { which, quantity, amount } => {
                    let Some(&(state, held)) = m.reservations.get(which) else { continue };
                    if check_extendable(state).is_err() { continue }
                    let a = ask(quantity, amount, true);
                    let (seen, coverable) = m.view();
                    let ev = seen.evaluate(&facts(&m.product, a.requested.quantity, a.requested.amount));
                    let (_, more) = grant(&a, &ev, coverable);
                    m.reservations[which].1 = held + more;
                }
                Step::Commit { which, quantity, amount } => {
                    let Some(&(state, _)) = m.reservations.get(which) else { continue };
                    if commit_step(state, None, "e") != Ok(CommitStep::Record) { continue }
                    // The hold ends and the usage is judged as any event, in one step.
                    m.reservations[which].0 = State::Committed;
                    m.record(Amounts { quantity: d(quantity), amount: d(amount) });
                }
                Step::Release { which } => {
                    let Some(&(state, _)) = m.reservations.get(which) else { continue };
                    if release_step(state) == Ok(true) {
                        m.reservations[which].0 = State::Released;
                    }
                }
                Step::Expire { which } => {
                    let Some(&(state, _)) = m.reservations.get(which) else { continue };
                    let later = now() + Duration::minutes(10);
                    m.reservations[which].0 = state.at(now() + Duration::minutes(5), later);
                }
                Step::Direct { quantity, amount } => {
                    m.record(Amounts { quantity: d(quantity), amount: d(amount) });
                }
            }
            let held = m.held();
            prop_assert!(held.quantity + m.used_today() <= d(MAX_PER_DAY),
                "held {} + used {} past the maximum", held.quantity, m.used_today());
            prop_assert!(held.amount + m.spent <= d(BALANCE),
                "held {} + spent {} past the balance", held.amount, m.spent);
        }
        for r in m.reservations.iter_mut() {
            if release_step(r.0) == Ok(true) {
                r.0 = State::Released;
            }
        }
        prop_assert!(m.held().is_zero());
        let (seen, _) = m.view();
        let w = window_of(WindowKind::Day, Tz::UTC, now());
        prop_assert_eq!(seen.scope_total(None, &w, Measure::Usage), m.used_today(),
            "with every hold ended, decisions see the committed usage alone");
    }
}
