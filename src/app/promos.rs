//! Billing promo use cases: CRUD, basket evaluation with rewards, redemption.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::customers::require_customer;
use super::request_ids::{Operation, RequestId, remember, replay_made};
use super::{App, AppError, Caller, clock};
use crate::db::promos::PromoFilter;
use crate::db::{self, Conn, DbError, acting_key};
use crate::domain::etag::etag_matches;
use crate::domain::fingerprint::fingerprint;
use crate::domain::ids::{CustomerId, OrgId, ProductId, PromoId, RewardId};
use crate::domain::page::{Page, PageRequest};
use crate::domain::promo::{
    BasketLine, BasketOutcome, BillingPromo, ProductKinds, PromoChanges, PromoDraft, Reward, apply_changes,
    evaluate_basket, rewards_of, validate_new,
};
use crate::domain::validation::Violations;

const RESOURCE: &str = "billing promo";
const CREATE: Operation = Operation { name: "CreateBillingPromo", resource: RESOURCE };

/// The promo, unless deleted, not locked.
fn get_live(conn: &mut Conn, org: OrgId, id: PromoId) -> Result<Option<BillingPromo>, DbError> {
    db::promos::get(conn, org, id, false)
}

/// A basket's evaluation, with the rewards it granted; stored for replays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasketEvaluation {
    pub outcome: BasketOutcome,
    pub rewards: Vec<Reward>,
    #[serde(skip)]
    pub replayed: bool,
}

/// A basket to evaluate.
#[derive(Clone, Debug)]
pub struct Basket {
    pub customer: CustomerId,
    pub lines: Vec<BasketLine>,
    /// The instant asked for; `None` means now.
    pub at: Option<DateTime<Utc>>,
    pub basket_id: Option<String>,
}

impl Basket {
    /// Equal for the same basket sent twice ("now" counts as one value, so a retry
    /// without an instant is the same request).
    fn fingerprint(&self) -> [u8; 32] {
        let at = self.at.map_or_else(|| "now".to_owned(), |t| t.timestamp_micros().to_string());
        let mut parts = vec![self.customer.to_string(), at];
        let mut lines: Vec<_> = self.lines.iter().map(|l| format!("{}x{}", l.product, l.quantity)).collect();
        lines.sort();
        parts.extend(lines);
        fingerprint(&parts, &Default::default())
    }
}

fn product_kinds(conn: &mut Conn, org: OrgId, ids: Vec<ProductId>) -> Result<ProductKinds, AppError> {
    Ok(db::products::get_many(conn, org, &ids)?.into_iter().map(|p| (p.id, p.kind)).collect())
}

fn lock_promo(conn: &mut Conn, org: OrgId, id: PromoId, etag: &str) -> Result<BillingPromo, AppError> {
    let promo = db::promos::get(conn, org, id, true)?.ok_or_else(|| AppError::not_found(RESOURCE, id))?;
    if !etag_matches(etag, promo.version) {
        return Err(AppError::EtagMismatch { resource: RESOURCE });
    }
    Ok(promo)
}

impl App {
    /// Creates a promo, filling the product's defaults; `created_by` is the calling key.
    /// With a request id, a retry gets the promo the first call made.
    pub async fn create_billing_promo(
        &self,
        caller: Caller,
        draft: PromoDraft,
        v: Violations,
        request: Option<RequestId>,
    ) -> Result<BillingPromo, AppError> {
        let org = caller.org;
        self.db()
            .transaction(org, move |conn| {
                if let Some(made) = replay_made(conn, org, CREATE, request.as_ref(), PromoId, get_live)? {
                    return Ok(made);
                }
                let ids = [draft.product.valid().copied(), draft.reward_product.valid().copied()]
                    .into_iter()
                    .flatten()
                    .collect();
                let kinds = product_kinds(conn, org, ids)?;
                let mut v = v.clone();
                let promo = validate_new(draft.clone(), &kinds, clock::now(), caller.key, &mut v);
                let promo = match promo {
                    Some(p) if v.is_empty() => p,
                    _ => return Err(AppError::Invalid(v)),
                };
                db::promos::insert(conn, org, &promo)?;
                remember(conn, org, CREATE, request.as_ref(), promo.id)?;
                Ok(promo)
            })
            .await
    }

    pub async fn get_billing_promo(&self, org: OrgId, id: PromoId) -> Result<BillingPromo, AppError> {
        self.db()
            .transaction(org, move |conn| {
                get_live(conn, org, id)?.ok_or_else(|| AppError::not_found(RESOURCE, id))
            })
            .await
    }

