//! Drawdown messages (preview, apply, and the draws every usage answer carries) <->
//! domain values.

use chrono::{DateTime, Utc};

use crate::app::drawdowns::{DrawRecord, DrawdownOutcome};
use crate::domain::drawdown::{
    Allocation, Draw, RatedUsage, RatedUsageDraft, SourceRef, validate_rated_usage,
};
use crate::domain::ids::CustomerId;
use crate::domain::money::parse_credit_type;
use crate::domain::validation::Violations;
use crate::grpc::convert::{decimal, non_empty, parse_id, parsed_decimal, parsed_id, parsed_timestamp};
use crate::proto::v1 as pb;

/// A usage from the wire (`latest`: the latest timestamp accepted, for recording).
pub fn rated_usage(
    v: &mut Violations,
    u: Option<pb::RatedUsage>,
    latest: Option<DateTime<Utc>>,
) -> Option<RatedUsage> {
    let Some(u) = u else {
        v.add("usage", "is required");
        return None;
    };
    v.nested("usage", |v| {
        let draft = RatedUsageDraft {
            product_id: parsed_id(v, "product_id", &u.product_id),
            amount: parsed_decimal(v, "amount", &u.amount),
            credit_type: parse_credit_type(v, "credit_type", &u.credit_type),
            timestamp: parsed_timestamp(v, "timestamp", &u.timestamp),
            group_values: u.group_values.into_iter().collect(),
            contract_id: non_empty(u.contract_id),
        };
        validate_rated_usage(draft, latest, v)
    })
}

/// Customer id and usage of a preview request: accepted exactly when an apply at `now`
/// would accept it.
pub fn preview(
    req: pb::PreviewDrawdownRequest,
    now: DateTime<Utc>,
) -> Result<(CustomerId, RatedUsage), Violations> {
    let mut v = Violations::default();
    let customer = parse_id(&mut v, "customer_id", req.customer_id());
    let usage = rated_usage(&mut v, req.usage, Some(now + crate::domain::drawdown::MAX_FUTURE_SKEW));
    match (customer, usage) {
        (Some(c), Some(u)) if v.is_empty() => Ok((c, u)),
        _ => Err(v),
    }
}

/// Key, customer id and usage of an apply request.
pub fn apply(
    req: pb::ApplyDrawdownRequest,
    now: DateTime<Utc>,
) -> Result<(String, CustomerId, RatedUsage), Violations> {
    let mut v = Violations::default();
    crate::domain::text::check_length(&mut v, "idempotency_key", &req.idempotency_key, 1, 128);
    let customer = parse_id(&mut v, "customer_id", req.customer_id());
    let usage = rated_usage(&mut v, req.usage, Some(now + crate::domain::drawdown::MAX_FUTURE_SKEW));
    match (customer, usage) {
        (Some(c), Some(u)) if v.is_empty() => Ok((req.idempotency_key, c, u)),
        _ => Err(v),
    }
}

/// The wire's three fields naming a balance: commit id and segment index, or applied
/// promotion id (the others empty).
pub fn source_fields(s: &SourceRef) -> (String, i32, String) {
    match *s {
        SourceRef::CommitSegment { commit_id, idx } => (commit_id.to_string(), idx, String::new()),
        SourceRef::CreditPromotion { applied, .. } => (String::new(), 0, applied.to_string()),
    }
}

fn draw_to_wire(d: &Draw) -> pb::Drawdown {
    let (commit_id, segment_index, applied_promotion_id) = source_fields(&d.source);
    pb::Drawdown {
        commit_id,
        segment_index,
        amount: decimal(d.amount),
        remaining_after: decimal(d.remaining_after),
        applied_promotion_id,
    }
}

pub fn preview_response(a: Allocation) -> pb::PreviewDrawdownResponse {
    pb::PreviewDrawdownResponse {
        drawdowns: a.draws.iter().map(draw_to_wire).collect(),
        overage: decimal(a.overage),
    }
}

/// A recorded draw on the wire.
pub fn draw_record(d: &DrawRecord) -> pb::Drawdown {
    pb::Drawdown {
        commit_id: d.commit_id.map(|c| c.to_string()).unwrap_or_default(),
        segment_index: d.segment_idx,
        amount: decimal(d.amount),
        remaining_after: decimal(d.remaining_after),
        applied_promotion_id: d.applied_promotion_id.map(|a| a.to_string()).unwrap_or_default(),
    }
}

pub fn apply_response(o: DrawdownOutcome) -> pb::ApplyDrawdownResponse {
    pb::ApplyDrawdownResponse {
        drawdown_id: o.id.to_string(),
        drawdowns: o.draws.iter().map(draw_record).collect(),
        overage: decimal(o.overage),
        replayed: o.replayed,
    }
}
