//! Recorded usage event messages <-> domain values (VoidUsageEvent, ListUsageEvents).

use crate::app::usage_events::RecordedEvent;
use crate::db::usage_events::EventFilter;
use crate::domain::limits::Decision;
use crate::domain::page::PageRequest;
use crate::domain::seal::TokenKey;
use crate::domain::text::check_length;
use crate::domain::validation::Violations;
use crate::grpc::convert::{decimal, parse_id, parsed_enum, parsed_id, parsed_timestamp, timestamp};
use crate::grpc::usage::mapping::{decision_to_wire, outcome};
use crate::proto::v1 as pb;

pub fn recorded(e: RecordedEvent, tokens: &TokenKey) -> pb::RecordedUsageEvent {
    let (void_time, voided_by, void_reason) = match e.voided {
        Some((at, by, reason)) => {
            (Some(timestamp(at)), by.map(|k| k.to_string()).unwrap_or_default(), reason)
        }
        None => (None, String::new(), String::new()),
    };
    pb::RecordedUsageEvent {
        id: e.id.to_string(),
        event_id: e.event_id,
        customer_id: e.customer.to_string(),
        product_id: e.product.to_string(),
        quantity: decimal(e.quantity),
        rated_amount: decimal(e.amount),
        credit_type: e.credit_type,
        timestamp: Some(timestamp(e.occurred_at)),
        contract_id: e.contract_id.unwrap_or_default(),
        decision: decision_to_wire(e.decision).into(),
        record_time: Some(timestamp(e.recorded_at)),
        outcome: Some(outcome(e.outcome, tokens)),
        void_time,
        voided_by,
        void_reason,
    }
}

/// Event id and reason of a void request.
pub fn void(req: pb::VoidUsageEventRequest) -> Result<(String, String), Violations> {
    let mut v = Violations::default();
    check_length(&mut v, "event_id", &req.event_id, 1, 128);
    check_length(&mut v, "reason", &req.reason, 1, 500);
    v.finish((req.event_id, req.reason))
}

fn decision(n: i32) -> Option<&'static str> {
    match pb::UsageDecision::try_from(n).ok()? {
        pb::UsageDecision::Allowed => Some(Decision::Allowed.as_str()),
        pb::UsageDecision::AllowedOverLimit => Some(Decision::AllowedOverLimit.as_str()),
        pb::UsageDecision::Blocked => Some(Decision::Blocked.as_str()),
        pb::UsageDecision::Unspecified => None,
    }
}

/// Filter, filters key and page of a list request.
pub fn list(
    req: pb::ListUsageEventsRequest,
    tokens: TokenKey,
) -> Result<(EventFilter, String, PageRequest), Violations> {
    let mut v = Violations::default();
    let customer = parse_id(&mut v, "customer_id", req.customer_id());
    let filter = EventFilter {
        customer,
        product: parsed_id(&mut v, "product_id", &req.product_id).into_valid(),
        from: parsed_timestamp(&mut v, "start_time", &req.start_time).into_valid(),
        until: parsed_timestamp(&mut v, "end_time", &req.end_time).into_valid(),
        decision: parsed_enum(&mut v, "decision", req.decision, decision).into_valid(),
        include_voided: req.include_voided,
    };
    let key = format!(
        "customer={}|product={}|from={:?}|until={:?}|decision={}|voided={}",
        req.customer_id(),
        req.product_id,
        filter.from,
        filter.until,
        req.decision,
        req.include_voided
    );
    let page = PageRequest::parse(req.page_size, &req.page_token, &key, tokens, &mut v);
    v.finish((filter, key, page))
}
