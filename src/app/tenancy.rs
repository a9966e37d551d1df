//! Organizations, and resolving a presented key to its caller.

use chrono::{DateTime, Utc};

use super::{App, AppError};
use crate::db;
use crate::domain::api_key::{hash_secret, parse_key, secret_matches};
use crate::domain::ids::{ApiKeyId, OrgId};
use crate::domain::scope::{KeyRefusal, Scopes, check_usable};
use crate::domain::seal::{TokenKey, TokenSecret};
use crate::domain::text::check_name;
use crate::domain::validation::Violations;

/// Who is calling: the organization the key belongs to, the key itself with its scopes
/// and expiry, and the key that seals the organization's page tokens and cursors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub org: OrgId,
    pub key: ApiKeyId,
    pub scopes: Scopes,
    /// When the key expires; long-lived work (violation streams) ends then.
    pub expires_at: Option<DateTime<Utc>>,
    pub tokens: TokenKey,
}

impl App {
    /// Creates an organization and returns its id.
    pub async fn create_org(&self, name: String) -> Result<OrgId, AppError> {
        let mut v = Violations::at("name");
        check_name(&mut v, "", &name, 200);
        v.finish(())?;
        let id = OrgId::generate();
        self.db().run(move |conn| db::tenancy::insert_org(conn, id, &name, super::clock::now())).await?;
        Ok(id)
    }

    /// All organizations, for operators.
    pub async fn list_orgs(&self) -> Result<Vec<db::tenancy::Organization>, AppError> {
        Ok(self.db().run(db::tenancy::list_orgs).await?)
    }

    /// Resolves a presented key to its caller: UNAUTHENTICATED for anything but a live
    /// key (API_KEY_EXPIRED for one past its expiry). Served from the instance's key
    /// cache when it can be (see `app::key_cache`).
    pub async fn authenticate(&self, key: &str) -> Result<Caller, AppError> {
        let (id, secret) = parse_key(key).ok_or(AppError::Unauthenticated)?;
        let record = match self.keys.get(id) {
            Some(record) => record,
            None => {
                let ticket = self.keys.ticket();
                let presented = hash_secret(secret);
                let record =
                    self.db().run(move |conn| db::tenancy::resolve_api_key(conn, id, &presented)).await?;
                let record = record.ok_or(AppError::Unauthenticated)?;
                self.keys.put(ticket, id, record.clone());
                record
            }
        };
        if !secret_matches(secret, &record.secret_sha256) {
            return Err(AppError::Unauthenticated);
        }
        match check_usable(record.revoked, record.expires_at, super::clock::now()) {
            Ok(()) => {}
            Err(KeyRefusal::Revoked) => return Err(AppError::Unauthenticated),
            Err(KeyRefusal::Expired) => return Err(AppError::KeyExpired),
        }
        let tokens = self.token_secret().await?.for_org(record.org);
        Ok(Caller { org: record.org, key: id, scopes: record.scopes, expires_at: record.expires_at, tokens })
    }

    /// Whether `id` is a key that exists, is not revoked and has not expired, asked of
    /// the database.
    pub async fn api_key_is_live(&self, id: ApiKeyId) -> Result<bool, AppError> {
        // No secret is presented: the check must not mark the key used.
        let record = self.db().run(move |conn| db::tenancy::resolve_api_key(conn, id, &[])).await?;
        Ok(record.is_some_and(|r| check_usable(r.revoked, r.expires_at, super::clock::now()).is_ok()))
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
