//! Customer use cases: the catalog's shared steps (`catalog.rs`), with the customer's own
//! rule that its time zone is fixed while allowance limits are set.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::catalog::{Resource, stored_in};
use super::request_ids::{Operation, RequestId};
use super::{App, AppError};
use crate::db::{self, Conn, DbError};
use crate::domain::customer::{Customer, CustomerChanges, CustomerFilter, NewCustomer};
use crate::domain::ids::{ApiKeyId, CustomerId, OrgId};
use crate::domain::page::{Page, PageRequest};

const RESOURCE: &str = "customer";

impl Resource for Customer {
    type Id = CustomerId;
    type New = NewCustomer;
    type Changes = CustomerChanges;
    type Filter = CustomerFilter;
    const NAME: &'static str = RESOURCE;
    const CREATE: Operation = Operation { name: "CreateCustomer", resource: RESOURCE };
    const UNIQUE: (&'static str, &'static str) = ("customers_external_id_key", "external_id");

    fn new_id() -> CustomerId {
        CustomerId::generate()
    }
    fn id_of(made: Uuid) -> CustomerId {
        CustomerId(made)
    }
    fn id(&self) -> CustomerId {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn create(id: CustomerId, new: NewCustomer, now: DateTime<Utc>, key: Option<ApiKeyId>) -> Self {
        Customer::create(id, new, now, key)
    }
    fn apply(&self, changes: CustomerChanges, now: DateTime<Utc>, key: Option<ApiKeyId>) -> Self {
        Customer::apply(self, changes, now, key)
    }
    fn key(&self) -> String {
        self.external_id.clone()
    }
    fn changed_key(changes: &CustomerChanges) -> Option<String> {
        changes.external_id.clone()
    }
    /// Allowance limits' daily and monthly windows are local to the customer's time zone.
    fn check_update(conn: &mut Conn, org: OrgId, current: &Self, next: &Self) -> Result<(), AppError> {
        let has_limits = db::allowances::get(conn, org, current.id, false)?.is_some();
        if current.may_become(next, has_limits) {
            return Ok(());
        }
        Err(AppError::FailedPrecondition {
            reason: "TIME_ZONE_LOCKED_BY_LIMITS",
            message: "the time zone cannot change while allowance limits are set: their daily \
                      and monthly windows are local to it; delete the limits first"
                .into(),
        })
    }

    stored_in!(customers, id_by_external_id);
}

impl App {
    /// Creates a customer; with a request id, a retry gets the customer the first call made.
    pub async fn create_customer(
        &self,
        org: OrgId,
        new: NewCustomer,
        request: Option<RequestId>,
    ) -> Result<Customer, AppError> {
        self.create_resource(org, new, request).await
    }

    pub async fn get_customer(&self, org: OrgId, id: CustomerId) -> Result<Customer, AppError> {
        self.get_resource(org, id).await
    }

    pub async fn list_customers(
        &self,
        org: OrgId,
        filter: CustomerFilter,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<Customer>, AppError> {
        self.list_resources(org, filter, page, filters_key).await
    }

    pub async fn update_customer(
        &self,
        org: OrgId,
        id: CustomerId,
        etag: String,
        changes: CustomerChanges,
    ) -> Result<Customer, AppError> {
        self.update_resource(org, id, etag, changes).await
    }

    pub async fn delete_customer(&self, org: OrgId, id: CustomerId, etag: String) -> Result<(), AppError> {
        self.delete_resource::<Customer>(org, id, etag).await
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
