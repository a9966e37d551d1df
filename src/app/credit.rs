//! Credit promotion use cases: define, apply to customers, list what is left, remove.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::customers::require_customer;
use super::request_ids::{Operation, RequestId, made_id, remember, replay, replay_made};
use super::{App, AppError, clock};
use crate::db::{self, Conn, DbError, acting_key};
use crate::domain::credit::{
    AmountsLeft, ApplicationDraft, ApplicationRefs, AppliedPromotion, CreditPromotion, CreditPromotionDraft,
    amounts_left, validate_application, validate_promotion,
};
use crate::domain::ids::{ApiKeyId, AppliedPromotionId, CreditPromotionId, CustomerId, OrgId};
use crate::domain::page::{Page, PageRequest};
use crate::domain::validation::Violations;

/// An applied promotion with its promotion and what is left of it now.
#[derive(Clone, Debug)]
pub struct AppliedView {
    pub applied: AppliedPromotion,
    pub promotion: CreditPromotion,
    pub left: AmountsLeft,
}

/// What is left of each of `applied` at `at`.
pub(crate) fn views(
    conn: &mut Conn,
    org: OrgId,
    applied: Vec<AppliedPromotion>,
    at: DateTime<Utc>,
) -> Result<Vec<AppliedView>, AppError> {
    let ids: Vec<_> = applied.iter().map(|a| a.promotion).collect();
    let promotions = db::credit::promotions(conn, org, &ids)?;
    let applied_ids: Vec<_> = applied.iter().map(|a| a.id).collect();
    let used = db::credit::cycle_use(conn, org, &applied_ids)?;
    let none = HashMap::new();
    let mut out = Vec::with_capacity(applied.len());
    for a in applied {
        let Some(p) = promotions.get(&a.promotion).cloned() else { continue };
        let cycle_used = a
            .cycle_at(&p, at)
            .and_then(|(start, _)| used.get(&a.id).unwrap_or(&none).get(&start).copied())
            .unwrap_or_default();
        let left = amounts_left(&a, &p, cycle_used, at);
        out.push(AppliedView { applied: a, promotion: p, left });
    }
    Ok(out)
}

/// Applies a credit promotion inside the caller's transaction (used on its own and
/// when a commitment is created with one). Problems are named under `v`'s prefix.
pub fn apply_in(
    conn: &mut Conn,
    org: OrgId,
    draft: ApplicationDraft,
    acting: Option<ApiKeyId>,
    v: &mut Violations,
) -> Result<Option<AppliedView>, AppError> {
    let customer_exists = match draft.customer.valid() {
        Some(c) => db::customers::lock(conn, org, *c)?,
        None => false,
    };
    let promotion_exists = match draft.promotion.valid() {
        Some(p) => !db::credit::promotions(conn, org, &[*p])?.is_empty(),
        None => false,
    };
    let product_exists = match draft.product.valid() {
        Some(p) => db::products::get(conn, org, *p)?.is_some(),
        None => false,
    };
    let refs = ApplicationRefs { customer_exists, promotion_exists, product_exists };
    let now = clock::now();
    let Some(applied) = validate_application(draft, &refs, (now, acting), v) else { return Ok(None) };
    db::credit::insert_applied(conn, org, &applied)?;
    db::customers::note_promotion_applied(conn, org, applied.customer)?;
    Ok(views(conn, org, vec![applied], now)?.pop())
}

const CREATE: Operation = Operation { name: "CreateCreditPromotion", resource: "credit promotion" };
const APPLY: Operation = Operation { name: "ApplyPromotion", resource: "applied promotion" };
const REMOVE: Operation = Operation { name: "RemoveAppliedPromotion", resource: "applied promotion" };

/// One credit promotion.
fn promotion(conn: &mut Conn, org: OrgId, id: CreditPromotionId) -> Result<Option<CreditPromotion>, DbError> {
    Ok(db::credit::promotions(conn, org, &[id])?.remove(&id))
}

/// The application a remembered call made, with what is left of it now.
fn applied_view(conn: &mut Conn, org: OrgId, made: &str) -> Result<AppliedView, AppError> {
    let id = AppliedPromotionId(made_id(made)?);
    let not_found = || AppError::not_found(APPLY.resource, id);
    let a = db::credit::get_applied(conn, org, id)?.ok_or_else(not_found)?;
    views(conn, org, vec![a], clock::now())?.pop().ok_or_else(not_found)
}

