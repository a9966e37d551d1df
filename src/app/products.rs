//! Product use cases.

use super::clock;

use super::request_ids::{Operation, RequestId, remember, replay_made};
use super::{App, AppError};
use crate::db::{self, acting_key};
use crate::domain::etag::etag_matches;
use crate::domain::ids::{OrgId, ProductId};
use crate::domain::page::{Page, PageRequest};
use crate::domain::product::{NewProduct, Product, ProductChanges, ProductFilter};

const RESOURCE: &str = "product";
const CODE_KEY: &str = "products_code_key";

/// Reads and locks the product for a change, checking the caller's etag.
fn lock_current(conn: &mut db::Conn, org: OrgId, id: ProductId, etag: &str) -> Result<Product, AppError> {
    let current =
        db::products::get_for_update(conn, org, id)?.ok_or_else(|| AppError::not_found(RESOURCE, id))?;
    if !etag_matches(etag, current.version) {
        return Err(AppError::EtagMismatch { resource: RESOURCE });
    }
    Ok(current)
}

impl App {
    /// Creates a product; with a request id, a retry gets the product the first call made.
    pub async fn create_product(
        &self,
        org: OrgId,
        new: NewProduct,
        request: Option<RequestId>,
    ) -> Result<Product, AppError> {
        const CREATE: Operation = Operation { name: "CreateProduct", resource: RESOURCE };
        let product = Product::create(ProductId::generate(), new, clock::now(), acting_key::current());
        let code = product.code.clone();
        let created = self
            .db()
            .transaction(org, move |conn| {
                if let Some(made) =
                    replay_made(conn, org, CREATE, request.as_ref(), ProductId, db::products::get)?
                {
                    return Ok(made);
                }
                db::products::insert(conn, org, &product)?;
                remember(conn, org, CREATE, request.as_ref(), product.id)?;
                Ok::<_, AppError>(product.clone())
            })
            .await
            .map_err(|e| e.unique(CODE_KEY, RESOURCE, "code"));
        self.naming_existing(org, created, db::products::id_by_code, Some(code)).await
    }

    pub async fn get_product(&self, org: OrgId, id: ProductId) -> Result<Product, AppError> {
        self.db()
            .transaction(org, move |conn| {
                db::products::get(conn, org, id)?.ok_or_else(|| AppError::not_found(RESOURCE, id))
            })
            .await
    }

    pub async fn list_products(
        &self,
        org: OrgId,
        filter: ProductFilter,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<Product>, AppError> {
        let after = page.after_uuid()?;
        let limit = page.fetch_limit();
        let rows = self
            .db()
            .transaction(org, move |conn| {
                Ok::<_, AppError>(db::products::list(conn, org, &filter, after, limit)?)
            })
            .await?;
        Ok(Page::from_rows(rows, &page, &filters_key, |p| p.id.to_string()))
    }

    pub async fn update_product(
        &self,
        org: OrgId,
        id: ProductId,
        etag: String,
        changes: ProductChanges,
    ) -> Result<Product, AppError> {
        let code = changes.code.clone();
        let key = acting_key::current();
        let updated = self
            .db()
            .transaction(org, move |conn| {
                let current = lock_current(conn, org, id, &etag)?;
                let next = current.apply(changes.clone(), clock::now(), key);
                db::products::update(conn, org, &next)?;
                Ok::<_, AppError>(next)
            })
            .await
            .map_err(|e| e.unique(CODE_KEY, RESOURCE, "code"));
        self.naming_existing(org, updated, db::products::id_by_code, code).await
    }

    pub async fn delete_product(&self, org: OrgId, id: ProductId, etag: String) -> Result<(), AppError> {
        self.db()
            .transaction(org, move |conn| {
                let current = lock_current(conn, org, id, &etag)?;
                db::products::delete(conn, org, current.id)?;
                Ok::<_, AppError>(())
            })
            .await
            .map_err(|e| e.in_use(RESOURCE))
    }
}
