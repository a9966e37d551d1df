//! Reservation messages <-> domain values.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::app::reservations::{CustomerBalance, ExtendRequest, HoldReply, ReserveRequest, Settlement};
use crate::app::usage::InputError;
use crate::domain::ids::{CustomerId, ReservationId};
use crate::domain::money::check_non_negative;
use crate::domain::reservation::{Amounts, Ask, Grant, HoldDurations, Reservation, State};
use crate::domain::text::check_code;
use crate::domain::validation::Violations;
use crate::grpc::commit::drawdown::source_fields;
use crate::grpc::convert::{decimal, opt_timestamp, optional_timestamp, parse_id, parsed_decimal, timestamp};
use crate::grpc::usage::mapping as usage;
use crate::proto::v1 as pb;

/// A duration from the wire: `None` when unset; a violation when it cannot be one (or
/// is negative).
fn ttl(v: &mut Violations, field: &str, d: Option<prost_types::Duration>) -> Option<Option<Duration>> {
    let Some(d) = d else { return Some(None) };
    match std::time::Duration::try_from(d).ok().and_then(|std| Duration::from_std(std).ok()) {
        Some(t) => Some(Some(t)),
        None => {
            v.add(field, "must be a positive duration");
            None
        }
    }
}

/// A decimal that must be given and be zero or more.
fn amount(v: &mut Violations, field: &str, value: &str) -> Option<rust_decimal::Decimal> {
    let d = if value.is_empty() {
        Some(rust_decimal::Decimal::ZERO)
    } else {
        parsed_decimal(v, field, value).into_valid()
    };
    if let Some(d) = d {
        check_non_negative(v, field, d);
    }
    d
}

/// Reads a ReserveUsage request; `known` resolves its customer's external id.
pub fn reserve(
    req: pb::ReserveUsageRequest,
    holds: &HoldDurations,
    now: DateTime<Utc>,
    known: &HashMap<String, CustomerId>,
) -> Result<ReserveRequest, crate::app::AppError> {
    let mut v = Violations::default();
    check_code(&mut v, "request_id", &req.request_id, 128);
    let asked = ttl(&mut v, "ttl", req.ttl);
    let resolved = asked.and_then(|t| holds.resolve(&mut v, "ttl", t));
    let event = pb::UsageEvent {
        event_id: String::new(),
        customer: req.customer.map(|c| match c {
            pb::reserve_usage_request::Customer::CustomerId(id) => pb::usage_event::Customer::CustomerId(id),
            pb::reserve_usage_request::Customer::CustomerExternalId(x) => {
                pb::usage_event::Customer::CustomerExternalId(x)
            }
        }),
        product: req.product.map(|p| match p {
            pb::reserve_usage_request::Product::ProductId(id) => pb::usage_event::Product::ProductId(id),
            pb::reserve_usage_request::Product::ProductCode(code) => {
                pb::usage_event::Product::ProductCode(code)
            }
        }),
        quantity: req.quantity,
        rated_amount: req.rated_amount,
        credit_type: req.credit_type,
        timestamp: Some(timestamp(now)),
        group_values: req.group_values,
        contract_id: req.contract_id,
    };
    let event = usage::event(String::new(), Some(event), false, now, known).event;
    let event = match (event, v.is_empty()) {
        (Ok(e), true) => e,
        (Err(InputError::Invalid(more)), _) => {
            v.extend(more);
            return Err(v.into());
        }
        (Err(unknown), true) => return Err(unknown.into()),
        (_, false) => return Err(v.into()),
    };
    Ok(ReserveRequest {
        request_id: req.request_id,
        event,
        ttl: (asked.flatten(), resolved.unwrap_or(holds.default)),
        allow_partial: req.allow_partial,
        allow_overage: req.allow_overage,
    })
}

pub fn extend(req: pb::ExtendReservationRequest, holds: &HoldDurations) -> Result<ExtendRequest, Violations> {
    let mut v = Violations::default();
    let reservation = parse_id(&mut v, "reservation_id", &req.reservation_id);
    check_code(&mut v, "request_id", &req.request_id, 128);
    let quantity = amount(&mut v, "additional_quantity", &req.additional_quantity);
    let rated = amount(&mut v, "additional_rated_amount", &req.additional_rated_amount);
    let asked = ttl(&mut v, "ttl", req.ttl);
    if let Some(Some(t)) = asked {
        holds.resolve(&mut v, "ttl", Some(t));
    }
    v.finish(())?;
    Ok(ExtendRequest {
        reservation: reservation.unwrap_or(ReservationId(uuid::Uuid::nil())),
        request_id: req.request_id,
        ask: Ask {
            requested: Amounts { quantity: quantity.unwrap_or_default(), amount: rated.unwrap_or_default() },
            allow_partial: req.allow_partial,
            allow_overage: req.allow_overage,
        },
        ttl: asked.flatten(),
    })
}

