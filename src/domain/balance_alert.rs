//! Balance alerts: a threshold on what a customer can still draw in one credit type.
//! An alert is either OK or in alarm and says when that last changed; it moves to alarm
//! once when the available balance falls below its threshold (`BALANCE_LOW` on the
//! feed) and back once when a grant, top-up, release or expiry lifts it again
//! (`BALANCE_RECOVERED`), however many changes happen in between.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::ids::{ApiKeyId, BalanceAlertId, CustomerId};
use super::money::{check_non_negative, format_decimal};
use super::validation::{Parsed, Violations};
use super::violation::{NewViolation, ViolationDetail, ViolationKind};

/// Where the alarm starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threshold {
    /// Available balance below this amount.
    Absolute(Decimal),
    /// Available balance below this percentage of what the balances granted.
    Percent(Decimal),
}

/// An alert is OK or in alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    Ok,
    Alarm,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Alarm => "ALARM",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Ok, Self::Alarm].into_iter().find(|a| a.as_str() == s)
    }
}

/// A balance alert as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceAlert {
    pub id: BalanceAlertId,
    pub customer: CustomerId,
    pub credit_type: String,
    pub threshold: Threshold,
    pub state: AlertState,
    pub changed_at: DateTime<Utc>,
    /// The available balance when the state last changed (or when it was created).
    pub available: Decimal,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<ApiKeyId>,
}

/// What a customer can draw in one credit type at an instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    /// What every open balance can still give, minus what open reservations hold.
    pub available: Decimal,
    /// What those balances were granted (a segment's amount, a promotion's total).
    pub granted: Decimal,
}

impl Threshold {
    /// Whether `s` is below this threshold. With nothing granted nothing is available,
    /// which is below any percentage.
    pub fn in_alarm(&self, s: Standing) -> bool {
        match *self {
            Self::Absolute(amount) => s.available < amount,
            Self::Percent(p) => {
                if s.granted <= Decimal::ZERO {
                    true
                } else {
                    s.available * Decimal::ONE_HUNDRED < p * s.granted
                }
            }
        }
    }
}

/// A new alert as read from the wire.
#[derive(Clone, Debug, Default)]
pub struct BalanceAlertDraft {
    pub customer: Parsed<CustomerId>,
    pub credit_type: String,
    pub absolute: Parsed<Decimal>,
    pub percent: Parsed<Decimal>,
}

/// Checks a new alert: exactly one threshold, positive, a percentage at most 100.
pub fn validate_alert(d: &BalanceAlertDraft, v: &mut Violations) -> Option<(CustomerId, Threshold)> {
    let customer = d.customer.clone().required(v, "customer_id");
    let threshold = match (d.absolute.is_present(), d.percent.is_present()) {
        (true, true) => {
            v.add("threshold_percent", "set either threshold_amount or threshold_percent, not both");
            None
        }
        (false, false) => {
            v.add("threshold_amount", "set threshold_amount or threshold_percent");
            None
        }
        (true, false) => d
            .absolute
            .valid()
            .copied()
            .and_then(|a| positive(v, "threshold_amount", a))
            .map(Threshold::Absolute),
        (false, true) => d
            .percent
            .valid()
            .copied()
            .and_then(|p| {
                if p > Decimal::ONE_HUNDRED {
                    v.add("threshold_percent", "must be at most 100");
                    return None;
                }
                positive(v, "threshold_percent", p)
            })
            .map(Threshold::Percent),
    };
    Some((customer?, threshold?))
}

fn positive(v: &mut Violations, field: &str, d: Decimal) -> Option<Decimal> {
    check_non_negative(v, field, d);
    if d.is_zero() {
        v.add(field, "must be positive");
    }
    (d > Decimal::ZERO).then_some(d)
}

/// The alert's next state for `standing`, with the violation (stored as `id`) announcing
/// the change; `None` when the state stays as it is.
pub fn transition(
    alert: &BalanceAlert,
    standing: Standing,
    now: DateTime<Utc>,
    id: uuid::Uuid,
) -> Option<(AlertState, NewViolation)> {
    let alarm = alert.threshold.in_alarm(standing);
    let (state, kind, verb) = match (alert.state, alarm) {
        (AlertState::Ok, true) => (AlertState::Alarm, ViolationKind::BalanceLow, "fell below"),
        (AlertState::Alarm, false) => {
            (AlertState::Ok, ViolationKind::BalanceRecovered, "is back at or above")
        }
        _ => return None,
    };
    let (limit, percent, threshold) = match alert.threshold {
        Threshold::Absolute(a) => (Some(a), None, format!("{} {}", format_decimal(a), alert.credit_type)),
        Threshold::Percent(p) => (
            None,
            Some(p),
            format!("{} % of {} granted", format_decimal(p), format_decimal(standing.granted)),
        ),
    };
    let detail = ViolationDetail {
        message: format!(
            "available {} balance {} {verb} {threshold}",
            alert.credit_type,
            format_decimal(standing.available)
        ),
        amount: Some(standing.available),
        limit,
        threshold_percent: percent,
        alert_id: Some(alert.id.uuid()),
        credit_type: Some(alert.credit_type.clone()),
        ..Default::default()
    };
    Some((state, NewViolation::new(id, kind, Some(alert.customer), now, detail)))
}

#[cfg(test)]
#[path = "balance_alert_tests.rs"]
mod tests;
