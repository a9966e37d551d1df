//! Reservation use cases, one transaction each. Every one that changes what is held
//! (reserve, extend, commit) first locks the customer through the usage path's
//! `load_state`, as recording usage does: decisions on one customer never interleave,
//! so a grant always sees every other hold and every recorded event.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use super::balance_alerts::settle_alerts;
use super::customers::require_customer;
use super::usage::{
    EventInput, UsageOutcome, Writes, decide, judge, load_state, only_result, pack, persist, unpack,
};
use super::{App, AppError, UsageCaches, clock};
use crate::db::{self, Conn, DbError};
use crate::domain::ids::{CustomerId, OrgId, ReservationId};
use crate::domain::page::{Page, PageRequest};
use crate::domain::reservation::{
    Amounts, Ask, CommitStep, Grant, HoldAnswer, NotOpen, Reservation, State, check_extendable, commit_step,
    extend_fingerprint, grant, release_step, reserve_fingerprint,
};
use crate::domain::usage::UsageEvent;

/// A request for a new hold, as read from the wire (its amounts in `event`).
#[derive(Clone, Debug)]
pub struct ReserveRequest {
    pub request_id: String,
    /// The usage to hold for: no id; its timestamp is replaced by the instant reserved.
    pub event: UsageEvent,
    /// As asked (for the fingerprint) and as resolved against the policy.
    pub ttl: (Option<Duration>, Duration),
    pub allow_partial: bool,
    pub allow_overage: bool,
}

/// A request for more units and / or a later expiry.
#[derive(Clone, Debug)]
pub struct ExtendRequest {
    pub reservation: ReservationId,
    pub request_id: String,
    pub ask: Ask,
    pub ttl: Option<Duration>,
}

/// What was really used under a reservation.
#[derive(Clone, Debug)]
pub struct Settlement {
    pub reservation: ReservationId,
    pub event_id: String,
    pub used: Amounts,
    pub at: Option<DateTime<Utc>>,
}

/// A reservation with the answer to the request that created or extended it.
#[derive(Clone, Debug)]
pub struct HoldReply {
    pub reservation: Reservation,
    pub answer: HoldAnswer,
    pub replayed: bool,
}

/// What one credit type's balances can give, and what open holds take of them.
#[derive(Clone, Debug, Default)]
pub struct CreditTypeBalance {
    pub credit_type: String,
    pub balance: Decimal,
    pub reserved: Decimal,
    pub reserved_overage: Decimal,
    pub sources: Vec<crate::app::drawdowns::BalanceLine>,
}

/// A customer's balances at an instant.
#[derive(Clone, Debug)]
pub struct CustomerBalance {
    pub at: DateTime<Utc>,
    pub balances: Vec<CreditTypeBalance>,
    pub open_reservations: usize,
}

fn not_open(refused: NotOpen) -> AppError {
    AppError::FailedPrecondition { reason: "RESERVATION_NOT_OPEN", message: refused.message }
}

fn stored_answer(packed: &[u8]) -> Result<HoldAnswer, AppError> {
    unpack(packed).map_err(|e| DbError::Other(format!("stored reservation answer: {e}")).into())
}

fn reservation(conn: &mut Conn, org: OrgId, id: ReservationId, lock: bool) -> Result<Reservation, AppError> {
    db::reservations::get(conn, org, id, lock)?.ok_or_else(|| AppError::not_found("reservation", id))
}

/// Judges `event` on top of everything held and recorded; the customer is locked.
fn judge_locked(
    conn: &mut Conn,
    org: OrgId,
    event: &UsageEvent,
    (now, policy): (DateTime<Utc>, super::Policy),
    caches: &UsageCaches,
) -> Result<super::usage::Judgement, AppError> {
    let inputs = [EventInput { prefix: String::new(), event: Ok(event.clone()) }];
    let state = load_state(conn, org, &inputs, (true, None), (now, policy), caches)?;
    judge(&state, event, (now, policy))
}

fn hold_answer(ask: &Ask, judged: super::usage::Judgement) -> HoldAnswer {
    let (decision, granted) = grant(ask, &judged.evaluation, judged.coverable);
    HoldAnswer {
        grant: decision,
        granted,
        checks: judged.evaluation.checks,
        service_not_included: judged.evaluation.service_not_included,
        coverable: judged.coverable,
    }
}

