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
use crate::domain::api_key::{ApiKey, KeyRecord};
use crate::domain::ids::{ApiKeyId, OrgId};
use crate::domain::scope::Scopes;

/// The channel a key's revocation is announced on; the payload is the key's id.
pub const REVOKED_CHANNEL: &str = "billing_api_keys";

#[derive(Insertable)]
#[diesel(table_name = organizations)]
struct NewOrganization<'a> {
    id: Uuid,
    name: &'a str,
    created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable, Debug)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

pub fn insert_org(conn: &mut PgConnection, id: OrgId, name: &str, at: DateTime<Utc>) -> Result<(), DbError> {
    let row = NewOrganization { id: id.uuid(), name, created_at: at };
    diesel::insert_into(organizations::table).values(&row).execute(conn)?;
    Ok(())
}

pub fn find_org(conn: &mut PgConnection, id: OrgId) -> Result<Option<Organization>, DbError> {
    Ok(organizations::table.find(id.uuid()).select(Organization::as_select()).first(conn).optional()?)
}

pub fn list_orgs(conn: &mut PgConnection) -> Result<Vec<Organization>, DbError> {
    Ok(organizations::table.order(organizations::id).select(Organization::as_select()).load(conn)?)
}

/// A key to insert; `scopes` are their stored names.
#[derive(Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey<'a> {
    pub id: Uuid,
    pub org_id: Uuid,
    pub secret_sha256: &'a [u8],
    pub created_at: DateTime<Utc>,
    pub name: &'a str,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: Option<Uuid>,
}

impl<'a> NewApiKey<'a> {
    pub fn new(key: &'a ApiKey, secret_sha256: &'a [u8]) -> Self {
        Self {
            id: key.id.uuid(),
            org_id: key.org.uuid(),
            secret_sha256,
            created_at: key.created_at,
            name: &key.name,
            scopes: key.scopes.names(),
            expires_at: key.expires_at,
            created_by: key.created_by.map(ApiKeyId::uuid),
        }
    }
}

#[derive(Queryable, Selectable, Debug)]
#[diesel(table_name = api_keys)]
struct ApiKeyRow {
    id: Uuid,
    org_id: Uuid,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    name: String,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    created_by: Option<Uuid>,
}

/// Stored scope names as a set; the table's check admits only known names.
fn scopes(names: &[String]) -> Result<Scopes, DbError> {
    Scopes::from_names(names).ok_or_else(|| DbError::Other(format!("unknown stored scopes {names:?}")))
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = DbError;
    fn try_from(r: ApiKeyRow) -> Result<Self, DbError> {
        Ok(ApiKey {
            id: ApiKeyId(r.id),
            org: OrgId(r.org_id),
            name: r.name,
            scopes: scopes(&r.scopes)?,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
            created_by: r.created_by.map(ApiKeyId),
        })
    }
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
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    revoked_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
    scopes: Vec<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    expires_at: Option<DateTime<Utc>>,
}

/// The key with `id`, whatever its org: the lookup that authenticates a call. When
/// `presented_sha256` is the key's own, the key is marked used (at most once a minute).
pub fn resolve_api_key(
    conn: &mut PgConnection,
    id: ApiKeyId,
    presented_sha256: &[u8],
) -> Result<Option<KeyRecord>, DbError> {
    let row = prepared("SELECT * FROM billing_resolve_api_key($1, $2)")
        .bind::<diesel::sql_types::Uuid, _>(id.uuid())
        .bind::<diesel::sql_types::Binary, _>(presented_sha256)
        .get_result::<KeyRow>(conn)
        .optional()?;
    row.map(|r| {
        Ok(KeyRecord {
            org: OrgId(r.org_id),
            secret_sha256: r.secret_sha256,
            revoked: r.revoked_at.is_some(),
            scopes: scopes(&r.scopes)?,
            expires_at: r.expires_at,
        })
    })
    .transpose()
}

/// The key `id` of `org`.
pub fn find_api_key(conn: &mut PgConnection, org: OrgId, id: ApiKeyId) -> Result<Option<ApiKey>, DbError> {
    api_keys::table
        .filter(api_keys::org_id.eq(org.uuid()))
        .filter(api_keys::id.eq(id.uuid()))
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?
        .map(ApiKey::try_from)
        .transpose()
}

/// Up to `limit` keys of `org` with an id after `after`, oldest first; revoked ones only
/// if `show_revoked`.
pub fn list_api_keys(
    conn: &mut PgConnection,
    org: OrgId,
    after: Option<ApiKeyId>,
    limit: i64,
    show_revoked: bool,
) -> Result<Vec<ApiKey>, DbError> {
    let mut q = api_keys::table.filter(api_keys::org_id.eq(org.uuid())).into_boxed();
    if let Some(after) = after {
        q = q.filter(api_keys::id.gt(after.uuid()));
    }
    if !show_revoked {
        q = q.filter(api_keys::revoked_at.is_null());
    }
    let rows: Vec<ApiKeyRow> =
        q.order(api_keys::id).limit(limit).select(ApiKeyRow::as_select()).load(conn)?;
    rows.into_iter().map(ApiKey::try_from).collect()
}

/// Marks the key `id` of `org` revoked and announces it; `None` when `org` has no such
/// key. Revoking twice keeps the first time. In a transaction, the notice is delivered
/// when it commits.
pub fn revoke_api_key(
    conn: &mut PgConnection,
    org: OrgId,
    id: ApiKeyId,
    now: DateTime<Utc>,
) -> Result<Option<ApiKey>, DbError> {
    diesel::update(
        api_keys::table
            .filter(api_keys::org_id.eq(org.uuid()))
            .filter(api_keys::id.eq(id.uuid()))
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(now))
    .execute(conn)?;
    // Every instance forgets the key from its cache.
    prepared("SELECT pg_notify($1, $2)")
        .bind::<diesel::sql_types::Text, _>(REVOKED_CHANNEL)
        .bind::<diesel::sql_types::Text, _>(id.to_string())
        .execute(conn)?;
    find_api_key(conn, org, id)
}

/// The org of the key `id`, for the operator's revoke command (which names only the key).
pub fn org_of_api_key(conn: &mut PgConnection, id: ApiKeyId) -> Result<Option<OrgId>, DbError> {
    Ok(api_keys::table.find(id.uuid()).select(api_keys::org_id).first(conn).optional()?.map(OrgId))
}

/// The deployment's secret for sealing tokens (`domain::seal`), made by the migrations.
pub fn token_secret(conn: &mut PgConnection) -> Result<[u8; 32], DbError> {
    let bytes: Vec<u8> = token_secrets::table.find(1i16).select(token_secrets::secret).first(conn)?;
    // The table's check constraint holds it to 32 bytes.
    bytes.try_into().map_err(|_| DbError::Other("the stored token secret is not 32 bytes".into()))
}
