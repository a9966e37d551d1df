//! Recording usage: one transaction decides a whole batch of events in order. It locks the
//! batch's customers (in id order), loads once everything the decisions need (stored
//! events, products, limits, window totals, commit balances), lets the pure domain decide
//! each event against the state left by the earlier ones, then writes totals, balances,
//! ledger entries, violations and the events with their answers. A single RecordUsage is
//! a batch of one; CheckUsage runs the same decisions without locks or writes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::credit_types::undeclared;
use super::drawdowns::{
    Balances, DrawRecord, DrawdownOutcome, check_horizon, drawdown_entries, write_entries,
};
use super::{App, AppError, Policy, clock};
use crate::db::credit::PromotionDrawdown;
use crate::db::usage::{AlertRow, EventToStore, StoredAnswer, StoredEvent, TotalRow, WindowKey};
use crate::db::{self, Conn, DbError};
use crate::domain::allowance::AllowanceLimits;
use crate::domain::commit::balance::LedgerEntry;
use crate::domain::credit_type::is_custom;
use crate::domain::customer::Customer;
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

/// The answer for one event; stored with the event so a replay returns it.
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

/// Loads what deciding `inputs` at `now` needs; with `record`, locks the customers and
/// their balances. Every reservation open at `now` holds its amounts, except `settling`
/// (the one whose usage is being recorded: its hold ends in the same transaction).
pub(super) fn load_state(
    conn: &mut Conn,
    org: OrgId,
    inputs: &[EventInput],
    (record, settling): (bool, Option<ReservationId>),
    (now, policy): (DateTime<Utc>, Policy),
) -> Result<BatchState, AppError> {
    let mut customer_ids: Vec<CustomerId> = valid_events(inputs).map(|e| e.customer_id).collect();
    customer_ids.sort();
    customer_ids.dedup();
    // Locks first, in id order: the order every balance-changing transaction uses.
    // The locked rows say which customers may have open holds or have balance alerts:
    // only those cost the statements that read them.
    let locked = db::customers::get_many_with_extras(conn, org, &customer_ids, record)?;
    let holding: Vec<CustomerId> =
        locked.iter().filter(|(_, x)| x.holds_until.is_some_and(|t| t > now)).map(|(c, _)| c.id).collect();
    let alerting: Vec<CustomerId> =
        locked.iter().filter(|(_, x)| x.balance_alerts > 0).map(|(c, _)| c.id).collect();
    let customers: Vec<Customer> = locked.into_iter().map(|(c, _)| c).collect();
    // A check of an event already recorded answers its replay, so stored events are
    // looked up either way (a check may carry no id: nothing to find then).
    let ids: Vec<String> =
        valid_events(inputs).map(|e| e.event_id.clone()).filter(|id| !id.is_empty()).collect();
    let stored =
        db::usage::find_events(conn, org, &ids)?.into_iter().map(|s| (s.event_id.clone(), s)).collect();

    let mut ids: HashSet<ProductId> = HashSet::new();
    let mut codes: HashSet<String> = HashSet::new();
    for e in valid_events(inputs) {
        match &e.product {
            ProductRef::Id(id) => ids.insert(*id),
            ProductRef::Code(code) => codes.insert(code.clone()),
        };
    }
    let mut products: HashMap<ProductId, Product> = HashMap::new();
    products.extend(
        db::products::get_many(conn, org, &ids.into_iter().collect::<Vec<_>>())?
            .into_iter()
            .map(|p| (p.id, p)),
    );
    products.extend(
        db::products::get_many_by_code(conn, org, &codes.into_iter().collect::<Vec<_>>())?
            .into_iter()
            .map(|p| (p.id, p)),
    );
    let product_codes = products.values().map(|p| (p.code.clone(), p.id)).collect();

    let holds: Vec<Reservation> = if holding.is_empty() {
        Vec::new()
    } else {
        db::reservations::open_holds(conn, org, &holding, now)?
            .into_iter()
            .filter(|r| Some(r.id) != settling)
            .collect()
    };
    let limits: HashMap<CustomerId, AllowanceLimits> = db::allowances::get_many(conn, org, &customer_ids)?;
    let tz: HashMap<CustomerId, chrono_tz::Tz> = customers.iter().map(|c| (c.id, c.time_zone)).collect();
    let mut keys: HashSet<WindowKey> = HashSet::new();
    for e in valid_events(inputs).filter(|e| limits.contains_key(&e.customer_id)) {
        if let Some(tz) = tz.get(&e.customer_id) {
            for kind in [WindowKind::Day, WindowKind::Month] {
                keys.insert(WindowKey {
                    customer: e.customer_id,
                    kind,
                    first_day: window_of(kind, *tz, e.timestamp).first_day,
                });
            }
        }
    }
    let keys: Vec<WindowKey> = keys.into_iter().collect();
    let totals = db::usage::load_totals(conn, org, &keys)?;
    let alerts = db::usage::load_alerts(conn, org, &keys)?;
    let mut missing: Vec<ProductId> = totals
        .iter()
        .map(|t| t.product)
        .chain(holds.iter().map(|r| r.product))
        .filter(|p| !products.contains_key(p))
        .collect();
    missing.sort();
    missing.dedup();
    products.extend(db::products::get_many(conn, org, &missing)?.into_iter().map(|p| (p.id, p)));

    let mut usage: HashMap<CustomerId, CustomerUsage> = customers
        .iter()
        .map(|c| {
            let state = CustomerUsage {
                time_zone: c.time_zone,
                limits: limits.get(&c.id).map(|l| l.settings.clone()),
                totals: HashMap::new(),
                products: HashMap::new(),
                alerted: HashMap::new(),
            };
            (c.id, state)
        })
        .collect();
    for t in totals {
        if let Some(u) = usage.get_mut(&t.customer) {
            count_total(u, &t);
            if let Some(p) = products.get(&t.product) {
                u.products.insert(p.id, p.clone());
            }
        }
    }
    for a in alerts {
        if let Some(u) = usage.get_mut(&a.customer) {
            u.alerted.insert(a.key, a.percent);
        }
    }

    let times: Vec<DateTime<Utc>> =
        valid_events(inputs).map(|e| e.timestamp).chain(holds.iter().map(|r| r.created_at)).collect();
    let mut balances = match (times.iter().min(), times.iter().max()) {
        (Some(from), Some(until)) => {
            let present: Vec<CustomerId> = customers.iter().map(|c| c.id).collect();
            Balances::load_many(conn, org, &present, (*from, *until), (now, policy.late_usage_grace), record)?
        }
        _ => HashMap::new(),
    };
    for r in &holds {
        let (Some(u), Some(product)) = (usage.get_mut(&r.customer), products.get(&r.product)) else {
            continue;
        };
        let held = r.usage(String::new(), r.granted, None);
        u.hold(&facts_of(&held, product));
        balances.entry(r.customer).or_default().hold(&held.rated(r.product), product);
    }
    let mut custom: Vec<&str> =
        valid_events(inputs).map(|e| e.credit_type.as_str()).filter(|c| is_custom(c)).collect();
    custom.sort_unstable();
    custom.dedup();
    let declared = db::credit_types::declared(conn, org, &custom)?.into_iter().collect();
    Ok(BatchState { usage, balances, products, product_codes, stored, declared, alerting })
}