impl App {
    /// Holds what limits and balances allow of a request; a repeat of its request id
    /// returns the first answer.
    pub async fn reserve(&self, org: OrgId, req: ReserveRequest) -> Result<HoldReply, AppError> {
        let (policy, caches) = (self.policy(), self.caches.clone());
        self.db()
            .transaction(org, move |conn| {
                let now = clock::now();
                let ask = Ask {
                    requested: Amounts { quantity: req.event.quantity, amount: req.event.amount },
                    allow_partial: req.allow_partial,
                    allow_overage: req.allow_overage,
                };
                let fingerprint = reserve_fingerprint(&req.event, req.ttl.0, &ask);
                if let Some(stored) = db::reservations::by_request_id(conn, org, &req.request_id)? {
                    if stored.fingerprint != fingerprint {
                        return Err(AppError::already_exists("reservation", "request_id", stored.subject.id));
                    }
                    let answer = stored_answer(&stored.answer)?;
                    return Ok(HoldReply { reservation: stored.subject.as_of(now), answer, replayed: true });
                }
                let event = UsageEvent { timestamp: now, ..req.event.clone() };
                let judged = judge_locked(conn, org, &event, (now, policy), &caches)?;
                let product = judged.product;
                let answer = hold_answer(&ask, judged);
                let denied = answer.grant == Grant::Denied;
                let r = Reservation {
                    id: ReservationId::generate(),
                    request_id: req.request_id.clone(),
                    customer: event.customer_id,
                    product,
                    credit_type: event.credit_type.clone(),
                    group_values: event.group_values.clone(),
                    contract_id: event.contract_id.clone(),
                    requested: ask.requested,
                    granted: answer.granted,
                    state: if denied { State::Denied } else { State::Open },
                    created_at: now,
                    expires_at: now + req.ttl.1,
                    settled_at: denied.then_some(now),
                    event_id: None,
                };
                db::reservations::insert(conn, org, &r, &fingerprint, &pack(&answer)?)
                    .map_err(|e| e.retry_if_taken("usage_reservations_request_id_key"))?;
                if !denied {
                    db::customers::note_hold(conn, org, r.customer, r.expires_at)?;
                    settle_alerts(conn, org, &[r.customer], (now, policy.late_usage_grace))?;
                }
                Ok(HoldReply { reservation: r, answer, replayed: false })
            })
            .await
    }

    /// Adds what limits and balances allow of more units to an open reservation and / or
    /// moves its expiry; a repeat of its request id returns the first answer.
    pub async fn extend_reservation(&self, org: OrgId, req: ExtendRequest) -> Result<HoldReply, AppError> {
        let (policy, caches) = (self.policy(), self.caches.clone());
        self.db()
            .transaction(org, move |conn| {
                let now = clock::now();
                let fingerprint = extend_fingerprint(&req.reservation.to_string(), &req.ask, req.ttl);
                if let Some(stored) = db::reservations::extension(conn, org, &req.request_id)? {
                    if stored.fingerprint != fingerprint {
                        return Err(AppError::already_exists(
                            "reservation extension",
                            "request_id",
                            stored.subject,
                        ));
                    }
                    let answer = stored_answer(&stored.answer)?;
                    let r = reservation(conn, org, stored.subject, false)?.as_of(now);
                    return Ok(HoldReply { reservation: r, answer, replayed: true });
                }
                let r = reservation(conn, org, req.reservation, false)?;
                // The additional units are judged in the windows the hold counts in.
                let event = r.usage(String::new(), req.ask.requested, None);
                let judged = judge_locked(conn, org, &event, (now, policy), &caches)?;
                let mut r = reservation(conn, org, req.reservation, true)?.as_of(now);
                check_extendable(r.state).map_err(not_open)?;
                let answer = hold_answer(&req.ask, judged);
                if answer.grant != Grant::Denied {
                    r.requested = r.requested + req.ask.requested;
                    r.granted = r.granted + answer.granted;
                    if let Some(ttl) = req.ttl {
                        r.expires_at = now + ttl;
                    }
                    db::reservations::update(conn, org, &r)?;
                    db::customers::note_hold(conn, org, r.customer, r.expires_at)?;
                    settle_alerts(conn, org, &[r.customer], (now, policy.late_usage_grace))?;
                }
                db::reservations::insert_extension(
                    conn,
                    org,
                    &req.request_id,
                    r.id,
                    (&fingerprint, &pack(&answer)?),
                    now,
                )
                .map_err(|e| e.retry_if_taken("reservation_extensions_pkey"))?;
                Ok(HoldReply { reservation: r, answer, replayed: false })
            })
            .await
    }

    /// Records what was used under a reservation as a usage event and ends its hold, in
    /// one transaction; a repeat with the same event id returns the event's first answer.
    pub async fn commit_reservation(
        &self,
        org: OrgId,
        s: Settlement,
    ) -> Result<(Reservation, UsageOutcome), AppError> {
        let (policy, caches) = (self.policy(), self.caches.clone());
        self.db()
            .transaction(org, move |conn| {
                let now = clock::now();
                let r = reservation(conn, org, s.reservation, false)?;
                let inputs = [EventInput {
                    prefix: String::new(),
                    event: Ok(r.usage(s.event_id.clone(), s.used, s.at)),
                }];
                // Its own hold ends with this transaction: the usage replaces it.
                let mut state = load_state(conn, org, &inputs, (true, Some(r.id)), (now, policy), &caches)?;
                let mut r = reservation(conn, org, s.reservation, true)?.as_of(now);
                let step = commit_step(r.state, r.event_id.as_deref(), &s.event_id).map_err(not_open)?;
                let mut writes = Writes::default();
                let mut results = decide(&mut state, &inputs, Some(&mut writes), (now, policy))?;
                if step == CommitStep::Record {
                    // Before the writes: the balance alerts they judge must not see
                    // this hold any more.
                    r.state = State::Committed;
                    r.settled_at = Some(now);
                    r.event_id = Some(s.event_id.clone());
                    db::reservations::update(conn, org, &r)?;
                }
                persist(conn, org, &inputs, &state, writes, &mut results, (now, policy.late_usage_grace))?;
                let outcome = only_result(results)?;
                Ok((r, outcome))
            })
            .await
    }

