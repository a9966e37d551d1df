//! Usage events: what a client reports, its fingerprint for idempotency, and the
//! violations a decision on it raises.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::drawdown::{Allocation, RatedUsage, SourceRef};
use super::fingerprint::fingerprint;
use super::ids::{CustomerId, ProductId};
use super::limits::{Decision, Evaluation, Outcome};
use super::money::check_non_negative;
use super::text::{check_code, check_length, check_string_map};
use super::validation::{Parsed, Violations};
use super::violation::{NewViolation, ViolationDetail, ViolationKind};

/// Most events one batch call may carry.
pub const MAX_BATCH: usize = 1000;

/// How an event names its product.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProductRef {
    Id(ProductId),
    Code(String),
}

/// A usage event as reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageEvent {
    pub event_id: String,
    pub customer_id: CustomerId,
    pub product: ProductRef,
    pub quantity: Decimal,
    pub amount: Decimal,
    pub credit_type: String,
    pub timestamp: DateTime<Utc>,
    pub group_values: BTreeMap<String, String>,
    pub contract_id: Option<String>,
}

/// A usage event as read from the wire.
#[derive(Clone, Debug, Default)]
pub struct UsageEventDraft {
    pub event_id: String,
    pub customer_id: Parsed<CustomerId>,
    pub product: Parsed<ProductRef>,
    pub quantity: Parsed<Decimal>,
    pub amount: Parsed<Decimal>,
    pub credit_type: String,
    pub timestamp: Parsed<DateTime<Utc>>,
    pub group_values: BTreeMap<String, String>,
    pub contract_id: Option<String>,
}

/// Checks an event; `require_id` for recording (checking needs no id); `latest` is the
/// latest timestamp accepted.
pub fn validate_event(
    d: UsageEventDraft,
    require_id: bool,
    latest: DateTime<Utc>,
    v: &mut Violations,
) -> Option<UsageEvent> {
    if require_id || !d.event_id.is_empty() {
        check_code(v, "event_id", &d.event_id, 128);
    }
    let customer_id = d.customer_id.required(v, "customer_id");
    let product = d.product.required(v, "product_id");
    if let Some(ProductRef::Code(code)) = &product {
        check_code(v, "product_code", code, 128);
    }
    let quantity = d.quantity.required(v, "quantity");
    let amount = d.amount.required(v, "rated_amount");
    for (field, value) in [("quantity", quantity), ("rated_amount", amount)] {
        if let Some(x) = value {
            check_non_negative(v, field, x);
        }
    }
    let timestamp = d.timestamp.required(v, "timestamp");
    if timestamp.is_some_and(|t| t > latest) {
        v.add("timestamp", "is too far in the future");
    }
    check_string_map(v, "group_values", &d.group_values, super::drawdown::MAX_GROUP_VALUES, 256);
    if let Some(c) = &d.contract_id {
        check_length(v, "contract_id", c, 1, 128);
    }
    if !v.is_empty() {
        return None;
    }
    Some(UsageEvent {
        event_id: d.event_id,
        customer_id: customer_id?,
        product: product?,
        quantity: quantity?,
        amount: amount?,
        credit_type: d.credit_type,
        timestamp: timestamp?,
        group_values: d.group_values,
        contract_id: d.contract_id,
    })
}

impl UsageEvent {
    /// Equal for two reports of the same event, different otherwise (trailing zeros of
    /// decimals do not count).
    pub fn fingerprint(&self) -> [u8; 32] {
        let product = match &self.product {
            ProductRef::Id(id) => format!("id:{id}"),
            ProductRef::Code(code) => format!("code:{code}"),
        };
        let parts = [
            self.customer_id.to_string(),
            product,
            self.quantity.normalize().to_string(),
            self.amount.normalize().to_string(),
            self.credit_type.clone(),
            self.timestamp.timestamp_micros().to_string(),
            self.contract_id.clone().unwrap_or_default(),
        ];
        fingerprint(&parts, &self.group_values)
    }