/// Adds a stored total to what the customer's limits judge: every quantity, and only
/// amounts in the limits' currency (amounts of other credit types are never summed in).
fn count_total(u: &mut CustomerUsage, t: &TotalRow) {
    let in_currency = u.limits.as_ref().is_some_and(|l| l.currency == t.credit_type);
    let total =
        u.totals.entry(TotalsKey { product: t.product, kind: t.kind, first_day: t.first_day }).or_default();
    total.quantity += t.quantity;
    if in_currency {
        total.amount += t.amount;
    }
}

fn replay(stored_fingerprint: &[u8], outcome: &UsageOutcome, fingerprint: &[u8]) -> EventResult {
    if stored_fingerprint != fingerprint {
        // The client-chosen event id is the event's name: it identifies what exists.
        return Err(AppError::already_exists("usage event", "event_id", &outcome.event_id));
    }
    Ok(UsageOutcome { replayed: true, ..outcome.clone() })
}

/// Only decided events are remembered as seen, so a seen event always has an outcome.
fn unreachable_replay() -> EventResult {
    Err(DbError::Other("replay of an event that has no outcome".into()).into())
}

/// First byte of a packed answer: how the rest is encoded. 1 = MessagePack with field
/// names (so fields can be added, with serde defaults, and older answers still read, as
/// with the JSON it replaced), LZ4-compressed (the field names repeat in every limit
/// check: about 1.3 KB becomes about a third of that).
const PACKED_V1: u8 = 1;

/// Packs an answer for storage with the event.
pub fn pack_outcome(outcome: &UsageOutcome) -> Result<Vec<u8>, AppError> {
    pack(outcome)
}

