//! Commit and access segment rows and queries, every one scoped by org.

mod segments;

pub use segments::*;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::DbError;
use super::prepared::{BindNext, prepared};
use super::schema::{commit_segments, commits};
use crate::domain::authorship::Authorship;
use crate::domain::commit::balance::{CloseKind, Segment};
use crate::domain::commit::timeline::LaterEntries;
use crate::domain::commit::{
    AccessItem, Applicability, Commit, CommitFilter, CommitType, InvoiceSchedule, Specifier,
};
use crate::domain::ids::{CommitId, CustomerId, OrgId, ProductId};

#[derive(Queryable, Selectable)]
#[diesel(table_name = commits)]
pub struct CommitRow {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub product_id: Uuid,
    pub commit_type: String,
    pub priority: Decimal,
    pub credit_type: String,
    pub applicable_product_ids: Vec<Uuid>,
    pub applicable_product_tags: Vec<String>,
    pub applicable_contract_ids: Vec<String>,
    pub specifiers: serde_json::Value,
    pub invoice_schedule: Option<serde_json::Value>,
    pub custom_fields: serde_json::Value,
    pub rate_type: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub invoice_contract_id: Option<Uuid>,
    pub netsuite_sales_order_id: Option<String>,
    pub salesforce_opportunity_id: Option<String>,
    pub uniqueness_key: Option<String>,
    pub voided_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub updated_by: Option<Uuid>,
}

#[derive(Insertable)]
#[diesel(table_name = commits)]
pub struct NewCommitRow<'a> {
    pub org_id: Uuid,
    pub id: Uuid,
    pub customer_id: Uuid,
    pub product_id: Uuid,
    pub commit_type: &'static str,
    pub priority: Decimal,
    pub credit_type: &'a str,
    pub applicable_product_ids: Vec<Uuid>,
    pub applicable_product_tags: &'a [String],
    pub applicable_contract_ids: &'a [String],
    pub specifiers: serde_json::Value,
    pub invoice_schedule: Option<serde_json::Value>,
    pub custom_fields: serde_json::Value,
    pub rate_type: Option<&'a str>,
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub invoice_contract_id: Option<Uuid>,
    pub netsuite_sales_order_id: Option<&'a str>,
    pub salesforce_opportunity_id: Option<&'a str>,
    pub uniqueness_key: Option<&'a str>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns a commit may change after creation.
#[derive(AsChangeset)]
#[diesel(table_name = commits, treat_none_as_null = true)]
struct CommitChangesRow<'a> {
    priority: Decimal,
    custom_fields: serde_json::Value,
    name: Option<&'a str>,
    description: Option<&'a str>,
    voided_at: Option<DateTime<Utc>>,
    void_reason: Option<&'a str>,
    version: i64,
    updated_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = commit_segments)]
pub struct SegmentRow {
    pub commit_id: Uuid,
    pub idx: i32,
    pub starting_at: DateTime<Utc>,
    pub ending_before: DateTime<Utc>,
    pub amount: Decimal,
    pub remaining: Decimal,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_kind: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = commit_segments)]
