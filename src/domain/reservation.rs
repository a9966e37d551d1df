//! Reservations (credit control): before serving something costly a caller holds what
//! the limits and balances allow, then settles with what was really used. A hold is
//! never written into totals or balances: while open it is counted as used by every
//! decision, and ending it (commit, release, expiry) is only a change of state.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::fingerprint::fingerprint;
use super::ids::{CustomerId, ProductId, ReservationId};
use super::limits::{Decision, Evaluation, LimitCheck};
use super::usage::{ProductRef, UsageEvent};
use super::validation::Violations;

/// Decimal places a partial grant is rounded down to.
const GRANT_SCALE: u32 = 6;

/// How a request for a hold was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grant {
    Granted,
    Partial,
    Denied,
}

/// Where a reservation is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Open,
    Committed,
    Released,
    Expired,
    Denied,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Committed => "COMMITTED",
            Self::Released => "RELEASED",
            Self::Expired => "EXPIRED",
            Self::Denied => "DENIED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Open, Self::Committed, Self::Released, Self::Expired, Self::Denied]
            .into_iter()
            .find(|state| state.as_str() == s)
    }

    /// The state as of `now`: an open reservation past its expiry holds nothing, whether
    /// or not the expiry job has marked it yet.
    pub fn at(self, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        if self == Self::Open && expires_at <= now { Self::Expired } else { self }
    }
}

/// A hold on a customer's allowance and balances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub id: ReservationId,
    /// The client's id of the request that created it.
    pub request_id: String,
    pub customer: CustomerId,
    pub product: ProductId,
    pub credit_type: String,
    pub group_values: BTreeMap<String, String>,
    pub contract_id: Option<String>,
    /// Asked for, extensions included.
    pub requested: Amounts,
    /// Held while open.
    pub granted: Amounts,
    pub state: State,
    /// Its hold counts in the windows of this instant; a commit's usage happens then
    /// unless the commit says when.
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
    /// The usage event it was committed as.
    pub event_id: Option<String>,
}

impl Reservation {
    /// The reservation as of `now`: past its expiry while open, it is expired (then).
    pub fn as_of(mut self, now: DateTime<Utc>) -> Self {
        let state = self.state.at(self.expires_at, now);
        if state != self.state {
            self.state = state;
            self.settled_at = Some(self.expires_at);
        }
        self
    }

    /// The usage event of `amounts` under this reservation's terms, dated `at` (when it
    /// was reserved unless given).
    pub fn usage(&self, event_id: String, amounts: Amounts, at: Option<DateTime<Utc>>) -> UsageEvent {
        UsageEvent {
            event_id,
            customer_id: self.customer,
            product: ProductRef::Id(self.product),
            quantity: amounts.quantity,
            amount: amounts.amount,
            credit_type: self.credit_type.clone(),
            timestamp: at.unwrap_or(self.created_at),
            group_values: self.group_values.clone(),
            contract_id: self.contract_id.clone(),
        }
    }
}

/// The first answer to a request for a hold, kept for its replay, packed by position
/// (`app::usage::packing`): a field is only added last, with a default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldAnswer {
    pub grant: Grant,
    /// What was added to the hold (all of it, for a new reservation).
    pub granted: Amounts,
    pub checks: Vec<LimitCheck>,
    pub service_not_included: bool,
    /// How much of the requested amount the balances could give.
    pub coverable: Decimal,
}

/// A quantity and a rated amount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amounts {
    pub quantity: Decimal,
    pub amount: Decimal,
}

impl Amounts {
    fn of(&self, measure: super::allowance::Measure) -> Decimal {
        match measure {
            super::allowance::Measure::RatedAmount => self.amount,
            super::allowance::Measure::Usage => self.quantity,
        }
    }

    fn scaled(&self, f: Fraction) -> Self {
        let down = |d: Decimal| {
            // Past 28 digits the product overflows: divide first then (exact enough).
            let share = d.checked_mul(f.num).map_or_else(|| d * (f.num / f.den), |p| p / f.den);
            share.round_dp_with_strategy(GRANT_SCALE, RoundingStrategy::ToZero).normalize()
        };
        Self { quantity: down(self.quantity), amount: down(self.amount) }
    }

    pub fn is_zero(&self) -> bool {
        self.quantity.is_zero() && self.amount.is_zero()
    }
}

impl std::ops::Add for Amounts {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self { quantity: self.quantity + other.quantity, amount: self.amount + other.amount }
    }
}

/// What a caller asks to hold, and what it accepts instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ask {
    pub requested: Amounts,
    /// Accept part of the request rather than nothing.
    pub allow_partial: bool,
    /// Accept rated amount no balance covers (overage).
    pub allow_overage: bool,
}

/// What limits and balances allow of `ask`. `evaluation` judged the full request with
/// every open hold counted as used; `coverable` is how much of the requested amount the
/// balances can give after those holds.
///
/// The grant is the largest fraction of the request (the same for quantity and amount:
/// a unit price does not change) that keeps every maximum within its tolerance and,
/// without `allow_overage`, the amount within `coverable`. Limits a smaller request
/// cannot satisfy (a service not included where such services are blocked) deny it.
pub fn grant(ask: &Ask, evaluation: &Evaluation, coverable: Decimal) -> (Grant, Amounts) {
    let denied = (Grant::Denied, Amounts::default());
    let requested = ask.requested;
    let mut fraction = Fraction::WHOLE;
    if evaluation.decision == Decision::Blocked {
        if evaluation.not_included_blocks {
            return denied;
        }
        for check in &evaluation.checks {
            fraction = fraction.min(room(check, requested.of(check.measure)));
        }
    }
    if !ask.allow_overage && requested.amount > Decimal::ZERO {
        fraction = fraction.min(Fraction { num: coverable.max(Decimal::ZERO), den: requested.amount });
    }
    if fraction.is_whole() {
        return (Grant::Granted, requested);
    }
    if !ask.allow_partial || fraction.num <= Decimal::ZERO {
        return denied;
    }
    let granted = requested.scaled(fraction);
    if granted.is_zero() { denied } else { (Grant::Partial, granted) }
}

