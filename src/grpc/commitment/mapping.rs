//! Commitment messages <-> domain values.

use chrono::DateTime;
use rust_decimal::Decimal;

use crate::app::commitments::{Evaluation, NewCommitment};
use crate::db::commitments::{CommitmentFilter, Compensation, Edit};
use crate::domain::commitment::document::Operation;
use crate::domain::commitment::periods::PeriodOutcome;
use crate::domain::commitment::{
    Commitment, CommitmentStatus, EndingConfig, MinimumSpend, MinimumUsage, Obligations, Penalty, PeriodKind,
    Placement, Terms, TimeRange, ViolationPolicy,
};
use crate::domain::etag::etag;
use crate::domain::ids::CommitmentId;
use crate::domain::money::parse_credit_type;
use crate::domain::page::PageRequest;
use crate::domain::seal::TokenKey;
use crate::domain::validation::Violations;
use crate::grpc::convert::{
    decimal, key_id, non_empty, opt_timestamp, parse_id, parse_optional_id, parsed_decimal, parsed_enum,
    parsed_id, parsed_timestamp, timestamp,
};
use crate::grpc::json_value::{from_json, to_json};
use crate::proto::customer_id;
use crate::proto::v1 as pb;

fn period(v: i32) -> Option<PeriodKind> {
    match pb::ObligationPeriod::try_from(v).ok()? {
        pb::ObligationPeriod::Month => Some(PeriodKind::Month),
        pb::ObligationPeriod::Quarter => Some(PeriodKind::Quarter),
        pb::ObligationPeriod::Year => Some(PeriodKind::Year),
        pb::ObligationPeriod::Term => Some(PeriodKind::Term),
        pb::ObligationPeriod::Unspecified => None,
    }
}

fn period_to_wire(p: PeriodKind) -> pb::ObligationPeriod {
    match p {
        PeriodKind::Month => pb::ObligationPeriod::Month,
        PeriodKind::Quarter => pb::ObligationPeriod::Quarter,
        PeriodKind::Year => pb::ObligationPeriod::Year,
        PeriodKind::Term => pb::ObligationPeriod::Term,
    }
}

pub fn status(v: i32) -> Option<CommitmentStatus> {
    Some(match pb::CommitmentStatus::try_from(v).ok()? {
        pb::CommitmentStatus::Active => CommitmentStatus::Active,
        pb::CommitmentStatus::Fulfilled => CommitmentStatus::Fulfilled,
        pb::CommitmentStatus::Violated => CommitmentStatus::Violated,
        pb::CommitmentStatus::Terminated => CommitmentStatus::Terminated,
        pb::CommitmentStatus::Ended => CommitmentStatus::Ended,
        pb::CommitmentStatus::Unspecified => return None,
    })
}

fn status_to_wire(s: CommitmentStatus) -> pb::CommitmentStatus {
    match s {
        CommitmentStatus::Active => pb::CommitmentStatus::Active,
        CommitmentStatus::Fulfilled => pb::CommitmentStatus::Fulfilled,
        CommitmentStatus::Violated => pb::CommitmentStatus::Violated,
        CommitmentStatus::Terminated => pb::CommitmentStatus::Terminated,
        CommitmentStatus::Ended => pb::CommitmentStatus::Ended,
    }
}

// Malformed parts are read as stand-ins that pass every rule, so the rules still judge
// the rest of the request and every problem is reported at once. A stand-in never
// reaches storage: the request carries a violation for the part it replaces.

fn obligations(v: &mut Violations, o: Option<pb::Obligations>) -> Obligations {
    let o = o.unwrap_or_default();
    let minimum_spend = o
        .minimum_spend
        .iter()
        .enumerate()
        .map(|(i, s)| {
            v.nested(format!("minimum_spend[{i}]"), |v| {
                let period = parsed_enum(v, "period", s.period, period).required(v, "period");
                let amount = parsed_decimal(v, "amount", &s.amount).required(v, "amount");
                MinimumSpend {
                    period: period.unwrap_or(PeriodKind::Month),
                    amount: amount.unwrap_or(Decimal::ONE),
                }
            })
        })
        .collect();
    let minimum_usage = o
        .minimum_usage
        .iter()
        .enumerate()
        .map(|(i, u)| {
            v.nested(format!("minimum_usage[{i}]"), |v| {
                let period = parsed_enum(v, "period", u.period, period).required(v, "period");
                let quantity = parsed_decimal(v, "quantity", &u.quantity).required(v, "quantity");
                let product_id = parsed_id(v, "product_id", &u.product_id).into_valid();
                MinimumUsage {
                    period: period.unwrap_or(PeriodKind::Month),
                    quantity: quantity.unwrap_or(Decimal::ONE),
                    product_id,
                }
            })
        })
        .collect();
    Obligations { minimum_spend, minimum_usage, minimum_term_months: o.minimum_term_months }
}

