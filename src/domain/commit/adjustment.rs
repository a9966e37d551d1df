//! Manual adjustments of a commit's balance and the reason given when voiding one: what a
//! request must hold to be accepted.

use rust_decimal::Decimal;

use crate::domain::ids::CommitId;
use crate::domain::text::{check_code, check_length, check_name};
use crate::domain::validation::{Parsed, Violations};

/// Longest reason of an adjustment or a void.
pub const MAX_REASON: usize = 500;

/// A manual adjustment to make.
#[derive(Clone, Debug, PartialEq)]
pub struct Adjustment {
    pub commit_id: CommitId,
    pub segment_idx: i32,
    pub amount: Decimal,
    pub reason: String,
    pub request_id: Option<String>,
}

/// An adjustment as read from the wire.
#[derive(Clone, Debug, Default)]
pub struct AdjustmentDraft {
    pub commit_id: Parsed<CommitId>,
    pub segment_idx: i32,
    pub amount: Parsed<Decimal>,
    pub reason: String,
    /// Empty when the caller sent none.
    pub request_id: String,
}

/// Checks an adjustment, naming every bad field in `v`: a non-zero amount on a segment
/// index that can exist, with a reason.
pub fn validate_adjustment(d: AdjustmentDraft, v: &mut Violations) -> Option<Adjustment> {
    let commit_id = d.commit_id.required(v, "commit_id");
    let amount = d.amount.required(v, "amount");
    if amount.is_some_and(|a| a.is_zero()) {
        v.add("amount", "must not be zero");
    }
    if d.segment_idx < 0 {
        v.add("segment_index", "must not be negative");
    }
    check_name(v, "reason", &d.reason, MAX_REASON);
    if !d.request_id.is_empty() {
        check_code(v, "request_id", &d.request_id, 128);
    }
    let request_id = (!d.request_id.is_empty()).then_some(d.request_id);
    match (commit_id, amount) {
        (Some(commit_id), Some(amount)) if v.is_empty() => {
            Some(Adjustment { commit_id, segment_idx: d.segment_idx, amount, reason: d.reason, request_id })
        }
        _ => None,
    }
}

impl Adjustment {
    /// What a repeat of the request id must match to be the same request.
    pub fn fingerprint(&self) -> Vec<u8> {
        use sha2::{Digest, Sha256};
        let text =
            format!("{}|{}|{}|{}", self.commit_id, self.segment_idx, self.amount.normalize(), self.reason);
        Sha256::digest(text.as_bytes()).to_vec()
    }
}

/// Checks the optional reason given for voiding a commit.
pub fn check_void_reason(v: &mut Violations, reason: &str) {
    check_length(v, "reason", reason, 0, MAX_REASON);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> AdjustmentDraft {
        AdjustmentDraft {
            commit_id: Parsed::Valid(CommitId(uuid::Uuid::nil())),
            segment_idx: 0,
            amount: Parsed::Valid(Decimal::from(-5)),
            reason: "goodwill".into(),
            request_id: String::new(),
        }
    }

    fn fields(v: &Violations) -> Vec<String> {
        v.items().iter().map(|i| i.field.clone()).collect()
    }

    #[test]
    fn a_negative_amount_with_a_reason_is_an_adjustment_without_request_id() {
        let mut v = Violations::default();
        let a = validate_adjustment(draft(), &mut v).expect("valid");
        assert_eq!((a.amount, a.request_id), (Decimal::from(-5), None));
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let mut v = Violations::default();
        let d = AdjustmentDraft {
            amount: Parsed::Valid(Decimal::ZERO),
            segment_idx: -1,
            reason: String::new(),
            request_id: "bad\u{7}".into(),
            ..draft()
        };
        assert_eq!(validate_adjustment(d, &mut v), None);
        assert_eq!(fields(&v), ["amount", "segment_index", "reason", "request_id"]);
    }

    #[test]
    fn a_missing_commit_or_amount_is_required() {
        let mut v = Violations::default();
        let d = AdjustmentDraft { commit_id: Parsed::Absent, amount: Parsed::Absent, ..draft() };
        assert_eq!(validate_adjustment(d, &mut v), None);
        assert_eq!(fields(&v), ["commit_id", "amount"]);
    }

    #[test]
    fn a_void_reason_may_be_empty_but_not_longer_than_the_maximum() {
        let mut v = Violations::default();
        check_void_reason(&mut v, "");
        assert!(v.is_empty());
        check_void_reason(&mut v, &"r".repeat(MAX_REASON + 1));
        assert_eq!(fields(&v), ["reason"]);
    }

    #[test]
    fn the_fingerprint_ignores_trailing_zeros_and_tells_reasons_apart() {
        let a = validate_adjustment(draft(), &mut Violations::default()).unwrap();
        let same = Adjustment { amount: Decimal::new(-500, 2), ..a.clone() };
        let other = Adjustment { reason: "other".into(), ..a.clone() };
        assert_eq!(a.fingerprint(), same.fingerprint());
        assert_ne!(a.fingerprint(), other.fingerprint());
    }
}