impl App {
    /// Creates a credit promotion; with a request id, a retry gets the one the first call
    /// made.
    pub async fn create_credit_promotion(
        &self,
        org: OrgId,
        draft: CreditPromotionDraft,
        v: Violations,
        request: Option<RequestId>,
    ) -> Result<CreditPromotion, AppError> {
        let acting = acting_key::current();
        self.db()
            .transaction(org, move |conn| {
                if let Some(made) =
                    replay_made(conn, org, CREATE, request.as_ref(), CreditPromotionId, promotion)?
                {
                    return Ok(made);
                }
                let wanted: Vec<_> = draft.product_ids.iter().filter_map(|p| p.valid().copied()).collect();
                let known: Vec<_> =
                    db::products::get_many(conn, org, &wanted)?.into_iter().map(|p| p.id).collect();
                let mut v = v.clone();
                super::credit_types::check_declared(
                    conn,
                    org,
                    &[("credit_type", &draft.credit_type)],
                    &mut v,
                )?;
                let p = validate_promotion(draft.clone(), &known, (clock::now(), acting), &mut v);
                let p = match p {
                    Some(p) if v.is_empty() => p,
                    _ => return Err(AppError::Invalid(v)),
                };
                db::credit::insert_promotion(conn, org, &p)?;
                remember(conn, org, CREATE, request.as_ref(), p.id)?;
                Ok(p)
            })
            .await
    }

    pub async fn list_credit_promotions(
        &self,
        org: OrgId,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<CreditPromotion>, AppError> {
        self.page_by_id(
            org,
            page,
            &filters_key,
            |p: &CreditPromotion| p.id.to_string(),
            move |conn, after, limit| Ok(db::credit::list_promotions(conn, org, after, limit)?),
        )
        .await
    }

    /// Applies a credit promotion to a customer; with a request id, a retry gets the
    /// application the first call made.
    pub async fn apply_promotion(
        &self,
        org: OrgId,
        draft: ApplicationDraft,
        v: Violations,
        request: Option<RequestId>,
    ) -> Result<AppliedView, AppError> {
        let acting = acting_key::current();
        let grace = self.policy().late_usage_grace;
        self.db()
            .transaction(org, move |conn| {
                if let Some(made) =
                    replay(conn, org, APPLY, request.as_ref(), |c, m| applied_view(c, org, m))?
                {
                    return Ok(made);
                }
                let mut v = v.clone();
                let view = v.nested("applied", |v| apply_in(conn, org, draft.clone(), acting, v))?;
                match view {
                    Some(view) if v.is_empty() => {
                        let customer = view.applied.customer;
                        super::balance_alerts::settle_alerts(conn, org, &[customer], (clock::now(), grace))?;
                        remember(conn, org, APPLY, request.as_ref(), view.applied.id)?;
                        Ok(view)
                    }
                    _ => Err(AppError::Invalid(v)),
                }
            })
            .await
    }

    pub async fn list_applied_promotions(
        &self,
        org: OrgId,
        customer: CustomerId,
        include_removed: bool,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<AppliedView>, AppError> {
        let id_of = |v: &AppliedView| v.applied.id.to_string();
        self.page_by_id(org, page, &filters_key, id_of, move |conn, after, limit| {
            require_customer(conn, org, customer)?;
            let applied = db::credit::list_applied(conn, org, customer, include_removed, after, limit)?;
            views(conn, org, applied, clock::now())
        })
        .await
    }

    /// Removes an application: it draws no more, and keeps its history. With a request
    /// id, a retry gets the removed application instead of ALREADY_REMOVED.
    pub async fn remove_applied_promotion(
        &self,
        org: OrgId,
        id: AppliedPromotionId,
        context: Option<String>,
        request: Option<RequestId>,
    ) -> Result<AppliedView, AppError> {
        let acting = acting_key::current();
        let grace = self.policy().late_usage_grace;
        self.db()
            .transaction(org, move |conn| {
                if let Some(made) =
                    replay(conn, org, REMOVE, request.as_ref(), |c, m| applied_view(c, org, m))?
                {
                    return Ok(made);
                }
                let a = db::credit::get_applied(conn, org, id)?
                    .ok_or_else(|| AppError::not_found("applied promotion", id))?;
                db::customers::lock(conn, org, a.customer)?;
                if a.removed_at.is_some() {
                    return Err(AppError::FailedPrecondition {
                        reason: "ALREADY_REMOVED",
                        message: format!("applied promotion {id} was already removed"),
                    });
                }
                let now = clock::now();
                db::credit::remove_applied(conn, org, id, now, context.as_deref())?;
                super::balance_alerts::settle_alerts(conn, org, &[a.customer], (now, grace))?;
                let removed = AppliedPromotion {
                    removed_at: Some(now),
                    removal_context: context.clone(),
                    by: a.by.changed(acting),
                    ..a
                };
                remember(conn, org, REMOVE, request.as_ref(), id)?;
                views(conn, org, vec![removed], now)?
                    .pop()
                    .ok_or_else(|| AppError::not_found("applied promotion", id))
            })
            .await
    }
}
