//! The use cases customers and products share, written once: create (once per request
//! id), get, list in id pages, update and delete under an etag, each with one unique key
//! besides its id (a customer's external id, a product's code) whose clash names the
//! holder. Each resource says what differs in its `Resource` impl
//! (`customers.rs`, `products.rs`); resources with other steps (commits, promotions,
//! commitments) keep their own use cases.

use std::fmt::Display;

use uuid::Uuid;

use super::clock;
use super::request_ids::{Operation, RequestId, remember, replay_made};
use super::{App, AppError};
use crate::db::{self, DbError, acting_key};
use crate::domain::etag::etag_matches;
use crate::domain::ids::{ApiKeyId, OrgId};
use crate::domain::page::{Page, PageRequest};

type Conn = db::Conn;

/// A catalog resource: its domain type, and the `db` functions that store it.
pub(super) trait Resource: Clone + Send + 'static {
    type Id: Copy + Display + Send + 'static;
    type New: Send + 'static;
    type Changes: Clone + Send + 'static;
    type Filter: Send + 'static;
    /// As errors name it.
    const NAME: &'static str;
    /// The create RPC, for request ids.
    const CREATE: Operation;
    /// The unique constraint of the other key, and the field that holds it.
    const UNIQUE: (&'static str, &'static str);

    fn new_id() -> Self::Id;
    fn id_of(made: Uuid) -> Self::Id;
    fn id(&self) -> Self::Id;
    fn version(&self) -> i64;
    fn create(
        id: Self::Id,
        new: Self::New,
        now: chrono::DateTime<chrono::Utc>,
        key: Option<ApiKeyId>,
    ) -> Self;
    fn apply(
        &self,
        changes: Self::Changes,
        now: chrono::DateTime<chrono::Utc>,
        key: Option<ApiKeyId>,
    ) -> Self;
    /// The value of the other key.
    fn key(&self) -> String;
    /// The value `changes` give the other key, if they change it.
    fn changed_key(changes: &Self::Changes) -> Option<String>;
    /// A rule an update must also pass, judged in its transaction.
    fn check_update(_conn: &mut Conn, _org: OrgId, _current: &Self, _next: &Self) -> Result<(), AppError> {
        Ok(())
    }

    fn get(conn: &mut Conn, org: OrgId, id: Self::Id) -> Result<Option<Self>, DbError>;
    fn get_for_update(conn: &mut Conn, org: OrgId, id: Self::Id) -> Result<Option<Self>, DbError>;
    fn insert(conn: &mut Conn, org: OrgId, item: &Self) -> Result<(), DbError>;
    fn update(conn: &mut Conn, org: OrgId, item: &Self) -> Result<(), DbError>;
    fn delete(conn: &mut Conn, org: OrgId, id: Self::Id) -> Result<bool, DbError>;
    fn list(
        conn: &mut Conn,
        org: OrgId,
        filter: &Self::Filter,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Self>, DbError>;
    /// The id of the resource holding the other key.
    fn find_by_key(conn: &mut Conn, org: OrgId, key: &str) -> Result<Option<Uuid>, DbError>;
}

/// The `db` functions of a `Resource` impl, from the `db` module that stores it and its
/// lookup by the other key.
macro_rules! stored_in {
    ($module:ident, $find_by_key:ident) => {
        fn get(conn: &mut Conn, org: OrgId, id: Self::Id) -> Result<Option<Self>, DbError> {
            db::$module::get(conn, org, id)
        }
        fn get_for_update(conn: &mut Conn, org: OrgId, id: Self::Id) -> Result<Option<Self>, DbError> {
            db::$module::get_for_update(conn, org, id)
        }
        fn insert(conn: &mut Conn, org: OrgId, item: &Self) -> Result<(), DbError> {
            db::$module::insert(conn, org, item)
        }
        fn update(conn: &mut Conn, org: OrgId, item: &Self) -> Result<(), DbError> {
            db::$module::update(conn, org, item)
        }
        fn delete(conn: &mut Conn, org: OrgId, id: Self::Id) -> Result<bool, DbError> {
            db::$module::delete(conn, org, id)
        }
        fn list(
            conn: &mut Conn,
            org: OrgId,
            filter: &Self::Filter,
            after: Option<Uuid>,
            limit: i64,
        ) -> Result<Vec<Self>, DbError> {
            db::$module::list(conn, org, filter, after, limit)
        }
        fn find_by_key(conn: &mut Conn, org: OrgId, key: &str) -> Result<Option<Uuid>, DbError> {
            db::$module::$find_by_key(conn, org, key)
        }
    };
}
pub(super) use stored_in;

