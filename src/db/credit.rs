//! Credit promotion, application, cycle and drawdown rows, every query scoped by org.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::DbError;
use super::prepared::{BindNext, prepared};
use super::schema::{
    applied_promotion_cycles, applied_promotion_drawdowns, applied_promotions, credit_promotions,
};
use crate::domain::authorship::Authorship;
use crate::domain::commit::Applicability;
use crate::domain::credit::{AppliedPromotion, CreditPromotion, Cycle};
use crate::domain::ids::{
    ApiKeyId, AppliedPromotionId, CommitmentId, CreditPromotionId, CustomerId, OrgId, ProductId,
};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = credit_promotions)]
struct PromotionRow {
    org_id: Uuid,
    id: Uuid,
    name: String,
    credit_type: String,
    amount_per_cycle: Option<Decimal>,
    total_amount: Option<Decimal>,
    cycle: String,
    applicable_product_ids: Vec<Uuid>,
    applicable_product_tags: Vec<String>,
    created_at: DateTime<Utc>,
    created_by: Option<Uuid>,
    updated_by: Option<Uuid>,
}

impl TryFrom<PromotionRow> for CreditPromotion {
    type Error = DbError;
    fn try_from(r: PromotionRow) -> Result<Self, DbError> {
        Ok(CreditPromotion {
            id: CreditPromotionId(r.id),
            name: r.name,
            credit_type: r.credit_type,
            amount_per_cycle: r.amount_per_cycle,
            total_amount: r.total_amount,
            cycle: Cycle::parse(&r.cycle)
                .ok_or_else(|| DbError::Other(format!("stored cycle {:?}", r.cycle)))?,
            applicability: Applicability {
                product_ids: r.applicable_product_ids.into_iter().map(ProductId).collect(),
                product_tags: r.applicable_product_tags,
                ..Default::default()
            },
            created_at: r.created_at,
            by: Authorship::of(r.created_by, r.updated_by),
        })
    }
}

pub fn insert_promotion(conn: &mut PgConnection, org: OrgId, p: &CreditPromotion) -> Result<(), DbError> {
    let row = PromotionRow {
        org_id: org.uuid(),
        id: p.id.uuid(),
        name: p.name.clone(),
        credit_type: p.credit_type.clone(),
        amount_per_cycle: p.amount_per_cycle,
        total_amount: p.total_amount,
        cycle: p.cycle.as_str().to_owned(),
        applicable_product_ids: p.applicability.product_ids.iter().map(|p| p.uuid()).collect(),
        applicable_product_tags: p.applicability.product_tags.clone(),
        created_at: p.created_at,
        // The trigger `written_by` has the last word on both.
        created_by: p.by.created_by.map(ApiKeyId::uuid),
        updated_by: p.by.updated_by.map(ApiKeyId::uuid),
    };
    diesel::insert_into(credit_promotions::table).values(row).execute(conn)?;
    Ok(())
}

/// The promotions among `ids`.
pub fn promotions(
    conn: &mut PgConnection,
    org: OrgId,
    ids: &[CreditPromotionId],
) -> Result<HashMap<CreditPromotionId, CreditPromotion>, DbError> {
    let ids: Vec<Uuid> = ids.iter().map(|i| i.uuid()).collect();
    credit_promotions::table
        .filter(credit_promotions::org_id.eq(org.uuid()))
        .filter(credit_promotions::id.eq_any(ids))
        .select(PromotionRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|r| CreditPromotion::try_from(r).map(|p| (p.id, p)))
        .collect()
}

pub fn list_promotions(
    conn: &mut PgConnection,
    org: OrgId,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<CreditPromotion>, DbError> {
    let mut q = credit_promotions::table.filter(credit_promotions::org_id.eq(org.uuid())).into_boxed();
    if let Some(after) = after {
        q = q.filter(credit_promotions::id.gt(after));
    }
    q.order(credit_promotions::id)
        .limit(limit)
        .select(PromotionRow::as_select())
        .load(conn)?
        .into_iter()
        .map(CreditPromotion::try_from)
        .collect()
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = applied_promotions)]
struct AppliedRow {
    org_id: Uuid,
    id: Uuid,
    customer_id: Uuid,
    promotion_id: Uuid,
    product_id: Option<Uuid>,
    priority: Decimal,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    commitment_id: Option<Uuid>,
    relation_id: Option<String>,
    added_at: DateTime<Utc>,
    removed_at: Option<DateTime<Utc>>,
    removal_context: Option<String>,
    total_used: Decimal,
    created_by: Option<Uuid>,
    updated_by: Option<Uuid>,
}