/// Reads an answer written by [`pack_outcome`].
pub fn unpack_outcome(packed: &[u8]) -> Result<UsageOutcome, String> {
    unpack(packed)
}

/// Packs a first answer (of an event, a reservation) for its replays.
pub(super) fn pack<T: Serialize>(answer: &T) -> Result<Vec<u8>, AppError> {
    let named =
        rmp_serde::to_vec_named(answer).map_err(|e| DbError::Other(format!("packing an answer: {e}")))?;
    let mut packed = vec![PACKED_V1];
    packed.extend(lz4_flex::compress_prepend_size(&named));
    Ok(packed)
}

/// Reads an answer written by [`pack`].
pub(super) fn unpack<T: serde::de::DeserializeOwned>(packed: &[u8]) -> Result<T, String> {
    match packed.split_first() {
        Some((&PACKED_V1, compressed)) => {
            let named = lz4_flex::decompress_size_prepended(compressed).map_err(|e| e.to_string())?;
            rmp_serde::from_slice(&named).map_err(|e| e.to_string())
        }
        Some((format, _)) => Err(format!("unknown packed answer format {format}")),
        None => Err("empty packed answer".to_owned()),
    }
}

/// The answer stored with an event, packed or (recorded before packing) JSON.
pub(crate) fn stored_outcome(answer: &StoredAnswer) -> Result<UsageOutcome, AppError> {
    let decoded = match answer {
        StoredAnswer::Packed(bytes) => unpack_outcome(bytes),
        StoredAnswer::Json(value) => UsageOutcome::deserialize(value).map_err(|e| e.to_string()),
    };
    decoded.map_err(|e| DbError::Other(format!("stored usage outcome: {e}")).into())
}

/// The result of a batch of one event.
pub(crate) fn only_result(mut results: Vec<EventResult>) -> EventResult {
    results.pop().unwrap_or_else(|| Err(DbError::Other("no result for the event".into()).into()))
}

/// What the limits judge of `e`, once its product is known.
fn facts_of<'a>(e: &'a UsageEvent, product: &'a Product) -> EventFacts<'a> {
    EventFacts {
        product,
        quantity: e.quantity,
        amount: e.amount,
        credit_type: &e.credit_type,
        at: e.timestamp,
    }
}

/// The product of `e` when the limits can judge it: its customer exists, it is within
/// the backdating horizon, its product exists and its credit type can be judged.
fn judgeable(
    state: &BatchState,
    prefix: &str,
    e: &UsageEvent,
    (now, policy): (DateTime<Utc>, Policy),
) -> Result<ProductId, AppError> {
    let Some(usage) = state.usage.get(&e.customer_id) else {
        return Err(AppError::not_found("customer", e.customer_id));
    };
    check_horizon(policy, usage.time_zone, e.timestamp, now, (prefix, "timestamp"))?;
    let product = match &e.product {
        ProductRef::Id(id) => state.products.get(id),
        ProductRef::Code(code) => state.product_codes.get(code).and_then(|id| state.products.get(id)),
    };
    let Some(product) = product else {
        let field = match e.product {
            ProductRef::Id(_) => "product_id",
            ProductRef::Code(_) => "product_code",
        };
        let mut v = Violations::at(prefix);
        v.add(field, "no such product");
        return Err(AppError::Invalid(v));
    };
    let facts = facts_of(e, product);
    let mut v = Violations::at(prefix);
    if is_custom(&e.credit_type) && !state.declared.contains(&e.credit_type) {
        v.add("credit_type", undeclared(&e.credit_type));
    }
    if let Some(currency) = usage.foreign_currency(&facts) {
        v.add(
            "credit_type",
            format!("the customer's limits on rated amount are in {currency}; usage in {} cannot be judged against them", e.credit_type),
        );
    }
    v.finish(product.id).map_err(AppError::Invalid)
}

/// How limits and balances judge `e`, which would be recorded on top of everything
/// `state` holds (recorded usage and open holds), changing nothing.
pub(super) struct Judgement {
    pub product: ProductId,
    pub evaluation: crate::domain::limits::Evaluation,
    /// How much of the event's amount the balances could give.
    pub coverable: Decimal,
}

