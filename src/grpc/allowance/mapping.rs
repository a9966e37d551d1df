//! Allowance limit messages <-> domain values.

use rust_decimal::Decimal;

use crate::domain::allowance::{
    AllowanceChange, AllowanceLimits, LimitSettings, LimitsUpdate, Maxima, MaximaPatch, Selector,
    ServiceAllowance, check_thresholds, check_tolerance,
};
use crate::domain::etag::etag;
use crate::domain::ids::CustomerId;
use crate::domain::money::parse_credit_type;
use crate::domain::money::{check_non_negative, parse_decimal};
use crate::domain::validation::Violations;
use crate::grpc::convert::{decimal, key_id, parse_id, timestamp};
use crate::proto::customer_id;
use crate::proto::v1 as pb;
use crate::proto::v1::service_allowance::Selector as WireSelector;

/// A maximum from an `optional string`: `None` not given, `Some(None)` cleared (""),
/// `Some(Some(x))` set. A malformed or negative one is recorded and counts as not given.
fn maximum(v: &mut Violations, field: &str, value: Option<&str>) -> Option<Option<Decimal>> {
    match value {
        None => None,
        Some("") => Some(None),
        Some(s) => {
            let d = parse_decimal(v, field, s)?;
            check_non_negative(v, field, d);
            Some(Some(d))
        }
    }
}

fn patch(v: &mut Violations, values: [(&str, Option<&str>); 6]) -> MaximaPatch {
    MaximaPatch(values.map(|(field, value)| maximum(v, field, value)))
}

fn top_level_patch(v: &mut Violations, l: &pb::AllowanceLimits) -> MaximaPatch {
    patch(
        v,
        [
            (
                "accumulated_maximum_rated_amount_per_transaction",
                l.accumulated_maximum_rated_amount_per_transaction.as_deref(),
            ),
            (
                "accumulated_maximum_rated_amount_per_day",
                l.accumulated_maximum_rated_amount_per_day.as_deref(),
            ),
            (
                "accumulated_maximum_rated_amount_per_month",
                l.accumulated_maximum_rated_amount_per_month.as_deref(),
            ),
            (
                "accumulated_maximum_usage_per_transaction",
                l.accumulated_maximum_usage_per_transaction.as_deref(),
            ),
            ("accumulated_maximum_usage_per_day", l.accumulated_maximum_usage_per_day.as_deref()),
            ("accumulated_maximum_usage_per_month", l.accumulated_maximum_usage_per_month.as_deref()),
        ],
    )
}

fn service_patch(v: &mut Violations, a: &pb::ServiceAllowance) -> MaximaPatch {
    patch(
        v,
        [
            ("maximum_rated_amount_per_transaction", a.maximum_rated_amount_per_transaction.as_deref()),
            ("maximum_rated_amount_per_day", a.maximum_rated_amount_per_day.as_deref()),
            ("maximum_rated_amount_per_month", a.maximum_rated_amount_per_month.as_deref()),
            ("maximum_usage_per_transaction", a.maximum_usage_per_transaction.as_deref()),
            ("maximum_usage_per_day", a.maximum_usage_per_day.as_deref()),
            ("maximum_usage_per_month", a.maximum_usage_per_month.as_deref()),
        ],
    )
}

fn maxima_of(p: &MaximaPatch) -> Maxima {
    let mut m = Maxima::default();
    m.patch(p);
    m
}

fn selector(v: &mut Violations, a: &pb::ServiceAllowance) -> Option<Selector> {
    match &a.selector {
        Some(WireSelector::Service(code)) => Some(Selector::Service(code.clone())),
        Some(WireSelector::ServiceType(t)) => Some(Selector::ServiceType(t.clone())),
        Some(WireSelector::ServiceFamily(f)) => Some(Selector::ServiceFamily(f.clone())),
        None => {
            v.add("", "must select exactly one of service, service_type or service_family");
            None
        }
    }
}

fn thresholds(v: &mut Violations, field: &str, values: &[String]) -> Vec<Decimal> {
    let parsed: Vec<Decimal> = values
        .iter()
        .enumerate()
        .filter_map(|(i, s)| parse_decimal(v, &format!("{field}[{i}]"), s))
        .collect();
    check_thresholds(v, field, parsed)
}

fn tolerance(v: &mut Violations, field: &str, value: Option<&str>) -> Option<Option<Decimal>> {
    let t = maximum(v, field, value);
    check_tolerance(v, field, t.flatten());
    t
}

/// The customer, etag and settings of a replace request, with every parse problem.
pub fn replace(
    req: pb::ReplaceAllowanceLimitsRequest,
) -> Result<(CustomerId, String, LimitSettings, Violations), Violations> {
    let mut v = Violations::default();
    let Some(l) = req.limits else {
        v.add("limits", "is required");
        return Err(v);
    };
    let customer = parse_id(&mut v, "limits.customer_id", l.customer_id());
    let settings = v.nested("limits", |v| {
        let maxima = maxima_of(&top_level_patch(v, &l));
        let tolerance_percent = tolerance(
            v,
            "percentage_of_allowed_exceeded_usage_limit",
            l.percentage_of_allowed_exceeded_usage_limit.as_deref(),
        )
        .flatten();
        let warning_thresholds = thresholds(v, "warning_thresholds", &l.warning_thresholds);
        let services = l
            .usage_services_allowance
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                v.nested(format!("usage_services_allowance[{i}]"), |v| {
                    let maxima = maxima_of(&service_patch(v, a));
                    Some(ServiceAllowance { selector: selector(v, a)?, maxima })
                })
            })
            .collect();
        LimitSettings {
            maxima,
            currency: parse_credit_type(v, "currency", &l.currency),
            tolerance_percent,
            block_not_included: l.block_services_not_included_in_usage_allowance_limits_settings,
            soft: l.soft,
            warning_thresholds,
            services,
        }
    });
    match customer {
        Some(c) => Ok((c, l.etag, settings, v)),
        None => Err(v),
    }
}

