//! Organizations, API keys, and resolving a presented key to its organization.

use chrono::Utc;
use rand::RngCore;

use super::key_cache::KeyRecord;
use super::{App, AppError};
use crate::db::{self, DbError};
use crate::domain::api_key::{SECRET_BYTES, format_key, hash_secret, parse_key, secret_matches};
use crate::domain::ids::{ApiKeyId, OrgId};
use crate::domain::seal::{TokenKey, TokenSecret};
use crate::domain::text::check_name;
use crate::domain::validation::Violations;

/// Who is calling: the organization the key belongs to, the key itself, and the key
/// that seals the organization's page tokens and cursors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub org: OrgId,
    pub key: ApiKeyId,
    pub tokens: TokenKey,
}

/// An API key as listed to operators (never with its secret).
#[derive(Clone, Debug)]
pub struct ApiKeyInfo {
    pub id: ApiKeyId,
    pub org: OrgId,
    pub created_at: chrono::DateTime<Utc>,
    pub revoked_at: Option<chrono::DateTime<Utc>>,
}

impl App {
    /// Creates an organization and returns its id.
    pub async fn create_org(&self, name: String) -> Result<OrgId, AppError> {
        let mut v = Violations::at("name");
        check_name(&mut v, "", &name, 200);
        v.finish(())?;
        let id = OrgId::generate();
        self.db()
            .run(move |conn| {
                db::tenancy::insert_org(
                    conn,
                    &db::tenancy::NewOrganization {
                        id: id.uuid(),
                        name: &name,
                        created_at: super::clock::now(),
                    },
                )
            })
            .await?;
        Ok(id)
    }

    /// All organizations, for operators.
    pub async fn list_orgs(&self) -> Result<Vec<db::tenancy::Organization>, AppError> {
        Ok(self.db().run(db::tenancy::list_orgs).await?)
    }

    /// Creates a key for `org` and returns the full key string, which is not stored and
    /// cannot be shown again.
    pub async fn create_api_key(&self, org: OrgId) -> Result<String, AppError> {
        let id = ApiKeyId::generate();
        let mut secret = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut secret);
        let key = format_key(id, &secret);
        let (_, secret_text) =
            parse_key(&key).ok_or_else(|| DbError::Other("generated key does not parse".into()))?;
        let hash = hash_secret(secret_text);
        self.db()
            .run(move |conn| {
                if db::tenancy::find_org(conn, org)?.is_none() {
                    return Err(AppError::not_found("organization", org));
                }
                db::tenancy::insert_api_key(
                    conn,
                    &db::tenancy::NewApiKey {
                        id: id.uuid(),
                        org_id: org.uuid(),
                        secret_sha256: &hash,
                        created_at: super::clock::now(),
                    },
                )?;
                Ok(())
            })
            .await?;
        Ok(key)
    }

    /// Revokes a key; calls made with it fail from now on.
    pub async fn revoke_api_key(&self, id: ApiKeyId) -> Result<(), AppError> {
        let found =
            self.db().run(move |conn| db::tenancy::revoke_api_key(conn, id, super::clock::now())).await?;
        // Other instances forget it when the revocation's notice reaches them.
        self.keys.forget(id);
        if found { Ok(()) } else { Err(AppError::not_found("API key", id)) }
    }

    /// Whether `id` is a key that exists and is not revoked, asked of the database.
    pub async fn api_key_is_live(&self, id: ApiKeyId) -> Result<bool, AppError> {
        let row = self.db().run(move |conn| db::tenancy::resolve_api_key(conn, id)).await?;
        Ok(row.is_some_and(|r| r.revoked_at.is_none()))
    }

    /// The keys of `org`, for operators.
    pub async fn list_api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyInfo>, AppError> {
        let rows = self.db().run(move |conn| db::tenancy::list_api_keys(conn, org)).await?;
        Ok(rows
            .into_iter()
            .map(|r| ApiKeyInfo {
                id: ApiKeyId(r.id),
                org: OrgId(r.org_id),
                created_at: r.created_at,
                revoked_at: r.revoked_at,
            })
            .collect())
    }

    /// Resolves a presented key to its caller; UNAUTHENTICATED for anything but a live key.
    /// Served from the instance's key cache when it can be (see `app::key_cache`).
    pub async fn authenticate(&self, key: &str) -> Result<Caller, AppError> {
        let (id, secret) = parse_key(key).ok_or(AppError::Unauthenticated)?;
        let record = match self.keys.get(id) {
            Some(record) => record,
            None => {
                let ticket = self.keys.ticket();
                let row = self.db().run(move |conn| db::tenancy::resolve_api_key(conn, id)).await?;
                let row = row.ok_or(AppError::Unauthenticated)?;
                let record = KeyRecord {
                    org: OrgId(row.org_id),
                    secret_sha256: row.secret_sha256,
                    revoked: row.revoked_at.is_some(),
                };
                self.keys.put(ticket, id, record.clone());
                record
            }
        };
        if !record.revoked && secret_matches(secret, &record.secret_sha256) {
            let tokens = self.token_secret().await?.for_org(record.org);
            Ok(Caller { org: record.org, key: id, tokens })
        } else {
            Err(AppError::Unauthenticated)
        }
    }

    /// The deployment's token secret: read once, then held for the life of the process.
    pub async fn token_secret(&self) -> Result<TokenSecret, AppError> {
        let secret = self
            .token_secret
            .get_or_try_init(|| async {
                let bytes = self.db().run(db::tenancy::token_secret).await?;
                Ok::<_, AppError>(TokenSecret::new(bytes))
            })
            .await?;
        Ok(*secret)
    }
}
