//! Patch application: each operation, and failures that leave the commitment untouched.

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::json;

use super::*;
use crate::domain::commitment::{CommitmentStatus, MinimumSpend, PeriodKind, tests::terms};
use crate::domain::ids::CustomerId;

fn commitment() -> Commitment {
    Commitment::create(
        CustomerId::generate(),
        terms(),
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        None,
    )
}

fn op(op: &str, path: &str, value: Option<serde_json::Value>) -> Operation {
    Operation { op: op.into(), path: path.into(), from: None, value }
}

fn moved(op: &str, from: &str, path: &str) -> Operation {
    Operation { op: op.into(), path: path.into(), from: Some(from.into()), value: None }
}

fn invalid_fields(r: Result<Terms, PatchFailure>) -> Vec<String> {
    match r {
        Err(PatchFailure::Invalid(v)) => v.items().iter().map(|i| i.field.clone()).collect(),
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn the_document_has_every_field_in_snake_case() {
    let c = commitment();
    let doc = document(&c);
    assert_eq!(doc["customer_obligations"]["minimum_spend"][0], json!({"period": "MONTH", "amount": "100"}));
    assert_eq!(doc["status"], json!("ACTIVE"));
    assert_eq!(doc["time_range"]["start_time"], json!("2026-01-01T00:00:00Z"));
    assert_eq!(doc["subscription_id"], serde_json::Value::Null);
}

#[test]
fn replace_and_add_change_values() {
    let c = commitment();
    let t = apply(
        &c,
        &[
            op("replace", "/customer_obligations/minimum_spend/0/amount", Some(json!("250.50"))),
            op(
                "add",
                "/customer_obligations/minimum_spend/-",
                Some(json!({"period": "TERM", "amount": "1000"})),
            ),
            op("replace", "/violation_policy/notify_per_customer_violations", Some(json!(true))),
        ],
    )
    .expect("applies");
    assert_eq!(t.customer_obligations.minimum_spend[0].amount, "250.50".parse::<Decimal>().unwrap());
    assert_eq!(
        t.customer_obligations.minimum_spend[1],
        MinimumSpend { period: PeriodKind::Term, amount: Decimal::from(1000) }
    );
    assert!(t.violation_policy.notify_per_customer_violations);
}

#[test]
fn remove_move_and_copy_work_on_lists() {
    let c = commitment();
    let t = apply(
        &c,
        &[
            moved("copy", "/customer_obligations/minimum_spend/0", "/account_obligations/minimum_spend/0"),
            op("remove", "/customer_obligations/minimum_spend/0", None),
        ],
    )
    .expect("applies");
    assert!(t.customer_obligations.minimum_spend.is_empty());
    assert_eq!(t.account_obligations.minimum_spend.len(), 1);
    let t = apply(
        &c,
        &[moved("move", "/customer_obligations/minimum_spend", "/account_obligations/minimum_spend")],
    )
    .unwrap();
    assert_eq!(t.account_obligations.minimum_spend.len(), 1);
}

#[test]
fn a_failed_test_names_its_operation_and_changes_nothing() {
    let c = commitment();
    let before = c.clone();
    let r = apply(
        &c,
        &[
            op("replace", "/device_id", Some(json!(uuid::Uuid::now_v7()))),
            op("test", "/status", Some(json!("VIOLATED"))),
        ],
    );
    assert_eq!(r, Err(PatchFailure::TestFailed { index: 1, path: "/status".into() }));
    assert_eq!(c, before);
    let ok = apply(
        &c,
        &[
            op("test", "/status", Some(json!(CommitmentStatus::Active))),
            op("test", "/etag", Some(json!("W/\"1\""))),
        ],
    );
    assert!(ok.is_ok(), "read-only fields can be tested");
}

#[test]
fn paths_outside_the_document_are_invalid() {
    let c = commitment();
    assert_eq!(invalid_fields(apply(&c, &[op("remove", "/no_such_field", None)])), ["operations[0].path"]);
    assert_eq!(
        invalid_fields(apply(
            &c,
            &[op("replace", "/customer_obligations/minimum_spend/5/amount", Some(json!("1")))]
        )),
        ["operations[0].path"]
    );
    assert_eq!(
        invalid_fields(apply(&c, &[op("add", "/surprise", Some(json!(1)))])),
        ["operations[0]"],
        "unknown fields are refused"
    );
}

#[test]
fn immutable_fields_cannot_change() {
    let c = commitment();
    let r = apply(
        &c,
        &[
            op("replace", "/device_id", Some(json!(null))),
            op("replace", "/customer_id", Some(json!(uuid::Uuid::now_v7()))),
            op("remove", "/create_time", None),
            moved("move", "/id", "/device_id"),
            op("replace", "", Some(json!({}))),
        ],
    );
    assert_eq!(
        invalid_fields(r),
        ["operations[1].path", "operations[2].path", "operations[3].from", "operations[4].path"]
    );
}

#[test]
fn malformed_operations_are_invalid() {
    let c = commitment();
    let r = apply(
        &c,
        &[op("upsert", "/device_id", None), op("add", "/device_id", None), moved("copy", "x", "/device_id")],
    );
    assert_eq!(invalid_fields(r), ["operations[0].op", "operations[1].value", "operations[2].from"]);
    assert_eq!(invalid_fields(apply(&c, &[])), ["operations"]);
}

#[test]
fn a_value_of_the_wrong_type_is_blamed_on_its_operation() {
    let c = commitment();
    let r = apply(
        &c,
        &[
            op("replace", "/device_id", Some(json!(null))),
            op("replace", "/customer_obligations/minimum_spend/0/amount", Some(json!(12.5))),
        ],
    );
    assert_eq!(invalid_fields(r), ["operations[1]"], "a JSON number would go through a float");
}

#[test]
fn rule_breaches_are_blamed_on_the_last_operation_touching_them() {
    let ops = [
        op(
            "replace",
            "/time_range",
            Some(json!({"start_time": "2026-01-01T00:00:00Z", "end_time": "2026-06-01T00:00:00Z"})),
        ),
        op("replace", "/device_id", Some(json!(null))),
        op("replace", "/time_range/end_time", Some(json!("2025-01-01T00:00:00Z"))),
    ];
    let found = Violations::single("time_range.end_time", "must be after the start");
    let blamed = blame(&ops, &found);
    assert_eq!(blamed.items()[0].field, "operations[2]");
    assert_eq!(blamed.items()[0].description, "time_range.end_time: must be after the start");
    let found =
        Violations::single("customer_obligations.minimum_spend[0].amount", "must be greater than zero");
    assert_eq!(blame(&ops, &found).items()[0].field, "operations", "no operation touched it");
}

#[test]
fn a_breach_in_an_appended_element_is_blamed_on_the_append() {
    let ops = [
        op("replace", "/device_id", Some(json!(null))),
        op("add", "/customer_obligations/minimum_spend/-", Some(json!({"amount": "0"}))),
    ];
    let found =
        Violations::single("customer_obligations.minimum_spend[3].amount", "must be greater than zero");
    assert_eq!(blame(&ops, &found).items()[0].field, "operations[1]");
}

#[test]
fn a_patch_holds_at_most_the_most_operations() {
    let c = commitment();
    let ops = |n: usize| vec![op("test", "/status", Some(json!("ACTIVE"))); n];
    assert!(apply(&c, &ops(MAX_OPERATIONS)).is_ok(), "{MAX_OPERATIONS} operations are allowed");
    assert_eq!(invalid_fields(apply(&c, &ops(MAX_OPERATIONS + 1))), ["operations"]);
}
