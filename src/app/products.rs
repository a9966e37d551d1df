//! Product use cases: the catalog's shared steps (`catalog.rs`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::catalog::{Resource, stored_in};
use super::request_ids::{Operation, RequestId};
use super::{App, AppError};
use crate::db::{self, Conn, DbError};
use crate::domain::ids::{ApiKeyId, OrgId, ProductId};
use crate::domain::page::{Page, PageRequest};
use crate::domain::product::{NewProduct, Product, ProductChanges, ProductFilter};

const RESOURCE: &str = "product";

impl Resource for Product {
    type Id = ProductId;
    type New = NewProduct;
    type Changes = ProductChanges;
    type Filter = ProductFilter;
    const NAME: &'static str = RESOURCE;
    const CREATE: Operation = Operation { name: "CreateProduct", resource: RESOURCE };
    const UNIQUE: (&'static str, &'static str) = ("products_code_key", "code");

    fn new_id() -> ProductId {
        ProductId::generate()
    }
    fn id_of(made: Uuid) -> ProductId {
        ProductId(made)
    }
    fn id(&self) -> ProductId {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn create(id: ProductId, new: NewProduct, now: DateTime<Utc>, key: Option<ApiKeyId>) -> Self {
        Product::create(id, new, now, key)
    }
    fn apply(&self, changes: ProductChanges, now: DateTime<Utc>, key: Option<ApiKeyId>) -> Self {
        Product::apply(self, changes, now, key)
    }
    fn key(&self) -> String {
        self.code.clone()
    }
    fn changed_key(changes: &ProductChanges) -> Option<String> {
        changes.code.clone()
    }
    stored_in!(products, id_by_code);
}

impl App {
    /// Creates a product; with a request id, a retry gets the product the first call made.
    pub async fn create_product(
        &self,
        org: OrgId,
        new: NewProduct,
        request: Option<RequestId>,
    ) -> Result<Product, AppError> {
        self.create_resource(org, new, request).await
    }

    pub async fn get_product(&self, org: OrgId, id: ProductId) -> Result<Product, AppError> {
        self.get_resource(org, id).await
    }

    pub async fn list_products(
        &self,
        org: OrgId,
        filter: ProductFilter,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<Product>, AppError> {
        self.list_resources(org, filter, page, filters_key).await
    }

    pub async fn update_product(
        &self,
        org: OrgId,
        id: ProductId,
        etag: String,
        changes: ProductChanges,
    ) -> Result<Product, AppError> {
        self.update_resource(org, id, etag, changes).await
    }

    pub async fn delete_product(&self, org: OrgId, id: ProductId, etag: String) -> Result<(), AppError> {
        self.delete_resource::<Product>(org, id, etag).await
    }
}
