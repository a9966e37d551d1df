//! Custom credit types an organization declared, every query scoped by org.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::DbError;
use super::schema::credit_types;
use crate::domain::credit_type::CreditType;
use crate::domain::ids::{ApiKeyId, OrgId};

#[derive(Queryable, Selectable)]
#[diesel(table_name = credit_types)]
struct CreditTypeRow {
    code: String,
    name: String,
    created_at: DateTime<Utc>,
    created_by: Option<Uuid>,
}

impl From<CreditTypeRow> for CreditType {
    fn from(r: CreditTypeRow) -> Self {
        Self { code: r.code, name: r.name, created_at: r.created_at, created_by: r.created_by.map(ApiKeyId) }
    }
}

pub fn insert(conn: &mut PgConnection, org: OrgId, t: &CreditType) -> Result<(), DbError> {
    diesel::insert_into(credit_types::table)
        .values((
            credit_types::org_id.eq(org.uuid()),
            credit_types::code.eq(&t.code),
            credit_types::name.eq(&t.name),
            credit_types::created_at.eq(t.created_at),
            credit_types::created_by.eq(t.created_by.map(|k| k.uuid())),
        ))
        .execute(conn)?;
    Ok(())
}

/// Up to `limit` credit types with a code after `after`, by code.
pub fn list(
    conn: &mut PgConnection,
    org: OrgId,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<CreditType>, DbError> {
    let mut q = credit_types::table.filter(credit_types::org_id.eq(org.uuid())).into_boxed();
    if let Some(after) = after {
        q = q.filter(credit_types::code.gt(after.to_owned()));
    }
    let rows: Vec<CreditTypeRow> =
        q.order(credit_types::code).limit(limit).select(CreditTypeRow::as_select()).load(conn)?;
    Ok(rows.into_iter().map(CreditType::from).collect())
}

/// The credit type declared under `code`.
pub fn get(conn: &mut PgConnection, org: OrgId, code: &str) -> Result<Option<CreditType>, DbError> {
    let row: Option<CreditTypeRow> = credit_types::table
        .find((org.uuid(), code))
        .select(CreditTypeRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(CreditType::from))
}

/// Which of `codes` the organization has declared.
pub fn declared(conn: &mut PgConnection, org: OrgId, codes: &[&str]) -> Result<Vec<String>, DbError> {
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(credit_types::table
        .filter(credit_types::org_id.eq(org.uuid()))
        .filter(credit_types::code.eq_any(codes))
        .select(credit_types::code)
        .load(conn)?)
}