impl From<AppliedRow> for AppliedPromotion {
    fn from(r: AppliedRow) -> Self {
        AppliedPromotion {
            id: AppliedPromotionId(r.id),
            customer: CustomerId(r.customer_id),
            promotion: CreditPromotionId(r.promotion_id),
            product: r.product_id.map(ProductId),
            priority: r.priority,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            commitment_id: r.commitment_id,
            relation_id: r.relation_id,
            added_at: r.added_at,
            removed_at: r.removed_at,
            removal_context: r.removal_context,
            total_used: r.total_used,
            by: Authorship::of(r.created_by, r.updated_by),
        }
    }
}

pub fn insert_applied(conn: &mut PgConnection, org: OrgId, a: &AppliedPromotion) -> Result<(), DbError> {
    let row = AppliedRow {
        org_id: org.uuid(),
        id: a.id.uuid(),
        customer_id: a.customer.uuid(),
        promotion_id: a.promotion.uuid(),
        product_id: a.product.map(|p| p.uuid()),
        priority: a.priority,
        starts_at: a.starts_at,
        ends_at: a.ends_at,
        commitment_id: a.commitment_id,
        relation_id: a.relation_id.clone(),
        added_at: a.added_at,
        removed_at: a.removed_at,
        removal_context: a.removal_context.clone(),
        total_used: a.total_used,
        // The trigger `written_by` has the last word on both.
        created_by: a.by.created_by.map(ApiKeyId::uuid),
        updated_by: a.by.updated_by.map(ApiKeyId::uuid),
    };
    diesel::insert_into(applied_promotions::table).values(row).execute(conn)?;
    Ok(())
}

pub fn get_applied(
    conn: &mut PgConnection,
    org: OrgId,
    id: AppliedPromotionId,
) -> Result<Option<AppliedPromotion>, DbError> {
    Ok(applied_promotions::table
        .find((org.uuid(), id.uuid()))
        .select(AppliedRow::as_select())
        .first(conn)
        .optional()?
        .map(AppliedPromotion::from))
}

pub fn list_applied(
    conn: &mut PgConnection,
    org: OrgId,
    customer: CustomerId,
    include_removed: bool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<AppliedPromotion>, DbError> {
    let mut q = applied_promotions::table
        .filter(applied_promotions::org_id.eq(org.uuid()))
        .filter(applied_promotions::customer_id.eq(customer.uuid()))
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(applied_promotions::id.gt(after));
    }
    if !include_removed {
        q = q.filter(applied_promotions::removed_at.is_null());
    }
    Ok(q.order(applied_promotions::id)
        .limit(limit)
        .select(AppliedRow::as_select())
        .load(conn)?
        .into_iter()
        .map(AppliedPromotion::from)
        .collect())
}

