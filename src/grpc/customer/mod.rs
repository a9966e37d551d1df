//! `CustomerService`: thin handlers over the customer use cases.
//!
//! The handlers have the shape of the product service's, each a few lines over its own
//! message types; what they share is written once in `app::catalog`, and a macro over the
//! two would hide which message each RPC takes.

mod mapping;

use tonic::{Request, Response, Status};

use crate::app::{App, Caller};
use crate::grpc::auth::caller;
use crate::grpc::convert::require_id;
use crate::grpc::request_id::{request_id, with_request_id};
use crate::proto::v1 as pb;
use crate::proto::v1::customer_service_server::CustomerService;

pub struct CustomerApi {
    app: App,
}

impl CustomerApi {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl CustomerService for CustomerApi {
    async fn create_customer(
        &self,
        req: Request<pb::CreateCustomerRequest>,
    ) -> Result<Response<pb::CreateCustomerResponse>, Status> {
        let org = caller(&req)?.org;
        let request = request_id(req.get_ref(), |r| &mut r.request_id);
        let (request, new) = with_request_id(request, mapping::new_customer(req.into_inner()))?;
        let customer = self.app.create_customer(org, new, request).await?;
        Ok(Response::new(pb::CreateCustomerResponse { customer: Some(mapping::customer(customer)) }))
    }

    async fn get_customer(
        &self,
        req: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::GetCustomerResponse>, Status> {
        let org = caller(&req)?.org;
        let id = require_id("id", &req.get_ref().id)?;
        let customer = self.app.get_customer(org, id).await?;
        Ok(Response::new(pb::GetCustomerResponse { customer: Some(mapping::customer(customer)) }))
    }

    async fn list_customers(
        &self,
        req: Request<pb::ListCustomersRequest>,
    ) -> Result<Response<pb::ListCustomersResponse>, Status> {
        let Caller { org, tokens, .. } = caller(&req)?;
        let (filter, key, page) = mapping::list(req.into_inner(), tokens)?;
        let page = self.app.list_customers(org, filter, page, key).await?;
        Ok(Response::new(pb::ListCustomersResponse {
            customers: page.items.into_iter().map(mapping::customer).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_customer(
        &self,
        req: Request<pb::UpdateCustomerRequest>,
    ) -> Result<Response<pb::UpdateCustomerResponse>, Status> {
        let org = caller(&req)?.org;
        let (id, etag, changes) = mapping::update(req.into_inner())?;
        let customer = self.app.update_customer(org, id, etag, changes).await?;
        Ok(Response::new(pb::UpdateCustomerResponse { customer: Some(mapping::customer(customer)) }))
    }

    async fn delete_customer(
        &self,
        req: Request<pb::DeleteCustomerRequest>,
    ) -> Result<Response<pb::DeleteCustomerResponse>, Status> {
        let org = caller(&req)?.org;
        let req = req.into_inner();
        let id = require_id("id", &req.id)?;
        self.app.delete_customer(org, id, req.etag).await?;
        Ok(Response::new(pb::DeleteCustomerResponse {}))
    }
}
