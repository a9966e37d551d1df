//! Commitment use cases: create (optionally with a credit promotion), read, list, patch
//! with history, evaluate, terminate, compensations.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::credit::{AppliedView, apply_in, views};
use super::customers::require_customer;
use super::request_ids::{self, RequestId, made_id, remember, replay};
use super::{App, AppError, Caller, clock};
use crate::db::commitments::{ClosedPeriod, CommitmentFilter, Compensation, Edit, MeasureQuery};
use crate::db::{self, Conn, acting_key};
use crate::domain::commitment::document::{Operation, PatchFailure, apply, blame};
use crate::domain::commitment::ending;
use crate::domain::commitment::periods::{
    Obligation, PeriodKey, PeriodResult, as_closed, judge, key, next_check, periods_to_judge,
};
use crate::domain::commitment::{
    Commitment, CommitmentStatus, KnownProducts, Placement, Scope, Terms, validate_change, validate_terms,
};
use crate::domain::credit::ApplicationDraft;
use crate::domain::etag::etag_matches;
use crate::domain::ids::{CommitId, CommitmentId, CustomerId, OrgId, ProductId};
use crate::domain::page::{Page, PageRequest};
use crate::domain::validation::{Parsed, Violations};
use crate::domain::violation::{NewViolation, ViolationDetail, ViolationKind};

const RESOURCE: &str = "commitment";
const CREATE: request_ids::Operation =
    request_ids::Operation { name: "CreateCommitment", resource: RESOURCE };
const TERMINATE: request_ids::Operation =
    request_ids::Operation { name: "TerminateCommitment", resource: RESOURCE };

/// The commitment a remembered call made or changed.
fn load_made(conn: &mut Conn, org: OrgId, made: &str) -> Result<Commitment, AppError> {
    let id = CommitmentId(made_id(made)?);
    db::commitments::get(conn, org, id, false)?.ok_or_else(|| AppError::not_found(RESOURCE, id))
}

/// A query for one page of a commitment's history: (org, commitment, after id, limit).
type HistoryQuery<T> = fn(&mut Conn, OrgId, CommitmentId, Option<Uuid>, i64) -> Result<Vec<T>, db::DbError>;

/// A commitment to create, as the wire parsed it.
#[derive(Clone, Debug)]
pub struct NewCommitment {
    pub customer: Parsed<CustomerId>,
    /// The terms, with stand-ins for parts that could not be parsed (the problems are
    /// in the violations that come with it).
    pub terms: Terms,
    pub apply_promotion: Option<ApplicationDraft>,
}

/// A commitment's evaluation as of an instant.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub commitment: Commitment,
    pub as_of: DateTime<Utc>,
    pub periods: Vec<PeriodResult>,
}

fn known_products(conn: &mut Conn, org: OrgId, t: &Terms) -> Result<KnownProducts, AppError> {
    let mut wanted: Vec<ProductId> = t.product_id.into_iter().collect();
    for (_, o) in t.scopes() {
        wanted.extend(o.minimum_usage.iter().filter_map(|u| u.product_id));
    }
    Ok(db::products::get_many(conn, org, &wanted)?.into_iter().map(|p| p.id).collect())
}

fn load(conn: &mut Conn, org: OrgId, id: CommitmentId, lock: bool) -> Result<Commitment, AppError> {
    db::commitments::get(conn, org, id, lock)?.ok_or_else(|| AppError::not_found(RESOURCE, id))
}

/// The commitment `id` if it is under `placement`; NOT_FOUND, as for an unknown id, if not.
fn load_under(
    conn: &mut Conn,
    org: OrgId,
    id: CommitmentId,
    placement: Placement,
    lock: bool,
) -> Result<Commitment, AppError> {
    let c = load(conn, org, id, lock)?;
    if placement.holds_for(&c.terms) { Ok(c) } else { Err(AppError::not_found(RESOURCE, id)) }
}

fn lock_open(
    conn: &mut Conn,
    org: OrgId,
    id: CommitmentId,
    placement: Placement,
    etag: &str,
) -> Result<Commitment, AppError> {
    let c = load_under(conn, org, id, placement, true)?;
    if !etag_matches(etag, c.version) {
        return Err(AppError::EtagMismatch { resource: RESOURCE });
    }
    if !c.status.is_open() {
        return Err(AppError::FailedPrecondition {
            reason: "COMMITMENT_CLOSED",
            message: format!("commitment {id} is {}", c.status.as_str()),
        });
    }
    Ok(c)
}