pub(super) fn judge(
    state: &BatchState,
    e: &UsageEvent,
    (now, policy): (DateTime<Utc>, Policy),
) -> Result<Judgement, AppError> {
    let product_id = judgeable(state, "", e, (now, policy))?;
    let product = &state.products[&product_id];
    let usage =
        state.usage.get(&e.customer_id).ok_or_else(|| AppError::not_found("customer", e.customer_id))?;
    let facts = facts_of(e, product);
    let coverable = state
        .balances
        .get(&e.customer_id)
        .map_or(Decimal::ZERO, |b| b.coverable(&e.rated(product_id), product));
    Ok(Judgement { product: product_id, evaluation: usage.evaluate(&facts), coverable })
}

/// Decides every event of a batch in order; with `writes`, records what was decided.
pub(super) fn decide(
    state: &mut BatchState,
    inputs: &[EventInput],
    mut writes: Option<&mut Writes>,
    (now, policy): (DateTime<Utc>, Policy),
) -> Result<Vec<EventResult>, AppError> {
    let mut results: Vec<EventResult> = Vec::with_capacity(inputs.len());
    // Events of this batch by id: their fingerprint and index in `results`.
    let mut seen: HashMap<String, ([u8; 32], usize)> = HashMap::new();
    for (index, input) in inputs.iter().enumerate() {
        let e = match &input.event {
            Ok(e) => e,
            Err(e) => {
                results.push(Err(e.clone().into()));
                continue;
            }
        };
        let fingerprint = e.fingerprint();
        if let Some((earlier, index)) = seen.get(&e.event_id) {
            let result = match &results[*index] {
                Ok(outcome) => replay(earlier, outcome, &fingerprint),
                Err(_) => unreachable_replay(),
            };
            results.push(result);
            continue;
        }
        if let Some(stored) = state.stored.get(&e.event_id) {
            results.push(
                stored_outcome(&stored.answer).and_then(|o| replay(&stored.fingerprint, &o, &fingerprint)),
            );
            continue;
        }
        let product = match judgeable(state, &input.prefix, e, (now, policy)) {
            Ok(id) => &state.products[&id],
            Err(refused) => {
                results.push(Err(refused));
                continue;
            }
        };
        let Some(usage) = state.usage.get_mut(&e.customer_id) else {
            results.push(Err(AppError::not_found("customer", e.customer_id)));
            continue;
        };
        let facts = facts_of(e, product);
        let evaluation = usage.evaluate(&facts);
        let mut violations = limit_violations(e, product.id, &evaluation, &mut uuid::Uuid::now_v7);
        let event_uuid = Uuid::now_v7();
        let (draws, overage) = if evaluation.decision == Decision::Blocked {
            (Vec::new(), Decimal::ZERO)
        } else {
            usage.record(&facts, &evaluation);
            let rated = e.rated(product.id);
            let allocation = state.balances.entry(e.customer_id).or_default().allocate(&rated, product);
            violations.extend(exhaustion_violations(
                &allocation,
                e.customer_id,
                e.timestamp,
                Some(&e.event_id),
                &mut uuid::Uuid::now_v7,
            ));
            if let Some(w) = writes.as_deref_mut() {
                for kind in [WindowKind::Day, WindowKind::Month] {
                    let day = window_of(kind, usage.time_zone, e.timestamp).first_day;
                    let window = TotalsKey { product: product.id, kind, first_day: day };
                    let key = (e.customer_id, window, e.credit_type.clone());
                    let t = w.totals.entry(key).or_default();
                    t.amount += e.amount;
                    t.quantity += e.quantity;
                }
                for c in &evaluation.crossings {
                    let level = w.alerts.entry((e.customer_id, c.alert_key())).or_default();
                    *level = (*level).max(c.percent);
                }
                let (entries, promotions) = drawdown_entries(&allocation, &rated, event_uuid, now);
                w.ledger.extend(entries);
                w.promotion_draws.extend(promotions);
            }
            (DrawdownOutcome::of(event_uuid, &allocation).draws, allocation.overage)
        };
        let outcome = UsageOutcome {
            event_id: e.event_id.clone(),
            decision: evaluation.decision,
            checks: evaluation.checks,
            service_not_included: evaluation.service_not_included,
            draws,
            overage,
            violations: violations
                .iter()
                .map(|v| ReportedViolation { seq: None, recorded_at: None, violation: v.clone() })
                .collect(),
            replayed: false,
        };
        if let Some(w) = writes.as_deref_mut() {
            let start = w.violations.len();
            w.violations.extend(violations);
            w.events.push(NewEvent {
                input: index,
                id: event_uuid,
                product: product.id,
                decision: outcome.decision,
                fingerprint,
                violations: start..w.violations.len(),
            });
            seen.insert(e.event_id.clone(), (fingerprint, results.len()));
        }
        results.push(Ok(outcome));
    }
    Ok(results)
}