    pub async fn list_billing_promos(
        &self,
        org: OrgId,
        filter: PromoFilter,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<BillingPromo>, AppError> {
        self.page_by_id(
            org,
            page,
            &filters_key,
            |p: &BillingPromo| p.id.to_string(),
            move |conn, after, limit| Ok(db::promos::list(conn, org, &filter, after, limit)?),
        )
        .await
    }

    pub async fn update_billing_promo(
        &self,
        org: OrgId,
        id: PromoId,
        etag: String,
        changes: PromoChanges,
        v: Violations,
    ) -> Result<BillingPromo, AppError> {
        let acting = acting_key::current();
        self.db()
            .transaction(org, move |conn| {
                let current = lock_promo(conn, org, id, &etag)?;
                // The reward product the promo will have, changed or not: its kind is
                // checked against the reward type whenever either changes.
                let reward = changes.reward_product.unwrap_or(current.reward_product);
                let kinds = product_kinds(conn, org, vec![reward])?;
                let mut v = v.clone();
                let next = v.nested("promo", |v| {
                    apply_changes(&current, changes.clone(), &kinds, (clock::now(), acting), v)
                });
                v.finish(())?;
                db::promos::update(conn, org, &next)?;
                Ok(next)
            })
            .await
    }

    pub async fn delete_billing_promo(&self, org: OrgId, id: PromoId, etag: String) -> Result<(), AppError> {
        self.db()
            .transaction(org, move |conn| {
                lock_promo(conn, org, id, &etag)?;
                db::promos::delete(conn, org, id, clock::now())?;
                Ok(())
            })
            .await
    }

    /// Evaluates a basket; with a basket id, grants its rewards once.
    pub async fn evaluate_basket(&self, org: OrgId, basket: Basket) -> Result<BasketEvaluation, AppError> {
        let fingerprint = basket.fingerprint();
        self.db()
            .transaction(org, move |conn| {
                let record = basket.basket_id.is_some();
                let exists = if record {
                    db::customers::lock(conn, org, basket.customer)?
                } else {
                    db::customers::exists(conn, org, basket.customer)?
                };
                if !exists {
                    return Err(AppError::not_found("customer", basket.customer));
                }
                if let Some(id) = &basket.basket_id
                    && let Some(stored) = db::promos::find_basket(conn, org, id)?
                {
                    if stored.fingerprint != fingerprint {
                        return Err(AppError::already_exists("basket", "basket_id", id));
                    }
                    let mut replay: BasketEvaluation = serde_json::from_value(stored.result)
                        .map_err(|e| DbError::Other(format!("stored basket: {e}")))?;
                    replay.replayed = true;
                    return Ok(replay);
                }
                let products: Vec<ProductId> = basket.lines.iter().map(|l| l.product).collect();
                let known = product_kinds(conn, org, products.clone())?;
                let mut v = Violations::default();
                for (i, l) in basket.lines.iter().enumerate() {
                    if !known.contains_key(&l.product) {
                        v.add(format!("lines[{i}].product_id"), "no such product");
                    }
                }
                v.finish(())?;
                let promos = db::promos::on_products(conn, org, &products)?;
                let outcome = evaluate_basket(&promos, &basket.lines, basket.at.unwrap_or_else(clock::now));
                let Some(basket_id) = &basket.basket_id else {
                    return Ok(BasketEvaluation { outcome, rewards: Vec::new(), replayed: false });
                };
                let now = clock::now();
                let rewards = rewards_of(&outcome, basket.customer, basket_id, now);
                if !rewards.is_empty() {
                    db::promos::insert_rewards(conn, org, &rewards)?;
                }
                let evaluation = BasketEvaluation { outcome, rewards, replayed: false };
                let stored = serde_json::to_value(&evaluation).map_err(|e| DbError::Other(e.to_string()))?;
                db::promos::insert_basket(conn, org, basket_id, basket.customer, &fingerprint, stored, now)?;
                Ok(evaluation)
            })
            .await
            .map_err(|e| e.unique("promo_baskets_pkey", "basket", "basket_id"))
    }

    pub async fn list_rewards(
        &self,
        org: OrgId,
        customer: CustomerId,
        available_only: bool,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<Reward>, AppError> {
        self.page_by_id(
            org,
            page,
            &filters_key,
            |r: &Reward| r.id.to_string(),
            move |conn, after, limit| {
                require_customer(conn, org, customer)?;
                Ok(db::promos::list_rewards(conn, org, customer, available_only, after, limit)?)
            },
        )
        .await
    }

    /// Redeems `units` of a reward, once per request id.
    pub async fn redeem_reward(
        &self,
        org: OrgId,
        reward: RewardId,
        units: i64,
        request_id: String,
    ) -> Result<Reward, AppError> {
        let fingerprint = fingerprint(&[reward.to_string(), units.to_string()], &Default::default());
        self.db()
            .transaction(org, move |conn| {
                let current = db::promos::get_reward(conn, org, reward, false)?
                    .ok_or_else(|| AppError::not_found("reward", reward))?;
                db::customers::lock(conn, org, current.customer)?;
                if let Some((redeemed, stored)) = db::promos::find_redemption(conn, org, &request_id)? {
                    if stored != fingerprint {
                        return Err(AppError::already_exists("redemption", "request_id", redeemed));
                    }
                    return db::promos::get_reward(conn, org, reward, false)?
                        .ok_or_else(|| AppError::not_found("reward", reward));
                }
                let mut r = db::promos::get_reward(conn, org, reward, true)?
                    .ok_or_else(|| AppError::not_found("reward", reward))?;
                if units > r.available() {
                    return Err(AppError::FailedPrecondition {
                        reason: "INSUFFICIENT_REWARD_UNITS",
                        message: format!("the reward has {} units left", r.available()),
                    });
                }
                r.redeemed_units += units;
                db::promos::set_redeemed(conn, org, reward, r.redeemed_units)?;
                db::promos::insert_redemption(
                    conn,
                    org,
                    &request_id,
                    reward,
                    units,
                    &fingerprint,
                    clock::now(),
                )?;
                Ok(r)
            })
            .await
            .map_err(|e| e.unique("reward_redemptions_pkey", "redemption", "request_id"))
    }
}
