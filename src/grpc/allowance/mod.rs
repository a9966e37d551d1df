//! `AllowanceService`: thin handlers over the allowance limit use cases.

pub mod mapping;

use tonic::{Request, Response, Status};

use crate::app::App;
use crate::grpc::auth::caller;
use crate::grpc::convert::require_id;
use crate::grpc::customer_ref;
use crate::proto::v1 as pb;
use crate::proto::v1::allowance_service_server::AllowanceService;

pub struct AllowanceApi {
    app: App,
}

impl AllowanceApi {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl AllowanceService for AllowanceApi {
    async fn get_allowance_limits(
        &self,
        req: Request<pb::GetAllowanceLimitsRequest>,
    ) -> Result<Response<pb::GetAllowanceLimitsResponse>, Status> {
        let org = caller(&req)?.org;
        let mut req = req.into_inner();
        customer_ref::by_id(&self.app, org, "", &mut req).await?;
        let customer = require_id("customer_id", req.customer_id())?;
        let limits = self.app.get_allowance_limits(org, customer).await?;
        Ok(Response::new(pb::GetAllowanceLimitsResponse { limits: Some(mapping::limits(limits)) }))
    }

    async fn replace_allowance_limits(
        &self,
        req: Request<pb::ReplaceAllowanceLimitsRequest>,
    ) -> Result<Response<pb::ReplaceAllowanceLimitsResponse>, Status> {
        let org = caller(&req)?.org;
        let mut req = req.into_inner();
        customer_ref::by_id_in(&self.app, org, "limits.", &mut req.limits).await?;
        let (customer, etag, settings, v) = mapping::replace(req)?;
        let limits = self.app.replace_allowance_limits(org, customer, etag, settings, v).await?;
        Ok(Response::new(pb::ReplaceAllowanceLimitsResponse { limits: Some(mapping::limits(limits)) }))
    }

    async fn update_allowance_limits(
        &self,
        req: Request<pb::UpdateAllowanceLimitsRequest>,
    ) -> Result<Response<pb::UpdateAllowanceLimitsResponse>, Status> {
        let org = caller(&req)?.org;
        let mut req = req.into_inner();
        customer_ref::by_id(&self.app, org, "", &mut req).await?;
        let (customer, etag, update, v) = mapping::update(req)?;
        let limits = self.app.update_allowance_limits(org, customer, etag, update, v).await?;
        Ok(Response::new(pb::UpdateAllowanceLimitsResponse { limits: Some(mapping::limits(limits)) }))
    }

    async fn delete_allowance_limits(
        &self,
        req: Request<pb::DeleteAllowanceLimitsRequest>,
    ) -> Result<Response<pb::DeleteAllowanceLimitsResponse>, Status> {
        let org = caller(&req)?.org;
        let mut req = req.into_inner();
        customer_ref::by_id(&self.app, org, "", &mut req).await?;
        let customer = require_id("customer_id", req.customer_id())?;
        self.app.delete_allowance_limits(org, customer, req.etag).await?;
        Ok(Response::new(pb::DeleteAllowanceLimitsResponse {}))
    }
}
