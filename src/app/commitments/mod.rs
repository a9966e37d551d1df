//! Commitment use cases: create (optionally with a credit promotion), read, list, patch
//! with history, compensations; judging periods is in `evaluation`, ending early in
//! `termination` (both see this module's helpers through `use super::*`).

mod evaluation;
mod termination;

pub use evaluation::Evaluation;

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
        self.page_by_id(
            org,
            page,
            &filters_key,
            |c: &Commitment| c.id.to_string(),
            move |conn, after, limit| {
                if let Some(customer) = filter.customer {
                    require_customer(conn, org, customer)?;
                }
                Ok(db::commitments::list(conn, org, &filter, after, limit)?)
            },
        )
        .await
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
        self.page_by_id(org, page, &filters_key, cursor, move |conn, after, limit| {
            load(conn, org, id, false)?;
            Ok(fetch(conn, org, id, after, limit)?)
        })
        .await
    }
}
