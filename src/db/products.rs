//! Product rows and queries, every one scoped by org.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::DbError;
use super::prepared::{BindNext, prepared};
use super::schema::products;
use crate::domain::authorship::Authorship;
use crate::domain::ids::{OrgId, ProductId};
use crate::domain::product::{Product, ProductFilter, ProductKind};

#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = products)]
pub struct ProductRow {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub tags: Vec<String>,
    pub service_type: Option<String>,
    pub service_family: Option<String>,
    pub kind: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub updated_by: Option<Uuid>,
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = products, treat_none_as_null = true)]
pub struct NewProductRow<'a> {
    pub org_id: Uuid,
    pub id: Uuid,
    pub code: &'a str,
    pub name: &'a str,
    pub tags: &'a [String],
    pub service_type: Option<&'a str>,
    pub service_family: Option<&'a str>,
    pub kind: &'static str,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl<'a> NewProductRow<'a> {
    fn of(org: OrgId, p: &'a Product) -> Self {
        Self {
            org_id: org.uuid(),
            id: p.id.uuid(),
            code: &p.code,
            name: &p.name,
            tags: &p.tags,
            service_type: p.service_type.as_deref(),
            service_family: p.service_family.as_deref(),
            kind: p.kind.as_str(),
            version: p.version,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

impl TryFrom<ProductRow> for Product {
    type Error = DbError;
    fn try_from(r: ProductRow) -> Result<Self, DbError> {
        let kind = ProductKind::parse(&r.kind)
            .ok_or_else(|| DbError::Other(format!("stored product kind {:?} is unknown", r.kind)))?;
        Ok(Product {
            id: ProductId(r.id),
            code: r.code,
            name: r.name,
            tags: r.tags,
            service_type: r.service_type,
            service_family: r.service_family,
            kind,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
            by: Authorship::of(r.created_by, r.updated_by),
        })
    }
}

/// The channel on which the database announces, when it commits, that a product of the
/// organization named by the payload was updated or deleted (the trigger
/// `products_changed`, whoever the writer).
pub const CHANGED_CHANNEL: &str = "billing_products";

pub fn insert(conn: &mut PgConnection, org: OrgId, p: &Product) -> Result<(), DbError> {
    diesel::insert_into(products::table).values(NewProductRow::of(org, p)).execute(conn)?;
    Ok(())
}

fn scoped(org: OrgId) -> products::BoxedQuery<'static, diesel::pg::Pg> {
    products::table.filter(products::org_id.eq(org.uuid())).into_boxed()
}

fn load(
    q: products::BoxedQuery<'_, diesel::pg::Pg>,
    conn: &mut PgConnection,
) -> Result<Vec<Product>, DbError> {
    q.select(ProductRow::as_select()).load(conn)?.into_iter().map(Product::try_from).collect()
}

pub fn get(conn: &mut PgConnection, org: OrgId, id: ProductId) -> Result<Option<Product>, DbError> {
    Ok(load(scoped(org).filter(products::id.eq(id.uuid())), conn)?.pop())
}

/// Reads and locks the product for the rest of the transaction.
pub fn get_for_update(
    conn: &mut PgConnection,
    org: OrgId,
    id: ProductId,
) -> Result<Option<Product>, DbError> {
    products::table
        .find((org.uuid(), id.uuid()))
        .select(ProductRow::as_select())
        .for_update()
        .first(conn)
        .optional()?
        .map(Product::try_from)
        .transpose()
}

/// The products among `ids` that exist in the org.
pub fn get_many(conn: &mut PgConnection, org: OrgId, ids: &[ProductId]) -> Result<Vec<Product>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = ids.iter().map(|id| id.uuid()).collect();
    load(scoped(org).filter(products::id.eq_any(ids)), conn)
}

/// The products of the org among `ids` or `codes`, in one round trip.
pub fn get_many_by_id_or_code(
    conn: &mut PgConnection,
    org: OrgId,
    ids: &[ProductId],
    codes: &[String],
) -> Result<Vec<Product>, DbError> {
    use diesel::sql_types::{Array, Text, Uuid as SqlUuid};
    if ids.is_empty() && codes.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = ids.iter().map(|id| id.uuid()).collect();
    let rows: Vec<ProductRow> = prepared(include_str!("sql/products_by_id_or_code.sql"))
        .bind::<SqlUuid, _>(org.uuid())
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Array<Text>, _>(codes)
        .load(conn)?;
    rows.into_iter().map(Product::try_from).collect()
}

/// The products among `codes` that exist in the org.
pub fn get_many_by_code(
    conn: &mut PgConnection,
    org: OrgId,
    codes: &[String],
) -> Result<Vec<Product>, DbError> {
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    load(scoped(org).filter(products::code.eq_any(codes.to_vec())), conn)
}

/// The product with `code`, if any.
pub fn get_by_code(conn: &mut PgConnection, org: OrgId, code: &str) -> Result<Option<Product>, DbError> {
    Ok(load(scoped(org).filter(products::code.eq(code.to_owned())), conn)?.pop())
}

/// Writes every field of `p` (including its new version).
pub fn update(conn: &mut PgConnection, org: OrgId, p: &Product) -> Result<(), DbError> {
    diesel::update(products::table.find((org.uuid(), p.id.uuid())))
        .set(NewProductRow::of(org, p))
        .execute(conn)?;
    Ok(())
}

/// Deletes the product; false when it did not exist.
pub fn delete(conn: &mut PgConnection, org: OrgId, id: ProductId) -> Result<bool, DbError> {
    let n = diesel::delete(products::table.find((org.uuid(), id.uuid()))).execute(conn)?;
    Ok(n > 0)
}

/// Up to `limit` products after `after` in id order (creation order).
pub fn list(
    conn: &mut PgConnection,
    org: OrgId,
    filter: &ProductFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Product>, DbError> {
    let mut q = scoped(org);
    if let Some(after) = after {
        q = q.filter(products::id.gt(after));
    }
    if let Some(code) = &filter.code {
        q = q.filter(products::code.eq(code.clone()));
    }
    if let Some(kind) = filter.kind {
        q = q.filter(products::kind.eq(kind.as_str()));
    }
    if let Some(tag) = &filter.tag {
        q = q.filter(products::tags.contains(vec![tag.clone()]));
    }
    if let Some(t) = &filter.service_type {
        q = q.filter(products::service_type.eq(t.clone()));
    }
    if let Some(f) = &filter.service_family {
        q = q.filter(products::service_family.eq(f.clone()));
    }
    load(q.order(products::id).limit(limit), conn)
}

/// The id of the product with `code`, if any.
pub fn id_by_code(conn: &mut PgConnection, org: OrgId, code: &str) -> Result<Option<Uuid>, DbError> {
    Ok(products::table
        .filter(products::org_id.eq(org.uuid()))
        .filter(products::code.eq(code))
        .select(products::id)
        .first(conn)
        .optional()?)
}