/// The customer, etag and update of an update request, with every parse problem.
pub fn update(
    req: pb::UpdateAllowanceLimitsRequest,
) -> Result<(CustomerId, String, LimitsUpdate, Violations), Violations> {
    let mut v = Violations::default();
    let customer = parse_id(&mut v, "customer_id", req.customer_id());
    let as_limits = pb::AllowanceLimits {
        accumulated_maximum_rated_amount_per_transaction: req
            .accumulated_maximum_rated_amount_per_transaction
            .clone(),
        accumulated_maximum_rated_amount_per_day: req.accumulated_maximum_rated_amount_per_day.clone(),
        accumulated_maximum_rated_amount_per_month: req.accumulated_maximum_rated_amount_per_month.clone(),
        accumulated_maximum_usage_per_transaction: req.accumulated_maximum_usage_per_transaction.clone(),
        accumulated_maximum_usage_per_day: req.accumulated_maximum_usage_per_day.clone(),
        accumulated_maximum_usage_per_month: req.accumulated_maximum_usage_per_month.clone(),
        ..Default::default()
    };
    let maxima = top_level_patch(&mut v, &as_limits);
    let tolerance_percent = tolerance(
        &mut v,
        "percentage_of_allowed_exceeded_usage_limit",
        req.percentage_of_allowed_exceeded_usage_limit.as_deref(),
    );
    let warning_thresholds = req
        .warning_thresholds
        .as_ref()
        .map(|t| thresholds(&mut v, "warning_thresholds.percents", &t.percents));
    let mut changes = Vec::with_capacity(req.usage_services_allowance.len());
    for (i, change) in req.usage_services_allowance.iter().enumerate() {
        let parsed = v.nested(format!("usage_services_allowance[{i}]"), |v| {
            let Some(a) = &change.allowance else {
                v.add("allowance", "is required");
                return None;
            };
            let (selector, p) = v.nested("allowance", |v| (selector(v, a), service_patch(v, a)));
            let selector = selector?;
            match pb::AllowanceAction::try_from(change.action) {
                Ok(pb::AllowanceAction::Add) => {
                    Some(AllowanceChange::Add(ServiceAllowance { selector, maxima: maxima_of(&p) }))
                }
                Ok(pb::AllowanceAction::Update) => Some(AllowanceChange::Update { selector, patch: p }),
                Ok(pb::AllowanceAction::Remove) => Some(AllowanceChange::Remove(selector)),
                _ => {
                    v.add(
                        "action",
                        "must be ALLOWANCE_ACTION_ADD, ALLOWANCE_ACTION_UPDATE or ALLOWANCE_ACTION_REMOVE",
                    );
                    None
                }
            }
        });
        changes.extend(parsed);
    }
    let currency = req.currency.as_deref().map(|c| parse_credit_type(&mut v, "currency", c));
    let update = LimitsUpdate {
        maxima,
        currency,
        tolerance_percent,
        block_not_included: req.block_services_not_included_in_usage_allowance_limits_settings,
        soft: req.soft,
        warning_thresholds,
        changes,
    };
    match customer {
        Some(c) => Ok((c, req.etag, update, v)),
        None => Err(v),
    }
}

fn opt(d: Option<Decimal>) -> Option<String> {
    d.map(decimal)
}

pub fn limits(l: AllowanceLimits) -> pb::AllowanceLimits {
    let s = &l.settings;
    let m = &s.maxima;
    pb::AllowanceLimits {
        customer: customer_id(l.customer_id.to_string()),
        accumulated_maximum_rated_amount_per_transaction: opt(m.amount_per_transaction),
        accumulated_maximum_rated_amount_per_day: opt(m.amount_per_day),
        accumulated_maximum_rated_amount_per_month: opt(m.amount_per_month),
        accumulated_maximum_usage_per_transaction: opt(m.usage_per_transaction),
        accumulated_maximum_usage_per_day: opt(m.usage_per_day),
        accumulated_maximum_usage_per_month: opt(m.usage_per_month),
        percentage_of_allowed_exceeded_usage_limit: opt(s.tolerance_percent),
        block_services_not_included_in_usage_allowance_limits_settings: s.block_not_included,
        soft: s.soft,
        currency: s.currency.clone(),
        warning_thresholds: s.warning_thresholds.iter().map(|t| decimal(*t)).collect(),
        usage_services_allowance: s
            .services
            .iter()
            .map(|a| pb::ServiceAllowance {
                selector: Some(match &a.selector {
                    Selector::Service(c) => WireSelector::Service(c.clone()),
                    Selector::ServiceType(t) => WireSelector::ServiceType(t.clone()),
                    Selector::ServiceFamily(f) => WireSelector::ServiceFamily(f.clone()),
                }),
                maximum_rated_amount_per_transaction: opt(a.maxima.amount_per_transaction),
                maximum_rated_amount_per_day: opt(a.maxima.amount_per_day),
                maximum_rated_amount_per_month: opt(a.maxima.amount_per_month),
                maximum_usage_per_transaction: opt(a.maxima.usage_per_transaction),
                maximum_usage_per_day: opt(a.maxima.usage_per_day),
                maximum_usage_per_month: opt(a.maxima.usage_per_month),
            })
            .collect(),
        update_time: Some(timestamp(l.updated_at)),
        etag: etag(l.version),
        created_by: key_id(l.by.created_by),
        updated_by: key_id(l.by.updated_by),
    }
}
