//! Recording usage: one transaction decides a whole batch of events in order. It locks the
//! batch's customers (in id order), loads once everything the decisions need (stored
//! events, products, limits, window totals, commit balances), lets the pure domain decide
//! each event against the state left by the earlier ones, then writes totals, balances,
//! ledger entries, violations and the events with their answers. A single RecordUsage is
//! a batch of one; CheckUsage runs the same decisions without locks or writes.

mod decide;
mod load;
mod packing;
mod persist;

pub(in crate::app) use decide::*;
pub(in crate::app) use load::*;
pub use packing::*;
pub(in crate::app) use persist::*;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::credit_types::undeclared;
use super::drawdowns::{Balances, DrawRecord, DrawdownOutcome, check_horizon, drawdown_entries};
use super::{App, AppError, Policy, UsageCaches, clock};
use crate::db::credit::PromotionDrawdown;
use crate::db::usage::{AlertRow, EventToStore, StoredAnswer, StoredEvent, TotalRow, WindowKey};
use crate::db::{self, Conn, DbError};
use crate::domain::allowance::{AllowanceLimits, LimitSettings};
use crate::domain::commit::balance::LedgerEntry;
use crate::domain::credit_type::is_custom;
use crate::domain::ids::{CustomerId, OrgId, ProductId, ReservationId};
use crate::domain::limits::{
    AlertKey, CustomerUsage, Decision, EventFacts, LimitCheck, Totals, TotalsKey, UsageLine,
};
use crate::domain::product::Product;
use crate::domain::reservation::Reservation;
use crate::domain::usage::{ProductRef, UsageEvent, exhaustion_violations, limit_violations};
use crate::domain::validation::Violations;
use crate::domain::violation::NewViolation;
use crate::domain::windows::{WindowKind, window_of};

/// One event of a call as the wire parsed it, with the path its fields are named under.
#[derive(Clone, Debug)]
pub struct EventInput {
    pub prefix: String,
    pub event: Result<UsageEvent, InputError>,
}

/// Why an event of a request cannot be recorded, known before any transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum InputError {
    /// Bad fields (named under the event's prefix).
    Invalid(Violations),
    /// It names its customer by an external id the organization has no customer with.
    UnknownCustomer(String),
}

impl From<InputError> for AppError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Invalid(v) => AppError::Invalid(v),
            InputError::UnknownCustomer(external_id) => AppError::not_found("customer", external_id),
        }
    }
}

/// A violation in an answer: with its feed position once written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedViolation {
    pub seq: Option<i64>,
    pub recorded_at: Option<DateTime<Utc>>,
    pub violation: NewViolation,
}

/// The answer for one event; stored with the event so a replay returns it, packed by
/// position (`packing`): a field of it, or of what it holds, is only added last, with a
/// default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageOutcome {
    pub event_id: String,
    pub decision: Decision,
    pub checks: Vec<LimitCheck>,
    pub service_not_included: bool,
    pub draws: Vec<DrawRecord>,
    pub overage: Decimal,
    pub violations: Vec<ReportedViolation>,
    #[serde(skip)]
    pub replayed: bool,
}

/// The answer for one event of a call: its outcome, or why it was refused.
pub type EventResult = Result<UsageOutcome, AppError>;

/// Everything the decisions of one batch need, loaded once. Open reservations are
/// already counted in: their holds are in the totals and taken from the balances.
#[derive(Default)]
pub(super) struct BatchState {
    usage: HashMap<CustomerId, CustomerUsage>,
    balances: HashMap<CustomerId, Balances>,
    products: HashMap<ProductId, Product>,
    product_codes: HashMap<String, ProductId>,
    stored: HashMap<String, StoredEvent>,
    /// The custom credit types among the events that the organization declared.
    declared: HashSet<String>,
    /// The customers with balance alerts, to judge once the batch's draws are written.
    alerting: Vec<CustomerId>,
}

/// What a recording batch will write.
#[derive(Default)]
pub(super) struct Writes {
    /// What the batch adds to each total, per customer and credit type.
    totals: HashMap<(CustomerId, TotalsKey, String), Totals>,
    /// The highest threshold each customer's limits crossed.
    alerts: HashMap<(CustomerId, AlertKey), Decimal>,
    ledger: Vec<LedgerEntry>,
    promotion_draws: Vec<PromotionDrawdown>,
    violations: Vec<NewViolation>,
    /// The new events, in the order decided.
    events: Vec<NewEvent>,
}

