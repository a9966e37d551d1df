//! `ProductService`: thin handlers over the product use cases.
//!
//! The handlers have the shape of the customer service's, each a few lines over its own
//! message types; what they share is written once in `app::catalog`, and a macro over the
//! two would hide which message each RPC takes.

pub mod mapping;

use tonic::{Request, Response, Status};

use crate::app::{App, Caller};
use crate::grpc::auth::caller;
use crate::grpc::convert::require_id;
use crate::grpc::request_id::{request_id, with_request_id};
use crate::proto::v1 as pb;
use crate::proto::v1::product_service_server::ProductService;

pub struct ProductApi {
    app: App,
}

impl ProductApi {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl ProductService for ProductApi {
    async fn create_product(
        &self,
        req: Request<pb::CreateProductRequest>,
    ) -> Result<Response<pb::CreateProductResponse>, Status> {
        let org = caller(&req)?.org;
        let request = request_id(req.get_ref(), |r| &mut r.request_id);
        let (request, new) = with_request_id(request, mapping::new_product(req.into_inner()))?;
        let product = self.app.create_product(org, new, request).await?;
        Ok(Response::new(pb::CreateProductResponse { product: Some(mapping::product(product)) }))
    }

    async fn get_product(
        &self,
        req: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::GetProductResponse>, Status> {
        let org = caller(&req)?.org;
        let id = require_id("id", &req.get_ref().id)?;
        let product = self.app.get_product(org, id).await?;
        Ok(Response::new(pb::GetProductResponse { product: Some(mapping::product(product)) }))
    }

    async fn list_products(
        &self,
        req: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let (filter, key, page) = mapping::list(req.into_inner(), tokens)?;
        let page = self.app.list_products(org, filter, page, key).await?;
        Ok(Response::new(pb::ListProductsResponse {
            products: page.items.into_iter().map(mapping::product).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_product(
        &self,
        req: Request<pb::UpdateProductRequest>,
    ) -> Result<Response<pb::UpdateProductResponse>, Status> {
        let org = caller(&req)?.org;
        let (id, etag, changes) = mapping::update(req.into_inner())?;
        let product = self.app.update_product(org, id, etag, changes).await?;
        Ok(Response::new(pb::UpdateProductResponse { product: Some(mapping::product(product)) }))
    }

    async fn delete_product(
        &self,
        req: Request<pb::DeleteProductRequest>,
    ) -> Result<Response<pb::DeleteProductResponse>, Status> {
        let org = caller(&req)?.org;
        let req = req.into_inner();
        let id = require_id("id", &req.id)?;
        self.app.delete_product(org, id, req.etag).await?;
        Ok(Response::new(pb::DeleteProductResponse {}))
    }
}
