//! Organizations and API keys. A key is resolved before the caller's org is known, so
//! the service reads it through `billing_api_key()`, a SECURITY DEFINER function that
//! row-level security lets see every org's keys; the other functions here are operator
//! commands, which run as the schema's owner.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::DbError;
use super::prepared::{BindNext, prepared};
use super::schema::{api_keys, organizations, token_secrets};
use crate::domain::ids::{ApiKeyId, OrgId};

/// The channel a key's revocation is announced on; the payload is the key's id.
pub const REVOKED_CHANNEL: &str = "billing_api_keys";

#[derive(Insertable)]
#[diesel(table_name = organizations)]
pub struct NewOrganization<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable, Debug)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey<'a> {
    pub id: Uuid,
    pub org_id: Uuid,
    pub secret_sha256: &'a [u8],
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable, Debug)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: Uuid,
    pub org_id: Uuid,
    pub secret_sha256: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub fn insert_org(conn: &mut PgConnection, org: &NewOrganization<'_>) -> Result<(), DbError> {
    diesel::insert_into(organizations::table).values(org).execute(conn)?;
    Ok(())
}

pub fn find_org(conn: &mut PgConnection, id: OrgId) -> Result<Option<Organization>, DbError> {
    Ok(organizations::table.find(id.uuid()).select(Organization::as_select()).first(conn).optional()?)
}

pub fn list_orgs(conn: &mut PgConnection) -> Result<Vec<Organization>, DbError> {
    Ok(organizations::table.order(organizations::id).select(Organization::as_select()).load(conn)?)
}

pub fn insert_api_key(conn: &mut PgConnection, key: &NewApiKey<'_>) -> Result<(), DbError> {
    diesel::insert_into(api_keys::table).values(key).execute(conn)?;
    Ok(())
}

#[derive(QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    org_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Binary)]
    secret_sha256: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    revoked_at: Option<DateTime<Utc>>,
}

/// The key with `id`, whatever its org: the lookup that authenticates a call.
pub fn resolve_api_key(conn: &mut PgConnection, id: ApiKeyId) -> Result<Option<ApiKey>, DbError> {
    let row = prepared("SELECT * FROM billing_api_key($1)")
        .bind::<diesel::sql_types::Uuid, _>(id.uuid())
        .get_result::<KeyRow>(conn)
        .optional()?;
    Ok(row.map(|r| ApiKey {
        id: id.uuid(),
        org_id: r.org_id,
        secret_sha256: r.secret_sha256,
        created_at: r.created_at,
        revoked_at: r.revoked_at,
    }))
}

pub fn find_api_key(conn: &mut PgConnection, id: ApiKeyId) -> Result<Option<ApiKey>, DbError> {
    Ok(api_keys::table.find(id.uuid()).select(ApiKey::as_select()).first(conn).optional()?)
}

pub fn list_api_keys(conn: &mut PgConnection, org: OrgId) -> Result<Vec<ApiKey>, DbError> {
    Ok(api_keys::table
        .filter(api_keys::org_id.eq(org.uuid()))
        .order(api_keys::id)
        .select(ApiKey::as_select())
        .load(conn)?)
}

/// Marks a key revoked; false when no such key exists. Revoking twice keeps the first time.
pub fn revoke_api_key(conn: &mut PgConnection, id: ApiKeyId, now: DateTime<Utc>) -> Result<bool, DbError> {
    conn.transaction(|conn| {
        let updated = diesel::update(api_keys::table.find(id.uuid()).filter(api_keys::revoked_at.is_null()))
            .set(api_keys::revoked_at.eq(now))
            .execute(conn)?;
        // Delivered at commit: every instance forgets the key from its cache.
        prepared("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>(REVOKED_CHANNEL)
            .bind::<diesel::sql_types::Text, _>(id.to_string())
            .execute(conn)?;
        Ok(updated > 0 || find_api_key(conn, id)?.is_some())
    })
}

/// The deployment's secret for sealing tokens (`domain::seal`), made by the migrations.
pub fn token_secret(conn: &mut PgConnection) -> Result<[u8; 32], DbError> {
    let bytes: Vec<u8> = token_secrets::table.find(1i16).select(token_secrets::secret).first(conn)?;
    // The table's check constraint holds it to 32 bytes.
    bytes.try_into().map_err(|_| DbError::Other("the stored token secret is not 32 bytes".into()))
}
