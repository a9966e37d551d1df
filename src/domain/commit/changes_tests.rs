//! A commit's own rules: its type's names, its access segments' bounds, and each
//! refusal of a change to the end of its access.

use chrono::{Duration, TimeZone};

use super::*;
use crate::domain::commit::balance::{CloseKind, Segment};
use crate::domain::commit::schedule::{ChargeAmount, InvoiceItem};
use crate::domain::validation::Violations;

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 0, 0, 0).unwrap()
}

fn commit(access: Vec<AccessItem>) -> Commit {
    let new = NewCommit {
        customer_id: CustomerId(Uuid::from_u128(1)),
        product_id: ProductId(Uuid::from_u128(2)),
        commit_type: CommitType::Prepaid,
        priority: Decimal::ONE,
        credit_type: "USD".into(),
        access,
        invoice_schedule: None,
        applicability: Default::default(),
        custom_fields: BTreeMap::new(),
        rate_type: None,
        name: None,
        description: None,
        invoice_contract_id: None,
        netsuite_sales_order_id: None,
        salesforce_opportunity_id: None,
        uniqueness_key: None,
    };
    Commit::create(CommitId(Uuid::from_u128(3)), new, at(1), None)
}

fn item(from: u32, to: u32) -> AccessItem {
    AccessItem { amount: Decimal::TEN, starting_at: at(from), ending_before: at(to) }
}

fn segment(idx: i32, from: u32, to: u32, closed: bool) -> Segment {
    Segment {
        commit_id: CommitId(Uuid::from_u128(3)),
        idx,
        starting_at: at(from),
        ending_before: at(to),
        amount: Decimal::TEN,
        remaining: Decimal::TEN,
        closed: closed.then(|| (at(to), CloseKind::Expired)),
    }
}

fn end_change(end: DateTime<Utc>) -> CommitChanges {
    CommitChanges { access_end: Some(end), ..Default::default() }
}

#[test]
fn commit_types_are_named_as_the_seed_names_them() {
    for (t, name) in [(CommitType::Prepaid, "PREPAID"), (CommitType::Postpaid, "POSTPAID")] {
        assert_eq!(t.as_str(), name);
        assert_eq!(CommitType::parse(name), Some(t));
    }
    assert_eq!(CommitType::parse("prepaid"), None);
}

#[test]
fn a_segment_holds_its_start_but_not_its_end() {
    let s = item(2, 5);
    assert!(!s.contains(at(2) - Duration::nanoseconds(1)));
    assert!(s.contains(at(2)));
    assert!(s.contains(at(5) - Duration::nanoseconds(1)));
    assert!(!s.contains(at(5)));
}

#[test]
fn access_ends_with_the_latest_segment_and_the_schedule_is_expanded() {
    let mut c = commit(vec![item(1, 9), item(9, 20), item(3, 4)]);
    assert_eq!(c.access_end(), Some(at(20)));
    assert_eq!(commit(Vec::new()).access_end(), None);
    assert!(c.invoice_charges().is_empty());
    c.invoice_schedule = Some(InvoiceSchedule {
        credit_type: "USD".into(),
        do_not_invoice: false,
        items: vec![InvoiceItem { timestamp: at(2), charge: ChargeAmount::Amount(Decimal::TEN) }],
        recurring: None,
    });
    let charges = c.invoice_charges();
    assert_eq!(
        charges.iter().map(|ch| (ch.timestamp, ch.amount)).collect::<Vec<_>>(),
        [(at(2), Decimal::TEN)]
    );
}

#[test]
fn the_last_segment_moves_to_a_later_future_end_and_the_version_advances() {
    let c = commit(vec![item(1, 10), item(10, 20)]);
    let segments = [segment(0, 1, 10, true), segment(1, 10, 20, false)];
    let mut v = Violations::default();
    let (next, moved) = apply_changes(&c, &segments, end_change(at(25)), (at(12), Some(at(11))), &mut v);
    assert!(v.is_empty(), "{:?}", v.items());
    assert_eq!(moved, Some((1, at(25))));
    assert_eq!(next.access[1].ending_before, at(25));
    assert_eq!(next.access[0], c.access[0], "earlier segments stay");
    assert_eq!((next.version, next.updated_at), (c.version + 1, at(12)));
}

#[test]
fn each_refused_end_names_its_reason() {
    let c = commit(vec![item(10, 20)]);
    let open = [segment(0, 10, 20, false)];
    let refused =
        |segments: &[Segment], end: DateTime<Utc>, now: DateTime<Utc>, last: Option<DateTime<Utc>>| {
            let mut v = Violations::default();
            let (_, moved) = apply_changes(&c, segments, end_change(end), (now, last), &mut v);
            assert_eq!(moved, None);
            let items = v.items();
            assert_eq!(items.len(), 1);
            assert_eq!(items[0].field, "access_end_time");
            items[0].description.clone()
        };
    // Ended: closed by the job, or past its end though not yet closed (the end itself counts).
    assert!(refused(&[segment(0, 10, 20, true)], at(25), at(12), None).contains("already ended"));
    assert!(refused(&open, at(25), at(20), None).contains("already ended"));
    // Not after the segment's start (the start itself is refused).
    assert!(refused(&open, at(10), at(5), None).contains("after the last segment's start"));
    // Not in the future (now itself is refused).
    assert!(refused(&open, at(12), at(12), None).contains("in the future"));
    // Not at or before the last drawdown.
    assert!(refused(&open, at(14), at(12), Some(at(14))).contains("last drawdown"));
    assert!(refused(&[], at(14), at(12), None).contains("no access segment"));

    // Just past each bound is accepted.
    let mut v = Violations::default();
    let (_, moved) = apply_changes(&c, &open, end_change(at(14)), (at(12), Some(at(13))), &mut v);
    assert_eq!((moved, v.is_empty()), (Some((0, at(14))), true));
}

#[test]
fn voiding_stamps_the_time_and_key_and_advances_the_version_once() {
    let c = commit(vec![item(1, 10)]);
    let key = Some(ApiKeyId(Uuid::from_u128(9)));
    let voided = c.voided(at(5), key);
    assert_eq!((voided.voided_at, voided.updated_at), (Some(at(5)), at(5)));
    assert_eq!(voided.version, c.version + 1);
    assert_eq!((voided.by.created_by, voided.by.updated_by), (c.by.created_by, key));
    assert_eq!(voided.access, c.access, "nothing else changes");
}
