use chrono::{TimeZone, Utc};

use super::*;
use crate::domain::commit::balance::CloseKind;
use crate::domain::commitment::tests::terms;
use crate::domain::commitment::{EndingConfig, Terms};
use crate::domain::ids::CustomerId;

fn at(month: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, 1, 0, 0, 0).unwrap()
}

fn segment(idx: i32, start: u32, end: u32) -> Segment {
    Segment {
        commit_id: CommitId(Uuid::from_u128(1)),
        idx,
        starting_at: at(start),
        ending_before: at(end),
        amount: Decimal::TEN,
        remaining: Decimal::TEN,
        closed: None,
    }
}

#[test]
fn the_last_segment_open_at_the_end_moves_to_the_new_end() {
    let segments = [segment(0, 1, 3), segment(1, 3, 6)];
    assert_eq!(prepaid_extension(&segments, at(6), at(9)), Some(1), "ends exactly at the commitment's end");
    assert_eq!(prepaid_extension(&segments, at(5), at(9)), Some(1), "ends after it");
    let reordered = [segment(1, 3, 6), segment(0, 1, 3)];
    assert_eq!(prepaid_extension(&reordered, at(5), at(9)), Some(1), "the latest end, whatever the order");
}

#[test]
fn a_segment_ended_before_closed_or_already_later_is_left_alone() {
    assert_eq!(prepaid_extension(&[segment(0, 1, 5)], at(6), at(9)), None, "ended before the commitment");
    let mut closed = segment(0, 1, 6);
    closed.closed = Some((at(6), CloseKind::Expired));
    assert_eq!(prepaid_extension(&[closed], at(6), at(9)), None, "written off");
    assert_eq!(prepaid_extension(&[segment(0, 1, 9)], at(6), at(9)), None, "already ends then");
    assert_eq!(prepaid_extension(&[segment(0, 1, 10)], at(6), at(9)), None, "never shortened");
    assert_eq!(prepaid_extension(&[], at(6), at(9)), None);
}

fn prepaid(start: DateTime<Utc>, end: DateTime<Utc>) -> Commit {
    Commit {
        id: CommitId(Uuid::from_u128(2)),
        customer_id: CustomerId(Uuid::from_u128(7)),
        product_id: crate::domain::ids::ProductId(Uuid::from_u128(8)),
        commit_type: crate::domain::commit::CommitType::Prepaid,
        priority: Decimal::ONE,
        credit_type: "USD".into(),
        access: vec![crate::domain::commit::AccessItem {
            amount: Decimal::TEN,
            starting_at: start,
            ending_before: end,
        }],
        invoice_schedule: None,
        applicability: Default::default(),
        custom_fields: Default::default(),
        rate_type: None,
        name: None,
        description: None,
        invoice_contract_id: None,
        netsuite_sales_order_id: None,
        salesforce_opportunity_id: None,
        uniqueness_key: None,
        voided_at: None,
        created_at: start,
        updated_at: start,
        version: 3,
        by: Default::default(),
    }
}

fn ended(plan: Option<&str>, status: CommitmentStatus) -> Commitment {
    let t = Terms {
        ending_config: EndingConfig { plan_id: plan.map(str::to_owned), ..EndingConfig::default() },
        ..terms()
    };
    let mut c = Commitment::create(CustomerId(Uuid::from_u128(7)), t, at(1), None);
    c.status = status;
    c
}

#[test]
fn an_extension_moves_the_segment_and_notes_it_on_the_ledger_without_an_amount() {
    let c = ended(None, CommitmentStatus::Fulfilled);
    let commit = prepaid(at(1), at(6));
    let e = extend(&commit, 0, at(9), &c, Uuid::from_u128(5), at(7));
    assert_eq!(e.commit.access[0].ending_before, at(9));
    assert_eq!(e.commit.version, commit.version + 1);
    assert_eq!(e.commit.updated_at, at(7));
    assert_eq!(
        (e.note.kind, e.note.amount, e.note.segment_idx),
        (LedgerKind::AccessExtended, Decimal::ZERO, 0)
    );
    assert_eq!(e.note.effective_at, c.terms.time_range.end_time);
    assert_eq!(e.note.source_id, Some(c.id.uuid()));
    let reason = e.note.reason.unwrap();
    assert!(reason.contains(&at(6).to_rfc3339()) && reason.contains(&at(9).to_rfc3339()), "{reason}");
}

#[test]
fn the_ended_notice_carries_the_next_plan_the_outcome_and_the_extended_commits() {
    let c = ended(Some("gold-2027"), CommitmentStatus::Violated);
    let extended = [CommitId(Uuid::from_u128(3))];
    let n = ended_notice(&c, &extended, Uuid::from_u128(9));
    assert_eq!(
        (n.kind, n.customer_id, n.id),
        (ViolationKind::CommitmentEnded, Some(c.customer), Uuid::from_u128(9))
    );
    assert_eq!(n.occurred_at, c.terms.time_range.end_time);
    assert_eq!(n.detail.plan_id.as_deref(), Some("gold-2027"));
    assert_eq!(n.detail.commitment_id, Some(c.id.uuid()));
    assert!(n.detail.message.contains("not met") && n.detail.message.contains(&extended[0].to_string()));

    let quiet = ended_notice(&ended(None, CommitmentStatus::Fulfilled), &[], Uuid::from_u128(9));
    assert_eq!(quiet.detail.plan_id, None);
    assert!(quiet.detail.message.contains("met") && !quiet.detail.message.contains("not met"));
    assert!(!quiet.detail.message.contains("plan") && !quiet.detail.message.contains("extended"));
}