struct NewSegmentRow {
    org_id: Uuid,
    commit_id: Uuid,
    idx: i32,
    customer_id: Uuid,
    starting_at: DateTime<Utc>,
    ending_before: DateTime<Utc>,
    amount: Decimal,
    remaining: Decimal,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> DbError {
    DbError::Other(format!("stored {what} is unreadable: {e}"))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, DbError> {
    serde_json::to_value(value).map_err(|e| DbError::Other(format!("serializing: {e}")))
}

/// A commit's applicability from its stored columns.
fn applicability_of(
    product_ids: Vec<Uuid>,
    product_tags: Vec<String>,
    contract_ids: Vec<String>,
    specifiers: serde_json::Value,
) -> Result<Applicability, DbError> {
    let specifiers: Vec<Specifier> =
        serde_json::from_value(specifiers).map_err(|e| corrupt("specifiers", e))?;
    Ok(Applicability {
        product_ids: product_ids.into_iter().map(ProductId).collect(),
        product_tags,
        specifiers,
        contract_ids,
    })
}

impl TryFrom<CommitRow> for Commit {
    type Error = DbError;
    fn try_from(r: CommitRow) -> Result<Self, DbError> {
        let commit_type =
            CommitType::parse(&r.commit_type).ok_or_else(|| corrupt("commit type", &r.commit_type))?;
        let applicability = applicability_of(
            r.applicable_product_ids,
            r.applicable_product_tags,
            r.applicable_contract_ids,
            r.specifiers,
        )?;
        let invoice_schedule: Option<InvoiceSchedule> = r
            .invoice_schedule
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| corrupt("invoice schedule", e))?;
        let custom_fields: BTreeMap<String, String> =
            serde_json::from_value(r.custom_fields).map_err(|e| corrupt("custom fields", e))?;
        Ok(Commit {
            id: CommitId(r.id),
            customer_id: CustomerId(r.customer_id),
            product_id: ProductId(r.product_id),
            commit_type,
            priority: r.priority,
            credit_type: r.credit_type,
            access: Vec::new(),
            invoice_schedule,
            applicability,
            custom_fields,
            rate_type: r.rate_type,
            name: r.name,
            description: r.description,
            invoice_contract_id: r.invoice_contract_id,
            netsuite_sales_order_id: r.netsuite_sales_order_id,
            salesforce_opportunity_id: r.salesforce_opportunity_id,
            uniqueness_key: r.uniqueness_key,
            voided_at: r.voided_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
            by: Authorship::of(r.created_by, r.updated_by),
        })
    }
}

impl TryFrom<SegmentRow> for Segment {
    type Error = DbError;
    fn try_from(r: SegmentRow) -> Result<Self, DbError> {
        let closed = match (r.closed_at, r.close_kind) {
            (Some(at), Some(kind)) => {
                Some((at, CloseKind::parse(&kind).ok_or_else(|| corrupt("segment close kind", &kind))?))
            }
            _ => None,
        };
        Ok(Segment {
            commit_id: CommitId(r.commit_id),
            idx: r.idx,
            starting_at: r.starting_at,
            ending_before: r.ending_before,
            amount: r.amount,
            remaining: r.remaining,
            closed,
        })
    }
}

fn segments_of(rows: Vec<SegmentRow>) -> Result<Vec<Segment>, DbError> {
    rows.into_iter().map(Segment::try_from).collect()
}

/// Fills each commit's access schedule from its segments.
fn attach_access(conn: &mut PgConnection, org: OrgId, mut list: Vec<Commit>) -> Result<Vec<Commit>, DbError> {
    let ids: Vec<Uuid> = list.iter().map(|c| c.id.uuid()).collect();
    let rows: Vec<SegmentRow> = commit_segments::table
        .filter(commit_segments::org_id.eq(org.uuid()))
        .filter(commit_segments::commit_id.eq_any(ids))
        .order((commit_segments::commit_id, commit_segments::idx))
        .select(SegmentRow::as_select())
        .load(conn)?;
    for r in rows {
        if let Some(c) = list.iter_mut().find(|c| c.id.uuid() == r.commit_id) {
            c.access.push(AccessItem {
                amount: r.amount,
                starting_at: r.starting_at,
                ending_before: r.ending_before,
            });
        }
    }
    Ok(list)
}

/// Inserts the commit and one open segment per access item, each holding its full amount.
pub fn insert(conn: &mut PgConnection, org: OrgId, c: &Commit) -> Result<(), DbError> {
    let row = NewCommitRow {
        org_id: org.uuid(),
        id: c.id.uuid(),
        customer_id: c.customer_id.uuid(),
        product_id: c.product_id.uuid(),
        commit_type: c.commit_type.as_str(),
        priority: c.priority,
        credit_type: &c.credit_type,
        applicable_product_ids: c.applicability.product_ids.iter().map(|p| p.uuid()).collect(),
        applicable_product_tags: &c.applicability.product_tags,
        applicable_contract_ids: &c.applicability.contract_ids,
        specifiers: to_json(&c.applicability.specifiers)?,
        invoice_schedule: c.invoice_schedule.as_ref().map(to_json).transpose()?,
        custom_fields: to_json(&c.custom_fields)?,
        rate_type: c.rate_type.as_deref(),
        name: c.name.as_deref(),
        description: c.description.as_deref(),
        invoice_contract_id: c.invoice_contract_id,
        netsuite_sales_order_id: c.netsuite_sales_order_id.as_deref(),
        salesforce_opportunity_id: c.salesforce_opportunity_id.as_deref(),
        uniqueness_key: c.uniqueness_key.as_deref(),
        version: c.version,
        created_at: c.created_at,
        updated_at: c.updated_at,
    };
    diesel::insert_into(commits::table).values(row).execute(conn)?;
    let segments: Vec<NewSegmentRow> = c
        .access
        .iter()
        .enumerate()
        .map(|(i, a)| NewSegmentRow {
            org_id: org.uuid(),
            commit_id: c.id.uuid(),
            idx: i as i32,
            customer_id: c.customer_id.uuid(),
            starting_at: a.starting_at,
            ending_before: a.ending_before,
            amount: a.amount,
            remaining: a.amount,
        })
        .collect();
    diesel::insert_into(commit_segments::table).values(segments).execute(conn)?;
    Ok(())
}

fn get_with(
    conn: &mut PgConnection,
    org: OrgId,
    id: CommitId,
    lock: bool,
) -> Result<Option<Commit>, DbError> {
    let q = commits::table.find((org.uuid(), id.uuid())).select(CommitRow::as_select());
    let row = if lock { q.for_update().first(conn).optional()? } else { q.first(conn).optional()? };
    let Some(row) = row else { return Ok(None) };
    Ok(attach_access(conn, org, vec![Commit::try_from(row)?])?.pop())
}

pub fn get(conn: &mut PgConnection, org: OrgId, id: CommitId) -> Result<Option<Commit>, DbError> {
    get_with(conn, org, id, false)
}

/// Reads and locks the commit row for the rest of the transaction.
pub fn get_for_update(conn: &mut PgConnection, org: OrgId, id: CommitId) -> Result<Option<Commit>, DbError> {
    get_with(conn, org, id, true)
}

/// The commits among `ids` (no lock), with their access schedules.
pub fn get_many(conn: &mut PgConnection, org: OrgId, ids: &[CommitId]) -> Result<Vec<Commit>, DbError> {
    let ids: Vec<Uuid> = ids.iter().map(|c| c.uuid()).collect();
    let rows: Vec<CommitRow> = commits::table
        .filter(commits::org_id.eq(org.uuid()))
        .filter(commits::id.eq_any(ids))
        .select(CommitRow::as_select())
        .load(conn)?;
    let list = rows.into_iter().map(Commit::try_from).collect::<Result<Vec<_>, _>>()?;
    attach_access(conn, org, list)
}

/// Writes the fields that may change after creation (and the void).
pub fn update(
    conn: &mut PgConnection,
    org: OrgId,
    c: &Commit,
    void_reason: Option<&str>,
) -> Result<(), DbError> {
    let changes = CommitChangesRow {
        priority: c.priority,
        custom_fields: to_json(&c.custom_fields)?,
        name: c.name.as_deref(),
        description: c.description.as_deref(),
        voided_at: c.voided_at,
        void_reason,
        version: c.version,
        updated_at: c.updated_at,
    };
    diesel::update(commits::table.find((org.uuid(), c.id.uuid()))).set(changes).execute(conn)?;
    Ok(())
}

/// Up to `limit` commits after `after` in id (creation) order.
pub fn list(
    conn: &mut PgConnection,
    org: OrgId,
    filter: &CommitFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Commit>, DbError> {
    let mut q = commits::table.filter(commits::org_id.eq(org.uuid())).into_boxed();
    if let Some(after) = after {
        q = q.filter(commits::id.gt(after));
    }
    if let Some(customer) = filter.customer_id {
        q = q.filter(commits::customer_id.eq(customer.uuid()));
    }
    if let Some(t) = filter.commit_type {
        q = q.filter(commits::commit_type.eq(t.as_str()));
    }
    if let Some(t) = filter.active_at {
        q = q.filter(commits::voided_at.is_null().or(commits::voided_at.gt(t))).filter(diesel::dsl::exists(
            commit_segments::table
                .filter(commit_segments::org_id.eq(commits::org_id))
                .filter(commit_segments::commit_id.eq(commits::id))
                .filter(commit_segments::starting_at.le(t))
                .filter(commit_segments::ending_before.gt(t)),
        ));
    }
    let rows: Vec<CommitRow> = q.order(commits::id).limit(limit).select(CommitRow::as_select()).load(conn)?;
    let list = rows.into_iter().map(Commit::try_from).collect::<Result<Vec<_>, _>>()?;
    attach_access(conn, org, list)
}

/// The customer's PREPAID commits that are not voided, oldest first.
pub fn prepaid_of_customer(
    conn: &mut PgConnection,
    org: OrgId,
    customer: CustomerId,
) -> Result<Vec<CommitId>, DbError> {
    let ids: Vec<Uuid> = commits::table
        .filter(commits::org_id.eq(org.uuid()))
        .filter(commits::customer_id.eq(customer.uuid()))
        .filter(commits::commit_type.eq(CommitType::Prepaid.as_str()))
        .filter(commits::voided_at.is_null())
        .order(commits::id)
        .select(commits::id)
        .load(conn)?;
    Ok(ids.into_iter().map(CommitId).collect())
}

/// The id of the commit created with `uniqueness_key`, if any.
pub fn id_by_uniqueness_key(conn: &mut PgConnection, org: OrgId, key: &str) -> Result<Option<Uuid>, DbError> {
    Ok(commits::table
        .filter(commits::org_id.eq(org.uuid()))
        .filter(commits::uniqueness_key.eq(key))
        .select(commits::id)
        .first(conn)
        .optional()?)
}