/// A time range from the wire; a missing or malformed end is a stand-in a century away
/// from the other, so no rule on the range or on terms within it fires because of it.
fn time_range(v: &mut Violations, range: Option<pb::TimeRange>) -> TimeRange {
    let range = range.unwrap_or_default();
    let start =
        parsed_timestamp(v, "time_range.start_time", &range.start_time).required(v, "time_range.start_time");
    let end = parsed_timestamp(v, "time_range.end_time", &range.end_time).required(v, "time_range.end_time");
    let century = chrono::Duration::days(36_525);
    match (start, end) {
        (Some(start_time), Some(end_time)) => TimeRange { start_time, end_time },
        (Some(start_time), None) => TimeRange { start_time, end_time: start_time + century },
        (None, Some(end_time)) => TimeRange { start_time: end_time - century, end_time },
        (None, None) => {
            TimeRange { start_time: DateTime::UNIX_EPOCH, end_time: DateTime::UNIX_EPOCH + century }
        }
    }
}

/// The terms of a commitment message, with stand-ins for malformed parts (every
/// problem is in `v`).
fn terms(v: &mut Violations, c: &pb::Commitment) -> Terms {
    let time_range = time_range(v, c.time_range);
    let customer_obligations =
        v.nested("customer_obligations", |v| obligations(v, c.customer_obligations.clone()));
    let account_obligations =
        v.nested("account_obligations", |v| obligations(v, c.account_obligations.clone()));
    let policy = c.violation_policy.unwrap_or_default();
    let early_termination_penalty = c.early_termination_penalty.as_ref().map(|m| {
        v.nested("early_termination_penalty", |v| {
            let amount = parsed_decimal(v, "amount", &m.amount).required(v, "amount");
            Penalty {
                amount: amount.unwrap_or(Decimal::ZERO),
                credit_type: parse_credit_type(v, "credit_type", &m.credit_type),
            }
        })
    });
    let ending = c.ending_config.clone().unwrap_or_default();
    let extend = parsed_timestamp(
        v,
        "ending_config.extend_prepaid_card_end_time",
        &ending.extend_prepaid_card_end_time,
    )
    .into_valid();
    Terms {
        subscription_id: parsed_id(v, "subscription_id", &c.subscription_id).into_valid(),
        promotion_id: parsed_id(v, "promotion_id", &c.promotion_id).into_valid(),
        device_id: parsed_id(v, "device_id", &c.device_id).into_valid(),
        product_id: parsed_id(v, "product_id", &c.product_id).into_valid(),
        time_range,
        customer_obligations,
        account_obligations,
        violation_policy: ViolationPolicy {
            notify_per_customer_violations: policy.notify_per_customer_violations,
            notify_per_account_violations: policy.notify_per_account_violations,
            compensate_on_customer_violation: policy.compensate_on_customer_violation,
            compensate_on_account_violation: policy.compensate_on_account_violation,
        },
        early_termination_penalty,
        ending_config: EndingConfig {
            plan_id: non_empty(ending.plan_id),
            restart_commitment: ending.restart_commitment,
            extend_prepaid_card_end_time: extend,
        },
    }
}

/// The commitment (and promotion application) of a create request, with its parse
/// problems.
pub fn create(req: pb::CreateCommitmentRequest) -> (NewCommitment, Violations) {
    let mut v = Violations::default();
    let c = req.commitment.unwrap_or_default();
    let customer = parsed_id(&mut v, "commitment.customer_id", c.customer_id());
    let terms = v.nested("commitment", |v| terms(v, &c));
    let apply_promotion = req
        .apply_promotion
        .map(|a| v.nested("apply_promotion", |v| crate::grpc::promo::mapping::application(v, &a)));
    (NewCommitment { customer, terms, apply_promotion }, v)
}