/// Reads and locks the resource for a change, checking the caller's etag.
fn lock_current<R: Resource>(conn: &mut Conn, org: OrgId, id: R::Id, etag: &str) -> Result<R, AppError> {
    let current = R::get_for_update(conn, org, id)?.ok_or_else(|| AppError::not_found(R::NAME, id))?;
    if !etag_matches(etag, current.version()) {
        return Err(AppError::EtagMismatch { resource: R::NAME });
    }
    Ok(current)
}

impl App {
    /// Creates a resource; with a request id, a retry gets what the first call made.
    pub(super) async fn create_resource<R: Resource>(
        &self,
        org: OrgId,
        new: R::New,
        request: Option<RequestId>,
    ) -> Result<R, AppError> {
        let item = R::create(R::new_id(), new, clock::now(), acting_key::current());
        let key = item.key();
        let created = self
            .db()
            .transaction(org, move |conn| {
                if let Some(made) = replay_made(conn, org, R::CREATE, request.as_ref(), R::id_of, R::get)? {
                    return Ok(made);
                }
                R::insert(conn, org, &item)?;
                remember(conn, org, R::CREATE, request.as_ref(), item.id())?;
                Ok::<_, AppError>(item.clone())
            })
            .await
            .map_err(|e| e.unique(R::UNIQUE.0, R::NAME, R::UNIQUE.1));
        self.naming_existing(org, created, R::find_by_key, Some(key)).await
    }

    pub(super) async fn get_resource<R: Resource>(&self, org: OrgId, id: R::Id) -> Result<R, AppError> {
        self.db()
            .transaction(org, move |conn| {
                R::get(conn, org, id)?.ok_or_else(|| AppError::not_found(R::NAME, id))
            })
            .await
    }

    /// One page of resources in id order (creation order, ids being v7).
    pub(super) async fn list_resources<R: Resource>(
        &self,
        org: OrgId,
        filter: R::Filter,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<R>, AppError> {
        self.page_by_id(
            org,
            page,
            &filters_key,
            |r: &R| r.id().to_string(),
            move |conn, after, limit| Ok(R::list(conn, org, &filter, after, limit)?),
        )
        .await
    }

    /// Applies `changes` to the resource whose etag the caller read.
    pub(super) async fn update_resource<R: Resource>(
        &self,
        org: OrgId,
        id: R::Id,
        etag: String,
        changes: R::Changes,
    ) -> Result<R, AppError> {
        let key = R::changed_key(&changes);
        let acting = acting_key::current();
        let updated = self
            .db()
            .transaction(org, move |conn| {
                let current = lock_current::<R>(conn, org, id, &etag)?;
                let next = current.apply(changes.clone(), clock::now(), acting);
                R::check_update(conn, org, &current, &next)?;
                R::update(conn, org, &next)?;
                Ok::<_, AppError>(next)
            })
            .await
            .map_err(|e| e.unique(R::UNIQUE.0, R::NAME, R::UNIQUE.1));
        self.naming_existing(org, updated, R::find_by_key, key).await
    }

    /// Deletes the resource whose etag the caller read; refused while others refer to it.
    pub(super) async fn delete_resource<R: Resource>(
        &self,
        org: OrgId,
        id: R::Id,
        etag: String,
    ) -> Result<(), AppError> {
        self.db()
            .transaction(org, move |conn| {
                let current = lock_current::<R>(conn, org, id, &etag)?;
                R::delete(conn, org, current.id())?;
                Ok::<_, AppError>(())
            })
            .await
            .map_err(|e| e.in_use(R::NAME))
    }
}
