//! Use cases: each opens one transaction through `db`, asks `domain` to decide, writes
//! the result and commits. Nothing here knows about gRPC.

pub mod allowances;
pub mod api_keys;
pub mod balance_alerts;
mod catalog;
pub mod clock;
pub mod commitments;
pub mod commits;
pub mod credit;
pub mod credit_types;
pub mod customer_refs;
pub mod customers;
pub mod drawdowns;
pub mod error;
pub mod key_cache;
pub mod limits_cache;
pub mod notice_cache;
pub mod partitions;
pub mod policy;
pub mod product_cache;
pub mod products;
pub mod promos;
pub mod request_ids;
pub mod reservations;
pub mod segments;
pub mod tenancy;
pub mod usage;
pub mod usage_batch;
pub mod usage_batcher;
pub mod usage_events;
pub mod violations;

pub use error::AppError;
pub use key_cache::{KeyCache, KeyCacheConfig, Revocation};
pub use limits_cache::LimitsCache;
pub use notice_cache::CacheConfig;
pub use policy::Policy;
pub use product_cache::ProductCache;
pub use tenancy::Caller;

use std::sync::Arc;

use crate::db::{Conn, Db, DbError};
use crate::domain::ids::OrgId;
use crate::domain::page::{Page, PageRequest};
use crate::domain::seal::TokenSecret;

/// Finds the id of the resource holding a unique key.
type FindByKey = fn(&mut Conn, OrgId, &str) -> Result<Option<uuid::Uuid>, DbError>;

/// Customers' limits an instance keeps by default (`LIMITS_CACHE_CAPACITY`).
pub const DEFAULT_LIMITS_CACHE_CAPACITY: usize = 50_000;

/// What the usage path reads from the instance rather than the database; cheap to clone.
#[derive(Clone)]
pub(crate) struct UsageCaches {
    pub products: ProductCache,
    pub limits: LimitsCache,
}

/// The application: shared by every gRPC service, cheap to clone.
#[derive(Clone)]
pub struct App {
    db: Db,
    policy: Policy,
    keys: KeyCache,
    caches: UsageCaches,
    /// The deployment's token secret, read from the database once.
    token_secret: Arc<tokio::sync::OnceCell<TokenSecret>>,
}

impl App {
    /// The application over `db` with the default policy.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            policy: Policy::default(),
            keys: KeyCache::new(KeyCacheConfig::default()),
            caches: UsageCaches {
                products: ProductCache::new(CacheConfig::default()),
                limits: LimitsCache::new(DEFAULT_LIMITS_CACHE_CAPACITY),
            },
            token_secret: Arc::default(),
        }
    }

    /// The same application with a key cache configured as `config`.
    pub fn with_key_cache(self, config: KeyCacheConfig) -> Self {
        Self { keys: KeyCache::new(config), ..self }
    }

    /// The instance's cache of resolved API keys.
    pub fn key_cache(&self) -> &KeyCache {
        &self.keys
    }

    /// The same application with a catalog cache configured as `config`.
    pub fn with_product_cache(self, config: CacheConfig) -> Self {
        let caches = UsageCaches { products: ProductCache::new(config), ..self.caches.clone() };
        Self { caches, ..self }
    }

    /// The instance's cache of the catalog, as the usage path reads it.
    pub fn product_cache(&self) -> &ProductCache {
        &self.caches.products
    }

    /// The same application keeping at most `capacity` customers' limits (0: none).
    pub fn with_limits_cache(self, capacity: usize) -> Self {
        let caches = UsageCaches { limits: LimitsCache::new(capacity), ..self.caches.clone() };
        Self { caches, ..self }
    }

    /// The instance's cache of customers' allowance limits, as the usage path reads them.
    pub fn limits_cache(&self) -> &LimitsCache {
        &self.caches.limits
    }

    /// The same application under `policy`.
    pub fn with_policy(self, policy: Policy) -> Self {
        Self { policy, ..self }
    }

    /// The operator-tuned rules in force.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The database handle, for health checks and operational tasks.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Names the resource holding a reused unique key in an ALREADY_EXISTS answer that
    /// came from the database's constraint, looked up with `find` after the failed
    /// transaction, so a client whose first call timed out can find what it created.
    /// One page of rows in id order (creation order, ids being v7): `read` gets, in one
    /// transaction, the id to start after and how many rows to fetch (one more than the
    /// page, to tell whether another follows); `id_of` names a row's position.
    async fn page_by_id<T, F>(
        &self,
        org: OrgId,
        page: PageRequest,
        filters_key: &str,
        id_of: impl Fn(&T) -> String,
        mut read: F,
    ) -> Result<Page<T>, AppError>
    where
        T: Send + 'static,
        F: FnMut(&mut Conn, Option<uuid::Uuid>, i64) -> Result<Vec<T>, AppError> + Send + 'static,
    {
        let after = page.after_uuid()?;
        let limit = page.fetch_limit();
        let rows = self.db().transaction(org, move |conn| read(conn, after, limit)).await?;
        Ok(Page::from_rows(rows, &page, filters_key, id_of))
    }

    async fn naming_existing<T>(
        &self,
        org: OrgId,
        result: Result<T, AppError>,
        find: FindByKey,
        key: Option<String>,
    ) -> Result<T, AppError> {
        match (result, key) {
            (Err(AppError::AlreadyExists { resource, field, existing: None }), Some(key)) => {
                let existing = self.db().transaction(org, move |conn| find(conn, org, &key)).await;
                Err(AppError::AlreadyExists {
                    resource,
                    field,
                    existing: existing.ok().flatten().map(|id| id.to_string()),
                })
            }
            (other, _) => other,
        }
    }
}
