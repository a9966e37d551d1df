//! API keys: made, listed and revoked by operators (the `admin` command, as the schema's
//! owner) and by callers holding the `admin` scope (the API, in their org's transaction).

use rand::RngCore;

use super::{App, AppError, Caller, clock};
use crate::db::{self, DbError};
use crate::domain::api_key::{ApiKey, SECRET_BYTES, format_key, hash_secret, parse_key};
use crate::domain::ids::{ApiKeyId, OrgId};
use crate::domain::page::{Page, PageRequest};
use crate::domain::scope::{KeyRequest, Scope, Scopes, beyond_granter, validate_key_request};
use crate::domain::validation::Violations;

const RESOURCE: &str = "API key";

/// A new key and its string, which is shown once and not stored.
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: String,
}

/// A fresh key string for `id`, and the hash of its secret to store.
fn new_secret(id: ApiKeyId) -> Result<(String, [u8; 32]), AppError> {
    let mut secret = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut secret);
    let key = format_key(id, &secret);
    let (_, secret_text) =
        parse_key(&key).ok_or_else(|| DbError::Other("generated key does not parse".into()))?;
    let hash = hash_secret(secret_text);
    Ok((key, hash))
}

fn new_key(org: OrgId, req: KeyRequest, created_by: Option<ApiKeyId>) -> ApiKey {
    ApiKey {
        id: ApiKeyId::generate(),
        org,
        name: req.name,
        scopes: req.scopes,
        created_at: clock::now(),
        expires_at: req.expires_at,
        last_used_at: None,
        revoked_at: None,
        created_by,
    }
}

impl App {
    /// Creates a key for `org` (the operator's command) and returns the key string.
    pub async fn create_api_key(&self, org: OrgId, req: KeyRequest) -> Result<String, AppError> {
        let mut v = Violations::default();
        validate_key_request(&req, clock::now(), &mut v);
        v.finish(())?;
        let key = new_key(org, req, None);
        let (secret, hash) = new_secret(key.id)?;
        self.db()
            .run(move |conn| {
                if db::tenancy::find_org(conn, org)?.is_none() {
                    return Err(AppError::not_found("organization", org));
                }
                db::tenancy::insert_api_key(conn, &db::tenancy::NewApiKey::new(&key, &hash))?;
                Ok(())
            })
            .await?;
        Ok(secret)
    }

    /// Creates a key in the caller's org; it may hold only scopes the caller's key holds.
    pub async fn create_api_key_as(
        &self,
        caller: Caller,
        req: KeyRequest,
        mut v: Violations,
    ) -> Result<CreatedKey, AppError> {
        v.nested("api_key", |v| validate_key_request(&req, clock::now(), v));
        v.finish(())?;
        if let Some(scope) = beyond_granter(caller.scopes, req.scopes).iter().next() {
            return Err(AppError::missing_scope(
                scope,
                format!("a key can grant only scopes it holds; this key lacks {scope}"),
            ));
        }
        let key = new_key(caller.org, req, Some(caller.key));
        let (secret, hash) = new_secret(key.id)?;
        let stored = key.clone();
        self.db()
            .transaction(caller.org, move |conn| {
                db::tenancy::insert_api_key(conn, &db::tenancy::NewApiKey::new(&stored, &hash))?;
                Ok::<_, AppError>(())
            })
            .await?;
        Ok(CreatedKey { key, secret })
    }

    /// The key `id` of `org`.
    pub async fn get_api_key(&self, org: OrgId, id: ApiKeyId) -> Result<ApiKey, AppError> {
        self.db()
            .transaction(org, move |conn| Ok::<_, AppError>(db::tenancy::find_api_key(conn, org, id)?))
            .await?
            .ok_or_else(|| AppError::not_found(RESOURCE, id))
    }

    /// One page of `org`'s keys, oldest first.
    pub async fn list_api_keys(
        &self,
        org: OrgId,
        page: PageRequest,
        show_revoked: bool,
    ) -> Result<Page<ApiKey>, AppError> {
        self.page_by_id(
            org,
            page,
            filters_key(show_revoked),
            |k: &ApiKey| k.id.to_string(),
            move |conn, after, limit| {
                Ok(db::tenancy::list_api_keys(conn, org, after.map(ApiKeyId), limit, show_revoked)?)
            },
        )
        .await
    }

    /// Every key of `org`, revoked ones too, for operators.
    pub async fn all_api_keys(&self, org: OrgId) -> Result<Vec<ApiKey>, AppError> {
        Ok(self.db().run(move |conn| db::tenancy::list_api_keys(conn, org, None, i64::MAX, true)).await?)
    }

    /// Revokes the key `id` of `org`; calls made with it fail from now on.
    pub async fn revoke_api_key_of(&self, org: OrgId, id: ApiKeyId) -> Result<ApiKey, AppError> {
        let key = self
            .db()
            .transaction(org, move |conn| {
                Ok::<_, AppError>(db::tenancy::revoke_api_key(conn, org, id, clock::now())?)
            })
            .await?
            .ok_or_else(|| AppError::not_found(RESOURCE, id))?;
        // Other instances forget it when the revocation's notice reaches them.
        self.keys.forget(id);
        Ok(key)
    }

    /// Revokes the key `id` whatever its org, for operators.
    pub async fn revoke_api_key(&self, id: ApiKeyId) -> Result<(), AppError> {
        let org = self
            .db()
            .run(move |conn| db::tenancy::org_of_api_key(conn, id))
            .await?
            .ok_or_else(|| AppError::not_found(RESOURCE, id))?;
        let revoked =
            self.db().run(move |conn| db::tenancy::revoke_api_key(conn, org, id, clock::now())).await?;
        self.keys.forget(id);
        revoked.map(|_| ()).ok_or_else(|| AppError::not_found(RESOURCE, id))
    }
}

/// What a page token of a key list is bound to.
pub fn filters_key(show_revoked: bool) -> &'static str {
    if show_revoked { "show_revoked" } else { "" }
}

/// Parses the admin command's `--scopes a,b,c`.
pub fn parse_scope_list(list: &str) -> Result<Scopes, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Scope::parse(s).ok_or_else(|| format!("{s:?} is not a scope (admin, write, usage, read, feed)"))
        })
        .collect()
}