/// The applications of `customers` still applied and overlapping `[from, until]`.
pub fn applied_for_customers(
    conn: &mut PgConnection,
    org: OrgId,
    customers: &[CustomerId],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<AppliedPromotion>, DbError> {
    let ids: Vec<Uuid> = customers.iter().map(|c| c.uuid()).collect();
    Ok(applied_promotions::table
        .filter(applied_promotions::org_id.eq(org.uuid()))
        .filter(applied_promotions::customer_id.eq_any(ids))
        .filter(applied_promotions::removed_at.is_null())
        .filter(applied_promotions::starts_at.le(until))
        .filter(applied_promotions::ends_at.is_null().or(applied_promotions::ends_at.gt(from)))
        .order(applied_promotions::id)
        .select(AppliedRow::as_select())
        .load(conn)?
        .into_iter()
        .map(AppliedPromotion::from)
        .collect())
}

pub fn remove_applied(
    conn: &mut PgConnection,
    org: OrgId,
    id: AppliedPromotionId,
    at: DateTime<Utc>,
    context: Option<&str>,
) -> Result<(), DbError> {
    diesel::update(applied_promotions::table.find((org.uuid(), id.uuid())))
        .set((applied_promotions::removed_at.eq(at), applied_promotions::removal_context.eq(context)))
        .execute(conn)?;
    Ok(())
}

/// Every application made together with `commitment`, removed ones too, oldest first.
pub fn applied_with_commitment(
    conn: &mut PgConnection,
    org: OrgId,
    commitment: CommitmentId,
) -> Result<Vec<AppliedPromotion>, DbError> {
    Ok(applied_promotions::table
        .filter(applied_promotions::org_id.eq(org.uuid()))
        .filter(applied_promotions::commitment_id.eq(commitment.uuid()))
        .order(applied_promotions::id)
        .select(AppliedRow::as_select())
        .load(conn)?
        .into_iter()
        .map(AppliedPromotion::from)
        .collect())
}

/// Removes every application still applied together with `commitment`, at `at`, with
/// `context` saying why.
pub fn remove_applied_with_commitment(
    conn: &mut PgConnection,
    org: OrgId,
    commitment: CommitmentId,
    at: DateTime<Utc>,
    context: &str,
) -> Result<usize, DbError> {
    Ok(diesel::update(
        applied_promotions::table
            .filter(applied_promotions::org_id.eq(org.uuid()))
            .filter(applied_promotions::commitment_id.eq(commitment.uuid()))
            .filter(applied_promotions::removed_at.is_null()),
    )
    .set((applied_promotions::removed_at.eq(at), applied_promotions::removal_context.eq(context)))
    .execute(conn)?)
}

/// Links the applications still applied with commitment `from` to its successor `to`.
pub fn move_applied_to_commitment(
    conn: &mut PgConnection,
    org: OrgId,
    from: CommitmentId,
    to: CommitmentId,
) -> Result<usize, DbError> {
    Ok(diesel::update(
        applied_promotions::table
            .filter(applied_promotions::org_id.eq(org.uuid()))
            .filter(applied_promotions::commitment_id.eq(from.uuid()))
            .filter(applied_promotions::removed_at.is_null()),
    )
    .set(applied_promotions::commitment_id.eq(to.uuid()))
    .execute(conn)?)
}

/// What each cycle of the applications among `ids` has used.
pub fn cycle_use(
    conn: &mut PgConnection,
    org: OrgId,
    ids: &[AppliedPromotionId],
) -> Result<HashMap<AppliedPromotionId, HashMap<DateTime<Utc>, Decimal>>, DbError> {
    let ids: Vec<Uuid> = ids.iter().map(|i| i.uuid()).collect();
    let rows: Vec<(Uuid, DateTime<Utc>, Decimal)> = applied_promotion_cycles::table
        .filter(applied_promotion_cycles::org_id.eq(org.uuid()))
        .filter(applied_promotion_cycles::applied_id.eq_any(ids))
        .select((
            applied_promotion_cycles::applied_id,
            applied_promotion_cycles::cycle_start,
            applied_promotion_cycles::used,
        ))
        .load(conn)?;
    let mut out: HashMap<AppliedPromotionId, HashMap<DateTime<Utc>, Decimal>> = HashMap::new();
    for (applied, start, used) in rows {
        out.entry(AppliedPromotionId(applied)).or_default().insert(start, used);
    }
    Ok(out)
}

/// A set of uses (applied promotion, cycle start, amount) column by column.
type UseColumns = (Vec<Uuid>, Vec<DateTime<Utc>>, Vec<Decimal>);

fn use_columns(uses: &[(AppliedPromotionId, DateTime<Utc>, Decimal)]) -> UseColumns {
    (
        uses.iter().map(|u| u.0.uuid()).collect(),
        uses.iter().map(|u| u.1).collect(),
        uses.iter().map(|u| u.2).collect(),
    )
}

/// Gives back `uses` (positive amounts) to the cycles that recorded them: an UPDATE,
/// since an upsert's proposed row (a negative use) would fail the table's check first;
/// then takes them off their applications' totals.
pub fn give_back_uses(
    conn: &mut PgConnection,
    org: OrgId,
    uses: &[(AppliedPromotionId, DateTime<Utc>, Decimal)],
) -> Result<(), DbError> {
    use diesel::sql_types::{Array, Numeric, Timestamptz, Uuid as SqlUuid};
    if uses.is_empty() {
        return Ok(());
    }
    let (applied, cycles, amounts) = use_columns(uses);
    prepared(include_str!("sql/credit_give_back_uses.sql"))
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<Array<SqlUuid>, _>(&applied)
        .bind::<Array<Timestamptz>, _>(cycles)
        .bind::<Array<Numeric>, _>(&amounts)
        .execute(conn)?;
    let taken_off: Vec<Decimal> = amounts.iter().map(|a| -*a).collect();
    prepared(include_str!("sql/credit_add_to_totals.sql"))
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<Array<SqlUuid>, _>(&applied)
        .bind::<Array<Numeric>, _>(&taken_off)
        .execute(conn)?;
    Ok(())
}

/// One drawdown of an application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromotionDrawdown {
    pub id: Uuid,
    pub applied: AppliedPromotionId,
    pub cycle_start: DateTime<Utc>,
    pub amount: Decimal,
    pub effective_at: DateTime<Utc>,
    pub source_id: Uuid,
    pub product: ProductId,
    pub created_at: DateTime<Utc>,
    /// For a void's reversal (a negative amount): the drawdown it reverses.
    pub reverses: Option<Uuid>,
}

