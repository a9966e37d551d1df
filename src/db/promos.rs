//! Billing promo, reward, basket and redemption rows, every query scoped by org.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::DbError;
use super::schema::{billing_promos, promo_baskets, promo_rewards, reward_redemptions};
use crate::domain::ids::{ApiKeyId, CustomerId, OrgId, ProductId, PromoId, RewardId};
use crate::domain::product::ProductKind;
use crate::domain::promo::{BillingPromo, PromoType, Reward};

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = billing_promos, treat_none_as_null = true)]
struct PromoRow {
    org_id: Uuid,
    id: Uuid,
    promo_type: String,
    validity_start: DateTime<Utc>,
    validity_end: Option<DateTime<Utc>>,
    product_type: String,
    product_id: Uuid,
    product_n: i32,
    reward_product_type: String,
    reward_product_id: Uuid,
    reward_product_m: i32,
    created_at: DateTime<Utc>,
    created_by: Uuid,
    // The trigger `written_by` has the last word.
    updated_by: Option<Uuid>,
    updated_at: DateTime<Utc>,
    version: i64,
}

fn corrupt(what: &str) -> DbError {
    DbError::Other(format!("stored promo has an unreadable {what}"))
}

impl TryFrom<PromoRow> for BillingPromo {
    type Error = DbError;
    fn try_from(r: PromoRow) -> Result<Self, DbError> {
        Ok(BillingPromo {
            id: PromoId(r.id),
            promo_type: PromoType::parse(&r.promo_type).ok_or_else(|| corrupt("type"))?,
            validity_start: r.validity_start,
            validity_end: r.validity_end,
            product_type: ProductKind::parse(&r.product_type).ok_or_else(|| corrupt("product type"))?,
            product: ProductId(r.product_id),
            product_n: u32::try_from(r.product_n).map_err(|_| corrupt("N"))?,
            reward_product_type: ProductKind::parse(&r.reward_product_type)
                .ok_or_else(|| corrupt("reward type"))?,
            reward_product: ProductId(r.reward_product_id),
            reward_product_m: u32::try_from(r.reward_product_m).map_err(|_| corrupt("M"))?,
            created_at: r.created_at,
            created_by: ApiKeyId(r.created_by),
            updated_by: r.updated_by.map(ApiKeyId),
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

impl PromoRow {
    fn of(org: OrgId, p: &BillingPromo) -> Self {
        Self {
            org_id: org.uuid(),
            id: p.id.uuid(),
            promo_type: p.promo_type.as_str().to_owned(),
            validity_start: p.validity_start,
            validity_end: p.validity_end,
            product_type: p.product_type.as_str().to_owned(),
            product_id: p.product.uuid(),
            product_n: p.product_n as i32,
            reward_product_type: p.reward_product_type.as_str().to_owned(),
            reward_product_id: p.reward_product.uuid(),
            reward_product_m: p.reward_product_m as i32,
            created_at: p.created_at,
            created_by: p.created_by.uuid(),
            updated_by: p.updated_by.map(ApiKeyId::uuid),
            updated_at: p.updated_at,
            version: p.version,
        }
    }
}

pub fn insert(conn: &mut PgConnection, org: OrgId, p: &BillingPromo) -> Result<(), DbError> {
    diesel::insert_into(billing_promos::table).values(PromoRow::of(org, p)).execute(conn)?;
    Ok(())
}

/// The promo unless deleted; locked when `lock`.
pub fn get(
    conn: &mut PgConnection,
    org: OrgId,
    id: PromoId,
    lock: bool,
) -> Result<Option<BillingPromo>, DbError> {
    let q = billing_promos::table
        .find((org.uuid(), id.uuid()))
        .filter(billing_promos::deleted_at.is_null())
        .select(PromoRow::as_select());
    let row = if lock { q.for_update().first(conn).optional()? } else { q.first(conn).optional()? };
    row.map(BillingPromo::try_from).transpose()
}

/// Writes every field of `p`.
pub fn update(conn: &mut PgConnection, org: OrgId, p: &BillingPromo) -> Result<(), DbError> {
    diesel::update(billing_promos::table.find((org.uuid(), p.id.uuid())))
        .set(PromoRow::of(org, p))
        .execute(conn)?;
    Ok(())
}

/// Marks the promo deleted; its rewards keep pointing at it.
pub fn delete(conn: &mut PgConnection, org: OrgId, id: PromoId, at: DateTime<Utc>) -> Result<(), DbError> {
    diesel::update(billing_promos::table.find((org.uuid(), id.uuid())))
        .set(billing_promos::deleted_at.eq(at))
        .execute(conn)?;
    Ok(())
}

/// Filters of a promo listing; `None` does not filter.
#[derive(Clone, Debug, Default)]
pub struct PromoFilter {
    pub promo_type: Option<PromoType>,
    pub product: Option<ProductId>,
    pub active_at: Option<DateTime<Utc>>,
}

pub fn list(
    conn: &mut PgConnection,
    org: OrgId,
    f: &PromoFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<BillingPromo>, DbError> {
    let mut q = billing_promos::table
        .filter(billing_promos::org_id.eq(org.uuid()))
        .filter(billing_promos::deleted_at.is_null())
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(billing_promos::id.gt(after));
    }
    if let Some(t) = f.promo_type {
        q = q.filter(billing_promos::promo_type.eq(t.as_str()));
    }
    if let Some(p) = f.product {
        q = q.filter(billing_promos::product_id.eq(p.uuid()));
    }
    if let Some(t) = f.active_at {
        q = q
            .filter(billing_promos::validity_start.le(t))
            .filter(billing_promos::validity_end.is_null().or(billing_promos::validity_end.gt(t)));
    }
    q.order(billing_promos::id)
        .limit(limit)
        .select(PromoRow::as_select())
        .load(conn)?
        .into_iter()
        .map(BillingPromo::try_from)
        .collect()
}

/// Every promo (not deleted) on one of `products`, whatever its validity.
pub fn on_products(
    conn: &mut PgConnection,
    org: OrgId,
    products: &[ProductId],
) -> Result<Vec<BillingPromo>, DbError> {
    let ids: Vec<Uuid> = products.iter().map(|p| p.uuid()).collect();
    billing_promos::table
        .filter(billing_promos::org_id.eq(org.uuid()))
        .filter(billing_promos::deleted_at.is_null())
        .filter(billing_promos::product_id.eq_any(ids))
        .select(PromoRow::as_select())
        .load(conn)?
        .into_iter()
        .map(BillingPromo::try_from)
        .collect()
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = promo_rewards)]
struct RewardRow {
    org_id: Uuid,
    id: Uuid,
    customer_id: Uuid,
    promo_id: Uuid,
    product_id: Uuid,
    units: i64,
    redeemed_units: i64,
    basket_id: String,
    granted_at: DateTime<Utc>,
}

impl From<RewardRow> for Reward {
    fn from(r: RewardRow) -> Self {
        Reward {
            id: RewardId(r.id),
            customer: CustomerId(r.customer_id),
            promo: PromoId(r.promo_id),
            product: ProductId(r.product_id),
            units: r.units,
            redeemed_units: r.redeemed_units,
            basket_id: r.basket_id,
            granted_at: r.granted_at,
        }
    }
}

pub fn insert_rewards(conn: &mut PgConnection, org: OrgId, rewards: &[Reward]) -> Result<(), DbError> {
    let rows: Vec<RewardRow> = rewards
        .iter()
        .map(|r| RewardRow {
            org_id: org.uuid(),
            id: r.id.uuid(),
            customer_id: r.customer.uuid(),
            promo_id: r.promo.uuid(),
            product_id: r.product.uuid(),
            units: r.units,
            redeemed_units: r.redeemed_units,
            basket_id: r.basket_id.clone(),
            granted_at: r.granted_at,
        })
        .collect();
    diesel::insert_into(promo_rewards::table).values(rows).execute(conn)?;
    Ok(())
}

pub fn get_reward(
    conn: &mut PgConnection,
    org: OrgId,
    id: RewardId,
    lock: bool,
) -> Result<Option<Reward>, DbError> {
    let q = promo_rewards::table.find((org.uuid(), id.uuid())).select(RewardRow::as_select());
    let row = if lock { q.for_update().first(conn).optional()? } else { q.first(conn).optional()? };
    Ok(row.map(Reward::from))
}

pub fn set_redeemed(conn: &mut PgConnection, org: OrgId, id: RewardId, redeemed: i64) -> Result<(), DbError> {
    diesel::update(promo_rewards::table.find((org.uuid(), id.uuid())))
        .set(promo_rewards::redeemed_units.eq(redeemed))
        .execute(conn)?;
    Ok(())
}

pub fn list_rewards(
    conn: &mut PgConnection,
    org: OrgId,
    customer: CustomerId,
    available_only: bool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Reward>, DbError> {
    let mut q = promo_rewards::table
        .filter(promo_rewards::org_id.eq(org.uuid()))
        .filter(promo_rewards::customer_id.eq(customer.uuid()))
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(promo_rewards::id.gt(after));
    }
    if available_only {
        q = q.filter(promo_rewards::redeemed_units.lt(promo_rewards::units));
    }
    Ok(q.order(promo_rewards::id)
        .limit(limit)
        .select(RewardRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Reward::from)
        .collect())
}

/// A stored idempotent answer: its request fingerprint and result.
#[derive(Debug)]
pub struct StoredAnswer {
    pub fingerprint: Vec<u8>,
    pub result: serde_json::Value,
}

pub fn find_basket(
    conn: &mut PgConnection,
    org: OrgId,
    basket_id: &str,
) -> Result<Option<StoredAnswer>, DbError> {
    let row: Option<(Vec<u8>, serde_json::Value)> = promo_baskets::table
        .find((org.uuid(), basket_id))
        .select((promo_baskets::fingerprint, promo_baskets::result))
        .first(conn)
        .optional()?;
    Ok(row.map(|(fingerprint, result)| StoredAnswer { fingerprint, result }))
}

pub fn insert_basket(
    conn: &mut PgConnection,
    org: OrgId,
    basket_id: &str,
    customer: CustomerId,
    fingerprint: &[u8],
    result: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::insert_into(promo_baskets::table)
        .values((
            promo_baskets::org_id.eq(org.uuid()),
            promo_baskets::basket_id.eq(basket_id),
            promo_baskets::customer_id.eq(customer.uuid()),
            promo_baskets::fingerprint.eq(fingerprint),
            promo_baskets::result.eq(result),
            promo_baskets::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The redemption made under `request_id`: its reward and fingerprint.
pub fn find_redemption(
    conn: &mut PgConnection,
    org: OrgId,
    request_id: &str,
) -> Result<Option<(RewardId, Vec<u8>)>, DbError> {
    let row: Option<(Uuid, Vec<u8>)> = reward_redemptions::table
        .find((org.uuid(), request_id))
        .select((reward_redemptions::reward_id, reward_redemptions::fingerprint))
        .first(conn)
        .optional()?;
    Ok(row.map(|(r, f)| (RewardId(r), f)))
}

pub fn insert_redemption(
    conn: &mut PgConnection,
    org: OrgId,
    request_id: &str,
    reward: RewardId,
    units: i64,
    fingerprint: &[u8],
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::insert_into(reward_redemptions::table)
        .values((
            reward_redemptions::org_id.eq(org.uuid()),
            reward_redemptions::request_id.eq(request_id),
            reward_redemptions::reward_id.eq(reward.uuid()),
            reward_redemptions::units.eq(units),
            reward_redemptions::fingerprint.eq(fingerprint),
            reward_redemptions::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}
