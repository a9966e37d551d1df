//! Usage messages <-> domain values.

use chrono::{DateTime, Utc};
use prost::Message as _;

use crate::app::AppError;
use crate::app::usage::{EventInput, UsageOutcome};
use crate::domain::allowance::Period;
use crate::domain::drawdown::MAX_FUTURE_SKEW;
use crate::domain::limits::{Decision, Outcome, UsageLine};
use crate::domain::money::parse_credit_type;
use crate::domain::seal::TokenKey;
use crate::domain::usage::{MAX_BATCH, ProductRef, UsageEventDraft, validate_event};
use crate::domain::validation::{Parsed, Violations};
use crate::grpc::convert::{decimal, non_empty, parsed_decimal, parsed_id, parsed_timestamp, timestamp};
use crate::grpc::violation::mapping::violation;
use crate::proto::v1 as pb;
use crate::proto::v1::usage_event::Product as WireProduct;

/// Reads one event, naming its fields under `prefix`.
pub fn event(prefix: String, e: Option<pb::UsageEvent>, require_id: bool, now: DateTime<Utc>) -> EventInput {
    let mut v = Violations::at(&prefix);
    let Some(e) = e else {
        v.add("", "is required");
        return EventInput { prefix, event: Err(v) };
    };
    let product = match e.product {
        None => Parsed::Absent,
        Some(WireProduct::ProductId(id)) if id.is_empty() => Parsed::Absent,
        Some(WireProduct::ProductId(id)) => parsed_id(&mut v, "product_id", &id).map(ProductRef::Id),
        Some(WireProduct::ProductCode(code)) => Parsed::Valid(ProductRef::Code(code)),
    };
    let draft = UsageEventDraft {
        event_id: e.event_id,
        customer_id: parsed_id(&mut v, "customer_id", &e.customer_id),
        product,
        quantity: parsed_decimal(&mut v, "quantity", &e.quantity),
        amount: parsed_decimal(&mut v, "rated_amount", &e.rated_amount),
        credit_type: parse_credit_type(&mut v, "credit_type", &e.credit_type),
        timestamp: parsed_timestamp(&mut v, "timestamp", &e.timestamp),
        group_values: e.group_values.into_iter().collect(),
        contract_id: non_empty(e.contract_id),
    };
    let event = validate_event(draft, require_id, now + MAX_FUTURE_SKEW, &mut v);
    let event = match event {
        Some(e) if v.is_empty() => Ok(e),
        _ => Err(v),
    };
    EventInput { prefix, event }
}

/// The events of a batch request, or a violation on `events` when there are too many.
pub fn batch(req: pb::RecordUsageBatchRequest, now: DateTime<Utc>) -> Result<Vec<EventInput>, Violations> {
    if req.events.is_empty() || req.events.len() > MAX_BATCH {
        return Err(Violations::single("events", format!("must hold 1 to {MAX_BATCH} events")));
    }
    Ok(req
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| event(format!("events[{i}]"), Some(e), true, now))
        .collect())
}

pub fn decision_to_wire(d: Decision) -> pb::UsageDecision {
    match d {
        Decision::Allowed => pb::UsageDecision::Allowed,
        Decision::AllowedOverLimit => pb::UsageDecision::AllowedOverLimit,
        Decision::Blocked => pb::UsageDecision::Blocked,
    }
}

fn outcome_to_wire(o: Outcome) -> pb::LimitOutcome {
    match o {
        Outcome::Within => pb::LimitOutcome::Within,
        Outcome::OverLimit => pb::LimitOutcome::OverLimit,
        Outcome::Exceeded => pb::LimitOutcome::Exceeded,
    }
}

/// The outcome on the wire; `tokens` seals the cursors of its violations.
pub fn outcome(o: UsageOutcome, tokens: &TokenKey) -> pb::UsageOutcome {
    pb::UsageOutcome {
        event_id: o.event_id,
        decision: decision_to_wire(o.decision).into(),
        checks: o
            .checks
            .into_iter()
            .map(|c| pb::LimitCheck {
                scope: c.scope,
                measure: c.measure.as_str().to_owned(),
                period: c.period.as_str().to_owned(),
                window_start: c.window.map(|w| timestamp(w.start)),
                window_end: c.window.map(|w| timestamp(w.end)),
                used: decimal(c.used),
                maximum: decimal(c.maximum),
                tolerance_maximum: decimal(c.tolerance_maximum),
                outcome: outcome_to_wire(c.outcome).into(),
            })
            .collect(),
        service_not_included: o.service_not_included,
        drawdowns: o.draws.iter().map(crate::grpc::commit::mapping::draw_record).collect(),
        overage: decimal(o.overage),
        violations: o
            .violations
            .iter()
            .map(|r| violation(r.seq, r.recorded_at, &r.violation, tokens))
            .collect(),
        replayed: o.replayed,
    }
}

/// One batch result: the outcome, or the error a single call would have returned.
pub fn batch_result(r: Result<UsageOutcome, AppError>, tokens: &TokenKey) -> pb::UsageBatchResult {
    use pb::usage_batch_result::Result as R;
    let result = match r {
        Ok(o) => R::Outcome(outcome(o, tokens)),
        Err(e) => {
            let status = tonic::Status::from(e);
            let decoded = tonic_types::pb::Status::decode(status.details()).ok().filter(|s| s.code != 0);
            R::Error(decoded.unwrap_or(tonic_types::pb::Status {
                code: status.code() as i32,
                message: status.message().to_owned(),
                details: Vec::new(),
            }))
        }
    };
    pb::UsageBatchResult { result: Some(result) }
}

pub fn usage_line(l: UsageLine) -> pb::AllowanceUsage {
    pb::AllowanceUsage {
        scope: l.scope,
        measure: l.measure.as_str().to_owned(),
        period: if l.window.kind == crate::domain::windows::WindowKind::Day {
            Period::Day
        } else {
            Period::Month
        }
        .as_str()
        .to_owned(),
        window_start: Some(timestamp(l.window.start)),
        window_end: Some(timestamp(l.window.end)),
        used: decimal(l.used),
        maximum: decimal(l.maximum),
        tolerance_maximum: decimal(l.tolerance_maximum),
        percent_used: decimal(l.percent),
    }
}