    /// The event as the drawdown engine takes it, once its product is known.
    pub fn rated(&self, product_id: ProductId) -> RatedUsage {
        RatedUsage {
            product_id,
            amount: self.amount,
            credit_type: self.credit_type.clone(),
            timestamp: self.timestamp,
            group_values: self.group_values.clone(),
            contract_id: self.contract_id.clone(),
        }
    }
}

/// " of <event id>" for messages, nothing for an event that has no id (a CheckUsage
/// question), so no message reads "of  is".
fn of_event(e: &UsageEvent) -> String {
    if e.event_id.is_empty() { String::new() } else { format!(" of {}", e.event_id) }
}

fn limit_detail(
    e: &UsageEvent,
    product: ProductId,
    check: &super::limits::LimitCheck,
    blocked: bool,
) -> ViolationDetail {
    let over = if check.outcome == Outcome::Exceeded { "past its tolerance" } else { "within its tolerance" };
    ViolationDetail {
        message: format!(
            "{} {} per {}{} is {} against a maximum of {} ({over})",
            check.scope,
            check.measure.as_str(),
            check.period.as_str(),
            of_event(e),
            check.used.normalize(),
            check.maximum.normalize()
        ),
        event_id: Some(e.event_id.clone()),
        product_id: Some(product),
        scope: Some(check.scope.clone()),
        measure: Some(check.measure.as_str().to_owned()),
        period: Some(check.period.as_str().to_owned()),
        window_start: check.window.map(|w| w.start),
        used: Some(check.used),
        limit: Some(check.maximum),
        tolerance_limit: Some(check.tolerance_maximum),
        blocked,
        ..Default::default()
    }
}

/// The violations a limits evaluation of `e` raises, with ids from `ids`.
pub fn limit_violations(
    e: &UsageEvent,
    product: ProductId,
    ev: &Evaluation,
    ids: &mut impl FnMut() -> Uuid,
) -> Vec<NewViolation> {
    let blocked = ev.decision == Decision::Blocked;
    let mut out = Vec::new();
    let at = e.timestamp;
    let customer = Some(e.customer_id);
    if ev.not_included_blocks {
        out.push(NewViolation::new(
            ids(),
            ViolationKind::ServiceNotIncluded,
            customer,
            at,
            ViolationDetail {
                message: match e.event_id.as_str() {
                    "" => "the event uses a service no allowance includes".to_owned(),
                    id => format!("event {id} uses a service no allowance includes"),
                },
                event_id: Some(e.event_id.clone()),
                product_id: Some(product),
                blocked,
                ..Default::default()
            },
        ));
    }
    for check in &ev.checks {
        let kind = match (check.outcome, ev.soft) {
            (Outcome::Within, _) => continue,
            (Outcome::Exceeded, false) => ViolationKind::LimitBlock,
            (Outcome::OverLimit, _) | (Outcome::Exceeded, true) => {
                // When another limit blocks the event, nothing is recorded: warn of nothing.
                if blocked {
                    continue;
                }
                ViolationKind::LimitWarning
            }
        };
        out.push(NewViolation::new(
            ids(),
            kind,
            customer,
            at,
            limit_detail(e, product, check, kind == ViolationKind::LimitBlock),
        ));
    }
    for c in &ev.crossings {
        let period = if c.window.kind == super::windows::WindowKind::Day { "day" } else { "month" };
        out.push(NewViolation::new(
            ids(),
            ViolationKind::ThresholdCrossed,
            customer,
            at,
            ViolationDetail {
                message: format!(
                    "{} {} per {period} reached {}% of its maximum",
                    c.scope,
                    c.measure.as_str(),
                    c.percent.normalize()
                ),
                event_id: Some(e.event_id.clone()),
                product_id: Some(product),
                scope: Some(c.scope.clone()),
                measure: Some(c.measure.as_str().to_owned()),
                period: Some(period.to_owned()),
                window_start: Some(c.window.start),
                used: Some(c.used),
                limit: Some(c.maximum),
                threshold_percent: Some(c.percent),
                ..Default::default()
            },
        ));
    }
    out
}