/// A share of a request, `num / den` kept apart so the binding limit's room comes out
/// exact (30 * 10 / 30 is 10, where 30 * (10 / 30) is 9.999…).
#[derive(Clone, Copy, Debug)]
struct Fraction {
    num: Decimal,
    den: Decimal,
}

impl Fraction {
    const WHOLE: Self = Self { num: Decimal::ONE, den: Decimal::ONE };
    const NONE: Self = Self { num: Decimal::ZERO, den: Decimal::ONE };

    fn min(self, other: Self) -> Self {
        if other.value() < self.value() { other } else { self }
    }

    fn value(&self) -> Decimal {
        self.num / self.den
    }

    fn is_whole(&self) -> bool {
        self.num >= self.den
    }
}

/// The share of `value` that fits under the check's maximum with tolerance (none, or
/// less, when the window is past it already).
fn room(check: &LimitCheck, value: Decimal) -> Fraction {
    let room = check.tolerance_maximum - (check.used - value);
    if value.is_zero() {
        // Nothing of this measure is asked: it bounds nothing, unless its window is past
        // the tolerance already (then not even nothing more passes it).
        return if room < Decimal::ZERO { Fraction::NONE } else { Fraction::WHOLE };
    }
    Fraction { num: room.min(value), den: value }
}

/// How long holds last: the default when a request names none, and the most allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldDurations {
    pub default: Duration,
    pub max: Duration,
}

impl Default for HoldDurations {
    fn default() -> Self {
        Self { default: Duration::minutes(5), max: Duration::hours(24) }
    }
}

impl HoldDurations {
    /// The duration of a hold asked for as `ttl` (the default when `None`).
    pub fn resolve(&self, v: &mut Violations, field: &str, ttl: Option<Duration>) -> Option<Duration> {
        let Some(ttl) = ttl else { return Some(self.default) };
        if ttl <= Duration::zero() {
            v.add(field, "must be positive");
            return None;
        }
        if ttl > self.max {
            v.add(field, format!("must be at most {} seconds", self.max.num_seconds()));
            return None;
        }
        Some(ttl)
    }
}

/// Why a reservation cannot take a settlement or extension now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotOpen {
    pub state: State,
    pub message: String,
}

/// What committing a reservation in `state` (as of now) with `event_id` does: record the
/// event, or repeat the commit already made with that event (its answer is the event's
/// replay), or nothing (refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitStep {
    Record,
    Repeat,
}

pub fn commit_step(state: State, committed_as: Option<&str>, event_id: &str) -> Result<CommitStep, NotOpen> {
    match state {
        // An expired reservation holds nothing, but the usage it was for happened.
        State::Open | State::Expired => Ok(CommitStep::Record),
        State::Committed if committed_as == Some(event_id) => Ok(CommitStep::Repeat),
        State::Committed => Err(NotOpen {
            state,
            message: format!("the reservation was committed as event {}", committed_as.unwrap_or_default()),
        }),
        State::Released | State::Denied => Err(NotOpen {
            state,
            message: format!("the reservation is {}: it cannot be committed", lower(state)),
        }),
    }
}

/// Whether releasing a reservation in `state` (as of now) ends a hold (`true`), finds
/// nothing held (`false`), or is refused.
pub fn release_step(state: State) -> Result<bool, NotOpen> {
    match state {
        State::Open => Ok(true),
        State::Released | State::Expired | State::Denied => Ok(false),
        State::Committed => {
            Err(NotOpen { state, message: "a committed reservation cannot be released".to_owned() })
        }
    }
}

/// Refuses an extension of a reservation that holds nothing now.
pub fn check_extendable(state: State) -> Result<(), NotOpen> {
    match state {
        State::Open => Ok(()),
        _ => Err(NotOpen {
            state,
            message: format!("the reservation is {}: it cannot be extended", lower(state)),
        }),
    }
}

fn lower(state: State) -> String {
    state.as_str().to_lowercase()
}

/// Equal for two requests for the same hold (the instant they were sent aside).
pub fn reserve_fingerprint(e: &UsageEvent, ttl: Option<Duration>, ask: &Ask) -> [u8; 32] {
    let product = match &e.product {
        ProductRef::Id(id) => format!("id:{id}"),
        ProductRef::Code(code) => format!("code:{code}"),
    };
    let parts = [
        e.customer_id.to_string(),
        product,
        e.quantity.normalize().to_string(),
        e.amount.normalize().to_string(),
        e.credit_type.clone(),
        e.contract_id.clone().unwrap_or_default(),
        ttl.map(|t| t.num_milliseconds().to_string()).unwrap_or_default(),
        ask.allow_partial.to_string(),
        ask.allow_overage.to_string(),
    ];
    fingerprint(&parts, &e.group_values)
}

/// Equal for two requests for the same extension.
pub fn extend_fingerprint(reservation: &str, ask: &Ask, ttl: Option<Duration>) -> [u8; 32] {
    let parts = [
        reservation.to_owned(),
        ask.requested.quantity.normalize().to_string(),
        ask.requested.amount.normalize().to_string(),
        ttl.map(|t| t.num_milliseconds().to_string()).unwrap_or_default(),
        ask.allow_partial.to_string(),
        ask.allow_overage.to_string(),
    ];
    fingerprint(&parts, &BTreeMap::new())
}

#[cfg(test)]
#[path = "reservation_tests.rs"]
mod tests;
