//! Violation values -> `billing.commitments.v1.Violation` messages.

use chrono::{DateTime, Utc};

use crate::domain::seal::TokenKey;
use crate::domain::violation::{NewViolation, ViolationKind, cursor_of};
use crate::grpc::convert::{decimal, opt_timestamp};
use crate::grpc::limit_ref::stored_limit_ref;
use crate::proto::v1 as pb;

pub fn kind_to_wire(k: ViolationKind) -> pb::ViolationKind {
    match k {
        ViolationKind::LimitWarning => pb::ViolationKind::LimitWarning,
        ViolationKind::LimitBlock => pb::ViolationKind::LimitBlock,
        ViolationKind::ServiceNotIncluded => pb::ViolationKind::ServiceNotIncluded,
        ViolationKind::ThresholdCrossed => pb::ViolationKind::ThresholdCrossed,
        ViolationKind::CommitExhausted => pb::ViolationKind::CommitExhausted,
        ViolationKind::PostpaidTrueUp => pb::ViolationKind::PostpaidTrueUp,
        ViolationKind::CommitmentShortfall => pb::ViolationKind::CommitmentShortfall,
        ViolationKind::EarlyTermination => pb::ViolationKind::EarlyTermination,
        ViolationKind::CommitmentEnded => pb::ViolationKind::CommitmentEnded,
        ViolationKind::BalanceLow => pb::ViolationKind::BalanceLow,
        ViolationKind::BalanceRecovered => pb::ViolationKind::BalanceRecovered,
    }
}

pub fn kind_from_wire(k: i32) -> Option<ViolationKind> {
    let k = pb::ViolationKind::try_from(k).ok()?;
    ViolationKind::ALL.into_iter().find(|d| kind_to_wire(*d) == k)
}

/// A violation on the wire, its cursor sealed by `tokens`; `seq` and `recorded_at` are
/// unset for one not written.
#[allow(deprecated)] // the string forms are still sent to clients written before the enums
pub fn violation(
    seq: Option<i64>,
    recorded_at: Option<DateTime<Utc>>,
    v: &NewViolation,
    tokens: &TokenKey,
) -> pb::Violation {
    let d = &v.detail;
    let dec = |x: Option<rust_decimal::Decimal>| x.map(decimal).unwrap_or_default();
    pb::Violation {
        cursor: seq.map(|s| cursor_of(s, tokens)).unwrap_or_default(),
        sequence: seq.unwrap_or_default(),
        id: v.id.to_string(),
        kind: kind_to_wire(v.kind).into(),
        customer_id: v.customer_id.map(|c| c.to_string()).unwrap_or_default(),
        occur_time: opt_timestamp(Some(v.occurred_at)),
        record_time: opt_timestamp(recorded_at),
        message: d.message.clone(),
        event_id: d.event_id.clone().unwrap_or_default(),
        product_id: d.product_id.map(|p| p.to_string()).unwrap_or_default(),
        limit_ref: stored_limit_ref(d.scope.as_deref(), d.measure.as_deref(), d.period.as_deref()),
        scope: d.scope.clone().unwrap_or_default(),
        measure: d.measure.clone().unwrap_or_default(),
        period: d.period.clone().unwrap_or_default(),
        window_start: opt_timestamp(d.window_start),
        used: dec(d.used),
        limit: dec(d.limit),
        tolerance_limit: dec(d.tolerance_limit),
        threshold_percent: dec(d.threshold_percent),
        amount: dec(d.amount),
        commit_id: d.commit_id.map(|c| c.to_string()).unwrap_or_default(),
        commitment_id: d.commitment_id.map(|c| c.to_string()).unwrap_or_default(),
        blocked: d.blocked,
        plan_id: d.plan_id.clone().unwrap_or_default(),
        alert_id: d.alert_id.map(|a| a.to_string()).unwrap_or_default(),
        credit_type: d.credit_type.clone().unwrap_or_default(),
    }
}