pub fn list(
    req: pb::ListCommitmentsRequest,
    tokens: TokenKey,
) -> Result<(CommitmentFilter, String, PageRequest), Violations> {
    let mut v = Violations::default();
    let key = format!(
        "customer={}|subscription={}|device={}|promotion={}|status={}",
        req.customer_id(),
        req.subscription_id,
        req.device_id,
        req.promotion_id,
        req.status
    );
    let page = PageRequest::parse(req.page_size, &req.page_token, &key, tokens, &mut v);
    let filter = CommitmentFilter {
        customer: parsed_id(&mut v, "customer_id", req.customer_id()).into_valid(),
        subscription: parsed_id(&mut v, "subscription_id", &req.subscription_id).into_valid(),
        device: parsed_id(&mut v, "device_id", &req.device_id).into_valid(),
        promotion: parsed_id(&mut v, "promotion_id", &req.promotion_id).into_valid(),
        status: parsed_enum(&mut v, "status", req.status, status).into_valid(),
    };
    v.finish((filter, key, page))
}

/// Id, etag and operations of a patch request.
/// Where the caller expects the commitment to be (each part optional).
pub fn placement(
    v: &mut Violations,
    subscription_id: &str,
    promotion_id: &str,
    device_id: &str,
) -> Placement {
    Placement {
        subscription_id: parse_optional_id(v, "subscription_id", subscription_id),
        promotion_id: parse_optional_id(v, "promotion_id", promotion_id),
        device_id: parse_optional_id(v, "device_id", device_id),
    }
}

/// A patch: the commitment, where it is expected, its etag and the operations.
pub type PatchRequest = (CommitmentId, Placement, String, Vec<Operation>);

pub fn patch(req: pb::PatchCommitmentRequest) -> Result<PatchRequest, Violations> {
    let mut v = Violations::default();
    let id = parse_id(&mut v, "id", &req.id);
    let placement = placement(&mut v, &req.subscription_id, &req.promotion_id, &req.device_id);
    let ops = req
        .operations
        .into_iter()
        .enumerate()
        .map(|(i, o)| Operation {
            op: op_name(&mut v, i, o.op, o.operation),
            path: o.path,
            from: non_empty(o.from_path),
            value: o.value.map(to_json),
        })
        .collect();
    match id {
        Some(id) if v.is_empty() => Ok((id, placement, req.etag, ops)),
        _ => Err(v),
    }
}

fn obligations_to_wire(o: &Obligations) -> pb::Obligations {
    pb::Obligations {
        minimum_spend: o
            .minimum_spend
            .iter()
            .map(|s| pb::MinimumSpend { period: period_to_wire(s.period).into(), amount: decimal(s.amount) })
            .collect(),
        minimum_usage: o
            .minimum_usage
            .iter()
            .map(|u| pb::MinimumUsage {
                period: period_to_wire(u.period).into(),
                quantity: decimal(u.quantity),
                product_id: u.product_id.map(|p| p.to_string()).unwrap_or_default(),
            })
            .collect(),
        minimum_term_months: o.minimum_term_months,
    }
}

pub fn commitment(c: Commitment) -> pb::Commitment {
    let t = &c.terms;
    let id = |u: Option<uuid::Uuid>| u.map(|u| u.to_string()).unwrap_or_default();
    pb::Commitment {
        id: c.id.to_string(),
        customer: customer_id(c.customer.to_string()),
        subscription_id: id(t.subscription_id),
        promotion_id: id(t.promotion_id),
        device_id: id(t.device_id),
        product_id: t.product_id.map(|p| p.to_string()).unwrap_or_default(),
        time_range: Some(pb::TimeRange {
            start_time: Some(timestamp(t.time_range.start_time)),
            end_time: Some(timestamp(t.time_range.end_time)),
        }),
        customer_obligations: Some(obligations_to_wire(&t.customer_obligations)),
        account_obligations: Some(obligations_to_wire(&t.account_obligations)),
        violation_policy: Some(pb::ViolationPolicy {
            notify_per_customer_violations: t.violation_policy.notify_per_customer_violations,
            notify_per_account_violations: t.violation_policy.notify_per_account_violations,
            compensate_on_customer_violation: t.violation_policy.compensate_on_customer_violation,
            compensate_on_account_violation: t.violation_policy.compensate_on_account_violation,
        }),
        early_termination_penalty: t
            .early_termination_penalty
            .as_ref()
            .map(|p| pb::Money { amount: decimal(p.amount), credit_type: p.credit_type.clone() }),
        ending_config: Some(pb::EndingConfig {
            plan_id: t.ending_config.plan_id.clone().unwrap_or_default(),
            restart_commitment: t.ending_config.restart_commitment,
            extend_prepaid_card_end_time: opt_timestamp(t.ending_config.extend_prepaid_card_end_time),
        }),
        status: status_to_wire(c.status).into(),
        successor_id: c.successor.map(|s| s.to_string()).unwrap_or_default(),
        end_time: opt_timestamp(c.ended_at),
        create_time: Some(timestamp(c.created_at)),
        update_time: Some(timestamp(c.updated_at)),
        etag: etag(c.version),
        created_by: key_id(c.by.created_by),
        updated_by: key_id(c.by.updated_by),
    }
}