/// Writes what a batch decided, and the balance alerts it moved; fills the violations'
/// feed positions into the answers.
pub(super) fn persist(
    conn: &mut Conn,
    org: OrgId,
    inputs: &[EventInput],
    state: &BatchState,
    mut writes: Writes,
    results: &mut [EventResult],
    (now, grace): (DateTime<Utc>, crate::domain::commit::timeline::LateUsageGrace),
) -> Result<(), AppError> {
    let totals: Vec<TotalRow> = writes
        .totals
        .iter()
        .map(|((customer, window, credit_type), t)| TotalRow {
            customer: *customer,
            product: window.product,
            kind: window.kind,
            first_day: window.first_day,
            credit_type: credit_type.clone(),
            amount: t.amount,
            quantity: t.quantity,
        })
        .collect();
    db::usage::add_totals(conn, org, &totals)?;
    let alerts: Vec<AlertRow> = writes
        .alerts
        .iter()
        .map(|((customer, key), percent)| AlertRow {
            customer: *customer,
            key: key.clone(),
            percent: *percent,
        })
        .collect();
    db::usage::raise_alerts(conn, org, &alerts, now)?;
    Balances::persist_all(conn, org, state.balances.values())?;
    write_entries(conn, org, &writes.ledger, &writes.promotion_draws)?;
    // After the events' own violations, so their positions in `written` stay put.
    writes.violations.extend(super::balance_alerts::crossed_alerts(
        conn,
        org,
        &state.alerting,
        (now, grace),
    )?);
    // Last: the feed's sequence lock is held until commit.
    let written = db::violations::append(conn, org, &writes.violations, now)?;

    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (i, r) in results.iter().enumerate() {
        if let Ok(o) = r
            && !o.replayed
        {
            by_id.insert(o.event_id.clone(), i);
        }
    }
    let mut rows = Vec::with_capacity(writes.events.len());
    for new in writes.events.drain(..) {
        let Ok(event) = &inputs[new.input].event else { continue };
        let Some(Ok(outcome)) = by_id.get(&event.event_id).map(|i| &mut results[*i]) else { continue };
        for (reported, stored) in outcome.violations.iter_mut().zip(&written[new.violations]) {
            reported.seq = Some(stored.seq);
            reported.recorded_at = Some(stored.recorded_at);
        }
        rows.push(EventToStore {
            event,
            id: new.id,
            product: new.product,
            decision: new.decision,
            fingerprint: new.fingerprint,
            outcome: pack_outcome(outcome)?,
        });
    }
    // A repeat of an event of this same batch answers as its original now does.
    for i in 0..results.len() {
        let original = match &results[i] {
            Ok(o) if o.replayed => by_id.get(&o.event_id).copied(),
            _ => None,
        };
        if let Some(j) = original
            && let Ok(first) = &results[j]
        {
            results[i] = Ok(UsageOutcome { replayed: true, ..first.clone() });
        }
    }
    // Another transaction recorded the same event id (for another customer) first: run
    // the batch again, it will find that event and answer accordingly.
    db::usage::insert_events(conn, org, &rows, now).map_err(|e| e.retry_if_taken("usage_event_keys_pkey"))?;
    Ok(())
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
        let policy = self.policy();
        if valid_events(&inputs).next().is_none() {
            // Nothing valid to decide: each answer is its own error, no transaction needed.
            let results = decide(&mut BatchState::default(), &inputs, None, (clock::now(), policy))?;
            count_outcomes(&results);
            return Ok(results);
        }
        self.db()
            .transaction(org, move |conn| {
                let now = clock::now();
                let mut state = load_state(conn, org, &inputs, (true, None), (now, policy))?;
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
        let policy = self.policy();
        self.db()
            .transaction(org, move |conn| {
                let inputs = [input.clone()];
                let now = clock::now();
                let mut state = load_state(conn, org, &inputs, (false, None), (now, policy))?;
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
                let totals = db::usage::load_totals(conn, org, &keys)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_answer_of_an_unknown_format_or_empty_is_refused_not_misread() {
        assert_eq!(unpack_outcome(&[]).unwrap_err(), "empty packed answer");
        assert_eq!(unpack_outcome(&[2, 0, 0]).unwrap_err(), "unknown packed answer format 2");
        assert!(unpack_outcome(&[PACKED_V1, 9, 9]).is_err(), "damaged data is an error");
    }
}