/// Recorded spend or usage for one obligation period, up to `until`.
fn measured(
    conn: &mut Conn,
    org: OrgId,
    c: &Commitment,
    o: &Obligation,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Decimal, AppError> {
    let contract = match o.scope {
        Scope::Customer => None,
        Scope::Account => c.terms.subscription_id.map(|s| s.to_string()),
    };
    if o.scope == Scope::Account && contract.is_none() {
        return Ok(Decimal::ZERO);
    }
    let q = MeasureQuery {
        customer: c.customer,
        measure: o.measure,
        contract: contract.as_deref(),
        product: o.product,
        from,
        until,
    };
    Ok(db::commitments::measure(conn, org, &q)?)
}

/// Where a terminated commitment stops being evaluated.
fn stop_of(c: &Commitment) -> Option<DateTime<Utc>> {
    (c.status == CommitmentStatus::Terminated).then_some(c.ended_at).flatten()
}

impl App {
    /// Creates a commitment, and applies a credit promotion with it when asked, in one
    /// transaction. `v` holds the request's parse problems. With a request id, a retry
    /// gets the commitment the first call made and the promotions applied with it.
    pub async fn create_commitment(
        &self,
        org: OrgId,
        new: NewCommitment,
        v: Violations,
        request: Option<RequestId>,
    ) -> Result<(Commitment, Vec<AppliedView>), AppError> {
        let acting = acting_key::current();
        self.db()
            .transaction(org, move |conn| {
                let read = |conn: &mut Conn, made: &str| {
                    let commitment = load_made(conn, org, made)?;
                    let applied = db::credit::applied_with_commitment(conn, org, commitment.id)?;
                    Ok((commitment, views(conn, org, applied, clock::now())?))
                };
                if let Some(made) = replay(conn, org, CREATE, request.as_ref(), read)? {
                    return Ok(made);
                }
                let mut v = v.clone();
                let customer = new.customer.clone().required(&mut v, "commitment.customer_id");
                if let Some(c) = customer
                    && !db::customers::lock(conn, org, c)?
                {
                    v.add("commitment.customer_id", "no such customer");
                }
                let known = known_products(conn, org, &new.terms)?;
                let mut rules = Violations::at("commitment");
                if let Some(p) = &new.terms.early_termination_penalty {
                    let named = [("early_termination_penalty.credit_type", p.credit_type.as_str())];
                    super::credit_types::check_declared(conn, org, &named, &mut rules)?;
                }
                validate_terms(&new.terms, &known, &mut rules);
                // A part reported as malformed is not reported again for a rule.
                v.extend_unreported(rules);
                let Some(customer) = customer else {
                    return Err(AppError::Invalid(v));
                };
                let terms = new.terms.clone();
                if !v.is_empty() {
                    return Err(AppError::Invalid(v));
                }
                let now = clock::now();
                let commitment = Commitment::create(customer, terms, now, acting);
                let check = next_check(&commitment.terms, &Default::default(), None);
                db::commitments::insert(conn, org, &commitment, check)?;
                let mut applied = Vec::new();
                if let Some(mut draft) = new.apply_promotion.clone() {
                    if draft.customer.is_absent() {
                        draft.customer = Parsed::Valid(customer);
                    }
                    draft.commitment_id = Some(commitment.id.uuid());
                    let view = v.nested("apply_promotion", |v| apply_in(conn, org, draft, acting, v))?;
                    if !v.is_empty() {
                        return Err(AppError::Invalid(v));
                    }
                    applied.extend(view);
                }
                remember(conn, org, CREATE, request.as_ref(), commitment.id)?;
                Ok((commitment, applied))
            })
            .await
    }

    /// The commitment `id`, if it is under `placement`.
    pub async fn get_commitment(
        &self,
        org: OrgId,
        id: CommitmentId,
        placement: Placement,
    ) -> Result<Commitment, AppError> {
        self.db().transaction(org, move |conn| load_under(conn, org, id, placement, false)).await
    }

    pub async fn list_commitments(
        &self,
        org: OrgId,
        filter: CommitmentFilter,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<Commitment>, AppError> {
        let after = page.after_uuid()?;
        let limit = page.fetch_limit();
        let rows = self
            .db()
            .transaction(org, move |conn| {
                if let Some(customer) = filter.customer {
                    require_customer(conn, org, customer)?;
                }
                Ok::<_, AppError>(db::commitments::list(conn, org, &filter, after, limit)?)
            })
            .await?;
        Ok(Page::from_rows(rows, &page, &filters_key, |c| c.id.to_string()))
    }

    /// Applies a JSON Patch, all or nothing, and keeps it in the edit history.
    pub async fn patch_commitment(
        &self,
        caller: Caller,
        id: CommitmentId,
        placement: Placement,
        etag: String,
        operations: Vec<Operation>,
    ) -> Result<Commitment, AppError> {
        let org = caller.org;
        let acting = acting_key::current();
        self.db()
            .transaction(org, move |conn| {
                let current = lock_open(conn, org, id, placement, &etag)?;
                let terms = match apply(&current, &operations) {
                    Ok(t) => t,
                    Err(PatchFailure::Invalid(v)) => return Err(AppError::Invalid(v)),
                    Err(PatchFailure::TestFailed { index, path }) => {
                        return Err(AppError::FailedPrecondition {
                            reason: "PATCH_TEST_FAILED",
                            message: format!(
                                "operations[{index}]: the test of {path} does not hold; nothing was changed"
                            ),
                        });
                    }
                };
                let now = clock::now();
                let known = known_products(conn, org, &terms)?;
                let mut found = Violations::default();
                if let Some(p) = &terms.early_termination_penalty {
                    let named = [("early_termination_penalty.credit_type", p.credit_type.as_str())];
                    super::credit_types::check_declared(conn, org, &named, &mut found)?;
                }
                validate_terms(&terms, &known, &mut found);
                validate_change(&current.terms, &terms, now, &mut found);
                blame(&operations, &found).finish(())?;
                let next = Commitment {
                    terms,
                    updated_at: now,
                    version: current.version + 1,
                    by: current.by.changed(acting),
                    ..current
                };
                let closed: std::collections::HashSet<PeriodKey> =
                    db::commitments::closed_keys(conn, org, id)?;
                db::commitments::update(conn, org, &next, next_check(&next.terms, &closed, None))?;
                db::commitments::insert_edit(
                    conn,
                    org,
                    &Edit {
                        id: Uuid::now_v7(),
                        commitment: id,
                        edited_by: caller.key,
                        edited_at: now,
                        operations: operations.clone(),
                    },
                )?;
                Ok(next)
            })
            .await
    }

    pub async fn list_commitment_edits(
        &self,
        org: OrgId,
        id: CommitmentId,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<Edit>, AppError> {
        self.list_history(org, id, page, filters_key, db::commitments::list_edits, |e| e.id.to_string()).await
    }

    /// Every period started by `as_of`, measured: closed periods as they were closed,
    /// the others from what is recorded now.
    pub async fn evaluate_commitment(
        &self,
        org: OrgId,
        id: CommitmentId,
        as_of: DateTime<Utc>,
    ) -> Result<Evaluation, AppError> {
        self.db()
            .transaction(org, move |conn| {
                let c = load(conn, org, id, false)?;
                let closed: HashMap<PeriodKey, ClosedPeriod> =
                    db::commitments::closed_periods(conn, org, id)?
                        .into_iter()
                        .map(|p| (p.key(), p))
                        .collect();
                let mut periods = Vec::new();
                for (o, p) in periods_to_judge(&c.terms, as_of, stop_of(&c)) {
                    let result = match closed.get(&key(&o, &p)) {
                        Some(done) if done.end <= as_of => as_closed(o, p, done.required, done.measured),
                        _ => {
                            let value = measured(conn, org, &c, &o, p.start, p.end.min(as_of))?;
                            judge(o, p, value, as_of)
                        }
                    };
                    periods.push(result);
                }
                Ok(Evaluation { commitment: c, as_of, periods })
            })
            .await
    }

    /// Terminates before the end: an early termination (before the minimum term) is a
    /// violation, and records the penalty when one is configured.
    /// With a request id, a retry gets the terminated commitment and its penalty.
    pub async fn terminate_commitment(
        &self,
        org: OrgId,
        id: CommitmentId,
        placement: Placement,
        etag: String,
        reason: Option<String>,
        request: Option<RequestId>,
    ) -> Result<(Commitment, Option<Compensation>), AppError> {
        let acting = acting_key::current();
        self.db()
            .transaction(org, move |conn| {
                let read = |conn: &mut Conn, made: &str| {
                    let commitment = load_made(conn, org, made)?;
                    let compensations =
                        db::commitments::list_compensations(conn, org, commitment.id, None, i64::MAX)?;
                    let penalty = compensations.into_iter().find(|c| c.kind == "EARLY_TERMINATION");
                    Ok((commitment, penalty))
                };
                if let Some(made) = replay(conn, org, TERMINATE, request.as_ref(), read)? {
                    return Ok(made);
                }
                let c = lock_open(conn, org, id, placement, &etag)?;
                let now = clock::now();
                if now >= c.terms.time_range.end_time {
                    return Err(AppError::FailedPrecondition {
                        reason: "COMMITMENT_ENDED",
                        message: format!("commitment {id} has reached its end"),
                    });
                }
                let next = Commitment {
                    status: CommitmentStatus::Terminated,
                    ended_at: Some(now),
                    updated_at: now,
                    version: c.version + 1,
                    by: c.by.changed(acting),
                    ..c.clone()
                };
                let mut penalty = None;
                let mut violations = Vec::new();
                if now < c.terms.minimum_term_end() {
                    if let Some(p) = &c.terms.early_termination_penalty {
                        let comp = Compensation {
                            id: Uuid::now_v7(),
                            commitment: id,
                            kind: "EARLY_TERMINATION",
                            period: None,
                            amount: p.amount,
                            credit_type: p.credit_type.clone(),
                            created_at: now,
                        };
                        db::commitments::insert_compensation(conn, org, &comp)?;
                        penalty = Some(comp);
                    }
                    let detail = ViolationDetail {
                        message: format!(
                            "commitment {id} terminated before {}{}",
                            c.terms.minimum_term_end().to_rfc3339(),
                            reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
                        ),
                        commitment_id: Some(id.uuid()),
                        amount: penalty.as_ref().map(|p| p.amount),
                        ..Default::default()
                    };
                    violations.push(NewViolation::new(
                        uuid::Uuid::now_v7(),
                        ViolationKind::EarlyTermination,
                        Some(c.customer),
                        now,
                        detail,
                    ));
                }
                let closed = db::commitments::closed_keys(conn, org, id)?;
                db::commitments::update(conn, org, &next, next_check(&next.terms, &closed, Some(now)))?;
                let context = format!("commitment {id} terminated");
                db::credit::remove_applied_with_commitment(conn, org, id, now, &context)?;
                db::violations::append(conn, org, &violations, now)?;
                remember(conn, org, TERMINATE, request.as_ref(), id)?;
                Ok((next, penalty))
            })
            .await
    }

    pub async fn list_compensations(
        &self,
        org: OrgId,
        id: CommitmentId,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<Compensation>, AppError> {
        self.list_history(org, id, page, filters_key, db::commitments::list_compensations, |c| {
            c.id.to_string()
        })
        .await
    }

    /// One page of a commitment's history rows (edits, compensations); not found when
    /// the commitment is not the caller's.
    async fn list_history<T: Send + 'static>(
        &self,
        org: OrgId,
        id: CommitmentId,
        page: PageRequest,
        filters_key: String,
        fetch: HistoryQuery<T>,
        cursor: fn(&T) -> String,
    ) -> Result<Page<T>, AppError> {
        let after = page.after_uuid()?;
        let limit = page.fetch_limit();
        let rows = self
            .db()
            .transaction(org, move |conn| {
                load(conn, org, id, false)?;
                Ok::<_, AppError>(fetch(conn, org, id, after, limit)?)
            })
            .await?;
        Ok(Page::from_rows(rows, &page, &filters_key, cursor))
    }

    /// Closes every commitment period (of every org) that has ended, finishes terms that
    /// have ended, and applies their ending config. Safe on several instances: each
    /// commitment is locked and re-checked, and a period is closed once.
    pub async fn evaluate_due_commitments(&self) -> Result<usize, AppError> {
        let now = clock::now();
        let work = self.db().run(move |conn| db::commitments::due(conn, now, 200)).await?;
        let mut closed = 0;
        for (org, id) in work {
            closed += self.db().transaction(org, move |conn| close_due(conn, org, id, now)).await?;
        }
        Ok(closed)
    }
}

/// Moves the access end of the customer's prepaid commits still open at the end of `c`
/// to `to` (see `ending::prepaid_extension`); returns the commits extended. Runs in the
/// transaction that ends `c`, which happens once, so each extension does too.
fn extend_prepaid_access(
    conn: &mut Conn,
    org: OrgId,
    c: &Commitment,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<CommitId>, AppError> {
    let mut extended = Vec::new();
    for commit_id in db::commits::prepaid_of_customer(conn, org, c.customer)? {
        let Some(commit) = db::commits::get_for_update(conn, org, commit_id)? else { continue };
        let segments = db::commits::segments(conn, org, commit_id, true)?;
        let Some(idx) = ending::prepaid_extension(&segments, c.terms.time_range.end_time, to) else {
            continue;
        };
        let e = ending::extend(&commit, idx, to, c, Uuid::now_v7(), now);
        db::commits::set_segment_end(conn, org, commit_id, e.segment_idx, to)?;
        db::commits::update(conn, org, &e.commit, None)?;
        db::commit_ledger::insert(conn, org, std::slice::from_ref(&e.note))?;
        extended.push(commit_id);
    }
    Ok(extended)
}

/// Closes what is due of one commitment at `now`; returns how many periods it closed.
fn close_due(conn: &mut Conn, org: OrgId, id: CommitmentId, now: DateTime<Utc>) -> Result<usize, AppError> {
    let mut c = load(conn, org, id, true)?;
    // Another instance may have done it since the commitment was found.
    if db::commitments::next_check(conn, org, id)?.is_none_or(|t| t > now) {
        return Ok(0);
    }
    let stop = stop_of(&c);
    let mut done = db::commitments::closed_keys(conn, org, id)?;
    let mut violations = Vec::new();
    let mut count = 0;
    for (o, p) in periods_to_judge(&c.terms, now, stop) {
        if p.end > now || done.contains(&key(&o, &p)) {
            continue;
        }
        let value = measured(conn, org, &c, &o, p.start, p.end)?;
        let r = judge(o, p, value, now);
        let shortfall = r.shortfall();
        db::commitments::insert_period(
            conn,
            org,
            id,
            &ClosedPeriod {
                scope: o.scope,
                measure: o.measure,
                index: o.index as i32,
                start: p.start,
                end: p.end,
                required: r.required,
                measured: r.measured,
                shortfall,
            },
            now,
        )?;
        done.insert(key(&o, &p));
        count += 1;
        if shortfall.is_zero() {
            continue;
        }
        if c.status == CommitmentStatus::Active {
            c.status = CommitmentStatus::Violated;
        }
        let policy = c.terms.violation_policy;
        let credit_type = c
            .terms
            .early_termination_penalty
            .as_ref()
            .map_or_else(|| "USD".to_owned(), |p| p.credit_type.clone());
        if policy.notifies(o.scope) {
            violations.push(NewViolation::new(
                uuid::Uuid::now_v7(),
                ViolationKind::CommitmentShortfall,
                Some(c.customer),
                p.end,
                ViolationDetail {
                    message: format!(
                        "commitment {id}: {} {} from {} to {} was {} of {} required",
                        o.scope.as_str(),
                        o.measure.as_str(),
                        p.start.to_rfc3339(),
                        p.end.to_rfc3339(),
                        r.measured.normalize(),
                        r.required.normalize()
                    ),
                    commitment_id: Some(id.uuid()),
                    scope: Some(o.scope.as_str().to_owned()),
                    measure: Some(o.measure.as_str().to_owned()),
                    window_start: Some(p.start),
                    used: Some(r.measured),
                    limit: Some(r.required),
                    amount: Some(shortfall),
                    ..Default::default()
                },
            ));
        }
        if policy.compensates(o.scope) {
            db::commitments::insert_compensation(
                conn,
                org,
                &Compensation {
                    id: Uuid::now_v7(),
                    commitment: id,
                    kind: "SHORTFALL",
                    period: Some((o.scope, o.measure, p.start, p.end)),
                    amount: shortfall,
                    credit_type,
                    created_at: now,
                },
            )?;
        }
    }
    let ended = stop.is_none() && now >= c.terms.time_range.end_time;
    if ended && c.status.is_open() {
        c.ended_at = Some(c.terms.time_range.end_time);
        if c.status == CommitmentStatus::Active {
            c.status = CommitmentStatus::Fulfilled;
        }
        if c.terms.ending_config.restart_commitment {
            let successor = c.restarted(now);
            db::commitments::insert(
                conn,
                org,
                &successor,
                next_check(&successor.terms, &Default::default(), None),
            )?;
            c.successor = Some(successor.id);
            if c.status == CommitmentStatus::Fulfilled {
                c.status = CommitmentStatus::Ended;
            }
            // The benefit given in exchange goes on with the restarted commitment.
            db::credit::move_applied_to_commitment(conn, org, id, successor.id)?;
        } else {
            // What was given in exchange for the commitment ends with it.
            let context = format!("commitment {id} ended");
            db::credit::remove_applied_with_commitment(conn, org, id, c.terms.time_range.end_time, &context)?;
        }
        let extended = match c.terms.ending_config.extend_prepaid_card_end_time {
            Some(to) => extend_prepaid_access(conn, org, &c, to, now)?,
            None => Vec::new(),
        };
        violations.push(ending::ended_notice(&c, &extended, Uuid::now_v7()));
    }
    let check = if ended { None } else { next_check(&c.terms, &done, stop) };
    c.updated_at = now;
    c.version += 1;
    db::commitments::update(conn, org, &c, check)?;
    db::violations::append(conn, org, &violations, now)?;
    Ok(count)
}