/// A COMMIT_EXHAUSTED violation for every commit segment `allocation` emptied, with ids
/// from `ids`.
pub fn exhaustion_violations(
    allocation: &Allocation,
    customer: CustomerId,
    at: DateTime<Utc>,
    event_id: Option<&str>,
    ids: &mut impl FnMut() -> Uuid,
) -> Vec<NewViolation> {
    allocation
        .draws
        .iter()
        .filter(|d| d.remaining_after.is_zero() && d.amount > Decimal::ZERO)
        .filter_map(|d| match d.source {
            SourceRef::CreditPromotion { .. } => None,
            SourceRef::CommitSegment { commit_id, idx } => Some(NewViolation::new(
                ids(),
                ViolationKind::CommitExhausted,
                Some(customer),
                at,
                ViolationDetail {
                    message: format!("commit {commit_id} access segment {idx} is used up"),
                    event_id: event_id.map(str::to_owned),
                    commit_id: Some(commit_id),
                    amount: Some(d.amount),
                    ..Default::default()
                },
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn draft() -> UsageEventDraft {
        UsageEventDraft {
            event_id: "evt-1".into(),
            customer_id: Parsed::Valid(CustomerId::generate()),
            product: Parsed::Valid(ProductRef::Code("CREED".into())),
            quantity: Parsed::Valid(Decimal::ONE),
            amount: Parsed::Valid(Decimal::TEN),
            credit_type: "USD".into(),
            timestamp: Parsed::Valid(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()),
            ..Default::default()
        }
    }

    fn latest() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 1, 0, 0).unwrap()
    }

    #[test]
    fn a_blocked_event_raises_a_block_with_every_detail_and_a_not_included_violation() {
        use crate::domain::allowance::{Measure, Period};
        use crate::domain::limits::LimitCheck;
        use crate::domain::windows::{WindowKind, window_of};

        let mut v = Violations::default();
        let e = validate_event(draft(), true, latest(), &mut v).expect("valid");
        let product = ProductId(uuid::Uuid::from_u128(7));
        let day = window_of(WindowKind::Day, chrono_tz::Tz::UTC, e.timestamp);
        let check = |outcome| LimitCheck {
            scope: "customer".into(),
            measure: Measure::RatedAmount,
            period: Period::Day,
            window: Some(day),
            used: Decimal::from(130),
            maximum: Decimal::ONE_HUNDRED,
            tolerance_maximum: Decimal::from(120),
            outcome,
        };
        let ev = Evaluation {
            decision: Decision::Blocked,
            checks: vec![check(Outcome::Exceeded), check(Outcome::OverLimit)],
            service_not_included: true,
            not_included_blocks: true,
            soft: false,
            crossings: Vec::new(),
        };
        let raised = limit_violations(&e, product, &ev, &mut Uuid::now_v7);
        let kinds: Vec<_> = raised.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [ViolationKind::ServiceNotIncluded, ViolationKind::LimitBlock],
            "no warning for what a block kept from being recorded"
        );
        assert_eq!((raised[1].customer_id, raised[1].occurred_at), (Some(e.customer_id), e.timestamp));
        assert_eq!(
            raised[0].detail,
            ViolationDetail {
                message: "event evt-1 uses a service no allowance includes".into(),
                event_id: Some("evt-1".into()),
                product_id: Some(product),
                blocked: true,
                ..Default::default()
            }
        );
        assert_eq!(
            raised[1].detail,
            ViolationDetail {
                message: "customer rated_amount per day of evt-1 is 130 against a maximum of 100 (past its tolerance)"
                    .into(),
                event_id: Some("evt-1".into()),
                product_id: Some(product),
                scope: Some("customer".into()),
                measure: Some("rated_amount".into()),
                period: Some("day".into()),
                window_start: Some(day.start),
                used: Some(Decimal::from(130)),
                limit: Some(Decimal::ONE_HUNDRED),
                tolerance_limit: Some(Decimal::from(120)),
                blocked: true,
                ..Default::default()
            }
        );

        // Allowed over the limit: a warning, not blocked, "within its tolerance".
        let warned = Evaluation {
            decision: Decision::AllowedOverLimit,
            checks: vec![check(Outcome::OverLimit)],
            not_included_blocks: false,
            ..ev.clone()
        };
        let raised = limit_violations(&e, product, &warned, &mut Uuid::now_v7);
        assert_eq!(raised.len(), 1);
        assert_eq!((raised[0].kind, raised[0].detail.blocked), (ViolationKind::LimitWarning, false));
        assert!(raised[0].detail.message.ends_with("(within its tolerance)"));

        // A question without an event id (CheckUsage) leaves no empty slot in a message.
        let unnamed = UsageEvent { event_id: String::new(), ..e };
        let raised = limit_violations(&unnamed, product, &ev, &mut Uuid::now_v7);
        let messages: Vec<&str> = raised.iter().map(|r| r.detail.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "the event uses a service no allowance includes",
                "customer rated_amount per day is 130 against a maximum of 100 (past its tolerance)"
            ]
        );
    }

    #[test]
    fn a_crossed_threshold_names_its_window_and_every_figure() {
        use crate::domain::allowance::Measure;
        use crate::domain::limits::Crossing;
        use crate::domain::windows::{WindowKind, window_of};

        let mut v = Violations::default();
        let e = validate_event(draft(), true, latest(), &mut v).expect("valid");
        let product = ProductId(uuid::Uuid::from_u128(7));
        let tz = chrono_tz::Asia::Tokyo;
        // A day later in the month than the event's, so the two windows start apart.
        let day = window_of(WindowKind::Day, tz, e.timestamp + chrono::Duration::days(3));
        let month = window_of(WindowKind::Month, tz, e.timestamp);
        let crossing = |window, measure, percent: u32, used: u32| Crossing {
            scope: "service:CREED".into(),
            measure,
            window,
            percent: Decimal::from(percent),
            used: Decimal::from(used),
            maximum: Decimal::from(200),
        };
        let ev = Evaluation {
            decision: Decision::Allowed,
            checks: Vec::new(),
            service_not_included: false,
            not_included_blocks: false,
            soft: false,
            crossings: vec![
                crossing(day, Measure::Usage, 80, 160),
                crossing(month, Measure::RatedAmount, 50, 100),
            ],
        };
        let raised = limit_violations(&e, product, &ev, &mut Uuid::now_v7);
        assert!(raised.iter().all(|r| r.kind == ViolationKind::ThresholdCrossed));
        assert!(raised.iter().all(|r| (r.customer_id, r.occurred_at) == (Some(e.customer_id), e.timestamp)));
        let details: Vec<_> = raised.into_iter().map(|r| r.detail).collect();
        assert_eq!(
            details,
            [
                ViolationDetail {
                    message: "service:CREED usage per day reached 80% of its maximum".into(),
                    event_id: Some("evt-1".into()),
                    product_id: Some(product),
                    scope: Some("service:CREED".into()),
                    measure: Some("usage".into()),
                    period: Some("day".into()),
                    window_start: Some(day.start),
                    used: Some(Decimal::from(160)),
                    limit: Some(Decimal::from(200)),
                    threshold_percent: Some(Decimal::from(80)),
                    ..Default::default()
                },
                ViolationDetail {
                    message: "service:CREED rated_amount per month reached 50% of its maximum".into(),
                    event_id: Some("evt-1".into()),
                    product_id: Some(product),
                    scope: Some("service:CREED".into()),
                    measure: Some("rated_amount".into()),
                    period: Some("month".into()),
                    window_start: Some(month.start),
                    used: Some(Decimal::from(100)),
                    limit: Some(Decimal::from(200)),
                    threshold_percent: Some(Decimal::from(50)),
                    ..Default::default()
                },
            ]
        );
    }

    #[test]
    fn valid_event_passes_and_fingerprints_stably() {
        let mut v = Violations::default();
        let e = validate_event(draft(), true, latest(), &mut v).expect("valid");
        let same = UsageEvent { amount: "10.000".parse().unwrap(), ..e.clone() };
        assert_eq!(e.fingerprint(), same.fingerprint());
        let other = UsageEvent { quantity: Decimal::TWO, ..e.clone() };
        assert_ne!(e.fingerprint(), other.fingerprint());
    }

    #[test]
    fn event_id_is_required_to_record_but_not_to_check() {
        let mut v = Violations::default();
        assert!(
            validate_event(UsageEventDraft { event_id: String::new(), ..draft() }, true, latest(), &mut v)
                .is_none()
        );
        assert_eq!(v.items()[0].field, "event_id");
        let mut v = Violations::default();
        assert!(
            validate_event(UsageEventDraft { event_id: String::new(), ..draft() }, false, latest(), &mut v)
                .is_some()
        );
    }

    #[test]
    fn negative_quantities_and_far_future_timestamps_are_invalid() {
        let mut v = Violations::default();
        let d = UsageEventDraft {
            quantity: Parsed::Valid(Decimal::NEGATIVE_ONE),
            timestamp: Parsed::Valid(latest() + chrono::Duration::seconds(1)),
            ..draft()
        };
        assert!(validate_event(d, true, latest(), &mut v).is_none());
        let fields: Vec<_> = v.items().iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["quantity", "timestamp"]);
    }

    #[test]
    fn an_event_dated_exactly_at_the_latest_accepted_instant_is_valid() {
        let mut v = Violations::default();
        let d = UsageEventDraft { timestamp: Parsed::Valid(latest()), ..draft() };
        assert!(validate_event(d, true, latest(), &mut v).is_some(), "{v:?}");
    }

    #[test]
    fn only_commit_segments_an_event_emptied_raise_commit_exhausted_with_every_detail() {
        use crate::domain::drawdown::Draw;
        use crate::domain::ids::{AppliedPromotionId, CommitId};
        let (emptied, partly, already_empty) =
            (CommitId::generate(), CommitId::generate(), CommitId::generate());
        let draw = |source, amount: i64, remaining_after: i64| Draw {
            source,
            amount: Decimal::from(amount),
            remaining_after: Decimal::from(remaining_after),
        };
        let allocation = Allocation {
            draws: vec![
                draw(SourceRef::CommitSegment { commit_id: partly, idx: 0 }, 2, 3),
                draw(SourceRef::CommitSegment { commit_id: already_empty, idx: 0 }, 0, 0),
                draw(
                    SourceRef::CreditPromotion {
                        applied: AppliedPromotionId::generate(),
                        cycle_start: latest(),
                    },
                    4,
                    0,
                ),
                draw(SourceRef::CommitSegment { commit_id: emptied, idx: 1 }, 5, 0),
            ],
            overage: Decimal::ONE,
        };
        let customer = CustomerId::generate();
        let raised = exhaustion_violations(&allocation, customer, latest(), Some("evt-9"), &mut Uuid::now_v7);
        assert_eq!(raised.len(), 1, "{raised:?}");
        let v = &raised[0];
        assert_eq!(
            (v.kind, v.customer_id, v.occurred_at),
            (ViolationKind::CommitExhausted, Some(customer), latest())
        );
        assert_eq!(
            v.detail,
            ViolationDetail {
                message: format!("commit {emptied} access segment 1 is used up"),
                event_id: Some("evt-9".into()),
                commit_id: Some(emptied),
                amount: Some(Decimal::from(5)),
                ..Default::default()
            }
        );
    }
}