const PATCH_OPS: [(pb::PatchOp, &str); 6] = [
    (pb::PatchOp::Add, "add"),
    (pb::PatchOp::Remove, "remove"),
    (pb::PatchOp::Replace, "replace"),
    (pb::PatchOp::Move, "move"),
    (pb::PatchOp::Copy, "copy"),
    (pb::PatchOp::Test, "test"),
];

/// The RFC 6902 name of operation `i`, from its `op` or its `operation` (one of them,
/// or both agreeing); what the name may be is the domain's to judge.
fn op_name(v: &mut Violations, i: usize, op: String, operation: i32) -> String {
    let named = PATCH_OPS.iter().find(|(kind, _)| *kind as i32 == operation).map(|(_, name)| *name);
    match named {
        None if operation != 0 => {
            v.add(format!("operations[{i}].operation"), format!("{operation} is not a PatchOp"));
            op
        }
        None => op,
        Some(name) if op.is_empty() || op == name => name.to_owned(),
        Some(name) => {
            v.add(
                format!("operations[{i}].operation"),
                format!("is {name}, but op is {op:?}: give one, or both alike"),
            );
            op
        }
    }
}

/// The enum of an RFC 6902 operation name (UNSPECIFIED for one it does not know).
fn op_kind(name: &str) -> pb::PatchOp {
    PATCH_OPS.iter().find(|(_, n)| *n == name).map_or(pb::PatchOp::Unspecified, |(kind, _)| *kind)
}

pub fn edit(e: Edit) -> pb::CommitmentEdit {
    pb::CommitmentEdit {
        id: e.id.to_string(),
        commitment_id: e.commitment.to_string(),
        edited_by: e.edited_by.to_string(),
        edit_time: Some(timestamp(e.edited_at)),
        operations: e
            .operations
            .into_iter()
            .map(|o| pb::PatchOperation {
                operation: op_kind(&o.op).into(),
                op: o.op,
                path: o.path,
                from_path: o.from.unwrap_or_default(),
                value: o.value.map(from_json),
            })
            .collect(),
    }
}

pub fn evaluation(e: Evaluation) -> pb::EvaluateCommitmentResponse {
    pb::EvaluateCommitmentResponse {
        as_of: Some(timestamp(e.as_of)),
        periods: e
            .periods
            .iter()
            .map(|r| pb::ObligationPeriodResult {
                scope: r.obligation.scope.as_str().to_owned(),
                measure: r.obligation.measure.as_str().to_owned(),
                obligation_index: r.obligation.index as i32,
                period: period_to_wire(r.obligation.kind).into(),
                period_start: Some(timestamp(r.period.start)),
                period_end: Some(timestamp(r.period.end)),
                required: decimal(r.required),
                measured: decimal(r.measured),
                shortfall: decimal(r.shortfall()),
                outcome: match r.outcome {
                    PeriodOutcome::Met => pb::PeriodOutcome::Met,
                    PeriodOutcome::Shortfall => pb::PeriodOutcome::Shortfall,
                    PeriodOutcome::Open => pb::PeriodOutcome::Open,
                }
                .into(),
            })
            .collect(),
        commitment: Some(commitment(e.commitment)),
    }
}

#[allow(deprecated)] // `kind` is still sent to clients written before the enum
pub fn compensation(c: Compensation) -> pb::Compensation {
    pb::Compensation {
        id: c.id.to_string(),
        commitment_id: c.commitment.to_string(),
        compensation_kind: match c.kind {
            "EARLY_TERMINATION" => pb::CompensationKind::EarlyTermination,
            "SHORTFALL" => pb::CompensationKind::Shortfall,
            _ => pb::CompensationKind::Unspecified,
        }
        .into(),
        kind: c.kind.to_owned(),
        scope: c.period.map(|p| p.0.as_str().to_owned()).unwrap_or_default(),
        measure: c.period.map(|p| p.1.as_str().to_owned()).unwrap_or_default(),
        period_start: c.period.map(|p| timestamp(p.2)),
        period_end: c.period.map(|p| timestamp(p.3)),
        amount: Some(pb::Money { amount: decimal(c.amount), credit_type: c.credit_type }),
        create_time: Some(timestamp(c.created_at)),
    }
}