pub fn settlement(req: pb::CommitReservationRequest) -> Result<Settlement, Violations> {
    let mut v = Violations::default();
    let reservation = parse_id(&mut v, "reservation_id", &req.reservation_id);
    check_code(&mut v, "event_id", &req.event_id, 128);
    let quantity = amount(&mut v, "quantity", &req.quantity);
    let rated = amount(&mut v, "rated_amount", &req.rated_amount);
    let at = optional_timestamp(&mut v, "timestamp", &req.timestamp);
    v.finish(())?;
    Ok(Settlement {
        reservation: reservation.unwrap_or(ReservationId(uuid::Uuid::nil())),
        event_id: req.event_id,
        used: Amounts { quantity: quantity.unwrap_or_default(), amount: rated.unwrap_or_default() },
        at,
    })
}

fn state(s: State) -> pb::ReservationState {
    match s {
        State::Open => pb::ReservationState::Open,
        State::Committed => pb::ReservationState::Committed,
        State::Released => pb::ReservationState::Released,
        State::Expired => pb::ReservationState::Expired,
        State::Denied => pb::ReservationState::Denied,
    }
}

pub fn decision(g: Grant) -> pb::ReservationDecision {
    match g {
        Grant::Granted => pb::ReservationDecision::Granted,
        Grant::Partial => pb::ReservationDecision::Partial,
        Grant::Denied => pb::ReservationDecision::Denied,
    }
}

pub fn reservation(r: Reservation) -> pb::Reservation {
    pb::Reservation {
        id: r.id.to_string(),
        request_id: r.request_id,
        customer_id: r.customer.to_string(),
        product_id: r.product.to_string(),
        credit_type: r.credit_type,
        group_values: r.group_values.into_iter().collect(),
        contract_id: r.contract_id.unwrap_or_default(),
        requested_quantity: decimal(r.requested.quantity),
        requested_rated_amount: decimal(r.requested.amount),
        granted_quantity: decimal(r.granted.quantity),
        granted_rated_amount: decimal(r.granted.amount),
        state: state(r.state).into(),
        create_time: Some(timestamp(r.created_at)),
        expire_time: Some(timestamp(r.expires_at)),
        settle_time: opt_timestamp(r.settled_at),
        event_id: r.event_id.unwrap_or_default(),
    }
}

pub fn reserved(reply: HoldReply) -> pb::ReserveUsageResponse {
    let a = reply.answer;
    pb::ReserveUsageResponse {
        reservation: Some(reservation(reply.reservation)),
        decision: decision(a.grant).into(),
        checks: a.checks.into_iter().map(usage::limit_check).collect(),
        service_not_included: a.service_not_included,
        coverable_amount: decimal(a.coverable),
        replayed: reply.replayed,
    }
}

pub fn extended(reply: HoldReply) -> pb::ExtendReservationResponse {
    let a = reply.answer;
    pb::ExtendReservationResponse {
        reservation: Some(reservation(reply.reservation)),
        decision: decision(a.grant).into(),
        granted_quantity: decimal(a.granted.quantity),
        granted_rated_amount: decimal(a.granted.amount),
        checks: a.checks.into_iter().map(usage::limit_check).collect(),
        replayed: reply.replayed,
    }
}

pub fn balance(b: CustomerBalance) -> pb::GetCustomerBalanceResponse {
    pb::GetCustomerBalanceResponse {
        at: Some(timestamp(b.at)),
        balances: b
            .balances
            .into_iter()
            .map(|t| pb::CreditTypeBalance {
                available: decimal(t.balance - t.reserved),
                balance: decimal(t.balance),
                reserved: decimal(t.reserved),
                reserved_overage: decimal(t.reserved_overage),
                sources: t
                    .sources
                    .into_iter()
                    .map(|s| {
                        let (commit_id, segment_index, applied_promotion_id) = source_fields(&s.source);
                        pb::BalanceSource {
                            commit_id,
                            segment_index,
                            applied_promotion_id,
                            balance: decimal(s.balance),
                            reserved: decimal(s.held),
                            ending_before: Some(timestamp(s.ending_before)),
                        }
                    })
                    .collect(),
                credit_type: t.credit_type,
            })
            .collect(),
        open_reservations: i32::try_from(b.open_reservations).unwrap_or(i32::MAX),
    }
}