    /// Ends a reservation's hold without usage; whether it held nothing already.
    pub async fn release_reservation(
        &self,
        org: OrgId,
        id: ReservationId,
    ) -> Result<(Reservation, bool), AppError> {
        let grace = self.policy().late_usage_grace;
        self.db()
            .transaction(org, move |conn| {
                let now = clock::now();
                let stored = reservation(conn, org, id, true)?;
                let mut r = stored.clone().as_of(now);
                let ends_hold = release_step(r.state).map_err(not_open)?;
                if ends_hold {
                    r.state = State::Released;
                    r.settled_at = Some(now);
                }
                if r != stored {
                    db::reservations::update(conn, org, &r)?;
                    settle_alerts(conn, org, &[r.customer], (now, grace))?;
                }
                Ok((r, !ends_hold))
            })
            .await
    }

    /// One reservation, as of now.
    pub async fn get_reservation(&self, org: OrgId, id: ReservationId) -> Result<Reservation, AppError> {
        self.db()
            .transaction(org, move |conn| Ok(reservation(conn, org, id, false)?.as_of(clock::now())))
            .await
    }

    /// A page of a customer's reservations (only those holding now, with `open_only`).
    pub async fn list_reservations(
        &self,
        org: OrgId,
        customer: CustomerId,
        open_only: bool,
        (page, filters_key): (PageRequest, String),
    ) -> Result<Page<Reservation>, AppError> {
        self.page_by_id(
            org,
            page,
            &filters_key,
            |r: &Reservation| r.id.to_string(),
            move |conn, after, limit| {
                require_customer(conn, org, customer)?;
                let now = clock::now();
                let rows =
                    db::reservations::list(conn, org, customer, open_only.then_some(now), (after, limit))?;
                Ok(rows.into_iter().map(|r| r.as_of(now)).collect())
            },
        )
        .await
    }

    /// What the customer's commits and credit promotions can give at `at`, per credit
    /// type, with what the reservations open now hold of them.
    pub async fn customer_balance(
        &self,
        org: OrgId,
        customer: CustomerId,
        at: DateTime<Utc>,
    ) -> Result<CustomerBalance, AppError> {
        let grace = self.policy().late_usage_grace;
        self.db()
            .transaction(org, move |conn| {
                require_customer(conn, org, customer)?;
                let now = clock::now();
                let (balances, holds) =
                    super::drawdowns::Balances::load_holding(conn, org, customer, at, (now, grace), false)?;
                let mut by_type: BTreeMap<String, CreditTypeBalance> = BTreeMap::new();
                for (r, allocation) in &holds {
                    let line = by_type.entry(r.credit_type.clone()).or_default();
                    line.reserved += r.granted.amount - allocation.overage;
                    line.reserved_overage += allocation.overage;
                }
                for line in balances.lines(at) {
                    let entry = by_type.entry(line.credit_type.clone()).or_default();
                    entry.balance += line.balance;
                    entry.sources.push(line);
                }
                let balances = by_type
                    .into_iter()
                    .map(|(credit_type, b)| CreditTypeBalance { credit_type, ..b })
                    .collect();
                Ok(CustomerBalance { at, balances, open_reservations: holds.len() })
            })
            .await
    }

    /// Marks open reservations past their expiry as expired, each organization in its
    /// own transaction; how many it marked. Safe with several instances: a reservation
    /// is marked only while still open and past its expiry, so no two mark the same one,
    /// and a hold ended at its expiry whether or not this ran.
    pub async fn expire_due_reservations(&self) -> Result<usize, AppError> {
        let now = clock::now();
        let grace = self.policy().late_usage_grace;
        let due = self.db().run(move |conn| db::reservations::due(conn, now, 1000)).await?;
        let mut by_org: BTreeMap<OrgId, Vec<ReservationId>> = BTreeMap::new();
        for (org, id) in due {
            by_org.entry(org).or_default().push(id);
        }
        let mut expired = 0;
        for (org, ids) in by_org {
            expired += self
                .db()
                .transaction(org, move |conn| {
                    let mut customers = db::reservations::expire(conn, org, &ids, now)?;
                    let expired = customers.len();
                    customers.sort();
                    customers.dedup();
                    settle_alerts(conn, org, &customers, (now, grace))?;
                    Ok::<_, AppError>(expired)
                })
                .await?;
        }
        Ok(expired)
    }
}
