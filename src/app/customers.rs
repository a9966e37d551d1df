//! Customer use cases.

use super::clock;

use super::request_ids::{Operation, RequestId, remember, replay_made};
use super::{App, AppError};
use crate::db::{self, acting_key};
use crate::domain::customer::{Customer, CustomerChanges, CustomerFilter, NewCustomer};
use crate::domain::etag::etag_matches;
use crate::domain::ids::{CustomerId, OrgId};
use crate::domain::page::{Page, PageRequest};

const RESOURCE: &str = "customer";
const EXTERNAL_ID_KEY: &str = "customers_external_id_key";

/// Reads and locks the customer for a change, checking the caller's etag.
fn lock_current(conn: &mut db::Conn, org: OrgId, id: CustomerId, etag: &str) -> Result<Customer, AppError> {
    let current =
        db::customers::get_for_update(conn, org, id)?.ok_or_else(|| AppError::not_found(RESOURCE, id))?;
    if !etag_matches(etag, current.version) {
        return Err(AppError::EtagMismatch { resource: RESOURCE });
    }
    Ok(current)
}

impl App {
    /// Creates a customer; with a request id, a retry gets the customer the first call made.
    pub async fn create_customer(
        &self,
        org: OrgId,
        new: NewCustomer,
        request: Option<RequestId>,
    ) -> Result<Customer, AppError> {
        const CREATE: Operation = Operation { name: "CreateCustomer", resource: RESOURCE };
        let customer = Customer::create(CustomerId::generate(), new, clock::now(), acting_key::current());
        let external_id = customer.external_id.clone();
        let created = self
            .db()
            .transaction(org, move |conn| {
                if let Some(made) =
                    replay_made(conn, org, CREATE, request.as_ref(), CustomerId, db::customers::get)?
                {
                    return Ok(made);
                }
                db::customers::insert(conn, org, &customer)?;
                remember(conn, org, CREATE, request.as_ref(), customer.id)?;
                Ok::<_, AppError>(customer.clone())
            })
            .await
            .map_err(|e| e.unique(EXTERNAL_ID_KEY, RESOURCE, "external_id"));
        self.naming_existing(org, created, db::customers::id_by_external_id, Some(external_id)).await
    }

    pub async fn get_customer(&self, org: OrgId, id: CustomerId) -> Result<Customer, AppError> {
        self.db()
            .transaction(org, move |conn| {
                db::customers::get(conn, org, id)?.ok_or_else(|| AppError::not_found(RESOURCE, id))
            })
            .await
    }

    pub async fn list_customers(
        &self,
        org: OrgId,
        filter: CustomerFilter,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<Customer>, AppError> {
        let after = page.after_uuid()?;
        let limit = page.fetch_limit();
        let rows = self
            .db()
            .transaction(org, move |conn| {
                Ok::<_, AppError>(db::customers::list(conn, org, &filter, after, limit)?)
            })
            .await?;
        Ok(Page::from_rows(rows, &page, &filters_key, |c| c.id.to_string()))
    }

    pub async fn update_customer(
        &self,
        org: OrgId,
        id: CustomerId,
        etag: String,
        changes: CustomerChanges,
    ) -> Result<Customer, AppError> {
        let external_id = changes.external_id.clone();
        let key = acting_key::current();
        let updated = self
            .db()
            .transaction(org, move |conn| {
                let current = lock_current(conn, org, id, &etag)?;
                let next = current.apply(changes.clone(), clock::now(), key);
                let has_limits = db::allowances::get(conn, org, id, false)?.is_some();
                if !current.may_become(&next, has_limits) {
                    return Err(AppError::FailedPrecondition {
                        reason: "TIME_ZONE_LOCKED_BY_LIMITS",
                        message: "the time zone cannot change while allowance limits are set: their daily \
                                  and monthly windows are local to it; delete the limits first"
                            .into(),
                    });
                }
                db::customers::update(conn, org, &next)?;
                Ok::<_, AppError>(next)
            })
            .await
            .map_err(|e| e.unique(EXTERNAL_ID_KEY, RESOURCE, "external_id"));
        self.naming_existing(org, updated, db::customers::id_by_external_id, external_id).await
    }

    pub async fn delete_customer(&self, org: OrgId, id: CustomerId, etag: String) -> Result<(), AppError> {
        self.db()
            .transaction(org, move |conn| {
                let current = lock_current(conn, org, id, &etag)?;
                db::customers::delete(conn, org, current.id)?;
                Ok::<_, AppError>(())
            })
            .await
            .map_err(|e| e.in_use(RESOURCE))
    }
}

/// NOT_FOUND unless the customer exists in the org (inside a use case's transaction).
pub(crate) fn require_customer(
    conn: &mut db::Conn,
    org: OrgId,
    customer: CustomerId,
) -> Result<(), AppError> {
    if db::customers::exists(conn, org, customer)? {
        Ok(())
    } else {
        Err(AppError::not_found(RESOURCE, customer))
    }
}