/// Writes drawdowns of applications (their uses already counted, or given back).
pub fn insert_drawdowns(
    conn: &mut PgConnection,
    org: OrgId,
    draws: &[PromotionDrawdown],
) -> Result<(), DbError> {
    draw(conn, org, &[], draws)
}

/// Adds `uses` (distinct applied promotion and cycle each) to their cycles and their
/// applications' totals, and writes `draws`, in one statement.
pub fn draw(
    conn: &mut PgConnection,
    org: OrgId,
    uses: &[(AppliedPromotionId, DateTime<Utc>, Decimal)],
    draws: &[PromotionDrawdown],
) -> Result<(), DbError> {
    use diesel::sql_types::{Array, Nullable, Numeric, Timestamptz, Uuid as SqlUuid};
    if uses.is_empty() && draws.is_empty() {
        return Ok(());
    }
    let (applied, cycles, amounts) = use_columns(uses);
    prepared(include_str!("sql/credit_draw.sql"))
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<Array<SqlUuid>, _>(applied)
        .bind::<Array<Timestamptz>, _>(cycles)
        .bind::<Array<Numeric>, _>(amounts)
        .bind::<Array<SqlUuid>, _>(draws.iter().map(|d| d.id).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(draws.iter().map(|d| d.applied.uuid()).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(draws.iter().map(|d| d.cycle_start).collect::<Vec<_>>())
        .bind::<Array<Numeric>, _>(draws.iter().map(|d| d.amount).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(draws.iter().map(|d| d.effective_at).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(draws.iter().map(|d| d.source_id).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(draws.iter().map(|d| d.product.uuid()).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(draws.iter().map(|d| d.created_at).collect::<Vec<_>>())
        .bind::<Array<Nullable<SqlUuid>>, _>(draws.iter().map(|d| d.reverses).collect::<Vec<_>>())
        .execute(conn)?;
    Ok(())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = applied_promotion_drawdowns)]
struct DrawdownRow {
    id: Uuid,
    applied_id: Uuid,
    cycle_start: DateTime<Utc>,
    amount: Decimal,
    effective_at: DateTime<Utc>,
    source_id: Uuid,
    product_id: Uuid,
    created_at: DateTime<Utc>,
    reverses: Option<Uuid>,
}

/// The credit promotion drawdowns written for `source_id` on the given applications
/// (found through their (application, effective time) index); reversals left out.
pub fn drawdowns_of_source(
    conn: &mut PgConnection,
    org: OrgId,
    applied: &[AppliedPromotionId],
    effective_at: DateTime<Utc>,
    source_id: Uuid,
) -> Result<Vec<PromotionDrawdown>, DbError> {
    let ids: Vec<Uuid> = applied.iter().map(|a| a.uuid()).collect();
    let rows: Vec<DrawdownRow> = applied_promotion_drawdowns::table
        .filter(applied_promotion_drawdowns::org_id.eq(org.uuid()))
        .filter(applied_promotion_drawdowns::applied_id.eq_any(ids))
        .filter(applied_promotion_drawdowns::effective_at.eq(effective_at))
        .filter(applied_promotion_drawdowns::source_id.eq(source_id))
        .filter(applied_promotion_drawdowns::reverses.is_null())
        .select(DrawdownRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| PromotionDrawdown {
            id: r.id,
            applied: AppliedPromotionId(r.applied_id),
            cycle_start: r.cycle_start,
            amount: r.amount,
            effective_at: r.effective_at,
            source_id: r.source_id,
            product: ProductId(r.product_id),
            created_at: r.created_at,
            reverses: r.reverses,
        })
        .collect())
}
