//! Usage messages <-> domain values.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prost::Message as _;

use crate::app::AppError;
use crate::app::usage::{EventInput, InputError, UsageOutcome};
use crate::domain::allowance::Period;
use crate::domain::customer::external_ref;
use crate::domain::drawdown::MAX_FUTURE_SKEW;
use crate::domain::ids::CustomerId;
use crate::domain::limits::{Decision, LimitCheck, Outcome, UsageLine};
use crate::domain::money::parse_credit_type;
use crate::domain::seal::TokenKey;
use crate::domain::usage::{MAX_BATCH, ProductRef, UsageEventDraft, validate_event};
use crate::domain::validation::{Parsed, Violations};
use crate::grpc::convert::{decimal, non_empty, parsed_decimal, parsed_id, parsed_timestamp, timestamp};
use crate::grpc::limit_ref::limit_ref;
use crate::grpc::violation::mapping::violation;
use crate::proto::v1 as pb;
use crate::proto::v1::usage_event::Customer as WireCustomer;
use crate::proto::v1::usage_event::Product as WireProduct;

/// The customer external ids events name, to be looked up at once: only those that
/// could be one (a malformed one, say with a NUL the database cannot hold, is reported
/// by [`event`] and never sent).
pub fn external_ids<'a>(events: impl IntoIterator<Item = &'a pb::UsageEvent>) -> Vec<String> {
    events
        .into_iter()
        .filter_map(|e| match &e.customer {
            Some(WireCustomer::CustomerExternalId(x)) => {
                external_ref(&mut Violations::default(), "", x).map(|_| x.clone())
            }
            _ => None,
        })
        .collect()
}

/// Reads one event, naming its fields under `prefix`; `known` holds the customers of
/// the external ids the request names (see [`external_ids`]).
pub fn event(
    prefix: String,
    e: Option<pb::UsageEvent>,
    require_id: bool,
    now: DateTime<Utc>,
    known: &HashMap<String, CustomerId>,
) -> EventInput {
    let mut v = Violations::at(&prefix);
    let Some(e) = e else {
        v.add("", "is required");
        return EventInput { prefix, event: Err(InputError::Invalid(v)) };
    };
    let mut unknown = None;
    let customer_id = match &e.customer {
        None => Parsed::Absent,
        Some(WireCustomer::CustomerId(id)) => parsed_id(&mut v, "customer_id", id),
        Some(WireCustomer::CustomerExternalId(x)) => match external_ref(&mut v, "customer_external_id", x) {
            None => Parsed::Invalid,
            Some(_) => match known.get(x) {
                Some(id) => Parsed::Valid(*id),
                None => {
                    unknown = Some(x.clone());
                    Parsed::Invalid
                }
            },
        },
    };
    let product = match e.product {
        None => Parsed::Absent,
        Some(WireProduct::ProductId(id)) if id.is_empty() => Parsed::Absent,
        Some(WireProduct::ProductId(id)) => parsed_id(&mut v, "product_id", &id).map(ProductRef::Id),
        Some(WireProduct::ProductCode(code)) => Parsed::Valid(ProductRef::Code(code)),
    };
    let draft = UsageEventDraft {
        event_id: e.event_id,
        customer_id,
        product,
        quantity: parsed_decimal(&mut v, "quantity", &e.quantity),
        amount: parsed_decimal(&mut v, "rated_amount", &e.rated_amount),
        credit_type: parse_credit_type(&mut v, "credit_type", &e.credit_type),
        timestamp: parsed_timestamp(&mut v, "timestamp", &e.timestamp),
        group_values: e.group_values.into_iter().collect(),
        contract_id: non_empty(e.contract_id),
    };
    let event = validate_event(draft, require_id, now + MAX_FUTURE_SKEW, &mut v);
    let event = match (event, unknown) {
        (Some(e), None) if v.is_empty() => Ok(e),
        (_, Some(external_id)) if v.is_empty() => Err(InputError::UnknownCustomer(external_id)),
        _ => Err(InputError::Invalid(v)),
    };
    EventInput { prefix, event }
}

/// The events of a batch request, or a violation on `events` when there are too many.
pub fn batch(
    req: pb::RecordUsageBatchRequest,
    now: DateTime<Utc>,
    known: &HashMap<String, CustomerId>,
) -> Result<Vec<EventInput>, Violations> {
    check_batch_size(&req)?;
    Ok(req
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| event(format!("events[{i}]"), Some(e), true, now, known))
        .collect())
}

/// A violation on `events` when the batch is empty or holds too many.
pub fn check_batch_size(req: &pb::RecordUsageBatchRequest) -> Result<(), Violations> {
    if req.events.is_empty() || req.events.len() > MAX_BATCH {
        return Err(Violations::single("events", format!("must hold 1 to {MAX_BATCH} events")));
    }
    Ok(())
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

/// One maximum checked, on the wire.
#[allow(deprecated)] // the string forms are still sent to clients written before the enums
pub fn limit_check(c: LimitCheck) -> pb::LimitCheck {
    pb::LimitCheck {
        limit_ref: Some(limit_ref(&c.scope, c.measure, c.period)),
        scope: c.scope,
        measure: c.measure.as_str().to_owned(),
        period: c.period.as_str().to_owned(),
        window_start: c.window.map(|w| timestamp(w.start)),
        window_end: c.window.map(|w| timestamp(w.end)),
        used: decimal(c.used),
        maximum: decimal(c.maximum),
        tolerance_maximum: decimal(c.tolerance_maximum),
        outcome: outcome_to_wire(c.outcome).into(),
    }
}

/// The outcome on the wire; `tokens` seals the cursors of its violations.
pub fn outcome(o: UsageOutcome, tokens: &TokenKey) -> pb::UsageOutcome {
    pb::UsageOutcome {
        event_id: o.event_id,
        decision: decision_to_wire(o.decision).into(),
        checks: o.checks.into_iter().map(limit_check).collect(),
        service_not_included: o.service_not_included,
        drawdowns: o.draws.iter().map(crate::grpc::commit::drawdown::draw_record).collect(),
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

#[allow(deprecated)] // the string forms are still sent to clients written before the enums
pub fn usage_line(l: UsageLine) -> pb::AllowanceUsage {
    let period =
        if l.window.kind == crate::domain::windows::WindowKind::Day { Period::Day } else { Period::Month };
    pb::AllowanceUsage {
        limit_ref: Some(limit_ref(&l.scope, l.measure, period)),
        scope: l.scope,
        measure: l.measure.as_str().to_owned(),
        period: period.as_str().to_owned(),
        window_start: Some(timestamp(l.window.start)),
        window_end: Some(timestamp(l.window.end)),
        used: decimal(l.used),
        maximum: decimal(l.maximum),
        tolerance_maximum: decimal(l.tolerance_maximum),
        percent_used: decimal(l.percent),
    }
}