/// A new event a batch decided.
struct NewEvent {
    /// Its place among the batch's inputs.
    input: usize,
    id: Uuid,
    product: ProductId,
    decision: Decision,
    fingerprint: [u8; 32],
    /// Its violations in `Writes::violations`.
    violations: std::ops::Range<usize>,
}

fn valid_events(inputs: &[EventInput]) -> impl Iterator<Item = &UsageEvent> {
    inputs.iter().filter_map(|i| i.event.as_ref().ok())
}

/// The result of a batch of one event.
pub(crate) fn only_result(mut results: Vec<EventResult>) -> EventResult {
    results.pop().unwrap_or_else(|| Err(DbError::Other("no result for the event".into()).into()))
}

/// Counts decided events by outcome, and the size of the transaction they shared.
fn count_outcomes(results: &[EventResult]) {
    metrics::histogram!("usage_transaction_events").record(results.len() as f64);
    for r in results {
        let outcome = match r {
            Ok(o) if o.replayed => "replayed",
            Ok(o) => o.decision.as_str(),
            Err(_) => "rejected",
        };
        metrics::counter!("usage_events_total", "outcome" => outcome).increment(1);
    }
}

impl App {
    /// Decides and records a batch of events in one transaction; one result per input.
    /// Shared so a caller can keep the events (to rerun them) without copying them.
    pub async fn record_usage(
        &self,
        org: OrgId,
        inputs: Arc<[EventInput]>,
    ) -> Result<Vec<EventResult>, AppError> {
        let (policy, caches) = (self.policy(), self.caches.clone());
        if valid_events(&inputs).next().is_none() {
            // Nothing valid to decide: each answer is its own error, no transaction needed.
            let results = decide(&mut BatchState::default(), &inputs, None, (clock::now(), policy))?;
            count_outcomes(&results);
            return Ok(results);
        }
        self.db()
            .transaction(org, move |conn| {
                let now = clock::now();
                let mut state = load_state(conn, org, &inputs, (true, None), (now, policy), &caches)?;
                let mut writes = Writes::default();
                let mut results = decide(&mut state, &inputs, Some(&mut writes), (now, policy))?;
                persist(conn, org, &inputs, &state, writes, &mut results, (now, policy.late_usage_grace))?;
                Ok(results)
            })
            .await
            .inspect(|results| count_outcomes(results))
    }

    /// The decision recording `input` would take now, recording nothing.
    pub async fn check_usage(&self, org: OrgId, input: EventInput) -> Result<UsageOutcome, AppError> {
        let (policy, caches) = (self.policy(), self.caches.clone());
        self.db()
            .transaction(org, move |conn| {
                let inputs = [input.clone()];
                let now = clock::now();
                let mut state = load_state(conn, org, &inputs, (false, None), (now, policy), &caches)?;
                only_result(decide(&mut state, &inputs, None, (now, policy))?)
            })
            .await
    }

    /// The customer's limits and every daily and monthly maximum with its total at `at`.
    pub async fn allowance_usage(
        &self,
        org: OrgId,
        customer: CustomerId,
        at: DateTime<Utc>,
    ) -> Result<(AllowanceLimits, Vec<UsageLine>), AppError> {
        self.db()
            .transaction(org, move |conn| {
                let c = db::customers::get(conn, org, customer)?
                    .ok_or_else(|| AppError::not_found("customer", customer))?;
                let limits = db::allowances::get(conn, org, customer, false)?
                    .ok_or_else(|| AppError::not_found("allowance limits", customer))?;
                let keys: Vec<WindowKey> = [WindowKind::Day, WindowKind::Month]
                    .into_iter()
                    .map(|kind| WindowKey {
                        customer,
                        kind,
                        first_day: window_of(kind, c.time_zone, at).first_day,
                    })
                    .collect();
                let totals = db::usage::load_windows(conn, org, &keys)?.totals;
                let ids: Vec<ProductId> = totals.iter().map(|t| t.product).collect();
                let mut usage = CustomerUsage {
                    time_zone: c.time_zone,
                    limits: Some(limits.settings.clone()),
                    totals: HashMap::new(),
                    products: db::products::get_many(conn, org, &ids)?
                        .into_iter()
                        .map(|p| (p.id, p))
                        .collect(),
                    alerted: HashMap::new(),
                };
                for t in &totals {
                    count_total(&mut usage, t);
                }
                Ok((limits, usage.report(at)))
            })
            .await
    }
}
